#!/usr/bin/env bash
# The cost of authentication and a cached permission check per request (release build).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/services.sh
echo "command: scripts/bench-permission-check.sh (cargo bench --bench permission_check)"
exec cargo bench --bench permission_check
