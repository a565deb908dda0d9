/*
 * xattr.c - extended attributes, kept in the inode item.  Namespaces user.,
 * trusted. and security. are stored, and the two POSIX ACLs of the system.
 * namespace (system.posix_acl_access, system.posix_acl_default: acl.c);
 * other system.* names answer EOPNOTSUPP.  As Linux does, trusted.* is for
 * root only (CAP_SYS_ADMIN; here uid 0): hidden from listxattr, ENODATA on
 * get, EPERM on set and remove for anyone else.  Limits: name 255 bytes
 * (ERANGE), value 64 KiB (E2BIG), 64 KiB of names and values per inode
 * (ENOSPC, enforced where the txn applies).  A file without a
 * security.selinux label answers EOPNOTSUPP for it, not ENODATA, so that
 * `ls -l` stops asking it of every file (doc/fs.md "Kernel caches"); a
 * label that is set is stored and answered.  On a table directory,
 * user.quorumfs.capacity, .rcu and .wcu are the table's capacity: their
 * values are checked (EINVAL) and the router's admission control reloads
 * them once stored (doc/admission.md).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/clock.h"
#include "common/log.h"
#include "fs/fs_int.h"
#include "router/admit.h"

#define QFS_XATTR_SELINUX "security.selinux" /* absent: EOPNOTSUPP */

static int xattr_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0)
		return -EINVAL;
	if (n > QFS_XATTR_NAME_MAX)
		return -ERANGE;
	if (strcmp(name, QFS_ACL_ACCESS) == 0 || strcmp(name, QFS_ACL_DEFAULT) == 0)
		return 0;
	static const char *const ns[] = { "user.", "trusted.", "security." };
	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
		size_t k = strlen(ns[i]);
		if (strncmp(name, ns[i], k) == 0)
			return n > k ? 0 : -EINVAL; /* a namespace with no name in it */
	}
	return -EOPNOTSUPP;
}

static int is_trusted(const char *name)
{
	return strncmp(name, "trusted.", 8) == 0;
}

static int is_security(const char *name)
{
	return strncmp(name, "security.", 9) == 0;
}

/* An absent security.selinux answers EOPNOTSUPP (see qfs_fs_op_getxattr),
 * as a FUSE mount answers on a host with SELinux on (genfs labelling). */
static int is_selinux(const char *name)
{
	return strcmp(name, QFS_XATTR_SELINUX) == 0;
}

static int is_acl(const char *name)
{
	return strncmp(name, "system.posix_acl_", 17) == 0;
}

/* Remember what the stored inode says about in's xattrs (in->mu held, no
 * xattr change since the read began). */
static void note_xattrs(struct qfs_fs_inode *in, const struct qfs_inode *inode)
{
	int nosec = 1;

	for (uint32_t i = 0; i < inode->nxattrs && nosec; i++)
		nosec = !is_security(inode->xattrs[i].name);
	in->nosec = nosec;
	in->noxattr = inode->nxattrs == 0;
}

/* See fs_int.h. */
int qfs_fs_inode_attr_x(struct qfs_fs *fs, struct qfs_fs_inode *in, struct qfs_attr *out)
{
	struct qfs_inode inode;
	int rc = 0;

	qfs_fs_ilock(in);
	if (in->loaded) {
		*out = in->attr;
		out->blocks = qfs_fs_blocks(in);
		pthread_mutex_unlock(&in->mu);
		return 0;
	}
	/* the store's xattrs change only under in->mu or between two xgen
	 * bumps of xattr_change, the second of which clears what is noted here */
	qfs_inode_init(&inode);
	rc = qfs_router_get_inode(fs->r, in->table, in->ino, &inode);
	if (rc == 0) {
		*out = inode.a;
		note_xattrs(in, &inode);
	}
	pthread_mutex_unlock(&in->mu);
	qfs_inode_close(&inode);
	return rc;
}

/* Root's requests may use trusted.* (Linux asks for CAP_SYS_ADMIN). */
static int privileged(fuse_req_t req)
{
	return fuse_req_ctx(req)->uid == 0;
}

