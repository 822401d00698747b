#!/usr/bin/env bash
# Runs docs/api-guide.md top to bottom against a fresh service started by scripts/run.sh:
# every ```bash block of the guide, in order, in one shell (variables carry over), stops
# at the first block that fails. A fresh database, fs storage and log notifications, so
# no cloud is needed.
# Usage: scripts/try-api-guide.sh [--skip section,section] (sections are the guide's
# `## ` headings in lower case with dashes: onboarding, api-keys, files, notifications, …)
# A section marked `<!-- needs: /api/v1/... -->` is skipped, loudly, when the service's
# /openapi.json has no such path (a feature not built into this tree).
# CARGO_PROFILE=dev reuses the debug build of the tests (run.sh builds release otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
skip=""
while [ $# -gt 0 ]; do
  case "$1" in
    --skip) skip="$2"; shift 2 ;;
    --skip=*) skip="${1#--skip=}"; shift ;;
    *) echo "usage: $0 [--skip section,section]" >&2; exit 2 ;;
  esac
done
command -v jq > /dev/null || { echo "the guide needs jq" >&2; exit 2; }

work=$(mktemp -d)

PORT=${GUIDE_PORT:-18092}
. scripts/services.sh
db="tenantry_guide_$(date +%s)"
(
  export DATABASE_URL="${DATABASE_URL%/*}/$db" BIND_ADDR="127.0.0.1:$PORT" RUST_LOG=warn LOG_FORMAT=json \
    REDIS_KEY_PREFIX="guide:$db:" STORAGE_BACKEND=fs STORAGE_DIR="$work/files" S3_BUCKET_NAME= \
    NOTIFICATIONS_BACKEND=log
  exec setsid scripts/run.sh serve
) > "$work/server.log" 2>&1 &
server=$!
cleanup() {
  kill -- -"$server" 2> /dev/null || kill "$server" 2> /dev/null
  wait "$server" 2> /dev/null
  psql "${DATABASE_URL%/*}/postgres" -qc "drop database if exists \"$db\" with (force)" > /dev/null 2>&1 || true
  rm -rf "$work" /tmp/tenantry-guide.txt
}
trap cleanup EXIT
# run.sh may build first.
until curl -sf "http://127.0.0.1:$PORT/health" > /dev/null 2>&1; do
  kill -0 "$server" 2> /dev/null || { tail -n 30 "$work/server.log"; echo "the service did not start"; exit 1; }
  sleep 1
done

curl -fsS "http://127.0.0.1:$PORT/openapi.json" -o "$work/openapi.json"
# The guide's blocks, each preceded by its section name; skipped sections left out.
python3 - "$skip" docs/api-guide.md "$work/openapi.json" > "$work/guide.sh" <<'PY'
import json, re, shlex, sys
skip = {s.strip() for s in sys.argv[1].split(",") if s.strip()}
paths = json.load(open(sys.argv[3]))["paths"]
section, block, n, out, missing = "", None, 0, [], {}
for line in open(sys.argv[2]):
    need = re.match(r"<!-- needs: (\S+) -->", line.strip())
    if need and need.group(1) not in paths:
        missing[section] = need.group(1)
    if block is None and line.startswith("## "):
        section = re.sub(r"[^a-z0-9]+", "-", line[3:].strip().lower()).strip("-")
    elif block is None and line.strip() == "```bash":
        block = []
    elif block is not None and line.strip() == "```":
        n += 1
        if section in skip:
            out.append(f"echo {shlex.quote(f'-- skipped [{section}] block {n}')}")
        elif section in missing:
            why = f"-- SKIPPED [{section}] block {n}: {missing[section]} is not in the /openapi.json of this build"
            out.append(f"echo {shlex.quote(why)}")
        else:
            label = f"[{section}] block {n}"
            out.append(f"CURRENT={shlex.quote(label)}; echo; echo \"== $CURRENT\"")
            out.append("".join(block))
        block = None
    elif block is not None:
        block.append(line)
unknown = skip - {l.split("]")[0].split("[")[-1] for l in out if "[" in l}
if unknown:
    sys.exit(f"no such section: {', '.join(sorted(unknown))}")
print("\n".join(out))
PY

if B="http://127.0.0.1:$PORT" bash -c 'set -euo pipefail
  trap "echo \"FAILED: \$CURRENT\" >&2" ERR
  . "$0"' "$work/guide.sh"; then
  echo; echo "api guide passed${skip:+ (skipped: $skip)}"
  grep -o 'SKIPPED \[[a-z-]*\][^'"'"']*' "$work/guide.sh" | sort -u | sed 's/^/   not run: /' || true
else
  echo "--- server log (tail)"; tail -n 20 "$work/server.log"
  exit 1
fi
