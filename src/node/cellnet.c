/*
 * cellnet.c - the remote cell: what a cluster mount (`quorumfs mount -o
 * cluster=FILE`) has instead of local nodes (contract: cluster.h and
 * cell.h, which forwards to it; doc/cluster.md).  Every cell call becomes
 * requests to the nodes of the cluster file over the authenticated tcp
 * net: proposals and reads are per-node attempts (one request to one
 * node, bounded by the wait the caller gives; a node that does not answer
 * is marked silent for a while), and the router decides which node to try
 * and when to retry (router/route.c: the leader cache, -EREMOTE hints, the
 * next node after a silent one, the cell timeout); group operations go to
 * every node at once, bounded by the cell timeout.
 *
 * Retries without double application.  A proposal whose answer is lost
 * (its node died or went silent after a quorum logged it) may still
 * commit, so a blind retry could apply it twice (an EXPECT_ABSENT then
 * fails, an NLINK counts twice).  Every proposal therefore carries a
 * token: its txn is prefixed with EXPECT_ABSENT(token key, -EALREADY) and
 * PUT(token key), the key unique to this router (a random 64-bit nonce)
 * and the group's proposal number; the first copy that applies writes
 * the key, a later copy fails whole with -EALREADY, which a retry reads
 * as "applied".  A copy that failed wrote nothing, so its retry computes
 * the same result again.  Token keys lie outside every item key of fs/
 * (16 bytes 0xff, then "\1t": no pk hashes to all ones, and 16 x 0xff
 * "\0" is the space of the 2PC records; doc/format-keys.md); each
 * proposal deletes the key of the group's proposal TOKEN_KEEP before it,
 * so a router leaves at most TOKEN_KEEP keys per group behind.
 *
 * Threads: callers block in call() on rc->cv; one receiver thread matches
 * replies to the waiting calls by request id.  rc->mu protects the pending
 * list, the proposal numbers and the liveness times.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "common/clock.h"
#include "common/glist.h"
#include "common/log.h"
#include "common/txn.h"
#include "net/frame.h"
#include "node/cluster.h"

#define TRY_MS 3000        /* one attempt at one node */
#define TOKEN_KEEP 4096    /* token keys kept per group: the retry window */
#define TOKEN_KEY_LEN (16 + 2 + 8 + 8)

struct pend {
	struct pend *next;
	uint64_t id;
	struct qfs_net_frame *rep; /* the reply, once arrived */
};

struct qfs_rcell {
	struct qfs_cluster cl;
	struct qfs_net *net;
	struct qfs_net_ep *ep;
	uint32_t self;              /* router id, QFS_RPC_ROUTER_MIN.. */
	char addr[64];              /* where the nodes reach us */
	uint32_t timeout_ms;
	int strong;
	pthread_mutex_t mu;
	pthread_cond_t cv;          /* a reply arrived (CLOCK_MONOTONIC) */
	struct pend *pend;          /* calls waiting for replies; mu */
	uint64_t next_id;           /* mu */
	uint64_t seen_ms[QFS_CLUSTER_MAX_NODES]; /* last reply per node; mu */
	uint64_t silent_until[QFS_CLUSTER_MAX_NODES]; /* a try at it went unanswered:
						   * skipped until then; mu */
	pthread_t rx;
	int stop;                   /* mu */
	uint64_t proposals;         /* relaxed atomic */
	uint64_t nonce;             /* of this router's token keys */
	struct { qfs_group_t g; uint64_t seq; } *gseq; /* proposals per group; mu */
	uint32_t ngseq, capgseq;
};

static uint64_t now_ms(void)
{
	return qfs_clock_mono_ms();
}

static int node_idx(const struct qfs_rcell *rc, uint32_t id)
{
	for (uint32_t i = 0; i < rc->cl.n; i++)
		if (rc->cl.nodes[i].id == id)
			return (int)i;
	return -1;
}

/* 1 if a try at node id went unanswered lately. */
static int silent(struct qfs_rcell *rc, uint32_t id)
{
	int i = node_idx(rc, id), s;

	if (i < 0)
		return 1;
	pthread_mutex_lock(&rc->mu);
	s = rc->silent_until[i] > qfs_clock_mono_ms();
	pthread_mutex_unlock(&rc->mu);
	return s;
}

