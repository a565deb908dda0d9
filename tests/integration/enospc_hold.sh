#!/bin/bash
# tests/integration/enospc_hold.sh - the data disk held 100 % full.
#
# DATA_DIR lives on a 384 MiB tmpfs.  While writers write files through the
# mount, a ballast file fills the tmpfs to the last byte (written until
# ENOSPC: the reserve the nodes keep is used up too), and it is held full
# for a few seconds: the nodes' own writes (WAL appends, RocksDB flushes and
# compactions, the keeper's work) fail with ENOSPC then.  Then the ballast
# is removed and the mount is unmounted.  Asserted:
#  - the daemon exits 0 at the unmount (it once aborted there, status 134,
#    in RocksDB: its info LOG writer, which had met ENOSPC, asserted on
#    the next line, logged by the flush at the unmount);
#  - after a remount every file whose close returned is intact;
#  - the mount writes again, and unmounts cleanly;
#  - while full, a listing of the writers' directory works (their pending
#    creates are passed over);
#  - a mount on a disk full to the last byte fails with a message that says
#    "No space left on device" (it said "Input/output error"), and once
#    space is back the mount has every acknowledged file.
# What the user sees while full: ENOSPC (or EIO never) on writes.
# Skips (77) when tmpfs cannot be mounted.  Behaviour: doc/format-store.md "Recovery contract".

. "${QFS_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"

qfs_require python3 mount umount
set -o pipefail
qfs_setup
echo "$QFS_PID" >"$T/daemon.pid"
watchdog "${QFS_ENOSPC_TIMEOUT:-300}"
qfs_umount
qfs_small_tmpfs 384m
mkdir "$T/archive" || fail "mkdir archive"
mount_again -o "archive=file://$T/archive"
mkdir "$MNT/t" || fail "mkdir table"

cat >"$T/hold.py" <<'PY'
# python3 hold.py write DIR ACKS STOPFILE | fill BALLAST | verify ACKS
import errno, hashlib, os, sys, time

def die(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)

def write_file(p, data):
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    except OSError as e:
        return e.errno
    try:
        os.write(fd, data)
        if data[0] & 1:
            os.fsync(fd)
    except OSError as e:
        try:
            os.close(fd)
        except OSError:
            pass
        return e.errno
    try:
        os.close(fd)
    except OSError as e:
        return e.errno
    return 0

cmd = sys.argv[1]
if cmd == "write":
    d, acks, stop = sys.argv[2:5]
    n = bad = 0
    errs = {}
    with open(acks, "w") as out:
        i = 0
        while not os.path.exists(stop):
            data = os.urandom(64 * 1024)
            p = os.path.join(d, "w%s-%05d" % (os.getpid(), i))
            i += 1
            e = write_file(p, data)
            if e:
                errs[e] = errs.get(e, 0) + 1
                if e != errno.ENOSPC:
                    die("write on a full disk failed with %s, want ENOSPC" % errno.errorcode.get(e, e))
                time.sleep(0.05)
                continue
            out.write("%s %s\n" % (p, hashlib.sha256(data).hexdigest()))
            out.flush()
            n += 1
            if n >= 400:
                break
            # a few MiB a second: the disk fills by the ballast, not by us
            time.sleep(0.1)
    print("# writer: %d files closed, errors %s" % (n, {errno.errorcode.get(k, k): v for k, v in errs.items()}))
elif cmd == "fill":
    # write until the filesystem has not one byte left
    with open(sys.argv[2], "wb", buffering=0) as b:
        blk = b"\1" * (1 << 20)
        for size in (1 << 20, 4096, 1):
            while True:
                try:
                    b.write(blk[:size])
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break
    sv = os.statvfs(os.path.dirname(sys.argv[2]))
    print("# ballast %d bytes, %d bytes free" % (os.path.getsize(sys.argv[2]), sv.f_bavail * sv.f_frsize))
