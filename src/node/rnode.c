/*
 * rnode.c - a replicated storage node: drives one Multi-Paxos state machine
 * (src/repl/paxos.h) and one WAL (src/wal) per group over one shared store
 * (src/store) and one transport endpoint (src/net).  Contract: rnode.h;
 * driver, recovery and limits: doc/rnode.md; protocol: doc/paxos.md.
 *
 * Driver contract (doc/paxos.md section 4), kept by the driver rules of
 * drive.c (qfs_drive_step/_handle/_sync: no threads, no I/O; the simulator
 * runs the same code) over this file's WAL, store and endpoint (the drive_*
 * callbacks below) and by flush_dirty(), for every update in the order the
 * steps produce them:
 *   1. truncate (qfs_wal_truncate_after, durable at once), append persist[]
 *      to the WAL's buffer and put the group on the round's dirty list,
 *      save the promise (temp file + fsync + rename + fsync dir, at once);
 *   2. send msgs[]: a leader's ACCEPTs at once, while its own sync of the
 *      same entries is still to come; every message that reports acceptor
 *      state (qfs_paxos_msg_needs_durable) only once everything persisted
 *      so far is durable: sent at once if the group's WAL has no unsynced
 *      append, else held in order until its sync;
 *   3. serve reads[] from the WAL (buffered records included) and step
 *      LOG_ENTRIES; serve snapshot_to by shipping the store's state at its
 *      applied LSN in "snapshot" frames (snap.h; section "Snapshots" below);
 *   4. apply entries up to commit (never above the local durable point) in
 *      LSN order, read back from the WAL, each exactly once (the store
 *      writes the applied LSN in the same batch), step APPLIED, and answer
 *      the proposer whose (lsn, ballot) matches; a proposal whose LSN was
 *      truncated or holds another ballot's entry fails with -EAGAIN (it
 *      was never committed).
 *   5. TICK at next_tick_ms at the latest.
 * Reads, snapshot requests and applies are local steps the driver queues and
 * runs in FIFO order after the update that asked for them (no recursion).
 * Group commit: after the frames and the proposals of one I/O round (and
 * again after its timers), flush_dirty syncs each dirty WAL once (one
 * fdatasync for every append of the round, of every update), then sends
 * the group's held messages in order and steps PERSISTED with the last
 * entry: only then does the leader count its own vote.  So a follower
 * syncs once for all the ACCEPTs it drained, and a leader once for all
 * the proposals it took, while its followers sync the same entries.
 *
 * Threads.  Proposers queue a struct proposal (on their stack) under rn->mu
 * and sleep on its done word as a futex, without rn->mu (an answer wakes its
 * proposer only, once, after rn->mu is released: answer()); group_drop
 * and wal_release queue a struct ioreq and sleep on rn->done_cv.  One
 * round at a time touches the WALs, the paxos machines (stepped under
 * g->mu, so that readers can ask for the lease), the
 * endpoint and the pending lists: the I/O thread's, or a proposer's own
 * round (propose_direct: the I/O thread idle and nothing queued, it
 * proposes, sends, syncs and drains the answers on its own thread, with
 * the same driver rules); rn->round_mu is held by whoever runs it.  The
 * I/O thread alone drops groups, releases WAL segments, ticks and seals.
 * It waits on rn->work_cv for proposals, requests, frames (the net's wake
 * callback sets rn->wake), the next tick or the next age seal.  No round
 * holds rn->mu while sending: the peer's wake callback takes the peer's
 * rn->mu, and two nodes sending to each other while each holds its own
 * would deadlock (net.h's rule).
 *
 * Group lifetime.  rn->groups[] holds one reference to each group; every
 * other user (a reader thread, the I/O thread's round) takes one with
 * group_get() under rn->mu and gives it back with group_put(); the struct
 * is freed by the last put.  A drop (I/O thread) unlinks the members file
 * first (from then on the group does not exist on disk), sets g->dropped
 * under g->rw exclusive (so no store read of the group is in flight when
 * its items go), fails its proposals with QFS_ENOGROUP, removes the store
 * items, the promise file and last the WAL directory, and only then takes
 * the group out of the table (so a create of the same id cannot race the
 * unlinks).  A WAL directory without a members file is the leftover of an
 * interrupted drop (or create): open and create finish it.
 *
 * Sealing by age.  The I/O thread seals a group's open segment once its
 * first record since the last seal (g->unsealed_ms) is wal_seal_age_ms
 * old, so the archiver, which uploads only sealed segments whose records
 * are all applied, lags by a bounded time.  A new leader's truncate_after
 * happens only above the commit point, so it never touches a segment the
 * archiver may have taken; but it may delete whole newer segments and make
 * a sealed (maybe archived) segment the open tail again: the driver then
 * seals it again at once, and open seals every tail that holds records
 * (a crash between the two), so an archived segment never grows.
 *
 * Snapshots (doc/rnode.md section 6).  A leader ships one RocksDB
 * snapshot of the group (qfs_store_snapshot_scan) in chunks of about
 * RNODE_SNAP_CHUNK bytes, sent as the scan fills them; the last chunk
 * carries the applied LSN and the ballot of its entry.  It does so when the
 * machine asks (snapshot_to) and when a follower reports a position below
 * the first retained LSN (snap_behind: a wiped replica), and stops when it
 * is deposed.  A follower takes chunks only from the leader it follows and
 * a chunk 0 only of a transfer newer than its last one, and
 * collects the chunks of one transfer in order into a store install
 * (written to staging SST files as they come, ingested at once), then:
 * store replaced and flushed, WAL kept (it holds
 * the snapshot's entry) or emptied, SNAPSHOT_INSTALLED.  The store records
 * the snapshot point, so open finishes an install cut by a crash after the
 * flush (snap_recover) and restores last/last_ballot of an emptied log.
 *
 * Lock order: g->rw -> g->mu; rn->mu and g->mu are never held together;
 * rn->mu is never held with g->rw either.  Store reads run under g->rw
 * shared (a scan callback must not drop the group or propose on the node).
 *
 * Errors.  A WAL, promise or store failure stops the group (QFS_ESTOPPED
 * from then on; the failing batch's proposers get the error itself): a
 * replica that cannot persist must not vote.  Reopening the node recovers.
 */
#include "config.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/bigbuf.h"
#include "common/clock.h"
#include "common/key.h"
#include "common/log.h"
#include "common/sysio.h"
#include "common/txn.h"
#include "node/drive.h"
#include "node/node_int.h"
#include "node/rnode.h"
#include "node/snap.h"
#include "repl/repl.h"
#include "wal/wal.h"

#define RNODE_FORMAT "quorumfs-rnode 1\n"
#define RNODE_PAYLOAD_MAX ((size_t)QFS_WAL_RECORD_MAX - QFS_REPL_ENTRY_HDR)
#define RNODE_SPACE_FLOOR (1ull << 20) /* bytes even a delete leaves free on the WAL's disk */
#define RNODE_WAL_ZERO_AHEAD (256ull << 10) /* zeros written ahead of a group's WAL tail
					   * (doc/format-wal.md "Zeroed ahead") */
#define RNODE_SPACE_CACHE_MS 5         /* a statvfs of the admission check serves this long */
#define RNODE_SPACE_SLACK (64ull << 20) /* ... and only while it shows this much beyond need */
#define RNODE_ADM_MARKS 64 /* a leader's (LSN, bytes admitted) marks, per group */
#define RNODE_POLL_MS 10 /* wait granularity while proposals wait for a deadline */
#define RNODE_APPLY_WAIT_MS 20u /* longest wait of a strong read for an apply under way */
#define RNODE_GATHER_MIN_US 500u /* a batch waits for the proposers of the last
				    answered ones to propose again (gather) about
				    one log sync's time, at least this long */
#define RNODE_GATHER_MAX_US 4000u /* ... and at most this long */
#define RNODE_GATHER_VAIN 2u /* gathers in a row in vain (no other proposal came)
			       stop gathering for ... */
#define RNODE_GATHER_SKIP 32u /* ... this many successes (not counted in returning) */
uint32_t qfs_rnode_gather_test_us; /* see rnode.h */

#define RNODE_READ_BYTES (8u << 20) /* entry bytes of one log read for a follower
				     * (one ACCEPT frame, QFS_NET_BODY_MAX) */

/* One proposal, on the proposer's stack while it waits. */
struct proposal {
	struct proposal *next;  /* queue or pending link; rn->mu while queued, I/O thread after */
	qfs_group_t group;
	const void *txn;
	size_t len;
	uint8_t type;           /* QFS_REPL_ENTRY_TXN, or _CONFIG (txn: the encoded
				   member list; batched alone) */
	uint64_t deadline_ms;   /* monotonic */
	const struct qfs_paxos_config *from; /* CONFIG only: appended only if
				   this is still the configuration in force, in
				   ballot from_ballot, under a lease (NULL: no
				   condition; qfs_rnode_propose_members_if) */
	qfs_ballot_t from_ballot;
	qfs_lsn_t lsn;          /* (lsn, ballot) assigned by PROPOSE */
	qfs_ballot_t ballot;
	int rc;                 /* outcome, written by the I/O thread before done */
	int result;
	uint32_t leader;        /* hint for -EREMOTE */
	int done;               /* protected by rn->mu; a queued proposal's is
				   also its proposer's futex word (stored with
				   release, loaded with acquire) */
	int queued;             /* rn->mu: its proposer waits on done (a futex)
				   without rn->mu, not on cv (propose_type) */
	pthread_cond_t cv;      /* signalled (under rn->mu) when done is set,
				   unless queued; and by on_wake (direct_p) */
};

struct group {
	qfs_group_t id;
	struct qfs_rnode *rn;    /* immutable: the node (the driver's callbacks) */
	struct qfs_drive drv;    /* I/O thread: the driver rules (drive.h) */
	uint32_t refs;           /* rn->mu: the table's + every group_get's */
	struct qfs_paxos_config cfg;
	int logrep;              /* this replica is a log replica (doc/paxos.md
				    section 7a): it applies no txn to the store
				    and serves no read; set at load or join
				    (" kind log" in its members file), never
				    cleared */
	struct qfs_wal *wal;     /* I/O thread */
	struct qfs_paxos px;     /* stepped by the I/O thread under mu */
	pthread_mutex_t mu;      /* protects px reads by other threads and the snapshot */
	pthread_cond_t applied_cv; /* with mu: broadcast after an APPLIED step or a
				    stop while apply_waiters > 0 */
	uint32_t apply_waiters;  /* mu: strong reads waiting for an apply
				    (qfs_rnode_can_read_strong) */
	pthread_rwlock_t rw;     /* shared: a store read of the group; exclusive: drop */
	int dropped;             /* set under rw exclusive and mu (I/O thread) */
	int stopped;             /* protected by mu */
	int err;                 /* why it stopped */
	int untrusted;           /* mu: stopped because its copy on disk cannot
				    be trusted (loaded stopped, or a corrupt
				    read): only a rebuild heals it */
	uint64_t nospc_warned_ms; /* I/O thread: last "proposals refused" line */
	/* The admission check's statvfs (space_free), under round_mu: bytes
	 * free on the WAL's disk at space_ms, minus every batch admitted since;
	 * space_ms 0: none. */
	uint64_t space_free;
	uint64_t space_ms;
	/* Also under round_mu, the leader's: after each batch it admitted,
	 * the batch's last LSN and the bytes per member admitted in this
	 * term up to it (adm_bytes), oldest first; adm_since is the term
	 * (px.lead_since) they belong to.  Each member's backlog, what it
	 * still has to write to the disk, is read from them (space_backlog);
	 * when full, one mark goes (adm_mark: the older ones get sparse, and
	 * a backlog read from them can only be larger). */
	struct adm_mark {
		qfs_lsn_t lsn;
		uint64_t bytes;
	} adm[RNODE_ADM_MARKS];
	uint32_t nadm;
	uint64_t adm_bytes;
	uint64_t adm_since;
	struct proposal *applied_q; /* round's thread: proposals whose entry is
				    applied, answered once the machine's
				    APPLIED step ran (answers_release), in
				    LSN order; applied_qt its tail */
	struct proposal *applied_qt;
	uint64_t snap_warned_ms; /* I/O thread: last "snapshot not sent" line */
	uint64_t point_sent_ms;  /* I/O thread: last snapshot point sent to a log
				    replica (snap_send_point), mono ms */
	struct snap_in *sin;     /* I/O thread: snapshot being received, or NULL */
	uint64_t snap_sent_ms[QFS_PAXOS_MAX_NODES]; /* I/O thread: last snapshot
				    sent to cfg.ids[i] (mono ms) */
	uint64_t snap_gap_ms[QFS_PAXOS_MAX_NODES]; /* I/O thread: backoff before
				    the next snapshot to cfg.ids[i] (0: none);
				    doubles per send without progress */
	qfs_lsn_t snap_lsn[QFS_PAXOS_MAX_NODES]; /* I/O thread: LSN of the last
				    snapshot sent to cfg.ids[i] (0: none pending) */
	uint32_t snap_tries[QFS_PAXOS_MAX_NODES]; /* I/O thread: snapshots sent
				    to cfg.ids[i] since its last progress */
	struct snap_xfer *sx[QFS_PAXOS_MAX_NODES]; /* I/O thread: the transfer to
				    cfg.ids[i] in flight, or NULL */
	int snap_burst[QFS_PAXOS_MAX_NODES]; /* I/O thread: cfg.ids[i] answered
				    Paxos but never acknowledged a chunk (an
				    older version): send without window */
	uint32_t sin_chunks;     /* mu: chunks held in g->sin (0: none); for
				    qfs_rnode_group_info */
	uint64_t sin_dropped;    /* mu: chunks refused as not of the current
				    transfer of the leader followed (snap_recv) */
	uint32_t sin_last_from;  /* I/O thread: sender, id and the leader's */
	uint64_t sin_last_xfer;  /* ballot followed then of the newest transfer */
	qfs_ballot_t sin_last_ballot; /* started here (its chunk 0 taken) */
	uint32_t leader;         /* from the last update; mu */
	uint64_t next_tick_ms;   /* I/O thread */
	qfs_lsn_t applied;       /* I/O thread: store's applied LSN */
	uint64_t unsealed_ms;    /* I/O thread: mono ms of the first record since
				    the last seal, 0: none */
	qfs_lsn_t wal_first;     /* mu: qfs_wal_first after the last WAL change */
	uint64_t wal_bytes;      /* mu: segment bytes after the last WAL change */
	struct proposal *pending; /* I/O thread: proposed, not answered; lsn order */
	int dirty;               /* I/O thread: on rn->dirty with a reference (the
				    driver asked for a sync) */
	struct group *dirty_next; /* I/O thread: link of rn->dirty */
	struct ioreq *snap_wait; /* I/O thread: a scrub snapshot parked until applied
				    reaches its LSN (qfs_rnode_snap_at), or NULL */
	char promise_path[PATH_MAX];
	char promise_tmp[PATH_MAX];
	char gdir[PATH_MAX];
	char waldir[PATH_MAX];
};

/* A snapshot being received (follower; section 6 of doc/rnode.md): the
 * chunks of one transfer, in order, collected in a store install. */
struct snap_in {
	uint32_t from;           /* sender */
	uint64_t xfer;           /* its transfer id */
	uint32_t next;           /* next chunk expected */
	uint64_t items;          /* items collected so far */
	uint64_t last_ms;        /* mono ms of the last chunk taken */
	struct qfs_store_install *inst;
};

/* A request only the I/O thread may carry out, on the caller's stack. */
enum ioreq_type { IOREQ_DROP = 1, IOREQ_RELEASE, IOREQ_SNAP, IOREQ_WAL_VERIFY, IOREQ_SEAL, IOREQ_DISTRUST,
		IOREQ_ELECT };

struct ioreq {
	struct ioreq *next;      /* rn->mu while queued */
	enum ioreq_type type;
	qfs_group_t group;
	qfs_lsn_t lsn;           /* RELEASE: delete segments wholly below; SNAP: at */
	uint64_t deadline_ms;    /* SNAP: mono ms to give up parked */
	struct qfs_store_snap *snap; /* SNAP: the snapshot taken (out) */
	int rc;                  /* written by the I/O thread before done */
	int done;                /* rn->mu */
};

struct qfs_rnode {
	char *dir;
	char *az;
	uint32_t id;
	struct qfs_paxos_params prm;
	struct qfs_wal_opts wopts;
	uint64_t seal_age_ms;    /* UINT64_MAX: never */
	void (*test_before_sync)(qfs_group_t group, qfs_lsn_t lsn, void *arg); /* opts */
	void *test_arg;
	uint64_t space_reserve;  /* bytes a batch that writes data must leave
				    free on the WAL's disk; immutable */
	const uint64_t *space_hold; /* opts; more such bytes, read atomically */
	void (*on_frame)(struct qfs_net_frame *f, uint8_t type, void *arg); /* opts */
	void *frame_arg;
	struct qfs_store *store;
	struct qfs_net_ep *ep;

	pthread_mutex_t round_mu; /* held by the thread running a round: the I/O
				    thread, or a proposer running its own (direct
				    round, propose_direct); protects the I/O
				    thread's state below and in the groups.
				    Taken before mu, never while holding it
				    (trylock excepted) */
	pthread_mutex_t mu;      /* protects below */
	pthread_cond_t work_cv;  /* I/O thread: queue, wake, closing, io_next */
	pthread_cond_t done_cv;  /* ioreq waiters (proposals have their own) */
	struct proposal *qhead, *qtail;
	struct ioreq *rhead, *rtail;
	void (*seal_hook)(qfs_group_t group, void *arg); /* rn->mu */
	void *seal_hook_arg;
	int wake;                /* frames arrived */
	int direct;              /* a proposer runs a round (propose_direct): the
				    wake callback only sets wake, the proposer
				    drains or passes it on at the end */
	struct proposal *direct_p; /* a proposer that ran its round and waits for
				    the ACCEPTEDs: the wake callback signals it
				    (not the I/O thread); it drains them itself
				    if round_mu is free, else hands over */
	int io_waiting;          /* the I/O thread woke and waits for round_mu: no
				    proposer starts or continues a direct round
				    (a stream of them would starve its ticks) */
	uint64_t io_next;        /* mono ms the idle I/O thread wakes up at the
				    latest (its timers); a direct round that asks
				    for earlier lowers it and signals */
	uint32_t qlen;           /* proposals queued (qhead) */
	uint32_t returning;      /* proposals answered with success whose
				    proposers have not proposed again since
				    (each new proposal takes one off): the
				    ones a batch may still gather (gather) */
	uint64_t gather_ns;      /* mono ns: a batch gathers until then at
				    the latest (the last success answered +
				    about one sync: RNODE_GATHER_MIN_US..MAX_US) */
	uint32_t arrived;        /* proposals made since the last success
				    answered */
	uint32_t gather_skip;    /* successes not counted in returning (after
				    gathers that waited in vain) */
	uint32_t gather_vain;    /* gathers in a row that waited in vain */
	uint64_t sync_avg_ns;    /* atomic: moving average of a log sync's time
				    (written by the round's thread) */
	int closing;
	struct group *groups[QFS_RNODE_MAX_GROUPS];
	size_t ngroups;
	pthread_t io;

	/* I/O thread scratch (round_mu) */
	uint64_t round_next;     /* earliest next_tick_ms stepped or age seal due
				    this round (a direct round passes it on) */
	struct group *dirty;     /* groups with unsynced appends (g->dirty), each
				    with a reference, until flush_dirty */
	struct qfs_buf frame;    /* one encoded message */
	struct qfs_buf snap;     /* one snapshot chunk being built */
	uint64_t snap_xfer;      /* last transfer id used */
	uint8_t snap_ackers[65536 / 8]; /* bit id: node id sent this node a
				    snapshot ACK frame since open (it speaks
				    the windowed stream; never treated as old) */

	/* The apply beside a follower's sync (doc/rnode.md section 2, "A
	 * follower applies beside its sync"): while the round's thread syncs
	 * a group's WAL, the applier thread runs apply_cb over the records of
	 * the entries the group may apply, copied out of the WAL first
	 * (ap_recs), so the WAL has one user at a time. */
	pthread_t ap;
	int ap_started;          /* the applier thread runs (immutable after open) */
	pthread_mutex_t ap_mu;   /* protects below */
	pthread_cond_t ap_work_cv; /* applier: work, or closing */
	pthread_cond_t ap_done_cv; /* round's thread: the work is done */
	struct group *ap_g;      /* the group whose apply runs, NULL: none */
	int ap_rc;               /* its result */
	int ap_closing;
	struct qfs_buf ap_recs;  /* the records (struct beside_rec, then the
				    payload); written by the round's thread
				    before ap_g is set, read by the applier
				    until ap_g is cleared */
	const char *ap_dir;      /* their log's directory (the same) */

	uint64_t st_proposals, st_batches, st_fsyncs, st_in, st_out, st_direct, st_beside; /* atomics, relaxed */
};

/* 1 on the thread that holds its node's round_mu (a round's thread: the I/O
 * thread or a proposer in its own round), which must never wait for an
 * apply (qfs_rnode_can_read_strong): it is the thread that applies. */
static __thread int round_held;
static void stat_add(uint64_t *c, uint64_t v)
{
	__atomic_fetch_add(c, v, __ATOMIC_RELAXED);
}

static uint64_t now_ms(void)
{
	return qfs_clock_mono_ms();
}

/* ---------------------------------------------------------------- groups */

static const char *role_name(const struct group *g)
{
	if (g->stopped)
		return "stopped";
	switch (g->px.role) {
	case QFS_PAXOS_LEADER:
		return "leader";
	case QFS_PAXOS_CANDIDATE:
		return "candidate";
	default:
		return "follower";
	}
}

/* Find a group and take a reference (give it back with group_put).  A
 * dropped group may still be returned while its drop runs: callers check
 * g->dropped.  Takes rn->mu. */
static struct group *group_get(struct qfs_rnode *rn, qfs_group_t id)
{
	struct group *g = NULL;

	pthread_mutex_lock(&rn->mu);
	for (size_t i = 0; i < rn->ngroups; i++)
		if (rn->groups[i]->id == id) {
			g = rn->groups[i];
			g->refs++;
			break;
		}
	pthread_mutex_unlock(&rn->mu);
	return g;
}

static void snap_xfer_free(struct group *g, uint32_t i);

/* A condition variable on the monotonic clock (timed waits). */
static void group_cv_init(pthread_cond_t *cv)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(cv, &ca);
	pthread_condattr_destroy(&ca);
}

static void group_free(struct group *g)
{
	if (!g)
		return;
	qfs_wal_close(g->wal);
	qfs_drive_reset(&g->drv); /* held messages: never sent */
	for (uint32_t i = 0; i < QFS_PAXOS_MAX_NODES; i++)
		snap_xfer_free(g, i);
	if (g->sin) {
		qfs_store_install_abort(g->sin->inst);
		free(g->sin);
	}
	pthread_rwlock_destroy(&g->rw);
	pthread_mutex_destroy(&g->mu);
	pthread_cond_destroy(&g->applied_cv);
	free(g);
}

