#!/usr/bin/env bash
# Two meshprobe builds side by side making gRPC calls (meshprobe.echo.v1.Echo/Call, h2c) to the echo, which answers
# with its identity stamps: the path ab-builds.sh (nginx, no stamps) does not exercise. CPU per run from `perf stat`
# (task-clock), ROUNDS alternating rounds of -n N -c 10 -m 10, client on core 0, the echo (NEW's) on core 1. Prints
# each round, then the mean, minimum and median ratio NEW/OLD: the minimum is the least disturbed pair on a shared
# machine. Loopback only; bounded by -n.
#   bench/ab-builds-grpc.sh OLD_BINARY NEW_BINARY        # ROUNDS=12 N=100000
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
[ $# -eq 2 ] && [ -x "$1" ] && [ -x "$2" ] || { echo "usage: bench/ab-builds-grpc.sh OLD_BINARY NEW_BINARY" >&2; exit 2; }
command -v perf >/dev/null || { echo "perf (linux-perf) is needed" >&2; exit 2; }
ROUNDS=${ROUNDS:-12}
N=${N:-100000}
port=$(free_port)
taskset -c 1 "$2" echo --listen "127.0.0.1:$port" --h2c --workload bench --workload-version v1 >/dev/null 2>&1 &
echo_pid=$!
trap 'kill $echo_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
URL="grpc://127.0.0.1:$port/meshprobe.echo.v1.Echo/Call"

cpu_ms() {
  local out
  out=$(perf stat -x, -e task-clock taskset -c 0 "$1" load "$URL" -n "$N" -c 10 -m 10 --quiet 2>&1 >/dev/null) || { echo "$out" >&2; return 1; }
  grep task-clock <<<"$out" | cut -d, -f1
}

echo "-n $N -c 10 -m 10 gRPC calls to the echo (h2c), $ROUNDS alternating rounds; task-clock ms per run"
olds=() news=()
for round in $(seq 1 "$ROUNDS"); do
  if (( round % 2 == 1 )); then o=$(cpu_ms "$1"); n=$(cpu_ms "$2"); else n=$(cpu_ms "$2"); o=$(cpu_ms "$1"); fi
  olds+=("$o"); news+=("$n")
  echo "round $round: old $o new $n ratio $(python3 -c "print('%.3f' % ($n / $o))")"
done
python3 - "${olds[*]}" "${news[*]}" <<'PY'
import statistics, sys
old = [float(x) for x in sys.argv[1].split()]
new = [float(x) for x in sys.argv[2].split()]
print("new/old: mean %.3f, minimum %.3f, median %.3f" % (sum(new) / sum(old), min(new) / min(old),
      statistics.median(new) / statistics.median(old)))
PY
