/*
 * data.c - file bytes: write buffering, reads that overlay buffered chunks on
 * stored ones, truncation, and the flush that turns buffered state into one
 * transaction.
 *
 * A file of at most QFS_INLINE_MAX bytes keeps its bytes in the inode item
 * (QFS_ATTR_INLINE); a larger one in chunk items of QFS_CHUNK_SIZE bytes,
 * each stored trimmed to the file size and of its trailing zero bytes; an
 * all-zero chunk is not stored (holes read as zeros).  Writes are buffered
 * per inode as whole chunks (with the span written; a chunked file's stored
 * bytes are read only when needed, and a chunk written over a small span
 * goes back as a PATCH of it: doc/fs.md "Write-back of a chunk") and
 * written back on close (FUSE flush), fsync,
 * a setattr of a file with no pending write-back, or when more than
 * QFS_FS_DIRTY_MAX bytes are buffered for the file (or more than
 * QFS_FS_DIRTY_TOTAL_MAX for all files together); attribute changes made meanwhile
 * through open handles, and a pending create (pend.c), go into the same
 * write-back.  One flush = one txn = one log entry, so a file never shows
 * a half-applied write-back after a crash (doc/fs.md "One round per file").
 *
 * Every function here is called with in->mu held, but qfs_fs_data_read,
 * which takes it itself.
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/clock.h"
#include "common/log.h"
#include "fs/fs_int.h"

/* Bytes of buffered chunks of every inode of the process (relaxed atomic):
 * past QFS_FS_DIRTY_TOTAL_MAX a write writes back its own file first, so
 * the buffers do not grow with the number of files open for writing. */
static uint64_t dirty_total;

/* Chunk buffers (QFS_CHUNK_SIZE bytes each) kept for reuse, at most
 * CHUNK_POOL_MAX of them (2 MiB): a write buffers a whole chunk whatever
 * its size, and a buffer taken fresh from malloc after the write-back freed
 * the last one was new memory as often as not, so a 4 KiB write into a new
 * chunk (zeroed first) faulted in 32 pages: with 8 writers of 4 KiB +
 * fsync each, 1.1 page faults per fsync() and 4 % of the daemon's CPU
 * (doc/perf.md "AFTER 37").  A buffer from the pool is already in memory.
 * Lock: pool_mu, a leaf. */
#define CHUNK_POOL_MAX 16
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static uint8_t *pool[CHUNK_POOL_MAX]; /* protected by pool_mu */
static int npool;                     /* protected by pool_mu */

/* A chunk buffer (contents undefined), or NULL. */
static uint8_t *chunk_buf_get(void)
{
	uint8_t *b = NULL;

	pthread_mutex_lock(&pool_mu);
	if (npool)
		b = pool[--npool];
	pthread_mutex_unlock(&pool_mu);
	return b ? b : malloc(QFS_CHUNK_SIZE);
}

/* Give back a buffer of chunk_buf_get (NULL does nothing). */
static void chunk_buf_put(uint8_t *b)
{
	if (!b)
		return;
	pthread_mutex_lock(&pool_mu);
	if (npool < CHUNK_POOL_MAX) {
		pool[npool++] = b;
		b = NULL;
	}
	pthread_mutex_unlock(&pool_mu);
	free(b);
}

static int over_budget(const struct qfs_fs_inode *in)
{
	return in->dirty_bytes >= QFS_FS_DIRTY_MAX ||
	       (in->dirty_bytes && __atomic_load_n(&dirty_total, __ATOMIC_RELAXED) > QFS_FS_DIRTY_TOTAL_MAX);
}

static struct qfs_dchunk *chunk_find(struct qfs_fs_inode *in, uint64_t no)
{
	for (struct qfs_dchunk *c = in->chunks; c; c = c->next)
		if (c->no == no)
			return c;
	return NULL;
}

/* Free a list of buffered chunks (the dirty_total accounting is the
 * caller's). */
static void chunks_free(struct qfs_dchunk *c)
{
	for (struct qfs_dchunk *next; c; c = next) {
		next = c->next;
		chunk_buf_put(c->data);
		free(c);
	}
}

void qfs_fs_drop_buffers(struct qfs_fs_inode *in)
{
	chunks_free(in->chunks);
	in->chunks = NULL;
	__atomic_sub_fetch(&dirty_total, in->dirty_bytes, __ATOMIC_RELAXED);
	in->dirty_bytes = 0;
}

int qfs_fs_load(struct qfs_fs *fs, struct qfs_fs_inode *in)
{
	struct qfs_attr a;
	int rc;

	if (in->loaded)
		return 0;
	rc = qfs_router_get_attr(fs->r, in->table, in->ino, &a);
	if (rc)
		return rc;
	in->attr = a;
	in->stored_size = a.size;
	in->valid_size = a.size;
	in->stored_flags = a.flags;
	in->attr_dirty = 0;
	in->loaded = true;
	return 0;
}

/* Stored bytes of chunk no into dst (QFS_CHUNK_SIZE bytes), zeros where the
 * store has none or beyond valid (bytes truncated away in memory). */
static int read_stored_chunk(struct qfs_fs *fs, struct qfs_fs_inode *in, uint64_t valid, uint32_t flags,
			     uint64_t no, uint8_t *dst)
{
	uint64_t start = no * QFS_CHUNK_SIZE;
	size_t want;
	int rc;

	memset(dst, 0, QFS_CHUNK_SIZE);
	if (start >= valid)
		return 0;
	want = valid - start < QFS_CHUNK_SIZE ? (size_t)(valid - start) : QFS_CHUNK_SIZE;
	if (flags & QFS_ATTR_INLINE) {
		struct qfs_inode inode;
		if (no != 0)
			return 0;
		qfs_inode_init(&inode);
		rc = qfs_router_get_inode(fs->r, in->table, in->ino, &inode);
		if (rc == 0) {
			size_t n = inode.data_len < want ? inode.data_len : want;
			if (n)
				memcpy(dst, inode.data, n);
		}
		qfs_inode_close(&inode);
		return rc;
	}
	struct qfs_router_key key = CKEY(in->ino, no);
	size_t vlen;
	void *val;
	rc = qfs_router_item_get(fs->r, in->table, &key, &val, &vlen);
	if (rc == -ENOENT)
		return 0;
	if (rc)
		return rc;
	memcpy(dst, val, vlen < want ? vlen : want);
	free(val);
	return 0;
}

/* Make a partial chunk whole: read its stored bytes and lay the bytes
 * written since over them.  0 or the read's error (c stays partial). */
