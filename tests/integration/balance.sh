#!/bin/bash
# tests/integration/balance.sh - leadership balance (doc/paxos.md section 6,
# doc/cell.md "Status"): every group has a preferred member spread over the
# nodes by group id, elections favour it and a leader hands over to it once
# it is caught up.
#
# 1. Twelve tables, a file written in each: after things settle (polled,
#    generous bound) every table's group is led by its preferred node, no
#    node leads more than half of them, and the "leaders node N groups G
#    preferred P" lines of .quorumfs/status agree with the group lines.
# 2. Stop the node preferred by the most tables: each of its groups gets
#    another leader and takes writes (write + fsync + close) meanwhile.
# 3. Start it again: its groups come back to it (polled, bounded), and
#    every file written before and during the stop reads back intact.
# Bounds are against hangs only, not timing assertions.

. "${QFS_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"

qfs_require awk cmp head
set -o pipefail
qfs_setup
echo "$QFS_PID" >"$T/daemon.pid"
watchdog 110

NT=12
S=$MNT/.quorumfs/status
for i in $(seq -w 1 $NT); do
	mkdir "$MNT/b$i" || fail "mkdir table b$i"
	head -c $((4096 + RANDOM)) /dev/urandom >"$T/f$i"
	cp "$T/f$i" "$MNT/b$i/f" || fail "write b$i/f"
done
GROUPS_=
for i in $(seq -w 1 $NT); do
	g=$(qfs_group_of "b$i") || fail "no group for table b$i"
	GROUPS_="$GROUPS_ $g"
done

# field GROUP NAME: a field of the "group G leader ..." line
field() {
	awk -v g="$1" -v f="$2" '$1 == "group" && $2 == g && $3 == "leader" {
		for (i = 3; i < NF; i++) if ($i == f) print $(i + 1) }' "$S"
}
# settled: every table group is led by its preferred node
settled() {
	local g l p
	for g in $GROUPS_; do
		l=$(field "$g" leader)
		p=$(field "$g" preferred)
		[ -n "$p" ] && [ "$p" != 0 ] && [ "$l" = "$p" ] || return 1
	done
}
# per-node count of table groups led ("1 4 2 4 3 4")
counts() {
	local g
	for g in $GROUPS_; do field "$g" leader; done | sort | uniq -c | awk '{ printf "%s:%s ", $2, $1 }'
}
wait_for() { # wait_for SECONDS WHAT CMD...
	local end=$((SECONDS + $1)) what=$2
	shift 2
	until "$@"; do
		[ $SECONDS -lt $end ] || { grep -E '^(group [0-9a-f]+ leader|leaders)' "$S" >&2; fail "$what"; }
		sleep 0.2
	done
}

# --- 1. settled and balanced
wait_for 60 "table groups not led by their preferred node after 60 s" settled
# the checks below read one copy of the status: each read of the file is
# generated anew, and an election between two reads (a heartbeat missed on
# a loaded machine) made the "leaders" line disagree with group lines read
# a moment earlier
S_LIVE=$S
S=$T/status.settled
cat "$S_LIVE" >"$S" || fail "read $S_LIVE"
note "settled: leaders per node $(counts)"
for n in 1 2 3; do
	c=0
	for g in $GROUPS_; do [ "$(field "$g" leader)" = "$n" ] && c=$((c + 1)); done
	[ $c -le $((NT / 2)) ] || fail "node $n leads $c of $NT table groups (more than half): $(counts)"
	# the leaders line counts every group (the meta group too)
	all=$(awk -v n="$n" '$1 == "group" && $3 == "leader" && $4 == n { c++ } END { print c + 0 }' "$S")
	line=$(awk -v n="$n" '$1 == "leaders" && $2 == "node" && $3 == n { print $5 }' "$S")
	[ "$line" = "$all" ] || { grep '^leaders' "$S" >&2; fail "leaders line of node $n says '$line', group lines $all"; }
done
S=$S_LIVE

# --- 2. stop the node preferred by the most tables
V=$(for g in $GROUPS_; do field "$g" preferred; done | sort | uniq -c | sort -rn | awk 'NR == 1 { print $2 }')
MINE=
for g in $GROUPS_; do [ "$(field "$g" preferred)" = "$V" ] && MINE="$MINE $g"; done
[ -n "$MINE" ] || fail "no group prefers node $V"
qfs_node_ctl "stop $V" || fail "stop $V"
moved() {
	local g l
	for g in $MINE; do
		l=$(field "$g" leader)
		case $l in 1|2|3) [ "$l" != "$V" ] || return 1 ;; *) return 1 ;; esac
	done
}
wait_for 30 "groups preferring node $V have no other leader 30 s after it stopped" moved
note "node $V stopped: leaders per node $(counts)"
for i in $(seq -w 1 $NT); do
	head -c $((2048 + RANDOM)) /dev/urandom >"$T/d$i"
	python3 - "$T/d$i" "$MNT/b$i/during" <<'EOF' || fail "write+fsync b$i/during with node $V stopped"
import sys, os
data = open(sys.argv[1], "rb").read()
fd = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, data)
os.fsync(fd)
os.close(fd)
EOF
done

# --- 3. start it: its groups come back
qfs_node_ctl "start $V" || fail "start $V"
back() {
	local g
	for g in $MINE; do [ "$(field "$g" leader)" = "$V" ] || return 1; done
}
wait_for 60 "groups preferring node $V did not come back to it within 60 s of its start" back
note "node $V started: leaders per node $(counts)"
for i in $(seq -w 1 $NT); do
	cmp -s "$T/f$i" "$MNT/b$i/f" || fail "b$i/f differs"
	cmp -s "$T/d$i" "$MNT/b$i/during" || fail "b$i/during differs"
done
echo "balance.sh: ok"
