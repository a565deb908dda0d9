/*
 * net.c - the transport-independent part of src/net: the net object, its
 * endpoint registry and address book, the partition hook, frame header
 * checks, the inbound queue of each endpoint and the per-peer counters.
 * The transports (inproc.c, tcp.c) plug in through struct net_ops
 * (net_int.h, which also states the lock order).  Contract: net.h; wire
 * format and drop policy: doc/format-net.md.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/bigbuf.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/log.h"
#include "net/auth.h"
#include "net/net_int.h"
#include "net/frame.h"

/* See net.h. */
void qfs_net_params_default(struct qfs_net_params *p)
{
	p->send_queue_bytes = 64u << 20;
	p->inbox_bytes = 64u << 20;
	p->link_bytes = 32u << 20;
	p->backoff_min_ms = 50;
	p->backoff_max_ms = 2000;
	p->connect_timeout_ms = 1000;
}

/* See net.h. */
int qfs_net_new(enum qfs_net_kind kind, const struct qfs_net_params *prm, struct qfs_net **out)
{
	struct qfs_net *net;
	const struct net_ops *ops;

	if (kind == QFS_NET_INPROC)
		ops = &qfs_net_inproc_ops;
	else if (kind == QFS_NET_TCP)
		ops = &qfs_net_tcp_ops;
	else
		return -EINVAL;
	net = calloc(1, sizeof(*net));
	if (!net)
		return -ENOMEM;
	if (prm)
		net->prm = *prm;
	else
		qfs_net_params_default(&net->prm);
	if (!net->prm.send_queue_bytes || !net->prm.inbox_bytes || !net->prm.link_bytes ||
	    !net->prm.backoff_min_ms ||
	    net->prm.backoff_max_ms < net->prm.backoff_min_ms || !net->prm.connect_timeout_ms) {
		free(net);
		return -EINVAL;
	}
	net->kind = kind;
	net->ops = ops;
	pthread_mutex_init(&net->mu, NULL);
	pthread_cond_init(&net->cond, NULL);
	*out = net;
	return 0;
}

/* See net.h. */
void qfs_net_free(struct qfs_net *net)
{
	if (!net)
		return;
	while (net->eps)
		qfs_net_endpoint_close(net->eps);
	pthread_cond_destroy(&net->cond);
	pthread_mutex_destroy(&net->mu);
	qfs_net_key_wipe(net);
	free(net->book);
	free(net->cuts);
	free(net);
}

/* Parse "a.b.c.d:port" (port may be 0). */
static int parse_addr(const char *s, struct sockaddr_in *sa)
{
	char host[INET_ADDRSTRLEN];
	const char *colon = strrchr(s, ':');
	char *end;
	unsigned long port;

	if (!colon || colon == s || (size_t)(colon - s) >= sizeof(host) || !colon[1])
		return -EINVAL;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || *end || port > 65535)
		return -EINVAL;
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
		return -EINVAL;
	return 0;
}

static int node_ok(uint32_t node)
{
	return node >= 1 && node <= 65535;
}

/* Set node's address; caller holds net->mu. */
static int book_set(struct qfs_net *net, uint32_t node, const struct sockaddr_in *sa)
{
	for (uint32_t i = 0; i < net->nbook; i++)
		if (net->book[i].node == node) {
			net->book[i].sa = *sa;
			return 0;
		}
	if (net->nbook == net->capbook) {
		uint32_t cap = net->capbook ? 2 * net->capbook : 8;
		struct net_addr *b = realloc(net->book, cap * sizeof(*b));

		if (!b)
			return -ENOMEM;
		net->book = b;
		net->capbook = cap;
	}
	net->book[net->nbook].node = node;
	net->book[net->nbook].sa = *sa;
	net->nbook++;
	return 0;
}

/* See net.h. */
int qfs_net_set_addr(struct qfs_net *net, uint32_t node, const char *addr)
{
	struct sockaddr_in sa;
	int r;

	if (!node_ok(node) || !addr || parse_addr(addr, &sa) < 0 || !sa.sin_port)
		return -EINVAL;
	if (net->kind == QFS_NET_INPROC)
		return 0;
	pthread_mutex_lock(&net->mu);
	r = book_set(net, node, &sa);
	pthread_mutex_unlock(&net->mu);
	return r;
}

