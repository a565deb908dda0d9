/*
 * restore.c - `quorumfs restore`: rebuild a table (or one path in it) as of
 * a point in time from the archive alone (contract: archive.h; formats and
 * the point-in-time rule: doc/format-archive.md; usage: doc/archive.md).
 *
 * 1. Rebuild the meta group at time T in a scratch RocksDB: load the newest
 *    snapshot taken at or before T, then replay archived segments, entry by
 *    entry, through src/store's own apply (the live path's semantics), up to
 *    the first entry stamped later than T.
 * 2. Find the table's group in the rebuilt meta group; rebuild that group
 *    the same way.
 * 3. Walk the items from the table directory (or from the path) and write
 *    the tree out: directories, files (inline data or chunks, holes kept),
 *    symlinks, fifos and device nodes, then xattrs, owners (when root),
 *    modes and nanosecond times (directories after their children).  A
 *    file with several names (nlink > 1) is written at the first name met
 *    and every later name is a link(2) to it, so hard links come back as
 *    hard links (within what is restored).
 * Every object is checked: the store's CRC-32C on download, the manifest's
 * size and CRC, and each WAL record's CRC; any mismatch stops the restore
 * with an error naming the object.  The scratch directory is removed.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "archive/archive.h"
#include "archive/archive_int.h"
#include "common/crc32c.h"
#include "common/item.h"
#include "common/key.h"
#include "common/log.h"
#include "node/entry.h"
#include "store/store.h"

#define REPLAY_STOP 1 /* walk callback: the cut is reached */

struct rctx {
	const struct qfs_restore_opts *o;
	struct qfs_objstore *os;
	struct qfs_store *st;
	char scratch[PATH_MAX];
	char *err;
	size_t err_len;
	int is_root;
	uint64_t files, dirs, bytes, links;
	struct linked *lk;  /* open-addressed by ino: files with nlink > 1 written so far */
	size_t lk_cap;      /* slots, a power of two (0: none yet) */
	size_t lk_n;        /* slots used */
};

/* A file with several names, as first written: later names link to path. */
struct linked {
	qfs_ino_t ino;      /* 0: free slot */
	char *path;         /* heap */
};

static int failf(struct rctx *c, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int failf(struct rctx *c, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, c->err_len, fmt, ap);
	va_end(ap);
	return rc;
}

static int store_fail(struct rctx *c, int rc, const char *what, const char *key)
{
	const char *d = qfs_objstore_last_error(c->os);

	return failf(c, rc, "%s %s: %s%s%s%s", what, key,
		     rc == -ENXIO ? "the archive's bucket (or directory) does not exist: " : "",
		     qfs_strerror(rc), d && *d ? " (" : "", d && *d ? d : "");
}

/* ---------------------------------------------------------------- rebuild */

struct replay {
	struct rctx *c;
	qfs_group_t group;
	qfs_lsn_t applied;
	uint64_t t_ns;
	qfs_lsn_t max_lsn;  /* stop after this LSN (UINT64_MAX: no limit) */
	int rc;       /* store error */
	int gap;      /* LSN did not follow */
};

static int replay_rec(qfs_lsn_t lsn, uint8_t type, uint64_t time_ns, const uint8_t *data, size_t len,
		      void *arg)
{
	struct replay *r = arg;
	int res, rc;

	if (lsn <= r->applied)
		return 0;
	if (lsn != r->applied + 1) {
		r->gap = 1;
		return -ENODATA;
	}
	if (time_ns > r->t_ns || lsn > r->max_lsn)
		return REPLAY_STOP;
	if (type == QFS_NODE_ENTRY_NOOP || type == QFS_NODE_ENTRY_CONFIG)
		rc = qfs_store_apply_noop(r->c->st, r->group, lsn); /* no items */
	else
		rc = qfs_store_apply(r->c->st, r->group, lsn, data, len, &res);
	if (rc) {
		r->rc = rc;
		return rc;
	}
	r->applied = lsn;
	return 0;
}

static int load_item(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, void *arg)
{
	struct replay *r = arg;
	int rc = qfs_store_load_item(r->c->st, r->group, k, kl, v, vl);

	if (rc)
		r->rc = rc;
	return rc;
}

static int load_snapshot(struct rctx *c, struct replay *r, const struct qfs_arch_snap *sn)
{
	char key[QFS_ARCH_KEY_MAX], path[PATH_MAX];
	const char *why = "";
	qfs_group_t g;
	qfs_lsn_t lsn;
	uint64_t t, items;
	struct stat st;
	void *map;
	int fd, rc;

	qfs_arch_key_snap(key, r->group, sn->lsn);
	snprintf(path, sizeof(path), "%s/snapshot", c->scratch);
	rc = qfs_objstore_get_file(c->os, key, path);
	if (rc == QFS_ECORRUPT)
		return failf(c, rc, "archived object %s is corrupt (checksum mismatch); refusing to restore",
			     key);
	if (rc)
		return store_fail(c, rc, "cannot download", key);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		rc = -errno;
		if (fd >= 0)
			close(fd);
		return failf(c, rc, "%s: %s", path, strerror(-rc));
	}
	if ((uint64_t)st.st_size != sn->size) {
		close(fd);
		return failf(c, QFS_ECORRUPT, "archived object %s is corrupt: %llu bytes, manifest says %llu",
			     key, (unsigned long long)st.st_size, (unsigned long long)sn->size);
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (map == MAP_FAILED)
		return failf(c, -errno, "mmap %s: %s", path, strerror(errno));
	if (qfs_crc32c(0, map, (size_t)st.st_size) != sn->crc) {
		rc = failf(c, QFS_ECORRUPT, "archived object %s is corrupt: CRC-32C differs from the manifest",
			   key);
		goto out;
	}
	rc = qfs_arch_snap_walk(map, (size_t)st.st_size, load_item, r, &g, &lsn, &t, &items, &why);
	if (rc == 0 && (g != r->group || lsn != sn->lsn)) {
		rc = QFS_ECORRUPT;
		why = "header names another group or LSN";
	}
	if (rc && r->rc)
		rc = failf(c, r->rc, "scratch store: %s", qfs_strerror(r->rc));
	else if (rc)
		rc = failf(c, rc, "archived object %s is corrupt: %s", key, why);
	else if ((rc = qfs_store_load_applied(c->st, r->group, lsn)) != 0)
		rc = failf(c, rc, "scratch store: %s", qfs_strerror(rc));
	else
		r->applied = lsn;
out:
	munmap(map, (size_t)st.st_size);
	unlink(path);
	return rc;
}

