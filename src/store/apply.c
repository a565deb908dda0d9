/*
 * apply.c - the semantics of a txn (common/txn.h, doc/format-txn.md) on the
 * items of one group.
 *
 * Ops run in order against a view made of an in-memory overlay (every key the
 * txn wrote so far: a value or a tombstone, sorted by key) over RocksDB, so
 * later ops see earlier writes.  Point reads consult the overlay first; range
 * ops (DEL_RANGE, EXPECT_EMPTY) merge a bounded RocksDB iterator with the
 * overlay.  Nothing reaches RocksDB until every op succeeded: then the
 * overlay becomes puts and deletes in the caller's WriteBatch, which also
 * carries the new applied LSN.  The first failing op ends the txn and its
 * error is the result; the overlay is dropped, so a failed txn changes no
 * item.  The outcome depends only on the group's items and the txn, so every
 * replica computes the same one.
 *
 * Errors of two kinds: an op's own failure (a condition, -ENOENT for a patch
 * on an absent inode, xattr errors, a stored inode that does not decode) is
 * the txn's result and a committed outcome; -ENOMEM and -EIO are this
 * replica's trouble, abort the apply and leave the applied LSN where it was.
 *
 * Counts (doc/format-items.md "Counts kept at apply time"): every PUT, DEL,
 * DEL_RANGE and PATCH of a chunk item adds the change of its value length to a
 * per-ino delta, and every inode item that appears or disappears adds +1/-1
 * to the group's inode delta; after the last op the deltas are added to the
 * inode items (chunk_bytes of inode(ino), ninodes of inode(group)) if they
 * still exist.  A PUT of an inode keeps the counts of the item it replaces
 * (0 for a new one): counts belong to the store, not to the writer.  A
 * count a version 1 item did not keep stays unknown, except that deleting
 * every chunk of an ino (one DEL_RANGE from chunk 0 to the end) makes its
 * chunk count known again.
 *
 * Runs only on the node's I/O thread (the only writer), so the items it reads
 * cannot change under it.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/crc32c.h"
#include "common/item.h"
#include "common/log.h"
#include "store/store_int.h"

/* One key written by the txn: a value, or a tombstone when del. */
struct ov_ent {
	uint8_t *key;     /* heap, owned */
	size_t key_len;
	uint8_t *val;     /* heap, owned unless borrowed; NULL for a tombstone
			     or an empty value */
	size_t val_len;
	int del;
	int borrowed;     /* val points into the txn being applied (a PUT's
			     value, which outlives the applier): not freed */
	int ext;          /* val is the chunk's 'c' record in the extents
			     form (patch_ext), val_len its length: 1 the
			     item stays as it is, 2 it is written empty */
};

/* Change of the chunk bytes of one ino during the txn. */
struct acct {
	qfs_ino_t ino;
	int64_t delta;     /* bytes added to (or removed from) its chunk items */
	int reset;         /* every chunk was deleted: the count is delta itself */
};

struct applier {
	struct qfs_store *s;
	qfs_group_t group;
	const struct qfs_txn *t; /* the txn being run */
	struct ov_ent *ov; /* sorted by key, no duplicates */
	size_t nov;
	size_t cap;
	struct acct *acct; /* inos whose chunks changed, unsorted (few per txn) */
	size_t nacct;
	size_t acap;
	int64_t inode_delta; /* inode items created minus deleted */
};

