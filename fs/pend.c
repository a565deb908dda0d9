/*
 * pend.c - pending creates: a regular file made by FUSE create lives in the
 * fs layer, not yet in the store, until its first write-back (close, fsync,
 * 8 MiB buffered) stores dentry, inode, data and attributes in one txn
 * (data.c qfs_fs_flush_locked adds the ops built here).  That makes cp -a,
 * rsync's temp files and tar one quorum round per small file.  Rules and
 * crash cases: doc/fs.md "One round per file".
 *
 * - lookup of (parent, name) finds a pending file before the store; getattr,
 *   open, read and write of it are served from memory (it is loaded);
 * - a create checks both the store and the pending list, and the kernel
 *   runs every create, mknod, mkdir, symlink, link, unlink, rmdir and rename
 *   of one directory one at a time (exclusive i_rwsem), so O_EXCL is exact;
 * - any namespace operation on a directory (readdir, create of another
 *   kind, unlink, rmdir of it or in it, rename from or to it, a setattr of
 *   it) first writes back the directory's pending creates, so the store
 *   is complete wherever a listing or a condition reads it;
 * - xattr calls that read or change the stored inode write it back first.
 *
 * The list is short (files created and still open), so it is a plain list
 * under fs->pend_mu.  Lock order: an inode's mu before pend_mu; pend_mu
 * before itab_mu (qfs_fs_ipin).  pend_mu is never held across a router call.
 *
 * Directory attributes: a chmod, chown or utimens of a directory is kept
 * in the inode (loaded, attr_dirty: every reader of attributes, getattr,
 * lookup, readdirplus and the xattr/ACL paths, takes in->attr of a loaded
 * inode, and the kernel checks permissions against what setattr replied)
 * and queued on fs->dattr_head.  cp -a, rsync and tar set a directory's
 * owner, mode and times after its contents, one call each: they now cost
 * one write-back.  It happens QFS_FS_DATTR_MS after the first change at
 * the latest (the timer below), or before anything reads or changes the
 * directory's stored inode: qfs_fs_pend_flush_dir (mkdir, mknod, symlink,
 * link, unlink, rmdir, rename, fsyncdir in or of it; not a listing),
 * create_pending and setxattr (which joins it into its own txn when it
 * can, xattr.c).  A crash loses at most the changes of that interval,
 * like the data of a file not yet closed; doc/fs.md.  Lock order: an
 * inode's mu before dattr_mu; dattr_mu before itab_mu.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "fs/fs_int.h"

struct qfs_fs_inode *qfs_fs_pend_find(struct qfs_fs *fs, qfs_ino_t parent, const char *name)
{
	struct qfs_fs_inode *in;

	pthread_mutex_lock(&fs->pend_mu);
	for (in = fs->pend_head; in; in = in->pnext)
		if (in->pend->parent == parent && strcmp(in->pend->name, name) == 0)
			break;
	if (in)
		qfs_fs_ipin(fs, in);
	pthread_mutex_unlock(&fs->pend_mu);
	return in;
}

void qfs_fs_pend_add(struct qfs_fs *fs, struct qfs_fs_inode *in, struct qfs_fs_pend *p)
{
	in->pend = p;
	pthread_mutex_lock(&fs->pend_mu);
	in->pnext = fs->pend_head;
	fs->pend_head = in;
	pthread_mutex_unlock(&fs->pend_mu);
}

void qfs_fs_pend_free(struct qfs_fs_pend *p)
{
	if (!p)
		return;
	qfs_buf_close(&p->ib);
	qfs_buf_close(&p->db);
	free(p);
}

void qfs_fs_pend_remove(struct qfs_fs *fs, struct qfs_fs_inode *in)
{
	if (!in->pend)
		return;
	pthread_mutex_lock(&fs->pend_mu);
	for (struct qfs_fs_inode **pp = &fs->pend_head; *pp; pp = &(*pp)->pnext) {
		if (*pp == in) {
			*pp = in->pnext;
			break;
		}
	}
	in->pnext = NULL;
	pthread_mutex_unlock(&fs->pend_mu);
	qfs_ino_t parent = in->pend->parent;
	qfs_fs_pend_free(in->pend);
	in->pend = NULL;
	qfs_fs_dir_changed(fs, parent); /* stored (data.c) or dropped */
}

