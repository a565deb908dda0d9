/*
 * paxos.pml - Promela model of the Multi-Paxos protocol of src/repl/paxos.c
 * (protocol: doc/paxos.md).  Checked by tests/spin/check.sh.
 *
 * Three replicas, each an acceptor and a proposer.  Proposer i campaigns once
 * with the distinct ballot i+1 (so ballots 1..3 compete, in any order and
 * overlap).  Logs hold up to MAXL slots; an entry is (ballot, value).
 *
 * Phase 1: the candidate promises itself, then sends PREPARE(ballot, its log
 * position); an acceptor promises if the ballot is above its promise and the
 * candidate's log is at least as up-to-date as its own (ballot of the last
 * entry, then length).  With a quorum the candidate leads with its own log
 * and appends one entry of its ballot (value = ballot; the NOOP barrier of
 * the C code plays this role).  Phase 2: ACCEPT carries the leader's log; an
 * acceptor takes it if the ballot is not below its promise, keeping matching
 * entries and truncating at the first conflict.  The leader sends its accepts
 * while it persists the new entry itself, so its own acceptance happens
 * before the followers', after them, or never (a crash before its sync); it
 * counts its own vote only once it happened.  The leader commits its whole
 * log once a quorum accepted it: only then is its own-ballot entry on a
 * quorum, which is the C code's commit rule.
 *
 * Membership (doc/paxos.md section 7; compiled with -DMEMBERS, which
 * check.sh runs besides the plain model): a fourth acceptor (3) is a spare.
 * A log's configuration is that of its newest CONFIG entry (a member
 * bitmask; {0,1,2} before any), in force once appended.  A candidate
 * campaigns only if it is a member of its own log's configuration, asks
 * its members and needs a majority of them; a leader replicates to the
 * members of its newest configuration and commits with a majority of them,
 * counting itself only if it is one.  One leader, once its barrier
 * committed, appends one CONFIG entry that adds the spare or removes one
 * member (itself included) and commits it in the new configuration.
 * Acceptors take PREPAREs and ACCEPTs from anyone (as the C code does).
 *
 * Any message may be lost (a nondeterministic skip) or delayed (the accept
 * content is fixed at election time and may be delivered at any later point
 * of the interleaving).  Safety property (agreement): once a value is chosen
 * for a slot, no other value is ever chosen for it: the assert in choose().
 *
 * Deliberately broken variants, which spin must reject (check.sh runs them):
 *   -DBROKEN_BALLOT    acceptors take accepts of any ballot
 *   -DBROKEN_UPTODATE  acceptors promise without the up-to-date check
 *   -DBROKEN_SELFVOTE  the leader counts its own vote before its own
 *                      acceptance is durable (it sends while it syncs)
 *   -DBROKEN_TWOCHANGE the membership change replaces two members at once
 *                      ({0,1,2} -> {2,3}: majorities that need not meet)
 */
#ifdef MEMBERS
#define NA 4       /* acceptors; 3 is the spare */
#else
#define NA 3
#endif
#define INITCFG 7  /* {0,1,2} */
#define MAXL 3

byte promised[NA];
byte alen[NA];
byte abal[NA * MAXL];
byte aval[NA * MAXL];
byte acfg[NA * MAXL]; /* CONFIG entry: the new member bitmask; 0: not one */
byte chosen[MAXL];
bool changed;         /* the one membership change was proposed */

#define MEMBER(c, j) ((((c) >> (j)) & 1) == 1)
#define QUORUM(c) (((((c) & 1) + (((c) >> 1) & 1) + (((c) >> 2) & 1) + (((c) >> 3) & 1)) / 2) + 1)

#define LASTBAL(j) (alen[j] > 0 -> abal[(j) * MAXL + alen[j] - 1] : 0)

inline choose(s, v)
{
	assert(chosen[s] == 0 || chosen[s] == v);
	chosen[s] = v
}

/* Acceptor j takes the leader's ACCEPT (or it, or its answer, is lost). */
inline accept(j)
{
	if
	:: atomic {
		if
#ifdef BROKEN_BALLOT
		:: true ->
#else
		:: b >= promised[j] ->
#endif
			if
			:: b > promised[j] -> promised[j] = b
			:: else -> skip
			fi;
			/* keep the matching prefix, truncate at the first conflict */
			k = 0;
			stop = false;
			do
			:: k < llen && !stop ->
				if
				:: k < alen[j] && abal[j * MAXL + k] == lbal[k] -> k++
				:: else -> stop = true
				fi
			:: else -> break
			od;
			do
			:: k < llen ->
				abal[j * MAXL + k] = lbal[k];
				aval[j * MAXL + k] = lval[k];
				acfg[j * MAXL + k] = lcfg[k];
				k++
			:: else -> break
			od;
			if
			:: alen[j] < llen || stop -> alen[j] = llen
			:: else -> skip
			fi;
#ifdef BROKEN_SELFVOTE
			if
			:: j != me -> acks++
			:: else -> skip
			fi
#else
			acks++
#endif
		:: else -> skip
		fi
	   }
	:: skip /* ACCEPT or ACCEPTED lost; for j == me: crashed before its sync */
	fi
}

