/*
 * files.c - small durable-file helpers of src/node (rnode.c, cell.c); see
 * node_int.h.  Every write goes through the system-I/O layer
 * (common/sysio.h, doc/sysio.md), so the fault-injection tests reach it.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/qfs.h"
#include "common/sysio.h"
#include "node/node_int.h"

int qfs_node_path_fmt(char *out, size_t size, const char *fmt, ...)
{
	va_list ap;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(out, size, fmt, ap);
	va_end(ap);
	if (len < 0 || (size_t)len >= size)
		return -ENAMETOOLONG;
	return 0;
}

int qfs_node_fsync_dir(const char *path)
{
	return qfs_sysio_fsync_dir(path);
}

int qfs_node_mkdir_durable(const char *path, const char *parent)
{
	if (qfs_sys_mkdir(path, 0755) < 0)
		return errno == EEXIST ? 0 : -errno;
	return qfs_sysio_fsync_dir(parent);
}

int qfs_node_file_put(const char *dir, const char *tmp, const char *path, const char *text)
{
	(void)dir; /* path's directory: the one qfs_sysio_file_put_tmp fsyncs */
	return qfs_sysio_file_put_tmp(path, tmp, text, strlen(text));
}

int qfs_node_file_get(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

int qfs_node_format_check(const char *dir, const char *format)
{
	char path[PATH_MAX], tmp[PATH_MAX], got[64];
	int rc;

	if ((rc = qfs_node_path_fmt(path, sizeof(path), "%s/FORMAT", dir)) ||
	    (rc = qfs_node_path_fmt(tmp, sizeof(tmp), "%s/FORMAT.tmp", dir)))
		return rc;
	rc = qfs_node_file_get(path, got, sizeof(got));
	if (rc == -ENOENT)
		return qfs_node_file_put(dir, tmp, path, format);
	if (rc)
		return rc;
	if (strcmp(got, format) != 0) {
		got[strcspn(got, "\n")] = '\0';
		QFS_LOG(QFS_LOG_ERR, "node directory format unsupported dir=%s found=\"%s\" want=\"%.*s\"", dir,
			got, (int)strcspn(format, "\n"), format);
		return QFS_EFORMAT;
	}
	return 0;
}
