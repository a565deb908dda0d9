#!/bin/bash
# tests/integration/acl.sh - POSIX ACLs through setfacl/getfacl, enforced by
# the kernel for non-root users (FUSE_CAP_POSIX_ACL), mode bits and ACL mask
# kept in step both ways, default ACLs inherited by new files and
# directories, malformed values refused, cp -a and rsync -aAX of an ACL'd
# tree exact (second rsync pass empty), and trusted.* hidden from and
# refused to non-root while security.* is kept.

. "$QFS_SRCDIR/tests/lib/common.sh"
export LC_ALL=C LANG=C TZ=UTC
qfs_require setfacl getfacl setpriv rsync python3 getfattr setfattr
qfs_setup

U1=4211 G1=4211 U2=4212 G2=4212

as() { # as UID GID cmd...
	local u=$1 g=$2
	shift 2
	setpriv --reuid="$u" --regid="$g" --clear-groups -- sh -c 'umask 022; exec "$@"' sh "$@"
}
allow() { local what=$1; shift; as "$@" >"$T/out" 2>&1 || fail "$what: expected success: $(head -c 300 "$T/out")"; echo "ok   $what"; }
deny() {
	local msg=$1 what=$2
	shift 2
	if as "$@" >"$T/out" 2>&1; then fail "$what: expected '$msg', it succeeded"; fi
	grep -q "$msg" "$T/out" || fail "$what: expected '$msg', got: $(head -c 300 "$T/out")"
	echo "ok   $what -> $msg"
}
eq() { [ "$1" = "$2" ] || fail "$3: got '$1', expected '$2'"; echo "ok   $3"; }
acl_of() { getfacl -cp "$1" 2>/dev/null | grep -v '^$' | tr '\t' ' '; }

echo secret >"$T/l" && chmod 600 "$T/l"
as $U1 $G1 cat "$T/l" >/dev/null 2>&1 && skip "setpriv'ed uid can read a root 0600 file"

A=$MNT/acl
mkdir "$A" && chmod 755 "$A" || fail "mkdir table"
head -c 5000 /dev/urandom >"$A/f" && chmod 600 "$A/f" || fail "create f"

# --- an ACL grants what the mode bits deny
deny "Permission denied" "u1 reads a 0600 root file" $U1 $G1 cat "$A/f"
setfacl -m u:$U1:r "$A/f" || fail "setfacl -m u:$U1:r"
eq "$(acl_of "$A/f" | tr '\n' ' ')" "user::rw- user:$U1:r-- group::--- mask::r-- other::--- " "getfacl after setfacl -m"
eq "$(stat -c %a "$A/f")" "640" "the mask shows as the group bits"
allow "u1 reads through its ACL entry" $U1 $G1 cat "$A/f"
deny "Permission denied" "u2 (no entry) still refused" $U2 $G2 cat "$A/f"
deny "Permission denied" "u1 may not write (r only)" $U1 $G1 sh -c "echo x >>'$A/f'"
# --- chmod keeps the mask in step: g-r masks the named entry
chmod 600 "$A/f" || fail "chmod 600"
eq "$(acl_of "$A/f" | grep '^mask')" "mask::---" "chmod 600 sets the mask to ---"
deny "Permission denied" "u1 refused once chmod masked its entry" $U1 $G1 cat "$A/f"
chmod 640 "$A/f"
allow "u1 reads again after chmod 640" $U1 $G1 cat "$A/f"
# --- and the mode bits can deny what group membership would give
head -c 100 /dev/urandom >"$A/g" && chgrp $G1 "$A/g" && chmod 644 "$A/g"
setfacl -m u:$U1:--- "$A/g" || fail "setfacl u1:---"
deny "Permission denied" "u1's empty entry denies despite other::r" $U1 $G1 cat "$A/g"
allow "u2 reads as other" $U2 $G2 cat "$A/g"
# --- removing the ACL
setfacl -b "$A/f" || fail "setfacl -b"
eq "$(getfattr -m - -d "$A/f" 2>/dev/null | grep -c posix_acl)" "0" "setfacl -b removes the xattr"
deny "Permission denied" "u1 refused after setfacl -b" $U1 $G1 cat "$A/f"
# an ACL that says no more than the mode is not stored, only the mode changes
setfacl -m u::rwx,g::r-x,o::r-- "$A/f" || fail "setfacl base entries"
eq "$(stat -c %a "$A/f")" "754" "a base-entries ACL sets the mode"
eq "$(getfattr -m - -d "$A/f" 2>/dev/null | grep -c posix_acl)" "0" "... and is not stored"

