#!/usr/bin/env bash
# A three-node Apache Kafka 4 cluster for development and tests: three KRaft nodes, each broker
# and controller in one process, every partition on all three (replication factor 3, writes
# need 2 in sync), so any one node can die and the other two elect new leaders and carry on.
#
#   scripts/kafka-cluster.sh up NAME [CLIENTS]    hosts NAME-h1..h3 run a node each, h4.. are
#                                                 left for clients (default 2)
#   scripts/kafka-cluster.sh brokers NAME         the bootstrap list: b1,b2,b3
#   scripts/kafka-cluster.sh kill-broker NAME I   the host of node I dies (every process on it)
#   scripts/kafka-cluster.sh start-broker NAME I  start node I again (after a kill), on its data
#   scripts/kafka-cluster.sh cut-broker NAME I    unplug node I's host (no reset reaches anyone)
#   scripts/kafka-cluster.sh mend-broker NAME I   plug it back in
#   scripts/kafka-cluster.sh status NAME          which nodes answer
#   scripts/kafka-cluster.sh replicas NAME TOPIC  how many of TOPIC's partitions each node holds
#   scripts/kafka-cluster.sh down NAME            stop everything, remove the hosts and the data
#   scripts/kafka-cluster.sh install|classpath    the jars (scripts/kafka.sh install|classpath)
#
# Hosts are network namespaces made by scripts/cluster.sh (root and `ip netns`): node I takes
# clients on 10.99.0.(10+I):9092 and the controller quorum on :9093; run clients on host 4 and
# up with `scripts/cluster.sh exec NAME 4 pitwall ... --brokers $(scripts/kafka-cluster.sh
# brokers NAME)`. With PITWALL_CLUSTER_LOCAL=1 everything runs on 127.0.0.1 instead (clients
# on ports 19091+I, controllers on 19191+I), no root needed, kill-broker kills the node's
# process and there is no cable to cut.
#
# The jars are scripts/kafka.sh's (Maven Central, cached in ~/.cache/pitwall/kafka-VERSION).
# Node I's configuration and data are in /tmp/pitwall-kc-NAME/broker-I, its output in
# broker-I.log beside it; the three are formatted with one cluster id. PITWALL_KAFKA_CLUSTER_HEAP (default 384m) is each JVM's heap.
# A node counts as started when it logs "Kafka Server started" (it has caught up with the
# quorum's metadata and is unfenced) and its client port answers.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
LOCAL=${PITWALL_CLUSTER_LOCAL:-0}
HEAP=${PITWALL_KAFKA_CLUSTER_HEAP:-384m}
NODES=3
FIRST_CLIENT=$((NODES + 1))

die() { echo "kafka-cluster.sh: $*" >&2; exit 2; }

name_ok() {
  [[ "$1" =~ ^[a-z0-9]{1,8}$ ]] || die "cluster name '$1' must be 1-8 characters of [a-z0-9]"
}

node_ok() {
  [[ "$1" =~ ^[1-3]$ ]] || die "node '$1' must be 1, 2 or 3"
}

run_dir() { echo "/tmp/pitwall-kc-$1"; }

addr() {
  if [ "$LOCAL" = 1 ]; then echo 127.0.0.1; else bash "$HERE/cluster.sh" addr "$1" "$2"; fi
}

client_port() { if [ "$LOCAL" = 1 ]; then echo $((19091 + $1)); else echo 9092; fi; }
controller_port() { if [ "$LOCAL" = 1 ]; then echo $((19191 + $1)); else echo 9093; fi; }

# The jars' folder, from scripts/kafka.sh (which installs them first if needed).
libs() {
  local cp
  cp=$(bash "$HERE/kafka.sh" classpath) || die "scripts/kafka.sh could not install Apache Kafka"
  dirname "$cp"
}

# The JVM's command line, into JAVA.
java_cmd() {
  local libs
  libs=$(libs)
  JAVA=(java -Xms64m -Xmx"$HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$libs/log4j2.properties" -cp "$libs/*")
}

