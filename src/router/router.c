/*
 * router.c - item API over the cell (node/cell.h): tables in the meta group, inode
 * allocation, transactions and reads with client-side metrics.  Layout of the
 * meta group and the locking rules are in router.h.
 *
 * Lock order: r->tables_lock (rwlock) before r->alloc_mu and r->metrics_mu;
 * the cell's own locks are taken inside qfs_cell_* calls, after ours.
 * Admission (admit.h) waits before any of these locks is taken: a throttled
 * request holds none of the router's locks while it waits.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/glist.h"
#include "common/key.h"
#include "common/log.h"
#include "node/cell.h"
#include "router/admit.h"
#include "router/metrics.h"
#include "router/router.h"

#include "router/router_int.h"
#include "router/xact.h"

static const char *op_names[QFS_ROUTER_NOPS] = { "get", "txn", "scan" };

static struct table_metrics *metrics_for(struct qfs_router *r, qfs_table_t table)
{
	unsigned b = (unsigned)(table % METRICS_BUCKETS);
	struct table_metrics *m;

	pthread_mutex_lock(&r->metrics_mu);
	for (m = r->metrics[b]; m; m = m->next)
		if (m->table == table)
			break;
	if (!m) {
		m = calloc(1, sizeof(*m));
		if (m) {
			m->table = table;
			m->next = r->metrics[b];
			r->metrics[b] = m;
		}
	}
	pthread_mutex_unlock(&r->metrics_mu);
	return m;
}

static void record(struct qfs_router *r, qfs_table_t table, enum qfs_router_op op, uint64_t t0, int failed)
{
	struct table_metrics *m = metrics_for(r, table);

	if (m)
		qfs_hist_record(&m->op[op], qfs_clock_mono_ns() - t0, failed);
}

/* ---- admission (admit.h, doc/admission.md) ---- */

/* Load table's capacity from its table directory's inode (inode = table
 * id) into the admission control (keyed by table id), uncharged.  Unset or
 * unreadable: on-demand.  reset: the burst starts empty (it always does on
 * a first load). */
static void admit_load(struct qfs_router *r, qfs_table_t group, int reset)
{
	struct qfs_admit_cap cap = { .mode = QFS_ADMIT_ON_DEMAND };
	uint8_t key[QFS_KEY_MAX];
	size_t klen = qfs_key_inode(key, group), vlen;
	struct qfs_meta_part p;
	struct qfs_inode in;
	void *val;

	qfs_inode_init(&in);
	if (router_resolve(r, group, key, klen, &p) == 0 &&
	    qfs_cell_get(r->cell, p.group, key, klen, &val, &vlen) == 0) {
		if (qfs_inode_decode(val, vlen, &in) == 0) {
			for (uint32_t i = 0; i < in.nxattrs; i++) {
				const struct qfs_xattr *x = &in.xattrs[i];
				if (qfs_admit_parse(x->name, x->value, x->len, &cap) < 0)
					QFS_LOG(QFS_LOG_WARN, "ignoring a bad stored table setting group=%016llx name=%s",
						(unsigned long long)group, QFS_ESC_NAME(x->name));
			}
		}
		free(val);
	}
	qfs_inode_close(&in);
	qfs_admit_set(r->admit, group, &cap, reset, qfs_clock_mono_ns());
}

/* Admit a request of units on table, charged to the partition of key (the
 * meta table is not charged). */
static int admit(struct qfs_router *r, qfs_table_t group, const uint8_t *key, size_t key_len,
		 enum qfs_admit_kind kind, double units)
{
	if (group == QFS_META_TABLE)
		return 0;
	if (!qfs_admit_known(r->admit, group))
		admit_load(r, group, 1);
	return qfs_admit_acquire_part(r->admit, group, router_peek(r, group, key, key_len), kind, units);
}

static void admit_settle(struct qfs_router *r, qfs_table_t group, const uint8_t *key, size_t key_len,
			 double units)
{
	if (group != QFS_META_TABLE)
		qfs_admit_settle_part(r->admit, group, router_peek(r, group, key, key_len), QFS_ADMIT_READ, units,
				      qfs_clock_mono_ns());
}

int qfs_router_admit_config(struct qfs_router *r, const struct qfs_admit_cfg *cfg)
{
	qfs_admit_configure(r->admit, cfg);
	return 0;
}

void qfs_router_capacity_changed(struct qfs_router *r, qfs_table_t table)
{
	admit_load(r, table, 1);
	QFS_LOG(QFS_LOG_INFO, "table capacity set table=%llu", (unsigned long long)table);
}

/* Propose an encoded txn without metrics or table locking. */
static int propose_enc(struct qfs_router *r, qfs_group_t group, const struct qfs_buf *b, int *result)
{
	return qfs_cell_propose(r->cell, group, b->data, b->len, result);
}

/* Propose without metrics, admission or table locking. */
static int propose(struct qfs_router *r, qfs_group_t group, const struct qfs_txn *txn, int *result)
{
	struct qfs_buf b;
	int rc;

	qfs_buf_init(&b);
	qfs_txn_encode(txn, &b);
	if ((rc = b.err) != 0) {
		qfs_buf_close(&b); /* (resets b.err: return the saved one) */
		return rc;
	}
	rc = propose_enc(r, group, &b, result);
	qfs_buf_close(&b);
	return rc;
}

#define STALE_RETRIES 2000  /* stale-epoch retries of one call (a split's last step is short) */

#define MAX_TXN_PARTS 64 /* partitions one txn may touch (ranges cut at boundaries) */

/* One partition's share of a txn: the fence op, then its ops in txn order. */
struct sub {
	struct qfs_meta_part p;
	struct qfs_txn t;
	uint8_t ep[8];
	uint64_t bytes;   /* keys and values, for the size checks */
};

/* The sub of partition q in subs[0..*n), added (with its fence op) if new.
 * NULL: -ENOMEM or more than cap partitions (then *n == cap). */
static struct sub *sub_of(struct sub *subs, size_t cap, size_t *n, const struct qfs_meta_part *q)
{
	struct qfs_op *op;

	for (size_t i = 0; i < *n; i++)
		if (subs[i].p.group == q->group)
			return &subs[i];
	if (*n == cap)
		return NULL;
	struct sub *s = &subs[(*n)++];
	s->p = *q;
	s->bytes = 0;
	qfs_txn_init(&s->t);
	op = qfs_txn_add(&s->t, QFS_OP_RANGE);
	if (!op)
		return NULL;
	qfs_be64_put(s->ep, q->epoch);
	op->key = QFS_META_FENCE_KEY;
	op->key_len = QFS_META_FENCE_KEY_LEN;
	op->val = s->ep;
	op->val_len = 8;
	op->err = QFS_ESTALE;
	return s;
}

static int sub_add(struct sub *s, const struct qfs_op *o, const uint8_t *key, uint32_t key_len,
		   const uint8_t *key2, uint32_t key2_len)
{
	struct qfs_op *op = qfs_txn_add(&s->t, o->kind);

	if (!op)
		return -ENOMEM;
	*op = *o;
	op->key = key;
	op->key_len = key_len;
	if (key2) {
		op->key2 = key2;
		op->key2_len = key2_len;
	}
	s->bytes += key_len + o->val_len;
	return 0;
}

/* 1 if op kind writes (waits for a frozen range), 0 for a condition. */
static int op_writes(enum qfs_op_kind k)
{
	return k != QFS_OP_EXPECT_ABSENT && k != QFS_OP_EXPECT_PRESENT && k != QFS_OP_EXPECT_VALUE &&
	       k != QFS_OP_EXPECT_EMPTY;
}

#define ORPHAN_APART 2 /* cut_txn: a LINK_DROP's orphan entry is in another partition */

void (*qfs_router_test_orphan_hook)(qfs_table_t table); /* test hook, see router_int.h */

/* Cut txn by partition into subs[0..cap) (the fence op first in each);
 * *wait set (nothing to send) when a write meets a range a split froze.
 * 0, 1 (more than cap partitions), ORPHAN_APART (a LINK_DROP whose orphan
 * entry is in another partition than its inode: route_orphan rewrites
 * it), -ENOMEM.  The caller closes subs[0..*n) in every case. */
