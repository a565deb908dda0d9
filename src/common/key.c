/*
 * key.c - item key encoding and parsing (layout in key.h, rationale in
 * doc/format-keys.md).
 *
 * A key is be64(xxh64(be64(pk), seed 0)) | be64(pk) | sk.  The hash comes
 * first so hash-range partitions spread a table evenly; the pk follows so all
 * items of one pk form one contiguous range; "\0"-prefixed sort keys (inode,
 * chunks) sort before every dentry name, which never contains a NUL.
 */
#include "config.h"

#include <assert.h>
#include <string.h>
#include <xxhash.h>

#include "common/buf.h"
#include "common/key.h"

#define SK_INODE_LEN 2  /* "\0" "i" */
#define SK_CHUNK_LEN 10 /* "\0" "c" be64(chunk) */

static uint64_t pk_hash(uint64_t pk)
{
	uint8_t b[8];
	qfs_be64_put(b, pk);
	return (uint64_t)XXH64(b, sizeof(b), 0);
}

/* Write the 16-byte prefix hash|pk of pk into out; returns 16. */
size_t qfs_key_prefix(uint8_t *out, uint64_t pk)
{
	qfs_be64_put(out, pk_hash(pk));
	qfs_be64_put(out + 8, pk);
	return QFS_KEY_PREFIX_LEN;
}

/* Key of entry name (name_len 1..QFS_NAME_MAX bytes, no NUL: asserted) in
 * directory parent.  Returns the key length. */
size_t qfs_key_dentry(uint8_t *out, uint64_t parent, const char *name, size_t name_len)
{
	assert(name_len >= 1 && name_len <= QFS_NAME_MAX);
	assert(memchr(name, 0, name_len) == NULL);
	size_t n = qfs_key_prefix(out, parent);
	memcpy(out + n, name, name_len);
	return n + name_len;
}

/* Key of the inode item of ino.  Returns the key length (18). */
size_t qfs_key_inode(uint8_t *out, uint64_t ino)
{
	size_t n = qfs_key_prefix(out, ino);
	out[n++] = 0;
	out[n++] = 'i';
	return n;
}

/* Key of chunk number chunk of file ino.  Returns the key length (26). */
size_t qfs_key_chunk(uint8_t *out, uint64_t ino, uint64_t chunk)
{
	size_t n = qfs_key_prefix(out, ino);
	out[n++] = 0;
	out[n++] = 'c';
	qfs_be64_put(out + n, chunk);
	return n + 8;
}

/* The 16-byte prefix that follows pk's prefix bytewise (prefix + 1 as a
 * 128-bit big-endian number), or, for the all-0xff prefix, that prefix
 * followed by 256 0xff bytes, which is above any key of pk. */
static size_t prefix_next(uint8_t *out, uint64_t pk)
{
	size_t n = qfs_key_prefix(out, pk);
	for (int i = (int)n - 1; i >= 0; i--) {
		if (++out[i] != 0)
			return n;
	}
	/* wrapped: every byte was 0xff */
	memset(out, 0xff, QFS_KEY_MAX);
	return QFS_KEY_MAX;
}

/* [lo, hi) holds exactly the dentries of dir: lo = prefix "\1", hi = the
 * next prefix.  Buffers of QFS_KEY_MAX bytes. */
void qfs_key_dentry_range(uint8_t *lo, size_t *lo_len, uint8_t *hi, size_t *hi_len, uint64_t dir)
{
	size_t n = qfs_key_prefix(lo, dir);
	lo[n++] = 1;
	*lo_len = n;
	*hi_len = prefix_next(hi, dir);
}

/* [lo, hi) holds exactly chunks from..to-1 of ino; to == UINT64_MAX means
 * every chunk from 'from' on (chunk UINT64_MAX included).  from <= to is
 * asserted.  Buffers of QFS_KEY_MAX bytes. */
void qfs_key_chunk_range(uint8_t *lo, size_t *lo_len, uint8_t *hi, size_t *hi_len,
			 uint64_t ino, uint64_t from, uint64_t to)
{
	assert(from <= to);
	*lo_len = qfs_key_chunk(lo, ino, from);
	if (to != UINT64_MAX) {
		*hi_len = qfs_key_chunk(hi, ino, to);
		return;
	}
	size_t n = qfs_key_prefix(hi, ino);
	hi[n++] = 0;
	hi[n++] = 'c' + 1;
	*hi_len = n;
}

/* Parse key[0..len) into out (name points into key).  QFS_ECORRUPT when the
 * hash does not match the pk, or the sort key is none of: a 1..255-byte name
 * without NUL, "\0i", "\0c"+be64.  out is written only on success. */