/* The plan for exactly max_lsn: the newest snapshot at or below it, then
 * the segments above it.  0 or -ENODATA (a hole). */
static int plan_lsn(const struct qfs_arch_manifest *m, qfs_lsn_t max_lsn, struct qfs_arch_plan *pl)
{
	pl->snap = -1;
	pl->from = 0;
	for (size_t i = 0; i < m->nsnaps; i++)
		if (m->snaps[i].lsn <= max_lsn) {
			pl->snap = (long)i;
			pl->from = m->snaps[i].lsn;
		}
	pl->seg_lo = 0;
	while (pl->seg_lo < m->nsegs && m->segs[pl->seg_lo].last <= pl->from)
		pl->seg_lo++;
	pl->seg_hi = m->nsegs;
	if (pl->from < max_lsn && (pl->seg_lo == m->nsegs || m->segs[pl->seg_lo].first > pl->from + 1))
		return -ENODATA;
	return 0;
}

/* Rebuild group as of c->o->time_ns (max_lsn == UINT64_MAX) or as of
 * exactly max_lsn into the scratch store.  *applied: the last LSN applied.
 * With max_lsn: -EAGAIN when the archive does not reach it yet. */
static int rebuild(struct rctx *c, qfs_group_t group, const char *what, qfs_lsn_t max_lsn,
		   qfs_lsn_t *applied)
{
	char key[QFS_ARCH_KEY_MAX];
	struct qfs_arch_manifest m;
	struct qfs_arch_plan pl;
	struct replay r = { .c = c, .group = group, .t_ns = c->o->time_ns, .max_lsn = max_lsn };
	void *data = NULL;
	size_t len = 0;
	int rc;

	qfs_arch_key_manifest(key, group);
	rc = qfs_objstore_get(c->os, key, 0, 0, &data, &len);
	if (rc == -ENOENT && max_lsn != UINT64_MAX)
		return failf(c, -EAGAIN, "%s is not archived yet", what);
	if (rc == -ENOENT)
		return failf(c, -ENODATA, "no archive of %s at %s (object %s missing)", what,
			     qfs_objstore_describe(c->os), key);
	if (rc == QFS_ECORRUPT)
		return failf(c, rc, "archived object %s is corrupt (checksum mismatch); refusing to restore",
			     key);
	if (rc)
		return store_fail(c, rc, "cannot read", key);
	qfs_arch_manifest_init(&m, group);
	rc = qfs_arch_manifest_decode(data, len, group, &m);
	free(data);
	if (rc) {
		qfs_arch_manifest_close(&m);
		return failf(c, rc, "archived manifest %s is unreadable: %s", key, qfs_strerror(rc));
	}
	if (max_lsn != UINT64_MAX && qfs_arch_manifest_last(&m) < max_lsn) {
		rc = failf(c, -EAGAIN, "%s is archived up to LSN %llu only", what,
			   (unsigned long long)qfs_arch_manifest_last(&m));
		goto out;
	}
	rc = max_lsn != UINT64_MAX ? plan_lsn(&m, max_lsn, &pl) : qfs_arch_plan(&m, c->o->time_ns, &pl);
	if (rc && max_lsn == UINT64_MAX && qfs_arch_earliest(&m) != 0 && qfs_arch_earliest(&m) != UINT64_MAX) {
		uint64_t e = qfs_arch_earliest(&m);
		time_t sec = (time_t)((e + 999999999ull) / 1000000000ull); /* rounded up */
		struct tm tm;
		char when[64] = "?";
		if (gmtime_r(&sec, &tm))
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		failf(c, rc, "the archive of %s no longer reaches back to the requested time: the earliest "
		      "restorable time is %s (archive retention)", what, when);
		goto out;
	}
	if (rc) {
		failf(c, rc, "the archive of %s does not reach back to the requested time (first archived LSN %llu, no usable snapshot)",
		      what, m.nsegs ? (unsigned long long)m.segs[0].first : 0ull);
		goto out;
	}
	if (c->o->time_ns != UINT64_MAX && pl.seg_hi == m.nsegs) {
		/* T lies after everything archived for this group: either nothing
		 * changed since (an idle table) or the archive lags the live log
		 * (up to seal_age + archive_interval, longer while the store was
		 * unreachable).  The archive cannot tell which: say so. */
		uint64_t end = m.nsegs ? m.segs[m.nsegs - 1].t_last : 0;
		if (pl.snap >= 0 && m.snaps[pl.snap].time_ns > end)
			end = m.snaps[pl.snap].time_ns;
		if (end < c->o->time_ns) {
			time_t sec = (time_t)(end / 1000000000ull);
			struct tm tm;
			char when[64] = "the beginning";
			if (end && gmtime_r(&sec, &tm))
				strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
			fprintf(stderr,
				"quorumfs restore: warning: the archive of %s ends at %s, before the requested time; "
				"changes made after that and not yet archived are not in the result\n",
				what, when);
		}
	}
	if (pl.snap >= 0 && (rc = load_snapshot(c, &r, &m.snaps[pl.snap])) != 0)
		goto out;
	if (c->o->verbose)
		fprintf(stderr, "quorumfs restore: %s: group %016llx snapshot lsn %llu, %zu segment(s) to replay\n",
			what, (unsigned long long)group, (unsigned long long)r.applied, pl.seg_hi - pl.seg_lo);
	for (size_t i = pl.seg_lo; i < pl.seg_hi; i++) {
		const struct qfs_arch_seg *s = &m.segs[i];
		struct qfs_arch_seg got;
		const char *why = "";

		qfs_arch_key_seg(key, group, s->first, s->last);
		rc = qfs_objstore_get(c->os, key, 0, 0, &data, &len);
		if (rc == QFS_ECORRUPT) {
			failf(c, rc, "archived object %s is corrupt (checksum mismatch); refusing to restore", key);
			goto out;
		}
		if (rc) {
			store_fail(c, rc, "cannot download", key);
			goto out;
		}
		if (len != s->size || qfs_crc32c(0, data, len) != s->crc) {
			free(data);
			rc = failf(c, QFS_ECORRUPT,
				   "archived object %s is corrupt: size or CRC-32C differs from the manifest", key);
			goto out;
		}
		/* check every record before applying any of them */
		rc = qfs_arch_seg_walk(data, len, NULL, NULL, &got, &why);
		if (rc == 0 && (got.first != s->first || got.last != s->last)) {
			rc = QFS_ECORRUPT;
			why = "LSN range differs from the manifest";
		}
		if (rc) {
			free(data);
			failf(c, rc, "archived object %s is corrupt: %s", key, why);
			goto out;
		}
		rc = qfs_arch_seg_walk(data, len, replay_rec, &r, &got, &why);
		free(data);
		if (rc == REPLAY_STOP) {
			rc = 0;
			break;
		}
		if (rc && r.gap) {
			failf(c, -ENODATA, "archive of %s has a hole before LSN %llu (%s)", what,
			      (unsigned long long)r.applied + 1, key);
			goto out;
		}
		if (rc) {
			failf(c, rc, "replay of %s failed: %s", key, qfs_strerror(rc));
			goto out;
		}
	}
	if (max_lsn != UINT64_MAX && r.applied != max_lsn) {
		rc = failf(c, -ENODATA, "archive of %s ends at LSN %llu before %llu", what,
			   (unsigned long long)r.applied, (unsigned long long)max_lsn);
		goto out;
	}
	*applied = r.applied;
out:
	qfs_arch_manifest_close(&m);
	return rc;
}