static int cut_txn(struct qfs_router *r, qfs_table_t table, const struct qfs_txn *txn, struct sub *subs,
		   size_t cap, size_t *n, int *wait)
{
	struct qfs_meta_part q;
	struct sub *s = NULL;
	int rc;

	for (uint32_t i = 0; i < txn->nops; i++) {
		const struct qfs_op *o = &txn->ops[i];
		int range = o->kind == QFS_OP_DEL_RANGE || o->kind == QFS_OP_EXPECT_EMPTY;
		const uint8_t *cur = o->key;
		uint32_t cur_len = o->key_len;

		for (;;) { /* a range op: one piece per partition it meets */
			if (s && qfs_meta_part_has(&s->p, cur, cur_len)) {
				q = s->p;
			} else {
				rc = router_resolve(r, table, cur, cur_len, &q);
				if (rc)
					return rc;
			}
			s = sub_of(subs, cap, n, &q);
			if (!s)
				return *n == cap ? 1 : -ENOMEM;
			if (!range) {
				if (o->kind == QFS_OP_LINK_DROP && o->key2_len &&
				    !qfs_meta_part_has(&s->p, o->key2, o->key2_len))
					return ORPHAN_APART;
				if (op_writes(o->kind) && router_frozen(r, &s->p, cur, cur_len, NULL, 0)) {
					*wait = 1;
					return 0;
				}
				rc = sub_add(s, o, cur, cur_len, NULL, 0);
				if (rc)
					return rc;
				break;
			}
			const uint8_t *end = o->key2;
			uint32_t end_len = o->key2_len;
			int last = 1;
			if (s->p.hi_len && qfs_meta_keycmp(s->p.hi, s->p.hi_len, end, end_len) < 0) {
				end = s->p.hi; /* stable: subs never move */
				end_len = s->p.hi_len;
				last = 0;
			}
			if (op_writes(o->kind) && router_frozen(r, &s->p, cur, cur_len, end, end_len)) {
				*wait = 1;
				return 0;
			}
			rc = sub_add(s, o, cur, cur_len, end, end_len);
			if (rc)
				return rc;
			if (last)
				break;
			cur = end;
			cur_len = end_len;
		}
	}
	return 0;
}

static int route_txn(struct qfs_router *r, qfs_table_t table, const struct qfs_txn *txn, int *result,
		     int *wait);

/* A LINK_DROP decides at apply whether it took the last link and then
 * writes its orphan entry (key2) in its own group: it cannot when that
 * entry is in another partition.  Route txn instead with each such
 * LINK_DROP spelled out from the inode read now: nlink 1 (the last name
 * of an open file) becomes NLINK -1 plus a PUT of the orphan entry, any
 * other inode (more names, a directory, nlink 0, absent) a LINK_DROP
 * without orphan entry (which then keeps it or fails as before), and an
 * EXPECT_VALUE of the inode as read (EXPECT_ABSENT if it read none), in
 * front of the txn, guards the choice: a txn whose inode changed in
 * between (or that read a stale partition) fails with QFS_ECONFLICT,
 * which the caller retries (fs/ does) like its other optimistic checks.
 * The pieces in two partitions run as one cross-partition txn.
 * tables_lock held shared.  0 or route_txn's and the read's errors. */
static int route_orphan(struct qfs_router *r, qfs_table_t table, const struct qfs_txn *txn, int *result,
			int *wait)
{
	struct qfs_txn nt;
	struct qfs_meta_part pi, po;
	void **vals = calloc(txn->nops, sizeof(*vals));
	size_t *lens = calloc(txn->nops, sizeof(*lens));
	uint8_t *how = calloc(txn->nops, 1); /* per op: 0 as it is, 1 without orphan entry, 2 spelled out */
	struct qfs_op *op;
	int rc = -ENOMEM;

	qfs_txn_init(&nt);
	if (!vals || !lens || !how)
		goto out;
	for (uint32_t i = 0; i < txn->nops; i++) { /* the guards, first */
		const struct qfs_op *o = &txn->ops[i];
		struct qfs_attr a;
		if (o->kind != QFS_OP_LINK_DROP || !o->key2_len)
			continue;
		rc = router_resolve(r, table, o->key, o->key_len, &pi);
		if (rc == 0)
			rc = router_resolve(r, table, o->key2, o->key2_len, &po);
		if (rc)
			goto out;
		if (pi.group == po.group)
			continue; /* together: the LINK_DROP as it is */
		how[i] = 1;
		rc = qfs_cell_get(r->cell, pi.group, o->key, o->key_len, &vals[i], &lens[i]);
		if (rc == -ENOENT) {
			/* the LINK_DROP fails as it should, unless the read was
			 * of a stale partition (or an eventual read) and the
			 * inode is there after all: without its orphan entry
			 * the LINK_DROP would destroy an open file's inode */
			rc = -ENOMEM;
			if (!(op = qfs_txn_add(&nt, QFS_OP_EXPECT_ABSENT)))
				goto out;
			op->key = o->key;
			op->key_len = o->key_len;
			op->err = QFS_ECONFLICT;
			continue;
		}
		if (rc)
			goto out;
		rc = qfs_inode_decode_attr(vals[i], lens[i], &a);
		if (rc)
			goto out;
		if (!S_ISDIR(a.mode) && a.nlink == 1)
			how[i] = 2;
		rc = -ENOMEM;
		if (!(op = qfs_txn_add(&nt, QFS_OP_EXPECT_VALUE)))
			goto out;
		op->key = o->key;
		op->key_len = o->key_len;
		op->val = vals[i];
		op->val_len = (uint32_t)lens[i];
		op->err = QFS_ECONFLICT;
		QFS_LOG(QFS_LOG_DEBUG, "orphan entry in another partition than its inode table=%llu group=%016llx nlink=%u",
			(unsigned long long)table, (unsigned long long)pi.group, a.nlink);
	}
	rc = -ENOMEM;
	for (uint32_t i = 0; i < txn->nops; i++) {
		const struct qfs_op *o = &txn->ops[i];
		if (how[i] < 2) {
			if (!(op = qfs_txn_add(&nt, o->kind)))
				goto out;
			*op = *o;
			if (how[i] == 1) { /* not the last link (or absent): no orphan entry */
				op->key2 = NULL;
				op->key2_len = 0;
				op->val = NULL;
				op->val_len = 0;
			}
			continue;
		}
		if (!(op = qfs_txn_add(&nt, QFS_OP_NLINK)))
			goto out;
		op->key = o->key;
		op->key_len = o->key_len;
		op->delta = -1;
		if (!(op = qfs_txn_add(&nt, QFS_OP_PUT)))
			goto out;
		op->key = o->key2;
		op->key_len = o->key2_len;
		op->val = o->val;
		op->val_len = o->val_len;
	}
	if (qfs_router_test_orphan_hook)
		qfs_router_test_orphan_hook(table);
	rc = route_txn(r, table, &nt, result, wait);
out:
	qfs_txn_close(&nt);
	if (vals)
		for (uint32_t i = 0; i < txn->nops; i++)
			free(vals[i]);
	free(vals);
	free(lens);
	free(how);
	return rc;
}

/* The keys of a txn stayed locked for UNLOCK_AFTER_MS by prepared
 * cross-partition txns (-EBUSY).  Their coordinator may be gone: in
 * cluster mode another mount killed between its PREPAREs and COMMITs,
 * whose prepared parts nothing else finishes until a mount opens or a
 * split of the group (the dead mount's locks on a directory's inode
 * then refused every create in it with EBUSY); in the embedded default
 * a run whose own recovery failed.  Finish the prepared txns of groups
 * (qfs_xact_finish: COMMIT where 'C' was recorded, else 'A' and ABORT;
 * a live run aborted so retries, its DECIDE 'C' fails) so that the
 * caller can try again.  0 if finished. */
#define UNLOCK_AFTER_MS 2000

static int unlock_groups(struct qfs_router *r, qfs_table_t table, const qfs_group_t *g, size_t n)
{
	qfs_group_t v[MAX_TXN_PARTS + 1];
	int rc;

	memcpy(v, g, n * sizeof(*v));
	v[n] = QFS_META_GROUP; /* the coordinator's own part, if it had one */
	rc = qfs_xact_finish(r->cell, QFS_META_GROUP, v, n + 1);
	QFS_LOG(rc ? QFS_LOG_ERR : QFS_LOG_WARN,
		"txn keys locked for %u ms: prepared txns of its groups finished table=%llu group=%016llx "
		"groups=%zu err=\"%s\"", UNLOCK_AFTER_MS, (unsigned long long)table, (unsigned long long)g[0], n,
		qfs_strerror(rc));
	return rc;
}