/* Set the access ACL of in to value: the mode's permission bits follow it
 * (posix_acl_update_mode), and an ACL that says no more than the mode is
 * not kept (as ext4 does), all in one txn.  0 or the txn's error. */
static int acl_set_access(struct qfs_fs *fs, struct qfs_fs_inode *in, const char *value, size_t size, int flags)
{
	struct qfs_router_itxn t;
	struct qfs_op *op;
	struct qfs_ts now;
	struct qfs_attr a;
	int rc;

	qfs_fs_ilock(in);
	if (in->loaded) {
		a = in->attr;
		rc = 0;
	} else {
		rc = qfs_router_get_attr(fs->r, in->table, in->ino, &a);
	}
	if (rc)
		goto out;
	uint32_t mode = a.mode & 07777u;
	int equiv = qfs_fs_acl_mode(value, size, &mode);
	struct qfs_router_key key = IKEY(in->ino);
	qfs_clock_now(&now);
	if (equiv && in->loaded && in->nopen > 0 && in->wb_err == 0 && S_ISREG(in->type) && !flags) {
		/* An ACL that says no more than the mode is a chmod (cp -a sets
		 * permissions this way): on a file with pending write-back it
		 * joins that write-back as op_setattr's chmod does, and the
		 * flush drops any stored access ACL (doc/fs.md). */
		in->attr.mode = (in->attr.mode & S_IFMT) | mode;
		in->attr.ctime = now;
		in->attr_dirty |= QFS_SET_MODE | QFS_SET_CTIME;
		in->acl_drop = true;
		goto out;
	}
	if (in->pend && (rc = qfs_fs_flush_locked(fs, in))) /* the txn below needs the inode stored */
		goto out;
	in->xgen++;
	in->noxattr = false; /* held under in->mu until the txn is done */
	qfs_router_itxn_init(&t);
	rc = -ENOMEM;
	if (!(op = qfs_fs_add_op(&t, QFS_OP_XSET, key)))
		goto out_txn;
	op->name = QFS_ACL_ACCESS;
	op->val = (const uint8_t *)value;
	op->val_len = (uint32_t)size;
	op->flags = flags;
	if (equiv) { /* set (for the flags' checks), then drop: present or not before */
		if (!(op = qfs_fs_add_op(&t, QFS_OP_XDEL, key)))
			goto out_txn;
		op->name = QFS_ACL_ACCESS;
	}
	if (!(op = qfs_fs_add_op(&t, QFS_OP_SETATTR, key)))
		goto out_txn;
	/* a directory's pending owner and times (pend.c) join this txn:
	 * cp -a sets them, then the mode by ACL, one round in all */
	int joined = S_ISDIR(in->type) && in->loaded && in->attr_dirty;
	if (joined)
		op->attr = in->attr;
	op->mask = (joined ? in->attr_dirty : 0) | QFS_SET_MODE | QFS_SET_CTIME;
	op->attr.mode = mode;
	op->attr.ctime = now;
	rc = qfs_fs_run_txn(fs, in->table, &t);
	if (rc == 0 && joined) {
		in->attr_dirty = 0; /* stored: the store is the truth again */
		in->loaded = false;
	}
	if (rc == 0 && in->loaded) {
		in->attr.mode = (in->attr.mode & S_IFMT) | mode;
		in->attr.ctime = now;
		/* the ACL stored now replaces the one a deferred chmod by ACL
		 * was to drop: the write-back must not drop this one */
		in->acl_drop = false;
	}
out_txn:
	qfs_router_itxn_close(&t);
out:
	pthread_mutex_unlock(&in->mu);
	return rc;
}

