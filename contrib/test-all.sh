#!/bin/bash
# contrib/test-all.sh - build and test quorumfs twice, the way CI does.
#
# Usage: contrib/test-all.sh          (from anywhere; works on the tree it is in)
#
# 1. autoreconf -fi in the source tree;
# 2. build/:     ../configure && make -j$JOBS && make check
# 3. build-san/: ../configure --enable-sanitizers && make -j$JOBS && make
#    check, with ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
#    and UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 (set for both builds;
#    so is QFS_STORE_CC_VERIFY=1: every hit of the store's apply cache is
#    checked against RocksDB).
#    build-san/'s configure and make run (at nice 10) while build/'s make
#    check runs, and its make check starts as soon as it is built: the two
#    make checks run side by side and share CHECK_JOBS job slots (one GNU
#    make jobserver), so at most CHECK_JOBS tests run at once over both
#    builds and build-san/'s tests take every slot once build/'s are done.
#    build-san/'s output is kept in build-san/build.out and check.out and
#    printed after build/'s results, where it appeared when they ran after it.
#    build-san/ runs smaller big-file, directory and copy sizes (below) and
#    skips tests/spin/check.sh (one SKIP in the count): its models link no
#    quorumfs code and are compiled alike in both builds, so build/'s run
#    has checked exactly them.
# Both builds always run (a failure in the first does not hide the second).
# For every test whose .trs says FAIL, ERROR or XPASS the test's .log is
# printed.  The last line is exactly
#     N passed, N failed[, N skipped]
# summed over both builds' .trs files (PASS and XFAIL count as passed; FAIL,
# ERROR and XPASS as failed; a configure/make failure or a make check that
# times out counts as one failed).  Exit status 0 only if nothing failed.
# Environment: JOBS (make -j of the compiles, default 2), CHECK_JOBS (tests
# at once over both make checks, default 3: most tests wait on fsync, timers
# and sleeps, not on the CPU, but their daemons share one disk; with 4 on
# this 2-vCPU VM a run took about as long as 2 at a time in sequence did,
# and one test's unmount took 27 s; on a machine busy with other work take
# 2: at a load of 15-30 the long tests ran 2-8x their usual time and 240 s
# watchdogs fired), QFS_CHECK_TIMEOUT (seconds per make check, default
# 3600: a guard against a hung test, not a time budget; the two make checks
# run side by side, so each lasts about as long as the whole run, and stop
# 27's CI machine killed build/'s last test at 1800 s of a run that would
# have passed at about 1830), CONFIGURE_FLAGS (extra flags for both
# configures).
# Integration tests need root and /dev/fuse; without them they skip.
# (--run-build and --run-san are this script's own entry points for the
# make that runs the two make checks; see run_checks.)

set -u
cd "$(dirname "$0")/.." || exit 1
JOBS=${JOBS:-2}
CHECK_JOBS=${CHECK_JOBS:-3}
CHECK_TIMEOUT=${QFS_CHECK_TIMEOUT:-3600}
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# every hit of the store's apply cache is checked against RocksDB (a writer
# that forgot to drop its keys aborts the daemon or the test: src/store)
export QFS_STORE_CC_VERIFY=1

passed=0
failed=0
skipped=0

banner() { printf '\n===== %s\n' "$*"; }

# count_results DIR: add DIR's .trs results to the totals; print failed logs.
count_results() {
	local dir=$1 trs res log
	while IFS= read -r -d '' trs; do
		while read -r _ res; do
			case $res in
			PASS | XFAIL) passed=$((passed + 1)) ;;
			SKIP) skipped=$((skipped + 1)) ;;
			FAIL | ERROR | XPASS)
				failed=$((failed + 1))
				log=${trs%.trs}.log
				banner "$res: ${log#./} ($dir)"
				if [ -f "$log" ]; then cat "$log"; else echo "(no $log)"; fi
				;;
			esac
		done < <(grep '^:test-result:' "$trs")
	done < <(find "$dir" -name '*.trs' -print0 | sort -z)
}

