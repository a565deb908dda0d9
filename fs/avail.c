/*
 * avail.c - the frontend's side of client-side availability
 * (doc/availability.md): which table a reply belongs to, the canary, the
 * ticker that evaluates alarms and refreshes table names, and the
 * -o metrics_listen HTTP server of /metrics.  The windows, alarms and
 * texts live in src/router/avail.c.
 *
 * Which table: a handler finds its inode through qfs_fs_iget/qfs_fs_ifind,
 * which note the inode's table in a thread-local; qfs_fs_done (one per
 * reply, on the handler's thread) records the reply under that table and
 * resets it.  The meta table (the root) and replies that found no inode
 * (the control tree) count under the pseudo-table "/".
 *
 * The canary: every canary_interval one round in the meta table, on items
 * of the reserved inode QFS_FS_CANARY_INO (in the control tree's range, so
 * never a file): put a chunk item (create), put it again (write; durable on
 * 2 of 3 when the txn returns, which is what fsync means here), read it
 * back and compare, delete it.  No dentry and no inode item names it, so it
 * is never listed, never counted by statfs and never copied by rsync.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/txn.h"
#include "fs/fs_int.h"

__thread qfs_table_t qfs_fs_tl_table;
__thread int qfs_fs_tl_errno;

struct qfs_fs_avail {
	struct qfs_fs *fs;
	struct qfs_avail *a;
	pthread_t ticker, http;
	int have_ticker, have_http;
	int lfd;                      /* listening socket, -1 none */
	int wake[2];                  /* pipe: written at stop */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop;                     /* protected by mu */
	uint64_t canary_round;        /* ticker thread only */
	uint64_t canary_ms;           /* canary interval in effect (0: none; off on -o ro) */
	atomic_int names_changed;     /* a table was renamed: refresh names at the next tick */
};

void qfs_fs_avail_names_changed(struct qfs_fs *fs)
{
	if (fs->avail)
		atomic_store(&fs->avail->names_changed, 1);
}

void qfs_fs_avail_record(struct qfs_fs *fs, const char *op, uint64_t ns, int failed)
{
	qfs_table_t g = qfs_fs_tl_table;
	int e = qfs_fs_tl_errno;

	qfs_fs_tl_table = 0;
	qfs_fs_tl_errno = 0;
	if (!fs->avail)
		return;
	if (failed && !e)
		e = EIO;
	/* !failed with an errno: a negative lookup entry, ENOENT to the user */
	qfs_avail_record(fs->avail->a, g == 0 || g == QFS_META_TABLE ? QFS_AVAIL_ROOT : g, op, ns, e);
}

struct names_ctx {
	uint64_t *ids;
	char **names;
	size_t n, cap;
};

static int names_add(const struct qfs_table *t, void *arg)
{
	struct names_ctx *c = arg;

	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		uint64_t *ids = realloc(c->ids, cap * sizeof(*ids));
		if (!ids)
			return -ENOMEM;
		c->ids = ids;
		char **names = realloc(c->names, cap * sizeof(*names));
		if (!names)
			return -ENOMEM;
		c->names = names;
		c->cap = cap;
	}
	c->names[c->n] = strdup(t->name);
	if (!c->names[c->n])
		return -ENOMEM;
	c->ids[c->n++] = t->id;
	return 0;
}

/* Refresh the table names; on failure (no quorum) keep the old ones. */
static void refresh_names(struct qfs_fs_avail *fa)
{
	struct names_ctx c = { 0 };

	if (qfs_router_table_list(fa->fs->r, "", names_add, &c) == 0)
		qfs_avail_names(fa->a, c.ids, (const char *const *)c.names, c.n);
	for (size_t i = 0; i < c.n; i++)
		free(c.names[i]);
	free(c.names);
	free(c.ids);
}

static int canary_put(struct qfs_fs_avail *fa, const struct qfs_router_key *key, const uint8_t *val, size_t vlen,
		      int del)
{
	struct qfs_router_itxn t;
	struct qfs_op *op;
	int rc, res = 0;

	qfs_router_itxn_init(&t);
	op = qfs_router_itxn_add(&t, del ? QFS_OP_DEL : QFS_OP_PUT, key, NULL);
	if (!op) {
		qfs_router_itxn_close(&t);
		return -ENOMEM;
	}
	if (!del) {
		op->val = val;
		op->val_len = (uint32_t)vlen;
	}
	rc = qfs_router_item_txn(fa->fs->r, QFS_META_TABLE, &t, &res);
	qfs_router_itxn_close(&t);
	return rc ? rc : res;
}

