/*
 * router.h - the item API that fs/ speaks (DESIGN.md section 3).
 *
 * The router resolves (table, key) to the key's partition through its own
 * copy of the partition map (src/meta; doc/partitions.md), proposes
 * transactions through the cell (node/cell.h), which sends them to the
 * partition group's leader and retries on leader change, reads items back,
 * and records client-side metrics per table and operation.  It also owns
 * the metadata of the mount, kept in the meta group (QFS_META_GROUP)
 * exactly like a directory:
 *
 *   meta group:  inode(1)            the root directory's attributes
 *                dentry(1, name)     a table: ino T, type S_IFDIR, group T
 *                chunk(0, 0)         be64 next free inode number (allocator)
 *                partition records   src/meta (doc/format-keys.md)
 *   table T:     inode(T)            the table directory's attributes
 *                everything below the table (dentries, inodes, chunks),
 *                spread over its partitions' groups by key range
 *
 * A table's id is its directory's inode number (and its first partition's
 * group).  Table QFS_META_TABLE is the root's items: the meta group.
 *
 * One txn whose ops fall into one partition is one proposal with
 * QFS_OP_RANGE (the partition's epoch) in front; a stale epoch refreshes
 * the map and retries.  Ops in several partitions run as one
 * cross-partition transaction (router/xact.h), each part fenced.
 *
 * Thread-safety: every function may be called from any thread.  Table
 * creation, deletion and rename are serialised with item transactions of the
 * affected table by a per-router rwlock (item txns share it, table deletion
 * takes it exclusively), so a table is never dropped under a write.
 */
#ifndef QFS_ROUTER_ROUTER_H
#define QFS_ROUTER_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/item.h"
#include "common/txn.h"

struct qfs_cell;   /* node/cell.h: the storage nodes (main.c opens them) */
struct qfs_router;

struct qfs_table {
	char name[QFS_NAME_MAX + 1];
	qfs_ino_t ino;       /* the table directory's inode */
	qfs_table_t id;      /* the table id the item calls take */
};

enum qfs_router_op { QFS_ROUTER_GET = 0, QFS_ROUTER_TXN, QFS_ROUTER_SCAN, QFS_ROUTER_NOPS };

/* Open the router over the cell: create the meta group and the root inode
 * on a new cell (root owned by uid/gid with mode 0755), load the inode allocator,
 * and drop groups no table refers to (left by a crash during mkdir/rmdir).
 * *out set only on success.  Errors: those of qfs_cell_*, -ENOMEM. */
int qfs_router_new(struct qfs_cell *cell, uint32_t uid, uint32_t gid, struct qfs_router **out);
void qfs_router_free(struct qfs_router *r); /* NULL: nothing */

/* Allocate a fresh inode number (never reused).  0, or a propose error. */
int qfs_router_alloc_ino(struct qfs_router *r, qfs_ino_t *out);

/* Tables. name is 1..QFS_NAME_MAX bytes (callers check). */
int qfs_router_table_lookup(struct qfs_router *r, const char *name, struct qfs_table *out); /* -ENOENT */
/* Create a table whose directory gets attributes a (ino, nlink, type set
 * here).  -EEXIST, or propose errors; nothing is left behind on error. */
int qfs_router_table_create(struct qfs_router *r, const char *name, const struct qfs_attr *a,
			    struct qfs_table *out);
/* Called with a dropped table's group before its replicas are dropped
 * (delete, or rename over an empty table), on the caller's thread with no
 * router lock held; it may block (bounded): the mount archives the group's
 * last records there (archive.h qfs_archive_drop_hook).  Its result is only
 * logged: the group is dropped anyway. */
typedef int (*qfs_router_drop_hook)(qfs_group_t group, void *arg); /* once per partition group */
/* Set the drop hook (NULL: none).  Call before the router serves calls. */
void qfs_router_set_drop_hook(struct qfs_router *r, qfs_router_drop_hook cb, void *arg);
/* Delete an empty table: -ENOENT, -ENOTEMPTY, -EBUSY (a file unlinked in it
 * is still open).  Waits for the drop hook (the archive, bounded). */
int qfs_router_table_delete(struct qfs_router *r, const char *name);
/* Rename a table at the root.  noreplace: -EEXIST if newname exists;
 * otherwise an existing empty target table is replaced (-ENOTEMPTY if not
 * empty).  -ENOENT if oldname is missing. */
int qfs_router_table_rename(struct qfs_router *r, const char *oldname, const char *newname,
			    int noreplace);
/* Tables in name order after 'after' ("" for the first); cb returns nonzero
 * to stop.  Returns 0, cb's value, or a read error. */
int qfs_router_table_list(struct qfs_router *r, const char *after,
			  int (*cb)(const struct qfs_table *t, void *arg), void *arg);
/* Number of tables. */
uint64_t qfs_router_table_count(struct qfs_router *r);

/* Items.  Run txn on table (its ops routed by key, atomically across
 * partitions) and return its result in *result (0 or the failing op's
 * error; -EBUSY if its keys stayed locked by a prepared cross-partition
 * txn).  Returns 0 or a propose error (-ETIMEDOUT, QFS_ESTOPPED, -EIO,
 * -ENOSPC, QFS_ENOGROUP, -ENOMEM), or -EXDEV (a LINK_DROP whose orphan
 * entry is in another partition than its inode; more than 64 partitions).
 * A write to a range being moved by a split waits for the split. */
