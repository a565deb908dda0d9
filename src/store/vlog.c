/*
 * vlog.c - the store's value log (doc/format-store.md "Value log"): a
 * chunk value applied from a log entry stays where the WAL wrote it, in
 * the entry's segment file, and the store keeps a pointer to it.
 *
 * A pointer is the long form of the chunk's 'c' record (STORE_VLOG_REC_LEN
 * bytes: be32 len, be32 crc32c(itemkey || value), be64 first LSN of the
 * segment, be64 file offset of the value) next to an empty 'd' value.  The
 * store keeps its own hard link to every segment it points into,
 * <dir>/qfs-vlog/<group 16 hex>.<first 16 hex>.wal, made (and the
 * directory fsync'd) before the batch that writes the first pointer into
 * it, so the WAL deleting its own name never takes the bytes away.
 *
 * Reads (any thread) open the links through a small cache of fds under
 * s->vlog_mu, pread the value and check its length and CRC against the
 * record: a value that does not match is never returned (the caller reads
 * the record again from a fresh snapshot, then fails with QFS_ECORRUPT).
 *
 * Garbage collection (qfs_store_vlog_gc, the cell's keeper): a link with
 * no pointer into it, whose group has applied past the next link's first
 * LSN (so no apply, and no replay after a crash, can point into it again),
 * is unlinked once the store was flushed; see qfs_store_vlog_gc for the
 * order of its steps and why a crash between them loses nothing.
 *
 * Links made by apply are remembered per group (s->vlink, I/O thread only)
 * so that an apply links and fsyncs once per segment, not once per chunk.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/log.h"
#include "common/sysio.h"
#include "store/store_int.h"

#define VLOG_DIR "qfs-vlog"
#define VLOG_NAME_LEN 37 /* 16 hex "." 16 hex ".wal" */

/* See store_int.h. */
int store_vlog_open(struct qfs_store *s, uint32_t min_bytes)
{
	char path[PATH_MAX];
	int n;

	pthread_mutex_init(&s->vlog_mu, NULL);
	pthread_mutex_init(&s->apply_mu, NULL);
	for (size_t i = 0; i < STORE_VLOG_FDS; i++)
		s->vfd[i].fd = -1;
	s->vlog_min = min_bytes;
	n = snprintf(path, sizeof(path), "%s/" VLOG_DIR, s->dir);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -ENAMETOOLONG;
	s->vlog_dir = strdup(path);
	return s->vlog_dir ? 0 : -ENOMEM;
}

/* See store_int.h. */
void store_vlog_close(struct qfs_store *s)
{
	for (size_t i = 0; i < STORE_VLOG_FDS; i++)
		if (s->vfd[i].fd >= 0)
			close(s->vfd[i].fd);
	free(s->vlog_dir);
	pthread_mutex_destroy(&s->vlog_mu);
	pthread_mutex_destroy(&s->apply_mu);
}

static void link_name(char name[VLOG_NAME_LEN + 1], qfs_group_t group, qfs_lsn_t first)
{
	snprintf(name, VLOG_NAME_LEN + 1, "%016" PRIx64 ".%016" PRIx64 ".wal", (uint64_t)group,
		 (uint64_t)first);
}

/* Parse a link's name: 1 with its group and first LSN, 0 for another file. */
static int link_parse(const char *name, qfs_group_t *group, qfs_lsn_t *first)
{
	char *end;

	if (strlen(name) != VLOG_NAME_LEN || name[16] != '.' || strcmp(name + 33, ".wal") != 0)
		return 0;
	*group = strtoull(name, &end, 16);
	if (end != name + 16)
		return 0;
	*first = strtoull(name + 17, &end, 16);
	return end == name + 33;
}

static struct store_vlink *vlink_slot(struct qfs_store *s, qfs_group_t group)
{
	return &s->vlink[(group ^ (group >> 17)) % STORE_VLINK_SLOTS];
}

/* See store_int.h. */
int store_vlog_link(struct qfs_store *s, qfs_group_t group, const struct qfs_store_src *src)
{
	struct store_vlink *e = vlink_slot(s, group);
	char from[PATH_MAX], to[PATH_MAX], name[VLOG_NAME_LEN + 1];
	struct stat a, b;
	int n, rc = 0;

	if (e->valid && e->group == group && e->first == src->seg_first)
		return e->rc;
	link_name(name, group, src->seg_first);
	n = snprintf(from, sizeof(from), "%s/%016" PRIx64 ".wal", src->seg_dir, (uint64_t)src->seg_first);
	if (n < 0 || (size_t)n >= sizeof(from))
		return -ENAMETOOLONG;
	n = snprintf(to, sizeof(to), "%s/%s", s->vlog_dir, name);
	if (n < 0 || (size_t)n >= sizeof(to))
		return -ENAMETOOLONG;
	if (!s->vlog_dir_ok) {
		if ((rc = qfs_sysio_mkdir(s->vlog_dir, 0755)) && rc != -EEXIST)
			goto out;
		if ((rc = qfs_sysio_fsync_parent(s->vlog_dir)))
			goto out;
		s->vlog_dir_ok = 1;
	}
	if (qfs_sys_link(from, to) != 0) {
		rc = -errno;
		if (rc != -EEXIST)
			goto out;
		/* a replay, or a link left by a crash: the same file, or no
		 * pointer (a stale link of another incarnation of the log) */
		if (stat(from, &a) != 0 || stat(to, &b) != 0) {
			rc = -errno;
			goto out;
		}
		if (a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
			rc = -ESTALE;
			goto out;
		}
		rc = 0;
	}
	rc = qfs_sysio_fsync_dir(s->vlog_dir);
out:
	if (rc)
		QFS_LOG(QFS_LOG_WARN, "store vlog link failed, values stay in RocksDB dir=%s group=%016" PRIx64
			" seg=%016" PRIx64 " err=\"%s\"", s->dir, (uint64_t)group, (uint64_t)src->seg_first,
			qfs_strerror(rc));
	e->group = group;
	e->first = src->seg_first;
	e->rc = rc;
	e->valid = 1;
	return rc;
}

