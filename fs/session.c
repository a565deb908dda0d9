/*
 * session.c - set up the inode table, sweep orphans, mount, and run the
 * multi-threaded FUSE session loop until unmount or a signal.  Every
 * request runs inside one call budget (common/clock.h): the table below
 * wraps each operation of qfs_fs_ops so that all the lookups one FUSE call
 * makes share one quorum_timeout.
 * A read-only mount (-o ro) serves a copy of that table whose changing
 * operations reply EROFS, besides the kernel's own read-only flag.
 * Afterwards the mount is detached and what files still buffer is flushed.
 * libfuse's messages are routed into our log as "fuse msg=..." lines.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/log.h"
#include "fs/fs_int.h"

#define SESSION_WORKERS 64 /* FUSE worker threads at most, idle ones kept */

/* ---- the kernel's read-ahead window ---- */

/* doc/fs.md "Kernel caches": the kernel gives every FUSE mount a 128 KiB
 * read-ahead window, and a sequential read then has about one READ in
 * flight.  FUSE_INIT can only lower it (the kernel takes the least of its
 * window and the reply's when it gets the reply), so only the mount's bdi
 * in sysfs (read_ahead_kb, root's) raises it, and only after INIT.  At
 * the mount the bdi's name is read from /proc/self/mountinfo (a path walk
 * through the mountpoint would pin the mount, and an unmount right after
 * the mount then failed with EBUSY); the first request handled after
 * INIT writes it (the kernel sends none before it has INIT's reply).
 * A failure costs one log line and leaves the kernel's window. */
enum { RA_NONE, RA_READY };

/* Right after the mount: find the bdi of the newest quorumfs mount at mp
 * (the mountpoint's real path, resolved before the mount) and arm the
 * write of bytes, unless bytes is 0.  Root only. */
static void read_ahead_prepare(struct qfs_fs *fs, const char *mp, uint64_t bytes)
{
	char line[3 * PATH_MAX], em[256];
	FILE *f;

	fs->ra_state = RA_NONE;
	if (!bytes)
		return;
	if (geteuid() != 0) {
		QFS_LOG(QFS_LOG_INFO, "fuse read-ahead left at the kernel's why=\"not root: the sysfs file is root's\"");
		return;
	}
	if (!mp) {
		QFS_LOG(QFS_LOG_WARN, "fuse read-ahead left at the kernel's why=\"the mountpoint's real path was "
			"not found\"");
		return;
	}
	if (!(f = fopen("/proc/self/mountinfo", "re"))) {
		QFS_LOG(QFS_LOG_WARN, "fuse read-ahead left at the kernel's why=\"mountinfo: %s\"", strerror(errno));
		return;
	}
	fs->ra_bdi[0] = '\0';
	while (fgets(line, sizeof(line), f)) {
		struct qfs_mountinfo m;

		if (qfs_mountinfo_split(line, &m) != 0 || !m.fstype || strcmp(m.fstype, "fuse.quorumfs") != 0 ||
		    strlen(m.devno) >= sizeof(fs->ra_bdi) || strcmp(m.mountpoint, mp) != 0)
			continue;
		strcpy(fs->ra_bdi, m.devno); /* the last one is the newest */
	}
	fclose(f);
	if (!fs->ra_bdi[0]) {
		QFS_LOG(QFS_LOG_WARN, "fuse read-ahead left at the kernel's mountpoint=%s why=\"not in mountinfo\"",
			qfs_esc(mp, em, sizeof(em)));
		return;
	}
	fs->ra_bytes = bytes;
	__atomic_store_n(&fs->ra_state, RA_READY, __ATOMIC_RELEASE);
}

