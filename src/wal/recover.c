/*
 * recover.c - rebuild a log's in-memory state from its directory at open.
 *
 * Every segment is read and every record's CRC and LSN checked (the format
 * and the torn/corrupt rule are in doc/format-wal.md):
 *  - a bad record (short, impossible length, CRC mismatch) in the last
 *    segment with no valid record anywhere after it is a torn write that was
 *    never acknowledged: the file is cut there (one WARN line; zeros alone
 *    past the last record, the zeros ahead, an INFO line);
 *  - so is one with valid records after it when a crash in a sync written
 *    over zeros ahead explains them (the unwritten-sector rule,
 *    unwritten_sector below);
 *  - a bad record anywhere else, a bad record with a valid record after it
 *    otherwise, a CRC-valid record with the wrong LSN, or a gap between
 *    segments is corruption: QFS_ECORRUPT and one ERR line naming file,
 *    offset and LSN;
 *  - a last segment with a torn header (never fsync'd) is deleted, and so is
 *    a last segment left without records when it is the only one.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/log.h"
#include "common/sysio.h"
#include "wal/wal_int.h"

static int corrupt(const struct qfs_wal *w, const char *name, uint64_t off, qfs_lsn_t lsn, const char *why)
{
	QFS_LOG(QFS_LOG_ERR, "wal corrupt dir=%s file=%s off=%llu lsn=%llu reason=\"%s\"", w->dir, name,
		(unsigned long long)off, (unsigned long long)lsn, why);
	return QFS_ECORRUPT;
}

/*
 * Is there a CRC-valid record with a plausible LSN (> after) starting anywhere
 * in [start, size)?  Returns 1 (and its offset in *at), 0, or -errno.
 */
static int find_valid(struct qfs_wal_rd *rd, uint64_t start, uint64_t size, qfs_lsn_t after, uint64_t *at)
{
	uint64_t maxgap = (size - start) / QFS_WAL_REC_HDR + 1;

	for (uint64_t p = start; p + QFS_WAL_REC_HDR <= size; p++) {
		const uint8_t *h;
		uint32_t len;
		qfs_lsn_t lsn;
		int rc = qfs_wal_rd_get(rd, p, QFS_WAL_REC_HDR, &h);

		if (rc < 0)
			return rc;
		if (rc > 0)
			return 0;
		len = qfs_wal_get32(h + 4);
		lsn = qfs_wal_get64(h + 8);
		if (len > QFS_WAL_RECORD_MAX || p + QFS_WAL_REC_HDR + len > size)
			continue;
		if (lsn <= after || lsn - after > maxgap)
			continue;
		rc = qfs_wal_rd_get(rd, p, QFS_WAL_REC_HDR + len, &h);
		if (rc < 0)
			return rc;
		if (rc == 0 && qfs_wal_rec_ok(h, len)) {
			*at = p;
			return 1;
		}
	}
	return 0;
}

/* Are bytes [off, size) all zero?  1, 0, or -errno. */
static int all_zero(struct qfs_wal_rd *rd, uint64_t off, uint64_t size)
{
	while (off < size) {
		size_t n = size - off > (64u << 10) ? 64u << 10 : (size_t)(size - off);
		const uint8_t *p;
		int rc = qfs_wal_rd_get(rd, off, n, &p);

		if (rc < 0)
			return rc;
		if (rc > 0)
			return 0;
		for (size_t i = 0; i < n; i++)
			if (p[i])
				return 0;
		off += n;
	}
	return 1;
}

/*
 * The unwritten-sector rule (doc/format-wal.md "Recovery"): is the bad
 * record at off of the last file the first one a crash left half written
 * in place over zeros ahead?  Such a sync wrote at most QFS_WAL_INPLACE_MAX
 * bytes over zeros and the disk kept any subset of its sectors, so its
 * records after a lost sector may be whole.  It is, if (a) a sector that
 * the bad record covers reads all zero from off on (the sector was not
 * written: what lay there before the sync were zeros, or the durable bytes
 * before off), and (b) no valid record after off ends more than
 * QFS_WAL_INPLACE_MAX past it (the sync began at or before off).
 * On entry *at is the first valid record after off.  Returns 1, 0 (then it
 * is corruption, and *at names a valid record that shows it), or -errno.
 */
