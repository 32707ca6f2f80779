#!/usr/bin/env bash
# Scaling across hosts (issue 14): one pitwall process per test host, on Kafka and on a file.
#
#   scripts/scaling-hosts.sh [--repeat N] [--only kafka|file] [--input FILE] [--name NAME]
#                            [--idle SECS] [--perf DIR]
#
#   --repeat N    runs per scenario; the table shows each column's median (default 3)
#   --only WHAT   only the Kafka scenarios or only the file ones (default both)
#   --input FILE  the race (default ../shared/data/monaco-2023/monaco_2023_race.csv.gz)
#   --name NAME   the test cluster's name (default scal; 1-8 of [a-z0-9])
#   --idle SECS   Kafka: a worker stops after SECS without a message (default 30; taken off
#                 the run's time)
#   --perf DIR    after the measured runs, one more two-host run of each mode under
#                 `perf record -F 999 -g`, one file per process in DIR (not in the table)
#   PITWALL_BIN   the binary (default target/release/pitwall of this repository)
#   The runs' logs and summaries are kept in /tmp/pitwall-scaling-* when a run fails (or with
#   PITWALL_KEEP=1), removed otherwise.
#
# Kafka (scripts/kafka-cluster.sh: Apache Kafka nodes on hosts 1-3, clients on 4 and 5): the
# topics are made with config/profiles/scale.toml (telemetry 16 partitions, replication factor
# 3), the race is produced once from host 4, then drained by a new consumer group each run: one
# process on host 4 (`-w 1`), then `-n 2 -w 1` on hosts 4 and 5 (each process reads its own 8
# partitions). File mode (scripts/cluster.sh, no broker): `-w 1` and `-w 2` on host 1, then
# `-n 2 -w 1` on hosts 1 and 2 (each process reads the whole file, keeps its own drivers).
#
# Efficiency = rate_n / (n x rate_1), n = workers in all, rate_1 = the same mode's `-w 1` run.
# CPU columns are seconds of user+system time during the run: the engine's processes and the
# three brokers' JVMs (hosts 1-3). Prints the table and writes bench/results/scaling-hosts.csv.
# Needs root with `ip netns`, python3, and for Kafka Java and Apache Kafka's jars
# (scripts/kafka.sh install); says SKIPPED and exits 0 without root or network namespaces.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BIN=${PITWALL_BIN:-$ROOT/target/release/pitwall}
PROFILE=$ROOT/config/profiles/scale.toml
INPUT=$ROOT/../shared/data/monaco-2023/monaco_2023_race.csv.gz
REPEAT=3
ONLY=both
NAME=scal
IDLE=30
PERF=

die() { echo "scaling-hosts.sh: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --repeat) REPEAT=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --input) INPUT=$2; shift 2 ;;
    --name) NAME=$2; shift 2 ;;
    --idle) IDLE=$2; shift 2 ;;
    --perf) PERF=$2; shift 2 ;;
    *) sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
done
[[ "$REPEAT" =~ ^[1-9][0-9]*$ ]] || die "--repeat must be a positive number"
[[ "$ONLY" =~ ^(both|kafka|file)$ ]] || die "--only must be kafka or file"

if ! bash "$HERE/cluster.sh" check 2>/dev/null; then
  echo "SKIPPED: scaling across hosts needs network namespaces (root and \`ip netns\`)"
  exit 0
fi
[ -x "$BIN" ] || die "no binary at $BIN: cargo build --release (or set PITWALL_BIN)"
[ -f "$INPUT" ] || die "no race at $INPUT (--input FILE)"
INPUT=$(cd "$(dirname "$INPUT")" && pwd)/$(basename "$INPUT")
command -v python3 >/dev/null || die "python3 is needed for the table"
if [ -n "$PERF" ]; then
  command -v perf >/dev/null || die "--perf needs perf"
  mkdir -p "$PERF"
  PERF=$(cd "$PERF" && pwd)
fi

WORK=$(mktemp -d /tmp/pitwall-scaling-XXXXXX)
PIDS=()
cleanup() {
  local status=$? pid
  for pid in "${PIDS[@]:-}"; do
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
  done
  bash "$HERE/kafka-cluster.sh" down "$NAME" >/dev/null 2>&1 || true
  bash "$HERE/cluster.sh" down "$NAME" >/dev/null 2>&1 || true
  if [ "$status" != 0 ] || [ "${PITWALL_KEEP:-0}" = 1 ]; then
    echo "logs and summaries kept in $WORK" >&2
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

RUNS=$WORK/runs.jsonl # one line per run, for the table
addr() { bash "$HERE/cluster.sh" addr "$NAME" "$1"; }

# CPU seconds (user+system) of every process now on host I so far.
host_cpu() {
  local pids
  pids=$(ip netns pids "pwc-$NAME-h$1" 2>/dev/null || true)
  [ -z "$pids" ] && { echo 0; return; }
  # shellcheck disable=SC2086
  (cd /proc && cat $(printf '%s/stat ' $pids) 2>/dev/null || true) |
    awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); t += $12 + $13 } END { printf "%.3f\n", t / hz }'
}

