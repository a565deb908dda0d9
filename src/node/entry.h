/*
 * entry.h - the log entries a node writes into its groups' WALs, as code
 * outside the node reads them back (the archive's uploads and restore's
 * replay): the node drives the replication layer (src/repl), so it is the
 * node that tells what a WAL record of one of its groups holds, and those
 * readers need not know src/repl (DESIGN.md section 3).  The framing
 * itself is src/repl's (repl.h, doc/replication.md); the WAL record around
 * it is src/wal's (the segment reader in wal.h).
 *
 * Pure code: no I/O, no allocation; safe from any thread.
 */
#ifndef QFS_NODE_ENTRY_H
#define QFS_NODE_ENTRY_H

#include <stddef.h>
#include <stdint.h>

#include "common/qfs.h"

/* What an entry carries (the values are the framing's own type bytes). */
enum qfs_node_entry_type {
	QFS_NODE_ENTRY_TXN = 1,  /* a partition transaction (common/txn.h) */
	QFS_NODE_ENTRY_NOOP = 2, /* a new leader's barrier: nothing to apply */
	QFS_NODE_ENTRY_CONFIG = 3 /* a membership change (doc/paxos.md section 7):
				     no items to apply */
};

/* One entry, decoded.  data is borrowed from the record it was decoded from. */
struct qfs_node_entry {
	qfs_lsn_t lsn;        /* the WAL record's LSN */
	uint8_t type;         /* enum qfs_node_entry_type */
	uint64_t time_ns;     /* proposer's wall clock, ns since the epoch (0 on a
				 new leader's barrier): point-in-time restore */
	const uint8_t *data;  /* the transaction (TXN), empty for NOOP */
	size_t len;
};

/* Decode the payload p[len] of the WAL record with LSN lsn into *out
 * (out->data points into p).  0, or QFS_ECORRUPT (shorter than the
 * framing, or an unknown type); *out is written only on 0. */
int qfs_node_entry_decode(qfs_lsn_t lsn, const void *p, size_t len, struct qfs_node_entry *out);

#endif
