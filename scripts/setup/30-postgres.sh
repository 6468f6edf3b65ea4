#!/usr/bin/env bash
# PostgreSQL for the sealroom-store tests: install (apt) if missing, initialise a private cluster
# under target/pg, start it on 127.0.0.1 (port $SEALROOM_PG_PORT, default 55432, or the next free
# one), create the role/database `sealroom` / `sealroom_test`, and append
# SEALROOM_TEST_DATABASE_URL to target/test-env.sh. Safe to run again: each step checks first.
# If a server with the test credentials already answers on the port (another checkout's cluster),
# it is reused: every test works in its own schema.
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$PWD"
want_port="${SEALROOM_PG_PORT:-55432}"
pgdir="$root/target/pg"

find_bin() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return 0; fi
  done
  return 1
}

bin="$(find_bin || true)"
if [ -z "$bin" ]; then
  echo "postgres: installing from apt"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql postgresql-client >/dev/null
  bin="$(find_bin)"
fi
psql="$bin/psql"
[ -x "$psql" ] || psql="$(command -v psql)"

write_env() {
  local url="postgres://sealroom:sealroom@127.0.0.1:$1/sealroom_test"
  mkdir -p "$root/target"
  local envfile="$root/target/test-env.sh"
  touch "$envfile"
  grep -v '^export SEALROOM_TEST_DATABASE_URL=' "$envfile" > "$envfile.new" || true
  echo "export SEALROOM_TEST_DATABASE_URL=$url" >> "$envfile.new"
  mv "$envfile.new" "$envfile"
  echo "postgres: ready at $url (see target/test-env.sh)"
}

usable() { # a server on port $1 that takes the test credentials
  PGPASSWORD=sealroom PGCONNECT_TIMEOUT=3 "$psql" -h 127.0.0.1 -p "$1" -U sealroom -d sealroom_test \
    -qAt -c 'SELECT 1' >/dev/null 2>&1
}

# initdb and postgres refuse to run as root: use the distro's `postgres` account then.
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
  as_pg() { (cd / && runuser -u postgres -- "$@"); }
  owner=postgres
  mkdir -p "$pgdir"
  chown postgres "$pgdir"
  if ! runuser -u postgres -- test -w "$pgdir"; then
    # The checkout is not reachable by the postgres account (e.g. under /root): keep the
    # cluster in its home instead, one per checkout.
    pgdir="/var/lib/postgresql/sealroom-test-$(printf '%s' "$root" | md5sum | cut -c1-12)"
    mkdir -p "$pgdir"
    chown postgres "$pgdir"
  fi
else
  as_pg() { "$@"; }
  owner="$(id -un)"
  mkdir -p "$pgdir"
fi
data="$pgdir/data"
run="$pgdir/run"
log="$pgdir/postgres.log"
as_pg mkdir -p "$run"

running=no
if [ -s "$data/PG_VERSION" ] && as_pg "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
  running=yes
elif usable "$want_port"; then
  echo "postgres: reusing the server already on 127.0.0.1:$want_port"
  write_env "$want_port"
  exit 0
fi

if [ ! -s "$data/PG_VERSION" ]; then
  echo "postgres: initialising cluster in $data"
  as_pg rm -rf "$data"
  as_pg "$bin/initdb" -D "$data" -U "$owner" --auth-local=peer --auth-host=scram-sha-256 \
    -E UTF8 --locale=C.UTF-8 >/dev/null
fi

if [ "$running" = yes ]; then
  port="$(cat "$pgdir/port")"
else
  port="$want_port"
  # Skip ports someone else is listening on.
  while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    port=$((port + 1))
    [ "$port" -lt $((want_port + 50)) ] || { echo "postgres: no free port near $want_port" >&2; exit 1; }
  done
  echo "postgres: starting on 127.0.0.1:$port"
  as_pg touch "$log"
  as_pg "$bin/pg_ctl" -D "$data" -l "$log" -w -t 60 start \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $run -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    >/dev/null || { tail -20 "$log" >&2; exit 1; }
  echo "$port" | as_pg tee "$pgdir/port" >/dev/null
fi

psql_admin() { as_pg "$psql" -h "$run" -p "$port" -U "$owner" -d postgres -v ON_ERROR_STOP=1 -qAt "$@"; }
for _ in $(seq 1 30); do
  psql_admin -c 'SELECT 1' >/dev/null 2>&1 && break
  sleep 1
done
if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = 'sealroom'")" != 1 ]; then
  psql_admin -c "CREATE ROLE sealroom LOGIN PASSWORD 'sealroom' CREATEDB"
fi
if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = 'sealroom_test'")" != 1 ]; then
  psql_admin -c "CREATE DATABASE sealroom_test OWNER sealroom"
fi
write_env "$port"
