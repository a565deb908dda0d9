#!/bin/bash
# tests/bench/vs_passthrough.sh - quorumfs against libfuse's passthrough_ll
# and the native filesystem of the same disk, in one run, with the targets
# of issue 8 marked PASS/MISS.  A benchmark, not a test (not in make check).
#
# Usage (as root, from a build directory or with QFS_BIN set):
#   tests/bench/vs_passthrough.sh [-q] [-r CYCLES] [-n CREATES] [-f FSYNCS]
#                                 [-b MIB] [-t TREE] [-w WALKS] [-S]
#     -q  quick: -r 1 -n 200 -f 50 -b 64 -t /usr/include/linux
#     -r  cp -a / rm -rf cycles of the tree, and repetitions of the create and
#         fsync rows; medians are printed (default 3)
#     -n  serial 4 KiB creates / unlinks per repetition (default 2000)
#     -f  4 KiB pwrite+fsync calls per writer, 1 and 8 writers (default 500)
#     -b  MiB of random data written with dd conv=fsync (default 1024, at least 4)
#     -t  the tree copied with cp -a (default /usr/include)
#     -w  timed warm walks of each kind per target, the median printed
#         (default 3; a warm walk takes milliseconds: 20 for a stable figure)
#     -S  also strace the daemon during one more (untimed) cp -a and a loop of
#         creates: fsync+fdatasync calls per entry, futex calls per create
#   QFS_BIN   the quorumfs binary (default ./fs/quorumfs)
#   QFS_OLD_BIN  a second quorumfs binary (a baseline build) measured in the
#             same run as target "old", interleaved with the others, for a
#             before/after beside passthrough_ll (its own columns; the
#             targets are judged for both); the two swap places in the
#             order of every other cp/rm cycle and create/fsync repetition
#   SETTLE    seconds of sync + sleep before each timed step (default 2), so
#             one target's writes back do not land in the next one's time
#   TMPDIR    where everything is made (default /tmp): the native directory,
#             passthrough_ll's source directory and quorumfs's data dir all
#             sit there, on one disk.
#
# It builds passthrough_ll from /usr/share/doc/libfuse3-dev/examples into the
# temp dir (its code is not part of quorumfs), mounts it (default options)
# over a directory of the disk, mounts a fresh default quorumfs (3 replicas)
# and works in a table of it.  Per target, native / passthrough_ll /
# quorumfs, interleaved so all three see the same load:
#  - cp -a TREE, rm -rf of it (R cycles); replicated txns, router gets and
#    cell fsyncs per entry from .quorumfs/stats deltas during each cp, and
#    the daemon's CPU seconds (utime+stime) per cp; the
#    daemon's VmRSS/VmHWM after the R-th copy; proposals and cell fsyncs
#    per fsync() of 8 writers (group commit) from the same counters;
#  - warm find -ls / ls -lR / du -s of the copied tree (median of -w), and
#    each again after a remount (native: none) + echo 3 > drop_caches;
#  - `quorumfs bench --raw --only small,fsync` for serial creates/unlinks
#    and 4 KiB pwrite+fsync with 1 and 8 writers (R repetitions);
#  - dd of B MiB of random data with conv=fsync (and the bytes the daemon
#    wrote meanwhile, /proc/PID/io, per byte), and its read after a
#    remount + drop_caches (R cycles, the file removed after each);
#  - the disk's own 4 KiB write+fdatasync (dd oflag=dsync, 1000 appending
#    writes, R times; the least is used): the physical floor of a durable
#    serial operation;
#  - an informative row, not a target: 1, 2 and 3 threads each doing a 4 KiB
#    pwrite + fdatasync of its own preallocated file per round, a barrier
#    between rounds (tests/bench/syncpar.c, built here; NFLOOR rounds, R
#    times, the least): a round's time, and for 3 threads the time to the
#    second finished sync, the physical floor of a 2-of-3 quorum round
#    whose three replicas share this one disk (the embedded default).
# Output: a markdown table (times and rates, ratios quorumfs/passthrough_ll
# and quorumfs/native) and the targets with PASS/MISS.  doc/perf.md.

: "${QFS_BIN:=$(pwd)/fs/quorumfs}"
export QFS_BIN
[ -x "$QFS_BIN" ] || { echo "vs_passthrough.sh: $QFS_BIN is not executable (set QFS_BIN)" >&2; exit 2; }

