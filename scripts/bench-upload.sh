#!/usr/bin/env bash
# Memory of a large upload: a release `tenantry serve` takes a 500 MiB file as a curl
# multipart upload from a premium tenant, once per storage backend (fs, then S3 against
# the moto stand-in), and the server's peak RSS (VmHWM in /proc/PID/status) is printed
# before and after. Uploads stream, so the peak should stay far below the file's size
# (target: < 100 MiB).
#
# Usage: scripts/bench-upload.sh
# Settings: BENCH_UPLOAD_MIB (500), BENCH_PORT (the first free one from 18480),
#           BENCH_PRODUCT_BIN (measure this `tenantry` executable instead of building one).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/services.sh

MIB=${BENCH_UPLOAD_MIB:-500}
free_port() {
  local p
  for p in $(seq "$1" $(($1 + 200))); do
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
  echo "no free port near $1" >&2; return 1
}
PORT=${BENCH_PORT:-$(free_port 18480)}
work=$(mktemp -d)
stamp=$(date +%s)
db="tenantry_bench_upload_$stamp"
export DATABASE_URL="${DATABASE_URL%/*}/$db"
server=""
stop() { if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; server=""; fi; }
cleanup() {
  stop
  psql "${DATABASE_URL%/*}/postgres" -qc "drop database if exists \"$db\" with (force)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

executable() { python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == sys.argv[1]:
        print(m["executable"])' "$1"; }
echo "building (release)..." >&2
product=${BENCH_PRODUCT_BIN:-$(cargo build --profile bench --bin tenantry --message-format=json 2>/dev/null | executable tenantry)}
[ -x "$product" ] || { echo "build failed: run cargo build --profile bench" >&2; exit 1; }
cp "$product" "$work/tenantry"; product=$work/tenantry

echo "writing a $MIB MiB file..." >&2
head -c $((MIB * 1024 * 1024)) /dev/urandom > "$work/upload.bin"
expected=$(sha256sum "$work/upload.bin" | cut -d' ' -f1)

admin_email=ops@bench-upload.example.com
admin_password="bench upload operator $RANDOM$RANDOM"
hwm() { awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
json() { python3 -c 'import json,sys; d=json.load(sys.stdin)
for k in sys.argv[1].split("."): d=d[k]
print(d)' "$1"; }

# run BACKEND: starts the server on that backend, uploads, prints a table row.
run() {
  local backend=$1 slug token tenant ops res started ended
  local env=(APP_ENV=development "BIND_ADDR=127.0.0.1:$PORT" RUST_LOG=warn
    "REDIS_KEY_PREFIX=bench:$db:" REQUEST_TIMEOUT_SECONDS=900
    "PLATFORM_ADMIN_EMAIL=$admin_email" "PLATFORM_ADMIN_PASSWORD=$admin_password")
  if [ "$backend" = s3 ]; then
    env+=(STORAGE_BACKEND=s3 "S3_BUCKET_NAME=bench-upload-$stamp")
  else
    env+=(STORAGE_BACKEND=fs "STORAGE_DIR=$work/files")
  fi
  env "${env[@]}" "$product" serve --no-workers > "$work/server-$backend.log" 2>&1 &
  server=$!
  for _ in $(seq 1 150); do
    curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break; sleep 0.1
  done
  kill -0 "$server" 2>/dev/null || { tail -n 20 "$work/server-$backend.log" >&2; exit 1; }
  slug="upload-$backend-$stamp"
  res=$(curl -sf -X POST "http://127.0.0.1:$PORT/api/v1/tenants" -H 'content-type: application/json' \
    -d "{\"name\":\"Bench $backend\",\"slug\":\"$slug\",\"admin\":{\"email\":\"admin@$slug.example.com\",\"password\":\"bench upload password\"}}")
  tenant=$(json tenant.id <<< "$res")
  token=$(json tokens.access_token <<< "$res")
  ops=$(curl -sf -X POST "http://127.0.0.1:$PORT/api/v1/admin/login" -H 'content-type: application/json' \
    -d "{\"email\":\"$admin_email\",\"password\":\"$admin_password\"}" | json access_token)
  curl -sf -X PATCH "http://127.0.0.1:$PORT/api/v1/tenants/$tenant" -H "authorization: Bearer $ops" \
    -H 'content-type: application/json' -d '{"plan":"premium"}' >/dev/null
  local before; before=$(hwm "$server")
  started=$(date +%s.%N)
  res=$(curl -sf -X POST "http://127.0.0.1:$PORT/api/v1/files" -H "authorization: Bearer $token" \
    -F "file=@$work/upload.bin;type=application/octet-stream")
  ended=$(date +%s.%N)
  [ "$(json checksum_sha256 <<< "$res")" = "$expected" ] || { echo "checksum mismatch: $res" >&2; exit 1; }
  printf '| %s | %s MiB | %.1f s | %s MiB | %s MiB |\n' "$backend" "$MIB" \
    "$(awk -v a="$started" -v b="$ended" 'BEGIN { print b - a }')" "$before" "$(hwm "$server")"
  stop
}

echo "command: scripts/bench-upload.sh  ($(nproc) cores; server, PostgreSQL, Redis, moto and curl share them)"
echo
echo "| backend | file | upload time | peak RSS before | peak RSS after (VmHWM) |"
echo "|---|---|---|---|---|"
run fs
run s3
