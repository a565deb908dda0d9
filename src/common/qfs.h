/*
 * qfs.h - types and error codes shared by every layer of quorumfs.
 *
 * Fallible functions return int: 0 on success or a negative errno.  Conditions
 * that are specific to quorumfs use a private range below -QFS_ERR_BASE that
 * can never collide with a kernel errno (errno values are < 4096); they are
 * turned into a message by qfs_strerror() and into an errno for the kernel by
 * qfs_err_to_errno() (fs/ is the only caller of the latter).
 */
#ifndef QFS_COMMON_QFS_H
#define QFS_COMMON_QFS_H

#include <stddef.h>
#include <stdint.h>

typedef uint64_t qfs_lsn_t;   /* log sequence number within one group, from 1 */
typedef uint64_t qfs_ino_t;   /* inode number, stable for the life of a file */
typedef uint64_t qfs_group_t; /* replication group id (= a partition) */
typedef uint64_t qfs_table_t; /* table id: its directory's inode (QFS_META_TABLE: the root) */

/* Called per item of a range scan, in key order; return nonzero to stop
 * (the value is returned as is).  Shared by the store, the nodes and the
 * router's item API, so that fs/ needs no lower layer's header. */
typedef int (*qfs_scan_cb)(const uint8_t *key, size_t key_len, const uint8_t *val, size_t val_len,
			   void *arg);

#define QFS_VERSION_STRING PACKAGE_VERSION

#define QFS_ERR_BASE 10000
enum {
	QFS_ECORRUPT = -(QFS_ERR_BASE + 1),   /* checksum or format error in stored data */
	QFS_ESTOPPED = -(QFS_ERR_BASE + 2),   /* group stopped after a fatal error */
	QFS_ENOGROUP = -(QFS_ERR_BASE + 3),   /* no such replication group on this node */
	QFS_ECONFLICT = -(QFS_ERR_BASE + 4),  /* optimistic condition failed; retry */
	QFS_EFORMAT = -(QFS_ERR_BASE + 5),    /* on-disk format version not supported */
	QFS_ETORN = -(QFS_ERR_BASE + 6),      /* torn record at the tail of a log */
	QFS_ESTALE = -(QFS_ERR_BASE + 9),     /* partition epoch changed (branch parts); refresh the map, retry */
};

/* Message for a negative errno or QFS_E* code; never NULL, static storage. */
const char *qfs_strerror(int err);

/* The positive errno to show a filesystem user for err (< 0). QFS_ECORRUPT and
 * QFS_ESTOPPED map to EIO, QFS_ECONFLICT to EAGAIN, unknown codes to EIO. */
int qfs_err_to_errno(int err);

/* Limits visible to users (see doc/limits.md). */
#define QFS_NAME_MAX 255                 /* bytes in one entry name */
#define QFS_XATTR_NAME_MAX 255           /* bytes in one xattr name */
#define QFS_XATTR_VALUE_MAX 65536        /* bytes in one xattr value */
#define QFS_XATTR_TOTAL_MAX 65536        /* bytes of all names+values of one inode */
#define QFS_INLINE_MAX 3072              /* files up to this size are written into the inode item (doc/format-items.md) */
#define QFS_CHUNK_SIZE 131072            /* bytes per chunk item of a large file */
#define QFS_SYMLINK_MAX 4095             /* bytes in a symlink target */

#define QFS_ROOT_INO 1                   /* root of the mount; also the meta group id */
#define QFS_META_GROUP 1
#define QFS_META_TABLE 1                 /* the root's items: always the meta group, never split */
#define QFS_CTL_INO_FIRST 2              /* inodes 2..1023 are the control tree */
#define QFS_CTL_INO_LAST 1023
#define QFS_FIRST_INO 1024               /* first inode number handed to users */

#endif
