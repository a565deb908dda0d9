/*
 * scrub.h - continuous verification (DESIGN.md sections 3 and 5; design,
 * formats and limits: doc/scrub.md).  A pass visits every group of the
 * cell: each running replica takes a store snapshot at one and the same
 * LSN (in its own I/O thread, while writes go on), the snapshots are read
 * with RocksDB's block checksums verified and summed over key ranges
 * (sum.h); differing ranges are narrowed to the items.  A replica that
 * differs from the two others that agree is rebuilt from them (snapshot
 * transfer); a replica whose RocksDB reports corruption is stopped and its
 * node rebuilt (the node's replicas share one RocksDB); without a majority
 * nothing is overwritten and an alarm says what to do.  Every finding is
 * logged, counted and kept as an alarm until a later verification clears
 * it.
 *
 * Reference comparison: the majority's range sums at L are kept until the
 * archive reaches L; then a reference replica is rebuilt from the archive
 * alone (latest snapshot at or below L + the segments after it) in scratch
 * space and summed over the same ranges: a difference (what all replicas
 * got wrong alike, or what the archive lost) raises an alarm and nothing is
 * overwritten.  Archive verification re-reads every archived object of
 * each group.  Both go through callbacks (scrub does not include
 * src/archive; the program wires qfs_archive_reference/verify_group).
 * Archive retention lives in src/archive (retention.c).
 *
 * Thread-safety: start/stop/run from one thread; kick, status and alarms
 * from any thread while it runs.
 */
#ifndef QFS_SCRUB_SCRUB_H
#define QFS_SCRUB_SCRUB_H

#include <stdint.h>

#include "common/buf.h"
#include "node/cell.h"
#include "store/store.h"

#define QFS_SCRUB_INTERVAL_DEFAULT_MS (6ull * 3600 * 1000) /* a pass every 6 h */
#define QFS_SCRUB_RATE_DEFAULT (8ull << 20)                 /* 8 MiB/s of replica reads */
#define QFS_SCRUB_SNAP_TIMEOUT_MS 5000u

struct qfs_scrub_opts {
	uint64_t interval_ms;    /* between the starts of passes; 0: default; UINT64_MAX: only on kick */
	uint64_t rate_bytes;     /* bytes/s read from replicas; 0: default; UINT64_MAX: unpaced */
	int repair;              /* 1: rebuild a minority or corrupt replica */
	/* Optional: every finding as one line (offline command), and the pass's
	 * progress in percent; called on the scrub's thread, no lock held. */
	void (*finding)(void *arg, const char *line);
	void (*progress)(void *arg, unsigned pct);
	void *arg;
	/* The archive (NULL: no reference comparison, no archive checks):
	 * reference builds group's state as of exactly lsn from the archive
	 * into the empty private store st (0, -EAGAIN: not archived that far
	 * yet, other errors with a reason in err); archive_verify re-reads and
	 * checks every archived object of group (0, -EAGAIN, QFS_ECORRUPT...). */
	int (*reference)(void *arg, qfs_group_t group, qfs_lsn_t lsn, struct qfs_store *st, char *err,
			 size_t err_len);
	int (*archive_verify)(void *arg, qfs_group_t group, uint64_t *objects, char *err, size_t err_len);
	void *archive_arg;
	const char *tmp_dir;     /* scratch space for reference replicas; NULL: $TMPDIR or /tmp */
};

struct qfs_scrub;

/* Counts of one pass (qfs_scrub_run) or since start. */
struct qfs_scrub_counts {
	uint64_t groups;         /* groups visited */
	uint64_t mismatches;     /* replicas found differing (one per replica and group) */
	uint64_t corrupt;        /* replicas whose RocksDB reported corruption */
	uint64_t repaired;       /* replicas rebuilt */
	uint64_t skipped;        /* groups or replicas that could not be compared */
	uint64_t reference;      /* groups compared with their reference replica */
	uint64_t archive_bad;    /* groups whose archive failed verification */
};

/* Start the background thread over cell c (which must outlive it); passes
 * run every interval and on kick.  *out set only on success.  -ENOMEM,
 * -errno of pthread_create. */
int qfs_scrub_start(struct qfs_cell *c, const struct qfs_scrub_opts *o, struct qfs_scrub **out);
/* Stop the thread (a pass in progress ends at its next item) and free s.
 * NULL does nothing. */
void qfs_scrub_stop(struct qfs_scrub *s);
/* Start a pass now: 0, or -EBUSY if one is running. */
int qfs_scrub_kick(struct qfs_scrub *s);

/* Text of .quorumfs/scrub (doc/scrub.md):
 *   state idle|running
 *   passes N
 *   mismatches N
 *   repaired N
 *   progress P
 *   group <16hex> lsn L time T result R      (one per group verified)  */
void qfs_scrub_status(struct qfs_scrub *s, struct qfs_buf *out);
/* Active alarms, one per line: "alarm KIND raised TIME DETAILS". */
void qfs_scrub_alarms(struct qfs_scrub *s, struct qfs_buf *out);

/* One pass on the caller's thread (the offline command): no background
 * thread; findings go to o->finding.  *out gets the pass's counts.  0, or
 * -ENOMEM.  Findings are not errors. */
int qfs_scrub_run(struct qfs_cell *c, const struct qfs_scrub_opts *o, struct qfs_scrub_counts *out);

#endif
