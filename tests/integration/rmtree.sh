#!/bin/bash
# tests/integration/rmtree.sh - rm -rf's requests (doc/fs.md "Kernel
# caches", "The dentry an unlink removes from a hint"; doc/perf.md AFTER
# 45), counted from .quorumfs/stats:
#  1. a listing after a remount gives each entry's attributes (one store
#     read each): stat of every entry then asks the daemon nothing;
#  2. a listing of entries the kernel already holds (rm -rf lists every
#     directory twice) reads no attributes from the store: the entries
#     come with ino 0 and the kernel keeps its own, which stay exact
#     (sizes, modes, link counts after a hard link went, a chmod);
#  3. rmdir takes the dentry from the name hint: no store read, one txn;
#     its errors stay those of a read (ENOTEMPTY, ENOTDIR, ENOENT), and a
#     name removed then made again is the new directory;
#  4. rm -rf of a tree after a remount: one txn per entry, at most ~1.1
#     store reads per entry (2.2 before), nothing left after a remount,
#     a hard link's other name keeps its data and gets nlink 1.
. "$QFS_SRCDIR/tests/lib/common.sh"
qfs_kcache_hold "$@" # no drop_caches of a test beside this one while it counts
export LC_ALL=C LANG=C
qfs_require python3
qfs_setup
echo "$QFS_PID" >"$T/daemon.pid"
watchdog 180

# snap FILE: a copy of .quorumfs/stats; cnt WHAT [FILE]: a counter of it
# (get, txn: table b's; else a FUSE op), from FILE or read now
snap() { cat "$MNT/.quorumfs/stats" >"$1" || fail "read stats"; }
cnt() {
	awk -v w="$1" '($1 == "table" && $2 == "b" && $3 == "op" && $4 == w) || ($1 == "op" && $2 == w) { n = ($1 == "op" ? $4 : $6) }
		END { print n + 0 }' "${2:-$MNT/.quorumfs/stats}"
}
remount() { qfs_umount; mount_again; }

mkdir "$MNT/b" || fail "mkdir table b"
R=$MNT/b/r
mkdir -p "$R/s1" "$R/s2" "$R/s3/deep/er" || fail "mkdir"
for s in s1 s2 s3 s3/deep s3/deep/er; do
	for i in $(seq 20); do printf '%s-%d' "$s" "$i" >"$R/$s/f$i" || fail "create $s/f$i"; done
done
ln "$R/s1/f1" "$R/s2/link1" || fail "ln"
ln -s f2 "$R/s1/sym" || fail "symlink"
chmod 600 "$R/s1/f3" || fail "chmod"
ENTRIES=$(find "$R" | wc -l)
remount

# 1. the first listing after a remount gives the attributes
g0=$(cnt get)
ls -f "$R/s1" >/dev/null || fail "ls s1"
g1=$(cnt get)
[ $((g1 - g0)) -ge 20 ] || fail "1: the first listing of s1 read $((g1 - g0)) inodes, expected one per entry"
snap "$T/s0"; snap "$T/s1" # the second: what reading the stats costs
before=$(cd "$R/s1" && stat -c '%n %s %a %h %i' -- *) || fail "1: stat"
snap "$T/s2"
for op in lookup getattr; do # (a getattr: the directory's, for the cd)
	n=$(($(cnt $op "$T/s2") - 2 * $(cnt $op "$T/s1") + $(cnt $op "$T/s0")))
	[ "$n" -le $([ $op = getattr ] && echo 1 || echo 0) ] || fail "1: stat after the listing made $n ${op}s"
done
note "1: first listing: $((g1 - g0)) store reads; stat of its entries: no request"

