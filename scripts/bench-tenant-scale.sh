#!/usr/bin/env bash
# Tenant scale, from the outside (release build, loopback):
#   1. onboards BENCH_TENANTS (2000) tenants through the API from 4 clients, each with one
#      resource: the onboarding rate, overall and per 500;
#   2. `tenantry migrate` when every tenant is current, then with one new tenant
#      migration to apply to all (0007, taken back first in every schema);
#   3. GET /api/v1/resources/{id} (with the tenant's access token, or its API key when
#      BENCH_AUTH=key) spread over the first BENCH_HOT (10) tenants vs over
#      all of them (wrk -t2 -c32, BENCH_RUNS=3 interleaved rounds, after BENCH_WARM=30 s
#      over all tenants): req/s, p50, p99, and the CPU per request of the server and of
#      its PostgreSQL backends;
#   4. memory: the server's RSS and its PostgreSQL backends' private memory (RssAnon).
# Steps 3 and 4 are repeated for each DATABASE_TENANT_POOLS value in BENCH_TENANT_POOLS
# ("default": the variable unset, i.e. auto; or numbers such as "1 8"), restarting the
# server in between;
#      With BENCH_ONBOARD_MORE=k, then onboards k more tenants through that warm server;
#   5. one hot tenant alone (BENCH_SINGLE=1): GET over one tenant with the defaults vs
#      with DATABASE_TENANT_POOLS=1 (the whole pool for it), BENCH_RUNS rounds each;
#   6. the job reconciler: a `tenantry worker` runs its rounds over all tenants for a few
#      seconds, and its log lines give each round's statements and duration.
# Rate limiting is off (a free plan's 60/min would refuse the load); the rest as configured.
# Usage: scripts/bench-tenant-scale.sh   Settings: BENCH_TENANTS, BENCH_HOT, BENCH_RUNS,
#   BENCH_WARM, BENCH_SECONDS (10), BENCH_POOL (16), BENCH_TENANT_POOLS,
#   BENCH_ONBOARD_MORE (0), BENCH_AUTH (jwt or key), BENCH_PRODUCT_BIN (a built
#   `tenantry` to measure), BENCH_KEEP (a directory: the onboarded database is kept and
#   named there, and a later run with the same directory skips steps 1 and 2 — tens of
#   minutes at 10,000 tenants; drop it with `dropdb "$(cat DIR/database)"`).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/services.sh
. scripts/bench/lib.sh
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }

N=${BENCH_TENANTS:-2000}
HOT=${BENCH_HOT:-10}
RUNS=${BENCH_RUNS:-3}
WARM=${BENCH_WARM:-30}
DURATION=${BENCH_SECONDS:-10}
POOL=${BENCH_POOL:-16}
PORT=${BENCH_PORT:-18480}
KEEP=${BENCH_KEEP:-}
AUTH=${BENCH_AUTH:-jwt}
MORE=${BENCH_ONBOARD_MORE:-0}
case $AUTH in jwt) auth_label="JWT" ;; key) auth_label="API-key" ;;
  *) echo "BENCH_AUTH must be jwt or key" >&2; exit 2 ;; esac
work=$(mktemp -d)
creds=${KEEP:-$work}/creds
if [ -n "$KEEP" ] && [ -s "$KEEP/database" ]; then
  db=$(cat "$KEEP/database") N=$(wc -l < "$creds")
else
  db="tenantry_bench_scale_$(date +%s)"
  if [ -n "$KEEP" ]; then mkdir -p "$KEEP"; rm -f "$creds"; fi
fi
export DATABASE_URL="${DATABASE_URL%/*}/$db"
server=""
cleanup() {
  [ -n "$server" ] && { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; }
  [ -n "$KEEP" ] || psql "${DATABASE_URL%/*}/postgres" -qc "drop database if exists \"$db\" with (force)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "building (release)..." >&2
product=${BENCH_PRODUCT_BIN:-$(cargo build --profile bench --bin tenantry --message-format=json 2>/dev/null | executable tenantry)}
[ -x "$product" ] || { echo "build failed: run cargo build --profile bench" >&2; exit 1; }
cp "$product" "$work/tenantry"; product=$work/tenantry

export APP_ENV=development RUST_LOG=warn LOG_FORMAT=json RATE_LIMIT_ENABLED=false \
  DATABASE_MAX_CONNECTIONS=$POOL REDIS_KEY_PREFIX="bench:$db:" ACCESS_TOKEN_TTL_SECONDS=86400
start_server() { # DATABASE_TENANT_POOLS, or "default" to leave it unset
  if [ -n "$server" ]; then kill "$server"; wait "$server" 2>/dev/null || true; fi
  if [ "$1" = default ]; then unset DATABASE_TENANT_POOLS; else export DATABASE_TENANT_POOLS=$1; fi
  BIND_ADDR=127.0.0.1:$PORT "$product" serve --no-workers > "$work/server.log" 2>&1 &
  server=$!
  for _ in $(seq 1 150); do
    curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break; sleep 0.1
  done
  kill -0 "$server" 2>/dev/null || { tail -n 20 "$work/server.log" >&2; exit 1; }
}
start_server default

echo "command: scripts/bench-tenant-scale.sh  ($(nproc) cores; server, PostgreSQL, Redis and clients share them)"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg); pool $POOL; rate limiting off"
if [ -s "$creds" ]; then
  echo "reusing $N onboarded tenants of $db ($KEEP): steps 1 and 2 skipped"
