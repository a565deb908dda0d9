#!/bin/bash
# tests/integration/deadline.sh - one time bound per FUSE call (doc/cell.md
# "Requests"): with two of three nodes down, a call fails with ETIMEDOUT
# after quorum_timeout, however many internal lookups it makes.
#
# Mount with -o quorum_timeout=5, make table t with a file, a directory and
# a subdirectory, remount (nothing in the kernel's caches), stop nodes 2 and
# 3 through .quorumfs/nodes: cat, ls -l, stat and mkdir in the table must
# each fail with ETIMEDOUT within quorum_timeout + 3 s (before, each
# internal lookup waited a full timeout: stat and ls took 2 x 5 s).  The
# bound is generous for a loaded machine; it guards the shared budget, not
# speed.  Then the nodes start again, the file is opened, the two nodes
# stopped again: a read and a write+fsync through the open descriptor must
# fail with ETIMEDOUT within quorum_timeout + 3 s too (the kernel makes two
# FUSE calls for each, back to back: a read-ahead read then the read; a
# security.capability getxattr then the write; before, each waited a whole
# timeout).  The nodes start again and everything works.

. "${QFS_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"

qfs_require python3 timeout
QT=5
qfs_setup -o quorum_timeout=$QT
echo "$QFS_PID" >"$T/daemon.pid"
watchdog 150

mkdir "$MNT/t" "$MNT/t/d" "$MNT/t/d/sub" || fail "mkdir"
head -c 5000 /dev/urandom >"$MNT/t/f" || fail "write t/f"
head -c 5000 /dev/urandom >"$MNT/t/g" || fail "write t/g"
cp "$MNT/t/f" "$T/f.copy"
qfs_umount
mount_again -o quorum_timeout=$QT
# stop_two: nodes 2 and 3 stopped, then one read lease waited out.  A
# leader elected or renewed just before the stops still holds its lease
# for up to lease_ms (2 s, doc/paxos.md) and serves reads within it,
# rightly (a CI run's cat right after a remount whose election ended 50 ms
# before the stops read the file); the calls below are meant for a mount
# with neither a quorum nor a lease.
stop_two() {
	qfs_node_ctl "stop 2" || fail "stop 2"
	qfs_node_ctl "stop 3" || fail "stop 3"
	sleep 2.5
}
stop_two

B=${QFS_DEADLINE_BOUND:-$((QT + 3))}
cat >"$T/call.py" <<'EOF2'
# python3 call.py WHAT PATH BOUND_S: run one call, which must fail with
# ETIMEDOUT in under BOUND_S seconds; prints the time it took.
import errno, os, stat, subprocess, sys, time
what, path, bound = sys.argv[1], sys.argv[2], float(sys.argv[3])
t0 = time.monotonic()
err = None
try:
    if what == "cat":
        with open(path, "rb") as f:
            f.read()
    elif what == "ls":
        for n in os.listdir(path):
            os.lstat(os.path.join(path, n))
    elif what == "stat":
        os.stat(path)
    elif what == "mkdir":
        os.mkdir(path)
except OSError as e:
    err = e.errno
dt = time.monotonic() - t0
print(f"# {what} {path}: {errno.errorcode.get(err, err)} after {dt:.2f} s")
if err != errno.ETIMEDOUT:
    print(f"FAIL: {what} {path}: {errno.errorcode.get(err, err)}, want ETIMEDOUT", file=sys.stderr)
    sys.exit(1)
if dt >= bound:
    print(f"FAIL: {what} {path} took {dt:.2f} s, want < {bound} s (quorum_timeout + 3 s)", file=sys.stderr)
    sys.exit(1)
EOF2
for c in "cat $MNT/t/f" "ls $MNT/t/d" "stat $MNT/t/d/sub" "mkdir $MNT/t/d/new"; do
	# shellcheck disable=SC2086
	timeout -k 3 60 python3 "$T/call.py" $c "$B" || fail "'$c' with two nodes down (see above)"
	sleep 1.5 # past the 1 s after a timeout in which waits are cut short
done
qfs_node_ctl "start 2" || fail "start 2"
qfs_node_ctl "start 3" || fail "start 3"
for _ in $(seq 60); do stat "$MNT/t/f" >/dev/null 2>&1 && break; sleep 0.5; done
cmp "$MNT/t/f" "$T/f.copy" || fail "t/f differs after the nodes came back"
# descriptors opened while the quorum is there: a read and a write+fsync
# through them after it is gone are single FUSE calls too
cat >"$T/fd.py" <<'EOF2'
# python3 fd.py PATH READY GO BOUND_S: open PATH, touch READY, wait for GO,
# then pread and pwrite+fsync, each must fail with ETIMEDOUT in < BOUND_S.
import errno, os, sys, time
path, ready, go, bound = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
fd = os.open(path, os.O_RDWR)
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.05)
bad = 0
for what, fn in (("read", lambda: os.pread(fd, 4096, 0)),
                 ("write+fsync", lambda: (os.pwrite(fd, b"x" * 100, 100), os.fsync(fd)))):
    t0 = time.monotonic()
    err = None
    try:
        fn()
    except OSError as e:
        err = e.errno
    dt = time.monotonic() - t0
    time.sleep(1.5)  # past the 1 s after a timeout in which waits are cut short
    print(f"# {what} on an open descriptor: {errno.errorcode.get(err, err)} after {dt:.2f} s")
    if err != errno.ETIMEDOUT or dt >= bound:
        print(f"FAIL: {what} on an open descriptor: {errno.errorcode.get(err, err)} after {dt:.2f} s,"
              f" want ETIMEDOUT in < {bound} s", file=sys.stderr)
        bad = 1
try:
    os.close(fd)
except OSError:
    pass
sys.exit(bad)
EOF2
# the kernel makes two FUSE calls here (a read-ahead read then the read; a
# security.capability getxattr then the write), back to back: the second
# one, right after a timeout of the same group, waits only 0.1 s
timeout -k 3 90 python3 "$T/fd.py" "$MNT/t/g" "$T/ready" "$T/go" "$B" &
fdpid=$!
for _ in $(seq 100); do [ -e "$T/ready" ] && break; sleep 0.1; done
[ -e "$T/ready" ] || fail "fd.py did not open the file"
stop_two
touch "$T/go"
wait $fdpid || fail "a call on an open descriptor with two nodes down (see above)"
qfs_node_ctl "start 2" || fail "start 2"
qfs_node_ctl "start 3" || fail "start 3"
for _ in $(seq 60); do stat "$MNT/t/d/sub" >/dev/null 2>&1 && break; sleep 0.5; done
mkdir "$MNT/t/d/new" || fail "mkdir after the nodes came back"
stat "$MNT/t/d/sub" >/dev/null || fail "stat after the nodes came back"
qfs_umount
note "PASS ($SECONDS s)"
exit 0
