#!/usr/bin/env bash
# Makes sure PostgreSQL, Redis and an S3+SNS endpoint are reachable for the tests (or a
# local run).
#
# Source it: `. scripts/services.sh`. It keeps DATABASE_URL, REDIS_URL and AWS_ENDPOINT_URL
# when something answers there (default: 127.0.0.1:5432, :6379 and :4566, LocalStack's
# port); otherwise it starts throwaway servers under $TENANTRY_SVC_DIR (default
# /tmp/tenantry-svc) on ports 55432, 56379 and 54566 — installing Debian's postgresql and
# redis-server, and moto's server from PyPI into a virtualenv there, when they are
# missing — and exports their URLs. The S3/SNS stand-in gets the SDK's test credentials
# unless AWS credentials are already set.

: "${DATABASE_URL:=postgres://postgres@127.0.0.1:5432/postgres}"
: "${REDIS_URL:=redis://127.0.0.1:6379/0}"
: "${AWS_ENDPOINT_URL:=http://127.0.0.1:4566}"
: "${TENANTRY_SVC_DIR:=/tmp/tenantry-svc}"

# host:port of a URL such as postgres://user@host:port/db
_svc_hostport() { local rest=${1#*://}; rest=${rest#*@}; echo "${rest%%/*}"; }

_svc_reachable() {
  local hp host port
  hp=$(_svc_hostport "$1"); host=${hp%:*}; port=${hp##*:}
  (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
}

_svc_install() {
  command -v apt-get >/dev/null || { echo "services.sh: cannot install $*: no apt-get" >&2; return 1; }
  echo "services.sh: installing $*" >&2
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

_svc_wait() {
  for _ in $(seq 1 50); do _svc_reachable "$1" && return 0; sleep 0.2; done
  echo "services.sh: $1 did not come up" >&2; return 1
}

_svc_postgres() {
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$bin" ]; then _svc_install postgresql || return 1; bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1); fi
  local dir=$TENANTRY_SVC_DIR/pg
  mkdir -p "$dir"
  local run=()
  if [ "$(id -u)" = 0 ]; then chown -R postgres: "$dir"; run=(runuser -u postgres --); fi
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    "${run[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >/dev/null || return 1
  fi
  "${run[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w start \
    -o "-h 127.0.0.1 -p 55432 -k $dir -c fsync=off -c synchronous_commit=off -c max_connections=300" >/dev/null || return 1
  DATABASE_URL=postgres://postgres@127.0.0.1:55432/postgres
  _svc_wait "$DATABASE_URL"
}

_svc_redis() {
  command -v redis-server >/dev/null || _svc_install redis-server || return 1
  mkdir -p "$TENANTRY_SVC_DIR"
  redis-server --bind 127.0.0.1 --port 56379 --save "" --appendonly no --daemonize yes \
    --dir "$TENANTRY_SVC_DIR" --logfile "$TENANTRY_SVC_DIR/redis.log" || return 1
  REDIS_URL=redis://127.0.0.1:56379/0
  _svc_wait "$REDIS_URL"
}

_svc_moto() {
  local venv=$TENANTRY_SVC_DIR/moto-venv
  if [ ! -x "$venv/bin/moto_server" ]; then
    echo "services.sh: installing moto's server into $venv" >&2
    python3 -m venv "$venv" && "$venv/bin/pip" install -q 'moto[server]' >&2 || return 1
  fi
  mkdir -p "$TENANTRY_SVC_DIR"
  nohup "$venv/bin/moto_server" -H 127.0.0.1 -p 54566 >"$TENANTRY_SVC_DIR/moto.log" 2>&1 &
  AWS_ENDPOINT_URL=http://127.0.0.1:54566
  _svc_wait "$AWS_ENDPOINT_URL"
}

if ! _svc_reachable "$DATABASE_URL"; then
  fallback=postgres://postgres@127.0.0.1:55432/postgres
  if _svc_reachable "$fallback"; then DATABASE_URL=$fallback; else
    echo "services.sh: no PostgreSQL at $(_svc_hostport "$DATABASE_URL"); starting one" >&2
    _svc_postgres || return 1 2>/dev/null || exit 1
  fi
fi
if ! _svc_reachable "$REDIS_URL"; then
  fallback=redis://127.0.0.1:56379/0
  if _svc_reachable "$fallback"; then REDIS_URL=$fallback; else
    echo "services.sh: no Redis at $(_svc_hostport "$REDIS_URL"); starting one" >&2
    _svc_redis || return 1 2>/dev/null || exit 1
  fi
fi
if ! _svc_reachable "$AWS_ENDPOINT_URL"; then
  fallback=http://127.0.0.1:54566
  if _svc_reachable "$fallback"; then AWS_ENDPOINT_URL=$fallback; else
    echo "services.sh: no S3/SNS endpoint at $(_svc_hostport "$AWS_ENDPOINT_URL"); starting moto" >&2
    _svc_moto || return 1 2>/dev/null || exit 1
  fi
fi
: "${AWS_ACCESS_KEY_ID:=test}" "${AWS_SECRET_ACCESS_KEY:=test}" "${AWS_REGION:=us-east-1}"
export DATABASE_URL REDIS_URL AWS_ENDPOINT_URL AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION
echo "services.sh: PostgreSQL $(_svc_hostport "$DATABASE_URL"), Redis $(_svc_hostport "$REDIS_URL"), S3/SNS $(_svc_hostport "$AWS_ENDPOINT_URL")" >&2
