/*
 * store_int.h - internals shared by store.c (RocksDB handle, reads, writes)
 * and apply.c (txn semantics).  Layout of RocksDB keys: doc/format-store.md.
 *
 *   'd' be64(group) itemkey  -> item value      (STORE_ITEM_PREFIX)
 *   'a' be64(group)          -> be64(applied)   (STORE_APPLIED_PREFIX)
 *   'c' be64(group) itemkey  -> be32(len) be32(crc32c(itemkey || value))
 *                               of a chunk item     (STORE_CRC_PREFIX)
 *   's' be64(group)          -> be64(lsn) be64(ballot): the last snapshot
 *                               installed           (STORE_SNAP_PREFIX)
 */
#ifndef QFS_STORE_STORE_INT_H
#define QFS_STORE_STORE_INT_H

#include <pthread.h>
#include <rocksdb/c.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/key.h"
#include "common/txn.h"
#include "store/store.h"

#define STORE_ITEM_PREFIX 'd'
#define STORE_APPLIED_PREFIX 'a'
#define STORE_CRC_PREFIX 'c'
#define STORE_SNAP_PREFIX 's'
#define STORE_CRC_LEN 8                                /* the 'c' record's value */
#define STORE_VLOG_REC_LEN 24                          /* its long form: a pointer
							  into a WAL segment (vlog.c) */
/* The extents form of the 'c' record (vlog.c, doc/format-store.md "Value
 * log"): be32 len, be32 n, a 24-byte base (a pointer's bytes, or be32
 * len, be32 crc and 16 zero bytes for the item's own value), then n
 * extents of be32 chunk offset, be32 length, be32 crc32c(itemkey ||
 * bytes), be64 segment's first LSN, be64 file offset. */
#define STORE_VLOG_EXT_HEAD 32
#define STORE_VLOG_EXT_LEN 28
#define STORE_VLOG_EXT_MAX 32                          /* extents at most (a
							  chunk of 4 KiB PATCHes;
							  12 in format 5): the
							  next PATCH compacts */
#define STORE_VLOG_EXT_REC_MAX (STORE_VLOG_EXT_HEAD + STORE_VLOG_EXT_MAX * STORE_VLOG_EXT_LEN)
#define STORE_GROUP_PREFIX_LEN 9                       /* tag + be64(group) */
#define STORE_DBKEY_MAX (STORE_GROUP_PREFIX_LEN + QFS_KEY_MAX)

/* Value log (vlog.c): cached fds of links, and segments linked by apply. */
#define STORE_VLOG_FDS 64
#define STORE_VLINK_SLOTS 64
/* A sequential read of a link keeps STORE_VLOG_RA bytes asked ahead of
 * it (POSIX_FADV_WILLNEED), asked in calls of STORE_VLOG_RA_STEP bytes:
 * Linux reads at most max(read_ahead_kb, max_sectors_kb) of one call
 * (8 MiB on vda here, often 512 KiB-1 MiB), the rest of a longer one is
 * silently dropped (store_vlog_ra_next). */
#define STORE_VLOG_RA (16u << 20)
#define STORE_VLOG_RA_STEP (512u << 10)
/* No pointer names a longer value (a WAL record's payload is at most 64
 * MiB): a record that says more is damaged. */
#define STORE_VLOG_VALUE_MAX (64u << 20)

/* Slots of the applied-LSN cache (struct qfs_store ap): one per group a
 * node replicates, in practice; a collision only costs a RocksDB read. */
#define STORE_AP_SLOTS 64
/* Longest RANGE key the fence cache keeps (the fence's is 1 byte). */
#define STORE_FENCE_KEY_MAX 16
/* Slots of the apply's write-through cache (struct qfs_store cc), by
 * RocksDB key (direct-mapped; 8 writers of 8 files touch 8 chunk records
 * and 8 inodes at a time); longest RocksDB key it keeps. */
