#!/usr/bin/env bash
# The open model's figures, each side by side with a reference in one run:
#  1. rate accuracy: --rate 5000 for 10 s against the echo (h2c); achieved rate and send-time error p99;
#  2. coordinated omission: the echo is frozen (SIGSTOP) for 500 ms every 2 s while meshprobe sends 1000 req/s
#     for 10 s; meshprobe's corrected and uncorrected latency beside h2load's (--rps, no correction);
#  3. CPU per request, open vs closed model, against nginx over TLS (-c 10 -m 10), ROUNDS times, at each of RATES,
#     for each send tick in TICKS (`adaptive` is the default; 10ms is the granularity of h2load's rate mode); beside
#     it h2load --rps R/10 per client against its own closed run. h2load's rate mode has no schedule of intended
#     times: every max(10 ms, 1/rps) it adds the requests due to each client's budget and sends them as streams
#     free up. Voluntary context switches per request (getrusage of the client) show how often each client slept.
# Server on core 1, client on core 0. Loopback only; every run is bounded. bench/host-wakeup.sh shows what a sleep
# costs on this host.
#   bench/open-model.sh                              # ROUNDS=1 RATES=30000 TICKS=adaptive,10ms
#   ROUNDS=3 RATES=30000,50000 TICKS=adaptive bench/open-model.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
ROUNDS=${ROUNDS:-1}
RATES=${RATES:-30000}
TICKS=${TICKS:-adaptive,10ms}
scripts/install-deps
scripts/build-release >/dev/null
BIN=.build/release/meshprobe
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
            stop_nginx "$work"; rm -rf "$work"; }
trap cleanup EXIT
port() { free_port; }
field() { python3 -c "import json,sys; d=json.load(open('$1')); print(eval(sys.argv[1], {}, {'d': d}))" "$2"; }

EPORT=$(port)
taskset -c 1 $BIN echo --h2c --listen 127.0.0.1:$EPORT --workload bench > "$work/echo.log" 2>&1 &
ECHO=$!; pids+=($ECHO)
sleep 0.5

echo "== 1. rate accuracy: --rate 5000 -d 10s -c 4 -m 50 against the echo (h2c)"
taskset -c 0 $BIN load http://127.0.0.1:$EPORT/ --rate 5000 -d 10s -c 4 -m 50 --quiet --json "$work/rate.json" >/dev/null
echo "target 5000 req/s; achieved $(field "$work/rate.json" "d['summary']['rps']") req/s over $(field "$work/rate.json" "d['summary']['elapsed_seconds']") s;" \
     "sent $(field "$work/rate.json" "d['summary']['requests']") (50000 scheduled);" \
     "send delay p50 $(field "$work/rate.json" "d['summary']['send_delay_ms']['p50']") ms, p99 $(field "$work/rate.json" "d['summary']['send_delay_ms']['p99']") ms;" \
     "late $(field "$work/rate.json" "sum(d['summary']['late'].values())")"

echo "== 2. coordinated omission: the echo frozen 500 ms every 2 s; 1000 req/s for 10 s, -c 2 -m 10 (20 streams)"
stall() { for i in 1 2 3 4 5 6; do sleep 1.5; kill -STOP $ECHO; sleep 0.5; kill -CONT $ECHO; done; }
stall & STALL=$!
taskset -c 0 $BIN load http://127.0.0.1:$EPORT/ --rate 1000 -d 10s -c 2 -m 10 --quiet --json "$work/co.json" >/dev/null
wait $STALL || true
stall & STALL=$!
taskset -c 0 h2load --rps 500 -c 2 -m 10 -D 10 http://127.0.0.1:$EPORT/ > "$work/h2load-co.txt" 2>&1 || true
wait $STALL || true
kill -CONT $ECHO 2>/dev/null || true
printf '%-40s %10s %10s %10s %10s\n' "" "p50 ms" "p99 ms" "max ms" "mean ms"
for k in latency_ms latency_uncorrected_ms; do
  label="meshprobe ${k/_ms/}"; [ "$k" = latency_ms ] && label="meshprobe (from intended time)" || label="meshprobe (from actual send)"
  printf '%-40s %10s %10s %10s %10s\n' "$label" "$(field "$work/co.json" "d['summary']['$k']['p50']")" \
    "$(field "$work/co.json" "d['summary']['$k']['p99']")" "$(field "$work/co.json" "d['summary']['$k']['max']")" "$(field "$work/co.json" "d['summary']['$k']['mean']")"
done
line=$(grep -E "^time for request:" "$work/h2load-co.txt" || echo "time for request: n/a")
echo "h2load --rps 500 x 2 clients (no correction): ${line#time for request:}  (min max mean sd)"
echo "meshprobe late sends: $(field "$work/co.json" "d['summary']['late']")"

