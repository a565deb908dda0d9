/*
 * item.c - dentry and inode values (contract in item.h, byte layout in
 * doc/format-items.md).
 *
 * Both encodings start with a version byte (QFS_ITEM_VERSION for dentries,
 * QFS_INODE_VERSION for inodes, whose decoder also reads version 1); a
 * decoder that meets another version returns QFS_EFORMAT, one that meets a
 * short, overlong
 * or inconsistent value returns QFS_ECORRUPT.  Decoders never trust a count
 * before checking that the bytes for it are there, so a corrupt value cannot
 * make them allocate much.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include "common/item.h"

#define DENTRY_V1_LEN (1 + 8 + 4 + 8)
#define XATTR_MIN_ENC (2 + 1 + 4) /* name length, 1-byte name, value length */

/* ---- dentry ---- */

/* Append the encoding of d to out (errors latch in out->err). */
void qfs_dentry_encode(const struct qfs_dentry *d, struct qfs_buf *out)
{
	qfs_buf_put_u8(out, QFS_ITEM_VERSION);
	qfs_buf_put_u64(out, d->ino);
	qfs_buf_put_u32(out, d->type);
	qfs_buf_put_u64(out, d->group);
}

/* Decode a dentry value.  0, QFS_EFORMAT (unknown version) or QFS_ECORRUPT
 * (wrong length); *out written only on success. */
int qfs_dentry_decode(const void *p, size_t len, struct qfs_dentry *out)
{
	struct qfs_rd r;
	struct qfs_dentry d;

	if (len == 0)
		return QFS_ECORRUPT;
	if (((const uint8_t *)p)[0] != QFS_ITEM_VERSION)
		return QFS_EFORMAT;
	if (len != DENTRY_V1_LEN)
		return QFS_ECORRUPT;
	qfs_rd_init(&r, p, len);
	(void)qfs_rd_u8(&r);
	d.ino = qfs_rd_u64(&r);
	d.type = qfs_rd_u32(&r);
	d.group = qfs_rd_u64(&r);
	if (r.err)
		return r.err;
	*out = d;
	return 0;
}

/* ---- inode ---- */

/* Zero in: no data, no xattrs. */
void qfs_inode_init(struct qfs_inode *in)
{
	memset(in, 0, sizeof(*in));
}

/* Free everything in owns and zero it. */
void qfs_inode_close(struct qfs_inode *in)
{
	for (uint32_t i = 0; i < in->nxattrs; i++) {
		free(in->xattrs[i].name);
		free(in->xattrs[i].value);
	}
	free(in->xattrs);
	free(in->data);
	qfs_inode_init(in);
}

static void put_ts(struct qfs_buf *b, const struct qfs_ts *t)
{
	qfs_buf_put_u64(b, (uint64_t)t->sec);
	qfs_buf_put_u32(b, t->nsec);
}

static void get_ts(struct qfs_rd *r, struct qfs_ts *t)
{
	t->sec = (int64_t)qfs_rd_u64(r);
	t->nsec = qfs_rd_u32(r);
	if (t->nsec > 999999999u && !r->err)
		r->err = QFS_ECORRUPT;
}

void qfs_attr_put(struct qfs_buf *b, const struct qfs_attr *a)
{
	qfs_buf_put_u64(b, a->ino);
	qfs_buf_put_u32(b, a->mode);
	qfs_buf_put_u32(b, a->uid);
	qfs_buf_put_u32(b, a->gid);
	qfs_buf_put_u32(b, a->nlink);
	qfs_buf_put_u32(b, a->flags);
	qfs_buf_put_u64(b, a->size);
	qfs_buf_put_u64(b, a->rdev);
	put_ts(b, &a->atime);
	put_ts(b, &a->mtime);
	put_ts(b, &a->ctime);
	put_ts(b, &a->btime);
}

