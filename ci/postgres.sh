#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster for the test suite and exports POSTRUN_TEST_PG_URL.
# Sourced by ci/test.sh. Installs the server if it is missing. PostgreSQL refuses to run as
# root, so the cluster belongs to the `postgres` user. Stopped by postrun_pg_stop (trap).

postrun_pg_start() {
  if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    echo "ci: installing PostgreSQL"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  PG_BIN=$bin
  PG_DIR=$(mktemp -d /tmp/postrun-pg.XXXXXX)
  PG_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  local password
  password="pg-$(python3 -c 'import secrets; print(secrets.token_hex(8))')"
  chown postgres "$PG_DIR"
  printf '%s\n' "$password" > "$PG_DIR/pw" && chown postgres "$PG_DIR/pw"
  local as_pg=(su postgres -s /bin/sh -c)
  "${as_pg[@]}" "$bin/initdb -D $PG_DIR/data -U postgres --auth-local=trust --auth-host=scram-sha-256 --pwfile=$PG_DIR/pw >$PG_DIR/initdb.log 2>&1" || return 1
  "${as_pg[@]}" "$bin/pg_ctl -D $PG_DIR/data -l $PG_DIR/server.log -w -t 60 -o '-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1' start >/dev/null" || return 1
  # postrun owns the test databases and their tables; postrun_reader may only read them, as
  # the role postrun itself connects as must (a role that can write is refused).
  "${as_pg[@]}" "psql -q -h $PG_DIR -p $PG_PORT -U postgres -c \"create role postrun login createdb password '$password'\" -c \"create role postrun_reader login password '$password'\" -c 'create database postrun_test owner postrun'" || return 1
  export POSTRUN_TEST_PG_URL="postgresql://postrun:$password@127.0.0.1:$PG_PORT/postrun_test"
  export POSTRUN_TEST_PG_READER_URL="postgresql://postrun_reader:$password@127.0.0.1:$PG_PORT/postrun_test"
  export POSTRUN_TEST_PG_ADMIN="postgresql://postgres:$password@127.0.0.1:$PG_PORT/postrun_test"
  echo "ci: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on port $PG_PORT"
}

postrun_pg_stop() {
  if [ -n "${PG_DIR:-}" ] && [ -d "$PG_DIR/data" ]; then
    su postgres -s /bin/sh -c "$PG_BIN/pg_ctl -D $PG_DIR/data -m immediate stop >/dev/null 2>&1" || true
    rm -rf "$PG_DIR"
  fi
}