int qfs_router_txn(struct qfs_router *r, qfs_table_t table, const struct qfs_txn *txn, int *result);
/* Point read; *val malloc'd.  0, -ENOENT, read errors. */
int qfs_router_get(struct qfs_router *r, qfs_table_t table, const uint8_t *key, size_t key_len,
		   void **val, size_t *val_len);
/* Convenience: read and decode inode ino of table.  out initialised by the
 * caller; 0, -ENOENT, QFS_ECORRUPT, read errors. */
int qfs_router_get_inode(struct qfs_router *r, qfs_table_t table, qfs_ino_t ino, struct qfs_inode *out);
int qfs_router_get_attr(struct qfs_router *r, qfs_table_t table, qfs_ino_t ino, struct qfs_attr *out);
/* Range scan, see qfs_store_scan: walks the table's partitions in key
 * order, so the items come sorted and complete across splits. */
int qfs_router_scan(struct qfs_router *r, qfs_table_t table, const uint8_t *lo, size_t lo_len,
		    const uint8_t *hi, size_t hi_len, qfs_scan_cb cb, void *arg);

/* Splits (doc/partitions.md).  split_bytes: split a partition above that
 * many bytes (0: never); split_ops: split one whose request rate stays
 * above that many ops/s for window_ms (0: never), at the median of the keys
 * sampled from its requests; check_ms: how often the background thread
 * looks.  Starts the thread on the first call.  0, -ENOMEM, pthread errors. */
struct qfs_router_split_cfg {
	uint64_t split_bytes;   /* bytes; QFS_ROUTER_SPLIT_BYTES_DEFAULT */
	double split_ops;       /* ops/s; 0: no load splits */
	uint32_t window_ms;     /* ms the rate must stay above split_ops */
	uint32_t check_ms;      /* ms between checks */
};
#define QFS_ROUTER_SPLIT_BYTES_DEFAULT (1ull << 30)
#define QFS_ROUTER_SPLIT_WINDOW_DEFAULT_MS 10000u
#define QFS_ROUTER_SPLIT_CHECK_DEFAULT_MS 1000u
int qfs_router_split_config(struct qfs_router *r, const struct qfs_router_split_cfg *cfg);
/* Split the partition of (table, key) at key now (the load/size checks'
 * procedure; for tests and tools).  0, -EINVAL (key is a partition's
 * first key), propose and cell errors (the table is left before the split). */
int qfs_router_split(struct qfs_router *r, qfs_table_t table, const uint8_t *key, size_t key_len);
/* The key a load split of the partition [lo, hi) (lo_len 0: from the
 * first key; hi_len 0: to the end) cuts at, given in key[0..*key_len)
 * the median of the requests' keys: an inode or chunk key moves to the end
 * of its file's items (a file stays in one partition), or, when that end
 * is not inside the partition, to the file's start; a dentry key stays.
 * Pure function, any thread.  0 with key and *key_len rewritten (at most
 * QFS_KEY_MAX bytes), or -ERANGE with *why set to a static reason (key
 * outside the partition, its first key, or one file spanning the
 * partition around it); key untouched then. */
int qfs_router_load_split_key(const uint8_t *lo, size_t lo_len, const uint8_t *hi, size_t hi_len,
			      uint8_t *key, size_t *key_len, const char **why);
/* .quorumfs/partitions: one line per partition (doc/fs.md). */
void qfs_router_partitions(struct qfs_router *r, struct qfs_buf *out);

/* Admission control (admit.h, doc/admission.md).  Every qfs_router_txn,
 * _get and _scan on a table's group is charged to the table's buckets
 * (the meta group is not): a txn ceil(encoded bytes / 1 KiB) write units
 * before it runs, a get or scan one read unit before it runs and the rest
 * of ceil(bytes read / 4 KiB) after.  Over capacity they wait (at most the
 * configured bound) or, with cfg->fail, return -EAGAIN.
 * qfs_router_admit_config sets the mount-wide options (before traffic);
 * returns 0.  qfs_router_capacity_changed re-reads a table's settings from
 * its directory's xattrs after fs/ stored a change (burst starts empty). */
struct qfs_admit_cfg;
int qfs_router_admit_config(struct qfs_router *r, const struct qfs_admit_cfg *cfg);
void qfs_router_capacity_changed(struct qfs_router *r, qfs_table_t table);
/* .quorumfs/capacity: one line per table, "table NAME mode ... throttled_writes N". */
void qfs_router_capacity(struct qfs_router *r, struct qfs_buf *out);

/* Status and metrics text (one fact per line) appended to out. */
/* Read key from node id's replica alone (qfs_cell_get_node: -EINVAL,
 * -EHOSTDOWN, store errors); for the canary's per-AZ reads.  No metrics. */
int qfs_router_get_node(struct qfs_router *r, uint32_t id, qfs_table_t table, const uint8_t *key, size_t key_len,
			void **val, size_t *val_len);
/* Number of storage nodes (ids 1..n). */
uint32_t qfs_router_node_count(struct qfs_router *r);
void qfs_router_status(struct qfs_router *r, struct qfs_buf *out);
void qfs_router_stats(struct qfs_router *r, struct qfs_buf *out);

#endif
