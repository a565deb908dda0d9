/*
 * parts.c - the router's side of partitions (doc/partitions.md): its own
 * copy of the partition map (the routing cache), the constant-work lookups
 * that keep it fresh, the load and size accounting, splits (live and
 * crash-safe) and their repair at open, and .quorumfs/partitions.
 *
 * Constant work: every resolve, hit or miss, also queues its (table, key)
 * for the lookup worker, which asks src/meta and refreshes the table's
 * cached map if the answer differs.  The queue is bounded and coalesces
 * lookups of one partition, so the metadata load follows the request rate
 * whatever the hit rate (DESIGN.md section 6).  The worker runs in ticks
 * of CQ_TICK_MS: one pass per tick takes the whole queue, so it does one
 * lookup per partition touched per tick, and a request wakes it only when
 * it sleeps idle (no request since its last pass): no context switch per
 * request, no timer while no request comes (cq_main).
 *
 * A split of partition P = [lo, hi) (group G, epoch E) at key k:
 *   1. create the new group N (unreferenced until step 4: an open drops it)
 *   2. freeze [k, hi): take tables_lock exclusively (drains the writes in
 *      flight), finish the cross-partition txns left prepared (their
 *      COMMIT would write into G after the copy), mark the range; writes
 *      to it wait, reads go on
 *   3. write N's fence (epoch E+1, [k, hi)) and copy [k, hi) from G into
 *      N with txns (so N's log, and its archive, hold the data); then
 *      G's fence at E+1 (range still [lo, hi)): from here a txn routed by epoch E
 *      fails with QFS_ESTALE and its router re-reads the map
 *   4. commit the map in the meta group: [lo, k) in G and [k, hi) in N,
 *      both at epoch E+1 (THE COMMIT POINT)
 *   5. refresh the router's map (reads that straddle it read again)
 *   6. in G: write its fence (E+1, [lo, k)) and delete [k, hi)
 *   7. unfreeze
 * A crash before 4 leaves N unreferenced (dropped at open) and G whole; a
 * crash after 4 is finished at open by repair(): every partition whose
 * group's fence is not the map's gets step 6 (fence, and deletion of the
 * keys outside its range); that also puts G's fence back to E after a
 * crash between G's fence and the commit point.  Test hook: QFS_TEST_SPLIT_STOP=k makes the
 * split thread log "split stopped at step k (test hook)" after step k and
 * hang there, so that a test can kill -9 the mount at that point.
 * Splits run one at a time under split_run_mu, their partition looked up
 * under it.  Live, router_fence_repair (a write refused twice) settles a
 * group whose fence differs from the map when no split runs: what an
 * abandoned split whose fence reset failed, or one whose outcome stayed
 * unknown, leaves until the next open.
 *
 * Cluster mode (several mounts write the same tables): split_cluster
 * instead of split, under an intent record that one mount wins in the
 * meta group, with the old group fenced before the copy; dead splitters'
 * intents taken over after a lease; reads checked against the fence
 * (router_check_read).  See the banner above split_cluster and
 * doc/cluster.md section 6.
 *
 * Locks: see router_int.h (split_run_mu, then tables_lock).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/glist.h"
#include "common/log.h"
#include "node/cell.h"
#include "router/admit.h"
#include "router/router_int.h"
#include "router/xact.h"

#define COPY_BATCH_BYTES (512u * 1024u)  /* bytes of items per copy txn */
#define COPY_BATCH_ITEMS 512
#define CQ_RELOAD_MS 500  /* cluster mode: the lookup worker re-reads a table's map at most this often */
#define CQ_TICK_MS 2      /* the lookup worker's period while requests come (cq_main) */

/* Above every item key and below the groups' reserved 2PC keys (key.h):
 * the end of item ranges, so that copies and deletions of a split never
 * touch a group's prepared txns. */
static const uint8_t key_end[QFS_META_KEY_END_LEN] = {
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
};

/* ---- routing cache ---- */

static struct pc_table *pc_find(struct qfs_router *r, qfs_table_t table)
{
	struct pc_table *e;

	for (e = r->pc[table % PC_BUCKETS]; e; e = e->next)
		if (e->table == table)
			return e;
	return NULL;
}

/* Binary search in a cached table: the partition holding key. */
static const struct qfs_meta_part *pc_part(const struct pc_table *e, const uint8_t *key, size_t key_len)
{
	size_t a = 0, b = e->n;

	while (a < b) {
		size_t mid = a + (b - a) / 2;
		if (qfs_meta_keycmp(e->parts[mid].lo, e->parts[mid].lo_len, key, key_len) <= 0)
			a = mid + 1;
		else
			b = mid;
	}
	return &e->parts[a ? a - 1 : 0];
}

/* Tell the admission control e's partitions (each its share of the
 * table's capacity, admit.h); pc_lock held.  A failure (-ENOMEM) leaves the
 * old partitions' buckets, logged. */
static void admit_parts(struct qfs_router *r, const struct pc_table *e)
{
	qfs_group_t g[64], *v = e->n <= 64 ? g : malloc(e->n * sizeof(*v));
	int rc = -ENOMEM;

	if (!r->admit || e->n == 0 || e->table == QFS_META_TABLE)
		return;
	if (v) {
		for (size_t i = 0; i < e->n; i++)
			v[i] = e->parts[i].group;
		rc = qfs_admit_set_parts(r->admit, e->table, v, e->n, qfs_clock_mono_ns());
	}
	if (v != g)
		free(v);
	if (rc)
		QFS_LOG(QFS_LOG_WARN, "partition shares not updated table=%llu err=\"%s\"", (unsigned long long)e->table,
			qfs_strerror(rc));
}

int router_refresh(struct qfs_router *r, qfs_table_t table)
{
	struct qfs_meta_part *v;
	struct pc_table *e;
	size_t n;
	int rc;

	/* Copy and install under pc_lock (the meta map's lock comes after
	 * it): a copy taken outside could be older than one another refresh
	 * installed meanwhile, and would put the old map back.  The map in
	 * src/meta only moves forward, so neither does this cache. */
	pthread_rwlock_wrlock(&r->pc_lock);
	rc = qfs_meta_parts(r->meta, table, &v, &n);
	if (rc) {
		pthread_rwlock_unlock(&r->pc_lock);
		return rc;
	}
	e = pc_find(r, table);
	if (!e) {
		e = calloc(1, sizeof(*e));
		if (!e) {
			pthread_rwlock_unlock(&r->pc_lock);
			free(v);
			return -ENOMEM;
		}
		e->table = table;
		e->next = r->pc[table % PC_BUCKETS];
		r->pc[table % PC_BUCKETS] = e;
	}
	free(e->parts);
	e->parts = v;
	e->n = n;
	__atomic_fetch_add(&r->map_gen, 1, __ATOMIC_ACQ_REL);
	admit_parts(r, e);
	pthread_rwlock_unlock(&r->pc_lock);
	return 0;
}

qfs_group_t router_peek(struct qfs_router *r, qfs_table_t table, const uint8_t *key, size_t key_len)
{
	qfs_group_t g = 0;

	if (!key)
		return 0;
	pthread_rwlock_rdlock(&r->pc_lock);
	struct pc_table *e = pc_find(r, table);
	if (e && e->n)
		g = pc_part(e, key, key_len)->group;
	pthread_rwlock_unlock(&r->pc_lock);
	return g;
}

void router_forget(struct qfs_router *r, qfs_table_t table)
{
	struct pc_table **pp, *e;

	pthread_rwlock_wrlock(&r->pc_lock);
	for (pp = &r->pc[table % PC_BUCKETS]; (e = *pp); pp = &e->next)
		if (e->table == table) {
			*pp = e->next;
			free(e->parts);
			free(e);
			break;
		}
	__atomic_fetch_add(&r->map_gen, 1, __ATOMIC_ACQ_REL);
	pthread_rwlock_unlock(&r->pc_lock);
	pthread_mutex_lock(&r->pst_mu);
	for (unsigned b = 0; b < PC_BUCKETS; b++) {
		struct pstat **sp = &r->pst[b], *st;
		while ((st = *sp)) {
			if (st->table == table) {
				*sp = st->next;
				free(st);
			} else {
				sp = &st->next;
			}
		}
	}
	pthread_mutex_unlock(&r->pst_mu);
}

/* Queue (table, key) for the lookup worker, coalesced with a queued lookup
 * of the same partition; a full queue drops it (counted).  The worker is
 * signalled only when it sleeps idle (its queue ran empty after a pass):
 * at most one wake-up per idle period, none per request while it ticks. */
static void cq_send(struct qfs_router *r, qfs_table_t table, qfs_group_t group, const uint8_t *key,
		    size_t key_len)
{
	pthread_mutex_lock(&r->cq_mu);
	if (!r->cq_running) {
		pthread_mutex_unlock(&r->cq_mu);
		return;
	}
	for (uint32_t i = 0; i < r->cq_n; i++) {
		const struct cq_ent *q = &r->cq[(r->cq_head + i) % CQ_SIZE];
		if (q->table == table && q->group == group) {
			pthread_mutex_unlock(&r->cq_mu);
			__atomic_fetch_add(&r->st_coalesced, 1, __ATOMIC_RELAXED);
			return;
		}
	}
	if (r->cq_n == CQ_SIZE) {
		pthread_mutex_unlock(&r->cq_mu);
		__atomic_fetch_add(&r->st_dropped, 1, __ATOMIC_RELAXED);
		return;
	}
	struct cq_ent *q = &r->cq[(r->cq_head + r->cq_n) % CQ_SIZE];
	q->table = table;
	q->group = group;
	q->key_len = (uint16_t)(key_len > QFS_KEY_MAX ? QFS_KEY_MAX : key_len);
	memcpy(q->key, key, q->key_len);
	r->cq_n++;
	if (r->cq_idle) {
		r->cq_idle = 0;
		pthread_cond_signal(&r->cq_cv);
	}
	pthread_mutex_unlock(&r->cq_mu);
}

int router_resolve(struct qfs_router *r, qfs_table_t table, const uint8_t *key, size_t key_len,
		   struct qfs_meta_part *out)
{
	struct pc_table *e;
	int rc;

	for (;;) {
		pthread_rwlock_rdlock(&r->pc_lock);
		e = pc_find(r, table);
		if (e) {
			*out = *pc_part(e, key, key_len);
			pthread_rwlock_unlock(&r->pc_lock);
			break;
		}
		pthread_rwlock_unlock(&r->pc_lock);
		rc = router_refresh(r, table); /* a miss: load from meta, synchronously */
		if (rc)
			return rc;
	}
	cq_send(r, table, out->group, key, key_len);
	return 0;
}

/* One queued lookup: ask src/meta for q's partition and refresh the cached
 * table when the answer differs (group or epoch). */
static void cq_check(struct qfs_router *r, const struct cq_ent *q)
{
	struct qfs_meta_part m, c;
	int differs = 1;

	__atomic_fetch_add(&r->st_sent, 1, __ATOMIC_RELAXED);
	if (qfs_cell_remote(r->cell)) {
		/* other mounts split too: the map in memory is this
		 * router's copy; re-read the table's stored map (at most
		 * every CQ_RELOAD_MS per table) so a split elsewhere reaches
		 * the cache without waiting for a stale write */
		uint64_t now = qfs_clock_mono_ms(), last = 0;
		pthread_rwlock_rdlock(&r->pc_lock);
		struct pc_table *pe = pc_find(r, q->table);
		if (pe) {
			last = __atomic_load_n(&pe->reload_ms, __ATOMIC_RELAXED);
			if (now - last >= CQ_RELOAD_MS)
				__atomic_store_n(&pe->reload_ms, now, __ATOMIC_RELAXED);
		}
		pthread_rwlock_unlock(&r->pc_lock);
		if (pe && now - last >= CQ_RELOAD_MS)
			(void)qfs_meta_reload_table(r->meta, q->table);
	}
	qfs_meta_lookup(r->meta, q->table, q->key, q->key_len, &m);
	pthread_rwlock_rdlock(&r->pc_lock);
	struct pc_table *e = pc_find(r, q->table);
	if (e) {
		c = *pc_part(e, q->key, q->key_len);
		differs = c.group != m.group || c.epoch != m.epoch;
	}
	pthread_rwlock_unlock(&r->pc_lock);
	if (e && differs && router_refresh(r, q->table) == 0)
		__atomic_fetch_add(&r->st_refreshed, 1, __ATOMIC_RELAXED);
}