/* See net_int.h. */
int qfs_net_addr_get(struct qfs_net *net, uint32_t node, struct sockaddr_in *out)
{
	int r = -EHOSTUNREACH;

	pthread_mutex_lock(&net->mu);
	for (uint32_t i = 0; i < net->nbook; i++)
		if (net->book[i].node == node) {
			*out = net->book[i].sa;
			r = 0;
			break;
		}
	pthread_mutex_unlock(&net->mu);
	return r;
}

/* See net.h. */
int qfs_net_endpoint_open(struct qfs_net *net, uint32_t node, const char *addr,
			  qfs_net_wakeup_fn wake, void *arg, struct qfs_net_ep **out)
{
	struct sockaddr_in sa;
	struct qfs_net_ep *ep, *e;
	int r;

	if (!node_ok(node))
		return -EINVAL;
	if (net->kind == QFS_NET_TCP) {
		if (!addr || parse_addr(addr, &sa) < 0)
			return -EINVAL;
	} else if (addr) {
		return -EINVAL;
	}
	ep = calloc(1, sizeof(*ep));
	if (!ep)
		return -ENOMEM;
	ep->net = net;
	ep->node = node;
	ep->wake = wake;
	ep->wake_arg = arg;
	pthread_mutex_init(&ep->mu, NULL);
	pthread_cond_init(&ep->cond, NULL);

	/* Reserve the node id first so that two opens cannot both bind. */
	pthread_mutex_lock(&net->mu);
	for (e = net->eps; e; e = e->next)
		if (e->node == node)
			break;
	if (e) {
		pthread_mutex_unlock(&net->mu);
		r = -EEXIST;
		goto err_free_ep;
	}
	ep->closing = 1; /* not deliverable until open succeeded */
	ep->next = net->eps;
	net->eps = ep;
	pthread_mutex_unlock(&net->mu);

	r = net->ops->open(ep, net->kind == QFS_NET_TCP ? &sa : NULL);
	if (r < 0)
		goto err_unregister;
	if (net->kind == QFS_NET_TCP) {
		sa.sin_port = htons(qfs_net_endpoint_port(ep));
		pthread_mutex_lock(&net->mu);
		r = book_set(net, node, &sa);
		pthread_mutex_unlock(&net->mu);
		if (r < 0)
			goto err_close_transport;
	}
	pthread_mutex_lock(&ep->mu);
	ep->closing = 0;
	pthread_mutex_unlock(&ep->mu);
	QFS_LOG(QFS_LOG_INFO, "net endpoint open node=%u kind=%s port=%u", node,
		net->kind == QFS_NET_TCP ? "tcp" : "inproc", qfs_net_endpoint_port(ep));
	*out = ep;
	return 0;

err_close_transport:
	net->ops->close(ep);
err_unregister:
	pthread_mutex_lock(&net->mu);
	for (struct qfs_net_ep **pp = &net->eps; *pp; pp = &(*pp)->next)
		if (*pp == ep) {
			*pp = ep->next;
			break;
		}
	pthread_mutex_unlock(&net->mu);
err_free_ep:
	pthread_cond_destroy(&ep->cond);
	pthread_mutex_destroy(&ep->mu);
	free(ep);
	return r;
}

/* See net.h. */
void qfs_net_endpoint_close(struct qfs_net_ep *ep)
{
	struct qfs_net *net;
	struct qfs_net_frame *f;

	if (!ep)
		return;
	net = ep->net;
	pthread_mutex_lock(&ep->mu);
	ep->closing = 1;
	pthread_mutex_unlock(&ep->mu);

	/* Unregister, then wait for inproc senders still inside ep. */
	pthread_mutex_lock(&net->mu);
	for (struct qfs_net_ep **pp = &net->eps; *pp; pp = &(*pp)->next)
		if (*pp == ep) {
			*pp = ep->next;
			break;
		}
	while (ep->refs)
		pthread_cond_wait(&net->cond, &net->mu);
	pthread_mutex_unlock(&net->mu);

	net->ops->close(ep);
	QFS_LOG(QFS_LOG_INFO, "net endpoint close node=%u", ep->node);
	while ((f = ep->head)) {
		ep->head = f->next;
		qfs_net_frame_free(f);
	}
	for (uint32_t i = 0; i < ep->npeers; i++)
		free(ep->peers[i]);
	pthread_cond_destroy(&ep->cond);
	pthread_mutex_destroy(&ep->mu);
	free(ep);
}

/* See net.h. */
uint32_t qfs_net_endpoint_node(const struct qfs_net_ep *ep)
{
	return ep->node;
}

