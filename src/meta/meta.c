/*
 * meta.c - the partition map in the meta group, served from memory (see
 * meta.h for the model, doc/format-keys.md "Partition map" for the records).
 *
 * Memory: one array of partitions sorted by (table, lo), under m->lock.
 * A lookup is a binary search for the last partition whose (table, lo) is
 * at or below (table, key).
 *
 * Lock order: m->lock is a leaf (no cell call is made while it is held).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "meta/meta.h"
#include "node/cell.h"

#define REC_VERSION 1
#define REC_SK_LEN 2     /* "\0" "p" */

struct qfs_meta {
	struct qfs_cell *cell;
	pthread_rwlock_t lock;
	struct qfs_meta_part *v;  /* sorted by (table, lo); protected by lock */
	size_t n, cap;            /* protected by lock */
	uint64_t lookups;         /* atomic */
};

int qfs_meta_keycmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	size_t n = al < bl ? al : bl;
	int c = n ? memcmp(a, b, n) : 0;

	if (c)
		return c;
	return al < bl ? -1 : al > bl ? 1 : 0;
}

int qfs_meta_part_has(const struct qfs_meta_part *p, const uint8_t *key, size_t key_len)
{
	if (qfs_meta_keycmp(key, key_len, p->lo, p->lo_len) < 0)
		return 0;
	return p->hi_len == 0 || qfs_meta_keycmp(key, key_len, p->hi, p->hi_len) < 0;
}

/* Record key of (table, group); with group = UINT64_MAX and end set, the
 * end of table's records (table + 1, group 0).  Returns the length. */
static size_t rec_key(uint8_t *out, qfs_table_t table, qfs_group_t group)
{
	size_t n = qfs_key_prefix(out, 0);

	out[n++] = 0;
	out[n++] = 'p';
	qfs_be64_put(out + n, table);
	n += 8;
	qfs_be64_put(out + n, group);
	return n + 8;
}

/* Bounds of the records of tables [t0, t1): lo, hi of rec_key length. */
static void rec_range(uint8_t *lo, uint8_t *hi, size_t *len, qfs_table_t t0, qfs_table_t t1)
{
	*len = rec_key(lo, t0, 0);
	(void)rec_key(hi, t1, 0);
}

void qfs_meta_part_encode(const struct qfs_meta_part *p, struct qfs_buf *out)
{
	qfs_buf_put_u8(out, REC_VERSION);
	qfs_buf_put_u64(out, p->epoch);
	qfs_buf_put_bytes(out, p->lo, p->lo_len);
	qfs_buf_put_bytes(out, p->hi, p->hi_len);
	qfs_buf_put_u8(out, (uint8_t)p->nnodes);
	for (uint32_t i = 0; i < p->nnodes; i++)
		qfs_buf_put_u32(out, p->nodes[i]);
}

int qfs_meta_part_decode(const void *val, size_t len, struct qfs_meta_part *p)
{
	struct qfs_rd r;
	const uint8_t *lo, *hi;
	size_t lol, hil;
	uint8_t nn;

	qfs_rd_init(&r, val, len);
	if (qfs_rd_u8(&r) != REC_VERSION)
		return QFS_ECORRUPT;
	p->epoch = qfs_rd_u64(&r);
	lo = qfs_rd_bytes(&r, &lol);
	hi = qfs_rd_bytes(&r, &hil);
	nn = qfs_rd_u8(&r);
	if (r.err || lol > QFS_KEY_MAX || hil > QFS_KEY_MAX || nn > QFS_META_REPLICAS)
		return QFS_ECORRUPT;
	for (uint8_t i = 0; i < nn; i++)
		p->nodes[i] = qfs_rd_u32(&r);
	if (r.err || qfs_rd_left(&r) != 0)
		return QFS_ECORRUPT;
	if (lol)
		memcpy(p->lo, lo, lol);
	if (hil)
		memcpy(p->hi, hi, hil);
	p->lo_len = (uint32_t)lol;
	p->hi_len = (uint32_t)hil;
	p->nnodes = nn;
	return 0;
}

