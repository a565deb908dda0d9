/*
 * xact.c - the store's side of two-phase commit across groups: the
 * PREPARE, COMMIT, ABORT and DECIDE ops (common/txn.h), the lock check of
 * every txn of a group that holds prepared txns, and the per-group count of
 * prepared txns that keeps that check off the ordinary path.  Protocol,
 * crash cases and formats: doc/xact.md; contracts in store_int.h.
 *
 * State lives in the group's own item space under reserved keys (key.h):
 *   ff*16 "\0" "p" txid -> u8 1, u32 crc32c(sub-txn), bytes locks, bytes effects
 *   ff*16 "\0" "x" txid -> 'C' or 'A'                 (coordinator only)
 *   ff*16 "\0" "o" txid -> 'C' or 'A'                 (a part's outcome)
 * so snapshots, scrub comparisons, archive snapshots and group drops carry
 * it with the items, and a restore replays it through the same apply.
 * The locks of a prepared txn are stored in its record (not one key per
 * lock): a group holds few prepared txns at a time, and a conflict check
 * reads them all, which costs nothing while there are none.
 *
 * Runs only on the node's I/O thread (apply's thread), like apply.c; the
 * count cache (s->nprep) is touched only there.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "common/log.h"
#include "store/store_int.h"

#define RECORD_VERSION 1
/* How long, in txid time (the creation time a txid carries), a part keeps
 * the outcome of a txid it committed or aborted: a PREPARE of that txid
 * applied meanwhile (a proposal retried by the cell, or one that timed out
 * and commits late) is ignored instead of preparing again.  Thrice the
 * coordinator's default abort keep time (10 minutes), past which no run
 * commits. */
#define OUTCOME_KEEP_MS (30ull * 60 * 1000)

/* Index of the first cache entry with group >= g. */
static size_t nprep_lower(const struct qfs_store *s, qfs_group_t g)
{
	size_t lo = 0, hi = s->nnprep;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->nprep[mid].group < g)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Call cb(arg, value, value length) on each prepared record of group in
 * key order while it returns 0.  Returns cb's last answer (0 when there is
 * no record), or -errno of a RocksDB read error (logged as what) where cb
 * answered 0 or 1. */
static int prepared_each(struct qfs_store *s, qfs_group_t group, const char *what,
			 int (*cb)(void *arg, const uint8_t *v, size_t vl), void *arg)
{
	uint8_t lo[QFS_KEY_PREFIX_LEN + 2], hi[QFS_KEY_PREFIX_LEN + 2];
	uint8_t lob[STORE_DBKEY_MAX], hib[STORE_DBKEY_MAX];
	size_t lol, hil;
	char *err = NULL;
	int rc = 0;

	qfs_key_xact_range(lo, hi, QFS_KEY_XACT_PREPARED);
	store_item_key(lob, sizeof(lob), group, lo, sizeof(lo), &lol);
	store_item_key(hib, sizeof(hib), group, hi, sizeof(hi), &hil);
	rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
	if (!ro)
		return -ENOMEM;
	rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)hib, hil);
	rocksdb_iterator_t *it = rocksdb_create_iterator(s->db, ro);
	for (rocksdb_iter_seek(it, (const char *)lob, lol); rocksdb_iter_valid(it) && !rc;
	     rocksdb_iter_next(it)) {
		size_t vl;
		const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vl);
		rc = cb(arg, v, vl);
	}
	if (rc >= 0) {
		rocksdb_iter_get_error(it, &err);
		if (err)
			rc = store_rocks_err(s, what, err);
	}
	rocksdb_iter_destroy(it);
	rocksdb_readoptions_destroy(ro);
	return rc;
}

static int count_one(void *arg, const uint8_t *v, size_t vl)
{
	(void)v;
	(void)vl;
	(*(uint64_t *)arg)++;
	return 0;
}

/* Count the prepared records of group in RocksDB. */
static int nprep_load(struct qfs_store *s, qfs_group_t group, uint64_t *out)
{
	uint64_t n = 0;
	int rc = prepared_each(s, group, "count prepared", count_one, &n);

	if (!rc)
		*out = n;
	return rc;
}

