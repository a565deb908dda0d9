/*
 * archive.c - the archiver thread (contract: archive.h; formats and keys:
 * doc/format-archive.md; operations: doc/archive.md).
 *
 * One pass visits every group the node hosts (struct part per group):
 *   1. the first time, load the group's manifest from the object store (an
 *      absent manifest is an empty archive) and check that the local WAL's
 *      sealed segments already listed in it have the same LSN ranges and
 *      sizes (another data directory's archive is refused, never trimmed);
 *   2. list the WAL directory: every file but the highest-named is sealed
 *      (doc/format-wal.md); upload, in LSN order, each sealed segment whose
 *      records are all applied and above the archived LSN, after checking
 *      every record's CRC; the object is the segment file as is;
 *   3. rewrite the manifest (only after the segments are stored);
 *   4. once the manifest is stored, ask the node to delete the local
 *      segments below the archived LSN (it syncs the store first);
 *   5. every snap_segments segments / snap_bytes bytes, stage a consistent
 *      snapshot of the group in tmp_dir, upload it, list it in the manifest;
 *   6. publish status (lag in bytes and age of the oldest unarchived record).
 * A failure stops that group's pass; the next pass retries (backoff 1..8 s).
 * Leader rule: a replica uploads only groups it leads (every group today).
 *
 * Threads and locks: the archiver thread alone touches the object store,
 * the manifests and a part's private fields.  a->mu protects the part list
 * and the published status fields (marked "mu"), the kick flag and stop.
 * Status readers take a->mu only.  Node calls are made with no lock held.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "archive/archive.h"
#include "archive/archive_int.h"
#include "common/clock.h"
#include "common/crc32c.h"
#include "common/glist.h"
#include "common/log.h"
#include "common/sysio.h"
#include "common/txn.h"
#include "node/entry.h"
#include "wal/wal.h"

#define ERR_MAX 256
#define PASS_MAX_SEGMENTS 16   /* uploads per group per pass, so others get a turn */
#define BACKOFF_MIN_MS 1000u
#define BACKOFF_MAX_MS 8000u
#define SNAP_FLUSH (1u << 20)
#define NUDGE_MIN_BYTES (1u << 20) /* a held segment worth a no-op record to let it go */

struct part {
	qfs_group_t group;
	/* archiver thread only: */
	int loaded;                    /* manifest read (or found absent) */
	int verified;                  /* local WAL checked against the manifest */
	int dirty;                     /* manifest has entries not yet stored */
	struct qfs_arch_manifest man;
	qfs_lsn_t stored;              /* last LSN listed in the stored manifest */
	qfs_lsn_t released;            /* local WAL released below stored + 1 */
	qfs_lsn_t nudged;              /* stored when the last no-op was proposed (nudge) */
	uint32_t since_snap_segs;      /* segments archived since the last snapshot */
	uint64_t since_snap_bytes;
	int seen;                      /* hosted in the current pass */
	qfs_lsn_t lag_seg;             /* first LSN of the segment lag_time was read from */
	uint64_t lag_time;             /* its first stamped record's time_ns, kept when that
					  record was applied (0: read it again) */
	/* published; protected by a->mu: */
	qfs_lsn_t st_archived, st_applied, st_snap;
	uint64_t st_earliest;          /* earliest restorable time (ns; 0: the beginning) */
	uint64_t st_lag_bytes;
	uint64_t st_oldest_ns;         /* wall ns of the oldest unarchived record; 0: none */
	int st_paused;                 /* node 1 (the archive source) is down */
	uint32_t st_pending;
	int st_err;                    /* last error code, 0 if the last pass was clean */
	char st_errmsg[ERR_MAX];       /* last error, kept after recovery ("-" if none ever) */
};

struct qfs_archive {
	struct qfs_cell *n;
	struct qfs_objstore *os;
	char *url;                     /* for status */
	char *tmp_dir;
	uint32_t interval_ms, snap_segments;
	uint64_t snap_bytes;
	uint64_t retention_ns;         /* UINT64_MAX: keep everything */
	uint64_t deleted;              /* mu: objects deleted by retention */
	uint32_t backoff_ms;           /* archiver thread only */
	uint64_t stuck_ms;             /* alarm when a record waits longer than this */
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;             /* kick or stop; CLOCK_MONOTONIC */
	pthread_cond_t pass_cv;        /* a group's pass ended (flush waits); CLOCK_MONOTONIC */
	int kicked, stop;              /* mu */
	struct part **parts;           /* mu; sorted by group; freed by the thread only */
	size_t nparts;                 /* mu */
	char alarm[ERR_MAX];           /* mu; "" when no alarm */
	uint64_t alarm_ns;             /* mu; wall ns when the alarm was raised */
	int stuck_logged, auth_logged; /* archiver thread only: the alarm up at its last log line */
	uint64_t up_segs, up_bytes, up_snaps; /* mu */
	uint64_t passes;               /* mu */
	int link;                      /* the store links sealed segments (archive_link) */
	int disk_shared;               /* archiver thread: 1 the store is a directory on
					  node 1's disk (its copies take that space), 0
					  not, -1 not known yet */
	int snap_deferred;             /* archiver thread: the deferral was logged */
};

/* ---------------------------------------------------------------- helpers */

static uint64_t wall_ns(void)
{
	struct qfs_ts t;

	qfs_clock_now(&t);
	return (uint64_t)t.sec * 1000000000ull + t.nsec;
}

static void clean(char *s)
{
	for (; *s; s++)
		if (*s == '"' || *s == '\n' || *s == '\r')
			*s = '\'';
}

/* Record err for pt (and the auth alarm) with a description; logs when the
 * message changes.  Archiver thread. */
static void part_fail_as(struct qfs_archive *a, struct part *pt, int err, const char *what,
			 const char *key, int from_store)
{
	char msg[ERR_MAX];
	/* The store's last error belongs to the last store call, which is
	 * this group's only when the failure came from one. */
	const char *detail = from_store && a->os ? qfs_objstore_last_error(a->os) : "";
	int changed;

	snprintf(msg, sizeof(msg), "%s%s%s: %s%s%s", what, key ? " " : "", key ? key : "",
		 qfs_strerror(err), detail && *detail ? ": " : "", detail ? detail : "");
	clean(msg);
	pthread_mutex_lock(&a->mu);
	changed = strcmp(msg, pt->st_errmsg) != 0 || pt->st_err != err;
	pt->st_err = err;
	memcpy(pt->st_errmsg, msg, sizeof(msg));
	if (err == -EACCES && !a->alarm[0])
		a->alarm_ns = wall_ns();
	if (err == -EACCES)
		snprintf(a->alarm, sizeof(a->alarm), "authentication refused by %s: %s",
			 qfs_objstore_describe(a->os), msg);
	pthread_mutex_unlock(&a->mu);
	if (changed)
		QFS_LOG(err == -EACCES ? QFS_LOG_ERR : QFS_LOG_WARN,
			"archive failed group=%016llx err=\"%s\"", (unsigned long long)pt->group, msg);
}

/* A failure of pt's own (not of an object store call). */
static void part_fail(struct qfs_archive *a, struct part *pt, int err, const char *what, const char *key)
{
	part_fail_as(a, pt, err, what, key, 0);
}

/* A failure of an object store call made for pt. */
static void part_fail_store(struct qfs_archive *a, struct part *pt, int err, const char *what,
			    const char *key)
{
	part_fail_as(a, pt, err, what, key, 1);
}

static void part_ok(struct qfs_archive *a, struct part *pt)
{
	pthread_mutex_lock(&a->mu);
	if (pt->st_err)
		QFS_LOG(QFS_LOG_INFO, "archive recovered group=%016llx", (unsigned long long)pt->group);
	pt->st_err = 0;
	pthread_mutex_unlock(&a->mu);
}