/* See net_int.h. */
long qfs_net_frame_check(const uint8_t *hdr)
{
	uint32_t body;

	if (qfs_be32_get(hdr) != QFS_NET_MAGIC)
		return -EINVAL;
	if (hdr[4] != QFS_NET_VERSION)
		return QFS_EFORMAT;
	body = qfs_be32_get(hdr + 8);
	if (body > QFS_NET_FRAME_MAX - QFS_NET_FRAME_HDR)
		return -EINVAL;
	return (long)body + QFS_NET_FRAME_HDR;
}

/* See net_int.h.  A frame of QFS_BIGBUF_MIN bytes or more comes from the
 * pool of large buffers (common/bigbuf.h) and goes back to it when freed:
 * an 8 MiB write-back's frames then reuse pages already faulted in. */
struct qfs_net_frame *qfs_net_frame_alloc(uint32_t len)
{
	size_t cap;
	struct qfs_net_frame *f = qfs_bigbuf_get(sizeof(*f) + len + QFS_NET_TAG, &cap);

	if (f) {
		f->next = NULL;
		f->link = NULL;
		f->cap = cap;
		f->from = 0;
		f->len = len;
		f->local = 0;
	}
	return f;
}

/* See net.h. */
struct qfs_net_frame *qfs_net_frame_new(size_t len)
{
	if (len < QFS_NET_FRAME_HDR || len > QFS_NET_FRAME_MAX)
		return NULL;
	return qfs_net_frame_alloc((uint32_t)len);
}

/* See net.h. */
void qfs_net_frame_free(struct qfs_net_frame *f)
{
	if (f)
		qfs_bigbuf_put(f, f->cap);
}

/* See net_int.h. */
struct net_peer *qfs_net_peer_get(struct qfs_net_ep *ep, uint32_t node, int create)
{
	struct net_peer *p = NULL;

	pthread_mutex_lock(&ep->mu);
	for (uint32_t i = 0; i < ep->npeers; i++)
		if (ep->peers[i]->node == node) {
			p = ep->peers[i];
			goto out;
		}
	if (create && ep->npeers < QFS_NET_MAX_PEERS) {
		p = calloc(1, sizeof(*p));
		if (p) {
			p->node = node;
			ep->peers[ep->npeers++] = p;
		}
	}
out:
	pthread_mutex_unlock(&ep->mu);
	return p;
}

/* See net_int.h. */
int qfs_net_link_up(struct qfs_net *net, uint32_t from, uint32_t to)
{
	int up = 1;

	if (!__atomic_load_n(&net->ncuts_hint, __ATOMIC_ACQUIRE))
		return 1;
	pthread_mutex_lock(&net->mu);
	for (uint32_t i = 0; i < net->ncuts; i++)
		if (net->cuts[i].from == from && net->cuts[i].to == to) {
			up = 0;
			break;
		}
	pthread_mutex_unlock(&net->mu);
	return up;
}

/* See net.h. */
int qfs_net_set_link(struct qfs_net *net, uint32_t from, uint32_t to, int up)
{
	uint32_t i;
	int r = 0;

	pthread_mutex_lock(&net->mu);
	for (i = 0; i < net->ncuts; i++)
		if (net->cuts[i].from == from && net->cuts[i].to == to)
			break;
	if (up && i < net->ncuts) {
		net->cuts[i] = net->cuts[--net->ncuts];
	} else if (!up && i == net->ncuts) {
		if (net->ncuts == net->capcuts) {
			uint32_t cap = net->capcuts ? 2 * net->capcuts : 8;
			struct net_cut *c = realloc(net->cuts, cap * sizeof(*c));

			if (!c) {
				r = -ENOMEM;
				goto out;
			}
			net->cuts = c;
			net->capcuts = cap;
		}
		net->cuts[net->ncuts].from = from;
		net->cuts[net->ncuts].to = to;
		net->ncuts++;
	}
	__atomic_store_n(&net->ncuts_hint, (int)net->ncuts, __ATOMIC_RELEASE);
	QFS_LOG(QFS_LOG_INFO, "net link %s from=%u to=%u", up ? "restored" : "cut", from, to);
out:
	pthread_mutex_unlock(&net->mu);
	return r;
}