/* See store_int.h. */
int store_xact_nprep(struct qfs_store *s, qfs_group_t group, uint64_t *out)
{
	size_t i = nprep_lower(s, group);
	uint64_t n;
	int rc;

	if (i < s->nnprep && s->nprep[i].group == group) {
		*out = s->nprep[i].n;
		return 0;
	}
	rc = nprep_load(s, group, &n);
	if (rc)
		return rc;
	if (s->nnprep == s->nprep_cap) {
		size_t cap = s->nprep_cap ? s->nprep_cap * 2 : 16;
		struct store_nprep *p = realloc(s->nprep, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		s->nprep = p;
		s->nprep_cap = cap;
	}
	memmove(&s->nprep[i + 1], &s->nprep[i], (s->nnprep - i) * sizeof(*s->nprep));
	s->nprep[i] = (struct store_nprep){ .group = group, .n = n };
	s->nnprep++;
	*out = n;
	return 0;
}

/* See store_int.h. */
void store_xact_forget(struct qfs_store *s, qfs_group_t group)
{
	size_t i = nprep_lower(s, group);

	if (i < s->nnprep && s->nprep[i].group == group) {
		memmove(&s->nprep[i], &s->nprep[i + 1], (s->nnprep - i - 1) * sizeof(*s->nprep));
		s->nnprep--;
	}
}

/* Add delta to group's count if it is known (the write of a 2PC op
 * succeeded). */
void store_xact_count(struct qfs_store *s, qfs_group_t group, int64_t delta)
{
	size_t i = nprep_lower(s, group);

	if (i < s->nnprep && s->nprep[i].group == group) {
		if (delta < 0 && (uint64_t)-delta > s->nprep[i].n)
			s->nprep[i].n = 0;
		else
			s->nprep[i].n += (uint64_t)delta;
	}
}

/* ---- lock sets ---- */

struct lock {
	const uint8_t *lo, *hi; /* hi NULL: the point lo */
	size_t lol, hil;
};

/* Next lock of r into *l: 1, 0 at the end, QFS_ECORRUPT. */
static int lock_next(struct qfs_rd *r, struct lock *l)
{
	if (qfs_rd_left(r) == 0)
		return 0;
	uint8_t kind = qfs_rd_u8(r);
	l->lo = qfs_rd_bytes(r, &l->lol);
	l->hi = NULL;
	l->hil = 0;
	if (kind == STORE_LOCK_RANGE)
		l->hi = qfs_rd_bytes(r, &l->hil);
	else if (kind != STORE_LOCK_POINT)
		return QFS_ECORRUPT;
	return r->err ? QFS_ECORRUPT : 1;
}

static int lock_meets(const struct lock *a, const struct lock *b)
{
	if (!a->hi && !b->hi)
		return qfs_key_cmp(a->lo, a->lol, b->lo, b->lol) == 0;
	if (!a->hi) /* point a in [b.lo, b.hi) */
		return qfs_key_cmp(b->lo, b->lol, a->lo, a->lol) <= 0 &&
		       qfs_key_cmp(a->lo, a->lol, b->hi, b->hil) < 0;
	if (!b->hi)
		return lock_meets(b, a);
	/* two non-empty ranges overlap iff each starts before the other ends */
	return qfs_key_cmp(a->lo, a->lol, a->hi, a->hil) < 0 &&
	       qfs_key_cmp(b->lo, b->lol, b->hi, b->hil) < 0 &&
	       qfs_key_cmp(a->lo, a->lol, b->hi, b->hil) < 0 &&
	       qfs_key_cmp(b->lo, b->lol, a->hi, a->hil) < 0;
}

/* 1 if lock sets x and y share a key, 0 if not, QFS_ECORRUPT. */
static int locks_overlap(const uint8_t *x, size_t xl, const uint8_t *y, size_t yl)
{
	struct qfs_rd rx, ry;
	struct lock a, b;
	int rc;

	qfs_rd_init(&rx, x, xl);
	while ((rc = lock_next(&rx, &a)) == 1) {
		qfs_rd_init(&ry, y, yl);
		while ((rc = lock_next(&ry, &b)) == 1)
			if (lock_meets(&a, &b))
				return 1;
		if (rc)
			return rc;
	}
	return rc;
}

/* Split a prepared record into the CRC-32C of its sub-txn, its lock set
 * and its effects (crc may be NULL). */
static int record_parse(const uint8_t *v, size_t vl, uint32_t *crc, const uint8_t **locks,
			size_t *ll, const uint8_t **eff, size_t *el)
{
	struct qfs_rd r;

	qfs_rd_init(&r, v, vl);
	if (qfs_rd_u8(&r) != RECORD_VERSION)
		return QFS_ECORRUPT;
	uint32_t c = qfs_rd_u32(&r);
	if (crc)
		*crc = c;
	*locks = qfs_rd_bytes(&r, ll);
	*eff = qfs_rd_bytes(&r, el);
	if (r.err || qfs_rd_left(&r))
		return QFS_ECORRUPT;
	return 0;
}

struct conflict_arg {
	const uint8_t *locks; /* the lock list of the txn to check */
	size_t locks_len;     /* bytes at locks */
};

/* A prepared record's locks against the txn's: 0, 1 if they overlap,
 * QFS_ECORRUPT. */
static int conflict_one(void *arg, const uint8_t *v, size_t vl)
{
	const struct conflict_arg *c = arg;
	const uint8_t *pl, *pe;
	size_t pll, pel;
	int rc = record_parse(v, vl, NULL, &pl, &pll, &pe, &pel);

	if (!rc)
		rc = locks_overlap(c->locks, c->locks_len, pl, pll);
	return rc;
}

/* See store_int.h.  Reads every prepared record of group. */
int store_xact_conflict(struct qfs_store *s, qfs_group_t group, const uint8_t *locks,
			size_t locks_len)
{
	struct conflict_arg c = { locks, locks_len };
	int rc = prepared_each(s, group, "read prepared", conflict_one, &c);

	if (rc == QFS_ECORRUPT)
		QFS_LOG(QFS_LOG_ERR, "store prepared record undecodable dir=%s group=%016llx err=\"%s\"",
			s->dir, (unsigned long long)group, qfs_strerror(rc));
	return rc;
}

/* See store_int.h. */
int store_xact_eval(struct qfs_store *s, qfs_group_t group, const struct qfs_txn *t,
		    rocksdb_writebatch_t *wb, struct qfs_buf *effects, struct qfs_buf *locks,
		    int *result)
{
	struct qfs_buf mine, written;
	int rc, res = store_txn_valid(t);

	if (res) {
		*result = res;
		return 0;
	}
	qfs_buf_init(&mine);
	qfs_buf_init(&written);
	rc = store_txn_locks(t, &mine);
	if (!rc)
		rc = store_xact_conflict(s, group, mine.data, mine.len);
	if (rc == 1) { /* what it would read or write may still change */
		res = -EBUSY;
		rc = 0;
		goto out;
	}
	if (rc)
		goto out;
	rc = store_eval_ops(s, group, t, wb, effects, &written, &res);
	if (rc || res)
		goto out;
	rc = store_xact_conflict(s, group, written.data, written.len);
	if (rc == 1) { /* e.g. a count in an inode a prepared txn rewrites */
		res = -EBUSY;
		rc = 0;
		goto out;
	}
	if (rc)
		goto out;
	if (locks) {
		qfs_buf_put(locks, mine.data, mine.len);
		qfs_buf_put(locks, written.data, written.len);
		if (locks->err)
			rc = -ENOMEM;
	}
out:
	qfs_buf_close(&written);
	qfs_buf_close(&mine);
	if (!rc)
		*result = res;
	return rc;
}

/* ---- the 2PC ops ---- */

/* Read the reserved key of tag and txid: *v malloc'd (NULL if absent). */
static int xget(struct qfs_store *s, qfs_group_t group, uint8_t tag, const uint8_t *txid,
		uint8_t *dbkey, size_t *dbkey_len, char **v, size_t *vl)
{
	uint8_t k[QFS_KEY_XACT_LEN];
	char *err = NULL;

	qfs_key_xact(k, tag, txid);
	store_item_key(dbkey, STORE_DBKEY_MAX, group, k, sizeof(k), dbkey_len);
	*v = rocksdb_get(s->db, s->ro, (const char *)dbkey, *dbkey_len, vl, &err);
	if (err)
		return store_rocks_err(s, "get 2pc state", err);
	return 0;
}

/* Put the effects list into wb as item writes of group. */
static int effects_emit(struct qfs_store *s, qfs_group_t group, const uint8_t *e, size_t el,
			rocksdb_writebatch_t *wb)
{
	uint8_t kb[STORE_DBKEY_MAX];
	struct qfs_rd r;

	qfs_rd_init(&r, e, el);
	uint32_t n = qfs_rd_u32(&r);
	for (uint32_t i = 0; i < n && !r.err; i++) {
		size_t kl, vl = 0, dkl;
		uint8_t del = qfs_rd_u8(&r);
		const uint8_t *k = qfs_rd_bytes(&r, &kl);
		const uint8_t *v = del ? NULL : qfs_rd_bytes(&r, &vl);
		if (r.err || kl > QFS_KEY_MAX)
			break;
		uint8_t *dk = store_item_key(kb, sizeof(kb), group, k, kl, &dkl);
		if (del)
			rocksdb_writebatch_delete(wb, (const char *)dk, dkl);
		else
			rocksdb_writebatch_put(wb, (const char *)dk, dkl, (const char *)v, vl);
		store_crc_emit(wb, group, k, kl, v, vl, del);
	}
	if (r.err || qfs_rd_left(&r)) {
		QFS_LOG(QFS_LOG_ERR, "store prepared effects undecodable dir=%s group=%016llx",
			s->dir, (unsigned long long)group);
		return QFS_ECORRUPT;
	}
	return 0;
}

/* The outcome of txid in group: *res 0 (committed), -EALREADY (aborted)
 * or 1 (none recorded).  With crc (a PREPARE's sub-txn): -EEXIST for a
 * commit of another sub-txn (the CRC-32C the outcome keeps differs): not
 * a duplicate but another run that drew the same txid. */
static int outcome_get(struct qfs_store *s, qfs_group_t group, const uint8_t *txid,
		       const uint32_t *crc, int *res)
{
	uint8_t dk[STORE_DBKEY_MAX];
	size_t dkl, vl;
	char *v;
	int rc = xget(s, group, QFS_KEY_XACT_OUTCOME, txid, dk, &dkl, &v, &vl);

	if (rc)
		return rc;
	if (!v)
		*res = 1;
	else if (v[0] != 'C' || (vl != 1 && vl != 5))
		*res = -EALREADY;
	else if (crc && vl == 5 && qfs_be32_get((const uint8_t *)v + 1) != *crc)
		*res = -EEXIST;
	else
		*res = 0;
	rocksdb_free(v);
	return 0;
}

/* Creation time (wall-clock ms) a txid carries: id = ms << 20 | counter. */
static uint64_t txid_ms(const uint8_t *txid)
{
	return qfs_be64_get(txid + 8) >> 20;
}

/* Record outcome o ('C' or 'A') of txid in group into wb ('C' followed by
 * be32 crc, the CRC-32C of the committed sub-txn), and delete the
 * outcomes of txid's coordinator older than OUTCOME_KEEP_MS before txid's
 * time, once the oldest is half that again older (so one range delete per
 * half keep time, not one per txn).  Depends only on the store and the op:
 * every replica writes the same. */
static int outcome_put(struct qfs_store *s, qfs_group_t group, const uint8_t *txid, char o,
		       uint32_t crc, rocksdb_writebatch_t *wb)
{
	uint8_t k[QFS_KEY_XACT_LEN], lo[QFS_KEY_XACT_LEN], hi[QFS_KEY_XACT_LEN];
	uint8_t dk[STORE_DBKEY_MAX], dlo[STORE_DBKEY_MAX], dhi[STORE_DBKEY_MAX], dold[STORE_DBKEY_MAX];
	uint8_t t[QFS_TXID_LEN];
	uint64_t now = txid_ms(txid), keep = OUTCOME_KEEP_MS;
	size_t dkl, dlol, dhil, doldl;
	char *err = NULL;
	int rc = 0;

	qfs_key_xact(k, QFS_KEY_XACT_OUTCOME, txid);
	store_item_key(dk, sizeof(dk), group, k, sizeof(k), &dkl);
	uint8_t ov[5] = { (uint8_t)o };
	qfs_be32_put(ov + 1, crc);
	rocksdb_writebatch_put(wb, (const char *)dk, dkl, (const char *)ov, o == 'C' ? 5 : 1);
	if (now <= keep + keep / 2)
		return 0;
	memcpy(t, txid, 8);
	memset(t + 8, 0, 8);
	qfs_key_xact(lo, QFS_KEY_XACT_OUTCOME, t);
	store_item_key(dlo, sizeof(dlo), group, lo, sizeof(lo), &dlol);
	qfs_be64_put(t + 8, (now - keep - keep / 2) << 20);
	qfs_key_xact(hi, QFS_KEY_XACT_OUTCOME, t);
	store_item_key(dold, sizeof(dold), group, hi, sizeof(hi), &doldl);
	qfs_be64_put(t + 8, (now - keep) << 20);
	qfs_key_xact(hi, QFS_KEY_XACT_OUTCOME, t);
	store_item_key(dhi, sizeof(dhi), group, hi, sizeof(hi), &dhil);

	rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
	if (!ro)
		return -ENOMEM;
	rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)dold, doldl);
	rocksdb_iterator_t *it = rocksdb_create_iterator(s->db, ro);
	rocksdb_iter_seek(it, (const char *)dlo, dlol);
	if (rocksdb_iter_valid(it))
		rocksdb_writebatch_delete_range(wb, (const char *)dlo, dlol, (const char *)dhi, dhil);
	rocksdb_iter_get_error(it, &err);
	if (err)
		rc = store_rocks_err(s, "seek 2pc outcomes", err);
	rocksdb_iter_destroy(it);
	rocksdb_readoptions_destroy(ro);
	return rc;
}

