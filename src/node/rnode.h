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
	uint64_t wal_zero_ahead;  /* zeros written ahead of each group's WAL tail
				     (doc/format-wal.md "Zeroed ahead"); 0: 256 KiB,
				     UINT64_MAX: none (check_sysio, whose fault loop
				     wants every failed call surfaced: a failed
				     write of zeros fails nothing, by design) */
	uint64_t wal_seal_age_ms; /* seal a group's open segment once its oldest
				     record is this old (archive lag bound); 0:
				     QFS_RNODE_SEAL_AGE_DEFAULT_MS, UINT64_MAX: never */
	/* Test seam, NULL otherwise: called on the round's thread (the I/O
	 * thread or a proposer's direct round) just before it syncs group's
	 * WAL, whose last entry is lsn; the leader's ACCEPTs for those
	 * entries are already sent (tests/unit/check_rnode.c). */
	void (*test_before_sync)(qfs_group_t group, qfs_lsn_t lsn, void *arg);
	void *test_arg;
	const struct qfs_store_opts *store; /* RocksDB budget (store.h); NULL: defaults */
	uint64_t space_reserve;   /* bytes a proposal that writes data must leave
				     free on the WAL's disk (deletes may go down to
				     1 MiB); 0 or less than 1 MiB: 1 MiB */
	const uint64_t *space_hold; /* more bytes such a proposal must leave free
				     while the archive copies onto the same disk
				     (read atomically; the cell's, see
				     qfs_cell_space_hold); NULL: none */
	const char *addr;         /* tcp net: the address the endpoint listens on
				     ("a.b.c.d:port"); NULL for inproc */
	/* Frames of a type the node does not speak itself (neither Paxos nor
	 * snapshot: the request frames of `quorumfs node`, node/rpc.h) go
	 * here, on the round's thread (the I/O thread, or a proposer's own
	 * round: doc/rnode.md section 2), which gives up f: the hook owns it
	 * and must not block nor call this node.  NULL: such frames are
	 * dropped. */
	void (*on_frame)(struct qfs_net_frame *f, uint8_t type, void *arg);
	void *frame_arg;
	int cold_start;           /* 1: no lease a replica of this node granted
				     before this open can be in force (every
				     replica that could hold one is gone with the
				     process before: the embedded cell's first
				     open, qfs_cell_opts.cold_start); the groups
				     found promise at once (paxos.h leases_void),
				     and qfs_rnode_elect() may follow.  0: each
				     honours one lease first */
};

#define QFS_RNODE_SEAL_AGE_DEFAULT_MS 60000ull

struct qfs_rnode;

/* Open the directory, recover every group found (see doc/rnode.md:
 * nothing is applied past the store's applied LSN), open the endpoint and
 * start the I/O thread.  A group whose WAL, members or promise file cannot
 * be trusted (QFS_ECORRUPT, -EIO) is loaded stopped with that error (its
 * other replicas carry on; status says why); it is not an error here.
 * *out set only on success.  Errors: -EINVAL (bad opts), QFS_EFORMAT
 * (FORMAT of another kind/version), -EEXIST (the node's endpoint is already
 * open in net), -ENOMEM, -errno of the fs. */
int qfs_rnode_open(const struct qfs_rnode_opts *o, struct qfs_rnode **out);

/* The endpoint of rn (to send replies from, e.g.); valid until close. */
struct qfs_net_ep *qfs_rnode_ep(struct qfs_rnode *rn);

/* A cold start (opts.cold_start), once every node of the groups runs:
 * each replica here that is its group's preferred member and knows no
 * leader campaigns now instead of after an election timeout (timing only,
 * paxos.h qfs_paxos_elect_now).  Carried out by the I/O thread; returns
 * once it is done: 0, or QFS_ESTOPPED (closing). */
int qfs_rnode_elect(struct qfs_rnode *rn);

/* Stop the I/O thread, fail every waiting proposal with QFS_ESTOPPED, close
 * the endpoint, make the store durable and free everything.  NULL: nothing. */
void qfs_rnode_close(struct qfs_rnode *rn);

/* Host a replica of group with the given members (must contain this node;
 * call it on every member).  Durable on return.  0, -EEXIST, -EINVAL (bad
 * config), -ENOSPC (QFS_RNODE_MAX_GROUPS), -ENOMEM, -errno. */
int qfs_rnode_group_create(struct qfs_rnode *rn, qfs_group_t group,
			   const struct qfs_paxos_config *members);

