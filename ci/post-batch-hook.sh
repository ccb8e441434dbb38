#!/usr/bin/env bash
# Run a postrun suite after a batch and exit with its code, so the caller can gate on it.
#
#   post-batch-hook.sh SUITE [--param k=v]... [--retries N] [--backoff SECONDS]
#                            [--notify URL] [--out DIR] [-- extra postrun check args]
#
# Exit codes are postrun's own (0 PASS/WARN, 1 FAIL, 2 usage, 3 ERROR) from the last attempt.
# Only an ERROR verdict (exit 3) whose ERROR checks are all retryable (a database that was
# briefly unreachable, a timeout) is run again, up to --retries times (default 2), after
# BACKOFF, 2*BACKOFF, 4*BACKOFF... seconds (default 30). A FAIL (1) is the data's answer and
# a usage error (2) will not heal, so neither is retried. Reports go to --out (default
# ./postrun-report), overwritten by each attempt; --notify URL is passed to every attempt.
# POSTRUN overrides the postrun command (e.g. POSTRUN="python -m runner"), PYTHON the
# interpreter that reads verdict.json.
set -euo pipefail

usage() {
  sed -n '4,5s/^# \{0,1\}//p' "$0" >&2
  exit 2
}

die() {
  echo "post-batch-hook: $*" >&2
  exit 2
}

[ $# -ge 1 ] || usage
case $1 in -h | --help) usage ;; -*) die "the first argument is the suite file, not '$1'" ;; esac
suite=$1
shift

retries=2
backoff=30
out="postrun-report"
args=()
while [ $# -gt 0 ]; do
  case $1 in
    --param | -p)
      [ $# -ge 2 ] || die "$1 needs NAME=VALUE"
      args+=(--param "$2")
      shift 2
      ;;
    --param=*) args+=(--param "${1#--param=}"); shift ;;
    --retries)
      [ $# -ge 2 ] || die "--retries needs a number"
      retries=$2
      shift 2
      ;;
    --backoff)
      [ $# -ge 2 ] || die "--backoff needs a number of seconds"
      backoff=$2
      shift 2
      ;;
    --notify)
      [ $# -ge 2 ] || die "--notify needs a URL"
      args+=(--notify "$2")
      shift 2
      ;;
    --out)
      [ $# -ge 2 ] || die "--out needs a folder"
      out=$2
      shift 2
      ;;
    --)
      shift
      args+=("$@")
      break
      ;;
    *) die "unknown option '$1' (postrun's own options go after --)" ;;
  esac
done
[[ $retries =~ ^[0-9]+$ ]] || die "--retries takes a whole number, not '$retries'"
[[ $backoff =~ ^[0-9]+$ ]] || die "--backoff takes whole seconds, not '$backoff'"

read -r -a postrun <<<"${POSTRUN:-postrun}"
python=${PYTHON:-python3}

# Prints "<verdict> <errors> <retryable errors>" from a verdict.json, "none 0 0" without one.
read_verdict() {
  "$python" - "$1" <<'EOF'
import json, sys
try:
    with open(sys.argv[1], encoding="utf-8") as handle:
        verdict = json.load(handle)
except (OSError, ValueError):
    print("none 0 0")
    raise SystemExit
errors = [c for c in verdict.get("checks", []) if c.get("status") == "ERROR"]
retryable = [c for c in errors if (c.get("error") or {}).get("retryable") is True]
print(verdict.get("verdict", "none"), len(errors), len(retryable))
EOF
}

attempts=$((retries + 1))
attempt=1
while true; do
  # A verdict left over from an earlier attempt must not be read as this one's.
  rm -f "$out/verdict.json"
  code=0
  "${postrun[@]}" check "$suite" --out "$out" "${args[@]}" || code=$?
  verdict=none errors=0 retryable=0
  read -r verdict errors retryable < <(read_verdict "$out/verdict.json") || true
  line="post-batch-hook: attempt $attempt/$attempts: exit $code ($verdict)"
  if [ "$code" -eq 3 ] && [ "$errors" -gt 0 ] && [ "$errors" -eq "$retryable" ] &&
    [ "$attempt" -lt "$attempts" ]; then
    delay=$((backoff * (1 << (attempt - 1))))
    echo "$line, $errors retryable error(s): retrying in ${delay}s" >&2
    sleep "$delay"
    attempt=$((attempt + 1))
    continue
  fi
  if [ "$code" -eq 3 ] && [ "$errors" -gt "$retryable" ]; then
    line="$line, $((errors - retryable)) of $errors error(s) not retryable"
  elif [ "$code" -eq 3 ] && [ "$attempt" -eq "$attempts" ] && [ "$errors" -gt 0 ]; then
    line="$line, retries used up"
  fi
  echo "$line" >&2
  exit "$code"
done