/* See store_int.h. */
void store_vlog_rec(uint8_t v[STORE_VLOG_REC_LEN], const uint8_t *key, size_t key_len, const void *val,
		    size_t val_len, qfs_lsn_t seg_first, uint64_t off)
{
	qfs_be32_put(v, (uint32_t)val_len);
	qfs_be32_put(v + 4, qfs_crc32c(qfs_crc32c(0, key, key_len), val, val_len));
	qfs_be64_put(v + 8, seg_first);
	qfs_be64_put(v + 16, off);
}

/* An fd of group's link for first, from the cache or opened (then
 * cached, the least recently used one closed), dup'd for the caller; or
 * -errno. */
static int fd_get(struct qfs_store *s, qfs_group_t group, qfs_lsn_t first)
{
	char path[PATH_MAX], name[VLOG_NAME_LEN + 1];
	struct store_vfd *victim = &s->vfd[0];
	int fd;

	pthread_mutex_lock(&s->vlog_mu);
	s->vtick++;
	for (size_t i = 0; i < STORE_VLOG_FDS; i++) {
		struct store_vfd *f = &s->vfd[i];

		if (f->fd >= 0 && f->group == group && f->first == first) {
			f->tick = s->vtick;
			fd = dup(f->fd);
			pthread_mutex_unlock(&s->vlog_mu);
			return fd < 0 ? -errno : fd;
		}
		if (f->fd < 0 || (victim->fd >= 0 && f->tick < victim->tick))
			victim = f;
	}
	pthread_mutex_unlock(&s->vlog_mu);
	link_name(name, group, first);
	snprintf(path, sizeof(path), "%s/%s", s->vlog_dir, name);
	fd = qfs_sys_open(path, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	pthread_mutex_lock(&s->vlog_mu);
	int d = dup(fd);

	if (d >= 0) {
		/* the victim may have been taken meanwhile: any slot will do */
		if (victim->fd >= 0)
			close(victim->fd);
		victim->fd = d;
		victim->group = group;
		victim->first = first;
		victim->tick = s->vtick;
		victim->ra_end = 0;
	}
	pthread_mutex_unlock(&s->vlog_mu);
	return fd;
}

/* See store_int.h. */
uint64_t store_vlog_ra_next(uint64_t *ra_end, uint64_t off, uint64_t len, uint64_t *from)
{
	uint64_t end = off + len;

	if (*ra_end && (off > *ra_end || end + 2 * (uint64_t)STORE_VLOG_RA < *ra_end)) {
		*ra_end = end; /* a jump: ask once the next read follows it */
		return 0;
	}
	if (end + STORE_VLOG_RA < *ra_end + STORE_VLOG_RA_STEP)
		return 0; /* enough is asked ahead already */
	*from = end > *ra_end ? end : *ra_end;
	*ra_end = end + STORE_VLOG_RA;
	return *ra_end - *from;
}

/* Ask the kernel ahead for a sequential read of group's link first (fd)
 * that reads [off, off + len): keep STORE_VLOG_RA bytes asked ahead of it
 * (store_vlog_ra_next), in calls of STORE_VLOG_RA_STEP bytes, since the
 * kernel reads only the first max(read_ahead_kb, max_sectors_kb) of one
 * call (POSIX_FADV_WILLNEED: the reads of a file's chunks come from
 * several FUSE threads, and the page cache then holds them as RocksDB's
 * blob files did).  A step every few chunks keeps the disk busy ahead of
 * the reads without queueing megabytes in front of a read's own miss. */
static void read_ahead(struct qfs_store *s, qfs_group_t group, qfs_lsn_t first, int fd, uint64_t off,
		       uint64_t len)
{
	uint64_t from = 0, n = 0;

	pthread_mutex_lock(&s->vlog_mu);
	for (size_t i = 0; i < STORE_VLOG_FDS; i++) {
		struct store_vfd *f = &s->vfd[i];

		if (f->fd < 0 || f->group != group || f->first != first)
			continue;
		n = store_vlog_ra_next(&f->ra_end, off, len, &from);
		break;
	}
	pthread_mutex_unlock(&s->vlog_mu);
	while (n) {
		uint64_t step = n < STORE_VLOG_RA_STEP ? n : STORE_VLOG_RA_STEP;

		(void)posix_fadvise(fd, (off_t)from, (off_t)step, POSIX_FADV_WILLNEED);
		from += step;
		n -= step;
	}
}

/* Drop the cached fds of group (every first LSN when all), or of its
 * link for first only. */
static void fd_forget(struct qfs_store *s, qfs_group_t group, qfs_lsn_t first, int all)
{
	pthread_mutex_lock(&s->vlog_mu);
	for (size_t i = 0; i < STORE_VLOG_FDS; i++) {
		struct store_vfd *f = &s->vfd[i];

		if (f->fd >= 0 && f->group == group && (all || f->first == first)) {
			close(f->fd);
			f->fd = -1;
		}
	}
	pthread_mutex_unlock(&s->vlog_mu);
}

/* Read len bytes at off of group's link first into dst (with the
 * read-ahead of a sequential reader) and check them against crc (over
 * key, then the bytes): 0; 2 when the file is missing, short or the CRC
 * does not match. */
static int seg_read(struct qfs_store *s, qfs_group_t group, const uint8_t *key, size_t key_len,
		    qfs_lsn_t first, uint64_t off, uint32_t len, uint32_t crc, uint8_t *dst)
{
	size_t got = 0;
	int fd = fd_get(s, group, first);

	if (fd < 0)
		return fd == -ENOMEM ? -ENOMEM : 2;
	while (got < len) {
		ssize_t n = pread(fd, dst + got, len - got, (off_t)(off + got));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	/* after the pread: a read that missed (the first of a link, or after
	 * a jump) does not wait behind the megabytes it asks ahead */
	read_ahead(s, group, first, fd, off, len);
	close(fd);
	if (got != len || qfs_crc32c(qfs_crc32c(0, key, key_len), dst, len) != crc)
		return 2;
	return 0;
}

/* See store_int.h. */
int store_vlog_read(struct qfs_store *s, qfs_group_t group, const uint8_t *key, size_t key_len,
		    const uint8_t rec[STORE_VLOG_REC_LEN], uint8_t **out, size_t *out_len)
{
	uint32_t len = qfs_be32_get(rec);
	uint8_t *buf;
	int rc;

	if (len > STORE_VLOG_VALUE_MAX) /* a damaged record: no such value */
		return 2;
	buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	rc = seg_read(s, group, key, key_len, qfs_be64_get(rec + 8), qfs_be64_get(rec + 16), len,
		      qfs_be32_get(rec + 4), buf);
	if (rc) {
		free(buf);
		return rc;
	}
	__atomic_add_fetch(&s->vlog_reads, 1, __ATOMIC_RELAXED);
	*out = buf;
	*out_len = len;
	return 0;
}

/* See store_int.h. */
int store_vlog_is_ext(const uint8_t *rec, size_t rl)
{
	return rl >= STORE_VLOG_EXT_HEAD + STORE_VLOG_EXT_LEN && rl <= STORE_VLOG_EXT_REC_MAX &&
	       (rl - STORE_VLOG_EXT_HEAD) % STORE_VLOG_EXT_LEN == 0 &&
	       qfs_be32_get(rec + 4) == (rl - STORE_VLOG_EXT_HEAD) / STORE_VLOG_EXT_LEN;
}

/* See store_int.h.  The value is zeros up to its length, the base laid
 * over it, then each extent in order; each part checked by its CRC. */
int store_vlog_ext_read(struct qfs_store *s, qfs_group_t group, const uint8_t *key, size_t key_len,
			const uint8_t *rec, size_t rl, const uint8_t *dval, size_t dlen, int checked,
			uint8_t **out, size_t *out_len)
{
	uint32_t len = qfs_be32_get(rec), n = qfs_be32_get(rec + 4);
	const uint8_t *b = rec + 8;
	uint32_t blen = qfs_be32_get(b), bcrc = qfs_be32_get(b + 4);
	qfs_lsn_t bfirst = qfs_be64_get(b + 8);
	uint8_t *buf;
	int rc = 0, stale = 0;

	if (len > STORE_VLOG_VALUE_MAX || blen > len)
		return 2;
	if (bfirst == 0 && (dlen != blen || (blen && !dval) ||
			    qfs_crc32c(qfs_crc32c(0, key, key_len), dval, dlen) != bcrc)) {
		/* the item is not the base the record names: damaged (the
		 * unchecked read: 2, read again with RocksDB's checks), or
		 * read with RocksDB's checks and the record was stale (a
		 * release before the records rewrote the chunk): the item is
		 * the base, as a chunk read goes by the checked value */
		if (!checked || dlen > QFS_CHUNK_SIZE || (dlen && !dval))
			return 2;
		stale = 1;
		blen = (uint32_t)dlen;
		if (blen > len)
			len = blen;
	}
	buf = calloc(1, len ? len : 1);
	if (!buf)
		return -ENOMEM;
	if (bfirst == 0) { /* the item's own value */
		if (blen)
			memcpy(buf, dval, blen);
	} else {
		rc = seg_read(s, group, key, key_len, bfirst, qfs_be64_get(b + 16), blen, bcrc, buf);
	}
	for (uint32_t i = 0; i < n && !rc; i++) {
		const uint8_t *e = rec + STORE_VLOG_EXT_HEAD + (size_t)i * STORE_VLOG_EXT_LEN;
		uint32_t off = qfs_be32_get(e), el = qfs_be32_get(e + 4);

		if ((uint64_t)off + el > len) {
			rc = 2;
			break;
		}
		rc = seg_read(s, group, key, key_len, qfs_be64_get(e + 12), qfs_be64_get(e + 20), el,
			      qfs_be32_get(e + 8), buf + off);
	}
	(void)rl;
	if (rc) {
		free(buf);
		return rc;
	}
	if (stale) {
		while (len && buf[len - 1] == 0)
			len--; /* the chunk invariant (format-items.md) */
		if (__atomic_fetch_add(&s->vlog_stale, 1, __ATOMIC_RELAXED) == 0)
			QFS_LOG(QFS_LOG_WARN, "store chunk record stale under extents, the item read with RocksDB's "
				"checks is the base dir=%s group=%016" PRIx64, s->dir, (uint64_t)group);
	}
	__atomic_add_fetch(&s->vlog_reads, 1, __ATOMIC_RELAXED);
	*out = buf;
	*out_len = len;
	return 0;
}

/* See store_int.h. */
int store_vlog_rec_get(struct qfs_store *s, const rocksdb_readoptions_t *ro, const uint8_t *k, size_t klen,
		       char **rec, size_t *rl)
{
	uint8_t cb[STORE_DBKEY_MAX];
	char *err = NULL;

	if (klen > sizeof(cb))
		return -EIO;
	memcpy(cb, k, klen);
	cb[0] = STORE_CRC_PREFIX;
	*rec = rocksdb_get(s->db, ro, (const char *)cb, klen, rl, &err);
	if (err)
		return store_rocks_err(s, "get", err);
	return 0;
}

/* See store_int.h.  Every chunk item's record is read: one with extents
 * may have its base in the item. */
int store_vlog_resolve(struct qfs_store *s, const rocksdb_readoptions_t *ro, const uint8_t *k, size_t klen,
		       const uint8_t *v, size_t vl, uint8_t **out, size_t *out_len)
{
	char *rec = NULL;
	size_t rl = 0;
	int rc;

	if (klen <= STORE_GROUP_PREFIX_LEN || k[0] != STORE_ITEM_PREFIX ||
	    !store_is_chunk_key(k + STORE_GROUP_PREFIX_LEN, klen - STORE_GROUP_PREFIX_LEN))
		return 0;
	if ((rc = store_vlog_rec_get(s, ro, k, klen, &rec, &rl)))
		return rc;
	qfs_group_t group = qfs_be64_get(k + 1);
	const uint8_t *key = k + STORE_GROUP_PREFIX_LEN;
	size_t key_len = klen - STORE_GROUP_PREFIX_LEN;

	if (rec && rl == STORE_VLOG_REC_LEN && vl == 0)
		rc = store_vlog_read(s, group, key, key_len, (const uint8_t *)rec, out, out_len);
	else if (rec && store_vlog_is_ext((const uint8_t *)rec, rl))
		rc = store_vlog_ext_read(s, group, key, key_len, (const uint8_t *)rec, rl, v, vl, 1, out, out_len);
	else
		rc = 1; /* the item's own value */
	rocksdb_free(rec);
	if (rc == 1)
		return 0;
	if (rc == 0)
		return 1;
	return rc == 2 ? store_vlog_bad(s, group) : rc;
}

/* See store_int.h. */
int store_vlog_bad(struct qfs_store *s, qfs_group_t group)
{
	if (__atomic_fetch_add(&s->vlog_bad, 1, __ATOMIC_RELAXED) == 0)
		QFS_LOG(QFS_LOG_ERR, "store vlog value damaged or missing, read fails with EIO dir=%s group=%016"
			PRIx64, s->dir, (uint64_t)group);
	return QFS_ECORRUPT;
}

/* See store_int.h. */
int store_vlog_len(struct qfs_store *s, const uint8_t *k, size_t klen, size_t *len)
{
	char *rec = NULL;
	size_t rl = 0;
	int rc;

	if ((rc = store_vlog_rec_get(s, s->ro, k, klen, &rec, &rl)))
		return rc;
	rc = rec && (rl == STORE_VLOG_REC_LEN || rl == STORE_CRC_LEN || store_vlog_is_ext((const uint8_t *)rec, rl));
	if (rc)
		*len = qfs_be32_get((const uint8_t *)rec);
	rocksdb_free(rec);
	return rc;
}

/* See store_int.h. */
int store_vlog_ilen(struct qfs_store *s, const uint8_t *k, size_t klen, size_t dvl, size_t *len)
{
	char *rec = NULL;
	size_t rl = 0;
	int rc;

	*len = dvl;
	if (klen <= STORE_GROUP_PREFIX_LEN ||
	    !store_is_chunk_key(k + STORE_GROUP_PREFIX_LEN, klen - STORE_GROUP_PREFIX_LEN))
		return 0;
	if ((rc = store_vlog_rec_get(s, s->ro, k, klen, &rec, &rl)))
		return rc;
	if (rec && ((rl == STORE_VLOG_REC_LEN && dvl == 0) || store_vlog_is_ext((const uint8_t *)rec, rl)))
		*len = qfs_be32_get((const uint8_t *)rec);
	rocksdb_free(rec);
	return 0;
}

/* See store_int.h. */
const rocksdb_snapshot_t *store_snap_take(struct qfs_store *s)
{
	const rocksdb_snapshot_t *snap;

	__atomic_add_fetch(&s->vlog_snaps, 1, __ATOMIC_ACQ_REL);
	snap = rocksdb_create_snapshot(s->db);
	if (!snap)
		__atomic_sub_fetch(&s->vlog_snaps, 1, __ATOMIC_ACQ_REL);
	return snap;
}

/* See store_int.h. */
void store_snap_put(struct qfs_store *s, const rocksdb_snapshot_t *snap)
{
	if (!snap)
		return;
	rocksdb_release_snapshot(s->db, snap);
	__atomic_sub_fetch(&s->vlog_snaps, 1, __ATOMIC_ACQ_REL);
}

/* Remove every link of group (all groups when all), and forget them.
 * 0 or the first -errno (logged). */
static int links_remove(struct qfs_store *s, qfs_group_t group, int all)
{
	DIR *d = opendir(s->vlog_dir);
	struct dirent *de;
	int rc = 0, n = 0;

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		qfs_group_t g;
		qfs_lsn_t first;

		if (!link_parse(de->d_name, &g, &first) || (!all && g != group))
			continue;
		if (qfs_sys_unlinkat(dirfd(d), de->d_name, 0) != 0 && errno != ENOENT && !rc)
			rc = -errno;
		n++;
	}
	closedir(d);
	if (all) {
		for (size_t i = 0; i < STORE_VLINK_SLOTS; i++)
			s->vlink[i].valid = 0;
	} else {
		vlink_slot(s, group)->valid = 0;
	}
	fd_forget(s, group, 0, 1);
	if (n && !rc)
		rc = qfs_sysio_fsync_dir(s->vlog_dir);
	if (rc)
		QFS_LOG(QFS_LOG_ERR, "store vlog links not removed dir=%s group=%016" PRIx64 " err=\"%s\"", s->dir,
			(uint64_t)group, qfs_strerror(rc));
	return rc;
}

/* See store_int.h.  While a snapshot read is open it may still resolve
 * the group's pointers: the links stay, the collector removes them once
 * none is open (orphans_remove). */
int store_vlog_drop(struct qfs_store *s, qfs_group_t group)
{
	int rc = 0;

	pthread_mutex_lock(&s->apply_mu);
	if (__atomic_load_n(&s->vlog_snaps, __ATOMIC_ACQUIRE) == 0)
		rc = links_remove(s, group, 0);
	else
		vlink_slot(s, group)->valid = 0;
	pthread_mutex_unlock(&s->apply_mu);
	return rc;
}

/* See store_int.h. */
void store_vlog_forget(struct qfs_store *s, qfs_group_t group)
{
	struct store_vlink *e = vlink_slot(s, group);

	pthread_mutex_lock(&s->apply_mu);
	if (e->group == group)
		e->valid = 0;
	pthread_mutex_unlock(&s->apply_mu);
}

/* One link found by the collector. */
struct glink {
	qfs_group_t group;
	qfs_lsn_t first;
	uint64_t size;  /* bytes of the file */
	uint64_t live;  /* bytes of values still pointed at */
	nlink_t nlink;  /* names of the file (1: the WAL has none left) */
};

static int glink_cmp(const void *a, const void *b)
{
	const struct glink *x = a, *y = b;

	if (x->group != y->group)
		return x->group < y->group ? -1 : 1;
	return x->first < y->first ? -1 : x->first > y->first;
}

static struct glink *glink_find(struct glink *v, size_t n, qfs_group_t group, qfs_lsn_t first)
{
	struct glink key = { .group = group, .first = first };

	if (n == 0) /* v may be NULL: bsearch's array must not be */
		return NULL;
	return bsearch(&key, v, n, sizeof(*v), glink_cmp);
}

/* The links of s (sorted), with their sizes.  0, -ENOMEM or -errno. */
static int links_list(struct qfs_store *s, struct glink **out, size_t *nout)
{
	DIR *d = opendir(s->vlog_dir);
	struct glink *v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;

	*out = NULL;
	*nout = 0;
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		struct glink l = { 0 };
		struct stat st;

		if (!link_parse(de->d_name, &l.group, &l.first) ||
		    fstatat(dirfd(d), de->d_name, &st, 0) != 0)
			continue;
		l.size = (uint64_t)st.st_blocks * 512;
		l.nlink = st.st_nlink;
		if (n == cap) {
			size_t c = cap ? cap * 2 : 16;
			struct glink *nv = realloc(v, c * sizeof(*nv));

			if (!nv) {
				free(v);
				closedir(d);
				return -ENOMEM;
			}
			v = nv;
			cap = c;
		}
		v[n++] = l;
	}
	closedir(d);
	if (n)
		qsort(v, n, sizeof(*v), glink_cmp);
	*out = v;
	*nout = n;
	return 0;
}

