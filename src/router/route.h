/*
 * route.h - leader routing and retries of proposals and reads (DESIGN.md
 * section 3: the router "sends to the partition's leader and retries on
 * leader change"; doc/cell.md "Requests").
 *
 * The cell (node/cell.h) offers per-replica operations only: propose at
 * node N, read node N's replica, what node N knows of a group (its leader,
 * its lease, whether its replica stopped).  A route decides where to send
 * and when to retry: it asks the last node a proposal succeeded at (then
 * every node) who leads, follows -EREMOTE hints, waits out an election
 * (polling every QFS_ROUTE_POLL_MS), retries the outcomes that prove an
 * entry was never accepted (-EREMOTE, -EAGAIN, QFS_ESTOPPED on arrival, a
 * node that stopped before the attempt), fails at once when a majority of
 * the group's replicas stopped after an error, and gives up after the
 * cell's timeout (qfs_clock_call_deadline: one budget per FUSE call) with
 * -ETIMEDOUT; a timeout at the leader is final, the entry may still
 * commit.  Right after a timeout of a group, a wait on it inside a FUSE
 * call waits only QFS_ROUTE_NOQUORUM_WAIT_MS for QFS_ROUTE_NOQUORUM_HOLD_MS
 * (the kernel's back-to-back calls after a failure do not each wait a
 * whole timeout); a node that (re)starts ends those short waits for every
 * group (the embedded cell tells, qfs_cell_route.node_up).
 *
 * Reads: strong reads go to the leader while it holds its lease; eventual
 * reads (qfs_cell_read_mode) fall back to the running replica that applied
 * the most (ties: the leader).
 *
 * Remote cells (cluster mode, doc/cluster.md section 2), whose replicas
 * are not visible without a request: a proposal or a read goes to the
 * group's leader as the route last knew it (a cache of QFS_ROUTE_LEADERS
 * slots; the first node hosting the group at first), one attempt waits
 * at most QFS_ROUTE_TRY_MS, a node that does not answer is passed over
 * for the next one hosting the group (in file order, skipping silent
 * nodes), -EREMOTE hints
 * are followed, -EAGAIN, QFS_ESTOPPED and -ETIMEDOUT answers are retried
 * after QFS_ROUTE_ELECTION_MS (a proposal carries the remote cell's retry
 * token, so a retry never applies twice), QFS_ENOGROUP in a cluster of
 * more than QFS_CLUSTER_REPLICAS nodes makes the cell forget and ask
 * again the group's nodes (a membership change moved it) and the call go
 * on at those that did not answer QFS_ENOGROUP yet (final only when none
 * is left, or a second node said so and ops->exists says no), and the call
 * gives up with -ETIMEDOUT after the cell's timeout from its start.  Scans go page by
 * page, each page routed alone.
 *
 * qfs_route_attach puts a route behind qfs_cell_propose/get/scan, so
 * every caller (router, meta, archive, 2PC), embedded or cluster mount,
 * gets the same routing.
 *
 * Thread-safety: every function but new/free may be called from any
 * thread; the route's state is under its own mutex (never held across a
 * cell call) and relaxed atomics.
 */
#ifndef QFS_ROUTER_ROUTE_H
#define QFS_ROUTER_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/qfs.h"
#include "node/cell.h"

#define QFS_ROUTE_POLL_MS 2             /* wait step while no leader is known */
#define QFS_ROUTE_NOQUORUM_HOLD_MS 1000 /* after a timeout, later waits on that group ... */
#define QFS_ROUTE_NOQUORUM_WAIT_MS 100  /* ... wait only this long, for this long */
#define QFS_ROUTE_TRY_MS 3000           /* remote: one attempt at one node */
#define QFS_ROUTE_ELECTION_MS 20        /* remote: pause before a retry without a hint */
#define QFS_ROUTE_LEADERS 256           /* remote: leader cache slots (by group % slots) */
#define QFS_ROUTE_MAX_NODES 64          /* remote: nodes one group's calls may try */

/* What a route needs of a cell: the per-replica operations of node/cell.h
 * (qfs_route_new binds them to a real cell; a unit test binds a fake one)
 * plus its clock.  Every function gets the bound cell as first argument
 * and has the contract of the cell.h function named in its comment. */
