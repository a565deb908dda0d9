#!/bin/bash
# cluster4.sh - placement in a cluster of more nodes than replicas
# (doc/cluster.md "Placement"): five `quorumfs node` processes on
# 127.0.0.1 in three AZs (a b c a b), one mount -o cluster=.
#
#  1. a cluster file whose nodes span fewer than 3 AZs is refused at mount
#     with a clear message;
#  2. six tables: each partition's 3 replicas (.quorumfs/partitions) are on
#     3 distinct nodes in 3 distinct AZs, exactly those nodes host the
#     group (the nodes' status, also after a reconciliation round: no node
#     outside the placement creates it), and the replicas are spread: each
#     node of the two-node AZs hosts some partitions but not all, and the
#     counts differ by at most one between such nodes;
#  3. a table whose replicas leave node 1 out works (node 1 is the router's
#     first guess), also through a second, fresh mount (no cache);
#  4. kill -9 of the leader of a partition under a writer that fsyncs every
#     file: no client error, every acknowledged file intact; the node
#     restarts and catches up; kill -9 of a node that hosts none of that
#     partition's replicas changes nothing for it;
#  5. `quorumfs member replace` under that writer: a dead node's replicas
#     move to another node of its AZ (a node of an AZ already used is
#     refused), then one live replica moves; the map, the nodes' status and
#     the data agree, no client error, every acknowledged file intact; the
#     dead node, started again, drops the replicas it lost; lookups
#     through both mounts during the live move see no error (the
#     node that dropped its copy answers "no such group": not ESTALE);
#     the removed node added back starts with a vote floor and catches up.
# Only 127.0.0.1.  Every node process is ours, killed by PID in the trap.
. "$QFS_SRCDIR/tests/lib/common.sh"
. "$QFS_SRCDIR/tests/lib/cluster.sh"
qfs_require fusermount3 python3 mountpoint

T=$(mktemp -d /tmp/qfs-cluster4.XXXXXX)
M1=$T/m1
M2=$T/m2
mkdir -p "$M1" "$M2" "$T/s1" "$T/s2"
NODE_PIDS=""
HEAL_AFTER=0 # the operator moves replicas here (section 5): no log replicas racing it (logrep.sh)
SMNT=$M1 # status, applied, leader_of, caught_up read its .quorumfs/status

cleanup() {
	local rc=$?
	for m in "$M1" "$M2"; do
		fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null || true
	done
	for p in $NODE_PIDS; do
		kill -9 "$p" 2>/dev/null
	done
	if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
		for f in "$T"/n*/quorumfs-node.log "$T"/s1/quorumfs.log "$T"/member.err; do
			[ -f "$f" ] && { echo "--- tail of $f" >&2; tail -n 25 "$f" >&2; }
		done
	fi
	rm -rf "$T"
	exit $rc
}
trap cleanup EXIT
# A hang is a failure (a loaded machine under ASan needs well over 110 s).
cluster_watchdog 240

C=$T/cluster
cluster_file a b c a b
sed -i "1i # test cluster: 5 nodes, 3 AZs" "$C" # a comment line is allowed

# ---- 1. fewer than 3 AZs: refused at mount
sed -e 's/^node 3 az c /node 3 az a /' -e 's/^node 5 az b /node 5 az a /' "$C" >"$T/cluster2"
if "$QFS_BIN" mount -o "cluster=$T/cluster2" "$T/s1" "$M1" 2>"$T/az.err"; then
	fail "a mount of a cluster in 2 AZs started"
fi
grep -q "fewer than 3 availability zones" "$T/az.err" ||
	fail "no clear refusal of a cluster in 2 AZs: $(cat "$T/az.err")"
mountpoint -q "$M1" && fail "something is mounted after the refusal"
note "a cluster in 2 AZs refused at mount: $(cat "$T/az.err")"

# hosts GROUP: the nodes whose replica lines name GROUP, sorted, comma-separated.
hosts() {
	status | awk -v g="$1" '$1 == "group" && $2 == g && $3 == "node" { print $4 }' | sort -n | paste -sd,
}

for n in 1 2 3 4 5; do start_node $n; done
"$QFS_BIN" mount -o "cluster=$C" "$T/s1" "$M1" || fail "mount 1"

# ---- 2. placement of six tables
for t in 1 2 3 4 5 6; do
	mkdir "$M1/t$t" || fail "mkdir of table t$t"
	head -c $((1000 + t)) /dev/urandom >"$T/f$t"
	cp "$T/f$t" "$M1/t$t/f" || fail "write in table t$t"
