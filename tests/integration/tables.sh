#!/bin/bash
# tests/integration/tables.sh - the mount root: tables are directories
# (mkdir/rmdir/rename), nothing else may be created there, .quorumfs is
# reserved and read-only, status/stats show the documented keys, the CLI
# answers --version/--help/status, tables survive a remount, and a second
# mount of the same data dir is refused.

. "$QFS_SRCDIR/tests/lib/common.sh"
export LC_ALL=C
qfs_require python3 setfattr
qfs_setup

ok() { echo "ok   $*"; }

# perr ERRNAME PYTHON-STATEMENT: the statement (M is the mountpoint) must
# raise OSError with that errno.
perr() {
	python3 - "$MNT" "$1" "$2" <<'EOF'
import errno, os, stat, sys
M, want, code = sys.argv[1], sys.argv[2], sys.argv[3]
try:
    exec(code)
except OSError as e:
    got = errno.errorcode.get(e.errno, str(e.errno))
    if e.errno == getattr(errno, want):
        sys.exit(0)
    print("%s: expected %s, got %s (%s)" % (code, want, got, e.strerror))
    sys.exit(1)
print("%s: expected %s, got success" % (code, want))
sys.exit(1)
EOF
}
expect_errno() {
	local out
	out=$(perr "$1" "$2") || fail "$out"
	ok "$2 -> $1"
}

# shell command must fail with MSG in its stderr
expect_msg() {
	local msg=$1 what=$2
	shift 2
	if "$@" >"$T/out" 2>&1; then fail "$what: expected '$msg', but it succeeded"; fi
	grep -q "$msg" "$T/out" || fail "$what: expected '$msg', got: $(head -c 300 "$T/out")"
	ok "$what -> $msg"
}

# tables as readdir(3) returns them, in order, without .quorumfs
tables() {
	python3 -c 'import os,sys; print(" ".join(n for n in os.listdir(sys.argv[1]) if n != ".quorumfs"))' "$MNT"
}

status() { cat "$MNT/.quorumfs/status"; }

# --- creating and listing tables
[ -z "$(tables)" ] || fail "a fresh mount lists tables: '$(tables)'"
for t in t3 t1 t2; do mkdir "$MNT/$t" || fail "mkdir $MNT/$t"; done
[ "$(tables)" = "t1 t2 t3" ] || fail "root listing: got '$(tables)', expected 't1 t2 t3' in this order"
ok "root lists the tables, sorted"
[ -d "$MNT/t1" ] || fail "t1 is not a directory"
expect_errno EEXIST 'os.mkdir(M + "/t1")'
expect_errno EEXIST 'os.mkdir(M + "/.quorumfs")'
long=$(printf 'T%.0s' $(seq 255))
mkdir "$MNT/$long" || fail "mkdir of a 255-byte table name"
rmdir "$MNT/$long" || fail "rmdir of a 255-byte table name"
expect_errno ENAMETOOLONG 'os.mkdir(M + "/" + "T" * 256)'
expect_errno ENOENT 'os.rmdir(M + "/no_such_table")'

# --- nothing but directories at the root
expect_errno EPERM 'os.close(os.open(M + "/file", os.O_WRONLY | os.O_CREAT, 0o644))'
expect_errno EPERM 'os.symlink("t1", M + "/link")'
expect_errno EPERM 'os.mkfifo(M + "/fifo")'
expect_errno EPERM 'os.mknod(M + "/node", stat.S_IFREG | 0o644)'
expect_errno EPERM 'os.mknod(M + "/dev", stat.S_IFCHR | 0o600, os.makedev(1, 3))'
echo x >"$MNT/t1/f" || fail "create t1/f"
expect_errno EPERM 'os.link(M + "/t1/f", M + "/hard")'
expect_msg "Operation not permitted" "touch a file at the root" touch "$MNT/file"
expect_msg "Operation not permitted" "ln -s at the root" ln -s t1 "$MNT/link"
[ "$(tables)" = "t1 t2 t3" ] || fail "root listing after refused creates: '$(tables)'"
rm "$MNT/t1/f"

# --- rmdir of tables
echo data >"$MNT/t2/item" || fail "write t2/item"
expect_errno ENOTEMPTY 'os.rmdir(M + "/t2")'
mkdir "$MNT/t3/emptysub" || fail "mkdir t3/emptysub"
expect_errno ENOTEMPTY 'os.rmdir(M + "/t3")'
[ "$(cat "$MNT/t2/item")" = data ] || fail "t2/item damaged by a refused rmdir"
rm "$MNT/t2/item" && rmdir "$MNT/t2" || fail "rmdir of an emptied table"
expect_errno ENOENT 'os.stat(M + "/t2")'
[ "$(tables)" = "t1 t3" ] || fail "root listing after rmdir t2: '$(tables)'"
status | grep -q '^table t2 ' && fail "status still lists table t2 after rmdir"
mkdir "$MNT/t2" || fail "re-create table t2"
[ -z "$(ls -A "$MNT/t2")" ] || fail "a re-created table is not empty: $(ls -A "$MNT/t2")"
ok "rmdir of tables"

