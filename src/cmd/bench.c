/*
 * bench.c - `quorumfs bench MOUNTPOINT [--against DIR]`: small-file,
 * metadata, fsync and sequential workloads in a fresh directory of the
 * mount and, with --against, of a local directory in the same run; prints
 * a markdown table of rates, latency percentiles and mount/against ratios.
 *
 * Workloads run in groups (--only): small (create serial, stat, read,
 * rename, unlink of N files of 4 KiB), parallel (N creates over P
 * processes), meta (mkdir, rmdir of N directories), fsync (4 KiB pwrite +
 * fsync, one writer and W writers) and seq (S MiB written in 1 MiB writes
 * with one fsync at the end, then read back).  Each workload runs on the
 * mount, then on --against, before the next starts, so both see the same
 * load of a shared machine.  The read workloads drop the kernel's page
 * cache first when they can (root); the daemon's own caches stay warm, so
 * reads are "cold-ish".  Data is random (zeros would be holes).
 *
 * Only libc: this measures any directory, and so the mount from outside,
 * exactly as a user's programs meet it.  How the figures are used and what
 * they are compared with: doc/perf.md.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cmd/bench.h"

#define SMALL 4096                /* bytes of a small file and of an fsync'd write */
#define BIG_BLOCK (1u << 20)      /* bytes per write/read of the sequential rows */
#define POOL (4u << 20)           /* random bytes every write takes a slice of */

enum row {
	R_CREATE, R_CREATE_PAR, R_STAT, R_READ, R_RENAME, R_UNLINK,
	R_MKDIR, R_RMDIR, R_FSYNC1, R_FSYNCN, R_SEQW, R_SEQR, R_NROWS
};

enum group {
	G_SMALL = 1, G_PARALLEL = 2, G_META = 4, G_FSYNC1 = 8, G_FSYNCN = 16, G_SEQ = 32,
	G_FSYNC = G_FSYNC1 | G_FSYNCN, G_ALL = 63
};

static const struct {
	const char *name;   /* row key, also the --raw output's */
	const char *unit;
	enum group group;
} rowdef[R_NROWS] = {
	[R_CREATE] = { "create", "files/s", G_SMALL },
	[R_CREATE_PAR] = { "create_parallel", "files/s", G_PARALLEL },
	[R_STAT] = { "stat", "files/s", G_SMALL },
	[R_READ] = { "read", "files/s", G_SMALL },
	[R_RENAME] = { "rename", "ops/s", G_SMALL },
	[R_UNLINK] = { "unlink", "files/s", G_SMALL },
	[R_MKDIR] = { "mkdir", "dirs/s", G_META },
	[R_RMDIR] = { "rmdir", "dirs/s", G_META },
	[R_FSYNC1] = { "fsync_1", "fsyncs/s", G_FSYNC1 },
	[R_FSYNCN] = { "fsync_n", "fsyncs/s", G_FSYNCN },
	[R_SEQW] = { "seq_write", "MiB/s", G_SEQ },
	[R_SEQR] = { "seq_read", "MiB/s", G_SEQ },
};

struct cfg {
	long files;        /* small files and directories per row */
	long procs;        /* processes of create_parallel */
	long fsyncs;       /* pwrite+fsync calls per writer */
	long writers;      /* writers of fsync_n */
	long seq_mib;      /* MiB of the sequential file */
	int groups;        /* enum group bits to run */
	int drop;          /* 1: try to drop the page cache before reads */
	int raw;           /* 1: "target row value unit p50 p99" lines */
};

struct result {
	int done;          /* 1 when the row ran */
	double rate;       /* in rowdef's unit */
	double p50_ms;     /* per-call latency; < 0: not measured */
	double p99_ms;
};

struct target {
	const char *label; /* "mount" or "against" */
	char dir[PATH_MAX];/* the fresh directory the rows run in; "" before */
	struct result res[R_NROWS];
};

