#!/bin/bash
# tests/integration/fscache.sh - attribute changes that join the write-back
# at close, and the kernel caches (long entry/attr timeouts, negative
# entries, readdirplus, the "no security xattr" shortcut).  Doc: doc/fs.md
# "One round per file" and "Kernel caches".
#
#  1. chown/chmod/utimens/ftruncate and an ACL-equivalent chmod between
#     open and close survive kill -9 once close returned; killed before
#     close, the file is as it was before the open (absent: a create is
#     stored with its first write-back; or the old bytes of an O_TRUNC
#     rewrite); fsync makes all of it durable.
#  2. a second process sees a file created and not yet closed by another
#     (stat, ls, open + read) and its data once closed.
#  3. O_EXCL: two processes race to create the same 200 names; each name
#     has exactly one winner.
#  4. a cached negative entry does not hide what is created later: a table
#     made by mkdir at the root and a table restored from the archive.
#  5. cp -a and rsync -a of a tree; a second rsync -a --itemize-changes
#     lists nothing; every dentry the kernel got through readdirplus is
#     forgotten exactly (no "forget beyond lookup count" in the log).
#  6. a security.* xattr set after writes (which cached "none") is seen.
#  7. a chmod with no open handle is durable at return (kill -9 after it).
#  8. a warm walk asks the daemon nothing: after one find -ls / ls -lR /
#     du -s of a small tree (symlinks too), a second sends no OPENDIR,
#     READDIR(PLUS), READLINK, LOOKUP, GETATTR nor xattr request
#     (.quorumfs/stats op counts unchanged but for reading the stats file);
#     and what changes after it is still seen: a name created (pending,
#     still open), renamed and unlinked in a listed directory, a symlink
#     replaced, a table made at the listed root.

. "${QFS_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"
qfs_require python3 rsync setfattr getfattr
MOPTS=-o\ seal_age=1s,seal_size=64K,archive_interval=200ms
qfs_setup $MOPTS
echo "$QFS_PID" >"$T/daemon.pid"
watchdog 110
mkdir "$MNT/t" || fail "mkdir table"
A=$MNT/t

