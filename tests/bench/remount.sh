#!/bin/bash
# tests/bench/remount.sh - how long a mount of an existing data directory
# takes until the first file reads back, two binaries alternating (ABBA):
# a data directory with one table and a file is made once per binary, then
# each run mounts it (`quorumfs mount`, which returns once every group has
# a leader that can serve), cats the file and unmounts; the time from the
# mount command's start to the end of the cat, and the daemon's own
# "cell leaders ready ms=" from its log (the wait for leaders at open).
#
# Usage (as root, from a build directory):
#   tests/bench/remount.sh [-r ROUNDS] [-m MOUNTS]
#   -r ROUNDS   rounds (default 3); with QFS_OLD_BIN each round runs the
#               two binaries ABBA (new, old, old, new)
#   -m MOUNTS   mounts per run (default 5)
#   QFS_BIN      the quorumfs binary (default ./fs/quorumfs)
#   QFS_OLD_BIN  a baseline binary (optional)
# Not a test (not in make check).  One line per run, then the medians:
#   bin=new mount_ms=... leaders_ms=... load=...
#   median bin=new mount_ms=... leaders_ms=... runs=N
# doc/perf.md "AFTER 50".
ROUNDS=3
MOUNTS=5
while getopts r:m:h opt; do
	case $opt in
	r) ROUNDS=$OPTARG ;;
	m) MOUNTS=$OPTARG ;;
	*) sed -n '2,21s/^# \{0,1\}//p' "$0"; exit 2 ;;
	esac
done
. "$(dirname "$0")/../lib/abba.sh"
qfs_ab_setup remount.sh remount
LINES=$T/lines

# A data directory per binary, made once and kept (qfs_ab_umount would
# remove it): a table and a file of random data.
prepare() {
	mkdir -p "$T/keep.$1" "$MNT"
	"$2" mount "$T/keep.$1" "$MNT" || exit 1
	mkdir "$MNT/t" && head -c 10000 /dev/urandom >"$MNT/t/f" || exit 1
	cp "$MNT/t/f" "$T/f.$1"
	fusermount3 -u "$MNT" || exit 1
	wait_unlocked "$1"
}

# The daemon is gone once DATA/lock can be taken (the mount forks).
wait_unlocked() {
	for _ in $(seq 200); do
		flock -n "$T/keep.$1/lock" true && return
		sleep 0.05
	done
	echo "remount.sh: the daemon of $1 did not exit" >&2
	exit 1
}

one() {
	local name=$1 bin=$2 sum=0 lsum=0 t0 t1 ms
	for _ in $(seq "$MOUNTS"); do
		t0=$(date +%s%N)
		"$bin" mount "$T/keep.$name" "$MNT" || exit 1
		cmp -s "$MNT/t/f" "$T/f.$name" || { echo "remount.sh: $name: the file differs" >&2; exit 1; }
		t1=$(date +%s%N)
		sum=$((sum + (t1 - t0) / 1000))
		fusermount3 -u "$MNT" || exit 1
		wait_unlocked "$name"
		ms=$(grep -o "cell leaders ready groups=[0-9]* ms=[0-9]*" "$T/keep.$name/quorumfs.log" | tail -1 |
			sed 's/.*ms=//')
		lsum=$((lsum + ${ms:-0}))
	done
	echo "bin=$name mount_ms=$((sum / MOUNTS / 1000)) leaders_ms=$((lsum / MOUNTS)) load=$(cut -d' ' -f1 /proc/loadavg)" |
		tee -a "$LINES"
}

prepare new "$QFS_BIN"
[ -z "${QFS_OLD_BIN:-}" ] || prepare old "$QFS_OLD_BIN"
qfs_abba_rounds "$ROUNDS"
qfs_abba_medians "$LINES" mount_ms leaders_ms
