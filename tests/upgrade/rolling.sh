#!/bin/bash
# tests/upgrade/rolling.sh - rolling upgrade of a cluster, one node process
# at a time, under load (doc/compat.md "Rolling upgrade of a cluster").
#
# OLD is the release named in tests/upgrade/PREVIOUS_CLUSTER (the first
# one with node processes), built from git history and cached as
# BUILDDIR/tests/upgrade/quorumfs-COMMIT like upgrade.sh does; NEW is the
# current build.  On 127.0.0.1:
#  1. three OLD nodes and an OLD router (mount -o cluster=); a writer
#     creates and fsyncs files without a pause and records every
#     acknowledged one, a reader reads acknowledged files back;
#  2. each node in turn (the table's leader first) gets SIGTERM and is
#     started again from the NEW binary on the same node directory; the
#     next one waits until it caught up (its applied LSN reaches the
#     others'): no client error at all, writes go on during each step;
#  3. the router is restarted with NEW: a router restart is a remount, so
#     the writer and reader pause across it (they would see ENOTCONN), then
#     go on through the NEW router (txn version 3 from now on);
#  4. the way back: a NEW node replaced by OLD again.  OLD cannot decode
#     the NEW router's version-3 txns: its replica of the table must stop
#     with a log line naming the format ("Unsupported on-disk format
#     version"), the writer goes on with 2 of 3, and the same node started
#     from NEW again catches up;
#  5. every acknowledged file is intact through the NEW router, and the
#     three replicas agree.
# Skips (77) when git, the history or the commit is not available, or the
# old release does not build here.  Every node and router is ours, stopped
# by PID in the trap.
. "${QFS_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"
. "$QFS_SRCDIR/tests/lib/cluster.sh"
qfs_require git python3 fusermount3 mountpoint autoreconf make
[ "$(id -u)" -eq 0 ] || skip "needs root (FUSE allow_other)"
[ -c /dev/fuse ] || skip "/dev/fuse is missing"

NEW=$QFS_BIN
PREV=$(sed -n '1{s/[[:space:]].*//;p}' "$QFS_SRCDIR/tests/upgrade/PREVIOUS_CLUSTER")

