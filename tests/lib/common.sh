# tests/lib/common.sh - shared helpers for tests/integration/*.sh.
#
# Source it first thing:   . "$QFS_SRCDIR/tests/lib/common.sh"
# Then call qfs_setup, which makes a private temp dir ($T), a data dir
# ($DATA) and a mountpoint ($MNT), installs an EXIT trap that unmounts with
# fusermount3 -u and removes $T, and mounts quorumfs there ($QFS_PID is the
# daemon).  Exit 77 means "skipped" (automake), always with the reason.
# Failures: call fail "why" (prints, exits 1).

set -u

: "${QFS_BIN:?QFS_BIN must point at the quorumfs binary (make check sets it)}"
: "${QFS_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"

# qgrep ARGS...: grep -q that reads its whole input.  Under set -o pipefail
# "producer | grep -q" fails at random: grep -q exits at the first match
# and a producer still writing dies of SIGPIPE (status 141), so the
# pipeline reports failure although the line was there.
qgrep() { grep "$@" >/dev/null; }
skip() { echo "SKIP: $*" >&2; exit 77; }
# fail WHY: print it with the daemon's output (from its first sanitizer or
# assertion report, else its tail) and the log, detach a dead mount, exit 1.
fail() {
	echo "FAIL: $*" >&2
	if [ -n "${T:-}" ] && [ -s "$T/daemon.out" ]; then
		local at
		at=$(grep -n -m1 -E 'ERROR: [A-Za-z]+Sanitizer|runtime error:|Assertion .* failed' "$T/daemon.out" | cut -d: -f1)
		if [ -n "$at" ]; then
			echo "--- the daemon's output from its first sanitizer/assertion report" >&2
			tail -n +"$at" "$T/daemon.out" | head -n 80 >&2
		else
			echo "--- tail of the daemon's output" >&2
			tail -n 40 "$T/daemon.out" >&2
		fi
		: >"$T/daemon.out.shown"
	fi
	[ -n "${DATA:-}" ] && [ -f "$DATA/quorumfs.log" ] && tail -n 30 "$DATA/quorumfs.log" >&2
	# a crashed daemon leaves a dead mount that mountpoint(1) does not
	# recognise, so the cleanup would not unmount it: detach it here
	if [ -n "${QFS_PID:-}" ] && ! kill -0 "$QFS_PID" 2>/dev/null; then
		fusermount3 -uz "$MNT" 2>/dev/null
	fi
	exit 1
}

# watchdog SECONDS: after SECONDS, kill -9 the daemon (its PID in
# $T/daemon.pid) and TERM this script, so a hang becomes a failure.
watchdog() {
	local limit=$1 parent=$$
	(
		for _ in $(seq "$limit"); do
			sleep 1
			kill -0 "$parent" 2>/dev/null || exit 0
		done
		echo "FAIL: watchdog: test still running after $limit s, killing the daemon" >&2
		[ -f "$T/daemon.pid" ] && kill -9 "$(cat "$T/daemon.pid")" 2>/dev/null
		kill -TERM "$parent" 2>/dev/null
	) &
}

# qfs_flip_byte FILE POS MASK: xor the byte at offset POS of FILE (counted
# from the end if POS < 0) with MASK, in place.
qfs_flip_byte() {
	python3 - "$1" "$2" "$3" <<'PY'
import os, sys
p, pos, mask = sys.argv[1], int(sys.argv[2]), int(sys.argv[3], 0)
if pos < 0:
    pos += os.path.getsize(p)
with open(p, "r+b") as f:
    f.seek(pos)
    b = f.read(1)
    f.seek(pos)
    f.write(bytes([b[0] ^ mask]))
PY
}

# mount_again [args]: qfs_mount and record the PID for the watchdog.
mount_again() {
	qfs_mount "$@"
	echo "$QFS_PID" >"$T/daemon.pid"
}
note() { echo "# $*"; }