/* ---------------------------------------------------------------- hard links */

static size_t lk_slot(const struct linked *v, size_t cap, qfs_ino_t ino)
{
	size_t i = (size_t)((ino * 0x9e3779b97f4a7c15ull) >> 17) & (cap - 1);
	while (v[i].ino && v[i].ino != ino)
		i = (i + 1) & (cap - 1);
	return i;
}

/* Where the file ino was first written, or NULL. */
static const char *lk_find(const struct rctx *c, qfs_ino_t ino)
{
	if (!c->lk_cap)
		return NULL;
	const struct linked *e = &c->lk[lk_slot(c->lk, c->lk_cap, ino)];
	return e->ino ? e->path : NULL;
}

/* Remember that ino was written at path.  0 or -ENOMEM. */
static int lk_add(struct rctx *c, qfs_ino_t ino, const char *path)
{
	if ((c->lk_n + 1) * 2 > c->lk_cap) {
		size_t cap = c->lk_cap ? c->lk_cap * 2 : 64;
		struct linked *v = calloc(cap, sizeof(*v));
		if (!v)
			return -ENOMEM;
		for (size_t i = 0; i < c->lk_cap; i++)
			if (c->lk[i].ino)
				v[lk_slot(v, cap, c->lk[i].ino)] = c->lk[i];
		free(c->lk);
		c->lk = v;
		c->lk_cap = cap;
	}
	char *p = strdup(path);
	if (!p)
		return -ENOMEM;
	struct linked *e = &c->lk[lk_slot(c->lk, c->lk_cap, ino)];
	e->ino = ino;
	e->path = p;
	c->lk_n++;
	return 0;
}

static void lk_free(struct rctx *c)
{
	for (size_t i = 0; i < c->lk_cap; i++)
		free(c->lk[i].path);
	free(c->lk);
	c->lk = NULL;
	c->lk_cap = c->lk_n = 0;
}


/* ---------------------------------------------------------------- tree */

struct dent {
	char name[QFS_NAME_MAX + 1];
	qfs_ino_t ino;
};

struct dlist {
	struct dent *v;
	size_t n, cap;
	int err;
};

