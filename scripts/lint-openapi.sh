#!/usr/bin/env bash
# Lints the OpenAPI document with the linters API teams use: Redocly CLI's recommended
# rules and Spectral's spectral:oas. Any error or warning fails. The linters install from
# npm into TOOLS_DIR (default ~/.cache/tenantry-tools) on first use and are reused.
# Exceptions, each with its reason: .redocly.lint-ignore.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS_DIR=${TOOLS_DIR:-$HOME/.cache/tenantry-tools}
npm_dir="$TOOLS_DIR/npm"
bin="$npm_dir/node_modules/.bin"
if ! [ -x "$bin/redocly" ] || ! [ -x "$bin/spectral" ]; then
  mkdir -p "$npm_dir"
  (cd "$npm_dir" && { [ -f package.json ] || npm init -y > /dev/null; } &&
    timeout 600 npm install --no-audit --no-fund @redocly/cli @stoplight/spectral-cli) \
    > "$TOOLS_DIR/npm-linters.log" 2>&1 || { tail -n 20 "$TOOLS_DIR/npm-linters.log"; exit 1; }
fi
cargo build --bin tenantry 2>&1 | tail -n 1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"${CARGO_TARGET_DIR:-target}/debug/tenantry" openapi > "$work/openapi.json"
cp .redocly.lint-ignore.yaml "$work/"
printf 'extends: ["spectral:oas"]\n' > "$work/.spectral.yaml"
failed=0
echo "== redocly lint (recommended)"
out=$(cd "$work" && "$bin/redocly" lint openapi.json 2>&1) || failed=1
summary=$(grep -E "Woohoo|Validation failed|You have [0-9]+ warning" <<< "$out" || true)
echo "${summary:-no summary}"
grep -q "You have [0-9]* warning" <<< "$out" && failed=1
[ "$failed" = 0 ] || grep -E "^\[[0-9]+\]|Warning was|Error was" <<< "$out" | head -n 40
echo "== spectral lint (spectral:oas)"
if (cd "$work" && "$bin/spectral" lint openapi.json --ruleset .spectral.yaml --fail-severity=warn); then
  echo "no errors or warnings"
else
  failed=1
fi
exit $failed
