/*
 * ops.c - the FUSE low-level handlers.  Each handler ends in exactly one
 * fuse_reply_*; the errors they reply are the ones a filesystem user
 * expects, and each user-visible error gets one log line saying why (at
 * DEBUG for the everyday ENOENT/EEXIST a shell produces all the time).
 *
 * Namespace mapping (DESIGN.md section 2, doc/fs.md): the root lists the
 * tables; a table directory and everything below it are the table's
 * items (router.h); an entry is a dentry item (parent ino, name) naming an
 * inode item.
 * Multi-item changes are one conditional transaction, so a crash never leaves
 * half a rename; conditions that fail because a concurrent change won the
 * race (QFS_ECONFLICT) are retried.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "fs/fs_int.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

#define CONFLICT_RETRIES 16

static const char *fop_name[FOP_NOPS] = {
	"lookup", "getattr", "setattr", "readlink", "mknod", "mkdir", "unlink", "rmdir", "symlink",
	"rename", "link", "open", "read", "write", "flush", "release", "fsync", "opendir", "readdir",
	"statfs", "setxattr", "getxattr", "listxattr", "removexattr", "create", "fallocate",
};

struct qfs_fs *qfs_fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* ---- replies with metrics ---- */

void qfs_fs_done(fuse_req_t req, enum qfs_fs_op op, uint64_t t0, int failed)
{
	uint64_t ns = qfs_clock_mono_ns() - t0;

	qfs_hist_record(&qfs_fs_of(req)->ops[op], ns, failed);
	qfs_fs_avail_record(qfs_fs_of(req), fop_name[op], ns, failed);
}

/* Reply err (< 0, any qfs code) after logging why.  Everyday outcomes log at
 * DEBUG; internal failures at ERR. */
void qfs_fs_fail(fuse_req_t req, enum qfs_fs_op op, uint64_t t0, int err, const char *fmt, ...)
{
	int e = err == QFS_ENOGROUP ? ESTALE : qfs_err_to_errno(err); /* its table was deleted */
	int level = QFS_LOG_INFO;
	char why[512] = "";

	if (e == ENOENT || e == EEXIST || e == ENOTEMPTY || e == ENODATA || e == ERANGE || e == EAGAIN ||
	    e == EOPNOTSUPP)
		level = QFS_LOG_DEBUG; /* everyday outcomes (cp -a probes ACLs on every file) */
	else if (e == EIO || e == ENOMEM || e == ENOSPC)
		level = QFS_LOG_ERR;
	if (level <= qfs_log_level) {
		if (fmt) {
			va_list ap;
			va_start(ap, fmt);
			vsnprintf(why, sizeof(why), fmt, ap);
			va_end(ap);
		}
		qfs_log_write(level, "fs op=%s errno=%s err=\"%s\" %s", fop_name[op], strerrorname_np(e) ? strerrorname_np(e) : "?",
			      qfs_strerror(err), why);
	}
	qfs_fs_tl_errno = e;
	qfs_fs_done(req, op, t0, 1);
	fuse_reply_err(req, e);
}

void qfs_fs_ok(fuse_req_t req, enum qfs_fs_op op, uint64_t t0)
{
	qfs_fs_done(req, op, t0, 0);
	fuse_reply_err(req, 0);
}

void qfs_fs_attr_to_stat(const struct qfs_attr *a, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = a->ino;
	st->st_mode = a->mode;
	st->st_nlink = a->nlink;
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	st->st_rdev = a->rdev;
	st->st_size = (off_t)a->size;
	st->st_blksize = 4096;
	st->st_blocks = (blkcnt_t)a->blocks; /* what is stored: holes and trailing zeros of chunks are not */
	if (S_ISDIR(a->mode)) {
		/* a directory's entries are items of their own; it shows one
		 * block, as a small directory does on ext4 (doc/fs.md) */
		st->st_size = QFS_FS_DIR_SIZE;
		st->st_blocks = QFS_FS_DIR_SIZE / 512;
	}
	st->st_atim.tv_sec = a->atime.sec;
	st->st_atim.tv_nsec = a->atime.nsec;
	st->st_mtim.tv_sec = a->mtime.sec;
	st->st_mtim.tv_nsec = a->mtime.nsec;
	st->st_ctim.tv_sec = a->ctime.sec;
	st->st_ctim.tv_nsec = a->ctime.nsec;
}

void qfs_fs_fill_entry(const struct qfs_fs *fs, struct fuse_entry_param *e, const struct qfs_attr *a)
{
	memset(e, 0, sizeof(*e));
	e->ino = a->ino;
	e->generation = 1;
	e->attr_timeout = fs->timeout;
	e->entry_timeout = fs->timeout;
	qfs_fs_attr_to_stat(a, &e->attr);
}

static int check_name(const char *name)
{
	size_t n = strlen(name);

	if (n > QFS_NAME_MAX)
		return -ENAMETOOLONG;
	if (n == 0)
		return -ENOENT;
	return 0;
}

/* ---- the directory attribute cache ----
 *
 * The kernel asks a directory's attributes (GETATTR) after every create,
 * unlink, mkdir ... in it: the change invalidated them, and with
 * default_permissions its next permission check needs them.  A directory
 * with no buffered state (!loaded) answers them from dac_attr, a copy of
 * its stored attributes, instead of a store read (doc/fs.md "Kernel
 * caches").  The copy is exact because this mount is the only writer of its
 * items (not with cache_timeout=0, which a cluster mount implies: nothing
 * is kept then) and every txn of fs/ runs through qfs_fs_item_txn:
 *  - dac_begin marks each directory inode the txn touches busy (and bumps
 *    its dac_gen); a txn touching an inode that is not in the inode table
 *    (the kernel may look it up while the txn runs), or more than
 *    DAC_DIRS directories, marks the whole cache busy instead (dac_gbusy,
 *    dac_ggen) and drops the copies of those it does not track;
 *  - dac_end, if the txn committed and no other txn on that directory
 *    overlapped it, applies the txn's SETATTR (mode, owner, times) and
 *    NLINK ops to the copy, as the store applies them; anything else (a
 *    failure or an unknown outcome, an overlap, whose order of commit is
 *    not known here, any other op on the inode) drops the copy;
 *  - a read fills the copy only if no txn on the directory (and none
 *    untracked) started or ended while it read;
 *  - the router's own writes (a table deleted, or replaced by a rename)
 *    drop the copy of the table's root (qfs_fs_dac_drop);
 *  - a txn on directories that fails (but for -ENOSPC, the leader's
 *    refusal) turns the cache off for the rest of the mount (fs->dac_off):
 *    a timed-out entry may still commit after a read refilled a copy.
 * Lock: fs->dac_mu, a leaf, taken under an inode's mu or none. */
#define DAC_DIRS 8 /* directories one txn tracks; more: the whole cache is busy */

struct dac_txn {
	unsigned n;
	bool global;                     /* counted in fs->dac_gbusy */
	struct qfs_fs_inode *in[DAC_DIRS]; /* referenced */
};

void qfs_fs_dac_drop(struct qfs_fs *fs, qfs_ino_t ino)
{
	struct qfs_fs_inode *in = qfs_fs_ifind(fs, ino);

	if (!in)
		return;
	pthread_mutex_lock(&fs->dac_mu);
	in->dac_ok = false;
	in->dac_gen++; /* a read in flight does not fill it */
	pthread_mutex_unlock(&fs->dac_mu);
	qfs_fs_iput(fs, in);
}

static void dac_begin(struct qfs_fs *fs, qfs_table_t table, const struct qfs_router_itxn *t, struct dac_txn *d)
{
	d->n = 0;
	d->global = false;
	if (fs->timeout <= 0)
		return;
	for (uint32_t i = 0; i < t->t.nops; i++) {
		qfs_ino_t ino = qfs_router_op_inode(&t->t.ops[i]);
		unsigned j = 0;

		if (ino == 0 || ino == FUSE_ROOT_ID)
			continue; /* no inode, or the root: never cached */
		while (j < d->n && d->in[j]->ino != ino)
			j++;
		if (j < d->n)
			continue;
		struct qfs_fs_inode *in = qfs_fs_ifind(fs, ino);
		if (in && (!S_ISDIR(in->type) || in->table != table)) {
			qfs_fs_iput(fs, in);
			continue;
		}
		pthread_mutex_lock(&fs->dac_mu);
		if (in && d->n < DAC_DIRS) {
			if (in->dac_busy)
				in->dac_spoiled = true;
			in->dac_busy++;
			in->dac_gen++;
			d->in[d->n++] = in;
			pthread_mutex_unlock(&fs->dac_mu);
			continue;
		}
		if (!d->global) {
			d->global = true;
			fs->dac_gbusy++;
			fs->dac_ggen++;
		}
		pthread_mutex_unlock(&fs->dac_mu);
		if (in)
			qfs_fs_iput(fs, in);
		/* Not tracked: a copy it has now (one past DAC_DIRS, or one
		 * looked up and read since the ifind above) would miss t's
		 * changes; the busy cache keeps it from being filled again. */
		qfs_fs_dac_drop(fs, ino);
	}
}

/* Apply t's ops on in's inode to in->dac_attr; false if one is not kept. */
static bool dac_apply(struct qfs_fs_inode *in, const struct qfs_router_itxn *t)
{
	const uint32_t kept = QFS_SET_MODE | QFS_SET_UID | QFS_SET_GID | QFS_SET_ATIME | QFS_SET_MTIME |
			      QFS_SET_CTIME;
	struct qfs_attr *a = &in->dac_attr;

	for (uint32_t i = 0; i < t->t.nops; i++) {
		const struct qfs_op *op = &t->t.ops[i];

		if (qfs_router_op_inode(op) != in->ino)
			continue;
		switch (op->kind) {
		case QFS_OP_EXPECT_ABSENT:
		case QFS_OP_EXPECT_PRESENT:
		case QFS_OP_EXPECT_VALUE:
			break;
		case QFS_OP_SETATTR:
			if (op->mask & ~kept)
				return false;
			if (op->mask & QFS_SET_MODE)
				a->mode = (a->mode & S_IFMT) | (op->attr.mode & 07777);
			if (op->mask & QFS_SET_UID)
				a->uid = op->attr.uid;
			if (op->mask & QFS_SET_GID)
				a->gid = op->attr.gid;
			if (op->mask & QFS_SET_ATIME)
				a->atime = op->attr.atime;
			if (op->mask & QFS_SET_MTIME)
				a->mtime = op->attr.mtime;
			if (op->mask & QFS_SET_CTIME)
				a->ctime = op->attr.ctime;
			break;
		case QFS_OP_NLINK: /* committed: the store found it in range */
			a->nlink = (uint32_t)((int64_t)a->nlink + op->delta);
			break;
		default:
			return false;
		}
	}
	return true;
}

static void dac_end(struct qfs_fs *fs, const struct qfs_router_itxn *t, struct dac_txn *d, bool committed)
{
	if (d->n == 0 && !d->global)
		return;
	pthread_mutex_lock(&fs->dac_mu);
	for (unsigned i = 0; i < d->n; i++) {
		struct qfs_fs_inode *in = d->in[i];

		in->dac_busy--;
		in->dac_gen++;
		if (in->dac_ok && (!committed || in->dac_spoiled || !dac_apply(in, t)))
			in->dac_ok = false;
		if (in->dac_busy == 0)
			in->dac_spoiled = false;
	}
	if (d->global) {
		fs->dac_gbusy--;
		fs->dac_ggen++;
	}
	pthread_mutex_unlock(&fs->dac_mu);
	for (unsigned i = 0; i < d->n; i++)
		qfs_fs_iput(fs, d->in[i]);
}

/* The negative answer: op_lookup keeps its last ENOENT from the store,
 * (parent, name), and create_pending, which the kernel sends right after
 * that lookup (open with O_CREAT holds the directory's lock across both),
 * takes it instead of reading the dentry again.  Exact for the reason the
 * directory attribute cache is (this mount is the only writer of its items;
 * not with cache_timeout=0): a name appears only through a txn of fs/, and
 * every one runs through qfs_fs_item_txn, which counts itself in
 * fs->txn_busy and bumps fs->txn_gen at its start and its end; the answer
 * is kept only if no txn was in flight when its read started and none
 * started or ended until it was kept, and taken only if none did since.
 * Pending creates (pend.c) are found before it by both.  A txn whose
 * outcome is unknown (it may still commit) turns it off for the mount
 * (fs->neg_off).  Lock: fs->neg_mu, a leaf. */
static void neg_snap(struct qfs_fs *fs, uint64_t *gen, uint32_t *busy)
{
	pthread_mutex_lock(&fs->neg_mu);
	*gen = fs->txn_gen;
	*busy = fs->txn_busy;
	pthread_mutex_unlock(&fs->neg_mu);
}

static bool neg_usable(const struct qfs_fs *fs)
{
	return fs->timeout > 0 && !__atomic_load_n(&fs->neg_off, __ATOMIC_RELAXED);
}

/* Keep (parent, name) as absent: its read started at gen with busy txns. */
static void neg_put(struct qfs_fs *fs, qfs_ino_t parent, const char *name, uint64_t gen, uint32_t busy)
{
	pthread_mutex_lock(&fs->neg_mu);
	if (busy == 0 && fs->txn_busy == 0 && fs->txn_gen == gen) {
		fs->neg_parent = parent;
		fs->neg_gen = gen;
		strcpy(fs->neg_name, name); /* check_name: at most QFS_NAME_MAX bytes */
	}
	pthread_mutex_unlock(&fs->neg_mu);
}

/* true if (parent, name) is known absent from the store (no txn since). */
static bool neg_get(struct qfs_fs *fs, qfs_ino_t parent, const char *name)
{
	bool hit;

	pthread_mutex_lock(&fs->neg_mu);
	hit = fs->neg_parent == parent && fs->txn_busy == 0 && fs->txn_gen == fs->neg_gen &&
	      strcmp(fs->neg_name, name) == 0;
	pthread_mutex_unlock(&fs->neg_mu);
	return hit && neg_usable(fs);
}

static void txn_count(struct qfs_fs *fs, int delta)
{
	pthread_mutex_lock(&fs->neg_mu);
	fs->txn_busy = (uint32_t)((int32_t)fs->txn_busy + delta);
	fs->txn_gen++;
	pthread_mutex_unlock(&fs->neg_mu);
}

