#!/bin/bash
# tests/integration/unlink_chunks.sh - "fs/ never stores a chunk at or past
# a file's size" (doc/format-items.md), on which the store's LINK_DROP of a
# small file relies: it deletes chunks 0 .. ceil(size / 128 KiB) - 1 by key
# and never looks past them (doc/format-txn.md).  On a real mount:
#  1. files are written through every path that writes chunk items:
#     a truncate down with a write-back pending, a grow then a shrink in one
#     write-back, fallocate KEEP_SIZE past the end, ZERO_RANGE and punch
#     (inside and up to the end), inline -> chunked -> inline -> sparse,
#     small writes (PATCH ops), a sparse file of 16 chunks and one of 20
#     (the walk), a hard link, an open file unlinked and grown (orphan);
#  2. once the replicas agree, unmounted, each node's store is listed (tests/unit/store_tool): every
#     chunk item belongs to a file of the table and lies below its size;
#  3. remounted, every name is removed (the orphan's last close too): the
#     table's item count (.quorumfs/partitions) is back at its value before
#     step 1, and, unmounted again, no chunk item is left on any node.

. "${QFS_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"

qfs_require python3 fallocate truncate
set -o pipefail
qfs_setup
watchdog "${QFS_UNLINK_CHUNKS_TIMEOUT:-120}"
TOOL=$(dirname "$QFS_BIN")/../tests/unit/store_tool
[ -x "$TOOL" ] || fail "store_tool not built at $TOOL"
export LC_ALL=C
C=131072

items() { # items of table t, every partition
	awk '$1 == "table" && $2 == "t" { for (i = 3; i < NF; i++) if ($i == "items") n += $(i + 1) } END { print n + 0 }' \
		"$MNT/.quorumfs/partitions"
}
rnd() { head -c "$1" /dev/urandom; }

mkdir "$MNT/t" || fail "mkdir t"
G=$(qfs_group_of t) || fail "no group for t"
touch "$MNT/t/keep" || fail "touch keep"
BASE=$(items)
[ "$BASE" -gt 0 ] || fail "no item count for table t: $(cat "$MNT/.quorumfs/partitions")"

# --- 1. the writers
python3 - "$MNT/t" "$C" <<'EOF' || fail "workload"
import os, sys
d, C = sys.argv[1], int(sys.argv[2])
P = lambda n: os.path.join(d, n)
rnd = os.urandom

def put(name, data, off=0):
    with open(P(name), "r+b" if os.path.exists(P(name)) else "wb") as f:
        f.seek(off)
        f.write(data)

