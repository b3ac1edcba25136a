#!/usr/bin/env bash
# Runs Caravan's whole test suite on a fresh machine: builds, starts a throwaway PostgreSQL (and
# a second one with TLS and a private CA), MariaDB and ClickHouse on loopback ports in a temporary directory, runs every test against the
# SQLite store and again against PostgreSQL, stops the servers, and ends with one line
# "N passed, N failed". MariaDB and ClickHouse are the databases the MYSQL and CLICKHOUSE
# connection tests talk to; s3rver (from npm) is the S3-compatible object store FILE sources
# can keep their files in. As root, it also starts an SSH bastion in a network namespace of its
# own, with a PostgreSQL and a MariaDB behind it (tests/servers/bastion.sh), for the tunnel tests.
set -euo pipefail
cd "$(dirname "$0")"

work=$(mktemp -d /tmp/caravan-test.XXXXXX)
pg_bin=/usr/lib/postgresql/15/bin
pg_data="$work/pg"
pg_started=
pg_tls_started=
my_pid=
ch_pid=
s3_pid=
bastion_dir=
tests_pid=
# Stops a server we started (by its process id), forcefully if it takes more than 10 s.
stop_pid() {
  local pid=$1
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  if [ -n "$tests_pid" ]; then
    kill -TERM -- "-$tests_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 -- "-$tests_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$tests_pid" 2>/dev/null || true
  fi
  if [ -n "$pg_started" ]; then
    as_postgres "$pg_bin/pg_ctl" -D "$pg_data" -m immediate stop >/dev/null 2>&1 || true
  fi
  if [ -n "$pg_tls_started" ]; then
    as_postgres "$pg_bin/pg_ctl" -D "$work/pg-tls/data" -m immediate stop >/dev/null 2>&1 || true
  fi
  [ -n "$my_pid" ] && stop_pid "$my_pid"
  [ -n "$ch_pid" ] && stop_pid "$ch_pid"
  [ -n "$s3_pid" ] && stop_pid "$s3_pid"
  if [ -n "$bastion_dir" ]; then
    [ -x "$bastion_dir/stop" ] && "$bastion_dir/stop"
    rm -rf "$bastion_dir"
  fi
  rm -rf "$work"
}
trap cleanup EXIT
# Stopped by a signal (a CI timeout, ^C), the script still exits through the cleanup above.
trap 'exit 130' INT
trap 'exit 143' TERM

# PostgreSQL refuses to run as root; as root, run it as the postgres user.
as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

missing=()
[ -x "$pg_bin/initdb" ] || missing+=(postgresql-15)
command -v mariadbd >/dev/null && command -v mariadb-install-db >/dev/null || missing+=(mariadb-server)
command -v clickhouse-server >/dev/null || missing+=(clickhouse-server)
command -v openssl >/dev/null || missing+=(openssl)
command -v node >/dev/null && command -v npm >/dev/null || missing+=(nodejs npm)
# Debian's Chromium for the web console's browser tests (Playwright drives it; it never downloads one).
[ -x /usr/bin/chromium ] || missing+=(chromium)
# Debian's OpenSSH server and socat for the SSH bastion the tunnel tests go through.
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v socat >/dev/null || missing+=(socat)
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing ${missing[*]} ..."
  # Packages must not start their system services: the tests start their own servers.
  no_services=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && no_services=1
  fi
  installed=1
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null || installed=
  [ -n "$no_services" ] && rm -f /usr/sbin/policy-rc.d
  [ -n "$installed" ] || { echo "Could not install ${missing[*]}." >&2; exit 1; }
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

# A second cluster with TLS and a private CA, for the tls group's tests (tests/servers/pg-tls.sh says how).
pg_tls_port=$(free_port)
pg_tls_started=1
tests/servers/pg-tls.sh "$work/pg-tls" "$pg_tls_port"
echo "PostgreSQL 15 with TLS on 127.0.0.1:$pg_tls_port"

# Waits up to $3 seconds for the command $4... to succeed while the server (process $1) runs;
# when it stops or the time is up, prints the server's logs $2 (space-separated) and fails.
wait_for() {
  local pid=$1 log=$2 seconds=$3
  shift 3
  for _ in $(seq 1 $((seconds * 5))); do
    "$@" >/dev/null 2>&1 && return 0
    kill -0 "$pid" 2>/dev/null || { echo "The server stopped while starting: $*" >&2; tail -n 60 $log >&2 || true; exit 1; }
    sleep 0.2
  done
  echo "The server did not come up within $seconds s: $*" >&2
  tail -n 60 $log >&2 || true
  exit 1
}