/* Fence record (in the partition's own group): be64 epoch first (what
 * QFS_OP_RANGE compares), then the table and the range. */
static void fence_encode(const struct qfs_meta_part *p, struct qfs_buf *out)
{
	qfs_buf_put_u64(out, p->epoch);
	qfs_buf_put_u64(out, p->table);
	qfs_buf_put_bytes(out, p->lo, p->lo_len);
	qfs_buf_put_bytes(out, p->hi, p->hi_len);
}

int qfs_meta_fence_decode(const void *val, size_t len, struct qfs_meta_part *p)
{
	struct qfs_rd r;
	const uint8_t *lo, *hi;
	size_t lol, hil;

	qfs_rd_init(&r, val, len);
	p->epoch = qfs_rd_u64(&r);
	p->table = qfs_rd_u64(&r);
	lo = qfs_rd_bytes(&r, &lol);
	hi = qfs_rd_bytes(&r, &hil);
	if (r.err || qfs_rd_left(&r) != 0 || lol > QFS_KEY_MAX || hil > QFS_KEY_MAX)
		return QFS_ECORRUPT;
	if (lol)
		memcpy(p->lo, lo, lol);
	if (hil)
		memcpy(p->hi, hi, hil);
	p->lo_len = (uint32_t)lol;
	p->hi_len = (uint32_t)hil;
	return 0;
}

static int part_cmp(const void *a, const void *b)
{
	const struct qfs_meta_part *x = a, *y = b;

	if (x->table != y->table)
		return x->table < y->table ? -1 : 1;
	return qfs_meta_keycmp(x->lo, x->lo_len, y->lo, y->lo_len);
}

/* ---- loading ---- */

struct load_ctx {
	struct qfs_meta_part *v;
	size_t n, cap;
	int err;
};

static int load_cb(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, void *arg)
{
	struct load_ctx *c = arg;
	struct qfs_meta_part p;

	if (kl != QFS_KEY_PREFIX_LEN + REC_SK_LEN + 16) {
		c->err = QFS_ECORRUPT;
		return 1;
	}
	memset(&p, 0, sizeof(p));
	p.table = qfs_be64_get(k + QFS_KEY_PREFIX_LEN + REC_SK_LEN);
	p.group = qfs_be64_get(k + QFS_KEY_PREFIX_LEN + REC_SK_LEN + 8);
	if (qfs_meta_part_decode(v, vl, &p) != 0) {
		QFS_LOG(QFS_LOG_ERR, "undecodable partition record table=%llu group=%016llx",
			(unsigned long long)p.table, (unsigned long long)p.group);
		c->err = QFS_ECORRUPT;
		return 1;
	}
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		struct qfs_meta_part *nv = realloc(c->v, cap * sizeof(*nv));
		if (!nv) {
			c->err = -ENOMEM;
			return 1;
		}
		c->v = nv;
		c->cap = cap;
	}
	c->v[c->n++] = p;
	return 0;
}

/* Tell the cell where each partition of v lives (its replica nodes), so
 * that a cluster cell needs not ask the nodes.  No lock held. */
static void hint_nodes(struct qfs_meta *m, const struct qfs_meta_part *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].nnodes)
			qfs_cell_group_hint(m->cell, v[i].group, v[i].nodes, v[i].nnodes);
}

/* Read the records of tables [t0, t1) into c. */
static int load_range(struct qfs_meta *m, qfs_table_t t0, qfs_table_t t1, struct load_ctx *c)
{
	uint8_t lo[64], hi[64];
	size_t len;
	int rc;

	rec_range(lo, hi, &len, t0, t1);
	rc = qfs_cell_scan(m->cell, QFS_META_GROUP, lo, len, hi, len, load_cb, c);
	if (rc == 0)
		rc = c->err;
	if (rc < 0)
		return rc;
	return 0;
}

