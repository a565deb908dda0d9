#!/bin/bash
# tests/integration/xattr.sh - extended attributes: user./trusted./security.
# set/get/list/remove, system.* refused, size limits (E2BIG, ENOSPC),
# ERANGE, ENODATA, XATTR_CREATE/REPLACE, dirs/symlinks/fifos, an absent
# security.selinux (EOPNOTSUPP; ls -l then stops asking), and that
# xattrs survive an unmount and a remount.  Checks live in xattr.py.

. "$QFS_SRCDIR/tests/lib/common.sh"
qfs_require python3 setfattr getfattr
qfs_setup

PY="$QFS_SRCDIR/tests/integration/xattr.py"
python3 "$PY" "$MNT" main || fail "xattr.py main: some checks failed (see the FAIL lines above)"

# the attr tools, as users and scripts call them
F=$MNT/xattr/cli
echo data >"$F" || fail "create $F"
setfattr -n user.cli -v hello "$F" || fail "setfattr -n user.cli"
v=$(getfattr --only-values -n user.cli "$F") || fail "getfattr -n user.cli"
[ "$v" = hello ] || fail "getfattr user.cli: got '$v', expected 'hello'"
setfattr -n user.hex -v 0x00ff10 "$F" || fail "setfattr hex value"
v=$(getfattr -e hex --only-values -n user.hex "$F" | od -An -tx1 | tr -d ' \n')
[ "$v" = 00ff10 ] || fail "hex value round trip: got '$v', expected 00ff10"
d=$(getfattr -d -m - "$F" 2>/dev/null | grep -c '^user\.') || true
[ "$d" = 2 ] || fail "getfattr -d -m - lists $d user.* names, expected 2"
getfattr -n user.none "$F" >/dev/null 2>"$T/err" && fail "getfattr of a missing name succeeded"
grep -q 'No such attribute' "$T/err" || fail "getfattr missing name: expected 'No such attribute', got: $(cat "$T/err")"
setfattr -x user.cli "$F" || fail "setfattr -x user.cli"
getfattr -n user.cli "$F" >/dev/null 2>&1 && fail "user.cli still there after setfattr -x"
note "attr tools ok"

# an absent security.selinux answers EOPNOTSUPP, as a FUSE mount answers on
# a host with SELinux on; `ls -l` then stops asking it of every file
# (coreutils caches "unsupported" per device), while the other security.*
# names are stored as before
S=$MNT/xattr/selinux
mkdir "$S" || fail "mkdir $S"
for i in $(seq 40); do head -c 100 /dev/urandom >"$S/f$i" || fail "create $S/f$i"; done
setfattr -n security.other -v kept "$S/f2" || fail "setfattr security.other"
# a label that is set is stored (rsync -X, tar --selinux of a labelled tree)
L=$MNT/xattr/labelled
head -c 100 /dev/urandom >"$L" || fail "create $L"
setfattr -n security.selinux -v system_u:object_r:tmp_t:s0 "$L" || fail "setfattr security.selinux"
v=$(getfattr --only-values -n security.selinux "$L") || fail "getfattr security.selinux of a labelled file"
[ "$v" = system_u:object_r:tmp_t:s0 ] || fail "security.selinux: got '$v'"
for f in f1 f2; do
	getfattr -n security.selinux "$S/$f" >/dev/null 2>"$T/err" && fail "getfattr security.selinux of $f succeeded"
	grep -q 'not supported' "$T/err" || fail "getfattr security.selinux of $f: expected EOPNOTSUPP, got: $(cat "$T/err")"
done
v=$(getfattr --only-values -n security.other "$S/f2") || fail "getfattr security.other"
[ "$v" = kept ] || fail "security.other: got '$v', expected 'kept'"
getxattrs() { awk '$1 == "op" && $2 == "getxattr" { print $4 }' "$MNT/.quorumfs/stats"; }
ls -l "$S" >/dev/null || fail "ls -l $S"
g0=$(getxattrs)
ls -l "$S" >"$T/ls" || fail "ls -l $S (second)"
g1=$(getxattrs)
[ "$(grep -c ' f[0-9]' "$T/ls")" = 40 ] || fail "ls -l lists $(grep -c ' f[0-9]' "$T/ls") files, expected 40"
[ $((g1 - g0)) -le 2 ] || fail "a warm ls -l of 40 files sent $((g1 - g0)) getxattr requests, expected at most 2"
note "security.selinux: stored when set, else EOPNOTSUPP; ls -l sent $((g1 - g0)) getxattr for 40 files"

qfs_umount
qfs_mount
python3 "$PY" "$MNT" verify || fail "xattr.py verify: xattrs lost or changed across the remount"
v=$(getfattr --only-values -n user.hex "$F" | od -An -tx1 | tr -d ' \n')
[ "$v" = 00ff10 ] || fail "user.hex after remount: got '$v', expected 00ff10"
qfs_umount
