/*
 * store.c - the node's RocksDB: open/close, applied LSNs, point reads,
 * scans, group drop and size (contract in store.h, layout in
 * doc/format-store.md).  Txn semantics live in apply.c.
 *
 * One RocksDB per node holds every group it hosts.  An entry is applied in
 * one WriteBatch with the group's new applied LSN, written with RocksDB's own
 * WAL disabled: after a crash RocksDB holds what its last memtable flush
 * wrote, a prefix of the batches, so the store is exactly "all entries up to
 * applied" and the node replays its own (fsync'd) WAL from applied + 1.
 * Anything that deletes our WAL below the applied LSN must first make the
 * memtables durable with qfs_store_sync (a flush), never a RocksDB WAL sync.
 *
 * Threads: RocksDB is thread-safe; s's fields are immutable after open
 * (but for the caches of applied LSNs and fences, under s->ap_mu, and the
 * I/O thread's own), so reads may run anywhere.  apply/drop run only on
 * the node's I/O thread, which is what makes the read-check-write of apply
 * safe without a lock.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/crc32c.h"
#include "common/log.h"
#include "common/sysio.h"
#include "store/store_int.h"

#define BLOOM_BITS_PER_KEY 10.0

uint8_t *store_item_key(uint8_t *buf, size_t buf_len, qfs_group_t group, const uint8_t *key,
			size_t key_len, size_t *out_len)
{
	size_t n = STORE_GROUP_PREFIX_LEN + key_len;
	uint8_t *p = buf;
	if (n > buf_len) {
		p = malloc(n);
		if (!p)
			return NULL;
	}
	store_group_prefix(p, group);
	if (key_len)
		memcpy(p + STORE_GROUP_PREFIX_LEN, key, key_len);
	*out_len = n;
	return p;
}

/* See store_int.h: a chunk item key (key.h): pk's prefix, "\0" "c",
 * be64(chunk). */
int store_is_chunk_key(const uint8_t *key, size_t len)
{
	return len == QFS_KEY_PREFIX_LEN + 10 && key[QFS_KEY_PREFIX_LEN] == 0 &&
	       key[QFS_KEY_PREFIX_LEN + 1] == 'c';
}

/* The 'c' record's CRC: over the item key, then the value, so a value read
 * from the wrong place (a damaged blob reference) does not match either. */
static uint32_t item_crc(const uint8_t *key, size_t key_len, const void *val, size_t val_len)
{
	return qfs_crc32c(qfs_crc32c(0, key, key_len), val, val_len);
}

/* See store_int.h. */
int store_crc_record(uint8_t k[STORE_DBKEY_MAX], uint8_t v[STORE_CRC_LEN], qfs_group_t group,
		     const uint8_t *key, size_t key_len, const void *val, size_t val_len)
{
	if (!store_is_chunk_key(key, key_len) || val_len > UINT32_MAX)
		return 0;
	k[0] = STORE_CRC_PREFIX;
	qfs_be64_put(k + 1, group);
	memcpy(k + STORE_GROUP_PREFIX_LEN, key, key_len);
	qfs_be32_put(v, (uint32_t)val_len);
	qfs_be32_put(v + 4, item_crc(key, key_len, val, val_len));
	return 1;
}

void store_crc_emit(rocksdb_writebatch_t *wb, qfs_group_t group, const uint8_t *key, size_t key_len,
		    const void *val, size_t val_len, int del)
{
	uint8_t k[STORE_GROUP_PREFIX_LEN + QFS_KEY_PREFIX_LEN + 10], v[STORE_CRC_LEN];

	if (!store_is_chunk_key(key, key_len))
		return;
	k[0] = STORE_CRC_PREFIX;
	qfs_be64_put(k + 1, group);
	memcpy(k + STORE_GROUP_PREFIX_LEN, key, key_len);
	if (del || val_len > UINT32_MAX) {
		rocksdb_writebatch_delete(wb, (const char *)k, sizeof(k));
		return;
	}
	qfs_be32_put(v, (uint32_t)val_len);
	qfs_be32_put(v + 4, item_crc(key, key_len, val, val_len));
	rocksdb_writebatch_put(wb, (const char *)k, sizeof(k), (const char *)v, sizeof(v));
}

size_t store_crc_range(uint8_t lo[STORE_GROUP_PREFIX_LEN], uint8_t hi[STORE_GROUP_PREFIX_LEN],
		       qfs_group_t group)
{
	lo[0] = STORE_CRC_PREFIX;
	qfs_be64_put(lo + 1, group);
	if (group == UINT64_MAX) {
		hi[0] = STORE_CRC_PREFIX + 1;
		return 1;
	}
	hi[0] = STORE_CRC_PREFIX;
	qfs_be64_put(hi + 1, group + 1);
	return STORE_GROUP_PREFIX_LEN;
}

void store_applied_key(uint8_t out[STORE_GROUP_PREFIX_LEN], qfs_group_t group)
{
	out[0] = STORE_APPLIED_PREFIX;
	qfs_be64_put(out + 1, group);
}

void store_group_prefix(uint8_t out[STORE_GROUP_PREFIX_LEN], qfs_group_t group)
{
	out[0] = STORE_ITEM_PREFIX;
	qfs_be64_put(out + 1, group);
}

size_t store_group_end(uint8_t out[STORE_GROUP_PREFIX_LEN], qfs_group_t group)
{
	if (group == UINT64_MAX) {
		out[0] = STORE_ITEM_PREFIX + 1;
		return 1;
	}
	store_group_prefix(out, group + 1);
	return STORE_GROUP_PREFIX_LEN;
}

int store_rocks_err(const struct qfs_store *s, const char *what, char *errstr)
{
	/* RocksDB's Status::Corruption: the store cannot be trusted (the
	 * cell rebuilds such a replica), unlike an I/O error that may pass. */
	int rc = errstr && strncmp(errstr, "Corruption:", 11) == 0 ? QFS_ECORRUPT : -EIO;

	QFS_LOG(QFS_LOG_ERR, "store %s failed dir=%s err=\"%s\"", what, s && s->dir ? s->dir : "?",
		errstr ? errstr : "unknown");
	rocksdb_free(errstr);
	return rc;
}

static void store_free_handles(struct qfs_store *s)
{
	if (s->db)
		rocksdb_close(s->db);
	if (s->ro)
		rocksdb_readoptions_destroy(s->ro);
	if (s->ro_fast)
		rocksdb_readoptions_destroy(s->ro_fast);
	if (s->wo)
		rocksdb_writeoptions_destroy(s->wo);
	if (s->opts)
		rocksdb_options_destroy(s->opts);
	if (s->bbto)
		rocksdb_block_based_options_destroy(s->bbto);
	if (s->cache && s->own_cache)
		rocksdb_cache_destroy(s->cache);
	if (s->apply_wb)
		rocksdb_writebatch_destroy(s->apply_wb);
	free(s->nprep);
	store_vlog_close(s);
	free(s->dir);
	pthread_mutex_destroy(&s->ap_mu);
	free(s);
}

struct qfs_store_cache {
	rocksdb_cache_t *c; /* RocksDB's handle; each table factory that uses it
			       holds its own reference to the cache itself */
};

/* See store.h. */
int qfs_store_cache_new(uint64_t bytes, struct qfs_store_cache **out)
{
	struct qfs_store_cache *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->c = rocksdb_cache_create_lru(bytes ? bytes : QFS_STORE_CACHE_DEFAULT);
	if (!c->c) {
		free(c);
		return -ENOMEM;
	}
	*out = c;
	return 0;
}

