#!/usr/bin/env bash
# Identity benchmarks against a release build on loopback:
#   1. onboarding latency (p50/p99 of BENCH_ONBOARDINGS=200 sequential onboardings);
#   2. authenticated GET /api/v1/tenants/current: requests/s with a JWT vs an API key;
#   3. a login storm (argon2) and the p99 of other requests, against their idle p99.
# Needs wrk (installed with apt when missing). Usage: scripts/bench-identity.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/services.sh
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }

N=${BENCH_ONBOARDINGS:-200}
DURATION=${BENCH_SECONDS:-10}
PORT=${BENCH_PORT:-18080}
work=$(mktemp -d)
db="tenantry_bench_$(date +%s)"
export DATABASE_URL="${DATABASE_URL%/*}/$db"

cargo build --profile bench --bin tenantry 2>&1 | tail -n 1
APP_ENV=development BIND_ADDR=127.0.0.1:$PORT RUST_LOG=warn LOG_FORMAT=json \
  DATABASE_MAX_CONNECTIONS=16 REDIS_KEY_PREFIX="bench:$db:" \
  target/release/tenantry serve > "$work/server.log" 2>&1 &
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

echo "command: scripts/bench-identity.sh  ($(nproc) cores; server, PostgreSQL, Redis and wrk share them)"
python3 scripts/bench/identity.py "http://127.0.0.1:$PORT" "$N" "$work"

url="http://127.0.0.1:$PORT/api/v1/tenants/current"
rps() { awk '/Requests\/sec/ {print $2}'; }
p99() { awk '$1 == "99%" {print $2}'; }

jwt_rps=$(BENCH_HEADER="Authorization: Bearer $(cat "$work/jwt")" \
  wrk -t2 -c32 -d"${DURATION}s" -s scripts/bench/header.lua "$url" | rps)
key_rps=$(BENCH_HEADER="X-API-Key: $(cat "$work/api_key")" \
  wrk -t2 -c32 -d"${DURATION}s" -s scripts/bench/header.lua "$url" | rps)
echo "GET /api/v1/tenants/current, wrk -t2 -c32 -d${DURATION}s:"
echo "  JWT (RS256):  $jwt_rps req/s"
echo "  API key:      $key_rps req/s  (API key / JWT = $(awk -v a="$key_rps" -v b="$jwt_rps" 'BEGIN {printf "%.2f", a/b}'))"

get_p99() {
  BENCH_HEADER="X-API-Key: $(cat "$work/api_key")" \
    wrk -t1 -c4 -d"${DURATION}s" --latency -s scripts/bench/header.lua "$url" | p99
}
idle=$(get_p99)
BENCH_LOGIN_FILE="$work/login.json" wrk -t1 -c16 -d"$((DURATION + 2))s" \
  -s scripts/bench/login.lua "http://127.0.0.1:$PORT/api/v1/auth/login" > "$work/storm.txt" &
storm=$!
sleep 1
loaded=$(get_p99)
wait "$storm"
logins=$(rps < "$work/storm.txt")
echo "login storm (16 concurrent logins, $logins logins/s) vs other requests (4 concurrent GETs):"
echo "  p99 idle:        $idle"
echo "  p99 under storm: $loaded"
