#!/bin/bash
# tests/upgrade/upgrade.sh - upgrade from the previous release and downgrade
# back to it (doc/compat.md).
#
# Builds the release named in tests/upgrade/PREVIOUS from git history (the
# quorumfs binary only; cached as BUILDDIR/tests/upgrade/quorumfs-COMMIT so
# a second run skips the build), then:
#  1. the old build writes a tree (random files of several sizes, > 128 KiB
#     chunks, sparse files, dirs, symlinks, a fifo, xattrs, ACLs, modes,
#     owners, nanosecond times) in two tables, waits until the archive
#     holds it, unmounts;
#  2. the current build mounts the same data directory, must show exactly
#     that tree (SHA-256, modes, owners, sizes, mtimes, xattrs, ACLs), then
#     writes more: a hard link (a version-2 txn), new files and an
#     overwrite (version-2 inode items), old inline files above 3072 bytes
#     appended to, truncated and zeroed by fallocate -z, a new table; unmounts;
#  3. the old build mounts it again: it must refuse, naming the data
#     directory format ("quorumfs-data 4"), and exit non-zero with nothing
#     mounted; the current build then mounts it and still shows step 2's tree;
#  4. the current build restores each table from the archive the old build
#     wrote, as of the end of step 1, and as of now (mixed old/new log);
#  5. the old build restores a table as of the end of step 1 (the way back)
#     and refuses, naming the format, to restore it as of now;
#  6. the current build refuses an unknown FORMAT and writes format 4 in a
#     new data directory (format 4: the value log, doc/compat.md).
# Skips (77) when git, the history or the commit is not available (e.g. a
# tarball or a shallow clone), or the old release does not build here.

. "${QFS_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"
qfs_require git python3 setfattr setfacl mkfifo fallocate autoreconf make
[ "$(id -u)" -eq 0 ] || skip "needs root (FUSE allow_other, chown)"
[ -c /dev/fuse ] || skip "/dev/fuse is missing"

NEW=$QFS_BIN
PREV=$(sed -n '1{s/[[:space:]].*//;p}' "$QFS_SRCDIR/tests/upgrade/PREVIOUS")

qfs_tmp qfs-upgrade

# --- the previous release's binary
qfs_old_release "$PREV" tests/upgrade/PREVIOUS

OPTS=seal_age=1s,seal_size=64K,snapshot_segments=3,archive_interval=200ms
old_mount() { QFS_BIN=$OLD; mount_again -o $OPTS; QFS_BIN=$NEW; }
new_mount() { QFS_BIN=$NEW; mount_again -o $OPTS; }
A=$MNT/.quorumfs/archive
lag0() {
	for _ in $(seq 300); do
		awk '/^partition/ { p++; if ($4 != $6 || $8 != 0 || $16 != "ok") bad = 1 } END { exit (bad || p < 3) }' \
			"$A" 2>/dev/null && return 0
		sleep 0.2
	done
	cat "$A" >&2
	return 1
}

# describe DIR XATTRS > FILE: one line per entry, sorted: path, type, mode,
# owner, size, mtime (ns), SHA-256 or link target, nlink of a file with
# several names, the xattrs whose names start with one of XATTRS (a
# comma-separated list of prefixes).  Fails on any read error.
describe() {
	python3 - "$1" "$2" <<'PY'
import hashlib, os, stat, sys
root, prefixes = sys.argv[1], tuple(sys.argv[2].split(","))
out = []
for d, dirs, files in os.walk(root, onerror=lambda e: sys.exit("walk: %s" % e)):
    dirs[:] = [x for x in dirs if x != ".quorumfs"]
    for n in sorted(dirs + files):
        p = os.path.join(d, n)
        st = os.lstat(p)
        rel = os.path.relpath(p, root)
        extra = ""
        if stat.S_ISREG(st.st_mode):
            h = hashlib.sha256()
            with open(p, "rb") as f:
                for b in iter(lambda: f.read(1 << 20), b""):
                    h.update(b)
            extra = h.hexdigest()
            if st.st_nlink > 1:
                extra += " nlink=%d" % st.st_nlink
        elif stat.S_ISLNK(st.st_mode):
            extra = os.readlink(p)
        xs = []
        if not stat.S_ISLNK(st.st_mode) and not stat.S_ISFIFO(st.st_mode):
            for x in sorted(os.listxattr(p)):
                if x.startswith(prefixes):
                    xs.append(x + "=" + os.getxattr(p, x).hex())
        size = st.st_size if not stat.S_ISDIR(st.st_mode) else 0
        out.append("%s %o %o %d:%d %d %d %s %s" % (rel, stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode),
                   st.st_uid, st.st_gid, size, st.st_mtime_ns, extra, ",".join(xs)))
