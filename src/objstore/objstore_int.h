/*
 * objstore_int.h - what objstore.c shares with its backends (s3.c, local.c).
 *
 * objstore.c owns everything common to both backends: key validation, the
 * CRC32C of every upload (computed before the backend is called) and its
 * check on every whole-object download, the download-to-file dance (temp
 * file, fsync, rename, fsync of the directory) and last_error.  A backend
 * implements struct qfs_objstore_ops over a source (bytes to upload, from
 * memory or from a file descriptor) and a sink (where downloaded bytes go).
 * Design: doc/objstore.md.
 */
#ifndef QFS_OBJSTORE_OBJSTORE_INT_H
#define QFS_OBJSTORE_OBJSTORE_INT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "objstore/objstore.h"

#define QFS_OBJSTORE_KEY_MAX 1024  /* bytes in a key (S3's limit) */
#define QFS_OBJSTORE_COMP_MAX 200  /* bytes in one '/'-separated component */

/* Bytes to upload: mem (if non-NULL) or [0, size) of fd, read with pread. */
struct qfs_os_src {
	const void *mem;
	int fd;
	const char *path; /* the file fd reads, when its bytes never change
			     again (put_file_immutable): the local backend may
			     hard-link it instead of copying; else NULL */
	uint64_t size;   /* bytes */
	uint32_t crc32c; /* CRC32C of all size bytes, computed by objstore.c */
};

/* Read len bytes at off of src into buf.  Returns 0 or -errno (-EIO on a
 * short file). */
int qfs_os_src_read(const struct qfs_os_src *src, uint64_t off, void *buf, size_t len);

/* Where a download goes.  The backend calls write() for each piece in order
 * and reset() before a retry restarts the body from its first byte. */
struct qfs_os_sink {
	int (*write)(struct qfs_os_sink *s, const void *p, size_t len); /* 0 or -errno */
	int (*reset)(struct qfs_os_sink *s);                          /* 0 or -errno */
	uint64_t len; /* bytes written since the last reset; kept by the callers of write */
};

/* One backend.  Every op gets a valid key (qfs_objstore_key_check), returns
 * 0 or a negative error of objstore.h and on failure leaves a line for
 * last_error via qfs_os_set_error(). */
struct qfs_objstore_ops {
	const char *name;
	int (*put)(struct qfs_objstore *os, const char *key, const struct qfs_os_src *src);
	/* Stream [off, off+len) (len 0: to the end) of key into sink; on success
	 * *info describes the whole object (size, stored crc).  */
	int (*get)(struct qfs_objstore *os, const char *key, uint64_t off, uint64_t len, struct qfs_os_sink *sink,
		   struct qfs_obj_info *info);
	int (*head)(struct qfs_objstore *os, const char *key, struct qfs_obj_info *out);
	int (*del)(struct qfs_objstore *os, const char *key);
	int (*list)(struct qfs_objstore *os, const char *prefix, int (*cb)(const char *key, uint64_t size, void *arg),
		    void *arg);
	void (*close)(struct qfs_objstore *os); /* frees os->be */
};

struct qfs_objstore {
	const struct qfs_objstore_ops *ops;
	void *be;        /* backend state, owned by the backend */
	char desc[512];  /* qfs_objstore_describe() */
	char err[512];   /* qfs_objstore_last_error(); never holds credentials */
};

/* Format the last error of os (and nothing else: callers log). */
void qfs_os_set_error(struct qfs_objstore *os, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* 0 if key follows the rules of doc/objstore.md (non-empty, at most
 * QFS_OBJSTORE_KEY_MAX bytes, no leading, trailing or doubled '/', no "." or
 * ".." component, no control byte, components of at most
 * QFS_OBJSTORE_COMP_MAX bytes), else -EINVAL.  prefix_ok: also accept ""
 * and a trailing '/' or partial component (list prefixes). */
int qfs_objstore_key_check(const char *key, int prefix_ok);

/* Backend constructors: fill os->be, os->ops and os->desc from cfg.  Errors
 * as qfs_objstore_open(); nothing allocated is left on failure. */
int qfs_os_local_open(struct qfs_objstore *os, const struct qfs_objstore_cfg *cfg, const char *root);
int qfs_os_s3_open(struct qfs_objstore *os, const struct qfs_objstore_cfg *cfg, const char *bucket_prefix);


#endif