void qfs_attr_get(struct qfs_rd *r, struct qfs_attr *a)
{
	a->ino = qfs_rd_u64(r);
	a->mode = qfs_rd_u32(r);
	a->uid = qfs_rd_u32(r);
	a->gid = qfs_rd_u32(r);
	a->nlink = qfs_rd_u32(r);
	a->flags = qfs_rd_u32(r);
	a->size = qfs_rd_u64(r);
	a->rdev = qfs_rd_u64(r);
	get_ts(r, &a->atime);
	get_ts(r, &a->mtime);
	get_ts(r, &a->ctime);
	get_ts(r, &a->btime);
}

/* Append the encoding of in to out (errors latch in out->err).  Nanoseconds
 * must be < 1e9 and xattrs sorted with valid names (the decoder checks). */
void qfs_inode_encode(const struct qfs_inode *in, struct qfs_buf *out)
{
	qfs_buf_put_u8(out, QFS_INODE_VERSION);
	qfs_attr_put(out, &in->a);
	qfs_buf_put_u64(out, in->chunk_bytes);
	qfs_buf_put_u64(out, in->ninodes);
	qfs_buf_put_bytes(out, in->data, in->data_len);
	qfs_buf_put_u32(out, in->nxattrs);
	for (uint32_t i = 0; i < in->nxattrs; i++) {
		size_t nl = strlen(in->xattrs[i].name);
		qfs_buf_put_u16(out, (uint16_t)nl);
		qfs_buf_put(out, in->xattrs[i].name, nl);
		qfs_buf_put_bytes(out, in->xattrs[i].value, in->xattrs[i].len);
	}
}

/* One parsed xattr, pointing into the encoded value. */
struct xa_view {
	const uint8_t *name;
	size_t name_len;
	const uint8_t *val;
	size_t val_len;
};

static int name_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);
	if (c)
		return c;
	return al < bl ? -1 : al > bl;
}

/* st_blocks from what is stored: see item.h. */
uint64_t qfs_inode_blocks(const struct qfs_attr *a, uint64_t chunk_bytes, size_t data_len)
{
	if (!S_ISREG(a->mode))
		return ((uint64_t)data_len + 511) / 512;
	if (chunk_bytes == QFS_COUNT_UNKNOWN)
		return a->size / 512 + (a->size % 512 != 0);
	return (chunk_bytes + data_len + 511) / 512;
}

/* Walk the encoding: attr into *a, counts, data view, xattr count; each xattr is
 * checked (name 1..QFS_XATTR_NAME_MAX without NUL, strictly ascending, value
 * <= QFS_XATTR_VALUE_MAX, total <= QFS_XATTR_TOTAL_MAX) and, when views is
 * non-NULL, stored there (views has room for the count, which the caller got
 * from a first pass with views NULL). */
static int inode_parse(const void *p, size_t len, struct qfs_attr *a, uint64_t *counts,
		       const uint8_t **data, size_t *data_len, uint32_t *nx, struct xa_view *views)
{
	struct qfs_rd r;
	struct xa_view prev = { 0 };
	size_t total = 0;
	uint8_t version;

	if (len == 0)
		return QFS_ECORRUPT;
	version = ((const uint8_t *)p)[0];
	if (version != 1 && version != QFS_INODE_VERSION)
		return QFS_EFORMAT;
	qfs_rd_init(&r, p, len);
	(void)qfs_rd_u8(&r);
	qfs_attr_get(&r, a);
	if (version >= 2) {
		counts[0] = qfs_rd_u64(&r);
		counts[1] = qfs_rd_u64(&r);
	}
	*data = qfs_rd_bytes(&r, data_len);
	*nx = qfs_rd_u32(&r);
	if (r.err)
		return r.err;
	if (version == 1) {
		/* version 1 kept no counts: an inline or empty file has no chunks */
		int chunked = S_ISREG(a->mode) && !(a->flags & QFS_ATTR_INLINE) && a->size > 0;
		counts[0] = chunked ? QFS_COUNT_UNKNOWN : 0;
		counts[1] = QFS_COUNT_UNKNOWN;
	}
	a->blocks = qfs_inode_blocks(a, counts[0], *data_len);
	if (*nx > qfs_rd_left(&r) / XATTR_MIN_ENC)
		return QFS_ECORRUPT;
	for (uint32_t i = 0; i < *nx; i++) {
		struct xa_view v;
		v.name_len = qfs_rd_u16(&r);
		v.name = qfs_rd_raw(&r, v.name_len);
		v.val = qfs_rd_bytes(&r, &v.val_len);
		if (r.err)
			return r.err;
		if (v.name_len == 0 || v.name_len > QFS_XATTR_NAME_MAX ||
		    memchr(v.name, 0, v.name_len) || v.val_len > QFS_XATTR_VALUE_MAX)
			return QFS_ECORRUPT;
		if (i > 0 && name_cmp(prev.name, prev.name_len, v.name, v.name_len) >= 0)
			return QFS_ECORRUPT;
		total += v.name_len + v.val_len;
		if (total > QFS_XATTR_TOTAL_MAX)
			return QFS_ECORRUPT;
		if (views)
			views[i] = v;
		prev = v;
	}
	if (qfs_rd_left(&r) != 0)
		return QFS_ECORRUPT;
	return 0;
}

