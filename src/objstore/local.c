/*
 * local.c - the local-directory backend of src/objstore (interface in
 * objstore_int.h, layout in doc/objstore.md).
 *
 * Key "a/b/c" lives in ROOT/a/b/c.obj; the suffix keeps an object "a" and the
 * directory of "a/b" apart.  Each file starts with a 32-byte header
 * (magic "QFSOBJ1\n", size, CRC32C of the data, header CRC32C, all little
 * endian) followed by the data, so the checksum travels with the bytes and a
 * single rename publishes both.  Writes go to a hidden temp file in the same
 * directory (".NAME.obj.tmp.PID.N"), which is written, fsync'd, renamed over
 * the object and the directory fsync'd: a reader sees the old object or the
 * new one, never a part of one, even across a crash.  Directories are
 * created as needed (each new one made durable by an fsync of its parent)
 * and never removed, so a concurrent put never loses its parent.
 *
 * A linked object (put_file_immutable of a file on the same file system: a
 * sealed WAL segment) keeps its bytes in a hard link of that file,
 * "NAME.obj.<16 hex id>.data", and NAME.obj is a header alone with magic
 * "QFSOBJL\n" whose reserved bytes hold the id: no data byte is written.
 * The link is made first, the header published by the same temp + fsync +
 * rename as above, the data file of a replaced or deleted object unlinked
 * after its header.  Reads check the data file's length against the header
 * and whole-object reads its CRC32C, as for any object.
 *
 * Every write, fsync, rename, link, unlink and mkdir goes through the
 * system-I/O layer (common/sysio.h), which tests use to fail the nth one.
 *
 * List walks the directory under the prefix, gathers the keys and sorts them
 * with strcmp, which is S3's order (UTF-8 bytes).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/log.h"
#include "common/sysio.h"
#include "objstore/objstore_int.h"

#define HDR_LEN 32
#define COPY_CHUNK (1u << 20)
static const char MAGIC[8] = { 'Q', 'F', 'S', 'O', 'B', 'J', '1', '\n' };
static const char MAGIC_LINKED[8] = { 'Q', 'F', 'S', 'O', 'B', 'J', 'L', '\n' };

struct local {
	char root[PATH_MAX]; /* absolute, no trailing '/' */
	unsigned tmp_seq;    /* makes temp names unique within the process */
	int no_link;         /* copy: linking is off (cfg.link_immutable 0) or
				link(2) into root failed with EPERM... */
	int cannot_link;     /* link(2) into root failed with EPERM, ENOTSUP...:
				never try again, not even when short of space
				(EXDEV is per source and not remembered) */
	uint64_t keep_free;  /* cfg.keep_free: with linking off, link anyway
				when a copy would leave less free (bytes) */
	int short_logged;    /* the "links while short of space" line was logged
				since space was last found sufficient */
};

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static int root_missing(struct local *l)
{
	struct stat st;

	return stat(l->root, &st) < 0 || !S_ISDIR(st.st_mode);
}

/* ENOENT on an object path means "no such object" unless the root is gone. */
static int enoent(struct qfs_objstore *os, const char *key)
{
	struct local *l = os->be;

	if (root_missing(l)) {
		qfs_os_set_error(os, "local root %s is missing", l->root);
		return -ENXIO;
	}
	qfs_os_set_error(os, "no such object %s", key);
	return -ENOENT;
}

static int obj_path(struct local *l, const char *key, char *buf, size_t size)
{
	if (snprintf(buf, size, "%s/%s.obj", l->root, key) >= (int)size)
		return -ENAMETOOLONG;
	return 0;
}

/* Data file of a linked object: obj path + ".<16 hex id>.data". */
static int data_path(const char *objpath, uint64_t id, char *buf, size_t size)
{
	if (snprintf(buf, size, "%s.%016llx.data", objpath, (unsigned long long)id) >= (int)size)
		return -ENAMETOOLONG;
	return 0;
}

/* The data id of the linked object at path, 0 if it is not one (or cannot
 * be read: the caller only uses it to clean up). */
static uint64_t linked_id(const char *path)
{
	uint8_t hdr[HDR_LEN];
	uint64_t id = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	if (pread(fd, hdr, HDR_LEN, 0) == HDR_LEN && memcmp(hdr, MAGIC_LINKED, 8) == 0 &&
	    get_le32(hdr + 28) == qfs_crc32c(0, hdr, 28))
		id = get_le64(hdr + 20);
	close(fd);
	return id;
}