/* The lookup worker, in ticks of CQ_TICK_MS: woken by the first request
 * after an idle period, it sleeps one tick (so the rest of the burst
 * queues up, coalesced per partition), takes the whole queue and does one
 * lookup per queued partition; while requests keep coming it goes on
 * tick after tick without being signalled; a pass that finds the queue
 * empty makes it idle (an untimed wait: no wake-ups without requests). */
static void *cq_main(void *arg)
{
	struct qfs_router *r = arg;
	struct cq_ent *batch = r->cq_batch;
	const struct timespec tick = { 0, CQ_TICK_MS * 1000000L };

	(void)pthread_setname_np(pthread_self(), "qfs-cq");
	pthread_mutex_lock(&r->cq_mu);
	for (;;) {
		while (!r->cq_stop && r->cq_n == 0) {
			r->cq_idle = 1;
			pthread_cond_wait(&r->cq_cv, &r->cq_mu);
		}
		r->cq_idle = 0;
		if (r->cq_stop)
			break;
		pthread_mutex_unlock(&r->cq_mu);
		nanosleep(&tick, NULL);
		pthread_mutex_lock(&r->cq_mu);
		if (r->cq_stop)
			break;
		uint32_t n = r->cq_n;
		for (uint32_t i = 0; i < n; i++)
			batch[i] = r->cq[(r->cq_head + i) % CQ_SIZE];
		r->cq_head = 0;
		r->cq_n = 0;
		pthread_mutex_unlock(&r->cq_mu);
		/* a stop ends the pass: router_parts_close waits for one lookup
		 * at most, not for a whole batch (in cluster mode each may
		 * re-read a table's map over the network) */
		for (uint32_t i = 0; i < n && !__atomic_load_n(&r->cq_stop, __ATOMIC_RELAXED); i++)
			cq_check(r, &batch[i]);
		pthread_mutex_lock(&r->cq_mu);
	}
	pthread_mutex_unlock(&r->cq_mu);
	return NULL;
}

/* ---- load and size accounting ---- */

static struct pstat *pst_get(struct qfs_router *r, const struct qfs_meta_part *p)
{
	struct pstat *st;

	for (st = r->pst[p->group % PC_BUCKETS]; st; st = st->next)
		if (st->group == p->group)
			return st;
	st = calloc(1, sizeof(*st));
	if (!st)
		return NULL;
	st->group = p->group;
	st->table = p->table;
	st->next = r->pst[p->group % PC_BUCKETS];
	r->pst[p->group % PC_BUCKETS] = st;
	return st;
}

/* Roll st's per-second counter at now_ms (pst_mu held). */
static void pst_roll(struct qfs_router *r, struct pstat *st, uint64_t now_ms)
{
	if (now_ms - st->sec_start_ms < 1000)
		return;
	uint64_t span = now_ms - st->sec_start_ms;
	st->ops_s = span < 2000 ? (double)st->ops * 1000.0 / (double)span : 0.0;
	st->ops = 0;
	st->sec_start_ms = now_ms;
	/* a partition its ceiling held back is hot whatever its request rate
	 * (admit.h): splitting gives each half its own ceiling */
	uint64_t hits = r->admit ? qfs_admit_ceiling_hits(r->admit, st->table, st->group) : 0;
	int held = hits != st->ceil_hits;
	st->ceil_hits = hits;
	if (r->split_cfg.split_ops > 0 && (st->ops_s > r->split_cfg.split_ops || held)) {
		if (!st->hot_since_ms)
			st->hot_since_ms = now_ms - span;
	} else {
		st->hot_since_ms = 0;
	}
}

void router_account(struct qfs_router *r, const struct qfs_meta_part *p, const uint8_t *key,
		    size_t key_len, uint64_t written)
{
	uint64_t now = qfs_clock_mono_ms();
	struct pstat *st;

	if (key_len == 0 || key_len > QFS_KEY_MAX)
		return;
	pthread_mutex_lock(&r->pst_mu);
	st = pst_get(r, p);
	if (st) {
		pst_roll(r, st, now);
		st->ops++;
		st->written += written;
		/* reservoir sample of the requests' keys (Vitter's algorithm R) */
		uint64_t seen = st->seen++;
		uint64_t slot = seen < PST_SAMPLES ? seen : (uint64_t)qfs_clock_mono_ns() * 2654435761u % (seen + 1);
		if (slot < PST_SAMPLES) {
			memcpy(st->sample[slot], key, key_len);
			st->sample_len[slot] = (uint16_t)key_len;
			if (seen < PST_SAMPLES)
				st->nsample = (uint32_t)seen + 1;
		}
	}
	pthread_mutex_unlock(&r->pst_mu);
}

/* ---- freezing ---- */

int router_frozen(struct qfs_router *r, const struct qfs_meta_part *p, const uint8_t *key,
		  size_t key_len, const uint8_t *key2, size_t key2_len)
{
	if (!__atomic_load_n(&r->frozen, __ATOMIC_ACQUIRE) || p->group != r->frozen_group)
		return 0;
	if (key2) /* [key, key2) meets [frozen_lo, ...) */
		return qfs_meta_keycmp(key2, key2_len, r->frozen_lo, r->frozen_lo_len) > 0;
	return qfs_meta_keycmp(key, key_len, r->frozen_lo, r->frozen_lo_len) >= 0;
}

void router_wait_unfrozen(struct qfs_router *r)
{
	pthread_mutex_lock(&r->split_mu);
	while (r->frozen)
		pthread_cond_wait(&r->split_cv, &r->split_mu);
	pthread_mutex_unlock(&r->split_mu);
}

/* Freeze [k, ...) of p.  With the writes drained, first finish every
 * cross-partition txn left prepared (a run whose coordinator and recovery
 * timed out): its COMMIT would write its items into p's group after the
 * copy, outside the group's new range, where no read finds them and the
 * settle deletes them.  No run of this router is in flight then, so the
 * recovery aborts no live one.  0, or the recovery's error (not frozen). */
static int any_cb(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, void *arg)
{
	(void)k;
	(void)kl;
	(void)v;
	(void)vl;
	*(int *)arg = 1;
	return 1;
}

/* Recover the prepared cross-partition txns of groups, every group the
 * cell lists.  Embedded: this router is the only one that runs txns, and
 * none of its runs is in flight (open, or a split's drained writes), so
 * the list is complete: qfs_xact_recover, which also forgets finished
 * decisions.  Cluster mode: other mounts run txns meanwhile, in groups
 * created after the list was taken (their splits) or on nodes that did
 * not answer it: qfs_xact_recover_live, which never forgets a 'C'. */
static int xact_recover_all(struct qfs_router *r, const qfs_group_t *groups, size_t n)
{
	if (qfs_cell_remote(r->cell) || router_test_cluster_splits)
		return qfs_xact_recover_live(r->cell, QFS_META_GROUP, groups, n);
	return qfs_xact_recover(r->cell, QFS_META_GROUP, groups, n);
}

static int set_frozen(struct qfs_router *r, const struct qfs_meta_part *p, const uint8_t *k, size_t kl)
{
	uint8_t lo[QFS_KEY_PREFIX_LEN + 2], hi[QFS_KEY_PREFIX_LEN + 2];
	int rc, prepared = 0;

	pthread_rwlock_wrlock(&r->tables_lock); /* drains the writes in flight */
	qfs_key_xact_range(lo, hi, QFS_KEY_XACT_PREPARED);
	rc = qfs_cell_scan(r->cell, p->group, lo, sizeof(lo), hi, sizeof(hi), any_cb, &prepared);
	if (rc >= 0 && prepared) { /* every group: the txn's other parts too */
		struct qfs_glist all = { 0 };

		qfs_cell_groups(r->cell, qfs_glist_add, &all);
		rc = all.err ? all.err : xact_recover_all(r, all.v, all.n);
		qfs_glist_free(&all);
	}
	if (rc < 0) {
		pthread_rwlock_unlock(&r->tables_lock);
		return rc;
	}
	pthread_mutex_lock(&r->split_mu);
	r->frozen_table = p->table;
	r->frozen_group = p->group;
	memcpy(r->frozen_lo, k, kl);
	r->frozen_lo_len = (uint32_t)kl;
	__atomic_store_n(&r->frozen, 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&r->split_mu);
	pthread_rwlock_unlock(&r->tables_lock);
	return 0;
}

static void clear_frozen(struct qfs_router *r)
{
	pthread_mutex_lock(&r->split_mu);
	__atomic_store_n(&r->frozen, 0, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&r->split_cv);
	pthread_mutex_unlock(&r->split_mu);
}

/* ---- split ---- */

/* Test hook (documented in doc/partitions.md): stop after step k. */
static void test_stop(int step)
{
	const char *e = getenv("QFS_TEST_SPLIT_STOP");

	if (!e || atoi(e) != step)
		return;
	QFS_LOG(QFS_LOG_WARN, "split stopped at step %d (test hook)", step);
	for (;;)
		sleep(60);
}

/* Propose an encoded txn to group; 0 or the propose error or result. */
static int propose_txn(struct qfs_router *r, qfs_group_t group, const struct qfs_txn *t)
{
	struct qfs_buf b;
	int rc, res = 0;

	qfs_buf_init(&b);
	qfs_txn_encode(t, &b);
	rc = b.err;
	if (rc == 0)
		rc = qfs_cell_propose(r->cell, group, b.data, b.len, &res);
	qfs_buf_close(&b);
	return rc ? rc : res;
}

struct copy_ctx {
	struct qfs_buf items;   /* u32 klen key u32 vlen val ... */
	uint32_t n;
	uint8_t last[QFS_KEY_MAX + 1];
	size_t last_len;
	uint64_t bytes;         /* counting scans: bytes seen */
	uint64_t items_seen;
	uint64_t limit;         /* counting scans: stop above (0: never) */
	uint8_t mid[QFS_KEY_MAX];
	size_t mid_len;         /* the key at limit/2 bytes */
};

static int copy_cb(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, void *arg)
{
	struct copy_ctx *c = arg;

	if (qfs_meta_is_fence(k, kl) || kl > QFS_KEY_MAX)
		return 0;
	qfs_buf_put_bytes(&c->items, k, kl);
	qfs_buf_put_bytes(&c->items, v, vl);
	c->n++;
	memcpy(c->last, k, kl);
	c->last_len = kl;
	return c->items.len >= COPY_BATCH_BYTES || c->n >= COPY_BATCH_ITEMS || c->items.err;
}

/* ---- cluster mode: the intent a split holds (meta.h "split intents") ---- */

#define BEAT_MS 1000    /* a holder raises its intent's beat this often while it works */
#define LEASE_MS 10000  /* an intent unchanged this long is taken over (its holder is gone) */

uint64_t router_test_lease_ms; /* test hooks, see router_int.h */
int router_test_cluster_splits;

struct hold {
	struct qfs_meta_intent in; /* as stored (after our last successful swap) */
	uint64_t last_ms;          /* monotonic ms of the last beat */
};

/* Raise h's beat if BEAT_MS passed (force: now).  0 (also when a beat
 * failed for another reason than a conflict: the next one tries again,
 * and a lost intent fails the commit), QFS_ECONFLICT (the intent was
 * taken over), or with force any error. */
