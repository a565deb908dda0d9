/*
 * cluster.c - the cluster file and the codec of the router <-> node
 * requests (contract: cluster.h; formats: doc/cluster.md and
 * doc/format-net.md section 8).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "net/frame.h"
#include "node/cluster.h"

static int parse_u32(const char *s, uint32_t max, uint32_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v == 0 || v > max)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

/* 1 if a is "a.b.c.d:port" with a non-zero port. */
static int addr_ok(const char *a)
{
	const char *colon = strrchr(a, ':');
	unsigned a0, a1, a2, a3, port;
	char tail;

	if (!colon || sscanf(a, "%u.%u.%u.%u:%u%c", &a0, &a1, &a2, &a3, &port, &tail) != 5)
		return 0;
	return a0 < 256 && a1 < 256 && a2 < 256 && a3 < 256 && port > 0 && port < 65536;
}

/* See cluster.h. */
int qfs_cluster_load(const char *path, struct qfs_cluster *out)
{
	struct qfs_cluster *cl;
	char line[1024];
	unsigned lineno = 0;
	FILE *f;
	int r = 0;

	cl = calloc(1, sizeof(*cl));
	if (!cl)
		return -ENOMEM;
	f = fopen(path, "re");
	if (!f) {
		r = -errno;
		QFS_LOG(QFS_LOG_ERR, "cluster file refused path=%s err=\"%s\"", path, qfs_strerror(r));
		free(cl);
		return r;
	}
	while (fgets(line, sizeof(line), f)) {
		char *tok[8], *save = NULL, *p;
		int nt = 0;

		lineno++;
		if ((p = strchr(line, '#')))
			*p = '\0';
		for (p = strtok_r(line, " \t\r\n", &save); p && nt < 8; p = strtok_r(NULL, " \t\r\n", &save))
			tok[nt++] = p;
		if (!nt)
			continue;
		if (!strcmp(tok[0], "key") && nt == 2) {
			const char *slash = strrchr(path, '/');
			int dl = tok[1][0] == '/' || !slash ? 0 : (int)(slash - path + 1);

			/* A relative key path is relative to the cluster file. */
			if ((size_t)snprintf(cl->key_path, sizeof(cl->key_path), "%.*s%s", dl, path,
					     tok[1]) >= sizeof(cl->key_path))
				goto bad;
			continue;
		}
		if (!strcmp(tok[0], "node") && nt == 6 && !strcmp(tok[2], "az") &&
		    !strcmp(tok[4], "addr")) {
			struct qfs_cluster_node *n;

			if (cl->n == QFS_CLUSTER_MAX_NODES) {
				QFS_LOG(QFS_LOG_ERR, "cluster file refused path=%s line=%u err=\"more than %u nodes\"",
					path, lineno, QFS_CLUSTER_MAX_NODES);
				r = -EINVAL;
				break;
			}
			n = &cl->nodes[cl->n];
			if (parse_u32(tok[1], QFS_RPC_ROUTER_MIN - 1, &n->id) < 0 ||
			    qfs_cluster_node(cl, n->id) || strlen(tok[3]) >= sizeof(n->az) ||
			    strlen(tok[5]) >= sizeof(n->addr) || !addr_ok(tok[5]))
				goto bad;
			strcpy(n->az, tok[3]);
			strcpy(n->addr, tok[5]);
			cl->n++;
			continue;
		}
bad:
		QFS_LOG(QFS_LOG_ERR, "cluster file refused path=%s line=%u err=\"expected 'node ID az AZ "
			"addr A.B.C.D:PORT' (ids 1..%u, unique) or 'key PATH'\"", path, lineno,
			QFS_RPC_ROUTER_MIN - 1);
		r = -EINVAL;
		break;
	}
	fclose(f);
	if (!r && (!cl->n || !cl->key_path[0])) {
		QFS_LOG(QFS_LOG_ERR, "cluster file refused path=%s err=\"%s\"", path,
			!cl->n ? "no node line" : "no key line");
		r = -EINVAL;
	}
	if (!r)
		r = qfs_net_key_load(cl->key_path, cl->key, sizeof(cl->key), &cl->key_len);
	if (!r)
		*out = *cl;
	memset(cl, 0, sizeof(*cl));
	free(cl);
	return r;
}

/* See cluster.h. */
const struct qfs_cluster_node *qfs_cluster_node(const struct qfs_cluster *cl, uint32_t id)
{
	for (uint32_t i = 0; i < cl->n; i++)
		if (cl->nodes[i].id == id)
			return &cl->nodes[i];
	return NULL;
}

/* See cluster.h. */
uint32_t qfs_cluster_azs(const struct qfs_cluster *cl)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < cl->n; i++) {
		uint32_t j;

		for (j = 0; j < i && strcmp(cl->nodes[j].az, cl->nodes[i].az); j++)
			;
		n += j == i;
	}
	return n;
}

