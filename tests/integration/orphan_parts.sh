#!/bin/bash
# tests/integration/orphan_parts.sh - the last name of an open file removed
# when its orphan entry (pk 0, doc/fs.md "Open files without a name") and
# its inode live in two partitions (doc/partitions.md): issue 12 item 2.
#
# A table is split into several partitions by size (-o split_bytes), so
# that most inodes are not in the partition of pk 0.  Then, on real mounts:
#  1. 40 files are opened, written, and their only name unlinked while
#     open: every unlink succeeds (it failed with EXDEV), each handle still
#     reads what was written and writes more, fstat says nlink 0, the names
#     are gone from readdir; a rename over an open file (its last name) too;
#  2. a file with two names, open: unlink of one keeps the inode (nlink 1,
#     its other name reads it), unlink of the last one works as above;
#  3. after the last close the inodes, chunks and orphan entries are gone
#     (the items of the table's partitions, counted by .quorumfs/partitions);
#  4. the same with the daemon killed (kill -9) while the unlinked files are
#     open: the next mount's sweep destroys them, nothing else is lost;
#  5. the cross-partition txns were counted (.quorumfs/stats xacts).

. "${QFS_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"

qfs_require python3 sha256sum
set -o pipefail
qfs_setup -o split_bytes=0
echo "$QFS_PID" >"$T/daemon.pid"
watchdog "${QFS_ORPHAN_TIMEOUT:-240}"
export LC_ALL=C

cat >"$T/op.py" <<'EOF'
# helpers for orphan_parts.sh: python3 op.py CMD ROOT [ARGS]
import hashlib, json, os, sys, time

def die(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)

def used(root):
    """items of table t (a scan of each partition: exact): statfs cannot
    count the inodes of a split table"""
    n = 0
    with open(os.path.join(os.path.dirname(root), ".quorumfs", "partitions")) as fh:
        for line in fh:
            f = line.split()
            if f[:2] == ["table", "t"]:
                n += int(f[f.index("items") + 1])
    return n

def fill(root, man):
    """8 directories of 30 random files each (the split's bulk)."""
    files = {}
    for d in range(8):
        os.mkdir(os.path.join(root, "d%d" % d))
        for f in range(30):
            p = os.path.join(root, "d%d" % d, "f%d" % f)
            data = os.urandom(2000 + (d * 30 + f) * 37 % 9000)
            with open(p, "wb") as fh:
                fh.write(data)
            files[p] = hashlib.sha256(data).hexdigest()
    json.dump(files, open(man, "w"))

def verify(root, man):
    files = json.load(open(man))
    for p, h in files.items():
        with open(p, "rb") as fh:
            if hashlib.sha256(fh.read()).hexdigest() != h:
                die("%s: content differs" % p)
    for d in range(8):
        dd = os.path.join(root, "d%d" % d)
        want = sorted(os.path.basename(p) for p in files if os.path.dirname(p) == dd)
        if sorted(os.listdir(dd)) != want:
            die("readdir of %s differs from the manifest" % dd)

