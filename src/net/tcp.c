/*
 * tcp.c - the TCP transport of src/net (nodes as separate processes or
 * hosts).  Wire format, handshake and drop policy: doc/format-net.md;
 * contract: net.h; lock order: net_int.h.
 *
 * One connection per ordered pair of nodes: the endpoint of A connects to B
 * to carry A's frames to B, and only those; B's frames to A go over the
 * connection B opened.  So each direction is a single byte stream and FIFO
 * per pair follows from TCP.
 *
 * Every connection proves the cluster key both ways in its handshake
 * (hello, hello answer, proof: HMAC-SHA256 challenge-response, auth.h)
 * and then carries, after each frame, a tag over the frame and its
 * sequence number on the connection, so a wrong key is refused before any
 * frame is delivered, and a tampered, replayed, reordered or truncated
 * frame closes the connection without being delivered.
 *
 * Threads of one endpoint:
 *  - a receiver thread: poll(2) over the listening socket, a wake pipe and
 *    every accepted connection; it answers hellos, reassembles frames
 *    (checking each header) and appends them to the endpoint's inbox;
 *  - one sender thread per peer, started at the first send to it: it
 *    connects (non-blocking connect with a timeout, TCP_NODELAY, hello
 *    exchange), then writes its bounded queue in batches with sendmsg(2).
 *    A failed connect drops the queue and backs off (doubling from
 *    backoff_min_ms to backoff_max_ms); sends during the backoff are
 *    dropped.  A broken connection drops the frames being written and
 *    reconnects at the next frame.
 * Closing the endpoint wakes the receiver through the pipe, and each sender
 * with shutdown(2) of its socket (which unblocks a write stuck on a full
 * socket buffer), then joins them.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/log.h"
#include "net/auth.h"
#include "net/net_int.h"

#define TCP_MAX_CONNS 64            /* accepted connections per endpoint */
/* be32 from | be32 to | nonce | proof (zero in the connector's hello) */
#define HELLO_BODY (8 + QFS_NET_NONCE + QFS_NET_PROOF)
#define HELLO_LEN (QFS_NET_FRAME_HDR + HELLO_BODY)
#define AUTH_LEN (QFS_NET_FRAME_HDR + QFS_NET_PROOF) /* the connector's proof */
#define AUTH_LOG_MS 10000           /* refusals logged at WARN at most this often */
#define RX_BUDGET (4u << 20)        /* bytes read from one conn per poll round */
#define RX_BUF 65536                /* read-ahead buffer of a connection */
#define TX_IOV 64                   /* frames per sendmsg */

enum peer_state { PEER_IDLE, PEER_CONNECTING, PEER_UP, PEER_DOWN };

/* Handshake state of an accepted connection. */
enum conn_state {
	CONN_HELLO,                      /* waiting for the connector's hello */
	CONN_PROOF,                      /* answered; waiting for its proof */
	CONN_UP,                         /* authenticated: tagged frames */
};

/* An accepted connection; receiver thread only. */
struct tcp_conn {
	int fd;
	enum conn_state state;
	uint32_t peer;                   /* node id its hello claims, else 0;
					  * trusted once state is CONN_UP */
	uint8_t nc[QFS_NET_NONCE];       /* the connector's nonce */
	uint8_t na[QFS_NET_NONCE];       /* ours */
	struct qfs_net_mac *mac;         /* CONN_UP: checks the frames' tags */
	uint64_t rseq;                   /* CONN_UP: sequence number of the next frame */
	uint8_t hdr[QFS_NET_FRAME_HDR];
	uint32_t hdr_got;                /* header bytes read of the current frame */
	struct qfs_net_frame *f;         /* frame being read, or NULL */
	uint32_t need;                   /* bytes of f->data to read: the frame,
					  * plus its tag once CONN_UP */
	uint32_t got;                    /* bytes of f->data read */
	uint8_t *rbuf;                   /* RX_BUF bytes read ahead */
	uint32_t roff, rlen;             /* unconsumed bytes: rbuf[roff..rlen) */
	uint64_t hello_by_ms;            /* not CONN_UP: closed if not by then */
};

struct tcp_ep {
	int lfd;                         /* listening socket */
	uint16_t port;                   /* bound port */
	int wake[2];                     /* pipe; a byte stops the receiver */
	pthread_t rx;
	struct tcp_conn conns[TCP_MAX_CONNS]; /* receiver thread only */
	uint32_t nconns;
	uint64_t auth_log_ms;            /* last refusal logged at WARN; receiver */
};

