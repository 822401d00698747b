#!/usr/bin/env bash
# How many times one tenant schema's creation makes every other PostgreSQL backend walk its
# list of prepared statements. An idle backend is watched with perf uprobes on functions
# PostgreSQL exports (its binary has no other symbols) while another session creates
# BENCH_SCHEMAS (5) schemas with the onboarding script (`tenant_schema_sql` in
# scripts/bench/lib.sh), or with the SQL file given as $1 (run in a fresh schema, as a
# stand-in for that script). Per schema it prints
# the invalidation messages the backend processed and those that walk the plan list:
# relation messages (`RelationCacheInvalidateEntry`, one per relation per command that
# touched it), type messages (`CallSyscacheCallbacks` for the pg_type caches) and
# namespace messages (each resets every plan: `ResetPlanCache`).
# Needs root, perf and the PostgreSQL server on this machine.
# Usage: scripts/count-invalidation-walks.sh [file.sql]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/services.sh
. scripts/bench/lib.sh
command -v perf >/dev/null || { echo "perf is needed (apt-get install linux-perf)" >&2; exit 1; }

SCHEMAS=${BENCH_SCHEMAS:-5}
admin="${DATABASE_URL%/*}/postgres"
db="tenantry_count_inval_$(date +%s)"
url="${DATABASE_URL%/*}/$db"
work=$(mktemp -d)
postgres=$(readlink -f "/proc/$(pgrep -o -x postgres)/exe")
cleanup() {
  perf probe -q -d 'probe_postgres:*' 2>/dev/null || true
  psql "$admin" -qc "drop database if exists \"$db\" with (force)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
psql "$admin" -qc "create database \"$db\""

perf probe -q -d 'probe_postgres:*' 2>/dev/null || true
perf probe -q -x "$postgres" 'CallSyscacheCallbacks cacheid=%di:s32'
perf probe -q -x "$postgres" RelationCacheInvalidateEntry
perf probe -q -x "$postgres" ResetPlanCache
perf probe -q -x "$postgres" LocalExecuteInvalidationMessage
# The syscache id of TYPEOID (the plan cache listens to it) in PostgreSQL 15; other
# releases number the caches differently.
[ "$(psql "$url" -Atc 'show server_version_num' | cut -c1-2)" = 15 ] ||
  echo "not PostgreSQL 15: the type count below may name another cache" >&2

for i in $(seq 1 "$SCHEMAS"); do
  if [ $# -gt 0 ]; then schema_sql "t_count_$i" "$1"; else tenant_schema_sql "t_count_$i"; fi
done > "$work/create.sql"

# The watched backend sits idle until the schemas exist, then runs one statement, which
# makes it process every message queued meanwhile.
{
  echo "\\pset tuples_only on"
  echo "\\o $work/pid"
  echo "select pg_backend_pid();"
  echo "\\o"
  echo "\\! touch $work/ready; while [ ! -e $work/go ]; do sleep 0.05; done"
  echo "select 1;"
} > "$work/idle.sql"
psql "$url" -q -f "$work/idle.sql" >/dev/null 2>&1 &
idle=$!
while [ ! -e "$work/ready" ]; do sleep 0.05; done
pid=$(tr -d ' \n' < "$work/pid")
perf record -q -o "$work/perf.data" -e 'probe_postgres:*' -p "$pid" >/dev/null 2>&1 &
recorder=$!
sleep 0.5
psql "$url" -q -f "$work/create.sql" >/dev/null
touch "$work/go"
wait "$idle"
sleep 0.3
kill -INT "$recorder"; wait "$recorder" 2>/dev/null || true

echo "command: scripts/count-invalidation-walks.sh $*  (PostgreSQL $(psql "$url" -Atc 'show server_version'))"
perf script -i "$work/perf.data" 2>/dev/null | awk -v n="$SCHEMAS" '
  /probe_postgres:LocalExecuteInvalidationMessage/ { messages++ }
  /probe_postgres:RelationCacheInvalidateEntry/ { relation++ }
  /probe_postgres:ResetPlanCache/ { reset++ }
  /probe_postgres:CallSyscacheCallbacks/ { match($0, /cacheid=[0-9]+/); by[substr($0, RSTART + 8, RLENGTH - 8)]++ }
  END {
    types = by[80]
    printf "per schema: %.0f invalidation messages; plan-list walks: %.0f relation + %.0f type + %.0f namespace = %.0f\n",
      messages / n, relation / n, types / n, reset / n, (relation + types + reset) / n
  }'
