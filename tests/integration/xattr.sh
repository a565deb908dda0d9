#!/bin/bash
# tests/integration/xattr.sh - extended attributes: user./trusted./security.
# set/get/list/remove, system.* refused, size limits (E2BIG, ENOSPC),
# ERANGE, ENODATA, XATTR_CREATE/REPLACE, dirs/symlinks/fifos, and that
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

qfs_umount
qfs_mount
python3 "$PY" "$MNT" verify || fail "xattr.py verify: xattrs lost or changed across the remount"
v=$(getfattr --only-values -n user.hex "$F" | od -An -tx1 | tr -d ' \n')
[ "$v" = 00ff10 ] || fail "user.hex after remount: got '$v', expected 00ff10"
qfs_umount