/* See store.h. */
void qfs_store_cache_free(struct qfs_store_cache *c)
{
	if (!c)
		return;
	rocksdb_cache_destroy(c->c);
	free(c);
}

/* Memtables: four of a quarter of the budget each (the active one and up
 * to three being flushed, by two flush jobs, so that an 8 MiB write-back
 * does not stop writes while the previous one is flushed), and the same
 * budget for RocksDB's write buffer manager, so a store holds about
 * memtable_bytes of them whatever the load (a batch larger than a memtable
 * makes that one larger).
 * Blob files: values of min_blob_bytes or more are written once to a blob
 * file at flush and compaction moves only their references.  A blob file
 * whose every value was deleted or overwritten goes as soon as compaction
 * has seen that; garbage collection (relocating the live values of partly
 * dead blob files, i.e. rewriting them) is off in normal running, since it
 * would rewrite bulk data over and over, and qfs_store_compact turns it on
 * for one compaction when the disk runs short. */
static void store_set_budget(struct qfs_store *s, const struct qfs_store_opts *o)
{
	uint64_t mem = o && o->memtable_bytes ? o->memtable_bytes : QFS_STORE_MEMTABLE_DEFAULT;
	uint32_t blob = o && o->min_blob_bytes ? o->min_blob_bytes : QFS_STORE_BLOB_MIN_DEFAULT;

	if (mem < QFS_STORE_MEMTABLE_MIN)
		mem = QFS_STORE_MEMTABLE_MIN;
	rocksdb_options_set_write_buffer_size(s->opts, mem / 4);
	rocksdb_options_set_max_write_buffer_number(s->opts, 4);
	rocksdb_options_set_max_background_flushes(s->opts, 2);
	rocksdb_options_set_min_write_buffer_number_to_merge(s->opts, 1);
	rocksdb_options_set_db_write_buffer_size(s->opts, mem);
	/* memtable arena blocks of 256 KiB at most: a chunk value (128 KiB)
	 * is then above a quarter of a block and gets its own block, a heap
	 * allocation that the next memtable reuses; in the 1 MiB blocks it
	 * had, each above glibc's mmap threshold (src/cmd/main.c), every
	 * memtable faulted in fresh pages (22 % of the page faults of a dd) */
	rocksdb_options_set_arena_block_size(s->opts, mem / 64 < (256u << 10) ? mem / 64 : (256u << 10));
	/* a bloom filter of each memtable's keys (2 % of its size: about 40
	 * bits per key of a memtable of 4 KiB files): a point read of an item
	 * that is not in a memtable (most reads once the tree was flushed:
	 * the inode and dentry reads of an unlink, on every replica) skips
	 * the skiplist searches of the active and immutable memtables */
	rocksdb_options_set_memtable_prefix_bloom_size_ratio(s->opts, 0.02);
	rocksdb_options_set_memtable_whole_key_filtering(s->opts, 1);
	if (blob != UINT32_MAX) {
		rocksdb_options_set_enable_blob_files(s->opts, 1);
		rocksdb_options_set_min_blob_size(s->opts, blob);
		rocksdb_options_set_blob_file_size(s->opts, 64u << 20);
		rocksdb_options_set_blob_compression_type(s->opts, rocksdb_no_compression);
		rocksdb_options_set_enable_blob_gc(s->opts, 0);
		s->blobs = 1;
	}
}

/* See store.h: the defaults, with a private cache. */
int qfs_store_open(const char *dir, struct qfs_store **out)
{
	return qfs_store_open_opts(dir, NULL, out);
}

/* Open (creating if missing) the RocksDB in dir.  Options: LZ4 compression
 * (Snappy, then none, if this RocksDB lacks it), an LRU block cache (shared
 * or private) holding index and filter blocks too, 10-bit bloom filters,
 * background jobs sized for a small machine, the memtable budget and blob
 * files of store_set_budget.  *out is set only on success; errors -ENOMEM,
 * -EIO (logged with RocksDB's message). */
int qfs_store_open_opts(const char *dir, const struct qfs_store_opts *o, struct qfs_store **out)
{
	static const int compressions[] = { rocksdb_lz4_compression, rocksdb_snappy_compression,
					    rocksdb_no_compression };
	struct qfs_store *s = calloc(1, sizeof(*s));
	char *err = NULL;

	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->ap_mu, NULL);
	s->dir = strdup(dir);
	{
		uint32_t vmin = o && o->vlog_min_bytes ? o->vlog_min_bytes : QFS_STORE_VLOG_MIN_DEFAULT;
		int vrc = store_vlog_open(s, vmin == UINT32_MAX ? 0 : vmin);

		if (vrc) {
			store_free_handles(s);
			return vrc;
		}
	}
	s->opts = rocksdb_options_create();
	s->bbto = rocksdb_block_based_options_create();
	if (o && o->cache) {
		s->cache = o->cache->c;
	} else {
		s->cache = rocksdb_cache_create_lru(QFS_STORE_CACHE_DEFAULT);
		s->own_cache = 1;
	}
	s->wo = rocksdb_writeoptions_create();
	s->ro = rocksdb_readoptions_create();
	s->ro_fast = rocksdb_readoptions_create();
	if (!s->dir || !s->opts || !s->bbto || !s->cache || !s->wo || !s->ro || !s->ro_fast) {
		store_free_handles(s);
		return -ENOMEM;
	}
	rocksdb_block_based_options_set_block_cache(s->bbto, s->cache);
	/* the table options take ownership of the filter policy */
	rocksdb_block_based_options_set_filter_policy(s->bbto,
						      rocksdb_filterpolicy_create_bloom_full(BLOOM_BITS_PER_KEY));
	rocksdb_block_based_options_set_cache_index_and_filter_blocks(s->bbto, 1);
	rocksdb_block_based_options_set_pin_l0_filter_and_index_blocks_in_cache(s->bbto, 1);
	rocksdb_block_based_options_set_format_version(s->bbto, 5);
	rocksdb_options_set_block_based_table_factory(s->opts, s->bbto);
	rocksdb_options_set_create_if_missing(s->opts, 1);
	rocksdb_options_set_max_background_jobs(s->opts, 2);
	rocksdb_options_set_bytes_per_sync(s->opts, 1 << 20);
	rocksdb_options_set_level_compaction_dynamic_level_bytes(s->opts, 1);
	/* RocksDB's info LOG (DATA/nodes/N/db/LOG) keeps only the header it
	 * writes at open (5 = HEADER_LEVEL: the options, the files found).
	 * Its writer keeps the first I/O error and asserts on every later
	 * append (Debian's 7.8 keeps assertions): a full disk for the 5 s
	 * between two of its flushes, and the next line (the flush at the
	 * unmount logs one) aborted the daemon, status 134.  Every RocksDB
	 * error reaches our log through the status it returns
	 * (store_rocks_err); doc/format-store.md "Full disk". */
	rocksdb_options_set_info_log_level(s->opts, 5);
	/* No POSIX_FADV_RANDOM on the files: a file's chunks are one run of a
	 * blob file, read in order by a sequential read, and the kernel's
	 * readahead turns those 128 KiB preads into large disk reads (cold
	 * sequential read 3-5x faster; doc/perf.md "Read path"). */
	rocksdb_options_set_advise_random_on_open(s->opts, 0);
	/* Chunk reads checked by their 'c' record (store_get_item): RocksDB's
	 * blob check (a software CRC32C in Debian's build) is skipped, and no
	 * block read without its checksum enters the shared block cache, so
	 * every other read still sees only checked blocks. */
	rocksdb_readoptions_set_verify_checksums(s->ro_fast, 0);
	rocksdb_readoptions_set_fill_cache(s->ro_fast, 0);
	store_set_budget(s, o);
	s->install_file_bytes = o ? o->install_file_bytes : 0;
	const char *ccv = getenv("QFS_STORE_CC_VERIFY");
	s->cc_verify = ccv && strcmp(ccv, "1") == 0;
	/* Our WAL is the durability source and the node replays it from the
	 * applied LSN, so RocksDB's own WAL is off: no double logging, and no
	 * RocksDB log write that can fail on a full disk (its WAL writer asserts
	 * on such failures in Debian's build).  What is only in the memtable at
	 * a crash is replayed from our WAL. */
	rocksdb_writeoptions_set_sync(s->wo, 0);
	rocksdb_writeoptions_disable_WAL(s->wo, 1);

	for (size_t i = 0; i < sizeof(compressions) / sizeof(compressions[0]); i++) {
		rocksdb_options_set_compression(s->opts, compressions[i]);
		rocksdb_free(err);
		err = NULL;
		s->db = rocksdb_open(s->opts, dir, &err);
		if (!err)
			break;
		/* only a missing compression library is worth another try */
		if (!strstr(err, "ompression") && !strstr(err, "not supported"))
			break;
	}
	if (err) {
		/* RocksDB writes a new MANIFEST (and OPTIONS) at every open: a
		 * full disk must read as one, not as an I/O error */
		bool nospc = strstr(err, "No space left on device") != NULL;
		int rc = store_rocks_err(s, "open", err);
		if (nospc)
			rc = -ENOSPC;
		s->db = NULL;
		store_free_handles(s);
		return rc;
	}
	store_install_clean(s); /* a failure is logged; the next install tries anew */
	*out = s;
	return 0;
}

