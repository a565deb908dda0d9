#!/bin/bash
# tests/integration/links.sh - hard links and renameat2(RENAME_EXCHANGE)
# through a real mount and real tools.
#
# links.py: link(2) and its errnos, st_ino/st_nlink/ctime, unlink and
# rename-over of one name, open files with several names, concurrent
# unlinks.  Here: rsync -aHAX into the mount twice (the second pass lists
# nothing), tar of a tree with hard links extracted into the mount and
# back, cp -al, a non-root user and fs.protected_hardlinks, RENAME_EXCHANGE
# with a small C program (file<->file, dir<->file, dir<->dir across parents
# with the parents' nlink and "..", ENOENT, EXDEV, EINVAL), and everything
# again after a remount.  EMLINK (65000 links) is a unit test
# (tests/unit/check_store.c test_link_add).  Doc: doc/fs.md.

. "$QFS_SRCDIR/tests/lib/common.sh"
qfs_require python3 rsync tar cp setpriv "${CC:-cc}"
qfs_setup
watchdog 240

"${CC:-cc}" -O -Wall -o "$T/renameat2" "$QFS_SRCDIR/tests/integration/renameat2.c" ||
	fail "cannot build tests/integration/renameat2.c"
R=$T/renameat2

python3 "$QFS_SRCDIR/tests/integration/links.py" "$MNT" ||
	fail "links.py: some checks failed (see the FAIL lines above)"

# groups DIR: one line per file with several names: its names, sorted,
# joined by spaces (the same for any tree with the same link structure)
groups() {
	python3 - "$1" <<'PY'
import os, sys
root = sys.argv[1]
g = {}
for d, dirs, files in os.walk(root):
    for n in files:
        p = os.path.join(d, n)
        st = os.lstat(p)
        if st.st_nlink > 1:
            g.setdefault((st.st_dev, st.st_ino), []).append(os.path.relpath(p, root))
for k, names in g.items():
    n = os.lstat(os.path.join(root, names[0])).st_nlink
    if n != len(names):
        print("nlink %d but %d names: %s" % (n, len(names), " ".join(sorted(names))))
print("\n".join(sorted(" ".join(sorted(v)) for v in g.values())))
PY
}

# --- a source tree with hard links (inline and chunked files, across dirs)
S=$T/src
mkdir -p "$S/a/b" "$S/c"
head -c 100 /dev/urandom >"$S/small"
head -c 400000 /dev/urandom >"$S/a/big"
head -c 5000 /dev/urandom >"$S/c/solo"
ln "$S/small" "$S/a/small2"
ln "$S/small" "$S/a/b/small3"
ln "$S/a/big" "$S/c/big2"
ln -s small "$S/sym"
setfattr -n user.tag -v linked "$S/a/big" 2>/dev/null || true
chmod 600 "$S/a/big"
touch -d '2020-01-02 03:04:05.123456789' "$S/small"
groups "$S" >"$T/g.src"
[ "$(wc -l <"$T/g.src")" = 2 ] || fail "source tree groups: $(cat "$T/g.src")"

# --- rsync -aHAX into the mount, twice: the second pass has nothing to do
mkdir "$MNT/rs" || fail "mkdir rs"
rsync -aHAX "$S/" "$MNT/rs/" 2>"$T/rsync.err" || fail "rsync -aHAX: $(cat "$T/rsync.err")"
groups "$MNT/rs" >"$T/g.rs"
diff -u "$T/g.src" "$T/g.rs" >&2 || fail "rsync -aH: link groups differ in the mount"
cmp "$S/a/big" "$MNT/rs/c/big2" || fail "rsync -aH: data of a linked file"
[ "$(stat -c %i "$MNT/rs/small")" = "$(stat -c %i "$MNT/rs/a/b/small3")" ] || fail "rsync -aH: st_ino differs"
rsync -aHAX --itemize-changes "$S/" "$MNT/rs/" >"$T/rsync2.out" 2>&1 || fail "second rsync: $(cat "$T/rsync2.out")"
[ ! -s "$T/rsync2.out" ] || fail "second rsync -aHAX pass is not empty: $(head -20 "$T/rsync2.out")"
# and back out of the mount
rsync -aHAX "$MNT/rs/" "$T/rsback/" || fail "rsync -aHAX out of the mount"
groups "$T/rsback" >"$T/g.rsback"
diff -u "$T/g.src" "$T/g.rsback" >&2 || fail "rsync -aH out of the mount: link groups differ"
note "rsync -aHAX: in, an empty second pass, out"

