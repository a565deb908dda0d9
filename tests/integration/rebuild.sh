#!/bin/bash
# tests/integration/rebuild.sh - a replica whose disk was lost is rebuilt
# from a snapshot of the leader's applied state (doc/rnode.md section 6,
# doc/cell.md "Archive").
#
# 1. Mount with fast archiving (seal_age 1 s, seal_size 64 KiB, archive
#    every 200 ms) so that WAL segments are sealed, archived and released
#    quickly; write 300 files of known content into table rb (write, fsync,
#    close; each journaled on the host after close returned).  Wait
#    (bounded) until the table's group is archived past the writes and the
#    start of its log (segment 0000000000000001.wal) is released on every
#    node, so that a new replica can no longer catch up from the log.
# 2. Stop node 3 through MNT/.quorumfs/nodes, rm -rf DATA/nodes/n3 (a lost
#    disk), write 100 more files with two nodes, start node 3.  Its
#    directory must be recreated, every replica of the table's group and of
#    the meta group must agree (bounded, 30 s; the meta group's log usually
#    still starts at LSN 1, since its few entries share one segment with its
#    applied entry, so node 3 must catch up there from the retained log
#    although the leader's record says node 3 acknowledged it), the daemon must log
#    "rnode snapshot installed group=G node=3", and node 3's new log must
#    not start at LSN 1.
# 3. Remount with -o reads=eventual, stop nodes 1 and 2: node 3 alone
#    serves every journaled file byte for byte and the table's listing
#    (exactly the journaled names); start them again, unmount cleanly.
# Timing checks are bounds against hangs only.

. "${QFS_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"

qfs_require python3 awk timeout
set -o pipefail
OPTS=seal_age=1s,seal_size=64K,archive_interval=200ms
qfs_setup -o "$OPTS"
echo "$QFS_PID" >"$T/daemon.pid"
watchdog "${QFS_REBUILD_TIMEOUT:-150}"

META=0000000000000001
ARCH=$MNT/.quorumfs/archive
J=$T/journal

cat >"$T/rb.py" <<'EOF'
# helpers for rebuild.sh: python3 rb.py CMD ...
import hashlib, os, random, sys

def die(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)

def write(tdir, journal, first, last):
    """Create tdir/fFIRST..fLAST (seeded content, 0..12000 bytes): write,
    fsync, close; then append 'F path sha256' to the journal."""
    with open(journal, "a") as j:
        for i in range(int(first), int(last) + 1):
            rnd = random.Random(f"rebuild-{i}")
            data = rnd.randbytes(rnd.choice([0, 1, 700, 4096, rnd.randrange(12000)]))
            p = os.path.join(tdir, f"f{i}")
            try:
                fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                try:
                    mv = memoryview(data)
                    while mv:
                        mv = mv[os.write(fd, mv):]
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError as e:
                die(f"create+fsync {p}: {e}")
            j.write(f"F {p} {hashlib.sha256(data).hexdigest()}\n")
            j.flush()

def verify(tdir, journal):
    """Every journaled file has its content; the table lists exactly the
    journaled names."""
    want = {}
    for line in open(journal):
        k, p, h = line.split()
        want[p] = h
    if not want:
        die("empty journal")
    for p, h in sorted(want.items()):
        try:
            with open(p, "rb") as f:
                got = f.read()
        except OSError as e:
            die(f"read {p} (acknowledged): {e}")
        if hashlib.sha256(got).hexdigest() != h:
            die(f"{p}: content differs from the acknowledged one ({len(got)} bytes read)")
    try:
        names = set(os.listdir(tdir))
    except OSError as e:
        die(f"listdir {tdir}: {e}")
    wnames = {os.path.basename(p) for p in want}
    if names != wnames:
        die(f"listing of {tdir}: missing {sorted(wnames - names)[:5]}, extra {sorted(names - wnames)[:5]}")
    print(f"# verified {len(want)} files and the listing")

if __name__ == "__main__":
    {"write": write, "verify": verify}[sys.argv[1]](*sys.argv[2:])
EOF
py() { timeout -k 3 60 python3 "$T/rb.py" "$@" || fail "python step '$1' failed or hung (see above)"; }
status_of() { grep "^group $1 " "$MNT/.quorumfs/status"; }
ctl() { qfs_node_ctl "$1" || fail "'$1' > .quorumfs/nodes failed"; }
nodes_check() { # nodes_check "up up down": the nodes file says exactly that
	local got
	got=$(awk '$1 == "node" { for (i = 3; i < NF; i++) if ($i == "state") s = s (s ? " " : "") $(i + 1) } END { print s }' \
		"$MNT/.quorumfs/nodes")
	[ "$got" = "$1" ] || { cat "$MNT/.quorumfs/nodes" >&2; fail "nodes file says '$got', want '$1'"; }
}
# arch_field GROUP FIELD: a field of the group's line in .quorumfs/archive
arch_field() {
	awk -v g="$1" -v f="$2" '$1 == "partition" && $2 == g { for (i = 3; i < NF; i++) if ($i == f) print $(i + 1) }' "$ARCH"
}

# --- 1. write, archive, release
grep -q '^replicas 3$' "$MNT/.quorumfs/status" ||
	{ cat "$MNT/.quorumfs/status" >&2; fail "the default mount does not say 'replicas 3'"; }