/* Close the RocksDB and free s (what is only in the memtables may be lost:
 * the node replays it from our WAL at the next open).  NULL does nothing.
 * No other call on s may be running. */
void qfs_store_close(struct qfs_store *s)
{
	if (s)
		store_free_handles(s);
}

/* ---- the applied LSN ----
 * Every apply checks that its LSN follows the group's applied one, which
 * the apply before wrote: the cache s->ap keeps it, so that check reads
 * no RocksDB (a point read through the memtables and every level: 2 % of
 * the daemon's CPU during cp -a, doc/perf.md AFTER 19).  A write of the
 * 'a' record sets its group's slot after RocksDB took it; every other
 * change of a group's state (drop, install) and a failed write empty it;
 * a miss reads RocksDB and fills the slot, under ap_mu so that a write's
 * update, which comes after its RocksDB write, cannot be overtaken by the
 * value a read took before it.  Writes of one group's 'a' record come one
 * at a time (each checks the one before), from the node's I/O thread. */

static struct store_ap *ap_slot(struct qfs_store *s, qfs_group_t group)
{
	return &s->ap[(group ^ (group >> 17)) % STORE_AP_SLOTS];
}

/* Group's applied LSN is lsn in RocksDB now. */
static void ap_set(struct qfs_store *s, qfs_group_t group, qfs_lsn_t lsn)
{
	pthread_mutex_lock(&s->ap_mu);
	struct store_ap *e = ap_slot(s, group);
	e->group = group;
	e->lsn = lsn;
	e->valid = 1;
	pthread_mutex_unlock(&s->ap_mu);
}

/* See store_int.h. */
void store_applied_forget(struct qfs_store *s, qfs_group_t group)
{
	pthread_mutex_lock(&s->ap_mu);
	struct store_ap *e = ap_slot(s, group);
	if (e->group == group)
		e->valid = 0;
	pthread_mutex_unlock(&s->ap_mu);
}

/* ---- the fence a RANGE op reads ----
 * Every txn of a partition starts with a RANGE op, which compares the
 * epoch of the group's fence record with the one it was routed by, on
 * every replica: a RocksDB point read of a key written once per split,
 * which searches the memtables and every level (5 % of the daemon's CPU
 * during cp -a, doc/perf.md AFTER 19).  The cache keeps that epoch; every
 * write of an item goes through ov_emit, which drops the slot of the key
 * it writes; the writes that do not (2PC commits, load_item, drop,
 * install) drop the group's slot whatever the key. */

static struct store_fence *fence_slot(struct qfs_store *s, qfs_group_t group)
{
	return &s->fence[(group ^ (group >> 17)) % STORE_AP_SLOTS];
}

/* See store_int.h. */
int store_fence_get(struct qfs_store *s, qfs_group_t group, const uint8_t *k, size_t kl,
		    uint64_t *epoch)
{
	void *v = NULL;
	size_t vl = 0;
	int rc;

	pthread_mutex_lock(&s->ap_mu);
	struct store_fence *e = fence_slot(s, group);
	if (e->valid && e->group == group && e->key_len == kl && memcmp(e->key, k, kl) == 0) {
		*epoch = e->epoch;
		pthread_mutex_unlock(&s->ap_mu);
		return 0;
	}
	rc = qfs_store_get(s, group, k, kl, &v, &vl);
	if (rc == 0 || rc == -ENOENT) {
		*epoch = rc == 0 && vl >= 8 ? qfs_be64_get(v) : 0;
		rc = 0;
		if (kl <= sizeof(e->key)) {
			e->group = group;
			memcpy(e->key, k, kl);
			e->key_len = (uint32_t)kl;
			e->epoch = *epoch;
			e->valid = 1;
		}
	}
	pthread_mutex_unlock(&s->ap_mu);
	free(v);
	return rc;
}

/* See store_int.h. */
void store_fence_forget(struct qfs_store *s, qfs_group_t group, const uint8_t *k, size_t kl)
{
	pthread_mutex_lock(&s->ap_mu);
	struct store_fence *e = fence_slot(s, group);
	if (e->group == group && (!k || (e->key_len == kl && memcmp(e->key, k, kl) == 0)))
		e->valid = 0;
	pthread_mutex_unlock(&s->ap_mu);
}

/* The apply's write-through cache (store_int.h struct qfs_store cc):
 * patch_ext reads the chunk's 'c' record before each PATCH it takes as an
 * extent, and the apply reads the file's inode (a SETATTR, the counts),
 * each a RocksDB point read that searches a memtable holding every
 * version of that key (the apply's memtable searches under 8 fsync
 * writers, doc/perf.md AFTER 41 and 44).  A slot's key is the RocksDB
 * key: tag (STORE_CRC_PREFIX or STORE_ITEM_PREFIX) then k past its own
 * first byte.  Under s->apply_mu. */

static int cc_key_eq(const struct store_cc *e, uint8_t tag, const uint8_t *k, size_t kl)
{
	return e->kl == kl && e->k[0] == tag && memcmp(e->k + 1, k + 1, kl - 1) == 0;
}

static struct store_cc *cc_slot(struct qfs_store *s, uint8_t tag, const uint8_t *k, size_t kl)
{
	return &s->cc[(qfs_crc32c(tag, k + 1, kl - 1)) % STORE_CC_SLOTS];
}

/* See store_int.h. */
/* QFS_STORE_CC_VERIFY: a valid slot holds what RocksDB holds under its key
 * (e->k is the RocksDB key itself: the tag is its first byte), or the
 * cache missed a writer: say which key and abort. */
