#!/bin/bash
# enospc_node_down.sh - a cluster with one node down keeps writing on a
# disk with room (doc/cell.md "Full disk"): three `quorumfs node`
# processes whose directories share one small tmpfs (192 MiB: a node keeps
# 64 MiB free for its store, src/node/server.c NODE_RESERVE), a router
# mount; a follower of table t's group is killed for good, then files of
# 64 KiB are written, fsynced and deleted in rounds of 16 MiB, 128 MiB in
# all.  The disk never holds more than a round or two of them (the nodes
# release their WALs below the live members' match points; the dead node,
# once back, is caught up by a snapshot), so no write may fail.  The
# leader's full-disk admission counts what each member still has to write
# of the batches it admitted (src/node/rnode.c space_backlog): a dead
# member's match never moves, and counting everything admitted since it
# died (instead of only what the leader's WAL still holds), or reading it
# from marks that had kept only the last ~200 batches, refused writes and
# even unlinks with half the tmpfs free (backlog=51 MiB free=52 MiB).
# Then the disk is filled to ENOSPC and emptied again (doc/cluster.md
# "Full disk"; a second python block below).  Skips (77) when tmpfs
# cannot be mounted.  Every node process is ours, killed by PID in the trap.
. "$QFS_SRCDIR/tests/lib/common.sh"
. "$QFS_SRCDIR/tests/lib/cluster.sh"
qfs_require fusermount3 python3 mountpoint mount umount

SIZE_MB=${SIZE_MB:-192}
TOTAL_MB=${TOTAL_MB:-128}
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
cluster_watchdog 480
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
note "table t in group $G, leader $L; node $D killed; $TOTAL_MB MiB in files of 64 KiB written and deleted on a ${SIZE_MB} MiB tmpfs"
python3 - "$M/t" "$SMALL" "$TOTAL_MB" <<'PY' || fail "a write failed with a node down on a disk with room (see above)"
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
    t0 = time.time()
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
    t1 = time.time()
    for _ in range(600):
        if used() <= base + 40:
            break
        time.sleep(0.1)
    print("# %d MiB written and deleted (%.1f s), then %.1f s until %d MiB of the tmpfs used, %d at most, %d before"
          % (done, t1 - t0, time.time() - t1, used(), top, base))
PY
# Then the disk filled with files of 1 MiB until a write is refused: the
# refusal is ENOSPC (not a timeout), the table still lists and its files
# still unlink, and once they are gone writes are admitted again within
# 60 s.  Before the nodes kept NODE_RESERVE, the disk filled to its last
# megabytes, the stores could not append their blob files and every call
# timed out, ls included; and their WALs kept the deleted 1 MiB entries.
python3 - "$M/t" "$SMALL" <<'PY' || fail "the full disk of a cluster (see above)"
import errno, os, sys, time
d, small = sys.argv[1], sys.argv[2]

def free():
    st = os.statvfs(small)
    return st.f_bavail * st.f_frsize >> 20

n, err = 0, None
while n < 1000:
    try:
        with open(os.path.join(d, "g%d" % n), "wb") as f:
            f.write(os.urandom(1 << 20))
            f.flush()
            os.fsync(f.fileno())
        n += 1
    except OSError as e:
        err = e
        break
if err is None or err.errno != errno.ENOSPC:
    sys.exit("FAIL: %d files of 1 MiB written, then %r (expected ENOSPC); %d MiB free" % (n, err, free()))
print("# %d files of 1 MiB written, then ENOSPC with %d MiB of the tmpfs free" % (n, free()))
names = os.listdir(d)  # a timeout here before
for name in names:
    os.unlink(os.path.join(d, name))
t0 = time.time()
while True:
    try:
        with open(os.path.join(d, "again"), "wb") as f:
            f.write(os.urandom(1 << 20))
            f.flush()
            os.fsync(f.fileno())
        break
    except OSError as e:
        if e.errno != errno.ENOSPC or time.time() - t0 > 60:
            sys.exit("FAIL: %d files deleted; a write %.0f s later: %s; %d MiB free" % (len(names), time.time() - t0, e, free()))
        time.sleep(0.5)
print("# %d files deleted: a write admitted again after %.1f s, %d MiB free" % (len(names), time.time() - t0, free()))
PY
note "PASS ($SECONDS s)"
exit 0