/* Index of the first overlay entry with key >= k. */
static size_t ov_lower(const struct applier *a, const uint8_t *k, size_t kl)
{
	size_t lo = 0, hi = a->nov;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (qfs_key_cmp(a->ov[mid].key, a->ov[mid].key_len, k, kl) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct ov_ent *ov_find(struct applier *a, const uint8_t *k, size_t kl)
{
	size_t i = ov_lower(a, k, kl);
	if (i < a->nov && qfs_key_cmp(a->ov[i].key, a->ov[i].key_len, k, kl) == 0)
		return &a->ov[i];
	return NULL;
}

/* Record key -> val (ownership of val passes to the overlay, also on
 * error, unless borrowed: then val must outlive the applier) or a tombstone
 * (del).  0 or -ENOMEM. */
static int ov_set_val(struct applier *a, const uint8_t *k, size_t kl, uint8_t *val, size_t vl, int del,
		      int borrowed)
{
	size_t i = ov_lower(a, k, kl);
	if (i < a->nov && qfs_key_cmp(a->ov[i].key, a->ov[i].key_len, k, kl) == 0) {
		if (!a->ov[i].borrowed)
			free(a->ov[i].val);
		a->ov[i].val = val;
		a->ov[i].val_len = vl;
		a->ov[i].del = del;
		a->ov[i].borrowed = borrowed;
		a->ov[i].ext = 0;
		return 0;
	}
	uint8_t *kc = malloc(kl ? kl : 1);
	if (!kc)
		goto err_free_val;
	if (kl)
		memcpy(kc, k, kl);
	if (a->nov == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 16;
		struct ov_ent *ov = realloc(a->ov, cap * sizeof(*ov));
		if (!ov)
			goto err_free_key;
		a->ov = ov;
		a->cap = cap;
	}
	memmove(&a->ov[i + 1], &a->ov[i], (a->nov - i) * sizeof(*a->ov));
	a->ov[i] = (struct ov_ent){ .key = kc, .key_len = kl, .val = val, .val_len = vl, .del = del,
				    .borrowed = borrowed };
	a->nov++;
	return 0;

err_free_key:
	free(kc);
err_free_val:
	if (!borrowed)
		free(val);
	return -ENOMEM;
}

static int ov_set(struct applier *a, const uint8_t *k, size_t kl, uint8_t *val, size_t vl, int del)
{
	return ov_set_val(a, k, kl, val, vl, del, 0);
}

static void ov_free(struct applier *a)
{
	for (size_t i = 0; i < a->nov; i++) {
		free(a->ov[i].key);
		if (!a->ov[i].borrowed)
			free(a->ov[i].val);
	}
	free(a->ov);
	a->ov = NULL;
	a->nov = a->cap = 0;
}

static uint8_t *dup_bytes(const void *p, size_t n)
{
	uint8_t *c = malloc(n ? n : 1);
	if (c && n)
		memcpy(c, p, n);
	return c;
}

/* The value of item k (not a chunk) as the cache holds it (store_int.h
 * struct qfs_store cc), or NULL. */
static const struct store_cc *cc_item(struct applier *a, const uint8_t *k, size_t kl)
{
	uint8_t kb[STORE_CC_KEY_MAX];
	size_t dkl;

	if (STORE_GROUP_PREFIX_LEN + kl > sizeof(kb) || store_is_chunk_key(k, kl) ||
	    !store_item_key(kb, sizeof(kb), a->group, k, kl, &dkl))
		return NULL;
	return store_cc_get(a->s, STORE_ITEM_PREFIX, kb, dkl);
}

/* Read key through the overlay.  *found = 0 when absent; else *val is a heap
 * copy (caller frees) of *vl bytes.  0, -ENOMEM or -EIO. */
static int view_get(struct applier *a, const uint8_t *k, size_t kl, uint8_t **val, size_t *vl,
		    int *found)
{
	const struct ov_ent *e = ov_find(a, k, kl);
	if (e && e->ext)
		return -EIO; /* never: patch_ext takes only a chunk no other op names */
	if (e) {
		*found = !e->del;
		if (e->del)
			return 0;
		*val = dup_bytes(e->val, e->val_len);
		if (!*val)
			return -ENOMEM;
		*vl = e->val_len;
		return 0;
	}
	void *v;
	int rc;
	const struct store_cc *c = cc_item(a, k, kl);

	if (c) { /* the value the last apply wrote */
		*val = dup_bytes(c->rec, c->rl);
		if (!*val)
			return -ENOMEM;
		*vl = c->rl;
		*found = 1;
		return 0;
	}
	rc = qfs_store_get(a->s, a->group, k, kl, &v, vl);
	if (rc == -ENOENT) {
		*found = 0;
		return 0;
	}
	if (rc)
		return rc;
	*val = v;
	*found = 1;
	return 0;
}

static int view_exists(struct applier *a, const uint8_t *k, size_t kl, int *found)
{
	uint8_t *v = NULL;
	size_t vl;
	int rc = view_get(a, k, kl, &v, &vl, found);
	free(v);
	return rc;
}

/* 1 with *len if item k of the group is a chunk with a 'c' record, which
 * holds its length (a pointer's value is not in the item: the value log),
 * so the value is not read; 0 if not; -ENOMEM, -EIO. */
static int ptr_len(struct applier *a, const uint8_t *k, size_t kl, size_t *len)
{
	uint8_t kb[STORE_DBKEY_MAX];
	size_t dkl;
	uint8_t *dk;
	int rc;

	if (!store_is_chunk_key(k, kl))
		return 0;
	dk = store_item_key(kb, sizeof(kb), a->group, k, kl, &dkl);
	if (!dk)
		return -ENOMEM;
	rc = store_vlog_len(a->s, dk, dkl, len);
	if (dk != kb)
		free(dk);
	return rc;
}

/* Length of key's value in the view; *found = 0 when absent.  0, -ENOMEM or
 * -EIO. */
static int view_len(struct applier *a, const uint8_t *k, size_t kl, size_t *len, int *found)
{
	const struct ov_ent *e = ov_find(a, k, kl);
	struct qfs_val v = { 0 };

	if (e && e->ext)
		return -EIO; /* never: patch_ext takes only a chunk no other op names */
	if (e) {
		*found = !e->del;
		*len = e->del ? 0 : e->val_len;
		return 0;
	}
	int rc = ptr_len(a, k, kl, len);
	if (rc) { /* a chunk: its record has the length (no read of the value) */
		*found = rc == 1;
		return rc == 1 ? 0 : rc;
	}
	const struct store_cc *c = cc_item(a, k, kl);

	if (c) {
		*found = 1;
		*len = c->rl;
		return 0;
	}
	rc = store_get_item(a->s, a->group, k, kl, &v);
	if (rc)
		return rc;
	*found = qfs_val_held(&v);
	*len = v.len;
	qfs_val_release(&v);
	return 0;
}

/* ---- counts ---- */

static struct acct *acct_get(struct applier *a, qfs_ino_t ino)
{
	for (size_t i = 0; i < a->nacct; i++)
		if (a->acct[i].ino == ino)
			return &a->acct[i];
	if (a->nacct == a->acap) {
		size_t cap = a->acap ? a->acap * 2 : 4;
		struct acct *n = realloc(a->acct, cap * sizeof(*n));
		if (!n)
			return NULL;
		a->acct = n;
		a->acap = cap;
	}
	a->acct[a->nacct] = (struct acct){ .ino = ino };
	return &a->acct[a->nacct++];
}

/* 1 if writes to key k change a count (chunk and inode items). */
static int counted(const uint8_t *k, size_t kl)
{
	struct qfs_key key;

	return qfs_key_parse(k, kl, &key) == 0 && (key.kind == QFS_KEY_CHUNK || key.kind == QFS_KEY_INODE);
}

/* Key k (present before with old_len bytes when had) becomes new_len bytes
 * (now = 1) or absent (now = 0): record what that changes in the counts.
 * 0 or -ENOMEM. */
static int count_change(struct applier *a, const uint8_t *k, size_t kl, int had, size_t old_len, int now,
			size_t new_len)
{
	struct qfs_key key;

	if (qfs_key_parse(k, kl, &key) != 0)
		return 0;
	if (key.kind == QFS_KEY_CHUNK) {
		int64_t d = (now ? (int64_t)new_len : 0) - (had ? (int64_t)old_len : 0);
		if (d == 0)
			return 0;
		struct acct *ac = acct_get(a, key.pk);
		if (!ac)
			return -ENOMEM;
		ac->delta += d;
	} else if (key.kind == QFS_KEY_INODE) {
		a->inode_delta += (now ? 1 : 0) - (had ? 1 : 0);
	}
	return 0;
}

/* A DEL_RANGE of [lo, hi): if it is every chunk of one ino, mark that ino's
 * count as known from here on.  0 or -ENOMEM. */
static int count_range_reset(struct applier *a, const struct qfs_op *op)
{
	uint8_t lo[QFS_KEY_MAX], hi[QFS_KEY_MAX];
	size_t lol, hil;
	struct qfs_key key;

	if (qfs_key_parse(op->key, op->key_len, &key) != 0 || key.kind != QFS_KEY_CHUNK || key.chunk != 0)
		return 0;
	qfs_key_chunk_range(lo, &lol, hi, &hil, key.pk, 0, UINT64_MAX);
	if (op->key2_len != hil || memcmp(op->key2, hi, hil) != 0)
		return 0;
	struct acct *ac = acct_get(a, key.pk);
	if (!ac)
		return -ENOMEM;
	ac->delta = 0; /* what the txn wrote before is deleted too */
	ac->reset = 1;
	return 0;
}

typedef int (*walk_fn)(const uint8_t *k, size_t kl, size_t vl, void *arg);

/* Call fn for every live key in [lo, hi) of the view, in key order: RocksDB
 * keys not shadowed by the overlay, and overlay values.  Returns 0, fn's
 * first nonzero value, -ENOMEM or -EIO. */
static int view_walk(struct applier *a, const uint8_t *lo, size_t lo_len, const uint8_t *hi,
		     size_t hi_len, walk_fn fn, void *arg)
{
	uint8_t lob[STORE_DBKEY_MAX], hib[STORE_DBKEY_MAX];
	uint8_t *lok, *hik;
	size_t lok_len, hik_len;
	char *err = NULL;
	int rc = 0;

	if (qfs_key_cmp(lo, lo_len, hi, hi_len) >= 0)
		return 0;
	lok = store_item_key(lob, sizeof(lob), a->group, lo, lo_len, &lok_len);
	if (!lok)
		return -ENOMEM;
	hik = store_item_key(hib, sizeof(hib), a->group, hi, hi_len, &hik_len);
	if (!hik) {
		rc = -ENOMEM;
		goto err_free_lo;
	}
	rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
	rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)hik, hik_len);
	rocksdb_iterator_t *it = rocksdb_create_iterator(a->s->db, ro);
	rocksdb_iter_seek(it, (const char *)lok, lok_len);
	size_t oi = ov_lower(a, lo, lo_len);

	for (;;) {
		int have_db = rocksdb_iter_valid(it);
		int have_ov = oi < a->nov && qfs_key_cmp(a->ov[oi].key, a->ov[oi].key_len, hi, hi_len) < 0;
		const uint8_t *dk = NULL;
		size_t dkl = 0;
		int c;

		if (!have_db && !have_ov)
			break;
		if (have_db) {
			dk = (const uint8_t *)rocksdb_iter_key(it, &dkl) + STORE_GROUP_PREFIX_LEN;
			dkl -= STORE_GROUP_PREFIX_LEN;
		}
		if (!have_db)
			c = 1;
		else if (!have_ov)
			c = -1;
		else
			c = qfs_key_cmp(dk, dkl, a->ov[oi].key, a->ov[oi].key_len);
		if (c < 0) {
			size_t dvl, kl0;
			const uint8_t *k0 = (const uint8_t *)rocksdb_iter_key(it, &kl0);

			rocksdb_iter_value(it, &dvl);
			/* a pointer's or extents' length is its record's */
			if ((rc = store_vlog_ilen(a->s, k0, kl0, dvl, &dvl)) < 0)
				break;
			rc = fn(dk, dkl, dvl, arg);
			rocksdb_iter_next(it);
		} else {
			const struct ov_ent *e = &a->ov[oi++];
			if (c == 0)
				rocksdb_iter_next(it);
			if (!e->del)
				rc = fn(e->key, e->key_len, e->val_len, arg);
		}
		if (rc)
			break;
	}
	if (!rc) {
		rocksdb_iter_get_error(it, &err);
		if (err)
			rc = store_rocks_err(a->s, "range read", err);
	}
	rocksdb_iter_destroy(it);
	rocksdb_readoptions_destroy(ro);
	if (hik != hib)
		free(hik);
err_free_lo:
	if (lok != lob)
		free(lok);
	return rc;
}

