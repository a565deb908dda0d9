#!/bin/bash
# tests/integration/restore.sh - point-in-time restore from the archive.
#
# Writes a history in steps (files, overwrite, delete, rename, xattrs,
# chmod/chown, nanosecond times, symlink, fifo, a 3 MiB file with a hole,
# a 4 KiB write into a chunk written back as a PATCH),
# recording after each step the wall-clock time and a description of the
# whole table as the mount shows it (type, mode, owner, size, mtime in ns,
# SHA-256 of the bytes, link target, user xattrs, and for a file with
# several names its link count and first name).  Then restores the table
# as of each recorded time into plain directories, one path alone, and once
# into a new table of the mount, and compares each with the recorded state.
# Restore before the table existed fails; a corrupted archived segment and
# a corrupted snapshot make restore refuse with an error naming the object.
# Doc: doc/archive.md.

. "${QFS_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"
qfs_require python3 setfattr mkfifo
qfs_setup -o seal_age=1s,seal_size=64K,snapshot_segments=3,archive_interval=200ms
A=$MNT/.quorumfs/archive

# describe DIR > FILE: one line per entry, sorted
describe() {
	python3 - "$1" <<'PY'
import hashlib, os, stat, sys
root = sys.argv[1]
out = []
first = {}  # (dev, ino) -> the first name (sorted) of a file with several names
for d, dirs, files in sorted(os.walk(root)):
    for n in sorted(files):
        st = os.lstat(os.path.join(d, n))
        if not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1:
            rel = os.path.relpath(os.path.join(d, n), root)
            k = (st.st_dev, st.st_ino)
            first[k] = min(first.get(k, rel), rel)
for d, dirs, files in os.walk(root):
    for n in sorted(dirs + files):
        p = os.path.join(d, n)
        st = os.lstat(p)
        rel = os.path.relpath(p, root)
        t = stat.S_IFMT(st.st_mode)
        extra = ""
        if stat.S_ISREG(st.st_mode):
            extra = hashlib.sha256(open(p, "rb").read()).hexdigest()
        elif stat.S_ISLNK(st.st_mode):
            extra = os.readlink(p)
        xs = []
        if not stat.S_ISLNK(st.st_mode):
            for x in sorted(os.listxattr(p)):
                if x.startswith("user."):
                    xs.append(x + "=" + os.getxattr(p, x).hex())
        if not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1:
            extra += " nlink=%d of=%s" % (st.st_nlink, first[(st.st_dev, st.st_ino)])
        size = st.st_size if not stat.S_ISDIR(st.st_mode) else 0
        out.append("%s %o %o %d:%d %d %d %s %s" % (rel, t, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                   size, st.st_mtime_ns, extra, ",".join(xs)))
print("\n".join(sorted(out)))
PY
}

lag0() {
	for _ in $(seq 200); do
		awk '/^partition/ { p++; if ($4 != $6 || $8 != 0 || $16 != "ok") bad = 1 } END { exit (bad || p < 2) }' \
			"$A" 2>/dev/null && return 0
		sleep 0.2
	done
	cat "$A" >&2
	return 1
}

stamp() { sleep 0.05; date +%s.%N; sleep 0.05; }

TBEFORE=$(stamp)
mkdir "$MNT/t" || fail "mkdir"
# step 0
cd "$MNT/t" || fail "cd"
echo "first version of a" > a
mkdir -p dir/sub
printf 'bee\n' > dir/b
printf 'sea\n' > dir/sub/c
ln -s a link
mkfifo pipe
setfattr -n user.color -v red a
chmod 640 dir/b
chown 1234:5678 dir/b
touch -h -d '2001-02-03 04:05:06.123456789' dir/sub/c
mkdir hl
head -c 3000 /dev/urandom > hl/x
ln hl/x hl/y
ln hl/x hx
cd / || fail "cd /"
describe "$MNT/t" > "$T/exp0"
T0=$(stamp)

# step 1: overwrite, delete, rename, xattr change, big file with a hole
cd "$MNT/t" || fail "cd"
echo "second version of a, longer than the first" > a
rm dir/b
mv dir/sub/c dir/c2
setfattr -n user.color -v blue a
setfattr -n user.size -v large a
head -c 1500000 /dev/urandom > big
dd if=/dev/urandom of=big bs=1M seek=2 count=1 conv=notrunc status=none
for i in $(seq 30); do head -c 20000 /dev/urandom > "n$i"; done
rm hl/y
ln a hl/a2
head -c 300000 /dev/urandom > hl/big
ln hl/big hl/big2
cd / || fail "cd /"
describe "$MNT/t" > "$T/exp1"
T1=$(stamp)

# step 2: more changes after a snapshot or two
cd "$MNT/t" || fail "cd"
rm big
mv dir renamed
truncate -s 5 a
setfattr -x user.size a
chmod 700 renamed
# a directory's chmod is written back within a second (doc/fs.md "Write-back
# of a directory's attributes"); T2 below must come after it is stored
sync renamed || fail "fsync of renamed"
for i in $(seq 10); do rm "n$i"; done
mv hl/big2 big3
# 4 KiB inside the second chunk of a file in chunks: a PATCH op
dd if=/dev/urandom of=big3 bs=4096 seek=34 count=1 conv=notrunc status=none
cd / || fail "cd /"
describe "$MNT/t" > "$T/exp2"
T2=$(stamp)

lag0 || fail "archive did not catch up"
awk '/^partition 0000000000000400/ { exit !($14 > 0) }' "$A" || { cat "$A" >&2; fail "no snapshot taken"; }

