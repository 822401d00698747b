#!/usr/bin/env bash
# Generates TypeScript types from the running service's /openapi.json with
# openapi-typescript, type-checks a short tour written against them with openapi-fetch
# (scripts/client-smoke-ts/tour.ts) under `tsc --strict`, then runs it against the
# service: a request or response that does not match the document fails the type-check,
# a status or field that does not match what the tour expects fails the run. The tools
# (versions pinned in scripts/client-smoke-ts/package-lock.json) go to TOOLS_DIR (default
# ~/.cache/tenantry-tools) and are reused; skipped with a message when npm's registry is
# unreachable. TENANTRY_BIN=path uses that binary instead of `cargo build`.
set -euo pipefail
cd "$(dirname "$0")/.."
src=scripts/client-smoke-ts
TOOLS_DIR=${TOOLS_DIR:-$HOME/.cache/tenantry-tools}
tools="$TOOLS_DIR/ts-client"
bin="$tools/node_modules/.bin"
# Reinstall when the lock file changed since the last install.
if ! [ -x "$bin/tsc" ] || ! [ -x "$bin/openapi-typescript" ] \
  || ! cmp -s "$src/package-lock.json" "$tools/package-lock.json"; then
  if ! command -v npm > /dev/null; then
    echo "--  skipped TypeScript client smoke: no npm"
    exit 0
  fi
  rm -rf "$tools" && mkdir -p "$tools"
  cp "$src/package.json" "$src/package-lock.json" "$tools/"
  if ! (cd "$tools" && timeout 600 npm ci --no-audit --no-fund) > "$TOOLS_DIR/ts-client.log" 2>&1; then
    rm -rf "$tools"
    if ! timeout 30 npm ping > /dev/null 2>&1; then
      echo "--  skipped TypeScript client smoke: could not install from npm (registry unreachable?)"
      exit 0
    fi
    tail -n 20 "$TOOLS_DIR/ts-client.log"
    exit 1
  fi
fi
. scripts/services.sh
PORT=${SMOKE_TS_PORT:-18092}
db="tenantry_client_ts_$(date +%s)"
export DATABASE_URL="${DATABASE_URL%/*}/$db"
if [ -z "${TENANTRY_BIN:-}" ]; then
  cargo build --bin tenantry 2>&1 | tail -n 1
  TENANTRY_BIN="${CARGO_TARGET_DIR:-target}/debug/tenantry"
fi
work=$(mktemp -d)
BIND_ADDR=127.0.0.1:$PORT RUST_LOG=warn REDIS_KEY_PREFIX="client:$db:" STORAGE_DIR="$work/files" \
  "$TENANTRY_BIN" serve > "$work/server.log" 2>&1 &
server=$!
cleanup() {
  kill "$server" 2> /dev/null; wait "$server" 2> /dev/null
  psql "${DATABASE_URL%/*}/postgres" -qc "drop database if exists \"$db\" with (force)" > /dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$PORT/health" > /dev/null 2>&1 && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$PORT/openapi.json" -o "$work/openapi.json" \
  || { tail -n 20 "$work/server.log"; exit 1; }
cp "$src/package.json" "$src/tsconfig.json" "$src/tour.ts" "$work/"
ln -s "$tools/node_modules" "$work/node_modules"
(cd "$work" && "$bin/openapi-typescript" openapi.json -o schema.d.ts > generate.log 2>&1) \
  || { cat "$work/generate.log"; exit 1; }
echo "generated schema.d.ts: $(grep -c '^    "/' "$work/schema.d.ts") paths, $(wc -l < "$work/schema.d.ts") lines"
# The tour must type-check against the generated types before it runs.
(cd "$work" && "$bin/tsc" --strict --noEmit -p .) || { echo "tour.ts does not type-check"; exit 1; }
echo "tour.ts type-checks under tsc --strict"
# Checked above: emit only.
(cd "$work" && "$bin/tsc" -p . --noCheck --outDir out)
timeout 120 node "$work/out/tour.js" "http://127.0.0.1:$PORT" \
  || { tail -n 20 "$work/server.log"; exit 1; }