/* Give back a reference; the last one frees the group.  Takes rn->mu. */
static void group_put(struct qfs_rnode *rn, struct group *g)
{
	int last;

	if (!g)
		return;
	pthread_mutex_lock(&rn->mu);
	assert(g->refs > 0);
	last = --g->refs == 0;
	pthread_mutex_unlock(&rn->mu);
	if (last)
		group_free(g);
}

/* Is g dropped?  Takes g->mu. */
static int group_dropped(struct group *g)
{
	int d;

	pthread_mutex_lock(&g->mu);
	d = g->dropped;
	pthread_mutex_unlock(&g->mu);
	return d;
}

/* Remember the WAL's first LSN and size for group_info (I/O thread). */
static void wal_snap(struct group *g)
{
	struct qfs_wal_stat st;
	qfs_lsn_t first;

	if (!g->wal)
		return;
	qfs_wal_stat(g->wal, &st);
	first = qfs_wal_first(g->wal);
	pthread_mutex_lock(&g->mu);
	g->wal_first = first;
	g->wal_bytes = st.bytes;
	pthread_mutex_unlock(&g->mu);
}

static int group_paths(struct qfs_rnode *rn, struct group *g)
{
	int rc;

	if ((rc = qfs_node_path_fmt(g->gdir, sizeof(g->gdir), "%s/groups", rn->dir)) ||
	    (rc = qfs_node_path_fmt(g->promise_path, sizeof(g->promise_path), "%s/%016" PRIx64 ".promise",
			   g->gdir, g->id)) ||
	    (rc = qfs_node_path_fmt(g->promise_tmp, sizeof(g->promise_tmp), "%s/%016" PRIx64 ".promise.tmp",
			   g->gdir, g->id)) ||
	    (rc = qfs_node_path_fmt(g->waldir, sizeof(g->waldir), "%s/wal/%016" PRIx64, rn->dir, g->id)))
		return rc;
	return 0;
}

/* "members ID[L] ...[ kind log]\n" (doc/format-node.md): L marks a log
 * replica member; " kind log" says this replica is one (logrep, may be
 * NULL).  A release without log replicas refuses both as corrupt. */
static int cfg_parse_kind(const char *text, struct qfs_paxos_config *cfg, int *logrep)
{
	const char *p = text;
	char *end;
	int lr = 0;

	if (strncmp(p, "members", 7) != 0)
		return QFS_ECORRUPT;
	p += 7;
	memset(cfg, 0, sizeof(*cfg));
	while (*p == ' ') {
		unsigned long v;

		if (strncmp(p, " kind log", 9) == 0) {
			lr = 1;
			p += 9;
			break;
		}
		v = strtoul(p + 1, &end, 10);
		if (end == p + 1 || v == 0 || v > 65535 || cfg->n == QFS_PAXOS_MAX_NODES)
			return QFS_ECORRUPT;
		if (*end == 'L') {
			cfg->log |= 1u << cfg->n;
			end++;
		}
		cfg->ids[cfg->n++] = (uint32_t)v;
		p = end;
	}
	if (strcmp(p, "\n") != 0 || !cfg->n)
		return QFS_ECORRUPT;
	if (logrep)
		*logrep = lr;
	return 0;
}

static int cfg_parse(const char *text, struct qfs_paxos_config *cfg)
{
	return cfg_parse_kind(text, cfg, NULL);
}

/* A valid member list; holding self unless self is 0 (a members file may
 * lack its own node: a replica being added, or one removed). */
static int cfg_valid(const struct qfs_paxos_config *cfg, uint32_t self)
{
	int found = !self;

	if (!cfg || cfg->n == 0 || cfg->n > QFS_PAXOS_MAX_NODES)
		return 0;
	for (uint32_t i = 0; i < cfg->n; i++) {
		if (cfg->ids[i] == 0 || cfg->ids[i] > 65535)
			return 0;
		for (uint32_t j = 0; j < i; j++)
			if (cfg->ids[j] == cfg->ids[i])
				return 0;
		found |= cfg->ids[i] == self;
	}
	return found;
}

/* WAL walk collecting the ballot runs of [from, last]. */
struct runs_walk {
	struct qfs_paxos_run runs[QFS_PAXOS_MAX_RUNS];
	uint32_t n;
	qfs_ballot_t last_ballot;
	int overflow;
	struct qfs_paxos_cfgent cfgs[QFS_PAXOS_MAX_CFGS]; /* CONFIG entries seen */
	uint32_t ncfgs;
};

static int runs_cb(qfs_lsn_t lsn, const void *p, size_t len, void *arg)
{
	struct runs_walk *w = arg;
	struct qfs_repl_entry e;
	int rc = qfs_repl_entry_decode(lsn, p, len, &e);

	if (rc)
		return rc;
	if (e.type == QFS_REPL_ENTRY_CONFIG) {
		/* keep the newest QFS_PAXOS_MAX_CFGS (those above applied are
		 * restored into the machine) */
		if (w->ncfgs == QFS_PAXOS_MAX_CFGS) {
			memmove(w->cfgs, w->cfgs + 1, (QFS_PAXOS_MAX_CFGS - 1) * sizeof(w->cfgs[0]));
			w->ncfgs--;
		}
		w->cfgs[w->ncfgs].lsn = lsn;
		if (qfs_paxos_config_decode(e.data, e.len, &w->cfgs[w->ncfgs].cfg))
			return QFS_ECORRUPT;
		w->ncfgs++;
	}
	if (w->n == 0 || w->runs[w->n - 1].ballot != e.ballot) {
		if (w->n && e.ballot < w->runs[w->n - 1].ballot)
			return QFS_ECORRUPT; /* ballots never decrease along the log */
		if (w->n == QFS_PAXOS_MAX_RUNS) {
			w->overflow = 1;
			return QFS_ECORRUPT;
		}
		w->runs[w->n].first = lsn;
		w->runs[w->n].ballot = e.ballot;
		w->n++;
	}
	w->last_ballot = e.ballot;
	return 0;
}

/* WAL walk: the ballot of one entry. */
struct ballot_walk {
	qfs_lsn_t lsn;
	qfs_ballot_t ballot;
	int found;
};

static int ballot_cb(qfs_lsn_t lsn, const void *p, size_t len, void *arg)
{
	struct ballot_walk *w = arg;
	struct qfs_repl_entry e;
	int rc;

	if (lsn != w->lsn)
		return 0;
	if ((rc = qfs_repl_entry_decode(lsn, p, len, &e)))
		return rc;
	w->ballot = e.ballot;
	w->found = 1;
	return 1;
}

/* Ballot of the entry at lsn in g's WAL: 0, -ENOENT (not held), or the
 * read's error. */
static int wal_ballot(struct group *g, qfs_lsn_t lsn, qfs_ballot_t *out)
{
	struct ballot_walk w = { .lsn = lsn };
	int rc = qfs_wal_read(g->wal, lsn, lsn, ballot_cb, &w);

	if (rc < 0)
		return rc;
	if (!w.found)
		return -ENOENT;
	*out = w.ballot;
	return 0;
}

/* Finish a snapshot install that a crash cut between the store and the WAL
 * (doc/rnode.md section 6).  If the store's last snapshot point is its
 * applied LSN, the WAL must continue it: be empty, start right after it, or
 * hold its entry with its ballot.  A WAL that ends before it or holds
 * another entry there is the old log: reset it (the step the install did
 * after the store's flush).  *slsn, *sballot: the snapshot point if it is
 * the applied LSN, else 0.  0 or -errno / QFS_ECORRUPT. */
static int snap_recover(struct qfs_rnode *rn, struct group *g, qfs_lsn_t applied,
			qfs_lsn_t *slsn, qfs_ballot_t *sballot)
{
	qfs_lsn_t sl, first, last;
	qfs_ballot_t b = 0;
	uint64_t sb;
	int rc, reset;

	if ((rc = qfs_store_snap_point(rn->store, g->id, &sl, &sb)))
		return rc;
	if (!sl || sl != applied) {
		*slsn = 0;
		*sballot = 0;
		return 0;
	}
	first = qfs_wal_first(g->wal);
	last = qfs_wal_last(g->wal);
	if (last >= applied && first <= applied) {
		rc = wal_ballot(g, applied, &b);
		if (rc < 0 && rc != -ENOENT)
			return rc;
		reset = rc == -ENOENT || b != sb;
	} else {
		reset = last && last < applied;
	}
	if (reset) {
		QFS_LOG(QFS_LOG_WARN, "rnode snapshot install finished at open group=%016" PRIx64
			" node=%u lsn=%" PRIu64 " wal_first=%" PRIu64 " wal_last=%" PRIu64, g->id, rn->id,
			applied, first, last);
		if ((rc = qfs_wal_truncate_after(g->wal, 0)))
			return rc;
	}
	*slsn = sl;
	*sballot = sb;
	return 0;
}

static const struct qfs_drive_ops drive_ops;

/* Set up g's driver (drive.h) over this node; g->id is set. */
static void group_drive_init(struct qfs_rnode *rn, struct group *g)
{
	g->rn = rn;
	qfs_drive_init(&g->drv, &drive_ops, g, &rn->frame, g->id, rn->id);
	/* a follower syncs (and answers) an ACCEPT before it applies the
	 * commit the ACCEPT carried: doc/rnode.md section 2 */
	g->drv.apply_after_sync = 1;
}

/* The paxos core's decisions: leadership changes (campaign, leader, step
 * down, handoff, leave, config) at info, everything else at debug. */
static void paxos_trace(void *arg, uint32_t self, const char *line)
{
	const struct group *g = arg;
	int info = !strncmp(line, "event=campaign", 14) || !strncmp(line, "event=leader ", 13) ||
		   !strncmp(line, "event=step_down", 15) || !strncmp(line, "event=handoff", 13) ||
		   !strncmp(line, "event=leave", 11) || !strncmp(line, "event=config", 12);

	if ((info ? QFS_LOG_INFO : QFS_LOG_DEBUG) <= qfs_log_level)
		QFS_LOG(info ? QFS_LOG_INFO : QFS_LOG_DEBUG, "paxos group=%016" PRIx64 " node=%u %s",
			g->id, self, line);
}

/* The vote floor of an added replica (doc/paxos.md section 7), the file
 * groups/<group>.floor, "floor <lsn> <ballot>\n", into hs; none: 0.
 * 0, QFS_ECORRUPT, -errno. */
static int floor_load(struct group *g, struct qfs_paxos_hard *hs)
{
	char path[PATH_MAX], text[128], *end;
	unsigned long long lsn, ballot;
	int rc;

	if ((rc = qfs_node_path_fmt(path, sizeof(path), "%s/%016" PRIx64 ".floor", g->gdir, g->id)))
		return rc;
	rc = qfs_node_file_get(path, text, sizeof(text));
	if (rc == -ENOENT)
		return 0;
	if (rc)
		return rc;
	if (strncmp(text, "floor ", 6) != 0 || (lsn = strtoull(text + 6, &end, 10), *end != ' ') ||
	    (ballot = strtoull(end + 1, &end, 10), strcmp(end, "\n") != 0)) {
		QFS_LOG(QFS_LOG_ERR, "rnode floor file corrupt path=%s", path);
		return QFS_ECORRUPT;
	}
	hs->floor_lsn = lsn;
	hs->floor_ballot = ballot;
	return 0;
}

/* Open (create when cfg != NULL) the group's WAL and restore its paxos
 * machine from disk: promised from the promise file, last/last_ballot and
 * the runs from the WAL, applied from the store.  Nothing is applied. */
static int group_load(struct qfs_rnode *rn, qfs_group_t id, const struct qfs_paxos_config *cfg,
		      struct group **out)
{
	char path[PATH_MAX], text[256];
	struct qfs_paxos_hard hs;
	struct qfs_paxos_params prm;
	struct runs_walk *w = NULL;
	struct group *g;
	qfs_lsn_t first, slsn;
	qfs_ballot_t sballot;
	int rc;

	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->id = id;
	g->refs = 1;
	group_drive_init(rn, g);
	pthread_mutex_init(&g->mu, NULL);
	group_cv_init(&g->applied_cv);
	{
		pthread_rwlockattr_t ra;

		/* Writer first: a stream of readers must not starve a drop. */
		pthread_rwlockattr_init(&ra);
		pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
		pthread_rwlock_init(&g->rw, &ra);
		pthread_rwlockattr_destroy(&ra);
	}
	if ((rc = group_paths(rn, g)))
		goto err_free;
	if (cfg) {
		g->cfg = *cfg;
	} else {
		if ((rc = qfs_node_path_fmt(path, sizeof(path), "%s/%016" PRIx64, g->gdir, id)) ||
		    (rc = qfs_node_file_get(path, text, sizeof(text))))
			goto err_free;
		if ((rc = cfg_parse_kind(text, &g->cfg, &g->logrep)) || !cfg_valid(&g->cfg, 0)) {
			rc = QFS_ECORRUPT;
			QFS_LOG(QFS_LOG_ERR, "rnode members file corrupt path=%s", path);
			goto err_free;
		}
	}
	memset(&hs, 0, sizeof(hs));
	rc = qfs_node_file_get(g->promise_path, text, sizeof(text));
	if (rc == 0) {
		char *end;

		if (strncmp(text, "promised ", 9) != 0 ||
		    (hs.promised = strtoull(text + 9, &end, 10), strcmp(end, "\n") != 0)) {
			QFS_LOG(QFS_LOG_ERR, "rnode promise file corrupt path=%s", g->promise_path);
			rc = QFS_ECORRUPT;
			goto err_free;
		}
	} else if (rc != -ENOENT) {
		goto err_free;
	}
	if ((rc = floor_load(g, &hs)))
		goto err_free;
	if ((rc = qfs_wal_open(g->waldir, &rn->wopts, &g->wal)))
		goto err_free;
	/* The tail may be a segment sealed (and archived) before a crash that
	 * came between a truncation and the seal that follows it (see
	 * "Sealing by age"): never append to it again. */
	if (!cfg && (rc = qfs_wal_seal(g->wal))) {
		QFS_LOG(QFS_LOG_ERR, "rnode wal seal failed group=%016" PRIx64 " err=\"%s\"", id,
			qfs_strerror(rc));
		goto err_free;
	}
	if ((rc = qfs_store_applied(rn->store, id, &hs.applied)) ||
	    (rc = snap_recover(rn, g, hs.applied, &slsn, &sballot)))
		goto err_free;
	hs.last = qfs_wal_last(g->wal);
	first = qfs_wal_first(g->wal);
	hs.first_retained = first ? first : hs.applied + 1;
	if (!hs.last && slsn) {
		/* Reset by a snapshot install: the log starts after it. */
		hs.last = slsn;
		hs.last_ballot = sballot;
	}
	if (hs.applied > hs.last || (hs.last && first > hs.applied + 1 && first > 1)) {
		QFS_LOG(QFS_LOG_ERR, "rnode lost log group=%016" PRIx64 " applied=%" PRIu64
			" wal_first=%" PRIu64 " wal_last=%" PRIu64, id, hs.applied, first, hs.last);
		rc = QFS_ECORRUPT;
		goto err_free;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		rc = -ENOMEM;
		goto err_free;
	}
	if (qfs_wal_last(g->wal)) {
		qfs_lsn_t from = hs.applied > first ? hs.applied : first;

		rc = qfs_wal_read(g->wal, from, hs.last, runs_cb, w);
		if (rc) {
			QFS_LOG(QFS_LOG_ERR, "rnode wal read failed group=%016" PRIx64 " err=\"%s\"%s", id,
				qfs_strerror(rc), w->overflow ? " (too many ballot runs)" : "");
			goto err_free;
		}
		hs.last_ballot = w->last_ballot;
		if (slsn && w->n && w->runs[0].first > slsn) {
			/* The log starts right after the snapshot: its point
			 * opens the runs (paxos_init wants one at applied). */
			if (w->runs[0].ballot == sballot) {
				w->runs[0].first = slsn;
			} else if (w->n < QFS_PAXOS_MAX_RUNS && w->runs[0].ballot > sballot) {
				memmove(w->runs + 1, w->runs, w->n * sizeof(w->runs[0]));
				w->runs[0].first = slsn;
				w->runs[0].ballot = sballot;
				w->n++;
			}
		}
	}
	g->applied = hs.applied;
	/* Leadership balance: every replica derives the same preferred member
	 * from the group id and the members (doc/paxos.md section 6). */
	prm = rn->prm;
	prm.preferred = QFS_PAXOS_PREFERRED_AUTO;
	prm.tracer = paxos_trace;
	prm.tracer_arg = g;
	rc = qfs_paxos_init(&g->px, id, &g->cfg, rn->id, &prm, &hs, w->runs, w->n, now_ms());
	for (uint32_t i = 0; rc == 0 && i < w->ncfgs; i++)
		if (w->cfgs[i].lsn > hs.applied)
			rc = qfs_paxos_restore_config(&g->px, w->cfgs[i].lsn, &w->cfgs[i].cfg);
	if (rc) {
		QFS_LOG(QFS_LOG_ERR, "rnode paxos init failed group=%016" PRIx64 " err=\"%s\"", id,
			qfs_strerror(rc));
		goto err_free;
	}
	free(w);
	wal_snap(g);
	QFS_LOG(QFS_LOG_INFO, "rnode group loaded group=%016" PRIx64 " node=%u promised=%" PRIu64
		" last=%" PRIu64 " applied=%" PRIu64, id, rn->id, hs.promised, hs.last, hs.applied);
	*out = g;
	return 0;

err_free:
	free(w);
	group_free(g);
	return rc;
}

/* The on-disk part of a drop after the members file is gone (doc/rnode.md
 * section 1): the store's items and applied LSN (durable on return), the
 * promise file, and last the WAL directory, which marks an unfinished drop
 * until then.  Caller: the I/O thread (the group is marked dropped), or
 * open/create for a group that is not in the table. */
static int finish_drop(struct qfs_rnode *rn, qfs_group_t id)
{
	char path[PATH_MAX], sub[PATH_MAX];
	int rc;

	if ((rc = qfs_store_drop_group(rn->store, id))) {
		QFS_LOG(QFS_LOG_ERR, "rnode group drop failed group=%016" PRIx64 " node=%u step=store err=\"%s\"",
			id, rn->id, qfs_strerror(rc));
		return rc;
	}
	if ((rc = qfs_node_path_fmt(sub, sizeof(sub), "%s/groups", rn->dir)))
		return rc;
	for (int i = 0; i < 4; i++) {
		static const char *const suf[] = { ".promise", ".promise.tmp", ".floor", ".floor.tmp" };

		if ((rc = qfs_node_path_fmt(path, sizeof(path), "%s/%016" PRIx64 "%s", sub, id, suf[i])))
			return rc;
		if (qfs_sys_unlink(path) < 0 && errno != ENOENT) {
			rc = -errno;
			QFS_LOG(QFS_LOG_ERR, "rnode group drop failed group=%016" PRIx64
				" node=%u step=promise path=%s err=\"%s\"", id, rn->id, path, qfs_strerror(rc));
			return rc;
		}
	}
	if ((rc = qfs_node_fsync_dir(sub)))
		return rc;
	if ((rc = qfs_node_path_fmt(path, sizeof(path), "%s/wal/%016" PRIx64, rn->dir, id)) ||
	    (rc = qfs_node_path_fmt(sub, sizeof(sub), "%s/wal", rn->dir)))
		return rc;
	rc = qfs_wal_destroy(path);
	if (rc && rc != -ENOENT) {
		QFS_LOG(QFS_LOG_ERR, "rnode group drop failed group=%016" PRIx64 " node=%u step=wal dir=%s err=\"%s\"",
			id, rn->id, path, qfs_strerror(rc));
		return rc;
	}
	return qfs_node_fsync_dir(sub);
}

/* 1 if name is 16 lower-case hex digits (a group id), stored in *id. */
static int parse_gid(const char *name, qfs_group_t *id)
{
	qfs_group_t v = 0;
	int i;

	for (i = 0; i < 16; i++) {
		char c = name[i];

		if (c >= '0' && c <= '9')
			v = v << 4 | (qfs_group_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v << 4 | (qfs_group_t)(c - 'a' + 10);
		else
			return 0;
	}
	if (name[16] != '\0')
		return 0;
	*id = v;
	return 1;
}

/* Finish the drops (and clear the creates) a crash interrupted: a WAL
 * directory whose group has no members file.  At open, before the groups
 * are loaded. */
static int finish_leftovers(struct qfs_rnode *rn)
{
	char wdir[PATH_MAX], path[PATH_MAX];
	struct dirent *de;
	struct stat sb;
	DIR *d;
	int rc;

	if ((rc = qfs_node_path_fmt(wdir, sizeof(wdir), "%s/wal", rn->dir)))
		return rc;
	d = opendir(wdir);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		qfs_group_t id;

		if (!parse_gid(de->d_name, &id))
			continue;
		if ((rc = qfs_node_path_fmt(path, sizeof(path), "%s/groups/%016" PRIx64, rn->dir, id)))
			break;
		if (stat(path, &sb) == 0)
			continue;
		if (errno != ENOENT) {
			rc = -errno;
			break;
		}
		QFS_LOG(QFS_LOG_WARN, "rnode finishing interrupted drop group=%016" PRIx64 " node=%u", id,
			rn->id);
		if ((rc = finish_drop(rn, id)))
			break;
	}
	closedir(d);
	return rc;
}

/* A group whose replica cannot be loaded (err): a table entry that is
 * stopped from the start, with no WAL and an idle machine.  Every path
 * checks g->stopped before touching either; drop removes it as usual. */
static int group_stopped_stub(struct qfs_rnode *rn, qfs_group_t id, int err, struct group **out)
{
	char path[PATH_MAX], text[256];
	struct group *g = calloc(1, sizeof(*g));
	pthread_rwlockattr_t ra;
	int rc;

	if (!g)
		return -ENOMEM;
	g->id = id;
	g->refs = 1;
	group_drive_init(rn, g);
	pthread_mutex_init(&g->mu, NULL);
	group_cv_init(&g->applied_cv);
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&g->rw, &ra);
	pthread_rwlockattr_destroy(&ra);
	if ((rc = group_paths(rn, g))) {
		group_free(g);
		return rc;
	}
	if (qfs_node_path_fmt(path, sizeof(path), "%s/%016" PRIx64, g->gdir, id) == 0 &&
	    qfs_node_file_get(path, text, sizeof(text)) == 0 && cfg_parse(text, &g->cfg) == 0 &&
	    cfg_valid(&g->cfg, 0))
		;
	else
		memset(&g->cfg, 0, sizeof(g->cfg));
	g->stopped = 1;
	g->err = err;
	g->untrusted = 1;
	QFS_LOG(QFS_LOG_ERR, "rnode group stopped at open group=%016" PRIx64 " node=%u err=\"%s\" "
		"scope=replica see=\"the lines above\"", id, rn->id, qfs_strerror(err));
	*out = g;
	return 0;
}