/* Sender state for one peer, in net_peer.tp. */
struct tcp_peer {
	struct qfs_net_ep *ep;
	struct net_peer *np;
	pthread_t th;
	pthread_mutex_t mu;              /* protects everything below */
	pthread_cond_t cond;             /* frames queued, stop (CLOCK_MONOTONIC) */
	struct qfs_net_frame *head, *tail; /* send queue */
	size_t bytes;                    /* bytes in the queue */
	enum peer_state state;
	int fd;                          /* connected socket or -1; written by the
					  * sender thread under mu */
	int stop;
	struct qfs_net_mac *mac;         /* tags of the connection; sender thread */
	uint64_t seq;                    /* sequence number of the next frame on it;
					  * sender thread */
	uint32_t fails;                  /* connect failures in a row */
	uint32_t backoff_ms;             /* next backoff */
	uint64_t retry_at_ms;            /* DOWN: back to IDLE at (monotonic) */
};

/* A hello frame into b[HELLO_LEN]; nonce and proof may be NULL (zeros). */
static void hello_build(uint8_t *b, uint32_t from, uint32_t to, const uint8_t *nonce,
			const uint8_t *proof)
{
	uint8_t *p = b + QFS_NET_FRAME_HDR;

	qfs_be32_put(p, from);
	qfs_be32_put(p + 4, to);
	if (nonce)
		memcpy(p + 8, nonce, QFS_NET_NONCE);
	else
		memset(p + 8, 0, QFS_NET_NONCE);
	if (proof)
		memcpy(p + 8 + QFS_NET_NONCE, proof, QFS_NET_PROOF);
	else
		memset(p + 8 + QFS_NET_NONCE, 0, QFS_NET_PROOF);
	qfs_net_frame_seal(b, QFS_NET_HELLO, HELLO_BODY);
}

/* Check a complete hello of our version: 0 with *from, *to and pointers to
 * its nonce and proof (into b), or -EPROTO. */
static int hello_parse(const uint8_t *b, uint32_t *from, uint32_t *to, const uint8_t **nonce,
		       const uint8_t **proof)
{
	const uint8_t *body;
	size_t blen;
	uint8_t type;

	if (qfs_net_frame_open(b, HELLO_LEN, &type, &body, &blen) != 0 || type != QFS_NET_HELLO ||
	    blen != HELLO_BODY)
		return -EPROTO;
	*from = qfs_be32_get(body);
	*to = qfs_be32_get(body + 4);
	*nonce = body + 8;
	*proof = body + 8 + QFS_NET_NONCE;
	if (*from < 1 || *from > 65535)
		return -EPROTO;
	return 0;
}

/* ---- receiver ---- */

static void conn_close(struct tcp_ep *t, uint32_t i)
{
	struct tcp_conn *c = &t->conns[i];

	close(c->fd);
	qfs_net_frame_free(c->f);
	free(c->rbuf);
	qfs_net_mac_free(c->mac);
	t->conns[i] = t->conns[--t->nconns];
}

static void reject(struct qfs_net_ep *ep, struct tcp_conn *c, const char *why)
{
	struct net_peer *p = c->state == CONN_UP ? qfs_net_peer_get(ep, c->peer, 1) : NULL;

	if (p)
		NET_ADD(p->st.rejected, 1);
	else
		NET_ADD(ep->rejected_anon, 1);
	QFS_LOG(QFS_LOG_WARN, "net frame rejected node=%u peer=%u magic=0x%08x version=%u len=%u err=\"%s\"",
		ep->node, c->peer, qfs_be32_get(c->hdr), c->hdr[4], qfs_be32_get(c->hdr + 8), why);
}

/* A complete hello f on a new connection: answer it with our nonce and
 * proof.  0 or -1 (close). */
static int hello_accept(struct qfs_net_ep *ep, struct tcp_conn *c, const struct qfs_net_frame *f)
{
	uint8_t reply[HELLO_LEN], proof[QFS_NET_PROOF];
	const uint8_t *nc, *pr;
	uint32_t from, to;

	if (hello_parse(f->data, &from, &to, &nc, &pr) < 0) {
		reject(ep, c, "bad hello");
		return -1;
	}
	if (to != ep->node) {
		NET_ADD(ep->rejected_anon, 1);
		QFS_LOG(QFS_LOG_WARN, "net hello refused node=%u peer=%u wanted=%u err=\"wrong node\"",
			ep->node, from, to);
		return -1;
	}
	memcpy(c->nc, nc, QFS_NET_NONCE);
	if (qfs_net_random(c->na, QFS_NET_NONCE) < 0 ||
	    qfs_net_proof(ep->net->key, ep->net->key_len, QFS_NET_PROOF_ACCEPTOR, from, ep->node,
			  c->nc, c->na, proof) < 0) {
		QFS_LOG(QFS_LOG_ERR, "net hello failed node=%u peer=%u err=libcrypto", ep->node, from);
		return -1;
	}
	hello_build(reply, ep->node, from, c->na, proof);
	if (send(c->fd, reply, sizeof(reply), MSG_NOSIGNAL) != (ssize_t)sizeof(reply))
		return -1;
	c->peer = from;
	c->state = CONN_PROOF;
	return 0;
}