static int walk_found(const uint8_t *k, size_t kl, size_t vl, void *arg)
{
	(void)k;
	(void)kl;
	(void)vl;
	(void)arg;
	return 1;
}

/* Keys collected by a DEL_RANGE walk, laid end to end. */
struct keylist {
	struct qfs_buf keys; /* per key: u32 length + bytes, u64 value length */
	size_t n;
};

static int walk_collect(const uint8_t *k, size_t kl, size_t vl, void *arg)
{
	struct keylist *l = arg;
	qfs_buf_put_bytes(&l->keys, k, kl);
	qfs_buf_put_u64(&l->keys, vl);
	l->n++;
	return l->keys.err;
}

static int op_del_range(struct applier *a, const struct qfs_op *op)
{
	struct keylist l = { .n = 0 };
	struct qfs_rd r;
	int rc;

	qfs_buf_init(&l.keys);
	rc = view_walk(a, op->key, op->key_len, op->key2, op->key2_len, walk_collect, &l);
	if (rc)
		goto out;
	qfs_rd_init(&r, l.keys.data, l.keys.len);
	for (size_t i = 0; i < l.n && !rc; i++) {
		size_t kl;
		const uint8_t *k = qfs_rd_bytes(&r, &kl);
		size_t vl = (size_t)qfs_rd_u64(&r);
		rc = count_change(a, k, kl, 1, vl, 0, 0);
		if (!rc)
			rc = ov_set(a, k, kl, NULL, 0, 1);
	}
	if (!rc)
		rc = count_range_reset(a, op);
out:
	qfs_buf_close(&l.keys);
	return rc;
}

/* Load the inode at op->key for a patch op.  *fail gets -EINVAL (not an
 * inode key), -ENOENT (absent) or the decode error; returns 0, -ENOMEM or
 * -EIO. */
static int inode_load(struct applier *a, const struct qfs_op *op, struct qfs_inode *in, int *fail)
{
	struct qfs_key k;
	uint8_t *v = NULL;
	size_t vl;
	int found, rc;

	if (qfs_key_parse(op->key, op->key_len, &k) != 0 || k.kind != QFS_KEY_INODE) {
		*fail = -EINVAL;
		return 0;
	}
	rc = view_get(a, op->key, op->key_len, &v, &vl, &found);
	if (rc)
		return rc;
	if (!found) {
		*fail = -ENOENT;
		return 0;
	}
	rc = qfs_inode_decode(v, vl, in);
	free(v);
	if (rc == -ENOMEM)
		return rc;
	if (rc) {
		QFS_LOG(QFS_LOG_ERR, "store inode undecodable dir=%s group=%016llx ino=%llu err=\"%s\"",
			a->s->dir, (unsigned long long)a->group, (unsigned long long)k.pk,
			qfs_strerror(rc));
		*fail = rc;
	}
	return 0;
}

static int inode_store(struct applier *a, const struct qfs_op *op, const struct qfs_inode *in)
{
	struct qfs_buf b;
	size_t len;
	qfs_buf_init(&b);
	qfs_inode_encode(in, &b);
	if (b.err) {
		qfs_buf_close(&b);
		return -ENOMEM;
	}
	uint8_t *v = qfs_buf_steal(&b, &len);
	return ov_set(a, op->key, op->key_len, v, len, 0);
}