static volatile sig_atomic_t stopping; /* SIGINT/SIGTERM seen: rows stop */
static uint8_t *pool;                   /* POOL random bytes */
static double *lat;                     /* latencies (s), shared with children */
static size_t lat_cap;                  /* entries of lat */
static int drop_failed;                 /* the page cache could not be dropped */

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Print "quorumfs bench: OP PATH: message (errno N)" and return -errno. */
static int syserr(const char *op, const char *path)
{
	int e = errno ? errno : EIO;

	fprintf(stderr, "quorumfs bench: %s %s: %s (errno %d)\n", op, path, strerror(e), e);
	return -e;
}

static int interrupted(void)
{
	if (!stopping)
		return 0;
	fprintf(stderr, "quorumfs bench: interrupted\n");
	return -EINTR;
}

static const uint8_t *slice(long i, size_t len)
{
	return pool + ((size_t)i * 4099u) % (POOL - len);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Fill r from n latencies in lat[] over wall seconds of count units. */
static void summarise(struct result *r, size_t n, double count, double wall)
{
	r->done = 1;
	r->rate = wall > 0 ? count / wall : 0;
	r->p50_ms = r->p99_ms = -1;
	if (n == 0)
		return;
	qsort(lat, n, sizeof(*lat), cmp_double);
	r->p50_ms = lat[(n - 1) / 2] * 1000;
	r->p99_ms = lat[(size_t)((double)n * 0.99 + 0.999999) - 1] * 1000; /* nearest rank */
}

static int write_all(int fd, const uint8_t *p, size_t len, off_t off, const char *path)
{
	while (len > 0) {
		ssize_t w = off >= 0 ? pwrite(fd, p, len, off) : write(fd, p, len);

		if (w < 0) {
			if (errno == EINTR && !stopping)
				continue;
			return syserr("write", path);
		}
		p += w;
		len -= (size_t)w;
		if (off >= 0)
			off += w;
	}
	return 0;
}

/* Sync and drop the kernel's page, dentry and inode caches (needs root);
 * remembers a failure for the table's header. */
static void drop_caches(const struct cfg *c)
{
	int fd;

	if (!c->drop)
		return;
	sync();
	fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
	if (fd < 0 || write(fd, "3\n", 2) != 2)
		drop_failed = 1;
	if (fd >= 0)
		close(fd);
}

static void name_of(char *out, size_t len, const char *dir, char kind, long i)
{
	snprintf(out, len, "%s/%c%07ld", dir, kind, i);
}

/* Create files PREFIX first..first+count-1 of SMALL random bytes each
 * (O_EXCL), latency of each into lat[first..]. */
static int create_files(const char *dir, char kind, long first, long count)
{
	char p[PATH_MAX];

	for (long i = first; i < first + count; i++) {
		double t = now();
		int fd, rc;

		if (stopping)
			return interrupted();
		name_of(p, sizeof(p), dir, kind, i);
		fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0644);
		if (fd < 0)
			return syserr("create", p);
		rc = write_all(fd, slice(i, SMALL), SMALL, -1, p);
		if (close(fd) < 0 && !rc)
			rc = syserr("close", p);
		if (rc)
			return rc;
		lat[i] = now() - t;
	}
	return 0;
}

/* Run fn(arg, k) in nproc children; 0 when all exited 0. */
static int in_children(long nproc, int (*fn)(const void *, long), const void *arg)
{
	pid_t pids[256];
	int rc = 0;

	fflush(stdout);
	fflush(stderr);
	for (long k = 0; k < nproc; k++) {
		pids[k] = fork();
		if (pids[k] < 0) {
			rc = syserr("fork", "(worker)");
			nproc = k;
			break;
		}
		if (pids[k] == 0)
			_exit(fn(arg, k) ? 1 : 0);
	}
	for (long k = 0; k < nproc; k++) {
		int st;

		while (waitpid(pids[k], &st, 0) < 0 && errno == EINTR)
			;
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			if (!rc)
				fprintf(stderr, "quorumfs bench: worker process %ld failed (see above)\n", k);
			rc = rc ? rc : -EIO;
		}
	}
	return rc;
}

