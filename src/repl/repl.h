/*
 * repl.h - log entries of a replication group and their framing in a WAL
 * record (design: doc/replication.md).
 *
 * The protocol that orders the entries is Multi-Paxos, src/repl/paxos.h
 * (doc/paxos.md); it moves struct qfs_repl_entry values through its events
 * and updates.  Its driver, src/node/rnode.c (doc/rnode.md), writes each
 * entry as one WAL record framed here, and the archive (src/archive) reads
 * the same records back for point-in-time restore.
 *
 * Pure code: no I/O, no allocation, no globals; safe from any thread.
 */
#ifndef QFS_REPL_REPL_H
#define QFS_REPL_REPL_H

#include <stddef.h>
#include <stdint.h>

#include "common/qfs.h"

enum qfs_repl_entry_type {
	QFS_REPL_ENTRY_TXN = 1, /* a partition transaction (common/txn.h) */
	QFS_REPL_ENTRY_NOOP = 2, /* a new leader's barrier */
	QFS_REPL_ENTRY_CONFIG = 3 /* a membership change: the group's new member
				   * list, be32 n | n x be32 node id (repl/paxos.h
				   * qfs_paxos_config_encode; doc/paxos.md section 7) */
};

/* One log entry.  data is borrowed: owned by whoever filled the entry (a
 * proposer until its entry is persisted, a WAL read buffer, a message). */
struct qfs_repl_entry {
	qfs_lsn_t lsn;         /* the WAL record's LSN; not part of the framing */
	uint64_t ballot;       /* ballot of the leader that proposed it */
	uint64_t time_ns;      /* proposer's wall clock (ns since the epoch): point-in-time restore */
	uint8_t type;          /* enum qfs_repl_entry_type */
	const uint8_t *data;
	size_t len;
};

/* Entry framing inside a WAL record: u8 type | be64 ballot | be64 time_ns | data. */
#define QFS_REPL_ENTRY_HDR 17

/* Write the QFS_REPL_ENTRY_HDR-byte header of e (type, ballot, time_ns) into
 * hdr; the caller appends e->data after it.  e->lsn is not written (the WAL
 * numbers its records).  Returns QFS_REPL_ENTRY_HDR.  Cannot fail: the type
 * is not checked (qfs_repl_entry_decode rejects an unknown one). */
size_t qfs_repl_entry_encode_hdr(uint8_t hdr[QFS_REPL_ENTRY_HDR], const struct qfs_repl_entry *e);

/* Parse the record p[len] with LSN lsn into *out; out->data points into p
 * (valid as long as p is).  Returns 0, or QFS_ECORRUPT if len is shorter
 * than the header or the type is not TXN, NOOP or CONFIG; *out is untouched
 * then (a CONFIG entry's data is checked by qfs_paxos_config_decode). */
int qfs_repl_entry_decode(qfs_lsn_t lsn, const void *p, size_t len, struct qfs_repl_entry *out);

#endif
