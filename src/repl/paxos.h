/*
 * paxos.h - Multi-Paxos for one replication group as a pure state machine
 * (protocol, wire format, driver contract and safety argument: doc/paxos.md).
 *
 * The driver feeds events (a proposal, a received message, "persisted up to
 * LSN", "applied up to LSN", log entries it read on request, a snapshot it
 * installed, a tick) to qfs_paxos_step() together with its clock, and gets an
 * update: a truncation point and entries to append to the log, a promised
 * ballot to make durable, messages to send once all of that is durable, log
 * ranges to read and feed back, a snapshot to send, the LSN up to which
 * entries may be applied, the leader and its lease, and when to tick next.
 *
 * No I/O, no clock, no threads, no allocation, no globals: everything lives
 * in struct qfs_paxos, which the driver embeds; its PRNG (election timeouts)
 * is seeded by the driver.  The update points into that struct and into the
 * event's buffers: handle it before the next step and before releasing the
 * event's data.  Decisions are reported through an optional tracer callback;
 * the core never logs.
 *
 * Entries reuse struct qfs_repl_entry and its WAL framing (repl/repl.h).
 * The driver is src/node/rnode.c (doc/rnode.md); overview of the layers:
 * doc/replication.md.
 */
#ifndef QFS_REPL_PAXOS_H
#define QFS_REPL_PAXOS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/qfs.h"
#include "repl/repl.h"

#define QFS_PAXOS_MAX_NODES 5   /* members of one configuration (the cell uses 3, or 1) */
#define QFS_PAXOS_MAX_BATCH 64  /* entries in one PROPOSE, accept or persist list */
#define QFS_PAXOS_MAX_MSGS 16   /* messages in one update */
#define QFS_PAXOS_MAX_RUNS 32   /* ballot changes kept above the commit point */
#define QFS_PAXOS_WINDOW 1024   /* leader: at most this many entries above commit */
#define QFS_PAXOS_MAX_CFGS 8    /* CONFIG entries kept above the commit point */
#define QFS_PAXOS_CONFIG_MAX_BYTES (4 + 4 * QFS_PAXOS_MAX_NODES) /* CONFIG entry data */

/* A ballot is (round, node id), totally ordered as round first, then id. */
typedef uint64_t qfs_ballot_t;
#define QFS_PAXOS_BALLOT(round, node) (((uint64_t)(round) << 16) | ((node) & 0xffffu))
static inline uint64_t qfs_paxos_ballot_round(qfs_ballot_t b) { return b >> 16; }
static inline uint32_t qfs_paxos_ballot_node(qfs_ballot_t b) { return (uint32_t)(b & 0xffffu); }

/* The group's voting members, an explicit list so that a configuration
 * entry in the log can replace it later.  Node ids are 1..65535, distinct. */
struct qfs_paxos_config {
	uint32_t n;                          /* members, 1..QFS_PAXOS_MAX_NODES */
	uint32_t ids[QFS_PAXOS_MAX_NODES];
	uint32_t log;                        /* bit i: ids[i] is a log replica (an
					      * acceptor that keeps the log only:
					      * never campaigns, never preferred;
					      * doc/paxos.md section 7a); 0: all
					      * storage replicas */
};

/* In a CONFIG entry (and the member lists of the node RPCs), a log
 * replica's id word carries this bit; a release without log replicas
 * refuses such an entry as corrupt (id above 65535). */
#define QFS_PAXOS_LOG_FLAG 0x80000000u

/* 1 if id is a log replica in cfg (a member whose bit is set). */
int qfs_paxos_config_is_log(const struct qfs_paxos_config *cfg, uint32_t id);

/* Membership changes (doc/paxos.md section 7).  A CONFIG entry's data is
 * the new member list: be32 n | n x be32 id (id | QFS_PAXOS_LOG_FLAG for a
 * log replica: section 7a).  A replica uses the newest
 * configuration in its log, committed or not (it takes effect when
 * appended, and a truncation that removes it brings the previous one
 * back); a leader proposes one only alone in its batch, when it differs
 * from the current one by exactly one member added or removed, once its
 * barrier committed and no other CONFIG entry is uncommitted. */

