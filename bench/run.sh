#!/usr/bin/env bash
# Caravan's benchmark, one command: ./bench/run.sh
#
# Builds Caravan and the bare-Kestrel baseline (bench/Baseline) in Release, starts a throwaway
# PostgreSQL 15 on a loopback port, and for each store (SQLite, then PostgreSQL):
#   - starts Caravan and the baseline on the same store (same schema, same rows), seeds sources;
#   - runs wrk against them in alternation (warm-up, then ROUNDS rounds, the order swapped every
#     round) for GET a source and PATCH update-config (PATCH_CONNECTIONS connections, and again on
#     one connection for its latency), and computes throughput ratios and p99;
#   - on the PostgreSQL store, also POST query (SELECT 1) through Caravan's query route to a source
#     pointing at the bench's own PostgreSQL, against the same statement over a raw pooled Npgsql
#     connection in the baseline;
#   - GET a source with an STS token (POST /api/v1/token, minted afresh for each run) against the
#     same GET with the API key, both on Caravan (the baseline has no tokens);
#   - reads the peak RSS (VmHWM) of both processes after all their load;
#   - measures list latency (one connection, page_size 50) with 1,000 and then 100,000 sources in
#     the store, page 1 and a deep page (page 20 of 20, page 1,990 of 2,000);
#   - on SQLite, the scale phase: GET, list page 1 and PATCH of one organization's 100 sources with
#     1,000 sources in one store (10 organizations) and SCALE_SOURCES over SCALE_ORGS in a copy of
#     it (seeded with SQL straight into the store, in the shape Caravan writes: organization, source
#     row, create revision), both served at once and measured in alternating rounds; start-up time
#     on each and the big store's Caravan's peak RSS.
# Prints the table with PASS/MISS per target and writes it to bench/results/latest.md.
# Exit status: 0 when the benchmark ran and every target passed, 3 when it ran and a target was
# missed, anything else when the benchmark itself failed.
#
# Knobs (environment): ROUNDS (3), SECONDS_PER_RUN (10), WARMUP_SECONDS (8), LIST_SECONDS (6),
# CONNECTIONS (32), PATCH_CONNECTIONS (16: PATCH's throughput row), THREADS (2), STORES ("Sqlite Postgres"),
# SCALE_SOURCES (1000000; 0 skips the scale phase), SCALE_ORGS (10000), KINDS ("get patch patch1 query":
# the routes measured in rounds; the token rounds run with get), LIST_SIZES ("1000 100000"; "" skips the list phase).
# Only 127.0.0.1 is ever targeted; every load run is bounded by wrk's -d.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

ROUNDS=${ROUNDS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
WARMUP_SECONDS=${WARMUP_SECONDS:-8}
LIST_SECONDS=${LIST_SECONDS:-6}
CONNECTIONS=${CONNECTIONS:-32}
PATCH_CONNECTIONS=${PATCH_CONNECTIONS:-16}
SCALE_SOURCES=${SCALE_SOURCES:-1000000}   # the scale phase (SQLite): sources in the store, 0 to skip it
SCALE_ORGS=${SCALE_ORGS:-10000}           # ... over this many organizations of SCALE_SOURCES / SCALE_ORGS sources each
THREADS=${THREADS:-2}
STORES=${STORES:-"Sqlite Postgres"}
KINDS=${KINDS:-"get patch patch1 query"}
LIST_SIZES=${LIST_SIZES-"1000 100000"}
SEEDED=100          # sources created through the API; GET and PATCH pick among them

work=$(mktemp -d /tmp/caravan-bench.XXXXXX)
pg_bin=/usr/lib/postgresql/15/bin
pg_data="$work/pg"
pg_started=
pg_port=
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ -n "$pg_started" ]; then
    as_postgres "$pg_bin/pg_ctl" -D "$pg_data" -m fast stop >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# ---------------------------------------------------------------- tools and builds
if ! command -v wrk >/dev/null; then
  log "installing wrk"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
if [ ! -x "$pg_bin/initdb" ]; then
  log "installing PostgreSQL 15"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >/dev/null
fi

log "building Caravan and the baseline (Release)"
dotnet build src/Caravan.Api/Caravan.Api.csproj -c Release -nologo -v q >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
dotnet build bench/Baseline/Baseline.csproj -c Release -nologo -v q >>"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
caravan_dll="$root/src/Caravan.Api/bin/Release/net10.0/Caravan.Api.dll"
baseline_dll="$root/bench/Baseline/bin/Release/net10.0/Baseline.dll"