/* The connector's proof f (after our answer): check it, then the
 * connection is up.  0 or -1 (close; a wrong key is counted and logged). */
static int proof_accept(struct qfs_net_ep *ep, struct tcp_conn *c, const struct qfs_net_frame *f)
{
	struct tcp_ep *t = ep->tp;
	uint8_t want[QFS_NET_PROOF];
	const uint8_t *body;
	size_t blen;
	uint8_t type;
	uint64_t now;

	if (qfs_net_frame_open(f->data, f->len, &type, &body, &blen) != 0 || type != QFS_NET_AUTH ||
	    blen != QFS_NET_PROOF) {
		reject(ep, c, "bad proof frame");
		return -1;
	}
	if (qfs_net_proof(ep->net->key, ep->net->key_len, QFS_NET_PROOF_CONNECTOR, c->peer, ep->node,
			  c->nc, c->na, want) < 0)
		return -1;
	if (!qfs_net_mac_equal(want, body, QFS_NET_PROOF)) {
		uint64_t n = NET_ADD(ep->auth_refused_anon, 1) + 1;

		now = qfs_clock_mono_ms();
		QFS_LOG(!t->auth_log_ms || now - t->auth_log_ms >= AUTH_LOG_MS ? QFS_LOG_WARN :
			QFS_LOG_DEBUG, "net auth refused node=%u peer=%u refused=%" PRIu64
			" err=\"wrong cluster key\"", ep->node, c->peer, n);
		if (!t->auth_log_ms || now - t->auth_log_ms >= AUTH_LOG_MS)
			t->auth_log_ms = now;
		return -1;
	}
	if (qfs_net_mac_new(ep->net->key, ep->net->key_len, c->peer, ep->node, c->nc, c->na,
			    &c->mac) < 0)
		return -1;
	c->state = CONN_UP;
	c->rseq = 0;
	qfs_net_peer_get(ep, c->peer, 1);
	QFS_LOG(QFS_LOG_INFO, "net accepted node=%u peer=%u", ep->node, c->peer);
	return 0;
}

/* The header of c is complete: check it and start the frame.  0 or -1
 * (close the connection). */
static int conn_header(struct qfs_net_ep *ep, struct tcp_conn *c)
{
	long flen = qfs_net_frame_check(c->hdr);

	if (c->state == CONN_HELLO && flen == QFS_EFORMAT) {
		uint8_t reply[HELLO_LEN];

		/* Answer with our version so that the peer can say why. */
		NET_ADD(ep->rejected_anon, 1);
		QFS_LOG(QFS_LOG_WARN, "net hello refused node=%u peer_version=%u version=%u "
			"err=\"protocol version not supported\"", ep->node, c->hdr[4], QFS_NET_VERSION);
		hello_build(reply, ep->node, 0, NULL, NULL);
		(void)!send(c->fd, reply, sizeof(reply), MSG_NOSIGNAL);
		return -1;
	}
	if (flen < 0) {
		reject(ep, c, flen == QFS_EFORMAT ? "bad version" : "bad magic or length");
		return -1;
	}
	if (c->state == CONN_HELLO && (c->hdr[5] != QFS_NET_HELLO || flen != HELLO_LEN)) {
		reject(ep, c, "expected hello");
		return -1;
	}
	if (c->state == CONN_PROOF && (c->hdr[5] != QFS_NET_AUTH || flen != AUTH_LEN)) {
		reject(ep, c, "expected proof");
		return -1;
	}
	if (c->state == CONN_UP && (c->hdr[5] == QFS_NET_HELLO || c->hdr[5] == QFS_NET_AUTH)) {
		reject(ep, c, "second hello");
		return -1;
	}
	c->need = (uint32_t)flen + (c->state == CONN_UP ? QFS_NET_TAG : 0);
	c->f = qfs_net_frame_alloc((uint32_t)flen); /* with room for the tag */
	if (!c->f) {
		QFS_LOG(QFS_LOG_ERR, "net out of memory node=%u peer=%u len=%ld", ep->node, c->peer,
			flen);
		return -1;
	}
	memcpy(c->f->data, c->hdr, QFS_NET_FRAME_HDR);
	c->got = QFS_NET_FRAME_HDR;
	return 0;
}

/* c->f is complete: answer a hello, check a proof, or check the frame's
 * tag and deliver it.  0 or -1 (close). */