int qfs_fs_item_txn(struct qfs_fs *fs, qfs_table_t table, struct qfs_router_itxn *t, int *res)
{
	struct dac_txn d;
	int rc;

	dac_begin(fs, table, t, &d);
	txn_count(fs, +1);
	rc = qfs_router_item_txn(fs->r, table, t, res);
	if (rc < 0 && rc != -ENOSPC)
		__atomic_store_n(&fs->neg_off, 1, __ATOMIC_SEQ_CST); /* before the count drops */
	txn_count(fs, -1);
	/* A failed txn (a timeout above all) may still commit later, after a
	 * read refilled the copy: from then on no copy is trusted.  -ENOSPC is
	 * the leader's refusal before the entry was taken. */
	if (rc < 0 && rc != -ENOSPC && (d.n || d.global) &&
	    !__atomic_exchange_n(&fs->dac_off, 1, __ATOMIC_SEQ_CST))
		QFS_LOG(QFS_LOG_WARN, "fs directory attribute cache off table=%llu err=\"%s\""
			" why=\"a txn's outcome is unknown\" effect=\"directories' attributes read from the store\"",
			(unsigned long long)table, qfs_strerror(rc));
	dac_end(fs, t, &d, rc == 0 && *res == 0);
	return rc;
}

/* A directory's stored attributes, from the cache or read (and kept);
 * in->mu held, !in->loaded. */
static int dir_attr(struct qfs_fs *fs, struct qfs_fs_inode *in, struct qfs_attr *out)
{
	uint64_t gen, ggen;
	int rc;

	pthread_mutex_lock(&fs->dac_mu);
	if (in->dac_ok) {
		*out = in->dac_attr;
		pthread_mutex_unlock(&fs->dac_mu);
		return 0;
	}
	gen = in->dac_gen;
	ggen = fs->dac_ggen;
	pthread_mutex_unlock(&fs->dac_mu);
	rc = qfs_router_get_attr(fs->r, in->table, in->ino, out);
	if (rc)
		return rc;
	pthread_mutex_lock(&fs->dac_mu);
	if (in->dac_busy == 0 && in->dac_gen == gen && fs->dac_gbusy == 0 && fs->dac_ggen == ggen) {
		in->dac_attr = *out;
		in->dac_ok = true;
		in->dac_nodef = false; /* not read */
	}
	pthread_mutex_unlock(&fs->dac_mu);
	return 0;
}

/* The stored inode of directory parent of table for build_node: from the
 * directory attribute cache when its copy is known to have no default ACL
 * (then *out holds the attributes and no xattr), else read, and the copy
 * filled from that read as dir_attr does when it has none.  0 or the
 * router's error. */
static int parent_inode(struct qfs_fs *fs, qfs_table_t table, qfs_ino_t parent, struct qfs_inode *out)
{
	struct qfs_fs_inode *in = NULL;
	uint64_t gen = 0, ggen = 0;
	int rc;

	if (parent != FUSE_ROOT_ID && fs->timeout > 0 && !__atomic_load_n(&fs->dac_off, __ATOMIC_RELAXED))
		in = qfs_fs_ifind(fs, parent);
	if (in && (!S_ISDIR(in->type) || in->table != table)) {
		qfs_fs_iput(fs, in);
		in = NULL;
	}
	if (in) {
		pthread_mutex_lock(&fs->dac_mu);
		if (in->dac_ok && in->dac_nodef) {
			out->a = in->dac_attr;
			pthread_mutex_unlock(&fs->dac_mu);
			qfs_fs_iput(fs, in);
			return 0;
		}
		gen = in->dac_gen;
		ggen = fs->dac_ggen;
		pthread_mutex_unlock(&fs->dac_mu);
	}
	rc = qfs_router_get_inode(fs->r, table, parent, out);
	if (in && rc == 0 && S_ISDIR(out->a.mode) && !qfs_inode_xattr_find(out, QFS_ACL_DEFAULT)) {
		pthread_mutex_lock(&fs->dac_mu);
		if (in->dac_busy == 0 && in->dac_gen == gen && fs->dac_gbusy == 0 && fs->dac_ggen == ggen) {
			in->dac_attr = out->a;
			in->dac_ok = true;
			in->dac_nodef = true;
		}
		pthread_mutex_unlock(&fs->dac_mu);
	}
	qfs_fs_iput(fs, in);
	return rc;
}

int qfs_fs_inode_attr(struct qfs_fs *fs, struct qfs_fs_inode *in, struct qfs_attr *out)
{
	int rc = 0;

	qfs_fs_ilock(in);
	if (in->loaded) {
		*out = in->attr;
		out->blocks = qfs_fs_blocks(in);
	} else if (S_ISDIR(in->type) && in->ino != FUSE_ROOT_ID && fs->timeout > 0 &&
		   !__atomic_load_n(&fs->dac_off, __ATOMIC_RELAXED)) {
		rc = dir_attr(fs, in, out);
	} else {
		rc = qfs_router_get_attr(fs->r, in->table, in->ino, out);
	}
	pthread_mutex_unlock(&in->mu);
	return rc;
}

/* The inode the kernel calls ino, pinned; NULL if unknown. */
struct qfs_fs_inode *qfs_fs_get_inode(struct qfs_fs *fs, fuse_ino_t ino)
{
	return qfs_fs_ifind(fs, ino);
}

/* Read the dentry (parent, name) in table: decoded into *d and raw value. */
static int read_dentry(struct qfs_fs *fs, qfs_table_t table, qfs_ino_t parent, const char *name,
		       struct qfs_dentry *d, void **raw, size_t *raw_len)
{
	struct qfs_router_key k = DKEY(parent, name);
	size_t vlen;
	void *val;
	int rc = qfs_router_item_get(fs->r, table, &k, &val, &vlen);

	if (rc)
		return rc;
	rc = qfs_dentry_decode(val, vlen, d);
	if (rc) {
		free(val);
		return rc;
	}
	if (raw) {
		*raw = val;
		*raw_len = vlen;
	} else {
		free(val);
	}
	return 0;
}

/* The stored value a dentry d would have (as read_dentry's raw), malloc'd. */
static int hinted_dentry(const struct qfs_dentry *d, void **raw, size_t *raw_len)
{
	struct qfs_buf b;

	qfs_buf_init(&b);
	qfs_dentry_encode(d, &b);
	if (b.err) {
		int rc = b.err;
		qfs_buf_close(&b);
		return rc;
	}
	*raw = b.data; /* the buffer's own heap block, freed with free() */
	*raw_len = b.len;
	return 0;
}

/* The directories whose entries the txn being built on this thread
 * touches (qfs_fs_add_op), told once it ran (qfs_fs_run_txn): readdir
 * pages read before are stale (dir.c).  TXN_DIRS + 1: more than fit, any
 * directory.  A txn built but not run tells them with the next one. */
#define TXN_DIRS 4
static __thread qfs_ino_t txn_dirs[TXN_DIRS];
static __thread unsigned txn_ndirs;

struct qfs_op *qfs_fs_add_op(struct qfs_router_itxn *t, enum qfs_op_kind kind, struct qfs_router_key k)
{
	if (k.kind == QFS_RKEY_DENTRY && txn_ndirs <= TXN_DIRS) {
		unsigned i = 0;
		while (i < txn_ndirs && txn_dirs[i] != k.ino)
			i++;
		if (i == txn_ndirs && txn_ndirs++ < TXN_DIRS)
			txn_dirs[i] = k.ino;
	}
	return qfs_router_itxn_add(t, kind, &k, NULL);
}

/* Add "directory dir changed now" (mtime+ctime) and an nlink delta. */
static int touch_dir(struct qfs_router_itxn *t, struct qfs_router_key dir, const struct qfs_ts *now, int nlink)
{
	struct qfs_op *op = qfs_fs_add_op(t, QFS_OP_SETATTR, dir);

	if (!op)
		return -ENOMEM;
	op->mask = QFS_SET_MTIME | QFS_SET_CTIME;
	op->attr.mtime = *now;
	op->attr.ctime = *now;
	if (nlink) {
		op = qfs_fs_add_op(t, QFS_OP_NLINK, dir);
		if (!op)
			return -ENOMEM;
		op->delta = nlink;
	}
	return 0;
}

int qfs_fs_run_txn(struct qfs_fs *fs, qfs_table_t table, struct qfs_router_itxn *t)
{
	int res = 0;
	int rc = qfs_fs_item_txn(fs, table, t, &res);

	/* after it ran (or failed: a stale page is only read again) */
	for (unsigned i = 0; i < txn_ndirs; i++)
		qfs_fs_dir_changed(fs, i < TXN_DIRS ? txn_dirs[i] : 0);
	txn_ndirs = 0;
	return rc ? rc : res;
}

/* ---- lookup / forget / getattr ---- */

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct qfs_fs *fs = qfs_fs_of(req);
	uint64_t t0 = qfs_clock_mono_ns();
	struct fuse_entry_param e;
	struct qfs_attr a;
	struct qfs_dentry d;
	qfs_table_t table;
	int rc;

	if ((rc = check_name(name)))
		return qfs_fs_fail(req, FOP_LOOKUP, t0, rc, "parent=%lu name_len=%zu", parent, strlen(name));
	if (qfs_fs_is_ctl(parent) || (parent == FUSE_ROOT_ID && strcmp(name, ".quorumfs") == 0)) {
		memset(&e, 0, sizeof(e));
		rc = qfs_fs_ctl_lookup(fs, parent, name, &e.attr);
		if (rc)
			return qfs_fs_fail(req, FOP_LOOKUP, t0, rc, "control tree name=%s", QFS_ESC_NAME(name));
		e.ino = e.attr.st_ino;
		e.attr_timeout = e.entry_timeout = 0;
		qfs_fs_done(req, FOP_LOOKUP, t0, 0);
		fuse_reply_entry(req, &e);
		return;
	}
	if (parent == FUSE_ROOT_ID) {
		struct qfs_table tb;
		rc = qfs_router_table_lookup(fs->r, name, &tb);
		if (rc == 0) {
			table = tb.id;
			d.ino = tb.ino;
			d.type = S_IFDIR;
		} else if (rc != -ENOENT && fs->avail) {
			/* a path walk into a known table failed at the table's own
			 * name (no quorum for the table list after the kernel
			 * dropped the entry): the client sees that table fail */
			qfs_fs_tl_table = qfs_avail_table_id(qfs_fs_avail_of(fs), name);
		}
	} else {
		struct qfs_fs_inode *p = qfs_fs_get_inode(fs, parent);
		if (!p)
			return qfs_fs_fail(req, FOP_LOOKUP, t0, -ESTALE, "unknown parent=%lu", parent);
		table = p->table;
		qfs_fs_iput(fs, p);
		/* a file created and not yet stored (pend.c) comes first */
		struct qfs_fs_inode *x = qfs_fs_pend_find(fs, parent, name);
		if (x) {
			d.ino = x->ino;
			d.type = S_IFREG;
			qfs_fs_iput(fs, x);
			rc = 0;
		} else {
			uint64_t gen;
			uint32_t busy;
			neg_snap(fs, &gen, &busy);
			rc = read_dentry(fs, table, parent, name, &d, NULL, NULL);
			if (rc == -ENOENT && neg_usable(fs))
				neg_put(fs, parent, name, gen, busy);
		}
	}
	if (rc == -ENOENT) {
		/* negative entry: the kernel may cache it; every create goes through it */
		memset(&e, 0, sizeof(e));
		e.entry_timeout = fs->timeout;
		qfs_fs_tl_errno = ENOENT; /* what the user sees (availability counts it) */
		qfs_fs_done(req, FOP_LOOKUP, t0, 0);
		fuse_reply_entry(req, &e);
		return;
	}
	if (rc)
		return qfs_fs_fail(req, FOP_LOOKUP, t0, rc, "parent=%lu name=%s", parent, QFS_ESC_NAME(name));
	struct qfs_fs_inode *in = qfs_fs_iget(fs, d.ino, table, d.type, 0);
	if (!in)
		return qfs_fs_fail(req, FOP_LOOKUP, t0, -ENOMEM, "inode table");
	rc = qfs_fs_inode_attr_x(fs, in, &a); /* and what it has of xattrs (xattr.c) */
	if (rc) {
		qfs_fs_iput(fs, in);
		return qfs_fs_fail(req, FOP_LOOKUP, t0, rc == -ENOENT ? -EIO : rc,
			    "entry names a missing inode parent=%lu name=%s ino=%llu", parent, QFS_ESC_NAME(name),
			    (unsigned long long)d.ino);
	}
	pthread_mutex_lock(&fs->itab_mu);
	in->nlookup++;
	if (S_ISDIR(a.mode))
		in->parent = parent;
	pthread_mutex_unlock(&fs->itab_mu);
	qfs_fs_iput(fs, in);
	if (parent != FUSE_ROOT_ID)
		qfs_fs_hint_put(fs, parent, name, d.ino, d.type);
	qfs_fs_fill_entry(fs, &e, &a);
	qfs_fs_done(req, FOP_LOOKUP, t0, 0);
	fuse_reply_entry(req, &e);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	if (!qfs_fs_is_ctl(ino))
		qfs_fs_forget(qfs_fs_of(req), ino, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		if (!qfs_fs_is_ctl(forgets[i].ino))
			qfs_fs_forget(qfs_fs_of(req), forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct qfs_fs *fs = qfs_fs_of(req);
	uint64_t t0 = qfs_clock_mono_ns();
	struct stat st;
	struct qfs_attr a;
	int rc;

	if (qfs_fs_is_ctl(ino)) {
		rc = qfs_fs_ctl_getattr(fs, ino, &st);
		if (rc)
			return qfs_fs_fail(req, FOP_GETATTR, t0, rc, "control ino=%lu", ino);
		qfs_fs_done(req, FOP_GETATTR, t0, 0);
		fuse_reply_attr(req, &st, 0);
		return;
	}
	struct qfs_fs_inode *in = qfs_fs_get_inode(fs, ino);
	if (!in)
		return qfs_fs_fail(req, FOP_GETATTR, t0, -ESTALE, "unknown ino=%lu", ino);
	if (ino == FUSE_ROOT_ID) {
		/* The root has a fallback (below): a path walk without a
		 * quorum must not spend a whole quorum_timeout here first. */
		pthread_mutex_lock(&fs->root_mu);
		if (fs->root_attr_ok)
			qfs_clock_call_limit(QFS_FS_ROOT_WAIT_MS);
		pthread_mutex_unlock(&fs->root_mu);
	}
	rc = qfs_fs_inode_attr(fs, in, &a);
	qfs_fs_iput(fs, in);
	if (ino == FUSE_ROOT_ID) {
		pthread_mutex_lock(&fs->root_mu);
		if (rc == 0) {
			fs->root_attr = a;
			fs->root_attr_ok = 1;
		} else if (rc == -ETIMEDOUT && fs->root_attr_ok) {
			/* No quorum: answer from the last copy, uncached, so that
			 * the control tree stays reachable. */
			a = fs->root_attr;
			pthread_mutex_unlock(&fs->root_mu);
			qfs_fs_attr_to_stat(&a, &st);
			qfs_fs_done(req, FOP_GETATTR, t0, 0);
			fuse_reply_attr(req, &st, 0);
			return;
		}
		pthread_mutex_unlock(&fs->root_mu);
	}
	if (rc)
		return qfs_fs_fail(req, FOP_GETATTR, t0, rc, "ino=%lu", ino);
	qfs_fs_attr_to_stat(&a, &st);
	qfs_fs_done(req, FOP_GETATTR, t0, 0);
	fuse_reply_attr(req, &st, fs->timeout);
}

/* ---- setattr ---- */

static void set_ts(struct qfs_ts *dst, const struct timespec *src)
{
	dst->sec = src->tv_sec;
	dst->nsec = (uint32_t)src->tv_nsec;
}

/* Linux drops S_ISGID of a regular file without group execute when a caller
 * that is neither root nor a member of the file's group writes or truncates
 * it (what ext4 does; the kernel's FUSE module asks the filesystem only for
 * the group-execute case and the setuid bit).  in->mu held, in loaded; the
 * mode is written back with the data.  Unknown groups: the bit stays.
 * Returns 1 if the bit was dropped (the kernel's cached mode is stale). */
static int drop_sgid_locked(fuse_req_t req, struct qfs_fs_inode *in)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	gid_t groups[64], *g = groups;
	int cap = 64, n, dropped = 0;

	if (!S_ISREG(in->attr.mode) || (in->attr.mode & (S_ISGID | S_IXGRP)) != S_ISGID || ctx->uid == 0 ||
	    ctx->gid == in->attr.gid)
		return 0;
	n = fuse_req_getgroups(req, cap, groups);
	if (n > cap) {
		cap = n;
		if (!(g = malloc((size_t)cap * sizeof(*g))))
			return 0;
		n = fuse_req_getgroups(req, cap, g);
	}
	if (n < 0)
		goto out;
	if (n > cap)
		n = cap;
	for (int i = 0; i < n; i++)
		if (g[i] == in->attr.gid)
			goto out;
	in->attr.mode &= ~(mode_t)S_ISGID;
	in->attr_dirty |= QFS_SET_MODE;
	dropped = 1;
out:
	if (g != groups)
		free(g);
	return dropped;
}