int qfs_fs_pend_flush_dir(struct qfs_fs *fs, qfs_ino_t dir)
{
	int rc = qfs_fs_pend_flush_creates(fs, dir);

	return rc ? rc : qfs_fs_dattr_flush(fs, dir);
}

/* The loop of the two below.  spare: pass over (leave pending, logged) a
 * create refused for lack of space unless it is named only (NULL: none). */
static int flush_creates(struct qfs_fs *fs, qfs_ino_t dir, bool spare, const char *only)
{
	qfs_ino_t *passed = NULL;  /* creates refused for lack of space, passed over */
	size_t npassed = 0;
	int rc = 0;

	for (;;) {
		struct qfs_fs_inode *in;
		pthread_mutex_lock(&fs->pend_mu);
		for (in = fs->pend_head; in; in = in->pnext) {
			if (in->pend->parent != dir)
				continue;
			size_t i = 0;
			while (i < npassed && passed[i] != in->ino)
				i++;
			if (i == npassed)
				break;
		}
		if (in)
			qfs_fs_ipin(fs, in);
		pthread_mutex_unlock(&fs->pend_mu);
		if (!in)
			break;
		qfs_ino_t ino = in->ino;
		qfs_fs_ilock(in);
		int r = in->pend ? qfs_fs_flush_locked(fs, in) : 0;
		int still = in->pend != NULL;
		bool pass = r && spare && qfs_fs_is_nospc(r) && !(only && in->pend && strcmp(in->pend->name, only) == 0);
		pthread_mutex_unlock(&in->mu);
		qfs_fs_iput(fs, in);
		if (r) {
			QFS_LOG(QFS_LOG_WARN, "pending create not written back dir=%llu ino=%llu err=\"%s\"%s",
				(unsigned long long)dir, (unsigned long long)ino, qfs_strerror(r),
				pass ? " (passed over: the operation goes on without it)" : "");
			if (!pass) {
				rc = r;
				break;
			}
			qfs_ino_t *np = realloc(passed, (npassed + 1) * sizeof(*np));
			if (!np) {
				rc = r;
				break;
			}
			passed = np;
			passed[npassed++] = ino;
			continue;
		}
		if (still) { /* cannot happen: a successful write-back ends pending */
			rc = -EIO;
			break;
		}
	}
	free(passed);
	return rc;
}

int qfs_fs_pend_flush_creates(struct qfs_fs *fs, qfs_ino_t dir)
{
	return flush_creates(fs, dir, false, NULL);
}

int qfs_fs_pend_flush_spare(struct qfs_fs *fs, qfs_ino_t dir, const char *only)
{
	return flush_creates(fs, dir, true, only);
}

bool qfs_fs_pend_in_dir(struct qfs_fs *fs, qfs_ino_t dir)
{
	struct qfs_fs_inode *in;

	pthread_mutex_lock(&fs->pend_mu);
	for (in = fs->pend_head; in; in = in->pnext)
		if (in->pend->parent == dir)
			break;
	pthread_mutex_unlock(&fs->pend_mu);
	return in != NULL;
}

int qfs_fs_pend_flush_ino(struct qfs_fs *fs, struct qfs_fs_inode *in)
{
	int rc = 0;

	qfs_fs_ilock(in);
	if (in->pend)
		rc = qfs_fs_flush_locked(fs, in);
	pthread_mutex_unlock(&in->mu);
	return rc;
}

int qfs_fs_pend_add_ops(struct qfs_router_itxn *t, struct qfs_fs_pend *p)
{
	struct qfs_op *op;

	if (!(op = qfs_fs_add_op(t, QFS_OP_EXPECT_PRESENT, IKEY(p->parent))))
		return -ENOMEM;
	op->err = -ENOENT; /* the directory was removed meanwhile */
	if (!(op = qfs_fs_add_op(t, QFS_OP_EXPECT_ABSENT, DKEY(p->parent, p->name))))
		return -ENOMEM;
	op->err = -EEXIST;
	if (!(op = qfs_fs_add_op(t, QFS_OP_PUT, DKEY(p->parent, p->name))))
		return -ENOMEM;
	op->val = p->db.data;
	op->val_len = (uint32_t)p->db.len;
	if (!(op = qfs_fs_add_op(t, QFS_OP_PUT, IKEY(p->ino))))
		return -ENOMEM;
	op->val = p->ib.data;
	op->val_len = (uint32_t)p->ib.len;
	/* the directory changed: at the time the name is stored, not the
	 * create's, which can be older than a change to the directory stored
	 * meanwhile (another file created later and closed first, an unlink,
	 * or this create passed over on a full disk): the directory's times
	 * never step back.  Until then stat of the directory shows its times
	 * before the create (doc/fs.md). */
	struct qfs_ts now;

	qfs_clock_now(&now);
	if (now.sec < p->created.sec || (now.sec == p->created.sec && now.nsec < p->created.nsec))
		now = p->created; /* the clock stepped back */
	if (!(op = qfs_fs_add_op(t, QFS_OP_SETATTR, IKEY(p->parent))))
		return -ENOMEM;
	op->mask = QFS_SET_MTIME | QFS_SET_CTIME;
	op->attr.mtime = now;
	op->attr.ctime = now;
	return 0;
}