# The kernel's dentry and inode caches are one for every mount: a
# drop_caches in one test makes the kernel forget the entries of the mounts
# of the tests running beside it (make check runs CHECK_JOBS at once over
# both builds), which then ask their daemon again.  Tests that count what
# the kernel's caches spare the daemon (rmtree.sh) run whole under
# qfs_kcache_hold, a shared lock on QFS_KCACHE_LOCK; tests that drop caches
# do it with qfs_drop_caches [N], under the same lock taken exclusive, so a
# drop waits for those tests to end (the lock is never held while waiting
# for anything else; a test that holds it must not drop caches: it would
# wait for itself).  Reclaim under real memory pressure is not covered.
QFS_KCACHE_LOCK=${TMPDIR:-/tmp}/quorumfs-tests.kcache.lock
qfs_drop_caches() {
	flock -x "$QFS_KCACHE_LOCK" sh -c "echo ${1:-3} >/proc/sys/vm/drop_caches" 2>/dev/null
}
# qfs_kcache_hold "$@": first thing after sourcing this file; runs the test
# again under flock -s (which holds the lock, closed in the test itself, so
# no daemon it starts keeps it after the test).
qfs_kcache_hold() {
	[ "${QFS_KCACHE_HELD:-}" = 1 ] && return 0
	QFS_KCACHE_HELD=1 exec flock -s -o "$QFS_KCACHE_LOCK" bash "$0" "$@"
}

# qfs_small_tmpfs SIZE: after qfs_umount, a tmpfs of SIZE (e.g. 384m) on
# $T/small becomes the data directory's disk: sets SMALL and DATA
# ($SMALL/data), unmounted by qfs_cleanup; skips (77) when a tmpfs cannot
# be mounted.  The full-disk tests (enospc*.sh) fill it.
qfs_small_tmpfs() {
	SMALL=$T/small
	mkdir "$SMALL" || fail "mkdir $SMALL"
	mount -t tmpfs -o "size=$1,mode=755" tmpfs "$SMALL" 2>"$T/mount.err" ||
		skip "cannot mount a tmpfs: $(cat "$T/mount.err")"
	QFS_EXTRA_UMOUNTS=$SMALL
	DATA=$SMALL/data
}

qfs_require() {
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || skip "$c is not installed"
	done
}

# qfs_reap PID: the daemon PID exits by itself after its unmount; wait for
# it up to 5 s, then kill -9 it.
qfs_reap() {
	for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
	kill -9 "$1" 2>/dev/null || true
}

# qfs_sanitizer_found FILE...: print every sanitizer report in the FILEs
# (missing ones are passed over), then "FAIL: sanitizer report above"; true
# if there was one.  For tests whose daemons log to files of their own.
qfs_sanitizer_found() {
	local f found=1
	for f in "$@"; do
		[ -f "$f" ] || continue
		grep -E -A40 'ERROR: [A-Za-z]+Sanitizer|runtime error:' "$f" >&2 && found=0
	done
	[ $found -eq 0 ] || return 1
	echo "FAIL: sanitizer report above" >&2
}

qfs_cleanup() {
	local rc=$?
	if [ $rc -ne 0 ] && [ $rc -ne 77 ] && [ -n "${T:-}" ] && [ -s "$T/daemon.out" ] &&
		[ ! -e "$T/daemon.out.shown" ]; then
		echo "--- daemon output ($T/daemon.out, last 40 lines)" >&2
		tail -n 40 "$T/daemon.out" >&2
	fi
	if [ -n "${MNT:-}" ]; then
		# also a dead mount (crashed daemon), which mountpoint -q does not see
		fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT" 2>/dev/null ||
			umount -l "$MNT" 2>/dev/null || true
	fi
	[ -n "${QFS_PID:-}" ] && qfs_reap "$QFS_PID"
	for m in ${QFS_EXTRA_UMOUNTS:-}; do umount "$m" 2>/dev/null || true; done
	[ -n "${T:-}" ] && rm -rf "$T"
	exit $rc
}

# qfs_mount [extra args...]: mount $DATA on $MNT in the foreground process
# group (run in background with -f so we know the PID), wait until mounted
# (60 s at most: the mount opens three stores and replays their logs, after
# a kill -9 too, which the sanitizer build on a loaded 2-core machine runs
# several times slower; the bound only turns a hang into a failure).
qfs_mount() {
	local end=$((SECONDS + 60))
	"$QFS_BIN" mount -f "$@" "$DATA" "$MNT" >>"$T/daemon.out" 2>&1 &
	QFS_PID=$!
	while :; do
		if mountpoint -q "$MNT" 2>/dev/null && [ -e "$MNT/.quorumfs/status" ]; then
			return 0
		fi
		kill -0 "$QFS_PID" 2>/dev/null || { cat "$T/daemon.out" >&2; fail "quorumfs exited during mount"; }
		[ $SECONDS -lt $end ] || break
		sleep 0.05
	done
	cat "$T/daemon.out" >&2
	fail "mount did not appear within 60 s"
}

