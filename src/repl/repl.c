/*
 * repl.c - the replication state machine of one group (contract: repl.h,
 * design and driver contract: doc/replication.md).
 *
 * Pure code: no I/O, no clock, no allocation, no globals.  The state is
 * st.last >= st.persisted >= st.commit >= st.applied, and batch[0..nbatch)
 * holds exactly the entries persisted+1..last, in order, waiting for the
 * driver's PERSISTED event.  Each entry is handed to the driver once, in the
 * update of the PROPOSE step that created it (etcd's Ready); nbatch is capped
 * at QFS_REPL_MAX_BATCH so the driver must persist at least that often.
 *
 * This version runs a group of exactly one voting replica, which is its own
 * leader: phase 1 of Paxos is trivially won at init, and an entry commits as
 * soon as it is durable locally.  Multi-Paxos adds acceptors' PERSISTED
 * acknowledgements (messages), a commit rule over a quorum, and phase 1 over
 * uncommitted slots on leader change; those fit the same events and update.
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

#include "common/buf.h"
#include "repl/repl.h"

/* Check the ordering invariants; used by asserts after every step. */
static int state_ok(const struct qfs_repl *r)
{
	const struct qfs_repl_state *s = &r->st;

	if (!(s->applied <= s->commit && s->commit <= s->persisted && s->persisted <= s->last))
		return 0;
	if (r->nbatch > QFS_REPL_MAX_BATCH || s->last - s->persisted != r->nbatch)
		return 0;
	if (r->nbatch && (r->batch[0].lsn != s->persisted + 1 ||
			  r->batch[r->nbatch - 1].lsn != s->last))
		return 0;
	return 1;
}

static void update_empty(const struct qfs_repl *r, struct qfs_repl_update *up)
{
	up->persist = NULL;
	up->npersist = 0;
	up->commit = r->st.commit;
	up->next_tick_ms = 0; /* a single replica needs no timer */
}

/* See repl.h.  Sets the whole state; persisted and commit start at last. */
void qfs_repl_init(struct qfs_repl *r, uint32_t self, uint64_t ballot, qfs_lsn_t last,
		   qfs_lsn_t applied)
{
	assert(applied <= last);
	memset(r, 0, sizeof(*r));
	r->self = self;
	/* A lone voter wins phase 1 at once and keeps the ballot of its log. */
	r->st.ballot = ballot ? ballot : 1;
	r->st.leader = self;
	r->st.last = last;
	r->st.persisted = last;
	r->st.commit = last; /* one voter: durable means chosen */
	r->st.applied = applied;
	r->nbatch = 0;
}

static int step_propose(struct qfs_repl *r, const struct qfs_repl_entry *in,
			struct qfs_repl_update *up)
{
	struct qfs_repl_entry *e;

	if (in->type != QFS_REPL_ENTRY_TXN && in->type != QFS_REPL_ENTRY_NOOP)
		return -EINVAL;
	if (in->data == NULL && in->len != 0)
		return -EINVAL;
	if (r->st.last == UINT64_MAX)
		return -EINVAL;
	if (r->st.leader != r->self)
		return -EINVAL; /* not reachable with one voter; Multi-Paxos redirects */
	if (r->nbatch == QFS_REPL_MAX_BATCH)
		return -EAGAIN;

	e = &r->batch[r->nbatch++];
	e->lsn = ++r->st.last;
	e->ballot = r->st.ballot;
	e->type = in->type;
	e->time_ns = in->time_ns;
	e->data = in->data;
	e->len = in->len;

	update_empty(r, up);
	up->persist = e;
	up->npersist = 1;
	return 0;
}

static int step_persisted(struct qfs_repl *r, qfs_lsn_t lsn, struct qfs_repl_update *up)
{
	uint32_t n;

	if (lsn > r->st.last || lsn < r->st.persisted)
		return -EINVAL;
	n = (uint32_t)(lsn - r->st.persisted);
	if (n) {
		memmove(r->batch, r->batch + n, (r->nbatch - n) * sizeof(r->batch[0]));
		r->nbatch -= n;
		r->st.persisted = lsn;
	}
	/* Single voter: the local persist is the whole quorum. */
	r->st.commit = r->st.persisted;
	update_empty(r, up);
	return 0;
}

static int step_applied(struct qfs_repl *r, qfs_lsn_t lsn, struct qfs_repl_update *up)
{
	if (lsn > r->st.commit || lsn < r->st.applied)
		return -EINVAL;
	r->st.applied = lsn;
	update_empty(r, up);
	return 0;
}

/* See repl.h.  Every error path returns before the state is modified. */
int qfs_repl_step(struct qfs_repl *r, const struct qfs_repl_event *ev, struct qfs_repl_update *up)
{
	int rc;

	switch (ev->type) {
	case QFS_REPL_EV_PROPOSE:
		rc = step_propose(r, &ev->entry, up);
		break;
	case QFS_REPL_EV_PERSISTED:
		rc = step_persisted(r, ev->lsn, up);
		break;
	case QFS_REPL_EV_APPLIED:
		rc = step_applied(r, ev->lsn, up);
		break;
	case QFS_REPL_EV_TICK:
		/* No elections or leases with one voter: nothing is timed. */
		update_empty(r, up);
		rc = 0;
		break;
	default:
		rc = -EINVAL;
		break;
	}
	if (rc) {
		up->persist = NULL;
		up->npersist = 0;
		up->commit = r->st.commit;
		up->next_tick_ms = 0;
	}
	assert(state_ok(r));
	return rc;
}

/* See repl.h.  Copies the state; no locking (the driver owns r). */
void qfs_repl_state(const struct qfs_repl *r, struct qfs_repl_state *out)
{
	*out = r->st;
}

/* See repl.h.  Writes type and ballot; lsn is the WAL record's, not framed. */
size_t qfs_repl_entry_encode_hdr(uint8_t hdr[QFS_REPL_ENTRY_HDR], const struct qfs_repl_entry *e)
{
	hdr[0] = e->type;
	qfs_be64_put(hdr + 1, e->ballot);
	qfs_be64_put(hdr + 9, e->time_ns);
	return QFS_REPL_ENTRY_HDR;
}

/* See repl.h.  out->data points into p.  QFS_ECORRUPT if too short or the type
 * is unknown; *out untouched then. */
int qfs_repl_entry_decode(qfs_lsn_t lsn, const void *p, size_t len, struct qfs_repl_entry *out)
{
	const uint8_t *b = p;

	if (len < QFS_REPL_ENTRY_HDR)
		return QFS_ECORRUPT;
	if (b[0] != QFS_REPL_ENTRY_TXN && b[0] != QFS_REPL_ENTRY_NOOP)
		return QFS_ECORRUPT;
	out->lsn = lsn;
	out->type = b[0];
	out->ballot = qfs_be64_get(b + 1);
	out->time_ns = qfs_be64_get(b + 9);
	out->data = b + QFS_REPL_ENTRY_HDR;
	out->len = len - QFS_REPL_ENTRY_HDR;
	return 0;
}
