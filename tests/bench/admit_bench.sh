#!/bin/bash
# tests/bench/admit_bench.sh - predictability figures of admission control
# (issue 13, doc/admission.md).  A benchmark, not a test: it prints figures
# and never fails on timing.
#
# usage: tests/bench/admit_bench.sh QFS_BIN [WCU] [SECONDS] [IDLE] [ROUNDS]
#   WCU      the hot table's provisioned write units (default 20: 8 writers of 4 KiB files reach
#            10x that on a loaded 2-core machine)
#   SECONDS  length of each measured phase (default 10)
#   IDLE     seconds the hot table idles first to accrue burst (default 5)
#   ROUNDS   interleaved alone/loaded rounds of 2 s each (default 5; 0: none)
# Needs python3.  One mount; tables "cold" (on-demand) and "hot"
# (provisioned WCU).  It prints:
#  1. cold's serial 1 KiB create+close latency p50/p99 alone (baseline), and
#     while 8 writers push hot to about 10x its capacity; the p99 ratio
#     (issue 13 asks <= 1.2) and cold's p99/p50 under that load (<= 3);
#     then cold alone again once hot stopped: the two baselines of the
#     same run tell the machine's noise (alone2/alone1) from what hot does;
#  2. hot's achieved write units (consumed_wcu in .quorumfs/capacity) over
#     the phase against provisioned x seconds + the burst and the bucket's
#     first second it started with (within 10%);
#  3. interleaved: ROUNDS rounds of 2 s of cold alone (the hot writers
#     stopped with SIGSTOP) and 2 s of cold with hot at ~10x (SIGCONT); the
#     p99 of each condition over all its rounds, so that the machine's
#     drifting load hits both alike;
#  4. the throttled writers' own file latency (open+write+close, which
#     waits in admission) p50/p99 over the second half of the phase, once
#     the burst is spent: how evenly the waits are shared (p99/p50), and
#     the files each writer completed (min/max).
set -u
BIN=${1:?usage: admit_bench.sh QFS_BIN [WCU] [SECONDS] [IDLE]}
WCU=${2:-20}
SECS=${3:-10}
IDLE=${4:-5}
ROUNDS=${5:-5}
W=$(mktemp -d "${TMPDIR:-/var/tmp}/qfs_admit_bench.XXXXXX")
MNT=$W/mnt
cleanup() {
	[ -n "${HOT_PIDS:-}" ] && kill $HOT_PIDS 2>/dev/null && wait $HOT_PIDS 2>/dev/null
	mountpoint -q "$MNT" && fusermount3 -u "$MNT"
	if mountpoint -q "$MNT"; then
		echo "admit_bench: $MNT still mounted; $W left in place" >&2
	else
		rm -rf "$W"
	fi
}
trap cleanup EXIT
mkdir -p "$W/data" "$MNT"
"$BIN" mount "$W/data" "$MNT" || exit 1