static int hold_beat(struct qfs_router *r, struct hold *h, int force)
{
	uint64_t now = qfs_clock_mono_ms();
	struct qfs_meta_intent nw;
	int rc;

	if (!h || (!force && now - h->last_ms < BEAT_MS))
		return 0;
	nw = h->in;
	nw.beat++;
	rc = qfs_meta_intent_swap(r->meta, &h->in, &nw);
	if (rc == 0) {
		h->in = nw;
		h->last_ms = now;
	}
	return force || rc == QFS_ECONFLICT ? rc : 0;
}

/* The inode of the file whose chunk key ck is (copy_range): a file's
 * chunks sort before its inode, and the store counts a chunk's bytes into
 * its inode's chunk_bytes only if the inode exists (a PUT of a new inode
 * starts at 0, doc/format-items.md "Counts kept at apply time").  So the
 * copy puts a file's inode into the new group before its first chunk, and
 * again at its place in key order (a PUT keeps the counts of the inode it
 * replaces): every chunk copied is counted, as in the old group (copied
 * in several txns, the inode kept only the chunks of its own txn: a split
 * lowered st_blocks).  *ino: the last file handled (its inode is there or
 * absent).  Appends to t a PUT whose value is returned in *val (the
 * caller frees it after the proposal), or nothing.  0 or an error. */
static int copy_inode_first(struct qfs_router *r, qfs_group_t from, const uint8_t *ck, size_t ckl,
			    const uint8_t *hi, size_t hil, qfs_ino_t *ino, struct qfs_txn *t, void **val)
{
	uint8_t ik[QFS_KEY_MAX];
	struct qfs_key key;
	struct qfs_op *op;
	size_t ikl, vl;
	int rc;

	*val = NULL;
	if (qfs_key_parse(ck, ckl, &key) != 0 || key.kind != QFS_KEY_CHUNK || key.pk == *ino)
		return 0;
	*ino = key.pk;
	ikl = qfs_key_inode(ik, key.pk);
	if (qfs_meta_keycmp(ik, ikl, hi, hil) >= 0)
		return 0; /* the inode stays in the old group: nothing to count here */
	rc = qfs_cell_get(r->cell, from, ik, ikl, val, &vl);
	if (rc == -ENOENT) /* chunks with no inode (an orphan's): counted as before */
		return 0;
	if (rc)
		return rc;
	uint8_t *kc = malloc(ikl);
	op = kc ? qfs_txn_add(t, QFS_OP_PUT) : NULL;
	if (!op) {
		free(kc);
		free(*val);
		*val = NULL;
		return -ENOMEM;
	}
	memcpy(kc, ik, ikl);
	op->key = kc;
	op->key_len = (uint32_t)ikl;
	op->val = *val;
	op->val_len = (uint32_t)vl;
	return 0;
}

/* Copy [k, hi) of group from into group to, batch by batch, beating h
 * (NULL: embedded mode, no intent).  0 or an error. */
static int copy_range(struct qfs_router *r, qfs_group_t from, qfs_group_t to, const uint8_t *k, size_t kl,
		      const uint8_t *hi, size_t hil, struct hold *h)
{
	struct copy_ctx *c = calloc(1, sizeof(*c));
	uint8_t cur[QFS_KEY_MAX + 1];
	size_t cur_len = kl;
	qfs_ino_t file = 0; /* copy_inode_first's last file */
	int rc = 0;

	if (!c)
		return -ENOMEM;
	memcpy(cur, k, kl);
	qfs_buf_init(&c->items);
	for (;;) {
		struct qfs_txn t;
		struct qfs_rd rd;
		void *first[COPY_BATCH_ITEMS]; /* inodes put before their chunks */
		const uint8_t *firstk[COPY_BATCH_ITEMS];
		uint32_t nfirst = 0;

		qfs_buf_reset(&c->items);
		c->n = 0;
		rc = qfs_cell_scan(r->cell, from, cur, cur_len, hi, hil, copy_cb, c);
		if (rc < 0)
			break;
		rc = 0; /* 1: copy_cb stopped at a full batch */
		if (c->items.err) {
			rc = c->items.err;
			break;
		}
		if (c->n == 0) {
			rc = 0;
			break;
		}
		rc = hold_beat(r, h, 0);
		if (rc)
			break;
		qfs_txn_init(&t);
		qfs_rd_init(&rd, c->items.data, c->items.len);
		for (uint32_t i = 0; i < c->n && rc == 0; i++) {
			size_t l1, l2;
			const uint8_t *key = qfs_rd_bytes(&rd, &l1), *val = qfs_rd_bytes(&rd, &l2);
			uint32_t nops = t.nops;
			rc = copy_inode_first(r, from, key, l1, hi, hil, &file, &t, &first[nfirst]);
			if (t.nops > nops) /* its key and value are ours to free */
				firstk[nfirst++] = t.ops[nops].key;
			if (rc)
				break;
			struct qfs_op *op = qfs_txn_add(&t, QFS_OP_PUT);
			if (!op) {
				rc = -ENOMEM;
				break;
			}
			op->key = key;
			op->val = val;
			op->key_len = (uint32_t)l1;
			op->val_len = (uint32_t)l2;
		}
		if (rc == 0)
			rc = propose_txn(r, to, &t);
		qfs_txn_close(&t);
		for (uint32_t i = 0; i < nfirst; i++) {
			free((void *)(uintptr_t)firstk[i]);
			free(first[i]);
		}
		if (rc)
			break;
		memcpy(cur, c->last, c->last_len);
		cur[c->last_len] = 0; /* the next key after the last copied */
		cur_len = c->last_len + 1;
	}
	qfs_buf_close(&c->items);
	free(c);
	return rc;
}

static const uint8_t fence_absent[1]; /* settle_group_if: expect no fence at all */

/* In p's group: its fence and the deletion of its keys outside [lo, hi)
 * (the fence key "\0" excepted); with expect, only if the fence is stored
 * exactly so (fence_absent: not stored), else QFS_ECONFLICT.  0 or an
 * error. */
static int settle_group_if(struct qfs_router *r, const struct qfs_meta_part *p, const void *expect,
			   size_t expect_len)
{
	struct qfs_meta_rec rec;
	struct qfs_txn t;
	struct qfs_op *op;
	int rc = 0;

	qfs_meta_rec_init(&rec);
	qfs_txn_init(&t);
	if (expect) { /* only over the fence seen (cluster mode: no ABA, see split_cluster) */
		op = qfs_txn_add(&t, expect == fence_absent ? QFS_OP_EXPECT_ABSENT : QFS_OP_EXPECT_VALUE);
		if (!op) {
			rc = -ENOMEM;
		} else {
			op->key = QFS_META_FENCE_KEY;
			op->key_len = QFS_META_FENCE_KEY_LEN;
			if (expect != fence_absent) {
				op->val = expect;
				op->val_len = (uint32_t)expect_len;
			}
			op->err = QFS_ECONFLICT;
		}
	}
	if (rc == 0)
		rc = qfs_meta_add_fence(&t, &rec, p);
	if (rc == 0 && p->lo_len) {
		op = qfs_txn_add(&t, QFS_OP_DEL_RANGE);
		if (!op) {
			rc = -ENOMEM;
		} else {
			op->key = QFS_META_ITEMS_FIRST;
			op->key_len = QFS_META_ITEMS_FIRST_LEN;
			op->key2 = p->lo;
			op->key2_len = p->lo_len;
		}
	}
	if (rc == 0 && p->hi_len) {
		op = qfs_txn_add(&t, QFS_OP_DEL_RANGE);
		if (!op) {
			rc = -ENOMEM;
		} else {
			op->key = p->hi;
			op->key_len = p->hi_len;
			op->key2 = key_end;
			op->key2_len = sizeof(key_end);
		}
	}
	if (rc == 0)
		rc = propose_txn(r, p->group, &t);
	qfs_txn_close(&t);
	qfs_meta_rec_close(&rec);
	return rc;
}

static int settle_group(struct qfs_router *r, const struct qfs_meta_part *p)
{
	return settle_group_if(r, p, NULL, 0);
}

/* 1 if fence f (decoded; epoch UINT64_MAX: undecodable) is not p's. */
static int fence_differs(const struct qfs_meta_part *p, const struct qfs_meta_part *f)
{
	return p->epoch != f->epoch || p->lo_len != f->lo_len || p->hi_len != f->hi_len ||
	       memcmp(p->lo, f->lo, p->lo_len) || memcmp(p->hi, f->hi, p->hi_len);
}

static int cluster_fence_repair(struct qfs_router *r, qfs_table_t table);
static int intents_check(struct qfs_router *r, qfs_table_t table);
static int split_cluster(struct qfs_router *r, const struct qfs_meta_part *old, const uint8_t *k, size_t kl);

int router_fence_repair(struct qfs_router *r, qfs_table_t table)
{
	struct qfs_meta_part *v = NULL;
	size_t n = 0;
	int rc;

	if (qfs_cell_remote(r->cell) || router_test_cluster_splits) { /* other routers split too: see cluster_fence_repair */
		if (pthread_mutex_trylock(&r->split_run_mu) != 0)
			return -EBUSY;
		rc = cluster_fence_repair(r, table);
		pthread_mutex_unlock(&r->split_run_mu);
		return rc ? rc : router_refresh(r, table);
	}

	/* a running split fences its group ahead of the map on purpose and
	 * settles it itself: only with no split running is a difference a
	 * leftover (embedded: this router is the only one that splits) */
	if (pthread_mutex_trylock(&r->split_run_mu) != 0)
		return -EBUSY;
	rc = qfs_meta_reload_table(r->meta, table); /* judge by the stored map only */
	if (rc == 0)
		rc = qfs_meta_parts(r->meta, table, &v, &n);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		struct qfs_meta_part f;
		void *val;
		size_t vl;
		int grc = qfs_cell_get(r->cell, v[i].group, QFS_META_FENCE_KEY, QFS_META_FENCE_KEY_LEN, &val, &vl);

		if (grc && grc != -ENOENT)
			continue; /* cannot serve: its writes fail by themselves */
		memset(&f, 0, sizeof(f));
		if (grc == 0) {
			if (qfs_meta_fence_decode(val, vl, &f) != 0)
				f.epoch = UINT64_MAX;
			free(val);
		}
		if (!fence_differs(&v[i], &f))
			continue;
		rc = settle_group(r, &v[i]);
		QFS_LOG(rc ? QFS_LOG_ERR : QFS_LOG_WARN,
			"partition fence repaired table=%llu group=%016llx epoch=%llu fence=%llu err=\"%s\"",
			(unsigned long long)table, (unsigned long long)v[i].group,
			(unsigned long long)v[i].epoch, (unsigned long long)f.epoch, qfs_strerror(rc));
	}
	pthread_mutex_unlock(&r->split_run_mu);
	free(v);
	if (rc == 0)
		rc = router_refresh(r, table);
	return rc;
}

#define QFS_EUNKNOWN_SPLIT 1 /* commit_outcome: the map could not be read */

/* qfs_meta_split failed with err, which may come after its commit applied
 * (a lost answer, or the map's reload after it failed): read the map to
 * know.  0 with *left, *right (committed), err (not committed), or
 * QFS_EUNKNOWN_SPLIT (the map stayed unreadable). */
static int commit_outcome(struct qfs_router *r, const struct qfs_meta_part *old, const uint8_t *k,
			  size_t kl, qfs_group_t newg, int err, struct qfs_meta_part *left,
			  struct qfs_meta_part *right)
{
	for (int i = 0; i < 50; i++) {
		if (qfs_meta_reload_table(r->meta, old->table) == 0) {
			if (!qfs_meta_group_used(r->meta, newg))
				return err;
			qfs_meta_lookup(r->meta, old->table, old->lo, old->lo_len, left);
			qfs_meta_lookup(r->meta, old->table, k, kl, right);
			QFS_LOG(QFS_LOG_WARN, "split committed despite err=\"%s\" table=%llu new=%016llx",
				qfs_strerror(err), (unsigned long long)old->table,
				(unsigned long long)newg);
			return 0;
		}
		usleep(100000);
	}
	return QFS_EUNKNOWN_SPLIT;
}

