/*
 * item.h - values of dentry and inode items (see doc/format-items.md).
 *
 * A dentry value names the inode an entry points at.  An inode value holds
 * the system attributes, the xattrs and the inline data (file bytes for files
 * up to QFS_INLINE_MAX, the target of a symlink).  Both start with a format
 * version byte; decoders refuse versions they do not know with QFS_EFORMAT.
 */
#ifndef QFS_COMMON_ITEM_H
#define QFS_COMMON_ITEM_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/qfs.h"

#define QFS_ITEM_VERSION 1   /* dentry values */
#define QFS_INODE_VERSION 2  /* inode values written; 1 is still read */
#define QFS_COUNT_UNKNOWN UINT64_MAX /* a count that version 1 did not keep */

struct qfs_ts {
	int64_t sec;
	uint32_t nsec; /* 0..999999999 */
};

/* dentry value */
struct qfs_dentry {
	qfs_ino_t ino;     /* inode the entry names */
	uint32_t type;     /* S_IFMT bits of the inode's mode */
	qfs_group_t group; /* root entries (tables): the table's group; else 0 */
};

#define QFS_ATTR_INLINE 0x1u /* file data is the inode's inline data, not chunks */

struct qfs_attr {
	qfs_ino_t ino;
	uint32_t mode;     /* st_mode: type and permission bits */
	uint32_t uid;
	uint32_t gid;
	uint32_t nlink;
	uint32_t flags;    /* QFS_ATTR_* */
	uint64_t size;     /* bytes; for a symlink, the target length */
	uint64_t rdev;
	struct qfs_ts atime, mtime, ctime, btime;
	/* st_blocks: 512-byte units of data stored for the inode (chunk bytes
	 * plus inline data; from the size when the chunk count is unknown).
	 * Derived by the inode decoders; not part of the attribute block, so
	 * SETATTR never carries it. */
	uint64_t blocks;
};

struct qfs_xattr {
	char *name;        /* NUL-terminated, e.g. "user.color" */
	uint8_t *value;
	uint32_t len;      /* bytes in value */
};

/* Decoded inode item.  Owns every pointer in it. */
struct qfs_inode {
	struct qfs_attr a;
	uint8_t *data;           /* inline data or symlink target; may be NULL */
	size_t data_len;
	struct qfs_xattr *xattrs; /* sorted by name */
	uint32_t nxattrs;
	/* Kept by the store at apply time (src/store/apply.c), whatever a PUT
	 * carries: bytes in the chunk items of this ino, and, on the inode
	 * whose ino is its group's id (a table's directory, the root), the
	 * number of inode items in the group.  QFS_COUNT_UNKNOWN when decoded
	 * from a version 1 value that did not keep them (0 for an inline file). */
	uint64_t chunk_bytes;
	uint64_t ninodes;
};

void qfs_dentry_encode(const struct qfs_dentry *d, struct qfs_buf *out);
int qfs_dentry_decode(const void *p, size_t len, struct qfs_dentry *out); /* 0, QFS_ECORRUPT, QFS_EFORMAT */

void qfs_inode_init(struct qfs_inode *in);  /* zeroes */
void qfs_inode_close(struct qfs_inode *in); /* frees contents, leaves it zeroed */
void qfs_inode_encode(const struct qfs_inode *in, struct qfs_buf *out);
/* Decode into out (which must be initialised; its old contents are freed on
 * success).  Returns 0, -ENOMEM, QFS_ECORRUPT or QFS_EFORMAT; out untouched on error. */
int qfs_inode_decode(const void *p, size_t len, struct qfs_inode *out);
/* Only the attributes (blocks derived as in qfs_inode_decode), without
 * copying data or xattrs. */
int qfs_inode_decode_attr(const void *p, size_t len, struct qfs_attr *out);

/* The attribute block shared by inode items and SETATTR ops: fixed-width
 * big-endian fields (doc/format-items.md).  The reader latches QFS_ECORRUPT
 * in r->err on overrun or a nanosecond field >= 10^9. */
void qfs_attr_put(struct qfs_buf *b, const struct qfs_attr *a);
void qfs_attr_get(struct qfs_rd *r, struct qfs_attr *a);

/* xattr helpers on a decoded inode. */
const struct qfs_xattr *qfs_inode_xattr_find(const struct qfs_inode *in, const char *name);
/* Set name=value; flags XATTR_CREATE (-EEXIST if present) / XATTR_REPLACE
 * (-ENODATA if absent).  -ENOSPC if the total of names+values would exceed
 * QFS_XATTR_TOTAL_MAX, -ENOMEM.  Unchanged on error. */
int qfs_inode_xattr_set(struct qfs_inode *in, const char *name, const void *value, uint32_t len,
			int flags);
/* Remove name; -ENODATA if absent. */
int qfs_inode_xattr_del(struct qfs_inode *in, const char *name);
/* Replace inline data with a copy of p[0..len). 0 or -ENOMEM. */
int qfs_inode_set_data(struct qfs_inode *in, const void *p, size_t len);
/* st_blocks of attributes a with chunk_bytes in chunk items and data_len
 * bytes of inline data (see qfs_attr.blocks). */
uint64_t qfs_inode_blocks(const struct qfs_attr *a, uint64_t chunk_bytes, size_t data_len);

#endif
