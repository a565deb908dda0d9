/*
 * manifest.c - pure code of the archive formats: the per-partition manifest
 * (text), the snapshot object (binary), the walk over an archived WAL
 * segment, object keys, the point-in-time plan and restore-time parsing.
 * Contracts: archive_int.h; formats: doc/format-archive.md.  A segment is
 * read with src/wal's segment reader and its entries decoded by src/node
 * (doc/format-wal.md, node/entry.h): nothing here parses their framing.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "archive/archive_int.h"
#include "common/crc32c.h"
#include "common/key.h"
#include "node/entry.h"
#include "wal/wal.h"

void qfs_arch_manifest_init(struct qfs_arch_manifest *m, qfs_group_t group)
{
	memset(m, 0, sizeof(*m));
	m->group = group;
}

void qfs_arch_manifest_close(struct qfs_arch_manifest *m)
{
	qfs_group_t g = m->group;

	free(m->segs);
	free(m->snaps);
	qfs_arch_manifest_init(m, g);
}

qfs_lsn_t qfs_arch_manifest_last(const struct qfs_arch_manifest *m)
{
	return m->nsegs ? m->segs[m->nsegs - 1].last : 0;
}

int qfs_arch_manifest_add_seg(struct qfs_arch_manifest *m, const struct qfs_arch_seg *s)
{
	if (s->first == 0 || s->first > s->last)
		return -EINVAL;
	if (m->nsegs && s->first != qfs_arch_manifest_last(m) + 1)
		return -EINVAL;
	if (m->nsegs == m->segcap) {
		size_t cap = m->segcap ? m->segcap * 2 : 16;
		struct qfs_arch_seg *a = realloc(m->segs, cap * sizeof(*a));

		if (!a)
			return -ENOMEM;
		m->segs = a;
		m->segcap = cap;
	}
	m->segs[m->nsegs++] = *s;
	return 0;
}

int qfs_arch_manifest_add_snap(struct qfs_arch_manifest *m, const struct qfs_arch_snap *s)
{
	if (s->lsn == 0 || (m->nsnaps && s->lsn <= m->snaps[m->nsnaps - 1].lsn))
		return -EINVAL;
	if (m->nsnaps == m->snapcap) {
		size_t cap = m->snapcap ? m->snapcap * 2 : 8;
		struct qfs_arch_snap *a = realloc(m->snaps, cap * sizeof(*a));

		if (!a)
			return -ENOMEM;
		m->snaps = a;
		m->snapcap = cap;
	}
	m->snaps[m->nsnaps++] = *s;
	return 0;
}

/* ---------------------------------------------------------------- manifest text */

void qfs_arch_manifest_encode(const struct qfs_arch_manifest *m, struct qfs_buf *out)
{
	size_t start = out->len;
	char line[256];
	int n;

	n = snprintf(line, sizeof(line), "%s %d\ngroup %016llx\n", QFS_ARCH_MANIFEST_MAGIC,
		     QFS_ARCH_MANIFEST_VERSION, (unsigned long long)m->group);
	qfs_buf_put(out, line, (size_t)n);
	for (size_t i = 0; i < m->nsegs; i++) {
		const struct qfs_arch_seg *s = &m->segs[i];

		n = snprintf(line, sizeof(line), "seg %016llx %016llx %llu %08x %llu %llu\n",
			     (unsigned long long)s->first, (unsigned long long)s->last,
			     (unsigned long long)s->size, s->crc, (unsigned long long)s->t_first,
			     (unsigned long long)s->t_last);
		qfs_buf_put(out, line, (size_t)n);
	}
	for (size_t i = 0; i < m->nsnaps; i++) {
		const struct qfs_arch_snap *s = &m->snaps[i];

		n = snprintf(line, sizeof(line), "snap %016llx %llu %08x %llu %llu\n",
			     (unsigned long long)s->lsn, (unsigned long long)s->size, s->crc,
			     (unsigned long long)s->time_ns, (unsigned long long)s->items);
		qfs_buf_put(out, line, (size_t)n);
	}
	if (out->err)
		return;
	n = snprintf(line, sizeof(line), "end %zu %08x\n", m->nsegs + m->nsnaps,
		     qfs_crc32c(0, out->data + start, out->len - start));
	qfs_buf_put(out, line, (size_t)n);
}