# --- renaming a table
mkdir -p "$MNT/t1/a/b" || fail "mkdir t1/a/b"
head -c 300000 /dev/urandom >"$T/big" || fail "random data"
cp "$T/big" "$MNT/t1/a/b/big" || fail "copy big into t1"
echo small >"$MNT/t1/small"
setfattr -n user.color -v red "$MNT/t1/small" || fail "setfattr on t1/small"
ino=$(stat -c %i "$MNT/t1")
mv "$MNT/t1" "$MNT/orders" || fail "rename table t1 -> orders"
expect_errno ENOENT 'os.stat(M + "/t1")'
cmp -s "$T/big" "$MNT/orders/a/b/big" || fail "orders/a/b/big differs after the table rename"
[ "$(cat "$MNT/orders/small")" = small ] || fail "orders/small after the table rename"
[ "$(getfattr --only-values -n user.color "$MNT/orders/small" 2>/dev/null)" = red ] ||
	fail "xattr lost by the table rename"
[ "$(stat -c %i "$MNT/orders")" = "$ino" ] || fail "table inode changed by rename: $ino -> $(stat -c %i "$MNT/orders")"
echo after >"$MNT/orders/after" && [ "$(cat "$MNT/orders/after")" = after ] || fail "write into the renamed table"
[ "$(tables)" = "orders t2 t3" ] || fail "root listing after the table rename: '$(tables)'"
status | grep -q '^table t1 ' && fail "status still lists table t1 after its rename"
status | grep -q '^table orders ' || fail "status does not list the renamed table orders"
ok "table rename keeps contents, xattrs and inode"
expect_errno EXDEV 'os.rename(M + "/orders/small", M + "/t3/small")'

# --- .quorumfs is reserved and read-only
Q=$MNT/.quorumfs
[ -d "$Q" ] || fail ".quorumfs is not a directory"
[ -f "$Q/status" ] && [ -f "$Q/stats" ] || fail ".quorumfs lacks status or stats: $(ls -A "$Q")"
ls "$Q" | grep -qx status || fail "readdir of .quorumfs does not list status"
python3 -c 'import os,sys; os.rmdir(sys.argv[1])' "$Q" 2>/dev/null && fail "rmdir .quorumfs succeeded"
python3 -c 'import os,sys; os.rename(sys.argv[1], sys.argv[1] + "x")' "$Q" 2>/dev/null && fail "rename of .quorumfs succeeded"
python3 -c 'import os,sys; os.rename(sys.argv[1] + "/t3", sys.argv[1] + "/.quorumfs")' "$MNT" 2>/dev/null &&
	fail "rename of a table over .quorumfs succeeded"
[ -f "$Q/status" ] && [ -d "$MNT/t3" ] || fail ".quorumfs or t3 damaged by refused renames"
ok ".quorumfs cannot be removed or renamed"
expect_msg "Read-only file system" "write status" sh -c "echo x >'$Q/status'"
expect_msg "Read-only file system" "append stats" sh -c "echo x >>'$Q/stats'"
expect_msg "Read-only file system" "touch status" touch "$Q/status"
expect_msg "Read-only file system" "touch a new control file" touch "$Q/new"
expect_msg "Read-only file system" "rm status" rm -f "$Q/status"
expect_msg "Read-only file system" "chmod status" chmod 666 "$Q/status"
expect_msg "Read-only file system" "truncate status" truncate -s 0 "$Q/status"
expect_msg "Read-only file system" "setfattr status" setfattr -n user.x -v 1 "$Q/status"
expect_msg "Read-only file system" "mkdir in .quorumfs" mkdir "$Q/dir"
expect_msg "Read-only file system" "mv status" mv "$Q/status" "$Q/status2"
expect_errno EROFS 'os.close(os.open(M + "/.quorumfs/stats", os.O_RDWR))'
expect_errno EROFS 'os.unlink(M + "/.quorumfs/stats")'
grep -q "^version " "$Q/status" || fail "status unreadable or changed after refused writes"
[ -e "$Q/new" ] && fail ".quorumfs/new exists"