/* Map the file at path read-only (a segment is walked without copying it
 * to the heap, so its pages never count against the daemon's memory once
 * unmapped).  *data and *len set only on success; an empty file maps to a
 * static empty buffer.  0 or -errno. */
static int map_file(const char *path, uint8_t **data, size_t *len)
{
	static uint8_t empty[1];
	struct stat st;
	void *p;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
	} else if (st.st_size == 0) {
		*data = empty;
		*len = 0;
	} else if ((p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0)) == MAP_FAILED) {
		rc = -errno;
	} else {
		*data = p;
		*len = (size_t)st.st_size;
	}
	close(fd);
	return rc;
}

/* Walk callback of upload_segment: drop from the mapping the pages the walk
 * has passed (it reads each byte once, in order), so a 64 MiB segment never
 * counts whole in the daemon's resident memory. */
struct behind {
	uint8_t *base;  /* the mapping */
	size_t done;    /* bytes from base already dropped (page-aligned) */
};

static int drop_behind(qfs_lsn_t lsn, uint8_t type, uint64_t time_ns, const uint8_t *data, size_t len,
		       void *arg)
{
	struct behind *b = arg;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t end = ((size_t)(data - b->base) / page) * page;

	(void)lsn, (void)type, (void)time_ns, (void)len;
	if (end >= b->done + (4u << 20)) {
		madvise(b->base + b->done, end - b->done, MADV_DONTNEED);
		b->done = end;
	}
	return 0;
}

static void unmap_file(uint8_t *data, size_t len)
{
	if (len)
		munmap(data, len);
}

/* Give back a segment image: mapped by map_file (mapped) or malloc'd. */
static void release_image(uint8_t *data, size_t len, int mapped)
{
	if (mapped)
		unmap_file(data, len);
	else
		free(data);
}

/* ---------------------------------------------------------------- local WAL */

/* time_ns of the first stamped record of a segment file (a new leader's
 * NOOP barrier carries no time: the records after it are looked at, up to
 * 64), 0 if none or unreadable; *lsn the record's LSN. */
static uint64_t first_record_time(const char *dir, qfs_lsn_t first, qfs_lsn_t *lsn)
{
	struct qfs_wal_segrd r;
	struct qfs_wal_rec rec;
	struct qfs_node_entry e;
	char path[PATH_MAX];
	uint64_t t = 0;

	if (qfs_wal_seg_path(path, sizeof(path), dir, first) != 0)
		return 0;
	if (qfs_wal_segrd_open(&r, path) == 0)
		for (int i = 0; i < 64 && !t && qfs_wal_segrd_next(&r, &rec) == 1; i++)
			if (qfs_node_entry_decode(rec.lsn, rec.data, rec.len, &e) == 0) {
				t = e.time_ns;
				*lsn = rec.lsn;
			}
	qfs_wal_segrd_close(&r);
	return t;
}

/* ---------------------------------------------------------------- manifest */

static int manifest_load(struct qfs_archive *a, struct part *pt)
{
	char key[QFS_ARCH_KEY_MAX];
	void *data = NULL;
	size_t len = 0;
	int rc;

	qfs_arch_key_manifest(key, pt->group);
	rc = qfs_objstore_get(a->os, key, 0, 0, &data, &len);
	if (rc == -ENOENT) {
		qfs_arch_manifest_close(&pt->man);
		pt->loaded = 1;
		return 0;
	}
	if (rc) {
		part_fail_store(a, pt, rc, "manifest get", key);
		return rc;
	}
	rc = qfs_arch_manifest_decode(data, len, pt->group, &pt->man);
	free(data);
	if (rc) {
		part_fail(a, pt, rc, "manifest unreadable", key);
		return rc;
	}
	pt->loaded = 1;
	pt->stored = qfs_arch_manifest_last(&pt->man);
	pt->released = 0;
	return 0;
}

static int manifest_store(struct qfs_archive *a, struct part *pt)
{
	char key[QFS_ARCH_KEY_MAX];
	struct qfs_buf b;
	int rc;

	qfs_arch_key_manifest(key, pt->group);
	qfs_buf_init(&b);
	qfs_arch_manifest_encode(&pt->man, &b);
	rc = b.err ? b.err : qfs_objstore_put(a->os, key, b.data, b.len);
	qfs_buf_close(&b);
	if (rc) {
		part_fail_store(a, pt, rc, "manifest put", key);
		return rc;
	}
	pt->dirty = 0;
	pt->stored = qfs_arch_manifest_last(&pt->man);
	return 0;
}

/* Sealed local segments already listed must match the manifest exactly. */
static int verify_local(struct qfs_archive *a, struct part *pt, const struct qfs_wal_seginfo *ls, size_t n)
{
	size_t j = 0;

	for (size_t i = 0; i + 1 < n; i++) {
		qfs_lsn_t first = ls[i].first, last = ls[i + 1].first - 1;

		if (last > pt->stored)
			break;
		while (j < pt->man.nsegs && pt->man.segs[j].last < last)
			j++;
		if (j == pt->man.nsegs || pt->man.segs[j].first != first || pt->man.segs[j].last != last ||
		    pt->man.segs[j].size != ls[i].size) {
			char what[160];
			snprintf(what, sizeof(what),
				 "local segment %016llx-%016llx differs from the archive's manifest "
				 "(archive of another data directory?)",
				 (unsigned long long)first, (unsigned long long)last);
			part_fail(a, pt, QFS_ECORRUPT, what, NULL);
			return QFS_ECORRUPT;
		}
	}
	pt->verified = 1;
	return 0;
}

/* ---------------------------------------------------------------- upload */

/* Bytes a copy of node 1's file src (len bytes) into the store takes on
 * the data disk: len when the store is a directory on that file system
 * and copies, else 0.  Learns a->disk_shared from the first file. */
static uint64_t copy_hold(struct qfs_archive *a, const char *src, uint64_t len)
{
	struct stat as, ss;

	if (a->disk_shared < 0 && stat(src, &ss) == 0)
		a->disk_shared = strncmp(a->url, "file://", 7) == 0 && stat(a->url + 7, &as) == 0 &&
				 as.st_dev == ss.st_dev;
	return a->disk_shared == 1 && !a->link ? len : 0;
}

/* 1 if a snapshot of size bytes (0: not known yet) copied into a store on
 * the data disk would leave less than the nodes' reserve (twice it while
 * the size is not known) free: the snapshot waits for a later pass, as
 * it is not needed to release the log (doc/archive.md "Full disk"). */
static int snap_short(struct qfs_archive *a, struct part *pt, uint64_t size)
{
	uint64_t reserve = qfs_cell_space_reserve(a->n), avail;

	if (a->disk_shared != 1 || (avail = qfs_sysio_disk_avail(a->url + 7)) == UINT64_MAX)
		return 0;
	if (avail >= (size ? size + reserve : 2 * reserve)) {
		a->snap_deferred = 0;
		return 0;
	}
	if (!a->snap_deferred) {
		a->snap_deferred = 1;
		QFS_LOG(QFS_LOG_WARN, "archive snapshot deferred group=%016llx err=\"No space left on device\" "
			"free=%llu size=%llu reserve=%llu", (unsigned long long)pt->group,
			(unsigned long long)avail, (unsigned long long)size, (unsigned long long)reserve);
	}
	return 1;
}

/* Check the segment image data[len] (it must hold exactly [first, last]),
 * upload it and list it in the manifest.  src names it in errors;
 * from_node1: it is node 1's own segment file src, mapped by map_file (its
 * pages are dropped behind the walk, and it is put by path so the local
 * backend may link it; a corrupt one makes node 1's replica untrusted);
 * else data is malloc'd (fill_gap) and put from memory.  Takes ownership
 * of data. */
