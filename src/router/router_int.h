/*
 * router_int.h - the router's state, shared by router.c (tables, items,
 * metrics) and parts.c (routing cache, constant-work lookups, splits).
 * The model is in router.h and doc/partitions.md.
 *
 * Lock order: split_run_mu (held across a whole split, its I/O included)
 * before tables_lock; tables_lock before split_mu, pc_lock, pst_mu, cq_mu,
 * alloc_mu, metrics_mu; pc_lock and pst_mu before the admission's locks
 * (admit.c); the meta map's lock and the cell's locks are taken
 * inside their calls, after ours.
 */
#ifndef QFS_ROUTER_ROUTER_INT_H
#define QFS_ROUTER_ROUTER_INT_H

#include <pthread.h>
#include <stdint.h>

#include "common/key.h"
#include "meta/meta.h"
#include "router/metrics.h"
#include "router/router.h"

#define ALLOC_BLOCK 65536      /* inode numbers reserved per allocator txn */
#define METRICS_BUCKETS 256
#define PC_BUCKETS 256         /* routing cache hash buckets */
#define CQ_SIZE 256            /* constant-work lookup queue slots */
#define PST_SAMPLES 64         /* keys kept per partition for the split key */

struct table_metrics {
	qfs_table_t table;
	struct qfs_hist op[QFS_ROUTER_NOPS];
	struct table_metrics *next;  /* hash chain; protected by metrics_mu */
};

/* The router's copy of one table's partitions (key order). */
struct pc_table {
	qfs_table_t table;
	uint64_t reload_ms;          /* cluster mode: last re-read from the meta group by
					the lookup worker (monotonic ms); protected by pc_lock */
	struct qfs_meta_part *parts; /* owned; replaced whole under pc_lock */
	size_t n;
	struct pc_table *next;       /* hash chain; protected by pc_lock */
};

/* Load and size state of one partition (group), for the split checks. */
struct pstat {
	qfs_group_t group;
	qfs_table_t table;
	uint64_t ops;                /* requests in the current second */
	uint64_t sec_start_ms;       /* start of that second */
	uint64_t hot_since_ms;       /* rate above split_ops since (0: not) */
	double ops_s;                /* last full second's rate */
	uint64_t ceil_hits;          /* admission's ceiling refusals at the last roll */
	uint64_t written;            /* txn bytes since the last size check */
	int size_checked;            /* a size check ran once */
	int size_backoff;            /* the last size check split nothing */
	uint64_t seen;               /* keys offered to the reservoir */
	uint32_t nsample;
	uint16_t sample_len[PST_SAMPLES];
	uint8_t sample[PST_SAMPLES][QFS_KEY_MAX];
	struct pstat *next;          /* protected by pst_mu */
};

struct cq_ent {
	qfs_table_t table;
	qfs_group_t group;           /* the cache's answer (coalescing key) */
	uint16_t key_len;
	uint8_t key[QFS_KEY_MAX];
};

struct qfs_router {
	struct qfs_cell *cell;
	struct qfs_meta *meta;          /* the partition map (src/meta) */
	pthread_rwlock_t tables_lock;   /* shared by item txns, exclusive for table delete/rename
					   and to drain the writes of a partition a split freezes
					   (writer-preferring) */
	pthread_mutex_t alloc_mu;
	qfs_ino_t next_ino;             /* next free inode; protected by alloc_mu */
	qfs_ino_t limit_ino;            /* end of the reserved block; protected by alloc_mu */
	pthread_mutex_t metrics_mu;
	struct table_metrics *metrics[METRICS_BUCKETS]; /* protected by metrics_mu (entries never freed before router) */
	uint64_t ntables;               /* atomic */
	uint64_t started_ms;
	qfs_router_drop_hook drop_hook; /* set once before use; see router.h */
	void *drop_arg;
	struct qfs_admit_gac *gac;      /* the tables' global buckets (owned until GAC is a service) */
	struct qfs_admit *admit;        /* this router's buckets (admit.h: own locking) */

	/* routing cache (parts.c) */
	pthread_rwlock_t pc_lock;
	struct pc_table *pc[PC_BUCKETS];  /* protected by pc_lock */
	uint64_t map_gen;               /* atomic: +1 whenever a cached map changes */