/* Split old at k (see the file comment for the steps). */
static int split(struct qfs_router *r, const struct qfs_meta_part *old, const uint8_t *k, size_t kl)
{
	struct qfs_meta_part nf = *old, left, right;
	struct qfs_meta_rec rec;
	struct qfs_txn t;
	qfs_ino_t newg;
	int rc;

	if (qfs_cell_remote(r->cell))
		return split_cluster(r, old, k, kl);
	if (!qfs_meta_part_has(old, k, kl) || qfs_meta_keycmp(k, kl, old->lo, old->lo_len) == 0 ||
	    qfs_meta_keycmp(k, kl, QFS_META_ITEMS_FIRST, QFS_META_ITEMS_FIRST_LEN) <= 0)
		return -EINVAL;
	rc = qfs_router_alloc_ino(r, &newg); /* group ids are never reused */
	if (rc)
		return rc;
	rc = qfs_cell_group_create(r->cell, newg);
	if (rc)
		return rc;
	test_stop(1);
	rc = set_frozen(r, old, k, kl);
	if (rc) {
		QFS_LOG(QFS_LOG_WARN, "split abandoned: prepared cross-partition txns not finished "
			"table=%llu group=%016llx new=%016llx err=\"%s\"", (unsigned long long)old->table,
			(unsigned long long)old->group, (unsigned long long)newg, qfs_strerror(rc));
		if (!qfs_meta_group_used(r->meta, newg))
			(void)qfs_cell_group_drop(r->cell, newg); /* else an open drops it */
		return rc;
	}
	test_stop(2);
	memcpy(nf.lo, k, kl);
	nf.lo_len = (uint32_t)kl;
	nf.group = newg;
	nf.epoch = old->epoch + 1;
	qfs_meta_rec_init(&rec);
	qfs_txn_init(&t);
	rc = qfs_meta_add_fence(&t, &rec, &nf);
	if (rc == 0)
		rc = propose_txn(r, newg, &t);
	qfs_txn_close(&t);
	qfs_meta_rec_close(&rec);
	if (rc == 0)
		rc = copy_range(r, old->group, newg, k, kl, old->hi_len ? old->hi : key_end,
				old->hi_len ? old->hi_len : sizeof(key_end), NULL);
	if (rc == 0) {
		/* fence G at E+1 before the commit point: a router that still
		 * routes by epoch E (another one, or a stale cache) cannot write
		 * the moved range into G from here on.  The fence keeps G's old
		 * range until step 6, so that repair() sees G unsettled. */
		struct qfs_meta_part g = *old;
		g.epoch = old->epoch + 1;
		qfs_meta_rec_init(&rec);
		qfs_txn_init(&t);
		rc = qfs_meta_add_fence(&t, &rec, &g);
		if (rc == 0)
			rc = propose_txn(r, old->group, &t);
		qfs_txn_close(&t);
		qfs_meta_rec_close(&rec);
	}
	if (rc == 0) {
		test_stop(3);
		rc = qfs_meta_split(r->meta, old, k, kl, newg, &left, &right); /* the commit point */
		if (rc && rc != QFS_ECONFLICT && rc != -EINVAL)
			rc = commit_outcome(r, old, k, kl, newg, rc, &left, &right);
	}
	if (rc == QFS_EUNKNOWN_SPLIT) {
		/* neither dropped nor settled: the next open's repair finishes
		 * the split (the map names newg) or undoes G's fence (it does not) */
		clear_frozen(r);
		QFS_LOG(QFS_LOG_ERR, "split outcome unknown table=%llu group=%016llx new=%016llx err=\"%s\"",
			(unsigned long long)old->table, (unsigned long long)old->group,
			(unsigned long long)newg, qfs_strerror(-ETIMEDOUT));
		return -ETIMEDOUT;
	}
	if (rc) {
		if (rc != QFS_ECONFLICT) { /* G's fence may say E+1: put back the map's */
			int src = settle_group(r, old);
			if (src) /* its writes meet QFS_ESTALE and repair it (router_fence_repair) */
				QFS_LOG(QFS_LOG_ERR, "abandoned split left the old group fenced ahead of the map "
					"group=%016llx epoch=%llu err=\"%s\"", (unsigned long long)old->group,
					(unsigned long long)old->epoch, qfs_strerror(src));
		}
		clear_frozen(r);
		QFS_LOG(QFS_LOG_WARN, "split abandoned table=%llu group=%016llx new=%016llx err=\"%s\"",
			(unsigned long long)old->table, (unsigned long long)old->group,
			(unsigned long long)newg, qfs_strerror(rc));
		if (!qfs_meta_group_used(r->meta, newg))
			(void)qfs_cell_group_drop(r->cell, newg); /* else an open drops it */
		return rc;
	}
	test_stop(4);
	rc = router_refresh(r, old->table);
	for (int i = 0; i < 50; i++) {
		rc = settle_group(r, &left);
		if (rc == 0)
			break;
		usleep(100000);
	}
	if (rc) /* committed: the next open's repair finishes it */
		QFS_LOG(QFS_LOG_ERR, "split committed but the old group was not settled group=%016llx err=\"%s\"",
			(unsigned long long)left.group, qfs_strerror(rc));
	test_stop(5);
	clear_frozen(r);
	__atomic_fetch_add(&r->splits, 1, __ATOMIC_RELAXED);
	pthread_mutex_lock(&r->pst_mu); /* both halves get a size check of their own */
	for (struct pstat *st = r->pst[old->group % PC_BUCKETS]; st; st = st->next)
		if (st->group == old->group)
			st->size_checked = 0;
	pthread_mutex_unlock(&r->pst_mu);
	QFS_LOG(QFS_LOG_INFO, "partition split table=%llu group=%016llx new=%016llx epoch=%llu",
		(unsigned long long)old->table, (unsigned long long)old->group, (unsigned long long)newg,
		(unsigned long long)left.epoch);
	return 0;
}

/* ---- splits of a cluster mount (doc/cluster.md "Splits") ----
 *
 * Other mounts write the same tables and know nothing of this router's
 * freeze, so the order differs from split():
 *   0. claim the partition: an intent record in the meta group, one txn
 *      conditional on the partition's record and on no intent (exactly
 *      one router wins; the others drop their attempt, QFS_ECONFLICT);
 *   1. create N (placed on three AZs by the cell);
 *   2. fence G at E+1 first, conditional on its fence being at E (RANGE):
 *      from here every router's write to G at epoch E fails with
 *      QFS_ESTALE and waits (its stale retries), so none can land in G
 *      behind the copy; freeze locally, drain, finish prepared txns;
 *   3. N's fence, the copy (beating the intent);
 *   4. commit: the map and the intent's deletion in one meta txn,
 *      conditional on the intent as held (a taken-over split never
 *      commits);
 *   5. refresh; settle G, conditional on its fence being the one of
 *      step 2 (a later split of G may have fenced it since);
 *   6. unfreeze.
 * Abandoned before 4: the holder raises G's epoch in the map (range
 * unchanged) and deletes the intent in one meta txn conditional on the
 * intent as held, then moves G's fence forward to it (unsplit: a fence
 * never moves back).  A holder that died leaves its intent unchanged:
 * another router takes it over after LEASE_MS (intents_check) and does
 * the same.  Readers of other mounts
 * check the fence after each read (router_check_read). */

/* Read group's fence: 0 with *val (malloc'd, the caller frees it), *vl
 * and *f decoded (zeroed, so below any epoch, when undecodable), -ENOENT
 * (none: *f zeroed), or a read error. */
static int fence_read(struct qfs_router *r, qfs_group_t group, void **val, size_t *vl, struct qfs_meta_part *f)
{
	int rc = qfs_cell_get(r->cell, group, QFS_META_FENCE_KEY, QFS_META_FENCE_KEY_LEN, val, vl);

	memset(f, 0, sizeof(*f));
	if (rc == 0 && qfs_meta_fence_decode(*val, *vl, f) != 0)
		memset(f, 0, sizeof(*f));
	return rc;
}

/* Move p's group's fence forward to p (its epoch and range, the keys
 * outside deleted), never back: only while the stored fence's epoch is
 * below p's, each write conditional on the fence as read, so a later
 * split's fence stays.  0 (moved, or already at or past p's epoch), or an
 * error (the fence left as it was: writes at p's epoch wait, and the
 * repair of a write refused twice, or of the next open, moves it). */
static int fence_forward(struct qfs_router *r, const struct qfs_meta_part *p)
{
	int rc = 0;

	for (int i = 0; i < 10; i++) {
		struct qfs_meta_part f;
		void *val = NULL;
		size_t vl = 0;

		rc = fence_read(r, p->group, &val, &vl, &f);
		if (rc && rc != -ENOENT)
			return rc;
		if (rc == 0 && f.epoch >= p->epoch) {
			free(val);
			return 0; /* p's, or a later split's */
		}
		rc = settle_group_if(r, p, rc == 0 ? val : fence_absent, vl);
		free(val);
		if (rc != QFS_ECONFLICT)
			return rc;
	}
	return rc;
}

/* Undo the split of p (the stored map's record of the partition) that
 * intent in (stored exactly so) holds, without ever moving G's fence
 * back: a reset from E+1 to E writes the very bytes a later split's
 * fence had before it, so a late one (its writer paused past the lease)
 * would undo that split's fence.  One meta txn, conditional on p's record
 * and on in, raises p's epoch (range unchanged) to G's fence's when that
 * is step 2's (E+1, p's range), else above both, and deletes the intent;
 * then G's fence moves forward to it (fence_forward).  Routers at E meet
 * the fence, re-read the map and retry at the new epoch.  0 (the intent
 * is gone; a fence left behind is logged and left to the repair),
 * QFS_ECONFLICT (the intent or the record changed: a takeover or a later
 * split moved first, nothing done), or the meta txn's other errors (it
 * may have applied; the intent stays otherwise). */
static int unsplit(struct qfs_router *r, const struct qfs_meta_part *p, const struct qfs_meta_intent *in)
{
	struct qfs_meta_part f, np, same = *p;
	void *val = NULL;
	size_t vl = 0;
	uint64_t ne = p->epoch + 1;
	int rc = fence_read(r, p->group, &val, &vl, &f);

	if (rc && rc != -ENOENT)
		return rc;
	free(val);
	if (rc == 0 && f.epoch >= ne) {
		same.epoch = f.epoch;
		ne = fence_differs(&same, &f) ? f.epoch + 1 : f.epoch;
	}
	rc = qfs_meta_bump_claimed(r->meta, p, ne, in, &np);
	if (rc)
		return rc;
	int frc = fence_forward(r, &np);
	QFS_LOG(frc ? QFS_LOG_ERR : QFS_LOG_INFO, "split undone table=%llu group=%016llx epoch=%llu fence=%llu "
		"fence_moved=%d err=\"%s\"", (unsigned long long)p->table, (unsigned long long)p->group,
		(unsigned long long)ne, (unsigned long long)f.epoch, frc == 0, qfs_strerror(frc));
	return 0;
}

/* Undo a split of h's partition old (the record claimed) before its
 * commit.  bumped (step 2 may have happened): unsplit, which moves the
 * map and G's fence forward, never back; else only the intent's deletion
 * (G's fence untouched).  Then drop the new group.  Both conditional on
 * the intent as held: a holder taken over meanwhile (paused past the
 * lease) changes nothing.  Whatever fails is left to a takeover
 * (intents_check) or the repair. */
