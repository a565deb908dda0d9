/*
 * repl.c - the framing of a log entry in a WAL record (contract: repl.h;
 * design: doc/replication.md).
 *
 *     u8 type | be64 ballot | be64 time_ns | data
 *
 * The LSN is the WAL record's own and is not framed; the WAL supplies the
 * length and the CRC32C.
 */
#include "config.h"

#include "common/buf.h"
#include "repl/repl.h"

/* See repl.h.  Writes type, ballot and time_ns; lsn is the WAL record's. */
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
	if (b[0] != QFS_REPL_ENTRY_TXN && b[0] != QFS_REPL_ENTRY_NOOP && b[0] != QFS_REPL_ENTRY_CONFIG)
		return QFS_ECORRUPT;
	out->lsn = lsn;
	out->type = b[0];
	out->ballot = qfs_be64_get(b + 1);
	out->time_ns = qfs_be64_get(b + 9);
	out->data = b + QFS_REPL_ENTRY_HDR;
	out->len = len - QFS_REPL_ENTRY_HDR;
	return 0;
}