# build_tree DIR CONFIGURE_ARGS...: configure and make in DIR; non-zero
# (after printing why) when either fails.  Runs in the background for
# build-san/, so it counts nothing itself.  The compile has its own
# -j$JOBS, outside the jobserver of the make checks (MAKEFLAGS emptied).
build_tree() {
	local dir=$1
	shift
	banner "$dir: ../configure $*"
	mkdir -p "$dir" || return 1
	# results of an earlier run must not be counted again
	find "$dir" \( -name '*.trs' -o -name '*.log' \) -path '*tests/*' -delete 2>/dev/null
	rm -f "$dir/test-suite.log"
	if ! (cd "$dir" && ../configure ${CONFIGURE_FLAGS:-} "$@") >"$dir/configure.out" 2>&1; then
		cat "$dir/configure.out"
		[ -f "$dir/config.log" ] && tail -n 40 "$dir/config.log"
		banner "FAIL: configure in $dir"
		return 1
	fi
	if ! MAKEFLAGS= MFLAGS= make -C "$dir" -j"$JOBS"; then
		banner "FAIL: make in $dir"
		return 1
	fi
	# config.status leaves config.h older than stamp-h1, so every make
	# "remakes" config.h (a no-op recipe); in make check's run of the
	# tests that holds back every test whose .log depends on a program
	# (the unit tests: their programs depend on config.h) until all the
	# script tests have started, and build-san/'s check_wal, check_sysio
	# and check_rnode (about a minute each) ran last, at the end of the
	# run.  Giving stamp-h1 config.h's time makes config.h up to date
	# (config.h.in and config.status are older than both); it recompiles
	# nothing.
	touch -r "$dir/config.h" "$dir/stamp-h1"
}

# run_check DIR: make check in DIR, at most CHECK_TIMEOUT seconds, taking
# its job slots from the jobserver of run_checks' make (no -j of its own);
# its exit status goes to DIR/check.rc, the time it ended to DIR/check.end.
run_check() {
	local dir=$1
	timeout -k 60 "$CHECK_TIMEOUT" make -C "$dir" check
	echo $? >"$dir/check.rc"
	date +%s >"$dir/check.end"
}

# slowest DIR: the 12 longest tests of DIR, in seconds: a test's .log is
# made when it starts and last written when it ends (its birth time and
# mtime; nothing is printed where the filesystem keeps no birth time).
# Where CI's time goes: the run is the sum of these over 3 slots.
slowest() {
	local dir=$1
	banner "$dir: the slowest tests (s)"
	find "$dir" -path '*tests/*' -name '*.log' ! -name test-suite.log -print0 |
		xargs -0r stat -c '%W %Y %n' | awk '$1 > 0 { print $2 - $1, $3 }' |
		sort -rn | awk '{ t += $1 } NR <= 12 { print } END { if (NR) print t, "in all,", NR, "tests" }'
}

# report_check DIR T0: count DIR's results after run_check; T0 is the time
# (date +%s) when DIR's build started.
report_check() {
	local dir=$1 t0=$2 rc
	rc=$(cat "$dir/check.rc" 2>/dev/null || echo 1)
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		banner "FAIL: make check in $dir timed out after $CHECK_TIMEOUT s; tests still running:"
		find "$dir" -path '*tests/*' -name '*.log' | while read -r log; do
			[ -f "${log%.log}.trs" ] || { echo "--- $log"; cat "$log"; }
		done
		failed=$((failed + 1))
	elif [ "$rc" -ne 0 ] && ! grep -qs '^:test-result: \(FAIL\|ERROR\|XPASS\)' /dev/null $(find "$dir" -name '*.trs'); then
		# make check failed without a failed test (e.g. a check program did not build)
		banner "FAIL: make check in $dir exited $rc"
		failed=$((failed + 1))
	fi
	count_results "$dir"
	slowest "$dir"
	banner "$dir: done in $(($(cat "$dir/check.end" 2>/dev/null || date +%s) - t0)) s"
}

# The two entry points run_checks' make calls (this script again):
# --run-build: build/'s make check, its output on stdout as it comes;
# --run-san: build-san/'s configure and make at nice 10 (output in
# build-san/build.out, exit status in build.rc), then its make check at
# normal priority (output in build-san/check.out).
case ${1:-} in
--run-build)
	run_check build
	exit 0
	;;
