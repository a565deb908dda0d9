#!/bin/bash
# tests/integration/times.sh - timestamps and sizes: nanosecond utimens
# (also through touch/stat and cp -a), which operations move mtime/ctime of
# files and directories, no atime updates on read (noatime), st_size and
# st_blocks, the control tree's times, and that times survive an unmount
# and a remount.  Most checks in times.py.

. "$QFS_SRCDIR/tests/lib/common.sh"
export LC_ALL=C TZ=UTC
qfs_require python3
qfs_setup

PY="$QFS_SRCDIR/tests/integration/times.py"
python3 "$PY" "$MNT" main || fail "times.py main: some checks failed (see the FAIL lines above)"

D=$MNT/times
WANT='2001-02-03 04:05:06.123456789 +0000'
touch -d '2001-02-03 04:05:06.123456789' "$D/touched" || fail "touch -d"
got=$(stat -c %y "$D/touched")
[ "$got" = "$WANT" ] || fail "touch -d then stat -c %y: got '$got', expected '$WANT'"
got=$(stat -c %x "$D/touched")
[ "$got" = "$WANT" ] || fail "touch -d then stat -c %x (atime): got '$got', expected '$WANT'"
touch -m -d '2011-12-13 14:15:16.000000001' "$D/touched" || fail "touch -m -d"
got=$(stat -c '%x|%y' "$D/touched")
[ "$got" = "$WANT|2011-12-13 14:15:16.000000001 +0000" ] ||
	fail "touch -m changes mtime only: got '$got'"
echo "ok   touch -d / stat -c %y exact to the nanosecond"

head -c 200000 /dev/urandom >"$D/src" || fail "write src"
touch -d '1999-12-31 23:59:59.987654321' "$D/src"
chmod 640 "$D/src"
cp -a "$D/src" "$D/copy" || fail "cp -a inside the mount"
a=$(stat -c '%s %a %y' "$D/src") b=$(stat -c '%s %a %y' "$D/copy")
[ "$a" = "$b" ] || fail "cp -a did not preserve size/mode/mtime: '$a' vs '$b'"
cmp -s "$D/src" "$D/copy" || fail "cp -a copy differs from its source"
echo "ok   cp -a keeps size, mode and nanosecond mtime"

ctl_t0=$(stat -c %Y "$MNT/.quorumfs/status")
sleep 1.1
qfs_umount
qfs_mount
ctl_t1=$(stat -c %Y "$MNT/.quorumfs/status")
[ "$ctl_t1" -gt "$ctl_t0" ] || fail ".quorumfs/status mtime after remount $ctl_t1, before $ctl_t0: not the new mount time"
[ $(( $(date +%s) - ctl_t1 )) -lt 60 ] || fail ".quorumfs/status mtime $ctl_t1 is not the mount time (now $(date +%s))"
echo "ok   .quorumfs times are the mount time"
python3 "$PY" "$MNT" verify || fail "times.py verify: times changed across the remount"
got=$(stat -c '%x|%y' "$D/touched")
[ "$got" = "$WANT|2011-12-13 14:15:16.000000001 +0000" ] || fail "touched after remount: got '$got'"
b2=$(stat -c '%s %a %y' "$D/copy")
[ "$b2" = "$b" ] || fail "copy after remount: '$b2', before '$b'"
echo "ok   times exact after remount"
qfs_umount
