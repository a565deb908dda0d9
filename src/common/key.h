/*
 * key.h - item keys inside one partition (see doc/format-keys.md).
 *
 * Every item key is  be64(xxh64(pk)) | be64(pk) | sk  so that a table's items
 * spread evenly over hash-range partitions while all items of one partition
 * key stay one contiguous, sorted range.  Partition keys are inode numbers.
 *
 *   dentry  pk = parent directory ino  sk = entry name (1..255 bytes, no NUL)
 *   inode   pk = ino                   sk = "\0" "i"
 *   chunk   pk = file ino              sk = "\0" "c" be64(chunk number)
 *
 * "\0"-prefixed sort keys sort before every name, so a directory's entries are
 * the keys of its pk whose sk starts with a byte >= 0x01.
 */
#ifndef QFS_COMMON_KEY_H
#define QFS_COMMON_KEY_H

#include <stddef.h>
#include <stdint.h>

#include "common/qfs.h"

#define QFS_KEY_PREFIX_LEN 16                         /* hash + pk */
#define QFS_KEY_MAX (QFS_KEY_PREFIX_LEN + QFS_NAME_MAX + 1)

enum qfs_key_kind { QFS_KEY_DENTRY = 1, QFS_KEY_INODE, QFS_KEY_CHUNK };

struct qfs_key {
	enum qfs_key_kind kind;
	uint64_t pk;           /* partition key (an ino) */
	const uint8_t *name;   /* dentry: points into the parsed key */
	size_t name_len;       /* dentry: bytes in name */
	uint64_t chunk;        /* chunk: chunk number */
};

/* Each encoder writes into out (at least QFS_KEY_MAX bytes) and returns the
 * key length.  name_len must be 1..QFS_NAME_MAX (asserted). */
size_t qfs_key_prefix(uint8_t *out, uint64_t pk);
size_t qfs_key_dentry(uint8_t *out, uint64_t parent, const char *name, size_t name_len);
size_t qfs_key_inode(uint8_t *out, uint64_t ino);
size_t qfs_key_chunk(uint8_t *out, uint64_t ino, uint64_t chunk);
/* Bounds of all dentries of dir: [lo, hi).  Returns lengths via *lo_len, *hi_len. */
void qfs_key_dentry_range(uint8_t *lo, size_t *lo_len, uint8_t *hi, size_t *hi_len, uint64_t dir);
/* Bounds of chunks [from, to) of ino (to = UINT64_MAX for all from 'from'). */
void qfs_key_chunk_range(uint8_t *lo, size_t *lo_len, uint8_t *hi, size_t *hi_len,
			 uint64_t ino, uint64_t from, uint64_t to);

/* Reserved keys of a group's two-phase-commit state (doc/xact.md): the
 * QFS_KEY_PREFIX_LEN bytes 0xff (a prefix no pk hashes to: xxh64 of
 * be64(UINT64_MAX) is not all ones), "\0", a tag, then a txid.  They live
 * in the group's item space, so snapshots, scrub comparisons, archive
 * snapshots and group drops carry them like items; qfs_key_parse refuses
 * them and no item range the encoders produce reaches them.
 *   tag 'p' txid -> a prepared sub-txn (its locks and effects; src/store)
 *   tag 'x' txid -> the coordinator's decision, one byte 'C' or 'A'
 *   tag 'o' txid -> a part's outcome, 'C' be32 crc32c(sub-txn) or 'A':
 *                   a PREPARE of a txid with an outcome is ignored (kept
 *                   for a while) */
#define QFS_KEY_XACT_PREPARED 'p'
#define QFS_KEY_XACT_DECISION 'x'
#define QFS_KEY_XACT_OUTCOME 'o'
#define QFS_KEY_XACT_LEN (QFS_KEY_PREFIX_LEN + 2 + 16)
/* Write the reserved key of tag and txid (16 bytes) into out
 * (QFS_KEY_XACT_LEN bytes); returns its length. */
size_t qfs_key_xact(uint8_t *out, uint8_t tag, const uint8_t *txid);
/* Bounds [lo, hi) of every reserved key of tag (tag 0: of the whole
 * reserved space); each QFS_KEY_PREFIX_LEN + 2 bytes. */
void qfs_key_xact_range(uint8_t *lo, uint8_t *hi, uint8_t tag);
/* 1 if [lo, hi) (hi NULL: the point lo) meets the reserved space, else 0. */
int qfs_key_xact_meets(const uint8_t *lo, size_t lo_len, const uint8_t *hi, size_t hi_len);

/* Order of keys as the store keeps them (RocksDB's bytewise order): memcmp
 * over the common length, then the shorter first.  <0, 0 or >0; a or b
 * may be NULL where its length is 0. */
int qfs_key_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl);

/* Parse a key. Returns 0 or QFS_ECORRUPT (bad hash, unknown sk). */
int qfs_key_parse(const uint8_t *key, size_t len, struct qfs_key *out);

#endif