cap() { awk -v t="$1" -v k="$2" '$1 == "table" && $2 == t { for (i = 3; i < NF; i += 2) if ($i == k) print $(i + 1) }' "$MNT/.quorumfs/capacity"; }
lat() { # lat DIR SECONDS [RAW]: serial 1 KiB creates; prints "p50_ms p99_ms n"
	# (and appends each latency in ms to the file RAW)
	python3 - "$1" "$2" "${3:-}" <<'EOF'
import os, sys, time
d, secs, raw = sys.argv[1], float(sys.argv[2]), sys.argv[3]
data = os.urandom(1024)
os.makedirs(d, exist_ok=True)
lat, end, i = [], time.monotonic() + secs, 0
while time.monotonic() < end:
    t = time.monotonic()
    fd = os.open(f"{d}/f{i}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, data)
    os.close(fd)
    lat.append(time.monotonic() - t)
    i += 1
if raw:
    with open(raw, "a") as f:
        f.write("".join(f"{x * 1e3:.3f}\n" for x in lat))
lat.sort()
print(f"{lat[len(lat) // 2] * 1e3:.2f} {lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e3:.2f} {len(lat)}")
EOF
}
cat >"$W/hot.py" <<'EOF'
# hot writer: 4 KiB files as fast as possible until killed; logs
# "start_monotonic seconds" per file to argv[3]
import os, sys, time
d, w, log = sys.argv[1], sys.argv[2], open(sys.argv[3], "w", buffering=1)
data = os.urandom(4096)
i = 0
while True:
    t = time.monotonic()
    with open(f"{d}/w{w}.{i}", "wb") as f:
        f.write(data)
    log.write(f"{t:.6f} {time.monotonic() - t:.6f}\n")
    i += 1
EOF

mkdir "$MNT/cold" "$MNT/hot"
setfattr -n user.quorumfs.capacity -v provisioned "$MNT/hot"
setfattr -n user.quorumfs.wcu -v "$WCU" "$MNT/hot"
echo "# hot: provisioned wcu $WCU; phases of $SECS s"

read -r b50 b99 bn < <(lat "$MNT/cold/base" "$SECS")
echo "cold alone:            p50_ms $b50 p99_ms $b99 creates $bn"

sleep "$IDLE" # burst accrues on hot
burst0=$(cap hot write_burst)
c0=$(cap hot consumed_wcu)
HOT_PIDS=
for w in 1 2 3 4 5 6 7 8; do
	python3 "$W/hot.py" "$MNT/hot" "$w" "$W/hot.$w.lat" &
	HOT_PIDS="$HOT_PIDS $!"
done
t0=$(date +%s.%N)
m0=$(python3 -c 'import time; print(time.monotonic())')
read -r l50 l99 ln < <(lat "$MNT/cold/load" "$SECS")
c1=$(cap hot consumed_wcu)
t1=$(date +%s.%N)
for r in $(seq "$ROUNDS"); do
	kill -STOP $HOT_PIDS
	lat "$MNT/cold/ia$r" 2 "$W/il.alone" >/dev/null
	kill -CONT $HOT_PIDS
	lat "$MNT/cold/il$r" 2 "$W/il.loaded" >/dev/null
done
kill $HOT_PIDS 2>/dev/null
wait $HOT_PIDS 2>/dev/null
HOT_PIDS=
echo "cold, hot at ~10x:     p50_ms $l50 p99_ms $l99 creates $ln"
read -r a50 a99 an < <(lat "$MNT/cold/again" "$SECS")
echo "cold alone again:      p50_ms $a50 p99_ms $a99 creates $an"
awk -v a="$b99" -v b="$l99" -v c="$a99" -v p50="$l50" -v a50="$b50" -v c50="$a50" 'BEGIN {
	printf "cold p99 loaded/alone %.2f (<= 1.20 asked), loaded/mean of both alone %.2f, noise alone2/alone1 %.2f\n", b / a, 2 * b / (a + c), c / a
	printf "cold p99/p50 under load %.2f (<= 3 asked); alone %.2f and %.2f\n", b / p50, a / a50, c / c50 }'
awk -v c0="$c0" -v c1="$c1" -v t0="$t0" -v t1="$t1" -v w="$WCU" -v b="$burst0" 'BEGIN {
	d = t1 - t0; got = c1 - c0; want = w * d + b + w
	printf "hot achieved %d WU in %.1f s = %.0f WU/s; provisioned %d x %.1f s + burst %.0f + first second %d = %.0f; ratio %.2f (1 +- 0.10 asked)\n", got, d, got / d, w, d, b, w, want, got / want }'
echo "hot: $(grep '^table hot' "$MNT/.quorumfs/capacity" | grep -o 'throttled_writes [0-9]*') $(grep '^table hot' "$MNT/.quorumfs/capacity" | grep -o 'write_wait_expired [0-9]*')"
[ "$ROUNDS" -gt 0 ] && python3 - "$W/il.alone" "$W/il.loaded" "$ROUNDS" <<'EOF'
import sys
def q(p):
    v = sorted(float(x) for x in open(p))
    return v[len(v) // 2], v[min(len(v) - 1, int(len(v) * 0.99))], len(v)
a50, a99, an = q(sys.argv[1])
l50, l99, ln = q(sys.argv[2])
print(f"interleaved, {sys.argv[3]} rounds of 2 s: cold alone p50_ms {a50:.2f} p99_ms {a99:.2f} ({an}); hot at ~10x p50_ms {l50:.2f} p99_ms {l99:.2f} ({ln}); p99 loaded/alone {l99 / a99:.2f}; p99/p50 {a99 / a50:.2f} alone, {l99 / l50:.2f} loaded")
EOF
python3 - "$m0" "$SECS" "$W"/hot.*.lat <<'EOF'
import sys
m0, secs = float(sys.argv[1]), float(sys.argv[2])
steady, per = [], []
for p in sys.argv[3:]:
    rows = [tuple(map(float, l.split())) for l in open(p) if len(l.split()) == 2]
    rows = [r for r in rows if r[0] >= m0 and r[0] + r[1] <= m0 + secs] # the measured phase only
    per.append(len(rows))
    steady += [d for t, d in rows if t >= m0 + secs / 2]
steady.sort()
if steady:
    p50, p99 = steady[len(steady) // 2], steady[min(len(steady) - 1, int(len(steady) * 0.99))]
    print(f"hot writers, second half: files {len(steady)} p50_ms {p50 * 1e3:.0f} p99_ms {p99 * 1e3:.0f} p99/p50 {p99 / p50:.2f}; files per writer min {min(per)} max {max(per)}")
EOF