# --- 1. attributes between open and close, kill -9 after / before close
python3 - "$A" "$T/state" <<'PY' || fail "attributes between open and close"
import os, sys, json
d, out = sys.argv[1], sys.argv[2]
data = os.urandom(200000)
st = {}
# a: create, write, ftruncate, fchown, fchmod, futimens, close
fd = os.open(f"{d}/a", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
os.write(fd, data)
os.ftruncate(fd, 150001)
os.fchown(fd, 1234, 5678)
os.fchmod(fd, 0o640)
os.utime(fd, ns=(1_600_000_000_123_456_789, 1_500_000_000_987_654_321))
os.close(fd)
st["a"] = data[:150001].hex()
# b: small file, permissions set as cp -a does (an ACL equal to the mode)
fd = os.open(f"{d}/b", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
os.write(fd, b"tiny")
acl = bytes.fromhex("02000000") + bytes.fromhex("01000600ffffffff") + bytes.fromhex("04000400ffffffff") + \
      bytes.fromhex("20000400ffffffff")
os.setxattr(fd, "system.posix_acl_access", acl)
os.close(fd)
m = os.stat(f"{d}/b").st_mode & 0o7777
assert m == 0o644, oct(m)
assert "system.posix_acl_access" not in os.listxattr(f"{d}/b")
json.dump(st, open(out, "w"))
PY
# c, f and e are held open across the kill by a second writer: c fsync'd;
# f created, written, chmod'ed; e, an existing file, rewritten with O_TRUNC
printf 'old bytes of e\n' >"$A/e"
mkdir "$A/sub"
chmod 600 "$A/e"
python3 - "$A" "$T/held" <<'PY' &
import os, sys, time
d, flag = sys.argv[1], sys.argv[2]
# c: fsync makes it all durable while still open (kept open across the kill)
fc = os.open(f"{d}/c", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
os.write(fc, b"c" * 5000)
os.fchmod(fc, 0o604)
os.utime(fc, ns=(1, 1_400_000_000_000_000_007))
os.fsync(fc)
fd = os.open(f"{d}/f", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
os.write(fd, os.urandom(70000))
os.fchmod(fd, 0o666)
# h: created, written, then its directory fsync'd: the name is durable
# (in another directory: fsyncdir stores every pending create of its own)
fh = os.open(f"{d}/sub/h", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
os.write(fh, b"h" * 100)
dfd = os.open(f"{d}/sub", os.O_RDONLY | os.O_DIRECTORY)
os.fsync(dfd)
fd2 = os.open(f"{d}/e", os.O_WRONLY | os.O_TRUNC)
os.write(fd2, b"new bytes, never closed\n")
os.fchmod(fd2, 0o644)
open(flag, "w").close()
time.sleep(60)
PY
HELD=$!
for _ in $(seq 100); do [ -e "$T/held" ] && break; sleep 0.1; done
[ -e "$T/held" ] || fail "writer did not start"
# seen inside the mount meanwhile (pending state, consistent)
[ "$(stat -c %a "$A/f")" = 666 ] || fail "open file's chmod not visible: $(stat -c %a "$A/f")"
[ "$(stat -c %s "$A/f")" = 70000 ] || fail "open file's size not visible: $(stat -c %s "$A/f")"
qfs_kill9
kill "$HELD" 2>/dev/null; wait "$HELD" 2>/dev/null
mount_again $MOPTS
python3 - "$A" "$T/state" <<'PY' || fail "state after kill -9"
import os, sys, json
d, st = sys.argv[1], json.load(open(sys.argv[2]))
s = os.stat(f"{d}/a")
assert (s.st_size, s.st_uid, s.st_gid, s.st_mode & 0o7777) == (150001, 1234, 5678, 0o640), s
assert (s.st_atime_ns, s.st_mtime_ns) == (1_600_000_000_123_456_789, 1_500_000_000_987_654_321), s
assert open(f"{d}/a", "rb").read().hex() == st["a"], "a: bytes"
s = os.stat(f"{d}/b")
assert s.st_mode & 0o7777 == 0o644 and open(f"{d}/b", "rb").read() == b"tiny", s
assert "system.posix_acl_access" not in os.listxattr(f"{d}/b")
s = os.stat(f"{d}/c")
assert (s.st_size, s.st_mode & 0o7777, s.st_mtime_ns) == (5000, 0o604, 1_400_000_000_000_000_007), s
assert open(f"{d}/c", "rb").read() == b"c" * 5000
# killed before close: a new file was never stored (its create waits for
# the close); e is as before the open
assert not os.path.exists(f"{d}/f"), "f: a file never closed survived the crash"
assert os.path.exists(f"{d}/sub/h"), "h: fsync of its directory did not store a new file"
s = os.stat(f"{d}/e")
assert s.st_mode & 0o7777 == 0o600, ("e", s)
assert open(f"{d}/e", "rb").read() == b"old bytes of e\n", "e lost its old bytes"
PY

# --- 2. a file created and not yet closed, seen by another process.
# The other process is started before the file is created: a process
# forked while the file is open would close its copy of the descriptor
# at exec, and that close (FUSE flush) writes the file back.
cat >"$T/other.py" <<'PY'
import os, subprocess
class Other:
    """A shell started before anything is open: runs one command at a time."""
    def __init__(self):
        self.base = os.path.join(os.path.dirname(os.path.abspath(__file__)), "other.%d" % id(self))
        self.p = subprocess.Popen(["sh", "-c", 'while read -r c; do sh -c "$c" </dev/null >"$0.out" 2>&1; echo $?; done',
                                   self.base], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.out = self.base + ".out"
    def run(self, cmd):
        self.p.stdin.write(cmd.replace("\n", " ") + "\n")
        self.p.stdin.flush()
        rc = int(self.p.stdout.readline())
        with open(self.out) as f:
            return rc, f.read()
    def close(self):
        self.p.stdin.close()
        self.p.wait()
PY
python3 - "$A" "$T" <<'PY' || fail "second process and an open new file"
import os, sys
sys.path.insert(0, sys.argv[2])
from other import Other
d, t = sys.argv[1], sys.argv[2]
o = Other()
data = os.urandom(9000)
with open(f"{t}/g.want", "wb") as f:
    f.write(data)
fd = os.open(f"{d}/g", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
os.write(fd, data)
rc, out = o.run(f'stat -c %s "{d}/g" && ls "{d}" | grep -qx g && cmp "{t}/g.want" "{d}/g"')
assert rc == 0 and out.strip() == "9000", (rc, out)
os.close(fd)
assert o.run(f'cmp "{t}/g.want" "{d}/g"')[0] == 0
o.close()
PY

# a pending file renamed and a directory holding one removed by another process
mkdir -p "$A/mv/sub"
python3 - "$A/mv" "$T" <<'PY' || fail "rename / rm -rf of pending files"
import os, sys
sys.path.insert(0, sys.argv[2])
from other import Other
d = sys.argv[1]
o = Other()
a, b = os.urandom(3000), os.urandom(5000)
fd = os.open(f"{d}/p", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
os.write(fd, a)
assert o.run(f'mv "{d}/p" "{d}/q"')[0] == 0, "mv of a pending file"
os.write(fd, b)
os.close(fd)
assert open(f"{d}/q", "rb").read() == a + b and not os.path.exists(f"{d}/p")
fr = os.open(f"{d}/sub/r", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
os.write(fr, a)
assert o.run(f'rm -rf "{d}/sub"')[0] == 0, "rm -rf of a dir with a pending file"
assert not os.path.exists(f"{d}/sub")
os.write(fr, b)  # still writable, unlinked
os.close(fr)
o.close()
PY

# a table renamed over another one that holds only a file still open from
# its create: ENOTEMPTY, as for a directory (no fork while the file is
# open: a child's close-on-exec of its copy would write it back)
python3 - "$MNT" <<'PY' || fail "table renamed over one holding a pending file"
import errno, os, sys
m = sys.argv[1]
os.mkdir(f"{m}/fc_t1")
os.mkdir(f"{m}/fc_t2")
data = os.urandom(4000)
fd = os.open(f"{m}/fc_t2/f", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
os.write(fd, data)
try:
    os.rename(f"{m}/fc_t1", f"{m}/fc_t2")
    sys.exit("rename of a table over one holding a file being created succeeded")
except OSError as e:
    assert e.errno == errno.ENOTEMPTY, e
finally:
    os.close(fd)
assert open(f"{m}/fc_t2/f", "rb").read() == data, "the file after close"
PY

# --- 3. O_EXCL races between two processes
mkdir "$A/x"
python3 - "$A/x" <<'PY' || fail "O_EXCL race"
import os, sys, multiprocessing as mp
d = sys.argv[1]
def racer(tag, bar, q):
    won = []
    bar.wait()
    for i in range(200):
        try:
            fd = os.open(f"{d}/n{i}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            continue
        os.write(fd, tag.encode())
        os.close(fd)
        won.append(i)
    q.put((tag, won))
bar, q = mp.Barrier(2), mp.Queue()
ps = [mp.Process(target=racer, args=(t, bar, q)) for t in ("A", "B")]
for p in ps: p.start()
res = dict(q.get() for _ in ps)
for p in ps: p.join()
a, b = set(res["A"]), set(res["B"])
assert not (a & b) and len(a | b) == 200, (len(a), len(b), len(a & b))
for i in range(200):
    want = "A" if i in a else "B"
    assert open(f"{d}/n{i}").read() == want, i
PY

# --- 4. negative entries: a table created by mkdir, one restored from the archive
stat "$MNT/newt" >/dev/null 2>&1 && fail "newt exists before mkdir"
stat "$MNT/newt" >/dev/null 2>&1   # twice: the kernel now holds a negative entry
mkdir "$MNT/newt" && echo hello >"$MNT/newt/h" || fail "mkdir of a table"
[ "$(cat "$MNT/newt/h" 2>/dev/null)" = hello ] || fail "negative entry hid the new table"
stat "$MNT/rest" >/dev/null 2>&1 && fail "rest exists before the restore"
stat "$MNT/rest/a" >/dev/null 2>&1
for _ in $(seq 150); do
	awk '/^partition/ { p++; if ($4 != $6 || $8 != 0 || $16 != "ok") bad = 1 } END { exit (bad || p < 1) }' \
		"$MNT/.quorumfs/archive" 2>/dev/null && break
	sleep 0.2
done
"$QFS_BIN" restore --data "$DATA" --table t --to "$MNT/rest" >"$T/restore.out" 2>&1 ||
	{ cat "$T/restore.out" >&2; fail "restore into the mount"; }
cmp -s "$A/a" "$MNT/rest/a" || fail "restored table hidden or wrong: $(ls "$MNT/rest" 2>&1 | head -3)"

# --- 5. cp -a / rsync -a of a tree, second pass lists nothing, exact forgets
SRC=$T/src
mkdir -p "$SRC/d1/d2" "$SRC/e"
for i in $(seq 60); do head -c $((RANDOM * 3)) /dev/urandom >"$SRC/d1/f$i"; done
for i in $(seq 20); do head -c $((RANDOM % 5000 + 1)) /dev/urandom >"$SRC/d1/d2/g$i"; chmod 640 "$SRC/d1/d2/g$i"; done
chown 4321:99 "$SRC/d1/f1" "$SRC/d1/d2/g2"
ln -s d1/f2 "$SRC/link"
touch -d '2001-02-03 04:05:06.123456789' "$SRC/d1/f3" "$SRC/e"
cp -a "$SRC" "$A/cp" || fail "cp -a"
rsync -a "$SRC/" "$A/rs/" || fail "rsync -a"
for dst in cp rs; do
	out=$(rsync -a --itemize-changes "$SRC/" "$A/$dst/")
	[ -z "$out" ] || fail "second rsync pass into $dst is not empty: $(echo "$out" | head -5)"
done
ls -lR "$A" >/dev/null && find "$A" -ls >/dev/null
echo 3 >/proc/sys/vm/drop_caches 2>/dev/null
sync; sleep 0.5
ls -lR "$A" >/dev/null
echo 3 >/proc/sys/vm/drop_caches 2>/dev/null
sleep 0.5
grep -q "forget beyond lookup count" "$T/daemon.out" "$DATA/quorumfs.log" 2>/dev/null &&
	fail "a forget exceeded the lookup count (readdirplus counting)"
out=$(rsync -a --itemize-changes "$SRC/" "$A/cp/")
[ -z "$out" ] || fail "rsync pass after drop_caches is not empty: $(echo "$out" | head -5)"

# --- 6. security xattr cached as absent, then set
head -c 10000 /dev/urandom >"$A/s"
echo more >>"$A/s"
setfattr -n security.qfs -v yes "$A/s" || fail "setfattr security"
[ "$(getfattr --only-values -n security.qfs "$A/s" 2>/dev/null)" = yes ] || fail "security xattr hidden by the cache"
setfattr -x security.qfs "$A/s" || fail "setfattr -x"
getfattr -n security.qfs "$A/s" >/dev/null 2>&1 && fail "removed security xattr still seen"

# --- 7. chmod/chown/touch with no open handle: durable at return
chmod 612 "$A/g" && chown 77:88 "$A/g" && touch -d '2002-03-04 05:06:07.5' "$A/g" || fail "setattr from a shell"
qfs_kill9
mount_again $MOPTS
[ "$(stat -c '%a %u %g %Y' "$A/g")" = "612 77 88 $(date -d '2002-03-04 05:06:07.5' +%s)" ] ||
	fail "a shell setattr was lost: $(stat -c '%a %u %g %Y' "$A/g")"

# --- 8. a warm walk asks the daemon nothing; later changes are still seen
W=$A/ww
mkdir -p "$W/d1/d2" "$W/e" || fail "mkdir ww"
for i in $(seq 30); do head -c $((RANDOM % 3000 + 1)) /dev/urandom >"$W/d1/f$i"; done
for i in $(seq 10); do head -c 100 /dev/urandom >"$W/d1/d2/g$i"; done
ln -s d1/f1 "$W/l1" && ln -s ../d1/d2/g1 "$W/e/l2" || fail "symlinks"
# ops NAME...: "name count" of the FUSE ops of .quorumfs/stats
ops() { awk '$1 == "op" { print $2, $4 }' "$MNT/.quorumfs/stats"; }
walk() { find "$W" -ls && ls -lR "$W" && du -s "$W" && readlink "$W/l1" "$W/e/l2"; }
# two walks: the first listing invalidates the directories' atime, so the
# next stat of each sends a GETATTR, which makes the kernel forget their
# cached ACLs, asked again (getxattr) by the next ls -l
walk >/dev/null && walk >/dev/null || fail "first walks"
ops >"$T/ops0"; ops >"$T/ops1"             # what reading the stats file itself costs
walk >"$T/walk2" || fail "warm walk"
ops >"$T/ops2"
# allowed: ls's one getxattr of security.selinux (EOPNOTSUPP, then no more
# on this device: doc/fs.md "Kernel caches")
bad=$(join "$T/ops0" "$T/ops1" | join - "$T/ops2" | awk '
	$1 ~ /^(lookup|getattr|opendir|readdir|readlink|getxattr|listxattr)$/ &&
	$4 - $3 - ($3 - $2) > ($1 == "getxattr") {
		printf "%s +%d ", $1, $4 - $3 - ($3 - $2) }')
[ -z "$bad" ] || fail "a warm walk reached the daemon: $bad"
grep -q ' d1/f1$' "$T/walk2" || fail "warm walk output lacks the symlink target"
# changes after the walk, each seen by the next listing
python3 - "$W" <<'PY' || fail "changes after a warm walk not seen"
import os, subprocess, sys
w = sys.argv[1]
ls = lambda d: set(os.listdir(d))
fd = os.open(f"{w}/d1/new", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)  # pending: not closed
os.write(fd, b"x")
out = subprocess.run(["ls", f"{w}/d1"], capture_output=True, text=True, check=True).stdout.split()
assert "new" in out, "a pending create missing from another process's listing"
os.close(fd)
os.rename(f"{w}/d1/f2", f"{w}/e/f2m")
assert "f2" not in ls(f"{w}/d1") and "f2m" in ls(f"{w}/e"), "rename not seen"
os.unlink(f"{w}/d1/f3")
assert "f3" not in ls(f"{w}/d1"), "unlink not seen"
os.unlink(f"{w}/l1"); os.symlink("d1/f4", f"{w}/l1")
assert os.readlink(f"{w}/l1") == "d1/f4", "replaced symlink shows its old target"
root = os.path.dirname(os.path.dirname(w))
before = ls(root)
os.mkdir(f"{root}/wwt")
assert ls(root) == before | {"wwt"}, "a new table missing from the cached root listing"
PY
echo "ok"
