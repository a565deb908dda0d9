/*
 * paxos_msg.c - wire encoding of Multi-Paxos messages (format: doc/paxos.md,
 * section "Messages"; types: paxos.h).
 *
 * The body carries every field of struct qfs_paxos_msg in a fixed order,
 * then the entries of an ACCEPT; the frame header around it (magic,
 * version, type, length, CRC32C) is src/net's (net/frame.h), put on and
 * checked by the driver.  Decoding checks everything before it writes its
 * output, so a malformed body changes nothing.  Pure code: no allocation,
 * the caller supplies the buffers.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "common/buf.h"
#include "repl/paxos.h"

/* u8 ok | be32 from | be32 to | be64 group, ballot, promised, last_lsn,
 * last_ballot, prev_lsn, prev_ballot, commit, match, time_ms | be32 n */
#define BODY_FIXED (1 + 4 + 4 + 8 * 10 + 4)
/* per entry: be64 ballot | be64 time_ns | u8 type | be32 len | data */
#define ENTRY_FIXED (8 + 8 + 1 + 4)

/* See paxos.h. */
int qfs_paxos_msg_type_ok(uint8_t t)
{
	return t >= QFS_PAXOS_PREPARE && t <= QFS_PAXOS_HANDOFF;
}


/* See paxos.h. */
size_t qfs_paxos_msg_size(const struct qfs_paxos_msg *m)
{
	size_t n = BODY_FIXED;

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

	if (!qfs_paxos_msg_type_ok(m->type) || m->n > QFS_PAXOS_MAX_BATCH || (m->n && !m->entries))
		return -EINVAL;
	for (uint32_t i = 0; i < m->n; i++)
		if ((!m->entries[i].data && m->entries[i].len) || m->entries[i].len > UINT32_MAX)
			return -EINVAL;
	len = qfs_paxos_msg_size(m);
	if (len > cap)
		return -ENOSPC;

	p = b;
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
	return (ssize_t)len;
}

/* See paxos.h. */
int qfs_paxos_msg_decode(uint8_t type, const void *buf, size_t len, struct qfs_paxos_msg *out,
			 struct qfs_repl_entry *ents)
{
	struct qfs_paxos_msg m;
	struct qfs_rd rd;

	if (!qfs_paxos_msg_type_ok(type) || len < BODY_FIXED)
		return QFS_ECORRUPT;
	memset(&m, 0, sizeof(m));
	m.type = type;
	qfs_rd_init(&rd, buf, len);
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