static void setattr(struct qfs_attr *d, const struct qfs_attr *s, uint32_t mask)
{
	if (mask & QFS_SET_MODE)
		d->mode = (d->mode & S_IFMT) | (s->mode & 07777);
	if (mask & QFS_SET_UID)
		d->uid = s->uid;
	if (mask & QFS_SET_GID)
		d->gid = s->gid;
	if (mask & QFS_SET_SIZE)
		d->size = s->size;
	if (mask & QFS_SET_ATIME)
		d->atime = s->atime;
	if (mask & QFS_SET_MTIME)
		d->mtime = s->mtime;
	if (mask & QFS_SET_CTIME)
		d->ctime = s->ctime;
	if (mask & QFS_SET_FLAGS)
		d->flags = s->flags;
	if (mask & QFS_SET_RDEV)
		d->rdev = s->rdev;
}

/* Files of at most this many chunks lose them to point deletes, larger
 * ones to a walk of their chunk range (last_link). */
#define LAST_LINK_POINT_CHUNKS 16

/* LINK_DROP that took the last link: the orphan entry (key2) of a file still
 * open, the inode kept with nlink 0; or, without key2, the inode and its
 * chunk range deleted.  fs/ stores no chunk at or past the file size
 * (doc/format-items.md), so a file of at most LAST_LINK_POINT_CHUNKS
 * chunks (a 4 KiB file: one) whose counted chunk bytes fit in its size
 * has its chunks deleted by key, absent ones too, with no read: a walk of
 * the range would read every chunk's value from its blob file only to
 * count bytes that the range reset discards anyway (the inode is gone).
 * An inline file with no chunk bytes counted has none to delete.  Any
 * other file (unknown count, more bytes counted than its size: items not
 * written by fs/) has its whole chunk range walked.  in: the inode as
 * loaded. */
static int last_link(struct applier *a, const struct qfs_op *op, const struct qfs_inode *in, int *stored)
{
	uint8_t lo[QFS_KEY_MAX], hi[QFS_KEY_MAX];
	size_t lol, hil;
	struct qfs_key k;
	uint8_t *v;
	int rc;

	if (op->key2_len) {
		v = dup_bytes(op->val, op->val_len);
		if (!v)
			return -ENOMEM;
		return ov_set(a, op->key2, op->key2_len, v, op->val_len, 0);
	}
	*stored = 1;
	rc = count_change(a, op->key, op->key_len, 1, 0, 0, 0); /* one inode less */
	if (rc)
		return rc;
	rc = ov_set(a, op->key, op->key_len, NULL, 0, 1);
	if (rc)
		return rc;
	(void)qfs_key_parse(op->key, op->key_len, &k); /* inode_load parsed it */
	uint64_t nchunks = in->a.size / QFS_CHUNK_SIZE + (in->a.size % QFS_CHUNK_SIZE != 0);
	if ((in->a.flags & QFS_ATTR_INLINE) && in->chunk_bytes == 0)
		nchunks = 0; /* its bytes are in the inode, and no chunk is counted */
	if (nchunks <= LAST_LINK_POINT_CHUNKS && in->chunk_bytes != QFS_COUNT_UNKNOWN &&
	    in->chunk_bytes <= in->a.size) {
		struct acct *ac = acct_get(a, k.pk);

		if (!ac)
			return -ENOMEM;
		for (uint64_t no = 0; no < nchunks; no++) {
			lol = qfs_key_chunk(lo, k.pk, no);
			if ((rc = ov_set(a, lo, lol, NULL, 0, 1)))
				return rc;
		}
		ac->delta = 0; /* as count_range_reset: every chunk is gone */
		ac->reset = 1;
		return 0;
	}
	qfs_key_chunk_range(lo, &lol, hi, &hil, k.pk, 0, UINT64_MAX);
	struct qfs_op range = { .kind = QFS_OP_DEL_RANGE, .key = lo, .key_len = (uint32_t)lol,
				.key2 = hi, .key2_len = (uint32_t)hil };
	return op_del_range(a, &range);
}

/* SETATTR, NLINK, SETDATA, XSET, XDEL, LINK_ADD, LINK_DROP: read-modify-write
 * of an inode. */
static int op_patch(struct applier *a, const struct qfs_op *op, int *fail)
{
	struct qfs_inode in;
	int rc = 0, f = 0, stored = 0;

	qfs_inode_init(&in);
	rc = inode_load(a, op, &in, &f);
	if (rc || f)
		goto out;
	switch (op->kind) {
	case QFS_OP_SETATTR:
		setattr(&in.a, &op->attr, op->mask);
		break;
	case QFS_OP_NLINK: {
		int64_t n = (int64_t)in.a.nlink + op->delta;
		if (n < 0)
			f = -EINVAL;
		else if (n > UINT32_MAX)
			f = -EMLINK;
		else
			in.a.nlink = (uint32_t)n;
		break;
	}
	case QFS_OP_SETDATA:
		rc = qfs_inode_set_data(&in, op->val, op->val_len);
		break;
	case QFS_OP_XSET:
		f = qfs_inode_xattr_set(&in, op->name, op->val, op->val_len, op->flags);
		if (f == -ENOMEM) {
			rc = f;
			f = 0;
		}
		break;
	case QFS_OP_XDEL:
		f = qfs_inode_xattr_del(&in, op->name);
		break;
	case QFS_OP_LINK_ADD:
		if (S_ISDIR(in.a.mode))
			f = -EPERM;
		else if (in.a.nlink == 0)
			f = -ENOENT; /* no name left (open-unlinked): cannot get one back */
		else if (in.a.nlink >= op->limit)
			f = -EMLINK;
		else
			in.a.nlink++;
		break;
	case QFS_OP_LINK_DROP:
		if (S_ISDIR(in.a.mode))
			f = -EISDIR;
		else if (in.a.nlink == 0)
			f = -EINVAL;
		else if (--in.a.nlink == 0)
			rc = last_link(a, op, &in, &stored);
		break;
	default:
		break;
	}
	if (!rc && !f && !stored)
		rc = inode_store(a, op, &in);
out:
	qfs_inode_close(&in);
	if (f)
		*fail = f;
	return rc;
}

/* PUT: the value as given, except that an inode keeps the counts of the
 * inode it replaces (0 for a new one).  0, -ENOMEM or -EIO. */
