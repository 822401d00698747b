#!/usr/bin/env bash
# Times one autoscaler evaluation pass over every active tenant (release build).
# Settings: BENCH_TENANTS (2000) BENCH_PASSES (10) (see benches/scaling_pass.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/services.sh
echo "command: scripts/bench-scaling.sh (cargo bench --bench scaling_pass)"
exec cargo bench --bench scaling_pass
