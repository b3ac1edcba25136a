#!/usr/bin/env bash
# Starts a real SSH bastion for the tunnel tests, as root: a network namespace of its own with
# nothing but its loopback, and inside it a PostgreSQL 15, a MariaDB and Debian's OpenSSH sshd.
# From the host's namespace only sshd can be reached, through a relay on a loopback port
# (socat TCP -> a Unix socket in DIRECTORY -> socat in the namespace -> sshd on its 127.0.0.1:22),
# so a test that reads the databases' marker went through the bastion: there is no other path.
# Every 127.x.y.z of the namespace reaches both databases, so a test names its own target host
# and finds its forwardings in sshd's log by it.
#
# sshd logs at DEBUG1 to syslog, which in its own mount namespace is a socket in DIRECTORY that a
# small receiver writes to DIRECTORY/sshd.log, one line per message with the process id:
# "sshd[PID]: MESSAGE". (sshd -E writes no process ids, and the sessions of tests running at the
# same time interleave, so the log could not tell them apart.) Lines the fixture reads
# (tests/Caravan.Api.Tests/Infrastructure/Bastion.cs documents them):
#   debug1: server_request_direct_tcpip: originator A port N, target HOST port PORT   (a session's own pid)
#   debug1: userauth-request for user NAME service ssh-connection method M [preauth]  (per request)
#
# Usage: bastion.sh DIRECTORY (an empty directory its test user can reach: not one under a
# directory only root or postgres can enter). Writes DIRECTORY/env (the variables the tests read,
# sourced or parsed), DIRECTORY/restart-sshd (ends sshd and every session, starts it again) and
# DIRECTORY/stop (stops everything, deletes the namespace and the test user).
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "bastion.sh must run as root (ip netns, a system user)." >&2; exit 1; }
dir=$(realpath "$1")
[ -d "$dir" ] && [ -z "$(ls -A "$dir")" ] || { echo "bastion.sh: $1 must be an empty directory." >&2; exit 1; }
for tool in /usr/sbin/sshd socat ssh-keygen ssh-keyscan mariadbd python3; do
  command -v "$tool" >/dev/null || { echo "bastion.sh: $tool is missing." >&2; exit 1; }
