/*
 * drive.c - the driver rules of one group's Paxos machine (contract and
 * order: drive.h; why they are safe: doc/paxos.md section 4).  No threads,
 * no I/O: storage, transport and store are the caller's callbacks, so the
 * rnode and the simulator run this same code.
 *
 * The rules, moved here from rnode.c's handle(), send_msgs() and
 * group_sync():
 *   - persist before anything that reports it: truncate and the promise
 *     are durable at once, appends are buffered and the group is dirty
 *     until qfs_drive_sync;
 *   - while dirty, PREPARE, PROMISE and ACCEPTED (qfs_paxos_msg_needs_durable)
 *     are held in order; a leader's ACCEPT leaves at once, so the
 *     followers sync while the leader does;
 *   - the sync sends the held messages, then steps PERSISTED with the
 *     last entry appended (or the entry the log ends with, when a
 *     truncation or an install cut it since): only that counts the
 *     leader's own vote;
 *   - reads, snapshot requests and applies are local steps, run in FIFO
 *     order after the update that asked for them; an apply goes up to
 *     the highest commit asked so far, which never exceeds what is
 *     durable here (the machine's rule).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/bigbuf.h"
#include "common/log.h"
#include "common/qfs.h"
#include "net/frame.h"
#include "node/drive.h"

enum { QFS_DRIVE_L_READ = 1, QFS_DRIVE_L_SNAP, QFS_DRIVE_L_APPLY };

#define DRIVE_FRAME_KEEP (1u << 20) /* scratch frame kept between uses up to this */

void qfs_drive_init(struct qfs_drive *d, const struct qfs_drive_ops *ops, void *ctx,
		    struct qfs_buf *frame, uint64_t group, uint32_t self)
{
	memset(d, 0, sizeof(*d));
	d->ops = ops;
	d->ctx = ctx;
	d->frame = frame;
	d->group = group;
	d->self = self;
}

static void held_free(struct qfs_drive *d)
{
	while (d->held) {
		struct qfs_drive_held *h = d->held;

		d->held = h->next;
		free(h);
	}
	d->held_last = NULL;
}

void qfs_drive_reset(struct qfs_drive *d)
{
	held_free(d);
	d->dirty = 0;
	d->sync_lsn = 0;
	d->sync_ballot = 0;
	d->qhead = d->qlen = 0;
	d->apply_to = 0;
	d->apply_queued = 0;
	d->apply_wait = 0;
	d->beside = 0;
}

int qfs_drive_dirty(const struct qfs_drive *d)
{
	return d->dirty;
}

static int stopped(struct qfs_drive *d)
{
	return d->ops->stopped(d->ctx);
}

static void stop(struct qfs_drive *d, int rc, const char *what)
{
	d->ops->stop(d->ctx, rc, what);
	held_free(d);
}

/* Queue a local step; 0, or -ENOBUFS when the queue is full (the caller
 * drops a read or a snapshot request: the leader asks again after
 * retry_ms).  The last slot is the apply's: at most one APPLY is queued
 * (apply_queued), so reads and snapshot requests never crowd it out and
 * a commit is applied without waiting for another update. */
static int enqueue(struct qfs_drive *d, uint8_t kind, uint32_t peer, qfs_lsn_t from, qfs_lsn_t to)
{
	struct qfs_drive_local *l;

	if (d->qlen + (kind == QFS_DRIVE_L_APPLY ? 0u : 1u) >= QFS_DRIVE_QUEUE)
		return -ENOBUFS;
	l = &d->q[(d->qhead + d->qlen++) % QFS_DRIVE_QUEUE];
	l->kind = kind;
	l->peer = peer;
	l->from = from;
	l->to = to;
	return 0;
}

/* Empty the scratch frame b; a large buffer goes back to the pool. */
static void frame_release(struct qfs_buf *b)
{
	if (b->cap > DRIVE_FRAME_KEEP) {
		qfs_bigbuf_put(b->data, b->cap);
		b->data = NULL;
	}
	qfs_buf_close(b);
	qfs_buf_init(b);
}

/* Encode m straight into a frame of the transport (need bytes) and hand
 * it over (ops->frame_new, frame_send). */
