#!/usr/bin/env bash
# Webhook delivery: deliveries per second from one `tenantry worker` to a local receiver
# (a backlog of BENCH_EVENTS test events over 4 endpoints of 2 tenants), and the p99
# from an event's commit to its first attempt (events at 20/s for 10 s).
# `serve --no-workers` takes the API calls; the receiver is Python's ThreadingHTTPServer.
# Usage: scripts/bench-webhooks.sh   (BENCH_PROFILE=dev uses the debug build)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/services.sh

EVENTS=${BENCH_EVENTS:-2000}
PORT=${BENCH_PORT:-18093}
PROFILE=${BENCH_PROFILE:-bench}
work=$(mktemp -d)
db="tenantry_benchhooks_$(date +%s)"
base_url="${DATABASE_URL%/*}"
export DATABASE_URL="$base_url/$db"
export APP_ENV=development RUST_LOG=warn LOG_FORMAT=json DATABASE_MAX_CONNECTIONS=16
export REDIS_KEY_PREFIX="bench:$db:" SIGNUP_ENABLED=true RATE_LIMIT_ENABLED=false
export WEBHOOK_ALLOW_PRIVATE_TARGETS=true

cargo build --profile "$PROFILE" --bin tenantry 2>&1 | tail -n 1
dir=$([ "$PROFILE" = dev ] && echo debug || echo release)
built="${CARGO_TARGET_DIR:-target}/$dir/tenantry"
# A private copy: the target directory may be shared with other checkouts' builds.
bin="$work/tenantry"
cp "$built" "$bin"

BIND_ADDR=127.0.0.1:$PORT "$bin" serve --no-workers > "$work/server.log" 2>&1 &
server=$!
cleanup() {
  kill "$server" 2>/dev/null; wait 2>/dev/null || true
  psql "$base_url/postgres" -qc "drop database if exists \"$db\" with (force)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break; sleep 0.1
done

echo "command: scripts/bench-webhooks.sh  (profile $PROFILE; $EVENTS events; $(nproc) cores shared by API, worker, PostgreSQL, Redis, receiver and driver)"
python3 scripts/bench/webhooks.py "http://127.0.0.1:$PORT" "$bin worker" "$EVENTS" 4 20 10