#define STORE_CC_SLOTS 128
#define STORE_CC_KEY_MAX 48

struct qfs_store {
	rocksdb_t *db;
	rocksdb_options_t *opts;
	rocksdb_block_based_table_options_t *bbto;
	rocksdb_cache_t *cache;           /* block cache of bbto's table factory */
	int own_cache;                    /* cache is private (destroyed with s) */
	int blobs;                        /* blob files on; immutable after open */
	rocksdb_writeoptions_t *wo;       /* RocksDB WAL off: our WAL is the durability source */
	rocksdb_readoptions_t *ro;        /* plain point reads; immutable after open */
	rocksdb_readoptions_t *ro_fast;   /* chunk reads checked by their 'c' record:
					     no RocksDB checksums, no block cache
					     fill (store_get_item); immutable */
	uint64_t crc_fast, crc_slow;      /* chunk reads served by the 'c' check /
					     read again with RocksDB's checks
					     (no, stale or mismatching record);
					     atomic, for tests and stats */
	uint64_t crc_mismatch;            /* of those, a record and a chunk
					     that disagree in one snapshot
					     (logged); atomic, for tests */
	char *dir;                        /* path of the RocksDB, for log lines */
	int flush_err;                    /* sticky: a flush failed (full disk...);
					     RocksDB must not be asked to flush again
					     (its debug builds assert); atomic */
	struct store_nprep *nprep;        /* groups whose count of prepared 2PC
					     txns is known, sorted by group (xact.c);
					     I/O thread only, like apply */
	size_t nnprep, nprep_cap;
	uint64_t install_file_bytes;      /* a snapshot install's stream starts a new
					     staging file past this size (bytes;
					     0: default); immutable after open */
	uint64_t install_seq;             /* number of the last snapshot install begun
					     (its staging file names); atomic */
	uint64_t install_peak;            /* most item bytes one install held in
					     memory at once since open
					     (qfs_store_install_peak); atomic */
	rocksdb_writebatch_t *apply_wb;   /* qfs_store_apply's batch, reused
					     (store.c apply_batch_done); NULL
					     until the first apply; I/O thread */
	/* value log (vlog.c, doc/format-store.md "Value log") */
	uint32_t vlog_min;                /* chunk values of at least this many bytes,
					     applied from a log entry, stay in its WAL
					     segment; 0: off; immutable after open */
	char *vlog_dir;                   /* <dir>/qfs-vlog, heap; immutable */
	int vlog_dir_ok;                  /* vlog_dir made; I/O thread */
	const struct qfs_store_src *apply_src; /* where the entry being applied
					     lies (qfs_store_apply_src), NULL: none;
					     I/O thread, during an apply only */
	struct store_vlink {              /* the link of a group's segment made (or
					     refused: rc) by apply; under apply_mu */
		qfs_group_t group;
		qfs_lsn_t first;
		int rc;
		int valid;
	} vlink[STORE_VLINK_SLOTS];
	pthread_mutex_t apply_mu;         /* held by every write that replaces
					     items from the I/O thread (apply, drop,
					     install's ingestion, load_item) and by
					     the collector's rewrite of a pointer,
					     which checks the pointer and writes its
					     value under it (vlog.c) */
	pthread_mutex_t vlog_mu;          /* protects vfd and vtick */
	struct store_vfd {                /* open links (LRU by tick); fd -1: free */
		qfs_group_t group;
		qfs_lsn_t first;
		int fd;
		uint64_t tick;
		uint64_t ra_end;          /* bytes up to here were asked ahead
					     (POSIX_FADV_WILLNEED) */
	} vfd[STORE_VLOG_FDS];
	uint64_t vtick;
	int vlog_snaps;                   /* snapshot reads open now (they may
					     resolve pointers the collector no
					     longer sees); atomic */
	uint64_t vlog_reads, vlog_bad;    /* values read from segments / damaged or
					     missing (EIO); atomic */
	uint64_t vlog_gc_removed;         /* links removed by the collector since
					     open; atomic */
	uint64_t vlog_gc_rewritten;       /* values it moved into RocksDB; atomic */
	uint64_t vlog_stale;              /* extents read over a stale 8-byte
					     record's base (vlog.c); atomic */
	uint64_t vlog_extents;            /* PATCHes stored as extents (apply.c
					     patch_ext) since open; atomic */
	uint64_t vlog_sig;                /* the links and applied LSNs the last
					     collection scanned (it skips an
					     unchanged store); the collector's */
	pthread_mutex_t ap_mu;            /* protects ap and fence */
	struct store_ap {                 /* applied LSNs known, by group (a
					     direct-mapped cache of the 'a'
					     records: set after the writes of
					     apply, apply_noop, load_applied;
					     dropped by drop, install and a
					     failed write; store.c applied_read) */
		qfs_group_t group;
		qfs_lsn_t lsn;
		int valid;
	} ap[STORE_AP_SLOTS];
	struct store_fence {              /* the record each RANGE op reads (the
					     partition fence), by group: the
					     epoch it holds (0: absent); set by
					     a read, dropped by any write of
					     its key (ov_emit), a 2PC apply,
					     load_item, drop, install; ap_mu */
		qfs_group_t group;
		uint8_t key[STORE_FENCE_KEY_MAX];
		uint32_t key_len;
		uint64_t epoch;
		int valid;
	} fence[STORE_AP_SLOTS];
	/* What the ordinary apply wrote (ov_emit), by RocksDB key: the 'c'
	 * records in the extents form, which patch_ext's next PATCH of the
	 * chunk reads, and the small values of items other than chunks (the
	 * inodes), which the next apply's view_get and view_len read, from
	 * here instead of RocksDB's memtable.  What a valid slot holds is
	 * what RocksDB holds: a slot is staged by ov_emit and made valid
	 * only after its batch was written (store_cc_commit); ov_emit drops
	 * the slots of every other key it writes; every other writer of
	 * items or 'c' records empties the cache (store_cc_forget) or the
	 * key's slots: a 2PC apply, a failed apply, load_item, drop,
	 * install's ingestion, the collector's rewrite.  Under apply_mu. */
	struct store_cc {
		uint32_t state;           /* 0 empty, 1 staged, 2 valid */
		uint32_t kl, rl;
		uint8_t k[STORE_CC_KEY_MAX];
		uint8_t rec[STORE_VLOG_EXT_REC_MAX];
	} cc[STORE_CC_SLOTS];
	uint64_t cc_hits_rec, cc_hits_item; /* the apply's reads of 'c' records /
					     of items served by cc; atomic, for
					     tests */
	uint64_t cc_misses;               /* and not (read from RocksDB); atomic */
	int cc_verify;                    /* QFS_STORE_CC_VERIFY=1 at open: every
					     hit is read from RocksDB too and must
					     equal it (tests: a writer that forgot
					     to drop its keys aborts the process) */
};