static void set_silent(struct qfs_rcell *rc, uint32_t id, uint64_t until)
{
	int i = node_idx(rc, id);

	if (i < 0)
		return;
	pthread_mutex_lock(&rc->mu);
	rc->silent_until[i] = until;
	pthread_mutex_unlock(&rc->mu);
}

static void *rx_main(void *arg)
{
	struct qfs_rcell *rc = arg;

	for (;;) {
		struct qfs_net_frame *f;
		struct qfs_rpc_rep p;
		const uint8_t *body;
		size_t blen;
		uint8_t type;
		int stop, i;

		pthread_mutex_lock(&rc->mu);
		stop = rc->stop;
		pthread_mutex_unlock(&rc->mu);
		if (stop)
			break;
		if (qfs_net_recv_wait(rc->ep, 200, &f) != 0)
			continue;
		if (qfs_net_frame_open(f->data, f->len, &type, &body, &blen) != 0 ||
		    type != QFS_RPC_REP || qfs_rpc_rep_decode(body, blen, &p) != 0) {
			qfs_net_frame_free(f);
			continue;
		}
		pthread_mutex_lock(&rc->mu);
		if ((i = node_idx(rc, f->from)) >= 0) {
			rc->seen_ms[i] = now_ms();
			rc->silent_until[i] = 0;
		}
		for (struct pend *q = rc->pend; q; q = q->next)
			if (q->id == p.id && !q->rep) {
				q->rep = f;
				f = NULL;
				pthread_cond_broadcast(&rc->cv);
				break;
			}
		pthread_mutex_unlock(&rc->mu);
		qfs_net_frame_free(f); /* late: its caller gave up */
	}
	return NULL;
}

static void wait_until(struct qfs_rcell *rc, uint64_t at_ms)
{
	struct timespec ts = { .tv_sec = (time_t)(at_ms / 1000),
			       .tv_nsec = (long)(at_ms % 1000) * 1000000L };

	pthread_cond_timedwait(&rc->cv, &rc->mu, &ts);
}

/* Send q to each of the n nodes ids[] and wait up to wait_ms for their
 * replies: reps[i] gets node ids[i]'s reply frame, or NULL (no answer in
 * time, or the send failed).  The caller frees the frames. */
static void call_many(struct qfs_rcell *rc, const uint32_t *ids, uint32_t n, struct qfs_rpc_req *q,
		      uint32_t wait_ms, struct qfs_net_frame **reps)
{
	struct pend pd[QFS_CLUSTER_MAX_NODES];
	struct qfs_buf b;
	uint64_t dl = now_ms() + wait_ms;
	uint32_t left = 0;

	qfs_buf_init(&b);
	memset(pd, 0, sizeof(pd));
	pthread_mutex_lock(&rc->mu);
	for (uint32_t i = 0; i < n; i++) {
		pd[i].id = ++rc->next_id;
		pd[i].next = rc->pend;
		rc->pend = &pd[i];
	}
	pthread_mutex_unlock(&rc->mu);
	for (uint32_t i = 0; i < n; i++) {
		q->id = pd[i].id;
		q->from = rc->self;
		q->addr = rc->addr;
		if (qfs_rpc_req_encode(&b, q) == 0 && qfs_net_send(rc->ep, ids[i], b.data, b.len) == 0)
			left++;
		else
			pd[i].id = 0; /* never answered */
	}
	qfs_buf_close(&b);
	pthread_mutex_lock(&rc->mu);
	while (left) {
		uint32_t got = 0;

		for (uint32_t i = 0; i < n; i++)
			got += pd[i].id && pd[i].rep;
		if (got == left || now_ms() >= dl)
			break;
		wait_until(rc, dl);
	}
	for (struct pend **pp = &rc->pend; *pp;) {
		int mine = 0;

		for (uint32_t i = 0; i < n; i++)
			mine |= *pp == &pd[i];
		if (mine)
			*pp = (*pp)->next;
		else
			pp = &(*pp)->next;
	}
	pthread_mutex_unlock(&rc->mu);
	for (uint32_t i = 0; i < n; i++)
		reps[i] = pd[i].rep;
}

