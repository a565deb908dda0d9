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

/* Items.  fs/ names an item of a table by what it is (struct
 * qfs_router_key); the router encodes it into the table's key
 * (common/key.h, doc/format-keys.md), routes it to its partition, and
 * hands keys back decoded, so fs/ never sees a raw key nor a group.
 *   dentry  (dir, name)   a directory entry; its value a qfs_dentry
 *   inode   (ino)         an inode; its value a qfs_inode
 *   chunk   (ino, no)     chunk no of a large file (QFS_CHUNK_SIZE bytes)
 * Ranges: the entries of a directory in name order (after a name), or the
 * chunks [from, to) of a file. */
enum qfs_router_key_kind { QFS_RKEY_DENTRY = 1, QFS_RKEY_INODE, QFS_RKEY_CHUNK };

struct qfs_router_key {
	enum qfs_router_key_kind kind;
	qfs_ino_t ino;           /* dentry: its directory; inode, chunk: the inode */
	const char *name;        /* dentry: the name, 1..QFS_NAME_MAX bytes, no NUL
				    inside (borrowed; not NUL-terminated in a scan) */
	size_t name_len;         /* dentry: bytes of name */
	uint64_t chunk;          /* chunk: the chunk number */
};

static inline struct qfs_router_key qfs_router_key_dentry(qfs_ino_t dir, const char *name, size_t name_len)
{
	struct qfs_router_key k = { QFS_RKEY_DENTRY, dir, name, name_len, 0 };
	return k;
}
static inline struct qfs_router_key qfs_router_key_inode(qfs_ino_t ino)
{
	struct qfs_router_key k = { QFS_RKEY_INODE, ino, NULL, 0, 0 };
	return k;
}
static inline struct qfs_router_key qfs_router_key_chunk(qfs_ino_t ino, uint64_t no)
{
	struct qfs_router_key k = { QFS_RKEY_CHUNK, ino, NULL, 0, no };
	return k;
}

struct qfs_router_range {
	enum qfs_router_key_kind kind; /* QFS_RKEY_DENTRY or QFS_RKEY_CHUNK */
	qfs_ino_t ino;           /* dentry: the directory; chunk: the file */
	const char *after;       /* dentry: only names after this one (NULL: all) */
	size_t after_len;        /* dentry: bytes of after */
	uint64_t from, to;       /* chunk: [from, to); to UINT64_MAX: all from 'from' */
};

static inline struct qfs_router_range qfs_router_range_dentries(qfs_ino_t dir, const char *after,
								size_t after_len)
{
	struct qfs_router_range rg = { QFS_RKEY_DENTRY, dir, after, after_len, 0, 0 };
	return rg;
}
static inline struct qfs_router_range qfs_router_range_chunks(qfs_ino_t ino, uint64_t from, uint64_t to)
{
	struct qfs_router_range rg = { QFS_RKEY_CHUNK, ino, NULL, 0, from, to };
	return rg;
}

/* An item transaction under construction: a txn (common/txn.h) whose ops'
 * keys the router encoded and keeps here.  Embedded; not thread-safe. */
struct qfs_router_itxn {
	struct qfs_txn t;        /* the ops; their keys point into kb */
	struct qfs_router_kblock *kb; /* encoded keys (router-private blocks) */
};
void qfs_router_itxn_init(struct qfs_router_itxn *t);
void qfs_router_itxn_close(struct qfs_router_itxn *t); /* frees the ops and keys */
/* Append an op of kind on item k and return it for the caller to fill in
 * (everything but key, key2), or NULL (-ENOMEM).  k2 (NULL: none) is the
 * second key of a LINK_DROP (the orphan entry).  The op is valid until
 * the next append. */
struct qfs_op *qfs_router_itxn_add(struct qfs_router_itxn *t, enum qfs_op_kind kind,
				   const struct qfs_router_key *k, const struct qfs_router_key *k2);
/* The inode whose inode item op (an op of an itxn) names, or 0 when its
 * key is not an inode key (a dentry, a chunk, a range). */