done
P=$M1/.quorumfs/partitions
[ "$(grep -c '^table t[1-6] partition ' "$P")" -eq 6 ] || fail "not one partition per table: $(cat "$P")"
declare -A COUNT
for n in 1 2 3 4 5; do COUNT[$n]=0; done
while read -r name group reps azs; do
	ids=${reps//,/ }
	[ "$(echo $ids | wc -w)" -eq 3 ] || fail "table $name: not 3 replicas: $reps"
	[ "$(echo $ids | tr ' ' '\n' | sort -u | wc -l)" -eq 3 ] || fail "table $name: a node twice: $reps"
	want_azs=""
	for i in $ids; do
		[ "$i" -ge 1 ] && [ "$i" -le 5 ] || fail "table $name: no node $i"
		want_azs="$want_azs${want_azs:+,}$(az_of "$i")"
		COUNT[$i]=$((COUNT[$i] + 1))
	done
	[ "$azs" = "$want_azs" ] || fail "table $name: azs $azs, the cluster file says $want_azs"
	[ "$(echo "$azs" | tr ',' '\n' | sort -u | wc -l)" -eq 3 ] || fail "table $name: AZs not distinct: $azs"
	# a create is acknowledged by 2 of its 3 nodes: the third replica (its
	# answer late on a loaded machine, or its reconciler's next round, 3 s)
	# may come later: waited for, 30 s at most (a fixed 4 s before the map
	# was read came first, which this wait made needless)
	want=$(echo $ids | tr ' ' '\n' | sort -n | paste -sd,)
	for _ in $(seq 150); do
		got=$(hosts "$group")
		[ "$got" = "$want" ] && break
		sleep 0.2
	done
	[ "$got" = "$want" ] || fail "table $name: group $group is hosted on nodes $got, placed on $reps"
	eval "REPS_$name=\"$ids\" GROUP_$name=$group"
done < <(awk '$1 == "table" && $2 ~ /^t[1-6]$/ {
	for (i = 1; i < NF; i++) { if ($i == "replicas") r = $(i + 1); if ($i == "azs") z = $(i + 1) }
	print $2, $6, r, z }' "$P")
note "replicas per node: 1:${COUNT[1]} 2:${COUNT[2]} 3:${COUNT[3]} 4:${COUNT[4]} 5:${COUNT[5]} (AZs $AZS)"
[ "${COUNT[3]}" -eq 6 ] || fail "node 3, alone in AZ c, must host every partition: ${COUNT[3]}"
for pair in "1 4" "2 5"; do
	set -- $pair
	for n in $1 $2; do
		[ "${COUNT[$n]}" -ge 1 ] && [ "${COUNT[$n]}" -lt 6 ] ||
			fail "node $n hosts ${COUNT[$n]} of 6 partitions: not spread"
	done
	d=$((COUNT[$1] - COUNT[$2]))
	[ "${d#-}" -le 1 ] || fail "nodes $1 and $2 (one AZ) host ${COUNT[$1]} and ${COUNT[$2]}: not balanced"
done
for t in 1 2 3 4 5 6; do cmp -s "$T/f$t" "$M1/t$t/f" || fail "table t$t: file differs"; done

# ---- 3. a table node 1 does not host, also through a fresh mount
TX=""
for t in 1 2 3 4 5 6; do
	eval "r=\$REPS_t$t"
	case " $r " in *" 1 "*) ;; *) TX=t$t; break ;; esac
done
[ -n "$TX" ] || fail "every partition has a replica on node 1"
eval "GX=\$GROUP_$TX RX=\$REPS_$TX"
"$QFS_BIN" mount -o "cluster=$C" "$T/s2" "$M2" || fail "mount 2"
cmp -s "$T/f${TX#t}" "$M2/$TX/f" || fail "mount 2 does not read table $TX (nodes $RX)"
echo again >"$M2/$TX/g" || fail "mount 2: write in table $TX (nodes $RX)"
[ "$(cat "$M1/$TX/g")" = again ] || fail "mount 1 does not see mount 2's file in $TX"
note "table $TX on nodes $RX (not node 1) works through both mounts"

