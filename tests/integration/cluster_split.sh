#!/bin/bash
# cluster_split.sh - partition splits in cluster mode (doc/cluster.md
# "Splits"): four `quorumfs node` processes on 127.0.0.1 in three AZs
# (a b c a), two mounts -o cluster= with a small split_bytes.
#
#  1. writers through both mounts into one table, every file fsynced: the
#     table splits (.quorumfs/partitions of both mounts show the same
#     partitions, each on 3 nodes of 3 distinct AZs), no client error,
#     every acknowledged file reads back intact through both mounts, and
#     readdir of the table through both lists exactly the acknowledged
#     names across the partition boundaries;
#  2. a third mount stopped by the test hook inside a split (after the copy
#     and the old group's fence, before the commit: QFS_TEST_SPLIT_STOP=3)
#     is killed -9: a write through mount 2 into the fenced partition
#     waits for the takeover of the dead split's intent (no error), the
#     table is as before the split, every file intact;
#  3. the same at step 4 (committed, the old group not settled): the
#     table is after the split in both mounts, every file intact.
# Only 127.0.0.1.  Every node and mount process is ours, killed by PID.#
# Not in make check: cluster splits are experimental (off unless
# QFS_EXPERIMENTAL_CLUSTER_SPLITS=1, which this script sets): one CI-style
# run saw a listing through mount 1 miss a name mount 2 had acknowledged
# (doc/cluster.md section 6).  Run by hand:
#   QFS_BIN=build/fs/quorumfs QFS_SRCDIR=. tests/integration/cluster_split.sh
. "$QFS_SRCDIR/tests/lib/common.sh"
. "$QFS_SRCDIR/tests/lib/cluster.sh"
qfs_require fusermount3 python3 mountpoint

T=$(mktemp -d /tmp/qfs-clsplit.XXXXXX)
M1=$T/m1
M2=$T/m2
M3=$T/m3
mkdir -p "$M1" "$M2" "$M3" "$T/s1" "$T/s2" "$T/s3"
NODE_PIDS=""
M3PID=""
SMNT=$M1

cleanup() {
	local rc=$?
	for m in "$M1" "$M2" "$M3"; do
		fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null || true
	done
	[ -n "$M3PID" ] && kill -9 "$M3PID" 2>/dev/null
	for p in $NODE_PIDS; do
		kill -9 "$p" 2>/dev/null
	done
	if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
		for f in "$T"/s1/quorumfs.log "$T"/s2/quorumfs.log "$T"/s3/quorumfs.log "$T"/n1/quorumfs-node.log; do
			[ -f "$f" ] && { echo "--- tail of $f" >&2; tail -n 30 "$f" >&2; }
		done
	fi
	rm -rf "$T"
	exit $rc
}
trap cleanup EXIT
cluster_watchdog 150

C=$T/cluster
cluster_file a b c a
for n in 1 2 3 4; do start_node $n; done

export QFS_EXPERIMENTAL_CLUSTER_SPLITS=1
OPTS="cluster=$C,split_bytes=1M,split_check=200ms"
"$QFS_BIN" mount -o "$OPTS" "$T/s1" "$M1" || fail "mount 1"
"$QFS_BIN" mount -o "$OPTS" "$T/s2" "$M2" || fail "mount 2"
mkdir "$M1/t" || fail "mkdir of a table"
# parts MNT: the table's partition lines, "group lo hi epoch replicas azs"
parts() {
	awk '$1 == "table" && $2 == "t" && $3 == "partition" {
		for (i = 5; i < NF; i++) {
			if ($i == "group") g = $(i + 1); if ($i == "lo") l = $(i + 1); if ($i == "hi") h = $(i + 1)
			if ($i == "epoch") e = $(i + 1); if ($i == "replicas") r = $(i + 1); if ($i == "azs") z = $(i + 1)
		}
		print g, l, h, e, r, z }' "$1/.quorumfs/partitions"
}

