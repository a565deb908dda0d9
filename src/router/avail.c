/*
 * avail.c - client-side availability windows, alarms and metrics text; see
 * avail.h and doc/availability.md.
 *
 * Each (table, op) entry keeps lifetime counters (for Prometheus) and three
 * rings of time slots, one per window: W (the "1 min") is 6 slots of W/6,
 * 5W is 5 slots of W, 60W is 12 slots of 5W.  A window's sum is that of
 * the slots still inside it, so it covers between (n-1)/n and all of its
 * length: close enough for paging, and memory stays at a few KiB per entry.
 * Latency buckets are powers of two of microseconds, as router/metrics.h.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "router/avail.h"
#include "router/metrics.h"

#define NTIERS 3
#define MAXSLOTS 12
#define NERRNO 16      /* distinct errnos counted per entry; more go to "other" */
#define MAXALARMS 64

struct slot {
	uint64_t no;                        /* time / tier length; 0 = unused */
	uint32_t count, errors, server;     /* replies, failed, failed server-side */
	uint32_t b[QFS_HIST_BUCKETS];       /* latency buckets */
};

struct tier {
	struct slot s[MAXSLOTS];
};

struct entry {
	uint64_t table;
	const char *op;
	uint64_t count, errors, server;     /* lifetime */
	uint64_t sum_us;                    /* lifetime latency sum */
	uint64_t b[QFS_HIST_BUCKETS];       /* lifetime latency buckets */
	int eno[NERRNO];                    /* errno values seen ... */
	uint64_t ecount[NERRNO];            /* ... and how often; [NERRNO-1] may be "other" (-1) */
	struct tier t[NTIERS];
	unsigned misses;                    /* name refreshes in a row that did not list table */
	struct entry *next;
};

struct alarm {
	char kind[16];                      /* "availability" or "canary" */
	uint64_t table;                     /* availability: which table */
	uint64_t raised_ns;                 /* wall clock */
	char text[160];
};

struct name {
	uint64_t id;
	char *name;
};

struct qfs_avail {
	struct qfs_avail_opts o;
	uint64_t len_ms[NTIERS];            /* slot length per tier */
	unsigned nslots[NTIERS];
	pthread_mutex_t mu;                 /* protects everything below */
	struct entry *head;
	struct alarm al[MAXALARMS];
	size_t nal;
	struct name *names;
	size_t nnames;
	uint64_t canary_fail, canary_ok;    /* rounds */
};

static const char *tier_name[NTIERS] = { "w1", "w2", "w3" };

void qfs_avail_opts_default(struct qfs_avail_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->error_rate = QFS_AVAIL_RATE_DEFAULT;
	o->min_requests = QFS_AVAIL_MIN_REQ_DEFAULT;
	o->window_ms = QFS_AVAIL_WINDOW_DEFAULT_MS;
	o->canary_ms = QFS_AVAIL_CANARY_DEFAULT_MS;
}

/* An option's duration (common/clock.h), at most 1e10 ms. */
static int dur_ms(const char *s, uint64_t *out)
{
	return qfs_clock_parse_ms(s, 10000000000ull, out);
}

