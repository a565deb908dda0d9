#!/bin/bash
# tests/integration/availability.sh - client-side availability, alarms,
# canary and metrics (doc/availability.md).
#
# Mount with short windows (-o alarm_window=6s: the "1 min" window is 6 s,
# a test-only shortening), alarm_min_requests=3, a 1 s canary and a
# metrics listener on a random loopback port.
# 1. Formats: .quorumfs/availability has a "windows" header line and one
#    line per table and op starting "table NAME op OP" with key value pairs
#    (integers); a table named with a space shows as \040.  Bad option
#    values are refused (exit 2) before mounting.
# 2. A user-error workload (ENOENT lookups) is counted as err_ENOENT with
#    no server errors and raises no alarm.
# 3. The canary runs (canary_ok grows), reads its item back from each of
#    the three nodes alone (read_node1..3), and leaves nothing in ls -a of
#    the root, the table or an rsync copy of the mount.  With node 3
#    stopped its read_node3 counts EHOSTDOWN and no canary alarm rises.
# 4. Two of three nodes stopped: lookups fail with ETIMEDOUT, counted as
#    err_ETIMEDOUT (also when the walk fails at the root's lookup of the
#    table's name: the dentry cache is dropped first); the availability
#    alarm of the table and the canary
#    alarm appear in .quorumfs/alarms (and one log line each); after both
#    nodes start again both alarms clear.  Bounds are generous: only hangs fail.
# 5. /metrics over HTTP (curl, loopback) and .quorumfs/metrics pass
#    tests/lib/promcheck.py (a strict exposition-format checker; promtool
#    and a real Prometheus scrape: tests/integration/prometheus.sh), carry table/op labels with
#    the table name unescaped, and another path answers 404.
# 6. A sub-second canary_interval (100ms) runs rounds faster than once a
#    second; a new table's lines carry its name from its first request, a
#    renamed table's take its new name within 5 s; a table dropped and
#    made again under its name has one series per label set; metrics_listen with a port beyond 65535 or a service name is
#    a bad value (step 1).

. "${QFS_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"

qfs_require python3 curl rsync timeout
set -o pipefail
# a port the kernel says is free now (free_ports of tests/lib/cluster.sh),
# not a random pick in 20000-39999: that range overlaps the ephemeral ports
# of every connection other tests make (and their TIME_WAITs), so a random
# port could be taken and the mount fail to listen
. "$QFS_SRCDIR/tests/lib/cluster.sh"
PORT=$(free_ports 1)
[ -n "$PORT" ] || fail "no free TCP port on 127.0.0.1"
qfs_setup -o quorum_timeout=1s,alarm_window=6s,alarm_min_requests=3,canary_interval=1s,metrics_listen=127.0.0.1:$PORT
echo "$QFS_PID" >"$T/daemon.pid"
watchdog 240
AV=$MNT/.quorumfs/availability
AL=$MNT/.quorumfs/alarms

# line TABLE_ESCAPED OP: the availability line of a table and op
line() { T_="$1" O_="$2" awk '$1 == "table" && $2 == ENVIRON["T_"] && $3 == "op" && $4 == ENVIRON["O_"]' "$AV"; }
# field LINE KEY: the value after KEY
field() { awk -v k="$2" '{ for (i = 1; i < NF; i++) if ($i == k) { print $(i + 1); exit } }' <<<"$1"; }

# --- 1. formats, bad options
for bad in alarm_error_rate=2 alarm_error_rate=x alarm_window=1ms canary_interval=soon metrics_listen=nocolon \
	metrics_listen=127.0.0.1:99999 metrics_listen=127.0.0.1:http \
	alarm_min_requests=0; do
	mkdir -p "$T/m2"
	rc=0
	timeout 20 "$QFS_BIN" mount -f -o "$bad" "$T/d2" "$T/m2" >"$T/bad.out" 2>&1 || rc=$?
	[ $rc -eq 2 ] || { fusermount3 -u "$T/m2" 2>/dev/null; fail "-o $bad: exit $rc, expected 2"; }
	grep -q "bad value" "$T/bad.out" || fail "-o $bad: no message saying why: $(cat "$T/bad.out")"
done

