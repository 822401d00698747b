#!/usr/bin/env bash
# Runs the service locally: PostgreSQL and Redis from .env / the environment, or
# throwaway ones started by services.sh; the database and shared schema are created
# at start in development. Arguments go to `tenantry` (default: serve).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f .env ] && set -a && . ./.env && set +a
: "${DATABASE_URL:=postgres://postgres@127.0.0.1:5432/tenantry}"
db_name=${DATABASE_URL##*/}
. scripts/services.sh
# services.sh may have moved the server; keep our database name on it.
export DATABASE_URL="${DATABASE_URL%/*}/${db_name}"
export LOG_FORMAT=${LOG_FORMAT:-pretty}
# CARGO_PROFILE=dev runs the debug build (the one the tests use) instead.
exec cargo run --profile "${CARGO_PROFILE:-release}" --bin tenantry -- "${@:-serve}"