/* Add len bytes of group's segment first to its link's live count
 * (*dangling when no link has it). */
static void live_add(struct glink *v, size_t n, qfs_group_t group, qfs_lsn_t first, uint64_t len,
		     uint64_t *dangling)
{
	struct glink *l = glink_find(v, n, group, first);

	if (l)
		l->live += len;
	else
		(*dangling)++;
}

/* 1 if 'c' record val (vl bytes) points into segment first: a pointer,
 * or the base or an extent of an extents record. */
static int rec_points_into(const uint8_t *val, size_t vl, qfs_lsn_t first)
{
	if (vl == STORE_VLOG_REC_LEN)
		return qfs_be64_get(val + 8) == first;
	if (!store_vlog_is_ext(val, vl))
		return 0;
	if (qfs_be64_get(val + 16) == first)
		return 1;
	for (size_t i = STORE_VLOG_EXT_HEAD; i < vl; i += STORE_VLOG_EXT_LEN)
		if (qfs_be64_get(val + i + 12) == first)
			return 1;
	return 0;
}

/* Add the bytes of every pointer (every long 'c' record, and the base
 * pointer and extents of every extents record) to its link's live count,
 * read from one snapshot.  0, -ENOMEM or -EIO. */
static int live_scan(struct qfs_store *s, struct glink *v, size_t n, uint64_t *dangling)
{
	uint8_t lo[1] = { STORE_CRC_PREFIX }, hi[1] = { STORE_CRC_PREFIX + 1 };
	const rocksdb_snapshot_t *snap = rocksdb_create_snapshot(s->db);
	rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
	char *err = NULL;
	int rc = 0;

	if (!snap || !ro) {
		rc = -ENOMEM;
		goto out;
	}
	rocksdb_readoptions_set_snapshot(ro, snap);
	rocksdb_readoptions_set_fill_cache(ro, 0);
	rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)hi, sizeof(hi));
	rocksdb_iterator_t *it = rocksdb_create_iterator(s->db, ro);

	for (rocksdb_iter_seek(it, (const char *)lo, sizeof(lo)); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
		size_t kl, vl;
		const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
		const uint8_t *val = (const uint8_t *)rocksdb_iter_value(it, &vl);
		qfs_group_t g;

		if (kl < STORE_GROUP_PREFIX_LEN)
			continue;
		g = qfs_be64_get(k + 1);
		if (vl == STORE_VLOG_REC_LEN) {
			live_add(v, n, g, qfs_be64_get(val + 8), qfs_be32_get(val), dangling);
		} else if (store_vlog_is_ext(val, vl)) {
			if (qfs_be64_get(val + 16))
				live_add(v, n, g, qfs_be64_get(val + 16), qfs_be32_get(val + 8), dangling);
			for (size_t i = STORE_VLOG_EXT_HEAD; i < vl; i += STORE_VLOG_EXT_LEN)
				live_add(v, n, g, qfs_be64_get(val + i + 12), qfs_be32_get(val + i + 4), dangling);
		}
	}
	rocksdb_iter_get_error(it, &err);
	if (err)
		rc = store_rocks_err(s, "vlog scan", err);
	rocksdb_iter_destroy(it);