/* One request to one node: 0 with *f (its reply; *p points into it), or
 * -ETIMEDOUT (no answer within wait_ms). */
static int call(struct qfs_rcell *rc, uint32_t node, struct qfs_rpc_req *q, uint32_t wait_ms,
		struct qfs_net_frame **f, struct qfs_rpc_rep *p)
{
	const uint8_t *body;
	size_t blen;
	uint8_t type;

	call_many(rc, &node, 1, q, wait_ms, f);
	if (!*f)
		return -ETIMEDOUT;
	if (qfs_net_frame_open((*f)->data, (*f)->len, &type, &body, &blen) != 0 ||
	    qfs_rpc_rep_decode(body, blen, p) != 0) {
		qfs_net_frame_free(*f);
		*f = NULL;
		return -ETIMEDOUT;
	}
	return 0;
}

/* The per-request budget of one attempt of wait_ms at a node: the node
 * must answer before the router stops waiting. */
static uint32_t node_budget(uint32_t wait_ms)
{
	return wait_ms > 400 ? wait_ms - 200 : wait_ms / 2 + 1;
}

/* One attempt of q at node id (cluster.h): 0 with *f and *p, or
 * -EHOSTDOWN (no answer: the node is passed over for 2 x TRY_MS). */
static int attempt(struct qfs_rcell *rc, uint32_t id, struct qfs_rpc_req *q, uint32_t wait_ms,
		   struct qfs_net_frame **f, struct qfs_rpc_rep *p)
{
	if (node_idx(rc, id) < 0)
		return -EINVAL;
	q->timeout_ms = node_budget(wait_ms);
	if (call(rc, id, q, wait_ms, f, p) != 0) {
		/* silent: down or cut off; let the others elect */
		set_silent(rc, id, now_ms() + 2 * TRY_MS);
		return -EHOSTDOWN;
	}
	return 0;
}

/* See cluster.h. */
uint32_t qfs_rcell_node_id(struct qfs_rcell *rc, uint32_t idx)
{
	return idx < rc->cl.n ? rc->cl.nodes[idx].id : 0;
}

/* See cluster.h. */
int qfs_rcell_silent(struct qfs_rcell *rc, uint32_t id)
{
	return silent(rc, id);
}

/* The next proposal number of group (1, 2, ...), or 0 out of memory. */
static uint64_t next_seq(struct qfs_rcell *rc, qfs_group_t g)
{
	uint64_t seq = 0;

	pthread_mutex_lock(&rc->mu);
	for (uint32_t i = 0; i < rc->ngseq; i++)
		if (rc->gseq[i].g == g) {
			seq = ++rc->gseq[i].seq;
			goto out;
		}
	if (rc->ngseq == rc->capgseq) {
		uint32_t cap = rc->capgseq ? 2 * rc->capgseq : 16;
		void *n = realloc(rc->gseq, cap * sizeof(*rc->gseq));

		if (!n)
			goto out;
		rc->gseq = n;
		rc->capgseq = cap;
	}
	rc->gseq[rc->ngseq].g = g;
	rc->gseq[rc->ngseq++].seq = seq = 1;
out:
	pthread_mutex_unlock(&rc->mu);
	return seq;
}

static void token_key(const struct qfs_rcell *rc, uint64_t seq, uint8_t *k)
{
	memset(k, 0xff, 16);
	k[16] = 1; /* not 0: 16 x 0xff "\0" is the 2PC records' space */
	k[17] = 't';
	qfs_be64_put(k + 18, rc->nonce);
	qfs_be64_put(k + 26, seq);
}

/* out = txn with the token ops of proposal seq in front (txn encoding:
 * u8 version | be32 nops | ops, doc/format-txn.md).  0 or -EINVAL/-ENOMEM. */
static int tokened(const struct qfs_rcell *rc, uint64_t seq, const uint8_t *txn, size_t len,
		   struct qfs_buf *out)
{
	uint8_t k[TOKEN_KEY_LEN], old[TOKEN_KEY_LEN];
	struct qfs_buf pre;
	struct qfs_txn t;
	struct qfs_op *op;
	int r = 0;

