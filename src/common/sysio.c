/*
 * sysio.c - the system-call table, the durable-file helpers and the
 * fault-injection hooks (contract in sysio.h, design in doc/sysio.md).
 *
 * The table starts with the libc calls (small adapters where libc's
 * prototype is variadic or differs).  Arming a fault or starting a count
 * saves the table as it is in "next" and stores the hook_* functions in
 * every entry: each counts its kind, asks hit() whether this call is the
 * one to fail, and otherwise calls next.  Counters are atomics, so hooks
 * work from the I/O threads of several nodes at once.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "common/sysio.h"

/* ---- libc defaults ---- */

static int sys_open(const char *path, int flags, mode_t mode)
{
	return open(path, flags, mode);
}

static int sys_openat(int dfd, const char *path, int flags, mode_t mode)
{
	return openat(dfd, path, flags, mode);
}

/* The libc calls, the initializer of both tables below. */
#define SYSIO_LIBC                          \
	{                                   \
		.open = sys_open,           \
		.openat = sys_openat,       \
		.write = write,             \
		.pwrite = pwrite,           \
		.fsync = fsync,             \
		.fdatasync = fdatasync,     \
		.rename = rename,           \
		.renameat = renameat,       \
		.link = link,               \
		.unlink = unlink,           \
		.unlinkat = unlinkat,       \
		.rmdir = rmdir,             \
		.mkdir = mkdir,             \
		.ftruncate = ftruncate,     \
		.fallocate = fallocate,     \
	}

const struct qfs_sysio_table qfs_sysio_default = SYSIO_LIBC;

struct qfs_sysio_table qfs_sysio = SYSIO_LIBC;

/* ---- durable-file helpers ---- */