static void cc_verify(struct qfs_store *s, const struct store_cc *e)
{
	char *err = NULL;
	size_t vl = 0;
	char *v = rocksdb_get(s->db, s->ro, (const char *)e->k, e->kl, &vl, &err);

	if (!err && v && vl == e->rl && memcmp(v, e->rec, vl) == 0) {
		rocksdb_free(v);
		return;
	}
	QFS_LOG(QFS_LOG_ERR, "store cache differs from RocksDB dir=%s key=%c+%u bytes cached=%u stored=%s%zu err=\"%s\"",
		s->dir ? s->dir : "?", e->k[0], e->kl, e->rl, v ? "" : "absent/", vl, err ? err : "none");
	abort();
}

const struct store_cc *store_cc_get(struct qfs_store *s, uint8_t tag, const uint8_t *k, size_t kl)
{
	const struct store_cc *e = cc_slot(s, tag, k, kl);

	if (e->state == 2 && cc_key_eq(e, tag, k, kl)) {
		__atomic_add_fetch(tag == STORE_CRC_PREFIX ? &s->cc_hits_rec : &s->cc_hits_item, 1,
				   __ATOMIC_RELAXED);
		if (s->cc_verify)
			cc_verify(s, e);
		return e;
	}
	__atomic_add_fetch(&s->cc_misses, 1, __ATOMIC_RELAXED);
	return NULL;
}

/* See store_int.h. */
void store_cc_stage(struct qfs_store *s, uint8_t tag, const uint8_t *k, size_t kl, const uint8_t *rec,
		    size_t rl)
{
	struct store_cc *e = cc_slot(s, tag, k, kl);

	if (kl > sizeof(e->k) || rl > sizeof(e->rec)) {
		e->state = 0;
		return;
	}
	memcpy(e->k, k, kl);
	e->k[0] = tag;
	if (rl)
		memcpy(e->rec, rec, rl);
	e->kl = (uint32_t)kl;
	e->rl = (uint32_t)rl;
	e->state = 1;
}

/* See store_int.h. */
void store_cc_drop(struct qfs_store *s, uint8_t tag, const uint8_t *k, size_t kl)
{
	struct store_cc *e = cc_slot(s, tag, k, kl);

	if (e->state && cc_key_eq(e, tag, k, kl))
		e->state = 0;
}

/* See store_int.h. */
void store_cc_commit(struct qfs_store *s)
{
	for (size_t i = 0; i < STORE_CC_SLOTS; i++)
		if (s->cc[i].state == 1)
			s->cc[i].state = 2;
}

/* See store_int.h. */
void store_cc_forget(struct qfs_store *s)
{
	for (size_t i = 0; i < STORE_CC_SLOTS; i++)
		s->cc[i].state = 0;
}

/* Read group's applied LSN into *lsn (0 when absent): from the cache, else
 * from RocksDB (then cached).  0, -EIO, or QFS_ECORRUPT for a value that
 * is not 8 bytes. */
static int applied_read(struct qfs_store *s, qfs_group_t group, qfs_lsn_t *lsn)
{
	uint8_t k[STORE_GROUP_PREFIX_LEN];
	char *err = NULL;
	size_t vlen;
	int rc = 0;

	pthread_mutex_lock(&s->ap_mu);
	struct store_ap *e = ap_slot(s, group);
	if (e->valid && e->group == group) {
		*lsn = e->lsn;
		goto out;
	}
	store_applied_key(k, group);
	rocksdb_pinnableslice_t *v = rocksdb_get_pinned(s->db, s->ro, (const char *)k, sizeof(k), &err);
	if (err) {
		rc = store_rocks_err(s, "get applied", err);
		goto out;
	}
	if (!v) {
		*lsn = 0;
	} else {
		const char *p = rocksdb_pinnableslice_value(v, &vlen);
		if (vlen != 8) {
			QFS_LOG(QFS_LOG_ERR, "store applied lsn corrupt dir=%s group=%016llx len=%zu", s->dir,
				(unsigned long long)group, vlen);
			rc = QFS_ECORRUPT;
		} else {
			*lsn = qfs_be64_get((const uint8_t *)p);
		}
		rocksdb_pinnableslice_destroy(v);
	}
	if (rc == 0) {
		e->group = group;
		e->lsn = *lsn;
		e->valid = 1;
	}
out:
	pthread_mutex_unlock(&s->ap_mu);
	return rc;
}

/* Applied LSN of group, 0 if nothing applied.  0, -EIO or QFS_ECORRUPT;
 * *out set only on success.  Any thread. */
int qfs_store_applied(struct qfs_store *s, qfs_group_t group, qfs_lsn_t *out)
{
	qfs_lsn_t lsn;
	int rc = applied_read(s, group, &lsn);
	if (rc)
		return rc;
	*out = lsn;
	return 0;
}

/* Check that lsn is group's applied + 1: 0, -EINVAL (logged) or a read error. */
static int check_next_lsn(struct qfs_store *s, qfs_group_t group, qfs_lsn_t lsn)
{
	qfs_lsn_t applied;
	int rc = applied_read(s, group, &applied);
	if (rc)
		return rc;
	if (applied == UINT64_MAX || lsn != applied + 1) {
		QFS_LOG(QFS_LOG_ERR, "store apply out of order dir=%s group=%016llx lsn=%llu applied=%llu",
			s->dir, (unsigned long long)group, (unsigned long long)lsn,
			(unsigned long long)applied);
		return -EINVAL;
	}
	return 0;
}

static void batch_put_applied(rocksdb_writebatch_t *wb, qfs_group_t group, qfs_lsn_t lsn)
{
	uint8_t k[STORE_GROUP_PREFIX_LEN], v[8];
	store_applied_key(k, group);
	qfs_be64_put(v, lsn);
	rocksdb_writebatch_put(wb, (const char *)k, sizeof(k), (const char *)v, sizeof(v));
}

static int batch_write(struct qfs_store *s, rocksdb_writebatch_t *wb, const char *what)
{
	char *err = NULL;
	rocksdb_write(s->db, s->wo, wb, &err);
	if (err)
		return store_rocks_err(s, what, err);
	return 0;
}

/* Done with s->apply_wb: cleared for the next apply, which then appends
 * into memory already faulted in (a fresh batch grew by doubling into
 * newly mapped pages for every write-back: 42 % of the daemon's page
 * faults during a dd); a batch above STORE_APPLY_WB_KEEP is freed
 * instead, so a store keeps at most that much.  I/O thread. */
static void apply_batch_done(struct qfs_store *s)
{
	size_t n = 0;

	(void)rocksdb_writebatch_data(s->apply_wb, &n);
	if (n > STORE_APPLY_WB_KEEP) {
		rocksdb_writebatch_destroy(s->apply_wb);
		s->apply_wb = NULL;
	} else {
		rocksdb_writebatch_clear(s->apply_wb);
	}
}

/* Apply the encoded txn at lsn (= applied + 1) in one WriteBatch with the new
 * applied LSN.  *result: 0 or the first failing op's error (then no item
 * changed, but the applied LSN advanced).  Returns 0; -EINVAL (wrong lsn),
 * QFS_ECORRUPT or QFS_EFORMAT (payload does not decode), -ENOMEM, -EIO: in
 * all these cases nothing is written and *result is untouched.  I/O thread. */
int qfs_store_apply(struct qfs_store *s, qfs_group_t group, qfs_lsn_t lsn, const void *txn,
		    size_t len, int *result)
{
	return qfs_store_apply_src(s, group, lsn, txn, len, NULL, result);
}

/* See store.h: the apply, with the entry's place for ov_emit (apply.c). */
static int apply_locked(struct qfs_store *s, qfs_group_t group, qfs_lsn_t lsn, const void *txn, size_t len,
			const struct qfs_store_src *src, int *result);

