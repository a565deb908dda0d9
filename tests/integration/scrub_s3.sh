#!/bin/bash
# tests/integration/scrub_s3.sh - the scrubber against an S3 archive (s3rver
# behind the SigV4-verifying proxy of tests/lib/s3env.sh), doc/scrub.md:
# 1. passes compare the live replicas with reference replicas rebuilt from
#    the bucket (reference_compared grows) with no mismatch and no alarm;
# 2. one byte of an archived segment flipped in s3rver's files: the offline
#    `quorumfs scrub -o <s3 options>` names the object (exit 1), and a pass
#    on the mount raises archive-corrupt.

. "${QFS_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"
. "$QFS_SRCDIR/tests/lib/s3env.sh"
. "$QFS_SRCDIR/tests/lib/scrub.sh"
s3env_require
[ "$(id -u)" -eq 0 ] || skip "integration tests need root (FUSE allow_other, chown)"
[ -c /dev/fuse ] || skip "/dev/fuse is missing"
qfs_require fusermount3 mountpoint python3 awk

T=$(mktemp -d "${TMPDIR:-/tmp}/qfs-test.XXXXXX")
chmod 755 "$T"
DATA=$T/data
MNT=$T/mnt
mkdir -p "$DATA" "$MNT" "$T/s3"
trap 's3env_cleanup; qfs_cleanup' EXIT
trap 'exit 1' INT TERM
s3env_start "$T/s3"
watchdog "${QFS_SCRUB_TIMEOUT:-110}"

S3OPTS="archive=s3://$S3_BUCKET/qfs,s3_endpoint=$S3_ENDPOINT,s3_region=us-east-1,s3_path_style=1,s3_retries=1,s3_timeout=5"
OPTS="$S3OPTS,seal_age=1s,archive_interval=200ms,scrub_interval=off,scrub_rate=0"
S=$MNT/.quorumfs/scrub
A=$MNT/.quorumfs/alarms

qfs_mount -o "$OPTS"
echo "$QFS_PID" >"$T/daemon.pid"
mkdir "$MNT/t" || fail "mkdir t"
for i in $(seq 30); do head -c 20000 /dev/urandom >"$MNT/t/f$i" || fail "write f$i"; done
G=$(qfs_group_of t) || fail "no group"
pass
end=$((SECONDS + 40))
while [ "$(field reference_compared)" -lt 2 ]; do
	[ $SECONDS -lt $end ] || { cat "$S" >&2; grep scrub "$T/daemon.out" | tail >&2; fail "no reference comparison from the bucket within 40 s"; }
	sleep 1.5
	pass
done
[ "$(val mismatches)" = 0 ] || { cat "$S" >&2; grep scrub "$T/daemon.out" | tail >&2; fail "mismatch against the S3 archive"; }
[ -z "$(cat "$A")" ] || { cat "$A" >&2; fail "alarms on a clean mount"; }
qfs_umount

OBJ=$(find "$S3_DATA/$S3_BUCKET/qfs/groups/$G/wal" -name '*._S3rver_object' | head -1)
[ -n "$OBJ" ] || { find "$S3_DATA" | head >&2; fail "no segment object of $G in the bucket"; }
qfs_flip_byte "$OBJ" $(($(stat -c %s "$OBJ") / 2)) 0x01 || fail "flip"
"$QFS_BIN" scrub -o "$S3OPTS" "$DATA" >"$T/off.out" 2>&1; rc=$?
[ $rc -eq 1 ] || { cat "$T/off.out" >&2; fail "offline scrub with a corrupt S3 object: exit $rc, want 1"; }
grep -q "^archive-corrupt group=$G err=.*groups/$G/wal/" "$T/off.out" || { cat "$T/off.out" >&2; fail "the corrupt object is not named"; }
qfs_mount -o "$OPTS"
echo "$QFS_PID" >"$T/daemon.pid"
pass
grep -q "^alarm archive-corrupt raised .* group=$G " "$A" || { cat "$A" >&2; fail "no archive-corrupt alarm"; }
qfs_umount
echo "scrub_s3.sh: ok"