done
pg_bin=/usr/lib/postgresql/15/bin
id=$(head -c 3 /dev/urandom | od -An -tx1 | tr -d ' \n')
ns=caravan-bastion-$id
user=caravan-tun-$id
random_secret() { head -c 15 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# A port for a database in the namespace that nothing listens on in the host's namespace, so a
# test can show that connecting to it there is refused: the usual one unless taken.
inner_port() {
  if python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$1" 2>/dev/null; then free_port; else echo "$1"; fi
}

chmod 711 "$dir"
echo "$ns" >"$dir/namespace"

# DIRECTORY/stop first, so that a failure below leaves nothing running.
cat >"$dir/stop" <<STOP
#!/usr/bin/env bash
# Stops the bastion started in $dir: its relays, sshd and its sessions, PostgreSQL, MariaDB and
# the log receiver, deletes the namespace $ns, and the user $user if bastion.sh created it.
dir=$dir
ns=$ns
stop_pidfile() {
  local pid
  pid=\$(cat "\$1" 2>/dev/null) || return 0
  kill "\$pid" 2>/dev/null || return 0
  for _ in \$(seq 1 50); do kill -0 "\$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "\$pid" 2>/dev/null || true
}
stop_pidfile "\$dir/relay.pid"
if [ -f "\$dir/pg/PG_VERSION" ]; then
  runuser -u postgres -- $pg_bin/pg_ctl -D "\$dir/pg" -m immediate stop >/dev/null 2>&1 || true
fi
stop_pidfile "\$dir/my/mariadb.pid"
if ip netns pids "\$ns" >/dev/null 2>&1; then
  # sshd, its sessions, the inner relay and whatever else still runs in the namespace.
  for _ in \$(seq 1 50); do
    pids=\$(ip netns pids "\$ns")
    [ -n "\$pids" ] || break
    kill -9 \$pids 2>/dev/null || true
    sleep 0.1
  done
  ip netns del "\$ns"
fi
stop_pidfile "\$dir/syslog.pid"
if [ -f "\$dir/user-created" ]; then
  userdel "\$(cat "\$dir/user-created")" 2>/dev/null || true
  rm -f "\$dir/user-created"
fi
STOP
chmod 700 "$dir/stop"
trap 'status=$?; [ $status = 0 ] || "$dir/stop"; exit $status' EXIT

ip netns add "$ns"
ip netns exec "$ns" ip link set lo up
in_ns() { ip netns exec "$ns" "$@"; }
# Starts a long-running process detached from this script (its own session, no terminal).
detach() { setsid "$@" </dev/null >/dev/null 2>&1 & }

# The test user: forwarding only, no shell; a random password and four key pairs.
useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$user"
echo "$user" >"$dir/user-created"
password=$(random_secret)
echo "$user:$password" | chpasswd
keys="$dir/keys"
mkdir -p "$keys"
rsa_passphrase=$(random_secret)
pem_passphrase=$(random_secret)
ssh-keygen -q -t ed25519 -N '' -C "$user-ed25519" -f "$keys/id_ed25519"
ssh-keygen -q -t rsa -b 3072 -N "$rsa_passphrase" -C "$user-rsa" -f "$keys/id_rsa"
ssh-keygen -q -m PEM -t rsa -b 3072 -N "$pem_passphrase" -C "$user-rsa-pem" -f "$keys/id_rsa_pem"
ssh-keygen -q -t ecdsa -b 256 -N '' -C "$user-ecdsa" -f "$keys/id_ecdsa"
cat "$keys"/*.pub >"$dir/authorized_keys"
chmod 644 "$dir/authorized_keys"
# sshd reads authorized_keys as the user: every directory above it must let the user through.
runuser -u "$user" -- test -r "$dir/authorized_keys" \
  || { echo "bastion.sh: $user cannot read $dir/authorized_keys; use a directory the user can reach (e.g. mktemp -d /tmp/...)." >&2; exit 1; }

# PostgreSQL 15 in the namespace on every loopback address, passwords (scram) over TCP.
pg_port=$(inner_port 5432)
pg_password=$(random_secret)
mkdir -p "$dir/pg"
echo "$pg_password" >"$dir/pg-password"
chown postgres "$dir/pg" "$dir/pg-password"
runuser -u postgres -- "$pg_bin/initdb" -D "$dir/pg" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
  --pwfile="$dir/pg-password" >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log"; exit 1; }
printf 'local all all trust\nhost all all 127.0.0.0/8 scram-sha-256\n' >"$dir/pg/pg_hba.conf"
in_ns runuser -u postgres -- "$pg_bin/pg_ctl" -D "$dir/pg" -l "$dir/pg/server.log" -w \
  -o "-c listen_addresses=* -p $pg_port -k $dir/pg -c fsync=off -c max_connections=200" start >/dev/null
marker=bastion-marker-$(random_secret)
runuser -u postgres -- "$pg_bin/psql" -h "$dir/pg" -p "$pg_port" -U postgres -d postgres -qc "CREATE DATABASE bastion_only" >/dev/null
runuser -u postgres -- "$pg_bin/psql" -h "$dir/pg" -p "$pg_port" -U postgres -d bastion_only -qc \
  "CREATE TABLE marker(value text); INSERT INTO marker VALUES ('$marker')" >/dev/null

# MariaDB in the namespace on every address, a user caravan@'%' with a password.
my_port=$(inner_port 3306)
my_password=$(random_secret)
mkdir -p "$dir/my"
mariadb-install-db --no-defaults --user=root --datadir="$dir/my/data" --auth-root-authentication-method=normal \
  --skip-test-db >"$dir/my/install.log" 2>&1 || { cat "$dir/my/install.log"; exit 1; }
detach ip netns exec "$ns" mariadbd --no-defaults --user=root --datadir="$dir/my/data" --bind-address=0.0.0.0 \
  --port="$my_port" --socket="$dir/my/s.sock" --pid-file="$dir/my/mariadb.pid" --log-error="$dir/my/error.log" \
  --max-connections=200 --skip-log-bin --innodb-buffer-pool-size=32M --innodb-flush-log-at-trx-commit=0 --skip-name-resolve
for _ in $(seq 1 300); do
  mariadb-admin --no-defaults -uroot --socket="$dir/my/s.sock" ping >/dev/null 2>&1 && break
  sleep 0.2
done
mariadb --no-defaults -uroot --socket="$dir/my/s.sock" -e "
  CREATE USER 'caravan'@'%' IDENTIFIED BY '$my_password';
  GRANT ALL PRIVILEGES ON *.* TO 'caravan'@'%';
  CREATE DATABASE bastion_only;
  CREATE TABLE bastion_only.marker(value text);
  INSERT INTO bastion_only.marker VALUES ('$marker');" || { tail -n 40 "$dir/my/error.log" >&2; exit 1; }

# sshd's log: syslog datagrams on DIRECTORY/dev/log, written to sshd.log with their process ids.
mkdir -p "$dir/dev"
cat >"$dir/syslog.py" <<'PY'
import os, re, socket, sys
path, log = sys.argv[1], sys.argv[2]
server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
server.bind(path)
os.chmod(path, 0o666)  # the session processes log as the test user
with open(log, "ab", buffering=0) as out:
    while True:
        message = server.recv(65536)
        # "<PRI>Mmm dd hh:mm:ss sshd[PID]: text" -> "sshd[PID]: text"
        out.write(re.sub(rb"^<\d+>\w{3} [ \d]\d \d\d:\d\d:\d\d ", b"", message).rstrip(b"\n") + b"\n")
PY
touch "$dir/sshd.log"
detach python3 "$dir/syslog.py" "$dir/dev/log" "$dir/sshd.log"
echo $! >"$dir/syslog.pid"
for _ in $(seq 1 50); do [ -S "$dir/dev/log" ] && break; sleep 0.1; done
[ -S "$dir/dev/log" ] || { echo "bastion.sh: the log receiver did not start." >&2; exit 1; }
# sshd needs a few devices; its /dev is DIRECTORY/dev, bound in its own mount namespace.
for device in null zero full random urandom; do touch "$dir/dev/$device"; done

ssh-keygen -q -t ed25519 -N '' -C bastion-host -f "$dir/host_ed25519_key"
ssh-keygen -q -t rsa -b 3072 -N '' -C bastion-host -f "$dir/host_rsa_key"
cat >"$dir/sshd_config" <<CONF
# A forwarding-only bastion for the tunnel tests (tests/servers/bastion.sh).
ListenAddress 127.0.0.1:22
HostKey $dir/host_ed25519_key
HostKey $dir/host_rsa_key
PidFile $dir/sshd.pid
SyslogFacility AUTH
LogLevel DEBUG1
AllowUsers $user
PermitRootLogin no
PasswordAuthentication yes
PubkeyAuthentication yes
KbdInteractiveAuthentication no
UsePAM no
AuthorizedKeysFile $dir/authorized_keys
# The files live in a directory under /tmp, which is writable by everyone.
StrictModes no
AllowTcpForwarding yes
PermitOpen any
PermitTTY no
X11Forwarding no
AllowAgentForwarding no
# Tests connect in parallel, all from 127.0.0.1 (the relay).
MaxStartups 500
MaxSessions 100
MaxAuthTries 10
ClientAliveInterval 0
UseDNS no
CONF
# sshd's privilege separation directory, which the ssh service makes when it starts (never, here).
mkdir -p /run/sshd
# OpenSSH 9.8 and later penalise a source address after failed logins; here every test is 127.0.0.1.
if /usr/sbin/sshd -t -f "$dir/sshd_config" -o PerSourcePenalties=no 2>/dev/null; then
  echo "PerSourcePenalties no" >>"$dir/sshd_config"
fi
/usr/sbin/sshd -t -f "$dir/sshd_config"

cat >"$dir/start-sshd" <<START
#!/usr/bin/env bash
# Starts sshd in the namespace $ns (its own mount namespace, where /dev is $dir/dev) and waits
# until it accepts connections.
set -euo pipefail
setsid ip netns exec $ns sh -c '
  for device in null zero full random urandom; do mount --bind /dev/\$device $dir/dev/\$device; done
  mount --bind $dir/dev /dev
  exec /usr/sbin/sshd -D -f $dir/sshd_config' </dev/null >>$dir/sshd.stderr 2>&1 &
for _ in \$(seq 1 100); do
  ip netns exec $ns bash -c 'exec 3<>/dev/tcp/127.0.0.1/22' 2>/dev/null && exit 0
  sleep 0.1
done
echo "sshd did not start; see $dir/sshd.log and $dir/sshd.stderr" >&2
exit 1
START
cat >"$dir/restart-sshd" <<RESTART
#!/usr/bin/env bash
# Restarts the bastion the hard way: kills sshd's listener and every session process it forked
# (their connections drop), then starts it again with the same configuration and host keys.
set -euo pipefail
for _ in \$(seq 1 50); do
  pids=
  for pid in \$(ip netns pids $ns); do
    [ "\$(readlink /proc/\$pid/exe 2>/dev/null)" = /usr/sbin/sshd ] && pids="\$pids \$pid"
    case "\$(readlink /proc/\$pid/exe 2>/dev/null)" in /usr/lib/openssh/sshd-*) pids="\$pids \$pid" ;; esac
  done
  [ -n "\$pids" ] || break
  kill -9 \$pids 2>/dev/null || true
  sleep 0.1
done
exec $dir/start-sshd
RESTART
chmod 700 "$dir/start-sshd" "$dir/restart-sshd"
"$dir/start-sshd"

# The relay: the only way in from the host's namespace.
detach ip netns exec "$ns" socat UNIX-LISTEN:"$dir/sshd.sock",fork,mode=600 TCP:127.0.0.1:22
for _ in $(seq 1 50); do [ -S "$dir/sshd.sock" ] && break; sleep 0.1; done
ssh_port=$(free_port)
detach socat TCP-LISTEN:"$ssh_port",bind=127.0.0.1,reuseaddr,fork UNIX-CONNECT:"$dir/sshd.sock"
echo $! >"$dir/relay.pid"

# The host keys as a client sees them through the relay.
fingerprint() { ssh-keygen -lf "$1" | awk '{print $2}'; }
host_fingerprint=$(fingerprint "$dir/host_ed25519_key.pub")
rsa_host_fingerprint=$(fingerprint "$dir/host_rsa_key.pub")
scanned=
for _ in $(seq 1 50); do
  scanned=$(ssh-keyscan -T 5 -t ed25519,rsa -p "$ssh_port" 127.0.0.1 2>/dev/null | ssh-keygen -lf - 2>/dev/null | awk '{print $2}' | sort | tr '\n' ' ')
  [ -n "$scanned" ] && break
  sleep 0.1
done
expected=$(printf '%s\n%s\n' "$host_fingerprint" "$rsa_host_fingerprint" | sort | tr '\n' ' ')
[ "$scanned" = "$expected" ] || { echo "bastion.sh: ssh-keyscan through the relay saw '$scanned', expected '$expected'." >&2; exit 1; }

cat >"$dir/env" <<ENV
export CARAVAN_TEST_BASTION="$dir"
export CARAVAN_BASTION_NAMESPACE="$ns"
export CARAVAN_BASTION_SSH_HOST="127.0.0.1"
export CARAVAN_BASTION_SSH_PORT="$ssh_port"
export CARAVAN_BASTION_USER="$user"
export CARAVAN_BASTION_PASSWORD="$password"
export CARAVAN_BASTION_ED25519_KEY="$keys/id_ed25519"
export CARAVAN_BASTION_RSA_KEY="$keys/id_rsa"
export CARAVAN_BASTION_RSA_PASSPHRASE="$rsa_passphrase"
export CARAVAN_BASTION_RSA_PEM_KEY="$keys/id_rsa_pem"
export CARAVAN_BASTION_RSA_PEM_PASSPHRASE="$pem_passphrase"
export CARAVAN_BASTION_ECDSA_KEY="$keys/id_ecdsa"
export CARAVAN_BASTION_HOST_KEY_FINGERPRINT="$host_fingerprint"
export CARAVAN_BASTION_HOST_KEY_LINE="$(cut -d' ' -f1,2 "$dir/host_ed25519_key.pub")"
export CARAVAN_BASTION_RSA_HOST_KEY_FINGERPRINT="$rsa_host_fingerprint"
export CARAVAN_BASTION_RSA_HOST_KEY_LINE="$(cut -d' ' -f1,2 "$dir/host_rsa_key.pub")"
export CARAVAN_BASTION_POSTGRES_PORT="$pg_port"
export CARAVAN_BASTION_POSTGRES_USER="postgres"
export CARAVAN_BASTION_POSTGRES_PASSWORD="$pg_password"
export CARAVAN_BASTION_MARIADB_PORT="$my_port"
export CARAVAN_BASTION_MARIADB_USER="caravan"
export CARAVAN_BASTION_MARIADB_PASSWORD="$my_password"
export CARAVAN_BASTION_MARKER="$marker"
export CARAVAN_BASTION_LOG="$dir/sshd.log"
ENV
chmod 600 "$dir/env"
