/*
 * xact.h - atomic transactions across groups (partitions): two-phase
 * commit with one group as coordinator (by default the meta group), like
 * DynamoDB's TransactWriteItems over several partitions.  Protocol, crash
 * cases and cost: doc/xact.md; the store's ops: common/txn.h (PREPARE,
 * COMMIT, ABORT, DECIDE).
 *
 * A run: PREPARE every part in its group (checks conditions and locks,
 * keeps the effects and locks its keys) -> DECIDE 'C' in the coordinator
 * (the commit point) -> COMMIT every part -> DECIDE 'F' (forget).  A crash
 * anywhere leaves prepared parts that qfs_xact_recover finishes: committed
 * if the decision 'C' was recorded, aborted otherwise.  While a part is
 * prepared, its group refuses other txns touching its keys with -EBUSY
 * and reads see the values before the txn (read committed).
 *
 * Thread-safety: any thread; runs block on proposals (bounded by the
 * cell's timeout per proposal).  The proposals of one phase (the PREPAREs,
 * the COMMITs) run at once, one thread per part beyond the first.
 */
#ifndef QFS_ROUTER_XACT_H
#define QFS_ROUTER_XACT_H

#include <stddef.h>
#include <stdint.h>

#include "common/qfs.h"
#include "common/txn.h"

struct qfs_cell;

struct qfs_xact_part {
	qfs_group_t group;        /* the part's group; distinct over a run */
	const struct qfs_txn *txn; /* ordinary ops (no 2PC op), borrowed */
};

/* Run parts (n >= 1, distinct groups) atomically with coord as the
 * coordinator group.  Returns 0 with *result 0 (every part committed and
 * visible) or the first failing part's error (nothing applied; -EBUSY if
 * the parts' keys stayed locked by other txns for the cell's timeout);
 * or a propose error (-ETIMEDOUT, -EIO, QFS_ENOGROUP, ...): then the
 * outcome is decided by qfs_xact_recover, like an unacknowledged single
 * txn (committed iff the decision 'C' was recorded); -ETIMEDOUT also when
 * the run lasted over half of qfs_xact_abort_keep_ms before its commit
 * point (nothing applied).  -EINVAL: n == 0, two parts on one group, or a
 * part holding a 2PC op.  -ENOMEM.  -ECANCELED only with the test hook.
 * *result is set only when 0 is returned.  A part's sub-txn is evaluated
 * at PREPARE against its group as it is then (conditions, LINK_DROP's
 * "last link?"), and its keys stay locked until COMMIT. */
int qfs_xact_run(struct qfs_cell *c, qfs_group_t coord, const struct qfs_xact_part *parts,
		 size_t n, int *result);

/* qfs_xact_run, but the keys' locks are waited out for at most busy_ms
 * (0: the cell's timeout) before *result -EBUSY: a caller that can
 * finish stale locks (a dead coordinator's prepared txns) does that
 * sooner than the whole timeout. */
int qfs_xact_run_wait(struct qfs_cell *c, qfs_group_t coord, const struct qfs_xact_part *parts,
		      size_t n, uint32_t busy_ms, int *result);

/* Finish every prepared txn of coordinator coord found on groups (which
 * must include every group a run of coord may have touched): decision 'C'
 * -> COMMIT; none -> DECIDE 'A' (-EALREADY means 'C' was recorded first:
 * commit) then ABORT; then forget the decision.  Decisions of coord left
 * with no prepared part are forgotten too, except that an abort decision
 * younger than qfs_xact_abort_keep_ms stays (a live coordinator may still
 * be preparing that txid: the kept 'A' makes its DECIDE 'C' fail).  Call
 * at router open before serving and with every group (the forgetting is
 * right only then: see qfs_xact_finish for a part of them).  Prepared
 * txns of other coordinators are left alone (logged).  0, or the first
 * error of a read or proposal (what was finished stays finished; call
 * again), -ENOMEM. */
int qfs_xact_recover(struct qfs_cell *c, qfs_group_t coord, const qfs_group_t *groups, size_t n);

