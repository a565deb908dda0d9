/*
 * ctl.c - the control tree at MOUNTPOINT/.quorumfs (like /proc): plain
 * text, one fact per line, made for grep and awk; read-only but for the
 * nodes file.  Inode numbers
 * 2..1023 are reserved for it; it is not listed in the root directory (so
 * backups of the mount do not copy it) but can be looked up by name.
 *
 *   .quorumfs/status   version, uptime, tables, node and group health
 *   .quorumfs/stats    per-FUSE-operation and per-table latency and errors
 *   .quorumfs/archive  WAL archiving per partition (text from the archiver,
 *                      doc/archive.md)
 *   .quorumfs/capacity  admission control per table (doc/admission.md)
 *   .quorumfs/partitions  one line per partition of every table (doc/fs.md)
 *   .quorumfs/nodes    the storage nodes, one line each; root may write
 *                      "stop N" or "start N" to it: a TEST HOOK that powers a
 *                      node off or on (fault injection, doc/cell.md)
 *   .quorumfs/scrub    the scrubber's state and per-group results; root may
 *                      write "start" to start a pass (doc/scrub.md)
 *   .quorumfs/alarms   every active alarm with the time it was raised (the
 *                      scrubber's, the archive's, and the availability and
 *                      canary alarms of fs/avail.c)
 *   .quorumfs/availability  client-side successes, errors and latency per
 *                      table and op over sliding windows (doc/availability.md)
 *   .quorumfs/metrics  the same as Prometheus text (as -o metrics_listen)
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/clock.h"
#include "fs/fs_int.h"

struct ctl_file {
	qfs_ino_t ino;
	const char *name;
};

static const struct ctl_file files[] = {
	{ 3, "status" },
	{ 4, "stats" },
	{ 5, "archive" },
	{ QFS_CTL_NODES_INO, "nodes" },
	{ QFS_CTL_SCRUB_INO, "scrub" },
	{ QFS_CTL_ALARMS_INO, "alarms" },
	{ QFS_CTL_CAPACITY_INO, "capacity" },
	{ QFS_CTL_PARTITIONS_INO, "partitions" },
	{ QFS_CTL_AVAIL_INO, "availability" },
	{ QFS_CTL_METRICS_INO, "metrics" },
};
#define NFILES (sizeof(files) / sizeof(files[0]))

static const char *fop_names[FOP_NOPS] = {
	"lookup", "getattr", "setattr", "readlink", "mknod", "mkdir", "unlink", "rmdir", "symlink",
	"rename", "link", "open", "read", "write", "flush", "release", "fsync", "opendir", "readdir",
	"statfs", "setxattr", "getxattr", "listxattr", "removexattr", "create", "fallocate",
};

/* Attributes of a control entry: fixed modes, owned by root, and the mount
 * time as atime, mtime and ctime (the text is made at open, like /proc). */
static void fill(const struct qfs_fs *fs, qfs_ino_t ino, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_atim.tv_sec = st->st_mtim.tv_sec = st->st_ctim.tv_sec = fs->mounted.sec;
	st->st_atim.tv_nsec = st->st_mtim.tv_nsec = st->st_ctim.tv_nsec = fs->mounted.nsec;
	if (ino == QFS_CTL_DIR_INO) {
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
	} else if (qfs_fs_ctl_writable(ino)) {
		st->st_mode = S_IFREG | 0644;
		st->st_nlink = 1;
	} else {
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
	}
	st->st_blksize = 4096;
}

int qfs_fs_ctl_lookup(const struct qfs_fs *fs, qfs_ino_t parent, const char *name, struct stat *st)
{
	if (parent == FUSE_ROOT_ID) {
		if (strcmp(name, ".quorumfs"))
			return -ENOENT;
		fill(fs, QFS_CTL_DIR_INO, st);
		return 0;
	}
	if (parent != QFS_CTL_DIR_INO)
		return -ENOTDIR;
	for (size_t i = 0; i < NFILES; i++) {
		if (strcmp(files[i].name, name) == 0) {
			fill(fs, files[i].ino, st);
			return 0;
		}
	}
	return -ENOENT;
}

int qfs_fs_ctl_getattr(const struct qfs_fs *fs, qfs_ino_t ino, struct stat *st)
{
	if (ino == QFS_CTL_DIR_INO) {
		fill(fs, ino, st);
		return 0;
	}
	for (size_t i = 0; i < NFILES; i++) {
		if (files[i].ino == ino) {
			fill(fs, ino, st);
			return 0;
		}
	}
	return -ENOENT;
}

