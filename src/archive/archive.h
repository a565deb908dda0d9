/*
 * archive.h - WAL archiving to an object store, and point-in-time restore
 * from it (DESIGN.md section 5; formats and keys: doc/format-archive.md;
 * operations: doc/archive.md).
 *
 * The archiver is one background thread per mount.  Every interval (and when
 * a node seals a segment by age) it visits each group of the cell:
 * uploads the sealed WAL segments whose records are all applied and not yet
 * archived, under deterministic keys (a retry rewrites the same object),
 * then rewrites the group's manifest, and only after the manifest is stored
 * asks the cell to delete the local segments below the archived LSN (on
 * every replica, and never below what every replica applied).  Every
 * snap_segments segments or snap_bytes bytes it also uploads a consistent
 * snapshot of the group's items, listed in the manifest, to bound restore
 * time.  The segments of one replica are uploaded, node 1's (archived
 * segments must continue each other exactly and each replica cuts its own):
 * while node 1 is down archiving pauses and its lag grows (node/cell.h).
 *
 * Failures never stop the mount: a group whose upload fails keeps its local
 * segments, its error is kept for status, and the thread retries with
 * backoff (1 s doubling to 8 s).  An authentication failure (-EACCES) also
 * raises an alarm shown in status until an upload succeeds again.
 *
 * Thread-safety: start/stop from one thread; status/summary/kick from any
 * thread while it runs.
 */
#ifndef QFS_ARCHIVE_ARCHIVE_H
#define QFS_ARCHIVE_ARCHIVE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "node/cell.h"
#include "objstore/objstore.h"

#define QFS_ARCHIVE_INTERVAL_DEFAULT_MS 1000u
#define QFS_ARCHIVE_SNAP_SEGMENTS_DEFAULT 16u
#define QFS_ARCHIVE_SNAP_BYTES_DEFAULT (1ull << 30)
#define QFS_ARCHIVE_RETENTION_DEFAULT_NS (7ull * 86400 * 1000000000ull) /* 7 days */

struct qfs_archive_opts {
	struct qfs_objstore_cfg store; /* where to archive (copied at start) */
	uint32_t interval_ms;          /* pass period; 0: default */
	uint32_t snap_segments;        /* snapshot after this many archived segments; 0: default */
	uint64_t snap_bytes;           /* ... or this many archived bytes; 0: default */
	const char *tmp_dir;           /* where snapshots are staged; NULL: $TMPDIR or /tmp */
	uint64_t stuck_ms;             /* "alarm stuck" once a record waits longer than this
					  (give 3 x the seal age); 0: QFS_ARCHIVE_STUCK_DEFAULT_MS */
	uint64_t retention_ns;         /* keep what restores to any time this far back;
					  0: QFS_ARCHIVE_RETENTION_DEFAULT_NS, UINT64_MAX: keep all */
};
#define QFS_ARCHIVE_STUCK_DEFAULT_MS 180000ull

struct qfs_archive;

/* Open the object store client and start the archiver thread over cell n
 * (which must outlive it).  Does not touch the network.  *out set only on
 * success.  Errors: those of qfs_objstore_open (-EINVAL bad URL, -EACCES
 * credentials file readable by others or missing credentials), -ENOMEM,
 * -errno of pthread_create. */
int qfs_archive_start(struct qfs_cell *n, const struct qfs_archive_opts *o, struct qfs_archive **out);

/* Stop the thread (an upload in progress finishes first), close the client
 * and free a.  Local segments not yet archived stay for the next start.
 * NULL does nothing. */
void qfs_archive_stop(struct qfs_archive *a);

/* Wake the thread for a pass now (e.g. a segment was sealed). */
void qfs_archive_kick(struct qfs_archive *a);

/* Archive group up to what it had applied when the call began: seal node
 * 1's open segment, kick the thread and wait until the stored manifest
 * reaches it, at most timeout_ms.  Caller's thread, no lock held; the
 * archiver must run.  0, -ETIMEDOUT (the store is slow or refuses: the
 * group's error is in status), QFS_ESTOPPED (node 1 down: archiving
 * pauses), the group's last archive error. */