/* Encode cfg into buf[QFS_PAXOS_CONFIG_MAX_BYTES]; returns the length. */
size_t qfs_paxos_config_encode(const struct qfs_paxos_config *cfg, uint8_t *buf);

/* Decode CONFIG entry data into *out: 0, or QFS_ECORRUPT (bad length, no
 * member or more than QFS_PAXOS_MAX_NODES, an id 0 or above 65535 or
 * twice); *out untouched then. */
int qfs_paxos_config_decode(const void *data, size_t len, struct qfs_paxos_config *out);

/* 1 if b is a differs from a by exactly one member added or removed (the
 * order of ids aside), so every majority of a meets every majority of b;
 * the members both hold keep their kind (storage or log). */
int qfs_paxos_config_one_change(const struct qfs_paxos_config *a, const struct qfs_paxos_config *b);

#define QFS_PAXOS_PREFERRED_AUTO UINT32_MAX

/* Tracer: one line of key=value fields per decision; may be NULL. */
typedef void (*qfs_paxos_tracer_fn)(void *arg, uint32_t self, const char *line);

struct qfs_paxos_params {
	uint32_t lease_ms;          /* lease length granted by a follower; 2000 */
	uint32_t drift_pct;         /* leader shortens its lease by this %; 10 => clock
				     * rates must stay within +-5% (doc/paxos.md) */
	uint32_t election_min_ms;   /* election timeout drawn in [min, max); 1000 */
	uint32_t election_max_ms;   /* 2000 */
	uint32_t heartbeat_ms;      /* leader heartbeat period; 200 */
	uint32_t retry_ms;          /* resend to a follower that made no progress; 500 */
	uint32_t preferred;         /* member that should lead while it is healthy
				     * (leadership balance, doc/paxos.md section 6);
				     * QFS_PAXOS_PREFERRED_AUTO: qfs_paxos_preferred()
				     * of the configuration in force; 0 or not a
				     * member: none.  Timing only. */
	uint64_t seed;              /* PRNG seed (e.g. node id ^ boot time) */
	int leases_void;            /* qfs_paxos_init: no lease this replica granted
				     * before its start can be in force, because
				     * every replica that could hold one is known to
				     * be gone (a cold start: one process runs every
				     * replica and holds the data directory's lock,
				     * doc/paxos.md section 5): no restart block.
				     * 0 (default): honour one lease_ms */
	qfs_paxos_tracer_fn tracer;
	void *tracer_arg;
};

/* Fill p with the defaults named above (seed 1, no tracer). */
void qfs_paxos_params_default(struct qfs_paxos_params *p);

/* ---- messages ---- */

enum qfs_paxos_msg_type {
	QFS_PAXOS_PREPARE = 1,  /* phase 1a: ballot, last_lsn/last_ballot, commit */
	QFS_PAXOS_PROMISE = 2,  /* phase 1b: ok, promised, last_lsn/last_ballot, commit */
	QFS_PAXOS_ACCEPT = 3,   /* phase 2a: prev_lsn/prev_ballot, entries, commit, time_ms;
				 * no entries: heartbeat */
	QFS_PAXOS_ACCEPTED = 4, /* phase 2b: ok, promised, match, last_lsn, time_ms */
	QFS_PAXOS_HANDOFF = 5,  /* ok 1: leader to the preferred member "I stepped
				 * down from ballot, campaign now"; ok 0: the answer
				 * "cannot", so the sender campaigns (doc/paxos.md s.6) */
};

