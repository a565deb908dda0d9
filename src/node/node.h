/*
 * node.h - a storage node: hosts replicas of many groups, drives their
 * replication state machines, owns one RocksDB and the groups' WALs.
 *
 * Layout of a node directory (doc/format-node.md):
 *   DIR/FORMAT            "quorumfs-node 1\n"
 *   DIR/store/            RocksDB (src/store)
 *   DIR/wal/<group 16hex>/ one WAL per group (src/wal)
 *
 * One I/O thread per node does group commit: it takes every proposal queued
 * since its last round, appends them to their groups' WALs, fsyncs each
 * touched WAL once, applies the committed entries to the store and wakes the
 * proposers.  Proposers block in qfs_node_propose() until their entry is
 * applied (or fails), so "propose returned 0" means durable and applied.
 *
 * A group whose WAL or store fails with an I/O error or corruption is
 * stopped: its proposals and reads fail with QFS_ESTOPPED and the reason is
 * shown in status; other groups go on.
 *
 * Thread-safety: every function may be called from any thread, except open
 * and close.
 */
#ifndef QFS_NODE_NODE_H
#define QFS_NODE_NODE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/qfs.h"
#include "store/store.h"

struct qfs_node_opts {
	const char *dir;        /* node directory; created if missing */
	uint32_t id;            /* node id, >= 1 */
	const char *az;         /* availability-zone label, e.g. "a" */
	uint64_t wal_segment_bytes; /* 0: default */
	uint64_t wal_seal_age_ms;   /* seal a group's open segment once its oldest
	                               record is this old (archive lag bound);
	                               0: QFS_NODE_SEAL_AGE_DEFAULT_MS, UINT64_MAX: never */
};

#define QFS_NODE_SEAL_AGE_DEFAULT_MS 60000ull

struct qfs_node;

/* Open the node directory, recover every group found under wal/ (replay the
 * WAL past the store's applied LSN) and start the I/O thread.  A group whose
 * WAL is corrupt is opened stopped (status says why); that is not an error
 * here.  Errors: -errno, QFS_EFORMAT (FORMAT names another version), -EIO. */
int qfs_node_open(const struct qfs_node_opts *o, struct qfs_node **out);

/* Stop the I/O thread after draining queued proposals, close everything.
 * qfs_node_close(NULL) does nothing. */
void qfs_node_close(struct qfs_node *n);

/* Create an empty group.  Durable on return.  -EEXIST, -errno. */
int qfs_node_group_create(struct qfs_node *n, qfs_group_t group);
/* Delete a group's WAL and items.  Pending proposals fail with QFS_ENOGROUP. */
int qfs_node_group_drop(struct qfs_node *n, qfs_group_t group);
/* 1 if the node hosts group, 0 if not. */
int qfs_node_group_exists(struct qfs_node *n, qfs_group_t group);
/* Call cb for each hosted group id (ascending). */
void qfs_node_groups(struct qfs_node *n, void (*cb)(qfs_group_t group, void *arg), void *arg);

/* Replicate and apply one encoded txn in group; blocks until applied.
 * Returns 0 and the txn's result in *result (0 or the failing op's error),
 * or: QFS_ENOGROUP, QFS_ESTOPPED, -ENOSPC (log write failed for lack of
 * space; nothing was applied), -EIO, -ENOMEM, -EINVAL (too large). */
int qfs_node_propose(struct qfs_node *n, qfs_group_t group, const void *txn, size_t len,
		     int *result);

/* Reads of applied state (strongly consistent: proposals return after
 * apply).  Same contracts as qfs_store_get/scan plus QFS_ENOGROUP,
 * QFS_ESTOPPED. */
int qfs_node_get(struct qfs_node *n, qfs_group_t group, const uint8_t *key, size_t key_len,
		 void **val, size_t *val_len);
int qfs_node_scan(struct qfs_node *n, qfs_group_t group, const uint8_t *lo, size_t lo_len,
		  const uint8_t *hi, size_t hi_len, qfs_store_scan_cb cb, void *arg);

/* Append status lines, one fact per line, "key value" form, e.g.
 *   node 1 az a dir /data/nodes/n1
 *   group 0000000000000400 state ok leader 1 ballot 1 last 42 durable 42 commit 42 applied 42 wal_segments 1 wal_bytes 8123
 *   group 0000000000000401 state stopped err "corrupt record in 0000000000000001.wal at 4096" ...
 */
void qfs_node_status(struct qfs_node *n, struct qfs_buf *out);

/* WAL archiving hooks (src/archive).
 *
 * qfs_node_wal_info: the directory of group's WAL (segment files as in
 * doc/format-wal.md: every file but the highest-named one is sealed and
 * immutable) and the group's applied LSN.  0, QFS_ENOGROUP, QFS_ESTOPPED,
 * -ENAMETOOLONG, store read errors; outputs set only on 0.
 *
 * qfs_node_wal_release: the caller has archived every record below lsn.
 * Makes the store durable (qfs_store_sync), then deletes the WAL's sealed
 * segments whose records are all below min(lsn, applied + 1) (the WAL always
 * keeps its newest durable segment).  Runs with the group map locked
 * exclusively for the unlinks (the I/O thread waits).  0, QFS_ENOGROUP,
 * QFS_ESTOPPED, -EIO, -errno of unlink.
 *
 * qfs_node_snapshot_scan: qfs_store_snapshot_scan of group (items and the
 * applied LSN of one RocksDB snapshot), plus QFS_ENOGROUP, QFS_ESTOPPED.
 *
 * qfs_node_set_seal_hook: cb(group, arg) is called on the I/O thread after
 * every age seal (keep it short: it may only signal).  NULL clears it; set
 * it before writes start or after they stop. */
int qfs_node_wal_info(struct qfs_node *n, qfs_group_t group, char *dir, size_t dir_len,
		      qfs_lsn_t *applied);
int qfs_node_wal_release(struct qfs_node *n, qfs_group_t group, qfs_lsn_t lsn);
int qfs_node_snapshot_scan(struct qfs_node *n, qfs_group_t group, qfs_lsn_t *applied,
			   qfs_store_scan_cb cb, void *arg);
void qfs_node_set_seal_hook(struct qfs_node *n, void (*cb)(qfs_group_t group, void *arg), void *arg);

struct qfs_node_stat {
	uint64_t proposals;     /* proposals accepted */
	uint64_t commits;       /* group-commit rounds (fsync batches) */
	uint64_t fsyncs;        /* WAL fsyncs */
	uint64_t bytes_logged;  /* WAL payload bytes */
};
void qfs_node_stat(struct qfs_node *n, struct qfs_node_stat *out);

#endif
