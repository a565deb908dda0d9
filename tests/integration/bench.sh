#!/bin/bash
# tests/integration/bench.sh - `quorumfs bench` runs and reports, against a
# real mount and a local directory; its shape is checked, never its timing.
#
# - `quorumfs bench --quick MNT --against LOCAL` exits 0 and prints the
#   markdown table: a header, and the 12 rows (create .. seq_read), each
#   with a rate > 0 for the mount and for LOCAL, a ratio > 0, and p50 <= p99
#   where latencies are measured;
# - it leaves nothing behind: no table at the mount's root (its directory
#   there is a table, dropped at the end), LOCAL empty;
# - --raw in a table's subdirectory with --only small,fsync: exactly the
#   rows of those groups, one per line, numbers > 0; the subdirectory is
#   left as it was;
# - errors: a missing directory and the read-only control tree exit 1 with
#   the path and the errno; a bad option or value exits 2.
# Command: quorumfs(8) BENCH, doc/perf.md.

. "${QFS_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"
qfs_require awk
set -o pipefail
qfs_setup
echo "$QFS_PID" >"$T/daemon.pid"
watchdog 110
LOCAL=$T/local
mkdir "$LOCAL" || fail "mkdir $LOCAL"

"$QFS_BIN" bench --quick "$MNT" --against "$LOCAL" >"$T/out" 2>"$T/err" ||
	{ cat "$T/out" "$T/err" >&2; fail "quorumfs bench --quick exited $?"; }
cat "$T/out"
grep -q '^| workload | row | unit | mount | p50 ms | p99 ms | against | p50 ms | p99 ms | mount/against |$' "$T/out" ||
	fail "no table header"
awk -F'|' '
	NF == 12 && $3 ~ /^ [a-z_0-9]+ $/ && $3 != " row " {
		row = $3; gsub(/ /, "", row); seen[row]++; n++
		for (i = 5; i <= 11; i++) { v[i] = $i; gsub(/ /, "", v[i]) }
		if (!(v[5] > 0) || !(v[8] > 0) || !(v[11] > 0)) { print "bad rate/ratio in row " row ": " $0; bad = 1 }
		if (v[6] != "-" && (!(v[6] > 0) || v[6] + 0 > v[7] + 0)) { print "bad mount p50/p99 in " row; bad = 1 }
		if (v[9] != "-" && (!(v[9] > 0) || v[9] + 0 > v[10] + 0)) { print "bad against p50/p99 in " row; bad = 1 }
	}
	END {
		split("create create_parallel stat read rename unlink mkdir rmdir fsync_1 fsync_n seq_write seq_read", want, " ")
		for (k in want) if (seen[want[k]] != 1) { print "row " want[k] " seen " seen[want[k]] + 0 " times"; bad = 1 }
		if (n != 12) { print n " rows, not 12"; bad = 1 }
		exit bad
	}' "$T/out" || fail "bench table has the wrong shape"
[ -z "$(ls -A "$MNT")" ] || fail "bench left tables behind: $(ls -A "$MNT")"
[ -z "$(ls -A "$LOCAL")" ] || fail "bench left files in $LOCAL: $(ls -A "$LOCAL")"

# --raw, in a subdirectory of a table, two groups
mkdir -p "$MNT/tb/sub" || fail "mkdir tb/sub"
echo keep >"$MNT/tb/sub/keep" || fail "write keep"
"$QFS_BIN" bench --raw --only small,fsync -n 20 -f 5 -w 2 "$MNT/tb/sub" >"$T/raw" 2>"$T/err" ||
	{ cat "$T/raw" "$T/err" >&2; fail "bench --raw exited $?"; }
cat "$T/raw"
awk '
	{ n++; if ($1 != "mount" || !($3 > 0) || NF != 6) { print "bad line: " $0; bad = 1 } rows = rows " " $2 }
	END { if (rows != " create stat read rename unlink fsync_1 fsync_n") { print "rows:" rows; bad = 1 } exit bad }
' "$T/raw" || fail "bench --raw output has the wrong shape"
[ "$(ls -A "$MNT/tb/sub")" = keep ] || fail "bench changed tb/sub: $(ls -A "$MNT/tb/sub")"
[ "$(cat "$MNT/tb/sub/keep")" = keep ] || fail "tb/sub/keep changed"

# errors
"$QFS_BIN" bench --quick "$T/missing" >"$T/out" 2>"$T/err"; rc=$?
[ $rc -eq 1 ] || fail "bench of a missing dir exited $rc, not 1"
grep -q "$T/missing: No such file or directory (errno 2)" "$T/err" || { cat "$T/err" >&2; fail "no ENOENT message"; }
"$QFS_BIN" bench --quick "$MNT/.quorumfs" >"$T/out" 2>"$T/err"; rc=$?
[ $rc -eq 1 ] || fail "bench in the control tree exited $rc, not 1"
grep -q "quorumfs bench: mkdir $MNT/.quorumfs/qfs-bench\..*(errno [0-9]*)" "$T/err" ||
	{ cat "$T/err" >&2; fail "no mkdir error message for the control tree"; }
"$QFS_BIN" bench -n 0 "$MNT" >/dev/null 2>"$T/err"; rc=$?
[ $rc -eq 2 ] || fail "bench -n 0 exited $rc, not 2"
"$QFS_BIN" bench --only bogus "$MNT" >/dev/null 2>"$T/err"; rc=$?
[ $rc -eq 2 ] || fail "bench --only bogus exited $rc, not 2"
"$QFS_BIN" bench >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] || fail "bench without a directory exited $rc, not 2"
[ "$(ls -A "$MNT")" = tb ] || fail "failed runs left tables behind: $(ls -A "$MNT")"
exit 0