/* One message.  All fields are carried for every type (unused ones 0). */
struct qfs_paxos_msg {
	uint8_t type;               /* enum qfs_paxos_msg_type */
	uint8_t ok;                 /* PROMISE/ACCEPTED: 1 granted, 0 refused */
	uint32_t from, to;          /* node ids */
	uint64_t group;             /* replication group (copied from struct qfs_paxos) */
	qfs_ballot_t ballot;        /* the ballot this message is about */
	qfs_ballot_t promised;      /* replies: the sender's promised ballot */
	qfs_lsn_t last_lsn;         /* PREPARE/PROMISE/ACCEPTED: sender's last LSN */
	qfs_ballot_t last_ballot;   /* PREPARE/PROMISE: ballot of that entry */
	qfs_lsn_t prev_lsn;         /* ACCEPT: entry before entries[0] (0: none) */
	qfs_ballot_t prev_ballot;   /* ACCEPT: its ballot */
	qfs_lsn_t commit;           /* ACCEPT: leader commit usable by this follower */
	qfs_lsn_t match;            /* ACCEPTED ok: highest LSN durable and matching in
				     * this ballot (0: no news); refused: hint, the
				     * follower's log matches at most up to here */
	uint64_t time_ms;           /* ACCEPT: leader clock at send; ACCEPTED: echoed */
	uint32_t n;                 /* ACCEPT: entries, lsn prev_lsn+1.. */
	const struct qfs_repl_entry *entries;
};

/* Wire body of a message (doc/paxos.md section 3).  The frame header that
 * carries it (magic, version, type = m->type, length, CRC) belongs to
 * src/net (net/frame.h); the driver puts the body in a frame there. */

/* Bytes qfs_paxos_msg_encode() writes for m (the body only). */
size_t qfs_paxos_msg_size(const struct qfs_paxos_msg *m);

/* Encode the body of m into buf[0..cap); its frame type is m->type.
 * Returns the body length, or -ENOSPC if cap is too small, -EINVAL if m has
 * an unknown type, more than QFS_PAXOS_MAX_BATCH entries or an entry whose
 * data is NULL with a length.  Pure; thread-safe. */
ssize_t qfs_paxos_msg_encode(const struct qfs_paxos_msg *m, void *buf, size_t cap);

/* 1 if type is a Multi-Paxos frame type (QFS_PAXOS_PREPARE..ACCEPTED). */
int qfs_paxos_msg_type_ok(uint8_t type);

/* Decode the len-byte body of a frame of the given type (its header was
 * checked by the transport's qfs_net_frame_open) into *out; the entries go
 * to ents[QFS_PAXOS_MAX_BATCH] (scratch, overwritten even on error) and
 * their data point into buf (keep buf alive).  Returns 0 or QFS_ECORRUPT
 * (unknown type, short or malformed body, unknown entry type, too many
 * entries).  *out is written only on success. */
int qfs_paxos_msg_decode(uint8_t type, const void *buf, size_t len, struct qfs_paxos_msg *out,
			 struct qfs_repl_entry *ents);

/* ---- events and updates ---- */

enum qfs_paxos_event_type {
	QFS_PAXOS_EV_PROPOSE = 1,   /* entries[n] (type/time_ns/data/len); leader only */
	QFS_PAXOS_EV_RECEIVE,       /* msg */
	QFS_PAXOS_EV_PERSISTED,     /* lsn, ballot: log durable up to lsn (entry of ballot) */
	QFS_PAXOS_EV_APPLIED,       /* lsn: the driver applied up to here */
	QFS_PAXOS_EV_TICK,          /* only now_ms */
	QFS_PAXOS_EV_LOG_ENTRIES,   /* answer to a read: peer, lsn/ballot = prev entry,
				     * entries[n] with lsn/ballot filled from the log */
	QFS_PAXOS_EV_SNAPSHOT_INSTALLED, /* lsn, ballot, cfg: the state at lsn replaced the
				     * log; cfg: the configuration in force at lsn
				     * (NULL: unchanged) */
	QFS_PAXOS_EV_COMPACTED,     /* lsn: first LSN still readable from the log */
};

struct qfs_paxos_event {
	enum qfs_paxos_event_type type;
	uint64_t now_ms;            /* driver's monotonic clock, every event */
	const struct qfs_repl_entry *entries;
	uint32_t n;
	const struct qfs_paxos_msg *msg;
	qfs_lsn_t lsn;
	qfs_ballot_t ballot;
	uint32_t peer;
	const struct qfs_paxos_config *cfg;
};

/* "Read entries [from, to] from the log and step LOG_ENTRIES(peer, ...)". */
struct qfs_paxos_read {
	uint32_t peer;
	qfs_lsn_t from, to;
};

