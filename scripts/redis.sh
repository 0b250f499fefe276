#!/usr/bin/env bash
# A throwaway Redis server (the Celery broker of scripts/cluster.sh), from Debian's `redis-server` package.
#
#   bash scripts/redis.sh install            install the package if redis-server is missing (needs root + apt-get)
#   bash scripts/redis.sh start PORT         install if needed, serve a fresh in-memory Redis on 127.0.0.1:PORT from a
#                                            new temporary directory; prints that directory (give it to `stop`)
#   bash scripts/redis.sh stop DIR           stop that server and delete its directory
#
# There is no init system here: the server runs as a daemon with its pid file in its directory, and only that server
# is ever stopped.
set -euo pipefail

install() {
  if command -v redis-server >/dev/null && command -v redis-cli >/dev/null; then
    return 0
  fi
  if [ "$(id -u)" != 0 ]; then
    echo "Redis is not installed and this is not root: run 'apt-get install -y redis-server' first" >&2
    exit 1
  fi
  echo "Installing Debian's redis-server package..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq redis-server >/dev/null
  # Without an init system the package starts nothing; stop a server its scripts may have started all the same.
  if [ -f /run/redis/redis-server.pid ]; then
    kill "$(cat /run/redis/redis-server.pid)" 2>/dev/null || true
  fi
}

start() {
  local port="${1:?usage: redis.sh start PORT}"
  install
  local dir
  dir="$(mktemp -d /tmp/snowstorm-redis.XXXXXX)"
  # No persistence: a broker for one run of the cluster.
  redis-server --bind 127.0.0.1 --port "$port" --daemonize yes --pidfile "$dir/redis.pid" --dir "$dir" \
    --logfile "$dir/redis.log" --save "" --appendonly no >/dev/null
  local tries=0
  until redis-cli -p "$port" ping >/dev/null 2>&1; do
    tries=$((tries + 1))
    if [ "$tries" -gt 100 ]; then
      echo "Redis did not answer on port $port:" >&2
      cat "$dir/redis.log" >&2 || true
      exit 1
    fi
    sleep 0.1
  done
  echo "$dir"
}

stop() {
  local dir="${1:?usage: redis.sh stop DIR}"
  case "$dir" in /tmp/snowstorm-redis.*) ;; *) echo "not a directory made by redis.sh start: $dir" >&2; exit 1 ;; esac
  if [ -f "$dir/redis.pid" ]; then
    local pid
    pid="$(cat "$dir/redis.pid")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
}

case "${1:-}" in
  install) install ;;
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  *) echo "usage: $0 install | start PORT | stop DIR" >&2; exit 2 ;;
esac
