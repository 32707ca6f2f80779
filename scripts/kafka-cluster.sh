#!/usr/bin/env bash
# A three-broker Kafka-protocol cluster for development and tests: three Tansu 0.6 brokers
# that share one PostgreSQL store, so any broker can die and the others serve every
# partition (Tansu's brokers are stateless: each one leads every partition and reports
# itself as the cluster's one broker, all under the same node id).
#
#   scripts/kafka-cluster.sh up NAME [CLIENTS]   hosts NAME-h1..h3 run a broker each, h4 PostgreSQL,
#                                                h5.. are left for clients (default 2)
#   scripts/kafka-cluster.sh brokers NAME        the bootstrap list: b1,b2,b3
#   scripts/kafka-cluster.sh kill-broker NAME I  the host of broker I dies (every process on it)
#   scripts/kafka-cluster.sh start-broker NAME I start broker I again (after a kill)
#   scripts/kafka-cluster.sh status NAME         which brokers answer
#   scripts/kafka-cluster.sh down NAME           stop everything, remove the hosts and the store
#   scripts/kafka-cluster.sh install|path        build (once, cached) / print the broker binary
#
# Hosts are network namespaces made by scripts/cluster.sh (root and `ip netns`): broker I
# listens on 10.99.0.(10+I):9092, PostgreSQL on 10.99.0.14:5432; run clients there with
# `scripts/cluster.sh exec NAME 5 pitwall ... --brokers $(scripts/kafka-cluster.sh brokers NAME)`.
# With PITWALL_CLUSTER_LOCAL=1 everything runs on 127.0.0.1 instead (brokers on ports
# 19091+I, PostgreSQL on 15432), no root needed for the hosts, and kill-broker kills the
# broker's process.
#
# PostgreSQL is the one part that must stay up: it holds every topic, offset and group.
# Brokers come and go; losing host 4 loses the store (a replicated PostgreSQL would be the
# next step). The PostgreSQL binaries are Debian's `postgresql`; the instance is this
# script's own (initdb into /tmp/pitwall-kc-NAME, run as the `postgres` user), never the
# system service. The broker is `cargo install tansu --features postgres`, cached in
# ~/.cache/pitwall/tansu-pg (PITWALL_CACHE): a long compile the first time (~430 crates: 6.6
# minutes on 2 idle cores at opt-level 1, 8.3 at the default 3, far longer when the cores are
# busy), nothing after.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${PITWALL_CACHE:-$HOME/.cache/pitwall}
BIN=$CACHE/tansu-pg/bin/tansu
TANSU_VERSION=0.6.0
LOCAL=${PITWALL_CLUSTER_LOCAL:-0}
BROKERS=3
PG_HOST=4

die() { echo "kafka-cluster.sh: $*" >&2; exit 2; }

install_tansu() {
  [ -x "$BIN" ] && return 0
  command -v cargo >/dev/null || die "cargo is needed to build the broker"
  echo "building tansu $TANSU_VERSION with PostgreSQL storage into $CACHE/tansu-pg (once; a long compile)"
  # --locked: the crate's own Cargo.lock. Without it a newer deadpool-postgres is picked and
  # tansu-storage 0.6.0 does not compile. The build directory is kept until the install
  # succeeds, so an interrupted build resumes. opt-level 1 and no debug info: a fifth less
  # compile time, and the broker is fast enough for tests and failover (the stores' SQL sets
  # its pace, not its own code).
  CARGO_TARGET_DIR="$CACHE/tansu-pg-target" CARGO_PROFILE_RELEASE_OPT_LEVEL=1 \
    CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_INCREMENTAL=false \
    cargo install tansu --version "$TANSU_VERSION" --features postgres --locked --root "$CACHE/tansu-pg" --quiet
  rm -rf "$CACHE/tansu-pg-target"
  "$BIN" --version
}

pg_bin() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -n "$d" ] && [ -x "$d/postgres" ] || die "PostgreSQL is not installed (apt-get install postgresql)"
  echo "$d"
}

run_dir() { echo "/tmp/pitwall-kc-$1"; }

addr() {
  if [ "$LOCAL" = 1 ]; then echo 127.0.0.1; else bash "$HERE/cluster.sh" addr "$1" "$2"; fi
}

broker_port() { if [ "$LOCAL" = 1 ]; then echo $((19091 + $1)); else echo 9092; fi; }
pg_port() { if [ "$LOCAL" = 1 ]; then echo 15432; else echo 5432; fi; }

# Runs a command on host I, in the background, output to a log; prints its pid.
spawn() {
  local name=$1 host=$2 log=$3
  shift 3
  if [ "$LOCAL" = 1 ]; then
    nohup "$@" >>"$log" 2>&1 &
  else
    nohup ip netns exec "pwc-$name-h$host" "$@" >>"$log" 2>&1 &
  fi
  echo $!
}

# Does host I (or this shell, locally) reach ADDR:PORT?
port_open() {
  local name=$1 host=$2 a=$3 p=$4
  if [ "$LOCAL" = 1 ]; then
    (exec 3<>"/dev/tcp/$a/$p") 2>/dev/null
  else
    ip netns exec "pwc-$name-h$host" timeout 1 bash -c "exec 3<>/dev/tcp/$a/$p" 2>/dev/null
  fi
}

wait_port() {
  local name=$1 host=$2 a=$3 p=$4 pid=$5 what=$6 log=$7
  for _ in $(seq 1 200); do
    port_open "$name" "$host" "$a" "$p" && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "$what did not come up on $a:$p; log $log:" >&2
  tail -20 "$log" >&2 || true
  return 1
}