/* qfs_xact_recover for a recovery that runs while other routers run txns
 * of coord (cluster mode: several mounts of one cluster), so groups may
 * not hold every part of a live run: another mount may have created a
 * group (a split) after groups was listed, prepared a part there and
 * recorded 'C', and a node's list of its groups may not have answered.
 * Forgetting that 'C' (no part of it in groups) would let a later
 * recovery of that group abort the part while the run's COMMIT answers
 * 0: an acknowledged write gone (a lookup found a file's entry and not
 * its inode, or a listing missed the name of a file whose inode was
 * there).  So it finishes what groups hold and forgets only the abort
 * decisions old enough, never a 'C' (a run's own forget step removes its
 * 'C'; one left by a run that died after its commit point stays, a few
 * dozen bytes in the coordinator group).  Errors of qfs_xact_recover. */
int qfs_xact_recover_live(struct qfs_cell *c, qfs_group_t coord, const qfs_group_t *groups, size_t n);

/* The first half of qfs_xact_recover: finish the prepared txns of coord
 * found on groups, forget no decision.  For a recovery that covers only
 * some groups (a run's own parts after its timeout): a 'C' of another
 * run whose parts are all on other groups is still needed there (its
 * COMMITs may not have arrived yet); forgetting it would let a later
 * recovery abort those parts, and their run's COMMIT would then answer 0
 * for a write that is gone.  Errors of qfs_xact_recover. */
int qfs_xact_finish(struct qfs_cell *c, qfs_group_t coord, const qfs_group_t *groups, size_t n);

/* Run one ordinary txn on group, retrying (with backoff, within the cell's
 * timeout) while its result is -EBUSY (keys locked by a prepared 2PC txn).
 * Contract of qfs_cell_propose; *result is -EBUSY if the keys stayed
 * locked.  For the router's single-group path once partitions land. */
int qfs_xact_propose(struct qfs_cell *c, qfs_group_t group, const struct qfs_txn *txn,
		     int *result);

/* qfs_xact_propose with the lock wait bounded as in qfs_xact_run_wait. */
int qfs_xact_propose_wait(struct qfs_cell *c, qfs_group_t group, const struct qfs_txn *txn,
			  uint32_t busy_ms, int *result);

/* Counts since the process started (all runs and recoveries of every
 * cell), for status text and tests.  Any thread. */
struct qfs_xact_stat {
	uint64_t runs;          /* qfs_xact_run calls that got to PREPARE */
	uint64_t committed;     /* runs that returned 0 with result 0 */
	uint64_t retries;       /* attempts repeated after -EBUSY / -EALREADY */
	uint64_t busy_waits;    /* qfs_xact_propose retries after -EBUSY */
	uint64_t rec_commits;   /* parts committed by a recovery */
	uint64_t rec_aborts;    /* parts aborted by a recovery */
};
void qfs_xact_stat(struct qfs_xact_stat *out);

/* How long an abort decision is kept (ms of txid age, the txid carries its
 * creation time) before a recovery may forget it; a coordinator never
 * decides 'C' for a txid older than half of it (by the run's monotonic
 * time and by the txid's wall-clock age, which recoveries use: a forward
 * step of the wall clock makes a run give up rather than commit after a
 * recovery forgot its 'A'; routers of one coordinator group on different
 * machines need wall clocks within keep / 2 of each other).  Default
 * QFS_XACT_ABORT_KEEP_MS.  0: recoveries forget at once, which is right
 * only when no other coordinator of the group can be alive (tests); runs
 * then have no age limit. */
#define QFS_XACT_ABORT_KEEP_MS (10u * 60u * 1000u)
extern uint32_t qfs_xact_abort_keep_ms;

/* TEST HOOK (fault injection, never set in production): when k =
 * qfs_xact_test_stop > 0, every qfs_xact_run stops right after its k-th
 * proposal and returns -ECANCELED, leaving the state a crash of the
 * coordinator there would leave.  Steps: 1..n the PREPAREs, n+1 DECIDE
 * 'C', n+2..2n+1 the COMMITs, 2n+2 DECIDE 'F'; the proposals of a phase
 * run at once, so stopping at step j of a phase runs only its first j
 * parts.  Not thread-safe: set it while no run is in progress. */
extern int qfs_xact_test_stop;

/* TEST HOOK: when set, the wall clock (ms since the epoch) that txids are
 * stamped and aged with, instead of CLOCK_REALTIME.  Set it while no run
 * or recovery is in progress. */
extern uint64_t (*qfs_xact_test_wall_ms)(void);

#endif