key="cvn_bench_$(python3 -c 'import secrets; print(secrets.token_hex(24))')"
results="$work/results.tsv"     # store, server, kind, phase, page/round, rps, mean, p50, p99, non2xx, errors
: >"$results"

# ---------------------------------------------------------------- PostgreSQL
start_postgres() {
  pg_port=$(free_port)
  mkdir -p "$pg_data"
  [ "$(id -u)" = 0 ] && chown -R postgres "$work"
  as_postgres "$pg_bin/initdb" -D "$pg_data" -U postgres --auth=trust >"$work/initdb.log" 2>&1 \
    || { cat "$work/initdb.log"; exit 1; }
  # Stock durability settings (fsync, synchronous_commit on): every PATCH commit is flushed.
  as_postgres "$pg_bin/pg_ctl" -D "$pg_data" -l "$work/pg.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $work -c max_connections=300" start >/dev/null
  pg_started=1
  # The database the query route's source reads (SELECT 1), whichever store Caravan runs on.
  "$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -qAt -c "CREATE DATABASE target" >/dev/null
  log "PostgreSQL 15 on 127.0.0.1:$pg_port"
}
psql_bench() { "$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -d bench -v ON_ERROR_STOP=1 -qAt "$@"; }

# ---------------------------------------------------------------- servers
wait_http() { # url, pid
  for _ in $(seq 1 300); do
    if curl -fsS -o /dev/null "$1" 2>/dev/null; then return 0; fi
    kill -0 "$2" 2>/dev/null || { log "server exited during start"; return 1; }
    sleep 0.1
  done
  log "no answer from $1"; return 1
}

# create_sources url count: creates count sources through the API, as a client would; prints the first and last id.
create_sources() {
  python3 - "$1" "$key" "$2" <<'PY'
import json, sys, urllib.request
url, key, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
body = json.dumps({"type": "postgres", "account_name": "Bench", "hostname": "db.example.com",
                   "username": "u", "password": "p", "database_name": "d"}).encode()
ids = []
for _ in range(count):
    request = urllib.request.Request(url + "/api/v1/sources/", data=body,
        headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    ids.append(json.load(urllib.request.urlopen(request))["id"])
assert ids == list(range(ids[0], ids[0] + count)), ids
print(ids[0], ids[-1])
PY
}

# Sets caravan_pid/caravan_url, baseline_pid/baseline_url for store $1.
start_servers() {
  local store=$1 dir="$work/$1"
  mkdir -p "$dir"
  local caravan_cs baseline_cs
  if [ "$store" = Sqlite ]; then
    caravan_cs="Data Source=$dir/caravan.db"
    baseline_cs="Data Source=$dir/caravan.db"
  else
    "$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -qAt -c "CREATE DATABASE bench" >/dev/null
    caravan_cs="Host=127.0.0.1;Port=$pg_port;Username=postgres;Database=bench"
    baseline_cs="$caravan_cs"
  fi
  # Rate limits off: wrk sends far more than any per-key limit with its one key.
  export ConnectionStrings__Caravan="$caravan_cs" Caravan__Storage__Provider="$store" \
    Caravan__Secrets__MasterKeyFile="$dir/master.key" Caravan__BootstrapApiKey="$key" \
    Caravan__RateLimits__Enabled=false Caravan__Query__MaxConcurrentPerSource=16
  if [ "$store" = Postgres ]; then
    dotnet "$caravan_dll" migrate >"$dir/migrate.log" 2>&1 || { cat "$dir/migrate.log"; exit 1; }
  fi

  local port
  port=$(free_port)
  caravan_url="http://127.0.0.1:$port"
  dotnet "$caravan_dll" --urls "$caravan_url" >"$dir/caravan.log" 2>&1 &
  caravan_pid=$!
  pids+=("$caravan_pid")
  wait_http "$caravan_url/healthz" "$caravan_pid" || { cat "$dir/caravan.log"; exit 1; }

  # Seed through the API, as a client would.
  read -r first_id last_id < <(create_sources "$caravan_url" "$SEEDED")

  # The query route's target: a database of the bench's own PostgreSQL (trust auth, so any
  # password logs in), measured on every store lane while that server runs.
  query_id=
  query_db=
  if [ -n "$pg_port" ]; then
    query_id=$(curl -fsS -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
      -d "{\"type\": \"postgres\", \"account_name\": \"Query target\", \"hostname\": \"127.0.0.1\", \"port\": $pg_port, \"username\": \"postgres\", \"password\": \"trust\", \"database_name\": \"target\"}" \
      "$caravan_url/api/v1/sources/" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    query_db="Host=127.0.0.1;Port=$pg_port;Username=postgres;Database=target;Maximum Pool Size=16"
  fi

  port=$(free_port)
  baseline_url="http://127.0.0.1:$port"
  BASELINE_QUERY_DB="$query_db" BASELINE_STORE="$store" BASELINE_DB="$baseline_cs" BASELINE_KEY="$key" \
    dotnet "$baseline_dll" --urls "$baseline_url" >"$dir/baseline.log" 2>&1 &
  baseline_pid=$!
  pids+=("$baseline_pid")
  for i in $(seq 1 300); do
    curl -fsS -o /dev/null -H "Authorization: Bearer $key" "$baseline_url/api/v1/sources/$first_id/" 2>/dev/null && break
    kill -0 "$baseline_pid" 2>/dev/null && [ "$i" -lt 300 ] || { cat "$dir/baseline.log"; exit 1; }
    sleep 0.1
  done
  log "$store: Caravan pid $caravan_pid at $caravan_url, baseline pid $baseline_pid at $baseline_url, sources $first_id..$last_id"

  # Same answers from both (the ETag may differ only by version).
  local a b
  a=$(curl -fsS -H "Authorization: Bearer $key" "$caravan_url/api/v1/sources/$first_id/")
  b=$(curl -fsS -H "Authorization: Bearer $key" "$baseline_url/api/v1/sources/$first_id/")
  [ "$a" = "$b" ] || { log "GET differs: Caravan $a / baseline $b"; exit 1; }
  a=$(curl -fsS -X PATCH -H "Authorization: Bearer $key" -H 'Content-Type: application/json' -d '{"port": 5433}' "$caravan_url/api/v1/sources/$first_id/update-config/")
  b=$(curl -fsS -X PATCH -H "Authorization: Bearer $key" -H 'Content-Type: application/json' -d '{"port": 5433}' "$baseline_url/api/v1/sources/$first_id/update-config/")
  [ "$a" = "$b" ] || { log "PATCH differs: Caravan $a / baseline $b"; exit 1; }
  log "$store: both answer GET $a"
  if [ -n "$query_id" ]; then
    a=$(curl -fsS -H "Authorization: Bearer $key" -H 'Content-Type: application/json' -d '{"sql": "SELECT 1"}' "$caravan_url/api/v1/sources/$query_id/query/")
    b=$(curl -fsS -H "Authorization: Bearer $key" -H 'Content-Type: application/json' -d '{"sql": "SELECT 1"}' "$baseline_url/api/v1/sources/$query_id/query/")
    [ "${a%%\"row_count*}" = "${b%%\"row_count*}" ] || { log "query differs: Caravan $a / baseline $b"; exit 1; }
    log "$store: both answer query $a"
  fi
}

stop_servers() {
  kill "$caravan_pid" "$baseline_pid" 2>/dev/null || true
  wait "$caravan_pid" 2>/dev/null || true
  wait "$baseline_pid" 2>/dev/null || true
}

# PATCH's throughput row at PATCH_CONNECTIONS, its latency row (patch1) on one connection, the rest at CONNECTIONS.
connections_of() {
  case $1 in patch) echo "$PATCH_CONNECTIONS" ;; patch1) echo 1 ;; *) echo "$CONNECTIONS" ;; esac
}