static int chunk_fill(struct qfs_fs *fs, struct qfs_fs_inode *in, struct qfs_dchunk *c)
{
	uint8_t *d;
	int rc;

	if (!c->partial)
		return 0;
	d = chunk_buf_get();
	if (!d)
		return -ENOMEM;
	rc = read_stored_chunk(fs, in, in->valid_size, in->stored_flags, c->no, d);
	if (rc) {
		chunk_buf_put(d);
		return rc;
	}
	if (c->dlo < c->dhi)
		memcpy(d + c->dlo, c->data + c->dlo, c->dhi - c->dlo);
	chunk_buf_put(c->data);
	c->data = d;
	c->partial = false;
	return 0;
}

/* Bytes [inoff, inoff + n) of stored chunk no into dst: what the store
 * has, zeros where it has none or beyond valid.  For reads of a chunk item
 * (the bulk of a large file's reads): one copy from the store's value
 * into the reply, no chunk-sized bounce buffer. */
static int read_stored_range(struct qfs_fs *fs, struct qfs_fs_inode *in, uint64_t valid, uint32_t flags,
			     uint64_t no, size_t inoff, size_t n, uint8_t *dst)
{
	uint64_t start = no * QFS_CHUNK_SIZE;
	struct qfs_router_key key = CKEY(in->ino, no);
	size_t vlen, have = 0;
	void *val;
	int rc;

	if (flags & QFS_ATTR_INLINE) {
		uint8_t *tmp = malloc(QFS_CHUNK_SIZE);
		if (!tmp)
			return -ENOMEM;
		rc = read_stored_chunk(fs, in, valid, flags, no, tmp);
		if (rc == 0)
			memcpy(dst, tmp + inoff, n);
		free(tmp);
		return rc;
	}
	if (start + inoff < valid) {
		rc = qfs_router_item_get(fs->r, in->table, &key, &val, &vlen);
		if (rc && rc != -ENOENT)
			return rc;
		if (rc == 0) {
			/* stored bytes below valid (a truncate in memory cut the rest) */
			uint64_t lim = valid - start < vlen ? valid - start : vlen;
			if (lim > inoff)
				have = lim - inoff < n ? (size_t)(lim - inoff) : n;
			if (have)
				memcpy(dst, (uint8_t *)val + inoff, have);
			free(val);
		}
	}
	memset(dst + have, 0, n - have);
	return 0;
}

/* The buffered chunk no, created if absent: with its stored bytes when
 * need_old (the caller does not overwrite all of them), or partial (nothing
 * read: the caller writes some bytes and the rest is read only if needed)
 * when need_old == 2; zeros when need_old == 0, or left as they are when
 * need_old == 3 (the caller writes every byte of the chunk: a buffer of
 * a sequential write is not zeroed first).  NULL + *err on failure. */
static struct qfs_dchunk *chunk_get(struct qfs_fs *fs, struct qfs_fs_inode *in, uint64_t no, int need_old,
				    int *err)
{
	struct qfs_dchunk *c = chunk_find(in, no);

	if (c)
		return c;
	c = calloc(1, sizeof(*c));
	if (!c || !(c->data = chunk_buf_get())) {
		free(c);
		*err = -ENOMEM;
		return NULL;
	}
	c->no = no;
	c->dlo = QFS_CHUNK_SIZE;
	c->dhi = 0;
	if (need_old == 2) {
		c->partial = true;
	} else if (need_old == 3) {
		/* every byte written by the caller */
	} else if (need_old) {
		*err = read_stored_chunk(fs, in, in->valid_size, in->stored_flags, no, c->data);
		if (*err) {
			chunk_buf_put(c->data);
			free(c);
			return NULL;
		}
	} else {
		memset(c->data, 0, QFS_CHUNK_SIZE);
	}
	c->next = in->chunks;
	in->chunks = c;
	in->dirty_bytes += QFS_CHUNK_SIZE;
	__atomic_add_fetch(&dirty_total, QFS_CHUNK_SIZE, __ATOMIC_RELAXED);
	return c;
}

static int wb_start(struct qfs_fs *fs, struct qfs_fs_inode *in, struct qfs_fs_wb **out);

int qfs_fs_data_write(struct qfs_fs *fs, struct qfs_fs_inode *in, const char *buf, size_t size, off_t off,
		      struct qfs_fs_wb **behind)
{
	uint64_t pos = (uint64_t)off, end = pos + size;
	int rc;

	if (off < 0)
		return -EINVAL;
	if (end > QFS_FS_FILE_MAX || end < pos)
		return -EFBIG;
	/* beside a write-back behind, only a write past it that leaves room
	 * in the buffer goes on; any other waits for it to end.  So the write
	 * that fills the buffer again learns how the one in flight ended
	 * before it takes effect: if that failed (a full disk), the flush
	 * below fails this write, as a synchronous write-back's failure
	 * failed the write after it, instead of a second write-back behind
	 * taking everything (twice the budget) and the error waiting for the
	 * close */
	while (in->wb_busy &&
	       (pos < in->wb_from || over_budget(in) || in->dirty_bytes + size >= QFS_FS_DIRTY_MAX))
		pthread_cond_wait(&in->wb_cv, &in->mu);
	rc = qfs_fs_load(fs, in);
	if (rc)
		return rc;
	if (over_budget(in)) {
		/* write back what is buffered before taking more; if that fails,
		 * this write fails and takes no effect (the buffered, already
		 * acknowledged writes stay buffered for the next attempt) */
		rc = qfs_fs_flush_locked(fs, in);
		if (rc)
			return rc;
		rc = qfs_fs_load(fs, in);
		if (rc)
			return rc;
	}
	while (pos < end) {
		uint64_t no = pos / QFS_CHUNK_SIZE, cstart = no * QFS_CHUNK_SIZE;
		size_t inoff = (size_t)(pos - cstart);
		size_t n = QFS_CHUNK_SIZE - inoff;
		if (n > end - pos)
			n = (size_t)(end - pos);
		/* old bytes are needed unless this write covers every stored byte of the chunk */
		uint64_t old_end = in->valid_size < cstart + QFS_CHUNK_SIZE ? in->valid_size : cstart + QFS_CHUNK_SIZE;
		int need_old = old_end > cstart && !(inoff == 0 && cstart + n >= old_end);
		/* a chunked file's stored bytes are read only when something
		 * needs them (a read, a truncate, a write not touching the bytes
		 * written so far): a small write is written back as a PATCH */
		if (need_old && !(in->stored_flags & QFS_ATTR_INLINE))
			need_old = 2;
		else if (!need_old && n == QFS_CHUNK_SIZE)
			need_old = 3;
		struct qfs_dchunk *c = chunk_get(fs, in, no, need_old, &rc);
		if (!c)
			return rc;
		if (c->partial && (inoff > c->dhi || inoff + n < c->dlo) && c->dlo < c->dhi) {
			rc = chunk_fill(fs, in, c); /* the written span must stay contiguous */
			if (rc)
				return rc;
		}
		memcpy(c->data + inoff, buf, n);
		if (inoff < c->dlo)
			c->dlo = (uint32_t)inoff;
		if (inoff + n > c->dhi)
			c->dhi = (uint32_t)(inoff + n);
		buf += n;
		pos += n;
	}
	if (end > in->attr.size)
		in->attr.size = end;
	qfs_clock_now(&in->attr.mtime);
	in->attr.ctime = in->attr.mtime;
	in->attr_dirty |= QFS_SET_SIZE | QFS_SET_MTIME | QFS_SET_CTIME;
	if (over_budget(in)) {
		/* the write itself is buffered and acknowledged; a failure here is
		 * kept and reported by the next flush, fsync or close */
		if (behind && S_ISREG(in->attr.mode)) {
			while (in->wb_busy) /* one write-back behind at a time */
				pthread_cond_wait(&in->wb_cv, &in->mu);
			/* an fsync or close that had waited too may have stored it all */
			rc = over_budget(in) ? wb_start(fs, in, behind) : 0;
		} else {
			rc = qfs_fs_flush_locked(fs, in);
		}
		if (rc)
			in->wb_err = rc;
	}
	return 0;
}

