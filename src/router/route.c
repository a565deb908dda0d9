/*
 * route.c - leader routing and retries of proposals and reads over a
 * cell's per-replica operations (route.h; the rules: doc/cell.md
 * "Requests").  Moved here from node/cell.c (issue 12 item 6): the cell
 * answers for one replica, the route decides where to send and when to
 * retry.
 *
 * Locking: rt->mu protects the no-quorum table and the remote leader
 * cache; it is never held across a cell call.  The cell calls the
 * node_up hook with its op_mu held: order cell op_mu -> rt->mu.  hint, nq_until and the counters are relaxed atomics.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/log.h"
#include "node/cell.h"
#include "node/cluster.h"
#include "router/route.h"

#define NOQUORUM_SLOTS 16

struct qfs_route {
	const struct qfs_route_ops *ops;
	void *cell;                  /* ops' first argument */
	pthread_mutex_t mu;          /* nq */
	/* Groups whose last wait timed out: a wait that starts within
	 * QFS_ROUTE_NOQUORUM_HOLD_MS of it waits only
	 * QFS_ROUTE_NOQUORUM_WAIT_MS when it is part of a FUSE call.  mu. */
	struct { qfs_group_t group; uint64_t until_ms; } nq[NOQUORUM_SLOTS];
	uint64_t nq_until;           /* max until_ms above; relaxed atomic (fast path) */
	uint32_t hint;               /* last node a proposal succeeded at; relaxed atomic */
	uint64_t st_redirects, st_timeouts; /* relaxed atomics */
	int remote;                  /* the cell is remote (ops->remote); immutable */
	struct { qfs_group_t g; uint32_t leader; } lc[QFS_ROUTE_LEADERS]; /* remote: the
					leader each group answered from last; mu */
};

/* ---------------------------------------------------------------- real cell */

static uint32_t rc_nodes(void *c) { return qfs_cell_node_count(c); }
static uint32_t rc_timeout(void *c) { return qfs_cell_timeout_ms(c); }
static enum qfs_cell_reads rc_mode(void *c) { return qfs_cell_read_mode(c); }
static int rc_exists(void *c, qfs_group_t g) { return qfs_cell_group_exists(c, g); }

static int rc_view(void *c, uint32_t id, qfs_group_t g, int info, struct qfs_cell_view *out)
{
	return qfs_cell_replica_view(c, id, g, info, out);
}

static int rc_propose_at(void *c, uint32_t id, qfs_group_t g, const void *txn, size_t len,
			 uint32_t timeout_ms, int *result, uint32_t *leader)
{
	return qfs_cell_propose_at(c, id, g, txn, len, timeout_ms, result, leader);
}

static int rc_get_at(void *c, uint32_t id, qfs_group_t g, const uint8_t *key, size_t key_len,
		     uint32_t wait_ms, void **val, size_t *val_len, uint32_t *leader)
{
	return qfs_cell_get_at(c, id, g, key, key_len, wait_ms, val, val_len, leader);
}

static int rc_get_at_val(void *c, uint32_t id, qfs_group_t g, const uint8_t *key, size_t key_len,
			 uint32_t wait_ms, struct qfs_val *out, uint32_t *leader)
{
	return qfs_cell_get_at_val(c, id, g, key, key_len, wait_ms, out, leader);
}

static int rc_scan_at(void *c, uint32_t id, qfs_group_t g, const uint8_t *lo, size_t lo_len,
		      const uint8_t *hi, size_t hi_len, uint32_t wait_ms, qfs_store_scan_cb cb,
		      void *arg, int *more, struct qfs_buf *resume, uint32_t *leader)
{
	return qfs_cell_scan_at(c, id, g, lo, lo_len, hi, hi_len, wait_ms, cb, arg, more, resume,
				leader);
}

static int rc_remote(void *c) { return qfs_cell_remote(c); }
static uint32_t rc_node_id(void *c, uint32_t idx) { return qfs_cell_node_id(c, idx); }
static int rc_silent(void *c, uint32_t id) { return qfs_cell_node_silent(c, id); }

static int rc_prepare(void *c, qfs_group_t g, const void *txn, size_t len, struct qfs_buf *out)
{
	return qfs_cell_propose_prepare(c, g, txn, len, out);
}

static uint32_t rc_group_nodes(void *c, qfs_group_t g, uint32_t *out, uint32_t max)
{
	return qfs_cell_group_nodes(c, g, out, max);
}

static void rc_group_forget(void *c, qfs_group_t g)
{
	qfs_cell_group_forget(c, g);
}

