#!/usr/bin/env bash
# Runs the Redis adapter's integration tests. They use the Redis on 127.0.0.1:6379 (a unique key
# prefix per test) and start private redis-servers on free ports for the tests that kill, pause
# or restart one. Starts the shared server when nothing answers there, installing Debian's
# redis-server package when the binary is missing; stops only what it started.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/redis-server ]; then
  apt-get update -qq && apt-get install -y -qq redis-server >/dev/null
fi

started=""
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  dir="$(mktemp -d)"
  redis-server --port 6379 --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
  for _ in $(seq 1 100); do
    redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break
    sleep 0.05
  done
  started="$dir"
fi
cleanup() {
  if [ -n "$started" ] && [ -f "$started/redis.pid" ]; then
    kill "$(cat "$started/redis.pid")" 2>/dev/null || true
  fi
}
trap cleanup EXIT

cargo test --features redis --test redis "$@"