static int op_put(struct applier *a, const struct qfs_op *op)
{
	struct qfs_key key;
	size_t old_len = 0;
	int found = 0, rc;
	uint8_t *v;
	size_t vl = op->val_len;

	if (counted(op->key, op->key_len)) {
		rc = view_len(a, op->key, op->key_len, &old_len, &found);
		if (rc)
			return rc;
		rc = count_change(a, op->key, op->key_len, found, old_len, 1, op->val_len);
		if (rc)
			return rc;
	}
	if (qfs_key_parse(op->key, op->key_len, &key) == 0 && key.kind == QFS_KEY_INODE) {
		struct qfs_inode in, old;
		int f = 0;
		qfs_inode_init(&in);
		qfs_inode_init(&old);
		rc = qfs_inode_decode(op->val, op->val_len, &in);
		if (rc == -ENOMEM)
			return rc;
		if (rc == 0) {
			/* a value that is not an inode is stored as it is */
			in.chunk_bytes = 0;
			in.ninodes = 0;
			if (found) {
				rc = inode_load(a, op, &old, &f);
				if (rc) {
					qfs_inode_close(&in);
					return rc;
				}
				if (!f) {
					in.chunk_bytes = old.chunk_bytes;
					in.ninodes = old.ninodes;
				}
			}
			rc = inode_store(a, op, &in);
			qfs_inode_close(&old);
			qfs_inode_close(&in);
			return rc;
		}
	}
	/* the value as it is in the txn, not copied: the txn outlives the
	 * applier (a chunk's 128 KiB would be copied once more per replica) */
	v = (uint8_t *)(uintptr_t)op->val;
	return ov_set_val(a, op->key, op->key_len, vl ? v : NULL, vl, 0, 1);
}

/* Length of p[0..n) without its trailing zero bytes. */
static size_t trimmed_len(const uint8_t *p, size_t n)
{
	while (n && p[n - 1] == 0)
		n--;
	return n;
}

/* 1 if op is the only op of the txn that may read or write its key: no
 * other op names it and no op reaches a range of keys. */
static int only_op_of_key(const struct applier *a, const struct qfs_op *op)
{
	for (uint32_t i = 0; i < a->t->nops; i++) {
		const struct qfs_op *o = &a->t->ops[i];

		if (o == op)
			continue;
		if (o->kind == QFS_OP_DEL_RANGE || o->kind == QFS_OP_EXPECT_EMPTY || o->kind == QFS_OP_LINK_DROP ||
		    qfs_key_cmp(o->key, o->key_len, op->key, op->key_len) == 0)
			return 0;
	}
	return 1;
}

/* 1 if item k (RocksDB key, kl bytes) is absent, 0 if present, -EIO.
 * rocksdb_key_may_exist answers from the memtables, the bloom filters
 * and cached blocks only: a "maybe" (a delete flushed into an SST whose
 * block is not cached) is settled by a pinned read without checks (no
 * copy of a value in a memtable or a cached block). */
static int item_absent(struct qfs_store *s, const uint8_t *k, size_t kl)
{
	rocksdb_pinnableslice_t *v;
	char *err = NULL;

	if (!rocksdb_key_may_exist(s->db, s->ro, (const char *)k, kl, NULL, NULL, NULL, 0, NULL))
		return 1;
	v = rocksdb_get_pinned(s->db, s->ro_fast, (const char *)k, kl, &err);
	if (err)
		return store_rocks_err(s, "get", err);
	if (!v)
		return 1;
	rocksdb_pinnableslice_destroy(v);
	return 0;
}

/* A PATCH applied from a durable log record (the value log,
 * doc/format-store.md "Value log"): instead of reading the chunk, its
 * 'c' record gets one more extent, the PATCH's own bytes in the record's
 * segment.  Only for a chunk no other op of the txn names (the overlay
 * never holds its value), whose record is the short one, a pointer or
 * extents (or that is absent), with fewer than STORE_VLOG_EXT_MAX
 * extents whose bytes (with these) are at most QFS_CHUNK_SIZE, and when
 * the result's trimmed end is known from the record: it ends before the
 * chunk's end, or in the PATCH's bytes at or past the chunk's end (the
 * extent then stops at their last nonzero byte, the length too: the same
 * value and count as the whole-chunk path, which a release before this
 * one takes for it).  1 when done, 0 to patch the chunk as usual (which
 * compacts it), -ENOMEM, -EIO. */
