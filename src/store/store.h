/*
 * store.h - the node's RocksDB: items of every group it hosts, plus each
 * group's applied LSN (layout: doc/format-store.md).
 *
 * Keys in RocksDB:  'd' be64(group) itemkey  -> item value (and the
 *                                               group's 2PC state under
 *                                               reserved itemkeys, key.h)
 *                   'a' be64(group)          -> be64(applied LSN)
 *                   's' be64(group)          -> be64(lsn) be64(ballot): the
 *                                               last snapshot installed
 *                   'c' be64(group) itemkey  -> be32(len) be32(crc32c):
 *                                               a chunk item's checksum,
 *                                               or with be64(segment)
 *                                               be64(offset) after it: a
 *                                               pointer to the value in a
 *                                               WAL segment (value log)
 * A committed log entry is applied in one WriteBatch together with the new
 * applied LSN, so after a crash the store is exactly "all entries up to
 * applied"; the node replays the WAL from applied+1.  RocksDB's own WAL is
 * off: our WAL is the durability source (qfs_store_sync flushes).
 *
 * Thread-safety: reads (get, scan, applied) may run on any thread at any
 * time; apply and drop are called only by the node's I/O thread.
 */
#ifndef QFS_STORE_STORE_H
#define QFS_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "common/qfs.h"
#include "common/buf.h"

struct qfs_store;

/* Called per item in key order; return nonzero to stop (returned as is). */
typedef qfs_scan_cb qfs_store_scan_cb;

/* A block cache that several stores of one process share, so that its
 * budget bounds them together (the cell's three nodes).  new: 0 or -ENOMEM,
 * *out set only on success; bytes 0 means QFS_STORE_CACHE_DEFAULT.  free:
 * NULL does nothing; stores opened with it may outlive it (RocksDB keeps
 * its own reference), but it must not be passed to an open after free. */
struct qfs_store_cache;
int qfs_store_cache_new(uint64_t bytes, struct qfs_store_cache **out);
void qfs_store_cache_free(struct qfs_store_cache *c);

#define QFS_STORE_CACHE_DEFAULT (32ull << 20)    /* block cache, whole process */
#define QFS_STORE_MEMTABLE_DEFAULT (16ull << 20) /* memtables, per store */
#define QFS_STORE_MEMTABLE_MIN (2ull << 20)
#define QFS_STORE_BLOB_MIN_DEFAULT 4096u         /* values this large go to blob files */
#define QFS_STORE_INSTALL_FILE_DEFAULT (64ull << 20) /* snapshot install: staging file size */
#define QFS_STORE_VLOG_MIN_DEFAULT 4096u         /* chunk values this large stay in the WAL */

/* Memory and layout budget of one store (doc/format-store.md "Options"). */
struct qfs_store_opts {
	struct qfs_store_cache *cache; /* shared block cache; NULL: a private one
					  of QFS_STORE_CACHE_DEFAULT bytes */
	uint64_t memtable_bytes;       /* bound on this store's memtables (active +
					  being flushed); 0: QFS_STORE_MEMTABLE_DEFAULT,
					  raised to QFS_STORE_MEMTABLE_MIN */
	uint32_t min_blob_bytes;       /* values of at least this many bytes (file
					  chunks, inline data) are kept in blob files,
					  written once and never rewritten by
					  compaction; 0: QFS_STORE_BLOB_MIN_DEFAULT,
					  UINT32_MAX: no blob files */
	uint64_t install_file_bytes;   /* a snapshot install (below) starts a new
					  staging file once one passes this size,
					  which bounds the memory of the file's
					  index and filter; 0:
					  QFS_STORE_INSTALL_FILE_DEFAULT */
	uint32_t vlog_min_bytes;       /* chunk values of at least this many bytes
					  applied from a log entry with its place
					  (qfs_store_apply_src) stay in the WAL
					  segment, the store keeping a pointer
					  (doc/format-store.md "Value log"); 0:
					  QFS_STORE_VLOG_MIN_DEFAULT, UINT32_MAX:
					  off */
};

/* Open or create the RocksDB in dir with the default options (a private
 * cache).  *out set only on success.
 * Errors: -EIO (with a log line quoting RocksDB's message), -ENOMEM. */
int qfs_store_open(const char *dir, struct qfs_store **out);
/* The same with explicit options (o NULL: defaults). */
int qfs_store_open_opts(const char *dir, const struct qfs_store_opts *o, struct qfs_store **out);
void qfs_store_close(struct qfs_store *s); /* NULL: nothing */