int qfs_store_apply_src(struct qfs_store *s, qfs_group_t group, qfs_lsn_t lsn, const void *txn,
			size_t len, const struct qfs_store_src *src, int *result)
{
	int rc;

	pthread_mutex_lock(&s->apply_mu); /* the collector's rewrites wait */
	rc = apply_locked(s, group, lsn, txn, len, src, result);
	pthread_mutex_unlock(&s->apply_mu);
	return rc;
}

/* qfs_store_apply_src under s->apply_mu. */
static int apply_locked(struct qfs_store *s, qfs_group_t group, qfs_lsn_t lsn, const void *txn, size_t len,
			const struct qfs_store_src *src, int *result)
{
	struct qfs_txn t;
	rocksdb_writebatch_t *wb;
	uint64_t nprep = 0;
	int64_t nprep_delta = 0;
	int rc, res = 0, ordinary = 0;

	rc = check_next_lsn(s, group, lsn);
	if (rc)
		return rc;
	qfs_txn_init(&t);
	rc = qfs_txn_decode(txn, len, &t);
	if (rc) {
		QFS_LOG(QFS_LOG_ERR, "store txn undecodable dir=%s group=%016llx lsn=%llu len=%zu err=\"%s\"",
			s->dir, (unsigned long long)group, (unsigned long long)lsn, len,
			qfs_strerror(rc));
		return rc;
	}
	if (!s->apply_wb && !(s->apply_wb = rocksdb_writebatch_create())) {
		rc = -ENOMEM;
		goto err_close_txn;
	}
	wb = s->apply_wb;
	if (t.nops && qfs_op_is_2pc(t.ops[0].kind)) {
		store_fence_forget(s, group, NULL, 0); /* a commit writes around ov_emit */
		rc = store_xact_apply(s, group, &t, wb, &nprep_delta, &res);
	} else if ((rc = store_xact_nprep(s, group, &nprep)) == 0 && nprep == 0) {
		/* the ordinary path; only its PUTs may become pointers */
		s->apply_src = s->vlog_min && src && src->seg_dir &&
				       (const uint8_t *)txn >= (const uint8_t *)src->base &&
				       (const uint8_t *)txn + len <= (const uint8_t *)src->base + src->len
			       ? src
			       : NULL;
		rc = store_apply_ops(s, group, &t, wb, &res);
		s->apply_src = NULL;
		ordinary = 1;
	} else if (!rc) {
		rc = store_xact_eval(s, group, &t, wb, NULL, NULL, &res); /* under locks */
	}
	if (rc)
		goto err_destroy_batch;
	if (res)
		rocksdb_writebatch_clear(wb); /* defensive: a failed txn leaves no item effect */
	batch_put_applied(wb, group, lsn);
	rc = batch_write(s, wb, "apply");
	if (rc) {
		store_xact_forget(s, group); /* recount from what RocksDB holds */
		store_applied_forget(s, group);
		goto err_destroy_batch;
	}
	if (ordinary && !res)
		store_cc_commit(s); /* the records ov_emit staged are RocksDB's now */
	else
		store_cc_forget(s); /* a commit writes around ov_emit */
	ap_set(s, group, lsn);
	if (nprep_delta)
		store_xact_count(s, group, nprep_delta);
	apply_batch_done(s);
	qfs_txn_close(&t);
	*result = res;
	return 0;

err_destroy_batch:
	store_cc_forget(s); /* staged records not written */
	apply_batch_done(s);
err_close_txn:
	qfs_txn_close(&t);
	return rc;
}

/* Advance group's applied LSN to lsn (= applied + 1) without touching items.
 * 0, -EINVAL (wrong lsn), -ENOMEM, -EIO (nothing written).  I/O thread. */
int qfs_store_apply_noop(struct qfs_store *s, qfs_group_t group, qfs_lsn_t lsn)
{
	int rc = check_next_lsn(s, group, lsn);
	if (rc)
		return rc;
	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
	if (!wb)
		return -ENOMEM;
	batch_put_applied(wb, group, lsn);
	rc = batch_write(s, wb, "apply noop");
	rocksdb_writebatch_destroy(wb);
	if (rc)
		store_applied_forget(s, group);
	else
		ap_set(s, group, lsn);
	return rc;
}

static void pin_release(void *own)
{
	rocksdb_pinnableslice_destroy(own);
}

/* Hold RocksDB's pinned value v in out (empty). */
static void pin_hold(struct qfs_val *out, rocksdb_pinnableslice_t *v)
{
	size_t vl;

	out->data = (const uint8_t *)rocksdb_pinnableslice_value(v, &vl);
	out->len = vl;
	out->release = pin_release;
	out->own = v;
}

/* The fast check of store_get_item: the 'c' record at k (item key k with
 * its prefix byte swapped, restored on return) read through rc, the chunk
 * through rv (no RocksDB checks), or through the value log when the
 * record is a pointer or has extents.  1 with *out when both are there
 * and agree, 2 when they disagree, 3 when the record is a pointer or has
 * extents and the value cannot be read or does not match, 0 when the record is absent or unusable or the
 * chunk absent or unreadable, or a -errno of the record's read. */
static int crc_check(struct qfs_store *s, const rocksdb_readoptions_t *rc, const rocksdb_readoptions_t *rv,
		     uint8_t *k, size_t klen, const uint8_t *key, size_t key_len, qfs_group_t group,
		     struct qfs_val *out)
{
	char *err = NULL;
	rocksdb_pinnableslice_t *v = NULL, *c;
	int res = 0;

	k[0] = STORE_CRC_PREFIX;
	c = rocksdb_get_pinned(s->db, rc, (const char *)k, klen, &err);
	k[0] = STORE_ITEM_PREFIX;
	if (err)
		return store_rocks_err(s, "get", err);
	if (!c)
		return 0;
	size_t cl, vl;
	const uint8_t *cv = (const uint8_t *)rocksdb_pinnableslice_value(c, &cl);

	if (cl == STORE_VLOG_REC_LEN) {
		uint8_t *p = NULL;
		size_t pl = 0;

		res = store_vlog_read(s, group, key, key_len, cv, &p, &pl);
		rocksdb_pinnableslice_destroy(c);
		if (res == 0) {
			qfs_val_adopt(out, p, pl);
			return 1;
		}
		return res == 2 ? 3 : res;
	}
	if (store_vlog_is_ext(cv, cl)) { /* a base and PATCH extents (vlog.c) */
		const char *dv = NULL;
		uint8_t *p = NULL;
		size_t pl = 0;

		vl = 0;
		if (qfs_be64_get(cv + 16) == 0) { /* the base is the item's own value */
			v = rocksdb_get_pinned(s->db, rv, (const char *)k, klen, &err);
			if (err) { /* said again by the checked read, if real */
				rocksdb_free(err);
				v = NULL;
			}
			if (v)
				dv = rocksdb_pinnableslice_value(v, &vl);
		}
		res = store_vlog_ext_read(s, group, key, key_len, cv, cl, (const uint8_t *)dv, vl, 0, &p, &pl);
		if (v)
			rocksdb_pinnableslice_destroy(v);
		rocksdb_pinnableslice_destroy(c);
		if (res == 0) {
			qfs_val_adopt(out, p, pl);
			return 1;
		}
		return res == 2 ? 3 : res;
	}
	if (cl == STORE_CRC_LEN) {
		v = rocksdb_get_pinned(s->db, rv, (const char *)k, klen, &err);
		if (err) { /* said again by the checked read, if real */
			rocksdb_free(err);
			v = NULL;
		}
		if (v) {
			const char *p = rocksdb_pinnableslice_value(v, &vl);
			res = vl == qfs_be32_get(cv) && item_crc(key, key_len, p, vl) == qfs_be32_get(cv + 4) ? 1 : 2;
		}
	}
	rocksdb_pinnableslice_destroy(c);
	if (res == 1)
		pin_hold(out, v);
	else if (v)
		rocksdb_pinnableslice_destroy(v);
	return res;
}