# --- tar: a tree with hard links extracted into the mount and back
tar -C "$S" -cf "$T/src.tar" . || fail "tar c"
mkdir -p "$MNT/w/tx" || fail "mkdir w/tx"
tar -C "$MNT/w/tx" -xf "$T/src.tar" 2>"$T/tar.err" || fail "tar x into the mount: $(cat "$T/tar.err")"
groups "$MNT/w/tx" >"$T/g.tx"
diff -u "$T/g.src" "$T/g.tx" >&2 || fail "tar x: link groups differ in the mount"
tar -C "$MNT/w/tx" -cf "$T/back.tar" . || fail "tar c of the mount"
tar -tvf "$T/back.tar" | grep -q ' link to ' || fail "tar of the mount has no hard link members"
mkdir "$T/tback" && tar -C "$T/tback" -xf "$T/back.tar" || fail "tar x of the mount's archive"
groups "$T/tback" >"$T/g.tback"
diff -u "$T/g.src" "$T/g.tback" >&2 || fail "tar round trip: link groups differ"
diff -r "$S" "$T/tback" >&2 || fail "tar round trip: contents differ"
note "tar: into the mount and back"

# --- cp -al: a tree of links to every file
cp -al "$MNT/w/tx" "$MNT/w/cpal" 2>"$T/cp.err" || fail "cp -al: $(cat "$T/cp.err")"
cp -al "$MNT/w/tx" "$MNT/cpal_other_table" 2>"$T/cp.err" && fail "cp -al into another table succeeded"
grep -q "Invalid cross-device link" "$T/cp.err" || fail "cp -al across tables: $(cat "$T/cp.err")"
[ "$(stat -c %h "$MNT/w/tx/c/solo")" = 2 ] || fail "cp -al: nlink of solo $(stat -c %h "$MNT/w/tx/c/solo")"
[ "$(stat -c %h "$MNT/w/cpal/small")" = 6 ] || fail "cp -al: nlink of small $(stat -c %h "$MNT/w/cpal/small")"
[ "$(stat -c %i "$MNT/w/cpal/a/big")" = "$(stat -c %i "$MNT/w/tx/c/big2")" ] || fail "cp -al: st_ino differs"
cmp "$MNT/w/cpal/a/big" "$S/a/big" || fail "cp -al: data"
rm -rf "$MNT/w/cpal" || fail "rm -rf of the cp -al copy"
[ "$(stat -c %h "$MNT/w/tx/small")" = 3 ] || fail "nlink after removing the cp -al copy: $(stat -c %h "$MNT/w/tx/small")"
cmp "$MNT/w/tx/small" "$S/small" || fail "data after removing the cp -al copy"
note "cp -al"

# --- a non-root user: fs.protected_hardlinks is the VFS's (may_linkat)
mkdir "$MNT/pub" && chmod 1777 "$MNT/pub" || fail "mkdir pub"
head -c 1000 /dev/urandom >"$MNT/pub/secret" && chmod 600 "$MNT/pub/secret"
as_user() { setpriv --reuid 4321 --regid 4321 --clear-groups "$@"; }
prot=$(cat /proc/sys/fs/protected_hardlinks 2>/dev/null || echo 0)
if [ "$prot" = 1 ]; then
	as_user ln "$MNT/pub/secret" "$MNT/pub/mine" 2>"$T/ln.err" &&
		fail "protected_hardlinks=1: a user linked a root file it cannot read"
	grep -q "Operation not permitted" "$T/ln.err" || fail "expected EPERM: $(cat "$T/ln.err")"
	[ ! -e "$MNT/pub/mine" ] || fail "the refused link left a name"
	[ "$(stat -c %h "$MNT/pub/secret")" = 1 ] || fail "nlink after a refused link"
