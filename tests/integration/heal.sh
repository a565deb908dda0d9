#!/bin/bash
# tests/integration/heal.sh - a replica that cannot be trusted heals by itself
# (doc/cell.md "Self-healing").
#
# 1. Mount with fast archiving (seal_age 1 s, seal_size 64 KiB, archive
#    every 200 ms), write 200 files into table hx and wait (bounded) until
#    the start of the group's log is archived and released on every node:
#    a replica that loses its log can then only be caught up by a snapshot.
# 2. Remount with the defaults, write a victim file whose content is a
#    marker run and 40 later files (all in the newest WAL segment), unmount
#    and flip one byte of the marker run in node 1's WAL (a corrupt record
#    in the middle of the log, as durability.sh does).
# 3. On the remount node 1's replica loads stopped (corrupt).  Without any
#    operator action it must be rebuilt from the two healthy replicas: within
#    a bound (60 s) every replica of the group says health ok with the same
#    applied LSN; the daemon logs a "cell replica rebuild" line per attempt
#    that says what it does and what an operator can do, and "rnode snapshot
#    installed group=G node=1"; a writer keeps writing meanwhile; and no
#    snapshot is sent in a loop: at most 4 "rnode snapshot start" lines for
#    the group, counted 5 s after it healed; the archive goes on past node
#    1's rebuilt log (the missing records come from another replica: "archive
#    gap filled"), so a restore as of before the corruption gives every file.
# 4. Remount: node 1's replica loads healthy (no rebuild again) and every
#    file reads back byte for byte.
# 5. A corrupt record that only the archiver reads: with the archive away,
#    100 files are written in 64 KiB segments; a byte is flipped in the
#    middle of node 1's oldest unarchived sealed segment while mounted; the
#    archive is put back: the archiver finds the segment
#    corrupt, node 1's replica is stopped and rebuilt, the archive gap is
#    filled from another replica, and every file reads back.
# 6. A corrupt store (node 2's RocksDB manifest garbled while unmounted):
#    node 2 cannot open; it is moved aside (n2.broken-TIME) and rebuilt
#    from the others ("cell node rebuild node=2"), every replica agrees and
#    every file reads back.
# Timing checks are bounds against hangs only.

. "${QFS_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"

qfs_require python3 awk timeout
set -o pipefail
OPTS=seal_age=1s,seal_size=64K,archive_interval=200ms
qfs_setup -o "$OPTS"
echo "$QFS_PID" >"$T/daemon.pid"
watchdog "${QFS_HEAL_TIMEOUT:-150}"
J=$T/journal

cat >"$T/hx.py" <<'EOF2'
# helpers for heal.sh: python3 hx.py CMD ...
import hashlib, os, random, sys

def die(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)

