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
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/key.h"
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
	qfs_fs_pend_free(in->pend);
	in->pend = NULL;
}

int qfs_fs_pend_flush_dir(struct qfs_fs *fs, qfs_ino_t dir)
{
	for (;;) {
		struct qfs_fs_inode *in;
		pthread_mutex_lock(&fs->pend_mu);
		for (in = fs->pend_head; in; in = in->pnext)
			if (in->pend->parent == dir)
				break;
		if (in)
			qfs_fs_ipin(fs, in);
		pthread_mutex_unlock(&fs->pend_mu);
		if (!in)
			return 0;
		qfs_ino_t ino = in->ino;
		pthread_mutex_lock(&in->mu);
		int r = in->pend ? qfs_fs_flush_locked(fs, in) : 0;
		int still = in->pend != NULL;
		pthread_mutex_unlock(&in->mu);
		qfs_fs_iput(fs, in);
		if (r) {
			QFS_LOG(QFS_LOG_WARN, "pending create not written back dir=%llu ino=%llu err=%s",
				(unsigned long long)dir, (unsigned long long)ino, qfs_strerror(r));
			return r;
		}
		if (still) /* cannot happen: a successful write-back ends pending */
			return -EIO;
	}
}

int qfs_fs_pend_flush_ino(struct qfs_fs *fs, struct qfs_fs_inode *in)
{
	int rc = 0;

	pthread_mutex_lock(&in->mu);
	if (in->pend)
		rc = qfs_fs_flush_locked(fs, in);
	pthread_mutex_unlock(&in->mu);
	return rc;
}

int qfs_fs_pend_add_ops(struct qfs_txn *t, struct qfs_fs_pend *p)
{
	struct qfs_op *op;

	if (!(op = qfs_fs_add_op(t, QFS_OP_EXPECT_PRESENT, p->pkey, p->plen)))
		return -ENOMEM;
	op->err = -ENOENT; /* the directory was removed meanwhile */
	if (!(op = qfs_fs_add_op(t, QFS_OP_EXPECT_ABSENT, p->dkey, p->dlen)))
		return -ENOMEM;
	op->err = -EEXIST;
	if (!(op = qfs_fs_add_op(t, QFS_OP_PUT, p->dkey, p->dlen)))
		return -ENOMEM;
	op->val = p->db.data;
	op->val_len = (uint32_t)p->db.len;
	if (!(op = qfs_fs_add_op(t, QFS_OP_PUT, p->ikey, p->ilen)))
		return -ENOMEM;
	op->val = p->ib.data;
	op->val_len = (uint32_t)p->ib.len;
	/* the directory changed when the file was created */
	if (!(op = qfs_fs_add_op(t, QFS_OP_SETATTR, p->pkey, p->plen)))
		return -ENOMEM;
	op->mask = QFS_SET_MTIME | QFS_SET_CTIME;
	op->attr.mtime = p->created;
	op->attr.ctime = p->created;
	return 0;
}
