#!/bin/bash
# tests/integration/chunkcrc.sh - chunk reads checked by the store's own
# CRC32C instead of RocksDB's blob check (doc/format-store.md "Chunk
# checksums"):
#  1. a 24 MiB file of random data (more than the memtables hold, so most
#     of its chunks are in blob files) reads back exactly after a remount,
#     and no read needed the fallback (no "checksum mismatch" log line);
#  2. with a byte flipped every 64 KiB in every blob file of the three
#     replicas (every chunk stored there is damaged on every replica),
#     reading the file chunk by chunk never returns bytes other than the
#     ones written: each chunk either reads back exactly (still in a
#     memtable, replayed from the log) or fails with EIO, at least one
#     fails, and the log names the corruption.
# Mounted with -o vlog=off: the chunks must go to blob files (the value
# log's own checks are tests/integration/vlog.sh's).
. "${QFS_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"
qfs_require python3 cmp
set -o pipefail
qfs_setup -o vlog=off
echo "$QFS_PID" >"$T/daemon.pid"
watchdog 110
mkdir "$MNT/t" || fail "mkdir table"

# --- 1. write, remount, read back through the checked fast path
head -c $((24 << 20)) /dev/urandom >"$T/src" || fail "random source"
dd if="$T/src" of="$MNT/t/f" bs=1M conv=fsync status=none || fail "dd into the mount"
qfs_umount
qfs_mount -o vlog=off
echo "$QFS_PID" >"$T/daemon.pid"
log_mark
qfs_drop_caches 3
cmp "$T/src" "$MNT/t/f" || fail "the file differs after a remount"
if log_since | qgrep -i "checksum mismatch"; then
	fail "a chunk read fell back to RocksDB's check: $(log_since | grep -i -m1 'checksum mismatch')"
fi
qfs_umount

# --- 2. damage every blob file of every replica
n=0
for b in "$DATA"/nodes/n*/store/*.blob; do
	[ -f "$b" ] || continue
	python3 "$QFS_SRCDIR/tests/lib/chunkread.py" --flip "$b" || fail "flipping bytes in $b"
	n=$((n + 1))
done
[ "$n" -ge 3 ] || fail "expected blob files on the three replicas, found $n"
qfs_mount -o vlog=off
echo "$QFS_PID" >"$T/daemon.pid"
log_mark
qfs_drop_caches 3
out=$(python3 "$QFS_SRCDIR/tests/lib/chunkread.py" "$MNT/t/f" "$T/src") || fail "reading the damaged file: $out"
note "$out"
[ "${out##* eio }" -ge 1 ] || fail "no read failed with every blob file damaged: $out"
log_since | qgrep -i "corrupt" || fail "no log line names the corruption"
exit 0
