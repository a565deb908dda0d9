/*
 * scrubsnap.c - whole-store RocksDB snapshots and checksum-verified scans
 * for the scrubber (contract in store.h, "Scrub snapshots"; design in
 * doc/scrub.md).  Reads here always set verify_checksums and never fill
 * the block cache, so a pass over a group neither trusts a cached block nor
 * evicts the foreground's working set.  RocksDB reports a checksum
 * mismatch as a "Corruption:" status, which becomes QFS_ECORRUPT.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "store/store_int.h"

struct qfs_store_snap {
	struct qfs_store *s;             /* the store; outlives the snapshot */
	const rocksdb_snapshot_t *snap;  /* released by qfs_store_snap_release */
};

/* RocksDB error string -> QFS_ECORRUPT for a corruption, else -EIO; one
 * log line; frees err. */
static int snap_err(struct qfs_store *s, const char *what, char *err)
{
	if (err && (strncmp(err, "Corruption", 10) == 0 || strstr(err, "checksum mismatch"))) {
		QFS_LOG(QFS_LOG_ERR, "store corruption found by %s dir=%s err=\"%s\"", what, s->dir, err);
		rocksdb_free(err);
		return QFS_ECORRUPT;
	}
	return store_rocks_err(s, what, err);
}

static rocksdb_readoptions_t *snap_ro(const struct qfs_store_snap *sn)
{
	rocksdb_readoptions_t *ro = rocksdb_readoptions_create();

	if (!ro)
		return NULL;
	if (sn)
		rocksdb_readoptions_set_snapshot(ro, sn->snap);
	rocksdb_readoptions_set_verify_checksums(ro, 1);
	rocksdb_readoptions_set_fill_cache(ro, 0);
	return ro;
}

/* See store.h.  Any thread. */
int qfs_store_snap_take(struct qfs_store *s, struct qfs_store_snap **out)
{
	struct qfs_store_snap *sn = calloc(1, sizeof(*sn));

	if (!sn)
		return -ENOMEM;
	sn->s = s;
	sn->snap = store_snap_take(s);
	if (!sn->snap) {
		free(sn);
		return -ENOMEM;
	}
	*out = sn;
	return 0;
}

/* See store.h. */
void qfs_store_snap_release(struct qfs_store_snap *sn)
{
	if (!sn)
		return;
	store_snap_put(sn->s, sn->snap);
	free(sn);
}

/* See store.h. */
int qfs_store_snap_applied(struct qfs_store_snap *sn, qfs_group_t group, qfs_lsn_t *out)
{
	uint8_t ak[STORE_GROUP_PREFIX_LEN];
	rocksdb_readoptions_t *ro = snap_ro(sn);
	char *err = NULL;
	size_t vlen;
	qfs_lsn_t lsn = 0;
	int rc = 0;

	if (!ro)
		return -ENOMEM;
	store_applied_key(ak, group);
	rocksdb_pinnableslice_t *v = rocksdb_get_pinned(sn->s->db, ro, (const char *)ak, sizeof(ak), &err);
	rocksdb_readoptions_destroy(ro);
	if (err)
		return snap_err(sn->s, "scrub applied read", err);
	if (v) {
		const char *p = rocksdb_pinnableslice_value(v, &vlen);
		if (vlen == 8)
			lsn = qfs_be64_get((const uint8_t *)p);
		else
			rc = QFS_ECORRUPT;
		rocksdb_pinnableslice_destroy(v);
	}
	if (rc == 0)
		*out = lsn;
	return rc;
}

/* Iterate [lo, hi) of the raw key space at sn (or the live store when sn is
 * NULL) calling cb with the key past skip bytes. */
static int raw_scan(struct qfs_store *s, struct qfs_store_snap *sn, const uint8_t *lo, size_t lo_len,
		    const uint8_t *hi, size_t hi_len, size_t skip, const char *what,
		    qfs_store_scan_cb cb, void *arg)
{
	rocksdb_readoptions_t *ro = snap_ro(sn);
	char *err = NULL;
	int rc = 0;

	if (!ro)
		return -ENOMEM;
	if (hi)
		rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)hi, hi_len);
	rocksdb_iterator_t *it = rocksdb_create_iterator(s->db, ro);
	if (lo)
		rocksdb_iter_seek(it, (const char *)lo, lo_len);
	else
		rocksdb_iter_seek_to_first(it);
	for (; rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
		size_t kl, vl;
		const char *k = rocksdb_iter_key(it, &kl);
		const char *v = rocksdb_iter_value(it, &vl);
		if (kl < skip) {
			rc = QFS_ECORRUPT;
			QFS_LOG(QFS_LOG_ERR, "store corruption found by %s dir=%s err=\"short key\"", what,
				s->dir);
			break;
		}
		if (skip == STORE_GROUP_PREFIX_LEN) /* items: a pointer is resolved */
			rc = store_scan_item(s, ro, (const uint8_t *)k, kl, (const uint8_t *)v, vl, cb, arg);
		else
			rc = cb((const uint8_t *)k + skip, kl - skip, (const uint8_t *)v, vl, arg);
		if (rc)
			break;
	}
	if (!rc) {
		rocksdb_iter_get_error(it, &err);
		if (err)
			rc = snap_err(s, what, err);
	}
	rocksdb_iter_destroy(it);
	rocksdb_readoptions_destroy(ro);
	return rc;
}

/* See store.h. */
int qfs_store_snap_scan(struct qfs_store_snap *sn, qfs_group_t group, const uint8_t *lo,
			size_t lo_len, const uint8_t *hi, size_t hi_len, qfs_store_scan_cb cb,
			void *arg)
{
	uint8_t lob[STORE_DBKEY_MAX], hib[STORE_DBKEY_MAX];
	uint8_t *lok, *hik;
	size_t lok_len, hik_len;
	int rc;

	lok = store_item_key(lob, sizeof(lob), group, lo, lo ? lo_len : 0, &lok_len);
	if (!lok)
		return -ENOMEM;
	if (hi) {
		hik = store_item_key(hib, sizeof(hib), group, hi, hi_len, &hik_len);
		if (!hik) {
			rc = -ENOMEM;
			goto out_lo;
		}
	} else {
		hik = hib;
		hik_len = store_group_end(hib, group);
	}
	rc = raw_scan(sn->s, sn, lok, lok_len, hik, hik_len, STORE_GROUP_PREFIX_LEN, "scrub scan", cb,
		      arg);
	if (hik != hib)
		free(hik);
out_lo:
	if (lok != lob)
		free(lok);
	return rc;
}

static int count_cb(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, void *arg)
{
	(void)k;
	(void)kl;
	(void)v;
	(void)vl;
	(*(uint64_t *)arg)++;
	return 0;
}

/* See store.h.  Scans the whole key space of the live store. */
int qfs_store_verify(struct qfs_store *s)
{
	uint64_t n = 0;

	return raw_scan(s, NULL, NULL, 0, NULL, 0, 0, "store verify", count_cb, &n);
}
