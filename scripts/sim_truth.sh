#!/usr/bin/env bash
# Scores simulated races against their own truth: SEEDS seeds x the circuits, one line each.
# Usage: scripts/sim_truth.sh [SEEDS] [WORKERS]   (the binary: $PITWALL, default target/release/pitwall)
set -euo pipefail
seeds=${1:-20}
workers=${2:-2}
bin=${PITWALL:-target/release/pitwall}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
printf "%-12s %5s %9s %9s %9s %9s %9s %9s\n" circuit seed stop_p stop_r positions sc_p sc_r incidents
for circuit in monaco monza silverstone; do
  for seed in $(seq 1 "$seeds"); do
    out=$dir/$circuit-$seed
    PITWALL_HTTP=off RUST_LOG=warn "$bin" run -q --circuit "$circuit" --seed "$seed" \
      -w "$workers" --out "$out/run" --truth "$out/truth" > /dev/null
    "$bin" evaluate --out "$out/run" --laps "$out/truth/laps.csv" > "$out/eval.txt"
    awk -v c="$circuit" -v s="$seed" '
      # The shares of a rejoin line ("within one X %, exact Y %" of the n stops), as counts.
      function stops(file,   w, x) {
        match($0, /within one [0-9.]+/); w = substr($0, RSTART+11, RLENGTH-11)
        match($0, /exact [0-9.]+/); x = substr($0, RSTART+6, RLENGTH-6)
        printf "%.0f %.0f\n", n * w / 100, n * x / 100 >> file
      }
      /^pit stops/ { sp=$(NF-2); sr=$NF; sub(",", "", sp) }
      /^positions/ { match($0, /\([0-9.]+ %/); pos=substr($0, RSTART+1, RLENGTH-3) }
      /neutralised driver-laps/ { match($0, /recall [0-9.]+/); r=substr($0, RSTART+7, RLENGTH-7);
                                  match($0, /precision [0-9.]+/); p=substr($0, RSTART+10, RLENGTH-10);
                                  split($0, w, " "); nf=w[3]; nt=w[5]; jc=w[13]; jt=w[15] }
      /as first written at each lap/ && !rain { split($0, w, " "); ff=w[8]; ft=w[10]; fc=w[14]; fj=w[16] }
      /rain driver-laps/ { rain=1; split($0, w, " "); printf "%d %d %d %d\n", w[3], w[5], w[22], w[24] >> "'"$dir/rain"'" }
      /^incidents/ { inc=$2 "/" $4 }
      /^rejoin/ { match($0, /out-lap [0-9.]+/); rw=substr($0, RSTART+8, RLENGTH-8);
                  match($0, /exact [0-9.]+/); re=substr($0, RSTART+6, RLENGTH-6);
                  n=$2; printf "%d %.0f %.0f\n", $2, $2 * rw / 100, $2 * re / 100 >> "'"$dir/rejoin"'" }
      /as first written, when the car crossed/ { stops("'"$dir/rejoin_first"'") }
      /in hindsight, without the cars counted as passing/ { stops("'"$dir/rejoin_hindsight"'") }
      /^undercut/ { match($0, /[0-9]+ took the place/); ut=substr($0, RSTART, RLENGTH) + 0;
                    match($0, /before [0-9]+/); ur=substr($0, RSTART+7, RLENGTH-7);
                    match($0, /of them [0-9]+/); uk=substr($0, RSTART+8, RLENGTH-8);
                    printf "%d %d %d %d\n", $2, ut, ur, uk >> "'"$dir/undercut"'" }
      END { printf "%-12s %5s %9s %9s %9s %9s %9s %9s\n", c, s, sp, sr, pos, p, r, inc;
            printf "%s %s %s %s %s %s %s %s\n", nf, nt, jc, jt, ff, ft, fc, fj > "/dev/stderr" }' "$out/eval.txt" 2>> "$dir/neutral"
  done
done
# Pooled over every race: neutralised driver-laps found of those run wholly under SC/VSC/red,
# and of those judged so, how many saw one; settled, and as each lap row was first written.
awk '{ f += $1; t += $2; c += $3; j += $4; ff += $5; ft += $6; fc += $7; fj += $8 }
     END { printf "neutralised driver-laps, all races: recall %d/%d = %.3f, precision %d/%d = %.3f\n",
                  f, t, t ? f / t : 0, c, j, j ? c / j : 0;
           printf "as first written at each lap'"'"'s end: recall %d/%d = %.3f, precision %d/%d = %.3f\n",
                  ff, ft, ft ? ff / ft : 0, fc, fj, fj ? fc / fj : 0 }' "$dir/neutral"
# Rain: driver-laps on a wet track (most of the field on intermediates) and how many the run
# called rain; driver-laps it called rain and how many were on one or saw rainfall.
if [ -s "$dir/rain" ]; then
  awk '{ f += $1; t += $2; r += $3; j += $4 }
       END { printf "rain driver-laps, all races: recall %d/%d = %.3f, precision %d/%d = %.3f\n",
                    f, t, t ? f / t : 0, r, j, j ? r / j : 0 }' "$dir/rain"
fi
# The rejoin projection and the undercut view, pooled (evaluate's definitions).
pooled() { awk '{ w += $1; e += $2 } END { printf "%d and %d", w, e }' "$1" 2> /dev/null || echo "none"; }
first=$(pooled "$dir/rejoin_first")
known=$(pooled "$dir/rejoin_hindsight")
awk -v first="$first" -v known="$known" '{ n += $1; w += $2; e += $3 }
     END { printf "rejoin, all races: %d stops, within one place %d, exact %d; as first written (when the car crossed) %s; in hindsight (the rivals'"'"' own stops known) %s\n", n, w, e, first, known }' "$dir/rejoin"
awk '{ a += $1; t += $2; r += $3; k += $4 }
     END { printf "undercut, all races: %d attempts under green, %d took the place; within reach %d, of them %d took it\n", a, t, r, k }' "$dir/undercut"