static int upload_image(struct qfs_archive *a, struct part *pt, const char *src, int from_node1,
			uint8_t *data, size_t len, qfs_lsn_t first, qfs_lsn_t last)
{
	char key[QFS_ARCH_KEY_MAX];
	struct qfs_arch_seg s;
	const char *why = NULL;
	uint64_t t0 = qfs_clock_mono_ms();
	struct behind bh = { data, 0 };
	int rc;

	rc = qfs_arch_seg_walk(data, len, from_node1 ? drop_behind : NULL, from_node1 ? &bh : NULL,
			       &s, &why);
	if (rc == 0 && (s.first != first || s.last != last)) {
		rc = QFS_ECORRUPT;
		why = "LSN range differs from the file names";
	}
	if (rc) {
		char what[PATH_MAX + 64];
		snprintf(what, sizeof(what), "local segment %s: %s", src, why ? why : "unreadable");
		part_fail(a, pt, rc, what, NULL);
		release_image(data, len, from_node1);
		if (rc == QFS_ECORRUPT && from_node1) {
			/* Node 1's replica cannot be trusted: have it rebuilt;
			 * its missing records then come from another replica. */
			int drc = qfs_cell_wal_distrust(a->n, pt->group);

			QFS_LOG(QFS_LOG_WARN, "archive found node 1's log corrupt group=%016llx"
				" action=\"its replica is stopped and rebuilt from the others\" rc=%s",
				(unsigned long long)pt->group, drc ? qfs_strerror(drc) : "ok");
		}
		return rc;
	}
	qfs_arch_key_seg(key, pt->group, first, last);
	if (from_node1) {
		/* A sealed segment never changes again (only whole segments
		 * are deleted, and truncation stays above the commit point):
		 * the local backend links it instead of copying its bytes
		 * (-o archive_link, on by default).  A copy onto the data disk holds
		 * its size there, so that writes do not take the room it
		 * needs; short of room, the local backend links anyway
		 * (objstore.h keep_free): the release of this segment is what
		 * gives a full disk back (issue 10). */
		uint64_t hold = copy_hold(a, src, len);

		unmap_file(data, len);
		if (hold)
			qfs_cell_space_hold(a->n, hold);
		rc = qfs_objstore_put_file_immutable(a->os, key, src);
		if (hold)
			qfs_cell_space_hold(a->n, 0);
	} else {
		rc = qfs_objstore_put(a->os, key, data, len);
		free(data);
	}
	if (rc) {
		part_fail_store(a, pt, rc, "segment put", key);
		return rc;
	}
	rc = qfs_arch_manifest_add_seg(&pt->man, &s);
	if (rc) {
		part_fail(a, pt, rc, "manifest append", key);
		return rc;
	}
	pt->dirty = 1;
	pt->since_snap_segs++;
	pt->since_snap_bytes += len;
	pthread_mutex_lock(&a->mu);
	a->up_segs++;
	a->up_bytes += len;
	a->alarm[0] = '\0';
	pthread_mutex_unlock(&a->mu);
	QFS_LOG(QFS_LOG_INFO, "archive segment uploaded group=%016llx first=%llu last=%llu bytes=%zu ms=%llu",
		(unsigned long long)pt->group, (unsigned long long)first, (unsigned long long)last, len,
		(unsigned long long)(qfs_clock_mono_ms() - t0));
	return 0;
}

static int upload_segment(struct qfs_archive *a, struct part *pt, const char *dir, qfs_lsn_t first,
			  qfs_lsn_t last)
{
	char path[PATH_MAX];
	uint8_t *data = NULL;
	size_t len = 0;
	int rc;

	rc = qfs_wal_seg_path(path, sizeof(path), dir, first);
	if (!rc)
		rc = map_file(path, &data, &len);
	if (rc) {
		part_fail(a, pt, rc, "read local segment", path);
		return rc;
	}
	return upload_image(a, pt, path, 1, data, len, first, last);
}

/* Append to img the raw records of the segment file at path whose LSNs
 * lie in [from, to] (header and payload copied as they are: their CRCs
 * stay valid).  0, QFS_ECORRUPT (a record is damaged or overruns the
 * file), -errno, -ENOMEM. */
static int copy_records(const char *path, qfs_lsn_t from, qfs_lsn_t to, struct qfs_buf *img)
{
	struct qfs_wal_segrd r;
	struct qfs_wal_rec rec;
	int rc = qfs_wal_segrd_open(&r, path);

	while (rc == 0 && (rc = qfs_wal_segrd_next(&r, &rec)) == 1 && rec.lsn <= to) {
		if (rec.lsn >= from)
			qfs_buf_put(img, rec.raw, rec.raw_len);
		rc = 0;
	}
	qfs_wal_segrd_close(&r);
	if (rc == 1)
		rc = 0; /* stopped past to */
	if (rc == QFS_ETORN || rc == QFS_EFORMAT)
		rc = QFS_ECORRUPT; /* a sealed segment: damage */
	return rc ? rc : img->err;
}

/* Node 1's log does not continue the archive: its replica was rebuilt from
 * a snapshot (doc/cell.md "Self-healing") or its directory was lost, so
 * [from, to] is missing from it.  Build a segment image of exactly those
 * records from another replica's sealed segments (a committed record is the
 * same bytes on every replica: the leader's entry) and upload it.  0 when
 * uploaded; -EAGAIN while no running replica has them all applied and
 * sealed (their open segments are sealed for the next pass); -ENOENT when
 * none holds them any more; errors of the upload. */
static int fill_gap(struct qfs_archive *a, struct part *pt, qfs_lsn_t from, qfs_lsn_t to)
{
	int rc = -ENOENT;

	for (uint32_t k = 2; k <= QFS_CELL_MAX_NODES; k++) {
		char dir[PATH_MAX], path[PATH_MAX], src[PATH_MAX + 32];
		struct qfs_wal_seginfo *ls = NULL;
		struct qfs_buf img;
		qfs_lsn_t applied;
		size_t n = 0, i;
		int r;

		if (qfs_cell_node_wal_info(a->n, k, pt->group, dir, sizeof(dir), &applied) != 0)
			continue;
		if (applied < to || qfs_wal_list(dir, &ls, &n) != 0 || n == 0) {
			rc = -EAGAIN;
			free(ls);
			continue;
		}
		if (ls[0].first > from) { /* released there */
			free(ls);
			continue;
		}
		if (to >= ls[n - 1].first) { /* in its open segment: seal it */
			(void)qfs_cell_node_wal_seal(a->n, k, pt->group);
			rc = -EAGAIN;
			free(ls);
			continue;
		}
		qfs_buf_init(&img);
		qfs_wal_image_begin(&img, from);
		r = img.err;
		for (i = 0; !r && i + 1 < n && ls[i].first <= to; i++) {
			if (ls[i + 1].first <= from)
				continue;
			r = qfs_wal_seg_path(path, sizeof(path), dir, ls[i].first);
			if (!r)
				r = copy_records(path, from, to, &img);
		}
		free(ls);
		if (r) {
			qfs_buf_close(&img);
			rc = r;
			continue;
		}
		snprintf(src, sizeof(src), "%s (node %u, records %llu-%llu)", dir, k,
			 (unsigned long long)from, (unsigned long long)to);
		QFS_LOG(QFS_LOG_WARN, "archive gap filled from another replica group=%016llx first=%llu"
			" last=%llu node=%u (node 1's log does not hold them: its replica was rebuilt)",
			(unsigned long long)pt->group, (unsigned long long)from, (unsigned long long)to, k);
		/* upload_image owns the bytes */
		return upload_image(a, pt, src, 0, img.data, img.len, from, to);
	}
	return rc;
}

/* ---------------------------------------------------------------- snapshots */

struct snap_writer {
	int fd;
	struct qfs_buf b;
	uint64_t off;        /* file bytes written */
	uint64_t items;
	uint32_t crc;        /* CRC-32C of the records */
	int err;
};