/* mkdir -p of the directory part of path (below root), fsync'ing the parent
 * of every directory created. */
static int make_parents(struct local *l, char *path)
{
	size_t rootlen = strlen(l->root);
	char *s;
	int rc;

	for (s = path + rootlen + 1; (s = strchr(s, '/')) != NULL; s++) {
		*s = '\0';
		if (qfs_sys_mkdir(path, 0755) == 0) {
			char *p = strrchr(path, '/');

			*p = '\0';
			rc = qfs_sysio_fsync_dir(path);
			*p = '/';
			if (rc < 0) {
				*s = '/';
				return rc;
			}
		} else if (errno != EEXIST) {
			rc = -errno;
			*s = '/';
			return rc;
		}
		*s = '/';
	}
	return 0;
}

/* 1 if copying size more bytes into the store would leave less than
 * keep_free bytes free on its file system: linking is then used even when
 * it is off (a full data disk must not be kept full by the archive's copy
 * of the segment whose release would free it; doc/objstore.md). */
static int short_of_space(struct local *l, uint64_t size)
{
	uint64_t avail;

	if (!l->keep_free || (avail = qfs_sysio_disk_avail(l->root)) == UINT64_MAX)
		return 0;
	if (avail >= size + l->keep_free) {
		l->short_logged = 0; /* the next shortage is logged again */
		return 0;
	}
	if (!l->short_logged) {
		l->short_logged = 1;
		QFS_LOG(QFS_LOG_WARN, "objstore local links instead of copying root=%s free=%llu size=%llu "
			"keep_free=%llu err=\"No space left on device\" action=\"free space on the disk, or "
			"move the archive to another disk\"", l->root, (unsigned long long)avail,
			(unsigned long long)size, (unsigned long long)l->keep_free);
	}
	return 1;
}

static int local_put(struct qfs_objstore *os, const char *key, const struct qfs_os_src *src)
{
	struct local *l = os->be;
	char path[PATH_MAX], tmp[PATH_MAX + 64], dpath[PATH_MAX + 32];
	uint8_t hdr[HDR_LEN] = { 0 };
	char *slash;
	uint8_t *buf = NULL;
	uint64_t off, id = 0, old_id;
	int fd, rc;

	if (root_missing(l))
		return enoent(os, key);
	rc = obj_path(l, key, path, sizeof(path));
	if (rc < 0)
		return rc;
	slash = strrchr(path, '/');
	snprintf(tmp, sizeof(tmp), "%.*s/.%s.tmp.%ld.%u", (int)(slash - path), path, slash + 1, (long)getpid(),
		 l->tmp_seq++);
	rc = make_parents(l, path);
	if (rc < 0) {
		qfs_os_set_error(os, "mkdir for %s: %s", key, strerror(-rc));
		return rc;
	}
	old_id = linked_id(path);
	if (src->path && !src->mem && !l->cannot_link && (!l->no_link || short_of_space(l, src->size))) {
		struct stat st;

		id = ((uint64_t)getpid() << 40 ^ (uint64_t)time(NULL) << 16 ^ l->tmp_seq++) | 1;
		if ((rc = data_path(path, id, dpath, sizeof(dpath))) < 0)
			return rc;
		if (qfs_sys_link(src->path, dpath) == 0) {
			/* the source was read for its CRC through fd: it must be
			 * the same file, whole, and durable (cheap for a sealed
			 * segment, which the WAL synced) */
			if (stat(dpath, &st) < 0 || (uint64_t)st.st_size != src->size ||
			    qfs_sysio_fsync(src->fd) < 0) {
				qfs_sys_unlink(dpath);
				id = 0;
			}
		} else {
			/* EXDEV is the source's file system (a snapshot staged
			 * in /tmp, say), not the store's: WAL segments may
			 * still link */
			if (errno == EPERM || errno == EMLINK || errno == ENOTSUP || errno == EOPNOTSUPP) {
				QFS_LOG(QFS_LOG_INFO, "objstore local copies instead of linking root=%s "
					"err=\"%s\"", l->root, strerror(errno));
				l->no_link = 1;
				l->cannot_link = 1;
			}
			id = 0;
		}
	}
	fd = qfs_sys_open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = -errno;
		qfs_os_set_error(os, "create %s: %s", tmp, strerror(-rc));
		if (id)
			qfs_sys_unlink(dpath);
		return rc;
	}
	memcpy(hdr, id ? MAGIC_LINKED : MAGIC, 8);
	put_le64(hdr + 8, src->size);
	put_le32(hdr + 16, src->crc32c);
	if (id)
		put_le64(hdr + 20, id);
	put_le32(hdr + 28, qfs_crc32c(0, hdr, 28));
	rc = qfs_sysio_write_all(fd, hdr, HDR_LEN);
	if (rc < 0)
		goto err_unlink_tmp;
	if (id) {
		/* nothing more: the data is the linked file */
	} else if (src->mem) {
		rc = qfs_sysio_write_all(fd, src->mem, src->size);
	} else {
		buf = malloc(COPY_CHUNK);
		rc = buf ? 0 : -ENOMEM;
		for (off = 0; rc == 0 && off < src->size;) {
			size_t n = src->size - off < COPY_CHUNK ? (size_t)(src->size - off) : COPY_CHUNK;

			rc = qfs_os_src_read(src, off, buf, n);
			if (rc == 0)
				rc = qfs_sysio_write_all(fd, buf, n);
			off += n;
		}
		free(buf);
	}
	if (rc < 0)
		goto err_unlink_tmp;
	rc = qfs_sysio_fsync(fd);
	if (rc < 0)
		goto err_unlink_tmp;
	if (qfs_sys_rename(tmp, path) < 0) {
		rc = -errno;
		goto err_unlink_tmp;
	}
	close(fd);
	if (old_id && old_id != id && data_path(path, old_id, dpath, sizeof(dpath)) == 0)
		qfs_sys_unlink(dpath); /* the replaced object's data */
	*slash = '\0';
	rc = qfs_sysio_fsync_dir(path);
	if (rc < 0) {
		/* the object is in place but maybe not durable: report it */
		qfs_os_set_error(os, "fsync directory of %s: %s", key, strerror(-rc));
		QFS_LOG(QFS_LOG_ERR, "objstore local fsync dir failed key=%s err=\"%s\"", key, strerror(-rc));
	}
	return rc;

