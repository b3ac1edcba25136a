#!/usr/bin/env bash
# Starts a PostgreSQL 15 cluster with TLS for the tls group's tests: a private CA made here signs
# the server's certificate, which names 127.0.0.1 only (the cluster also listens on 127.0.0.2, a
# host the certificate does not name), and members of the role caravan_certified must log in
# with a client certificate the CA signed for their name (clientcert=verify-full) as well as
# their password. Usage: pg-tls.sh DIRECTORY PORT. Writes DIRECTORY/env with the variables the
# tests read (CARAVAN_TEST_POSTGRES_TLS, its CA certificate and the CA's key, with which tests
# sign client certificates for the roles they create); stop it with
# pg_ctl -D DIRECTORY/data -m immediate stop.
set -euo pipefail
dir=$1
port=$2
pg_bin=/usr/lib/postgresql/15/bin
as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

mkdir -p "$dir/data"
certs="$dir/certs"
"$(dirname "$0")/tls-certs.sh" "$certs"

password="caravan-tls-$RANDOM$RANDOM"
echo "$password" >"$dir/password"
[ "$(id -u)" = 0 ] && chown -R postgres "$dir"
as_postgres "$pg_bin/initdb" -D "$dir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
  --pwfile="$dir/password" >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log"; exit 1; }
cat >"$dir/data/pg_hba.conf" <<HBA
local all all trust
hostssl all +caravan_certified 127.0.0.0/8 scram-sha-256 clientcert=verify-full
hostssl all all 127.0.0.0/8 scram-sha-256
HBA
as_postgres "$pg_bin/pg_ctl" -D "$dir/data" -l "$dir/pg.log" -w \
  -o "-c listen_addresses=127.0.0.1,127.0.0.2 -p $port -k $dir -c fsync=off -c ssl=on -c ssl_cert_file=$certs/server.pem -c ssl_key_file=$certs/server.key -c ssl_ca_file=$certs/ca.pem" \
  start >/dev/null
as_postgres "$pg_bin/psql" -h "$dir" -p "$port" -U postgres -d postgres -qc "CREATE ROLE caravan_certified NOLOGIN" >/dev/null
cat >"$dir/env" <<ENV
export CARAVAN_TEST_POSTGRES_TLS="Host=127.0.0.1;Port=$port;Username=postgres;Password=$password;Database=postgres;SSL Mode=Require"
export CARAVAN_TEST_POSTGRES_TLS_CA="$certs/ca.pem"
export CARAVAN_TEST_POSTGRES_TLS_CA_KEY="$certs/ca.key"
ENV
