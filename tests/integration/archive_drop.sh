#!/bin/bash
# tests/integration/archive_drop.sh - a dropped table restores to any time
# it existed (doc/archive.md "A dropped table").
#
# With the default seal age (60 s), table d gets 20 files of random content
# (closed, so durable); a timestamp T1 is taken; the files are deleted and
# the table removed with rmdir a few seconds after its creation, long before
# any segment of it would be sealed by age.  rmdir must return within a
# bound (it waits for the archive, at most 10 s per group), the log must
# say the group was flushed, and `quorumfs restore --table d --time @T1`
# must give back every file byte for byte (before: "manifest missing").
# Then the same with node 1 stopped (archiving paused): rmdir still returns
# within the bound and the log says the table's last records were not
# archived.

. "${QFS_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"

qfs_require python3 sha256sum
qfs_setup
echo "$QFS_PID" >"$T/daemon.pid"
watchdog 150
tree_sum() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum); }

mkdir "$MNT/d" "$T/src" || fail "mkdir table d"
G=$(qfs_group_of d) || fail "no group for d"
for i in $(seq 20); do
	head -c $((RANDOM % 30000 + 1)) /dev/urandom >"$T/src/f$i"
	cp "$T/src/f$i" "$MNT/d/f$i" || fail "write d/f$i"
done
mkdir "$MNT/d/sub" && echo nested >"$MNT/d/sub/n" && cp "$MNT/d/sub/n" "$T/n.copy" || fail "write d/sub/n"
mkdir -p "$T/src/sub" && cp "$T/n.copy" "$T/src/sub/n"
sleep 1
T1=$(date +%s.%N)
sleep 1
rm -r "$MNT/d/"* || fail "rm the files of d"
t0=$SECONDS
rmdir "$MNT/d" || fail "rmdir d"
dt=$((SECONDS - t0))
note "rmdir of table d took $dt s"
[ "$dt" -le 25 ] || fail "rmdir of table d took $dt s (bound: 10 s per group waited for)"
"$QFS_BIN" restore --data "$DATA" --table d --time "@$T1" --to "$T/out" 2>"$T/err" ||
	{ cat "$T/err" >&2; fail "restore of the dropped table d at @$T1 failed"; }
[ "$(tree_sum "$T/src")" = "$(tree_sum "$T/out")" ] ||
	{ diff <(tree_sum "$T/src") <(tree_sum "$T/out") >&2; fail "restored table d differs from what was written"; }
grep -Eq "archive flushed group=$G " "$T/daemon.out" ||
	{ grep archive "$T/daemon.out" | tail >&2; fail "no 'archive flushed group=$G' line"; }
note "dropped table d restored byte for byte as of @$T1"

# node 1 down: archiving is paused; rmdir must not hang
mkdir "$MNT/e" || fail "mkdir table e"
echo x >"$MNT/e/x" && rm "$MNT/e/x" || fail "write table e"
qfs_node_ctl "stop 1" || fail "stop 1"
t0=$SECONDS
rmdir "$MNT/e" || fail "rmdir e with node 1 down"
dt=$((SECONDS - t0))
[ "$dt" -le 25 ] || fail "rmdir of table e took $dt s with node 1 down"
grep -q "table group dropped before its final records were archived" "$T/daemon.out" ||
	fail "no log line saying table e's last records were not archived"
qfs_node_ctl "start 1" || fail "start 1"
qfs_umount
note "PASS ($SECONDS s)"
exit 0