/* Applied LSN of group (0 if nothing applied). 0, -EIO, or QFS_ECORRUPT if
 * the stored LSN is not 8 bytes. */
int qfs_store_applied(struct qfs_store *s, qfs_group_t group, qfs_lsn_t *out);

/* Apply the encoded txn (common/txn.h) at lsn.  lsn must be applied+1
 * (-EINVAL otherwise, nothing done).  *result gets the txn's own result: 0
 * or the failing op's negative error, in which case no item changed but the
 * applied LSN still advanced (a failed condition is a committed outcome).
 * Two-phase commit (doc/xact.md): the 2PC ops keep their state under
 * reserved keys of the group; while the group holds prepared txns, a txn
 * that reads or writes one of their locked keys gets *result -EBUSY.
 * Returns 0, QFS_ECORRUPT (payload does not decode; nothing done),
 * QFS_EFORMAT (payload of an unknown txn format version; nothing done),
 * -ENOMEM, or -EIO when RocksDB fails (nothing done). */
int qfs_store_apply(struct qfs_store *s, qfs_group_t group, qfs_lsn_t lsn, const void *txn,
		    size_t len, int *result);

/* Where the bytes of an entry being applied lie on disk (plain data: the
 * WAL's struct qfs_wal_loc as the store needs it): the entry's payload
 * base[0..len) is bytes [off, off + len) of the durable segment file
 * seg_dir/<seg_first as 16 hex digits>.wal, which is never rewritten in
 * place below the applied LSN (doc/format-wal.md). */
struct qfs_store_src {
	const char *seg_dir;
	qfs_lsn_t seg_first;
	uint64_t off;
	const void *base;
	size_t len;
};

/* qfs_store_apply of the txn at txn[0..len), which lies within src's
 * payload (src NULL: as qfs_store_apply): a chunk value the txn PUTs as
 * is, of at least vlog_min_bytes, is stored as a pointer into src's
 * segment, which the store links into <dir>/qfs-vlog/ first (a link that
 * cannot be made leaves the values in RocksDB).  Same returns. */
int qfs_store_apply_src(struct qfs_store *s, qfs_group_t group, qfs_lsn_t lsn, const void *txn,
			size_t len, const struct qfs_store_src *src, int *result);

/* Advance the applied LSN to lsn without changing items (no-op entries). */
int qfs_store_apply_noop(struct qfs_store *s, qfs_group_t group, qfs_lsn_t lsn);

/* Point read.  *val is malloc'd (caller frees), set only on success.
 * A chunk item is checked against its 'c' record (our CRC32C) instead of
 * RocksDB's blob CRC, and read again with RocksDB's checks when that does
 * not match (doc/format-store.md "Chunk checksums"): a damaged value is
 * never returned.  0, -ENOENT, -ENOMEM, -EIO, QFS_ECORRUPT. */
int qfs_store_get(struct qfs_store *s, qfs_group_t group, const uint8_t *key, size_t key_len,
		  void **val, size_t *val_len);

/* As qfs_store_get, without the copy: *out (empty on entry) holds
 * RocksDB's pinned value, valid until qfs_val_release(out), which the
 * caller must call exactly once; set only on success.  Same checks and
 * errors.  The value may pin a block of the store's block cache (a value
 * in an SST; memtable and blob values are RocksDB's own copies): it may
 * outlive qfs_store_close only if that cache is a shared one
 * (qfs_store_opts.cache) freed after the release; with the store's
 * private cache, release before qfs_store_close (after it, the release
 * calls into the freed cache: RocksDB aborts or worse). */
int qfs_store_get_val(struct qfs_store *s, qfs_group_t group, const uint8_t *key, size_t key_len,
		      struct qfs_val *out);

/* Items of group with lo <= key < hi in order; hi NULL = to the group's end.
 * Reads one consistent snapshot.  Returns 0, cb's nonzero value, or -EIO. */
int qfs_store_scan(struct qfs_store *s, qfs_group_t group, const uint8_t *lo, size_t lo_len,
		   const uint8_t *hi, size_t hi_len, qfs_store_scan_cb cb, void *arg);

/* Delete every item of group, its applied LSN and snapshot point.  0 or -EIO. */
int qfs_store_drop_group(struct qfs_store *s, qfs_group_t group);

/* Make everything applied so far survive a crash (flushes RocksDB's
 * memtables to SST files and waits).  Call before deleting WAL segments
 * below the applied LSN.  0, -ENOMEM or -EIO. */
