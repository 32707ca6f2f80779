#!/usr/bin/env bash
# A local Apache Kafka 4 broker for development, tests and CI: one KRaft node (broker and
# controller in one process, no ZooKeeper) on 127.0.0.1, with a small heap.
#
#   scripts/kafka.sh start|stop|status   the broker on 127.0.0.1:$PITWALL_KAFKA_PORT (9092)
#   scripts/kafka.sh install             resolve the broker's jars (once; cached)
#   scripts/kafka.sh classpath           print the broker's classpath (installs first)
#   scripts/kafka.sh cluster ...         three KRaft nodes on test hosts: scripts/kafka-cluster.sh
#
# The jars come from Maven Central through `mvn` (org.apache.kafka:kafka_2.13 and its
# dependencies, log4j2 for its logs) into ~/.cache/pitwall/kafka-VERSION (PITWALL_CACHE), so a
# second start needs no network. Java 17 runs it. The broker's data, log and pid live in
# PITWALL_KAFKA_DIR (default ~/.cache/pitwall/run/kafka-PORT); its storage is formatted on the
# first start and kept after. The controller listens on PITWALL_KAFKA_CONTROLLER_PORT (PORT+1).
# PITWALL_KAFKA_HEAP (default 512m) is the JVM's largest heap. When PITWALL_BROKERS names an
# existing cluster, use that instead and do not start this one.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${PITWALL_CACHE:-$HOME/.cache/pitwall}
VERSION=${PITWALL_KAFKA_VERSION:-4.1.1}
LIBS=$CACHE/kafka-$VERSION/libs
PORT=${PITWALL_KAFKA_PORT:-9092}
CONTROLLER_PORT=${PITWALL_KAFKA_CONTROLLER_PORT:-$((PORT + 1))}
DIR=${PITWALL_KAFKA_DIR:-$CACHE/run/kafka-$PORT}
PIDFILE=$DIR/kafka.pid
LOG=$DIR/kafka.log
HEAP=${PITWALL_KAFKA_HEAP:-512m}

die() { echo "kafka.sh: $*" >&2; exit 1; }

# The brokers' logging: warnings, that a node started, and the controller's failover decisions
# (fencing a broker whose heartbeats stopped; tests wait for it). Written on every
# install check, so a cached install gets changes too.
log_config() {
  local want
  want=$(cat <<'EOF'
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = out
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c{1})%n
logger.kafka.name = kafka
logger.kafka.level = WARN
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
logger.started.name = kafka.server.KafkaRaftServer
logger.started.level = INFO
logger.fencing.name = org.apache.kafka.controller.ReplicationControlManager
logger.fencing.level = INFO
EOF
)
  [ "$(cat "$LIBS/log4j2.properties" 2>/dev/null)" = "$want" ] || echo "$want" >"$LIBS/log4j2.properties"
}

install_kafka() {
  [ -f "$LIBS/.complete" ] && { log_config; return 0; }
  command -v java >/dev/null || die "java (17 or newer) is needed to run Apache Kafka"
  command -v mvn >/dev/null || die "mvn (Maven) is needed to fetch Apache Kafka from Maven Central"
  local tmp
  tmp=$(mktemp -d)
  # A pom with only the broker's dependencies; `dependency:copy-dependencies` puts every
  # runtime jar in one folder, the classpath of kafka.Kafka and kafka.tools.StorageTool.
  cat >"$tmp/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>pitwall</groupId>
  <artifactId>kafka-broker</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$VERSION</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId><version>2.0.17</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId><version>2.24.3</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>2.24.3</version></dependency>
  </dependencies>
</project>
EOF
  echo "resolving Apache Kafka $VERSION from Maven Central into $LIBS (once)"
  rm -rf "$LIBS"
  mkdir -p "$LIBS"
  mvn -q -B -Dstyle.color=never -f "$tmp/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$LIBS" || { rm -rf "$tmp"; die "mvn could not resolve org.apache.kafka:kafka_2.13:$VERSION"; }
  rm -rf "$tmp"
  log_config
  touch "$LIBS/.complete"
}

JAVA=(java -Xms64m -Xmx"$HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true
  -Dlog4j2.configurationFile="$LIBS/log4j2.properties" -cp "$LIBS/*")

running() {
  [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# The properties of a single node that is its own controller quorum.
write_properties() {
  cat >"$DIR/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$DIR/data
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
EOF
}

start() {
  if running; then
    echo "kafka already running on 127.0.0.1:$PORT (pid $(cat "$PIDFILE"))"
    return 0
  fi
  for p in "$PORT" "$CONTROLLER_PORT"; do
    port_open "$p" && die "127.0.0.1:$p is taken by another process; set PITWALL_KAFKA_PORT"
  done
  install_kafka
  mkdir -p "$DIR"
  write_properties
  if [ ! -f "$DIR/data/meta.properties" ]; then
    "${JAVA[@]}" kafka.tools.StorageTool format --cluster-id "$("${JAVA[@]}" kafka.tools.StorageTool random-uuid)" \
      --config "$DIR/server.properties" >"$DIR/format.log" 2>&1 \
      || { cat "$DIR/format.log" >&2; die "formatting the broker's storage in $DIR/data failed"; }
  fi
  nohup "${JAVA[@]}" kafka.Kafka "$DIR/server.properties" >"$LOG" 2>&1 &
  echo $! >"$PIDFILE"
  # The broker opens its client port once it is ready to serve.
  for _ in $(seq 1 600); do
    if port_open "$PORT"; then
      echo "kafka $VERSION listening on 127.0.0.1:$PORT (pid $(cat "$PIDFILE"), log $LOG)"
      return 0
    fi
    running || break
    sleep 0.1
  done
  echo "kafka did not come up on 127.0.0.1:$PORT; log:" >&2
  tail -40 "$LOG" >&2 || true
  return 1
}

stop() {
  if running; then
    local pid
    pid=$(cat "$PIDFILE")
    kill -CONT "$pid" 2>/dev/null || true
    kill "$pid"
    # A controlled shutdown takes a few seconds; past 30 s it is killed.
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    echo "kafka stopped (pid $pid)"
  else
    echo "kafka is not running"
  fi
  rm -f "$PIDFILE"
}

status() {
  if running && port_open "$PORT"; then
    echo "kafka running on 127.0.0.1:$PORT (pid $(cat "$PIDFILE"))"
  else
    echo "kafka is not running on 127.0.0.1:$PORT"
    return 1
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  install) install_kafka ;;
  classpath) install_kafka >/dev/null; echo "$LIBS/*" ;;
  cluster) shift; exec bash "$HERE/kafka-cluster.sh" "$@" ;;
  *) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