/* The read of qfs_fs_data_read: with in->mu held when loaded (buffered
 * state overlays the store), without it for a clean file (the store alone;
 * only in->ino and in->table, which never change, are used). */
static int data_read(struct qfs_fs *fs, struct qfs_fs_inode *in, int loaded, char *buf, size_t size, off_t off,
		     size_t *got)
{
	uint64_t fsize, valid;
	uint32_t flags;
	struct qfs_inode inode;
	int rc = 0, have_inode = 0;

	qfs_inode_init(&inode);
	if (loaded) {
		fsize = in->attr.size;
		valid = in->valid_size;
		flags = in->stored_flags;
	} else {
		/* clean file: one read of the inode gives size and, if inline, the bytes */
		rc = qfs_router_get_inode(fs->r, in->table, in->ino, &inode);
		if (rc)
			return rc;
		have_inode = 1;
		fsize = valid = inode.a.size;
		flags = inode.a.flags;
	}
	if (off < 0 || (uint64_t)off >= fsize) {
		*got = 0;
		goto out;
	}
	uint64_t pos = (uint64_t)off, end = pos + size;
	if (end > fsize || end < pos)
		end = fsize;
	*got = (size_t)(end - pos);
	if (have_inode && (flags & QFS_ATTR_INLINE)) {
		memset(buf, 0, *got);
		if (pos < inode.data_len) {
			size_t n = inode.data_len - pos < end - pos ? inode.data_len - (size_t)pos : (size_t)(end - pos);
			memcpy(buf, inode.data + pos, n);
		}
		goto out;
	}
	while (pos < end) {
		uint64_t no = pos / QFS_CHUNK_SIZE;
		size_t inoff = (size_t)(pos - no * QFS_CHUNK_SIZE);
		size_t n = QFS_CHUNK_SIZE - inoff;
		if (n > end - pos)
			n = (size_t)(end - pos);
		struct qfs_dchunk *c = loaded ? chunk_find(in, no) : NULL;
		if (c && (rc = chunk_fill(fs, in, c)))
			goto out;
		if (c) {
			memcpy(buf, c->data + inoff, n);
		} else {
			rc = read_stored_range(fs, in, valid, flags, no, inoff, n, (uint8_t *)buf);
			if (rc)
				goto out;
		}
		buf += n;
		pos += n;
	}
out:
	qfs_inode_close(&inode);
	return rc;
}

int qfs_fs_data_read(struct qfs_fs *fs, struct qfs_fs_inode *in, char *buf, size_t size, off_t off, size_t *got)
{
	int rc;

	qfs_fs_ilock(in);
	if (in->loaded) {
		rc = data_read(fs, in, 1, buf, size, off, got);
		pthread_mutex_unlock(&in->mu);
		return rc;
	}
	pthread_mutex_unlock(&in->mu);
	/* clean: concurrent reads (the kernel's readahead sends several) run
	 * in parallel, and a write meanwhile is concurrent with this read */
	return data_read(fs, in, 0, buf, size, off, got);
}

/* Zeros for the holes and trimmed tails of a vector read (never written). */
static const uint8_t zero_chunk[QFS_CHUNK_SIZE];

/* Append segment [p, p + n) to v (v->iov has room: qfs_fs_data_read_vec). */
static void rvec_add(struct qfs_fs_rvec *v, const void *p, size_t n)
{
	if (!n)
		return;
	if (v->n && p == zero_chunk && v->iov[v->n - 1].iov_base == zero_chunk &&
	    v->iov[v->n - 1].iov_len + n <= sizeof(zero_chunk)) {
		v->iov[v->n - 1].iov_len += n; /* a hole's segments merge */
		return;
	}
	v->iov[v->n].iov_base = (void *)p;
	v->iov[v->n].iov_len = n;
	v->n++;
}

/* Chunk no of a clean chunked file: its stored value held in *val (empty:
 * none) and its length.  0 or the router's read error. */
static int rvec_get(struct qfs_fs *fs, struct qfs_fs_inode *in, uint64_t no, struct qfs_val *val, size_t *len)
{
	struct qfs_router_key key = CKEY(in->ino, no);
	int rc = qfs_router_item_get_val(fs->r, in->table, &key, val);

	*len = rc == 0 ? val->len : 0;
	if (rc == -ENOENT)
		rc = 0;
	return rc;
}

#define RVEC_UNREAD ((size_t)-1) /* lens[i]: chunk i not read yet */

/* Read the chunks i in [0, n) of a vector read (chunk first + i) not read
 * yet into v->own[i] and lens[i].  0 or the router's read error. */
static int rvec_fetch(struct qfs_fs *fs, struct qfs_fs_inode *in, uint64_t first, size_t n,
		      struct qfs_fs_rvec *v, size_t *lens)
{
	for (size_t i = 0; i < n; i++) {
		if (lens[i] != RVEC_UNREAD)
			continue;
		int rc = rvec_get(fs, in, first + i, &v->own[i], &lens[i]);
		if (rc)
			return rc;
	}
	return 0;
}

/* v's segments for bytes [pos, end) of a clean chunked file from the values
 * read (v->own[i], lens[i]: chunk pos / QFS_CHUNK_SIZE + i), each limited
 * to valid (end <= valid), zeros where a value lacks bytes. */
