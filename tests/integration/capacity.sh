#!/bin/bash
# tests/integration/capacity.sh - admission control (doc/admission.md): a
# provisioned table with a small wcu makes several writers wait, loses
# nothing and counts throttled_writes in .quorumfs/capacity and
# .quorumfs/stats; bad capacity values answer EINVAL; a user who does not
# own the table cannot set them; the settings survive a remount; with
# -o throttle=fail an over-capacity write answers EAGAIN.  No timing is
# asserted: only that waits happened (counters) and that nothing failed.

. "$QFS_SRCDIR/tests/lib/common.sh"
qfs_require python3 setfattr getfattr setpriv
qfs_setup
# (a hang is a failure; 22 s alone, but a CI run at load 15 ran past 110 s)
watchdog 300

cap_field() { # cap_field TABLE KEY: value of KEY on TABLE's capacity line
	awk -v t="$1" -v k="$2" '$1 == "table" && $2 == t { for (i = 3; i < NF; i += 2) if ($i == k) print $(i + 1) }' \
		"$MNT/.quorumfs/capacity"
}

mkdir "$MNT/slow" "$MNT/fast" || fail "mkdir tables"
[ "$(cap_field slow mode)" = on-demand ] || fail "a new table is not on-demand: $(grep 'table slow' "$MNT/.quorumfs/capacity")"
grep -q '^table fast mode on-demand .* throttled_reads 0 throttled_writes 0$' "$MNT/.quorumfs/capacity" ||
	fail "capacity line format: $(grep 'table fast' "$MNT/.quorumfs/capacity")"

# bad values: EINVAL, nothing stored
for kv in capacity=bogus capacity=Provisioned wcu=0 wcu=-3 wcu=40001 rcu=abc rcu=1.5; do
	setfattr -n "user.quorumfs.${kv%%=*}" -v "${kv#*=}" "$MNT/slow" 2>"$T/err" && fail "setfattr $kv accepted"
	grep -q 'Invalid argument' "$T/err" || fail "setfattr $kv: expected EINVAL, got: $(cat "$T/err")"
done
getfattr -n user.quorumfs.capacity "$MNT/slow" >/dev/null 2>&1 && fail "a refused capacity value was stored"
grep -q 'bad table setting' "$T/daemon.out" || fail "no log line for a bad table setting"
# on a file, user.quorumfs.* is an ordinary xattr
echo x >"$MNT/fast/f" && setfattr -n user.quorumfs.wcu -v anything "$MNT/fast/f" || fail "ordinary xattr on a file"

# a user who does not own the table cannot change its capacity
U=$((40000 + RANDOM % 10000))
setpriv --reuid=$U --regid=$U --clear-groups setfattr -n user.quorumfs.wcu -v 5 "$MNT/slow" 2>"$T/err" &&
	fail "uid $U set the capacity of a table owned by root"
grep -qE 'Permission denied|Operation not permitted' "$T/err" || fail "non-owner setfattr: $(cat "$T/err")"

setfattr -n user.quorumfs.capacity -v provisioned "$MNT/slow" || fail "set provisioned"
setfattr -n user.quorumfs.wcu -v 16 "$MNT/slow" || fail "set wcu"
setfattr -n user.quorumfs.rcu -v 400 "$MNT/slow" || fail "set rcu"
getfattr -d -m 'user.quorumfs' "$MNT/slow" >"$T/x" 2>/dev/null
grep -q 'user.quorumfs.capacity="provisioned"' "$T/x" && grep -q 'user.quorumfs.wcu="16"' "$T/x" ||
	fail "listxattr/getxattr of the settings: $(cat "$T/x")"
[ "$(cap_field slow mode)" = provisioned ] && [ "$(cap_field slow wcu)" = 16 ] && [ "$(cap_field slow rcu)" = 400 ] ||
	fail "capacity line after setting: $(grep 'table slow' "$MNT/.quorumfs/capacity")"

# four writers, 6 files of 3 KiB each: ~100 write units against 16/s
mkdir -p "$T/src"
for w in 1 2 3 4; do
	for i in 1 2 3 4 5 6; do head -c 3000 /dev/urandom >"$T/src/w$w.$i"; done