int qfs_fs_acl_chmod_locked(struct qfs_fs *fs, struct qfs_fs_inode *in, uint32_t mode)
{
	struct qfs_inode inode;
	struct qfs_router_itxn t;
	struct qfs_op *op;
	struct qfs_ts now;
	int rc = 0;

	qfs_inode_init(&inode);
	if (in->pend && !in->pend->has_acl)
		goto out; /* created without an access ACL, not stored yet */
	if (in->pend && (rc = qfs_fs_flush_locked(fs, in))) /* store it, then rewrite its ACL */
		goto out;
	rc = qfs_router_get_inode(fs->r, in->table, in->ino, &inode);
	if (rc)
		goto out;
	const struct qfs_xattr *x = qfs_inode_xattr_find(&inode, QFS_ACL_ACCESS);
	if (!x || qfs_fs_acl_check(x->value, x->len))
		goto out; /* no ACL: the mode is all there is */
	qfs_fs_acl_chmod(x->value, x->len, mode);
	struct qfs_router_key key = IKEY(in->ino);
	qfs_clock_now(&now);
	qfs_router_itxn_init(&t);
	rc = -ENOMEM;
	if ((op = qfs_fs_add_op(&t, QFS_OP_XSET, key))) {
		op->name = QFS_ACL_ACCESS;
		op->val = x->value;
		op->val_len = x->len;
		if ((op = qfs_fs_add_op(&t, QFS_OP_SETATTR, key))) {
			op->mask = QFS_SET_MODE | QFS_SET_CTIME;
			op->attr.mode = mode & 07777u;
			op->attr.ctime = now;
			rc = qfs_fs_run_txn(fs, in->table, &t);
		}
	}
	qfs_router_itxn_close(&t);
out:
	qfs_inode_close(&inode);
	return rc;
}

/* Is ino a table directory (the table's own root inode, below the mount
 * root)?  Its user.quorumfs.* xattrs are the table's settings. */
static int is_table_dir(struct qfs_fs *fs, fuse_ino_t ino)
{
	struct qfs_fs_inode *in = qfs_fs_get_inode(fs, ino);
	int yes;

	if (!in)
		return 0;
	yes = ino != FUSE_ROOT_ID && in->ino == in->table && S_ISDIR(in->type);
	qfs_fs_iput(fs, in);
	return yes;
}

/* Set (XSET) or remove (XDEL) xattr name of ino and bump its ctime, as one
 * txn; a buffered file's in-memory ctime follows.  0 or the txn's error. */
static int xattr_change(struct qfs_fs *fs, fuse_ino_t ino, enum qfs_op_kind kind, const char *name,
			const char *value, size_t size, int flags)
{
	struct qfs_router_itxn t;
	struct qfs_op *op;
	struct qfs_ts now;
	int rc = -ENOMEM;
	struct qfs_fs_inode *in = qfs_fs_get_inode(fs, ino);

	if (!in)
		return -ESTALE;
	if ((rc = qfs_fs_pend_flush_ino(fs, in))) {
		qfs_fs_iput(fs, in);
		return rc;
	}
	struct qfs_router_key key = IKEY(ino);
	qfs_clock_now(&now);
	qfs_router_itxn_init(&t);
	qfs_fs_ilock(in);
	in->xgen++;
	in->noxattr = false;
	if (is_security(name))
		in->nosec = false; /* before the txn: a reader never caches "none" past it */
	pthread_mutex_unlock(&in->mu);
	if ((op = qfs_fs_add_op(&t, kind, key))) {
		op->name = name;
		op->val = (const uint8_t *)value;
		op->val_len = (uint32_t)size;
		op->flags = flags;
		if ((op = qfs_fs_add_op(&t, QFS_OP_SETATTR, key))) {
			op->mask = QFS_SET_CTIME;
			op->attr.ctime = now;
			rc = qfs_fs_run_txn(fs, in->table, &t);
		}
	}
	qfs_router_itxn_close(&t);
	qfs_fs_ilock(in);
	in->xgen++; /* and after it: a read that overlapped the txn caches nothing */
	in->noxattr = false;
	if (is_security(name))
		in->nosec = false;
	if (rc == 0 && in->loaded)
		in->attr.ctime = now;
	pthread_mutex_unlock(&in->mu);
	qfs_fs_iput(fs, in);
	return rc;
}

