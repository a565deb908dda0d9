/*
 * check_objstore.c - unit tests of src/objstore through its local-directory
 * backend (the S3 backend is tested against a real server by
 * tests/integration/objstore_s3.sh).
 *
 * Covers: round trips from memory and from files (empty, small, 3 MiB),
 * linked objects (put_file_immutable: hard link, checked reads, list size,
 * replace and delete remove the data file, a changed data file is corrupt),
 * replace, ranged reads (inside, to the end, past the end), head, list order
 * (strcmp order across directories, "a-c" before "a/b") and prefixes,
 * delete (idempotent), key validation (-EINVAL for "", "/x", "..", "a//b",
 * "a/", control bytes, too long), corruption (a flipped data byte, a
 * flipped header byte, a truncated file: QFS_ECORRUPT on whole gets and on
 * get_file, which leaves no file behind), a missing root (-ENXIO), bad urls,
 * and atomicity under fault injection: the i-th write/fsync/rename of a put
 * fails, and after each the key holds exactly the old object or the new
 * one, and no temp file is left behind.
 */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/log.h"
#include "common/sysio.h"
#include "objstore/objstore.h"
#include "objstore/objstore_int.h"

static char base[1024]; /* private temp dir of one test */
static char url[1100];
static struct qfs_objstore *OS;

/* Fail the nth write, fsync or rename (link included) of the local backend
 * from now with err, through the system-I/O fault table. */
static void fail_io(unsigned long nth, int err)
{
	qfs_sysio_fault_set(QFS_SYSIO_BIT(QFS_SYSIO_WRITE) | QFS_SYSIO_BIT(QFS_SYSIO_SYNC) |
			    QFS_SYSIO_BIT(QFS_SYSIO_RENAME), nth, err, 0);
}

static void setup(void)
{
	const char *tmp = getenv("TMPDIR");
	struct qfs_objstore_cfg cfg = { 0 };

	snprintf(base, sizeof(base), "%s/check_objstore.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(base));
	snprintf(url, sizeof(url), "file://%s", base);
	cfg.url = url;
	qfs_log_level = getenv("QFS_TEST_LOG") ? QFS_LOG_DEBUG : -1;
	qfs_sysio_reset();
	ck_assert_int_eq(qfs_objstore_open(&cfg, &OS), 0);
}

static void teardown(void)
{
	char cmd[1200];

	qfs_objstore_close(OS);
	OS = NULL;
	qfs_sysio_reset();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	ck_assert_int_eq(system(cmd), 0);
}

static void put_str(const char *key, const char *s)
{
	ck_assert_int_eq(qfs_objstore_put(OS, key, s, strlen(s)), 0);
}

/* get key whole; returns malloc'd bytes (NUL-terminated) or NULL with *rc */
static char *get_str(const char *key, int *rc)
{
	void *d = NULL;
	size_t n = 0;

	*rc = qfs_objstore_get(OS, key, 0, 0, &d, &n);
	if (*rc < 0)
		return NULL;
	ck_assert_uint_eq(strlen(d), n);
	return d;
}

static void assert_obj(const char *key, const char *want)
{
	int rc;
	char *got = get_str(key, &rc);

	ck_assert_int_eq(rc, 0);
	ck_assert_str_eq(got, want);
	free(got);
}

static void obj_file(const char *key, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s.obj", base, key);
}

static void flip_byte(const char *key, off_t off)
{
	char path[2048];
	unsigned char c;
	int fd;

	obj_file(key, path, sizeof(path));
	fd = open(path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, &c, 1, off), 1);
	c ^= 0x40;
	ck_assert_int_eq(pwrite(fd, &c, 1, off), 1);
	close(fd);
}

/* number of entries in dir whose name contains ".tmp." */
static int count_tmp(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d)) != NULL)
		if (strstr(de->d_name, ".tmp."))
			n++;
	closedir(d);
	return n;
}

/* ---- round trips ---- */