static void hold_abort(struct qfs_router *r, struct hold *h, const struct qfs_meta_part *old, int bumped)
{
	int rc = bumped ? unsplit(r, old, &h->in) : qfs_meta_intent_swap(r->meta, &h->in, NULL);

	if (rc) {
		QFS_LOG(rc == QFS_ECONFLICT ? QFS_LOG_WARN : QFS_LOG_ERR,
			"split intent lost table=%llu group=%016llx new=%016llx err=\"%s\"",
			(unsigned long long)old->table, (unsigned long long)old->group,
			(unsigned long long)h->in.newg, qfs_strerror(rc));
		return;
	}
	if (h->in.newg && !qfs_meta_group_used(r->meta, h->in.newg))
		(void)qfs_cell_group_drop(r->cell, h->in.newg);
}

void router_test_abort(struct qfs_router *r, const struct qfs_meta_intent *in, const struct qfs_meta_part *old)
{
	struct hold h = { *in, qfs_clock_mono_ms() };

	hold_abort(r, &h, old, 1);
}

static int split_cluster(struct qfs_router *r, const struct qfs_meta_part *old, const uint8_t *k, size_t kl)
{
	struct qfs_meta_part nf = *old, g = *old, left, right;
	struct qfs_meta_rec rec, grec;
	struct qfs_txn t;
	struct qfs_op *op;
	struct hold h;
	uint8_t ep[8];
	qfs_ino_t newg;
	int rc;

	if (!qfs_meta_part_has(old, k, kl) || qfs_meta_keycmp(k, kl, old->lo, old->lo_len) == 0 ||
	    qfs_meta_keycmp(k, kl, QFS_META_ITEMS_FIRST, QFS_META_ITEMS_FIRST_LEN) <= 0)
		return -EINVAL;
	rc = qfs_router_alloc_ino(r, &newg); /* group ids are never reused */
	if (rc)
		return rc;
	memset(&h, 0, sizeof(h));
	h.in.table = old->table;
	h.in.group = old->group;
	h.in.owner = r->nonce;
	h.in.beat = 1;
	h.in.newg = newg;
	h.in.epoch = old->epoch;
	rc = qfs_meta_intent_claim(r->meta, old, &h.in);
	if (rc == QFS_ECONFLICT) { /* another router splits it, or split it */
		QFS_LOG(QFS_LOG_INFO, "split left to another router table=%llu group=%016llx epoch=%llu",
			(unsigned long long)old->table, (unsigned long long)old->group,
			(unsigned long long)old->epoch);
		if (qfs_meta_reload_table(r->meta, old->table) == 0)
			(void)router_refresh(r, old->table);
		return rc;
	}
	if (rc) /* maybe claimed: a takeover clears it after the lease */
		return rc;
	h.last_ms = qfs_clock_mono_ms();
	rc = qfs_cell_group_create(r->cell, newg);
	if (rc) {
		hold_abort(r, &h, old, 0);
		return rc;
	}
	test_stop(1);
	/* step 2: fence G at E+1 (range unchanged) only if it is at E */
	g.epoch = old->epoch + 1;
	qfs_meta_rec_init(&grec);
	qfs_txn_init(&t);
	op = qfs_txn_add(&t, QFS_OP_RANGE);
	if (!op) {
		rc = -ENOMEM;
	} else {
		qfs_be64_put(ep, old->epoch);
		op->key = QFS_META_FENCE_KEY;
		op->key_len = QFS_META_FENCE_KEY_LEN;
		op->val = ep;
		op->val_len = 8;
		op->err = QFS_ESTALE;
		rc = qfs_meta_add_fence(&t, &grec, &g);
	}
	if (rc == 0)
		rc = propose_txn(r, old->group, &t);
	qfs_txn_close(&t);
	if (rc) { /* QFS_ESTALE: a fence this split did not write (left over: the repair's) */
		QFS_LOG(QFS_LOG_WARN, "split abandoned: old group not fenced table=%llu group=%016llx "
			"new=%016llx err=\"%s\"", (unsigned long long)old->table, (unsigned long long)old->group,
			(unsigned long long)newg, qfs_strerror(rc));
		hold_abort(r, &h, old, rc != QFS_ESTALE && rc != -ENOMEM);
		goto out;
	}
	rc = set_frozen(r, old, k, kl);
	if (rc) {
		QFS_LOG(QFS_LOG_WARN, "split abandoned: prepared cross-partition txns not finished "
			"table=%llu group=%016llx new=%016llx err=\"%s\"", (unsigned long long)old->table,
			(unsigned long long)old->group, (unsigned long long)newg, qfs_strerror(rc));
		hold_abort(r, &h, old, 1);
		goto out;
	}
	test_stop(2);
	memcpy(nf.lo, k, kl);
	nf.lo_len = (uint32_t)kl;
	nf.group = newg;
	nf.epoch = old->epoch + 1;
	qfs_meta_rec_init(&rec);
	qfs_txn_init(&t);
	rc = qfs_meta_add_fence(&t, &rec, &nf);
	if (rc == 0)
		rc = propose_txn(r, newg, &t);
	qfs_txn_close(&t);
	qfs_meta_rec_close(&rec);
	if (rc == 0)
		rc = copy_range(r, old->group, newg, k, kl, old->hi_len ? old->hi : key_end,
				old->hi_len ? old->hi_len : sizeof(key_end), &h);
	if (rc == 0) {
		test_stop(3);
		rc = qfs_meta_split_claimed(r->meta, old, k, kl, newg, &h.in, &left, &right); /* the commit point */
		if (rc && rc != QFS_ECONFLICT && rc != -EINVAL)
			rc = commit_outcome(r, old, k, kl, newg, rc, &left, &right);
	}
	if (rc == QFS_EUNKNOWN_SPLIT) { /* the intent stays: a takeover, or the repair, settles it */
		clear_frozen(r);
		QFS_LOG(QFS_LOG_ERR, "split outcome unknown table=%llu group=%016llx new=%016llx err=\"%s\"",
			(unsigned long long)old->table, (unsigned long long)old->group,
			(unsigned long long)newg, qfs_strerror(-ETIMEDOUT));
		rc = -ETIMEDOUT;
		goto out;
	}
	if (rc) {
		hold_abort(r, &h, old, 1);
		clear_frozen(r);
		QFS_LOG(QFS_LOG_WARN, "split abandoned table=%llu group=%016llx new=%016llx err=\"%s\"",
			(unsigned long long)old->table, (unsigned long long)old->group,
			(unsigned long long)newg, qfs_strerror(rc));
		goto out;
	}
	test_stop(4);
	(void)router_refresh(r, old->table);
	for (int i = 0; i < 50; i++) {
		rc = settle_group_if(r, &left, grec.val.data, grec.val.len);
		if (rc == 0 || rc == QFS_ECONFLICT) /* conflict: fenced again by a later split */
			break;
		usleep(100000);
	}
	if (rc && rc != QFS_ECONFLICT) /* committed: the repair finishes it */
		QFS_LOG(QFS_LOG_ERR, "split committed but the old group was not settled group=%016llx err=\"%s\"",
			(unsigned long long)left.group, qfs_strerror(rc));
	rc = 0;
	test_stop(5);
	clear_frozen(r);
	__atomic_fetch_add(&r->splits, 1, __ATOMIC_RELAXED);
	pthread_mutex_lock(&r->pst_mu); /* both halves get a size check of their own */
	for (struct pstat *st = r->pst[old->group % PC_BUCKETS]; st; st = st->next)
		if (st->group == old->group)
			st->size_checked = 0;
	pthread_mutex_unlock(&r->pst_mu);
	QFS_LOG(QFS_LOG_INFO, "partition split table=%llu group=%016llx new=%016llx epoch=%llu cluster=1",
		(unsigned long long)old->table, (unsigned long long)old->group, (unsigned long long)newg,
		(unsigned long long)left.epoch);
out:
	qfs_meta_rec_close(&grec);
	return rc;
}

/* Take over intent in (seen unchanged for the lease: its holder is gone)
 * and undo its split (unsplit: the map's epoch and G's fence move
 * forward, the intent is deleted), its new group dropped.  split_run_mu
 * held.  A swap that fails means the holder (or another router) moved
 * first: nothing to do. */
static void takeover(struct qfs_router *r, const struct qfs_meta_intent *in)
{
	struct qfs_meta_intent nw = *in;
	struct qfs_meta_part *v = NULL;
	size_t n = 0;
	int rc, found = 0;

	nw.owner = r->nonce;
	nw.beat = in->beat + 1;
	if (qfs_meta_intent_swap(r->meta, in, &nw) != 0)
		return;
	QFS_LOG(QFS_LOG_WARN, "split intent taken over table=%llu group=%016llx owner=%016llx new=%016llx",
		(unsigned long long)in->table, (unsigned long long)in->group, (unsigned long long)in->owner,
		(unsigned long long)in->newg);
	rc = qfs_meta_reload_table(r->meta, in->table);
	if (rc == 0)
		rc = qfs_meta_parts(r->meta, in->table, &v, &n);
	for (size_t i = 0; rc == 0 && i < n && !found; i++)
		if (v[i].group == in->group) { /* an intent's split never committed (the commit deletes it) */
			rc = unsplit(r, &v[i], &nw);
			found = 1;
		}
	free(v);
	if (rc == 0 && !found) /* the table is gone */
		rc = qfs_meta_intent_swap(r->meta, &nw, NULL);
	if (rc) { /* the intent stays ours, unchanged: the next takeover tries again */
		QFS_LOG(QFS_LOG_ERR, "cannot undo a split taken over group=%016llx err=\"%s\"",
			(unsigned long long)in->group, qfs_strerror(rc));
		return;
	}
	if (in->newg && !qfs_meta_group_used(r->meta, in->newg))
		(void)qfs_cell_group_drop(r->cell, in->newg);
	(void)router_refresh(r, in->table);
}

/* Read the intents of table (0: all), note since when each has not
 * changed, and take over those unchanged for LEASE_MS.  split_run_mu
 * held (so no split of this router runs: its own leftovers are taken
 * over like the others').  Returns how many intents of table exist
 * after, or a read error. */
static int intents_check(struct qfs_router *r, qfs_table_t table)
{
	struct qfs_meta_intent v[SEEN_MAX];
	struct seen_intent nseen[SEEN_MAX];
	uint64_t since[SEEN_MAX];
	size_t n = 0, k = 0;
	uint64_t now = qfs_clock_mono_ms();
	int rc = qfs_meta_intents(r->meta, table, v, SEEN_MAX, &n), left = 0;

	if (rc)
		return rc;
	if (!r->seen) {
		r->seen = calloc(SEEN_MAX, sizeof(*r->seen));
		if (!r->seen)
			return -ENOMEM;
	}
	for (size_t i = 0; i < r->nseen && k < SEEN_MAX; i++) /* other tables' entries stay */
		if (table && r->seen[i].in.table != table)
			nseen[k++] = r->seen[i];
	for (size_t i = 0; i < n; i++) {
		since[i] = now;
		for (size_t j = 0; j < r->nseen; j++)
			if (!memcmp(&r->seen[j].in, &v[i], sizeof(v[i])))
				since[i] = r->seen[j].since_ms;
		if (k < SEEN_MAX) {
			nseen[k].in = v[i];
			nseen[k++].since_ms = since[i];
		}
	}
	memcpy(r->seen, nseen, k * sizeof(nseen[0]));
	r->nseen = k;
	for (size_t i = 0; i < n; i++) {
		if (now - since[i] >= (router_test_lease_ms ? router_test_lease_ms : LEASE_MS))
			takeover(r, &v[i]);
		else
			left++;
	}
	return left;
}

