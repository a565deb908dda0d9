/*
 * sysio.h - the one system-I/O layer of the storage code (design and test
 * use in doc/sysio.md).
 *
 * Two things live here:
 *
 *  1. The system-call table (SQLite's aSyscall[] habit).  Every open,
 *     openat, write, pwrite, fsync, fdatasync, rename, renameat, link,
 *     unlink, unlinkat, rmdir, mkdir, ftruncate and fallocate that the WAL,
 *     the node files, the local object store and the archiver's staging
 *     files do goes through qfs_sysio, a struct of function pointers whose
 *     defaults are the libc calls.  The qfs_sys_*() inline wrappers below
 *     keep libc's conventions (-1 and errno) so that a call site changes
 *     by its name only; they cost one load and one indirect call.
 *     RocksDB's own I/O does not go through this table (it has its Env).
 *
 *  2. Durable-file helpers built on the table (qfs_sysio_*(), 0 or
 *     -errno): write a whole file durably (temp file in the same
 *     directory, fsync, rename over the target, fsync of the directory),
 *     create a directory durably, fsync a directory, write-all loops.
 *     None of them retries an fsync: after a failed fsync the data is not
 *     known to be on disk whatever a second fsync says ("fsyncgate"), so
 *     the error goes up and the caller stops (the WAL's sticky error, an
 *     rnode group stopped).
 *
 * TEST HOOK.  Tests may replace entries of qfs_sysio (store them with
 * __atomic_store_n while other threads run) or arm the fault injector:
 * qfs_sysio_fault_set() makes the nth call (counted from the arming) whose
 * kind is in a mask fail with a chosen errno (EIO, ENOSPC...); a failing
 * write first writes half of its bytes, as a filling disk does.  Arming
 * (or qfs_sysio_count_start) swaps counting hooks into the table; until
 * then the table holds the libc calls and nothing is counted.  Production
 * code never arms it.  qfs_sysio_reset() puts the libc defaults back.
 * All of this is safe from any thread (counters are atomic).
 */
#ifndef QFS_COMMON_SYSIO_H
#define QFS_COMMON_SYSIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Kinds of calls, as the fault injector counts them. */
enum qfs_sysio_kind {
	QFS_SYSIO_OPEN,      /* open, openat */
	QFS_SYSIO_WRITE,     /* write, pwrite */
	QFS_SYSIO_SYNC,      /* fsync, fdatasync (of files and of directories) */
	QFS_SYSIO_RENAME,    /* rename, renameat, link */
	QFS_SYSIO_UNLINK,    /* unlink, unlinkat, rmdir */
	QFS_SYSIO_MKDIR,     /* mkdir */
	QFS_SYSIO_TRUNCATE,  /* ftruncate */
	QFS_SYSIO_FALLOCATE, /* fallocate */
	QFS_SYSIO_NKIND
};
#define QFS_SYSIO_BIT(kind) (1u << (kind))
#define QFS_SYSIO_ALL ((1u << QFS_SYSIO_NKIND) - 1)

/* The table.  Entries follow libc: -1 with errno set on failure. */
struct qfs_sysio_table {
	int (*open)(const char *path, int flags, mode_t mode);
	int (*openat)(int dfd, const char *path, int flags, mode_t mode);
	ssize_t (*write)(int fd, const void *buf, size_t len);
	ssize_t (*pwrite)(int fd, const void *buf, size_t len, off_t off);
	int (*fsync)(int fd);
	int (*fdatasync)(int fd);
	int (*rename)(const char *from, const char *to);
	int (*renameat)(int fromdfd, const char *from, int todfd, const char *to);
	int (*link)(const char *from, const char *to);
	int (*unlink)(const char *path);
	int (*unlinkat)(int dfd, const char *path, int flags);
	int (*rmdir)(const char *path);
	int (*mkdir)(const char *path, mode_t mode);
	int (*ftruncate)(int fd, off_t len);
	int (*fallocate)(int fd, int mode, off_t off, off_t len);
};

/* The table every call site reads (test hook: see above). */
extern struct qfs_sysio_table qfs_sysio;
/* The libc defaults (what qfs_sysio_reset restores). */
extern const struct qfs_sysio_table qfs_sysio_default;

#define QFS_SYSIO_FN(name) __atomic_load_n(&qfs_sysio.name, __ATOMIC_ACQUIRE)

