#!/bin/bash
# tests/integration/enospc.sh - a full disk under the data directory.
#
# DATA_DIR lives on a 384 MiB tmpfs (three replicas: WALs and RocksDBs), next to a 112 MiB
# ballast file; the nodes keep a reserve free (64 MiB by default, the
# "disk ... reserve_bytes" line of .quorumfs/status) that writes do not use.  Files of 256 KiB of random data are written until one
# operation fails: the errno must be ENOSPC (not EIO), whether it shows at
# open, write, fsync or close.  Then: every file whose close returned is
# intact, the mount still answers (ls, stat, status), the log says why; after
# deleting half of the files through the mount, new writes succeed again
# (retried for a few seconds to let background work finish); if they do not,
# the ballast is removed to tell "space never comes back" from "the mount is
# wedged" before failing.  Finally a clean unmount and a remount: everything
# closed is intact.  Skips (77) when tmpfs cannot be mounted.
# Behaviour: README "Status" and quorumfs(8).

. "${QFS_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"

qfs_require python3 mount umount
set -o pipefail
qfs_setup
echo "$QFS_PID" >"$T/daemon.pid"
watchdog "${QFS_ENOSPC_TIMEOUT:-300}"

# move to a data dir on a small tmpfs
qfs_umount
qfs_small_tmpfs 384m
head -c $((112 << 20)) /dev/urandom >"$SMALL/ballast" || fail "ballast"
# The archive lives off the small disk, as it should in production (three
# replicas and an archive copy of every segment on one small disk leave no
# room to recover): this test is about the data disk.
mkdir "$T/archive" || fail "mkdir archive"
mount_again -o "archive=file://$T/archive"
note "mounted on a 384 MiB tmpfs: $(df -h "$SMALL" | awk 'NR == 2 { print $3 " used, " $4 " free" }')"

cat >"$T/nospc.py" <<'EOF'
# helpers for enospc.sh: python3 nospc.py CMD ...
import errno, hashlib, os, sys, time

def die(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)

def sha(b):
    return hashlib.sha256(b).hexdigest()

def write_file(p, data):
    """Write (fsync when data[0] is odd) and close; None or (op, errno)."""
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    except OSError as e:
        return ("open", e.errno)
    op = "write"
    try:
        for o in range(0, len(data), 65536):
            mv = memoryview(data)[o:o + 65536]
            while mv:
                mv = mv[os.write(fd, mv):]
        if data[0] & 1:
            op = "fsync"
            os.fsync(fd)
    except OSError as e:
        try:
            os.close(fd)
        except OSError:
            pass
        return (op, e.errno)
    try:
        os.close(fd)
    except OSError as e:
        return ("close", e.errno)
    return None

def fill(d, acks):
    """Write 256 KiB files until an error; it must be ENOSPC."""
    with open(acks, "w") as out:
        for i in range(1000):
            p = os.path.join(d, f"f{i}")
            data = os.urandom(256 * 1024)
            r = write_file(p, data)
            if r is not None:
                op, e = r
                print(f"# file {i}: {op} failed with {errno.errorcode.get(e, e)} after {i * 256} KiB written")
                if e != errno.ENOSPC:
                    die(f"{op} on a full disk failed with {errno.errorcode.get(e, e)} ({os.strerror(e)}), want ENOSPC")
                if i < 8:
                    die(f"ENOSPC after only {i} files: the tmpfs is too small for this test")
                return
            out.write(f"{p} {sha(data)}\n")
            out.flush()
    die("wrote 250 MiB to a 384 MiB tmpfs without an error")

def verify(acks):
    n = 0
    for line in open(acks):
        p, want = line.split()
        try:
            got = open(p, "rb").read()
        except OSError as e:
            die(f"{p} (closed before the disk filled): {e}")
        if sha(got) != want:
            die(f"{p}: content changed ({len(got)} bytes)")
        n += 1
    print(f"# {n} files intact")

def delete_half(acks):
    """Unlink every other acked file; rewrite the acks; report errors."""
    keep, errs = [], []
    for k, line in enumerate(open(acks).read().splitlines()):
        p = line.split()[0]
        if k % 2:
            keep.append(line)
            continue
        try:
            os.unlink(p)
        except OSError as e:
            errs.append(f"unlink {p}: {errno.errorcode.get(e.errno, e.errno)}")
            keep.append(line)
    with open(acks, "w") as f:
        f.write("".join(x + "\n" for x in keep))
    if errs:
        print(f"# {len(errs)} unlinks failed on the full disk, first: {errs[0]}")
    return errs

