/*
 * logrep.pml - Promela model of the healer's log replica (doc/paxos.md
 * section 7a; doc/cluster.md section 1c).  Checked by tests/spin/check.sh.
 *
 * Acceptors 0, 1, 2 (storage replicas) and 3 (a spare node, empty), with
 * the acceptor rules of paxos.pml and readd.pml: promise above the promise
 * and only to a candidate whose log is at least as up-to-date (ballot of
 * the last entry, then length) and not behind the acceptor's vote floor;
 * accept at or above the promise, keeping the matching prefix and
 * truncating at the first conflict.  A log's configuration is that of its
 * newest CONFIG entry (a member bitmask), {0,1,2} before any; node 3 is a
 * log replica whenever it is a member (the kind bit of its id word).
 *
 * Node 1 (ballot 2) is elected in {0,1,2} and commits its barrier.  Then
 * node 0 dies (nothing reaches it any more) and the healer on node 1 does
 * its phase 1: a log replica on node 3, created with node 1's promise and
 * vote floor and started at node 1's commit point P (the snapshot point:
 * its log ends at P with P's ballot, it holds no entry below it: value
 * UNKNOWN, and no store), added by a CONFIG entry ({0,1,2,3}: 3 of 4),
 * then node 0 removed ({1,2,3}: 2 of 3), then a client write committed
 * by whoever acknowledges it.  Each of node 1's messages may be lost, and
 * node 1 may crash at any point (it stops).  Node 2 campaigns once, at any
 * point, with ballot 3 and its log as it is then (the second failure: the
 * leader gone while the group is 2 storage + 1 log replica, or earlier);
 * if elected it commits its barrier over its log.  Node 0 may come back
 * with its stale log and campaign (stale(), below).
 *
 * Agreement: the assert in choose() (a value chosen for a slot is never
 * replaced; a leader that holds no value for a chosen slot, UNKNOWN,
 * replaces it too).  Variants check.sh runs, each of which spin must
 * catch:
 *   -DBROKEN_LOGLEADS  the log replica campaigns too (ballot 4): elected,
 *                      its log has no entry below its start point, so it
 *                      cannot give the entries acknowledged before it
 *   -DBROKEN_LOGVOTE   the log replica promises without the up-to-date
 *                      check ("it has no store, its vote is a formality"):
 *                      node 2, lagging, wins with its vote and overwrites
 *                      the write node 1 and the log replica committed
 */
#define NA 4
#define MAXL 5
#define INITCFG 7   /* {0,1,2} */
#define UNKNOWN 99  /* a log replica's slot below its start point */

byte promised[NA];
byte alen[NA];
byte abal[NA * MAXL];
byte aval[NA * MAXL];
byte acfg[NA * MAXL];
byte floorb[NA];
byte floorl[NA];
byte chosen[MAXL];
bool dead0;          /* node 0 died: nothing reaches it */

#define MEMBER(c, j) ((((c) >> (j)) & 1) == 1)
#define NMEMB(c) (((c) & 1) + (((c) >> 1) & 1) + (((c) >> 2) & 1) + (((c) >> 3) & 1))
#define QUORUM(c) ((NMEMB(c) / 2) + 1)
#define LASTBAL(j) (alen[j] > 0 -> abal[(j) * MAXL + alen[j] - 1] : 0)
#define UPTODATE(cb, cl, j) ((cb) > LASTBAL(j) || ((cb) == LASTBAL(j) && (cl) >= alen[j]))
#define ABOVEFLOOR(cb, cl, j) ((cb) > floorb[j] || ((cb) == floorb[j] && (cl) >= floorl[j]))
#ifdef BROKEN_LOGVOTE
#define VOTE_OK(cb, cl, j) ((j) == 3 || (UPTODATE(cb, cl, j) && ABOVEFLOOR(cb, cl, j)))
#else
#define VOTE_OK(cb, cl, j) (UPTODATE(cb, cl, j) && ABOVEFLOOR(cb, cl, j))
#endif

inline choose(s, v)
{
	assert(v != UNKNOWN && (chosen[s] == 0 || chosen[s] == v));
	chosen[s] = v
}

/* Acceptor j takes the ACCEPT of ballot bb carrying log lb/lv/lc[0..ll):
 * acks++ if it did.  (A log replica keeps its slots below its start: they
 * match by ballot, the leader sends from there on.) */
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

/* Candidate me campaigns once with ballot b: its log and configuration
 * as they are, PREPARE to the other members (each may be lost); elected,
 * its barrier (value b) over its log to the members, committed with a
 * quorum of its configuration. */
