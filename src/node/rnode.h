/*
 * rnode.h - a replicated storage node: hosts one replica of each of its
 * groups and drives a Multi-Paxos state machine (repl/paxos.h) per group
 * over a transport endpoint (net/net.h), with one WAL per group and one
 * RocksDB (store/store.h).  Driver contract, ordering and recovery:
 * doc/rnode.md.  It has the shape of node.h so that the mount can swap it in.
 *
 * Layout of a node directory:
 *   DIR/FORMAT                    "quorumfs-rnode 1\n"
 *   DIR/store/                    RocksDB
 *   DIR/wal/<group 16hex>/        one WAL per group (entries framed by
 *                                 qfs_repl_entry_encode_hdr)
 *   DIR/groups/<group 16hex>      "members 1 2 3\n" (written at create)
 *   DIR/groups/<group 16hex>.promise  "promised <ballot>\n" (temp + fsync +
 *                                 rename + fsync dir, before any message
 *                                 that reports it is sent)
 *
 * One I/O thread per node does everything that touches the WALs, the paxos
 * machines and the endpoint; proposers block in qfs_rnode_propose() until
 * their entry is applied here, which happens only after a quorum made it
 * durable (so "propose returned 0" means committed and applied locally).
 *
 * Thread-safety: every function may be called from any thread, except open
 * and close (no other call on the node may run during or after close).
 */
#ifndef QFS_NODE_RNODE_H
#define QFS_NODE_RNODE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/qfs.h"
#include "net/net.h"
#include "repl/paxos.h"
#include "store/store.h"

#define QFS_RNODE_MAX_GROUPS 256 /* groups one node hosts */

struct qfs_rnode_opts {
	const char *dir;          /* node directory; created if missing */
	uint32_t id;              /* node id, 1..65535 */
	const char *az;           /* availability-zone label, e.g. "a" */
	struct qfs_net *net;      /* transport; the node opens its endpoint (inproc) */
	const struct qfs_paxos_params *paxos; /* NULL: qfs_paxos_params_default();
					       * the seed is replaced by id ^ boot time */
	uint64_t wal_segment_bytes; /* 0: default */
};

struct qfs_rnode;

/* Open the directory, recover every group found (see doc/rnode.md:
 * nothing is applied past the store's applied LSN), open the endpoint and
 * start the I/O thread.  *out set only on success.  Errors: -EINVAL (bad
 * opts), QFS_EFORMAT (FORMAT of another kind/version), QFS_ECORRUPT (a
 * group's WAL, member or promise file cannot be trusted), -EEXIST (the
 * node's endpoint is already open in net), -ENOMEM, -errno of the fs. */
int qfs_rnode_open(const struct qfs_rnode_opts *o, struct qfs_rnode **out);

/* Stop the I/O thread, fail every waiting proposal with QFS_ESTOPPED, close
 * the endpoint, make the store durable and free everything.  NULL: nothing. */
void qfs_rnode_close(struct qfs_rnode *rn);

/* Host a replica of group with the given members (must contain this node;
 * call it on every member).  Durable on return.  0, -EEXIST, -EINVAL (bad
 * config), -ENOSPC (QFS_RNODE_MAX_GROUPS), -ENOMEM, -errno. */
int qfs_rnode_group_create(struct qfs_rnode *rn, qfs_group_t group,
			   const struct qfs_paxos_config *members);

/* Replicate one encoded txn (common/txn.h) through group's leader, which
 * must be this node.  Blocks until the entry is applied here; *result gets
 * the txn's result.  Returns 0, or (*result untouched):
 *   -EREMOTE    this replica is not the leader; *leader (if not NULL) gets
 *               the known leader's id, 0 if none is known
 *   -ETIMEDOUT  not applied within timeout_ms (e.g. no quorum); the entry
 *               may still commit later: the outcome is unknown
 *   -EAGAIN     the entry was replaced by a new leader's log (it was never
 *               committed) or the leader's window is full: retry
 *   QFS_ENOGROUP, QFS_ESTOPPED (group stopped after an I/O error, or the
 *   node is closing), -ENOSPC / -EIO (the WAL failed), -EINVAL (too large),
 *   -ENOMEM. */
int qfs_rnode_propose(struct qfs_rnode *rn, qfs_group_t group, const void *txn, size_t len,
		      uint32_t timeout_ms, int *result, uint32_t *leader);

/* Reads of this replica's applied state (possibly stale on a follower or a
 * deposed leader: pair with qfs_rnode_can_read_strong for strong reads).
 * Contracts of qfs_store_get/scan plus QFS_ENOGROUP. */
int qfs_rnode_get(struct qfs_rnode *rn, qfs_group_t group, const uint8_t *key, size_t key_len,
		  void **val, size_t *val_len);
int qfs_rnode_scan(struct qfs_rnode *rn, qfs_group_t group, const uint8_t *lo, size_t lo_len,
		   const uint8_t *hi, size_t hi_len, qfs_store_scan_cb cb, void *arg);

/* 1 if this replica leads group with a valid lease and has applied all it
 * committed (qfs_paxos_can_read_local), so a local read is strongly
 * consistent; 0 otherwise (also for an unknown group). */
int qfs_rnode_can_read_strong(struct qfs_rnode *rn, qfs_group_t group);

/* The known leader of group (0: none or unknown group). */
uint32_t qfs_rnode_leader(struct qfs_rnode *rn, qfs_group_t group);

/* Append one line per group:
 *   group <16hex> node 2 az b role leader|follower|candidate|stopped ballot B
 *   leader L last N durable N commit N applied N
 */
void qfs_rnode_status(struct qfs_rnode *rn, struct qfs_buf *out);

struct qfs_rnode_stat {
	uint64_t proposals;   /* proposals handed to paxos */
	uint64_t fsyncs;      /* WAL fsyncs */
	uint64_t frames_in;   /* frames received and decoded */
	uint64_t frames_out;  /* frames handed to the transport */
};
void qfs_rnode_stat(struct qfs_rnode *rn, struct qfs_rnode_stat *out);

#endif