TB="tab one"
TE='tab\040one'
mkdir "$MNT/$TB" || fail "mkdir table"
head -c 100000 /dev/urandom >"$T/f"
cp "$T/f" "$MNT/$TB/f" || fail "write a file"
cmp "$T/f" "$MNT/$TB/f" || fail "read back"
for _ in $(seq 50); do grep -q "^table $TE op write " "$AV" && break; sleep 0.2; done
head -1 "$AV" | qgrep '^windows w1 6s w2 30s w3 360s ' || fail "bad header: $(head -1 "$AV")"
awk 'NR > 1 {
	if ($1 != "table" || $3 != "op" || NF % 2) { print "bad line " NR ": " $0; exit 1 }
	for (i = 5; i < NF; i += 2) if ($(i + 1) !~ /^[0-9]+$/) { print "bad value " $i " line " NR; exit 1 }
}' "$AV" || fail "availability format"
l=$(line "$TE" write)
[ -n "$l" ] || fail "no line for table '$TE' op write: $(cat "$AV")"
[ "$(field "$l" count)" -ge 1 ] && [ "$(field "$l" errors)" -eq 0 ] || fail "write line: $l"
for k in w1_p50_us w1_p99_us w1_p999_us w2_count w3_server_errors; do
	[ -n "$(field "$l" $k)" ] || fail "no $k in: $l"
done
line / lookup | qgrep . || fail "lookups at the root not counted under the pseudo-table /"

# --- 2. user errors: no alarm
for i in $(seq 40); do stat "$MNT/$TB/missing$i" >/dev/null 2>&1 && fail "missing$i exists"; done
l=$(line "$TE" lookup)
[ "$(field "$l" err_ENOENT)" -ge 40 ] || fail "ENOENT lookups not counted: $l"
[ "$(field "$l" server_errors)" -eq 0 ] || fail "ENOENT counted as a server error: $l"
sleep 1.5
grep -q '^alarm availability' "$AL" && fail "user errors raised an alarm: $(cat "$AL")"

# --- 3. canary runs, invisible
c0=$(awk 'NR == 1 { for (i = 1; i < NF; i++) if ($i == "canary_ok") print $(i + 1) }' "$AV")
ok=0
for _ in $(seq 60); do
	c=$(awk 'NR == 1 { for (i = 1; i < NF; i++) if ($i == "canary_ok") print $(i + 1) }' "$AV")
	[ "$c" -ge $((c0 + 2)) ] && { ok=1; break; }
	sleep 0.5
done
[ $ok = 1 ] || fail "canary_ok did not grow from $c0: $(head -1 "$AV")"
line '/canary' round | qgrep . || fail "no canary line: $(cat "$AV")"
for n in 1 2 3; do # per node/AZ reads of the canary's item
	# (30 s at most: a follower lagging the acknowledgement by more than
	# the canary's 2 s on a loaded machine fails that round's read)
	for _ in $(seq 60); do
		l=$(line '/canary' read_node$n)
		[ "$(field "$l" ok)" -ge 1 ] 2>/dev/null && break
		sleep 0.5
	done
	[ "$(field "$l" ok)" -ge 1 ] || fail "canary read from node $n never succeeded: $l"
done
[ "$(ls -A "$MNT")" = "$TB" ] || fail "root lists more than the table: $(ls -A "$MNT")"
[ "$(ls -A "$MNT/$TB")" = f ] || fail "table lists more than f: $(ls -A "$MNT/$TB")"
rsync -a "$MNT/" "$T/copy/" || fail "rsync"
[ "$(cd "$T/copy" && find . | sort | tr '\n' ' ')" = ". ./tab one ./tab one/f " ] ||
	fail "rsync copied more: $(cd "$T/copy" && find .)"

# one node down: the canary's read from it fails (EHOSTDOWN), its rounds
# still succeed (no canary alarm: users see nothing)
echo stop 3 >"$MNT/.quorumfs/nodes" || fail "stop 3"
seen=0
for _ in $(seq 100); do
	[ "$(field "$(line '/canary' read_node3)" err_EHOSTDOWN)" ] && { seen=1; break; }
	sleep 0.3
done
[ $seen = 1 ] || fail "no EHOSTDOWN canary read from the stopped node 3: $(line '/canary' read_node3)"
grep -q '^alarm canary' "$AL" && fail "one node down raised the canary alarm: $(cat "$AL")"
echo start 3 >"$MNT/.quorumfs/nodes" || fail "start 3"