static int conn_frame(struct qfs_net_ep *ep, struct tcp_conn *c)
{
	struct qfs_net_frame *f = c->f;
	uint8_t tag[QFS_NET_TAG];
	int r;

	c->f = NULL;
	c->hdr_got = 0;
	if (c->state != CONN_UP) {
		r = c->state == CONN_HELLO ? hello_accept(ep, c, f) : proof_accept(ep, c, f);
		qfs_net_frame_free(f);
		return r;
	}
	/* The tag covers the frame and its place on the connection: a
	 * tampered, replayed, reordered or foreign frame fails here. */
	if (qfs_net_mac_tag(c->mac, c->rseq, f->data, f->len, tag) < 0 ||
	    !qfs_net_mac_equal(tag, f->data + f->len, QFS_NET_TAG)) {
		reject(ep, c, "bad tag: tampered, replayed or reordered frame");
		qfs_net_frame_free(f);
		return -1;
	}
	c->rseq++;
	f->from = c->peer;
	qfs_net_deliver(ep, f);
	return 0;
}

/* Read what c has, through c->rbuf (small frames: one recv for many) or
 * straight into the frame (the rest of a large body).  0: keep the
 * connection; -1: close it. */
static int conn_read(struct qfs_net_ep *ep, struct tcp_conn *c)
{
	size_t budget = RX_BUDGET, avail, take;
	ssize_t n;

	for (;;) {
		if (c->roff == c->rlen) {
			int direct = c->f && c->need - c->got >= RX_BUF;

			if (!budget)
				return 0;
			if (direct)
				n = recv(c->fd, c->f->data + c->got, c->need - c->got, 0);
			else
				n = recv(c->fd, c->rbuf, RX_BUF, 0);
			if (n == 0) {
				if (c->hdr_got && c->state == CONN_UP)
					reject(ep, c, "truncated frame: connection closed mid-frame");
				return -1;
			}
			if (n < 0) {
				if (errno == EINTR)
					continue;
				return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
			}
			budget -= (size_t)n < budget ? (size_t)n : budget;
			if (direct) {
				c->got += (uint32_t)n;
				if (c->got == c->need && conn_frame(ep, c) < 0)
					return -1;
				continue;
			}
			c->roff = 0;
			c->rlen = (uint32_t)n;
		}
		avail = c->rlen - c->roff;
		if (c->hdr_got < QFS_NET_FRAME_HDR) {
			take = QFS_NET_FRAME_HDR - c->hdr_got;
			take = take < avail ? take : avail;
			memcpy(c->hdr + c->hdr_got, c->rbuf + c->roff, take);
			c->hdr_got += (uint32_t)take;
			c->roff += (uint32_t)take;
			if (c->hdr_got < QFS_NET_FRAME_HDR)
				continue;
			if (conn_header(ep, c) < 0)
				return -1;
		} else {
			take = c->need - c->got;
			take = take < avail ? take : avail;
			memcpy(c->f->data + c->got, c->rbuf + c->roff, take);
			c->got += (uint32_t)take;
			c->roff += (uint32_t)take;
		}
		if (c->got == c->need && conn_frame(ep, c) < 0)
			return -1;
	}
}

static void *rx_main(void *arg)
{
	struct qfs_net_ep *ep = arg;
	struct tcp_ep *t = ep->tp;
	struct pollfd pfd[2 + TCP_MAX_CONNS];

	for (;;) {
		uint32_t n = t->nconns;

		pfd[0].fd = t->wake[0];
		pfd[0].events = POLLIN;
		pfd[1].fd = t->lfd;
		pfd[1].events = POLLIN;
		for (uint32_t i = 0; i < n; i++) {
			pfd[2 + i].fd = t->conns[i].fd;
			pfd[2 + i].events = POLLIN;
		}
		int timeout = -1;

		for (uint32_t i = 0; i < n; i++)
			if (t->conns[i].state != CONN_UP)
				timeout = 100; /* to expire silent connections */
		if (poll(pfd, 2 + n, timeout) < 0) {
			if (errno == EINTR)
				continue;
			QFS_LOG(QFS_LOG_ERR, "net poll failed node=%u err=\"%s\"", ep->node,
				qfs_strerror(-errno));
			break;
		}
		if (pfd[0].revents)
			break;
		/* Downwards: conn_close() moves the last conn into slot i. */
		for (uint32_t i = n; i-- > 0;) {
			struct tcp_conn *c = &t->conns[i];

			if (pfd[2 + i].revents && conn_read(ep, c) < 0) {
				conn_close(t, i);
			} else if (c->state != CONN_UP && qfs_clock_mono_ms() >= c->hello_by_ms) {
				NET_ADD(ep->rejected_anon, 1);
				QFS_LOG(QFS_LOG_WARN, "net hello timeout node=%u", ep->node);
				conn_close(t, i);
			}
		}
		if (pfd[1].revents & POLLIN) {
			int fd = accept4(t->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

			if (fd < 0)
				continue;
			if (t->nconns == TCP_MAX_CONNS) {
				QFS_LOG(QFS_LOG_WARN, "net too many connections node=%u max=%u", ep->node,
					TCP_MAX_CONNS);
				close(fd);
				continue;
			}
			memset(&t->conns[t->nconns], 0, sizeof(t->conns[0]));
			t->conns[t->nconns].rbuf = malloc(RX_BUF);
			if (!t->conns[t->nconns].rbuf) {
				close(fd);
				continue;
			}
			t->conns[t->nconns].hello_by_ms =
				qfs_clock_mono_ms() + ep->net->prm.connect_timeout_ms;
			t->conns[t->nconns++].fd = fd;
		}
	}
	while (t->nconns)
		conn_close(t, t->nconns - 1);
	return NULL;
}

/* ---- sender ---- */

static int set_blocking(int fd, int blocking)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -errno;
	fl = blocking ? fl & ~O_NONBLOCK : fl | O_NONBLOCK;
	return fcntl(fd, F_SETFL, fl) < 0 ? -errno : 0;
}

