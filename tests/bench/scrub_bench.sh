#!/bin/bash
# tests/bench/scrub_bench.sh - what the scrubber reads per second, and what a
# scrub running all the time at a given pace costs the foreground.
#
# Usage (as root, from a build directory or with QFS_BIN set):
#   tests/bench/scrub_bench.sh [-s MB] [-n FILES] [-f FSYNCS] [-r RATE]
#     -s  MiB of data loaded before the measurements (default 64; files of
#         1 MiB plus FILES small files)
#     -n  4 KiB files created in the small-file workload (default 2000)
#     -f  4 KiB write+fsync calls in the fsync workload (default 1000)
#     -r  scrub_rate (MiB/s) for the foreground-cost runs (default 8, the
#         mount's default)
#   QFS_BIN   the quorumfs binary (default ./fs/quorumfs)
#   TMPDIR    where the data dir and the mountpoint are made (default /tmp)
#
# Not a test (not run by make check).  Output:
#   scrub_unpaced    MiB_read_per_s  (all replicas' item bytes / pass time, unpaced)
#   create_serial    ops/s idle, ops/s with scrub, ratio
#   fsync_serial     ops/s idle, ops/s with scrub, ratio
# "with scrub" means passes started back to back during the workload at the
# given rate.

: "${QFS_BIN:=$(pwd)/fs/quorumfs}"
[ -x "$QFS_BIN" ] || { echo "scrub_bench.sh: $QFS_BIN is not executable (set QFS_BIN)" >&2; exit 2; }
SIZE=64
NFILES=2000
NFSYNC=1000
RATE=8
while getopts s:n:f:r:h opt; do
	case $opt in
	s) SIZE=$OPTARG ;;
	n) NFILES=$OPTARG ;;
	f) NFSYNC=$OPTARG ;;
	r) RATE=$OPTARG ;;
	*) sed -n 2,22p "$0"; exit 2 ;;
	esac
done

T=$(mktemp -d "${TMPDIR:-/tmp}/qfs-scrubbench.XXXXXX")
MNT=$T/mnt
DATA=$T/data
mkdir -p "$MNT" "$DATA"
cleanup() {
	[ -n "${KPID:-}" ] && kill "$KPID" 2>/dev/null
	mountpoint -q "$MNT" && fusermount3 -u "$MNT"
	[ -n "${QPID:-}" ] && wait "$QPID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

mount_it() {
	"$QFS_BIN" mount -f -o "scrub_interval=off,scrub_rate=$1" "$DATA" "$MNT" >>"$T/daemon.out" 2>&1 &
	QPID=$!
	for _ in $(seq 200); do
		[ -e "$MNT/.quorumfs/scrub" ] && return 0
		sleep 0.05
	done
	echo "mount failed" >&2
	exit 1
}
umount_it() {
	fusermount3 -u "$MNT"
	wait "$QPID"
	QPID=
}
S=$MNT/.quorumfs/scrub
val() { awk -v k="$1" '$1 == k { print $2; exit }' "$S"; }
pass() {
	printf 'start\n' >"$S" 2>/dev/null || return 1
	while [ "$(val state)" != idle ]; do sleep 0.05; done
}

mount_it 0
mkdir "$MNT/load" "$MNT/w"
python3 - "$MNT/load" "$SIZE" <<'EOF'
import os, sys
d, size = sys.argv[1], int(sys.argv[2])
for i in range(size):
    with open(os.path.join(d, "big%04d" % i), "wb") as f:
        f.write(os.urandom(1 << 20))
EOF
sync
t0=$(date +%s.%N)
pass
t1=$(date +%s.%N)
python3 -c "import sys; s=$SIZE*3; t=$t1-$t0; print('scrub_unpaced    %.1f MiB/s (%d MiB of items on 3 replicas in %.2f s)' % (s/t, s, t))"
umount_it

workload() { # workload NAME -> ops/s
	python3 - "$MNT/w" "$1" "$NFILES" "$NFSYNC" <<'EOF'
import os, sys, time
d, name, nfiles, nfsync = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
buf = os.urandom(4096)
sub = os.path.join(d, "%s-%d" % (name, time.time_ns()))
os.mkdir(sub)
t0 = time.monotonic()
if name == "create":
    for i in range(nfiles):
        fd = os.open(os.path.join(sub, "f%d" % i), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, buf)
        os.close(fd)
    n = nfiles
else:
    fd = os.open(os.path.join(sub, "log"), os.O_WRONLY | os.O_CREAT, 0o644)
    for i in range(nfsync):
        os.pwrite(fd, buf, i * 4096)
        os.fsync(fd)
    os.close(fd)
    n = nfsync
print("%.1f" % (n / (time.monotonic() - t0)))
EOF
}

mount_it "$RATE"
declare -A idle busy
for w in create fsync; do idle[$w]=$(workload $w); done
( while :; do pass || sleep 0.1; done ) &
KPID=$!
sleep 0.5
for w in create fsync; do busy[$w]=$(workload $w); done
kill "$KPID" 2>/dev/null
wait "$KPID" 2>/dev/null
KPID=
passes=$(val passes)
umount_it
printf '%-16s %10s %10s %7s\n' metric idle_ops/s scrub_ops/s ratio
for w in create fsync; do
	python3 -c "print('%-16s %10s %10s %7.3f' % ('${w}_serial', '${idle[$w]}', '${busy[$w]}', ${busy[$w]} / ${idle[$w]}))"
done
echo "scrub passes completed during the workloads: $passes (one runs throughout; rate $RATE MiB/s)"
