#!/usr/bin/env bash
# Runs Caravan's whole test suite on a fresh machine: builds, starts a throwaway PostgreSQL on a
# loopback port in a temporary directory, runs every test against the SQLite store and again
# against PostgreSQL, stops the server, and ends with one line "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")"

work=$(mktemp -d /tmp/caravan-test.XXXXXX)
pg_bin=/usr/lib/postgresql/15/bin
pg_data="$work/pg"
pg_started=
cleanup() {
  if [ -n "$pg_started" ]; then
    as_postgres "$pg_bin/pg_ctl" -D "$pg_data" -m immediate stop >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# PostgreSQL refuses to run as root; as root, run it as the postgres user.
as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if [ ! -x "$pg_bin/initdb" ]; then
  echo "Installing PostgreSQL 15 ..."
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >/dev/null
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
pg_port=$(free_port)
mkdir -p "$pg_data"
# Password logins over TCP, as in production, so tests can see a wrong password refused.
pg_password="caravan-test-$RANDOM$RANDOM"
echo "$pg_password" >"$work/pg-password"
[ "$(id -u)" = 0 ] && chown -R postgres "$work"
as_postgres "$pg_bin/initdb" -D "$pg_data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
  --pwfile="$work/pg-password" >"$work/initdb.log" 2>&1 \
  || { cat "$work/initdb.log"; exit 1; }
as_postgres "$pg_bin/pg_ctl" -D "$pg_data" -l "$work/pg.log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $work -c max_connections=400 -c fsync=off -c synchronous_commit=off" \
  start >/dev/null
pg_started=1
echo "PostgreSQL 15 on 127.0.0.1:$pg_port"

dotnet build tests/Caravan.Api.Tests/Caravan.Api.Tests.csproj -c Release -nologo -v q "$@"

log="$work/test.log"
status=0
for store in Sqlite Postgres; do
  echo "=== tests against the $store store ==="
  CARAVAN_TEST_STORE=$store \
  CARAVAN_TEST_POSTGRES="Host=127.0.0.1;Port=$pg_port;Username=postgres;Password=$pg_password;Database=postgres" \
    dotnet test --project tests/Caravan.Api.Tests/Caravan.Api.Tests.csproj -c Release --no-build 2>&1 | tee -a "$log" || status=1
done

count() { grep -E "^\s*$1:\s*[0-9]+" "$log" | awk -F: '{s += $2} END {print s + 0}'; }
passed=$(count succeeded)
failed=$(count failed)
skipped=$(count skipped)
echo
echo "tests: $passed passed, $failed failed, $skipped skipped"
if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ] || [ "$passed" -eq 0 ]; then
  exit 1
fi