# --- status
st=$("$QFS_BIN" status "$MNT") || fail "quorumfs status $MNT exited $?"
printf '%s\n' "$st" >"$T/status.cli"
status >"$T/status.cat" || fail "cat .quorumfs/status"
for f in status.cli status.cat; do
	grep -qx 'version 0.1.0' "$T/$f" || fail "$f: no 'version 0.1.0' line"
	grep -Eq '^uptime_s [0-9]+$' "$T/$f" || fail "$f: no 'uptime_s N' line"
	grep -Eq '^tables [0-9]+$' "$T/$f" || fail "$f: no 'tables N' line"
	for n in 1 2 3; do
		grep -Eq "^node $n az [abc] state up dir $DATA/nodes/n$n\$" "$T/$f" ||
			fail "$f: no 'node $n az X state up dir $DATA/nodes/n$n' line"
	done
	grep -qx 'replicas 3' "$T/$f" || fail "$f: no 'replicas 3' line"
done
diff <(grep -E '^(version|tables|table|node) ' "$T/status.cli") <(grep -E '^(version|tables|table|node) ' "$T/status.cat") >/dev/null ||
	fail "quorumfs status and cat .quorumfs/status differ"
n=$(awk '$1 == "tables" { print $2 }' "$T/status.cat")
[ "$n" = 3 ] || fail "status says 'tables $n', expected 3 (orders t2 t3)"
for t in orders t2 t3; do
	line=$(grep "^table $t " "$T/status.cat") || fail "status has no 'table $t ...' line"
	echo "$line" | grep -Eq "^table $t group [0-9a-f]{16} ino [0-9]+$" ||
		fail "bad table line: '$line' (expected 'table $t group <16hex> ino N')"
	g=$(echo "$line" | awk '{ print $4 }')
	i=$(echo "$line" | awk '{ print $6 }')
	[ "$i" = "$(stat -c %i "$MNT/$t")" ] || fail "status says table $t ino $i, stat says $(stat -c %i "$MNT/$t")"
	gl=$(grep "^group $g leader " "$T/status.cat") || fail "status has no 'group $g leader' line for table $t"
	echo "$gl" | grep -Eq "^group $g leader [123] ballot [0-9]+ replicas 3 up 3 preferred [123]$" ||
		fail "bad group line: '$gl' (want 'group G leader L ballot B replicas 3 up 3 preferred P')"
	leader=$(echo "$gl" | awk '{ print $4 }')
	[ "$(grep -c "^group $g replica " "$T/status.cat")" = 3 ] || fail "group $g: want 3 replica lines"
	rl=$(grep "^group $g replica node $leader " "$T/status.cat") || fail "no replica line for the leader $leader"
	echo "$rl" | grep -Eq "^group $g replica node $leader az [abc] health ok role leader last [0-9]+ durable [0-9]+ commit [0-9]+ applied [0-9]+ wal_bytes [0-9]+$" ||
		fail "bad replica line: '$rl'"
	set -- $rl
	last=${13} durable=${15} commit=${17} applied=${19} bytes=${21} segs=1
	[ "$applied" -le "$commit" ] && [ "$commit" -le "$last" ] && [ "$durable" -le "$last" ] ||
		fail "group $g: expected applied <= commit <= last and durable <= last: '$rl'"
	for n in 1 2 3; do
		ls "$DATA/nodes/n$n/wal/$g/"*.wal >/dev/null 2>&1 || fail "no $DATA/nodes/n$n/wal/$g/*.wal for table $t"
	done
	if [ "$t" = orders ]; then
		[ "$last" -gt 0 ] && [ "$commit" -gt 0 ] && [ "$segs" -gt 0 ] && [ "$bytes" -gt 0 ] ||
			fail "group of table orders (written to) shows no log activity: '$gl'"
	fi
done
[ -d "$DATA/nodes/n1/store" ] || fail "$DATA/nodes/n1/store is missing"
ok "status shows version, tables, node, table and group lines"

# --- stats
cat "$Q/stats" >"$T/stats" || fail "cat .quorumfs/stats"
grep -Eq '^op [a-z_]+ count [0-9]+ errors [0-9]+ p50_us [0-9]+ p99_us [0-9]+ max_us [0-9]+$' "$T/stats" ||
	fail "stats has no 'op NAME count N errors N p50_us N p99_us N max_us N' line"
bad=$(grep '^op ' "$T/stats" | grep -Ev '^op [a-z_]+ count [0-9]+ errors [0-9]+ p50_us [0-9]+ p99_us [0-9]+ max_us [0-9]+$') &&
	fail "malformed op lines in stats: $bad"
