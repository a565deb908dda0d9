#!/bin/bash
# layers.sh - the include matrix of DESIGN.md section 3 ("Layers"), enforced.
#
# Reads every #include "dir/x.h" of the C files and headers under src/*/
# and fs/ and fails, naming file, line and header, when a module includes
# a header of a module it must not.  The matrix below is DESIGN.md's table
# (keep the two in step); in addition a "*_int.h" header is private to its
# own module (src/cmd included), and every module must be in the table.
# tests/ are not checked (unit tests reach into internals on purpose).
#
# usage: tests/layers.sh [ROOT]      check the tree at ROOT (default: the
#                                    tree holding this script, or
#                                    $QFS_SRCDIR under make check); then,
#                                    with no ROOT, run the self-test too
#        tests/layers.sh --self-test only the self-test: temp trees with a
#                                    good and deliberately bad includes
# Exit 0 when clean, 1 on a violation (one line each on stderr).
set -u

# module -> modules it may include (besides itself and common's library
# headers, which are system headers, not "dir/x.h").  "*": everything.
declare -A MAY=(
	[cmd]="*"
	[fs]="router common"
	[router]="meta node net common"
	[meta]="node common"
	[scrub]="node store wal objstore common"
	[archive]="node store wal objstore common"
	[node]="repl net wal store common"
	[repl]="common"
	[net]="common"
	[wal]="common"
	[store]="common"
	[objstore]="common"
	[common]=""
)

# Beyond the matrix: headers of a layer a module may include that it must
# not, and identifiers it must not use (an extended regex, matched outside
# comments).  fs/ speaks the item API of router.h (table + typed item
# key): it never builds or parses a raw key (common/key.h) nor handles a
# group id (issue 12; DESIGN.md section 3).
declare -A DENY_HDR=(
	[fs]="common/key.h"
)
declare -A DENY_WORD=(
	[fs]='\bqfs_group_t\b|\bQFS_META_GROUP\b|\bqfs_key_[a-z_]*|\bQFS_KEY_[A-Z_]*|\bstruct qfs_key\b|(\.|->)group\b'
)

# Temporary exceptions: "FILE HEADER", each naming the issue that removes
# it.  Every one is printed when it is used, so none hides; an entry that
# no longer matches anything is reported as stale (remove it).
ALLOW=(
	# temporary exceptions, one per line: "FILE HEADER" with a comment
	# naming the issue; none today
)

# module_of PATH: the module a file of the tree belongs to ("" if none).
module_of() {
	case "$1" in
	fs/*) echo fs ;;
	src/*/*) local m=${1#src/}; echo "${m%%/*}" ;;
	*) echo "" ;;
	esac
}

# may FROM TO: 0 if module FROM may include a header of module TO.
may() {
	local w
	local -a ws
	[ "$1" = "$2" ] && return 0
	read -r -a ws <<<"${MAY[$1]}"
	for w in "${ws[@]}"; do
		[ "$w" = "*" ] || [ "$w" = "$2" ] && return 0
	done
	return 1
}

# code_of FILE: its lines with the comments blanked out (line numbers kept)
code_of() {
	awk '{
		line = $0; out = ""
		while (line != "") {
			if (inc) {
				p = index(line, "*/")
				if (!p) { line = ""; break }
				line = substr(line, p + 2); inc = 0
			} else {
				p = index(line, "/*")
				if (!p) { out = out line; break }
				out = out substr(line, 1, p - 1); line = substr(line, p + 2); inc = 1
			}
		}
		q = index(out, "//"); if (q) out = substr(out, 1, q - 1)
		print out
	}' "$1"
}

allowed() { # FILE HEADER: 0 if a temporary exception covers it
	local e
	for e in ${ALLOW[@]+"${ALLOW[@]}"}; do
		[ "$e" = "$1 $2" ] && return 0
	done
	return 1
}