/* open(O_TRUNC) of a setuid or setgid file: the kernel's do_truncate asks
 * for the bits to go (ATTR_KILL_SUID/SGID, for a caller without
 * CAP_FSETID), but with FUSE_CAP_ATOMIC_O_TRUNC its FUSE module drops the
 * whole attribute change (the truncate travels in the OPEN, fuse_do_setattr
 * returns early), so the filesystem does what ext4 does: for a caller other
 * than root, S_ISUID goes, S_ISGID with group execute goes, and S_ISGID
 * without it as drop_sgid_locked decides.  Root keeps them (as with
 * drop_sgid_locked, uid 0 stands for CAP_FSETID: a non-root caller that has
 * it loses the bits here, root without it keeps them).  in->mu held, in
 * loaded; the mode is written back with the truncate.  (security.capability
 * is the kernel's: its setattr_prepare removes it before the early return.) */
static void trunc_drop_ids_locked(fuse_req_t req, struct qfs_fs_inode *in)
{
	mode_t kill = 0;

	if (!S_ISREG(in->attr.mode) || fuse_req_ctx(req)->uid == 0)
		return;
	if (in->attr.mode & S_ISUID)
		kill |= S_ISUID;
	if ((in->attr.mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP))
		kill |= S_ISGID;
	if (kill) {
		in->attr.mode &= ~kill;
		in->attr_dirty |= QFS_SET_MODE;
	}
	drop_sgid_locked(req, in);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi)
{
	struct qfs_fs *fs = qfs_fs_of(req);
	uint64_t t0 = qfs_clock_mono_ns();
	struct qfs_ts now;
	struct qfs_attr a;
	struct stat st;
	int rc;

	if (qfs_fs_is_ctl(ino)) {
		/* `echo stop 2 > nodes` truncates first: accept size 0 there. */
		if (qfs_fs_ctl_writable(ino) && to_set == FUSE_SET_ATTR_SIZE && attr->st_size == 0 &&
		    fuse_req_ctx(req)->uid == 0) {
			qfs_fs_ctl_getattr(fs, ino, &st);
			qfs_fs_done(req, FOP_SETATTR, t0, 0);
			fuse_reply_attr(req, &st, 0);
			return;
		}
		return qfs_fs_fail(req, FOP_SETATTR, t0, qfs_fs_ctl_writable(ino) ? -EACCES : -EROFS,
				   "control tree is read-only");
	}
	struct qfs_fs_inode *in = qfs_fs_get_inode(fs, ino);
	if (!in)
		return qfs_fs_fail(req, FOP_SETATTR, t0, -ESTALE, "unknown ino=%lu", ino);
	/* the creates pending in a directory touch its times when stored:
	 * store them first, so that times set now (cp -a, rsync) stay */
	if (S_ISDIR(in->type) && (rc = qfs_fs_pend_flush_creates(fs, ino))) {
		qfs_fs_iput(fs, in);
		return qfs_fs_fail(req, FOP_SETATTR, t0, rc, "pending creates of ino=%lu", ino);
	}
	qfs_clock_now(&now);
	qfs_fs_ilock(in);
	/* A file with pending write-back (written or created through a handle
	 * still open, not yet flushed) takes the change into that write-back:
	 * it is stored with the data, in one txn, at close or fsync (doc/fs.md
	 * "One round per file"); so does ftruncate (fi set), which that
	 * handle's close writes back (O_TRUNC: op_open).  Any other change is
	 * stored before we reply. */
	int defer = (in->loaded || fi) && in->nopen > 0 && in->wb_err == 0 && S_ISREG(in->type);
	/* A directory's owner, mode and times (cp -a sets them after its
	 * contents, one call each) wait in memory for one write-back, at
	 * most QFS_FS_DATTR_MS later (pend.c "Directory attributes"). */
	int ddefer = S_ISDIR(in->type) && ino != FUSE_ROOT_ID && in->wb_err == 0 && !(to_set & FUSE_SET_ATTR_SIZE);
	rc = qfs_fs_load(fs, in);
	if (rc)
		goto out;
	if (to_set & FUSE_SET_ATTR_SIZE) {
		if (S_ISDIR(in->attr.mode))
			rc = -EISDIR;
		else if (!S_ISREG(in->attr.mode))
			rc = -EINVAL;
		else if (attr->st_size < 0)
			rc = -EINVAL;
		else
			rc = qfs_fs_data_truncate(fs, in, (uint64_t)attr->st_size);
		if (rc)
			goto out_drop;
	}
	if (to_set & FUSE_SET_ATTR_MODE) {
		if ((rc = qfs_fs_acl_chmod_locked(fs, in, attr->st_mode & 07777))) /* ACL mask follows */
			goto out_drop;
		in->attr.mode = (in->attr.mode & S_IFMT) | (attr->st_mode & 07777);
		in->attr_dirty |= QFS_SET_MODE;
	}
	if (to_set & FUSE_SET_ATTR_UID) {
		in->attr.uid = attr->st_uid;
		in->attr_dirty |= QFS_SET_UID;
	}
	if (to_set & FUSE_SET_ATTR_GID) {
		in->attr.gid = attr->st_gid;
		in->attr_dirty |= QFS_SET_GID;
	}
	if (to_set & FUSE_SET_ATTR_SIZE)
		drop_sgid_locked(req, in);
	if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
		in->attr.atime = now;
		in->attr_dirty |= QFS_SET_ATIME;
	} else if (to_set & FUSE_SET_ATTR_ATIME) {
		set_ts(&in->attr.atime, &attr->st_atim);
		in->attr_dirty |= QFS_SET_ATIME;
	}
	if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
		in->attr.mtime = now;
		in->attr_dirty |= QFS_SET_MTIME;
	} else if (to_set & FUSE_SET_ATTR_MTIME) {
		set_ts(&in->attr.mtime, &attr->st_mtim);
		in->attr_dirty |= QFS_SET_MTIME;
	}
	if (to_set & FUSE_SET_ATTR_CTIME)
		set_ts(&in->attr.ctime, &attr->st_ctim);
	else
		in->attr.ctime = now;
	in->attr_dirty |= QFS_SET_CTIME;
	a = in->attr;
	a.blocks = qfs_fs_blocks(in);
	if (defer)
		goto out;
	if (ddefer) {
		qfs_fs_dattr_queue(fs, in);
		goto out;
	}
	rc = qfs_fs_flush_locked(fs, in);
	if (rc && in->nopen == 0)
		qfs_fs_discard(fs, in); /* no handle will retry it: the change did not happen */
	goto out;
out_drop:
	/* nothing was changed in memory except what truncate did: write it back or drop it */
	if (!in->chunks && in->attr_dirty == 0)
		in->loaded = false;
out:
	pthread_mutex_unlock(&in->mu);
	qfs_fs_iput(fs, in);
	if (rc)
		return qfs_fs_fail(req, FOP_SETATTR, t0, rc, "ino=%lu to_set=0x%x", ino, to_set);
	qfs_fs_attr_to_stat(&a, &st);
	qfs_fs_done(req, FOP_SETATTR, t0, 0);
	fuse_reply_attr(req, &st, fs->timeout);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct qfs_fs *fs = qfs_fs_of(req);
	uint64_t t0 = qfs_clock_mono_ns();
	struct qfs_inode inode;
	int rc;

	if (qfs_fs_is_ctl(ino))
		return qfs_fs_fail(req, FOP_READLINK, t0, -EINVAL, "control tree has no symlinks");
	struct qfs_fs_inode *in = qfs_fs_get_inode(fs, ino);
	if (!in)
		return qfs_fs_fail(req, FOP_READLINK, t0, -ESTALE, "unknown ino=%lu", ino);
	qfs_inode_init(&inode);
	rc = qfs_router_get_inode(fs->r, in->table, in->ino, &inode);
	qfs_fs_iput(fs, in);
	if (rc == 0 && !S_ISLNK(inode.a.mode))
		rc = -EINVAL;
	if (rc) {
		qfs_inode_close(&inode);
		return qfs_fs_fail(req, FOP_READLINK, t0, rc, "ino=%lu", ino);
	}
	char *target = malloc(inode.data_len + 1);
	if (!target) {
		qfs_inode_close(&inode);
		return qfs_fs_fail(req, FOP_READLINK, t0, -ENOMEM, "ino=%lu", ino);
	}
	if (inode.data_len)
		memcpy(target, inode.data, inode.data_len);
	target[inode.data_len] = '\0';
	qfs_inode_close(&inode);
	qfs_fs_done(req, FOP_READLINK, t0, 0);
	fuse_reply_readlink(req, target);
	free(target);
}

/* ---- creating entries ---- */

struct newnode {
	mode_t mode;
	dev_t rdev;
	const char *target; /* symlink */
};

/* The mode of a new entry of type|mode in a directory whose inode is pin,
 * into out->a.mode, with the ACLs it inherits added to out's xattrs
 * (posix_acl_create): a default ACL of the parent replaces the umask,
 * limits the mode and becomes the entry's access ACL (and a directory's
 * default ACL); without one the umask applies.  Symlinks: 0777, no ACL.
 * 0 or -ENOMEM. */
static int inherit_acl(const struct qfs_inode *pin, mode_t mode, mode_t umask, struct qfs_inode *out)
{
	const struct qfs_xattr *def = qfs_inode_xattr_find(pin, QFS_ACL_DEFAULT);
	uint32_t m = (uint32_t)mode;
	int rc = 0;

	if (S_ISLNK(mode)) {
		out->a.mode = m;
		return 0;
	}
	if (!def || qfs_fs_acl_check(def->value, def->len)) {
		out->a.mode = m & ~((uint32_t)umask & 0777u);
		return 0;
	}
	uint8_t *acc = malloc(def->len);
	if (!acc)
		return -ENOMEM;
	memcpy(acc, def->value, def->len);
	if (qfs_fs_acl_create(acc, def->len, &m))
		rc = qfs_inode_xattr_set(out, QFS_ACL_ACCESS, acc, def->len, 0);
	if (rc == 0 && S_ISDIR(mode))
		rc = qfs_inode_xattr_set(out, QFS_ACL_DEFAULT, def->value, def->len, 0);
	free(acc);
	out->a.mode = m;
	return rc;
}

/* The inode *in (initialised by the caller, closed by it also on error) and
 * dentry *d of a new entry nn in directory parent of table: a new inode
 * number, owner from ctx, mode and ACLs as inherited (inherit_acl), set-gid
 * directories, times now.  Reads the parent's inode (or its cached copy:
 * parent_inode).  0, -ENOTDIR, -ENAMETOOLONG (symlink target), -ENOMEM or
 * the router's error. */
static int build_node(struct qfs_fs *fs, const struct fuse_ctx *ctx, fuse_ino_t parent, qfs_table_t table,
		      const struct newnode *nn, struct qfs_inode *in, struct qfs_dentry *d)
{
	struct qfs_inode pin;
	struct qfs_attr pa;
	qfs_ino_t ino = 0;
	int rc;

	qfs_inode_init(&pin);
	rc = parent_inode(fs, table, parent, &pin);
	pa = pin.a;
	if (rc == 0 && !S_ISDIR(pa.mode))
		rc = -ENOTDIR;
	if (rc == 0 && nn->target && strlen(nn->target) > QFS_SYMLINK_MAX)
		rc = -ENAMETOOLONG;
	if (rc == 0)
		rc = qfs_router_alloc_ino(fs->r, &ino);
	if (rc == 0)
		rc = inherit_acl(&pin, nn->mode, ctx->umask, in);
	qfs_inode_close(&pin);
	if (rc)
		return rc;
	in->a.ino = ino;
	in->a.uid = ctx->uid;
	in->a.gid = ctx->gid;
	if (pa.mode & S_ISGID) {
		in->a.gid = pa.gid;
		if (S_ISDIR(nn->mode))
			in->a.mode |= S_ISGID;
	}
	in->a.nlink = S_ISDIR(nn->mode) ? 2 : 1;
	in->a.rdev = nn->rdev;
	in->a.flags = S_ISREG(nn->mode) ? QFS_ATTR_INLINE : 0;
	qfs_clock_now(&in->a.mtime);
	in->a.atime = in->a.ctime = in->a.btime = in->a.mtime;
	*d = (struct qfs_dentry){ .ino = ino, .type = nn->mode & S_IFMT };
	return 0;
}

