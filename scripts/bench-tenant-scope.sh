#!/usr/bin/env bash
# Compares the ways of scoping a query to a tenant schema (queries/s, release build).
# Settings: BENCH_TENANTS BENCH_SECONDS BENCH_CONCURRENCY BENCH_POOL (see benches/tenant_scope.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/services.sh
echo "command: scripts/bench-tenant-scope.sh (cargo bench --bench tenant_scope)"
exec cargo bench --bench tenant_scope
