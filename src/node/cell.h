/*
 * cell.h - the storage nodes of one mount: N replicated nodes (rnode.h) on
 * one in-process transport, each in its own directory and availability
 * zone, every group replicated on all of them.  The cell is what the router
 * and the archiver talk to: it creates and drops groups on every member,
 * offers per-replica operations (propose at node N, read node N's replica,
 * what node N knows of a group: its leader, its lease, whether it stopped)
 * and lets a test stop and restart a node (doc/cell.md).  Leader routing
 * (which replica leads, following -EREMOTE hints, waiting out an election,
 * retrying until a bounded deadline) is the router's (router/route.h),
 * installed on the cell with qfs_cell_set_route: qfs_cell_propose, _get
 * and _scan call it, so that the layers below the router (meta, archive)
 * reach the same routing.
 *
 * Layout: DIR/n<id>/ is node id's directory (rnode.h), id = 1..N, AZ "a",
 * "b", "c"... in order; DIR/n<id> may be a symlink to another disk.
 *
 * Reconciliation.  A node that was stopped (or down) while groups were
 * created or dropped is brought in line when it (re)starts and at open: a
 * group a majority of the other nodes hosts but it lacks is created on it
 * (it then catches up from the leader's log or a snapshot), and its
 * replicas of dropped groups are dropped.  Drops are known from
 * tombstones (DIR/DROPPED: ids of dropped groups, written durably before
 * any replica goes; group ids are never reused), never from other nodes
 * lacking a group: blank nodes must not erase the last good replica.  A
 * node's start also settles the others'.  Pinned groups (an open option:
 * the composition root pins the meta group) never get a tombstone and are
 * never dropped as orphans; the cell itself knows no group by its id.
 *
 * Cluster mode (o->cluster set, doc/cluster.md): the members are remote
 * `quorumfs node` processes; the per-replica attempts (propose_at,
 * get_at, scan_at), group create/drop/exists/list, status, nodes,
 * node_up, get_node and stat become requests to them (node/cellnet.c);
 * propose, get and scan go through the same routing hook.  The test
 * hooks node_stop/start answer -EOPNOTSUPP; the archive and scrub hooks
 * QFS_ESTOPPED / -EOPNOTSUPP (the program refuses archive and scrub
 * options on a cluster mount).
 *
 * Thread-safety: every function may be called from any thread, except open
 * and close.  Stopping a node waits for the calls already inside it.
 */
#ifndef QFS_NODE_CELL_H
#define QFS_NODE_CELL_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/qfs.h"
#include "repl/paxos.h"
#include "store/store.h"

#define QFS_CELL_MAX_NODES 5
#define QFS_CELL_TIMEOUT_DEFAULT_MS 10000u
#define QFS_CELL_PINNED_MAX 8       /* groups an open may pin */

enum qfs_cell_reads {
	QFS_CELL_READ_STRONG = 0,  /* at the leader, under its lease */
	QFS_CELL_READ_EVENTUAL,    /* from the leader if it can, else any running replica */
};

struct qfs_cell_opts {
	const char *dir;             /* parent of the node directories; created if missing */
	uint32_t nodes;              /* 1..QFS_CELL_MAX_NODES (1 or 3 in practice); 0: 3 */
	uint64_t wal_segment_bytes;  /* 0: default */
	uint64_t wal_seal_age_ms;    /* see rnode.h */
	uint64_t wal_zero_ahead;     /* see rnode.h (0: default) */
	uint32_t timeout_ms;         /* bound on one call's wait for a leader/quorum;
				        0: QFS_CELL_TIMEOUT_DEFAULT_MS */
	enum qfs_cell_reads reads;
	const struct qfs_paxos_params *paxos; /* NULL: defaults */
	uint64_t cache_bytes;        /* block cache shared by the nodes' stores;
				        0: QFS_STORE_CACHE_DEFAULT */
	uint64_t memtable_bytes;     /* memtable budget of all the nodes together
				        (each store gets its share); 0:
				        QFS_STORE_MEMTABLE_DEFAULT per node */
	int vlog_off;                /* 1: no value log (chunks in RocksDB;
				        qfs_store_opts.vlog_min_bytes) */
	const qfs_group_t *pinned;   /* npinned groups never dropped for good
					(copied at open): a drop leaves no
					tombstone, reconciliation never drops
					them; NULL: none */
	uint32_t npinned;            /* 0..QFS_CELL_PINNED_MAX */
	const char *cluster;         /* cluster mode (node/cluster.h): the cluster
				        file; the cell then has no local node
				        (dir, nodes and the store/WAL fields are
				        ignored) and forwards every call to the
				        `quorumfs node` processes it names */
	int cold_start;              /* 1: the caller holds the data directory's
				        lock, so no earlier process runs any of
				        these nodes: every replica starts now, no
				        lease granted before can be in force, and
				        once every node is open each group's
				        preferred member campaigns at once (a
				        reopen elects in milliseconds, not after
				        a lease and an election timeout;
				        doc/paxos.md section 2).  Nodes started
				        later (qfs_cell_node_start) never skip
				        the wait.  0: every replica waits as after
				        a crash of its own */
};

