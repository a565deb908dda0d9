/*
 * objstore.c - the object store front end (contract in objstore.h, design in
 * doc/objstore.md): parses the url, picks a backend through its ops table
 * (objstore_int.h), validates keys, computes the CRC32C of every upload and
 * checks it on every whole-object download, and downloads to files with the
 * temp file + fsync + rename + fsync(dir) sequence.  Backends only move
 * bytes.
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

#include "common/crc32c.h"
#include "common/log.h"
#include "common/sysio.h"
#include "objstore/objstore_int.h"

#define CRC_CHUNK (1u << 20) /* bytes read per step when checksumming a file */

void qfs_os_set_error(struct qfs_objstore *os, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(os->err, sizeof(os->err), fmt, ap);
	va_end(ap);
}

int qfs_objstore_key_check(const char *key, int prefix_ok)
{
	size_t n;
	const char *c, *start = key;

	if (!key)
		return -EINVAL;
	n = strlen(key);
	if (n == 0)
		return prefix_ok ? 0 : -EINVAL;
	if (n > QFS_OBJSTORE_KEY_MAX || key[0] == '/')
		return -EINVAL;
	for (c = key;; c++) {
		if (*c == '/' || *c == '\0') {
			size_t len = (size_t)(c - start);
			int last = *c == '\0';

			if (len == 0 && !(last && prefix_ok))
				return -EINVAL; /* "a//b" or trailing '/' on a key */
			/* "." and ".." are refused even as the partial last component
			 * of a prefix only when followed by '/' (a prefix "a/." may
			 * still match "a/.x"); as a key component always. */
			if ((len == 1 && start[0] == '.') || (len == 2 && start[0] == '.' && start[1] == '.')) {
				if (!(last && prefix_ok))
					return -EINVAL;
			}
			if (len > QFS_OBJSTORE_COMP_MAX)
				return -EINVAL;
			if (last)
				break;
			start = c + 1;
			continue;
		}
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			return -EINVAL;
	}
	return 0;
}

int qfs_os_src_read(const struct qfs_os_src *src, uint64_t off, void *buf, size_t len)
{
	uint8_t *b = buf;

	if (off > src->size || len > src->size - off)
		return -EIO;
	if (src->mem) {
		memcpy(buf, (const uint8_t *)src->mem + off, len);
		return 0;
	}
	while (len > 0) {
		ssize_t r = pread(src->fd, b, len, (off_t)off);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -EIO; /* the file shrank under us */
		b += r;
		off += (uint64_t)r;
		len -= (size_t)r;
	}
	return 0;
}

/* ---- open / close ---- */

int qfs_objstore_open(const struct qfs_objstore_cfg *cfg, struct qfs_objstore **out)
{
	struct qfs_objstore *os;
	int rc;

	if (!cfg || !cfg->url)
		return -EINVAL;
	os = calloc(1, sizeof(*os));
	if (!os)
		return -ENOMEM;
	if (strncmp(cfg->url, "file://", 7) == 0) {
		rc = qfs_os_local_open(os, cfg, cfg->url + 7);
	} else if (strncmp(cfg->url, "s3://", 5) == 0) {
		rc = qfs_os_s3_open(os, cfg, cfg->url + 5);
	} else {
		QFS_LOG(QFS_LOG_ERR, "objstore open failed url=%s err=\"unknown scheme (want file:// or s3://)\"", cfg->url);
		rc = -EINVAL;
	}
	if (rc < 0) {
		free(os);
		return rc;
	}
	*out = os;
	return 0;
}

void qfs_objstore_close(struct qfs_objstore *os)
{
	if (!os)
		return;
	os->ops->close(os);
	free(os);
}

const char *qfs_objstore_last_error(struct qfs_objstore *os)
{
	return os->err;
}

const char *qfs_objstore_describe(struct qfs_objstore *os)
{
	return os->desc;
}

static int bad_key(struct qfs_objstore *os, const char *key, int prefix_ok)
{
	if (qfs_objstore_key_check(key, prefix_ok) == 0)
		return 0;
	qfs_os_set_error(os, "invalid key \"%.100s\"", key ? key : "(null)");
	return -EINVAL;
}

/* ---- uploads ---- */