mkdir "$MNT/rb" || fail "mkdir table rb"
G=$(qfs_group_of rb) || fail "no group for table rb"
qfs_wait_agree "$G" 30 || fail "the replicas of the new table's group do not agree within 30 s"
t0=$SECONDS
py write "$MNT/rb" "$J" 1 300
note "300 files written in $((SECONDS - t0)) s"
# the leader's applied LSN (30 s at most: a leader re-elected after a
# missed heartbeat on a loaded machine, or none for a moment, applies what
# committed a moment after its election; one reading could see neither)
for _ in $(seq 150); do
	L=$(qfs_leader_of "$G")
	applied=$(awk -v g="$G" -v l="$L" '$1 == "group" && $2 == g && $3 == "replica" && $5 == l {
		for (i = 6; i < NF; i++) if ($i == "applied") print $(i + 1) }' "$MNT/.quorumfs/status")
	[ -n "$applied" ] && [ "$applied" -gt 300 ] && break
	sleep 0.2
done
[ -n "$applied" ] && [ "$applied" -gt 300 ] ||
	{ status_of "$G" >&2; fail "leader '$L' applied '$applied' entries of group $G after 300 creates, want > 300"; }
released=
for _ in $(seq 150); do
	a=$(arch_field "$G" archived_lsn)
	if [ -n "$a" ] && [ "$a" -ge "$applied" ] && seg1_released "$G"; then
		released=1
		break
	fi
	sleep 0.2
done
[ -n "$released" ] || {
	cat "$ARCH" >&2
	for n in 1 2 3; do echo "n$n: $(ls "$DATA/nodes/n$n/wal/$G" | head -3 | tr '\n' ' ')" >&2; done
	fail "group $G not archived up to LSN $applied with segment 1 released on every node within 30 s"
}
note "archived to $(arch_field "$G" archived_lsn); first segments n1 $(first_seg 1 "$G") n2 $(first_seg 2 "$G") n3 $(first_seg 3 "$G") ($SECONDS s)"

# --- 2. node 3 loses its disk
ctl "stop 3"
nodes_check "up up down"
rm -rf "$DATA/nodes/n3" || fail "rm -rf $DATA/nodes/n3"
[ ! -e "$DATA/nodes/n3" ] || fail "$DATA/nodes/n3 still exists after rm -rf"
py write "$MNT/rb" "$J" 301 400
# (30 s at most: a re-election after a missed heartbeat on a loaded
# machine leaves the group without a leader for a moment)
for _ in $(seq 150); do
	grep -Eq "^group $G leader [12] ballot [0-9]+ replicas 3 up 2( |$)" "$MNT/.quorumfs/status" && break
	sleep 0.2
done
grep -Eq "^group $G leader [12] ballot [0-9]+ replicas 3 up 2( |$)" "$MNT/.quorumfs/status" ||
	{ status_of "$G" >&2; fail "group $G: want a leader among nodes 1, 2 and 'up 2' with node 3 stopped"; }
ctl "start 3"
nodes_check "up up up"
[ -f "$DATA/nodes/n3/FORMAT" ] || fail "node 3 started but $DATA/nodes/n3/FORMAT was not recreated"
t0=$SECONDS
qfs_wait_agree "$G" 30 || fail "node 3 was not rebuilt: the replicas of group $G do not agree 30 s after its start"
qfs_wait_agree "$META" 30 || fail "node 3 was not rebuilt: the replicas of the meta group do not agree 30 s after its start"
note "node 3 rebuilt in $((SECONDS - t0)) s"
status_of "$G"
# the line follows the store's install by a moment: allow 30 s (5 s was
# short for a loaded machine)
for _ in $(seq 300); do
	grep -Eq "rnode snapshot installed group=$G node=3 from=[12] lsn=[0-9]+ " "$T/daemon.out" && break
	sleep 0.1
done
grep -E "rnode snapshot installed group=$G node=3 from=[12] lsn=[0-9]+ " "$T/daemon.out" ||
	{ grep 'rnode snapshot' "$T/daemon.out" >&2; fail "no 'rnode snapshot installed group=$G node=3 from=1|2' in the daemon's log"; }
grep -E "rnode snapshot installed group=$META node=3 " "$T/daemon.out" || note "the meta group caught up from its log"
s=$(first_seg 3 "$G")
{ [ "$s" = none ] || [ $((16#$s)) -gt 1 ]; } ||
	{ ls "$DATA/nodes/n3/wal/$G" >&2; fail "node 3's rebuilt log of $G starts at LSN 1: it replayed the log, not a snapshot"; }

# --- 3. node 3 alone holds everything
qfs_umount
mount_again -o "$OPTS",reads=eventual
nodes_check "up up up"
qfs_wait_agree "$G" 30 || fail "replicas of $G did not agree after the remount"
qfs_wait_agree "$META" 30 || fail "replicas of the meta group did not agree after the remount"
ctl "stop 1"
ctl "stop 2"
nodes_check "down down up"
py verify "$MNT/rb" "$J"
note "node 3 alone served all 400 files ($SECONDS s)"
ctl "start 1"
ctl "start 2"
nodes_check "up up up"
qfs_wait_agree "$G" 30 || fail "replicas of $G did not agree after nodes 1 and 2 came back"
qfs_umount
note "PASS ($SECONDS s)"
exit 0