static int patch_ext(struct applier *a, const struct qfs_op *op)
{
	const struct qfs_store_src *src = a->s->apply_src;
	const uint8_t *val = op->val;
	uint8_t kb[STORE_DBKEY_MAX], base[STORE_VLOG_REC_LEN] = { 0 }, *dk, *nr, *e;
	size_t dkl, rl = 0, old_len = 0, end = (size_t)op->offset + op->val_len, len, nrl;
	uint32_t n = 0, el = op->val_len; /* the extent's bytes: the PATCH's, trimmed */
	const uint8_t *r;
	const struct store_cc *cc;
	char *rec = NULL;
	int rc, found = 1, dput = 0, absent = 0;

	if (!src || !src->seg_first || a->s->vlog_min == UINT32_MAX || !op->val_len ||
	    val < (const uint8_t *)src->base || val + op->val_len > (const uint8_t *)src->base + src->len ||
	    ov_find(a, op->key, op->key_len) || !only_op_of_key(a, op))
		return 0;
	dk = store_item_key(kb, sizeof(kb), a->group, op->key, op->key_len, &dkl);
	if (!dk)
		return -ENOMEM;
	if ((cc = store_cc_get(a->s, STORE_CRC_PREFIX, dk, dkl))) { /* the extents record apply wrote last */
		r = cc->rec;
		rl = cc->rl;
	} else if ((rc = store_vlog_rec_get(a->s, a->s->ro, dk, dkl, &rec, &rl))) {
		goto out;
	} else {
		r = (const uint8_t *)rec;
	}
	if (rec && rl == STORE_CRC_LEN && (absent = item_absent(a->s, dk, dkl)) < 0) {
		rc = absent;
		goto out;
	}
	if (rec && rl == STORE_CRC_LEN && absent == 1) {
		/* a record without its item (a delete by a format-3 release
		 * from before the records left it): the chunk is absent */
		rocksdb_free(rec);
		rec = NULL;
		found = 0;
		dput = 1;
		qfs_be32_put(base + 4, qfs_crc32c(0, op->key, op->key_len));
	} else if (!r) { /* absent, or a chunk of a release without records */
		char *err = NULL, *d;
		size_t dl;

		d = rocksdb_get(a->s->db, a->s->ro, (const char *)dk, dkl, &dl, &err);
		if (err) {
			rc = store_rocks_err(a->s, "get", err);
			goto out;
		}
		rocksdb_free(d);
		if (d)
			goto out; /* rc 0: as usual */
		found = 0;
		dput = 1;
		qfs_be32_put(base + 4, qfs_crc32c(0, op->key, op->key_len));
	} else if (rl == STORE_CRC_LEN || (rl == STORE_VLOG_REC_LEN && qfs_be64_get(r + 8))) {
		memcpy(base, r, rl);
		old_len = qfs_be32_get(r);
	} else if (store_vlog_is_ext(r, rl)) {
		uint64_t bytes = op->val_len;

		n = qfs_be32_get(r + 4);
		for (uint32_t i = 0; i < n; i++)
			bytes += qfs_be32_get(r + STORE_VLOG_EXT_HEAD + (size_t)i * STORE_VLOG_EXT_LEN + 4);
		if (n >= STORE_VLOG_EXT_MAX || bytes > QFS_CHUNK_SIZE)
			goto out; /* compact */
		memcpy(base, r + 8, sizeof(base));
		old_len = qfs_be32_get(r);
	} else {
		goto out;
	}
	if (end >= old_len && val[el - 1] == 0) {
		/* the result ends in the PATCH's bytes: trimmed, it ends at
		 * their last nonzero byte, and the extent keeps the bytes up to
		 * it.  Taken only if that is at or past the old length (so the
		 * base and the extents before lie within len, as every reader
		 * of the record requires); otherwise, or with no nonzero byte,
		 * the chunk is read and trimmed as usual */
		while (el && val[el - 1] == 0)
			el--;
		if ((size_t)op->offset + el < old_len || el == 0)
			goto out;
		end = (size_t)op->offset + el;
	}
	if (store_vlog_link(a->s, a->group, src))
		goto out;
	len = old_len > end ? old_len : end;
	nrl = STORE_VLOG_EXT_HEAD + (size_t)(n + 1) * STORE_VLOG_EXT_LEN;
	nr = malloc(nrl);
	if (!nr) {
		rc = -ENOMEM;
		goto out;
	}
	qfs_be32_put(nr, (uint32_t)len);
	qfs_be32_put(nr + 4, n + 1);
	memcpy(nr + 8, base, sizeof(base));
	if (n)
		memcpy(nr + STORE_VLOG_EXT_HEAD, r + STORE_VLOG_EXT_HEAD, (size_t)n * STORE_VLOG_EXT_LEN);
	e = nr + STORE_VLOG_EXT_HEAD + (size_t)n * STORE_VLOG_EXT_LEN;
	qfs_be32_put(e, (uint32_t)op->offset);
	qfs_be32_put(e + 4, el);
	qfs_be32_put(e + 8, qfs_crc32c(qfs_crc32c(0, op->key, op->key_len), val, el));
	qfs_be64_put(e + 12, src->seg_first);
	qfs_be64_put(e + 20, src->off + (uint64_t)(val - (const uint8_t *)src->base));
	rc = count_change(a, op->key, op->key_len, found, old_len, 1, len);
	if (rc) {
		free(nr);
		goto out;
	}
	if ((rc = ov_set(a, op->key, op->key_len, nr, nrl, 0)))
		goto out;
	ov_find(a, op->key, op->key_len)->ext = dput ? 2 : 1; /* counted when emitted */
	rc = 1;
out:
	rocksdb_free(rec);
	if (dk != kb)
		free(dk);
	return rc;
}

/* PATCH: the stored chunk (absent: no bytes) with op->val laid over it at
 * op->offset, extended with zeros up to the offset if shorter, stored
 * without its trailing zero bytes (deleted if nothing is left: the chunk
 * invariant of doc/format-items.md).  *fail = -EINVAL if the key is not a
 * chunk key or the bytes end past QFS_CHUNK_SIZE.  0, -ENOMEM or -EIO. */
static int op_patch_chunk(struct applier *a, const struct qfs_op *op, int *fail)
{
	struct qfs_key key;
	uint8_t *old = NULL, *v;
	size_t old_len = 0, end = (size_t)op->offset + op->val_len, len;
	int found = 0, rc;

	if (qfs_key_parse(op->key, op->key_len, &key) != 0 || key.kind != QFS_KEY_CHUNK ||
	    end > QFS_CHUNK_SIZE) {
		*fail = -EINVAL;
		return 0;
	}
	rc = patch_ext(a, op);
	if (rc)
		return rc < 0 ? rc : 0;
	rc = view_get(a, op->key, op->key_len, &old, &old_len, &found);
	if (rc)
		return rc;
	if (!found) {
		old = NULL;
		old_len = 0;
	}
	len = old_len > end ? old_len : end;
	/* the copy view_get made becomes the new value: overlaid in place */
	v = realloc(old, len ? len : 1);
	if (!v) {
		free(old);
		return -ENOMEM;
	}
	if (op->offset > old_len)
		memset(v + old_len, 0, op->offset - old_len);
	if (op->val_len)
		memcpy(v + op->offset, op->val, op->val_len);
	len = trimmed_len(v, len);
	rc = count_change(a, op->key, op->key_len, found, old_len, len != 0, len);
	if (rc) {
		free(v);
		return rc;
	}
	if (len == 0) {
		free(v);
		return ov_set(a, op->key, op->key_len, NULL, 0, 1);
	}
	return ov_set(a, op->key, op->key_len, v, len, 0);
}

/* Add a to a count; an unknown count stays unknown, one that would go
 * below 0 (a bug or a damaged item) stops at 0 with a log line. */
static uint64_t count_add(struct applier *a, uint64_t count, int64_t delta, const char *what, qfs_ino_t ino)
{
	if (count == QFS_COUNT_UNKNOWN)
		return count;
	if (delta < 0 && (uint64_t)-delta > count) {
		QFS_LOG(QFS_LOG_ERR, "store count below zero dir=%s group=%016llx ino=%llu count=%s have=%llu delta=%lld",
			a->s->dir, (unsigned long long)a->group, (unsigned long long)ino, what,
			(unsigned long long)count, (long long)delta);
		return 0;
	}
	return count + (uint64_t)delta;
}

/* Add ac's chunk delta (if ac) and inode_delta to the counts of the inode
 * item of ino, if it exists in the view and decodes.  0, -ENOMEM or -EIO. */