int qfs_fs_ctl_read_file(struct qfs_fs *fs, qfs_ino_t ino, char **text, size_t *len)
{
	struct qfs_buf b;

	qfs_buf_init(&b);
	if (ino == 3) {
		qfs_buf_printf(&b, "version %s\n", PACKAGE_VERSION);
		qfs_buf_printf(&b, "uptime_s %llu\n",
			       (unsigned long long)((qfs_clock_mono_ms() - fs->started_ms) / 1000));
		qfs_buf_printf(&b, "data_dir ");
		qfs_buf_put_esc(&b, fs->o->data_dir ? fs->o->data_dir : "-");
		qfs_buf_printf(&b, "\nmountpoint ");
		qfs_buf_put_esc(&b, fs->o->mountpoint);
		qfs_buf_printf(&b, "\nmode %s\n", fs->o->readonly ? "ro" : "rw");
		qfs_buf_printf(&b, "replicas %u\n", fs->o->replicas ? fs->o->replicas : 1);
		qfs_router_status(fs->r, &b);
		if (fs->o->archive_text)
			fs->o->archive_text(fs->o->archive_arg, &b, 1);
		else
			qfs_buf_printf(&b, "archive off\n");
	} else if (ino == 5) {
		if (fs->o->archive_text)
			fs->o->archive_text(fs->o->archive_arg, &b, 0);
		else
			qfs_buf_printf(&b, "archive off\n");
	} else if (ino == 4) {
		for (int i = 0; i < FOP_NOPS; i++) {
			qfs_buf_printf(&b, "op %s", fop_names[i]);
			qfs_hist_format(&fs->ops[i], &b);
			qfs_buf_put_u8(&b, '\n');
		}
		qfs_buf_printf(&b, "fs write_behind %llu failed %llu\n",
			       (unsigned long long)__atomic_load_n(&fs->wb_behind, __ATOMIC_RELAXED),
			       (unsigned long long)__atomic_load_n(&fs->wb_behind_failed, __ATOMIC_RELAXED));
		qfs_router_stats(fs->r, &b);
	} else if (ino == QFS_CTL_CAPACITY_INO) {
		qfs_router_capacity(fs->r, &b);
	} else if (ino == QFS_CTL_PARTITIONS_INO) {
		qfs_router_partitions(fs->r, &b);
	} else if (ino == QFS_CTL_NODES_INO) {
		if (fs->o->nodes_text)
			fs->o->nodes_text(fs->o->nodes_arg, &b);
	} else if (ino == QFS_CTL_SCRUB_INO) {
		if (fs->o->scrub_text)
			fs->o->scrub_text(fs->o->scrub_arg, &b);
		else
			qfs_buf_printf(&b, "state off\n");
	} else if (ino == QFS_CTL_ALARMS_INO) {
		if (fs->o->alarms_text)
			fs->o->alarms_text(fs->o->scrub_arg, &b);
		if (qfs_fs_avail_of(fs))
			qfs_avail_alarms(qfs_fs_avail_of(fs), &b);
	} else if (ino == QFS_CTL_AVAIL_INO) {
		if (qfs_fs_avail_of(fs))
			qfs_avail_text(qfs_fs_avail_of(fs), &b);
	} else if (ino == QFS_CTL_METRICS_INO) {
		if (qfs_fs_avail_of(fs))
			qfs_avail_metrics(qfs_fs_avail_of(fs), &b);
	} else if (ino == QFS_CTL_DIR_INO) {
		return -EISDIR;
	} else {
		return -ENOENT;
	}
	if (b.err) {
		int err = b.err;
		qfs_buf_close(&b);
		return err;
	}
	*text = (char *)qfs_buf_steal(&b, len);
	return 0;
}

int qfs_fs_ctl_command(struct qfs_fs *fs, qfs_ino_t ino, const char *buf, size_t size)
{
	char cmd[64], verb[16], extra[2];
	unsigned id;
	int n;

	if (!qfs_fs_ctl_writable(ino))
		return -EROFS;
	if (size >= sizeof(cmd))
		return -EINVAL;
	memcpy(cmd, buf, size);
	cmd[size] = '\0';
	if (ino == QFS_CTL_SCRUB_INO) {
		if (sscanf(cmd, "%15s %1s", verb, extra) != 1 || strcmp(verb, "start"))
			return -EINVAL;
		if (!fs->o->scrub_ctl)
			return -EINVAL;
		return fs->o->scrub_ctl(fs->o->scrub_arg, verb);
	}
	n = sscanf(cmd, "%15s %u %1s", verb, &id, extra);
	if (n != 2 || (strcmp(verb, "stop") && strcmp(verb, "start")) || id == 0 || id > 65535)
		return -EINVAL;
	if (!fs->o->node_ctl)
		return -EINVAL;
	return fs->o->node_ctl(fs->o->nodes_arg, verb, id);
}

size_t qfs_fs_ctl_readdir(fuse_req_t req, char *buf, size_t size, off_t off, int plus)
{
	size_t pos = 0;
	struct stat st;

	for (off_t i = off; i < (off_t)(2 + NFILES); i++) {
		const char *name;
		qfs_ino_t ino;
		if (i == 0) {
			name = ".";
			ino = QFS_CTL_DIR_INO;
		} else if (i == 1) {
			name = "..";
			ino = FUSE_ROOT_ID;
		} else {
			name = files[i - 2].name;
			ino = files[i - 2].ino;
		}
		fill(qfs_fs_of(req), ino, &st);
		size_t n;
		if (plus) { /* attributes only: ino 0 links nothing, counts no lookup */
			struct fuse_entry_param e;
			memset(&e, 0, sizeof(e));
			e.attr = st;
			n = fuse_add_direntry_plus(req, buf + pos, size - pos, name, &e, i + 1);
		} else {
			n = fuse_add_direntry(req, buf + pos, size - pos, name, &st, i + 1);
		}
		if (n > size - pos)
			break;
		pos += n;
	}
	return pos;
}
