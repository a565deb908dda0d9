#!/bin/bash
# logrep.sh - log replicas (doc/cluster.md "Log replicas", doc/paxos.md
# section 7a): five `quorumfs node` processes on 127.0.0.1 in three AZs
# (a b c a b) with -o heal_after=2, one mount -o cluster=, a writer that
# fsyncs every file into one table all along.
#
#  1. kill -9 of the leader of the table's group: within seconds the new
#     leader adds a log replica on a spare node of the dead node's AZ
#     (status line "kind log"), then removes the dead member;
#  2. kill -9 of a second original member (not the new leader: see
#     doc/paxos.md 7a "Liveness caveat"): writes still succeed (the
#     surviving storage replica and the log replica are a quorum of the
#     three members; without the log replica one of three would be left);
#  3. both nodes restarted: the first one's old copy is dropped (no longer
#     a member), it comes back as a storage replica (snapshot + log), and
#     the log replica is retired (its replica and WAL dropped on the
#     spare node); both the log replica and the restored storage replica
#     joined with the leader's vote floor (groups/<g>.floor);
#  4. no client error, every acknowledged file intact through the mount;
#  0. (first) an orphan replica: a spare node hosts a replica of the group
#     that no configuration names (what a JOIN whose CONFIG never committed
#     leaves behind); its reconciler drops it once the grace passed
#     (QFS_TEST_ORPHAN_GRACE_MS) and the group's leader says the node is
#     no member.
# Only 127.0.0.1.  Every node process is ours, killed by PID in the trap.
. "$QFS_SRCDIR/tests/lib/common.sh"
. "$QFS_SRCDIR/tests/lib/cluster.sh"
qfs_require fusermount3 python3 mountpoint

T=$(mktemp -d /tmp/qfs-logrep.XXXXXX)
M1=$T/m1
mkdir -p "$M1" "$T/s1"
NODE_PIDS=""
HEAL_AFTER=2
SMNT=$M1
export QFS_TEST_ORPHAN_GRACE_MS=3000 # (default 30 s)

cleanup() {
	local rc=$?
	touch "$T/STOP"
	fusermount3 -u "$M1" 2>/dev/null || fusermount3 -uz "$M1" 2>/dev/null || true
	for p in $NODE_PIDS; do
		kill -9 "$p" 2>/dev/null
	done
	if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
		for f in "$T"/n*/quorumfs-node.log "$T"/s1/quorumfs.log; do
			[ -f "$f" ] && { echo "--- tail of $f" >&2; tail -n 25 "$f" >&2; }
		done
	fi
	rm -rf "$T"
	exit $rc
}
trap cleanup EXIT
cluster_watchdog 180

C=$T/cluster
cluster_file a b c a b
# (a status read waits 2 s for a dead node: read it once per poll)
hosts_in() { awk -v g="$2" '$1 == "group" && $2 == g && $3 == "node" { print $4 }' "$1" | sort -n | paste -sd,; }
logrep_in() { awk -v g="$2" '$1 == "group" && $2 == g && $3 == "node" && / kind log$/ { print $4 }' "$1"; }
nlogs() { cat "$T"/n*/quorumfs-node.log 2>/dev/null; }
wait_more() { # BEFORE WHAT: wait (30 s at most: an election plus fsyncs on a loaded machine) for 5 more acknowledged files
	for _ in $(seq 300); do [ "$(wc -l <"$T/w.acked")" -ge $(($1 + 5)) ] && return 0; sleep 0.1; done
	fail "writes stalled $2 ($(cat "$T/writer.out"))"
}

for n in 1 2 3 4 5; do start_node $n; done
"$QFS_BIN" mount -o "cluster=$C" "$T/s1" "$M1" || fail "mount"
mkdir "$M1/t" || fail "mkdir of table t"
G=$(awk '$1 == "table" && $2 == "t" { print $6 }' "$M1/.quorumfs/partitions")
R=$(awk '$1 == "table" && $2 == "t" { for (i = 1; i < NF; i++) if ($i == "replicas") print $(i + 1) }' \
	"$M1/.quorumfs/partitions" | tr ',' ' ')