echo "== 3. CPU per request, open vs closed, against nginx TLS HTTP/2 (-c 10 -m 10); $ROUNDS round(s), rates $RATES, ticks $TICKS"
start_nginx "$BIN" "$work"
URL=$NGINX_URL
# on_core0 OUT COMMAND...: runs the command on core 0 with its output in OUT; prints "cpu_seconds voluntary_switches".
on_core0() {
  python3 - "$@" <<'PY'
import resource, subprocess, sys
with open(sys.argv[1], "w") as out:
    p = subprocess.run(["taskset", "-c", "0"] + sys.argv[2:], stdout=out, stderr=subprocess.STDOUT)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
if p.returncode != 0:
    sys.stderr.write(open(sys.argv[1]).read()); sys.exit(1)
print("%.6f %d" % (r.ru_utime + r.ru_stime, r.ru_nvcsw))
PY
}
# h2load_run ARGS...: prints "cpu_us_per_request switches_per_request requests".
h2load_run() {
  read -r cpu switches < <(on_core0 "$work/h2load.txt" h2load "$@")
  done=$(sed -nE 's/^requests: [0-9]+ total, [0-9]+ started, ([0-9]+) done.*/\1/p' "$work/h2load.txt")
  [ -n "$done" ] && [ "$done" -gt 0 ] || { cat "$work/h2load.txt" >&2; exit 1; }
  python3 -c "print('%.1f %.3f %d' % ($cpu / $done * 1e6, $switches / $done, $done))"
}
# meshprobe_run ARGS...: writes $work/m.json; prints "cpu_us_per_request switches_per_request".
meshprobe_run() {
  read -r _ switches < <(on_core0 "$work/m.txt" $BIN load "$URL" "$@" -c 10 -m 10 --ca "$NGINX_CA" --quiet --json "$work/m.json")
  python3 -c "import json; d=json.load(open('$work/m.json'))['summary']; print('%s %.3f' % (d['cpu_us_per_request'], $switches / d['requests']))"
}
ratio() { python3 -c "print('%.2f' % ($1/$2))"; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
declare -A ratios vs opens
for round in $(seq 1 "$ROUNDS"); do
  read -r c cs < <(meshprobe_run -n 200000)
  echo "round $round: meshprobe closed: $c us/request, $cs switches/request ($(field "$work/m.json" "d['summary']['rps']") req/s)"
  read -r hc hcs _ < <(h2load_run -n 200000 -c 10 -m 10 "$URL")
  echo "round $round: h2load closed:    $hc us/request, $hcs switches/request"
  for rate in ${RATES//,/ }; do
    for tick in ${TICKS//,/ }; do
      flags=(--rate "$rate" -d 6s); [ "$tick" = adaptive ] || flags+=(--send-tick "$tick")
      read -r o os < <(meshprobe_run "${flags[@]}")
      r=$(ratio "$o" "$c"); ratios[$rate/$tick]="${ratios[$rate/$tick]:-} $r"; opens[$tick]=$o
      echo "round $round: open at $rate req/s, tick $tick: $o us/request, $os switches/request, ratio to closed $r" \
           "(achieved $(field "$work/m.json" "d['summary']['rps']") req/s, latency p50 $(field "$work/m.json" "d['summary']['latency_ms']['p50']") ms," \
           "send delay p99 $(field "$work/m.json" "d['summary']['send_delay_ms']['p99']") ms, late $(field "$work/m.json" "sum(d['summary']['late'].values())"))"
    done
    read -r ho hos hn < <(h2load_run --rps $((rate / 10)) -D 6 -c 10 -m 10 "$URL")
    r=$(ratio "$ho" "$hc"); ratios[$rate/h2load]="${ratios[$rate/h2load]:-} $r"
    echo "round $round: h2load --rps $((rate / 10)) x 10 clients: $ho us/request, $hos switches/request, ratio to its closed run $r ($hn requests in 6 s)"
    for tick in ${TICKS//,/ }; do vs[$rate/$tick]="${vs[$rate/$tick]:-} $(ratio "${opens[$tick]}" "$ho")"; done
  done
done
for rate in ${RATES//,/ }; do
  for key in ${TICKS//,/ } h2load; do
    if [ "$key" = h2load ]; then
      echo "$rate req/s: h2load --rps / h2load closed: median $(median ${ratios[$rate/$key]}) (rounds:${ratios[$rate/$key]})"
    else
      echo "$rate req/s: meshprobe open, tick $key / meshprobe closed: median $(median ${ratios[$rate/$key]}) (rounds:${ratios[$rate/$key]});" \
           "/ h2load --rps: median $(median ${vs[$rate/$key]}) (rounds:${vs[$rate/$key]})"
    fi
  done
done