def write_again(d, acks, tag, seconds):
    """Write 5 files of 64 KiB; retry for up to `seconds`.  Exit 0 if done."""
    deadline = time.time() + float(seconds)
    last = None
    while True:
        ok = []
        for i in range(5):
            p = os.path.join(d, f"again-{tag}-{i}")
            data = os.urandom(65536)
            r = write_file(p, data)
            if r is not None:
                last = r
                break
            ok.append(f"{p} {sha(data)}\n")
        if len(ok) == 5:
            with open(acks, "a") as f:
                f.write("".join(ok))
            print(f"# writes work again ({tag})")
            return
        if time.time() > deadline:
            op, e = last
            print(f"# {tag}: {op} still fails with {errno.errorcode.get(e, e)} after {seconds} s", file=sys.stderr)
            sys.exit(1)
        time.sleep(1)

def retry_after_enospc(path, ballast, reserve):
    # Writes acknowledged before a failed write-back must not be lost: fill
    # the disk, write 1 MiB blocks until one fails with ENOSPC (when the 8 MiB
    # write-back runs), free the space, retry that write, finish, close, and
    # read every block back.
    # The ballast leaves the reserve + 4 MiB: the 8 MiB write-back cannot
    # fit, smaller writes can.  It is sized from statvfs, not written until
    # ENOSPC and cut back: that left the disk 100% full for a moment, and
    # whatever the nodes wrote then (the keeper's compaction of a short
    # disk runs at this very time, RocksDB flushes, a follower's append)
    # failed below the reserve that the daemon keeps for them (held full
    # for 3 s, the daemon's RocksDB then aborted at the unmount).
    sv = os.statvfs(os.path.dirname(ballast))
    left = sv.f_bavail * sv.f_frsize - (4 << 20) - reserve
    with open(ballast, "wb") as b:
        while left > 0:
            n = min(left, 1 << 20)
            b.write(b"\0" * n)
            left -= n
    blocks = [os.urandom(1 << 20) for _ in range(16)]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    failed_at = None
    for i, blk in enumerate(blocks):
        try:
            os.pwrite(fd, blk, i << 20)
        except OSError as e:
            if e.errno != errno.ENOSPC:
                die(f"block {i}: want ENOSPC, got {errno.errorcode.get(e.errno, e.errno)}")
            failed_at = i
            break
    if failed_at is None:
        die("no write failed on a full disk")
    os.unlink(ballast)
    # the write that failed is retried; under heavy load (CI at load 15)
    # the first retry once met ENOSPC again right after the unlink (README
    # "Status" of stop 25; not reproduced since, in 13 runs at load 10-23;
    # the ballast's 100% full moment, gone above, is the likely cause): it
    # is retried for up to 10 s, and a retry that never succeeds fails the
    # test as before
    late = 0
    for i in range(failed_at, len(blocks)):
        while True:
            try:
                os.pwrite(fd, blocks[i], i << 20)
                break
            except OSError as e:
                if e.errno != errno.ENOSPC or i != failed_at or late >= 20:
                    raise
                late += 1
                time.sleep(0.5)
    if late:
        print(f"# the retried write met ENOSPC {late} more times after the space was freed")
    os.close(fd)
    with open(path, "rb") as f:
        data = f.read()
    if len(data) != len(blocks) << 20:
        die(f"size {len(data)} after retry, want {len(blocks) << 20}")
    for i, blk in enumerate(blocks):
        if data[i << 20:(i + 1) << 20] != blk:
            die(f"block {i} differs after a write-back failed at block {failed_at} and was retried")
    print(f"# write-back failed at block {failed_at}; after freeing space all {len(blocks)} blocks are intact")

def hold(ready, release, acks, *paths):
    """Create paths, write 512 KiB of random data to each and keep them open
    (pending creates: nothing stored before the close) until release exists;
    then close them: every close must succeed, and the files go to acks."""
    fds, lines = [], []
    for p in paths:
        data = os.urandom(512 * 1024)
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, data)
        fds.append(fd)
        lines.append(f"{p} {sha(data)}\n")
    open(ready, "w").close()
    parent = os.getppid()
    while not os.path.exists(release):
        if os.getppid() != parent:
            die("the test ended before releasing the open files")
        time.sleep(0.1)
    for fd, line in zip(fds, lines):
        try:
            os.close(fd)
        except OSError as e:
            die(f"close of {line.split()[0]} after the space came back: {errno.errorcode.get(e.errno, e.errno)}")
    with open(acks, "a") as f:
        f.write("".join(lines))
    print(f"# {len(paths)} files kept open over the full disk closed and stored")

