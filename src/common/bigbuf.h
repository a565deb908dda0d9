/*
 * bigbuf.h - a small process-wide pool of large heap buffers (1 MiB and
 * up) for the write path's short-lived copies of a write-back: the WAL's
 * pending buffer (src/wal), the frames of the in-process transport
 * (src/net) and the Paxos encoder's scratch frame (src/node/drive.c).
 *
 * Why: glibc serves an allocation of M_MMAP_THRESHOLD (1 MiB here,
 * src/cmd/main.c) or more with a fresh mmap and unmaps it on free, so
 * every 8 MiB write-back faulted its buffers in page by page, each time
 * (doc/perf.md "AFTER 11").  A buffer given back here is kept, still
 * mapped and faulted in, for the next one.
 *
 * Bounds: at most QFS_BIGBUF_KEEP buffers and QFS_BIGBUF_KEEP_BYTES of
 * capacity are held while unused (a put beyond that frees the buffer at
 * once); a buffer unused for QFS_BIGBUF_IDLE_MS is freed by the next
 * get, put or qfs_bigbuf_trim() (the cell's keeper calls it with its
 * malloc_trim), so an idle daemon holds none.  Buffers in use are the
 * caller's and are not counted, except those a caller keeps for a while
 * and lends (qfs_bigbuf_lend: the WAL's last large sync, kept for the
 * apply), which lower the byte bound of the held ones.
 *
 * Size: an 8 MiB write-back has about eight large buffers in use at
 * once in the embedded cell (the router's encoded entry, the leader's
 * pending buffer, the entry read back from its WAL by the driver, the
 * frames, the followers' pending buffers, the applies' read windows);
 * with 3 held (27 MiB) most of them were fresh mmaps each time: 1.6-1.9 M
 * minor faults per GiB written, and a fault is expensive on a
 * paravirtualised guest.  8 held, 72 MiB (eight 9 MiB buffers), cut the
 * dd's faults to about 0.4 M per GiB and its CPU about 3x, for about
 * 10 MiB more VmHWM (doc/perf.md AFTER 34).
 *
 * Every buffer comes from malloc(): one may also be freed with free()
 * (it is then simply not reused).  Thread-safe (one mutex, held only to
 * pick or file a buffer, never across malloc or free of a large one).
 * Under AddressSanitizer a held buffer is poisoned until a get hands it
 * out again: a use after put is reported as a use after free would be.
 */
#ifndef QFS_COMMON_BIGBUF_H
#define QFS_COMMON_BIGBUF_H

#include <stddef.h>
#include <stdint.h>

#define QFS_BIGBUF_MIN (1u << 20)         /* smaller requests: plain malloc */
#define QFS_BIGBUF_ROUND (1u << 20)       /* capacities are multiples of this */
#define QFS_BIGBUF_KEEP 8                 /* unused buffers held, at most */
#define QFS_BIGBUF_KEEP_BYTES (72u << 20) /* their capacity, at most */
#define QFS_BIGBUF_IDLE_MS 2000           /* an unused buffer is freed after */

struct qfs_bigbuf_stats {
	uint64_t hits;       /* gets served by a held buffer */
	uint64_t misses;     /* gets that allocated (size >= QFS_BIGBUF_MIN) */
	uint64_t drops;      /* buffers a put freed for a full pool (its
			      * own, or a smaller one it displaced) */
	uint64_t idle_frees; /* held buffers freed for being unused too long */
	uint32_t held;       /* buffers held now */
	uint64_t held_bytes; /* their capacity */
	uint64_t lent_bytes; /* capacity kept by callers (qfs_bigbuf_lend) */
};

/* A buffer of at least size bytes (contents undefined); *cap gets its
 * capacity (size rounded up to QFS_BIGBUF_ROUND when size >=
 * QFS_BIGBUF_MIN, else size).  A held buffer is reused when one is large
 * enough (the smallest such), else one is allocated.  The caller owns
 * it: give it back with qfs_bigbuf_put(p, *cap) or free(p).  NULL if out
 * of memory (*cap untouched). */
void *qfs_bigbuf_get(size_t size, size_t *cap);

/* Give back p of capacity cap (as qfs_bigbuf_get returned it; NULL:
 * nothing).  Below QFS_BIGBUF_MIN p is freed; else it is held for the
 * next get, unless the pool is full (QFS_BIGBUF_KEEP buffers or
 * QFS_BIGBUF_KEEP_BYTES): then p replaces the smallest held buffer when
 * that one is smaller (it is freed), or is freed itself.  The caller
 * must not touch p after. */
void qfs_bigbuf_put(void *p, size_t cap);

/* A buffer of cap bytes that a caller keeps in use for a while instead of
 * putting it back (the WAL's records of its last large sync, kept for the
 * apply) counts against the pool's byte bound from qfs_bigbuf_lend until
 * qfs_bigbuf_unlend(cap): held buffers past the lowered bound are freed
 * at once, and puts respect it, so the pool's held buffers and the kept
 * ones together stay within QFS_BIGBUF_KEEP_BYTES as long as the kept ones
 * do (past it, none is held; the kept ones themselves are their callers'
 * and not bounded here: one per WAL).  Unlend exactly what was lent, once
 * (an excess is ignored). */
void qfs_bigbuf_lend(size_t cap);
void qfs_bigbuf_unlend(size_t cap);

/* Free the held buffers unused for idle_ms or more (0: all of them). */
void qfs_bigbuf_trim(uint32_t idle_ms);

/* The pool's counters (for tests and .quorumfs/stats). */
void qfs_bigbuf_stats(struct qfs_bigbuf_stats *out);

#endif