def put(p, data, journal):
    with open(p, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    with open(journal, "a") as j:
        j.write(f"F {p} {hashlib.sha256(data).hexdigest()}\n")

def setup(tdir, marker_file, journal):
    rnd = random.Random()
    marker = b"QFS-HEAL-" + rnd.randbytes(8).hex().encode() + b"-"
    put(os.path.join(tdir, "victim"), (marker * (8192 // len(marker) + 1))[:8192], journal)
    for i in range(40):
        put(os.path.join(tdir, f"later{i}"), rnd.randbytes(3000), journal)
    with open(marker_file, "wb") as f:
        f.write(marker)

def flip(waldir, marker_file):
    marker = open(marker_file, "rb").read()
    for s in sorted(x for x in os.listdir(waldir) if x.endswith(".wal")):
        p = os.path.join(waldir, s)
        b = open(p, "rb").read()
        i = b.find(marker)
        if i < 0:
            continue
        pos = i + 4096
        if len(b) - pos < 40 * 3000:
            die(f"only {len(b) - pos} bytes after the marker in {p}; want later records")
        with open(p, "r+b") as f:
            f.seek(pos)
            f.write(bytes([b[pos] ^ 0x5a]))
            os.fsync(f.fileno())
        print(f"{s} {pos}")
        return
    die(f"marker not found in {waldir}")

def writer(tdir, journal, n, prefix="w"):
    rnd = random.Random()
    for i in range(int(n)):
        put(os.path.join(tdir, f"{prefix}{i}"), rnd.randbytes(rnd.randrange(1, 20000)), journal)

def verify(journal):
    n = 0
    for line in open(journal):
        _, p, h = line.split()
        with open(p, "rb") as f:
            if hashlib.sha256(f.read()).hexdigest() != h:
                die(f"{p}: content differs")
        n += 1
    print(f"# verified {n} files")

if __name__ == "__main__":
    {"setup": setup, "flip": flip, "writer": writer, "verify": verify}[sys.argv[1]](*sys.argv[2:])
EOF2
py() { timeout -k 3 90 python3 "$T/hx.py" "$@" || fail "python step '$1' failed or hung (see above)"; }
# --- 1. a log released at its start on every node
mkdir "$MNT/hx" || fail "mkdir table hx"
G=$(qfs_group_of hx) || fail "no group for table hx"
py writer "$MNT/hx" "$J" 200 a
released=
for _ in $(seq 150); do
	seg1_released "$G" && { released=1; break; }
	sleep 0.2
done
[ -n "$released" ] || { cat "$MNT/.quorumfs/archive" >&2; fail "segment 1 of $G not released on every node within 30 s"; }
note "log of $G released up to $(first_seg 1 "$G") on node 1"
qfs_umount

# --- 2. a corrupt record in node 1's replica
mount_again
py setup "$MNT/hx" "$T/marker" "$J"
cp "$J" "$T/journal.t2"
sleep 1
T2=$(date +%s.%N)
qfs_umount
where=$(py flip "$DATA/nodes/n1/wal/$G" "$T/marker") || fail "flip"
note "flipped a byte in node 1's replica of group $G: $where"
log_mark

# --- 3. remount: node 1's replica is rebuilt by itself
mount_again
t0=$SECONDS
grep "^group $G replica node 1 " "$MNT/.quorumfs/status"
py writer "$MNT/hx" "$J" 60 &
wpid=$!
qfs_wait_agree "$G" 60 || { log_since | grep -E 'cell replica|snapshot|corrupt' >&2; fail "node 1's replica of $G did not heal within 60 s"; }
wait $wpid || fail "writes to table hx failed while node 1's replica healed"
note "healed in $((SECONDS - t0)) s"
log_since | grep -E "cell replica rebuild .*group=$G node=1 " >"$T/rebuild.lines" ||
	{ log_since | tail -n 40 >&2; fail "no 'cell replica rebuild ... group=$G node=1' line in the log"; }
cat "$T/rebuild.lines"
grep -q 'operator=' "$T/rebuild.lines" || fail "the rebuild line does not say what an operator can do"
# the replica's refusal is a key=value event too (its err= value was bare
# words: "err=Corrupt data (checksum or format error) (this replica only...")
log_since | grep -E "rnode group stopped at open group=$G node=1 " >"$T/stopped.lines" ||
	fail "no 'rnode group stopped at open group=$G node=1' line"
grep -qE ' err="[^"]*" scope=replica ' "$T/stopped.lines" || fail "unquoted err= in: $(cat "$T/stopped.lines")"
for _ in $(seq 300); do # 30 s at most (was 5: short for a loaded machine)
	log_since | grep -Eq "rnode snapshot installed group=$G node=1 " && break
	sleep 0.1
done
log_since | grep -E "rnode snapshot installed group=$G node=1 " ||
	{ log_since | grep -E 'snapshot|cell replica' >&2; fail "node 1 was not caught up by a snapshot"; }
py verify "$J"
# no snapshot loop: watch 5 more seconds, then count
sleep 5
nsnap=$(log_since | grep -c "rnode snapshot start group=$G ") || true
note "snapshot lines for $G: $nsnap"
[ "$nsnap" -le 4 ] || { log_since | grep "rnode snapshot start group=$G " | tail >&2; fail "$nsnap 'snapshot start' lines for group $G: a resend loop"; }
nreb=$(wc -l <"$T/rebuild.lines")
[ "$nreb" -le 3 ] || fail "$nreb rebuild attempts for one corrupt replica"

# the archive goes on: node 1's rebuilt log starts after the snapshot, and
# the records before it come from another replica
for _ in $(seq 100); do
	log_since | qgrep "archive gap filled from another replica group=$G " && break
	sleep 0.2
done
log_since | grep "archive gap filled from another replica group=$G " ||
	{ cat "$MNT/.quorumfs/archive" >&2; fail "the archive of $G did not get past node 1's rebuilt log within 20 s"; }
grep "^partition $G " "$MNT/.quorumfs/archive"
rm -rf "$T/r"
"$QFS_BIN" restore --data "$DATA" --table hx --time "@$T2" --to "$T/r" 2>"$T/rerr" ||
	{ cat "$T/rerr" >&2; fail "restore of hx as of before the corruption failed"; }
sed "s|$MNT/hx/|$T/r/|" "$T/journal.t2" >"$T/journal.r"
py verify "$T/journal.r"

# --- 4. it stays healed
qfs_umount
log_mark
mount_again
qfs_wait_agree "$G" 30 || fail "replicas of $G do not agree after the remount"
! log_since | qgrep "cell replica rebuild .*group=$G " || fail "node 1's replica was rebuilt again after a clean remount"
py verify "$J"

# --- 5. a corrupt record only the archiver reads (an old sealed segment)
qfs_umount
mount_again -o seal_size=64K
for _ in $(seq 100); do # the archiver's first pass (manifest loaded)
	grep -q "^partition $G .* state ok " "$MNT/.quorumfs/archive" && break
	sleep 0.1
done
sleep 1.5
arch=$(awk -v g="$G" '$1 == "partition" && $2 == g { print $4 }' "$MNT/.quorumfs/archive")
[ -n "$arch" ] || { cat "$MNT/.quorumfs/archive" >&2; fail "no partition line for $G"; }
# the store away while mounted (at mount the default archive directory is
# created again)
mv "$DATA/archive" "$DATA/archive.away" || fail "mv archive away"
py writer "$MNT/hx" "$J" 100 c
# the oldest segment above what was archived, sealed (not the newest): far
# below the applied LSN, so that nothing but the archiver reads it again
# (corruption found at open is part 3's case: open checks every record)
segs=$(ls "$DATA/nodes/n1/wal/$G" | grep -E '^[0-9a-f]{16}\.wal$' | sort)
seg=
for f in $(echo "$segs" | head -n -1); do
	[ $((16#${f%.wal})) -gt "$arch" ] && { seg=$f; break; }
done
[ -n "$seg" ] || fail "no sealed segment of node 1 above the archived LSN $arch: $segs"
size=$(stat -c %s "$DATA/nodes/n1/wal/$G/$seg")
log_mark
python3 -c '
import os, sys
p, pos = sys.argv[1], int(sys.argv[2])
with open(p, "r+b") as f:
    f.seek(pos); b = f.read(1); f.seek(pos); f.write(bytes([b[0] ^ 0x5a])); os.fsync(f.fileno())
' "$DATA/nodes/n1/wal/$G/$seg" $((size / 2)) || fail "flip a byte in $seg"
note "flipped a byte in the middle of node 1's sealed segment $seg ($size bytes) while mounted"
mv "$DATA/archive.away" "$DATA/archive" || fail "mv archive back"
for _ in $(seq 150); do
	log_since | qgrep "archive gap filled from another replica group=$G " && break
	sleep 0.2
done
for want in "archive found node 1's log corrupt group=$G " "cell replica rebuild group=$G node=1 " \
	"archive gap filled from another replica group=$G "; do
	log_since | grep -F "$want" ||
		{ log_since | grep -E 'archive|cell replica' | tail -n 20 >&2; fail "no '$want' line within 30 s"; }
done
qfs_wait_agree "$G" 60 || fail "node 1's replica of $G did not heal after the archiver found it corrupt"
py verify "$J"

# --- 6. a corrupt store: the whole node is rebuilt
qfs_umount
man=$(ls "$DATA"/nodes/n2/store/MANIFEST-* | head -n 1)
python3 -c '
import os, sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
for i in range(10, min(len(b), 200)):
    b[i] ^= 0x55
with open(p, "r+b") as f:
    f.write(b); os.fsync(f.fileno())
' "$man" || fail "garble $man"
note "garbled node 2's RocksDB manifest $man"
log_mark
mount_again
for _ in $(seq 150); do
	log_since | qgrep "cell node rebuild node=2 " && break
	sleep 0.2
done
log_since | grep "cell node rebuild node=2 " || { log_since | grep -E 'cell|store' | tail -n 20 >&2; fail "node 2 with a corrupt store was not rebuilt within 30 s"; }
qfs_wait_agree "$G" 60 || fail "the replicas of $G do not agree after node 2's rebuild"
qfs_wait_agree 0000000000000001 60 || fail "the replicas of the meta group do not agree after node 2's rebuild"
ls -d "$DATA"/nodes/n2.broken-* >/dev/null 2>&1 || fail "node 2's corrupt directory was not kept aside as n2.broken-*"
py verify "$J"
qfs_umount
note "PASS ($SECONDS s)"
exit 0
