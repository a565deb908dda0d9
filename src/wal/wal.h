/*
 * wal.h - segmented write-ahead log of one replication group
 * (format: doc/format-wal.md).
 *
 * A log is a directory of segment files named by the LSN of their first
 * record (16 lower-case hex digits + ".wal").  Records carry CRC32C.  Appends
 * are buffered in memory and become durable together in qfs_wal_sync(), which
 * is how the replicated node (src/node/rnode.c) does group commit: many
 * appends, one write(2) + fdatasync.
 *
 * Failure contract:
 *  - A failed fdatasync is sticky: the log answers -EIO to every later append
 *    and sync (we never retry fsync; the page cache state is unknown).
 *  - A failed write(2) (ENOSPC, EDQUOT...) is not sticky: the segment is cut
 *    back to its last durable length, the unsynced records are dropped (last
 *    LSN goes back to the durable one) and the error is returned; the caller
 *    may append again later.  (The rnode does not: its Paxos machine already
 *    counts those entries, so it fails the batch and stops the replica until
 *    the node is reopened, which the cell's keeper does; doc/rnode.md.)
 *  - Recovery in qfs_wal_open(): a torn last record (short, or failing CRC with
 *    nothing valid after it) is trimmed and logged; a bad record with valid
 *    data after it, or a gap in LSNs, is corruption: open fails with
 *    QFS_ECORRUPT and a log line naming the file and offset, and the group is
 *    not served (no silent skipping).
 *
 * Not thread-safe: the owner (the rnode's I/O thread) serialises calls.
 */
#ifndef QFS_WAL_WAL_H
#define QFS_WAL_WAL_H

#include <stddef.h>
#include <stdint.h>

#include "common/qfs.h"

#define QFS_WAL_SEGMENT_DEFAULT (64ull << 20) /* seal a segment past this size */
#define QFS_WAL_RECORD_MAX (64u << 20)        /* largest payload accepted */

struct qfs_wal_opts {
	uint64_t segment_bytes; /* seal threshold in bytes; 0 = QFS_WAL_SEGMENT_DEFAULT */
};

struct qfs_wal;

/* Called for each record; return nonzero to stop the walk (returned as is). */
typedef int (*qfs_wal_read_cb)(qfs_lsn_t lsn, const void *p, size_t len, void *arg);

/* Open the log in dir, creating dir if absent, and recover it (see above).
 * opts may be NULL.  *out is set only on success.  Errors: -errno from the
 * filesystem, -ENOMEM, QFS_ECORRUPT. */
int qfs_wal_open(const char *dir, const struct qfs_wal_opts *opts, struct qfs_wal **out);

/* Close; unsynced appends are discarded.  qfs_wal_close(NULL) does nothing. */
void qfs_wal_close(struct qfs_wal *w);

/* Append one record; lsn must be qfs_wal_last()+1 (or any lsn >= 1 on an empty
 * log, which then starts there).  Buffered until qfs_wal_sync().  Errors:
 * -EINVAL (lsn out of order, len > QFS_WAL_RECORD_MAX), -ENOMEM, -EIO (sticky). */
int qfs_wal_append(struct qfs_wal *w, qfs_lsn_t lsn, const void *p, size_t len);

/* qfs_wal_append of the payload a[0..alen) || b[0..blen) (a header and a
 * body, say) without joining them first; the record is the same.  Same
 * errors (-EINVAL if alen + blen > QFS_WAL_RECORD_MAX). */
int qfs_wal_append2(struct qfs_wal *w, qfs_lsn_t lsn, const void *a, size_t alen, const void *b,
		    size_t blen);

/* Write buffered records and fdatasync them (and the directory when a segment
 * was created).  On return 0 every appended record is durable.  Errors as in
 * the failure contract above. */
int qfs_wal_sync(struct qfs_wal *w);

/* Call cb for each durable or buffered record with from <= lsn <= to, in LSN
 * order.  Returns 0, cb's nonzero value, -errno, or QFS_ECORRUPT if a record
 * fails its CRC when read back. */
int qfs_wal_read(struct qfs_wal *w, qfs_lsn_t from, qfs_lsn_t to, qfs_wal_read_cb cb, void *arg);

/* Remove every record with LSN > lsn (a leader overwriting uncommitted slots).
 * Durable on return.  Errors: -errno, -EIO (sticky). */
int qfs_wal_truncate_after(struct qfs_wal *w, qfs_lsn_t lsn);

/* Delete whole sealed segments whose records all have LSN < lsn.  The caller
 * guarantees those records are archived and applied. Returns 0 or -errno. */
int qfs_wal_truncate_before(struct qfs_wal *w, qfs_lsn_t lsn);

/* Seal the current segment: the next append starts a new one. */
int qfs_wal_seal(struct qfs_wal *w);

/* First and last LSN held (0, 0 when empty); last includes buffered records. */
qfs_lsn_t qfs_wal_first(const struct qfs_wal *w);
qfs_lsn_t qfs_wal_last(const struct qfs_wal *w);
qfs_lsn_t qfs_wal_durable(const struct qfs_wal *w); /* last LSN known fsync'd */

struct qfs_wal_stat {
	uint32_t segments;   /* files in the log */
	uint64_t bytes;      /* total bytes on disk */
	int err;             /* sticky error, 0 if none */
};
void qfs_wal_stat(const struct qfs_wal *w, struct qfs_wal_stat *out);

/* Delete the directory of a log and everything in it (group dropped). */
int qfs_wal_destroy(const char *dir);

#endif
