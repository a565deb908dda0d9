#!/bin/bash
# enospc_node_down.sh - a cluster with one node down keeps writing on a
# disk with room (doc/cell.md "Full disk"): three `quorumfs node`
# processes whose directories share one small tmpfs (128 MiB), a router
# mount; a follower of table t's group is killed for good, then files of
# 64 KiB are written, fsynced and deleted in rounds of 16 MiB, 192 MiB in
# all.  The disk never holds more than a round or two of them (the nodes
# release their WALs below the live members' match points; the dead node,
# once back, is caught up by a snapshot), so no write may fail.  The
# leader's full-disk admission counts what each member still has to write
# of the batches it admitted (src/node/rnode.c space_backlog): a dead
# member's match never moves, and counting everything admitted since it
# died (instead of only what the leader's WAL still holds), or reading it
# from marks that had kept only the last ~200 batches, refused writes and
# even unlinks with half the tmpfs free (backlog=51 MiB free=52 MiB).  Skips (77) when tmpfs
# cannot be mounted.  Every node process is ours, killed by PID in the trap.
. "$QFS_SRCDIR/tests/lib/common.sh"
. "$QFS_SRCDIR/tests/lib/cluster.sh"
qfs_require fusermount3 python3 mountpoint mount umount

SIZE_MB=${SIZE_MB:-128}
T=$(mktemp -d /tmp/qfs-enospcnd.XXXXXX)
M=$T/m
SMALL=$T/small
mkdir -p "$M" "$T/s" "$SMALL"
NODE_PIDS=""
SMNT=$M

cleanup() {
	local rc=$?
	fusermount3 -u "$M" 2>/dev/null || fusermount3 -uz "$M" 2>/dev/null || true
	for p in $NODE_PIDS; do
		kill -9 "$p" 2>/dev/null
	done
	for p in $NODE_PIDS; do
		while kill -0 "$p" 2>/dev/null; do sleep 0.1; done
	done
	if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
		df -B1 "$SMALL" >&2
		for f in "$T"/n*/quorumfs-node.log; do
			[ -f "$f" ] && { echo "--- $f" >&2; grep -E 'refused|release' "$f" | tail -n 8 >&2; }
		done
	fi
	mountpoint -q "$SMALL" && umount "$SMALL"
	rm -rf "$T"
	exit $rc
}
trap cleanup EXIT
cluster_watchdog 300
mount -t tmpfs -o "size=${SIZE_MB}m,mode=755" tmpfs "$SMALL" 2>"$T/mount.err" ||
	skip "cannot mount a tmpfs: $(cat "$T/mount.err")"
for n in 1 2 3; do
	mkdir "$SMALL/n$n" && ln -s "$SMALL/n$n" "$T/n$n" || fail "node directory $n"
done
cluster_file a b c
NODE_OPTS=seal_size=1M # small segments: the WALs are released as the files go
for n in 1 2 3; do start_node $n; done
"$QFS_BIN" mount -o "cluster=$C" "$T/s" "$M" || fail "mount"
mkdir "$M/t" || fail "mkdir of a table"
G=$(awk '$1 == "table" && $2 == "t" { print $4 }' "$M/.quorumfs/status")
[ -n "$G" ] || fail "no group for table t in the status"
L=$(leader_wait "$G")
[ -n "$L" ] || fail "no leader for group $G"
D=$((L % 3 + 1))
[ "${KILL:-1}" = 0 ] || kill -9 "$(pid_of $D)" || fail "kill node $D"
note "table t in group $G, leader $L; node $D killed; $((3 * SIZE_MB / 2)) MiB in files of 64 KiB written and deleted on a ${SIZE_MB} MiB tmpfs"
python3 - "$M/t" "$SMALL" $((3 * SIZE_MB / 2)) <<'PY' || fail "a write failed with a node down on a disk with room (see above)"
import os, sys, time
d, small, total = sys.argv[1], sys.argv[2], int(sys.argv[3])

def used():
    st = os.statvfs(small)
    return (st.f_blocks - st.f_bfree) * st.f_frsize >> 20

base, done = used(), 0
while done < total:
    # a round of 256 files of 64 KiB (1 MiB entries would stay: a node
    # keeps 256 entries below its applied LSN), deleted, then the space is
    # given back (WAL releases, segments whose chunks are all gone) before
    # the next round: at most 60 s, no timing assertion
    for i in range(256):
        p = os.path.join(d, "f%d" % i)
        try:
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.write(fd, os.urandom(64 << 10))
            os.fsync(fd)
            os.close(fd)
        except OSError as e:
            print("FAIL: %d MiB written and deleted, then: %s; %d MiB of the tmpfs used (%d before)"
                  % (done, e, used(), base), file=sys.stderr)
            sys.exit(1)
    done += 16
    top = used()
    for i in range(256):
        try:
            os.unlink(os.path.join(d, "f%d" % i))
        except OSError as e:
            print("FAIL: %d MiB written and deleted, then an unlink: %s; %d MiB of the tmpfs used (%d before)"
                  % (done, e, used(), base), file=sys.stderr)
            sys.exit(1)
    for _ in range(600):
        if used() <= base + 32:
            break
        time.sleep(0.1)
    print("# %d MiB written and deleted: %d MiB of the tmpfs used, %d at most, %d before"
          % (done, used(), top, base))
PY
note "PASS ($SECONDS s)"
exit 0