struct par_arg {
	const char *dir;
	long per;          /* files per process */
	long rest;         /* the first rest processes make one more */
	long fsyncs;       /* fsync rows: calls per writer */
};

static int par_create(const void *a_, long k)
{
	const struct par_arg *a = a_;
	long first = k * a->per + (k < a->rest ? k : a->rest);

	return create_files(a->dir, 'p', first, a->per + (k < a->rest));
}

/* k-th writer: pwrite SMALL bytes at successive offsets of its own file,
 * fsync after each; latencies into lat[k * fsyncs ..]. */
static int fsync_writer(const void *a_, long k)
{
	const struct par_arg *a = a_;
	char p[PATH_MAX];
	int fd, rc = 0;

	snprintf(p, sizeof(p), "%s/fsync%03ld", a->dir, k);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return syserr("create", p);
	for (long i = 0; i < a->fsyncs && !rc; i++) {
		double t = now();

		if (stopping) {
			rc = interrupted();
			break;
		}
		rc = write_all(fd, slice(k * a->fsyncs + i, SMALL), SMALL, (off_t)i * SMALL, p);
		if (!rc && fsync(fd) < 0)
			rc = syserr("fsync", p);
		lat[k * a->fsyncs + i] = now() - t;
	}
	if (close(fd) < 0 && !rc)
		rc = syserr("close", p);
	if (!rc && unlink(p) < 0)
		rc = syserr("unlink", p);
	return rc;
}

/* Each of the count names: op on it, timed. */
static int each_name(const char *dir, char kind, long count, const char *what)
{
	char p[PATH_MAX], q[PATH_MAX], buf[SMALL + 1];

	for (long i = 0; i < count; i++) {
		double t = now();
		struct stat st;
		int fd;
		ssize_t n;

		if (stopping)
			return interrupted();
		name_of(p, sizeof(p), dir, kind, i);
		if (!strcmp(what, "stat")) {
			if (stat(p, &st) < 0)
				return syserr("stat", p);
		} else if (!strcmp(what, "read")) {
			fd = open(p, O_RDONLY);
			if (fd < 0)
				return syserr("open", p);
			n = read(fd, buf, sizeof(buf));
			if (n < 0) {
				int rc = syserr("read", p);
				close(fd);
				return rc;
			}
			close(fd);
			if (n != SMALL || memcmp(buf, slice(i, SMALL), SMALL)) {
				fprintf(stderr, "quorumfs bench: read %s: got %zd bytes, not the %d written\n", p, n,
					SMALL);
				return -EIO;
			}
		} else if (!strcmp(what, "rename")) {
			name_of(q, sizeof(q), dir, 'r', i);
			if (rename(p, q) < 0)
				return syserr("rename", p);
		} else if (!strcmp(what, "unlink")) {
			if (unlink(p) < 0)
				return syserr("unlink", p);
		} else if (!strcmp(what, "mkdir")) {
			if (mkdir(p, 0755) < 0)
				return syserr("mkdir", p);
		} else if (!strcmp(what, "rmdir")) {
			if (rmdir(p) < 0)
				return syserr("rmdir", p);
		}
		lat[i] = now() - t;
	}
	return 0;
}

static int seq_write(const char *dir, long mib, struct result *r)
{
	char p[PATH_MAX];
	double t = now();
	int fd, rc = 0;

	snprintf(p, sizeof(p), "%s/seq", dir);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return syserr("create", p);
	for (long i = 0; i < mib && !rc; i++) {
		if (stopping)
			rc = interrupted();
		else
			rc = write_all(fd, slice(i, BIG_BLOCK), BIG_BLOCK, -1, p);
	}
	if (!rc && fsync(fd) < 0)
		rc = syserr("fsync", p);
	if (close(fd) < 0 && !rc)
		rc = syserr("close", p);
	if (!rc)
		summarise(r, 0, (double)mib, now() - t);
	return rc;
}

