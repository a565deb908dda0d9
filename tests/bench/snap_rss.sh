#!/bin/bash
# tests/bench/snap_rss.sh - peak memory of a node process that rebuilds a
# partition from a snapshot (doc/rnode.md section 6, "Measured").
#
# Usage (as root, from a build directory or with QFS_BIN set):
#   tests/bench/snap_rss.sh [MIB]     partition size in MiB (default 256)
#   QFS_BIN   the quorumfs binary (default ./fs/quorumfs)
# Not a test (not run by make check).  Cluster mode: three `quorumfs node`
# processes on 127.0.0.1 and a router mount.  Writes MIB of random data
# into one table (files of 8 MiB, dd conv=fsync), unmounts, stops the
# nodes (SIGTERM: their stores are made durable), starts them again for
# one small file (the entry that opens a new WAL segment), stops them, then
# plays the part of
# the archiver, which a cluster does not run: on nodes 1 and 2 it deletes
# every WAL segment of the table's group but the newest, as
# qfs_rnode_wal_release would, so the log no longer reaches back to LSN 1.
# Node 3's directory is wiped (a lost disk) and the three nodes start
# again: node 3 can only catch up by snapshot.  Prints, after '#' lines:
#   partition_bytes N    (the group's store on node 1, du of its store dir)
#   rebuild_ms N         (node 3's start to its "rnode snapshot installed")
#   node3_peak_rss_kib N (VmHWM of node 3's process after the install)
#   node3_rss_kib N      (its VmRSS then)
# Compare two binaries in one run: QFS_BIN=old tests/bench/snap_rss.sh; then new.

: "${QFS_BIN:=$(pwd)/fs/quorumfs}"
[ -x "$QFS_BIN" ] || { echo "snap_rss.sh: $QFS_BIN is not executable (set QFS_BIN)" >&2; exit 2; }
MIB=${1:-256}
QFS_SRCDIR=${QFS_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$QFS_SRCDIR/tests/lib/common.sh"
. "$QFS_SRCDIR/tests/lib/cluster.sh"
set -o pipefail

T=$(mktemp -d /tmp/qfs-snaprss.XXXXXX)
M=$T/m
mkdir -p "$M" "$T/s"
NODE_PIDS=""
SMNT=$M
cleanup() {
	local rc=$?
	fusermount3 -u "$M" 2>/dev/null || fusermount3 -uz "$M" 2>/dev/null || true
	for p in $NODE_PIDS; do kill -9 "$p" 2>/dev/null; done
	[ -n "${QFS_KEEP:-}" ] && echo "# kept $T" >&2 || rm -rf "$T"
	exit $rc
}
trap cleanup EXIT

C=$T/cluster
cluster_file a b c
for n in 1 2 3; do start_node $n; done
"$QFS_BIN" mount -o "cluster=$C" "$T/s" "$M" || fail "mount"
mkdir "$M/t" || fail "mkdir of a table"
G=$(awk '$1 == "table" && $2 == "t" { print $4 }' "$M/.quorumfs/status")
[ -n "$G" ] || fail "no group for table t"
head -c $((MIB << 20)) /dev/urandom >"$T/src" || fail "random source"
for ((i = 0; i < MIB / 8; i++)); do
	dd if="$T/src" of="$M/t/f$i" bs=1M skip=$((i * 8)) count=8 conv=fsync status=none ||
		fail "dd of f$i"
done
fusermount3 -u "$M" || fail "unmount"
stop_all() {
	for n in 1 2 3; do kill -TERM "$(pid_of $n)" 2>/dev/null; done
	for n in 1 2 3; do
		for _ in $(seq 300); do kill -0 "$(pid_of $n)" 2>/dev/null || break; sleep 0.1; done
	done
	NODE_PIDS=""
}
stop_all
# Restarted, each node seals its log's tail (doc/rnode.md section 3): the
# next entry opens a new segment, the only one kept below.
for n in 1 2 3; do start_node $n; done
"$QFS_BIN" mount -o "cluster=$C" "$T/s" "$M" || fail "mount again"
echo last >"$M/t/last" || fail "write after the restart"
fusermount3 -u "$M" || fail "unmount"
stop_all
for n in 1 2; do
	segs=$(ls "$T/n$n/wal/$G"/*.wal | sort)
	keep=$(echo "$segs" | tail -n 1)
	for s in $segs; do [ "$s" = "$keep" ] || rm -f "$s"; done
done
PART=$(du -sb "$T/n1/store" | awk '{ print $1 }')
rm -rf "$T/n3"
start_node 1
start_node 2
t0=$(date +%s%N)
start_node 3
P3=$(pid_of 3)
ok=0
for _ in $(seq $((${QFS_SNAP_WAIT:-300} * 10))); do
	if grep -q "rnode snapshot installed group=$G node=3" "$T/n3/quorumfs-node.log" 2>/dev/null; then
		ok=1
		break
	fi
	kill -0 "$P3" 2>/dev/null || fail "node 3 died: $(tail -n 5 "$T/n3/quorumfs-node.log")"
	sleep 0.1
done
t1=$(date +%s%N)
[ $ok = 1 ] || fail "node 3 installed no snapshot in ${QFS_SNAP_WAIT:-300} s: $(grep -i snapshot "$T"/n*/quorumfs-node.log | tail -n 5)"
echo "# $QFS_BIN, $MIB MiB partition, group $G"
echo "partition_bytes $PART"
echo "rebuild_ms $(((t1 - t0) / 1000000))"
echo "node3_peak_rss_kib $(awk '/^VmHWM/ { print $2 }' "/proc/$P3/status")"
echo "node3_rss_kib $(awk '/^VmRSS/ { print $2 }' "/proc/$P3/status")"
stop_all