START_TEST(test_roundtrip_mem)
{
	struct qfs_obj_info info;
	void *d;
	size_t n;

	put_str("a", "hello");
	assert_obj("a", "hello");
	ck_assert_int_eq(qfs_objstore_head(OS, "a", &info), 0);
	ck_assert_uint_eq(info.size, 5);
	ck_assert_int_eq(info.has_crc, 1);
	ck_assert_uint_eq(info.crc32c, qfs_crc32c(0, "hello", 5));
	ck_assert_int_gt(info.mtime, 0);
	/* replace */
	put_str("a", "bye");
	assert_obj("a", "bye");
	/* empty object */
	ck_assert_int_eq(qfs_objstore_put(OS, "groups/1/empty", NULL, 0), 0);
	ck_assert_int_eq(qfs_objstore_get(OS, "groups/1/empty", 0, 0, &d, &n), 0);
	ck_assert_uint_eq(n, 0);
	free(d);
	/* an object "x" and objects under "x/" coexist */
	put_str("x", "file");
	put_str("x/y", "below");
	assert_obj("x", "file");
	assert_obj("x/y", "below");
	/* missing */
	ck_assert_int_eq(qfs_objstore_get(OS, "nope", 0, 0, &d, &n), -ENOENT);
	ck_assert_int_eq(qfs_objstore_head(OS, "nope/deeper", &info), -ENOENT);
	ck_assert_str_ne(qfs_objstore_last_error(OS), "");
	ck_assert_str_eq(qfs_objstore_describe(OS), url);
}
END_TEST

START_TEST(test_roundtrip_file)
{
	char src[1100], dst[1100], cmd[2400];
	size_t len = 3u << 20;
	uint8_t *buf = malloc(len);
	struct qfs_obj_info info;
	FILE *f;

	ck_assert_ptr_nonnull(buf);
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(i * 2654435761u >> 13);
	snprintf(src, sizeof(src), "%s/src.bin", base);
	snprintf(dst, sizeof(dst), "%s/dst.bin", base);
	f = fopen(src, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(buf, 1, len, f), len);
	fclose(f);
	ck_assert_int_eq(qfs_objstore_put_file(OS, "seg/0001", src), 0);
	ck_assert_int_eq(qfs_objstore_head(OS, "seg/0001", &info), 0);
	ck_assert_uint_eq(info.size, len);
	ck_assert_uint_eq(info.crc32c, qfs_crc32c(0, buf, len));
	ck_assert_int_eq(qfs_objstore_get_file(OS, "seg/0001", dst), 0);
	snprintf(cmd, sizeof(cmd), "cmp -s '%s' '%s'", src, dst);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_int_eq(access(strcat(dst, ".tmp"), F_OK), -1);
	/* missing source file and missing object */
	ck_assert_int_eq(qfs_objstore_put_file(OS, "seg/0002", "/nonexistent/file"), -ENOENT);
	snprintf(dst, sizeof(dst), "%s/dst2.bin", base);
	ck_assert_int_eq(qfs_objstore_get_file(OS, "seg/0002", dst), -ENOENT);
	ck_assert_int_eq(access(dst, F_OK), -1);
	free(buf);
}
END_TEST

/* put_file_immutable on the same file system: the object's bytes are a
 * hard link of the source (no copy), the object reads back checked, list
 * reports its size, a replace and a delete remove the old data file, and a
 * changed data file is QFS_ECORRUPT on a whole get. */
static int count_data_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);
		n += l > 5 && strcmp(de->d_name + l - 5, ".data") == 0;
	}
	closedir(d);
	return n;
}

static int list_size_cb(const char *key, uint64_t size, void *arg)
{
	(void)key;
	*(uint64_t *)arg = size;
	return 0;
}