hwm_mb() { awk '/^VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }

# A token of the bench's key for every source of its organization, valid for 15 minutes.
mint_token() {
  curl -fsS -H "Authorization: Bearer $key" -H 'Content-Type: application/json' -d '{"uid": "bench", "ttl": 900}' \
    "$1/api/v1/token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}

# run_wrk store server url kind phase label seconds connections [page]
# Kind gettoken is GET a source with a fresh token instead of the key.
run_wrk() {
  local store=$1 server=$2 url=$3 kind=$4 phase=$5 label=$6 seconds=$7 conns=$8 page=${9:-1} threads=$THREADS out credential=$key
  [ "$conns" -lt "$threads" ] && threads=$conns
  [ "$kind" = gettoken ] && credential=$(mint_token "$url")
  out=$(BENCH_QUERY_ID=${query_id:-1} BENCH_KIND=$kind BENCH_KEY=$credential BENCH_ID_MIN=$first_id BENCH_ID_MAX=$last_id BENCH_PAGE=$page \
    wrk -t"$threads" -c"$conns" -d"${seconds}s" --timeout 10s -s bench/wrk/sources.lua "$url" 2>&1) \
    || { echo "$out"; log "wrk failed"; exit 1; }
  local line
  line=$(grep '^RESULT' <<<"$out") || { echo "$out"; exit 1; }
  # RESULT requests=N rps=X mean_ms=X p50_ms=X p99_ms=X non2xx=N errors=N
  read -r rps mean p50 p99 non2xx errors < <(sed -E 's/.*rps=([^ ]+) mean_ms=([^ ]+) p50_ms=([^ ]+) p99_ms=([^ ]+) non2xx=([^ ]+) errors=([^ ]+).*/\1 \2 \3 \4 \5 \6/' <<<"$line")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$store" "$server" "$kind" "$phase" "$label" "$rps" "$mean" "$p50" "$p99" "$non2xx" "$errors" >>"$results"
  log "$store $phase $kind ${label} $server: $rps req/s, p50 $p50 ms, p99 $p99 ms, non-2xx $non2xx, errors $errors"
}

# Adds copies of source $first_id (settings as stored, secrets {}) until the organization has $1.
seed_to() {
  local store=$1 total=$2 have add
  have=$(curl -fsS -H "Authorization: Bearer $key" "$caravan_url/api/v1/sources/?page_size=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])')
  add=$((total - have))
  [ "$add" -gt 0 ] || return 0
  local columns="organization_id, type, account_name, settings, secrets, is_fully_configured, version, created_at, updated_at"
  if [ "$store" = Sqlite ]; then
    python3 - "$work/Sqlite/caravan.db" "$add" "$first_id" <<'PY'
import sqlite3, sys
db, add, template = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
c = sqlite3.connect(db, timeout=30)
c.execute("""WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
  INSERT INTO sources (organization_id, type, account_name, settings, secrets, is_fully_configured, version, created_at, updated_at)
  SELECT organization_id, type, account_name, settings, '{}', is_fully_configured, 1, created_at, updated_at
  FROM n, sources WHERE sources.id = ?""", (add, template))
c.commit()
c.execute("ANALYZE")
c.commit()
c.close()
PY
  else
    psql_bench -c "INSERT INTO sources ($columns)
      SELECT organization_id, type, account_name, settings, '{}', is_fully_configured, 1, created_at, updated_at
      FROM generate_series(1, $add), sources WHERE id = $first_id" >/dev/null
    # What autovacuum would have done by the time a store holds this many rows.
    psql_bench -c "VACUUM ANALYZE" >/dev/null
  fi
  log "$store: seeded to $total sources"
}

# ---------------------------------------------------------------- the scale phase (SQLite)
# Copies the organization $3's sources (rows and create revisions, as Caravan wrote them) into new
# organizations until the store holds $2 sources; Caravan is stopped meanwhile.
seed_orgs() {
  python3 - "$1" "$2" "$3" <<'PY'
import sqlite3, sys, time
db, total, template_org = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
c = sqlite3.connect(db, timeout=30)
have = c.execute("SELECT COUNT(*) FROM sources").fetchone()[0]
per_org = c.execute("SELECT COUNT(*) FROM sources WHERE organization_id = ?", (template_org,)).fetchone()[0]
orgs = (total - have) // per_org
now = int(time.time() * 1000)
first = c.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM organizations").fetchone()[0]
c.execute("""WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?)
  INSERT INTO organizations (id, name, created_at) SELECT ? + i, 'scale-' || (? + i), ? FROM n""", (orgs, first, first, now))
# Sources in id order, one organization after another, as creates through the API would number them.
c.execute("""INSERT INTO sources (organization_id, type, account_name, settings, secrets, is_fully_configured, version, created_at, updated_at)
  SELECT o.id, s.type, s.account_name, s.settings, s.secrets, s.is_fully_configured, s.version, s.created_at, s.updated_at
  FROM organizations o JOIN sources s ON s.organization_id = ? WHERE o.id >= ? ORDER BY o.id, s.id""", (template_org, first))
# Each copy's create revision, from its template's (the k-th source of an organization copies the k-th of the template).
c.execute("""INSERT INTO source_revisions (source_id, number, organization_id, at, key_id, action, changes)
  SELECT n.id, r.number, n.organization_id, r.at, NULL, r.action, r.changes
  FROM (SELECT id, organization_id, ROW_NUMBER() OVER (PARTITION BY organization_id ORDER BY id) AS k FROM sources WHERE organization_id >= ?) n
  JOIN (SELECT id, ROW_NUMBER() OVER (ORDER BY id) AS k FROM sources WHERE organization_id = ?) t ON t.k = n.k
  JOIN source_revisions r ON r.source_id = t.id AND r.number = 1""", (first, template_org))
c.commit()
c.execute("ANALYZE")
c.commit()
print("sources, organizations:", c.execute("SELECT COUNT(*) FROM sources").fetchone()[0], c.execute("SELECT COUNT(*) FROM organizations").fetchone()[0])
PY
}

# start_scale_caravan small|big: starts a Caravan on that scale store; sets caravan_pid/caravan_url
# and startup_ms (launch to /readyz).
start_scale_caravan() {
  local which=$1 port started
  port=$(free_port)
  caravan_url="http://127.0.0.1:$port"
  started=$(date +%s%N)
  ConnectionStrings__Caravan="Data Source=$work/Scale/$which.db" \
    dotnet "$caravan_dll" --urls "$caravan_url" >>"$work/Scale/$which.log" 2>&1 &
  caravan_pid=$!
  pids+=("$caravan_pid")
  for _ in $(seq 1 3000); do
    curl -fsS -o /dev/null "$caravan_url/readyz" 2>/dev/null && break
    kill -0 "$caravan_pid" 2>/dev/null || { cat "$work/Scale/$which.log"; exit 1; }
    sleep 0.01
  done
  startup_ms=$(( ($(date +%s%N) - started) / 1000000 ))
}

# Both sizes are served at once, each by its own Caravan on its own file, and measured in
# alternation like the throughput rounds (the order swapped every round), so that a change in the
# machine's load falls on both and not on one size.
scale_phase() {
  local dir="$work/Scale" bench_org per_org=$(( SCALE_SOURCES / SCALE_ORGS )) small_url big_url small_pid big_pid
  mkdir -p "$dir"
  baseline_pid=
  export Caravan__Storage__Provider=Sqlite Caravan__Secrets__MasterKeyFile="$dir/master.key" \
    Caravan__BootstrapApiKey="$key" Caravan__RateLimits__Enabled=false
  start_scale_caravan small
  read -r first_id last_id < <(create_sources "$caravan_url" "$per_org")
  stop_servers
  bench_org=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT organization_id FROM sources WHERE id = ?', (int(sys.argv[2]),)).fetchone()[0])" "$dir/small.db" "$first_id")
  log "Scale: seeding to $(( per_org * 10 )) sources"
  seed_orgs "$dir/small.db" $(( per_org * 10 )) "$bench_org" >&2
  # The big store starts as a copy of the small one (same keys, same bench organization and ids).
  python3 -c "import sqlite3,sys; a=sqlite3.connect(sys.argv[1]); b=sqlite3.connect(sys.argv[2]); a.backup(b); b.close(); a.close()" "$dir/small.db" "$dir/big.db"
  log "Scale: seeding to $SCALE_SOURCES sources over $SCALE_ORGS organizations"
  seed_orgs "$dir/big.db" "$SCALE_SOURCES" "$bench_org" >&2

  # Start-up, each alone on the machine.
  start_scale_caravan big
  big_url=$caravan_url big_pid=$caravan_pid
  log "Scale: Caravan ready in $startup_ms ms with $SCALE_SOURCES sources"
  printf 'Sqlite\tcaravan\tstartup\tscale\tbig\t%s\n' "$startup_ms" >>"$work/scale.tsv"
  kill -STOP "$big_pid"
  start_scale_caravan small
  small_url=$caravan_url small_pid=$caravan_pid
  kill -CONT "$big_pid"
  printf 'Sqlite\tcaravan\tstartup\tscale\tsmall\t%s\n' "$startup_ms" >>"$work/scale.tsv"

  local kind which url order
  for which in small big; do
    if [ "$which" = small ]; then url=$small_url; else url=$big_url; fi
    run_wrk Sqlite caravan "$url" get warmup "scale:$which" "$WARMUP_SECONDS" "$CONNECTIONS"
    run_wrk Sqlite caravan "$url" list warmup "scale:$which" 2 1 1
    run_wrk Sqlite caravan "$url" patch warmup "scale:$which" 2 "$PATCH_CONNECTIONS"
  done
  for round in $(seq 1 "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then order="small big"; else order="big small"; fi
    for kind in get list patch; do
      for which in $order; do
        if [ "$which" = small ]; then url=$small_url; else url=$big_url; fi
        case $kind in
          get) run_wrk Sqlite caravan "$url" get scale "$which:$round" "$SECONDS_PER_RUN" "$CONNECTIONS" ;;
          list) run_wrk Sqlite caravan "$url" list scale "$which:$round" "$SECONDS_PER_RUN" 1 1 ;;
          patch) run_wrk Sqlite caravan "$url" patch scale "$which:$round" "$SECONDS_PER_RUN" "$PATCH_CONNECTIONS" ;;
        esac
      done
    done
  done
  printf 'Sqlite\tcaravan\trss\tscale\tbig\t%s\n' "$(hwm_mb "$big_pid")" >>"$work/scale.tsv"
  kill "$small_pid" "$big_pid" 2>/dev/null || true
  wait "$small_pid" "$big_pid" 2>/dev/null || true
}

# ---------------------------------------------------------------- the runs
case " $STORES " in *" Postgres "*) start_postgres ;; esac

