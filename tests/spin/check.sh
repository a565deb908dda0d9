#!/bin/sh
# check.sh - model-check tests/spin/paxos.pml with spin (doc/paxos.md).
#
# Generates the verifier (spin -a), compiles pan.c with cc and runs an
# exhaustive safety search: any assertion violation (two values chosen for
# one slot) fails the test.  Then checks that the deliberately broken
# variants (acceptor ignoring the ballot, promise without the up-to-date
# check, leader counting its own vote before its sync) ARE caught, so the
# model keeps its teeth.  The same for the model with one membership
# change (-DMEMBERS) and its broken twin that changes two members at once.
# Then tests/spin/readd.pml: a removed member re-added empty while a member
# of an older configuration is down, with the vote floor (no violation) and
# without each half of it (caught).  Then tests/spin/logrep.pml: the
# healer's log replica (a member dies, a log replica joins at the commit
# point, the dead one is removed, then the leader fails and another storage
# member campaigns; the dead one comes back stale): no violation, and the
# variants where the log replica may lead or votes without the up-to-date
# check are caught.  Exit 77 if spin or cc is missing (CI installs the
# Debian package spin).
set -u

SRC=${QFS_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
MODEL="$SRC/tests/spin/paxos.pml"
CC=${CC:-cc}

# contrib/test-all.sh sets QFS_SPIN_ONCE in build-san/'s make check: the
# models link no quorumfs code and pan.c is compiled the same way in both
# builds, so build/'s make check of the same run has checked exactly this.
[ -z "${QFS_SPIN_ONCE:-}" ] || { echo "SKIP: $QFS_SPIN_ONCE"; exit 77; }
command -v spin >/dev/null 2>&1 || { echo "SKIP: spin not installed (apt-get install spin)"; exit 77; }
command -v "$CC" >/dev/null 2>&1 || { echo "SKIP: no C compiler ($CC)"; exit 77; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/qfs-spin.XXXXXX") || exit 1
trap 'rm -rf "$WORK"' EXIT

# verify VARIANT_FLAGS: prints pan's report; returns pan's error count (0..)
# pan.c is compiled with $PAN_OPT (default -O2: the exhaustive searches of
# a few million states run 1.3x faster than at -O0); the broken variants,
# whose search stops at the first violation, use -O0, which compiles pan.c
# in half the time (3 s instead of 6 s here; the same states either way).
verify() {
	( cd "$WORK" && rm -f pan pan.* ./*.trail &&
	  cp "${M:-$MODEL}" paxos.pml &&
	  spin -a "$@" paxos.pml >spin.out 2>&1 &&
	  $CC ${PAN_OPT:--O2} -w -DSAFETY -DVECTORSZ=2048 -o pan pan.c >cc.out 2>&1 ) || {
		echo "FAIL: could not build the verifier ($*)"; cat "$WORK/spin.out" "$WORK/cc.out" 2>/dev/null
		exit 1
	}
	( cd "$WORK" && timeout 120 ./pan -m200000 >pan.out 2>&1 )
	grep -E "errors:|states, stored|assertion violated|depth too small|max search depth" "$WORK/pan.out"
	errs=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' "$WORK/pan.out")
	[ -n "$errs" ] || { echo "FAIL: pan gave no result"; cat "$WORK/pan.out"; exit 1; }
	if grep -q "max search depth too small" "$WORK/pan.out"; then
		echo "FAIL: search truncated (raise -m)"; exit 1
	fi
	return "$errs"
}

echo "== model: agreement under leader change and message loss (exhaustive)"
if ! verify; then
	echo "FAIL: agreement violated; trail:"
	( cd "$WORK" && spin -t -p paxos.pml | tail -40 )
	exit 1
fi

for v in BROKEN_BALLOT BROKEN_UPTODATE BROKEN_SELFVOTE; do
	echo "== broken variant $v must be caught"
	if PAN_OPT=-O0 verify "-D$v"; then
		echo "FAIL: spin did not catch $v: the model lost its teeth"
		exit 1
	fi
done

echo "== model with one membership change (add the spare or remove one member; exhaustive)"
if ! verify -DMEMBERS; then
	echo "FAIL: agreement violated across a membership change; trail:"
	( cd "$WORK" && spin -t -p -DMEMBERS paxos.pml | tail -40 )
	exit 1
fi
echo "== broken variant MEMBERS+BROKEN_TWOCHANGE must be caught"
if PAN_OPT=-O0 verify -DMEMBERS -DBROKEN_TWOCHANGE; then
	echo "FAIL: spin did not catch a two-member change: the model lost its teeth"
	exit 1
fi

M="$SRC/tests/spin/readd.pml"
echo "== model: re-adding a removed member while an old member is down (vote floor; exhaustive)"
if ! verify; then
	echo "FAIL: agreement violated by a re-added member; trail:"
	( cd "$WORK" && spin -t -p paxos.pml | tail -40 )
	exit 1
fi
for v in BROKEN_NOFLOOR BROKEN_NOVOTEFLOOR BROKEN_NOPROMISE; do
	echo "== broken variant readd $v must be caught"
	if PAN_OPT=-O0 verify "-D$v"; then
		echo "FAIL: spin did not catch readd $v: the model lost its teeth"
		exit 1
	fi
done

M="$SRC/tests/spin/logrep.pml"
echo "== model: log replica joins, the dead member goes, a second failure (exhaustive)"
if ! verify; then
	echo "FAIL: agreement violated with a log replica; trail:"
	( cd "$WORK" && spin -t -p paxos.pml | tail -40 )
	exit 1
fi
for v in BROKEN_LOGLEADS BROKEN_LOGVOTE; do
	echo "== broken variant logrep $v must be caught"
	if PAN_OPT=-O0 verify "-D$v"; then
		echo "FAIL: spin did not catch logrep $v: the model lost its teeth"
		exit 1
	fi
done
echo "OK"