# --- default ACL inheritance
mkdir "$A/d" && chmod 755 "$A/d"
setfacl -d -m u:$U1:rwx,g::r-x,o::--- "$A/d" || fail "setfacl -d"
umask 022
touch "$A/d/newf" && mkdir "$A/d/newd" || fail "create in d"
eq "$(acl_of "$A/d/newf" | tr '\n' ' ')" "user::rw- user:$U1:rwx #effective:rw- group::r-x #effective:r-- mask::rw- other::--- " "new file inherits the default ACL (umask ignored, mode 0666 masks it)"
eq "$(stat -c %a "$A/d/newf")" "660" "new file mode from the default ACL"
eq "$(acl_of "$A/d/newd" | grep -c '^default:')" "5" "new dir inherits the default ACL as its default"
eq "$(acl_of "$A/d/newd" | grep -v '^default:' | tr '\n' ' ')" "user::rwx user:$U1:rwx group::r-x mask::rwx other::--- " "new dir's access ACL"
eq "$(stat -c %a "$A/d/newd")" "770" "new dir mode"
allow "u1 writes a file in the inherited dir" $U1 $G1 sh -c "echo hi >'$A/d/newd/byu1'"
deny "Permission denied" "u2 refused in the inherited dir" $U2 $G2 ls "$A/d/newd"
mkdir "$A/plain" && (umask 077; touch "$A/plain/x"; mkdir "$A/plain/y")
eq "$(stat -c %a "$A/plain/x") $(stat -c %a "$A/plain/y")" "600 700" "without a default ACL the umask applies"
ln -s target "$A/d/lnk" && eq "$(stat -c %a "$A/d/lnk")" "777" "symlink ignores the default ACL"
deny "Operation not permitted" "a non-owner may not set an ACL" $U1 $G1 setfacl -m u:$U1:rw "$A/g"

# --- malformed values: EINVAL (bad version: EOPNOTSUPP as the kernel says)
python3 - "$A/f" <<'PY' || fail "malformed ACL values"
import errno, os, struct, sys
p = sys.argv[1]
def ent(tag, perm, id=0xffffffff): return struct.pack('<HHI', tag, perm, id)
hdr = struct.pack('<I', 2)
cases = {
    'short': b'\x02\x00',
    'ragged': hdr + b'\x01\x00\x06',
    'no other': hdr + ent(1, 6) + ent(4, 4),
    'named without mask': hdr + ent(1, 6) + ent(2, 4, 5) + ent(4, 4) + ent(0x20, 4),
    'bad perm': hdr + ent(1, 8) + ent(4, 4) + ent(0x20, 4),
    'out of order': hdr + ent(4, 4) + ent(1, 6) + ent(0x20, 4),
    'duplicate user': hdr + ent(1, 6) + ent(2, 4, 5) + ent(2, 4, 5) + ent(4, 4) + ent(0x10, 4) + ent(0x20, 4),
    'bad tag': hdr + ent(1, 6) + ent(4, 4) + ent(0x40, 4) + ent(0x20, 4),
}
for name, v in cases.items():
    try:
        os.setxattr(p, 'system.posix_acl_access', v)
        sys.exit('%s: accepted' % name)
    except OSError as e:
        if e.errno != errno.EINVAL:
            sys.exit('%s: errno %s, expected EINVAL' % (name, errno.errorcode[e.errno]))
    print('ok   malformed ACL (%s) -> EINVAL' % name)
try:
    os.setxattr(p, 'system.posix_acl_access', struct.pack('<I', 3) + ent(1, 6) + ent(4, 4) + ent(0x20, 4))
    sys.exit('version 3 accepted')
except OSError as e:
    if e.errno != errno.EOPNOTSUPP:
        sys.exit('version 3: %s' % errno.errorcode[e.errno])
print('ok   ACL version 3 -> EOPNOTSUPP')
try:
    os.setxattr(p, 'system.posix_acl_default', hdr + ent(1, 6) + ent(4, 4) + ent(0x20, 4))
    sys.exit('default ACL on a file accepted')
except OSError as e:
    if e.errno != errno.EACCES:
        sys.exit('default ACL on a file: %s' % errno.errorcode[e.errno])
print('ok   default ACL on a file -> EACCES')
try:
    os.setxattr(p, 'system.other', b'x'); sys.exit('system.other accepted')
except OSError as e:
    if e.errno != errno.EOPNOTSUPP: sys.exit('system.other: %s' % errno.errorcode[e.errno])
print('ok   system.other -> EOPNOTSUPP')
PY