qfs_ino_t qfs_router_op_inode(const struct qfs_op *op);
/* Append a range op (DEL_RANGE, EXPECT_EMPTY) over rg; as _add. */
struct qfs_op *qfs_router_itxn_add_range(struct qfs_router_itxn *t, enum qfs_op_kind kind,
					 const struct qfs_router_range *rg);

/* Run t on table (its ops routed by key, atomically across
 * partitions) and return its result in *result (0 or the failing op's
 * error; -EBUSY if its keys stayed locked by a prepared cross-partition
 * txn; QFS_ECONFLICT if a LINK_DROP's orphan entry is in another partition
 * than its inode and the inode changed while the router spelled the drop
 * out: retry).  Returns 0 or a propose error (-ETIMEDOUT, QFS_ESTOPPED,
 * -EIO, -ENOSPC, QFS_ENOGROUP, -ENOMEM), or -EXDEV (more than 64
 * partitions).
 * A write to a range being moved by a split waits for the split. */
int qfs_router_item_txn(struct qfs_router *r, qfs_table_t table, const struct qfs_router_itxn *t, int *result);
/* Point read of item k; *val malloc'd.  0, -ENOENT, read errors. */
int qfs_router_item_get(struct qfs_router *r, qfs_table_t table, const struct qfs_router_key *k, void **val,
			size_t *val_len);
/* As qfs_router_item_get, the value held without a copy: *out (empty on
 * entry, set only on success) is RocksDB's pinned value on an embedded
 * cell, the received buffer on a cluster; the caller gives it back with
 * qfs_val_release exactly once (e.g. after fuse_reply_iov).  Same checks
 * (a damaged chunk is never returned) and errors. */
int qfs_router_item_get_val(struct qfs_router *r, qfs_table_t table, const struct qfs_router_key *k,
			    struct qfs_val *out);
/* Convenience: read and decode inode ino of table.  out initialised by the
 * caller; 0, -ENOENT, QFS_ECORRUPT, read errors. */
int qfs_router_get_inode(struct qfs_router *r, qfs_table_t table, qfs_ino_t ino, struct qfs_inode *out);
int qfs_router_get_attr(struct qfs_router *r, qfs_table_t table, qfs_ino_t ino, struct qfs_attr *out);
/* The items of rg in key order, across the table's partitions (sorted
 * and complete across splits): cb gets each key decoded (a dentry's name
 * points into the read, valid during the call) and value; it returns
 * nonzero to stop.  Returns 0, cb's value, QFS_ECORRUPT (a key that does
 * not decode, logged; the scan stops there), or a read error. */
typedef int (*qfs_router_item_cb)(const struct qfs_router_key *k, const void *val, size_t val_len, void *arg);
int qfs_router_item_scan(struct qfs_router *r, qfs_table_t table, const struct qfs_router_range *rg,
			 qfs_router_item_cb cb, void *arg);

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
/* .quorumfs/partitions: one line per partition (doc/fs.md). */
void qfs_router_partitions(struct qfs_router *r, struct qfs_buf *out);
/* Number of partitions of table in this router's map (memory only, no I/O):
 * *n >= 1.  0 or -ENOMEM.  statfs uses it: the store's inode count of a
 * table (ninodes of its directory inode) covers only the partition of the
 * table's first group (doc/fs.md "df -i"). */
int qfs_router_table_nparts(struct qfs_router *r, qfs_table_t table, size_t *n);

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
/* Read item k from node id's replica alone (qfs_cell_get_node: -EINVAL,
 * -EHOSTDOWN, store errors); for the canary's per-AZ reads.  No metrics. */
int qfs_router_item_get_node(struct qfs_router *r, uint32_t id, qfs_table_t table, const struct qfs_router_key *k,
			     void **val, size_t *val_len);
/* Number of storage nodes (ids 1..n). */
uint32_t qfs_router_node_count(struct qfs_router *r);
void qfs_router_status(struct qfs_router *r, struct qfs_buf *out);
void qfs_router_stats(struct qfs_router *r, struct qfs_buf *out);

#endif