	/* constant-work lookups (parts.c) */
	pthread_mutex_t cq_mu;
	pthread_cond_t cq_cv;
	struct cq_ent *cq;              /* ring of CQ_SIZE; protected by cq_mu */
	uint32_t cq_head, cq_n;         /* protected by cq_mu */
	int cq_stop;                    /* written under cq_mu (atomic: a pass reads it unlocked) */
	int cq_idle;                    /* the worker waits for a request, untimed; protected by cq_mu */
	struct cq_ent *cq_batch;        /* CQ_SIZE entries: the worker's copy of one pass */
	pthread_t cq_thread;
	int cq_running;                 /* the worker runs (cq_send queues); protected by cq_mu */
	uint64_t st_sent, st_coalesced, st_refreshed, st_stale, st_dropped; /* atomic counters */
	uint64_t st_xacts;              /* atomic: cross-partition txns run */

	/* splits (parts.c) */
	pthread_mutex_t split_run_mu;   /* held by the one split running, from the lookup of
					   its partition to its end (and by a live fence repair) */
	pthread_mutex_t split_mu;
	pthread_cond_t split_cv;        /* frozen cleared; split_stop set */
	int frozen;                     /* a range is frozen; written under tables_lock (excl) + split_mu */
	qfs_table_t frozen_table;
	qfs_group_t frozen_group;
	uint32_t frozen_lo_len;
	uint8_t frozen_lo[QFS_KEY_MAX]; /* frozen: [frozen_lo, end of frozen_group's range) */
	struct qfs_router_split_cfg split_cfg; /* protected by split_mu */
	int split_stop;                 /* protected by split_mu */
	pthread_t split_thread;
	int split_running;              /* protected by split_mu: split_thread was started */
	uint64_t splits;                /* atomic: splits done */
	pthread_mutex_t pst_mu;
	struct pstat *pst[PC_BUCKETS];  /* protected by pst_mu */

	/* cluster mode: split intents (parts.c, meta.h) */
	uint64_t nonce;                 /* this router's intent owner id (random, nonzero) */
	struct seen_intent *seen;       /* intents seen by takeover checks; protected by split_run_mu */
	size_t nseen;                   /* protected by split_run_mu */
};

/* An intent another router holds, as last seen, and since when (ms,
 * monotonic) it has not changed: a lease without shared clocks. */
struct seen_intent {
	struct qfs_meta_intent in;
	uint64_t since_ms;
};
#define SEEN_MAX 64                     /* intents tracked (and read per check) */

/* Raw-key item calls: the router's own files (router.c, parts.c, item.c)
 * and the unit tests.  fs/ speaks the typed item API of router.h, whose
 * calls (item.c) encode keys and land here. */
/* Run txn on table; as qfs_router_item_txn (router.h). */
int qfs_router_txn(struct qfs_router *r, qfs_table_t table, const struct qfs_txn *txn, int *result);
/* As qfs_router_get, the value held (qfs_router_item_get_val). */
int qfs_router_get_val(struct qfs_router *r, qfs_table_t table, const uint8_t *key, size_t key_len,
		       struct qfs_val *out);
/* Point read; *val malloc'd.  0, -ENOENT, read errors. */
int qfs_router_get(struct qfs_router *r, qfs_table_t table, const uint8_t *key, size_t key_len,
		   void **val, size_t *val_len);
/* Range scan, see qfs_store_scan: walks the table's partitions in key
 * order, so the items come sorted and complete across splits. */
int qfs_router_scan(struct qfs_router *r, qfs_table_t table, const uint8_t *lo, size_t lo_len,
		    const uint8_t *hi, size_t hi_len, qfs_scan_cb cb, void *arg);
/* Read key from node id's replica alone (qfs_cell_get_node: -EINVAL,
 * -EHOSTDOWN, store errors).  No metrics. */
int qfs_router_get_node(struct qfs_router *r, uint32_t id, qfs_table_t table, const uint8_t *key, size_t key_len,
			void **val, size_t *val_len);
/* Test hook (unit tests only; NULL otherwise): route_orphan calls it
 * with the table after it read the inodes of the LINK_DROPs it spells
 * out and before it sends the txn, so a test can change them between. */
extern void (*qfs_router_test_orphan_hook)(qfs_table_t table);
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

/* parts.c */
int router_parts_open(struct qfs_router *r);   /* after r->meta: repair, start the lookup worker */
void router_parts_close(struct qfs_router *r); /* stop threads, free caches */
/* The partition of (table, key) from the cache (loaded from meta on a
 * miss), and its lookup sent to the constant-work queue.  0 or -ENOMEM. */
