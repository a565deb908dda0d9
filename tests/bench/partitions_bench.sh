#!/bin/bash
# tests/bench/partitions_bench.sh - figures of partitions (issue 12,
# doc/partitions.md).  A benchmark, not a test: it prints figures and never
# fails on timing.
#
# usage: tests/bench/partitions_bench.sh QFS_BIN [SECONDS] [FILES]
#   SECONDS  length of each measured phase (default 10)
#   FILES    files in the hot directory (default 2000)
# Needs python3.  Table "t", directory "hot" of FILES small files.  Prints:
#  1. one partition's throughput: 8 threads overwriting random hot files
#     (durable closes) for SECONDS on one partition, then again after the
#     partition was split for consumption (-o split_ops=), and the ratio;
#  2. metadata lookups per second (the constant-work lookups sent to
#     src/meta, .quorumfs/stats "meta lookups_sent") over the first
#     3 seconds after a mount (cold routing cache) and over the rest of the
#     phase (warm), in the same run, and cold / warm (issue 12: <= 1.2);
#     the same per write, which the machine's load does not move.
set -u
BIN=${1:?usage: partitions_bench.sh QFS_BIN [SECONDS] [FILES]}
SECS=${2:-10}
FILES=${3:-2000}
W=$(mktemp -d "${TMPDIR:-/var/tmp}/qfs_parts_bench.XXXXXX")
MNT=$W/mnt
cleanup() {
	mountpoint -q "$MNT" && fusermount3 -u "$MNT"
	if mountpoint -q "$MNT"; then
		echo "partitions_bench: $MNT still mounted; $W left in place" >&2
	else
		rm -rf "$W"
	fi
}
trap cleanup EXIT
mkdir -p "$W/data" "$MNT"

mnt() { "$BIN" mount "$@" "$W/data" "$MNT" || exit 1; }
umnt() { fusermount3 -u "$MNT"; for _ in $(seq 100); do mountpoint -q "$MNT" || break; sleep 0.1; done; sleep 0.5; }
nparts() { grep -c '^table t partition ' "$MNT/.quorumfs/partitions"; }
sent() { awk '$1 == "meta" { print $3 }' "$MNT/.quorumfs/stats"; }

cat >"$W/load.py" <<'EOF'
import os, random, sys, threading, time
d, seconds = sys.argv[1], float(sys.argv[2])
names = [os.path.join(d, n) for n in os.listdir(d)]
end = time.time() + seconds
counts = [0] * 8
def w(i):
    rnd = random.Random(i)
    while time.time() < end:
        with open(names[rnd.randrange(len(names))], "r+b") as f:
            f.write(os.urandom(512))
        counts[i] += 1
ts = [threading.Thread(target=w, args=(i,)) for i in range(8)]
for t in ts: t.start()
if len(sys.argv) > 3:  # ops done in the first 3 s, for the cold/warm rates per op
    time.sleep(3)
    open(sys.argv[3], "w").write("%d\n" % sum(counts))
for t in ts: t.join()
print("%.1f" % (sum(counts) / seconds))
EOF

# phase LABEL: measure the load on a fresh mount; prints ops/s and the
# cold/warm lookup rates
phase() {
	local s0 s3 s_end ops
	s0=$(sent)
	rm -f "$W/ops3"
	python3 "$W/load.py" "$MNT/t/hot" "$SECS" "$W/ops3" >"$W/ops" &
	local pid=$!
	while [ ! -s "$W/ops3" ]; do sleep 0.05; done
	s3=$(sent)
	wait $pid
	s_end=$(sent)
	ops=$(cat "$W/ops")
	o3=$(cat "$W/ops3")
	oall=$(awk -v r="$ops" -v s="$SECS" 'BEGIN { printf "%d", r * s }')
	echo "$1 partitions $(nparts) ops_s $ops lookups_s_cold $(((s3 - s0) / 3)) lookups_s_warm $(((s_end - s3) / (SECS - 3)))" \
		"lookups_per_op_cold $(awk -v l=$((s3 - s0)) -v o="$o3" 'BEGIN { printf "%.2f", o ? l / o : 0 }')" \
		"lookups_per_op_warm $(awk -v l=$((s_end - s3)) -v o=$((oall - o3)) 'BEGIN { printf "%.2f", (o > 0 ? l / o : 0) }')"
}

mnt -o split_bytes=0
mkdir -p "$MNT/t/hot"
python3 - "$MNT/t/hot" "$FILES" <<'EOF'
import os, sys, threading
d, n = sys.argv[1], int(sys.argv[2])
def mk(i):
    for j in range(i, n, 8):
        with open(os.path.join(d, "f%06d" % j), "wb") as f:
            f.write(os.urandom(512))
ts = [threading.Thread(target=mk, args=(i,)) for i in range(8)]
for t in ts: t.start()
for t in ts: t.join()
EOF
umnt

mnt -o split_bytes=0,cache_timeout=0
B=$(phase before)
echo "$B"
umnt

# split for consumption: a load above half the measured rate for 2 s
rate=$(echo "$B" | awk '{ for (i = 1; i < NF; i++) if ($i == "ops_s") print int($(i + 1) / 2) }')
[ "$rate" -ge 10 ] || rate=10
mnt -o split_bytes=0,cache_timeout=0,split_ops=$rate,split_window=2s,split_check=300ms
python3 "$W/load.py" "$MNT/t/hot" 6 >/dev/null
echo "split_for_consumption split_ops $rate partitions $(nparts)"
umnt

mnt -o split_bytes=0,cache_timeout=0
A=$(phase after)
echo "$A"
umnt
echo "$B" "$A" | awk '{ for (i = 1; i < NF; i++) if ($i == "ops_s") v[++n] = $(i + 1)
                        for (i = 1; i < NF; i++) if ($i == "lookups_s_cold") c[++m] = $(i + 1)
                        for (i = 1; i < NF; i++) if ($i == "lookups_s_warm") w[++k] = $(i + 1) }
	END { printf "ratio after/before ops_s %.2f\n", v[2] / v[1]
	      for (j = 1; j <= 2; j++) printf "lookups/s cold/warm phase %d %.2f\n", j, (w[j] ? c[j] / w[j] : 0) }'
echo "$B" "$A" | awk '{ for (i = 1; i < NF; i++) { if ($i == "lookups_per_op_cold") c[++m] = $(i + 1); if ($i == "lookups_per_op_warm") w[++k] = $(i + 1) } }
	END { for (j = 1; j <= 2; j++) printf "lookups per op cold/warm phase %d %.2f\n", j, (w[j] ? c[j] / w[j] : 0) }'