static int unwritten_sector(struct qfs_wal_rd *rd, uint64_t off, uint64_t size, qfs_lsn_t after, uint64_t *at)
{
	uint64_t end = off + QFS_WAL_REC_HDR, limit = off + QFS_WAL_INPLACE_MAX, p;
	const uint8_t *h;
	int rc, zero = 0;

	/* the bad record's extent: its own length if the header is plausible
	 * (a header in a lost sector reads zero where it was not written, and
	 * that sector lies in its first 16 bytes) */
	if (size - off >= QFS_WAL_REC_HDR) {
		rc = qfs_wal_rd_get(rd, off, QFS_WAL_REC_HDR, &h);
		if (rc < 0)
			return rc;
		if (rc == 0 && qfs_wal_get32(h + 4) <= QFS_WAL_RECORD_MAX)
			end = off + QFS_WAL_REC_HDR + qfs_wal_get32(h + 4);
	}
	if (end > size)
		end = size;
	/* ... and never past the first valid record after it (*at on entry):
	 * a crash's lost sector lies in the bad record's true extent, which
	 * ends before any later record, where a damaged length could reach
	 * into the zeros ahead or a later record's zero bytes (rev29) */
	if (end > *at)
		end = *at;
	/* (a): a sector of [off, end) all zero from off on */
	for (uint64_t sec = off - off % QFS_WAL_SECTOR; sec < end && !zero; sec += QFS_WAL_SECTOR) {
		uint64_t from = sec > off ? sec : off, to = sec + QFS_WAL_SECTOR < size ? sec + QFS_WAL_SECTOR : size;

		rc = qfs_wal_rd_get(rd, from, (size_t)(to - from), &h);
		if (rc < 0)
			return rc;
		if (rc > 0)
			break;
		zero = 1;
		for (uint64_t i = 0; i < to - from && zero; i++)
			zero = h[i] == 0;
	}
	if (!zero)
		return 0;
	/* (b): every valid record after off ends by off + QFS_WAL_INPLACE_MAX */
	for (p = off + 1;; p = *at + 1) {
		uint32_t len;

		rc = find_valid(rd, p, size, after, at);
		if (rc <= 0)
			return rc < 0 ? rc : 1;
		rc = qfs_wal_rd_get(rd, *at, QFS_WAL_REC_HDR, &h);
		if (rc < 0)
			return rc;
		len = qfs_wal_get32(h + 4);
		if (*at + QFS_WAL_REC_HDR + len > limit)
			return 0;
	}
}

/* Torn tail at off of the last segment: decide, and cut the file there.
 * Zeros alone past the last record are the zeros ahead of a log that was
 * closed or crashed (doc/format-wal.md "Zeroed ahead"): cut with an INFO
 * line, not a WARN.  Valid records after off make it corruption, unless
 * the unwritten-sector rule above says that a crash left them (a WARN
 * line naming the rule).  Returns 0 (trimmed), QFS_ECORRUPT or -errno. */