int qfs_meta_open(struct qfs_cell *cell, struct qfs_meta **out)
{
	struct qfs_meta *m = calloc(1, sizeof(*m));
	struct load_ctx c = { 0 };
	int rc;

	if (!m)
		return -ENOMEM;
	m->cell = cell;
	pthread_rwlock_init(&m->lock, NULL);
	rc = load_range(m, 0, UINT64_MAX, &c);
	if (rc) {
		free(c.v);
		qfs_meta_free(m);
		return rc;
	}
	if (c.n > 1) /* c.v is NULL when the map is empty */
		qsort(c.v, c.n, sizeof(*c.v), part_cmp);
	hint_nodes(m, c.v, c.n);
	m->v = c.v;
	m->n = c.n;
	m->cap = c.cap;
	*out = m;
	return 0;
}

void qfs_meta_free(struct qfs_meta *m)
{
	if (!m)
		return;
	pthread_rwlock_destroy(&m->lock);
	free(m->v);
	free(m);
}

/* Index of table's first partition in m->v (or where it would be); lock held. */
static size_t first_of(const struct qfs_meta *m, qfs_table_t table)
{
	size_t a = 0, b = m->n;

	while (a < b) {
		size_t mid = a + (b - a) / 2;
		if (m->v[mid].table < table)
			a = mid + 1;
		else
			b = mid;
	}
	return a;
}

void (*qfs_meta_test_reload_hook)(qfs_table_t table); /* test hook, see meta.h */

/* The version of a map: the sum of its partitions' epochs.  A split raises
 * it (E becomes twice E+1), a creation too (none becomes epoch 1); only a
 * drop, which leaves no record, lowers it.  So of two reads of a table's
 * records, the one with the lower version is the older. */
static uint64_t map_version(const struct qfs_meta_part *v, size_t n)
{
	uint64_t s = 0;

	for (size_t i = 0; i < n; i++)
		s += v[i].epoch;
	return s;
}

int qfs_meta_reload_table(struct qfs_meta *m, qfs_table_t table)
{
	struct load_ctx c = { 0 };
	size_t i, j, n;
	int rc, reread = 0;

again:
	rc = load_range(m, table, table + 1, &c);
	if (rc) {
		free(c.v);
		return rc;
	}
	if (c.n > 1)
		qsort(c.v, c.n, sizeof(*c.v), part_cmp);
	if (qfs_meta_test_reload_hook)
		qfs_meta_test_reload_hook(table);
	pthread_rwlock_wrlock(&m->lock);
	i = first_of(m, table);
	for (j = i; j < m->n && m->v[j].table == table; j++)
		;
	/* The read ran outside the lock: another reload (a split's commit)
	 * may have installed a newer map since.  Never go back: a lower
	 * version is an older read; no record where some are cached is a
	 * drop or a read from before the table's creation or first split,
	 * so it is read once more and installed only if still empty. */
	if (c.n && map_version(c.v, c.n) < map_version(m->v + i, j - i)) {
		pthread_rwlock_unlock(&m->lock);
		free(c.v);
		return 0;
	}
	if (c.n == 0 && j > i && !reread) {
		pthread_rwlock_unlock(&m->lock);
		free(c.v);
		memset(&c, 0, sizeof(c));
		reread = 1;
		goto again;
	}
	n = m->n - (j - i) + c.n;
	if (n > m->cap) {
		struct qfs_meta_part *nv = realloc(m->v, n * sizeof(*nv));
		if (!nv) {
			pthread_rwlock_unlock(&m->lock);
			free(c.v);
			return -ENOMEM;
		}
		m->v = nv;
		m->cap = n;
	}
	if (m->n > j)
		memmove(m->v + i + c.n, m->v + j, (m->n - j) * sizeof(*m->v));
	if (c.n)
		memcpy(m->v + i, c.v, c.n * sizeof(*c.v));
	m->n = n;
	pthread_rwlock_unlock(&m->lock);
	hint_nodes(m, c.v, c.n);
	free(c.v);
	return 0;
}

static void legacy_part(struct qfs_meta_part *p, qfs_table_t table)
{
	memset(p, 0, offsetof(struct qfs_meta_part, lo));
	p->table = table;
	p->group = table;
	p->lo_len = p->hi_len = 0;
	p->nnodes = 0;
}

int qfs_meta_lookup(struct qfs_meta *m, qfs_table_t table, const uint8_t *key, size_t key_len,
		    struct qfs_meta_part *out)
{
	size_t i, a, b;

