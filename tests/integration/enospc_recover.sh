#!/bin/bash
# tests/integration/enospc_recover.sh - a full disk is survivable with
# everything on it (issue 10 item 2): the embedded default, three replicas
# and the local archive on one small tmpfs.
#
#  0. An idle log is given back: 3 MB written in one go and then nothing
#     (all in one segment whose last record is the last applied, which the
#     nodes keep): within 30 s the three WALs hold less than 1 MiB in all
#     (the archiver's no-op record lets them release it; without it a full
#     disk whose last records were deletes never got its WAL back).
#  1. df of the mount, before anything is written, must be within 1.5x of
#     what can really be written (statfs divides the free space, less the
#     reserve, by the copies each byte gets on that disk: doc/fs.md).
#  2. Files of 1 MiB of random data are written until one fails, with node
#     3 stopped (its replicas lag behind by everything written; not in
#     enospc_recover_copy.sh): the errno
#     must be ENOSPC.  The log says why.  Node 3 is started again and
#     catches up on the same disk: what it still had to write must not
#     take the reserve (the leader counts each member's backlog; without
#     that the df check below failed, and a follower that lagged by 10 MiB
#     under load once left the stores no room to give the deleted files'
#     space back, so writes failed for good).
#  3. Three files in four are deleted through the mount, one of them first
#     truncated to 0 (deletes and truncates to 0 must pass on the full disk:
#     they may use the reserve); then, waiting at most 120 s
#     for the archive to catch up and the WAL to be released (a loaded
#     machine is slow at it), files of 300 KiB are written again
#     successfully, with no remount.
#  4. Every file kept is intact; after a clean unmount and a remount too.
#  5. The archive took the segments by hard link (-o archive_link, the
#     default; none for want of space), or, run as enospc_recover_copy.sh (archive_link=off), by
#     copy: at least one copied segment object (the copy's hold and the
#     short-of-space links are then on the path).
# Skips (77) when tmpfs cannot be mounted.  Behaviour: quorumfs(8) "Full
# disk", doc/cell.md.

. "${QFS_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"

qfs_require python3 mount umount df
# QFS_ENOSPC_ARCHIVE_LINK=off (enospc_recover_copy.sh): the archive copies
# its segments (the copy's hold, and links when short of space) instead of
# the default hard links
LINKOPT=${QFS_ENOSPC_ARCHIVE_LINK:+,archive_link=$QFS_ENOSPC_ARCHIVE_LINK}
set -o pipefail
qfs_setup
echo "$QFS_PID" >"$T/daemon.pid"
watchdog 300
qfs_umount
qfs_small_tmpfs 320m
mount_again -o "seal_age=2s$LINKOPT"
mkdir "$MNT/idle" || fail "mkdir table"
head -c 3000000 /dev/urandom >"$T/idle" || fail "random data"
cp "$T/idle" "$MNT/idle/f" || fail "write 3 MB"
walsize() { du -scb "$DATA"/nodes/n*/wal/*/ | tail -n 1 | cut -f1; }
for _ in $(seq 60); do [ "$(walsize)" -lt 1048576 ] && break; sleep 0.5; done
[ "$(walsize)" -lt 1048576 ] || fail "an idle log is not released: the WALs hold $(walsize) bytes 30 s after a 3 MB write"
rm "$MNT/idle/f" && rmdir "$MNT/idle" || fail "drop the idle table"
mkdir "$MNT/full" || fail "mkdir table"
avail=$(df -B1 --output=avail "$MNT" | tail -n 1 | tr -d ' ')
note "tmpfs: $(df -h "$SMALL" | awk 'NR == 2 { print $4 " free" }'); df of the mount says $avail bytes available"

cat >"$T/fill.py" <<'EOF2'
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

cmd, d, acks = sys.argv[1], sys.argv[2], sys.argv[3]
if cmd == "fill":
    n = 0
    with open(acks, "w") as out:
        for i in range(2000):
            data = os.urandom(1 << 20)
            e = write_file(os.path.join(d, "f%04d" % i), data)
            if e:
                if e != errno.ENOSPC:
                    die("write on a full disk failed with %s, want ENOSPC" % errno.errorcode.get(e, e))
                break
            out.write("f%04d %s\n" % (i, hashlib.sha256(data).hexdigest()))
            n += 1
    if n == 2000:
        die("2 GiB written to a 320 MiB tmpfs without an error")
    print(n << 20)
elif cmd == "delete":
    keep = []
    for k, line in enumerate(open(acks).read().splitlines()):
        name = line.split()[0]
        if k % 4 == 3:
            keep.append(line)
            continue
        if k % 4 == 0:
            # emptying a file frees space too (`: > f`): it may use the reserve
            try:
                os.truncate(os.path.join(d, name), 0)
            except OSError as e:
                die("truncate to 0 on the full disk failed with %s" % errno.errorcode.get(e.errno, e.errno))
        os.unlink(os.path.join(d, name))   # must not fail on the full disk
    open(acks, "w").write("".join(x + "\n" for x in keep))
elif cmd == "again":
    deadline = time.time() + float(sys.argv[4])
    while True:
        ok = []
        e = 0
        for i in range(5):
            data = os.urandom(300 * 1024)
            e = write_file(os.path.join(d, "again%d" % i), data)
            if e:
                break
            ok.append("again%d %s\n" % (i, hashlib.sha256(data).hexdigest()))
        if not e:
            open(acks, "a").write("".join(ok))
            print("# writes work again")
            sys.exit(0)
        if time.time() > deadline:
            die("300 KiB writes still fail with %s %s s after deleting files" % (errno.errorcode.get(e, e), sys.argv[4]))
        time.sleep(1)
elif cmd == "verify":
    n = 0
    for line in open(acks):
        name, want = line.split()
        got = hashlib.sha256(open(os.path.join(d, name), "rb").read()).hexdigest()
        if got != want:
            die("%s changed" % name)
        n += 1
    print("# %d files intact" % n)
EOF2
# what holds the small disk's space, printed when a step fails
space() {
	df -B1 "$SMALL" | tail -n 1 >&2
	du -sb "$DATA"/* "$DATA"/*/* 2>/dev/null >&2
	grep -E 'stopped|restart|refused|compacted|vlog|flush' "$T/daemon.out" | tail -n 30 >&2
}
py() { python3 "$T/fill.py" "$@" || { sed 's/^/# at the full disk: /' "$T/space.full" >&2; echo "# now:" >&2; space; fail "step $1 failed (see above)"; }; }

