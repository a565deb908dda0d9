/*
 * files.c - small durable-file helpers of src/node (rnode.c, cell.c); see
 * node_int.h.
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
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

int qfs_node_mkdir_durable(const char *path, const char *parent)
{
	if (mkdir(path, 0755) < 0)
		return errno == EEXIST ? 0 : -errno;
	return qfs_node_fsync_dir(parent);
}

int qfs_node_file_put(const char *dir, const char *tmp, const char *path, const char *text)
{
	size_t len = strlen(text);
	int fd, rc;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (write(fd, text, len) != (ssize_t)len) {
		rc = errno ? -errno : -EIO;
		goto err_close;
	}
	if (fsync(fd) < 0) {
		rc = -errno;
		goto err_close;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		rc = -errno;
		goto err_unlink;
	}
	return qfs_node_fsync_dir(dir);

err_close:
	close(fd);
err_unlink:
	unlink(tmp);
	return rc;
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