	__atomic_fetch_add(&m->lookups, 1, __ATOMIC_RELAXED);
	pthread_rwlock_rdlock(&m->lock);
	i = first_of(m, table);
	if (i == m->n || m->v[i].table != table) {
		pthread_rwlock_unlock(&m->lock);
		legacy_part(out, table);
		return 0;
	}
	/* last partition of table with lo <= key */
	a = i;
	b = m->n;
	while (a < b) {
		size_t mid = a + (b - a) / 2;
		if (m->v[mid].table == table && qfs_meta_keycmp(m->v[mid].lo, m->v[mid].lo_len, key, key_len) <= 0)
			a = mid + 1;
		else
			b = mid;
	}
	*out = m->v[a > i ? a - 1 : i];
	pthread_rwlock_unlock(&m->lock);
	return 0;
}

int qfs_meta_parts(struct qfs_meta *m, qfs_table_t table, struct qfs_meta_part **out, size_t *n)
{
	struct qfs_meta_part *v;
	size_t i, j;

	pthread_rwlock_rdlock(&m->lock);
	i = first_of(m, table);
	for (j = i; j < m->n && m->v[j].table == table; j++)
		;
	v = malloc((j > i ? j - i : 1) * sizeof(*v));
	if (!v) {
		pthread_rwlock_unlock(&m->lock);
		return -ENOMEM;
	}
	if (j > i)
		memcpy(v, m->v + i, (j - i) * sizeof(*v));
	else
		legacy_part(v, table);
	pthread_rwlock_unlock(&m->lock);
	*out = v;
	*n = j > i ? j - i : 1;
	return 0;
}

int qfs_meta_group_used(struct qfs_meta *m, qfs_group_t group)
{
	int used = 0;

	pthread_rwlock_rdlock(&m->lock);
	for (size_t i = 0; i < m->n && !used; i++)
		used = m->v[i].group == group;
	pthread_rwlock_unlock(&m->lock);
	return used;
}

int qfs_meta_groups_on(struct qfs_meta *m, uint32_t node, struct qfs_glist *out)
{
	pthread_rwlock_rdlock(&m->lock);
	for (size_t i = 0; i < m->n; i++)
		for (uint32_t k = 0; k < m->v[i].nnodes; k++)
			if (m->v[i].nodes[k] == node && !qfs_glist_has(out, m->v[i].group)) {
				qfs_glist_add(m->v[i].group, out);
				break;
			}
	pthread_rwlock_unlock(&m->lock);
	return out->err;
}

uint64_t qfs_meta_lookups(struct qfs_meta *m)
{
	return __atomic_load_n(&m->lookups, __ATOMIC_RELAXED);
}

/* ---- txn builders ---- */

void qfs_meta_rec_init(struct qfs_meta_rec *rec)
{
	rec->key_len = rec->key2_len = 0;
	qfs_buf_init(&rec->val);
}

void qfs_meta_rec_close(struct qfs_meta_rec *rec)
{
	qfs_buf_close(&rec->val);
}

int qfs_meta_add_put(struct qfs_txn *t, struct qfs_meta_rec *rec, const struct qfs_meta_part *p)
{
	struct qfs_op *op;

	rec->key_len = rec_key(rec->key, p->table, p->group);
	qfs_buf_reset(&rec->val);
	qfs_meta_part_encode(p, &rec->val);
	if (rec->val.err)
		return rec->val.err;
	op = qfs_txn_add(t, QFS_OP_PUT);
	if (!op)
		return -ENOMEM;
	op->key = rec->key;
	op->key_len = (uint32_t)rec->key_len;
	op->val = rec->val.data;
	op->val_len = (uint32_t)rec->val.len;
	return 0;
}