/* Delete this replica of group: its queued and pending proposals fail with
 * QFS_ENOGROUP, then its WAL directory, members and promise files and its
 * items and applied LSN in the store are removed.  Durable on return.  The
 * group's struct is freed only once no other thread uses it (readers of
 * another group are never disturbed; a concurrent read of this group gets
 * QFS_ENOGROUP or the old data).  Carried out by the I/O thread; the caller
 * blocks.  The members file goes first (a crash after it: the next open
 * finishes the drop).  The id may be created again once every member has
 * dropped it (messages carry no incarnation: a replica of the old group
 * still running would talk to the new one).  0, QFS_ENOGROUP, QFS_ESTOPPED
 * (closing), -errno of the members unlink (nothing done), -EIO / -errno of
 * a later step (the group is gone from the node; its remains on disk are
 * removed by the next open or create of the id). */
int qfs_rnode_group_drop(struct qfs_rnode *rn, qfs_group_t group);
/* Rebuild this node's replica of group, which must be stopped untrusted
 * (ginfo.untrusted): drop it (qfs_rnode_group_drop: WAL, items, files) and
 * create it again empty with members, keeping the ballot its promise file
 * still says it promised (when that file is readable), so that the new
 * replica forgets its log but not its promise.  It then catches up from the
 * leader's log or a snapshot.  Erasing a replica is safe only while the
 * other members hold every chosen entry and form a quorum without it: the
 * caller checks that (doc/cell.md "Self-healing").  0, QFS_ENOGROUP,
 * -EINVAL (not an untrusted replica, or bad members: nothing done), errors
 * of group_drop (see there) and group_create (the group is then absent
 * here; a later create or the cell's reconciliation makes it again). */
int qfs_rnode_group_rebuild(struct qfs_rnode *rn, qfs_group_t group,
			    const struct qfs_paxos_config *members);
/* Stop this replica of group as untrusted (ginfo.untrusted, err
 * QFS_ECORRUPT): a reader of its files (the archiver) found its log
 * corrupt.  On the I/O thread; the caller blocks.  0, QFS_ENOGROUP,
 * QFS_ESTOPPED (closing). */
int qfs_rnode_group_distrust(struct qfs_rnode *rn, qfs_group_t group);
/* 1 if this node hosts a replica of group, 0 if not. */
int qfs_rnode_group_exists(struct qfs_rnode *rn, qfs_group_t group);
/* Call cb for each hosted group id, ascending, without node locks held. */
void qfs_rnode_groups(struct qfs_rnode *rn, void (*cb)(qfs_group_t group, void *arg), void *arg);

/* One replica's state, read under the group's lock at a step boundary. */
struct qfs_rnode_ginfo {
	int stopped;            /* 1: stopped after an error (err says which) */
	int err;
	int untrusted;          /* 1: stopped because its copy on disk cannot be
				   trusted (it could not be loaded, or a read
				   found corruption): a restart does not heal it,
				   qfs_rnode_group_rebuild does */
	enum qfs_paxos_role role;
	uint32_t leader;        /* known leader, 0: none */
	uint32_t preferred;     /* member that should lead when healthy (leadership
				   balance, qfs_paxos_preferred), 0: unknown */
	qfs_ballot_t ballot;
	qfs_lsn_t last, durable, commit, applied;
	qfs_lsn_t first;        /* first LSN still in the local WAL (0: empty) */
	uint64_t wal_bytes;     /* bytes of the local WAL's segment files */
	uint32_t snap_in_chunks; /* chunks of a snapshot being received, written
				   to the store's staging files until it
				   installs (0: none); one idle for 10 s is
				   freed (its files removed) */
	uint64_t snap_in_dropped; /* snapshot chunks refused since open: not from
				   the leader this replica follows, or a chunk 0
				   of a transfer older than the last one started
				   (doc/rnode.md section 6) */
	uint64_t snap_in_peak;  /* the most item bytes a snapshot install of this
				   node held in memory at once since open
				   (qfs_store_install_peak), bytes */
};
/* 0, QFS_ENOGROUP. */
int qfs_rnode_group_info(struct qfs_rnode *rn, qfs_group_t group, struct qfs_rnode_ginfo *out);

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

/* Membership changes through the log (doc/paxos.md section 7).  Propose,
 * through group's leader (this node), that its members become members:
 * one member added or removed from the configuration in force.  Blocks
 * until the CONFIG entry is applied here (committed); every replica then
 * rewrites its members file when it applies it.  0, -EREMOTE (*leader:
 * hint), -EBUSY (another change is uncommitted, or the leader is new:
 * retry), -EINVAL (not a single change, bad list), -EAGAIN, -ETIMEDOUT,
 * QFS_ENOGROUP, QFS_ESTOPPED, as qfs_rnode_propose. */
