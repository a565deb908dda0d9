/*
 * txn.h - a transaction on the items of one partition: the unit that is
 * logged, replicated and applied (see doc/format-txn.md).
 *
 * A txn is a list of ops applied in order, all or nothing, like DynamoDB's
 * TransactWriteItems.  Condition ops and patch ops may fail; the first
 * failure aborts the txn and its result is that op's error.  Application is
 * deterministic given the partition state, so every replica computes the
 * same result.  The store implements the semantics (src/store/apply.c).
 *
 *   PUT        key, value               write the value
 *   DEL        key                      delete (no error if absent)
 *   DEL_RANGE  key, key2                delete keys in [key, key2)
 *   EXPECT_ABSENT  key, err             fail with err if key exists
 *   EXPECT_PRESENT key, err             fail with err if key is absent
 *   EXPECT_VALUE   key, value, err      fail with err unless stored value == value
 *   EXPECT_EMPTY   key, key2, err       fail with err if any key in [key, key2)
 *   SETATTR    key(inode), attr, mask   set the masked attributes; -ENOENT if absent
 *   NLINK      key(inode), delta        add delta to nlink; -ENOENT if absent
 *   SETDATA    key(inode), value        replace inline data; -ENOENT if absent
 *   XSET       key(inode), name, value, flags  set an xattr (errors of
 *                                       qfs_inode_xattr_set); -ENOENT if absent
 *   XDEL       key(inode), name         remove an xattr; -ENODATA if absent
 *   LINK_ADD   key(inode), limit        nlink += 1 (a new hard link): -ENOENT
 *                                       if absent or nlink is 0, -EPERM for a
 *                                       directory, -EMLINK if nlink >= limit
 *   LINK_DROP  key(inode), key2, value  nlink -= 1 (a name removed); when it
 *                                       reaches 0: with key2 empty delete the
 *                                       inode and its chunks, else put
 *                                       key2 = value (the orphan entry of a
 *                                       file still open) and keep the inode;
 *                                       -ENOENT absent, -EISDIR directory,
 *                                       -EINVAL if nlink is already 0
 *   PATCH      key(chunk), offset, value  overlay value at offset on the
 *                                       stored chunk (absent: zeros),
 *                                       extending it; trailing zeros trimmed,
 *                                       all zeros deletes it; -EINVAL if key
 *                                       is not a chunk key or offset + length
 *                                       > QFS_CHUNK_SIZE
 *   RANGE      key ("\0"), val be64(epoch), err   fail with err unless the
 *                                       partition's fence record (key "\0",
 *                                       src/meta) holds that epoch (absent:
 *                                       epoch 0); version 3
 *
 * Two-phase commit across groups (version 3; doc/xact.md).  A txn holding
 * one of these holds exactly one op (else its result is -EINVAL); key is a
 * txid (QFS_TXID_LEN bytes: be64(coordinator group) be64(unique id)):
 *   PREPARE    txid, value = an encoded sub-txn (no 2PC op inside): check
 *              its locks and conditions now, keep its effects and locks;
 *              -EBUSY if it overlaps another prepared txid's locks, else
 *              the sub-txn's own result (a failure keeps nothing); 0 if
 *              txid is already prepared with this sub-txn (-EEXIST:
 *              with another)
 *   COMMIT     txid                     write the prepared effects, unlock
 *   ABORT      txid                     drop the prepared effects, unlock
 *   DECIDE     txid, value 'C' 'A' 'F'  in the coordinator: record commit or
 *                                       abort (-EALREADY if the other one is
 *                                       recorded); 'F' forgets it
 * Any other txn touching a locked key of its group gets -EBUSY.
 *
 * Ops borrow their key/value pointers from the caller until encoded; a
 * decoded txn points into the encoded buffer.
 */
#ifndef QFS_COMMON_TXN_H
#define QFS_COMMON_TXN_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/item.h"

/* Version 2 added LINK_ADD and LINK_DROP, version 3 ops 15-20 (the 2PC ops,
 * PATCH and the other branches' op 20).  The encoder writes the lowest
 * version a txn needs (1 without them), so that a log stays readable by an
 * older reader as long as it uses nothing new; the decoder reads all. */
#define QFS_TXN_VERSION 3
#define QFS_TXN_VERSION_MIN 1

