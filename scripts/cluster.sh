#!/usr/bin/env bash
# Test hosts made of network namespaces, for running pitwall (and brokers) as on several machines.
#
#   scripts/cluster.sh check                     can this machine make them? (root + ip netns)
#   scripts/cluster.sh up NAME N                 N hosts NAME-h1..NAME-hN on one switch
#   scripts/cluster.sh addr NAME I               host I's address (10.99.0.(10+I))
#   scripts/cluster.sh exec NAME I CMD [ARGS..]  run CMD on host I (in the foreground)
#   scripts/cluster.sh cut NAME I                unplug host I's cable (no reset reaches anyone)
#   scripts/cluster.sh heal NAME I               plug it back in
#   scripts/cluster.sh kill NAME I               SIGKILL every process on host I (the host dies)
#   scripts/cluster.sh down NAME                 kill everything on the hosts, remove them
#   scripts/cluster.sh reaches NAME I J          does host I reach host J now? (exit 0/1)
#   scripts/cluster.sh down-all                  remove every cluster this script made
#
# Layout: a switch namespace NAME-sw holds a bridge; each host namespace NAME-hI has one veth
# cable to it, address 10.99.0.(10+I)/24 and its own loopback. The /24 exists only inside these
# namespaces, so clusters with different names do not see each other and nothing leaves the
# machine. Cutting a cable sets the switch end down: packets are dropped, no RST is sent, as in a
# real network partition. NAME is at most 8 characters ([a-z0-9]) so interface names fit.
set -euo pipefail

PREFIX=pwc
SUBNET=10.99.0

die() { echo "cluster.sh: $*" >&2; exit 2; }

check() {
  [ "$(id -u)" = 0 ] || { echo "cluster.sh: needs root (ip netns)" >&2; return 1; }
  command -v ip >/dev/null || { echo "cluster.sh: 'ip' (iproute2) is not installed" >&2; return 1; }
  local probe="$PREFIX-probe$$"
  if ! ip netns add "$probe" 2>/dev/null; then
    echo "cluster.sh: 'ip netns add' is not allowed here" >&2
    return 1
  fi
  ip netns del "$probe"
}

name_ok() {
  [[ "$1" =~ ^[a-z0-9]{1,8}$ ]] || die "cluster name '$1' must be 1-8 characters of [a-z0-9]"
}

host_ok() {
  [[ "$2" =~ ^[0-9]+$ ]] && [ "$2" -ge 1 ] && [ "$2" -le 200 ] || die "host '$2' must be 1..200"
  ip netns list | grep -qw "$PREFIX-$1-h$2" || die "no host $2 in cluster '$1' (scripts/cluster.sh up $1 N)"
}

sw() { echo "$PREFIX-$1-sw"; }
host() { echo "$PREFIX-$1-h$2"; }

up() {
  local name=$1 n=$2
  name_ok "$name"
  [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le 200 ] || die "host count '$n' must be 1..200"
  down "$name" >/dev/null 2>&1 || true
  local s
  s=$(sw "$name")
  ip netns add "$s"
  ip -n "$s" link add br0 type bridge
  ip -n "$s" link set br0 up
  for i in $(seq 1 "$n"); do
    local h
    h=$(host "$name" "$i")
    ip netns add "$h"
    ip -n "$h" link set lo up
    # Cable: eth0 in the host, p$i on the switch.
    ip -n "$h" link add eth0 type veth peer name "p$i" netns "$s"
    ip -n "$s" link set "p$i" master br0
    ip -n "$s" link set "p$i" up
    ip -n "$h" addr add "$SUBNET.$((10 + i))/24" dev eth0
    ip -n "$h" link set eth0 up
  done
  # Wait until every host reaches every other (the bridge learns in a moment).
  for i in $(seq 1 "$n"); do
    for j in $(seq 1 "$n"); do
      [ "$i" = "$j" ] && continue
      local ok=0
      for _ in $(seq 1 50); do
        if reaches "$(host "$name" "$i")" "$SUBNET.$((10 + j))"; then
          ok=1
          break
        fi
        sleep 0.1
      done
      [ "$ok" = 1 ] || die "host $i cannot reach host $j"
    done
  done
  echo "cluster $name: $n hosts, $(for i in $(seq 1 "$n"); do printf 'h%s=%s.%s ' "$i" "$SUBNET" $((10 + i)); done)"
}

# Does namespace $1 reach address $2? A connection to a closed port is refused at once (RST) when
# the address answers and times out when it does not (no ping needed).
reaches() {
  local out
  out=$(ip netns exec "$1" timeout 1 bash -c "exec 3<>/dev/tcp/$2/9" 2>&1 || true)
  [[ "$out" == *refused* ]]
}

kill_host() {
  local ns=$1 pids
  pids=$(ip netns pids "$ns" 2>/dev/null || true)
  [ -n "$pids" ] && kill -9 $pids 2>/dev/null || true
  for _ in $(seq 1 50); do
    [ -z "$(ip netns pids "$ns" 2>/dev/null || true)" ] && return 0
    sleep 0.1
  done
}

down() {
  local name=$1
  name_ok "$name"
  local found=0
  for ns in $(ip netns list | awk '{print $1}' | grep -E "^$PREFIX-$name-(h[0-9]+|sw)$" || true); do
    found=1
    kill_host "$ns"
    ip netns del "$ns" 2>/dev/null || true
  done
  [ "$found" = 1 ] && echo "cluster $name: down" || echo "cluster $name: not up"
}

down_all() {
  for ns in $(ip netns list | awk '{print $1}' | grep -E "^$PREFIX-" || true); do
    kill_host "$ns"
    ip netns del "$ns" 2>/dev/null || true
  done
}

cmd=${1:-}
shift || true
case "$cmd" in
  check) check ;;
  up) [ $# = 2 ] || die "usage: up NAME N"; up "$1" "$2" ;;
  addr) [ $# = 2 ] || die "usage: addr NAME I"; name_ok "$1"; echo "$SUBNET.$((10 + $2))" ;;
  exec)
    [ $# -ge 3 ] || die "usage: exec NAME I CMD [ARGS..]"
    name_ok "$1"; host_ok "$1" "$2"
    ns=$(host "$1" "$2"); shift 2
    exec ip netns exec "$ns" "$@"
    ;;
  cut) [ $# = 2 ] || die "usage: cut NAME I"; name_ok "$1"; host_ok "$1" "$2"; ip -n "$(sw "$1")" link set "p$2" down ;;
  heal) [ $# = 2 ] || die "usage: heal NAME I"; name_ok "$1"; host_ok "$1" "$2"; ip -n "$(sw "$1")" link set "p$2" up ;;
  kill) [ $# = 2 ] || die "usage: kill NAME I"; name_ok "$1"; host_ok "$1" "$2"; kill_host "$(host "$1" "$2")" ;;
  reaches) [ $# = 3 ] || die "usage: reaches NAME I J"; name_ok "$1"; host_ok "$1" "$2"; reaches "$(host "$1" "$2")" "$SUBNET.$((10 + $3))" ;;
  down) [ $# = 1 ] || die "usage: down NAME"; down "$1" ;;
  down-all) down_all ;;
  *) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