/* See net_int.h. */
int qfs_net_deliver(struct qfs_net_ep *ep, struct qfs_net_frame *f)
{
	struct net_peer *p = qfs_net_peer_get(ep, f->from, 1);
	uint32_t len = f->len; /* f belongs to the receiver once queued */
	int r = 0, wake = 0;

	if (!qfs_net_link_up(ep->net, f->from, ep->node))
		goto drop;
	pthread_mutex_lock(&ep->mu);
	if (ep->closing) {
		r = -ENOTCONN;
	} else if (ep->head && ep->inbox_bytes + f->len > ep->net->prm.inbox_bytes) {
		r = -ENOBUFS;
	} else if (p && p->inbox_bytes && p->inbox_bytes + f->len > ep->net->prm.link_bytes) {
		r = -ENOBUFS; /* this sender's share is full: the others keep theirs */
	} else {
		if (ep->tail)
			ep->tail->next = f;
		else
			ep->head = f;
		ep->tail = f;
		ep->inbox_bytes += f->len;
		if (ep->inbox_bytes > ep->inbox_peak)
			ep->inbox_peak = ep->inbox_bytes;
		if (p) { /* before the owner can see the frame */
			f->link = p;
			p->inbox_bytes += len;
			if (p->inbox_bytes > p->inbox_peak)
				p->inbox_peak = p->inbox_bytes;
			NET_ADD(p->st.recv_frames, 1);
			NET_ADD(p->st.recv_bytes, len);
		}
		wake = 1;
		pthread_cond_signal(&ep->cond);
	}
	pthread_mutex_unlock(&ep->mu);
	if (r < 0)
		goto drop;
	if (wake && ep->wake)
		ep->wake(ep->wake_arg);
	return 0;

drop:
	if (p)
		NET_ADD(p->st.drop_in_frames, 1);
	qfs_net_frame_free(f);
	return r;
}

/* Check that frame[0..len) is a frame for ep to send to `to`: header,
 * length and destination.  0 with *pp, or the error of qfs_net_send
 * (counted and logged as it says). */
static int send_check(struct qfs_net_ep *ep, uint32_t to, const void *frame, size_t len,
		      struct net_peer **pp)
{
	struct net_peer *p;
	long flen = -EINVAL;

	if (!node_ok(to) || to == ep->node)
		p = NULL;
	else
		p = qfs_net_peer_get(ep, to, 1);
	if (len >= QFS_NET_FRAME_HDR && len <= QFS_NET_FRAME_MAX)
		flen = qfs_net_frame_check(frame);
	if (flen < 0 || (size_t)flen != len) {
		if (p)
			NET_ADD(p->st.rejected, 1);
		else
			NET_ADD(ep->rejected_anon, 1);
		QFS_LOG(QFS_LOG_WARN, "net send rejected node=%u to=%u len=%zu err=\"%s\"", ep->node, to,
			len, flen < 0 ? qfs_strerror((int)flen) : "length mismatch");
		return -EINVAL;
	}
	if (!p)
		return -EHOSTUNREACH;
	*pp = p;
	return 0;
}

/* Hand f (checked) to the transport, or count it dropped for a cut link. */
static int send_owned(struct qfs_net_ep *ep, struct net_peer *p, uint32_t to, struct qfs_net_frame *f)
{
	if (!qfs_net_link_up(ep->net, ep->node, to)) {
		NET_ADD(p->st.drop_frames, 1);
		NET_ADD(p->st.drop_bytes, f->len);
		qfs_net_frame_free(f);
		return 0;
	}
	f->from = ep->node;
	f->next = NULL;
	f->link = NULL;
	return ep->net->ops->send(ep, p, f);
}

/* See net.h. */
int qfs_net_send(struct qfs_net_ep *ep, uint32_t to, const void *frame, size_t len)
{
	struct net_peer *p;
	struct qfs_net_frame *f;
	int r = send_check(ep, to, frame, len, &p);

	if (r < 0)
		return r;
	f = qfs_net_frame_alloc((uint32_t)len);
	if (!f) {
		NET_ADD(p->st.drop_frames, 1);
		NET_ADD(p->st.drop_bytes, len);
		return -ENOMEM;
	}
	memcpy(f->data, frame, len);
	return send_owned(ep, p, to, f);
}

/* See net.h. */
int qfs_net_send_frame(struct qfs_net_ep *ep, uint32_t to, struct qfs_net_frame *f)
{
	struct net_peer *p;
	int r;

	/* f->len is the caller's to lower, never to raise past what
	 * qfs_net_frame_new gave: tcp writes the tag just past it. */
	if (f->len > f->cap - sizeof(*f) - QFS_NET_TAG) {
		QFS_LOG(QFS_LOG_WARN, "net send rejected node=%u to=%u len=%u err=\"frame longer than "
			"its buffer\"", ep->node, to, f->len);
		qfs_net_frame_free(f);
		return -EINVAL;
	}
	r = send_check(ep, to, f->data, f->len, &p);
	if (r < 0) {
		qfs_net_frame_free(f);
		return r;
	}
	/* The CRC guards the bytes on the socket; in-process frames skip it
	 * (frame.h).  send_check read the header's body length = f->len. */
	if (ep->net->kind != QFS_NET_INPROC)
		qfs_net_frame_crc_set(f->data, f->len - QFS_NET_FRAME_HDR);
	return send_owned(ep, p, to, f);
}