# MariaDB, with TLS (a certificate for 127.0.0.1 signed by a private CA, tests/servers/tls-certs.sh;
# it listens on 127.0.0.2 too, an address the certificate does not name) and an administrator
# "caravan" that logs in with a password over TCP; the tests make their own users and databases
# with it, and sign client certificates with the CA's key.
my_port=$(free_port)
my_dir="$work/my"
my_password="caravan-my-$RANDOM$RANDOM"
mkdir -p "$my_dir"
tests/servers/tls-certs.sh "$my_dir/certs"
mariadb-install-db --no-defaults --user="$(id -un)" --datadir="$my_dir/data" --auth-root-authentication-method=normal \
  --skip-test-db >"$my_dir/install.log" 2>&1 || { cat "$my_dir/install.log"; exit 1; }
mariadbd --no-defaults --user="$(id -un)" --datadir="$my_dir/data" --bind-address=127.0.0.1,127.0.0.2 --port="$my_port" \
  --socket="$my_dir/s.sock" --pid-file="$my_dir/mariadb.pid" --log-error="$my_dir/error.log" \
  --ssl-cert="$my_dir/certs/server.pem" --ssl-key="$my_dir/certs/server.key" --ssl-ca="$my_dir/certs/ca.pem" --max-connections=500 --skip-log-bin \
  --innodb-buffer-pool-size=64M --innodb-flush-log-at-trx-commit=0 --skip-name-resolve >/dev/null 2>&1 &
my_pid=$!
wait_for "$my_pid" "$my_dir/error.log" 60 mariadb-admin --no-defaults -uroot --socket="$my_dir/s.sock" ping
mariadb --no-defaults -uroot --socket="$my_dir/s.sock" -e "
  CREATE USER 'caravan'@'127.0.0.1' IDENTIFIED BY '$my_password';
  GRANT ALL PRIVILEGES ON *.* TO 'caravan'@'127.0.0.1' WITH GRANT OPTION;
  CREATE DATABASE caravan_test;"
echo "MariaDB $(mariadbd --version | awk '{print $3}') on 127.0.0.1:$my_port"

# ClickHouse with a minimal configuration: HTTP, HTTPS and native ports on loopback (HTTPS with a
# certificate for 127.0.0.1 from a private CA, tests/servers/tls-certs.sh; it listens on 127.0.0.2
# too, which the certificate does not name), everything it writes under the temporary directory,
# a "default" user without password and a "caravan" user with one (the tests use it, also to
# create their databases).
ch_http=$(free_port)
ch_https=$(free_port)
ch_tcp=$(free_port)
ch_dir="$work/ch"
ch_password="caravan-ch-$RANDOM$RANDOM"
mkdir -p "$ch_dir/data" "$ch_dir/tmp" "$ch_dir/user_files" "$ch_dir/format_schemas" "$ch_dir/log"
tests/servers/tls-certs.sh "$ch_dir/certs"
cat >"$ch_dir/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <logger>
    <level>information</level>
    <log>$ch_dir/log/server.log</log>
    <errorlog>$ch_dir/log/error.log</errorlog>
    <size>100M</size>
    <count>1</count>
  </logger>
  <http_port>$ch_http</http_port>
  <https_port>$ch_https</https_port>
  <tcp_port>$ch_tcp</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <listen_host>127.0.0.2</listen_host>
  <openSSL>
    <server>
      <certificateFile>$ch_dir/certs/server.pem</certificateFile>
      <privateKeyFile>$ch_dir/certs/server.key</privateKeyFile>
      <verificationMode>none</verificationMode>
      <loadDefaultCAFile>false</loadDefaultCAFile>
      <disableProtocols>sslv2,sslv3</disableProtocols>
    </server>
  </openSSL>
  <path>$ch_dir/data/</path>
  <tmp_path>$ch_dir/tmp/</tmp_path>
  <user_files_path>$ch_dir/user_files/</user_files_path>
  <format_schema_path>$ch_dir/format_schemas/</format_schema_path>
  <users_config>$ch_dir/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>67108864</mark_cache_size>
  <uncompressed_cache_size>67108864</uncompressed_cache_size>
  <max_concurrent_queries>200</max_concurrent_queries>
</yandex>
XML
cat >"$ch_dir/users.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>2000000000</max_memory_usage></default></profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
    <caravan>
      <password>$ch_password</password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </caravan>
  </users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
    <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
XML
clickhouse-server --config-file="$ch_dir/config.xml" >"$ch_dir/log/stdout.log" 2>&1 &
ch_pid=$!
ch_ping() { [ "$(python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode().strip())' "http://127.0.0.1:$ch_http/ping")" = Ok. ]; }
wait_for "$ch_pid" "$ch_dir/log/stdout.log $ch_dir/log/error.log" 60 ch_ping
ch_version=$(python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], data=b"SELECT version()", timeout=5).read().decode().strip())' "http://127.0.0.1:$ch_http/")
echo "ClickHouse $ch_version on 127.0.0.1:$ch_http (HTTP) and :$ch_https (HTTPS)"

