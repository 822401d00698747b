#!/usr/bin/env bash
# The hot path against a bare handler, in one invocation (release builds, loopback):
#   - a bare axum + sqlx server (benches/hot_path_bare.rs) running the same primary-key
#     select on the same tenant table, the baseline, with sqlx's pool as it comes (it
#     pings each connection before handing it out);
#   - the same bare server with the product's pool settings (no ping for a connection
#     used within the last second: `BARE_POOL=product`), "bare′", so that the distance
#     the product's layers add is also shown like for like;
#   - the product (`tenantry serve --no-workers`), logs at info as JSON lines to a file;
# then wrk -t2 -c32 on GET /api/v1/resources/{id} with a JWT, with an API key, and on the
# two bare handlers, BENCH_RUNS times (interleaved, so drift hits all four alike). Prints
# requests/s, p50, p99, the ratios to the bare handlers and the servers' RSS.
#
# Usage: scripts/bench-hot-path.sh [--layers-off]
#   --layers-off   RATE_LIMIT_ENABLED=false METERING_ENABLED=false for the product;
#                  otherwise those variables pass through as set (the product's defaults).
# Settings: BENCH_RUNS (3), BENCH_SECONDS (10), BENCH_CONNECTIONS (32), BENCH_POOL (16),
#           BENCH_PORT (the first free one from 18380; the bare handler takes the next free
#           one), BENCH_PRODUCT_BIN
#           (measure this `tenantry` executable instead of building one), BENCH_PERF (a
#           file: after the runs, `perf record -g` of the product during one more JWT run,
#           for `perf report -i FILE`).
# Needs wrk (installed with apt when missing): a C load generator with two threads costs
# the shared cores less than any script, and the other bench scripts use it too.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/services.sh
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }

if [ "${1:-}" = "--layers-off" ]; then
  export RATE_LIMIT_ENABLED=false METERING_ENABLED=false
  layers="rate limiting and metering OFF"
else
  layers="rate limiting and metering as configured (RATE_LIMIT_ENABLED=${RATE_LIMIT_ENABLED:-default}, METERING_ENABLED=${METERING_ENABLED:-default})"