/* Create name in parent; on success *out holds the new inode's attributes and
 * the kernel reference is taken.  Errors as the syscalls expect. */
static int make_node(struct qfs_fs *fs, fuse_req_t req, fuse_ino_t parent, const char *name,
		     const struct newnode *nn, struct qfs_attr *out)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct qfs_router_key dkey, ikey, pkey;
	struct qfs_inode in;
	struct qfs_attr pa;
	struct qfs_dentry d;
	struct qfs_buf ib, db;
	struct qfs_router_itxn t;
	struct qfs_op *op;
	qfs_ino_t ino;
	int rc;

	if ((rc = check_name(name)))
		return rc;
	if (qfs_fs_is_ctl(parent) || (parent == FUSE_ROOT_ID && strcmp(name, ".quorumfs") == 0))
		return parent == FUSE_ROOT_ID && S_ISDIR(nn->mode) ? -EEXIST : -EROFS;
	if (parent == FUSE_ROOT_ID) {
		struct qfs_table tb;
		if (!S_ISDIR(nn->mode))
			return -EPERM; /* only tables (directories) live at the root */
		memset(&pa, 0, sizeof(pa));
		pa.mode = S_IFDIR | (nn->mode & 07777 & ~(ctx->umask & 0777));
		pa.uid = ctx->uid;
		pa.gid = ctx->gid;
		qfs_clock_now(&pa.mtime);
		pa.atime = pa.ctime = pa.btime = pa.mtime;
		rc = qfs_router_table_create(fs->r, name, &pa, &tb);
		qfs_fs_dir_changed(fs, FUSE_ROOT_ID);
		if (rc)
			return rc;
		if (fs->avail) /* its first requests show under its name */
			qfs_avail_name_add(qfs_fs_avail_of(fs), tb.id, name);
		struct qfs_fs_inode *tin = qfs_fs_iget(fs, tb.ino, tb.id, S_IFDIR, 1);
		if (!tin)
			return -ENOMEM;
		tin->parent = FUSE_ROOT_ID;
		qfs_fs_iput(fs, tin);
		pa.ino = tb.ino;
		pa.nlink = 2;
		*out = pa;
		return 0;
	}
	struct qfs_fs_inode *p = qfs_fs_get_inode(fs, parent);
	if (!p)
		return -ESTALE;
	qfs_table_t table = p->table;
	qfs_fs_iput(fs, p);
	struct qfs_fs_inode *pend = qfs_fs_pend_find(fs, parent, name);
	if (pend) {
		qfs_fs_iput(fs, pend);
		return -EEXIST;
	}
	if ((rc = qfs_fs_pend_flush_dir(fs, parent)))
		return rc;
	qfs_inode_init(&in);
	rc = build_node(fs, ctx, parent, table, nn, &in, &d);
	if (rc) {
		qfs_inode_close(&in);
		return rc;
	}
	ino = in.a.ino;
	if (nn->target) {
		in.data = (uint8_t *)nn->target;  /* borrowed for encoding only */
		in.data_len = strlen(nn->target);
		in.a.size = in.data_len;
	}
	qfs_buf_init(&ib);
	qfs_buf_init(&db);
	qfs_inode_encode(&in, &ib);
	qfs_dentry_encode(&d, &db);
	in.data = NULL;
	in.data_len = 0;
	qfs_router_itxn_init(&t);
	rc = ib.err ? ib.err : db.err;
	if (rc)
		goto out;
	dkey = DKEY(parent, name);
	ikey = IKEY(ino);
	pkey = IKEY(parent);
	rc = -ENOMEM;
	if (!(op = qfs_fs_add_op(&t, QFS_OP_EXPECT_PRESENT, pkey)))
		goto out;
	op->err = -ENOENT; /* the parent was removed meanwhile */
	if (!(op = qfs_fs_add_op(&t, QFS_OP_EXPECT_ABSENT, dkey)))
		goto out;
	op->err = -EEXIST;
	if (!(op = qfs_fs_add_op(&t, QFS_OP_PUT, dkey)))
		goto out;
	op->val = db.data;
	op->val_len = (uint32_t)db.len;
	if (!(op = qfs_fs_add_op(&t, QFS_OP_PUT, ikey)))
		goto out;
	op->val = ib.data;
	op->val_len = (uint32_t)ib.len;
	if ((rc = touch_dir(&t, pkey, &in.a.mtime, S_ISDIR(nn->mode) ? 1 : 0)))
		goto out;
	rc = qfs_fs_run_txn(fs, table, &t);
	if (rc)
		goto out;
	struct qfs_fs_inode *nin = qfs_fs_iget(fs, ino, table, d.type, 1);
	if (!nin) {
		rc = -ENOMEM;
		goto out;
	}
	if (S_ISDIR(nn->mode))
		nin->parent = parent;
	qfs_fs_iput(fs, nin);
	if (parent != FUSE_ROOT_ID)
		qfs_fs_hint_put(fs, parent, name, ino, d.type);
	*out = in.a;
out:
	qfs_router_itxn_close(&t);
	qfs_buf_close(&ib);
	qfs_buf_close(&db);
	qfs_inode_close(&in);
	return rc;
}

static void reply_made(fuse_req_t req, enum qfs_fs_op op, uint64_t t0, int rc, const struct qfs_attr *a,
		       fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;

	if (rc) {
		if (rc == -EPERM)
			return qfs_fs_fail(req, op, t0, rc, "only tables (directories) can be created at the root name=%s", QFS_ESC_NAME(name));
		return qfs_fs_fail(req, op, t0, rc, "parent=%lu name=%.64s", parent, QFS_ESC_NAME(name));
	}
	qfs_fs_fill_entry(qfs_fs_of(req), &e, a);
	qfs_fs_done(req, op, t0, 0);
	fuse_reply_entry(req, &e);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	uint64_t t0 = qfs_clock_mono_ns();
	struct newnode nn = { mode, rdev, NULL };
	struct qfs_attr a;
	int rc;

	if (!S_ISREG(mode) && !S_ISFIFO(mode) && !S_ISCHR(mode) && !S_ISBLK(mode) && !S_ISSOCK(mode))
		return qfs_fs_fail(req, FOP_MKNOD, t0, -EINVAL, "mknod of type 0%o", mode & S_IFMT);
	rc = make_node(qfs_fs_of(req), req, parent, name, &nn, &a);
	reply_made(req, FOP_MKNOD, t0, rc, &a, parent, name);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	uint64_t t0 = qfs_clock_mono_ns();
	struct newnode nn = { S_IFDIR | (mode & 07777), 0, NULL };
	struct qfs_attr a;
	int rc = make_node(qfs_fs_of(req), req, parent, name, &nn, &a);

	reply_made(req, FOP_MKDIR, t0, rc, &a, parent, name);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	uint64_t t0 = qfs_clock_mono_ns();
	struct newnode nn = { S_IFLNK | 0777, 0, link };
	struct qfs_attr a;
	int rc = make_node(qfs_fs_of(req), req, parent, name, &nn, &a);

	reply_made(req, FOP_SYMLINK, t0, rc, &a, parent, name);
}

/* link(2): a new name newparent/newname for the file ino, in the same
 * table.  One txn: the parent still there, the name absent (EEXIST), the
 * inode's nlink + 1 (LINK_ADD: EMLINK past QFS_FS_LINK_MAX, ENOENT if its
 * last name went meanwhile), its ctime, the dentry, the parent's times.
 * Replies the entry with fresh attributes (the new nlink). */
static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct qfs_fs *fs = qfs_fs_of(req);
	uint64_t t0 = qfs_clock_mono_ns();
	struct qfs_router_key dkey, pkey, ikey;
	struct fuse_entry_param e;
	struct qfs_dentry d;
	struct qfs_attr a;
	struct qfs_buf db;
	struct qfs_router_itxn t;
	struct qfs_op *op;
	struct qfs_ts now;
	int rc;

	if ((rc = check_name(newname)))
		return qfs_fs_fail(req, FOP_LINK, t0, rc, "name_len=%zu", strlen(newname));
	if (qfs_fs_is_ctl(newparent) || (newparent == FUSE_ROOT_ID && strcmp(newname, ".quorumfs") == 0))
		return qfs_fs_fail(req, FOP_LINK, t0, -EROFS, "control tree is read-only");
	if (qfs_fs_is_ctl(ino))
		return qfs_fs_fail(req, FOP_LINK, t0, -EXDEV, "control files cannot be linked elsewhere ino=%lu", ino);
	if (ino == FUSE_ROOT_ID)
		return qfs_fs_fail(req, FOP_LINK, t0, -EPERM, "link of the root");
	if (newparent == FUSE_ROOT_ID)
		return qfs_fs_fail(req, FOP_LINK, t0, -EPERM, "only tables (directories) live at the root name=%.64s",
				   newname);
	struct qfs_fs_inode *in = qfs_fs_get_inode(fs, ino), *p = qfs_fs_get_inode(fs, newparent);
	if (!in || !p) {
		qfs_fs_iput(fs, in);
		qfs_fs_iput(fs, p);
		return qfs_fs_fail(req, FOP_LINK, t0, -ESTALE, "unknown ino=%lu or parent=%lu", ino, newparent);
	}
	qfs_table_t table = p->table;
	int pdir = S_ISDIR(p->type);
	qfs_fs_iput(fs, p);
	if (S_ISDIR(in->type)) {
		qfs_fs_iput(fs, in);
		return qfs_fs_fail(req, FOP_LINK, t0, -EPERM, "hard link to a directory ino=%lu", ino);
	}
	if (!pdir) {
		qfs_fs_iput(fs, in);
		return qfs_fs_fail(req, FOP_LINK, t0, -ENOTDIR, "parent=%lu is not a directory", newparent);
	}
	if (in->table != table) {
		qfs_fs_iput(fs, in);
		return qfs_fs_fail(req, FOP_LINK, t0, -EXDEV, "hard link between tables ino=%lu name=%.64s", ino,
				   newname);
	}
	/* a pending create has no inode item yet, and the new name's directory
	 * is read from the store: store both first (doc/fs.md "One round per file") */
	if ((rc = qfs_fs_pend_flush_ino(fs, in)) || (rc = qfs_fs_pend_flush_dir(fs, newparent))) {
		qfs_fs_iput(fs, in);
		return qfs_fs_fail(req, FOP_LINK, t0, rc, "pending creates ino=%lu parent=%lu", ino, newparent);
	}
	d = (struct qfs_dentry){ .ino = in->ino, .type = in->type };
	qfs_buf_init(&db);
	qfs_dentry_encode(&d, &db);
	qfs_router_itxn_init(&t);
	qfs_clock_now(&now);
	dkey = DKEY(newparent, newname);
	pkey = IKEY(newparent);
	ikey = IKEY(in->ino);
	qfs_fs_ilock(in);
	rc = db.err ? db.err : -ENOMEM;
	if (db.err)
		goto out;
	if (!(op = qfs_fs_add_op(&t, QFS_OP_EXPECT_PRESENT, pkey)))
		goto out;
	op->err = -ENOENT; /* the directory was removed meanwhile */
	if (!(op = qfs_fs_add_op(&t, QFS_OP_EXPECT_ABSENT, dkey)))
		goto out;
	op->err = -EEXIST;
	if (!(op = qfs_fs_add_op(&t, QFS_OP_LINK_ADD, ikey)))
		goto out;
	op->limit = QFS_FS_LINK_MAX;
	if (!(op = qfs_fs_add_op(&t, QFS_OP_SETATTR, ikey)))
		goto out;
	op->mask = QFS_SET_CTIME;
	op->attr.ctime = now;
	if (!(op = qfs_fs_add_op(&t, QFS_OP_PUT, dkey)))
		goto out;
	op->val = db.data;
	op->val_len = (uint32_t)db.len;
	if ((rc = touch_dir(&t, pkey, &now, 0)))
		goto out;
	rc = qfs_fs_run_txn(fs, table, &t);
	if (rc)
		goto out;
	/* the kernel must see the new nlink: from the store, the rest from
	 * memory when the file has buffered state */
	rc = qfs_router_get_attr(fs->r, table, in->ino, &a);
	if (rc == 0 && in->loaded) {
		in->attr.nlink = a.nlink;
		in->attr.ctime = now;
		a = in->attr;
	}
out:
	pthread_mutex_unlock(&in->mu);
	qfs_router_itxn_close(&t);
	qfs_buf_close(&db);
	if (rc) {
		qfs_fs_iput(fs, in);
		return qfs_fs_fail(req, FOP_LINK, t0, rc, "ino=%lu parent=%lu name=%.64s", ino, newparent, newname);
	}
	pthread_mutex_lock(&fs->itab_mu);
	in->nlookup++; /* the entry we reply is one more kernel reference */
	pthread_mutex_unlock(&fs->itab_mu);
	qfs_fs_iput(fs, in);
	qfs_fs_fill_entry(fs, &e, &a);
	qfs_fs_done(req, FOP_LINK, t0, 0);
	fuse_reply_entry(req, &e);
}

/* ---- removing entries ---- */

/* Add the ops that drop one name of victim (a non-directory): its ctime,
 * then LINK_DROP, which decides at apply time from the stored nlink: other
 * names left, the inode stays; the last name, the inode and its chunks go,
 * or, if the file is open here (vin->nopen), it is kept in the orphan list
 * until its last close.  oval holds the orphan entry's value; vin->mu held. */
static int drop_link(struct qfs_router_itxn *t, struct qfs_fs_inode *vin, qfs_ino_t victim,
		     struct qfs_router_key vkey, struct qfs_buf *oval, const struct qfs_ts *now)
{
	struct qfs_router_key okey;
	char oname[32];
	struct qfs_op *op;
	int orphan = 0;