elif cmd == "verify":
    n = 0
    for line in open(sys.argv[2]):
        p, want = line.split()
        try:
            got = open(p, "rb").read()
        except OSError as e:
            die("%s (closed before the unmount): %s" % (p, e))
        if hashlib.sha256(got).hexdigest() != want:
            die("%s changed" % p)
        n += 1
    print("# %d files intact" % n)
PY

STOP=$T/stop
pids=
for k in 1 2; do
	python3 "$T/hold.py" write "$MNT/t" "$T/acks$k" "$STOP" &
	pids="$pids $!"
done
sleep 2
python3 "$T/hold.py" fill "$SMALL/ballast" || fail "ballast"
sleep "${QFS_HOLD_SECONDS:-4}"
# still answers while full: the status, and a listing of t, where the
# writers hold files open whose creates are still pending (their
# write-back is refused; the listing goes on without them)
cat "$MNT/.quorumfs/status" >/dev/null || fail ".quorumfs/status on a full disk"
out=$(ls "$MNT/t" 2>&1) || fail "ls of a directory on a full disk: $out"
rm -f "$SMALL/ballast"
touch "$STOP"
for p in $pids; do wait "$p" || fail "a writer failed (see above)"; done
cat "$T"/acks1 "$T"/acks2 >"$T/acks"
# the mount writes again once the space is back (background work that
# follows the freed space may take a while on a loaded machine)
rm -f "$STOP"
for k in $(seq 60); do
	echo again >"$MNT/t/again" 2>/dev/null && break
	sleep 1
done
[ "$(cat "$MNT/t/again" 2>/dev/null)" = again ] ||
	fail "writes still fail 60 s after the ballast was removed"
python3 "$T/hold.py" verify "$T/acks" || fail "acknowledged files lost before the unmount"

fusermount3 -u "$MNT" || fail "fusermount3 -u failed"
wait "$QFS_PID"; rc=$?
QFS_PID=
[ $rc -ne 134 ] && [ $rc -lt 128 ] || fail "the daemon died of signal $((rc - 128)) at the unmount after a full disk (status $rc)"
if [ $rc -ne 0 ]; then
	tail -n 5 "$T/daemon.out" >&2
	fail "the daemon exited with $rc at the unmount after a full disk"
fi
mount_again -o "archive=file://$T/archive"
python3 "$T/hold.py" verify "$T/acks" || fail "acknowledged files lost"
[ "$(cat "$MNT/t/again")" = again ] || fail "t/again lost after the remount"
echo hello >"$MNT/t/after" && [ "$(cat "$MNT/t/after")" = hello ] || fail "write after the remount"
qfs_umount

# A mount on a disk full to the last byte fails, and says why: each node's
# RocksDB writes a new MANIFEST at open.  Nothing is lost: once space is
# back it mounts with everything.
python3 "$T/hold.py" fill "$SMALL/ballast" || fail "ballast"
timeout 120 "$QFS_BIN" mount -f -o "archive=file://$T/archive" "$DATA" "$MNT" >"$T/full.out" 2>&1
rc=$?
if mountpoint -q "$MNT"; then
	fusermount3 -u "$MNT"
	fail "mounted on a disk with not one byte free (want a failure that says so)"
fi
[ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $rc -lt 128 ] || { tail -n 5 "$T/full.out" >&2; fail "mount on a full disk: status $rc (want a failure, not a hang or a signal)"; }
grep -q 'cannot open the storage nodes.*No space left on device' "$T/full.out" ||
	{ tail -n 5 "$T/full.out" >&2; fail "mount on a full disk does not say 'No space left on device'"; }
rm -f "$SMALL/ballast"
mount_again -o "archive=file://$T/archive"
python3 "$T/hold.py" verify "$T/acks" || fail "acknowledged files lost after a mount on a full disk failed"
[ "$(cat "$MNT/t/after")" = hello ] || fail "t/after lost after a mount on a full disk failed"
qfs_umount
note "PASS ($SECONDS s)"
exit 0
