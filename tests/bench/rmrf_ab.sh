#!/bin/bash
# tests/bench/rmrf_ab.sh - rm -rf of a copied tree (issue 8's "rm -rf of the
# copied /usr/include tree" row) on a fresh default mount, two binaries
# alternating (ABBA), with the daemon's CPU time, the cell's proposals and
# fdatasyncs, the replicated txns and the FUSE requests per entry removed.
#
# Usage (as root, from a build directory):
#   tests/bench/rmrf_ab.sh [-r ROUNDS] [-t TREE]
#   -r ROUNDS   rounds (default 2); with QFS_OLD_BIN each round runs the
#               two binaries ABBA (new, old, old, new)
#   -t TREE     the tree copied (default /usr/include)
#   QFS_BIN      the quorumfs binary (default ./fs/quorumfs)
#   QFS_OLD_BIN  a baseline binary (optional)
# Each run: mount fresh, cp -a TREE into table b, unmount, mount the same
# data again, sync + drop_caches (vs_passthrough.sh's cold walks), then the
# timed rm -rf.  Not a test (not in make check).  One line per run, then
# the medians:
#   bin=new rm_ms=... cpu_us/entry=... proposals/entry=... syncs/entry=...
#     txns/entry=... lookups/entry=... getattrs/entry=... readdirs/entry=...
#     gets/entry=... unlinks=... rmdirs=... load=...
# (proposals and syncs: the cell's, .quorumfs/stats; txns and gets: the
# router's replicated txns and store reads; the rest: FUSE requests)
# doc/perf.md "AFTER 45".
ROUNDS=2
TREE=/usr/include
while getopts r:t:h opt; do
	case $opt in
	r) ROUNDS=$OPTARG ;;
	t) TREE=$OPTARG ;;
	*) sed -n '2,22s/^# \{0,1\}//p' "$0"; exit 2 ;;
	esac
done
. "$(dirname "$0")/../lib/abba.sh"
qfs_ab_setup rmrf_ab.sh rmrfab
[ -w /proc/sys/vm/drop_caches ] || { echo "rmrf_ab.sh: /proc/sys/vm/drop_caches is not writable" >&2; exit 2; }
TCK=$(getconf CLK_TCK)
ENTRIES=$(find "$TREE" | wc -l)

cpu() { awk '{ print $14 + $15 }' "/proc/$PID/stat"; }
# counters: "proposals fsyncs txns lookup getattr readdir unlink rmdir gets"
counters() {
	awk '$1 == "cell" { for (i = 2; i < NF; i++) { if ($i == "proposals") p = $(i + 1); if ($i == "fsyncs") f = $(i + 1) } }
	     $1 == "table" && $3 == "op" && $4 == "txn" { t += $6 }
	     $1 == "table" && $3 == "op" && $4 == "get" { g += $6 }
	     $1 == "op" { c[$2] = $4 }
	     END { printf "%d %d %d %d %d %d %d %d %d\n", p, f, t, c["lookup"], c["getattr"], c["readdir"], c["unlink"], c["rmdir"], g }' \
		"$MNT/.quorumfs/stats"
}

one() {
	local c0 c1 t s0 s1
	qfs_ab_mount "$1" "$2"
	mkdir "$MNT/b" || exit 1
	cp -a "$TREE" "$MNT/b/tree" || exit 1
	# remount on the same data (qfs_ab_mount would wipe it)
	fusermount3 -u "$MNT" || exit 1
	wait "$PID"
	"$2" mount -f "$T/data.$1" "$MNT" >>"$T/daemon.$1.out" 2>&1 &
	PID=$!
	for _ in $(seq 200); do [ -e "$MNT/.quorumfs/status" ] && break; sleep 0.05; done
	[ -e "$MNT/.quorumfs/status" ] || { cat "$T/daemon.$1.out" >&2; echo "remount failed" >&2; exit 1; }
	sync
	echo 3 >/proc/sys/vm/drop_caches
	sleep 2
	s0=$(counters)
	c0=$(cpu)
	t=$(python3 -c 'import subprocess, sys, time
t = time.monotonic(); subprocess.run(["rm", "-rf", sys.argv[1]], check=True); print("%.3f" % (time.monotonic() - t))' "$MNT/b/tree") || exit 1
	c1=$(cpu)
	s1=$(counters)
	[ -z "$(ls -A "$MNT/b")" ] || { echo "rmrf_ab.sh: entries left after rm -rf" >&2; exit 1; }
	echo "$s0 $s1" | awk -v b="$1" -v n="$ENTRIES" -v t="$t" -v cu=$((c1 - c0)) -v k="$TCK" \
		-v l="$(cut -d' ' -f1 /proc/loadavg)" '{
		printf "bin=%s rm_ms=%.0f cpu_us/entry=%.0f proposals/entry=%.3f syncs/entry=%.3f txns/entry=%.3f lookups/entry=%.3f getattrs/entry=%.3f readdirs/entry=%.3f gets/entry=%.3f unlinks=%d rmdirs=%d load=%s\n",
			b, t * 1000, cu / k / n * 1e6, ($10 - $1) / n, ($11 - $2) / n, ($12 - $3) / n, ($13 - $4) / n, ($14 - $5) / n,
			($15 - $6) / n, ($18 - $9) / n, $16 - $7, $17 - $8, l }' | tee -a "$T/lines"
	qfs_ab_umount "$1"
}

echo "# rmrf_ab: $TREE ($ENTRIES entries), $ROUNDS rounds, load $(cut -d' ' -f1-3 /proc/loadavg)"
qfs_abba_rounds "$ROUNDS"
qfs_abba_medians "$T/lines" rm_ms cpu_us/entry