# ---- 4. kill -9 of the partition's leader, and of a node outside it, under an fsyncing writer
wait_more() { # WHAT: wait (30 s at most: an election plus fsyncs on a loaded machine) for 5 more acknowledged files
	local before=$1
	for _ in $(seq 300); do [ "$(wc -l <"$T/w.acked")" -ge $((before + 5)) ] && return 0; sleep 0.1; done
	fail "writes stalled $2 ($(cat "$T/writer.out"))"
}
rm -f "$T/STOP"
writer "$M1/$TX" w 60 >"$T/writer.out" 2>&1 &
WPID=$!
# (its list of acknowledged files exists once python has started: under
# ASan on a loaded machine that took more than a fixed second did)
for _ in $(seq 300); do [ -e "$T/w.acked" ] && break; sleep 0.1; done
[ -e "$T/w.acked" ] || fail "the writer did not start: $(cat "$T/writer.out")"
# a leader (elected, or re-elected after a slow heartbeat): 30 s at most
for _ in $(seq 300); do L=$(leader_of "$GX"); [ -n "$L" ] && break; sleep 0.1; done
[ -n "$L" ] || fail "no leader of group $GX"
OUT=""
for n in 1 2 3 4 5; do case " $RX " in *" $n "*) ;; *) OUT=$n ;; esac; done
before=$(wc -l <"$T/w.acked")
kill -9 "$(pid_of "$L")"
note "killed node $L (pid $(pid_of "$L")), the leader of $TX's group"
wait_more "$before" "while the leader (node $L) was down"
kill -0 "$WPID" 2>/dev/null || fail "the writer stopped: $(cat "$T/writer.out")"
start_node "$L"
OTHERS=$(echo $RX | tr ' ' '\n' | grep -v "^$L\$" | tr '\n' ' ')
caught_up "$L" "$GX" $OTHERS
note "node $L restarted and caught up (applied $(applied "$L" "$GX"))"
before=$(wc -l <"$T/w.acked")
kill -9 "$(pid_of "$OUT")"
note "killed node $OUT, which hosts no replica of $TX"
wait_more "$before" "while node $OUT (no replica of $TX) was down"
touch "$T/STOP"
wait "$WPID" || fail "the writer saw a client error: $(cat "$T/writer.out")"
note "writer: $(cat "$T/writer.out")"
verify "$M1/$TX" "$T/w.acked" || fail "mount 1 lost an acknowledged file"
verify "$M2/$TX" "$T/w.acked" || fail "mount 2 does not see every closed file"
start_node "$OUT"
[ "$(hosts "$GX")" = "$(echo $RX | tr ' ' '\n' | sort -n | paste -sd,)" ] ||
	fail "group $GX is now hosted on $(hosts "$GX"), placed on $RX"

# ---- 5. membership: replace a dead node's replicas, then one live replica
# (a status or partitions read waits 2 s for a dead node: read them once
# into $T/parts and $T/st per step)
snap() { cat "$P" >"$T/parts" && status >"$T/st"; }
# parts_of NODE: the tables whose partition map names NODE among the replicas.
parts_of() {
	awk -v n="$1" '$1 == "table" { for (i = 1; i < NF; i++) if ($i == "replicas") {
		k = split($(i + 1), r, ","); for (j = 1; j <= k; j++) if (r[j] == n) print $2 } }' "$T/parts"
}
replicas_of() { awk -v t="$1" '$1 == "table" && $2 == t { for (i = 1; i < NF; i++) if ($i == "replicas") print $(i + 1) }' "$T/parts"; }
azs_of() { awk -v t="$1" '$1 == "table" && $2 == t { for (i = 1; i < NF; i++) if ($i == "azs") print $(i + 1) }' "$T/parts"; }
shosts() { awk -v g="$1" '$1 == "group" && $2 == g && $3 == "node" { print $4 }' "$T/st" | sort -n | paste -sd,; }
D=4
snap
[ -n "$(parts_of $D)" ] || fail "node $D hosts no partition"
MOVED=$(parts_of $D | tr '\n' ' ')
rm -f "$T/STOP"
writer "$M1/$TX" r 100 >"$T/writer.out" 2>&1 &
WPID=$!
sleep 1
kill -9 "$(pid_of $D)"
NODE_PIDS=$(echo $NODE_PIDS | tr ' ' '\n' | grep -v "^$(pid_of $D)\$" | tr '\n' ' ')
note "killed node $D for good; it held $MOVED"
if "$QFS_BIN" member -o "cluster=$C" replace $D 2 2>"$T/member.err"; then
	fail "replace of node $D (AZ a) by node 2 (AZ b) was accepted"
fi
grep -q "already in AZ b" "$T/member.err" || fail "no clear refusal of a second replica in AZ b: $(tail -3 "$T/member.err")"
"$QFS_BIN" member -o "cluster=$C" replace $D 1 >"$T/member.out" 2>"$T/member.err" ||
	fail "member replace $D 1: $(tail -5 "$T/member.err")"
