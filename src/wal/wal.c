/*
 * wal.c - segmented write-ahead log: appends, group commit, reads, seal and
 * truncation (contract in wal.h, on-disk format in doc/format-wal.md,
 * internals in wal_int.h, recovery at open in recover.c).
 *
 * Group commit: qfs_wal_append() only encodes the record (header + CRC32C +
 * memcpy) into one pending buffer; qfs_wal_sync() issues one pwrite and one
 * fdatasync per segment touched (normally one), plus an fsync of the
 * directory when a segment file was created.  A segment is sealed when it
 * reaches opts->segment_bytes (the next append rolls to a new file) or by
 * qfs_wal_seal(); only the last file of the directory ever grows.
 *
 * Ordering rules that keep the directory recoverable after a crash:
 *  - a new segment file is created only after the previous segment's data
 *    was written and fdatasync'd, so only the last file can be torn;
 *  - files are deleted one at a time with an fsync of the directory after
 *    each (newest first in truncate_after, oldest first in truncate_before),
 *    so a crash never leaves a hole in the LSN sequence.
 *
 * Every open, write, fsync, rename, unlink and truncate goes through the
 * system-I/O table (common/sysio.h, doc/sysio.md), where tests inject faults.
 *
 * Not thread-safe: the owner serialises every call (wal.h).
 */
#include "config.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/bigbuf.h"
#include "common/crc32c.h"
#include "common/log.h"
#include "common/sysio.h"
#include "wal/wal_int.h"

#define RD_WINDOW (256u << 10)   /* bytes read ahead when scanning a segment */
#define PEND_KEEP (1u << 20)     /* pending buffer kept across syncs up to this (one per
				  * group and node); larger ones come from and go back
				  * to the pool of common/bigbuf.h */
#define UNCACHE_ALIGN (2u << 20) /* qfs_wal_uncache's unit: the largest folio */
#define KEPT_SMALL (256u << 10)  /* a pending buffer up to this is kept after its sync
				  * too (then reused: w->spare); between it and
				  * PEND_KEEP it is reused at once, not kept */

/* Zeros for the zeros ahead of the tail, written one page at a time (see
 * zeros_ahead). */
#define ZERO_PAGE_BYTES 4096u
static const uint8_t zero_block[ZERO_PAGE_BYTES];

/* ---- helpers shared with recover.c (contracts in wal_int.h) ---- */

void qfs_wal_seg_header(uint8_t *p, qfs_lsn_t first)
{
	qfs_wal_put32(p, QFS_WAL_SEG_MAGIC);
	qfs_wal_put32(p + 4, QFS_WAL_FORMAT_VERSION);
	qfs_wal_put64(p + 8, first);
	qfs_wal_put32(p + 16, 0); /* flags */
	qfs_wal_put32(p + 20, qfs_crc32c(0, p, 20));
}

void qfs_wal_rec_header(uint8_t *hdr, qfs_lsn_t lsn, const void *p, size_t len)
{
	qfs_wal_put32(hdr + 4, (uint32_t)len);
	qfs_wal_put64(hdr + 8, lsn);
	qfs_wal_put32(hdr, qfs_crc32c(qfs_crc32c(0, hdr + 4, 12), p, len));
}

int qfs_wal_rec_ok(const uint8_t *rec, size_t len)
{
	return qfs_crc32c(0, rec + 4, 12 + len) == qfs_wal_get32(rec);
}

void qfs_wal_seg_name(char *name, qfs_lsn_t first)
{
	snprintf(name, QFS_WAL_NAME_LEN + 1, "%016llx.wal", (unsigned long long)first);
}

ssize_t qfs_wal_pread_upto(int fd, uint8_t *buf, size_t len, uint64_t off)
{
	size_t got = 0;

	while (got < len) {
		ssize_t k = pread(fd, buf + got, len - got, (off_t)(off + got));

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (k == 0)
			break;
		got += (size_t)k;
	}
	return (ssize_t)got;
}

static void rbuf_free(uint8_t *p, size_t cap)
{
	if (cap > RD_WINDOW)
		qfs_bigbuf_put(p, cap);
	else
		free(p);
}

/* See wal_int.h. */
void qfs_wal_rbuf_release(struct qfs_wal *w)
{
	if (w->rcap > RD_WINDOW) {
		qfs_bigbuf_put(w->rbuf, w->rcap);
		w->rbuf = NULL;
		w->rcap = 0;
	}
}

int qfs_wal_rd_get(struct qfs_wal_rd *r, uint64_t off, size_t n, const uint8_t **p)
{
	size_t want = n > RD_WINDOW ? n : RD_WINDOW, got;
	ssize_t k;

	if (off >= r->off && off + n <= r->off + r->len) {
		*p = *r->buf + (off - r->off);
		return 0;
	}
	if (r->end > off && r->end - off >= n && want > r->end - off)
		want = (size_t)(r->end - off);
	if (*r->cap < want) {
		/* A window for a large record comes from the pool of large
		 * buffers; qfs_wal_rbuf_release gives it back after the read. */
		size_t ncap;
		uint8_t *nb = qfs_bigbuf_get(want, &ncap);

		if (!nb)
			return -ENOMEM;
		r->len = 0;
		rbuf_free(*r->buf, *r->cap);
		*r->buf = nb;
		*r->cap = ncap;
	}
	r->len = 0;
	k = qfs_wal_pread_upto(r->fd, *r->buf, want, off);
	if (k < 0)
		return (int)k;
	got = (size_t)k;
	r->off = off;
	r->len = got;
	if (got < n)
		return 1;
	*p = *r->buf;
	return 0;
}

int qfs_wal_seg_reserve(struct qfs_wal *w)
{
	if (w->nseg == w->segcap) {
		size_t ncap = w->segcap ? w->segcap * 2 : 8;
		struct qfs_wal_seg *ns = realloc(w->segs, ncap * sizeof(*ns));

		if (!ns)
			return -ENOMEM;
		w->segs = ns;
		w->segcap = ncap;
	}
	return 0;
}

int qfs_wal_seg_push(struct qfs_wal *w, const struct qfs_wal_seg *s)
{
	int rc = qfs_wal_seg_reserve(w);

	if (rc < 0)
		return rc;
	w->segs[w->nseg++] = *s;
	return 0;
}

/* ---- file-static helpers ---- */

static struct qfs_wal_seg *tail(struct qfs_wal *w)
{
	return w->nseg ? &w->segs[w->nseg - 1] : NULL;
}

static int has_records(const struct qfs_wal_seg *s)
{
	return s->last >= s->first;
}

