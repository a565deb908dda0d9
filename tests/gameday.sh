#!/bin/bash
# tests/gameday.sh [MINUTES] - a game day (a long run, NOT in make check):
# realistic mixed traffic for MINUTES (default 5) while storage nodes are
# stopped and started, the archive's S3 server is stopped and restarted and
# the data disk fills up; at the end every acknowledged write is verified,
# a scrub pass must be clean, and client-side availability is printed next
# to the canary's.
#
# Run as root from a build directory (or set QFS_BIN and QFS_SRCDIR):
#     QFS_BIN=build/fs/quorumfs tests/gameday.sh 10
# The archive goes to s3rver behind the verifying proxy when the npm modules
# of tests/node are installed (contrib/install-node-deps.sh), else to the
# local directory archive (and the archive outage step is skipped).  The
# data directory is on a tmpfs of its own (2 GiB + 300 MiB a minute, for a
# local archive's history; only what is used takes memory), so that the
# disk-full step can fill it:
# another program takes all but half the nodes' reserve for 20 s (writes
# then fail with ENOSPC, deletes pass), then gives it back, and a write
# must succeed again within 60 s with no remount.  Without a tmpfs (not
# root of a mount namespace that allows it) the step is skipped.  Failures
# a client sees during an outage of two nodes or the full disk are
# expected and counted, not fatal: what must hold is that nothing
# acknowledged is lost, the replicas agree, and the alarms clear.