# --- cp -a and rsync -aAX of an ACL'd tree
S=$A/src
mkdir -p "$S/sub" && head -c 300000 /dev/urandom >"$S/big" && echo small >"$S/sub/s"
setfacl -m u:$U1:rw,g:$G2:r "$S/big" && setfacl -m u:$U2:rwx "$S/sub" && setfacl -d -m u:$U1:r-x "$S/sub"
setfattr -n user.k -v v "$S/sub/s"
snap() { (cd "$1" && getfacl -R -p big sub 2>/dev/null) ; }
cp -a "$S" "$A/cpa" || fail "cp -a of an ACL'd tree"
eq "$(snap "$A/cpa" | md5sum)" "$(snap "$S" | md5sum)" "cp -a copies the ACLs exactly"
cmp "$S/big" "$A/cpa/big" || fail "cp -a bytes"
B=$T/backup
mkdir "$B"
rsync -aAX "$S/" "$B/" || fail "rsync -aAX out of the mount"
snap "$B" >"$T/b.acl"; snap "$S" >"$T/s.acl"
diff "$T/s.acl" "$T/b.acl" || fail "rsync -aAX mount -> local: ACLs differ"
echo "ok   rsync -aAX mount -> local exact"
rsync -aAX "$B/" "$A/back/" || fail "rsync -aAX into the mount"
eq "$(snap "$A/back" | md5sum)" "$(snap "$S" | md5sum)" "rsync -aAX local -> mount exact"
eq "$(rsync -aAXi "$B/" "$A/back/" | wc -l)" "0" "second rsync -aAX pass copies nothing"

# --- an ACL set after an ACL-equivalent chmod on a file being written
# (the chmod joins the write-back, which drops any access ACL) survives
# that write-back: the later ACL wins (checked again after the remount)
head -c 3000 /dev/urandom >"$A/wb"
# (one process holds the file open with buffered writes and sets both
# ACLs itself: setfacl would chmod instead of setting the equivalent one)
python3 - "$A/wb" "$U1" <<'PY' || fail "ACLs on a file being written"
import os, struct, sys
f, uid = sys.argv[1], int(sys.argv[2])
def acl(*ents):
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", t, p, i) for t, p, i in ents)
fd = os.open(f, os.O_WRONLY | os.O_APPEND)
os.write(fd, os.urandom(2000))
# no fork/exec here: a close of any copy of fd would write it back
os.setxattr(f, "system.posix_acl_access", acl((1, 6, 0xffffffff), (4, 4, 0xffffffff), (0x20, 0, 0xffffffff)))
os.setxattr(f, "system.posix_acl_access",
            acl((1, 6, 0xffffffff), (2, 6, uid), (4, 4, 0xffffffff), (0x10, 6, 0xffffffff), (0x20, 0, 0xffffffff)))
n = len(os.getxattr(f, "system.posix_acl_access"))
os.close(fd)
sys.exit(0 if n == 4 + 5 * 8 else "named ACL before the close: %d bytes" % n)
PY
eq "$(acl_of "$A/wb" | grep "^user:$U1")" "user:$U1:rw-" "the named ACL is there after the close"

# --- persisted across a remount
qfs_umount
mount_again
eq "$(acl_of "$A/d/newf" | grep "^user:$U1")" "user:$U1:rwx #effective:rw-" "ACL survives a remount"
eq "$(acl_of "$A/wb" | grep "^user:$U1")" "user:$U1:rw-" "the ACL set after a deferred chmod survives a remount"

# --- trusted.* is root's, security.* is kept
setfattr -n trusted.t -v secret "$A/g" || fail "root sets trusted.t"
setfattr -n security.s -v label "$A/g" || fail "root sets security.s"
eq "$(getfattr --only-values -n trusted.t "$A/g")" "secret" "root reads trusted.t"
eq "$(getfattr -m - -d "$A/g" 2>/dev/null | grep -c '^trusted.t=')" "1" "root lists trusted.t"
eq "$(as $U2 $G2 getfattr -m - -d "$A/g" 2>/dev/null | grep -c '^trusted')" "0" "non-root does not list trusted.*"
eq "$(as $U2 $G2 getfattr -m - -d "$A/g" 2>/dev/null | grep -c '^security.s=')" "1" "non-root lists security.*"
deny "No such attribute" "non-root reads trusted.t" $U2 $G2 getfattr -n trusted.t "$A/g"
chown $U1 "$A/g"
deny "Operation not permitted" "owner (non-root) sets trusted.x" $U1 $G1 setfattr -n trusted.x -v 1 "$A/g"
deny "Operation not permitted" "owner (non-root) removes trusted.t" $U1 $G1 setfattr -x trusted.t "$A/g"
echo "PASS"