enum qfs_op_kind {
	QFS_OP_PUT = 1,
	QFS_OP_DEL,
	QFS_OP_DEL_RANGE,
	QFS_OP_EXPECT_ABSENT,
	QFS_OP_EXPECT_PRESENT,
	QFS_OP_EXPECT_VALUE,
	QFS_OP_EXPECT_EMPTY,
	QFS_OP_SETATTR,
	QFS_OP_NLINK,
	QFS_OP_SETDATA,
	QFS_OP_XSET,
	QFS_OP_XDEL,
	QFS_OP_LINK_ADD,  /* txn version 2 */
	QFS_OP_LINK_DROP, /* txn version 2 */
	QFS_OP_PREPARE = 15, /* txn version 3 (branch xact, doc/xact.md) */
	QFS_OP_COMMIT = 16,
	QFS_OP_ABORT = 17,
	QFS_OP_DECIDE = 18,
	QFS_OP_PATCH = 19,   /* txn version 3 (branch perf) */
	QFS_OP_RANGE = 20, /* txn version 3 (branch parts): the partition fence */
};

/* A 2PC transaction id: be64(coordinator group) be64(unique id). */
#define QFS_TXID_LEN 16
/* DECIDE values */
#define QFS_DECIDE_COMMIT 'C'
#define QFS_DECIDE_ABORT 'A'
#define QFS_DECIDE_FORGET 'F'

/* 1 for PREPARE, COMMIT, ABORT, DECIDE. */
static inline int qfs_op_is_2pc(enum qfs_op_kind k)
{
	return k >= QFS_OP_PREPARE && k <= QFS_OP_DECIDE;
}

/* SETATTR mask bits */
#define QFS_SET_MODE 0x001u   /* permission bits only; the type is kept */
#define QFS_SET_UID 0x002u
#define QFS_SET_GID 0x004u
#define QFS_SET_SIZE 0x008u
#define QFS_SET_ATIME 0x010u
#define QFS_SET_MTIME 0x020u
#define QFS_SET_CTIME 0x040u
#define QFS_SET_FLAGS 0x080u
#define QFS_SET_RDEV 0x100u

struct qfs_op {
	enum qfs_op_kind kind;
	int32_t err;             /* condition ops: the error to fail with (< 0) */
	const uint8_t *key;
	uint32_t key_len;
	const uint8_t *key2;     /* DEL_RANGE, EXPECT_EMPTY: end of the range;
				  * LINK_DROP: orphan key (empty: destroy) */
	uint32_t key2_len;
	const uint8_t *val;      /* PUT, EXPECT_VALUE, SETDATA, XSET value;
				  * LINK_DROP: orphan value; PREPARE: the
				  * encoded sub-txn; DECIDE: one byte;
				  * PATCH: the bytes */
	uint32_t val_len;
	const char *name;        /* XSET, XDEL: NUL-terminated xattr name */
	uint32_t mask;           /* SETATTR: QFS_SET_* */
	int32_t delta;           /* NLINK */
	int32_t flags;           /* XSET: XATTR_CREATE / XATTR_REPLACE */
	uint32_t limit;          /* LINK_ADD: largest nlink allowed after the add */
	uint32_t offset;         /* PATCH: byte offset of val in the chunk */
	struct qfs_attr attr;    /* SETATTR: the new values for masked fields */
};

struct qfs_txn {
	struct qfs_op *ops;      /* heap array, owned by the txn */
	uint32_t nops;
	uint32_t cap;
};

void qfs_txn_init(struct qfs_txn *t);
void qfs_txn_close(struct qfs_txn *t);
/* Append a zeroed op of kind and return it, or NULL on -ENOMEM. */
struct qfs_op *qfs_txn_add(struct qfs_txn *t, enum qfs_op_kind kind);
void qfs_txn_encode(const struct qfs_txn *t, struct qfs_buf *out);
/* Bytes qfs_txn_encode(t) appends (counted, nothing allocated or copied). */
size_t qfs_txn_encoded_len(const struct qfs_txn *t);
/* Decode into t (initialised and empty); ops point into p, which must outlive
 * t.  Returns 0, -ENOMEM, QFS_ECORRUPT or QFS_EFORMAT. */
int qfs_txn_decode(const void *p, size_t len, struct qfs_txn *t);

#endif