static int dent_cb(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, void *arg)
{
	struct dlist *l = arg;
	struct qfs_key key;
	struct qfs_dentry d;

	if (qfs_key_parse(k, kl, &key) != 0 || key.kind != QFS_KEY_DENTRY ||
	    qfs_dentry_decode(v, vl, &d) != 0) {
		l->err = QFS_ECORRUPT;
		return 1;
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 32;
		struct dent *nv = realloc(l->v, cap * sizeof(*nv));
		if (!nv) {
			l->err = -ENOMEM;
			return 1;
		}
		l->v = nv;
		l->cap = cap;
	}
	memcpy(l->v[l->n].name, key.name, key.name_len);
	l->v[l->n].name[key.name_len] = '\0';
	l->v[l->n].ino = d.ino;
	l->n++;
	return 0;
}

struct chunk_ctx {
	int fd;
	uint64_t size;
	int err;
	uint64_t bytes;
};

static int chunk_cb(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, void *arg)
{
	struct chunk_ctx *cc = arg;
	struct qfs_key key;
	uint64_t off;
	size_t n, done = 0;

	if (qfs_key_parse(k, kl, &key) != 0 || key.kind != QFS_KEY_CHUNK) {
		cc->err = QFS_ECORRUPT;
		return 1;
	}
	off = key.chunk * QFS_CHUNK_SIZE;
	if (off >= cc->size)
		return 0;
	n = vl;
	if (n > cc->size - off)
		n = (size_t)(cc->size - off);
	while (done < n) {
		ssize_t w = pwrite(cc->fd, v + done, n - done, (off_t)(off + done));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			cc->err = w < 0 ? -errno : -EIO;
			return 1;
		}
		done += (size_t)w;
	}
	cc->bytes += n;
	return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int get_inode(struct rctx *c, qfs_group_t group, qfs_ino_t ino, struct qfs_inode *in)
{
	uint8_t key[QFS_KEY_MAX];
	size_t klen = qfs_key_inode(key, ino), vlen;
	void *val;
	int rc = qfs_store_get(c->st, group, key, klen, &val, &vlen);

	if (rc)
		return rc;
	rc = qfs_inode_decode(val, vlen, in);
	free(val);
	return rc;
}

/* xattrs, owner, mode, times of dst from in. */
static int set_meta(struct rctx *c, const char *dst, const struct qfs_inode *in)
{
	uint32_t type = in->a.mode & S_IFMT;
	struct timespec ts[2];

	for (uint32_t i = 0; i < in->nxattrs; i++) {
		const struct qfs_xattr *x = &in->xattrs[i];
		if (lsetxattr(dst, x->name, x->value, x->len, 0) != 0) {
			if (type == S_IFLNK && (errno == EPERM || errno == ENOTSUP))
				continue; /* Linux keeps no user.* xattrs on symlinks */
			return failf(c, -errno, "setxattr %s on %s: %s", x->name, dst, strerror(errno));
		}
	}
	if (c->is_root && lchown(dst, in->a.uid, in->a.gid) != 0)
		return failf(c, -errno, "chown %s: %s", dst, strerror(errno));
	if (type != S_IFLNK && chmod(dst, in->a.mode & 07777) != 0)
		return failf(c, -errno, "chmod %s: %s", dst, strerror(errno));
	ts[0].tv_sec = (time_t)in->a.atime.sec;
	ts[0].tv_nsec = in->a.atime.nsec;
	ts[1].tv_sec = (time_t)in->a.mtime.sec;
	ts[1].tv_nsec = in->a.mtime.nsec;
	if (utimensat(AT_FDCWD, dst, ts, AT_SYMLINK_NOFOLLOW) != 0)
		return failf(c, -errno, "utimensat %s: %s", dst, strerror(errno));
	return 0;
}

/* Write inode ino of group at dst (which must not exist, except an empty
 * directory when top is set and ino is a directory). */