	if (!(op = qfs_fs_add_op(t, QFS_OP_SETATTR, vkey)))
		return -ENOMEM;
	op->mask = QFS_SET_CTIME;
	op->attr.ctime = *now;
	if (vin && vin->nopen > 0) {
		struct qfs_dentry od = { .ino = victim, .type = S_IFREG };
		snprintf(oname, sizeof(oname), "%016llx", (unsigned long long)victim);
		okey = DKEY(QFS_FS_ORPHAN_DIR, oname);
		orphan = 1;
		qfs_dentry_encode(&od, oval);
		if (oval->err)
			return oval->err;
	}
	if (!(op = qfs_router_itxn_add(t, QFS_OP_LINK_DROP, &vkey, orphan ? &okey : NULL)))
		return -ENOMEM;
	if (orphan) {
		op->val = oval->data;
		op->val_len = (uint32_t)oval->len;
	}
	return 0;
}

/* After a txn with drop_link committed: bring vin (locked, may be NULL) in
 * step with the store.  A file with buffered state gets the stored nlink and
 * the new ctime; an open file whose last name went becomes unlinked (its
 * last close destroys it).  If the store cannot be read, an open file is
 * not marked: its orphan entry is then removed by the next mount's sweep,
 * whereas destroying an inode that still has a name would lose it. */
static void after_drop(struct qfs_fs *fs, struct qfs_fs_inode *vin, const struct qfs_ts *now)
{
	struct qfs_attr a;
	int rc;

	if (!vin || (!vin->loaded && vin->nopen == 0))
		return;
	rc = qfs_router_get_attr(fs->r, vin->table, vin->ino, &a);
	if (rc == -ENOENT) { /* destroyed: it was not open */
		a.nlink = 0;
	} else if (rc) {
		QFS_LOG(QFS_LOG_WARN, "fs link count not re-read after unlink ino=%llu err=\"%s\"",
			(unsigned long long)vin->ino, qfs_strerror(rc));
		return;
	}
	if (vin->loaded) {
		vin->attr.nlink = a.nlink;
		vin->attr.ctime = *now;
	}
	if (rc == 0 && a.nlink == 0 && vin->nopen > 0)
		vin->unlinked = true;
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct qfs_fs *fs = qfs_fs_of(req);
	uint64_t t0 = qfs_clock_mono_ns();
	int rc;

	if ((rc = check_name(name)))
		return qfs_fs_fail(req, FOP_UNLINK, t0, rc, "name_len=%zu", strlen(name));
	if (qfs_fs_is_ctl(parent) || (parent == FUSE_ROOT_ID && strcmp(name, ".quorumfs") == 0))
		return qfs_fs_fail(req, FOP_UNLINK, t0, -EROFS, "control tree is read-only");
	if (parent == FUSE_ROOT_ID)
		return qfs_fs_fail(req, FOP_UNLINK, t0, -EISDIR, "tables are removed with rmdir name=%.64s", name);
	struct qfs_fs_inode *p = qfs_fs_get_inode(fs, parent);
	if (!p)
		return qfs_fs_fail(req, FOP_UNLINK, t0, -ESTALE, "unknown parent=%lu", parent);
	qfs_table_t table = p->table;
	qfs_fs_iput(fs, p);
	/* a full disk must not stop an unlink, which frees space: the
	 * directory's other pending creates may stay pending */
	if ((rc = qfs_fs_pend_flush_spare(fs, parent, name)) || (rc = qfs_fs_dattr_flush(fs, parent)))
		return qfs_fs_fail(req, FOP_UNLINK, t0, rc, "pending creates of parent=%lu", parent);

	for (int attempt = 0; attempt < CONFLICT_RETRIES; attempt++) {
		struct qfs_router_key dkey, pkey, vkey;
		struct qfs_dentry d;
		struct qfs_buf oval;
		struct qfs_router_itxn t;
		struct qfs_op *op;
		struct qfs_ts now;
		void *raw = NULL;
		size_t raw_len;

		/* The first attempt takes the dentry from the name hint (inode.c),
		 * with no store read: the txn's EXPECT_VALUE checks it, and a
		 * stale hint fails with QFS_ECONFLICT (a round of its own); the
		 * retry reads.  Not with cache_timeout=0 (a cluster mount: other
		 * routers change names). */
		memset(&d, 0, sizeof(d));
		if (attempt == 0 && fs->timeout > 0 && qfs_fs_hint_get(fs, parent, name, &d.ino, &d.type) == 0 &&
		    !S_ISDIR(d.type)) {
			rc = hinted_dentry(&d, &raw, &raw_len);
		} else {
			rc = read_dentry(fs, table, parent, name, &d, &raw, &raw_len);
		}
		if (rc)
			break;
		if (S_ISDIR(d.type)) {
			free(raw);
			rc = -EISDIR;
			break;
		}
		/* iget, not ifind: an open of another name of this file (in
		 * another directory, which the kernel does not serialise with
		 * this unlink) must wait on the same mutex, so that "open?"
		 * below and the open agree */
		struct qfs_fs_inode *vin = qfs_fs_iget(fs, d.ino, table, d.type, 0);
		if (!vin) {
			free(raw);
			rc = -ENOMEM;
			break;
		}
		qfs_fs_ilock(vin);
		qfs_clock_now(&now);
		dkey = DKEY(parent, name);
		pkey = IKEY(parent);
		vkey = IKEY(d.ino);
		qfs_router_itxn_init(&t);
		qfs_buf_init(&oval);
		rc = -ENOMEM;
		if ((op = qfs_fs_add_op(&t, QFS_OP_EXPECT_VALUE, dkey))) {
			op->val = raw;
			op->val_len = (uint32_t)raw_len;
			op->err = QFS_ECONFLICT;
			if (qfs_fs_add_op(&t, QFS_OP_DEL, dkey) && touch_dir(&t, pkey, &now, 0) == 0)
				rc = drop_link(&t, vin, d.ino, vkey, &oval, &now);
		}
		if (rc == 0)
			rc = qfs_fs_run_txn(fs, table, &t);
		if (rc == 0)
			after_drop(fs, vin, &now);
		if (vin) {
			pthread_mutex_unlock(&vin->mu);
			qfs_fs_iput(fs, vin);
		}
		qfs_router_itxn_close(&t);
		qfs_buf_close(&oval);
		free(raw);
		if (rc != QFS_ECONFLICT)
			break;
	}
	if (rc)
		return qfs_fs_fail(req, FOP_UNLINK, t0, rc, "parent=%lu name=%.64s", parent, QFS_ESC_NAME(name));
	qfs_fs_hint_del(fs, parent, name);
	qfs_fs_ok(req, FOP_UNLINK, t0);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct qfs_fs *fs = qfs_fs_of(req);
	uint64_t t0 = qfs_clock_mono_ns();
	int rc;

	if ((rc = check_name(name)))
		return qfs_fs_fail(req, FOP_RMDIR, t0, rc, "name_len=%zu", strlen(name));
	if (qfs_fs_is_ctl(parent) || (parent == FUSE_ROOT_ID && strcmp(name, ".quorumfs") == 0))
		return qfs_fs_fail(req, FOP_RMDIR, t0, -EROFS, "control tree is read-only");
	if (parent == FUSE_ROOT_ID) {
		/* EBUSY: a file unlinked in the table is still open.  close()
		 * returns before the kernel sends RELEASE, so a file closed
		 * just before this rmdir may still be on its way out: give it
		 * up to 2 s before answering EBUSY. */
		/* (with -s the RELEASE waits behind this request: no point) */
		struct qfs_table tb;
		bool known = qfs_router_table_lookup(fs->r, name, &tb) == 0;
		if (known && (rc = qfs_fs_pend_flush_dir(fs, tb.ino))) {
			/* a create in it not stored for lack of space is an entry all the same */
			if (qfs_fs_is_nospc(rc) && qfs_fs_pend_in_dir(fs, tb.ino))
				rc = -ENOTEMPTY;
			return qfs_fs_fail(req, FOP_RMDIR, t0, rc, "pending creates of table=%.64s", name);
		}
		for (int i = 0; i < (fs->o->single_thread ? 1 : 100); i++) {
			rc = qfs_router_table_delete(fs->r, name);
			if (rc != -EBUSY)
				break;
			struct timespec ts = { 0, 20 * 1000000L };
			nanosleep(&ts, NULL);
		}
		if (known) /* its root is gone (or may be): not from the cache */
			qfs_fs_dac_drop(fs, tb.ino);
		qfs_fs_dir_changed(fs, FUSE_ROOT_ID);
		if (rc)
			return qfs_fs_fail(req, FOP_RMDIR, t0, rc, "table=%.64s", name);
		return qfs_fs_ok(req, FOP_RMDIR, t0);
	}
	struct qfs_fs_inode *p = qfs_fs_get_inode(fs, parent);
	if (!p)
		return qfs_fs_fail(req, FOP_RMDIR, t0, -ESTALE, "unknown parent=%lu", parent);
	qfs_table_t table = p->table;
	qfs_fs_iput(fs, p);
	/* as unlink: the directory's other pending creates may stay pending */
	if ((rc = qfs_fs_pend_flush_spare(fs, parent, NULL)) || (rc = qfs_fs_dattr_flush(fs, parent)))
		return qfs_fs_fail(req, FOP_RMDIR, t0, rc, "pending creates of parent=%lu", parent);
	for (int attempt = 0; attempt < CONFLICT_RETRIES; attempt++) {
		struct qfs_router_key dkey, pkey, vkey;
		struct qfs_router_range entries;
		struct qfs_dentry d;
		struct qfs_router_itxn t;
		struct qfs_op *op;
		struct qfs_ts now;
		void *raw = NULL;
		size_t raw_len;

		/* as op_unlink: the first attempt takes the dentry from the
		 * name hint when it says "directory" (the txn's EXPECT_VALUE
		 * checks it; a stale one costs a round and the retry reads) */
		int hinted = 0;

		memset(&d, 0, sizeof(d));
		if (attempt == 0 && fs->timeout > 0 && qfs_fs_hint_get(fs, parent, name, &d.ino, &d.type) == 0 &&
		    S_ISDIR(d.type)) {
			rc = hinted_dentry(&d, &raw, &raw_len);
			hinted = 1;
		} else {
			rc = read_dentry(fs, table, parent, name, &d, &raw, &raw_len);
		}
		if (rc)
			break;
		if (!S_ISDIR(d.type)) {
			free(raw);
			rc = -ENOTDIR;
			break;
		}
		if ((rc = qfs_fs_pend_flush_dir(fs, d.ino))) { /* its emptiness is read from the store */
			/* a create in it not stored for lack of space is an entry all the same */
			if (qfs_fs_is_nospc(rc) && qfs_fs_pend_in_dir(fs, d.ino))
				rc = -ENOTEMPTY;
			free(raw);
			if (hinted) /* of the directory the hint named: read the dentry */
				continue;
			break;
		}
		qfs_clock_now(&now);
		dkey = DKEY(parent, name);
		pkey = IKEY(parent);
		vkey = IKEY(d.ino);
		entries = qfs_router_range_dentries(d.ino, NULL, 0);
		qfs_router_itxn_init(&t);
		rc = -ENOMEM;
		if ((op = qfs_fs_add_op(&t, QFS_OP_EXPECT_VALUE, dkey))) {
			op->val = raw;
			op->val_len = (uint32_t)raw_len;
			op->err = QFS_ECONFLICT;
			if ((op = qfs_router_itxn_add_range(&t, QFS_OP_EXPECT_EMPTY, &entries))) {
				op->err = -ENOTEMPTY;
				if (qfs_fs_add_op(&t, QFS_OP_DEL, dkey) && qfs_fs_add_op(&t, QFS_OP_DEL, vkey))
					rc = touch_dir(&t, pkey, &now, -1);
			}
		}
		if (rc == 0)
			rc = qfs_fs_run_txn(fs, table, &t);
		qfs_router_itxn_close(&t);
		free(raw);
		if (rc != QFS_ECONFLICT)
			break;
	}
	if (rc)
		return qfs_fs_fail(req, FOP_RMDIR, t0, rc, "parent=%lu name=%.64s", parent, QFS_ESC_NAME(name));
	qfs_fs_hint_del(fs, parent, name);
	qfs_fs_ok(req, FOP_RMDIR, t0);
}

/* ---- rename ---- */

