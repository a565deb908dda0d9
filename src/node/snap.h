/*
 * snap.h - the rnode's snapshot frames: a leader ships the applied state of
 * one group to a follower whose next log entry it released (doc/rnode.md
 * section 6, wire format: doc/format-net.md section 7).
 *
 * This codec encodes and decodes the body; the frame header around it is
 * src/net's (net/frame.h), with the reserved type QFS_SNAP_FRAME_TYPE
 * (never a Paxos type): qfs_snap_finish() seals the frame with
 * qfs_net_frame_seal(), and the receiver opens it with qfs_net_frame_open()
 * and hands the body of that type to qfs_snap_decode().  The body has its
 * own magic "QSNP" and version.  A transfer is a sequence of chunks 0, 1, ... of one
 * transfer id; the last one carries the snapshot point (LSN and ballot of
 * the last applied entry) and the total item count.  The receiver answers
 * each chunk it took with an ACK frame (same body, flag QFS_SNAP_ACK, no
 * items), which lets the sender keep only a window of chunks in flight.
 *
 * Pure codec: no I/O, no allocation besides the caller's qfs_buf;
 * thread-safe.
 */
#ifndef QFS_NODE_SNAP_H
#define QFS_NODE_SNAP_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/qfs.h"
#include "net/frame.h"

#define QFS_SNAP_FRAME_TYPE QFS_NET_SNAP /* frame header type (net/frame.h) */
#define QFS_SNAP_MAGIC 0x51534e50u   /* "QSNP" */
#define QFS_SNAP_VERSION 1
#define QFS_SNAP_BODY_FIXED 64       /* body bytes before the items */
#define QFS_SNAP_LAST 0x01           /* flags: last chunk of the transfer */
#define QFS_SNAP_ACK 0x02            /* flags: the receiver's acknowledgement of
				      * chunks 0..seq (from: the receiver; no
				      * items, never with LAST) */

/* One chunk.  Items: n x (be32 klen | be32 vlen | key | val) at items. */
struct qfs_snap_chunk {
	uint32_t from, to;       /* node ids */
	uint64_t group;
	uint64_t xfer;           /* transfer id, chosen by the sender */
	uint32_t seq;            /* 0, 1, ... within the transfer */
	uint32_t n;              /* items in this chunk */
	int last;                /* 1: last chunk; lsn, ballot, total valid */
	int ack;                 /* 1: an acknowledgement of chunks 0..seq */
	qfs_lsn_t lsn;           /* last: the applied LSN the items are the state of */
	uint64_t ballot;         /* last: ballot of the log entry at lsn */
	uint64_t total;          /* last: items in the whole transfer */
	const uint8_t *items;    /* decode: points into the frame */
	size_t items_len;
};

/* Start a chunk frame in b (reset first): reserves the frame header and the
 * body's fixed part, items follow. */
void qfs_snap_start(struct qfs_buf *b);
/* Append one item to the chunk in b (b->err latches -ENOMEM). */
void qfs_snap_add(struct qfs_buf *b, const uint8_t *key, size_t key_len, const uint8_t *val,
		  size_t val_len);
/* Fill the body fields from c (n, last, lsn... ; items ignored) and seal
 * the frame (qfs_net_frame_seal): b then holds a whole frame for
 * qfs_net_send().  Returns 0, or -ENOMEM (b->err) / -EINVAL (frame over
 * QFS_NET_FRAME_MAX). */
int qfs_snap_finish(struct qfs_buf *b, const struct qfs_snap_chunk *c);

/* Decode and check the len-byte body of a frame of type QFS_SNAP_FRAME_TYPE
 * (its header checked by qfs_net_frame_open): body magic and version,
 * reserved bytes, flags, item framing (exactly n items filling the body).
 * *out (items point into buf) is written only on success.  0, QFS_ECORRUPT,
 * or QFS_EFORMAT (a body of another version). */
int qfs_snap_decode(const void *buf, size_t len, struct qfs_snap_chunk *out);

/* Iterate the items of a decoded chunk: *pos starts at 0; returns 1 with
 * the next item, 0 at the end. */
int qfs_snap_next(const struct qfs_snap_chunk *c, size_t *pos, const uint8_t **key,
		  size_t *key_len, const uint8_t **val, size_t *val_len);

#endif