int router_resolve(struct qfs_router *r, qfs_table_t table, const uint8_t *key, size_t key_len,
		   struct qfs_meta_part *out);
/* The group of (table, key)'s partition if the table's map is cached, else
 * 0 (no lookup, nothing queued: admission's partition, admit.h). */
qfs_group_t router_peek(struct qfs_router *r, qfs_table_t table, const uint8_t *key, size_t key_len);
/* Replace table's cached map from meta (and bump map_gen), and tell the
 * admission control the table's partitions (their shares). */
int router_refresh(struct qfs_router *r, qfs_table_t table);
/* A write of table met QFS_ESTALE again after a refresh of the map: with
 * no split running (split_run_mu tried, not waited for), re-read the map
 * and settle every partition whose group's fence is not the map's (an
 * abandoned split whose reset of the old group's fence failed, a split
 * whose outcome was unknown), as the repair at open does; then refresh
 * the cache.  0, -EBUSY (a split runs: it settles its groups itself), map
 * read and propose errors.  Cluster mode: also takes over dead splits'
 * intents of table, and leaves alone a group an intent holds. */
int router_fence_repair(struct qfs_router *r, qfs_table_t table);
/* Cluster mode (qfs_cell_remote): after a read of p's group routed by
 * the cache, check that the read was good: p's fence still at p's epoch,
 * or else the stored map still placing the key in p at that epoch (a
 * split of another router before its commit).  0: the read stands; 1:
 * the map moved (the cache is refreshed: read again); read errors.
 * Embedded mode: always 0 (this router is the only one that splits),
 * unless the test hook router_test_cluster_reads is set (unit tests:
 * another router's split simulated over an embedded cell; the hook also
 * makes the collection of unreferenced groups at open act as in cluster
 * mode, and router_test_gc_hook runs there right after the groups were
 * listed). */
extern int router_test_cluster_reads;
extern void (*router_test_gc_hook)(void);
/* Test hooks (unit tests only; 0 otherwise): router_test_cluster_splits
 * makes router_fence_repair act as in cluster mode (intents, takeovers,
 * cluster_fence_repair) over an embedded cell; router_test_lease_ms,
 * nonzero, replaces the 10 s lease after which an unchanged split intent
 * is taken over.  router_test_abort runs what a holder of intent in (a
 * split of old, the record it claimed) does when it abandons the split
 * after its fence (step 2), as a holder paused past the lease would. */
extern int router_test_cluster_splits;
extern uint64_t router_test_lease_ms;
void router_test_abort(struct qfs_router *r, const struct qfs_meta_intent *in, const struct qfs_meta_part *old);
int router_check_read(struct qfs_router *r, const struct qfs_meta_part *p, const uint8_t *key, size_t key_len);
/* Forget a dropped table (cache and stats). */
void router_forget(struct qfs_router *r, qfs_table_t table);
/* Account one request on partition p (ops, written bytes, key sample). */
void router_account(struct qfs_router *r, const struct qfs_meta_part *p, const uint8_t *key,
		    size_t key_len, uint64_t written);
/* 1 if a write to [key, key2) (key2 NULL: the point key) of partition p
 * must wait for a split; tables_lock held shared. */
int router_frozen(struct qfs_router *r, const struct qfs_meta_part *p, const uint8_t *key,
		  size_t key_len, const uint8_t *key2, size_t key2_len);
/* Wait until no range is frozen (split_mu taken inside). */
void router_wait_unfrozen(struct qfs_router *r);
/* Stats lines of the partition machinery. */
void router_parts_stats(struct qfs_router *r, struct qfs_buf *out);
/* The split check's size of partition p (parts.c "the size check's
 * walk"): bytes of keys and values, a file's chunks counted as its size
 * from its inode, not read (one chunk read per file); the walk stops once
 * the count exceeds limit (0: never).  *bytes, and if mid the key at which
 * the count reached limit / 2 (*mid_len 0 if it did not; mid holds
 * QFS_KEY_MAX bytes), and if scans the cell scans it ran.  Split thread or
 * tests; takes no router lock.  0, -ENOMEM or a scan's error (outputs
 * untouched). */
int router_part_size(struct qfs_router *r, const struct qfs_meta_part *p, uint64_t limit, uint64_t *bytes,
		     uint8_t *mid, size_t *mid_len, uint32_t *scans);

#endif