# --- 4. quorum lost: alarms up, then cleared
echo stop 2 >"$MNT/.quorumfs/nodes" || fail "stop 2"
echo stop 3 >"$MNT/.quorumfs/nodes" || fail "stop 3"
# the kernel may drop the table's entry (memory pressure; a revalidation
# that failed): the path walk then fails at the root's lookup of the
# table's name, which must still count for that table (it counted for "/",
# and the table's alarm never rose).  Drop it for sure (unused dentries,
# system-wide; harmless).
sync
qfs_drop_caches 2 || note "cannot drop the dentry cache"
up=0
end=$((SECONDS + 60))
i=0
while [ $SECONDS -lt $end ]; do
	i=$((i + 1))
	err=$(timeout 20 stat "$MNT/$TB/new$i" 2>&1) && fail "stat new$i succeeded without a quorum"
	# (the first ones may still be answered under the leader's lease: ENOENT)
	grep -q "timed out\|No such file" <<<"$err" || fail "stat without a quorum: $err (expected ETIMEDOUT)"
	if grep -q "^alarm availability raised .* table=$(printf '%s' "$TE" | sed 's/\\/\\\\/g') " "$AL" &&
		grep -q '^alarm canary raised ' "$AL"; then
		up=1
		break
	fi
	sleep 0.2
done
[ $up = 1 ] || fail "alarms not raised within 60 s of losing the quorum ($i lookups): $(cat "$AL")"
l=$(line "$TE" lookup)
[ "$(field "$l" err_ETIMEDOUT)" -ge 1 ] && [ "$(field "$l" server_errors)" -ge 1 ] ||
	fail "ETIMEDOUT not counted: $l"
grep -q 'alarm raised kind=availability table=tab\\040one' "$T/daemon.out" ||
	grep -q 'alarm raised kind=availability table=tab one' "$T/daemon.out" ||
	fail "no log line for the availability alarm"
grep -q 'alarm raised kind=canary' "$T/daemon.out" || fail "no log line for the canary alarm"
# the test hook's log line is a key=value event too (it was
# "control command 'stop 2' done (test hook)")
grep -q 'WARN control command done cmd=stop\\0402 hook=test$' "$T/daemon.out" ||
	fail "no key=value log line for the stop 2 command: $(grep 'control command' "$T/daemon.out")"
echo start 2 >"$MNT/.quorumfs/nodes" || fail "start 2"
echo start 3 >"$MNT/.quorumfs/nodes" || fail "start 3"
clear=0
for _ in $(seq 120); do
	stat "$MNT/$TB/f" >/dev/null 2>&1
	if ! grep -q '^alarm availability\|^alarm canary' "$AL"; then
		clear=1
		break
	fi
	sleep 0.5
done
[ $clear = 1 ] || fail "alarms not cleared within 60 s of the restart: $(cat "$AL")"
grep -q 'alarm cleared kind=canary' "$T/daemon.out" || fail "no log line for the canary alarm clearing"
cmp "$T/f" "$MNT/$TB/f" || fail "file changed"

# --- 5. metrics
curl -sS --max-time 20 -o "$T/metrics.http" -w '%{http_code} %{content_type}\n' "http://127.0.0.1:$PORT/metrics" \
	>"$T/curl.out" || fail "curl /metrics"
grep -q '^200 text/plain; version=0.0.4' "$T/curl.out" || fail "metrics reply: $(cat "$T/curl.out")"
python3 "$QFS_SRCDIR/tests/lib/promcheck.py" "$T/metrics.http" || fail "/metrics is not valid exposition text"
cp "$MNT/.quorumfs/metrics" "$T/metrics.file"
python3 "$QFS_SRCDIR/tests/lib/promcheck.py" "$T/metrics.file" || fail ".quorumfs/metrics is not valid"
for m in quorumfs_requests_total quorumfs_errors_total quorumfs_request_duration_seconds \
	quorumfs_canary_rounds_total quorumfs_alarms_active; do
	grep -q "^# TYPE $m " "$T/metrics.http" || fail "no $m in /metrics"
	grep -q "^# TYPE $m " "$T/metrics.file" || fail "no $m in .quorumfs/metrics"
done
grep -q '^quorumfs_requests_total{table="tab one",op="write"} [1-9]' "$T/metrics.http" ||
	fail "no write counter of 'tab one' in /metrics"