QFS_SRCDIR=${QFS_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
QFS_BIN=${QFS_BIN:-$QFS_SRCDIR/build/fs/quorumfs}
export QFS_SRCDIR QFS_BIN
. "$QFS_SRCDIR/tests/lib/common.sh"

MINUTES=${1:-5}
qfs_require python3 timeout
S3=0
if [ -e "$QFS_SRCDIR/tests/node/node_modules/s3rver/bin/s3rver.js" ] && command -v node >/dev/null; then
	S3=1
fi
OPTS="quorum_timeout=3s,canary_interval=10s,scrub_interval=off"
if [ $S3 = 1 ]; then
	. "$QFS_SRCDIR/tests/lib/s3env.sh"
	T0=$(mktemp -d /tmp/qfs-gameday-s3.XXXXXX)
	trap 's3env_cleanup; rm -rf "$T0"' EXIT
	s3env_start "$T0/s3"
	OPTS="$OPTS,archive=s3://$S3_BUCKET/qfs,s3_endpoint=$S3_ENDPOINT,s3_region=us-east-1,s3_path_style=1,s3_retries=2,s3_timeout=5"
fi
# qfs_setup, with the data directory on a tmpfs when one can be mounted
[ "$(id -u)" -eq 0 ] || skip "the game day needs root (FUSE allow_other, tmpfs)"
[ -c /dev/fuse ] || skip "/dev/fuse is missing"
qfs_require fusermount3 mountpoint fallocate df
qfs_tmp qfs-gameday
FILL=0
mkdir "$T/disk" || fail "mkdir $T/disk"
if mount -t tmpfs -o size=$((2048 + 300 * MINUTES))m,mode=755 tmpfs "$T/disk" 2>"$T/tmpfs.err"; then
	FILL=1
	QFS_EXTRA_UMOUNTS=$T/disk
	DATA=$T/disk/data
	mkdir "$DATA" || fail "mkdir $DATA"
else
	note "no tmpfs for the data directory ($(cat "$T/tmpfs.err")): the disk-full step is skipped"
fi
qfs_mount -o "$OPTS"
if [ $S3 = 1 ]; then
	trap 's3env_cleanup; qfs_cleanup' EXIT
fi
echo "$QFS_PID" >"$T/daemon.pid"
watchdog $((MINUTES * 60 + 600))
note "game day: $MINUTES min, archive $([ $S3 = 1 ] && echo "s3 ($S3_ENDPOINT)" || echo local)"

cat >"$T/load.py" <<'EOF'
# load.py DIR JOURNAL STOPFILE SEED: mixed traffic until STOPFILE exists,
# over at most 1000 live files per writer.
# Journal lines, written only after the operation returned (acknowledged):
#   F path sha256   a file written and closed (close = durable)
#   U path          a file unlinked
#   X path          a write or unlink of path failed: its outcome is unknown
# Errors are counted by errno in JOURNAL.err; the load goes on.
import collections, errno, hashlib, os, random, sys, time
d, journal, stop, seed = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
rnd = random.Random(seed)
os.makedirs(d, exist_ok=True)
live = []
errs = collections.Counter()
ops = 0
with open(journal, "a", buffering=1) as j:
    while not os.path.exists(stop):
        ops += 1
        r = rnd.random()
        p = None
        try:
            if r < 0.35 or not live:
                # at most 1000 live files per writer: past it, overwrites
                # (a steady data set, so the disk fills only when staged)
                if len(live) >= 1000:
                    p = rnd.choice(live)
                else:
                    p = os.path.join(d, "f%06d" % rnd.randrange(10**6))
                data = rnd.randbytes(rnd.choice([10, 500, 4096, 20000, 150000]))
                with open(p, "wb") as f:
                    f.write(data)
                    if rnd.random() < 0.3:
                        os.fsync(f.fileno())
                j.write("F %s %s\n" % (p, hashlib.sha256(data).hexdigest()))
                if p not in live:
                    live.append(p)
            elif r < 0.75:
                q = rnd.choice(live)
                with open(q, "rb") as f:
                    f.read()
            elif r < 0.85:
                os.listdir(d)
            elif r < 0.92:
                os.stat(os.path.join(d, "missing%d" % rnd.randrange(1000)))
            else:
                p = live.pop(rnd.randrange(len(live)))
                os.unlink(p)
                j.write("U %s\n" % p)
        except OSError as e:
            errs[errno.errorcode.get(e.errno, str(e.errno))] += 1
            if p is not None and (r < 0.35 or r >= 0.92):
                j.write("X %s\n" % p)
            time.sleep(0.05)
with open(journal + ".err", "w") as f:
    f.write("ops %d %s\n" % (ops, " ".join("%s %d" % kv for kv in sorted(errs.items()))))
EOF

cat >"$T/verify.py" <<'EOF'
# verify.py JOURNAL...: the last acknowledged state of every path holds
import hashlib, os, sys
want = {}
for jf in sys.argv[1:]:
    for line in open(jf):
        f = line.split()
        if f[0] == "F":
            want[f[1]] = f[2]
        elif f[0] == "U":
            want[f[1]] = None
        elif f[0] == "X":
            want[f[1]] = "?"
bad = 0
for p, h in sorted(want.items()):
    if h == "?":
        continue  # a failed write or unlink: either outcome is right
    if h is None:
        if os.path.exists(p):
            # an unlink acknowledged after a write of the same name: a later F
            # line would have replaced it, so the name must be gone
            print("FAIL: unlinked file is back: " + p); bad += 1
    else:
        try:
            got = hashlib.sha256(open(p, "rb").read()).hexdigest()
        except OSError as e:
            print("FAIL: %s: %s" % (p, e)); bad += 1; continue
        if got != h:
            print("FAIL: content differs: " + p); bad += 1
print("verified %d paths, %d bad" % (len(want), bad))
sys.exit(1 if bad else 0)
EOF

mkdir "$MNT/orders" "$MNT/users" || fail "mkdir tables"
rm -f "$T/stop"
PIDS=()
for w in 1 2 3 4; do
	tb=$([ $((w % 2)) = 0 ] && echo orders || echo users)
	python3 "$T/load.py" "$MNT/$tb/w$w" "$T/j$w" "$T/stop" "$w" &
	PIDS+=($!)
done
NODES=$MNT/.quorumfs/nodes
END=$((SECONDS + MINUTES * 60))
step=0
while [ $SECONDS -lt $END ]; do
	step=$((step + 1))
	case $((step % 5)) in
	1) n=$(((step / 5) % 3 + 1)); note "stop node $n for 20 s"
	   echo "stop $n" >"$NODES"; sleep 20; echo "start $n" >"$NODES" ;;
	2) if [ $S3 = 1 ]; then note "archive server down for 30 s"
	   s3env_stop_s3rver; sleep 30; s3env_restart_s3rver; else sleep 10; fi ;;
	3) a=$(((step / 5) % 3 + 1)); b=$((a % 3 + 1)); note "stop nodes $a and $b for 15 s (quorum lost)"
	   echo "stop $a" >"$NODES"; echo "stop $b" >"$NODES"; sleep 15
	   echo "start $a" >"$NODES"; echo "start $b" >"$NODES" ;;
	4) if [ $FILL = 1 ]; then
	     res=$(awk '$1 == "disk" { print $5 }' "$MNT/.quorumfs/status")
	     avail=$(df -B1 --output=avail "$T/disk" | tail -n 1 | tr -d ' ')
	     fill=$((avail - ${res:-0} / 2))
	     note "data disk full for 20 s (another program takes $fill of $avail free bytes; reserve ${res:-?})"
	     [ $fill -gt 0 ] && { fallocate -l $fill "$T/disk/filler" || fail "fallocate the filler"; }
	     sleep 20
	     rm -f "$T/disk/filler"
	     ok=0
	     for _ in $(seq 60); do
	       head -c 100000 /dev/urandom >"$T/fillcheck"
	       if cp "$T/fillcheck" "$MNT/orders/fillcheck" 2>/dev/null && cmp -s "$T/fillcheck" "$MNT/orders/fillcheck"; then
	         ok=1; break
	       fi
	       sleep 1
	     done
	     [ $ok = 1 ] || fail "writes did not come back within 60 s after the disk was given back"
	     note "writes work again after the full disk"
	   else note "quiet 20 s"; sleep 20; fi ;;
	*) note "quiet 20 s"; sleep 20 ;;
	esac