int qfs_meta_add_expect(struct qfs_txn *t, struct qfs_meta_rec *rec, const struct qfs_meta_part *p)
{
	struct qfs_op *op;

	rec->key_len = rec_key(rec->key, p->table, p->group);
	qfs_buf_reset(&rec->val);
	if (p->epoch == 0) { /* legacy: no record; none may have appeared */
		op = qfs_txn_add(t, QFS_OP_EXPECT_EMPTY);
		if (!op)
			return -ENOMEM;
		rec_range(rec->key, rec->key2, &rec->key_len, p->table, p->table + 1);
		rec->key2_len = rec->key_len;
		op->key = rec->key;
		op->key_len = (uint32_t)rec->key_len;
		op->key2 = rec->key2;
		op->key2_len = (uint32_t)rec->key2_len;
		op->err = QFS_ECONFLICT;
		return 0;
	}
	qfs_meta_part_encode(p, &rec->val);
	if (rec->val.err)
		return rec->val.err;
	op = qfs_txn_add(t, QFS_OP_EXPECT_VALUE);
	if (!op)
		return -ENOMEM;
	op->key = rec->key;
	op->key_len = (uint32_t)rec->key_len;
	op->val = rec->val.data;
	op->val_len = (uint32_t)rec->val.len;
	op->err = QFS_ECONFLICT;
	return 0;
}

int qfs_meta_add_drop(struct qfs_txn *t, struct qfs_meta_rec *rec, qfs_table_t table)
{
	struct qfs_op *op = qfs_txn_add(t, QFS_OP_DEL_RANGE);

	if (!op)
		return -ENOMEM;
	rec_range(rec->key, rec->key2, &rec->key_len, table, table + 1);
	rec->key2_len = rec->key_len;
	op->key = rec->key;
	op->key_len = (uint32_t)rec->key_len;
	op->key2 = rec->key2;
	op->key2_len = (uint32_t)rec->key2_len;
	return 0;
}

int qfs_meta_add_fence(struct qfs_txn *t, struct qfs_meta_rec *rec, const struct qfs_meta_part *p)
{
	struct qfs_op *op;

	qfs_buf_reset(&rec->val);
	fence_encode(p, &rec->val);
	if (rec->val.err)
		return rec->val.err;
	op = qfs_txn_add(t, QFS_OP_PUT);
	if (!op)
		return -ENOMEM;
	op->key = QFS_META_FENCE_KEY;
	op->key_len = QFS_META_FENCE_KEY_LEN;
	op->val = rec->val.data;
	op->val_len = (uint32_t)rec->val.len;
	return 0;
}

void qfs_meta_part_first(struct qfs_meta_part *p, qfs_table_t table, qfs_group_t group, uint32_t nnodes)
{
	memset(p, 0, offsetof(struct qfs_meta_part, lo));
	p->table = table;
	p->group = group;
	p->epoch = 1;
	p->nnodes = nnodes > QFS_META_REPLICAS ? QFS_META_REPLICAS : nnodes;
	for (uint32_t i = 0; i < p->nnodes; i++)
		p->nodes[i] = i + 1;
}

void qfs_meta_part_place(struct qfs_meta *m, struct qfs_meta_part *p)
{
	uint32_t n = qfs_cell_group_nodes(m->cell, p->group, p->nodes, QFS_META_REPLICAS);

	p->nnodes = n > QFS_META_REPLICAS ? QFS_META_REPLICAS : n;
}

/* Encode t into b and propose it to the meta group: 0 or the first error
 * (encoding, the cell's, then the txn's own result). */
static int meta_propose(struct qfs_meta *m, const struct qfs_txn *t, struct qfs_buf *b)
{
	int rc, res = 0;

	qfs_txn_encode(t, b);
	if (b->err)
		return b->err;
	rc = qfs_cell_propose(m->cell, QFS_META_GROUP, b->data, b->len, &res);
	return rc ? rc : res;
}