static int load_groups(struct qfs_rnode *rn, const char *gdir)
{
	DIR *d = opendir(gdir);
	struct dirent *de;
	int rc = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		qfs_group_t id;
		struct group *g;

		if (!parse_gid(de->d_name, &id))
			continue; /* promise files, temp files */
		if (rn->ngroups == QFS_RNODE_MAX_GROUPS) {
			rc = -ENOSPC;
			break;
		}
		rc = group_load(rn, id, NULL, &g);
		if (rc == QFS_ECORRUPT || rc == -EIO) {
			/* Only this replica of this group is lost: keep it in
			 * the table, stopped (it never votes or acknowledges),
			 * so the node's other groups serve and the status says
			 * why; the group's other replicas carry on. */
			rc = group_stopped_stub(rn, id, rc, &g);
		}
		if (rc)
			break;
		rn->groups[rn->ngroups++] = g;
	}
	closedir(d);
	return rc;
}

/* ---------------------------------------------------------------- I/O thread */

/* Answer p (the round's thread): wakes its proposer only; a success counts
 * in rn->returning (gather).  Takes rn->mu.  A queued proposal's proposer
 * sleeps on p->done as a futex word, without rn->mu: it is woken after
 * rn->mu is released, so it neither wakes into a mutex still held here nor
 * needs a second wake-up at the unlock (before: a cond signal under rn->mu,
 * the proposer blocked again on rn->mu, woken again by the unlock).  From
 * the store of done on, p may be gone (its proposer's stack): the wake
 * uses the word's address only (a private futex wake reads no memory; a
 * spurious wake of whatever lives there later is harmless to every futex
 * waiter, which re-checks its condition). */
