/*
 * txn.c - the op list of a transaction and its encoding (contract in txn.h,
 * byte layout and semantics in doc/format-txn.md).
 *
 * Encoding: u8 version, u32 op count, then per op u8 kind and the fields
 * that kind uses, in a fixed order.  Byte strings are u32 length + bytes;
 * xattr names are stored with their terminating NUL so that a decoded op can
 * point its name into the input.  Decoding validates everything the applier
 * relies on (kinds, negative condition errors, NUL-terminated names,
 * nanoseconds) so the store never sees a malformed op.
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/txn.h"

#define OP_MIN_ENC (1 + 4) /* kind + one empty key */

/* Empty txn; allocates nothing. */
void qfs_txn_init(struct qfs_txn *t)
{
	t->ops = NULL;
	t->nops = 0;
	t->cap = 0;
}

/* Free the op array (not what ops point to) and leave t empty. */
void qfs_txn_close(struct qfs_txn *t)
{
	free(t->ops);
	qfs_txn_init(t);
}

/* Append a zeroed op of kind; NULL on -ENOMEM (t unchanged).  The returned
 * pointer is valid until the next add. */
struct qfs_op *qfs_txn_add(struct qfs_txn *t, enum qfs_op_kind kind)
{
	if (t->nops == t->cap) {
		uint32_t cap = t->cap ? t->cap * 2 : 4;
		if (cap < t->cap)
			return NULL;
		struct qfs_op *ops = realloc(t->ops, (size_t)cap * sizeof(*ops));
		if (!ops)
			return NULL;
		t->ops = ops;
		t->cap = cap;
	}
	struct qfs_op *op = &t->ops[t->nops++];
	memset(op, 0, sizeof(*op));
	op->kind = kind;
	return op;
}

static void put_name(struct qfs_buf *b, const char *name)
{
	qfs_buf_put_bytes(b, name, strlen(name) + 1);
}

/* A NUL-terminated name of 1..QFS_XATTR_NAME_MAX bytes, pointing into r. */
static const char *get_name(struct qfs_rd *r)
{
	size_t n;
	const uint8_t *p = qfs_rd_bytes(r, &n);
	if (r->err)
		return NULL;
	if (n < 2 || n > QFS_XATTR_NAME_MAX + 1 || p[n - 1] != '\0' || memchr(p, 0, n - 1)) {
		r->err = QFS_ECORRUPT;
		return NULL;
	}
	return (const char *)p;
}

static const uint8_t *get_str(struct qfs_rd *r, uint32_t *len)
{
	size_t n;
	const uint8_t *p = qfs_rd_bytes(r, &n);
	*len = (uint32_t)n;
	return p;
}

static void get_err(struct qfs_rd *r, int32_t *err)
{
	*err = (int32_t)qfs_rd_u32(r);
	if (*err >= 0 && !r->err)
		r->err = QFS_ECORRUPT;
}

/* 1 if a txn of version may hold kind: 1..12 in version 1, up to 14 in
 * version 2, and in version 3 the kinds of ops 15-20 this build knows. */
static int kind_known(uint8_t kind, uint8_t version)
{
	if (kind >= QFS_OP_PUT && kind <= QFS_OP_XDEL)
		return 1;
	if (kind == QFS_OP_LINK_ADD || kind == QFS_OP_LINK_DROP)
		return version >= 2;
	if (kind >= QFS_OP_PREPARE && kind <= QFS_OP_RANGE)
		return version >= 3;
	return 0;
}

/* Append the encoding of t to out (errors latch in out->err).  Condition ops
 * must carry a negative err and XSET/XDEL a name (asserted). */
void qfs_txn_encode(const struct qfs_txn *t, struct qfs_buf *out)
{
	uint8_t version = 1;

	for (uint32_t i = 0; i < t->nops; i++) {
		enum qfs_op_kind k = t->ops[i].kind;
		if ((k == QFS_OP_LINK_ADD || k == QFS_OP_LINK_DROP) && version < 2)
			version = 2;
		else if (k >= QFS_OP_PREPARE)
			version = 3;
	}
	qfs_buf_put_u8(out, version);
	qfs_buf_put_u32(out, t->nops);
	for (uint32_t i = 0; i < t->nops; i++) {
		const struct qfs_op *op = &t->ops[i];
		qfs_buf_put_u8(out, (uint8_t)op->kind);
		qfs_buf_put_bytes(out, op->key, op->key_len);
		switch (op->kind) {
		case QFS_OP_PUT:
		case QFS_OP_SETDATA:
			qfs_buf_put_bytes(out, op->val, op->val_len);
			break;
		case QFS_OP_DEL:
			break;
		case QFS_OP_DEL_RANGE:
			qfs_buf_put_bytes(out, op->key2, op->key2_len);
			break;
		case QFS_OP_EXPECT_ABSENT:
		case QFS_OP_EXPECT_PRESENT:
			assert(op->err < 0);
			qfs_buf_put_u32(out, (uint32_t)op->err);
			break;
		case QFS_OP_EXPECT_VALUE:
			assert(op->err < 0);
			qfs_buf_put_bytes(out, op->val, op->val_len);
			qfs_buf_put_u32(out, (uint32_t)op->err);
			break;
		case QFS_OP_EXPECT_EMPTY:
			assert(op->err < 0);
			qfs_buf_put_bytes(out, op->key2, op->key2_len);
			qfs_buf_put_u32(out, (uint32_t)op->err);
			break;
		case QFS_OP_SETATTR:
			qfs_buf_put_u32(out, op->mask);
			qfs_attr_put(out, &op->attr);
			break;
		case QFS_OP_NLINK:
			qfs_buf_put_u32(out, (uint32_t)op->delta);
			break;
		case QFS_OP_XSET:
			assert(op->name);
			put_name(out, op->name);
			qfs_buf_put_bytes(out, op->val, op->val_len);
			qfs_buf_put_u32(out, (uint32_t)op->flags);
			break;
		case QFS_OP_XDEL:
			assert(op->name);
			put_name(out, op->name);
			break;
		case QFS_OP_LINK_ADD:
			qfs_buf_put_u32(out, op->limit);
			break;
		case QFS_OP_LINK_DROP:
			qfs_buf_put_bytes(out, op->key2, op->key2_len);
			qfs_buf_put_bytes(out, op->val, op->val_len);
			break;
		case QFS_OP_RANGE:
			assert(op->err < 0);
			qfs_buf_put_bytes(out, op->val, op->val_len);
			qfs_buf_put_u32(out, (uint32_t)op->err);
			break;
		case QFS_OP_PREPARE:
		case QFS_OP_DECIDE:
			qfs_buf_put_bytes(out, op->val, op->val_len);
			break;
		case QFS_OP_COMMIT:
		case QFS_OP_ABORT:
			break;
		case QFS_OP_PATCH:
			qfs_buf_put_u32(out, op->offset);
			qfs_buf_put_bytes(out, op->val, op->val_len);
			break;
		default:
			assert(!"unknown op kind");
		}
	}
}