/* The lock wait of a txn's first try: UNLOCK_AFTER_MS, unless the cell's
 * timeout is shorter (then the whole timeout, and no second try). */
static uint32_t first_wait(struct qfs_router *r)
{
	uint32_t t = qfs_cell_timeout_ms(r->cell);

	return t > 2 * UNLOCK_AFTER_MS ? UNLOCK_AFTER_MS : 0;
}

/* Route txn (ops by key; tables_lock held shared): one partition is one
 * proposal with the fence op in front (the fast path), several are one
 * cross-partition transaction (two-phase commit, router/xact.h) whose
 * parts each start with their fence.  *wait set (nothing sent) when a
 * write meets a range a split froze. */
static int route_txn(struct qfs_router *r, qfs_table_t table, const struct qfs_txn *txn, int *result,
		     int *wait)
{
	struct sub one, *subs = &one;
	size_t n = 0;
	int rc;

	*wait = 0;
	if (txn->nops == 0)
		return propose(r, QFS_META_GROUP, txn, result); /* nothing to route: a no-op */
	rc = cut_txn(r, table, txn, subs, 1, &n, wait);
	if (rc == 0 && !*wait) { /* one partition: the fast path */
		uint32_t w = first_wait(r);
		rc = qfs_xact_propose_wait(r->cell, one.p.group, &one.t, w, result);
		if (rc == 0 && *result == -EBUSY && w && unlock_groups(r, table, &one.p.group, 1) == 0)
			rc = qfs_xact_propose(r->cell, one.p.group, &one.t, result);
		router_account(r, &one.p, txn->ops[0].key, txn->ops[0].key_len, one.bytes);
		qfs_txn_close(&one.t);
		return rc;
	}
	for (size_t i = 0; i < n; i++)
		qfs_txn_close(&subs[i].t);
	if (rc == ORPHAN_APART)
		return route_orphan(r, table, txn, result, wait);
	if (rc != 1 || *wait)
		return rc;
	n = 0;
	subs = calloc(MAX_TXN_PARTS, sizeof(*subs));
	if (!subs)
		return -ENOMEM;
	rc = cut_txn(r, table, txn, subs, MAX_TXN_PARTS, &n, wait);
	if (rc == 1) {
		QFS_LOG(QFS_LOG_WARN, "txn touches more than %d partitions table=%llu err=\"%s\"", MAX_TXN_PARTS,
			(unsigned long long)table, qfs_strerror(-EXDEV));
		rc = -EXDEV;
	}
	if (rc == ORPHAN_APART) {
		for (size_t i = 0; i < n; i++)
			qfs_txn_close(&subs[i].t);
		free(subs);
		return route_orphan(r, table, txn, result, wait);
	}
	if (rc == 0 && !*wait) {
		struct qfs_xact_part parts[MAX_TXN_PARTS];
		for (size_t i = 0; i < n; i++) {
			parts[i].group = subs[i].p.group;
			parts[i].txn = &subs[i].t;
		}
		qfs_group_t g[MAX_TXN_PARTS + 1];
		uint32_t w = first_wait(r);
		for (size_t i = 0; i < n; i++)
			g[i] = parts[i].group;
		rc = qfs_xact_run_wait(r->cell, QFS_META_GROUP, parts, n, w, result);
		if (rc == 0 && *result == -EBUSY && w && unlock_groups(r, table, g, n) == 0)
			rc = qfs_xact_run(r->cell, QFS_META_GROUP, parts, n, result);
		if (rc < 0 && rc != -ENOMEM) { /* outcome unknown: finish it now if we can */
			g[n] = QFS_META_GROUP;
			(void)qfs_xact_finish(r->cell, QFS_META_GROUP, g, n + 1);
		}
		for (size_t i = 0; i < n; i++)
			router_account(r, &subs[i].p, txn->ops[0].key, txn->ops[0].key_len, subs[i].bytes);
		__atomic_fetch_add(&r->st_xacts, 1, __ATOMIC_RELAXED);
	}
	for (size_t i = 0; i < n; i++)
		qfs_txn_close(&subs[i].t);
	free(subs);
	return rc;
}

int qfs_router_txn(struct qfs_router *r, qfs_table_t table, const struct qfs_txn *txn, int *result)
{
	uint64_t t0 = qfs_clock_mono_ns();
	int res = 0, rc, wait;

	if (table == QFS_META_TABLE) {
		rc = propose(r, QFS_META_GROUP, txn, &res);
		record(r, table, QFS_ROUTER_TXN, t0, rc != 0);
		if (rc == 0)
			*result = res;
		return rc;
	}
	/* the units of the encoded size, counted: the txn is encoded once,
	 * by the proposer (an 8 MiB write-back was copied once more here) */
	rc = admit(r, table, txn->nops ? txn->ops[0].key : NULL, txn->nops ? txn->ops[0].key_len : 0,
		   QFS_ADMIT_WRITE, qfs_admit_write_units(qfs_txn_encoded_len(txn)));
	for (int attempt = 0; rc == 0; attempt++) {
		pthread_rwlock_rdlock(&r->tables_lock);
		rc = route_txn(r, table, txn, &res, &wait);
		pthread_rwlock_unlock(&r->tables_lock);
		if (rc == 0 && wait) {
			router_wait_unfrozen(r);
			continue;
		}
		if (rc == 0 && res == QFS_ESTALE && attempt < STALE_RETRIES) {
			__atomic_fetch_add(&r->st_stale, 1, __ATOMIC_RELAXED);
			(void)qfs_meta_reload_table(r->meta, table); /* another router may have split it */
			router_refresh(r, table);
			/* stale again with a fresh map: a group fenced ahead of
			 * (or behind) the map that no split settles */
			if (attempt % 50 == 1)
				(void)router_fence_repair(r, table);
			if (attempt > 0) /* cluster: another router's split copies meanwhile */
				usleep(qfs_cell_remote(r->cell) && attempt >= 10 ? 20000 : 1000);
			continue;
		}
		break;
	}
	record(r, table, QFS_ROUTER_TXN, t0, rc != 0);
	if (rc == 0)
		*result = res;
	return rc;
}

/* A read of key in group into out (empty): pinned (qfs_cell_get_val), or
 * (pin 0) the malloc'd value of qfs_cell_get adopted.  qfs_cell_get's
 * contract. */
static int cell_get(struct qfs_router *r, qfs_group_t group, const uint8_t *key, size_t key_len,
		    struct qfs_val *out, int pin)
{
	void *val;
	size_t len;
	int rc;

	if (pin)
		return qfs_cell_get_val(r->cell, group, key, key_len, out);
	rc = qfs_cell_get(r->cell, group, key, key_len, &val, &len);
	if (rc == 0)
		qfs_val_adopt(out, val, len);
	return rc;
}

/* qfs_router_get (*out holds a malloc'd value: pin 0) and _get_val. */
static int router_get(struct qfs_router *r, qfs_table_t table, const uint8_t *key, size_t key_len,
		      struct qfs_val *out, int pin)
{
	uint64_t t0 = qfs_clock_mono_ns();
	struct qfs_meta_part p;
	int rc = admit(r, table, key, key_len, QFS_ADMIT_READ, 1);

	if (rc == 0 && table == QFS_META_TABLE) {
		rc = cell_get(r, QFS_META_GROUP, key, key_len, out, pin);
	} else {
		for (int attempt = 0; rc == 0; attempt++) {
			uint64_t gen = __atomic_load_n(&r->map_gen, __ATOMIC_ACQUIRE);
			rc = router_resolve(r, table, key, key_len, &p);
			if (rc)
				break;
			rc = cell_get(r, p.group, key, key_len, out, pin);
			if (rc == 0 || rc == -ENOENT) { /* cluster: did another router's split move it? */
				int crc = router_check_read(r, &p, key, key_len);
				if (crc < 0) {
					if (rc == 0)
						qfs_val_release(out);
					rc = crc;
					break;
				}
			}
			if (gen == __atomic_load_n(&r->map_gen, __ATOMIC_ACQUIRE) || attempt >= STALE_RETRIES)
				break;
			if (rc == 0) /* the map moved under the read: read again */
				qfs_val_release(out);
			rc = 0;
		}
		if (rc == 0)
			router_account(r, &p, key, key_len, 0);
	}
	if (rc == 0)
		admit_settle(r, table, key, key_len, qfs_admit_read_units(out->len) - 1);
	record(r, table, QFS_ROUTER_GET, t0, rc != 0 && rc != -ENOENT);
	return rc;
}