/* crc_check again, the record and the chunk from one snapshot: the first
 * check's two reads may fall on either side of an apply that rewrote the
 * chunk (and its record), which is no mismatch.  As crc_check (-ENOMEM). */
static int crc_recheck(struct qfs_store *s, uint8_t *k, size_t klen, const uint8_t *key, size_t key_len,
		       qfs_group_t group, struct qfs_val *out)
{
	const rocksdb_snapshot_t *snap = store_snap_take(s); /* a pointer it resolves stays readable */
	rocksdb_readoptions_t *rc = rocksdb_readoptions_create(), *rv = rocksdb_readoptions_create();
	int res = -ENOMEM;

	if (snap && rc && rv) {
		rocksdb_readoptions_set_snapshot(rc, snap);
		rocksdb_readoptions_set_snapshot(rv, snap);
		rocksdb_readoptions_set_verify_checksums(rv, 0); /* as s->ro_fast */
		rocksdb_readoptions_set_fill_cache(rv, 0);
		res = crc_check(s, rc, rv, k, klen, key, key_len, group, out);
	}
	if (rv)
		rocksdb_readoptions_destroy(rv);
	if (rc)
		rocksdb_readoptions_destroy(rc);
	store_snap_put(s, snap);
	return res;
}

/* The checked read of a chunk item at k, from one snapshot: RocksDB's
 * checks on, and a pointer resolved from the same snapshot (a value that
 * cannot be read then is QFS_ECORRUPT).  0 (out empty when absent),
 * -ENOMEM, -EIO, QFS_ECORRUPT. */
static int chunk_get_checked(struct qfs_store *s, const uint8_t *k, size_t klen, struct qfs_val *out)
{
	const rocksdb_snapshot_t *snap = store_snap_take(s); /* a pointer it resolves stays readable */
	rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
	rocksdb_pinnableslice_t *v = NULL;
	char *err = NULL;
	int rc = -ENOMEM;

	if (!snap || !ro)
		goto out;
	rocksdb_readoptions_set_snapshot(ro, snap);
	v = rocksdb_get_pinned(s->db, ro, (const char *)k, klen, &err);
	if (err) {
		rc = store_rocks_err(s, "get", err);
		goto out;
	}
	rc = 0;
	if (!v)
		goto out;
	size_t vl;
	uint8_t *p = NULL;
	size_t pl = 0;

	const uint8_t *vp = (const uint8_t *)rocksdb_pinnableslice_value(v, &vl);

	rc = store_vlog_resolve(s, ro, k, klen, vp, vl, &p, &pl);
	if (rc == 1) {
		rocksdb_pinnableslice_destroy(v);
		qfs_val_adopt(out, p, pl);
		rc = 0;
	} else if (rc == 0) {
		pin_hold(out, v);
	} else {
		rocksdb_pinnableslice_destroy(v);
	}
out:
	if (ro)
		rocksdb_readoptions_destroy(ro);
	store_snap_put(s, snap);
	return rc;
}

/* See store_int.h. */
int store_get_item(struct qfs_store *s, qfs_group_t group, const uint8_t *key, size_t key_len,
		   struct qfs_val *out)
{
	uint8_t kb[STORE_DBKEY_MAX];
	size_t klen;
	char *err = NULL;
	rocksdb_pinnableslice_t *v = NULL;
	uint8_t *k = store_item_key(kb, sizeof(kb), group, key, key_len, &klen);
	int res;

	if (!k)
		return -ENOMEM;
	if (store_is_chunk_key(key, key_len)) {
		res = crc_check(s, s->ro, s->ro_fast, k, klen, key, key_len, group, out);
		if (res == 2) /* a rewrite between the two reads, or a real mismatch */
			res = crc_recheck(s, k, klen, key, key_len, group, out);
		if (res == 1) {
			__atomic_add_fetch(&s->crc_fast, 1, __ATOMIC_RELAXED);
			res = 0;
			goto out;
		}
		if (res < 0)
			goto out;
		__atomic_add_fetch(&s->crc_slow, 1, __ATOMIC_RELAXED);
		if (res == 2) {
			__atomic_add_fetch(&s->crc_mismatch, 1, __ATOMIC_RELAXED);
			QFS_LOG(QFS_LOG_WARN,
				"store chunk checksum mismatch, reading it again with RocksDB's checks dir=%s group=%016llx",
				s->dir, (unsigned long long)group);
		}
		/* 3 (a pointer that failed: an apply may have moved the value
		 * between the record's read and ours) and the others: one
		 * snapshot, every check on */
		res = chunk_get_checked(s, k, klen, out);
		goto out;
	}
	v = rocksdb_get_pinned(s->db, s->ro, (const char *)k, klen, &err);
	res = 0;
	if (err)
		res = store_rocks_err(s, "get", err);
	else if (v)
		pin_hold(out, v);
out:
	if (k != kb)
		free(k);
	return res;
}

/* Point read of key in group.  *val (malloc'd, caller frees; never NULL on
 * success, even for an empty value) and *val_len set only on success.
 * 0, -ENOENT, -ENOMEM, -EIO.  Any thread. */
int qfs_store_get(struct qfs_store *s, qfs_group_t group, const uint8_t *key, size_t key_len,
		  void **val, size_t *val_len)
{
	struct qfs_val v = { 0 };
	int rc = qfs_store_get_val(s, group, key, key_len, &v);

	return rc ? rc : qfs_val_copy_out(&v, val, val_len);
}

/* See store.h: the pinned slice itself (or the value log's copy), no
 * copy. */
int qfs_store_get_val(struct qfs_store *s, qfs_group_t group, const uint8_t *key, size_t key_len,
		      struct qfs_val *out)
{
	int rc = store_get_item(s, group, key, key_len, out);

	if (rc)
		return rc;
	return qfs_val_held(out) ? 0 : -ENOENT;
}

/* See store_int.h. */
int store_scan_item(struct qfs_store *s, const rocksdb_readoptions_t *ro, const uint8_t *k, size_t kl,
		    const uint8_t *v, size_t vl, qfs_store_scan_cb cb, void *arg)
{
	uint8_t *p = NULL;
	size_t pl = 0;
	int rc = store_vlog_resolve(s, ro, k, kl, v, vl, &p, &pl);

	if (rc < 0)
		return rc;
	rc = cb(k + STORE_GROUP_PREFIX_LEN, kl - STORE_GROUP_PREFIX_LEN, rc == 1 ? p : v, rc == 1 ? pl : vl,
		arg);
	free(p);
	return rc;
}

/* Call cb for each item of group with lo <= key < hi (hi NULL: to the end of
 * the group) in key order, from one snapshot.  Keys and values passed to cb
 * are valid only during the call.  Returns 0, cb's first nonzero value, -ENOMEM
 * or -EIO.  Any thread. */