brokers() {
  local name=$1 list=()
  for i in $(seq 1 $BROKERS); do list+=("$(addr "$name" "$i"):$(broker_port "$i")"); done
  (IFS=,; echo "${list[*]}")
}

up() {
  local name=$1 clients=${2:-2}
  [[ "$name" =~ ^[a-z0-9]{1,8}$ ]] || die "cluster name '$name' must be 1-8 characters of [a-z0-9]"
  install_tansu
  local pgbin dir
  pgbin=$(pg_bin)
  down "$name" >/dev/null 2>&1 || true
  if [ "$LOCAL" != 1 ]; then
    bash "$HERE/cluster.sh" up "$name" $((PG_HOST + clients)) >/dev/null
  fi
  dir=$(run_dir "$name")
  mkdir -p "$dir"
  chown postgres: "$dir" 2>/dev/null || true

  # The store: PostgreSQL on host 4, trusting the cluster's own private network.
  local pga pgp
  pga=$(addr "$name" $PG_HOST)
  pgp=$(pg_port)
  runuser -u postgres -- "$pgbin/initdb" -D "$dir/pg" --auth=trust -U postgres >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
  echo "host all all $pga/24 trust" >>"$dir/pg/pg_hba.conf"
  local pgpid
  pgpid=$(spawn "$name" $PG_HOST "$dir/postgres.log" runuser -u postgres -- "$pgbin/postgres" -D "$dir/pg" \
    -c listen_addresses="$pga" -p "$pgp" -c unix_socket_directories="$dir/pg" -c max_connections=200)
  echo "$pgpid" >"$dir/postgres.pid"
  wait_port "$name" $PG_HOST "$pga" "$pgp" "$pgpid" PostgreSQL "$dir/postgres.log"
  for _ in $(seq 1 50); do
    runuser -u postgres -- "$pgbin/pg_isready" -q -h "$dir/pg" -p "$pgp" && break
    sleep 0.1
  done
  runuser -u postgres -- "$pgbin/psql" -q -v ON_ERROR_STOP=1 -h "$dir/pg" -p "$pgp" -U postgres \
    -f - postgres <"$HERE/tansu-postgres.sql" >"$dir/schema.log" 2>&1 \
    || { cat "$dir/schema.log" >&2; die "applying scripts/tansu-postgres.sql failed"; }

  for i in $(seq 1 $BROKERS); do start_broker "$name" "$i"; done
  echo "kafka cluster $name: brokers $(brokers "$name"), PostgreSQL $pga:$pgp (host $PG_HOST), logs in $dir"
}

start_broker() {
  local name=$1 i=$2 dir a p pid
  dir=$(run_dir "$name")
  [ -d "$dir/pg" ] || die "no kafka cluster '$name' (scripts/kafka-cluster.sh up $name)"
  a=$(addr "$name" "$i")
  p=$(broker_port "$i")
  pid=$(spawn "$name" "$i" "$dir/broker-$i.log" "$BIN" broker \
    --listener-url "tcp://$a:$p" --advertised-listener-url "tcp://$a:$p" \
    --storage-engine "postgres://postgres@$(addr "$name" $PG_HOST):$(pg_port)/postgres")
  echo "$pid" >"$dir/broker-$i.pid"
  wait_port "$name" "$i" "$a" "$p" "$pid" "broker $i" "$dir/broker-$i.log"
}

kill_broker() {
  local name=$1 i=$2 dir
  dir=$(run_dir "$name")
  if [ "$LOCAL" = 1 ]; then
    [ -f "$dir/broker-$i.pid" ] && kill -9 "$(cat "$dir/broker-$i.pid")" 2>/dev/null || true
  else
    bash "$HERE/cluster.sh" kill "$name" "$i"
  fi
}

status() {
  local name=$1 ok=0
  for i in $(seq 1 $BROKERS); do
    local a p
    a=$(addr "$name" "$i")
    p=$(broker_port "$i")
    if port_open "$name" $PG_HOST "$a" "$p"; then echo "broker $i $a:$p up"; else echo "broker $i $a:$p down"; ok=1; fi
  done
  return $ok
}

down() {
  local name=$1 dir
  dir=$(run_dir "$name")
  for f in "$dir"/broker-*.pid; do
    [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null || true
  done
  if [ -d "$dir/pg" ]; then
    runuser -u postgres -- "$(pg_bin)/pg_ctl" -D "$dir/pg" stop -m immediate >/dev/null 2>&1 || true
  fi
  if [ "$LOCAL" != 1 ]; then
    bash "$HERE/cluster.sh" down "$name" >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
  echo "kafka cluster $name: down"
}

cmd=${1:-}
shift || true
case "$cmd" in
  up) [ $# -ge 1 ] || die "usage: up NAME [CLIENTS]"; up "$@" ;;
  brokers) [ $# = 1 ] || die "usage: brokers NAME"; brokers "$1" ;;
  kill-broker) [ $# = 2 ] || die "usage: kill-broker NAME I"; kill_broker "$1" "$2" ;;
  start-broker) [ $# = 2 ] || die "usage: start-broker NAME I"; start_broker "$1" "$2" ;;
  status) [ $# = 1 ] || die "usage: status NAME"; status "$1" ;;
  down) [ $# = 1 ] || die "usage: down NAME"; down "$1" ;;
  install) install_tansu ;;
  path) install_tansu >/dev/null; echo "$BIN" ;;
  *) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