static int count_apply(struct applier *a, qfs_ino_t ino, const struct acct *ac, int64_t inode_delta)
{
	uint8_t key[QFS_KEY_MAX];
	struct qfs_op op = { .kind = QFS_OP_SETATTR };
	struct qfs_inode in;
	int f = 0, rc;

	op.key = key;
	op.key_len = (uint32_t)qfs_key_inode(key, ino);
	qfs_inode_init(&in);
	rc = inode_load(a, &op, &in, &f);
	if (rc || f)
		goto out; /* absent (deleted by this txn, or never there): nothing to count */
	if (ac) {
		if (ac->reset)
			in.chunk_bytes = ac->delta >= 0 ? (uint64_t)ac->delta : 0;
		else
			in.chunk_bytes = count_add(a, in.chunk_bytes, ac->delta, "chunk_bytes", ino);
	}
	if (inode_delta)
		in.ninodes = count_add(a, in.ninodes, inode_delta, "ninodes", ino);
	rc = inode_store(a, &op, &in);
out:
	qfs_inode_close(&in);
	return rc;
}

/* After the last op: add the deltas to the inode items.  0, -ENOMEM, -EIO. */
static int count_finish(struct applier *a)
{
	int rc = 0;
	int group_done = 0;

	for (size_t i = 0; i < a->nacct && !rc; i++) {
		const struct acct *ac = &a->acct[i];
		int64_t idelta = 0;
		if (ac->delta == 0 && !ac->reset)
			continue;
		if (ac->ino == a->group) {
			idelta = a->inode_delta;
			group_done = 1;
		}
		rc = count_apply(a, ac->ino, ac, idelta);
	}
	if (!rc && a->inode_delta && !group_done)
		rc = count_apply(a, a->group, NULL, a->inode_delta);
	return rc;
}

/* Run one op.  *fail gets the op's own failure; returns 0, -ENOMEM or -EIO. */
static int op_run(struct applier *a, const struct qfs_op *op, int *fail)
{
	uint8_t *v = NULL;
	size_t vl = 0;
	int found = 0, rc = 0;

	switch (op->kind) {
	case QFS_OP_PUT:
		return op_put(a, op);
	case QFS_OP_DEL:
		if (counted(op->key, op->key_len)) {
			rc = view_len(a, op->key, op->key_len, &vl, &found);
			if (!rc)
				rc = count_change(a, op->key, op->key_len, found, vl, 0, 0);
			if (rc)
				return rc;
		}
		return ov_set(a, op->key, op->key_len, NULL, 0, 1);
	case QFS_OP_DEL_RANGE:
		return op_del_range(a, op);
	case QFS_OP_EXPECT_ABSENT:
	case QFS_OP_EXPECT_PRESENT:
		rc = view_exists(a, op->key, op->key_len, &found);
		if (!rc && found == (op->kind == QFS_OP_EXPECT_ABSENT))
			*fail = op->err;
		return rc;
	case QFS_OP_EXPECT_VALUE:
		rc = view_get(a, op->key, op->key_len, &v, &vl, &found);
		if (!rc && (!found || vl != op->val_len || (vl && memcmp(v, op->val, vl) != 0)))
			*fail = op->err;
		free(v);
		return rc;
	case QFS_OP_RANGE: { /* the partition fence: the first 8 bytes of the record are its epoch */
		const struct ov_ent *e = ov_find(a, op->key, op->key_len);
		uint64_t have = 0;
		if (e) /* written by this txn */
			have = !e->del && e->val_len >= 8 ? qfs_be64_get(e->val) : 0;
		else /* RocksDB's, through the store's cache (store.c) */
			rc = store_fence_get(a->s, a->group, op->key, op->key_len, &have);
		if (!rc && (op->val_len != 8 || have != qfs_be64_get(op->val)))
			*fail = op->err;
		return rc;
	}
	case QFS_OP_EXPECT_EMPTY:
		rc = view_walk(a, op->key, op->key_len, op->key2, op->key2_len, walk_found, NULL);
		if (rc == 1) {
			*fail = op->err;
			rc = 0;
		}
		return rc;
	case QFS_OP_SETATTR:
	case QFS_OP_NLINK:
	case QFS_OP_SETDATA:
	case QFS_OP_XSET:
	case QFS_OP_XDEL:
	case QFS_OP_LINK_ADD:
	case QFS_OP_LINK_DROP:
		return op_patch(a, op, fail);
	case QFS_OP_PREPARE:
	case QFS_OP_COMMIT:
	case QFS_OP_ABORT:
	case QFS_OP_DECIDE:
		break; /* refused before the first op runs (store_eval_ops) */
	case QFS_OP_PATCH:
		return op_patch_chunk(a, op, fail);
	}
	*fail = -EINVAL; /* unreachable: the decoder refuses unknown kinds */
	return 0;
}

/* A chunk value of the txn being applied (borrowed: the PUT's own bytes,
 * which lie in the log entry), large enough, of an entry whose segment the
 * store could link: emitted as an empty item and a pointer record
 * (doc/format-store.md "Value log"); 1 if so, 0 to emit it as usual. */
static int ptr_emit(struct applier *a, rocksdb_writebatch_t *wb, const struct ov_ent *e, uint8_t *k, size_t kl)
{
	const struct qfs_store_src *src = a->s->apply_src;
	const uint8_t *base;
	uint8_t v[STORE_VLOG_REC_LEN];

	if (!src || !e->borrowed || e->val_len < a->s->vlog_min || e->val_len > UINT32_MAX ||
	    !store_is_chunk_key(e->key, e->key_len))
		return 0;
	base = src->base;
	if (e->val < base || e->val + e->val_len > base + src->len || store_vlog_link(a->s, a->group, src))
		return 0;
	store_vlog_rec(v, e->key, e->key_len, e->val, e->val_len, src->seg_first,
		       src->off + (uint64_t)(e->val - base));
	rocksdb_writebatch_put(wb, (const char *)k, kl, "", 0);
	k[0] = STORE_CRC_PREFIX;
	rocksdb_writebatch_put(wb, (const char *)k, kl, (const char *)v, sizeof(v));
	k[0] = STORE_ITEM_PREFIX;
	return 1;
}