# check ROOT [SELFTEST]: prints violations; returns 1 if any, else 0.
check() {
	local root=$1 selftest=${2:-} bad=0 used="" f line hdr from to base e
	local -a files
	if [ ! -d "$root/src" ]; then
		echo "layers.sh: $root has no src/" >&2
		return 1
	fi
	mapfile -t files < <(cd "$root" && find src fs -mindepth 1 -type f \( -name '*.c' -o -name '*.h' \) 2>/dev/null | LC_ALL=C sort)
	for f in "${files[@]}"; do
		from=$(module_of "$f")
		[ -n "$from" ] || continue
		if [ -z "${MAY[$from]+set}" ]; then
			echo "$f:1: module '$from' is not in the include matrix (DESIGN.md section 3; tests/layers.sh)" >&2
			bad=1
			continue
		fi
		while IFS=: read -r line hdr; do
			[ "$hdr" = "config.h" ] && continue
			case "$hdr" in
			*/*) ;;
			*)
				echo "$f:$line: #include \"$hdr\": name module headers as \"dir/x.h\"" >&2
				bad=1
				continue
				;;
			esac
			to=${hdr%%/*}
			base=${hdr##*/}
			if [ "$to" != "$from" ] && [[ "$base" == *_int.h ]]; then
				if allowed "$f" "$hdr"; then
					echo "layers.sh: temporary exception: $f:$line: $hdr" >&2
					used="$used|$f $hdr"
					continue
				fi
				echo "$f:$line: #include \"$hdr\": a private header of module '$to' (*_int.h)" >&2
				bad=1
				continue
			fi
			[ -z "${MAY[$to]+set}" ] && [ "$to" != "$from" ] && [ "${MAY[$from]}" != "*" ] && {
				echo "$f:$line: #include \"$hdr\": '$to' is not a module of the include matrix" >&2
				bad=1
				continue
			}
			if [[ " ${DENY_HDR[$from]:-} " == *" $hdr "* ]]; then
				echo "$f:$line: #include \"$hdr\": module '$from' may not include it (it speaks the item API of router.h; DESIGN.md section 3)" >&2
				bad=1
				continue
			fi
			may "$from" "$to" && continue
			if allowed "$f" "$hdr"; then
				echo "layers.sh: temporary exception: $f:$line: $hdr" >&2
				used="$used|$f $hdr"
				continue
			fi
			echo "$f:$line: #include \"$hdr\": module '$from' may not include '$to' (may: ${MAY[$from]:-nothing}; DESIGN.md section 3)" >&2
			bad=1
		done < <(grep -n -E '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$root/$f" |
			 sed -E 's/^([0-9]+):[[:space:]]*#[[:space:]]*include[[:space:]]*"([^"]*)".*/\1:\2/')
		[ -n "${DENY_WORD[$from]:-}" ] || continue
		while IFS=: read -r line hdr; do
			echo "$f:$line: uses '$hdr': module '$from' speaks the item API of router.h, no raw keys nor group ids (DESIGN.md section 3)" >&2
			bad=1
		done < <(code_of "$root/$f" | grep -n -o -E "${DENY_WORD[$from]}")
	done
	[ -n "$selftest" ] && return $bad
	for e in ${ALLOW[@]+"${ALLOW[@]}"}; do
		case "$used|" in *"|$e|"*) ;; *) echo "layers.sh: stale exception (nothing matches it any more; remove it): $e" >&2 ;; esac
	done
	return $bad
}