struct qfs_cell;

/* Open every node directory (creating missing ones) and reconcile groups.
 * A node that cannot be opened is logged and left down (status shows it)
 * as long as a majority opens; otherwise the first node's error is
 * returned.  *out set only on success.  -EINVAL (also: more than
 * QFS_CELL_PINNED_MAX pinned groups), -ENOMEM, node open errors. */
int qfs_cell_open(const struct qfs_cell_opts *o, struct qfs_cell **out);
/* Close every running node (each makes its store durable).  NULL: nothing. */
void qfs_cell_close(struct qfs_cell *c);

/* Create group on every running node (members: all nodes).  Durable on a
 * majority on return.  -EEXIST (on a majority), -ETIMEDOUT (no majority
 * running), rnode errors. */
int qfs_cell_group_create(struct qfs_cell *c, qfs_group_t group);
/* Drop group from every running node (the others drop it when they
 * restart).  0, QFS_ENOGROUP, rnode errors. */
int qfs_cell_group_drop(struct qfs_cell *c, qfs_group_t group);
/* The groups pinned at open (opts.pinned) into out[max], in the order
 * given; returns how many there are (which may exceed max).  Any thread. */
size_t qfs_cell_pinned(const struct qfs_cell *c, qfs_group_t *out, size_t max);
/* 1 if a majority of the nodes host group (running nodes are asked,
 * stopped ones by what they hosted when they stopped), else 0. */
int qfs_cell_group_exists(struct qfs_cell *c, qfs_group_t group);
/* cb for each group some running node hosts, ascending, no lock held. */
void qfs_cell_groups(struct qfs_cell *c, void (*cb)(qfs_group_t group, void *arg), void *arg);

/* Routing hook (router/route.h): the leader routing and retries behind
 * qfs_cell_propose, qfs_cell_get and qfs_cell_scan of an embedded cell,
 * over the per-replica operations below.  arg is the hook's state.  stat
 * adds its redirect and timeout counts to qfs_cell_stat. */
struct qfs_cell_route {
	int (*propose)(void *arg, qfs_group_t group, const void *txn, size_t len, int *result);
	int (*get)(void *arg, qfs_group_t group, const uint8_t *key, size_t key_len, void **val,
		   size_t *val_len);
	int (*scan)(void *arg, qfs_group_t group, const uint8_t *lo, size_t lo_len,
		    const uint8_t *hi, size_t hi_len, qfs_store_scan_cb cb, void *cbarg);
	void (*stat)(void *arg, uint64_t *redirects, uint64_t *timeouts);
	/* get's value held without a copy (qfs_cell_get_val); NULL: get's
	 * malloc'd value is held instead */
	int (*get_val)(void *arg, qfs_group_t group, const uint8_t *key, size_t key_len,
		       struct qfs_val *out);
	void (*release)(void *arg); /* at qfs_cell_close, once the cell's own
				       threads stopped (or NULL) */
	void (*node_up)(void *arg); /* a node (re)started (or NULL); called with
				       c->op_mu held, no other cell lock */
};
/* Install (ops non-NULL) or remove (NULL) the routing hook.  Call right
 * after open, before any propose/get/scan, or after the last one: not
 * synchronised with them.  ops and arg must outlive their installation;
 * qfs_cell_close calls ops->release(arg) of the hook installed then.
 * Without a hook propose/get/scan answer -ENOSYS. */