else
	as_user ln "$MNT/pub/secret" "$MNT/pub/mine" || fail "protected_hardlinks=0: link refused"
	as_user cat "$MNT/pub/mine" >/dev/null 2>&1 && fail "a link made the file readable"
fi
as_user sh -c "echo mine >'$MNT/pub/own' && ln '$MNT/pub/own' '$MNT/pub/own2'" || fail "a user linking its own file"
[ "$(stat -c '%h %u' "$MNT/pub/own2")" = "2 4321" ] || fail "user's link: $(stat -c '%h %u' "$MNT/pub/own2")"
mkdir "$MNT/pub/closed" && chmod 755 "$MNT/pub/closed"
as_user ln "$MNT/pub/own" "$MNT/pub/closed/x" 2>/dev/null && fail "link into a directory the user cannot write"
note "non-root: protected_hardlinks=$prot"

# --- RENAME_EXCHANGE
X=$MNT/ex
mkdir -p "$X/p1/d1/s1" "$X/p1/d1/s2" "$X/p2/d2" || fail "mkdir ex"
echo one >"$X/f1"
head -c 300000 /dev/urandom >"$X/f2"
cp "$X/f2" "$T/f2.copy"
ino1=$(stat -c %i "$X/f1")
ino2=$(stat -c %i "$X/f2")
c1=$(stat -c %z "$X/f1")
c2=$(stat -c %z "$X/f2")
cx=$(stat -c %y "$X")
sleep 0.02
"$R" exchange "$X/f1" "$X/f2" || fail "exchange f1 f2"
cmp "$X/f1" "$T/f2.copy" || fail "f1 after exchange"
[ "$(cat "$X/f2")" = one ] || fail "f2 after exchange"
[ "$(stat -c %i "$X/f1") $(stat -c %i "$X/f2")" = "$ino2 $ino1" ] || fail "st_ino after exchange"
[ "$(stat -c %z "$X/f2")" != "$c1" ] || fail "exchange left the ctime of f1's inode"
[ "$(stat -c %z "$X/f1")" != "$c2" ] || fail "exchange left the ctime of f2's inode"
[ "$(stat -c %y "$X")" != "$cx" ] || fail "exchange left the mtime of the directory"
# a directory and a file in one directory
echo file >"$X/p1/file"
"$R" exchange "$X/p1/d1" "$X/p1/file" || fail "exchange dir<->file"
[ -d "$X/p1/file/s1" ] && [ "$(cat "$X/p1/d1")" = file ] || fail "dir<->file: contents"
[ "$(stat -c %h "$X/p1")" = 3 ] || fail "dir<->file: nlink of the parent $(stat -c %h "$X/p1")"
"$R" exchange "$X/p1/d1" "$X/p1/file" || fail "exchange back"
# two directories across parents: p1/d1 has 2 subdirs, p2/d2 none
"$R" exchange "$X/p1/d1" "$X/p2/d2" || fail "exchange dir<->dir across parents"
[ -d "$X/p2/d2/s1" ] && [ -d "$X/p2/d2/s2" ] || fail "dir<->dir: contents of p2/d2"
[ -z "$(ls -A "$X/p1/d1")" ] || fail "dir<->dir: p1/d1 should be empty: $(ls -A "$X/p1/d1")"
[ "$(stat -c %h "$X/p2/d2")" = 4 ] && [ "$(stat -c %h "$X/p1/d1")" = 2 ] || fail "dir<->dir: nlink of the dirs"
[ "$(stat -c %h "$X/p1") $(stat -c %h "$X/p2")" = "3 3" ] || fail "dir<->dir: nlink of the parents"
[ "$(stat -c %i "$X/p2/d2/..")" = "$(stat -c %i "$X/p2")" ] || fail "dir<->dir: .. of p2/d2"
[ "$(stat -c %i "$X/p2/d2/s1/../..")" = "$(stat -c %i "$X/p2")" ] || fail "dir<->dir: s1/../.."
dotdot=$(ls -ai "$X/p2/d2" | awk '$2 == ".." { print $1 }')
[ "$dotdot" = "$(stat -c %i "$X/p2")" ] || fail "dir<->dir: readdir's .. of p2/d2 is $dotdot"
dotdot=$(ls -ai "$X/p1/d1" | awk '$2 == ".." { print $1 }')
[ "$dotdot" = "$(stat -c %i "$X/p1")" ] || fail "dir<->dir: readdir's .. of p1/d1 is $dotdot"
# a dir and a file across parents: the parents' nlink follow
echo f >"$X/p2/ff"
"$R" exchange "$X/p1/d1" "$X/p2/ff" || fail "exchange dir<->file across parents"
[ "$(stat -c %h "$X/p1") $(stat -c %h "$X/p2")" = "2 4" ] ||
	fail "dir<->file across parents: nlink of the parents $(stat -c %h "$X/p1") $(stat -c %h "$X/p2")"