static void rvec_build(struct qfs_fs_rvec *v, const size_t *lens, uint64_t valid, uint64_t pos, uint64_t end)
{
	uint64_t first = pos / QFS_CHUNK_SIZE;

	while (pos < end) {
		uint64_t no = pos / QFS_CHUNK_SIZE, start = no * QFS_CHUNK_SIZE;
		size_t i = (size_t)(no - first), inoff = (size_t)(pos - start), n = QFS_CHUNK_SIZE - inoff, have = 0;

		if (n > end - pos)
			n = (size_t)(end - pos);
		if (qfs_val_held(&v->own[i])) {
			uint64_t lim = valid - start < lens[i] ? valid - start : lens[i];
			if (lim > inoff)
				have = lim - inoff < n ? (size_t)(lim - inoff) : n;
			if (have) /* an empty value's data may be NULL */
				rvec_add(v, v->own[i].data + inoff, have);
		}
		rvec_add(v, zero_chunk, n - have);
		pos += n;
	}
}

/* Free the values v owns and keep its arrays (v->n must be 0). */
static void rvec_drop_values(struct qfs_fs_rvec *v)
{
	for (int i = 0; i < v->nown; i++)
		qfs_val_release(&v->own[i]);
	v->nown = 0;
}

int qfs_fs_data_read_vec(struct qfs_fs *fs, struct qfs_fs_inode *in, size_t size, off_t off,
			 struct qfs_fs_rvec *v)
{
	struct qfs_inode inode;
	char *flat = NULL;
	int rc;

	memset(v, 0, sizeof(*v));
	qfs_fs_ilock(in);
	int loaded = in->loaded;
	pthread_mutex_unlock(&in->mu);
	if (!loaded) {
		/* clean: the read's last chunk first.  If it is stored and holds
		 * every byte asked of it, the store keeps a chunked file's chunks
		 * trimmed to its size (the write-back that shrinks a file deletes
		 * or trims the chunks past the new size in the same txn as the
		 * size, qfs_fs_flush_locked; going inline deletes them all), so
		 * every byte asked is below the size: the other chunks alone
		 * answer, zeros where they lack bytes (holes, trimmed zero tails).
		 * Else (a trimmed tail, a hole or the end of the file), one read
		 * of the inode gives the size first, as in data_read, and the
		 * chunk already read is not read again.  Each chunk is read on its
		 * own: a write-back overlapping the read may show in part of it. */
		uint64_t pos = (uint64_t)off, end = pos + size;
		if (off < 0 || size == 0 || end < pos)
			return 0;
		uint64_t first = pos / QFS_CHUNK_SIZE, lastno = (end - 1) / QFS_CHUNK_SIZE;
		size_t nchunks = (size_t)(lastno - first + 1), *lens = malloc(nchunks * sizeof(*lens));
		/* a chunk gives at most a value and a zero tail */
		v->iov = malloc(2 * nchunks * sizeof(*v->iov));
		v->own = calloc(nchunks, sizeof(*v->own));
		if (!lens || !v->iov || !v->own) {
			free(lens);
			qfs_fs_rvec_free(v);
			return -ENOMEM;
		}
		v->nown = (int)nchunks;
		for (size_t i = 0; i < nchunks; i++)
			lens[i] = RVEC_UNREAD;
		size_t last = nchunks - 1;
		rc = rvec_get(fs, in, lastno, &v->own[last], &lens[last]);
		if (rc)
			goto clean_out;
		if (qfs_val_held(&v->own[last]) && lens[last] >= end - lastno * QFS_CHUNK_SIZE) {
			rc = rvec_fetch(fs, in, first, nchunks, v, lens);
			if (rc == 0)
				rvec_build(v, lens, end, pos, end);
			goto clean_out;
		}
		qfs_inode_init(&inode);
		rc = qfs_router_get_inode(fs->r, in->table, in->ino, &inode);
		if (rc)
			goto inode_out;
		uint64_t fsize = inode.a.size;
		if (pos >= fsize) {
			rvec_drop_values(v); /* nothing to read: v empty */
			goto inode_out;
		}
		if (end > fsize)
			end = fsize;
		if (inode.a.flags & QFS_ATTR_INLINE) {
			size_t got = (size_t)(end - pos), have = 0;
			rvec_drop_values(v); /* no chunks: the bytes are in the inode */
			if (!(flat = malloc(got))) {
				rc = -ENOMEM;
				goto inode_out;
			}
			qfs_val_adopt(&v->own[v->nown++], flat, got);
			if (pos < inode.data_len)
				have = inode.data_len - pos < got ? inode.data_len - (size_t)pos : got;
			if (have) /* inode.data is NULL when nothing is kept (all zeros) */
				memcpy(flat, inode.data + pos, have);
			memset(flat + have, 0, got - have);
			rvec_add(v, flat, got);
		} else {
			rc = rvec_fetch(fs, in, first, (size_t)((end - 1) / QFS_CHUNK_SIZE - first + 1), v, lens);
			if (rc == 0)
				rvec_build(v, lens, fsize, pos, end);
		}
inode_out:
		qfs_inode_close(&inode);
clean_out:
		free(lens);
		if (rc)
			qfs_fs_rvec_free(v);
		return rc;
	}
	/* buffered state: one flat copy, as qfs_fs_data_read */
	size_t got = 0;
	flat = malloc(size ? size : 1);
	v->iov = malloc(sizeof(*v->iov));
	v->own = malloc(sizeof(*v->own));
	if (!flat || !v->iov || !v->own) {
		free(flat);
		qfs_fs_rvec_free(v);
		return -ENOMEM;
	}
	qfs_val_adopt(&v->own[v->nown++], flat, size);
	rc = qfs_fs_data_read(fs, in, flat, size, off, &got);
	if (rc) {
		qfs_fs_rvec_free(v);
		return rc;
	}
	rvec_add(v, flat, got);
	return 0;
}

void qfs_fs_rvec_free(struct qfs_fs_rvec *v)
{
	for (int i = 0; v->own && i < v->nown; i++)
		qfs_val_release(&v->own[i]);
	free(v->own);
	free(v->iov);
	memset(v, 0, sizeof(*v));
}