int qfs_sysio_write_all(int fd, const void *p, size_t len)
{
	const char *b = p;

	while (len > 0) {
		ssize_t n = qfs_sys_write(fd, b, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

int qfs_sysio_pwrite_all(int fd, const void *p, size_t len, off_t off)
{
	const char *b = p;

	while (len > 0) {
		ssize_t n = qfs_sys_pwrite(fd, b, len, off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		b += n;
		off += n;
		len -= (size_t)n;
	}
	return 0;
}

int qfs_sysio_fsync(int fd)
{
	return qfs_sys_fsync(fd) < 0 ? -errno : 0;
}

int qfs_sysio_fdatasync(int fd)
{
	return qfs_sys_fdatasync(fd) < 0 ? -errno : 0;
}

int qfs_sysio_fsync_dir(const char *path)
{
	int fd = qfs_sys_open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0), rc;

	if (fd < 0)
		return -errno;
	rc = qfs_sysio_fsync(fd);
	close(fd);
	return rc;
}

uint64_t qfs_sysio_disk_avail(const char *path)
{
	struct statvfs sv;

	return statvfs(path, &sv) == 0 ? (uint64_t)sv.f_bavail * sv.f_frsize : UINT64_MAX;
}

int qfs_sysio_fsync_parent(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');

	if (!slash)
		return qfs_sysio_fsync_dir(".");
	if (slash == path)
		return qfs_sysio_fsync_dir("/");
	if ((size_t)(slash - path) >= sizeof(dir))
		return -ENAMETOOLONG;
	memcpy(dir, path, (size_t)(slash - path));
	dir[slash - path] = '\0';
	return qfs_sysio_fsync_dir(dir);
}

int qfs_sysio_mkdir(const char *path, mode_t mode)
{
	if (qfs_sys_mkdir(path, mode) < 0)
		return -errno;
	return qfs_sysio_fsync_parent(path);
}

int qfs_sysio_file_put_tmp(const char *path, const char *tmp, const void *data, size_t len)
{
	int fd, rc;

	fd = qfs_sys_open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	rc = qfs_sysio_write_all(fd, data, len);
	if (rc == 0)
		rc = qfs_sysio_fsync(fd);
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc < 0)
		goto err_unlink;
	if (qfs_sys_rename(tmp, path) < 0) {
		rc = -errno;
		goto err_unlink;
	}
	return qfs_sysio_fsync_parent(path);

err_unlink:
	qfs_sys_unlink(tmp);
	return rc;
}

int qfs_sysio_file_put(const char *path, const void *data, size_t len)
{
	char tmp[PATH_MAX];

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	return qfs_sysio_file_put_tmp(path, tmp, data, len);
}

/* ---- test hook ---- */

static struct qfs_sysio_table next;   /* what the hooks call; set at install */
static int hooked;                    /* hooks in the table; test thread only */
static unsigned long calls[QFS_SYSIO_NKIND]; /* atomic */
static unsigned fault_mask;           /* atomic; 0: no fault armed */
static unsigned long fault_nth;       /* written before fault_mask is */
static int fault_err;
static unsigned fault_flags;
static unsigned long fault_hits;      /* atomic: matching calls since arming */
static unsigned long fault_fired;     /* atomic */

/* Count a call of kind k; the errno to fail it with, or 0 to let it run. */
static int hit(enum qfs_sysio_kind k)
{
	unsigned long n;

	__atomic_add_fetch(&calls[k], 1, __ATOMIC_RELAXED);
	if (!(__atomic_load_n(&fault_mask, __ATOMIC_ACQUIRE) & QFS_SYSIO_BIT(k)))
		return 0;
	n = __atomic_add_fetch(&fault_hits, 1, __ATOMIC_RELAXED);
	if (n == fault_nth || ((fault_flags & QFS_SYSIO_PERSIST) && n > fault_nth)) {
		__atomic_add_fetch(&fault_fired, 1, __ATOMIC_RELAXED);
		return fault_err;
	}
	return 0;
}

#define FAIL_IF_HIT(kind)              \
	do {                           \
		int e_ = hit(kind);    \
		if (e_) {              \
			errno = e_;    \
			return -1;     \
		}                      \
	} while (0)

static int hook_open(const char *path, int flags, mode_t mode)
{
	FAIL_IF_HIT(QFS_SYSIO_OPEN);
	return next.open(path, flags, mode);
}

static int hook_openat(int dfd, const char *path, int flags, mode_t mode)
{
	FAIL_IF_HIT(QFS_SYSIO_OPEN);
	return next.openat(dfd, path, flags, mode);
}

/* A failing write first writes half of its bytes (a disk filling up). */
static ssize_t hook_write(int fd, const void *buf, size_t len)
{
	int e = hit(QFS_SYSIO_WRITE);

	if (e) {
		if (len / 2)
			(void)next.write(fd, buf, len / 2);
		errno = e;
		return -1;
	}
	return next.write(fd, buf, len);
}

static ssize_t hook_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	int e = hit(QFS_SYSIO_WRITE);

	if (e) {
		if (len / 2)
			(void)next.pwrite(fd, buf, len / 2, off);
		errno = e;
		return -1;
	}
	return next.pwrite(fd, buf, len, off);
}

static int hook_fsync(int fd)
{
	FAIL_IF_HIT(QFS_SYSIO_SYNC);
	return next.fsync(fd);
}

static int hook_fdatasync(int fd)
{
	FAIL_IF_HIT(QFS_SYSIO_SYNC);
	return next.fdatasync(fd);
}

static int hook_rename(const char *from, const char *to)
{
	FAIL_IF_HIT(QFS_SYSIO_RENAME);
	return next.rename(from, to);
}

static int hook_renameat(int fromdfd, const char *from, int todfd, const char *to)
{
	FAIL_IF_HIT(QFS_SYSIO_RENAME);
	return next.renameat(fromdfd, from, todfd, to);
}

static int hook_link(const char *from, const char *to)
{
	FAIL_IF_HIT(QFS_SYSIO_RENAME);
	return next.link(from, to);
}

static int hook_unlink(const char *path)
{
	FAIL_IF_HIT(QFS_SYSIO_UNLINK);
	return next.unlink(path);
}

static int hook_unlinkat(int dfd, const char *path, int flags)
{
	FAIL_IF_HIT(QFS_SYSIO_UNLINK);
	return next.unlinkat(dfd, path, flags);
}

static int hook_rmdir(const char *path)
{
	FAIL_IF_HIT(QFS_SYSIO_UNLINK);
	return next.rmdir(path);
}

static int hook_mkdir(const char *path, mode_t mode)
{
	FAIL_IF_HIT(QFS_SYSIO_MKDIR);
	return next.mkdir(path, mode);
}

static int hook_ftruncate(int fd, off_t len)
{
	FAIL_IF_HIT(QFS_SYSIO_TRUNCATE);
	return next.ftruncate(fd, len);
}

static int hook_fallocate(int fd, int mode, off_t off, off_t len)
{
	FAIL_IF_HIT(QFS_SYSIO_FALLOCATE);
	return next.fallocate(fd, mode, off, len);
}

static const struct qfs_sysio_table hooks = {
	.open = hook_open,
	.openat = hook_openat,
	.write = hook_write,
	.pwrite = hook_pwrite,
	.fsync = hook_fsync,
	.fdatasync = hook_fdatasync,
	.rename = hook_rename,
	.renameat = hook_renameat,
	.link = hook_link,
	.unlink = hook_unlink,
	.unlinkat = hook_unlinkat,
	.rmdir = hook_rmdir,
	.mkdir = hook_mkdir,
	.ftruncate = hook_ftruncate,
	.fallocate = hook_fallocate,
};

/* Store every entry of t into the live table (release: a thread that loads
 * a hook also sees next). */
static void table_store(const struct qfs_sysio_table *t)
{
#define STORE(f) __atomic_store_n(&qfs_sysio.f, t->f, __ATOMIC_RELEASE)
	STORE(open);
	STORE(openat);
	STORE(write);
	STORE(pwrite);
	STORE(fsync);
	STORE(fdatasync);
	STORE(rename);
	STORE(renameat);
	STORE(link);
	STORE(unlink);
	STORE(unlinkat);
	STORE(rmdir);
	STORE(mkdir);
	STORE(ftruncate);
	STORE(fallocate);
#undef STORE
}

static void install(void)
{
	if (hooked)
		return;
	next = qfs_sysio; /* the defaults, or a test's overrides */
	table_store(&hooks);
	hooked = 1;
}

void qfs_sysio_fault_set(unsigned mask, unsigned long nth, int err, unsigned flags)
{
	install();
	__atomic_store_n(&fault_mask, 0, __ATOMIC_RELEASE);
	fault_nth = nth;
	fault_err = err > 0 ? err : EIO;
	fault_flags = flags;
	__atomic_store_n(&fault_hits, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&fault_fired, 0, __ATOMIC_RELAXED);
	if (nth > 0)
		__atomic_store_n(&fault_mask, mask & QFS_SYSIO_ALL, __ATOMIC_RELEASE);
}

unsigned long qfs_sysio_fault_fired(void)
{
	return __atomic_load_n(&fault_fired, __ATOMIC_RELAXED);
}

void qfs_sysio_count_start(void)
{
	install();
	for (int k = 0; k < QFS_SYSIO_NKIND; k++)
		__atomic_store_n(&calls[k], 0, __ATOMIC_RELAXED);
}

unsigned long qfs_sysio_count(enum qfs_sysio_kind kind)
{
	return kind < QFS_SYSIO_NKIND ? __atomic_load_n(&calls[kind], __ATOMIC_RELAXED) : 0;
}

void qfs_sysio_reset(void)
{
	__atomic_store_n(&fault_mask, 0, __ATOMIC_RELEASE);
	table_store(&qfs_sysio_default);
	hooked = 0;
	for (int k = 0; k < QFS_SYSIO_NKIND; k++)
		__atomic_store_n(&calls[k], 0, __ATOMIC_RELAXED);
	__atomic_store_n(&fault_hits, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&fault_fired, 0, __ATOMIC_RELAXED);
}