/* Wait for fd to be ready for events until deadline (monotonic ms). */
static int wait_fd(int fd, short events, uint64_t deadline)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	uint64_t now;
	int r;

	for (;;) {
		now = qfs_clock_mono_ms();
		if (now >= deadline)
			return -ETIMEDOUT;
		r = poll(&pfd, 1, (int)(deadline - now));
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

/* Connect to tp's peer and run the handshake: our hello (nonce), its
 * answer (its nonce and proof), our proof; both proofs show the cluster
 * key.  0 with *out (a blocking, connected socket) and *mac (the tagger
 * of the connection), or a negative errno (logged by the caller;
 * -EKEYREJECTED: the peer's proof was wrong, also logged here). */
static int tcp_connect(struct tcp_peer *tp, int *out, struct qfs_net_mac **mac)
{
	struct qfs_net_ep *ep = tp->ep;
	struct qfs_net *net = ep->net;
	uint32_t peer = tp->np->node, from, to;
	uint64_t deadline = qfs_clock_mono_ms() + net->prm.connect_timeout_ms;
	struct sockaddr_in sa;
	uint8_t hello[HELLO_LEN], auth[AUTH_LEN], nc[QFS_NET_NONCE], want[QFS_NET_PROOF];
	const uint8_t *na, *proof;
	socklen_t sl = sizeof(int);
	size_t got = 0;
	int fd, r, one = 1, soerr = 0;
	ssize_t n;

	r = qfs_net_addr_get(ep->net, peer, &sa);
	if (r < 0)
		return r;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno != EINPROGRESS) {
			r = -errno;
			goto err_close_fd;
		}
		r = wait_fd(fd, POLLOUT, deadline);
		if (r < 0)
			goto err_close_fd;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr) {
			r = soerr ? -soerr : -errno;
			goto err_close_fd;
		}
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (qfs_net_random(nc, sizeof(nc)) < 0) {
		r = -EIO;
		goto err_close_fd;
	}
	hello_build(hello, ep->node, peer, nc, NULL);
	if (send(fd, hello, sizeof(hello), MSG_NOSIGNAL) != (ssize_t)sizeof(hello)) {
		r = -EPROTO;
		goto err_close_fd;
	}
	while (got < sizeof(hello)) {
		r = wait_fd(fd, POLLIN, deadline);
		if (r < 0)
			goto err_close_fd;
		n = recv(fd, hello + got, sizeof(hello) - got, 0);
		if (n == 0) {
			QFS_LOG(QFS_LOG_WARN, "net hello refused node=%u peer=%u err=\"closed by peer\"",
				ep->node, peer);
			r = -ECONNREFUSED;
			goto err_close_fd;
		}
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			r = -errno;
			goto err_close_fd;
		}
		got += (size_t)n;
	}
	if (qfs_be32_get(hello) == QFS_NET_MAGIC && hello[4] != QFS_NET_VERSION) {
		QFS_LOG(QFS_LOG_WARN, "net hello refused node=%u peer=%u peer_version=%u version=%u "
			"err=\"protocol version not supported\"", ep->node, peer, hello[4], QFS_NET_VERSION);
		r = -EPROTO;
		goto err_close_fd;
	}
	if (hello_parse(hello, &from, &to, &na, &proof) < 0 || from != peer || to != ep->node) {
		QFS_LOG(QFS_LOG_WARN, "net hello refused node=%u peer=%u err=\"bad hello reply\"",
			ep->node, peer);
		r = -EPROTO;
		goto err_close_fd;
	}
	/* Our proof goes out first, so that the peer can say why if our key
	 * is the wrong one; then we check its proof. */
	r = qfs_net_proof(net->key, net->key_len, QFS_NET_PROOF_CONNECTOR, ep->node, peer, nc, na,
			  auth + QFS_NET_FRAME_HDR);
	if (r < 0)
		goto err_close_fd;
	qfs_net_frame_seal(auth, QFS_NET_AUTH, QFS_NET_PROOF);
	if (send(fd, auth, sizeof(auth), MSG_NOSIGNAL) != (ssize_t)sizeof(auth)) {
		r = -EPROTO;
		goto err_close_fd;
	}
	r = qfs_net_proof(net->key, net->key_len, QFS_NET_PROOF_ACCEPTOR, ep->node, peer, nc, na,
			  want);
	if (r < 0)
		goto err_close_fd;
	if (!qfs_net_mac_equal(want, proof, QFS_NET_PROOF)) {
		NET_ADD(tp->np->st.auth_refused, 1);
		QFS_LOG(tp->fails ? QFS_LOG_DEBUG : QFS_LOG_WARN,
			"net auth refused node=%u peer=%u err=\"wrong cluster key\"", ep->node, peer);
		r = -EKEYREJECTED;
		goto err_close_fd;
	}
	r = set_blocking(fd, 1);
	if (r < 0)
		goto err_close_fd;
	r = qfs_net_mac_new(net->key, net->key_len, ep->node, peer, nc, na, mac);
	if (r < 0)
		goto err_close_fd;
	*out = fd;
	return 0;