START_TEST(test_put_linked)
{
	char src[1100], dir[1100], dpath[1200];
	size_t len = 1u << 20;
	uint8_t *buf = malloc(len);
	struct qfs_obj_info info;
	struct stat st;
	uint64_t lsize = 0;
	void *d;
	size_t n;
	FILE *f;

	struct qfs_objstore_cfg cfg = { .url = url, .link_immutable = 1 };

	ck_assert_ptr_nonnull(buf);
	/* link_immutable 0 (the cfg's zero value; a mount with -o
	 * archive_link=off, the mount's default being on): a copy, an object
	 * holding the bytes */
	snprintf(src, sizeof(src), "%s/plain.wal", base);
	f = fopen(src, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite("segment", 1, 7, f), 7);
	fclose(f);
	ck_assert_int_eq(qfs_objstore_put_file_immutable(OS, "g/plain", src), 0);
	ck_assert_int_eq(stat(src, &st), 0);
	ck_assert_uint_eq(st.st_nlink, 1);
	snprintf(dpath, sizeof(dpath), "%s/g/plain.obj", base);
	ck_assert_int_eq(stat(dpath, &st), 0);
	ck_assert_int_eq(st.st_size, 32 + 7);
	ck_assert_int_eq(qfs_objstore_get(OS, "g/plain", 0, 0, &d, &n), 0);
	ck_assert_uint_eq(n, 7);
	ck_assert_int_eq(memcmp(d, "segment", 7), 0);
	free(d);
	qfs_objstore_close(OS);
	ck_assert_int_eq(qfs_objstore_open(&cfg, &OS), 0);
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(i * 2654435761u >> 11);
	snprintf(src, sizeof(src), "%s/seg.wal", base);
	f = fopen(src, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(buf, 1, len, f), len);
	fclose(f);
	ck_assert_int_eq(qfs_objstore_put_file_immutable(OS, "g/wal/0001", src), 0);
	/* linked: the source has a second name, the object file is a header */
	ck_assert_int_eq(stat(src, &st), 0);
	ck_assert_uint_eq(st.st_nlink, 2);
	snprintf(dir, sizeof(dir), "%s/g/wal", base);
	ck_assert_int_eq(count_data_files(dir), 1);
	snprintf(dpath, sizeof(dpath), "%s/0001.obj", dir);
	ck_assert_int_eq(stat(dpath, &st), 0);
	ck_assert_int_eq(st.st_size, 32);
	ck_assert_int_eq(qfs_objstore_head(OS, "g/wal/0001", &info), 0);
	ck_assert_uint_eq(info.size, len);
	ck_assert_uint_eq(info.crc32c, qfs_crc32c(0, buf, len));
	ck_assert_int_eq(qfs_objstore_get(OS, "g/wal/0001", 0, 0, &d, &n), 0);
	ck_assert_uint_eq(n, len);
	ck_assert_int_eq(memcmp(d, buf, len), 0);
	free(d);
	ck_assert_int_eq(qfs_objstore_get(OS, "g/wal/0001", 100, 10, &d, &n), 0);
	ck_assert_uint_eq(n, 10);
	ck_assert_int_eq(memcmp(d, buf + 100, 10), 0);
	free(d);
	ck_assert_int_eq(qfs_objstore_list(OS, "g/wal/", list_size_cb, &lsize), 0);
	ck_assert_uint_eq(lsize, len);
	/* the source going away (a released WAL segment) keeps the object */
	ck_assert_int_eq(unlink(src), 0);
	ck_assert_int_eq(qfs_objstore_get(OS, "g/wal/0001", 0, 0, &d, &n), 0);
	ck_assert_uint_eq(n, len);
	free(d);
	/* replaced by a plain object: the old data file goes */
	ck_assert_int_eq(qfs_objstore_put(OS, "g/wal/0001", "abc", 3), 0);
	ck_assert_int_eq(count_data_files(dir), 0);
	ck_assert_int_eq(qfs_objstore_get(OS, "g/wal/0001", 0, 0, &d, &n), 0);
	ck_assert_uint_eq(n, 3);
	free(d);
	/* linked again, then a byte of the data file changes: corrupt */
	f = fopen(src, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(buf, 1, len, f), len);
	fclose(f);
	ck_assert_int_eq(qfs_objstore_put_file_immutable(OS, "g/wal/0002", src), 0);
	f = fopen(src, "r+b");
	ck_assert_ptr_nonnull(f);
	fseek(f, 4096, SEEK_SET);
	fputc(buf[4096] ^ 0x5a, f);
	fclose(f);
	ck_assert_int_eq(qfs_objstore_get(OS, "g/wal/0002", 0, 0, &d, &n), QFS_ECORRUPT);
	/* a delete removes the data file too */
	ck_assert_int_eq(qfs_objstore_delete(OS, "g/wal/0002"), 0);
	ck_assert_int_eq(count_data_files(dir), 0);
	ck_assert_int_eq(stat(src, &st), 0);
	ck_assert_uint_eq(st.st_nlink, 1);
	ck_assert_int_eq(qfs_objstore_head(OS, "g/wal/0002", &info), -ENOENT);
	free(buf);
}
END_TEST

