#!/bin/bash
# contrib/test-all.sh - build and test quorumfs twice, the way CI does.
#
# Usage: contrib/test-all.sh          (from anywhere; works on the tree it is in)
#
# 1. autoreconf -fi in the source tree;
# 2. build/:     ../configure && make -j$JOBS && make -j$CHECK_JOBS check
# 3. build-san/: ../configure --enable-sanitizers && make -j$JOBS && make
#    -j$CHECK_JOBS check, with ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
#    and UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 (set for both builds).
#    build-san/'s configure and make run while build/'s make check runs;
#    their output is kept in build-san/build.out and printed after build/'s
#    results, where it appeared when they ran after it.
# Both builds always run (a failure in the first does not hide the second).
# For every test whose .trs says FAIL, ERROR or XPASS the test's .log is
# printed.  The last line is exactly
#     N passed, N failed[, N skipped]
# summed over both builds' .trs files (PASS and XFAIL count as passed; FAIL,
# ERROR and XPASS as failed; a configure/make failure or a make check that
# times out counts as one failed).  Exit status 0 only if nothing failed.
# Environment: JOBS (make -j of the compiles, default 2), CHECK_JOBS (make -j
# of each make check, default JOBS), QFS_CHECK_TIMEOUT (seconds per make check,
# default 1800), CONFIGURE_FLAGS (extra flags for both configures).
# Integration tests need root and /dev/fuse; without them they skip.

set -u
cd "$(dirname "$0")/.." || exit 1
JOBS=${JOBS:-2}
CHECK_JOBS=${CHECK_JOBS:-$JOBS}
CHECK_TIMEOUT=${QFS_CHECK_TIMEOUT:-1800}
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

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
# build-san/, so it counts nothing itself.
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
	if ! make -C "$dir" -j"$JOBS"; then
		banner "FAIL: make in $dir"
		return 1
	fi
}

# check_tree DIR T0: make check in DIR, count its results; T0 is $SECONDS
# when DIR's build started.
check_tree() {
	local dir=$1 t0=$2 rc
	banner "$dir: make check"
	timeout -k 60 "$CHECK_TIMEOUT" make -C "$dir" -j"$CHECK_JOBS" check
	rc=$?
	if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
		banner "FAIL: make check in $dir timed out after $CHECK_TIMEOUT s; tests still running:"
		find "$dir" -path '*tests/*' -name '*.log' | while read -r log; do
			[ -f "${log%.log}.trs" ] || { echo "--- $log"; cat "$log"; }
		done
		failed=$((failed + 1))
	elif [ $rc -ne 0 ] && ! grep -qs '^:test-result: \(FAIL\|ERROR\|XPASS\)' /dev/null $(find "$dir" -name '*.trs'); then
		# make check failed without a failed test (e.g. a check program did not build)
		banner "FAIL: make check in $dir exited $rc"
		failed=$((failed + 1))
	fi
	count_results "$dir"
	banner "$dir: done in $((SECONDS - t0)) s"
}

banner "autoreconf -fi"
if ! autoreconf -fi; then
	echo "0 passed, 1 failed"
	exit 1
fi

# The upgrade tests build previous releases from git history (plain builds,
# a few minutes each): build them once, in build/, for both builds.
export QFS_UPGRADE_CACHE=${QFS_UPGRADE_CACHE:-$PWD/build/tests/upgrade}
t_build=$SECONDS
if build_tree build; then
	build_ok=1
else
	build_ok=0
	failed=$((failed + 1))
fi
# build-san/ compiles while build/'s tests run (its output in build.out)
t_san=$SECONDS
mkdir -p build-san && rm -f build-san/build.out build-san/build.rc
(
	# at a lower priority: build/'s tests (timers, watchdogs) come first
	renice -n 10 "$BASHPID" >/dev/null 2>&1
	build_tree build-san --enable-sanitizers >build-san/build.out 2>&1
	echo $? >build-san/build.rc
) &
san_pid=$!
[ $build_ok -eq 1 ] && check_tree build $t_build
wait $san_pid
cat build-san/build.out
if [ "$(cat build-san/build.rc 2>/dev/null)" = 0 ]; then
	# Under ASan everything is 2-3x slower: the sanitizer build writes a 1 GiB
	# big file instead of 2.1 GiB and a directory of 30,000 entries instead of
	# 100,000 (the normal build covers the big sizes; every create is replicated
	# three times).
	export QFS_BIG_MB=${QFS_SAN_BIG_MB:-1024}
	export QFS_READDIR_N=${QFS_SAN_READDIR_N:-30000}
	check_tree build-san $t_san
else
	failed=$((failed + 1))
fi

summary="$passed passed, $failed failed"
[ "$skipped" -gt 0 ] && summary="$summary, $skipped skipped"
echo
echo "$summary"
[ "$failed" -eq 0 ]
