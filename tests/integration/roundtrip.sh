#!/bin/bash
# tests/integration/roundtrip.sh - a real source tree in and out of quorumfs.
#
# Copies /usr/include (a few thousand files, symlinks, nested directories;
# override with QFS_RT_SRC) into a table with cp -a and checks it byte for
# byte (diff -r, sha256 of every file) and attribute for attribute (mode,
# owner, group, mtime in nanoseconds, size of files; mode/owner of dirs;
# symlink targets).  Then rsync -aX into a second table and check that a
# second rsync dry run has nothing to do; unmount, remount, check again;
# finally tar (pax format, which keeps nanosecond mtimes) out of the mount
# into a third table and compare that copy with the source too.
# At most QFS_RT_MAX_FILES (3000) of its files: see below.
# Skips (77) when the source tree is missing.  Behaviour: doc/fs.md and
# quorumfs(8).

. "${QFS_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"

remount() {
	qfs_mount "$@"
	echo "$QFS_PID" >"$T/daemon.pid"
}

SRC=${QFS_RT_SRC:-/usr/include}
[ -d "$SRC" ] || skip "$SRC is missing (install libc6-dev or set QFS_RT_SRC)"
qfs_require rsync tar sha256sum diff find sort xargs python3
nfiles=$(find "$SRC" -type f | wc -l)
[ "$nfiles" -ge 100 ] || skip "$SRC has only $nfiles files"

set -o pipefail
qfs_setup
# At most QFS_RT_MAX_FILES files (default 3000; 0 = all): the top-level
# entries of the source, in name order, each taken whole if it still fits
# (so the big trees of a developer machine, node/ and llvm-*/, are left out
# and the test's time does not follow what happens to be installed), copied
# with cp -a into a private source tree.
MAXF=${QFS_RT_MAX_FILES:-3000}
# (Files per top-level entry counted in one find and the chosen entries
# copied by one cp -a: a find and a cp for each of the 268 entries took 50
# s of a run under load.)
if [ "$MAXF" -gt 0 ] && [ "$nfiles" -gt "$MAXF" ]; then
	mkdir "$T/src" || fail "mkdir $T/src"
	declare -A nof
	while IFS= read -r line; do
		nof[${line#* }]=${line%% *}
	done < <(find "$SRC" -mindepth 1 -type f -printf '%P\n' | awk -F/ '{ c[$1]++ } END { for (e in c) print c[e], e }')
	taken=0
	pick=()
	while IFS= read -r -d '' e; do
		n=${nof[${e##*/}]:-0}
		[ $((taken + n)) -le "$MAXF" ] || continue
		pick+=("$e")
		taken=$((taken + n))
	done < <(find "$SRC" -mindepth 1 -maxdepth 1 -print0 | sort -z)
	[ ${#pick[@]} -eq 0 ] || cp -a "${pick[@]}" "$T/src/" || fail "cp -a of ${#pick[@]} entries of $SRC to $T/src"
	note "source: $taken of the $nfiles files of $SRC (QFS_RT_MAX_FILES=$MAXF)"
	SRC=$T/src
	nfiles=$taken
fi
echo "$QFS_PID" >"$T/daemon.pid"
watchdog "${QFS_RT_TIMEOUT:-600}"
export LC_ALL=C

# manifest DIR OUT: everything we compare besides contents, one line per
# object, paths relative to DIR, sorted.
manifest() {
	(cd "$1" && {
		find . -type f -printf 'f %p %m %u %g %T@ %s\n'
		find . -type d -printf 'd %p %m %u %g\n'
		find . -type l -printf 'l %p %u %g -> %l\n'
	}) | sort >"$2" || fail "manifest of $1"
}

# sums DIR OUT: sha256 of every regular file.
sums() {
	(cd "$1" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum) >"$2" ||
		fail "sha256sum of the files under $1 failed"
}

# same_as_src DIR WHAT: DIR must equal $SRC in content and attributes.
same_as_src() {
	local d=$1 what=$2
	diff -r --no-dereference "$SRC" "$d" >"$T/diff.out" 2>&1 ||
		{ head -n 20 "$T/diff.out" >&2; fail "$what: diff -r differs from $SRC"; }
	sums "$d" "$T/sums.cmp"
	cmp -s "$T/sums.src" "$T/sums.cmp" ||
		{ diff "$T/sums.src" "$T/sums.cmp" | head -n 20 >&2; fail "$what: sha256 of files differ"; }
	manifest "$d" "$T/man.cmp"
	cmp -s "$T/man.src" "$T/man.cmp" ||
		{ diff "$T/man.src" "$T/man.cmp" | head -n 20 >&2; fail "$what: modes/owners/mtimes/sizes differ"; }
}

# no_rsync_work FROM TO WHAT: an rsync -aX dry run from FROM to TO lists nothing.
no_rsync_work() {
	rsync -aXi --dry-run "$1/" "$2/" >"$T/rsync.out" 2>&1 ||
		{ head -n 20 "$T/rsync.out" >&2; fail "$3: rsync dry run failed"; }
	[ ! -s "$T/rsync.out" ] ||
		{ head -n 20 "$T/rsync.out" >&2; fail "$3: rsync -aXi --dry-run lists $(wc -l <"$T/rsync.out") differences"; }
}

base=$(basename "$SRC")
sums "$SRC" "$T/sums.src"
manifest "$SRC" "$T/man.src"
note "source $SRC: $nfiles files, $(du -sh "$SRC" | cut -f1)"

mkdir "$MNT/rt1" "$MNT/rt2" "$MNT/rt3" || fail "mkdir tables"

t0=$SECONDS
cp -a "$SRC" "$MNT/rt1/" || fail "cp -a $SRC into the mount"
note "cp -a: $((SECONDS - t0)) s"
same_as_src "$MNT/rt1/$base" "cp -a copy"
no_rsync_work "$SRC" "$MNT/rt1/$base" "cp -a copy vs source"

t0=$SECONDS
rsync -aX "$MNT/rt1/$base/" "$MNT/rt2/$base/" || fail "rsync -aX between two tables"
note "rsync -aX table to table: $((SECONDS - t0)) s"
no_rsync_work "$MNT/rt1/$base" "$MNT/rt2/$base" "rsync copy"
same_as_src "$MNT/rt2/$base" "rsync copy"

qfs_umount
remount
no_rsync_work "$MNT/rt1/$base" "$MNT/rt2/$base" "after remount, rsync copy"
no_rsync_work "$SRC" "$MNT/rt1/$base" "after remount, cp -a copy vs source"
same_as_src "$MNT/rt1/$base" "after remount, cp -a copy"
same_as_src "$MNT/rt2/$base" "after remount, rsync copy"

t0=$SECONDS
tar -C "$MNT/rt1" --format=posix -cf - "$base" | tar -C "$MNT/rt3" -xpf - ||
	fail "tar c out of the mount | tar x into another table"
note "tar c | tar x: $((SECONDS - t0)) s"
same_as_src "$MNT/rt3/$base" "tar copy"
no_rsync_work "$SRC" "$MNT/rt3/$base" "tar copy vs source"

qfs_umount
note "PASS ($SECONDS s)"
exit 0