[ -n "$G" ] && [ "$(echo $R | wc -w)" -eq 3 ] || fail "table t: group '$G' replicas '$R'"

# ---- 0. an orphan replica on spare node S (doc/cluster.md "Orphan replicas")
S=""
for n in 1 2 3 4 5; do case " $R " in *" $n "*) ;; *) S=$n; break ;; esac; done
kill -TERM "$(pid_of "$S")"
for _ in $(seq 100); do kill -0 "$(pid_of "$S")" 2>/dev/null || break; sleep 0.1; done
kill -0 "$(pid_of "$S")" 2>/dev/null && fail "node $S did not stop on SIGTERM"
[ ! -e "$T/n$S/groups/$G" ] || fail "spare node $S hosts group $G already"
echo "members $R" >"$T/n$S/groups/$G"
start_node "$S"
T0=$(date +%s.%N)

rm -f "$T/STOP"
writer "$M1/t" w 150 >"$T/writer.out" 2>&1 &
WPID=$!
sleep 1.5
# a leader (elected, or re-elected after a slow heartbeat): 30 s at most
for _ in $(seq 300); do L=$(leader_of "$G"); [ -n "$L" ] && break; sleep 0.1; done
[ -n "$L" ] || fail "no leader of group $G"
for _ in $(seq 200); do
	qgrep "node reconcile dropped group=$G node=$S .*orphan" <"$T/n$S/quorumfs-node.log" && break
	sleep 0.1
done
qgrep "node reconcile dropped group=$G node=$S .* err=\"none\" why=\"an orphan" <"$T/n$S/quorumfs-node.log" ||
	fail "node $S kept the orphan replica of $G: $(grep "group=$G" "$T/n$S/quorumfs-node.log" | tail -3)"
[ ! -e "$T/n$S/groups/$G" ] && [ ! -e "$T/n$S/wal/$G" ] || fail "the orphan's files are still on node $S"
note "node $S dropped its orphan replica after $(python3 -c "print('%.1f' % ($(date +%s.%N) - $T0))") s ($(grep -o "node reconcile dropped group=$G .* err=\"[^\"]*\"" "$T/n$S/quorumfs-node.log"))"
# the first victim: the leader (node 3, alone in AZ c, has no spare of its
# AZ: then any spare will do)
D1=$L
note "table t: group $G on nodes $R, leader $L; killing node $D1 (AZ $(az_of $D1))"

# ---- 1. a log replica within seconds
before=$(wc -l <"$T/w.acked")
T0=$(date +%s.%N)
kill -9 "$(pid_of "$D1")"
LR=""
for _ in $(seq 300); do
	nlogs | qgrep "node heal member removed group=$G node=$D1 .* err=\"none\"" && break
	sleep 0.1
done
nlogs | qgrep "node heal member removed group=$G node=$D1 .* err=\"none\"" ||
	fail "no log replica took node $D1's place within 30 s: $(nlogs | grep 'node heal' | tail -5)"
T1=$(date +%s.%N)
status >"$T/st"
LR=$(logrep_in "$T/st" "$G")
[ -n "$LR" ] || fail "no replica of $G says 'kind log': $(grep "group $G" "$T/st")"
case " $R " in *" $LR "*) fail "the log replica is on node $LR, already a member ($R)" ;; esac
# joined with the leader's vote floor (doc/paxos.md section 7a)
fl=$(cat "$T/n$LR/groups/$G.floor" 2>/dev/null)
case "$fl" in "floor "[1-9]*" "[1-9]*) ;; *) fail "the log replica on node $LR joined without a vote floor: '$fl'" ;; esac
[ "$D1" = 3 ] || [ "$(az_of "$LR")" = "$(az_of "$D1")" ] || fail "log replica on node $LR (AZ $(az_of "$LR")), not in the dead node's AZ $(az_of "$D1")"
note "log replica on node $LR after $(python3 -c "print('%.1f' % ($T1 - $T0))") s ($(nlogs | grep -o "node heal log replica added group=$G [^\"]*" | head -1))"
wait_more "$before" "after the log replica was added"
# it holds the log, not the store: its applied LSN moves, it serves no read
a1=$(applied "$LR" "$G")
# the writer goes on: the log replica's applied LSN moves (30 s at most;
# a fixed 1 s could see no new record on a loaded machine)
for _ in $(seq 300); do
	a2=$(applied "$LR" "$G")
	[ -n "$a2" ] && [ "$a2" -gt "${a1:-0}" ] && break
	sleep 0.1
