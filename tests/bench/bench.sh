#!/bin/bash
# tests/bench/bench.sh - `quorumfs bench` on a fresh mount against the local
# filesystem underneath it, in one command.
#
# Usage (as root, from a build directory or with QFS_BIN set):
#   tests/bench/bench.sh [-q] [-n FILES] [-b BIG_MIB] [-- BENCH_OPTIONS...]
#     -q  quick (quorumfs bench --quick)
#     -n  number of small (4 KiB) files (default 2000)
#     -b  size of the sequential file in MiB (default: quorumfs bench's, 256)
#     any further options after -- go to `quorumfs bench` (quorumfs(8))
#   QFS_BIN   the quorumfs binary (default ./fs/quorumfs)
#   TMPDIR    where the data dir, the mountpoint and the local comparison
#             directory are made (default /tmp); the local directory sits
#             next to the data dir, so both runs hit the same device.
#
# Not a test (not run by make check).  It makes a fresh data dir, mounts it
# (3 replicas), and runs `quorumfs bench MNT --against LOCAL`: small-file
# create/stat/read/rename/unlink, parallel creates, mkdir/rmdir, 4 KiB
# pwrite+fsync with 1 and 8 writers, sequential write (fsync at the end) and
# read; the markdown table it prints has the mount's rates and latencies,
# the local directory's, and the ratio mount/local per row.  The comparison
# with libfuse's passthrough_ll is tests/bench/vs_passthrough.sh; both are
# described in doc/perf.md.

: "${QFS_BIN:=$(pwd)/fs/quorumfs}"
export QFS_BIN
[ -x "$QFS_BIN" ] || { echo "bench.sh: $QFS_BIN is not executable (set QFS_BIN)" >&2; exit 2; }

ARGS=()
NSMALL=
BIG_MIB=
while getopts qn:b:h opt; do
	case $opt in
	q) ARGS+=(--quick) ;;
	n) NSMALL=$OPTARG ;;
	b) BIG_MIB=$OPTARG ;;
	*) sed -n '2,23s/^# \{0,1\}//p' "$0"; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ -n "$NSMALL" ] && ARGS+=(-n "$NSMALL")
[ -n "$BIG_MIB" ] && ARGS+=(-s "$BIG_MIB")

. "${QFS_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"

qfs_setup
LOCAL=$T/local
mkdir -p "$LOCAL" || fail "mkdir $LOCAL"
echo "# data dir $DATA on $(df -P "$DATA" | awk 'NR == 2 { print $1 }'), local dir $LOCAL; $(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg)"
"$QFS_BIN" bench "${ARGS[@]}" "$@" "$MNT" --against "$LOCAL" || fail "quorumfs bench failed"
qfs_umount
exit 0
