/*
 * install.c - snapshot install on a live store (the rnode's catch-up,
 * doc/rnode.md section 6; contract in store.h, layout in
 * doc/format-store.md "Snapshot install").
 *
 * The items of a snapshot arrive in key order, chunk by chunk, and go
 * straight to disk: into SST files that RocksDB's SstFileWriter builds in
 * the staging directory DIR/qfs-install/ of the store (DIR the RocksDB
 * directory; RocksDB ignores a subdirectory whose name is not one of its
 * own files).  An SST file takes its keys in ascending order, so the
 * files have disjoint key ranges:
 *
 *   G.N.c.K.sst  the 'c' records of the chunk items (stream c)
 *   G.N.d.K.sst  the items (stream d); the last one also holds
 *                's' be64(G) -> (lsn, ballot)      (put at commit)
 *   G.N.a.sst    'a' be64(G) -> the applied LSN     (written at commit)
 *
 * (G the group in 16 hex digits, N a number unique in the store's life,
 * K = 0, 1, ...: a stream starts a new file once the open one passes
 * install_file_bytes, 64 MiB by default.)  Each file of a stream holds a
 * range delete from its first key to the next file's first key, the
 * first from the start of the group's range and the last to its end, so
 * together they delete the group's old 'c' records and items.  Commit
 * ingests every file in ONE rocksdb_ingest_external_file call, which
 * RocksDB applies as one version edit, synced to its MANIFEST: a crash
 * leaves either none of them in the database (the old group intact) or
 * all of them (the new group wholly).  A file whose range overlaps
 * something in the database gets a sequence number above everything in
 * it (RocksDB 7.8 gives each such file of the call its own, in order, and
 * puts it in L0); one that overlaps nothing goes to the bottom level
 * with 0.  Either way its range delete covers every older version of the
 * group's keys in its range, in SST files or in the memtable (which
 * commit flushes first, through qfs_store_sync's full-disk checks,
 * rather than let the ingestion flush it), and no put of the call: the
 * files' ranges are disjoint, and a range delete never covers a put of
 * its own sequence number.  Files are moved into the
 * database (hard links), not copied.  Until the ingestion nothing in the
 * database changed; a staging file left by a crash or a failure is
 * removed by the next open (store_install_clean) and by abort.
 *
 * Memory: each stream's writer holds the data block being built (about
 * one item: 4 KiB blocks, a 128 KiB chunk makes its own block), the index
 * and filter entries of its open file (a few dozen bytes per key, so
 * bounded by the file size) and RocksDB's file buffer (1 MiB at most),
 * whatever the snapshot's size.  qfs_store_install_buffered
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

/* One sorted stream of staging files: the 'c' records or the items.  Its
 * files cover [start of the first, end) without gaps: each holds a range
 * delete from its first key (the stream's start for the first file) to
 * the next file's first key (end for the last), then its puts, so the
 * files of a stream do not overlap and the writer's index and filter,
 * which grow with the keys of its file, stay bounded by the file size. */
struct stream {
	char tag;                          /* 'c' or 'd' (file names) */
	rocksdb_sstfilewriter_t *w;        /* the open file, NULL when none */
	uint32_t nfiles;                   /* files created so far */
	uint8_t lo[STORE_DBKEY_MAX];       /* first key the open file covers */
	size_t lo_len;
	uint8_t end[STORE_GROUP_PREFIX_LEN]; /* the end of the stream's range */
	size_t end_len;
	uint8_t last[STORE_DBKEY_MAX];     /* the last key put (0 bytes: none) */
	size_t last_len;
	uint64_t fsize;                    /* the open file's output after the last put, bytes */
	uint64_t pend;                     /* item bytes added since the output last grew */
};

struct qfs_store_install {
	struct qfs_store *s;
	qfs_group_t group;
	uint64_t num;                      /* the files' number N, unique in the store */
	uint64_t items;                    /* puts so far */
	uint64_t file_bytes;               /* a stream starts a new file past this size */
	struct stream st[2];               /* ST_C, ST_D */
	char **files;                      /* paths of every staging file created
					      (malloc'd), in order */
	size_t nfiles, cap;
};

enum { ST_C, ST_D };

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