out:
	if (ro)
		rocksdb_readoptions_destroy(ro);
	if (snap)
		rocksdb_release_snapshot(s->db, snap);
	return rc;
}

/* The value of chunk item kb (RocksDB key, kl bytes) whose 'c' record is
 * rb (rl bytes, a pointer or extents), read now: 0 with *val (heap), 2
 * when it cannot be read or does not match, -ENOMEM, -EIO. */
static int rec_value(struct qfs_store *s, qfs_group_t group, const uint8_t *kb, size_t kl, const uint8_t *rb,
		     size_t rl, uint8_t **val, size_t *val_len)
{
	const uint8_t *key = kb + STORE_GROUP_PREFIX_LEN;
	size_t key_len = kl - STORE_GROUP_PREFIX_LEN, dl = 0;
	char *err = NULL, *d = NULL;
	int rc;

	if (rl == STORE_VLOG_REC_LEN)
		return store_vlog_read(s, group, key, key_len, rb, val, val_len);
	if (qfs_be64_get(rb + 16) == 0) { /* the base is the item's own value */
		d = rocksdb_get(s->db, s->ro, (const char *)kb, kl, &dl, &err);
		if (err)
			return store_rocks_err(s, "vlog rewrite", err);
	}
	rc = store_vlog_ext_read(s, group, key, key_len, rb, rl, (const uint8_t *)d, d ? dl : 0, 1, val, val_len);
	rocksdb_free(d);
	return rc;
}