int qfs_key_parse(const uint8_t *key, size_t len, struct qfs_key *out)
{
	struct qfs_key k = { 0 };

	if (len <= QFS_KEY_PREFIX_LEN || len > QFS_KEY_PREFIX_LEN + QFS_NAME_MAX)
		return QFS_ECORRUPT;
	k.pk = qfs_be64_get(key + 8);
	if (qfs_be64_get(key) != pk_hash(k.pk))
		return QFS_ECORRUPT;
	const uint8_t *sk = key + QFS_KEY_PREFIX_LEN;
	size_t sk_len = len - QFS_KEY_PREFIX_LEN;
	if (sk[0] != 0) {
		if (memchr(sk, 0, sk_len) != NULL)
			return QFS_ECORRUPT;
		k.kind = QFS_KEY_DENTRY;
		k.name = sk;
		k.name_len = sk_len;
	} else if (sk_len == SK_INODE_LEN && sk[1] == 'i') {
		k.kind = QFS_KEY_INODE;
	} else if (sk_len == SK_CHUNK_LEN && sk[1] == 'c') {
		k.kind = QFS_KEY_CHUNK;
		k.chunk = qfs_be64_get(sk + 2);
	} else {
		return QFS_ECORRUPT;
	}
	*out = k;
	return 0;
}

/* ---- reserved keys of the 2PC state (key.h, doc/xact.md) ---- */

/* See key.h. */
size_t qfs_key_xact(uint8_t *out, uint8_t tag, const uint8_t *txid)
{
	memset(out, 0xff, QFS_KEY_PREFIX_LEN);
	out[QFS_KEY_PREFIX_LEN] = 0;
	out[QFS_KEY_PREFIX_LEN + 1] = tag;
	memcpy(out + QFS_KEY_PREFIX_LEN + 2, txid, 16);
	return QFS_KEY_XACT_LEN;
}

/* See key.h.  tag 0: ["ff.. \0", "ff.. \x01"). */
void qfs_key_xact_range(uint8_t *lo, uint8_t *hi, uint8_t tag)
{
	memset(lo, 0xff, QFS_KEY_PREFIX_LEN);
	memset(hi, 0xff, QFS_KEY_PREFIX_LEN);
	if (tag == 0) {
		lo[QFS_KEY_PREFIX_LEN] = 0;
		lo[QFS_KEY_PREFIX_LEN + 1] = 0;
		hi[QFS_KEY_PREFIX_LEN] = 1;
		hi[QFS_KEY_PREFIX_LEN + 1] = 0;
		return;
	}
	lo[QFS_KEY_PREFIX_LEN] = 0;
	lo[QFS_KEY_PREFIX_LEN + 1] = tag;
	hi[QFS_KEY_PREFIX_LEN] = 0;
	hi[QFS_KEY_PREFIX_LEN + 1] = (uint8_t)(tag + 1);
}

/* See key.h. */
int qfs_key_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	size_t n = al < bl ? al : bl;
	int c = n ? memcmp(a, b, n) : 0;

	if (c)
		return c;
	return al < bl ? -1 : al > bl;
}

/* See key.h.  Cheap for ordinary keys: their first byte is a hash byte,
 * rarely 0xff, and the compare stops there. */
int qfs_key_xact_meets(const uint8_t *lo, size_t lo_len, const uint8_t *hi, size_t hi_len)
{
	uint8_t rlo[QFS_KEY_PREFIX_LEN + 2], rhi[QFS_KEY_PREFIX_LEN + 2];

	if (!hi) {
		if (lo_len < QFS_KEY_PREFIX_LEN + 1 || lo[0] != 0xff)
			return 0;
		qfs_key_xact_range(rlo, rhi, 0);
		return memcmp(lo, rlo, QFS_KEY_PREFIX_LEN + 1) == 0;
	}
	if (hi_len == 0 || hi[0] != 0xff)
		return 0; /* hi <= every key starting with 0xff */
	qfs_key_xact_range(rlo, rhi, 0);
	/* [lo, hi) meets [rlo, rhi) iff lo < rhi and rlo < hi (both non-empty) */
	return qfs_key_cmp(lo, lo_len, hi, hi_len) < 0 &&
	       qfs_key_cmp(lo, lo_len, rhi, QFS_KEY_PREFIX_LEN + 1) < 0 &&
	       qfs_key_cmp(rlo, QFS_KEY_PREFIX_LEN + 1, hi, hi_len) < 0;
}
