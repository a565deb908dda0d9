/*
 * session.c - set up the inode table, sweep orphans, mount, and run the
 * multi-threaded FUSE session loop until unmount or a signal.  Every
 * request runs inside one call budget (common/clock.h): the table below
 * wraps each operation of qfs_fs_ops so that all the lookups one FUSE call
 * makes share one quorum_timeout.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/key.h"
#include "common/log.h"
#include "fs/fs_int.h"

/* ------------------------------------------------------- call budget */

/* Operations of qfs_fs_ops run between qfs_clock_call_begin/_end (replies
 * are sent inside the handler, on its thread).  An operation not listed
 * here runs unwrapped (each of its waits then has its own timeout). */
#define TIMED(op, params, args)                 \
	static void timed_##op params           \
	{                                       \
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

static int orphan_cb(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, void *arg)
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
	uint8_t lo[QFS_KEY_MAX], hi[QFS_KEY_MAX];
	size_t lol, hil;

	qfs_key_dentry_range(lo, &lol, hi, &hil, QFS_FS_ORPHAN_DIR);
	qfs_router_scan(s->fs->r, t->group, lo, lol, hi, hil, orphan_cb, &c);
	for (size_t i = 0; i < c.n; i++) {
		int rc = qfs_fs_destroy_inode(s->fs, t->group, c.inos[i]);
		if (rc)
			QFS_LOG(QFS_LOG_WARN, "orphan not removed table=%s ino=%llu err=%s", t->name,
				(unsigned long long)c.inos[i], qfs_strerror(rc));
		else
			s->removed++;
	}
	free(c.inos);
	return 0;
}

int qfs_fs_run(struct qfs_router *r, const struct qfs_fs_opts *o)
{
	struct qfs_fs *fs;
	struct fuse_session *se;
	static struct fuse_lowlevel_ops timed; /* fuse_session_new copies it; static to be sure */
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	char opts[4096];
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
	rc = qfs_fs_itab_init(fs);
	if (rc)
		goto err_free;
	if (!qfs_fs_iget(fs, FUSE_ROOT_ID, QFS_META_GROUP, S_IFDIR, 0)) {
		rc = -ENOMEM;
		goto err_itab;
	}

	struct sweep_ctx sw = { fs, 0 };
	qfs_router_table_list(r, "", sweep_table, &sw);
	if (sw.removed)
		QFS_LOG(QFS_LOG_INFO, "removed files unlinked while open at the last stop count=%llu",
			(unsigned long long)sw.removed);

	/* noatime: reads never update atime (the kernel does not for FUSE
	 * either), and the mount says so in /proc/mounts; doc/fs.md */
	snprintf(opts, sizeof(opts), "%sdefault_permissions,noatime,fsname=quorumfs,subtype=quorumfs",
		 geteuid() == 0 ? "allow_other," : "");
	if (fuse_opt_add_arg(&args, "quorumfs") || fuse_opt_add_arg(&args, "-o") ||
	    fuse_opt_add_arg(&args, opts) || (o->debug && fuse_opt_add_arg(&args, "-d"))) {
		rc = -ENOMEM;
		goto err_args;
	}
	timed_ops(&timed);
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
	if (fuse_session_mount(se, o->mountpoint) != 0) {
		QFS_LOG(QFS_LOG_ERR, "mount failed mountpoint=%s (is it an existing directory? is /dev/fuse usable?)",
			o->mountpoint);
		rc = -EIO;
		goto err_signals;
	}
	fs->se = se;
	QFS_LOG(QFS_LOG_INFO, "mounted mountpoint=%s data_dir=%s", o->mountpoint, o->data_dir);
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
			fuse_loop_cfg_set_max_threads(cfg, 64);
			fuse_loop_cfg_set_idle_threads(cfg, 8);
			rc = fuse_session_loop_mt(se, cfg);
			fuse_loop_cfg_destroy(cfg);
		}
	}
	if (rc > 0) /* a signal ended the loop */
		rc = 0;
	fs->se = NULL;
	fuse_session_unmount(se);
	QFS_LOG(QFS_LOG_INFO, "unmounted mountpoint=%s", o->mountpoint);
err_signals:
	fuse_remove_signal_handlers(se);
err_session:
	fuse_session_destroy(se);
err_args:
	fuse_opt_free_args(&args);
err_itab:
	qfs_fs_itab_close(fs);
err_free:
	pthread_mutex_destroy(&fs->root_mu);
	pthread_mutex_destroy(&fs->pend_mu);
	free(fs);
	return rc;
}