# ---- 1. writers through both mounts, the table splits
rm -f "$T/STOP"
writer "$M1/t" a 7 >"$T/wa.out" 2>&1 &
WA=$!
writer "$M2/t" b 7 >"$T/wb.out" 2>&1 &
WB=$!
# a reader through each mount of the files the other mount acknowledged,
# while the splits run: content intact, and every name acknowledged before
# a readdir starts is in it (reads of a moved range are never missed)
reader() {
	python3 - "$1" "$2" "$T/STOP" "$3" <<'PY'
import hashlib, os, sys, time
d, acked, stop, secs = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
end, rounds, reads = time.time() + secs, 0, 0
while time.time() < end and not os.path.exists(stop):
    try:
        lines = [l.split() for l in open(acked) if l.endswith("\n")]
    except FileNotFoundError:
        lines = []
    names = set(os.listdir(d))
    missing = [n for n, _ in lines if n not in names]
    if missing:
        # diagnostics for the integrator (the test fails all the same):
        # is the name there by lookup, does a second listing have it, and
        # the partitions this mount routes by (the key's place in them)
        again = set(os.listdir(d))
        info = ["%s: lookup %s, in a second listing %s" % (n, os.path.exists(os.path.join(d, n)), n in again)
                for n in missing[:3]]
        try:
            parts = open(os.path.join(os.path.dirname(d), ".quorumfs", "partitions")).read()
        except OSError as e:
            parts = str(e)
        sys.exit("readdir of %s misses acknowledged %s (listing of %d names; %s)\n"
                 "partitions of this mount:\n%s" % (d, missing[:3], len(names), "; ".join(info), parts))
    for n, h in lines[-20:]:
        with open(os.path.join(d, n), "rb") as f:
            if hashlib.sha256(f.read()).hexdigest() != h:
                sys.exit("acknowledged file %s differs through %s" % (n, d))
        reads += 1
    rounds += 1
print("%d readdirs, %d reads" % (rounds, reads))
PY
}
reader "$M2/t" "$T/a.acked" 7 >"$T/ra.out" 2>&1 &
RA=$!
reader "$M1/t" "$T/b.acked" 7 >"$T/rb.out" 2>&1 &
RB=$!
wait $WA || fail "writer through mount 1: $(cat "$T/wa.out")"
wait $WB || fail "writer through mount 2: $(cat "$T/wb.out")"
wait $RA || fail "reader through mount 2: $(cat "$T/ra.out")"
wait $RB || fail "reader through mount 1: $(cat "$T/rb.out")"
note "readers during the splits: mount 2 $(cat "$T/ra.out"); mount 1 $(cat "$T/rb.out")"
note "mount 1: $(cat "$T/wa.out"); mount 2: $(cat "$T/wb.out")"
# the last splits may still run: wait until both mounts agree twice in a row
prev=
for _ in $(seq 60); do
	P1=$(parts "$M1")
	P2=$(parts "$M2")
	[ "$P1" = "$P2" ] && [ "$P1" = "$prev" ] && break
	prev=$P1
	sleep 0.5