static int write_tree(struct rctx *c, qfs_group_t group, qfs_ino_t ino, const char *dst, int top)
{
	struct qfs_inode in;
	uint32_t type;
	int rc;

	qfs_inode_init(&in);
	rc = get_inode(c, group, ino, &in);
	if (rc) {
		qfs_inode_close(&in);
		return failf(c, rc == -ENOENT ? QFS_ECORRUPT : rc,
			     "inode %llu (for %s) missing or unreadable in the rebuilt partition: %s",
			     (unsigned long long)ino, dst, qfs_strerror(rc));
	}
	type = in.a.mode & S_IFMT;
	if (type != S_IFDIR && in.a.nlink > 1) {
		const char *first = lk_find(c, ino);
		if (first) { /* another name of a file already written */
			if (link(first, dst) != 0)
				rc = failf(c, -errno, "link %s to %s: %s", dst, first, strerror(errno));
			c->links++;
			qfs_inode_close(&in);
			return rc;
		}
	}
	switch (type) {
	case S_IFDIR: {
		struct dlist l = { 0 };
		uint8_t lo[QFS_KEY_MAX], hi[QFS_KEY_MAX];
		size_t lol, hil;

		if (mkdir(dst, 0700) != 0 && !(top && errno == EEXIST)) {
			rc = failf(c, -errno, "mkdir %s: %s", dst, strerror(errno));
			break;
		}
		qfs_key_dentry_range(lo, &lol, hi, &hil, ino);
		rc = qfs_store_scan(c->st, group, lo, lol, hi, hil, dent_cb, &l);
		if (rc == 1)
			rc = failf(c, l.err, "directory %s: %s", dst, qfs_strerror(l.err));
		else if (rc)
			rc = failf(c, rc, "scratch store scan: %s", qfs_strerror(rc));
		for (size_t i = 0; !rc && i < l.n; i++) {
			char child[PATH_MAX];

			if (snprintf(child, sizeof(child), "%s/%s", dst, l.v[i].name) >= (int)sizeof(child)) {
				rc = failf(c, -ENAMETOOLONG, "path too long under %s", dst);
				break;
			}
			rc = write_tree(c, group, l.v[i].ino, child, 0);
		}
		free(l.v);
		c->dirs++;
		break;
	}
	case S_IFREG: {
		int fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

		if (fd < 0) {
			rc = failf(c, -errno, "create %s: %s", dst, strerror(errno));
			break;
		}
		if (in.a.flags & QFS_ATTR_INLINE) {
			size_t n = in.data_len < in.a.size ? in.data_len : (size_t)in.a.size;
			rc = write_all(fd, in.data, n);
			c->bytes += n;
		} else {
			struct chunk_ctx cc = { .fd = fd, .size = in.a.size };
			uint8_t lo[QFS_KEY_MAX], hi[QFS_KEY_MAX];
			size_t lol, hil;

			qfs_key_chunk_range(lo, &lol, hi, &hil, ino, 0, UINT64_MAX);
			rc = qfs_store_scan(c->st, group, lo, lol, hi, hil, chunk_cb, &cc);
			if (rc == 1)
				rc = cc.err;
			c->bytes += cc.bytes;
		}
		if (!rc && ftruncate(fd, (off_t)in.a.size) != 0)
			rc = -errno;
		if (close(fd) != 0 && !rc)
			rc = -errno;
		if (rc)
			rc = failf(c, rc, "write %s: %s", dst, qfs_strerror(rc));
		c->files++;
		break;
	}
	case S_IFLNK: {
		char target[QFS_SYMLINK_MAX + 1];
		size_t n = in.data_len < QFS_SYMLINK_MAX ? in.data_len : QFS_SYMLINK_MAX;

		memcpy(target, in.data ? (const char *)in.data : "", n);
		target[n] = '\0';
		if (symlink(target, dst) != 0)
			rc = failf(c, -errno, "symlink %s: %s", dst, strerror(errno));
		c->files++;
		break;
	}
	case S_IFIFO:
		if (mkfifo(dst, 0600) != 0)
			rc = failf(c, -errno, "mkfifo %s: %s", dst, strerror(errno));
		c->files++;
		break;
	case S_IFCHR:
	case S_IFBLK:
	case S_IFSOCK:
		if (mknod(dst, type | 0600, (dev_t)in.a.rdev) != 0)
			rc = failf(c, -errno, "mknod %s: %s", dst, strerror(errno));
		c->files++;
		break;
	default:
		rc = failf(c, QFS_ECORRUPT, "inode %llu has an unknown type %o", (unsigned long long)ino, type);
	}
	if (!rc)
		rc = set_meta(c, dst, &in);
	if (!rc && type != S_IFDIR && in.a.nlink > 1 && (rc = lk_add(c, ino, dst)) != 0)
		rc = failf(c, rc, "out of memory remembering the names of %s", dst);
	qfs_inode_close(&in);
	return rc;
}

/* ---------------------------------------------------------------- lookup */

static int lookup(struct rctx *c, qfs_group_t group, qfs_ino_t dir, const char *name, size_t len,
		  struct qfs_dentry *out)
{
	uint8_t key[QFS_KEY_MAX];
	size_t klen, vlen;
	void *val;
	int rc;

	if (len == 0 || len > QFS_NAME_MAX)
		return -ENOENT;
	klen = qfs_key_dentry(key, dir, name, len);
	rc = qfs_store_get(c->st, group, key, klen, &val, &vlen);
	if (rc)
		return rc;
	rc = qfs_dentry_decode(val, vlen, out);
	free(val);
	return rc;
}

/* ---- partitions (doc/partitions.md; records: doc/format-keys.md) ---- */

#define RESTORE_MAX_PARTS 4096
#define RESTORE_TABLE_GROUP (UINT64_MAX - 1) /* scratch group of a reassembled table */

struct rpart {
	qfs_group_t group;
	uint32_t lo_len, hi_len;     /* hi_len 0: to the end */
	uint8_t lo[QFS_KEY_MAX], hi[QFS_KEY_MAX];
};

struct rparts {
	struct rpart *v;
	size_t n;
	int err;
};

static int parts_cb(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, void *arg)
{
	struct rparts *ps = arg;
	struct qfs_rd r;
	const uint8_t *lo, *hi;
	size_t lol, hil;

	if (kl != QFS_KEY_PREFIX_LEN + 18 || ps->n == RESTORE_MAX_PARTS) {
		ps->err = QFS_ECORRUPT;
		return 1;
	}
	struct rpart *p = &ps->v[ps->n];
	p->group = qfs_be64_get(k + QFS_KEY_PREFIX_LEN + 10);
	qfs_rd_init(&r, v, vl);
	if (qfs_rd_u8(&r) != 1)
		r.err = QFS_ECORRUPT;
	(void)qfs_rd_u64(&r); /* epoch */
	lo = qfs_rd_bytes(&r, &lol);
	hi = qfs_rd_bytes(&r, &hil);
	if (r.err || lol > QFS_KEY_MAX || hil > QFS_KEY_MAX) {
		ps->err = QFS_ECORRUPT;
		return 1;
	}
	if (lol)
		memcpy(p->lo, lo, lol);
	if (hil)
		memcpy(p->hi, hi, hil);
	p->lo_len = (uint32_t)lol;
	p->hi_len = (uint32_t)hil;
	ps->n++;
	return 0;
}