/* Bytes of a batch qfs_store_apply keeps for the next apply (its memory
 * stays allocated: about twice this at most). */
#define STORE_APPLY_WB_KEEP (12u << 20)

/* Prepared 2PC txns of one group (xact.c's cache of what the store holds). */
struct store_nprep {
	qfs_group_t group;
	uint64_t n;                       /* prepared records 'p' of the group */
};

/* Lock set encoding (prepared records and conflict checks): entries laid
 * end to end, u8 STORE_LOCK_POINT + bytes key, or u8 STORE_LOCK_RANGE +
 * bytes lo + bytes hi (the range [lo, hi)).  Effects encoding: u32 count,
 * then per key u8 del (1: delete), bytes key, and bytes value unless del. */
#define STORE_LOCK_POINT 0
#define STORE_LOCK_RANGE 1

/* RocksDB key for an item of group: 'd' be64(group) key, built in buf
 * (buf_len bytes) when it fits, else in a heap block the caller frees (when
 * the result != buf).  NULL on -ENOMEM. */
uint8_t *store_item_key(uint8_t *buf, size_t buf_len, qfs_group_t group, const uint8_t *key,
			size_t key_len, size_t *out_len);
/* The apply's write-through cache (struct qfs_store cc), under
 * s->apply_mu; k is a RocksDB key of kl >= 1 bytes whose first byte is
 * replaced by tag (STORE_CRC_PREFIX: the 'c' record, STORE_ITEM_PREFIX:
 * the item's value):
 * store_cc_get: the valid value of that key, or NULL;
 * store_cc_stage: value rec (rl bytes) of that key put into the apply's
 *   batch, valid after store_cc_commit (a key or value too long for a
 *   slot only drops the slot);
 * store_cc_drop: the key's value changes otherwise (its slot is emptied);
 * store_cc_commit: the apply's batch was written: staged slots valid;
 * store_cc_forget: every slot emptied (a write the cache does not follow,
 *   or a batch not written). */