for store in $STORES; do
  log "=== $store ==="
  start_servers "$store"

  kinds=
  for kind in $KINDS; do
    [ "$kind" = query ] && [ -z "$query_id" ] && continue
    kinds="$kinds $kind"
  done
  tokens=; case " $kinds " in *" get "*) tokens=1 ;; esac
  log "$store: warm-up"
  for kind in $kinds; do
    run_wrk "$store" caravan "$caravan_url" "$kind" warmup 0 "$WARMUP_SECONDS" "$(connections_of "$kind")"
    run_wrk "$store" baseline "$baseline_url" "$kind" warmup 0 "$WARMUP_SECONDS" "$(connections_of "$kind")"
  done
  [ -n "$tokens" ] && run_wrk "$store" caravan "$caravan_url" gettoken warmup 0 "$WARMUP_SECONDS" "$CONNECTIONS"

  for round in $(seq 1 "$ROUNDS"); do
    for kind in $kinds; do
      if [ $((round % 2)) = 1 ]; then order="caravan baseline"; else order="baseline caravan"; fi
      for server in $order; do
        if [ "$server" = caravan ]; then url=$caravan_url; else url=$baseline_url; fi
        run_wrk "$store" "$server" "$url" "$kind" round "$round" "$SECONDS_PER_RUN" "$(connections_of "$kind")"
      done
    done

    # The token GET beside the key GET of this round, in the order swapped each round.
    if [ $((round % 2)) = 1 ]; then order="gettoken get"; else order="get gettoken"; fi
    [ -n "$tokens" ] || order=
    for kind in $order; do
      run_wrk "$store" caravan "$caravan_url" "$kind" tokenround "$round" "$SECONDS_PER_RUN" "$CONNECTIONS"
    done
  done

  # List latency: one connection, so the figure is the service time of one request.
  for total in $LIST_SIZES; do
    seed_to "$store" "$total"
    deep=$((total / 50 - 10)); [ "$total" = 1000 ] && deep=20
    for page in 1 "$deep"; do
      run_wrk "$store" caravan "$caravan_url" list warmup "$total:$page" 2 1 "$page"
      run_wrk "$store" caravan "$caravan_url" list list "$total:$page" "$LIST_SECONDS" 1 "$page"
      run_wrk "$store" baseline "$baseline_url" list list "$total:$page" "$LIST_SECONDS" 1 "$page"
    done
  done

  printf '%s\tcaravan\trss\t-\t-\t%s\n' "$store" "$(hwm_mb "$caravan_pid")" >>"$work/rss.tsv"
  printf '%s\tbaseline\trss\t-\t-\t%s\n' "$store" "$(hwm_mb "$baseline_pid")" >>"$work/rss.tsv"
  stop_servers
