#!/bin/bash
# tests/integration/replicas.sh - three replicas per group: node stops and
# starts under a concurrent write workload, catch-up, quorum loss.
#
# 1. Rounds under load (mount -o quorum_timeout=QT, QT = QFS_REPL_QT,
#    default 10000 ms: above a leader failover, which the workload must
#    ride out without an error: the old leader's lease (2 s), an election
#    (1-2 s), another after a split vote; 3000 ms was not, a failover with
#    a split vote on a loaded machine took 3.4 s): three writer processes
#    create files (write, fsync, close), write-and-rename, replace files by
#    rename, make directories and unlink, appending each operation to a
#    journal on the host only after it returned; the first error stops a
#    writer and is recorded.  Each round stops one node through
#    MNT/.quorumfs/nodes - the first round the leader of the table's group,
#    then the two others, then the leader again - checks that a new leader
#    is elected when the leader went, that the workload keeps acknowledging
#    while the node is down, starts the node and waits (bounded) for it to
#    catch up.  The workload must have no error.
# 2. All replicas of the table's group and of the meta group reach the same
#    applied LSN with health ok; every journaled fact is checked through the
#    mount (files byte for byte, directories, unlinked names absent).
# 3. Remounted with -o quorum_timeout=NQT (QFS_REPL_NQ_QT, default 3000
#    ms: phases 3 and 4 have no failover to ride out, and each ETIMEDOUT
#    below waited a whole timeout, 10 s at QT; not less than 3000: the
#    create once the quorum is back must not time out on a loaded CI
#    machine's slow fsyncs), two nodes stopped (strong
#    reads): write+fsync through a descriptor opened before, a mkdir and a
#    lookup of a name never seen fail with ETIMEDOUT, each in less than
#    NQT + 10 s.
#    Control file errors: "bogus" and "stop 9" -> EINVAL, stopping a stopped
#    node -> EALREADY, a write by a non-root user -> EACCES.  After the
#    restart nothing journaled is lost and writes work again.
# 4. Remount with -o reads=eventual (quorum_timeout=NQT), stop the two
#    nodes other than the one that caught up last, read every journaled
#    fact back from that replica alone; a mutation still fails with
#    ETIMEDOUT in bounded time.
# Timing checks are bounds against hangs only.  Interface: doc/cell.md.

. "${QFS_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"

QT=${QFS_REPL_QT:-10000}
NQT=${QFS_REPL_NQ_QT:-3000} # phases 3 and 4 (no quorum)
LIMIT=$((NQT / 1000 + 10))  # bound on one failing call, seconds
qfs_require python3 awk timeout setpriv
set -o pipefail
qfs_setup -o quorum_timeout="${QT}ms"
echo "$QFS_PID" >"$T/daemon.pid"
watchdog "${QFS_REPL_TIMEOUT:-240}"

grep -q '^replicas 3$' "$MNT/.quorumfs/status" ||
	{ cat "$MNT/.quorumfs/status" >&2; fail "the default mount does not say 'replicas 3' in .quorumfs/status"; }

cat >"$T/repl.py" <<'EOF'
# helpers for replicas.sh: python3 repl.py CMD ...
import errno, hashlib, os, random, sys, time

def die(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)

def sha(b):
    return hashlib.sha256(b).hexdigest()

def ename(e):
    return errno.errorcode.get(e, str(e))