static void send_owned(struct qfs_drive *d, const struct qfs_paxos_msg *m, size_t need)
{
	uint8_t *data;
	void *f;
	ssize_t len;

	if (need - QFS_NET_FRAME_HDR > QFS_NET_BODY_MAX) {
		QFS_LOG(QFS_LOG_WARN, "rnode encode failed group=%016" PRIx64 " node=%u to=%u err=%s",
			d->group, d->self, m->to, qfs_strerror(-EMSGSIZE));
		return;
	}
	f = d->ops->frame_new(d->ctx, need, &data);
	if (!f)
		return; /* lossy network: paxos retransmits */
	len = qfs_paxos_msg_encode(m, data + QFS_NET_FRAME_HDR, need - QFS_NET_FRAME_HDR);
	if (len < 0 || (size_t)len != need - QFS_NET_FRAME_HDR) {
		QFS_LOG(QFS_LOG_WARN, "rnode encode failed group=%016" PRIx64 " node=%u to=%u err=%s",
			d->group, d->self, m->to, qfs_strerror(len < 0 ? (int)len : -EINVAL));
		d->ops->frame_send(d->ctx, 0, m->type, f); /* to 0: freed, not sent */
		return;
	}
	qfs_net_frame_seal_hdr(data, m->type, (size_t)len); /* CRC: the transport's (drive.h) */
	d->ops->frame_send(d->ctx, m->to, m->type, f);
}

/* Encode each message of up into a frame and send it, or hold it until
 * the next sync when it reports state not yet durable. */
static void send_msgs(struct qfs_drive *d, const struct qfs_paxos_update *up)
{
	struct qfs_buf *b = d->frame;

	for (uint32_t i = 0; i < up->nmsgs; i++) {
		const struct qfs_paxos_msg *m = &up->msgs[i];
		size_t need = QFS_NET_FRAME_HDR + qfs_paxos_msg_size(m);
		struct qfs_drive_held *h;
		ssize_t len;

		if (d->ops->frame_new && !(d->dirty && qfs_paxos_msg_needs_durable(m))) {
			send_owned(d, m, need);
			continue;
		}
		qfs_buf_reset(b);
		if (need > DRIVE_FRAME_KEEP && b->cap < need) {
			/* A large frame from the pool (common/bigbuf.h): its pages
			 * are already faulted in when an earlier one came back. */
			size_t cap;
			void *p = qfs_bigbuf_get(need, &cap);

			if (!p)
				continue; /* lossy network: paxos retransmits */
			frame_release(b);
			b->data = p;
			b->cap = cap;
		}
		if (qfs_buf_reserve(b, need))
			continue; /* lossy network: paxos retransmits */
		len = qfs_paxos_msg_encode(m, b->data + QFS_NET_FRAME_HDR, b->cap - QFS_NET_FRAME_HDR);
		if (len < 0 || (size_t)len > QFS_NET_BODY_MAX) {
			QFS_LOG(QFS_LOG_WARN, "rnode encode failed group=%016" PRIx64 " node=%u to=%u err=\"%s\"",
				d->group, d->self, m->to, qfs_strerror(len < 0 ? (int)len : -EMSGSIZE));
			continue;
		}
		qfs_net_frame_seal(b->data, m->type, (size_t)len);
		len += QFS_NET_FRAME_HDR;
		if (d->dirty && qfs_paxos_msg_needs_durable(m)) {
			h = malloc(sizeof(*h) + (size_t)len);
			if (!h)
				continue; /* as if lost: paxos retransmits */
			h->next = NULL;
			h->to = m->to;
			h->type = m->type;
			h->len = (size_t)len;
			memcpy(h->data, b->data, (size_t)len);
			if (d->held)
				d->held_last->next = h;
			else
				d->held = h;
			d->held_last = h;
			d->st_held++;
			continue;
		}
		d->ops->send(d->ctx, m->to, m->type, b->data, (size_t)len);
	}
	if (b->cap > DRIVE_FRAME_KEEP)
		frame_release(b);
}

