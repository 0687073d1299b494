#!/usr/bin/env bash
# Time from SIGTERM (or SIGINT) to exit for a running `meshprobe load`, and its exit code.
# Starts an echo workload (h2c, 300 ms delay on 20% of requests) and a 60 s load at 200 req/s, signals it after
# 2 s, and prints the seconds it took to stop (goal: <= 2 s, exit code 3, a partial JSON result marked aborted).
#   bench/shutdown.sh [TERM|INT]
set -euo pipefail
cd "$(dirname "$0")/.."
SIG=${1:-TERM}
scripts/build-release >/dev/null
BIN=.build/release/meshprobe
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
work=$(mktemp -d)
$BIN echo --h2c --listen 127.0.0.1:$PORT --workload bench > "$work/echo.log" 2>&1 &
ECHO=$!
trap 'kill $ECHO 2>/dev/null || true; rm -rf "$work"' EXIT
sleep 0.5
$BIN load "http://127.0.0.1:$PORT/?delay=300ms:20" --rate 200 -d 60s -c 2 -m 50 --quiet --json "$work/r.json" > /dev/null 2>&1 &
LOAD=$!
sleep 2
start=$(date +%s.%N)
kill -s "$SIG" $LOAD
set +e
wait $LOAD
code=$?
set -e
end=$(date +%s.%N)
aborted=$(python3 -c "import json; print(json.load(open('$work/r.json'))['summary']['aborted'])")
printf 'SIG%s: stopped in %.3f s, exit code %d, result aborted=%s\n' "$SIG" "$(echo "$end - $start" | bc)" "$code" "$aborted"
