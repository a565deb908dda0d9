#!/bin/bash
# tests/integration/retention.sh - archive retention (doc/archive.md
# "Retention") on the local archive: with -o archive_retention=6s and a
# snapshot after every archived segment,
# 1. set A is written, then, after the window has passed, set B: retention
#    deletes old segments and snapshots (objects_deleted > 0, fewer objects
#    in DATA/archive), and .quorumfs/archive shows the earliest restorable
#    time of the table's partition;
# 2. restore at the earliest time (the window's edge: the one shown, or,
#    if the window slid on before the unmount, the later one a refused
#    restore before it names) succeeds and holds
#    set A byte for byte; restore one second before it is refused with a
#    message that names the earliest restorable time; restore latest holds
#    A and B byte for byte;
# 3. the scrub's archive verification finds every listed object intact (no
#    object it still needs was deleted).

. "${QFS_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"

qfs_require python3 awk timeout sha256sum
set -o pipefail
OPTS=archive_retention=6s,snapshot_segments=1,seal_age=1s,archive_interval=200ms,scrub_interval=off
qfs_setup -o "$OPTS"
echo "$QFS_PID" >"$T/daemon.pid"
watchdog "${QFS_RETENTION_TIMEOUT:-100}"
AR=$MNT/.quorumfs/archive

write_set() { # write_set NAME COUNT SEED
	python3 - "$MNT/t" "$1" "$2" "$3" "$T/sums.$1" <<'EOF' || fail "writing set $1"
import hashlib, os, random, sys
d, name, n, seed, j = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
rnd = random.Random(seed)
with open(j, "w") as out:
    for i in range(n):
        data = rnd.randbytes(rnd.choice([1, 500, 6000, 30000]))
        p = "%s%03d" % (name, i)
        with open(os.path.join(d, p), "wb") as f:
            f.write(data)
        out.write("%s  %s\n" % (hashlib.sha256(data).hexdigest(), p))
EOF
}
objects() { find "$DATA/archive" -type f | wc -l; }
field() { awk -v k="$1" '$1 == "archive" { for (i = 1; i < NF; i++) if ($i == k) print $(i + 1) }' "$AR"; }

mkdir "$MNT/t" || fail "mkdir t"
G=$(qfs_group_of t) || fail "no group"
write_set a 40 1
sleep 3
write_set a2 10 2    # more segments and snapshots inside the window's future past
sleep 7              # the window (6 s) has passed over them
write_set b 40 3
peak=$(objects)
end=$((SECONDS + 30))
while [ "$(field objects_deleted)" = 0 ]; do
	[ $SECONDS -lt $end ] || { cat "$AR" >&2; fail "retention deleted nothing within 30 s"; }
	sleep 0.5
	echo "x" >"$MNT/t/tick$SECONDS" # keep segments coming
done
[ "$(objects)" -lt "$peak" ] || note "object count did not drop below its peak ($peak) yet"
EARLIEST=$(awk -v g="$G" '$1 == "earliest" && $2 == g { print $3 }' "$AR")
[ -n "$EARLIEST" ] && [ "$EARLIEST" != beginning ] && [ "$EARLIEST" != none ] ||
	{ cat "$AR" >&2; fail "no earliest restorable time for $G"; }
sleep 2
qfs_umount

# --- 2. restores at the window's edge, before it, and latest
E=$(date -u -d "$EARLIEST" +%s) || fail "cannot parse $EARLIEST"
# The window slid on until the unmount (the archiver's passes go on while
# the unmount writes back: 27 s once at load 8), so the edge shown above
# may be gone: a restore before it is refused and names the edge now,
# never an earlier one.
"$QFS_BIN" restore --data "$DATA" --table t --time "@$((E - 1))" --to "$T/probe" 2>"$T/err" &&
	fail "restore before the earliest restorable time $EARLIEST succeeded"
NOW=$(sed -n 's/.*earliest restorable time is \([^ ]*\).*/\1/p' "$T/err")
[ -n "$NOW" ] || { cat "$T/err" >&2; fail "the refusal names no earliest restorable time"; }
N=$(date -u -d "$NOW" +%s) || fail "cannot parse $NOW"
[ "$N" -ge "$E" ] || fail "the earliest restorable time went back: $EARLIEST, then $NOW"
[ "$N" -eq "$E" ] || note "the window slid from $EARLIEST to $NOW before the unmount"
EARLIEST=$NOW
E=$N
"$QFS_BIN" restore --data "$DATA" --table t --time "@$E" --to "$T/edge" 2>"$T/err" ||
	{ cat "$T/err" >&2; fail "restore at the earliest restorable time $EARLIEST failed"; }
(cd "$T/edge" && sha256sum -c --quiet "$T/sums.a") || fail "set A differs at the window's edge"
"$QFS_BIN" restore --data "$DATA" --table t --time "@$((E - 1))" --to "$T/before" 2>"$T/err" &&
	fail "restore before the earliest restorable time succeeded"
grep -q "earliest restorable time is $EARLIEST" "$T/err" || { cat "$T/err" >&2; fail "refusal does not name $EARLIEST"; }
"$QFS_BIN" restore --data "$DATA" --table t --time latest --to "$T/latest" 2>"$T/err" ||
	{ cat "$T/err" >&2; fail "restore latest failed"; }
(cd "$T/latest" && sha256sum -c --quiet "$T/sums.a" "$T/sums.a2" "$T/sums.b") || fail "restore latest differs"

# --- 3. everything still listed is intact
"$QFS_BIN" scrub "$DATA" >"$T/off.out" 2>&1; rc=$?
[ $rc -eq 0 ] || { cat "$T/off.out" >&2; fail "offline scrub after retention: exit $rc"; }
echo "retention.sh: ok"