static int torn_tail(struct qfs_wal *w, struct qfs_wal_rd *rd, const char *name, uint64_t off, uint64_t size,
		     qfs_lsn_t expect, const char *why)
{
	uint64_t at;
	int rc = find_valid(rd, off + 1, size, expect - 1, &at);

	if (rc < 0)
		return rc;
	if (rc > 0) {
		uint64_t first = at;

		rc = unwritten_sector(rd, off, size, expect - 1, &at);
		if (rc < 0)
			return rc;
		if (rc == 0) {
			QFS_LOG(QFS_LOG_ERR,
				"wal corrupt dir=%s file=%s off=%llu lsn=%llu reason=\"%s, valid record at off=%llu\"",
				w->dir, name, (unsigned long long)off, (unsigned long long)expect, why,
				(unsigned long long)at);
			return QFS_ECORRUPT;
		}
		QFS_LOG(QFS_LOG_WARN,
			"wal torn tail trimmed dir=%s file=%s off=%llu lsn=%llu bytes=%llu reason=\"%s, an unwritten "
			"sector, records of the same sync from off=%llu\"",
			w->dir, name, (unsigned long long)off, (unsigned long long)expect,
			(unsigned long long)(size - off), why, (unsigned long long)first);
		if (qfs_sys_ftruncate(rd->fd, (off_t)off) < 0)
			return -errno;
		return qfs_sysio_fdatasync(rd->fd);
	}
	rc = all_zero(rd, off, size);
	if (rc < 0)
		return rc;
	if (rc)
		QFS_LOG(QFS_LOG_INFO, "wal zeros ahead trimmed dir=%s file=%s off=%llu lsn=%llu bytes=%llu", w->dir,
			name, (unsigned long long)off, (unsigned long long)expect, (unsigned long long)(size - off));
	else
		QFS_LOG(QFS_LOG_WARN, "wal torn tail trimmed dir=%s file=%s off=%llu lsn=%llu bytes=%llu reason=\"%s\"",
			w->dir, name, (unsigned long long)off, (unsigned long long)expect,
			(unsigned long long)(size - off), why);
	if (qfs_sys_ftruncate(rd->fd, (off_t)off) < 0)
		return -errno;
	return qfs_sysio_fdatasync(rd->fd);
}

static int remove_seg(struct qfs_wal *w, const char *name, int *dirty)
{
	if (qfs_sys_unlinkat(w->dfd, name, 0) < 0)
		return -errno;
	*dirty = 1;
	return 0;
}

/*
 * Load segment file first.  have_prev/prev_last describe the segment before
 * it.  On success *keep says whether it stays in the log (its entry in *s,
 * fd open only if last) or was deleted.
 */
static int seg_load(struct qfs_wal *w, qfs_lsn_t first, int last, int have_prev, qfs_lsn_t prev_last,
		    struct qfs_wal_seg *s, int *keep, int *dirty)
{
	char name[QFS_WAL_NAME_LEN + 1];
	struct qfs_wal_rd rd = { .fd = -1, .buf = &w->rbuf, .cap = &w->rcap };
	const uint8_t *h;
	struct stat st;
	uint64_t size, off;
	qfs_lsn_t expect;
	int rc;

	qfs_wal_seg_name(name, first);
	rd.fd = qfs_sys_openat(w->dfd, name, (last ? O_RDWR : O_RDONLY) | O_CLOEXEC, 0);
	if (rd.fd < 0)
		return -errno;
	if (fstat(rd.fd, &st) < 0) {
		rc = -errno;
		goto err_close;
	}
	size = (uint64_t)st.st_size;

