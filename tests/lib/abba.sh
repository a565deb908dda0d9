# tests/lib/abba.sh - sourced by benchmark scripts (tests/bench/) that
# compare two quorumfs binaries on fresh mounts.
#
# qfs_abba_rounds ROUNDS: calls the script's own `one NAME BIN` ROUNDS
# times; with QFS_OLD_BIN set, each round runs the two binaries ABBA
# (new, old, old, new), so that a drift of the machine's load during a
# round weighs on both alike.  QFS_BIN is the new binary.
qfs_abba_rounds() {
	local _r
	for _r in $(seq "$1"); do
		if [ -n "${QFS_OLD_BIN:-}" ]; then
			one new "$QFS_BIN"; one old "$QFS_OLD_BIN"; one old "$QFS_OLD_BIN"; one new "$QFS_BIN"
		else
			one new "$QFS_BIN"
		fi
	done
}
