/*
 * segread.c - the segment reader (contract: wal.h "segments"; format:
 * doc/format-wal.md): one segment read on its own, as a file or as bytes
 * in memory, plus the directory listing and the segment image header
 * that the archive needs to read and copy logs it does not own.
 *
 * The checks are the ones recover.c and wal.c make on their own log
 * (header, record framing, CRC-32C, LSN sequence); what the reader cannot
 * do is tell a torn tail from corruption, which needs the log's owner's
 * knowledge of which file is last: it reports QFS_ETORN when the bytes run
 * out inside a record and QFS_ECORRUPT for anything else.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "wal/wal_int.h"

static void rd_reset(struct qfs_wal_segrd *r)
{
	memset(r, 0, sizeof(*r));
	r->fd = -1;
	r->why = "";
}

static int fail(struct qfs_wal_segrd *r, int err, const char *why)
{
	r->err = err;
	r->why = why;
	return err;
}

#define WIN_FIRST (4u << 10)   /* first file read: a look at the first records is cheap */
#define WIN_MAX (256u << 10)    /* then doubling up to this, for scans */

/* Bytes [off, off + n) of the segment into *p.  0, 1 (the segment ends
 * before off + n), -ENOMEM or -errno.  A file is read through a window
 * that starts small and doubles on each refill (r->cap tracks it). */
static int get(struct qfs_wal_segrd *r, uint64_t off, size_t n, const uint8_t **p)
{
	size_t want, got;
	ssize_t k;

	if (off + n > r->size)
		return 1;
	if (r->mem) {
		*p = r->mem + off;
		return 0;
	}
	if (off >= r->woff && off + n <= r->woff + r->wlen) {
		*p = r->buf + (off - r->woff);
		return 0;
	}
	want = r->cap ? (r->cap < WIN_MAX ? 2 * r->cap : r->cap) : WIN_FIRST;
	if (want < n)
		want = n;
	if (want > r->size - off)
		want = (size_t)(r->size - off); /* >= n: checked above */
	if (want > r->cap) {
		uint8_t *nb = realloc(r->buf, want);

		if (!nb)
			return -ENOMEM;
		r->buf = nb;
		r->cap = want;
	}
	r->wlen = 0;
	k = qfs_wal_pread_upto(r->fd, r->buf, want, off);
	if (k < 0)
		return (int)k;
	got = (size_t)k;
	r->woff = off;
	r->wlen = got;
	if (got < n)
		return 1; /* cut since open: a torn tail */
	*p = r->buf;
	return 0;
}

/* Check the header (common to both starts). */
static int start(struct qfs_wal_segrd *r)
{
	const uint8_t *h;
	int rc = get(r, 0, QFS_WAL_SEG_HDR, &h);

	if (rc < 0)
		return fail(r, rc, "segment header unreadable");
	if (rc > 0)
		return fail(r, QFS_ECORRUPT, "shorter than a segment header");
	if (qfs_wal_get32(h) != QFS_WAL_SEG_MAGIC || qfs_crc32c(0, h, 20) != qfs_wal_get32(h + 20))
		return fail(r, QFS_ECORRUPT, "bad segment header");
	if (qfs_wal_get32(h + 4) != QFS_WAL_FORMAT_VERSION)
		return fail(r, QFS_EFORMAT, "unknown WAL format version");
	r->first = qfs_wal_get64(h + 8);
	r->next = r->first;
	r->off = QFS_WAL_SEG_HDR;
	r->crc = qfs_crc32c(0, h, QFS_WAL_SEG_HDR);
	return 0;
}

/* See wal.h. */
int qfs_wal_segrd_init(struct qfs_wal_segrd *r, const void *p, size_t len)
{
	static const uint8_t empty[1];

	rd_reset(r);
	r->mem = p ? p : empty;
	r->size = len;
	return start(r);
}

/* See wal.h. */
int qfs_wal_segrd_open(struct qfs_wal_segrd *r, const char *path)
{
	struct stat st;

	rd_reset(r);
	r->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0)
		return fail(r, -errno, "segment file cannot be opened");
	if (fstat(r->fd, &st) < 0)
		return fail(r, -errno, "segment file cannot be opened");
	r->size = (uint64_t)st.st_size;
	return start(r);
}