/* Move the values the pointers of group into segment first still hold
 * (pointers, and chunks with extents any part of which lies there) into
 * RocksDB (an item with its whole value and the 8-byte record), each in
 * one batch written under s->apply_mu after checking that the record is
 * still the one scanned: an apply that replaced the chunk meanwhile
 * wins.  A pointer's value is read before the lock, a chunk with extents
 * under it (its base may be the item).  Adds the values moved to *moved.
 * 0, -ENOMEM, -EIO, QFS_ECORRUPT (a value that cannot be read: the
 * segment is kept). */
static int rewrite_seg(struct qfs_store *s, qfs_group_t group, qfs_lsn_t first, uint64_t *moved)
{
	uint8_t lo[STORE_GROUP_PREFIX_LEN], hi[STORE_GROUP_PREFIX_LEN];
	size_t hil = store_crc_range(lo, hi, group);
	rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
	char *err = NULL;
	int rc = 0;

	if (!ro)
		return -ENOMEM;
	rocksdb_readoptions_set_fill_cache(ro, 0);
	rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)hi, hil);
	rocksdb_iterator_t *it = rocksdb_create_iterator(s->db, ro);

	for (rocksdb_iter_seek(it, (const char *)lo, sizeof(lo)); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
		size_t kl, vl, cl = 0;
		const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
		const uint8_t *rec = (const uint8_t *)rocksdb_iter_value(it, &vl);
		uint8_t kb[STORE_DBKEY_MAX], rb[STORE_VLOG_EXT_REC_MAX], v8[STORE_CRC_LEN], *val = NULL;
		size_t val_len = 0;
		int ext = vl != STORE_VLOG_REC_LEN;
		char *cur;

		if (kl > sizeof(kb) || kl <= STORE_GROUP_PREFIX_LEN || vl > sizeof(rb) ||
		    !rec_points_into(rec, vl, first))
			continue;
		memcpy(kb, k, kl);
		memcpy(rb, rec, vl);
		kb[0] = STORE_ITEM_PREFIX;
		if (!ext) {
			rc = rec_value(s, group, kb, kl, rb, vl, &val, &val_len);
			if (rc == 2) {
				rc = 0; /* replaced meanwhile, or damaged: checked again below */
				val = NULL;
			}
			if (rc)
				break;
		}
		pthread_mutex_lock(&s->apply_mu);
		kb[0] = STORE_CRC_PREFIX;
		cur = rocksdb_get(s->db, s->ro, (const char *)kb, kl, &cl, &err);
		kb[0] = STORE_ITEM_PREFIX;
		if (err) {
			pthread_mutex_unlock(&s->apply_mu);
			free(val);
			rc = store_rocks_err(s, "vlog rewrite", err);
			break;
		}
		if (cur && cl == vl && memcmp(cur, rb, vl) == 0) {
			if (ext) {
				rc = rec_value(s, group, kb, kl, rb, vl, &val, &val_len);
				if (rc == 2) {
					rc = 0;
					val = NULL;
				}
				if (rc) {
					pthread_mutex_unlock(&s->apply_mu);
					rocksdb_free(cur);
					break;
				}
			}
			if (!val) { /* the pointer stands and its value cannot be read */
				pthread_mutex_unlock(&s->apply_mu);
				rocksdb_free(cur);
				rc = store_vlog_bad(s, group);
				break;
			}
			rocksdb_writebatch_t *wb = rocksdb_writebatch_create();

			if (!wb) {
				pthread_mutex_unlock(&s->apply_mu);
				rocksdb_free(cur);
				free(val);
				rc = -ENOMEM;
				break;
			}
			qfs_be32_put(v8, (uint32_t)val_len);
			qfs_be32_put(v8 + 4, qfs_crc32c(qfs_crc32c(0, kb + STORE_GROUP_PREFIX_LEN,
								   kl - STORE_GROUP_PREFIX_LEN), val, val_len));
			kb[0] = STORE_CRC_PREFIX;
			rocksdb_writebatch_put(wb, (const char *)kb, kl, (const char *)v8, sizeof(v8));
			kb[0] = STORE_ITEM_PREFIX;
			rocksdb_writebatch_put(wb, (const char *)kb, kl, (const char *)val, val_len);
			store_cc_drop(s, STORE_CRC_PREFIX, kb, kl); /* the short record now */
			store_cc_drop(s, STORE_ITEM_PREFIX, kb, kl);
			rocksdb_write(s->db, s->wo, wb, &err);
			rocksdb_writebatch_destroy(wb);
			if (!err) {
				*moved += val_len;
				__atomic_add_fetch(&s->vlog_gc_rewritten, 1, __ATOMIC_RELAXED);
			}
		}
		pthread_mutex_unlock(&s->apply_mu);
		rocksdb_free(cur);
		free(val);
		if (err) {
			rc = store_rocks_err(s, "vlog rewrite", err);
			break;
		}
	}
	if (!rc) {
		rocksdb_iter_get_error(it, &err);
		if (err)
			rc = store_rocks_err(s, "vlog rewrite scan", err);
	}
	rocksdb_iter_destroy(it);
	rocksdb_readoptions_destroy(ro);
	return rc;
}

