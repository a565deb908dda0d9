#!/bin/bash
# tests/integration/readdir.sh - a directory of 100,000 entries.
#
# Creates QFS_READDIR_N (default 100000) entries in creation order unrelated
# to name order, with names of varied lengths and bytes (UTF-8, upper/lower
# case, leading '.' and '-', 255 bytes), then checks:
# - `ls -f | wc -l` is N + 2, and `ls -f` (readdir order) is ".", "..", then
#   the names sorted bytewise;
# - os.listdir / os.scandir: complete, in that order, no duplicates;
# - a raw getdents64 loop with a 512-byte buffer (a few entries per call, so
#   tens of thousands of resumes from a d_off): every entry exactly once, in
#   order, d_off values distinct, and lseek to an entry's d_off resumes
#   right after it (stable offsets), and after a remount (a daemon that
#   never handed them out) the offsets of the first mount still do;
# - deleting entries while iterating (behind and ahead of the cursor): no
#   duplicates, every entry not deleted is returned, order kept;
# - the same after a remount;
# - once the table split by size (-o split_bytes=QFS_READDIR_SPLIT, default
#   2M) so that a partition boundary falls inside the directory: listdir,
#   scandir and getdents64(512) complete, in order, stable offsets across
#   the partitions (doc/partitions.md);
# - two opendirs of one directory: the second reads entries from the
#   kernel's cached listing, entries it returned are unlinked, it continues
#   (on its own handle): every entry never deleted exactly once; lseek to the
#   d_off of a deleted entry resumes at the next live one.
# Behaviour: doc/fs.md (directories) and quorumfs(8).

. "${QFS_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"

N=${QFS_READDIR_N:-100000}
qfs_require python3 ls wc
set -o pipefail
qfs_setup
echo "$QFS_PID" >"$T/daemon.pid"
watchdog "${QFS_READDIR_TIMEOUT:-600}"
export LC_ALL=C

cat >"$T/rd.py" <<'EOF'
# helpers for readdir.sh: python3 rd.py CMD DIR N
import ctypes, errno, os, random, struct, sys, threading

def die(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)

def names(n):
    """n distinct names (bytes); creation order is not name order."""
    special = [b"." + b"h" * 10, b"-dash", b"Zupper", b"a b c", "\u00e9t\u00e9".encode(),
               "\u65e5\u672c".encode(), b"x" * 255, b"\x7f\x01ctl", b"~tilde", b"0"]
    out = special[:min(n, len(special))]
    i = 0
    while len(out) < n:
        h = (i * 2654435761) & 0xffffffff
        style = i % 5
        if style == 0:
            nm = b"%08x" % h
        elif style == 1:
            nm = b"F%d" % i
        elif style == 2:
            nm = b"f-%x-%s" % (h, b"y" * (h % 40))
        elif style == 3:
            nm = ("\u00fc" + str(i)).encode()
        else:
            nm = b"%d.txt" % h
        out.append(nm + b"_%d" % i)
        i += 1
    return out