const struct store_cc *store_cc_get(struct qfs_store *s, uint8_t tag, const uint8_t *k, size_t kl);
void store_cc_stage(struct qfs_store *s, uint8_t tag, const uint8_t *k, size_t kl, const uint8_t *rec,
		    size_t rl);
void store_cc_drop(struct qfs_store *s, uint8_t tag, const uint8_t *k, size_t kl);
void store_cc_commit(struct qfs_store *s);
void store_cc_forget(struct qfs_store *s);
/* 'a' be64(group) into out (9 bytes). */
void store_applied_key(uint8_t out[STORE_GROUP_PREFIX_LEN], qfs_group_t group);
/* 'd' be64(group) into out (9 bytes); the end of the group's items is
 * store_group_end(). */
void store_group_prefix(uint8_t out[STORE_GROUP_PREFIX_LEN], qfs_group_t group);
/* First key after every item of group: 'd' be64(group + 1), or "e" for the
 * last group.  Returns its length. */
size_t store_group_end(uint8_t out[STORE_GROUP_PREFIX_LEN], qfs_group_t group);

/* Chunk checksum records (doc/format-store.md "Chunk checksums"): append
 * to wb the 'c' record of item key of group, a put for the value val when
 * del is 0, else a delete.  Nothing for a key that is not a chunk key
 * (key.h).  Never fails (RocksDB's batch calls do not report errors). */
void store_crc_emit(rocksdb_writebatch_t *wb, qfs_group_t group, const uint8_t *key, size_t key_len,
		   const void *val, size_t val_len, int del);
/* The 'c' record of item key of group with value val into k (its length
 * is STORE_GROUP_PREFIX_LEN + key_len) and v: 1, or 0 (nothing written)
 * when key is not a chunk key. */
int store_crc_record(uint8_t k[STORE_DBKEY_MAX], uint8_t v[STORE_CRC_LEN], qfs_group_t group,
		     const uint8_t *key, size_t key_len, const void *val, size_t val_len);
/* 's' be64(group) into out (9 bytes): the group's snapshot point. */
void store_snap_key(uint8_t out[STORE_GROUP_PREFIX_LEN], qfs_group_t group);
/* install.c: remove every file of the store's snapshot staging directory
 * (what a crash or a failed install left); called by open.  0 or -errno
 * (logged). */
int store_install_clean(struct qfs_store *s);
/* [lo, hi) holding every 'c' record of group (9-byte lo; hi's length is
 * returned), for range deletes next to the group's items. */
size_t store_crc_range(uint8_t lo[STORE_GROUP_PREFIX_LEN], uint8_t hi[STORE_GROUP_PREFIX_LEN],
		       qfs_group_t group);
