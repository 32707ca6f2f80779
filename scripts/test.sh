#!/usr/bin/env bash
# The whole test suite, with what it needs started first:
#
#   scripts/test.sh [CARGO TEST ARGS...]     e.g. scripts/test.sh --test kafka_e2e
#
# Starts the local Apache Kafka (scripts/kafka.sh; its jars come from Maven Central the first
# time) on empty storage of its own, unless PITWALL_BROKERS names a cluster or one is running,
# runs `cargo test --workspace --release` with the arguments given, stops the broker it started
# (its storage removed), and says how many tests could not run on this machine (tests/common
# `cannot_run`; under CI such a test fails instead). The Kafka tests check the topics with an
# independent client, confluent-kafka for Python, kept in a virtual environment of its own
# (~/.cache/pitwall/venv, PyPI, pinned) and named in PITWALL_PYTHON.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE=${PITWALL_CACHE:-$HOME/.cache/pitwall}
venv=$CACHE/venv
if ! "$venv/bin/python" -c 'import confluent_kafka' 2>/dev/null; then
  echo "installing confluent-kafka for Python into $venv (once)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check confluent-kafka==2.16.1
fi
export PITWALL_PYTHON=${PITWALL_PYTHON:-$venv/bin/python}

started=0
stop_broker() {
  [ "$started" = 1 ] || return 0
  bash scripts/kafka.sh stop >/dev/null 2>&1 || true
  rm -rf "$PITWALL_KAFKA_DIR"
}
trap stop_broker EXIT
if [ -z "${PITWALL_BROKERS:-}" ] && ! bash scripts/kafka.sh status >/dev/null 2>&1; then
  # A broker of the run's own on empty storage, removed after: every run starts as on a fresh
  # machine, not on the thousands of topics the runs before left (a broker loading those at
  # start can answer before it knows a topic just created).
  mkdir -p "$CACHE/run"
  PITWALL_KAFKA_DIR=$(mktemp -d "$CACHE/run/kafka-tests.XXXXXX")
  export PITWALL_KAFKA_DIR
  bash scripts/kafka.sh start
  started=1
fi

skips=$(mktemp)
trap 'stop_broker; rm -f "$skips"' EXIT
set +e
PITWALL_SKIPS=$skips cargo test --workspace --release "$@"
status=$?
set -e
if [ -s "$skips" ]; then
  echo "$(wc -l <"$skips") tests could not run on this machine:"
  sed 's/^/  /' "$skips"
else
  echo "0 tests skipped"
fi
exit "$status"