/* Steps 1-3 of the contract for up (drive.h); the local steps are queued. */
static void handle(struct qfs_drive *d, const struct qfs_paxos_update *up)
{
	const struct qfs_drive_ops *o = d->ops;
	int rc;

	if (stopped(d))
		return;
	/* 1. Persist. */
	if (up->truncate && (rc = o->truncate(d->ctx, up->truncate_after))) {
		stop(d, rc, "wal truncate");
		return;
	}
	for (uint32_t i = 0; i < up->npersist; i++) {
		if ((rc = o->append(d->ctx, &up->persist[i]))) {
			stop(d, rc, "wal append");
			return;
		}
	}
	if (up->npersist) {
		d->sync_lsn = up->persist[up->npersist - 1].lsn;
		d->sync_ballot = up->persist[up->npersist - 1].ballot;
		if (!d->dirty) {
			d->dirty = 1;
			o->want_sync(d->ctx);
		}
	}
	if (up->save_promise && (rc = o->save_promise(d->ctx, up->promised))) {
		stop(d, rc, "promise save");
		return;
	}
	/* 2. Send (a leader's ACCEPTs), or hold until the sync. */
	send_msgs(d, up);
	if (o->handled)
		o->handled(d->ctx, up);
	/* 3. Local steps (PERSISTED comes from qfs_drive_sync). */
	for (uint32_t i = 0; i < up->nreads; i++)
		(void)enqueue(d, QFS_DRIVE_L_READ, up->reads[i].peer, up->reads[i].from, up->reads[i].to);
	if (up->snapshot_to)
		(void)enqueue(d, QFS_DRIVE_L_SNAP, up->snapshot_to, 0, 0);
	d->leading = up->is_leader;
	if (up->commit > d->apply_to)
		d->apply_to = up->commit;
	if (!d->apply_queued && d->apply_to > o->applied(d->ctx)) {
		/* Never refused: the queue keeps a slot for the apply. */
		if (enqueue(d, QFS_DRIVE_L_APPLY, 0, 0, 0) == 0)
			d->apply_queued = 1;
	}
}

/* Step ev and handle its update (no local steps run). */
static int step_handle(struct qfs_drive *d, const struct qfs_paxos_event *ev)
{
	struct qfs_paxos_update up;
	int rc;

	if (stopped(d))
		return QFS_ESTOPPED;
	rc = d->ops->step(d->ctx, ev, &up);
	if (rc == 0)
		handle(d, &up);
	return rc;
}

static void local_read(struct qfs_drive *d, const struct qfs_drive_local *l)
{
	struct qfs_drive_log *out = calloc(1, sizeof(*out));
	struct qfs_paxos_event ev;
	int rc;

	if (!out)
		return; /* the leader retries after retry_ms */
	rc = d->ops->read(d->ctx, l->from, l->to, out);
	if (rc == 0 && out->n == 0) {
		/* Nothing of a range the machine holds (the log is shorter
		 * than it thinks): an empty LOG_ENTRIES makes it ask for the
		 * same read at once, which would run again without end.  As
		 * a failed read: the leader asks again after retry_ms. */
		QFS_LOG(QFS_LOG_WARN, "rnode log read empty group=%016" PRIx64 " node=%u peer=%u from=%"
			PRIu64 " to=%" PRIu64, d->group, d->self, l->peer, l->from, l->to);
		rc = -ENODATA;
	}
	if (rc == 0) {
		memset(&ev, 0, sizeof(ev));
		ev.type = QFS_PAXOS_EV_LOG_ENTRIES;
		ev.now_ms = d->ops->now_ms(d->ctx);
		ev.peer = l->peer;
		ev.lsn = l->from - 1;
		ev.ballot = out->prev_ballot;
		ev.entries = out->ents;
		ev.n = out->n;
		(void)step_handle(d, &ev);
	} else if (rc == QFS_ECORRUPT) {
		/* A corrupt record in the log: this replica cannot be
		 * trusted (the cell rebuilds it). */
		stop(d, rc, "log read");
	}
	if (d->ops->read_done)
		d->ops->read_done(d->ctx, out);
	free(out);
}

static void local_apply(struct qfs_drive *d)
{
	struct qfs_paxos_event ev;
	int rc;

	d->apply_queued = 0;
	if (d->apply_to > d->ops->applied(d->ctx)) {
		if ((rc = d->ops->apply(d->ctx, d->apply_to))) {
			stop(d, rc, "apply");
			return;
		}
	} else if (!d->beside) {
		return;
	}
	d->beside = 0; /* (its entries are stepped with the rest) */
	if (d->ops->applied(d->ctx) < d->apply_to) {
		/* The log lacks entries the machine committed here: stepping
		 * APPLIED would ask for the same apply again, forever (the
		 * recursion before the queue hit its depth assert).  This
		 * replica cannot be trusted. */
		stop(d, QFS_ECORRUPT, "apply short");
		return;
	}
	memset(&ev, 0, sizeof(ev));
	ev.type = QFS_PAXOS_EV_APPLIED;
	ev.now_ms = d->ops->now_ms(d->ctx);
	ev.lsn = d->ops->applied(d->ctx);
	(void)step_handle(d, &ev);
}

