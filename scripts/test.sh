#!/usr/bin/env bash
# Runs the whole test suite against real PostgreSQL and Redis (started if needed).
# Extra arguments go to the test runner: scripts/test.sh errors::
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/services.sh

if cargo nextest --version >/dev/null 2>&1; then
  exec cargo nextest run --no-fail-fast "$@"
else
  echo "test.sh: cargo-nextest not found, using cargo test" >&2
  exec cargo test --no-fail-fast -- "$@"
fi
