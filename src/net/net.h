/*
 * net.h - transport of replication frames between storage nodes
 * (framing, handshake, queueing and drop policy: doc/format-net.md).
 *
 * One interface, two transports: QFS_NET_INPROC moves frames between
 * endpoints of the same process (the embedded default: three nodes inside
 * the mount process), QFS_NET_TCP moves them over TCP between processes or
 * hosts.  The transport carries frames whose 16-byte header is src/net's
 * own (net/frame.h: magic, version, type, length, CRC), sealed around a
 * body of a message codec (repl/paxos.h, node/snap.h) by the sender with
 * qfs_net_frame_seal(); on send and on tcp receipt it checks magic, version
 * and length bound; the CRC is checked by qfs_net_frame_open() where the
 * receiver opens the frame.
 *
 * The network is lossy by contract: qfs_net_send() never blocks; a frame is
 * dropped (and counted) when the peer is unknown, down or cut off by the
 * partition hook, or when a byte bound on a queue would be exceeded: the
 * receiver's whole inbox (inbox_bytes) or the sender's share of it
 * (link_bytes), and for tcp the sender's queue (send_queue_bytes).  So
 * the frames a net holds in memory are bounded: per endpoint, its inbox
 * (plus, tcp, one send queue per peer).  Paxos
 * retransmits what matters.  Frames that are delivered are delivered once,
 * in send order per (sender, receiver) pair.
 *
 * Receiving: each endpoint has an inbound queue bounded in bytes.  The
 * transport appends to it from its own thread (inproc: the sender's thread;
 * tcp: the endpoint's receiver thread) and then calls the endpoint's wakeup
 * callback, so that a node I/O thread sleeping on its condition variable
 * with a timeout can wake up and drain the queue with qfs_net_recv().
 *
 * Threads: every function is thread-safe, except that an endpoint must not
 * be used by another thread while, or after, qfs_net_endpoint_close() runs
 * on it, and the net while qfs_net_free() runs.
 */
#ifndef QFS_NET_NET_H
#define QFS_NET_NET_H

#include <stddef.h>
#include <stdint.h>

#include "common/qfs.h"
#include "net/frame.h"

enum qfs_net_kind {
	QFS_NET_INPROC = 1, /* endpoints in this process, no sockets */
	QFS_NET_TCP = 2,    /* TCP, IPv4 "a.b.c.d:port" addresses */
};

#define QFS_NET_MAX_PEERS 1024 /* peers one endpoint tracks (stats, tcp senders;
				* a node: its peers and every router it answered) */
#define QFS_NET_KEY_MIN 16   /* bytes of a cluster key, at least */
#define QFS_NET_KEY_MAX 1024 /* and at most */

struct qfs_net_params {
	size_t send_queue_bytes;  /* tcp: bytes queued per peer before drops; 64 MiB */
	size_t inbox_bytes;       /* bytes in an endpoint's inbound queue before
				   * drops; 64 MiB (one frame is always accepted
				   * into an empty queue) */
	size_t link_bytes;        /* bytes of one sender's frames in an inbound
				   * queue before drops; 32 MiB (a sender with
				   * nothing queued there may always queue one
				   * frame, within inbox_bytes), so one busy link
				   * cannot fill the inbox and starve the others */
	uint32_t backoff_min_ms;  /* tcp: first reconnect delay; 50 */
	uint32_t backoff_max_ms;  /* tcp: doubling stops here; 2000 */
	uint32_t connect_timeout_ms; /* tcp: connect + hello exchange; also how long
				      * an accepted connection may stay silent; 1000 */
};

/* Fill p with the defaults named above. */
void qfs_net_params_default(struct qfs_net_params *p);

/* A received frame.  Owned by the caller of qfs_net_recv() until
 * qfs_net_frame_free(). */
struct qfs_net_frame {
	struct qfs_net_frame *next; /* private: queue link */
	void *link;                 /* private: the receiver's accounting of the
				     * sender while queued (NULL: none) */
	size_t cap;                 /* private: bytes allocated for the frame,
				     * this struct included (common/bigbuf.h) */
	uint32_t from;              /* node id of the sending endpoint */
	uint32_t len;               /* bytes in data: the whole frame, header first */
	uint8_t local;              /* 1: delivered by the in-process transport,
				     * the bytes the sender wrote, never out of
				     * memory (its CRC is not checked, and is 0
				     * if sent by qfs_net_send_frame) */
	uint8_t data[];
};

/* Called after frames were appended to an endpoint's inbound queue, on the
 * thread that appended them, with no lock of the net held.  It must be
 * short and must not call into the net (typically: lock the node's mutex,
 * signal its condition variable, unlock).  The caller of qfs_net_send()
 * must therefore not hold the lock that a peer's wakeup takes. */