int qfs_fs_data_truncate(struct qfs_fs *fs, struct qfs_fs_inode *in, uint64_t size)
{
	int rc;

	if (size > QFS_FS_FILE_MAX)
		return -EFBIG;
	rc = qfs_fs_load(fs, in);
	if (rc)
		return rc;
	if (size < in->attr.size) {
		/* everything that can fail comes first: the tail chunk */
		size_t tail = (size_t)(size % QFS_CHUNK_SIZE);
		struct qfs_dchunk *tc = NULL;
		if (tail) {
			uint64_t no = size / QFS_CHUNK_SIZE;
			tc = chunk_find(in, no);
			if (tc && (rc = chunk_fill(fs, in, tc)))
				return rc;
			if (!tc && no * QFS_CHUNK_SIZE < in->valid_size) {
				tc = chunk_get(fs, in, no, 1, &rc);
				if (!tc)
					return rc;
			}
		}
		struct qfs_dchunk **pp = &in->chunks;
		while (*pp) {
			struct qfs_dchunk *c = *pp;
			if (c->no * QFS_CHUNK_SIZE >= size) {
				*pp = c->next;
				in->dirty_bytes -= QFS_CHUNK_SIZE;
				__atomic_sub_fetch(&dirty_total, QFS_CHUNK_SIZE, __ATOMIC_RELAXED);
				chunk_buf_put(c->data);
				free(c);
			} else {
				pp = &c->next;
			}
		}
		if (tc) {
			memset(tc->data + tail, 0, QFS_CHUNK_SIZE - tail);
			tc->whole = true;
		}
		if (size < in->valid_size)
			in->valid_size = size;
	}
	in->attr.size = size;
	qfs_clock_now(&in->attr.mtime);
	in->attr.ctime = in->attr.mtime;
	in->attr_dirty |= QFS_SET_SIZE | QFS_SET_MTIME | QFS_SET_CTIME;
	return 0;
}

/* Length of p[0..n) without its trailing zero bytes (0: all zeros).  The
 * store keeps chunks and inline data trimmed so: a read zero-fills what a
 * value lacks, and st_blocks counts only what is kept. */
static size_t trim_zeros(const uint8_t *p, size_t n)
{
	static const uint8_t zero[4096];

	while (n) {
		size_t k = n % sizeof(zero) ? n % sizeof(zero) : sizeof(zero);
		if (memcmp(p + n - k, zero, k) != 0) {
			while (p[n - 1] == 0)
				n--;
			return n;
		}
		n -= k;
	}
	return 0;
}

/* 1 if chunk c of a chunked file may be written back as a PATCH of its
 * written bytes: every byte outside [dlo, dhi) equals the stored chunk (or
 * the chunk is stored nowhere: beyond the valid size, whose stored chunks the
 * write-back deletes first), and the written bytes are less than half the
 * chunk (past that, a PUT of the whole chunk costs the applier less), or
 * the chunk is partial. */
static int patchable(const struct qfs_fs_inode *in, const struct qfs_dchunk *c)
{
	if (c->partial)
		return 1; /* the only way: the rest was never read */
	return !c->whole && !(in->stored_flags & QFS_ATTR_INLINE) && c->dlo < c->dhi &&
	       c->dhi - c->dlo < QFS_CHUNK_SIZE / 2;
}

/* What a write-back stores (doc/fs.md "One round per file"): the txn,
 * whose values point into the inode's chunk buffers and inl, and the size
 * and flags it stores.  Behind a write (qfs_fs_wb_run) it also holds the
 * state taken off the inode while the txn is in flight. */
struct qfs_fs_wb {
	struct qfs_router_itxn t;
	uint8_t *inl;                /* the inline bytes stored, or NULL */
	uint64_t size;
	uint32_t flags;
	struct qfs_dchunk *chunks;   /* behind: the chunks the txn stores */
	uint64_t bytes;              /* behind: their bytes (still in dirty_total) */
	uint32_t attr_dirty;         /* behind: the attribute changes it stores */
	bool acl_drop;
};

static void wb_init(struct qfs_fs_wb *w)
{
	memset(w, 0, sizeof(*w));
	qfs_router_itxn_init(&w->t);
}

static void wb_close(struct qfs_fs_wb *w)
{
	qfs_router_itxn_close(&w->t);
	free(w->inl);
	w->inl = NULL;
}

/* Build the write-back of in's buffered state into w (wb_init'd); in->mu
 * held.  0 or -ENOMEM, or the error of a read it needed (a partial chunk
 * made whole, inline bytes moved into a chunk). */
