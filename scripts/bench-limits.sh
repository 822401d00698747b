#!/usr/bin/env bash
# What rate limiting and metering cost on the hot path: GET /api/v1/resources/{id} with an
# API key, wrk -t2 -c32, against a release build with both layers off and on, alternated
# BENCH_RUNS times (default 3) so that a busy machine hurts both alike. The tenant's own
# limit is raised out of the way, so every request is checked (tenant + global buckets)
# and metered, and none is refused. Modes (BENCH_MODES, default all three): off (both
# layers off), on (as deployed: busy tenants reserve slices of their allowance), exact
# (RATE_LIMIT_AMORTIZE=false: one Redis round trip per request).
# Needs wrk (installed with apt when missing). Usage: scripts/bench-limits.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/services.sh
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }

RUNS=${BENCH_RUNS:-3}
DURATION=${BENCH_SECONDS:-10}
PORT=${BENCH_PORT:-18090}
work=$(mktemp -d)
db="tenantry_bench_limits_$(date +%s)"
export DATABASE_URL="${DATABASE_URL%/*}/$db"
target=${CARGO_TARGET_DIR:-target}

cargo build --release --bin tenantry 2>&1 | tail -n 1
server=
start() { # $1 = off | on | exact (on, every check in Redis)
  local on=true amortize=true
  [ "$1" = off ] && on=false
  [ "$1" = exact ] && amortize=false
  APP_ENV=development BIND_ADDR=127.0.0.1:$PORT RUST_LOG=warn LOG_FORMAT=json \
    DATABASE_MAX_CONNECTIONS=16 REDIS_KEY_PREFIX="bench:$db:" \
    PLATFORM_ADMIN_EMAIL=ops@bench.example.com PLATFORM_ADMIN_PASSWORD="benchmark password 1" \
    RATE_LIMIT_ENABLED=$on METERING_ENABLED=$on RATE_LIMIT_AMORTIZE=$amortize \
    "$target/release/tenantry" serve >> "$work/server.log" 2>&1 &
  server=$!
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && return; sleep 0.1
  done
  echo "the server did not start:"; tail "$work/server.log"; exit 1
}
stop() { kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true; }
cleanup() {
  stop
  psql "${DATABASE_URL%/*}/postgres" -qc "drop database if exists \"$db\" with (force)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

start on
python3 scripts/bench/limits.py "http://127.0.0.1:$PORT" "$work"
stop
url="http://127.0.0.1:$PORT$(cat "$work/path")"

echo "command: scripts/bench-limits.sh  ($(nproc) cores; server, PostgreSQL, Redis and wrk share them)"
echo "GET /api/v1/resources/{id}, X-API-Key, wrk -t2 -c32 -d${DURATION}s, RUST_LOG=warn"
printf "%-4s %-22s %10s %9s %9s\n" run layers req/s p50 p99
for run in $(seq 1 "$RUNS"); do
  for layers in ${BENCH_MODES:-off on exact}; do
    start "$layers"
    # Warm the caches and the connection pools before measuring.
    BENCH_HEADER="X-API-Key: $(cat "$work/api_key")" \
      wrk -t2 -c32 -d2s -s scripts/bench/header.lua "$url" >/dev/null
    out=$(BENCH_HEADER="X-API-Key: $(cat "$work/api_key")" \
      wrk -t2 -c32 -d"${DURATION}s" --latency -s scripts/bench/header.lua "$url")
    stop
    non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
    case $layers in
      off) label="both layers off" ;;
      on) label="limits+metering on" ;;
      exact) label="on, no slices" ;;
    esac
    printf "%-4s %-22s %10s %9s %9s %s\n" "$run" "$label" \
      "$(echo "$out" | awk '/Requests\/sec/ {print $2}')" \
      "$(echo "$out" | awk '$1 == "50%" {print $2}')" \
      "$(echo "$out" | awk '$1 == "99%" {print $2}')" \
      "${non2xx:+(non-2xx: $non2xx)}"
  done
done
rows=$(psql "$DATABASE_URL" -Atc "select coalesce(sum(value), 0) from platform.usage_rollups where tenant_id = '$(cat "$work/tenant")' and metric = 'api_requests'")
echo "metered api_requests written: $rows"
