#!/usr/bin/env bash
# pitwall against the same work as an Apache Flink SQL job, both on Kafka, in one session
# (issue 20; read bench/flink/README.md).
#
#   bash bench/flink/run.sh [RACE.csv.gz]     # default: the real 2023 Monaco race
#
# Needs the broker of scripts/kafka.sh (started if it is not running), Java 17, PyFlink 2.3.0
# (../shared/peers/setup_flink.sh installs it in a venv), Flink's Kafka SQL connector (fetched
# from Maven Central with mvn, cached in ~/.cache/pitwall/flink) and confluent-kafka in
# ~/.cache/pitwall/venv (scripts/test.sh makes it). Prints what it measures, one JSON line each,
# and a table at the end. The machine's timings move from run to run: only figures taken side
# by side, as here, compare.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
RACE=${1:-$ROOT/../shared/data/monaco-2023/monaco_2023_race.csv.gz}
BROKERS=${PITWALL_BROKERS:-127.0.0.1:9092}
CONNECTOR_VERSION=5.0.0-2.2
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/pitwall
JAR=$CACHE/flink/flink-sql-connector-kafka-$CONNECTOR_VERSION.jar
PITWALL=$ROOT/target/release/pitwall
RATE=20000
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

say() { echo "== $*" >&2; }

[ -x "$PITWALL" ] || (cd "$ROOT" && cargo build --release >&2)
FLINK_PY=$(bash "$ROOT/../shared/peers/setup_flink.sh" | tail -1)
KAFKA_PY=$CACHE/venv/bin/python
"$KAFKA_PY" -c 'import confluent_kafka' 2>/dev/null || {
  python3 -m venv "$CACHE/venv" && "$CACHE/venv/bin/pip" install -q confluent-kafka >&2; }
if [ ! -f "$JAR" ]; then
  mkdir -p "$(dirname "$JAR")"
  mvn -q dependency:copy -Dartifact="org.apache.flink:flink-sql-connector-kafka:$CONNECTOR_VERSION" \
    -DoutputDirectory="$(dirname "$JAR")" >&2
fi
[ -n "${PITWALL_BROKERS:-}" ] || bash "$ROOT/scripts/kafka.sh" start >&2

# Topics of this run only: a configuration whose topic and group names carry a run tag.
TAG=fb$(date +%s)
CFG=$WORK/pitwall.toml
sed -e "s/\"f1-/\"$TAG-/" -e "s/group_id = \"pitwall-engine\"/group_id = \"$TAG-engine\"/" \
  "$ROOT/config/pitwall.toml" >"$CFG"
P() { "$PITWALL" "$@" --brokers "$BROKERS" --config "$CFG"; }
P topics create >&2
TELEMETRY=$TAG-telemetry

say "filling $TELEMETRY with $(basename "$RACE")"
P produce --input "$RACE" >&2
RECORDS=$(zcat -f "$RACE" | tail -n +2 | wc -l)

say "pitwall drains it (transactions as configured: on)"
start=$(date +%s.%N)
PITWALL_HTTP=off P run -q --until-idle 2 --summary "$WORK/drain.json" >/dev/null
end=$(date +%s.%N)
PITWALL_DRAIN_WALL=$(echo "$end - $start - 2" | bc -l)

say "Flink drains it (-w 1, then -w 2)"
flink_drain() {
  "$FLINK_PY" "$HERE/kafka_alerts.py" --brokers "$BROKERS" --topic "$TELEMETRY" \
    --alerts-topic "$TAG-flink-alerts-w$1" --mode drain -w "$1" --connector "$JAR" 2>"$WORK/flink-$1.err" \
    | tail -1
}
FLINK1=$(flink_drain 1)
READ1=$("$KAFKA_PY" "$HERE/read_alerts.py" --brokers "$BROKERS" --topic "$TAG-flink-alerts-w1" --idle 3)
FLINK2=$(flink_drain 2)
READ2=$("$KAFKA_PY" "$HERE/read_alerts.py" --brokers "$BROKERS" --topic "$TAG-flink-alerts-w2" --idle 3)
echo "$FLINK1 $READ1"
echo "$FLINK2 $READ2"

say "Flink live at $RATE msg/s: sample -> alert on the topic"
LIVE=$TAG-live
sed -i "s/\"$TAG-telemetry\"/\"$LIVE\"/" "$CFG"
P topics create >&2
"$FLINK_PY" "$HERE/kafka_alerts.py" --brokers "$BROKERS" --topic "$LIVE" \
  --alerts-topic "$TAG-flink-live-alerts" --mode live --seconds 70 --connector "$JAR" \
  >"$WORK/live.out" 2>"$WORK/live.err" &
FLINK_PID=$!
sleep 20 # the job is reading before the first message
SPAN=$(zcat -f "$RACE" | awk -F, 'NR==2{a=$2} END{print $2-a}')
SPEED=$(echo "$RATE * $SPAN / $RECORDS" | bc -l)
P produce --input "$RACE" --speed "$SPEED" >&2
wait $FLINK_PID || true
LIVE_READ=$("$KAFKA_PY" "$HERE/read_alerts.py" --brokers "$BROKERS" --topic "$TAG-flink-live-alerts" --idle 3)
echo "$LIVE_READ"

say "pitwall at $RATE msg/s (bench kafka), transactions off and on"
OFF=$WORK/off.toml
sed -e 's/^enabled = true/enabled = false/' "$CFG" >"$OFF"
for c in "$OFF" "$CFG"; do
  "$PITWALL" bench kafka --input "$RACE" --rate "$RATE" --brokers "$BROKERS" --config "$c" \
    --results "$WORK" --name "pitwall-$(basename "$c" .toml)" 2>/dev/null | sed -n '/^scenario/,$p' || true
done

"$KAFKA_PY" - "$RECORDS" "$PITWALL_DRAIN_WALL" "$FLINK1" "$READ1" "$FLINK2" "$READ2" "$LIVE_READ" <<'PY'
import json, sys
records = int(sys.argv[1]); pitwall_wall = float(sys.argv[2])
f1, r1, f2, r2, live = (json.loads(a) for a in sys.argv[3:])
def rates(f, r):
    return records / f["seconds_job"], records / r["first_to_last_s"]
w1, s1 = rates(f1, r1); w2, s2 = rates(f2, r2)
p = records / pitwall_wall
print(f"records {records}")
print(f"pitwall drain (wall, start to last commit): {p:,.0f} msg/s")
print(f"Flink -w 1: {w1:,.0f} msg/s job wall (submission included), {s1:,.0f} first to last alert")
print(f"Flink -w 2: {w2:,.0f} msg/s job wall, {s2:,.0f} first to last alert")
print(f"ratio pitwall / Flink (best Flink figure): {p / max(w1, s1, w2, s2):.2f}")
print(f"Flink live at 20k msg/s, sample -> alert on topic: p50 {live['p50_ms']} ms, p99 {live['p99_ms']} ms ({live['messages']} alerts)")
PY