int qfs_meta_set_nodes(struct qfs_meta *m, qfs_group_t group, const uint32_t *ids, uint32_t n)
{
	struct qfs_meta_part old, nw;
	struct qfs_meta_rec r0, r1;
	struct qfs_buf b;
	struct qfs_txn t;
	int rc, found = 0;

	if (!n || n > QFS_META_REPLICAS)
		return -EINVAL;
	pthread_rwlock_rdlock(&m->lock);
	for (size_t i = 0; i < m->n && !found; i++)
		if (m->v[i].group == group) {
			old = m->v[i];
			found = 1;
		}
	pthread_rwlock_unlock(&m->lock);
	if (!found)
		return 0;
	nw = old;
	nw.nnodes = n;
	memcpy(nw.nodes, ids, n * sizeof(ids[0]));
	qfs_meta_rec_init(&r0);
	qfs_meta_rec_init(&r1);
	qfs_buf_init(&b);
	qfs_txn_init(&t);
	rc = qfs_meta_add_expect(&t, &r0, &old);
	if (rc == 0)
		rc = qfs_meta_add_put(&t, &r1, &nw);
	if (rc == 0)
		rc = meta_propose(m, &t, &b);
	if (rc == 0)
		rc = qfs_meta_reload_table(m, old.table);
	else if (rc == QFS_ECONFLICT)
		(void)qfs_meta_reload_table(m, old.table); /* the caller's retry sees the record */
	qfs_txn_close(&t);
	qfs_buf_close(&b);
	qfs_meta_rec_close(&r0);
	qfs_meta_rec_close(&r1);
	return rc;
}

int qfs_meta_test_split_lost; /* test hook, see meta.h */

/* ---- split intents (meta.h) ---- */

#define INTENT_VERSION 1

/* Intent key of (table, group): prefix(0) "\0" "s" be64 table be64 group. */
static size_t intent_key(uint8_t *out, qfs_table_t table, qfs_group_t group)
{
	size_t n = qfs_key_prefix(out, 0);

	out[n++] = 0;
	out[n++] = 's';
	qfs_be64_put(out + n, table);
	n += 8;
	qfs_be64_put(out + n, group);
	return n + 8;
}

static void intent_encode(const struct qfs_meta_intent *in, struct qfs_buf *out)
{
	qfs_buf_put_u8(out, INTENT_VERSION);
	qfs_buf_put_u64(out, in->owner);
	qfs_buf_put_u64(out, in->beat);
	qfs_buf_put_u64(out, in->newg);
	qfs_buf_put_u64(out, in->epoch);
}

/* Append to t: intent in's key must hold exactly in (an EXPECT_VALUE),
 * or be absent (in->owner 0: an EXPECT_ABSENT).  rec holds key and value. */
static int add_intent_expect(struct qfs_txn *t, struct qfs_meta_rec *rec, const struct qfs_meta_intent *in)
{
	struct qfs_op *op;

	rec->key_len = intent_key(rec->key, in->table, in->group);
	qfs_buf_reset(&rec->val);
	op = qfs_txn_add(t, in->owner ? QFS_OP_EXPECT_VALUE : QFS_OP_EXPECT_ABSENT);
	if (!op)
		return -ENOMEM;
	if (in->owner) {
		intent_encode(in, &rec->val);
		if (rec->val.err)
			return rec->val.err;
		op->val = rec->val.data;
		op->val_len = (uint32_t)rec->val.len;
	}
	op->key = rec->key;
	op->key_len = (uint32_t)rec->key_len;
	op->err = QFS_ECONFLICT;
	return 0;
}

/* Append to t the PUT of in (nw non-NULL) or the DEL of its key. */
static int add_intent_set(struct qfs_txn *t, struct qfs_meta_rec *rec, const struct qfs_meta_intent *key_of,
			  const struct qfs_meta_intent *nw)
{
	struct qfs_op *op = qfs_txn_add(t, nw ? QFS_OP_PUT : QFS_OP_DEL);

	if (!op)
		return -ENOMEM;
	rec->key_len = intent_key(rec->key, key_of->table, key_of->group);
	qfs_buf_reset(&rec->val);
	if (nw) {
		intent_encode(nw, &rec->val);
		if (rec->val.err)
			return rec->val.err;
		op->val = rec->val.data;
		op->val_len = (uint32_t)rec->val.len;
	}
	op->key = rec->key;
	op->key_len = (uint32_t)rec->key_len;
	return 0;
}