/* In every timed request: the first one writes the window. */
static inline void read_ahead_apply(fuse_req_t r)
{
	struct qfs_fs *fs = fuse_req_userdata(r);
	int ready = RA_READY;
	char path[64], val[32];
	int fd, n;

	if (__atomic_load_n(&fs->ra_state, __ATOMIC_ACQUIRE) != RA_READY ||
	    !__atomic_compare_exchange_n(&fs->ra_state, &ready, RA_NONE, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return;
	snprintf(path, sizeof(path), "/sys/class/bdi/%s/read_ahead_kb", fs->ra_bdi);
	n = snprintf(val, sizeof(val), "%llu\n", (unsigned long long)(fs->ra_bytes >> 10));
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, val, (size_t)n) != n)
		QFS_LOG(QFS_LOG_WARN, "fuse read-ahead left at the kernel's bdi=%s err=\"%s\"", fs->ra_bdi,
			strerror(errno));
	else
		QFS_LOG(QFS_LOG_INFO, "fuse read-ahead bdi=%s kb=%llu", fs->ra_bdi,
			(unsigned long long)(fs->ra_bytes >> 10));
	if (fd >= 0)
		close(fd);
}

/* ------------------------------------------------------- call budget */

/* Operations of qfs_fs_ops run between qfs_clock_call_begin/_end (replies
 * are sent inside the handler, on its thread).  An operation not listed
 * here runs unwrapped (each of its waits then has its own timeout). */
#define TIMED(op, params, args)                 \
	static void timed_##op params           \
	{                                       \
		read_ahead_apply(r);            \
		qfs_clock_call_begin();         \
		qfs_fs_ops.op args;             \
		qfs_clock_call_end();           \
	}
TIMED(lookup, (fuse_req_t r, fuse_ino_t p, const char *n), (r, p, n))
TIMED(getattr, (fuse_req_t r, fuse_ino_t i, struct fuse_file_info *f), (r, i, f))
TIMED(setattr, (fuse_req_t r, fuse_ino_t i, struct stat *a, int s, struct fuse_file_info *f),
      (r, i, a, s, f))
TIMED(readlink, (fuse_req_t r, fuse_ino_t i), (r, i))
TIMED(mknod, (fuse_req_t r, fuse_ino_t p, const char *n, mode_t m, dev_t d), (r, p, n, m, d))
TIMED(mkdir, (fuse_req_t r, fuse_ino_t p, const char *n, mode_t m), (r, p, n, m))
TIMED(unlink, (fuse_req_t r, fuse_ino_t p, const char *n), (r, p, n))
TIMED(rmdir, (fuse_req_t r, fuse_ino_t p, const char *n), (r, p, n))
TIMED(symlink, (fuse_req_t r, const char *l, fuse_ino_t p, const char *n), (r, l, p, n))
TIMED(rename, (fuse_req_t r, fuse_ino_t p, const char *n, fuse_ino_t np, const char *nn, unsigned fl),
      (r, p, n, np, nn, fl))
TIMED(link, (fuse_req_t r, fuse_ino_t i, fuse_ino_t np, const char *nn), (r, i, np, nn))
TIMED(open, (fuse_req_t r, fuse_ino_t i, struct fuse_file_info *f), (r, i, f))
TIMED(read, (fuse_req_t r, fuse_ino_t i, size_t sz, off_t o, struct fuse_file_info *f), (r, i, sz, o, f))
TIMED(write, (fuse_req_t r, fuse_ino_t i, const char *b, size_t sz, off_t o, struct fuse_file_info *f),
      (r, i, b, sz, o, f))
TIMED(flush, (fuse_req_t r, fuse_ino_t i, struct fuse_file_info *f), (r, i, f))
TIMED(release, (fuse_req_t r, fuse_ino_t i, struct fuse_file_info *f), (r, i, f))
TIMED(fsync, (fuse_req_t r, fuse_ino_t i, int d, struct fuse_file_info *f), (r, i, d, f))
TIMED(opendir, (fuse_req_t r, fuse_ino_t i, struct fuse_file_info *f), (r, i, f))
TIMED(readdir, (fuse_req_t r, fuse_ino_t i, size_t sz, off_t o, struct fuse_file_info *f), (r, i, sz, o, f))
TIMED(readdirplus, (fuse_req_t r, fuse_ino_t i, size_t sz, off_t o, struct fuse_file_info *f),
      (r, i, sz, o, f))
