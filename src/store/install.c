/*
 * install.c - snapshot install on a live store (the rnode's catch-up,
 * doc/rnode.md section 6; contract in store.h, layout in
 * doc/format-store.md "Snapshot install").
 *
 * The items of a snapshot arrive in key order, chunk by chunk, and go
 * straight to disk: into SST files that RocksDB's SstFileWriter builds in
 * the staging directory DIR/qfs-install/ of the store (DIR the RocksDB
 * directory; RocksDB ignores a subdirectory whose name is not one of its
 * own files).  Three files per install, with disjoint key ranges since an
 * SST file takes its keys in ascending order:
 *
 *   G.N.a.sst  'a' be64(G) -> the applied LSN          (written at commit)
 *   G.N.c.sst  range delete of G's 'c' records, then the 'c' record of
 *              every chunk item                        (as items arrive)
 *   G.N.d.sst  range delete of G's items, the items, then
 *              's' be64(G) -> (lsn, ballot)            (last, at commit)
 *
 * (G the group in 16 hex digits, N a number unique in the store's life.)
 * Commit ingests the three files in ONE rocksdb_ingest_external_file call,
 * which RocksDB applies as one version edit, synced to its MANIFEST: a
 * crash leaves either none of them in the database (the old group intact)
 * or all of them (the new group wholly).  An SST file's range tombstone
 * does not cover the puts of the same file (they share its sequence
 * number), and it covers everything older: the old items, whether in SST
 * files or still in the memtable (which the ingestion flushes first when
 * their ranges overlap).  Files are moved into the database (hard links),
 * not copied.  Until the ingestion nothing in the database changed; a
 * staging file left by a crash or a failure is removed by the next open
 * (store_install_clean) and by abort.
 *
 * Memory: the writer holds the data block being built (about one item:
 * 4 KiB blocks, a 128 KiB chunk makes its own block), its index and
 * filter entries (a few dozen bytes per item) and RocksDB's file buffer
 * (1 MiB at most), whatever the snapshot's size.  qfs_store_install_buffered
 * counts the item bytes added since the writer last wrote a block.
 *
 * Threads: an install is used by one thread (the node's I/O thread); the
 * store's counters it touches are atomic.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "store/store_int.h"

#define INSTALL_DIR "qfs-install"

enum { F_A, F_C, F_D, F_N }; /* the install's files, in ingestion order */

struct qfs_store_install {
	struct qfs_store *s;
	qfs_group_t group;
	rocksdb_sstfilewriter_t *w[F_N]; /* open writers (F_A only during commit) */
	char path[F_N][PATH_MAX];        /* staging files ("" before created) */
	uint64_t items;                  /* puts so far */
	uint64_t num;                    /* the files' number N, unique in the store */
	uint64_t fsize[F_N];             /* writer's output size after the last put, bytes */
	uint64_t pend[F_N];              /* item bytes added since the output last grew */
};

/* "Invalid argument" from the writer (keys out of order, a bad range) is
 * the sender's fault: -EINVAL with one log line; anything else as
 * store_rocks_err. */
static int writer_err(const struct qfs_store_install *in, const char *what, char *err)
{
	if (err && strncmp(err, "Invalid argument", 16) == 0) {
		QFS_LOG(QFS_LOG_WARN, "store install refused dir=%s group=%016" PRIx64 " what=%s err=\"%s\"",
			in->s->dir, in->group, what, err);
		rocksdb_free(err);
		return -EINVAL;
	}
	return store_rocks_err(in->s, what, err);
}

/* Create and open writer f of in at a fresh staging path.  0, -ENOMEM, -EIO. */
static int writer_open(struct qfs_store_install *in, int f, uint64_t n)
{
	static const char tag[F_N] = { 'a', 'c', 'd' };
	rocksdb_envoptions_t *eo = rocksdb_envoptions_create();
	char *err = NULL;

	if (!eo)
		return -ENOMEM;
	in->w[f] = rocksdb_sstfilewriter_create(eo, in->s->opts); /* copies eo */
	rocksdb_envoptions_destroy(eo);
	if (!in->w[f])
		return -ENOMEM;
	snprintf(in->path[f], sizeof(in->path[f]), "%s/" INSTALL_DIR "/%016" PRIx64 ".%" PRIu64
		 ".%c.sst", in->s->dir, in->group, n, tag[f]);
	rocksdb_sstfilewriter_open(in->w[f], in->path[f], &err);
	if (err)
		return store_rocks_err(in->s, "install open", err);
	return 0;
}