int qfs_store_sync(struct qfs_store *s);

/* Consistent snapshot of a whole group, for archive snapshots: calls cb for
 * every item of group in key order, all read from one RocksDB snapshot, and
 * on success stores in *applied the group's applied LSN read from that same
 * snapshot (so the items are exactly the state after applying 1..*applied).
 * Returns 0, cb's nonzero value, -ENOMEM, -EIO or QFS_ECORRUPT (applied LSN
 * not 8 bytes); *applied set only on 0.  Any thread. */
int qfs_store_snapshot_scan(struct qfs_store *s, qfs_group_t group, qfs_lsn_t *applied,
			    qfs_store_scan_cb cb, void *arg);

/* Restore path (src/archive/restore.c) on a private store: write one item of
 * group as is, or set the group's applied LSN, without txn semantics.
 * 0, -ENOMEM or -EIO.  Not for a live node's store. */
int qfs_store_load_item(struct qfs_store *s, qfs_group_t group, const uint8_t *key, size_t key_len,
			const uint8_t *val, size_t val_len);
int qfs_store_load_applied(struct qfs_store *s, qfs_group_t group, qfs_lsn_t lsn);

/* Snapshot install on a live store (the rnode's catch-up, doc/rnode.md
 * section 6): begin starts one, item adds the snapshot's items in strictly
 * ascending key order, commit replaces every item of group, its applied
 * LSN and its snapshot point 's' be64(group) -> be64(lsn) be64(ballot) by
 * them at once and flushes (qfs_store_sync), so a crash leaves the group
 * wholly old or wholly new, and on return 0 the new state is durable.
 * Readers see the change atomically.  The items go to disk as they come,
 * into SST files in the staging directory DIR/qfs-install/ that commit
 * ingests in one step (install.c): memory stays about one item plus
 * RocksDB's file buffer (1 MiB) and the index and filter of one staging
 * file (install_file_bytes), whatever the snapshot's size, and the
 * disk needs about the snapshot's size free until commit.  Staging files
 * are removed by abort, by a failed commit and, after a crash, by the
 * next open.
 *   begin: 0, -ENOMEM, -EIO (staging directory or file not created);
 *     *out set only on success.
 *   item: 0, -EINVAL (key or value too large, or a key not above the
 *     last one: logged), -ENOMEM, -EIO; after an error the install is
 *     unusable: abort it.
 *   commit: frees in in every case; 0, -ENOMEM, -EINVAL, -ENOSPC (no
 *     room to flush the memtables before the ingestion: nothing
 *     changed), -EIO or QFS_ECORRUPT.  On error the group is unchanged
 *     if the ingestion failed, but a failed flush after it leaves the
 *     caller unsure: it must stop using the group until reopen.
 *   abort: frees in and removes its files, nothing written; NULL: nothing.
 *   buffered: item bytes in holds in memory now (added since its writer
 *     last wrote a block to its file; RocksDB's file buffer not counted).
 *   peak: the most bytes any install of s buffered at once since open.
 * One install is used by one thread at a time (the I/O thread, like
 * apply); several groups may install at once. */
struct qfs_store_install;
int qfs_store_install_begin(struct qfs_store *s, qfs_group_t group,
			    struct qfs_store_install **out);
int qfs_store_install_item(struct qfs_store_install *in, const uint8_t *key, size_t key_len,
			   const uint8_t *val, size_t val_len);
int qfs_store_install_commit(struct qfs_store_install *in, qfs_lsn_t lsn, uint64_t ballot);
void qfs_store_install_abort(struct qfs_store_install *in);
uint64_t qfs_store_install_buffered(const struct qfs_store_install *in);
uint64_t qfs_store_install_peak(struct qfs_store *s);

/* The last snapshot point installed for group ((0, 0) if none): the LSN the
 * store was replaced at and the ballot of the log entry at that LSN, which
 * the log may no longer hold.  0, -EIO, QFS_ECORRUPT (not 16 bytes). */
int qfs_store_snap_point(struct qfs_store *s, qfs_group_t group, qfs_lsn_t *lsn,
			 uint64_t *ballot);

/* Approximate bytes and keys of group (RocksDB estimates). */
int qfs_store_group_size(struct qfs_store *s, qfs_group_t group, uint64_t *bytes);