/* Create and open a writer at a fresh staging path named after name
 * ("a", "c.K", "d.K"), recorded in in->files for abort and commit.
 * 0, -ENOMEM, -EIO. */
static int file_open(struct qfs_store_install *in, const char *name, rocksdb_sstfilewriter_t **out)
{
	rocksdb_envoptions_t *eo;
	char path[PATH_MAX], *err = NULL;

	if (in->nfiles == in->cap) {
		size_t cap = in->cap ? 2 * in->cap : 4;
		void *f = realloc(in->files, cap * sizeof(*in->files));

		if (!f)
			return -ENOMEM;
		in->files = f;
		in->cap = cap;
	}
	if (!(eo = rocksdb_envoptions_create()))
		return -ENOMEM;
	*out = rocksdb_sstfilewriter_create(eo, in->s->opts); /* copies eo */
	rocksdb_envoptions_destroy(eo);
	if (!*out)
		return -ENOMEM;
	snprintf(path, sizeof(path), "%s/" INSTALL_DIR "/%016" PRIx64 ".%" PRIu64 ".%s.sst",
		 in->s->dir, in->group, in->num, name);
	if (!(in->files[in->nfiles] = strdup(path)))
		return -ENOMEM; /* the writer, not open yet, goes with its stream */
	rocksdb_sstfilewriter_open(*out, in->files[in->nfiles++], &err);
	if (err)
		return store_rocks_err(in->s, "install open", err);
	return 0;
}

/* Open the next file of stream t, covering from its lo.  0, -ENOMEM, -EIO. */
static int stream_open(struct qfs_store_install *in, struct stream *t)
{
	char name[32];

	snprintf(name, sizeof(name), "%c.%u", t->tag, t->nfiles++);
	t->fsize = 0;
	t->pend = 0;
	return file_open(in, name, &t->w);
}

/* Finish the open file of t with its range delete [lo, hi) (the file is
 * complete and synced) and free its writer.  0, -EINVAL, -EIO. */
static int stream_close(struct qfs_store_install *in, struct stream *t, const uint8_t *hi,
			size_t hi_len)
{
	char *err = NULL;

	rocksdb_sstfilewriter_delete_range(t->w, (const char *)t->lo, t->lo_len, (const char *)hi,
					   hi_len, &err);
	if (!err)
		rocksdb_sstfilewriter_finish(t->w, &err);
	rocksdb_sstfilewriter_destroy(t->w);
	t->w = NULL;
	t->pend = 0;
	if (err)
		return writer_err(in, "install finish", err);
	return 0;
}

/* Publish the install's buffered bytes as the store's peak if higher. */
static void peak_note(struct qfs_store_install *in)
{
	uint64_t now = qfs_store_install_buffered(in);
	uint64_t peak = __atomic_load_n(&in->s->install_peak, __ATOMIC_RELAXED);

	while (now > peak &&
	       !__atomic_compare_exchange_n(&in->s->install_peak, &peak, now, 0, __ATOMIC_RELAXED,
					    __ATOMIC_RELAXED))
		;
}

/* Put (k, v) into stream t, first starting a new file at k when the open
 * one reached in->file_bytes, and account its bytes.  0, -EINVAL,
 * -ENOMEM, -EIO. */
static int stream_put(struct qfs_store_install *in, struct stream *t, const uint8_t *k,
		      size_t klen, const uint8_t *v, size_t vlen)
{
	char *err = NULL;
	uint64_t sz = 0;
	int rc;

	if (klen > sizeof(t->last))
		return -EINVAL;
	if (t->fsize >= in->file_bytes) {
		/* the new writer cannot see the order across files: check it */
		int cmp = memcmp(k, t->last, klen < t->last_len ? klen : t->last_len);

		if (cmp < 0 || (cmp == 0 && klen <= t->last_len)) {
			QFS_LOG(QFS_LOG_WARN, "store install refused dir=%s group=%016" PRIx64
				" what=install put err=\"key out of order\"", in->s->dir, in->group);
			return -EINVAL;
		}
		if ((rc = stream_close(in, t, k, klen)))
			return rc;
		memcpy(t->lo, k, klen);
		t->lo_len = klen;
		if ((rc = stream_open(in, t)))
			return rc;
	}
	rocksdb_sstfilewriter_put(t->w, (const char *)k, klen, (const char *)v, vlen, &err);
	if (err)
		return writer_err(in, "install put", err);
	/* The writer flushes its block before it adds a key that would
	 * overfill it: when its output grew, only this item is pending. */
	rocksdb_sstfilewriter_file_size(t->w, &sz);
	if (sz != t->fsize) {
		t->fsize = sz;
		t->pend = 0;
	}
	t->pend += klen + vlen;
	memcpy(t->last, k, klen);
	t->last_len = klen;
	peak_note(in);
	return 0;
}