struct qfs_paxos_update {
	/* 1. Make durable, in this order (then step PERSISTED): */
	int truncate;                      /* 1: first drop every entry > truncate_after */
	qfs_lsn_t truncate_after;
	const struct qfs_repl_entry *persist; /* append these (lsn consecutive) */
	uint32_t npersist;
	int save_promise;                  /* 1: persist promised before any message */
	qfs_ballot_t promised;
	/* 2. Then send: a message for which qfs_paxos_msg_needs_durable() is 1
	 * only once everything persisted so far (this update's persist
	 * included) is durable; the others (a leader's ACCEPTs) at once,
	 * while the driver makes this update's entries durable: */
	const struct qfs_paxos_msg *msgs;
	uint32_t nmsgs;
	/* 3. Requests to the driver: */
	const struct qfs_paxos_read *reads;
	uint32_t nreads;
	uint32_t snapshot_to;              /* != 0: send a snapshot of the applied state */
	/* 4. State: */
	qfs_lsn_t commit;                  /* apply entries up to here (<= durable) */
	uint32_t leader;                   /* known leader, 0 if none */
	qfs_ballot_t ballot;               /* that leader's ballot */
	int is_leader;
	uint64_t lease_until_ms;           /* leader: lease end in its clock, else 0 */
	uint64_t next_tick_ms;             /* step TICK at this time at the latest */
};

/* Durable state the driver restores after a restart. */
struct qfs_paxos_hard {
	qfs_ballot_t promised;      /* last promised ballot persisted */
	qfs_lsn_t last;             /* last LSN in the log (0: empty) */
	qfs_ballot_t last_ballot;   /* ballot of that entry (or of the snapshot) */
	qfs_lsn_t applied;          /* store's applied LSN (<= last) */
	qfs_lsn_t first_retained;   /* first LSN readable from the log (>= 1) */
	qfs_lsn_t floor_lsn;        /* vote floor (doc/paxos.md section 7, "Re-adding
				     * a member"): no promise to a candidate whose
				     * log is behind (floor_ballot, floor_lsn); 0: none */
	qfs_ballot_t floor_ballot;
};

/* What a replica created for a group that already has a history (an added
 * member) starts with: its promise and its vote floor, taken from a leader
 * whose committed configuration lacks the new member
 * (qfs_paxos_join_floor).  The driver keeps both durably and gives them
 * back in struct qfs_paxos_hard at every init. */
struct qfs_paxos_floor {
	qfs_ballot_t promised;      /* the leader's ballot */
	qfs_lsn_t lsn;              /* its commit point ... */
	qfs_ballot_t ballot;        /* ... and the ballot of that entry */
};

/* A ballot change in the log: entries from first on carry ballot. */
struct qfs_paxos_run {
	qfs_lsn_t first;
	qfs_ballot_t ballot;
};

enum qfs_paxos_role { QFS_PAXOS_FOLLOWER = 0, QFS_PAXOS_CANDIDATE, QFS_PAXOS_LEADER };

/* Per-peer replication progress, leader only. */
struct qfs_paxos_peer {
	uint32_t id;
	qfs_lsn_t next;             /* next LSN to send */
	qfs_lsn_t match;            /* highest LSN known durable+matching there */
	uint64_t lease_sent_ms;     /* leader send time of the newest acked message */
	uint64_t progress_ms;       /* last time match grew or we resynced */
	uint64_t ack_ms;            /* last time it answered (own clock), 0: never */
	uint64_t healthy_since_ms;  /* it has answered without a gap of retry_ms since */
	int read_pending;           /* a read for this peer is outstanding */
	int voted;                  /* candidate: promise received */
};

/* The state machine.  Fields are private to paxos.c; embedded by the driver. */
/* A CONFIG entry of the log above the commit point. */
struct qfs_paxos_cfgent {
	qfs_lsn_t lsn;
	struct qfs_paxos_config cfg;
};

struct qfs_paxos {
	uint32_t self;
	uint64_t group;
	struct qfs_paxos_config cfg;        /* in force: the newest in the log */
	struct qfs_paxos_config base_cfg;   /* in force at the commit point */
	struct qfs_paxos_cfgent cfgs[QFS_PAXOS_MAX_CFGS]; /* CONFIG entries in
					     * (commit, last], ascending */
	uint32_t ncfgs;
	struct qfs_paxos_params prm;
	uint64_t rng;               /* PRNG state */