int qfs_router_get(struct qfs_router *r, qfs_table_t table, const uint8_t *key, size_t key_len,
		   void **val, size_t *val_len)
{
	struct qfs_val v = { 0 };
	int rc = router_get(r, table, key, key_len, &v, 0);

	if (rc == 0) { /* v holds the malloc'd value itself (cell_get) */
		*val = v.own;
		*val_len = v.len;
	}
	return rc;
}

int qfs_router_get_val(struct qfs_router *r, qfs_table_t table, const uint8_t *key, size_t key_len,
		       struct qfs_val *out)
{
	return router_get(r, table, key, key_len, out, 1);
}

int qfs_router_get_inode(struct qfs_router *r, qfs_table_t group, qfs_ino_t ino, struct qfs_inode *out)
{
	uint8_t key[QFS_KEY_MAX];
	size_t klen = qfs_key_inode(key, ino), vlen;
	void *val;
	int rc = qfs_router_get(r, group, key, klen, &val, &vlen);

	if (rc)
		return rc;
	rc = qfs_inode_decode(val, vlen, out);
	free(val);
	if (rc)
		QFS_LOG(QFS_LOG_ERR, "undecodable inode table=%llu ino=%llu err=\"%s\"",
			(unsigned long long)group, (unsigned long long)ino, qfs_strerror(rc));
	return rc;
}

int qfs_router_get_attr(struct qfs_router *r, qfs_table_t group, qfs_ino_t ino, struct qfs_attr *out)
{
	uint8_t key[QFS_KEY_MAX];
	size_t klen = qfs_key_inode(key, ino), vlen;
	void *val;
	struct qfs_attr a;
	int rc = qfs_router_get(r, group, key, klen, &val, &vlen);

	if (rc)
		return rc;
	rc = qfs_inode_decode_attr(val, vlen, &a);
	free(val);
	if (rc) {
		QFS_LOG(QFS_LOG_ERR, "undecodable inode table=%llu ino=%llu err=\"%s\"",
			(unsigned long long)group, (unsigned long long)ino, qfs_strerror(rc));
		return rc;
	}
	*out = a;
	return 0;
}

struct scan_count {
	qfs_scan_cb cb;
	void *arg;
	uint64_t bytes;    /* keys and values handed to cb */
	int stopped;       /* cb returned nonzero */
	size_t last_len;   /* the last key handed to cb (valid if any) */
	int any;
	uint8_t last[QFS_KEY_MAX];
};

static int scan_count_cb(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, void *arg)
{
	struct scan_count *c = arg;
	int rc;

	if (qfs_meta_is_fence(k, kl) || kl > QFS_KEY_MAX)
		return 0; /* the partition's fence record is not an item */
	c->bytes += kl + vl;
	rc = c->cb(k, kl, v, vl, c->arg);
	memcpy(c->last, k, kl);
	c->last_len = kl;
	c->any = 1;
	if (rc)
		c->stopped = 1;
	return rc;
}

/* Scan [lo, hi) of table partition by partition in key order.  When the map
 * changes under a partition's scan, go on after the last key delivered
 * with the new map, so nothing is skipped or repeated. */
static int scan_table(struct qfs_router *r, qfs_table_t table, const uint8_t *lo, size_t lo_len,
		      const uint8_t *hi, size_t hi_len, struct scan_count *c)
{
	uint8_t cur[QFS_KEY_MAX + 1];
	size_t cur_len = lo_len < sizeof(cur) ? lo_len : sizeof(cur);
	struct qfs_meta_part p;
	int rc = 0;

	memcpy(cur, lo, cur_len);
	for (int attempt = 0;; attempt++) {
		uint64_t gen = __atomic_load_n(&r->map_gen, __ATOMIC_ACQUIRE);
		const uint8_t *end = hi;
		size_t end_len = hi_len;

		if (qfs_meta_keycmp(cur, cur_len, hi, hi_len) >= 0)
			return 0;
		rc = router_resolve(r, table, cur, cur_len, &p);
		if (rc)
			return rc;
		if (p.hi_len && qfs_meta_keycmp(p.hi, p.hi_len, hi, hi_len) < 0) {
			end = p.hi;
			end_len = p.hi_len;
		}
		/* cluster: before handing out anything of G, check that its map
		 * has not moved (a split another router committed but did not
		 * settle yet leaves a stale copy of the moved range in G) */
		int pcrc = router_check_read(r, &p, cur, cur_len);
		if (pcrc < 0)
			return pcrc;
		if (pcrc == 1 && attempt < STALE_RETRIES)
			continue; /* refreshed: resolve cur again */
		c->any = 0;
		rc = qfs_cell_scan(r->cell, p.group, cur, cur_len, end, end_len, scan_count_cb, c);
		router_account(r, &p, cur, cur_len, 0);
		if (c->stopped || rc < 0)
			return rc;
		int crc = router_check_read(r, &p, cur, cur_len); /* cluster: moved by another router? */
		if (crc < 0)
			return crc;
		if (gen != __atomic_load_n(&r->map_gen, __ATOMIC_ACQUIRE) && attempt < STALE_RETRIES) {
			if (c->any) { /* resume right after the last key delivered */
				memcpy(cur, c->last, c->last_len);
				cur[c->last_len] = 0;
				cur_len = c->last_len + 1;
			}
			continue;
		}
		if (end == hi)
			return rc;
		memcpy(cur, p.hi, p.hi_len);
		cur_len = p.hi_len;
	}
}

int qfs_router_scan(struct qfs_router *r, qfs_table_t table, const uint8_t *lo, size_t lo_len,
		    const uint8_t *hi, size_t hi_len, qfs_scan_cb cb, void *arg)
{
	uint64_t t0 = qfs_clock_mono_ns();
	struct scan_count *c = calloc(1, sizeof(*c));
	int rc;

	if (!c)
		return -ENOMEM;
	c->cb = cb;
	c->arg = arg;
	rc = admit(r, table, lo, lo_len, QFS_ADMIT_READ, 1);
	if (rc == 0) {
		if (table == QFS_META_TABLE)
			rc = qfs_cell_scan(r->cell, QFS_META_GROUP, lo, lo_len, hi, hi_len, scan_count_cb, c);
		else
			rc = scan_table(r, table, lo, lo_len, hi, hi_len, c);
		admit_settle(r, table, lo, lo_len, qfs_admit_read_units((size_t)c->bytes) - 1);
	}
	record(r, table, QFS_ROUTER_SCAN, t0, rc < 0);
	free(c);
	return rc;
}

/* ---- inode allocator ---- */

static int alloc_block(struct qfs_router *r)
{
	uint8_t key[QFS_KEY_MAX], oldv[8], newv[8];
	size_t klen = qfs_key_chunk(key, 0, 0), vlen = 0;
	void *val = NULL;
	qfs_ino_t next = QFS_FIRST_INO;
	struct qfs_txn t;
	struct qfs_op *op;
	int rc, res = 0;

	rc = qfs_cell_get(r->cell, QFS_META_GROUP, key, klen, &val, &vlen);
	if (rc == 0) {
		if (vlen != 8) {
			free(val);
			QFS_LOG(QFS_LOG_ERR, "inode allocator record has %zu bytes, want 8", vlen);
			return QFS_ECORRUPT;
		}
		memcpy(oldv, val, 8);
		next = qfs_be64_get(oldv);
		free(val);
	} else if (rc != -ENOENT) {
		return rc;
	}
	qfs_be64_put(newv, next + ALLOC_BLOCK);
	qfs_txn_init(&t);
	op = qfs_txn_add(&t, rc == 0 ? QFS_OP_EXPECT_VALUE : QFS_OP_EXPECT_ABSENT);
	if (!op)
		goto nomem;
	op->key = key;
	op->key_len = (uint32_t)klen;
	op->err = QFS_ECONFLICT;
	if (rc == 0) {
		op->val = oldv;
		op->val_len = 8;
	}
	op = qfs_txn_add(&t, QFS_OP_PUT);
	if (!op)
		goto nomem;
	op->key = key;
	op->key_len = (uint32_t)klen;
	op->val = newv;
	op->val_len = 8;
	rc = propose(r, QFS_META_GROUP, &t, &res);
	qfs_txn_close(&t);
	if (rc)
		return rc;
	if (res)
		return res;
	r->next_ino = next;
	r->limit_ino = next + ALLOC_BLOCK;
	return 0;
nomem:
	qfs_txn_close(&t);
	return -ENOMEM;
}