done
[ -n "$a2" ] && [ "$a2" -gt "${a1:-0}" ] || fail "the log replica does not follow the log: applied $a1 then $a2"

# ---- 2. a second original member dies: writes go on (2 of 3 with the log replica)
D2=""
L2=$(leader_wait "$G")
for n in $R; do [ "$n" != "$L2" ] && [ "$n" != "$D1" ] && D2=$n; done
[ -n "$D2" ] || fail "no original member left to kill besides the leader ${L2:-unknown}"
before=$(wc -l <"$T/w.acked")
kill -9 "$(pid_of "$D2")"
note "killed node $D2 too: members left $(echo $R | tr ' ' '\n' | grep -vx "$D1" | grep -vx "$D2") + log replica $LR"
wait_more "$before" "with one storage replica and the log replica"
kill -0 "$WPID" 2>/dev/null || fail "the writer stopped: $(cat "$T/writer.out")"
note "writes go on with two of three members down among the originals"

# ---- 3. restart both: a storage replica comes back, the log replica is retired
start_node "$D2"
start_node "$D1"
for _ in $(seq 600); do
	nlogs | qgrep "node heal log replica retired group=$G node=$LR .* err=\"none\"" && break
	sleep 0.1
done
nlogs | qgrep "node heal log replica retired group=$G node=$LR .* err=\"none\"" ||
	fail "the log replica was not retired within 60 s: $(nlogs | grep 'node heal' | tail -5)"
nlogs | qgrep "node heal storage replica caught up group=$G .* err=\"none\"" || fail "no storage catch-up logged"
status >"$T/st"
[ -z "$(logrep_in "$T/st" "$G")" ] || fail "a log replica is left: $(grep "group $G" "$T/st")"
h=$(hosts_in "$T/st" "$G")
[ "$(echo "$h" | tr ',' '\n' | wc -l)" -eq 3 ] || fail "group $G hosted on $h, not 3 nodes"
case ",$h," in *,$LR,*) fail "node $LR still hosts $G after the retirement: $h" ;; esac
[ "$(for n in ${h//,/ }; do az_of $n; done | sort -u | wc -l)" -eq 3 ] || fail "group $G on $h: AZs not distinct"
[ ! -e "$T/n$LR/wal/$G" ] || fail "the retired log replica's WAL directory $T/n$LR/wal/$G is still there"
# the storage replica restored (on node $D1 back, or a spare) joined with
# the leader's vote floor too: it starts empty, and node $D1 was a member
for n in ${h//,/ }; do
	case " $R " in *" $n "*) [ "$n" != "$D1" ] && continue ;; esac
	fl=$(cat "$T/n$n/groups/$G.floor" 2>/dev/null)
	case "$fl" in "floor "[1-9]*" "[1-9]*) ;; *) fail "node $n rejoined $G without a vote floor: '$fl'" ;; esac
done
note "storage replicas back on $h; log replica on node $LR retired ($(nlogs | grep -o "node heal storage replica caught up group=$G [^\"]*" | tail -1))"

# ---- 4. every acknowledged file
before=$(wc -l <"$T/w.acked")
wait_more "$before" "after the retirement"
touch "$T/STOP"
wait "$WPID" || fail "the writer saw a client error: $(cat "$T/writer.out")"
note "writer: $(cat "$T/writer.out")"
verify "$M1/t" "$T/w.acked" || fail "an acknowledged file was lost"
fusermount3 -u "$M1" || fail "unmount"
exit 0