/* ---- directory attributes ---- */

void qfs_fs_dattr_queue(struct qfs_fs *fs, struct qfs_fs_inode *in)
{
	pthread_mutex_lock(&fs->dattr_mu);
	if (!in->dattr) {
		qfs_fs_ipin(fs, in); /* the queue's reference */
		in->dattr = true;
		in->dattr_due_ms = qfs_clock_mono_ms() + QFS_FS_DATTR_MS;
		in->dnext = fs->dattr_head;
		fs->dattr_head = in;
	}
	pthread_mutex_unlock(&fs->dattr_mu);
}

/* Store in's pending directory attributes; mu held. */
static int dattr_flush_locked(struct qfs_fs *fs, struct qfs_fs_inode *in)
{
	if (!S_ISDIR(in->type) || !in->loaded || in->attr_dirty == 0)
		return 0;
	int rc = qfs_fs_flush_locked(fs, in);
	if (rc)
		QFS_LOG(QFS_LOG_WARN, "directory attributes not written back ino=%llu table=%llu err=\"%s\"",
			(unsigned long long)in->ino, (unsigned long long)in->table, qfs_strerror(rc));
	return rc;
}

int qfs_fs_dattr_flush(struct qfs_fs *fs, qfs_ino_t ino)
{
	struct qfs_fs_inode *in = qfs_fs_ifind(fs, ino);
	int rc;

	if (!in)
		return 0;
	qfs_fs_ilock(in);
	rc = dattr_flush_locked(fs, in);
	pthread_mutex_unlock(&in->mu);
	qfs_fs_iput(fs, in);
	return rc;
}

/* Take the entries due by now_ms (all if now_ms is UINT64_MAX) off the
 * queue, with their references; dattr_mu held. */
static struct qfs_fs_inode *dattr_take_due(struct qfs_fs *fs, uint64_t now_ms)
{
	struct qfs_fs_inode *due = NULL, **pp = &fs->dattr_head;

	while (*pp) {
		struct qfs_fs_inode *in = *pp;
		if (now_ms != UINT64_MAX && in->dattr_due_ms > now_ms) {
			pp = &in->dnext;
			continue;
		}
		*pp = in->dnext;
		in->dattr = false; /* a change from now on queues it again (dnext) */
		in->dnext = NULL;
		in->dtnext = due;
		due = in;
	}
	return due;
}

static int by_table_ino(const void *a, const void *b)
{
	const struct qfs_fs_inode *x = *(struct qfs_fs_inode *const *)a, *y = *(struct qfs_fs_inode *const *)b;

	if (x->table != y->table)
		return x->table < y->table ? -1 : 1;
	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

/* Write back v[0..n) (one table, increasing ino, their references held)
 * as one txn: a SETATTR of each one's pending fields.  Locks their mu in
 * that order (fs_int.h).  0, or the txn's error with nothing changed. */
static int dattr_flush_batch(struct qfs_fs *fs, struct qfs_fs_inode **v, size_t n)
{
	bool *in_txn = calloc(n, sizeof(*in_txn));
	struct qfs_router_itxn t;
	size_t nops = 0;
	int rc = -ENOMEM;

	qfs_router_itxn_init(&t);
	if (!in_txn)
		goto out;
	for (size_t i = 0; i < n; i++)
		pthread_mutex_lock(&v[i]->mu);
	for (size_t i = 0; i < n; i++) {
		struct qfs_fs_inode *in = v[i];
		if (!S_ISDIR(in->type) || !in->loaded || in->attr_dirty == 0)
			continue; /* stored meanwhile */
		struct qfs_op *op = qfs_fs_add_op(&t, QFS_OP_SETATTR, IKEY(in->ino));
		if (!op)
			goto unlock;
		op->mask = in->attr_dirty;
		op->attr = in->attr;
		op->attr.flags = in->stored_flags;
		in_txn[i] = true;
		nops++;
	}
	rc = nops ? qfs_fs_run_txn(fs, v[0]->table, &t) : 0;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		if (!in_txn[i])
			continue;
		v[i]->attr_dirty = 0; /* stored: the store is the truth again */
		v[i]->loaded = false;
		v[i]->wb_err = 0;
	}
unlock:
	for (size_t i = n; i-- > 0;)
		pthread_mutex_unlock(&v[i]->mu);
out:
	qfs_router_itxn_close(&t);
	free(in_txn);
	return rc;
}

