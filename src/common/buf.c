/*
 * buf.c - growable byte buffer and bounds-checked reader (contract in buf.h).
 *
 * Errors latch: a writer that failed to grow keeps b->err = -ENOMEM and
 * ignores further puts; a reader that overran keeps r->err = QFS_ECORRUPT and
 * returns zeros/NULL, so codecs check once at the end.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/qfs.h"

/* Empty buffer; allocates nothing. */
void qfs_buf_init(struct qfs_buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->err = 0;
	b->count = 0;
}

/* See buf.h. */
void qfs_buf_init_count(struct qfs_buf *b)
{
	qfs_buf_init(b);
	b->count = 1;
}

/* Free the data and leave b empty (safe to reuse or close again). */
void qfs_buf_close(struct qfs_buf *b)
{
	free(b->data);
	qfs_buf_init(b);
}

/* Forget the contents and the latched error; keeps the allocation. */
void qfs_buf_reset(struct qfs_buf *b)
{
	b->len = 0;
	b->err = 0;
}

/* Make room for 'more' bytes past len.  0, or -ENOMEM (latched in b->err;
 * contents unchanged).  Returns the latched error if one is already set. */
int qfs_buf_reserve(struct qfs_buf *b, size_t more)
{
	if (b->err)
		return b->err;
	if (more <= b->cap - b->len)
		return 0;
	if (more > SIZE_MAX - b->len) {
		b->err = -ENOMEM;
		return b->err;
	}
	size_t need = b->len + more;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	uint8_t *p = realloc(b->data, cap);
	if (!p) {
		b->err = -ENOMEM;
		return b->err;
	}
	b->data = p;
	b->cap = cap;
	return 0;
}

/* Append n bytes of p (p may be NULL when n is 0). */
void qfs_buf_put(struct qfs_buf *b, const void *p, size_t n)
{
	if (b->count) {
		b->len += n;
		return;
	}
	if (n == 0 || qfs_buf_reserve(b, n))
		return;
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

/* Append v (one byte). */
void qfs_buf_put_u8(struct qfs_buf *b, uint8_t v)
{
	qfs_buf_put(b, &v, 1);
}

/* Append v big-endian. */
void qfs_buf_put_u16(struct qfs_buf *b, uint16_t v)
{
	uint8_t t[2] = { (uint8_t)(v >> 8), (uint8_t)v };
	qfs_buf_put(b, t, 2);
}

/* Append v big-endian. */
void qfs_buf_put_u32(struct qfs_buf *b, uint32_t v)
{
	uint8_t t[4];
	qfs_be32_put(t, v);
	qfs_buf_put(b, t, 4);
}

/* Append v big-endian. */
void qfs_buf_put_u64(struct qfs_buf *b, uint64_t v)
{
	uint8_t t[8];
	qfs_be64_put(t, v);
	qfs_buf_put(b, t, 8);
}

/* Append a u32 length then the n bytes.  n > UINT32_MAX latches -ENOMEM
 * (nothing we encode is that large). */
void qfs_buf_put_bytes(struct qfs_buf *b, const void *p, size_t n)
{
	if (n > UINT32_MAX) {
		if (!b->err)
			b->err = -ENOMEM;
		return;
	}
	qfs_buf_put_u32(b, (uint32_t)n);
	qfs_buf_put(b, p, n);
}

/* Hand the data to the caller (who frees it) and reset b to empty; *len gets
 * the byte count.  Returns NULL when there is no data. */
uint8_t *qfs_buf_steal(struct qfs_buf *b, size_t *len)
{
	uint8_t *p = b->data;
	*len = b->len;
	qfs_buf_init(b);
	return p;
}

/* Reader over p[0..len); p is borrowed. */
void qfs_rd_init(struct qfs_rd *r, const void *p, size_t len)
{
	r->p = p;
	r->end = len ? r->p + len : r->p;
	r->err = 0;
}

/* Pointer to the next n bytes, advancing past them; NULL and err latched
 * (reader moved to its end) when fewer are left.  Callers test r->err, not
 * the pointer: n == 0 over an empty NULL input returns NULL without error. */
const uint8_t *qfs_rd_raw(struct qfs_rd *r, size_t n)
{
	if (r->err || n > qfs_rd_left(r)) {
		r->err = QFS_ECORRUPT;
		r->p = r->end;
		return NULL;
	}
	const uint8_t *p = r->p;
	r->p += n;
	return p;
}

/* Next byte, or 0 on overrun. */
uint8_t qfs_rd_u8(struct qfs_rd *r)
{
	const uint8_t *p = qfs_rd_raw(r, 1);
	return p ? p[0] : 0;
}

/* Next big-endian u16, or 0 on overrun. */
uint16_t qfs_rd_u16(struct qfs_rd *r)
{
	const uint8_t *p = qfs_rd_raw(r, 2);
	return p ? (uint16_t)((p[0] << 8) | p[1]) : 0;
}

/* Next big-endian u32, or 0 on overrun. */
uint32_t qfs_rd_u32(struct qfs_rd *r)
{
	const uint8_t *p = qfs_rd_raw(r, 4);
	return p ? qfs_be32_get(p) : 0;
}

/* Next big-endian u64, or 0 on overrun. */
uint64_t qfs_rd_u64(struct qfs_rd *r)
{
	const uint8_t *p = qfs_rd_raw(r, 8);
	return p ? qfs_be64_get(p) : 0;
}

/* A u32 length then that many bytes: returns a pointer into the input and
 * sets *n, or NULL (err latched, *n = 0) on overrun.  A zero length returns a
 * non-NULL pointer (possibly the end). */
const uint8_t *qfs_rd_bytes(struct qfs_rd *r, size_t *n)
{
	uint32_t l = qfs_rd_u32(r);
	const uint8_t *p = qfs_rd_raw(r, l);
	*n = p ? l : 0;
	return p;
}

/* See buf.h. */
void qfs_buf_printf(struct qfs_buf *b, const char *fmt, ...)
{
	va_list ap;
	char small[256];

	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(small)) {
		qfs_buf_put(b, small, (size_t)n);
		return;
	}
	if (qfs_buf_reserve(b, (size_t)n + 1) != 0)
		return;
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* 1 if byte c must be written as \ooo (see buf.h). */
static int esc_needed(unsigned char c)
{
	return c <= ' ' || c == '\\' || c == 0x7f;
}

/* See buf.h. */
void qfs_buf_put_esc(struct qfs_buf *b, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (esc_needed(*p))
			qfs_buf_printf(b, "\\%03o", *p);
		else
			qfs_buf_put_u8(b, *p);
	}
}