/* Emit the overlay into wb as puts and deletes of group's items. */
static int ov_emit(struct applier *a, rocksdb_writebatch_t *wb)
{
	uint8_t kb[STORE_DBKEY_MAX];
	for (size_t i = 0; i < a->nov; i++) {
		const struct ov_ent *e = &a->ov[i];
		size_t kl;
		uint8_t *k = store_item_key(kb, sizeof(kb), a->group, e->key, e->key_len, &kl);
		if (!k)
			return -ENOMEM;
		store_fence_forget(a->s, a->group, e->key, e->key_len); /* before the write */
		if (e->ext) { /* the 'c' record in the extents form (patch_ext) */
			__atomic_add_fetch(&a->s->vlog_extents, 1, __ATOMIC_RELAXED);
			if (e->ext == 2)
				rocksdb_writebatch_put(wb, (const char *)k, kl, "", 0);
			store_cc_stage(a->s, STORE_CRC_PREFIX, k, kl, e->val, e->val_len);
			store_cc_drop(a->s, STORE_ITEM_PREFIX, k, kl);
			k[0] = STORE_CRC_PREFIX;
			rocksdb_writebatch_put(wb, (const char *)k, kl, (const char *)e->val, e->val_len);
			if (k != kb)
				free(k);
			continue;
		}
		store_cc_drop(a->s, STORE_CRC_PREFIX, k, kl);
		store_cc_drop(a->s, STORE_ITEM_PREFIX, k, kl);
		if (e->del) {
			rocksdb_writebatch_delete(wb, (const char *)k, kl);
		} else if (ptr_emit(a, wb, e, k, kl)) {
			if (k != kb)
				free(k);
			continue;
		} else {
			rocksdb_writebatch_put(wb, (const char *)k, kl, (const char *)e->val, e->val_len);
			if (!store_is_chunk_key(e->key, e->key_len)) /* chunks: read through their record */
				store_cc_stage(a->s, STORE_ITEM_PREFIX, k, kl, e->val, e->val_len);
		}
		store_crc_emit(wb, a->group, e->key, e->key_len, e->val, e->val_len, e->del);
		if (k != kb)
			free(k);
	}
	return 0;
}

/* Lock set entries (store_int.h): a point key, or a range [key, key2). */
static void locks_point(struct qfs_buf *b, const uint8_t *k, size_t kl)
{
	qfs_buf_put_u8(b, STORE_LOCK_POINT);
	qfs_buf_put_bytes(b, k, kl);
}

static void locks_range(struct qfs_buf *b, const uint8_t *lo, size_t lol, const uint8_t *hi,
			size_t hil)
{
	qfs_buf_put_u8(b, STORE_LOCK_RANGE);
	qfs_buf_put_bytes(b, lo, lol);
	qfs_buf_put_bytes(b, hi, hil);
}

/* The keys and ranges op reads or writes by itself (the writes the counts
 * add are the overlay's, added after the last op). */
static void locks_of_op(struct qfs_buf *b, const struct qfs_op *op)
{
	struct qfs_key k;

	switch (op->kind) {
	case QFS_OP_RANGE:
		/* the partition fence: read by every txn of the group, changed
		 * only by a split, which runs with no txn of its range in
		 * flight and after recovery finished the prepared ones */
		return;
	case QFS_OP_DEL_RANGE:
	case QFS_OP_EXPECT_EMPTY:
		locks_range(b, op->key, op->key_len, op->key2, op->key2_len);
		return;
	case QFS_OP_LINK_DROP:
		locks_point(b, op->key, op->key_len);
		if (op->key2_len)
			locks_point(b, op->key2, op->key2_len);
		else if (qfs_key_parse(op->key, op->key_len, &k) == 0) {
			uint8_t lo[QFS_KEY_MAX], hi[QFS_KEY_MAX];
			size_t lol, hil;
			qfs_key_chunk_range(lo, &lol, hi, &hil, k.pk, 0, UINT64_MAX);
			locks_range(b, lo, lol, hi, hil);
		}
		return;
	default:
		locks_point(b, op->key, op->key_len);
		return;
	}
}

/* Emit the overlay as an effects list (store_int.h). */
static void ov_effects(const struct applier *a, struct qfs_buf *b)
{
	qfs_buf_put_u32(b, (uint32_t)a->nov);
	for (size_t i = 0; i < a->nov; i++) {
		const struct ov_ent *e = &a->ov[i];
		qfs_buf_put_u8(b, (uint8_t)(e->del ? 1 : 0));
		qfs_buf_put_bytes(b, e->key, e->key_len);
		if (!e->del)
			qfs_buf_put_bytes(b, e->val, e->val_len);
	}
}

/* See store_int.h. */
int store_txn_valid(const struct qfs_txn *t)
{
	for (uint32_t i = 0; i < t->nops; i++) {
		const struct qfs_op *op = &t->ops[i];
		int range = op->kind == QFS_OP_DEL_RANGE || op->kind == QFS_OP_EXPECT_EMPTY;
		if (qfs_op_is_2pc(op->kind) ||
		    qfs_key_xact_meets(op->key, op->key_len, range ? op->key2 : NULL, op->key2_len) ||
		    (op->kind == QFS_OP_LINK_DROP && op->key2_len &&
		     qfs_key_xact_meets(op->key2, op->key2_len, NULL, 0)))
			return -EINVAL; /* the 2PC state is not an item: no txn op reaches it */
	}
	return 0;
}

/* See store_int.h. */
int store_txn_locks(const struct qfs_txn *t, struct qfs_buf *locks)
{
	for (uint32_t i = 0; i < t->nops; i++)
		locks_of_op(locks, &t->ops[i]);
	return locks->err ? -ENOMEM : 0;
}

/* See store_int.h. */
int store_eval_ops(struct qfs_store *s, qfs_group_t group, const struct qfs_txn *t,
		   rocksdb_writebatch_t *wb, struct qfs_buf *effects, struct qfs_buf *written,
		   int *result)
{
	struct applier a = { .s = s, .group = group, .t = t };
	int rc = 0, fail = store_txn_valid(t);

	for (uint32_t i = 0; i < t->nops && !rc && !fail; i++)
		rc = op_run(&a, &t->ops[i], &fail);
	if (!rc && !fail)
		rc = count_finish(&a);
	if (!rc && !fail && wb)
		rc = ov_emit(&a, wb);
	if (!rc && !fail && effects) {
		ov_effects(&a, effects);
		if (effects->err)
			rc = -ENOMEM;
	}
	if (!rc && !fail && written) {
		for (size_t i = 0; i < a.nov; i++)
			locks_point(written, a.ov[i].key, a.ov[i].key_len);
		if (written->err)
			rc = -ENOMEM;
	}
	ov_free(&a);
	free(a.acct);
	if (rc)
		return rc;
	*result = fail;
	return 0;
}

int store_apply_ops(struct qfs_store *s, qfs_group_t group, const struct qfs_txn *t,
		    rocksdb_writebatch_t *wb, int *result)
{
	return store_eval_ops(s, group, t, wb, NULL, NULL, result);
}
