#!/usr/bin/env bash
# Scale-out on Citus, end to end (not part of scripts/test.sh: it needs a Citus cluster):
#   1. the cluster: CITUS_URL when given — any coordinator database with the citus
#      extension, at least two workers registered and wal_level = logical, for example the
#      compose profile's (`docker compose --profile citus up citus-init`, then
#      CITUS_URL=postgres://postgres:postgres@127.0.0.1:5433/tenantry); its database is
#      used as it is (tenants of earlier runs stay). Without CITUS_URL, this machine's
#      fallback: `$CITUS_SH install && start` builds Citus once (a few minutes) and starts
#      a coordinator (:57432) and workers (:57433/:57434) on loopback with a fresh
#      database — CITUS_SH is ../shared/vendor/citus.sh, outside the repository, so a
#      clone sets CITUS_URL instead;
#   2. `tenantry serve` against the coordinator (shared migrations run statement by
#      statement, `platform` stays on the coordinator) and CITUS_TENANTS (20) tenants
#      onboarded through the API, each with one resource;
#   3. how many tenant schemas are distributed, and how they are placed on the workers;
#   4. wrk on JWT GET /api/v1/resources/{id} over all tenants while one tenant's schema is
#      moved to the other worker with citus_schema_move: no failed request, the tenant's
#      rows intact afterwards;
#      then a role change in that tenant (its schema and platform.tenants in one transaction);
#   5. `tenantry migrate` distributes a tenant schema that is not distributed;
#   6. the same load with the same binary on plain PostgreSQL, for comparison.
# Usage: scripts/test-citus.sh   Settings: CITUS_URL (unset: the local fallback above),
#   CITUS_TENANTS, CITUS_SECONDS (20), CITUS_PROFILE (dev; `bench` for an optimised build),
#   CITUS_SH (../shared/vendor/citus.sh), CITUS_DEFAULT_SHARDING (off; `on` sets
#   citus.enable_schema_based_sharding on for the whole database first).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/services.sh
. scripts/bench/lib.sh
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }

CITUS=${CITUS_SH:-../shared/vendor/citus.sh}
CITUS_URL=${CITUS_URL:-}
N=${CITUS_TENANTS:-20}
DURATION=${CITUS_SECONDS:-20}
PROFILE=${CITUS_PROFILE:-dev}
PORT=$(free_port 18600)
db="tenantry_citus_$(date +%s)"
plain_url="${DATABASE_URL%/*}/$db"
work=$(mktemp -d)
server=""
fail() { echo "FAIL: $*" >&2; exit 1; }
stop_server() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  server=""
}
cleanup() {
  stop_server
  # A given cluster keeps its database; the local one's is dropped.
  [ -n "$CITUS_URL" ] || for p in 57433 57434 57432; do
    psql -h 127.0.0.1 -p $p -U postgres -d postgres -qc "drop database if exists \"$db\" with (force)" >/dev/null 2>&1 || true
  done
  psql "${plain_url%/*}/postgres" -qc "drop database if exists \"$db\" with (force)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

if [ -n "$CITUS_URL" ]; then
  citus_url=$CITUS_URL
  echo "citus: the cluster at CITUS_URL (${citus_url%%@*}@…)" >&2
else
  [ -x "$CITUS" ] || fail "no Citus cluster: set CITUS_URL (docker compose --profile citus up gives one, see docs/scaling.md), or CITUS_SH to a citus.sh"
  echo "citus: install (once) and start with $CITUS (this machine's fallback)..." >&2
  "$CITUS" install
  "$CITUS" start "$db" >/dev/null
  if [ "$(psql "$("$CITUS" url "$db")" -Atc 'show wal_level')" != logical ]; then
    # Online moves (logical replication); otherwise citus_schema_move fails.
    for p in 57432 57433 57434; do psql -h 127.0.0.1 -p $p -U postgres -qc "alter system set wal_level = logical"; done
    "$CITUS" stop && "$CITUS" start "$db" >/dev/null 2>&1
  fi
  citus_url=$("$CITUS" url "$db")
fi
sql() { psql "$citus_url" -v ON_ERROR_STOP=1 -qAt -F ' ' -c "$1"; }
[ "$(sql "select count(*) from pg_extension where extname = 'citus'")" = 1 ] \
  || fail "the database at the Citus URL has no citus extension"
[ "$(sql "select count(*) from citus_get_active_worker_nodes()")" -ge 2 ] \
  || fail "the cluster needs at least two active workers (citus_add_node)"
[ "$(sql 'show wal_level')" = logical ] \
  || fail "wal_level is not logical on the coordinator: citus_schema_move would fail"
if [ "${CITUS_DEFAULT_SHARDING:-off}" = on ]; then
  # The database distributes every new schema by default: `platform` must still stay local.
  # (On a given cluster the setting stays with its database.)
  sql "alter database \"$(sql 'select current_database()')\" set citus.enable_schema_based_sharding = on"
fi

echo "building ($PROFILE)..." >&2
product=$(cargo build --profile "$PROFILE" --bin tenantry --message-format=json 2>/dev/null | executable tenantry)
[ -x "$product" ] || fail "build failed: run cargo build --profile $PROFILE"
cp "$product" "$work/tenantry"; product=$work/tenantry

export APP_ENV=development RUST_LOG=warn,tenantry=info LOG_FORMAT=json RATE_LIMIT_ENABLED=false \
  DATABASE_MAX_CONNECTIONS=16 REDIS_KEY_PREFIX="citus:$db:" ACCESS_TOKEN_TTL_SECONDS=86400
start_server() { # DATABASE_URL
  stop_server
  DATABASE_URL=$1 BIND_ADDR=127.0.0.1:$PORT "$product" serve > "$work/server.log" 2>&1 &
  server=$!
  for _ in $(seq 1 300); do
    curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break; sleep 0.1
  done
  kill -0 "$server" 2>/dev/null || { tail -n 20 "$work/server.log" >&2; fail "server did not start"; }
}
# wrk over the first N tenants of $1 for $2 s → its output
load() { BENCH_CREDS=$1 BENCH_LIMIT=$N wrk -t2 -c32 -d"$2s" --latency -s scripts/bench/tenants.lua "http://127.0.0.1:$PORT"; }
rps() { awk '/Requests\/sec/ { print $2 }'; }
errors() { awk '/Non-2xx|Socket errors/ { print }'; }

echo "command: scripts/test-citus.sh  (${CITUS_URL:+CITUS_URL=… }CITUS_TENANTS=$N CITUS_SECONDS=$DURATION CITUS_DEFAULT_SHARDING=${CITUS_DEFAULT_SHARDING:-off}, $PROFILE build, $(nproc) cores shared by the 3 nodes, the server, Redis and wrk)"
start_server "$citus_url"
grep -q '"database is a Citus coordinator' "$work/server.log" || { sleep 1; grep -q 'Citus coordinator' "$work/server.log"; } \
  || fail "the server did not detect Citus"
echo "server: Citus detected at start"
[ "$(sql "select count(*) from citus_schemas where schema_name::text = 'platform'")" = 0 ] \
  || fail "platform became a distributed schema"
echo "platform: a regular schema on the coordinator ($(sql "select count(*) from pg_tables where schemaname = 'platform'") tables)"

python3 scripts/bench/tenant_scale.py "http://127.0.0.1:$PORT" "$N" 4 "$work/creds"
distributed=$(sql "select count(*) from citus_schemas where schema_name::text like 't\_%'")
tenant_schemas=$(sql "select count(*) from pg_namespace where nspname like 't\_%'")
echo "tenant schemas distributed: $distributed of $tenant_schemas ($N onboarded by this run)"
[ "$distributed" = "$tenant_schemas" ] || fail "not every tenant schema is distributed"
placement() { sql "select nodename || ':' || nodeport, count(distinct colocation_id) as schemas, count(*) as shards
                   from citus_shards where citus_table_type = 'schema' group by 1 order by 1"; }
echo "placement (worker, tenant schemas, shards):"; placement | sed 's/^/  /'
[ "$(placement | wc -l)" -ge 2 ] || fail "the tenant schemas are not spread over the workers"

# The tenant to move: the first one in the credentials file (its token names its id).
tenant=$(head -n1 "$work/creds" | cut -d' ' -f1 | python3 -c '
import base64, json, sys
p = sys.stdin.read().split(".")[1]; print(json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))["tid"])')
schema="t_${tenant//-/}"
resource=$(head -n1 "$work/creds" | cut -d' ' -f2)
# From its worker to another active one (host and port as the coordinator knows them).
from=$(sql "select distinct nodename || ':' || nodeport from citus_shards where table_name::text like '$schema.%'")
to=$(sql "select node_name || ':' || node_port from citus_get_active_worker_nodes()
          where node_name || ':' || node_port <> '$from' order by 1 limit 1")
[ -n "$to" ] || fail "no other worker to move $schema to"
fingerprint() { sql "select md5(string_agg(x, '|' order by x)) from (
  select r::text as x from \"$schema\".resources r union all select u::text from \"$schema\".users u
  union all select a::text from \"$schema\".audit_logs a union all select j::text from \"$schema\".jobs j) t"; }
before=$(fingerprint)

echo "load: wrk -t2 -c32 -d${DURATION}s, JWT GET /api/v1/resources/{id} over $N tenants; citus_schema_move($schema, $to) from $from after 5 s"
load "$work/creds" "$DURATION" > "$work/wrk-citus.txt" &
wrk_pid=$!
sleep 5
started=$(date +%s.%N)
sql "select citus_schema_move('$schema', '${to%:*}', ${to##*:})" >/dev/null
echo "  citus_schema_move took $(printf '%.1f' "$(echo "$(date +%s.%N) - $started" | bc)") s"
wait "$wrk_pid"
now=$(sql "select distinct nodename || ':' || nodeport from citus_shards where table_name::text like '$schema.%'")
[ "$now" = "$to" ] || fail "the schema is on $now, not $to"
echo "  $schema now on $now; placement after the move:"; placement | sed 's/^/    /'
citus_rps=$(rps < "$work/wrk-citus.txt")
grep -E 'Latency|requests in|Requests/sec' "$work/wrk-citus.txt" | sed 's/^ */  /'
[ -z "$(errors < "$work/wrk-citus.txt")" ] || { cat "$work/wrk-citus.txt"; fail "the load saw errors during the move"; }
echo "  no failed request during the move"
[ "$(fingerprint)" = "$before" ] || fail "the moved tenant's rows changed"
token=$(head -n1 "$work/creds" | cut -d' ' -f1)
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "http://127.0.0.1:$PORT/api/v1/resources/$resource")
[ "$code" = 200 ] || fail "GET of the moved tenant's resource answered $code"
echo "  the moved tenant's rows are intact (resources, users, audit log, jobs) and its API answers 200"

# A role change writes the tenant's schema (on a worker) and bumps its auth_epoch in
# platform.tenants (on the coordinator) in one transaction.
api() { # method path body → the response body; fails on a status other than 2xx
  curl -sf -X "$1" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    ${3:+-d "$3"} "http://127.0.0.1:$PORT$2"; }
epoch() { sql "select auth_epoch from platform.tenants where id = '$tenant'"; }
epoch_before=$(epoch)
user=$(api POST /api/v1/users '{"email": "citus@example.com", "password": "correct-horse-1", "roles": ["viewer"]}' \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])') || fail "creating a user failed"
api PUT "/api/v1/users/$user/roles" '{"roles": ["developer"]}' > /dev/null || fail "changing a user's roles failed"
[ "$(epoch)" -gt "$epoch_before" ] || fail "the role change did not bump auth_epoch"
echo "  a role change on the moved tenant commits on both nodes (auth_epoch $epoch_before → $(epoch))"