static void answer(struct qfs_rnode *rn, struct proposal *p, int rc, int result)
{
	uint64_t w = __atomic_load_n(&rn->sync_avg_ns, __ATOMIC_RELAXED);
	int *word = &p->done, queued;

	if (w < RNODE_GATHER_MIN_US * 1000ull)
		w = RNODE_GATHER_MIN_US * 1000ull;
	if (w > RNODE_GATHER_MAX_US * 1000ull)
		w = RNODE_GATHER_MAX_US * 1000ull;
	if (__atomic_load_n(&qfs_rnode_gather_test_us, __ATOMIC_RELAXED))
		w = __atomic_load_n(&qfs_rnode_gather_test_us, __ATOMIC_RELAXED) * 1000ull;
	pthread_mutex_lock(&rn->mu);
	if (rc == 0 && rn->gather_skip) {
		rn->gather_skip--;
	} else if (rc == 0) { /* its proposer may come back: gather */
		rn->returning++;
		rn->arrived = 0;
		rn->gather_ns = qfs_clock_mono_ns() + w;
	}
	p->rc = rc;
	p->result = result;
	queued = p->queued;
	if (queued) {
		__atomic_store_n(&p->done, 1, __ATOMIC_RELEASE);
	} else {
		p->done = 1;
		pthread_cond_signal(&p->cv);
	}
	pthread_mutex_unlock(&rn->mu);
	if (queued)
		(void)syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void pending_add(struct group *g, struct proposal *p)
{
	struct proposal **pp = &g->pending;

	while (*pp && (*pp)->lsn < p->lsn)
		pp = &(*pp)->next;
	p->next = *pp;
	*pp = p;
}

/* Answer the proposals of g whose entry was applied (apply_cb queued them
 * with their outcome): called once the machine's APPLIED step ran, so that
 * a proposer woken here finds the leader's applied point at its entry and a
 * strong read it makes next is served at once (qfs_paxos_can_read_local
 * wants applied >= commit; answered during the apply, it found the rest of
 * the batch unapplied and its read slept a poll step: doc/rnode.md section
 * 2).  Also when the group stops or fails its proposals: they were applied. */
static void answers_release(struct qfs_rnode *rn, struct group *g)
{
	while (g->applied_q) {
		struct proposal *p = g->applied_q;

		g->applied_q = p->next;
		answer(rn, p, p->rc, p->result);
	}
	g->applied_qt = NULL;
}

/* Fail every pending proposal matching pred (lsn > after, or all); the
 * applied ones waiting for their answer get it first. */
static void pending_fail_after(struct qfs_rnode *rn, struct group *g, qfs_lsn_t after, int rc)
{
	struct proposal **pp = &g->pending;

	answers_release(rn, g);
	while (*pp) {
		struct proposal *p = *pp;

		if (p->lsn > after) {
			*pp = p->next;
			answer(rn, p, rc, 0);
		} else {
			pp = &p->next;
		}
	}
}

static void group_stop(struct qfs_rnode *rn, struct group *g, int rc, const char *what)
{
	pthread_mutex_lock(&g->mu);
	if (!g->stopped) {
		g->stopped = 1;
		g->err = rc;
		g->untrusted = rc == QFS_ECORRUPT;
		QFS_LOG(QFS_LOG_ERR, "rnode group stopped group=%016" PRIx64 " node=%u what=%s err=\"%s\"",
			g->id, rn->id, what, qfs_strerror(rc));
	}
	if (g->apply_waiters)
		pthread_cond_broadcast(&g->applied_cv);
	pthread_mutex_unlock(&g->mu);
	pending_fail_after(rn, g, 0, rc);
}

static int step(struct group *g, const struct qfs_paxos_event *ev, struct qfs_paxos_update *up)
{
	int rc;

	pthread_mutex_lock(&g->mu);
	rc = qfs_paxos_step(&g->px, ev, up);
	g->leader = up->leader;
	pthread_mutex_unlock(&g->mu);
	g->next_tick_ms = up->next_tick_ms;
	if (up->next_tick_ms && up->next_tick_ms < g->rn->round_next)
		g->rn->round_next = up->next_tick_ms;
	return rc;
}

/* Group g has appends to sync: put it on the round's dirty list (with a
 * reference) so that flush_dirty syncs its WAL once for all of them. */
static void mark_dirty(struct qfs_rnode *rn, struct group *g)
{
	if (g->dirty)
		return;
	g->dirty = 1;
	pthread_mutex_lock(&rn->mu);
	g->refs++;
	pthread_mutex_unlock(&rn->mu);
	g->dirty_next = rn->dirty;
	rn->dirty = g;
}

/* A log read for a follower (drive_read): the entries' data, copied out of
 * the WAL's buffer, live in bufs[] until drive_read_done. */
struct read_walk {
	struct qfs_drive_log *out;
	uint8_t *bufs[QFS_PAXOS_MAX_BATCH]; /* from common/bigbuf.h: */
	size_t caps[QFS_PAXOS_MAX_BATCH];   /* their capacities */
	size_t bytes;            /* data bytes of out->ents (RNODE_READ_BYTES) */
	qfs_lsn_t prev;          /* from - 1 */
};

static int read_cb(qfs_lsn_t lsn, const void *p, size_t len, void *arg)
{
	struct read_walk *w = arg;
	struct qfs_drive_log *out = w->out;
	struct qfs_repl_entry e;
	int rc = qfs_repl_entry_decode(lsn, p, len, &e);

	if (rc)
		return rc;
	if (lsn == w->prev) {
		out->prev_ballot = e.ballot;
		return 0;
	}
	if (out->n == QFS_PAXOS_MAX_BATCH || (out->n && w->bytes + e.len > RNODE_READ_BYTES))
		return 1; /* (an ACCEPT of 64 big entries would not fit in a frame) */
	w->bytes += e.len;
	/* The WAL's buffer is only valid during the callback: copy, into a
	 * pooled buffer when large (an 8 MiB write-back's entry: a fresh
	 * mapping faulted in page by page otherwise, doc/perf.md AFTER 34). */
	w->bufs[out->n] = qfs_bigbuf_get(e.len ? e.len : 1, &w->caps[out->n]);
	if (!w->bufs[out->n])
		return -ENOMEM;
	memcpy(w->bufs[out->n], e.data, e.len);
	e.data = w->bufs[out->n];
	out->ents[out->n++] = e;
	return 0;
}

/* Scrub snapshots (qfs_rnode_snap_at; doc/scrub.md).  Complete the ioreq
 * r with rc (I/O thread). */
static void ioreq_done(struct qfs_rnode *rn, struct ioreq *r, int rc)
{
	pthread_mutex_lock(&rn->mu);
	r->rc = rc;
	r->done = 1;
	pthread_cond_broadcast(&rn->done_cv);
	pthread_mutex_unlock(&rn->mu);
}

/* End g's parked snapshot request: rc 0 takes the snapshot now (the store
 * holds exactly the entries up to g->applied), else fails it with rc. */
static void snap_wait_end(struct qfs_rnode *rn, struct group *g, int rc)
{
	struct ioreq *r = g->snap_wait;

	g->snap_wait = NULL;
	if (rc == 0)
		rc = qfs_store_snap_take(rn->store, &r->snap);
	ioreq_done(rn, r, rc);
}

/* End parked snapshot requests that apply_cb did not: take it when a
 * snapshot install brought applied exactly to the LSN; fail it when the
 * group stopped or was dropped, applied is past the LSN (an install jumped
 * over it), or the deadline passed.  I/O thread, every round. */
static void snap_wait_check(struct qfs_rnode *rn, struct group **gs, size_t ng, int closing)
{
	uint64_t now = qfs_clock_mono_ms();

	for (size_t i = 0; i < ng; i++) {
		struct group *g = gs[i];

		if (!g->snap_wait)
			continue;
		if (closing || g->stopped)
			snap_wait_end(rn, g, QFS_ESTOPPED);
		else if (g->dropped)
			snap_wait_end(rn, g, QFS_ENOGROUP);
		else if (g->applied == g->snap_wait->lsn)
			snap_wait_end(rn, g, 0); /* a snapshot install landed on it */
		else if (g->applied > g->snap_wait->lsn)
			snap_wait_end(rn, g, -ESTALE);
		else if (now >= g->snap_wait->deadline_ms)
			snap_wait_end(rn, g, -ETIMEDOUT);
	}
}

/* IOREQ_SNAP: take the snapshot now if applied == lsn, fail with -ESTALE
 * if past it, else park it on the group (one at a time: -EBUSY).  Returns
 * 1 if parked (answered later), else 0 with r answered. */
static int io_snap(struct qfs_rnode *rn, struct ioreq *r)
{
	struct group *g = group_get(rn, r->group);
	int rc = 0, parked = 0;

	if (!g) {
		ioreq_done(rn, r, QFS_ENOGROUP);
		return 0;
	}
	if (g->stopped)
		rc = QFS_ESTOPPED;
	else if (g->applied > r->lsn)
		rc = -ESTALE;
	else if (g->applied == r->lsn)
		rc = qfs_store_snap_take(rn->store, &r->snap);
	else if (g->snap_wait)
		rc = -EBUSY;
	else {
		g->snap_wait = r;
		parked = 1;
	}
	if (!parked)
		ioreq_done(rn, r, rc);
	group_put(rn, g);
	return parked;
}

static int verify_cb(qfs_lsn_t lsn, const void *p, size_t len, void *arg)
{
	struct qfs_repl_entry e;

	(void)arg;
	return qfs_repl_entry_decode(lsn, p, len, &e);
}

/* IOREQ_WAL_VERIFY: read back every record of g's WAL (CRC-32C each) and
 * decode its entry framing.  0, QFS_ENOGROUP, QFS_ESTOPPED, QFS_ECORRUPT,
 * -errno. */
static int io_wal_verify(struct qfs_rnode *rn, qfs_group_t id)
{
	struct group *g = group_get(rn, id);
	qfs_lsn_t first, last;
	int rc = 0;

	if (!g)
		return QFS_ENOGROUP;
	if (g->stopped || !g->wal) {
		rc = QFS_ESTOPPED;
	} else {
		first = qfs_wal_first(g->wal);
		last = qfs_wal_last(g->wal);
		if (last)
			rc = qfs_wal_read(g->wal, first, last, verify_cb, NULL);
		if (rc)
			QFS_LOG(QFS_LOG_ERR, "rnode wal verify failed group=%016" PRIx64 " node=%u first=%" PRIu64
				" last=%" PRIu64 " err=\"%s\"", id, rn->id, first, last, qfs_strerror(rc));
	}
	group_put(rn, g);
	return rc;
}

struct apply_walk {
	struct qfs_rnode *rn;
	struct group *g;
	int store_rc;
};

/* "members 1 2 3\n" of cfg into text[cap]. */
static void members_text(const struct qfs_paxos_config *cfg, char *text, size_t cap)
{
	size_t off = (size_t)snprintf(text, cap, "members");

	for (uint32_t i = 0; i < cfg->n && off < cap; i++)
		off += (size_t)snprintf(text + off, cap - off, " %u%s", cfg->ids[i],
					cfg->log >> i & 1 ? "L" : "");
	if (off < cap)
		snprintf(text + off, cap - off, "\n");
}

/* members_text, and " kind log" when this replica is a log replica. */
static void members_text_kind(const struct qfs_paxos_config *cfg, int logrep, char *text, size_t cap)
{
	size_t off;

	members_text(cfg, text, cap);
	off = strlen(text);
	if (logrep && off > 0 && off < cap)
		snprintf(text + off - 1, cap - off + 1, " kind log\n");
}

/* A CONFIG entry is applied (doc/paxos.md section 7): the members file
 * says the configuration at the applied LSN, durably before the store's
 * applied LSN passes the entry (a crash in between applies it again).
 * I/O thread.  0 or -errno (the group then stops, as for a store error). */
static int members_apply(struct qfs_rnode *rn, struct group *g, const struct qfs_repl_entry *e)
{
	struct qfs_paxos_config cfg;
	char path[PATH_MAX], tmp[PATH_MAX], text[128];
	int rc;

	if ((rc = qfs_paxos_config_decode(e->data, e->len, &cfg)))
		return rc;
	members_text_kind(&cfg, g->logrep || qfs_paxos_config_is_log(&cfg, rn->id), text, sizeof(text));
	if ((rc = qfs_node_path_fmt(path, sizeof(path), "%s/%016" PRIx64, g->gdir, g->id)) ||
	    (rc = qfs_node_path_fmt(tmp, sizeof(tmp), "%s/%016" PRIx64 ".tmp", g->gdir, g->id)) ||
	    (rc = qfs_node_file_put(g->gdir, tmp, path, text))) {
		QFS_LOG(QFS_LOG_ERR, "rnode members update failed group=%016" PRIx64 " node=%u lsn=%" PRIu64
			" err=\"%s\"", g->id, rn->id, e->lsn, qfs_strerror(rc));
		return rc;
	}
	pthread_mutex_lock(&g->mu);
	g->cfg = cfg;
	g->logrep |= qfs_paxos_config_is_log(&cfg, rn->id);
	pthread_mutex_unlock(&g->mu);
	QFS_LOG(QFS_LOG_INFO, "rnode members group=%016" PRIx64 " node=%u lsn=%" PRIu64 " %.*s member=%d",
		g->id, rn->id, e->lsn, (int)strlen(text) - 1, text, cfg_valid(&cfg, rn->id));
	return 0;
}

/* An entry of at least this many bytes leaves the page cache once applied
 * (qfs_wal_uncache): a file's bulk data, which the kernel caches already
 * as the FUSE file's pages, and which three replicas on one machine would
 * otherwise cache three times more (doc/rnode.md section 2, step 4). */
#define UNCACHE_MIN (1u << 20)

static int apply_cb(qfs_lsn_t lsn, const void *p, size_t len, const struct qfs_wal_loc *loc, void *arg)
{
	struct apply_walk *w = arg;
	struct group *g = w->g;
	struct qfs_repl_entry e;
	int rc, result = 0;

	if ((rc = qfs_repl_entry_decode(lsn, p, len, &e)))
		return rc;
	if (lsn != g->applied + 1)
		return QFS_ECORRUPT;
	if (e.type == QFS_REPL_ENTRY_CONFIG && (rc = members_apply(w->rn, g, &e))) {
		w->store_rc = rc;
		return rc;
	}
	if (e.type == QFS_REPL_ENTRY_NOOP || e.type == QFS_REPL_ENTRY_CONFIG || g->logrep)
		rc = qfs_store_apply_noop(w->rn->store, g->id, lsn); /* (a log replica: the LSN only) */
	else
		rc = qfs_store_apply_src(w->rn->store, g->id, lsn, e.data, e.len,
					 loc ? &(struct qfs_store_src){ .seg_dir = loc->dir,
									.seg_first = loc->seg_first,
									.off = loc->off, .base = p,
									.len = len }
					     : NULL,
					 &result); /* large chunks: pointers into the WAL */
	if (rc) {
		w->store_rc = rc;
		return rc;
	}
	if (loc && len >= UNCACHE_MIN)
		qfs_wal_uncache(g->wal, loc, len);
	g->applied = lsn;
	if (g->snap_wait && g->snap_wait->lsn == lsn)
		snap_wait_end(w->rn, g, 0);
	while (g->pending && g->pending->lsn <= lsn) {
		struct proposal *pr = g->pending;

		g->pending = pr->next;
		if (pr->lsn == lsn && pr->ballot == e.ballot) {
			pr->rc = 0;
			pr->result = result;
		} else {
			pr->rc = -EAGAIN; /* replaced by another leader's entry */
			pr->result = 0;
		}
		/* answered after the APPLIED step (answers_release) */
		pr->next = NULL;
		if (g->applied_qt)
			g->applied_qt->next = pr;
		else
			g->applied_q = pr;
		g->applied_qt = pr;
	}
	return 0;
}

static void snap_send(struct qfs_rnode *rn, struct group *g, uint32_t to, uint64_t gap_ms);
static int snap_to_log(struct group *g, uint32_t to);
static void snap_send_point(struct qfs_rnode *rn, struct group *g, uint32_t to);

/* The driver's callbacks (node/drive.h): the rules are the driver's, the
 * I/O here.  ctx is the group; I/O thread. */

static int drive_step(void *ctx, const struct qfs_paxos_event *ev, struct qfs_paxos_update *up)
{
	struct group *g = ctx;
	int rc = step(g, ev, up);

	if (ev->type == QFS_PAXOS_EV_APPLIED) {
		pthread_mutex_lock(&g->mu);
		if (g->apply_waiters)
			pthread_cond_broadcast(&g->applied_cv);
		pthread_mutex_unlock(&g->mu);
		answers_release(g->rn, g);
	}
	return rc;
}

static uint64_t drive_now(void *ctx)
{
	(void)ctx;
	return now_ms();
}

static int drive_stopped(void *ctx)
{
	struct group *g = ctx;

	return g->stopped || g->dropped || !g->wal;
}

static void drive_stop(void *ctx, int rc, const char *what)
{
	struct group *g = ctx;

	group_stop(g->rn, g, rc, what);
}

/* Truncate the log after lsn (durable on return); the pending proposals
 * above it fail with -EAGAIN (they were never committed). */
static int drive_truncate(void *ctx, qfs_lsn_t after)
{
	struct group *g = ctx;
	struct qfs_wal_stat s0, s1;
	int rc;

	qfs_wal_stat(g->wal, &s0);
	rc = qfs_wal_truncate_after(g->wal, after);
	if (rc)
		return rc;
	pending_fail_after(g->rn, g, after, -EAGAIN);
	qfs_wal_stat(g->wal, &s1);
	if (s1.segments < s0.segments && qfs_wal_last(g->wal)) {
		/* Whole segments went: the tail is a sealed one, maybe
		 * archived already.  Appends must not go into it. */
		rc = qfs_wal_seal(g->wal);
		if (rc) {
			group_stop(g->rn, g, rc, "wal reseal");
			return rc;
		}
		g->unsealed_ms = 0;
	}
	wal_snap(g);
	return 0;
}

static int drive_append(void *ctx, const struct qfs_repl_entry *e)
{
	struct group *g = ctx;
	uint8_t hdr[QFS_REPL_ENTRY_HDR];
	size_t hl = qfs_repl_entry_encode_hdr(hdr, e);

	return qfs_wal_append2(g->wal, e->lsn, hdr, hl, e->data, e->len);
}

/* The promise file: temp file, fsync, rename, fsync of the directory. */
static int drive_save_promise(void *ctx, qfs_ballot_t promised)
{
	struct group *g = ctx;
	char text[64];

	snprintf(text, sizeof(text), "promised %" PRIu64 "\n", promised);
	return qfs_node_file_put(g->gdir, g->promise_tmp, g->promise_path, text);
}

/* Buffered in the WAL: flush_dirty syncs it with everything else appended
 * this round. */
static void drive_want_sync(void *ctx)
{
	struct group *g = ctx;

	mark_dirty(g->rn, g);
}

/* One write and one fdatasync for every record appended since the last. */
static int drive_sync(void *ctx)
{
	struct group *g = ctx;
	struct qfs_rnode *rn = g->rn;
	int rc;

	if (qfs_wal_durable(g->wal) < qfs_wal_last(g->wal)) {
		uint64_t t0 = qfs_clock_mono_ns(), d, avg;

		if (rn->test_before_sync)
			rn->test_before_sync(g->id, qfs_wal_last(g->wal), rn->test_arg);
		rc = qfs_wal_sync(g->wal);
		/* the sync's time (the test seam's included), averaged: how
		 * long a batch gathers (gather) */
		d = qfs_clock_mono_ns() - t0;
		avg = __atomic_load_n(&rn->sync_avg_ns, __ATOMIC_RELAXED);
		__atomic_store_n(&rn->sync_avg_ns, avg ? (avg * 7 + d) / 8 : d, __ATOMIC_RELAXED);
		stat_add(&rn->st_fsyncs, 1);
		if (rc)
			return rc;
		if (!g->unsealed_ms) {
			g->unsealed_ms = now_ms();
			/* the I/O thread's timers seal it by age: a direct
			 * round tells it when (round_next) */
			if (rn->seal_age_ms != UINT64_MAX && g->unsealed_ms + rn->seal_age_ms < rn->round_next)
				rn->round_next = g->unsealed_ms + rn->seal_age_ms;
		}
	}
	wal_snap(g);
	return 0;
}

static qfs_lsn_t drive_last(void *ctx)
{
	struct group *g = ctx;

	return qfs_wal_last(g->wal);
}

static int drive_ballot_at(void *ctx, qfs_lsn_t lsn, qfs_ballot_t *out)
{
	return wal_ballot(ctx, lsn, out);
}

/* Read [from, to] from the WAL (buffered records included) for a follower. */
static int drive_read(void *ctx, qfs_lsn_t from, qfs_lsn_t to, struct qfs_drive_log *out)
{
	struct group *g = ctx;
	struct read_walk *w = calloc(1, sizeof(*w));
	int rc;

	if (!w)
		return -ENOMEM; /* the leader retries after retry_ms */
	w->out = out;
	w->prev = from - 1;
	out->priv = w;
	rc = qfs_wal_read(g->wal, w->prev ? w->prev : 1, to, read_cb, w);
	if (rc >= 0)
		return 0;
	if (rc != QFS_ECORRUPT)
		QFS_LOG(QFS_LOG_WARN, "rnode log read failed group=%016" PRIx64 " err=\"%s\"", g->id,
			qfs_strerror(rc));
	return rc;
}

static void drive_read_done(void *ctx, struct qfs_drive_log *out)
{
	struct read_walk *w = out->priv;

	(void)ctx;
	if (!w)
		return;
	for (uint32_t j = 0; j < out->n; j++)
		qfs_bigbuf_put(w->bufs[j], w->caps[j]);
	free(w);
}

/* An apply beside a sync copies at most this many bytes of records (a
 * write-back's large entry is applied after the sync, from the WAL's
 * buffer, as before). */
#define RNODE_BESIDE_BYTES (256u << 10)
_Static_assert(RNODE_BESIDE_BYTES < UNCACHE_MIN, "the applier never calls qfs_wal_uncache");
/* ... and only this many entries or more: one entry's apply (a serial
 * create's or unlink's, 40-70 us) costs less than the hand-over to the
 * applier and back on this machine (serial_ab.sh: 45-65 us more CPU per
 * operation, no faster). */
#define RNODE_BESIDE_MIN 2u

struct beside_copy {
	struct qfs_buf *b;
	qfs_lsn_t next;          /* the LSN expected next */
	const char *dir;         /* the log's directory (the WAL's, open while
				    the applier runs) */
};

/* One record in rn->ap_recs, its payload after it: its place in the log
 * too, for the store's value log (chunk values stay in the WAL's
 * segment: qfs_store_apply_src). */
struct beside_rec {
	qfs_lsn_t lsn;
	qfs_lsn_t seg_first;
	uint64_t off;
	uint64_t len;
};

/* qfs_wal_read_recent_at's callback: copy one record, or end the walk (1)
 * at one the applier must not apply (a membership change writes the
 * members file: the round's thread's), or past RNODE_BESIDE_BYTES. */
static int beside_copy_cb(qfs_lsn_t lsn, const void *p, size_t len, const struct qfs_wal_loc *loc, void *arg)
{
	struct beside_copy *c = arg;
	struct qfs_repl_entry e;
	struct beside_rec r;

	if (lsn != c->next || !loc || c->b->len + sizeof(r) + len > RNODE_BESIDE_BYTES ||
	    qfs_repl_entry_decode(lsn, p, len, &e) || e.type == QFS_REPL_ENTRY_CONFIG)
		return 1;
	if (!c->dir)
		c->dir = loc->dir;
	if (strcmp(c->dir, loc->dir))
		return 1;
	memset(&r, 0, sizeof(r));
	r.lsn = lsn;
	r.seg_first = loc->seg_first;
	r.off = loc->off;
	r.len = len;
	qfs_buf_put(c->b, &r, sizeof(r));
	qfs_buf_put(c->b, p, len);
	c->next = lsn + 1;
	return 0;
}

/* The driver's apply_begin (drive.h): copy the records of (applied,
 * commit], or of a prefix of it (up to RNODE_BESIDE_BYTES, a membership
 * change, a record not durable), and hand them to the applier, unless the
 * group has anything only the round's thread may touch in apply_cb
 * (proposals to answer, a parked snapshot request). */
static int drive_apply_begin(void *ctx, qfs_lsn_t commit)
{
	struct group *g = ctx;
	struct qfs_rnode *rn = g->rn;
	struct beside_copy c = { .b = &rn->ap_recs, .next = g->applied + 1 };
	int rc;

	if (!rn->ap_started || g->pending || g->snap_wait || g->applied_q ||
	    commit < g->applied + RNODE_BESIDE_MIN)
		return -EAGAIN;
	qfs_buf_reset(&rn->ap_recs);
	rc = qfs_wal_read_recent_at(g->wal, g->applied + 1, commit, beside_copy_cb, &c);
	/* A prefix will do (the rest is applied after the sync); an error is
	 * met again by the apply after the sync, which reports it. */
	if (rc < 0 || c.next < g->applied + 1 + RNODE_BESIDE_MIN || rn->ap_recs.err)
		return -EAGAIN;
	pthread_mutex_lock(&rn->ap_mu);
	rn->ap_dir = c.dir;
	rn->ap_g = g;
	rn->ap_rc = 0;
	pthread_mutex_unlock(&rn->ap_mu);
	pthread_cond_signal(&rn->ap_work_cv); /* after the unlock: see on_wake */
	return 0;
}

/* The driver's apply_end: wait for the applier. */
static int drive_apply_end(void *ctx)
{
	struct group *g = ctx;
	struct qfs_rnode *rn = g->rn;
	int rc;

	pthread_mutex_lock(&rn->ap_mu);
	while (rn->ap_g)
		pthread_cond_wait(&rn->ap_done_cv, &rn->ap_mu);
	rc = rn->ap_rc;
	pthread_mutex_unlock(&rn->ap_mu);
	stat_add(&rn->st_beside, 1);
	return rc;
}

/* The applier thread: apply_cb over each record handed over, in order,
 * the first error ending the work (g->applied tells how far it got).
 * While it runs, the round's thread is inside the same group's sync and
 * waits for it before it looks at g again. */
static void *applier_main(void *arg)
{
	struct qfs_rnode *rn = arg;

	pthread_mutex_lock(&rn->ap_mu);
	for (;;) {
		struct group *g;
		struct apply_walk aw;
		size_t off = 0;
		int rc = 0;

		while (!rn->ap_g && !rn->ap_closing)
			pthread_cond_wait(&rn->ap_work_cv, &rn->ap_mu);
		if (!rn->ap_g)
			break;
		g = rn->ap_g;
		pthread_mutex_unlock(&rn->ap_mu);
		memset(&aw, 0, sizeof(aw));
		aw.rn = rn;
		aw.g = g;
		while (off + sizeof(struct beside_rec) <= rn->ap_recs.len && rc == 0) {
			struct beside_rec r;
			struct qfs_wal_loc loc;

			memcpy(&r, rn->ap_recs.data + off, sizeof(r));
			off += sizeof(r);
			loc.dir = rn->ap_dir;
			loc.seg_first = r.seg_first;
			loc.off = r.off;
			rc = apply_cb(r.lsn, rn->ap_recs.data + off, (size_t)r.len, &loc, &aw);
			if (rc)
				rc = aw.store_rc ? aw.store_rc : rc;
			off += (size_t)r.len;
		}
		pthread_mutex_lock(&rn->ap_mu);
		rn->ap_rc = rc;
		rn->ap_g = NULL;
		pthread_cond_signal(&rn->ap_done_cv);
	}
	pthread_mutex_unlock(&rn->ap_mu);
	return NULL;
}

/* End the applier (idle: no round runs) and free what it used. */
static void applier_stop(struct qfs_rnode *rn)
{
	if (rn->ap_started) {
		pthread_mutex_lock(&rn->ap_mu);
		rn->ap_closing = 1;
		pthread_cond_signal(&rn->ap_work_cv);
		pthread_mutex_unlock(&rn->ap_mu);
		pthread_join(rn->ap, NULL);
		rn->ap_started = 0;
	}
	qfs_buf_close(&rn->ap_recs);
	pthread_cond_destroy(&rn->ap_done_cv);
	pthread_cond_destroy(&rn->ap_work_cv);
	pthread_mutex_destroy(&rn->ap_mu);
}

/* Apply [applied + 1, commit] from the WAL (apply_cb): the records of its
 * last large sync from the memory they were written from, the others read
 * back from the file (qfs_wal_read_recent). */
static int drive_apply(void *ctx, qfs_lsn_t commit)
{
	struct group *g = ctx;
	struct apply_walk aw = { .rn = g->rn, .g = g };
	int rc = qfs_wal_read_recent_at(g->wal, g->applied + 1, commit, apply_cb, &aw);

	if (rc)
		return aw.store_rc ? aw.store_rc : rc;
	return 0;
}

static qfs_lsn_t drive_applied(void *ctx)
{
	struct group *g = ctx;

	return g->applied;
}

/* A log replica gets the snapshot point alone (snap_send_point), any
 * other replica the items (snap_send). */
static void drive_snapshot_to(void *ctx, uint32_t to)
{
	struct group *g = ctx;

	if (snap_to_log(g, to))
		snap_send_point(g->rn, g, to);
	else
		snap_send(g->rn, g, to, g->rn->prm.retry_ms);
}

static void drive_send(void *ctx, uint32_t to, uint8_t type, const uint8_t *buf, size_t len)
{
	struct group *g = ctx;

	(void)type;
	(void)qfs_net_send(g->rn->ep, to, buf, len);
	stat_add(&g->rn->st_out, 1);
}

/* A frame of src/net for the driver to encode a message into (drive.h). */
static void *drive_frame_new(void *ctx, size_t len, uint8_t **data)
{
	struct qfs_net_frame *f = qfs_net_frame_new(len);

	(void)ctx;
	if (f)
		*data = f->data;
	return f;
}

/* Hand the encoded frame over to node to without a copy (to 0: free it). */
static void drive_frame_send(void *ctx, uint32_t to, uint8_t type, void *frame)
{
	struct group *g = ctx;

	(void)type;
	if (!to) {
		qfs_net_frame_free(frame);
		return;
	}
	(void)qfs_net_send_frame(g->rn->ep, to, frame);
	stat_add(&g->rn->st_out, 1);
}

static const struct qfs_drive_ops drive_ops = {
	.step = drive_step,
	.now_ms = drive_now,
	.stopped = drive_stopped,
	.stop = drive_stop,
	.truncate = drive_truncate,
	.append = drive_append,
	.save_promise = drive_save_promise,
	.want_sync = drive_want_sync,
	.sync = drive_sync,
	.last = drive_last,
	.ballot_at = drive_ballot_at,
	.read = drive_read,
	.read_done = drive_read_done,
	.apply = drive_apply,
	.applied = drive_applied,
	.apply_begin = drive_apply_begin,
	.apply_end = drive_apply_end,
	.snapshot_to = drive_snapshot_to,
	.send = drive_send,
	.frame_new = drive_frame_new,
	.frame_send = drive_frame_send,
};

/* Step ev and handle its update: the driver's rules (drive.h), its local
 * steps (reads, snapshot, apply) queued and run in order, not nested.
 * depth is unused (kept for the call sites). */
static void step_handle(struct qfs_rnode *rn, struct group *g, const struct qfs_paxos_event *ev,
			int depth)
{
	(void)rn;
	(void)depth;
	(void)qfs_drive_step(&g->drv, ev);
}

/* Sync g's WAL (group commit: one fdatasync for every append of the
 * round), then send the messages that waited for it, in order, and step
 * PERSISTED with the last entry (qfs_drive_sync).  A failed sync stops the
 * group and drops them: a replica that cannot persist must not vote.
 * Called by flush_dirty. */
static void group_sync(struct qfs_rnode *rn, struct group *g)
{
	(void)rn;
	g->dirty = 0;
	qfs_drive_sync(&g->drv);
}

/* Sync every group appended to since the last flush (see group_sync), each
 * once; lowers *next to the ticks they ask for.  I/O thread. */
static void flush_dirty(struct qfs_rnode *rn, uint64_t *next)
{
	while (rn->dirty) {
		struct group *g = rn->dirty;

		rn->dirty = g->dirty_next;
		g->dirty_next = NULL;
		group_sync(rn, g);
		if (next && g->next_tick_ms && g->next_tick_ms < *next)
			*next = g->next_tick_ms;
		group_put(rn, g);
	}
}

/* ------------------------------------------------------------ snapshots */

#define RNODE_SNAP_CHUNK (256u << 10) /* items per chunk frame: about this many bytes */
#define RNODE_SNAP_WINDOW 2u /* chunks of a transfer sent and not yet acknowledged */
#define RNODE_SNAP_STALL_MS 5000u /* a transfer with no ack for this long is abandoned */
#define RNODE_SNAP_IDLE_MS (2u * RNODE_SNAP_STALL_MS) /* a follower frees a partial
				    snapshot that got no chunk for this long */
#define RNODE_SNAP_BACKOFF_MIN_MS 2000u  /* second snapshot to a follower without progress */
#define RNODE_SNAP_BACKOFF_MAX_MS 60000u /* longest wait between two of them */

/* A snapshot being sent (leader, I/O thread): one RocksDB snapshot of the
 * store, read chunk by chunk from a resume key as the follower's ACKs
 * open the window. */
struct snap_xfer {
	struct qfs_store_snap *sn; /* the state being sent; released at the end */
	uint64_t xfer;           /* transfer id */
	uint32_t to;             /* follower */
	uint32_t seq;            /* chunks sent (the next one's seq) */
	uint32_t acked;          /* chunks the follower acknowledged (<= seq) */
	uint64_t total;          /* items sent */
	qfs_lsn_t applied;       /* the snapshot's applied LSN */
	qfs_ballot_t ballot;     /* ballot of its entry */
	qfs_ballot_t lead;       /* this node's ballot as the leader that started
				    it: a transfer ends when it changes */
	int done;                /* the last chunk went out */
	int burst;               /* no window: a follower that never acknowledges
				    (an older version) gets every chunk at once */
	int heard;               /* an ACCEPTED of the group from the follower
				    came since the start (snap_progress): it is
				    up and serving the group */
	uint64_t last_ms;        /* mono ms of the start or the last ack */
	int logonly;             /* to a log replica: the snapshot point alone,
				    no item (doc/paxos.md section 7a) */
	size_t next_len;         /* resume at the first item key >= next (0: start) */
	uint8_t next[QFS_KEY_MAX];
};

/* Scan state of one chunk being built in rn->snap. */
struct snap_out {
	struct qfs_rnode *rn;
	struct snap_xfer *x;
	struct qfs_snap_chunk c; /* the chunk being built */
	int full;                /* stopped at x->next: the chunk is full */
	int err;                 /* encode error */
};

/* 1 if node id sent this node a snapshot ACK frame since open (I/O thread). */
static int snap_acker(const struct qfs_rnode *rn, uint32_t id)
{
	return id <= 0xffff && (rn->snap_ackers[id >> 3] >> (id & 7) & 1);
}

static void snap_xfer_free(struct group *g, uint32_t i)
{
	struct snap_xfer *x = g->sx[i];

	if (x) {
		qfs_store_snap_release(x->sn);
		free(x);
		g->sx[i] = NULL;
	}
}

static int snap_item_cb(const uint8_t *key, size_t key_len, const uint8_t *val, size_t val_len,
			void *arg)
{
	struct snap_out *so = arg;
	struct qfs_buf *b = &so->rn->snap;

	if (so->c.n && b->len + 8 + key_len + val_len > RNODE_SNAP_CHUNK) {
		if (key_len > sizeof(so->x->next)) {
			so->err = -EINVAL;
			return 1;
		}
		memcpy(so->x->next, key, key_len); /* the next chunk starts here */
		so->x->next_len = key_len;
		so->full = 1;
		return 1;
	}
	qfs_snap_add(b, key, key_len, val, val_len);
	if (b->err) {
		so->err = b->err;
		return 1;
	}
	so->c.n++;
	return 0;
}

static void snap_warn(struct qfs_rnode *rn, struct group *g, uint32_t to, qfs_lsn_t applied,
		      uint32_t chunks, int rc)
{
	if (now_ms() - g->snap_warned_ms >= 60000) {
		g->snap_warned_ms = now_ms();
		QFS_LOG(QFS_LOG_WARN, "rnode snapshot not sent group=%016" PRIx64 " node=%u to=%u"
			" applied=%" PRIu64 " chunks=%u err=\"%s\"", g->id, rn->id, to, applied, chunks,
			qfs_strerror(rc));
	}
}

/* 1 if transfer x was started by this node as the leader it still is
 * (I/O thread, which alone steps the machine: px needs no lock here).  A
 * deposed leader's transfer is abandoned: the follower, which follows
 * another leader now, refuses its chunks (snap_recv), and two transfers'
 * windows would overrun the follower's inbox. */
static int snap_still_leader(const struct group *g, const struct snap_xfer *x)
{
	return g->px.role == QFS_PAXOS_LEADER && g->px.ballot == x->lead;
}

static void snap_deposed(struct qfs_rnode *rn, struct group *g, uint32_t i)
{
	struct snap_xfer *x = g->sx[i];

	QFS_LOG(QFS_LOG_INFO, "rnode snapshot abandoned group=%016" PRIx64 " node=%u to=%u lsn=%"
		PRIu64 " chunks=%u acked=%u err=\"no longer the leader\"", g->id, rn->id, x->to,
		x->applied, x->seq, x->acked);
	snap_xfer_free(g, i);
}

/* Send the chunks of transfer i that its window allows (I/O thread): each
 * one read from the snapshot at the resume key, up to RNODE_SNAP_CHUNK
 * bytes; the one that reaches the end of the group carries the snapshot
 * point.  A read, encode or send error abandons the transfer (logged; the
 * machine asks again after retry_ms); so does a leader change. */
static void snap_pump(struct qfs_rnode *rn, struct group *g, uint32_t i)
{
	struct snap_xfer *x = g->sx[i];
	struct snap_out so;
	int rc = 0;

	if (x && !snap_still_leader(g, x)) {
		snap_deposed(rn, g, i);
		return;
	}
	while (x && !x->done && (x->burst || x->seq - x->acked < RNODE_SNAP_WINDOW)) {
		uint8_t lo[QFS_KEY_MAX];
		size_t lo_len = x->next_len;

		memset(&so, 0, sizeof(so));
		so.rn = rn;
		so.x = x;
		so.c.from = rn->id;
		so.c.to = x->to;
		so.c.group = g->id;
		so.c.xfer = x->xfer;
		so.c.seq = x->seq;
		memcpy(lo, x->next, lo_len);
		qfs_snap_start(&rn->snap);
		rc = x->logonly ? 0 : qfs_store_snap_scan(x->sn, g->id, lo_len ? lo : NULL, lo_len,
							  NULL, 0, snap_item_cb, &so);
		if (rc == 1)
			rc = so.err;
		if (rc)
			break;
		x->total += so.c.n;
		if (!so.full) {
			so.c.last = 1;
			so.c.lsn = x->applied;
			so.c.ballot = x->ballot;
			so.c.total = x->total;
		}
		rc = qfs_snap_finish(&rn->snap, &so.c);
		if (!rc)
			rc = qfs_net_send(rn->ep, x->to, rn->snap.data, rn->snap.len);
		if (rc)
			break;
		stat_add(&rn->st_out, 1);
		x->seq++;
		x->done = so.c.last;
	}
	if (rc) {
		snap_warn(rn, g, x->to, x->applied, x->seq, rc);
		snap_xfer_free(g, i);
		return;
	}
	if (x && x->done && x->burst) {
		/* nothing acknowledges it: done once sent */
		QFS_LOG(QFS_LOG_INFO, "rnode snapshot sent group=%016" PRIx64 " node=%u to=%u lsn=%"
			PRIu64 " items=%" PRIu64 " chunks=%u window=none", g->id, rn->id, x->to,
			x->applied, x->total, x->seq);
		snap_xfer_free(g, i);
	}
}

/* Ship the store's state of g at its applied LSN to peer `to` (I/O thread,
 * the machine's snapshot_to): take a RocksDB snapshot and stream it in
 * chunks, at most RNODE_SNAP_WINDOW unacknowledged (snap_pump, snap_ack),
 * so the follower's inbox never has to hold more than that, whatever the
 * size of the group; the last chunk carries the applied LSN and the ballot
 * of its entry (from the WAL, or from the store's snapshot point when the
 * log was reset at it).  Nothing is sent to a peer the transport reports
 * down, nor twice to one peer within gap_ms, nor while a transfer to it
 * is still acknowledged within RNODE_SNAP_STALL_MS.  Errors are logged (at
 * most once a minute per group) and the transfer is dropped: the machine
 * asks again once retry_ms passed without progress. */
static void snap_send(struct qfs_rnode *rn, struct group *g, uint32_t to, uint64_t gap_ms)
{
	struct qfs_net_stats ns;
	struct snap_xfer *x;
	int pi = -1;
	qfs_lsn_t sl;
	uint64_t sb;
	int rc;

	if (qfs_net_stats(rn->ep, to, &ns) == 0 && !ns.up)
		return;
	for (uint32_t i = 0; i < g->cfg.n; i++)
		if (g->cfg.ids[i] == to)
			pi = (int)i;
	if (pi < 0)
		return;
	if (g->sx[pi]) {
		if (now_ms() - g->sx[pi]->last_ms < RNODE_SNAP_STALL_MS)
			return; /* in progress */
		snap_xfer_free(g, (uint32_t)pi);
	}
	{
		uint64_t gap = gap_ms > g->snap_gap_ms[pi] ? gap_ms : g->snap_gap_ms[pi];

		if (g->snap_sent_ms[pi] && now_ms() - g->snap_sent_ms[pi] < gap)
			return;
		g->snap_sent_ms[pi] = now_ms();
	}
	x = calloc(1, sizeof(*x));
	if (!x) {
		snap_warn(rn, g, to, 0, 0, -ENOMEM);
		return;
	}
	x->to = to;
	x->lead = g->px.ballot;
	x->logonly = qfs_paxos_config_is_log(&g->cfg, to);
	x->xfer = ++rn->snap_xfer;
	x->burst = g->snap_burst[pi] && !snap_acker(rn, to);
	x->last_ms = now_ms();
	rc = qfs_store_snap_take(rn->store, &x->sn);
	if (!rc)
		rc = qfs_store_snap_applied(x->sn, g->id, &x->applied);
	if (!rc && !x->applied)
		rc = -ENOENT;
	if (!rc) {
		rc = wal_ballot(g, x->applied, &x->ballot);
		if (rc == -ENOENT && !(rc = qfs_store_snap_point(rn->store, g->id, &sl, &sb)))
			rc = sl == x->applied ? (x->ballot = sb, 0) : -ENOENT;
	}
	if (rc) {
		snap_warn(rn, g, to, x->applied, 0, rc);
		qfs_store_snap_release(x->sn);
		free(x);
		return;
	}
	/* Until the follower acknowledges it (snap_progress), the next one
	 * waits twice as long: a follower that cannot install (a stopped
	 * replica) is not flooded. */
	{
		uint64_t next = g->snap_gap_ms[pi] ? 2 * g->snap_gap_ms[pi] : RNODE_SNAP_BACKOFF_MIN_MS;

		g->snap_gap_ms[pi] = next < RNODE_SNAP_BACKOFF_MAX_MS ? next : RNODE_SNAP_BACKOFF_MAX_MS;
		g->snap_lsn[pi] = x->applied;
		g->snap_tries[pi]++;
	}
	QFS_LOG(QFS_LOG_INFO, "rnode snapshot start group=%016" PRIx64 " node=%u to=%u lsn=%" PRIu64
		" xfer=%" PRIu64 " attempt=%u next_after_ms=%" PRIu64 "%s", g->id, rn->id, to,
		x->applied, x->xfer, g->snap_tries[pi], g->snap_gap_ms[pi],
		x->burst ? " window=none" : "");
	g->sx[pi] = x;
	snap_pump(rn, g, (uint32_t)pi);
}

/* 1 if `to` is a log replica in the configuration in force (I/O thread;
 * the machine is stepped on this thread only, so px reads need no lock). */
static int snap_to_log(struct group *g, uint32_t to)
{
	return qfs_paxos_config_is_log(&g->px.cfg, to);
}

/* Start log replica `to` (doc/paxos.md section 7a; leader, I/O thread):
 * one last chunk without items that carries the applied LSN and the
 * ballot of its entry, which the follower installs like any snapshot (an
 * empty state: a log replica holds no store) and then takes the log from
 * there.  Unlike snap_send it needs no window, no RocksDB snapshot and no
 * applied configuration naming `to`: the CONFIG entry that adds it
 * commits only with its acknowledgement when a member is down.  At most
 * one per retry_ms per group (the machine asks again). */
static void snap_send_point(struct qfs_rnode *rn, struct group *g, uint32_t to)
{
	struct qfs_snap_chunk c;
	qfs_ballot_t b = 0;
	qfs_lsn_t sl;
	uint64_t sb;
	int rc;

	if (!g->applied || (g->point_sent_ms && now_ms() - g->point_sent_ms < rn->prm.retry_ms))
		return;
	g->point_sent_ms = now_ms();
	rc = wal_ballot(g, g->applied, &b);
	if (rc == -ENOENT && !(rc = qfs_store_snap_point(rn->store, g->id, &sl, &sb)))
		rc = sl == g->applied ? (b = sb, 0) : -ENOENT;
	memset(&c, 0, sizeof(c));
	c.from = rn->id;
	c.to = to;
	c.group = g->id;
	c.xfer = ++rn->snap_xfer;
	c.last = 1;
	c.lsn = g->applied;
	c.ballot = b;
	if (!rc) {
		qfs_snap_start(&rn->snap);
		rc = qfs_snap_finish(&rn->snap, &c);
	}
	if (!rc)
		rc = qfs_net_send(rn->ep, to, rn->snap.data, rn->snap.len);
	QFS_LOG(rc ? QFS_LOG_WARN : QFS_LOG_INFO, "rnode log replica start group=%016" PRIx64
		" node=%u to=%u lsn=%" PRIu64 " err=\"%s\"", g->id, rn->id, to, g->applied,
		rc ? qfs_strerror(rc) : "none");
	if (!rc)
		stat_add(&rn->st_out, 1);
}

/* A follower's ACK of chunks 0..c->seq of a transfer (leader, I/O thread):
 * open the window, or end the transfer once the last chunk is
 * acknowledged. */
static void snap_ack(struct qfs_rnode *rn, const struct qfs_snap_chunk *c)
{
	struct group *g = group_get(rn, c->group);
	struct snap_xfer *x;

	if (c->from <= 0xffff)
		rn->snap_ackers[c->from >> 3] |= (uint8_t)(1u << (c->from & 7)); /* it speaks ACK */
	if (!g)
		return;
	for (uint32_t i = 0; i < g->cfg.n; i++) {
		if (g->cfg.ids[i] != c->from)
			continue;
		g->snap_burst[i] = 0;
		x = g->sx[i];
		if (!x || x->xfer != c->xfer || c->seq >= x->seq || c->seq < x->acked)
			break;
		x->acked = c->seq + 1;
		x->last_ms = now_ms();
		if (x->done && x->acked == x->seq) {
			QFS_LOG(QFS_LOG_INFO, "rnode snapshot sent group=%016" PRIx64 " node=%u to=%u lsn=%"
				PRIu64 " items=%" PRIu64 " chunks=%u", g->id, rn->id, x->to, x->applied,
				x->total, x->seq);
			snap_xfer_free(g, i);
		} else {
			snap_pump(rn, g, i);
		}
		break;
	}
	group_put(rn, g);
}

/* Transfers of g whose follower stopped acknowledging (leader, I/O
 * thread, from the timers): abandoned, so their RocksDB snapshot does not
 * pin old data.  One that never got a single ACK, from a follower that
 * answered the group's Paxos meanwhile (x->heard: up, group running) yet
 * never sent this node any ACK frame (for any group, since open), marks it
 * as an older version that does not send them, and the next transfer goes
 * without a window.  Any other follower keeps the window whatever stalled
 * it (its group stopped, it was down, a slow I/O thread): a burst of a
 * big group could overrun its inbox.  The machine asks again after retry_ms. */
static void snap_stalls(struct qfs_rnode *rn, struct group *g)
{
	for (uint32_t i = 0; i < QFS_PAXOS_MAX_NODES; i++) {
		struct snap_xfer *x = g->sx[i];

		if (x && !snap_still_leader(g, x)) {
			snap_deposed(rn, g, i);
			continue;
		}
		if (!x || now_ms() - x->last_ms < RNODE_SNAP_STALL_MS)
			continue;
		if (x->acked == 0 && x->heard && !snap_acker(rn, x->to))
			g->snap_burst[i] = 1;
		QFS_LOG(QFS_LOG_WARN, "rnode snapshot abandoned group=%016" PRIx64 " node=%u to=%u lsn=%"
			PRIu64 " chunks=%u acked=%u err=\"no ack for %u ms\"", g->id, rn->id, x->to,
			x->applied, x->seq, x->acked, RNODE_SNAP_STALL_MS);
		snap_xfer_free(g, i);
	}
}

/* A follower's ACCEPTED (leader, I/O thread): it is alive and serving the
 * group (a transfer to it that stalls is then not for lack of a replica);
 * once it acknowledges the snapshot last sent to it (match at or above its
 * LSN), the backoff of snap_send starts over. */
static void snap_progress(struct group *g, const struct qfs_paxos_msg *m)
{
	for (uint32_t i = 0; i < g->cfg.n; i++) {
		if (g->cfg.ids[i] == m->from && g->sx[i])
			g->sx[i]->heard = 1;
		if (g->cfg.ids[i] == m->from && g->snap_lsn[i] && m->ok && m->match >= g->snap_lsn[i]) {
			g->snap_lsn[i] = 0;
			g->snap_gap_ms[i] = 0;
			g->snap_tries[i] = 0;
		}
	}
}

/* A leader's answer to a follower whose report is below the log: an
 * ACCEPTED from it whose match (its commit, or a refusal's hint) is below
 * the first retained LSN - 1 means only a snapshot can catch it up.  The
 * machine asks for one by itself (snapshot_to) when its own record of the
 * follower is that low; this covers a follower that lost what it had
 * acknowledged (a replica wiped and re-created empty), which the machine,
 * never lowering its record of a follower's match, would retry from the log
 * forever.  At most one per 4 x retry_ms per follower (I/O thread). */
static void snap_behind(struct qfs_rnode *rn, struct group *g, const struct qfs_paxos_msg *m)
{
	qfs_lsn_t first;
	qfs_ballot_t ballot;
	int lead;

	pthread_mutex_lock(&g->mu);
	lead = g->px.role == QFS_PAXOS_LEADER;
	first = g->px.first_retained;
	ballot = g->px.ballot;
	pthread_mutex_unlock(&g->mu);
	if (!lead || m->ballot != ballot || m->promised > ballot || m->match + 1 >= first)
		return;
	for (uint32_t i = 0; i < g->cfg.n; i++)
		if (g->cfg.ids[i] == m->from && m->from != rn->id) {
			snap_send(rn, g, m->from, 4ull * rn->prm.retry_ms);
			break;
		}
}

/* Publish how many chunks g->sin holds for qfs_rnode_group_info (I/O
 * thread; takes g->mu). */
static void snap_in_publish(struct group *g)
{
	pthread_mutex_lock(&g->mu);
	g->sin_chunks = g->sin ? g->sin->next : 0;
	pthread_mutex_unlock(&g->mu);
}

static void snap_in_free(struct group *g)
{
	if (g->sin) {
		qfs_store_install_abort(g->sin->inst);
		free(g->sin);
		g->sin = NULL;
		snap_in_publish(g);
	}
}

/* A partial snapshot of g that got no chunk for RNODE_SNAP_IDLE_MS (I/O
 * thread, from the timers): its sender gave up and nobody resumes it (a
 * leader change, or the follower caught up from the log), so its staging
 * files, up to the whole group's size on disk, are removed rather than
 * held until the next transfer, install or drop.  A later chunk of it is refused as out of
 * order (the leader retries from chunk 0). */
static void snap_in_idle(struct qfs_rnode *rn, struct group *g)
{
	struct snap_in *si = g->sin;

	if (!si || now_ms() - si->last_ms <= RNODE_SNAP_IDLE_MS)
		return;
	QFS_LOG(QFS_LOG_INFO, "rnode snapshot partial freed group=%016" PRIx64 " node=%u from=%u xfer=%"
		PRIu64 " chunks=%u items=%" PRIu64 " idle_ms=%u", g->id, rn->id, si->from, si->xfer,
		si->next, si->items, RNODE_SNAP_IDLE_MS);
	snap_in_free(g);
}

/* Install the snapshot collected in g->sin at (lsn, ballot) (I/O thread):
 *   1. lsn must be above the commit point (else it is stale: dropped);
 *   2. the store replaces the group's items and applied LSN in one batch
 *      and flushes (qfs_store_install_commit): durable;
 *   3. the WAL is kept if it holds the snapshot's entry (lsn, ballot),
 *      else emptied (the next append, lsn + 1, starts it again);
 *   4. step SNAPSHOT_INSTALLED, whose update acknowledges lsn.
 * A crash between 2 and 3 is finished by snap_recover() at open.  A store
 * or WAL failure stops the group. */
static void snap_install(struct qfs_rnode *rn, struct group *g, qfs_lsn_t lsn,
			 qfs_ballot_t ballot)
{
	struct snap_in *si = g->sin;
	struct qfs_paxos_event ev;
	struct proposal **pp;
	qfs_lsn_t commit;
	qfs_ballot_t b = 0;
	uint64_t items = si->items;
	uint32_t from = si->from;
	int rc, keep;

	pthread_mutex_lock(&g->mu);
	commit = g->px.commit;
	pthread_mutex_unlock(&g->mu);
	if (lsn <= commit || lsn <= g->applied) {
		QFS_LOG(QFS_LOG_DEBUG, "rnode snapshot stale group=%016" PRIx64 " node=%u lsn=%" PRIu64
			" commit=%" PRIu64, g->id, rn->id, lsn, commit);
		snap_in_free(g);
		return;
	}
	rc = qfs_store_install_commit(si->inst, lsn, ballot);
	si->inst = NULL;
	snap_in_free(g);
	if (rc) {
		group_stop(rn, g, rc, "snapshot install");
		return;
	}
	g->applied = lsn;
	rc = wal_ballot(g, lsn, &b);
	if (rc < 0 && rc != -ENOENT) {
		group_stop(rn, g, rc, "snapshot wal read");
		return;
	}
	keep = rc == 0 && b == ballot;
	if (!keep) {
		rc = qfs_wal_truncate_after(g->wal, 0);
		if (rc) {
			group_stop(rn, g, rc, "snapshot wal reset");
			return;
		}
		g->unsealed_ms = 0;
	}
	wal_snap(g);
	/* Proposals at or below lsn: their outcome is in the snapshot, which
	 * does not say; above it, when the log is reset: a new leader may
	 * have taken those entries into its log and committed them, so the
	 * outcome is unknown as well (-ETIMEDOUT, never -EAGAIN, which the
	 * cell would retry and so apply twice). */
	pp = &g->pending;
	while (*pp) {
		struct proposal *p = *pp;

		if (p->lsn <= lsn || !keep) {
			*pp = p->next;
			answer(rn, p, -ETIMEDOUT, 0);
		} else {
			pp = &p->next;
		}
	}
	QFS_LOG(QFS_LOG_INFO, "rnode snapshot installed group=%016" PRIx64 " node=%u from=%u lsn=%"
		PRIu64 " ballot=%" PRIu64 " items=%" PRIu64 " log=%s", g->id, rn->id, from, lsn,
		ballot, items, keep ? "kept" : "reset");
	memset(&ev, 0, sizeof(ev));
	ev.type = QFS_PAXOS_EV_SNAPSHOT_INSTALLED;
	ev.now_ms = now_ms();
	ev.lsn = lsn;
	ev.ballot = ballot;
	step_handle(rn, g, &ev, 0);
}

/* Acknowledge chunk c->seq of a transfer to its sender (follower, I/O
 * thread).  A lost ACK stalls the transfer; the leader abandons and
 * retries it. */
static void snap_send_ack(struct qfs_rnode *rn, const struct qfs_snap_chunk *c)
{
	struct qfs_snap_chunk a = { .from = rn->id, .to = c->from, .group = c->group,
				    .xfer = c->xfer, .seq = c->seq, .ack = 1 };
	struct qfs_buf b;

	qfs_buf_init(&b);
	qfs_snap_start(&b);
	if (qfs_snap_finish(&b, &a) == 0 && qfs_net_send(rn->ep, a.to, b.data, b.len) == 0)
		stat_add(&rn->st_out, 1);
	qfs_buf_close(&b);
}

/* Count a chunk refused by snap_recv (I/O thread; takes g->mu). */
static void snap_in_drop(struct qfs_rnode *rn, struct group *g, const struct qfs_snap_chunk *c,
			 const char *why)
{
	pthread_mutex_lock(&g->mu);
	g->sin_dropped++;
	pthread_mutex_unlock(&g->mu);
	QFS_LOG(QFS_LOG_DEBUG, "rnode snapshot chunk dropped group=%016" PRIx64 " node=%u from=%u"
		" xfer=%" PRIu64 " seq=%u leader=%u why=%s", g->id, rn->id, c->from, c->xfer, c->seq,
		g->px.leader, why);
}

/* One snapshot chunk arrived (I/O thread).  Only chunks from the leader
 * this replica follows are taken (a deposed leader's, or one sent before
 * an election, are dropped and counted: no ACK, so their sender stalls),
 * and under one leader's ballot a chunk 0 only of a transfer newer than
 * the last one started here (xfer ids of a sender grow while it leads; a
 * restarted node leads again only at a new ballot, its ids may start
 * lower after a reboot): a late chunk 0 of an abandoned or installed
 * transfer would start a partial, or replace the one in progress.  Chunks of one transfer must come in order from seq 0;
 * a chunk 0 starts over (a retry), anything else out of order abandons
 * the transfer (the leader retries).  Each chunk taken is acknowledged
 * (snap_send_ack); an ACK goes to snap_ack. */
static void snap_recv(struct qfs_rnode *rn, const uint8_t *body, size_t body_len)
{
	struct qfs_snap_chunk c;
	const uint8_t *k, *v;
	size_t pos = 0, kl, vl;
	struct group *g;
	int member = 0, rc;

	if (qfs_snap_decode(body, body_len, &c) != 0)
		return; /* corrupt: dropped, the leader retries */
	stat_add(&rn->st_in, 1);
	if (c.to != rn->id || c.from == rn->id)
		return;
	if (c.ack) {
		snap_ack(rn, &c);
		return;
	}
	if (!(g = group_get(rn, c.group)))
		return;
	for (uint32_t i = 0; i < g->cfg.n; i++)
		member |= g->cfg.ids[i] == c.from;
	if (!member || g->stopped || group_dropped(g))
		goto out_put;
	if (g->px.role != QFS_PAXOS_FOLLOWER || g->px.leader != c.from) {
		snap_in_drop(rn, g, &c, "not-leader");
		goto out_put;
	}
	if (c.seq == 0 && c.from == g->sin_last_from && g->px.ballot == g->sin_last_ballot &&
	    c.xfer <= g->sin_last_xfer) {
		snap_in_drop(rn, g, &c, "old-transfer");
		goto out_put;
	}
	if (c.seq == 0) {
		snap_in_free(g);
		g->sin = calloc(1, sizeof(*g->sin));
		if (!g->sin)
			goto out_put;
		if (qfs_store_install_begin(rn->store, g->id, &g->sin->inst)) {
			snap_in_free(g);
			goto out_put;
		}
		g->sin->from = c.from;
		g->sin->xfer = c.xfer;
		g->sin_last_from = c.from;
		g->sin_last_xfer = c.xfer;
		g->sin_last_ballot = g->px.ballot;
	} else if (!g->sin || g->sin->from != c.from || g->sin->xfer != c.xfer ||
		   g->sin->next != c.seq) {
		if (g->sin && g->sin->from == c.from)
			snap_in_free(g); /* a chunk of it was lost */
		goto out_put;
	}
	while (qfs_snap_next(&c, &pos, &k, &kl, &v, &vl)) {
		if ((rc = qfs_store_install_item(g->sin->inst, k, kl, v, vl))) {
			QFS_LOG(QFS_LOG_WARN, "rnode snapshot item refused group=%016" PRIx64
				" node=%u from=%u err=\"%s\"", g->id, rn->id, c.from, qfs_strerror(rc));
			snap_in_free(g);
			goto out_put;
		}
	}
	g->sin->next++;
	g->sin->items += c.n;
	g->sin->last_ms = now_ms();
	snap_in_publish(g);
	snap_send_ack(rn, &c);
	if (c.last) {
		if (g->sin->items != c.total || !c.lsn) {
			QFS_LOG(QFS_LOG_WARN, "rnode snapshot incomplete group=%016" PRIx64 " node=%u from=%u"
				" items=%" PRIu64 " total=%" PRIu64, g->id, rn->id, c.from, g->sin->items,
				c.total);
			snap_in_free(g);
		} else {
			snap_install(rn, g, c.lsn, c.ballot);
		}
	}
out_put:
	group_put(rn, g);
}

/* One received frame (I/O thread).  Returns 1 if it gave f to the
 * on_frame hook (which owns it now), 0 if the caller frees it. */
static int on_frame(struct qfs_rnode *rn, struct qfs_net_frame *f)
{
	struct qfs_repl_entry ents[QFS_PAXOS_MAX_BATCH];
	struct qfs_paxos_msg m;
	struct qfs_paxos_event ev;
	struct group *g;
	const uint8_t *body;
	size_t body_len;
	uint8_t type;

	if (qfs_net_frame_open_rx(f, &type, &body, &body_len) != 0)
		return 0; /* corrupt: dropped, paxos retransmits */
	if (type == QFS_SNAP_FRAME_TYPE) {
		snap_recv(rn, body, body_len);
		return 0;
	}
	if (!qfs_paxos_msg_type_ok(type)) {
		if (!rn->on_frame)
			return 0;
		rn->on_frame(f, type, rn->frame_arg);
		return 1;
	}
	if (qfs_paxos_msg_decode(type, body, body_len, &m, ents) != 0)
		return 0; /* corrupt: dropped, paxos retransmits */
	stat_add(&rn->st_in, 1);
	if (m.to != rn->id || !(g = group_get(rn, m.group)))
		return 0;
	memset(&ev, 0, sizeof(ev));
	ev.type = QFS_PAXOS_EV_RECEIVE;
	ev.now_ms = now_ms();
	ev.msg = &m;
	step_handle(rn, g, &ev, 0);
	if (m.type == QFS_PAXOS_ACCEPTED && !g->stopped) {
		snap_progress(g, &m);
		snap_behind(rn, g, &m);
	}
	group_put(rn, g);
	return 0;
}

/* 1 if the encoded txn writes no data (no put, inline data or xattr
 * value: an unlink, rmdir, truncate, chmod...; a SETDATA of no bytes is a
 * truncate to 0, `: > f`; the PUT of a cluster router's retry token, no
 * value, in front of every proposal of a cluster mount, is not counted),
 * so it may use the disk
 * reserve; 0 otherwise or if it does not decode (apply will say why).
 * A 2PC PREPARE stores its sub-txn's effects in its record, so it is
 * judged by its sub-txn (depth: at most one PREPARE level, a PREPARE
 * inside one is refused at apply and judged a write here); COMMIT,
 * ABORT and DECIDE write no data of their own and must pass whenever
 * their PREPAREs did, so that nothing stays locked on a full disk. */
static int txn_frees_at(const void *txn, size_t len, int depth)
{
	struct qfs_txn t;
	int frees = 0;

	qfs_txn_init(&t);
	if (qfs_txn_decode(txn, len, &t) == 0) {
		frees = 1;
		for (size_t i = 0; i < t.nops && frees; i++)
			if ((t.ops[i].kind == QFS_OP_PUT &&
			     !(t.ops[i].val_len == 0 && qfs_node_is_token_key(t.ops[i].key, t.ops[i].key_len))) ||
			    (t.ops[i].kind == QFS_OP_SETDATA && t.ops[i].val_len > 0) ||
			    t.ops[i].kind == QFS_OP_XSET || t.ops[i].kind == QFS_OP_PATCH)
				frees = 0;
			else if (t.ops[i].kind == QFS_OP_PREPARE)
				frees = depth == 0 &&
					txn_frees_at(t.ops[i].val, t.ops[i].val_len, depth + 1);
	}
	qfs_txn_close(&t);
	return frees;
}

static int txn_frees(const void *txn, size_t len)
{
	return txn_frees_at(txn, len, 0);
}

/* The condition of a CONFIG proposal p (qfs_rnode_propose_members_if), on
 * the round's thread, which alone steps g->px: 0 if it still holds. */
static int config_if(struct group *g, const struct proposal *p)
{
	const struct qfs_paxos *px = &g->px;
	int rc = 0;

	pthread_mutex_lock(&g->mu);
	if (px->role != QFS_PAXOS_LEADER)
		rc = -EREMOTE;
	else if (px->ballot != p->from_ballot || px->cfg.n != p->from->n ||
		 px->cfg.log != p->from->log ||
		 memcmp(px->cfg.ids, p->from->ids, px->cfg.n * sizeof(px->cfg.ids[0])))
		rc = -ESTALE;
	else if (!(qfs_paxos_quorum(&px->cfg) == 1 && cfg_valid(&px->cfg, g->rn->id)) &&
		 now_ms() >= px->lease_until)
		rc = -EBUSY; /* (as qfs_paxos_join_floor: a lone member needs none) */
	pthread_mutex_unlock(&g->mu);
	return rc;
}

/* Bytes free on the disk of g's WAL for the admission check of a batch
 * that needs need bytes: a fresh statvfs, or the last one if it is younger
 * than RNODE_SPACE_CACHE_MS and, less every batch admitted since
 * (space_admit), still shows RNODE_SPACE_SLACK beyond need: a fresh one
 * could then decide otherwise only if something else had written 64 MiB
 * in those 5 ms, and the reserve is there for RocksDB's flushes.  Near
 * the bound every batch asks the disk, as before.  UINT64_MAX when
 * statvfs fails (the batch is admitted, as before). */
static uint64_t space_free(struct group *g, uint64_t need)
{
	uint64_t now = now_ms(), avail;

	if (g->space_ms && now - g->space_ms < RNODE_SPACE_CACHE_MS && g->space_free >= need &&
	    g->space_free - need >= RNODE_SPACE_SLACK)
		return g->space_free;
	if ((avail = qfs_sysio_disk_avail(g->waldir)) == UINT64_MAX) {
		g->space_ms = 0;
		return UINT64_MAX;
	}
	g->space_free = avail;
	g->space_ms = now ? now : 1;
	return g->space_free;
}

/* A batch that writes bytes was admitted: what space_free serves shrinks. */
static void space_admit(struct group *g, uint64_t bytes)
{
	g->space_free = g->space_free > bytes ? g->space_free - bytes : 0;
}

/* The leader's marks start again with each term: the first is the log's
 * end when it was elected (nothing before it is counted). */
static void adm_term(struct group *g)
{
	if (g->nadm && g->adm_since == g->px.lead_since)
		return;
	g->adm_since = g->px.lead_since;
	g->adm_bytes = 0;
	g->adm[0].lsn = g->px.last;
	g->adm[0].bytes = 0;
	g->nadm = 1;
}

/* Bytes admitted in this term after LSN match, as the marks tell: from the
 * newest mark at or below match (the oldest one when match is older). */
static uint64_t adm_after(const struct group *g, qfs_lsn_t match)
{
	uint32_t i = g->nadm;

	while (i > 1 && g->adm[i - 1].lsn > match)
		i--;
	return g->adm_bytes - g->adm[i - 1].bytes;
}

/* What the members of g, sharing this disk, still have to write of the
 * batches this leader admitted: each follower from its match, the leader
 * itself from what it persisted.  A member that lags (or is down) writes
 * them when it catches up, so the space is not free for new batches: a
 * full disk's reserve must still be there when it does (a follower that
 * had not written 10 MiB when the leader refused the first batch took
 * the reserve with it as it caught up, and the stores, short of room to
 * flush, could not give back the space of deleted files).  Only what
 * the leader's WAL still holds is counted: a follower behind its first
 * retained LSN gets a snapshot, not those entries (a node process
 * releases its WAL past a dead member's match, doc/rnode.md section 4;
 * counting everything admitted since a member died refused every write,
 * deletes given back or not, once the sum passed the free space). */
static uint64_t space_backlog(struct group *g)
{
	qfs_lsn_t gone = g->px.first_retained ? g->px.first_retained - 1 : 0;
	uint64_t sum;

	adm_term(g);
	sum = adm_after(g, g->px.persisted > gone ? g->px.persisted : gone);
	for (uint32_t i = 0; i < g->px.npeers; i++) {
		qfs_lsn_t m = g->px.peers[i].match;

		sum += adm_after(g, m > gone ? m : gone);
	}
	return sum;
}

/* The batch ending at lsn was admitted with bytes per member.  When the
 * marks are full, one goes: the first and the newest stay, and of the
 * others the one whose neighbours are closest, in bytes, relative to
 * how far back the older neighbour is: the marks thin out with age
 * (their gaps grow about as the bytes since), so a member's backlog read
 * from them is at most about a third too large at any age (a simulation
 * of 10^5 batches: 1.3x).  (Dropping
 * every other mark instead kept only the last ~200 batches: a member
 * further behind, dead or lagging, counted as if it had nothing of the
 * term.) */
static void adm_mark(struct group *g, qfs_lsn_t lsn, uint64_t bytes)
{
	if (g->nadm == RNODE_ADM_MARKS) {
		uint32_t drop = 1;
		double best = 0;

		for (uint32_t i = 1; i + 1 < g->nadm; i++) {
			double gap = (double)(g->adm[i + 1].bytes - g->adm[i - 1].bytes);
			double age = (double)(g->adm_bytes - g->adm[i - 1].bytes) + 1;

			if (i == 1 || gap / age < best) {
				best = gap / age;
				drop = i;
			}
		}
		memmove(&g->adm[drop], &g->adm[drop + 1],
			(g->nadm - drop - 1) * sizeof(g->adm[0]));
		g->nadm--;
	}
	g->adm_bytes += bytes;
	g->adm[g->nadm].lsn = lsn;
	g->adm[g->nadm].bytes = g->adm_bytes;
	g->nadm++;
}

/* Hand up to QFS_PAXOS_MAX_BATCH queued proposals of one group to paxos. */
static void propose_batch(struct qfs_rnode *rn, struct group *g, struct proposal **ps, uint32_t n)
{
	struct qfs_repl_entry ents[QFS_PAXOS_MAX_BATCH];
	struct qfs_paxos_update up;
	struct qfs_paxos_event ev;
	struct qfs_ts ts;
	int rc;

	if (g->stopped) {
		for (uint32_t i = 0; i < n; i++)
			answer(rn, ps[i], QFS_ESTOPPED, 0);
		return;
	}
	/* Admission on a full disk: an entry the machine has taken can only be
	 * persisted or the replica stopped, so the leader refuses a batch
	 * that would leave less than the reserve free (the reserve keeps room
	 * for a new leader's barrier, RocksDB flushes and the followers when
	 * they share the disk).  A batch that only deletes (unlink, rmdir,
	 * truncate...) may go down to the floor: deletes are what give space
	 * back, so they must pass when writes no longer do (doc/rnode.md).
	 * Reads go on under the lease meanwhile. */
	uint64_t member_bytes = 0;

	if (g->px.role == QFS_PAXOS_LEADER) {
		uint64_t need = 0, write, free, backlog;
		int frees = 1;

		/* every member may write the batch to this same disk, and so
		 * it may still write what it lags behind */
		for (uint32_t i = 0; i < n; i++) {
			member_bytes += ps[i]->len + 64;
			if (frees && !txn_frees(ps[i]->txn, ps[i]->len))
				frees = 0;
		}
		need = member_bytes * g->cfg.n;
		write = need;
		backlog = frees ? 0 : space_backlog(g);
		need += frees ? RNODE_SPACE_FLOOR : rn->space_reserve + backlog;
		if (!frees && rn->space_hold)
			need += __atomic_load_n(rn->space_hold, __ATOMIC_RELAXED);
		free = space_free(g, need);
		if (free < need) {
			if (now_ms() - g->nospc_warned_ms >= 10000) {
				g->nospc_warned_ms = now_ms();
				QFS_LOG(QFS_LOG_ERR, "rnode proposals refused group=%016" PRIx64
					" err=\"No space left on device\" free=%" PRIu64 " need=%" PRIu64
					" backlog=%" PRIu64 " dir=%s", g->id, free, need, backlog, g->waldir);
			}
			for (uint32_t i = 0; i < n; i++)
				answer(rn, ps[i], -ENOSPC, 0);
			return;
		}
		space_admit(g, write);
	}
	if (n == 1 && ps[0]->from && (rc = config_if(g, ps[0]))) {
		ps[0]->leader = g->leader;
		answer(rn, ps[0], rc, 0);
		return;
	}
	qfs_clock_now(&ts);
	memset(ents, 0, sizeof(ents));
	for (uint32_t i = 0; i < n; i++) {
		ents[i].type = ps[i]->type;
		ents[i].time_ns = (uint64_t)ts.sec * 1000000000ull + (uint64_t)ts.nsec;
		ents[i].data = ps[i]->txn;
		ents[i].len = ps[i]->len;
	}
	memset(&ev, 0, sizeof(ev));
	ev.type = QFS_PAXOS_EV_PROPOSE;
	ev.now_ms = now_ms();
	ev.entries = ents;
	ev.n = n;
	rc = step(g, &ev, &up);
	if (rc) {
		for (uint32_t i = 0; i < n; i++) {
			ps[i]->leader = up.leader;
			answer(rn, ps[i], rc, 0);
		}
		return;
	}
	stat_add(&rn->st_proposals, n);
	stat_add(&rn->st_batches, 1);
	/* PROPOSE appended our entries last in its persist list, in order. */
	assert(up.npersist >= n);
	for (uint32_t i = 0; i < n; i++) {
		ps[i]->lsn = up.persist[up.npersist - n + i].lsn;
		ps[i]->ballot = up.persist[up.npersist - n + i].ballot;
		pending_add(g, ps[i]);
	}
	if (member_bytes) {
		adm_term(g);
		adm_mark(g, ps[n - 1]->lsn, member_bytes);
	}
	qfs_drive_handle(&g->drv, &up);
}

static void propose_all(struct qfs_rnode *rn, struct proposal *list)
{
	struct proposal *ps[QFS_PAXOS_MAX_BATCH];

	while (list) {
		qfs_group_t id = list->group;
		struct proposal **pp = &list;
		struct group *g = group_get(rn, id);
		uint32_t n = 0;
		size_t bytes = 0;

		/* Take up to a batch of this group's proposals, keeping order, at
		 * most RNODE_READ_BYTES of them unless one alone is bigger (the
		 * batch goes to the followers in one ACCEPT frame, which holds
		 * QFS_NET_BODY_MAX); a CONFIG proposal goes alone (paxos.h). */
		while (*pp && n < QFS_PAXOS_MAX_BATCH) {
			if ((*pp)->group == id) {
				int cfg = (*pp)->type == QFS_REPL_ENTRY_CONFIG;

				if (cfg && n)
					break;
				if (n && bytes + (*pp)->len > RNODE_READ_BYTES)
					break;
				bytes += (*pp)->len;
				ps[n++] = *pp;
				*pp = (*pp)->next;
				if (cfg)
					break;
			} else {
				pp = &(*pp)->next;
			}
		}
		if (!g) {
			for (uint32_t i = 0; i < n; i++)
				answer(rn, ps[i], QFS_ENOGROUP, 0);
			continue;
		}
		propose_batch(rn, g, ps, n);
		group_put(rn, g);
	}
}

/* Seal g's open segment by age (see "Sealing by age"), then tell the hook. */
static void seal_aged(struct qfs_rnode *rn, struct group *g, uint64_t now,
		      void (*hook)(qfs_group_t group, void *arg), void *hook_arg)
{
	int rc = qfs_wal_seal(g->wal);

	if (rc) {
		QFS_LOG(QFS_LOG_WARN, "rnode wal seal failed group=%016" PRIx64 " node=%u err=\"%s\"", g->id,
			rn->id, qfs_strerror(rc));
		g->unsealed_ms = now; /* try again one age later */
		return;
	}
	g->unsealed_ms = 0;
	wal_snap(g);
	if (hook)
		hook(g->id, hook_arg);
}

/* Ticks due, deadlines passed, segments old enough to seal; returns the
 * next time to wake. */
static uint64_t timers(struct qfs_rnode *rn, struct group **gs, size_t ng,
		       void (*hook)(qfs_group_t group, void *arg), void *hook_arg)
{
	uint64_t now = now_ms(), next = now + 1000;

	for (size_t i = 0; i < ng; i++) {
		struct group *g = gs[i];

		snap_stalls(rn, g);
		snap_in_idle(rn, g);
		if (g->stopped || g->dropped)
			continue;
		if (g->next_tick_ms <= now) {
			struct qfs_paxos_event ev = { .type = QFS_PAXOS_EV_TICK, .now_ms = now };

			step_handle(rn, g, &ev, 0);
			now = now_ms();
		}
		for (struct proposal **pp = &g->pending; *pp;) {
			struct proposal *p = *pp;

			if (p->deadline_ms <= now) {
				*pp = p->next;
				answer(rn, p, -ETIMEDOUT, 0);
			} else {
				if (p->deadline_ms < next)
					next = p->deadline_ms;
				pp = &p->next;
			}
		}
		if (g->next_tick_ms && g->next_tick_ms < next)
			next = g->next_tick_ms;
		if (!g->stopped && g->unsealed_ms && rn->seal_age_ms != UINT64_MAX) {
			if (now - g->unsealed_ms >= rn->seal_age_ms)
				seal_aged(rn, g, now, hook, hook_arg);
			else if (g->unsealed_ms + rn->seal_age_ms < next)
				next = g->unsealed_ms + rn->seal_age_ms;
		}
	}
	return next;
}

/* Drop group id (I/O thread; see "Group lifetime").  0, QFS_ENOGROUP, or
 * -errno: of the members unlink (nothing done), or of a later step (the
 * group is gone from the node; open or a create finishes the rest). */
static int io_drop(struct qfs_rnode *rn, qfs_group_t id)
{
	char path[PATH_MAX];
	struct group *g = group_get(rn, id);
	int rc, rc2;

	if (!g)
		return QFS_ENOGROUP;
	assert(!g->dropped); /* only this thread drops, and it finishes */
	if ((rc = qfs_node_path_fmt(path, sizeof(path), "%s/%016" PRIx64, g->gdir, id)))
		goto out_put;
	if (qfs_sys_unlink(path) < 0 && errno != ENOENT) {
		rc = -errno;
		QFS_LOG(QFS_LOG_ERR, "rnode group drop failed group=%016" PRIx64 " node=%u step=members err=\"%s\"",
			id, rn->id, qfs_strerror(rc));
		goto out_put;
	}
	/* The members file is gone: from here on there is no way back (a
	 * failed fsync leaves it unknown whether the group reappears after a
	 * crash; its replica is then empty or old, and is caught up). */
	rc = qfs_node_fsync_dir(g->gdir);
	pthread_rwlock_wrlock(&g->rw);
	pthread_mutex_lock(&g->mu);
	g->dropped = 1;
	pthread_mutex_unlock(&g->mu);
	pthread_rwlock_unlock(&g->rw);
	pending_fail_after(rn, g, 0, QFS_ENOGROUP);
	if (g->snap_wait)
		snap_wait_end(rn, g, QFS_ENOGROUP);
	qfs_wal_close(g->wal);
	g->wal = NULL;
	rc2 = finish_drop(rn, id);
	if (!rc)
		rc = rc2;
	pthread_mutex_lock(&rn->mu);
	for (size_t i = 0; i < rn->ngroups; i++)
		if (rn->groups[i] == g) {
			memmove(rn->groups + i, rn->groups + i + 1, (rn->ngroups - i - 1) * sizeof(g));
			rn->ngroups--;
			g->refs--; /* the table's; ours is still held */
			break;
		}
	pthread_mutex_unlock(&rn->mu);
	QFS_LOG(rc ? QFS_LOG_ERR : QFS_LOG_INFO, "rnode group drop group=%016" PRIx64 " node=%u err=\"%s\"",
		id, rn->id, rc ? qfs_strerror(rc) : "-");
out_put:
	group_put(rn, g);
	return rc;
}

/* Delete the sealed segments wholly below lsn (already clamped to the
 * synced store's applied LSN by the caller, clamped again here) and tell the
 * machine the new first LSN (I/O thread).  0, QFS_ENOGROUP, QFS_ESTOPPED,
 * -errno of the WAL. */
static int io_release(struct qfs_rnode *rn, qfs_group_t id, qfs_lsn_t lsn)
{
	struct group *g = group_get(rn, id);
	struct qfs_paxos_event ev;
	qfs_lsn_t first;
	int rc;

	if (!g)
		return QFS_ENOGROUP;
	if (g->stopped) {
		rc = QFS_ESTOPPED;
		goto out_put;
	}
	/* Keep the entry at the applied LSN: a restart after a crash that
	 * lost the store's memtable reads the ballot of its applied entry from
	 * the log (qfs_paxos_init needs the runs to cover it). */
	if (lsn > g->applied)
		lsn = g->applied;
	rc = qfs_wal_truncate_before(g->wal, lsn);
	wal_snap(g);
	if (rc) {
		QFS_LOG(QFS_LOG_WARN, "rnode wal release failed group=%016" PRIx64 " node=%u below=%" PRIu64
			" err=\"%s\"", id, rn->id, lsn, qfs_strerror(rc));
		goto out_put;
	}
	first = qfs_wal_first(g->wal);
	if (first > 1) {
		memset(&ev, 0, sizeof(ev));
		ev.type = QFS_PAXOS_EV_COMPACTED;
		ev.now_ms = now_ms();
		ev.lsn = first;
		step_handle(rn, g, &ev, 0);
	}
	QFS_LOG(QFS_LOG_DEBUG, "rnode wal released group=%016" PRIx64 " node=%u below=%" PRIu64
		" first=%" PRIu64, id, rn->id, lsn, first);
out_put:
	group_put(rn, g);
	return rc;
}

/* Seal the open segment of group id if it holds records (I/O thread).  0,
 * QFS_ENOGROUP, QFS_ESTOPPED, -errno of the seal. */
static int io_seal(struct qfs_rnode *rn, qfs_group_t id)
{
	struct group *g = group_get(rn, id);
	int rc = 0;

	if (!g)
		return QFS_ENOGROUP;
	if (g->stopped || g->dropped) {
		rc = g->dropped ? QFS_ENOGROUP : QFS_ESTOPPED;
	} else if (g->unsealed_ms) {
		rc = qfs_wal_seal(g->wal);
		if (rc == 0) {
			g->unsealed_ms = 0;
			wal_snap(g);
		}
	}
	group_put(rn, g);
	return rc;
}

/* Stop group id as untrusted (I/O thread): a reader outside the node found
 * its log corrupt.  0 (also when already stopped), QFS_ENOGROUP. */
static int io_distrust(struct qfs_rnode *rn, qfs_group_t id)
{
	struct group *g = group_get(rn, id);

	if (!g)
		return QFS_ENOGROUP;
	if (!g->dropped)
		group_stop(rn, g, QFS_ECORRUPT, "corrupt segment found by the archiver");
	group_put(rn, g);
	return 0;
}

static int io_elect(struct qfs_rnode *rn);

static void io_requests(struct qfs_rnode *rn, struct ioreq *list)
{
	while (list) {
		struct ioreq *r = list;
		int rc;

		list = r->next;
		if (r->type == IOREQ_SNAP) {
			io_snap(rn, r);
			continue;
		}
		if (r->type == IOREQ_WAL_VERIFY) {
			ioreq_done(rn, r, io_wal_verify(rn, r->group));
			continue;
		}
		rc = r->type == IOREQ_DROP ? io_drop(rn, r->group) :
		     r->type == IOREQ_SEAL ? io_seal(rn, r->group) :
		     r->type == IOREQ_DISTRUST ? io_distrust(rn, r->group) :
		     r->type == IOREQ_ELECT ? io_elect(rn) :
		     io_release(rn, r->group, r->lsn);
		pthread_mutex_lock(&rn->mu);
		r->rc = rc;
		r->done = 1;
		pthread_cond_broadcast(&rn->done_cv);
		pthread_mutex_unlock(&rn->mu);
	}
}

/* Copy the table taking a reference on each group.  Caller holds rn->mu. */
static size_t groups_ref(struct qfs_rnode *rn, struct group **gs)
{
	for (size_t i = 0; i < rn->ngroups; i++) {
		gs[i] = rn->groups[i];
		gs[i]->refs++;
	}
	return rn->ngroups;
}

static void groups_put(struct qfs_rnode *rn, struct group **gs, size_t ng)
{
	for (size_t i = 0; i < ng; i++)
		group_put(rn, gs[i]);
}

/* IOREQ_ELECT (I/O thread): the preferred members here campaign on this
 * round's timers (qfs_rnode_elect).  0. */
static int io_elect(struct qfs_rnode *rn)
{
	struct group *gs[QFS_RNODE_MAX_GROUPS];
	uint64_t now = now_ms();
	size_t ng, n = 0;

	pthread_mutex_lock(&rn->mu);
	ng = groups_ref(rn, gs);
	pthread_mutex_unlock(&rn->mu);
	for (size_t i = 0; i < ng; i++) {
		struct group *g = gs[i];
		int go;

		if (g->stopped || g->dropped)
			continue;
		pthread_mutex_lock(&g->mu);
		go = qfs_paxos_elect_now(&g->px, now);
		pthread_mutex_unlock(&g->mu);
		if (go) {
			g->next_tick_ms = now;
			n++;
		}
	}
	groups_put(rn, gs, ng);
	QFS_LOG(QFS_LOG_INFO, "rnode elect node=%u groups=%zu campaigning=%zu", rn->id, ng, n);
	return 0;
}

/* Group commit across rounds (doc/rnode.md section 2, "Gathering"): 1 while
 * the queued proposals should wait for more before a round takes them:
 * proposers answered with success lately (about one log sync's time ago,
 * gather_ns) have not proposed again (rn->returning), and the batch is not
 * full.  Concurrent writers that each fsync in a loop come back a few
 * hundred microseconds after their answer; without the wait a round took
 * whoever came first and the rest made a round of their own (the writers
 * split into cohorts that stay split, one sync per replica each).  A single
 * proposer never waits (its own return takes the count to 0); a proposer
 * that does not come back costs the queued ones the window once (the count
 * is dropped when it runs out), and gathers that wait in vain in a row stop
 * the gathering for a while.  Also makes a proposer queue instead of
 * running its own round.  rn->mu held. */
static int gather(struct qfs_rnode *rn)
{
	uint64_t now;

	if (!rn->returning || rn->qlen >= QFS_PAXOS_MAX_BATCH)
		return 0;
	now = qfs_clock_mono_ns();
	if (now >= rn->gather_ns) {
		/* in vain if only the queued one came: no gathering for a while */
		if (rn->qhead && rn->arrived <= 1) {
			if (++rn->gather_vain >= RNODE_GATHER_VAIN) {
				rn->gather_skip = RNODE_GATHER_SKIP;
				rn->gather_vain = 0;
			}
		} else {
			rn->gather_vain = 0;
		}
		rn->returning = 0;
		return 0;
	}
	return 1;
}

static void *io_main(void *arg)
{
	struct qfs_rnode *rn = arg;
	struct group *gs[QFS_RNODE_MAX_GROUPS];
	uint64_t next = 0;

	for (;;) {
		void (*hook)(qfs_group_t group, void *arg);
		struct proposal *list;
		struct ioreq *reqs;
		struct qfs_net_frame *f;
		void *hook_arg;
		size_t ng;

		pthread_mutex_lock(&rn->mu);
		while ((!rn->qhead || gather(rn)) && !rn->rhead && !rn->wake && !rn->closing &&
		       now_ms() < rn->io_next) {
			struct timespec ts;
			uint64_t wait = rn->io_next - now_ms();

			if (wait > 1000)
				wait = 1000;
			if (rn->qhead) { /* gathering: until gather_ns at the latest,
					    or a timer due earlier (io_next) */
				uint64_t until = rn->gather_ns;

				if (rn->io_next < until / 1000000ull)
					until = rn->io_next * 1000000ull;
				ts.tv_sec = (time_t)(until / 1000000000ull);
				ts.tv_nsec = (long)(until % 1000000000ull);
			} else {
				qfs_clock_deadline(CLOCK_MONOTONIC, wait, &ts);
			}
			pthread_cond_timedwait(&rn->work_cv, &rn->mu, &ts);
		}
		/* A proposer may be running a round of its own: wait for it
		 * (round_mu before mu), then take what is queued. */
		rn->io_waiting = 1;
		pthread_mutex_unlock(&rn->mu);
		pthread_mutex_lock(&rn->round_mu);
		round_held = 1;
		rn->round_next = UINT64_MAX;
		pthread_mutex_lock(&rn->mu);
		rn->io_waiting = 0;
		/* a round for frames or requests leaves a gathering batch queued */
		list = NULL;
		if (!gather(rn) || rn->closing) {
			list = rn->qhead;
			rn->qhead = rn->qtail = NULL;
			rn->qlen = 0;
		}
		reqs = rn->rhead;
		rn->rhead = rn->rtail = NULL;
		if (rn->closing) {
			ng = groups_ref(rn, gs);
			for (struct ioreq *r = reqs; r; r = r->next) {
				r->rc = QFS_ESTOPPED;
				r->done = 1;
			}
			pthread_cond_broadcast(&rn->done_cv);
			pthread_mutex_unlock(&rn->mu);
			while (list) { /* next first: an answered proposal's frame
					  * is its proposer's stack, gone once woken */
				struct proposal *p = list;

				list = p->next;
				answer(rn, p, QFS_ESTOPPED, 0);
			}
			for (size_t i = 0; i < ng; i++)
				pending_fail_after(rn, gs[i], 0, QFS_ESTOPPED);
			snap_wait_check(rn, gs, ng, 1);
			groups_put(rn, gs, ng);
			round_held = 0;
			pthread_mutex_unlock(&rn->round_mu);
			break;
		}
		rn->wake = 0;
		hook = rn->seal_hook;
		hook_arg = rn->seal_hook_arg;
		pthread_mutex_unlock(&rn->mu);

		/* Drops first: the proposals and frames of this round then no
		 * longer find the group. */
		if (reqs)
			io_requests(rn, reqs);
		pthread_mutex_lock(&rn->mu);
		ng = groups_ref(rn, gs);
		pthread_mutex_unlock(&rn->mu);
		while (qfs_net_recv(rn->ep, &f) == 0) {
			if (!on_frame(rn, f))
				qfs_net_frame_free(f);
		}
		if (list)
			propose_all(rn, list);
		/* One sync per WAL for all of the above; the leader's ACCEPTs
		 * are on their way meanwhile. */
		flush_dirty(rn, NULL);
		next = timers(rn, gs, ng, hook, hook_arg);
		flush_dirty(rn, &next);
		snap_wait_check(rn, gs, ng, 0);
		groups_put(rn, gs, ng);
		/* before round_mu goes: a direct round may lower it */
		pthread_mutex_lock(&rn->mu);
		rn->io_next = next;
		pthread_mutex_unlock(&rn->mu);
		round_held = 0;
		pthread_mutex_unlock(&rn->round_mu);
	}
	return NULL;
}

/* The transport's wake callback (any thread, never under our locks).
 * While a proposer runs a direct round it only notes the frames: that
 * proposer drains them after its sync or signals the I/O thread at its
 * end (propose_direct), so the I/O thread is not woken to find round_mu
 * taken.  The I/O thread is signalled after rn->mu is released: woken
 * under it, it preempted the sender on its CPU only to block on rn->mu
 * and hand the CPU back, two switches more per frame (a leader's ACCEPT,
 * a follower's ACCEPTED: doc/perf.md AFTER 54).  Safe: wake is set under
 * rn->mu, which the I/O thread holds when it looks at it before waiting,
 * and work_cv lives as long as rn.  A direct round's proposer is still
 * signalled under rn->mu: its p is on its stack, gone once it returns. */
static void on_wake(void *arg)
{
	struct qfs_rnode *rn = arg;
	int io = 0;

	pthread_mutex_lock(&rn->mu);
	rn->wake = 1;
	if (rn->direct_p)
		pthread_cond_signal(&rn->direct_p->cv);
	else if (!rn->direct)
		io = 1;
	pthread_mutex_unlock(&rn->mu);
	if (io)
		pthread_cond_signal(&rn->work_cv);
}

/* The end of a direct round: drain the frames that came (the followers'
 * ACCEPTEDs: the commit, the apply and the answers may happen here), sync
 * what they appended, then release round_mu.  Called with round_mu held and
 * rn->direct set, without rn->mu; returns with rn->mu held.  Signals the I/O
 * thread if work was queued meanwhile, if the round asks for an earlier
 * tick or deadline than the one the I/O thread sleeps until, or if frames
 * came after the drain and no proposer waits for them (rn->direct_p). */
static void direct_drain(struct qfs_rnode *rn, struct proposal *p)
{
	struct qfs_net_frame *f;
	uint64_t want;

	pthread_mutex_lock(&rn->mu);
	rn->wake = 0;
	pthread_mutex_unlock(&rn->mu);
	while (qfs_net_recv(rn->ep, &f) == 0) {
		if (!on_frame(rn, f))
			qfs_net_frame_free(f);
	}
	flush_dirty(rn, NULL);
	want = rn->round_next;
	pthread_mutex_lock(&rn->mu);
	if (!p->done && p->deadline_ms < want)
		want = p->deadline_ms;
	rn->direct = 0;
	if (want < rn->io_next)
		rn->io_next = want;
	else
		want = 0;
	if ((rn->wake && !rn->direct_p) || rn->qhead || rn->rhead || want)
		pthread_cond_signal(&rn->work_cv);
	round_held = 0;
	pthread_mutex_unlock(&rn->round_mu);
}

/* A direct round (doc/rnode.md section 2, "The proposer's own round"):
 * called with rn->mu and round_mu held (the I/O thread idle and not
 * waiting for round_mu, nothing queued), p not queued.  Carries out p as the I/O thread would have:
 * PROPOSE, append, ACCEPTs sent, the WAL synced, PERSISTED, the frames
 * that came meanwhile drained (direct_drain).  Then, until p is answered,
 * p's thread is the one the wake callback signals: it drains the
 * followers' answers itself while round_mu is free and nothing is queued,
 * else it hands the frames over to the I/O thread.  Returns with rn->mu
 * held and p done. */
static void propose_direct(struct qfs_rnode *rn, struct proposal *p)
{
	round_held = 1;
	rn->direct = 1;
	pthread_mutex_unlock(&rn->mu);
	rn->round_next = UINT64_MAX;
	stat_add(&rn->st_direct, 1);
	propose_all(rn, p);
	flush_dirty(rn, NULL);
	direct_drain(rn, p);
	if (p->done || rn->direct_p)
		goto wait;
	rn->direct_p = p;
	while (!p->done) {
		if (rn->wake) {
			if (rn->qhead || rn->rhead || rn->io_waiting ||
			    pthread_mutex_trylock(&rn->round_mu) != 0)
				break; /* the I/O thread has work: it drains too */
			rn->direct = 1;
			round_held = 1;
			pthread_mutex_unlock(&rn->mu);
			rn->round_next = UINT64_MAX;
			direct_drain(rn, p);
			continue;
		}
		pthread_cond_wait(&p->cv, &rn->mu);
	}
	rn->direct_p = NULL;
	if (rn->wake)
		pthread_cond_signal(&rn->work_cv);
wait:
	while (!p->done)
		pthread_cond_wait(&p->cv, &rn->mu);
}

/* ---------------------------------------------------------------- public */

static void rnode_free(struct qfs_rnode *rn)
{
	for (size_t i = 0; i < rn->ngroups; i++)
		group_free(rn->groups[i]);
	qfs_buf_close(&rn->frame);
	qfs_buf_close(&rn->snap);
	if (rn->store) {
		(void)qfs_store_sync(rn->store);
		qfs_store_close(rn->store);
	}
	free(rn->dir);
	free(rn->az);
	free(rn);
}

/* See rnode.h.  Runs on the caller's thread; the endpoint opens and the I/O
 * thread starts last, so on error nothing is left running. */
int qfs_rnode_open(const struct qfs_rnode_opts *o, struct qfs_rnode **out)
{
	char path[PATH_MAX], sub[PATH_MAX];
	pthread_condattr_t ca;
	struct qfs_rnode *rn;
	int rc;

	if (!o || !o->dir || !*o->dir || o->id == 0 || o->id > 65535 || !o->net)
		return -EINVAL;
	rn = calloc(1, sizeof(*rn));
	if (!rn)
		return -ENOMEM;
	rn->id = o->id;
	rn->wopts.segment_bytes = o->wal_segment_bytes;
	rn->wopts.zero_ahead = o->wal_zero_ahead == UINT64_MAX ? 0
			       : o->wal_zero_ahead ? o->wal_zero_ahead
						   : RNODE_WAL_ZERO_AHEAD;
	rn->seal_age_ms = o->wal_seal_age_ms ? o->wal_seal_age_ms : QFS_RNODE_SEAL_AGE_DEFAULT_MS;
	rn->test_before_sync = o->test_before_sync;
	rn->test_arg = o->test_arg;
	rn->space_reserve = o->space_reserve > RNODE_SPACE_FLOOR ? o->space_reserve : RNODE_SPACE_FLOOR;
	rn->space_hold = o->space_hold;
	if (o->paxos)
		rn->prm = *o->paxos;
	else
		qfs_paxos_params_default(&rn->prm);
	rn->prm.seed = (uint64_t)o->id * 0x9E3779B97F4A7C15ull ^ qfs_clock_mono_ns();
	qfs_buf_init(&rn->frame);
	qfs_buf_init(&rn->snap);
	rn->snap_xfer = qfs_clock_mono_ns() << 8;
	rn->dir = strdup(o->dir);
	rn->az = strdup(o->az && *o->az ? o->az : "-");
	if (!rn->dir || !rn->az) {
		rc = -ENOMEM;
		goto err_free;
	}
	if ((rc = qfs_sysio_mkdir(o->dir, 0755)) < 0 && rc != -EEXIST) {
		QFS_LOG(QFS_LOG_ERR, "rnode open failed dir=%s err=\"%s\"", o->dir, qfs_strerror(rc));
		goto err_free;
	}
	if ((rc = qfs_node_format_check(o->dir, RNODE_FORMAT)))
		goto err_free;
	if ((rc = qfs_node_path_fmt(sub, sizeof(sub), "%s/wal", o->dir)) || (rc = qfs_node_mkdir_durable(sub, o->dir)))
		goto err_free;
	if ((rc = qfs_node_path_fmt(sub, sizeof(sub), "%s/groups", o->dir)) ||
	    (rc = qfs_node_mkdir_durable(sub, o->dir)))
		goto err_free;
	if ((rc = qfs_node_path_fmt(path, sizeof(path), "%s/store", o->dir)))
		goto err_free;
	if ((rc = qfs_store_open_opts(path, o->store, &rn->store)))
		goto err_free;
	/* a cold start voids the leases of the groups found, never those of
	 * groups created or rebuilt later (their replicas granted leases in
	 * this life) */
	rn->prm.leases_void = o->cold_start;
	rc = finish_leftovers(rn);
	if (rc == 0)
		rc = load_groups(rn, sub);
	rn->prm.leases_void = 0;
	if (rc)
		goto err_free;

	pthread_mutex_init(&rn->mu, NULL);
	pthread_mutex_init(&rn->round_mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&rn->work_cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&rn->done_cv, NULL);
	rn->on_frame = o->on_frame;
	rn->frame_arg = o->frame_arg;
	if ((rc = qfs_net_endpoint_open(o->net, o->id, o->addr, on_wake, rn, &rn->ep)))
		goto err_destroy_locks;
	pthread_mutex_init(&rn->ap_mu, NULL);
	pthread_cond_init(&rn->ap_work_cv, NULL);
	pthread_cond_init(&rn->ap_done_cv, NULL);
	qfs_buf_init(&rn->ap_recs);
	/* (without the applier, every apply runs after its sync) */
	rn->ap_started = pthread_create(&rn->ap, NULL, applier_main, rn) == 0;
	rc = -pthread_create(&rn->io, NULL, io_main, rn);
	if (rc)
		goto err_close_ep;
	QFS_LOG(QFS_LOG_INFO, "rnode open dir=%s node=%u az=%s groups=%zu", rn->dir, rn->id, rn->az,
		rn->ngroups);
	*out = rn;
	return 0;

err_close_ep:
	applier_stop(rn);
	qfs_net_endpoint_close(rn->ep);
err_destroy_locks:
	pthread_cond_destroy(&rn->done_cv);
	pthread_cond_destroy(&rn->work_cv);
	pthread_mutex_destroy(&rn->mu);
	pthread_mutex_destroy(&rn->round_mu);
err_free:
	rnode_free(rn);
	return rc;
}

/* See rnode.h. */
struct qfs_net_ep *qfs_rnode_ep(struct qfs_rnode *rn)
{
	return rn->ep;
}

/* See rnode.h. */
void qfs_rnode_close(struct qfs_rnode *rn)
{
	if (!rn)
		return;
	pthread_mutex_lock(&rn->mu);
	rn->closing = 1;
	pthread_cond_signal(&rn->work_cv);
	pthread_mutex_unlock(&rn->mu);
	pthread_join(rn->io, NULL);
	applier_stop(rn);
	qfs_net_endpoint_close(rn->ep);
	QFS_LOG(QFS_LOG_INFO, "rnode close node=%u", rn->id);
	pthread_cond_destroy(&rn->done_cv);
	pthread_cond_destroy(&rn->work_cv);
	pthread_mutex_destroy(&rn->mu);
	pthread_mutex_destroy(&rn->round_mu);
	rnode_free(rn);
}

/* See rnode.h.  Files are written on the caller's thread; the group becomes
 * visible to the I/O thread only once complete.  Concurrent creates of one
 * group are not supported (the router creates each group once): the loser
 * gets -EEXIST but both wrote the same files. */
static int group_create(struct qfs_rnode *rn, qfs_group_t group,
			const struct qfs_paxos_config *members, qfs_ballot_t promised, int join,
			const struct qfs_paxos_floor *floor);

int qfs_rnode_group_create(struct qfs_rnode *rn, qfs_group_t group,
			   const struct qfs_paxos_config *members)
{
	return group_create(rn, group, members, 0, 0, NULL);
}

/* qfs_rnode_group_create, and when promised is not 0 the promise file
 * written (durably) before the group is loaded; join: members need not
 * hold this node (qfs_rnode_group_join), 2: as a log replica
 * (qfs_rnode_group_join_log); floor (may be NULL): the vote floor file,
 * written (durably) before the group is loaded too, so the replica never
 * runs without it. */
static int group_create(struct qfs_rnode *rn, qfs_group_t group,
			const struct qfs_paxos_config *members, qfs_ballot_t promised, int join,
			const struct qfs_paxos_floor *floor)
{
	char path[PATH_MAX], tmp[PATH_MAX], text[128];
	struct group *g;
	int rc;

	if (!cfg_valid(members, join ? 0 : rn->id))
		return -EINVAL;
	if ((g = group_get(rn, group))) {
		group_put(rn, g);
		return -EEXIST;
	}
	pthread_mutex_lock(&rn->mu);
	rc = rn->ngroups == QFS_RNODE_MAX_GROUPS ? -ENOSPC : 0;
	pthread_mutex_unlock(&rn->mu);
	if (rc)
		return rc;
	members_text_kind(members, join == 2 || qfs_paxos_config_is_log(members, rn->id), text,
			  sizeof(text));
	if ((rc = qfs_node_path_fmt(path, sizeof(path), "%s/groups/%016" PRIx64, rn->dir, group)) ||
	    (rc = qfs_node_path_fmt(tmp, sizeof(tmp), "%s/groups/%016" PRIx64 ".tmp", rn->dir, group)))
		return rc;
	{
		/* Leftovers of a drop that failed part-way (or of an earlier
		 * incarnation): the new replica starts empty. */
		char wdir[PATH_MAX], prom[PATH_MAX], flo[PATH_MAX];
		struct stat sb;

		if ((rc = qfs_node_path_fmt(wdir, sizeof(wdir), "%s/wal/%016" PRIx64, rn->dir, group)) ||
		    (rc = qfs_node_path_fmt(prom, sizeof(prom), "%s.promise", path)) ||
		    (rc = qfs_node_path_fmt(flo, sizeof(flo), "%s.floor", path)))
			return rc;
		if ((stat(wdir, &sb) == 0 || stat(prom, &sb) == 0 || stat(flo, &sb) == 0) &&
		    (rc = finish_drop(rn, group)))
			return rc;
	}
	if (promised) {
		/* A rebuilt replica keeps its promise (Paxos amnesia of the
		 * log only); without a members file the next create or open
		 * treats it as a leftover. */
		char gdir[PATH_MAX], prom[PATH_MAX], ptmp[PATH_MAX], ptext[64];

		snprintf(ptext, sizeof(ptext), "promised %" PRIu64 "\n", promised);
		if ((rc = qfs_node_path_fmt(gdir, sizeof(gdir), "%s/groups", rn->dir)) ||
		    (rc = qfs_node_path_fmt(prom, sizeof(prom), "%s.promise", path)) ||
		    (rc = qfs_node_path_fmt(ptmp, sizeof(ptmp), "%s.promise.tmp", path)) ||
		    (rc = qfs_node_file_put(gdir, ptmp, prom, ptext)))
			return rc;
	}
	if (floor && floor->lsn) {
		char gdir[PATH_MAX], fpath[PATH_MAX], ftmp[PATH_MAX], ftext[80];

		snprintf(ftext, sizeof(ftext), "floor %" PRIu64 " %" PRIu64 "\n", floor->lsn,
			 floor->ballot);
		if ((rc = qfs_node_path_fmt(gdir, sizeof(gdir), "%s/groups", rn->dir)) ||
		    (rc = qfs_node_path_fmt(fpath, sizeof(fpath), "%s.floor", path)) ||
		    (rc = qfs_node_path_fmt(ftmp, sizeof(ftmp), "%s.floor.tmp", path)) ||
		    (rc = qfs_node_file_put(gdir, ftmp, fpath, ftext)))
			return rc;
	}
	if ((rc = group_load(rn, group, members, &g)))
		return rc;
	g->logrep = join == 2 || qfs_paxos_config_is_log(members, rn->id);
	{
		char gdir[PATH_MAX];

		if ((rc = qfs_node_path_fmt(gdir, sizeof(gdir), "%s/groups", rn->dir)) ||
		    (rc = qfs_node_file_put(gdir, tmp, path, text))) {
			group_free(g);
			return rc;
		}
	}
	pthread_mutex_lock(&rn->mu);
	for (size_t i = 0; i < rn->ngroups && !rc; i++)
		rc = rn->groups[i]->id == group ? -EEXIST : 0; /* a racing create won */
	if (!rc && rn->ngroups == QFS_RNODE_MAX_GROUPS)
		rc = -ENOSPC;
	if (!rc) {
		rn->groups[rn->ngroups++] = g;
		/* its first tick now (the preferred member of a new group
		 * campaigns on it): a signal alone does not end the I/O
		 * thread's wait, which runs until its old deadline (up to
		 * 1 s) unless wake is set; io_next too: a direct round
		 * (propose_direct) takes wake for frames and may clear it
		 * before the I/O thread looks, but only lowers io_next */
		rn->wake = 1;
		rn->io_next = 0;
		pthread_cond_signal(&rn->work_cv);
	}
	pthread_mutex_unlock(&rn->mu);
	if (rc) {
		group_free(g);
		return rc;
	}
	QFS_LOG(QFS_LOG_INFO, "rnode group create group=%016" PRIx64 " node=%u members=%u "
		"promised=%" PRIu64 " floor=%" PRIu64, group, rn->id, members->n, promised,
		floor ? floor->lsn : 0);
	return 0;
}

/* See rnode.h.  The proposal lives on this stack until the I/O thread set
 * done; the I/O thread enforces the deadline, this thread only waits. */
static int propose_type(struct qfs_rnode *rn, qfs_group_t group, uint8_t type, const void *txn,
			size_t len, uint32_t timeout_ms, int *result, uint32_t *leader,
			const struct qfs_paxos_config *from, qfs_ballot_t from_ballot);

int qfs_rnode_propose(struct qfs_rnode *rn, qfs_group_t group, const void *txn, size_t len,
		      uint32_t timeout_ms, int *result, uint32_t *leader)
{
	return propose_type(rn, group, QFS_REPL_ENTRY_TXN, txn, len, timeout_ms, result, leader,
			    NULL, 0);
}

/* See rnode.h. */
int qfs_rnode_propose_members(struct qfs_rnode *rn, qfs_group_t group,
			      const struct qfs_paxos_config *members, uint32_t timeout_ms, uint32_t *leader)
{
	uint8_t buf[QFS_PAXOS_CONFIG_MAX_BYTES];
	size_t len;
	int result = 0;

	if (!cfg_valid(members, 0))
		return -EINVAL;
	len = qfs_paxos_config_encode(members, buf);
	return propose_type(rn, group, QFS_REPL_ENTRY_CONFIG, buf, len, timeout_ms, &result, leader,
			    NULL, 0);
}

/* See rnode.h. */
int qfs_rnode_propose_members_if(struct qfs_rnode *rn, qfs_group_t group,
				 const struct qfs_paxos_config *from, qfs_ballot_t ballot,
				 const struct qfs_paxos_config *members, uint32_t timeout_ms,
				 uint32_t *leader)
{
	uint8_t buf[QFS_PAXOS_CONFIG_MAX_BYTES];
	size_t len;
	int result = 0;

	if (!from || !cfg_valid(members, 0))
		return -EINVAL;
	len = qfs_paxos_config_encode(members, buf);
	return propose_type(rn, group, QFS_REPL_ENTRY_CONFIG, buf, len, timeout_ms, &result, leader,
			    from, ballot);
}

/* See rnode.h. */
int qfs_rnode_group_join(struct qfs_rnode *rn, qfs_group_t group, const struct qfs_paxos_config *members,
			 const struct qfs_paxos_floor *floor)
{
	if (!cfg_valid(members, 0) || cfg_valid(members, rn->id))
		return -EINVAL;
	return group_create(rn, group, members, floor ? floor->promised : 0, 1, floor);
}

/* See rnode.h. */
int qfs_rnode_join_floor(struct qfs_rnode *rn, qfs_group_t group, uint32_t id,
			 struct qfs_paxos_floor *out, uint32_t *leader)
{
	struct group *g = group_get(rn, group);
	int rc;

	if (!g)
		return QFS_ENOGROUP;
	pthread_mutex_lock(&g->mu);
	rc = g->stopped || g->dropped ? QFS_ESTOPPED : qfs_paxos_join_floor(&g->px, id, now_ms(), out);
	if (leader)
		*leader = rc == -EREMOTE ? g->leader : 0;
	pthread_mutex_unlock(&g->mu);
	group_put(rn, g);
	return rc;
}

/* See rnode.h.  One look under g->mu: the floor's checks (leader, lease,
 * barrier, id not in the committed configuration), then nothing in flight
 * and id not in the newest one. */
int qfs_rnode_nonmember(struct qfs_rnode *rn, qfs_group_t group, uint32_t id, uint32_t *leader)
{
	struct group *g = group_get(rn, group);
	struct qfs_paxos_floor fl;
	int rc;

	if (!g)
		return QFS_ENOGROUP;
	pthread_mutex_lock(&g->mu);
	rc = g->stopped || g->dropped ? QFS_ESTOPPED : qfs_paxos_join_floor(&g->px, id, now_ms(), &fl);
	if (rc == 0 && cfg_valid(&g->px.cfg, id))
		rc = -EINVAL; /* being added */
	else if (rc == 0 && g->px.ncfgs)
		rc = -EBUSY;
	if (leader)
		*leader = rc == -EREMOTE ? g->leader : 0;
	pthread_mutex_unlock(&g->mu);
	group_put(rn, g);
	return rc;
}

/* See rnode.h. */
int qfs_rnode_group_joining(struct qfs_rnode *rn, qfs_group_t group)
{
	struct group *g = group_get(rn, group);
	int r;

	if (!g)
		return 0;
	pthread_mutex_lock(&g->mu);
	r = g->px.floor_lsn > g->px.applied;
	pthread_mutex_unlock(&g->mu);
	group_put(rn, g);
	return r;
}

/* See rnode.h. */
int qfs_rnode_group_join_log(struct qfs_rnode *rn, qfs_group_t group,
			     const struct qfs_paxos_config *members, const struct qfs_paxos_floor *floor)
{
	if (!cfg_valid(members, 0) || cfg_valid(members, rn->id))
		return -EINVAL;
	return group_create(rn, group, members, floor ? floor->promised : 0, 2, floor);
}

/* See rnode.h.  The leader's view of its peers (g->mu). */
int qfs_rnode_group_health(struct qfs_rnode *rn, qfs_group_t group, struct qfs_rnode_health *out)
{
	struct group *g = group_get(rn, group);
	uint64_t now = now_ms();

	if (!g)
		return QFS_ENOGROUP;
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&g->mu);
	out->leader = !g->stopped && !g->dropped && g->px.role == QFS_PAXOS_LEADER;
	out->cfg = g->px.cfg;
	out->applied_cfg = g->cfg;
	out->changing = g->px.ncfgs > 0;
	for (uint32_t i = 0; out->leader && i < g->px.npeers; i++) {
		const struct qfs_paxos_peer *pe = &g->px.peers[i];
		uint64_t since = pe->ack_ms ? pe->ack_ms : g->px.lead_since;

		out->ids[out->n] = pe->id;
		out->silent_ms[out->n] = now > since ? now - since : 0;
		out->match[out->n] = pe->match;
		out->answered[out->n] = pe->ack_ms != 0;
		out->n++;
	}
	out->last = g->px.last;
	out->ballot = g->px.ballot;
	pthread_mutex_unlock(&g->mu);
	group_put(rn, g);
	return 0;
}