R=3
NCREATE=2000
NFSYNC=500
BIG=1024
TREE=/usr/include
STRACE=
WARM=3
while getopts qr:n:f:b:t:w:Sh opt; do
	case $opt in
	q) R=1; NCREATE=200; NFSYNC=50; BIG=64; TREE=/usr/include/linux ;;
	r) R=$OPTARG ;;
	n) NCREATE=$OPTARG ;;
	f) NFSYNC=$OPTARG ;;
	b) BIG=$OPTARG ;;
	t) TREE=$OPTARG ;;
	w) WARM=$OPTARG ;;
	S) STRACE=1 ;;
	*) sed -n '2,40s/^# \{0,1\}//p' "$0"; exit 2 ;;
	esac
done
TREE=$(cd "$TREE" && pwd) || exit 2
[ "$BIG" -ge 4 ] 2>/dev/null || { echo "vs_passthrough.sh: -b needs at least 4 (MiB)" >&2; exit 2; }

. "${QFS_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"
. "$QFS_SRCDIR/tests/lib/passthrough.sh"
set -o pipefail
qfs_require gcc pkg-config awk dd find du ls
[ -z "$STRACE" ] || qfs_require strace python3
EXAMPLES=/usr/share/doc/libfuse3-dev/examples
[ -f "$EXAMPLES/passthrough_ll.c" ] || skip "$EXAMPLES/passthrough_ll.c is missing (libfuse3-dev)"
[ -w /proc/sys/vm/drop_caches ] || skip "needs root: /proc/sys/vm/drop_caches is not writable"

qfs_setup
mkdir "$MNT/b" || fail "mkdir table b"
NAT=$T/native
PTSRC=$T/ptsrc
PTMNT=$T/ptmnt
OLDDATA=$T/olddata OLDMNT=$T/oldmnt
mkdir -p "$NAT" "$PTSRC" "$PTMNT" "$T/pt" "$OLDDATA" "$OLDMNT" || fail "mkdir"
trap 'pt_stop; old_stop; qfs_cleanup' EXIT

# passthrough_ll, compiled here from libfuse's installed example
pt_build
gcc -O2 -Wall -pthread -o "$T/syncpar" "$QFS_SRCDIR/tests/bench/syncpar.c" || fail "could not build syncpar"
pt_start

TARGETS="native pt qfs"
QTARGETS="qfs" # the quorumfs mounts
if [ -n "${QFS_OLD_BIN:-}" ]; then
	old_start
	mkdir "$OLDMNT/b" || fail "mkdir table b (old)"
	TARGETS="native pt old qfs"
	QTARGETS="old qfs"
fi
dir_of() { case $1 in native) echo "$NAT" ;; pt) echo "$PTMNT" ;; qfs) echo "$MNT/b" ;; old) echo "$OLDMNT/b" ;; esac; }
mnt_of() { case $1 in qfs) echo "$MNT" ;; old) echo "$OLDMNT" ;; esac; }
pid_of() { case $1 in qfs) echo "$QFS_PID" ;; old) echo "$OLD_PID" ;; esac; }
is_q() { [ "$1" = qfs ] || [ "$1" = old ]; }
# targets_of CYCLE: the order of the targets in that cycle; with an old
# binary the two quorumfs mounts swap places every other cycle, so neither
# always runs right after the other's writes settle
targets_of() { if [ -n "${QFS_OLD_BIN:-}" ] && [ $(($1 % 2)) -eq 0 ]; then echo "native pt qfs old"; else echo "$TARGETS"; fi; }
# settle: let the writes of the previous step (the daemon's flushes and
# compactions too) reach the disk before the next target is timed
settle() { sync; sleep "${SETTLE:-2}"; }
# cold TARGET: remount it (native: nothing to remount) and drop the caches
cold() {
	case $1 in
	pt) pt_stop; pt_start ;;
	qfs) qfs_umount; qfs_mount ;;
	old) old_stop; old_start ;;
	esac
	drop
}
RES=$T/results
: >"$RES"
# cpu_ticks TARGET: the daemon's utime+stime so far, in clock ticks (/proc/PID/stat)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$(pid_of "$1")/stat"; }
# stat_sum TARGET: "TXNS FSYNCS PROPOSALS" of its mount so far (.quorumfs/stats)
stat_sum() {
	awk '$1 == "table" && $3 == "op" && $4 == "txn" { t += $6 }
	     $1 == "cell" { for (i = 2; i < NF; i++) { if ($i == "fsyncs") f = $(i + 1); if ($i == "proposals") p = $(i + 1) } }
	     END { printf "%d %s %s\n", t, (f == "" ? "-" : f), (p == "" ? "-" : p) }' "$(mnt_of "$1")/.quorumfs/stats"
}

