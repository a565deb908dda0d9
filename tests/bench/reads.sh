#!/bin/bash
# tests/bench/reads.sh - the read path of issue 8 alone: cold sequential
# read of a large file, warm and cold tree walks, the daemon's peak RSS,
# on native ext4, libfuse's passthrough_ll and quorumfs, in one run.
#
# Usage (as root, from a build directory):
#   tests/bench/reads.sh [-r RUNS] [-b MIB] [-t TREE] [-W]
#   -r RUNS  cold reads and cold walks per target (median; default 3)
#   -b MIB   size of the file read (default 256)
#   -t TREE  the tree copied and walked (default /usr/include)
#   -W       no walks (only the file)
#   QFS_BIN      the quorumfs binary (default ./fs/quorumfs)
#   QFS_OLD_BIN  a second quorumfs binary measured in the same run (target
#                "old"), for a before/after beside passthrough_ll; old and
#                new swap places in the cold reads every other run
# Not a test (not in make check).  Each target gets the same random file
# (dd bs=1M conv=fsync) and a cp -a of TREE; then, per run and per target,
# interleaved: a remount (quorumfs, passthrough_ll) + drop_caches and a
# dd bs=1M read of the file; the walks find -ls, ls -lR, du -s warm (after
# one unmeasured walk) and cold (remount + drop_caches before each).
# Prints one "key target value" line per median, then a markdown table
# with the ratios to passthrough_ll and native, each daemon's CPU time
# (utime + stime) per GiB of cold read (load-independent, unlike the
# MiB/s), and each quorumfs daemon's VmHWM after its writes and after its
# cold reads.
R=3
BIG=256
TREE=/usr/include
WALKS=1
while getopts r:b:t:Wh opt; do
	case $opt in
	r) R=$OPTARG ;;
	b) BIG=$OPTARG ;;
	t) TREE=$OPTARG ;;
	W) WALKS= ;;
	*) sed -n '2,25s/^# \{0,1\}//p' "$0"; exit 2 ;;
	esac
done
TREE=$(cd "$TREE" && pwd) || exit 2
: "${QFS_BIN:=$(pwd)/fs/quorumfs}"
export QFS_BIN

. "${QFS_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"
. "$QFS_SRCDIR/tests/lib/passthrough.sh"
set -o pipefail
qfs_require gcc pkg-config awk dd find du ls
EXAMPLES=/usr/share/doc/libfuse3-dev/examples
[ -f "$EXAMPLES/passthrough_ll.c" ] || skip "$EXAMPLES/passthrough_ll.c is missing (libfuse3-dev)"
[ -w /proc/sys/vm/drop_caches ] || skip "needs root: /proc/sys/vm/drop_caches is not writable"

qfs_setup
NEW_BIN=$QFS_BIN
NEW_PID=$QFS_PID
NAT=$T/native PTSRC=$T/ptsrc PTMNT=$T/ptmnt
OLDDATA=$T/olddata OLDMNT=$T/oldmnt
mkdir -p "$NAT" "$PTSRC" "$PTMNT" "$T/pt" "$OLDDATA" "$OLDMNT" || fail "mkdir"
trap 'pt_stop; old_stop; qfs_cleanup' EXIT
pt_build
pt_start
TARGETS="native pt qfs"
if [ -n "${QFS_OLD_BIN:-}" ]; then
	old_start
	TARGETS="native pt old qfs"
fi
dir_of() { case $1 in native) echo "$NAT" ;; pt) echo "$PTMNT" ;; qfs) echo "$MNT/b" ;; old) echo "$OLDMNT/b" ;; esac; }
pid_of() { case $1 in qfs) echo "$QFS_PID" ;; old) echo "$OLD_PID" ;; esac; }
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
# ticks TARGET: utime + stime of its daemon (clock ticks; none for native)
ticks() { case $1 in pt) awk '{ print $14 + $15 }' "/proc/$PT_PID/stat" ;; qfs | old) awk '{ print $14 + $15 }' "/proc/$(pid_of "$1")/stat" ;; esac; }
hwm() { awk '/^VmHWM:/ { printf "%d", $2 / 1024 }' "/proc/$(pid_of "$1")/status"; }

