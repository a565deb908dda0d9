#!/bin/bash
# tests/integration/scrub.sh - the scrubber (doc/scrub.md) on a real mount
# with three replicas:
#
# 1. .quorumfs/scrub and .quorumfs/alarms: format, idle state, a pass on
#    "start" (root only: EACCES for others; EBUSY while one runs), passes 1,
#    a result line per group, no alarm.
# 2. Passes under a concurrent write workload (files written, renamed,
#    deleted while 4 passes run): 0 mismatches, 0 alarms.
# 3. Offline command: refused while mounted (exit 2), not a data dir
#    (exit 2), clean (exit 0).
# 4. An item of node 2's replica changed behind the log's back (written into
#    its RocksDB while unmounted with store_tool): the offline scrub names
#    the group, node 2 and the key (exit 1); mounted, a pass finds and
#    repairs it (mismatches 1, repaired 1, result repaired, alarm cleared),
#    and the offline scrub is clean again.
# 5. Node 3's item changed the same way: `quorumfs scrub --repair` repairs it
#    offline (exit 1: findings), the next offline scrub exits 0.
# 6. A byte flipped in one SST file of node 1: a pass reports the corrupt
#    node (alarm replica-corrupt), rebuilds it, every file reads back byte
#    for byte (never a wrong byte), the offline scrub is clean afterwards.
# 7. A byte flipped in the middle of node 3's WAL segment of the table: the
#    replica is rebuilt, files read back, the replicas agree.
# 8. With scrub_repair=off, a changed item of another table raises
#    scrub-mismatch; once that table is deleted, the next pass clears it.

. "${QFS_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"
. "$QFS_SRCDIR/tests/lib/scrub.sh"

qfs_require python3 awk timeout setpriv sha256sum
set -o pipefail
OPTS=scrub_interval=off,scrub_rate=8
qfs_setup -o "$OPTS"
echo "$QFS_PID" >"$T/daemon.pid"
watchdog "${QFS_SCRUB_TIMEOUT:-220}"
TOOL=$(dirname "$QFS_BIN")/../tests/unit/store_tool
[ -x "$TOOL" ] || fail "store_tool not built at $TOOL"
S=$MNT/.quorumfs/scrub
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3 # readable by the non-root user
A=$MNT/.quorumfs/alarms

# ctlw CMD [setpriv args...]: write CMD to the scrub file in one write(2);
# prints "ok" or the errno name
ctlw() {
	local cmd=$1
	shift
	"$@" "$PY" -c '
import errno, os, sys
try:
    fd = os.open(sys.argv[1], os.O_WRONLY)
    os.write(fd, sys.argv[2].encode() + b"\n")
    os.close(fd)
    print("ok")
except OSError as e:
    print(errno.errorcode[e.errno])' "$S" "$cmd"
}
# pass: start one (through ctlw, so a refusal names its errno) and wait
# for it; replaces the pass of tests/lib/scrub.sh
pass() {
	local out
	out=$(ctlw start)
	[ "$out" = ok ] || fail "writing start to $S: $out"
	wait_idle 60
}
# files: random content, journal of sha256
mkdir "$MNT/t" || fail "mkdir t"
python3 - "$MNT/t" "$T/sums" <<'EOF' || fail "writing files"
import os, sys, hashlib, random
d, j = sys.argv[1], sys.argv[2]
rnd = random.Random(11)
with open(j, "w") as out:
    for i in range(150):
        data = rnd.randbytes(rnd.choice([1, 300, 3000, 9000, 70000]))
        p = os.path.join(d, "f%03d" % i)
        with open(p, "wb") as f:
            f.write(data)
        out.write("%s  %s\n" % (hashlib.sha256(data).hexdigest(), "f%03d" % i))
EOF
G=$(qfs_group_of t) || fail "no group for t"
qfs_wait_agree "$G" 20 || fail "replicas do not agree before the test"

# --- 1. control files
[ "$(head -5 "$S" | awk '{print $1}' | tr '\n' ' ')" = "state passes mismatches repaired progress " ] ||
	{ cat "$S" >&2; fail "first lines of $S"; }