static int rename_once(struct qfs_fs *fs, qfs_table_t table, fuse_ino_t p1, const char *n1, fuse_ino_t p2,
		       const char *n2, unsigned flags, qfs_ino_t *moved, int *moved_dir, struct qfs_ts *moved_ctime)
{
	struct qfs_router_key skey, dkey, p1key, p2key, xkey, ykey;
	struct qfs_dentry x, y;
	void *xraw = NULL, *yraw = NULL;
	size_t xraw_len, yraw_len = 0;
	struct qfs_fs_inode *yin = NULL;
	struct qfs_buf oval;
	struct qfs_router_itxn t;
	struct qfs_op *op;
	struct qfs_ts now;
	int rc, have_y;

	qfs_router_itxn_init(&t);
	qfs_buf_init(&oval);
	rc = read_dentry(fs, table, p1, n1, &x, &xraw, &xraw_len);
	if (rc)
		goto out;
	rc = read_dentry(fs, table, p2, n2, &y, &yraw, &yraw_len);
	if (rc && rc != -ENOENT)
		goto out;
	have_y = rc == 0;
	rc = 0;
	if (have_y) {
		if (flags & RENAME_NOREPLACE) {
			rc = -EEXIST;
			goto out;
		}
		if (y.ino == x.ino)
			goto out; /* same inode: nothing to do */
		if (S_ISDIR(x.type) && !S_ISDIR(y.type)) {
			rc = -ENOTDIR;
			goto out;
		}
		if (!S_ISDIR(x.type) && S_ISDIR(y.type)) {
			rc = -EISDIR;
			goto out;
		}
		/* its emptiness is read from the store: a file created in it
		 * and still open (pend.c) must be there first */
		if (S_ISDIR(y.type) && (rc = qfs_fs_pend_flush_dir(fs, y.ino)))
			goto out;
		if (!S_ISDIR(y.type)) {
			yin = qfs_fs_iget(fs, y.ino, table, y.type, 0); /* as in op_unlink */
			if (!yin) {
				rc = -ENOMEM;
				goto out;
			}
			qfs_fs_ilock(yin);
		}
	}
	qfs_clock_now(&now);
	skey = DKEY(p1, n1);
	dkey = DKEY(p2, n2);
	p1key = IKEY(p1);
	p2key = IKEY(p2);
	xkey = IKEY(x.ino);
	rc = -ENOMEM;
	if (!(op = qfs_fs_add_op(&t, QFS_OP_EXPECT_VALUE, skey)))
		goto out;
	op->val = xraw;
	op->val_len = (uint32_t)xraw_len;
	op->err = QFS_ECONFLICT;
	if (have_y) {
		if (!(op = qfs_fs_add_op(&t, QFS_OP_EXPECT_VALUE, dkey)))
			goto out;
		op->val = yraw;
		op->val_len = (uint32_t)yraw_len;
		op->err = QFS_ECONFLICT;
		if (S_ISDIR(y.type)) {
			struct qfs_router_range entries = qfs_router_range_dentries(y.ino, NULL, 0);
			if (!(op = qfs_router_itxn_add_range(&t, QFS_OP_EXPECT_EMPTY, &entries)))
				goto out;
			op->err = -ENOTEMPTY;
		}
	} else {
		if (!(op = qfs_fs_add_op(&t, QFS_OP_EXPECT_ABSENT, dkey)))
			goto out;
		op->err = (flags & RENAME_NOREPLACE) ? -EEXIST : QFS_ECONFLICT;
	}
	if (!qfs_fs_add_op(&t, QFS_OP_DEL, skey))
		goto out;
	if (!(op = qfs_fs_add_op(&t, QFS_OP_PUT, dkey)))
		goto out;
	op->val = xraw;
	op->val_len = (uint32_t)xraw_len;
	if (!(op = qfs_fs_add_op(&t, QFS_OP_SETATTR, xkey)))
		goto out;
	op->mask = QFS_SET_CTIME;
	op->attr.ctime = now;
	int x_dir = S_ISDIR(x.type) ? 1 : 0;
	int y_dir = have_y && S_ISDIR(y.type);
	if (p1 == p2) {
		if (touch_dir(&t, p1key, &now, y_dir ? -1 : 0))
			goto out;
	} else {
		if (touch_dir(&t, p1key, &now, -x_dir) ||
		    touch_dir(&t, p2key, &now, x_dir - (y_dir ? 1 : 0)))
			goto out;
	}
	if (have_y) {
		ykey = IKEY(y.ino);
		if (y_dir) {
			if (!qfs_fs_add_op(&t, QFS_OP_DEL, ykey))
				goto out;
		} else if (drop_link(&t, yin, y.ino, ykey, &oval, &now)) {
			goto out;
		}
	}
	rc = qfs_fs_run_txn(fs, table, &t);
	if (rc == 0)
		after_drop(fs, yin, &now);
	if (rc == 0) {
		*moved = x.ino;
		*moved_dir = x_dir;
		*moved_ctime = now;
	}
out:
	if (yin) {
		pthread_mutex_unlock(&yin->mu);
		qfs_fs_iput(fs, yin);
	}
	qfs_router_itxn_close(&t);
	qfs_buf_close(&oval);
	free(xraw);
	free(yraw);
	return rc;
}

/* renameat2(RENAME_EXCHANGE) inside one table: the two dentries swap the
 * inodes they name, in one txn conditioned on both being unchanged
 * (QFS_ECONFLICT: retry).  Both inodes get a new ctime, both parents new
 * times; when a directory and a non-directory swap parents, the parents'
 * nlink follow ("..").  The kernel refuses an exchange of a directory with
 * its own ancestor (EINVAL) before asking us.  On success *xo and *yo are the
 * dentries found at p1/n1 and p2/n2 (ino 0 when nothing changed: two names
 * of one inode) and *when the ctime given. */
static int exchange_once(struct qfs_fs *fs, qfs_table_t table, fuse_ino_t p1, const char *n1, fuse_ino_t p2,
			 const char *n2, struct qfs_dentry *xo, struct qfs_dentry *yo, struct qfs_ts *when)
{
	struct qfs_router_key skey, dkey, p1key, p2key, xkey, ykey;
	struct qfs_dentry x, y;
	void *xraw = NULL, *yraw = NULL;
	size_t xraw_len = 0, yraw_len = 0;
	struct qfs_router_itxn t;
	struct qfs_op *op;
	struct qfs_ts now;
	int rc;

	qfs_router_itxn_init(&t);
	rc = read_dentry(fs, table, p1, n1, &x, &xraw, &xraw_len);
	if (rc == 0)
		rc = read_dentry(fs, table, p2, n2, &y, &yraw, &yraw_len);
	if (rc)
		goto out;
	if (x.ino == y.ino) { /* two names of one file: nothing changes (as Linux) */
		xo->ino = yo->ino = 0;
		goto out;
	}
	qfs_clock_now(&now);
	skey = DKEY(p1, n1);
	dkey = DKEY(p2, n2);
	p1key = IKEY(p1);
	p2key = IKEY(p2);
	xkey = IKEY(x.ino);
	ykey = IKEY(y.ino);
	rc = -ENOMEM;
	if (!(op = qfs_fs_add_op(&t, QFS_OP_EXPECT_VALUE, skey)))
		goto out;
	op->val = xraw;
	op->val_len = (uint32_t)xraw_len;
	op->err = QFS_ECONFLICT;
	if (!(op = qfs_fs_add_op(&t, QFS_OP_EXPECT_VALUE, dkey)))
		goto out;
	op->val = yraw;
	op->val_len = (uint32_t)yraw_len;
	op->err = QFS_ECONFLICT;
	if (!(op = qfs_fs_add_op(&t, QFS_OP_PUT, skey)))
		goto out;
	op->val = yraw;
	op->val_len = (uint32_t)yraw_len;
	if (!(op = qfs_fs_add_op(&t, QFS_OP_PUT, dkey)))
		goto out;
	op->val = xraw;
	op->val_len = (uint32_t)xraw_len;
	if (!(op = qfs_fs_add_op(&t, QFS_OP_SETATTR, xkey)))
		goto out;
	op->mask = QFS_SET_CTIME;
	op->attr.ctime = now;
	if (!(op = qfs_fs_add_op(&t, QFS_OP_SETATTR, ykey)))
		goto out;
	op->mask = QFS_SET_CTIME;
	op->attr.ctime = now;
	int x_dir = S_ISDIR(x.type) ? 1 : 0, y_dir = S_ISDIR(y.type) ? 1 : 0;
	if (p1 == p2) {
		if (touch_dir(&t, p1key, &now, 0))
			goto out;
	} else if (touch_dir(&t, p1key, &now, y_dir - x_dir) ||
		   touch_dir(&t, p2key, &now, x_dir - y_dir)) {
		goto out;
	}
	rc = qfs_fs_run_txn(fs, table, &t);
	if (rc == 0) {
		*xo = x;
		*yo = y;
		*when = now;
	}
out:
	qfs_router_itxn_close(&t);
	free(xraw);
	free(yraw);
	return rc;
}

/* After a committed exchange or rename: a moved directory's ".." (as
 * readdir shows it) is its new parent; a file with buffered state keeps the
 * ctime given, so its write-back does not set an older one. */
static void moved_to(struct qfs_fs *fs, qfs_ino_t ino, int is_dir, fuse_ino_t parent, const struct qfs_ts *ctime)
{
	struct qfs_fs_inode *m = ino ? qfs_fs_ifind(fs, ino) : NULL;

	if (!m)
		return;
	if (is_dir) {
		pthread_mutex_lock(&fs->itab_mu);
		m->parent = parent;
		pthread_mutex_unlock(&fs->itab_mu);
	}
	qfs_fs_ilock(m);
	if (m->loaded)
		m->attr.ctime = *ctime;
	pthread_mutex_unlock(&m->mu);
	qfs_fs_iput(fs, m);
}

static void op_rename(fuse_req_t req, fuse_ino_t p1, const char *n1, fuse_ino_t p2, const char *n2,
		      unsigned int flags)
{
	struct qfs_fs *fs = qfs_fs_of(req);
	uint64_t t0 = qfs_clock_mono_ns();
	int rc;

	if ((rc = check_name(n1)) || (rc = check_name(n2)))
		return qfs_fs_fail(req, FOP_RENAME, t0, rc, "name too long");
	if ((flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE)) ||
	    (flags & (RENAME_NOREPLACE | RENAME_EXCHANGE)) == (RENAME_NOREPLACE | RENAME_EXCHANGE))
		return qfs_fs_fail(req, FOP_RENAME, t0, -EINVAL, "unsupported rename flags 0x%x", flags);
	if (qfs_fs_is_ctl(p1) || qfs_fs_is_ctl(p2) ||
	    (p1 == FUSE_ROOT_ID && strcmp(n1, ".quorumfs") == 0) ||
	    (p2 == FUSE_ROOT_ID && strcmp(n2, ".quorumfs") == 0))
		return qfs_fs_fail(req, FOP_RENAME, t0, -EROFS, "control tree is read-only");
	if (p1 == FUSE_ROOT_ID && p2 == FUSE_ROOT_ID) {
		if (flags & RENAME_EXCHANGE)
			return qfs_fs_fail(req, FOP_RENAME, t0, -EINVAL, "RENAME_EXCHANGE of two tables %.64s <-> %.64s",
					   n1, n2);
		/* a table replaced must be empty, which is read from the store:
		 * the files created in its top directory and still open first */
		struct qfs_table tb;
		bool known = qfs_router_table_lookup(fs->r, n2, &tb) == 0 && strcmp(n1, n2);
		if (known && (rc = qfs_fs_pend_flush_dir(fs, tb.ino)))
			return qfs_fs_fail(req, FOP_RENAME, t0, rc, "pending creates of table=%.64s", n2);
		rc = qfs_router_table_rename(fs->r, n1, n2, (flags & RENAME_NOREPLACE) != 0);
		if (known) /* the replaced table's root is gone (or may be) */
			qfs_fs_dac_drop(fs, tb.ino);
		qfs_fs_dir_changed(fs, FUSE_ROOT_ID);
		if (rc)
			return qfs_fs_fail(req, FOP_RENAME, t0, rc, "table %.64s -> %.64s", n1, n2);
		qfs_fs_avail_names_changed(fs); /* availability lines follow the new name */
		return qfs_fs_ok(req, FOP_RENAME, t0);
	}
	if (p1 == FUSE_ROOT_ID || p2 == FUSE_ROOT_ID)
		return qfs_fs_fail(req, FOP_RENAME, t0, -EXDEV, "moving between the root and a table %.64s -> %.64s", n1, n2);
	struct qfs_fs_inode *a = qfs_fs_get_inode(fs, p1), *b = qfs_fs_get_inode(fs, p2);
	if (!a || !b) {
		qfs_fs_iput(fs, a);
		qfs_fs_iput(fs, b);
		return qfs_fs_fail(req, FOP_RENAME, t0, -ESTALE, "unknown parent");
	}
	qfs_table_t g1 = a->table, g2 = b->table;
	qfs_fs_iput(fs, a);
	qfs_fs_iput(fs, b);
	if (g1 != g2)
		return qfs_fs_fail(req, FOP_RENAME, t0, -EXDEV, "rename between tables %.64s -> %.64s", n1, n2);
	/* both names (an exchange too) are read from the store */
	if ((rc = qfs_fs_pend_flush_dir(fs, p1)) || (p2 != p1 && (rc = qfs_fs_pend_flush_dir(fs, p2))))
		return qfs_fs_fail(req, FOP_RENAME, t0, rc, "pending creates of %lu or %lu", p1, p2);
	qfs_fs_hint_del(fs, p1, n1); /* the names change: their hints would only cost a retry */
	qfs_fs_hint_del(fs, p2, n2);
	if (flags & RENAME_EXCHANGE) {
		struct qfs_dentry xo = { 0, 0, 0 }, yo = { 0, 0, 0 };
		struct qfs_ts when;
		for (int attempt = 0; attempt < CONFLICT_RETRIES; attempt++) {
			rc = exchange_once(fs, g1, p1, n1, p2, n2, &xo, &yo, &when);
			if (rc != QFS_ECONFLICT)
				break;
		}
		if (rc)
			return qfs_fs_fail(req, FOP_RENAME, t0, rc, "exchange %lu/%.64s <-> %lu/%.64s", p1, n1, p2,
					   n2);
		moved_to(fs, xo.ino, S_ISDIR(xo.type), p2, &when);
		moved_to(fs, yo.ino, S_ISDIR(yo.type), p1, &when);
		return qfs_fs_ok(req, FOP_RENAME, t0);
	}
	qfs_ino_t moved = 0;
	int moved_dir = 0;
	struct qfs_ts moved_ctime = { 0, 0 };
	for (int attempt = 0; attempt < CONFLICT_RETRIES; attempt++) {
		rc = rename_once(fs, g1, p1, n1, p2, n2, flags, &moved, &moved_dir, &moved_ctime);
		if (rc != QFS_ECONFLICT)
			break;
	}
	if (rc)
		return qfs_fs_fail(req, FOP_RENAME, t0, rc, "%lu/%.64s -> %lu/%.64s", p1, n1, p2, n2);
	if (moved)
		moved_to(fs, moved, moved_dir, p2, &moved_ctime);
	qfs_fs_ok(req, FOP_RENAME, t0);
}

/* ---- files ---- */

/* An open control file: its text as generated at open.  Handles live on a
 * list under ctl_mu and a read copies its slice under that lock, so a READ
 * handled on one thread can never touch a handle that a RELEASE handled on
 * another thread has freed (seen under ASan with async direct I/O). */
struct ctl_handle {
	char *text;
	size_t len;
	struct ctl_handle *next;  /* protected by ctl_mu */
};

static pthread_mutex_t ctl_mu = PTHREAD_MUTEX_INITIALIZER;
static struct ctl_handle *ctl_open_list; /* protected by ctl_mu */