[ "$(stat -c %i "$X/p2/ff/..")" = "$(stat -c %i "$X/p2")" ] || fail "dir<->file across parents: .."
# two names of one file: nothing happens
ln "$X/f1" "$X/f1b"
"$R" exchange "$X/f1" "$X/f1b" || fail "exchange of two names of one file"
cmp "$X/f1" "$X/f1b" || fail "names of one file after exchange"
# errors
[ "$("$R" exchange "$X/f1" "$X/nope")" = ENOENT ] || fail "exchange with a missing target: not ENOENT"
[ "$("$R" exchange "$X/nope" "$X/f1")" = ENOENT ] || fail "exchange with a missing source: not ENOENT"
mkdir "$MNT/ex2" && echo o >"$MNT/ex2/o"
[ "$("$R" exchange "$X/f1" "$MNT/ex2/o")" = EXDEV ] || fail "exchange across tables: not EXDEV"
[ "$("$R" exchange "$X/p2" "$X/p2/d2/s1")" = EINVAL ] || fail "exchange with a descendant: not EINVAL"
[ "$("$R" exchange "$X/p2/d2/s1" "$X/p2")" = EINVAL ] || fail "exchange with an ancestor: not EINVAL"
[ "$("$R" exchange+noreplace "$X/f1" "$X/f2")" = EINVAL ] || fail "exchange+noreplace: not EINVAL"
[ "$("$R" whiteout "$X/f1" "$X/f9")" = EINVAL ] || fail "whiteout: not EINVAL"
[ "$("$R" exchange "$X/f1" "$MNT/.quorumfs/status")" = EROFS ] || fail "exchange with the control tree: not EROFS"
[ "$("$R" exchange "$MNT/ex" "$MNT/ex2")" = EINVAL ] || fail "exchange of two tables: not EINVAL"
[ "$("$R" noreplace "$X/f1" "$X/f2")" = EEXIST ] || fail "noreplace onto an existing name: not EEXIST"
cmp "$X/f1" "$T/f2.copy" && [ "$(cat "$X/f2")" = one ] || fail "refused exchanges changed something"
note "RENAME_EXCHANGE"

# --- after a remount
ls -lR "$X" | grep -v '^total' >"$T/ex.before"
qfs_umount
mount_again
python3 "$QFS_SRCDIR/tests/integration/links.py" "$MNT" --after || fail "links.py --after: some checks failed"
ls -lR "$X" | grep -v '^total' >"$T/ex.after"
diff -u "$T/ex.before" "$T/ex.after" >&2 || fail "RENAME_EXCHANGE results differ after the remount"
cmp "$X/f1" "$T/f2.copy" || fail "f1 after the remount"
[ "$(stat -c %h "$X/p1") $(stat -c %h "$X/p2") $(stat -c %h "$X/p2/d2")" = "2 4 4" ] || fail "nlinks after the remount"
for d in rs w/tx; do
	groups "$MNT/$d" >"$T/g.2"
	diff -u "$T/g.src" "$T/g.2" >&2 || fail "$d: link groups differ after the remount"
done
rsync -aHAX --itemize-changes "$S/" "$MNT/rs/" >"$T/rsync3.out" 2>&1 || fail "rsync after the remount"
[ ! -s "$T/rsync3.out" ] || fail "rsync -aHAX after the remount is not empty: $(head -20 "$T/rsync3.out")"
note "after the remount: link groups, nlinks, exchanges and an empty rsync pass"
mountpoint -q "$MNT" || fail "the mount disappeared"
qfs_umount