/* Put (k, v) into writer f and account its bytes.  0, -EINVAL, -EIO. */
static int writer_put(struct qfs_store_install *in, int f, const uint8_t *k, size_t klen,
		      const uint8_t *v, size_t vlen)
{
	char *err = NULL;
	uint64_t sz = 0, now;

	rocksdb_sstfilewriter_put(in->w[f], (const char *)k, klen, (const char *)v, vlen, &err);
	if (err)
		return writer_err(in, "install put", err);
	/* The writer flushes its block before it adds a key that would
	 * overfill it: when its output grew, only this item is pending. */
	rocksdb_sstfilewriter_file_size(in->w[f], &sz);
	if (sz != in->fsize[f]) {
		in->fsize[f] = sz;
		in->pend[f] = 0;
	}
	in->pend[f] += klen + vlen;
	now = qfs_store_install_buffered(in);
	uint64_t peak = __atomic_load_n(&in->s->install_peak, __ATOMIC_RELAXED);
	while (now > peak &&
	       !__atomic_compare_exchange_n(&in->s->install_peak, &peak, now, 0, __ATOMIC_RELAXED,
					    __ATOMIC_RELAXED))
		;
	return 0;
}

/* Finish writer f (the file is complete and synced) and free it.  0, -EIO. */
static int writer_finish(struct qfs_store_install *in, int f)
{
	char *err = NULL;

	rocksdb_sstfilewriter_finish(in->w[f], &err);
	rocksdb_sstfilewriter_destroy(in->w[f]);
	in->w[f] = NULL;
	in->pend[f] = 0;
	if (err)
		return writer_err(in, "install finish", err);
	return 0;
}

/* See store.h. */
int qfs_store_install_begin(struct qfs_store *s, qfs_group_t group,
			    struct qfs_store_install **out)
{
	uint8_t lo[STORE_GROUP_PREFIX_LEN], hi[STORE_GROUP_PREFIX_LEN];
	char dir[PATH_MAX], *err = NULL;
	size_t hi_len;
	uint64_t n;
	int rc;
	struct qfs_store_install *in = calloc(1, sizeof(*in));

	if (!in)
		return -ENOMEM;
	in->s = s;
	in->group = group;
	snprintf(dir, sizeof(dir), "%s/" INSTALL_DIR, s->dir);
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		rc = -errno;
		QFS_LOG(QFS_LOG_ERR, "store install staging failed dir=%s err=%s", dir,
			qfs_strerror(rc));
		goto err_free;
	}
	n = __atomic_add_fetch(&s->install_seq, 1, __ATOMIC_RELAXED);
	if ((rc = writer_open(in, F_C, n)) || (rc = writer_open(in, F_D, n)))
		goto err_free;
	hi_len = store_crc_range(lo, hi, group);
	rocksdb_sstfilewriter_delete_range(in->w[F_C], (const char *)lo, sizeof(lo),
					   (const char *)hi, hi_len, &err);
	if (!err) {
		store_group_prefix(lo, group);
		hi_len = store_group_end(hi, group);
		rocksdb_sstfilewriter_delete_range(in->w[F_D], (const char *)lo, sizeof(lo),
						   (const char *)hi, hi_len, &err);
	}
	if (err) {
		rc = writer_err(in, "install range delete", err);
		goto err_free;
	}
	in->num = n;
	*out = in;
	return 0;

err_free:
	qfs_store_install_abort(in);
	return rc;
}

/* See store.h. */
int qfs_store_install_item(struct qfs_store_install *in, const uint8_t *key, size_t key_len,
			   const uint8_t *val, size_t val_len)
{
	uint8_t kb[STORE_DBKEY_MAX], ck[STORE_DBKEY_MAX], cv[STORE_CRC_LEN];
	size_t klen;
	uint8_t *k;
	int rc;

	if (key_len > QFS_KEY_MAX || val_len > UINT32_MAX)
		return -EINVAL;
	k = store_item_key(kb, sizeof(kb), in->group, key, key_len, &klen);
	if (!k)
		return -ENOMEM;
	rc = writer_put(in, F_D, k, klen, val, val_len);
	if (!rc && store_crc_record(ck, cv, in->group, key, key_len, val, val_len))
		rc = writer_put(in, F_C, ck, klen, cv, sizeof(cv));
	if (k != kb)
		free(k);
	if (!rc)
		in->items++;
	return rc;
}