void qfs_cell_set_route(struct qfs_cell *c, const struct qfs_cell_route *ops, void *arg);

/* Per-replica operations (the router's, router/route.h).  In cluster
 * mode they are requests to one node (node/cluster.h "Per-replica
 * attempts", which adds -EHOSTDOWN for a node that did not answer within
 * wait_ms and marks it silent).
 *
 * qfs_cell_replica_view: what node id knows of group now, without waiting:
 * its leader, whether it leads with a read lease, and (with info set)
 * whether it hosts group, whether its replica stopped after an error and
 * what it applied.  0, -EINVAL (no such node), -EHOSTDOWN (node stopped,
 * starting or down), -EOPNOTSUPP in cluster mode (the nodes are asked by
 * attempts instead).  A node that does not host group answers 0 with
 * leader 0, lease 0 and hosted 0.
 *
 * qfs_cell_propose_prepare: what every attempt of one proposal sends:
 * 1 and out (cluster mode: txn with the router's retry token, so that a
 * retry after a lost answer never applies twice), 0 (embedded: txn as
 * is), -EINVAL, -ENOMEM.
 *
 * qfs_cell_propose_at: one attempt at node id's replica of the txn (or
 * of what prepare made), waiting at most wait_ms: contract and errors of
 * qfs_rnode_propose (-EREMOTE with *leader the hint, -EAGAIN, -ETIMEDOUT,
 * QFS_ESTOPPED, QFS_ENOGROUP, ...) plus -EINVAL (no such node) and
 * -EHOSTDOWN (node not running, or no answer: nothing is known to have
 * arrived).
 *
 * qfs_cell_get_at / qfs_cell_scan_at: read node id's replica (embedded
 * eventual reads: as it is; strong reads, embedded or cluster: the node
 * refuses with -EREMOTE and *leader its hint unless it leads with a lease).
 * Contracts of qfs_rnode_get/scan plus -EINVAL, -EHOSTDOWN.  scan_at reads
 * the whole range (embedded, *more 0) or one page (cluster: *more 1 when
 * the range goes on from resume; resume empty: ask the same page again);
 * it returns cb's non-zero value when cb stops it.
 *
 * qfs_cell_remote: 1 in cluster mode.  qfs_cell_node_id: the id of the
 * idx-th node (0 past the end; embedded: idx + 1).  qfs_cell_node_silent:
 * 1 if node id did not answer lately (cluster mode; embedded: 0). */
struct qfs_cell_view {
	uint32_t leader;        /* the leader node id knows of; 0: none */
	int lease;              /* 1: node id leads with a valid read lease and
				   applied all (qfs_rnode_can_read_strong) */
	int hosted;             /* info: node id has a replica of group */
	int stopped;            /* info: the replica stopped after an error */
	int err;                /* info: why (e.g. -ENOSPC) */
	qfs_lsn_t applied;      /* info: its applied LSN */
};
int qfs_cell_replica_view(struct qfs_cell *c, uint32_t id, qfs_group_t group, int info,
			  struct qfs_cell_view *out);
int qfs_cell_propose_prepare(struct qfs_cell *c, qfs_group_t group, const void *txn, size_t len,
			     struct qfs_buf *out);
int qfs_cell_propose_at(struct qfs_cell *c, uint32_t id, qfs_group_t group, const void *txn,
			size_t len, uint32_t wait_ms, int *result, uint32_t *leader);
int qfs_cell_get_at(struct qfs_cell *c, uint32_t id, qfs_group_t group, const uint8_t *key,
		    size_t key_len, uint32_t wait_ms, void **val, size_t *val_len, uint32_t *leader);
int qfs_cell_scan_at(struct qfs_cell *c, uint32_t id, qfs_group_t group, const uint8_t *lo,
		     size_t lo_len, const uint8_t *hi, size_t hi_len, uint32_t wait_ms,
		     qfs_store_scan_cb cb, void *arg, int *more, struct qfs_buf *resume,
		     uint32_t *leader);
/* As qfs_cell_get_at, the value held in *out (empty on entry; the
 * caller releases it once): embedded, RocksDB's pinned value, no copy;
 * cluster, the received buffer.  The value outlives a stop of node id
 * (its store closed while a READ holds it): it may pin a block of the
 * cell's shared block cache, which qfs_cell_close frees only after the
 * nodes, so it must be released before qfs_cell_close. */
