#!/bin/bash
# tests/bench/rss.sh - peak daemon memory and bytes written to disk per byte
# of user data while SIZE of random data is written and deleted.
#
# Usage (as root, from a build directory or with QFS_BIN set):
#   tests/bench/rss.sh [SIZE]      SIZE in GiB (default 10); "0.5" works
#   QFS_BIN        the quorumfs binary (default ./fs/quorumfs)
#   QFS_RSS_OPTS   extra mount options (e.g. cache_size=64M)
# Not a test (not run by make check).  The default mount (three replicas,
# archive in DATA_DIR/archive on the same disk, seal_age 5s so the archive
# keeps up) gets files of 256 MiB (dd conv=fsync from one random source
# file), each deleted after the next one is written.  Prints, after '#'
# comment lines:
#   written_bytes N
#   peak_rss_kib N          (VmHWM of the daemon)
#   final_rss_kib N         (VmRSS after everything was deleted)
#   disk_write_bytes N      (/proc/PID/io write_bytes of the daemon)
#   amplification X         (disk_write_bytes / written_bytes)
# Compare two binaries in one run: QFS_BIN=old tests/bench/rss.sh 1; then new.

: "${QFS_BIN:=$(pwd)/fs/quorumfs}"
export QFS_BIN
[ -x "$QFS_BIN" ] || { echo "rss.sh: $QFS_BIN is not executable (set QFS_BIN)" >&2; exit 2; }
GIB=${1:-10}
. "${QFS_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"
set -o pipefail

qfs_setup -o "seal_age=5s${QFS_RSS_OPTS:+,$QFS_RSS_OPTS}"
mkdir "$MNT/rss" || fail "mkdir"
FILE_MIB=256
total_mib=$(python3 -c "print(int($GIB * 1024))")
n=$(( (total_mib + FILE_MIB - 1) / FILE_MIB ))
head -c $((FILE_MIB << 20)) /dev/urandom >"$T/src" || fail "random source"
io() { awk -v k="$1" '$1 == k ":" { print $2 }' "/proc/$QFS_PID/io"; }
w0=$(io write_bytes)
# sampler: the largest RssAnon and RssFile seen (VmHWM is their peak sum)
( while kill -0 "$QFS_PID" 2>/dev/null; do
	awk '$1 == "RssAnon:" { a = $2 } $1 == "RssFile:" { f = $2 } END { print a, f }' "/proc/$QFS_PID/status"
	sleep 0.5
done ) >"$T/samples" 2>/dev/null &
for i in $(seq "$n"); do
	dd if="$T/src" of="$MNT/rss/f$i" bs=1M conv=fsync status=none || fail "write f$i"
	[ "$i" -gt 1 ] && { rm "$MNT/rss/f$((i - 1))" || fail "rm"; }
done
rm -f "$MNT/rss/f$n"
# let the archive catch up (sealed by age) before counting its bytes
for _ in $(seq 60); do
	awk '$1 == "partition" { for (i = 2; i < NF; i++) if ($i == "pending_segments") p += $(i + 1) } END { exit p > 0 }' \
		"$MNT/.quorumfs/archive" && break
	sleep 1
done
sleep 6
w1=$(io write_bytes)
written=$((n * FILE_MIB << 20))
echo "# $QFS_BIN: $n files of $FILE_MIB MiB written and deleted"
echo "written_bytes $written"
echo "peak_rss_kib $(awk '/^VmHWM:/ { print $2 }' "/proc/$QFS_PID/status")"
echo "final_rss_kib $(awk '/^VmRSS:/ { print $2 }' "/proc/$QFS_PID/status")"
echo "# peak RssAnon $(sort -k1 -n "$T/samples" | tail -1 | cut -d' ' -f1) kB, peak RssFile $(sort -k2 -n "$T/samples" | tail -1 | cut -d' ' -f2) kB"
echo "# final $(grep -E '^(RssAnon|RssFile):' "/proc/$QFS_PID/status" | tr -s ' \t\n' ' ')"
echo "disk_write_bytes $((w1 - w0))"
echo "amplification $(python3 -c "print('%.2f' % (($w1 - $w0) / $written))")"
grep -E '^(disk|memory) ' "$MNT/.quorumfs/status" | sed 's/^/# /'
qfs_umount
exit 0
