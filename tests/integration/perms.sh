#!/bin/bash
# tests/integration/perms.sh - permission checks seen by non-root users.
#
# quorumfs mounts with allow_other + default_permissions when run as root,
# so the kernel checks modes against the owner, group and mode bits that
# quorumfs reports; this test drives real commands as throwaway numeric
# uids (no passwd entry needed with setpriv) and checks the errors users
# see (EACCES "Permission denied", EPERM "Operation not permitted"), owner
# and group of new files, sticky and setgid directories, the clearing of
# setuid/setgid bits, the utimensat permission rules, and that owners
# and modes survive a remount.

. "$QFS_SRCDIR/tests/lib/common.sh"
export LC_ALL=C LANG=C TZ=UTC
command -v setpriv >/dev/null 2>&1 || skip "setpriv (util-linux) is missing: no way to switch user"
qfs_setup

U1=4201 G1=4201 U2=4202 G2=4202 GX=4300

# as UID GID[,SUPPLEMENTARY] cmd...: run cmd as that user with umask 022
as() {
	local u=$1 g=${2%%,*} sup=
	[ "$2" != "$g" ] && sup=${2#*,}
	shift 2
	if [ -n "$sup" ]; then
		setpriv --reuid="$u" --regid="$g" --groups="$sup" -- sh -c 'umask 022; exec "$@"' sh "$@"
	else
		setpriv --reuid="$u" --regid="$g" --clear-groups -- sh -c 'umask 022; exec "$@"' sh "$@"
	fi
}

# deny MSG WHAT UID GID cmd...: the command must fail with MSG on stderr
deny() {
	local msg=$1 what=$2 u=$3 g=$4
	shift 4
	if as "$u" "$g" "$@" >"$T/out" 2>&1; then
		fail "$what: expected '$msg', but it succeeded"
	fi
	grep -q "$msg" "$T/out" || fail "$what: expected '$msg', got: $(head -c 300 "$T/out")"
	echo "ok   $what -> $msg"
}

# allow WHAT UID GID cmd...: the command must succeed
allow() {
	local what=$1 u=$2 g=$3
	shift 3
	as "$u" "$g" "$@" >"$T/out" 2>&1 || fail "$what: expected success, got: $(head -c 300 "$T/out")"
	echo "ok   $what"
}

# expect_stat FMT PATH WANT WHAT
expect_stat() {
	local got
	got=$(stat -c "$1" "$2" 2>&1) || fail "$4: stat $2 failed: $got"
	[ "$got" = "$3" ] || fail "$4: stat -c '$1' got '$got', expected '$3'"
	echo "ok   $4 ($got)"
}

# can we really drop privileges here?  (a root 0600 file outside the mount)
echo secret >"$T/local0600" && chmod 600 "$T/local0600"
if as $U1 $G1 cat "$T/local0600" >/dev/null 2>&1; then
	skip "a setpriv'ed uid $U1 can still read a root 0600 file (capabilities kept?)"
fi

P=$MNT/perms
mkdir "$P" || fail "mkdir table $P"
chmod 755 "$P"
printf 'root only\n' >"$P/secret" && chmod 600 "$P/secret" || fail "create secret"
printf 'public\n' >"$P/pub" && chmod 644 "$P/pub" || fail "create pub"
mkdir "$P/rootdir" && chmod 755 "$P/rootdir" || fail "mkdir rootdir"
mkdir "$P/udir" && chown $U1:$G1 "$P/udir" || fail "mkdir/chown udir"
expect_stat '%u:%g %a' "$P/udir" "$U1:$G1 755" "chown by root shows in stat"

# --- reading, writing, creating as a stranger
deny "Permission denied" "read a 0600 root file" $U1 $G1 cat "$P/secret"
allow "read a 0644 root file" $U1 $G1 cat "$P/pub"
deny "Permission denied" "append to a 0644 root file" $U1 $G1 sh -c "echo x >>'$P/pub'"
deny "Permission denied" "truncate-open a 0644 root file" $U1 $G1 sh -c ": >'$P/pub'"
deny "Permission denied" "truncate(2) a 0644 root file" $U1 $G1 truncate -s 0 "$P/pub"
[ "$(cat "$P/pub")" = public ] || fail "pub changed by refused writes: '$(cat "$P/pub")'"
deny "Permission denied" "create in a 0755 root dir" $U1 $G1 touch "$P/rootdir/new"
deny "Permission denied" "mkdir in a 0755 root dir" $U1 $G1 mkdir "$P/rootdir/d"
deny "Permission denied" "unlink in a 0755 root dir" $U1 $G1 rm -f "$P/pub"
deny "Permission denied" "rename in a 0755 root dir" $U1 $G1 mv "$P/pub" "$P/pub2"
[ -e "$P/rootdir/new" ] && fail "rootdir/new exists after a refused create"
[ -e "$P/pub" ] || fail "pub vanished after a refused unlink"
allow "list a 0755 root dir" $U1 $G1 ls "$P/rootdir"
rootmode=$(stat -c %a "$MNT")
if [ $((0$rootmode & 2)) -eq 0 ]; then
	deny "Permission denied" "create a table as non-root (root mode $rootmode)" $U1 $G1 mkdir "$MNT/usertable"
fi

# --- a directory the user owns
allow "create in own dir" $U1 $G1 sh -c "echo hi >'$P/udir/f'"
[ "$(cat "$P/udir/f")" = hi ] || fail "content written by the user: '$(cat "$P/udir/f")'"
expect_stat '%u:%g %a' "$P/udir/f" "$U1:$G1 644" "new file owned by its creator, mode from umask"
allow "mkdir in own dir" $U1 $G1 mkdir "$P/udir/sub"
expect_stat '%u:%g %a' "$P/udir/sub" "$U1:$G1 755" "new dir owned by its creator"
allow "rename in own dir" $U1 $G1 mv "$P/udir/f" "$P/udir/g"
allow "chmod own file" $U1 $G1 chmod 600 "$P/udir/g"
expect_stat '%a' "$P/udir/g" 600 "mode after the owner's chmod"
deny "Permission denied" "other user reads a 0600 file of U1" $U2 $G2 cat "$P/udir/g"
allow "chmod 000 own file" $U1 $G1 chmod 000 "$P/udir/g"
deny "Permission denied" "owner reads own mode-000 file" $U1 $G1 cat "$P/udir/g"
[ "$(cat "$P/udir/g")" = hi ] || fail "root cannot read a mode-000 file"
echo "ok   root reads a mode-000 file"
allow "chmod back" $U1 $G1 chmod 644 "$P/udir/g"
printf '#!/bin/sh\necho ran\n' >"$P/udir/script" && chown $U1:$G1 "$P/udir/script" && chmod 644 "$P/udir/script"
deny "Permission denied" "execute a 0644 script" $U1 $G1 "$P/udir/script"
allow "chmod +x own script" $U1 $G1 chmod 755 "$P/udir/script"
out=$(as $U1 $G1 "$P/udir/script" 2>&1) || fail "execute a 0755 script: $out"
[ "$out" = ran ] || fail "script output '$out', expected 'ran'"
echo "ok   execute a 0755 script"
allow "unlink in own dir" $U1 $G1 rm "$P/udir/g"
allow "rmdir in own dir" $U1 $G1 rmdir "$P/udir/sub"

# --- chmod/chown of files the user does not own
deny "Operation not permitted" "chmod a root file" $U1 $G1 chmod 666 "$P/pub"
deny "Operation not permitted" "chown a root file to self" $U1 $G1 chown $U1 "$P/pub"
deny "Operation not permitted" "chgrp a root file" $U1 $G1 chgrp $G1 "$P/pub"
deny "Operation not permitted" "set times of a root file" $U1 $G1 touch -c -d '2001-01-01' "$P/pub"
expect_stat '%u:%g %a' "$P/pub" "0:0 644" "root file unchanged after refused chmod/chown"
allow "create own file" $U1 $G1 touch "$P/udir/own"
deny "Operation not permitted" "give own file away" $U1 $G1 chown $U2 "$P/udir/own"
deny "Operation not permitted" "chgrp own file to a foreign group" $U1 $G1 chgrp $GX "$P/udir/own"
allow "chgrp own file to a supplementary group" $U1 $G1,$GX chgrp $GX "$P/udir/own"
expect_stat '%u:%g' "$P/udir/own" "$U1:$GX" "group after chgrp by the owner"
allow "set times of own file" $U1 $G1 touch -c -d '2001-02-03 04:05:06' "$P/udir/own"
expect_stat '%Y' "$P/udir/own" "$(TZ=UTC0 date -d '2001-02-03 04:05:06 UTC' +%s)" "mtime set by the owner"

# --- chown by root
chown $U1:$G2 "$P/pub" || fail "root chown $U1:$G2 pub"
expect_stat '%u:%g' "$P/pub" "$U1:$G2" "chown by root"
allow "new owner may chmod" $U1 $G1 chmod 640 "$P/pub"
expect_stat '%a' "$P/pub" 640 "mode set by the new owner"
chown $U2 "$P/pub" || fail "root chown $U2 pub"
expect_stat '%u:%g' "$P/pub" "$U2:$G2" "chown of the owner only keeps the group"

# --- group permission bits
printf 'group secret\n' >"$P/grp" && chown 0:$GX "$P/grp" && chmod 640 "$P/grp" || fail "create grp"
deny "Permission denied" "read a 0640 file without its group" $U1 $G1 cat "$P/grp"
out=$(as $U1 $G1,$GX cat "$P/grp" 2>&1) || fail "read a 0640 file as a group member: $out"
[ "$out" = "group secret" ] || fail "group member read '$out'"
echo "ok   read a 0640 file as a group member"

# --- sticky directory
mkdir "$P/tmp" && chmod 1777 "$P/tmp" || fail "mkdir sticky dir"
expect_stat '%a' "$P/tmp" 1777 "sticky dir mode"
allow "U2 creates in the sticky dir" $U2 $G2 sh -c "echo b >'$P/tmp/b2'"
echo r >"$P/tmp/r" && chmod 666 "$P/tmp/r"
deny "Operation not permitted" "U1 unlinks U2's file in a sticky dir" $U1 $G1 rm -f "$P/tmp/b2"
deny "Operation not permitted" "U1 renames U2's file in a sticky dir" $U1 $G1 mv "$P/tmp/b2" "$P/tmp/x"
deny "Operation not permitted" "U1 unlinks root's file in a sticky dir" $U1 $G1 rm -f "$P/tmp/r"
[ -e "$P/tmp/b2" ] && [ -e "$P/tmp/r" ] || fail "files vanished after refused sticky unlinks"
allow "U1 creates and removes its own file in the sticky dir" $U1 $G1 sh -c "echo a >'$P/tmp/a1' && rm '$P/tmp/a1'"
allow "U2 removes its own file in the sticky dir" $U2 $G2 rm "$P/tmp/b2"

# --- setgid directory
mkdir "$P/sg" && chgrp $GX "$P/sg" && chmod 2775 "$P/sg" || fail "mkdir setgid dir"
expect_stat '%g %a' "$P/sg" "$GX 2775" "setgid dir"
touch "$P/sg/rootfile" || fail "create in setgid dir"
expect_stat '%u:%g' "$P/sg/rootfile" "0:$GX" "file created by root inherits the setgid dir's group"
mkdir "$P/sg/sub" || fail "mkdir in setgid dir"
expect_stat '%g %a' "$P/sg/sub" "$GX 2755" "subdir inherits group and the setgid bit"
allow "group member creates in the setgid dir" $U1 $G1,$GX touch "$P/sg/userfile"
expect_stat '%u:%g' "$P/sg/userfile" "$U1:$GX" "user's file inherits the setgid dir's group"
touch "$P/sg/sub/deep" || fail "create in the inherited setgid subdir"
expect_stat '%g' "$P/sg/sub/deep" "$GX" "setgid propagates through the subdir"

# --- setuid/setgid bits: Linux (ext4) clears S_ISUID, and S_ISGID when the
# group may execute, on a write or truncate by a non-owner, on any chown of
# a regular file (root's too), and drops S_ISGID from a chmod by an owner
# outside the file's group (pjdfstest chown/00.t, chmod/12.t)
printf 'x\n' >"$P/suidw" && chmod 6777 "$P/suidw" || fail "create suidw"
allow "U1 appends to a 6777 root file" $U1 $G1 sh -c "echo y >>'$P/suidw'"
expect_stat '%a' "$P/suidw" 777 "a non-owner's write clears setuid and setgid"
printf 'x\n' >"$P/suidt" && chmod 6777 "$P/suidt" || fail "create suidt"
allow "U1 truncates a 6777 root file" $U1 $G1 truncate -s 1 "$P/suidt"
expect_stat '%a %s' "$P/suidt" "777 1" "a non-owner's truncate clears setuid and setgid"
# open(O_TRUNC) (the shell's >) too: with atomic O_TRUNC the kernel leaves
# the bits to quorumfs (fs/ops.c trunc_drop_ids_locked)
for f in suido sgio sgno sgmo suidr; do
	printf 'x\n' >"$P/$f" || fail "create $f"
done
chmod 6777 "$P/suido" "$P/suidr" && chmod 2777 "$P/sgio" && chmod 2666 "$P/sgno" "$P/sgmo" &&
	chgrp $GX "$P/sgmo" || fail "chmod the O_TRUNC files"
allow "U1 opens a 6777 root file with O_TRUNC" $U1 $G1 sh -c ": >'$P/suido'"
expect_stat '%a %s' "$P/suido" "777 0" "a non-owner's open(O_TRUNC) clears setuid and setgid"
allow "U1 opens a 2777 root file with O_TRUNC" $U1 $G1 sh -c ": >'$P/sgio'"
expect_stat '%a %s' "$P/sgio" "777 0" "a non-owner's open(O_TRUNC) clears setgid (group execute)"
allow "U1 opens a 2666 root file with O_TRUNC" $U1 $G1 sh -c ": >'$P/sgno'"
expect_stat '%a %s' "$P/sgno" "666 0" "a non-member's open(O_TRUNC) drops setgid without group execute"
allow "a group member opens a 2666 file with O_TRUNC" $U1 $G1,$GX sh -c ": >'$P/sgmo'"
expect_stat '%a %s' "$P/sgmo" "2666 0" "a member's open(O_TRUNC) keeps setgid without group execute"
: >"$P/suidr" || fail "root opens suidr with O_TRUNC"
expect_stat '%a %s' "$P/suidr" "6777 0" "root's open(O_TRUNC) keeps setuid and setgid"
if command -v setcap >/dev/null 2>&1 && command -v getcap >/dev/null 2>&1; then
	printf 'x\n' >"$P/capo" && chmod 777 "$P/capo" && setcap cap_net_raw+ep "$P/capo" || fail "setcap capo"
	[ -n "$(getcap "$P/capo")" ] || fail "getcap capo: no capability after setcap"
	allow "U1 opens a file with a capability with O_TRUNC" $U1 $G1 sh -c ": >'$P/capo'"
	[ -z "$(getcap "$P/capo")" ] || fail "a non-owner's open(O_TRUNC) kept security.capability: $(getcap "$P/capo")"
	echo "ok   a non-owner's open(O_TRUNC) drops security.capability"
fi
# S_ISGID without group execute: dropped when the writer is not in the
# file's group (owner or not), kept for a member (Linux >= 6.2, ext4); the
# kernel leaves that case to quorumfs (fs/ops.c drop_sgid_locked)
for f in sgw sgt sgf sgo sgm; do
	printf 'x\n' >"$P/$f" && chmod 2666 "$P/$f" || fail "create $f"
done
chown $U1 "$P/sgo" && chgrp $GX "$P/sgm" || fail "chown sgo/sgm"
allow "U1 appends to a 2666 root file" $U1 $G1 sh -c "echo y >>'$P/sgw'"
expect_stat '%a' "$P/sgw" 666 "a non-member's write drops setgid without group execute"
allow "U1 truncates a 2666 root file" $U1 $G1 truncate -s 1 "$P/sgt"
expect_stat '%a %s' "$P/sgt" "666 1" "a non-member's truncate drops setgid without group execute"
if as $U1 $G1 fallocate -l 8192 "$P/sgf" 2>"$T/out"; then
	expect_stat '%a %s' "$P/sgf" "666 8192" "a non-member's fallocate drops setgid without group execute"
else
	grep -q "not found" "$T/out" || fail "fallocate as U1: $(cat "$T/out")"
fi
allow "owner outside the group appends to own 2666 file" $U1 $G1 sh -c "echo y >>'$P/sgo'"
expect_stat '%a' "$P/sgo" 666 "the owner's write drops setgid when outside the group"
allow "a group member appends to a 2666 file" $U1 $G1,$GX sh -c "echo y >>'$P/sgm'"
expect_stat '%a' "$P/sgm" 2666 "a member's write keeps setgid without group execute"
echo y >>"$P/sgm" || fail "root appends to sgm"
expect_stat '%a' "$P/sgm" 2666 "root's write keeps setgid"
touch "$P/suidc" && chmod 6755 "$P/suidc" && chown $U1 "$P/suidc" || fail "chown suidc"
expect_stat '%u %a' "$P/suidc" "$U1 755" "root's chown clears setuid and setgid (group execute)"
touch "$P/suidg" && chmod 6745 "$P/suidg" && chown $U1:$G1 "$P/suidg" || fail "chown suidg"
expect_stat '%a' "$P/suidg" 2745 "root's chown keeps setgid without group execute"
touch "$P/udir/sgc" && chgrp $GX "$P/udir/sgc" && chown $U1 "$P/udir/sgc" || fail "create udir/sgc"
allow "owner outside the group chmods 2755" $U1 $G1 chmod 2755 "$P/udir/sgc"
expect_stat '%a' "$P/udir/sgc" 755 "chmod by an owner outside the group drops setgid"
allow "owner in the group chmods 2755" $U1 $G1,$GX chmod 2755 "$P/udir/sgc"
expect_stat '%a' "$P/udir/sgc" 2755 "chmod by an owner in the group keeps setgid"

# --- utimensat: UTIME_NOW needs write permission (else EACCES), explicit
# times need ownership (else EPERM) (pjdfstest utimensat/06.t, 07.t)
printf 'w\n' >"$P/w666" && chmod 666 "$P/w666" && touch -d '2001-01-01 UTC' "$P/w666" || fail "create w666"
allow "a writer sets times to now" $U1 $G1 touch -c "$P/w666"
[ "$(stat -c %Y "$P/w666")" -gt "$(date -d '2002-01-01 UTC' +%s)" ] || fail "UTIME_NOW by a writer did not set mtime"
echo "ok   UTIME_NOW by a non-owner writer sets mtime"
deny "Operation not permitted" "a writer sets explicit times" $U1 $G1 touch -c -d '2001-01-01' "$P/w666"
printf 'r\n' >"$P/r644" && chmod 644 "$P/r644" || fail "create r644"
deny "Permission denied" "a non-writer sets times to now" $U1 $G1 touch -c "$P/r644"

# --- owners and modes survive a remount
before=$(cd "$P" && stat -c '%n %u %g %a' pub grp udir udir/own tmp tmp/r sg sg/sub sg/userfile sgw sgt sgo sgm suidw suido sgno suidr)
qfs_umount
qfs_mount
after=$(cd "$P" && stat -c '%n %u %g %a' pub grp udir udir/own tmp tmp/r sg sg/sub sg/userfile sgw sgt sgo sgm suidw suido sgno suidr)
[ "$before" = "$after" ] || fail "owners/modes changed across remount:
before:
$before
after:
$after"
echo "ok   owners and modes survive a remount"
deny "Permission denied" "read a 0600 root file after remount" $U1 $G1 cat "$P/secret"
qfs_umount
