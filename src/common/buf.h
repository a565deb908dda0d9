/*
 * buf.h - growable byte buffer and bounds-checked reader for our codecs.
 *
 * All integers are encoded big-endian (keys must sort bytewise; records use
 * the same helpers for one convention).  A writer that fails to grow latches
 * b->err = -ENOMEM and ignores further puts, so encoders check once at the
 * end.  A reader that runs past its end latches r->err = QFS_ECORRUPT and
 * returns zeros, so decoders check once at the end.
 */
#ifndef QFS_COMMON_BUF_H
#define QFS_COMMON_BUF_H

#include <stddef.h>
#include <stdint.h>

struct qfs_buf {
	uint8_t *data; /* heap, owned; NULL when empty */
	size_t len;    /* bytes used */
	size_t cap;    /* bytes allocated */
	int err;       /* 0 or -ENOMEM after a failed growth */
	int count;     /* counting buffer: puts add to len, store nothing */
};

void qfs_buf_init(struct qfs_buf *b);
/* A buffer that stores nothing: qfs_buf_put and the put_u8/16/32/64/bytes
 * helpers only add to len, so an encoder run into it gives the encoded
 * length without allocating (qfs_buf_printf and _put_esc are not for it).
 * Nothing to close. */
void qfs_buf_init_count(struct qfs_buf *b);
void qfs_buf_close(struct qfs_buf *b);              /* frees data */
void qfs_buf_reset(struct qfs_buf *b);              /* len = 0, keeps memory, clears err */
int qfs_buf_reserve(struct qfs_buf *b, size_t more); /* 0 or -ENOMEM (latched) */
void qfs_buf_put(struct qfs_buf *b, const void *p, size_t n);
/* printf into b (latches -ENOMEM like the other puts). */
void qfs_buf_printf(struct qfs_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void qfs_buf_put_u8(struct qfs_buf *b, uint8_t v);
void qfs_buf_put_u16(struct qfs_buf *b, uint16_t v);
void qfs_buf_put_u32(struct qfs_buf *b, uint32_t v);
void qfs_buf_put_u64(struct qfs_buf *b, uint64_t v);
/* u32 length followed by the bytes */
void qfs_buf_put_bytes(struct qfs_buf *b, const void *p, size_t n);
/* Names in control-file text and log lines are escaped as /proc/mounts
 * does, so that a name can neither split a field nor forge a line: space
 * -> \040, tab -> \011, newline -> \012, backslash -> \134, and every
 * other byte below 0x20 or 0x7f as \ooo (three octal digits).  Other bytes
 * (UTF-8 included) are kept.  `printf '%b'` or awk can undo it. */
#define QFS_ESC_MAX(n) (4 * (n) + 1) /* bytes that escaping n bytes may need, NUL included */
/* Append s escaped (latches -ENOMEM like the other puts). */
void qfs_buf_put_esc(struct qfs_buf *b, const char *s);
/* Write s escaped into out[len] (NUL-terminated; cut at a whole escape if
 * out is too small) and return out, for use as a printf argument. */
const char *qfs_esc(const char *s, char *out, size_t len);
/* Undo those escapes in place (\ooo, three octal digits, to the byte;
 * anything else kept): the fields of /proc/self/mountinfo, for one. */
void qfs_unesc(char *s);
/* One line of /proc/self/mountinfo ("ID PARENT MAJ:MIN ROOT MOUNTPOINT
 * OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER"), split in place: devno
 * ("MAJ:MIN") and mountpoint (unescaped) always, fstype and source
 * (unescaped) when the line has them, else NULL.  0, or -1 if the line
 * has fewer than five fields. */
struct qfs_mountinfo {
	const char *devno, *mountpoint, *fstype, *source;
};
int qfs_mountinfo_split(char *line, struct qfs_mountinfo *m);
/* s (a name of up to QFS_NAME_MAX bytes, longer is cut) escaped into a
 * temporary that lives until the end of the enclosing block: for log
 * arguments, e.g. QFS_LOG(..., "name=%s", QFS_ESC_NAME(name)). */
#define QFS_ESC_NAME(s) qfs_esc((s), (char[QFS_ESC_MAX(255)]){ 0 }, QFS_ESC_MAX(255))
/* Take ownership of the data: returns it (may be NULL if len 0) and resets b. */
uint8_t *qfs_buf_steal(struct qfs_buf *b, size_t *len);

struct qfs_rd {
	const uint8_t *p;   /* next byte */
	const uint8_t *end; /* one past the last byte */
	int err;            /* 0 or QFS_ECORRUPT after an overrun */
};

void qfs_rd_init(struct qfs_rd *r, const void *p, size_t len);
uint8_t qfs_rd_u8(struct qfs_rd *r);
uint16_t qfs_rd_u16(struct qfs_rd *r);
uint32_t qfs_rd_u32(struct qfs_rd *r);
uint64_t qfs_rd_u64(struct qfs_rd *r);
/* Returns a pointer into the input of n bytes, or NULL (and err) on overrun. */
const uint8_t *qfs_rd_raw(struct qfs_rd *r, size_t n);
/* Reads a u32 length then that many bytes; *n gets the length. */
const uint8_t *qfs_rd_bytes(struct qfs_rd *r, size_t *n);
static inline size_t qfs_rd_left(const struct qfs_rd *r) { return (size_t)(r->end - r->p); }

static inline void qfs_be64_put(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}
static inline uint64_t qfs_be64_get(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}
static inline void qfs_be32_put(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}
static inline uint32_t qfs_be32_get(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* A value read from a store, held without a copy (qfs_store_get_val and
 * the _val reads above it): data[0..len) stays valid until
 * qfs_val_release, which gives it back to its owner (RocksDB's pinned
 * slice, or a malloc'd buffer).  An empty qfs_val (all zero) holds
 * nothing.  Not shared between threads without a lock. */
struct qfs_val {
	const uint8_t *data;        /* NULL only when len == 0 and nothing held */
	size_t len;                 /* bytes */
	void (*release)(void *own); /* gives own back; NULL: nothing to give */
	void *own;
};
/* Hold the malloc'd buffer p of len bytes in v (v must be empty); p is
 * freed at qfs_val_release.  p may be NULL (len 0). */
void qfs_val_adopt(struct qfs_val *v, void *p, size_t len);
/* 1 if v holds a value (from a read or qfs_val_adopt of a buffer). */
static inline int qfs_val_held(const struct qfs_val *v)
{
	return v->release != NULL;
}
/* Give what v holds back to its owner, exactly once, and empty v; an
 * empty v (or one released already) is left as is.  Any thread. */
void qfs_val_release(struct qfs_val *v);
/* Copy what v holds into a malloc'd *p (never NULL, even for an empty
 * value; the caller frees it) with *len, then release v; on -ENOMEM v is
 * released too and *p, *len are not set.  0 or -ENOMEM.  The copying
 * reads (qfs_store_get, qfs_rnode_get, qfs_cell_get_at) are their _val
 * read plus this. */
int qfs_val_copy_out(struct qfs_val *v, void **p, size_t *len);

#endif