/* Remove the links of v whose group has no applied LSN (applied[i] 0
 * when listed) and whose WAL file has no other name left (the WAL was
 * removed): a group dropped while a snapshot read was open
 * (store_vlog_drop), or by a crash between its drop and the removal.
 * (A live group without an applied LSN, its store never flushed before a
 * crash, still has its WAL's names: its links stay for the replay.)
 * Under s->apply_mu (every batch that writes a pointer is written under
 * it, after its link) the group's applied LSN is read again: still 0, no
 * pointer of it is in the store, and the store is flushed first so that
 * none is in the durable one either (a drop's batch may not be flushed
 * yet).  Not while a snapshot read is open.  Adds the links removed to
 * *removed.  0 or -errno (logged). */
static int orphans_remove(struct qfs_store *s, const struct glink *v, const qfs_lsn_t *applied, size_t n,
			  uint64_t *removed)
{
	size_t cand = 0;
	int rc = 0;

	for (size_t i = 0; i < n; i++)
		cand += applied[i] == 0 && v[i].nlink == 1;
	if (!cand)
		return 0;
	pthread_mutex_lock(&s->apply_mu);
	if (__atomic_load_n(&s->vlog_snaps, __ATOMIC_ACQUIRE) != 0 || (rc = qfs_store_sync(s)))
		goto out;
	for (size_t i = 0; i < n; i++) {
		char name[VLOG_NAME_LEN + 1], path[PATH_MAX];
		qfs_lsn_t a;

		if (applied[i] != 0 || v[i].nlink != 1)
			continue;
		if ((rc = qfs_store_applied(s, v[i].group, &a)))
			break;
		if (a != 0)
			continue;
		link_name(name, v[i].group, v[i].first);
		snprintf(path, sizeof(path), "%s/%s", s->vlog_dir, name);
		fd_forget(s, v[i].group, v[i].first, 0);
		vlink_slot(s, v[i].group)->valid = 0;
		if (qfs_sys_unlink(path) != 0 && errno != ENOENT) {
			rc = -errno;
			break;
		}
		(*removed)++;
		QFS_LOG(QFS_LOG_INFO, "store vlog link of a dropped group removed dir=%s file=%s", s->dir, name);
	}
	if (!rc && *removed)
		rc = qfs_sysio_fsync_dir(s->vlog_dir);
	if (rc)
		QFS_LOG(QFS_LOG_ERR, "store vlog links of dropped groups not removed dir=%s err=\"%s\"", s->dir,
			qfs_strerror(rc));
out:
	pthread_mutex_unlock(&s->apply_mu);
	return rc;
}