int qfs_objstore_put(struct qfs_objstore *os, const char *key, const void *data, size_t len)
{
	static const char empty;
	struct qfs_os_src src = { .mem = data ? data : &empty, .fd = -1, .size = len };

	os->err[0] = '\0';
	if (bad_key(os, key, 0) < 0)
		return -EINVAL;
	if (!data && len)
		return -EINVAL;
	src.crc32c = qfs_crc32c(0, src.mem, len);
	return os->ops->put(os, key, &src);
}

static int put_file(struct qfs_objstore *os, const char *key, const char *path, int immutable)
{
	struct qfs_os_src src = { .mem = NULL };
	struct stat st;
	uint64_t off;
	void *buf;
	int rc;

	os->err[0] = '\0';
	if (bad_key(os, key, 0) < 0)
		return -EINVAL;
	src.path = immutable ? path : NULL;
	src.fd = open(path, O_RDONLY | O_CLOEXEC);
	if (src.fd < 0) {
		rc = -errno;
		qfs_os_set_error(os, "open %s: %s", path, strerror(-rc));
		return rc;
	}
	if (fstat(src.fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		rc = S_ISREG(st.st_mode) ? -errno : -EINVAL;
		qfs_os_set_error(os, "%s is not a readable regular file", path);
		goto err_close_fd;
	}
	src.size = (uint64_t)st.st_size;
	buf = malloc(CRC_CHUNK);
	if (!buf) {
		rc = -ENOMEM;
		goto err_close_fd;
	}
	for (off = 0; off < src.size;) {
		size_t n = src.size - off < CRC_CHUNK ? (size_t)(src.size - off) : CRC_CHUNK;

		rc = qfs_os_src_read(&src, off, buf, n);
		if (rc < 0) {
			free(buf);
			qfs_os_set_error(os, "read %s: %s", path, qfs_strerror(rc));
			goto err_close_fd;
		}
		src.crc32c = qfs_crc32c(src.crc32c, buf, n);
		off += n;
	}
	free(buf);
	rc = os->ops->put(os, key, &src);
err_close_fd:
	close(src.fd);
	return rc;
}

/* See objstore.h. */
int qfs_objstore_put_file(struct qfs_objstore *os, const char *key, const char *path)
{
	return put_file(os, key, path, 0);
}

/* See objstore.h: the backend may link src.path. */
int qfs_objstore_put_file_immutable(struct qfs_objstore *os, const char *key, const char *path)
{
	return put_file(os, key, path, 1);
}

/* ---- downloads ---- */

struct mem_sink {
	struct qfs_os_sink s;
	uint8_t *p;
	size_t cap;
	uint32_t crc;
};

static int mem_write(struct qfs_os_sink *s, const void *p, size_t len)
{
	struct mem_sink *m = (struct mem_sink *)s;

	if (m->s.len + len + 1 > m->cap) {
		size_t cap = m->cap ? m->cap : 4096;
		uint8_t *np;

		while (cap < m->s.len + len + 1)
			cap *= 2;
		np = realloc(m->p, cap);
		if (!np)
			return -ENOMEM;
		m->p = np;
		m->cap = cap;
	}
	memcpy(m->p + m->s.len, p, len);
	m->s.len += len;
	m->crc = qfs_crc32c(m->crc, p, len);
	return 0;
}

static int mem_reset(struct qfs_os_sink *s)
{
	struct mem_sink *m = (struct mem_sink *)s;

	m->s.len = 0;
	m->crc = 0;
	return 0;
}

/* Check a whole-object download: size and CRC32C against what is stored. */
static int verify(struct qfs_objstore *os, const char *key, const struct qfs_obj_info *info, uint64_t got_len,
		  uint32_t got_crc)
{
	if (got_len != info->size) {
		qfs_os_set_error(os, "object %s: got %llu bytes, expected %llu", key, (unsigned long long)got_len,
				 (unsigned long long)info->size);
		QFS_LOG(QFS_LOG_ERR, "objstore corrupt object key=%s got_bytes=%llu want_bytes=%llu", key,
			(unsigned long long)got_len, (unsigned long long)info->size);
		return QFS_ECORRUPT;
	}
	if (info->has_crc && got_crc != info->crc32c) {
		qfs_os_set_error(os, "object %s: crc32c %08x, expected %08x (corrupt object)", key, got_crc,
				 info->crc32c);
		QFS_LOG(QFS_LOG_ERR, "objstore corrupt object key=%s crc32c=%08x want=%08x", key, got_crc,
			info->crc32c);
		return QFS_ECORRUPT;
	}
	return 0;
}

int qfs_objstore_get(struct qfs_objstore *os, const char *key, uint64_t off, uint64_t len, void **data,
		     size_t *data_len)
{
	struct mem_sink m = { .s = { .write = mem_write, .reset = mem_reset } };
	struct qfs_obj_info info;
	int rc;

	os->err[0] = '\0';
	if (bad_key(os, key, 0) < 0)
		return -EINVAL;
	rc = os->ops->get(os, key, off, len, &m.s, &info);
	if (rc == 0 && off == 0 && len == 0)
		rc = verify(os, key, &info, m.s.len, m.crc);
	if (rc < 0) {
		free(m.p);
		return rc;
	}
	if (!m.p) {
		m.p = malloc(1);
		if (!m.p)
			return -ENOMEM;
	}
	m.p[m.s.len] = '\0'; /* convenience for text objects; not counted */
	*data = m.p;
	*data_len = m.s.len;
	return 0;
}

struct fd_sink {
	struct qfs_os_sink s;
	int fd;
	uint32_t crc;
};

static int fd_write(struct qfs_os_sink *s, const void *p, size_t len)
{
	struct fd_sink *f = (struct fd_sink *)s;
	int rc = qfs_sysio_write_all(f->fd, p, len);

	if (rc < 0)
		return rc;
	f->s.len += len;
	f->crc = qfs_crc32c(f->crc, p, len);
	return 0;
}

static int fd_reset(struct qfs_os_sink *s)
{
	struct fd_sink *f = (struct fd_sink *)s;

	if (qfs_sys_ftruncate(f->fd, 0) < 0 || lseek(f->fd, 0, SEEK_SET) < 0)
		return -errno;
	f->s.len = 0;
	f->crc = 0;
	return 0;
}

int qfs_objstore_get_file(struct qfs_objstore *os, const char *key, const char *path)
{
	struct fd_sink f = { .s = { .write = fd_write, .reset = fd_reset } };
	struct qfs_obj_info info;
	char tmp[PATH_MAX];
	int rc;

	os->err[0] = '\0';
	if (bad_key(os, key, 0) < 0)
		return -EINVAL;
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	f.fd = qfs_sys_open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (f.fd < 0) {
		rc = -errno;
		qfs_os_set_error(os, "create %s: %s", tmp, strerror(-rc));
		return rc;
	}
	rc = os->ops->get(os, key, 0, 0, &f.s, &info);
	if (rc == 0)
		rc = verify(os, key, &info, f.s.len, f.crc);
	if (rc == 0 && (rc = qfs_sysio_fsync(f.fd)) < 0) {
		qfs_os_set_error(os, "fsync %s: %s", tmp, strerror(-rc));
	}
	if (close(f.fd) < 0 && rc == 0)
		rc = -errno;
	if (rc < 0)
		goto err_unlink_tmp;
	if (qfs_sys_rename(tmp, path) < 0) {
		rc = -errno;
		qfs_os_set_error(os, "rename %s: %s", tmp, strerror(-rc));
		goto err_unlink_tmp;
	}
	rc = qfs_sysio_fsync_parent(path);
	if (rc < 0)
		qfs_os_set_error(os, "fsync directory of %s: %s", path, strerror(-rc));
	return rc;

err_unlink_tmp:
	qfs_sys_unlink(tmp);
	return rc;
}

int qfs_objstore_head(struct qfs_objstore *os, const char *key, struct qfs_obj_info *out)
{
	os->err[0] = '\0';
	if (bad_key(os, key, 0) < 0)
		return -EINVAL;
	return os->ops->head(os, key, out);
}

int qfs_objstore_delete(struct qfs_objstore *os, const char *key)
{
	os->err[0] = '\0';
	if (bad_key(os, key, 0) < 0)
		return -EINVAL;
	return os->ops->del(os, key);
}

int qfs_objstore_list(struct qfs_objstore *os, const char *prefix,
		      int (*cb)(const char *key, uint64_t size, void *arg), void *arg)
{
	os->err[0] = '\0';
	if (!prefix)
		prefix = "";
	if (bad_key(os, prefix, 1) < 0)
		return -EINVAL;
	return os->ops->list(os, prefix, cb, arg);
}