fi
RUNS=${BENCH_RUNS:-3}
DURATION=${BENCH_SECONDS:-10}
CONNS=${BENCH_CONNECTIONS:-32}
POOL=${BENCH_POOL:-16}
# The first port from $1 on which nothing listens (other benchmarks may be running).
free_port() {
  local p
  for p in $(seq "$1" $(($1 + 200))); do
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
  echo "no free port near $1" >&2; return 1
}
PORT=${BENCH_PORT:-$(free_port 18380)}
BARE_PORT=$(free_port $((PORT + 1)))
work=$(mktemp -d)
db="tenantry_bench_hot_$(date +%s)"
export DATABASE_URL="${DATABASE_URL%/*}/$db"
server="" bare="" bare2=""
stop() { if [ -n "$1" ]; then kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; fi; }
# Exits naming the server that is not running (its log shows why).
alive() { kill -0 "$1" 2>/dev/null || { echo "$2 is not running:" >&2; tail -n 20 "$3" >&2; exit 1; }; }
cleanup() {
  stop "$bare"; stop "$bare2"; stop "$server"
  psql "${DATABASE_URL%/*}/postgres" -qc "drop database if exists \"$db\" with (force)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# Executables from cargo's own report, wherever the target directory is.
executable() { python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == sys.argv[1]:
        print(m["executable"])' "$1"; }
echo "building (release)..." >&2
# BENCH_PRODUCT_BIN: an already built `tenantry` to measure instead (A/B comparisons).
product=${BENCH_PRODUCT_BIN:-$(cargo build --profile bench --bin tenantry --message-format=json 2>/dev/null | executable tenantry)}
bare_bin=$(cargo bench --bench hot_path_bare --no-run --message-format=json 2>/dev/null | executable hot_path_bare)
[ -x "$product" ] && [ -x "$bare_bin" ] || { echo "build failed: run cargo build --profile bench" >&2; exit 1; }
# Private copies: a build in another worktree may replace the shared target's binaries.
cp "$product" "$work/tenantry"; cp "$bare_bin" "$work/hot_path_bare"
product=$work/tenantry; bare_bin=$work/hot_path_bare

admin_email=ops@hot-path.example.com
admin_password="hot path operator $RANDOM$RANDOM"
APP_ENV=development BIND_ADDR=127.0.0.1:$PORT RUST_LOG=info LOG_FORMAT=json \
  DATABASE_MAX_CONNECTIONS=$POOL REDIS_KEY_PREFIX="bench:$db:" \
  PLATFORM_ADMIN_EMAIL=$admin_email PLATFORM_ADMIN_PASSWORD=$admin_password \
  "$product" serve --no-workers > "$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 150); do
  curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break; sleep 0.1
done
alive "$server" "the product" "$work/server.log"
python3 scripts/bench/hot_path.py "http://127.0.0.1:$PORT" "$work" "$admin_email" "$admin_password"

BARE_BIND_ADDR=127.0.0.1:$BARE_PORT BARE_TENANT_ID=$(cat "$work/tenant_id") \
  DATABASE_MAX_CONNECTIONS=$POOL "$bare_bin" > "$work/bare.log" 2>&1 &
bare=$!
BARE2_PORT=$(free_port $((BARE_PORT + 1)))
BARE_POOL=product BARE_BIND_ADDR=127.0.0.1:$BARE2_PORT BARE_TENANT_ID=$(cat "$work/tenant_id") \
  DATABASE_MAX_CONNECTIONS=$POOL "$bare_bin" > "$work/bare2.log" 2>&1 &
bare2=$!
resource=$(cat "$work/resource_id")
for port in "$BARE_PORT" "$BARE2_PORT"; do
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$port/resources/$resource" >/dev/null 2>&1 && break; sleep 0.1
  done
done

alive "$bare" "the bare handler" "$work/bare.log"
alive "$bare2" "the bare handler with the product's pool" "$work/bare2.log"
product_url="http://127.0.0.1:$PORT/api/v1/resources/$resource"
bare_url="http://127.0.0.1:$BARE_PORT/resources/$resource"
bare2_url="http://127.0.0.1:$BARE2_PORT/resources/$resource"
# CPU time (user + system, clock ticks) a process has used so far.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# One wrk run → "req/s p50_ms p99_ms non2xx cpu_us_per_request": the server's CPU time
# per request is what the other engineers' compiles on the shared cores disturb least.
load() { # load PID SECONDS URL [HEADER]
  local out before after
  before=$(cpu_ticks "$1")
  out=$(BENCH_HEADER="${4:-X-Bench: 1}" wrk -t2 -c"$CONNS" -d"$2s" --latency \
    -s scripts/bench/header.lua "$3")
  after=$(cpu_ticks "$1")
  awk -v ticks=$((after - before)) -v hz="$(getconf CLK_TCK)" '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0;
                     if (v ~ /s$/) return v * 1000; return v }
    /requests in/ { n = $1 }
    /Requests\/sec/ { rps = $2 }
    $1 == "50%" { p50 = ms($2) }
    $1 == "99%" { p99 = ms($2) }
    /Non-2xx or 3xx responses/ { bad = $NF }
    END { printf "%.0f %.2f %.2f %d %.0f\n", rps, p50, p99, bad, ticks / hz * 1e6 / n }' <<< "$out"
}
jwt="Authorization: Bearer $(cat "$work/jwt")"
key="X-API-Key: $(cat "$work/api_key")"
load "$bare" 3 "$bare_url" >/dev/null
load "$bare2" 3 "$bare2_url" >/dev/null
load "$server" 3 "$product_url" "$jwt" >/dev/null
load "$server" 3 "$product_url" "$key" >/dev/null

echo "command: scripts/bench-hot-path.sh $*  ($(nproc) cores; servers, PostgreSQL, Redis and wrk share them)"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg); $layers; logs: info, JSON, to a file"
echo "wrk -t2 -c$CONNS -d${DURATION}s --latency, pools of $POOL, GET /api/v1/resources/{id}"
echo
echo "CPU = the server's CPU time per request (user + system); ×bare and ×bare′ = the"
echo "product's req/s over the bare handler's (sqlx's pool as it comes) and over bare′'s"
echo "(the bare handler with the product's pool settings)"
echo
printf '| run | bare req/s | p50 | p99 | CPU | bare′ req/s | p99 | CPU | JWT req/s | p50 | p99 | CPU | ×bare | ×bare′ | API key req/s | p50 | p99 | CPU | ×bare | ×bare′ |\n'
printf '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n'
bad_total=0
for run in $(seq 1 "$RUNS"); do
  read -r b_rps b_p50 b_p99 b_bad b_cpu < <(load "$bare" "$DURATION" "$bare_url")
  read -r c_rps c_p50 c_p99 c_bad c_cpu < <(load "$bare2" "$DURATION" "$bare2_url")
  read -r j_rps j_p50 j_p99 j_bad j_cpu < <(load "$server" "$DURATION" "$product_url" "$jwt")
  read -r k_rps k_p50 k_p99 k_bad k_cpu < <(load "$server" "$DURATION" "$product_url" "$key")
  bad_total=$((bad_total + b_bad + c_bad + j_bad + k_bad))
  awk -v r="$run" -v b="$b_rps" -v b50="$b_p50" -v b99="$b_p99" -v bc="$b_cpu" \
      -v c="$c_rps" -v c99="$c_p99" -v cc="$c_cpu" \
      -v j="$j_rps" -v j50="$j_p50" -v j99="$j_p99" -v jc="$j_cpu" \
      -v k="$k_rps" -v k50="$k_p50" -v k99="$k_p99" -v kc="$k_cpu" \
    'BEGIN { printf "| %d | %d | %.2f ms | %.2f ms | %d µs | %d | %.2f ms | %d µs | %d | %.2f ms | %.2f ms | %d µs | %.2f | %.2f | %d | %.2f ms | %.2f ms | %d µs | %.2f | %.2f |\n",
             r, b, b50, b99, bc, c, c99, cc, j, j50, j99, jc, j / b, j / c, k, k50, k99, kc, k / b, k / c }'
done
echo
rss() { awk -v f="$2" '$1 == f":" { printf "%.0f MiB", $2 / 1024 }' "/proc/$1/status"; }
echo "server RSS after the runs: product $(rss "$server" VmRSS) (peak $(rss "$server" VmHWM)), bare $(rss "$bare" VmRSS) (peak $(rss "$bare" VmHWM)), bare′ $(rss "$bare2" VmRSS)"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg); log file: $(wc -l < "$work/server.log") lines"
dropped=$(curl -s "http://127.0.0.1:$PORT/metrics" | awk '/^tenantry_log_lines_dropped_total/ { print $2 }')
echo "log lines dropped by the non-blocking writer: ${dropped:-0}"
if [ -n "${BENCH_PERF:-}" ]; then
  perf record -g -F 997 -p "$server" -o "$BENCH_PERF" -- sleep "$DURATION" 2>/dev/null &
  recorder=$!
  load "$server" "$DURATION" "$product_url" "$jwt" >/dev/null
  wait "$recorder"
  echo "perf profile of one JWT run: perf report -i $BENCH_PERF --no-children"
fi
if [ "$bad_total" -ne 0 ]; then
  echo "WARNING: $bad_total responses were not 2xx: the figures above are not of successful requests" >&2
  exit 1
fi