static int seq_read(const char *dir, long mib, struct result *r)
{
	char p[PATH_MAX];
	uint8_t *buf = malloc(BIG_BLOCK);
	double t;
	long long total = 0;
	int fd, rc = 0;

	if (!buf)
		return -ENOMEM;
	snprintf(p, sizeof(p), "%s/seq", dir);
	t = now();
	fd = open(p, O_RDONLY);
	if (fd < 0) {
		rc = syserr("open", p);
		goto out_free;
	}
	for (;;) {
		ssize_t n = read(fd, buf, BIG_BLOCK);

		if (n < 0 && errno == EINTR && !stopping)
			continue;
		if (n < 0) {
			rc = stopping ? interrupted() : syserr("read", p);
			break;
		}
		if (n == 0)
			break;
		total += n;
	}
	close(fd);
	if (!rc && total != (long long)mib * BIG_BLOCK) {
		fprintf(stderr, "quorumfs bench: read %s: %lld bytes, not the %ld MiB written\n", p, total, mib);
		rc = -EIO;
	}
	if (!rc)
		summarise(r, 0, (double)mib, now() - t);
	if (!rc && unlink(p) < 0)
		rc = syserr("unlink", p);
out_free:
	free(buf);
	return rc;
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if ((flag == FTW_DP ? rmdir(p) : unlink(p)) < 0 && errno != ENOENT) {
		syserr(flag == FTW_DP ? "rmdir" : "unlink", p);
		return 1;
	}
	return 0;
}

