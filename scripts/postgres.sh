#!/usr/bin/env bash
# A local PostgreSQL server for distributed hyper-parameter searches (make postgres).
#   scripts/postgres.sh start   start it (installing Debian's postgresql if missing) and
#                               print its storage URL as the last line
#   scripts/postgres.sh stop    stop it (this checkout's server only)
# Data live in runs/postgres/ (or, when the postgres account cannot reach that folder, in a
# folder of /tmp named after this checkout); the server listens on 127.0.0.1 only (port
# $NNLIB_PG_PORT, default 54329) and trusts local connections, so use it for local work
# and tests only.
set -euo pipefail
cd "$(dirname "$0")/.."
action=${1:-start}
port=${NNLIB_PG_PORT:-54329}
base=$PWD/runs/postgres
# the fallback for a checkout the postgres account cannot enter: one folder per checkout,
# so that stopping one checkout's server never stops another's
fallback=/tmp/nnlib-postgres-$(printf %s "$PWD" | md5sum | cut -c1-12)
bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
bin=$(bindir)
if [ -z "$bin" ]; then
  if [ "$action" = stop ]; then exit 0; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Debian's postgresql package" >&2
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql \
      >/dev/null
    bin=$(bindir)
  else
    echo "error: PostgreSQL is not installed; on Debian: sudo apt-get install postgresql" >&2
    exit 1
  fi
fi
as_db() {  # the server refuses to run as root: use the postgres account then
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case "$action" in
  stop)
    for dir in "$base" "$fallback"; do
      if [ -f "$dir/data/postmaster.pid" ]; then as_db "$bin/pg_ctl" -D "$dir/data" -m fast stop; fi
    done
    ;;
  start)
    mkdir -p "$base"
    if [ "$(id -u)" = 0 ]; then
      chown postgres "$base"
      if ! runuser -u postgres -- test -w "$base"; then
        # a checkout in a folder the postgres account cannot enter (e.g. under /root)
        base=$fallback
        echo "runs/postgres is not reachable by the postgres account; using $base" >&2
        mkdir -p "$base" && chown postgres "$base"
      fi
    fi
    if [ ! -f "$base/data/PG_VERSION" ]; then
      as_db "$bin/initdb" -D "$base/data" -U postgres --auth=trust >/dev/null
    fi
    if ! as_db "$bin/pg_ctl" -D "$base/data" status >/dev/null 2>&1; then
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "error: port $port on 127.0.0.1 is taken by another program; start this" \
          "server on a free port with: NNLIB_PG_PORT=$((port + 1)) make postgres" \
          "(server log: $base/server.log)" >&2
        exit 1
      fi
      if ! as_db "$bin/pg_ctl" -D "$base/data" -l "$base/server.log" -w \
          -o "-c listen_addresses=127.0.0.1 -p $port -k $base" start >/dev/null; then
        echo "error: PostgreSQL did not start on port $port; see $base/server.log" \
          "(another port: NNLIB_PG_PORT=N make postgres)" >&2
        exit 1
      fi
    fi
    if ! as_db "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -Atc \
        "SELECT 1 FROM pg_database WHERE datname = 'nnlib'" | grep -q 1; then
      as_db "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres nnlib
    fi
    echo "postgresql://postgres@127.0.0.1:$port/nnlib"
    ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
