#!/usr/bin/env bash
# Starts PostgreSQL and Redis (Debian packages) on loopback for tests, in a throwaway directory,
# and prints the matching DATABASE_URL / REDIS_URL exports. Idempotent: re-running reuses them.
#   eval "$(scripts/local-db.sh)"
set -euo pipefail
root=${VALORA_TEST_SERVICES_DIR:-/tmp/valora-test-services}
pg_port=${VALORA_TEST_PG_PORT:-55432}
redis_port=${VALORA_TEST_REDIS_PORT:-56379}
mkdir -p "$root"
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$pg_bin" ] || { echo "postgresql is not installed (apt-get install postgresql)" >&2; exit 1; }
run_as=()
if [ "$(id -u)" = 0 ]; then
  chown -R postgres "$root" 2>/dev/null || true
  run_as=(runuser -u postgres --)
fi
if ! "$pg_bin/pg_isready" -h 127.0.0.1 -p "$pg_port" -q; then
  if [ ! -f "$root/pg/PG_VERSION" ]; then
    "${run_as[@]}" "$pg_bin/initdb" -D "$root/pg" -U valora --auth=trust -E UTF8 >"$root/initdb.log"
  fi
  "${run_as[@]}" "$pg_bin/pg_ctl" -D "$root/pg" -l "$root/pg.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $pg_port -c unix_socket_directories=$root -c fsync=off -c max_connections=200" start >/dev/null
  "${run_as[@]}" "$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U valora valora 2>/dev/null || true
fi
if ! redis-cli -h 127.0.0.1 -p "$redis_port" ping >/dev/null 2>&1; then
  redis-server --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no --daemonize yes \
    --logfile "$root/redis.log" --dir "$root" >/dev/null
  for _ in $(seq 1 50); do redis-cli -h 127.0.0.1 -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
fi
echo "export DATABASE_URL=postgres://valora@127.0.0.1:$pg_port/valora"
echo "export REDIS_URL=redis://127.0.0.1:$redis_port"