struct qfs_route_ops {
	uint32_t (*nodes)(void *cell);                       /* qfs_cell_node_count */
	uint32_t (*timeout_ms)(void *cell);                  /* qfs_cell_timeout_ms */
	enum qfs_cell_reads (*read_mode)(void *cell);        /* qfs_cell_read_mode */
	int (*exists)(void *cell, qfs_group_t group);        /* qfs_cell_group_exists */
	int (*view)(void *cell, uint32_t id, qfs_group_t group, int info,
		    struct qfs_cell_view *out);              /* qfs_cell_replica_view */
	int (*propose_at)(void *cell, uint32_t id, qfs_group_t group, const void *txn, size_t len,
			  uint32_t timeout_ms, int *result, uint32_t *leader); /* qfs_cell_propose_at */
	int (*get_at)(void *cell, uint32_t id, qfs_group_t group, const uint8_t *key,
		      size_t key_len, uint32_t wait_ms, void **val, size_t *val_len,
		      uint32_t *leader);                     /* qfs_cell_get_at */
	int (*scan_at)(void *cell, uint32_t id, qfs_group_t group, const uint8_t *lo,
		       size_t lo_len, const uint8_t *hi, size_t hi_len, uint32_t wait_ms,
		       qfs_store_scan_cb cb, void *arg, int *more, struct qfs_buf *resume,
		       uint32_t *leader);                    /* qfs_cell_scan_at */
	int (*get_at_val)(void *cell, uint32_t id, qfs_group_t group, const uint8_t *key,
			  size_t key_len, uint32_t wait_ms, struct qfs_val *out,
			  uint32_t *leader);         /* qfs_cell_get_at_val; or NULL:
							get_at's value held */
	uint64_t (*now_ms)(void *cell);                      /* monotonic ms */
	void (*sleep_ms)(void *cell, uint32_t ms);
	/* Remote cells (cluster mode) only; NULL for an embedded one: */
	int (*remote)(void *cell);                           /* qfs_cell_remote */
	int (*prepare)(void *cell, qfs_group_t group, const void *txn, size_t len,
		       struct qfs_buf *out);                 /* qfs_cell_propose_prepare */
	uint32_t (*node_id)(void *cell, uint32_t idx);       /* qfs_cell_node_id */
	int (*silent)(void *cell, uint32_t id);              /* qfs_cell_node_silent */
	/* The nodes hosting group, in order, into out[max]; returns their
	 * count (0: unknown).  NULL: every node hosts every group.
	 * (qfs_cell_group_nodes) */
	uint32_t (*group_nodes)(void *cell, qfs_group_t group, uint32_t *out, uint32_t max);
	void (*group_forget)(void *cell, qfs_group_t group);  /* qfs_cell_group_forget; or NULL */
};

struct qfs_route;

/* Give the embedded cell c a route: qfs_cell_propose/get/scan use it from
 * now on, and qfs_cell_close frees it.  Call right after qfs_cell_open,
 * before any proposal or read (qfs_cell_set_route's rules); the
 * composition root does (src/cmd), and so do tests that open a cell.
 * Embedded or cluster cell alike.  0 or -ENOMEM. */
int qfs_route_attach(struct qfs_cell *c);
/* A route over any cell through ops (unit tests: a fake cell answering
 * -EREMOTE, -EAGAIN, -ETIMEDOUT on a fake clock), not attached to a real
 * cell.  ops and cell are borrowed.  *out set only on success.  -ENOMEM. */
int qfs_route_new_ops(const struct qfs_route_ops *ops, void *cell, struct qfs_route **out);
/* Free a route of qfs_route_new_ops.  NULL: nothing.  No call may be
 * running in it. */
void qfs_route_free(struct qfs_route *rt);

/* Routed calls: contracts of qfs_cell_propose / qfs_cell_get /
 * qfs_cell_scan (cell.h): 0, -ETIMEDOUT (no leader or quorum within the
 * timeout), QFS_ENOGROUP, QFS_ESTOPPED / -ENOSPC (a majority of the
 * replicas stopped after an error), and the replica's own errors. */
int qfs_route_propose(struct qfs_route *rt, qfs_group_t group, const void *txn, size_t len,
		      int *result);
int qfs_route_get(struct qfs_route *rt, qfs_group_t group, const uint8_t *key, size_t key_len,
		  void **val, size_t *val_len);
int qfs_route_scan(struct qfs_route *rt, qfs_group_t group, const uint8_t *lo, size_t lo_len,
		   const uint8_t *hi, size_t hi_len, qfs_store_scan_cb cb, void *arg);
/* As qfs_route_get, the value held in *out (empty on entry, set only on
 * success; the caller releases it once): qfs_cell_get_val's contract. */
int qfs_route_get_val(struct qfs_route *rt, qfs_group_t group, const uint8_t *key, size_t key_len,
		      struct qfs_val *out);

/* Counters since new: attempts re-sent after -EREMOTE/-EAGAIN (redirects)
 * and calls that gave up with -ETIMEDOUT. */
void qfs_route_stat(struct qfs_route *rt, uint64_t *redirects, uint64_t *timeouts);

#endif
