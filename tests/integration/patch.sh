#!/bin/bash
# tests/integration/patch.sh - small writes to big files are written back as
# PATCH ops of their dirty bytes (doc/fs.md "Write-back of a chunk"):
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
