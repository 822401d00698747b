#!/usr/bin/env bash
# Background jobs end to end: echo jobs/s from submission (POST /api/v1/jobs) to
# `succeeded`, with one and with two `tenantry worker` processes, release build.
# Usage: scripts/bench-jobs.sh   (BENCH_JOBS=5000 jobs per run, BENCH_THREADS=8 clients)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/services.sh

N=${BENCH_JOBS:-5000}
THREADS=${BENCH_THREADS:-8}
PORT=${BENCH_PORT:-18081}
work=$(mktemp -d)
db="tenantry_benchjobs_$(date +%s)"
base_url="${DATABASE_URL%/*}"
export DATABASE_URL="$base_url/$db"
export APP_ENV=development RUST_LOG=warn LOG_FORMAT=json DATABASE_MAX_CONNECTIONS=16
export REDIS_KEY_PREFIX="bench:$db:" SIGNUP_ENABLED=true

cargo build --profile bench --bin tenantry 2>&1 | tail -n 1
bin=target/release/tenantry
[ -x "$bin" ] || bin="${CARGO_TARGET_DIR:-$HOME/.cache/tenantry-target}/release/tenantry"

BIND_ADDR=127.0.0.1:$PORT "$bin" serve --no-workers > "$work/server.log" 2>&1 &
server=$!
workers=()
cleanup() {
  kill "$server" "${workers[@]}" 2>/dev/null; wait 2>/dev/null || true
  psql "$base_url/postgres" -qc "drop database if exists \"$db\" with (force)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break; sleep 0.1
done

echo "command: scripts/bench-jobs.sh  (BENCH_JOBS=$N, $THREADS client threads, $(nproc) cores shared by API, workers, PostgreSQL, Redis and the client)"
run() {
  local procs=$1
  workers=()
  for _ in $(seq 1 "$procs"); do
    "$bin" worker >> "$work/worker.log" 2>&1 &
    workers+=($!)
  done
  sleep 1
  tenant=$(python3 scripts/bench/jobs.py "http://127.0.0.1:$PORT" "$N" "$THREADS" | head -n 1)
  schema="t_${tenant//-/}"
  for _ in $(seq 1 600); do
    left=$(psql "$DATABASE_URL" -tAc "select count(*) from \"$schema\".jobs where status <> 'succeeded'")
    [ "$left" = 0 ] && break; sleep 0.2
  done
  psql "$DATABASE_URL" -tAc "select format('%s worker process(es): %s jobs in %s s = %s jobs/s (submit to succeeded)',
      $procs, count(*), round(extract(epoch from max(finished_at) - min(created_at))::numeric, 2),
      round(count(*) / extract(epoch from max(finished_at) - min(created_at))::numeric))
    from \"$schema\".jobs where status = 'succeeded'"
  kill -TERM "${workers[@]}"; wait "${workers[@]}" 2>/dev/null || true
}
run 1
run 2