static int op_prepare(struct qfs_store *s, qfs_group_t group, const struct qfs_op *op,
		      rocksdb_writebatch_t *wb, int64_t *delta, int *result)
{
	uint8_t dk[STORE_DBKEY_MAX];
	struct qfs_buf locks, eff, rec;
	struct qfs_txn sub;
	size_t dkl, vl;
	char *v;
	int rc, res = 0;

	uint32_t crc = qfs_crc32c(0, op->val, op->val_len), had;
	const uint8_t *pl, *pe;
	size_t pll, pel;

	rc = xget(s, group, QFS_KEY_XACT_PREPARED, op->key, dk, &dkl, &v, &vl);
	if (rc)
		return rc;
	if (v) { /* a retry: already prepared (the same sub-txn, else a txid clash) */
		rc = record_parse((const uint8_t *)v, vl, &had, &pl, &pll, &pe, &pel);
		rocksdb_free(v);
		if (rc)
			return rc;
		*result = had == crc ? 0 : -EEXIST;
		return 0;
	}
	rc = outcome_get(s, group, op->key, &crc, &res);
	if (rc || res != 1) {
		/* finished already: a duplicate must not prepare again (a
		 * recovery would commit the new record a second time, or it
		 * would stay locked) */
		if (!rc) {
			QFS_LOG(QFS_LOG_INFO, "store prepare ignored group=%016llx txid=%016llx outcome=%s",
				(unsigned long long)group, (unsigned long long)qfs_be64_get(op->key + 8),
				!res ? "commit" : res == -EEXIST ? "commit_of_other_subtxn" : "abort");
			/* another run with this txid (-EEXIST) retries with a
			 * new one, like one whose txid was aborted: it must not
			 * count as prepared and commit without this part */
			*result = res ? -EALREADY : 0;
		}
		return rc;
	}
	res = 0;
	qfs_txn_init(&sub);
	if (qfs_txn_decode(op->val, op->val_len, &sub) != 0) {
		*result = -EINVAL;
		return 0;
	}
	qfs_buf_init(&locks);
	qfs_buf_init(&eff);
	qfs_buf_init(&rec);
	rc = store_xact_eval(s, group, &sub, NULL, &eff, &locks, &res);
	if (rc || res)
		goto out;
	qfs_buf_put_u8(&rec, RECORD_VERSION);
	qfs_buf_put_u32(&rec, crc);
	qfs_buf_put_bytes(&rec, locks.data, locks.len);
	qfs_buf_put_bytes(&rec, eff.data, eff.len);
	if (rec.err) {
		rc = -ENOMEM;
		goto out;
	}
	rocksdb_writebatch_put(wb, (const char *)dk, dkl, (const char *)rec.data, rec.len);
	*delta = 1;
out:
	qfs_buf_close(&rec);
	qfs_buf_close(&eff);
	qfs_buf_close(&locks);
	qfs_txn_close(&sub);
	if (!rc)
		*result = res;
	return rc;
}