int qfs_meta_intent_claim(struct qfs_meta *m, const struct qfs_meta_part *p, const struct qfs_meta_intent *in)
{
	struct qfs_meta_intent none = *in;
	struct qfs_meta_rec r0, r1, r2;
	struct qfs_buf b;
	struct qfs_txn t;
	int rc;

	none.owner = 0;
	qfs_meta_rec_init(&r0);
	qfs_meta_rec_init(&r1);
	qfs_meta_rec_init(&r2);
	qfs_buf_init(&b);
	qfs_txn_init(&t);
	rc = qfs_meta_add_expect(&t, &r0, p);
	if (rc == 0)
		rc = add_intent_expect(&t, &r1, &none);
	if (rc == 0)
		rc = add_intent_set(&t, &r2, in, in);
	if (rc == 0)
		rc = meta_propose(m, &t, &b);
	qfs_txn_close(&t);
	qfs_buf_close(&b);
	qfs_meta_rec_close(&r0);
	qfs_meta_rec_close(&r1);
	qfs_meta_rec_close(&r2);
	return rc;
}

int qfs_meta_intent_swap(struct qfs_meta *m, const struct qfs_meta_intent *cur, const struct qfs_meta_intent *nw)
{
	struct qfs_meta_rec r0, r1;
	struct qfs_buf b;
	struct qfs_txn t;
	int rc;

	qfs_meta_rec_init(&r0);
	qfs_meta_rec_init(&r1);
	qfs_buf_init(&b);
	qfs_txn_init(&t);
	rc = add_intent_expect(&t, &r0, cur);
	if (rc == 0)
		rc = add_intent_set(&t, &r1, cur, nw);
	if (rc == 0)
		rc = meta_propose(m, &t, &b);
	qfs_txn_close(&t);
	qfs_buf_close(&b);
	qfs_meta_rec_close(&r0);
	qfs_meta_rec_close(&r1);
	return rc;
}

struct intents_ctx {
	struct qfs_meta_intent *out;
	size_t max, n;
	int err;
};

static int intents_cb(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, void *arg)
{
	struct intents_ctx *c = arg;
	struct qfs_meta_intent in;
	struct qfs_rd r;

	if (kl != QFS_KEY_PREFIX_LEN + 2 + 16) {
		c->err = QFS_ECORRUPT;
		return 1;
	}
	in.table = qfs_be64_get(k + QFS_KEY_PREFIX_LEN + 2);
	in.group = qfs_be64_get(k + QFS_KEY_PREFIX_LEN + 2 + 8);
	qfs_rd_init(&r, v, vl);
	if (qfs_rd_u8(&r) != INTENT_VERSION) {
		c->err = QFS_ECORRUPT;
		return 1;
	}
	in.owner = qfs_rd_u64(&r);
	in.beat = qfs_rd_u64(&r);
	in.newg = qfs_rd_u64(&r);
	in.epoch = qfs_rd_u64(&r);
	if (r.err) {
		c->err = QFS_ECORRUPT;
		return 1;
	}
	if (c->n < c->max)
		c->out[c->n++] = in;
	return c->n >= c->max;
}

int qfs_meta_intents(struct qfs_meta *m, qfs_table_t table, struct qfs_meta_intent *out, size_t max, size_t *n)
{
	uint8_t lo[64], hi[64];
	size_t ll, hl;
	struct intents_ctx c = { out, max, 0, 0 };
	int rc;

	ll = intent_key(lo, table, 0);
	hl = intent_key(hi, table ? table + 1 : UINT64_MAX, table ? 0 : UINT64_MAX);
	rc = qfs_cell_scan(m->cell, QFS_META_GROUP, lo, ll, hi, hl, intents_cb, &c);
	if (rc == 0 || rc == 1)
		rc = c.err;
	if (rc < 0) {
		if (rc == QFS_ECORRUPT)
			QFS_LOG(QFS_LOG_ERR, "undecodable split intent record table=%llu err=\"%s\"",
				(unsigned long long)table, qfs_strerror(rc));
		return rc;
	}
	*n = c.n;
	return 0;
}

int qfs_meta_split(struct qfs_meta *m, const struct qfs_meta_part *old, const uint8_t *key,
		   size_t key_len, qfs_group_t newg, struct qfs_meta_part *left,
		   struct qfs_meta_part *right)
{
	return qfs_meta_split_claimed(m, old, key, key_len, newg, NULL, left, right);
}

