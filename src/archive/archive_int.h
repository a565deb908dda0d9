/*
 * archive_int.h - the archive's object formats and the pure logic around
 * them, shared by the archiver thread (archive.c), restore (restore.c) and
 * tests/unit/check_archive.c.  Code: manifest.c.  Formats, keys and the
 * point-in-time rule: doc/format-archive.md (the single description; the
 * constants below are its single source of truth in code).
 *
 * Nothing here does I/O, reads a clock or takes a lock.
 */
#ifndef QFS_ARCHIVE_ARCHIVE_INT_H
#define QFS_ARCHIVE_ARCHIVE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/qfs.h"

#define QFS_ARCH_MANIFEST_MAGIC "quorumfs-manifest"
#define QFS_ARCH_MANIFEST_VERSION 1
#define QFS_ARCH_KEY_MAX 128

/* Snapshot object: 48-byte header, records, 24-byte trailer. */
#define QFS_ARCH_SNAP_MAGIC 0x5146534eu   /* "QFSN" */
#define QFS_ARCH_SNAP_END_MAGIC 0x51465345u /* "QFSE" */
#define QFS_ARCH_SNAP_VERSION 1u
#define QFS_ARCH_SNAP_HDR 48u
#define QFS_ARCH_SNAP_REC_HDR 8u
#define QFS_ARCH_SNAP_TRAILER 24u
#define QFS_ARCH_SNAP_VAL_MAX (64u << 20)

/* One archived WAL segment (a manifest "seg" line). */
struct qfs_arch_seg {
	qfs_lsn_t first, last;     /* LSN range of its records, first <= last */
	uint64_t size;             /* bytes of the object (the segment file) */
	uint32_t crc;              /* CRC-32C of the object */
	uint64_t t_first, t_last;  /* time_ns of its first and last entry */
};

/* One archived partition snapshot (a manifest "snap" line). */
struct qfs_arch_snap {
	qfs_lsn_t lsn;             /* state after applying 1..lsn */
	uint64_t size;             /* bytes of the object */
	uint32_t crc;              /* CRC-32C of the object */
	uint64_t time_ns;          /* wall clock after the scan: >= every entry time <= lsn */
	uint64_t items;            /* items in it */
};

/* A partition's manifest, decoded.  Segments are contiguous and ascending;
 * snapshots ascending by lsn. */
struct qfs_arch_manifest {
	qfs_group_t group;
	struct qfs_arch_seg *segs; /* heap */
	size_t nsegs, segcap;
	struct qfs_arch_snap *snaps; /* heap */
	size_t nsnaps, snapcap;
};

void qfs_arch_manifest_init(struct qfs_arch_manifest *m, qfs_group_t group);
void qfs_arch_manifest_close(struct qfs_arch_manifest *m);
/* Last archived LSN (0 if no segment). */
qfs_lsn_t qfs_arch_manifest_last(const struct qfs_arch_manifest *m);
/* Append s.  It must start right after the last segment (any first LSN when
 * there is none).  0, -EINVAL (not contiguous, or first > last), -ENOMEM. */
int qfs_arch_manifest_add_seg(struct qfs_arch_manifest *m, const struct qfs_arch_seg *s);
/* Append s; its lsn must exceed the last snapshot's.  0, -EINVAL, -ENOMEM. */
int qfs_arch_manifest_add_snap(struct qfs_arch_manifest *m, const struct qfs_arch_snap *s);
/* Text form (doc/format-archive.md) appended to out (errors latched in out). */
void qfs_arch_manifest_encode(const struct qfs_arch_manifest *m, struct qfs_buf *out);
/* Parse p[0..len) into m (initialised; replaced on success, untouched on
 * error).  0, QFS_EFORMAT (other version), QFS_ECORRUPT (anything else
 * wrong: checksum, syntax, order, another group), -ENOMEM. */
int qfs_arch_manifest_decode(const void *p, size_t len, qfs_group_t group,
			     struct qfs_arch_manifest *m);

/* Object keys, written into out (QFS_ARCH_KEY_MAX bytes). */
void qfs_arch_key_manifest(char *out, qfs_group_t group);
void qfs_arch_key_seg(char *out, qfs_group_t group, qfs_lsn_t first, qfs_lsn_t last);
void qfs_arch_key_snap(char *out, qfs_group_t group, qfs_lsn_t lsn);