/* The partition records of table in the rebuilt meta group (0 records: a
 * table from before partitions, 1: never split).  0 or an error. */
static int table_partitions(struct rctx *c, qfs_ino_t table, struct rparts *ps)
{
	uint8_t lo[QFS_KEY_PREFIX_LEN + 18], hi[QFS_KEY_PREFIX_LEN + 18];
	size_t len = qfs_key_prefix(lo, 0);
	int rc;

	lo[len] = 0;
	lo[len + 1] = 'p';
	memcpy(hi, lo, len + 2);
	qfs_be64_put(lo + len + 2, table);
	qfs_be64_put(hi + len + 2, table + 1);
	memset(lo + len + 10, 0, 8);
	memset(hi + len + 10, 0, 8);
	ps->v = calloc(RESTORE_MAX_PARTS, sizeof(*ps->v));
	if (!ps->v)
		return -ENOMEM;
	rc = qfs_store_scan(c->st, QFS_META_GROUP, lo, len + 18, hi, len + 18, parts_cb, ps);
	if (rc < 0)
		return rc;
	return ps->err;
}

struct copy_in {
	struct qfs_store *st;
	int err;
};

static int copy_in_cb(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, void *arg)
{
	struct copy_in *ci = arg;

	ci->err = qfs_store_load_item(ci->st, RESTORE_TABLE_GROUP, k, kl, v, vl);
	return ci->err != 0;
}

/* Rebuild every partition of a split table as of the restore time and
 * put the items of each one's range together in RESTORE_TABLE_GROUP.  A
 * partition's group may still hold keys outside its range (a split's last
 * step had not run): only its own range is taken. */
static int reassemble(struct rctx *c, const char *table, const struct rparts *ps, qfs_lsn_t *lsn)
{
	static const uint8_t first[2] = { 0, 0 }; /* above the fence key "\0" (doc/format-keys.md) */
	static const uint8_t end[QFS_KEY_PREFIX_LEN] = {
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	};
	char what[QFS_NAME_MAX + 64];
	int rc;

	for (size_t i = 0; i < ps->n; i++) {
		const struct rpart *p = &ps->v[i];
		struct copy_in ci = { c->st, 0 };
		qfs_lsn_t l = 0;

		snprintf(what, sizeof(what), "partition %016llx of table '%s'", (unsigned long long)p->group, table);
		if ((rc = rebuild(c, p->group, what, UINT64_MAX, &l)) != 0)
			return rc;
		if (l > *lsn)
			*lsn = l;
		rc = qfs_store_scan(c->st, p->group, p->lo_len ? p->lo : first, p->lo_len ? p->lo_len : 2,
				    p->hi_len ? p->hi : end, p->hi_len ? p->hi_len : sizeof(end), copy_in_cb, &ci);
		if (rc >= 0 && ci.err)
			rc = ci.err;
		if (rc < 0)
			return failf(c, rc, "reassembling %s: %s", what, qfs_strerror(rc));
	}
	return 0;
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static int dest_ready(struct rctx *c, const char *to)
{
	struct stat st;

	if (lstat(to, &st) != 0) {
		if (errno != ENOENT)
			return failf(c, -errno, "%s: %s", to, strerror(errno));
		return 0;
	}
	if (!S_ISDIR(st.st_mode))
		return failf(c, -EEXIST, "destination %s exists and is not a directory", to);
	return 1; /* exists: a directory */
}

static int dir_empty(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	DIR *d = fdopendir(fd);
	struct dirent *de;
	int empty = 1;

	if (!d) {
		close(fd);
		return 0;
	}
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			empty = 0;
			break;
		}
	closedir(d);
	return empty;
}

