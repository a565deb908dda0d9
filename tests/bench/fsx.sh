#!/bin/bash
# tests/bench/fsx.sh - the data-integrity checkers of xfstests, fsx and
# fsstress, against a real default mount (3 replicas), as doc/fs.md "Data
# integrity (fsx, fsstress)" records them.
#
# Usage (as root, from a build directory):
#   tests/bench/fsx.sh [-n OPS] [-s SEEDS] FSX [FSSTRESS]
#   FSX       an fsx binary (xfstests ltp/fsx.c), built outside this tree
#   FSSTRESS  an fsstress binary (ltp/fsstress.c); without it no fsstress
#   -n OPS    fsx operations per run (default 20000; the big-file runs do
#             OPS/4, the remount halves OPS each)
#   -s SEEDS  seeds of the default-mix runs (default "1 2 3")
#   QFS_BIN   the quorumfs binary (default ./fs/quorumfs)
# Not a test (not in make check): it fetches nothing, and builds nothing;
# doc/fs.md says how the binaries were built.  Runs, each on a file of its
# own in a table: the default op mix per seed (reads, writes, truncates,
# mmap reads/writes, fallocate, punch hole, copy_file_range; fsx turns off
# what the mount answers EOPNOTSUPP), no mmap (-R -W), O_DIRECT aligned and
# not, large files (-l 4M/64M, over chunk and inline bounds), close+open
# (-c), flush+invalidate (-f), O_SYNC-like (-y), post-EOF pollution (-e),
# AIO (-A), fsx lite (-L), four at once, across a clean remount and across
# a kill -9 after close (md5 before, cold, after; then fsx -k goes on from
# the stored file), fsx as nobody in a directory it owns, fsstress -p 4
# -n 2000 as root and -n 500 as nobody.  Prints one markdown table row per
# run; exits 1 if any run failed (its .fsxlog is kept, path printed).
OPS=20000
SEEDS="1 2 3"
while getopts n:s:h opt; do
	case $opt in
	n) OPS=$OPTARG ;;
	s) SEEDS=$OPTARG ;;
	*) sed -n '2,27s/^# \{0,1\}//p' "$0"; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { sed -n '2,27s/^# \{0,1\}//p' "$0"; exit 2; }
FSX=$(readlink -f "$1")
FSSTRESS=${2:+$(readlink -f "$2")}
[ -x "$FSX" ] || { echo "not an executable: $1" >&2; exit 2; }
: "${QFS_BIN:=$(pwd)/fs/quorumfs}"
export QFS_BIN
. "$(dirname "$0")/../lib/common.sh"
qfs_setup
KEEP=$(mktemp -d /tmp/qfs-fsx-logs.XXXXXX)
chmod 777 "$KEEP"
mkdir "$MNT/t" || fail "mkdir table"
FAILED=0

row() { printf '| %s | %s | %s | %s |\n' "$@"; }
# what fsx turns off on this mount (it probes each call once at start)
"$FSX" -N 1 -P "$KEEP" "$MNT/t/probe" 2>&1 | grep -E 'not support|disabling' | sed 's/^/# /'
echo "| run | fsx/fsstress arguments | result | s |"
echo "|---|---|---|---:|"

# fsxrun NAME ARGS...: fsx ARGS on $MNT/t/NAME, one row
fsxrun() {
	local name=$1 t0=$SECONDS rc
	shift
	"$FSX" -q "$@" -P "$KEEP" "$MNT/t/$name" >"$KEEP/$name.out" 2>&1
	rc=$?
	finish "$name" "$*" $rc $((SECONDS - t0))
}
finish() {
	local res
	res=$(tail -n 1 "$KEEP/$1.out")
	if [ "$3" -ne 0 ]; then
		FAILED=1
		res="FAILED rc=$3: $res (log $KEEP/$1.out, $KEEP/$1.fsxlog)"
	fi
	row "$1" "$2" "$res" "$4"
}

for s in $SEEDS; do
	fsxrun "default$s" -N "$OPS" -S "$s"
done
fsxrun nommap -N "$OPS" -S 11 -R -W
fsxrun direct -N "$OPS" -S 12 -Z -R -W -r 4096 -w 4096 -t 4096
fsxrun direct-unaligned -N "$OPS" -S 13 -Z -R -W
fsxrun big -N $((OPS / 4)) -S 14 -l 4194304 -o 1048576
fsxrun huge -N $((OPS / 8)) -S 15 -l 67108864 -o 4194304
fsxrun closeopen -N "$OPS" -S 16 -c 10
fsxrun flush -N "$OPS" -S 17 -f
fsxrun sync -N "$OPS" -S 18 -y
fsxrun pollute -N "$OPS" -S 19 -e 1
fsxrun aio -N "$OPS" -S 20 -A
fsxrun plain -N "$OPS" -S 21 -F -H -E
head -c 262144 /dev/urandom >"$MNT/t/lite"
fsxrun lite -N "$OPS" -S 22 -L
t0=$SECONDS
for s in 31 32 33 34; do
	"$FSX" -q -N "$OPS" -S $s -c 50 -l 1048576 -o 262144 -P "$KEEP" "$MNT/t/par$s" >"$KEEP/par$s.out" 2>&1 &