done
: >"$work/scale.tsv"
case " $STORES " in *" Sqlite "*) [ "$SCALE_SOURCES" -gt 0 ] && scale_phase ;; esac

# ---------------------------------------------------------------- report
mkdir -p bench/results
machine="$(nproc) cores ($(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r), .NET $(dotnet --list-runtimes | awk '/Microsoft.AspNetCore.App/ {v=$2} END {print v}'), $(wrk --version 2>&1 | head -1 | awk '{print $1, $2}'), SQLite $(python3 -c 'import sqlite3; print(sqlite3.sqlite_version)') (python; Caravan bundles its own), PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}')"
status=0
python3 - "$results" "$work/rss.tsv" "$work/scale.tsv" "$machine" "$ROUNDS" "$SECONDS_PER_RUN" "$CONNECTIONS" "$THREADS" "$LIST_SECONDS" "$PATCH_CONNECTIONS" \
  "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet -- src 2>/dev/null || echo '+changes')" \
  >bench/results/latest.md <<'PY' || status=$?
import sys, statistics, datetime
results, rss_file, scale_file, machine, rounds, secs, conns, threads, list_secs, patch_conns, commit = sys.argv[1:]
rows = [l.rstrip("\n").split("\t") for l in open(results) if l.strip()]
rss = {}
for l in open(rss_file):
    store, server, _, _, _, mb = l.rstrip("\n").split("\t")
    rss[(store, server)] = float(mb)