echo "# reads.sh: $BIG MiB file${WALKS:+, tree $TREE ($(find "$TREE" | wc -l) entries)}, $R runs; $(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# quorumfs $QFS_BIN at $(git -C "$QFS_SRCDIR" rev-parse --short HEAD 2>/dev/null || echo '?')${QFS_OLD_BIN:+; old: ${QFS_OLD_BIN:-}}"
head -c $((BIG << 20)) /dev/urandom >"$T/src" || fail "random source"
for tgt in $TARGETS; do
	case $tgt in qfs) mkdir "$MNT/b" ;; old) mkdir "$OLDMNT/b" ;; esac
	d=$(dir_of "$tgt")
	dd if="$T/src" of="$d/big" bs=1M conv=fsync status=none || fail "dd to $tgt"
	[ -n "$WALKS" ] && { cp -a "$TREE" "$d/tree" || fail "cp -a to $tgt"; }
	case $tgt in qfs | old) put hwm_write "$tgt" "$(hwm "$tgt")" ;; esac
	sync
done
# order RUN: the targets of that run; with an old binary, old and new swap
# places every other run (the one read second is often slower on one disk)
order() { if [ -n "${QFS_OLD_BIN:-}" ] && [ $(($1 % 2)) -eq 0 ]; then echo "native pt qfs old"; else echo "$TARGETS"; fi; }
for run in $(seq "$R"); do
	for tgt in $(order "$run"); do
		cold "$tgt"
		c0=$(ticks "$tgt")
		t0=$EPOCHREALTIME
		dd if="$(dir_of "$tgt")/big" of=/dev/null bs=1M status=none || fail "read on $tgt"
		t1=$EPOCHREALTIME
		c1=$(ticks "$tgt")
		put cold_read "$tgt" "$(awk -v a="$t0" -v b="$t1" -v m="$BIG" 'BEGIN { printf "%.1f", m / (b - a) }')"
		[ -n "$c0" ] && put read_cpu "$tgt" "$(awk -v a="$c0" -v b="$c1" -v m="$BIG" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.3f", (b - a) / hz * 1024 / m }')"
		cmp -s "$T/src" "$(dir_of "$tgt")/big" || fail "$tgt: the file read back differs"
		case $tgt in qfs | old) put hwm_read "$tgt" "$(hwm "$tgt")" ;; esac
	done
done
if [ -n "$WALKS" ]; then
	walks "$R" "$R"
fi
awk -v targets="$TARGETS" '
	{ v[$1 " " $2] = v[$1 " " $2] " " $3 }
	function med(k, t,   n, a, i, j, x) {
		n = split(v[k " " t], a, " ")
		if (n == 0) return ""
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { x = a[i]; a[i] = a[j]; a[j] = x }
		return a[int((n + 1) / 2)]
	}
	END {
		nt = split(targets, T, " ")
		split("cold_read read_cpu hwm_write hwm_read warm_find warm_ls warm_du cold_find cold_ls cold_du", K, " ")
		for (i = 1; i <= 10; i++) for (j = 1; j <= nt; j++) { m = med(K[i], T[j]); if (m != "") print K[i], T[j], m }
		printf "\n| work | unit |"
		for (j = 1; j <= nt; j++) printf " %s |", T[j]
		for (j = 1; j <= nt; j++) if (T[j] == "qfs" || T[j] == "old") printf " %s / pt | %s / native |", T[j], T[j]
		printf "\n|---|---|"
		for (j = 1; j <= nt; j++) printf "--:|"
		for (j = 1; j <= nt; j++) if (T[j] == "qfs" || T[j] == "old") printf "--:|--:|"
		printf "\n"
		for (i = 1; i <= 10; i++) {
			u = K[i] == "cold_read" ? "MiB/s" : K[i] == "read_cpu" ? "daemon CPU s/GiB" : K[i] ~ /^hwm/ ? "MiB" : "s"
			if (med(K[i], "qfs") == "") continue
			printf "| %s | %s |", K[i], u
			for (j = 1; j <= nt; j++) printf " %s |", med(K[i], T[j])
			for (j = 1; j <= nt; j++) if (T[j] == "qfs" || T[j] == "old") {
				q = med(K[i], T[j]); p = med(K[i], "pt"); n = med(K[i], "native")
				printf " %s | %s |", (p > 0 ? sprintf("%.2f", q / p) : ""), (n > 0 ? sprintf("%.2f", q / n) : "")
			}
			printf "\n"
		}
	}' "$RES"
echo "# load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