err_unlink_tmp:
	close(fd);
	qfs_sys_unlink(tmp);
	if (id)
		qfs_sys_unlink(dpath);
	qfs_os_set_error(os, "write %s: %s", key, qfs_strerror(rc));
	QFS_LOG(QFS_LOG_WARN, "objstore local put failed key=%s err=\"%s\"", key, qfs_strerror(rc));
	return rc;
}

/* Open key's data and read its header; *fd (the file the data is read
 * from), *base (offset of the data in it) and *info set only on success. */
static int open_obj(struct qfs_objstore *os, const char *key, int *fd_out, uint64_t *base,
		    struct qfs_obj_info *info)
{
	struct local *l = os->be;
	char path[PATH_MAX];
	uint8_t hdr[HDR_LEN];
	struct stat st;
	ssize_t r;
	int fd, rc;

	rc = obj_path(l, key, path, sizeof(path));
	if (rc < 0)
		return rc;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		if (rc == -ENOENT || rc == -ENOTDIR)
			return enoent(os, key);
		qfs_os_set_error(os, "open %s: %s", path, strerror(-rc));
		return rc;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto err_close_fd;
	}
	r = pread(fd, hdr, HDR_LEN, 0);
	if (r < 0) {
		rc = -errno;
		goto err_close_fd;
	}
	*base = HDR_LEN;
	if (r == HDR_LEN && memcmp(hdr, MAGIC_LINKED, 8) == 0 && get_le32(hdr + 28) == qfs_crc32c(0, hdr, 28) &&
	    st.st_size == HDR_LEN) {
		char dpath[PATH_MAX + 32];
		int dfd;

		if ((rc = data_path(path, get_le64(hdr + 20), dpath, sizeof(dpath))) < 0)
			goto err_close_fd;
		dfd = open(dpath, O_RDONLY | O_CLOEXEC);
		if (dfd < 0 || fstat(dfd, &st) < 0) {
			if (dfd >= 0)
				close(dfd);
			rc = QFS_ECORRUPT;
			qfs_os_set_error(os, "object %s: data file %s missing (corrupt object)", key, dpath);
			QFS_LOG(QFS_LOG_ERR, "objstore corrupt object key=%s path=%s err=\"data file missing\"", key,
				dpath);
			goto err_close_fd;
		}
		close(fd);
		fd = dfd;
		*base = 0;
		st.st_size += HDR_LEN; /* checked below as for a plain object */
	}
	if (r != HDR_LEN || (*base && memcmp(hdr, MAGIC, 8) != 0) || get_le32(hdr + 28) != qfs_crc32c(0, hdr, 28) ||
	    (uint64_t)st.st_size != HDR_LEN + get_le64(hdr + 8)) {
		rc = QFS_ECORRUPT;
		qfs_os_set_error(os, "object %s: bad header or length (corrupt object)", key);
		QFS_LOG(QFS_LOG_ERR, "objstore corrupt object key=%s path=%s err=\"bad header or length\"", key, path);
		goto err_close_fd;
	}
	info->size = get_le64(hdr + 8);
	info->crc32c = get_le32(hdr + 16);
	info->has_crc = 1;
	info->mtime = (int64_t)st.st_mtime;
	*fd_out = fd;
	return 0;