stores = [s for s in ["Sqlite", "Postgres"] if any(r[0] == s for r in rows)]
bad = [r for r in rows if r[3] != "warmup" and (int(r[9]) or int(r[10]))]
missed = []
def verdict(ok, name):
    if not ok: missed.append(name)
    return "PASS" if ok else "MISS"
out = []
p = out.append
p(f"# Caravan benchmark results\n")
p(f"- run: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, commit {commit}")
p(f"- machine: {machine}")
p(f"- load: wrk -t{threads} -c{conns}, {rounds} rounds x {secs} s per route and server, alternating (order swapped each round), after a warm-up; "
  f"load generator and servers share the same cores")
p(f"- list latency: wrk -t1 -c1 for {list_secs} s per page, page_size 50\n")
p("## Throughput (GET a source, PATCH update-config, POST query with SELECT 1 on the bench's PostgreSQL)\n")
p("| store | route | Caravan req/s | baseline req/s | ratio (per-round min-max) | target | Caravan p99 ms | baseline p99 ms |")
p("| --- | --- | ---: | ---: | ---: | --- | ---: | ---: |")
for store in stores:
    for kind, label, target in (("get", "GET /sources/{id}/", 0.6),
                                ("patch", f"PATCH update-config, {patch_conns} connections (vs group-committed bare UPDATE)" if store == "Sqlite"
                                    else f"PATCH update-config, {patch_conns} connections (vs bare UPDATE)", 0.35 if store == "Sqlite" else 0.5),
                                ("patch1", "PATCH update-config, 1 connection", None),
                                ("query", "POST query SELECT 1 (vs raw pooled Npgsql)", 0.5)):
        def sel(server):
            return [r for r in rows if r[0] == store and r[1] == server and r[2] == kind and r[3] == "round"]
        c, b = sel("caravan"), sel("baseline")
        if not c or not b: continue
        crps = statistics.mean(float(r[5]) for r in c); brps = statistics.mean(float(r[5]) for r in b)
        per_round = [float(x[5]) / float(y[5]) for x, y in zip(sorted(c, key=lambda r: r[4]), sorted(b, key=lambda r: r[4]))]
        ratio = crps / brps
        cp99 = statistics.median(float(r[8]) for r in c); bp99 = statistics.median(float(r[8]) for r in b)
        if target:
            t = f"≥ {target}: {verdict(ratio >= target, f'{store} {kind} ratio')}"
        elif kind == "patch1":
            # One connection: the figure is latency; p99 within 2x of the baseline's.
            t = f"p99 ≤ 2x baseline's: {verdict(cp99 <= 2 * bp99, f'{store} patch p99 at one connection')} ({cp99 / bp99:.2f}x)"
        else:
            t = "(no target)"
        p(f"| {store} | {label} | {crps:,.0f} | {brps:,.0f} | **{ratio:.2f}** ({min(per_round):.2f}-{max(per_round):.2f}) | {t} | {cp99:.2f} | {bp99:.2f} |")