static int wb_build(struct qfs_fs *fs, struct qfs_fs_inode *in, struct qfs_fs_wb *w)
{
	struct qfs_router_key ikey = IKEY(in->ino);
	struct qfs_op *op;
	int rc = -ENOMEM;
	int is_file = S_ISREG(in->attr.mode);

	/* a pending create is stored by the same txn (pend.c) */
	if (in->pend && (rc = qfs_fs_pend_add_ops(&w->t, in->pend)))
		goto out;
	rc = -ENOMEM;
	uint32_t flags = in->stored_flags;
	uint64_t size = in->attr.size;
	int data_changed = is_file && (in->chunks || (in->attr_dirty & QFS_SET_SIZE));

	if (data_changed && size <= QFS_INLINE_MAX) {
		w->inl = malloc(size ? size : 1);
		if (!w->inl)
			goto out;
		if (size) {
			struct qfs_dchunk *c = chunk_find(in, 0);
			if (c && (rc = chunk_fill(fs, in, c)))
				goto out;
			rc = -ENOMEM;
			if (c) {
				memcpy(w->inl, c->data, size);
			} else {
				uint8_t *tmp = malloc(QFS_CHUNK_SIZE);
				if (!tmp)
					goto out;
				rc = read_stored_chunk(fs, in, in->valid_size, in->stored_flags, 0, tmp);
				memcpy(w->inl, tmp, size);
				free(tmp);
				if (rc)
					goto out;
				rc = -ENOMEM;
			}
		}
		if (!(in->stored_flags & QFS_ATTR_INLINE) && in->stored_size > 0) {
			struct qfs_router_range all = qfs_router_range_chunks(in->ino, 0, UINT64_MAX);
			op = qfs_router_itxn_add_range(&w->t, QFS_OP_DEL_RANGE, &all);
			if (!op)
				goto out;
		}
		op = qfs_fs_add_op(&w->t, QFS_OP_SETDATA, ikey);
		if (!op)
			goto out;
		op->val = w->inl;
		op->val_len = (uint32_t)trim_zeros(w->inl, size);
		flags |= QFS_ATTR_INLINE;
	} else if (data_changed) {
		if ((in->stored_flags & QFS_ATTR_INLINE) && in->valid_size > 0 && !chunk_find(in, 0)) {
			if (!chunk_get(fs, in, 0, 1, &rc))
				goto out;
			rc = -ENOMEM;
		}
		if (in->stored_flags & QFS_ATTR_INLINE) {
			op = qfs_fs_add_op(&w->t, QFS_OP_SETDATA, ikey);
			if (!op)
				goto out;
			op->val = (const uint8_t *)"";
			op->val_len = 0;
		} else if (in->valid_size < in->stored_size) {
			uint64_t from = (in->valid_size + QFS_CHUNK_SIZE - 1) / QFS_CHUNK_SIZE;
			struct qfs_router_range tail = qfs_router_range_chunks(in->ino, from, UINT64_MAX);
			op = qfs_router_itxn_add_range(&w->t, QFS_OP_DEL_RANGE, &tail);
			if (!op)
				goto out;
		}
		for (struct qfs_dchunk *c = in->chunks; c; c = c->next) {
			uint64_t start = c->no * QFS_CHUNK_SIZE;
			if (start >= size)
				continue;
			size_t len = size - start < QFS_CHUNK_SIZE ? (size_t)(size - start) : QFS_CHUNK_SIZE;
			struct qfs_router_key k = CKEY(in->ino, c->no);
			if (patchable(in, c)) {
				/* only the bytes written: the applier overlays them on
				 * the stored chunk (or on nothing after the DEL_RANGE
				 * above) and trims trailing zeros */
				size_t hi = c->dhi < len ? c->dhi : len;
				if (c->dlo >= hi)
					continue; /* nothing written below the size */
				op = qfs_fs_add_op(&w->t, QFS_OP_PATCH, k);
				if (!op)
					goto out;
				op->offset = c->dlo;
				op->val = c->data + c->dlo;
				op->val_len = (uint32_t)(hi - c->dlo);
				continue;
			}
			len = trim_zeros(c->data, len);
			if (len == 0) {
				op = qfs_fs_add_op(&w->t, QFS_OP_DEL, k);
			} else {
				op = qfs_fs_add_op(&w->t, QFS_OP_PUT, k);
				if (op) {
					op->val = c->data;
					op->val_len = (uint32_t)len;
				}
			}
			if (!op)
				goto out;
		}
		flags &= ~QFS_ATTR_INLINE;
	}
	if (in->acl_drop) {
		/* set, then drop: removed whether or not one was stored */
		op = qfs_fs_add_op(&w->t, QFS_OP_XSET, ikey);
		if (!op)
			goto out;
		op->name = QFS_ACL_ACCESS;
		op->val = (const uint8_t *)"";
		op->val_len = 0;
		op = qfs_fs_add_op(&w->t, QFS_OP_XDEL, ikey);
		if (!op)
			goto out;
		op->name = QFS_ACL_ACCESS;
	}
	op = qfs_fs_add_op(&w->t, QFS_OP_SETATTR, ikey);
	if (!op)
		goto out;
	op->mask = in->attr_dirty;
	if (data_changed)
		op->mask |= QFS_SET_SIZE | QFS_SET_FLAGS;
	op->attr = in->attr;
	op->attr.flags = flags;
	w->size = size;
	w->flags = flags;
	return 0;
out:
	return rc;
}

/* A write-back stored (in->mu held): the store has w's size and flags
 * and the pending create it carried, and no earlier failure is left to
 * report. */
static void wb_stored(struct qfs_fs *fs, struct qfs_fs_inode *in, const struct qfs_fs_wb *w)
{
	in->stored_size = w->size;
	in->valid_size = w->size;
	in->stored_flags = w->flags;
	in->wb_err = 0;
	qfs_fs_pend_remove(fs, in);
	/* the kernel keeps attributes up to the timeout (doc/fs.md "Kernel
	 * caches"): an estimate of st_blocks it was given (zeros become holes,
	 * a rewrite replaces blocks) must not outlive the buffers; attributes
	 * only, no pages */
	if (in->blocks_est && fs->se)
		fuse_lowlevel_notify_inval_inode(fs->se, in->ino, -1, 0);
	in->blocks_est = false;
}

int qfs_fs_flush_locked(struct qfs_fs *fs, struct qfs_fs_inode *in)
{
	struct qfs_fs_wb w;
	int rc, res = 0;

	assert(!in->wb_busy); /* callers lock with qfs_fs_ilock */
	if (!in->loaded || (in->attr_dirty == 0 && !in->chunks && !in->pend)) {
		in->loaded = false;
		in->wb_err = 0;
		return 0;
	}
	wb_init(&w);
	rc = wb_build(fs, in, &w);
	if (rc)
		goto out;
	rc = qfs_fs_item_txn(fs, in->table, &w.t, &res);
	if (rc == 0)
		rc = res;
	if (rc)
		QFS_LOG(QFS_LOG_ERR, "write-back failed ino=%llu table=%llu size=%llu err=\"%s\"",
			(unsigned long long)in->ino, (unsigned long long)in->table, (unsigned long long)w.size,
			qfs_strerror(rc));
out:
	if (rc == -ENOMEM)
		QFS_LOG(QFS_LOG_ERR, "write-back out of memory ino=%llu", (unsigned long long)in->ino);
	if (rc == 0) {
		/* stored: the buffers are no longer needed, the store is the truth */
		wb_stored(fs, in, &w);
		qfs_fs_drop_buffers(in);
		in->attr_dirty = 0;
		in->acl_drop = false;
		in->loaded = false;
	} else {
		/* keep the buffered state: acknowledged writes are not thrown away,
		 * and the next flush, fsync or close tries again (the caller may
		 * give up on it with qfs_fs_discard) */
		in->wb_err = rc;
	}
	wb_close(&w);
	return rc;
}

/* ---------------------------------------------------------- write-back behind
 *
 * A write that fills its file's buffer (over_budget) used to write the
 * buffer back before its reply: the writer waited out the round (three
 * appends and syncs), and the requests behind it waited for in->mu, so no
 * data came in while the replicas synced (a dd of 8 MiB records spent a
 * quarter of its time receiving: doc/perf.md AFTER 52).  Now such a write
 * takes the buffered state off the inode into a qfs_fs_wb (wb_start), marks
 * the inode wb_busy and replies; the same FUSE thread then runs the txn
 * without in->mu (qfs_fs_wb_run).  Meanwhile a write at or past wb_from
 * (past every chunk in flight and the size stored: bytes that read as
 * zeros whether the txn commits or not) buffers as usual; anything else on
 * the inode waits (qfs_fs_ilock), as does a write that would start a second
 * write-back.  At the end the state in flight is dropped if stored, or put
 * back if not (disjoint from what was buffered meanwhile), the error kept
 * for the next flush, fsync or close: what a write-back that fails at the
 * end of a write has always done.  Durability is unchanged: nothing was
 * promised durable before an fsync or close, and both wait for it. */

void qfs_fs_ilock(struct qfs_fs_inode *in)
{
	pthread_mutex_lock(&in->mu);
	while (in->wb_busy)
		pthread_cond_wait(&in->wb_cv, &in->mu);
}