/* Walk a WAL segment image (doc/format-wal.md) held in memory: checks the
 * header, every record's CRC-32C, consecutive LSNs and the entry framing,
 * calls cb (if not NULL) per record with the decoded entry's fields, and
 * fills *out (first, last, size, crc, times).  cb returns nonzero to stop:
 * the walk then returns that value and *out is not written.  Errors:
 * QFS_ECORRUPT (with what is wrong in why, if not NULL), QFS_EFORMAT. */
typedef int (*qfs_arch_rec_cb)(qfs_lsn_t lsn, uint8_t type, uint64_t time_ns, const uint8_t *data,
			       size_t len, void *arg);
int qfs_arch_seg_walk(const uint8_t *p, size_t len, qfs_arch_rec_cb cb, void *arg,
		      struct qfs_arch_seg *out, const char **why);

/* Snapshot codec pieces (the writer streams, so the header comes last). */
void qfs_arch_snap_header(uint8_t out[QFS_ARCH_SNAP_HDR], qfs_group_t group, qfs_lsn_t lsn,
			  uint64_t time_ns);
void qfs_arch_snap_rec_header(uint8_t out[QFS_ARCH_SNAP_REC_HDR], uint32_t klen, uint32_t vlen);
void qfs_arch_snap_trailer(uint8_t out[QFS_ARCH_SNAP_TRAILER], uint64_t items, uint32_t rec_crc);
/* Check and walk a whole snapshot image: cb per item (nonzero stops and is
 * returned).  *group, *lsn, *time_ns, *items set on 0.  Errors QFS_ECORRUPT
 * (why set), QFS_EFORMAT. */
typedef int (*qfs_arch_item_cb)(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen,
				void *arg);
int qfs_arch_snap_walk(const uint8_t *p, size_t len, qfs_arch_item_cb cb, void *arg,
		       qfs_group_t *group, qfs_lsn_t *lsn, uint64_t *time_ns, uint64_t *items,
		       const char **why);

/* Point-in-time plan for one partition: the snapshot to start from and the
 * segments to replay for time t_ns (UINT64_MAX: everything).
 *   snap   index of the newest snapshot with time_ns <= t_ns, or -1;
 *   from   LSN after which replay starts (the snapshot's lsn, or 0);
 *   seg_lo, seg_hi  segments [seg_lo, seg_hi) to fetch: those holding LSNs
 *          above from, stopping before the first one whose first entry is
 *          later than t_ns.  Replay then stops at the first entry later
 *          than t_ns (the state is always a prefix of the log).
 * Errors: -ENODATA when the archive cannot reach back to that point (no
 * snapshot usable and the segments do not start at LSN 1, or a hole
 * between the snapshot and the segments). */
struct qfs_arch_plan {
	long snap;
	qfs_lsn_t from;
	size_t seg_lo, seg_hi;
};
int qfs_arch_plan(const struct qfs_arch_manifest *m, uint64_t t_ns, struct qfs_arch_plan *out);

/* Parse a restore time: "latest" (UINT64_MAX), "@SECONDS[.FRACTION]", or
 * RFC 3339 UTC "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+00:00)" (a space may
 * replace the T).  0 or -EINVAL. */
int qfs_arch_parse_time(const char *s, uint64_t *out_ns);

/* Retention (retention.c).  qfs_arch_retain: how many leading segments
 * (*nsegs) and snapshots (*nsnaps) of m no restore to a time >= start_ns
 * needs: the snapshots older than the newest one taken at or before
 * start_ns, and the segments wholly at or below that snapshot's LSN (never
 * the last segment).  Nothing when no snapshot is that old.
 * qfs_arch_earliest: the earliest time m can restore to: 0 (its log starts
 * at LSN 1), the time of the oldest snapshot that reaches the first
 * segment, or UINT64_MAX (none does).
 * The lock pair keeps deletions (exclusive) away from readers in this
 * process (the scrubber); restore in another process is not covered. */
void qfs_arch_retain(const struct qfs_arch_manifest *m, uint64_t start_ns, size_t *nsegs,
		     size_t *nsnaps);
uint64_t qfs_arch_earliest(const struct qfs_arch_manifest *m);
void qfs_arch_read_lock(void);
void qfs_arch_read_unlock(void);
void qfs_arch_delete_lock(void);
void qfs_arch_delete_unlock(void);

#endif