inline campaign(me, b)
{
	atomic {
		if
		:: promised[me] >= b -> goto done
		:: else -> skip
		fi;
		promised[me] = b;
		votes = 1;
		ll = alen[me];
		clb = LASTBAL(me);
		cfg = INITCFG;
		k = 0;
		do
		:: k < ll ->
			lb[k] = abal[me * MAXL + k]; lv[k] = aval[me * MAXL + k]; lc[k] = acfg[me * MAXL + k];
			if
			:: lc[k] != 0 -> cfg = lc[k]
			:: else -> skip
			fi;
			k++
		:: else -> break
		od;
		if
		:: !MEMBER(cfg, me) || ll >= MAXL -> goto done
		:: else -> skip
		fi
	}
	j = 0;
	do
	:: j < NA ->
		if
		:: j != me && MEMBER(cfg, j) && !(j == 0 && dead0) ->
			if
			:: atomic {
				if
				:: b > promised[j] && VOTE_OK(clb, ll, j) ->
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
		accept(me, b)
	}
	j = 0;
	do
	:: j < NA ->
		if
		:: j != me && MEMBER(cfg, j) && !(j == 0 && dead0) ->
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
	fi
}

/* Node 1: the leader and its healer. */
proctype leader()
{
	byte b = 2;
	byte j, k, acks, cfg, step, votes, clb;
	byte lb[MAXL];
	byte lv[MAXL];
	byte lc[MAXL];
	byte ll;
	bool stop;

	/* elected in {0,1,2}: its own vote and one of 0 and 2 (the other's
	 * PREPARE or PROMISE lost) */
	atomic {
		if
		:: promised[1] >= b -> goto done
		:: else -> skip
		fi;
		promised[1] = b;
		ll = alen[1];
		clb = LASTBAL(1);
		k = 0;
		do
		:: k < ll -> lb[k] = abal[MAXL + k]; lv[k] = aval[MAXL + k]; lc[k] = acfg[MAXL + k]; k++
		:: else -> break
		od;
		if
		:: b > promised[0] && VOTE_OK(clb, ll, 0) -> promised[0] = b
		:: b > promised[2] && VOTE_OK(clb, ll, 2) -> promised[2] = b
		:: else -> goto done
		fi;
		lb[ll] = b; lv[ll] = b; lc[ll] = 0; ll++;
		cfg = INITCFG;
		step = 0
	}
round:
	acks = 0;
	atomic { accept(1, b) }
	j = 0;
	do
	:: j < NA ->
		if
		:: j != 1 && MEMBER(cfg, j) && !(j == 0 && dead0) ->
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
	/* the healer's next step, once the previous entry committed (or a
	 * crash: it stops here) */
	if
	:: skip
	:: goto done
	fi;
	atomic {
		step++;
		if
		:: step == 1 ->
			/* node 0 dies; a log replica on node 3 at the commit
			 * point (ll entries), with node 1's promise and floor */
			dead0 = true;
			k = 0;
			do
			:: k < ll ->
				abal[3 * MAXL + k] = lb[k]; aval[3 * MAXL + k] = UNKNOWN;
				acfg[3 * MAXL + k] = lc[k]; k++
			:: else -> break
			od;
			alen[3] = ll;
			promised[3] = b;
			floorb[3] = b;
			floorl[3] = ll;
			cfg = 15          /* add the log replica: {0,1,2,3} */
		:: step == 2 -> cfg = 14  /* remove node 0: {1,2,3} */
		:: step == 3 -> skip      /* a client write */
		:: else -> goto done
		fi;
		lb[ll] = b; lv[ll] = 10 + step; lc[ll] = (step < 3 -> cfg : 0); ll++
	}
	goto round;
done:
	skip
}

/* Node 2: campaigns once, at any point, with ballot 3. */
proctype second()
{
	byte j, k, acks, cfg, votes, clb;
	byte lb[MAXL];
	byte lv[MAXL];
	byte lc[MAXL];
	byte ll;
	bool stop;

	campaign(2, 3);
done:
	skip
}

/* Node 0: back with its stale log and configuration (or before it dies),
 * campaigns once with ballot 5 (above every other); with -DSTALE_LOW also
 * with ballot 1, below node 1's (3.4 M states, 13 s and 760 MB here: run
 * by hand; the CI search takes 0.9 M states, 300 MB). */
proctype stale()
{
	byte j, k, acks, cfg, votes, clb, b;
	byte lb[MAXL];
	byte lv[MAXL];
	byte lc[MAXL];
	byte ll;
	bool stop;

	if
#ifdef STALE_LOW
	:: b = 1
#endif
	:: b = 5
	fi;
	campaign(0, b);
done:
	skip
}

#ifdef BROKEN_LOGLEADS
/* Node 3: the log replica campaigns once, at any point, with ballot 4 (if
 * it is a member in its own log by then). */
proctype logcand()
{
	byte j, k, acks, cfg, votes, clb;
	byte lb[MAXL];
	byte lv[MAXL];
	byte lc[MAXL];
	byte ll;
	bool stop;

	campaign(3, 4);
done:
	skip
}
#endif

init {
	atomic {
		run leader();
		run second();
		run stale();
#ifdef BROKEN_LOGLEADS
		run logcand()
#endif
	}
}