TIMED(releasedir, (fuse_req_t r, fuse_ino_t i, struct fuse_file_info *f), (r, i, f))
TIMED(fsyncdir, (fuse_req_t r, fuse_ino_t i, int d, struct fuse_file_info *f), (r, i, d, f))
TIMED(statfs, (fuse_req_t r, fuse_ino_t i), (r, i))
TIMED(setxattr, (fuse_req_t r, fuse_ino_t i, const char *n, const char *v, size_t sz, int fl),
      (r, i, n, v, sz, fl))
TIMED(getxattr, (fuse_req_t r, fuse_ino_t i, const char *n, size_t sz), (r, i, n, sz))
TIMED(listxattr, (fuse_req_t r, fuse_ino_t i, size_t sz), (r, i, sz))
TIMED(removexattr, (fuse_req_t r, fuse_ino_t i, const char *n), (r, i, n))
TIMED(access, (fuse_req_t r, fuse_ino_t i, int m), (r, i, m))
TIMED(create, (fuse_req_t r, fuse_ino_t p, const char *n, mode_t m, struct fuse_file_info *f),
      (r, p, n, m, f))
TIMED(fallocate, (fuse_req_t r, fuse_ino_t i, int m, off_t o, off_t l, struct fuse_file_info *f),
      (r, i, m, o, l, f))
#undef TIMED

/* qfs_fs_ops with every operation listed above wrapped in a call budget. */
static void timed_ops(struct fuse_lowlevel_ops *t)
{
	*t = qfs_fs_ops;
#define W(op)                      \
	do {                               \
		if (qfs_fs_ops.op)         \
			t->op = timed_##op; \
	} while (0)
	W(lookup);
	W(getattr);
	W(setattr);
	W(readlink);
	W(mknod);
	W(mkdir);
	W(unlink);
	W(rmdir);
	W(symlink);
	W(rename);
	W(link);
	W(open);
	W(read);
	W(write);
	W(flush);
	W(release);
	W(fsync);
	W(opendir);
	W(readdir);
	W(readdirplus);
	W(releasedir);
	W(fsyncdir);
	W(statfs);
	W(setxattr);
	W(getxattr);
	W(listxattr);
	W(removexattr);
	W(access);
	W(create);
	W(fallocate);
#undef W
}

struct orphan_ctx {
	qfs_ino_t *inos;
	size_t n, cap;
};

static int orphan_cb(const struct qfs_router_key *k, const void *v, size_t vl, void *arg)
{
	struct orphan_ctx *c = arg;
	struct qfs_dentry d;

	if (qfs_dentry_decode(v, vl, &d) != 0)
		return 0;
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		qfs_ino_t *ni = realloc(c->inos, cap * sizeof(*ni));
		if (!ni)
			return 1;
		c->inos = ni;
		c->cap = cap;
	}
	c->inos[c->n++] = d.ino;
	return 0;
}

struct sweep_ctx {
	struct qfs_fs *fs;
	uint64_t removed;
};

/* Remove files that were unlinked while open when the last mount ended. */
static int sweep_table(const struct qfs_table *t, void *arg)
{
	struct sweep_ctx *s = arg;
	struct orphan_ctx c = { 0 };
	struct qfs_router_range rg = qfs_router_range_dentries(QFS_FS_ORPHAN_DIR, NULL, 0);

	qfs_router_item_scan(s->fs->r, t->id, &rg, orphan_cb, &c);
	for (size_t i = 0; i < c.n; i++) {
		int rc = qfs_fs_destroy_inode(s->fs, t->id, c.inos[i]);
		if (rc) {
			char en[QFS_ESC_MAX(QFS_NAME_MAX)];
			QFS_LOG(QFS_LOG_WARN, "orphan not removed table=%s ino=%llu err=\"%s\"",
				qfs_esc(t->name, en, sizeof(en)), (unsigned long long)c.inos[i], qfs_strerror(rc));
		} else {
			s->removed++;
		}
	}
	free(c.inos);
	return 0;
}

/* ---- read-only mounts: every change replies EROFS ---- */

static void ro_fail(fuse_req_t req, enum qfs_fs_op op)
{
	qfs_fs_fail(req, op, qfs_clock_mono_ns(), -EROFS, "read-only mount (-o ro)");
}

