/*
 * net_int.h - internals shared by the transport-independent part of src/net
 * (net.c: registry, address book, links, inbound queues, stats) and the
 * transports (inproc.c, tcp.c).  Public contract: net.h; wire format:
 * doc/format-net.md.
 *
 * Lock order: net->mu before ep->mu before a tcp peer's mu.  No lock is held
 * while a wakeup callback runs or while a socket call may block.  Counters
 * in struct net_peer are updated with relaxed atomics and need no lock.
 */
#ifndef QFS_NET_NET_INT_H
#define QFS_NET_NET_INT_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>

#include "net/net.h"

struct net_peer {
	uint32_t node;
	struct qfs_net_stats st;   /* atomics (NET_ADD); queued_bytes/up and the
				    * inbox fields unused */
	uint64_t inbox_bytes;      /* bytes of its frames in our inbox; ep->mu */
	uint64_t inbox_peak;       /* the most inbox_bytes was; ep->mu */
	void *tp;                  /* transport state (tcp sender); set under ep->mu */
};

struct net_ops {
	/* Bind/start; sa is the parsed address (tcp) or NULL (inproc). */
	int (*open)(struct qfs_net_ep *ep, const struct sockaddr_in *sa);
	/* Stop threads and free transport state (ep already unregistered). */
	void (*close)(struct qfs_net_ep *ep);
	/* Take ownership of f (validated, f->from set) and queue or deliver it;
	 * counts sent/drop on p.  Returns as qfs_net_send. */
	int (*send)(struct qfs_net_ep *ep, struct net_peer *p, struct qfs_net_frame *f);
	/* Fill the transport parts of st (up, queued_bytes). */
	void (*peer_state)(struct qfs_net_ep *ep, struct net_peer *p, struct qfs_net_stats *st);
};

struct net_addr {
	uint32_t node;
	struct sockaddr_in sa;
};

struct net_cut {
	uint32_t from, to;
};

struct qfs_net {
	enum qfs_net_kind kind;
	struct qfs_net_params prm;
	const struct net_ops *ops;
	pthread_mutex_t mu;        /* protects everything below */
	pthread_cond_t cond;       /* an ep's refs dropped to 0 */
	struct qfs_net_ep *eps;    /* open endpoints */
	struct net_addr *book;     /* address book (tcp) */
	uint32_t nbook, capbook;
	struct net_cut *cuts;      /* cut one-way links */
	uint32_t ncuts, capcuts;
	int ncuts_hint;            /* atomic copy of ncuts: fast path when 0 */
	uint8_t key[QFS_NET_KEY_MAX]; /* cluster key (qfs_net_set_key); set before
				       * endpoints open, read-only after */
	size_t key_len;            /* bytes of key; 0: none */
};

struct qfs_net_ep {
	struct qfs_net *net;
	uint32_t node;
	struct qfs_net_ep *next;   /* in net->eps; net->mu */
	unsigned refs;             /* inproc senders using ep; net->mu */
	pthread_mutex_t mu;        /* protects the inbox and peers[] */
	pthread_cond_t cond;       /* inbox became non-empty */
	struct qfs_net_frame *head, *tail; /* inbound queue */
	size_t inbox_bytes;        /* bytes of frames in the queue */
	size_t inbox_peak;         /* the most inbox_bytes was */
	int closing;               /* no more deliveries; ep->mu */
	qfs_net_wakeup_fn wake;
	void *wake_arg;
	struct net_peer *peers[QFS_NET_MAX_PEERS];
	uint32_t npeers;
	uint64_t rejected_anon;    /* malformed frames from unidentified conns; atomic */
	uint64_t auth_refused_anon; /* wrong key proofs of unidentified conns; atomic */
	void *tp;                  /* transport state */
};

#define NET_ADD(field, v) __atomic_fetch_add(&(field), (v), __ATOMIC_RELAXED)
#define NET_GET(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)

extern const struct net_ops qfs_net_inproc_ops;
extern const struct net_ops qfs_net_tcp_ops;

/* Check a frame header hdr[QFS_NET_FRAME_HDR]: magic, version, body length
 * within QFS_NET_FRAME_MAX.  Returns the whole frame length or -EINVAL
 * (bad magic or length) or QFS_EFORMAT (another version). */
long qfs_net_frame_check(const uint8_t *hdr);

/* Erase net's copy of the cluster key (auth.c; qfs_net_free). */
void qfs_net_key_wipe(struct qfs_net *net);

/* Allocate a frame holding len bytes, plus QFS_NET_TAG bytes of room past
 * them for the tcp tag (contents uninitialised); NULL if out of memory. */
struct qfs_net_frame *qfs_net_frame_alloc(uint32_t len);

/* The peer entry of node in ep, created if create is set.  NULL if absent
 * (or the table is full / out of memory).  Entries live until ep closes. */
struct net_peer *qfs_net_peer_get(struct qfs_net_ep *ep, uint32_t node, int create);

/* 1 if the link from -> to is up. */
int qfs_net_link_up(struct qfs_net *net, uint32_t from, uint32_t to);

/* Look up node's address; 0 and *out, or -EHOSTUNREACH. */
int qfs_net_addr_get(struct qfs_net *net, uint32_t node, struct sockaddr_in *out);

/* Append f (f->from set) to ep's inbound queue and wake the owner; takes
 * ownership of f.  Drops and counts it (drop_in_frames of the from peer)
 * when the link is cut, ep is closing or the inbox, or the sender's share
 * of it (link_bytes), is over its bound.
 * Returns 0 (queued), -ENOBUFS (inbox full), -ENOTCONN (closing) or 0 for
 * a cut link.  Call with no net lock held. */
int qfs_net_deliver(struct qfs_net_ep *ep, struct qfs_net_frame *f);

#endif