/* Cluster mode's fence repair of table (split_run_mu held): take over
 * dead splits' intents, then settle each partition whose group's fence
 * is not the map's.  A fence at the map's epoch with another range is a
 * committed split not settled yet: settled conditional on the fence seen.
 * A fence at another epoch is a split's (running: its intent exists, left
 * alone) or a leftover: settled under an intent of our own, so no split
 * fences G meanwhile. */
static int cluster_fence_repair(struct qfs_router *r, qfs_table_t table)
{
	struct qfs_meta_intent iv[SEEN_MAX];
	struct qfs_meta_part *v = NULL;
	size_t n = 0, ni = 0;
	int rc;

	(void)intents_check(r, table);
	rc = qfs_meta_reload_table(r->meta, table); /* judge by the stored map only */
	if (rc == 0)
		rc = qfs_meta_parts(r->meta, table, &v, &n);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		struct qfs_meta_part f;
		void *val;
		size_t vl;
		int grc = qfs_cell_get(r->cell, v[i].group, QFS_META_FENCE_KEY, QFS_META_FENCE_KEY_LEN, &val, &vl);
		int held = 0;

		if (grc && grc != -ENOENT)
			continue; /* cannot serve: its writes fail by themselves */
		memset(&f, 0, sizeof(f));
		if (grc == 0 && qfs_meta_fence_decode(val, vl, &f) != 0)
			f.epoch = UINT64_MAX;
		if (!fence_differs(&v[i], &f)) {
			if (grc == 0)
				free(val);
			continue;
		}
		if (grc == 0 && f.epoch == v[i].epoch) { /* committed, not settled */
			int src = settle_group_if(r, &v[i], val, vl);
			free(val);
			if (src != QFS_ECONFLICT)
				QFS_LOG(src ? QFS_LOG_ERR : QFS_LOG_WARN,
					"partition fence repaired table=%llu group=%016llx epoch=%llu err=\"%s\"",
					(unsigned long long)table, (unsigned long long)v[i].group,
					(unsigned long long)v[i].epoch, qfs_strerror(src));
			continue;
		}
		if (grc == 0)
			free(val);
		if (qfs_meta_intents(r->meta, table, iv, SEEN_MAX, &ni) != 0)
			continue;
		for (size_t j = 0; j < ni; j++)
			held |= iv[j].group == v[i].group;
		if (held) /* a split runs (or a dead one waits for its takeover) */
			continue;
		struct qfs_meta_intent in = { table, v[i].group, r->nonce, 1, 0, v[i].epoch };
		if (qfs_meta_intent_claim(r->meta, &v[i], &in) != 0)
			continue;
		int src = unsplit(r, &v[i], &in); /* forward, never back; else the intent stays: a takeover retries */
		QFS_LOG(src ? QFS_LOG_ERR : QFS_LOG_WARN,
			"partition fence repaired table=%llu group=%016llx epoch=%llu fence=%llu err=\"%s\"",
			(unsigned long long)table, (unsigned long long)v[i].group, (unsigned long long)v[i].epoch,
			(unsigned long long)f.epoch, qfs_strerror(src));
	}
	free(v);
	return rc;
}

int router_test_cluster_reads; /* test hook, see router_int.h */

int router_check_read(struct qfs_router *r, const struct qfs_meta_part *p, const uint8_t *key, size_t key_len)
{
	struct qfs_meta_part f, m;
	void *val;
	size_t vl;
	int rc;

	if (!qfs_cell_remote(r->cell) && !router_test_cluster_reads)
		return 0;
	rc = qfs_cell_get(r->cell, p->group, QFS_META_FENCE_KEY, QFS_META_FENCE_KEY_LEN, &val, &vl);
	if (rc && rc != -ENOENT)
		return rc;
	memset(&f, 0, sizeof(f));
	if (rc == 0) {
		if (qfs_meta_fence_decode(val, vl, &f) != 0)
			f.epoch = UINT64_MAX;
		free(val);
	}
	if (f.epoch == p->epoch)
		return 0; /* read before any split of p fenced it: good */
	/* fenced: good if the split has not committed yet (the map read after
	 * the read still places the key in p at its epoch) */
	rc = qfs_meta_reload_table(r->meta, p->table);
	if (rc)
		return rc;
	qfs_meta_lookup(r->meta, p->table, key, key_len, &m);
	if (m.group == p->group && m.epoch == p->epoch)
		return 0;
	(void)router_refresh(r, p->table);
	return 1;
}

int qfs_router_split(struct qfs_router *r, qfs_table_t table, const uint8_t *key, size_t key_len)
{
	struct qfs_meta_part p;
	int rc;

	if (table == QFS_META_TABLE)
		return -EINVAL;
	/* one split at a time; the partition is looked up once the running
	 * one is done (it may have moved the key elsewhere) */
	pthread_mutex_lock(&r->split_run_mu);
	qfs_meta_lookup(r->meta, table, key, key_len, &p);
	rc = split(r, &p, key, key_len);
	pthread_mutex_unlock(&r->split_run_mu);
	return rc;
}

/* ---- split checks (the background thread) ---- */

static int count_cb(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, void *arg)
{
	struct copy_ctx *c = arg;

	if (qfs_meta_is_fence(k, kl) || kl > QFS_KEY_MAX)
		return 0;
	c->bytes += kl + vl;
	c->items_seen++;
	if (c->limit && c->mid_len == 0 && c->bytes >= c->limit / 2) {
		memcpy(c->mid, k, kl);
		c->mid_len = kl;
	}
	return c->limit && c->bytes > c->limit;
}

/* ---- the size check's walk: bytes of a partition without its file data ----
 *
 * A file's chunks (sk "\0c" + number) sort right before its inode ("\0i")
 * under the same key prefix, and the inode holds the file's size.  So the
 * walk reads the partition in key order but, at the first chunk of a file,
 * stops and goes on at the file's inode: the file's other chunks count as
 * its size past that chunk (keys included), never read (the bytes before
 * it are not counted: a partition whose lo cuts the file holds only the
 * chunks from there on).  A check then reads one chunk per
 * file, not every byte (after a mount it read every chunk of the
 * partition, with RocksDB's blob checks: half the daemon's CPU during a
 * cold read of a large file).  The count is an estimate: a sparse file
 * counts as its size from its first chunk on.  Without an inode right
 * after the jump (an orphan's chunks), the walk goes back and reads that
 * prefix's chunks. */
struct size_walk {
	uint64_t bytes;         /* keys + values counted (file chunks estimated) */
	uint64_t limit;         /* stop once bytes > limit (0: never) */
	uint8_t mid[QFS_KEY_MAX];
	size_t mid_len;         /* the key at which bytes reached limit / 2 */
	qfs_ino_t jump_ino;     /* a chunk of this ino stopped the walk (0: none) */
	uint64_t jump_chunk;    /* that chunk's number */
	uint64_t jump_vl;       /* bytes of that chunk's value, counted */
	uint8_t back[QFS_KEY_MAX + 1];
	size_t back_len;        /* the key just after that chunk */
	uint8_t exact[QFS_KEY_PREFIX_LEN];
	int exact_set;          /* chunks of prefix exact are read, no jump */
	uint8_t resume[QFS_KEY_MAX + 1];
	size_t resume_len;      /* the walk stopped to go on at resume (0: done) */
	uint32_t scans;         /* cell scans the walk ran */
};

static void size_add(struct size_walk *w, const uint8_t *k, size_t kl, uint64_t n)
{
	w->bytes += n;
	if (w->limit && w->mid_len == 0 && w->bytes >= w->limit / 2) {
		memcpy(w->mid, k, kl);
		w->mid_len = kl;
	}
}

/* After a jump over ino's chunks: the item the walk went on at is k. */
static int size_landed(struct size_walk *w, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl,
		       const struct qfs_key *key, int parsed)
{
	qfs_ino_t ino = w->jump_ino;
	struct qfs_attr a;

	w->jump_ino = 0;
	if (!parsed || key->kind != QFS_KEY_INODE || key->pk != ino) {
		/* no inode: read the prefix's chunks after the one counted */
		memcpy(w->exact, w->back, QFS_KEY_PREFIX_LEN);
		w->exact_set = 1;
		memcpy(w->resume, w->back, w->back_len);
		w->resume_len = w->back_len;
		return 1;
	}
	if (qfs_inode_decode_attr(v, vl, &a) == 0 && S_ISREG(a.mode) && !(a.flags & QFS_ATTR_INLINE)) {
		/* the file from the chunk the walk met on: when lo cuts the
		 * file, the chunks before it are another partition's */
		uint64_t nchunks = a.size / QFS_CHUNK_SIZE + (a.size % QFS_CHUNK_SIZE != 0);
		uint64_t from = w->jump_chunk < nchunks ? w->jump_chunk * QFS_CHUNK_SIZE : a.size;
		uint64_t rest = a.size - from > w->jump_vl ? a.size - from - w->jump_vl : 0;
		if (w->jump_chunk < nchunks && nchunks - w->jump_chunk > 1)
			rest += (nchunks - w->jump_chunk - 1) * (QFS_KEY_PREFIX_LEN + 10); /* their keys */
		size_add(w, k, kl, rest);
	}
	return 0;
}

static int size_cb(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, void *arg)
{
	struct size_walk *w = arg;
	struct qfs_key key;
	int parsed, rc;

	if (qfs_meta_is_fence(k, kl) || kl > QFS_KEY_MAX)
		return 0;
	parsed = qfs_key_parse(k, kl, &key) == 0;
	if (w->jump_ino && (rc = size_landed(w, k, kl, v, vl, &key, parsed)) != 0)
		return rc;
	if (w->exact_set && (kl < QFS_KEY_PREFIX_LEN || memcmp(k, w->exact, QFS_KEY_PREFIX_LEN)))
		w->exact_set = 0;
	size_add(w, k, kl, kl + vl);
	if (w->limit && w->bytes > w->limit)
		return 1;
	if (parsed && key.kind == QFS_KEY_CHUNK && !w->exact_set) {
		w->jump_ino = key.pk;
		w->jump_chunk = key.chunk;
		w->jump_vl = vl;
		memcpy(w->back, k, kl);
		w->back[kl] = 0; /* the next key after k */
		w->back_len = kl + 1;
		w->resume_len = qfs_key_inode(w->resume, key.pk);
		return 1;
	}
	return 0;
}

/* See router_int.h. */
int router_part_size(struct qfs_router *r, const struct qfs_meta_part *p, uint64_t limit, uint64_t *bytes,
		     uint8_t *mid, size_t *mid_len, uint32_t *scans)
{
	const uint8_t *hi = p->hi_len ? p->hi : key_end;
	size_t hi_len = p->hi_len ? p->hi_len : sizeof(key_end);
	uint8_t cur[QFS_KEY_MAX + 1];
	size_t cur_len;
	struct size_walk *w = calloc(1, sizeof(*w));
	int rc;

	if (!w)
		return -ENOMEM;
	w->limit = limit;
	cur_len = p->lo_len ? p->lo_len : QFS_META_ITEMS_FIRST_LEN;
	memcpy(cur, p->lo_len ? p->lo : QFS_META_ITEMS_FIRST, cur_len);
	for (;;) {
		w->resume_len = 0;
		w->scans++;
		rc = qfs_cell_scan(r->cell, p->group, cur, cur_len, hi, hi_len, size_cb, w);
		if (rc < 0)
			goto out;
		if (rc == 0 && w->jump_ino) { /* the walk ended after a jump: no inode */
			w->jump_ino = 0;
			memcpy(w->exact, w->back, QFS_KEY_PREFIX_LEN);
			w->exact_set = 1;
			memcpy(w->resume, w->back, w->back_len);
			w->resume_len = w->back_len;
		}
		if (!w->resume_len || (w->limit && w->bytes > w->limit))
			break;
		memcpy(cur, w->resume, w->resume_len);
		cur_len = w->resume_len;
	}
	rc = 0;
	*bytes = w->bytes;
	if (mid) {
		memcpy(mid, w->mid, w->mid_len);
		*mid_len = w->mid_len;
	}
	if (scans)
		*scans = w->scans;
out:
	free(w);
	return rc;
}