/* Unlink h from the open list; 1 if it was there.  ctl_mu held. */
static int ctl_unlink_locked(struct ctl_handle *h)
{
	for (struct ctl_handle **pp = &ctl_open_list; *pp; pp = &(*pp)->next) {
		if (*pp == h) {
			*pp = h->next;
			return 1;
		}
	}
	return 0;
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct qfs_fs *fs = qfs_fs_of(req);
	uint64_t t0 = qfs_clock_mono_ns();
	int rc;

	if (qfs_fs_is_ctl(ino)) {
		struct ctl_handle *h;
		if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
			if (!qfs_fs_ctl_writable(ino))
				return qfs_fs_fail(req, FOP_OPEN, t0, -EROFS, "control tree is read-only");
			if (fuse_req_ctx(req)->uid != 0)
				return qfs_fs_fail(req, FOP_OPEN, t0, -EACCES, "only root may write %s",
						   ino == QFS_CTL_SCRUB_INO ? ".quorumfs/scrub" : ".quorumfs/nodes");
		}
		h = calloc(1, sizeof(*h));
		if (!h)
			return qfs_fs_fail(req, FOP_OPEN, t0, -ENOMEM, "control handle");
		rc = qfs_fs_ctl_read_file(fs, ino, &h->text, &h->len);
		if (rc) {
			free(h);
			return qfs_fs_fail(req, FOP_OPEN, t0, rc, "control ino=%lu", ino);
		}
		pthread_mutex_lock(&ctl_mu);
		h->next = ctl_open_list;
		ctl_open_list = h;
		pthread_mutex_unlock(&ctl_mu);
		fi->fh = (uintptr_t)h;
		fi->direct_io = 1;
		qfs_fs_done(req, FOP_OPEN, t0, 0);
		fuse_reply_open(req, fi);
		return;
	}
	struct qfs_fs_inode *in = qfs_fs_get_inode(fs, ino);
	if (!in)
		return qfs_fs_fail(req, FOP_OPEN, t0, -ESTALE, "unknown ino=%lu", ino);
	if (!S_ISREG(in->type)) {
		qfs_fs_iput(fs, in);
		return qfs_fs_fail(req, FOP_OPEN, t0, S_ISDIR(in->type) ? -EISDIR : -ENXIO, "open of a non-file ino=%lu", ino);
	}
	qfs_fs_ilock(in);
	in->nopen++;
	/* unlink decides "delete now" or "keep until last close" under in->mu
	 * from nopen: if it already deleted the inode, this open must fail */
	struct qfs_attr a;
	rc = in->loaded ? 0 : qfs_router_get_attr(fs->r, in->table, in->ino, &a);
	if (rc == 0 && (fi->flags & O_TRUNC)) {
		/* FUSE_CAP_ATOMIC_O_TRUNC: truncated in memory, written back
		 * with what this handle writes at close (the old bytes stay
		 * until then, as with any write-back) */
		rc = qfs_fs_data_truncate(fs, in, 0);
		if (rc == 0)
			trunc_drop_ids_locked(req, in);
		if (rc && !in->chunks && in->attr_dirty == 0)
			in->loaded = false;
	}
	if (rc)
		in->nopen--;
	pthread_mutex_unlock(&in->mu);
	if (rc) {
		qfs_fs_iput(fs, in);
		return qfs_fs_fail(req, FOP_OPEN, t0, rc, "ino=%lu is gone (unlinked meanwhile)", ino);
	}
	fi->fh = (uintptr_t)in; /* the ref taken above belongs to the handle now */
	fi->keep_cache = 1;
	qfs_fs_done(req, FOP_OPEN, t0, 0);
	fuse_reply_open(req, fi);
}

/* Open the existing file ino of the name a create found (no O_EXCL): as
 * op_open does, O_TRUNC included.  *out gets the inode with a reference
 * and a kernel lookup counted, *a its attributes. */
static int create_open_existing(struct qfs_fs *fs, fuse_req_t req, qfs_ino_t ino, qfs_table_t table, uint32_t type,
				int flags, struct qfs_fs_inode **out, struct qfs_attr *a)
{
	int rc;

	if (S_ISDIR(type))
		return -EISDIR;
	struct qfs_fs_inode *in = qfs_fs_iget(fs, ino, table, type, 0);
	if (!in)
		return -ENOMEM;
	qfs_fs_ilock(in);
	rc = qfs_fs_load(fs, in);
	if (rc == 0 && (flags & O_TRUNC) && (rc = qfs_fs_data_truncate(fs, in, 0)) == 0)
		trunc_drop_ids_locked(req, in);
	if (rc == 0) {
		in->nopen++;
		*a = in->attr;
	}
	if (!in->chunks && in->attr_dirty == 0 && !in->pend)
		in->loaded = false; /* nothing buffered: the store stays the truth */
	pthread_mutex_unlock(&in->mu);
	if (rc) {
		qfs_fs_iput(fs, in);
		return rc;
	}
	pthread_mutex_lock(&fs->itab_mu);
	in->nlookup++;
	pthread_mutex_unlock(&fs->itab_mu);
	*out = in;
	return 0;
}

/* Create regular file name in parent (a directory of a table) as a pending
 * create (pend.c): nothing is stored until its first write-back.  O_EXCL
 * (excl) is checked against the pending list and the store; without it an
 * existing file of that name is opened.  On success *out is the open inode
 * (a reference, nopen and a kernel lookup counted) and *a its attributes. */
static int create_pending(struct qfs_fs *fs, fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
			  int flags, struct qfs_fs_inode **out, struct qfs_attr *a)
{
	struct newnode nn = { S_IFREG | (mode & 07777), 0, NULL };
	struct qfs_fs_pend *pd = NULL;
	struct qfs_inode ni;
	struct qfs_dentry d;
	int rc, excl = (flags & O_EXCL) != 0;

	if ((rc = check_name(name)))
		return rc;
	struct qfs_fs_inode *p = qfs_fs_get_inode(fs, parent);
	if (!p)
		return -ESTALE;
	qfs_table_t table = p->table;
	qfs_fs_iput(fs, p);
	struct qfs_fs_inode *x = qfs_fs_pend_find(fs, parent, name);
	if (x) {
		qfs_ino_t xino = x->ino;
		qfs_fs_iput(fs, x);
		return excl ? -EEXIST : create_open_existing(fs, req, xino, table, S_IFREG, flags, out, a);
	}
	/* the lookup just before found it absent (the negative answer) */
	rc = neg_get(fs, parent, name) ? -ENOENT : read_dentry(fs, table, parent, name, &d, NULL, NULL);
	if (rc == 0)
		return excl ? -EEXIST : create_open_existing(fs, req, d.ino, table, d.type, flags, out, a);
	if (rc != -ENOENT)
		return rc;
	qfs_inode_init(&ni);
	rc = build_node(fs, fuse_req_ctx(req), parent, table, &nn, &ni, &d);
	if (rc)
		goto out;
	rc = -ENOMEM;
	if (!(pd = calloc(1, sizeof(*pd))))
		goto out;
	pd->parent = parent;
	strcpy(pd->name, name); /* check_name: at most QFS_NAME_MAX bytes */
	pd->created = ni.a.mtime;
	pd->has_acl = qfs_inode_xattr_find(&ni, QFS_ACL_ACCESS) != NULL;
	qfs_buf_init(&pd->ib);
	qfs_buf_init(&pd->db);
	qfs_inode_encode(&ni, &pd->ib);
	qfs_dentry_encode(&d, &pd->db);
	if ((rc = pd->ib.err ? pd->ib.err : pd->db.err))
		goto out;
	pd->ino = ni.a.ino;
	struct qfs_fs_inode *in = qfs_fs_iget(fs, ni.a.ino, table, S_IFREG, 1);
	if (!in) {
		rc = -ENOMEM;
		goto out;
	}
	qfs_fs_ilock(in);
	in->nopen++;
	in->attr = ni.a;
	in->stored_size = in->valid_size = 0;
	in->stored_flags = ni.a.flags;
	in->attr_dirty = 0;
	in->loaded = true;
	in->nosec = true; /* a new inode has no security.* xattr */
	qfs_fs_pend_add(fs, in, pd);
	pd = NULL;
	pthread_mutex_unlock(&in->mu);
	qfs_fs_hint_put(fs, parent, name, ni.a.ino, S_IFREG);
	*out = in;
	*a = ni.a;
	rc = 0;
out:
	if (pd) {
		qfs_buf_close(&pd->ib);
		qfs_buf_close(&pd->db);
		free(pd);
	}
	qfs_inode_close(&ni);
	return rc;
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi)
{
	struct qfs_fs *fs = qfs_fs_of(req);
	uint64_t t0 = qfs_clock_mono_ns();
	struct fuse_entry_param e;
	struct qfs_fs_inode *in = NULL;
	struct qfs_attr a;
	int rc;

	if (parent == FUSE_ROOT_ID || qfs_fs_is_ctl(parent)) {
		struct newnode nn = { S_IFREG | (mode & 07777), 0, NULL };
		rc = make_node(fs, req, parent, name, &nn, &a); /* fails: EPERM, EROFS... */
		if (rc == -EPERM)
			return qfs_fs_fail(req, FOP_CREATE, t0, rc, "only tables (directories) can be created at the root name=%.64s", name);
		return qfs_fs_fail(req, FOP_CREATE, t0, rc ? rc : -EIO, "parent=%lu name=%.64s", parent, QFS_ESC_NAME(name));
	}
	/* the parent's pending attributes first: its stored inode is read
	 * (mode, ACL) and the create's write-back sets its times */
	if ((rc = qfs_fs_dattr_flush(fs, parent)))
		return qfs_fs_fail(req, FOP_CREATE, t0, rc, "parent=%lu attributes", parent);
	rc = create_pending(fs, req, parent, name, mode, fi->flags, &in, &a);
	if (rc)
		return qfs_fs_fail(req, FOP_CREATE, t0, rc, "parent=%lu name=%.64s", parent, name);
	fi->fh = (uintptr_t)in; /* the reference belongs to the handle */
	fi->keep_cache = 1;
	qfs_fs_fill_entry(fs, &e, &a);
	qfs_fs_done(req, FOP_CREATE, t0, 0);
	fuse_reply_create(req, &e, fi);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct qfs_fs *fs = qfs_fs_of(req);
	uint64_t t0 = qfs_clock_mono_ns();
	size_t got = 0;
	int rc;

	if (qfs_fs_is_ctl(ino)) {
		struct ctl_handle *h = (struct ctl_handle *)(uintptr_t)fi->fh, *x;
		char *copy = NULL;
		pthread_mutex_lock(&ctl_mu);
		for (x = ctl_open_list; x && x != h; x = x->next)
			;
		if (x && off >= 0 && (size_t)off < h->len) {
			got = h->len - (size_t)off < size ? h->len - (size_t)off : size;
			copy = malloc(got);
			if (copy)
				memcpy(copy, h->text + off, got);
		}
		pthread_mutex_unlock(&ctl_mu);
		if (!x)
			return qfs_fs_fail(req, FOP_READ, t0, -EBADF, "control handle already released");
		if (got && !copy)
			return qfs_fs_fail(req, FOP_READ, t0, -ENOMEM, "control read of %zu bytes", got);
		qfs_fs_done(req, FOP_READ, t0, 0);
		fuse_reply_buf(req, copy, copy ? got : 0);
		free(copy);
		return;
	}
	struct qfs_fs_inode *in = qfs_fs_fh_inode(fi);
	struct qfs_fs_rvec v;
	/* a clean file's chunks go to the kernel straight from the store's
	 * values, RocksDB's pinned slices, released after the reply: no copy
	 * into a malloc'd value nor a reply buffer (doc/perf.md "AFTER 8",
	 * "AFTER 12") */
	rc = qfs_fs_data_read_vec(fs, in, size, off, &v); /* takes in->mu when it must */
	if (rc)
		return qfs_fs_fail(req, FOP_READ, t0, rc, "ino=%lu off=%lld size=%zu", ino, (long long)off, size);
	qfs_fs_done(req, FOP_READ, t0, 0);
	if (v.n)
		fuse_reply_iov(req, v.iov, v.n);
	else
		fuse_reply_buf(req, NULL, 0);
	qfs_fs_rvec_free(&v);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct qfs_fs *fs = qfs_fs_of(req);
	uint64_t t0 = qfs_clock_mono_ns();
	int rc;

	if (qfs_fs_is_ctl(ino)) {
		char cmd[41], ecmd[QFS_ESC_MAX(40)];
		size_t shown = 0;

		while (shown < size && shown < 40 && buf[shown] != '\n')
			shown++;
		memcpy(cmd, buf, shown);
		cmd[shown] = '\0';
		qfs_esc(cmd, ecmd, sizeof(ecmd)); /* one key=value line whatever was written */
		rc = qfs_fs_ctl_command(fs, ino, buf, size);
		if (rc)
			return qfs_fs_fail(req, FOP_WRITE, t0, rc, "control_cmd=%s", ecmd);
		QFS_LOG(QFS_LOG_WARN, "control command done cmd=%s%s", ecmd,
			ino == QFS_CTL_NODES_INO ? " hook=test" : "");
		qfs_fs_done(req, FOP_WRITE, t0, 0);
		fuse_reply_write(req, size);
		return;
	}
	struct qfs_fs_inode *in = qfs_fs_fh_inode(fi);
	struct qfs_fs_wb *behind = NULL;
	pthread_mutex_lock(&in->mu); /* not qfs_fs_ilock: qfs_fs_data_write waits itself */
	rc = qfs_fs_data_write(fs, in, buf, size, off, &behind);
	int dropped = rc == 0 && drop_sgid_locked(req, in);
	pthread_mutex_unlock(&in->mu);
	if (dropped && fs->se)
		fuse_lowlevel_notify_inval_inode(fs->se, ino, -1, 0); /* attributes only */
	if (rc)
		return qfs_fs_fail(req, FOP_WRITE, t0, rc, "ino=%lu off=%lld size=%zu", ino, (long long)off, size);
	qfs_fs_done(req, FOP_WRITE, t0, 0);
	fuse_reply_write(req, size);
	if (behind) /* the write-back this write started, after its reply (data.c) */
		qfs_fs_wb_run(fs, in, behind);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct qfs_fs *fs = qfs_fs_of(req);
	uint64_t t0 = qfs_clock_mono_ns();
	int rc;

	if (qfs_fs_is_ctl(ino))
		return qfs_fs_ok(req, FOP_FLUSH, t0);
	struct qfs_fs_inode *in = qfs_fs_fh_inode(fi);
	qfs_fs_ilock(in);
	rc = qfs_fs_flush_locked(fs, in);
	pthread_mutex_unlock(&in->mu);
	if (rc)
		return qfs_fs_fail(req, FOP_FLUSH, t0, rc, "close could not write back ino=%lu", ino);
	qfs_fs_ok(req, FOP_FLUSH, t0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct qfs_fs *fs = qfs_fs_of(req);
	uint64_t t0 = qfs_clock_mono_ns();
	int rc;

	if (qfs_fs_is_ctl(ino))
		return qfs_fs_ok(req, FOP_FSYNC, t0);
	struct qfs_fs_inode *in = qfs_fs_fh_inode(fi);
	qfs_fs_ilock(in);
	rc = qfs_fs_flush_locked(fs, in);
	pthread_mutex_unlock(&in->mu);
	if (rc)
		return qfs_fs_fail(req, FOP_FSYNC, t0, rc, "ino=%lu", ino);
	qfs_fs_ok(req, FOP_FSYNC, t0);
}

/* fallocate(2).  The kernel has already checked what it can see: EBADF
 * for a handle not open for writing, EISDIR/ENODEV/ESPIPE for other types,
 * EINVAL for off < 0 or len <= 0, EOPNOTSUPP for PUNCH_HOLE without
 * KEEP_SIZE and for COLLAPSE/INSERT/UNSHARE, EFBIG past RLIMIT_FSIZE; it
 * sends PUNCH_HOLE, ZERO_RANGE and KEEP_SIZE (and handles its cached pages
 * of a punched or zeroed range itself: fsx mixing mmap writes with both
 * passes, doc/fs.md "Data integrity").  Never answer ENOSYS: the kernel
 * would then refuse fallocate on the whole mount from there on. */
static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len, struct fuse_file_info *fi)
{
	struct qfs_fs *fs = qfs_fs_of(req);
	uint64_t t0 = qfs_clock_mono_ns();
	int punch = (mode & FALLOC_FL_PUNCH_HOLE) != 0, keep = (mode & FALLOC_FL_KEEP_SIZE) != 0;
	int zero = (mode & FALLOC_FL_ZERO_RANGE) != 0;
	int rc;

	if (qfs_fs_is_ctl(ino))
		return qfs_fs_fail(req, FOP_FALLOCATE, t0, -EROFS, "control tree is read-only");
	if ((mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) || (punch && zero))
		return qfs_fs_fail(req, FOP_FALLOCATE, t0, -EOPNOTSUPP,
				   "fallocate mode 0x%x: only 0, KEEP_SIZE, PUNCH_HOLE|KEEP_SIZE and ZERO_RANGE are supported ino=%lu",
				   mode, ino);
	if (punch && !keep)
		return qfs_fs_fail(req, FOP_FALLOCATE, t0, -EOPNOTSUPP, "PUNCH_HOLE needs KEEP_SIZE ino=%lu", ino);
	if (off < 0 || len <= 0)
		return qfs_fs_fail(req, FOP_FALLOCATE, t0, -EINVAL, "off=%lld len=%lld", (long long)off, (long long)len);
	if ((uint64_t)off + (uint64_t)len > QFS_FS_FILE_MAX)
		return qfs_fs_fail(req, FOP_FALLOCATE, t0, -EFBIG, "off=%lld len=%lld past the largest file size %llu",
				   (long long)off, (long long)len, (unsigned long long)QFS_FS_FILE_MAX);
	struct qfs_fs_inode *in = qfs_fs_fh_inode(fi);
	if (!S_ISREG(in->type))
		return qfs_fs_fail(req, FOP_FALLOCATE, t0, S_ISDIR(in->type) ? -EISDIR : -ENODEV, "ino=%lu is not a file",
				   ino);
	qfs_fs_ilock(in);
	if (zero)
		rc = qfs_fs_data_zero_range(fs, in, keep, (uint64_t)off, (uint64_t)len);
	else
		rc = qfs_fs_data_fallocate(fs, in, punch, keep, (uint64_t)off, (uint64_t)len);
	/* the S_ISGID drop, if any, is written back with the next flush (close) */
	int dropped = rc == 0 && qfs_fs_load(fs, in) == 0 && drop_sgid_locked(req, in);
	pthread_mutex_unlock(&in->mu);
	if (dropped && fs->se)
		fuse_lowlevel_notify_inval_inode(fs->se, ino, -1, 0);
	if (rc)
		return qfs_fs_fail(req, FOP_FALLOCATE, t0, rc, "ino=%lu mode=0x%x off=%lld len=%lld", ino, mode,
				   (long long)off, (long long)len);
	qfs_fs_ok(req, FOP_FALLOCATE, t0);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct qfs_fs *fs = qfs_fs_of(req);
	uint64_t t0 = qfs_clock_mono_ns();
	int rc, last;

	if (qfs_fs_is_ctl(ino)) {
		struct ctl_handle *h = (struct ctl_handle *)(uintptr_t)fi->fh;
		pthread_mutex_lock(&ctl_mu);
		int mine = ctl_unlink_locked(h);
		pthread_mutex_unlock(&ctl_mu);
		if (mine) {
			free(h->text);
			free(h);
		}
		return qfs_fs_ok(req, FOP_RELEASE, t0);
	}
	struct qfs_fs_inode *in = qfs_fs_fh_inode(fi);
	qfs_ino_t gone_parent = 0;
	char gone_name[QFS_NAME_MAX + 1];
	qfs_fs_ilock(in);
	rc = qfs_fs_flush_locked(fs, in);
	in->nopen--;
	if (rc && in->nopen == 0) {
		if (in->pend) { /* a create never stored: its name goes too */
			gone_parent = in->pend->parent;
			strcpy(gone_name, in->pend->name);
		}
		qfs_fs_discard(fs, in); /* nobody is left to retry or be told */
	}
	last = in->nopen == 0 && in->unlinked;
	if (last) {
		int drc = qfs_fs_destroy_inode(fs, in->table, in->ino);
		if (drc)
			QFS_LOG(QFS_LOG_WARN, "orphan not removed; the next mount removes it ino=%llu err=\"%s\"",
				(unsigned long long)in->ino, qfs_strerror(drc));
		in->unlinked = false;
	}
	pthread_mutex_unlock(&in->mu);
	qfs_fs_iput(fs, in);
	if (gone_parent && fs->se) /* no lock held: the kernel takes the directory's */
		fuse_lowlevel_notify_inval_entry(fs->se, gone_parent, gone_name, strlen(gone_name));
	if (rc)
		QFS_LOG(QFS_LOG_ERR, "fs op=release write-back failed ino=%lu err=\"%s\"", ino, qfs_strerror(rc));
	qfs_fs_done(req, FOP_RELEASE, t0, rc != 0);
	fuse_reply_err(req, 0);
}