int qfs_router_alloc_ino(struct qfs_router *r, qfs_ino_t *out)
{
	int rc = 0;

	pthread_mutex_lock(&r->alloc_mu);
	if (r->next_ino >= r->limit_ino)
		rc = alloc_block(r);
	if (rc == 0)
		*out = r->next_ino++;
	pthread_mutex_unlock(&r->alloc_mu);
	return rc;
}

/* ---- tables ---- */

struct scan_one {
	int found;
};

static int scan_one_cb(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, void *arg)
{
	((struct scan_one *)arg)->found = 1;
	return 1;
}

/* 1 if table has any dentry under pk dir (in any partition), 0 if not,
 * <0 on error. */
static int dir_has_entries(struct qfs_router *r, qfs_table_t table, qfs_ino_t dir)
{
	uint8_t lo[QFS_KEY_MAX], hi[QFS_KEY_MAX];
	size_t lol, hil;
	struct scan_one s = { 0 };
	struct scan_count *c = calloc(1, sizeof(*c));
	int rc;

	if (!c)
		return -ENOMEM;
	c->cb = scan_one_cb;
	c->arg = &s;
	qfs_key_dentry_range(lo, &lol, hi, &hil, dir);
	rc = scan_table(r, table, lo, lol, hi, hil, c);
	free(c);
	if (rc < 0)
		return rc;
	return s.found;
}

/* Whether a table can be dropped: 0, -ENOTEMPTY (entries), -EBUSY (files
 * unlinked while still open live in its orphan list, pk 0), or an error. */
static int table_droppable(struct qfs_router *r, const struct qfs_table *t)
{
	int rc = dir_has_entries(r, t->id, t->ino);

	if (rc > 0)
		return -ENOTEMPTY;
	if (rc == 0 && (rc = dir_has_entries(r, t->id, 0)) > 0) {
		char en[QFS_ESC_MAX(QFS_NAME_MAX)];
		QFS_LOG(QFS_LOG_INFO, "table has files that are unlinked but still open table=%s",
			qfs_esc(t->name, en, sizeof(en)));
		return -EBUSY;
	}
	return rc;
}

static int read_table(struct qfs_router *r, const char *name, struct qfs_table *out, void **raw,
		      size_t *raw_len)
{
	uint8_t key[QFS_KEY_MAX];
	size_t klen = qfs_key_dentry(key, QFS_ROOT_INO, name, strlen(name)), vlen;
	struct qfs_dentry d;
	void *val;
	int rc = qfs_router_get(r, QFS_META_GROUP, key, klen, &val, &vlen);

	if (rc)
		return rc;
	rc = qfs_dentry_decode(val, vlen, &d);
	if (rc) {
		char en[QFS_ESC_MAX(QFS_NAME_MAX)];
		free(val);
		QFS_LOG(QFS_LOG_ERR, "undecodable table entry name=%s err=\"%s\"", qfs_esc(name, en, sizeof(en)),
			qfs_strerror(rc));
		return rc;
	}
	snprintf(out->name, sizeof(out->name), "%s", name);
	out->ino = d.ino;
	out->id = d.group;
	if (raw) {
		*raw = val;
		*raw_len = vlen;
	} else {
		free(val);
	}
	return 0;
}

int qfs_router_table_lookup(struct qfs_router *r, const char *name, struct qfs_table *out)
{
	return read_table(r, name, out, NULL, NULL);
}

/* Add the ops that touch the root inode when a table appears (+1) or goes (-1). */
static int root_touch(struct qfs_txn *t, uint8_t *rootkey, size_t rootlen, int nlink_delta)
{
	struct qfs_op *op = qfs_txn_add(t, QFS_OP_SETATTR);

	if (!op)
		return -ENOMEM;
	op->key = rootkey;
	op->key_len = (uint32_t)rootlen;
	op->mask = QFS_SET_MTIME | QFS_SET_CTIME;
	qfs_clock_now(&op->attr.mtime);
	op->attr.ctime = op->attr.mtime;
	if (nlink_delta) {
		op = qfs_txn_add(t, QFS_OP_NLINK);
		if (!op)
			return -ENOMEM;
		op->key = rootkey;
		op->key_len = (uint32_t)rootlen;
		op->delta = nlink_delta;
	}
	return 0;
}

int qfs_router_table_create(struct qfs_router *r, const char *name, const struct qfs_attr *a,
			    struct qfs_table *out)
{
	uint8_t ikey[QFS_KEY_MAX], dkey[QFS_KEY_MAX], rkey[QFS_KEY_MAX];
	size_t ilen, dlen, rlen;
	struct qfs_inode in;
	struct qfs_dentry d;
	struct qfs_buf ib, db;
	struct qfs_meta_part first;
	struct qfs_meta_rec fence, rec;
	struct qfs_txn t;
	struct qfs_op *op;
	qfs_ino_t ino;
	int rc, res = 0;

	qfs_meta_rec_init(&fence);
	qfs_meta_rec_init(&rec);
	rc = qfs_router_alloc_ino(r, &ino);
	if (rc)
		return rc;
	rc = qfs_cell_group_create(r->cell, ino);
	if (rc)
		return rc;

	qfs_inode_init(&in);
	in.a = *a;
	in.a.ino = ino;
	in.a.mode = S_IFDIR | (a->mode & 07777);
	in.a.nlink = 2;
	in.a.size = 0;
	qfs_buf_init(&ib);
	qfs_buf_init(&db);
	qfs_txn_init(&t);
	qfs_inode_encode(&in, &ib);
	d.ino = ino;
	d.type = S_IFDIR;
	d.group = ino;
	qfs_dentry_encode(&d, &db);
	rc = ib.err ? ib.err : db.err;
	if (rc)
		goto err_drop_group;

	ilen = qfs_key_inode(ikey, ino);
	op = qfs_txn_add(&t, QFS_OP_PUT);
	if (!op) {
		rc = -ENOMEM;
		goto err_drop_group;
	}
	op->key = ikey;
	op->key_len = (uint32_t)ilen;
	op->val = ib.data;
	op->val_len = (uint32_t)ib.len;
	qfs_meta_part_first(&first, ino, ino, qfs_cell_node_count(r->cell));
	qfs_meta_part_place(r->meta, &first); /* where the cell placed the group */
	rc = qfs_meta_add_fence(&t, &fence, &first); /* the first partition's own range */
	if (rc)
		goto err_drop_group;
	rc = propose(r, ino, &t, &res);
	if (rc == 0)
		rc = res;
	if (rc)
		goto err_drop_group;

	qfs_txn_close(&t);
	qfs_txn_init(&t);
	dlen = qfs_key_dentry(dkey, QFS_ROOT_INO, name, strlen(name));
	rlen = qfs_key_inode(rkey, QFS_ROOT_INO);
	op = qfs_txn_add(&t, QFS_OP_EXPECT_ABSENT);
	if (!op) {
		rc = -ENOMEM;
		goto err_drop_group;
	}
	op->key = dkey;
	op->key_len = (uint32_t)dlen;
	op->err = -EEXIST;
	op = qfs_txn_add(&t, QFS_OP_PUT);
	if (!op) {
		rc = -ENOMEM;
		goto err_drop_group;
	}
	op->key = dkey;
	op->key_len = (uint32_t)dlen;
	op->val = db.data;
	op->val_len = (uint32_t)db.len;
	rc = root_touch(&t, rkey, rlen, 1);
	if (rc == 0)
		rc = qfs_meta_add_put(&t, &rec, &first); /* the table's partition map */
	if (rc)
		goto err_drop_group;
	pthread_rwlock_rdlock(&r->tables_lock);
	rc = propose(r, QFS_META_GROUP, &t, &res);
	pthread_rwlock_unlock(&r->tables_lock);
	if (rc == 0)
		rc = res;
	if (rc)
		goto err_drop_group;

