#!/bin/bash
# tests/integration/fallocate.sh - fallocate(1)/(2) and honest numbers
# (st_blocks/du of sparse and punched files, directory sizes, df -i), also
# after an unmount and a remount.  Most checks and every errno live in
# fallocate.py; this script adds the command-line tools users run.

. "$QFS_SRCDIR/tests/lib/common.sh"
export LC_ALL=C
qfs_require python3 fallocate du df cmp
# split_bytes=0: the 1 GiB sparse file below would split falloc_tools by
# size (a sparse file counts as its size) at a time of the split thread's
# choosing, and df -i counts only a split table's first partition (doc/fs.md
# "df -i"): a split between two df -i reads made them differ (CI, loaded)
qfs_setup -o split_bytes=0

PY="$QFS_SRCDIR/tests/integration/fallocate.py"
python3 "$PY" "$MNT" main || fail "fallocate.py main: some checks failed (see the FAIL lines above)"

D=$MNT/falloc_tools
mkdir "$D" || fail "mkdir $D"

# fallocate -l: the size grows, nothing is reserved
fallocate -l 3M "$D/l" || fail "fallocate -l 3M"
[ "$(stat -c %s "$D/l")" = 3145728 ] || fail "fallocate -l 3M: size $(stat -c %s "$D/l")"
[ "$(du -k "$D/l" | cut -f1)" = 0 ] || fail "fallocate -l: du $(du -k "$D/l" | cut -f1) KiB, expected 0 (no preallocation)"
# fallocate -n: the size stays
fallocate -n -o 0 -l 10M "$D/l" || fail "fallocate -n"
[ "$(stat -c %s "$D/l")" = 3145728 ] || fail "fallocate -n changed the size to $(stat -c %s "$D/l")"
echo "ok   fallocate -l / -n"

# fallocate -p: zeros, and du gives the space back
head -c $((4 << 20)) /dev/urandom >"$T/rand" || fail "random data"
cp "$T/rand" "$D/p" || fail "cp into the mount"
du0=$(du -k "$D/p" | cut -f1)
[ "$du0" -ge 4090 ] && [ "$du0" -le 4100 ] || fail "du of a 4 MiB random file: $du0 KiB"
fallocate -p -o 1M -l 2M "$D/p" || fail "fallocate -p"
du1=$(du -k "$D/p" | cut -f1)
[ $((du0 - du1)) = 2048 ] || fail "fallocate -p of 2 MiB: du $du0 -> $du1 KiB, expected 2048 KiB less"
[ "$(stat -c %s "$D/p")" = $((4 << 20)) ] || fail "fallocate -p changed the size"
cmp -n $((1 << 20)) "$D/p" "$T/rand" || fail "bytes before the hole changed"
cmp -n $((2 << 20)) -i $((1 << 20)):0 "$D/p" /dev/zero || fail "the hole does not read as zeros"
cmp -i $((3 << 20)):$((3 << 20)) "$D/p" "$T/rand" || fail "bytes after the hole changed"
echo "ok   fallocate -p: zeros, du $du0 -> $du1 KiB"

# modes quorumfs does not do: EOPNOTSUPP, nothing changed
for opt in -c -i; do
	out=$(fallocate $opt -o 0 -l 128K "$D/p" 2>&1) && fail "fallocate $opt succeeded"
	case $out in
	*"Operation not supported"*) ;;
	*) fail "fallocate $opt: '$out', expected 'Operation not supported'" ;;
	esac
done
[ "$(du -k "$D/p" | cut -f1)" = "$du1" ] || fail "a refused fallocate changed du"
echo "ok   fallocate -c/-i: Operation not supported"

# fallocate -z (ZERO_RANGE): zeros, the size kept inside the file
fallocate -z -o 0 -l 128K "$D/p" || fail "fallocate -z"
cmp -n $((128 << 10)) "$D/p" /dev/zero || fail "fallocate -z: the range does not read as zeros"
cmp -i $((3 << 20)):$((3 << 20)) "$D/p" "$T/rand" || fail "fallocate -z changed bytes past its range"
[ "$(stat -c %s "$D/p")" = $((4 << 20)) ] || fail "fallocate -z changed the size"
echo "ok   fallocate -z"

