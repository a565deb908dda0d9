/*
 * item.c - the typed item API of router.h: items named by what they are
 * (dentry, inode, chunk; ranges of a directory's entries or a file's
 * chunks) are encoded here into the table's keys (common/key.h,
 * doc/format-keys.md) and handed to the raw-key calls of router.c, and
 * scanned keys are decoded back, so that fs/ never builds nor parses a key.
 * The encoding is the one fs/ used to do itself: nothing stored changes.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>

#include "common/key.h"
#include "common/log.h"
#include "router/router.h"

#include "router/router_int.h"

#define KBLOCK_SIZE 4096 /* bytes of encoded keys per block (>= 2 * QFS_KEY_MAX) */

/* A block of the encoded keys an item txn's ops point at. */
struct qfs_router_kblock {
	struct qfs_router_kblock *next;
	size_t used;             /* bytes of b in use */
	uint8_t b[KBLOCK_SIZE];
};

/* Encode k into out (QFS_KEY_MAX bytes); its length. */
static size_t key_encode(uint8_t *out, const struct qfs_router_key *k)
{
	switch (k->kind) {
	case QFS_RKEY_DENTRY:
		return qfs_key_dentry(out, k->ino, k->name, k->name_len);
	case QFS_RKEY_INODE:
		return qfs_key_inode(out, k->ino);
	case QFS_RKEY_CHUNK:
		return qfs_key_chunk(out, k->ino, k->chunk);
	}
	return 0; /* not a kind: an empty key, which no item has */
}

/* Encode rg into [lo, hi); lo has QFS_KEY_MAX + 1 bytes, hi QFS_KEY_MAX. */
static void range_encode(const struct qfs_router_range *rg, uint8_t *lo, size_t *lol, uint8_t *hi, size_t *hil)
{
	if (rg->kind == QFS_RKEY_CHUNK) {
		qfs_key_chunk_range(lo, lol, hi, hil, rg->ino, rg->from, rg->to);
		return;
	}
	qfs_key_dentry_range(lo, lol, hi, hil, rg->ino);
	if (rg->after) {
		*lol = qfs_key_dentry(lo, rg->ino, rg->after, rg->after_len);
		lo[(*lol)++] = 0; /* the first key after it */
	}
}

/* Room for len bytes of keys in t: a pointer into its last block (a new
 * one if that is full), or NULL (-ENOMEM).  Taken by keep(). */
static uint8_t *slot(struct qfs_router_itxn *t, size_t len)
{
	struct qfs_router_kblock *b = t->kb;

	if (!b || KBLOCK_SIZE - b->used < len) {
		b = malloc(sizeof(*b));
		if (!b)
			return NULL;
		b->next = t->kb;
		b->used = 0;
		t->kb = b;
	}
	return b->b + b->used;
}

static void keep(struct qfs_router_itxn *t, size_t len)
{
	t->kb->used += len;
}

void qfs_router_itxn_init(struct qfs_router_itxn *t)
{
	qfs_txn_init(&t->t);
	t->kb = NULL;
}

void qfs_router_itxn_close(struct qfs_router_itxn *t)
{
	qfs_txn_close(&t->t);
	while (t->kb) {
		struct qfs_router_kblock *b = t->kb;
		t->kb = b->next;
		free(b);
	}
}

struct qfs_op *qfs_router_itxn_add(struct qfs_router_itxn *t, enum qfs_op_kind kind,
				   const struct qfs_router_key *k, const struct qfs_router_key *k2)
{
	uint8_t *p1, *p2 = NULL;
	size_t l1, l2 = 0;
	struct qfs_op *op;

	if (!(p1 = slot(t, 2 * QFS_KEY_MAX)))
		return NULL;
	l1 = key_encode(p1, k);
	if (k2) {
		p2 = p1 + l1;
		l2 = key_encode(p2, k2);
	}
	if (!(op = qfs_txn_add(&t->t, kind)))
		return NULL;
	keep(t, l1 + l2);
	op->key = p1;
	op->key_len = (uint32_t)l1;
	if (k2) {
		op->key2 = p2;
		op->key2_len = (uint32_t)l2;
	}
	return op;
}