	rc = size < QFS_WAL_SEG_HDR ? 1 : qfs_wal_rd_get(&rd, 0, QFS_WAL_SEG_HDR, &h);
	if (rc < 0)
		goto err_close;
	if (rc == 0 && qfs_wal_get32(h) == QFS_WAL_SEG_MAGIC &&
	    qfs_crc32c(0, h, 20) == qfs_wal_get32(h + 20)) {
		if (qfs_wal_get32(h + 4) != QFS_WAL_FORMAT_VERSION) {
			QFS_LOG(QFS_LOG_ERR, "wal unsupported format dir=%s file=%s version=%u supported=%u", w->dir,
				name, qfs_wal_get32(h + 4), QFS_WAL_FORMAT_VERSION);
			rc = QFS_EFORMAT;
			goto err_close;
		}
		if (qfs_wal_get64(h + 8) != first) {
			rc = corrupt(w, name, 8, first, "header LSN does not match file name");
			goto err_close;
		}
	} else {
		/* Bad or short header: a torn creation if this is the last file
		 * and nothing valid follows (see doc/format-wal.md). */
		uint64_t at = 0;

		if (!last) {
			rc = corrupt(w, name, 0, first, "bad segment header");
			goto err_close;
		}
		rc = size <= QFS_WAL_SEG_HDR ? 0 : find_valid(&rd, QFS_WAL_SEG_HDR, size, have_prev ? prev_last : 0, &at);
		if (rc < 0)
			goto err_close;
		if (rc > 0) {
			rc = corrupt(w, name, 0, first, "bad segment header before valid records");
			goto err_close;
		}
		QFS_LOG(QFS_LOG_WARN, "wal torn segment removed dir=%s file=%s bytes=%llu", w->dir, name,
			(unsigned long long)size);
		close(rd.fd);
		*keep = 0;
		return remove_seg(w, name, dirty);
	}
	if (have_prev && first != prev_last + 1) {
		rc = corrupt(w, name, 0, first, "LSN gap between segments");
		goto err_close;
	}

	off = QFS_WAL_SEG_HDR;
	expect = first;
	while (off < size) {
		uint32_t len = 0;
		const char *why = NULL;

		rc = size - off < QFS_WAL_REC_HDR ? 1 : qfs_wal_rd_get(&rd, off, QFS_WAL_REC_HDR, &h);
		if (rc < 0)
			goto err_close;
		if (rc > 0) {
			why = "short record header";
		} else {
			len = qfs_wal_get32(h + 4);
			if (len > QFS_WAL_RECORD_MAX)
				why = "bad record length";
			else if (off + QFS_WAL_REC_HDR + len > size)
				why = "short record";
		}
		if (!why) {
			rc = qfs_wal_rd_get(&rd, off, QFS_WAL_REC_HDR + len, &h);
			if (rc < 0)
				goto err_close;
			if (rc > 0)
				why = "short record";
			else if (!qfs_wal_rec_ok(h, len))
				why = "record CRC mismatch";
		}
		if (why) {
			if (!last) {
				rc = corrupt(w, name, off, expect, why);
				goto err_close;
			}
			rc = torn_tail(w, &rd, name, off, size, expect, why);
			if (rc < 0)
				goto err_close;
			size = off;
			break;
		}
		if (qfs_wal_get64(h + 8) != expect) {
			rc = corrupt(w, name, off, expect, "record LSN out of sequence");
			goto err_close;
		}
		off += QFS_WAL_REC_HDR + len;
		expect++;
	}

	if (expect == first) {
		if (!last) {
			rc = corrupt(w, name, QFS_WAL_SEG_HDR, first, "sealed segment without records");
			goto err_close;
		}
		if (!have_prev) {
			QFS_LOG(QFS_LOG_INFO, "wal empty segment removed dir=%s file=%s", w->dir, name);
			close(rd.fd);
			*keep = 0;
			return remove_seg(w, name, dirty);
		}
	}
	if (!last) {
		close(rd.fd);
		rd.fd = -1;
	}
	memset(s, 0, sizeof(*s));
	s->first = first;
	s->last = s->durable_last = expect - 1;
	s->size = s->alloc = size;
	s->fd = rd.fd;
	s->exists = 1;
	*keep = 1;
	return 0;

err_close:
	close(rd.fd);
	return rc;
}

static int cmp_lsn(const void *a, const void *b)
{
	qfs_lsn_t x = *(const qfs_lsn_t *)a, y = *(const qfs_lsn_t *)b;

	return x < y ? -1 : x > y;
}