# fallocate -d (dig holes): zero runs become holes, the bytes stay.  Whole
# zero chunks are never stored in the first place and a chunk keeps its
# leading zeros, so du may not shrink here, but it must not grow.
{ head -c 1100K /dev/urandom; head -c 2M /dev/zero; head -c 1M /dev/urandom; } >"$T/dig" || fail "dig data"
cp "$T/dig" "$D/dig" || fail "cp dig"
d0=$(du -k "$D/dig" | cut -f1)
fallocate -d "$D/dig" || fail "fallocate -d"
d1=$(du -k "$D/dig" | cut -f1)
cmp "$D/dig" "$T/dig" || fail "fallocate -d changed the bytes"
[ "$d1" -le "$d0" ] && [ "$d1" -ge 2124 ] || fail "fallocate -d: du $d0 -> $d1 KiB, expected 2124..$d0"
echo "ok   fallocate -d: du $d0 -> $d1 KiB, bytes kept"

# du of a sparse file and of a table
truncate -s 1G "$D/sparse" || fail "truncate -s 1G"
dd if=/dev/urandom of="$D/sparse" bs=4096 count=1 seek=$((256 << 8)) conv=notrunc status=none || fail "dd"
k=$(du -k "$D/sparse" | cut -f1)
[ "$k" = 4 ] || fail "du of a 1 GiB file with one 4 KiB block: $k KiB, expected 4"
[ "$(du -k --apparent-size "$D/sparse" | cut -f1)" = 1048576 ] || fail "du --apparent-size of the sparse file"
echo "ok   du of a 1 GiB sparse file with one block: $k KiB"

# df -i follows creates and removes (IUsed, the third column)
iused() { df -P -i "$MNT" | awk 'NR == 2 { print $3 }'; }
u0=$(iused)
mkdir "$D/many" && for i in $(seq 20); do : >"$D/many/$i"; done
u1=$(iused)
[ $((u1 - u0)) = 21 ] || fail "df -i: $u0 -> $u1 inodes used after 21 creates"
rm -r "$D/many"
u2=$(iused)
[ "$u2" = "$u0" ] || fail "df -i: $u2 inodes used after removing them, was $u0"
echo "ok   df -i: $u0 -> $u1 -> $u2"

# st_blocks asked while a file's bytes are buffered is an estimate (every
# byte written counts); its write-back stores the zeros as holes, and the
# kernel must not keep the estimate (it caches attributes up to the
# timeout): du right after the close says 4 KiB, not 1028
python3 - "$D/zeros" <<'PY' || fail "st_blocks of a file with 1 MiB of zeros written, after its close (above)"
import os, sys
p = sys.argv[1]
fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
os.write(fd, b"\0" * (1 << 20))
os.write(fd, os.urandom(4096))
during = os.fstat(fd).st_blocks
os.close(fd)
after = os.stat(p).st_blocks
if after != 8:
    print(f"FAIL: st_blocks {after} after the close (asked while buffered: {during}), want 8")
    sys.exit(1)
PY
[ "$(du -k "$D/zeros" | cut -f1)" = 4 ] || fail "du of a file with 1 MiB of zeros written: $(du -k "$D/zeros" | cut -f1) KiB, want 4"
echo "ok   st_blocks after the write-back of zeros: the kernel drops the estimate"

blocks_p=$(stat -c %b "$D/p")
u_end=$(iused)
qfs_umount
qfs_mount -o split_bytes=0
python3 "$PY" "$MNT" verify || fail "fallocate.py verify: some checks failed after the remount"
[ "$(stat -c %b "$D/p")" = "$blocks_p" ] || fail "st_blocks of the punched file after remount: $(stat -c %b "$D/p"), was $blocks_p"
cmp -n $((2 << 20)) -i $((1 << 20)):0 "$D/p" /dev/zero || fail "the hole after remount"
[ "$(du -k "$D/sparse" | cut -f1)" = 4 ] || fail "du of the sparse file after remount"
[ "$(iused)" = "$u_end" ] || fail "df -i after remount: $(iused) inodes used, $u_end before"
echo "ok   after remount: holes, du and df -i kept"
qfs_umount