# `tenantry migrate` distributes a tenant schema that is not (made here by undoing it).
other="t_$(sql "select replace(id::text, '-', '') from platform.tenants where id <> '$tenant' order by id limit 1")"
sql "select citus_schema_undistribute('$other')" >/dev/null
DATABASE_URL=$citus_url "$product" migrate > "$work/migrate.log" 2>&1 || { tail "$work/migrate.log" >&2; fail "tenantry migrate failed"; }
[ "$(sql "select count(*) from citus_schemas where schema_name::text = '$other'")" = 1 ] \
  || fail "tenantry migrate did not distribute $other"
echo "tenantry migrate: distributed $other again (it had been undistributed); $(sql "select count(*) from citus_schemas where schema_name::text like 't\_%'") of $tenant_schemas distributed"

# The same binary and load on plain PostgreSQL.
psql "${plain_url%/*}/postgres" -qc "create database \"$db\""
start_server "$plain_url"
python3 scripts/bench/tenant_scale.py "http://127.0.0.1:$PORT" "$N" 4 "$work/creds-plain" > /dev/null
load "$work/creds-plain" "$DURATION" > "$work/wrk-plain.txt"
[ -z "$(errors < "$work/wrk-plain.txt")" ] || { cat "$work/wrk-plain.txt"; fail "the single-node load saw errors"; }
plain_rps=$(rps < "$work/wrk-plain.txt")
echo "throughput: Citus (3 nodes, one schema moving) $citus_rps req/s; single PostgreSQL $plain_rps req/s" \
  "(ratio $(echo "scale=2; $citus_rps / $plain_rps" | bc))"
echo "PASS"