/* Decode an inode value into out (initialised), copying data and xattrs.
 * 0, -ENOMEM, QFS_ECORRUPT or QFS_EFORMAT; out's old contents are freed only
 * on success, out is untouched on error. */
int qfs_inode_decode(const void *p, size_t len, struct qfs_inode *out)
{
	struct qfs_inode in;
	const uint8_t *data;
	size_t data_len;
	uint32_t nx;
	struct xa_view *views = NULL;
	uint64_t counts[2];
	int rc;

	qfs_inode_init(&in);
	rc = inode_parse(p, len, &in.a, counts, &data, &data_len, &nx, NULL);
	if (rc)
		return rc;
	in.chunk_bytes = counts[0];
	in.ninodes = counts[1];
	if (nx) {
		views = calloc(nx, sizeof(*views));
		in.xattrs = calloc(nx, sizeof(*in.xattrs));
		if (!views || !in.xattrs)
			goto err_free;
		rc = inode_parse(p, len, &in.a, counts, &data, &data_len, &nx, views);
		if (rc)
			goto err_free_rc; /* cannot happen: same bytes as the first pass */
	}
	if (data_len) {
		in.data = malloc(data_len);
		if (!in.data)
			goto err_free;
		memcpy(in.data, data, data_len);
		in.data_len = data_len;
	}
	for (uint32_t i = 0; i < nx; i++) {
		struct qfs_xattr *x = &in.xattrs[i];
		x->name = malloc(views[i].name_len + 1);
		x->value = malloc(views[i].val_len ? views[i].val_len : 1);
		in.nxattrs = i + 1; /* so close frees this slot too */
		if (!x->name || !x->value)
			goto err_free;
		memcpy(x->name, views[i].name, views[i].name_len);
		x->name[views[i].name_len] = '\0';
		if (views[i].val_len)
			memcpy(x->value, views[i].val, views[i].val_len);
		x->len = (uint32_t)views[i].val_len;
	}
	free(views);
	qfs_inode_close(out);
	*out = in;
	return 0;

err_free:
	rc = -ENOMEM;
err_free_rc:
	free(views);
	qfs_inode_close(&in);
	return rc;
}

/* Decode only the attributes (the whole value is still validated).
 * 0, QFS_ECORRUPT or QFS_EFORMAT; *out written only on success. */
int qfs_inode_decode_attr(const void *p, size_t len, struct qfs_attr *out)
{
	struct qfs_attr a;
	const uint8_t *data;
	size_t data_len;
	uint32_t nx;
	uint64_t counts[2];
	int rc = inode_parse(p, len, &a, counts, &data, &data_len, &nx, NULL);
	if (rc)
		return rc;
	*out = a;
	return 0;
}

/* Index of name in in's sorted xattrs, or -(insertion point) - 1. */
static long xattr_index(const struct qfs_inode *in, const char *name)
{
	size_t lo = 0, hi = in->nxattrs;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(in->xattrs[mid].name, name);
		if (c == 0)
			return (long)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -(long)lo - 1;
}

