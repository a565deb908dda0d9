#!/bin/bash
# tests/bench/coldread.sh - the cold sequential read alone, ABBA: two
# quorumfs binaries (and libfuse's passthrough_ll) read the same random
# file after a remount + drop_caches, in alternating order.
#
# Usage (as root, from a build directory):
#   tests/bench/coldread.sh [-r ROUNDS] [-b MIB] [-P] [-M] [-s strace|perf]
#   -r ROUNDS  ABBA rounds (each: new, old, old, new; default 2)
#   -b MIB     size of the file (default 256)
#   -P         also passthrough_ll, once per round
#   -M         also passthrough_ll with glibc's mmap threshold at 4 MiB
#              ("ptm", once per round): its READ buffer (malloc of 128
#              KiB) then comes from the heap, not an mmap + munmap per
#              READ, whose TLB shootdowns dominate it on some VMs
#   -s TOOL    one more cold read of the new binary under strace -f -T
#              (pread64, fadvise64, read, writev: counts and times) or
#              perf record -g (report of the top symbols), printed at the end;
#              the raw trace is kept in /tmp/coldread.strace or .perf
#   QFS_BIN      the new binary (default ./fs/quorumfs)
#   QFS_OLD_BIN  the old binary (required)
#   RA_KB        read_ahead_kb of each mount's bdi (default: the kernel's)
# Not a test (not in make check).  Prints one line per read: target,
# MiB/s, daemon CPU seconds per GiB (utime + stime, load-independent),
# then the median of each target.
R=2
BIG=256
PT=
PTM=
TOOL=
while getopts r:b:PMs:h opt; do
	case $opt in
	r) R=$OPTARG ;;
	b) BIG=$OPTARG ;;
	P) PT=1 ;;
	M) PTM=1 ;;
	s) TOOL=$OPTARG ;;
	*) sed -n '2,24s/^# \{0,1\}//p' "$0"; exit 2 ;;
	esac
done
: "${QFS_BIN:=$(pwd)/fs/quorumfs}"
[ -x "${QFS_OLD_BIN:-}" ] || { echo "QFS_OLD_BIN must name a quorumfs binary" >&2; exit 2; }
export QFS_BIN

. "${QFS_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"
. "$QFS_SRCDIR/tests/lib/passthrough.sh"
qfs_require dd awk
EXAMPLES=/usr/share/doc/libfuse3-dev/examples
[ -w /proc/sys/vm/drop_caches ] || skip "needs root"

qfs_setup
NEW_BIN=$QFS_BIN
OLDDATA=$T/olddata OLDMNT=$T/oldmnt PTSRC=$T/ptsrc PTMNT=$T/ptmnt
mkdir -p "$OLDDATA" "$OLDMNT" "$PTSRC" "$PTMNT" "$T/pt" || fail mkdir
trap 'pt_stop; old_stop; qfs_cleanup' EXIT
old_start
if [ -n "$PT$PTM" ]; then
	pt_build
	pt_start
fi
dd if=/dev/urandom of="$T/src" bs=1M count="$BIG" status=none || fail "dd urandom"
mkdir "$MNT/b" "$OLDMNT/b" || fail "mkdir b" # files live in tables (directories)
PTDIR=
[ -n "$PT$PTM" ] && PTDIR=$PTMNT
for d in "$MNT/b" "$OLDMNT/b" ${PTDIR:+"$PTDIR"}; do
	dd if="$T/src" of="$d/f" bs=1M conv=fsync status=none || fail "write $d"
done
rm -f "$T/src"
echo "# coldread.sh: $BIG MiB, $R ABBA rounds; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# new $NEW_BIN; old $QFS_OLD_BIN"
RES=$T/res
: >"$RES"
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
one() { # one TARGET: remount, drop caches, read; prints and records
	local tgt=$1 pid dir t0 t1 c0 c1
	case $tgt in
	new) qfs_umount; qfs_mount; pid=$QFS_PID; dir=$MNT/b ;;
	old) old_stop; old_start; pid=$OLD_PID; dir=$OLDMNT/b ;;
	pt) pt_stop; pt_start; pid=$PT_PID; dir=$PTMNT ;;
	ptm) pt_stop; GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4194304 pt_start; pid=$PT_PID; dir=$PTMNT ;;
	esac
	# RA_KB: the mount's kernel read-ahead window (its bdi), default kept
	[ -n "${RA_KB:-}" ] && echo "$RA_KB" >"/sys/class/bdi/$(mountpoint -d "${dir%/b}")/read_ahead_kb"
	sync; echo 3 >/proc/sys/vm/drop_caches
	c0=$(ticks "$pid")
	t0=$(date +%s.%N)
	dd if="$dir/f" of=/dev/null bs=1M status=none || fail "read $tgt"
	t1=$(date +%s.%N)
	c1=$(ticks "$pid")
	awk -v t="$tgt" -v a="$t0" -v b="$t1" -v c="$((c1 - c0))" -v m="$BIG" -v hz="$(getconf CLK_TCK)" \
		'BEGIN { printf "%s %.1f %.3f\n", t, m / (b - a), c / hz * 1024 / m }' | tee -a "$RES"
}
for _ in $(seq "$R"); do
	for tgt in new old old new; do one "$tgt"; done
	[ -n "$PT" ] && one pt
	[ -n "$PTM" ] && one ptm
done
for tgt in new old ${PT:+pt} ${PTM:+ptm}; do
	r=$(awk -v t="$tgt" '$1 == t { print $2 }' "$RES" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
	c=$(awk -v t="$tgt" '$1 == t { print $3 }' "$RES" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
	echo "median $tgt MiB/s $r cpu_s_per_GiB $c (all: $(awk -v t="$tgt" '$1 == t { printf "%s ", $2 }' "$RES"))"
done
case $TOOL in
strace)
	qfs_umount; qfs_mount
	sync; echo 3 >/proc/sys/vm/drop_caches
	strace -f -T -s 0 -e trace=pread64,fadvise64,read,writev -o "$T/strace" -p "$QFS_PID" 2>/dev/null &
	SP=$!
	sleep 1
	dd if="$MNT/b/f" of=/dev/null bs=1M status=none
	kill "$SP"; wait "$SP" 2>/dev/null
	awk '/pread64\(/ { n++; x = $NF; gsub(/[<>]/, "", x); t += x; bytes += $(NF - 1) }
	     /fadvise64\(/ { nf++; x = $NF; gsub(/[<>]/, "", x); tf += x }
	     /writev\(/ { nw++ }
	     END { printf "strace: %d pread64 (%.1f KiB each, mean %.1f us), %d fadvise64 (mean %.1f us), %d writev\n",
		   n, n ? bytes / n / 1024 : 0, n ? t / n * 1e6 : 0, nf, nf ? tf / nf * 1e6 : 0, nw }' "$T/strace"
	cp "$T/strace" /tmp/coldread.strace 2>/dev/null
	;;
perf)
	qfs_umount; qfs_mount
	sync; echo 3 >/proc/sys/vm/drop_caches
	perf record -q -g -o "$T/perf.data" -p "$QFS_PID" >/dev/null 2>&1 &
	SP=$!
	sleep 1
	dd if="$MNT/b/f" of=/dev/null bs=1M status=none
	kill -INT "$SP"; wait "$SP" 2>/dev/null
	perf report -i "$T/perf.data" --no-children --sort sym --stdio 2>/dev/null | grep -v '^#' | grep '%' | head -40
	cp "$T/perf.data" /tmp/coldread.perf 2>/dev/null
	;;
esac