# 2. a listing of entries the kernel holds reads no attributes
rm "$R/s2/link1" || fail "rm link1" # s1/f1: nlink 2 -> 1, through the kernel
chmod 640 "$R/s1/f4" || fail "chmod f4"
printf 'longer contents' >"$R/s1/f5" || fail "rewrite f5"
touch "$R/s1/new" || fail "touch new" # the kernel's listing of s1 is dropped
r0=$(cnt readdir) g0=$(cnt get)
ls -f "$R/s1" >/dev/null || fail "ls s1 again"
r1=$(cnt readdir) g1=$(cnt get)
[ $((r1 - r0)) -ge 1 ] || fail "2: the second listing did not reach the daemon (readdir $r0 -> $r1)"
[ $((g1 - g0)) -le 1 ] || fail "2: a listing of entries the kernel holds made $((g1 - g0)) store reads (at most 1: the directory)"
after=$(cd "$R/s1" && stat -c '%n %s %a %h %i' -- *) || fail "2: stat"
expect=$(echo "$before" | awk '$1 == "f1" { $4 = 1 } $1 == "f4" { $3 = 640 } $1 == "f5" { $2 = 15 } { print }'
	 echo "new 0 644 1 $(stat -c %i "$R/s1/new")")
[ "$after" = "$(echo "$expect" | sort)" ] || { printf 'got:\n%s\nexpected:\n%s\n' "$after" "$expect" >&2; fail "2: attributes after the second listing"; }
remount
stored=$(cd "$R/s1" && stat -c '%n %s %a %h %i' -- *) || fail "2: stat after remount"
[ "$stored" = "$after" ] || { printf 'mount:\n%s\nstore:\n%s\n' "$after" "$stored" >&2; fail "2: the kernel's attributes differ from the store's"; }
note "2: second listing: $((g1 - g0)) store reads; attributes exact"

# 3. rmdir by hint, and its errors
mkdir "$R/e1" "$R/e2" "$R/ne" || fail "mkdir e1 e2 ne"
touch "$R/ne/x" || fail "touch ne/x"
ls -f "$R" >/dev/null
g0=$(cnt get) t0=$(cnt txn)
rmdir "$R/e1" || fail "3: rmdir e1"
[ "$(cnt get)" -eq "$g0" ] || fail "3: rmdir of a listed directory read the store ($g0 -> $(cnt get))"
[ "$(cnt txn)" -eq $((t0 + 1)) ] || fail "3: rmdir cost $(($(cnt txn) - t0)) txns"
python3 - "$R" <<'PY' || fail "3: rmdir errors"
import errno, os, sys
r = sys.argv[1]
def err(f, *a):
    try:
        f(*a)
    except OSError as e:
        return e.errno
    return 0
assert err(os.rmdir, r + "/ne") == errno.ENOTEMPTY
assert err(os.rmdir, r + "/s1/f2") == errno.ENOTDIR
assert err(os.rmdir, r + "/e1") == errno.ENOENT
os.rename(r + "/e2", r + "/e3")
os.mkdir(r + "/e2")
open(r + "/e2/in", "w").close()
assert err(os.rmdir, r + "/e2") == errno.ENOTEMPTY  # the new one, not the moved one
os.rmdir(r + "/e3")
os.unlink(r + "/e2/in")
os.rmdir(r + "/e2")
assert not os.path.exists(r + "/e2") and not os.path.exists(r + "/e3")
PY
note "3: rmdir: no store read, one txn; errors exact"

# 4. rm -rf after a remount
rm -rf "$R/ne" || fail "rm ne"
ln "$R/s3/f1" "$MNT/b/keep" || fail "ln keep"
ENTRIES=$(find "$R" | wc -l)
remount
g0=$(cnt get) t0=$(cnt txn)
rm -rf "$R" || fail "4: rm -rf"
g1=$(cnt get) t1=$(cnt txn)
[ $((t1 - t0)) -eq "$ENTRIES" ] || fail "4: rm -rf of $ENTRIES entries cost $((t1 - t0)) txns"
[ $((g1 - g0)) -le $((ENTRIES * 11 / 10 + 2)) ] || fail "4: rm -rf of $ENTRIES entries made $((g1 - g0)) store reads"
remount
[ ! -e "$R" ] || fail "4: $R is back after a remount"
[ "$(stat -c "%h %s" "$MNT/b/keep")" = "1 4" ] && [ "$(cat "$MNT/b/keep")" = "s3-1" ] || fail "4: the other name of a hard link"
note "4: rm -rf of $ENTRIES entries: $((t1 - t0)) txns, $((g1 - g0)) store reads"
echo "PASS"