proctype proposer(byte me)
{
	byte b = me + 1;
	byte j, k, votes, acks, cfg;
	byte clen, clb;
	byte lbal[MAXL];
	byte lval[MAXL];
	byte lcfg[MAXL];
	byte llen;
	bool stop, selflast, round2;

	/* phase 1: promise ourselves and snapshot our log (the PREPARE's
	 * content) and its configuration; a non-member never campaigns */
	atomic {
		if
		:: promised[me] >= b -> goto done /* promised a higher ballot already */
		:: else -> skip
		fi;
		clen = alen[me];
		clb = LASTBAL(me);
		cfg = INITCFG;
		k = 0;
		do
		:: k < clen ->
			lbal[k] = abal[me * MAXL + k]; lval[k] = aval[me * MAXL + k];
			lcfg[k] = acfg[me * MAXL + k];
			if
			:: lcfg[k] != 0 -> cfg = lcfg[k]
			:: else -> skip
			fi;
			k++
		:: else -> break
		od;
		if
		:: !MEMBER(cfg, me) -> goto done
		:: else -> skip
		fi;
		promised[me] = b;
		votes = 1
	}
	j = 0;
	do
	:: j < NA ->
		if
		:: j != me && MEMBER(cfg, j) ->
			if
			:: atomic {
				if
#ifdef BROKEN_UPTODATE
				:: b > promised[j] ->
#else
				:: b > promised[j] && (clb > LASTBAL(j) || (clb == LASTBAL(j) && clen >= alen[j])) ->
#endif
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
	:: votes < QUORUM(cfg) -> goto done /* lost the election */
	:: else -> skip
	fi;

	/* leader: its log plus one entry of its own ballot */
	llen = clen;
	if
	:: llen < MAXL -> lbal[llen] = b; lval[llen] = b; lcfg[llen] = 0; llen++
	:: else -> skip
	fi;
	round2 = false;
phase2:

	/* phase 2: the leader sends its accepts while it persists the entry
	 * itself, so its own acceptance may come first, after the followers'
	 * or never (it crashed before its sync returned); it counts itself only
	 * once its own acceptance happened (is durable). */
	acks = 0;
#ifdef BROKEN_SELFVOTE
	if
	:: MEMBER(cfg, me) -> acks = 1; /* counts its own vote before its acceptance is durable */
	:: else -> skip
	fi;
#endif
	if
	:: selflast = false
	:: selflast = true
	fi;
	j = 0;
	do
	:: j < NA ->
		if
		:: MEMBER(cfg, j) && (j != me || !selflast) -> accept(j)
		:: else -> skip
		fi;
		j++
	:: else -> break
	od;
	if
	:: selflast && MEMBER(cfg, me) -> accept(me)
	:: else -> skip
	fi;

	/* commit: a quorum of the configuration in force holds the log
	 * ending with our own-ballot entry */
	if
	:: acks >= QUORUM(cfg) && llen > clen ->
		atomic {
			k = 0;
			do
			:: k < llen -> choose(k, lval[k]); k++
			:: else -> break
			od
		}
	:: else -> goto done
	fi;

	/* one membership change, by one leader, once its barrier committed:
	 * in force once appended, committed in the new configuration */
	if
#ifdef MEMBERS
	:: !round2 && !changed && llen < MAXL ->
		atomic {
			changed = true;
			round2 = true;
			lbal[llen] = b;
			lval[llen] = 10 + b;
#ifdef BROKEN_TWOCHANGE
			cfg = 12; /* {2,3} */
#else
			if
			:: !MEMBER(cfg, 3) -> cfg = cfg | 8   /* add the spare */
			:: MEMBER(cfg, 0) -> cfg = cfg & 14 /* remove 0 */
			:: MEMBER(cfg, 1) -> cfg = cfg & 13 /* remove 1 */
			:: MEMBER(cfg, 2) -> cfg = cfg & 11 /* remove 2 */
			fi;
#endif
			lcfg[llen] = cfg;
			llen++
		}
		goto phase2
#endif
	:: else -> skip
	fi;
done:
	skip
}

init {
	atomic {
		run proposer(0);
		run proposer(1);
#ifndef MEMBERS
		/* (with MEMBERS two proposers, so that the search stays within
		 * CI's budget: 3 proposers and 4 acceptors take 91 M states) */
		run proposer(2)
#endif
	}
}