/* Run the local steps in FIFO order until none is left (those the steps
 * queue included).  A nested call returns at once. */
static void run(struct qfs_drive *d)
{
	if (d->running)
		return;
	d->running = 1;
	while (d->qlen) {
		struct qfs_drive_local l = d->q[d->qhead];

		d->qhead = (d->qhead + 1) % QFS_DRIVE_QUEUE;
		d->qlen--;
		if (stopped(d)) {
			d->apply_queued = 0;
			continue;
		}
		switch (l.kind) {
		case QFS_DRIVE_L_READ:
			local_read(d, &l);
			break;
		case QFS_DRIVE_L_SNAP:
			d->ops->snapshot_to(d->ctx, l.peer);
			break;
		case QFS_DRIVE_L_APPLY:
			if (d->apply_after_sync && d->dirty && !d->leading) {
				/* A follower's ACCEPT appends new entries and
				 * commits older ones: the sync (and the ACCEPTED
				 * it releases) goes first, the apply right after
				 * it (qfs_drive_sync), not in front of it.  Never
				 * a leader's: its proposers wait for the apply,
				 * and an append of the next batch must not put a
				 * sync in front of the answers of this one. */
				d->apply_queued = 0;
				d->apply_wait = 1;
				break;
			}
			local_apply(d);
			break;
		}
	}
	d->running = 0;
}

int qfs_drive_step(struct qfs_drive *d, const struct qfs_paxos_event *ev)
{
	int rc = step_handle(d, ev);

	run(d);
	return rc;
}

void qfs_drive_handle(struct qfs_drive *d, const struct qfs_paxos_update *up)
{
	handle(d, up);
	run(d);
}

void qfs_drive_sync(struct qfs_drive *d)
{
	struct qfs_paxos_event ev;
	qfs_lsn_t lsn = d->sync_lsn, last;
	qfs_ballot_t ballot = d->sync_ballot;
	int rc, beside = 0;

	if (!d->dirty && !d->held)
		return;
	d->dirty = 0;
	d->sync_lsn = 0;
	if (stopped(d)) {
		held_free(d);
		return;
	}
	if (d->apply_wait && !d->leading && d->ops->apply_begin && d->apply_to > d->ops->applied(d->ctx) &&
	    d->ops->apply_begin(d->ctx, d->apply_to) == 0)
		beside = 1;
	rc = d->ops->sync(d->ctx);
	if (beside) {
		int arc = d->ops->apply_end(d->ctx);

		if (arc && !rc) {
			stop(d, arc, "apply");
			return;
		}
		d->beside = 1;
	}
	if (rc) {
		stop(d, rc, "wal sync");
		return;
	}
	while (d->held) {
		struct qfs_drive_held *h = d->held;

		d->held = h->next;
		d->ops->send(d->ctx, h->to, h->type, h->data, h->len);
		free(h);
	}
	d->held_last = NULL;
	if (d->apply_wait) {
		d->apply_wait = 0;
		if (!d->apply_queued && (d->apply_to > d->ops->applied(d->ctx) || d->beside) &&
		    enqueue(d, QFS_DRIVE_L_APPLY, 0, 0, 0) == 0)
			d->apply_queued = 1;
	}
	/* A truncation (or a snapshot install) since the append may have cut
	 * the log below that entry: report the entry the log now ends with. */
	last = d->ops->last(d->ctx);
	if (lsn > last) {
		lsn = last;
		if (lsn && d->ops->ballot_at(d->ctx, lsn, &ballot) != 0)
			lsn = 0;
	}
	if (lsn) {
		memset(&ev, 0, sizeof(ev));
		ev.type = QFS_PAXOS_EV_PERSISTED;
		ev.now_ms = d->ops->now_ms(d->ctx);
		ev.lsn = lsn;
		ev.ballot = ballot;
		(void)qfs_drive_step(d, &ev);
	}
	run(d); /* the local steps queued without a PERSISTED step (none if it ran) */
}