int qfs_avail_opt(struct qfs_avail_opts *o, const char *tok)
{
	const char *v = strchr(tok, '=');
	uint64_t ms;

	if (!v)
		return 0;
	v++;
	if (!strncmp(tok, "alarm_error_rate=", 17)) {
		char *e;
		errno = 0;
		double r = strtod(v, &e);
		if (errno || e == v || *e || !(r > 0 && r <= 1)) {
			fprintf(stderr, "quorumfs: bad value '%s' for option alarm_error_rate (want a fraction, e.g. 0.01)\n", v);
			return -1;
		}
		o->error_rate = r;
		return 1;
	}
	if (!strncmp(tok, "alarm_min_requests=", 19)) {
		char *e;
		errno = 0;
		unsigned long long n = strtoull(v, &e, 10);
		if (errno || e == v || *e || n == 0 || n > 1000000000ull) {
			fprintf(stderr, "quorumfs: bad value '%s' for option alarm_min_requests\n", v);
			return -1;
		}
		o->min_requests = n;
		return 1;
	}
	if (!strncmp(tok, "alarm_window=", 13)) {
		if (dur_ms(v, &ms) || ms < 600 || ms > 3600000) {
			fprintf(stderr, "quorumfs: bad value '%s' for option alarm_window (0.6s to 1h)\n", v);
			return -1;
		}
		o->window_ms = ms;
		return 1;
	}
	if (!strncmp(tok, "canary_interval=", 16)) {
		if (!strcmp(v, "off")) {
			o->canary_ms = 0;
			return 1;
		}
		if (dur_ms(v, &ms) || ms < 100) {
			fprintf(stderr, "quorumfs: bad value '%s' for option canary_interval (e.g. 60s, off)\n", v);
			return -1;
		}
		o->canary_ms = ms;
		return 1;
	}
	if (!strncmp(tok, "metrics_listen=", 15)) {
		const char *colon = strrchr(v, ':');
		char *e = NULL;
		unsigned long port = colon ? strtoul(colon + 1, &e, 10) : 0;
		/* a decimal port 1..65535: 99999 would listen on 34463 */
		if (!colon || colon == v || !colon[1] || !isdigit((unsigned char)colon[1]) || *e || port == 0 ||
		    port > 65535) {
			fprintf(stderr, "quorumfs: bad value '%s' for option metrics_listen (want HOST:PORT, PORT 1 to 65535)\n", v);
			return -1;
		}
		o->metrics_listen = v;
		return 1;
	}
	return 0;
}

struct qfs_avail *qfs_avail_new(const struct qfs_avail_opts *o)
{
	struct qfs_avail *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->o = *o;
	if (a->o.window_ms < 600)
		a->o.window_ms = QFS_AVAIL_WINDOW_DEFAULT_MS;
	a->len_ms[0] = a->o.window_ms / 6;
	a->nslots[0] = 6;
	a->len_ms[1] = a->o.window_ms;
	a->nslots[1] = 5;
	a->len_ms[2] = a->o.window_ms * 5;
	a->nslots[2] = 12;
	pthread_mutex_init(&a->mu, NULL);
	return a;
}

void qfs_avail_free(struct qfs_avail *a)
{
	if (!a)
		return;
	while (a->head) {
		struct entry *e = a->head;
		a->head = e->next;
		free(e);
	}
	for (size_t i = 0; i < a->nnames; i++)
		free(a->names[i].name);
	free(a->names);
	pthread_mutex_destroy(&a->mu);
	free(a);
}

int qfs_avail_server_errno(int e)
{
	switch (e) {
	case ENOENT: case EEXIST: case ENOTEMPTY: case EACCES: case EPERM: case EINVAL:
	case ENAMETOOLONG: case EXDEV: case ENODATA: case ERANGE: case ENOTDIR: case EISDIR:
	case EBADF: case EFBIG: case EMLINK: case ELOOP: case EOPNOTSUPP: case ENOSYS:
	case EROFS: case ESTALE: case EINTR: case EBUSY: case E2BIG: case ENOTTY: case ENXIO:
	case ETXTBSY: case EOVERFLOW: case EDQUOT:
		return 0;
	default:
		return 1;  /* EIO, ETIMEDOUT, ENOSPC, EAGAIN (throttling), ENOMEM, ... */
	}
}

static unsigned bucket_of(uint64_t us)
{
	unsigned b = 0;

	while (b < QFS_HIST_BUCKETS - 1 && (1ull << b) <= us)
		b++;
	return b;
}

/* The entry for (table, op), created if new; NULL on ENOMEM.  a->mu held. */
static struct entry *entry_get(struct qfs_avail *a, uint64_t table, const char *op)
{
	struct entry *e, **pp;