static void ro_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi)
{
	(void)ino, (void)attr, (void)to_set, (void)fi;
	ro_fail(req, FOP_SETATTR);
}

static void ro_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	(void)parent, (void)name, (void)mode, (void)rdev;
	ro_fail(req, FOP_MKNOD);
}

static void ro_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	(void)parent, (void)name, (void)mode;
	ro_fail(req, FOP_MKDIR);
}

static void ro_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	(void)parent, (void)name;
	ro_fail(req, FOP_UNLINK);
}

static void ro_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	(void)parent, (void)name;
	ro_fail(req, FOP_RMDIR);
}

static void ro_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	(void)link, (void)parent, (void)name;
	ro_fail(req, FOP_SYMLINK);
}

static void ro_rename(fuse_req_t req, fuse_ino_t p1, const char *n1, fuse_ino_t p2, const char *n2,
		      unsigned int flags)
{
	(void)p1, (void)n1, (void)p2, (void)n2, (void)flags;
	ro_fail(req, FOP_RENAME);
}

static void ro_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	(void)ino, (void)newparent, (void)newname;
	ro_fail(req, FOP_LINK);
}

static void ro_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC))
		return ro_fail(req, FOP_OPEN);
	timed_open(req, ino, fi); /* within one call budget, as on a read-write mount */
}

static void ro_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	(void)ino, (void)buf, (void)size, (void)off, (void)fi;
	ro_fail(req, FOP_WRITE);
}

static void ro_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi)
{
	(void)parent, (void)name, (void)mode, (void)fi;
	ro_fail(req, FOP_CREATE);
}

static void ro_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size,
			int flags)
{
	(void)ino, (void)name, (void)value, (void)size, (void)flags;
	ro_fail(req, FOP_SETXATTR);
}

static void ro_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	(void)ino, (void)name;
	ro_fail(req, FOP_REMOVEXATTR);
}

static void ro_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len, struct fuse_file_info *fi)
{
	(void)ino, (void)mode, (void)off, (void)len, (void)fi;
	ro_fail(req, FOP_FALLOCATE);
}

/* qfs_fs_ops with every changing operation replaced by an EROFS reply. */
/* Replace the changing operations of ops (the timed table) by EROFS ones. */
static void ro_ops(struct fuse_lowlevel_ops *ops)
{
	ops->setattr = ro_setattr;
	ops->mknod = ro_mknod;
	ops->mkdir = ro_mkdir;
	ops->unlink = ro_unlink;
	ops->rmdir = ro_rmdir;
	ops->symlink = ro_symlink;
	ops->rename = ro_rename;
	ops->link = ro_link;
	ops->open = ro_open;
	ops->write = ro_write;
	ops->create = ro_create;
	ops->setxattr = ro_setxattr;
	ops->removexattr = ro_removexattr;
	ops->fallocate = ro_fallocate;
}

/* ---- libfuse's messages, into our log ---- */

static void fuse_log_cb(enum fuse_log_level level, const char *fmt, va_list ap)
{
	char msg[1024];
	int lvl = level <= FUSE_LOG_ERR ? QFS_LOG_ERR : level == FUSE_LOG_WARNING ? QFS_LOG_WARN :
		  level == FUSE_LOG_DEBUG ? QFS_LOG_DEBUG : QFS_LOG_INFO;
	size_t n;

	if (lvl > qfs_log_level)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = '\0';
	if (n == 0)
		return;
	qfs_log_write(lvl, "fuse msg=\"%s\"", msg);
}

/* After the loop: write back what files still buffer (written but neither
 * closed nor fsync'd when the signal came).  No FUSE thread runs any more. */
static void flush_all(struct qfs_fs *fs)
{
	uint64_t flushed = 0, failed = 0;

	for (size_t i = 0; i < fs->itab_size; i++) {
		for (struct qfs_fs_inode *in = fs->itab[i]; in; in = in->hnext) {
			qfs_fs_ilock(in);
			if (in->chunks || in->attr_dirty || in->pend) { /* pend: a create not stored yet */
				int rc = qfs_fs_flush_locked(fs, in);
				if (rc) {
					failed++;
					QFS_LOG(QFS_LOG_ERR, "unmount flush failed ino=%llu err=\"%s\"",
						(unsigned long long)in->ino, qfs_strerror(rc));
				} else {
					flushed++;
				}
			}
			pthread_mutex_unlock(&in->mu);
		}
	}
	if (flushed || failed)
		QFS_LOG(failed ? QFS_LOG_ERR : QFS_LOG_INFO, "unmount flushed open files count=%llu failed=%llu",
			(unsigned long long)flushed, (unsigned long long)failed);
}

