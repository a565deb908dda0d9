/*
 * fs.h - the FUSE frontend: mounts a quorumfs router on a directory.
 *
 * fs/ speaks only the item API of src/router; it never touches RocksDB, the
 * WAL or the network.  Design notes: doc/fs.md.
 */
#ifndef QFS_FS_FS_H
#define QFS_FS_FS_H

#include "router/router.h"

struct qfs_archive;

struct qfs_fs_opts {
	const char *mountpoint;
	const char *data_dir;      /* shown in status */
	int foreground;            /* do not daemonize */
	int debug;                 /* libfuse debug output */
	int single_thread;         /* run the session loop on one thread */
	int (*ready)(void *arg);   /* called once mounted, before serving (daemonize here) */
	void *ready_arg;
	struct qfs_archive *archive; /* WAL archiver for .quorumfs/archive; NULL: archiving off */
};

/* Mount and serve until unmounted or signalled.  Returns 0 after a clean
 * unmount, or a negative errno if the mount could not be set up (with a log
 * line saying why). */
int qfs_fs_run(struct qfs_router *r, const struct qfs_fs_opts *o);

#endif
