#!/bin/bash
# tests/bench/dd_cost.sh - what a big write costs the daemon, in counters
# that move little with the machine's load: per GiB of `dd bs=1M
# conv=fsync` of random data into a fresh default mount, the daemon's
# CPU time (utime + stime) and minor page faults (/proc/PID/stat), the
# bytes its read(2)/pread(2) calls returned (rchar of /proc/PID/io: the
# data from /dev/fuse, and whatever it reads back from its own files),
# its VmHWM after the dd, and the dd's MiB/s (which does move with the
# load).
#
# Usage (as root, from a build directory):
#   tests/bench/dd_cost.sh [-b MIB] [-r ROUNDS]
#   -b MIB     MiB written per dd (default 1024)
#   -r ROUNDS  rounds (default 1); with QFS_OLD_BIN each round runs the
#              two binaries ABBA (new, old, old, new), so both see the
#              same load on average
#   QFS_BIN      the quorumfs binary (default ./fs/quorumfs)
#   QFS_OLD_BIN  a baseline binary (optional)
# Not a test (not in make check).  One line per dd:
#   bin=new MiB=1024 secs=... MiB/s=... cpu_s_per_GiB=... minflt_per_GiB=... read_GiB_per_GiB=...
#   VmHWM_MiB=... load=...
# doc/perf.md "AFTER 11".
MB=1024
ROUNDS=1
while getopts b:r:h opt; do
	case $opt in
	b) MB=$OPTARG ;;
	r) ROUNDS=$OPTARG ;;
	*) sed -n '2,20s/^# \{0,1\}//p' "$0"; exit 2 ;;
	esac
done
. "$(dirname "$0")/../lib/abba.sh"
qfs_ab_setup dd_cost.sh ddcost
head -c $((MB << 20)) /dev/urandom >"$T/rand" || exit 1
sync # (its write-back would land on the first dd)
TCK=$(getconf CLK_TCK)

# one NAME BIN: mount BIN fresh, dd, print the line, unmount.
one() {
	local f0 c0 f1 c1 t0 t1 hwm r0 r1
	qfs_ab_mount "$1" "$2"
	mkdir "$MNT/t" || exit 1
	sleep 1
	read -r f0 c0 < <(awk '{ print $10, $14 + $15 }' "/proc/$PID/stat")
	r0=$(awk '$1 == "rchar:" { print $2 }' "/proc/$PID/io")
	d0=$(awk '$1 == "read_bytes:" { print $2 }' "/proc/$PID/io")
	m0=$(awk '$1 == "Cached:" { print $2 }' /proc/meminfo)
	t0=$(date +%s.%N)
	dd if="$T/rand" of="$MNT/t/f" bs=1M conv=fsync 2>/dev/null || { echo "dd failed" >&2; exit 1; }
	t1=$(date +%s.%N)
	read -r f1 c1 < <(awk '{ print $10, $14 + $15 }' "/proc/$PID/stat")
	r1=$(awk '$1 == "rchar:" { print $2 }' "/proc/$PID/io")
	d1=$(awk '$1 == "read_bytes:" { print $2 }' "/proc/$PID/io")
	m1=$(awk '$1 == "Cached:" { print $2 }' /proc/meminfo)
	hwm=$(awk '$1 == "VmHWM:" { print int($2 / 1024) }' "/proc/$PID/status")
	awk -v n="$1" -v mb="$MB" -v f=$((f1 - f0)) -v c=$((c1 - c0)) -v t0="$t0" -v t1="$t1" \
		-v h="$hwm" -v k="$TCK" -v r=$((r1 - r0)) -v d=$((d1 - d0)) -v m=$((m1 - m0)) -v l="$(cut -d' ' -f1 /proc/loadavg)" 'BEGIN {
		g = mb / 1024; t = t1 - t0
		printf "bin=%s MiB=%d secs=%.2f MiB/s=%.1f cpu_s_per_GiB=%.2f minflt_per_GiB=%.0f read_GiB_per_GiB=%.2f disk_read_GiB_per_GiB=%.2f cached_GiB_per_GiB=%.2f VmHWM_MiB=%d load=%s\n",
			n, mb, t, mb / t, c / k / g, f / g, r / 1073741824 / g, d / 1073741824 / g, m / 1048576 / g, h, l }'
	cmp -s "$T/rand" "$MNT/t/f" || { echo "dd_cost.sh: the file read back differs" >&2; exit 1; }
	qfs_ab_umount "$1"
}

qfs_abba_rounds "$ROUNDS"