/* Link i (not the last of v) is below the applied LSN for good: its group
 * applied past the first LSN of its next link, and that next link is a
 * segment of the log as it is now (its WAL file still has the WAL's name)
 * or link i's own file left the log.  (A stale link of the group's
 * earlier life, left by a drop or an install while a snapshot read was
 * open, has no WAL name: it proves nothing about the segments before it,
 * one of which may be the one the log appends to now.) */
static int below_applied(const struct glink *v, const qfs_lsn_t *applied, size_t i)
{
	return v[i + 1].group == v[i].group && v[i + 1].first <= applied[i] &&
	       (v[i + 1].nlink >= 2 || v[i].nlink == 1);
}

/* Link i (not the last of v) may go: no pointer into it, and below the
 * applied LSN for good. */
static int removable(const struct glink *v, const qfs_lsn_t *applied, size_t i)
{
	return !v[i].live && below_applied(v, applied, i);
}

/* See store.h.  The steps, in this order:
 *   1. list the links; 2. read each group's applied LSN A (applies only
 *   raise it, so every record at or below A is applied for good); 3. scan
 *   the pointers (one snapshot) for the live bytes of each link;
 *   4. qfs_store_sync, so that the durable store is at least the scanned
 *   one (its applied LSN >= A: a replay after a crash starts above A);
 *   5. unlink each link X with no pointer whose group has a later link
 *   starting at F <= A: X's records all lie below F, so no apply (nor
 *   replay) can point into X again, and no durable pointer into X is left.
 *   Nothing is unlinked while a snapshot read (scan, scrub or archive
 *   snapshot, snapshot install's sending side) is open: it may still
 *   resolve a pointer that the scan no longer saw.  The last link of a
 *   group stays (at most one segment per group). */
