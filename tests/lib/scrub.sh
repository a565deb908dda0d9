# tests/lib/scrub.sh - helpers shared by the scrubber's integration tests
# (tests/integration/scrub*.sh).  Source it after tests/lib/common.sh; the
# caller sets S to the mount's .quorumfs/scrub file.

# val KEY: the value of the status line "KEY VALUE" of $S
val() { awk -v k="$1" '$1 == k { print $2; exit }' "$S"; }
# field KEY: every value that follows the word KEY on a line of $S (the
# per-group result lines)
field() { awk -v k="$1" '{ for (i = 1; i < NF; i++) if ($i == k) print $(i + 1) }' "$S"; }
# wait_idle SECONDS: until the scrub state is idle (fail after SECONDS)
wait_idle() {
	local end=$((SECONDS + $1))
	while [ "$(val state)" != idle ]; do
		[ $SECONDS -lt $end ] || { cat "$S" >&2; fail "scrub still running after $1 s"; }
		sleep 0.2
	done
}
# pass: start one pass (fail if refused) and wait up to 60 s for its end
pass() {
	printf 'start\n' >"$S" 2>/dev/null || fail "start refused"
	wait_idle 60
}