/* Linking off, but a copy would leave less than keep_free free on the
 * store's file system (issue 10: a full data disk): the segment is linked
 * anyway, reads back whole; with room enough it is copied; a source on
 * another file system (EXDEV) is copied and does not stop later links. */
START_TEST(test_put_linked_short)
{
	char src[1100], other[64];
	struct qfs_objstore_cfg cfg = { .url = url, .keep_free = 1ull << 62 };
	struct qfs_objstore_cfg roomy = { .url = url, .keep_free = 1 };
	struct stat st;
	void *d;
	size_t n;
	FILE *f;

	qfs_objstore_close(OS);
	ck_assert_int_eq(qfs_objstore_open(&roomy, &OS), 0);
	snprintf(src, sizeof(src), "%s/short.wal", base);
	f = fopen(src, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite("segment bytes", 1, 13, f), 13);
	fclose(f);
	ck_assert_int_eq(qfs_objstore_put_file_immutable(OS, "s/roomy", src), 0);
	ck_assert_int_eq(stat(src, &st), 0);
	ck_assert_uint_eq(st.st_nlink, 1); /* copied */
	qfs_objstore_close(OS);
	ck_assert_int_eq(qfs_objstore_open(&cfg, &OS), 0);
	/* /dev/shm is another file system than base (a temp dir) here;
	 * where it is not, the put links and the test still holds */
	snprintf(other, sizeof(other), "/dev/shm/qfs-short-%ld", (long)getpid());
	f = fopen(other, "wb");
	if (f) {
		ck_assert_uint_eq(fwrite("staged", 1, 6, f), 6);
		fclose(f);
		ck_assert_int_eq(qfs_objstore_put_file_immutable(OS, "s/staged", other), 0);
		ck_assert_int_eq(qfs_objstore_get(OS, "s/staged", 0, 0, &d, &n), 0);
		ck_assert_uint_eq(n, 6);
		free(d);
		unlink(other);
	}
	ck_assert_int_eq(qfs_objstore_put_file_immutable(OS, "s/short", src), 0);
	ck_assert_int_eq(stat(src, &st), 0);
	ck_assert_uint_eq(st.st_nlink, 2); /* linked */
	ck_assert_int_eq(unlink(src), 0);   /* the segment released */
	ck_assert_int_eq(qfs_objstore_get(OS, "s/short", 0, 0, &d, &n), 0);
	ck_assert_uint_eq(n, 13);
	ck_assert_int_eq(memcmp(d, "segment bytes", 13), 0);
	free(d);
	/* a put from memory is never linked (nothing to link) */
	ck_assert_int_eq(qfs_objstore_put(OS, "s/mem", "abc", 3), 0);
}
END_TEST