# run_scenario MODE SCENARIO REP N_PROCS FIRST_HOST [pitwall run args...]
# Starts process p on host FIRST_HOST+p, waits for every process, records one line in $RUNS.
run_scenario() {
  local mode=$1 scenario=$2 rep=$3 n=$4 first=$5
  shift 5
  local tag="$mode-${scenario//[^a-z0-9]/_}-$rep" p pids=() hostfile=$WORK/hosts-$n
  : >"$hostfile"
  for p in $(seq 0 $((n - 1))); do echo "$(addr $((first + p))):2101" >>"$hostfile"; done
  local before_b=0
  if [ "$mode" = kafka ]; then
    before_b=$(for h in 1 2 3; do host_cpu "$h"; done | awk '{ t += $1 } END { print t }')
  fi
  for p in $(seq 0 $((n - 1))); do
    local cmd=(/usr/bin/time -f '%e %U %S %M' -o "$WORK/$tag-p$p.time")
    if [ "$rep" = perf ]; then
      cmd+=(perf record -q -F 999 -g -o "$PERF/$tag-p$p.data" --)
    fi
    cmd+=("$BIN" run "$@" --summary "$WORK/$tag-p$p.json" -q --http off)
    [ "$n" -gt 1 ] && cmd+=(-n "$n" -p "$p" --hostfile "$hostfile")
    bash "$HERE/cluster.sh" exec "$NAME" $((first + p)) "${cmd[@]}" \
      >"$WORK/$tag-p$p.out" 2>"$WORK/$tag-p$p.err" &
    pids+=($!)
    PIDS+=($!)
  done
  for p in $(seq 0 $((n - 1))); do
    if ! wait "${pids[$p]}"; then
      echo "$scenario (run $rep), process $p failed:" >&2
      tail -20 "$WORK/$tag-p$p.err" >&2
      exit 1
    fi
  done
  local broker_cpu=0
  if [ "$mode" = kafka ]; then
    broker_cpu=$(for h in 1 2 3; do host_cpu "$h"; done | awk -v b="$before_b" '{ t += $1 } END { print t - b }')
  fi
  MODE=$mode SCENARIO=$scenario N=$n TAG=$tag WORK=$WORK IDLE=$IDLE BROKER_CPU=$broker_cpu \
    python3 - >>"$([ "$rep" = perf ] && echo "$WORK/perf-runs.jsonl" || echo "$RUNS")" <<'EOF'
import json, os
w, tag, n = os.environ["WORK"], os.environ["TAG"], int(os.environ["N"])
s = json.load(open(f"{w}/{tag}-p0.json"))
times = [open(f"{w}/{tag}-p{p}.time").read().split()[-4:] for p in range(n)]
seconds = s["seconds"]
if os.environ["MODE"] == "kafka":
    seconds -= float(os.environ["IDLE"])  # the idle wait that ends the run is not work
print(json.dumps({
    "mode": os.environ["MODE"], "scenario": os.environ["SCENARIO"],
    "processes": n, "workers": s["workers"], "records": s["records"], "seconds": seconds,
    "rate": s["records"] / seconds, "p99": (s.get("latency_ms") or {}).get("p99"),
    "rss_mb": [int(t[3]) / 1024 for t in times],
    "engine_cpu": sum(float(t[1]) + float(t[2]) for t in times),
    "broker_cpu": float(os.environ["BROKER_CPU"]),
}))
EOF
  local last
  last=$(tail -1 "$([ "$rep" = perf ] && echo "$WORK/perf-runs.jsonl" || echo "$RUNS")")
  echo "$last" | python3 -c 'import json, sys; r = json.load(sys.stdin); print("  %-5s %-18s %9d records %7.3f s %11.0f/s p99 %s ms" % (r["mode"], r["scenario"], r["records"], r["seconds"], r["rate"], r["p99"] and round(r["p99"], 1)))'
  if [ "$mode" = kafka ]; then
    local got
    got=$(echo "$last" | python3 -c 'import json, sys; print(json.load(sys.stdin)["records"])')
    [ "$got" -ge "$produced" ] ||
      echo "  warning: $got of $produced records: the run stopped before the topic was drained (raise --idle)" >&2
  fi
}

load() { cut -d' ' -f1-3 /proc/loadavg; }
echo "pitwall $("$BIN" --version 2>/dev/null | awk '{print $NF}') at $BIN; $(nproc) cores; load average $(load)"

if [ "$ONLY" != kafka ]; then
  echo "file mode: hosts 1 and 2 of cluster $NAME"
  bash "$HERE/cluster.sh" up "$NAME" 2 >/dev/null
  for rep in $(seq 1 "$REPEAT"); do
    run_scenario file "1 host -w 1" "$rep" 1 1 --input "$INPUT" -w 1
    run_scenario file "1 host -w 2" "$rep" 1 1 --input "$INPUT" -w 2
    run_scenario file "2 hosts -n 2 -w 1" "$rep" 2 1 --input "$INPUT" -w 1
  done
  if [ -n "$PERF" ]; then run_scenario file "2 hosts -n 2 -w 1" perf 2 1 --input "$INPUT" -w 1; fi
  bash "$HERE/cluster.sh" down "$NAME" >/dev/null