ENTRIES=$(find "$TREE" | wc -l)
TREE_MB=$(du -sb "$TREE" | awk '{ printf "%.0f", $1 / 1e6 }')
echo "# vs_passthrough: tree $TREE ($ENTRIES entries, $TREE_MB MB), $R cycles, $NCREATE creates, $NFSYNC fsyncs x 1/8 writers, $BIG MiB dd; $(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# all on $(df -P "$T" | awk 'NR == 2 { print $1 }') ($(df -PT "$T" | awk 'NR == 2 { print $2 }')) under $T; quorumfs $("$QFS_BIN" --version | awk '{ print $2 }') at $(git -C "$QFS_SRCDIR" rev-parse --short HEAD 2>/dev/null || echo '?')${QFS_OLD_BIN:+; old: $QFS_OLD_BIN}"
find "$TREE" -type f -exec cat {} + >/dev/null 2>&1 # the source in the page cache

# --- cp -a / rm -rf cycles
for i in $(seq "$R"); do
	for tgt in $(targets_of "$i"); do
		d=$(dir_of "$tgt")
		settle
		is_q "$tgt" && before=$(stat_sum "$tgt") && cpu0=$(cpu_ticks "$tgt") &&
			gets0=$(awk '$1 == "table" && $3 == "op" && $4 == "get" { g += $6 } END { print g + 0 }' "$(mnt_of "$tgt")/.quorumfs/stats")
		timed cp "$tgt" cp -a "$TREE" "$d/tree"
		if is_q "$tgt"; then
			put cpu_s "$tgt" "$(awk -v a="$cpu0" -v b="$(cpu_ticks "$tgt")" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", (b - a) / hz }')"
			put gets_per_entry "$tgt" "$(awk -v a="$gets0" -v n="$ENTRIES" '$1 == "table" && $3 == "op" && $4 == "get" { g += $6 } END { printf "%.2f", (g - a) / n }' "$(mnt_of "$tgt")/.quorumfs/stats")"
			after=$(stat_sum "$tgt")
			set -- $before $after
			put txn_per_entry "$tgt" "$(awk -v a="$1" -v b="$4" -v n="$ENTRIES" 'BEGIN { printf "%.2f", (b - a) / n }')"
			[ "$2" != - ] && put fsync_per_entry "$tgt" "$(awk -v a="$2" -v b="$5" -v n="$ENTRIES" 'BEGIN { printf "%.2f", (b - a) / n }')"
			[ "$3" != - ] && put prop_per_entry "$tgt" "$(awk -v a="$3" -v b="$6" -v n="$ENTRIES" 'BEGIN { printf "%.2f", (b - a) / n }')"
		fi
		[ "$i" -lt "$R" ] && settle && timed rm "$tgt" rm -rf "$d/tree"
	done
	note "cycle $i done"
done
for tgt in $QTARGETS; do
	awk '/^Vm(RSS|HWM)/ { printf "%s %d\n", $1, $2 / 1024 }' "/proc/$(pid_of "$tgt")/status" >"$T/rss"
	put rss "$tgt" "$(awk '$1 == "VmRSS:" { print $2 }' "$T/rss")"
	put hwm "$tgt" "$(awk '$1 == "VmHWM:" { print $2 }' "$T/rss")"
done

# --- walks of the last copy: warm (median of WARM), then cold
walks "$WARM" 1
note "walks done"
for tgt in $TARGETS; do settle; timed rm "$tgt" rm -rf "$(dir_of "$tgt")/tree"; done