/* Parse an unsigned number of the given base spanning exactly [p, end). */
static int num(const char *p, const char *end, int base, uint64_t *out)
{
	char tmp[32], *e;
	size_t n = (size_t)(end - p);

	if (n == 0 || n >= sizeof(tmp) || *p == '-' || *p == '+' || *p == ' ')
		return -1;
	memcpy(tmp, p, n);
	tmp[n] = '\0';
	errno = 0;
	unsigned long long v = strtoull(tmp, &e, base);
	if (errno || *e)
		return -1;
	*out = v;
	return 0;
}

/* Split line [p, end) into at most max space-separated fields. */
static size_t fields(const char *p, const char *end, const char **f, const char **fe, size_t max)
{
	size_t k = 0;

	while (p < end) {
		const char *s = p;

		while (p < end && *p != ' ')
			p++;
		if (p == s || k == max)
			return max + 1; /* empty field or too many: reject */
		f[k] = s;
		fe[k++] = p;
		if (p < end)
			p++;
		if (p == end && p[-1] == ' ')
			return max + 1;
	}
	return k;
}

int qfs_arch_manifest_decode(const void *data, size_t len, qfs_group_t group,
			     struct qfs_arch_manifest *out)
{
	const char *p = data, *end = p + len;
	struct qfs_arch_manifest m;
	const char *f[8], *fe[8];
	uint64_t v[7];
	int rc = QFS_ECORRUPT, line = 0, ended = 0;

	qfs_arch_manifest_init(&m, group);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t k;

		if (!nl || ended)
			goto err;
		k = fields(p, nl, f, fe, 8);
		if (k == 0 || k > 7)
			goto err;
		if (line == 0) {
			size_t ml = strlen(QFS_ARCH_MANIFEST_MAGIC);

			if (k != 2 || (size_t)(fe[0] - f[0]) != ml || memcmp(f[0], QFS_ARCH_MANIFEST_MAGIC, ml) ||
			    num(f[1], fe[1], 10, &v[0]))
				goto err;
			if (v[0] != QFS_ARCH_MANIFEST_VERSION) {
				rc = QFS_EFORMAT;
				goto err;
			}
		} else if (line == 1) {
			if (k != 2 || fe[0] - f[0] != 5 || memcmp(f[0], "group", 5) || fe[1] - f[1] != 16 ||
			    num(f[1], fe[1], 16, &v[0]) || v[0] != group)
				goto err;
		} else if (fe[0] - f[0] == 3 && !memcmp(f[0], "seg", 3)) {
			struct qfs_arch_seg s;

			if (k != 7 || m.nsnaps || fe[1] - f[1] != 16 || fe[2] - f[2] != 16 ||
			    fe[4] - f[4] != 8)
				goto err;
			if (num(f[1], fe[1], 16, &s.first) || num(f[2], fe[2], 16, &s.last) ||
			    num(f[3], fe[3], 10, &s.size) || num(f[4], fe[4], 16, &v[0]) ||
			    num(f[5], fe[5], 10, &s.t_first) || num(f[6], fe[6], 10, &s.t_last))
				goto err;
			s.crc = (uint32_t)v[0];
			if ((rc = qfs_arch_manifest_add_seg(&m, &s)) != 0) {
				if (rc != -ENOMEM)
					rc = QFS_ECORRUPT;
				goto err;
			}
			rc = QFS_ECORRUPT;
		} else if (fe[0] - f[0] == 4 && !memcmp(f[0], "snap", 4)) {
			struct qfs_arch_snap s;

			if (k != 6 || fe[1] - f[1] != 16 || fe[3] - f[3] != 8)
				goto err;
			if (num(f[1], fe[1], 16, &s.lsn) || num(f[2], fe[2], 10, &s.size) ||
			    num(f[3], fe[3], 16, &v[0]) || num(f[4], fe[4], 10, &s.time_ns) ||
			    num(f[5], fe[5], 10, &s.items))
				goto err;
			s.crc = (uint32_t)v[0];
			if ((rc = qfs_arch_manifest_add_snap(&m, &s)) != 0) {
				if (rc != -ENOMEM)
					rc = QFS_ECORRUPT;
				goto err;
			}
			rc = QFS_ECORRUPT;
		} else if (fe[0] - f[0] == 3 && !memcmp(f[0], "end", 3)) {
			if (k != 3 || fe[2] - f[2] != 8 || num(f[1], fe[1], 10, &v[0]) ||
			    num(f[2], fe[2], 16, &v[1]))
				goto err;
			if (v[0] != m.nsegs + m.nsnaps ||
			    v[1] != qfs_crc32c(0, data, (size_t)(p - (const char *)data)))
				goto err;
			ended = 1;
		} else {
			goto err;
		}
		line++;
		p = nl + 1;
	}
	if (!ended)
		goto err;
	qfs_arch_manifest_close(out);
	*out = m;
	return 0;