/* See store.h. */
int qfs_store_install_begin(struct qfs_store *s, qfs_group_t group,
			    struct qfs_store_install **out)
{
	char dir[PATH_MAX];
	int rc;
	struct qfs_store_install *in = calloc(1, sizeof(*in));

	if (!in)
		return -ENOMEM;
	in->s = s;
	in->group = group;
	in->file_bytes = s->install_file_bytes ? s->install_file_bytes : QFS_STORE_INSTALL_FILE_DEFAULT;
	snprintf(dir, sizeof(dir), "%s/" INSTALL_DIR, s->dir);
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		rc = -errno;
		QFS_LOG(QFS_LOG_ERR, "store install staging failed dir=%s err=\"%s\"", dir,
			qfs_strerror(rc));
		goto err_free;
	}
	in->num = __atomic_add_fetch(&s->install_seq, 1, __ATOMIC_RELAXED);
	in->st[ST_C].tag = 'c';
	in->st[ST_C].end_len = store_crc_range(in->st[ST_C].lo, in->st[ST_C].end, group);
	in->st[ST_C].lo_len = STORE_GROUP_PREFIX_LEN;
	in->st[ST_D].tag = 'd';
	store_group_prefix(in->st[ST_D].lo, group);
	in->st[ST_D].lo_len = STORE_GROUP_PREFIX_LEN;
	in->st[ST_D].end_len = store_group_end(in->st[ST_D].end, group);
	if ((rc = stream_open(in, &in->st[ST_C])) || (rc = stream_open(in, &in->st[ST_D])))
		goto err_free;
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
	rc = stream_put(in, &in->st[ST_D], k, klen, val, val_len);
	if (!rc && store_crc_record(ck, cv, in->group, key, key_len, val, val_len))
		rc = stream_put(in, &in->st[ST_C], ck, klen, cv, sizeof(cv));
	if (k != kb)
		free(k);
	if (!rc)
		in->items++;
	return rc;
}

/* See store.h. */
uint64_t qfs_store_install_buffered(const struct qfs_store_install *in)
{
	return in->st[ST_C].pend + in->st[ST_D].pend;
}

/* See store.h. */
uint64_t qfs_store_install_peak(struct qfs_store *s)
{
	return __atomic_load_n(&s->install_peak, __ATOMIC_RELAXED);
}

/* See store.h.  The snapshot point is the last put of the item stream
 * (above every item key; the stream's range delete still ends at the next
 * group's items), the applied LSN gets a file of its own, then a flush
 * of the memtables and one ingestion of every file (the file header says
 * why it is atomic and durable); the flush after it makes durable what
 * was written since, as the WriteBatch install did. */