/* Point read of item key of group: *out (empty on entry) gets the value
 * (RocksDB's pinned slice, or a heap copy of a value the value log points
 * at: qfs_val_release it), left empty when absent.  A chunk item
 * whose 'c' record is present is read without RocksDB's checksums (its blob
 * check is a software CRC of the whole 128 KiB) and returned only if its
 * length and our CRC32C match the record; in every other case (no record,
 * mismatch, absent, a RocksDB error) the item is read again with RocksDB's
 * checks, whose result is returned.  0, -ENOMEM, -EIO, QFS_ECORRUPT.  Any
 * thread. */
int store_get_item(struct qfs_store *s, qfs_group_t group, const uint8_t *key, size_t key_len,
		   struct qfs_val *out);

/* vlog.c (the value log).
 * store_vlog_open/close: set up and free s's value log state (open: 0,
 *   -ENOMEM, -ENAMETOOLONG; min_bytes 0 turns it off).
 * store_vlog_link: make sure s holds a durable link to src's segment for
 *   group (once per segment; an earlier answer is remembered): 0, or
 *   -errno when no pointer may go into it (logged once per segment; the
 *   values then stay in RocksDB).  I/O thread.
 * store_vlog_rec: the long 'c' record of a value at off in segment
 *   seg_first.
 * store_vlog_read: the value rec points at into *out (heap) with *out_len:
 *   0; 2 when its file is missing or the bytes do not match rec's length
 *   and CRC; -ENOMEM.  Any thread.
 * store_vlog_resolve: an iterator's item (RocksDB key k, value v of vl
 *   bytes) read through ro: 1 with *out (heap) when it is a pointer or
 *   has extents, 0 when the value is the item's own, QFS_ECORRUPT
 *   (store_vlog_bad), -ENOMEM, -EIO.
 * store_vlog_is_ext: 1 if a 'c' record rec of rl bytes is the extents
 *   form (its count agrees with its length).
 * store_vlog_ext_read: the value of an extents record rec (rl bytes) of
 *   item key of group, its base being dval (dlen bytes: the 'd' item, may
 *   be NULL when the base is a pointer), into *out (heap): 0; 2 when a
 *   part is missing or does not match its length or CRC; -ENOMEM.  A
 *   'd' base that does not match the record, when checked (dval was read
 *   with RocksDB's checks), is a stale record: dval is the base (logged
 *   once, counted in vlog_stale).
 * store_vlog_ilen: the length of the item at RocksDB key k whose 'd'
 *   value has dvl bytes, its 'c' record read (a pointer's or extents'
 *   length): 0 or -EIO.
 * store_vlog_bad: count and log (once) a value that cannot be read:
 *   QFS_ECORRUPT.
 * store_vlog_len: 1 with *len, the value's length its 'c' record holds
 *   (either form), when RocksDB item key k has one; 0 if not; -EIO.
 * store_snap_take: a RocksDB snapshot for a read that may resolve
 *   pointers, counted as an open snapshot read before it is taken (the
 *   collector unlinks nothing while one is open); NULL if RocksDB gave
 *   none (then nothing stays counted).  store_snap_put: release it and
 *   end the count; NULL does nothing.
 * store_vlog_drop: remove group's links (after its items went, durably);
 *   while a snapshot read is open they stay, and the collector removes
 *   them once none is and the group still has no applied LSN.  0 or
 *   -errno.  I/O thread; takes s->apply_mu. */
int store_vlog_open(struct qfs_store *s, uint32_t min_bytes);
void store_vlog_close(struct qfs_store *s);
int store_vlog_link(struct qfs_store *s, qfs_group_t group, const struct qfs_store_src *src);
void store_vlog_rec(uint8_t v[STORE_VLOG_REC_LEN], const uint8_t *key, size_t key_len, const void *val,
		    size_t val_len, qfs_lsn_t seg_first, uint64_t off);
int store_vlog_read(struct qfs_store *s, qfs_group_t group, const uint8_t *key, size_t key_len,
		    const uint8_t rec[STORE_VLOG_REC_LEN], uint8_t **out, size_t *out_len);