	enum qfs_paxos_role role;
	qfs_ballot_t promised;      /* durable once reported in an update */
	qfs_ballot_t ballot;        /* ballot of the known leader (or our candidacy) */
	uint32_t leader;
	uint32_t last_leader;       /* the last leader we followed (0: none yet) */
	uint64_t max_round;         /* highest round seen */

	qfs_lsn_t last;             /* last LSN in the log */
	qfs_ballot_t last_ballot;
	qfs_lsn_t persisted;        /* durable up to */
	qfs_lsn_t commit;           /* known chosen up to */
	qfs_lsn_t applied;
	qfs_lsn_t first_retained;
	qfs_lsn_t barrier;          /* leader: LSN of its NOOP barrier */
	struct qfs_paxos_run runs[QFS_PAXOS_MAX_RUNS]; /* cover (commit, last] */
	uint32_t nruns;

	uint64_t now;               /* clock of the current step */
	uint64_t election_at;       /* follower/candidate: campaign at */
	uint64_t lease_grant_until; /* follower: no promise to others before */
	qfs_ballot_t lease_grant_ballot;
	uint64_t heartbeat_at;      /* leader: next heartbeat */
	uint64_t lease_until;       /* leader: lease end (own clock) */
	uint64_t lead_since;        /* leader: elected at (own clock) */
	uint64_t boot_grant_until;  /* the restart block: no HANDOFF honoured before */
	uint64_t handoff_until;     /* leader: handing over to the preferred member
				     * (proposals refused) until then; 0: not */
	uint64_t handoff_next;      /* leader: no new handoff attempt before */
	qfs_lsn_t floor_lsn;        /* vote floor (struct qfs_paxos_hard); 0: none */
	qfs_ballot_t floor_ballot;
	uint32_t npeers;
	struct qfs_paxos_peer peers[QFS_PAXOS_MAX_NODES];

	/* storage for the update of the current step */
	struct qfs_repl_entry persist[QFS_PAXOS_MAX_BATCH + 1];
	uint32_t npersist;
	struct qfs_paxos_msg msgs[QFS_PAXOS_MAX_MSGS];
	uint32_t nmsgs;
	struct qfs_paxos_read reads[QFS_PAXOS_MAX_NODES];
	uint32_t nreads;
	int truncate, save_promise;
	qfs_lsn_t truncate_after;
	uint32_t snapshot_to;
};

/* Start a replica from its durable state hs at time now_ms: a follower with
 * no known leader that refuses to promise for one lease (it may have granted
 * a lease before it crashed) unless it never promised any ballot or
 * prm->leases_void says no such lease can be in force; the
 * preferred member (prm->preferred, else the first member of cfg) of a new
 * group (nothing promised, empty log) campaigns on its first tick.  runs[nruns] are the ballot changes of the log
 * entries [max(applied, 1), last], ascending, the first at or below
 * max(applied, 1), the last of ballot last_ballot (none needed when the log
 * ends at applied).  cfg is the configuration in force at applied; when it
 * lacks self the replica is not a member (one being added, whose driver
 * created it with the current configuration, or one removed): it accepts
 * and acknowledges but never campaigns until a CONFIG entry that holds it
 * is in its log.  hs->floor_* (with hs->promised) is the vote floor of an
 * added member: it promises no candidate whose log is behind it.  Returns 0 or
 * -EINVAL (bad config or params, applied > last, runs not covering the log);
 * p is unusable after an error. */
int qfs_paxos_init(struct qfs_paxos *p, uint64_t group, const struct qfs_paxos_config *cfg,
		   uint32_t self, const struct qfs_paxos_params *prm,
		   const struct qfs_paxos_hard *hs, const struct qfs_paxos_run *runs,
		   uint32_t nruns, uint64_t now_ms);

/* A cold start (prm->leases_void), once every replica runs: the preferred
 * member, a follower that knows no leader, campaigns on its next tick
 * (at now_ms or later) instead of after an election timeout, so that
 * its PREPAREs find the others up.  Timing only; a replica that honours a
 * restart block still waits for it.  1 if it will campaign, else 0 (p
 * unchanged).  Not a step: the driver ticks p at now_ms next. */
