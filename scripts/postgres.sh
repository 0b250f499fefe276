#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests, from Debian's `postgresql` package (installed when missing).
#
#   bash scripts/postgres.sh install            install the package if initdb is missing (needs root + apt-get)
#   bash scripts/postgres.sh start PORT         install if needed, create a fresh cluster in a new temporary
#                                               directory, serve it on 127.0.0.1:PORT (user postgres, trust auth);
#                                               prints the data directory (give it to `stop`)
#   bash scripts/postgres.sh stop DATA_DIR      stop that server and delete its directory
#
# Only the server started here is touched: never the package's own `main` cluster, which is stopped again if the
# package installation started it.
set -euo pipefail

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

as_postgres() {
  if [ "$(id -u)" = 0 ]; then
    if command -v runuser >/dev/null; then runuser -u postgres -- "$@"; else su postgres -s /bin/sh -c "$(printf '%q ' "$@")"; fi
  else
    "$@"
  fi
}

install() {
  local bin
  bin="$(pg_bin)"
  if [ -n "$bin" ] && [ -x "$bin/initdb" ]; then
    return 0
  fi
  if [ "$(id -u)" != 0 ]; then
    echo "PostgreSQL is not installed and this is not root: run 'apt-get install -y postgresql' first" >&2
    exit 1
  fi
  echo "Installing Debian's postgresql package..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq postgresql >/dev/null
  # The package may start its default cluster; we did not ask for it, so stop it again.
  if command -v pg_lsclusters >/dev/null; then
    pg_lsclusters --no-header 2>/dev/null | awk '$4 == "online" {print $1, $2}' | while read -r version name; do
      pg_ctlcluster "$version" "$name" stop || true
    done
  fi
}

start() {
  local port="${1:?usage: postgres.sh start PORT}"
  install
  local bin data
  bin="$(pg_bin)"
  data="$(mktemp -d /tmp/snowstorm-postgres.XXXXXX)"
  chmod 755 "$data"
  if [ "$(id -u)" = 0 ]; then chown postgres "$data"; fi
  as_postgres "$bin/initdb" -D "$data/db" -U postgres --auth=trust --encoding=UTF8 --no-sync >"$data/initdb.log" 2>&1 \
    || { cat "$data/initdb.log" >&2; exit 1; }
  as_postgres "$bin/pg_ctl" -D "$data/db" -l "$data/server.log" -w -t 60 \
    -o "-p $port -k $data -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null \
    || { cat "$data/server.log" >&2; exit 1; }
  echo "$data"
}

stop() {
  local data="${1:?usage: postgres.sh stop DATA_DIR}"
  case "$data" in /tmp/snowstorm-postgres.*) ;; *) echo "not a directory made by postgres.sh start: $data" >&2; exit 1 ;; esac
  local bin
  bin="$(pg_bin)"
  if [ -f "$data/db/postmaster.pid" ]; then
    as_postgres "$bin/pg_ctl" -D "$data/db" -m immediate -w -t 60 stop >/dev/null || true
  fi
  rm -rf "$data"
}

case "${1:-}" in
  install) install ;;
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  *) echo "usage: $0 install | start PORT | stop DATA_DIR" >&2; exit 2 ;;
esac
