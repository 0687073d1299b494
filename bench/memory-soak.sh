#!/usr/bin/env bash
# Peak RSS over a long run: 2000 req/s for DURATION (default 5m) against the echo (h2c), RSS sampled every 10 s.
# Goal: growth under 5% after the first 30 s.
#   bench/memory-soak.sh            # 5 minutes
#   DURATION=60s bench/memory-soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5m}
scripts/build-release >/dev/null
BIN=.build/release/meshprobe
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
$BIN echo --h2c --listen 127.0.0.1:$PORT --workload soak > /dev/null 2>&1 &
ECHO=$!
trap 'kill $ECHO 2>/dev/null || true' EXIT
sleep 0.5
$BIN load "http://127.0.0.1:$PORT/?size=512" --rate 2000 -d "$DURATION" -c 4 -m 20 --quiet > /tmp/meshprobe-soak.txt 2>&1 &
LOAD=$!
samples=()
t=0
while kill -0 $LOAD 2>/dev/null; do
  rss=$(awk '/VmRSS/ {print $2}' /proc/$LOAD/status 2>/dev/null || echo "")
  [ -n "$rss" ] && samples+=("$t $rss") && echo "t=${t}s rss=$((rss / 1024)) MB"
  sleep 10; t=$((t + 10))
done
wait $LOAD || true
printf '%s\n' "${samples[@]}" | python3 -c '
import sys
rows = [tuple(map(int, l.split())) for l in sys.stdin if l.strip()]
base = [r for t, r in rows if t >= 30]
if len(base) < 2: print("run longer than 40 s to judge growth"); sys.exit(0)
first, peak = base[0], max(base)
print("RSS at 30 s: %.1f MB, peak after: %.1f MB, growth %.1f%% (goal < 5%%)" % (first / 1024, peak / 1024, (peak - first) / first * 100))'
tail -n 12 /tmp/meshprobe-soak.txt | head -n 6