qfs_ino_t qfs_router_op_inode(const struct qfs_op *op)
{
	struct qfs_key k;

	if (!op->key || qfs_key_parse(op->key, op->key_len, &k) || k.kind != QFS_KEY_INODE)
		return 0;
	return k.pk;
}

struct qfs_op *qfs_router_itxn_add_range(struct qfs_router_itxn *t, enum qfs_op_kind kind,
					 const struct qfs_router_range *rg)
{
	uint8_t *lo, *hi;
	size_t lol, hil;
	struct qfs_op *op;

	if (!(lo = slot(t, 2 * QFS_KEY_MAX + 1)))
		return NULL;
	hi = lo + QFS_KEY_MAX + 1;
	range_encode(rg, lo, &lol, hi, &hil);
	if (!(op = qfs_txn_add(&t->t, kind)))
		return NULL;
	keep(t, QFS_KEY_MAX + 1 + hil);
	op->key = lo;
	op->key_len = (uint32_t)lol;
	op->key2 = hi;
	op->key2_len = (uint32_t)hil;
	return op;
}

int qfs_router_item_txn(struct qfs_router *r, qfs_table_t table, const struct qfs_router_itxn *t, int *result)
{
	return qfs_router_txn(r, table, &t->t, result);
}

int qfs_router_item_get(struct qfs_router *r, qfs_table_t table, const struct qfs_router_key *k, void **val,
			size_t *val_len)
{
	uint8_t key[QFS_KEY_MAX];
	size_t klen = key_encode(key, k);

	return qfs_router_get(r, table, key, klen, val, val_len);
}

int qfs_router_item_get_val(struct qfs_router *r, qfs_table_t table, const struct qfs_router_key *k,
			    struct qfs_val *out)
{
	uint8_t key[QFS_KEY_MAX];
	size_t klen = key_encode(key, k);

	return qfs_router_get_val(r, table, key, klen, out);
}

int qfs_router_item_get_node(struct qfs_router *r, uint32_t id, qfs_table_t table, const struct qfs_router_key *k,
			     void **val, size_t *val_len)
{
	uint8_t key[QFS_KEY_MAX];
	size_t klen = key_encode(key, k);

	return qfs_router_get_node(r, id, table, key, klen, val, val_len);
}

struct item_scan {
	qfs_router_item_cb cb;
	void *arg;
	qfs_table_t table;
	int err;           /* QFS_ECORRUPT: a key did not decode */
};

static int item_scan_cb(const uint8_t *key, size_t key_len, const uint8_t *val, size_t val_len, void *arg)
{
	struct item_scan *s = arg;
	struct qfs_router_key k = { 0 };
	struct qfs_key pk;
	int rc = qfs_key_parse(key, key_len, &pk);

	if (rc) {
		QFS_LOG(QFS_LOG_ERR, "undecodable key in a scan table=%llu key_len=%zu err=\"%s\"",
			(unsigned long long)s->table, key_len, qfs_strerror(rc));
		s->err = rc;
		return 1;
	}
	k.ino = pk.pk;
	switch (pk.kind) {
	case QFS_KEY_DENTRY:
		k.kind = QFS_RKEY_DENTRY;
		k.name = (const char *)pk.name;
		k.name_len = pk.name_len;
		break;
	case QFS_KEY_INODE:
		k.kind = QFS_RKEY_INODE;
		break;
	case QFS_KEY_CHUNK:
		k.kind = QFS_RKEY_CHUNK;
		k.chunk = pk.chunk;
		break;
	}
	return s->cb(&k, val, val_len, s->arg);
}

int qfs_router_item_scan(struct qfs_router *r, qfs_table_t table, const struct qfs_router_range *rg,
			 qfs_router_item_cb cb, void *arg)
{
	uint8_t lo[QFS_KEY_MAX + 1], hi[QFS_KEY_MAX];
	size_t lol, hil;
	struct item_scan s = { cb, arg, table, 0 };
	int rc;

	range_encode(rg, lo, &lol, hi, &hil);
	rc = qfs_router_scan(r, table, lo, lol, hi, hil, item_scan_cb, &s);
	return s.err ? s.err : rc;
}