def open_unlink(root, n, tag):
    """n files opened, written, unlinked (and one renamed over) while open;
    returns the open handles with their expected contents."""
    o = os.path.join(root, "o" + tag)
    os.mkdir(o)
    hs = []
    for i in range(n):
        p = os.path.join(o, "u%d" % i)
        fd = os.open(p, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        data = os.urandom(100 + i * 997 % 200000)  # inline and chunked files
        os.write(fd, data)
        os.fsync(fd)
        hs.append((fd, p, data))
    for fd, p, data in hs[:-1]:
        try:
            os.unlink(p)
        except OSError as e:
            die("unlink of the open file %s: %s" % (p, e))
    # the last one: replaced by a rename (its last name goes the same way)
    fd, p, data = hs[-1]
    q = p + ".new"
    with open(q, "wb") as fh:
        fh.write(b"replacement")
    try:
        os.rename(q, p)
    except OSError as e:
        die("rename over the open file %s: %s" % (p, e))
    if os.listdir(o) != [os.path.basename(p)]:
        die("names left in %s: %s" % (o, sorted(os.listdir(o))[:5]))
    with open(p, "rb") as fh:
        if fh.read() != b"replacement":
            die("the rename's target does not hold the new file")
    for fd, p, data in hs:
        if os.fstat(fd).st_nlink != 0:
            die("%s: nlink %d after its last name went" % (p, os.fstat(fd).st_nlink))
        if os.pread(fd, len(data) + 10, 0) != data:
            die("%s: the open handle no longer reads what was written" % p)
    return hs

def use_and_close(hs):
    for fd, p, data in hs:
        more = os.urandom(3000)
        os.pwrite(fd, more, len(data))
        os.fsync(fd)
        if os.pread(fd, len(data) + len(more), 0) != data + more:
            die("%s: the open handle does not read its own write after the unlink" % p)
        os.close(fd)

def links(root):
    """two names of one open file: dropping one keeps it, the last one works."""
    a, b = os.path.join(root, "d1", "la"), os.path.join(root, "d6", "lb")
    data = os.urandom(5000)
    with open(a, "wb") as fh:
        fh.write(data)
    os.link(a, b)
    fd = os.open(a, os.O_RDWR)
    os.unlink(a)
    if os.fstat(fd).st_nlink != 1:
        die("nlink %d after one of two names went" % os.fstat(fd).st_nlink)
    with open(b, "rb") as fh:
        if fh.read() != data:
            die("the other name lost the content")
    os.unlink(b)
    if os.fstat(fd).st_nlink != 0 or os.pread(fd, 6000, 0) != data:
        die("the open file after its last name went")
    os.close(fd)
    for p in (a, b):
        if os.path.lexists(p):
            die("%s still exists" % p)

cmd, root = sys.argv[1], sys.argv[2]
if cmd == "fill":
    fill(root, sys.argv[3])
elif cmd == "verify":
    verify(root, sys.argv[3])
elif cmd == "used":
    print(used(root))
elif cmd == "cycle":  # open, unlink, use, close; inode count back where it was
    before = used(root)
    hs = open_unlink(root, int(sys.argv[3]), sys.argv[4])
    use_and_close(hs)
    links(root)
    after = None
    for _ in range(100):  # RELEASE reaches the daemon after close returns
        after = used(root)
        if after == before + 4:  # the new directory and the rename's file (dentry, inode)
            break
        time.sleep(0.1)
    if after != before + 4:
        die("items of t: %d before, %d after the last close (want %d)" % (before, after, before + 4))
elif cmd == "hold":  # open and unlink, then wait to be killed
    hs = open_unlink(root, int(sys.argv[3]), sys.argv[4])
    open(sys.argv[5], "w").close()
    time.sleep(600)
EOF

OP="python3 $T/op.py"
MAN=$T/manifest.json
nparts() { grep -c '^table t partition ' "$MNT/.quorumfs/partitions"; }
xacts() { awk '$1 == "meta" { for (i = 2; i < NF; i++) if ($i == "xacts") print $(i + 1) }' "$MNT/.quorumfs/stats"; }

mkdir "$MNT/t" || fail "mkdir t"
$OP fill "$MNT/t" "$MAN" || fail "filling the table"
qfs_umount
mount_again -o split_bytes=64K,split_check=200ms
for _ in $(seq 150); do
	[ "$(nparts)" -ge 4 ] && break
	cat "$MNT"/t/d*/f1* >/dev/null  # traffic for the split checks
	sleep 0.2
done
P=$(nparts)
[ "$P" -ge 4 ] || fail "only $P partitions with split_bytes=64K"
qfs_umount
mount_again -o split_bytes=0 # no split meanwhile: the partitions stay put
note "table t in $P partitions"

# --- 1-3. open, unlink, use, close
x0=$(xacts)
$OP cycle "$MNT/t" 40 a || fail "unlink of open files across partitions"
x1=$(xacts)
[ "$x1" -gt "$x0" ] || fail "no cross-partition txn counted ($x0 -> $x1)"
$OP verify "$MNT/t" "$MAN" || fail "the other files after the unlinks"
note "40 open files unlinked across $P partitions ($((x1 - x0)) cross-partition txns)"

# --- 4. kill -9 while unlinked files are open: the next mount sweeps them
u0=$($OP used "$MNT/t") || fail "items"
rm -f "$T/held"
$OP hold "$MNT/t" 20 b "$T/held" &
HOLDER=$!
for _ in $(seq 300); do
	[ -e "$T/held" ] && break
	kill -0 $HOLDER 2>/dev/null || fail "the holder failed"
	sleep 0.1
done
[ -e "$T/held" ] || fail "the holder did not get its files unlinked"
qfs_kill9
kill $HOLDER 2>/dev/null
wait $HOLDER 2>/dev/null
mount_again -o split_bytes=0
for _ in $(seq 50); do
	u1=$($OP used "$MNT/t") || fail "items after the kill"
	[ "$u1" -eq $((u0 + 4)) ] && break
	sleep 0.1
done
# the directory ob and the rename's file are the only new items (dentry, inode)
[ "$u1" -eq $((u0 + 4)) ] || fail "items of t: $u0 before, $u1 after the kill -9 and the sweep (want $((u0 + 4)))"
[ "$(ls "$MNT/t/ob")" = "u19" ] || fail "names left in ob: $(ls "$MNT/t/ob" | head)"
$OP verify "$MNT/t" "$MAN" || fail "the other files after the kill -9"
note "kill -9 with 20 unlinked files open: swept at the next mount"
qfs_umount
exit 0