/* Start a write-back behind (in->mu held, !wb_busy): 0 and *out, the
 * inode pinned and busy; or the error, nothing changed. */
static int wb_start(struct qfs_fs *fs, struct qfs_fs_inode *in, struct qfs_fs_wb **out)
{
	struct qfs_fs_wb *w = malloc(sizeof(*w));
	uint64_t from;
	int rc;

	if (!w)
		return -ENOMEM;
	wb_init(w);
	rc = wb_build(fs, in, w);
	if (rc) {
		wb_close(w);
		free(w);
		return rc;
	}
	from = (w->size + QFS_CHUNK_SIZE - 1) / QFS_CHUNK_SIZE * QFS_CHUNK_SIZE;
	for (struct qfs_dchunk *c = in->chunks; c; c = c->next)
		if ((c->no + 1) * QFS_CHUNK_SIZE > from)
			from = (c->no + 1) * QFS_CHUNK_SIZE;
	w->chunks = in->chunks;
	w->bytes = in->dirty_bytes;
	w->attr_dirty = in->attr_dirty;
	w->acl_drop = in->acl_drop;
	in->chunks = NULL;
	in->dirty_bytes = 0;
	in->attr_dirty = 0;
	in->acl_drop = false;
	in->wb_from = from;
	in->wb_busy = true;
	qfs_fs_ipin(fs, in);
	*out = w;
	return 0;
}

void qfs_fs_wb_run(struct qfs_fs *fs, struct qfs_fs_inode *in, struct qfs_fs_wb *w)
{
	int rc, res = 0;

	rc = qfs_fs_item_txn(fs, in->table, &w->t, &res);
	if (rc == 0)
		rc = res;
	__atomic_add_fetch(&fs->wb_behind, 1, __ATOMIC_RELAXED);
	pthread_mutex_lock(&in->mu); /* not qfs_fs_ilock: this is what it waits for */
	if (rc == 0) {
		uint64_t cap = (w->size + 511) / 512, est = in->attr.blocks + w->bytes / 512;

		wb_stored(fs, in, w);
		chunks_free(w->chunks);
		__atomic_sub_fetch(&dirty_total, w->bytes, __ATOMIC_RELAXED);
		if (!in->chunks && !in->attr_dirty && !in->acl_drop) {
			in->loaded = false; /* the store is the truth, as after any write-back */
		} else {
			/* writes buffered meanwhile keep the attributes in memory:
			 * the stored blocks are at most those written back */
			in->attr.blocks = est < cap ? est : cap;
		}
	} else {
		struct qfs_dchunk **pp = &in->chunks;

		QFS_LOG(QFS_LOG_ERR, "write-back behind a write failed ino=%llu table=%llu size=%llu err=\"%s\""
			" effect=\"kept buffered, reported by the next fsync or close\"",
			(unsigned long long)in->ino, (unsigned long long)in->table, (unsigned long long)w->size,
			qfs_strerror(rc));
		__atomic_add_fetch(&fs->wb_behind_failed, 1, __ATOMIC_RELAXED);
		while (*pp)
			pp = &(*pp)->next;
		*pp = w->chunks; /* disjoint: writes meanwhile went past wb_from */
		in->dirty_bytes += w->bytes;
		in->attr_dirty |= w->attr_dirty;
		in->acl_drop |= w->acl_drop;
		in->wb_err = rc;
	}
	w->chunks = NULL;
	in->wb_busy = false;
	pthread_cond_broadcast(&in->wb_cv);
	pthread_mutex_unlock(&in->mu);
	wb_close(w);
	free(w);
	qfs_fs_iput(fs, in);
}

void qfs_fs_discard(struct qfs_fs *fs, struct qfs_fs_inode *in)
{
	if (!in->loaded)
		return;
	if (in->chunks || in->attr_dirty || in->pend)
		QFS_LOG(QFS_LOG_ERR, "buffered writes discarded after a failed write-back ino=%llu bytes=%llu err=\"%s\"",
			(unsigned long long)in->ino, (unsigned long long)in->dirty_bytes, qfs_strerror(in->wb_err));
	qfs_fs_drop_buffers(in);
	in->attr_dirty = 0;
	in->acl_drop = false;
	in->loaded = false;
	in->wb_err = 0;
	if (in->pend) {
		QFS_LOG(QFS_LOG_ERR, "created file given up, never stored ino=%llu parent=%llu name=%.64s",
			(unsigned long long)in->ino, (unsigned long long)in->pend->parent, in->pend->name);
		qfs_fs_pend_remove(fs, in);
	}
	/* the kernel may hold pages that were never stored */
	if (fs->se)
		fuse_lowlevel_notify_inval_inode(fs->se, in->ino, 0, 0);
}

int qfs_fs_destroy_inode(struct qfs_fs *fs, qfs_table_t table, qfs_ino_t ino)
{
	struct qfs_router_range chunks = qfs_router_range_chunks(ino, 0, UINT64_MAX);
	char oname[32];
	struct qfs_router_itxn t;
	int rc = -ENOMEM, res = 0;

	snprintf(oname, sizeof(oname), "%016llx", (unsigned long long)ino);
	qfs_router_itxn_init(&t);
	if (!qfs_fs_add_op(&t, QFS_OP_DEL, IKEY(ino)))
		goto out;
	if (!qfs_router_itxn_add_range(&t, QFS_OP_DEL_RANGE, &chunks))
		goto out;
	if (!qfs_fs_add_op(&t, QFS_OP_DEL, DKEY(QFS_FS_ORPHAN_DIR, oname)))
		goto out;
	rc = qfs_fs_item_txn(fs, table, &t, &res);
	if (rc == 0)
		rc = res;
out:
	qfs_router_itxn_close(&t);
	return rc;
}

uint64_t qfs_fs_blocks(struct qfs_fs_inode *in)
{
	uint64_t cap, est;

	if (!in->loaded || (!in->chunks && !(in->attr_dirty & QFS_SET_SIZE)))
		return in->attr.blocks;
	in->blocks_est = true;
	cap = in->attr.size / 512 + (in->attr.size % 512 != 0);
	est = in->attr.blocks + in->dirty_bytes / 512;
	return est < cap ? est : cap;
}

/* Forget a change that was only in memory (its write-back failed): the
 * stored state is the truth again.  Only for state this file created
 * itself right before, with nothing else buffered. */
static void forget_change(struct qfs_fs_inode *in)
{
	qfs_fs_drop_buffers(in);
	in->attr_dirty = 0;
	in->loaded = false;
	in->wb_err = 0;
}