def writer(tdir, journal, errfile, stopfile, wid):
    """Work in tdir/wWID until stopfile exists; journal lines (appended only
    after the operation returned): F path sha | D path | U path.  On the
    first error: a line in errfile, exit 1."""
    rnd = random.Random(f"repl-{wid}")
    jfd = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    def ack(line):
        os.write(jfd, (line + "\n").encode())
    state = {"what": "", "t0": 0.0}
    worst = [0.0, ""]
    def begin(what):
        state["what"], state["t0"] = what, time.monotonic()
    def done():
        dt = time.monotonic() - state["t0"]
        if dt > worst[0]:
            worst[0], worst[1] = dt, state["what"]
    def put(p, data, excl):
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | (os.O_EXCL if excl else os.O_TRUNC), 0o644)
        try:
            mv = memoryview(data)
            while mv:
                mv = mv[os.write(fd, mv):]
            os.fsync(fd)
        finally:
            os.close(fd)
    base = os.path.join(tdir, f"w{wid}")
    files = []
    n = 0
    try:
        begin(f"mkdir {base}")
        os.mkdir(base)
        done()
        ack(f"D {base}")
        i = 0
        while not os.path.exists(stopfile):
            i += 1
            r = rnd.random()
            data = rnd.randbytes(rnd.choice([0, 1, 517, 4096, 20000, rnd.randrange(70000)]))
            if r < 0.5:
                p = os.path.join(base, f"f{i}")
                begin(f"create+fsync {p}")
                put(p, data, True)
                done()
                ack(f"F {p} {sha(data)}")
                files.append(p)
            elif r < 0.65:
                tmp, p = os.path.join(base, f"tmp{i}"), os.path.join(base, f"r{i}")
                begin(f"write {tmp}, rename to {p}")
                put(tmp, data, True)
                os.rename(tmp, p)
                done()
                ack(f"F {p} {sha(data)}")
                files.append(p)
            elif r < 0.75 and files:
                tmp, p = os.path.join(base, f"tmp{i}"), rnd.choice(files)
                begin(f"write {tmp}, rename over {p}")
                put(tmp, data, True)
                os.rename(tmp, p)
                done()
                ack(f"F {p} {sha(data)}")
            elif r < 0.85:
                p = os.path.join(base, f"d{i}")
                begin(f"mkdir {p}")
                os.mkdir(p)
                done()
                ack(f"D {p}")
            elif files:
                p = files.pop(rnd.randrange(len(files)))
                begin(f"unlink {p}")
                os.unlink(p)
                done()
                ack(f"U {p}")
            n += 1
    except OSError as e:
        dt = time.monotonic() - state["t0"]
        with open(errfile, "a") as f:
            f.write(f"writer {wid}: {state['what']}: {ename(e.errno)} ({e.strerror}) after {dt:.1f} s\n")
        sys.exit(1)
    print(f"# writer {wid}: {n} operations, slowest {worst[0]:.2f} s ({worst[1]})")

def verify(journal):
    facts = {}
    for line in open(journal):
        parts = line.split()
        if parts[0] == "F":
            facts[parts[1]] = parts[2]
        elif parts[0] == "D":
            facts[parts[1]] = "dir"
        elif parts[0] == "U":
            facts[parts[1]] = "gone"
    nf = nd = ng = 0
    for p, want in sorted(facts.items()):
        if want == "gone":
            if os.path.lexists(p):
                die(f"{p} was unlinked (unlink returned) but exists")
            ng += 1
        elif want == "dir":
            if not os.path.isdir(p):
                die(f"directory {p} (mkdir returned) is missing")
            nd += 1
        else:
            try:
                with open(p, "rb") as f:
                    got = f.read()
            except OSError as e:
                die(f"{p} (acknowledged): {ename(e.errno)} ({e.strerror})")
            if sha(got) != want:
                die(f"{p}: content differs from the acknowledged one ({len(got)} bytes)")
            nf += 1
    if nf == 0:
        die("the journal has no file to verify")
    print(f"# verified {nf} files, {nd} dirs, {ng} unlinks")

def expect(want, limit, kind, path, *args):
    """Run one call; it must fail with errno `want` (or succeed if want is
    "ok") in less than `limit` seconds."""
    t0 = time.monotonic()
    got = "ok"
    try:
        if kind == "mkdir":
            os.mkdir(path)
        elif kind == "create":
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                os.write(fd, b"x" * 4096)
                os.fsync(fd)
            finally:
                os.close(fd)
        elif kind == "stat":
            os.stat(path)
        elif kind == "read":
            open(path, "rb").read()
        elif kind == "ctl":
            fd = os.open(path, os.O_WRONLY)
            try:
                os.write(fd, args[0].encode())
            finally:
                os.close(fd)
        else:
            die(f"unknown kind {kind}")
    except OSError as e:
        got = ename(e.errno)
    dt = time.monotonic() - t0
    what = f"{kind} {path}" + (f" {args[0]!r}" if args else "")
    if got != want:
        die(f"{what}: got {got} after {dt:.1f} s, want {want}")
    if dt >= float(limit):
        die(f"{what}: {got} only after {dt:.1f} s, want less than {limit} s")
    print(f"# {what}: {got} after {dt:.1f} s")