int qfs_cell_get_at_val(struct qfs_cell *c, uint32_t id, qfs_group_t group, const uint8_t *key,
			size_t key_len, uint32_t wait_ms, struct qfs_val *out, uint32_t *leader);
int qfs_cell_remote(const struct qfs_cell *c);
uint32_t qfs_cell_node_id(struct qfs_cell *c, uint32_t idx);
int qfs_cell_node_silent(struct qfs_cell *c, uint32_t id);
/* The read mode given at open (opts.reads).  Any thread. */
enum qfs_cell_reads qfs_cell_read_mode(const struct qfs_cell *c);

/* Replicate one encoded txn through group's leader; blocks until a quorum
 * made it durable and the leader applied it.  0 and *result (the txn's
 * result), or: -ETIMEDOUT (no leader or quorum within the timeout; the
 * entry may still commit later), QFS_ENOGROUP, QFS_ESTOPPED, -ENOSPC, -EIO,
 * -EINVAL (too large), -ENOMEM; -ENOSYS without a routing hook. */
int qfs_cell_propose(struct qfs_cell *c, qfs_group_t group, const void *txn, size_t len,
		     int *result);

/* Reads of applied state, consistent as the cell's read mode says: strong
 * reads wait (bounded) for a leader holding a lease.  Contracts of
 * qfs_store_get/scan plus QFS_ENOGROUP and -ETIMEDOUT. */
int qfs_cell_get(struct qfs_cell *c, qfs_group_t group, const uint8_t *key, size_t key_len,
		 void **val, size_t *val_len);
int qfs_cell_scan(struct qfs_cell *c, qfs_group_t group, const uint8_t *lo, size_t lo_len,
		  const uint8_t *hi, size_t hi_len, qfs_store_scan_cb cb, void *arg);
/* As qfs_cell_get, the value held in *out (qfs_cell_get_at_val). */
int qfs_cell_get_val(struct qfs_cell *c, qfs_group_t group, const uint8_t *key, size_t key_len,
		     struct qfs_val *out);

/* Read key of group from node id's replica alone, whatever it has applied
 * (an eventually consistent read pinned to one node/AZ: the canary's,
 * doc/availability.md).  Contracts of qfs_store_get plus -EINVAL (no such
 * node), -EHOSTDOWN (the node is stopped or starting), QFS_ENOGROUP. */
int qfs_cell_get_node(struct qfs_cell *c, uint32_t id, qfs_group_t group, const uint8_t *key, size_t key_len,
		      void **val, size_t *val_len);
/* Test hook (fault injection, documented as such): stop node id (close it
 * as a crash-free power-off would: no more messages, nothing acknowledged
 * lost) or start it again.  0, -EINVAL (no such node), -EALREADY (already
 * in that state), node open errors on start. */
int qfs_cell_node_stop(struct qfs_cell *c, uint32_t id);
int qfs_cell_node_start(struct qfs_cell *c, uint32_t id);

/* Status text, one fact per line:
 *   node 1 az a state up|down dir PATH
 *   group <16hex> leader L ballot B replicas 3 up 3
 *   group <16hex> replica node 1 az a health ok|behind|stopped|down role R
 *         last N durable N commit N applied N            (one line)
 */
void qfs_cell_status(struct qfs_cell *c, struct qfs_buf *out);
/* 1 if node id runs (not stopped or down), else 0. */
int qfs_cell_node_up(struct qfs_cell *c, uint32_t id);
/* How many times node id was opened since qfs_cell_open: 1 for a node
 * opened then, one more for each start (qfs_cell_node_start, and the
 * keeper's restart of a node whose replica stopped after an error, about
 * a second later); 0 for no such node and in cluster mode. */
uint64_t qfs_cell_node_starts(struct qfs_cell *c, uint32_t id);
/* Node lines only ("node 1 az a state up dir PATH"). */
void qfs_cell_nodes(struct qfs_cell *c, struct qfs_buf *out);