/* One timed canary step, recorded under "/canary". */
static int canary_step(struct qfs_fs_avail *fa, const char *op, int rc, uint64_t t0)
{
	int e = rc < 0 ? qfs_err_to_errno(rc) : 0;

	qfs_avail_record(fa->a, QFS_AVAIL_CANARY, op, qfs_clock_mono_ns() - t0, e);
	return rc;
}

/* Per node/AZ: read the item back from each replica alone, recorded as
 * read_node<N>; a follower may lag the acknowledgement by a moment, so a
 * replica gets up to CANARY_LAG_MS to show the value.  These do not decide
 * the canary alarm (one node down is invisible to users by design); they
 * show in .quorumfs/availability and the metrics per node. */
#define CANARY_LAG_MS 2000
static const char *const node_ops[] = { "read_node1", "read_node2", "read_node3", "read_node4", "read_node5",
					"read_node6", "read_node7", "read_node8", "read_node9" };

static void canary_nodes(struct qfs_fs_avail *fa, const struct qfs_router_key *key, const uint8_t *want,
			 size_t wlen)
{
	uint32_t n = qfs_router_node_count(fa->fs->r);

	for (uint32_t id = 1; id <= n && id <= sizeof(node_ops) / sizeof(node_ops[0]); id++) {
		uint64_t t0 = qfs_clock_mono_ns(), deadline = qfs_clock_mono_ms() + CANARY_LAG_MS;
		int rc;
		for (;;) {
			void *got = NULL;
			size_t glen = 0;
			rc = qfs_router_item_get_node(fa->fs->r, id, QFS_META_TABLE, key, &got, &glen);
			if (rc == 0 && (glen != wlen || memcmp(got, want, wlen)))
				rc = -EIO; /* not (yet) the value written */
			free(got);
			if (rc == 0 || rc == -EHOSTDOWN || rc == -EINVAL || qfs_clock_mono_ms() >= deadline)
				break;
			usleep(20000);
		}
		canary_step(fa, node_ops[id - 1], rc, t0);
	}
}

static void canary_round(struct qfs_fs_avail *fa)
{
	struct qfs_router_key key = CKEY(QFS_FS_CANARY_INO, fa->canary_round++);
	uint8_t v1[64], v2[64];
	void *got = NULL;
	size_t glen = 0;
	const char *step = "create";
	uint64_t t0, t_all = qfs_clock_mono_ns();
	int rc;
	char why[160];

	for (size_t i = 0; i < sizeof(v1); i++) {
		v1[i] = (uint8_t)random();
		v2[i] = (uint8_t)random();
	}
	t0 = qfs_clock_mono_ns();
	rc = canary_step(fa, "create", canary_put(fa, &key, v1, sizeof(v1), 0), t0);
	if (rc)
		goto fail;
	step = "write";
	t0 = qfs_clock_mono_ns();
	rc = canary_step(fa, "write", canary_put(fa, &key, v2, sizeof(v2), 0), t0);
	if (rc)
		goto fail_del;
	step = "read";
	t0 = qfs_clock_mono_ns();
	rc = qfs_router_item_get(fa->fs->r, QFS_META_TABLE, &key, &got, &glen);
	if (rc == 0 && (glen != sizeof(v2) || memcmp(got, v2, glen)))
		rc = -EIO; /* read back something else */
	free(got);
	canary_step(fa, "read", rc, t0);
	if (rc)
		goto fail_del;
	canary_nodes(fa, &key, v2, sizeof(v2));
	step = "delete";
	t0 = qfs_clock_mono_ns();
	rc = canary_step(fa, "delete", canary_put(fa, &key, NULL, 0, 1), t0);
	if (rc)
		goto fail;
	canary_step(fa, "round", 0, t_all);
	qfs_avail_canary_result(fa->a, 1, NULL);
	return;
fail_del:
	canary_put(fa, &key, NULL, 0, 1); /* best effort; a leftover is harmless */
fail:
	canary_step(fa, "round", rc, t_all);
	snprintf(why, sizeof(why), "canary %s failed: %s", step, qfs_strerror(rc));
	qfs_avail_canary_result(fa->a, 0, why);
}

/* Every second (or at the next canary round, if sooner): refresh names
 * (every 30 s), evaluate alarms, run a canary round when due. */