/* Write back the due list: the directories of one table (up to
 * DATTR_BATCH) as one txn; if that fails, each on its own, and those
 * that still fail are queued again for the next interval.  Drops the
 * list's references. */
#define DATTR_BATCH 256
static void dattr_flush_due(struct qfs_fs *fs, struct qfs_fs_inode *due)
{
	size_t n = 0;
	struct qfs_fs_inode **v;

	for (struct qfs_fs_inode *in = due; in; in = in->dtnext)
		n++;
	v = malloc(n * sizeof(*v));
	if (v) {
		size_t i = 0;
		for (struct qfs_fs_inode *in = due; in; in = in->dtnext)
			v[i++] = in;
		qsort(v, n, sizeof(*v), by_table_ino);
		for (i = 0; i < n;) {
			size_t j = i + 1;
			while (j < n && j - i < DATTR_BATCH && v[j]->table == v[i]->table)
				j++;
			if (j - i > 1)
				dattr_flush_batch(fs, v + i, j - i); /* failed: each alone below */
			i = j;
		}
		free(v);
	}
	while (due) {
		struct qfs_fs_inode *in = due;
		due = in->dtnext;
		qfs_fs_ilock(in);
		int rc = dattr_flush_locked(fs, in);
		int again = rc && in->loaded && in->attr_dirty;
		pthread_mutex_unlock(&in->mu);
		if (again) /* no quorum now: try again in the next interval */
			qfs_fs_dattr_queue(fs, in);
		qfs_fs_iput(fs, in);
	}
}

static void *dattr_main(void *arg)
{
	struct qfs_fs *fs = arg;

	pthread_mutex_lock(&fs->dattr_mu);
	while (!fs->dattr_stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)(QFS_FS_DATTR_MS / 4) * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&fs->dattr_cv, &fs->dattr_mu, &ts);
		if (fs->dattr_stop)
			break;
		struct qfs_fs_inode *due = dattr_take_due(fs, qfs_clock_mono_ms());
		pthread_mutex_unlock(&fs->dattr_mu);
		if (due)
			dattr_flush_due(fs, due);
		pthread_mutex_lock(&fs->dattr_mu);
	}
	pthread_mutex_unlock(&fs->dattr_mu);
	return NULL;
}

int qfs_fs_dattr_start(struct qfs_fs *fs)
{
	int rc = -pthread_create(&fs->dattr_thread, NULL, dattr_main, fs);

	if (rc)
		QFS_LOG(QFS_LOG_ERR, "directory attribute timer not started err=\"%s\"", qfs_strerror(rc));
	else
		fs->dattr_running = true;
	return rc;
}

void qfs_fs_dattr_stop(struct qfs_fs *fs)
{
	struct qfs_fs_inode *all;
	uint64_t failed = 0;

	if (fs->dattr_running) {
		pthread_mutex_lock(&fs->dattr_mu);
		fs->dattr_stop = true;
		pthread_cond_signal(&fs->dattr_cv);
		pthread_mutex_unlock(&fs->dattr_mu);
		pthread_join(fs->dattr_thread, NULL);
		fs->dattr_running = false;
	}
	pthread_mutex_lock(&fs->dattr_mu);
	all = dattr_take_due(fs, UINT64_MAX);
	pthread_mutex_unlock(&fs->dattr_mu);
	while (all) {
		struct qfs_fs_inode *in = all;
		all = in->dtnext;
		qfs_fs_ilock(in);
		failed += dattr_flush_locked(fs, in) != 0;
		pthread_mutex_unlock(&in->mu);
		qfs_fs_iput(fs, in);
	}
	if (failed)
		QFS_LOG(QFS_LOG_ERR, "directory attributes lost at unmount count=%llu", (unsigned long long)failed);
}