int qfs_rnode_propose_members(struct qfs_rnode *rn, qfs_group_t group,
			      const struct qfs_paxos_config *members, uint32_t timeout_ms,
			      uint32_t *leader);
/* qfs_rnode_propose_members on a condition, for a proposer that computed
 * members from an earlier view (the node's healer, doc/cluster.md section
 * 1c): the I/O thread appends the entry only if this replica still leads
 * in ballot, its configuration in force (committed or not) is *from, and
 * it holds its lease; checked on the I/O thread just before the append, so
 * no other change can come between.  -ESTALE (another ballot or another
 * configuration: the view is old, decide again), -EBUSY (no lease now,
 * e.g. just after a change: retry), -EREMOTE (not the leader), else as
 * qfs_rnode_propose_members. */
int qfs_rnode_propose_members_if(struct qfs_rnode *rn, qfs_group_t group,
				 const struct qfs_paxos_config *from, qfs_ballot_t ballot,
				 const struct qfs_paxos_config *members, uint32_t timeout_ms,
				 uint32_t *leader);
/* Host a new, empty replica of group that is about to be added: members is
 * the configuration in force, which must not hold this node.  It accepts
 * the leader's entries (from LSN 1, or a snapshot) but never campaigns
 * until the CONFIG entry that adds it is in its log.  floor (from
 * qfs_rnode_join_floor at the leader; NULL: none, only safe for a node
 * that never was a member of group) is made durable first, in the promise
 * file and groups/<group>.floor: the replica refuses accepts below
 * floor->promised and promises to candidates whose log is behind the
 * floor (doc/paxos.md section 7).  Errors of qfs_rnode_group_create. */
int qfs_rnode_group_join(struct qfs_rnode *rn, qfs_group_t group, const struct qfs_paxos_config *members,
			 const struct qfs_paxos_floor *floor);
/* The floor a replica of node id that is about to join group must start
 * with, from this node as the group's leader (qfs_paxos_join_floor).  0
 * and *out; -EREMOTE (*leader, if not NULL: the known leader, 0 if none),
 * -EBUSY (a new leader's barrier or id's removal is not committed yet:
 * retry), -EINVAL (id is a member), QFS_ENOGROUP, QFS_ESTOPPED. */
int qfs_rnode_join_floor(struct qfs_rnode *rn, qfs_group_t group, uint32_t id,
			 struct qfs_paxos_floor *out, uint32_t *leader);
/* For node id's reconciler, which hosts a replica of group that its own
 * members do not name (doc/cluster.md section 1c, "Orphan replicas"): 0
 * if this node leads group, holds its lease, its barrier committed, no
 * CONFIG entry is in flight and id is in neither its committed nor its
 * newest configuration (so only a later CONFIG could add id); -EINVAL (id
 * is a member, or being added or removed), -EBUSY (no lease, a barrier or
 * a change uncommitted: ask again), -EREMOTE (*leader, if not NULL: the
 * known leader, 0 if none), QFS_ENOGROUP, QFS_ESTOPPED. */
int qfs_rnode_nonmember(struct qfs_rnode *rn, qfs_group_t group, uint32_t id, uint32_t *leader);
/* 1 if this replica of group was created with a vote floor (a re-add)
 * and has not applied up to it yet: the members it applied meanwhile are
 * history from before its removal, not its membership.  0 otherwise
 * (also when there is no such group). */
int qfs_rnode_group_joining(struct qfs_rnode *rn, qfs_group_t group);
/* qfs_rnode_group_join for a log replica (doc/paxos.md section 7a): the
 * replica keeps the log only (it applies no txn to the store, answers
 * reads -EREMOTE, never campaigns), which its members file records
 * (" kind log").  The leader starts it at its snapshot point, shipped
 * without items.  floor: as for qfs_rnode_group_join (a log replica votes
 * like any member, so a spare node that was a member of group before
 * needs it: doc/paxos.md section 7a).  Errors of qfs_rnode_group_join. */
int qfs_rnode_group_join_log(struct qfs_rnode *rn, qfs_group_t group,
			     const struct qfs_paxos_config *members, const struct qfs_paxos_floor *floor);

