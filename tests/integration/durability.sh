#!/bin/bash
# tests/integration/durability.sh - power-off, torn WAL tail, corrupt record.
#
# 1. Power-off rounds (QFS_DUR_ROUNDS, default 3): a python writer (4 threads,
#    two tables) creates files (some fsync'd, some written to a temp name and
#    renamed), makes directories and unlinks earlier files; it appends a line
#    to an "acked" list on the host filesystem only after close/rename/mkdir/
#    unlink returned.  The daemon is killed with -9 at a random moment, the
#    dead mount lazily unmounted, the same DATA_DIR remounted, and every acked
#    fact checked: files byte for byte, directories present, unlinked files
#    absent (an unlink in flight at the kill may or may not have happened).
# 2. Torn tail: after a clean unmount, random garbage is appended to the
#    newest .wal segment of a table's group; the remount trims it (and says so
#    in the log), all data is intact, and new writes after the trim survive
#    another remount.
# 3. Corruption: a byte is flipped in the middle of an older record of table
#    "cx" (found by a marker in the file content written to it) in a segment
#    that has later records, in node 1's replica: after remount the table
#    still works on the two intact replicas, status shows node 1's replica
#    "stopped" with a reason (or it was already rebuilt: the log says so),
#    the log names the segment, and the replica is rebuilt by itself from
#    the other two (doc/cell.md "Self-healing"; heal.sh tests it in depth).
#    Then the same in nodes 2 and 3's replicas: with two of three damaged
#    nothing is rebuilt (the healthy one is no quorum), the table answers
#    EIO at once, and the other tables (and all their data) keep working.
# The random kill delays come from QFS_DUR_SEED (printed) for reproduction.
# Behaviour: quorumfs(8) RECOVERY; contract: src/wal/wal.h.

. "${QFS_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"

# group_of TABLE: the 16-hex group of a table, from .quorumfs/status.
group_of() {
	awk -v t="$1" '$1 == "table" && $2 == t && $3 == "group" { print $4 }' "$MNT/.quorumfs/status"
}

ROUNDS=${QFS_DUR_ROUNDS:-3}
SEED=${QFS_DUR_SEED:-$(date +%s)}
qfs_require python3 awk
set -o pipefail
qfs_setup
echo "$QFS_PID" >"$T/daemon.pid"
watchdog "${QFS_DUR_TIMEOUT:-600}"
RANDOM=$SEED
note "QFS_DUR_SEED=$SEED"

cat >"$T/dur.py" <<'EOF'
# helpers for durability.sh: python3 dur.py CMD ...
import errno, hashlib, os, random, sys, threading

def die(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)

def sha(b):
    return hashlib.sha256(b).hexdigest()

