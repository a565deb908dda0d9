/*
 * readd.pml - Promela model of re-adding a removed member while a member
 * of an older configuration is down (doc/paxos.md section 7, "Re-adding a
 * member"; doc/cluster.md).  Checked by tests/spin/check.sh.
 *
 * Acceptors A=0, B=1, X=2, Y=3 with the acceptor rules of paxos.pml
 * (promise above the promise and only to a candidate whose log is at least
 * as up-to-date; accept at or above the promise, truncating at the first
 * conflict) plus the vote floor of src/repl/paxos.c: no promise to a
 * candidate whose log is behind (floorb, floorl).  A log's configuration is
 * that of its newest CONFIG entry (a member bitmask), {A,B,X} before any.
 *
 * B (ballot 2) is the operator's leader.  A is down for all of it: none of
 * B's messages reach A.  B is elected in {A,B,X} with X, commits its
 * barrier, then one change at a time, each committed in the configuration
 * it creates: remove A -> {B,X}, add Y -> {B,X,Y}, remove X -> {B,Y}; then
 * X's replica is dropped and re-created empty (the re-add, `quorumfs
 * member add`), and B appends the CONFIG that adds X -> {B,X,Y}.  With the
 * fix the new replica starts with B's ballot as its promise and B's commit
 * point as its floor (qfs_paxos_join_floor); Y is created the same way.
 *
 * A, which kept the log and configuration it had before it went down
 * (empty, {A,B,X}), campaigns once, at any point of all that, with ballot 1
 * (below B's) or 3 (above), and if elected sends its barrier to the members
 * of its configuration, each delivery at any later point or never.  Any of
 * B's messages to B, X, Y may be lost too (B then gives up).
 *
 * Agreement: the assert in choose().  Variants check.sh runs, each of
 * which spin must catch (the model keeps its teeth, and each half of the
 * fix is needed):
 *   -DBROKEN_NOFLOOR     the re-created replica starts empty, promise 0
 *                        (the hole of doc/cluster.md before the fix)
 *   -DBROKEN_NOVOTEFLOOR it starts with the promise only: A campaigns with
 *                        ballot 3 and wins with X's vote
 *   -DBROKEN_NOPROMISE   it starts with the vote floor only: A, elected
 *                        early in ballot 1, gets its barrier accepted by X
 */
#define NA 4
#define MAXL 6
#define INITCFG 7  /* {A,B,X} */

byte promised[NA];
byte alen[NA];
byte abal[NA * MAXL];
byte aval[NA * MAXL];
byte acfg[NA * MAXL];
byte floorb[NA];
byte floorl[NA];
byte chosen[MAXL];

#define MEMBER(c, j) ((((c) >> (j)) & 1) == 1)
#define QUORUM(c) (((((c) & 1) + (((c) >> 1) & 1) + (((c) >> 2) & 1) + (((c) >> 3) & 1)) / 2) + 1)
#define LASTBAL(j) (alen[j] > 0 -> abal[(j) * MAXL + alen[j] - 1] : 0)
/* candidate log (cb = ballot of its last entry, cl = length) vs acceptor j */
#define UPTODATE(cb, cl, j) ((cb) > LASTBAL(j) || ((cb) == LASTBAL(j) && (cl) >= alen[j]))
#define ABOVEFLOOR(cb, cl, j) ((cb) > floorb[j] || ((cb) == floorb[j] && (cl) >= floorl[j]))

inline choose(s, v)
{
	assert(chosen[s] == 0 || chosen[s] == v);
	chosen[s] = v
}

/* Acceptor j takes the ACCEPT of ballot bb carrying log lb/lv/lc[0..ll):
 * acks++ if it did. */
inline accept(j, bb)
{
	if
	:: bb >= promised[j] ->
		promised[j] = bb;
		k = 0;
		stop = false;
		do
		:: k < ll && !stop ->
			if
			:: k < alen[j] && abal[j * MAXL + k] == lb[k] -> k++
			:: else -> stop = true
			fi
		:: else -> break
		od;
		do
		:: k < ll ->
			abal[j * MAXL + k] = lb[k];
			aval[j * MAXL + k] = lv[k];
			acfg[j * MAXL + k] = lc[k];
			k++
		:: else -> break
		od;
		if
		:: alen[j] < ll || stop -> alen[j] = ll
		:: else -> skip
		fi;
		acks++
	:: else -> skip
	fi
}

/* The replica of j is dropped and created again, empty, for its re-add:
 * with the fix, the promise and floor of the leader (ballot bb, whose
 * log's committed point is its entry fl-1 of ballot fb). */
inline recreate(j, bb, fb, fl)
{
	k = 0;
	do
	:: k < MAXL -> abal[j * MAXL + k] = 0; aval[j * MAXL + k] = 0; acfg[j * MAXL + k] = 0; k++
	:: else -> break
	od;
	alen[j] = 0;
#if defined(BROKEN_NOFLOOR) || defined(BROKEN_NOPROMISE)
	promised[j] = 0;
#else
	promised[j] = bb;
#endif
#if defined(BROKEN_NOFLOOR) || defined(BROKEN_NOVOTEFLOOR)
	floorb[j] = 0;
	floorl[j] = 0
#else
	floorb[j] = fb;
	floorl[j] = fl
#endif
}

