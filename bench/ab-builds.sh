#!/usr/bin/env bash
# Two meshprobe builds (and h2load) side by side against the same nginx TLS HTTP/2 server: CPU per run from
# `perf stat` (task-clock), ROUNDS alternating rounds of -n N -c 10 -m 10, client on core 0, server on core 1.
# For A/B tests of a change to the load engine: a single round varies by about 8% on this machine kind, so compare
# the means of many rounds (20 rounds give about +-2%), and run nothing else meanwhile. Loopback only; bounded by -n.
# With RATE set, the open model instead: -n N --rate RATE (h2load: --rps RATE/10 per client), N/RATE seconds a run.
#   bench/ab-builds.sh OLD_BINARY NEW_BINARY           # ROUNDS=10 N=100000
#   ROUNDS=30 bench/ab-builds.sh /tmp/meshprobe-before .build/release/meshprobe
#   RATE=20000 ROUNDS=20 bench/ab-builds.sh /tmp/meshprobe-before .build/release/meshprobe
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
[ $# -eq 2 ] && [ -x "$1" ] && [ -x "$2" ] || { echo "usage: bench/ab-builds.sh OLD_BINARY NEW_BINARY" >&2; exit 2; }
command -v perf >/dev/null || { echo "perf (linux-perf) is needed" >&2; exit 2; }
ROUNDS=${ROUNDS:-10}
N=${N:-100000}
work=$(mktemp -d)
trap 'stop_nginx "$work"; rm -rf "$work"' EXIT
start_nginx "$2" "$work"

# task-clock milliseconds of one run of the command on core 0; fails if the command does.
cpu_ms() {
  local out
  out=$(perf stat -x, -e task-clock taskset -c 0 "$@" 2>&1 >/dev/null) || { echo "$out" >&2; return 1; }
  grep task-clock <<<"$out" | cut -d, -f1
}

MODEL=() H2MODEL=()
if [ -n "${RATE:-}" ]; then MODEL=(--rate "$RATE"); H2MODEL=(--rps "$(( RATE / 10 ))"); fi
echo "-n $N -c 10 -m 10 ${MODEL[*]} against nginx (TLS HTTP/2), $ROUNDS alternating rounds; task-clock ms per run"
# The order rotates every round: on this machine the run that comes second in a round cost about 3-4% more CPU
# than the first (an A/A test of one build in both places measured it), which a fixed order adds to the difference.
run() {
  case $1 in
    old) echo "old $(cpu_ms "$OLD" load -n "$N" -c 10 -m 10 "${MODEL[@]}" --ca "$NGINX_CA" --quiet "$NGINX_URL")" ;;
    new) echo "new $(cpu_ms "$NEW" load -n "$N" -c 10 -m 10 "${MODEL[@]}" --ca "$NGINX_CA" --quiet "$NGINX_URL")" ;;
    h2load) echo "h2load $(cpu_ms h2load -n "$N" -c 10 -m 10 "${H2MODEL[@]}" "$NGINX_URL")" ;;
  esac
}
OLD=$1 NEW=$2
orders=("old new h2load" "new h2load old" "h2load old new")
for round in $(seq 1 "$ROUNDS"); do
  for which in ${orders[$(( (round - 1) % 3 ))]}; do run "$which"; done
done | python3 -c '
import statistics, sys
runs = {}
for line in sys.stdin:
    name, ms = line.split()
    runs.setdefault(name, []).append(float(ms))
for name in ("old", "new", "h2load"):
    v = runs[name]
    print("%-7s mean %7.1f ms  median %7.1f  stdev %5.1f  (%d runs)" % (name, statistics.mean(v), statistics.median(v), statistics.stdev(v) if len(v) > 1 else 0, len(v)))
print("new/old %.3f   old/h2load %.3f   new/h2load %.3f (means)" % (
    statistics.mean(runs["new"]) / statistics.mean(runs["old"]),
    statistics.mean(runs["old"]) / statistics.mean(runs["h2load"]),
    statistics.mean(runs["new"]) / statistics.mean(runs["h2load"])))
'