T=$(mktemp -d /tmp/qfs-rolling.XXXXXX)
M=$T/m
mkdir -p "$M" "$T/s"
NODE_PIDS=""
SMNT=$M # status, applied, leader_of, caught_up read its .quorumfs/status
cleanup() {
	local rc=$?
	touch "$T/STOP" 2>/dev/null
	rm -f "$T/PAUSE"
	fusermount3 -u "$M" 2>/dev/null || fusermount3 -uz "$M" 2>/dev/null || true
	for p in $NODE_PIDS; do kill -9 "$p" 2>/dev/null; done
	if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
		for f in "$T"/n*/quorumfs-node.log "$T"/s/quorumfs.log "$T"/writer.out "$T"/reader.out; do
			[ -f "$f" ] && { echo "--- tail of $f" >&2; tail -n 15 "$f" >&2; }
		done
	fi
	[ -n "${WDPID:-}" ] && kill "$WDPID" 2>/dev/null
	for p in ${WPID:-} ${RDPID:-}; do wait "$p" 2>/dev/null; done
	rm -rf "$T"
	exit $rc
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# --- the old release's binary
qfs_old_release "$PREV" tests/upgrade/PREVIOUS_CLUSTER

# A hang is a failure: stop everything after 240 s (a loaded machine
# under ASan needs well over 110 s; from here: the build
# above is not counted).
( for _ in $(seq 240); do sleep 1; kill -0 $$ 2>/dev/null || exit 0; done
  echo "FAIL: watchdog: still running after 240 s" >&2; kill -TERM $$ ) &
WDPID=$!

C=$T/cluster
cluster_file a b c

# node_from BIN ID: start node ID from BIN.
node_from() { start_node "$2" "$C" "$1"; }
# stop_pid PID WHAT: SIGTERM, wait (20 s at most) until it is gone.
stop_pid() {
	kill -TERM "$1" 2>/dev/null
	for _ in $(seq 200); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
	fail "$2 (pid $1) did not stop on SIGTERM"
}
mount_router() { # BIN
	"$1" mount -o "cluster=$C" "$T/s" "$M" 2>>"$T/mount.err" ||
		fail "mount from $1: $(tail -n 3 "$T/mount.err")"
	RPID=$(cat "$T/s/lock")
	[ -n "$RPID" ] || fail "no router pid in its lock file"
}
acked() { wc -l <"$T/w.acked"; }
# progress N WHAT: wait (60 s at most) until N more files are acknowledged
# and the writer and reader are still running (10 s was short: one
# create+write+fsync+close took 3 s in a normal run across a node's
# restart, and the sanitizer build on a loaded machine is 2-5x slower).
progress() {
	local before
	before=$(acked)
	for _ in $(seq 600); do [ "$(acked)" -ge $((before + $1)) ] && break; sleep 0.1; done
	kill -0 "$WPID" 2>/dev/null || fail "the writer stopped ($2): $(cat "$T/writer.out")"
	kill -0 "$RDPID" 2>/dev/null || fail "the reader stopped ($2): $(cat "$T/reader.out")"
	[ "$(acked)" -ge $((before + $1)) ] || fail "writes stalled ($2): $(acked) acknowledged"
}

# The writer: files of 1..20 KB, each written, fsynced and closed, then
# recorded in w.acked (name, SHA-256).  While T/PAUSE exists it stops
# between two files and says so in T/w.paused.  Any error ends it with 1.
writer() {
	python3 - "$T" "$M/t" <<'PY'
import os, sys, time, hashlib
T, d = sys.argv[1], sys.argv[2]
acked = open(os.path.join(T, "w.acked"), "a")
i, worst = 0, 0.0
while not os.path.exists(os.path.join(T, "STOP")):
    if os.path.exists(os.path.join(T, "PAUSE")):
        open(os.path.join(T, "w.paused"), "w").close()
        while os.path.exists(os.path.join(T, "PAUSE")):
            time.sleep(0.05)
        os.unlink(os.path.join(T, "w.paused"))
        continue
    data = os.urandom(1000 + (i * 7919) % 19000)
    name = "w%05d" % i
    t0 = time.time()
    try:
        fd = os.open(os.path.join(d, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, data)
        os.fsync(fd)
        os.close(fd)
    except OSError as e:
        print("client error on %s: %s" % (name, e), flush=True)
        sys.exit(1)
    worst = max(worst, time.time() - t0)
    acked.write("%s %s\n" % (name, hashlib.sha256(data).hexdigest()))
    acked.flush()
    i += 1
    time.sleep(0.01)  # at most ~100 files/s: the final check stays short
print("wrote %d files, slowest create+write+fsync+close %.2f s" % (i, worst))
PY
}
# The reader: reads back acknowledged files (the newest and a random older
# one) and compares their SHA-256; pauses like the writer (T/r.paused).
reader() {
	python3 - "$T" "$M/t" <<'PY'
import os, sys, time, hashlib, random
T, d = sys.argv[1], sys.argv[2]
n = 0
while not os.path.exists(os.path.join(T, "STOP")):
    if os.path.exists(os.path.join(T, "PAUSE")):
        open(os.path.join(T, "r.paused"), "w").close()
        while os.path.exists(os.path.join(T, "PAUSE")):
            time.sleep(0.05)
        os.unlink(os.path.join(T, "r.paused"))
        continue
    lines = open(os.path.join(T, "w.acked")).read().splitlines()
    lines = [l for l in lines if l.count(" ") == 1 and len(l.split()[1]) == 64]
    if not lines:
        time.sleep(0.05)
        continue
    for l in (lines[-1], random.choice(lines)):
        name, h = l.split()
        try:
            with open(os.path.join(d, name), "rb") as f:
                got = hashlib.sha256(f.read()).hexdigest()
        except OSError as e:
            print("client error reading %s: %s" % (name, e), flush=True)
            sys.exit(1)
        if got != h:
            print("acknowledged file %s differs" % name, flush=True)
            sys.exit(1)
        n += 1
    time.sleep(0.02)
print("read back %d files" % n)
PY
}

# ---- 1. OLD everywhere, under load
for n in 1 2 3; do node_from "$OLD" $n; done
mount_router "$OLD"
mkdir "$M/t" || fail "mkdir of a table (OLD router)"
G=$(awk '$1 == "table" && $2 == "t" { print $4 }' "$M/.quorumfs/status")
[ -n "$G" ] || fail "no group for table t in the status"
: >"$T/w.acked"
writer >"$T/writer.out" 2>&1 &
WPID=$!
reader >"$T/reader.out" 2>&1 &
RDPID=$!
progress 10 "OLD cluster"
note "[${SECONDS}s] OLD cluster ($PREV): 3 nodes, router, table t in group $G, $(acked) files acknowledged"

# ---- 2. the nodes, one at a time, the table's leader first
L=$(leader_wait "$G")
[ -n "$L" ] || fail "no leader of group $G"
ORDER="$L $(echo 1 2 3 | tr ' ' '\n' | grep -v "^$L\$" | tr '\n' ' ')"
for n in $ORDER; do
	stop_pid "$(pid_of "$n")" "OLD node $n"
	progress 5 "OLD node $n stopped"
	node_from "$NEW" "$n"
	caught_up "$n" "$G"
	progress 5 "node $n on NEW"
	note "[${SECONDS}s] node $n: OLD -> NEW, caught up (applied $(applied "$n" "$G")), $(acked) files acknowledged"
done
grep -q "net auth refused\|protocol version not supported" "$T"/n*/quorumfs-node.log &&
	fail "a node refused another's connection during the upgrade"

# ---- 3. the router: a restart is a remount; the writer and reader pause
touch "$T/PAUSE"
for _ in $(seq 200); do [ -e "$T/w.paused" ] && [ -e "$T/r.paused" ] && break; sleep 0.05; done
[ -e "$T/w.paused" ] && [ -e "$T/r.paused" ] || fail "writer/reader did not pause"
fusermount3 -u "$M" || fail "unmount of the OLD router"
for _ in $(seq 300); do kill -0 "$RPID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$RPID" 2>/dev/null && fail "the OLD router did not exit within 30 s of its unmount"
mount_router "$NEW"
rm -f "$T/PAUSE"
progress 10 "NEW router"
verify "$M/t" "$T/w.acked" >"$T/verify.out" || fail "NEW router: $(cat "$T/verify.out")"
note "[${SECONDS}s] router: OLD -> NEW (remount), $(cat "$T/verify.out"), writes go on"

# ---- 4. the way back: a NEW node replaced by OLD again
L=$(leader_wait "$G")
[ -n "$L" ] || fail "no leader of group $G"
B=$(echo 1 2 3 | tr ' ' '\n' | grep -v "^$L\$" | head -1)
stop_pid "$(pid_of "$B")" "NEW node $B"
node_from "$OLD" "$B"
# OLD's txn decoder knows version 3 with ops 15..19 only: op 20 (RANGE)
# is an unknown op, which it reports as corrupt data (not as an unknown
# version), then stops that replica: nothing applied, nothing misread.
UNDEC="store txn undecodable .*group=$G .*err=\"\?Corrupt data (checksum or format error)"
for _ in $(seq 100); do
	grep -q "$UNDEC" "$T/n$B/quorumfs-node.log" && break
	sleep 0.1
done
progress 5 "OLD node $B beside NEW nodes and router"
LINE=$(grep -m1 "$UNDEC" "$T/n$B/quorumfs-node.log")
[ -n "$LINE" ] || {
	grep -i "err=" "$T/n$B/quorumfs-node.log" | tail -n 5 >&2
	fail "OLD node $B among NEW: no 'txn undecodable' line for group $G"
}
note "[${SECONDS}s] OLD node $B back among NEW: ${LINE#* * }"
grep -q "rnode group stopped group=$G node=$B what=apply" "$T/n$B/quorumfs-node.log" ||
	fail "OLD node $B did not stop its replica of group $G"
a=$(applied "$B" "$G")
sleep 1
[ "$(applied "$B" "$G")" = "$a" ] || fail "OLD node $B applies the NEW router's version-3 txns"
stop_pid "$(pid_of "$B")" "OLD node $B"
node_from "$NEW" "$B"
caught_up "$B" "$G"
progress 5 "node $B back on NEW"
note "[${SECONDS}s] node $B on NEW again caught up (applied $(applied "$B" "$G"))"

# ---- 5. everything acknowledged is there, on NEW
touch "$T/STOP"
wait "$WPID" || fail "the writer saw a client error: $(cat "$T/writer.out")"
wait "$RDPID" || fail "the reader saw a client error: $(cat "$T/reader.out")"
note "[${SECONDS}s] writer: $(cat "$T/writer.out"); reader: $(cat "$T/reader.out")"
verify "$M/t" "$T/w.acked" >"$T/verify.out" || fail "$(cat "$T/verify.out")"
for n in 1 2 3; do caught_up "$n" "$G"; done
note "[${SECONDS}s] on NEW: $(cat "$T/verify.out"), the three replicas agree"
fusermount3 -u "$M" || fail "unmount of the NEW router"
for n in 1 2 3; do stop_pid "$(pid_of "$n")" "node $n"; done
exit 0