p("\nreq/s: mean over the rounds; p99: median over the rounds.\n")
p("## Tokens (GET /sources/{id}/ with an STS token against the same GET with the API key, both Caravan)\n")
p("| store | key req/s | token req/s | ratio (per-round min-max) | target | key p99 ms | token p99 ms |")
p("| --- | ---: | ---: | ---: | --- | ---: | ---: |")
for store in stores:
    def tok(kind):
        return sorted([r for r in rows if r[0] == store and r[1] == "caravan" and r[2] == kind and r[3] == "tokenround"], key=lambda r: r[4])
    k, t = tok("get"), tok("gettoken")
    if not k or not t: continue
    krps = statistics.mean(float(r[5]) for r in k); trps = statistics.mean(float(r[5]) for r in t)
    per_round = [float(x[5]) / float(y[5]) for x, y in zip(t, k)]
    ratio = trps / krps
    p(f"| {store} | {krps:,.0f} | {trps:,.0f} | **{ratio:.2f}** ({min(per_round):.2f}-{max(per_round):.2f}) | ≥ 0.9: {verdict(ratio >= 0.9, f'{store} token get ratio')} "
      f"| {statistics.median(float(r[8]) for r in k):.2f} | {statistics.median(float(r[8]) for r in t):.2f} |")
p("")
p("## Peak RSS (VmHWM over the whole store's run, including the list phase at 100,000 sources)\n")
p("| store | Caravan MB | baseline MB | target |")
p("| --- | ---: | ---: | --- |")
for store in stores:
    c = rss.get((store, "caravan")); b = rss.get((store, "baseline"))
    p(f"| {store} | {c:.0f} | {b:.0f} | ≤ 200 MB: {verdict(c <= 200, f'{store} RSS')} |")