# (enospc_recover_copy.sh keeps all three up: the backlog is the same
# whatever the archive does)
DOWN=
[ "${QFS_ENOSPC_ARCHIVE_LINK:-on}" = off ] || DOWN=3
[ -z "$DOWN" ] || echo stop $DOWN >"$MNT/.quorumfs/nodes" || fail "stop node $DOWN"
written=$(python3 "$T/fill.py" fill "$MNT/full" "$T/acks") || fail "fill failed (see above)"
[ -z "$DOWN" ] || echo start $DOWN >"$MNT/.quorumfs/nodes" || fail "start node $DOWN"
note "ENOSPC after $written bytes${DOWN:+ (node $DOWN down)}; df had said $avail"
space 2>"$T/space.full"
python3 - "$avail" "$written" <<'EOF2' || fail "df's available space is not within 1.5x of what could be written"
import sys
avail, written = int(sys.argv[1]), int(sys.argv[2])
r = avail / max(written, 1)
print("# df avail / written = %.2f" % r)
sys.exit(0 if 1 / 1.5 <= r <= 1.5 else 1)
EOF2
grep -Eqi 'No space left|ENOSPC' "$T/daemon.out" || fail "the log does not say the disk is full"
py verify "$MNT/full" "$T/acks"
py delete "$MNT/full" "$T/acks"
py again "$MNT/full" "$T/acks" 120
py verify "$MNT/full" "$T/acks"
qfs_umount
mount_again -o "seal_age=2s$LINKOPT"
py verify "$MNT/full" "$T/acks"
qfs_umount
# the path the archive took: links by default, copies with archive_link=off
# (and links where a copy would have eaten the reserve)
nlink=$(find "$DATA/archive" -name '*.seg.obj.*.data' | wc -l)
ncopy=$(find "$DATA/archive" -name '*.seg.obj' -size +32c | wc -l)
nshort=$(grep -c 'links instead of copying' "$T/daemon.out")
note "archive: $nlink segments linked, $ncopy copied; $nshort short-of-space links"
if [ "${QFS_ENOSPC_ARCHIVE_LINK:-on}" = off ]; then
	[ "$ncopy" -gt 0 ] || fail "archive_link=off: no segment was copied into the archive"
else
	# linking by default, not because a copy would have eaten the reserve
	[ "$nlink" -gt 0 ] && [ "$nshort" = 0 ] ||
		fail "the archive did not link by default ($nlink linked, $nshort short-of-space links)"
fi
note "PASS ($SECONDS s)"
exit 0
