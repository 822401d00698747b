#!/usr/bin/env bash
# Generates a Python client from the running service's /openapi.json with
# openapi-python-client (PyPI) and runs a short tour with it (scripts/client-smoke/tour.py):
# every response must parse into its named model. Tools go to TOOLS_DIR (default
# ~/.cache/tenantry-tools) and are reused; skipped with a message when PyPI is unreachable.
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS_DIR=${TOOLS_DIR:-$HOME/.cache/tenantry-tools}
venv="$TOOLS_DIR/openapi-python-client"
if ! [ -x "$venv/bin/openapi-python-client" ]; then
  mkdir -p "$TOOLS_DIR"
  if ! { python3 -m venv "$venv" && timeout 600 "$venv/bin/pip" install -q openapi-python-client; } \
    > "$TOOLS_DIR/openapi-python-client.log" 2>&1; then
    rm -rf "$venv"
    echo "--  skipped client smoke: could not install openapi-python-client (PyPI unreachable?)"
    exit 0
  fi
fi
. scripts/services.sh
PORT=${SMOKE_PORT:-18091}
db="tenantry_client_$(date +%s)"
export DATABASE_URL="${DATABASE_URL%/*}/$db"
cargo build --bin tenantry 2>&1 | tail -n 1
work=$(mktemp -d)
BIND_ADDR=127.0.0.1:$PORT RUST_LOG=warn REDIS_KEY_PREFIX="client:$db:" STORAGE_DIR="$work/files" \
  "${CARGO_TARGET_DIR:-target}/debug/tenantry" serve > "$work/server.log" 2>&1 &
server=$!
cleanup() {
  kill "$server" 2> /dev/null; wait "$server" 2> /dev/null
  psql "${DATABASE_URL%/*}/postgres" -qc "drop database if exists \"$db\" with (force)" > /dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$PORT/health" > /dev/null 2>&1 && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$PORT/openapi.json" -o "$work/openapi.json"
# Warnings mean a part of the document the generator could not turn into code. No post
# hooks: formatting the generated code (ruff) is not what is tested.
printf 'post_hooks: []\n' > "$work/config.yml"
(cd "$work" && "$venv/bin/openapi-python-client" generate --path openapi.json --meta none \
  --config config.yml --output-path tenantry_client > generate.log 2>&1) || { cat "$work/generate.log"; exit 1; }
if grep -q 'Warning\|WARNING\|Unable to' "$work/generate.log"; then
  cat "$work/generate.log"
  echo "openapi-python-client reported warnings"
  exit 1
fi
echo "generated $(ls "$work/tenantry_client/models" | wc -l) models, $(find "$work/tenantry_client/api" -name '*.py' ! -name '__init__.py' | wc -l) operations"
PYTHONPATH="$work" timeout 120 "$venv/bin/python" scripts/client-smoke/tour.py "http://127.0.0.1:$PORT" \
  || { tail -n 20 "$work/server.log"; exit 1; }
