#!/usr/bin/env bash
# Fair sharing of the job workers: N noisy premium tenants keep ten times what the
# workers can run queued (echo jobs of BENCH_DELAY_MS), while one quiet free tenant
# submits an echo job a second. Prints the quiet tenant's start latency (submission →
# start, p50/p99; target p99 < 1 s) and the noisy tenants' throughput.
#
#   scripts/bench-jobs-fairness.sh   (BENCH_NOISY=4 BENCH_SECONDS=30 BENCH_DELAY_MS=200
#                                     JOB_CONCURRENCY=32)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/services.sh
. scripts/bench/lib.sh

NOISY=${BENCH_NOISY:-4}
SECONDS_PER_RUN=${BENCH_SECONDS:-30}
DELAY_MS=${BENCH_DELAY_MS:-200}
export JOB_CONCURRENCY=${JOB_CONCURRENCY:-32}
PORT=$(free_port "${BENCH_PORT:-18091}")
BACKLOG=$((JOB_CONCURRENCY * 10 / NOISY))
[ "$BACKLOG" -le 100 ] || BACKLOG=100
work=$(mktemp -d)
db="tenantry_benchfair_$(date +%s)"
base_url="${DATABASE_URL%/*}"
export DATABASE_URL="$base_url/$db"
export APP_ENV=development RUST_LOG=warn LOG_FORMAT=json DATABASE_MAX_CONNECTIONS=16
export REDIS_KEY_PREFIX="bench:$db:" RATE_LIMIT_ENABLED=false

cargo build --profile bench --bin tenantry 2>&1 | tail -n 1
bin="${CARGO_TARGET_DIR:-target}/release/tenantry"
[ -x "$bin" ] || bin="$HOME/.cache/tenantry-target/release/tenantry"

BIND_ADDR=127.0.0.1:$PORT "$bin" serve --no-workers > "$work/server.log" 2>&1 &
server=$!
worker=
cleanup() {
  kill "$server" $worker 2>/dev/null; wait 2>/dev/null || true
  psql "$base_url/postgres" -qc "drop database if exists \"$db\" with (force)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break; sleep 0.1
done

python3 scripts/bench/fairness.py setup "http://127.0.0.1:$PORT" "$NOISY" > "$work/tenants"
noisy_ids=$(awk '$1 == "noisy" { printf "%s\x27%s\x27", (n++ ? "," : ""), $2 }' "$work/tenants")
quiet_id=$(awk '$1 == "quiet" { print $2 }' "$work/tenants")
psql "$DATABASE_URL" -qc "update platform.tenants set plan = 'premium' where id in ($noisy_ids)"
# Started after the plans are set: the worker reads the caps when it starts.
"$bin" worker > "$work/worker.log" 2>&1 &
worker=$!
sleep 1

echo "command: scripts/bench-jobs-fairness.sh  ($NOISY noisy premium tenants, $BACKLOG queued each = 10 x JOB_CONCURRENCY=$JOB_CONCURRENCY, echo jobs of $DELAY_MS ms; one quiet free tenant, a job a second; ${SECONDS_PER_RUN}s; $(nproc) cores shared by API, worker, PostgreSQL, Redis and the load)"
python3 scripts/bench/fairness.py load "http://127.0.0.1:$PORT" "$work/tenants" "$SECONDS_PER_RUN" "$BACKLOG" "$DELAY_MS" > "$work/quiet"
sleep 2

schema() { echo "t_${1//-/}"; }
psql "$DATABASE_URL" -tAc "select format('quiet tenant: %s jobs, start latency p50 %s ms, p99 %s ms, max %s ms',
    count(*),
    round((percentile_cont(0.5) within group (order by extract(epoch from started_at - created_at)) * 1000)::numeric),
    round((percentile_cont(0.99) within group (order by extract(epoch from started_at - created_at)) * 1000)::numeric),
    round((max(extract(epoch from started_at - created_at)) * 1000)::numeric))
  from \"$(schema "$quiet_id")\".jobs where type = 'echo' and started_at is not null"
union=""
for id in $(awk '$1 == "noisy" { print $2 }' "$work/tenants"); do
  union+="${union:+ union all }select finished_at from \"$(schema "$id")\".jobs where status = 'succeeded' and type = 'echo'"
done
psql "$DATABASE_URL" -tAc "select format('noisy tenants: %s jobs in %s s = %s jobs/s (capacity %s slots of %s ms: at most %s jobs/s)',
    count(*), round(extract(epoch from max(finished_at) - min(finished_at))::numeric, 1),
    round(count(*) / nullif(extract(epoch from max(finished_at) - min(finished_at)), 0)::numeric),
    $JOB_CONCURRENCY, $DELAY_MS, round($JOB_CONCURRENCY * 1000.0 / $DELAY_MS))
  from ($union) as done"