fi

if [ "$ONLY" != file ]; then
  echo "kafka: three Apache Kafka nodes on hosts 1-3, clients on 4 and 5"
  bash "$HERE/kafka-cluster.sh" up "$NAME" 2 >/dev/null
  B=$(bash "$HERE/kafka-cluster.sh" brokers "$NAME")
  bash "$HERE/cluster.sh" exec "$NAME" 4 "$BIN" topics create --brokers "$B" --config "$PROFILE" >"$WORK/topics.out"
  echo "  producing $(basename "$INPUT") from host 4"
  bash "$HERE/cluster.sh" exec "$NAME" 4 "$BIN" produce --brokers "$B" --config "$PROFILE" \
    --input "$INPUT" --speed 0 >"$WORK/produce.out" 2>"$WORK/produce.err" \
    || { tail -20 "$WORK/produce.err" >&2; die "produce failed"; }
  grep '^produced' "$WORK/produce.out" | sed 's/^/  /'
  produced=$(awk '/^produced/ { print $2 }' "$WORK/produce.out")
  kafka=(--config "$PROFILE" --brokers "$B" --until-idle "$IDLE")
  for rep in $(seq 1 "$REPEAT"); do
    g="scaling-$$-$rep"
    run_scenario kafka "1 host -w 1" "$rep" 1 4 "${kafka[@]}" --group "$g-w1" -w 1
    run_scenario kafka "2 hosts -n 2 -w 1" "$rep" 2 4 "${kafka[@]}" --group "$g-n2" -w 1
  done
  if [ -n "$PERF" ]; then
    run_scenario kafka "2 hosts -n 2 -w 1" perf 2 4 "${kafka[@]}" --group "scaling-$$-perf" -w 1
  fi
fi
echo "load average at the end $(load)"

mkdir -p "$ROOT/bench/results"
RUNS=$RUNS OUT=$ROOT/bench/results/scaling-hosts.csv python3 - <<'EOF'
import csv, json, os, statistics
runs = [json.loads(l) for l in open(os.environ["RUNS"])]
med = statistics.median
rows = []
for key in dict.fromkeys((r["mode"], r["scenario"]) for r in runs):
    rs = [r for r in runs if (r["mode"], r["scenario"]) == key]
    rows.append({
        "mode": key[0], "scenario": key[1], "processes": rs[0]["processes"],
        "workers": rs[0]["workers"], "runs": len(rs),
        "records": int(med(r["records"] for r in rs)),
        "seconds": med(r["seconds"] for r in rs),
        "records_per_second": med(r["rate"] for r in rs),
        "records_per_second_runs": ";".join(f"{r['rate']:.0f}" for r in rs),
        "latency_p99_ms": med(p99s) if (p99s := [r["p99"] for r in rs if r["p99"] is not None]) else None,
        "peak_rss_mb": ";".join(f"{med(r['rss_mb'][p] for r in rs):.1f}" for p in range(rs[0]["processes"])),
        "engine_cpu_s": med(r["engine_cpu"] for r in rs),
        "broker_cpu_s": med(r["broker_cpu"] for r in rs),
    })
for row in rows:
    one = next((r for r in rows if r["mode"] == row["mode"] and r["workers"] == 1), None)
    row["per_worker"] = row["records_per_second"] / row["workers"]
    row["efficiency"] = row["records_per_second"] / (row["workers"] * one["records_per_second"]) if one else float("nan")
cols = ["mode", "scenario", "processes", "workers", "runs", "records", "seconds", "records_per_second",
        "per_worker", "efficiency", "latency_p99_ms", "peak_rss_mb", "engine_cpu_s", "broker_cpu_s",
        "records_per_second_runs"]
with open(os.environ["OUT"], "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=cols)
    w.writeheader()
    w.writerows(rows)
print(f"\n{'mode':5} {'scenario':18} {'records':>9} {'seconds':>7} {'records/s':>10} {'per worker':>10} "
      f"{'eff.':>5} {'p99 ms':>7} {'RSS MB':>11} {'CPU s: engine':>13} {'brokers':>7}")
for r in rows:
    print(f"{r['mode']:5} {r['scenario']:18} {r['records']:>9,} {r['seconds']:7.3f} {r['records_per_second']:>10,.0f} "
          f"{r['per_worker']:>10,.0f} {r['efficiency']:5.2f} {'-' if r['latency_p99_ms'] is None else round(r['latency_p99_ms'], 1):>7} {r['peak_rss_mb']:>11} "
          f"{r['engine_cpu_s']:13.2f} {r['broker_cpu_s']:7.2f}")
print(f"\nmedian of {rows[0]['runs']} runs per scenario; written to {os.environ['OUT']}")
EOF