void qfs_fs_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size, int flags)
{
	struct qfs_fs *fs = qfs_fs_of(req);
	uint64_t t0 = qfs_clock_mono_ns();
	int rc;

	if (qfs_fs_is_ctl(ino))
		return qfs_fs_fail(req, FOP_SETXATTR, t0, -EROFS, "control tree is read-only");
	if ((rc = xattr_name_ok(name)))
		return qfs_fs_fail(req, FOP_SETXATTR, t0, rc, "xattr name=%.64s (namespaces: user. trusted. security.)", name);
	if (size > QFS_XATTR_VALUE_MAX)
		return qfs_fs_fail(req, FOP_SETXATTR, t0, -E2BIG, "xattr value of %zu bytes, limit %d", size, QFS_XATTR_VALUE_MAX);
	if (is_trusted(name) && !privileged(req))
		return qfs_fs_fail(req, FOP_SETXATTR, t0, -EPERM, "trusted.* is for root name=%.64s", name);
	if (is_acl(name)) {
		if ((rc = qfs_fs_acl_check(value, size)))
			return qfs_fs_fail(req, FOP_SETXATTR, t0, rc, "malformed POSIX ACL name=%s size=%zu", QFS_ESC_NAME(name), size);
		struct qfs_fs_inode *in = qfs_fs_get_inode(fs, ino);
		if (!in)
			return qfs_fs_fail(req, FOP_SETXATTR, t0, -ESTALE, "unknown ino=%lu", ino);
		if (strcmp(name, QFS_ACL_DEFAULT) == 0 && !S_ISDIR(in->type)) {
			qfs_fs_iput(fs, in);
			return qfs_fs_fail(req, FOP_SETXATTR, t0, -EACCES, "a default ACL is for directories ino=%lu", ino);
		}
		if (S_ISLNK(in->type)) {
			qfs_fs_iput(fs, in);
			return qfs_fs_fail(req, FOP_SETXATTR, t0, -EOPNOTSUPP, "symlinks have no ACL ino=%lu", ino);
		}
		if (strcmp(name, QFS_ACL_ACCESS) == 0) {
			rc = acl_set_access(fs, in, value, size, flags);
			qfs_fs_iput(fs, in);
			if (rc)
				return qfs_fs_fail(req, FOP_SETXATTR, t0, rc, "ino=%lu name=%s", ino, QFS_ESC_NAME(name));
			return qfs_fs_ok(req, FOP_SETXATTR, t0);
		}
		qfs_fs_iput(fs, in);
	}
	int setting = qfs_admit_is_setting(name) && is_table_dir(fs, ino);
	if (setting) { /* a table's capacity (doc/admission.md): checked before it is stored */
		struct qfs_admit_cap cap = { .mode = QFS_ADMIT_ON_DEMAND };
		if (qfs_admit_parse(name, value, size, &cap) <= 0)
			return qfs_fs_fail(req, FOP_SETXATTR, t0, -EINVAL,
					   "bad table setting ino=%lu name=%.64s value=%.*s (capacity: on-demand|provisioned; rcu, wcu: 1..%d)",
					   ino, name, (int)(size < 32 ? size : 32), value ? value : "", QFS_ADMIT_UNITS_MAX);
	}
	rc = xattr_change(fs, ino, QFS_OP_XSET, name, value, size, flags);
	if (rc == 0 && setting)
		qfs_router_capacity_changed(fs->r, (qfs_table_t)ino);
	if (rc == -ENOSPC)
		return qfs_fs_fail(req, FOP_SETXATTR, t0, rc, "xattrs of ino=%lu would exceed %d bytes", ino, QFS_XATTR_TOTAL_MAX);
	if (rc)
		return qfs_fs_fail(req, FOP_SETXATTR, t0, rc, "ino=%lu name=%.64s", ino, name);
	qfs_fs_ok(req, FOP_SETXATTR, t0);
}

