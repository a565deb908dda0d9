#!/bin/bash
# tests/integration/deadline.sh - one time bound per FUSE call (doc/cell.md
# "Requests"): with two of three nodes down, a call fails with ETIMEDOUT
# after quorum_timeout, however many internal lookups it makes.
#
# Mount with -o quorum_timeout=5, make table t with a file, a directory and
# a subdirectory, remount (nothing in the kernel's caches), stop nodes 2 and
# 3 through .quorumfs/nodes, then cat, ls -l, stat and mkdir in the table:
# each must fail with ETIMEDOUT within quorum_timeout + 3 s (before, each
# internal lookup waited a full timeout: stat and ls took 2 x 5 s).  The
# bound is generous for a loaded machine; it guards the shared budget, not
# speed.  Then the nodes start again and everything works.

. "${QFS_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"

qfs_require python3 timeout
QT=5
qfs_setup -o quorum_timeout=$QT
echo "$QFS_PID" >"$T/daemon.pid"
watchdog 150

mkdir "$MNT/t" "$MNT/t/d" "$MNT/t/d/sub" || fail "mkdir"
head -c 5000 /dev/urandom >"$MNT/t/f" || fail "write t/f"
cp "$MNT/t/f" "$T/f.copy"
qfs_umount
mount_again -o quorum_timeout=$QT
qfs_node_ctl "stop 2" || fail "stop 2"
qfs_node_ctl "stop 3" || fail "stop 3"

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
B=${QFS_DEADLINE_BOUND:-$((QT + 3))}
for c in "cat $MNT/t/f" "ls $MNT/t/d" "stat $MNT/t/d/sub" "mkdir $MNT/t/d/new"; do
	# shellcheck disable=SC2086
	timeout -k 3 60 python3 "$T/call.py" $c "$B" || fail "'$c' with two nodes down (see above)"
done
qfs_node_ctl "start 2" || fail "start 2"
qfs_node_ctl "start 3" || fail "start 3"
cmp "$MNT/t/f" "$T/f.copy" || fail "t/f differs after the nodes came back"
mkdir "$MNT/t/d/new" || fail "mkdir after the nodes came back"
stat "$MNT/t/d/sub" >/dev/null || fail "stat after the nodes came back"
qfs_umount
note "PASS ($SECONDS s)"
exit 0
