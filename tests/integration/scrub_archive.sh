#!/bin/bash
# tests/integration/scrub_archive.sh - the scrubber against the archive
# (doc/scrub.md sections 4 and 5), on the embedded local archive:
#
# 1. With fast archiving, passes compare the live replicas with reference
#    replicas rebuilt from the archive alone (reference_compared grows),
#    with no mismatch and no alarm.
# 2. The same item changed alike in all three replicas while unmounted
#    (store_tool): the replicas agree, so only the reference comparison
#    finds it: a reference-mismatch alarm with instructions, mismatches
#    counted, repaired stays 0 and the item is not overwritten.
# 3. One byte of an archived segment object flipped: the archive
#    verification raises archive-corrupt naming the object, and the offline
#    command exits 1.

. "${QFS_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"
. "$QFS_SRCDIR/tests/lib/scrub.sh"

qfs_require python3 awk timeout
set -o pipefail
OPTS=scrub_interval=off,scrub_rate=0,seal_age=1s,archive_interval=200ms
qfs_setup -o "$OPTS"
echo "$QFS_PID" >"$T/daemon.pid"
watchdog "${QFS_SCRUB_TIMEOUT:-110}"
TOOL=$(dirname "$QFS_BIN")/../tests/unit/store_tool
[ -x "$TOOL" ] || fail "store_tool not built at $TOOL"
S=$MNT/.quorumfs/scrub
A=$MNT/.quorumfs/alarms

# ref_pass KEY N: passes until status value KEY (e.g. reference_compared)
# reached N (the archive lags the live log by seal_age + archive_interval,
# so a pass's sums are compared in a later pass)
ref_pass() {
	local end=$((SECONDS + 40)) v
	while :; do
		sleep 1.5
		pass
		v=$(field "$1"); [ -n "$v" ] || v=$(val "$1")
		[ "$v" -ge "$2" ] && return 0
		[ $SECONDS -lt $end ] || { cat "$S" >&2; fail "$1 did not reach $2 within 40 s"; }
	done
}

mkdir "$MNT/t" || fail "mkdir t"
python3 - "$MNT/t" <<'EOF' || fail "writing files"
import os, sys, random
rnd = random.Random(3)
for i in range(80):
    with open(os.path.join(sys.argv[1], "f%02d" % i), "wb") as f:
        f.write(rnd.randbytes(rnd.choice([10, 900, 5000, 40000])))
EOF
G=$(qfs_group_of t) || fail "no group"
qfs_wait_agree "$G" 20 || fail "replicas do not agree"

# --- 1. clean reference comparisons
pass
ref_pass reference_compared 2
[ "$(val mismatches)" = 0 ] || { cat "$S" >&2; grep scrub "$T/daemon.out" | tail >&2; fail "mismatch on a clean mount"; }
[ -z "$(cat "$A")" ] || { cat "$A" >&2; fail "alarms on a clean mount"; }
qfs_umount

# --- 2. all replicas changed alike
"$TOOL" "$DATA/nodes/n1/store" list "$G" >"$T/keys" || fail "store_tool list"
KEY=$(awk '$2 > 100 { print $1; exit }' "$T/keys")
[ -n "$KEY" ] || fail "no item with a value"
for n in 1 2 3; do "$TOOL" "$DATA/nodes/n$n/store" flip "$G" "$KEY" || fail "flip n$n"; done
"$QFS_BIN" scrub -o archive=off "$DATA" >"$T/off.out" 2>&1; rc=$?
[ $rc -eq 0 ] || { cat "$T/off.out" >&2; fail "replicas changed alike must agree with each other: exit $rc"; }
mount_again -o "$OPTS"
for n in 1 2 3; do echo "x$n" >"$MNT/t/new$n"; done # more log, so the archive passes the pass's LSN
pass
[ "$(val mismatches)" = 0 ] || { cat "$S" >&2; fail "replica comparison saw replicas changed alike as different"; }
ref_pass mismatches 1
[ "$(val mismatches)" -ge 1 ] || { cat "$S" >&2; grep scrub "$T/daemon.out" | tail >&2; fail "reference comparison missed it"; }
[ "$(val repaired)" = 0 ] || fail "something was overwritten although no majority matches the reference"
grep -q "^alarm reference-mismatch raised 20[0-9-]*T[0-9:]*Z group=$G \".*restore" "$A" ||
	{ cat "$A" >&2; fail "no reference-mismatch alarm with instructions"; }
grep -q "scrub reference-mismatch group=$G lsn=[0-9]* range=" "$T/daemon.out" || fail "no finding line"
qfs_umount
"$TOOL" "$DATA/nodes/n2/store" list "$G" >"$T/keys2" || fail "store_tool list"
grep -q "^$KEY " "$T/keys2" || fail "the item is gone"

# --- 3. a corrupted archive object
SEG=$(find "$DATA/archive" -path "*$G*" -type f ! -name "*manifest*" | head -1)
[ -n "$SEG" ] || { find "$DATA/archive" | head >&2; fail "no archived object of group $G"; }
qfs_flip_byte "$SEG" -10 0x01 || fail "flip"
"$QFS_BIN" scrub "$DATA" >"$T/off.out" 2>&1; rc=$?
[ $rc -eq 1 ] || { cat "$T/off.out" >&2; fail "offline scrub with a corrupt archive object: exit $rc, want 1"; }
grep -q "^archive-corrupt group=$G err=.*corrupt" "$T/off.out" || { cat "$T/off.out" >&2; fail "no archive-corrupt line"; }
mount_again -o "$OPTS"
pass
grep -q "^alarm archive-corrupt raised .* group=$G " "$A" || { cat "$A" >&2; fail "no archive-corrupt alarm"; }
qfs_umount
echo "scrub_archive.sh: ok"
