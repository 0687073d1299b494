#!/usr/bin/env bash
# What sleeping costs on this host, independent of meshprobe: a load generator below saturation sleeps between
# sends and responses, and every sleep is paid twice.
#  1. CPU per sleep and wake-up: a thread that sleeps for 100 us, 500 us or 2 ms in a loop, CPU from getrusage
#     divided by the number of sleeps (nothing else runs in the loop).
#  2. The same small piece of work (63 reads 4160 bytes apart in a 256 KiB buffer), timed when run back to back and
#     when run right after a 500 us or 2 ms sleep: how much slower a thread runs just after waking up.
# On bare metal a wake-up is a few microseconds; in a virtual machine it can be ten times that. The open model's
# CPU per request below the closed model's rate is mostly this (see bench/README.md, Open model).
# Pinned to core 0 like the client in the other benchmarks.
#   bench/host-wakeup.sh
set -euo pipefail
exec taskset -c 0 python3 - <<'PY'
import resource, time

def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime

def cpu_per_wakeup(period):
    n = int(0.5 / period)
    before = cpu_seconds()
    for _ in range(n):
        time.sleep(period)
    return (cpu_seconds() - before) / n * 1e6

data = bytearray(range(256)) * 1024
def unit():
    total = 0
    for i in range(0, len(data), 4096 + 64):
        total += data[i]
    return total

def unit_micros(sleep_before, n=2000):
    spent = 0.0
    for _ in range(n):
        if sleep_before:
            time.sleep(sleep_before)
        start = time.perf_counter()
        unit()
        spent += time.perf_counter() - start
    return spent / n * 1e6

for period in (0.0001, 0.0005, 0.002):
    print("sleep %4.0f us: %5.1f us of CPU per sleep and wake-up" % (period * 1e6, cpu_per_wakeup(period)))
back_to_back = unit_micros(0)
print("work unit back to back:      %5.2f us" % back_to_back)
for period in (0.0005, 0.002):
    t = unit_micros(period)
    print("work unit after a %4.0f us sleep: %5.2f us (%.1fx)" % (period * 1e6, t, t / back_to_back))
PY
