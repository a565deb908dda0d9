/*
 * objstore.h - object store client with two backends behind one interface:
 * S3 over libcurl (s3.c) and a local directory (local.c).  Design and wire
 * details: doc/objstore.md.
 *
 * Keys are '/'-separated UTF-8 strings without a leading '/', e.g.
 * "groups/0000000000000400/wal/0000000000000001.seg".  Every object carries a
 * CRC32C of its bytes (S3: sent as x-amz-checksum-crc32c and kept as the
 * user metadata x-amz-meta-qfs-crc32c; local: in a sidecar), checked by the
 * store on upload where it can and by us on every whole-object download.
 *
 * Errors (negative):
 *   -ENOENT        no such object (404 NoSuchKey)
 *   -ENXIO         no such bucket (404 NoSuchBucket) / local root missing
 *   -EACCES        authentication or authorisation refused (403); never
 *                  retried; the caller raises an alarm
 *   QFS_ECORRUPT   checksum mismatch on download, or an unparsable answer
 *   -ETIMEDOUT, -ECONNREFUSED, -EHOSTUNREACH   the endpoint cannot be reached
 *                  (after the retries)
 *   -EIO           any other failure after the retries (5xx, SlowDown...)
 *   -ENOMEM, -EINVAL (bad key or configuration)
 * Retries: 5xx, SlowDown/503, throttling and connection errors are retried
 * with exponential backoff and full jitter (cfg.max_retries); 4xx are not.
 * Each failure also leaves a one-line description (no credentials ever) for
 * qfs_objstore_last_error().
 *
 * Thread-safety: one struct qfs_objstore may be used by one thread at a time
 * (the archiver owns one; restore opens its own).  The S3 backend reuses one
 * curl easy handle, so connections are kept alive between requests.
 */
#ifndef QFS_OBJSTORE_OBJSTORE_H
#define QFS_OBJSTORE_OBJSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "common/qfs.h"

struct qfs_objstore_cfg {
	/* "file:///abs/dir" (local backend) or "s3://bucket/prefix" (S3). */
	const char *url;
	/* S3 only: */
	const char *endpoint;       /* "https://s3.eu-west-1.amazonaws.com", "http://127.0.0.1:9000" */
	const char *region;         /* SigV4 region, default "us-east-1" */
	int path_style;             /* 1: endpoint/bucket/key, 0: bucket.endpoint/key */
	const char *credentials;    /* file with access_key_id=, secret_access_key=,
	                               session_token= lines; must not be group- or
	                               world-readable (-EACCES otherwise); NULL: the
	                               AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
	                               AWS_SESSION_TOKEN environment variables */
	const char *ca_file;        /* extra CA bundle; TLS verification is always on */
	uint64_t multipart_threshold; /* bytes; larger uploads are multipart; 0: 16 MiB */
	uint64_t part_size;         /* bytes per part; 0: 8 MiB (S3 minimum 5 MiB) */
	int max_retries;            /* retries after the first try; 0: 5, < 0: none */
	uint32_t timeout_ms;        /* per request; 0: 30000 */
	/* Added after the first version (zero keeps the defaults): */
	uint32_t backoff_ms;        /* first retry waits up to this (full jitter),
	                               doubling per retry up to 10 s; 0: 100 */
	int link_immutable;         /* local backend: put_file_immutable hard-links
	                               the file (QFSOBJL objects, doc/objstore.md),
	                               which releases before 1432379 cannot read;
	                               0: copy (a mount sets it unless -o
	                               archive_link=off) */
	uint32_t list_max_keys;     /* S3 max-keys per list page; 0: 1000 (tests
	                               lower it to exercise pagination) */
	uint64_t keep_free;         /* local backend with linking off: bytes a
	                               copy of an immutable file must leave free
	                               on the store's file system, else it is
	                               linked anyway (short of space); 0: never */
};

struct qfs_objstore;

struct qfs_obj_info {
	uint64_t size;              /* bytes */
	uint32_t crc32c;            /* our checksum of the whole object */
	int has_crc;                /* 0 if the object has none (not written by us) */
	int64_t mtime;              /* seconds since the epoch, 0 if unknown */
};

/* Open a client for cfg.  Copies what it needs from cfg.  Does not touch the
 * network (the first request does).  *out set only on success.
 * Errors: -EINVAL (bad url/endpoint), -EACCES (credentials file readable by
 * others, or no credentials for S3), -ENOMEM, -errno for the local root. */
int qfs_objstore_open(const struct qfs_objstore_cfg *cfg, struct qfs_objstore **out);
void qfs_objstore_close(struct qfs_objstore *os); /* NULL: nothing */

/* Store len bytes under key (replacing any object there).  Idempotent. */
int qfs_objstore_put(struct qfs_objstore *os, const char *key, const void *data, size_t len);
/* Store the len bytes of the file at path (streamed; multipart above the
 * threshold, with the upload aborted on failure). */
int qfs_objstore_put_file(struct qfs_objstore *os, const char *key, const char *path);
/* The same for a file whose bytes the caller never changes again (it may
 * unlink it): a sealed WAL segment.  With cfg.link_immutable the local
 * backend then hard-links the file into the store instead of copying it
 * when both are on one file system (no data is written; the object keeps
 * its CRC32C and is read back checked as any other), and copies it
 * otherwise. */
int qfs_objstore_put_file_immutable(struct qfs_objstore *os, const char *key, const char *path);
/* Read bytes [off, off+len) of key (len 0: to the end).  *data malloc'd.
 * A whole-object read (off 0, len 0) is checked against its CRC32C
 * (QFS_ECORRUPT on mismatch). */
int qfs_objstore_get(struct qfs_objstore *os, const char *key, uint64_t off, uint64_t len, void **data,
		     size_t *data_len);
/* Download key to path (written to path.tmp, fsync'd, renamed), checked. */
int qfs_objstore_get_file(struct qfs_objstore *os, const char *key, const char *path);
int qfs_objstore_head(struct qfs_objstore *os, const char *key, struct qfs_obj_info *out);
/* Delete key; 0 also when it did not exist. */
int qfs_objstore_delete(struct qfs_objstore *os, const char *key);
/* Call cb for every key starting with prefix, in key order, following
 * pagination.  cb returns nonzero to stop (returned as is). */
int qfs_objstore_list(struct qfs_objstore *os, const char *prefix,
		      int (*cb)(const char *key, uint64_t size, void *arg), void *arg);
/* Description of the last failure ("" if none); valid until the next call. */
const char *qfs_objstore_last_error(struct qfs_objstore *os);
/* "file:///..." or "s3://bucket/prefix at endpoint" for status lines. */
const char *qfs_objstore_describe(struct qfs_objstore *os);

#endif