err_close_fd:
	close(fd);
	return r;
}

/* 1 if the peer closed fd (it never sends after its hello). */
static int peer_closed(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN | POLLRDHUP };

	return poll(&pfd, 1, 0) > 0;
}

/* Write the frames of list f, each followed by its tag (written into the
 * room past its bytes), freeing them and counting each as sent or
 * dropped.  0, or the negative errno that broke the connection. */
static int write_batch(struct tcp_peer *tp, int fd, struct qfs_net_frame *f)
{
	struct net_peer *np = tp->np;
	struct iovec iov[TX_IOV];
	struct qfs_net_frame *next;
	size_t off = 0; /* bytes of f (and its tag) already written */
	int err = 0;

	for (struct qfs_net_frame *g = f; g; g = g->next)
		if ((err = qfs_net_mac_tag(tp->mac, tp->seq++, g->data, g->len, g->data + g->len)))
			goto drop;
	while (f) {
		struct msghdr mh;
		struct qfs_net_frame *g = f;
		size_t o = off, left;
		int n = 0;
		ssize_t w;

		for (; g && n < TX_IOV; g = g->next, n++, o = 0) {
			iov[n].iov_base = g->data + o;
			iov[n].iov_len = g->len + QFS_NET_TAG - o;
		}
		memset(&mh, 0, sizeof(mh));
		mh.msg_iov = iov;
		mh.msg_iovlen = (size_t)n;
		w = sendmsg(fd, &mh, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			break;
		}
		left = (size_t)w;
		while (f && left >= f->len + QFS_NET_TAG - off) {
			left -= f->len + QFS_NET_TAG - off;
			off = 0;
			NET_ADD(np->st.sent_frames, 1);
			NET_ADD(np->st.sent_bytes, f->len);
			next = f->next;
			qfs_net_frame_free(f);
			f = next;
		}
		off += left;
	}
drop:
	for (; f; f = next) {
		next = f->next;
		NET_ADD(np->st.drop_frames, 1);
		NET_ADD(np->st.drop_bytes, f->len);
		qfs_net_frame_free(f);
	}
	return err;
}

/* Drop everything queued; caller holds tp->mu. */
static void queue_drop(struct tcp_peer *tp)
{
	struct qfs_net_frame *f, *next;

	for (f = tp->head; f; f = next) {
		next = f->next;
		NET_ADD(tp->np->st.drop_frames, 1);
		NET_ADD(tp->np->st.drop_bytes, f->len);
		qfs_net_frame_free(f);
	}
	tp->head = tp->tail = NULL;
	tp->bytes = 0;
}

static void cond_wait_until(struct tcp_peer *tp, uint64_t at_ms)
{
	struct timespec ts = { .tv_sec = (time_t)(at_ms / 1000),
			       .tv_nsec = (long)(at_ms % 1000) * 1000000L };

	pthread_cond_timedwait(&tp->cond, &tp->mu, &ts);
}