/* See net.h. */
int qfs_net_frame_open_rx(const struct qfs_net_frame *f, uint8_t *type, const uint8_t **body,
			  size_t *body_len)
{
	if (f->local)
		return qfs_net_frame_open_local(f->data, f->len, type, body, body_len);
	return qfs_net_frame_open(f->data, f->len, type, body, body_len);
}

/* See net.h. */
int qfs_net_recv(struct qfs_net_ep *ep, struct qfs_net_frame **out)
{
	return qfs_net_recv_wait(ep, 0, out);
}

/* See net.h. */
int qfs_net_recv_wait(struct qfs_net_ep *ep, uint32_t timeout_ms, struct qfs_net_frame **out)
{
	struct qfs_net_frame *f;
	struct timespec dl;

	pthread_mutex_lock(&ep->mu);
	if (!ep->head && timeout_ms) {
		qfs_clock_deadline(CLOCK_REALTIME, timeout_ms, &dl);
		while (!ep->head)
			if (pthread_cond_timedwait(&ep->cond, &ep->mu, &dl) == ETIMEDOUT)
				break;
	}
	f = ep->head;
	if (f) {
		ep->head = f->next;
		if (!ep->head)
			ep->tail = NULL;
		ep->inbox_bytes -= f->len;
		if (f->link)
			((struct net_peer *)f->link)->inbox_bytes -= f->len;
		f->link = NULL;
		f->next = NULL;
	}
	pthread_mutex_unlock(&ep->mu);
	if (!f)
		return timeout_ms ? -ETIMEDOUT : -EAGAIN;
	*out = f;
	return 0;
}

static void stats_add(struct qfs_net_stats *d, const struct qfs_net_stats *s)
{
	d->sent_frames += NET_GET(s->sent_frames);
	d->sent_bytes += NET_GET(s->sent_bytes);
	d->recv_frames += NET_GET(s->recv_frames);
	d->recv_bytes += NET_GET(s->recv_bytes);
	d->drop_frames += NET_GET(s->drop_frames);
	d->drop_bytes += NET_GET(s->drop_bytes);
	d->drop_in_frames += NET_GET(s->drop_in_frames);
	d->rejected += NET_GET(s->rejected);
	d->connects += NET_GET(s->connects);
	d->auth_refused += NET_GET(s->auth_refused);
}

/* See net.h. */
int qfs_net_stats(struct qfs_net_ep *ep, uint32_t peer, struct qfs_net_stats *out)
{
	struct qfs_net_stats st;
	struct net_peer *ps[QFS_NET_MAX_PEERS];
	uint32_t n = 0;

	memset(&st, 0, sizeof(st));
	pthread_mutex_lock(&ep->mu);
	for (uint32_t i = 0; i < ep->npeers; i++)
		if (!peer || ep->peers[i]->node == peer) {
			ps[n++] = ep->peers[i];
			st.inbox_bytes += ep->peers[i]->inbox_bytes;
			st.inbox_peak_bytes = ep->peers[i]->inbox_peak > st.inbox_peak_bytes ?
					      ep->peers[i]->inbox_peak : st.inbox_peak_bytes;
		}
	if (!peer) {
		st.inbox_bytes = ep->inbox_bytes;
		st.inbox_peak_bytes = ep->inbox_peak;
	}
	pthread_mutex_unlock(&ep->mu);
	if (peer && !n)
		return -ENOENT;
	for (uint32_t i = 0; i < n; i++) {
		struct qfs_net_stats t;

		memset(&t, 0, sizeof(t));
		stats_add(&st, &ps[i]->st);
		ep->net->ops->peer_state(ep, ps[i], &t);
		st.queued_bytes += t.queued_bytes;
		st.up += t.up;
	}
	if (!peer) {
		st.rejected += NET_GET(ep->rejected_anon);
		st.auth_refused += NET_GET(ep->auth_refused_anon);
	}
	*out = st;
	return 0;
}