typedef void (*qfs_net_wakeup_fn)(void *arg);

/* Per-peer counters of one endpoint.  Monotonic except queued_bytes/up. */
struct qfs_net_stats {
	uint64_t sent_frames, sent_bytes; /* to the peer: into its inbox (inproc)
					   * or written to the socket (tcp) */
	uint64_t recv_frames, recv_bytes; /* from the peer: into our inbox */
	uint64_t drop_frames, drop_bytes; /* to the peer: dropped (unknown, down,
					   * cut, queue full, connection lost) */
	uint64_t drop_in_frames;          /* from the peer: dropped on arrival
					   * (our inbox full, link cut) */
	uint64_t rejected;                /* malformed frames: refused by send, or
					   * received (tcp; the connection is closed) */
	uint64_t connects;                /* tcp: connections established to it */
	uint64_t auth_refused;            /* tcp: handshakes refused for the cluster
					   * key (the peer's proof was wrong); with
					   * peer 0 also those of unidentified conns */
	uint64_t queued_bytes;            /* tcp: bytes in the send queue now */
	uint64_t inbox_bytes;             /* from the peer: bytes waiting in our
					   * inbox now (at most link_bytes, or
					   * one frame) */
	uint64_t inbox_peak_bytes;        /* from the peer: the most inbox_bytes
					   * ever was (peer 0: the whole inbox's
					   * peak, at most inbox_bytes or one
					   * frame) */
	int up;                           /* inproc: peer open; tcp: connected now */
};

struct qfs_net;    /* one per process */
struct qfs_net_ep; /* one per node */

/* Create a net of the given kind with params prm (NULL: defaults).  On
 * success *out owns it (qfs_net_free).  Returns 0, -EINVAL (unknown kind or
 * a zero bound) or -ENOMEM; *out is untouched on error. */
int qfs_net_new(enum qfs_net_kind kind, const struct qfs_net_params *prm, struct qfs_net **out);

/* Close every endpoint still open, then free the net.  NULL: nothing. */
void qfs_net_free(struct qfs_net *net);

/* Record that node lives at addr ("a.b.c.d:port"), replacing any earlier
 * address; tcp senders use it at their next connect.  Endpoints opened in
 * this net register themselves, so this is only needed for nodes of other
 * processes.  Inproc nets accept and ignore it.  Returns 0, -EINVAL (bad
 * node id or address) or -ENOMEM. */
int qfs_net_set_addr(struct qfs_net *net, uint32_t node, const char *addr);

/* Open the endpoint of node (1..65535) in net.  addr: tcp, the address to
 * listen on ("127.0.0.1:0" picks a free port, see qfs_net_endpoint_port);
 * inproc, must be NULL.  wake (may be NULL) is called with arg as described
 * at qfs_net_wakeup_fn.  Starts the tcp receiver thread.  On success *out
 * belongs to the caller until qfs_net_endpoint_close().  Returns 0,
 * -EINVAL (bad node or address), -EEXIST (node already open in this net),
 * -ENOKEY (tcp net without a cluster key: qfs_net_set_key), -ENOMEM, or a
 * socket error (-EADDRINUSE...); *out untouched on error. */
int qfs_net_endpoint_open(struct qfs_net *net, uint32_t node, const char *addr,
			  qfs_net_wakeup_fn wake, void *arg, struct qfs_net_ep **out);

/* Stop the endpoint: frames to it are dropped from now on; tcp threads are
 * joined and sockets closed; frames still queued (both ways) are freed.
 * NULL: nothing. */
void qfs_net_endpoint_close(struct qfs_net_ep *ep);

/* The node id of ep; tcp: the port it listens on (0 for inproc). */
uint32_t qfs_net_endpoint_node(const struct qfs_net_ep *ep);
uint16_t qfs_net_endpoint_port(const struct qfs_net_ep *ep);

/* Send the len-byte frame to node `to`.  Copies the frame (see
 * qfs_net_send_frame to hand one over instead), never blocks on
 * the network.  Returns 0 when the frame was queued or delivered (tcp: it
 * can still be lost if the connection breaks; a link cut by
 * qfs_net_set_link also returns 0, as a real network would), or, with the
 * frame dropped and counted:
 *   -EINVAL       not a frame: bad magic, version, or header length != len,
 *                 or len outside [16, QFS_NET_FRAME_MAX] (counted rejected)
 *   -EHOSTUNREACH `to` is 0, above 65535 or ep's own node; tcp: no address
 *                 known for `to` (qfs_net_set_addr)
 *   -ENOTCONN     peer down (inproc: no open endpoint `to`; tcp: in the
 *                 backoff after a failed connect)
 *   -ENOBUFS      the peer's queue (tcp) or inbox (inproc: the whole inbox
 *                 or this sender's share, link_bytes) is over its bound
 *   -ENOMEM       out of memory */