struct table_ids {
	struct qfs_table *v;
	size_t n, cap;
};

static int collect_table(const struct qfs_table *t, void *arg)
{
	struct table_ids *l = arg;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct qfs_table *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = *t;
	return 0;
}

/* A table's inode count (ninodes of its directory inode, kept by the store,
 * src/store/apply.c) into *n.  A read that fails with anything but -ENOENT
 * or -ENOMEM (an election, a short wait timed out under load) is tried
 * again, up to STATFS_TRIES times with a short pause: statfs is not
 * durable work, but an undercount must not come from one slow read.
 * 0, -ENOENT (the table went away: it counts nothing), QFS_COUNT_UNKNOWN in
 * *n for a count version 1 did not keep, or the last error. */
#define STATFS_TRIES 4
static int table_ninodes(struct qfs_fs *fs, const struct qfs_table *t, uint64_t *n)
{
	int rc = -EIO;

	for (int i = 0; i < STATFS_TRIES; i++) {
		struct qfs_inode in;
		if (i)
			usleep(20000u * (unsigned)i); /* 20, 40, 60 ms */
		qfs_inode_init(&in);
		rc = qfs_router_get_inode(fs->r, t->id, t->ino, &in);
		if (rc == 0)
			*n = in.ninodes;
		qfs_inode_close(&in);
		if (rc == 0 || rc == -ENOENT || rc == -ENOMEM)
			break;
	}
	return rc;
}

/* Inodes in use: the root plus, per table, the inode items of its group as
 * the store counts them in the table's directory inode (src/store/apply.c).
 * What it cannot count makes *partial 1 and is left out (a lower bound,
 * doc/fs.md "df -i"): a table whose count is unknown (made by version 1),
 * unreadable after the retries (one WARN line: table and err), or split
 * into several partitions (the count covers only the items of the table's
 * first group; a WARN at most once a minute). */
static uint64_t inodes_used(struct qfs_fs *fs, int *partial)
{
	static uint64_t split_warned_ms; /* atomic; last WARN of a split table */
	struct table_ids l = { 0 };
	uint64_t used = 1;

	*partial = 0;
	if (qfs_router_table_list(fs->r, "", collect_table, &l) != 0)
		*partial = 1;
	for (size_t i = 0; i < l.n; i++) {
		uint64_t n = 0;
		size_t parts = 1;
		int rc = table_ninodes(fs, &l.v[i], &n);

		if (rc == -ENOENT)
			continue; /* removed since the list: nothing to count */
		if (rc) {
			QFS_LOG(QFS_LOG_WARN, "statfs: inode count of a table unreadable, df -i leaves it out table=%s err=\"%s\"",
				QFS_ESC_NAME(l.v[i].name), qfs_strerror(rc));
			*partial = 1;
			continue;
		}
		if (n == QFS_COUNT_UNKNOWN) {
			*partial = 1;
			continue;
		}
		used += n;
		if (qfs_router_table_nparts(fs->r, l.v[i].id, &parts) == 0 && parts > 1) {
			uint64_t now = qfs_clock_mono_ns() / 1000000u;
			uint64_t last = __atomic_load_n(&split_warned_ms, __ATOMIC_RELAXED);
			*partial = 1;
			if ((!last || now - last >= 60000u) &&
			    __atomic_compare_exchange_n(&split_warned_ms, &last, now, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
				QFS_LOG(QFS_LOG_WARN, "statfs: table split into partitions, df -i counts only its first group's inodes table=%s parts=%zu",
					QFS_ESC_NAME(l.v[i].name), parts);
		}
	}
	free(l.v);
	return used;
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct qfs_fs *fs = qfs_fs_of(req);
	uint64_t t0 = qfs_clock_mono_ns();
	struct statvfs sv;
	int partial;

	if (statvfs(fs->o->data_dir, &sv) != 0)
		return qfs_fs_fail(req, FOP_STATFS, t0, -errno, "statvfs of data dir %s", fs->o->data_dir);
	{
		/* what a user can still write: every byte lands space_copies
		 * times on this disk, and the reserve is not for data */
		uint64_t copies = fs->o->space_copies ? fs->o->space_copies : 1;
		uint64_t res = sv.f_frsize ? fs->o->space_reserve / sv.f_frsize : 0;

		sv.f_blocks /= copies;
		sv.f_bfree = sv.f_bfree > res ? (sv.f_bfree - res) / copies : 0;
		sv.f_bavail = sv.f_bavail > res ? (sv.f_bavail - res) / copies : 0;
	}
	sv.f_namemax = QFS_NAME_MAX;
	/* inode numbers are 64-bit and items are not preallocated: no real
	 * limit, so a fixed large number is free beside the ones in use */
	sv.f_ffree = QFS_FS_INODES_FREE;
	sv.f_files = inodes_used(fs, &partial) + sv.f_ffree;
	if (partial)
		QFS_LOG(QFS_LOG_DEBUG, "statfs: some tables' inode counts are unknown or unreadable; f_files counts the others");
	sv.f_favail = sv.f_ffree;
	sv.f_fsid = 0x71667331;
	sv.f_flag = 0;
	qfs_fs_done(req, FOP_STATFS, t0, 0);
	fuse_reply_statfs(req, &sv);
}

/* ---- session ---- */

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct qfs_fs *fs = userdata;

	conn->max_write = 1u << 20;
	conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE; /* doc/fs.md "Kernel caches" */
	/* O_TRUNC arrives with OPEN (op_open truncates in memory, stored at
	 * close), not as a SETATTR without a handle that must be stored at once */
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	/* POSIX ACLs (fs/acl.c): the kernel enforces them; we store them, keep
	 * mode and ACL in step and inherit default ACLs.  DONT_MASK: the kernel
	 * passes the umask instead of applying it, since a default ACL replaces
	 * the umask (make_node applies whichever holds). */
	if (conn->capable & FUSE_CAP_POSIX_ACL)
		conn->want |= FUSE_CAP_POSIX_ACL;
	if (conn->capable & FUSE_CAP_DONT_MASK)
		conn->want |= FUSE_CAP_DONT_MASK;
	/* readdirplus on every readdir call of a listing, not only its first
	 * page (READDIRPLUS_AUTO): an entry's attributes cost a store read
	 * here, less than the LOOKUP round trip find, du and ls -l would make
	 * for each entry past the first page (doc/fs.md "Kernel caches") */
	conn->want &= ~(unsigned)FUSE_CAP_READDIRPLUS_AUTO;
	/* a warm walk asks the daemon nothing (doc/fs.md "Kernel caches"):
	 * opendir answers ENOSYS, so the kernel opens and releases
	 * directories itself with their listings cached (FOPEN_CACHE_DIR),
	 * and keeps symlink targets in its page cache (a target never
	 * changes); not with kernel caching off (cache_timeout=0) */
	if (fs->timeout > 0 && (conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT))
		fs->no_opendir = true;
	if (fs->timeout > 0 && (conn->capable & FUSE_CAP_CACHE_SYMLINKS))
		conn->want |= FUSE_CAP_CACHE_SYMLINKS;
}

const struct fuse_lowlevel_ops qfs_fs_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readlink = op_readlink,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.symlink = op_symlink,
	.rename = op_rename,
	.link = op_link,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.release = op_release,
	.fsync = op_fsync,
	.fallocate = op_fallocate,
	.opendir = qfs_fs_op_opendir,
	.readdir = qfs_fs_op_readdir,
	.readdirplus = qfs_fs_op_readdirplus,
	.releasedir = qfs_fs_op_releasedir,
	.fsyncdir = qfs_fs_op_fsyncdir,
	.statfs = op_statfs,
	.setxattr = qfs_fs_op_setxattr,
	.getxattr = qfs_fs_op_getxattr,
	.listxattr = qfs_fs_op_listxattr,
	.removexattr = qfs_fs_op_removexattr,
	.create = op_create,
};