	if (len < 5)
		return -EINVAL;
	token_key(rc, seq, k);
	qfs_txn_init(&t);
	qfs_buf_init(&pre);
	if (!(op = qfs_txn_add(&t, QFS_OP_EXPECT_ABSENT)))
		goto nomem;
	op->key = k;
	op->key_len = sizeof(k);
	op->err = -EALREADY;
	if (!(op = qfs_txn_add(&t, QFS_OP_PUT)))
		goto nomem;
	op->key = k;
	op->key_len = sizeof(k);
	if (seq > TOKEN_KEEP) {
		token_key(rc, seq - TOKEN_KEEP, old);
		if (!(op = qfs_txn_add(&t, QFS_OP_DEL)))
			goto nomem;
		op->key = old;
		op->key_len = sizeof(old);
	}
	qfs_txn_encode(&t, &pre);
	qfs_buf_reset(out);
	qfs_buf_put_u8(out, txn[0]);
	qfs_buf_put_u32(out, qfs_be32_get(txn + 1) + t.nops);
	qfs_buf_put(out, pre.data + 5, pre.len - 5);
	qfs_buf_put(out, txn + 5, len - 5);
	r = pre.err ? pre.err : out->err;
	goto out;
nomem:
	r = -ENOMEM;
out:
	qfs_buf_close(&pre);
	qfs_txn_close(&t);
	return r;
}

/* See cluster.h: the token of "Retries without double application"
 * above, once per proposal (every attempt sends the same copy). */
int qfs_rcell_prepare(struct qfs_rcell *rc, qfs_group_t group, const void *txn, size_t len,
		      struct qfs_buf *out)
{
	uint64_t seq;

	if (len > 5 && qfs_op_is_2pc(((const uint8_t *)txn)[5])) {
		/* a two-phase-commit op (doc/xact.md) goes alone in its txn
		 * (the store refuses it beside other ops) and is idempotent
		 * by itself: PREPARE of a prepared txid, COMMIT/ABORT of a
		 * finished one and a repeated DECIDE answer 0 */
		qfs_buf_reset(out);
		qfs_buf_put(out, txn, len);
		return out->err;
	}
	if (!(seq = next_seq(rc, group)))
		return -ENOMEM;
	return tokened(rc, seq, txn, len, out);
}

/* See cluster.h. */
int qfs_rcell_propose_at(struct qfs_rcell *rc, uint32_t id, qfs_group_t group, const void *wire,
			 size_t len, uint32_t wait_ms, int *result, uint32_t *leader)
{
	struct qfs_rpc_req q = { .op = QFS_RPC_PROPOSE, .group = group, .a = wire, .alen = len };
	struct qfs_net_frame *f;
	struct qfs_rpc_rep p;
	int r = attempt(rc, id, &q, wait_ms, &f, &p);

	if (r)
		return r;
	r = p.err;
	if (!r) {
		/* -EALREADY: an earlier copy of this very proposal applied. */
		*result = p.result == -EALREADY ? 0 : p.result;
		__atomic_fetch_add(&rc->proposals, 1, __ATOMIC_RELAXED);
	} else if (r == -EREMOTE && leader) {
		*leader = p.leader;
	}
	qfs_net_frame_free(f);
	return r;
}

/* A GET's reply: its error, or its value copied into *val (malloc'd, the
 * caller frees) and *val_len.  Frees the frame f. */
static int reply_value(struct qfs_net_frame *f, const struct qfs_rpc_rep *p, void **val,
		       size_t *val_len)
{
	int r = p->err;

	if (!r) {
		void *v = malloc(p->len ? p->len : 1);

		if (!v) {
			r = -ENOMEM;
		} else {
			memcpy(v, p->data, p->len);
			*val = v;
			*val_len = p->len;
		}
	}
	qfs_net_frame_free(f);
	return r;
}