int qfs_store_install_commit(struct qfs_store_install *in, qfs_lsn_t lsn, uint64_t ballot)
{
	uint8_t k[STORE_GROUP_PREFIX_LEN], v[16];
	struct stream *c = &in->st[ST_C], *d = &in->st[ST_D];
	rocksdb_sstfilewriter_t *wa = NULL;
	char *err = NULL;
	const char **files = NULL;
	int rc;

	store_snap_key(k, in->group);
	qfs_be64_put(v, lsn);
	qfs_be64_put(v + 8, ballot);
	rocksdb_sstfilewriter_put(d->w, (const char *)k, sizeof(k), (const char *)v, sizeof(v), &err);
	if (err) {
		rc = writer_err(in, "install put", err);
		goto out;
	}
	if ((rc = stream_close(in, d, d->end, d->end_len)) ||
	    (rc = stream_close(in, c, c->end, c->end_len)) || (rc = file_open(in, "a", &wa)))
		goto out;
	store_applied_key(k, in->group);
	rocksdb_sstfilewriter_put(wa, (const char *)k, sizeof(k), (const char *)v, 8, &err);
	if (!err)
		rocksdb_sstfilewriter_finish(wa, &err);
	if (err) {
		rc = writer_err(in, "install finish", err);
		goto out;
	}
	if (!(files = calloc(in->nfiles, sizeof(*files)))) {
		rc = -ENOMEM;
		goto out;
	}
	/* The ingestion must flush the memtables first when they hold keys
	 * of its range (nearly always: the last item file reaches 's'
	 * be64(G)), and a flush that hits a full disk leaves RocksDB with a
	 * background error that refuses every later write of the store, all
	 * groups.  So flush here, through qfs_store_sync's checks (a disk
	 * without room for it: -ENOSPC, no flush started, nothing changed),
	 * and the ingestion never flushes by itself (a write of another
	 * thread between the two, a group drop, fails it with nothing
	 * changed: flushed and tried again, three times at most). */
	rocksdb_ingestexternalfileoptions_t *io = rocksdb_ingestexternalfileoptions_create();
	if (!io) {
		rc = -ENOMEM;
		goto out;
	}
	rocksdb_ingestexternalfileoptions_set_move_files(io, 1);
	rocksdb_ingestexternalfileoptions_set_allow_blocking_flush(io, 0);
	for (size_t f = 0; f < in->nfiles; f++)
		files[f] = in->files[f];
	pthread_mutex_lock(&in->s->apply_mu); /* no rewrite of the collector in between */
	store_cc_forget(in->s); /* the group's items and 'c' records are replaced */
	for (int tries = 0; tries < 3; tries++) {
		rocksdb_free(err);
		err = NULL;
		if ((rc = qfs_store_sync(in->s)))
			break;
		rocksdb_ingest_external_file(in->s->db, files, in->nfiles, io, &err);
		if (!err || !strstr(err, "requires flush"))
			break;
	}
	pthread_mutex_unlock(&in->s->apply_mu);
	rocksdb_ingestexternalfileoptions_destroy(io);
	if (rc) {
		rocksdb_free(err);
		goto out;
	}
	store_xact_forget(in->s, in->group); /* the snapshot's prepared txns are counted anew */
	store_applied_forget(in->s, in->group); /* and its applied LSN read anew */
	store_fence_forget(in->s, in->group, NULL, 0); /* and its fence */
	if (err) {
		rc = store_rocks_err(in->s, "install ingest", err);
		goto out;
	}
	rc = qfs_store_sync(in->s);
	/* no pointer of the group is left: its links go, unless a snapshot
	 * read may still resolve an old one (the collector removes them) */
	if (!rc && __atomic_load_n(&in->s->vlog_snaps, __ATOMIC_ACQUIRE) == 0)
		(void)store_vlog_drop(in->s, in->group); /* a failure is logged */
	else if (!rc)
		store_vlog_forget(in->s, in->group);
	if (!rc)
		QFS_LOG(QFS_LOG_INFO, "store snapshot installed dir=%s group=%016" PRIx64 " lsn=%" PRIu64
			" items=%" PRIu64 " files=%zu", in->s->dir, in->group, lsn, in->items, in->nfiles);
out:
	if (wa)
		rocksdb_sstfilewriter_destroy(wa);
	free(files);
	qfs_store_install_abort(in);
	return rc;
}

/* See store.h.  An unfinished writer leaves a partial file: removed with
 * the others (after a successful ingestion they are gone already). */
void qfs_store_install_abort(struct qfs_store_install *in)
{
	if (!in)
		return;
	for (int t = 0; t < 2; t++)
		if (in->st[t].w)
			rocksdb_sstfilewriter_destroy(in->st[t].w);
	for (size_t f = 0; f < in->nfiles; f++) {
		if (unlink(in->files[f]) != 0 && errno != ENOENT)
			QFS_LOG(QFS_LOG_WARN, "store install staging file not removed path=%s err=\"%s\"",
				in->files[f], qfs_strerror(-errno));
		free(in->files[f]);
	}
	free(in->files);
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
		QFS_LOG(QFS_LOG_ERR, "store install staging not removed dir=%s err=\"%s\"", dir,
			qfs_strerror(rc));
	return rc;
}