if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "hold":
        hold(*sys.argv[2:])
        sys.exit(0)
    if cmd == "retry_after_enospc":
        retry_after_enospc(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        sys.exit(0)
    if cmd == "fill":
        fill(sys.argv[2], sys.argv[3])
    elif cmd == "verify":
        verify(sys.argv[2])
    elif cmd == "delete_half":
        delete_half(sys.argv[2])
    elif cmd == "write_again":
        write_again(*sys.argv[2:])
EOF
py() { python3 "$T/nospc.py" "$@" || fail "python step '$1' failed (see above)"; }

ACK=$T/acks
mkdir "$MNT/full" || fail "mkdir table"
RESERVE=$(awk '$1 == "disk" { for (i = 2; i < NF; i++) if ($i == "reserve_bytes") print $(i + 1) }' "$MNT/.quorumfs/status")
[ -n "$RESERVE" ] || fail "no 'disk ... reserve_bytes' line in .quorumfs/status"
py retry_after_enospc "$MNT/full/retry" "$SMALL/ballast2" "$RESERVE"
log_at=$(stat -c %s "$T/daemon.out" 2>/dev/null || echo 0)
# Two files stay open, unstored (pending creates), while the disk fills:
# one in the table, one in a directory.  A full disk refuses their
# write-back, and must not make a listing of their directory, the unlink
# of another file in it, or an rmdir fail with ENOSPC (doc/fs.md "One
# round per file", full disk).
mkdir "$MNT/full/sub" || fail "mkdir sub"
python3 "$T/nospc.py" hold "$T/held" "$T/release" "$ACK.held" "$MNT/full/pend" "$MNT/full/sub/pend" &
HOLDER=$!
for _ in $(seq 300); do [ -e "$T/held" ] || sleep 0.1; done
[ -e "$T/held" ] || fail "the files kept open were not written"
py fill "$MNT/full" "$ACK"
py verify "$ACK"
out=$(ls "$MNT/full" 2>&1) || fail "ls of the table fails on a full disk with a create pending in it: $out"
grep -qx f0 <<<"$out" || fail "ls on a full disk does not list f0: $out"
out=$(ls "$MNT/full/sub" 2>&1) || fail "ls of a directory fails on a full disk with a create pending in it: $out"
[ -e "$MNT/full/sub/pend" ] || fail "the open file in sub is not there on a full disk"
out=$(rmdir "$MNT/full/sub" 2>&1) && fail "rmdir of a directory holding an open, unstored file succeeded"
grep -q 'not empty' <<<"$out" || fail "rmdir of a directory holding an unstored file on a full disk: '$out', want ENOTEMPTY"
last=$(tail -n 1 "$ACK" | cut -d' ' -f1)
rm "$last" || fail "unlink on a full disk fails with a create pending in its directory"
sed -i '$d' "$ACK"
stat "$MNT/full/f0" >/dev/null || fail "stat fails on a full disk"
cat "$MNT/.quorumfs/status" >/dev/null || fail ".quorumfs/status unreadable on a full disk"
{ tail -c +$((log_at + 1)) "$T/daemon.out"; cat "$DATA/quorumfs.log" 2>/dev/null; } >"$T/log.full"
grep -Eqi 'ENOSPC|no space' "$T/log.full" ||
	{ tail -n 20 "$T/log.full" >&2; fail "the log does not say the disk is full (no ENOSPC / 'No space')"; }
grep -q 'pending create not written back.*passed over' "$T/log.full" ||
	{ tail -n 20 "$T/log.full" >&2; fail "no 'pending create not written back ... passed over' line: the full disk never refused the open files' write-back"; }

# Deleting files through the mount does not give space back in this
# version: the log keeps the history until it is archived, and the embedded
# default archives to DATA_DIR/archive on the same disk (README "Status").
# Space freed on the underlying filesystem must make writes work again.
problem=
python3 "$T/nospc.py" delete_half "$ACK" || fail "delete_half"
py verify "$ACK"
rm -f "$SMALL/ballast"
# (60 s at most: the background work that follows the freed space, the
# cell's disk checks, flushes and compactions, runs late on a loaded
# machine; 15 s was short for it)
if ! python3 "$T/nospc.py" write_again "$MNT/full" "$ACK" after-ballast 60; then
	problem="writes still fail after 112 MiB are freed on the underlying filesystem"
fi
py verify "$ACK"
# the open files close now that there is room: stored, with their bytes
touch "$T/release"
wait "$HOLDER" || fail "the files kept open over the full disk (above)"
cat "$ACK.held" >>"$ACK"
py verify "$ACK"

qfs_umount
mount_again -o "archive=file://$T/archive"
py verify "$ACK"
echo hello >"$MNT/full/post-remount" && [ "$(cat "$MNT/full/post-remount")" = hello ] ||
	fail "write after remount"
[ -z "$problem" ] || fail "$problem"
qfs_umount
note "PASS ($SECONDS s)"
exit 0