/* See cluster.h. */
int qfs_rcell_get_at(struct qfs_rcell *rc, uint32_t id, qfs_group_t group, const uint8_t *key,
		     size_t key_len, uint32_t wait_ms, void **val, size_t *val_len, uint32_t *leader)
{
	struct qfs_rpc_req q = { .op = QFS_RPC_GET, .group = group, .a = key, .alen = key_len,
				 .flags = rc->strong ? QFS_RPC_STRONG : 0 };
	struct qfs_net_frame *f;
	struct qfs_rpc_rep p;
	int r = attempt(rc, id, &q, wait_ms, &f, &p);

	if (r)
		return r;
	if (p.err == -EREMOTE && leader)
		*leader = p.leader;
	return reply_value(f, &p, val, val_len);
}

/* See cluster.h. */
int qfs_rcell_get_node(struct qfs_rcell *rc, uint32_t id, qfs_group_t group, const uint8_t *key,
		       size_t key_len, void **val, size_t *val_len)
{
	struct qfs_rpc_req q = { .op = QFS_RPC_GET, .group = group, .a = key, .alen = key_len };
	struct qfs_net_frame *f;
	struct qfs_rpc_rep p;

	if (node_idx(rc, id) < 0)
		return -EINVAL;
	if (call(rc, id, &q, 1000, &f, &p) != 0)
		return -EHOSTDOWN;
	return reply_value(f, &p, val, val_len);
}

/* See cluster.h.  A page is about 4 MiB, one consistent read at node id. */
int qfs_rcell_scan_page_at(struct qfs_rcell *rc, uint32_t id, qfs_group_t group, const uint8_t *lo,
			   size_t lo_len, const uint8_t *hi, size_t hi_len, uint32_t wait_ms,
			   qfs_scan_cb cb, void *arg, int *more, struct qfs_buf *resume,
			   uint32_t *leader)
{
	struct qfs_rpc_req q = { .op = QFS_RPC_SCAN, .group = group, .a = lo, .alen = lo_len,
				 .b = hi, .blen = hi_len,
				 .flags = rc->strong ? QFS_RPC_STRONG : 0 };
	struct qfs_net_frame *f;
	struct qfs_rpc_rep p;
	struct qfs_rd rd;
	const uint8_t *lk = NULL;
	size_t lkl = 0;
	int r;

	if (!lo)
		q.flags |= QFS_RPC_LO_NULL;
	if (!hi)
		q.flags |= QFS_RPC_HI_NULL;
	qfs_buf_reset(resume);
	*more = 0;
	if ((r = attempt(rc, id, &q, wait_ms, &f, &p)))
		return r;
	if ((r = p.err)) {
		if (r == -EREMOTE && leader)
			*leader = p.leader;
		qfs_net_frame_free(f);
		return r;
	}
	qfs_rd_init(&rd, p.data, p.len);
	while (qfs_rd_left(&rd) && !r) {
		uint32_t kl = qfs_rd_u32(&rd), vl = qfs_rd_u32(&rd);
		const uint8_t *k = qfs_rd_raw(&rd, kl), *v = qfs_rd_raw(&rd, vl);

		if (rd.err) {
			r = -EIO;
			break;
		}
		r = cb(k, kl, v, vl, arg);
		lk = k;
		lkl = kl;
	}
	if (!r && p.result) {
		/* more: the next page starts at the smallest key after lk (a
		 * page without a key leaves resume empty: ask the same again) */
		*more = 1;
		if (lk) {
			qfs_buf_put(resume, lk, lkl);
			qfs_buf_put_u8(resume, 0);
			if (resume->err)
				r = -ENOMEM;
		}
	}
	qfs_net_frame_free(f);
	return r;
}

/* Ask every node; n_ok etc. count the answers. */
static void ask_all(struct qfs_rcell *rc, struct qfs_rpc_req *q, uint32_t wait_ms,
		    struct qfs_net_frame **reps, struct qfs_rpc_rep *ps)
{
	uint32_t ids[QFS_CLUSTER_MAX_NODES];

	for (uint32_t i = 0; i < rc->cl.n; i++)
		ids[i] = rc->cl.nodes[i].id;
	call_many(rc, ids, rc->cl.n, q, wait_ms, reps);
	for (uint32_t i = 0; i < rc->cl.n; i++) {
		const uint8_t *body;
		size_t blen;
		uint8_t type;

		if (reps[i] && (qfs_net_frame_open(reps[i]->data, reps[i]->len, &type, &body, &blen) ||
				qfs_rpc_rep_decode(body, blen, &ps[i]))) {
			qfs_net_frame_free(reps[i]);
			reps[i] = NULL;
		}
	}
}