/* A leader's view of its group's members (the healer's input, server.c). */
struct qfs_rnode_health {
	int leader;              /* 1: this replica leads (the rest is valid) */
	struct qfs_paxos_config cfg; /* in force (newest in the log) */
	struct qfs_paxos_config applied_cfg; /* applied (the members file) */
	int changing;            /* a CONFIG entry is not committed yet */
	uint32_t n;              /* peers below */
	uint32_t ids[QFS_PAXOS_MAX_NODES];
	uint64_t silent_ms[QFS_PAXOS_MAX_NODES]; /* since its last answer (or
				    since this leader's election) */
	qfs_lsn_t match[QFS_PAXOS_MAX_NODES]; /* its durable, matching log end */
	uint8_t answered[QFS_PAXOS_MAX_NODES]; /* 1: it answered this leader
				    (since its election or its addition) */
	qfs_lsn_t last;          /* the leader's last LSN */
	qfs_ballot_t ballot;     /* the leader's ballot (a view's epoch:
				    qfs_rnode_propose_members_if) */
};
/* Fill *out for group (any thread, under the group's lock).  0 or
 * QFS_ENOGROUP. */
int qfs_rnode_group_health(struct qfs_rnode *rn, qfs_group_t group, struct qfs_rnode_health *out);
/* The members this replica applied last (its members file).  0 or
 * QFS_ENOGROUP. */
int qfs_rnode_group_members(struct qfs_rnode *rn, qfs_group_t group, struct qfs_paxos_config *out);

/* Reads of this replica's applied state (possibly stale on a follower or a
 * deposed leader: pair with qfs_rnode_can_read_strong for strong reads).
 * Contracts of qfs_store_get/scan plus QFS_ENOGROUP.  They hold the group's
 * read lock: a scan callback must not call this node (a drop waiting for
 * the lock blocks new readers, and the I/O thread would wait for it). */
int qfs_rnode_get(struct qfs_rnode *rn, qfs_group_t group, const uint8_t *key, size_t key_len,
		  void **val, size_t *val_len);
int qfs_rnode_scan(struct qfs_rnode *rn, qfs_group_t group, const uint8_t *lo, size_t lo_len,
		   const uint8_t *hi, size_t hi_len, qfs_store_scan_cb cb, void *arg);
/* As qfs_rnode_get, the value pinned (qfs_store_get_val): *out is the
 * caller's to release once; it stays valid after a drop of the group,
 * and after qfs_rnode_close only if rn's store uses a shared block cache
 * that outlives the value (qfs_store_get_val; the cell's does). */
int qfs_rnode_get_val(struct qfs_rnode *rn, qfs_group_t group, const uint8_t *key, size_t key_len,
		      struct qfs_val *out);

/* 1 if this replica leads group with a valid lease and has applied all it
 * committed (qfs_paxos_can_read_local), so a local read is strongly
 * consistent; 0 otherwise (also for an unknown group).  If only the apply
 * of entries committed and durable here is missing, waits for it (at most
 * 20 ms; never on the round's own thread): doc/rnode.md section 2. */
int qfs_rnode_can_read_strong(struct qfs_rnode *rn, qfs_group_t group);

/* The known leader of group (0: none or unknown group). */
uint32_t qfs_rnode_leader(struct qfs_rnode *rn, qfs_group_t group);

/* Append one line per group:
 *   group <16hex> node 2 az b role leader|follower|candidate|stopped ballot B
 *   leader L last N durable N commit N applied N
 */
void qfs_rnode_status(struct qfs_rnode *rn, struct qfs_buf *out);

/* WAL archiving hooks (src/archive), contracts as in node.h:
 *
 * qfs_rnode_wal_info: the directory of group's WAL (every segment file but
 * the highest-named one is sealed and immutable below the commit point) and
 * the group's applied LSN.  0, QFS_ENOGROUP, QFS_ESTOPPED, -ENAMETOOLONG.
 *
 * qfs_rnode_wal_release: every record below lsn is archived AND applied on
 * every member of the group (the caller knows; e.g. the cell takes the
 * minimum over the members).  Makes the store durable (qfs_store_sync),
 * deletes the sealed segments whose records are all below min(lsn,
 * applied) (the entry at the applied LSN stays, so that a restart that lost
 * the store's memtable still knows its ballot; the newest segment always
 * stays) and steps
 * COMPACTED so that the machine never asks the WAL for a released entry
 * (both on the I/O thread; the caller blocks).  A member that did not apply
 * up to lsn then catches up from a snapshot of the leader's applied state
 * (doc/rnode.md section 6), which costs a whole copy of the group.
 * 0, QFS_ENOGROUP, QFS_ESTOPPED, -EIO, -errno of unlink.
 *
 * qfs_rnode_snapshot_scan: qfs_store_snapshot_scan of group, plus
 * QFS_ENOGROUP, QFS_ESTOPPED; cb as for qfs_rnode_scan.
 *
 * qfs_rnode_set_seal_hook: cb(group, arg) is called on the I/O thread after
 * every age seal (it may only signal; calling this node from it deadlocks).
 * NULL clears it.  It returns once the I/O thread's round in progress, which
 * may still call the old hook, has ended: the old arg may then be freed.
 * Never from inside a round (the hook). */
