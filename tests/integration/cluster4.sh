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
#     partition's replicas changes nothing for it.
# Only 127.0.0.1.  Every node process is ours, killed by PID in the trap.
. "$QFS_SRCDIR/tests/lib/common.sh"
qfs_require fusermount3 python3 mountpoint

T=$(mktemp -d /tmp/qfs-cluster4.XXXXXX)
M1=$T/m1
M2=$T/m2
mkdir -p "$M1" "$M2" "$T/s1" "$T/s2"
NODE_PIDS=""

cleanup() {
	local rc=$?
	for m in "$M1" "$M2"; do
		fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null || true
	done
	for p in $NODE_PIDS; do
		kill -9 "$p" 2>/dev/null
	done
	if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
		for f in "$T"/n*/quorumfs-node.log "$T"/s1/quorumfs.log; do
			[ -f "$f" ] && { echo "--- tail of $f" >&2; tail -n 15 "$f" >&2; }
		done
	fi
	rm -rf "$T"
	exit $rc
}
trap cleanup EXIT
# A hang is a failure: stop everything after 100 s.
( for _ in $(seq 100); do sleep 1; kill -0 $$ 2>/dev/null || exit 0; done
  echo "FAIL: watchdog: still running after 100 s" >&2; kill -TERM $$ ) &

# Free ports on 127.0.0.1, one per node (bound then released).
set -- $(python3 -c '
import socket
ss = [socket.socket() for _ in range(5)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$T/key"
chmod 600 "$T/key"
AZS="a b c a b"
C=$T/cluster
{
	echo "# test cluster: 5 nodes, 3 AZs"
	i=1
	for az in $AZS; do
		eval "echo node $i az $az addr 127.0.0.1:\$$i"
		i=$((i + 1))
	done
	echo "key key"
} >"$C"
az_of() { echo $AZS | cut -d' ' -f"$1"; }

# ---- 1. fewer than 3 AZs: refused at mount
sed -e 's/^node 3 az c /node 3 az a /' -e 's/^node 5 az b /node 5 az a /' "$C" >"$T/cluster2"
if "$QFS_BIN" mount -o "cluster=$T/cluster2" "$T/s1" "$M1" 2>"$T/az.err"; then
	fail "a mount of a cluster in 2 AZs started"
fi
grep -q "fewer than 3 availability zones" "$T/az.err" ||
	fail "no clear refusal of a cluster in 2 AZs: $(cat "$T/az.err")"
mountpoint -q "$M1" && fail "something is mounted after the refusal"
note "a cluster in 2 AZs refused at mount: $(cat "$T/az.err")"

start_node() {
	"$QFS_BIN" node -o "cluster=$C,id=$1" "$T/n$1" 2>>"$T/node.err" ||
		fail "node $1 did not start: $(tail -n 3 "$T/node.err")"
	local p
	p=$(cat "$T/n$1/lock")
	[ -n "$p" ] && kill -0 "$p" || fail "node $1: no live pid in its lock file"
	NODE_PIDS="$NODE_PIDS $p"
	eval "PID$1=$p"
}
pid_of() { eval "echo \$PID$1"; }
status() { cat "$M1/.quorumfs/status"; }
# hosts GROUP: the nodes whose replica lines name GROUP, sorted, comma-separated.
hosts() {
	status | awk -v g="$1" '$1 == "group" && $2 == g && $3 == "node" { print $4 }' | sort -n | paste -sd,
}
applied() {
	status | awk -v n="$1" -v g="$2" '$1 == "group" && $2 == g && $3 == "node" && $4 == n {
		for (i = 5; i < NF; i++) if ($i == "applied") print $(i + 1) }'
}
leader_of() {
	status | awk -v g="$1" '$1 == "group" && $2 == g && / role leader / { print $4; exit }'
}
caught_up() { # NODE GROUP OTHERS...
	local n=$1 g=$2 want=0 a o
	shift 2
	for o in "$@"; do
		a=$(applied "$o" "$g")
		[ -n "$a" ] && [ "$a" -gt "$want" ] && want=$a
	done
	for _ in $(seq 200); do
		a=$(applied "$n" "$g")
		[ -n "$a" ] && [ "$a" -ge "$want" ] && return 0
		sleep 0.1
	done
	fail "node $n did not catch up on group $g: applied ${a:-none} want $want"
}

for n in 1 2 3 4 5; do start_node $n; done
"$QFS_BIN" mount -o "cluster=$C" "$T/s1" "$M1" || fail "mount 1"

# ---- 2. placement of six tables
for t in 1 2 3 4 5 6; do
	mkdir "$M1/t$t" || fail "mkdir of table t$t"
	head -c $((1000 + t)) /dev/urandom >"$T/f$t"
	cp "$T/f$t" "$M1/t$t/f" || fail "write in table t$t"
done
sleep 4 # one reconciliation round of every node (3 s)
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
	got=$(hosts "$group")
	[ "$got" = "$(echo $ids | tr ' ' '\n' | sort -n | paste -sd,)" ] ||
		fail "table $name: group $group is hosted on nodes $got, placed on $reps"
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
writer() { # DIR PREFIX SECONDS: write files until SECONDS passed or STOP exists
	python3 - "$@" <<'PY'
import os, sys, time, hashlib
d, prefix, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
top = os.path.dirname(os.path.dirname(d))
stop = os.path.join(top, "STOP")
acked = open(os.path.join(top, prefix + ".acked"), "w")
end, i = time.time() + secs, 0
while time.time() < end and not os.path.exists(stop):
    data = os.urandom(1000 + (i * 7919) % 60000)
    p = os.path.join(d, "%s%05d" % (prefix, i))
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, data)
        os.fsync(fd)
        os.close(fd)
    except OSError as e:
        print("client error on %s: %s" % (p, e), file=sys.stderr)
        sys.exit(1)
    acked.write("%s %s\n" % (os.path.basename(p), hashlib.sha256(data).hexdigest()))
    acked.flush()
    i += 1
print("wrote %d files" % i)
PY
}
verify() { # MOUNTDIR ACKED
	python3 - "$1" "$2" <<'PY'
import sys, hashlib, os
d, acked = sys.argv[1], sys.argv[2]
n = 0
for line in open(acked):
    name, h = line.split()
    with open(os.path.join(d, name), "rb") as f:
        if hashlib.sha256(f.read()).hexdigest() != h:
            sys.exit("acknowledged file %s differs" % name)
    n += 1
print("verified %d files" % n)
PY
}
wait_more() { # WHAT: wait (10 s at most) for 5 more acknowledged files
	local before=$1
	for _ in $(seq 100); do [ "$(wc -l <"$T/w.acked")" -ge $((before + 5)) ] && return 0; sleep 0.1; done
	fail "writes stalled $2 ($(cat "$T/writer.out"))"
}
rm -f "$T/STOP"
writer "$M1/$TX" w 60 >"$T/writer.out" 2>&1 &
WPID=$!
sleep 1
L=$(leader_of "$GX")
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

fusermount3 -u "$M2" || fail "unmount 2"
fusermount3 -u "$M1" || fail "unmount 1"
exit 0