static void free_all(struct qfs_rcell *rc, struct qfs_net_frame **reps)
{
	for (uint32_t i = 0; i < rc->cl.n; i++)
		qfs_net_frame_free(reps[i]);
}

/* See cluster.h.  Members: every node of the cluster file. */
int qfs_rcell_group_create(struct qfs_rcell *rc, qfs_group_t group)
{
	uint8_t ids[4 * QFS_CLUSTER_MAX_NODES];
	struct qfs_rpc_req q = { .op = QFS_RPC_CREATE, .group = group, .a = ids,
				 .alen = 4 * rc->cl.n };
	struct qfs_net_frame *reps[QFS_CLUSTER_MAX_NODES];
	struct qfs_rpc_rep ps[QFS_CLUSTER_MAX_NODES];
	uint32_t ok = 0, exist = 0, maj = rc->cl.n / 2 + 1;
	int other = 0;

	for (uint32_t i = 0; i < rc->cl.n; i++)
		qfs_be32_put(ids + 4 * i, rc->cl.nodes[i].id);
	ask_all(rc, &q, rc->timeout_ms < TRY_MS ? rc->timeout_ms : TRY_MS, reps, ps);
	for (uint32_t i = 0; i < rc->cl.n; i++) {
		if (!reps[i])
			continue;
		if (!ps[i].err)
			ok++;
		else if (ps[i].err == -EEXIST)
			exist++;
		else
			other = ps[i].err;
	}
	free_all(rc, reps);
	if (ok + exist >= maj)
		return exist >= maj ? -EEXIST : 0;
	return other ? other : -ETIMEDOUT;
}

/* See cluster.h. */
int qfs_rcell_group_drop(struct qfs_rcell *rc, qfs_group_t group)
{
	struct qfs_rpc_req q = { .op = QFS_RPC_DROP, .group = group };
	struct qfs_net_frame *reps[QFS_CLUSTER_MAX_NODES];
	struct qfs_rpc_rep ps[QFS_CLUSTER_MAX_NODES];
	int r = QFS_ENOGROUP;

	ask_all(rc, &q, rc->timeout_ms < TRY_MS ? rc->timeout_ms : TRY_MS, reps, ps);
	for (uint32_t i = 0; i < rc->cl.n; i++)
		if (reps[i] && (!ps[i].err || (r == QFS_ENOGROUP && ps[i].err != QFS_ENOGROUP)))
			r = ps[i].err;
	free_all(rc, reps);
	return r;
}

/* See cluster.h. */
int qfs_rcell_group_exists(struct qfs_rcell *rc, qfs_group_t group)
{
	struct qfs_rpc_req q = { .op = QFS_RPC_EXISTS, .group = group };
	struct qfs_net_frame *reps[QFS_CLUSTER_MAX_NODES];
	struct qfs_rpc_rep ps[QFS_CLUSTER_MAX_NODES];
	uint32_t yes = 0;

	ask_all(rc, &q, 2000, reps, ps);
	for (uint32_t i = 0; i < rc->cl.n; i++)
		yes += reps[i] && !ps[i].err && ps[i].result == 1;
	free_all(rc, reps);
	return yes >= rc->cl.n / 2 + 1;
}

/* See cluster.h. */
void qfs_rcell_groups(struct qfs_rcell *rc, void (*cb)(qfs_group_t group, void *arg), void *arg)
{
	struct qfs_rpc_req q = { .op = QFS_RPC_GROUPS };
	struct qfs_net_frame *reps[QFS_CLUSTER_MAX_NODES];
	struct qfs_rpc_rep ps[QFS_CLUSTER_MAX_NODES];
	struct qfs_glist gl;

	memset(&gl, 0, sizeof(gl));
	ask_all(rc, &q, 2000, reps, ps);
	for (uint32_t i = 0; i < rc->cl.n; i++)
		for (size_t k = 0; reps[i] && !ps[i].err && k + 8 <= ps[i].len; k += 8)
			qfs_glist_add(qfs_be64_get(ps[i].data + k), &gl);
	free_all(rc, reps);
	qfs_glist_sort(&gl);
	for (size_t k = 0; k < gl.n; k++)
		if (!k || gl.v[k] != gl.v[k - 1])
			cb(gl.v[k], arg);
	qfs_glist_free(&gl);
}