kill -0 "$WPID" 2>/dev/null || fail "the writer stopped during the replace: $(cat "$T/writer.out")"
note "member replace $D 1: $(tr '\n' ';' <"$T/member.out")"
grep -q " members .*\b$D\b" "$T/member.out" && fail "node $D is still a member: $(cat "$T/member.out")"
[ "$(grep -c "^group [0-9a-f]* members " "$T/member.out")" -ge "$(echo $MOVED | wc -w)" ] ||
	fail "not every group of node $D moved: $(cat "$T/member.out")"
snap
[ -z "$(parts_of $D)" ] || fail "the partition map still names node $D for $(parts_of $D | tr '\n' ' ')"
for t in $MOVED; do
	r=$(replicas_of "$t")
	case ",$r," in *,1,*) ;; *) fail "table $t: node 1 did not take node $D's place: $r" ;; esac
	[ "$(azs_of "$t" | tr ',' '\n' | sort -u | wc -l)" -eq 3 ] || fail "table $t: AZs not distinct after the replace: $(azs_of "$t")"
	eval "g=\$GROUP_$t"
	[ "$(shosts "$g")" = "$(echo "$r" | tr ',' '\n' | sort -n | paste -sd,)" ] ||
		fail "table $t: group $g hosted on $(shosts "$g"), map says $r"
done
before=$(wc -l <"$T/r.acked")
wait_more_r() { for _ in $(seq 300); do [ "$(wc -l <"$T/r.acked")" -ge $((before + 5)) ] && return 0; sleep 0.1; done; fail "writes stalled after the replace"; }
wait_more_r
# node 4 comes back: it drops the replicas it lost (no longer a member);
# then one live replica of $TX: node 5 (AZ b) by node 2 (AZ b)
start_node $D
for _ in $(seq 100); do
	left=""
	for t in $MOVED; do eval "g=\$GROUP_$t"; case ",$(hosts "$g")," in *,$D,*) left="$left $t" ;; esac; done
	[ -z "$left" ] && break
	sleep 0.1
done
[ -z "$left" ] || fail "node $D still hosts the replicas of$left after its return"
note "node $D came back and dropped its old replicas"
eval "GX=\$GROUP_$TX"
# lookups (of new names: no cached entry) through both mounts
# while the replica moves: a node that dropped its copy answers "no such
# group", which the router must take as "ask the others", never ESTALE
looker() { # DIR TAG: look up fresh names until STOP2 exists
	python3 - "$1" "$T/STOP2" "$2" <<'PY'
import os, sys, time
d, stop, tag = sys.argv[1], sys.argv[2], sys.argv[3]
i, t0 = 0, time.time()
while not os.path.exists(stop):
    try:
        os.stat(os.path.join(d, "absent-%s-%d" % (tag, i)))
        sys.exit("absent name %s-%d found" % (tag, i))
    except FileNotFoundError:
        pass
    except OSError as e:
        sys.exit("client error on lookup %d in %s: %s" % (i, d, e))
    time.sleep(0.005)
    i += 1
print("%d lookups in %.1f s" % (i, time.time() - t0))
PY
}
rm -f "$T/STOP2"
looker "$M1/$TX" a >"$T/look1.out" 2>&1 &
LPID1=$!
looker "$M2/$TX" b >"$T/look2.out" 2>&1 &
LPID2=$!
"$QFS_BIN" member -o "cluster=$C" replace 5 2 "$GX" >"$T/member.out" 2>"$T/member.err" ||
	fail "member replace 5 2 $GX: $(tail -5 "$T/member.err")"
sleep 0.3 # the dropped replica's last answers
touch "$T/STOP2"
wait "$LPID1" || fail "mount 1 saw a client error during the live replace: $(cat "$T/look1.out")"
wait "$LPID2" || fail "mount 2 saw a client error during the live replace: $(cat "$T/look2.out")"
note "lookups during the live replace: $(cat "$T/look1.out") (mount 1), $(cat "$T/look2.out") (mount 2); the routers asked again after \"no such group\" $(cat "$T"/s1/quorumfs.log "$T"/s2/quorumfs.log | grep -c "route regroup group=$GX") times"
snap
r=$(replicas_of "$TX")
case ",$r," in *,2,*) ;; *) fail "table $TX: node 2 did not take node 5's place: $r" ;; esac
case ",$r," in *,5,*) fail "table $TX: node 5 is still a replica: $r" ;; esac
[ "$(shosts "$GX")" = "$(echo "$r" | tr ',' '\n' | sort -n | paste -sd,)" ] ||
	fail "table $TX: group $GX hosted on $(shosts "$GX") after the live replace, map says $r"
caught_up 2 "$GX" $(echo "$r" | tr ',' ' ')
note "live replace of node 5 by node 2 for $TX: replicas $r"
# a second run finds the change done; a removal of a non-member is refused
"$QFS_BIN" member -o "cluster=$C" replace 5 2 "$GX" >"$T/member.out" 2>"$T/member.err" ||
	fail "a second member replace 5 2 $GX failed: $(tail -3 "$T/member.err")"