	for (pp = &a->head; (e = *pp); pp = &e->next) {
		if (e->table == table && (e->op == op || !strcmp(e->op, op)))
			return e;
		/* keep the list sorted by table then op, for stable output */
		if (e->table > table || (e->table == table && strcmp(e->op, op) > 0))
			break;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->table = table;
	e->op = op;
	e->next = *pp;
	*pp = e;
	return e;
}

static struct slot *slot_at(struct qfs_avail *a, struct entry *e, unsigned t, uint64_t now_ms)
{
	uint64_t no = now_ms / a->len_ms[t] + 1;
	struct slot *s = &e->t[t].s[no % a->nslots[t]];

	if (s->no != no) {
		memset(s, 0, sizeof(*s));
		s->no = no;
	}
	return s;
}

void qfs_avail_record(struct qfs_avail *a, uint64_t table, const char *op, uint64_t ns, int err)
{
	uint64_t us = ns / 1000, now = qfs_clock_mono_ms();
	unsigned b = bucket_of(us);
	int server = err && qfs_avail_server_errno(err);
	struct entry *e;

	pthread_mutex_lock(&a->mu);
	e = entry_get(a, table, op);
	if (!e)
		goto out;
	e->count++;
	e->sum_us += us;
	e->b[b]++;
	if (err) {
		e->errors++;
		e->server += server;
		unsigned i;
		for (i = 0; i < NERRNO - 1 && e->eno[i] && e->eno[i] != err; i++)
			;
		if (i == NERRNO - 1 && e->eno[i] != err)
			e->eno[i] = -1;  /* other */
		else
			e->eno[i] = err;
		e->ecount[i]++;
	}
	for (unsigned t = 0; t < NTIERS; t++) {
		struct slot *s = slot_at(a, e, t, now);
		s->count++;
		s->b[b]++;
		if (err) {
			s->errors++;
			s->server += server;
		}
	}
out:
	pthread_mutex_unlock(&a->mu);
}

/* Sum of entry e over window t at now; returns the merged slot. */
static void window_sum(const struct qfs_avail *a, const struct entry *e, unsigned t, uint64_t now_ms,
		       struct slot *sum)
{
	uint64_t cur = now_ms / a->len_ms[t] + 1;