awk '$1 == "op" && !($8 <= $10 && $10 <= $12 && $6 <= $4) { print; bad = 1 } END { exit bad }' "$T/stats" >"$T/badop" ||
	fail "op lines violate errors <= count, p50 <= p99 <= max: $(cat "$T/badop")"
mk=$(awk '$1 == "op" && $2 == "mkdir" { print $4 }' "$T/stats")
[ -n "$mk" ] && [ "$mk" -ge 5 ] || fail "stats: 'op mkdir count' is '$mk', expected >= 5 (we made 6 directories)"
wr=$(awk '$1 == "op" && $2 == "write" { print $4 }' "$T/stats")
[ -n "$wr" ] && [ "$wr" -ge 1 ] || fail "stats: 'op write count' is '$wr', expected >= 1"
grep -Eq '^op (lookup|getattr) count [1-9]' "$T/stats" || fail "stats: no lookup/getattr op with a count"
grep -Eq '^table orders op (get|txn|scan) count [0-9]+ errors [0-9]+ p50_us [0-9]+ p99_us [0-9]+' "$T/stats" ||
	fail "stats has no 'table orders op get|txn|scan ...' line"
tx=$(awk '$1 == "table" && $2 == "orders" && $4 == "txn" { print $6 }' "$T/stats")
[ -n "$tx" ] && [ "$tx" -ge 1 ] || fail "stats: 'table orders op txn count' is '$tx', expected >= 1"
nl=$(grep -E '^cell proposals [0-9]+ fsyncs [0-9]+ redirects [0-9]+ timeouts [0-9]+ applies_beside_sync [0-9]+$' "$T/stats") ||
	fail "stats has no 'cell proposals N fsyncs N redirects N timeouts N applies_beside_sync N' line"
set -- $nl
[ "$3" -gt 0 ] && [ "$5" -gt 0 ] || fail "cell line shows no proposals or fsyncs after writes: '$nl'"
ok "stats shows op, table and cell lines"

# --- the command line
v=$("$QFS_BIN" --version) || fail "quorumfs --version exited $?"
[ "$(printf '%s\n' "$v" | head -n 1)" = "quorumfs 0.1.0" ] || fail "quorumfs --version printed '$v'"
h=$("$QFS_BIN" --help 2>&1) || fail "quorumfs --help exited $?"
echo "$h" | grep -q mount && echo "$h" | grep -q status || fail "quorumfs --help does not mention mount and status: $h"
"$QFS_BIN" status "$T" >/dev/null 2>&1 && fail "quorumfs status of a directory that is no quorumfs mount succeeded"
"$QFS_BIN" no-such-command >/dev/null 2>&1 && fail "quorumfs no-such-command succeeded"
ok "--version, --help, status errors"

# --- a second mount of the same data dir is refused
mkdir -p "$T/mnt2"
QFS_EXTRA_UMOUNTS="$T/mnt2"
for mode in -f ""; do
	timeout 20 "$QFS_BIN" mount $mode "$DATA" "$T/mnt2" >"$T/second.out" 2>&1
	rc=$?
	if mountpoint -q "$T/mnt2" || [ $rc -eq 124 ]; then
		fusermount3 -u "$T/mnt2" 2>/dev/null || fusermount3 -uz "$T/mnt2" 2>/dev/null
		fail "a second mount ($mode) of the same data dir succeeded"
	fi
	[ $rc -ne 124 ] || fail "a second mount ($mode) of the same data dir hung instead of failing"
	[ $rc -ne 0 ] || fail "a second mount ($mode) of the same data dir exited 0"
	[ -s "$T/second.out" ] || fail "a refused second mount ($mode) printed nothing"
	grep -Eiq 'lock|already|in use|busy|mounted' "$T/second.out" ||
		fail "second mount ($mode): message does not say why: $(cat "$T/second.out")"
	ok "second mount ($mode) refused: $(head -n 1 "$T/second.out")"
done
echo still >"$MNT/orders/still" && [ "$(cat "$MNT/orders/still")" = still ] ||
	fail "the first mount stopped working after a refused second mount"

# --- tables survive a remount
before=$(tables)
qfs_umount
qfs_mount
[ "$(tables)" = "$before" ] || fail "tables after remount: '$(tables)', before: '$before'"
cmp -s "$T/big" "$MNT/orders/a/b/big" || fail "orders/a/b/big differs after remount"
[ -d "$MNT/t3/emptysub" ] || fail "t3/emptysub missing after remount"
n=$(status | awk '$1 == "tables" { print $2 }')
[ "$n" = 3 ] || fail "status after remount says 'tables $n', expected 3"
status | grep -q '^table orders ' || fail "status after remount does not list table orders"
ok "tables survive a remount"
qfs_umount