/* Scrub snapshots (src/scrub, doc/scrub.md).  A qfs_store_snap is one
 * RocksDB snapshot of the whole store: every read through it sees the
 * store as it was when it was taken.  The node's I/O thread takes it right
 * after applying a chosen LSN (qfs_rnode_snap_at), so replicas are compared
 * at one and the same LSN while writes go on.
 *   take: 0 or -ENOMEM; *out set only on success.  Any thread.
 *   release: NULL does nothing; must run before qfs_store_close.
 *   snap_applied: the group's applied LSN in the snapshot (0: none); 0, -EIO,
 *     QFS_ECORRUPT (not 8 bytes, or RocksDB reports a corrupt block).
 *   snap_scan: the items of group with lo <= key < hi (lo NULL: from the
 *     start, hi NULL: to the end) in key order, read with verify_checksums
 *     and without filling the block cache; every block read is checked
 *     against its RocksDB checksum.  Returns 0, cb's nonzero value,
 *     QFS_ECORRUPT (RocksDB found a corrupt block or file: one log line),
 *     -ENOMEM or -EIO.  Any thread; keys and values valid only in cb. */
struct qfs_store_snap;
int qfs_store_snap_take(struct qfs_store *s, struct qfs_store_snap **out);
void qfs_store_snap_release(struct qfs_store_snap *sn);
int qfs_store_snap_applied(struct qfs_store_snap *sn, qfs_group_t group, qfs_lsn_t *out);
int qfs_store_snap_scan(struct qfs_store_snap *sn, qfs_group_t group, const uint8_t *lo,
			size_t lo_len, const uint8_t *hi, size_t hi_len, qfs_store_scan_cb cb,
			void *arg);

/* Read every live SST block of the store and check its checksum (RocksDB's
 * whole-database verification would be VerifyChecksum; the C API lacks it,
 * so this scans the full key space with verify_checksums).  0, QFS_ECORRUPT
 * (logged), -ENOMEM, -EIO.  Any thread. */
int qfs_store_verify(struct qfs_store *s);
/* Memory the store holds now, from RocksDB's properties: memtables (active,
 * immutable and pinned) in *memtables, and the block cache's usage in
 * *cache (the shared cache's total when it is shared).  0 or -EIO; outputs
 * set only on 0.  Any thread. */
int qfs_store_mem(struct qfs_store *s, uint64_t *memtables, uint64_t *cache);

/* Ask RocksDB to compact the whole store now (waits), so that the space of
 * deleted items (and of blob files they made garbage) returns to the file
 * system; used when the disk runs short after deletes.  Blob garbage
 * collection (rewriting the live values of partly dead blob files) runs
 * too when the free space exceeds room + the live blob bytes.  Refused with
 * -ENOSPC, like qfs_store_sync, when less than `room` bytes are free.
 * 0, -ENOSPC, -ENOMEM or -EIO.  Any thread; it blocks on I/O. */
int qfs_store_compact(struct qfs_store *s, uint64_t room);

/* The value log's collector (doc/format-store.md "Value log"): removes the
 * links of segments no pointer uses any more and that no apply can point
 * into again (flushing the store first, qfs_store_sync, when there is one
 * to remove), and reports what the value log holds in *st.  The pointers
 * are read (live, dangling, scanned) only when some link may go or when
 * full.  A segment less than half live (below the applied LSN, not its
 * group's last) first gets its live values moved into RocksDB, each
 * checked against the pointer under the apply's lock (an apply that
 * replaced the chunk wins); a segment more than half live stays whole.  0, -ENOSPC (no room to flush: nothing removed),
 * -ENOMEM, -EIO.  Any thread but one at a time; it blocks on I/O. */
struct qfs_store_vlog_stat {
	uint64_t segments;   /* links held after the pass */
	uint64_t bytes;      /* their disk usage (bytes) */
	uint64_t live;       /* bytes of values pointed at (when scanned) */
	int scanned;         /* the pointers were read by this pass */
	uint64_t dangling;   /* pointers whose link is missing (0 unless damaged) */
	uint64_t removed;    /* links removed by this pass ... */
	uint64_t freed;      /* ... and their bytes */
	uint64_t rewritten;  /* bytes of live values this pass moved into RocksDB
				(from segments less than half live) */
	uint64_t gc_removed; /* links removed since open */
	uint64_t gc_rewritten; /* values moved into RocksDB since open */
	uint64_t reads;      /* values read from segments since open */
	uint64_t bad;        /* of those, damaged or missing (EIO) */
	uint64_t extents;    /* PATCHes stored as extents since open */
};
int qfs_store_vlog_gc(struct qfs_store *s, int full, struct qfs_store_vlog_stat *st);

#endif