void qfs_fs_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct qfs_fs *fs = qfs_fs_of(req);
	uint64_t t0 = qfs_clock_mono_ns();
	struct qfs_inode inode;
	int rc;

	if (qfs_fs_is_ctl(ino))
		return qfs_fs_fail(req, FOP_GETXATTR, t0, -ENODATA, "control tree has no xattrs");
	if ((rc = xattr_name_ok(name)))
		return qfs_fs_fail(req, FOP_GETXATTR, t0, rc, "xattr name=%.64s", name);
	if (is_trusted(name) && !privileged(req))
		return qfs_fs_fail(req, FOP_GETXATTR, t0, -ENODATA, "trusted.* is for root name=%.64s", name);
	struct qfs_fs_inode *in = qfs_fs_get_inode(fs, ino);
	if (!in)
		return qfs_fs_fail(req, FOP_GETXATTR, t0, -ESTALE, "unknown ino=%lu", ino);
	/* The kernel asks for security.capability before every write(): once
	 * we know the inode has no security.* xattr, answer without reading it.
	 * security.selinux, which `ls -l` asks of every file (libselinux's
	 * lgetfilecon), answers EOPNOTSUPP when the file has none, on which
	 * ls stops asking for the rest of the device (coreutils caches
	 * "unsupported" per st_dev); a label that was set is answered. */
	int sec = is_security(name);
	int nosup = is_selinux(name) ? -EOPNOTSUPP : -ENODATA;
	/* not qfs_fs_ilock: what is known does not change under a write-back
	 * behind (it stores data and attributes, and a dropped ACL: with it in
	 * flight, acl_drop reads false and the read below waits for it) */
	pthread_mutex_lock(&in->mu);
	int known = in->noxattr || (sec && in->nosec) || (in->acl_drop && strcmp(name, QFS_ACL_ACCESS) == 0);
	uint32_t xgen = in->xgen;
	pthread_mutex_unlock(&in->mu);
	if (known) {
		qfs_fs_iput(fs, in);
		return qfs_fs_fail(req, FOP_GETXATTR, t0, nosup, "ino=%lu name=%.64s (none cached)", ino, name);
	}
	qfs_inode_init(&inode);
	rc = qfs_fs_pend_flush_ino(fs, in); /* read from the store: store it first */
	if (rc == 0)
		rc = qfs_router_get_inode(fs->r, in->table, in->ino, &inode);
	if (rc == 0) {
		qfs_fs_ilock(in);
		if (in->xgen == xgen) /* no xattr change raced with the read */
			note_xattrs(in, &inode);
		pthread_mutex_unlock(&in->mu);
	}
	qfs_fs_iput(fs, in);
	if (rc) {
		qfs_inode_close(&inode);
		return qfs_fs_fail(req, FOP_GETXATTR, t0, rc, "ino=%lu", ino);
	}
	const struct qfs_xattr *x = qfs_inode_xattr_find(&inode, name);
	if (!x) {
		qfs_inode_close(&inode);
		return qfs_fs_fail(req, FOP_GETXATTR, t0, nosup, "ino=%lu name=%.64s", ino, name);
	}
	if (size == 0) {
		qfs_fs_done(req, FOP_GETXATTR, t0, 0);
		fuse_reply_xattr(req, x->len);
	} else if (size < x->len) {
		uint32_t need = x->len;
		qfs_inode_close(&inode);
		return qfs_fs_fail(req, FOP_GETXATTR, t0, -ERANGE, "buffer %zu < value %u", size, need);
	} else {
		qfs_fs_done(req, FOP_GETXATTR, t0, 0);
		fuse_reply_buf(req, (const char *)x->value, x->len);
	}
	qfs_inode_close(&inode);
}