int qfs_paxos_elect_now(struct qfs_paxos *p, uint64_t now_ms);

/* The floor a new member id starts with (doc/paxos.md section 7): on a
 * leader that holds its lease at now_ms (its clock, as for
 * qfs_paxos_can_read_local), whose barrier committed and whose committed
 * configuration does not hold id, its ballot as the promise and its
 * commit point (LSN and ballot of that entry) as the vote floor.  Pure.
 * 0 and *out, or -EREMOTE (not the leader), -EBUSY (no lease at now_ms,
 * as after every configuration change: it may have been deposed without
 * knowing it; or its barrier or the change that removes id is not
 * committed yet: retry), -EINVAL (id is a member of
 * the configuration, committed and in force, or 0); *out untouched on
 * error. */
int qfs_paxos_join_floor(const struct qfs_paxos *p, uint32_t id, uint64_t now_ms,
			 struct qfs_paxos_floor *out);

/* After qfs_paxos_init: a CONFIG entry of the log above the applied LSN,
 * read back from the log by the driver (in LSN order, all of them): the
 * configuration then in force is the newest.  0, or -EINVAL (lsn not in
 * (applied, last] or not ascending, more than QFS_PAXOS_MAX_CFGS, a bad
 * config). */
int qfs_paxos_restore_config(struct qfs_paxos *p, qfs_lsn_t lsn, const struct qfs_paxos_config *cfg);

/* Step one event and fill *up (see struct qfs_paxos_update for what the driver
 * must do with it).  Returns 0, or:
 *   -EREMOTE  PROPOSE on a replica that is not leader (up->leader: hint)
 *   -EAGAIN   PROPOSE while the leader has QFS_PAXOS_WINDOW entries uncommitted,
 *             or hands leadership over to the preferred member (briefly), or
 *             is leaving the configuration (a CONFIG entry without it),
 *             or more than QFS_PAXOS_MAX_BATCH entries in one event
 *   -EINVAL   a malformed event (unknown type or entry type, n too large,
 *             APPLIED beyond the durable commit, time going back); a CONFIG
 *             proposal that is not alone in its batch, does not decode or is
 *             not a single-member change of the current configuration
 *   -EBUSY    a CONFIG proposal while another is uncommitted or before the
 *             leader's barrier committed: retry
 * Malformed, stale or duplicated messages are not errors: they are ignored
 * (and traced).  On error the state is unchanged and *up reports it. */
int qfs_paxos_step(struct qfs_paxos *p, const struct qfs_paxos_event *ev,
		   struct qfs_paxos_update *up);

/* 1 if this replica is the leader, holds a lease at now_ms (its clock) and
 * has applied everything it committed since its election, so a read of its
 * applied state sees every write committed before the read started. */
int qfs_paxos_can_read_local(const struct qfs_paxos *p, uint64_t now_ms);

/* 1 if m may leave only once everything its sender persisted before it is
 * durable: every PROMISE and ACCEPTED (they report the acceptor's promise and
 * log, which a crash must not take back) and a candidate's PREPARE.  0 for a
 * leader's ACCEPT (and heartbeat): it reports nothing about the sender, only
 * proposes entries of the leader's own ballot, each of which is safe to be
 * chosen, so the leader sends it while it makes the same entries durable
 * itself; the leader counts its own vote only once PERSISTED says they are
 * durable (doc/paxos.md section 4). */
static inline int qfs_paxos_msg_needs_durable(const struct qfs_paxos_msg *m)
{
	return m->type != QFS_PAXOS_ACCEPT;
}

/* The member that should lead group under cfg when it is healthy: the one
 * at index group % n of cfg's storage members' ids (log replicas never
 * lead) in ascending order, so consecutive group ids spread their leaders
 * evenly over the members and every replica computes the same one from the
 * same config.  0 if cfg has no storage member. */
uint32_t qfs_paxos_preferred(uint64_t group, const struct qfs_paxos_config *cfg);

/* Quorum size of cfg (a majority). */
static inline uint32_t qfs_paxos_quorum(const struct qfs_paxos_config *cfg)
{
	return cfg->n / 2 + 1;
}

#endif