else
  python3 scripts/bench/tenant_scale.py "http://127.0.0.1:$PORT" "$N" 4 "$creds"
  [ -z "$KEEP" ] || echo "$db" > "$KEEP/database"

  start=$(date +%s.%N)
  "$product" migrate > "$work/migrate.log" 2>&1 || { tail "$work/migrate.log" >&2; exit 1; }
  echo "tenantry migrate, all $N tenants current: $(echo "$(date +%s.%N) - $start" | bc) s"
  # One new tenant migration for all: the newest tenant migration, 0007 (four webhook
  # tables), is taken back in every schema and from the ledger, as if it had just been
  # shipped, and migrate applies it. (A tenant is pending when its newest version is
  # older than the newest file, so only the newest can be taken back.)
  newest=0007_webhooks.sql newest_version=7
  [ "$(ls migrations/tenant | tail -n 1)" = "$newest" ] ||
    { echo "the newest tenant migration is not $newest: update this step" >&2; exit 1; }
  # (Committed every 100 schemas: one transaction over 10,000 runs out of lock slots.)
  psql "$DATABASE_URL" -qc "do \$\$ declare s text; n int := 0; begin
    for s in select nspname from pg_namespace where nspname like 't\\_%' loop
      execute format('drop table %1\$I.webhook_attempts, %1\$I.webhook_deliveries,
                      %1\$I.webhook_messages, %1\$I.webhook_endpoints', s);
      n := n + 1;
      if n % 100 = 0 then commit; end if;
    end loop;
    delete from platform.tenant_migrations where version = $newest_version;
  end \$\$" > /dev/null
  start=$(date +%s.%N)
  "$product" migrate > "$work/migrate.log" 2>&1 || { tail "$work/migrate.log" >&2; exit 1; }
  echo "tenantry migrate, $newest new for all $N tenants: $(echo "$(date +%s.%N) - $start" | bc) s"
  applied=$(psql "$DATABASE_URL" -Atc "select count(*) from pg_tables
    where tablename = 'webhook_attempts' and schemaname like 't\\_%'")
  [ "$applied" -ge "$N" ] || { echo "migrate gave $newest to $applied of $N schemas" >&2; exit 1; }
fi

backends() { psql "${DATABASE_URL%/*}/postgres" -Atc \
  "select pid from pg_stat_activity where datname = '$db' and application_name = 'tenantry'"; }
anon_mib() { local k=0 p; for p in "$@"; do k=$((k + $(awk '/^RssAnon:/ { print $2 }' "/proc/$p/status" 2>/dev/null || echo 0))); done; echo $((k / 1024)); }
# One wrk run over the first $1 tenants → "req/s p50 p99 non2xx server_us pg_us"
# (PostgreSQL CPU: of the backends there at the start that are still there at the end.)
load() {
  local out s0 s1 p=0 pid
  local -A p0=()
  for pid in $(backends); do p0[$pid]=$(cpu_ticks "$pid"); done
  s0=$(cpu_ticks "$server")
  out=$(BENCH_CREDS="$creds" BENCH_LIMIT=$1 BENCH_AUTH=$AUTH wrk -t2 -c32 -d"$2s" --latency \
    -s scripts/bench/tenants.lua "http://127.0.0.1:$PORT")
  s1=$(cpu_ticks "$server")
  for pid in "${!p0[@]}"; do
    if [ -e "/proc/$pid" ]; then p=$((p + $(cpu_ticks "$pid") - p0[$pid])); fi
  done
  awk -v s=$((s1 - s0)) -v p=$p -v hz="$(getconf CLK_TCK)" '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0;
                     if (v ~ /s$/) return v * 1000; return v }
    /requests in/ { n = $1 } /Requests\/sec/ { rps = $2 }
    $1 == "50%" { p50 = ms($2) } $1 == "99%" { p99 = ms($2) }
    /Non-2xx or 3xx responses/ { bad = $NF }
    END { printf "%.0f %.2f %.2f %d %.0f %.0f\n", rps, p50, p99, bad, s / hz * 1e6 / n, p / hz * 1e6 / n }' <<< "$out"
}
for pools in ${BENCH_TENANT_POOLS:-default}; do
  start_server "$pools"
  # Measure a server that has run a while, not one just started: every connection has
  # prepared its tenants' statements (a few seconds are not enough over 2,000 tenants:
  # the first rounds were always the slowest) and the caches' first reloads are behind.
  load "$HOT" 5 >/dev/null; load "$N" "$WARM" >/dev/null
  echo
  echo "DATABASE_TENANT_POOLS=$pools: wrk -t2 -c32 -d${DURATION}s, $auth_label GET /api/v1/resources/{id}, a random tenant per request"
  echo "| run | tenants | req/s | p50 ms | p99 ms | server CPU µs/req | PostgreSQL CPU µs/req | non-2xx |"
  echo "|---|---|---|---|---|---|---|---|"
  ratios=()
  for run in $(seq 1 "$RUNS"); do
    for spread in "$HOT" "$N"; do
      read -r rps p50 p99 bad s_us p_us < <(load "$spread" "$DURATION")
      echo "| $run | $spread | $rps | $p50 | $p99 | $s_us | $p_us | $bad |"
      if [ "$spread" = "$HOT" ]; then hot_rps=$rps hot_p99=$p99; fi
    done
    ratios+=("$(awk -v a="$rps" -v b="$hot_rps" -v c="$p99" -v d="$hot_p99" \
      'BEGIN { printf "%.2f× req/s, %.2f× p99", a / b, c / d }')")
  done
  echo "$N tenants vs $HOT, per round: $(IFS=';'; echo "${ratios[*]}" | sed 's/;/ · /g')"
  pids=$(backends)
  echo "server RSS $(rss_of "$server");" \
    "PostgreSQL backends: $(echo $pids | wc -w), private memory $(anon_mib $pids) MiB in all"
  if [ "$MORE" -gt 0 ]; then
    # Onboarding on a server that has served every tenant: its connections hold their
    # prepared statements, as in production, unlike a server just started.
    echo "onboarding $MORE more at $N tenants, the server warm from the runs above:"
    python3 scripts/bench/tenant_scale.py "http://127.0.0.1:$PORT" "$MORE" 4 "$work/more" | head -n 1
  fi
done

if [ "${BENCH_SINGLE:-1}" = 1 ]; then
  echo
  echo "one hot tenant alone: wrk -t2 -c32 -d${DURATION}s over tenant 1, defaults vs DATABASE_TENANT_POOLS=1"
  declare -A single=()
  for pools in default 1; do
    start_server "$pools"
    load 1 5 >/dev/null
    single[$pools]=""
    for run in $(seq 1 "$RUNS"); do
      read -r rps p50 p99 _ < <(load 1 "$DURATION")
      single[$pools]+="$rps "
      echo "  DATABASE_TENANT_POOLS=$pools round $run: $rps req/s, p50 $p50 ms, p99 $p99 ms"
    done
  done
  median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
  a=$(median <<< "${single[default]}") b=$(median <<< "${single[1]}")
  echo "  medians: defaults $a req/s, one pool $b req/s: $(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f×", a / b }')"
fi

if [ "${BENCH_RECONCILER:-1}" = 1 ]; then
  kill "$server"; wait "$server" 2>/dev/null || true; server=""
  echo
  echo "job reconciler over $N tenants (JOB_RECONCILE_MS=500, 5 s of a tenantry worker):"
  JOB_RECONCILE_MS=500 RUST_LOG=warn,tenantry::jobs::reconciler=debug timeout -s TERM 5 \
    "$product" worker > "$work/worker.log" 2>&1 || true
  python3 - "$work/worker.log" <<'PY'
import json, sys
rounds = []
for line in open(sys.argv[1]):
    try:
        fields = json.loads(line)
    except ValueError:
        continue
    if fields.get("message") == "reconciliation round":
        rounds.append(fields)
for r in rounds[:8]:
    print(f"  round: {r['statements']} statements, {r['duration_ms']:.1f} ms, handed {r['handed']}")
if not rounds:
    print("  no round logged (see the worker's log)")
PY
fi
