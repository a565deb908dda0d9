/*
 * frame.h - the one frame header of quorumfs's wire (doc/format-net.md
 * section 1).  It is defined here and nowhere else: the codecs of the
 * messages (repl/paxos_msg.c for Multi-Paxos, node/snap.c for snapshot
 * chunks) encode bodies only; their driver (src/node) reserves
 * QFS_NET_FRAME_HDR bytes in front of a body and seals the frame with
 * qfs_net_frame_seal(), and opens a received frame with
 * qfs_net_frame_open() before it hands the body to a decoder.  The CRC
 * guards bytes that crossed a socket: frames the in-process transport
 * moves between the nodes of one process are not summed (doc/format-net.md
 * section 1, "In-process frames").
 *
 *   be32 magic "QPAX" | u8 version | u8 type | be16 0 | be32 body length |
 *   be32 CRC32C(header bytes 0..11, body) | body
 *
 * Pure code, no allocation; thread-safe.
 */
#ifndef QFS_NET_FRAME_H
#define QFS_NET_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "common/qfs.h"

#define QFS_NET_MAGIC 0x51504158u   /* "QPAX" */
#define QFS_NET_VERSION 2           /* of the header, the hello and every body;
				     * 2: authenticated tcp (doc/format-net.md) */
#define QFS_NET_FRAME_HDR 16
/* Largest body: a Paxos ACCEPT of 64 entries of up to 64 MiB in all, or a
 * snapshot chunk; one bound for every type. */
#define QFS_NET_BODY_MAX (128u + 64u * 32u + (64u << 20))
#define QFS_NET_FRAME_MAX (QFS_NET_FRAME_HDR + QFS_NET_BODY_MAX)

/* Frame types: 1..0xef belong to the Multi-Paxos codec (repl/paxos.h);
 * the others are reserved here. */
#define QFS_NET_HELLO 0xf0          /* tcp handshake (net itself) */
#define QFS_NET_SNAP 0xf1           /* rnode snapshot chunk (node/snap.h) */
#define QFS_NET_AUTH 0xf2           /* tcp handshake: the connector's proof */

/* Write the header of the frame at frame[0..QFS_NET_FRAME_HDR) whose body
 * of body_len bytes (at most QFS_NET_BODY_MAX) follows it: magic, version,
 * type, length and the CRC over both. */
void qfs_net_frame_seal(void *frame, uint8_t type, size_t body_len);

/* qfs_net_frame_seal in two halves: the header with a CRC field of 0 (a
 * frame for qfs_net_send_frame(), which sets the CRC when the frame leaves
 * the process: net.h), and the CRC over header and body_len bytes of body
 * (the header already written). */
void qfs_net_frame_seal_hdr(void *frame, uint8_t type, size_t body_len);
void qfs_net_frame_crc_set(void *frame, size_t body_len);

/* Check the len-byte frame: magic, body length = len - header, CRC, then
 * version and reserved bytes.  0 with *type, *body (points into frame) and
 * *body_len, written only on success; QFS_ECORRUPT (short, bad magic,
 * length, CRC or reserved bytes) or QFS_EFORMAT (an intact frame of
 * another version). */
int qfs_net_frame_open(const void *frame, size_t len, uint8_t *type, const uint8_t **body,
		       size_t *body_len);

/* qfs_net_frame_open without the CRC check, for a frame that never left
 * this process's memory (the in-process transport delivered it: struct
 * qfs_net_frame's local; qfs_net_frame_open_rx decides).  Every other
 * check is the same. */
int qfs_net_frame_open_local(const void *frame, size_t len, uint8_t *type, const uint8_t **body,
			     size_t *body_len);

#endif