/* Parse "<16 lower-case hex>.wal"; returns 1 and *lsn, or 0. */
static int parse_name(const char *n, qfs_lsn_t *lsn)
{
	qfs_lsn_t v = 0;

	if (strlen(n) != QFS_WAL_NAME_LEN || strcmp(n + 16, ".wal") != 0)
		return 0;
	for (int i = 0; i < 16; i++) {
		char c = n[i];

		if (c >= '0' && c <= '9')
			v = v << 4 | (qfs_lsn_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v << 4 | (qfs_lsn_t)(c - 'a' + 10);
		else
			return 0;
	}
	*lsn = v;
	return 1;
}

/* List the segment files of w->dir, sorted.  *out is heap (caller frees). */
static int list_segments(struct qfs_wal *w, qfs_lsn_t **out, size_t *n)
{
	qfs_lsn_t *v = NULL, lsn;
	size_t cnt = 0, cap = 0;
	struct dirent *de;
	DIR *d;
	int fd, rc = 0;

	fd = dup(w->dfd);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		rc = -errno;
		close(fd);
		return rc;
	}
	rewinddir(d);
	while ((errno = 0, de = readdir(d)) != NULL) {
		if (!parse_name(de->d_name, &lsn)) {
			size_t nl = strlen(de->d_name);
			if (de->d_name[0] == '.' && nl > 4 && strcmp(de->d_name + nl - 4, ".tmp") == 0) {
				/* a segment whose creation did not finish (qfs_wal_seal) */
				QFS_LOG(QFS_LOG_INFO, "wal removing unfinished segment dir=%s file=%s", w->dir,
					de->d_name);
				qfs_sys_unlinkat(w->dfd, de->d_name, 0);
			} else if (de->d_name[0] != '.') {
				QFS_LOG(QFS_LOG_DEBUG, "wal ignoring file dir=%s file=%s", w->dir, de->d_name);
			}
			continue;
		}
		if (lsn == 0) {
			rc = corrupt(w, de->d_name, 0, 0, "segment named LSN 0");
			goto err_free;
		}
		if (cnt == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			qfs_lsn_t *nv = realloc(v, ncap * sizeof(*v));

			if (!nv) {
				rc = -ENOMEM;
				goto err_free;
			}
			v = nv;
			cap = ncap;
		}
		v[cnt++] = lsn;
	}
	if (errno != 0) {
		rc = -errno;
		goto err_free;
	}
	closedir(d);
	if (cnt > 1)
		qsort(v, cnt, sizeof(*v), cmp_lsn);
	*out = v;
	*n = cnt;
	return 0;

err_free:
	free(v);
	closedir(d);
	return rc;
}

/* See wal_int.h. */
int qfs_wal_recover(struct qfs_wal *w)
{
	qfs_lsn_t *lsns = NULL;
	size_t n = 0;
	int dirty = 0, rc;

	rc = list_segments(w, &lsns, &n);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		struct qfs_wal_seg s;
		int keep = 0, have_prev = w->nseg > 0;
		qfs_lsn_t prev_last = have_prev ? w->segs[w->nseg - 1].last : 0;

		rc = seg_load(w, lsns[i], i + 1 == n, have_prev, prev_last, &s, &keep, &dirty);
		if (rc < 0)
			goto out;
		if (!keep)
			continue;
		rc = qfs_wal_seg_push(w, &s);
		if (rc < 0) {
			if (s.fd >= 0)
				close(s.fd);
			goto out;
		}
	}
	if (w->nseg > 0) {
		struct qfs_wal_seg *t = &w->segs[w->nseg - 1];

		if (t->fd < 0) {
			/* The file after it was a torn creation and is gone. */
			char name[QFS_WAL_NAME_LEN + 1];

			qfs_wal_seg_name(name, t->first);
			t->fd = qfs_sys_openat(w->dfd, name, O_RDWR | O_CLOEXEC, 0);
			if (t->fd < 0) {
				rc = -errno;
				goto out;
			}
		}
		w->last = w->durable = t->last;
	}
	if (dirty)
		rc = qfs_sysio_fsync(w->dfd);
out:
	free(lsns);
	return rc;
}