/* Remove the target's directory and everything in it. */
static int cleanup(struct target *t)
{
	if (!t->dir[0])
		return 0;
	if (nftw(t->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0) {
		fprintf(stderr, "quorumfs bench: could not remove %s; remove it by hand\n", t->dir);
		return -EIO;
	}
	t->dir[0] = '\0';
	return 0;
}

/* One row on one target; the small-file rows rely on the create row before
 * them (they run as a group). */
static int run_row(enum row row, struct target *tg, const struct cfg *c)
{
	struct result *r = &tg->res[row];
	const char *d = tg->dir;
	char sub[PATH_MAX];
	struct par_arg a;
	double t;
	int rc = 0;

	switch (row) {
	case R_CREATE:
		t = now();
		rc = create_files(d, 'f', 0, c->files);
		if (!rc)
			summarise(r, (size_t)c->files, (double)c->files, now() - t);
		return rc;
	case R_CREATE_PAR:
		snprintf(sub, sizeof(sub), "%s/par", d);
		if (mkdir(sub, 0755) < 0)
			return syserr("mkdir", sub);
		a = (struct par_arg){ .dir = sub, .per = c->files / c->procs, .rest = c->files % c->procs };
		t = now();
		rc = in_children(c->procs, par_create, &a);
		if (!rc)
			summarise(r, (size_t)c->files, (double)c->files, now() - t);
		for (long i = 0; i < c->files && !rc; i++) { /* untimed */
			snprintf(sub, sizeof(sub), "%s/par/p%07ld", d, i);
			if (unlink(sub) < 0)
				rc = syserr("unlink", sub);
		}
		snprintf(sub, sizeof(sub), "%s/par", d);
		if (!rc && rmdir(sub) < 0)
			rc = syserr("rmdir", sub);
		return rc;
	case R_STAT: case R_READ: case R_RENAME: case R_UNLINK: case R_MKDIR: case R_RMDIR: {
		static const char *const what[] = {
			[R_STAT] = "stat", [R_READ] = "read", [R_RENAME] = "rename",
			[R_UNLINK] = "unlink", [R_MKDIR] = "mkdir", [R_RMDIR] = "rmdir",
		};
		char kind = row == R_UNLINK ? 'r' : row == R_MKDIR || row == R_RMDIR ? 'd' : 'f';

		if (row == R_READ)
			drop_caches(c);
		t = now();
		rc = each_name(d, kind, c->files, what[row]);
		if (!rc)
			summarise(r, (size_t)c->files, (double)c->files, now() - t);
		return rc;
	}
	case R_FSYNC1: case R_FSYNCN: {
		long w = row == R_FSYNC1 ? 1 : c->writers;

		a = (struct par_arg){ .dir = d, .fsyncs = c->fsyncs };
		t = now();
		rc = w == 1 ? fsync_writer(&a, 0) : in_children(w, fsync_writer, &a);
		if (!rc)
			summarise(r, (size_t)(w * c->fsyncs), (double)(w * c->fsyncs), now() - t);
		return rc;
	}
	case R_SEQW:
		return seq_write(d, c->seq_mib, r);
	case R_SEQR:
		drop_caches(c);
		return seq_read(d, c->seq_mib, r);
	default:
		return -EINVAL;
	}
}

static void fmt_num(char *out, size_t len, double v)
{
	if (v < 0)
		snprintf(out, len, "-");
	else if (v >= 100)
		snprintf(out, len, "%.0f", v);
	else if (v >= 10)
		snprintf(out, len, "%.1f", v);
	else
		snprintf(out, len, "%.3f", v);
}

static const char *row_label(enum row row, const struct cfg *c, char *buf, size_t len)
{
	switch (row) {
	case R_CREATE: snprintf(buf, len, "create 4 KiB, serial (%ld)", c->files); break;
	case R_CREATE_PAR: snprintf(buf, len, "create 4 KiB, %ld processes (%ld)", c->procs, c->files); break;
	case R_STAT: snprintf(buf, len, "stat"); break;
	case R_READ: snprintf(buf, len, "read 4 KiB%s", c->drop ? ", caches dropped" : ""); break;
	case R_RENAME: snprintf(buf, len, "rename (same directory)"); break;
	case R_UNLINK: snprintf(buf, len, "unlink"); break;
	case R_MKDIR: snprintf(buf, len, "mkdir (%ld)", c->files); break;
	case R_RMDIR: snprintf(buf, len, "rmdir"); break;
	case R_FSYNC1: snprintf(buf, len, "4 KiB pwrite+fsync, 1 writer (%ld)", c->fsyncs); break;
	case R_FSYNCN: snprintf(buf, len, "4 KiB pwrite+fsync, %ld writers (%ld each)", c->writers, c->fsyncs); break;
	case R_SEQW: snprintf(buf, len, "write %ld MiB + fsync", c->seq_mib); break;
	case R_SEQR: snprintf(buf, len, "read %ld MiB%s", c->seq_mib, c->drop ? ", caches dropped" : ""); break;
	default: buf[0] = '\0';
	}
	return buf;
}

static void print_table(struct target *tg, int ntg, const struct cfg *c)
{
	char label[96], v[8][32];

	if (c->raw) {
		for (int k = 0; k < ntg; k++)
			for (int row = 0; row < R_NROWS; row++) {
				struct result *r = &tg[k].res[row];

				if (r->done)
					printf("%s %s %.3f %s %.3f %.3f\n", tg[k].label, rowdef[row].name, r->rate,
						rowdef[row].unit, r->p50_ms, r->p99_ms);
			}
		return;
	}
	if (ntg == 2)
		printf("| workload | row | unit | mount | p50 ms | p99 ms | against | p50 ms | p99 ms | mount/against |\n"
		       "|---|---|---|--:|--:|--:|--:|--:|--:|--:|\n");
	else
		printf("| workload | row | unit | mount | p50 ms | p99 ms |\n|---|---|---|--:|--:|--:|\n");
	for (int row = 0; row < R_NROWS; row++) {
		struct result *m = &tg[0].res[row], *a = &tg[1].res[row];

		if (!m->done)
			continue;
		fmt_num(v[0], sizeof(v[0]), m->rate);
		fmt_num(v[1], sizeof(v[1]), m->p50_ms);
		fmt_num(v[2], sizeof(v[2]), m->p99_ms);
		printf("| %s | %s | %s | %s | %s | %s |", row_label(row, c, label, sizeof(label)),
			rowdef[row].name, rowdef[row].unit, v[0], v[1], v[2]);
		if (ntg == 2 && a->done) {
			fmt_num(v[3], sizeof(v[3]), a->rate);
			fmt_num(v[4], sizeof(v[4]), a->p50_ms);
			fmt_num(v[5], sizeof(v[5]), a->p99_ms);
			printf(" %s | %s | %s | %.3f |", v[3], v[4], v[5], a->rate > 0 ? m->rate / a->rate : 0);
		} else if (ntg == 2) {
			printf(" - | - | - | - |");
		}
		printf("\n");
	}
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: quorumfs bench MOUNTPOINT [--against DIR] [--quick] [-n FILES] [-p PROCS]\n"
		"                [-f FSYNCS] [-w WRITERS] [-s MIB] [--only GROUPS] [--no-drop-caches] [--raw]\n"
		"Runs workloads in a fresh directory under MOUNTPOINT (at the mount's root\n"
		"that is a new table) and, with --against, under DIR in the same run, and\n"
		"prints a markdown table of rates, p50/p99 latencies and mount/against ratios.\n"
		"  -a, --against DIR   also run every workload in DIR (e.g. a directory of\n"
		"                      the disk under the mount's data directory)\n"
		"  -q, --quick         small sizes: -n 200 -p 2 -f 50 -s 16\n"
		"  -n, --files N       small files (4 KiB) and directories per row (2000)\n"
		"  -p, --procs P       processes of the parallel create (4)\n"
		"  -f, --fsyncs F      4 KiB pwrite+fsync calls per writer (500)\n"
		"  -w, --writers W     writers of the concurrent fsync row (8)\n"
		"  -s, --size MIB      size of the sequential file in MiB (256)\n"
		"  -o, --only GROUPS   comma-separated of small,parallel,meta,fsync,seq (all);\n"
		"                      fsync1 and fsyncn are the two rows of fsync\n"
		"      --no-drop-caches  do not drop the page cache before the read rows\n"
		"                      (dropping needs root; it is system-wide)\n"
		"      --raw           one line per row and target: TARGET ROW RATE UNIT P50_MS P99_MS\n"
		"See quorumfs(8) and doc/perf.md.\n");
}

