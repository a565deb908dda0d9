/*
 * cellnet.c - the remote cell: what a cluster mount (`quorumfs mount -o
 * cluster=FILE`) has instead of local nodes (contract: cluster.h and
 * cell.h, which forwards to it; doc/cluster.md).  Every cell call becomes
 * requests to the nodes of the cluster file over the authenticated tcp
 * net: proposals and reads are per-node attempts (one request to one
 * node, bounded by the wait the caller gives; a node that does not answer
 * is marked silent for a while), and the router decides which node to try
 * and when to retry (router/route.c: the leader cache, -EREMOTE hints, the
 * next node hosting the group after a silent one, a refresh of the
 * group's nodes on QFS_ENOGROUP, the cell timeout); group operations go
 * to every node at once, bounded by the cell timeout.
 *
 * Placement (doc/cluster.md "Placement").  In a cluster of more than
 * QFS_CLUSTER_REPLICAS nodes a group lives on QFS_CLUSTER_REPLICAS of them,
 * in distinct AZs: group_create asks every node for its groups, chooses
 * with qfs_cluster_place (fewest replicas first, ties by id) and creates
 * the group on those nodes only.  Which nodes host a group is cached per
 * group (rc->mc): from the creation, from the partition map
 * (qfs_rcell_group_hint) or, on a miss, from the members file every
 * hosting node names in its EXISTS answer; proposals and reads go to those
 * nodes only.  A cluster of at most QFS_CLUSTER_REPLICAS nodes keeps every
 * group on every node, as before, and asks nothing.
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
#include "node/node_int.h"
#include "repl/paxos.h"

#define TRY_MS 3000        /* one attempt at one node */
#define MEMBERS 1024       /* members cache slots */
#define ASK_MS 1000        /* wait for the answers about members */
#define TOKEN_KEEP 4096    /* token keys kept per group: the retry window */

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
	struct {
		qfs_group_t g;
		uint32_t n;         /* 0: empty slot */
		int told;           /* 1: the nodes said (a hint does not replace it) */
		uint32_t ids[QFS_CLUSTER_MAX_NODES];
	} mc[MEMBERS];              /* which nodes host a group; mu; by g % MEMBERS */
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

