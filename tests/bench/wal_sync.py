#!/usr/bin/env python3
# tests/bench/wal_sync.py - what a WAL's fdatasync costs on this disk when
# the log grows (append: ext4 commits its journal for the new size) and when
# it overwrites blocks already written (no journal commit): W writers (the
# replicas' logs, each its own file in DIR), N lockstep rounds of one 4 KiB
# pwrite + fdatasync each; prints the median round, twice per mode.  A
# measurement for doc/perf.md "AFTER 4", not a test.
#
# Usage: tests/bench/wal_sync.py DIR [N [W]]   (defaults: 300 rounds, 3 writers)
import os
import statistics
import sys
import threading
import time

d = sys.argv[1]
N = int(sys.argv[2]) if len(sys.argv) > 2 else 300
W = int(sys.argv[3]) if len(sys.argv) > 3 else 3
buf = os.urandom(4096)


def one(fd, off):
    os.pwrite(fd, buf, off)
    os.fdatasync(fd)


def run(mode):
    fds = []
    for i in range(W):
        fd = os.open(f"{d}/wal_sync.{i}", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        if mode == "overwrite":
            os.pwrite(fd, b"\0" * (4096 * N), 0)
            os.fsync(fd)
        fds.append(fd)
    lat = []
    for r in range(N):
        t0 = time.monotonic()
        ts = [threading.Thread(target=one, args=(fd, r * 4096)) for fd in fds]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        lat.append(time.monotonic() - t0)
    for i, fd in enumerate(fds):
        os.close(fd)
        os.unlink(f"{d}/wal_sync.{i}")
    return statistics.median(lat) * 1e3


for _ in range(2):
    a = run("append")
    o = run("overwrite")
    print(f"{W} writers, 4 KiB pwrite+fdatasync per round: append {a:.3f} ms, overwrite {o:.3f} ms (median of {N})")