# qfs_umount: clean unmount, wait for the daemon to exit 0.
qfs_umount() {
	fusermount3 -u "$MNT" || fail "fusermount3 -u failed"
	wait "$QFS_PID"; local rc=$?
	QFS_PID=
	[ $rc -eq 0 ] || fail "quorumfs exited with $rc after unmount"
}

# qfs_kill9: power-off the daemon; lazy-unmount the dead mount.
qfs_kill9() {
	kill -9 "$QFS_PID" 2>/dev/null
	wait "$QFS_PID" 2>/dev/null
	QFS_PID=
	fusermount3 -uz "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true
}

# qfs_old_release REV FROM: set OLD to a quorumfs binary built from commit
# REV (FROM names the file that chose it, for the log), building it into
# $T/prev on first use.  Builds are kept in $QFS_UPGRADE_CACHE (default
# tests/upgrade of the build tree of $QFS_BIN; contrib/test-all.sh points
# both of its builds at build/'s), so each release builds once.  Skips the
# test when REV is not in the history or does not build here.
qfs_old_release() {
	local cache
	git -C "$QFS_SRCDIR" rev-parse --verify -q "$1^{commit}" >/dev/null 2>&1 ||
		skip "git history with commit $1 ($2) is not available in $QFS_SRCDIR"
	cache=${QFS_UPGRADE_CACHE:-$(cd "$(dirname "$QFS_BIN")/.." && pwd)/tests/upgrade}
	OLD=$cache/quorumfs-$1
	[ -x "$OLD" ] && return 0
	# one build of a release at a time: contrib/test-all.sh runs build/'s
	# and build-san/'s tests side by side; the second waits, then takes it
	mkdir -p "$cache"
	exec {_qfs_lk}>"$OLD.lock" && flock "$_qfs_lk" || fail "cannot lock $OLD.lock"
	[ -x "$OLD" ] && { exec {_qfs_lk}>&-; return 0; }
	note "[${SECONDS}s] building $1 ($2) in $T/prev"
	mkdir -p "$T/prev"
	git -C "$QFS_SRCDIR" archive "$1" | tar -x -C "$T/prev" || skip "git archive $1 failed"
	# -O0: the old binary only has to speak its formats and protocol for a
	# few seconds; unoptimized, its compile took 24 s instead of 75 s (of
	# 125 s with autoreconf and configure) on a loaded 2-vCPU machine
	(cd "$T/prev" && autoreconf -fi && mkdir build && cd build && ../configure CFLAGS='-g -O0' &&
		make -j2 fs/quorumfs) >"$T/prev.log" 2>&1 ||
		{ tail -n 20 "$T/prev.log" >&2; skip "release $1 does not build here (log above)"; }
	cp "$T/prev/build/fs/quorumfs" "$OLD.tmp" && mv "$OLD.tmp" "$OLD" || fail "cannot cache $OLD"
	exec {_qfs_lk}>&-
	rm -rf "$T/prev"
}

# qfs_tmp [NAME]: a private temp dir $T (mode 755, named NAME.XXXXXX,
# default qfs-test) holding the data directory $DATA and the mountpoint
# $MNT, both created; the EXIT trap qfs_cleanup unmounts and removes it.
qfs_tmp() {
	T=$(mktemp -d "${TMPDIR:-/tmp}/${1:-qfs-test}.XXXXXX")
	chmod 755 "$T"
	DATA=$T/data
	MNT=$T/mnt
	mkdir -p "$DATA" "$MNT"
	trap qfs_cleanup EXIT
	trap 'exit 1' INT TERM
}

qfs_setup() {
	[ "$(id -u)" -eq 0 ] || skip "integration tests need root (FUSE allow_other, chown)"
	[ -c /dev/fuse ] || skip "/dev/fuse is missing"
	qfs_require fusermount3 mountpoint
	qfs_tmp
	qfs_mount "$@"
}

# expect_errno ERRNAME cmd...: run a python one-liner style check.  Most
# errno checks live in tests/integration/*.py driven by python3.