--run-san)
	(
		# at a lower priority: the tests running beside it come first
		renice -n 10 "$BASHPID" >/dev/null 2>&1
		build_tree build-san --enable-sanitizers
	) >build-san/build.out 2>&1
	rc=$?
	echo $rc >build-san/build.rc
	if [ $rc -eq 0 ]; then
		# Under ASan everything is 2-3x slower: the sanitizer build writes a
		# 256 MiB big file (192 MiB of data) instead of 2176 MiB (352 MiB
		# of data past 2 GiB, in regions: bigfile.sh; 1024 MiB took 256 s
		# of stop 27's CI, 256 MiB 75 s), a directory of 30,000 entries
		# instead of 100,000 and copies 1,000 files of /usr/include instead
		# of 3,000 (roundtrip.sh), and partitions.sh's directory "big" has
		# 5,000 entries instead of 20,000 (no assertion needs the size;
		# ASan: 20,000 creates took 22 s, each of its 9 verifies ~8 s)
		# (the normal build covers the big sizes; every create is
		# replicated three times).
		# tests/spin/check.sh's models link no quorumfs code and compile
		# pan.c with plain cc in both builds: build/'s run checks them
		export QFS_SPIN_ONCE="checked by build/'s make check of this run (the models link no quorumfs code)"
		export QFS_BIG_MB=${QFS_SAN_BIG_MB:-256}
		export QFS_READDIR_N=${QFS_SAN_READDIR_N:-30000}
		export QFS_RT_MAX_FILES=${QFS_SAN_RT_MAX_FILES:-1000}
		export QFS_PARTS_N=${QFS_SAN_PARTS_N:-5000}
		run_check build-san >build-san/check.out 2>&1
	fi
	exit 0
	;;
esac

# run_checks BUILD_OK: one GNU make with CHECK_JOBS job slots runs
# --run-build (when BUILD_OK is 1) and --run-san side by side; their make
# checks are its sub-makes ("+" recipes), so all their tests share the
# slots.  Each recipe exits 0: the results are counted afterwards.
run_checks() {
	local mk goals=san
	[ "$1" -eq 1 ] && goals="build san"
	mk=$(mktemp) || return 1
	printf '%s\n' '.PHONY: build san' \
		'build:' "	+@\"\$(TEST_ALL)\" --run-build" \
		'san:' "	+@\"\$(TEST_ALL)\" --run-san" >"$mk"
	MAKEFLAGS= MFLAGS= make -f "$mk" -j"$CHECK_JOBS" TEST_ALL="$PWD/contrib/test-all.sh" $goals
	rm -f "$mk"
}

banner "autoreconf -fi"
if ! autoreconf -fi; then
	echo "0 passed, 1 failed"
	exit 1
fi

# The upgrade tests build previous releases from git history (plain builds,
# a few minutes each): build them once, in build/, for both builds (the
# first test to need one builds it, under a lock: tests/lib/common.sh).
export QFS_UPGRADE_CACHE=${QFS_UPGRADE_CACHE:-$PWD/build/tests/upgrade}
t_build=$(date +%s)
if build_tree build; then
	build_ok=1
else
	build_ok=0
	failed=$((failed + 1))
fi
# build-san/ compiles while build/'s tests run, then its tests run beside them
t_san=$(date +%s)
mkdir -p build-san && rm -f build-san/build.out build-san/build.rc build-san/check.out \
	build-san/check.rc build-san/check.end build/check.rc build/check.end
[ $build_ok -eq 1 ] && banner "build: make check"
run_checks $build_ok
[ $build_ok -eq 1 ] && report_check build "$t_build"
cat build-san/build.out
if [ "$(cat build-san/build.rc 2>/dev/null)" = 0 ]; then
	banner "build-san: make check"
	cat build-san/check.out
	report_check build-san "$t_san"
else
	failed=$((failed + 1))
fi

summary="$passed passed, $failed failed"
[ "$skipped" -gt 0 ] && summary="$summary, $skipped skipped"
echo
echo "$summary"
[ "$failed" -eq 0 ]