def held(want, limit, path, trigger):
    """Open path now; once trigger exists, write 4 KiB and fsync it through
    the open descriptor (no lookup on the way: a pure mutation); it must
    fail with `want` in less than `limit` seconds."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    while not os.path.exists(trigger):
        time.sleep(0.05)
    t0 = time.monotonic()
    got = "ok"
    try:
        os.pwrite(fd, b"y" * 4096, 0)
        os.fsync(fd)
    except OSError as e:
        got = ename(e.errno)
    try:
        os.close(fd)
    except OSError as e:
        got = got if got != "ok" else ename(e.errno)
    dt = time.monotonic() - t0
    if got != want:
        die(f"write+fsync of open {path}: got {got} after {dt:.1f} s, want {want}")
    if dt >= float(limit):
        die(f"write+fsync of open {path}: {got} only after {dt:.1f} s, want less than {limit} s")
    print(f"# write+fsync of open {path}: {got} after {dt:.1f} s")

def tryctl(path, command):
    """Write one command to the nodes file; print ok or the errno name."""
    try:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, command.encode())
        finally:
            os.close(fd)
        print("ok")
    except OSError as e:
        print(ename(e.errno))

def holder(path, cmdfile, resfile, stopfile):
    """Keep the nodes file open; write each command that shows up in
    cmdfile through that descriptor and put ok or the errno in resfile."""
    fd = os.open(path, os.O_WRONLY)
    while not os.path.exists(stopfile):
        if os.path.exists(cmdfile):
            command = open(cmdfile).read()
            os.unlink(cmdfile)
            try:
                os.write(fd, command.encode())
                r = "ok"
            except OSError as e:
                r = ename(e.errno)
            with open(resfile + ".tmp", "w") as f:
                f.write(r)
            os.rename(resfile + ".tmp", resfile)
        time.sleep(0.05)
    os.close(fd)

if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "tryctl":
        tryctl(*sys.argv[2:])
    elif cmd == "holder":
        holder(*sys.argv[2:])
    elif cmd == "held":
        held(*sys.argv[2:])
    elif cmd == "writer":
        writer(*sys.argv[2:])
    elif cmd == "verify":
        verify(sys.argv[2])
    elif cmd == "expect":
        expect(*sys.argv[2:])
EOF
py() { python3 "$T/repl.py" "$@" || fail "python step '$1 ${2:-}' failed (see above)"; }
# expect WANT KIND PATH [ARG]: the call fails with WANT (or "ok") within
# LIMIT seconds; timeout(1) turns a hang into a failure.
expect() {
	timeout -k 3 $((LIMIT + 5)) python3 "$T/repl.py" expect "$1" "$LIMIT" "${@:2}" ||
		fail "expect $*: failed or hung (see above)"
}
status_of() { grep "^group $1 " "$MNT/.quorumfs/status"; }
# replica_field GROUP NODE FIELD: a field (last|durable|commit|applied|
# health|role) of one replica line
replica_field() {
	awk -v g="$1" -v n="$2" -v f="$3" '$1 == "group" && $2 == g && $3 == "replica" && $5 == n {
		for (i = 6; i < NF; i++) if ($i == f) print $(i + 1) }' "$MNT/.quorumfs/status"
}
nodes_check() { # nodes_check "up up down": the nodes file says exactly that
	local got
	got=$(awk '$1 == "node" { for (i = 3; i < NF; i++) if ($i == "state") s = s (s ? " " : "") $(i + 1) } END { print s }' \
		"$MNT/.quorumfs/nodes")
	[ "$got" = "$1" ] || { cat "$MNT/.quorumfs/nodes" >&2; fail "nodes file says '$got', want '$1'"; }
}
ctl() { qfs_node_ctl "$1" || fail "'$1' > .quorumfs/nodes failed"; }
# held_ctl CMD: write CMD through the descriptor the holder keeps open
held_ctl() {
	rm -f "$T/hold.res"
	printf '%s' "$1" >"$T/hold.cmd.tmp" && mv "$T/hold.cmd.tmp" "$T/hold.cmd"
	for _ in $(seq 100); do [ -f "$T/hold.res" ] && break; sleep 0.1; done
	cat "$T/hold.res" 2>/dev/null || echo "no answer from the holder"
}
PROBLEMS=   # failures that let the rest of the test run; reported at the end

# --- the nodes file
grep -Eq '^node 1 az a state up dir /.*/n1$' "$MNT/.quorumfs/nodes" &&
	grep -Eq '^node 2 az b state up dir /.*/n2$' "$MNT/.quorumfs/nodes" &&
	grep -Eq '^node 3 az c state up dir /.*/n3$' "$MNT/.quorumfs/nodes" &&
	[ "$(grep -c . "$MNT/.quorumfs/nodes")" -eq 3 ] ||
	{ cat "$MNT/.quorumfs/nodes" >&2; fail ".quorumfs/nodes is not 'node N az X state up dir .../nN' for n1..n3"; }
for n in 1 2 3; do [ -d "$DATA/nodes/n$n" ] || fail "$DATA/nodes/n$n is missing"; done
[ -z "$(find "$MNT" -mindepth 1 -maxdepth 1 -name .quorumfs)" ] || fail "the control tree shows in the root listing"

mkdir "$MNT/rt" || fail "mkdir table rt"
G=$(qfs_group_of rt) || fail "no group for table rt"
[ "$G" = "$(printf '%016x' "$(stat -c %i "$MNT/rt")")" ] ||
	fail "table rt: status says group $G, its inode is $(stat -c %i "$MNT/rt")"
status_of "$G" | grep -Eq "^group $G leader [123] ballot [0-9]+ replicas 3 up 3( |$)" ||
	{ status_of "$G" >&2; fail "no 'group $G leader L ballot B replicas 3 up 3' line"; }
qfs_wait_agree "$G" 30 || fail "the replicas of a new table's group do not agree within 30 s"
[ "$(status_of "$G" | grep -Ec "^group $G replica node [123] az [abc] health ok role (leader|follower) last [0-9]+ durable [0-9]+ commit [0-9]+ applied [0-9]+( |$)")" -eq 3 ] ||
	{ status_of "$G" >&2; fail "group $G: want 3 replica lines with health ok"; }
status_of 0000000000000001 | qgrep 'replicas 3' || { cat "$MNT/.quorumfs/status" >&2; fail "no meta group line with replicas 3"; }

# --- 1. rounds under load
J=$T/journal ERR=$T/errors STOP=$T/stop
# lines of the journal so far (wc -l, not a python3 start per look: 1-1.5 s
# each at load 13)
jcount() { if [ -e "$J" ]; then wc -l <"$J"; else echo 0; fi; }
: >"$ERR"
WPIDS=
for w in 1 2 3; do
	python3 "$T/repl.py" writer "$MNT/rt" "$J" "$ERR" "$STOP" "$w" >"$T/writer$w.out" 2>&1 &
	WPIDS="$WPIDS $!"
done
stop_writers() {
	touch "$STOP"
	local rc=0
	for p in $WPIDS; do wait "$p" || rc=1; done
	WPIDS=
	cat "$T"/writer*.out
	[ ! -s "$ERR" ] || { cat "$ERR" >&2; fail "the workload got an error (above)"; }
	[ $rc -eq 0 ] || fail "a writer failed without recording an error (see above)"
}
check_writers() {
	[ ! -s "$ERR" ] || { cat "$ERR" >&2; touch "$STOP"; fail "the workload got an error $*"; }
}
sleep 1
# a leader (re-elected if a heartbeat was missed on a loaded machine): 30 s at most
for _ in $(seq 300); do L0=$(qfs_leader_of "$G"); case $L0 in 1|2|3) break ;; esac; sleep 0.1; done
case $L0 in 1|2|3) ;; *) status_of "$G" >&2; fail "group $G has no leader before the rounds" ;; esac
round=0
last_restarted=
for victim in "$L0" $(printf '%s\n' 1 2 3 | grep -vx "$L0") leader; do
	round=$((round + 1))
	if [ "$victim" = leader ]; then
		victim=$(qfs_leader_wait "$G")
		case $victim in 1|2|3) ;; *) status_of "$G" >&2; fail "round $round: group $G has no leader" ;; esac
	fi
	was_leader=$([ "$victim" = "$(qfs_leader_of "$G")" ] && echo 1 || echo 0)
	ctl "stop $victim"
	t_stop=$SECONDS
	[ "$(qfs_node_state "$victim")" = down ] || { cat "$MNT/.quorumfs/nodes" >&2; fail "node $victim not down after 'stop $victim'"; }
	status_of "$G" | grep -Eq "^group $G replica node $victim az [abc] health (stopped|down) " ||
		{ status_of "$G" >&2; fail "round $round: replica on stopped node $victim is not 'health stopped|down'"; }
	if [ "$was_leader" = 1 ]; then
		# a new leader within a bounded time (election 1-2 s, lease 2 s;
		# 30 s at most for a loaded machine)
		for _ in $(seq 300); do
			l=$(qfs_leader_of "$G")
			case $l in 1|2|3) [ "$l" != "$victim" ] && break ;; esac
			sleep 0.1
		done
		case $l in 1|2|3) [ "$l" != "$victim" ] ;; *) false ;; esac ||
			{ status_of "$G" >&2; fail "round $round: no new leader 30 s after stopping leader $victim"; }
	fi
	before=$(jcount)
	sleep 3
	# (fsyncs on a loaded machine may take longer: up to 30 s more)
	for _ in $(seq 300); do
		check_writers "while node $victim was stopped"
		after=$(jcount)
		[ "$after" -gt "$before" ] && break
		sleep 0.1
	done
	[ "$after" -gt "$before" ] ||
		{ status_of "$G" >&2; fail "round $round: nothing acknowledged in 33 s with node $victim stopped"; }
	grep -Eq "^group $G leader [123] ballot [0-9]* replicas 3 up 2( |$)" "$MNT/.quorumfs/status" ||
		{ status_of "$G" >&2; fail "round $round: group line does not say 'up 2' with node $victim stopped"; }
	ctl "start $victim"
	[ "$(qfs_node_state "$victim")" = up ] || { cat "$MNT/.quorumfs/nodes" >&2; fail "node $victim not up after 'start $victim'"; }
	last_restarted=$victim
	note "round $round: node $victim stopped (leader: $was_leader, new leader $(qfs_leader_of "$G")) $((SECONDS - t_stop)) s, $((after - before)) acks meanwhile"
	# it catches up under load before the next round: its applied LSN
	# reaches what the leader had committed when it started (bounded)
	target=$(replica_field "$G" "$(qfs_leader_of "$G")" commit)
	[ -n "$target" ] || { status_of "$G" >&2; fail "round $round: no commit LSN for the leader"; }
	caught=
	for _ in $(seq 150); do
		a=$(replica_field "$G" "$victim" applied)
		[ -n "$a" ] && [ "$a" -ge "$target" ] && { caught=1; break; }
		sleep 0.2
	done
	[ -n "$caught" ] ||
		{ status_of "$G" >&2; fail "round $round: node $victim did not apply up to LSN $target within 30 s of its start"; }
	check_writers "after node $victim restarted"
done
stop_writers
nodes_check "up up up"

# --- 2. the replicas agree; everything acknowledged is there
qfs_wait_agree "$G" 30 || fail "replicas of the table's group did not converge"
qfs_wait_agree 0000000000000001 30 || fail "replicas of the meta group did not converge"
status_of "$G"
py verify "$J"
note "phase 2 done ($SECONDS s)"

# --- 3. two nodes stopped, strong reads (a timeout of NQT: see the top)
qfs_umount
mount_again -o quorum_timeout="${NQT}ms"
nodes_check "up up up"
qfs_wait_agree "$G" 30 || fail "replicas did not converge after the remount for phase 3"
qfs_wait_agree 0000000000000001 30 || fail "meta replicas did not converge after the remount for phase 3"
leaders_wait() { # the table's group and the meta group have a leader (30 s at most)
	case $(qfs_leader_wait "$G") in 1|2|3) ;; *) status_of "$G" >&2; fail "group $G has no leader $1" ;; esac
	case $(qfs_leader_wait 0000000000000001) in 1|2|3) ;; *) status_of 0000000000000001 >&2; fail "the meta group has no leader $1" ;; esac
}
leaders_wait "after the remount for phase 3"
K=$last_restarted
others=$(printf '%s\n' 1 2 3 | grep -vx "$K" | tr '\n' ' ')
set -- $others
A=$1 B=$2
expect EINVAL ctl "$MNT/.quorumfs/nodes" "bogus"
expect EINVAL ctl "$MNT/.quorumfs/nodes" "stop 9"
expect EINVAL ctl "$MNT/.quorumfs/nodes" "start 0"
expect EALREADY ctl "$MNT/.quorumfs/nodes" "start $A"
setpriv --reuid=4201 --regid=4201 --clear-groups -- timeout -k 3 $((LIMIT + 5)) \
	python3 "$T/repl.py" expect EACCES "$LIMIT" ctl "$MNT/.quorumfs/nodes" "stop $A" ||
	fail "a non-root write to .quorumfs/nodes did not fail with EACCES"
nodes_check "up up up"
# the nodes file held open, in case opening it needs a quorum (see PROBLEMS)
python3 "$T/repl.py" holder "$MNT/.quorumfs/nodes" "$T/hold.cmd" "$T/hold.res" "$T/hold.stop" &
HOLDER=$!
# a descriptor opened while the quorum is there, written when it is not
timeout -k 3 $((LIMIT + 30)) python3 "$T/repl.py" held ETIMEDOUT "$LIMIT" "$MNT/rt/held" "$T/trigger" &
HELD=$!
sleep 0.5
expect ok ctl "$MNT/.quorumfs/nodes" "stop $A"       # no newline
expect EALREADY ctl "$MNT/.quorumfs/nodes" "stop $A"
ctl "stop $B"
st=$(for n in 1 2 3; do [ "$n" = "$K" ] && echo up || echo down; done | tr '\n' ' ')
nodes_check "${st% }"
touch "$T/trigger"
wait $HELD || fail "write+fsync through an open descriptor did not fail with ETIMEDOUT in time (above)"
expect ETIMEDOUT mkdir "$MNT/rt/nq-dir"
expect ETIMEDOUT stat "$MNT/rt/never-looked-up"
# the control tree answers without a quorum (that is when it is needed)
if timeout -k 3 $((3 * LIMIT)) cat "$MNT/.quorumfs/status" >"$T/status.q" 2>"$T/status.err"; then
	grep -Eq "^group $G leader .* replicas 3 up 1( |$)" "$T/status.q" ||
		{ grep "^group $G " "$T/status.q" >&2; fail "group line does not say 'up 1' with nodes $A and $B stopped"; }
else
	PROBLEMS="$PROBLEMS
cat .quorumfs/status with nodes $A and $B stopped: $(cat "$T/status.err"), want the status"
fi
# restarting a node must work without a quorum (it is how one gets it back)
r=$(timeout -k 3 $((LIMIT + 5)) python3 "$T/repl.py" tryctl "$MNT/.quorumfs/nodes" "start $A
")
if [ "$r" != ok ]; then
	PROBLEMS="$PROBLEMS
'start $A' > .quorumfs/nodes with nodes $A and $B stopped: $r, want success"
	r=$(held_ctl "start $A")
	[ "$r" = ok ] || fail "'start $A' through a descriptor opened before the stops: $r"
fi
ctl "start $B"
nodes_check "up up up"
touch "$T/hold.stop"
wait $HOLDER
qfs_wait_agree "$G" 30 || fail "replicas did not converge after two nodes came back"
leaders_wait "after two nodes came back"
expect ok create "$MNT/rt/after-quorum-back"
echo "F $MNT/rt/after-quorum-back $(head -c 4096 /dev/zero | tr '\0' x | sha256sum | cut -d' ' -f1)" >>"$J"
py verify "$J"
qfs_wait_agree "$G" 30 || fail "replicas did not converge before the unmount"
qfs_wait_agree 0000000000000001 30 || fail "meta replicas did not converge before the unmount"

# --- 4. eventual reads from the one replica that caught up last
qfs_umount
mount_again -o quorum_timeout="${NQT}ms",reads=eventual
nodes_check "up up up"
qfs_wait_agree "$G" 30 || fail "replicas did not converge after the remount"
qfs_wait_agree 0000000000000001 30 || fail "meta replicas did not converge after the remount"
ctl "stop $A"
ctl "stop $B"
note "reads=eventual: only node $K up"
py verify "$J"
expect ETIMEDOUT mkdir "$MNT/rt/nq-dir2"
ctl "start $A"
ctl "start $B"
qfs_wait_agree "$G" 30 || fail "replicas did not converge at the end"
note "node $K served every acknowledged fact alone ($SECONDS s)"
qfs_umount
[ -z "$PROBLEMS" ] || fail "against the interface contract:$PROBLEMS"
note "PASS ($SECONDS s)"
exit 0