done
pids=
for w in 1 2 3 4; do
	( for i in 1 2 3 4 5 6; do cp "$T/src/w$w.$i" "$MNT/slow/" || exit 1; done ) &
	pids="$pids $!"
done
for p in $pids; do wait "$p" || fail "a writer failed under throttling (it must wait, not fail)"; done
for f in "$T"/src/*; do
	cmp -s "$f" "$MNT/slow/$(basename "$f")" || fail "$(basename "$f") differs or is missing after throttled writes"
done
tw=$(cap_field slow throttled_writes)
[ "${tw:-0}" -gt 0 ] || fail "throttled_writes is ${tw:-missing}: $(grep 'table slow' "$MNT/.quorumfs/capacity")"
[ "$(cap_field fast throttled_writes)" = 0 ] || fail "the on-demand table was throttled"
grep -q "^table slow throttled_reads [0-9]* throttled_writes $tw read_wait_ms [0-9]* write_wait_ms [0-9]*" \
	"$MNT/.quorumfs/stats" || fail "stats lack the slow table's throttle line: $(grep 'table slow' "$MNT/.quorumfs/stats")"
# per partition (one here: its share is the whole table, 16 WCU; no ceiling set)
pl=$(grep '^partition slow ' "$MNT/.quorumfs/capacity")
[ "$(echo "$pl" | wc -l)" = 1 ] && echo "$pl" | grep -q ' share_wcu 16.0 .* ceiling_wcu 0 .* write_burst [0-9.]* bursted_rcu 0 bursted_wcu [0-9]*$' &&
	[ "$(echo "$pl" | awk '{ for (i = 3; i < NF; i += 2) if ($i == "throttled_writes") print $(i + 1) }')" = "$tw" ] ||
	fail "capacity's partition line of slow: $pl"
grep -q "^partition slow group [0-9a-f]* throttled_reads [0-9]* throttled_writes $tw\$" "$MNT/.quorumfs/stats" ||
	fail "stats lack the slow partition's throttle line: $(grep 'partition slow' "$MNT/.quorumfs/stats")"
note "4 writers waited $tw times, all 24 files intact"

# the settings survive a remount (and the data, read back again)
qfs_umount
mount_again
[ "$(getfattr --only-values -n user.quorumfs.capacity "$MNT/slow")" = provisioned ] || fail "capacity lost on remount"
[ "$(getfattr --only-values -n user.quorumfs.wcu "$MNT/slow")" = 16 ] || fail "wcu lost on remount"
[ "$(cap_field slow mode)" = provisioned ] && [ "$(cap_field slow wcu)" = 16 ] ||
	fail "capacity after remount: $(grep 'table slow' "$MNT/.quorumfs/capacity")"
for f in "$T"/src/*; do
	cmp -s "$f" "$MNT/slow/$(basename "$f")" || fail "$(basename "$f") differs after remount"
done
# back to on-demand by removing the setting
setfattr -x user.quorumfs.capacity "$MNT/slow" || fail "remove capacity"
[ "$(cap_field slow mode)" = on-demand ] || fail "removing the setting did not go back to on-demand"
setfattr -n user.quorumfs.capacity -v provisioned "$MNT/slow" || fail "set provisioned again"
qfs_umount

# -o throttle=fail: EAGAIN instead of a wait
mount_again -o throttle=fail
setfattr -n user.quorumfs.wcu -v 1 "$MNT/slow" || fail "set wcu 1"
python3 - "$MNT/slow" <<'EOF' || fail "throttle=fail: no EAGAIN (see above)"
import errno, os, sys
d = sys.argv[1]
data = os.urandom(8192)
for i in range(50):
    try:
        with open(os.path.join(d, "burst%d" % i), "wb") as f:
            f.write(data)
    except OSError as e:
        if e.errno == errno.EAGAIN:
            print("# EAGAIN after %d files" % i)
            sys.exit(0)
        print("FAIL: unexpected error %s" % e)
        sys.exit(1)
print("FAIL: 50 writes of 8 KiB at wcu 1 and no EAGAIN")
sys.exit(1)
EOF
tw=$(cap_field slow throttled_writes)
[ "${tw:-0}" -gt 0 ] || fail "throttle=fail: throttled_writes is ${tw:-missing}"
qfs_umount
