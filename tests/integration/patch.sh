#!/bin/bash
# tests/integration/patch.sh - small writes to big files are written back as
# PATCH ops of their dirty bytes (doc/fs.md "Write-back of a chunk"):
# - 48 chunk-extending 4 KiB pwrite + fsync calls whose data end in zero
#   bytes stay PATCHes stored as extents (3 x 48 counted in the vlog line
#   of .quorumfs/status; stop 27 rewrote the chunk: 3), and read back
#   right after a remount and a scrub pass that finds 0 mismatches;
# - patch.py: random small writes, zero writes, truncates, punched holes and
#   4 KiB fsync'd appends against an in-memory model, then after a remount
#   the bytes and st_blocks again;
# - a 4 KiB pwrite + fsync into the middle of a chunk of a big file survives
#   kill -9 (fsync's durability), and the bytes around it are intact;
# - what the daemon writes to disk (/proc/PID/io write_bytes: the three
#   replicas' logs; RocksDB has no WAL of its own) for 200 4 KiB pwrite +
#   fsync calls stays below 40 bytes per byte written: three log copies of
#   4 KiB each (about 10 per byte counted in dirtied pages), where writing
#   back the whole 128 KiB chunk each time wrote 135.  A count of bytes, not
#   a timing.

. "$QFS_SRCDIR/tests/lib/common.sh"
qfs_require python3 cmp dd
qfs_setup

# chunk-extending 4 KiB pwrite + fsync calls whose data end in a zero byte
# (random data: 1 write in 256) stay PATCHes stored as extents
# (doc/format-store.md "Value log"), not a rewrite of the whole chunk:
# the vlog line of .quorumfs/status counts every node's extents since the
# mount (this mount has made none before).  The bytes read back right
# after a remount and after a scrub pass, which finds the replicas equal.
ext_count() { awk '/^vlog /{ for (i = 1; i < NF; i++) if ($i == "extents") print $(i + 1) }' "$MNT/.quorumfs/status"; }
head -c $((3 * 131072 + 4096)) /dev/urandom >"$T/z" || fail "random data"
mkdir "$MNT/ztab" && cp "$T/z" "$MNT/ztab/zend" || fail "cp zend"
sync "$MNT/ztab/zend"
python3 - "$MNT/ztab/zend" "$T/z" <<'PYEOF' || fail "pwrite + fsync ending in 0x00"
import os, random, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
want = bytearray(open(sys.argv[2], "rb").read())
rnd = random.Random(5)
for i in range(48):            # appends, and writes across the end
    data = bytearray(os.urandom(4096))
    z = rnd.choice([1, 1, 2, 7])
    data[-z:] = bytes(z)       # the last z bytes zero ...
    data[-z - 1] |= 1          # ... after a nonzero one
    off = len(want) - (0 if i % 3 else 1000)
    os.pwrite(fd, data, off)
    os.fsync(fd)
    want[off:off + len(data)] = data
os.close(fd)
open(sys.argv[2], "wb").write(want)
PYEOF
cmp "$T/z" "$MNT/ztab/zend" || fail "zend differs after its pwrites"
ext=0
for _ in $(seq 60); do # (the keeper sums the nodes' counters every 10 s)
	ext=$(ext_count)
	[ "${ext:-0}" -ge 96 ] && break
	sleep 0.5
done
echo "# 48 fsync'd writes ending in 0x00: ${ext:-none} PATCHes stored as extents on three replicas"
[ "${ext:-0}" -ge 96 ] || fail "writes ending in a zero byte were not stored as extents (extents ${ext:-none}, want >= 96 of 144)"
echo "ok   fsync'd writes ending in 0x00 stay PATCH extents"
qfs_umount
qfs_mount -o scrub_interval=off # (no periodic pass: ours is the one)
qfs_drop_caches 3
cmp "$T/z" "$MNT/ztab/zend" || fail "zend differs after a remount"
S=$MNT/.quorumfs/scrub
printf 'start\n' >"$S" || fail "scrub start refused"
for _ in $(seq 300); do
	awk '$1 == "passes" { exit $2 < 1 }' "$S" && awk '$1 == "state" { exit $2 != "idle" }' "$S" && break
	sleep 0.2
done
awk '$1 == "passes" { exit $2 < 1 }' "$S" && awk '$1 == "state" { exit $2 != "idle" }' "$S" ||
	{ cat "$S" >&2; fail "no scrub pass ended in 60 s"; }
awk '$1 == "mismatches" { exit $2 != 0 }' "$S" || { cat "$S" >&2; fail "the scrub finds the replicas differ"; }
cmp "$T/z" "$MNT/ztab/zend" || fail "zend differs after a scrub pass"
echo "ok   zend after a remount and a scrub pass"

PY="$QFS_SRCDIR/tests/integration/patch.py"
SEED=${QFS_SEED:-$RANDOM}
echo "# seed $SEED (QFS_SEED=$SEED reproduces the random work)"
python3 "$PY" "$MNT" run "$SEED" || fail "patch.py run: some checks failed (see the FAIL lines above)"

# durability of an fsync'd patch under kill -9
head -c $((3 * 131072 + 500)) /dev/urandom >"$T/big" || fail "random data"
cp "$T/big" "$MNT/patch/big" || fail "cp big"
head -c 4096 /dev/urandom >"$T/p4k" || fail "random data"
python3 - "$MNT/patch/big" "$T/p4k" <<'EOF' || fail "pwrite + fsync of 4 KiB"
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
data = open(sys.argv[2], "rb").read()
os.pwrite(fd, data, 131072 + 5000)
os.fsync(fd)
EOF
dd if="$T/p4k" of="$T/big" bs=1 seek=$((131072 + 5000)) conv=notrunc status=none || fail "model of big"
qfs_kill9
qfs_mount
cmp "$MNT/patch/big" "$T/big" || fail "an fsync'd 4 KiB write into a chunk is not what the mount reads after kill -9"
echo "ok   fsync'd patch survives kill -9"

# bytes written to disk per byte of 4 KiB fsync'd writes into one chunk
io() { awk -v k="$1" '$1 == k ":" { print $2 }' "/proc/$QFS_PID/io"; }
head -c $((2 * 131072)) /dev/urandom >"$MNT/patch/amp" || fail "random data"
sync "$MNT/patch/amp"
w0=$(io write_bytes)
python3 - "$MNT/patch/amp" <<'EOF' || fail "200 pwrite + fsync"
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
for i in range(200):
    os.pwrite(fd, os.urandom(4096), 4096 * (i % 30) + 131072)
    os.fsync(fd)
os.close(fd)
EOF
w1=$(io write_bytes)
per=$(((w1 - w0) / (200 * 4096)))
echo "# daemon write_bytes $((w1 - w0)) for $((200 * 4096)) bytes of 4 KiB fsync'd writes: $per per byte"
[ "$per" -lt 40 ] || fail "4 KiB fsync'd writes cost $per bytes written per byte (expected < 40: only the dirty bytes are logged)"
echo "ok   4 KiB fsync'd writes: $per bytes written per byte"

qfs_umount
qfs_mount
python3 "$PY" "$MNT" verify || fail "patch.py verify: some checks failed after the remount"
cmp "$MNT/patch/big" "$T/big" || fail "big after remount"
qfs_umount