	memset(sum, 0, sizeof(*sum));
	for (unsigned i = 0; i < a->nslots[t]; i++) {
		const struct slot *s = &e->t[t].s[i];
		if (!s->no || s->no + a->nslots[t] <= cur)
			continue;
		sum->count += s->count;
		sum->errors += s->errors;
		sum->server += s->server;
		for (unsigned k = 0; k < QFS_HIST_BUCKETS; k++)
			sum->b[k] += s->b[k];
	}
}

/* Percentile pct of the buckets: the upper bound (us) of the bucket. */
static uint64_t pct_us(const uint32_t *b, uint64_t total, double pct)
{
	uint64_t want, seen = 0;

	if (!total)
		return 0;
	want = (uint64_t)((double)total * pct / 100.0 + 0.999999);
	if (!want)
		want = 1;
	for (unsigned i = 0; i < QFS_HIST_BUCKETS; i++) {
		seen += b[i];
		if (seen >= want)
			return 1ull << i;
	}
	return 1ull << (QFS_HIST_BUCKETS - 1);
}

static const char *name_of(const struct qfs_avail *a, uint64_t id, char *buf, size_t len)
{
	if (id == QFS_AVAIL_ROOT)
		return QFS_AVAIL_ROOT_NAME;
	if (id == QFS_AVAIL_CANARY)
		return QFS_AVAIL_CANARY_NAME;
	for (size_t i = 0; i < a->nnames; i++)
		if (a->names[i].id == id)
			return a->names[i].name;
	snprintf(buf, len, "group-%016llx", (unsigned long long)id);
	return buf;
}

static void alarm_clear(struct qfs_avail *a, const char *kind, uint64_t table, const char *why);
static struct alarm *alarm_find(struct qfs_avail *a, const char *kind, uint64_t table);

/* After a name refresh (a->mu held): a table the listing missed twice in a
 * row was deleted (an entry exists only once its table's dentry is
 * committed, so a second listing, started after the first one ended, lists
 * a live table).  Its entries and its alarm go: else it would stay in the
 * control files for ever and keep qfs_avail_unnamed true, which makes the
 * frontend list every table every second. */
static void prune_locked(struct qfs_avail *a)
{
	for (struct entry **pp = &a->head, *e; (e = *pp);) {
		int named = e->table == QFS_AVAIL_ROOT || e->table == QFS_AVAIL_CANARY;

		for (size_t i = 0; i < a->nnames && !named; i++)
			named = a->names[i].id == e->table;
		e->misses = named ? 0 : e->misses + 1;
		if (e->misses < 2) {
			pp = &e->next;
			continue;
		}
		*pp = e->next;
		if (!(*pp && (*pp)->table == e->table) && alarm_find(a, "availability", e->table))
			alarm_clear(a, "availability", e->table, "table deleted");
		free(e);
	}
}

void qfs_avail_names(struct qfs_avail *a, const uint64_t *ids, const char *const *names, size_t n)
{
	struct name *nn = calloc(n ? n : 1, sizeof(*nn));

	if (!nn)
		return;
	for (size_t i = 0; i < n; i++) {
		nn[i].id = ids[i];
		nn[i].name = strdup(names[i]);
		if (!nn[i].name) {
			while (i--)
				free(nn[i].name);
			free(nn);
			return;
		}
	}
	pthread_mutex_lock(&a->mu);
	struct name *old = a->names;
	size_t nold = a->nnames;
	a->names = nn;
	a->nnames = n;
	prune_locked(a);
	pthread_mutex_unlock(&a->mu);
	for (size_t i = 0; i < nold; i++)
		free(old[i].name);
	free(old);
}

void qfs_avail_name_add(struct qfs_avail *a, uint64_t id, const char *name)
{
	char *dup = strdup(name);

	if (!dup)
		return;
	pthread_mutex_lock(&a->mu);
	for (size_t i = 0; i < a->nnames;)
		if (a->names[i].id != id && !strcmp(a->names[i].name, name)) {
			/* the name's last table was dropped or renamed: it goes
			 * unnamed (so the next refresh comes soon and prunes it)
			 * rather than answer for the name or show the same labels */
			free(a->names[i].name);
			a->names[i] = a->names[--a->nnames];
		} else {
			i++;
		}
	for (size_t i = 0; dup && i < a->nnames; i++)
		if (a->names[i].id == id) {
			free(a->names[i].name);
			a->names[i].name = dup;
			dup = NULL;
		}
	if (dup) {
		struct name *nn = realloc(a->names, (a->nnames + 1) * sizeof(*nn));
		if (nn) {
			a->names = nn;
			nn[a->nnames].id = id;
			nn[a->nnames].name = dup;
			a->nnames++;
			dup = NULL;
		}
	}
	pthread_mutex_unlock(&a->mu);
	free(dup);
}

uint64_t qfs_avail_table_id(struct qfs_avail *a, const char *name)
{
	uint64_t id = 0;

	pthread_mutex_lock(&a->mu);
	for (size_t i = 0; !id && i < a->nnames; i++)
		if (!strcmp(a->names[i].name, name))
			id = a->names[i].id;
	pthread_mutex_unlock(&a->mu);
	return id;
}

int qfs_avail_unnamed(struct qfs_avail *a)
{
	int unnamed = 0;

	pthread_mutex_lock(&a->mu);
	for (struct entry *e = a->head; e && !unnamed; e = e->next) {
		if (e->table == QFS_AVAIL_ROOT || e->table == QFS_AVAIL_CANARY)
			continue;
		unnamed = 1;
		for (size_t i = 0; i < a->nnames; i++)
			if (a->names[i].id == e->table)
				unnamed = 0;
	}
	pthread_mutex_unlock(&a->mu);
	return unnamed;
}

void qfs_avail_escape(struct qfs_buf *out, const char *s)
{
	qfs_buf_put_esc(out, s); /* the escapes of the other control files */
}

static struct alarm *alarm_find(struct qfs_avail *a, const char *kind, uint64_t table)
{
	for (size_t i = 0; i < a->nal; i++)
		if (!strcmp(a->al[i].kind, kind) && a->al[i].table == table)
			return &a->al[i];
	return NULL;
}

/* Raise (if not up) an alarm; a->mu held.  Logs one line. */
static void alarm_raise(struct qfs_avail *a, const char *kind, uint64_t table, const char *text)
{
	struct alarm *al = alarm_find(a, kind, table);
	char nb[40];

	if (al) {
		snprintf(al->text, sizeof(al->text), "%s", text); /* keep the raise time */
		return;
	}
	if (a->nal == MAXALARMS)
		return;
	al = &a->al[a->nal++];
	snprintf(al->kind, sizeof(al->kind), "%s", kind);
	al->table = table;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	al->raised_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	snprintf(al->text, sizeof(al->text), "%s", text);
	QFS_LOG(QFS_LOG_WARN, "alarm raised kind=%s table=%s text=\"%s\"", kind,
		QFS_ESC_NAME(name_of(a, table, nb, sizeof(nb))), text);
}

static void alarm_clear(struct qfs_avail *a, const char *kind, uint64_t table, const char *why)
{
	struct alarm *al = alarm_find(a, kind, table);
	char nb[40];

	if (!al)
		return;
	QFS_LOG(QFS_LOG_WARN, "alarm cleared kind=%s table=%s why=\"%s\"", kind,
		QFS_ESC_NAME(name_of(a, table, nb, sizeof(nb))), why);
	*al = a->al[--a->nal];
}

/* Evaluate availability alarms; a->mu held. */
static void tick_locked(struct qfs_avail *a)
{
	uint64_t now = qfs_clock_mono_ms();
	char text[160];

	for (struct entry *e = a->head; e;) {
		uint64_t table = e->table, count = 0, server = 0;
		struct slot s;
		/* the canary has its own alarm (canary rounds are few) */
		for (; e && e->table == table; e = e->next) {
			window_sum(a, e, 0, now, &s);
			count += s.count;
			server += s.server;
		}
		if (table == QFS_AVAIL_CANARY)
			continue;
		double rate = count ? (double)server / (double)count : 0.0;
		if (count >= a->o.min_requests && rate >= a->o.error_rate) {
			snprintf(text, sizeof(text), "server-side error rate %.4f over %llus: %llu of %llu requests failed",
				 rate, (unsigned long long)(a->o.window_ms / 1000), (unsigned long long)server,
				 (unsigned long long)count);
			alarm_raise(a, "availability", table, text);
		} else if (alarm_find(a, "availability", table)) {
			snprintf(text, sizeof(text), "server-side error rate %.4f of %llu requests%s", rate,
				 (unsigned long long)count, count < a->o.min_requests ? " (below alarm_min_requests)" : "");
			alarm_clear(a, "availability", table, text);
		}
	}
}

void qfs_avail_tick(struct qfs_avail *a)
{
	pthread_mutex_lock(&a->mu);
	tick_locked(a);
	pthread_mutex_unlock(&a->mu);
}

void qfs_avail_canary_result(struct qfs_avail *a, int ok, const char *why)
{
	pthread_mutex_lock(&a->mu);
	if (ok) {
		a->canary_ok++;
		alarm_clear(a, "canary", QFS_AVAIL_CANARY, "round succeeded");
	} else {
		a->canary_fail++;
		alarm_raise(a, "canary", QFS_AVAIL_CANARY, why);
	}
	pthread_mutex_unlock(&a->mu);
}

static void fmt_time(uint64_t ns, char *out, size_t len)
{
	time_t sec = (time_t)(ns / 1000000000ull);
	struct tm tm;

	if (!gmtime_r(&sec, &tm) || !strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, len, "@%lld", (long long)sec);
}

void qfs_avail_alarms(struct qfs_avail *a, struct qfs_buf *out)
{
	char ts[40], nb[40];

	pthread_mutex_lock(&a->mu);
	tick_locked(a);
	for (size_t i = 0; i < a->nal; i++) {
		fmt_time(a->al[i].raised_ns, ts, sizeof(ts));
		qfs_buf_printf(out, "alarm %s raised %s table=", a->al[i].kind, ts);
		qfs_avail_escape(out, name_of(a, a->al[i].table, nb, sizeof(nb)));
		qfs_buf_printf(out, " \"%s\"\n", a->al[i].text);
	}
	pthread_mutex_unlock(&a->mu);
}

static const char *errno_name(int e)
{
	const char *n = e > 0 ? strerrorname_np(e) : NULL;
	return n ? n : "other";
}

void qfs_avail_text(struct qfs_avail *a, struct qfs_buf *out)
{
	uint64_t now = qfs_clock_mono_ms();
	char nb[40];

	pthread_mutex_lock(&a->mu);
	qfs_buf_printf(out, "windows w1 %llus w2 %llus w3 %llus alarm_error_rate %g alarm_min_requests %llu "
			    "canary_interval_ms %llu canary_ok %llu canary_failed %llu\n",
		       (unsigned long long)(a->len_ms[0] * a->nslots[0] / 1000),
		       (unsigned long long)(a->len_ms[1] * a->nslots[1] / 1000),
		       (unsigned long long)(a->len_ms[2] * a->nslots[2] / 1000), a->o.error_rate,
		       (unsigned long long)a->o.min_requests, (unsigned long long)a->o.canary_ms,
		       (unsigned long long)a->canary_ok, (unsigned long long)a->canary_fail);
	for (struct entry *e = a->head; e; e = e->next) {
		qfs_buf_printf(out, "table ");
		qfs_avail_escape(out, name_of(a, e->table, nb, sizeof(nb)));
		qfs_buf_printf(out, " op %s count %llu ok %llu errors %llu server_errors %llu", e->op,
			       (unsigned long long)e->count, (unsigned long long)(e->count - e->errors),
			       (unsigned long long)e->errors, (unsigned long long)e->server);
		for (unsigned i = 0; i < NERRNO && e->ecount[i]; i++)
			qfs_buf_printf(out, " err_%s %llu", errno_name(e->eno[i]), (unsigned long long)e->ecount[i]);
		for (unsigned t = 0; t < NTIERS; t++) {
			struct slot s;
			window_sum(a, e, t, now, &s);
			const char *w = tier_name[t];
			qfs_buf_printf(out, " %s_count %u %s_errors %u %s_server_errors %u %s_p50_us %llu %s_p99_us %llu "
					    "%s_p999_us %llu",
				       w, s.count, w, s.errors, w, s.server, w,
				       (unsigned long long)pct_us(s.b, s.count, 50), w,
				       (unsigned long long)pct_us(s.b, s.count, 99), w,
				       (unsigned long long)pct_us(s.b, s.count, 99.9));
		}
		qfs_buf_put_u8(out, '\n');
	}
	pthread_mutex_unlock(&a->mu);
}

/* A Prometheus label value: backslash, double quote and newline escaped. */
static void prom_label(struct qfs_buf *out, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			qfs_buf_printf(out, "\\\\");
		else if (*s == '"')
			qfs_buf_printf(out, "\\\"");
		else if (*s == '\n')
			qfs_buf_printf(out, "\\n");
		else
			qfs_buf_put_u8(out, (uint8_t)*s);
	}
}