static void *ticker_main(void *arg)
{
	struct qfs_fs_avail *fa = arg;
	uint64_t canary_ms = fa->canary_ms; /* not fs->o's: -o ro turns it off */
	uint64_t next_canary = qfs_clock_mono_ms() + canary_ms, next_names = 0; /* first round after one interval */

	for (;;) {
		struct timespec dl;
		uint64_t wait_ms = 1000, t = qfs_clock_mono_ms();
		if (canary_ms && next_canary < t + wait_ms) /* a sub-second canary_interval */
			wait_ms = next_canary > t ? next_canary - t : 0;
		pthread_mutex_lock(&fa->mu);
		qfs_clock_deadline(CLOCK_MONOTONIC, wait_ms, &dl);
		while (!fa->stop && pthread_cond_timedwait(&fa->cv, &fa->mu, &dl) != ETIMEDOUT)
			;
		int stop = fa->stop;
		pthread_mutex_unlock(&fa->mu);
		if (stop)
			break;
		uint64_t now = qfs_clock_mono_ms();
		/* names: every 30 s, and soon after a new table shows up */
		if (now >= next_names || (now + 29000 >= next_names && qfs_avail_unnamed(fa->a)) ||
		    atomic_exchange(&fa->names_changed, 0)) {
			refresh_names(fa);
			next_names = now + 30000;
		}
		qfs_avail_tick(fa->a);
		if (canary_ms && now >= next_canary) {
			canary_round(fa);
			next_canary = qfs_clock_mono_ms() + canary_ms;
		}
	}
	return NULL;
}

/* ---- -o metrics_listen: a tiny HTTP/1.0 server of GET /metrics ---- */

static void http_reply(int fd, const char *status, const char *ctype, const void *body, size_t len)
{
	char hdr[256];
	int n = snprintf(hdr, sizeof(hdr),
			 "HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
			 status, ctype, len);
	const char *parts[2] = { hdr, body };
	size_t lens[2] = { (size_t)n, len };

	for (int i = 0; i < 2; i++) {
		size_t off = 0;
		while (off < lens[i]) {
			ssize_t w = send(fd, parts[i] + off, lens[i] - off, MSG_NOSIGNAL);
			if (w <= 0)
				return;
			off += (size_t)w;
		}
	}
}

static void http_serve(struct qfs_fs_avail *fa, int fd)
{
	char req[2048];
	size_t got = 0;
	struct pollfd p = { fd, POLLIN, 0 };
	uint64_t deadline = qfs_clock_mono_ms() + 5000; /* a slow sender holds the one thread 5 s at most */

	while (got < sizeof(req) - 1 && !memmem(req, got, "\r\n\r\n", 4) && !memmem(req, got, "\n\n", 2)) {
		uint64_t now = qfs_clock_mono_ms();
		if (now >= deadline || poll(&p, 1, (int)(deadline - now)) <= 0)
			return;
		ssize_t r = recv(fd, req + got, sizeof(req) - 1 - got, 0);
		if (r <= 0)
			return;
		got += (size_t)r;
	}
	req[got] = '\0';
	if (strncmp(req, "GET ", 4)) {
		http_reply(fd, "405 Method Not Allowed", "text/plain", "GET only\n", 9);
		return;
	}
	if (strncmp(req + 4, "/metrics ", 9) && strncmp(req + 4, "/metrics?", 9)) {
		http_reply(fd, "404 Not Found", "text/plain", "try /metrics\n", 13);
		return;
	}
	struct qfs_buf b;
	qfs_buf_init(&b);
	qfs_avail_metrics(fa->a, &b);
	if (b.err)
		http_reply(fd, "500 Internal Server Error", "text/plain", "out of memory\n", 14);
	else
		http_reply(fd, "200 OK", "text/plain; version=0.0.4; charset=utf-8", b.data, b.len);
	qfs_buf_close(&b);
}