static void *sender_main(void *arg)
{
	struct tcp_peer *tp = arg;
	const struct qfs_net_params *prm = &tp->ep->net->prm;
	uint32_t self = tp->ep->node, peer = tp->np->node;
	struct qfs_net_frame *batch, *last;
	struct qfs_net_mac *mac = NULL;
	int fd = -1, r;

	pthread_mutex_lock(&tp->mu);
	while (!tp->stop) {
		if (tp->state == PEER_DOWN) {
			if (qfs_clock_mono_ms() < tp->retry_at_ms) {
				cond_wait_until(tp, tp->retry_at_ms);
				continue;
			}
			tp->state = PEER_IDLE;
		}
		if (!tp->head) {
			pthread_cond_wait(&tp->cond, &tp->mu);
			continue;
		}
		if (tp->fd < 0) {
			tp->state = PEER_CONNECTING;
			pthread_mutex_unlock(&tp->mu);
			r = tcp_connect(tp, &fd, &mac);
			pthread_mutex_lock(&tp->mu);
			if (r < 0) {
				QFS_LOG(tp->fails ? QFS_LOG_DEBUG : QFS_LOG_WARN,
					"net connect failed node=%u peer=%u err=\"%s\" retry_ms=%u dropped=%zu",
					self, peer, qfs_strerror(r), tp->backoff_ms, tp->bytes);
				tp->fails++;
				queue_drop(tp);
				tp->state = PEER_DOWN;
				tp->retry_at_ms = qfs_clock_mono_ms() + tp->backoff_ms;
				tp->backoff_ms = tp->backoff_ms * 2 < prm->backoff_max_ms ?
					tp->backoff_ms * 2 : prm->backoff_max_ms;
				continue;
			}
			tp->fd = fd;
			tp->mac = mac;
			tp->seq = 0;
			tp->state = PEER_UP;
			tp->fails = 0;
			tp->backoff_ms = prm->backoff_min_ms;
			NET_ADD(tp->np->st.connects, 1);
			QFS_LOG(QFS_LOG_INFO, "net connected node=%u peer=%u", self, peer);
			continue;
		}
		batch = tp->head;
		last = tp->tail;
		tp->head = tp->tail = NULL;
		tp->bytes = 0;
		fd = tp->fd;
		pthread_mutex_unlock(&tp->mu);
		if (peer_closed(fd)) {
			/* The peer went away while we were idle: nothing of the
			 * batch was written, so put it back and reconnect. */
			pthread_mutex_lock(&tp->mu);
			for (struct qfs_net_frame *g = batch; g; g = g->next)
				tp->bytes += g->len;
			last->next = tp->head;
			if (!tp->head)
				tp->tail = last;
			tp->head = batch;
			r = -ECONNRESET;
		} else {
			r = write_batch(tp, fd, batch);
			pthread_mutex_lock(&tp->mu);
		}
		if (r < 0) {
			QFS_LOG(QFS_LOG_INFO, "net connection lost node=%u peer=%u err=\"%s\"", self, peer,
				qfs_strerror(r));
			close(tp->fd);
			tp->fd = -1;
			qfs_net_mac_free(tp->mac);
			tp->mac = NULL;
			tp->state = PEER_IDLE;
		}
	}
	if (tp->fd >= 0) {
		close(tp->fd);
		tp->fd = -1;
	}
	qfs_net_mac_free(tp->mac);
	tp->mac = NULL;
	queue_drop(tp);
	pthread_mutex_unlock(&tp->mu);
	return NULL;
}

static struct tcp_peer *peer_start(struct qfs_net_ep *ep, struct net_peer *np)
{
	struct tcp_peer *tp = calloc(1, sizeof(*tp));
	pthread_condattr_t ca;

	if (!tp)
		return NULL;
	tp->ep = ep;
	tp->np = np;
	tp->fd = -1;
	tp->state = PEER_IDLE;
	tp->backoff_ms = ep->net->prm.backoff_min_ms;
	pthread_mutex_init(&tp->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&tp->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&tp->th, NULL, sender_main, tp) != 0) {
		pthread_cond_destroy(&tp->cond);
		pthread_mutex_destroy(&tp->mu);
		free(tp);
		return NULL;
	}
	return tp;
}

static void peer_stop(struct tcp_peer *tp)
{
	pthread_mutex_lock(&tp->mu);
	tp->stop = 1;
	if (tp->fd >= 0)
		shutdown(tp->fd, SHUT_RDWR);
	pthread_cond_signal(&tp->cond);
	pthread_mutex_unlock(&tp->mu);
	pthread_join(tp->th, NULL);
	pthread_cond_destroy(&tp->cond);
	pthread_mutex_destroy(&tp->mu);
	free(tp);
}

/* ---- ops ---- */