int qfs_store_scan(struct qfs_store *s, qfs_group_t group, const uint8_t *lo, size_t lo_len,
		   const uint8_t *hi, size_t hi_len, qfs_store_scan_cb cb, void *arg)
{
	uint8_t lob[STORE_DBKEY_MAX], hib[STORE_DBKEY_MAX];
	uint8_t *lok, *hik;
	size_t lok_len, hik_len;
	char *err = NULL;
	int rc = 0;

	lok = store_item_key(lob, sizeof(lob), group, lo, lo ? lo_len : 0, &lok_len);
	if (!lok)
		return -ENOMEM;
	if (hi) {
		hik = store_item_key(hib, sizeof(hib), group, hi, hi_len, &hik_len);
		if (!hik) {
			rc = -ENOMEM;
			goto err_free_lo;
		}
	} else {
		hik = hib;
		hik_len = store_group_end(hib, group);
	}

	const rocksdb_snapshot_t *snap = store_snap_take(s);
	rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
	rocksdb_readoptions_set_snapshot(ro, snap);
	rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)hik, hik_len);
	rocksdb_readoptions_set_fill_cache(ro, 1);
	rocksdb_iterator_t *it = rocksdb_create_iterator(s->db, ro);

	for (rocksdb_iter_seek(it, (const char *)lok, lok_len); rocksdb_iter_valid(it);
	     rocksdb_iter_next(it)) {
		size_t kl, vl;
		const char *k = rocksdb_iter_key(it, &kl);
		const char *v = rocksdb_iter_value(it, &vl);
		rc = store_scan_item(s, ro, (const uint8_t *)k, kl, (const uint8_t *)v, vl, cb, arg);
		if (rc)
			break;
	}
	if (!rc) {
		rocksdb_iter_get_error(it, &err);
		if (err)
			rc = store_rocks_err(s, "scan", err);
	}
	rocksdb_iter_destroy(it);
	rocksdb_readoptions_destroy(ro);
	store_snap_put(s, snap);
	if (hik != hib)
		free(hik);
err_free_lo:
	if (lok != lob)
		free(lok);
	return rc;
}

/* See store.h.  One RocksDB snapshot serves the applied-LSN read and the
 * iterator, so a concurrent apply is either wholly in or wholly out. */
int qfs_store_snapshot_scan(struct qfs_store *s, qfs_group_t group, qfs_lsn_t *applied,
			    qfs_store_scan_cb cb, void *arg)
{
	uint8_t lo[STORE_GROUP_PREFIX_LEN], hi[STORE_GROUP_PREFIX_LEN], ak[STORE_GROUP_PREFIX_LEN];
	size_t hi_len, vlen;
	qfs_lsn_t lsn = 0;
	char *err = NULL;
	int rc = 0;

	store_group_prefix(lo, group);
	hi_len = store_group_end(hi, group);
	store_applied_key(ak, group);
	const rocksdb_snapshot_t *snap = store_snap_take(s);
	rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
	if (!ro) {
		store_snap_put(s, snap);
		return -ENOMEM;
	}
	rocksdb_readoptions_set_snapshot(ro, snap);
	rocksdb_pinnableslice_t *v = rocksdb_get_pinned(s->db, ro, (const char *)ak, sizeof(ak), &err);
	if (err) {
		rc = store_rocks_err(s, "snapshot applied", err);
		goto out_ro;
	}
	if (v) {
		const char *p = rocksdb_pinnableslice_value(v, &vlen);
		if (vlen == 8)
			lsn = qfs_be64_get((const uint8_t *)p);
		else
			rc = QFS_ECORRUPT;
		rocksdb_pinnableslice_destroy(v);
		if (rc)
			goto out_ro;
	}
	rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)hi, hi_len);
	rocksdb_readoptions_set_fill_cache(ro, 0);
	rocksdb_iterator_t *it = rocksdb_create_iterator(s->db, ro);
	for (rocksdb_iter_seek(it, (const char *)lo, sizeof(lo)); rocksdb_iter_valid(it);
	     rocksdb_iter_next(it)) {
		size_t kl, vl;
		const char *k = rocksdb_iter_key(it, &kl);
		const char *val = rocksdb_iter_value(it, &vl);
		rc = store_scan_item(s, ro, (const uint8_t *)k, kl, (const uint8_t *)val, vl, cb, arg);
		if (rc)
			break;
	}
	if (!rc) {
		rocksdb_iter_get_error(it, &err);
		if (err)
			rc = store_rocks_err(s, "snapshot scan", err);
	}
	rocksdb_iter_destroy(it);
out_ro:
	rocksdb_readoptions_destroy(ro);
	store_snap_put(s, snap);
	if (rc == 0)
		*applied = lsn;
	return rc;
}

/* See store.h.  Plain puts with RocksDB's WAL unsynced. */
int qfs_store_load_item(struct qfs_store *s, qfs_group_t group, const uint8_t *key, size_t key_len,
			const uint8_t *val, size_t val_len)
{
	uint8_t kb[STORE_DBKEY_MAX];
	size_t klen;
	char *err = NULL;
	uint8_t *k = store_item_key(kb, sizeof(kb), group, key, key_len, &klen);

	if (!k)
		return -ENOMEM;
	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
	if (!wb) {
		if (k != kb)
			free(k);
		return -ENOMEM;
	}
	rocksdb_writebatch_put(wb, (const char *)k, klen, (const char *)val, val_len);
	store_crc_emit(wb, group, key, key_len, val, val_len, 0);
	store_fence_forget(s, group, NULL, 0);
	pthread_mutex_lock(&s->apply_mu);
	store_cc_forget(s);
	rocksdb_write(s->db, s->wo, wb, &err);
	pthread_mutex_unlock(&s->apply_mu);
	rocksdb_writebatch_destroy(wb);
	if (k != kb)
		free(k);
	store_xact_forget(s, group);
	if (err)
		return store_rocks_err(s, "load item", err);
	return 0;
}

/* See store.h. */
int qfs_store_load_applied(struct qfs_store *s, qfs_group_t group, qfs_lsn_t lsn)
{
	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
	int rc;

	if (!wb)
		return -ENOMEM;
	batch_put_applied(wb, group, lsn);
	rc = batch_write(s, wb, "load applied");
	rocksdb_writebatch_destroy(wb);
	if (rc)
		store_applied_forget(s, group);
	else
		ap_set(s, group, lsn);
	return rc;
}

/* ---- snapshot points (the install itself is install.c) ---- */

/* See store_int.h. */
void store_snap_key(uint8_t out[STORE_GROUP_PREFIX_LEN], qfs_group_t group)
{
	out[0] = STORE_SNAP_PREFIX;
	qfs_be64_put(out + 1, group);
}

/* See store.h. */
int qfs_store_snap_point(struct qfs_store *s, qfs_group_t group, qfs_lsn_t *lsn,
			 uint64_t *ballot)
{
	uint8_t k[STORE_GROUP_PREFIX_LEN];
	size_t vlen;
	char *err = NULL;
	char *v;

	store_snap_key(k, group);
	v = rocksdb_get(s->db, s->ro, (const char *)k, sizeof(k), &vlen, &err);
	if (err)
		return store_rocks_err(s, "get snapshot point", err);
	if (!v) {
		*lsn = 0;
		*ballot = 0;
		return 0;
	}
	if (vlen != 16) {
		rocksdb_free(v);
		QFS_LOG(QFS_LOG_ERR, "store snapshot point corrupt dir=%s group=%016llx len=%zu", s->dir,
			(unsigned long long)group, vlen);
		return QFS_ECORRUPT;
	}
	*lsn = qfs_be64_get((const uint8_t *)v);
	*ballot = qfs_be64_get((const uint8_t *)v + 8);
	rocksdb_free(v);
	return 0;
}

