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

#include "common/buf.h"
#include "common/qfs.h"

#define QFS_WAL_SEGMENT_DEFAULT (64ull << 20) /* seal a segment past this size */
#define QFS_WAL_RECORD_MAX (64u << 20)        /* largest payload accepted */

struct qfs_wal_opts {
	uint64_t segment_bytes; /* seal threshold in bytes; 0 = QFS_WAL_SEGMENT_DEFAULT */
	uint64_t zero_ahead;    /* 0, or bytes of zeros written past the tail's last
				 * record by a small sync that outgrows the zeros
				 * already there, so that the syncs after it
				 * overwrite file blocks in place and fdatasync
				 * changes no file size (doc/format-wal.md
				 * "Zeroed ahead"); never past segment_bytes */
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

/* qfs_wal_read, but the records of the last sync of a large buffer (past
 * 1 MiB) or a small one (up to 256 KiB; with those of the sync before it
 * when both were small, adjoin, and these were still held) are delivered
 * from the memory that sync wrote them from, not read back and CRC-checked
 * from the file; that memory is held until a walk delivered them (or
 * passed them), the next sync that keeps its own, a truncation reaching
 * them, or close.  For the apply right after a sync; checks of
 * the file (recovery, verify) use qfs_wal_read.  Same returns. */
int qfs_wal_read_recent(struct qfs_wal *w, qfs_lsn_t from, qfs_lsn_t to, qfs_wal_read_cb cb, void *arg);

/* Where a durable record's payload lies: the file dir/<seg_first as 16
 * hex digits>.wal, at byte off.  The bytes there stay as they are while
 * the file exists: the log never rewrites a durable record in place
 * (truncate_after cuts records past a committed LSN only, and a segment
 * file is never reused for another first LSN; doc/format-wal.md "Files
 * are never rewritten"), so a hard link to it (the store's value log,
 * doc/format-store.md "Value log") keeps them readable after the log
 * deleted its own name. */
struct qfs_wal_loc {
	const char *dir;     /* the log's directory (valid during the call) */
	qfs_lsn_t seg_first; /* its segment's first LSN (its file name) */
	uint64_t off;        /* file offset of the payload's first byte */
};
/* As qfs_wal_read_cb, with loc: the record's place, or NULL for a record
 * that is not durable yet (buffered). */
typedef int (*qfs_wal_read_at_cb)(qfs_lsn_t lsn, const void *p, size_t len, const struct qfs_wal_loc *loc,
				  void *arg);
/* qfs_wal_read_recent handing each record's place to cb.  Same returns. */
int qfs_wal_read_recent_at(struct qfs_wal *w, qfs_lsn_t from, qfs_lsn_t to, qfs_wal_read_at_cb cb,
			   void *arg);

/* Drop from the page cache the durable record whose len payload bytes
 * are at loc (as a read_recent_at callback was given it; the call may be
 * made from that callback), in 2 MiB units of its file: from the one it
 * starts in (bytes before it included) up to the one it ends in
 * (excluded: left to the next call; included when the record ends a
 * sealed segment).  Advice to the kernel
 * (POSIX_FADV_DONTNEED): nothing on disk changes, nothing is reported; a
 * segment no longer in the log, or a range past its durable bytes, is
 * left alone.  For large records once applied, whose bytes are read again
 * only rarely (doc/format-wal.md "Page cache"). */
void qfs_wal_uncache(struct qfs_wal *w, const struct qfs_wal_loc *loc, size_t len);

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
	uint64_t bytes;      /* total bytes of the segments' records and headers
			      * (the tail's zeros ahead not counted) */
	int err;             /* sticky error, 0 if none */
};
void qfs_wal_stat(const struct qfs_wal *w, struct qfs_wal_stat *out);

/* Delete the directory of a log and everything in it (group dropped). */
int qfs_wal_destroy(const char *dir);

/* ---------------------------------------------------------------- segments
 *
 * The segment reader: one segment read on its own, as a file or as bytes
 * in memory, without a struct qfs_wal, by code that does not own the log
 * (the archive uploads sealed segments, copies records from another
 * replica's files, replays archived objects; doc/format-wal.md "Reading
 * a segment").  It checks the header, every record's framing and CRC-32C
 * and that LSNs follow each other from the header's first LSN.  A file is
 * read with pread(2), never mapped, so a log truncated meanwhile shows up
 * as a torn tail, never as a fault.  One reader per thread.
 */

/* A record as the reader returns it.  Pointers are borrowed from the
 * reader (or the caller's image): valid until its next call. */
