#!/usr/bin/env bash
# Property-based API check against the OpenAPI document with schemathesis, every check
# (`--checks all`) in both passes: no request, however odd, may get a 5xx, an undocumented status or a
# response off its schema; schema-valid data is accepted and schema-violating data
# refused, except for the rules a schema cannot state, listed with the rule each covers in
# scripts/schemathesis.toml; credentials are not bypassed. Two
# passes, each in a tenant of its own: as the tenant's admin (a bearer token), then with
# an admin-role API key.
# Usage: scripts/fuzz-api.sh [seconds] (default 300). Needs python3 (installs schemathesis
# into a venv under TOOLS_DIR, default ~/.cache/tenantry-tools; skipped with a message when
# PyPI is unreachable). FUZZ_EXAMPLES bounds the examples per operation (default 30);
# reaching the time limit ends the run without a verdict on what was not tried.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/services.sh
LIMIT=${1:-300}
PORT=${FUZZ_PORT:-18090}
TOOLS_DIR=${TOOLS_DIR:-$HOME/.cache/tenantry-tools}
venv="$TOOLS_DIR/schemathesis"
if ! [ -x "$venv/bin/schemathesis" ]; then
  mkdir -p "$TOOLS_DIR"
  if ! { python3 -m venv "$venv" && timeout 600 "$venv/bin/pip" install -q schemathesis; } \
    > "$TOOLS_DIR/schemathesis.log" 2>&1; then
    rm -rf "$venv"
    echo "--  skipped api fuzz: could not install schemathesis (PyPI unreachable?)"
    exit 0
  fi
fi
db="tenantry_fuzz_$(date +%s)"
export DATABASE_URL="${DATABASE_URL%/*}/$db"
cargo build --bin tenantry 2>&1 | tail -n 1
# Limits off: the limiter has its own tests, and 429s would hide what is behind them.
RATE_LIMIT_ENABLED=false BIND_ADDR=127.0.0.1:$PORT RUST_LOG=warn REDIS_KEY_PREFIX="fuzz:$db:" "${CARGO_TARGET_DIR:-target}/debug/tenantry" serve >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -f "${config:-}"; psql "${DATABASE_URL%/*}/postgres" -qc "drop database if exists \"$db\" with (force)" >/dev/null 2>&1 || true' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break; sleep 0.1; done
# Each pass has a tenant of its own: what one pass does to its tenant (its stateful phase
# may change its admin's roles or revoke keys) cannot take the other's credential away.
onboard() { # slug → the admin's access token
  curl -s "http://127.0.0.1:$PORT/api/v1/tenants" -H 'content-type: application/json' \
    -d "{\"name\":\"Fuzz\",\"slug\":\"$1\",\"admin\":{\"email\":\"admin@$1.example.com\",\"password\":\"fuzz password 1\"}}" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["tokens"]["access_token"])'; }
token=$(onboard fuzz)
key_admin=$(onboard fuzz-key)
new_key() { curl -s "http://127.0.0.1:$PORT/api/v1/api-keys" -H 'content-type: application/json' \
  -H "Authorization: Bearer $key_admin" -d '{"name":"fuzz","role":"admin"}' \
  | python3 -c 'import json,sys; b=json.load(sys.stdin); print(b["key"]) if "key" in b else sys.exit(f"no API key for the key pass: {b}")'; }
# Logout, ending a session (the caller's own is listed) and the tenant's own
# suspension/deletion would end the session under test; the
# key pass leaves the API-key routes alone (revoking or rotating itself ends it too).
# The credential goes into the configuration under its security scheme (not a plain -H),
# so that the auth checks (ignored_auth, missing_required_header) alter the credential
# the pass actually uses.
config=$(mktemp)
fuzz() { # seconds scheme credential [schemathesis options...]
  { cat scripts/schemathesis.toml
    printf '\n[auth.openapi.%s]\n%s = "${FUZZ_CREDENTIAL}"\n' "$2" \
      "$([ "$2" = bearer ] && echo bearer || echo api_key)"; } > "$config"
  FUZZ_CREDENTIAL="$3" timeout "$1" "$venv/bin/schemathesis" --config-file "$config" \
    run "http://127.0.0.1:$PORT/openapi.json" --checks all \
    -n "${FUZZ_EXAMPLES:-30}" --request-timeout 5 --seed 1 \
    --exclude-path /api/v1/auth/logout --exclude-path '/api/v1/auth/sessions/{id}' \
    --exclude-path-regex '.*/suspend$' \
    --exclude-path '/api/v1/tenants/{id}' "${@:4}"
}
# A pass whose credential died on the way tested little: say so, and fail.
still_valid() { # header
  local status
  status=$(curl -s -o /dev/null -w '%{http_code}' -H "$1" "http://127.0.0.1:$PORT/api/v1/tenants/current")
  [ "$status" = 200 ] || { echo "!!  the credential of this pass no longer works ($status): the run proves little" >&2; return 1; }
}
rc=0
for pass in bearer key; do
  echo "== api fuzz as the tenant admin, $pass (every check)"
  if [ $pass = bearer ]; then scheme=bearer credential=$token extra=()
    header="Authorization: Bearer $token"
  else scheme=api_key credential=$(new_key) extra=(--exclude-path-regex '^/api/v1/api-keys')
    header="X-API-Key: $credential"; fi
  fuzz $((LIMIT / 2)) $scheme "$credential" "${extra[@]}" || rc=$?
  if [ $rc -eq 124 ]; then
    echo "--  this pass stopped at its $((LIMIT / 2)) s limit; no failure found before it"
    rc=0
  fi
  [ $rc -eq 0 ] || exit $rc
  still_valid "$header"
done