err_close_fd:
	if (rc != QFS_ECORRUPT)
		qfs_os_set_error(os, "read %s: %s", path, qfs_strerror(rc));
	close(fd);
	return rc;
}

static int local_get(struct qfs_objstore *os, const char *key, uint64_t off, uint64_t len, struct qfs_os_sink *sink,
		     struct qfs_obj_info *info)
{
	struct qfs_obj_info in;
	uint8_t *buf;
	uint64_t end, base;
	int fd, rc;

	rc = open_obj(os, key, &fd, &base, &in);
	if (rc < 0)
		return rc;
	if (off > in.size || (off == in.size && in.size > 0 && !(off == 0 && len == 0))) {
		qfs_os_set_error(os, "object %s: range starts at %llu, size is %llu", key, (unsigned long long)off,
				 (unsigned long long)in.size);
		rc = -EINVAL;
		goto err_close_fd;
	}
	end = len == 0 || len > in.size - off ? in.size : off + len;
	buf = malloc(COPY_CHUNK);
	if (!buf) {
		rc = -ENOMEM;
		goto err_close_fd;
	}
	while (off < end) {
		size_t n = end - off < COPY_CHUNK ? (size_t)(end - off) : COPY_CHUNK;
		ssize_t r = pread(fd, buf, n, (off_t)(base + off));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			rc = r < 0 ? -errno : -EIO;
			qfs_os_set_error(os, "read %s: %s", key, strerror(-rc));
			break;
		}
		rc = sink->write(sink, buf, (size_t)r);
		if (rc < 0) {
			qfs_os_set_error(os, "store %s: %s", key, strerror(-rc));
			break;
		}
		off += (uint64_t)r;
	}
	free(buf);
	if (rc < 0)
		goto err_close_fd;
	close(fd);
	*info = in;
	return 0;

err_close_fd:
	close(fd);
	return rc;
}

static int local_head(struct qfs_objstore *os, const char *key, struct qfs_obj_info *out)
{
	uint64_t base;
	int fd, rc = open_obj(os, key, &fd, &base, out);

	if (rc == 0)
		close(fd);
	return rc;
}

static int local_del(struct qfs_objstore *os, const char *key)
{
	struct local *l = os->be;
	char path[PATH_MAX], dpath[PATH_MAX + 32];
	uint64_t id;
	int rc;

	rc = obj_path(l, key, path, sizeof(path));
	if (rc < 0)
		return rc;
	id = linked_id(path);
	if (qfs_sys_unlink(path) < 0) {
		rc = -errno;
		if (rc == -ENOENT || rc == -ENOTDIR)
			return root_missing(l) ? enoent(os, key) : 0;
		qfs_os_set_error(os, "unlink %s: %s", path, strerror(-rc));
		return rc;
	}
	if (id && data_path(path, id, dpath, sizeof(dpath)) == 0)
		qfs_sys_unlink(dpath);
	*strrchr(path, '/') = '\0';
	rc = qfs_sysio_fsync_dir(path);
	if (rc < 0)
		qfs_os_set_error(os, "fsync directory of %s: %s", key, strerror(-rc));
	return rc;
}

/* ---- list ---- */

struct ent {
	char *key;
	uint64_t size;
};

struct walk {
	struct ent *v;
	size_t n, cap;
	const char *prefix;
};

