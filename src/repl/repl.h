/*
 * repl.h - the replication protocol of one group as a pure state machine
 * (design: doc/replication.md).
 *
 * The caller feeds events (a proposal, "persisted up to LSN", a tick with the
 * current time, a received message) to qfs_repl_step() and gets back an
 * update: entries to persist, messages to send once those are persisted, the
 * new commit LSN, and when to tick next.  No I/O, no clock, no threads, no
 * hidden allocation: the update points into memory owned by the state machine
 * and valid until the next step.  Like etcd/raft, the driver (src/node) must
 *   1. persist update->persist[] (fsync) and report it with a PERSISTED event,
 *   2. only then send update->msgs[],
 *   3. apply entries up to update->commit in order, and acknowledge a client
 *      only when its entry is applied.
 *
 * This version runs groups of exactly one voting replica: an entry commits as
 * soon as it is persisted locally.  Multi-Paxos over three replicas (ballots,
 * phase 1 over uncommitted slots, leases) extends these same events.
 */
#ifndef QFS_REPL_REPL_H
#define QFS_REPL_REPL_H

#include <stddef.h>
#include <stdint.h>

#include "common/qfs.h"

#define QFS_REPL_MAX_BATCH 256 /* entries in one update's persist list */

enum qfs_repl_entry_type {
	QFS_REPL_ENTRY_TXN = 1, /* a partition transaction (common/txn.h) */
	QFS_REPL_ENTRY_NOOP = 2 /* a new leader's barrier */
};

/* One log entry.  data is borrowed: from the proposer until persisted. */
struct qfs_repl_entry {
	qfs_lsn_t lsn;
	uint64_t ballot;
	uint64_t time_ns;      /* proposer's wall clock (ns since the epoch): point-in-time restore */
	uint8_t type;          /* enum qfs_repl_entry_type */
	const uint8_t *data;
	size_t len;
};

enum qfs_repl_event_type {
	QFS_REPL_EV_PROPOSE = 1, /* ev.entry: type/time_ns/data/len; lsn and ballot assigned */
	QFS_REPL_EV_PERSISTED,   /* ev.lsn: everything up to it is durable locally */
	QFS_REPL_EV_APPLIED,     /* ev.lsn: the driver applied up to it */
	QFS_REPL_EV_TICK,        /* ev.now_ms: current time */
};

struct qfs_repl_event {
	enum qfs_repl_event_type type;
	qfs_lsn_t lsn;
	uint64_t now_ms;
	struct qfs_repl_entry entry;
};

struct qfs_repl_update {
	struct qfs_repl_entry *persist; /* entries to append and fsync, in order */
	uint32_t npersist;
	qfs_lsn_t commit;               /* entries up to here may be applied */
	uint64_t next_tick_ms;          /* 0: no timer needed */
};

struct qfs_repl_state {
	uint64_t ballot;      /* current ballot (leader's term) */
	uint32_t leader;      /* node id of the leader */
	qfs_lsn_t last;       /* last LSN assigned */
	qfs_lsn_t persisted;  /* last LSN durable locally */
	qfs_lsn_t commit;     /* last LSN committed */
	qfs_lsn_t applied;    /* last LSN the driver reported applied */
};

/* The state machine.  Fields are private to repl.c; embedded by the driver. */
struct qfs_repl {
	uint32_t self;        /* this replica's node id */
	struct qfs_repl_state st;
	struct qfs_repl_entry batch[QFS_REPL_MAX_BATCH]; /* storage for update->persist */
	uint32_t nbatch;
};

/* Start a replica that has persisted up to last (ballot of that entry) and
 * applied up to applied, e.g. after recovery.  Cannot fail. */
void qfs_repl_init(struct qfs_repl *r, uint32_t self, uint64_t ballot, qfs_lsn_t last,
		   qfs_lsn_t applied);

/* Step one event.  Returns 0 and fills *up, or: -EAGAIN (PROPOSE while the
 * batch is full: persist first), -EINVAL (an event out of order, e.g.
 * PERSISTED beyond last).  On error *up is empty and the state unchanged. */
int qfs_repl_step(struct qfs_repl *r, const struct qfs_repl_event *ev, struct qfs_repl_update *up);

/* Snapshot of the state for status output. */
void qfs_repl_state(const struct qfs_repl *r, struct qfs_repl_state *out);

/* Entry framing inside a WAL record: u8 type | be64 ballot | be64 time_ns | data. */
#define QFS_REPL_ENTRY_HDR 17
size_t qfs_repl_entry_encode_hdr(uint8_t hdr[QFS_REPL_ENTRY_HDR], const struct qfs_repl_entry *e);
int qfs_repl_entry_decode(qfs_lsn_t lsn, const void *p, size_t len, struct qfs_repl_entry *out);

#endif