# s3rver, an S3-compatible server in Node, installed from npm once into .cache/ beside this script.
# Its list continuation tokens use DES, which OpenSSL 3 keeps in its legacy provider.
s3_version=3.7.1
s3_home=.cache/s3rver-$s3_version
if [ ! -f "$s3_home/node_modules/s3rver/bin/s3rver.js" ]; then
  mkdir -p "$s3_home"
  npm install --prefix "$s3_home" --no-audit --no-fund --silent "s3rver@$s3_version" >"$work/npm.log" 2>&1 \
    || { cat "$work/npm.log"; exit 1; }
fi
s3_port=$(free_port)
s3_bucket=caravan-test
mkdir -p "$work/s3"
node --openssl-legacy-provider "$s3_home/node_modules/s3rver/bin/s3rver.js" -d "$work/s3" -a 127.0.0.1 -p "$s3_port" \
  --silent --configure-bucket "$s3_bucket" >"$work/s3.log" 2>&1 &
s3_pid=$!
s3_ping() { python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "http://127.0.0.1:$s3_port/$s3_bucket"; }
wait_for "$s3_pid" "$work/s3.log" 60 s3_ping
echo "s3rver $s3_version on 127.0.0.1:$s3_port"

# An SSH bastion in a network namespace of its own, with a PostgreSQL and a MariaDB behind it that
# only sshd reaches (tests/servers/bastion.sh says how). It needs root and ip netns; without them
# the tunnel tests skip. Its directory is outside $work: sshd reads authorized_keys as the test
# user, who cannot enter $work.
if [ "$(id -u)" = 0 ] && ip netns add "caravan-probe-$$" 2>/dev/null && ip netns del "caravan-probe-$$"; then
  bastion_dir=$(mktemp -d /tmp/caravan-bastion.XXXXXX)
  tests/servers/bastion.sh "$bastion_dir"
  echo "SSH bastion on 127.0.0.1:$(. "$bastion_dir/env"; echo "$CARAVAN_BASTION_SSH_PORT") (namespace $(cat "$bastion_dir/namespace"))"
else
  echo "No SSH bastion (it needs root and ip netns): the tunnel tests will skip."
fi

dotnet build tests/Caravan.Api.Tests/Caravan.Api.Tests.csproj -c Release -nologo -v q "$@"

log="$work/test.log"
# The tests' own files (SQLite stores, DuckDB files, browser profiles) go under the temporary
# directory, so the cleanup above removes them with everything else.
mkdir -p "$work/tmp"
status=0
for store in Sqlite Postgres; do
  echo "=== tests against the $store store ==="
  TMPDIR="$work/tmp" \
  CARAVAN_TEST_STORE=$store \
  CARAVAN_TEST_POSTGRES="Host=127.0.0.1;Port=$pg_port;Username=postgres;Password=$pg_password;Database=postgres" \
  CARAVAN_TEST_POSTGRES_TLS="Host=127.0.0.1;Port=$pg_tls_port;Username=postgres;Password=$(cat "$work/pg-tls/password");Database=postgres;SSL Mode=Require" \
  CARAVAN_TEST_POSTGRES_TLS_CA="$work/pg-tls/certs/ca.pem" \
  CARAVAN_TEST_POSTGRES_TLS_CA_KEY="$work/pg-tls/certs/ca.key" \
  CARAVAN_TEST_MYSQL="Server=127.0.0.1;Port=$my_port;User ID=caravan;Password=$my_password" \
  CARAVAN_TEST_MYSQL_TLS_CA="$my_dir/certs/ca.pem" \
  CARAVAN_TEST_MYSQL_TLS_CA_KEY="$my_dir/certs/ca.key" \
  CARAVAN_TEST_CLICKHOUSE="http://127.0.0.1:$ch_http" \
  CARAVAN_TEST_CLICKHOUSE_TLS="https://127.0.0.1:$ch_https" \
  CARAVAN_TEST_CLICKHOUSE_TLS_CA="$ch_dir/certs/ca.pem" \
  CARAVAN_TEST_CLICKHOUSE_USER=caravan \
  CARAVAN_TEST_CLICKHOUSE_PASSWORD="$ch_password" \
  CARAVAN_TEST_S3_ENDPOINT="http://127.0.0.1:$s3_port" \
  CARAVAN_TEST_S3_BUCKET="$s3_bucket" \
  CARAVAN_TEST_S3_ACCESS_KEY=S3RVER \
  CARAVAN_TEST_S3_SECRET_KEY=S3RVER \
  CARAVAN_TEST_BASTION="$bastion_dir" \
    setsid bash -c 'set -o pipefail; dotnet test --project tests/Caravan.Api.Tests/Caravan.Api.Tests.csproj -c Release --no-build 2>&1 | tee -a "$0"' "$log" &
  # In a process group of its own, waited for: a signal to this script runs its trap at once (bash
  # defers traps until a foreground command ends), and the cleanup stops the whole run.
  tests_pid=$!
  wait "$tests_pid" || status=1
  tests_pid=
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