/* The calls through the table, with libc's conventions. */
static inline int qfs_sys_open(const char *path, int flags, mode_t mode)
{
	return QFS_SYSIO_FN(open)(path, flags, mode);
}
static inline int qfs_sys_openat(int dfd, const char *path, int flags, mode_t mode)
{
	return QFS_SYSIO_FN(openat)(dfd, path, flags, mode);
}
static inline ssize_t qfs_sys_write(int fd, const void *buf, size_t len)
{
	return QFS_SYSIO_FN(write)(fd, buf, len);
}
static inline ssize_t qfs_sys_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	return QFS_SYSIO_FN(pwrite)(fd, buf, len, off);
}
static inline int qfs_sys_fsync(int fd)
{
	return QFS_SYSIO_FN(fsync)(fd);
}
static inline int qfs_sys_fdatasync(int fd)
{
	return QFS_SYSIO_FN(fdatasync)(fd);
}
static inline int qfs_sys_rename(const char *from, const char *to)
{
	return QFS_SYSIO_FN(rename)(from, to);
}
static inline int qfs_sys_renameat(int fromdfd, const char *from, int todfd, const char *to)
{
	return QFS_SYSIO_FN(renameat)(fromdfd, from, todfd, to);
}
static inline int qfs_sys_link(const char *from, const char *to)
{
	return QFS_SYSIO_FN(link)(from, to);
}
static inline int qfs_sys_unlink(const char *path)
{
	return QFS_SYSIO_FN(unlink)(path);
}
static inline int qfs_sys_unlinkat(int dfd, const char *path, int flags)
{
	return QFS_SYSIO_FN(unlinkat)(dfd, path, flags);
}
static inline int qfs_sys_rmdir(const char *path)
{
	return QFS_SYSIO_FN(rmdir)(path);
}
static inline int qfs_sys_mkdir(const char *path, mode_t mode)
{
	return QFS_SYSIO_FN(mkdir)(path, mode);
}
static inline int qfs_sys_ftruncate(int fd, off_t len)
{
	return QFS_SYSIO_FN(ftruncate)(fd, len);
}
static inline int qfs_sys_fallocate(int fd, int mode, off_t off, off_t len)
{
	return QFS_SYSIO_FN(fallocate)(fd, mode, off, len);
}

/* ---- durable-file helpers: 0 or -errno, any thread ---- */

/* write(2) all len bytes at the file offset, looping over short writes and
 * EINTR.  0, or -errno (-EIO if write returns 0); some bytes may have been
 * written on error. */
int qfs_sysio_write_all(int fd, const void *p, size_t len);
/* pwrite(2) all len bytes at off, as qfs_sysio_write_all. */
int qfs_sysio_pwrite_all(int fd, const void *p, size_t len, off_t off);
/* fsync / fdatasync fd.  0 or -errno.  Never retry after an error: the data
 * is then not known to be durable (the kernel may have dropped the pages). */
int qfs_sysio_fsync(int fd);
int qfs_sysio_fdatasync(int fd);
/* fsync the directory at path (opened O_RDONLY | O_DIRECTORY). */
int qfs_sysio_fsync_dir(const char *path);
/* Bytes an unprivileged writer may still put on the filesystem that holds
 * path (statvfs: f_bavail * f_frsize), or UINT64_MAX when statvfs fails:
 * every caller then goes on as if the disk had room (an unknown disk is
 * never called full). */
uint64_t qfs_sysio_disk_avail(const char *path);
/* fsync the directory that holds path ("." for a bare name). */
int qfs_sysio_fsync_parent(const char *path);
/* mkdir path with mode and, when it was made, fsync its parent: 0 once the
 * new directory is durable; -EEXIST if something is already there (nothing
 * done); other -errno (the directory may exist but not be durable). */
int qfs_sysio_mkdir(const char *path, mode_t mode);
/*
 * Replace path by the len bytes at data durably: write tmp (created mode
 * 0644, truncated), fsync it, rename it over path, fsync path's directory.
 * tmp must be in the same directory; qfs_sysio_file_put uses path ".tmp".
 * A crash leaves the old content or the new one, never a mix.  Errors:
 * -errno of a step; before the rename, tmp is removed and path is
 * untouched; if the directory fsync fails (the only error after the
 * rename) path holds the new content but it is not known to be durable.
 * -ENAMETOOLONG if path ".tmp" does not fit PATH_MAX.
 */
int qfs_sysio_file_put_tmp(const char *path, const char *tmp, const void *data, size_t len);
int qfs_sysio_file_put(const char *path, const void *data, size_t len);

/* ---- test hook: fault injection and call counts ---- */

#define QFS_SYSIO_PERSIST 1u /* flag: fail every matching call from the nth on */

/*
 * Arm the fault injector (test hook): the nth call from now (1-based)
 * whose kind is in mask (QFS_SYSIO_BIT()s) fails with errno err without
 * reaching the system (a write writes len/2 bytes first); with
 * QFS_SYSIO_PERSIST every later matching call fails too.  nth 0 or mask 0
 * disarms.  Replaces any earlier fault; counting hooks stay installed.
 */
void qfs_sysio_fault_set(unsigned mask, unsigned long nth, int err, unsigned flags);
/* Faults injected since the last qfs_sysio_fault_set. */
unsigned long qfs_sysio_fault_fired(void);
/* Install the counting hooks (if not yet) and zero the per-kind counts. */
void qfs_sysio_count_start(void);
/* Calls of kind since the last qfs_sysio_count_start (hooks installed). */
unsigned long qfs_sysio_count(enum qfs_sysio_kind kind);
/* Disarm, uninstall the hooks, zero the counters and put the libc
 * defaults back in every entry (test overrides included). */
void qfs_sysio_reset(void);

#endif
