#!/usr/bin/env bash
# The request table of docs/performance.md, in one invocation (release builds, loopback):
# the product (`tenantry serve --no-workers`, logs at info as JSON lines to a file, rate
# limiting and metering on, the tenant's own limit lifted) beside the bare axum + sqlx
# server (benches/hot_path_bare.rs) running the same SQL, for GET /health, GET of a
# resource (JWT and API key), POST of a resource, the first page of the list, and login
# (argon2-bound; no bare counterpart). wrk -t2 -c32 (login: -c8) for BENCH_SECONDS (10).
# Prints req/s, p50, p99, the server's CPU per request, the ratio to bare, and peak RSS.
# Usage: scripts/bench-table.sh   (BENCH_PRODUCT_BIN: measure this `tenantry` instead)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/services.sh
. scripts/bench/lib.sh
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }

DURATION=${BENCH_SECONDS:-10}
POOL=${BENCH_POOL:-16}
PORT=$(free_port 18580)
BARE_PORT=$(free_port $((PORT + 1)))
work=$(mktemp -d)
db="tenantry_bench_table_$(date +%s)"
export DATABASE_URL="${DATABASE_URL%/*}/$db"
server="" bare=""
stop() { if [ -n "$1" ]; then kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; fi; }
cleanup() {
  stop "$bare"; stop "$server"
  psql "${DATABASE_URL%/*}/postgres" -qc "drop database if exists \"$db\" with (force)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "building (release)..." >&2
product=${BENCH_PRODUCT_BIN:-$(cargo build --profile bench --bin tenantry --message-format=json 2>/dev/null | executable tenantry)}
bare_bin=$(cargo bench --bench hot_path_bare --no-run --message-format=json 2>/dev/null | executable hot_path_bare)
[ -x "$product" ] && [ -x "$bare_bin" ] || { echo "build failed: run cargo build --profile bench" >&2; exit 1; }
cp "$product" "$work/tenantry"; cp "$bare_bin" "$work/hot_path_bare"

admin_email=ops@table.example.com
admin_password="table operator $RANDOM$RANDOM"
APP_ENV=development BIND_ADDR=127.0.0.1:$PORT RUST_LOG=info LOG_FORMAT=json \
  DATABASE_MAX_CONNECTIONS=$POOL REDIS_KEY_PREFIX="bench:$db:" \
  RATE_LIMIT_PUBLIC_PER_MINUTE=10000000 \
  PLATFORM_ADMIN_EMAIL=$admin_email PLATFORM_ADMIN_PASSWORD=$admin_password \
  "$work/tenantry" serve --no-workers > "$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 150); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break; sleep 0.1; done
python3 scripts/bench/hot_path.py "http://127.0.0.1:$PORT" "$work" "$admin_email" "$admin_password" >/dev/null
BARE_BIND_ADDR=127.0.0.1:$BARE_PORT BARE_TENANT_ID=$(cat "$work/tenant_id") \
  DATABASE_MAX_CONNECTIONS=$POOL "$work/hot_path_bare" > "$work/bare.log" 2>&1 &
bare=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$BARE_PORT/health" >/dev/null 2>&1 && break; sleep 0.1; done

api="http://127.0.0.1:$PORT" base="http://127.0.0.1:$BARE_PORT"
resource=$(cat "$work/resource_id")
jwt="Authorization: Bearer $(cat "$work/jwt")"
key="X-API-Key: $(cat "$work/api_key")"
new='{"name": "bench", "data": {"colour": "blue", "size": 3}}'

# row NAME METHOD PATH HEADER BODY BARE_PATH [CONNECTIONS]
row() {
  local p b=""
  p=$(BENCH_METHOD=$2 BENCH_HEADER=$4 BENCH_BODY=$5 wrk_load "$server" "$DURATION" "$api$3" scripts/bench/request.lua "${7:-32}")
  if [ -n "$6" ]; then
    b=$(BENCH_METHOD=$2 BENCH_BODY=$5 wrk_load "$bare" "$DURATION" "$base$6" scripts/bench/request.lua "${7:-32}")
  fi
  awk -v name="$1" -v p="$p" -v b="$b" 'BEGIN {
    split(p, x, " "); split(b, y, " ")
    if (x[4] > 0) name = name " (" x[4] " non-2xx!)"
    if (b == "") printf "| %s | %d | %.2f | %.2f | %d | – | – | – | – |\n", name, x[1], x[2], x[3], x[5]
    else printf "| %s | %d | %.2f | %.2f | %d | %d | %.2f | %.2f | %.2f |\n", name, x[1], x[2], x[3], x[5], y[1], y[2], y[3], x[1] / y[1] }'
}

echo "command: scripts/bench-table.sh  ($(nproc) cores; servers, PostgreSQL, Redis and wrk share them)"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg); wrk -t2 -c32 -d${DURATION}s (login -c8); pools of $POOL"
echo
echo "| request | req/s | p50 ms | p99 ms | server CPU µs/req | bare req/s | bare p50 | bare p99 | ×bare |"
echo "|---|---|---|---|---|---|---|---|---|"
row "GET /health" GET /health "" "" /health
row "GET /api/v1/resources/{id}, JWT" GET "/api/v1/resources/$resource" "$jwt" "" "/resources/$resource"
row "GET /api/v1/resources/{id}, API key" GET "/api/v1/resources/$resource" "$key" "" "/resources/$resource"
row "GET /api/v1/resources (first page of 20), JWT" GET "/api/v1/resources?limit=20" "$jwt" "" /resources
row "POST /api/v1/resources, JWT" POST /api/v1/resources "$jwt" "$new" /resources
row "POST /api/v1/auth/login (argon2)" POST /api/v1/auth/login "" "$(cat "$work/login.json")" "" 8
echo
echo "server RSS: product $(rss_of "$server"), bare $(rss_of "$bare")"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