static int parse_long(const char *s, long min, long max, long *out)
{
	char *e;
	long v;

	errno = 0;
	v = strtol(s, &e, 10);
	if (errno || e == s || *e || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static int parse_groups(const char *s, int *out)
{
	static const struct { const char *name; int bit; } g[] = {
		{ "small", G_SMALL }, { "parallel", G_PARALLEL }, { "meta", G_META },
		{ "fsync", G_FSYNC }, { "fsync1", G_FSYNC1 }, { "fsyncn", G_FSYNCN },
		{ "seq", G_SEQ }, { "all", G_ALL },
	};
	char buf[256], *save = NULL;
	int bits = 0;

	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		size_t k;

		for (k = 0; k < sizeof(g) / sizeof(g[0]) && strcmp(g[k].name, tok); k++)
			;
		if (k == sizeof(g) / sizeof(g[0]))
			return -1;
		bits |= g[k].bit;
	}
	if (!bits)
		return -1;
	*out = bits;
	return 0;
}

static int fill_pool(void)
{
	pool = malloc(POOL);
	if (!pool)
		return -ENOMEM;
	for (size_t got = 0; got < POOL;) {
		ssize_t n = getrandom(pool + got, POOL - got, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return syserr("getrandom", "");
		got += (size_t)n;
	}
	return 0;
}

static int make_dir(struct target *t, const char *parent)
{
	struct stat st;

	if (stat(parent, &st) < 0)
		return syserr("stat", parent);
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "quorumfs bench: %s is not a directory\n", parent);
		return -ENOTDIR;
	}
	if ((size_t)snprintf(t->dir, sizeof(t->dir), "%s/qfs-bench.XXXXXX", parent) >= sizeof(t->dir) - 16) {
		t->dir[0] = '\0';
		fprintf(stderr, "quorumfs bench: %s: path too long\n", parent);
		return -ENAMETOOLONG;
	}
	if (!mkdtemp(t->dir)) {
		int rc = syserr("mkdir", t->dir);

		t->dir[0] = '\0';
		return rc;
	}
	return 0;
}

