#!/usr/bin/env bash
# Makes a private CA and a server certificate it signs for 127.0.0.1 only (its subject and its one
# IP name), for the test servers with TLS: a server listening on 127.0.0.2 as well is reachable
# at an address its certificate does not name. Usage: tls-certs.sh DIRECTORY; writes ca.pem,
# ca.key (tests sign client certificates with it), server.pem and server.key (mode 0600) there.
set -euo pipefail
certs=$1
mkdir -p "$certs"
openssl req -x509 -newkey rsa:2048 -nodes -days 3 -subj "/CN=Caravan test CA" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
  -keyout "$certs/ca.key" -out "$certs/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout "$certs/server.key" -out "$certs/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$certs/server.ext"
openssl x509 -req -in "$certs/server.csr" -CA "$certs/ca.pem" -CAkey "$certs/ca.key" -CAcreateserial -days 3 \
  -extfile "$certs/server.ext" -out "$certs/server.pem" 2>/dev/null
chmod 600 "$certs/server.key"
