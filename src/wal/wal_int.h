/*
 * wal_int.h - internals of the write-ahead log shared by wal.c (appends,
 * sync, reads, truncation) and recover.c (opening a log directory).
 *
 * The on-disk format is described in doc/format-wal.md; the constants below
 * are its single source of truth in code.  All integers on disk are
 * big-endian, like every other quorumfs encoding (see common/buf.h).
 *
 * In memory a log is an array of segments ordered by first LSN.  Appended
 * records are encoded at once into one pending buffer (w->pend); each segment
 * that has unsynced bytes owns a contiguous slice of it, destined for file
 * offset seg->size.  Only the last segment (the tail) keeps its fd open.
 */
#ifndef QFS_WAL_WAL_INT_H
#define QFS_WAL_WAL_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "wal/wal.h"

/* Segment header: magic, format version, first LSN, flags, CRC32C of 0..19. */
#define QFS_WAL_SEG_MAGIC 0x5146574cu /* "QFWL" */
#define QFS_WAL_FORMAT_VERSION 1u
#define QFS_WAL_SEG_HDR 24u
/* Record header: CRC32C of bytes 4..end, payload length, LSN; then payload. */
#define QFS_WAL_REC_HDR 16u
#define QFS_WAL_NAME_LEN 20 /* 16 hex digits + ".wal" */
/* Zeros ahead (doc/format-wal.md "Zeroed ahead"): a sync writes at most
 * this many bytes over zeros already in its file (a larger one cuts the
 * zeros first and appends), so a crash leaves the disk's sectors of at most
 * this many bytes in any mix of old (zero) and new; recovery's rule for an
 * unwritten sector relies on the bound. */
#define QFS_WAL_INPLACE_MAX (64u << 10)
#define QFS_WAL_SECTOR 512u /* the unit a crash keeps or loses whole */

struct qfs_wal_seg {
	qfs_lsn_t first;        /* LSN of its first record (= file name) */
	qfs_lsn_t last;         /* last record, buffered ones included; first-1 if none */
	qfs_lsn_t durable_last; /* last record on disk and fsync'd; first-1 if none */
	uint64_t size;          /* durable bytes in the file, header included; 0 = no file */
	uint64_t alloc;         /* >= size, and >= the file's size: past size the file
				 * holds zeros and nothing else (opts.zero_ahead;
				 * the tail only) */
	size_t pend_off;        /* start of its unsynced bytes in w->pend */
	size_t pend_len;        /* unsynced bytes (a new segment's header included) */
	int fd;                 /* open O_RDWR for the tail, -1 for the others */
	int exists;             /* file created on disk */
};

struct qfs_wal {
	char *dir;                /* log directory, heap */
	int dfd;                  /* the directory, for openat/unlinkat/fsync */
	uint64_t segment_bytes;   /* seal threshold in bytes */
	uint64_t zero_ahead;      /* opts.zero_ahead */
	struct qfs_wal_seg *segs; /* ordered by first LSN; heap */
	size_t nseg;              /* segments in use */
	size_t segcap;            /* segments allocated */
	uint8_t *pend;            /* encoded unsynced records (+ new segment headers) */
	size_t pend_len;          /* bytes used in pend */
	size_t pend_cap;          /* bytes allocated for pend */
	qfs_lsn_t last;           /* last LSN held, buffered included; 0 if empty */
	qfs_lsn_t durable;        /* last LSN fsync'd; 0 if none */
	int err;                  /* sticky error (-EIO after a failed fsync) */
	uint8_t *rbuf;            /* read window, heap (see struct qfs_wal_rd); above
				   * RD_WINDOW bytes from common/bigbuf.h, given back
				   * after each read (qfs_wal_rbuf_release) */
	size_t rcap;              /* bytes allocated for rbuf */
	/* Read hint: file offset of record hint_lsn in the segment starting at
	 * hint_first, so sequential qfs_wal_read calls do not rescan. 0 = none. */
	qfs_lsn_t hint_first;
	qfs_lsn_t hint_lsn;
	uint64_t hint_off;
	/* The records of the last sync that wrote a large pending buffer (past
	 * PEND_KEEP) or a small one (up to KEPT_SMALL; one segment; with those
	 * of the sync before it when both are small and adjoin), kept
	 * readable from memory for qfs_wal_read_recent: that buffer itself,
	 * held until a read_recent has delivered kept_last, the next such
	 * sync, a truncation that reaches them, or close.  kept == NULL:
	 * none. */
	uint8_t *kept;            /* the sync's pending buffer (large: common/bigbuf.h,
				   * lent while kept, put back when released; small:
				   * malloc'd, becomes spare when released) */
	size_t kept_cap;          /* its capacity in bytes */
	size_t kept_off;          /* first record's header at kept + kept_off */
	qfs_lsn_t kept_first;     /* LSNs of the records held, all durable */
	qfs_lsn_t kept_last;
	qfs_lsn_t kept_seg;       /* first LSN of the segment they are in */
	uint64_t kept_end;        /* file offset just after kept_last in it */
	uint8_t *spare;           /* a released small kept buffer: the next pending
				   * buffer after a sync that keeps one (NULL: none) */
	size_t spare_cap;         /* its capacity in bytes */
	uint64_t kept_foff;       /* file offset of kept_first's record header */
	qfs_lsn_t kept_lfirst;    /* the first record of the last sync among the
				   * kept ones (kept_merge: a small kept buffer
				   * holds the records of the last two syncs) */
	uint64_t kept_lfoff;      /* file offset of kept_lfirst's record header */
};

