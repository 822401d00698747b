#!/usr/bin/env bash
# Background jobs end to end: echo jobs/s from submission (POST /api/v1/jobs) to
# `succeeded`, with one and with two `tenantry worker` processes, release build.
# Jobs are submitted by wrk (-t1 -c16) for BENCH_SECONDS (5) per run.
# Usage: scripts/bench-jobs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/services.sh

SECONDS_PER_RUN=${BENCH_SECONDS:-5}
PORT=${BENCH_PORT:-18081}
work=$(mktemp -d)
db="tenantry_benchjobs_$(date +%s)"
base_url="${DATABASE_URL%/*}"
export DATABASE_URL="$base_url/$db"
export APP_ENV=development RUST_LOG=warn LOG_FORMAT=json DATABASE_MAX_CONNECTIONS=16
export REDIS_KEY_PREFIX="bench:$db:" SIGNUP_ENABLED=true
# A free tenant's 60 requests a minute would refuse the load (the limiter is measured by
# bench-hot-path.sh and bench-limits.sh).
export RATE_LIMIT_ENABLED=false
# wrk cuts its last requests off mid-flight; a job committed by such a request waits for
# the reconciler, so let it look again after 2 s instead of a minute.
export JOB_REQUEUE_AFTER_MS=2000 JOB_RECONCILE_MS=500

cargo build --profile bench --bin tenantry 2>&1 | tail -n 1
built=target/release/tenantry
[ -x "$built" ] || built="${CARGO_TARGET_DIR:-$HOME/.cache/tenantry-target}/release/tenantry"
# A private copy: the target directory may be shared with other checkouts' builds.
bin="$work/tenantry"
cp "$built" "$bin"
"$bin" --help | grep -q worker || { echo "bench-jobs: $built has no worker command (another checkout's build?)" >&2; exit 1; }

BIND_ADDR=127.0.0.1:$PORT "$bin" serve --no-workers > "$work/server.log" 2>&1 &
server=$!
workers=()
cleanup() {
  kill "$server" "${workers[@]}" 2>/dev/null; wait 2>/dev/null || true
  cp "$work/worker.log" /tmp/bench-jobs-worker.log 2>/dev/null || true
  psql "$base_url/postgres" -qc "drop database if exists \"$db\" with (force)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break; sleep 0.1
done

echo "command: scripts/bench-jobs.sh  (wrk -t1 -c16 -d${SECONDS_PER_RUN}s submitting; $(nproc) cores shared by API, workers, PostgreSQL, Redis and wrk)"
# A premium tenant (32 jobs at once: the plan cap of fair sharing), set before the workers
# start: they read the caps when they start.
setup() {
  read -r tenant key < <(python3 scripts/bench/jobs.py "http://127.0.0.1:$PORT")
  schema="t_${tenant//-/}"
  psql "$DATABASE_URL" -qc "update platform.tenants set plan = 'premium' where id = '$tenant'"
}
submit() {
  BENCH_HEADER="X-API-Key: $key" wrk -t1 -c16 -d"${SECONDS_PER_RUN}s" \
    -s scripts/bench/submit_job.lua "http://127.0.0.1:$PORT/api/v1/jobs" > "$work/wrk.txt"
}
start_workers() {
  workers=()
  for _ in $(seq 1 "$1"); do
    "$bin" worker >> "$work/worker.log" 2>&1 &
    workers+=($!)
  done
}
wait_done() {
  for _ in $(seq 1 600); do
    left=$(psql "$DATABASE_URL" -tAc "select count(*) from \"$1\".jobs where status <> 'succeeded'")
    [ "$left" = 0 ] && return; sleep 0.2
  done
  echo "bench-jobs: jobs left unfinished" >&2
}
stop_workers() { kill -TERM "${workers[@]}"; wait "${workers[@]}" 2>/dev/null || true; }

# End to end: clients submit while the workers run; from the first submission to the
# last success.
live() {
  setup
  start_workers "$1"; sleep 1
  submit
  wait_done "$schema"
  psql "$DATABASE_URL" -tAc "select format('end to end, %s worker process(es): %s jobs in %s s = %s jobs/s (the submissions alone took %s s)',
      $1, count(*), round(extract(epoch from max(finished_at) - min(created_at))::numeric, 2),
      round(count(*) / extract(epoch from max(finished_at) - min(created_at))::numeric),
      round(extract(epoch from max(created_at) - min(created_at))::numeric, 2))
    from \"$schema\".jobs where status = 'succeeded'"
  stop_workers
}

# Worker throughput alone: the jobs wait in the queue, then the workers start; from the
# first start to the last success.
drain() {
  setup
  submit
  start_workers "$1"
  wait_done "$schema"
  psql "$DATABASE_URL" -tAc "select format('queue drain, %s worker process(es): %s jobs in %s s = %s jobs/s',
      $1, count(*), round(extract(epoch from max(finished_at) - min(started_at))::numeric, 2),
      round(count(*) / extract(epoch from max(finished_at) - min(started_at))::numeric))
    from \"$schema\".jobs where status = 'succeeded'"
  stop_workers
}
live 1
live 2
drain 1
drain 2