err:
	qfs_arch_manifest_close(&m);
	return rc;
}

/* ---------------------------------------------------------------- keys */

void qfs_arch_key_manifest(char *out, qfs_group_t group)
{
	snprintf(out, QFS_ARCH_KEY_MAX, "groups/%016llx/manifest", (unsigned long long)group);
}

void qfs_arch_key_seg(char *out, qfs_group_t group, qfs_lsn_t first, qfs_lsn_t last)
{
	snprintf(out, QFS_ARCH_KEY_MAX, "groups/%016llx/wal/%016llx-%016llx.seg",
		 (unsigned long long)group, (unsigned long long)first, (unsigned long long)last);
}

void qfs_arch_key_snap(char *out, qfs_group_t group, qfs_lsn_t lsn)
{
	snprintf(out, QFS_ARCH_KEY_MAX, "groups/%016llx/snap/%016llx.snap", (unsigned long long)group,
		 (unsigned long long)lsn);
}

/* ---------------------------------------------------------------- segments */

int qfs_arch_seg_walk(const uint8_t *p, size_t len, qfs_arch_rec_cb cb, void *arg,
		      struct qfs_arch_seg *out, const char **why)
{
	struct qfs_wal_segrd r;
	struct qfs_wal_rec rec;
	struct qfs_arch_seg s;
	const char *w = NULL;
	uint64_t nrec = 0;
	int rc;

	memset(&s, 0, sizeof(s));
	/* The reader builds the CRC of the whole image as it goes (records
	 * are contiguous up to len), so every byte is read once, in order: a
	 * caller may drop the pages behind the walk. */
	rc = qfs_wal_segrd_init(&r, p, len);
	if (rc == QFS_EFORMAT) {
		if (why)
			*why = qfs_wal_segrd_why(&r);
		return rc;
	}
	if (rc) {
		w = qfs_wal_segrd_why(&r);
		goto corrupt;
	}
	s.first = qfs_wal_segrd_first(&r);
	while ((rc = qfs_wal_segrd_next(&r, &rec)) == 1) {
		struct qfs_node_entry e;

		if (qfs_node_entry_decode(rec.lsn, rec.data, rec.len, &e) != 0) {
			w = "undecodable log entry";
			goto corrupt;
		}
		if (rec.lsn == s.first)
			s.t_first = e.time_ns;
		s.t_last = e.time_ns;
		s.last = rec.lsn;
		nrec++;
		if (cb && (rc = cb(rec.lsn, e.type, e.time_ns, e.data, e.len, arg)) != 0) {
			qfs_wal_segrd_close(&r);
			return rc;
		}
	}
	if (rc) {
		/* a torn tail is damage too in a sealed segment */
		w = qfs_wal_segrd_why(&r);
		goto corrupt;
	}
	if (nrec == 0) {
		w = "segment without records";
		goto corrupt;
	}
	s.size = len;
	s.crc = qfs_wal_segrd_crc(&r);
	qfs_wal_segrd_close(&r);
	*out = s;
	return 0;

corrupt:
	qfs_wal_segrd_close(&r);
	if (why)
		*why = w;
	return QFS_ECORRUPT;
}

