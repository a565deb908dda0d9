# tests/lib/passthrough.sh - libfuse's passthrough_ll beside quorumfs, and
# the measurement helpers, for the benchmarks that compare the two
# (tests/bench/reads.sh, tests/bench/vs_passthrough.sh).
#
# Source it after tests/lib/common.sh.  Its functions use T (qfs_setup),
# EXAMPLES (the directory of libfuse's passthrough_ll.c), PTSRC (its source
# directory), PTMNT (its mountpoint) and RES (the results file).
# pt_build compiles passthrough_ll into $T/pt (its code is not part of
# quorumfs); pt_start mounts it in the background ($PT_PID), pt_stop
# unmounts it (put pt_stop in the EXIT trap).  put and timed append
# "KEY TARGET VALUE" lines to RES; drop empties the page cache; walks
# times the tree walks (it also uses the caller's TARGETS, dir_of and cold).
# old_start mounts a second quorumfs, $QFS_OLD_BIN (a baseline build), over
# OLDDATA at OLDMNT in the background ($OLD_PID); old_stop unmounts it (put
# it in the EXIT trap too).

PT_PID=
pt_build() {
	mkdir -p "$T/pt" || fail "mkdir $T/pt"
	cp "$EXAMPLES/passthrough_ll.c" "$EXAMPLES/passthrough_helpers.h" "$T/pt/" 2>/dev/null ||
		cp "$EXAMPLES/passthrough_ll.c" "$T/pt/" || fail "copy passthrough_ll.c"
	# shellcheck disable=SC2046
	gcc -O2 -Wall -o "$T/pt/passthrough_ll" "$T/pt/passthrough_ll.c" $(pkg-config --cflags --libs fuse3) ||
		fail "could not build passthrough_ll"
}
pt_start() {
	"$T/pt/passthrough_ll" -f -o source="$PTSRC" "$PTMNT" >>"$T/pt.out" 2>&1 &
	PT_PID=$!
	for _ in $(seq 200); do
		mountpoint -q "$PTMNT" && return 0
		kill -0 "$PT_PID" 2>/dev/null || { cat "$T/pt.out" >&2; fail "passthrough_ll exited"; }
		sleep 0.05
	done
	fail "passthrough_ll did not mount"
}
pt_stop() {
	if [ -n "$PT_PID" ]; then
		fusermount3 -u "$PTMNT" 2>/dev/null || umount -l "$PTMNT" 2>/dev/null
		wait "$PT_PID" 2>/dev/null
		PT_PID=
	fi
}
# drop: write back, then empty the page cache (root)
drop() { sync; qfs_drop_caches 3; }
# put KEY TARGET VALUE: one measurement
put() { echo "$1 $2 $3" >>"$RES"; }
# timed KEY TARGET cmd...: run cmd (output discarded), record its seconds
timed() {
	local key=$1 tgt=$2 t0 t1
	shift 2
	t0=$EPOCHREALTIME
	"$@" >/dev/null 2>"$T/cmd.err" || { cat "$T/cmd.err" >&2; fail "$key on $tgt: $* failed"; }
	t1=$EPOCHREALTIME
	put "$key" "$tgt" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')"
}
# the tree walks, DIR as argument
walk_find() { find "$1" -ls; }
walk_ls() { ls -lR "$1"; }
walk_du() { du -s "$1"; }
# walks WARM COLD: per target of TARGETS, two unmeasured walks of each
# kind of its tree (dir_of TARGET/tree), then WARM timed rounds (warm_find,
# warm_ls, warm_du), each round over every target, in the caller's
# targets_of ROUND order when it has one (else TARGETS); then COLD rounds
# of, per kind and target, cold TARGET (the caller's remount + drop) and a
# timed walk (cold_find ...).
walks() {
	local warm=$1 rounds=$2 tgt d w r
	for tgt in $TARGETS; do
		d=$(dir_of "$tgt")/tree
		for _ in 1 2; do for w in find ls du; do walk_$w "$d" >/dev/null; done; done
	done
	for r in $(seq "$warm"); do
		for tgt in $(if declare -F targets_of >/dev/null; then targets_of "$r"; else echo "$TARGETS"; fi); do
			d=$(dir_of "$tgt")/tree
			for w in find ls du; do timed "warm_$w" "$tgt" "walk_$w" "$d"; done
		done
	done
	for _ in $(seq "$rounds"); do
		for w in find ls du; do
			for tgt in $TARGETS; do
				cold "$tgt"
				timed "cold_$w" "$tgt" "walk_$w" "$(dir_of "$tgt")/tree"
			done
		done
	done
}

# wait_mnt PID DIR: until DIR is a mountpoint (fail if PID exits first)
wait_mnt() {
	for _ in $(seq 200); do
		mountpoint -q "$2" && return 0
		kill -0 "$1" 2>/dev/null || fail "mount of $2 exited"
		sleep 0.05
	done
	fail "$2 did not mount"
}
OLD_PID=
old_start() {
	"$QFS_OLD_BIN" mount -f "$OLDDATA" "$OLDMNT" >>"$T/old.out" 2>&1 &
	OLD_PID=$!
	wait_mnt "$OLD_PID" "$OLDMNT"
	until [ -e "$OLDMNT/.quorumfs/status" ]; do sleep 0.05; done
}
old_stop() {
	if [ -n "$OLD_PID" ]; then
		fusermount3 -u "$OLDMNT" 2>/dev/null || umount -l "$OLDMNT" 2>/dev/null
		wait "$OLD_PID" 2>/dev/null
		OLD_PID=
	fi
}