print("\n".join(sorted(out)))
PY
}
ALLX=user.,system.posix_acl_
same() { # same WHAT EXPECTED ACTUAL
	cmp -s "$2" "$3" && return 0
	diff "$2" "$3" | head -n 20 >&2
	fail "$1"
}
rnd() { head -c "$2" /dev/urandom >"$1" || fail "write $1"; }

# --- 1. the old release writes
old_mount
mkdir "$MNT/t1" "$MNT/t2" || fail "mkdir tables (old)"
cd "$MNT/t1" || fail "cd"
: >empty
rnd small 100
rnd page 4096
rnd inl 60000
rnd chunky 200000           # > 128 KiB: several chunk items
rnd big $((3 * 1024 * 1024 + 17))
truncate -s 5M sparse || fail "truncate"
dd if=/dev/urandom of=sparse bs=1 seek=$((1024 * 1024)) count=5000 conv=notrunc status=none || fail "dd"
dd if=/dev/urandom of=sparse bs=4096 seek=900 count=30 conv=notrunc status=none || fail "dd"
mkdir -p d/e/f && rnd d/e/f/deep 150000 && rnd d/one 10
ln -s small sl && ln -s /no/such/target dangling || fail "symlink"
mkfifo fifo || fail "mkfifo"
setfattr -n user.k -v value small && setfattr -n user.bin -v 0x00ff10 chunky || fail "setfattr"
setfacl -m u:1000:rw-,g:100:r-- page || fail "setfacl"
setfacl -d -m u:1000:rwx d || fail "setfacl -d"
chmod 4750 inl && chmod 600 big && chown 1000:100 chunky || fail "chmod/chown"
touch -h -d '2001-02-03 04:05:06.123456789' sl && touch -d '1999-12-31 23:59:59.5' small || fail "touch"
cd "$MNT/t2" || fail "cd"
for i in 1 2 3 4 5; do rnd "f$i" $((i * 40000)); done
mkdir sub && rnd sub/x 70000
cd /
lag0 || fail "the old release's archive does not catch up"
TA=$(date +%s.%N)
describe "$MNT" "$ALLX" >"$T/d1" || fail "describe (old)"
grep -q system.posix_acl_access "$T/d1" && grep -q system.posix_acl_default "$T/d1" ||
	fail "the ACLs are not in the description (listxattr)"
describe "$MNT/t1" user. >"$T/d1.t1"
describe "$MNT/t2" user. >"$T/d1.t2"
qfs_umount
note "old release wrote $(wc -l <"$T/d1") entries"

# --- 2. the current release reads it and writes more
new_mount
describe "$MNT" "$ALLX" >"$T/d1b" || fail "describe after upgrade"
same "the current release does not read the old release's tree as written" "$T/d1" "$T/d1b"
cd "$MNT/t1" || fail "cd"
ln chunky hard || fail "hard link (version-2 txn)"
rnd new 300000                        # version-2 inode item
rnd small 777                         # overwrite an old file
# old inline files above QFS_INLINE_MAX (3072) written again: their bytes
# move to chunk 0 (doc/format-items.md)
cp inl "$T/inl.want" && head -c 5000 /dev/urandom | tee -a "$T/inl.want" >>inl || fail "append to inl"
cmp inl "$T/inl.want" || fail "an old 60000-byte inline file appended to reads back wrong"
head -c 3500 page >"$T/page.want" && truncate -s 3500 page || fail "truncate page"
cmp page "$T/page.want" || fail "an old 4096-byte inline file truncated to 3500 bytes reads back wrong"
# fallocate ZERO_RANGE on an old 40000-byte inline file: inside with
# KEEP_SIZE (a punch of its inline bytes), then past the end (cut at the
# offset and grown: its bytes move to chunk 0)
f1=$MNT/t2/f1
cp "$f1" "$T/f1.old" || fail "cp t2/f1"
{ head -c 1000 "$T/f1.old"; head -c 2000 /dev/zero; tail -c +3001 "$T/f1.old" | head -c 27000
  head -c 100000 /dev/zero; } >"$T/f1.want"
fallocate -z -n -o 1000 -l 2000 "$f1" && fallocate -z -o 30000 -l 100000 "$f1" ||
	fail "fallocate -z on an old inline file"