static int key_cmp_q(const void *a, const void *b, void *arg)
{
	const struct pstat *st = arg;
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return qfs_meta_keycmp(st->sample[x], st->sample_len[x], st->sample[y], st->sample_len[y]);
}

/* One candidate: table/group to split and the key, chosen under pst_mu. */
struct cand {
	qfs_table_t table;
	qfs_group_t group;
	int by_load;
	int sampled;                   /* key holds the requests' median */
	int done;                      /* a split was made */
	size_t key_len;
	uint8_t key[QFS_KEY_MAX];
};

/* The median of st's sampled keys into c (pst_mu held).  1 if any. */
static int pick_load_key(struct pstat *st, struct cand *c)
{
	uint32_t idx[PST_SAMPLES];

	if (st->nsample == 0)
		return 0;
	for (uint32_t i = 0; i < st->nsample; i++)
		idx[i] = i;
	qsort_r(idx, st->nsample, sizeof(idx[0]), key_cmp_q, st);
	uint32_t m = idx[st->nsample / 2];
	c->key_len = st->sample_len[m];
	memcpy(c->key, st->sample[m], c->key_len);
	return 1;
}

/* A split key inside a file (its inode or chunk items) moves to the end
 * of the file's items (the next partition key's prefix), so one file's
 * inode and chunks stay in one partition (its writes stay single-partition
 * txns) and a split never copies a large file it falls into; dentry keys
 * stay as they are, so a large directory can be cut anywhere. */
static void round_up(uint8_t *key, size_t *key_len)
{
	struct qfs_key k;

	if (qfs_key_parse(key, *key_len, &k) != 0 || k.kind == QFS_KEY_DENTRY)
		return;
	*key_len = QFS_KEY_PREFIX_LEN;
	for (int i = QFS_KEY_PREFIX_LEN - 1; i >= 0; i--) /* + 1, big-endian */
		if (++key[i] != 0)
			break;
}

static void round_key(struct cand *c)
{
	round_up(c->key, &c->key_len);
}

/* 1 if key lies strictly inside [lo, hi) (hi_len 0: no end): a key a
 * partition can be split at. */
static int cuts(const uint8_t *lo, size_t lo_len, const uint8_t *hi, size_t hi_len,
		const uint8_t *key, size_t key_len)
{
	return qfs_meta_keycmp(key, key_len, lo, lo_len) > 0 &&
	       (hi_len == 0 || qfs_meta_keycmp(key, key_len, hi, hi_len) < 0);
}

/* See router.h.  The median rounded up to the end of its file (round_up)
 * falls at or past hi when the file ends the partition (a hot file
 * written at the end of its range); the start of that file (its key
 * prefix, which sorts before all its items) is then the nearest key that
 * keeps the file whole. */
int qfs_router_load_split_key(const uint8_t *lo, size_t lo_len, const uint8_t *hi, size_t hi_len,
			      uint8_t *key, size_t *key_len, const char **why)
{
	uint8_t up[QFS_KEY_MAX];
	size_t up_len = *key_len;
	struct qfs_key k;

	if (*key_len == 0 || *key_len > QFS_KEY_MAX ||
	    qfs_meta_keycmp(key, *key_len, lo, lo_len) < 0 ||
	    (hi_len && qfs_meta_keycmp(key, *key_len, hi, hi_len) >= 0)) {
		*why = "median key outside the partition";
		return -ERANGE;
	}
	memcpy(up, key, up_len);
	round_up(up, &up_len);
	if (cuts(lo, lo_len, hi, hi_len, up, up_len)) {
		memcpy(key, up, up_len);
		*key_len = up_len;
		return 0;
	}
	if (qfs_key_parse(key, *key_len, &k) == 0 && k.kind != QFS_KEY_DENTRY &&
	    cuts(lo, lo_len, hi, hi_len, key, QFS_KEY_PREFIX_LEN)) {
		*key_len = QFS_KEY_PREFIX_LEN; /* the start of the file */
		return 0;
	}
	*why = up_len == *key_len ? "median key is the partition's first key"
				  : "one file spans the partition around the median key";
	return -ERANGE;
}

static void check_splits(struct qfs_router *r)
{
	struct qfs_router_split_cfg cfg;
	struct cand *cands = NULL;
	size_t nc = 0, cap = 0;
	uint64_t now = qfs_clock_mono_ms();

	pthread_mutex_lock(&r->split_mu);
	cfg = r->split_cfg;
	pthread_mutex_unlock(&r->split_mu);
	if (qfs_cell_remote(r->cell)) { /* dead routers' splits: take them over after the lease */
		pthread_mutex_lock(&r->split_run_mu);
		(void)intents_check(r, 0);
		pthread_mutex_unlock(&r->split_run_mu);
	}
	pthread_mutex_lock(&r->pst_mu);
	for (unsigned b = 0; b < PC_BUCKETS; b++)
		for (struct pstat *st = r->pst[b]; st; st = st->next) {
			int load = 0, size = 0;
			pst_roll(r, st, now);
			if (cfg.split_ops > 0 && st->hot_since_ms && now - st->hot_since_ms >= cfg.window_ms)
				load = 1;
			if (cfg.split_bytes &&
			    (!st->size_checked || st->written >= (st->size_backoff ? cfg.split_bytes : cfg.split_bytes / 8)))
				size = 1;
			if (!load && !size)
				continue;
			if (nc == cap) {
				size_t ncap = cap ? cap * 2 : 8;
				struct cand *n2 = realloc(cands, ncap * sizeof(*n2));
				if (!n2)
					break;
				cands = n2;
				cap = ncap;
			}
			struct cand *c = &cands[nc];
			c->done = 0;
			c->table = st->table;
			c->group = st->group;
			c->sampled = pick_load_key(st, c);
			c->by_load = load && c->sampled;
			if (c->by_load) {
				st->hot_since_ms = 0;
				st->seen = st->nsample = 0;
			} else if (!size) {
				continue;
			} else {
				st->size_checked = 1;
				st->size_backoff = 0;
				st->written = 0;
			}
			nc++;
		}
	pthread_mutex_unlock(&r->pst_mu);

	for (size_t i = 0; i < nc; i++) {
		struct cand *c = &cands[i];
		struct qfs_meta_part *v = NULL, *p = NULL;
		size_t n = 0;

		pthread_mutex_lock(&r->split_run_mu); /* one split at a time, map read after */
		if (qfs_meta_parts(r->meta, c->table, &v, &n) != 0) {
			pthread_mutex_unlock(&r->split_run_mu);
			continue;
		}
		for (size_t j = 0; j < n; j++)
			if (v[j].group == c->group)
				p = &v[j];
		if (p && !c->by_load) { /* size: estimate the partition's, up to split_bytes */
			uint64_t bytes = 0;
			uint8_t mid[QFS_KEY_MAX];
			size_t mid_len = 0;
			if (router_part_size(r, p, cfg.split_bytes, &bytes, mid, &mid_len, NULL) == 0 &&
			    bytes > cfg.split_bytes && mid_len) {
				/* the requests' median when it cuts the
				 * partition, else the bytes' */
				round_key(c);
				if (!c->sampled || !qfs_meta_part_has(p, c->key, c->key_len) ||
				    qfs_meta_keycmp(c->key, c->key_len, p->lo, p->lo_len) <= 0) {
					memcpy(c->key, mid, mid_len);
					c->key_len = mid_len;
				}
			} else {
				p = NULL;
			}
		}
		if (p && c->by_load) {
			const char *why = NULL;
			if (qfs_router_load_split_key(p->lo, p->lo_len, p->hi, p->hi_len, c->key,
						      &c->key_len, &why) != 0) {
				QFS_LOG(QFS_LOG_INFO, "split by load skipped table=%llu group=%016llx why=\"%s\"",
					(unsigned long long)c->table, (unsigned long long)c->group, why);
				p = NULL;
			}
		} else if (p) {
			round_key(c);
		}
		if (p && qfs_meta_part_has(p, c->key, c->key_len) &&
		    qfs_meta_keycmp(c->key, c->key_len, p->lo, p->lo_len) > 0) {
			int rc = split(r, p, c->key, c->key_len);
			/* QFS_ECONFLICT: another router of the cluster splits it (logged) */
			QFS_LOG(rc == QFS_ECONFLICT ? QFS_LOG_DEBUG : rc ? QFS_LOG_WARN : QFS_LOG_INFO,
				"split by %s table=%llu group=%016llx err=\"%s\"",
				c->by_load ? "load" : "size", (unsigned long long)c->table,
				(unsigned long long)c->group, qfs_strerror(rc));
			c->done = rc == 0;
		}
		pthread_mutex_unlock(&r->split_run_mu);
		free(v);
	}
	/* a size check that found no split (small, or one file larger than
	 * split_bytes) waits for split_bytes more writes, not split_bytes / 8 */
	pthread_mutex_lock(&r->pst_mu);
	for (size_t i = 0; i < nc; i++)
		if (!cands[i].by_load && !cands[i].done)
			for (struct pstat *st = r->pst[cands[i].group % PC_BUCKETS]; st; st = st->next)
				if (st->group == cands[i].group)
					st->size_backoff = 1;
	pthread_mutex_unlock(&r->pst_mu);
	free(cands);
}

static void *split_main(void *arg)
{
	struct qfs_router *r = arg;

	pthread_mutex_lock(&r->split_mu);
	while (!r->split_stop) {
		struct timespec ts;
		uint32_t ms = r->split_cfg.check_ms ? r->split_cfg.check_ms : QFS_ROUTER_SPLIT_CHECK_DEFAULT_MS;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += ms / 1000;
		ts.tv_nsec += (long)(ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&r->split_cv, &r->split_mu, &ts);
		if (r->split_stop)
			break;
		pthread_mutex_unlock(&r->split_mu);
		check_splits(r);
		pthread_mutex_lock(&r->split_mu);
	}
	pthread_mutex_unlock(&r->split_mu);
	return NULL;
}

int qfs_router_split_config(struct qfs_router *r, const struct qfs_router_split_cfg *cfg)
{
	int rc = 0;

	pthread_mutex_lock(&r->split_mu);
	r->split_cfg = *cfg;
	if (!r->split_cfg.window_ms)
		r->split_cfg.window_ms = QFS_ROUTER_SPLIT_WINDOW_DEFAULT_MS;
	if (!r->split_running && !r->split_stop && (cfg->split_bytes || cfg->split_ops > 0)) {
		rc = -pthread_create(&r->split_thread, NULL, split_main, r);
		r->split_running = rc == 0;
	}
	pthread_mutex_unlock(&r->split_mu);
	return rc;
}

/* ---- open / close ---- */

/* Finish splits a crash interrupted after their commit point: every
 * partition's group must hold its fence; settle those that do not. */
static int repair_table_cb(const struct qfs_table *t, void *arg)
{
	struct qfs_router *r = arg;
	int rc;

	pthread_mutex_lock(&r->split_run_mu);
	rc = cluster_fence_repair(r, t->id);
	pthread_mutex_unlock(&r->split_run_mu);
	if (rc)
		QFS_LOG(QFS_LOG_WARN, "cannot check a table's partition fences table=%llu err=\"%s\"",
			(unsigned long long)t->id, qfs_strerror(rc));
	return 0;
}