/* See cluster.h. */
int qfs_rcell_node_groups(struct qfs_rcell *rc, uint32_t id, uint32_t wait_ms,
			  struct qfs_glist *out)
{
	struct qfs_rpc_req q = { .op = QFS_RPC_GROUPS };
	struct qfs_net_frame *f;
	struct qfs_rpc_rep p;
	int r = 0;

	if (call(rc, id, &q, wait_ms, &f, &p) != 0)
		return -ETIMEDOUT;
	for (size_t k = 0; !p.err && k + 8 <= p.len; k += 8)
		qfs_glist_add(qfs_be64_get(p.data + k), out);
	if (p.err)
		r = p.err;
	else if (out->err)
		r = -ENOMEM;
	qfs_net_frame_free(f);
	return r;
}

/* See cluster.h. */
int qfs_rcell_node_up(struct qfs_rcell *rc, uint32_t id)
{
	struct qfs_rpc_req q = { .op = QFS_RPC_EXISTS, .group = 0 };
	struct qfs_net_frame *f;
	struct qfs_rpc_rep p;
	int i = node_idx(rc, id);
	uint64_t seen;

	if (i < 0)
		return 0;
	pthread_mutex_lock(&rc->mu);
	seen = rc->seen_ms[i];
	pthread_mutex_unlock(&rc->mu);
	if (seen && now_ms() - seen < 2000)
		return 1;
	if (call(rc, id, &q, 500, &f, &p) != 0)
		return 0;
	qfs_net_frame_free(f);
	return 1;
}

/* See cluster.h: "node ID az AZ state up|down addr A" lines. */
void qfs_rcell_nodes(struct qfs_rcell *rc, struct qfs_buf *out)
{
	for (uint32_t i = 0; i < rc->cl.n; i++)
		qfs_buf_printf(out, "node %u az %s state %s addr %s\n", rc->cl.nodes[i].id,
			       rc->cl.nodes[i].az, qfs_rcell_node_up(rc, rc->cl.nodes[i].id) ? "up" : "down",
			       rc->cl.nodes[i].addr);
}

/* See cluster.h: the node lines, then each answering node's group lines. */
void qfs_rcell_status(struct qfs_rcell *rc, struct qfs_buf *out)
{
	struct qfs_rpc_req q = { .op = QFS_RPC_STATUS };
	struct qfs_net_frame *reps[QFS_CLUSTER_MAX_NODES];
	struct qfs_rpc_rep ps[QFS_CLUSTER_MAX_NODES];

	ask_all(rc, &q, 2000, reps, ps);
	for (uint32_t i = 0; i < rc->cl.n; i++)
		qfs_buf_printf(out, "node %u az %s state %s addr %s\n", rc->cl.nodes[i].id,
			       rc->cl.nodes[i].az, reps[i] ? "up" : "down", rc->cl.nodes[i].addr);
	for (uint32_t i = 0; i < rc->cl.n; i++)
		if (reps[i] && !ps[i].err)
			qfs_buf_put(out, ps[i].data, ps[i].len);
	free_all(rc, reps);
}

/* See cluster.h. */
uint32_t qfs_rcell_node_count(struct qfs_rcell *rc)
{
	return rc->cl.n;
}

/* See cluster.h. */
uint64_t qfs_rcell_proposals(struct qfs_rcell *rc)
{
	return __atomic_load_n(&rc->proposals, __ATOMIC_RELAXED);
}

/* The local address a packet to the first node leaves from. */
static int local_addr(const struct qfs_rcell *rc, char *host, size_t len)
{
	struct sockaddr_in sa, me;
	socklen_t ml = sizeof(me);
	char a[64], *colon;
	int fd, r = 0;

	snprintf(a, sizeof(a), "%s", rc->cl.nodes[0].addr);
	colon = strrchr(a, ':');
	if (!colon)
		return -EINVAL;
	*colon = '\0';
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, a, &sa.sin_addr) != 1)
		return -EINVAL;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&me, &ml) < 0 ||
	    !inet_ntop(AF_INET, &me.sin_addr, host, (socklen_t)len))
		r = -errno;
	close(fd);
	return r;
}

