#!/usr/bin/env bash
# Flag variants of one meshprobe build (and h2load) side by side against the same nginx TLS HTTP/2 server: CPU per
# run from `perf stat` (task-clock), writes (the write system calls) and throughput, ROUNDS alternating rounds of
# -n N -c C -m M, client on core 0, server on core 1. For tuning flags such as --coalesce-window: compare the means
# of many rounds within one run of this script (the host's noise moves whole runs by 10-20%, alternating rounds see
# the same noise). Loopback only; every run is bounded by -n.
#   bench/ab-flags.sh 'off=--coalesce-window 0' 'default=' '1ms=--coalesce-window 1ms'   # ROUNDS=10 N=100000 C=10 M=10
#   ROUNDS=20 C=1 M=8 N=30000 bench/ab-flags.sh 'off=--coalesce-window 0' 'default='
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
[ $# -ge 1 ] || { echo "usage: bench/ab-flags.sh NAME=FLAGS... (the first is the baseline)" >&2; exit 2; }
for v in "$@"; do [[ $v == *=* ]] || { echo "bench/ab-flags.sh: '$v' is not NAME=FLAGS" >&2; exit 2; }; done
command -v perf >/dev/null || { echo "perf (linux-perf) is needed" >&2; exit 2; }
ROUNDS=${ROUNDS:-10}
N=${N:-100000}
C=${C:-10}
M=${M:-10}
scripts/build-release >/dev/null
BIN=.build/release/meshprobe
work=$(mktemp -d)
trap 'stop_nginx "$work"; rm -rf "$work"' EXIT
start_nginx "$BIN" "$work"

# NAME OUTPUT-FILE COMMAND...: one line "NAME task-clock-ms writes" (the command's stdout goes to OUTPUT-FILE).
measure() {
  local name=$1 out=$2 stats
  shift 2
  stats=$(perf stat -x, -e task-clock -e syscalls:sys_enter_write taskset -c 0 "$@" 2>&1 >"$out") || { echo "$stats" >&2; return 1; }
  echo "$name $(grep task-clock <<<"$stats" | cut -d, -f1) $(grep sys_enter_write <<<"$stats" | cut -d, -f1)"
}

echo "-n $N -c $C -m $M against nginx (TLS HTTP/2), $ROUNDS alternating rounds; task-clock ms per run" >&2
# The order rotates every round (the variants, then h2load): on this machine the run that comes later in a round
# cost a few percent more CPU than the first (an A/A test measured 3-4%), which a fixed order adds to the difference.
entries=("$@" "h2load=")
for round in $(seq 1 "$ROUNDS"); do
  count=${#entries[@]}
  for i in $(seq 0 $((count - 1))); do
    v=${entries[$(( (i + round - 1) % count ))]}
    if [ "$v" = "h2load=" ]; then
      line=$(measure h2load "$work/out" h2load -n "$N" -c "$C" -m "$M" "$NGINX_URL")
      echo "$line $(grep -o 'finished in [^,]*, [0-9.]*' "$work/out" | awk '{print $NF}')"
      continue
    fi
    read -r -a flags <<<"${v#*=}"
    line=$(measure "${v%%=*}" "$work/out" "$BIN" load -n "$N" -c "$C" -m "$M" --ca "$NGINX_CA" --quiet ${flags[@]+"${flags[@]}"} "$NGINX_URL")
    echo "$line $(awk '/^throughput:/ {print $2}' "$work/out")"
  done
done | python3 -c '
import statistics, sys
runs, order = {}, []
for line in sys.stdin:
    name, ms, writes, rps = line.split()
    if name not in runs: order.append(name)
    runs.setdefault(name, []).append((float(ms), float(writes), float(rps)))
mean = lambda name, i: statistics.mean(r[i] for r in runs[name])
base, h2 = mean(order[0], 0), mean("h2load", 0)
for name in order:
    ms = [r[0] for r in runs[name]]
    print("%-12s mean %7.1f ms  median %7.1f  stdev %5.1f  /%s %.3f  /h2load %.3f  writes %6.0f  req/s %7.0f  (%d runs)" % (
        name, statistics.mean(ms), statistics.median(ms), statistics.stdev(ms) if len(ms) > 1 else 0, order[0],
        statistics.mean(ms) / base, statistics.mean(ms) / h2, mean(name, 1), mean(name, 2), len(ms)))
'
