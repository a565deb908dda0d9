#!/bin/bash
# tests/bench/fsync_ab.sh - concurrent 4 KiB pwrite+fsync writers (issue 8's
# "8 writers" row) against a fresh default mount, two binaries alternating
# (ABBA), with the counters that tell where the rate comes from: replica
# log syncs and proposals per fsync() (.quorumfs/stats, all three
# replicas) and the daemon's CPU time per fsync() (/proc/PID/stat).
#
# Usage (as root, from a build directory):
#   tests/bench/fsync_ab.sh [-r ROUNDS] [-f FSYNCS] [-w WRITERS]
#   -r ROUNDS   rounds (default 3); with QFS_OLD_BIN each round runs the
#               two binaries ABBA (new, old, old, new)
#   -f FSYNCS   pwrite+fsync calls per writer (default 500)
#   -w WRITERS  writers, each its own file (default 8; 1 for the serial row)
#   QFS_BIN      the quorumfs binary (default ./fs/quorumfs)
#   QFS_OLD_BIN  a baseline binary (optional)
# Not a test (not in make check).  One line per run, then the medians:
#   bin=new fsyncs/s=... p50_ms=... syncs/fsync=... proposals/fsync=... gets/fsync=... cpu_us/fsync=... disk_B/B=... load=...
#   median bin=new fsyncs/s=... syncs/fsync=... gets/fsync=... cpu_us/fsync=... disk_B/B=... runs=N
# disk_B/B: the daemon's /proc/PID/io write_bytes during the run per byte
# the writers wrote (4 KiB per call).
# The writers are `quorumfs bench --raw --only fsyncn` (fsync1 with -w 1),
# which also does a warm-up of 100 calls per writer: the counters divide
# by the timed calls only, so they include the warm-up's share.
# doc/perf.md "AFTER 15".
ROUNDS=3
F=500
W=8
while getopts r:f:w:h opt; do
	case $opt in
	r) ROUNDS=$OPTARG ;;
	f) F=$OPTARG ;;
	w) W=$OPTARG ;;
	*) sed -n '2,23s/^# \{0,1\}//p' "$0"; exit 2 ;;
	esac
done
. "$(dirname "$0")/../lib/abba.sh"
qfs_ab_setup fsync_ab.sh fsyncab
ONLY=fsyncn
[ "$W" -eq 1 ] && ONLY=fsync1
TCK=$(getconf CLK_TCK)

# cell_sum: "FSYNCS PROPOSALS GETS" of the mount (.quorumfs/stats, line
# "cell"; GETS: the router's item reads, lines "table T op get")
cell_sum() {
	awk '$1 == "cell" { for (i = 2; i < NF; i++) { if ($i == "fsyncs") f = $(i + 1); if ($i == "proposals") p = $(i + 1) } }
	     $1 == "table" && $3 == "op" && $4 == "get" { g += $6 }
	     END { print f + 0, p + 0, g + 0 }' "$MNT/.quorumfs/stats"
}

# one NAME BIN: mount BIN fresh, run the writers, print the line, unmount.
one() {
	local s0 p0 g0 s1 p1 g1 c0 c1 rate p50
	qfs_ab_mount "$1" "$2"
	mkdir "$MNT/b" || exit 1
	read -r s0 p0 g0 < <(cell_sum)
	c0=$(awk '{ print $14 + $15 }' "/proc/$PID/stat")
	w0=$(awk '$1 == "write_bytes:" { print $2 }' "/proc/$PID/io")
	"$2" bench --raw --only "$ONLY" -f "$F" -w "$W" "$MNT/b" >"$T/bench.out" 2>"$T/bench.err" ||
		{ cat "$T/bench.err" >&2; echo "fsync_ab.sh: quorumfs bench failed" >&2; exit 1; }
	c1=$(awk '{ print $14 + $15 }' "/proc/$PID/stat")
	w1=$(awk '$1 == "write_bytes:" { print $2 }' "/proc/$PID/io")
	read -r s1 p1 g1 < <(cell_sum)
	read -r rate p50 < <(awk '$2 ~ /^fsync_/ { print $3, $5 }' "$T/bench.out")
	[ -n "$rate" ] || { cat "$T/bench.out" >&2; echo "fsync_ab.sh: no fsync row" >&2; exit 1; }
	awk -v b="$1" -v r="$rate" -v p="$p50" -v n=$((F * W)) -v s=$((s1 - s0)) -v q=$((p1 - p0)) -v g=$((g1 - g0)) \
		-v c=$((c1 - c0)) -v k="$TCK" -v l="$(cut -d' ' -f1 /proc/loadavg)" -v w=$((w1 - w0)) 'BEGIN {
		printf "bin=%s fsyncs/s=%.0f p50_ms=%s syncs/fsync=%.2f proposals/fsync=%.2f gets/fsync=%.2f cpu_us/fsync=%.0f disk_B/B=%.2f load=%s\n",
			b, r, p, s / n, q / n, g / n, c / k / n * 1e6, w / (n * 4096), l }' | tee -a "$T/lines"
	qfs_ab_umount "$1"
}

qfs_abba_rounds "$ROUNDS"
# medians per binary
qfs_abba_medians "$T/lines" fsyncs/s syncs/fsync gets/fsync cpu_us/fsync disk_B/B