static uint64_t rc_now(void *c)
{
	(void)c;
	return qfs_clock_mono_ms();
}

static void rc_sleep(void *c, uint32_t ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	(void)c;
	nanosleep(&ts, NULL);
}

static const struct qfs_route_ops real_ops = {
	.nodes = rc_nodes, .timeout_ms = rc_timeout, .read_mode = rc_mode, .exists = rc_exists,
	.view = rc_view, .propose_at = rc_propose_at, .get_at = rc_get_at, .scan_at = rc_scan_at,
	.get_at_val = rc_get_at_val,
	.now_ms = rc_now, .sleep_ms = rc_sleep, .remote = rc_remote, .prepare = rc_prepare,
	.node_id = rc_node_id, .silent = rc_silent, .group_nodes = rc_group_nodes,
	.group_forget = rc_group_forget,
};

/* ---------------------------------------------------------------- helpers */

static uint64_t now_ms(struct qfs_route *rt)
{
	return rt->ops->now_ms(rt->cell);
}

static void nap(struct qfs_route *rt, uint32_t ms)
{
	rt->ops->sleep_ms(rt->cell, ms);
}

/* The leader some running node knows for group, if that leader runs, or
 * 0; *lease (if not NULL) gets whether it leads with a read lease.  The
 * last node a proposal succeeded at is asked first, and usually answers
 * for itself. */
static uint32_t find_leader(struct qfs_route *rt, qfs_group_t group, int *lease)
{
	uint32_t hint = __atomic_load_n(&rt->hint, __ATOMIC_RELAXED), n = rt->ops->nodes(rt->cell);

	for (uint32_t k = 0; k <= n; k++) {
		uint32_t id = k == 0 ? hint : k;
		struct qfs_cell_view v, lv;

		if (!id || id > n || rt->ops->view(rt->cell, id, group, 0, &v) != 0)
			continue;
		if (v.leader == id) {
			if (lease)
				*lease = v.lease;
			return id;
		}
		if (v.leader && v.leader <= n && rt->ops->view(rt->cell, v.leader, group, 0, &lv) == 0) {
			if (lease)
				*lease = lv.lease;
			return v.leader;
		}
	}
	return 0;
}

/* Count group's replicas stopped after an error on the running nodes; *why
 * gets -ENOSPC if one stopped for lack of space, else QFS_ESTOPPED. */
static uint32_t stopped_count(struct qfs_route *rt, qfs_group_t group, int *why)
{
	uint32_t stopped = 0, n = rt->ops->nodes(rt->cell);

	*why = QFS_ESTOPPED;
	for (uint32_t id = 1; id <= n; id++) {
		struct qfs_cell_view v;

		if (rt->ops->view(rt->cell, id, group, 1, &v) != 0 || !v.hosted || !v.stopped)
			continue;
		stopped++;
		if (v.err == -ENOSPC)
			*why = -ENOSPC;
	}
	return stopped;
}

static int stopped_reason(struct qfs_route *rt, qfs_group_t group)
{
	int why;

	(void)stopped_count(rt, group, &why);
	return why;
}

/* 0, or the error to fail with at once: a majority of group's replicas
 * stopped after an error, so no leader can be elected until they restart. */
static int fail_fast(struct qfs_route *rt, qfs_group_t group)
{
	int why;

	return stopped_count(rt, group, &why) >= rt->ops->nodes(rt->cell) / 2 + 1 ? why : 0;
}

/* The deadline of a wait on group starting now: the call's budget, cut
 * short right after a timeout of the same group when the wait is part of a
 * FUSE call (other callers wait their whole timeout). */
static uint64_t wait_deadline(struct qfs_route *rt, qfs_group_t group, uint64_t now)
{
	uint64_t d = qfs_clock_call_deadline(now, rt->ops->timeout_ms(rt->cell)), until = 0;

	if (__atomic_load_n(&rt->nq_until, __ATOMIC_RELAXED) <= now || !qfs_clock_call_active())
		return d;
	pthread_mutex_lock(&rt->mu);
	for (int i = 0; i < NOQUORUM_SLOTS; i++)
		if (rt->nq[i].group == group && rt->nq[i].until_ms > now)
			until = rt->nq[i].until_ms;
	pthread_mutex_unlock(&rt->mu);
	if (until && d > now + QFS_ROUTE_NOQUORUM_WAIT_MS)
		d = now + QFS_ROUTE_NOQUORUM_WAIT_MS;
	return d;
}

/* A wait on group that began at t0 timed out (mark, when it waited a whole
 * timeout: a wait cut short by its call's limit proves nothing) or
 * succeeded (clear). */