/* See cluster.h: forget which nodes host g (they changed). */
void qfs_rcell_group_forget(struct qfs_rcell *rc, qfs_group_t g)
{
	pthread_mutex_lock(&rc->mu);
	if (rc->mc[g % MEMBERS].g == g)
		rc->mc[g % MEMBERS].n = 0;
	pthread_mutex_unlock(&rc->mu);
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
	uint8_t k[QFS_NODE_TOKEN_KEY_LEN], old[QFS_NODE_TOKEN_KEY_LEN];
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

/* Remember that group lives on ids[n]; told: the nodes said so. */
static void members_set(struct qfs_rcell *rc, qfs_group_t g, const uint32_t *ids, uint32_t n,
			int told)
{
	if (!n || n > QFS_CLUSTER_MAX_NODES)
		return;
	pthread_mutex_lock(&rc->mu);
	if (told || rc->mc[g % MEMBERS].g != g || !rc->mc[g % MEMBERS].told) {
		rc->mc[g % MEMBERS].g = g;
		rc->mc[g % MEMBERS].n = n;
		rc->mc[g % MEMBERS].told = told;
		memcpy(rc->mc[g % MEMBERS].ids, ids, n * sizeof(ids[0]));
	}
	pthread_mutex_unlock(&rc->mu);
}

/* Members named by an EXISTS answer that says yes: n x be32 (0: none
 * named, an older node).  Returns the count written to ids. */
static uint32_t members_parse(const struct qfs_rpc_rep *p, uint32_t *ids)
{
	uint32_t n = 0;

	if (p->err || p->result != 1 || p->len % 4 || p->len / 4 > QFS_CLUSTER_MAX_NODES)
		return 0;
	for (size_t k = 0; k < p->len; k += 4)
		ids[n++] = qfs_be32_get(p->data + k);
	return n;
}

/* See cluster.h. */
void qfs_rcell_group_hint(struct qfs_rcell *rc, qfs_group_t group, const uint32_t *ids, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (node_idx(rc, ids[i]) < 0)
			return; /* a map from another cluster file: ask the nodes */
	members_set(rc, group, ids, n, 0);
}

/* See cluster.h. */
uint32_t qfs_rcell_group_nodes(struct qfs_rcell *rc, qfs_group_t group, uint32_t *out, uint32_t max)
{
	uint32_t ids[QFS_CLUSTER_MAX_NODES], n = 0;

	if (rc->cl.n > QFS_CLUSTER_REPLICAS) {
		pthread_mutex_lock(&rc->mu);
		if (rc->mc[group % MEMBERS].g == group && rc->mc[group % MEMBERS].n) {
			n = rc->mc[group % MEMBERS].n;
			memcpy(ids, rc->mc[group % MEMBERS].ids, n * sizeof(ids[0]));
		}
		pthread_mutex_unlock(&rc->mu);
	}
	if (!n && rc->cl.n > QFS_CLUSTER_REPLICAS) {
		struct qfs_rpc_req q = { .op = QFS_RPC_EXISTS, .group = group };
		struct qfs_net_frame *reps[QFS_CLUSTER_MAX_NODES];
		struct qfs_rpc_rep ps[QFS_CLUSTER_MAX_NODES];

		ask_all(rc, &q, ASK_MS, reps, ps);
		for (uint32_t i = 0; i < rc->cl.n && !n; i++)
			if (reps[i])
				n = members_parse(&ps[i], ids);
		free_all(rc, reps);
		if (n)
			members_set(rc, group, ids, n, 1);
	}
	if (!n) { /* every node (a small cluster, or nobody said) */
		n = rc->cl.n;
		for (uint32_t i = 0; i < n; i++)
			ids[i] = rc->cl.nodes[i].id;
	}
	memcpy(out, ids, (n < max ? n : max) * sizeof(ids[0]));
	return n;
}

/* Choose the nodes of a new group (cluster.h, qfs_cluster_place) from the
 * groups each node hosts now.  0 and ids[QFS_CLUSTER_REPLICAS], -EEXIST
 * (some node hosts group already), -EINVAL (fewer than 3 AZs). */
static int place(struct qfs_rcell *rc, qfs_group_t group, uint32_t *ids)
{
	struct qfs_rpc_req q = { .op = QFS_RPC_GROUPS };
	struct qfs_net_frame *reps[QFS_CLUSTER_MAX_NODES];
	struct qfs_rpc_rep ps[QFS_CLUSTER_MAX_NODES];
	uint32_t load[QFS_CLUSTER_MAX_NODES] = { 0 };
	uint8_t up[QFS_CLUSTER_MAX_NODES] = { 0 };
	int r, exists = 0;

	ask_all(rc, &q, ASK_MS, reps, ps);
	for (uint32_t i = 0; i < rc->cl.n; i++) {
		if (!reps[i] || ps[i].err)
			continue;
		up[i] = 1;
		load[i] = (uint32_t)(ps[i].len / 8);
		for (size_t k = 0; k + 8 <= ps[i].len; k += 8)
			exists |= qfs_be64_get(ps[i].data + k) == group;
	}
	free_all(rc, reps);
	if (exists)
		return -EEXIST;
	r = qfs_cluster_place(&rc->cl, load, up, ids);
	if (r == 0)
		QFS_LOG(QFS_LOG_INFO, "cluster placed group=%016llx nodes=%u,%u,%u",
			(unsigned long long)group, ids[0], ids[1], ids[2]);
	return r;
}

/* See cluster.h.  Members: every node of the cluster file, or in a larger
 * cluster the QFS_CLUSTER_REPLICAS nodes place() chose. */
int qfs_rcell_group_create(struct qfs_rcell *rc, qfs_group_t group)
{
	uint8_t buf[4 * QFS_CLUSTER_MAX_NODES];
	uint32_t ids[QFS_CLUSTER_MAX_NODES] = { 0 }, n = rc->cl.n;
	struct qfs_rpc_req q = { .op = QFS_RPC_CREATE, .group = group, .a = buf };
	struct qfs_net_frame *reps[QFS_CLUSTER_MAX_NODES];
	struct qfs_rpc_rep ps[QFS_CLUSTER_MAX_NODES];
	uint32_t ok = 0, exist = 0, maj;
	int other = 0;

	if (n > QFS_CLUSTER_REPLICAS) {
		int r = place(rc, group, ids);

		if (r)
			return r;
		n = QFS_CLUSTER_REPLICAS;
	} else {
		for (uint32_t i = 0; i < n; i++)
			ids[i] = rc->cl.nodes[i].id;
	}
	maj = n / 2 + 1;
	for (uint32_t i = 0; i < n; i++)
		qfs_be32_put(buf + 4 * i, ids[i]);
	q.alen = 4 * n;
	call_many(rc, ids, n, &q, rc->timeout_ms < TRY_MS ? rc->timeout_ms : TRY_MS, reps);
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *body;
		size_t blen;
		uint8_t type;

		if (!reps[i] || qfs_net_frame_open(reps[i]->data, reps[i]->len, &type, &body, &blen) ||
		    qfs_rpc_rep_decode(body, blen, &ps[i]))
			continue;
		if (!ps[i].err)
			ok++;
		else if (ps[i].err == -EEXIST)
			exist++;
		else
			other = ps[i].err;
	}
	for (uint32_t i = 0; i < n; i++)
		qfs_net_frame_free(reps[i]);
	if (ok + exist >= maj) {
		if (exist < maj)
			members_set(rc, group, ids, n, 1);
		return exist >= maj ? -EEXIST : 0;
	}
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

	uint32_t ids[QFS_CLUSTER_MAX_NODES], n = 0;

	ask_all(rc, &q, 2000, reps, ps);
	for (uint32_t i = 0; i < rc->cl.n; i++) {
		yes += reps[i] && !ps[i].err && ps[i].result == 1;
		if (reps[i] && !n)
			n = members_parse(&ps[i], ids);
	}
	free_all(rc, reps);
	/* a majority of its members (every node when none named them) */
	if (n)
		members_set(rc, group, ids, n, 1);
	return yes >= (n ? n : rc->cl.n) / 2 + 1;
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
int qfs_rcell_node_members(struct qfs_rcell *rc, uint32_t id, uint32_t wait_ms,
			   struct qfs_rcell_gm **out, size_t *n)
{
	struct qfs_rpc_req q = { .op = QFS_RPC_GROUPS, .flags = QFS_RPC_MEMBERS };
	struct qfs_rcell_gm *v = NULL;
	struct qfs_net_frame *f;
	struct qfs_rpc_rep p;
	size_t cnt = 0, cap = 0;
	struct qfs_rd rd;
	int r = 0, with;

	if (call(rc, id, &q, wait_ms, &f, &p) != 0)
		return -ETIMEDOUT;
	if (p.err) {
		r = p.err;
		goto out;
	}
	qfs_rd_init(&rd, p.data, p.len);
	/* an older node answers the plain list: no UINT64_MAX in front */
	with = p.len >= 8 && qfs_be64_get(p.data) == UINT64_MAX;
	if (with)
		(void)qfs_rd_u64(&rd);
	while (qfs_rd_left(&rd) && !rd.err) {
		struct qfs_rcell_gm gm;

		memset(&gm, 0, sizeof(gm));
		gm.g = qfs_rd_u64(&rd);
		if (with) {
			gm.n = qfs_rd_u8(&rd);
			if (gm.n > QFS_CLUSTER_MAX_NODES) {
				r = QFS_ECORRUPT;
				goto out;
			}
			for (uint32_t i = 0; i < gm.n; i++) {
				gm.ids[i] = qfs_rd_u32(&rd);
				if (gm.ids[i] & QFS_PAXOS_LOG_FLAG) {
					gm.ids[i] &= ~QFS_PAXOS_LOG_FLAG;
					gm.log |= 1u << i;
				}
			}
		}
		if (rd.err)
			break;
		if (cnt == cap) {
			size_t nc = cap ? 2 * cap : 64;
			struct qfs_rcell_gm *nv = realloc(v, nc * sizeof(*nv));

			if (!nv) {
				r = -ENOMEM;
				goto out;
			}
			v = nv;
			cap = nc;
		}
		v[cnt++] = gm;
	}
	if (rd.err)
		r = QFS_ECORRUPT;
out:
	qfs_net_frame_free(f);
	if (r) {
		free(v);
		return r;
	}
	*out = v;
	*n = cnt;
	return 0;
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
		QFS_LOG(QFS_LOG_ERR, "cluster router refused cluster=%s err=\"no route to node %u at %s: %s\"",
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

/* ---- membership changes (cluster.h, doc/cluster.md "Membership") ---- */

#define STEP_WAIT_MS 100   /* between two polls of a step */

static int has(const uint32_t *ids, uint32_t n, uint32_t id)
{
	for (uint32_t i = 0; i < n; i++)
		if (ids[i] == id)
			return 1;
	return 0;
}

/* The members of g as the nodes hosting it say now, and in *hosting
 * which nodes answered that they host it (bit i: cl.nodes[i]).  0,
 * QFS_ENOGROUP (nobody hosts it or names members). */
static int members_now(struct qfs_rcell *rc, qfs_group_t g, uint32_t *ids, uint32_t *n,
		       uint32_t *hosting)
{
	struct qfs_rpc_req q = { .op = QFS_RPC_EXISTS, .group = g };
	struct qfs_net_frame *reps[QFS_CLUSTER_MAX_NODES];
	struct qfs_rpc_rep ps[QFS_CLUSTER_MAX_NODES];
	uint32_t k = 0, best = 0;

	*hosting = 0;
	ask_all(rc, &q, ASK_MS, reps, ps);
	for (uint32_t i = 0; i < rc->cl.n; i++) {
		uint32_t tmp[QFS_CLUSTER_MAX_NODES], m;

		if (!reps[i] || (m = members_parse(&ps[i], tmp)) == 0)
			continue;
		*hosting |= 1u << i;
		/* a joining replica holds the members in force without
		 * itself; the replicas that applied a change the new ones:
		 * take the answer of a node that is a member of its own list */
		if (!k || (!best && has(tmp, m, rc->cl.nodes[i].id))) {
			memcpy(ids, tmp, m * sizeof(tmp[0]));
			k = m;
			best = has(tmp, m, rc->cl.nodes[i].id);
		}
	}
	free_all(rc, reps);
	if (!k)
		return QFS_ENOGROUP;
	*n = k;
	return 0;
}

/* One node's answer to q within wait_ms: its err, or -ETIMEDOUT. */
static int ask_one(struct qfs_rcell *rc, uint32_t node, struct qfs_rpc_req *q, uint32_t wait_ms)
{
	struct qfs_net_frame *f;
	struct qfs_rpc_rep p;
	int r;

	if (call(rc, node, q, wait_ms, &f, &p) != 0)
		return -ETIMEDOUT;
	r = p.err;
	qfs_net_frame_free(f);
	return r;
}

/* Node's applied LSN of g from its status lines ("group G node N ...
 * applied A").  0 and *lsn, or -ETIMEDOUT / QFS_ENOGROUP. */
static int applied_on(struct qfs_rcell *rc, uint32_t node, qfs_group_t g, qfs_lsn_t *lsn)
{
	struct qfs_rpc_req q = { .op = QFS_RPC_STATUS };
	struct qfs_net_frame *f;
	struct qfs_rpc_rep p;
	char pat[64], *txt;
	const char *at;
	int r = QFS_ENOGROUP;

	if (call(rc, node, &q, ASK_MS, &f, &p) != 0)
		return -ETIMEDOUT;
	txt = p.err ? NULL : malloc(p.len + 1);
	if (txt) {
		memcpy(txt, p.data, p.len);
		txt[p.len] = 0;
		snprintf(pat, sizeof(pat), "group %016llx node %u ", (unsigned long long)g, node);
		if ((at = strstr(txt, pat))) {
			const char *eol = strchr(at, '\n'), *a = strstr(at, " applied ");
			unsigned long long v;

			if (a && (!eol || a < eol) && sscanf(a, " applied %llu", &v) == 1) {
				*lsn = v;
				r = 0;
			}
		}
		free(txt);
	}
	qfs_net_frame_free(f);
	return r;
}

/* Make ids[n] group g's members through its leader (one change): try the
 * nodes of try[ntry] (the members before and after), following -EREMOTE
 * hints, passing over nodes that do not answer, retrying while a change
 * or a new leader's barrier is in flight, until dl.  Its own small loop
 * (not the routing of proposals): a CONFIG entry carries no retry token;
 * a copy re-sent after a timeout that finds the first one committed is
 * refused -EINVAL (not a single change), and the members files then
 * tell that the change is done. */
static int config_to(struct qfs_rcell *rc, qfs_group_t g, const uint32_t *try, uint32_t ntry,
		     const uint32_t *ids, uint32_t n, uint64_t dl)
{
	uint8_t buf[4 * QFS_CLUSTER_MAX_NODES];
	struct qfs_rpc_req q = { .op = QFS_RPC_CONFIG, .group = g, .a = buf, .alen = 4 * n };
	uint32_t target = try[0], k = 0;
	int r = -ETIMEDOUT, sent = 0;

	for (uint32_t i = 0; i < n; i++)
		qfs_be32_put(buf + 4 * i, ids[i]);
	while (now_ms() < dl) {
		struct qfs_net_frame *f;
		struct qfs_rpc_rep p;

		q.timeout_ms = TRY_MS - 200;
		if (call(rc, target, &q, TRY_MS, &f, &p) != 0) {
			target = try[++k % ntry]; /* silent: the next one */
			continue;
		}
		r = p.err;
		qfs_net_frame_free(f);
		if (r == -EINVAL && sent) { /* an earlier copy may have committed */
			uint32_t now[QFS_CLUSTER_MAX_NODES], nn = 0, h;

			if (members_now(rc, g, now, &nn, &h) == 0 && nn == n &&
			    !memcmp(now, ids, n * sizeof(ids[0])))
				r = 0;
			break;
		}
		sent |= r == -ETIMEDOUT || r == -EAGAIN;
		if (r == -EREMOTE && p.leader && node_idx(rc, p.leader) >= 0 && p.leader != target) {
			target = p.leader;
			continue;
		}
		if (r != -EREMOTE && r != -EBUSY && r != -EAGAIN && r != -ETIMEDOUT && r != QFS_ESTOPPED)
			break;
		if (r == -EREMOTE || r == QFS_ESTOPPED)
			target = try[++k % ntry];
		usleep(STEP_WAIT_MS * 1000); /* an election, or a change in flight */
		r = -ETIMEDOUT;
	}
	if (r == 0)
		members_set(rc, g, ids, n, 1);
	return r;
}

/* Wait until member nw of g (members ids[n]) applied what the other
 * members had applied when asked: 0, or -ETIMEDOUT at dl. */
static int caught_up(struct qfs_rcell *rc, qfs_group_t g, const uint32_t *ids, uint32_t n,
		     uint32_t nw, uint64_t dl)
{
	qfs_lsn_t want = 0, got = 0;
	int r;

	for (uint32_t k = 0; k < n; k++) {
		qfs_lsn_t a;

		if (ids[k] != nw && applied_on(rc, ids[k], g, &a) == 0 && a > want)
			want = a;
	}
	while ((r = applied_on(rc, nw, g, &got)) != 0 || got < want) {
		if (now_ms() >= dl) {
			QFS_LOG(QFS_LOG_ERR, "cluster member catch-up timed out group=%016llx node=%u "
				"applied=%llu want=%llu", (unsigned long long)g, nw,
				(unsigned long long)got, (unsigned long long)want);
			return -ETIMEDOUT;
		}
		usleep(STEP_WAIT_MS * 1000);
	}
	QFS_LOG(QFS_LOG_INFO, "cluster member caught up group=%016llx node=%u applied=%llu",
		(unsigned long long)g, nw, (unsigned long long)got);
	return 0;
}

/* The vote floor node nw must join g with (doc/paxos.md section 7), from
 * g's leader among try[ntry], following -EREMOTE hints and retrying while
 * a new leader's barrier or nw's removal is uncommitted, until dl: 0 and
 * out[QFS_RPC_FLOOR_BYTES], or the error (-ETIMEDOUT: no leader answered;
 * an older node does not know the request). */
static int floor_from(struct qfs_rcell *rc, qfs_group_t g, const uint32_t *try, uint32_t ntry,
		      uint32_t nw, uint64_t dl, uint8_t *out)
{
	uint8_t a[4];
	struct qfs_rpc_req q = { .op = QFS_RPC_FLOOR, .group = g, .a = a, .alen = 4 };
	uint32_t target = try[0], k = 0;
	int r = -ETIMEDOUT;

	qfs_be32_put(a, nw);
	while (now_ms() < dl) {
		struct qfs_net_frame *f;
		struct qfs_rpc_rep p;

		if (call(rc, target, &q, ASK_MS, &f, &p) != 0) {
			target = try[++k % ntry]; /* silent: the next one */
			r = -ETIMEDOUT;
			continue;
		}
		r = p.err;
		if (r == 0 && p.len == QFS_RPC_FLOOR_BYTES)
			memcpy(out, p.data, QFS_RPC_FLOOR_BYTES);
		else if (r == 0)
			r = QFS_ECORRUPT;
		qfs_net_frame_free(f);
		if (r == -EREMOTE && p.leader && node_idx(rc, p.leader) >= 0 && p.leader != target) {
			target = p.leader;
			continue;
		}
		if (r != -EREMOTE && r != -EBUSY && r != QFS_ESTOPPED && r != QFS_ENOGROUP)
			break;
		if (r != -EBUSY)
			target = try[++k % ntry];
		usleep(STEP_WAIT_MS * 1000); /* an election, or a change in flight */
		r = -ETIMEDOUT;
	}
	return r;
}

/* 1 if node nw hosts a replica of g whose members name nw: one left from
 * its old membership (it was down when it was removed, and its reconciler
 * has not dropped it yet). */
static int stale_on(struct qfs_rcell *rc, qfs_group_t g, uint32_t nw)
{
	struct qfs_rpc_req q = { .op = QFS_RPC_EXISTS, .group = g };
	uint32_t tmp[QFS_CLUSTER_MAX_NODES], m;
	struct qfs_net_frame *f;
	struct qfs_rpc_rep p;
	int r;

	if (call(rc, nw, &q, ASK_MS, &f, &p) != 0)
		return 0;
	m = p.err == 0 && p.result == 1 ? members_parse(&p, tmp) : 0;
	r = m && has(tmp, m, nw);
	qfs_net_frame_free(f);
	return r;
}

/* Add node nw to g (members ids[*n]): floor, join, CONFIG, catch up. */
static int add_member(struct qfs_rcell *rc, qfs_group_t g, uint32_t *ids, uint32_t *n,
		      uint32_t nw, uint32_t hosting, uint64_t dl)
{
	uint8_t buf[4 * QFS_CLUSTER_MAX_NODES], fl[QFS_RPC_FLOOR_BYTES];
	struct qfs_rpc_req q = { .op = QFS_RPC_JOIN, .flags = QFS_RPC_ADOPT, .group = g, .a = buf,
				 .alen = 4 * *n, .b = fl, .blen = sizeof(fl) };
	int r, i = node_idx(rc, nw);

	if (*n >= QFS_CLUSTER_MAX_NODES)
		return -EINVAL;
	if ((hosting & (1u << i)) && stale_on(rc, g, nw)) {
		/* its reconciler may drop that replica at any moment, even
		 * once the CONFIG below made it a member again: drop it now
		 * and join afresh, with the floor */
		struct qfs_rpc_req d = { .op = QFS_RPC_DROP, .group = g };

		r = ask_one(rc, nw, &d, ASK_MS);
		QFS_LOG(r && r != QFS_ENOGROUP ? QFS_LOG_ERR : QFS_LOG_INFO, "cluster member dropped "
			"group=%016llx node=%u err=\"%s\" why=\"its replica of an earlier membership\"",
			(unsigned long long)g, nw, r ? qfs_strerror(r) : "none");
		if (r && r != QFS_ENOGROUP)
			return r;
	}
	/* A JOIN also when nw hosts a replica its members do not name (a
	 * join whose CONFIG never committed): it answers -EEXIST and the
	 * replica is taken over, but the JOIN restarts its orphan grace and
	 * waits for (or keeps out) its reconciler's drop (doc/cluster.md
	 * "Orphan replicas"), so the CONFIG below never adds a node whose
	 * replica was just dropped; dropped meanwhile, the JOIN makes a new
	 * one, with the floor.
	 * An empty replica must not vote like a member that never was one:
	 * node nw may have been one, and a member down since may still count
	 * it (doc/cluster.md "Membership") */
	r = floor_from(rc, g, ids, *n, nw, dl, fl);
	if (r) {
		QFS_LOG(QFS_LOG_ERR, "cluster member floor group=%016llx node=%u err=\"%s\"",
			(unsigned long long)g, nw, qfs_strerror(r));
		return r;
	}
	for (uint32_t k = 0; k < *n; k++)
		qfs_be32_put(buf + 4 * k, ids[k]);
	r = ask_one(rc, nw, &q, ASK_MS);
	QFS_LOG(r && r != -EEXIST ? QFS_LOG_ERR : QFS_LOG_INFO,
		"cluster member join group=%016llx node=%u err=\"%s\"", (unsigned long long)g, nw,
		r == -EEXIST ? "none (its replica is there: taken over)" : r ? qfs_strerror(r) : "none");
	if (r && r != -EEXIST)
		return r;
	ids[(*n)++] = nw;
	r = config_to(rc, g, ids, *n, ids, *n, dl);
	QFS_LOG(r ? QFS_LOG_ERR : QFS_LOG_INFO, "cluster member added group=%016llx node=%u members=%u "
		"err=\"%s\"", (unsigned long long)g, nw, *n, r ? qfs_strerror(r) : "none");
	if (r) {
		(*n)--;
		return r;
	}
	return caught_up(rc, g, ids, *n, nw, dl);
}

/* Remove node old from g (members ids[*n]): CONFIG, then drop its replica. */
static int remove_member(struct qfs_rcell *rc, qfs_group_t g, uint32_t *ids, uint32_t *n,
			 uint32_t old, uint64_t dl)
{
	struct qfs_rpc_req q = { .op = QFS_RPC_DROP, .group = g };
	uint32_t k, m = 0, nids[QFS_CLUSTER_MAX_NODES];
	int r;

	for (k = 0; k < *n; k++)
		if (ids[k] != old)
			nids[m++] = ids[k];
	if (!m)
		return -EINVAL;
	r = config_to(rc, g, ids, *n, nids, m, dl);
	QFS_LOG(r ? QFS_LOG_ERR : QFS_LOG_INFO, "cluster member removed group=%016llx node=%u members=%u "
		"err=\"%s\"", (unsigned long long)g, old, m, r ? qfs_strerror(r) : "none");
	if (r)
		return r;
	memcpy(ids, nids, m * sizeof(nids[0]));
	*n = m;
	r = ask_one(rc, old, &q, ASK_MS);
	QFS_LOG(r && r != QFS_ENOGROUP ? QFS_LOG_WARN : QFS_LOG_INFO, "cluster member dropped "
		"group=%016llx node=%u err=\"%s\"", (unsigned long long)g, old,
		r == -ETIMEDOUT ? "no answer: its copy stays until it is dropped or wiped" :
		r ? qfs_strerror(r) : "none");
	return 0;
}

/* See cluster.h. */
int qfs_rcell_member_change(struct qfs_rcell *rc, qfs_group_t group, enum qfs_member_op op,
			    uint32_t old, uint32_t new, uint32_t timeout_ms, uint32_t *out,
			    uint32_t *nout)
{
	struct qfs_rpc_req ping = { .op = QFS_RPC_EXISTS, .group = group };
	uint32_t ids[QFS_CLUSTER_MAX_NODES], n = 0, hosting = 0;
	uint64_t dl = now_ms() + timeout_ms;
	int r, old_up = 0, removed = 0, added = 0;
	const char *why = NULL;

	if ((op != QFS_MEMBER_REMOVE && node_idx(rc, new) < 0) ||
	    (op != QFS_MEMBER_ADD && node_idx(rc, old) < 0) ||
	    (op == QFS_MEMBER_REPLACE && old == new))
		return -EINVAL;
	r = members_now(rc, group, ids, &n, &hosting);
	if (r)
		return r;
	if (op == QFS_MEMBER_REPLACE) {
		/* a run that stopped half-way goes on where it stopped */
		if (!has(ids, n, old) && has(ids, n, new))
			goto done;
		if (!has(ids, n, old) && n < QFS_CLUSTER_REPLICAS)
			removed = 1; /* stopped after the removal: add only */
		else if (!has(ids, n, old))
			why = "old is not a member";
		else if (has(ids, n, new))
			added = 1;   /* stopped after the add: remove only */
	} else if (op == QFS_MEMBER_REMOVE) {
		why = !has(ids, n, old) ? "old is not a member" : n <= 1 ? "the last member" : NULL;
	} else if (has(ids, n, new)) {
		why = "new is already a member";
	}
	if (why) {
		QFS_LOG(QFS_LOG_ERR, "cluster member refused group=%016llx old=%u new=%u members=%u "
			"err=\"%s\"", (unsigned long long)group, old, new, n, why);
		return -EINVAL;
	}
	if (op == QFS_MEMBER_REPLACE) {
		const char *az = qfs_cluster_node(&rc->cl, new)->az;

		for (uint32_t k = 0; k < n && !added; k++)
			if (ids[k] != old && ids[k] != new && qfs_cluster_node(&rc->cl, ids[k]) &&
			    !strcmp(qfs_cluster_node(&rc->cl, ids[k])->az, az)) {
				QFS_LOG(QFS_LOG_ERR, "cluster member refused group=%016llx old=%u new=%u "
					"err=\"node %u is already in AZ %s\"", (unsigned long long)group, old,
					new, ids[k], az);
				return -EINVAL;
			}
		old_up = !removed && ask_one(rc, old, &ping, ASK_MS) == 0;
	}
	QFS_LOG(QFS_LOG_INFO, "cluster member change group=%016llx op=%s old=%u new=%u old_up=%d",
		(unsigned long long)group, op == QFS_MEMBER_ADD ? "add" : op == QFS_MEMBER_REMOVE ?
		"remove" : "replace", old, new, old_up);
	switch (op) {
	case QFS_MEMBER_ADD:
		r = add_member(rc, group, ids, &n, new, hosting, dl);
		break;
	case QFS_MEMBER_REMOVE:
		r = remove_member(rc, group, ids, &n, old, dl);
		break;
	case QFS_MEMBER_REPLACE:
		if (removed) {
			r = add_member(rc, group, ids, &n, new, hosting, dl);
		} else if (added) {
			/* a run that stopped before new caught up: old's copy
			 * stays until new has what the others have (three
			 * up-to-date copies throughout) */
			r = caught_up(rc, group, ids, n, new, dl);
			if (r == 0)
				r = remove_member(rc, group, ids, &n, old, dl);
		} else if (old_up) { /* three copies throughout */
			r = add_member(rc, group, ids, &n, new, hosting, dl);
			if (r == 0)
				r = remove_member(rc, group, ids, &n, old, dl);
		} else {      /* the add must not need the dead node */
			r = remove_member(rc, group, ids, &n, old, dl);
			if (r == 0)
				r = add_member(rc, group, ids, &n, new, hosting, dl);
		}
		break;
	default:
		r = -EINVAL;
	}
	if (r)
		return r;
done:
	memcpy(out, ids, n * sizeof(ids[0]));
	*nout = n;
	return 0;
}

/* See cluster.h. */
int qfs_rcell_join_at(struct qfs_rcell *rc, uint32_t node, qfs_group_t group, const uint32_t *words,
		      uint32_t n, int log, const struct qfs_paxos_floor *floor)
{
	uint8_t buf[4 * QFS_CLUSTER_MAX_NODES], fl[QFS_RPC_FLOOR_BYTES];
	struct qfs_rpc_req q = { .op = QFS_RPC_JOIN, .group = group, .a = buf };

	if (n + (log ? 1 : 0) > QFS_CLUSTER_MAX_NODES || node_idx(rc, node) < 0)
		return -EINVAL;
	for (uint32_t k = 0; k < n; k++)
		qfs_be32_put(buf + 4 * k, words[k]);
	if (log)
		qfs_be32_put(buf + 4 * n++, node | QFS_PAXOS_LOG_FLAG);
	q.alen = 4 * n;
	if (floor) { /* as QFS_RPC_FLOOR's reply */
		qfs_be64_put(fl, floor->promised);
		qfs_be64_put(fl + 8, floor->lsn);
		qfs_be64_put(fl + 16, floor->ballot);
		q.b = fl;
		q.blen = sizeof(fl);
	}
	return ask_one(rc, node, &q, ASK_MS);
}

/* See cluster.h. */
int qfs_rcell_nonmember_at(struct qfs_rcell *rc, uint32_t node, qfs_group_t group, uint32_t id,
			   uint32_t *leader)
{
	uint8_t a[4];
	struct qfs_rpc_req q = { .op = QFS_RPC_NONMEMBER, .group = group, .a = a, .alen = 4 };
	struct qfs_net_frame *f;
	struct qfs_rpc_rep p;
	int r;

	*leader = 0;
	qfs_be32_put(a, id);
	if (call(rc, node, &q, ASK_MS, &f, &p) != 0)
		return -ETIMEDOUT;
	r = p.err;
	if (r == -EREMOTE)
		*leader = p.leader;
	qfs_net_frame_free(f);
	return r;
}

/* See cluster.h. */
int qfs_rcell_drop_at(struct qfs_rcell *rc, uint32_t node, qfs_group_t group)
{
	struct qfs_rpc_req q = { .op = QFS_RPC_DROP, .group = group };

	return ask_one(rc, node, &q, ASK_MS);
}

/* See cluster.h. */
int qfs_rcell_applied_at(struct qfs_rcell *rc, uint32_t node, qfs_group_t group, qfs_lsn_t *lsn)
{
	return applied_on(rc, node, group, lsn);
}

/* See cluster.h. */
int qfs_rcell_groups_of(struct qfs_rcell *rc, uint32_t id, struct qfs_glist *out)
{
	for (uint32_t i = 0; i < rc->cl.n; i++) {
		struct qfs_rcell_gm *gm = NULL;
		size_t n = 0;

		if (qfs_rcell_node_members(rc, rc->cl.nodes[i].id, ASK_MS, &gm, &n) != 0)
			continue;
		for (size_t k = 0; k < n; k++)
			if ((gm[k].n ? has(gm[k].ids, gm[k].n, id) : rc->cl.nodes[i].id == id) &&
			    !qfs_glist_has(out, gm[k].g))
				qfs_glist_add(gm[k].g, out);
		free(gm);
	}
	qfs_glist_sort(out);
	return out->err;
}
