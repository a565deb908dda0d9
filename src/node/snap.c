/*
 * snap.c - codec of the rnode's snapshot frames (contract: snap.h; format:
 * doc/format-net.md section 7).
 *
 *   frame header (net/frame.h, type 0xf1), then the body:
 *     be32 "QSNP" | u8 version 1 | u8 flags | be16 0 | be32 from |
 *           be32 to | be64 group | be64 xfer | be32 seq | be32 n |
 *           be64 lsn | be64 ballot | be64 total |
 *           n x (be32 klen | be32 vlen | key | val)
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "node/snap.h"

#define HDR QFS_NET_FRAME_HDR

/* See snap.h. */
void qfs_snap_start(struct qfs_buf *b)
{
	static const uint8_t zero[HDR + QFS_SNAP_BODY_FIXED];

	qfs_buf_reset(b);
	qfs_buf_put(b, zero, sizeof(zero));
}

/* See snap.h. */
void qfs_snap_add(struct qfs_buf *b, const uint8_t *key, size_t key_len, const uint8_t *val,
		  size_t val_len)
{
	qfs_buf_put_u32(b, (uint32_t)key_len);
	qfs_buf_put_u32(b, (uint32_t)val_len);
	qfs_buf_put(b, key, key_len);
	qfs_buf_put(b, val, val_len);
}

/* See snap.h. */
int qfs_snap_finish(struct qfs_buf *b, const struct qfs_snap_chunk *c)
{
	uint8_t *p;

	if (b->err)
		return b->err;
	if (b->len < HDR + QFS_SNAP_BODY_FIXED || b->len > QFS_NET_FRAME_MAX)
		return -EINVAL;
	p = b->data + HDR;
	qfs_be32_put(p, QFS_SNAP_MAGIC);
	p[4] = QFS_SNAP_VERSION;
	p[5] = (c->last ? QFS_SNAP_LAST : 0) | (c->ack ? QFS_SNAP_ACK : 0);
	p[6] = p[7] = 0;
	qfs_be32_put(p + 8, c->from);
	qfs_be32_put(p + 12, c->to);
	qfs_be64_put(p + 16, c->group);
	qfs_be64_put(p + 24, c->xfer);
	qfs_be32_put(p + 32, c->seq);
	qfs_be32_put(p + 36, c->n);
	qfs_be64_put(p + 40, c->last ? c->lsn : 0);
	qfs_be64_put(p + 48, c->last ? c->ballot : 0);
	qfs_be64_put(p + 56, c->last ? c->total : 0);
	qfs_net_frame_seal(b->data, QFS_SNAP_FRAME_TYPE, b->len - HDR);
	return 0;
}

/* See snap.h. */
int qfs_snap_decode(const void *buf, size_t len, struct qfs_snap_chunk *out)
{
	const uint8_t *p = buf;
	struct qfs_snap_chunk c;
	size_t pos = 0;

	if (len < QFS_SNAP_BODY_FIXED || len > QFS_NET_BODY_MAX)
		return QFS_ECORRUPT;
	if (qfs_be32_get(p) != QFS_SNAP_MAGIC)
		return QFS_ECORRUPT;
	if (p[4] != QFS_SNAP_VERSION)
		return QFS_EFORMAT;
	if ((p[5] & ~(QFS_SNAP_LAST | QFS_SNAP_ACK)) || p[6] || p[7])
		return QFS_ECORRUPT;
	memset(&c, 0, sizeof(c));
	c.last = p[5] & QFS_SNAP_LAST;
	c.ack = (p[5] & QFS_SNAP_ACK) != 0;
	c.from = qfs_be32_get(p + 8);
	c.to = qfs_be32_get(p + 12);
	c.group = qfs_be64_get(p + 16);
	c.xfer = qfs_be64_get(p + 24);
	c.seq = qfs_be32_get(p + 32);
	c.n = qfs_be32_get(p + 36);
	c.lsn = qfs_be64_get(p + 40);
	c.ballot = qfs_be64_get(p + 48);
	c.total = qfs_be64_get(p + 56);
	if (!c.last && (c.lsn || c.ballot || c.total))
		return QFS_ECORRUPT;
	if (c.ack && (c.last || c.n || len != QFS_SNAP_BODY_FIXED))
		return QFS_ECORRUPT;
	c.items = p + QFS_SNAP_BODY_FIXED;
	c.items_len = len - QFS_SNAP_BODY_FIXED;
	/* The items must be exactly n well-formed records. */
	for (uint32_t i = 0; i < c.n; i++) {
		uint64_t kl, vl;

		if (c.items_len - pos < 8)
			return QFS_ECORRUPT;
		kl = qfs_be32_get(c.items + pos);
		vl = qfs_be32_get(c.items + pos + 4);
		pos += 8;
		if (kl + vl > c.items_len - pos)
			return QFS_ECORRUPT;
		pos += (size_t)(kl + vl);
	}
	if (pos != c.items_len)
		return QFS_ECORRUPT;
	*out = c;
	return 0;
}

/* See snap.h. */
int qfs_snap_next(const struct qfs_snap_chunk *c, size_t *pos, const uint8_t **key,
		  size_t *key_len, const uint8_t **val, size_t *val_len)
{
	size_t p = *pos, kl, vl;

	if (p + 8 > c->items_len)
		return 0;
	kl = qfs_be32_get(c->items + p);
	vl = qfs_be32_get(c->items + p + 4);
	*key = c->items + p + 8;
	*key_len = kl;
	*val = c->items + p + 8 + kl;
	*val_len = vl;
	*pos = p + 8 + kl + vl;
	return 1;
}