#define QFS_ARCHIVE_DROP_WAIT_MS 10000u
int qfs_archive_flush(struct qfs_archive *a, qfs_group_t group, uint32_t timeout_ms);
/* The router's drop hook (router.h qfs_router_set_drop_hook; arg: the
 * archive): qfs_archive_flush of the group and then of the groups the cell
 * pins (qfs_cell_pinned: the meta group, which holds the table list), each bounded by QFS_ARCHIVE_DROP_WAIT_MS, so that a dropped
 * table can be restored as of any time it existed.  Logs and returns the
 * first failure; the caller drops the group anyway. */
int qfs_archive_drop_hook(qfs_group_t group, void *arg);

/* Append the text of .quorumfs/archive (see doc/archive.md): one header
 * line, an alarm line while authentication fails, one line per partition. */
void qfs_archive_status(struct qfs_archive *a, struct qfs_buf *out);
/* Append the archiver's active alarms for .quorumfs/alarms (doc/scrub.md):
 * "alarm archive-auth raised TIME \"why\"" while authentication fails, and
 * "alarm archive-stuck raised TIME \"why\"" while archiving is stuck (node 1
 * down, or a record unarchived longer than stuck_ms; TIME: the oldest
 * waiting record's). */
void qfs_archive_alarms(struct qfs_archive *a, struct qfs_buf *out);
/* Append the one "archive ..." summary line of .quorumfs/status. */
void qfs_archive_summary(struct qfs_archive *a, struct qfs_buf *out);

/* Restore (restore.c): rebuild a table, or one path in it, as of time_ns,
 * from the archive alone, into the directory to (created; must not exist or
 * be empty).  See doc/archive.md for what is restored.  Runs on the
 * caller's thread, prints progress to stderr when verbose.  Returns 0, or a
 * negative error with a one-line reason in err: -ENOENT (no such table or
 * path at that time), -ENODATA (the archive does not cover that time),
 * QFS_ECORRUPT (an archived object fails its checksum: named in err),
 * errors of the object store and of the destination filesystem. */
struct qfs_restore_opts {
	struct qfs_objstore_cfg store;
	const char *table;             /* table name */
	const char *path;              /* path inside the table, NULL or "" or "/": all of it */
	uint64_t time_ns;              /* wall-clock ns since the epoch; UINT64_MAX: latest */
	const char *to;                /* destination directory */
	const char *tmp_dir;           /* scratch RocksDB and downloads; NULL: $TMPDIR or /tmp */
	int verbose;
};
int qfs_restore_run(const struct qfs_restore_opts *o, char *err, size_t err_len);

/* Parse a restore time (see archive_int.h qfs_arch_parse_time): "latest",
 * "@EPOCH[.frac]" or RFC 3339 UTC.  0 or -EINVAL. */
int qfs_archive_parse_time(const char *s, uint64_t *out_ns);

/* For the scrubber (src/scrub, reached through callbacks the program wires,
 * doc/scrub.md).  Both open their own client on cfg and a scratch directory
 * under tmp_dir (NULL: $TMPDIR or /tmp), and verify every object they read
 * (object store checksum, size and CRC-32C against the manifest, every
 * record's CRC).  err gets a one-line reason on failure.
 *
 * qfs_archive_reference: the reference replica of group as of exactly lsn,
 * built from the archive alone (the newest snapshot at or below lsn, then
 * the archived segments replayed through qfs_store_apply, as restore does)
 * into the private store st.  0, -EAGAIN (the archive does not reach lsn
 * yet), -ENODATA (a hole), QFS_ECORRUPT, store and object store errors.
 *
 * qfs_archive_verify_group: re-read the manifest, every segment and every
 * snapshot of group and check them (manifest checksum and LSN continuity
 * included); *objects gets how many were read.  0, -EAGAIN (nothing
 * archived yet), QFS_ECORRUPT (a corrupt or missing object: named in err),
 * object store errors. */
struct qfs_store;
int qfs_archive_reference(const struct qfs_objstore_cfg *cfg, const char *tmp_dir, qfs_group_t group,
			  qfs_lsn_t lsn, struct qfs_store *st, char *err, size_t err_len);
int qfs_archive_verify_group(const struct qfs_objstore_cfg *cfg, const char *tmp_dir,
			     qfs_group_t group, uint64_t *objects, char *err, size_t err_len);

#endif