void qfs_fs_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct qfs_fs *fs = qfs_fs_of(req);
	uint64_t t0 = qfs_clock_mono_ns();
	struct qfs_inode inode;
	struct qfs_buf b;
	int rc;

	if (qfs_fs_is_ctl(ino)) {
		qfs_fs_done(req, FOP_LISTXATTR, t0, 0);
		if (size == 0)
			fuse_reply_xattr(req, 0);
		else
			fuse_reply_buf(req, NULL, 0);
		return;
	}
	struct qfs_fs_inode *in = qfs_fs_get_inode(fs, ino);
	if (!in)
		return qfs_fs_fail(req, FOP_LISTXATTR, t0, -ESTALE, "unknown ino=%lu", ino);
	qfs_inode_init(&inode);
	rc = qfs_fs_pend_flush_ino(fs, in);
	if (rc == 0)
		rc = qfs_router_get_inode(fs->r, in->table, in->ino, &inode);
	if (rc) {
		qfs_fs_iput(fs, in);
		qfs_inode_close(&inode);
		return qfs_fs_fail(req, FOP_LISTXATTR, t0, rc, "ino=%lu", ino);
	}
	qfs_buf_init(&b);
	int root = privileged(req);
	qfs_fs_ilock(in);
	int acl_gone = in->acl_drop; /* a deferred chmod by ACL drops it at write-back */
	pthread_mutex_unlock(&in->mu);
	qfs_fs_iput(fs, in);
	for (uint32_t i = 0; i < inode.nxattrs; i++)
		if ((root || !is_trusted(inode.xattrs[i].name)) &&
		    !(acl_gone && strcmp(inode.xattrs[i].name, QFS_ACL_ACCESS) == 0))
			qfs_buf_put(&b, inode.xattrs[i].name, strlen(inode.xattrs[i].name) + 1);
	qfs_inode_close(&inode);
	if (b.err) {
		qfs_buf_close(&b);
		return qfs_fs_fail(req, FOP_LISTXATTR, t0, -ENOMEM, "ino=%lu", ino);
	}
	if (size == 0) {
		qfs_fs_done(req, FOP_LISTXATTR, t0, 0);
		fuse_reply_xattr(req, b.len);
	} else if (size < b.len) {
		size_t need = b.len;
		qfs_buf_close(&b);
		return qfs_fs_fail(req, FOP_LISTXATTR, t0, -ERANGE, "buffer %zu < list %zu", size, need);
	} else {
		qfs_fs_done(req, FOP_LISTXATTR, t0, 0);
		fuse_reply_buf(req, (const char *)b.data, b.len);
	}
	qfs_buf_close(&b);
}

/* 1 if the stored inode ino (not a pending create) has no xattr name: its
 * removal fails with ENODATA without a txn (cp -a removes the default ACL
 * of every directory it copies; that was a quorum round each).  0 when it
 * may exist or the read failed: the txn decides. */
static int xattr_surely_absent(struct qfs_fs *fs, fuse_ino_t ino, const char *name)
{
	struct qfs_fs_inode *in = qfs_fs_get_inode(fs, ino);
	struct qfs_inode inode;
	int absent = 0;

	if (!in)
		return 0;
	qfs_fs_ilock(in);
	int pend = in->pend != NULL;
	pthread_mutex_unlock(&in->mu);
	qfs_inode_init(&inode);
	if (!pend && qfs_router_get_inode(fs->r, in->table, in->ino, &inode) == 0)
		absent = qfs_inode_xattr_find(&inode, name) == NULL;
	qfs_inode_close(&inode);
	qfs_fs_iput(fs, in);
	return absent;
}

void qfs_fs_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct qfs_fs *fs = qfs_fs_of(req);
	uint64_t t0 = qfs_clock_mono_ns();
	int rc;

	if (qfs_fs_is_ctl(ino))
		return qfs_fs_fail(req, FOP_REMOVEXATTR, t0, -EROFS, "control tree is read-only");
	if ((rc = xattr_name_ok(name)))
		return qfs_fs_fail(req, FOP_REMOVEXATTR, t0, rc, "xattr name=%.64s", name);
	if (is_trusted(name) && !privileged(req))
		return qfs_fs_fail(req, FOP_REMOVEXATTR, t0, -EPERM, "trusted.* is for root name=%.64s", name);
	rc = xattr_surely_absent(fs, ino, name) ? -ENODATA : xattr_change(fs, ino, QFS_OP_XDEL, name, NULL, 0, 0);
	if (rc)
		return qfs_fs_fail(req, FOP_REMOVEXATTR, t0, rc, "ino=%lu name=%.64s", ino, name);
	if (qfs_admit_is_setting(name) && is_table_dir(fs, ino))
		qfs_router_capacity_changed(fs->r, (qfs_table_t)ino); /* back to the default */
	qfs_fs_ok(req, FOP_REMOVEXATTR, t0);
}

