/*
 * drive.h - the driver rules of one group's Paxos machine, without threads
 * or I/O: what is persisted before what is sent, which messages wait for
 * the sync (group commit), when the leader's own vote counts, what is
 * applied.  The rnode (src/node/rnode.c) runs it over its WAL, store and
 * transport; the simulator (tests/sim/sim.c) runs the same code over a
 * simulated storage that holds writes until sync and tears them on a
 * crash.  Design: doc/rnode.md section 2, doc/paxos.md sections 4 and 5.
 *
 * The caller owns the machine and every resource; the driver reaches them
 * only through struct qfs_drive_ops.  Each update is handled in the order
 * of doc/paxos.md section 4:
 *   1. persist: truncate (durable on return), append persist[] (buffered:
 *      the driver then asks for a sync with want_sync), save the promise
 *      (durable on return);
 *   2. send msgs[] as frames of src/net: a message that needs durability
 *      (qfs_paxos_msg_needs_durable) is held, in order, while appends
 *      wait for their sync; every other one (a leader's ACCEPT) leaves at
 *      once;
 *   3. queue the local steps the update asks for: the reads of reads[]
 *      (LOG_ENTRIES), snapshot_to, apply up to commit (APPLIED).
 * Local steps run from a FIFO after the update was handled, not by
 * recursion (etcd's raft hands local messages back the same way): a step
 * that a local step makes (LOG_ENTRIES, APPLIED) queues its own local
 * steps behind the others.  qfs_drive_sync (called when the caller chooses:
 * once per I/O round in the rnode, at the simulated sync time in the
 * simulator) syncs once for every append since the last (group commit),
 * sends the held messages in order and steps PERSISTED with the last
 * entry: only then does a leader count its own vote.
 *
 * Threads: none.  One driver is used by one thread at a time (the rnode's
 * I/O thread).  Callbacks may call qfs_drive_step on this driver only
 * from a local step (read, read_done, apply, snapshot_to): the step is
 * handled then and its local steps queued; from the persist and send
 * callbacks (the update points into the machine) they must not.
 */
#ifndef QFS_NODE_DRIVE_H
#define QFS_NODE_DRIVE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "repl/paxos.h"

#define QFS_DRIVE_QUEUE 128 /* local steps queued at once (the last one kept for
			     * the apply; reads and snapshots beyond: dropped) */

/* Entries read from the log for a follower (ops->read fills it). */
struct qfs_drive_log {
	qfs_ballot_t prev_ballot; /* ballot of the entry at from - 1 (0: none) */
	struct qfs_repl_entry ents[QFS_PAXOS_MAX_BATCH]; /* from, from + 1, ... */
	uint32_t n;
	void *priv;               /* the caller's (its buffers), for read_done */
};

/* The caller's side.  ctx is qfs_drive_init's.  Functions returning int
 * return 0 or a negative errno; an error of a persist, sync or apply
 * callback stops the group (ops->stop), after which the driver steps and
 * sends nothing for it. */
struct qfs_drive_ops {
	/* Step the machine (the caller may lock around it and look at the
	 * update: leader, next tick).  Returns qfs_paxos_step's rc. */
	int (*step)(void *ctx, const struct qfs_paxos_event *ev, struct qfs_paxos_update *up);
	uint64_t (*now_ms)(void *ctx);            /* the machine's clock */
	int (*stopped)(void *ctx);                /* 1: the group no longer runs */
	void (*stop)(void *ctx, int rc, const char *what); /* stop it (logs) */
	/* storage */
	int (*truncate)(void *ctx, qfs_lsn_t after);   /* durable on return */
	int (*append)(void *ctx, const struct qfs_repl_entry *e); /* buffered */
	int (*save_promise)(void *ctx, qfs_ballot_t promised); /* durable on return */
	void (*want_sync)(void *ctx);             /* appends wait: call qfs_drive_sync */
	int (*sync)(void *ctx);                   /* make every append durable */
	qfs_lsn_t (*last)(void *ctx);             /* the log's last LSN (0: empty) */
	int (*ballot_at)(void *ctx, qfs_lsn_t lsn, qfs_ballot_t *out); /* of that entry */
	/* Read [from, to] (at most QFS_PAXOS_MAX_BATCH entries; a short read
	 * is fine, an empty one is skipped as an error) and the ballot of
	 * from - 1 into out.  QFS_ECORRUPT stops the group, any other error
	 * skips the read (the leader asks again after retry_ms).
	 * read_done (may be NULL) is called after the LOG_ENTRIES step,
	 * also on error. */
	int (*read)(void *ctx, qfs_lsn_t from, qfs_lsn_t to, struct qfs_drive_log *out);
	void (*read_done)(void *ctx, struct qfs_drive_log *out);
	/* Apply (applied, commit] in order, each exactly once; the applied
	 * LSN reached is what applied() returns afterwards.  Returning 0
	 * short of commit (the log lacks committed entries) stops the group
	 * with QFS_ECORRUPT. */
	int (*apply)(void *ctx, qfs_lsn_t commit);
	qfs_lsn_t (*applied)(void *ctx);
	/* Both NULL, or both set: the apply beside a follower's sync.  With
	 * an apply waiting for the sync (apply_after_sync), qfs_drive_sync
	 * calls apply_begin(commit) before ops->sync: 0 means the caller
	 * started the apply of (applied, commit], or of a prefix of it,
	 * elsewhere (it holds what it needs of the log: the sync and the
	 * apply then run at once; the rest is applied after the sync), any
	 * other value that it did not (the apply runs after the sync, as
	 * without them).  After ops->sync (also a failed one) the driver
	 * calls apply_end, which waits for that apply and returns its rc (an
	 * error stops the group, as ops->apply's).  Every entry of it is
	 * durable before the sync starts (a commit never passes the durable
	 * point), so the sync does not order it; the APPLIED step comes where
	 * it would have come, after the sync's PERSISTED. */
	int (*apply_begin)(void *ctx, qfs_lsn_t commit);
	int (*apply_end)(void *ctx);
	void (*snapshot_to)(void *ctx, uint32_t to); /* send a snapshot to node to */
	/* Put one frame (QFS_NET_FRAME_HDR + body, type its frame type) on
	 * the wire to node to; buf is only valid during the call. */
	void (*send)(void *ctx, uint32_t to, uint8_t type, const uint8_t *buf, size_t len);
	/* Both NULL, or both set: a message sent at once (not held) is then
	 * encoded straight into a frame of the transport and handed over,
	 * without the copy of send().  frame_new returns a frame of len
	 * bytes (NULL: out of memory, the message is lost as on the wire)
	 * and its first byte in *data; frame_send takes the frame in every
	 * case (the driver never touches it again), and frees it unsent when
	 * to is 0 (the encoder failed).  The frame comes sealed without its
	 * CRC (qfs_net_frame_seal_hdr): qfs_net_send_frame sets it when the
	 * frame leaves the process. */
	void *(*frame_new)(void *ctx, size_t len, uint8_t **data);
	void (*frame_send)(void *ctx, uint32_t to, uint8_t type, void *frame);
	/* May be NULL: up was persisted and its messages sent or held, its
	 * local steps not run yet (the simulator's checks look at it). */
	void (*handled)(void *ctx, const struct qfs_paxos_update *up);
};