/* See txn.h. */
size_t qfs_txn_encoded_len(const struct qfs_txn *t)
{
	struct qfs_buf b;

	qfs_buf_init_count(&b);
	qfs_txn_encode(t, &b);
	return b.len;
}

/* Decode p[0..len) into t (initialised, empty); ops point into p.  0,
 * -ENOMEM, QFS_EFORMAT (unknown version) or QFS_ECORRUPT (short, trailing
 * bytes, unknown kind (one newer than the txn's version: LINK_ADD/LINK_DROP
 * in a version-1 txn, ops 15-19 below version 3), non-negative condition
 * error, bad name); t is left empty on error. */
int qfs_txn_decode(const void *p, size_t len, struct qfs_txn *t)
{
	struct qfs_rd r;
	uint32_t nops;
	uint8_t version;
	int rc;

	if (len == 0)
		return QFS_ECORRUPT;
	version = ((const uint8_t *)p)[0];
	if (version < QFS_TXN_VERSION_MIN || version > QFS_TXN_VERSION)
		return QFS_EFORMAT;
	qfs_rd_init(&r, p, len);
	(void)qfs_rd_u8(&r);
	nops = qfs_rd_u32(&r);
	if (r.err)
		return r.err;
	if (nops > qfs_rd_left(&r) / OP_MIN_ENC)
		return QFS_ECORRUPT;
	for (uint32_t i = 0; i < nops; i++) {
		uint8_t kind = qfs_rd_u8(&r);
		if (r.err) {
			rc = r.err;
			goto err_close;
		}
		if (!kind_known(kind, version)) {
			rc = QFS_ECORRUPT;
			goto err_close;
		}
		struct qfs_op *op = qfs_txn_add(t, (enum qfs_op_kind)kind);
		if (!op) {
			rc = -ENOMEM;
			goto err_close;
		}
		op->key = get_str(&r, &op->key_len);
		switch (op->kind) {
		case QFS_OP_PUT:
		case QFS_OP_SETDATA:
			op->val = get_str(&r, &op->val_len);
			break;
		case QFS_OP_DEL:
			break;
		case QFS_OP_DEL_RANGE:
			op->key2 = get_str(&r, &op->key2_len);
			break;
		case QFS_OP_EXPECT_ABSENT:
		case QFS_OP_EXPECT_PRESENT:
			get_err(&r, &op->err);
			break;
		case QFS_OP_EXPECT_VALUE:
			op->val = get_str(&r, &op->val_len);
			get_err(&r, &op->err);
			break;
		case QFS_OP_EXPECT_EMPTY:
			op->key2 = get_str(&r, &op->key2_len);
			get_err(&r, &op->err);
			break;
		case QFS_OP_SETATTR:
			op->mask = qfs_rd_u32(&r);
			qfs_attr_get(&r, &op->attr);
			break;
		case QFS_OP_NLINK:
			op->delta = (int32_t)qfs_rd_u32(&r);
			break;
		case QFS_OP_XSET:
			op->name = get_name(&r);
			op->val = get_str(&r, &op->val_len);
			op->flags = (int32_t)qfs_rd_u32(&r);
			break;
		case QFS_OP_XDEL:
			op->name = get_name(&r);
			break;
		case QFS_OP_LINK_ADD:
			op->limit = qfs_rd_u32(&r);
			break;
		case QFS_OP_LINK_DROP:
			op->key2 = get_str(&r, &op->key2_len);
			op->val = get_str(&r, &op->val_len);
			break;
		case QFS_OP_RANGE:
			op->val = get_str(&r, &op->val_len);
			get_err(&r, &op->err);
			break;
		case QFS_OP_PREPARE:
		case QFS_OP_DECIDE:
			op->val = get_str(&r, &op->val_len);
			break;
		case QFS_OP_COMMIT:
		case QFS_OP_ABORT:
			break;
		case QFS_OP_PATCH:
			op->offset = qfs_rd_u32(&r);
			op->val = get_str(&r, &op->val_len);
			break;
		}
		if (r.err) {
			rc = r.err;
			goto err_close;
		}
	}
	if (qfs_rd_left(&r) != 0) {
		rc = QFS_ECORRUPT;
		goto err_close;
	}
	return 0;

err_close:
	qfs_txn_close(t);
	return rc;
}
