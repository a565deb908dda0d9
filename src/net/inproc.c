/*
 * inproc.c - the in-process transport of src/net (the embedded default:
 * every node of the mount in one process).  A send appends the copied frame
 * straight to the destination endpoint's inbound queue on the sender's
 * thread: no threads, no sockets, FIFO per pair because one sender thread's
 * appends are ordered.  The destination is pinned by a reference count
 * (net->mu) while the frame is appended, so that closing it waits for the
 * append to finish.  The frame is marked local: its receiver does not check
 * its CRC, and qfs_net_send_frame does not compute it (frame.h).
 * Contract: net.h; policy: doc/format-net.md.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>

#include "net/net_int.h"

static int inproc_open(struct qfs_net_ep *ep, const struct sockaddr_in *sa)
{
	return 0;
}

static void inproc_close(struct qfs_net_ep *ep)
{
}

/* Find the open endpoint of node and take a reference; NULL if none. */
static struct qfs_net_ep *ep_get(struct qfs_net *net, uint32_t node)
{
	struct qfs_net_ep *e;

	pthread_mutex_lock(&net->mu);
	for (e = net->eps; e; e = e->next)
		if (e->node == node) {
			e->refs++;
			break;
		}
	pthread_mutex_unlock(&net->mu);
	return e;
}

static void ep_put(struct qfs_net_ep *e)
{
	struct qfs_net *net = e->net;

	pthread_mutex_lock(&net->mu);
	if (--e->refs == 0)
		pthread_cond_broadcast(&net->cond);
	pthread_mutex_unlock(&net->mu);
}

static int inproc_send(struct qfs_net_ep *ep, struct net_peer *p, struct qfs_net_frame *f)
{
	struct qfs_net_ep *dst = ep_get(ep->net, p->node);
	uint32_t len = f->len;
	int r;

	if (!dst) {
		qfs_net_frame_free(f);
		r = -ENOTCONN;
		goto drop;
	}
	f->local = 1; /* never leaves memory: the receiver skips the CRC */
	r = qfs_net_deliver(dst, f);
	ep_put(dst);
	if (r < 0)
		goto drop;
	NET_ADD(p->st.sent_frames, 1);
	NET_ADD(p->st.sent_bytes, len);
	return 0;

drop:
	NET_ADD(p->st.drop_frames, 1);
	NET_ADD(p->st.drop_bytes, len);
	return r;
}

static void inproc_peer_state(struct qfs_net_ep *ep, struct net_peer *p, struct qfs_net_stats *st)
{
	struct qfs_net_ep *dst = ep_get(ep->net, p->node);

	st->up = dst != NULL;
	if (dst)
		ep_put(dst);
}

const struct net_ops qfs_net_inproc_ops = {
	.open = inproc_open,
	.close = inproc_close,
	.send = inproc_send,
	.peer_state = inproc_peer_state,
};