/* A read window over one file: bytes [off, off + len) of fd are in buf. */
struct qfs_wal_rd {
	int fd;
	uint8_t **buf; /* the owner's buffer (w->rbuf), grown on demand */
	size_t *cap;
	uint64_t off;
	size_t len;
	uint64_t end; /* bytes of the file worth reading (the segment's durable
		       * size): a window stops there, so a read at the tail is
		       * one pread, not a second one that finds the end; 0 = no
		       * limit */
};

/* Big-endian codecs for the format. */
static inline void qfs_wal_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline void qfs_wal_put64(uint8_t *p, uint64_t v)
{
	qfs_wal_put32(p, (uint32_t)(v >> 32));
	qfs_wal_put32(p + 4, (uint32_t)v);
}

static inline uint32_t qfs_wal_get32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline uint64_t qfs_wal_get64(const uint8_t *p)
{
	return ((uint64_t)qfs_wal_get32(p) << 32) | qfs_wal_get32(p + 4);
}

/* Write the 24-byte segment header for first into p. */
void qfs_wal_seg_header(uint8_t *p, qfs_lsn_t first);

/* Write the record header for (lsn, payload p/len) into hdr (16 bytes). */
void qfs_wal_rec_header(uint8_t *hdr, qfs_lsn_t lsn, const void *p, size_t len);

/* Check a record whose 16-byte header and len payload bytes are at rec.
 * Returns 1 if its CRC matches, 0 if not. */
int qfs_wal_rec_ok(const uint8_t *rec, size_t len);

/* Segment file name for first: "%016llx.wal" into name (>= 21 bytes). */
void qfs_wal_seg_name(char *name, qfs_lsn_t first);

/* Read len bytes at file offset off into buf, retrying EINTR and short
 * reads; fewer only where the file ends.  Returns the bytes read or -errno
 * from pread. */
ssize_t qfs_wal_pread_upto(int fd, uint8_t *buf, size_t len, uint64_t off);

/* Make bytes [off, off + n) of the file available: *p points at them, valid
 * until the next call on the same window.  Returns 0, 1 if the file ends
 * before off + n, -ENOMEM or -errno from pread. */
/* Give a read window grown past its usual size for a large record back
 * to the pool (common/bigbuf.h), so that each log does not keep one as
 * large as its largest record.  Call when no qfs_wal_rd uses it. */
void qfs_wal_rbuf_release(struct qfs_wal *w);

int qfs_wal_rd_get(struct qfs_wal_rd *r, uint64_t off, size_t n, const uint8_t **p);

/* Scan the directory and rebuild w->segs, w->last and w->durable, trimming a
 * torn tail (recover.c).  w->dir, w->dfd and w->segment_bytes are set by the
 * caller; on error the caller frees whatever segments were added (their fds
 * included).  Returns 0, -errno, -ENOMEM, QFS_ECORRUPT or QFS_EFORMAT. */
int qfs_wal_recover(struct qfs_wal *w);

/* Make room for one more entry in w->segs.  Returns 0 or -ENOMEM. */
int qfs_wal_seg_reserve(struct qfs_wal *w);

/* Append an entry to w->segs (grows the array).  Returns 0 or -ENOMEM. */
int qfs_wal_seg_push(struct qfs_wal *w, const struct qfs_wal_seg *s);

#endif