/* See wal.h. */
int qfs_wal_segrd_next(struct qfs_wal_segrd *r, struct qfs_wal_rec *out)
{
	const uint8_t *h;
	uint32_t len;
	int rc;

	if (r->err)
		return r->err;
	if (r->off == r->size)
		return 0;
	rc = get(r, r->off, QFS_WAL_REC_HDR, &h);
	if (rc < 0)
		return fail(r, rc, "segment unreadable");
	if (rc > 0)
		return fail(r, QFS_ETORN, "truncated record header");
	len = qfs_wal_get32(h + 4);
	if (len > QFS_WAL_RECORD_MAX)
		return fail(r, QFS_ECORRUPT, "impossible record length");
	rc = get(r, r->off, QFS_WAL_REC_HDR + len, &h);
	if (rc < 0)
		return fail(r, rc, "segment unreadable");
	if (rc > 0)
		return fail(r, QFS_ETORN, "record length past the end");
	if (!qfs_wal_rec_ok(h, len))
		return fail(r, QFS_ECORRUPT, "record CRC mismatch");
	if (qfs_wal_get64(h + 8) != r->next)
		return fail(r, QFS_ECORRUPT, "record LSN out of sequence");
	out->lsn = r->next;
	out->data = h + QFS_WAL_REC_HDR;
	out->len = len;
	out->raw = h;
	out->raw_len = QFS_WAL_REC_HDR + (size_t)len;
	out->off = r->off;
	r->crc = qfs_crc32c(r->crc, h, out->raw_len);
	r->off += out->raw_len;
	r->next++;
	return 1;
}

/* See wal.h. */
qfs_lsn_t qfs_wal_segrd_first(const struct qfs_wal_segrd *r)
{
	return r->first;
}

/* See wal.h. */
uint32_t qfs_wal_segrd_crc(const struct qfs_wal_segrd *r)
{
	return r->crc;
}

/* See wal.h. */
const char *qfs_wal_segrd_why(const struct qfs_wal_segrd *r)
{
	return r->why ? r->why : "";
}

/* See wal.h. */
void qfs_wal_segrd_close(struct qfs_wal_segrd *r)
{
	if (r->fd >= 0)
		close(r->fd);
	free(r->buf);
	rd_reset(r);
}

/* See wal.h. */
void qfs_wal_image_begin(struct qfs_buf *out, qfs_lsn_t first)
{
	uint8_t h[QFS_WAL_SEG_HDR];

	qfs_wal_seg_header(h, first);
	qfs_buf_put(out, h, sizeof(h));
}

/* Bytes of the file dir/name (size bytes) up to its last non-zero byte:
 * the tail without its zeros ahead (doc/format-wal.md "Zeroed ahead").
 * size when unreadable. */
static uint64_t nonzero_end(int dfd, const char *name, uint64_t size)
{
	uint8_t b[16384];
	uint64_t end = size;
	int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return size;
	while (end > 0) {
		size_t n = end > sizeof(b) ? sizeof(b) : (size_t)end, z = n;

		if (pread(fd, b, n, (off_t)(end - n)) != (ssize_t)n) {
			end = size;
			break;
		}
		while (z > 0 && b[z - 1] == 0)
			z--;
		end -= n - z;
		if (z > 0)
			break;
	}
	close(fd);
	return end;
}

static int seginfo_cmp(const void *x, const void *y)
{
	const struct qfs_wal_seginfo *a = x, *b = y;

	return a->first < b->first ? -1 : a->first > b->first;
}

/* See wal.h. */
int qfs_wal_list(const char *dir, struct qfs_wal_seginfo **out, size_t *count)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	struct qfs_wal_seginfo *v = NULL;
	size_t n = 0, cap = 0;
	int dfd;

	if (!d)
		return -errno;
	dfd = dirfd(d);
	while ((de = readdir(d)) != NULL) {
		struct stat st;
		unsigned long long first;
		char *e;

		if (strlen(de->d_name) != QFS_WAL_NAME_LEN || strcmp(de->d_name + 16, ".wal"))
			continue;
		errno = 0;
		first = strtoull(de->d_name, &e, 16);
		if (errno || e != de->d_name + 16)
			continue;
		if (fstatat(dfd, de->d_name, &st, 0) < 0)
			continue; /* removed meanwhile */
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			struct qfs_wal_seginfo *nv = realloc(v, nc * sizeof(*nv));

			if (!nv) {
				free(v);
				closedir(d);
				return -ENOMEM;
			}
			v = nv;
			cap = nc;
		}
		v[n].first = first;
		v[n].size = (uint64_t)st.st_size;
		v[n].rec_bytes = v[n].size > QFS_WAL_SEG_HDR ? v[n].size - QFS_WAL_SEG_HDR : 0;
		n++;
	}
	if (n) {
		char name[QFS_WAL_NAME_LEN + 1];
		uint64_t end;

		qsort(v, n, sizeof(*v), seginfo_cmp);
		qfs_wal_seg_name(name, v[n - 1].first);
		end = nonzero_end(dfd, name, v[n - 1].size);
		v[n - 1].rec_bytes = end > QFS_WAL_SEG_HDR ? end - QFS_WAL_SEG_HDR : 0;
	}
	closedir(d);
	*out = v;
	*count = n;
	return 0;
}

/* See wal.h. */
int qfs_wal_seg_path(char *out, size_t cap, const char *dir, qfs_lsn_t first)
{
	int n = snprintf(out, cap, "%s/%016llx.wal", dir, (unsigned long long)first);

	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}