/* Punch [off, end) of a clean file (in->mu held, nothing buffered). */
static int punch_clean(struct qfs_fs *fs, struct qfs_fs_inode *in, uint64_t off, uint64_t end)
{
	struct qfs_router_key ikey = IKEY(in->ino);
	uint8_t *edge[2] = { NULL, NULL };
	struct qfs_inode inode;
	struct qfs_router_itxn t;
	struct qfs_op *op;
	struct qfs_ts now;
	uint64_t size;
	int rc;

	qfs_inode_init(&inode);
	qfs_router_itxn_init(&t);
	rc = qfs_router_get_inode(fs->r, in->table, in->ino, &inode);
	if (rc)
		goto out;
	size = inode.a.size;
	if (off >= size)
		goto times; /* no byte below the size: the times all the same (ext4) */
	if (end > size)
		end = size;
	rc = -ENOMEM;
	if (inode.a.flags & QFS_ATTR_INLINE) {
		if (off < inode.data_len) {
			size_t zend = end < inode.data_len ? (size_t)end : inode.data_len;
			memset(inode.data + off, 0, zend - (size_t)off);
			if (!(op = qfs_fs_add_op(&t, QFS_OP_SETDATA, ikey)))
				goto out;
			op->val = inode.data;
			op->val_len = (uint32_t)trim_zeros(inode.data, inode.data_len);
		}
	} else {
		/* chunks wholly inside the hole (the last one is whole when the
		 * hole reaches the end of the file) */
		uint64_t first = (off + QFS_CHUNK_SIZE - 1) / QFS_CHUNK_SIZE;
		uint64_t last = end == size ? (end + QFS_CHUNK_SIZE - 1) / QFS_CHUNK_SIZE : end / QFS_CHUNK_SIZE;
		uint64_t part[2] = { off / QFS_CHUNK_SIZE, (end - 1) / QFS_CHUNK_SIZE };
		if (first < last) {
			struct qfs_router_range hole = qfs_router_range_chunks(in->ino, first, last);
			if (!(op = qfs_router_itxn_add_range(&t, QFS_OP_DEL_RANGE, &hole)))
				goto out;
		}
		/* the partial chunks at either edge: read, zero, store trimmed */
		for (int i = 0; i < 2; i++) {
			uint64_t no = part[i], cstart = no * QFS_CHUNK_SIZE;
			if ((no >= first && no < last) || (i == 1 && part[1] == part[0]))
				continue;
			size_t clen = size - cstart < QFS_CHUNK_SIZE ? (size_t)(size - cstart) : QFS_CHUNK_SIZE;
			uint64_t zs = off > cstart ? off : cstart, ze = end < cstart + clen ? end : cstart + clen;
			if (!(edge[i] = malloc(QFS_CHUNK_SIZE)))
				goto out;
			rc = read_stored_chunk(fs, in, size, inode.a.flags, no, edge[i]);
			if (rc)
				goto out;
			rc = -ENOMEM;
			if (trim_zeros(edge[i], clen) == 0)
				continue; /* a hole already */
			memset(edge[i] + (zs - cstart), 0, (size_t)(ze - zs));
			size_t vlen = trim_zeros(edge[i], clen);
			if (!(op = qfs_fs_add_op(&t, vlen ? QFS_OP_PUT : QFS_OP_DEL, CKEY(in->ino, no))))
				goto out;
			op->val = edge[i];
			op->val_len = (uint32_t)vlen;
		}
	}
times:
	rc = -ENOMEM;
	qfs_clock_now(&now);
	if (!(op = qfs_fs_add_op(&t, QFS_OP_SETATTR, ikey)))
		goto out;
	op->mask = QFS_SET_MTIME | QFS_SET_CTIME;
	op->attr.mtime = now;
	op->attr.ctime = now;
	rc = qfs_fs_run_txn(fs, in->table, &t);
out:
	if (rc)
		QFS_LOG(QFS_LOG_ERR, "punch hole failed ino=%llu table=%llu off=%llu end=%llu err=\"%s\"",
			(unsigned long long)in->ino, (unsigned long long)in->table, (unsigned long long)off,
			(unsigned long long)end, qfs_strerror(rc));
	qfs_router_itxn_close(&t);
	qfs_inode_close(&inode);
	free(edge[0]);
	free(edge[1]);
	return rc;
}

int qfs_fs_data_fallocate(struct qfs_fs *fs, struct qfs_fs_inode *in, int punch, int keep_size, uint64_t off,
			  uint64_t len)
{
	uint64_t end = off + len;
	int rc;

	/* buffered writes first, in their own txn, so that a failure below
	 * leaves nothing of this call behind */
	rc = qfs_fs_flush_locked(fs, in);
	if (rc)
		return rc;
	if (punch)
		return punch_clean(fs, in, off, end);
	rc = qfs_fs_load(fs, in);
	if (rc)
		return rc;
	if (!keep_size && end > in->attr.size) {
		rc = qfs_fs_data_truncate(fs, in, end); /* size, mtime, ctime */
		if (rc) {
			forget_change(in);
			return rc;
		}
	} else {
		/* no size change: mtime and ctime all the same, as ext4 (Linux
		 * 6.18) for every fallocate that succeeds; one write-back */
		qfs_clock_now(&in->attr.mtime);
		in->attr.ctime = in->attr.mtime;
		in->attr_dirty |= QFS_SET_MTIME | QFS_SET_CTIME;
	}
	rc = qfs_fs_flush_locked(fs, in);
	if (rc)
		forget_change(in);
	return rc;
}

int qfs_fs_data_zero_range(struct qfs_fs *fs, struct qfs_fs_inode *in, int keep_size, uint64_t off, uint64_t len)
{
	uint64_t end = off + len;
	int rc;

	rc = qfs_fs_flush_locked(fs, in); /* as fallocate: buffered writes first */
	if (rc)
		return rc;
	rc = qfs_fs_load(fs, in);
	if (rc)
		return rc;
	if (keep_size || end <= in->attr.size) {
		/* nothing changes size: the range below it reads as zeros, as
		 * after a punch, which rereads the inode itself (and moves mtime
		 * and ctime also for a range wholly past the end) */
		in->loaded = false;
		return punch_clean(fs, in, off, end);
	}
	/* past the end, [off, end) all zeros: cut at off, grow to end, one txn */
	if (off < in->attr.size && (rc = qfs_fs_data_truncate(fs, in, off)) != 0) {
		forget_change(in);
		return rc;
	}
	rc = qfs_fs_data_truncate(fs, in, end);
	if (rc == 0)
		rc = qfs_fs_flush_locked(fs, in);
	if (rc)
		forget_change(in);
	return rc;
}