grep -q '^quorumfs_errors_total{table="tab one",op="lookup",errno="ETIMEDOUT",server="1"} [1-9]' "$T/metrics.http" ||
	fail "no ETIMEDOUT counter in /metrics"
code=$(curl -s --max-time 20 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/other")
[ "$code" = 404 ] || fail "/other answered $code, expected 404"

qfs_umount

# --- 6. a sub-second canary_interval is honoured (the ticker used to run
# rounds once a second whatever the interval): 10 rounds of 100 ms within
# 8 s (a round-per-second ticker makes at most 8)
mkdir -p "$T/d6" "$T/m6"
QFS_PID=
QFS_EXTRA_UMOUNTS=$T/m6 # the EXIT trap unmounts it if a check fails
"$QFS_BIN" mount -f -o canary_interval=100ms "$T/d6" "$T/m6" >>"$T/daemon.out" 2>&1 &
P6=$!
# (60 s at most, as qfs_mount: a loaded machine opens the stores slowly)
for _ in $(seq 1200); do [ -e "$T/m6/.quorumfs/availability" ] && break; sleep 0.05; done
[ -e "$T/m6/.quorumfs/availability" ] || fail "the canary_interval=100ms mount did not come up"
s6=$SECONDS
c=0
while [ $((SECONDS - s6)) -lt 8 ]; do
	c=$(awk 'NR == 1 { for (i = 1; i < NF; i++) if ($i == "canary_ok") print $(i + 1) }' "$T/m6/.quorumfs/availability")
	[ "$c" -ge 10 ] && break
	sleep 0.2
done
# a new table's first requests show under its name at once (they showed
# as group-%016x until the next name refresh)
mkdir "$T/m6/fresh" && echo x >"$T/m6/fresh/f" || fail "mkdir table fresh"
grep -q '^table group-' "$T/m6/.quorumfs/availability" &&
	fail "a new table shows as a group id: $(grep -o '^table group-[^ ]* op [^ ]*' "$T/m6/.quorumfs/availability")"
grep -q 'table="group-' "$T/m6/.quorumfs/metrics" && fail "a new table shows as a group id in the metrics"
grep -q '^table fresh op create ' "$T/m6/.quorumfs/availability" || fail "no create line of the new table"
# a renamed table's lines follow its new name at the next tick (they kept
# the old name up to 30 s)
mkdir "$T/m6/old" && ls "$T/m6/old" >/dev/null || fail "mkdir table old"
for _ in $(seq 50); do grep -q '^table old op ' "$T/m6/.quorumfs/availability" && break; sleep 0.1; done
mv "$T/m6/old" "$T/m6/new" && ls "$T/m6/new" >/dev/null || fail "rename table old to new"
renamed=0
for _ in $(seq 50); do
	if grep -q '^table new op ' "$T/m6/.quorumfs/availability" &&
		! grep -q '^table old op ' "$T/m6/.quorumfs/availability"; then
		renamed=1
		break
	fi
	sleep 0.1
done
[ $renamed = 1 ] || fail "5 s after a table rename: $(grep -o '^table [^ ]* op [^ ]*' "$T/m6/.quorumfs/availability")"
# a table dropped and made again under the same name: one series per
# label set (the dropped table's id kept the name up to 30 s: /metrics
# showed table="again" twice for each op both had, which Prometheus rejects)
mkdir "$T/m6/again" && echo x >"$T/m6/again/f" && rm "$T/m6/again/f" && rmdir "$T/m6/again" &&
	mkdir "$T/m6/again" && echo y >"$T/m6/again/g" || fail "drop and make again table again"
cat "$T/m6/.quorumfs/metrics" >"$T/metrics.again" || fail "read .quorumfs/metrics (m6)"
python3 "$QFS_SRCDIR/tests/lib/promcheck.py" "$T/metrics.again" ||
	fail "a table made again under a dropped one's name: $(grep 'table="again"' "$T/metrics.again" | sort | uniq -d | head -3)"
fusermount3 -u "$T/m6" || fail "unmount m6"
wait "$P6" || fail "the canary_interval=100ms mount exited non-zero"
[ "$c" -ge 10 ] || fail "canary_interval=100ms: only $c rounds in 8 s"
echo "PASS availability"