grep -q "^group $GX members $r\$" "$T/member.out" || fail "second run: $(cat "$T/member.out")"
if "$QFS_BIN" member -o "cluster=$C" remove "$GX" 5 >"$T/member.out" 2>"$T/member.err"; then
	fail "removing node 5, no longer a member of $GX, was accepted"
fi
grep -q "old is not a member" "$T/member.err" || fail "no clear refusal: $(tail -3 "$T/member.err")"
# node 5 added back to the group it just left (its copy was dropped): the
# new replica starts with the leader's vote floor (doc/paxos.md section
# 7), catches up, and is removed again
t0=$SECONDS
"$QFS_BIN" member -o "cluster=$C" add "$GX" 5 >"$T/member.out" 2>"$T/member.err" ||
	fail "member add $GX 5 (back): $(tail -5 "$T/member.err")"
fl=$(cat "$T/n5/groups/$GX.floor" 2>/dev/null)
case "$fl" in "floor "[1-9]*" "[1-9]*) ;; *) fail "node 5 was added back without a vote floor: '$fl'" ;; esac
grep -q "^group $GX members .*\b5\b" "$T/member.out" || fail "add back: $(cat "$T/member.out")"
caught_up 5 "$GX" $(echo "$r" | tr ',' ' ')
"$QFS_BIN" member -o "cluster=$C" remove "$GX" 5 >"$T/member.out" 2>"$T/member.err" ||
	fail "member remove $GX 5 after the add back: $(tail -5 "$T/member.err")"
grep -q "^group $GX members $r\$" "$T/member.out" || fail "remove after the add back: $(cat "$T/member.out")"
note "node 5 added back to $GX with a vote floor ($fl), caught up, removed again ($((SECONDS - t0)) s)"
# node 5 hosts a replica of $GX that no configuration names (an orphan: a
# join whose CONFIG never committed): `member add` takes it over through a
# JOIN all the same (-EEXIST), which restarts its orphan grace and waits
# for or keeps out its reconciler's drop (doc/cluster.md "Orphan
# replicas"), so the CONFIG never adds a node whose replica was just dropped
kill -TERM "$(pid_of 5)"
for _ in $(seq 100); do kill -0 "$(pid_of 5)" 2>/dev/null || break; sleep 0.1; done
kill -0 "$(pid_of 5)" 2>/dev/null && fail "node 5 did not stop on SIGTERM"
[ ! -e "$T/n5/groups/$GX" ] || fail "node 5 still hosts $GX after its removal"
echo "members $(echo "$r" | tr ',' ' ')" >"$T/n5/groups/$GX"
start_node 5
"$QFS_BIN" member -o "cluster=$C" add "$GX" 5 >"$T/member.out" 2>"$T/member.err" ||
	fail "member add $GX 5 (its orphan there): $(tail -5 "$T/member.err")"
grep -q "^group $GX members .*\b5\b" "$T/member.out" || fail "add over the orphan: $(cat "$T/member.out")"
qgrep "node member join group=$GX node=5 .*err=\"File exists\"" <"$T/n5/quorumfs-node.log" ||
	fail "member add took node 5's orphan replica of $GX over without a JOIN: $(grep "group=$GX" "$T/n5/quorumfs-node.log" | tail -3)"
caught_up 5 "$GX" $(echo "$r" | tr ',' ' ')
"$QFS_BIN" member -o "cluster=$C" remove "$GX" 5 >"$T/member.out" 2>"$T/member.err" ||
	fail "member remove $GX 5 after the take-over: $(tail -5 "$T/member.err")"
grep -q "^group $GX members $r\$" "$T/member.out" || fail "remove after the take-over: $(cat "$T/member.out")"
note "node 5's orphan replica of $GX taken over by member add through a JOIN, caught up, removed again"
touch "$T/STOP"
wait "$WPID" || fail "the writer saw a client error during the membership changes: $(cat "$T/writer.out")"
note "writer: $(cat "$T/writer.out")"
verify "$M1/$TX" "$T/r.acked" || fail "an acknowledged file was lost across the membership changes"
verify "$M2/$TX" "$T/r.acked" || fail "mount 2 does not see every file after the membership changes"
for t in 1 2 3 4 5 6; do cmp -s "$T/f$t" "$M2/t$t/f" || fail "table t$t: file differs after the changes"; done

fusermount3 -u "$M2" || fail "unmount 2"
fusermount3 -u "$M1" || fail "unmount 1"
exit 0