struct qfs_cell_stat {
	uint64_t proposals;   /* proposals accepted by a leader, all nodes */
	uint64_t fsyncs;      /* WAL fsyncs, all nodes */
	uint64_t beside;      /* applies run beside a WAL sync, all nodes */
	uint64_t redirects;   /* proposals re-sent after -EREMOTE/-EAGAIN */
	uint64_t timeouts;    /* calls that gave up with -ETIMEDOUT */
};
void qfs_cell_stat(struct qfs_cell *c, struct qfs_cell_stat *out);
/* The bound on one call's wait (qfs_cell_opts.timeout_ms after defaults),
 * in ms; the 2PC coordinator's retry budget (router/xact.h).  Any thread. */
uint32_t qfs_cell_timeout_ms(struct qfs_cell *c);

/* WAL archiving hooks (src/archive).  The archiver reads node 1's replica
 * (archived segments must continue each other exactly, and each replica
 * cuts its segments at its own points), so while node 1 is stopped these
 * return QFS_ESTOPPED and archiving pauses (its lag grows; see
 * doc/cell.md).  Contracts of rnode.h.  qfs_cell_wal_release releases on
 * every running node below min(lsn, the lowest applied LSN of all nodes,
 * the last known one for a stopped node): no member ever needs a released
 * entry, so a node that was merely down never needs a snapshot. */
int qfs_cell_wal_info(struct qfs_cell *c, qfs_group_t group, char *dir, size_t dir_len,
		      qfs_lsn_t *applied);
int qfs_cell_wal_release(struct qfs_cell *c, qfs_group_t group, qfs_lsn_t lsn);
/* qfs_rnode_wal_info / qfs_rnode_wal_seal of node id's replica (the
 * archiver fills a gap in node 1's log from another replica).  0,
 * QFS_ESTOPPED (node down or no such node), rnode errors. */
int qfs_cell_node_wal_info(struct qfs_cell *c, uint32_t id, qfs_group_t group, char *dir,
			   size_t dir_len, qfs_lsn_t *applied);
int qfs_cell_node_wal_seal(struct qfs_cell *c, uint32_t id, qfs_group_t group);
/* Node 1's log of group was found corrupt by the archiver: stop its
 * replica as untrusted (qfs_rnode_group_distrust), so that the keeper
 * rebuilds it (doc/cell.md "Self-healing").  0, QFS_ESTOPPED, rnode errors. */
int qfs_cell_wal_distrust(struct qfs_cell *c, qfs_group_t group);
/* Seal node 1's open segment of group (qfs_rnode_wal_seal), so that the
 * archiver can take everything written so far.  0, QFS_ESTOPPED (node 1
 * down), rnode errors. */
int qfs_cell_wal_seal(struct qfs_cell *c, qfs_group_t group);
/* The highest applied LSN of group over the running replicas (what every
 * acknowledged change of it is at or below), 0 if none runs. */
qfs_lsn_t qfs_cell_group_applied(struct qfs_cell *c, qfs_group_t group);
int qfs_cell_snapshot_scan(struct qfs_cell *c, qfs_group_t group, qfs_lsn_t *applied,
			   qfs_store_scan_cb cb, void *arg);
void qfs_cell_set_seal_hook(struct qfs_cell *c, void (*cb)(qfs_group_t group, void *arg), void *arg);

/* Scrub hooks (src/scrub, doc/scrub.md).
 *
 * qfs_cell_node_count: N.  qfs_cell_replica_info: qfs_rnode_group_info of
 * node id's replica; -EINVAL (no such node), QFS_ESTOPPED (node down).
 *
 * qfs_cell_replica_snap: qfs_rnode_snap_at on node id (a whole-store
 * snapshot taken right after the replica applied lsn); on 0 the node is held
 * (a stop waits) until qfs_cell_replica_snap_done(c, id, *out) releases the
 * snapshot and the node.  Errors of qfs_rnode_snap_at, -EINVAL,
 * QFS_ESTOPPED (node down).
 *
 * qfs_cell_node_verify: read every block of node id's RocksDB with
 * checksums verified (qfs_store_verify): 0, QFS_ECORRUPT, -EIO, QFS_ESTOPPED.
 *
 * qfs_cell_replica_rebuild: rebuild node id's replica of group (or of every
 * group it hosts: QFS_CELL_ALL_GROUPS, for a damaged RocksDB, which all the
 * node's replicas share) from the healthy replicas: stop the node, wait
 * (10 s at most) until every other running node holds durably what the
 * replica had logged and a majority runs, wipe (one group: its members
 * file, so the next open finishes it as an interrupted drop and the
 * reconciliation creates it empty; all: everything inside the node
 * directory), start it; it catches up by snapshot transfer (doc/rnode.md
 * section 6).  why is logged.  0, -EINVAL, -EOPNOTSUPP (fewer than 3 nodes),
 * -EALREADY (held down by the test hook), -EAGAIN (the others did not hold
 * the log: nothing wiped, node restarted), -errno of the wipe, start
 * errors (the keeper then retries the start). */