/* See cluster.h. */
uint32_t qfs_rcell_mount_id(const char *ident)
{
	char host[256] = "";
	uint64_t h;

	(void)gethostname(host, sizeof(host) - 1);
	h = XXH64(host, strlen(host), 0);
	h = XXH64(ident, strlen(ident), h);
	return QFS_RPC_ROUTER_MIN + (uint32_t)(h % QFS_RPC_MOUNT_IDS);
}

/* See cluster.h. */
int qfs_rcell_open(const char *path, uint32_t self, uint32_t timeout_ms, int strong,
		   struct qfs_rcell **out)
{
	pthread_condattr_t ca;
	struct qfs_rcell *rc;
	char host[INET_ADDRSTRLEN], listen[64];
	uint8_t rnd[2];
	int r;

	rc = calloc(1, sizeof(*rc));
	if (!rc)
		return -ENOMEM;
	r = qfs_cluster_load(path, &rc->cl);
	if (r)
		goto err_free;
	rc->timeout_ms = timeout_ms;
	rc->strong = strong;
	if ((r = local_addr(rc, host, sizeof(host))) < 0) {
		QFS_LOG(QFS_LOG_ERR, "cluster router refused cluster=%s err=no route to node %u at %s: %s",
			path, rc->cl.nodes[0].id, rc->cl.nodes[0].addr, qfs_strerror(r));
		goto err_free;
	}
	if ((r = qfs_net_random(rnd, sizeof(rnd))) < 0)
		goto err_free;
	rc->self = self >= QFS_RPC_ROUTER_MIN && self <= 65535 ? self :
		QFS_RPC_ROUTER_MIN + (((uint32_t)rnd[0] << 8 | rnd[1]) % QFS_RPC_MOUNT_IDS);
	if ((r = qfs_net_random((uint8_t *)&rc->nonce, sizeof(rc->nonce))) < 0)
		goto err_free;
	if ((r = qfs_net_new(QFS_NET_TCP, NULL, &rc->net)) ||
	    (r = qfs_net_set_key(rc->net, rc->cl.key, rc->cl.key_len)))
		goto err_free;
	for (uint32_t i = 0; i < rc->cl.n; i++)
		if ((r = qfs_net_set_addr(rc->net, rc->cl.nodes[i].id, rc->cl.nodes[i].addr)))
			goto err_net;
	snprintf(listen, sizeof(listen), "%s:0", host);
	if ((r = qfs_net_endpoint_open(rc->net, rc->self, listen, NULL, NULL, &rc->ep)))
		goto err_net;
	snprintf(rc->addr, sizeof(rc->addr), "%s:%u", host, qfs_net_endpoint_port(rc->ep));
	pthread_mutex_init(&rc->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&rc->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&rc->rx, NULL, rx_main, rc) != 0) {
		r = -EAGAIN;
		goto err_locks;
	}
	QFS_LOG(QFS_LOG_INFO, "cluster router open cluster=%s router=%u addr=%s nodes=%u", path,
		rc->self, rc->addr, rc->cl.n);
	*out = rc;
	return 0;

err_locks:
	pthread_cond_destroy(&rc->cv);
	pthread_mutex_destroy(&rc->mu);
err_net:
	qfs_net_free(rc->net);
err_free:
	memset(&rc->cl, 0, sizeof(rc->cl));
	free(rc);
	return r;
}

/* See cluster.h. */
void qfs_rcell_close(struct qfs_rcell *rc)
{
	if (!rc)
		return;
	pthread_mutex_lock(&rc->mu);
	rc->stop = 1;
	pthread_mutex_unlock(&rc->mu);
	pthread_join(rc->rx, NULL);
	qfs_net_free(rc->net);
	pthread_cond_destroy(&rc->cv);
	pthread_mutex_destroy(&rc->mu);
	free(rc->gseq);
	memset(&rc->cl, 0, sizeof(rc->cl));
	free(rc);
}
