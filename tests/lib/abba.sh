# tests/lib/abba.sh - sourced by benchmark scripts (tests/bench/) that
# compare two quorumfs binaries on fresh mounts (fsync_ab.sh, dd_cost.sh).
# The script defines `one NAME BIN` (one measured run) and calls, in order:
#   qfs_ab_setup SCRIPT TAG  checks QFS_BIN (default ./fs/quorumfs),
#                            QFS_OLD_BIN (optional) and root; makes the
#                            temp dir $T (qfs-TAG.XXXXXX) and $MNT, and
#                            unmounts and removes them at exit
#   qfs_ab_mount NAME BIN    (in one) mounts BIN fresh on $MNT, data in
#                            $T/data.NAME, daemon pid in $PID, its output
#                            in $T/daemon.NAME.out; exits 1 if it fails
#   qfs_ab_umount NAME       (in one) unmounts, waits for the daemon and
#                            removes its data
#   qfs_abba_rounds ROUNDS   calls `one` ROUNDS times; with QFS_OLD_BIN
#                            set, each round runs the two binaries ABBA
#                            (new, old, old, new), so that a drift of the
#                            machine's load weighs on both alike

qfs_ab_setup() {
	: "${QFS_BIN:=$(pwd)/fs/quorumfs}"
	[ -x "$QFS_BIN" ] || { echo "$1: $QFS_BIN is not executable (set QFS_BIN)" >&2; exit 2; }
	[ -z "${QFS_OLD_BIN:-}" ] || [ -x "$QFS_OLD_BIN" ] ||
		{ echo "$1: QFS_OLD_BIN $QFS_OLD_BIN is not executable" >&2; exit 2; }
	[ "$(id -u)" -eq 0 ] || { echo "$1: needs root (FUSE)" >&2; exit 2; }
	T=$(mktemp -d "${TMPDIR:-/tmp}/qfs-$2.XXXXXX")
	MNT=$T/mnt
	PID=
	trap qfs_ab_cleanup EXIT
	trap 'exit 1' INT TERM
}

qfs_ab_cleanup() {
	fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT" 2>/dev/null
	[ -n "$PID" ] && wait "$PID" 2>/dev/null
	rm -rf "$T"
}

qfs_ab_mount() {
	rm -rf "$T/data.$1"
	mkdir -p "$T/data.$1" "$MNT"
	"$2" mount -f "$T/data.$1" "$MNT" >"$T/daemon.$1.out" 2>&1 &
	PID=$!
	for _ in $(seq 200); do [ -e "$MNT/.quorumfs/status" ] && break; sleep 0.05; done
	[ -e "$MNT/.quorumfs/status" ] || { cat "$T/daemon.$1.out" >&2; echo "mount failed" >&2; exit 1; }
}

qfs_ab_umount() {
	fusermount3 -u "$MNT" || exit 1
	wait "$PID"
	PID=
	rm -rf "$T/data.$1"
}

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

# qfs_abba_medians LINES KEY...: for each binary (new, old) with lines
# "bin=B key=value ..." in the file LINES, print one line "median bin=B
# KEY=median ... runs=N" (N: lines of that binary; each median as %.0f,
# or %.2f for a KEY holding a '/' between two per-op counts, e.g.
# syncs/fsync).
qfs_abba_medians() {
	local lines=$1 b
	shift
	for b in new old; do
		grep -q "^bin=$b " "$lines" || continue
		awk -v b="$b" -v keys="$*" '$1 == "bin=" b { r++; for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1], ++n[kv[1]]] = kv[2] } }
		function med(k,   m, i, j, t, a) {
			m = n[k]; for (i = 1; i <= m; i++) a[i] = v[k, i]
			for (i = 2; i <= m; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
			return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
		}
		END {
			line = "median bin=" b
			nk = split(keys, ks, " ")
			for (i = 1; i <= nk; i++)
				line = line sprintf(ks[i] ~ /^(syncs|proposals|gets|disk_B)\// ? " %s=%.2f" : " %s=%.0f", ks[i], med(ks[i]))
			print line " runs=" r
		}' "$lines"
	done
}