p("\n## List latency, GET /api/v1/sources/?page=N&page_size=50, one connection\n")
p("| store | page | Caravan median ms at 1,000 | at 100,000 | ratio | target | Caravan mean ms 1,000 / 100,000 | baseline median ms 1,000 / 100,000 |")
p("| --- | --- | ---: | ---: | ---: | --- | ---: | ---: |")
def lat(store, server, total, which):
    rs = [r for r in rows if r[0] == store and r[1] == server and r[2] == "list" and r[3] == "list" and r[4].startswith(f"{total}:")]
    rs.sort(key=lambda r: int(r[4].split(":")[1]))
    r = rs[0] if which == "first" else rs[-1]
    return r
for store in stores:
    for which, name in (("first", "page 1"), ("deep", "deep")):
        try:
            small, big = lat(store, "caravan", 1000, which), lat(store, "caravan", 100000, which)
            bs, bb = lat(store, "baseline", 1000, which), lat(store, "baseline", 100000, which)
        except IndexError:
            continue
        pages = f"{name} ({small[4].split(':')[1]} / {big[4].split(':')[1]})"
        ratio = float(big[7]) / float(small[7])
        p(f"| {store} | {pages} | {float(small[7]):.2f} | {float(big[7]):.2f} | **{ratio:.2f}** | ≤ 1.5: {verdict(ratio <= 1.5, f'{store} list {name}')} "
          f"| {float(small[6]):.2f} / {float(big[6]):.2f} | {float(bs[7]):.2f} / {float(bb[7]):.2f} |")
p("")
scale = [l.rstrip("\n").split("\t") for l in open(scale_file) if l.strip()]
if scale:
    p("## Scale (SQLite): one organization's 100 sources, with 1,000 sources in the store and with the big store\n")
    p("Both stores served at once, each by its own Caravan, measured in alternation (order swapped each round); "
      "req/s and list medians are means over the rounds.\n")
    def srounds(kind, which):
        return sorted([r for r in rows if r[2] == kind and r[3] == "scale" and r[4].split(":")[0] == which], key=lambda r: r[4])
    p("| figure | at 1,000 sources | at the big store | ratio (per-round min-max) | target |")
    p("| --- | ---: | ---: | ---: | --- |")
    for kind, name, col in (("get", "GET req/s", 5), ("patch", "PATCH req/s", 5), ("list", "list page 1, median ms (1 connection)", 7)):
        small, big = srounds(kind, "small"), srounds(kind, "big")
        if not small or not big: continue
        s_mean = statistics.mean(float(r[col]) for r in small); b_mean = statistics.mean(float(r[col]) for r in big)
        if kind == "list":
            ratio = b_mean / s_mean; per_round = [float(b[col]) / float(s[col]) for s, b in zip(small, big)]
            shown = f"{s_mean:.2f} | {b_mean:.2f} | {ratio:.2f}x"
        else:
            ratio = s_mean / b_mean; per_round = [float(s[col]) / float(b[col]) for s, b in zip(small, big)]
            shown = f"{s_mean:,.0f} | {b_mean:,.0f} | {ratio:.2f}x slower"
        p(f"| {name} | {shown} ({min(per_round):.2f}-{max(per_round):.2f}) | ≤ 1.2x: {verdict(ratio <= 1.2, f'scale {kind}')} |")
    start = {r[4]: float(r[5]) for r in scale if r[2] == "startup"}
    if "big" in start:
        p(f"| start-up to /readyz, ms | {start.get('small', 0):,.0f} | {start['big']:,.0f} | | < 2,000 ms: {verdict(start['big'] < 2000, 'scale start-up')} |")
    peak = [float(r[5]) for r in scale if r[2] == "rss"]
    if peak:
        p(f"| Caravan peak RSS, MB (VmHWM) | | {peak[0]:.0f} | | < 250 MB: {verdict(peak[0] < 250, 'scale RSS')} |")
    p("")
if bad:
    p("**Invalid run: some measured requests failed** (non-2xx or socket errors):\n")
    for r in bad: p(f"- {r[0]} {r[1]} {r[2]} {r[4]}: non-2xx {r[9]}, errors {r[10]}")
    p("")
p(f"**Targets: {'all PASS' if not missed else 'MISS: ' + ', '.join(missed)}**")
print("\n".join(out))
sys.exit(2 if bad else (3 if missed else 0))
PY
cat bench/results/latest.md
cp "$results" bench/results/latest.tsv
log "written to bench/results/latest.md (raw figures: bench/results/latest.tsv)"
exit "$status"