# truncate down while a write-back is pending (one open, no flush between)
put("shrink", rnd(5 * C))
fd = os.open(P("shrink"), os.O_RDWR)
os.pwrite(fd, rnd(1000), 4 * C + 10)
os.pwrite(fd, rnd(1000), 2 * C + 10)
os.ftruncate(fd, C + C // 2)
os.close(fd)
# grow then shrink in one write-back
put("growshrink", rnd(C))
fd = os.open(P("growshrink"), os.O_RDWR)
os.pwrite(fd, rnd(3000), 10 * C + 5)
os.ftruncate(fd, 200000)
os.pwrite(fd, rnd(100), 150000)
os.close(fd)
# shrink to a chunk past the valid size, grow, small write there (PATCH
# onto nothing), shrink again inside it
put("valid", rnd(3 * C))
fd = os.open(P("valid"), os.O_RDWR)
os.ftruncate(fd, 10000)
os.ftruncate(fd, 3 * C)
os.pwrite(fd, rnd(10), 2 * C + 3000)
os.ftruncate(fd, 2 * C + 2000)
os.close(fd)
# inline -> chunked -> inline -> sparse
put("inl", rnd(100))
put("inl", rnd(300000), 100)
os.truncate(P("inl"), 50)
os.truncate(P("inl"), 1 << 20)
put("inl", rnd(10), (1 << 20) - 5000)
# small writes into stored chunks (PATCH), then a shrink through them
put("patch", rnd(6 * C))
for i in range(6):
    put("patch", rnd(17), i * C + 999)
os.truncate(P("patch"), 3 * C + 500)
# sparse: 16 chunks with data only in the last; 20 chunks (walked)
put("sparse16", rnd(C), 15 * C)
put("sparse20", rnd(5), 19 * C + 7)
put("sparse20", rnd(C), 2 * C)
# hard link
put("linked", rnd(2 * C + 77))
os.link(P("linked"), P("linked2"))
EOF
# fallocate KEEP_SIZE past the end, zero range, punch (util-linux)
rnd $((2 * C + 100)) >"$MNT/t/falloc" || fail "write falloc"
fallocate -n -o $((2 * C)) -l $((10 * C)) "$MNT/t/falloc" || fail "fallocate keep size"
fallocate -n -o $((C / 2)) -l $((20 * C)) "$MNT/t/falloc" || fail "fallocate keep size inside"
rnd $((4 * C)) >"$MNT/t/zero" || fail "write zero"
fallocate -z -o $((3 * C)) -l $((5 * C)) "$MNT/t/zero" || fail "zero range past the end"
fallocate -z -n -o $((C + 10)) -l $((8 * C)) "$MNT/t/zero" || fail "zero range keep size"
truncate -s $((2 * C + 300)) "$MNT/t/zero" || fail "truncate zero"
rnd $((5 * C)) >"$MNT/t/punch" || fail "write punch"
fallocate -p -o $((C + 5)) -l $((2 * C)) "$MNT/t/punch" || fail "punch inside"
fallocate -p -o $((4 * C + 1)) -l $((9 * C)) "$MNT/t/punch" || fail "punch to the end"
truncate -s $((4 * C)) "$MNT/t/punch" || fail "truncate punch"

# sizes by inode number (the key's pk is the inode number)
for f in "$MNT"/t/*; do stat -c '%i %s %n' "$f"; done >"$T/sizes" || fail "stat"

# --- 2. every chunk item below its file's size
check_store() { # check_store NODE FILE_OF_SIZES: chunk items of group G
	"$TOOL" "$DATA/nodes/n$1/store" list "$G" >"$T/keys$1" || fail "store_tool list n$1"
	python3 - "$T/keys$1" "$2" "$C" "$1" <<'EOF'
import sys
keys, sizes, C, node = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
size = {}
for line in open(sizes):
    ino, sz, name = line.split(None, 2)
    size[int(ino)] = (int(sz), name.strip())
bad = n = 0
for line in open(keys):
    k = line.split()[0]
    if len(k) != 52 or k[32:36] != "0063":
        continue  # not a chunk key: prefix (16 + 16 hex), "\0" "c", be64
    n += 1
    ino, no = int(k[16:32], 16), int(k[36:52], 16)
    if ino not in size:
        print("FAIL: node %s: chunk %d of ino %d, a file the table does not have" % (node, no, ino))
        bad += 1
    elif no * C >= size[ino][0]:
        print("FAIL: node %s: chunk %d of %s at or past its size %d" % (node, no, size[ino][1], size[ino][0]))
        bad += 1
print("# node %s: %d chunk items checked" % (node, n))
sys.exit(1 if bad else 0)
EOF
}
qfs_wait_agree "$G" 30 || fail "replicas of t do not agree"
qfs_umount
for n in 1 2 3; do
	check_store "$n" "$T/sizes" >"$T/seen$n" || { cat "$T/seen$n" >&2; fail "a chunk item past its file's size (node $n)"; }
	qgrep "^# node $n: [1-9]" "$T/seen$n" || { cat "$T/seen$n" >&2; fail "no chunk item seen on node $n: the check checks nothing"; }
	tail -n 1 "$T/seen$n"
done

# --- 3. unlink all: nothing left
mount_again
[ "$(wc -c <"$MNT/t/linked")" -eq $((2 * C + 77)) ] || fail "linked reads short after remount"
python3 - "$MNT/t" "$C" <<'EOF' || fail "unlink"
import os, sys
d, C = sys.argv[1], int(sys.argv[2])
P = lambda n: os.path.join(d, n)
os.unlink(P("linked2"))
with open(P("linked"), "rb") as f:
    assert len(f.read()) == 2 * C + 77, "the other name lost bytes"
# orphan: open, unlink, grow past 16 chunks, close
fd = os.open(P("inl"), os.O_RDWR)
os.unlink(P("inl"))
os.pwrite(fd, os.urandom(C), 17 * C)
os.fsync(fd)
os.close(fd)
for n in os.listdir(d):
    if n != "keep":
        os.unlink(P(n))
EOF
now=$(items)
[ "$now" -eq "$BASE" ] || fail "table t has $now items after the unlinks, $BASE before the files"
qfs_wait_agree "$G" 30 || fail "replicas of t do not agree after the unlinks"
qfs_umount
: >"$T/none"
for n in 1 2 3; do
	check_store "$n" "$T/none" >"$T/left$n" || { cat "$T/left$n" >&2; fail "chunk items left on node $n"; }
	qgrep "^# node $n: 0 chunk items" "$T/left$n" || { cat "$T/left$n" >&2; fail "chunks left on node $n"; }
done
echo "PASS: unlink_chunks"