#define QFS_CELL_ALL_GROUPS UINT64_MAX
struct qfs_rnode_ginfo;
struct qfs_store_snap;
uint32_t qfs_cell_node_count(struct qfs_cell *c);
/* Which nodes host group: writes min(count, max) node ids to out and
 * returns the count.  Embedded: every node (1..N).  Cluster mode: the
 * group's members as placed at its creation (doc/cluster.md "Placement";
 * the nodes are asked once per group when the map gave no hint); every
 * node of a cluster of 3.  Any thread; may wait about 1 s for the nodes. */
uint32_t qfs_cell_group_nodes(struct qfs_cell *c, qfs_group_t group, uint32_t *out, uint32_t max);
/* The partition map records that group lives on ids[n]: a cluster cell
 * sends the group's calls there without asking the nodes (unless the nodes
 * already said otherwise).  Embedded: nothing.  Any thread. */
void qfs_cell_group_hint(struct qfs_cell *c, qfs_group_t group, const uint32_t *ids, uint32_t n);
/* A node answered QFS_ENOGROUP for group: forget which nodes host it, so
 * that the next qfs_cell_group_nodes asks the nodes (a membership change
 * moved it).  Embedded: nothing.  Any thread. */
void qfs_cell_group_forget(struct qfs_cell *c, qfs_group_t group);
/* The remote cell of a cluster-mode cell (node/cluster.h: membership
 * changes), NULL for the embedded cell.  Valid until close. */
struct qfs_rcell;
struct qfs_rcell *qfs_cell_rcell(struct qfs_cell *c);
/* The running node that leads group as far as the nodes know (it serves
 * the group's strong reads and proposals), or 0 if none is known now.
 * Does not wait.  Any thread (admission control's node buckets). */
uint32_t qfs_cell_leader_node(struct qfs_cell *c, qfs_group_t group);
int qfs_cell_replica_info(struct qfs_cell *c, uint32_t id, qfs_group_t group,
			  struct qfs_rnode_ginfo *out);
int qfs_cell_replica_snap(struct qfs_cell *c, uint32_t id, qfs_group_t group, qfs_lsn_t lsn,
			  uint32_t timeout_ms, struct qfs_store_snap **out);
void qfs_cell_replica_snap_done(struct qfs_cell *c, uint32_t id, struct qfs_store_snap *sn);
int qfs_cell_node_verify(struct qfs_cell *c, uint32_t id);
/* qfs_rnode_wal_verify of node id's replica of group: 0, QFS_ECORRUPT,
 * QFS_ESTOPPED (node or group down), QFS_ENOGROUP, -EINVAL, -errno. */
int qfs_cell_replica_wal_verify(struct qfs_cell *c, uint32_t id, qfs_group_t group);
int qfs_cell_replica_rebuild(struct qfs_cell *c, uint32_t id, qfs_group_t group, const char *why);
/* Bytes of the data disk the nodes keep free for memtable flushes, WAL
 * release and deletes: a change that writes data is refused with ENOSPC
 * below it (all nodes' memtable budgets + 16 MiB; doc/cell.md). */
uint64_t qfs_cell_space_reserve(const struct qfs_cell *c);
/* Hold bytes more of the data disk beyond the reserve (0: none): a change
 * that writes data is refused with ENOSPC unless it leaves them free too.
 * The archiver holds the size of a segment it copies onto the data disk,
 * so that writes do not take the room the copy needs (doc/cell.md).  Any
 * thread. */
void qfs_cell_space_hold(struct qfs_cell *c, uint64_t bytes);

#endif
