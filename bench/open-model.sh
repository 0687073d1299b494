#!/usr/bin/env bash
# The open model's figures, each side by side with a reference in one run:
#  1. rate accuracy: --rate 5000 for 10 s against the echo (h2c); achieved rate and send-time error p99;
#  2. coordinated omission: the echo is frozen (SIGSTOP) for 500 ms every 2 s while meshprobe sends 1000 req/s
#     for 10 s; meshprobe's corrected and uncorrected latency beside h2load's (--rps, no correction);
#  3. CPU per request, open vs closed model, against nginx over TLS (-c 10 -m 10), ROUNDS times, at each of RATES;
#     beside it the same ratio for h2load (--rps R/10 per client against its own closed run) as a reference: h2load's
#     rate mode refills each client's budget and sends bursts as streams free up, with no schedule of intended times.
# Server on core 1, client on core 0. Loopback only; every run is bounded.
#   bench/open-model.sh                              # ROUNDS=1 RATES=30000
#   ROUNDS=3 RATES=30000,50000 bench/open-model.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
ROUNDS=${ROUNDS:-1}
RATES=${RATES:-30000}
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

echo "== 3. CPU per request, open vs closed, against nginx TLS HTTP/2 (-c 10 -m 10); $ROUNDS round(s), rates $RATES"
start_nginx "$BIN" "$work"
URL=$NGINX_URL
# h2load on core 0: prints "cpu_us_per_request requests" (CPU from getrusage of the child, requests from its summary).
h2load_cpu() {
  python3 - "$@" <<'PY'
import re, resource, subprocess, sys
p = subprocess.run(["taskset", "-c", "0", "h2load"] + sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
m = re.search(r"requests: \d+ total, \d+ started, (\d+) done", p.stdout)
if p.returncode != 0 or not m or int(m.group(1)) == 0:
    sys.stderr.write(p.stdout); sys.exit(1)
done = int(m.group(1))
print("%.1f %d" % ((r.ru_utime + r.ru_stime) / done * 1e6, done))
PY
}
declare -A ratios h2ratios
for round in $(seq 1 "$ROUNDS"); do
  taskset -c 0 $BIN load "$URL" -n 200000 -c 10 -m 10 --ca "$NGINX_CA" --quiet --json "$work/closed.json" >/dev/null
  c=$(field "$work/closed.json" "d['summary']['cpu_us_per_request']")
  read -r hc _ < <(h2load_cpu -n 200000 -c 10 -m 10 "$URL")
  for rate in ${RATES//,/ }; do
    taskset -c 0 $BIN load "$URL" --rate "$rate" -d 6s -c 10 -m 10 --ca "$NGINX_CA" --quiet --json "$work/open.json" >/dev/null
    o=$(field "$work/open.json" "d['summary']['cpu_us_per_request']")
    ratio=$(python3 -c "print('%.2f' % ($o/$c))")
    ratios[$rate]="${ratios[$rate]:-} $ratio"
    echo "round $round: closed: $c us/request ($(field "$work/closed.json" "d['summary']['rps']") req/s); open at $rate req/s: $o us/request" \
         "(achieved $(field "$work/open.json" "d['summary']['rps']") req/s, latency p50 $(field "$work/open.json" "d['summary']['latency_ms']['p50']") ms," \
         "late $(field "$work/open.json" "sum(d['summary']['late'].values())")); ratio open/closed $ratio (goal <= 1.2)"
    read -r ho hn < <(h2load_cpu --rps $((rate / 10)) -D 6 -c 10 -m 10 "$URL")
    h2ratio=$(python3 -c "print('%.2f' % ($ho/$hc))")
    h2ratios[$rate]="${h2ratios[$rate]:-} $h2ratio"
    echo "round $round: h2load closed: $hc us/request; h2load --rps $((rate / 10)) x 10 clients: $ho us/request ($hn requests in 6 s);" \
         "ratio $h2ratio (reference)"
  done
done
for rate in ${RATES//,/ }; do
  echo "open at $rate req/s: median ratio open/closed $(printf '%s\n' ${ratios[$rate]} | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')" \
       "(rounds:${ratios[$rate]}); h2load --rps/closed $(printf '%s\n' ${h2ratios[$rate]} | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')" \
       "(rounds:${h2ratios[$rate]})"
done