def create(d, n):
    """Create n empty files with O_CREAT|O_EXCL from 16 threads."""
    nm = names(n)
    d = os.fsencode(d)
    errs = []
    def work(k):
        try:
            for x in nm[k::16]:
                os.close(os.open(os.path.join(d, x), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        except Exception as e:
            errs.append(e)
    th = [threading.Thread(target=work, args=(k,)) for k in range(16)]
    for t in th: t.start()
    for t in th: t.join()
    if errs:
        die(f"create: {errs[0]!r} ({len(errs)} threads failed)")

def getdents(d, bufsize, on_batch=None):
    """Raw getdents64 loop; returns [(name, d_off)] in order."""
    libc = ctypes.CDLL(None, use_errno=True)
    SYS_getdents64 = {"x86_64": 217, "aarch64": 61, "riscv64": 61}.get(os.uname().machine, 217)
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    buf = ctypes.create_string_buffer(bufsize)
    out = []
    calls = 0
    while True:
        n = libc.syscall(SYS_getdents64, fd, buf, bufsize)
        if n < 0:
            e = ctypes.get_errno()
            die(f"getdents64({bufsize}) failed after {len(out)} entries: {os.strerror(e)}")
        if n == 0:
            break
        calls += 1
        raw = buf.raw[:n]
        pos = 0
        batch = []
        while pos < n:
            ino, off, reclen, typ = struct.unpack_from("<QqHB", raw, pos)
            name = raw[pos + 19:pos + reclen].split(b"\0", 1)[0]
            batch.append((name, off))
            pos += reclen
        out += batch
        if on_batch:
            on_batch(batch)
    os.close(fd)
    return out, calls

def check_order(got, expect, what):
    if len(got) != len(set(got)):
        seen = set()
        dup = next(x for x in got if x in seen or seen.add(x))
        die(f"{what}: duplicate entry {dup!r} ({len(got)} entries, {len(set(got))} distinct)")
    if set(got) != set(expect):
        missing = sorted(set(expect) - set(got))
        extra = sorted(set(got) - set(expect))
        die(f"{what}: {len(missing)} missing (e.g. {missing[:3]}), {len(extra)} unexpected (e.g. {extra[:3]})")
    if got != expect:
        i = next(i for i in range(len(got)) if got[i] != expect[i])
        die(f"{what}: not in bytewise name order at index {i}: {got[i-1:i+2]!r}")

def seek_saved(db, saved):
    """lseek to d_off values saved from an earlier mount (a daemon that
    never handed them out): each resumes right after its entry."""
    libc = ctypes.CDLL(None, use_errno=True)
    SYS_getdents64 = {"x86_64": 217, "aarch64": 61, "riscv64": 61}.get(os.uname().machine, 217)
    rnd = random.Random(7)
    for k in [2, len(saved) - 2] + [rnd.randrange(2, len(saved) - 1) for _ in range(8)]:
        fd = os.open(db, os.O_RDONLY | os.O_DIRECTORY)
        os.lseek(fd, saved[k][1], os.SEEK_SET)
        buf = ctypes.create_string_buffer(512)
        r = libc.syscall(SYS_getdents64, fd, buf, 512)
        e = ctypes.get_errno()
        os.close(fd)
        if r <= 0:
            die(f"getdents64 after lseek to the saved d_off of entry {k} returned {r} ({os.strerror(e)})")
        name = buf.raw[19:struct.unpack_from("<QqH", buf.raw, 0)[2]].split(b"\0", 1)[0]
        if name != saved[k + 1][0]:
            die(f"saved d_off of {saved[k][0]!r} resumed at {name!r}, want {saved[k + 1][0]!r}")

def verify(d, n, offfile=None, deletedfile=None):
    """listdir, scandir, getdents(512); offsets saved in offfile by the
    previous verify (another mount) still resume where they did.  The
    names listed in deletedfile (one a line, as "delete" wrote them) are
    expected gone."""
    expect = sorted(names(n))
    if deletedfile:
        with open(deletedfile, "rb") as f:
            gone = set(x for x in f.read().split(b"\n") if x)
        expect = [x for x in expect if x not in gone]
    db = os.fsencode(d)
    if offfile and os.path.exists(offfile):
        with open(offfile, "rb") as f:
            saved = [(bytes.fromhex(x), int(o)) for x, o in (l.split() for l in f.read().decode().splitlines())]
        seek_saved(db, saved)
    check_order(os.listdir(db), expect, "os.listdir")
    with os.scandir(db) as it:
        check_order([e.name for e in it], expect, "os.scandir")
    ents, calls = getdents(db, 512)
    got = [x for x, _ in ents]
    if got[:2] != [b".", b".."]:
        die(f"getdents64: first entries are {got[:2]!r}, want '.', '..'")
    check_order(got[2:], expect, "getdents64 with a 512-byte buffer")
    offs = [o for _, o in ents]
    if offfile:
        with open(offfile, "w") as f:
            f.write("".join(f"{x.hex()} {o}\n" for x, o in ents))
    if len(set(offs)) != len(offs):
        die(f"getdents64: {len(offs) - len(set(offs))} duplicate d_off values")
    # offsets are stable: lseek to entry k's d_off resumes at entry k+1
    rnd = random.Random(5)
    libc = ctypes.CDLL(None, use_errno=True)
    for k in [0, 1, 2, len(ents) - 2] + [rnd.randrange(len(ents) - 1) for _ in range(20)]:
        fd = os.open(db, os.O_RDONLY | os.O_DIRECTORY)
        os.lseek(fd, offs[k], os.SEEK_SET)
        buf = ctypes.create_string_buffer(512)
        SYS_getdents64 = {"x86_64": 217, "aarch64": 61, "riscv64": 61}.get(os.uname().machine, 217)
        r = libc.syscall(SYS_getdents64, fd, buf, 512)
        os.close(fd)
        if r <= 0:
            die(f"getdents64 after lseek to d_off of entry {k} returned {r}")
        name = buf.raw[19:struct.unpack_from("<QqH", buf.raw, 0)[2]].split(b"\0", 1)[0]
        if name != ents[k + 1][0]:
            die(f"lseek(d_off of entry {k} = {ents[k][0]!r}) resumed at {name!r}, want {ents[k + 1][0]!r}")
    print(f"# getdents64(512): {len(ents)} entries in {calls} calls")

def delete_while_iterating(d, n, out):
    """Delete ~2% of entries (random, ahead of and behind the cursor) while a
    512-byte getdents loop runs; write the deleted names to out."""
    rnd = random.Random(99)
    allnames = sorted(names(n))
    alive = set(allnames)
    deleted = set()
    db = os.fsencode(d)
    def on_batch(batch):
        # (0.08: ~2% of the entries, as said above; at 0.3 it deleted
        # 7.4%, 7,408 serial unlinks, 29 s of a 221 s run at load 13)
        if rnd.random() < 0.08:
            for _ in range(3):
                x = rnd.choice(allnames)
                if x in alive:
                    os.unlink(os.path.join(db, x))
                    alive.discard(x)
                    deleted.add(x)
    ents, calls = getdents(db, 512, on_batch)
    got = [x for x, _ in ents if x not in (b".", b"..")]
    if len(got) != len(set(got)):
        seen = set()
        dup = next(x for x in got if x in seen or seen.add(x))
        die(f"delete while iterating: duplicate entry {dup!r}")
    missing = alive - set(got)
    if missing:
        die(f"delete while iterating: {len(missing)} entries never deleted were skipped, e.g. {sorted(missing)[:3]}")
    extra = set(got) - set(allnames)
    if extra:
        die(f"delete while iterating: unknown entries {sorted(extra)[:3]}")
    if got != sorted(got):
        die("delete while iterating: entries not in name order")
    with open(out, "wb") as f:
        f.write(b"".join(x + b"\n" for x in sorted(deleted)))
    print(f"# deleted {len(deleted)} entries during {calls} getdents64 calls")
    check_order(sorted(os.listdir(db)), sorted(alive), "listdir after deleting while iterating")
    check_order(os.listdir(db), sorted(alive), "listdir order after deleting while iterating")

def two_handles(d, n):
    """Deterministic: a complete listing fills the kernel's cache
    (FOPEN_CACHE_DIR), fd2 reads a page from that cache, entries it
    returned are unlinked, a new opendir sees the change and drops the
    cache, fd2 continues (its own handle, which listed nothing, serves it
    now): every entry never deleted exactly once, in order.  Then offsets
    survive deletions: lseek on a new fd to the d_off of an entry since
    deleted resumes at the next live entry."""
    db = os.fsencode(d)
    libc = ctypes.CDLL(None, use_errno=True)
    SYS_getdents64 = {"x86_64": 217, "aarch64": 61, "riscv64": 61}.get(os.uname().machine, 217)
    def page(fd, size):
        buf = ctypes.create_string_buffer(size)
        r = libc.syscall(SYS_getdents64, fd, buf, size)
        if r < 0:
            die(f"getdents64: {os.strerror(ctypes.get_errno())}")
        raw, pos, out = buf.raw[:r], 0, []
        while pos < r:
            ino, off, reclen, typ = struct.unpack_from("<QqHB", raw, pos)
            out.append((raw[pos + 19:pos + reclen].split(b"\0", 1)[0], off))
            pos += reclen
        return out
    for rnd in range(3):
        alive = set(os.listdir(db))
        fd2 = os.open(db, os.O_RDONLY | os.O_DIRECTORY)
        got = page(fd2, 512)
        seen = [x for x, _ in got if x not in (b".", b"..")]
        if len(seen) < 8:
            die(f"two handles: first page has only {len(seen)} entries")
        gone = seen[1:8]
        for x in gone:
            os.unlink(os.path.join(db, x))
            alive.discard(x)
        fd1 = os.open(db, os.O_RDONLY | os.O_DIRECTORY)
        page(fd1, 512)
        while True:
            b = page(fd2, 512)
            if not b:
                break
            got += b
        os.close(fd1)
        names_ = [x for x, _ in got if x not in (b".", b"..")]
        if len(names_) != len(set(names_)):
            die(f"two handles (round {rnd}): duplicate entries")
        missing = alive - set(names_)
        if missing:
            die(f"two handles (round {rnd}): {len(missing)} entries never deleted were skipped, e.g. {sorted(missing)[:3]}")
        if names_ != sorted(names_):
            die(f"two handles (round {rnd}): entries not in name order")
        # telldir/seekdir across deletions: d_off of a deleted entry
        offs = dict(got)
        k = seen[8]
        after = sorted(x for x in alive if x > k)
        os.unlink(os.path.join(db, k))
        fd = os.open(db, os.O_RDONLY | os.O_DIRECTORY)
        os.lseek(fd, offs[k], os.SEEK_SET)
        b = page(fd, 512)
        os.close(fd)
        os.close(fd2) # held open so far: the kernel keeps the directory (offsets)
        if not b or b[0][0] != after[0]:
            die(f"lseek to d_off of deleted {k!r} resumed at {b[0][0] if b else None!r}, want {after[0]!r}")
    # an offset never handed out: EINVAL (or the end, from the kernel's
    # cached listing), never entries
    fd = os.open(db, os.O_RDONLY | os.O_DIRECTORY)
    os.lseek(fd, 0x123456789abcdef, os.SEEK_SET)
    buf = ctypes.create_string_buffer(512)
    r = libc.syscall(SYS_getdents64, fd, buf, 512)
    e = ctypes.get_errno()
    os.close(fd)
    if r > 0 or (r < 0 and e != errno.EINVAL):
        die(f"getdents64 at a bogus offset returned {r} ({os.strerror(e) if r < 0 else 'entries'}), want EINVAL or 0")
    print(f"# two handles: 3 rounds over {len(alive)} entries")

if __name__ == "__main__":
    cmd, d, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if cmd == "create":
        create(d, n)
    elif cmd == "verify":
        verify(d, n, sys.argv[4] if len(sys.argv) > 4 else None, sys.argv[5] if len(sys.argv) > 5 else None)
    elif cmd == "delete":
        delete_while_iterating(d, n, sys.argv[4])
    elif cmd == "twohandles":
        two_handles(d, n)
    elif cmd == "stats":  # lookups of random entries: requests inside the directory
        rnd = random.Random(int(sys.argv[4]))
        db = os.fsencode(d)
        for x in rnd.sample(names(n), min(n, 300)):
            try:
                os.stat(os.path.join(db, x))
            except FileNotFoundError:
                pass  # deleted by "delete"
    elif cmd == "names":
        sys.stdout.buffer.write(b"".join(x + b"\n" for x in sorted(names(n))))
EOF
py() { python3 "$T/rd.py" "$@" || fail "python check '$1' failed (see above)"; }

mkdir "$MNT/rd" "$MNT/rd/big" "$MNT/rd/two" || fail "mkdir"
D=$MNT/rd/big

# two handles of one directory sharing the kernel's cached listing
py create "$MNT/rd/two" 3000
py twohandles "$MNT/rd/two" 3000

t0=$SECONDS
py create "$D" "$N"
note "created $N entries in $((SECONDS - t0)) s"

cnt=$(ls -f "$D" | wc -l) || fail "ls -f failed"
[ "$cnt" -eq $((N + 2)) ] || fail "ls -f | wc -l = $cnt, want $((N + 2))"
{ printf '.\n..\n'; python3 "$T/rd.py" names "$D" "$N"; } >"$T/want.ls" || fail "names"
ls -f "$D" >"$T/got.ls" || fail "ls -f failed"
cmp -s "$T/want.ls" "$T/got.ls" ||
	{ diff "$T/want.ls" "$T/got.ls" | head -n 10 >&2; fail "ls -f order is not '.', '..', then names sorted bytewise"; }
[ "$(stat -c %h "$D")" = 2 ] || fail "st_nlink of a dir with no subdirs is $(stat -c %h "$D"), want 2"

t0=$SECONDS
py verify "$D" "$N" "$T/offs"
note "listdir/scandir/getdents checks in $((SECONDS - t0)) s"

qfs_umount
qfs_mount
echo "$QFS_PID" >"$T/daemon.pid"
py verify "$D" "$N" "$T/offs"
cnt=$(ls -f "$D" | wc -l) || fail "ls -f failed after remount"
[ "$cnt" -eq $((N + 2)) ] || fail "after remount, ls -f | wc -l = $cnt, want $((N + 2))"

py delete "$D" "$N" "$T/deleted"
ndel=$(wc -l <"$T/deleted")
cnt=$(ls -f "$D" | wc -l) || fail "ls -f failed"
[ "$cnt" -eq $((N + 2 - ndel)) ] || fail "after deleting $ndel entries, ls -f | wc -l = $cnt, want $((N + 2 - ndel))"


# the directory across partitions (doc/partitions.md): remounted with a
# small -o split_bytes, the table splits by size (at the median of the keys
# of its requests: lookups of its entries) until a partition starts inside
# the directory's key range (its keys share the prefix hash(ino) ino, and a
# name follows: a partition's lo with that pk and a name after it); then,
# remounted without splits, the checks again across the boundary
qfs_umount
qfs_mount -o split_bytes="${QFS_READDIR_SPLIT:-2M}",split_check=200ms
echo "$QFS_PID" >"$T/daemon.pid"
dino=$(printf '%016x' "$(stat -c %i "$D")")
inside() {
	awk -v ino="$dino" '$1 == "table" && $2 == "rd" && $7 == "lo" && substr($8, 17, 16) == ino &&
		substr($8, 33, 2) >= "01" && substr($8, 33) != "01" { f = 1 } END { exit !f }' "$MNT/.quorumfs/partitions"
}
t0=$SECONDS
for i in $(seq 150); do
	inside && break
	py stats "$D" "$N" "$i"
	sleep 0.2
done
inside || fail "no partition starts inside $D after the splits: $(grep '^table rd ' "$MNT/.quorumfs/partitions")"
np=$(grep -c '^table rd partition ' "$MNT/.quorumfs/partitions")
note "table rd in $np partitions, one boundary inside $D, after $((SECONDS - t0)) s of splits"
qfs_umount
qfs_mount
echo "$QFS_PID" >"$T/daemon.pid"
t0=$SECONDS
py verify "$D" "$N" "$T/offs2" "$T/deleted"
cnt=$(ls -f "$D" | wc -l) || fail "ls -f failed across partitions"
[ "$cnt" -eq $((N + 2 - ndel)) ] || fail "across partitions, ls -f | wc -l = $cnt, want $((N + 2 - ndel))"
note "checks across partitions in $((SECONDS - t0)) s"

qfs_umount
note "PASS ($SECONDS s)"
exit 0
