#!/usr/bin/env bash
# The project's test entry point (README, .ci/run): installs what it needs, then lint, types, tests.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "ci: installing postrun with its dev, dagster, s3 and spark extras"
python3 -m pip install -q --disable-pip-version-check -e '.[dev,dagster,s3,spark]'

# shellcheck source=ci/postgres.sh
source ci/postgres.sh
trap postrun_pg_stop EXIT
if ! postrun_pg_start; then
  echo "ci: PostgreSQL could not be started" >&2
  tail -n 20 "${PG_DIR:-/nonexistent}"/*.log 2>/dev/null >&2 || true
  if [ "${CI:-}" = "true" ]; then exit 1; fi
  echo "ci: tests marked 'postgres' will be skipped (not under CI)" >&2
fi

# The browser test of verdict.html drives Debian's chromium through Playwright's Python package
# (no `playwright install`: it would download a browser).
chromium=${POSTRUN_CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium" ]; then
  echo "ci: installing Chromium"
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }; then
    echo "ci: Chromium could not be installed" >&2
    if [ "${CI:-}" = "true" ]; then exit 1; fi
    echo "ci: tests marked 'browser' will be skipped (not under CI)" >&2
  fi
fi

echo "ci: ruff"
python3 -m ruff check runner tests bench
python3 -m ruff format --check runner tests bench
echo "ci: mypy"
python3 -m mypy
echo "ci: pytest"
python3 -m pytest -q -p no:cacheprovider "$@"