done
n=$(echo "$P1" | wc -l)
[ "$n" -ge 3 ] || fail "the table did not split (split_bytes=1M): $P1"
[ "$P1" = "$P2" ] || fail "the mounts see different partitions:
$P1
--- mount 2:
$P2"
while read -r g lo hi e reps azs; do
	[ "$(echo "$reps" | tr ',' '\n' | sort -u | wc -l)" -eq 3 ] || fail "partition $g: replicas $reps"
	[ "$(echo "$azs" | tr ',' '\n' | sort -u | wc -l)" -eq 3 ] || fail "partition $g: AZs $azs not distinct"
	want=""
	for i in ${reps//,/ }; do want="$want${want:+,}$(az_of "$i")"; done
	[ "$azs" = "$want" ] || fail "partition $g: azs $azs, the cluster file says $want"
done <<<"$P1"
# one log line per split: counted again until it matches (30 s at most),
# as a size check late on a loaded machine may still split (its map change
# seen, its log line not yet written) after the listings above settled
for _ in $(seq 60); do
	s1=$(grep -c "partition split table=" "$T/s1/quorumfs.log")
	s2=$(grep -c "partition split table=" "$T/s2/quorumfs.log")
	n=$(parts "$M1" | wc -l)
	[ $((s1 + s2)) -eq $((n - 1)) ] && break
	sleep 0.5
done
note "$n partitions, the same in both mounts; splits by mount 1: $s1, by mount 2: $s2"
[ $((s1 + s2)) -eq $((n - 1)) ] || fail "$((s1 + s2)) splits logged for $n partitions"
for m in "$M1" "$M2"; do
	verify "$m/t" "$T/a.acked" >/dev/null || fail "files of mount 1 through $m"
	verify "$m/t" "$T/b.acked" >/dev/null || fail "files of mount 2 through $m"
	ls -f "$m/t" | grep -v '^\.\.\?$' | sort >"$T/ls"
	[ "$(sort -u "$T/ls" | wc -l)" -eq "$(wc -l <"$T/ls")" ] || fail "readdir of $m/t lists a name twice"
	cat "$T/a.acked" "$T/b.acked" | awk '{ print $1 }' | sort >"$T/want"
	cmp -s "$T/ls" "$T/want" || fail "readdir of $m/t is not the acknowledged files: $(diff "$T/want" "$T/ls" | head -5)"
	ls "$m/t" | sort -c || fail "readdir of $m/t is not sorted across partitions"
done
note "every acknowledged file ($(cat "$T/a.acked" "$T/b.acked" | wc -l)) intact through both mounts, readdir complete"

# ---- 2. and 3. kill -9 of a splitting mount inside its split
# mount 3 splits (split_bytes far below the partitions' size), stops at
# step K; the others do not split meanwhile (remounted with split_bytes=0)
# umount_wait MNT STATE_DIR: unmount, wait for the mount's process to end
umount_wait() {
	local p
	p=$(cat "$2/lock")
	fusermount3 -u "$1" || fail "umount $1"
	for _ in $(seq 200); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
	fail "the process of $1 did not end after its unmount"
}
umount_wait "$M1" "$T/s1"
"$QFS_BIN" mount -o "cluster=$C,split_bytes=0" "$T/s1" "$M1" || fail "remount 1"
umount_wait "$M2" "$T/s2"
"$QFS_BIN" mount -o "cluster=$C,split_bytes=0" "$T/s2" "$M2" || fail "remount 2"
: >"$T/x.acked" # mount 3 may stop before its first file is acknowledged (a loaded machine)
: >"$T/y.acked"
for k in 3 4; do
	before=$(parts "$M2" | wc -l)
	: >"$T/s3/quorumfs.log"
	QFS_TEST_SPLIT_STOP=$k "$QFS_BIN" mount -o "cluster=$C,split_bytes=64K,split_check=200ms" "$T/s3" "$M3" ||
		fail "mount 3"
	M3PID=$(cat "$T/s3/lock")
	# traffic through mount 3 for its split checks (a write into the range
	# it freezes waits, and fails when it dies: only acknowledged files count)
	( for i in $(seq 200); do
		head -c 3000 /dev/urandom >"$T/x$k"
		cp "$T/x$k" "$M3/t/x$k-$i" 2>/dev/null || exit 0
		echo "x$k-$i $(sha256sum <"$T/x$k" | cut -d' ' -f1)" >>"$T/x.acked"
		sleep 0.05
	done ) &
	XW=$!
	stopped=
	for _ in $(seq 150); do
		grep -q "split stopped at step $k (test hook)" "$T/s3/quorumfs.log" && { stopped=1; break; }
		sleep 0.1
	done
	[ -n "$stopped" ] || fail "mount 3 did not stop at split step $k"
	kill -9 "$M3PID"
	M3PID=
	wait $XW
	fusermount3 -uz "$M3" 2>/dev/null
	# writes through mount 2 into the partition mount 3 split (it had
	# requests on it: its files of this round are there, among others):
	# each waits for a dead split's takeover (k = 3) or finds the split
	# committed (k = 4)
	for f in $(awk -v p="x$k-" 'index($1, p) == 1 { print $1 }' "$T/x.acked"); do
		cat "$M2/t/$f" >"$T/z" && cp "$T/z" "$M2/t/$f" ||
			fail "rewrite of $f through mount 2 after the kill -9 at step $k"
	done
	for i in $(seq 10); do
		head -c 2000 /dev/urandom >"$T/y" && cp "$T/y" "$M2/t/y$k-$i" ||
			fail "write through mount 2 after the kill -9 at step $k"
		echo "y$k-$i $(sha256sum <"$T/y" | cut -d' ' -f1)" >>"$T/y.acked"
	done
	after=$(parts "$M2" | wc -l)
	if [ "$k" -le 3 ]; then
		[ "$after" -eq "$before" ] || fail "kill at step $k: $after partitions, want $before (before the split)"
		cat "$T/s1/quorumfs.log" "$T/s2/quorumfs.log" | grep -q "split intent taken over" ||
			fail "no mount took the dead split over"
	else
		[ "$after" -eq $((before + 1)) ] || fail "kill at step $k: $after partitions, want $((before + 1)) (after)"
	fi
	[ "$(parts "$M1")" = "$(parts "$M2")" ] || fail "kill at step $k: the mounts see different partitions"
	for m in "$M1" "$M2"; do
		for f in a b x y; do
			verify "$m/t" "$T/$f.acked" >/dev/null || fail "kill at step $k: files $f through $m"
		done
	done
	note "kill -9 at split step $k: $before -> $after partitions, every file intact, writes went on"
done
note "takeovers and fence repairs logged by mount 1: $(grep -c "partition fence repaired\|split intent taken over" "$T/s1/quorumfs.log"), mount 2: $(grep -c "partition fence repaired\|split intent taken over" "$T/s2/quorumfs.log")"
note "stale 2PC locks finished (a dead mount's prepared txns) by mount 1: $(grep -c "txn keys locked" "$T/s1/quorumfs.log"), mount 2: $(grep -c "txn keys locked" "$T/s2/quorumfs.log")"
exit 0