/* ---------------------------------------------------------------- snapshots */

void qfs_arch_snap_header(uint8_t out[QFS_ARCH_SNAP_HDR], qfs_group_t group, qfs_lsn_t lsn,
			  uint64_t time_ns)
{
	memset(out, 0, QFS_ARCH_SNAP_HDR);
	qfs_be32_put(out, QFS_ARCH_SNAP_MAGIC);
	qfs_be32_put(out + 4, QFS_ARCH_SNAP_VERSION);
	qfs_be64_put(out + 8, group);
	qfs_be64_put(out + 16, lsn);
	qfs_be64_put(out + 24, time_ns);
	qfs_be32_put(out + 44, qfs_crc32c(0, out, 44));
}

void qfs_arch_snap_rec_header(uint8_t out[QFS_ARCH_SNAP_REC_HDR], uint32_t klen, uint32_t vlen)
{
	qfs_be32_put(out, klen);
	qfs_be32_put(out + 4, vlen);
}

void qfs_arch_snap_trailer(uint8_t out[QFS_ARCH_SNAP_TRAILER], uint64_t items, uint32_t rec_crc)
{
	memset(out, 0, QFS_ARCH_SNAP_TRAILER);
	qfs_be32_put(out, QFS_ARCH_SNAP_END_MAGIC);
	qfs_be64_put(out + 8, items);
	qfs_be32_put(out + 16, rec_crc);
	qfs_be32_put(out + 20, qfs_crc32c(0, out, 20));
}

int qfs_arch_snap_walk(const uint8_t *p, size_t len, qfs_arch_item_cb cb, void *arg,
		       qfs_group_t *group, qfs_lsn_t *lsn, uint64_t *time_ns, uint64_t *items,
		       const char **why)
{
	const uint8_t *t;
	size_t off = QFS_ARCH_SNAP_HDR, end;
	uint64_t count = 0;
	const char *w;
	int rc;

	if (len < QFS_ARCH_SNAP_HDR + QFS_ARCH_SNAP_TRAILER) {
		w = "shorter than header and trailer";
		goto corrupt;
	}
	if (qfs_be32_get(p) != QFS_ARCH_SNAP_MAGIC || qfs_crc32c(0, p, 44) != qfs_be32_get(p + 44)) {
		w = "bad snapshot header";
		goto corrupt;
	}
	if (qfs_be32_get(p + 4) != QFS_ARCH_SNAP_VERSION) {
		if (why)
			*why = "unknown snapshot format version";
		return QFS_EFORMAT;
	}
	end = len - QFS_ARCH_SNAP_TRAILER;
	t = p + end;
	if (qfs_be32_get(t) != QFS_ARCH_SNAP_END_MAGIC || qfs_crc32c(0, t, 20) != qfs_be32_get(t + 20)) {
		w = "bad snapshot trailer";
		goto corrupt;
	}
	/* Verify every byte before handing out the first item. */
	if (qfs_crc32c(0, p + off, end - off) != qfs_be32_get(t + 16)) {
		w = "snapshot records CRC mismatch";
		goto corrupt;
	}
	for (int pass = 0; pass < 2; pass++) {
		off = QFS_ARCH_SNAP_HDR;
		count = 0;
		while (off < end) {
			uint32_t kl, vl;

			if (end - off < QFS_ARCH_SNAP_REC_HDR) {
				w = "truncated item header";
				goto corrupt;
			}
			kl = qfs_be32_get(p + off);
			vl = qfs_be32_get(p + off + 4);
			off += QFS_ARCH_SNAP_REC_HDR;
			if (kl == 0 || kl > QFS_KEY_MAX || vl > QFS_ARCH_SNAP_VAL_MAX ||
			    end - off < (size_t)kl + vl) {
				w = "item length out of range";
				goto corrupt;
			}
			if (pass == 1 && cb && (rc = cb(p + off, kl, p + off + kl, vl, arg)) != 0)
				return rc;
			off += (size_t)kl + vl;
			count++;
		}
		if (count != qfs_be64_get(t + 8)) {
			w = "item count mismatch";
			goto corrupt;
		}
		if (!cb)
			break;
	}
	*group = qfs_be64_get(p + 8);
	*lsn = qfs_be64_get(p + 16);
	*time_ns = qfs_be64_get(p + 24);
	*items = count;
	return 0;

corrupt:
	if (why)
		*why = w;
	return QFS_ECORRUPT;
}

