#!/usr/bin/env bash
# The worst request allowed of each kind (templates, simulation, usage, lists, JSON
# bodies, multipart), each measured in the server: CPU per request from
# /proc/<pid>/stat, peak memory as VmHWM over the RSS before it. Target: < 50 ms CPU and
# < 16 MiB each. Prints a Markdown table (docs/performance.md).
# Usage: scripts/bench-worst-requests.sh [--debug]   (--debug: a debug build, which
#   overstates CPU; BENCH_PRODUCT_BIN: measure this `tenantry` executable; BENCH_REPEAT: 10)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/services.sh

PORT=${BENCH_PORT:-18093}
work=$(mktemp -d)
db="tenantry_bench_$(date +%s)"
export DATABASE_URL="${DATABASE_URL%/*}/$db"
if [ -n "${BENCH_PRODUCT_BIN:-}" ]; then bin=$BENCH_PRODUCT_BIN
elif [ "${1:-}" = --debug ]; then
  cargo build --bin tenantry 2>&1 | tail -n 1; bin="${CARGO_TARGET_DIR:-target}/debug/tenantry"
else
  cargo build --profile bench --bin tenantry 2>&1 | tail -n 1; bin="${CARGO_TARGET_DIR:-target}/release/tenantry"
fi

# MIMALLOC_PURGE_DELAY=0: freed pages go back at once, so each request's peak shows.
env ${BENCH_ENV:-} APP_ENV=development BIND_ADDR=127.0.0.1:$PORT RUST_LOG=warn LOG_FORMAT=json \
  DATABASE_MAX_CONNECTIONS=8 REDIS_KEY_PREFIX="bench:$db:" RATE_LIMIT_ENABLED=false \
  STORAGE_BACKEND=fs STORAGE_DIR="$work/files" MIMALLOC_PURGE_DELAY=0 \
  "$bin" serve --no-workers > "$work/server.log" 2>&1 &
server=$!
cleanup() {
  kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true
  psql "${DATABASE_URL%/*}/postgres" -qc "drop database if exists \"$db\" with (force)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 1 300); do
  curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break; sleep 0.1
done

echo "command: scripts/bench-worst-requests.sh $*  ($(nproc) cores shared by server, PostgreSQL, Redis and client; $(basename "$bin") build)"
python3 scripts/bench/worst_requests.py "http://127.0.0.1:$PORT" "$server" "$DATABASE_URL" \
  "${BENCH_REPEAT:-10}"