int store_vlog_resolve(struct qfs_store *s, const rocksdb_readoptions_t *ro, const uint8_t *k, size_t klen,
		       const uint8_t *v, size_t vl, uint8_t **out, size_t *out_len);
int store_vlog_is_ext(const uint8_t *rec, size_t rl);
int store_vlog_ext_read(struct qfs_store *s, qfs_group_t group, const uint8_t *key, size_t key_len,
			const uint8_t *rec, size_t rl, const uint8_t *dval, size_t dlen, int checked,
			uint8_t **out, size_t *out_len);
int store_vlog_ilen(struct qfs_store *s, const uint8_t *k, size_t klen, size_t dvl, size_t *len);
int store_vlog_bad(struct qfs_store *s, qfs_group_t group);
int store_vlog_len(struct qfs_store *s, const uint8_t *k, size_t klen, size_t *len);
/* store_vlog_rec_get: the 'c' record of RocksDB item key k ('d'
 * be64(group) itemkey) read through ro into *rec (heap: rocksdb_free)
 * with *rl, NULL when absent.  0 or -EIO. */
int store_vlog_rec_get(struct qfs_store *s, const rocksdb_readoptions_t *ro, const uint8_t *k, size_t klen,
		       char **rec, size_t *rl);
const rocksdb_snapshot_t *store_snap_take(struct qfs_store *s);
void store_snap_put(struct qfs_store *s, const rocksdb_snapshot_t *snap);
int store_vlog_drop(struct qfs_store *s, qfs_group_t group);
/* store_vlog_forget: apply links group's next segment anew (I/O thread;
 * takes s->apply_mu). */
void store_vlog_forget(struct qfs_store *s, qfs_group_t group);
/* The read-ahead of a link whose mark is *ra_end (bytes up to there were
 * asked; 0: nothing yet) after a read of [off, off + len): a read that
 * starts beyond the mark or ends more than 2 * STORE_VLOG_RA before it is a
 * jump (the mark moves to its end, nothing asked: the next read asks if
 * it follows); else once the bytes asked ahead of its end fall below
 * STORE_VLOG_RA - STORE_VLOG_RA_STEP, [*from, *from + ret) is to be asked
 * and the mark moves to off + len + STORE_VLOG_RA.  The bytes to ask (0:
 * none).  Pure: the caller holds the lock of *ra_end. */
uint64_t store_vlog_ra_next(uint64_t *ra_end, uint64_t off, uint64_t len, uint64_t *from);
/* store.c: cb of a scan for the item at RocksDB key k ('d' be64(group)
 * itemkey) with value v, a pointer resolved through ro first (the
 * scan's snapshot).  cb's value, QFS_ECORRUPT, -ENOMEM or -EIO. */
int store_scan_item(struct qfs_store *s, const rocksdb_readoptions_t *ro, const uint8_t *k, size_t kl,
		    const uint8_t *v, size_t vl, qfs_store_scan_cb cb, void *arg);
/* A chunk item key (key.h). */
int store_is_chunk_key(const uint8_t *key, size_t len);

/* Turn a RocksDB error string into QFS_ECORRUPT (a "Corruption:" status)
 * or -EIO, with one log line naming what and the store; frees errstr. */
int store_rocks_err(const struct qfs_store *s, const char *what, char *errstr);

/* Run the ops of t against group's items (plus the txn's own writes) and, if
 * all succeed, append their effect to wb.  *result gets 0 or the first
 * failing op's error; on failure nothing is appended.  Returns 0, -ENOMEM or
 * -EIO (hard errors: wb may hold partial output and must be discarded). */
int store_apply_ops(struct qfs_store *s, qfs_group_t group, const struct qfs_txn *t,
		    rocksdb_writebatch_t *wb, int *result);