/* See buf.h. */
void qfs_unesc(char *s)
{
	char *w = s;

	for (char *r = s; *r; r++) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' && r[3] >= '0' &&
		    r[3] <= '7') {
			*w++ = (char)((r[1] - '0') << 6 | (r[2] - '0') << 3 | (r[3] - '0'));
			r += 3;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
}

/* See buf.h. */
int qfs_mountinfo_split(char *line, struct qfs_mountinfo *m)
{
	char *save = NULL, *fld[5], *tok = strtok_r(line, " \n", &save);
	int i;

	for (i = 0; i < 5 && tok; i++) {
		fld[i] = tok;
		tok = strtok_r(NULL, " \n", &save);
	}
	if (i < 5)
		return -1;
	qfs_unesc(fld[4]);
	m->devno = fld[2];
	m->mountpoint = fld[4];
	m->fstype = m->source = NULL;
	while (tok && strcmp(tok, "-") != 0)
		tok = strtok_r(NULL, " \n", &save);
	if (tok && (tok = strtok_r(NULL, " \n", &save)) != NULL) {
		m->fstype = tok;
		if ((tok = strtok_r(NULL, " \n", &save)) != NULL) {
			qfs_unesc(tok);
			m->source = tok;
		}
	}
	return 0;
}

/* See buf.h. */
const char *qfs_esc(const char *s, char *out, size_t len)
{
	size_t n = 0;

	if (len == 0)
		return "";
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (esc_needed(*p)) {
			if (n + 4 >= len)
				break;
			snprintf(out + n, len - n, "\\%03o", *p);
			n += 4;
		} else {
			if (n + 1 >= len)
				break;
			out[n++] = (char)*p;
		}
	}
	out[n] = '\0';
	return out;
}

/* See buf.h. */
void qfs_val_adopt(struct qfs_val *v, void *p, size_t len)
{
	v->data = p;
	v->len = len;
	v->release = p ? free : NULL;
	v->own = p;
}

/* See buf.h. */
void qfs_val_release(struct qfs_val *v)
{
	void (*rel)(void *) = v->release;
	void *own = v->own;

	memset(v, 0, sizeof(*v));
	if (rel)
		rel(own);
}

/* See buf.h. */
int qfs_val_copy_out(struct qfs_val *v, void **p, size_t *len)
{
	void *copy = malloc(v->len ? v->len : 1);

	if (!copy) {
		qfs_val_release(v);
		return -ENOMEM;
	}
	if (v->len)
		memcpy(copy, v->data, v->len);
	*p = copy;
	*len = v->len;
	qfs_val_release(v);
	return 0;
}
