/*
 * paxos_msg.c - wire encoding of Multi-Paxos messages (format: doc/paxos.md,
 * section "Messages"; types: paxos.h).
 *
 * A frame is a 16-byte header (magic, version, type, body length, CRC32C)
 * followed by a body that carries every field of struct qfs_paxos_msg in a
 * fixed order, then the entries of an ACCEPT.  Decoding checks everything
 * before it writes its output, so a corrupt frame changes nothing.  Pure code:
 * no allocation, the caller supplies the buffers.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "common/buf.h"
#include "common/crc32c.h"
#include "repl/paxos.h"

/* u8 ok | be32 from | be32 to | be64 group, ballot, promised, last_lsn,
 * last_ballot, prev_lsn, prev_ballot, commit, match, time_ms | be32 n */
#define BODY_FIXED (1 + 4 + 4 + 8 * 10 + 4)
/* per entry: be64 ballot | be64 time_ns | u8 type | be32 len | data */
#define ENTRY_FIXED (8 + 8 + 1 + 4)

static int type_ok(uint8_t t)
{
	return t >= QFS_PAXOS_PREPARE && t <= QFS_PAXOS_HANDOFF;
}


/* See paxos.h. */
size_t qfs_paxos_msg_size(const struct qfs_paxos_msg *m)
{
	size_t n = QFS_PAXOS_FRAME_HDR + BODY_FIXED;

	for (uint32_t i = 0; i < m->n; i++)
		n += ENTRY_FIXED + m->entries[i].len;
	return n;
}

static uint8_t *put64(uint8_t *p, uint64_t v)
{
	qfs_be64_put(p, v);
	return p + 8;
}

static uint8_t *put32(uint8_t *p, uint32_t v)
{
	qfs_be32_put(p, v);
	return p + 4;
}

/* See paxos.h.  Writes nothing past cap; buf contents undefined on error. */
ssize_t qfs_paxos_msg_encode(const struct qfs_paxos_msg *m, void *buf, size_t cap)
{
	uint8_t *b = buf, *p;
	size_t len;
	uint32_t crc;

	if (!type_ok(m->type) || m->n > QFS_PAXOS_MAX_BATCH || (m->n && !m->entries))
		return -EINVAL;
	for (uint32_t i = 0; i < m->n; i++)
		if ((!m->entries[i].data && m->entries[i].len) || m->entries[i].len > UINT32_MAX)
			return -EINVAL;
	len = qfs_paxos_msg_size(m);
	if (len > cap)
		return -ENOSPC;

	p = put32(b, QFS_PAXOS_MAGIC);
	*p++ = QFS_PAXOS_VERSION;
	*p++ = m->type;
	*p++ = 0;
	*p++ = 0;
	p = put32(p, (uint32_t)(len - QFS_PAXOS_FRAME_HDR));
	p += 4; /* CRC, below */
	*p++ = m->ok;
	p = put32(p, m->from);
	p = put32(p, m->to);
	p = put64(p, m->group);
	p = put64(p, m->ballot);
	p = put64(p, m->promised);
	p = put64(p, m->last_lsn);
	p = put64(p, m->last_ballot);
	p = put64(p, m->prev_lsn);
	p = put64(p, m->prev_ballot);
	p = put64(p, m->commit);
	p = put64(p, m->match);
	p = put64(p, m->time_ms);
	p = put32(p, m->n);
	for (uint32_t i = 0; i < m->n; i++) {
		const struct qfs_repl_entry *e = &m->entries[i];

		p = put64(p, e->ballot);
		p = put64(p, e->time_ns);
		*p++ = e->type;
		p = put32(p, (uint32_t)e->len);
		if (e->len)
			memcpy(p, e->data, e->len);
		p += e->len;
	}
	crc = qfs_crc32c(0, b, 12);
	crc = qfs_crc32c(crc, b + QFS_PAXOS_FRAME_HDR, len - QFS_PAXOS_FRAME_HDR);
	qfs_be32_put(b + 12, crc);
	return (ssize_t)len;
}

/* See paxos.h. */
int qfs_paxos_msg_decode(const void *buf, size_t len, struct qfs_paxos_msg *out,
			 struct qfs_repl_entry *ents)
{
	const uint8_t *b = buf;
	struct qfs_paxos_msg m;
	struct qfs_rd rd;
	uint32_t crc;

	if (len < QFS_PAXOS_FRAME_HDR + BODY_FIXED)
		return QFS_ECORRUPT;
	if (qfs_be32_get(b) != QFS_PAXOS_MAGIC)
		return QFS_ECORRUPT;
	if ((size_t)qfs_be32_get(b + 8) != len - QFS_PAXOS_FRAME_HDR)
		return QFS_ECORRUPT;
	crc = qfs_crc32c(0, b, 12);
	crc = qfs_crc32c(crc, b + QFS_PAXOS_FRAME_HDR, len - QFS_PAXOS_FRAME_HDR);
	if (crc != qfs_be32_get(b + 12))
		return QFS_ECORRUPT;
	/* The version is checked after the CRC: a corrupt byte is corruption,
	 * an intact frame of another version is a format the peer must not send. */
	if (b[4] != QFS_PAXOS_VERSION)
		return QFS_EFORMAT;
	if (!type_ok(b[5]) || b[6] || b[7])
		return QFS_ECORRUPT;

	memset(&m, 0, sizeof(m));
	m.type = b[5];
	qfs_rd_init(&rd, b + QFS_PAXOS_FRAME_HDR, len - QFS_PAXOS_FRAME_HDR);
	m.ok = qfs_rd_u8(&rd);
	m.from = qfs_rd_u32(&rd);
	m.to = qfs_rd_u32(&rd);
	m.group = qfs_rd_u64(&rd);
	m.ballot = qfs_rd_u64(&rd);
	m.promised = qfs_rd_u64(&rd);
	m.last_lsn = qfs_rd_u64(&rd);
	m.last_ballot = qfs_rd_u64(&rd);
	m.prev_lsn = qfs_rd_u64(&rd);
	m.prev_ballot = qfs_rd_u64(&rd);
	m.commit = qfs_rd_u64(&rd);
	m.match = qfs_rd_u64(&rd);
	m.time_ms = qfs_rd_u64(&rd);
	m.n = qfs_rd_u32(&rd);
	if (rd.err || m.ok > 1 || m.n > QFS_PAXOS_MAX_BATCH)
		return QFS_ECORRUPT;
	if (m.n && m.type != QFS_PAXOS_ACCEPT)
		return QFS_ECORRUPT;
	if (m.prev_lsn > UINT64_MAX - m.n)
		return QFS_ECORRUPT;
	for (uint32_t i = 0; i < m.n; i++) {
		struct qfs_repl_entry e;
		size_t dlen;

		e.lsn = m.prev_lsn + 1 + i;
		e.ballot = qfs_rd_u64(&rd);
		e.time_ns = qfs_rd_u64(&rd);
		e.type = qfs_rd_u8(&rd);
		dlen = qfs_rd_u32(&rd);
		e.data = dlen ? qfs_rd_raw(&rd, dlen) : NULL;
		e.len = dlen;
		if (rd.err)
			return QFS_ECORRUPT;
		if (e.type != QFS_REPL_ENTRY_TXN && e.type != QFS_REPL_ENTRY_NOOP &&
		    e.type != QFS_REPL_ENTRY_CONFIG)
			return QFS_ECORRUPT;
		ents[i] = e;
	}
	if (qfs_rd_left(&rd))
		return QFS_ECORRUPT;
	m.entries = m.n ? ents : NULL;
	*out = m;
	return 0;
}