/* Delete every item of group (one range tombstone) and its applied LSN, in
 * one batch.  0, -ENOMEM or -EIO (nothing changed).  I/O thread. */
int qfs_store_drop_group(struct qfs_store *s, qfs_group_t group)
{
	uint8_t lo[STORE_GROUP_PREFIX_LEN], hi[STORE_GROUP_PREFIX_LEN], ak[STORE_GROUP_PREFIX_LEN];
	size_t hi_len;
	int rc;

	store_group_prefix(lo, group);
	hi_len = store_group_end(hi, group);
	store_applied_key(ak, group);
	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
	if (!wb)
		return -ENOMEM;
	rocksdb_writebatch_delete_range(wb, (const char *)lo, sizeof(lo), (const char *)hi, hi_len);
	hi_len = store_crc_range(lo, hi, group);
	rocksdb_writebatch_delete_range(wb, (const char *)lo, sizeof(lo), (const char *)hi, hi_len);
	rocksdb_writebatch_delete(wb, (const char *)ak, sizeof(ak));
	store_snap_key(ak, group);
	rocksdb_writebatch_delete(wb, (const char *)ak, sizeof(ak));
	pthread_mutex_lock(&s->apply_mu);
	store_cc_forget(s);
	rc = batch_write(s, wb, "drop group");
	pthread_mutex_unlock(&s->apply_mu);
	rocksdb_writebatch_destroy(wb);
	store_xact_forget(s, group);
	store_applied_forget(s, group);
	store_fence_forget(s, group, NULL, 0);
	if (!rc) /* the group's WAL is gone: make the drop durable now */
		rc = qfs_store_sync(s);
	if (!rc) /* no pointer into the group's segments is left */
		rc = store_vlog_drop(s, group);
	if (!rc)
		QFS_LOG(QFS_LOG_INFO, "store group dropped dir=%s group=%016llx", s->dir,
			(unsigned long long)group);
	return rc;
}

/* Flush the memtables to SST files and wait: every batch written before the
 * call survives a crash afterwards (RocksDB's WAL is off).  0, -ENOMEM or
 * -EIO (logged).  Any thread; it blocks on I/O. */
int qfs_store_sync(struct qfs_store *s)
{
	char *err = NULL;
	rocksdb_flushoptions_t *fo;
	int rc;

	/* After a failed flush RocksDB holds a background error: a second
	 * flush of the same instance fails again at best (and trips an
	 * assertion in builds that keep them).  Reopening clears it. */
	if ((rc = __atomic_load_n(&s->flush_err, __ATOMIC_ACQUIRE)) != 0)
		return rc;
	/* Do not start a flush the disk cannot take: RocksDB 7.8 as Debian
	 * builds it can abort (an assertion) when a flush hits a full disk.
	 * Nothing is lost by not flushing: the replication WAL is the source
	 * and is kept until the store is flushed. */
	{
		uint64_t mem = 0, avail;

		if (rocksdb_property_int(s->db, "rocksdb.cur-size-all-mem-tables", &mem) == 0 &&
		    (avail = qfs_sysio_disk_avail(s->dir)) < mem + mem / 2 + (4u << 20)) {
			QFS_LOG(QFS_LOG_WARN, "store flush skipped dir=%s err=\"No space left on device\" "
				"free=%llu memtables=%llu", s->dir, (unsigned long long)avail,
				(unsigned long long)mem);
			return -ENOSPC;
		}
	}
	fo = rocksdb_flushoptions_create();
	if (!fo)
		return -ENOMEM;
	rocksdb_flushoptions_set_wait(fo, 1);
	rocksdb_flush(s->db, fo, &err);
	rocksdb_flushoptions_destroy(fo);
	if (err) {
		rc = store_rocks_err(s, "flush", err);
		__atomic_store_n(&s->flush_err, rc, __ATOMIC_RELEASE);
		return rc;
	}
	return 0;
}

/* RocksDB's estimate of the bytes group's items take in SST files (data
 * still only in the memtable is not counted).  0 or -EIO; *bytes set only on
 * success.  Any thread. */
int qfs_store_group_size(struct qfs_store *s, qfs_group_t group, uint64_t *bytes)
{
	uint8_t lo[STORE_GROUP_PREFIX_LEN], hi[STORE_GROUP_PREFIX_LEN];
	const char *starts[1] = { (const char *)lo }, *limits[1] = { (const char *)hi };
	size_t start_lens[1] = { sizeof(lo) }, limit_lens[1];
	uint64_t sizes[1] = { 0 };
	char *err = NULL;

	store_group_prefix(lo, group);
	limit_lens[0] = store_group_end(hi, group);
	rocksdb_approximate_sizes(s->db, 1, starts, start_lens, limits, limit_lens, sizes, &err);
	if (err)
		return store_rocks_err(s, "approximate sizes", err);
	*bytes = sizes[0];
	return 0;
}

/* See store.h.  "rocksdb.size-all-mem-tables" counts the active, the
 * immutable and the pinned memtables; the cache's usage is the whole
 * cache's when it is shared. */
int qfs_store_mem(struct qfs_store *s, uint64_t *memtables, uint64_t *cache)
{
	uint64_t m = 0;

	if (rocksdb_property_int(s->db, "rocksdb.size-all-mem-tables", &m) != 0)
		return -EIO;
	*memtables = m;
	*cache = rocksdb_cache_get_usage(s->cache);
	return 0;
}

/* Blob garbage collection on ("true": every blob file may be relocated by
 * the next compaction) or off; a failure is logged and otherwise ignored
 * (the compaction then frees only whole dead blob files). */
static void set_gc(struct qfs_store *s, const char *on)
{
	const char *keys[2] = { "enable_blob_garbage_collection", "blob_garbage_collection_age_cutoff" };
	const char *vals[2] = { on, on[0] == 't' ? "1.0" : "0.25" };
	char *err = NULL;

	rocksdb_set_options(s->db, 2, keys, vals, &err);
	if (err)
		QFS_LOG(QFS_LOG_WARN, "store blob gc setting failed dir=%s on=%s err=\"%s\"", s->dir, on, err);
	rocksdb_free(err);
}

/* See store.h.  Memtables first (a compaction does not see them), then the
 * whole key space; RocksDB drops deleted items at the last level and counts
 * the blobs they referenced as garbage (blob files that hold only garbage
 * are deleted, the oldest partly-garbage ones relocated). */
int qfs_store_compact(struct qfs_store *s, uint64_t room)
{
	uint64_t avail, live = 0;
	int rc, gc;

	if ((rc = __atomic_load_n(&s->flush_err, __ATOMIC_ACQUIRE)) != 0)
		return rc;
	if ((avail = qfs_sysio_disk_avail(s->dir)) < room)
		return -ENOSPC;
	if ((rc = qfs_store_sync(s)))
		return rc;
	{ /* segments of the value log no pointer uses go first */
		struct qfs_store_vlog_stat vs;

		(void)qfs_store_vlog_gc(s, 0, &vs); /* a failure is logged */
	}
	/* relocating live blobs may need as much room as they take */
	gc = s->blobs && rocksdb_property_int(s->db, "rocksdb.live-blob-file-size", &live) == 0 &&
	     avail != UINT64_MAX && avail >= room + live; /* (unknown: no relocation) */
	if (gc)
		set_gc(s, "true");
	rocksdb_compact_range(s->db, NULL, 0, NULL, 0);
	if (gc)
		set_gc(s, "false");
	return 0;
}
