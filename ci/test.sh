#!/usr/bin/env bash
# The project's test entry point (README, .ci/run): installs what it needs, then lint, types, tests.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "ci: installing postrun with its dev extra"
python3 -m pip install -q --disable-pip-version-check -e '.[dev]'

# shellcheck source=ci/postgres.sh
source ci/postgres.sh
trap postrun_pg_stop EXIT
if ! postrun_pg_start; then
  echo "ci: PostgreSQL could not be started" >&2
  tail -n 20 "${PG_DIR:-/nonexistent}"/*.log 2>/dev/null >&2 || true
  if [ "${CI:-}" = "true" ]; then exit 1; fi
  echo "ci: tests marked 'postgres' will be skipped (not under CI)" >&2
fi

echo "ci: ruff"
python3 -m ruff check runner tests
python3 -m ruff format --check runner tests
echo "ci: mypy"
python3 -m mypy
echo "ci: pytest"
python3 -m pytest -q -p no:cacheprovider "$@"
