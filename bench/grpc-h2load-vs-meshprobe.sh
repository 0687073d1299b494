#!/usr/bin/env bash
# Client CPU per gRPC call: meshprobe load vs h2load sending the same pre-framed gRPC POSTs to the same server, the
# echo serving gRPC over h2c (meshprobe.echo.v1.Echo/Call, an empty request message, replies with the stamps).
#
# ghz (the usual gRPC load generator) cannot be installed here (it is not in Debian or PyPI), and a grpcio client's
# CPU per call is Python's; h2load sending gRPC-framed POSTs (`-d` with the 5-byte prefix, content-type
# application/grpc, te: trailers) is the closest C peer. The server gets core 1, each client core 0, one client at a
# time, alternating which goes first, ROUNDS times. Prints CPU microseconds per call and the ratio meshprobe/h2load.
# Loopback only; every run is bounded by -n.
#
#   bench/grpc-h2load-vs-meshprobe.sh            # N=200000 ROUNDS=3
#   N=50000 ROUNDS=1 bench/grpc-h2load-vs-meshprobe.sh
#   TLS=1 bench/grpc-h2load-vs-meshprobe.sh  # over TLS (the server's certificate only: h2load presents none)
#   SERVER=nghttpd bench/grpc-h2load-vs-meshprobe.sh
#       # nghttpd answering each call with a framed empty reply from a file and a `grpc-status: 0` trailer: gRPC's
#       # framing and trailers with a plain server's 6 response headers (server, date, content-length, ...) instead
#       # of the echo's 14 identity stamps, i.e. the transport's cost per call without the work of attribution
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
N=${N:-200000}
ROUNDS=${ROUNDS:-3}
scripts/install-deps
command -v taskset >/dev/null || { echo "taskset (util-linux) is needed" >&2; exit 2; }
scripts/build-release >/dev/null
BIN=.build/release/meshprobe

TLS=${TLS:-0}
SERVER=${SERVER:-echo}
case "$SERVER" in echo|nghttpd) ;; *) echo "SERVER is echo or nghttpd, not '$SERVER'" >&2; exit 2 ;; esac
work=$(mktemp -d)
port=$(free_port)
METHOD=meshprobe.echo.v1.Echo/Call
if [ "$TLS" = 1 ]; then
  # TLS (ALPN h2), the server's certificate from meshprobe's lab PKI, no client certificate (h2load cannot present one).
  $BIN pki ca --trust-domain bench.local --out "$work/ca" >/dev/null
  $BIN pki issue --ca-dir "$work/ca" --spiffe-id spiffe://bench.local/ns/bench/sa/echo --dns localhost --out "$work/echo" >/dev/null
  serve=(--cert "$work/echo/cert-chain.pem" --key "$work/echo/key.pem" --no-client-cert)
  URL="https://127.0.0.1:$port/$METHOD"; GURL="grpcs://127.0.0.1:$port/$METHOD"; CLIENT=(--ca "$work/ca/ca.pem")
else
  serve=(--h2c)
  URL="http://127.0.0.1:$port/$METHOD"; GURL="grpc://127.0.0.1:$port/$METHOD"; CLIENT=()
fi
if [ "$SERVER" = nghttpd ]; then
  mkdir -p "$work/docroot/${METHOD%/*}"
  printf '\0\0\0\0\0' > "$work/docroot/$METHOD"
  if [ "$TLS" = 1 ]; then
    taskset -c 1 nghttpd -d "$work/docroot" --trailer 'grpc-status: 0' "$port" "$work/echo/key.pem" "$work/echo/cert-chain.pem" >"$work/echo.log" 2>&1 &
  else
    taskset -c 1 nghttpd --no-tls -d "$work/docroot" --trailer 'grpc-status: 0' "$port" >"$work/echo.log" 2>&1 &
  fi
else
  taskset -c 1 $BIN echo --listen "127.0.0.1:$port" "${serve[@]}" --workload bench --workload-version v1 >"$work/echo.log" 2>&1 &
fi
echo_pid=$!
trap 'kill $echo_pid 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
# An empty message, framed: flag 0, length 0.
printf '\0\0\0\0\0' > "$work/framed.bin"
# Both clients must see every call answered OK, else the comparison is of errors.
check=$($BIN load "$GURL" "${CLIENT[@]}" -n 100 --quiet 2>&1 | grep -c 'statuses:   OK: 100' || true)
[ "$check" = 1 ] || { echo "meshprobe's calls were not all OK:"; $BIN load "$GURL" "${CLIENT[@]}" -n 100; exit 1; }

measure() {
  python3 - "$@" <<'PY'
import resource, subprocess, sys
p = subprocess.run(["taskset", "-c", "0"] + sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
if p.returncode != 0:
    sys.stderr.write(p.stdout); sys.exit(1)
if "h2load" in sys.argv[1] and " 0 failed" not in p.stdout:
    sys.stderr.write(p.stdout); sys.exit(1)
print("%.4f" % (r.ru_utime + r.ru_stime))
PY
}
h2load_run() { measure h2load -n "$N" -c 10 -m 10 -d "$work/framed.bin" -H 'content-type: application/grpc' -H 'te: trailers' "$URL"; }
meshprobe_run() { measure $BIN load "$GURL" "${CLIENT[@]}" -n "$N" -c 10 -m 10 --quiet; }

echo "server: $([ "$SERVER" = nghttpd ] && echo "nghttpd (framed replies from a file, grpc-status trailer" || echo "meshprobe echo (gRPC"), $([ "$TLS" = 1 ] && echo TLS || echo h2c)) on core 1; clients on core 0; -c 10 -m 10 -n $N; $ROUNDS rounds"
ratios=()
h_total=0
m_total=0
for round in $(seq 1 "$ROUNDS"); do
  if (( round % 2 == 1 )); then
    h_cpu=$(h2load_run); m_cpu=$(meshprobe_run)
  else
    m_cpu=$(meshprobe_run); h_cpu=$(h2load_run)
  fi
  h_total=$(python3 -c "print($h_total + $h_cpu)")
  m_total=$(python3 -c "print($m_total + $m_cpu)")
  ratio=$(python3 -c "print('%.2f' % ($m_cpu/$h_cpu))")
  ratios+=("$ratio")
  echo "round $round: h2load $(python3 -c "print('%.2f' % ($h_cpu/$N*1e6))") us/call, meshprobe $(python3 -c "print('%.2f' % ($m_cpu/$N*1e6))") us/call, ratio $ratio"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "median ratio meshprobe/h2load: $median (goal <= 1.0)"
echo "all rounds together: ratio $(python3 -c "print('%.3f' % ($m_total/$h_total))")"