/* See rnode.h.  The members this replica applied last. */
int qfs_rnode_group_members(struct qfs_rnode *rn, qfs_group_t group, struct qfs_paxos_config *out)
{
	struct group *g = group_get(rn, group);

	if (!g)
		return QFS_ENOGROUP;
	pthread_mutex_lock(&g->mu);
	*out = g->cfg;
	pthread_mutex_unlock(&g->mu);
	group_put(rn, g);
	return 0;
}

static int propose_type(struct qfs_rnode *rn, qfs_group_t group, uint8_t type, const void *txn,
			size_t len, uint32_t timeout_ms, int *result, uint32_t *leader,
			const struct qfs_paxos_config *from, qfs_ballot_t from_ballot)
{
	struct proposal p;

	if ((!txn && len) || len > RNODE_PAYLOAD_MAX || !result)
		return -EINVAL;
	memset(&p, 0, sizeof(p));
	p.group = group;
	p.txn = txn;
	p.len = len;
	p.type = type;
	p.from = from;
	p.from_ballot = from_ballot;
	p.deadline_ms = now_ms() + timeout_ms;
	pthread_cond_init(&p.cv, NULL);
	pthread_mutex_lock(&rn->mu);
	if (rn->closing) {
		pthread_mutex_unlock(&rn->mu);
		pthread_cond_destroy(&p.cv);
		return QFS_ESTOPPED;
	}
	if (rn->returning)
		rn->returning--; /* (one of) the proposers answered last, back */
	if (rn->arrived < UINT32_MAX)
		rn->arrived++;
	if (!rn->qhead && !rn->rhead && !rn->io_waiting && !gather(rn) &&
	    pthread_mutex_trylock(&rn->round_mu) == 0) {
		propose_direct(rn, &p);
	} else {
		p.queued = 1; /* answered through the futex word (answer) */
		if (rn->qtail)
			rn->qtail->next = &p;
		else
			rn->qhead = &p;
		rn->qtail = &p;
		rn->qlen++;
		pthread_mutex_unlock(&rn->mu);
		pthread_cond_signal(&rn->work_cv); /* after the unlock: see on_wake */
		while (!__atomic_load_n(&p.done, __ATOMIC_ACQUIRE))
			(void)syscall(SYS_futex, &p.done, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
		goto answered;
	}
	while (!p.done)
		pthread_cond_wait(&p.cv, &rn->mu);
	pthread_mutex_unlock(&rn->mu);
answered:
	pthread_cond_destroy(&p.cv);
	if (p.rc == -EREMOTE && leader)
		*leader = p.leader;
	if (p.rc == 0)
		*result = p.result;
	return p.rc;
}

/* See rnode.h.  Any thread; no node lock held during the store read. */
int qfs_rnode_get(struct qfs_rnode *rn, qfs_group_t group, const uint8_t *key, size_t key_len,
		  void **val, size_t *val_len)
{
	struct qfs_val v = { 0 };
	int rc = qfs_rnode_get_val(rn, group, key, key_len, &v);

	return rc ? rc : qfs_val_copy_out(&v, val, val_len);
}

/* See rnode.h.  As qfs_rnode_get; a pinned value outlives the lock (a
 * RocksDB pinned slice survives deletes and compactions of its key). */
int qfs_rnode_get_val(struct qfs_rnode *rn, qfs_group_t group, const uint8_t *key, size_t key_len,
		      struct qfs_val *out)
{
	struct group *g = group_get(rn, group);
	int rc;

	if (!g)
		return QFS_ENOGROUP;
	if (g->logrep) { /* it holds no store: the leader serves */
		group_put(rn, g);
		return -EREMOTE;
	}
	pthread_rwlock_rdlock(&g->rw);
	rc = g->dropped ? QFS_ENOGROUP : qfs_store_get_val(rn->store, group, key, key_len, out);
	pthread_rwlock_unlock(&g->rw);
	group_put(rn, g);
	return rc;
}

/* See rnode.h.  Any thread; one RocksDB snapshot, under g->rw shared (cb
 * must not drop the group or propose on this node). */
int qfs_rnode_scan(struct qfs_rnode *rn, qfs_group_t group, const uint8_t *lo, size_t lo_len,
		   const uint8_t *hi, size_t hi_len, qfs_store_scan_cb cb, void *arg)
{
	struct group *g = group_get(rn, group);
	int rc;

	if (!g)
		return QFS_ENOGROUP;
	if (g->logrep) { /* it holds no store: the leader serves */
		group_put(rn, g);
		return -EREMOTE;
	}
	pthread_rwlock_rdlock(&g->rw);
	rc = g->dropped ? QFS_ENOGROUP
			: qfs_store_scan(rn->store, group, lo, lo_len, hi, hi_len, cb, arg);
	pthread_rwlock_unlock(&g->rw);
	group_put(rn, g);
	return rc;
}

/* 1 if g's leader machine only waits for its apply to serve strong reads:
 * it leads with a lease, its barrier is committed, and what it committed
 * is durable here but not yet applied (the round's thread applies it next,
 * without waiting for the network or a sync).  g->mu held. */
static int apply_behind(const struct group *g, uint64_t now)
{
	const struct qfs_paxos *px = &g->px;

	return !g->stopped && !g->dropped && px->role == QFS_PAXOS_LEADER && now < px->lease_until &&
	       px->commit >= px->barrier && px->applied < px->commit && px->commit <= px->persisted;
}

/* See rnode.h.  Asks the machine under g->mu with the monotonic clock; waits
 * (on g->applied_cv, at most RNODE_APPLY_WAIT_MS) while only the apply of
 * entries committed and durable here is missing: a strong read that came
 * during another batch's apply then waits the apply's microseconds instead
 * of the router's poll step (doc/rnode.md section 2).  The round's thread
 * never waits (it is the one that applies). */
int qfs_rnode_can_read_strong(struct qfs_rnode *rn, qfs_group_t group)
{
	struct group *g = group_get(rn, group);
	uint64_t now, end;
	int ok;

	if (!g)
		return 0;
	pthread_mutex_lock(&g->mu);
	now = now_ms();
	ok = !g->stopped && !g->dropped && qfs_paxos_can_read_local(&g->px, now);
	if (!ok && !round_held && apply_behind(g, now)) {
		struct timespec ts;

		end = now + RNODE_APPLY_WAIT_MS;
		qfs_clock_deadline(CLOCK_MONOTONIC, RNODE_APPLY_WAIT_MS, &ts);
		g->apply_waiters++;
		while (!ok && now < end && apply_behind(g, now)) {
			pthread_cond_timedwait(&g->applied_cv, &g->mu, &ts);
			now = now_ms();
			ok = !g->stopped && !g->dropped && qfs_paxos_can_read_local(&g->px, now);
		}
		g->apply_waiters--;
	}
	pthread_mutex_unlock(&g->mu);
	group_put(rn, g);
	return ok;
}

/* See rnode.h.  The leader of the last update (g->mu). */
uint32_t qfs_rnode_leader(struct qfs_rnode *rn, qfs_group_t group)
{
	struct group *g = group_get(rn, group);
	uint32_t l;

	if (!g)
		return 0;
	pthread_mutex_lock(&g->mu);
	l = g->stopped || g->dropped ? 0 : g->leader;
	pthread_mutex_unlock(&g->mu);
	group_put(rn, g);
	return l;
}

/* See rnode.h.  Reads each machine's fields under g->mu (a consistent
 * snapshot of one step boundary). */
void qfs_rnode_status(struct qfs_rnode *rn, struct qfs_buf *out)
{
	struct group *gs[QFS_RNODE_MAX_GROUPS];
	size_t ng;

	pthread_mutex_lock(&rn->mu);
	ng = groups_ref(rn, gs);
	pthread_mutex_unlock(&rn->mu);
	for (size_t i = 0; i < ng; i++) {
		struct group *g = gs[i];
		char line[512];
		int len = 0;

		pthread_mutex_lock(&g->mu);
		if (!g->dropped)
			len = snprintf(line, sizeof(line),
				       "group %016" PRIx64 " node %u az %s role %s ballot %" PRIu64
				       " leader %u last %" PRIu64 " durable %" PRIu64 " commit %" PRIu64
				       " applied %" PRIu64 "%s\n",
				       g->id, rn->id, rn->az, role_name(g), g->px.ballot, g->leader,
				       g->px.last, g->px.persisted, g->px.commit, g->px.applied,
				       g->logrep ? " kind log" : "");
		pthread_mutex_unlock(&g->mu);
		if (len > 0)
			qfs_buf_put(out, line, (size_t)len < sizeof(line) ? (size_t)len : sizeof(line) - 1);
	}
	groups_put(rn, gs, ng);
}

/* Queue r for the I/O thread and wait for its answer.  QFS_ESTOPPED if
 * the node is closing. */
static int io_submit(struct qfs_rnode *rn, struct ioreq *r)
{
	pthread_mutex_lock(&rn->mu);
	if (rn->closing) {
		pthread_mutex_unlock(&rn->mu);
		return QFS_ESTOPPED;
	}
	if (rn->rtail)
		rn->rtail->next = r;
	else
		rn->rhead = r;
	rn->rtail = r;
	pthread_cond_signal(&rn->work_cv);
	while (!r->done)
		pthread_cond_wait(&rn->done_cv, &rn->mu);
	pthread_mutex_unlock(&rn->mu);
	return r->rc;
}

/* See rnode.h.  Carried out by the I/O thread (io_drop); the caller blocks
 * until it is done.  Besides the errors of rnode.h: QFS_ESTOPPED (closing);
 * -errno of the members unlink leaves the group as it was; -errno or -EIO
 * of a later step leaves the group gone from the node and its remains on
 * disk, which the next open or create of that id removes. */
int qfs_rnode_group_drop(struct qfs_rnode *rn, qfs_group_t group)
{
	struct ioreq r = { .type = IOREQ_DROP, .group = group };

	return io_submit(rn, &r);
}

/* See rnode.h. */
int qfs_rnode_elect(struct qfs_rnode *rn)
{
	struct ioreq r = { .type = IOREQ_ELECT };

	return io_submit(rn, &r);
}

/* See rnode.h.  The promise is read before the drop removes the file. */
int qfs_rnode_group_rebuild(struct qfs_rnode *rn, qfs_group_t group,
			    const struct qfs_paxos_config *members)
{
	char text[64];
	qfs_ballot_t promised = 0;
	struct group *g;
	int untrusted, rc;

	if (!cfg_valid(members, rn->id))
		return -EINVAL;
	if (!(g = group_get(rn, group)))
		return QFS_ENOGROUP;
	pthread_mutex_lock(&g->mu);
	untrusted = g->stopped && g->untrusted && !g->dropped;
	pthread_mutex_unlock(&g->mu);
	if (untrusted && qfs_node_file_get(g->promise_path, text, sizeof(text)) == 0 &&
	    strncmp(text, "promised ", 9) == 0) {
		char *end;
		unsigned long long v = strtoull(text + 9, &end, 10);

		if (strcmp(end, "\n") == 0)
			promised = v;
	}
	group_put(rn, g);
	if (!untrusted)
		return -EINVAL;
	if ((rc = qfs_rnode_group_drop(rn, group)))
		return rc;
	rc = group_create(rn, group, members, promised, 0, NULL);
	QFS_LOG(rc ? QFS_LOG_ERR : QFS_LOG_INFO, "rnode group rebuilt empty group=%016" PRIx64
		" node=%u promised=%" PRIu64 " err=\"%s\"", group, rn->id, promised,
		rc ? qfs_strerror(rc) : "-");
	return rc;
}

/* See rnode.h.  Carried out by the I/O thread (io_distrust). */
int qfs_rnode_group_distrust(struct qfs_rnode *rn, qfs_group_t group)
{
	struct ioreq r = { .type = IOREQ_DISTRUST, .group = group };

	return io_submit(rn, &r);
}

/* See rnode.h.  Carried out by the I/O thread (io_seal). */
int qfs_rnode_wal_seal(struct qfs_rnode *rn, qfs_group_t group)
{
	struct ioreq r = { .type = IOREQ_SEAL, .group = group };

	return io_submit(rn, &r);
}

/* See rnode.h.  Takes rn->mu and g->mu (not together). */
int qfs_rnode_group_exists(struct qfs_rnode *rn, qfs_group_t group)
{
	struct group *g = group_get(rn, group);
	int found;

	if (!g)
		return 0;
	found = !group_dropped(g);
	group_put(rn, g);
	return found;
}

static int gid_cmp(const void *a, const void *b)
{
	qfs_group_t x = *(const qfs_group_t *)a, y = *(const qfs_group_t *)b;

	return x < y ? -1 : x > y;
}

/* See rnode.h.  cb runs on a sorted copy of the ids, no lock held (it may
 * call the node, even drop). */
void qfs_rnode_groups(struct qfs_rnode *rn, void (*cb)(qfs_group_t group, void *arg), void *arg)
{
	qfs_group_t ids[QFS_RNODE_MAX_GROUPS];
	size_t n;

	pthread_mutex_lock(&rn->mu);
	n = rn->ngroups;
	for (size_t i = 0; i < n; i++)
		ids[i] = rn->groups[i]->id;
	pthread_mutex_unlock(&rn->mu);
	qsort(ids, n, sizeof(ids[0]), gid_cmp);
	for (size_t i = 0; i < n; i++)
		cb(ids[i], arg);
}

/* See rnode.h.  One consistent read under g->mu (px between two steps; the
 * WAL figures as of the I/O thread's last WAL change). */
int qfs_rnode_group_info(struct qfs_rnode *rn, qfs_group_t group, struct qfs_rnode_ginfo *out)
{
	struct group *g = group_get(rn, group);
	struct qfs_rnode_ginfo gi;
	int rc = 0;

	if (!g)
		return QFS_ENOGROUP;
	memset(&gi, 0, sizeof(gi));
	pthread_mutex_lock(&g->mu);
	if (g->dropped) {
		rc = QFS_ENOGROUP;
	} else {
		gi.stopped = g->stopped;
		gi.err = g->err;
		gi.untrusted = g->untrusted;
		gi.role = g->px.role;
		gi.leader = g->leader;
		gi.preferred = qfs_paxos_preferred(g->id, &g->cfg);
		gi.ballot = g->px.ballot;
		gi.last = g->px.last;
		gi.durable = g->px.persisted;
		gi.commit = g->px.commit;
		gi.applied = g->px.applied;
		gi.first = g->wal_first;
		gi.wal_bytes = g->wal_bytes;
		gi.snap_in_chunks = g->sin_chunks;
		gi.snap_in_dropped = g->sin_dropped;
		gi.snap_in_peak = qfs_store_install_peak(rn->store);
	}
	pthread_mutex_unlock(&g->mu);
	group_put(rn, g);
	if (!rc)
		*out = gi;
	return rc;
}

/* Check that g may be read for the archive hooks (g->mu). */
static int group_usable(struct group *g)
{
	int rc;

	pthread_mutex_lock(&g->mu);
	rc = g->dropped ? QFS_ENOGROUP : g->stopped ? QFS_ESTOPPED : 0;
	pthread_mutex_unlock(&g->mu);
	return rc;
}

/* See rnode.h.  The applied LSN is the store's (what survives a crash only
 * after qfs_store_sync: wal_release syncs before it deletes).  Also store
 * read errors (-EIO, QFS_ECORRUPT); outputs set only on 0. */
int qfs_rnode_wal_info(struct qfs_rnode *rn, qfs_group_t group, char *dir, size_t dir_len,
		       qfs_lsn_t *applied)
{
	struct group *g = group_get(rn, group);
	qfs_lsn_t a = 0;
	int rc;

	if (!g)
		return QFS_ENOGROUP;
	pthread_rwlock_rdlock(&g->rw);
	rc = group_usable(g);
	if (!rc && strlen(g->waldir) >= dir_len)
		rc = -ENAMETOOLONG;
	if (!rc)
		rc = qfs_store_applied(rn->store, group, &a);
	if (!rc) {
		memcpy(dir, g->waldir, strlen(g->waldir) + 1);
		*applied = a;
	}
	pthread_rwlock_unlock(&g->rw);
	group_put(rn, g);
	return rc;
}

/* See rnode.h.  The applied LSN is read before the store sync, so every
 * record whose segment goes is in the synced store; the deletion and the
 * COMPACTED step run on the I/O thread (io_release), which owns the WAL and
 * the machine.  Also QFS_ESTOPPED while closing. */
int qfs_rnode_wal_release(struct qfs_rnode *rn, qfs_group_t group, qfs_lsn_t lsn)
{
	struct ioreq r = { .type = IOREQ_RELEASE, .group = group };
	struct group *g = group_get(rn, group);
	qfs_lsn_t applied = 0;
	int rc;

	if (!g)
		return QFS_ENOGROUP;
	pthread_rwlock_rdlock(&g->rw);
	rc = group_usable(g);
	if (!rc)
		rc = qfs_store_applied(rn->store, group, &applied);
	pthread_rwlock_unlock(&g->rw);
	group_put(rn, g);
	if (rc)
		return rc;
	if ((rc = qfs_store_sync(rn->store)))
		return rc;
	r.lsn = lsn < applied ? lsn : applied; /* the applied entry stays (io_release) */
	return io_submit(rn, &r);
}

/* See rnode.h.  Plus QFS_ENOGROUP, QFS_ESTOPPED; cb runs under g->rw
 * shared (it must not drop the group or propose on this node). */
int qfs_rnode_snapshot_scan(struct qfs_rnode *rn, qfs_group_t group, qfs_lsn_t *applied,
			    qfs_store_scan_cb cb, void *arg)
{
	struct group *g = group_get(rn, group);
	int rc;

	if (!g)
		return QFS_ENOGROUP;
	pthread_rwlock_rdlock(&g->rw);
	rc = group_usable(g);
	if (!rc)
		rc = qfs_store_snapshot_scan(rn->store, group, applied, cb, arg);
	pthread_rwlock_unlock(&g->rw);
	group_put(rn, g);
	return rc;
}

/* See rnode.h. */
int qfs_rnode_store_mem(struct qfs_rnode *rn, uint64_t *memtables, uint64_t *cache)
{
	return qfs_store_mem(rn->store, memtables, cache);
}

/* See rnode.h.  RocksDB is thread-safe; close is not concurrent (rnode.h). */
int qfs_rnode_store_compact(struct qfs_rnode *rn, uint64_t room)
{
	return qfs_store_compact(rn->store, room);
}

/* See rnode.h.  RocksDB is thread-safe; the collector runs on one
 * thread at a time (the cell's keeper). */
int qfs_rnode_store_vlog_gc(struct qfs_rnode *rn, struct qfs_store_vlog_stat *st)
{
	return qfs_store_vlog_gc(rn->store, 0, st);
}

/* See rnode.h.  Stored under rn->mu; the I/O thread reads it each round. */
void qfs_rnode_set_seal_hook(struct qfs_rnode *rn, void (*cb)(qfs_group_t group, void *arg),
			     void *arg)
{
	pthread_mutex_lock(&rn->mu);
	rn->seal_hook = cb;
	rn->seal_hook_arg = arg;
	pthread_mutex_unlock(&rn->mu);
	/* The I/O thread copies the hook at the start of a round (under
	 * round_mu) and may still call the old one until that round ends:
	 * wait for it, so that the caller may free the old hook's argument
	 * once this returns (the archive at unmount: ASan caught a seal hook
	 * kicking an archive already freed).  Never called inside a round. */
	pthread_mutex_lock(&rn->round_mu);
	pthread_mutex_unlock(&rn->round_mu);
}

/* See rnode.h.  Relaxed counters; any thread. */
void qfs_rnode_stat(struct qfs_rnode *rn, struct qfs_rnode_stat *out)
{
	out->proposals = __atomic_load_n(&rn->st_proposals, __ATOMIC_RELAXED);
	out->batches = __atomic_load_n(&rn->st_batches, __ATOMIC_RELAXED);
	out->fsyncs = __atomic_load_n(&rn->st_fsyncs, __ATOMIC_RELAXED);
	out->frames_in = __atomic_load_n(&rn->st_in, __ATOMIC_RELAXED);
	out->frames_out = __atomic_load_n(&rn->st_out, __ATOMIC_RELAXED);
	out->direct = __atomic_load_n(&rn->st_direct, __ATOMIC_RELAXED);
	out->beside = __atomic_load_n(&rn->st_beside, __ATOMIC_RELAXED);
}

/* See rnode.h.  Queued as IOREQ_SNAP; the I/O thread answers it at once or
 * parks it on the group until apply_cb reaches lsn (snap_wait_check fails
 * it on timeout, stop, drop, close or when applied jumps past lsn). */
int qfs_rnode_snap_at(struct qfs_rnode *rn, qfs_group_t group, qfs_lsn_t lsn, uint32_t timeout_ms,
		      struct qfs_store_snap **out)
{
	struct ioreq r = { .type = IOREQ_SNAP, .group = group, .lsn = lsn };
	int rc;

	r.deadline_ms = qfs_clock_mono_ms() + timeout_ms;
	rc = io_submit(rn, &r);
	if (rc == 0)
		*out = r.snap;
	return rc;
}

/* See rnode.h. */
int qfs_rnode_verify(struct qfs_rnode *rn)
{
	return qfs_store_verify(rn->store);
}

/* See rnode.h.  Carried out by the I/O thread, which owns the WAL. */
int qfs_rnode_wal_verify(struct qfs_rnode *rn, qfs_group_t group)
{
	struct ioreq r = { .type = IOREQ_WAL_VERIFY, .group = group };

	return io_submit(rn, &r);
}