int qfs_fs_run(struct qfs_router *r, const struct qfs_fs_opts *o)
{
	struct qfs_fs *fs;
	struct fuse_session *se;
	static struct fuse_lowlevel_ops timed; /* fuse_session_new copies it; static to be sure */
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	char opts[4096], em[QFS_ESC_MAX(PATH_MAX)], ed[QFS_ESC_MAX(PATH_MAX)];
	int rc;

	fs = calloc(1, sizeof(*fs));
	if (!fs)
		return -ENOMEM;
	fs->r = r;
	fs->o = o;
	fs->timeout = o->cache_off ? 0.0
		      : o->cache_timeout_ms ? (double)o->cache_timeout_ms / 1000.0 : QFS_FS_TIMEOUT_DEFAULT;
	fs->started_ms = qfs_clock_mono_ms();
	qfs_clock_now(&fs->mounted);
	pthread_mutex_init(&fs->root_mu, NULL);
	pthread_mutex_init(&fs->pend_mu, NULL);
	pthread_mutex_init(&fs->dirh_mu, NULL);
	pthread_mutex_init(&fs->dattr_mu, NULL);
	pthread_mutex_init(&fs->dac_mu, NULL);
	pthread_mutex_init(&fs->neg_mu, NULL);
	pthread_cond_init(&fs->dattr_cv, NULL);
	rc = qfs_fs_itab_init(fs);
	if (rc)
		goto err_free;
	if (!qfs_fs_iget(fs, FUSE_ROOT_ID, QFS_META_TABLE, S_IFDIR, 0)) {
		rc = -ENOMEM;
		goto err_itab;
	}

	struct sweep_ctx sw = { fs, 0 };
	if (o->readonly)
		QFS_LOG(QFS_LOG_INFO, "orphan sweep skipped why=\"read-only mount: files unlinked while open at the last stop stay until a read-write mount\"");
	else
		qfs_router_table_list(r, "", sweep_table, &sw);
	if (sw.removed)
		QFS_LOG(QFS_LOG_INFO, "removed files unlinked while open at the last stop count=%llu",
			(unsigned long long)sw.removed);

	/* noatime: reads never update atime (the kernel does not for FUSE
	 * either), and the mount says so in /proc/mounts; doc/fs.md */
	fuse_set_log_func(fuse_log_cb);
	timed_ops(&timed);
	if (o->readonly)
		ro_ops(&timed);
	/* fsname: the data directory, so that /proc/mounts, df and findmnt name
	 * it and mount -a sees an fstab line as mounted already (libfuse's
	 * option syntax: a comma or backslash escaped with a backslash) */
	char fsname[2 * PATH_MAX + 1];
	size_t fn = 0;
	for (const char *c = o->data_dir ? o->data_dir : "quorumfs"; *c && fn + 2 < sizeof(fsname); c++) {
		if (*c == ',' || *c == '\\')
			fsname[fn++] = '\\';
		fsname[fn++] = *c;
	}
	fsname[fn] = '\0';
	if ((size_t)snprintf(opts, sizeof(opts), "%sdefault_permissions,noatime,fsname=%s,subtype=quorumfs%s%s%s",
			     geteuid() == 0 ? "allow_other," : "", fsname, o->readonly ? ",ro" : "",
			     o->kernel_opts && *o->kernel_opts ? "," : "",
			     o->kernel_opts ? o->kernel_opts : "") >= sizeof(opts)) {
		rc = -E2BIG;
		goto err_args;
	}
	if (fuse_opt_add_arg(&args, "quorumfs") || fuse_opt_add_arg(&args, "-o") ||
	    fuse_opt_add_arg(&args, opts) || (o->debug && fuse_opt_add_arg(&args, "-d"))) {
		rc = -ENOMEM;
		goto err_args;
	}
	rc = qfs_fs_avail_start(fs);
	if (rc)
		goto err_args;
	if (!o->readonly && (rc = qfs_fs_dattr_start(fs)))
		goto err_args;
	se = fuse_session_new(&args, &timed, sizeof(timed), fs);
	if (!se) {
		QFS_LOG(QFS_LOG_ERR, "fuse session could not be created");
		rc = -EIO;
		goto err_args;
	}
	if (fuse_set_signal_handlers(se) != 0) {
		rc = -EIO;
		goto err_session;
	}
	/* (before the mount: a path through the mountpoint then asks us) */
	char *mp_real = o->read_ahead_bytes ? realpath(o->mountpoint, NULL) : NULL;

	if (fuse_session_mount(se, o->mountpoint) != 0) {
		free(mp_real);
		QFS_LOG(QFS_LOG_ERR, "fuse mount failed mountpoint=%s hint=\"see the fuse msg line above; is /dev/fuse usable?\"",
			qfs_esc(o->mountpoint, em, sizeof(em)));
		rc = -EIO;
		goto err_signals;
	}
	fs->se = se;
	read_ahead_prepare(fs, mp_real, o->read_ahead_bytes);
	free(mp_real);
	QFS_LOG(QFS_LOG_INFO, "mounted mountpoint=%s data_dir=%s%s", qfs_esc(o->mountpoint, em, sizeof(em)),
		qfs_esc(o->data_dir ? o->data_dir : "-", ed, sizeof(ed)), o->readonly ? " ro=1" : "");
	if (o->ready)
		o->ready(o->ready_arg);
	if (o->single_thread) {
		rc = fuse_session_loop(se);
	} else {
		struct fuse_loop_config *cfg = fuse_loop_cfg_create();
		if (!cfg) {
			rc = -ENOMEM;
		} else {
			fuse_loop_cfg_set_clone_fd(cfg, 0);
			/* An idle worker is kept (up to the 64): with an idle
			 * limit below the busy count (8 fsync writers: 8
			 * workers waiting in their proposals) libfuse started
			 * a worker whenever none was free and ended one
			 * whenever more than the limit were, a clone and an
			 * exit every ~24 fsync() calls (doc/fs.md "FUSE
			 * workers"). */
			fuse_loop_cfg_set_max_threads(cfg, SESSION_WORKERS);
			fuse_loop_cfg_set_idle_threads(cfg, SESSION_WORKERS);
			rc = fuse_session_loop_mt(se, cfg);
			fuse_loop_cfg_destroy(cfg);
		}
	}
	int sig = rc > 0 ? rc : 0;
	if (rc > 0) /* a signal ended the loop */
		rc = 0;
	fs->se = NULL;
	fuse_session_unmount(se);
	qfs_fs_dattr_stop(fs); /* directories' pending attributes (pend.c) */
	flush_all(fs);
	QFS_LOG(QFS_LOG_INFO, "unmounted mountpoint=%s why=%s%s", qfs_esc(o->mountpoint, em, sizeof(em)),
		sig ? "SIG" : "", sig ? sigabbrev_np(sig) ? sigabbrev_np(sig) : "NAL" : "umount");
err_signals:
	fuse_remove_signal_handlers(se);
err_session:
	fuse_session_destroy(se);
err_args:
	qfs_fs_dattr_stop(fs); /* no-op if stopped above or never started */
	qfs_fs_avail_stop(fs);
	fuse_opt_free_args(&args);
err_itab:
	qfs_fs_itab_close(fs);
err_free:
	qfs_fs_dir_close_all(fs);
	pthread_mutex_destroy(&fs->dirh_mu);
	pthread_mutex_destroy(&fs->root_mu);
	pthread_mutex_destroy(&fs->pend_mu);
	pthread_mutex_destroy(&fs->dattr_mu);
	pthread_mutex_destroy(&fs->dac_mu);
	pthread_mutex_destroy(&fs->neg_mu);
	pthread_cond_destroy(&fs->dattr_cv);
	free(fs);
	return rc;
}