static void *http_main(void *arg)
{
	struct qfs_fs_avail *fa = arg;

	for (;;) {
		struct pollfd p[2] = { { fa->lfd, POLLIN, 0 }, { fa->wake[0], POLLIN, 0 } };
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			break;
		if (!(p[0].revents & POLLIN))
			continue;
		int fd = accept4(fa->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		/* a client that stops reading must not hold the one thread (and
		 * the unmount, which joins it) for ever: sends give up after 5 s */
		struct timeval tv = { 5, 0 };
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		http_serve(fa, fd);
		close(fd);
	}
	return NULL;
}

static int http_listen(const char *hostport)
{
	char host[256];
	const char *colon = strrchr(hostport, ':');
	struct addrinfo hints = { 0 }, *res = NULL;
	int fd = -1, one = 1, rc;

	if (!colon || (size_t)(colon - hostport) >= sizeof(host))
		return -EINVAL;
	memcpy(host, hostport, (size_t)(colon - hostport));
	host[colon - hostport] = '\0';
	if (host[0] == '[' && host[strlen(host) - 1] == ']') { /* [::1]:9100 */
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &res);
	if (rc) {
		QFS_LOG(QFS_LOG_ERR, "metrics_listen address not usable addr=%s err=\"%s\"", hostport, gai_strerror(rc));
		return -EINVAL;
	}
	fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, res->ai_addr, res->ai_addrlen) || listen(fd, 16)) {
		rc = -errno;
		close(fd);
		fd = -1;
		goto out;
	}
	rc = 0;
out:
	freeaddrinfo(res);
	if (rc) {
		QFS_LOG(QFS_LOG_ERR, "metrics_listen cannot listen addr=%s err=\"%s\"", hostport, strerror(-rc));
		return rc;
	}
	return fd;
}

int qfs_fs_avail_start(struct qfs_fs *fs)
{
	struct qfs_avail_opts def;
	const struct qfs_avail_opts *o = fs->o->avail;
	struct qfs_fs_avail *fa;
	int rc;

	if (!o) {
		qfs_avail_opts_default(&def);
		def.canary_ms = 0; /* not asked for: callers that set no options (unit tools) */
		o = &def;
	} else if (fs->o->readonly && o->canary_ms) {
		def = *o;
		def.canary_ms = 0; /* -o ro: the canary writes; a read-only mount writes nothing */
		o = &def;
		QFS_LOG(QFS_LOG_INFO, "canary off on a read-only mount");
	}
	fa = calloc(1, sizeof(*fa));
	if (!fa)
		return -ENOMEM;
	fa->fs = fs;
	fa->canary_ms = o->canary_ms;
	fa->lfd = -1;
	fa->wake[0] = fa->wake[1] = -1;
	pthread_mutex_init(&fa->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&fa->cv, &ca);
	pthread_condattr_destroy(&ca);
	fa->a = qfs_avail_new(o);
	if (!fa->a) {
		rc = -ENOMEM;
		goto err;
	}
	if (o->metrics_listen) {
		rc = http_listen(o->metrics_listen);
		if (rc < 0)
			goto err;
		fa->lfd = rc;
		if (pipe2(fa->wake, O_CLOEXEC)) {
			rc = -errno;
			goto err;
		}
		if ((rc = -pthread_create(&fa->http, NULL, http_main, fa)))
			goto err;
		fa->have_http = 1;
		QFS_LOG(QFS_LOG_INFO, "serving metrics addr=%s path=/metrics", o->metrics_listen);
	}
	if ((rc = -pthread_create(&fa->ticker, NULL, ticker_main, fa)))
		goto err;
	fa->have_ticker = 1;
	fs->avail = fa;
	return 0;
err:
	fs->avail = fa;
	qfs_fs_avail_stop(fs);
	return rc;
}

void qfs_fs_avail_stop(struct qfs_fs *fs)
{
	struct qfs_fs_avail *fa = fs->avail;

	if (!fa)
		return;
	pthread_mutex_lock(&fa->mu);
	fa->stop = 1;
	pthread_cond_broadcast(&fa->cv);
	pthread_mutex_unlock(&fa->mu);
	if (fa->wake[1] >= 0 && write(fa->wake[1], "x", 1) < 0)
		QFS_LOG(QFS_LOG_WARN, "metrics listener wake failed err=\"%s\"", strerror(errno));
	if (fa->have_ticker)
		pthread_join(fa->ticker, NULL);
	if (fa->have_http)
		pthread_join(fa->http, NULL);
	if (fa->lfd >= 0)
		close(fa->lfd);
	if (fa->wake[0] >= 0) {
		close(fa->wake[0]);
		close(fa->wake[1]);
	}
	fs->avail = NULL;
	qfs_avail_free(fa->a);
	pthread_cond_destroy(&fa->cv);
	pthread_mutex_destroy(&fa->mu);
	free(fa);
}

struct qfs_avail *qfs_fs_avail_of(struct qfs_fs *fs)
{
	return fs->avail ? fs->avail->a : NULL;
}