done
for s in 31 32 33 34; do
	wait -n
	rc=$?
	[ $rc -eq 0 ] || { FAILED=1; row par "four fsx at once" "FAILED rc=$rc (logs $KEEP/par*.out)" 0; }
done
row par "4 x -N $OPS -S 31..34 -c 50 -l 1M -o 256K at once" "$(tail -qn 1 "$KEEP"/par3?.out | sort | uniq -c | tr -s ' ' | sed 's/^ //')" $((SECONDS - t0))

# remount MODE SEED: a file written by fsx, its md5 warm and cold, then a
# clean unmount or a kill -9 (fsx closed it: durable), a mount, its md5,
# and fsx -k goes on checking from the stored content
remount() {
	local f="$MNT/t/rm$2" before cold after t0=$SECONDS
	"$FSX" -q -N $((OPS / 2)) -S "$2" -P "$KEEP" "$f" >"$KEEP/rm$2.out" 2>&1 ||
		{ finish "rm$2" "-N $((OPS / 2)) -S $2 (before the $1 remount)" 1 $((SECONDS - t0)); return; }
	before=$(md5sum <"$f")
	echo 3 >/proc/sys/vm/drop_caches
	cold=$(md5sum <"$f")
	if [ "$1" = clean ]; then qfs_umount; else qfs_kill9; fi
	qfs_mount
	after=$(md5sum <"$f")
	if [ "$before" != "$cold" ] || [ "$before" != "$after" ]; then
		FAILED=1
		row "remount-$1" "-S $2" "FAILED md5 warm ${before%% *} cold ${cold%% *} after ${after%% *}" 0
		return
	fi
	"$FSX" -q -k -N $((OPS / 2)) -S $(($2 + 1)) -P "$KEEP" "$f" >"$KEEP/rm$2k.out" 2>&1
	finish "rm$2k" "-N $((OPS / 2)) -S $2; $1 remount, md5 same; -k -N $((OPS / 2)) -S $(($2 + 1))" $? \
		$((SECONDS - t0))
}
remount clean 41
remount kill9 43

mkdir "$MNT/t/nobody" && chown nobody "$MNT/t/nobody" || fail "mkdir nobody"
t0=$SECONDS
(cd "$KEEP" && setpriv --reuid=nobody --regid=nogroup --clear-groups \
	"$FSX" -q -N "$OPS" -S 51 -P "$KEEP" "$MNT/t/nobody/f") >"$KEEP/nobody.out" 2>&1
finish nobody "as nobody: -N $OPS -S 51" $? $((SECONDS - t0))

if [ -n "$FSSTRESS" ]; then
	for s in 1 2; do
		t0=$SECONDS
		mkdir "$MNT/t/ss$s"
		"$FSSTRESS" -d "$MNT/t/ss$s" -p 4 -n 2000 -s $s >"$KEEP/ss$s.out" 2>&1
		rc=$?
		echo "exit $rc" >>"$KEEP/ss$s.out"
		finish "ss$s" "fsstress -p 4 -n 2000 -s $s" $rc $((SECONDS - t0))
	done
	t0=$SECONDS
	(cd "$KEEP" && setpriv --reuid=nobody --regid=nogroup --clear-groups \
		"$FSSTRESS" -d "$MNT/t/nobody/ss" -p 4 -n 500 -s 3) >"$KEEP/ssn.out" 2>&1
	rc=$?
	echo "exit $rc" >>"$KEEP/ssn.out"
	finish ssn "as nobody: fsstress -p 4 -n 500 -s 3" $rc $((SECONDS - t0))
fi

# the daemon must have said nothing alarming
if grep -E 'ERROR: [A-Za-z]+Sanitizer|runtime error:|Assertion .* failed| (ERR|WARN) ' "$T/daemon.out" |
	grep -v 'unsupported rename flags' | head -n 20 | grep .; then
	FAILED=1
	echo "FAIL: the daemon logged the errors above" >&2
fi
[ $FAILED -eq 0 ] && rm -rf "$KEEP"
exit $FAILED