/* The tail's fd, opened read-write on demand. */
static int tail_fd(struct qfs_wal *w, struct qfs_wal_seg *s)
{
	char name[QFS_WAL_NAME_LEN + 1];

	if (s->fd >= 0)
		return s->fd;
	qfs_wal_seg_name(name, s->first);
	s->fd = qfs_sys_openat(w->dfd, name, O_RDWR | O_CLOEXEC, 0);
	return s->fd < 0 ? -errno : s->fd;
}

/* Close the fds of every segment but the tail. */
static void close_sealed(struct qfs_wal *w)
{
	for (size_t i = 0; i + 1 < w->nseg; i++) {
		if (w->segs[i].fd >= 0) {
			close(w->segs[i].fd);
			w->segs[i].fd = -1;
		}
	}
}

/* Free the pending buffer: a large one goes back to the pool. */
static void pend_release(struct qfs_wal *w)
{
	if (w->pend_cap > PEND_KEEP)
		qfs_bigbuf_put(w->pend, w->pend_cap);
	else
		free(w->pend);
	w->pend = NULL;
	w->pend_cap = 0;
}

/* Give the records kept from the last large sync back to the pool of
 * common/bigbuf.h (see wal_int.h).  While kept, the buffer counts
 * against the pool's byte bound (qfs_bigbuf_lend): without that, the
 * replicas' kept buffers came on top of the pool's held ones and raised
 * the daemon's peak RSS by about 30 MiB (doc/perf.md AFTER 17). */
static void kept_release(struct qfs_wal *w)
{
	if (w->kept && w->kept_cap > PEND_KEEP) {
		qfs_bigbuf_unlend(w->kept_cap);
		qfs_bigbuf_put(w->kept, w->kept_cap);
	} else if (w->kept && !w->spare) {
		w->spare = w->kept; /* the next pending buffer (kept_take) */
		w->spare_cap = w->kept_cap;
	} else {
		free(w->kept);
	}
	w->kept = NULL;
	w->kept_cap = 0;
	w->kept_first = w->kept_last = 0;
}

/* After a successful sync of segment s alone (its pending bytes not yet
 * counted in s->size), when a small kept buffer holds the records of the
 * sync before, in s, just before these: keep the records of both syncs,
 * the older one's moved to the front of that buffer and this one's copied
 * after them (the pending buffer is then reused as usual).  A follower
 * applies entry k after the sync of k + 1 (drive.h apply_after_sync): k
 * is then read from here, not from the file.  Returns 1 if merged, 0 if
 * not (nothing changed, except after a failed realloc: the held records
 * are then released, so reads go to the file). */
static int kept_merge(struct qfs_wal *w, const struct qfs_wal_seg *s)
{
	size_t keep, need;

	if (!w->kept || w->kept_cap > KEPT_SMALL || w->pend_cap > KEPT_SMALL || w->kept_seg != s->first ||
	    s->size == 0 || w->kept_end != s->size || s->last <= s->durable_last)
		return 0;
	keep = (size_t)(w->kept_end - w->kept_lfoff); /* the last kept sync's records */
	need = keep + s->pend_len;
	if (need > KEPT_SMALL)
		return 0;
	memmove(w->kept, w->kept + w->kept_off + (size_t)(w->kept_lfoff - w->kept_foff), keep);
	if (need > w->kept_cap) {
		uint8_t *nb = realloc(w->kept, need);

		if (!nb) {
			kept_release(w);
			return 0;
		}
		w->kept = nb;
		w->kept_cap = need;
	}
	memcpy(w->kept + keep, w->pend + s->pend_off, s->pend_len);
	w->kept_off = 0;
	w->kept_first = w->kept_lfirst;
	w->kept_foff = w->kept_lfoff;
	w->kept_lfirst = s->durable_last + 1;
	w->kept_lfoff = s->size;
	w->kept_last = s->last;
	w->kept_end = s->size + s->pend_len;
	return 1;
}

/* After a successful sync of segment s alone (its pending bytes not yet
 * counted in s->size): keep the pending buffer, with the records it just
 * made durable, for qfs_wal_read_recent instead of handing it back to the
 * pool (large) or reusing it (small, up to KEPT_SMALL: the next pending
 * buffer is then the spare one, or a new one).  Returns 1 if kept (w->pend
 * is then empty). */
static int kept_take(struct qfs_wal *w, const struct qfs_wal_seg *s)
{
	size_t hdr = s->size == 0 ? QFS_WAL_SEG_HDR : 0;

	if ((w->pend_cap > KEPT_SMALL && w->pend_cap <= PEND_KEEP) || s->last <= s->durable_last ||
	    s->pend_len <= hdr)
		return 0;
	kept_release(w);
	if (w->pend_cap > PEND_KEEP)
		qfs_bigbuf_lend(w->pend_cap);
	w->kept = w->pend;
	w->kept_cap = w->pend_cap;
	w->kept_off = s->pend_off + hdr;
	w->kept_first = s->durable_last + 1;
	w->kept_last = s->last;
	w->kept_seg = s->first;
	w->kept_end = s->size + s->pend_len;
	w->kept_foff = s->size + hdr;
	w->kept_lfirst = w->kept_first;
	w->kept_lfoff = w->kept_foff;
	w->pend = w->spare; /* NULL or a small buffer: pend_reserve grows it */
	w->pend_cap = w->spare_cap;
	w->pend_len = 0;
	w->spare = NULL;
	w->spare_cap = 0;
	return 1;
}

static int set_sticky(struct qfs_wal *w, qfs_lsn_t first, const char *what, int err)
{
	QFS_LOG(QFS_LOG_ERR, "wal %s failed, log refuses writes from now on dir=%s seg=%016llx err=\"%s\"", what,
		w->dir, (unsigned long long)first, qfs_strerror(err));
	w->err = -EIO;
	return -EIO;
}

/* Make room for more bytes in the pending buffer.  Up to PEND_KEEP it
 * grows by realloc; past it the buffer comes from the pool of large
 * buffers (common/bigbuf.h), already faulted in when a previous sync gave
 * one back, and the pending bytes are copied over. */
static int pend_reserve(struct qfs_wal *w, size_t more)
{
	size_t need = w->pend_len + more, ncap;
	uint8_t *np;

	if (need <= w->pend_cap)
		return 0;
	ncap = w->pend_cap ? w->pend_cap : 64u << 10;
	while (ncap < need)
		ncap *= 2;
	if (ncap <= PEND_KEEP) {
		np = realloc(w->pend, ncap);
		if (!np)
			return -ENOMEM;
	} else {
		np = qfs_bigbuf_get(need > 2 * w->pend_cap ? need : 2 * w->pend_cap, &ncap);
		if (!np)
			return -ENOMEM;
		if (w->pend_len)
			memcpy(np, w->pend, w->pend_len);
		pend_release(w);
	}
	w->pend = np;
	w->pend_cap = ncap;
	return 0;
}

