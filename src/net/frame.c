/*
 * frame.c - the frame header of the wire (contract: frame.h; format:
 * doc/format-net.md section 1).
 */
#include "config.h"

#include "common/buf.h"
#include "common/crc32c.h"
#include "net/frame.h"

static uint32_t frame_crc(const uint8_t *b, size_t body_len)
{
	uint32_t crc = qfs_crc32c(0, b, 12);

	return qfs_crc32c(crc, b + QFS_NET_FRAME_HDR, body_len);
}

/* See frame.h. */
void qfs_net_frame_seal_hdr(void *frame, uint8_t type, size_t body_len)
{
	uint8_t *b = frame;

	qfs_be32_put(b, QFS_NET_MAGIC);
	b[4] = QFS_NET_VERSION;
	b[5] = type;
	b[6] = b[7] = 0;
	qfs_be32_put(b + 8, (uint32_t)body_len);
	qfs_be32_put(b + 12, 0);
}

/* See frame.h. */
void qfs_net_frame_crc_set(void *frame, size_t body_len)
{
	uint8_t *b = frame;

	qfs_be32_put(b + 12, frame_crc(b, body_len));
}

/* See frame.h. */
void qfs_net_frame_seal(void *frame, uint8_t type, size_t body_len)
{
	qfs_net_frame_seal_hdr(frame, type, body_len);
	qfs_net_frame_crc_set(frame, body_len);
}

/* qfs_net_frame_open, with the CRC checked only if crc. */
static int frame_open(const void *frame, size_t len, int crc, uint8_t *type, const uint8_t **body,
		      size_t *body_len)
{
	const uint8_t *b = frame;

	if (len < QFS_NET_FRAME_HDR || len > QFS_NET_FRAME_MAX || qfs_be32_get(b) != QFS_NET_MAGIC ||
	    (size_t)qfs_be32_get(b + 8) != len - QFS_NET_FRAME_HDR)
		return QFS_ECORRUPT;
	if (crc && frame_crc(b, len - QFS_NET_FRAME_HDR) != qfs_be32_get(b + 12))
		return QFS_ECORRUPT;
	/* The version is checked after the CRC: a corrupt byte is corruption,
	 * an intact frame of another version is a format we do not speak. */
	if (b[4] != QFS_NET_VERSION)
		return QFS_EFORMAT;
	if (b[6] || b[7])
		return QFS_ECORRUPT;
	*type = b[5];
	*body = b + QFS_NET_FRAME_HDR;
	*body_len = len - QFS_NET_FRAME_HDR;
	return 0;
}

/* See frame.h. */
int qfs_net_frame_open(const void *frame, size_t len, uint8_t *type, const uint8_t **body,
		       size_t *body_len)
{
	return frame_open(frame, len, 1, type, body, body_len);
}

/* See frame.h. */
int qfs_net_frame_open_local(const void *frame, size_t len, uint8_t *type, const uint8_t **body,
			     size_t *body_len)
{
	return frame_open(frame, len, 0, type, body, body_len);
}