static int repair(struct qfs_router *r)
{
	struct qfs_meta_part *v = NULL;
	size_t n = 0;
	int rc = 0;

	if (qfs_cell_remote(r->cell)) { /* other routers may be splitting: their intents rule */
		(void)qfs_router_table_list(r, "", repair_table_cb, r);
		return 0;
	}

	struct qfs_glist groups = { 0 };
	qfs_cell_groups(r->cell, qfs_glist_add, &groups);
	for (size_t i = 0; i < groups.n && rc == 0; i++) {
		struct qfs_meta_part p, f;
		void *val;
		size_t vl;
		if (groups.v[i] == QFS_META_GROUP || !qfs_meta_group_used(r->meta, groups.v[i]))
			continue;
		/* the group's own fence */
		int grc = qfs_cell_get(r->cell, groups.v[i], QFS_META_FENCE_KEY, QFS_META_FENCE_KEY_LEN, &val, &vl);
		if (grc && grc != -ENOENT) { /* a group that cannot serve: its own errors
					       * say so; the next open checks it again */
			QFS_LOG(QFS_LOG_WARN, "cannot read a partition's fence group=%016llx err=\"%s\"",
				(unsigned long long)groups.v[i], qfs_strerror(grc));
			continue;
		}
		memset(&f, 0, sizeof(f));
		if (grc == 0) {
			if (qfs_meta_fence_decode(val, vl, &f) != 0)
				f.epoch = UINT64_MAX;
			free(val);
		}
		/* the map's view of the group: find its table through the fence
		 * (or, absent, the legacy table of the same id) */
		qfs_table_t table = grc == 0 && f.epoch != UINT64_MAX ? f.table : groups.v[i];
		if (qfs_meta_parts(r->meta, table, &v, &n) != 0)
			continue;
		for (size_t j = 0; j < n; j++) {
			if (v[j].group != groups.v[i])
				continue;
			p = v[j];
			if (fence_differs(&p, &f)) {
				QFS_LOG(QFS_LOG_WARN, "finishing an interrupted split group=%016llx epoch=%llu fence=%llu",
					(unsigned long long)p.group, (unsigned long long)p.epoch,
					(unsigned long long)f.epoch);
				rc = settle_group(r, &p);
				if (rc) { /* the group cannot take it now: the next open will */
					QFS_LOG(QFS_LOG_ERR, "cannot finish an interrupted split group=%016llx err=\"%s\"",
						(unsigned long long)p.group, qfs_strerror(rc));
					rc = 0;
				}
			}
		}
		free(v);
		v = NULL;
	}
	qfs_glist_free(&groups);
	return rc;
}

int router_parts_open(struct qfs_router *r)
{
	int rc;

	r->cq = calloc(CQ_SIZE, sizeof(*r->cq));
	r->cq_batch = calloc(CQ_SIZE, sizeof(*r->cq_batch));
	if (!r->cq || !r->cq_batch) {
		free(r->cq);
		free(r->cq_batch);
		r->cq = r->cq_batch = NULL;
		return -ENOMEM;
	}
	/* finish the cross-partition txns a crash left prepared (their keys
	 * stay locked until then) before any split moves a range */
	struct qfs_glist all = { 0 };
	qfs_cell_groups(r->cell, qfs_glist_add, &all);
	rc = all.err ? all.err : xact_recover_all(r, all.v, all.n);
	qfs_glist_free(&all);
	if (rc) /* a group that cannot serve (stopped, no quorum) keeps its prepared
		 * txns, and their keys stay locked, until a later open finishes them */
		QFS_LOG(QFS_LOG_ERR, "cannot finish every prepared cross-partition txn err=\"%s\"", qfs_strerror(rc));
	rc = repair(r);
	if (rc)
		return rc;
	pthread_mutex_lock(&r->cq_mu);
	rc = -pthread_create(&r->cq_thread, NULL, cq_main, r);
	r->cq_running = rc == 0;
	pthread_mutex_unlock(&r->cq_mu);
	return rc;
}

void router_parts_close(struct qfs_router *r)
{
	pthread_mutex_lock(&r->split_mu);
	r->split_stop = 1; /* a split_config from now on starts no thread */
	int split_ran = r->split_running;
	r->split_running = 0; /* under split_mu, as split_config reads it */
	pthread_cond_broadcast(&r->split_cv);
	pthread_mutex_unlock(&r->split_mu);
	if (split_ran)
		pthread_join(r->split_thread, NULL);
	pthread_mutex_lock(&r->cq_mu);
	__atomic_store_n(&r->cq_stop, 1, __ATOMIC_RELAXED); /* also read by a pass, unlocked */
	int cq_ran = r->cq_running;
	r->cq_running = 0; /* under cq_mu, as cq_send reads it: a late request queues nothing */
	pthread_cond_broadcast(&r->cq_cv);
	pthread_mutex_unlock(&r->cq_mu);
	if (cq_ran)
		pthread_join(r->cq_thread, NULL);
	free(r->cq);
	free(r->cq_batch);
	r->cq = r->cq_batch = NULL;
	free(r->seen);
	r->seen = NULL;
	r->nseen = 0;
	for (unsigned b = 0; b < PC_BUCKETS; b++) {
		struct pc_table *e, *n;
		for (e = r->pc[b]; e; e = n) {
			n = e->next;
			free(e->parts);
			free(e);
		}
		r->pc[b] = NULL;
		struct pstat *st, *sn;
		for (st = r->pst[b]; st; st = sn) {
			sn = st->next;
			free(st);
		}
		r->pst[b] = NULL;
	}
}

/* ---- status ---- */

void router_parts_stats(struct qfs_router *r, struct qfs_buf *out)
{
	qfs_buf_printf(out,
		       "meta lookups_sent %llu coalesced %llu dropped %llu refreshed %llu stale_retries %llu served %llu splits %llu xacts %llu\n",
		       (unsigned long long)__atomic_load_n(&r->st_sent, __ATOMIC_RELAXED),
		       (unsigned long long)__atomic_load_n(&r->st_coalesced, __ATOMIC_RELAXED),
		       (unsigned long long)__atomic_load_n(&r->st_dropped, __ATOMIC_RELAXED),
		       (unsigned long long)__atomic_load_n(&r->st_refreshed, __ATOMIC_RELAXED),
		       (unsigned long long)__atomic_load_n(&r->st_stale, __ATOMIC_RELAXED),
		       (unsigned long long)qfs_meta_lookups(r->meta),
		       (unsigned long long)__atomic_load_n(&r->splits, __ATOMIC_RELAXED),
		       (unsigned long long)__atomic_load_n(&r->st_xacts, __ATOMIC_RELAXED));
}

static void put_hex(struct qfs_buf *out, const uint8_t *p, size_t n)
{
	if (n == 0) {
		qfs_buf_printf(out, "-");
		return;
	}
	for (size_t i = 0; i < n; i++)
		qfs_buf_printf(out, "%02x", p[i]);
}

struct plist_ctx {
	struct qfs_router *r;
	struct qfs_buf *out;
	struct qfs_buf status;  /* the cell's status, for the leaders */
};

/* Group's leader from the cell's status lines ("group G leader L ..."). */
static uint32_t leader_of(struct plist_ctx *pc, qfs_group_t group)
{
	char pat[64];
	const char *p;
	unsigned l = 0;

	if (pc->status.err || !pc->status.len)
		return 0;
	snprintf(pat, sizeof(pat), "group %016llx leader ", (unsigned long long)group);
	p = memmem(pc->status.data, pc->status.len, pat, strlen(pat));
	if (p && sscanf(p + strlen(pat), "%u", &l) != 1)
		l = 0;
	return l;
}

/* Node id's AZ from the cell's status lines ("node N az A ..."), into az;
 * "?" when the status does not say. */
static void az_of(struct plist_ctx *pc, uint32_t id, char *az, size_t len)
{
	char pat[32];
	const char *p;

	snprintf(az, len, "?");
	if (pc->status.err || !pc->status.len)
		return;
	snprintf(pat, sizeof(pat), "node %u az ", id);
	for (p = (const char *)pc->status.data; (p = strstr(p, pat)); p++)
		if (p == (const char *)pc->status.data || p[-1] == '\n') {
			size_t n = strcspn(p + strlen(pat), " \n");

			if (n && n < len)
				snprintf(az, len, "%.*s", (int)n, p + strlen(pat));
			return;
		}
}

/* " replicas N,N,N azs A,B,C": p's replica nodes from the map. */
static void put_replicas(struct plist_ctx *pc, const struct qfs_meta_part *p)
{
	char az[32];

	qfs_buf_printf(pc->out, " replicas ");
	for (uint32_t k = 0; k < p->nnodes; k++)
		qfs_buf_printf(pc->out, "%s%u", k ? "," : "", p->nodes[k]);
	qfs_buf_printf(pc->out, "%s azs ", p->nnodes ? "" : "-");
	for (uint32_t k = 0; k < p->nnodes; k++) {
		az_of(pc, p->nodes[k], az, sizeof(az));
		qfs_buf_printf(pc->out, "%s%s", k ? "," : "", az);
	}
	qfs_buf_printf(pc->out, "%s\n", p->nnodes ? "" : "-");
}

static int plist_table(const struct qfs_table *t, void *arg)
{
	struct plist_ctx *pc = arg;
	struct qfs_router *r = pc->r;
	struct qfs_meta_part *v = NULL;
	size_t n = 0;

	/* the stored map: another router or `quorumfs member` may have moved
	 * a replica (no epoch change tells this router) */
	(void)qfs_meta_reload_table(r->meta, t->id);
	if (qfs_meta_parts(r->meta, t->id, &v, &n) != 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		struct qfs_meta_part *p = &v[i];
		struct copy_ctx *cc = calloc(1, sizeof(*cc));
		double ops_s = 0;
		uint32_t leader = 0;

		if (cc)
			(void)qfs_cell_scan(r->cell, p->group, p->lo_len ? p->lo : QFS_META_ITEMS_FIRST,
					    p->lo_len ? p->lo_len : QFS_META_ITEMS_FIRST_LEN, p->hi_len ? p->hi : key_end,
					    p->hi_len ? p->hi_len : sizeof(key_end), count_cb, cc);
		pthread_mutex_lock(&r->pst_mu);
		for (struct pstat *st = r->pst[p->group % PC_BUCKETS]; st; st = st->next)
			if (st->group == p->group) {
				pst_roll(r, st, qfs_clock_mono_ms());
				ops_s = st->ops_s;
			}
		pthread_mutex_unlock(&r->pst_mu);
		leader = leader_of(pc, p->group);
		qfs_buf_printf(pc->out, "table ");
		qfs_buf_put_esc(pc->out, t->name);
		qfs_buf_printf(pc->out, " partition %zu group %016llx lo ", i, (unsigned long long)p->group);
		put_hex(pc->out, p->lo, p->lo_len);
		qfs_buf_printf(pc->out, " hi ");
		put_hex(pc->out, p->hi, p->hi_len);
		qfs_buf_printf(pc->out, " items %llu bytes %llu ops_s %.1f leader %u epoch %llu",
			       (unsigned long long)(cc ? cc->items_seen : 0), (unsigned long long)(cc ? cc->bytes : 0),
			       ops_s, leader, (unsigned long long)p->epoch);
		put_replicas(pc, p);
		free(cc);
	}
	free(v);
	return 0;
}

int qfs_router_table_nparts(struct qfs_router *r, qfs_table_t table, size_t *n)
{
	struct qfs_meta_part *v = NULL;
	int rc = qfs_meta_parts(r->meta, table, &v, n);

	free(v);
	if (rc == 0 && *n == 0)
		*n = 1;
	return rc;
}

void qfs_router_partitions(struct qfs_router *r, struct qfs_buf *out)
{
	struct plist_ctx pc = { r, out, { 0 } };

	qfs_buf_init(&pc.status);
	qfs_cell_status(r->cell, &pc.status);
	qfs_buf_put_u8(&pc.status, 0);
	qfs_router_table_list(r, "", plist_table, &pc);
	qfs_buf_close(&pc.status);
}