/* COMMIT (commit 1) or ABORT (commit 0).  Either records the outcome
 * (outcome_put) when it ends a prepared record; an ABORT also when there
 * is none and no outcome yet, so that a PREPARE of the txid that commits
 * later (its proposal timed out) prepares nothing. */
static int op_finish(struct qfs_store *s, qfs_group_t group, const struct qfs_op *op, int commit,
		     rocksdb_writebatch_t *wb, int64_t *delta, int *result)
{
	uint8_t dk[STORE_DBKEY_MAX];
	const uint8_t *pl, *pe;
	size_t dkl, vl, pll, pel;
	uint32_t crc = 0;
	char *v;
	int rc;

	rc = xget(s, group, QFS_KEY_XACT_PREPARED, op->key, dk, &dkl, &v, &vl);
	if (rc)
		return rc;
	*result = 0;
	if (!v) { /* done already (or never prepared) */
		int had;

		if (commit)
			return 0;
		rc = outcome_get(s, group, op->key, NULL, &had);
		if (!rc && had == 1)
			rc = outcome_put(s, group, op->key, 'A', 0, wb);
		return rc;
	}
	if (commit) {
		rc = record_parse((const uint8_t *)v, vl, &crc, &pl, &pll, &pe, &pel);
		if (rc)
			QFS_LOG(QFS_LOG_ERR, "store prepared record undecodable dir=%s group=%016llx err=\"%s\"",
				s->dir, (unsigned long long)group, qfs_strerror(rc));
		else
			rc = effects_emit(s, group, pe, pel, wb);
	}
	if (rc) {
		/* a damaged replica (the scrubber repairs it): not a result */
		rocksdb_free(v);
		return rc;
	}
	rocksdb_free(v);
	rc = outcome_put(s, group, op->key, commit ? 'C' : 'A', crc, wb);
	if (rc)
		return rc;
	rocksdb_writebatch_delete(wb, (const char *)dk, dkl);
	*delta = -1;
	return 0;
}