int qfs_store_vlog_gc(struct qfs_store *s, int full, struct qfs_store_vlog_stat *st)
{
	struct glink *v = NULL;
	qfs_lsn_t *applied = NULL;
	uint64_t dangling = 0;
	size_t n = 0;
	int rc, removed = 0;
	uint64_t orphans = 0;

	memset(st, 0, sizeof(*st));
relist:
	if ((rc = links_list(s, &v, &n)))
		goto out;
	applied = calloc(n ? n : 1, sizeof(*applied));
	if (!applied) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (i == 0 || v[i].group != v[i - 1].group) {
			if ((rc = qfs_store_applied(s, v[i].group, &applied[i])))
				goto out;
		} else {
			applied[i] = applied[i - 1];
		}
	/* the links of dropped groups go first (at most one pass) */
	if (!orphans && (rc = orphans_remove(s, v, applied, n, &orphans)) == 0 && orphans) {
		st->removed += orphans;
		__atomic_add_fetch(&s->vlog_gc_removed, orphans, __ATOMIC_RELAXED);
		free(applied);
		free(v);
		applied = NULL;
		v = NULL;
		goto relist;
	}
	if (rc)
		goto out;
	for (size_t i = 0; i < n; i++) {
		st->segments++;
		st->bytes += v[i].size;
	}
	/* the scan reads every pointer: only when a link may go, or asked */
	size_t maybe = 0;

	for (size_t i = 0; i + 1 < n; i++)
		maybe += below_applied(v, applied, i);
	/* nothing changed since the last pass (same links, no apply): skip */
	uint64_t sig = n;

	for (size_t i = 0; i < n; i++)
		sig = (sig ^ v[i].group ^ (v[i].first << 1) ^ (applied[i] << 3)) * 0x100000001b3ull;
	if (!full && (!maybe || sig == s->vlog_sig))
		goto out;
	s->vlog_sig = sig;
	if ((rc = live_scan(s, v, n, &dangling)))
		goto out;
	/* segments below the applied LSN whose live values are less than
	 * half of them: those values move into RocksDB, then the segment has
	 * no pointer left (counted again) */
	size_t moved = 0;

	for (size_t i = 0; i + 1 < n; i++) {
		uint64_t bytes = 0;

		if (!v[i].live || v[i].live * 2 >= v[i].size || !below_applied(v, applied, i))
			continue;
		if ((rc = rewrite_seg(s, v[i].group, v[i].first, &bytes))) {
			QFS_LOG(QFS_LOG_WARN, "store vlog rewrite stopped dir=%s group=%016" PRIx64 " seg=%016" PRIx64
				" err=\"%s\"", s->dir, (uint64_t)v[i].group, (uint64_t)v[i].first, qfs_strerror(rc));
			rc = 0; /* the segment stays; the others may go */
			continue;
		}
		st->rewritten += bytes;
		moved++;
	}
	if (moved) {
		for (size_t i = 0; i < n; i++)
			v[i].live = 0;
		dangling = 0;
		if ((rc = live_scan(s, v, n, &dangling)))
			goto out;
	}
	for (size_t i = 0; i < n; i++)
		st->live += v[i].live;
	st->dangling = dangling;
	st->scanned = 1;
	if (__atomic_load_n(&s->vlog_snaps, __ATOMIC_ACQUIRE) != 0)
		goto out;
	size_t cand = 0;

	for (size_t i = 0; i + 1 < n; i++)
		cand += removable(v, applied, i);
	if (!cand)
		goto out; /* nothing to remove: no flush */
	if ((rc = qfs_store_sync(s)))
		goto out;
	for (size_t i = 0; i + 1 < n; i++) {
		char name[VLOG_NAME_LEN + 1], path[PATH_MAX];

		if (!removable(v, applied, i))
			continue;
		link_name(name, v[i].group, v[i].first);
		snprintf(path, sizeof(path), "%s/%s", s->vlog_dir, name);
		fd_forget(s, v[i].group, v[i].first, 0);
		if (qfs_sys_unlink(path) != 0 && errno != ENOENT) {
			rc = -errno;
			QFS_LOG(QFS_LOG_ERR, "store vlog unlink failed dir=%s file=%s err=\"%s\"", s->dir, name,
				qfs_strerror(rc));
			break;
		}
		removed++;
		st->segments--;
		st->bytes -= v[i].size;
		st->removed++;
		st->freed += v[i].size;
	}
	if (removed)
		__atomic_add_fetch(&s->vlog_gc_removed, (uint64_t)removed, __ATOMIC_RELAXED);
out:
	st->gc_removed = __atomic_load_n(&s->vlog_gc_removed, __ATOMIC_RELAXED);
	st->gc_rewritten = __atomic_load_n(&s->vlog_gc_rewritten, __ATOMIC_RELAXED);
	st->reads = __atomic_load_n(&s->vlog_reads, __ATOMIC_RELAXED);
	st->bad = __atomic_load_n(&s->vlog_bad, __ATOMIC_RELAXED);
	st->extents = __atomic_load_n(&s->vlog_extents, __ATOMIC_RELAXED);
	free(applied);
	free(v);
	return rc;
}