/* See store.h. */
uint64_t qfs_store_install_buffered(const struct qfs_store_install *in)
{
	return in->pend[F_C] + in->pend[F_D];
}

/* See store.h. */
uint64_t qfs_store_install_peak(struct qfs_store *s)
{
	return __atomic_load_n(&s->install_peak, __ATOMIC_RELAXED);
}

/* See store.h.  The applied LSN and the snapshot point are written last,
 * then one ingestion of the three files (the file header says why it is
 * atomic and durable); the flush after it makes what the memtables held
 * before durable too, as the WriteBatch install did. */
int qfs_store_install_commit(struct qfs_store_install *in, qfs_lsn_t lsn, uint64_t ballot)
{
	uint8_t k[STORE_GROUP_PREFIX_LEN], v[16];
	const char *files[F_N];
	char *err = NULL;
	int rc;

	store_snap_key(k, in->group);
	qfs_be64_put(v, lsn);
	qfs_be64_put(v + 8, ballot);
	if ((rc = writer_put(in, F_D, k, sizeof(k), v, sizeof(v))) || (rc = writer_finish(in, F_D)) ||
	    (rc = writer_finish(in, F_C)) || (rc = writer_open(in, F_A, in->num)))
		goto out;
	store_applied_key(k, in->group);
	qfs_be64_put(v, lsn);
	if ((rc = writer_put(in, F_A, k, sizeof(k), v, 8)) || (rc = writer_finish(in, F_A)))
		goto out;
	rocksdb_ingestexternalfileoptions_t *io = rocksdb_ingestexternalfileoptions_create();
	if (!io) {
		rc = -ENOMEM;
		goto out;
	}
	rocksdb_ingestexternalfileoptions_set_move_files(io, 1);
	for (int f = 0; f < F_N; f++)
		files[f] = in->path[f];
	rocksdb_ingest_external_file(in->s->db, files, F_N, io, &err);
	rocksdb_ingestexternalfileoptions_destroy(io);
	store_xact_forget(in->s, in->group); /* the snapshot's prepared txns are counted anew */
	if (err) {
		rc = store_rocks_err(in->s, "install ingest", err);
		goto out;
	}
	rc = qfs_store_sync(in->s);
	if (!rc)
		QFS_LOG(QFS_LOG_INFO, "store snapshot installed dir=%s group=%016" PRIx64 " lsn=%" PRIu64
			" items=%" PRIu64, in->s->dir, in->group, lsn, in->items);
out:
	qfs_store_install_abort(in);
	return rc;
}

/* See store.h.  An unfinished writer leaves a partial file: removed with
 * the others (after a successful ingestion they are gone already). */
void qfs_store_install_abort(struct qfs_store_install *in)
{
	if (!in)
		return;
	for (int f = 0; f < F_N; f++) {
		if (in->w[f])
			rocksdb_sstfilewriter_destroy(in->w[f]);
		if (in->path[f][0] && unlink(in->path[f]) != 0 && errno != ENOENT)
			QFS_LOG(QFS_LOG_WARN, "store install staging file not removed path=%s err=%s",
				in->path[f], qfs_strerror(-errno));
	}
	free(in);
}

/* See store_int.h. */
int store_install_clean(struct qfs_store *s)
{
	char dir[PATH_MAX], path[PATH_MAX + 256];
	struct dirent *de;
	unsigned n = 0;
	int rc = 0;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/" INSTALL_DIR, s->dir);
	if (!(d = opendir(dir)))
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (unlink(path) != 0) {
			rc = -errno;
			break;
		}
		n++;
	}
	closedir(d);
	if (n)
		QFS_LOG(QFS_LOG_WARN, "store install staging removed dir=%s files=%u", s->dir, n);
	if (rc)
		QFS_LOG(QFS_LOG_ERR, "store install staging not removed dir=%s err=%s", dir,
			qfs_strerror(rc));
	return rc;
}