static int add_ent(struct walk *w, const char *key, size_t keylen, uint64_t size)
{
	if (strncmp(key, w->prefix, strlen(w->prefix)) != 0)
		return 0;
	if (w->n == w->cap) {
		size_t cap = w->cap ? 2 * w->cap : 64;
		struct ent *nv = realloc(w->v, cap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		w->v = nv;
		w->cap = cap;
	}
	w->v[w->n].key = strndup(key, keylen);
	if (!w->v[w->n].key)
		return -ENOMEM;
	w->v[w->n].size = size;
	w->n++;
	return 0;
}

/* Walk dir (rel: its key prefix, "" or ending in '/'), collecting keys. */
static int walk_dir(struct walk *w, const char *root, const char *rel)
{
	char path[PATH_MAX], sub[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int rc = 0;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	d = opendir(path);
	if (!d)
		return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
	while (rc == 0 && (errno = 0, de = readdir(d)) != NULL) {
		size_t nl = strlen(de->d_name);
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (snprintf(sub, sizeof(sub), "%s%s", rel, de->d_name) >= (int)sizeof(sub))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue; /* raced with a rename or unlink */
		if (S_ISDIR(st.st_mode)) {
			if (snprintf(sub, sizeof(sub), "%s%s/", rel, de->d_name) < (int)sizeof(sub))
				rc = walk_dir(w, root, sub);
		} else if (S_ISREG(st.st_mode) && nl > 4 &&
			   strcmp(de->d_name + nl - 4, ".obj") == 0) {
			uint64_t size = st.st_size >= HDR_LEN ? (uint64_t)st.st_size - HDR_LEN : 0;

			if (st.st_size == HDR_LEN) { /* maybe a linked object: its data file */
				char op[PATH_MAX], dp[PATH_MAX + 32];
				uint64_t id;
				struct stat ds;

				snprintf(op, sizeof(op), "%s/%s", root, sub);
				id = linked_id(op);
				if (id && data_path(op, id, dp, sizeof(dp)) == 0 && stat(dp, &ds) == 0)
					size = (uint64_t)ds.st_size;
			}

			rc = add_ent(w, sub, strlen(sub) - 4, size);
		}
	}
	if (rc == 0 && errno != 0)
		rc = -errno;
	closedir(d);
	return rc;
}

static int ent_cmp(const void *a, const void *b)
{
	return strcmp(((const struct ent *)a)->key, ((const struct ent *)b)->key);
}

static int local_list(struct qfs_objstore *os, const char *prefix,
		      int (*cb)(const char *key, uint64_t size, void *arg), void *arg)
{
	struct local *l = os->be;
	struct walk w = { .prefix = prefix };
	char rel[QFS_OBJSTORE_KEY_MAX + 2];
	const char *slash = strrchr(prefix, '/');
	size_t i;
	int rc;

	if (root_missing(l)) {
		qfs_os_set_error(os, "local root %s is missing", l->root);
		return -ENXIO;
	}
	/* start at the deepest directory the prefix names completely */
	snprintf(rel, sizeof(rel), "%.*s", slash ? (int)(slash - prefix + 1) : 0, prefix);
	rc = walk_dir(&w, l->root, rel);
	if (rc < 0) {
		qfs_os_set_error(os, "list %s: %s", prefix, strerror(-rc));
		goto out_free;
	}
	if (w.n > 1)
		qsort(w.v, w.n, sizeof(*w.v), ent_cmp);
	for (i = 0; i < w.n; i++) {
		rc = cb(w.v[i].key, w.v[i].size, arg);
		if (rc != 0)
			break;
	}
out_free:
	for (i = 0; i < w.n; i++)
		free(w.v[i].key);
	free(w.v);
	return rc;
}

static void local_close(struct qfs_objstore *os)
{
	free(os->be);
}

static const struct qfs_objstore_ops local_ops = {
	.name = "local",
	.put = local_put,
	.get = local_get,
	.head = local_head,
	.del = local_del,
	.list = local_list,
	.close = local_close,
};

int qfs_os_local_open(struct qfs_objstore *os, const struct qfs_objstore_cfg *cfg, const char *root)
{
	struct local *l;
	size_t n = strlen(root);

	if (root[0] != '/' || n + QFS_OBJSTORE_KEY_MAX + 64 >= PATH_MAX) {
		QFS_LOG(QFS_LOG_ERR, "objstore open failed url=%s err=\"want file:///absolute/dir\"", cfg->url);
		return -EINVAL;
	}
	while (n > 1 && root[n - 1] == '/')
		n--;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	memcpy(l->root, root, n);
	l->no_link = !cfg->link_immutable;
	l->keep_free = cfg->keep_free;
	if (root_missing(l)) {
		QFS_LOG(QFS_LOG_ERR, "objstore open failed url=%s err=\"directory missing\"", cfg->url);
		free(l);
		return -ENXIO;
	}
	os->be = l;
	os->ops = &local_ops;
	snprintf(os->desc, sizeof(os->desc), "file://%s", l->root);
	return 0;
}