/* The same, with optional outputs for 2PC (any may be NULL): the effect
 * into wb, the effects list into effects and, as point locks, every key the
 * txn writes (counts included) into written, all only when the txn
 * succeeds.  A txn that store_txn_valid refuses fails with its error. */
int store_eval_ops(struct qfs_store *s, qfs_group_t group, const struct qfs_txn *t,
		   rocksdb_writebatch_t *wb, struct qfs_buf *effects, struct qfs_buf *written,
		   int *result);
/* -EINVAL if t holds a 2PC op or an op that reaches the reserved 2PC keys
 * (key.h), else 0. */
int store_txn_valid(const struct qfs_txn *t);
/* Append to locks the keys and ranges t's ops read or write by themselves
 * (lock set encoding above; LINK_DROP: its orphan key, or the inode's
 * chunk range when it may destroy it).  0 or -ENOMEM. */
int store_txn_locks(const struct qfs_txn *t, struct qfs_buf *locks);

/* xact.c: the 2PC ops (doc/xact.md).
 * store_xact_nprep: prepared txns of group held now (read once from
 *   RocksDB, then kept by apply); 0, -ENOMEM, -EIO.
 * store_xact_forget: the group's count is unknown again (drop, install,
 *   a failed write).
 * store_xact_apply: apply t (one 2PC op) into wb; *delta gets the change of
 *   the prepared count once wb is written.  0 / -ENOMEM / -EIO like
 *   store_apply_ops, *result the txn's result.
 * store_xact_eval: evaluate ordinary txn t in group under the locks of its
 *   prepared txns (doc/xact.md "Locks"): *result -EINVAL (store_txn_valid),
 *   -EBUSY if a key or range its ops name is locked (t is then not run)
 *   or a key it would write is, else t's own result; on 0 its effect goes
 *   to wb, its effects list to effects and its whole lock set (its ops'
 *   locks and the keys it writes) to locks, each if not NULL.  Returns
 *   0, -ENOMEM, -EIO, QFS_ECORRUPT (wb may then hold partial output).
 * store_xact_conflict: 1 if lock set locks (store_int.h encoding) overlaps
 *   the locks of a prepared txn of group, 0 if not, -ENOMEM, -EIO,
 *   QFS_ECORRUPT (a record that does not decode). */
int store_xact_nprep(struct qfs_store *s, qfs_group_t group, uint64_t *out);
void store_xact_forget(struct qfs_store *s, qfs_group_t group);
/* store.c: group's applied LSN is unknown again to the cache in front of
 * its 'a' record (install: the snapshot brought its own).  Any thread. */
void store_applied_forget(struct qfs_store *s, qfs_group_t group);
/* store.c: the fence cache.  store_fence_get: the epoch (the first 8
 * bytes; 0 when absent or shorter) of group's record at key k as RocksDB
 * holds it, from the cache or read (then cached): 0, -ENOMEM, -EIO.
 * store_fence_forget: a write of group's key k (any key when k is NULL)
 * is about to be made: the cache drops what it has of it.  Any thread;
 * the RANGE reads of one group come from its applies, one at a time. */
int store_fence_get(struct qfs_store *s, qfs_group_t group, const uint8_t *k, size_t kl,
		    uint64_t *epoch);
void store_fence_forget(struct qfs_store *s, qfs_group_t group, const uint8_t *k, size_t kl);
void store_xact_count(struct qfs_store *s, qfs_group_t group, int64_t delta);
int store_xact_apply(struct qfs_store *s, qfs_group_t group, const struct qfs_txn *t,
		     rocksdb_writebatch_t *wb, int64_t *delta, int *result);
int store_xact_eval(struct qfs_store *s, qfs_group_t group, const struct qfs_txn *t,
		    rocksdb_writebatch_t *wb, struct qfs_buf *effects, struct qfs_buf *locks,
		    int *result);
int store_xact_conflict(struct qfs_store *s, qfs_group_t group, const uint8_t *locks,
			size_t locks_len);

#endif