# Runs a command on host I, in the background, output to a log; prints its pid (the command's
# own: `ip netns exec` and nohup exec it).
spawn() {
  local name=$1 host=$2 log=$3
  shift 3
  if [ "$LOCAL" = 1 ]; then
    nohup "$@" >"$log" 2>&1 &
  else
    nohup ip netns exec "pwc-$name-h$host" "$@" >"$log" 2>&1 &
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

brokers() {
  local name=$1 list=()
  for i in $(seq 1 $NODES); do list+=("$(addr "$name" "$i"):$(client_port "$i")"); done
  (IFS=,; echo "${list[*]}")
}

# request.timeout.ms: how long a node waits for another's answer (Kafka's default 30 s). A
# transaction's commit markers go to every partition's leader; with a leader whose cable is cut
# the coordinator waits this long before it sends them to the new one, and the next transaction
# of that producer waits with it. 10 s, as the clients' kafka.request_timeout_ms.
write_properties() {
  local name=$1 i=$2 dir voters=() a
  dir=$(run_dir "$name")/broker-$i
  for j in $(seq 1 $NODES); do voters+=("$j@$(addr "$name" "$j"):$(controller_port "$j")"); done
  a=$(addr "$name" "$i")
  mkdir -p "$dir"
  cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=$i
controller.quorum.voters=$(IFS=,; echo "${voters[*]}")
listeners=PLAINTEXT://$a:$(client_port "$i"),CONTROLLER://$a:$(controller_port "$i")
advertised.listeners=PLAINTEXT://$a:$(client_port "$i")
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
num.partitions=1
default.replication.factor=3
min.insync.replicas=2
offsets.topic.replication.factor=3
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
group.initial.rebalance.delay.ms=0
request.timeout.ms=10000
EOF
}

# A Kafka cluster id: 16 random bytes, base64url without padding (what `StorageTool
# random-uuid` prints, without starting a JVM for it). Kafka never makes one that starts with
# '-' (it would read as an option).
cluster_id() {
  local id=-
  while [[ "$id" == -* ]]; do
    id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
  done
  echo "$id"
}

# Starts node I; with "wait" (the default), waits until it serves.
start_broker() {
  local name=$1 i=$2 wait=${3:-wait} dir pid
  dir=$(run_dir "$name")
  [ -f "$dir/broker-$i/server.properties" ] || die "no kafka cluster '$name' (scripts/kafka-cluster.sh up $name)"
  if [ -f "$dir/broker-$i.pid" ] && alive "$(cat "$dir/broker-$i.pid")"; then
    echo "node $i is running already (pid $(cat "$dir/broker-$i.pid"))"
    return 0
  fi
  java_cmd
  pid=$(spawn "$name" "$i" "$dir/broker-$i.log" "${JAVA[@]}" kafka.Kafka "$dir/broker-$i/server.properties")
  echo "$pid" >"$dir/broker-$i.pid"
  [ "$wait" = wait ] && wait_started "$name" "$i" 120
  return 0
}

wait_started() {
  local name=$1 i=$2 limit=$3 dir a p pid
  dir=$(run_dir "$name")
  a=$(addr "$name" "$i")
  p=$(client_port "$i")
  pid=$(cat "$dir/broker-$i.pid")
  for _ in $(seq 1 $((limit * 5))); do
    if grep -q "Kafka Server started" "$dir/broker-$i.log" 2>/dev/null && port_open "$name" "$i" "$a" "$p"; then
      echo "node $i serving on $a:$p (pid $pid)"
      return 0
    fi
    alive "$pid" || break
    sleep 0.2
  done
  echo "node $i did not come up on $a:$p within $limit s; log $dir/broker-$i.log:" >&2
  tail -20 "$dir/broker-$i.log" >&2 || true
  return 1
}

up() {
  local name=$1 clients=${2:-2} dir id
  name_ok "$name"
  [[ "$clients" =~ ^[0-9]+$ ]] || die "CLIENTS '$clients' must be a number"
  java_cmd
  down "$name" >/dev/null 2>&1 || true
  if [ "$LOCAL" = 1 ]; then
    for i in $(seq 1 $NODES); do
      for p in "$(client_port "$i")" "$(controller_port "$i")"; do
        port_open "$name" "$i" 127.0.0.1 "$p" && die "127.0.0.1:$p is taken by another process"
      done
    done
  else
    bash "$HERE/cluster.sh" up "$name" $((NODES + clients)) >/dev/null
  fi
  dir=$(run_dir "$name")
  mkdir -p "$dir"
  id=$(cluster_id)
  echo "$id" >"$dir/cluster-id"
  local pids=()
  for i in $(seq 1 $NODES); do
    write_properties "$name" "$i"
    "${JAVA[@]}" kafka.tools.StorageTool format --cluster-id "$id" \
      --config "$dir/broker-$i/server.properties" >"$dir/format-$i.log" 2>&1 &
    pids+=($!)
  done
  for i in $(seq 1 $NODES); do
    wait "${pids[$((i - 1))]}" || { cat "$dir/format-$i.log" >&2; die "formatting node $i's storage failed"; }
  done
  # All three at once: a node serves only once the quorum (two of three) has a leader.
  for i in $(seq 1 $NODES); do start_broker "$name" "$i" nowait; done
  for i in $(seq 1 $NODES); do wait_started "$name" "$i" 180 >/dev/null || die "node $i did not start"; done
  local hosts="clients on hosts $FIRST_CLIENT..$((NODES + clients))"
  [ "$LOCAL" = 1 ] && hosts="on 127.0.0.1"
  [ "$clients" = 0 ] && [ "$LOCAL" != 1 ] && hosts="no client hosts"
  echo "kafka cluster $name (id $id): brokers $(brokers "$name"), $hosts, logs in $dir"
}

# Is PID a live process (not gone, not a zombie waiting for its parent)?
alive() {
  local state
  state=$(ps -o stat= -p "$1" 2>/dev/null) && [[ "$state" != Z* ]]
}

kill_broker() {
  local name=$1 i=$2 dir pid=
  dir=$(run_dir "$name")
  [ -f "$dir/broker-$i.pid" ] && pid=$(cat "$dir/broker-$i.pid")
  if [ "$LOCAL" = 1 ]; then
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
  else
    bash "$HERE/cluster.sh" kill "$name" "$i"
  fi
  # A JVM's threads die one by one after SIGKILL; the node is dead once its port is closed.
  local a p
  a=$(addr "$name" "$i")
  p=$(client_port "$i")
  for _ in $(seq 1 100); do
    if ! { [ -n "$pid" ] && alive "$pid"; } && ! port_open "$name" "$i" "$a" "$p"; then return 0; fi
    sleep 0.1
  done
  die "node $i still answers on $a:$p after SIGKILL"
}

cut_broker() {
  local name=$1 i=$2 how=$3
  [ "$LOCAL" = 1 ] && die "$how-broker needs test hosts (not PITWALL_CLUSTER_LOCAL=1)"
  local dir
  dir=$(run_dir "$name")
  if [ "$how" = cut ]; then
    bash "$HERE/cluster.sh" cut "$name" "$i"
    touch "$dir/broker-$i.cut"
  else
    bash "$HERE/cluster.sh" heal "$name" "$i"
    rm -f "$dir/broker-$i.cut"
  fi
}

status() {
  local name=$1 ok=0 dir
  dir=$(run_dir "$name")
  [ -d "$dir" ] || { echo "no kafka cluster '$name'"; return 1; }
  for i in $(seq 1 $NODES); do
    local a p state
    a=$(addr "$name" "$i")
    p=$(client_port "$i")
    # Asked from the node's own host, which a cut cable does not disconnect from itself.
    if port_open "$name" "$i" "$a" "$p"; then state=up; else state=down; ok=1; fi
    if [ -f "$dir/broker-$i.cut" ]; then state="$state, cut off from the others"; ok=1; fi
    echo "node $i $a:$p $state"
  done
  return $ok
}

replicas() {
  local name=$1 topic=$2 dir
  dir=$(run_dir "$name")
  [ -d "$dir" ] || die "no kafka cluster '$name'"
  for i in $(seq 1 $NODES); do
    local n
    n=$(find "$dir/broker-$i/data" -maxdepth 1 -type d -regextype posix-extended \
      -regex ".*/${topic//./\\.}-[0-9]+" 2>/dev/null | wc -l)
    echo "node $i: $n partitions of $topic"
  done
}

down() {
  local name=$1 dir
  name_ok "$name"
  dir=$(run_dir "$name")
  for f in "$dir"/broker-*.pid; do
    [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null || true
  done
  if [ "$LOCAL" != 1 ]; then
    bash "$HERE/cluster.sh" down "$name" >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
  echo "kafka cluster $name: down"
}

cmd=${1:-}
shift || true
case "$cmd" in
  up) [ $# -ge 1 ] && [ $# -le 2 ] || die "usage: up NAME [CLIENTS]"; up "$@" ;;
  brokers) [ $# = 1 ] || die "usage: brokers NAME"; name_ok "$1"; brokers "$1" ;;
  kill-broker) [ $# = 2 ] || die "usage: kill-broker NAME I"; name_ok "$1"; node_ok "$2"; kill_broker "$1" "$2" ;;
  start-broker) [ $# = 2 ] || die "usage: start-broker NAME I"; name_ok "$1"; node_ok "$2"; start_broker "$1" "$2" ;;
  cut-broker) [ $# = 2 ] || die "usage: cut-broker NAME I"; name_ok "$1"; node_ok "$2"; cut_broker "$1" "$2" cut ;;
  mend-broker) [ $# = 2 ] || die "usage: mend-broker NAME I"; name_ok "$1"; node_ok "$2"; cut_broker "$1" "$2" mend ;;
  status) [ $# = 1 ] || die "usage: status NAME"; name_ok "$1"; status "$1" ;;
  replicas) [ $# = 2 ] || die "usage: replicas NAME TOPIC"; name_ok "$1"; replicas "$1" "$2" ;;
  down) [ $# = 1 ] || die "usage: down NAME"; down "$1" ;;
  install) bash "$HERE/kafka.sh" install ;;
  classpath) bash "$HERE/kafka.sh" classpath ;;
  *) sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