# The self-test: a clean mini tree passes; each bad include fails, and the
# message names the file, the line and the header.
self_test() {
	local t rc out fails=0
	t=$(mktemp -d "${TMPDIR:-/tmp}/layers.XXXXXX") || return 1
	mk() { mkdir -p "$t/$(dirname "$1")"; printf '%s\n' "${@:2}" >"$t/$1"; }
	mk src/common/buf.h '#include <stdint.h>'
	mk src/wal/wal.h '#include "common/buf.h"'
	mk src/wal/wal_int.h '#include "wal/wal.h"'
	mk src/wal/wal.c '#include "config.h"' '#include "wal/wal_int.h"'
	mk src/archive/archive.c '#include "config.h"' '#include "wal/wal.h"' '#include "common/buf.h"'
	mk src/cmd/main.c '#include "archive/archive.h"' '#include "fs/fs.h"'
	mk fs/ops.c '#include "router/router.h"'
	expect() { # WANT_RC GREP_PATTERN WHAT
		out=$(check "$t" selftest 2>&1)
		rc=$?
		if [ "$rc" != "$1" ] || ! grep -q -e "$2" <<<"$out"; then
			echo "layers.sh self-test FAILED: $3 (rc $rc, want $1; output: $out)" >&2
			fails=1
		fi
	}
	expect 0 '' "a clean tree"
	mk src/archive/bad.c '#include "config.h"' '' '#include "wal/wal_int.h"'
	expect 1 '^src/archive/bad.c:3: #include "wal/wal_int.h"' "another module's *_int.h"
	rm "$t/src/archive/bad.c"
	mk fs/bad.c '#include "router/router.h"' '  #  include "node/cell.h"  /* x */'
	expect 1 '^fs/bad.c:2: #include "node/cell.h": module .fs. may not include .node.' "fs reaching below the router"
	rm "$t/fs/bad.c"
	mk fs/bad.c '#include "router/router.h"' '#include "common/key.h"'
	expect 1 '^fs/bad.c:2: #include "common/key.h": module .fs. may not include it' "fs including common/key.h"
	mk fs/bad.c '#include "router/router.h"' '/* QFS_META_GROUP and qfs_key_inode in a comment are fine' \
		' * qfs_group_t too */' 'static int x; // and QFS_KEY_MAX here'
	expect 0 '' "group ids and key names in fs/ comments"
	mk fs/bad.c '#include "router/router.h"' 'static qfs_group_t g;'
	expect 1 "^fs/bad.c:2: uses 'qfs_group_t'" "fs holding a group id"
	mk fs/bad.c 'int f(void) { return g(QFS_META_GROUP); }'
	expect 1 "^fs/bad.c:1: uses 'QFS_META_GROUP'" "fs naming the meta group"
	mk fs/bad.c 'void f(struct qfs_dentry *d) { d->group = 0; }'
	expect 1 "^fs/bad.c:1: uses '->group'" "fs setting a dentry's group"
	mk fs/bad.c 'void f(uint8_t *k) { qfs_key_inode(k, 1); }'
	expect 1 "^fs/bad.c:1: uses 'qfs_key_inode'" "fs building a raw key"
	rm "$t/fs/bad.c"
	mk src/router/ok.c '#include "common/key.h"' 'static qfs_group_t g;'
	expect 0 '' "the router building keys and holding groups"
	rm "$t/src/router/ok.c"
	mk src/repl/bad.c '#include "net/net.h"'
	expect 1 '^src/repl/bad.c:1: ' "repl reaching sideways"
	rm "$t/src/repl/bad.c"
	mk src/cmd/bad.c '#include "wal/wal_int.h"'
	expect 1 '^src/cmd/bad.c:1: ' "cmd including a private header"
	rm "$t/src/cmd/bad.c"
	mk src/newmod/x.c '#include "common/buf.h"'
	expect 1 "module 'newmod' is not in the include matrix" "a module missing from the matrix"
	rm -r "$t/src/newmod"
	mk src/wal/bad.c '#include "buf.h"'
	expect 1 '^src/wal/bad.c:1: #include "buf.h": name module headers' "an include without its directory"
	rm "$t/src/wal/bad.c"
	expect 0 '' "the clean tree again"
	rm -rf "$t"
	[ $fails = 0 ] && echo "layers.sh: self-test passed" >&2
	return $fails
}

case "${1:-}" in
--self-test)
	self_test
	exit $?
	;;
"")
	root=${QFS_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
	check "$root"
	rc=$?
	self_test || rc=1
	[ $rc = 0 ] && echo "layers.sh: the include matrix holds in $root" >&2
	exit $rc
	;;
*)
	check "$1"
	exit $?
	;;
esac