done
touch "$T/stop"
for p in "${PIDS[@]}"; do wait "$p" || fail "a load process crashed"; done
note "traffic stopped; load errors seen by clients:"
for w in 1 2 3 4; do echo "  writer $w: $(cat "$T/j$w.err")"; done

python3 "$T/verify.py" "$T"/j1 "$T"/j2 "$T"/j3 "$T"/j4 || fail "acknowledged writes lost"

# a scrub pass, clean
echo start >"$MNT/.quorumfs/scrub" || fail "start a scrub pass"
end=$((SECONDS + 300))
while ! grep -q '^state idle' "$MNT/.quorumfs/scrub"; do
	[ $SECONDS -lt $end ] || fail "scrub pass still running after 300 s"
	sleep 1
done
if grep -q '^alarm \(scrub-mismatch\|replica-corrupt\|reference-mismatch\|archive-corrupt\)' "$MNT/.quorumfs/alarms"; then
	cat "$MNT/.quorumfs/alarms"
	fail "the scrub pass is not clean"
fi

# alarms must clear once traffic is healthy again (1 min window)
end=$((SECONDS + 180))
while grep -q '^alarm \(availability\|canary\)' "$MNT/.quorumfs/alarms"; do
	[ $SECONDS -lt $end ] || { cat "$MNT/.quorumfs/alarms"; fail "availability alarms still up 3 min after the game day"; }
	ls "$MNT/orders" >/dev/null 2>&1
	sleep 2
done

note "availability over the run (lifetime counts; server_errors count against availability):"
awk '$1 == "table" {
	t = $2; n = 0; s = 0
	for (i = 5; i < NF; i += 2) { if ($i == "count") n = $(i + 1); if ($i == "server_errors") s = $(i + 1) }
	cnt[t] += n; srv[t] += s
} END {
	for (t in cnt) printf "  %-10s requests %8d server_errors %6d availability %.5f\n", t, cnt[t], srv[t],
		cnt[t] ? 1 - srv[t] / cnt[t] : 1
}' "$MNT/.quorumfs/availability" | sort
note "canary: $(head -1 "$MNT/.quorumfs/availability" | grep -o 'canary_ok [0-9]* canary_failed [0-9]*')"
[ $FILL = 1 ] && note "data disk at the end: $(df -h --output=used,size "$T/disk" | tail -n 1)"
qfs_umount
echo "PASS gameday"