cmp "$f1" "$T/f1.want" || fail "an old 40000-byte inline file zeroed by fallocate -z reads back wrong"
rm d/one || fail "unlink (a version-2 txn: LINK_DROP)"
setfattr -n user.k2 -v more page || fail "setfattr (new)"
mkdir "$MNT/t3" && rnd "$MNT/t3/z" 140000 || fail "new table"
cd /
[ "$(stat -c %h "$MNT/t1/chunky")" = 2 ] || fail "hard link count"
lag0 || fail "the current release's archive does not catch up"
describe "$MNT" "$ALLX" >"$T/d2" || fail "describe (new)"
describe "$MNT/t1" user. >"$T/d2.t1"
qfs_umount
grep -qx 'quorumfs-data 4' "$DATA/FORMAT" || fail "FORMAT after the current release: $(cat "$DATA/FORMAT")"
grep -q 'data directory format upgraded .*from=[23] to=4' "$T/daemon.out" || fail "no log line for the FORMAT upgrade"

# refused BIN PATTERN WHAT: mounting DATA with BIN must fail at once (exit
# non-zero, nothing mounted, DATA/FORMAT unchanged) with a line matching
# PATTERN on its output
refused() {
	local bin=$1 pat=$2 what=$3 pid before
	before=$(cat "$DATA/FORMAT")
	"$bin" mount -f -o $OPTS "$DATA" "$MNT" >"$T/refused.out" 2>&1 &
	pid=$!
	for _ in $(seq 100); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
	if kill -0 $pid 2>/dev/null; then
		QFS_PID=$pid
		fail "$what: it mounted (doc/compat.md says it refuses)"
	fi
	wait $pid && fail "$what: exit status 0"
	mountpoint -q "$MNT" && fail "$what: a mount is left behind"
	[ "$(cat "$DATA/FORMAT")" = "$before" ] || fail "$what: FORMAT changed"
	grep -q "$pat" "$T/refused.out" || { cat "$T/refused.out" >&2; fail "$what: no line naming the format"; }
	note "$what: $(grep -m1 "$pat" "$T/refused.out")"
}

# --- 3. downgrade: the old release must refuse, naming the format
refused "$OLD" 'unknown format.*content="quorumfs-data 4"' "old release on format 4"
new_mount
describe "$MNT" "$ALLX" >"$T/d2b" || fail "describe after the refused downgrade"
same "the tree changed after the old release's refused mount" "$T/d2" "$T/d2b"
qfs_umount

# --- 4. the current release restores from the archive the old one wrote
for t in t1 t2; do
	"$NEW" restore --data "$DATA" --table $t --time "@$TA" --to "$T/r-$t" >>"$T/restore.out" 2>&1 ||
		{ cat "$T/restore.out" >&2; fail "restore $t as of the old release's writes"; }
	describe "$T/r-$t" user. >"$T/r-$t.d"
	same "restore of $t (old archive) differs" "$T/d1.$t" "$T/r-$t.d"
done
"$NEW" restore --data "$DATA" --table t1 --time latest --to "$T/r-now" >>"$T/restore.out" 2>&1 ||
	{ cat "$T/restore.out" >&2; fail "restore t1 latest (old and new log)"; }
describe "$T/r-now" user. >"$T/r-now.d"
same "restore of t1 latest (old and new log) differs" "$T/d2.t1" "$T/r-now.d"

# --- 5. the way back (doc/compat.md): the old release restores from the
# archive as of before the upgrade; after it, it refuses the new items
"$OLD" restore --data "$DATA" --table t1 --time "@$TA" --to "$T/o-t1" >>"$T/restore.out" 2>&1 ||
	{ cat "$T/restore.out" >&2; fail "old release: restore t1 as of before the upgrade"; }
describe "$T/o-t1" user. >"$T/o-t1.d"
same "old release: restore of t1 as of before the upgrade differs" "$T/d1.t1" "$T/o-t1.d"
if "$OLD" restore --data "$DATA" --table t1 --time latest --to "$T/o-now" >"$T/o-now.out" 2>&1; then
	fail "old release restored t1 with the current release's items (doc/compat.md says it refuses)"
fi
grep -qi 'format' "$T/o-now.out" || { cat "$T/o-now.out" >&2; fail "old release's restore refusal does not name the format"; }
note "old release's restore of the new log refuses: $(grep -i -m1 format "$T/o-now.out")"

# --- 6. the current release refuses a format it does not know, and makes
# format 4 in a new data directory
echo "quorumfs-data 5" >"$DATA/FORMAT"
refused "$NEW" 'unknown format.*"quorumfs-data 5"' "current release on format 5"
mkdir "$T/fresh"
DATA=$T/fresh new_mount
qfs_umount
grep -qx 'quorumfs-data 4' "$T/fresh/FORMAT" || fail "a new data directory has FORMAT $(cat "$T/fresh/FORMAT")"
note "upgrade, refused downgrade and restore of the old archive: ok"
exit 0
