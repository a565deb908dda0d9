#!/bin/bash
# tests/integration/memory.sh - the daemon's memory returns after files are
# deleted and does not grow with the number of files opened (issue 10 item
# 12, issue 8 item 7).
#
# Each round opens NFILES files at once (all held open), writes one byte at
# offset 200,000 into each (a sparse chunk: a hole then one byte), closes
# them, and deletes them all.  The daemon's RSS (VmRSS) is read after round
# 2 (caches and budgets warmed up) and after the last round: it must not
# have grown by more than a fixed tolerance, and must stay under the 256 MiB
# bound of doc/store.md.  Sizes and rounds, not time, decide the outcome.
# Behaviour: doc/store.md "Memory", quorumfs(8) cache_size, memtable_size.

. "${QFS_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"

qfs_require python3
set -o pipefail
NFILES=${QFS_MEM_FILES:-600}
ROUNDS=${QFS_MEM_ROUNDS:-6}
TOL_KIB=$((48 << 10))    # growth allowed between round 2 and the last round
BOUND_KIB=$((256 << 10)) # doc/store.md: the daemon stays under 256 MiB
# Under AddressSanitizer freed memory waits in a quarantine of 256 MiB by
# default, which alone would break the bound: keep it at 16 MiB (the daemon
# then measures about 110 MiB here, against 60-75 MiB without ASan).
# (That detection once failed at random: "ldd | grep -q" under pipefail
# can report the SIGPIPE ldd dies of, and without the quarantine setting
# the daemon measured 400 MiB.  qgrep reads all of ldd's output.)
if ldd "$QFS_BIN" 2>/dev/null | qgrep libasan; then
	export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16"
fi

qfs_setup
echo "$QFS_PID" >"$T/daemon.pid"
watchdog 240
mkdir "$MNT/mem" || fail "mkdir table"

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$QFS_PID/status"; }
# settled_kib [ABOVE]: the lowest VmRSS over 8 s (every 0.5 s), or the
# first one at or below ABOVE.  What the daemon gives back it gives back
# within that time: its keeper frees the write path's idle large buffers
# (up to 27 MiB, idle for 2 s) and calls malloc_trim every 5 s, so a
# sample taken right after a round may still hold them (CI once measured
# 49.8 MiB of growth against the 48 allowed that way).
settled_kib() {
	local min cur
	min=$(rss_kib)
	for _ in $(seq 16); do
		[ -n "${1:-}" ] && [ "$min" -le "$1" ] && break
		sleep 0.5
		cur=$(rss_kib)
		[ "$cur" -lt "$min" ] && min=$cur
	done
	echo "$min"
}

cat >"$T/round.py" <<'EOF2'
import os, sys
d, n, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3]
fds = []
for i in range(n):
    fds.append(os.open(os.path.join(d, "%s-%05d" % (tag, i)), os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644))
for i, fd in enumerate(fds):
    b = bytes([1 + i % 250])
    os.pwrite(fd, b, 200000)
for i, fd in enumerate(fds):
    os.close(fd)
# check one file before deleting: the hole reads as zeros, the byte is there
with open(os.path.join(d, "%s-%05d" % (tag, 7)), "rb") as f:
    data = f.read()
if len(data) != 200001 or data[200000] != 8 or any(data[:200000]):
    print("FAIL: file content wrong after the sparse write", file=sys.stderr)
    sys.exit(1)
for i in range(n):
    os.unlink(os.path.join(d, "%s-%05d" % (tag, i)))
if os.listdir(d):
    print("FAIL: files left after deleting them", file=sys.stderr)
    sys.exit(1)
EOF2

r2=
for r in $(seq "$ROUNDS"); do
	python3 "$T/round.py" "$MNT/mem" "$NFILES" "r$r" || fail "round $r"
	rss=$(rss_kib)
	note "round $r: $NFILES files opened, written sparsely, closed, deleted; VmRSS ${rss} KiB"
	[ "$rss" -lt "$BOUND_KIB" ] || fail "VmRSS ${rss} KiB after round $r is over the $((BOUND_KIB >> 10)) MiB bound"
	[ "$r" -eq 2 ] && r2=$(settled_kib)
done
rss=$(settled_kib $((r2 + TOL_KIB)))
[ $((rss - r2)) -le "$TOL_KIB" ] ||
	fail "VmRSS grew from ${r2} KiB (round 2) to ${rss} KiB (round $ROUNDS), each the lowest of 8 s: memory does not return after deletes"
note "VmRSS ${r2} KiB after round 2, ${rss} KiB after round $ROUNDS; peak $(awk '/^VmHWM:/ { print $2 }' "/proc/$QFS_PID/status") KiB"
qfs_umount
note "PASS ($SECONDS s)"
exit 0