[ "$(val state)" = idle ] || fail "state not idle at mount"
[ "$(val passes)" = 0 ] || fail "passes not 0 at mount"
[ -z "$(cat "$A")" ] || { cat "$A" >&2; fail "alarms at mount"; }
out=$(ctlw start setpriv --reuid=65534 --regid=65534 --clear-groups)
[ "$out" = EACCES ] || fail "non-root start: want EACCES, got: $out"
out=$(ctlw bogus)
[ "$out" = EINVAL ] || fail "bogus command: want EINVAL, got: $out"
# the two starts from one process, back to back: from two (a python start
# each, 0.1-0.5 s apart on a loaded machine) the first pass, about 1 s at
# scrub_rate=8, could end before the second start came
out=$("$PY" -c '
import errno, os, sys
for _ in range(2):
    try:
        fd = os.open(sys.argv[1], os.O_WRONLY)
        os.write(fd, b"start\n")
        os.close(fd)
        print("ok")
    except OSError as e:
        print(errno.errorcode[e.errno])' "$S" | tr '\n' ' ')
[ "$out" = "ok EBUSY " ] || fail "start, then a second start while running: want 'ok EBUSY', got: $out"
wait_idle 60
[ "$(val passes)" = 1 ] || { cat "$S" >&2; fail "passes after one pass"; }
[ "$(val mismatches)" = 0 ] || { cat "$S" >&2; fail "mismatches on a clean mount"; }
[ "$(val progress)" = 100 ] || { cat "$S" >&2; fail "progress after a pass"; }
grep -q "^group $G lsn [0-9]* time 20[0-9-]*T[0-9:]*Z result ok$" "$S" || { cat "$S" >&2; fail "no ok line for group $G"; }
[ -z "$(cat "$A")" ] || { cat "$A" >&2; fail "alarms after a clean pass"; }

# --- 2. passes under writes
python3 - "$MNT/w" <<'EOF' &
import os, sys, random, time
d = sys.argv[1]
os.mkdir(d)
rnd = random.Random(5)
end = time.time() + 12
i = 0
while time.time() < end:
    p = os.path.join(d, "w%d" % (i % 60))
    with open(p, "wb") as f:
        f.write(rnd.randbytes(rnd.randrange(1, 20000)))
    if i % 7 == 0:
        os.rename(p, p + ".r")
    if i % 11 == 0 and os.path.exists(p + ".r"):
        os.unlink(p + ".r")
    i += 1
EOF
WPID=$!
for k in 1 2 3 4; do pass; done
wait "$WPID" || fail "writer failed"
[ "$(val passes)" = 5 ] || { cat "$S" >&2; fail "passes after the workload"; }
[ "$(val mismatches)" = 0 ] || { cat "$S" >&2; grep scrub "$T/daemon.out" | tail >&2; fail "false alarm under writes"; }
[ -z "$(cat "$A")" ] || { cat "$A" >&2; fail "alarms under writes"; }

# --- 3. offline command exit codes
"$QFS_BIN" scrub "$DATA" >"$T/off.out" 2>&1; rc=$?
[ $rc -eq 2 ] || { cat "$T/off.out" >&2; fail "offline scrub while mounted: exit $rc, want 2"; }
"$QFS_BIN" scrub "$T" >"$T/off.out" 2>&1; rc=$?
[ $rc -eq 2 ] || fail "offline scrub of a non-data dir: exit $rc, want 2"
qfs_umount
"$QFS_BIN" scrub "$DATA" >"$T/off.out" 2>&1; rc=$?
[ $rc -eq 0 ] || { cat "$T/off.out" >&2; fail "offline scrub of a clean dir: exit $rc, want 0"; }
grep -q "^scrub: groups [1-9][0-9]* mismatches 0 corrupt 0 repaired 0" "$T/off.out" || { cat "$T/off.out" >&2; fail "summary line"; }

# --- 4. node 2's item changed behind the log's back
"$TOOL" "$DATA/nodes/n2/store" list "$G" >"$T/keys" || fail "store_tool list"
KEY=$(awk '$2 > 100 { print $1; exit }' "$T/keys")
[ -n "$KEY" ] || fail "no item with a value in group $G"
"$TOOL" "$DATA/nodes/n2/store" flip "$G" "$KEY" || fail "store_tool flip"
"$QFS_BIN" scrub "$DATA" >"$T/off.out" 2>&1; rc=$?
[ $rc -eq 1 ] || { cat "$T/off.out" >&2; fail "offline scrub with a changed item: exit $rc, want 1"; }
grep -q "^mismatch group=$G node=2 lsn=[0-9]* range=\[.*) key=$KEY item=differs$" "$T/off.out" ||
	{ cat "$T/off.out" >&2; fail "finding line does not name group, node 2 and the key"; }
mount_again -o "$OPTS"
pass
[ "$(val mismatches)" = 1 ] || { cat "$S" >&2; fail "mismatch not counted"; }
[ "$(val repaired)" = 1 ] || { cat "$S" >&2; grep scrub "$T/daemon.out" | tail >&2; fail "not repaired"; }
grep -q "^group $G .* result repaired$" "$S" || { cat "$S" >&2; fail "group result not repaired"; }
grep -q "scrub repaired group=$G node=2" "$T/daemon.out" || fail "repair not logged"
[ -z "$(cat "$A")" ] || { cat "$A" >&2; fail "alarm not cleared after the repair"; }
(cd "$MNT/t" && sha256sum -c --quiet "$T/sums") || fail "files differ after the repair"
qfs_umount
"$QFS_BIN" scrub "$DATA" >"$T/off.out" 2>&1; rc=$?
[ $rc -eq 0 ] || { cat "$T/off.out" >&2; fail "offline scrub after the repair: exit $rc, want 0"; }

# --- 5. offline repair of node 3
"$TOOL" "$DATA/nodes/n3/store" flip "$G" "$KEY" || fail "store_tool flip n3"
"$QFS_BIN" scrub --repair "$DATA" >"$T/off.out" 2>&1; rc=$?
[ $rc -eq 1 ] || { cat "$T/off.out" >&2; fail "offline --repair: exit $rc, want 1 (findings)"; }
grep -q "^repaired group=$G node=3$" "$T/off.out" || { cat "$T/off.out" >&2; fail "offline repair line"; }
"$QFS_BIN" scrub "$DATA" >"$T/off.out" 2>&1; rc=$?
[ $rc -eq 0 ] || { cat "$T/off.out" >&2; fail "offline scrub after --repair: exit $rc, want 0"; }

# --- 6. a flipped byte in an SST file of node 1
SST=$(ls -S "$DATA"/nodes/n1/store/*.sst | head -1)
[ -n "$SST" ] || fail "no SST file in node 1"
qfs_flip_byte "$SST" $(($(stat -c %s "$SST") / 4)) 0x5a || fail "flip"
mount_again -o "$OPTS"
pass
grep -q "store corruption found" "$T/daemon.out" || fail "corruption not found"
grep -q "cell replica wiped for rebuild node=1 group=ffffffffffffffff" "$T/daemon.out" ||
	{ grep -E "scrub|corrupt" "$T/daemon.out" | tail >&2; fail "node 1 not rebuilt"; }
[ "$(val repaired)" -ge 1 ] || { cat "$S" >&2; fail "corruption repair not counted"; }
(cd "$MNT/t" && sha256sum -c --quiet "$T/sums") || fail "files differ after the corruption"
qfs_wait_agree "$G" 30 || fail "replicas do not agree after the rebuild"
pass
[ -z "$(cat "$A")" ] || { cat "$A" >&2; fail "alarm left after the rebuild was verified"; }
qfs_umount
"$QFS_BIN" scrub "$DATA" >"$T/off.out" 2>&1; rc=$?
[ $rc -eq 0 ] || { cat "$T/off.out" >&2; fail "offline scrub after the rebuild: exit $rc, want 0"; }

# --- 7. a flipped byte inside node 3's log of the table's group
mount_again -o "$OPTS"
python3 - "$MNT/t" <<'EOF' || fail "writing more files"
import os, sys, random
rnd = random.Random(77)
for i in range(40):
    with open(os.path.join(sys.argv[1], "g%02d" % i), "wb") as f:
        f.write(rnd.randbytes(20000))
EOF
(cd "$MNT/t" && sha256sum g?? >>"$T/sums") || fail "sums"
qfs_wait_agree "$G" 20 || fail "replicas do not agree before step 7"
qfs_umount
SEGF=$(ls -S "$DATA"/nodes/n3/wal/"$G"/*.wal 2>/dev/null | head -1)
if [ -n "$SEGF" ] && [ "$(stat -c %s "$SEGF")" -gt 4096 ]; then
	qfs_flip_byte "$SEGF" $(($(stat -c %s "$SEGF") / 2)) 0x10 || fail "flip wal"
	mount_again -o "$OPTS"
	pass
	# the scrubber repairs it, unless the cell's keeper rebuilt the
	# replica first (it does so about 1 s after the mount: doc/cell.md
	# "Self-healing")
	grep -Eq "scrub repaired group=$G node=3 why=|cell replica rebuild group=$G node=3 " "$T/daemon.out" ||
		{ grep -E "scrub|wal|corrupt|cell replica" "$T/daemon.out" | tail >&2; fail "node 3's damaged log not repaired"; }
	(cd "$MNT/t" && sha256sum -c --quiet "$T/sums") || fail "files differ after the log repair"
	qfs_wait_agree "$G" 30 || fail "replicas do not agree after the log repair"
	qfs_umount
else
	note "node 3's log of $G is too small to damage in its middle: step 7 skipped"
fi
# --- 8. a table whose replica differs, with repair off, is deleted: its
# scrub-mismatch alarm goes with it (no later pass can clear it)
mount_again -o "$OPTS"
mkdir "$MNT/u" || fail "mkdir u"
head -c 300000 /dev/urandom >"$MNT/u/f" || fail "writing u/f"
G2=$(qfs_group_of u) || fail "no group for u"
qfs_wait_agree "$G2" 20 || fail "replicas of u do not agree"
qfs_umount
"$TOOL" "$DATA/nodes/n2/store" list "$G2" >"$T/keys2" || fail "store_tool list u"
KEY2=$(sort -k2,2nr "$T/keys2" | awk '$2 > 30000 { print $1; exit }') # a chunk of the file, not an inode
[ -n "$KEY2" ] || fail "no item with a value in group $G2"
"$TOOL" "$DATA/nodes/n2/store" flip "$G2" "$KEY2" || fail "store_tool flip u"
mount_again -o "$OPTS,scrub_repair=off"
pass
grep -q "^alarm scrub-mismatch raised .* group=$G2 node=2 " "$A" || { cat "$A" >&2; fail "no scrub-mismatch alarm for u"; }
rm -rf "$MNT/u" || fail "rm -rf u"
pass
grep "group=$G2" "$A" && fail "the scrub-mismatch alarm of deleted table u is still raised"
qfs_umount
echo "scrub.sh: ok"