static void prom_labels(struct qfs_avail *a, struct qfs_buf *out, const struct entry *e)
{
	char nb[40];

	qfs_buf_printf(out, "table=\"");
	prom_label(out, name_of(a, e->table, nb, sizeof(nb)));
	qfs_buf_printf(out, "\",op=\"");
	prom_label(out, e->op);
	qfs_buf_printf(out, "\"");
}

void qfs_avail_metrics(struct qfs_avail *a, struct qfs_buf *out)
{
	char nb[40];

	pthread_mutex_lock(&a->mu);
	tick_locked(a);
	qfs_buf_printf(out, "# HELP quorumfs_requests_total Filesystem operations answered, as the FUSE client saw them.\n"
			    "# TYPE quorumfs_requests_total counter\n");
	for (struct entry *e = a->head; e; e = e->next) {
		qfs_buf_printf(out, "quorumfs_requests_total{");
		prom_labels(a, out, e);
		qfs_buf_printf(out, "} %llu\n", (unsigned long long)e->count);
	}
	qfs_buf_printf(out, "# HELP quorumfs_errors_total Operations that failed, by errno and by whose fault "
			    "(server=1 counts against availability).\n"
			    "# TYPE quorumfs_errors_total counter\n");
	for (struct entry *e = a->head; e; e = e->next) {
		for (unsigned i = 0; i < NERRNO && e->ecount[i]; i++) {
			qfs_buf_printf(out, "quorumfs_errors_total{");
			prom_labels(a, out, e);
			qfs_buf_printf(out, ",errno=\"%s\",server=\"%d\"} %llu\n", errno_name(e->eno[i]),
				       e->eno[i] > 0 ? qfs_avail_server_errno(e->eno[i]) : 1,
				       (unsigned long long)e->ecount[i]);
		}
	}
	qfs_buf_printf(out, "# HELP quorumfs_request_duration_seconds Latency of operations as the FUSE client saw them.\n"
			    "# TYPE quorumfs_request_duration_seconds histogram\n");
	for (struct entry *e = a->head; e; e = e->next) {
		uint64_t cum = 0;
		for (unsigned i = 0; i < QFS_HIST_BUCKETS - 1; i++) {
			cum += e->b[i];
			/* buckets below 16 us carry no news; keep the text short */
			if (i < 4 || i > 34)
				continue;
			qfs_buf_printf(out, "quorumfs_request_duration_seconds_bucket{");
			prom_labels(a, out, e);
			qfs_buf_printf(out, ",le=\"%.6f\"} %llu\n", (double)(1ull << i) / 1e6, (unsigned long long)cum);
		}
		qfs_buf_printf(out, "quorumfs_request_duration_seconds_bucket{");
		prom_labels(a, out, e);
		qfs_buf_printf(out, ",le=\"+Inf\"} %llu\n", (unsigned long long)e->count);
		qfs_buf_printf(out, "quorumfs_request_duration_seconds_sum{");
		prom_labels(a, out, e);
		qfs_buf_printf(out, "} %.6f\n", (double)e->sum_us / 1e6);
		qfs_buf_printf(out, "quorumfs_request_duration_seconds_count{");
		prom_labels(a, out, e);
		qfs_buf_printf(out, "} %llu\n", (unsigned long long)e->count);
	}
	qfs_buf_printf(out, "# HELP quorumfs_canary_rounds_total Canary rounds (create, write, read, delete), by result.\n"
			    "# TYPE quorumfs_canary_rounds_total counter\n"
			    "quorumfs_canary_rounds_total{result=\"ok\"} %llu\n"
			    "quorumfs_canary_rounds_total{result=\"failed\"} %llu\n",
		       (unsigned long long)a->canary_ok, (unsigned long long)a->canary_fail);
	qfs_buf_printf(out, "# HELP quorumfs_alarms_active Customer-facing alarms up now (.quorumfs/alarms).\n"
			    "# TYPE quorumfs_alarms_active gauge\n");
	size_t navail = 0;
	for (size_t i = 0; i < a->nal; i++)
		navail += !strcmp(a->al[i].kind, "availability");
	qfs_buf_printf(out, "quorumfs_alarms_active{kind=\"availability\"} %zu\n", navail);
	qfs_buf_printf(out, "quorumfs_alarms_active{kind=\"canary\"} %zu\n", a->nal - navail);
	qfs_buf_printf(out, "# HELP quorumfs_table_alarm Whether the availability alarm of a table is up (1) or not (0).\n"
			    "# TYPE quorumfs_table_alarm gauge\n");
	for (struct entry *e = a->head; e; e = e->next) {
		if ((e->next && e->next->table == e->table) || e->table == QFS_AVAIL_CANARY)
			continue; /* one line per table */
		qfs_buf_printf(out, "quorumfs_table_alarm{table=\"");
		prom_label(out, name_of(a, e->table, nb, sizeof(nb)));
		qfs_buf_printf(out, "\"} %d\n", alarm_find(a, "availability", e->table) != NULL);
	}
	pthread_mutex_unlock(&a->mu);
}
