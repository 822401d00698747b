#!/usr/bin/env bash
# What one onboarding costs the *other* PostgreSQL backends, by the statements they keep
# prepared. Creating a tenant schema sends a few thousand catalog invalidation messages;
# every backend of the database processes all of them, and PostgreSQL's plan cache walks
# the backend's whole list of prepared statements for each relation and type message.
#
# For each count P in BENCH_PREPARED ("0 1000 2500 5000"): a psql session prepares P
# statements (SELECTs on tenant tables, each executed once) and then sits idle, as a
# service's pooled connection does between requests, while another session creates
# BENCH_SCHEMAS (40) tenant schemas with the onboarding script (`tenant_schema_sql` in
# scripts/bench/lib.sh). Prints the idle backend's CPU per schema created, BENCH_ROUNDS
# (3) rounds each. PostgreSQL only: no build needed.
# Usage: scripts/bench-invalidation.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/services.sh
. scripts/bench/lib.sh

PREPARED=${BENCH_PREPARED:-0 1000 2500 5000}
SCHEMAS=${BENCH_SCHEMAS:-40}
ROUNDS=${BENCH_ROUNDS:-3}
BASE_SCHEMAS=20
admin="${DATABASE_URL%/*}/postgres"
db="tenantry_bench_inval_$(date +%s)"
url="${DATABASE_URL%/*}/$db"
work=$(mktemp -d)
cleanup() {
  [ -n "${idle:-}" ] && kill "$idle" 2>/dev/null
  psql "$admin" -qc "drop database if exists \"$db\" with (force)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
psql "$admin" -qc "create database \"$db\""

for i in $(seq 1 $BASE_SCHEMAS); do tenant_schema_sql "t_base_$i"; done | psql "$url" -q >/dev/null

hz=$(getconf CLK_TCK)
echo "command: scripts/bench-invalidation.sh  ($(nproc) cores; load before: $(cut -d' ' -f1-3 /proc/loadavg))"
echo "CPU of one idle backend per tenant schema another session creates ($SCHEMAS schemas a round):"
for p in $PREPARED; do
  results=()
  for round in $(seq 1 "$ROUNDS"); do
    # The idle session: P prepared statements over the base schemas' tables, then idle
    # (psql runs a shell command, so the backend waits for the client as a pooled one does).
    {
      echo "\\pset tuples_only on"
      echo "\\o $work/pid"
      echo "select pg_backend_pid();"
      echo "\\o"
      for i in $(seq 1 "$p"); do
        echo "prepare p$i as select * from t_base_$((i % BASE_SCHEMAS + 1)).resources where id = \$1 and $i > 0;"
        echo "execute p$i('00000000-0000-0000-0000-000000000000');"
      done
      echo "\\! touch $work/ready; exec sleep 600"
    } > "$work/idle.sql"
    rm -f "$work/ready" "$work/pid"
    psql "$url" -q -f "$work/idle.sql" >/dev/null 2>&1 &
    idle=$!
    while [ ! -e "$work/ready" ]; do sleep 0.1; done
    pid=$(tr -d ' \n' < "$work/pid")
    for i in $(seq 1 "$SCHEMAS"); do tenant_schema_sql "t_${round}_${p}_$i"; done > "$work/onboard.sql"
    t0=$(cpu_ticks "$pid")
    psql "$url" -q -f "$work/onboard.sql" >/dev/null
    sleep 1
    t1=$(cpu_ticks "$pid")
    results+=("$(awk -v t=$((t1 - t0)) -v hz="$hz" -v n="$SCHEMAS" 'BEGIN { printf "%.1f", t / hz * 1000 / n }')")
    pkill -P "$idle" 2>/dev/null || true
    kill "$idle" 2>/dev/null || true
    wait "$idle" 2>/dev/null || true
    idle=""
    psql "$url" -qc "select pg_terminate_backend($pid)" >/dev/null 2>&1 || true
    for i in $(seq 1 "$SCHEMAS"); do echo "drop schema t_${round}_${p}_$i cascade;"; done | psql "$url" -q >/dev/null 2>&1
  done
  echo "  $p prepared statements: $(IFS=/; echo "${results[*]}" | sed 's#/# · #g') ms per schema"
done