/* The xattr called name, or NULL.  Points into in. */
const struct qfs_xattr *qfs_inode_xattr_find(const struct qfs_inode *in, const char *name)
{
	long i = xattr_index(in, name);
	return i >= 0 ? &in->xattrs[i] : NULL;
}

/* Set name = value[0..len) keeping xattrs sorted.  flags: 0, XATTR_CREATE
 * (-EEXIST if present) or XATTR_REPLACE (-ENODATA if absent); other bits
 * -EINVAL.  -ERANGE for a name of 0 or more than QFS_XATTR_NAME_MAX bytes,
 * -E2BIG for a value over QFS_XATTR_VALUE_MAX, -ENOSPC when the sum of
 * strlen(name) + len over all xattrs would exceed QFS_XATTR_TOTAL_MAX,
 * -ENOMEM.  in is unchanged on error. */
int qfs_inode_xattr_set(struct qfs_inode *in, const char *name, const void *value, uint32_t len,
			int flags)
{
	size_t nl = strlen(name);
	size_t total = 0;
	long idx;

	if (flags & ~(XATTR_CREATE | XATTR_REPLACE))
		return -EINVAL;
	if (nl == 0 || nl > QFS_XATTR_NAME_MAX)
		return -ERANGE;
	if (len > QFS_XATTR_VALUE_MAX)
		return -E2BIG;
	idx = xattr_index(in, name);
	if (idx >= 0 && (flags & XATTR_CREATE))
		return -EEXIST;
	if (idx < 0 && (flags & XATTR_REPLACE))
		return -ENODATA;
	for (uint32_t i = 0; i < in->nxattrs; i++) {
		if ((long)i != idx)
			total += strlen(in->xattrs[i].name) + in->xattrs[i].len;
	}
	if (total + nl + len > QFS_XATTR_TOTAL_MAX)
		return -ENOSPC;

	uint8_t *v = malloc(len ? len : 1);
	if (!v)
		return -ENOMEM;
	if (len)
		memcpy(v, value, len);
	if (idx >= 0) {
		free(in->xattrs[idx].value);
		in->xattrs[idx].value = v;
		in->xattrs[idx].len = len;
		return 0;
	}

	size_t pos = (size_t)(-idx - 1);
	char *n = strdup(name);
	if (!n)
		goto err_free_value;
	struct qfs_xattr *xs = realloc(in->xattrs, (in->nxattrs + 1) * sizeof(*xs));
	if (!xs)
		goto err_free_name;
	in->xattrs = xs;
	memmove(&xs[pos + 1], &xs[pos], (in->nxattrs - pos) * sizeof(*xs));
	xs[pos].name = n;
	xs[pos].value = v;
	xs[pos].len = len;
	in->nxattrs++;
	return 0;

err_free_name:
	free(n);
err_free_value:
	free(v);
	return -ENOMEM;
}

/* Remove the xattr called name: 0 or -ENODATA. */
int qfs_inode_xattr_del(struct qfs_inode *in, const char *name)
{
	long idx = xattr_index(in, name);
	if (idx < 0)
		return -ENODATA;
	free(in->xattrs[idx].name);
	free(in->xattrs[idx].value);
	memmove(&in->xattrs[idx], &in->xattrs[idx + 1],
		(in->nxattrs - (size_t)idx - 1) * sizeof(*in->xattrs));
	in->nxattrs--;
	if (in->nxattrs == 0) {
		free(in->xattrs);
		in->xattrs = NULL;
	}
	return 0;
}

/* Replace the inline data with a copy of p[0..len) (len 0: no data).
 * 0 or -ENOMEM (data unchanged).  Does not touch a.size. */
int qfs_inode_set_data(struct qfs_inode *in, const void *p, size_t len)
{
	uint8_t *d = NULL;
	if (len) {
		d = malloc(len);
		if (!d)
			return -ENOMEM;
		memcpy(d, p, len);
	}
	free(in->data);
	in->data = d;
	in->data_len = len;
	return 0;
}
