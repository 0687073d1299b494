#!/usr/bin/env bash
# Client CPU per request: meshprobe load vs h2load against the same nginx (Debian) TLS HTTP/2 server.
#
# The server gets core 1, each client core 0 (taskset), one client at a time, alternating, ROUNDS times.
# Prints CPU microseconds per request for each and the ratio meshprobe/h2load (median over rounds, and the ratio of
# the two clients' CPU summed over all rounds, which a single noisy round moves less), then meshprobe's peak RSS at
# -c 1000 -m 10. Loopback only; every run is bounded by -n.
#
#   bench/h2load-vs-meshprobe.sh            # N=200000 ROUNDS=3
#   N=50000 ROUNDS=1 bench/h2load-vs-meshprobe.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
N=${N:-200000}
ROUNDS=${ROUNDS:-3}
RSS_N=${RSS_N:-100000}
scripts/install-deps
command -v taskset >/dev/null || { echo "taskset (util-linux) is needed" >&2; exit 2; }
scripts/build-release >/dev/null
BIN=.build/release/meshprobe

work=$(mktemp -d)
trap 'stop_nginx "$work"; rm -rf "$work"' EXIT
start_nginx "$BIN" "$work"
URL=$NGINX_URL

# Runs a command on core 0 and prints "cpu_seconds max_rss_kb" of the child.
measure() {
  python3 - "$@" <<'PY'
import resource, subprocess, sys
p = subprocess.run(["taskset", "-c", "0"] + sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
if p.returncode != 0:
    sys.stderr.write(p.stdout); sys.exit(1)
print("%.4f %d" % (r.ru_utime + r.ru_stime, r.ru_maxrss))
PY
}

echo "server: nginx $(nginx -v 2>&1 | sed 's/.*nginx\///') TLS HTTP/2 on core 1; clients on core 0; -c 10 -m 10 -n $N; $ROUNDS rounds"
ratios=()
h_total=0
m_total=0
# Which client goes first alternates: a run that comes second in a round costs a few percent more CPU here (see
# bench/ab-builds.sh), which a fixed order would charge to one client.
for round in $(seq 1 "$ROUNDS"); do
  if (( round % 2 == 1 )); then
    read -r h_cpu _ < <(measure h2load -n "$N" -c 10 -m 10 "$URL")
    read -r m_cpu _ < <(measure $BIN load -n "$N" -c 10 -m 10 --ca "$NGINX_CA" --quiet "$URL")
  else
    read -r m_cpu _ < <(measure $BIN load -n "$N" -c 10 -m 10 --ca "$NGINX_CA" --quiet "$URL")
    read -r h_cpu _ < <(measure h2load -n "$N" -c 10 -m 10 "$URL")
  fi
  h_total=$(python3 -c "print($h_total + $h_cpu)")
  m_total=$(python3 -c "print($m_total + $m_cpu)")
  h_us=$(python3 -c "print('%.2f' % ($h_cpu/$N*1e6))")
  m_us=$(python3 -c "print('%.2f' % ($m_cpu/$N*1e6))")
  ratio=$(python3 -c "print('%.2f' % ($m_cpu/$h_cpu))")
  ratios+=("$ratio")
  echo "round $round: h2load ${h_us} us/request, meshprobe ${m_us} us/request, ratio ${ratio}"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "median ratio meshprobe/h2load: $median (bar <= 1.5, goal <= 1.0)"
echo "all rounds together: h2load $(python3 -c "print('%.2f' % ($h_total/$N/$ROUNDS*1e6))") us/request," \
     "meshprobe $(python3 -c "print('%.2f' % ($m_total/$N/$ROUNDS*1e6))") us/request, ratio $(python3 -c "print('%.3f' % ($m_total/$h_total))")"

read -r _ rss < <(measure $BIN load -n "$RSS_N" -c 1000 -m 10 --ca "$NGINX_CA" --quiet "$URL")
echo "meshprobe peak RSS at -c 1000 -m 10 -n $RSS_N: $((rss / 1024)) MB (goal <= 150 MB)"
