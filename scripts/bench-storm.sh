#!/usr/bin/env bash
# Server memory under onboarding and login storms (argon2 on every one):
# BENCH_ONBOARDINGS (300) tenants onboarded, then BENCH_LOGINS (600) logins, from
# BENCH_CLIENTS (8) concurrent clients, sampling the server's RSS. Target: peak < 150 MiB.
# Usage: scripts/bench-storm.sh [--debug]   (--debug: a debug build instead of release;
#   BENCH_PRODUCT_BIN: measure this `tenantry` executable instead of building one)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/services.sh

PORT=${BENCH_PORT:-18090}
work=$(mktemp -d)
db="tenantry_bench_$(date +%s)"
export DATABASE_URL="${DATABASE_URL%/*}/$db"
if [ -n "${BENCH_PRODUCT_BIN:-}" ]; then bin=$BENCH_PRODUCT_BIN
elif [ "${1:-}" = --debug ]; then
  cargo build --bin tenantry 2>&1 | tail -n 1; bin="${CARGO_TARGET_DIR:-target}/debug/tenantry"
else
  cargo build --profile bench --bin tenantry 2>&1 | tail -n 1; bin="${CARGO_TARGET_DIR:-target}/release/tenantry"
fi

env ${BENCH_ENV:-} APP_ENV=development BIND_ADDR=127.0.0.1:$PORT RUST_LOG=warn LOG_FORMAT=json \
  DATABASE_MAX_CONNECTIONS=16 REDIS_KEY_PREFIX="bench:$db:" RATE_LIMIT_ENABLED=false \
  "$bin" serve --no-workers > "$work/server.log" 2>&1 &
server=$!
cleanup() {
  kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true
  psql "${DATABASE_URL%/*}/postgres" -qc "drop database if exists \"$db\" with (force)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break; sleep 0.1
done

echo "command: scripts/bench-storm.sh $*  ($(nproc) cores shared by server, PostgreSQL, Redis and clients)"
python3 scripts/bench/storm.py "http://127.0.0.1:$PORT" "$server" \
  "${BENCH_ONBOARDINGS:-300}" "${BENCH_LOGINS:-600}" "${BENCH_CLIENTS:-8}"
