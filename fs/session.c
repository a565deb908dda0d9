/*
 * session.c - set up the inode table, sweep orphans, mount, and run the
 * multi-threaded FUSE session loop until unmount or a signal.
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
	rc = qfs_fs_avail_start(fs);
	if (rc)
		goto err_args;
	se = fuse_session_new(&args, &qfs_fs_ops, sizeof(qfs_fs_ops), fs);
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
	qfs_fs_avail_stop(fs);
	fuse_opt_free_args(&args);
err_itab:
	qfs_fs_itab_close(fs);
err_free:
	pthread_mutex_destroy(&fs->root_mu);
	pthread_mutex_destroy(&fs->pend_mu);
	free(fs);
	return rc;
}
