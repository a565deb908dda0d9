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
 */
#define NA 3
#define Q 2
#define MAXL 3

byte promised[NA];
byte alen[NA];
byte abal[NA * MAXL];
byte aval[NA * MAXL];
byte chosen[MAXL];

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
	byte j, k, votes, acks;
	byte clen, clb;
	byte lbal[MAXL];
	byte lval[MAXL];
	byte llen;
	bool stop, selflast;

	/* phase 1: promise ourselves and snapshot our log (the PREPARE's content) */
	atomic {
		if
		:: promised[me] >= b -> goto done /* promised a higher ballot already */
		:: else -> skip
		fi;
		promised[me] = b;
		clen = alen[me];
		clb = LASTBAL(me);
		k = 0;
		do
		:: k < clen -> lbal[k] = abal[me * MAXL + k]; lval[k] = aval[me * MAXL + k]; k++
		:: else -> break
		od;
		votes = 1
	}
	j = 0;
	do
	:: j < NA ->
		if
		:: j != me ->
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
	:: votes < Q -> goto done /* lost the election */
	:: else -> skip
	fi;

	/* leader: its log plus one entry of its own ballot */
	llen = clen;
	if
	:: llen < MAXL -> lbal[llen] = b; lval[llen] = b; llen++
	:: else -> skip
	fi;

	/* phase 2: the leader sends its accepts while it persists the entry
	 * itself, so its own acceptance may come first, after the followers'
	 * or never (it crashed before its sync returned); it counts itself only
	 * once its own acceptance happened (is durable). */
	acks = 0;
#ifdef BROKEN_SELFVOTE
	acks = 1; /* counts its own vote before its acceptance is durable */
#endif
	if
	:: selflast = false
	:: selflast = true
	fi;
	j = 0;
	do
	:: j < NA ->
		if
		:: j != me || !selflast -> accept(j)
		:: else -> skip
		fi;
		j++
	:: else -> break
	od;
	if
	:: selflast -> accept(me)
	:: else -> skip
	fi;

	/* commit: a quorum holds the log ending with our own-ballot entry */
	if
	:: acks >= Q && llen > clen ->
		atomic {
			k = 0;
			do
			:: k < llen -> choose(k, lval[k]); k++
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
		run proposer(0);
		run proposer(1);
		run proposer(2)
	}
}