	rc = qfs_meta_reload_table(r->meta, ino);
	if (rc == 0)
		rc = router_refresh(r, ino);
	if (rc) /* the table exists: the next open loads its map */
		QFS_LOG(QFS_LOG_ERR, "table created but its partition map was not loaded table=%llu err=\"%s\"",
			(unsigned long long)ino, qfs_strerror(rc));
	__atomic_fetch_add(&r->ntables, 1, __ATOMIC_RELAXED);
	snprintf(out->name, sizeof(out->name), "%s", name);
	out->ino = ino;
	out->id = ino;
	if (QFS_LOG_INFO <= qfs_log_level) {
		char en[QFS_ESC_MAX(QFS_NAME_MAX)];
		QFS_LOG(QFS_LOG_INFO, "table created name=%s group=%016llx", qfs_esc(name, en, sizeof(en)),
			(unsigned long long)ino);
	}
	{
		struct qfs_admit_cap cap = { .mode = QFS_ADMIT_ON_DEMAND };
		qfs_admit_set(r->admit, ino, &cap, 1, qfs_clock_mono_ns()); /* a new table: empty burst */
	}
	qfs_txn_close(&t);
	qfs_buf_close(&ib);
	qfs_buf_close(&db);
	qfs_inode_close(&in);
	qfs_meta_rec_close(&fence);
	qfs_meta_rec_close(&rec);
	return 0;

err_drop_group:
	qfs_cell_group_drop(r->cell, ino);
	qfs_meta_rec_close(&fence);
	qfs_meta_rec_close(&rec);
	qfs_txn_close(&t);
	qfs_buf_close(&ib);
	qfs_buf_close(&db);
	qfs_inode_close(&in);
	return rc;
}

/* With tables_lock held exclusively: remove the dentry of name (whose stored
 * value is raw) from the meta group, optionally putting it under newname;
 * drop (non-zero): the table whose partition records go with it. */
static int meta_move(struct qfs_router *r, const char *name, const void *raw, size_t raw_len,
		     const char *newname, const void *newraw, size_t newraw_len, qfs_table_t drop,
		     int *result)
{
	uint8_t okey[QFS_KEY_MAX], nkey[QFS_KEY_MAX], rkey[QFS_KEY_MAX];
	size_t olen = qfs_key_dentry(okey, QFS_ROOT_INO, name, strlen(name));
	size_t rlen = qfs_key_inode(rkey, QFS_ROOT_INO), nlen;
	struct qfs_meta_rec rec;
	struct qfs_txn t;
	struct qfs_op *op;
	int rc = -ENOMEM;

	qfs_meta_rec_init(&rec);
	qfs_txn_init(&t);
	op = qfs_txn_add(&t, QFS_OP_EXPECT_VALUE);
	if (!op)
		goto out;
	op->key = okey;
	op->key_len = (uint32_t)olen;
	op->val = raw;
	op->val_len = (uint32_t)raw_len;
	op->err = QFS_ECONFLICT;
	if (newname) {
		nlen = qfs_key_dentry(nkey, QFS_ROOT_INO, newname, strlen(newname));
		op = qfs_txn_add(&t, newraw ? QFS_OP_EXPECT_VALUE : QFS_OP_EXPECT_ABSENT);
		if (!op)
			goto out;
		op->key = nkey;
		op->key_len = (uint32_t)nlen;
		op->val = newraw;
		op->val_len = (uint32_t)newraw_len;
		op->err = QFS_ECONFLICT;
	}
	op = qfs_txn_add(&t, QFS_OP_DEL);
	if (!op)
		goto out;
	op->key = okey;
	op->key_len = (uint32_t)olen;
	if (newname) {
		op = qfs_txn_add(&t, QFS_OP_PUT);
		if (!op)
			goto out;
		op->key = nkey;
		op->key_len = (uint32_t)nlen;
		op->val = raw;
		op->val_len = (uint32_t)raw_len;
	}
	rc = root_touch(&t, rkey, rlen, newname && !newraw ? 0 : -1);
	if (rc == 0 && drop)
		rc = qfs_meta_add_drop(&t, &rec, drop);
	if (rc)
		goto out;
	rc = propose(r, QFS_META_GROUP, &t, result);
out:
	qfs_txn_close(&t);
	qfs_meta_rec_close(&rec);
	return rc;
}

/* Drop a table's group once no table refers to it: the drop hook first
 * (the archive takes its last records), then every replica.  No router
 * lock held. */
static void drop_group(struct qfs_router *r, const char *name, qfs_group_t group)
{
	int rc;

	if (r->drop_hook)
		(void)r->drop_hook(group, r->drop_arg); /* logs its failures */
	rc = qfs_cell_group_drop(r->cell, group);
	if (rc) /* the table is gone; the next start drops the orphan group */
		QFS_LOG(QFS_LOG_WARN, "table deleted but its group was not dropped name=%s group=%016llx err=\"%s\"",
			QFS_ESC_NAME(name), (unsigned long long)group, qfs_strerror(rc));
}

/* A dropped table (its records gone from the meta group): forget its map
 * and drop every partition's group.  No router lock held. */
static void drop_table(struct qfs_router *r, const char *name, qfs_table_t table)
{
	struct qfs_meta_part *v = NULL;
	size_t n = 0;

	if (qfs_meta_parts(r->meta, table, &v, &n) != 0)
		n = 0; /* -ENOMEM: the next open drops the orphan groups */
	(void)qfs_meta_reload_table(r->meta, table);
	router_forget(r, table);
	for (size_t i = 0; i < n; i++)
		drop_group(r, name, v[i].group);
	free(v);
	qfs_admit_drop(r->admit, table);
}

/* See router.h. */
void qfs_router_set_drop_hook(struct qfs_router *r, qfs_router_drop_hook cb, void *arg)
{
	r->drop_hook = cb;
	r->drop_arg = arg;
}

int qfs_router_table_delete(struct qfs_router *r, const char *name)
{
	struct qfs_table tb;
	void *raw = NULL;
	size_t raw_len;
	qfs_table_t dropped = 0;
	int rc, res = 0;

	pthread_rwlock_wrlock(&r->tables_lock);
	rc = read_table(r, name, &tb, &raw, &raw_len);
	if (rc)
		goto out;
	rc = table_droppable(r, &tb);
	if (rc)
		goto out;
	rc = meta_move(r, name, raw, raw_len, NULL, NULL, 0, tb.id, &res);
	if (rc == 0)
		rc = res;
	if (rc)
		goto out;
	__atomic_fetch_sub(&r->ntables, 1, __ATOMIC_RELAXED);
	dropped = tb.id;
out:
	pthread_rwlock_unlock(&r->tables_lock);
	free(raw);
	if (dropped) {
		/* Outside the lock: the archive may take a few seconds, and
		 * other tables' calls must not wait for it. */
		drop_table(r, name, dropped);
		QFS_LOG(QFS_LOG_INFO, "table deleted name=%s table=%llu", QFS_ESC_NAME(name),
			(unsigned long long)dropped);
	}
	return rc;
}

int qfs_router_table_rename(struct qfs_router *r, const char *oldname, const char *newname, int noreplace)
{
	struct qfs_table src, dst;
	void *raw = NULL, *dstraw = NULL;
	size_t raw_len, dstraw_len = 0;
	qfs_table_t dropped = 0;
	int rc, res = 0, have_dst;

	if (strcmp(oldname, newname) == 0)
		return qfs_router_table_lookup(r, oldname, &src);
	pthread_rwlock_wrlock(&r->tables_lock);
	rc = read_table(r, oldname, &src, &raw, &raw_len);
	if (rc)
		goto out;
	rc = read_table(r, newname, &dst, &dstraw, &dstraw_len);
	if (rc && rc != -ENOENT)
		goto out;
	have_dst = rc == 0;
	if (have_dst && noreplace) {
		rc = -EEXIST;
		goto out;
	}
	if (have_dst) {
		rc = table_droppable(r, &dst);
		if (rc)
			goto out;
	}
	rc = meta_move(r, oldname, raw, raw_len, newname, have_dst ? dstraw : NULL, dstraw_len,
		       have_dst ? dst.id : 0, &res);
	if (rc == 0)
		rc = res;
	if (rc)
		goto out;
	if (have_dst) {
		__atomic_fetch_sub(&r->ntables, 1, __ATOMIC_RELAXED);
		dropped = dst.id;
	}
	QFS_LOG(QFS_LOG_INFO, "table renamed from=%s to=%s", QFS_ESC_NAME(oldname), QFS_ESC_NAME(newname));
out:
	pthread_rwlock_unlock(&r->tables_lock);
	free(raw);
	free(dstraw);
	if (dropped) { /* outside the lock, as for a delete */
		drop_table(r, newname, dropped);
	}
	return rc;
}