/* See archive.h. */
int qfs_restore_run(const struct qfs_restore_opts *o, char *err, size_t err_len)
{
	struct rctx c;
	struct qfs_dentry td, d;
	qfs_lsn_t meta_lsn = 0, lsn = 0;
	qfs_group_t tgroup = 0; /* the scratch group the table is read from */
	qfs_ino_t ino;
	const char *tmp = o->tmp_dir ? o->tmp_dir : getenv("TMPDIR");
	char dbdir[PATH_MAX], what[QFS_NAME_MAX + 16], dst[PATH_MAX];
	int rc, exists;

	memset(&c, 0, sizeof(c));
	c.o = o;
	c.err = err;
	c.err_len = err_len;
	c.is_root = geteuid() == 0;
	err[0] = '\0';
	if (!o->table || !*o->table || strlen(o->table) > QFS_NAME_MAX || strchr(o->table, '/'))
		return failf(&c, -EINVAL, "bad table name");
	if (!o->to || !*o->to)
		return failf(&c, -EINVAL, "no destination (--to)");
	rc = qfs_objstore_open(&o->store, &c.os);
	if (rc)
		return failf(&c, rc, "cannot open the archive %s: %s", o->store.url ? o->store.url : "-",
			     qfs_strerror(rc));
	snprintf(c.scratch, sizeof(c.scratch), "%s/qfs-restore.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(c.scratch)) {
		rc = failf(&c, -errno, "scratch directory %s: %s", c.scratch, strerror(errno));
		goto out_close_os;
	}
	snprintf(dbdir, sizeof(dbdir), "%s/db", c.scratch);
	if ((rc = qfs_store_open(dbdir, &c.st)) != 0) {
		failf(&c, rc, "scratch store %s: %s", dbdir, qfs_strerror(rc));
		goto out_rm;
	}

	if ((rc = rebuild(&c, QFS_META_GROUP, "the table list (meta group)", UINT64_MAX, &meta_lsn)) != 0)
		goto out_store;
	rc = lookup(&c, QFS_META_GROUP, QFS_ROOT_INO, o->table, strlen(o->table), &td);
	if (rc == -ENOENT) {
		rc = failf(&c, -ENOENT, "no table named '%s' at that time", o->table);
		goto out_store;
	}
	if (rc) {
		failf(&c, rc, "table list: %s", qfs_strerror(rc));
		goto out_store;
	}
	snprintf(what, sizeof(what), "table '%s'", o->table);
	{
		/* the partitions the table had at that time (doc/partitions.md) */
		struct rparts ps = { 0 };
		rc = table_partitions(&c, td.group, &ps);
		if (rc)
			failf(&c, rc, "partition map of table '%s': %s", o->table, qfs_strerror(rc));
		else if (ps.n > 1) {
			lsn = 0;
			rc = reassemble(&c, o->table, &ps, &lsn);
			tgroup = RESTORE_TABLE_GROUP;
		} else {
			rc = rebuild(&c, td.group, what, UINT64_MAX, &lsn);
			tgroup = td.group;
		}
		free(ps.v);
		if (rc)
			goto out_store;
	}

	/* Resolve the path inside the table. */
	ino = td.ino;
	const char *p = o->path ? o->path : "", *base = NULL;
	size_t base_len = 0;
	while (*p) {
		const char *e;

		while (*p == '/')
			p++;
		if (!*p)
			break;
		e = strchr(p, '/');
		if (!e)
			e = p + strlen(p);
		rc = lookup(&c, tgroup, ino, p, (size_t)(e - p), &d);
		if (rc) {
			rc = failf(&c, rc == -ENOENT ? -ENOENT : rc, "no path '%s' in table '%s' at that time",
				   o->path, o->table);
			goto out_store;
		}
		ino = d.ino;
		base = p;
		base_len = (size_t)(e - p);
		p = e;
	}

	exists = dest_ready(&c, o->to);
	if (exists < 0) {
		rc = exists;
		goto out_store;
	}
	if (!base) {
		if (exists && !dir_empty(o->to)) {
			rc = failf(&c, -ENOTEMPTY, "destination %s is not empty", o->to);
			goto out_store;
		}
		rc = write_tree(&c, tgroup, ino, o->to, 1);
	} else {
		if (!exists && mkdir(o->to, 0755) != 0) {
			rc = failf(&c, -errno, "mkdir %s: %s", o->to, strerror(errno));
			goto out_store;
		}
		snprintf(dst, sizeof(dst), "%s/%.*s", o->to, (int)base_len, base);
		rc = write_tree(&c, tgroup, ino, dst, 0);
	}
	if (!rc && o->verbose)
		fprintf(stderr,
			"quorumfs restore: table '%s' (meta lsn %llu, table lsn %llu): %llu files, %llu hard links, %llu directories, %llu bytes into %s\n",
			o->table, (unsigned long long)meta_lsn, (unsigned long long)lsn,
			(unsigned long long)c.files, (unsigned long long)c.links, (unsigned long long)c.dirs,
			(unsigned long long)c.bytes, o->to);
	if (!rc)
		QFS_LOG(QFS_LOG_INFO, "restore done table=%s path=%s meta_lsn=%llu lsn=%llu files=%llu bytes=%llu to=%s",
			QFS_ESC_NAME(o->table), o->path && *o->path ? o->path : "/", (unsigned long long)meta_lsn,
			(unsigned long long)lsn, (unsigned long long)c.files, (unsigned long long)c.bytes, o->to);
out_store:
	lk_free(&c);
	qfs_store_close(c.st);
out_rm:
	nftw(c.scratch, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
out_close_os:
	qfs_objstore_close(c.os);
	return rc;
}

/* ------------------------------------------------- scrub: reference, verify */

static int scratch_open(struct rctx *c, const struct qfs_objstore_cfg *cfg, const char *tmp_dir,
			char *err, size_t err_len)
{
	const char *tmp = tmp_dir ? tmp_dir : getenv("TMPDIR");
	int rc;

	c->err = err;
	c->err_len = err_len;
	err[0] = '\0';
	rc = qfs_objstore_open(cfg, &c->os);
	if (rc)
		return failf(c, rc, "cannot open the archive %s: %s", cfg->url ? cfg->url : "-",
			     qfs_strerror(rc));
	snprintf(c->scratch, sizeof(c->scratch), "%s/qfs-scrub.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(c->scratch)) {
		rc = failf(c, -errno, "scratch directory %s: %s", c->scratch, strerror(errno));
		qfs_objstore_close(c->os);
		return rc;
	}
	return 0;
}

static void scratch_close(struct rctx *c)
{
	nftw(c->scratch, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	qfs_objstore_close(c->os);
}

/* See archive.h.  Reuses rebuild() (the restore's replay) with an LSN cut. */
int qfs_archive_reference(const struct qfs_objstore_cfg *cfg, const char *tmp_dir, qfs_group_t group,
			  qfs_lsn_t lsn, struct qfs_store *st, char *err, size_t err_len)
{
	struct qfs_restore_opts o = { .time_ns = UINT64_MAX };
	struct rctx c;
	char what[40];
	qfs_lsn_t applied = 0;
	int rc;

	memset(&c, 0, sizeof(c));
	c.o = &o;
	if ((rc = scratch_open(&c, cfg, tmp_dir, err, err_len)))
		return rc;
	c.st = st;
	snprintf(what, sizeof(what), "group %016llx", (unsigned long long)group);
	qfs_arch_read_lock();
	rc = rebuild(&c, group, what, lsn, &applied);
	qfs_arch_read_unlock();
	scratch_close(&c);
	return rc;
}

/*
 * Read the archived object key that a manifest lists with size bytes and
 * CRC-32C crc into *data (heap, *len bytes; the caller frees it); counts
 * each object read in *n.  A missing object, a checksum mismatch or a size
 * or CRC differing from the manifest is QFS_ECORRUPT, a store error its
 * errno; c->err says which, and *data is then NULL.
 */
static int get_listed(struct rctx *c, const char *key, uint64_t size, uint32_t crc,
		      void **data, size_t *len, uint64_t *n)
{
	int rc;

	*data = NULL;
	rc = qfs_objstore_get(c->os, key, 0, 0, data, len);
	if (rc == QFS_ECORRUPT || rc == -ENOENT) {
		failf(c, QFS_ECORRUPT, "archived object %s is %s", key,
		      rc == -ENOENT ? "missing" : "corrupt (checksum mismatch)");
		return QFS_ECORRUPT;
	}
	if (rc) {
		store_fail(c, rc, "cannot read", key);
		return rc;
	}
	(*n)++;
	if (*len != size || qfs_crc32c(0, *data, *len) != crc) {
		free(*data);
		*data = NULL;
		return failf(c, QFS_ECORRUPT,
			     "archived object %s is corrupt: size or CRC-32C differs from the manifest", key);
	}
	return 0;
}

/* See archive.h. */
int qfs_archive_verify_group(const struct qfs_objstore_cfg *cfg, const char *tmp_dir,
			     qfs_group_t group, uint64_t *objects, char *err, size_t err_len)
{
	char key[QFS_ARCH_KEY_MAX];
	struct qfs_arch_manifest m;
	struct rctx c;
	void *data = NULL;
	size_t len = 0;
	uint64_t n = 0;
	int rc;

	memset(&c, 0, sizeof(c));
	if ((rc = scratch_open(&c, cfg, tmp_dir, err, err_len)))
		return rc;
	qfs_arch_read_lock();
	qfs_arch_key_manifest(key, group);
	rc = qfs_objstore_get(c.os, key, 0, 0, &data, &len);
	if (rc == -ENOENT) {
		rc = failf(&c, -EAGAIN, "group %016llx is not archived yet", (unsigned long long)group);
		goto out_close;
	}
	if (rc == QFS_ECORRUPT) {
		rc = failf(&c, rc, "archived object %s is corrupt (checksum mismatch)", key);
		goto out_close;
	}
	if (rc) {
		store_fail(&c, rc, "cannot read", key);
		goto out_close;
	}
	qfs_arch_manifest_init(&m, group);
	/* decode checks the manifest's own checksum and the LSN continuity */
	rc = qfs_arch_manifest_decode(data, len, group, &m);
	free(data);
	n++;
	if (rc) {
		failf(&c, rc, "archived manifest %s is unreadable: %s", key, qfs_strerror(rc));
		goto out_m;
	}
	for (size_t i = 0; i < m.nsegs; i++) {
		const struct qfs_arch_seg *s = &m.segs[i];
		struct qfs_arch_seg got;
		const char *why = "";

		qfs_arch_key_seg(key, group, s->first, s->last);
		if ((rc = get_listed(&c, key, s->size, s->crc, &data, &len, &n)))
			goto out_m;
		rc = qfs_arch_seg_walk(data, len, NULL, NULL, &got, &why);
		free(data);
		if (rc == 0 && (got.first != s->first || got.last != s->last)) {
			rc = QFS_ECORRUPT;
			why = "LSN range differs from the manifest";
		}
		if (rc) {
			failf(&c, rc, "archived object %s is corrupt: %s", key, why);
			goto out_m;
		}
	}
	for (size_t i = 0; i < m.nsnaps; i++) {
		const struct qfs_arch_snap *sn = &m.snaps[i];
		const char *why = "";
		qfs_group_t g;
		qfs_lsn_t l;
		uint64_t t, items;

		qfs_arch_key_snap(key, group, sn->lsn);
		if ((rc = get_listed(&c, key, sn->size, sn->crc, &data, &len, &n)))
			goto out_m;
		rc = qfs_arch_snap_walk(data, len, NULL, NULL, &g, &l, &t, &items, &why);
		free(data);
		if (rc == 0 && (g != group || l != sn->lsn || items != sn->items)) {
			rc = QFS_ECORRUPT;
			why = "header or item count differs from the manifest";
		}
		if (rc) {
			failf(&c, rc, "archived object %s is corrupt: %s", key, why);
			goto out_m;
		}
	}
	*objects = n;
out_m:
	qfs_arch_manifest_close(&m);
out_close:
	qfs_arch_read_unlock();
	scratch_close(&c);
	return rc;
}