static int op_decide(struct qfs_store *s, qfs_group_t group, const struct qfs_op *op,
		     rocksdb_writebatch_t *wb, int *result)
{
	uint8_t dk[STORE_DBKEY_MAX];
	size_t dkl, vl;
	char *v;
	int rc;

	if (op->val_len != 1 || (op->val[0] != QFS_DECIDE_COMMIT && op->val[0] != QFS_DECIDE_ABORT &&
				 op->val[0] != QFS_DECIDE_FORGET)) {
		*result = -EINVAL;
		return 0;
	}
	rc = xget(s, group, QFS_KEY_XACT_DECISION, op->key, dk, &dkl, &v, &vl);
	if (rc)
		return rc;
	*result = 0;
	if (op->val[0] == QFS_DECIDE_FORGET) {
		if (v)
			rocksdb_writebatch_delete(wb, (const char *)dk, dkl);
	} else if (!v) {
		rocksdb_writebatch_put(wb, (const char *)dk, dkl, (const char *)op->val, 1);
	} else if (vl != 1 || v[0] != (char)op->val[0]) {
		*result = -EALREADY; /* the other decision was recorded first */
	}
	rocksdb_free(v);
	return 0;
}

/* See store_int.h. */
int store_xact_apply(struct qfs_store *s, qfs_group_t group, const struct qfs_txn *t,
		     rocksdb_writebatch_t *wb, int64_t *delta, int *result)
{
	const struct qfs_op *op = &t->ops[0];

	*delta = 0;
	if (t->nops != 1 || op->key_len != QFS_TXID_LEN) {
		*result = -EINVAL;
		return 0;
	}
	switch (op->kind) {
	case QFS_OP_PREPARE:
		return op_prepare(s, group, op, wb, delta, result);
	case QFS_OP_COMMIT:
		return op_finish(s, group, op, 1, wb, delta, result);
	case QFS_OP_ABORT:
		return op_finish(s, group, op, 0, wb, delta, result);
	case QFS_OP_DECIDE:
		return op_decide(s, group, op, wb, result);
	default:
		*result = -EINVAL;
		return 0;
	}
}