struct list_ctx {
	int (*cb)(const struct qfs_table *t, void *arg);
	void *arg;
	int err;
};

static int list_cb(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, void *arg)
{
	struct list_ctx *c = arg;
	struct qfs_key key;
	struct qfs_dentry d;
	struct qfs_table t;
	int rc;

	rc = qfs_key_parse(k, kl, &key);
	if (rc == 0 && key.kind != QFS_KEY_DENTRY)
		return 0;
	if (rc == 0)
		rc = qfs_dentry_decode(v, vl, &d);
	if (rc) {
		c->err = rc;
		return 1;
	}
	memcpy(t.name, key.name, key.name_len);
	t.name[key.name_len] = '\0';
	t.ino = d.ino;
	t.id = d.group;
	return c->cb(&t, c->arg);
}

int qfs_router_table_list(struct qfs_router *r, const char *after,
			  int (*cb)(const struct qfs_table *t, void *arg), void *arg)
{
	uint8_t lo[QFS_KEY_MAX + 1], hi[QFS_KEY_MAX];
	size_t lol, hil;
	struct list_ctx c = { cb, arg, 0 };
	int rc;

	qfs_key_dentry_range(lo, &lol, hi, &hil, QFS_ROOT_INO);
	if (after && after[0]) {
		lol = qfs_key_dentry(lo, QFS_ROOT_INO, after, strlen(after));
		lo[lol++] = 0; /* first key after 'after' */
	}
	rc = qfs_router_scan(r, QFS_META_GROUP, lo, lol, hi, hil, list_cb, &c);
	if (c.err)
		return c.err;
	return rc;
}

uint64_t qfs_router_table_count(struct qfs_router *r)
{
	return __atomic_load_n(&r->ntables, __ATOMIC_RELAXED);
}

/* ---- startup ---- */

static int create_root(struct qfs_router *r, uint32_t uid, uint32_t gid)
{
	uint8_t key[QFS_KEY_MAX];
	size_t klen = qfs_key_inode(key, QFS_ROOT_INO);
	struct qfs_inode in;
	struct qfs_buf b;
	struct qfs_txn t;
	struct qfs_op *op;
	int rc, res = 0;
	void *cur;
	size_t clen;

	/* An existing root needs no proposal (one that stores an item is
	 * refused below the disk reserve, which must not stop a remount of a
	 * full disk: issue 10). */
	if (qfs_cell_get(r->cell, QFS_META_GROUP, key, klen, &cur, &clen) == 0) {
		free(cur);
		return 0;
	}
	qfs_inode_init(&in);
	in.a.ino = QFS_ROOT_INO;
	in.a.mode = S_IFDIR | 0755;
	in.a.uid = uid;
	in.a.gid = gid;
	in.a.nlink = 2;
	qfs_clock_now(&in.a.mtime);
	in.a.atime = in.a.ctime = in.a.btime = in.a.mtime;
	qfs_buf_init(&b);
	qfs_inode_encode(&in, &b);
	qfs_txn_init(&t);
	rc = b.err;
	if (rc)
		goto out;
	op = qfs_txn_add(&t, QFS_OP_EXPECT_ABSENT);
	if (!op) {
		rc = -ENOMEM;
		goto out;
	}
	op->key = key;
	op->key_len = (uint32_t)klen;
	op->err = -EEXIST;
	op = qfs_txn_add(&t, QFS_OP_PUT);
	if (!op) {
		rc = -ENOMEM;
		goto out;
	}
	op->key = key;
	op->key_len = (uint32_t)klen;
	op->val = b.data;
	op->val_len = (uint32_t)b.len;
	rc = propose(r, QFS_META_GROUP, &t, &res);
	if (rc == 0 && res != -EEXIST)
		rc = res;
out:
	qfs_txn_close(&t);
	qfs_buf_close(&b);
	qfs_inode_close(&in);
	return rc;
}

struct ref_ctx {
	struct qfs_glist *gc;
	uint64_t count;
	struct qfs_meta *reload; /* cluster mode: re-read each table's map (NULL: not) */
	int err;                 /* a re-read failed: drop nothing */
};

static int mark_table(const struct qfs_table *t, void *arg)
{
	struct ref_ctx *c = arg;

	c->count++;
	if (c->reload && qfs_meta_reload_table(c->reload, t->id) != 0)
		c->err = 1;
	for (size_t i = 0; i < c->gc->n; i++)
		if (c->gc->v[i] == t->id)
			c->gc->v[i] = 0;
	return 0;
}

/* Drop groups that no table refers to: a crash during mkdir or rmdir.
 * Cluster mode: another router's split names its new group in its intent
 * until the commit that puts it in the map deletes the intent, so the
 * groups are listed first, then the intents read, then the maps re-read:
 * a split's group created before the listing is in one of the two. */
static int collect_garbage(struct qfs_router *r)
{
	struct qfs_glist gc = { 0 };
	struct ref_ctx rc_ctx = { &gc, 0, NULL, 0 };
	struct qfs_meta_intent *iv = NULL;
	size_t ni = 0;
	int rc;

	qfs_cell_groups(r->cell, qfs_glist_add, &gc);
	if (router_test_gc_hook)
		router_test_gc_hook();
	if (qfs_cell_remote(r->cell) || router_test_cluster_reads) {
		iv = calloc(SEEN_MAX, sizeof(*iv));
		if (!iv || qfs_meta_intents(r->meta, 0, iv, SEEN_MAX, &ni) != 0 || ni >= SEEN_MAX)
			rc_ctx.err = 1; /* not sure which groups splits use: drop nothing */
		rc_ctx.reload = r->meta;
	}
	rc = qfs_router_table_list(r, "", mark_table, &rc_ctx);
	if (rc == 0) {
		r->ntables = rc_ctx.count;
		for (size_t i = 0; i < gc.n && !rc_ctx.err; i++) {
			int named = 0;
			for (size_t j = 0; j < ni; j++) /* cluster: another router's split */
				named |= iv[j].newg == gc.v[i];
			if (gc.v[i] == 0 || gc.v[i] == QFS_META_GROUP || qfs_meta_group_used(r->meta, gc.v[i]) ||
			    named)
				continue;
			QFS_LOG(QFS_LOG_WARN, "dropping group that no table refers to group=%016llx",
				(unsigned long long)gc.v[i]);
			qfs_cell_group_drop(r->cell, gc.v[i]);
		}
	}
	free(iv);
	qfs_glist_free(&gc);
	return rc;
}

/* Admission's placement (admit.h): a change draws on every node (each
 * hosts a replica of every group and writes it), a read on the leader's
 * node, which serves it (an eventual read too while a leader runs); with
 * no leader known, every node (0). */
static uint32_t admit_place(void *arg, qfs_group_t group, enum qfs_admit_kind kind)
{
	struct qfs_router *r = arg;
	uint32_t id;

	if (kind != QFS_ADMIT_READ)
		return 0;
	id = qfs_cell_leader_node(r->cell, group);
	return id && id <= 32 ? 1u << (id - 1) : 0;
}

void (*router_test_gc_hook)(void); /* test hook, see router_int.h */