check() { # check NAME TIME EXPECTED
	rm -rf "$T/$1"
	"$QFS_BIN" restore --data "$DATA" --table t --time "$2" --to "$T/$1" || fail "restore $1 at $2 failed"
	describe "$T/$1" > "$T/$1.got"
	diff -u "$3" "$T/$1.got" >&2 || fail "restore $1 at $2 differs from the recorded state"
}
check r0 "@$T0" "$T/exp0"
check r1 "@$T1" "$T/exp1"
check r2 "@$T2" "$T/exp2"
check rl latest "$T/exp2"
# RFC 3339 form of T1
T1ISO=$(date -u -d "@$T1" +%Y-%m-%dT%H:%M:%S.%NZ)
check r1iso "$T1ISO" "$T/exp1"
note "restored at T0, T1, T2, latest and $T1ISO"

# unmounted: the archive alone is enough
qfs_umount
check r1u "@$T1" "$T/exp1"
qfs_mount -o seal_age=1s,seal_size=64K,snapshot_segments=3,archive_interval=200ms

# one path alone
"$QFS_BIN" restore --data "$DATA" --table t --time "@$T0" --path dir/b --to "$T/one" || fail "path restore"
[ "$(cat "$T/one/b")" = bee ] || fail "dir/b content"
[ "$(stat -c '%a %u:%g' "$T/one/b")" = "640 1234:5678" ] || fail "dir/b mode/owner: $(stat -c '%a %u:%g' "$T/one/b")"
"$QFS_BIN" restore --data "$DATA" --table t --time "@$T0" --path dir --to "$T/sub" || fail "subtree restore"
grep '^dir/' "$T/exp0" | sed 's/^dir//' > "$T/exp0dir"
describe "$T/sub/dir" | sed 's/^/\//' > "$T/sub.got"
diff -u "$T/exp0dir" "$T/sub.got" >&2 || fail "subtree restore differs"
"$QFS_BIN" restore --data "$DATA" --table t --time "@$T2" --path dir --to "$T/gone" 2>"$T/err" &&
	fail "restoring a path that no longer existed succeeded"
grep -q "no path 'dir'" "$T/err" || fail "unclear error: $(cat "$T/err")"
"$QFS_BIN" restore --data "$DATA" --table t --time "@$TBEFORE" --to "$T/before" 2>"$T/err" &&
	fail "restore before the table existed succeeded"
grep -q "no table named 't'" "$T/err" || fail "unclear error: $(cat "$T/err")"

# into a new table of the mount
"$QFS_BIN" restore --data "$DATA" --table t --time "@$T1" --to "$MNT/t_at_t1" || fail "restore into the mount"
describe "$MNT/t_at_t1" > "$T/mnt.got"
diff -u "$T/exp1" "$T/mnt.got" >&2 || fail "restore into a new table differs"
ls "$MNT" | grep -qx t_at_t1 || fail "new table not listed"
[ "$(stat -c %i "$MNT/t_at_t1/hl/a2")" = "$(stat -c %i "$MNT/t_at_t1/a")" ] ||
	fail "hard link a / hl/a2 restored into the mount as two files"
grep -q ' nlink=2 of=a' "$T/mnt.got" || fail "no restored hard link in: $(cat "$T/mnt.got")"

# corruption: flip one data byte (past the local backend's 32-byte header)
# of every archived segment of the table; restoring T0 needs the first ones
# (no snapshot can be that old: one is taken only after 3 archived segments)
flip() { printf '\x5a' | dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }
# flip_obj OBJ OFFSET: the same data byte of an object whose bytes the local
# backend keeps in a linked data file (OBJ.<id>.data, doc/objstore.md): the
# link to the node's WAL segment is broken first, so only the archive changes
flip_obj() {
	local d
	d=$(ls "$1".*.data 2>/dev/null | head -n 1)
	if [ -n "$d" ]; then
		cp "$d" "$d.x" && mv "$d.x" "$d" && flip "$d" $(($2 - 32))
	else
		flip "$1" "$2"
	fi
}
G=$DATA/archive/groups/0000000000000400
cp -a "$G" "$T/g.bak"
for f in "$G"/wal/*.obj; do flip_obj "$f" 60; done
"$QFS_BIN" restore --data "$DATA" --table t --time "@$T0" --to "$T/bad" 2>"$T/err" &&
	fail "restore accepted a corrupt segment"
grep -q "corrupt" "$T/err" && grep -Eq "archived object groups/0000000000000400/wal/[0-9a-f]{16}-[0-9a-f]{16}\.seg " "$T/err" ||
	fail "error does not name the corrupt segment: $(cat "$T/err")"
[ ! -e "$T/bad" ] || [ -z "$(ls -A "$T/bad")" ] || fail "a refused restore wrote files"
rm -rf "$G" && cp -a "$T/g.bak" "$G"
snap=$(ls "$G/snap/" | grep '\.obj$' | sort | tail -1)
flip_obj "$G/snap/$snap" 100
"$QFS_BIN" restore --data "$DATA" --table t --to "$T/bad2" 2>"$T/err" && fail "restore accepted a corrupt snapshot"
grep -q "groups/0000000000000400/snap/${snap%.obj}" "$T/err" ||
	fail "error does not name the corrupt snapshot: $(cat "$T/err")"
note "corrupt objects refused: $(head -c 200 "$T/err")"
note "restore: ok"