int qfs_rnode_wal_info(struct qfs_rnode *rn, qfs_group_t group, char *dir, size_t dir_len,
		       qfs_lsn_t *applied);
int qfs_rnode_wal_release(struct qfs_rnode *rn, qfs_group_t group, qfs_lsn_t lsn);
/* Seal group's open WAL segment now if it holds records (as an age seal
 * does, without the hook), so that the archiver may take every record
 * written so far.  On the I/O thread; the caller blocks.  0, QFS_ENOGROUP,
 * QFS_ESTOPPED, -errno of the seal (the segment stays open). */
int qfs_rnode_wal_seal(struct qfs_rnode *rn, qfs_group_t group);
int qfs_rnode_snapshot_scan(struct qfs_rnode *rn, qfs_group_t group, qfs_lsn_t *applied,
			    qfs_store_scan_cb cb, void *arg);
void qfs_rnode_set_seal_hook(struct qfs_rnode *rn, void (*cb)(qfs_group_t group, void *arg),
			     void *arg);

struct qfs_rnode_stat {
	uint64_t proposals;   /* proposals handed to paxos */
	uint64_t batches;     /* PROPOSE steps that took them (group commit) */
	uint64_t fsyncs;      /* WAL fsyncs */
	uint64_t frames_in;   /* frames received and decoded */
	uint64_t frames_out;  /* frames handed to the transport */
	uint64_t direct;      /* proposals carried out by the proposer's own
				 thread (the I/O thread was idle; doc/rnode.md
				 section 2) */
	uint64_t beside;      /* a follower's applies run beside its WAL sync
				 (doc/rnode.md section 2) */
};
void qfs_rnode_stat(struct qfs_rnode *rn, struct qfs_rnode_stat *out);

/* Scrub hook (src/scrub, doc/scrub.md): a RocksDB snapshot of the node's
 * store taken by the I/O thread right after it applied entry lsn of group
 * (or at once if applied == lsn), so that the replicas of a group can be
 * compared at one and the same LSN while writes continue.  Blocks until
 * then.  The snapshot covers the whole store; the caller reads the group
 * with qfs_store_snap_scan and frees it with qfs_store_snap_release before
 * the node closes.  0 and *out, or: -ESTALE (applied is already past lsn:
 * choose a higher one), -ETIMEDOUT (lsn not applied within timeout_ms),
 * -EBUSY (another snapshot of group is waiting), QFS_ENOGROUP,
 * QFS_ESTOPPED (group stopped or node closing), -ENOMEM. */
int qfs_rnode_snap_at(struct qfs_rnode *rn, qfs_group_t group, qfs_lsn_t lsn, uint32_t timeout_ms,
		      struct qfs_store_snap **out);

/* Read every block of the node's RocksDB with checksums verified
 * (qfs_store_verify).  0, QFS_ECORRUPT, -EIO, -ENOMEM.  Any thread. */
int qfs_rnode_verify(struct qfs_rnode *rn);

/* Read back every record of this replica's WAL of group (its CRC-32C and
 * entry framing), on the I/O thread (the caller blocks).  0, QFS_ENOGROUP,
 * QFS_ESTOPPED, QFS_ECORRUPT (logged), -errno. */
int qfs_rnode_wal_verify(struct qfs_rnode *rn, qfs_group_t group);
/* Compact the node's store so deleted items give their disk space back
 * (qfs_store_compact; refused with -ENOSPC below room free bytes).  Any
 * thread but not during close; blocks on I/O. */
int qfs_rnode_store_compact(struct qfs_rnode *rn, uint64_t room);
/* The store's value log collector (qfs_store_vlog_gc, not full): links of
 * segments no pointer uses go.  Same returns.  The keeper's thread. */
int qfs_rnode_store_vlog_gc(struct qfs_rnode *rn, struct qfs_store_vlog_stat *st);
/* The store's memory now (qfs_store_mem).  0 or -EIO.  Any thread. */
int qfs_rnode_store_mem(struct qfs_rnode *rn, uint64_t *memtables, uint64_t *cache);

/* TEST HOOK (never set in production): when nonzero, the time (us) a
 * batch gathers the proposers of the last answered ones (doc/rnode.md
 * section 2, "Gathering"), instead of about one log sync's time (0.5 to 4
 * ms).  Tests set it long so that a count of rounds does not depend on how
 * long the machine leaves a proposer thread descheduled. */
extern uint32_t qfs_rnode_gather_test_us;

#endif