/* B: elected in {A,B,X} (A is down), then the barrier and three changes,
 * the re-creation of X and the CONFIG that adds it back. */
proctype leader()
{
	byte b = 2;
	byte j, k, acks, cfg, step;
	byte lb[MAXL];
	byte lv[MAXL];
	byte lc[MAXL];
	byte ll;
	bool stop;

	atomic {
		if
		:: promised[1] >= b -> goto done
		:: else -> skip
		fi;
		promised[1] = b
	}
	/* its PREPARE to X (the one to A is lost: A is down) */
	if
	:: atomic {
		if
		:: b > promised[2] && UPTODATE(LASTBAL(1), alen[1], 2) && ABOVEFLOOR(LASTBAL(1), alen[1], 2) ->
			promised[2] = b
		:: else -> goto done
		fi
	   }
	:: goto done /* lost */
	fi;
	atomic {
		/* its log (empty: it never heard A) and its barrier */
		ll = alen[1];
		k = 0;
		do
		:: k < ll -> lb[k] = abal[MAXL + k]; lv[k] = aval[MAXL + k]; lc[k] = acfg[MAXL + k]; k++
		:: else -> break
		od;
		lb[ll] = b; lv[ll] = b; lc[ll] = 0; ll++;
		cfg = INITCFG;
		step = 0
	}
round:
	/* send the log to the members of cfg but A (lost); B's own
	 * acceptance first (its order does not matter for this scenario) */
	acks = 0;
	atomic { accept(1, b) }
	j = 2;
	do
	:: j < NA ->
		if
		:: MEMBER(cfg, j) ->
			if
			:: atomic { accept(j, b) }
			:: skip /* lost */
			fi
		:: else -> skip
		fi;
		j++
	:: else -> break
	od;
	if
	:: acks >= QUORUM(cfg) ->
		atomic {
			k = 0;
			do
			:: k < ll -> choose(k, lv[k]); k++
			:: else -> break
			od
		}
	:: else -> goto done
	fi;
	/* the next change, once the previous one committed */
	atomic {
		step++;
		if
		:: step == 1 -> cfg = 6   /* remove A: {B,X} */
		:: step == 2 -> cfg = 14; /* add Y: {B,X,Y} (Y created with the floor) */
			recreate(3, b, b, ll)
		:: step == 3 -> cfg = 10  /* remove X: {B,Y} */
		:: step == 4 -> cfg = 14; /* X dropped, re-created, added back */
			recreate(2, b, b, ll)
		:: else -> goto done
		fi;
		lb[ll] = b; lv[ll] = 10 + step; lc[ll] = cfg; ll++
	}
	goto round;
done:
	skip
}

/* A: down with its old log and configuration; campaigns once, at any
 * point, with ballot 1 or 3. */
proctype stale()
{
	byte b, j, k, votes, acks, cfg;
	byte lb[MAXL];
	byte lv[MAXL];
	byte lc[MAXL];
	byte ll, clb;
	bool stop;

	if
	:: b = 1
	:: b = 3
	fi;
	atomic {
		if
		:: promised[0] >= b -> goto done
		:: else -> skip
		fi;
		promised[0] = b;
		votes = 1;
		ll = alen[0];
		clb = LASTBAL(0);
		cfg = INITCFG;
		k = 0;
		do
		:: k < ll ->
			lb[k] = abal[k]; lv[k] = aval[k]; lc[k] = acfg[k];
			if
			:: lc[k] != 0 -> cfg = lc[k]
			:: else -> skip
			fi;
			k++
		:: else -> break
		od
	}
	j = 1;
	do
	:: j < NA ->
		if
		:: MEMBER(cfg, j) ->
			if
			:: atomic {
				if
				:: b > promised[j] && UPTODATE(clb, ll, j) && ABOVEFLOOR(clb, ll, j) ->
					promised[j] = b;
					votes++
				:: else -> skip
				fi
			   }
			:: skip /* PREPARE or PROMISE lost */
			fi
		:: else -> skip
		fi;
		j++
	:: else -> break
	od;
	if
	:: votes < QUORUM(cfg) -> goto done
	:: else -> skip
	fi;
	atomic {
		lb[ll] = b; lv[ll] = b; lc[ll] = 0; ll++;
		acks = 0;
		accept(0, b)
	}
	/* its barrier to the members of its configuration, each delivered
	 * at any later point (the proctype interleaves with B's) or never */
	j = 1;
	do
	:: j < NA ->
		if
		:: MEMBER(cfg, j) ->
			if
			:: atomic { accept(j, b) }
			:: skip
			fi
		:: else -> skip
		fi;
		j++
	:: else -> break
	od;
	if
	:: acks >= QUORUM(cfg) ->
		atomic {
			k = 0;
			do
			:: k < ll -> choose(k, lv[k]); k++
			:: else -> break
			od
		}
	:: else -> skip
	fi;
done:
	skip
}

init {
	atomic {
		run leader();
		run stale()
	}
}
