#!/bin/bash
# tests/bench/serial_ab.sh - serial 4 KiB creates (open O_CREAT|O_EXCL +
# write + close) then serial unlinks of them (issue 8's "serial creates /
# unlinks" rows) on a fresh default mount, two binaries alternating (ABBA),
# with the daemon's CPU time per operation (/proc/PID/stat), the figure that
# stays steady when the machine is shared (wall-clock rates do not).
#
# Usage (as root, from a build directory):
#   tests/bench/serial_ab.sh [-r ROUNDS] [-n FILES]
#   -r ROUNDS   rounds (default 3); with QFS_OLD_BIN each round runs the
#               two binaries ABBA (new, old, old, new)
#   -n FILES    files created, then unlinked (default 2000)
#   QFS_BIN      the quorumfs binary (default ./fs/quorumfs)
#   QFS_OLD_BIN  a baseline binary (optional)
# Not a test (not in make check).  One line per run, then the medians:
#   bin=new creates/s=... cpu_us/create=... unlinks/s=... cpu_us/unlink=... load=...
#   median bin=new creates/s=... cpu_us/create=... unlinks/s=... cpu_us/unlink=... runs=N
# The operations come from one python3 process (its own CPU is not
# counted).  doc/perf.md "AFTER 22".
ROUNDS=3
N=2000
while getopts r:n:h opt; do
	case $opt in
	r) ROUNDS=$OPTARG ;;
	n) N=$OPTARG ;;
	*) sed -n '2,20s/^# \{0,1\}//p' "$0"; exit 2 ;;
	esac
done
command -v python3 >/dev/null || { echo "serial_ab.sh: needs python3" >&2; exit 2; }
. "$(dirname "$0")/../lib/abba.sh"
qfs_ab_setup serial_ab.sh serialab
TCK=$(getconf CLK_TCK)

cpu() { awk '{ print $14 + $15 }' "/proc/$PID/stat"; }

# phase WHAT: run the creates or the unlinks in $MNT/b; prints seconds
phase() {
	python3 - "$1" "$MNT/b" "$N" <<'PY' || exit 1
import os, sys, time
what, d, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = os.urandom(4096 * 16)
t = time.monotonic()
for i in range(n):
    p = "%s/f%06d" % (d, i)
    if what == "create":
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        off = (i * 4096) % (len(data) - 4096)
        os.write(fd, data[off:off + 4096])
        os.close(fd)
    else:
        os.unlink(p)
print("%.6f" % (time.monotonic() - t))
PY
}

# one NAME BIN: mount BIN fresh, create then unlink, print the line, unmount.
one() {
	local c0 c1 c2 tc tu
	qfs_ab_mount "$1" "$2"
	mkdir "$MNT/b" || exit 1
	c0=$(cpu)
	tc=$(phase create) || { echo "serial_ab.sh: creates failed" >&2; exit 1; }
	c1=$(cpu)
	tu=$(phase unlink) || { echo "serial_ab.sh: unlinks failed" >&2; exit 1; }
	c2=$(cpu)
	[ -z "$(ls -A "$MNT/b")" ] || { echo "serial_ab.sh: files left after the unlinks" >&2; exit 1; }
	awk -v b="$1" -v n="$N" -v tc="$tc" -v tu="$tu" -v cc=$((c1 - c0)) -v cu=$((c2 - c1)) \
		-v k="$TCK" -v l="$(cut -d' ' -f1 /proc/loadavg)" 'BEGIN {
		printf "bin=%s creates/s=%.0f cpu_us/create=%.0f unlinks/s=%.0f cpu_us/unlink=%.0f load=%s\n",
			b, n / tc, cc / k / n * 1e6, n / tu, cu / k / n * 1e6, l }' | tee -a "$T/lines"
	qfs_ab_umount "$1"
}

qfs_abba_rounds "$ROUNDS"
qfs_abba_medians "$T/lines" creates/s cpu_us/create unlinks/s cpu_us/unlink