int qfs_meta_split_claimed(struct qfs_meta *m, const struct qfs_meta_part *old, const uint8_t *key,
			   size_t key_len, qfs_group_t newg, const struct qfs_meta_intent *in,
			   struct qfs_meta_part *left, struct qfs_meta_part *right)
{
	struct qfs_meta_rec r0, r1, r2, r3, r4;
	struct qfs_meta_part l = *old, rt = *old;
	struct qfs_buf b;
	struct qfs_txn t;
	int rc;

	if (key_len == 0 || key_len > QFS_KEY_MAX || !qfs_meta_part_has(old, key, key_len) ||
	    qfs_meta_keycmp(key, key_len, old->lo, old->lo_len) == 0)
		return -EINVAL;
	memcpy(l.hi, key, key_len);
	l.hi_len = (uint32_t)key_len;
	l.epoch = old->epoch + 1;
	memcpy(rt.lo, key, key_len);
	rt.lo_len = (uint32_t)key_len;
	rt.group = newg;
	rt.epoch = old->epoch + 1;
	qfs_meta_part_place(m, &rt);
	qfs_meta_rec_init(&r0);
	qfs_meta_rec_init(&r1);
	qfs_meta_rec_init(&r2);
	qfs_meta_rec_init(&r3);
	qfs_meta_rec_init(&r4);
	qfs_buf_init(&b);
	qfs_txn_init(&t);
	rc = qfs_meta_add_expect(&t, &r0, old);
	if (rc == 0 && in) /* the intent held, and released with the commit */
		rc = add_intent_expect(&t, &r3, in);
	if (rc == 0 && in)
		rc = add_intent_set(&t, &r4, in, NULL);
	if (rc == 0)
		rc = qfs_meta_add_put(&t, &r1, &l);
	if (rc == 0)
		rc = qfs_meta_add_put(&t, &r2, &rt);
	if (rc == 0)
		rc = meta_propose(m, &t, &b);
	if (rc == 0 && qfs_meta_test_split_lost)
		rc = -ETIMEDOUT;
	if (rc == 0)
		rc = qfs_meta_reload_table(m, old->table);
	qfs_txn_close(&t);
	qfs_buf_close(&b);
	qfs_meta_rec_close(&r0);
	qfs_meta_rec_close(&r1);
	qfs_meta_rec_close(&r2);
	qfs_meta_rec_close(&r3);
	qfs_meta_rec_close(&r4);
	if (rc)
		return rc;
	*left = l;
	*right = rt;
	return 0;
}

int qfs_meta_bump_claimed(struct qfs_meta *m, const struct qfs_meta_part *p, uint64_t epoch,
			  const struct qfs_meta_intent *in, struct qfs_meta_part *out)
{
	struct qfs_meta_rec r0, r1, r2, r3;
	struct qfs_meta_part np = *p;
	struct qfs_buf b;
	struct qfs_txn t;
	int rc;

	if (epoch <= p->epoch || !in->owner)
		return -EINVAL;
	np.epoch = epoch;
	qfs_meta_rec_init(&r0);
	qfs_meta_rec_init(&r1);
	qfs_meta_rec_init(&r2);
	qfs_meta_rec_init(&r3);
	qfs_buf_init(&b);
	qfs_txn_init(&t);
	rc = qfs_meta_add_expect(&t, &r0, p);
	if (rc == 0)
		rc = add_intent_expect(&t, &r1, in);
	if (rc == 0)
		rc = add_intent_set(&t, &r2, in, NULL);
	if (rc == 0)
		rc = qfs_meta_add_put(&t, &r3, &np);
	if (rc == 0)
		rc = meta_propose(m, &t, &b);
	if (rc == 0)
		rc = qfs_meta_reload_table(m, p->table);
	qfs_txn_close(&t);
	qfs_buf_close(&b);
	qfs_meta_rec_close(&r0);
	qfs_meta_rec_close(&r1);
	qfs_meta_rec_close(&r2);
	qfs_meta_rec_close(&r3);
	if (rc)
		return rc;
	*out = np;
	return 0;
}