static void noquorum_note(struct qfs_route *rt, qfs_group_t group, int timed_out, uint64_t t0)
{
	uint64_t now = now_ms(rt);
	int slot = -1, oldest = 0;

	if (timed_out && now - t0 < rt->ops->timeout_ms(rt->cell))
		return;
	if (!timed_out && __atomic_load_n(&rt->nq_until, __ATOMIC_RELAXED) <= now)
		return;
	pthread_mutex_lock(&rt->mu);
	for (int i = 0; i < NOQUORUM_SLOTS; i++) {
		if (rt->nq[i].group == group)
			slot = i;
		if (rt->nq[i].until_ms < rt->nq[oldest].until_ms)
			oldest = i;
	}
	if (!timed_out) {
		if (slot >= 0)
			rt->nq[slot].until_ms = 0;
	} else {
		if (slot < 0)
			slot = oldest;
		rt->nq[slot].group = group;
		rt->nq[slot].until_ms = now + QFS_ROUTE_NOQUORUM_HOLD_MS;
		if (__atomic_load_n(&rt->nq_until, __ATOMIC_RELAXED) < rt->nq[slot].until_ms)
			__atomic_store_n(&rt->nq_until, rt->nq[slot].until_ms, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&rt->mu);
}

/* A scan's callback behind a wrapper that remembers whether it stopped
 * the scan: a callback's value is final, even when it looks like an
 * answer the route retries (-EHOSTDOWN, -ETIMEDOUT, ...), because the keys
 * it saw must not be delivered again. */
struct cbwrap {
	qfs_store_scan_cb cb;
	void *arg;
	int stopped;            /* cb returned non-zero */
};

static int cbwrap_cb(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, void *arg)
{
	struct cbwrap *w = arg;
	int r = w->cb(k, kl, v, vl, w->arg);

	if (r)
		w->stopped = 1;
	return r;
}

/* ---------------------------------------------------------------- remote cells */

/* The index of node id in the cell's order, or -1. */
static int node_idx(struct qfs_route *rt, uint32_t id)
{
	uint32_t n = rt->ops->nodes(rt->cell);

	for (uint32_t i = 0; i < n; i++)
		if (rt->ops->node_id(rt->cell, i) == id)
			return (int)i;
	return -1;
}

/* The nodes that may serve group, in order, into ids (at most
 * QFS_ROUTE_MAX_NODES): ops->group_nodes when the cell has it (a cluster
 * that places each group on some of its nodes) less those not in the
 * cell's node list, else every node.  The count (>= 1). */
static uint32_t group_nodes(struct qfs_route *rt, qfs_group_t g, uint32_t *ids)
{
	uint32_t n = 0;

	if (rt->ops->group_nodes)
		n = rt->ops->group_nodes(rt->cell, g, ids, QFS_ROUTE_MAX_NODES);
	if (n <= QFS_ROUTE_MAX_NODES) {
		/* only nodes of this mount's cluster file: an attempt at
		 * another answers -EINVAL, which would end the call */
		uint32_t k = 0;

		for (uint32_t i = 0; i < n; i++)
			if (node_idx(rt, ids[i]) >= 0)
				ids[k++] = ids[i];
		n = k;
	}
	if (!n || n > QFS_ROUTE_MAX_NODES) {
		n = rt->ops->nodes(rt->cell);
		n = n > QFS_ROUTE_MAX_NODES ? QFS_ROUTE_MAX_NODES : n;
		for (uint32_t i = 0; i < n; i++)
			ids[i] = rt->ops->node_id(rt->cell, i);
	}
	return n;
}

/* The node after id in ids[n], passing over silent ones (unless all are);
 * the first when id is not one of them. */
static uint32_t next_node(struct qfs_route *rt, const uint32_t *ids, uint32_t n, uint32_t id)
{
	uint32_t i, k;

	for (i = 0; i < n && ids[i] != id; i++)
		;
	k = i == n ? 0 : (i + 1) % n;
	for (uint32_t m = 0; m < n; m++, k = (k + 1) % n)
		if (!rt->ops->silent(rt->cell, ids[k]))
			return ids[k];
	return ids[i == n ? 0 : (i + 1) % n];
}

/* The leader group answered from last (else the first of ids), or the
 * next of ids when that one went silent. */
static uint32_t leader_get(struct qfs_route *rt, qfs_group_t g, const uint32_t *ids, uint32_t n)
{
	uint32_t l = 0;

	pthread_mutex_lock(&rt->mu);
	if (rt->lc[g % QFS_ROUTE_LEADERS].g == g)
		l = rt->lc[g % QFS_ROUTE_LEADERS].leader;
	pthread_mutex_unlock(&rt->mu);
	if (!l || node_idx(rt, l) < 0)
		l = ids[0];
	return rt->ops->silent(rt->cell, l) ? next_node(rt, ids, n, l) : l;
}

static void leader_set(struct qfs_route *rt, qfs_group_t g, uint32_t l)
{
	pthread_mutex_lock(&rt->mu);
	rt->lc[g % QFS_ROUTE_LEADERS].g = g;
	rt->lc[g % QFS_ROUTE_LEADERS].leader = l;
	pthread_mutex_unlock(&rt->mu);
}

/* ids[n] less the nodes in gone (bit i: node_id(i)), in order; returns
 * the count left. */
static uint32_t not_gone(struct qfs_route *rt, uint32_t n, uint32_t *ids, uint64_t gone)
{
	uint32_t k = 0;

	for (uint32_t j = 0; j < n; j++) {
		int i = node_idx(rt, ids[j]);

		if (i < 0 || i >= 64 || !(gone >> i & 1))
			ids[k++] = ids[j];
	}
	return k;
}

/* One attempt of a remote call at node id, waiting at most wait_ms: the
 * node's answer (0, -EREMOTE with *leader, ...) or -EHOSTDOWN. */
typedef int (*attempt_fn)(struct qfs_route *rt, uint32_t id, uint32_t wait_ms, void *ctx,
			  uint32_t *leader);

/* Send to group's leader through fn, following hints and passing over
 * nodes that do not answer, until an answer that is not a redirection or
 * the cell's timeout: that answer (0 or the node's error), or -ETIMEDOUT.
 * An attempt after which *final (if not NULL) is set ends the call with
 * its answer (a scan callback stopped the page).
 * A node's -ETIMEDOUT is retried too: proposals carry their retry token.
 * A QFS_ENOGROUP answer in a cluster that places groups (more nodes than
 * QFS_CLUSTER_REPLICAS) may come from a node a membership change moved the
 * group off (doc/cluster.md "Membership"): the cell forgets which nodes
 * host the group and asks them again, and the call goes on at the nodes
 * named that did not answer QFS_ENOGROUP yet (a replica that has not
 * applied the change still names the node that dropped its copy).  It
 * answers QFS_ENOGROUP only when no node is left to try, or when a second
 * node said so and the group does not exist (ops->exists: a dropped
 * table). */
static int remote_call(struct qfs_route *rt, qfs_group_t group, attempt_fn fn, void *ctx,
		       const int *final)
{
	uint32_t ids[QFS_ROUTE_MAX_NODES], n = group_nodes(rt, group, ids);
	uint64_t dl = now_ms(rt) + rt->ops->timeout_ms(rt->cell);
	uint32_t target = leader_get(rt, group, ids, n);
	uint64_t gone = 0; /* bit i: node_id(i) answered QFS_ENOGROUP */

	for (;;) {
		uint64_t now = now_ms(rt);
		uint32_t per, hint = 0;
		int rc;

		if (now >= dl) {
			__atomic_fetch_add(&rt->st_timeouts, 1, __ATOMIC_RELAXED);
			return -ETIMEDOUT;
		}
		per = dl - now < QFS_ROUTE_TRY_MS ? (uint32_t)(dl - now) : QFS_ROUTE_TRY_MS;
		rc = fn(rt, target, per, ctx, &hint);
		if (final && *final)
			return rc;
		if (rc == -EHOSTDOWN) {
			/* silent: down or cut off; let the others elect */
			target = next_node(rt, ids, n, target);
			__atomic_fetch_add(&rt->st_redirects, 1, __ATOMIC_RELAXED);
			continue;
		}
		if (rc == -EREMOTE || rc == QFS_ESTOPPED || rc == -EAGAIN || rc == -ETIMEDOUT) {
			if (rc != -EREMOTE)
				hint = 0;
			__atomic_fetch_add(&rt->st_redirects, 1, __ATOMIC_RELAXED);
			if (hint && node_idx(rt, hint) >= 0 && hint != target &&
			    !rt->ops->silent(rt->cell, hint)) {
				target = hint;
			} else {
				if (rc != -EAGAIN)
					target = next_node(rt, ids, n, target);
				nap(rt, QFS_ROUTE_ELECTION_MS); /* an election is under way */
			}
			continue;
		}
		if (rc == QFS_ENOGROUP && rt->ops->group_forget &&
		    rt->ops->nodes(rt->cell) > QFS_CLUSTER_REPLICAS) {
			/* the group moved (a membership change): ask the nodes */
			int i = node_idx(rt, target), again = gone != 0;

			if (i < 0 || i >= 64)
				return rc;
			gone |= 1ull << i;
			rt->ops->group_forget(rt->cell, group);
			leader_set(rt, group, 0);
			if (again && rt->ops->exists && !rt->ops->exists(rt->cell, group))
				return rc; /* gone everywhere: a dropped table */
			n = not_gone(rt, group_nodes(rt, group, ids), ids, gone);
			if (!n)
				return rc;
			__atomic_fetch_add(&rt->st_redirects, 1, __ATOMIC_RELAXED);
			target = next_node(rt, ids, n, 0);
			QFS_LOG(QFS_LOG_INFO, "route regroup group=%016llx gone=%llx nodes=%u next=%u",
				(unsigned long long)group, (unsigned long long)gone, n, target);
			continue;
		}
		if (!rc)
			leader_set(rt, group, target);
		return rc;
	}
}

struct rprop {
	qfs_group_t group;
	const void *txn;
	size_t len;
	int *result;
};

static int rprop_at(struct qfs_route *rt, uint32_t id, uint32_t wait_ms, void *ctx, uint32_t *leader)
{
	struct rprop *p = ctx;

	return rt->ops->propose_at(rt->cell, id, p->group, p->txn, p->len, wait_ms, p->result, leader);
}

struct rget {
	qfs_group_t group;
	const uint8_t *key;
	size_t key_len;
	void **val;             /* malloc'd value (pin NULL) */
	size_t *val_len;
	struct qfs_val *pin;    /* or the value held (qfs_route_get_val) */
};

static int rget_at(struct qfs_route *rt, uint32_t id, uint32_t wait_ms, void *ctx, uint32_t *leader)
{
	struct rget *g = ctx;
	void *val;
	size_t len;
	int rc;

	if (!g->pin)
		return rt->ops->get_at(rt->cell, id, g->group, g->key, g->key_len, wait_ms, g->val,
				       g->val_len, leader);
	if (rt->ops->get_at_val)
		return rt->ops->get_at_val(rt->cell, id, g->group, g->key, g->key_len, wait_ms, g->pin,
					   leader);
	rc = rt->ops->get_at(rt->cell, id, g->group, g->key, g->key_len, wait_ms, &val, &len, leader);
	if (rc == 0)
		qfs_val_adopt(g->pin, val, len);
	return rc;
}

struct rscan {
	qfs_group_t group;
	const uint8_t *lo, *hi;
	size_t lo_len, hi_len;
	qfs_store_scan_cb cb;
	void *arg;
	int more;
	struct qfs_buf *resume;
};

static int rscan_at(struct qfs_route *rt, uint32_t id, uint32_t wait_ms, void *ctx, uint32_t *leader)
{
	struct rscan *sc = ctx;

	return rt->ops->scan_at(rt->cell, id, sc->group, sc->lo, sc->lo_len, sc->hi, sc->hi_len,
				wait_ms, sc->cb, sc->arg, &sc->more, sc->resume, leader);
}

/* A remote proposal: the retry token once, then routed attempts. */
static int remote_propose(struct qfs_route *rt, qfs_group_t group, const void *txn, size_t len,
			  int *result)
{
	struct rprop p = { .group = group, .txn = txn, .len = len, .result = result };
	struct qfs_buf wire;
	int rc;

	qfs_buf_init(&wire);
	rc = rt->ops->prepare ? rt->ops->prepare(rt->cell, group, txn, len, &wire) : 0;
	if (rc < 0)
		goto out;
	if (rc == 1) {
		p.txn = wire.data;
		p.len = wire.len;
	}
	rc = remote_call(rt, group, rprop_at, &p, NULL);
out:
	qfs_buf_close(&wire);
	return rc;
}

/* A remote scan: page after page, each routed alone (a scan across pages
 * is not one snapshot). */
static int remote_scan(struct qfs_route *rt, qfs_group_t group, const uint8_t *lo, size_t lo_len,
		       const uint8_t *hi, size_t hi_len, qfs_store_scan_cb cb, void *arg)
{
	struct qfs_buf from, next;
	struct cbwrap w = { .cb = cb, .arg = arg };
	struct rscan sc = { .group = group, .lo = lo, .lo_len = lo_len, .hi = hi, .hi_len = hi_len,
			    .cb = cbwrap_cb, .arg = &w };
	int rc;

	qfs_buf_init(&from);
	qfs_buf_init(&next);
	for (;;) {
		sc.resume = &next;
		sc.more = 0;
		rc = remote_call(rt, group, rscan_at, &sc, &w.stopped);
		if (rc || !sc.more)
			break;
		if (next.len) {
			qfs_buf_reset(&from);
			qfs_buf_put(&from, next.data, next.len);
			if (from.err) {
				rc = -ENOMEM;
				break;
			}
			sc.lo = from.data;
			sc.lo_len = from.len;
		}
	}
	qfs_buf_close(&next);
	qfs_buf_close(&from);
	return rc;
}

/* ---------------------------------------------------------------- proposals */

/* See route.h.  Only outcomes that prove the entry was never accepted
 * (-EREMOTE, -EAGAIN, QFS_ESTOPPED on arrival, -EHOSTDOWN: the node
 * stopped before the attempt) are retried; a timeout is final because the
 * entry may still commit. */
int qfs_route_propose(struct qfs_route *rt, qfs_group_t group, const void *txn, size_t len,
		      int *result)
{
	uint64_t t0, deadline;
	uint32_t target = 0, stopped_on = 0, n = rt->ops->nodes(rt->cell);
	int last = -ETIMEDOUT;

	if (rt->remote)
		return remote_propose(rt, group, txn, len, result);
	t0 = now_ms(rt);
	deadline = wait_deadline(rt, group, t0);
	for (;;) {
		uint64_t now = now_ms(rt);
		uint32_t leader = 0;
		int rc;

		if (now >= deadline)
			break;
		if (!target)
			target = find_leader(rt, group, NULL);
		if (target && (stopped_on & (1u << target)))
			target = 0;
		if (!target) {
			if (!rt->ops->exists(rt->cell, group))
				return QFS_ENOGROUP;
			if ((last = fail_fast(rt, group)) != 0)
				return last;
			last = -ETIMEDOUT;
			nap(rt, QFS_ROUTE_POLL_MS);
			continue;
		}
		rc = rt->ops->propose_at(rt->cell, target, group, txn, len, (uint32_t)(deadline - now),
					 result, &leader);
		switch (rc) {
		case 0:
			__atomic_store_n(&rt->hint, target, __ATOMIC_RELAXED);
			qfs_clock_call_progress();
			noquorum_note(rt, group, 0, t0);
			return 0;
		case -EHOSTDOWN:
			target = 0; /* the node stopped meanwhile: nothing was sent */
			continue;
		case -EREMOTE:
			__atomic_fetch_add(&rt->st_redirects, 1, __ATOMIC_RELAXED);
			target = leader && leader != target && leader <= n ? leader : 0;
			if (!target)
				nap(rt, QFS_ROUTE_POLL_MS);
			continue;
		case -EAGAIN:
			__atomic_fetch_add(&rt->st_redirects, 1, __ATOMIC_RELAXED);
			target = 0;
			nap(rt, QFS_ROUTE_POLL_MS);
			continue;
		case QFS_ESTOPPED:
			/* The replica there stopped after an error before taking
			 * the entry: another replica may lead soon. */
			stopped_on |= 1u << target;
			last = stopped_reason(rt, group);
			target = 0;
			if (stopped_on == (((1u << n) - 1) << 1))
				return last;
			nap(rt, QFS_ROUTE_POLL_MS);
			continue;
		case -ETIMEDOUT:
			last = stopped_reason(rt, group);
			if (last == QFS_ESTOPPED)
				last = -ETIMEDOUT;
			goto timeout;
		default:
			return rc;
		}
	}
timeout:
	__atomic_fetch_add(&rt->st_timeouts, 1, __ATOMIC_RELAXED);
	noquorum_note(rt, group, 1, t0);
	QFS_LOG(QFS_LOG_WARN, "cell propose failed group=%016" PRIx64 " timeout_ms=%u err=\"%s\"", group,
		rt->ops->timeout_ms(rt->cell), qfs_strerror(last));
	return last;
}

/* ---------------------------------------------------------------- reads */

/* The replica a read in mode may use now: the leader when its lease lets
 * it read locally, or (eventual reads) the running replica that applied
 * the most.  Its id, or 0. */
static uint32_t read_node(struct qfs_route *rt, qfs_group_t group, enum qfs_cell_reads mode)
{
	int lease = 0;
	uint32_t l = find_leader(rt, group, &lease), best = 0, n;
	qfs_lsn_t best_applied = 0;
	struct qfs_cell_view v;

	if (l && lease)
		return l;
	if (mode != QFS_CELL_READ_EVENTUAL)
		return 0;
	/* The running replica that applied the most: a change this mount
	 * acknowledged was applied by the leader that acknowledged it, so a
	 * reader sees its own writes unless that replica stopped since. */
	n = rt->ops->nodes(rt->cell);
	for (uint32_t i = 1; i <= n; i++) {
		if (rt->ops->view(rt->cell, i, group, 1, &v) != 0 || !v.hosted || v.stopped)
			continue;
		/* ties go to the leader: it answered its proposers only after
		 * applying, even if its machine's applied LSN is stepped a
		 * moment later */
		if (!best || v.applied > best_applied || (v.applied == best_applied && i == l)) {
			best = i;
			best_applied = v.applied;
		}
	}
	return best;
}

/* A read of group that began at t0 gives up: counted, noted, logged. */
static int read_timeout(struct qfs_route *rt, qfs_group_t group, uint64_t t0)
{
	__atomic_fetch_add(&rt->st_timeouts, 1, __ATOMIC_RELAXED);
	noquorum_note(rt, group, 1, t0);
	QFS_LOG(QFS_LOG_WARN, "cell read failed group=%016" PRIx64 " timeout_ms=%u err=\"no leader with a lease\"",
		group, rt->ops->timeout_ms(rt->cell));
	return -ETIMEDOUT;
}

/* Wait (until deadline) for a replica that may serve a read of group: 0
 * with *id, QFS_ENOGROUP, the fail-fast error, or -ETIMEDOUT (counted,
 * noted and logged). */
static int read_wait(struct qfs_route *rt, qfs_group_t group, uint64_t t0, uint64_t deadline,
		     uint32_t *id)
{
	enum qfs_cell_reads mode = rt->ops->read_mode(rt->cell);
	int rc;

	for (;;) {
		if ((*id = read_node(rt, group, mode)) != 0) {
			qfs_clock_call_progress();
			noquorum_note(rt, group, 0, t0);
			return 0;
		}
		if (!rt->ops->exists(rt->cell, group))
			return QFS_ENOGROUP;
		/* A replica stopped on a full disk comes back with the keeper's
		 * restart: reads wait for that (bounded) instead of failing. */
		if ((rc = fail_fast(rt, group)) != 0 && rc != -ENOSPC)
			return rc;
		if (now_ms(rt) >= deadline)
			break;
		nap(rt, QFS_ROUTE_POLL_MS);
	}
	return read_timeout(rt, group, t0);
}

/* The replica read_wait chose refused a strong read (-EREMOTE: it lost
 * its lease, or restarted, since the view): 0 to choose again after a
 * poll step, or -ETIMEDOUT past the deadline. */
static int read_refused(struct qfs_route *rt, qfs_group_t group, uint64_t t0, uint64_t deadline)
{
	__atomic_fetch_add(&rt->st_redirects, 1, __ATOMIC_RELAXED);
	if (now_ms(rt) >= deadline)
		return read_timeout(rt, group, t0);
	nap(rt, QFS_ROUTE_POLL_MS);
	return 0;
}

/* qfs_route_get and _get_val: a replica whose node stopped between the
 * choice and the read (-EHOSTDOWN), or that refused a strong read
 * (-EREMOTE: its lease lapsed or it restarted since the choice), is
 * chosen again within the same deadline. */
static int route_get(struct qfs_route *rt, struct rget *g)
{
	uint64_t t0, deadline;
	qfs_group_t group = g->group;

	if (rt->remote)
		return remote_call(rt, group, rget_at, g, NULL);
	t0 = now_ms(rt);
	deadline = wait_deadline(rt, group, t0);
	for (;;) {
		uint32_t id, leader = 0;
		int rc = read_wait(rt, group, t0, deadline, &id);

		if (rc)
			return rc;
		rc = rget_at(rt, id, (uint32_t)(deadline - t0), g, &leader);
		if (rc == -EREMOTE) {
			if ((rc = read_refused(rt, group, t0, deadline)) != 0)
				return rc;
			continue;
		}
		if (rc != -EHOSTDOWN)
			return rc;
	}
}

/* See route.h. */
int qfs_route_get(struct qfs_route *rt, qfs_group_t group, const uint8_t *key, size_t key_len,
		  void **val, size_t *val_len)
{
	struct rget g = { .group = group, .key = key, .key_len = key_len, .val = val, .val_len = val_len };

	return route_get(rt, &g);
}

/* See route.h. */
int qfs_route_get_val(struct qfs_route *rt, qfs_group_t group, const uint8_t *key, size_t key_len,
		      struct qfs_val *out)
{
	struct rget g = { .group = group, .key = key, .key_len = key_len, .pin = out };

	return route_get(rt, &g);
}

/* See route.h.  As qfs_route_get; a node that stopped before the scan
 * began called back nothing (a callback's own value is never retried). */
int qfs_route_scan(struct qfs_route *rt, qfs_group_t group, const uint8_t *lo, size_t lo_len,
		   const uint8_t *hi, size_t hi_len, qfs_store_scan_cb cb, void *arg)
{
	uint64_t t0, deadline;

	if (rt->remote)
		return remote_scan(rt, group, lo, lo_len, hi, hi_len, cb, arg);
	t0 = now_ms(rt);
	deadline = wait_deadline(rt, group, t0);
	for (;;) {
		struct cbwrap w = { .cb = cb, .arg = arg };
		uint32_t id, leader = 0;
		int more = 0, rc = read_wait(rt, group, t0, deadline, &id);

		if (rc)
			return rc;
		rc = rt->ops->scan_at(rt->cell, id, group, lo, lo_len, hi, hi_len,
				      (uint32_t)(deadline - t0), cbwrap_cb, &w, &more, NULL, &leader);
		if (rc == -EREMOTE && !w.stopped) {
			if ((rc = read_refused(rt, group, t0, deadline)) != 0)
				return rc;
			continue;
		}
		if (rc != -EHOSTDOWN || w.stopped)
			return rc;
	}
}

/* ---------------------------------------------------------------- object */

/* See route.h. */
void qfs_route_stat(struct qfs_route *rt, uint64_t *redirects, uint64_t *timeouts)
{
	*redirects = __atomic_load_n(&rt->st_redirects, __ATOMIC_RELAXED);
	*timeouts = __atomic_load_n(&rt->st_timeouts, __ATOMIC_RELAXED);
}

static int hook_propose(void *arg, qfs_group_t g, const void *txn, size_t len, int *result)
{
	return qfs_route_propose(arg, g, txn, len, result);
}

static int hook_get(void *arg, qfs_group_t g, const uint8_t *key, size_t key_len, void **val,
		    size_t *val_len)
{
	return qfs_route_get(arg, g, key, key_len, val, val_len);
}

static int hook_get_val(void *arg, qfs_group_t g, const uint8_t *key, size_t key_len,
			struct qfs_val *out)
{
	return qfs_route_get_val(arg, g, key, key_len, out);
}

static int hook_scan(void *arg, qfs_group_t g, const uint8_t *lo, size_t lo_len, const uint8_t *hi,
		     size_t hi_len, qfs_store_scan_cb cb, void *cbarg)
{
	return qfs_route_scan(arg, g, lo, lo_len, hi, hi_len, cb, cbarg);
}

static void hook_stat(void *arg, uint64_t *redirects, uint64_t *timeouts)
{
	qfs_route_stat(arg, redirects, timeouts);
}

static void hook_release(void *arg)
{
	qfs_route_free(arg);
}

/* A node came back: it may have brought the quorum back, and the election
 * that follows takes a moment, so no group keeps its short waits. */
static void hook_node_up(void *arg)
{
	struct qfs_route *rt = arg;

	pthread_mutex_lock(&rt->mu);
	memset(rt->nq, 0, sizeof(rt->nq));
	__atomic_store_n(&rt->nq_until, 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&rt->mu);
}

static const struct qfs_cell_route hook = {
	.propose = hook_propose, .get = hook_get, .scan = hook_scan, .stat = hook_stat,
	.release = hook_release, .node_up = hook_node_up, .get_val = hook_get_val,
};

/* See route.h. */
int qfs_route_new_ops(const struct qfs_route_ops *ops, void *cell, struct qfs_route **out)
{
	struct qfs_route *rt = calloc(1, sizeof(*rt));

	if (!rt)
		return -ENOMEM;
	rt->ops = ops;
	rt->cell = cell;
	rt->remote = ops->remote && ops->remote(cell);
	pthread_mutex_init(&rt->mu, NULL);
	*out = rt;
	return 0;
}

/* See route.h. */
int qfs_route_attach(struct qfs_cell *c)
{
	struct qfs_route *rt;
	int rc;

	if ((rc = qfs_route_new_ops(&real_ops, c, &rt)) != 0)
		return rc;
	qfs_cell_set_route(c, &hook, rt);
	return 0;
}

/* See route.h. */
void qfs_route_free(struct qfs_route *rt)
{
	if (!rt)
		return;
	pthread_mutex_destroy(&rt->mu);
	free(rt);
}