def writer(mnt, ackfile, rnd_tag, nthreads=4):
    """Write until the filesystem goes away.  Ack lines (written only after
    the operation returned): F path sha | D path | U path; intent lines
    before an unlink: u path."""
    ackfd = os.open(ackfile, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    def ack(line):
        os.write(ackfd, (line + "\n").encode())
    def work(t):
        rnd = random.Random(f"{rnd_tag}-{t}")
        table = ("dur1", "dur2")[t % 2]
        base = os.path.join(mnt, table, f"r{rnd_tag}-t{t}")
        files = []
        try:
            os.mkdir(base)
            ack(f"D {base}")
            i = 0
            while True:
                i += 1
                r = rnd.random()
                if r < 0.6:
                    p = os.path.join(base, f"f{i}")
                    data = rnd.randbytes(rnd.choice([0, 1, 100, 4096, 65536, 65537, 200000, rnd.randrange(300000)]))
                    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                    for o in range(0, len(data), 50000):
                        os.write(fd, data[o:o + 50000])
                    if rnd.random() < 0.5:
                        os.fsync(fd)
                    os.close(fd)
                    ack(f"F {p} {sha(data)}")
                    files.append(p)
                elif r < 0.75:
                    tmp = os.path.join(base, f"tmp{i}")
                    p = os.path.join(base, f"renamed{i}")
                    data = rnd.randbytes(rnd.randrange(150000))
                    with open(tmp, "wb") as f:
                        f.write(data)
                    os.rename(tmp, p)
                    ack(f"F {p} {sha(data)}")
                    files.append(p)
                elif r < 0.85:
                    p = os.path.join(base, f"d{i}")
                    os.mkdir(p)
                    ack(f"D {p}")
                elif files:
                    p = files.pop(rnd.randrange(len(files)))
                    ack(f"u {p}")
                    os.unlink(p)
                    ack(f"U {p}")
        except OSError:
            return  # the daemon was killed
    th = [threading.Thread(target=work, args=(t,)) for t in range(nthreads)]
    for x in th: x.start()
    for x in th: x.join()

def verify(ackfile):
    """Check every acked fact (see writer)."""
    facts = {}
    unlinking = set()
    with open(ackfile) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 2:
                continue  # a line torn by nothing: we are not killed, but be safe
            op, p = parts[0], parts[1]
            if op == "F":
                facts[p] = parts[2]
            elif op == "D":
                facts[p] = "dir"
            elif op == "u":
                unlinking.add(p)
            elif op == "U":
                facts[p] = "gone"
                unlinking.discard(p)
    nf = nd = ng = 0
    for p, want in sorted(facts.items()):
        if want == "gone":
            if os.path.lexists(p):
                die(f"{p} was unlinked (unlink returned) but exists after the crash")
            ng += 1
        elif want == "dir":
            if not os.path.isdir(p):
                die(f"directory {p} (mkdir returned) is missing after the crash")
            nd += 1
        else:
            try:
                with open(p, "rb") as f:
                    got = f.read()
            except FileNotFoundError:
                if p in unlinking:
                    continue  # unlink in flight at the kill
                die(f"{p} (closed/renamed before the crash) is missing")
            except OSError as e:
                die(f"{p}: {e}")
            if sha(got) != want:
                die(f"{p}: content differs after the crash ({len(got)} bytes, sha {sha(got)[:16]}, want {want[:16]})")
            nf += 1
    print(f"# verified {nf} files, {nd} dirs, {ng} unlinks")
    return nf

def count(ackfile):
    try:
        with open(ackfile) as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0

def corrupt_setup(mnt, marker_file):
    """Fill table cx (victim with a marker first, then later records) and ok."""
    rnd = random.Random(7)
    marker = b"QFS-MARKER-" + rnd.randbytes(8).hex().encode() + b"-"
    body = (marker * (8192 // len(marker) + 1))[:8192]
    with open(os.path.join(mnt, "cx", "victim"), "wb") as f:
        f.write(body)
    for i in range(40):
        with open(os.path.join(mnt, "cx", f"later{i}"), "wb") as f:
            f.write(rnd.randbytes(3000))
    with open(marker_file, "wb") as f:
        f.write(marker)
    sums = []
    for i in range(20):
        data = rnd.randbytes(rnd.randrange(200000))
        p = os.path.join(mnt, "ok", f"k{i}")
        with open(p, "wb") as f:
            f.write(data)
        sums.append(f"F {p} {sha(data)}\n")
    return "".join(sums)

def flip(waldir, marker_file):
    """Flip one byte in the middle of the marker run in the group's segments.
    Prints the file and offset.  Requires later data in the same segment."""
    marker = open(marker_file, "rb").read()
    segs = sorted(x for x in os.listdir(waldir) if x.endswith(".wal"))
    if not segs:
        die(f"no .wal segments in {waldir}")
    for s in segs:
        p = os.path.join(waldir, s)
        b = open(p, "rb").read()
        i = b.find(marker)
        if i < 0:
            continue
        pos = i + 4096
        if b[pos - 64:pos + 64].count(marker[:8]) == 0:
            pos = i + len(marker) // 2
        if len(b) - pos < 40 * 3000:
            die(f"test setup: only {len(b) - pos} bytes after the marker in {p}; want later records in the same segment")
        with open(p, "r+b") as f:
            f.seek(pos)
            f.write(bytes([b[pos] ^ 0x5a]))
            f.flush()
            os.fsync(f.fileno())
        print(f"{s} {pos} {len(b)}")
        return
    # no plain copy of the data in the log (compressed/encoded payloads):
    # flip the middle of the largest segment instead
    s = max(segs, key=lambda x: os.path.getsize(os.path.join(waldir, x)))
    p = os.path.join(waldir, s)
    n = os.path.getsize(p)
    with open(p, "r+b") as f:
        f.seek(n // 2)
        c = f.read(1)
        f.seek(n // 2)
        f.write(bytes([c[0] ^ 0x5a]))
    print(f"{s} {n // 2} {n} nomarker")

def expect_marker(path, marker_file):
    """The victim file still holds its marker run (read through the mount)."""
    marker = open(marker_file, "rb").read()
    body = (marker * (8192 // len(marker) + 1))[:8192]
    got = open(path, "rb").read()
    if got != body:
        die(f"{path}: {len(got)} bytes, not the 8192 marker bytes written")

def expect_eio(mnt):
    """Every operation on table cx fails with EIO."""
    cx = os.path.join(mnt, "cx")
    checks = [
        ("listdir", lambda: os.listdir(cx)),
        ("open victim", lambda: open(os.path.join(cx, "victim"), "rb").read()),
        ("stat later0", lambda: os.stat(os.path.join(cx, "later0"))),
        ("create", lambda: open(os.path.join(cx, "new"), "wb").close()),
        ("mkdir", lambda: os.mkdir(os.path.join(cx, "newdir"))),
    ]
    for what, fn in checks:
        try:
            fn()
        except OSError as e:
            if e.errno != errno.EIO:
                die(f"{what} in the stopped table: {errno.errorcode.get(e.errno, e.errno)}, want EIO")
            continue
        die(f"{what} in the stopped table succeeded, want EIO")

if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "writer":
        writer(sys.argv[2], sys.argv[3], sys.argv[4])
    elif cmd == "verify":
        verify(sys.argv[2])
    elif cmd == "count":
        print(count(sys.argv[2]))
    elif cmd == "expect_marker":
        expect_marker(sys.argv[2], sys.argv[3])
    elif cmd == "corrupt_setup":
        sys.stdout.write(corrupt_setup(sys.argv[2], sys.argv[3]))
    elif cmd == "flip":
        flip(sys.argv[2], sys.argv[3])
    elif cmd == "expect_eio":
        expect_eio(sys.argv[2])
EOF
py() { python3 "$T/dur.py" "$@" || fail "python step '$1' failed (see above)"; }

ACK=$T/acked
mkdir "$MNT/dur1" "$MNT/dur2" || fail "mkdir tables"

# --- 1. power-off rounds
for round in $(seq "$ROUNDS"); do
	before=$(python3 "$T/dur.py" count "$ACK")
	python3 "$T/dur.py" writer "$MNT" "$ACK" "$round" &
	wpid=$!
	# let it ack something, then kill at a random moment 0.2..2.7 s later
	for _ in $(seq 300); do
		[ "$(python3 "$T/dur.py" count "$ACK")" -ge $((before + 20)) ] && break
		kill -0 $wpid 2>/dev/null || break
		sleep 0.1
	done
	kill -0 $wpid 2>/dev/null || { wait $wpid; fail "round $round: the writer stopped before the kill"; }
	delay=$((200 + RANDOM % 2500))
	sleep "$((delay / 1000)).$(printf %03d $((delay % 1000)))"
	qfs_kill9
	wait $wpid
	after=$(python3 "$T/dur.py" count "$ACK")
	note "round $round: killed after $delay ms more; $((after - before)) acks this round"
	mount_again
	py verify "$ACK"
done

# --- 2. torn tail: garbage after the last record of dur1's newest segment
G1=$(group_of dur1)
[ -n "$G1" ] || { cat "$MNT/.quorumfs/status" >&2; fail "no 'table dur1 group <hex>' line in .quorumfs/status"; }
qfs_umount
WAL1=$DATA/nodes/n1/wal/$G1
[ -d "$WAL1" ] || fail "group directory $WAL1 is missing"
seg=$(find "$WAL1" -maxdepth 1 -name '*.wal' -printf '%f\n' | sort | tail -n 1)
[ -n "$seg" ] || fail "no .wal segment in $WAL1"
size=$(stat -c %s "$WAL1/$seg")
head -c 1531 /dev/urandom >>"$WAL1/$seg" || fail "append garbage"
note "appended 1531 garbage bytes to $seg ($size bytes)"
log_mark
mount_again
py verify "$ACK"
log_since >"$T/log.torn"
grep -qi 'trim' "$T/log.torn" ||
	{ cat "$T/log.torn" >&2; fail "recovery of a torn tail in $seg did not log a trim"; }
grep "^group $G1 leader " "$MNT/.quorumfs/status" | grep -Eq ' up 3( |$)' ||
	{ cat "$MNT/.quorumfs/status" >&2; fail "group $G1: not all 3 replicas up after trimming a torn tail"; }
# writes after the trim must be readable after the next recovery
mkdir "$MNT/dur1/after-trim" || fail "mkdir after trim"
for i in 1 2 3 4 5; do
	head -c $((i * 30000)) /dev/urandom >"$MNT/dur1/after-trim/g$i" || fail "write after trim"
	echo "F $MNT/dur1/after-trim/g$i $(sha256sum <"$MNT/dur1/after-trim/g$i" | cut -d' ' -f1)" >>"$ACK"
done
qfs_umount
mount_again
py verify "$ACK"
grep "^group $G1 leader " "$MNT/.quorumfs/status" | grep -Eq ' up 3( |$)' ||
	{ cat "$MNT/.quorumfs/status" >&2; fail "group $G1: not all 3 replicas up after writing past a trimmed tail"; }
note "torn tail trimmed, data intact"

# --- 3. corruption of an older record in table cx
mkdir "$MNT/cx" "$MNT/ok" || fail "mkdir tables"
python3 "$T/dur.py" corrupt_setup "$MNT" "$T/marker" >"$T/ok.acks" || fail "corrupt_setup"
GX=$(group_of cx)
[ -n "$GX" ] || { cat "$MNT/.quorumfs/status" >&2; fail "no 'table cx group <hex>' line in .quorumfs/status"; }
for t in dur1 dur2 ok; do
	[ "$(group_of $t)" != "$GX" ] || fail "tables cx and $t share group $GX; cannot test isolation"
done
qfs_umount
where=$(python3 "$T/dur.py" flip "$DATA/nodes/n1/wal/$GX" "$T/marker") || fail "flipping a byte"
note "flipped a byte in node 1's replica of group $GX: segment offset size = $where"
log_mark
mount_again
# One damaged replica of three: the table keeps working on the other two.
python3 "$T/dur.py" expect_marker "$MNT/cx/victim" "$T/marker" || fail "cx/victim unreadable with one damaged replica"
echo still >"$MNT/cx/after-damage" && [ "$(cat "$MNT/cx/after-damage")" = still ] ||
	fail "table cx does not take writes with one damaged replica of three"
# one reading of the status for every check below: the cell may rebuild
# the replica between two readings (then 'up 3' and no longer stopped)
cat "$MNT/.quorumfs/status" >"$T/all.status" || fail "reading .quorumfs/status"
grep "^group $GX replica node 1 " "$T/all.status" >"$T/gx.status" ||
	{ cat "$T/all.status" >&2; fail "no 'group $GX replica node 1' line in .quorumfs/status"; }
log_since >"$T/log.corrupt"
# a replica the status no longer shows stopped was rebuilt already: its
# log line may reach the log a moment after the status changed
if ! grep -q 'health stopped' "$T/gx.status"; then
	for _ in $(seq 50); do
		grep -q "cell replica rebuild group=$GX node=1 " "$T/log.corrupt" && break
		sleep 0.2
		log_since >"$T/log.corrupt"
	done
fi
if grep -q "cell replica rebuild group=$GX node=1 " "$T/log.corrupt"; then
	note "node 1's replica was already being rebuilt: $(cat "$T/gx.status")"
else
	grep -q 'health stopped' "$T/gx.status" ||
		{ cat "$T/gx.status" >&2; fail "node 1's replica of the corrupt group is not 'health stopped' in status"; }
	grep -Eqi 'corrupt' "$T/gx.status" ||
		{ cat "$T/gx.status" >&2; fail "status line of the stopped replica gives no reason (no 'corrupt')"; }
	grep "^group $GX leader " "$T/all.status" | grep -Eq ' up 2( |$)' ||
		{ cat "$T/all.status" >&2; fail "group $GX: want 'up 2' with one damaged replica"; }
fi
grep -qi 'corrupt' "$T/log.corrupt" ||
	{ cat "$T/log.corrupt" >&2; fail "the log does not say the group's WAL is corrupt"; }
grep -q "${where%% *}" "$T/log.corrupt" ||
	{ cat "$T/log.corrupt" >&2; fail "the log does not name the corrupt segment ${where%% *}"; }
qfs_wait_agree "$GX" 60 || fail "node 1's corrupt replica of $GX was not rebuilt within 60 s"
python3 "$T/dur.py" expect_marker "$MNT/cx/victim" "$T/marker" || fail "cx/victim unreadable after the rebuild"
qfs_umount
# Two damaged replicas of three: no quorum is possible and nothing is
# rebuilt; the table answers EIO at once (no wait), every other table keeps
# working.
for n in 2 3; do
	where2=$(python3 "$T/dur.py" flip "$DATA/nodes/n$n/wal/$GX" "$T/marker") || fail "flipping a byte on node $n"
	note "flipped a byte in node $n's replica: $where2"
done
log_mark
mount_again
py expect_eio "$MNT"
for n in 2 3; do
	grep "^group $GX replica node $n " "$MNT/.quorumfs/status" | qgrep 'health stopped' ||
		{ cat "$MNT/.quorumfs/status" >&2; fail "node $n's replica of group $GX is not 'health stopped'"; }
done
cat "$T/ok.acks" >>"$ACK"
py verify "$ACK"
echo fresh >"$MNT/ok/fresh" && [ "$(cat "$MNT/ok/fresh")" = fresh ] || fail "table ok does not accept writes"
echo fresh >"$MNT/dur2/fresh" && [ "$(cat "$MNT/dur2/fresh")" = fresh ] || fail "table dur2 does not accept writes"
sleep 3 # the keeper's first look at a damaged replica is after 1 s
! log_since | qgrep "cell replica rebuild group=$GX " ||
	{ log_since | grep "cell replica" >&2; fail "a replica of $GX was rebuilt with only one healthy replica left"; }
qfs_umount
note "PASS ($SECONDS s)"
exit 0