int qfs_router_new(struct qfs_cell *cell, uint32_t uid, uint32_t gid, struct qfs_router **out)
{
	struct qfs_router *r = calloc(1, sizeof(*r));
	int rc;

	if (!r)
		return -ENOMEM;
	pthread_rwlockattr_t ra;

	r->cell = cell;
	pthread_rwlockattr_init(&ra);
	/* a split's drain must not starve under a steady stream of item txns */
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&r->tables_lock, &ra);
	pthread_rwlockattr_destroy(&ra);
	pthread_mutex_init(&r->alloc_mu, NULL);
	pthread_mutex_init(&r->metrics_mu, NULL);
	pthread_rwlock_init(&r->pc_lock, NULL);
	pthread_mutex_init(&r->cq_mu, NULL);
	pthread_cond_init(&r->cq_cv, NULL);
	pthread_mutex_init(&r->split_run_mu, NULL);
	pthread_mutex_init(&r->split_mu, NULL);
	pthread_cond_init(&r->split_cv, NULL);
	pthread_mutex_init(&r->pst_mu, NULL);
	r->started_ms = qfs_clock_mono_ms();
	/* split intents' owner id (parts.c): random, never 0 */
	if (getrandom(&r->nonce, sizeof(r->nonce), 0) != (ssize_t)sizeof(r->nonce))
		r->nonce = qfs_clock_mono_ns() ^ ((uint64_t)getpid() << 32);
	if (!r->nonce)
		r->nonce = 1;
	rc = qfs_admit_gac_new(&r->gac);
	if (rc == 0)
		rc = qfs_admit_new(r->gac, NULL, NULL, NULL, NULL, &r->admit);
	if (rc)
		goto err_free;
	qfs_admit_set_placement(r->admit, admit_place, r);
	if (!qfs_cell_group_exists(cell, QFS_META_GROUP)) {
		rc = qfs_cell_group_create(cell, QFS_META_GROUP);
		if (rc)
			goto err_free;
	}
	rc = create_root(r, uid, gid);
	if (rc)
		goto err_free;
	rc = qfs_meta_open(cell, &r->meta);
	if (rc)
		goto err_free;
	rc = collect_garbage(r);
	if (rc)
		goto err_free;
	rc = router_parts_open(r); /* repairs splits a crash interrupted */
	if (rc)
		goto err_free;
	*out = r;
	return 0;
err_free:
	qfs_router_free(r);
	return rc;
}

void qfs_router_free(struct qfs_router *r)
{
	if (!r)
		return;
	router_parts_close(r);
	qfs_meta_free(r->meta);
	for (unsigned i = 0; i < METRICS_BUCKETS; i++) {
		struct table_metrics *m = r->metrics[i], *next;
		for (; m; m = next) {
			next = m->next;
			free(m);
		}
	}
	qfs_admit_free(r->admit);
	qfs_admit_gac_free(r->gac);
	pthread_rwlock_destroy(&r->tables_lock);
	pthread_mutex_destroy(&r->alloc_mu);
	pthread_mutex_destroy(&r->metrics_mu);
	pthread_rwlock_destroy(&r->pc_lock);
	pthread_mutex_destroy(&r->cq_mu);
	pthread_cond_destroy(&r->cq_cv);
	pthread_mutex_destroy(&r->split_run_mu);
	pthread_mutex_destroy(&r->split_mu);
	pthread_cond_destroy(&r->split_cv);
	pthread_mutex_destroy(&r->pst_mu);
	free(r);
}

/* ---- status ---- */

static int status_table(const struct qfs_table *t, void *arg)
{
	qfs_buf_printf(arg, "table ");
	qfs_buf_put_esc(arg, t->name);
	qfs_buf_printf(arg, " group %016llx ino %llu\n", (unsigned long long)t->id, (unsigned long long)t->ino);
	return 0;
}

void qfs_router_status(struct qfs_router *r, struct qfs_buf *out)
{
	qfs_buf_printf(out, "tables %llu\n", (unsigned long long)qfs_router_table_count(r));
	qfs_router_table_list(r, "", status_table, out);
	qfs_cell_status(r->cell, out);
}

struct stats_ctx {
	struct qfs_router *r;
	struct qfs_buf *out;
};

static int stats_table(const struct qfs_table *t, void *arg)
{
	struct stats_ctx *c = arg;
	struct table_metrics *m = metrics_for(c->r, t->id);

	if (!m)
		return 0;
	for (int i = 0; i < QFS_ROUTER_NOPS; i++) {
		qfs_buf_printf(c->out, "table ");
		qfs_buf_put_esc(c->out, t->name);
		qfs_buf_printf(c->out, " op %s", op_names[i]);
		qfs_hist_format(&m->op[i], c->out);
		qfs_buf_put_u8(c->out, '\n');
	}
	struct qfs_admit_info ai;
	if (qfs_admit_info(c->r->admit, t->id, qfs_clock_mono_ns(), &ai) == 0) {
		qfs_buf_printf(c->out, "table ");
		qfs_buf_put_esc(c->out, t->name);
		qfs_buf_printf(c->out, " throttled_reads %llu throttled_writes %llu read_wait_ms %llu write_wait_ms %llu\n",
			       (unsigned long long)ai.throttled[QFS_ADMIT_READ],
			       (unsigned long long)ai.throttled[QFS_ADMIT_WRITE],
			       (unsigned long long)(ai.wait_us[QFS_ADMIT_READ] / 1000),
			       (unsigned long long)(ai.wait_us[QFS_ADMIT_WRITE] / 1000));
	}
	struct qfs_admit_part_info pi;
	for (size_t i = 0; qfs_admit_part_info(c->r->admit, t->id, i, qfs_clock_mono_ns(), &pi) == 0; i++) {
		qfs_buf_printf(c->out, "partition ");
		qfs_buf_put_esc(c->out, t->name);
		qfs_buf_printf(c->out, " group %016llx throttled_reads %llu throttled_writes %llu\n",
			       (unsigned long long)pi.group, (unsigned long long)pi.throttled[QFS_ADMIT_READ],
			       (unsigned long long)pi.throttled[QFS_ADMIT_WRITE]);
	}
	return 0;
}

void qfs_router_stats(struct qfs_router *r, struct qfs_buf *out)
{
	struct stats_ctx c = { r, out };
	struct qfs_cell_stat cs;

	qfs_router_table_list(r, "", stats_table, &c);
	qfs_cell_stat(r->cell, &cs);
	qfs_buf_printf(out, "cell proposals %llu fsyncs %llu redirects %llu timeouts %llu applies_beside_sync %llu\n",
		       (unsigned long long)cs.proposals, (unsigned long long)cs.fsyncs,
		       (unsigned long long)cs.redirects, (unsigned long long)cs.timeouts,
		       (unsigned long long)cs.beside);
	router_parts_stats(r, out);
}

/* See router.h. */
int qfs_router_get_node(struct qfs_router *r, uint32_t id, qfs_table_t table, const uint8_t *key, size_t key_len,
			void **val, size_t *val_len)
{
	struct qfs_meta_part p;
	int rc = table == QFS_META_TABLE ? 0 : router_resolve(r, table, key, key_len, &p);

	if (rc)
		return rc;
	return qfs_cell_get_node(r->cell, id, table == QFS_META_TABLE ? QFS_META_GROUP : p.group, key, key_len,
				 val, val_len);
}

/* See router.h. */
uint32_t qfs_router_node_count(struct qfs_router *r)
{
	return qfs_cell_node_count(r->cell);
}

/* ---- capacity ---- */

static int capacity_table(const struct qfs_table *t, void *arg)
{
	struct stats_ctx *c = arg;
	struct qfs_admit_info ai;

	if (!qfs_admit_known(c->r->admit, t->id))
		admit_load(c->r, t->id, 1);
	if (qfs_admit_info(c->r->admit, t->id, qfs_clock_mono_ns(), &ai) == 0) {
		qfs_buf_printf(c->out, "table ");
		qfs_buf_put_esc(c->out, t->name);
		qfs_admit_format(&ai, c->out);
		qfs_buf_put_u8(c->out, '\n');
	}
	struct qfs_admit_part_info pi;
	for (size_t i = 0; qfs_admit_part_info(c->r->admit, t->id, i, qfs_clock_mono_ns(), &pi) == 0; i++) {
		qfs_buf_printf(c->out, "partition ");
		qfs_buf_put_esc(c->out, t->name);
		qfs_admit_format_part(&pi, c->out);
		qfs_buf_put_u8(c->out, '\n');
	}
	return 0;
}

void qfs_router_capacity(struct qfs_router *r, struct qfs_buf *out)
{
	struct stats_ctx c = { r, out };

	qfs_router_table_list(r, "", capacity_table, &c);
}