/* See cluster.h. */
int qfs_cluster_place(const struct qfs_cluster *cl, const uint32_t *load, const uint8_t *up,
		      uint32_t out[QFS_CLUSTER_REPLICAS])
{
	uint32_t ord[QFS_CLUSTER_MAX_NODES], pick[QFS_CLUSTER_REPLICAS], k = 0;

	if (qfs_cluster_azs(cl) < QFS_CLUSTER_REPLICAS)
		return -EINVAL;
	for (uint32_t i = 0; i < cl->n; i++)
		ord[i] = i;
	/* insertion sort by (down, load, id): at most 5 nodes */
	for (uint32_t i = 1; i < cl->n; i++)
		for (uint32_t j = i; j > 0; j--) {
			uint32_t a = ord[j - 1], b = ord[j], t;
			int later = (!up[a] && up[b]) ||
				(!up[a] == !up[b] && (load[a] > load[b] ||
				 (load[a] == load[b] && cl->nodes[a].id > cl->nodes[b].id)));

			if (!later)
				break;
			t = ord[j - 1];
			ord[j - 1] = ord[j];
			ord[j] = t;
		}
	for (uint32_t i = 0; i < cl->n && k < QFS_CLUSTER_REPLICAS; i++) {
		uint32_t j;

		for (j = 0; j < k && strcmp(cl->nodes[pick[j]].az, cl->nodes[ord[i]].az); j++)
			;
		if (j == k)
			pick[k++] = ord[i];
	}
	for (uint32_t i = 0; i < QFS_CLUSTER_REPLICAS; i++)
		out[i] = cl->nodes[pick[i]].id;
	return 0;
}

/* Room for the header, then seal once the body is in. */
static int seal(struct qfs_buf *b, uint8_t type)
{
	if (b->err)
		return b->err;
	if (b->len > QFS_NET_FRAME_MAX)
		return -EMSGSIZE;
	qfs_net_frame_seal(b->data, type, b->len - QFS_NET_FRAME_HDR);
	return 0;
}

static void start(struct qfs_buf *b)
{
	static const uint8_t zero[QFS_NET_FRAME_HDR];

	qfs_buf_reset(b);
	qfs_buf_put(b, zero, sizeof(zero));
}

/* See cluster.h.  Body: be64 id | be32 from | u8 op | u8 flags | be16 0 |
 * be64 group | be32 timeout_ms | bytes addr | bytes a | bytes b
 * (bytes: be32 length | data). */
int qfs_rpc_req_encode(struct qfs_buf *b, const struct qfs_rpc_req *r)
{
	start(b);
	qfs_buf_put_u64(b, r->id);
	qfs_buf_put_u32(b, r->from);
	qfs_buf_put_u8(b, r->op);
	qfs_buf_put_u8(b, r->flags);
	qfs_buf_put_u16(b, 0);
	qfs_buf_put_u64(b, r->group);
	qfs_buf_put_u32(b, r->timeout_ms);
	qfs_buf_put_bytes(b, r->addr, r->addr ? strlen(r->addr) : 0);
	qfs_buf_put_bytes(b, r->a, r->alen);
	qfs_buf_put_bytes(b, r->b, r->blen);
	return seal(b, QFS_RPC_REQ);
}

/* See cluster.h.  Body: be64 id | be32 err | be32 result | be32 leader |
 * bytes data. */
int qfs_rpc_rep_encode(struct qfs_buf *b, const struct qfs_rpc_rep *r)
{
	start(b);
	qfs_buf_put_u64(b, r->id);
	qfs_buf_put_u32(b, (uint32_t)r->err);
	qfs_buf_put_u32(b, (uint32_t)r->result);
	qfs_buf_put_u32(b, r->leader);
	qfs_buf_put_bytes(b, r->data, r->len);
	return seal(b, QFS_RPC_REP);
}

/* See cluster.h.  The address (no NUL inside, under 64 bytes) is returned
 * NUL-terminated in a thread-local copy, valid until the thread's next
 * decode. */
int qfs_rpc_req_decode(const uint8_t *body, size_t len, struct qfs_rpc_req *out)
{
	static __thread char addr[64];
	struct qfs_rpc_req r;
	const uint8_t *a;
	struct qfs_rd rd;
	size_t alen;

	memset(&r, 0, sizeof(r));
	qfs_rd_init(&rd, body, len);
	r.id = qfs_rd_u64(&rd);
	r.from = qfs_rd_u32(&rd);
	r.op = qfs_rd_u8(&rd);
	r.flags = qfs_rd_u8(&rd);
	(void)qfs_rd_u16(&rd);
	r.group = qfs_rd_u64(&rd);
	r.timeout_ms = qfs_rd_u32(&rd);
	a = qfs_rd_bytes(&rd, &alen);
	r.a = qfs_rd_bytes(&rd, &r.alen);
	r.b = qfs_rd_bytes(&rd, &r.blen);
	if (rd.err || qfs_rd_left(&rd) || alen >= sizeof(addr) || (alen && memchr(a, 0, alen)) ||
	    r.op < QFS_RPC_PROPOSE || r.op > QFS_RPC_NONMEMBER || r.from < QFS_RPC_ROUTER_MIN ||
	    r.from > 65535)
		return QFS_ECORRUPT;
	memcpy(addr, a, alen);
	addr[alen] = '\0';
	r.addr = addr;
	*out = r;
	return 0;
}

/* See cluster.h. */
int qfs_rpc_rep_decode(const uint8_t *body, size_t len, struct qfs_rpc_rep *out)
{
	struct qfs_rpc_rep r;
	struct qfs_rd rd;

	memset(&r, 0, sizeof(r));
	qfs_rd_init(&rd, body, len);
	r.id = qfs_rd_u64(&rd);
	r.err = (int32_t)qfs_rd_u32(&rd);
	r.result = (int32_t)qfs_rd_u32(&rd);
	r.leader = qfs_rd_u32(&rd);
	r.data = qfs_rd_bytes(&rd, &r.len);
	if (rd.err || qfs_rd_left(&rd) || r.err > 0)
		return QFS_ECORRUPT;
	*out = r;
	return 0;
}
