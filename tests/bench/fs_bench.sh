#!/bin/bash
# tests/bench/fs_bench.sh - the FUSE frontend's share of the write path and
# the kernel's caches (issue 8 items 1, 4, 5), measured side by side in one
# run for one or two quorumfs binaries (e.g. main's and a branch's) and the
# native filesystem the data directory lives on.  A benchmark, not a test:
# it prints figures and never fails on timing.
#
# usage: tests/bench/fs_bench.sh QFS_BIN [QFS_BIN_BASELINE] [TREE] [NCREATE]
#   TREE     copied with cp -a (default /usr/include)
#   NCREATE  serial 4 KiB creates, and creates traced for futex calls (1000)
# Needs: strace, rsync, python3.  Runs as root (allow_other) or a user.
# Per binary it prints: replicated txns (cell proposals in .quorumfs/stats)
# per entry for cp -a TREE, the cp -a time, the entries a second
# rsync -a --itemize-changes lists, serial creates/s, warm find -ls,
# ls -lR and du of the copy (best of 3), and futex calls per create
# (strace -f -c -e trace=futex on every daemon thread).
set -u
BIN=${1:?usage: fs_bench.sh QFS_BIN [QFS_BIN_BASELINE] [TREE] [NCREATE]}
BASE=${2:-}
TREE=${3:-/usr/include}
N=${4:-1000}
W=$(mktemp -d "${TMPDIR:-/var/tmp}/qfs_fs_bench.XXXXXX")
MNT=
cleanup() {
	[ -n "$MNT" ] && mountpoint -q "$MNT" && fusermount3 -u "$MNT"
	rm -rf "$W"
}
trap cleanup EXIT

now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l | awk '{printf "%.3f", $1}'; }
best3() { # best of 3 wall times of "$@" (output discarded)
	local b= t0 t1 d
	for _ in 1 2 3; do
		t0=$(now); "$@" >/dev/null 2>&1; t1=$(now)
		d=$(secs "$t0" "$t1")
		if [ -z "$b" ] || [ "$(echo "$d < $b" | bc)" = 1 ]; then b=$d; fi
	done
	echo "$b"
}
proposals() { awk '/^cell/{print $3}' "$1/.quorumfs/stats"; }
creates() { # creates DIR N: N serial creates of 4 KiB random files; prints rate
	python3 - "$1" "$2" <<'EOF'
import os, sys, time
d, n = sys.argv[1], int(sys.argv[2])
data = os.urandom(4096)
t = time.monotonic()
for i in range(n):
    fd = os.open(f"{d}/f{i}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, data)
    os.close(fd)
print(f"{n / (time.monotonic() - t):.0f}")
EOF
}

# native: the tree copied to the data directory's filesystem
mkdir -p "$W/native"
cp -a "$TREE" "$W/native/tree"
NENT=$(find "$W/native/tree" | wc -l)
find "$W/native/tree" -ls >/dev/null; ls -lR "$W/native/tree" >/dev/null; du -s "$W/native/tree" >/dev/null
nat_find=$(best3 find "$W/native/tree" -ls)
nat_ls=$(best3 ls -lR "$W/native/tree")
nat_du=$(best3 du -s "$W/native/tree")
mkdir "$W/native/c"
nat_cr=$(creates "$W/native/c" "$N")

run_one() { # run_one LABEL BIN
	local label=$1 bin=$2 data="$W/data.$1" pid p0 p1 t0 t1 cp_s items cr fx nthreads
	MNT="$W/mnt.$1"
	mkdir -p "$data" "$MNT"
	"$bin" mount -f "$data" "$MNT" >"$W/$label.out" 2>&1 &
	pid=$!
	for _ in $(seq 200); do [ -e "$MNT/.quorumfs/status" ] && break; sleep 0.05; done
	mkdir "$MNT/t"
	p0=$(proposals "$MNT")
	t0=$(now); cp -a "$TREE" "$MNT/t/tree"; t1=$(now)
	p1=$(proposals "$MNT")
	cp_s=$(secs "$t0" "$t1")
	items=$(rsync -a --itemize-changes "$TREE/" "$MNT/t/tree/" | wc -l)
	find "$MNT/t/tree" -ls >/dev/null; ls -lR "$MNT/t/tree" >/dev/null; du -s "$MNT/t/tree" >/dev/null
	local f l d
	f=$(best3 find "$MNT/t/tree" -ls)
	l=$(best3 ls -lR "$MNT/t/tree")
	d=$(best3 du -s "$MNT/t/tree")
	mkdir "$MNT/t/c1" "$MNT/t/c2"
	cr=$(creates "$MNT/t/c1" "$N")
	# futex calls per create, over every thread of the daemon
	strace -f -c -e trace=futex -o "$W/$label.futex" -p "$pid" 2>/dev/null &
	local spid=$!
	sleep 1
	creates "$MNT/t/c2" "$N" >/dev/null
	kill -INT "$spid"; wait "$spid" 2>/dev/null
	fx=$(awk '$NF=="futex"{print $4}' "$W/$label.futex")
	fusermount3 -u "$MNT"; wait "$pid"; MNT=
	printf '%-10s txns/entry %.2f (%d/%d)  cp -a %ss  rsync-2nd-pass-items %d  creates/s %s  futex/create %.1f\n' \
		"$label" "$(echo "($p1 - $p0) / $NENT" | bc -l)" $((p1 - p0)) "$NENT" "$cp_s" "$items" "$cr" \
		"$(echo "${fx:-0} / $N" | bc -l)"
	printf '%-10s warm find -ls %ss (%.1fx native)  ls -lR %ss (%.1fx)  du -s %ss (%.1fx)\n' "$label" \
		"$f" "$(echo "$f / $nat_find" | bc -l)" "$l" "$(echo "$l / $nat_ls" | bc -l)" \
		"$d" "$(echo "$d / $nat_du" | bc -l)"
}

echo "tree $TREE: $NENT entries; $N serial 4 KiB creates"
printf '%-10s warm find -ls %ss  ls -lR %ss  du -s %ss  creates/s %s\n' native "$nat_find" "$nat_ls" "$nat_du" "$nat_cr"
[ -n "$BASE" ] && run_one baseline "$BASE"
run_one this "$BIN"