# --- optional: system calls of the daemon per entry / per create
if [ -n "$STRACE" ]; then
	for tgt in $QTARGETS; do
	strace -f -c -e trace=fsync,fdatasync,futex -o "$T/strace.cp" -p "$(pid_of "$tgt")" 2>/dev/null &
	spid=$!
	sleep 1
	cp -a "$TREE" "$(dir_of "$tgt")/tree" || fail "cp -a under strace ($tgt)"
	kill -INT "$spid"; wait "$spid"
	sc() { awk -v c="$2" '$NF == c { print $4 }' "$1"; }
	put strace_fsync_per_entry "$tgt" "$(awk -v a="$(sc "$T/strace.cp" fsync)" -v b="$(sc "$T/strace.cp" fdatasync)" -v n="$ENTRIES" 'BEGIN { printf "%.2f", (a + b) / n }')"
	rm -rf "$(dir_of "$tgt")/tree"
	strace -f -c -e trace=futex -o "$T/strace.cr" -p "$(pid_of "$tgt")" 2>/dev/null &
	spid=$!
	sleep 1
	python3 -c '
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
os.mkdir(d)
for i in range(n):
    fd = os.open(f"{d}/f{i}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, os.urandom(4096))
    os.close(fd)' "$(dir_of "$tgt")/cr" "$NCREATE" || fail "creates under strace ($tgt)"
	kill -INT "$spid"; wait "$spid"
	put strace_futex_per_create "$tgt" "$(awk -v a="$(sc "$T/strace.cr" futex)" -v n="$NCREATE" 'BEGIN { printf "%.1f", a / n }')"
	rm -rf "$(dir_of "$tgt")/cr"
	done
	note "strace done"
fi

# --- serial creates/unlinks and fsync writers: quorumfs bench on each
# target; and the disk's floor, R times each
NFLOOR=1000
head -c $((BIG << 20)) /dev/urandom >"$T/rand" || fail "random data"
for i in $(seq "$R"); do
	for tgt in $(targets_of "$i"); do
		settle
		"$QFS_BIN" bench --raw --only small,fsync --no-drop-caches -n "$NCREATE" -f "$NFSYNC" -w 8 \
			"$(dir_of "$tgt")" >"$T/bench.out" 2>"$T/bench.err" ||
			{ cat "$T/bench.err" >&2; fail "quorumfs bench on $tgt failed"; }
		awk -v t="$tgt" '$2 ~ /^(create|unlink|fsync_1|fsync_n)$/ { print $2, t, $3 }' "$T/bench.out" >>"$RES"
	done
	# the disk's floor: 1000 appending 4 KiB writes, each with fdatasync (O_DSYNC)
	settle
	timed floor native dd if="$T/rand" of="$NAT/floor" bs=4k count="$NFLOOR" oflag=dsync
	rm -f "$NAT/floor"
	# 1, 2, 3 concurrent syncs per round (syncpar.c): a round, the second sync of 3
	for n in 1 2 3; do
		settle
		"$T/syncpar" "$NAT" "$n" "$NFLOOR" >"$T/syncpar.out" || fail "syncpar $n"
		awk -v n="$n" '{ print "syncpar" n, "native", $6 / 1e6; if (n == 3) print "syncpar3_2nd", "native", $10 / 1e6 }' "$T/syncpar.out" >>"$RES"
	done
done
# group commit: proposals and replica log syncs per fsync() of 8 writers
for tgt in $QTARGETS; do
	before=$(stat_sum "$tgt")
	"$QFS_BIN" bench --raw --only fsyncn -f "$NFSYNC" -w 8 "$(dir_of "$tgt")" >/dev/null 2>"$T/bench.err" ||
		{ cat "$T/bench.err" >&2; fail "quorumfs bench --only fsyncn failed ($tgt)"; }
	after=$(stat_sum "$tgt")
	set -- $before $after
	[ "$3" != - ] && put prop_per_fsync8 "$tgt" "$(awk -v a="$3" -v b="$6" -v n=$((8 * NFSYNC)) 'BEGIN { printf "%.2f", (b - a) / n }')"
	[ "$2" != - ] && put sync_per_fsync8 "$tgt" "$(awk -v a="$2" -v b="$5" -v n=$((8 * NFSYNC)) 'BEGIN { printf "%.2f", (b - a) / n }')"
done
note "creates, fsyncs, floor done"

# --- B MiB of random data: dd conv=fsync, then a cold read; R cycles in
# the cycles' orders, each file removed after its read: a single dd moved
# with the memory the machine had used before it (doc/perf.md AFTER 51,
# 52), the median of R does less
for i in $(seq "$R"); do
	for tgt in $(targets_of "$i"); do
		cat "$T/rand" >/dev/null
		settle
		is_q "$tgt" && wb0=$(awk '$1 == "write_bytes:" { print $2 }' "/proc/$(pid_of "$tgt")/io")
		timed ddw "$tgt" dd if="$T/rand" of="$(dir_of "$tgt")/big" bs=1M conv=fsync
		if is_q "$tgt"; then # the daemon's bytes to disk (logs, RocksDB, archive) per byte
			settle
			wb1=$(awk '$1 == "write_bytes:" { print $2 }' "/proc/$(pid_of "$tgt")/io")
			put wamp "$tgt" "$(awk -v a="$wb0" -v b="$wb1" -v n=$((BIG << 20)) 'BEGIN { printf "%.2f", (b - a) / n }')"
			# the first cycle's only: the daemon mounted before the walks
			# (each cold read below remounts)
			[ "$i" = 1 ] && put hwm_dd "$tgt" "$(awk '$1 == "VmHWM:" { printf "%d", $2 / 1024 }' "/proc/$(pid_of "$tgt")/status")"
		fi
	done
	for tgt in $(targets_of "$i"); do
		cold "$tgt"
		timed ddr "$tgt" dd if="$(dir_of "$tgt")/big" of=/dev/null bs=1M
		rm -f "$(dir_of "$tgt")/big"
	done
done
note "dd done"

# --- the table
awk -v entries="$ENTRIES" -v tree="$TREE" -v mb="$TREE_MB" -v r="$R" -v nc="$NCREATE" -v big="$BIG" \
	-v nfloor="$NFLOOR" -v warm="$WARM" -v old="${QFS_OLD_BIN:+1}" '
function med(k, t,    n, i, j, v, x) {
	n = cnt[k, t]
	if (n == 0) return ""
	for (i = 1; i <= n; i++) v[i] = val[k, t, i]
	for (i = 2; i <= n; i++) { x = v[i]; for (j = i - 1; j >= 1 && v[j] > x; j--) v[j + 1] = v[j]; v[j + 1] = x }
	return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}
# least(K, T): the smallest value (the floor: what the disk can do when the
# other work on the machine lets it)
function least(k, t,    i, m) {
	m = val[k, t, 1]
	for (i = 2; i <= cnt[k, t]; i++) if (val[k, t, i] < m) m = val[k, t, i]
	return m
}
function fmt(x, unit) {
	if (x == "") return ""
	if (unit == "s") return sprintf(x < 0.1 ? "%.4f s" : x < 1 ? "%.3f s" : "%.2f s", x)
	if (unit == "/s") return sprintf("%.0f /s", x)
	if (unit == "MiB/s") return sprintf("%.0f MiB/s", x)
	return sprintf("%s %s", x, unit)
}
function ratio(a, b) { return (a == "" || b == "" || b == 0) ? "" : sprintf("%.2f", a / b) }
# row LABEL KEY KIND: KIND s (a time; ratio = time over time: above 1 is slower)
# or rate (ratio = rate over rate: below 1 is slower)
function row(label, key, unit,    n, p, q, o) {
	n = med(key, "native"); p = med(key, "pt"); q = med(key, "qfs"); o = med(key, "old")
	if (old)
		printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", label, fmt(n, unit), fmt(p, unit), fmt(o, unit), fmt(q, unit), ratio(o, p), ratio(q, p), ratio(q, n)
	else
		printf "| %s | %s | %s | %s | %s | %s |\n", label, fmt(n, unit), fmt(p, unit), fmt(q, unit), ratio(q, p), ratio(q, n)
}
# crow LABEL KEY: a counter of the quorumfs mounts (old and new)
function crow(label, key) {
	if (!cnt[key, "qfs"] && !cnt[key, "old"]) return
	if (old) printf "| %s | | | %s | %s | | | |\n", label, med(key, "old"), med(key, "qfs")
	else printf "| %s | | | %s | | |\n", label, med(key, "qfs")
}
{ cnt[$1, $2]++; val[$1, $2, cnt[$1, $2]] = $3 }
END {
	ntg = split("native pt old qfs", tgs, " ")
	for (i = 1; i <= ntg; i++) {
		t = tgs[i]
		for (k = 1; k <= cnt["cp", t]; k++) { cr = val["cp", t, k] + (k <= cnt["rm", t] ? val["rm", t, k] : 0); cnt["cprm", t]++; val["cprm", t, k] = cr }
		# rates from the dd times
		for (k = 1; k <= cnt["ddw", t]; k++) { cnt["ddw_r", t]++; val["ddw_r", t, k] = big / val["ddw", t, k] }
		for (k = 1; k <= cnt["ddr", t]; k++) { cnt["ddr_r", t]++; val["ddr_r", t, k] = big / val["ddr", t, k] }
	}
	if (old) printf "\n| work | native | passthrough_ll | old quorumfs | quorumfs | old / passthrough_ll | quorumfs / passthrough_ll | quorumfs / native |\n|---|--:|--:|--:|--:|--:|--:|--:|\n"
	else printf "\n| work | native | passthrough_ll | quorumfs | quorumfs / passthrough_ll | quorumfs / native |\n|---|--:|--:|--:|--:|--:|\n"
	row(sprintf("cp -a %s (%d entries, %s MB), median of %d", tree, entries, mb, r), "cp", "s")
	row(sprintf("rm -rf of it, median of %d", r), "rm", "s")
	row(sprintf("cp -a + rm -rf, median of %d", r), "cprm", "s")
	row("warm find -ls of the copy, median of " warm, "warm_find", "s")
	row("warm ls -lR", "warm_ls", "s")
	row("warm du -s", "warm_du", "s")
	row("find -ls after remount + drop_caches", "cold_find", "s")
	row("ls -lR after remount + drop_caches", "cold_ls", "s")
	row("du -s after remount + drop_caches", "cold_du", "s")
	row(sprintf("%d serial 4 KiB creates (open+write+close), median of %d", nc, r), "create", "/s")
	row(sprintf("%d serial unlinks", nc), "unlink", "/s")
	row("4 KiB pwrite+fsync, 1 writer", "fsync_1", "/s")
	row("4 KiB pwrite+fsync, 8 writers", "fsync_n", "/s")
	row(sprintf("%d MiB random data, dd bs=1M conv=fsync, median of %d", big, r), "ddw_r", "MiB/s")
	row("its read after remount + drop_caches, median", "ddr_r", "MiB/s")
	floor = least("floor", "native") / nfloor
	printf "| disk: 4 KiB append + fdatasync (dd oflag=dsync, %d; least of %d, median %.3f ms) | %.3f ms | | | | |\n", nfloor, cnt["floor", "native"], med("floor", "native") / nfloor * 1000, floor * 1000
	if (cnt["syncpar3", "native"])
		printf "| disk: 1 / 2 / 3 threads, 4 KiB pwrite + fdatasync each per round, barrier (syncpar.c; least of %d): round; 2nd of 3 done (2-of-3 quorum floor; informative, not a target) | %.3f / %.3f / %.3f ms; %.3f ms | | | | |\n", cnt["syncpar3", "native"], least("syncpar1", "native") * 1000, least("syncpar2", "native") * 1000, least("syncpar3", "native") * 1000, least("syncpar3_2nd", "native") * 1000
	for (k = 1; k <= 2; k++) { t = k == 1 ? "old" : "qfs"; if (cnt["rss", t]) rss[t] = med("rss", t) " / " med("hwm", t) " MiB" }
	if (old) printf "| daemon VmRSS / VmHWM after %d copies of the tree | | | %s | %s | | | |\n", r, rss["old"], rss["qfs"]
	else printf "| daemon VmRSS / VmHWM after %d copies of the tree | | | %s | | |\n", r, rss["qfs"]
	crow("daemon VmHWM after the dd (MiB; mounted before the walks)", "hwm_dd")
	crow("daemon bytes written per byte of the dd (/proc/PID/io, 2 s after; later compactions not counted)", "wamp")
	crow("daemon CPU seconds per cp -a (utime+stime, /proc/PID/stat), median", "cpu_s")
	crow("router gets per entry, cp -a (.quorumfs/stats)", "gets_per_entry")
	crow("replicated txns per entry, cp -a (.quorumfs/stats)", "txn_per_entry")
	crow("cell fsyncs per entry, cp -a (.quorumfs/stats)", "fsync_per_entry")
	crow("cell proposals per entry, cp -a (.quorumfs/stats)", "prop_per_entry")
	crow("cell proposals per fsync(), 8 writers (.quorumfs/stats)", "prop_per_fsync8")
	crow("cell fsyncs per fsync(), 8 writers (.quorumfs/stats)", "sync_per_fsync8")
	crow("fsync+fdatasync calls per entry, cp -a (strace -c)", "strace_fsync_per_entry")
	crow("futex calls per create (strace -c)", "strace_futex_per_create")

	# targets (issue 8), judged for quorumfs (and the old binary)
	if (old) printf "\n| target (issue 8) | bound | old quorumfs | result | quorumfs | result |\n|---|--:|--:|---|--:|---|\n"
	else printf "\n| target (issue 8) | bound | quorumfs | result |\n|---|--:|--:|---|\n"
	target("cp -a <= 2x passthrough_ll", 2 * med("cp", "pt"), "cp", "t", "s", "le")
	target("rm -rf <= 1.5 x (passthrough_ll + entries x floor)", 1.5 * (med("rm", "pt") + entries * floor), "rm", "t", "s", "le")
	target("serial create <= 1.5 x (passthrough_ll op + floor), per op", 1.5 * (1 / med("create", "pt") + floor) * 1000, "create", "ms", "ms", "le")
	target("serial unlink <= 1.5 x (passthrough_ll op + floor), per op", 1.5 * (1 / med("unlink", "pt") + floor) * 1000, "unlink", "ms", "ms", "le")
	target("warm find -ls <= 1.5x native", 1.5 * med("warm_find", "native"), "warm_find", "t", "s", "le")
	target("warm ls -lR <= 1.5x native", 1.5 * med("warm_ls", "native"), "warm_ls", "t", "s", "le")
	target("warm du -s <= 1.5x native", 1.5 * med("warm_du", "native"), "warm_du", "t", "s", "le")
	target("cold find -ls <= 1.5x passthrough_ll", 1.5 * med("cold_find", "pt"), "cold_find", "t", "s", "le")
	target("cold ls -lR <= 1.5x passthrough_ll", 1.5 * med("cold_ls", "pt"), "cold_ls", "t", "s", "le")
	target("cold du -s <= 1.5x passthrough_ll", 1.5 * med("cold_du", "pt"), "cold_du", "t", "s", "le")
	target("8 fsync writers >= 1x passthrough_ll", med("fsync_n", "pt"), "fsync_n", "t", "/s", "ge")
	target(sprintf("%d MiB dd conv=fsync >= 0.3x passthrough_ll", big), 0.3 * med("ddw_r", "pt"), "ddw_r", "t", "MiB/s", "ge")
	target("cold read of it >= 1x passthrough_ll", med("ddr_r", "pt"), "ddr_r", "t", "MiB/s", "ge")
	target("daemon RSS (VmHWM, after the copies and after the dd) <= 256 MiB", 256, "hwm", "hwm", "MiB", "le")
	if (cnt["wamp", "qfs"]) target("bytes written per byte of user data <= 4", 4, "wamp", "t", "x", "le")
}
# got KEY T HOW: the figure judged for target T: its median ("t"), ms per
# op from a rate ("ms"), or the larger VmHWM of the two measurements ("hwm")
function got(key, t, how,    v, w) {
	if (how == "ms") { v = med(key, t); return v == "" || v == 0 ? "" : 1000 / v }
	if (how == "hwm") { v = med("hwm", t); w = med("hwm_dd", t); return w > v ? w : v }
	return med(key, t)
}
function verdict(bound, x, how) {
	if (x == "") return ""
	return (how == "le" ? x <= bound : x >= bound) ? "PASS" : "MISS"
}
function target(label, bound, key, kind, unit, how,    q, o) {
	q = got(key, "qfs", kind)
	if (old) {
		o = got(key, "old", kind)
		printf "| %s | %s %s | %s | %s | %s | %s |\n", label, (how == "le" ? "<=" : ">="), fmtb(bound, unit), fmtb(o, unit), verdict(bound, o, how), fmtb(q, unit), verdict(bound, q, how)
	} else
		printf "| %s | %s %s | %s | %s |\n", label, (how == "le" ? "<=" : ">="), fmtb(bound, unit), fmtb(q, unit), verdict(bound, q, how)
}
function fmtb(x, unit) {
	if (x == "") return ""
	if (unit == "s") return sprintf(x < 0.1 ? "%.4f s" : "%.2f s", x)
	if (unit == "ms") return sprintf("%.3f ms", x)
	if (unit == "x") return sprintf("%.2f", x)
	return sprintf("%.0f %s", x, unit)
}' "$RES"
echo "# load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
exit 0
