#!/bin/bash
# logrep_bench.sh - log replica vs storage rebuild (doc/cluster.md "Log
# replicas"): five `quorumfs node` processes on 127.0.0.1 (AZs a b c a b)
# with -o heal_after=H, one table filled with MIB MiB of random files,
# then kill -9 of a (non-leader) member of its group and:
#   - time from the kill to a healthy durable quorum: the leader's log line
#     "node heal log replica added" (the CONFIG entry that adds the log
#     replica committed: three members acknowledge), and the part of it
#     after heal_after (the healer's own work);
#   - the node restarted: time of the storage replica's rebuild (join,
#     CONFIG, snapshot of the whole partition + log catch-up) from the
#     healer's "storage replica added" to "caught up", which is what a
#     full rebuild of that partition costs.
# Usage: QFS_BIN=build/fs/quorumfs tests/bench/logrep_bench.sh [MIB [H]]
# (defaults 256 MiB, heal_after 5 s).  Prints key=value lines.
set -u
: "${QFS_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$QFS_SRCDIR/tests/lib/common.sh"
. "$QFS_SRCDIR/tests/lib/cluster.sh"
MIB=${1:-256}
HEAL_AFTER=${2:-5}
T=$(mktemp -d /tmp/qfs-logrep-bench.XXXXXX)
M1=$T/m1
mkdir -p "$M1" "$T/s1"
NODE_PIDS=""
SMNT=$M1
cleanup() {
	fusermount3 -u "$M1" 2>/dev/null || fusermount3 -uz "$M1" 2>/dev/null || true
	for p in $NODE_PIDS; do kill -9 "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT
set -- $(free_ports 5)
new_key "$T/key"
AZS="a b c a b"
C=$T/cluster
{ i=1; for az in $AZS; do eval "echo node $i az $az addr 127.0.0.1:\$$i"; i=$((i + 1)); done; echo "key key"; } >"$C"
nlogs() { cat "$T"/n*/quorumfs-node.log 2>/dev/null; }
wait_log() { # PATTERN SECONDS
	for _ in $(seq $(($2 * 10))); do nlogs | qgrep "$1" && return 0; sleep 0.1; done
	fail "no '$1' within $2 s"
}
stamp_of() { # PATTERN: the wall time (s.ns) of the first node log line matching it
	nlogs | grep -h "$1" | head -1 | awk '{ print $1 }'
}

for n in 1 2 3 4 5; do start_node $n; done
"$QFS_BIN" mount -o "cluster=$C" "$T/s1" "$M1" || fail "mount"
mkdir "$M1/t" || fail mkdir
G=$(awk '$1 == "table" && $2 == "t" { print $6 }' "$M1/.quorumfs/partitions")
R=$(awk '$1 == "table" && $2 == "t" { for (i = 1; i < NF; i++) if ($i == "replicas") print $(i + 1) }' \
	"$M1/.quorumfs/partitions" | tr ',' ' ')
t0=$(date +%s.%N)
python3 - "$M1/t" "$MIB" <<'PY'
import os, sys
d, mib = sys.argv[1], int(sys.argv[2])
for i in range(mib):
    with open(os.path.join(d, "f%05d" % i), "wb") as f:
        f.write(os.urandom(1 << 20))
PY
t1=$(date +%s.%N)
echo "fill_mib=$MIB fill_s=$(python3 -c "print('%.1f' % ($t1 - $t0))") group=$G replicas=${R// /,}"
sleep 2
L=$(leader_of "$G")
D=""
for n in $R; do [ "$n" != "$L" ] && [ "$n" != 3 ] && D=$n; done
# a trickle of fsynced writes during the heal (a log replica needs entries to acknowledge)
rm -f "$T/STOP"
writer "$M1/t" w 600 >"$T/writer.out" 2>&1 &
WPID=$!
sleep 1
k0=$(date +%s.%N)
kill -9 "$(pid_of "$D")"
wait_log "node heal log replica added group=$G .*err=\"none\"" 60
k1=$(date +%s.%N)
line=$(nlogs | grep -h "node heal log replica added group=$G .*err=\"none\"" | head -1)
took=$(echo "$line" | grep -o 'took_ms=[0-9]*' | cut -d= -f2)
echo "kill_to_durable_quorum_s=$(python3 -c "print('%.2f' % ($k1 - $k0))") heal_after_s=$HEAL_AFTER healer_took_ms=$took (log replica added; polled every 0.1 s)"
wait_log "node heal member removed group=$G node=$D .*err=\"none\"" 30
start_node "$D"
r0=$(date +%s.%N)
wait_log "node heal storage replica caught up group=$G .*err=\"none\"" 1200
r1=$(date +%s.%N)
cu=$(nlogs | grep -h "node heal storage replica caught up group=$G .*err=\"none\"" | grep -o 'took_ms=[0-9]*' | cut -d= -f2)
echo "rebuild_s=$(python3 -c "print('%.2f' % ($cu / 1000.0))") restart_to_caught_up_s=$(python3 -c "print('%.2f' % ($r1 - $r0))") (storage replica: join + CONFIG + the whole partition, ${MIB} MiB, as log entries from LSN 1 or a snapshot)"
wait_log "node heal log replica retired group=$G" 60
touch "$T/STOP"
wait "$WPID" || fail "writer: $(cat "$T/writer.out")"
verify "$M1/t" "$T/w.acked" >/dev/null || fail "an acknowledged file was lost"
nlogs | grep -h "snapshot sent\|snapshot installed" | grep "group=$G" | tail -2
echo "writer: $(cat "$T/writer.out")"