/* ---------------------------------------------------------------- plan */

int qfs_arch_plan(const struct qfs_arch_manifest *m, uint64_t t_ns, struct qfs_arch_plan *out)
{
	struct qfs_arch_plan pl = { .snap = -1, .from = 0, .seg_lo = 0, .seg_hi = 0 };
	size_t i;

	for (i = m->nsnaps; i-- > 0;) {
		if (m->snaps[i].time_ns <= t_ns) {
			pl.snap = (long)i;
			pl.from = m->snaps[i].lsn;
			break;
		}
	}
	for (i = 0; i < m->nsegs && m->segs[i].last <= pl.from; i++)
		;
	pl.seg_lo = i;
	if (i < m->nsegs && m->segs[i].first > pl.from + 1)
		return -ENODATA; /* a hole between the starting state and the log */
	for (; i < m->nsegs && m->segs[i].t_first <= t_ns; i++)
		;
	pl.seg_hi = i;
	*out = pl;
	return 0;
}

/* ---------------------------------------------------------------- time */

int qfs_arch_parse_time(const char *s, uint64_t *out_ns)
{
	uint64_t frac = 0, scale = 1000000000ull;
	const char *p;
	struct tm tm;
	time_t sec;

	if (!s || !*s)
		return -EINVAL;
	if (!strcmp(s, "latest") || !strcmp(s, "now")) {
		*out_ns = UINT64_MAX;
		return 0;
	}
	if (s[0] == '@') {
		char *e;
		errno = 0;
		unsigned long long v = strtoull(s + 1, &e, 10);
		if (errno || e == s + 1 || s[1] == '-')
			return -EINVAL;
		p = e;
		sec = (time_t)v;
	} else {
		int n = 0;
		memset(&tm, 0, sizeof(tm));
		if (sscanf(s, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &n) != 3 || n != 10)
			return -EINVAL;
		if (s[10] != 'T' && s[10] != 't' && s[10] != ' ')
			return -EINVAL;
		if (sscanf(s + 11, "%2d:%2d:%2d%n", &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 3 || n != 8)
			return -EINVAL;
		if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
		    tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
			return -EINVAL;
		tm.tm_year -= 1900;
		tm.tm_mon -= 1;
		sec = timegm(&tm);
		if (sec < 0)
			return -EINVAL;
		p = s + 19;
	}
	if (*p == '.' || *p == ',') {
		p++;
		if (*p < '0' || *p > '9')
			return -EINVAL;
		while (*p >= '0' && *p <= '9') {
			if (scale > 1) {
				scale /= 10;
				frac += (uint64_t)(*p - '0') * scale;
			}
			p++;
		}
	}
	if (s[0] != '@') {
		if (*p == 'Z' || *p == 'z')
			p++;
		else if (!strcmp(p, "+00:00") || !strcmp(p, "-00:00"))
			p += 6;
		else
			return -EINVAL;
	}
	if (*p)
		return -EINVAL;
	if ((uint64_t)sec > UINT64_MAX / 1000000000ull - 1)
		return -EINVAL;
	*out_ns = (uint64_t)sec * 1000000000ull + frac;
	return 0;
}