static void pend_reset(struct qfs_wal *w)
{
	w->pend_len = 0;
	if (w->pend_cap > PEND_KEEP)
		pend_release(w);
}

static void hint_clear(struct qfs_wal *w)
{
	w->hint_first = w->hint_lsn = 0;
	w->hint_off = 0;
}

/* Index of the segment holding lsn (the last one whose first <= lsn; 0 if
 * lsn precedes them all).  w->nseg > 0. */
static size_t seg_find(const struct qfs_wal *w, qfs_lsn_t lsn)
{
	size_t lo = 0, hi = w->nseg;

	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (w->segs[mid].first <= lsn)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* ---- open / close ---- */

static void wal_free(struct qfs_wal *w)
{
	for (size_t i = 0; i < w->nseg; i++)
		if (w->segs[i].fd >= 0)
			close(w->segs[i].fd);
	if (w->dfd >= 0)
		close(w->dfd);
	free(w->segs);
	pend_release(w);
	kept_release(w);
	free(w->spare);
	rbuf_free(w->rbuf, w->rcap);
	free(w->dir);
	free(w);
}

/*
 * Open the log in dir (created, with its parent fsync'd, if absent) and
 * recover it: see wal.h and recover.c.  opts may be NULL.  *out is set only
 * on success; the caller owns the log and frees it with qfs_wal_close().
 * Errors: -errno from the filesystem, -ENOMEM, QFS_ECORRUPT, QFS_EFORMAT.
 * On error nothing is allocated; a torn tail may already have been trimmed.
 */
int qfs_wal_open(const char *dir, const struct qfs_wal_opts *opts, struct qfs_wal **out)
{
	struct qfs_wal *w;
	int rc;

	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->dfd = -1;
	w->segment_bytes = opts && opts->segment_bytes ? opts->segment_bytes : QFS_WAL_SEGMENT_DEFAULT;
	w->zero_ahead = opts ? opts->zero_ahead : 0;
	w->dir = strdup(dir);
	if (!w->dir) {
		rc = -ENOMEM;
		goto err_free;
	}
	rc = qfs_sysio_mkdir(dir, 0755);
	if (rc < 0 && rc != -EEXIST)
		goto err_free;
	w->dfd = qfs_sys_open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (w->dfd < 0) {
		rc = -errno;
		goto err_free;
	}
	rc = qfs_wal_recover(w);
	qfs_wal_rbuf_release(w);
	if (rc < 0)
		goto err_free;
	QFS_LOG(QFS_LOG_DEBUG, "wal open dir=%s segments=%zu first=%llu last=%llu", w->dir, w->nseg,
		(unsigned long long)qfs_wal_first(w), (unsigned long long)w->last);
	*out = w;
	return 0;

err_free:
	QFS_LOG(QFS_LOG_WARN, "wal open failed dir=%s err=\"%s\"", dir, qfs_strerror(rc));
	wal_free(w);
	return rc;
}

/* Close the log and free it; buffered (unsynced) records are discarded.
 * qfs_wal_close(NULL) does nothing. */
void qfs_wal_close(struct qfs_wal *w)
{
	struct qfs_wal_seg *t;

	if (!w)
		return;
	/* A clean close leaves no zeros ahead: the tail ends at its last
	 * durable record, as a log without them does (an older release then
	 * opens it without a torn tail to trim; doc/format-wal.md).  Best
	 * effort: recovery trims what a failure here leaves. */
	t = w->nseg ? tail(w) : NULL;
	if (t && !w->err && t->fd >= 0 && t->alloc > t->size) {
		int rc = qfs_sys_ftruncate(t->fd, (off_t)t->size) < 0 ? -errno : qfs_sysio_fdatasync(t->fd);

		if (rc < 0)
			QFS_LOG(QFS_LOG_DEBUG, "wal zeros ahead not cut at close dir=%s err=\"%s\"", w->dir,
				qfs_strerror(rc));
	}
	wal_free(w);
}

/* ---- append / sync ---- */

/*
 * Append one record whose payload is a || b (see wal.h): copied into the
 * pending buffer, its header (CRC32C over the copy) written in front,
 * starting a new segment when the tail reached the seal size.  No I/O.
 * Errors: -EIO (sticky), -EINVAL (lsn != last+1, lsn 0, len too large),
 * -ENOMEM; on error the log is unchanged.
 */
int qfs_wal_append2(struct qfs_wal *w, qfs_lsn_t lsn, const void *a, size_t alen, const void *b,
		    size_t blen)
{
	struct qfs_wal_seg *t = tail(w);
	size_t len = alen + blen;
	uint8_t *rec;
	int roll, rc;

	if (w->err)
		return w->err;
	if (lsn == 0 || alen > QFS_WAL_RECORD_MAX || blen > QFS_WAL_RECORD_MAX ||
	    len > QFS_WAL_RECORD_MAX || (w->last && lsn != w->last + 1))
		return -EINVAL;
	assert(w->last || !t); /* an empty log holds no segment */
	roll = !t || (has_records(t) && t->size + t->pend_len >= w->segment_bytes);
	rc = pend_reserve(w, QFS_WAL_REC_HDR + len + (roll ? QFS_WAL_SEG_HDR : 0));
	if (rc < 0)
		return rc;
	if (roll) {
		struct qfs_wal_seg s = {
			.first = lsn, .last = lsn - 1, .durable_last = lsn - 1,
			.pend_off = w->pend_len, .fd = -1,
		};

		rc = qfs_wal_seg_push(w, &s);
		if (rc < 0)
			return rc;
		t = tail(w);
		qfs_wal_seg_header(w->pend + w->pend_len, lsn);
		w->pend_len += QFS_WAL_SEG_HDR;
		t->pend_len = QFS_WAL_SEG_HDR;
	} else if (t->pend_len == 0) {
		t->pend_off = w->pend_len;
	}
	rec = w->pend + w->pend_len;
	if (alen)
		memcpy(rec + QFS_WAL_REC_HDR, a, alen);
	if (blen)
		memcpy(rec + QFS_WAL_REC_HDR + alen, b, blen);
	qfs_wal_rec_header(rec, lsn, rec + QFS_WAL_REC_HDR, len);
	w->pend_len += QFS_WAL_REC_HDR + len;
	t->pend_len += QFS_WAL_REC_HDR + len;
	t->last = lsn;
	w->last = lsn;
	return 0;
}

/* Append one record (see wal.h and qfs_wal_append2). */
int qfs_wal_append(struct qfs_wal *w, qfs_lsn_t lsn, const void *p, size_t len)
{
	return qfs_wal_append2(w, lsn, p, len, NULL, 0);
}

/* Zeros ahead (doc/format-wal.md "Zeroed ahead"): the records of a small
 * sync ended at end, past the zeros s's file held: write zeros after them up
 * to end + zero_ahead (never past segment_bytes, so a segment that rolls
 * over by size has none left), for the fdatasync that follows to make
 * durable with the records.  The syncs after it write into those zeros: an
 * fdatasync of blocks already in the file, with no size to commit, costs
 * about half of one that extends the file on ext4.  A failed write of
 * zeros (ENOSPC on a full disk) only leaves fewer of them: the records are
 * written, and zeros past the last record read as a torn tail. */
static void zeros_ahead(struct qfs_wal *w, struct qfs_wal_seg *s, uint64_t end)
{
	uint64_t to = end + w->zero_ahead;

	if (to > w->segment_bytes)
		to = w->segment_bytes;
	/* (alloc bounds the file's size from above even when a write of zeros
	 * fails part-way: a seal must know to cut them.)  One pwrite per page,
	 * up to the next page boundary first: a large write would have the
	 * page cache hold these pages in large folios, and each small sync
	 * into one would dirty the whole folio in the kernel's accounting
	 * (/proc/PID/io write_bytes 63 bytes per byte of 4 KiB syncs, AFTER
	 * 39; the disk wrote only the dirty blocks).  64 pwrites per 256 KiB,
	 * once every 30-60 small syncs. */
	for (uint64_t off = end; off < to;) {
		size_t n = ZERO_PAGE_BYTES - (size_t)(off % ZERO_PAGE_BYTES);
		int rc;

		if (n > to - off)
			n = (size_t)(to - off);

		s->alloc = off + n;
		rc = qfs_sysio_pwrite_all(s->fd, zero_block, n, (off_t)off);
		if (rc < 0) {
			QFS_LOG(QFS_LOG_DEBUG, "wal zeros ahead not written dir=%s off=%llu err=\"%s\"", w->dir,
				(unsigned long long)off, qfs_strerror(rc));
			return;
		}
		off += n;
	}
}

/* Write and fdatasync one segment's pending bytes (s->size is left for the
 * caller to advance once the whole sync succeeded), with zeros ahead after
 * a small sync when the log has them.  Returns 0, -errno of the open or
 * write (not sticky), or -EIO after setting the sticky error. */
static int seg_flush(struct qfs_wal *w, struct qfs_wal_seg *s, int *dirchange)
{
	uint64_t end = s->size + s->pend_len;
	int rc;

	if (s->fd < 0) {
		char name[QFS_WAL_NAME_LEN + 1];

		qfs_wal_seg_name(name, s->first);
		s->fd = qfs_sys_openat(w->dfd, name, O_RDWR | O_CLOEXEC | (s->exists ? 0 : O_CREAT | O_TRUNC), 0644);
		if (s->fd < 0)
			return -errno;
		if (!s->exists) {
			s->exists = 1;
			*dirchange = 1;
		}
	}
	/* A sync larger than QFS_WAL_INPLACE_MAX is not written over zeros:
	 * they are cut first and it appends, so that a crash leaves a prefix of
	 * it (recovery's rule for an unwritten sector looks no further than
	 * QFS_WAL_INPLACE_MAX past a bad record; doc/format-wal.md). */
	if (s->alloc > s->size && s->pend_len > QFS_WAL_INPLACE_MAX) {
		if (qfs_sys_ftruncate(s->fd, (off_t)s->size) < 0)
			return -errno;
		s->alloc = s->size;
	}
	rc = qfs_sysio_pwrite_all(s->fd, w->pend + s->pend_off, s->pend_len, (off_t)s->size);
	if (rc < 0)
		return rc;
	/* (a segment followed by another one in the log never holds zeros:
	 * it rolled over past segment_bytes, which no zeros pass) */
	assert(s == tail(w) || s->alloc <= end);
	if (w->zero_ahead && s == tail(w) && end > s->alloc && s->pend_len <= QFS_WAL_INPLACE_MAX)
		zeros_ahead(w, s, end);
	rc = qfs_sysio_fdatasync(s->fd);
	if (rc < 0)
		return set_sticky(w, s->first, "fdatasync", rc);
	return 0;
}

/*
 * A write failed during a sync whose first segment is index from: drop every
 * record appended since the last successful sync, even those already written
 * and fdatasync'd by this sync (a sync is all or nothing).  Segments that
 * were never durable are removed (their file unlinked), the first one is cut
 * back to its durable length.  Returns err, or -EIO if cutting back failed
 * (then sticky: stale bytes might survive past the durable end).
 */
static int drop_pending(struct qfs_wal *w, size_t from, int err, int *dirchange)
{
	QFS_LOG(QFS_LOG_WARN, "wal write failed, unsynced records dropped dir=%s lsn=%llu-%llu err=\"%s\"", w->dir,
		(unsigned long long)w->durable + 1, (unsigned long long)w->last, qfs_strerror(err));
	hint_clear(w);
	while (w->nseg > from) {
		struct qfs_wal_seg *s = tail(w);

		if (s->size == 0) {
			if (s->fd >= 0)
				close(s->fd);
			if (s->exists) {
				char name[QFS_WAL_NAME_LEN + 1];

				qfs_wal_seg_name(name, s->first);
				/* A stale file past the tail would break the
				 * next recovery: refuse to go on without it. */
				if (qfs_sys_unlinkat(w->dfd, name, 0) < 0)
					set_sticky(w, s->first, "unlink after a failed write", -errno);
				*dirchange = 1;
			}
			w->nseg--;
			continue;
		}
		if (s->fd >= 0 && s->pend_len > 0) {
			int rc = qfs_sys_ftruncate(s->fd, (off_t)s->size) < 0 ? -errno : 0;

			if (rc == 0) {
				s->alloc = s->size;
				rc = qfs_sysio_fdatasync(s->fd);
			}
			if (rc < 0)
				set_sticky(w, s->first, "cutting back after a failed write", rc);
		}
		s->pend_len = 0;
		s->last = s->durable_last;
		break;
	}
	w->last = w->nseg ? w->durable : 0;
	pend_reset(w);
	return w->err ? w->err : err;
}

/*
 * Make every appended record durable (see wal.h): per segment with pending
 * bytes, in order, one pwrite + one fdatasync; then an fsync of the directory
 * if a file was created or removed.  All or nothing: returns 0 (every
 * appended record durable), -EIO (sticky; nothing more is accepted), or the
 * -errno of a failed open/write: then every record appended since the last
 * successful sync is dropped, on disk too, and qfs_wal_last() ==
 * qfs_wal_durable() == their value before this call.
 */
int qfs_wal_sync(struct qfs_wal *w)
{
	size_t i0 = w->nseg;
	int dirchange = 0, rc = 0;

	if (w->err)
		return w->err;
	if (w->pend_len == 0)
		return 0;
	while (i0 > 0 && w->segs[i0 - 1].pend_len > 0)
		i0--;
	for (size_t i = i0; i < w->nseg && rc == 0; i++)
		rc = seg_flush(w, &w->segs[i], &dirchange);
	if (w->err)
		return w->err;
	if (rc < 0)
		rc = drop_pending(w, i0, rc, &dirchange);
	if (dirchange && !w->err) {
		int r2 = qfs_sysio_fsync(w->dfd);

		if (r2 < 0)
			return set_sticky(w, tail(w) ? tail(w)->first : 0, "directory fsync", r2);
	}
	if (rc == 0) {
		int kept;

		/* A small sync in a pending buffer an earlier sync grew past
		 * KEPT_SMALL: the buffer shrinks to its bytes, so that they can
		 * be kept (else, after one sync of 256 KiB-1 MiB, no small sync
		 * kept its records and every follower's apply read them back). */
		if (w->pend_cap > KEPT_SMALL && w->pend_cap <= PEND_KEEP && w->pend_len <= KEPT_SMALL &&
		    w->pend_len > 0) {
			uint8_t *nb = realloc(w->pend, w->pend_len);

			if (nb) {
				w->pend = nb;
				w->pend_cap = w->pend_len;
			}
		}
		kept = i0 + 1 == w->nseg && !kept_merge(w, &w->segs[i0]) &&
			   kept_take(w, &w->segs[i0]);

		for (size_t i = i0; i < w->nseg; i++) {
			struct qfs_wal_seg *s = &w->segs[i];

			s->size += s->pend_len;
			if (s->alloc < s->size)
				s->alloc = s->size;
			s->pend_len = 0;
			s->durable_last = s->last;
		}
		w->durable = w->last;
		if (!kept)
			pend_reset(w);
	}
	close_sealed(w);
	return rc;
}

/* ---- reads ---- */

/* One walk's consumer: cb, or at with the record's place in its file. */
struct walk {
	qfs_wal_read_cb cb;
	qfs_wal_read_at_cb at;
	void *arg;
	const char *dir;
};

/* Hand record lsn (payload p, len bytes) to the walk's consumer; seg is
 * the first LSN of its segment and off the payload's file offset, or
 * UINT64_MAX when the record is not durable yet (no place to give). */
static int deliver(const struct walk *wk, qfs_lsn_t lsn, const uint8_t *p, size_t len, qfs_lsn_t seg,
		   uint64_t off)
{
	if (!wk->at)
		return wk->cb(lsn, p, len, wk->arg);
	struct qfs_wal_loc loc = { .dir = wk->dir, .seg_first = seg, .off = off };

	return wk->at(lsn, p, len, off == UINT64_MAX ? NULL : &loc, wk->arg);
}

/* See wal.h.  UNCACHE_ALIGN is x86-64's largest page-cache folio (2 MiB
 * with 4 KiB pages); a larger folio elsewhere that the range cuts stays
 * cached (advice, nothing more).  A sealed segment has no fd of the log's
 * own: one is opened for the advice, with openat(2) itself rather than
 * through common/sysio's table, since no failure of it goes anywhere (a
 * test counting the log's opens for its fault injector must not count
 * it). */
void qfs_wal_uncache(struct qfs_wal *w, const struct qfs_wal_loc *loc, size_t len)
{
	char name[QFS_WAL_NAME_LEN + 1];
	const struct qfs_wal_seg *s;
	uint64_t from, to;
	int fd;

	if (!w->nseg || !len)
		return;
	s = &w->segs[seg_find(w, loc->seg_first)];
	if (s->first != loc->seg_first || !s->exists || loc->off + len > s->size)
		return; /* gone, or not (all) durable: nothing to advise */
	/* The kernel drops only the folios wholly inside the range, and a
	 * large write is cached in large folios (up to UNCACHE_ALIGN): both
	 * ends go down to that unit.  The start takes the bytes before the
	 * record (durable, and read by nobody soon: the record before it was
	 * applied first); the end leaves the unit the record ends in to the
	 * next call, since the record after it may not be applied yet, and a
	 * follower's apply reads it back from this file. */
	from = loc->off / UNCACHE_ALIGN * UNCACHE_ALIGN;
	to = (loc->off + len) / UNCACHE_ALIGN * UNCACHE_ALIGN;
	if (s != tail(w) && s->durable_last == s->last && loc->off + len == s->size)
		to = s->size + UNCACHE_ALIGN; /* a sealed segment's last record: no next call here */
	if (to <= from)
		return;
	fd = s->fd;
	if (fd < 0) {
		qfs_wal_seg_name(name, s->first);
		fd = openat(w->dfd, name, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return;
	}
	(void)posix_fadvise(fd, (off_t)from, (off_t)(to - from), POSIX_FADV_DONTNEED);
	if (fd != s->fd)
		close(fd);
}

static int read_corrupt(struct qfs_wal *w, const struct qfs_wal_seg *s, uint64_t off, qfs_lsn_t lsn, const char *why)
{
	QFS_LOG(QFS_LOG_ERR, "wal corrupt on read dir=%s file=%016llx.wal off=%llu lsn=%llu reason=\"%s\"", w->dir,
		(unsigned long long)s->first, (unsigned long long)off, (unsigned long long)lsn, why);
	return QFS_ECORRUPT;
}

/* Deliver the durable records of s in [from, to], starting from the read
 * hint when it points into s before from; leaves the hint after the last
 * record looked at. */
static int read_disk(struct qfs_wal *w, struct qfs_wal_seg *s, qfs_lsn_t from, qfs_lsn_t to,
		     const struct walk *wk)
{
	struct qfs_wal_rd rd = { .fd = s->fd, .buf = &w->rbuf, .cap = &w->rcap, .end = s->size };
	qfs_lsn_t lsn = s->first, end_lsn = to < s->durable_last ? to : s->durable_last;
	uint64_t off = QFS_WAL_SEG_HDR;
	int own = 0, rc = 0;

	if (w->hint_first == s->first && w->hint_lsn > s->first && w->hint_lsn <= from &&
	    w->hint_lsn <= s->durable_last && w->hint_off < s->size) {
		lsn = w->hint_lsn;
		off = w->hint_off;
	}
	if (rd.fd < 0) {
		char name[QFS_WAL_NAME_LEN + 1];

		qfs_wal_seg_name(name, s->first);
		rd.fd = qfs_sys_openat(w->dfd, name, O_RDONLY | O_CLOEXEC, 0);
		if (rd.fd < 0)
			return -errno;
		own = 1;
	}
	while (lsn <= end_lsn) {
		const uint8_t *h;
		uint32_t len;

		rc = off + QFS_WAL_REC_HDR > s->size ? 1 : qfs_wal_rd_get(&rd, off, QFS_WAL_REC_HDR, &h);
		if (rc < 0)
			break;
		if (rc > 0) {
			rc = read_corrupt(w, s, off, lsn, "segment shorter than its records");
			break;
		}
		len = qfs_wal_get32(h + 4);
		if (qfs_wal_get64(h + 8) != lsn || len > QFS_WAL_RECORD_MAX ||
		    off + QFS_WAL_REC_HDR + len > s->size) {
			rc = read_corrupt(w, s, off, lsn, "bad record header");
			break;
		}
		rc = qfs_wal_rd_get(&rd, off, QFS_WAL_REC_HDR + len, &h);
		if (rc < 0)
			break;
		if (rc > 0 || !qfs_wal_rec_ok(h, len)) {
			rc = read_corrupt(w, s, off, lsn, "record CRC mismatch");
			break;
		}
		off += QFS_WAL_REC_HDR + len;
		lsn++;
		if (lsn - 1 >= from) {
			rc = deliver(wk, lsn - 1, h + QFS_WAL_REC_HDR, len, s->first, off - len);
			if (rc)
				break;
		}
	}
	/* (lsn, off) always names a record boundary that was checked. */
	w->hint_first = s->first;
	w->hint_lsn = lsn;
	w->hint_off = off;
	if (own)
		close(rd.fd);
	return rc;
}

/* Deliver the records in memory from p on (the first one lsn), those in
 * [from, to], stopping at end or after last; *lsnp: the LSN after the
 * last record walked. */
static int read_mem(const uint8_t *p, const uint8_t *end, qfs_lsn_t *lsnp, qfs_lsn_t last, qfs_lsn_t from,
		    qfs_lsn_t to, qfs_lsn_t seg, uint64_t foff, const struct walk *wk)
{
	qfs_lsn_t lsn = *lsnp;
	int rc = 0;

	for (; p < end && lsn <= last && lsn <= to; lsn++) {
		uint32_t len = qfs_wal_get32(p + 4);

		if (lsn >= from &&
		    (rc = deliver(wk, lsn, p + QFS_WAL_REC_HDR, len, seg,
				  foff == UINT64_MAX ? UINT64_MAX : foff + QFS_WAL_REC_HDR)))
			break;
		p += QFS_WAL_REC_HDR + len;
		if (foff != UINT64_MAX)
			foff += QFS_WAL_REC_HDR + len;
	}
	*lsnp = lsn;
	return rc;
}

/* Deliver the buffered records of s in [from, to] from memory. */
static int read_pend(struct qfs_wal_seg *s, const uint8_t *pend, qfs_lsn_t from, qfs_lsn_t to,
		     const struct walk *wk)
{
	const uint8_t *p = pend + s->pend_off;
	qfs_lsn_t lsn = s->durable_last + 1;

	return read_mem(s->size == 0 ? p + QFS_WAL_SEG_HDR : p, p + s->pend_len, &lsn, to, from, to, s->first,
			UINT64_MAX, wk);
}

/* Deliver the kept records (wal_int.h) in [from, to] from memory: the
 * bytes this log wrote and synced, not read back nor checked again.
 * Leaves the read hint after kept_last once it was delivered. */
static int read_kept(struct qfs_wal *w, qfs_lsn_t from, qfs_lsn_t to, const struct walk *wk)
{
	const uint8_t *p = w->kept + w->kept_off;
	qfs_lsn_t lsn = w->kept_first;
	int rc = read_mem(p, w->kept + w->kept_cap, &lsn, w->kept_last, from, to, w->kept_seg, w->kept_foff, wk);

	if (rc)
		return rc;
	if (lsn > w->kept_last) {
		w->hint_first = w->kept_seg;
		w->hint_lsn = w->kept_last + 1;
		w->hint_off = w->kept_end;
	}
	return 0;
}

/* The durable records of s in [from, to]; with recent, those kept in
 * memory (wal_int.h) from there and the others from the file. */
static int read_durable(struct qfs_wal *w, struct qfs_wal_seg *s, qfs_lsn_t from, qfs_lsn_t to, int recent,
			const struct walk *wk)
{
	int rc;

	if (!recent || !w->kept || w->kept_seg != s->first || from > w->kept_last || to < w->kept_first)
		return read_disk(w, s, from, to, wk);
	if (from < w->kept_first && (rc = read_disk(w, s, from, w->kept_first - 1, wk)))
		return rc;
	if ((rc = read_kept(w, from, to, wk)))
		return rc;
	if (to > w->kept_last && s->durable_last > w->kept_last)
		return read_disk(w, s, w->kept_last + 1, to, wk);
	return 0;
}

/* The walk of qfs_wal_read and qfs_wal_read_recent. */
static int read_range(struct qfs_wal *w, qfs_lsn_t from, qfs_lsn_t to, int recent, const struct walk *wk)
{
	if (w->last == 0 || from > to || from > w->last)
		return 0;
	if (to > w->last)
		to = w->last;
	for (size_t i = seg_find(w, from); i < w->nseg && w->segs[i].first <= to; i++) {
		struct qfs_wal_seg *s = &w->segs[i];
		int rc;

		if (!has_records(s))
			continue;
		if (s->durable_last >= from && s->durable_last >= s->first) {
			rc = read_durable(w, s, from, to, recent, wk);
			if (rc)
				return rc;
		}
		if (s->last > s->durable_last && s->last >= from && s->durable_last < to) {
			rc = read_pend(s, w->pend, from, to, wk);
			if (rc)
				return rc;
		}
	}
	return 0;
}

/*
 * Call cb for each record with from <= lsn <= to, durable or buffered, in LSN
 * order (see wal.h).  The payload pointer is valid only during the call; cb
 * must not call into the log.  Returns 0, cb's nonzero value, -errno,
 * -ENOMEM, or QFS_ECORRUPT (logged with file and offset).  A read window
 * grown for a large record goes back to the pool after the walk.
 */
int qfs_wal_read(struct qfs_wal *w, qfs_lsn_t from, qfs_lsn_t to, qfs_wal_read_cb cb, void *arg)
{
	struct walk wk = { .cb = cb, .arg = arg, .dir = w->dir };
	int rc = read_range(w, from, to, 0, &wk);

	qfs_wal_rbuf_release(w);
	return rc;
}

/* The body of qfs_wal_read_recent and qfs_wal_read_recent_at. */
static int read_recent_walk(struct qfs_wal *w, qfs_lsn_t from, qfs_lsn_t to, const struct walk *wk)
{
	int rc = read_range(w, from, to, 1, wk);

	if (w->kept && ((rc == 0 && to >= w->kept_last) || from > w->kept_last))
		kept_release(w);
	qfs_wal_rbuf_release(w);
	return rc;
}

/*
 * qfs_wal_read, but the records of the last sync still held in memory
 * (the sync's pending buffer, wal_int.h) are delivered from there: not
 * read back from the file nor CRC-checked again.  Once a walk has
 * delivered the last of them, or asked only for records past them, the
 * buffer goes back to the pool of common/bigbuf.h (large) or becomes the
 * spare pending buffer (small).  Same returns as qfs_wal_read.  For the
 * apply right after a sync; a check of the file uses qfs_wal_read.
 */
int qfs_wal_read_recent(struct qfs_wal *w, qfs_lsn_t from, qfs_lsn_t to, qfs_wal_read_cb cb, void *arg)
{
	struct walk wk = { .cb = cb, .arg = arg, .dir = w->dir };

	return read_recent_walk(w, from, to, &wk);
}

/* See wal.h: qfs_wal_read_recent with each record's place. */
int qfs_wal_read_recent_at(struct qfs_wal *w, qfs_lsn_t from, qfs_lsn_t to, qfs_wal_read_at_cb cb, void *arg)
{
	struct walk wk = { .at = cb, .arg = arg, .dir = w->dir };

	return read_recent_walk(w, from, to, &wk);
}

/* ---- truncation and sealing ---- */

/* Byte offset just after record lsn of segment s (first <= lsn <= durable_last). */
static int seg_offset_after(struct qfs_wal *w, struct qfs_wal_seg *s, qfs_lsn_t lsn, uint64_t *out)
{
	struct qfs_wal_rd rd = { .fd = s->fd, .buf = &w->rbuf, .cap = &w->rcap };
	uint64_t off = QFS_WAL_SEG_HDR;
	int rc = 0;

	assert(s->fd >= 0);
	for (qfs_lsn_t l = s->first; l <= lsn; l++) {
		const uint8_t *h;
		uint32_t len;

		rc = qfs_wal_rd_get(&rd, off, QFS_WAL_REC_HDR, &h);
		if (rc < 0)
			return rc;
		if (rc > 0 || qfs_wal_get64(h + 8) != l)
			return read_corrupt(w, s, off, l, "bad record header while truncating");
		len = qfs_wal_get32(h + 4);
		if (len > QFS_WAL_RECORD_MAX || off + QFS_WAL_REC_HDR + len > s->size)
			return read_corrupt(w, s, off, l, "bad record length while truncating");
		off += QFS_WAL_REC_HDR + len;
	}
	*out = off;
	return 0;
}

/* Drop buffered records with LSN > lsn (lsn >= w->durable); no I/O. */
static void trim_pend(struct qfs_wal *w, qfs_lsn_t lsn)
{
	struct qfs_wal_seg *t;

	while ((t = tail(w)) && t->size == 0 && t->first > lsn) {
		assert(!t->exists && t->fd < 0);
		w->pend_len = t->pend_off;
		w->nseg--;
	}
	if (!t) {
		w->last = 0;
		w->pend_len = 0;
		return;
	}
	if (t->last > lsn) {
		const uint8_t *p = w->pend + t->pend_off;

		if (t->size == 0)
			p += QFS_WAL_SEG_HDR;
		for (qfs_lsn_t l = t->durable_last + 1; l <= lsn; l++)
			p += QFS_WAL_REC_HDR + qfs_wal_get32(p + 4);
		t->pend_len = (size_t)(p - (w->pend + t->pend_off));
		w->pend_len = t->pend_off + t->pend_len;
		t->last = lsn;
	}
	w->last = lsn;
}

static int unlink_seg(struct qfs_wal *w, struct qfs_wal_seg *s)
{
	char name[QFS_WAL_NAME_LEN + 1];
	int rc;

	qfs_wal_seg_name(name, s->first);
	if (s->fd >= 0) {
		close(s->fd);
		s->fd = -1;
	}
	if (qfs_sys_unlinkat(w->dfd, name, 0) < 0)
		return -errno;
	rc = qfs_sysio_fsync(w->dfd);
	if (rc < 0)
		return set_sticky(w, s->first, "directory fsync", rc);
	return 0;
}

/*
 * Remove every record with LSN > lsn (see wal.h).  Buffered records are
 * dropped in memory; durable ones by deleting whole segments (newest first,
 * directory fsync'd after each) and cutting the segment holding lsn with
 * ftruncate + fdatasync.  If lsn precedes the log, it becomes empty.  The cut
 * segment becomes the tail again even if it had been sealed.  Errors: -EIO
 * (sticky), -errno of unlink/ftruncate (the log then still ends at a record
 * boundary: qfs_wal_last() says where), QFS_ECORRUPT.
 */
int qfs_wal_truncate_after(struct qfs_wal *w, qfs_lsn_t lsn)
{
	struct qfs_wal_seg *t;
	int rc;

	if (w->err)
		return w->err;
	if (lsn >= w->last)
		return 0;
	if (lsn >= w->durable) {
		trim_pend(w, lsn);
		return 0;
	}
	trim_pend(w, w->durable);
	hint_clear(w);
	if (w->kept && lsn < w->kept_last)
		kept_release(w);
	while ((t = tail(w)) && t->first > lsn) {
		rc = unlink_seg(w, t);
		if (rc < 0)
			return rc;
		w->nseg--;
		w->last = w->durable = w->nseg ? tail(w)->last : 0;
	}
	if (!t)
		return 0;
	if (t->last > lsn) {
		uint64_t off;
		int fd = tail_fd(w, t);

		if (fd < 0)
			return fd;
		rc = seg_offset_after(w, t, lsn, &off);
		qfs_wal_rbuf_release(w);
		if (rc < 0)
			return rc;
		if (qfs_sys_ftruncate(fd, (off_t)off) < 0)
			return -errno;
		rc = qfs_sysio_fdatasync(fd);
		if (rc < 0)
			return set_sticky(w, t->first, "fdatasync after truncation", rc);
		t->size = t->alloc = off;
		t->last = t->durable_last = lsn;
	}
	w->last = w->durable = t->last;
	return 0;
}

/*
 * Delete the oldest segments whose records all have LSN < lsn (see wal.h),
 * oldest first with a directory fsync after each.  Never deletes the tail,
 * a segment with unsynced bytes, or the last segment holding durable records
 * (so the log always remembers its last durable LSN).
 * Returns 0, -errno of unlink (that segment is kept), or -EIO (sticky) if
 * the directory fsync failed.
 */
int qfs_wal_truncate_before(struct qfs_wal *w, qfs_lsn_t lsn)
{
	while (w->nseg > 1) {
		struct qfs_wal_seg *s = &w->segs[0], *next = &w->segs[1];
		int rc;

		if (next->first > lsn || s->pend_len > 0 || next->durable_last < next->first)
			break;
		rc = unlink_seg(w, s);
		if (rc < 0 && rc != -EIO)
			return rc;
		memmove(&w->segs[0], &w->segs[1], (w->nseg - 1) * sizeof(*w->segs));
		w->nseg--;
		if (w->kept && w->kept_first < w->segs[0].first)
			kept_release(w);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/*
 * Seal the current segment (see wal.h): sync, then create the next segment
 * file (header only, fdatasync'd, directory fsync'd) so that every file but
 * the last one in the directory is sealed and immutable.  Does nothing on an
 * empty log or when the tail holds no record yet.  Errors: those of
 * qfs_wal_sync(), -errno of creating the file (nothing changed), -ENOMEM,
 * -EIO (sticky).
 */
int qfs_wal_seal(struct qfs_wal *w)
{
	char name[QFS_WAL_NAME_LEN + 1];
	uint8_t hdr[QFS_WAL_SEG_HDR];
	struct qfs_wal_seg s = { .fd = -1, .exists = 1, .size = QFS_WAL_SEG_HDR, .alloc = QFS_WAL_SEG_HDR };
	int rc;

	if (w->err)
		return w->err;
	if (w->last == 0 || !has_records(tail(w)))
		return 0;
	rc = qfs_wal_sync(w);
	if (rc < 0)
		return rc;
	rc = qfs_wal_seg_reserve(w);
	if (rc < 0)
		return rc;
	/* The tail's zeros ahead go first: a sealed segment ends at its last
	 * record (recovery calls a bad record in one corruption). */
	if (tail(w)->alloc > tail(w)->size) {
		struct qfs_wal_seg *t = tail(w);
		int fd = tail_fd(w, t);

		if (fd < 0)
			return fd;
		if (qfs_sys_ftruncate(fd, (off_t)t->size) < 0)
			return -errno;
		rc = qfs_sysio_fdatasync(fd);
		if (rc < 0)
			return set_sticky(w, t->first, "fdatasync after cutting zeros", rc);
		t->alloc = t->size;
	}
	s.first = w->last + 1;
	s.last = s.durable_last = w->last;
	qfs_wal_seg_name(name, s.first);
	qfs_wal_seg_header(hdr, s.first);
	/* The new segment appears under its final name only once its header is
	 * durable: the archiver treats every segment below the highest-named
	 * file as sealed, so a half-created next file must never be visible
	 * (a failed seal would otherwise let it upload a segment that stays
	 * open).  Recovery deletes leftover ".<name>.tmp" files. */
	char tmp[QFS_WAL_NAME_LEN + 8];
	snprintf(tmp, sizeof(tmp), ".%s.tmp", name);
	s.fd = qfs_sys_openat(w->dfd, tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (s.fd < 0)
		return -errno;
	rc = qfs_sysio_pwrite_all(s.fd, hdr, sizeof(hdr), 0);
	if (rc < 0)
		goto err_unlink;
	rc = qfs_sysio_fdatasync(s.fd);
	if (rc < 0) {
		close(s.fd);
		qfs_sys_unlinkat(w->dfd, tmp, 0);
		return set_sticky(w, s.first, "fdatasync of a new segment", rc);
	}
	if (qfs_sys_renameat(w->dfd, tmp, w->dfd, name) != 0) {
		rc = -errno;
		goto err_unlink;
	}
	rc = qfs_sysio_fsync(w->dfd);
	if (rc < 0) {
		close(s.fd);
		return set_sticky(w, s.first, "directory fsync", rc);
	}
	rc = qfs_wal_seg_push(w, &s); /* cannot fail: reserved above */
	assert(rc == 0);
	close_sealed(w);
	return 0;

err_unlink:
	close(s.fd);
	qfs_sys_unlinkat(w->dfd, tmp, 0);
	return rc;
}

/* ---- accessors ---- */

/* First LSN held, 0 when the log is empty. */
qfs_lsn_t qfs_wal_first(const struct qfs_wal *w)
{
	return w->last ? w->segs[0].first : 0;
}

/* Last LSN held, buffered records included; 0 when empty. */
qfs_lsn_t qfs_wal_last(const struct qfs_wal *w)
{
	return w->last;
}

/* Last LSN known to be fsync'd; 0 when none. */
qfs_lsn_t qfs_wal_durable(const struct qfs_wal *w)
{
	return w->last ? w->durable : 0;
}

/* Fill *out: segment files on disk, their durable bytes, the sticky error. */
void qfs_wal_stat(const struct qfs_wal *w, struct qfs_wal_stat *out)
{
	struct qfs_wal_stat st = { .err = w->err };

	for (size_t i = 0; i < w->nseg; i++) {
		if (w->segs[i].exists) {
			st.segments++;
			st.bytes += w->segs[i].size;
		}
	}
	*out = st;
}

/*
 * Delete the log directory dir and every file in it, then fsync its parent.
 * The log must not be open.  Returns 0 (also when dir does not exist) or
 * -errno (e.g. -ENOTEMPTY if dir holds a subdirectory); on error some files
 * may already be gone.
 */
int qfs_wal_destroy(const char *dir)
{
	struct dirent *de;
	DIR *d;
	int dfd, rc = 0;

	dfd = qfs_sys_open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (dfd < 0)
		return errno == ENOENT ? 0 : -errno;
	d = fdopendir(dfd);
	if (!d) {
		rc = -errno;
		close(dfd);
		return rc;
	}
	for (int removed = 1; removed && rc == 0;) {
		/* Rescan until a pass removes nothing: readdir need not return
		 * every entry while the directory changes under it. */
		removed = 0;
		rewinddir(d);
		while ((errno = 0, de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			if (qfs_sys_unlinkat(dfd, de->d_name, 0) < 0) {
				rc = -errno;
				break;
			}
			removed = 1;
		}
		if (rc == 0 && errno != 0)
			rc = -errno;
	}
	closedir(d);
	if (rc < 0)
		return rc;
	if (qfs_sys_rmdir(dir) < 0)
		return -errno;
	return qfs_sysio_fsync_parent(dir);
}