static int snap_flush(struct snap_writer *w)
{
	int rc;

	if (w->b.err)
		return w->err = w->b.err;
	rc = qfs_sysio_pwrite_all(w->fd, w->b.data, w->b.len, (off_t)w->off);
	if (rc < 0)
		return w->err = rc;
	w->off += w->b.len;
	qfs_buf_reset(&w->b);
	return 0;
}

static int snap_item(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, void *arg)
{
	struct snap_writer *w = arg;
	uint8_t h[QFS_ARCH_SNAP_REC_HDR];

	qfs_arch_snap_rec_header(h, (uint32_t)kl, (uint32_t)vl);
	w->crc = qfs_crc32c(w->crc, h, sizeof(h));
	w->crc = qfs_crc32c(w->crc, k, kl);
	w->crc = qfs_crc32c(w->crc, v, vl);
	qfs_buf_put(&w->b, h, sizeof(h));
	qfs_buf_put(&w->b, k, kl);
	qfs_buf_put(&w->b, v, vl);
	w->items++;
	if (w->b.len >= SNAP_FLUSH || w->b.err)
		return snap_flush(w) ? 1 : 0;
	return 0;
}

/* CRC-32C of the whole file (the header is written last, so re-read). */
static int file_crc(int fd, uint64_t len, uint32_t *out)
{
	uint8_t buf[65536];
	uint32_t crc = 0;
	uint64_t off = 0;

	while (off < len) {
		ssize_t n = pread(fd, buf, sizeof(buf), (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		crc = qfs_crc32c(crc, buf, (size_t)n);
		off += (uint64_t)n;
	}
	*out = crc;
	return 0;
}

static int take_snapshot(struct qfs_archive *a, struct part *pt)
{
	char path[PATH_MAX], key[QFS_ARCH_KEY_MAX];
	uint8_t hdr[QFS_ARCH_SNAP_HDR], tr[QFS_ARCH_SNAP_TRAILER];
	struct snap_writer w;
	struct qfs_arch_snap s;
	qfs_lsn_t lsn = 0;
	int rc;

	if (snap_short(a, pt, 0))
		return 0;
	snprintf(path, sizeof(path), "%s/qfs-snap-%016llx-%ld.tmp", a->tmp_dir,
		 (unsigned long long)pt->group, (long)getpid());
	memset(&w, 0, sizeof(w));
	qfs_buf_init(&w.b);
	/* a new file every time: the previous one may be the data of a
	 * linked snapshot object (a crash before its unlink below), which
	 * O_TRUNC would cut */
	qfs_sys_unlink(path);
	w.fd = qfs_sys_open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (w.fd < 0) {
		rc = -errno;
		part_fail(a, pt, rc, "snapshot staging file", path);
		qfs_buf_close(&w.b);
		return rc;
	}
	w.off = QFS_ARCH_SNAP_HDR; /* the header goes in last */
	rc = qfs_cell_snapshot_scan(a->n, pt->group, &lsn, snap_item, &w);
	if (rc == 1)
		rc = w.err;
	if (!rc)
		rc = snap_flush(&w);
	if (rc) {
		part_fail(a, pt, rc, "snapshot scan", NULL);
		goto out;
	}
	if (lsn == 0 || (pt->man.nsnaps && pt->man.snaps[pt->man.nsnaps - 1].lsn >= lsn)) {
		/* nothing new since the last snapshot: wait for the next
		 * threshold instead of rescanning the group at every pass */
		pt->since_snap_segs = 0;
		pt->since_snap_bytes = 0;
		goto out;
	}
	memset(&s, 0, sizeof(s));
	s.lsn = lsn;
	s.time_ns = wall_ns(); /* after the scan: later than every entry in it */
	s.items = w.items;
	qfs_arch_snap_trailer(tr, w.items, w.crc);
	qfs_buf_put(&w.b, tr, sizeof(tr));
	if ((rc = snap_flush(&w)) != 0) {
		part_fail(a, pt, rc, "snapshot staging write", path);
		goto out;
	}
	qfs_arch_snap_header(hdr, pt->group, lsn, s.time_ns);
	if ((rc = qfs_sysio_pwrite_all(w.fd, hdr, sizeof(hdr), 0)) != 0) {
		part_fail(a, pt, rc, "snapshot staging write", path);
		goto out;
	}
	s.size = w.off;
	if ((rc = file_crc(w.fd, s.size, &s.crc)) != 0) {
		part_fail(a, pt, rc, "snapshot staging read", path);
		goto out;
	}
	if (snap_short(a, pt, s.size))
		goto out;
	qfs_arch_key_snap(key, pt->group, lsn);
	rc = qfs_objstore_put_file_immutable(a->os, key, path);
	if (rc) {
		part_fail_store(a, pt, rc, "snapshot put", key);
		goto out;
	}
	if ((rc = qfs_arch_manifest_add_snap(&pt->man, &s)) != 0) {
		part_fail(a, pt, rc, "manifest append", key);
		goto out;
	}
	pt->dirty = 1;
	pt->since_snap_segs = 0;
	pt->since_snap_bytes = 0;
	pthread_mutex_lock(&a->mu);
	a->up_snaps++;
	pthread_mutex_unlock(&a->mu);
	QFS_LOG(QFS_LOG_INFO, "archive snapshot uploaded group=%016llx lsn=%llu items=%llu bytes=%llu",
		(unsigned long long)pt->group, (unsigned long long)lsn, (unsigned long long)w.items,
		(unsigned long long)s.size);
out:
	close(w.fd);
	qfs_sys_unlink(path);
	qfs_buf_close(&w.b);
	return rc;
}

/* ---------------------------------------------------------------- pass */

/* Publish lag figures from a fresh listing of the WAL directory. */
static void part_publish(struct qfs_archive *a, struct part *pt, const char *dir, qfs_lsn_t applied)
{
	struct qfs_wal_seginfo *ls = NULL;
	size_t n = 0, i;
	uint64_t lag_bytes = 0, oldest = 0;
	uint32_t pending = 0;

	if (qfs_wal_list(dir, &ls, &n) == 0) {
		for (i = 0; i < n; i++) {
			int tail = i + 1 == n;
			qfs_lsn_t last = tail ? 0 : ls[i + 1].first - 1;

			if (tail ? ls[i].rec_bytes == 0 : last <= pt->stored)
				continue;
			if (pending++ == 0) {
				/* read once per segment: the record is a whole entry
				 * (8 MiB for a large write) and reading it brought it
				 * back into the page cache every pass (doc/perf.md
				 * AFTER 52); an applied record does not change */
				if (pt->lag_seg != ls[i].first || !pt->lag_time) {
					qfs_lsn_t at = 0;
					oldest = first_record_time(dir, ls[i].first, &at);
					pt->lag_seg = ls[i].first;
					pt->lag_time = oldest && at <= applied ? oldest : 0;
				} else {
					oldest = pt->lag_time;
				}
			}
			lag_bytes += ls[i].rec_bytes;
		}
	}
	free(ls);
	pthread_mutex_lock(&a->mu);
	pt->st_archived = pt->stored;
	pt->st_applied = applied;
	pt->st_snap = pt->man.nsnaps ? pt->man.snaps[pt->man.nsnaps - 1].lsn : 0;
	pt->st_earliest = qfs_arch_earliest(&pt->man);
	pt->st_lag_bytes = lag_bytes;
	pt->st_oldest_ns = oldest;
	pt->st_pending = pending;
	pt->st_paused = 0;
	pthread_mutex_unlock(&a->mu);
}

/* One pass over one group.  Returns 0, or the error that stopped it. */
static int retain(struct qfs_archive *a, struct part *pt);

/* The nodes keep the segment that holds their applied record (doc/rnode.md:
 * a restart reads its ballot from the log), so an archived segment whose
 * last record is the last one applied stays on disk until a later record
 * comes.  On a full disk none may come (writes are refused until space is
 * released: issue 10), so when that segment is big (NUDGE_MIN_BYTES), the
 * archiver proposes one empty transaction (a no-op that writes no data,
 * admitted down to the disk floor), once per archived LSN, and has the
 * release retried at the next pass.  ls[n] is node 1's log as listed in
 * this pass. */
static void nudge(struct qfs_archive *a, struct part *pt, const struct qfs_wal_seginfo *ls, size_t n,
		  qfs_lsn_t applied)
{
	struct qfs_txn t;
	struct qfs_buf b;
	int rc, res = 0;
	size_t i;

	if (!pt->stored || applied != pt->stored || pt->nudged == pt->stored)
		return;
	for (i = 0; i + 1 < n && ls[i + 1].first <= applied; i++)
		;
	if (i + 1 >= n || ls[i + 1].first != applied + 1 || ls[i].size < NUDGE_MIN_BYTES)
		return; /* in the open segment, or small */
	pt->nudged = pt->stored;
	qfs_txn_init(&t);
	qfs_buf_init(&b);
	qfs_txn_encode(&t, &b);
	rc = b.err ? b.err : qfs_cell_propose(a->n, pt->group, b.data, b.len, &res);
	qfs_buf_close(&b);
	qfs_txn_close(&t);
	QFS_LOG(rc ? QFS_LOG_WARN : QFS_LOG_INFO, "archive log nudged group=%016llx applied=%llu held_bytes=%llu "
		"why=\"the last applied record closes an archived segment: a no-op record lets the nodes release it\" "
		"err=\"%s\"", (unsigned long long)pt->group, (unsigned long long)applied,
		(unsigned long long)ls[i].size, rc ? qfs_strerror(rc) : "none");
	if (!rc)
		pt->released = pt->stored - 1; /* release again at the next pass */
}

static int part_pass(struct qfs_archive *a, struct part *pt)
{
	char dir[PATH_MAX];
	struct qfs_wal_seginfo *ls = NULL;
	size_t n = 0, uploads = 0;
	qfs_lsn_t applied;
	int rc;

	rc = qfs_cell_wal_info(a->n, pt->group, dir, sizeof(dir), &applied);
	if (rc == QFS_ENOGROUP)
		return 0; /* dropped meanwhile */
	if (rc == QFS_ESTOPPED && !qfs_cell_node_up(a->n, 1)) {
		/* Not an error of the group: archiving waits for node 1.
		 * Records written meanwhile are unarchived from now on (the
		 * oldest pending one, if any, keeps its time). */
		qfs_lsn_t top = qfs_cell_group_applied(a->n, pt->group);

		pthread_mutex_lock(&a->mu);
		if (!pt->st_paused)
			QFS_LOG(QFS_LOG_WARN, "archive paused group=%016llx why=\"node 1 (the archive source) is down\"",
				(unsigned long long)pt->group);
		pt->st_paused = 1;
		if (top > pt->st_archived) {
			if (!pt->st_oldest_ns)
				pt->st_oldest_ns = wall_ns();
			pt->st_applied = top;
		}
		pthread_mutex_unlock(&a->mu);
		return 0;
	}
	if (rc) {
		part_fail(a, pt, rc, "group not readable", NULL);
		return rc;
	}
	if (!pt->loaded && (rc = manifest_load(a, pt)) != 0)
		goto out_publish;
	if ((rc = qfs_wal_list(dir, &ls, &n)) != 0) {
		part_fail(a, pt, rc, "list local WAL", dir);
		goto out_publish;
	}
	if (!pt->verified && (rc = verify_local(a, pt, ls, n)) != 0)
		goto out_publish;

	if (n == 0) {
		/* An empty log (reset by a snapshot install): its next record
		 * is applied + 1, so everything above the archive up to the
		 * applied LSN is a gap. */
		qfs_lsn_t have = qfs_arch_manifest_last(&pt->man);

		if (have && applied > have && fill_gap(a, pt, have + 1, applied) == 0)
			uploads++;
	}
	for (size_t i = 0; i < n && uploads < PASS_MAX_SEGMENTS; i++) {
		qfs_lsn_t first = ls[i].first, last = i + 1 < n ? ls[i + 1].first - 1 : 0, have;

		have = qfs_arch_manifest_last(&pt->man);
		if (have && first > have + 1 && first - 1 <= applied) {
			/* A gap in node 1's log (its replica was rebuilt):
			 * take those records from another replica. */
			int frc = fill_gap(a, pt, have + 1, first - 1);

			if (frc == 0) {
				uploads++;
				have = qfs_arch_manifest_last(&pt->man);
			} else if (frc == -EAGAIN) {
				break; /* the next pass */
			}
		}
		if (i + 1 == n)
			break; /* the open tail */
		if (last <= have)
			continue;
		if (last > applied)
			break; /* not all applied (committed) yet */
		if (have && first != have + 1) {
			char what[160];
			snprintf(what, sizeof(what),
				 "local WAL segment %016llx does not continue the archive (last archived %llu)",
				 (unsigned long long)first, (unsigned long long)have);
			rc = QFS_ECORRUPT;
			part_fail(a, pt, rc, what, NULL);
			break;
		}
		if ((rc = upload_segment(a, pt, dir, first, last)) != 0)
			break;
		uploads++;
	}
	if (pt->dirty) {
		int mrc = manifest_store(a, pt);
		if (!rc)
			rc = mrc;
	}
	if (!pt->dirty && pt->stored > pt->released) {
		int rrc = qfs_cell_wal_release(a->n, pt->group, pt->stored + 1);
		if (rrc && rrc != QFS_ENOGROUP) {
			part_fail(a, pt, rrc, "local WAL release", NULL);
			if (!rc)
				rc = rrc;
		} else if (!rrc) {
			pt->released = pt->stored;
			nudge(a, pt, ls, n, applied);
		}
	}
	if (!rc && (pt->since_snap_segs >= a->snap_segments || pt->since_snap_bytes >= a->snap_bytes)) {
		rc = take_snapshot(a, pt);
		if (!rc && pt->dirty)
			rc = manifest_store(a, pt);
	}
	if (!rc)
		rc = retain(a, pt);
	if (!rc)
		part_ok(a, pt);
out_publish:
	free(ls);
	part_publish(a, pt, dir, applied);
	return rc;
}

/* ------------------------------------------------------------- retention */

/* Drop from the archive what no restore inside the retention window needs
 * (qfs_arch_retain): the shortened manifest is stored first, so no reader
 * of a new manifest meets a deleted object, then the objects go (under the
 * process's delete lock, so a scrub read in progress finishes first).  A
 * failed delete leaves an unlisted object behind (logged; harmless). */
static int retain(struct qfs_archive *a, struct part *pt)
{
	struct qfs_arch_manifest nm;
	char key[QFS_ARCH_KEY_MAX];
	size_t ds, dn;
	int rc = 0;

	if (a->retention_ns == UINT64_MAX || pt->dirty)
		return 0;
	uint64_t now = wall_ns();
	qfs_arch_retain(&pt->man, now > a->retention_ns ? now - a->retention_ns : 0, &ds, &dn);
	if (ds == 0 && dn == 0)
		return 0;
	qfs_arch_manifest_init(&nm, pt->group);
	for (size_t i = ds; i < pt->man.nsegs && !rc; i++)
		rc = qfs_arch_manifest_add_seg(&nm, &pt->man.segs[i]);
	for (size_t i = dn; i < pt->man.nsnaps && !rc; i++)
		rc = qfs_arch_manifest_add_snap(&nm, &pt->man.snaps[i]);
	if (rc) {
		qfs_arch_manifest_close(&nm);
		return rc;
	}
	struct qfs_arch_manifest old = pt->man;
	pt->man = nm;
	if ((rc = manifest_store(a, pt)) != 0) {
		pt->man = old; /* try again next pass */
		qfs_arch_manifest_close(&nm);
		return rc;
	}
	qfs_arch_delete_lock();
	for (size_t i = 0; i < ds; i++) {
		qfs_arch_key_seg(key, pt->group, old.segs[i].first, old.segs[i].last);
		int drc = qfs_objstore_delete(a->os, key);
		if (drc && drc != -ENOENT)
			QFS_LOG(QFS_LOG_WARN, "archive retention delete failed key=%s err=\"%s\"", key, qfs_strerror(drc));
	}
	for (size_t i = 0; i < dn; i++) {
		qfs_arch_key_snap(key, pt->group, old.snaps[i].lsn);
		int drc = qfs_objstore_delete(a->os, key);
		if (drc && drc != -ENOENT)
			QFS_LOG(QFS_LOG_WARN, "archive retention delete failed key=%s err=\"%s\"", key, qfs_strerror(drc));
	}
	qfs_arch_delete_unlock();
	pthread_mutex_lock(&a->mu);
	a->deleted += ds + dn;
	pthread_mutex_unlock(&a->mu);
	QFS_LOG(QFS_LOG_INFO, "archive retention group=%016llx segments_deleted=%zu snapshots_deleted=%zu "
		"first_lsn=%llu", (unsigned long long)pt->group, ds, dn,
		pt->man.nsegs ? (unsigned long long)pt->man.segs[0].first : 0ull);
	qfs_arch_manifest_close(&old);
	return 0;
}

/* ---------------------------------------------------------------- thread */

static void part_free(struct part *pt)
{
	if (!pt)
		return;
	qfs_arch_manifest_close(&pt->man);
	free(pt);
}

/* Bring the part list in line with the node's groups (ascending). */
static int sync_parts(struct qfs_archive *a)
{
	struct qfs_glist c = { 0 };
	struct part **np, **old;
	size_t nold, i, j = 0, got = 0;

	qfs_cell_groups(a->n, qfs_glist_add, &c);
	if (c.err || !(np = calloc(c.n ? c.n : 1, sizeof(*np)))) {
		qfs_glist_free(&c);
		return -ENOMEM;
	}
	pthread_mutex_lock(&a->mu);
	old = a->parts;
	nold = a->nparts;
	for (i = 0; i < c.n; i++) {
		struct part *pt;

		while (j < nold && old[j]->group < c.v[i])
			part_free(old[j++]);
		if (j < nold && old[j]->group == c.v[i]) {
			np[got++] = old[j++];
			continue;
		}
		pt = calloc(1, sizeof(*pt));
		if (!pt)
			continue; /* picked up again at the next pass */
		pt->group = c.v[i];
		qfs_arch_manifest_init(&pt->man, c.v[i]);
		snprintf(pt->st_errmsg, ERR_MAX, "-");
		np[got++] = pt;
	}
	for (; j < nold; j++)
		part_free(old[j]);
	a->parts = np;
	a->nparts = got;
	pthread_mutex_unlock(&a->mu);
	free(old);
	qfs_glist_free(&c);
	return got < c.n ? -ENOMEM : 0;
}

static void stuck_text(struct qfs_archive *a, uint64_t now, char *buf, size_t len);

/* After a pass (a->mu held; the archiver thread): one log line when the
 * stuck or auth alarm goes up or down, as every alarm of .quorumfs/alarms
 * does ("alarm raised kind=... text=..." / "alarm cleared kind=..."). */
static void alarm_log(struct qfs_archive *a)
{
	char stuck[ERR_MAX];

	stuck_text(a, wall_ns(), stuck, sizeof(stuck));
	if (stuck[0] && !a->stuck_logged)
		QFS_LOG(QFS_LOG_WARN, "alarm raised kind=archive-stuck text=\"%s\"", stuck);
	else if (!stuck[0] && a->stuck_logged)
		QFS_LOG(QFS_LOG_WARN, "alarm cleared kind=archive-stuck why=\"every partition archived or archiving\"");
	a->stuck_logged = stuck[0] != '\0';
	if (a->alarm[0] && !a->auth_logged)
		QFS_LOG(QFS_LOG_WARN, "alarm raised kind=archive-auth text=\"%s\"", a->alarm);
	else if (!a->alarm[0] && a->auth_logged)
		QFS_LOG(QFS_LOG_WARN, "alarm cleared kind=archive-auth why=\"an upload succeeded\"");
	a->auth_logged = a->alarm[0] != '\0';
}

static void *archive_main(void *arg)
{
	struct qfs_archive *a = arg;

	pthread_mutex_lock(&a->mu);
	while (!a->stop) {
		struct timespec ts;
		uint32_t wait = a->backoff_ms > a->interval_ms ? a->backoff_ms : a->interval_ms;
		int failed = 0;

		pthread_mutex_unlock(&a->mu);
		sync_parts(a);
		for (size_t i = 0;; i++) {
			struct part *pt;
			int rc;

			pthread_mutex_lock(&a->mu);
			if (a->stop || i >= a->nparts) {
				pthread_mutex_unlock(&a->mu);
				break;
			}
			pt = a->parts[i]; /* only this thread frees parts */
			pthread_mutex_unlock(&a->mu);
			rc = part_pass(a, pt);
			if (rc)
				failed = 1;
			pthread_mutex_lock(&a->mu);
			pthread_cond_broadcast(&a->pass_cv);
			pthread_mutex_unlock(&a->mu);
		}
		a->backoff_ms = failed ? (a->backoff_ms ? a->backoff_ms * 2 : BACKOFF_MIN_MS) : 0;
		if (a->backoff_ms > BACKOFF_MAX_MS)
			a->backoff_ms = BACKOFF_MAX_MS;
		wait = a->backoff_ms > a->interval_ms ? a->backoff_ms : a->interval_ms;

		pthread_mutex_lock(&a->mu);
		a->passes++;
		alarm_log(a);
		qfs_clock_deadline(CLOCK_MONOTONIC, wait, &ts);
		while (!a->stop && !(a->kicked && !a->backoff_ms)) {
			if (pthread_cond_timedwait(&a->cv, &a->mu, &ts) == ETIMEDOUT)
				break;
		}
		a->kicked = 0;
	}
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

static void seal_hook(qfs_group_t group, void *arg)
{
	(void)group;
	qfs_archive_kick(arg);
}

/* ---------------------------------------------------------------- public */

static void archive_free(struct qfs_archive *a)
{
	for (size_t i = 0; i < a->nparts; i++)
		part_free(a->parts[i]);
	free(a->parts);
	qfs_objstore_close(a->os);
	free(a->url);
	free(a->tmp_dir);
	free(a);
}

/* Remove the snapshot staging files (take_snapshot's
 * qfs-snap-GROUP-PID.tmp) that a daemon killed mid-snapshot left in tmp_dir:
 * one per group, as large as the group, never removed otherwise, since the
 * next daemon has another pid.  Only files whose pid no longer runs
 * (kill(pid, 0): ESRCH) go; another live daemon's (a second data
 * directory's mount sharing /tmp) stay.  A name that a linked snapshot
 * object also has loses only this name.  One INFO line per file. */
static void staging_sweep(struct qfs_archive *a)
{
	DIR *d = opendir(a->tmp_dir);
	struct dirent *e;

	if (!d)
		return; /* take_snapshot reports a missing tmp_dir */
	while ((e = readdir(d))) {
		unsigned long long g;
		char path[PATH_MAX], tail[8];
		struct stat st;
		long pid;

		if (sscanf(e->d_name, "qfs-snap-%16llx-%ld%7s", &g, &pid, tail) != 3 ||
		    strcmp(tail, ".tmp") || pid <= 0 || pid == (long)getpid() ||
		    kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", a->tmp_dir, e->d_name) >= sizeof(path))
			continue;
		if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		if (qfs_sys_unlink(path) == 0)
			QFS_LOG(QFS_LOG_INFO, "archive stale snapshot staging file removed path=\"%s\" "
				"group=%016llx pid=%ld bytes=%lld (its daemon is gone)", path, g, pid,
				(long long)st.st_size);
		else
			QFS_LOG(QFS_LOG_WARN, "archive stale snapshot staging file not removed path=\"%s\" "
				"err=\"%s\"", path, qfs_strerror(-errno));
	}
	closedir(d);
}

/* See archive.h.  Runs on the caller's thread. */
int qfs_archive_start(struct qfs_cell *n, const struct qfs_archive_opts *o, struct qfs_archive **out)
{
	struct qfs_archive *a = calloc(1, sizeof(*a));
	pthread_condattr_t ca;
	const char *tmp = o->tmp_dir ? o->tmp_dir : getenv("TMPDIR");
	int rc;

	if (!a)
		return -ENOMEM;
	a->n = n;
	a->interval_ms = o->interval_ms ? o->interval_ms : QFS_ARCHIVE_INTERVAL_DEFAULT_MS;
	a->snap_segments = o->snap_segments ? o->snap_segments : QFS_ARCHIVE_SNAP_SEGMENTS_DEFAULT;
	a->snap_bytes = o->snap_bytes ? o->snap_bytes : QFS_ARCHIVE_SNAP_BYTES_DEFAULT;
	a->stuck_ms = o->stuck_ms ? o->stuck_ms : QFS_ARCHIVE_STUCK_DEFAULT_MS;
	a->retention_ns = o->retention_ns ? o->retention_ns : QFS_ARCHIVE_RETENTION_DEFAULT_NS;
	a->url = strdup(o->store.url ? o->store.url : "");
	a->link = o->store.link_immutable;
	a->disk_shared = -1;
	a->tmp_dir = strdup(tmp && *tmp ? tmp : "/tmp");
	if (!a->url || !a->tmp_dir) {
		rc = -ENOMEM;
		goto err_free;
	}
	rc = qfs_objstore_open(&o->store, &a->os);
	if (rc) {
		QFS_LOG(QFS_LOG_ERR, "archive store open failed url=%s err=\"%s\"", a->url, qfs_strerror(rc));
		goto err_free;
	}
	staging_sweep(a);
	pthread_mutex_init(&a->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&a->cv, &ca);
	pthread_cond_init(&a->pass_cv, &ca);
	pthread_condattr_destroy(&ca);
	rc = -pthread_create(&a->th, NULL, archive_main, a);
	if (rc) {
		pthread_cond_destroy(&a->pass_cv);
		pthread_cond_destroy(&a->cv);
		pthread_mutex_destroy(&a->mu);
		goto err_free;
	}
	qfs_cell_set_seal_hook(n, seal_hook, a);
	QFS_LOG(QFS_LOG_INFO, "archive started store=\"%s\" interval_ms=%u snap_segments=%u snap_bytes=%llu",
		qfs_objstore_describe(a->os), a->interval_ms, a->snap_segments,
		(unsigned long long)a->snap_bytes);
	*out = a;
	return 0;

err_free:
	archive_free(a);
	return rc;
}

/* See archive.h. */
void qfs_archive_stop(struct qfs_archive *a)
{
	if (!a)
		return;
	qfs_cell_set_seal_hook(a->n, NULL, NULL);
	pthread_mutex_lock(&a->mu);
	a->stop = 1;
	pthread_cond_signal(&a->cv);
	pthread_mutex_unlock(&a->mu);
	pthread_join(a->th, NULL);
	pthread_cond_destroy(&a->pass_cv);
	pthread_cond_destroy(&a->cv);
	pthread_mutex_destroy(&a->mu);
	QFS_LOG(QFS_LOG_INFO, "archive stopped segments=%llu bytes=%llu snapshots=%llu",
		(unsigned long long)a->up_segs, (unsigned long long)a->up_bytes,
		(unsigned long long)a->up_snaps);
	archive_free(a);
}

/* See archive.h.  Takes a->mu. */
void qfs_archive_kick(struct qfs_archive *a)
{
	pthread_mutex_lock(&a->mu);
	a->kicked = 1;
	pthread_cond_signal(&a->cv);
	pthread_mutex_unlock(&a->mu);
}

/* Age in ns of pt's oldest unarchived record now (0: none).  a->mu. */
static uint64_t lag_ns(const struct part *pt, uint64_t now)
{
	return pt->st_oldest_ns && now > pt->st_oldest_ns ? now - pt->st_oldest_ns : 0;
}

static const char *state_of(const struct part *pt)
{
	return pt->st_paused ? "paused" : pt->st_err ? "error" : "ok";
}

/* The stuck alarm's text into buf ("" when not stuck): node 1 down, or a
 * record unarchived for longer than stuck_ms.  a->mu. */
static void stuck_text(struct qfs_archive *a, uint64_t now, char *buf, size_t len)
{
	uint32_t paused = 0, late = 0;
	uint64_t worst = 0;
	qfs_group_t wg = 0;

	for (size_t i = 0; i < a->nparts; i++) {
		const struct part *pt = a->parts[i];
		uint64_t l = lag_ns(pt, now);

		paused += pt->st_paused;
		if (l > (uint64_t)a->stuck_ms * 1000000ull) {
			late++;
			if (l > worst) {
				worst = l;
				wg = pt->group;
			}
		}
	}
	buf[0] = '\0';
	if (paused)
		snprintf(buf, len, "node 1 (the archive source) is down: %u partitions not archived; start it", paused);
	else if (late)
		snprintf(buf, len, "%u partitions have records unarchived for over %llu s (worst %016llx: %.0f s);"
			 " see last_error", late, (unsigned long long)(a->stuck_ms / 1000),
			 (unsigned long long)wg, (double)worst / 1e9);
}

/* See archive.h.  Takes a->mu. */
void qfs_archive_status(struct qfs_archive *a, struct qfs_buf *out)
{
	char stuck[ERR_MAX];
	uint64_t now = wall_ns();
	char line[ERR_MAX + 512];
	int n;

	pthread_mutex_lock(&a->mu);
	n = snprintf(line, sizeof(line),
		     "archive store \"%s\" passes %llu segments_uploaded %llu bytes_uploaded %llu "
		     "snapshots_uploaded %llu retention_s %llu objects_deleted %llu\n",
		     qfs_objstore_describe(a->os), (unsigned long long)a->passes,
		     (unsigned long long)a->up_segs, (unsigned long long)a->up_bytes,
		     (unsigned long long)a->up_snaps,
		     a->retention_ns == UINT64_MAX ? 0ull : (unsigned long long)(a->retention_ns / 1000000000ull),
		     (unsigned long long)a->deleted);
	qfs_buf_put(out, line, (size_t)n);
	if (a->alarm[0]) {
		n = snprintf(line, sizeof(line), "alarm auth \"%s\"\n", a->alarm);
		qfs_buf_put(out, line, (size_t)n);
	}
	stuck_text(a, now, stuck, sizeof(stuck));
	if (stuck[0]) {
		n = snprintf(line, sizeof(line), "alarm stuck \"%s\"\n", stuck);
		qfs_buf_put(out, line, (size_t)n);
	}
	for (size_t i = 0; i < a->nparts; i++) {
		struct part *pt = a->parts[i];

		n = snprintf(line, sizeof(line),
			     "partition %016llx archived_lsn %llu applied_lsn %llu lag_bytes %llu lag_s %.3f "
			     "pending_segments %u snapshot_lsn %llu state %s last_error \"%s\"\n",
			     (unsigned long long)pt->group, (unsigned long long)pt->st_archived,
			     (unsigned long long)pt->st_applied, (unsigned long long)pt->st_lag_bytes,
			     (double)lag_ns(pt, now) / 1e9, pt->st_pending, (unsigned long long)pt->st_snap,
			     state_of(pt), pt->st_errmsg);
		qfs_buf_put(out, line, (size_t)n);
		if (pt->st_earliest == 0) {
			n = snprintf(line, sizeof(line), "earliest %016llx beginning\n", (unsigned long long)pt->group);
		} else {
			/* rounded up: a restore at the shown second works */
			time_t sec = (time_t)((pt->st_earliest + 999999999ull) / 1000000000ull);
			struct tm tm;
			char ts[40] = "none";
			if (pt->st_earliest != UINT64_MAX && gmtime_r(&sec, &tm))
				strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
			n = snprintf(line, sizeof(line), "earliest %016llx %s\n", (unsigned long long)pt->group, ts);
		}
		qfs_buf_put(out, line, (size_t)n);
	}
	pthread_mutex_unlock(&a->mu);
}

/* See archive.h.  Takes a->mu. */
void qfs_archive_summary(struct qfs_archive *a, struct qfs_buf *out)
{
	uint64_t lag_bytes = 0, lag = 0, now = wall_ns();
	uint32_t pending = 0, errors = 0;
	char line[512], stuck[ERR_MAX];
	int n;

	pthread_mutex_lock(&a->mu);
	stuck_text(a, now, stuck, sizeof(stuck));
	for (size_t i = 0; i < a->nparts; i++) {
		struct part *pt = a->parts[i];

		lag_bytes += pt->st_lag_bytes;
		if (lag_ns(pt, now) > lag)
			lag = lag_ns(pt, now);
		pending += pt->st_pending;
		errors += pt->st_err != 0;
	}
	n = snprintf(line, sizeof(line),
		     "archive store \"%s\" partitions %zu lag_bytes %llu lag_s %.3f pending_segments %u "
		     "errors %u alarm %s\n",
		     qfs_objstore_describe(a->os), a->nparts, (unsigned long long)lag_bytes,
		     (double)lag / 1e9, pending, errors,
		     a->alarm[0] ? "auth" : stuck[0] ? "stuck" : "none");
	pthread_mutex_unlock(&a->mu);
	qfs_buf_put(out, line, (size_t)n);
}

/* The archived LSN of group as last published (0: none or unknown), and
 * its last error.  Caller holds a->mu. */
static qfs_lsn_t archived_of(struct qfs_archive *a, qfs_group_t group, int *err)
{
	for (size_t i = 0; i < a->nparts; i++)
		if (a->parts[i]->group == group) {
			*err = a->parts[i]->st_err;
			return a->parts[i]->st_archived;
		}
	*err = 0;
	return 0;
}

/* See archive.h.  Runs on the caller's thread: seals node 1's open segment
 * (again each round, in case the last entries reached node 1 after a seal)
 * and kicks the archiver until the group's stored manifest reaches what the
 * group had applied when the call began. */
int qfs_archive_flush(struct qfs_archive *a, qfs_group_t group, uint32_t timeout_ms)
{
	uint64_t t0 = qfs_clock_mono_ms(), deadline = t0 + timeout_ms;
	qfs_lsn_t target = qfs_cell_group_applied(a->n, group), have = 0;
	int rc = 0, err = 0;

	if (!target)
		return 0;
	for (;;) {
		struct timespec ts;

		rc = qfs_cell_wal_seal(a->n, group);
		if (rc == QFS_ESTOPPED)
			break; /* node 1 down: archiving is paused */
		pthread_mutex_lock(&a->mu);
		have = archived_of(a, group, &err);
		if (have >= target || a->stop) {
			pthread_mutex_unlock(&a->mu);
			break;
		}
		a->kicked = 1;
		pthread_cond_signal(&a->cv);
		qfs_clock_deadline(CLOCK_MONOTONIC, 200, &ts);
		pthread_cond_timedwait(&a->pass_cv, &a->mu, &ts);
		have = archived_of(a, group, &err);
		pthread_mutex_unlock(&a->mu);
		if (have >= target)
			break;
		if (qfs_clock_mono_ms() >= deadline) {
			rc = -ETIMEDOUT;
			break;
		}
	}
	if (have >= target) {
		QFS_LOG(QFS_LOG_INFO, "archive flushed group=%016llx lsn=%llu ms=%llu",
			(unsigned long long)group, (unsigned long long)have,
			(unsigned long long)(qfs_clock_mono_ms() - t0));
		return 0;
	}
	if (!rc)
		rc = err ? err : -ETIMEDOUT;
	QFS_LOG(QFS_LOG_WARN, "archive flush incomplete group=%016llx archived_lsn=%llu applied_lsn=%llu"
		" err=\"%s\"", (unsigned long long)group, (unsigned long long)have,
		(unsigned long long)target, rc == QFS_ESTOPPED ? "node 1 is down: archiving is paused" :
		qfs_strerror(rc));
	return rc;
}

/* See archive.h. */
int qfs_archive_drop_hook(qfs_group_t group, void *arg)
{
	struct qfs_archive *a = arg;
	qfs_group_t pins[QFS_CELL_PINNED_MAX];
	size_t npins = qfs_cell_pinned(a->n, pins, QFS_CELL_PINNED_MAX);
	int rc = qfs_archive_flush(a, group, QFS_ARCHIVE_DROP_WAIT_MS);

	/* The table list (in a group the cell pins: the meta group): its
	 * create (and drop) must be archived too, for a restore to find the
	 * table by name at a time it existed. */
	for (size_t i = 0; !rc && i < npins && i < QFS_CELL_PINNED_MAX; i++)
		if (pins[i] != group)
			rc = qfs_archive_flush(a, pins[i], QFS_ARCHIVE_DROP_WAIT_MS);
	if (rc)
		QFS_LOG(QFS_LOG_WARN, "table group dropped before its final records were archived"
			" group=%016llx err=\"%s\" effect=\"restore reaches only what was archived\"",
			(unsigned long long)group, qfs_strerror(rc));
	return rc;
}

/* See archive.h. */
int qfs_archive_parse_time(const char *s, uint64_t *out_ns)
{
	return qfs_arch_parse_time(s, out_ns);
}

/* See archive.h. */
void qfs_archive_alarms(struct qfs_archive *a, struct qfs_buf *out)
{
	char ts[40];

	pthread_mutex_lock(&a->mu);
	if (a->alarm[0]) {
		time_t sec = (time_t)(a->alarm_ns / 1000000000ull);
		struct tm tm;

		if (!gmtime_r(&sec, &tm) || !strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm))
			snprintf(ts, sizeof(ts), "@%lld", (long long)sec);
		qfs_buf_printf(out, "alarm archive-auth raised %s \"%s\"\n", ts, a->alarm);
	}
	{
		char stuck[ERR_MAX];
		uint64_t now = wall_ns(), since = now;

		stuck_text(a, now, stuck, sizeof(stuck));
		if (stuck[0]) {
			/* raised: when the oldest record still waiting was written */
			for (size_t i = 0; i < a->nparts; i++)
				if (a->parts[i]->st_oldest_ns && a->parts[i]->st_oldest_ns < since)
					since = a->parts[i]->st_oldest_ns;
			time_t sec = (time_t)(since / 1000000000ull);
			struct tm tm;

			if (!gmtime_r(&sec, &tm) || !strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm))
				snprintf(ts, sizeof(ts), "@%lld", (long long)sec);
			qfs_buf_printf(out, "alarm archive-stuck raised %s \"%s\"\n", ts, stuck);
		}
	}
	pthread_mutex_unlock(&a->mu);
}