static int tcp_open(struct qfs_net_ep *ep, const struct sockaddr_in *sa)
{
	struct tcp_ep *t = calloc(1, sizeof(*t));
	struct sockaddr_in bound;
	socklen_t bl = sizeof(bound);
	int one = 1, r;

	if (!ep->net->key_len) {
		QFS_LOG(QFS_LOG_ERR, "net listen refused node=%u err=\"a tcp endpoint needs the "
			"cluster key (qfs_net_set_key)\"", ep->node);
		free(t);
		return -ENOKEY;
	}
	if (!t)
		return -ENOMEM;
	t->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (t->lfd < 0) {
		r = -errno;
		goto err_free;
	}
	(void)setsockopt(t->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(t->lfd, (const struct sockaddr *)sa, sizeof(*sa)) < 0 || listen(t->lfd, 64) < 0 ||
	    getsockname(t->lfd, (struct sockaddr *)&bound, &bl) < 0) {
		r = -errno;
		QFS_LOG(QFS_LOG_WARN, "net listen failed node=%u port=%u err=\"%s\"", ep->node,
			ntohs(sa->sin_port), qfs_strerror(r));
		goto err_close_lfd;
	}
	t->port = ntohs(bound.sin_port);
	if (pipe2(t->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
		r = -errno;
		goto err_close_lfd;
	}
	ep->tp = t;
	if (pthread_create(&t->rx, NULL, rx_main, ep) != 0) {
		r = -EAGAIN;
		goto err_close_pipe;
	}
	return 0;

err_close_pipe:
	ep->tp = NULL;
	close(t->wake[0]);
	close(t->wake[1]);
err_close_lfd:
	close(t->lfd);
err_free:
	free(t);
	return r;
}

static void tcp_close(struct qfs_net_ep *ep)
{
	struct tcp_ep *t = ep->tp;

	if (!t)
		return;
	(void)!write(t->wake[1], "x", 1);
	pthread_join(t->rx, NULL);
	close(t->wake[0]);
	close(t->wake[1]);
	close(t->lfd);
	/* The receiver is gone and the owner no longer sends: peers[] is stable. */
	for (uint32_t i = 0; i < ep->npeers; i++)
		if (ep->peers[i]->tp) {
			peer_stop(ep->peers[i]->tp);
			ep->peers[i]->tp = NULL;
		}
	free(t);
	ep->tp = NULL;
}

static int tcp_send(struct qfs_net_ep *ep, struct net_peer *p, struct qfs_net_frame *f)
{
	struct tcp_peer *tp;
	struct sockaddr_in sa;
	uint32_t len = f->len;
	int r = 0;

	pthread_mutex_lock(&ep->mu);
	tp = p->tp;
	pthread_mutex_unlock(&ep->mu);
	if (!tp) {
		r = qfs_net_addr_get(ep->net, p->node, &sa);
		if (r < 0)
			goto drop;
		pthread_mutex_lock(&ep->mu);
		if (!p->tp)
			p->tp = peer_start(ep, p);
		tp = p->tp;
		pthread_mutex_unlock(&ep->mu);
		if (!tp) {
			r = -ENOMEM;
			goto drop;
		}
	}
	pthread_mutex_lock(&tp->mu);
	if (tp->state == PEER_DOWN) {
		r = -ENOTCONN;
	} else if (tp->head && tp->bytes + len > ep->net->prm.send_queue_bytes) {
		r = -ENOBUFS;
	} else {
		if (tp->tail)
			tp->tail->next = f;
		else
			tp->head = f;
		tp->tail = f;
		tp->bytes += len;
		pthread_cond_signal(&tp->cond);
	}
	pthread_mutex_unlock(&tp->mu);
	if (r == 0)
		return 0;
drop:
	NET_ADD(p->st.drop_frames, 1);
	NET_ADD(p->st.drop_bytes, len);
	qfs_net_frame_free(f);
	return r;
}

static void tcp_peer_state(struct qfs_net_ep *ep, struct net_peer *p, struct qfs_net_stats *st)
{
	struct tcp_peer *tp;

	pthread_mutex_lock(&ep->mu);
	tp = p->tp;
	if (tp) {
		pthread_mutex_lock(&tp->mu);
		st->up = tp->state == PEER_UP;
		st->queued_bytes = tp->bytes;
		pthread_mutex_unlock(&tp->mu);
	}
	pthread_mutex_unlock(&ep->mu);
}

/* See net.h (qfs_net_endpoint_port). */
uint16_t qfs_net_endpoint_port(const struct qfs_net_ep *ep)
{
	const struct tcp_ep *t = ep->net->kind == QFS_NET_TCP ? ep->tp : NULL;

	return t ? t->port : 0;
}

const struct net_ops qfs_net_tcp_ops = {
	.open = tcp_open,
	.close = tcp_close,
	.send = tcp_send,
	.peer_state = tcp_peer_state,
};
