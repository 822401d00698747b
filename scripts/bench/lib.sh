# Shared by the bench scripts (source it).

# The first port from $1 on which nothing listens (other benchmarks may be running).
free_port() {
  local p
  for p in $(seq "$1" $(($1 + 200))); do
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
  echo "no free port near $1" >&2; return 1
}

# The executable of target $1 from cargo's JSON messages on stdin.
executable() { python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == sys.argv[1]:
        print(m["executable"])' "$1"; }

# CPU time (user + system, clock ticks) the processes $@ have used so far.
cpu_ticks() {
  local t=0 p
  for p in "$@"; do t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0))); done
  echo "$t"
}

# wrk_load PIDS SECONDS URL LUA [CONNECTIONS] → "req/s p50_ms p99_ms non2xx cpu_us_per_request"
# (the CPU time of the processes in PIDS, a space-separated list, per request). The Lua
# script reads its settings from the environment (BENCH_*).
wrk_load() {
  local out before after
  # shellcheck disable=SC2086
  before=$(cpu_ticks $1)
  out=$(wrk -t2 -c"${5:-32}" -d"$2s" --latency -s "$4" "$3")
  # shellcheck disable=SC2086
  after=$(cpu_ticks $1)
  awk -v ticks=$((after - before)) -v hz="$(getconf CLK_TCK)" '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0;
                     if (v ~ /s$/) return v * 1000; return v }
    /requests in/ { n = $1 }
    /Requests\/sec/ { rps = $2 }
    $1 == "50%" { p50 = ms($2) }
    $1 == "99%" { p99 = ms($2) }
    /Non-2xx or 3xx responses/ { bad = $NF }
    END { printf "%.0f %.2f %.2f %d %.0f\n", rps, p50, p99, bad, n ? ticks / hz * 1e6 / n : 0 }' <<< "$out"
}

# "<VmRSS> MiB (peak <VmHWM> MiB)" of process $1.
rss_of() {
  awk '$1 == "VmRSS:" { r = $2 } $1 == "VmHWM:" { h = $2 }
       END { printf "%.0f MiB (peak %.0f MiB)", r / 1024, h / 1024 }' "/proc/$1/status"
}

# The SQL that creates schema $1 from the SQL files after it, in one transaction with
# the schema as search path (as src/db/migrate.rs runs a tenant's migrations).
schema_sql() {
  local schema=$1; shift
  echo "begin; create schema $schema; set local search_path = $schema;"
  cat "$@"
  echo "commit;"
}

# The SQL that creates tenant schema $1 as onboarding does: migrations/tenant-baseline.sql
# (tenant migrations up to 0005), then every later tenant migration (src/db/migrate.rs
# sends 0006 and 0007 with the baseline and runs the rest after it).
tenant_schema_sql() {
  local f n later=()
  for f in migrations/tenant/*.sql; do
    n=$(basename "$f"); n=${n%%_*}
    if ((10#$n > 5)); then later+=("$f"); fi
  done
  schema_sql "$1" migrations/tenant-baseline.sql "${later[@]}"
}