/* A message held until the next sync (an encoded frame). */
struct qfs_drive_held {
	struct qfs_drive_held *next;
	uint32_t to;
	uint8_t type;
	size_t len;
	uint8_t data[];
};

/* A local step (queued by an update, run in FIFO order). */
struct qfs_drive_local {
	uint8_t kind;            /* QFS_DRIVE_L_* (drive.c) */
	uint32_t peer;           /* read: for whom; snapshot: to whom */
	qfs_lsn_t from, to;      /* read: the range */
};

/* One group's driver.  Fields are the driver's; read only by its thread. */
struct qfs_drive {
	const struct qfs_drive_ops *ops;
	void *ctx;
	struct qfs_buf *frame;   /* scratch for one encoded message (caller's) */
	uint64_t group;          /* for log lines */
	uint32_t self;
	int dirty;               /* appended since the last sync */
	qfs_lsn_t sync_lsn;      /* last entry appended since that sync */
	qfs_ballot_t sync_ballot; /* and its ballot (PERSISTED after the sync) */
	struct qfs_drive_held *held, *held_last; /* waiting for the sync, in order */
	struct qfs_drive_local q[QFS_DRIVE_QUEUE]; /* FIFO of local steps */
	uint32_t qhead, qlen;
	qfs_lsn_t apply_to;      /* the highest commit an update asked to apply */
	int apply_queued;        /* an APPLY local step is in q */
	int apply_after_sync;    /* caller's choice (qfs_drive_init leaves it 0):
				  * an apply waits while appends wait for their
				  * sync, and runs right after it */
	int apply_wait;          /* an apply waits for the sync */
	int beside;              /* applied beside the sync (apply_begin): its
				  * APPLIED step is still to come */
	int leading;             /* the last update said this node leads */
	int running;             /* the local steps are being run */
	uint64_t st_held;        /* messages held for a sync (count) */
};

/* Set up d for the group (group, self: log fields only) with ops over ctx;
 * frame is a scratch buffer the caller keeps (may be shared by the
 * drivers of one thread).  Cannot fail. */
void qfs_drive_init(struct qfs_drive *d, const struct qfs_drive_ops *ops, void *ctx,
		    struct qfs_buf *frame, uint64_t group, uint32_t self);

/* Forget everything in flight: held messages (never sent), queued local
 * steps, the pending sync.  For a crash, a stop or before freeing d. */
void qfs_drive_reset(struct qfs_drive *d);

/* Step ev (unless stopped) and handle its update; then run the local
 * steps, unless they are running already (a call from a local step),
 * in which case they are queued behind.  Returns the step's rc (the
 * update is handled only on 0), or QFS_ESTOPPED when stopped. */
int qfs_drive_step(struct qfs_drive *d, const struct qfs_paxos_event *ev);

/* Handle up, the update of a step the caller made itself through
 * ops->step (e.g. PROPOSE, to read the LSNs of its entries first), then
 * run the local steps (as qfs_drive_step). */
void qfs_drive_handle(struct qfs_drive *d, const struct qfs_paxos_update *up);

/* Sync now: ops->sync if anything was appended since the last one, then
 * the held messages in order, then step PERSISTED with the entry the log
 * ends with (if it was cut below the last append) and run the local
 * steps (an apply that waited for this sync, apply_after_sync, among
 * them).  A failed sync stops the group and drops the held messages.  A
 * stopped group only drops them.  Nothing to do returns at once. */
void qfs_drive_sync(struct qfs_drive *d);

/* 1 if appends wait for qfs_drive_sync. */
int qfs_drive_dirty(const struct qfs_drive *d);

#endif