int qfs_net_send(struct qfs_net_ep *ep, uint32_t to, const void *frame, size_t len);

/* A frame of len bytes (whole frame, header first; contents undefined)
 * for the caller to fill and give to qfs_net_send_frame(): the message is
 * then encoded straight into what the receiver gets.  Large frames come
 * from the pool of common/bigbuf.h.  NULL if len is outside [16,
 * QFS_NET_FRAME_MAX] or out of memory.  Free an unsent one with
 * qfs_net_frame_free(). */
struct qfs_net_frame *qfs_net_frame_new(size_t len);

/* qfs_net_send() of the frame f->data[0..f->len) without copying it: f is
 * handed over (inproc: f itself lands in the receiver's inbox; tcp: it is
 * queued as is).  Takes ownership of f in every case, sent or not: the
 * caller must not touch f after the call (a receiver in another thread
 * may already own and free it).  Same checks, counters and errors as
 * qfs_net_send() (-ENOMEM is not possible), and -EINVAL when f->len was
 * raised past the length qfs_net_frame_new() gave (lowering it is fine).
 * The caller seals f with qfs_net_frame_seal_hdr() (or _seal()): the
 * frame's CRC is computed here when it leaves the process (tcp), and left
 * as it is over inproc, where the receiver does not check it
 * (qfs_net_frame_open_rx). */
int qfs_net_send_frame(struct qfs_net_ep *ep, uint32_t to, struct qfs_net_frame *f);

/* Open a received frame as qfs_net_frame_open() does (net/frame.h), but
 * without the CRC check when f->local says it never left this process:
 * a frame from tcp is always summed.  Same returns. */
int qfs_net_frame_open_rx(const struct qfs_net_frame *f, uint8_t *type, const uint8_t **body,
			  size_t *body_len);

/* Take the oldest frame of ep's inbound queue: 0 and *out (free with
 * qfs_net_frame_free), or -EAGAIN when the queue is empty. */
int qfs_net_recv(struct qfs_net_ep *ep, struct qfs_net_frame **out);

/* Like qfs_net_recv() but waits up to timeout_ms for a frame; -ETIMEDOUT
 * when none came.  For tests and simple drivers: a node that also waits for
 * other events uses the wakeup callback instead. */
int qfs_net_recv_wait(struct qfs_net_ep *ep, uint32_t timeout_ms, struct qfs_net_frame **out);

/* Free a received frame; NULL: nothing. */
void qfs_net_frame_free(struct qfs_net_frame *f);

/* Counters of ep for peer (0: the sum over all peers, plus rejected frames
 * of connections that never identified themselves).  Returns 0 or -ENOENT
 * (ep never exchanged anything with peer); *out written on success only. */
int qfs_net_stats(struct qfs_net_ep *ep, uint32_t peer, struct qfs_net_stats *out);

/* Read the cluster key from the file at path into key[0..cap) (trailing
 * newlines and spaces are not part of it).  The file must be a regular
 * file with no permission for group or others (mode 0600 or 0400),
 * else it is refused with one log line `net key refused path= mode= err=`;
 * the key itself is never logged.  Returns 0 with *len, -EPERM (mode),
 * -EINVAL (fewer than QFS_NET_KEY_MIN or more than QFS_NET_KEY_MAX
 * bytes, or more than cap) or the open/read error; key and *len are
 * written only on success. */
int qfs_net_key_load(const char *path, uint8_t *key, size_t cap, size_t *len);

/* Fill buf with n cryptographically random bytes (libcrypto's RAND_bytes:
 * nonces, router ids).  0 or -EIO. */
int qfs_net_random(uint8_t *buf, size_t n);

/* Give net the cluster key (copied; len in [QFS_NET_KEY_MIN,
 * QFS_NET_KEY_MAX]).  A tcp net needs it before its first
 * qfs_net_endpoint_open(): every connection then proves the key in its
 * hello (both sides) and tags every frame (doc/format-net.md section 2).
 * Inproc nets keep it and do not use it.  Returns 0 or -EINVAL. */
int qfs_net_set_key(struct qfs_net *net, const void *key, size_t len);

/* Test hook (partitions): cut (up = 0) or restore (up = 1) the one-way link
 * from -> to.  While cut, frames from `from` to `to` are dropped at send
 * and, for frames that arrive over tcp or were in flight, on arrival; both
 * are counted.  A two-way partition is two calls.  Applies to endpoints of
 * this net only (for tcp across processes, cut it in each process).
 * Returns 0 or -ENOMEM. */
int qfs_net_set_link(struct qfs_net *net, uint32_t from, uint32_t to, int up);

#endif
