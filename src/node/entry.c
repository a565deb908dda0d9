/*
 * entry.c - the node's view of its WAL records for readers outside the
 * node (contract: entry.h); the framing is src/repl's (repl.h).
 */
#include "config.h"

#include "node/entry.h"
#include "repl/repl.h"

_Static_assert((int)QFS_NODE_ENTRY_TXN == (int)QFS_REPL_ENTRY_TXN &&
	       (int)QFS_NODE_ENTRY_NOOP == (int)QFS_REPL_ENTRY_NOOP &&
	       (int)QFS_NODE_ENTRY_CONFIG == (int)QFS_REPL_ENTRY_CONFIG,
	       "entry types are the framing's type bytes");

/* See entry.h. */
int qfs_node_entry_decode(qfs_lsn_t lsn, const void *p, size_t len, struct qfs_node_entry *out)
{
	struct qfs_repl_entry e;
	int rc = qfs_repl_entry_decode(lsn, p, len, &e);

	if (rc)
		return rc;
	out->lsn = lsn;
	out->type = e.type;
	out->time_ns = e.time_ns;
	out->data = e.data;
	out->len = e.len;
	return 0;
}
