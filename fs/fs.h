/*
 * fs.h - the FUSE frontend: mounts a quorumfs router on a directory.
 *
 * fs/ speaks only the item API of src/router; it never touches RocksDB, the
 * WAL or the network.  Design notes: doc/fs.md.
 */
#ifndef QFS_FS_FS_H
#define QFS_FS_FS_H

#include "router/avail.h"
#include "router/router.h"


struct qfs_fs_opts {
	const char *mountpoint;
	const char *data_dir;      /* shown in status */
	int foreground;            /* do not daemonize */
	int debug;                 /* libfuse debug output */
	int single_thread;         /* run the session loop on one thread */
	int (*ready)(void *arg);   /* called once mounted, before serving (daemonize here) */
	void *ready_arg;
	/* Text of the archiver (a component beside the router) for the control
	 * tree, wired by main.c so that fs/ depends on the item API alone:
	 * summary != 0 appends the one "archive ..." line of .quorumfs/status,
	 * else the whole .quorumfs/archive.  NULL: archiving is off. */
	void (*archive_text)(void *arg, struct qfs_buf *out, int summary);
	void *archive_arg;
	/* The storage nodes, for .quorumfs/nodes, wired by main.c the same
	 * way: nodes_text appends one line per node; node_ctl runs "stop" or
	 * "start" on node id (a fault-injection test hook) and returns 0 or a
	 * negative errno.  NULL: the file reads empty and refuses writes. */
	void (*nodes_text)(void *arg, struct qfs_buf *out);
	int (*node_ctl)(void *arg, const char *verb, uint32_t id);
	void *nodes_arg;
	/* The scrubber (src/scrub), wired by main.c the same way:
	 * scrub_text appends .quorumfs/scrub, alarms_text every active alarm
	 * (.quorumfs/alarms), scrub_ctl runs a written command ("start"): 0 or
	 * a negative errno (-EBUSY: a pass runs).  NULL: scrub off (the scrub
	 * file says so and refuses writes with -EINVAL). */
	void (*scrub_text)(void *arg, struct qfs_buf *out);
	void (*alarms_text)(void *arg, struct qfs_buf *out);
	int (*scrub_ctl)(void *arg, const char *cmd);
	void *scrub_arg;
	uint32_t replicas;         /* shown in status */
	/* How long the kernel may cache entries, attributes and negative
	 * entries, in ms; 0 = QFS_FS_TIMEOUT_DEFAULT (doc/fs.md "Kernel
	 * caches").  Safe only while this mount is the only writer. */
	uint64_t cache_timeout_ms;
	int cache_off;             /* -o cache_timeout=0: no kernel caching at all */
	int readonly;              /* -o ro: the kernel mounts read-only and every
	                            * change gets EROFS here too (session.c) */
	const char *kernel_opts;   /* NULL, or comma-separated mount flags for the
	                            * kernel (nosuid,nodev,noexec,noatime,...) */
	/* The kernel's read-ahead window of the mount (its bdi's
	 * read_ahead_kb, set as root; doc/fs.md "Kernel caches"), in bytes;
	 * 0 leaves the kernel's (128 KiB for every FUSE mount).  `quorumfs
	 * mount` gives QFS_FS_READ_AHEAD_DEFAULT unless told otherwise. */
	uint64_t read_ahead_bytes;
	/* statfs of the mount (doc/fs.md): the data disk's blocks less
	 * space_reserve bytes, divided by space_copies, the copies of each
	 * user byte that land on that file system (replicas there + a local
	 * archive there); 0 means 1. */
	uint64_t space_reserve;
	uint32_t space_copies;
	/* Client-side availability, alarms, canary, metrics listener
	 * (doc/availability.md); NULL: defaults with the canary off. */
	const struct qfs_avail_opts *avail;
};

#define QFS_FS_READ_AHEAD_DEFAULT (2u << 20)

/* Mount and serve until unmounted or signalled (SIGTERM, SIGINT: libfuse's
 * handlers end the loop; SIGHUP is left to the caller, which reopens the
 * log).  After the loop, the mount is detached and every file's buffered
 * writes are flushed before returning.  libfuse's own messages go through
 * the log (fuse_set_log_func).  Returns 0 after a clean unmount, or a
 * negative errno if the mount could not be set up (with a log line saying
 * why). */
int qfs_fs_run(struct qfs_router *r, const struct qfs_fs_opts *o);

#endif