int qfs_cmd_bench(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "against", required_argument, NULL, 'a' }, { "quick", no_argument, NULL, 'q' },
		{ "files", required_argument, NULL, 'n' },   { "procs", required_argument, NULL, 'p' },
		{ "fsyncs", required_argument, NULL, 'f' },  { "writers", required_argument, NULL, 'w' },
		{ "size", required_argument, NULL, 's' },    { "only", required_argument, NULL, 'o' },
		{ "no-drop-caches", no_argument, NULL, 'D' }, { "raw", no_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },          { NULL, 0, NULL, 0 },
	};
	struct cfg c = { .files = -1, .procs = -1, .fsyncs = -1, .writers = -1, .seq_mib = -1,
			 .groups = G_ALL, .drop = 1 };
	struct target tg[2] = { { .label = "mount" }, { .label = "against" } };
	struct sigaction sa;
	const char *against = NULL;
	int opt, quick = 0, ntg, rc = 0;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "a:qn:p:f:w:s:o:h", lopts, NULL)) != -1) {
		int bad = 0;

		switch (opt) {
		case 'a': against = optarg; break;
		case 'q': quick = 1; break;
		case 'n': bad = parse_long(optarg, 1, 10000000, &c.files); break;
		case 'p': bad = parse_long(optarg, 1, 256, &c.procs); break;
		case 'f': bad = parse_long(optarg, 1, 10000000, &c.fsyncs); break;
		case 'w': bad = parse_long(optarg, 1, 256, &c.writers); break;
		case 's': bad = parse_long(optarg, 1, 1 << 20, &c.seq_mib); break;
		case 'o': bad = parse_groups(optarg, &c.groups); break;
		case 'D': c.drop = 0; break;
		case 'r': c.raw = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
		if (bad) {
			fprintf(stderr, "quorumfs bench: bad value '%s' for -%c\n", optarg, opt);
			return 2;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	if (c.files < 0)
		c.files = quick ? 200 : 2000;
	if (c.procs < 0)
		c.procs = quick ? 2 : 4;
	if (c.fsyncs < 0)
		c.fsyncs = quick ? 50 : 500;
	if (c.writers < 0)
		c.writers = 8;
	if (c.seq_mib < 0)
		c.seq_mib = quick ? 16 : 256;
	if (c.procs > c.files)
		c.procs = c.files;
	ntg = against ? 2 : 1;

	lat_cap = (size_t)(c.files > c.fsyncs * c.writers ? c.files : c.fsyncs * c.writers);
	lat = mmap(NULL, lat_cap * sizeof(*lat), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (lat == MAP_FAILED) {
		syserr("mmap", "(latencies)");
		return 1;
	}
	rc = fill_pool();
	if (rc)
		goto out_unmap;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	rc = make_dir(&tg[0], argv[optind]);
	if (!rc && against)
		rc = make_dir(&tg[1], against);
	if (rc)
		goto out_clean;
	fprintf(stderr, "quorumfs bench: running in %s%s%s\n", tg[0].dir, against ? " and " : "",
		against ? tg[1].dir : "");
	for (int row = 0; row < R_NROWS && !rc; row++) {
		if (!(rowdef[row].group & c.groups))
			continue;
		for (int k = 0; k < ntg && !rc; k++)
			rc = run_row(row, &tg[k], &c);
	}
	if (!rc) {
		if (!c.raw) {
			printf("quorumfs bench %s: mount %s%s%s; page cache %s\n\n",
				PACKAGE_VERSION, argv[optind], against ? ", against " : "", against ? against : "",
				!c.drop ? "not dropped (--no-drop-caches)"
				: drop_failed ? "NOT dropped (needs root): reads may be cached"
				: "dropped before the read rows");
		}
		print_table(tg, ntg, &c);
		fflush(stdout);
	}
out_clean:
	for (int k = 0; k < 2; k++)
		if (cleanup(&tg[k]) && !rc)
			rc = -EIO;
out_unmap:
	free(pool);
	munmap(lat, lat_cap * sizeof(*lat));
	return rc ? 1 : 0;
}