struct qfs_wal_rec {
	qfs_lsn_t lsn;
	const uint8_t *data;  /* payload */
	size_t len;           /* payload bytes */
	const uint8_t *raw;   /* the record as stored: header then payload */
	size_t raw_len;       /* header + payload bytes */
	uint64_t off;         /* byte offset of the record in the segment */
};

/* Embedded in the caller; its fields are the reader's own. */
struct qfs_wal_segrd {
	const uint8_t *mem;   /* the image in memory, NULL when reading fd */
	int fd;               /* the file (read with pread), -1 otherwise */
	uint64_t size;        /* bytes of the image, or of the file at open */
	uint8_t *buf;         /* file read window, heap */
	size_t cap;           /* bytes allocated for buf */
	uint64_t woff;        /* buf holds file bytes [woff, woff + wlen) */
	size_t wlen;
	uint64_t off;         /* offset of the next record */
	qfs_lsn_t first;      /* the header's first LSN */
	qfs_lsn_t next;       /* LSN the next record must carry */
	uint32_t crc;         /* CRC-32C of bytes [0, off) */
	int err;              /* sticky: the error next() returned, 0 if none */
	const char *why;      /* what the last error found (static), "" if none */
};

/* Start reading the segment image p[0..len) (the caller keeps it alive and
 * unchanged until qfs_wal_segrd_close).  Checks the header.  0, or:
 * QFS_ECORRUPT (shorter than a header, bad magic or header CRC),
 * QFS_EFORMAT (another format version); qfs_wal_segrd_why says which.
 * Whatever the result, r may be passed to qfs_wal_segrd_close. */
int qfs_wal_segrd_init(struct qfs_wal_segrd *r, const void *p, size_t len);

/* Same for the segment file at path (its size is taken at open; bytes
 * appended later are not read).  Adds -errno from open/fstat/pread and
 * -ENOMEM. */
int qfs_wal_segrd_open(struct qfs_wal_segrd *r, const char *path);

/* The next record into *out.  Returns 1 (a record), 0 (the segment ends
 * right after the previous record: clean end), or an error, which every
 * later call returns too:
 *   QFS_ETORN     the bytes end inside a record (a header cut short, or a
 *                 length past the end), as a torn write leaves a log tail;
 *   QFS_ECORRUPT  a length above QFS_WAL_RECORD_MAX, a CRC mismatch, or an
 *                 LSN that does not follow;
 *   -errno, -ENOMEM (files only).
 * For a sealed segment both are damage; only the log's owner tells a torn
 * tail from corruption (at qfs_wal_open).  *out is written only on 1. */
int qfs_wal_segrd_next(struct qfs_wal_segrd *r, struct qfs_wal_rec *out);

/* The header's first LSN (valid after a successful init/open). */
qfs_lsn_t qfs_wal_segrd_first(const struct qfs_wal_segrd *r);
/* CRC-32C of the segment's bytes up to the end of the last record returned
 * (the header's alone before the first): at a clean end, of the whole
 * segment, which is what the archive lists in its manifest. */
uint32_t qfs_wal_segrd_crc(const struct qfs_wal_segrd *r);
/* What the last error found, a static string; "" if none. */
const char *qfs_wal_segrd_why(const struct qfs_wal_segrd *r);
/* Release the reader (its file and window).  Safe after any init/open
 * result and twice. */
void qfs_wal_segrd_close(struct qfs_wal_segrd *r);

/* Append to out the header of a segment whose first record is first; the
 * raw bytes of records (struct qfs_wal_rec.raw, their CRCs stay valid)
 * appended after it make a segment image.  Errors latch in out->err. */
void qfs_wal_image_begin(struct qfs_buf *out, qfs_lsn_t first);

/* One segment file of a log directory. */
struct qfs_wal_seginfo {
	qfs_lsn_t first;      /* LSN of its first record (its name) */
	uint64_t size;        /* bytes of the file when listed */
	uint64_t rec_bytes;   /* bytes of records in it (size less the header; the
			       * last file's up to its last non-zero byte: its
			       * zeros ahead are not records, and a record's own
			       * trailing zero bytes are not counted either) */
};

/* The segment files of the log directory dir, by first LSN ascending
 * (every one but the last is sealed: doc/format-wal.md).  Other names are
 * skipped, and so is a file removed while listing.  *out is malloc'd (NULL
 * when none) and set, with *count, only on success.  0, -errno, -ENOMEM. */
int qfs_wal_list(const char *dir, struct qfs_wal_seginfo **out, size_t *count);

/* The path of the segment of dir starting at first, into out[cap].
 * 0 or -ENAMETOOLONG. */
int qfs_wal_seg_path(char *out, size_t cap, const char *dir, qfs_lsn_t first);

#endif
