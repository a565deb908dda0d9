#!/bin/bash
# tests/bench/bench.sh - quorumfs against the local filesystem underneath it.
#
# Usage (as root, from a build directory or with QFS_BIN set):
#   tests/bench/bench.sh [-n SMALL_FILES] [-s SMALL_KIB] [-b BIG_MIB]
#     -n  number of small files (default 2000)
#     -s  size of each small file in KiB (default 4)
#     -b  size of the sequential file in MiB (default 1024)
#   QFS_BIN   the quorumfs binary (default ./fs/quorumfs)
#   TMPDIR    where the data dir, the mountpoint and the local comparison
#             directory are made (default /tmp); the local directory sits
#             next to the data dir, so both runs hit the same device.
#
# Not a test (not run by make check).  One run measures, on the mount and on
# the local directory: small-file create (open, write, close each), stat,
# read (after dropping caches when /proc/sys/vm/drop_caches is writable) and
# unlink rates, then large-file sequential write (1 MiB writes of non-zero
# data, fsync before the clock stops) and read (caches dropped; for the mount
# also a fresh mount, so the kernel's page cache cannot answer).  Output, one
# line per metric after comment lines starting with '#':
#   metric value unit local_value ratio
# where ratio = value / local_value (mount over local; above 1 is faster for
# rates).  Example:
#   small_create 812.4 files/s 20511.0 0.040

: "${QFS_BIN:=$(pwd)/fs/quorumfs}"
export QFS_BIN
[ -x "$QFS_BIN" ] || { echo "bench.sh: $QFS_BIN is not executable (set QFS_BIN)" >&2; exit 2; }

NSMALL=2000
SMALL_KIB=4
BIG_MIB=1024
while getopts n:s:b:h opt; do
	case $opt in
	n) NSMALL=$OPTARG ;;
	s) SMALL_KIB=$OPTARG ;;
	b) BIG_MIB=$OPTARG ;;
	*) sed -n '2,25s/^# \{0,1\}//p' "$0"; exit 2 ;;
	esac
done

. "${QFS_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"
set -o pipefail

qfs_setup
LOCAL=$T/local
mkdir -p "$LOCAL" "$MNT/bench" || fail "mkdir"

cat >"$T/bench.py" <<'EOF'
# bench.py DIR NSMALL SMALL_KIB BIG_MIB PHASE: prints "metric value unit"
import os, random, sys, time

d, n, kib, big_mib, phase = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
names = [os.path.join(d, "s%05d" % i) for i in range(n)]

def drop_caches():
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False

def rate(metric, count, t):
    print(f"{metric} {count / t:.1f} files/s")

if phase == "small":
    data = random.Random(1).randbytes(kib * 1024)
    t = time.perf_counter()
    for p in names:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, data)
        os.close(fd)
    rate("small_create", n, time.perf_counter() - t)
    t = time.perf_counter()
    for p in names:
        os.stat(p)
    rate("small_stat", n, time.perf_counter() - t)
    if not drop_caches():
        print("# drop_caches not writable: small_read may be served from the page cache")
    t = time.perf_counter()
    for p in names:
        with open(p, "rb", buffering=0) as f:
            if len(f.read()) != len(data):
                sys.exit(f"short read of {p}")
    rate("small_read", n, time.perf_counter() - t)
    t = time.perf_counter()
    for p in names:
        os.unlink(p)
    rate("small_unlink", n, time.perf_counter() - t)
elif phase == "write":
    blk = random.Random(2).randbytes(2 << 20)
    p = os.path.join(d, "big")
    t = time.perf_counter()
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    for i in range(big_mib):
        k = (i * 4093) % (1 << 20)   # every MiB differs: nothing is all-zero
        mv = memoryview(blk)[k:k + (1 << 20)]
        while mv:
            mv = mv[os.write(fd, mv):]
    os.fsync(fd)
    os.close(fd)
    print(f"seq_write {big_mib / (time.perf_counter() - t):.1f} MiB/s")
elif phase == "read":
    if not drop_caches():
        print("# drop_caches not writable: seq_read of the local file may be cached")
    p = os.path.join(d, "big")
    t = time.perf_counter()
    total = 0
    with open(p, "rb", buffering=0) as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            total += len(b)
    if total != big_mib << 20:
        sys.exit(f"read {total} bytes of {big_mib} MiB")
    print(f"seq_read {big_mib / (time.perf_counter() - t):.1f} MiB/s")
    os.unlink(p)
EOF

run() { # run DIR PHASE >> results
	python3 "$T/bench.py" "$1" "$NSMALL" "$SMALL_KIB" "$BIG_MIB" "$2" || fail "bench phase $2 on $1 failed"
}

echo "# quorumfs bench: $NSMALL files of $SMALL_KIB KiB, $BIG_MIB MiB sequential; $(nproc) cpus"
echo "# data dir $DATA on $(df -P "$DATA" | awk 'NR == 2 { print $1 }'), local dir $LOCAL"
{
	run "$MNT/bench" small
	run "$MNT/bench" write
	qfs_umount
	qfs_mount
	run "$MNT/bench" read
} >"$T/mnt.res"
{
	run "$LOCAL" small
	run "$LOCAL" write
	run "$LOCAL" read
} >"$T/loc.res"
grep '^#' "$T/mnt.res" "$T/loc.res" | sed 's/^[^:]*://' | sort -u
echo "# metric value unit local_value ratio"
awk '
	FNR == NR { if ($1 !~ /^#/) loc[$1] = $2; next }
	$1 !~ /^#/ { r = loc[$1] > 0 ? $2 / loc[$1] : 0; printf "%s %s %s %s %.3f\n", $1, $2, $3, loc[$1], r }
' "$T/loc.res" "$T/mnt.res"
qfs_umount
exit 0