START_TEST(test_range)
{
	void *d;
	size_t n;

	put_str("r", "0123456789");
	ck_assert_int_eq(qfs_objstore_get(OS, "r", 2, 3, &d, &n), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_mem_eq(d, "234", 3);
	free(d);
	ck_assert_int_eq(qfs_objstore_get(OS, "r", 7, 0, &d, &n), 0); /* to the end */
	ck_assert_uint_eq(n, 3);
	ck_assert_mem_eq(d, "789", 3);
	free(d);
	ck_assert_int_eq(qfs_objstore_get(OS, "r", 8, 100, &d, &n), 0); /* clipped */
	ck_assert_uint_eq(n, 2);
	ck_assert_mem_eq(d, "89", 2);
	free(d);
	ck_assert_int_eq(qfs_objstore_get(OS, "r", 0, 1, &d, &n), 0);
	ck_assert_uint_eq(n, 1);
	free(d);
	ck_assert_int_eq(qfs_objstore_get(OS, "r", 10, 1, &d, &n), -EINVAL);
	ck_assert_int_eq(qfs_objstore_get(OS, "r", 11, 0, &d, &n), -EINVAL);
	/* a ranged read is not checked against the whole-object CRC, but a
	 * whole read is */
	flip_byte("r", 32 + 9);
	ck_assert_int_eq(qfs_objstore_get(OS, "r", 0, 3, &d, &n), 0);
	ck_assert_mem_eq(d, "012", 3);
	free(d);
	ck_assert_int_eq(qfs_objstore_get(OS, "r", 0, 0, &d, &n), QFS_ECORRUPT);
}
END_TEST

/* ---- list ---- */

struct collect {
	char keys[64][64];
	uint64_t sizes[64];
	int n, stop_at;
};

static int collect_cb(const char *key, uint64_t size, void *arg)
{
	struct collect *c = arg;

	ck_assert_int_lt(c->n, 64);
	snprintf(c->keys[c->n], sizeof(c->keys[0]), "%s", key);
	c->sizes[c->n] = size;
	c->n++;
	return c->stop_at && c->n == c->stop_at ? 42 : 0;
}

START_TEST(test_list)
{
	static const char *keys[] = { "a/b", "a-c", "a", "b/2", "b/10", "b/1/x", "a/b/c", "ab", "a/.hidden" };
	static const char *sorted[] = { "a", "a-c", "a/.hidden", "a/b", "a/b/c", "ab", "b/1/x", "b/10", "b/2" };
	struct collect c = { .n = 0 };
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		put_str(keys[i], keys[i]);
	ck_assert_int_eq(qfs_objstore_list(OS, "", collect_cb, &c), 0);
	ck_assert_int_eq(c.n, 9);
	for (i = 0; i < 9; i++) {
		ck_assert_str_eq(c.keys[i], sorted[i]);
		ck_assert_uint_eq(c.sizes[i], strlen(sorted[i]));
	}
	/* prefix ending inside a component */
	c.n = 0;
	ck_assert_int_eq(qfs_objstore_list(OS, "a", collect_cb, &c), 0);
	ck_assert_int_eq(c.n, 6);
	ck_assert_str_eq(c.keys[5], "ab");
	c.n = 0;
	ck_assert_int_eq(qfs_objstore_list(OS, "b/1", collect_cb, &c), 0);
	ck_assert_int_eq(c.n, 2);
	ck_assert_str_eq(c.keys[0], "b/1/x");
	ck_assert_str_eq(c.keys[1], "b/10");
	/* prefix naming a directory */
	c.n = 0;
	ck_assert_int_eq(qfs_objstore_list(OS, "a/", collect_cb, &c), 0);
	ck_assert_int_eq(c.n, 3);
	ck_assert_str_eq(c.keys[0], "a/.hidden");
	/* no match */
	c.n = 0;
	ck_assert_int_eq(qfs_objstore_list(OS, "zz/", collect_cb, &c), 0);
	ck_assert_int_eq(c.n, 0);
	/* the callback stops the walk and its value comes back */
	c.n = 0;
	c.stop_at = 2;
	ck_assert_int_eq(qfs_objstore_list(OS, "", collect_cb, &c), 42);
	ck_assert_int_eq(c.n, 2);
	/* deleted keys vanish; temp files and stray files are not objects */
	ck_assert_int_eq(qfs_objstore_delete(OS, "a/b"), 0);
	{
		char p[1200];
		FILE *f;

		snprintf(p, sizeof(p), "%s/a/.b.obj.tmp.1.1", base);
		f = fopen(p, "w");
		ck_assert_ptr_nonnull(f);
		fclose(f);
		snprintf(p, sizeof(p), "%s/a/stray.txt", base);
		f = fopen(p, "w");
		ck_assert_ptr_nonnull(f);
		fclose(f);
	}
	c.n = 0;
	c.stop_at = 0;
	ck_assert_int_eq(qfs_objstore_list(OS, "a/", collect_cb, &c), 0);
	ck_assert_int_eq(c.n, 2);
	ck_assert_str_eq(c.keys[1], "a/b/c");
}
END_TEST

START_TEST(test_delete)
{
	void *d;
	size_t n;

	put_str("d/1", "x");
	ck_assert_int_eq(qfs_objstore_delete(OS, "d/1"), 0);
	ck_assert_int_eq(qfs_objstore_get(OS, "d/1", 0, 0, &d, &n), -ENOENT);
	ck_assert_int_eq(qfs_objstore_delete(OS, "d/1"), 0);      /* again */
	ck_assert_int_eq(qfs_objstore_delete(OS, "never/was"), 0); /* never existed */
	ck_assert_int_eq(qfs_objstore_delete(OS, ".."), -EINVAL);
}
END_TEST

START_TEST(test_bad_keys)
{
	static const char *bad[] = { "", "/x", "..", ".", "a/../b", "a/./b", "a//b", "a/", "x\ny", "x\x7f" };
	char longkey[QFS_OBJSTORE_KEY_MAX + 2], longcomp[QFS_OBJSTORE_COMP_MAX + 2];
	struct qfs_obj_info info;
	void *d;
	size_t n;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(qfs_objstore_put(OS, bad[i], "x", 1), -EINVAL);
		ck_assert_int_eq(qfs_objstore_get(OS, bad[i], 0, 0, &d, &n), -EINVAL);
		ck_assert_int_eq(qfs_objstore_head(OS, bad[i], &info), -EINVAL);
		ck_assert_int_eq(qfs_objstore_delete(OS, bad[i]), -EINVAL);
		ck_assert_int_eq(qfs_objstore_put_file(OS, bad[i], "/etc/hostname"), -EINVAL);
		ck_assert_ptr_nonnull(strstr(qfs_objstore_last_error(OS), "invalid key"));
	}
	ck_assert_int_eq(qfs_objstore_put(OS, NULL, "x", 1), -EINVAL);
	memset(longkey, 'k', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = '\0';
	for (size_t i = 100; i < sizeof(longkey) - 1; i += 100)
		longkey[i] = '/';
	ck_assert_int_eq(qfs_objstore_put(OS, longkey, "x", 1), -EINVAL);
	longkey[QFS_OBJSTORE_KEY_MAX] = '\0';
	ck_assert_int_eq(qfs_objstore_put(OS, longkey, "x", 1), 0);
	memset(longcomp, 'c', sizeof(longcomp) - 1);
	longcomp[sizeof(longcomp) - 1] = '\0';
	ck_assert_int_eq(qfs_objstore_put(OS, longcomp, "x", 1), -EINVAL);
	longcomp[QFS_OBJSTORE_COMP_MAX] = '\0';
	ck_assert_int_eq(qfs_objstore_put(OS, longcomp, "x", 1), 0);
	/* list prefixes: "" and partial components are fine, "/x" and "a//" not */
	ck_assert_int_eq(qfs_objstore_key_check("", 1), 0);
	ck_assert_int_eq(qfs_objstore_key_check("a/", 1), 0);
	ck_assert_int_eq(qfs_objstore_key_check("a/..", 1), 0);
	ck_assert_int_eq(qfs_objstore_key_check("/x", 1), -EINVAL);
	ck_assert_int_eq(qfs_objstore_key_check("a//", 1), -EINVAL);
	ck_assert_int_eq(qfs_objstore_key_check("../a", 1), -EINVAL);
	/* odd but valid keys */
	put_str("sp ace/üñí/+%&?#", "odd");
	assert_obj("sp ace/üñí/+%&?#", "odd");
	put_str(".dot/x.obj", "suffix");
	assert_obj(".dot/x.obj", "suffix");
}
END_TEST

/* ---- corruption ---- */

START_TEST(test_corruption)
{
	char path[1200], dst[1200];
	struct qfs_obj_info info;
	int rc;

	put_str("c/data", "precious bytes");
	flip_byte("c/data", 32 + 3);
	ck_assert_ptr_null(get_str("c/data", &rc));
	ck_assert_int_eq(rc, QFS_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(qfs_objstore_last_error(OS), "corrupt"));
	snprintf(dst, sizeof(dst), "%s/out", base);
	ck_assert_int_eq(qfs_objstore_get_file(OS, "c/data", dst), QFS_ECORRUPT);
	ck_assert_int_eq(access(dst, F_OK), -1);
	strcat(dst, ".tmp");
	ck_assert_int_eq(access(dst, F_OK), -1);
	/* header byte (the stored size) */
	put_str("c/hdr", "header");
	flip_byte("c/hdr", 9);
	ck_assert_int_eq(qfs_objstore_head(OS, "c/hdr", &info), QFS_ECORRUPT);
	ck_assert_ptr_null(get_str("c/hdr", &rc));
	ck_assert_int_eq(rc, QFS_ECORRUPT);
	/* stored CRC */
	put_str("c/crc", "crc");
	flip_byte("c/crc", 17);
	ck_assert_ptr_null(get_str("c/crc", &rc));
	ck_assert_int_eq(rc, QFS_ECORRUPT);
	/* truncated file */
	put_str("c/cut", "truncate me");
	obj_file("c/cut", path, sizeof(path));
	ck_assert_int_eq(truncate(path, 32 + 4), 0);
	ck_assert_ptr_null(get_str("c/cut", &rc));
	ck_assert_int_eq(rc, QFS_ECORRUPT);
	/* not our format at all */
	obj_file("c/alien", path, sizeof(path));
	{
		FILE *f = fopen(path, "w");

		ck_assert_ptr_nonnull(f);
		fputs("plain text written by someone else, longer than a header", f);
		fclose(f);
	}
	ck_assert_ptr_null(get_str("c/alien", &rc));
	ck_assert_int_eq(rc, QFS_ECORRUPT);
	/* an intact neighbour is unaffected */
	put_str("c/ok", "fine");
	assert_obj("c/ok", "fine");
}
END_TEST

/* ---- atomicity under injected failures ---- */

START_TEST(test_atomic_put)
{
	/* _i: which write/fsync/rename fails (0 = the first) */
	const char *old = "old contents of the object";
	char big[200000], dir[1200];
	int rc, kind = _i % 2;
	char *got;

	memset(big, 'N', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	put_str("atom/k", old);
	fail_io((unsigned long)_i / 2 + 1, kind ? ENOSPC : EIO);
	rc = qfs_objstore_put(OS, "atom/k", big, strlen(big));
	qfs_sysio_reset();
	got = get_str("atom/k", &rc);
	ck_assert_int_eq(rc, 0);
	if (strcmp(got, old) != 0)
		ck_assert_str_eq(got, big); /* the old object or the new, nothing else */
	free(got);
	snprintf(dir, sizeof(dir), "%s/atom", base);
	ck_assert_int_eq(count_tmp(dir), 0);
	/* and the store still works */
	put_str("atom/k", "after");
	assert_obj("atom/k", "after");
}
END_TEST

START_TEST(test_atomic_fault_codes)
{
	/* each fault point, with its error surfacing as the return value */
	int rc, fails = 0, oks = 0, absent = 0;
	char *got;

	for (int i = 0; i < 10; i++) {
		fail_io((unsigned long)i + 1, ENOSPC);
		rc = qfs_objstore_put(OS, "f/new", "value", 5);
		qfs_sysio_reset();
		if (rc == 0) {
			oks++;
			assert_obj("f/new", "value");
			ck_assert_int_eq(qfs_objstore_delete(OS, "f/new"), 0);
		} else {
			fails++;
			ck_assert_int_eq(rc, -ENOSPC);
			ck_assert_str_ne(qfs_objstore_last_error(OS), "");
			/* a failure before the rename leaves nothing; one after it
			 * (the directory fsync) leaves the new object, maybe not
			 * durable: never anything else */
			got = get_str("f/new", &rc);
			if (got) {
				ck_assert_str_eq(got, "value");
				free(got);
				ck_assert_int_eq(qfs_objstore_delete(OS, "f/new"), 0);
			} else {
				ck_assert_int_eq(rc, -ENOENT);
				absent++;
			}
		}
	}
	/* a put of a new key in a new directory has at least: 2 dir fsyncs
	 * (f/ created), header write, data write, fsync, rename, dir fsync */
	ck_assert_int_ge(fails, 5);
	ck_assert_int_ge(absent, 4);
	ck_assert_int_ge(oks, 1);
}
END_TEST

/* ---- configuration ---- */

START_TEST(test_open_errors)
{
	struct qfs_objstore_cfg cfg = { 0 };
	struct qfs_objstore *os = NULL;
	char u[1200];
	void *d;
	size_t n;

	cfg.url = "ftp://x";
	ck_assert_int_eq(qfs_objstore_open(&cfg, &os), -EINVAL);
	cfg.url = "file://relative/dir";
	ck_assert_int_eq(qfs_objstore_open(&cfg, &os), -EINVAL);
	snprintf(u, sizeof(u), "file://%s/missing", base);
	cfg.url = u;
	ck_assert_int_eq(qfs_objstore_open(&cfg, &os), -ENXIO);
	ck_assert_ptr_null(os);
	cfg.url = NULL;
	ck_assert_int_eq(qfs_objstore_open(&cfg, &os), -EINVAL);
	cfg.url = "s3://Bad_Bucket/x";
	ck_assert_int_eq(qfs_objstore_open(&cfg, &os), -EINVAL);
	cfg.url = "s3://bucket/x";
	cfg.endpoint = "ftp://127.0.0.1";
	ck_assert_int_eq(qfs_objstore_open(&cfg, &os), -EINVAL);
	qfs_objstore_close(NULL);
	/* the root vanishing under an open store: -ENXIO */
	{
		char cmd[1300];

		snprintf(u, sizeof(u), "%s/root2", base);
		ck_assert_int_eq(mkdir(u, 0755), 0);
		memmove(u + 7, u, strlen(u) + 1);
		memcpy(u, "file://", 7);
		cfg.url = u;
		cfg.endpoint = NULL;
		ck_assert_int_eq(qfs_objstore_open(&cfg, &os), 0);
		ck_assert_int_eq(qfs_objstore_put(os, "k", "v", 1), 0);
		snprintf(cmd, sizeof(cmd), "rm -rf '%s/root2'", base);
		ck_assert_int_eq(system(cmd), 0);
		ck_assert_int_eq(qfs_objstore_get(os, "k", 0, 0, &d, &n), -ENXIO);
		ck_assert_int_eq(qfs_objstore_put(os, "k", "v", 1), -ENXIO);
		ck_assert_int_eq(qfs_objstore_delete(os, "k"), -ENXIO);
		ck_assert_int_eq(qfs_objstore_list(os, "", collect_cb, NULL), -ENXIO);
		qfs_objstore_close(os);
	}
}
END_TEST

START_TEST(test_s3_credentials)
{
	/* the S3 backend refuses a credentials file others can read, and
	 * needs credentials at all; it never touches the network at open */
	struct qfs_objstore_cfg cfg = { .url = "s3://bucket/pre", .endpoint = "http://127.0.0.1:9" };
	struct qfs_objstore *os = NULL;
	char cred[1200];
	FILE *f;

	snprintf(cred, sizeof(cred), "%s/cred", base);
	f = fopen(cred, "w");
	ck_assert_ptr_nonnull(f);
	fputs("# test\n[default]\naws_access_key_id = AKIDTEST\nsecret_access_key=\"s3cr3t\"\n", f);
	fclose(f);
	cfg.credentials = cred;
	ck_assert_int_eq(chmod(cred, 0644), 0);
	ck_assert_int_eq(qfs_objstore_open(&cfg, &os), -EACCES);
	ck_assert_int_eq(chmod(cred, 0640), 0);
	ck_assert_int_eq(qfs_objstore_open(&cfg, &os), -EACCES);
	ck_assert_int_eq(chmod(cred, 0600), 0);
	ck_assert_int_eq(qfs_objstore_open(&cfg, &os), 0);
	ck_assert_ptr_nonnull(strstr(qfs_objstore_describe(os), "s3://bucket/pre/"));
	ck_assert_ptr_null(strstr(qfs_objstore_describe(os), "s3cr3t"));
	qfs_objstore_close(os);
	/* no secret at all */
	f = fopen(cred, "w");
	ck_assert_ptr_nonnull(f);
	fputs("access_key_id=AKIDTEST\n", f);
	fclose(f);
	ck_assert_int_eq(qfs_objstore_open(&cfg, &os), -EACCES);
	cfg.credentials = NULL;
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	ck_assert_int_eq(qfs_objstore_open(&cfg, &os), -EACCES);
	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
	ck_assert_int_eq(qfs_objstore_open(&cfg, &os), 0);
	qfs_objstore_close(os);
}
END_TEST

static Suite *objstore_suite(void)
{
	Suite *s = suite_create("objstore");
	TCase *tc = tcase_create("local");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_roundtrip_mem);
	tcase_add_test(tc, test_roundtrip_file);
	tcase_add_test(tc, test_range);
	tcase_add_test(tc, test_put_linked);
	tcase_add_test(tc, test_put_linked_short);
	tcase_add_test(tc, test_list);
	tcase_add_test(tc, test_delete);
	tcase_add_test(tc, test_bad_keys);
	tcase_add_test(tc, test_corruption);
	tcase_add_loop_test(tc, test_atomic_put, 0, 16);
	tcase_add_test(tc, test_atomic_fault_codes);
	tcase_add_test(tc, test_open_errors);
	tcase_add_test(tc, test_s3_credentials);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(objstore_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