# log_mark: remember how much log there is ($T/daemon.out and
# $DATA/quorumfs.log); log_since: print what was logged after.
log_mark() {
	LOG_OUT_AT=$(stat -c %s "$T/daemon.out" 2>/dev/null || echo 0)
	LOG_FILE_AT=$(stat -c %s "$DATA/quorumfs.log" 2>/dev/null || echo 0)
}
log_since() {
	[ -f "$T/daemon.out" ] && tail -c +$((LOG_OUT_AT + 1)) "$T/daemon.out"
	[ -f "$DATA/quorumfs.log" ] && tail -c +$((LOG_FILE_AT + 1)) "$DATA/quorumfs.log"
	true
}

# first_seg NODE GROUP: the lowest segment name (first LSN, 16 hex) in that
# node's WAL directory of GROUP, or "none"
first_seg() {
	local s
	s=$(ls "$DATA/nodes/n$1/wal/$2" 2>/dev/null | grep -E '^[0-9a-f]{16}\.wal$' | sort | head -1)
	echo "${s%.wal}" | sed 's/^$/none/'
}
# seg1_released GROUP: true if every node (1-3) has released the log
# segment that starts at LSN 1 of GROUP, keeping a later one
seg1_released() {
	local n s
	for n in 1 2 3; do
		s=$(first_seg "$n" "$1")
		{ [ "$s" != none ] && [ $((16#$s)) -gt 1 ]; } || return 1
	done
}

# --- replication helpers (tests/integration/replicas.sh, powerfail.sh,
# tests/bench/repl_bench.sh); status format: doc/cell.md.

# qfs_group_of TABLE: the 16-hex group id of a table (its directory's inode
# number, %016x); from the "table T group G" status line when there is one.
qfs_group_of() {
	local g
	g=$(awk -v t="$1" '$1 == "table" && $2 == t && $3 == "group" { print $4 }' "$MNT/.quorumfs/status")
	[ -n "$g" ] || g=$(printf '%016x' "$(stat -c %i "$MNT/$1")") || return 1
	echo "$g"
}

# qfs_leader_of GROUP: the leader node id from "group G leader L ..." (0 or
# empty when there is none).
qfs_leader_of() {
	awk -v g="$1" '$1 == "group" && $2 == g && $3 == "leader" { print $4 }' "$MNT/.quorumfs/status"
}

# qfs_leader_wait GROUP: qfs_leader_of GROUP once it names a node (1-3),
# waited for 30 s at most (a re-election after a missed heartbeat on a
# loaded machine, or a restarted node taking the leadership back, leaves
# none for a moment); else what it said last.
qfs_leader_wait() {
	local l= _
	for _ in $(seq 300); do
		l=$(qfs_leader_of "$1")
		case $l in 1 | 2 | 3) break ;; esac
		sleep 0.1
	done
	echo "$l"
}

# qfs_node_state N: up or down, from MNT/.quorumfs/nodes.
qfs_node_state() {
	awk -v n="$1" '$1 == "node" && $2 == n { for (i = 3; i < NF; i++) if ($i == "state") print $(i + 1) }' \
		"$MNT/.quorumfs/nodes"
}

# qfs_node_ctl "stop N" | "start N": one command to MNT/.quorumfs/nodes;
# non-zero (with the shell's message) when the write fails.
qfs_node_ctl() {
	printf '%s\n' "$1" >"$MNT/.quorumfs/nodes"
}

# qfs_wait_agree GROUP SECONDS: wait until every replica of GROUP (as many
# "group G replica" lines as its "replicas R") says health ok with the same
# applied LSN.  0 when they do; 1 (the group's lines on stderr) at timeout.
qfs_wait_agree() {
	local g=$1 end=$((SECONDS + $2))
	while :; do
		awk -v g="$g" '
			$1 == "group" && $2 == g && $3 == "leader" { for (i = 3; i < NF; i++) if ($i == "replicas") want = $(i + 1) }
			$1 == "group" && $2 == g && $3 == "replica" {
				n++; h = ""; a = ""
				for (i = 3; i < NF; i++) { if ($i == "health") h = $(i + 1); if ($i == "applied") a = $(i + 1) }
				if (h != "ok") bad = 1
				if (n == 1) first = a; else if (a != first) bad = 1
			}
			END { exit !(want > 0 && n == want && !bad && first != "") }
		' "$MNT/.quorumfs/status" && return 0
		if [ $SECONDS -ge $end ]; then
			echo "replicas of group $g do not agree after $2 s:" >&2
			grep "^group $g " "$MNT/.quorumfs/status" >&2
			return 1
		fi
		sleep 0.2
	done
}
