/*
 * main.c - the quorumfs program: `mount`, `status`, `restore`, `--help`,
 * `--version`.
 *
 * `quorumfs mount DATA_DIR MOUNTPOINT` runs the embedded default: the
 * storage node(s), the router and the FUSE frontend in one process.  Without
 * -f it forks before any thread exists, and the parent returns only once the
 * child reports the filesystem mounted (or why it could not), so the command
 * ends with a usable mount.  The archiver (src/archive) runs in the same
 * process, by default into DATA_DIR/archive; `quorumfs restore` rebuilds a
 * table from an archive (doc/archive.md).  See doc/quorumfs.8.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive/archive.h"
#include "common/log.h"
#include "fs/fs.h"
#include "node/cell.h"
#include "router/router.h"
#include "scrub/scrub.h"

#define DATA_FORMAT "quorumfs-data 2\n"
#define DATA_FORMAT_V1 "quorumfs-data 1\n" /* one replica (node.c), before 3 replicas */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: quorumfs mount [-f] [-d] [-o OPTIONS] DATA_DIR MOUNTPOINT\n"
		"       quorumfs status MOUNTPOINT\n"
		"       quorumfs restore [-o ARCHIVE_OPTIONS] [--data DATA_DIR] --table NAME\n"
		"                [--path PATH] [--time T] --to DIR\n"
		"       quorumfs scrub [-o OPTIONS] [--repair] DATA_DIR\n"
		"       quorumfs --help | --version\n"
		"\n"
		"mount   mount the table store kept in DATA_DIR (created if missing) on\n"
		"        MOUNTPOINT. Tables are the top-level directories. Returns once\n"
		"        the filesystem is mounted; unmount with `fusermount3 -u MOUNTPOINT`.\n"
		"  -f          stay in the foreground, log to stderr\n"
		"  -d          debug logging (and libfuse request tracing with -f)\n"
		"  -s          serve requests on a single thread\n"
		"  -o log=FILE log file when in the background (default DATA_DIR/quorumfs.log)\n"
		"  -o loglevel=err|warn|info|debug\n"
		"  -o seal_size=BYTES    seal WAL segments at this size (default 64M)\n"
		"  -o seal_age=SECONDS   seal WAL segments holding older records (default 60;\n"
		"                        also 500ms, 2s, 1m)\n"
		"  -o reads=strong|eventual  strong (default): reads at the leader under its\n"
		"                        lease; eventual: any running replica when the leader cannot\n"
		"  -o quorum_timeout=SECONDS  how long a call waits for a leader and a quorum\n"
		"                        before failing with ETIMEDOUT (default 10)\n"
		"  -o cache_timeout=SECONDS  how long the kernel caches names, attributes and\n"
		"                        absent names (default 3600; 0: no caching). Safe\n"
		"                        because this mount is the only writer of DATA_DIR\n"
		"  -o replicas=3|1       replicas per table, fixed when DATA_DIR is created\n"
		"                        (default 3, in DATA_DIR/nodes/n1..n3, AZ a, b, c)\n"
		"  -o scrub_interval=DURATION  start a scrub pass this often (default 6h;\n"
		"                        also 30m, 1d, 90s; off: only when asked)\n"
		"  -o scrub_rate=MB      replica bytes the scrub reads per second, in MiB\n"
		"                        (default 8; also 512K, 1G; 0: unpaced)\n"
		"  -o scrub_repair=on|off  rebuild a replica the scrub finds differing from\n"
		"                        the majority or corrupt (default on)\n"
		"  -o scrub=off          no background scrub\n"
		"  -o alarm_error_rate=R  raise the availability alarm of a table when this\n"
		"                        fraction of its requests over the last minute failed\n"
		"                        server-side (default 0.01; doc/availability.md)\n"
		"  -o alarm_min_requests=N  fewer requests in the minute never raise (default 20)\n"
		"  -o canary_interval=DURATION  canary round (create, write, read, delete of\n"
		"                        hidden items) this often (default 30s; off)\n"
		"  -o metrics_listen=HOST:PORT  serve /metrics (Prometheus text) over HTTP\n"
		"archive options (mount and restore):\n"
		"  -o archive=URL        file:///DIR or s3://BUCKET/PREFIX, or off\n"
		"                        (default file://DATA_DIR/archive)\n"
		"  -o s3_endpoint=URL,s3_region=REGION,s3_path_style=0|1,s3_credentials=FILE,s3_ca=FILE\n"
		"  -o s3_retries=N,s3_timeout=SECONDS\n"
		"  -o archive_interval=SECONDS, snapshot_segments=N, snapshot_bytes=BYTES\n"
		"  -o archive_retention=DURATION  keep what restores to any time this far back\n"
		"                        (default 7d; also 36h, 90m; off: keep everything)\n"
		"status  print MOUNTPOINT/.quorumfs/status\n"
		"scrub   verify DATA_DIR offline (not while mounted): every group's replicas\n"
		"        compared at one LSN, every RocksDB block checksum read; one line per\n"
		"        finding, a summary; exit 0 clean, 1 findings, 2 could not run.\n"
		"        --repair rebuilds a replica that differs from the majority or is corrupt\n"
		"restore rebuild table NAME (or PATH in it) as of T (RFC 3339 UTC such as\n"
		"        2026-11-25T12:34:56.123Z, @EPOCH_SECONDS, or latest) from the archive\n"
		"        alone, into DIR (new or empty; may be MOUNTPOINT/newtable)\n"
		"\n"
		"See quorumfs(8).\n");
}

/* Archive and sealing settings shared by mount and restore. */
struct arch_cfg {
	const char *url;         /* NULL: file://DATA_DIR/archive; "off": none */
	struct qfs_objstore_cfg os;
	uint64_t seal_bytes;     /* 0: WAL default */
	uint64_t seal_age_ms;    /* 0: node default */
	uint64_t interval_ms;
	uint64_t snap_segments;
	uint64_t snap_bytes;
	uint64_t retention_ns;   /* 0: default; UINT64_MAX: keep everything */
};

/* "123", "64K", "64M", "1G" (powers of 1024). */
static int parse_size(const char *s, uint64_t *out)
{
	char *e;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &e, 10);
	if (errno || e == s || *s == '-')
		return -1;
	switch (*e) {
	case 'k': case 'K': v <<= 10; e++; break;
	case 'm': case 'M': v <<= 20; e++; break;
	case 'g': case 'G': v <<= 30; e++; break;
	default: break;
	}
	if (*e == 'i' && e[1] == 'B')
		e += 2;
	else if (*e == 'B')
		e++;
	if (*e)
		return -1;
	*out = v;
	return 0;
}

/* "2" (seconds), "0.5", "500ms", "2s", "1m". */
static int parse_ms(const char *s, uint64_t *out)
{
	char *e;
	double v;

	errno = 0;
	v = strtod(s, &e);
	if (errno || e == s || v <= 0)
		return -1;
	if (!strcmp(e, "ms"))
		;
	else if (!*e || !strcmp(e, "s"))
		v *= 1000;
	else if (!strcmp(e, "m"))
		v *= 60000;
	else if (!strcmp(e, "h"))
		v *= 3600000;
	else if (!strcmp(e, "d"))
		v *= 86400000;
	else
		return -1;
	if (v < 1 || v > 1e12)
		return -1;
	*out = (uint64_t)v;
	return 0;
}

/* Handle one -o token if it is an archive/seal option: 1 handled, 0 not
 * ours, -1 bad value (message printed).  Strings point into tok (kept). */
static int arch_opt(struct arch_cfg *c, char *tok)
{
	char *v = strchr(tok, '=');
	uint64_t n;
	int bad = 0;

	if (!v)
		return 0;
	*v++ = '\0';
	if (!strcmp(tok, "archive"))
		c->url = v;
	else if (!strcmp(tok, "s3_endpoint"))
		c->os.endpoint = v;
	else if (!strcmp(tok, "s3_region"))
		c->os.region = v;
	else if (!strcmp(tok, "s3_credentials"))
		c->os.credentials = v;
	else if (!strcmp(tok, "s3_ca"))
		c->os.ca_file = v;
	else if (!strcmp(tok, "s3_retries"))
		bad = parse_size(v, &n) || n > 100 || ((c->os.max_retries = n ? (int)n : -1), 0);
	else if (!strcmp(tok, "s3_timeout"))
		bad = parse_ms(v, &n) || n > 3600000 || ((c->os.timeout_ms = (uint32_t)n), 0);
	else if (!strcmp(tok, "s3_path_style"))
		bad = parse_size(v, &n) || n > 1 || ((c->os.path_style = (int)n), 0);
	else if (!strcmp(tok, "seal_size"))
		bad = parse_size(v, &c->seal_bytes) || c->seal_bytes < 4096;
	else if (!strcmp(tok, "seal_age"))
		bad = parse_ms(v, &c->seal_age_ms);
	else if (!strcmp(tok, "archive_interval"))
		bad = parse_ms(v, &c->interval_ms) || c->interval_ms > 3600000;
	else if (!strcmp(tok, "snapshot_segments"))
		bad = parse_size(v, &c->snap_segments) || c->snap_segments == 0 || c->snap_segments > 1000000;
	else if (!strcmp(tok, "snapshot_bytes"))
		bad = parse_size(v, &c->snap_bytes) || c->snap_bytes == 0;
	else if (!strcmp(tok, "archive_retention")) {
		if (!strcmp(v, "off") || !strcmp(v, "forever"))
			c->retention_ns = UINT64_MAX;
		else
			bad = parse_ms(v, &n) || n < 1000 || ((c->retention_ns = n * 1000000ull), 0);
	}
	else {
		v[-1] = '=';
		return 0;
	}
	if (bad) {
		fprintf(stderr, "quorumfs: bad value '%s' for option %s\n", v, tok);
		return -1;
	}
	return 1;
}

/* Scrub settings of mount (and the offline command). */
struct scrub_cfg {
	int off;
	struct qfs_scrub_opts so;
};

/* Handle one -o token if it is a scrub option: 1 handled, 0 not ours, -1
 * bad value (message printed). */
static int scrub_opt(struct scrub_cfg *c, const char *tok)
{
	uint64_t n;
	const char *v;

	if (!strcmp(tok, "scrub=off")) {
		c->off = 1;
		return 1;
	}
	if (!strcmp(tok, "scrub=on")) {
		c->off = 0;
		return 1;
	}
	if (!strncmp(tok, "scrub_interval=", 15)) {
		v = tok + 15;
		if (!strcmp(v, "off")) {
			c->so.interval_ms = UINT64_MAX;
			return 1;
		}
		if (parse_ms(v, &n) || n < 1000) {
			fprintf(stderr, "quorumfs: bad value '%s' for option scrub_interval (want e.g. 6h, 30m, off)\n", v);
			return -1;
		}
		c->so.interval_ms = n;
		return 1;
	}
	if (!strncmp(tok, "scrub_rate=", 11)) {
		v = tok + 11;
		if (parse_size(v, &n)) {
			fprintf(stderr, "quorumfs: bad value '%s' for option scrub_rate (MiB per second)\n", v);
			return -1;
		}
		if (n == 0)
			c->so.rate_bytes = UINT64_MAX;
		else
			c->so.rate_bytes = strspn(v, "0123456789") == strlen(v) ? n << 20 : n;
		return 1;
	}
	if (!strcmp(tok, "scrub_repair=on") || !strcmp(tok, "scrub_repair=off")) {
		c->so.repair = tok[14] == 'n';
		return 1;
	}
	return 0;
}

/* The archive as the scrubber reaches it (scrub does not include src/archive). */
static int scrub_reference(void *arg, qfs_group_t group, qfs_lsn_t lsn, struct qfs_store *st, char *err,
			   size_t err_len)
{
	return qfs_archive_reference(arg, NULL, group, lsn, st, err, err_len);
}

static int scrub_archive_verify(void *arg, qfs_group_t group, uint64_t *objects, char *err, size_t err_len)
{
	return qfs_archive_verify_group(arg, NULL, group, objects, err, err_len);
}

static void scrub_wire_archive(struct qfs_scrub_opts *so, struct qfs_objstore_cfg *cfg)
{
	so->reference = scrub_reference;
	so->archive_verify = scrub_archive_verify;
	so->archive_arg = cfg;
}

/* The scrubber and the archiver behind .quorumfs/scrub and alarms. */
struct scrub_wire {
	struct qfs_scrub *s;     /* NULL: scrub off */
	struct qfs_archive *a;   /* NULL: archive off */
};

static void scrub_text(void *arg, struct qfs_buf *out)
{
	struct scrub_wire *w = arg;

	if (w->s)
		qfs_scrub_status(w->s, out);
	else
		qfs_buf_printf(out, "state off\n");
}

static void alarms_text(void *arg, struct qfs_buf *out)
{
	struct scrub_wire *w = arg;

	if (w->s)
		qfs_scrub_alarms(w->s, out);
	if (w->a)
		qfs_archive_alarms(w->a, out);
}

static int scrub_ctl(void *arg, const char *cmd)
{
	struct scrub_wire *w = arg;

	if (!w->s || strcmp(cmd, "start"))
		return -EINVAL;
	return qfs_scrub_kick(w->s);
}

/* -o strings that arch_cfg points into, kept reachable until exit. */
static char *kept_opts[64];
static size_t nkept;

static char *keep_opt(const char *s)
{
	char *o = strdup(s);

	if (o && nkept < sizeof(kept_opts) / sizeof(kept_opts[0]))
		kept_opts[nkept++] = o;
	return o;
}

/* Fill the object store URL: the default archive under data, unless set. */
static const char *arch_url(struct arch_cfg *c, const char *data, char *buf, size_t len)
{
	if (c->url)
		return c->url;
	if (!data)
		return NULL;
	snprintf(buf, len, "file://%s/archive", data);
	return buf;
}

static int mkdir_p(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(tmp))
		return -ENAMETOOLONG;
	memcpy(tmp, path, n + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) != 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, mode) != 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Check or write DATA_DIR/FORMAT.  0, QFS_EFORMAT, -errno. */
static int check_format(const char *data)
{
	char path[PATH_MAX], buf[64];
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/FORMAT", data);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT)
			return -errno;
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0)
			return -errno;
		n = write(fd, DATA_FORMAT, strlen(DATA_FORMAT));
		int rc = (n == (ssize_t)strlen(DATA_FORMAT) && fsync(fd) == 0) ? 0 : -EIO;
		close(fd);
		return rc;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return -EIO;
	buf[n] = '\0';
	if (strcmp(buf, DATA_FORMAT_V1) == 0) {
		QFS_LOG(QFS_LOG_ERR,
			"data directory %s holds format 1 (one replica per table) of an earlier quorumfs, "
			"which this version cannot open: mount a new data directory and bring each table "
			"back with `quorumfs restore --data %s --table NAME --time latest --to MOUNTPOINT/NAME`",
			data, data);
		return QFS_EFORMAT;
	}
	if (strcmp(buf, DATA_FORMAT) != 0) {
		QFS_LOG(QFS_LOG_ERR, "data directory has an unknown format file=%s content=\"%.*s\"", path,
			(int)strcspn(buf, "\n"), buf);
		return QFS_EFORMAT;
	}
	return 0;
}

/* DATA/REPLICAS holds the replica count chosen when DATA was created
 * ("3\n"); *n is the -o replicas value (0: not given) and gets the count
 * to use.  0, or an error with a one-line reason in msg. */
static int check_replicas(const char *data, uint32_t *n, char *msg, size_t len)
{
	char path[PATH_MAX], buf[16];
	unsigned have;
	ssize_t r;
	int fd;

	snprintf(path, sizeof(path), "%s/REPLICAS", data);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno != ENOENT) {
		snprintf(msg, len, "cannot read %s: %s", path, strerror(errno));
		return -EIO;
	}
	if (fd < 0) {
		unsigned want = *n ? *n : 3;
		int wrc;

		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0) {
			snprintf(msg, len, "cannot create %s: %s", path, strerror(errno));
			return -EIO;
		}
		snprintf(buf, sizeof(buf), "%u\n", want);
		wrc = write(fd, buf, strlen(buf)) == (ssize_t)strlen(buf) && fsync(fd) == 0 ? 0 : -EIO;
		close(fd);
		if (wrc) {
			snprintf(msg, len, "cannot write %s", path);
			return wrc;
		}
		*n = want;
		return 0;
	}
	r = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[r > 0 ? r : 0] = '\0';
	if (sscanf(buf, "%u", &have) != 1 || (have != 1 && have != 3)) {
		snprintf(msg, len, "%s is damaged (want \"1\" or \"3\")", path);
		return QFS_EFORMAT;
	}
	if (*n && *n != have) {
		snprintf(msg, len, "data directory %s was created with replicas=%u; it cannot be mounted with replicas=%u",
			 data, have, *n);
		return -EINVAL;
	}
	*n = have;
	return 0;
}

struct ready_ctx {
	int fd;            /* pipe to the waiting parent, -1 in the foreground */
	const char *log;   /* log file for the background */
};

/* The cell's node lines and the node stop/start test hook, handed to fs/. */
static void nodes_text(void *arg, struct qfs_buf *out)
{
	qfs_cell_nodes(arg, out);
}

static int node_ctl(void *arg, const char *verb, uint32_t id)
{
	return strcmp(verb, "stop") == 0 ? qfs_cell_node_stop(arg, id) : qfs_cell_node_start(arg, id);
}

/* The archiver's control-tree text, handed to fs/ as a callback. */
static void archive_text(void *arg, struct qfs_buf *out, int summary)
{
	if (summary)
		qfs_archive_summary(arg, out);
	else
		qfs_archive_status(arg, out);
}

static int on_ready(void *arg)
{
	struct ready_ctx *c = arg;

	if (c->fd < 0)
		return 0;
	int nul = open("/dev/null", O_RDWR);
	if (nul >= 0) {
		dup2(nul, STDIN_FILENO);
		dup2(nul, STDOUT_FILENO);
		close(nul);
	}
	char ok = 0;
	if (write(c->fd, &ok, 1) != 1) {
		/* parent gone: nothing to tell */
	}
	close(c->fd);
	c->fd = -1;
	return 0;
}

/* In the background child: report a setup failure to the parent. */
static void report_failure(struct ready_ctx *c, const char *msg)
{
	if (c->fd < 0)
		return;
	char code = 1;
	if (write(c->fd, &code, 1) == 1 && write(c->fd, msg, strlen(msg)) < 0) {
		/* nothing more to do */
	}
	close(c->fd);
	c->fd = -1;
}

static int cmd_mount(int argc, char **argv)
{
	int foreground = 0, debug = 0, single = 0, opt;
	const char *logfile = NULL;
	char logpath[PATH_MAX], data[PATH_MAX], mnt[PATH_MAX], nodedir[PATH_MAX], lockpath[PATH_MAX];
	char msg[512], urlbuf[PATH_MAX + 16];
	struct ready_ctx ready = { -1, NULL };
	struct arch_cfg ac;
	struct qfs_cell_opts co = { .nodes = 0 };
	struct scrub_cfg sc = { .so = { .repair = 1 } };
	struct scrub_wire sw = { NULL, NULL };
	struct qfs_avail_opts avo;
	uint64_t v64, cache_ms = 0;
	int arc, cache_off = 0;

	memset(&ac, 0, sizeof(ac));
	qfs_avail_opts_default(&avo);

	optind = 1;
	while ((opt = getopt(argc, argv, "fdso:h")) != -1) {
		switch (opt) {
		case 'f':
			foreground = 1;
			break;
		case 'd':
			debug = 1;
			break;
		case 's':
			single = 1;
			break;
		case 'o': {
			char *o = keep_opt(optarg), *save = NULL; /* arch_opt points into it */
			for (char *tok = strtok_r(o, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
				if ((arc = arch_opt(&ac, tok)) < 0)
					return 2;
				if (arc > 0)
					continue;
				if ((arc = scrub_opt(&sc, tok)) < 0)
					return 2;
				if (arc > 0)
					continue;
				if ((arc = qfs_avail_opt(&avo, tok)) < 0)
					return 2;
				if (arc > 0)
					continue;
				if (strncmp(tok, "log=", 4) == 0) {
					logfile = strdup(tok + 4);
				} else if (strcmp(tok, "reads=strong") == 0) {
					co.reads = QFS_CELL_READ_STRONG;
				} else if (strcmp(tok, "reads=eventual") == 0) {
					co.reads = QFS_CELL_READ_EVENTUAL;
				} else if (strncmp(tok, "quorum_timeout=", 15) == 0) {
					if (parse_ms(tok + 15, &v64) || v64 > 3600000) {
						fprintf(stderr, "quorumfs: bad value '%s' for option quorum_timeout\n", tok + 15);
						return 2;
					}
					co.timeout_ms = (uint32_t)v64;
				} else if (strncmp(tok, "cache_timeout=", 14) == 0) {
					if (strcmp(tok + 14, "0") == 0)
						v64 = 0;
					else if (parse_ms(tok + 14, &v64) || v64 > 366ull * 86400 * 1000) {
						fprintf(stderr, "quorumfs: bad value '%s' for option cache_timeout\n", tok + 14);
						return 2;
					}
					cache_ms = v64;
					cache_off = v64 == 0;
				} else if (strcmp(tok, "replicas=3") == 0 || strcmp(tok, "replicas=1") == 0) {
					co.nodes = (uint32_t)(tok[9] - '0');
				} else if (strncmp(tok, "loglevel=", 9) == 0) {
					if (qfs_log_set_level(tok + 9) != 0) {
						fprintf(stderr, "quorumfs: unknown log level '%s'\n", tok + 9);
						return 2;
					}
				} else {
					fprintf(stderr, "quorumfs: unknown mount option '%s'\n", tok);
					return 2;
				}
			}
			break;
		}
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 2) {
		usage(stderr);
		return 2;
	}
	if (debug)
		qfs_log_level = QFS_LOG_DEBUG;
	int rc = mkdir_p(argv[optind], 0700);
	if (rc) {
		fprintf(stderr, "quorumfs: cannot create data directory %s: %s\n", argv[optind], strerror(-rc));
		return 1;
	}
	if (!realpath(argv[optind], data) || !realpath(argv[optind + 1], mnt)) {
		fprintf(stderr, "quorumfs: %s: %s\n", argv[optind + 1], strerror(errno));
		return 1;
	}
	if (strlen(data) > PATH_MAX - 64) {
		fprintf(stderr, "quorumfs: data directory path is too long\n");
		return 1;
	}
	struct stat st;
	if (stat(mnt, &st) != 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "quorumfs: mountpoint %s is not a directory\n", mnt);
		return 1;
	}
	if (!logfile) {
		snprintf(logpath, sizeof(logpath), "%s/quorumfs.log", data);
		logfile = logpath;
	}

	if (!foreground) {
		/* fork before any thread exists; the parent waits for "mounted" */
		int pfd[2];
		if (pipe(pfd) != 0) {
			perror("quorumfs: pipe");
			return 1;
		}
		pid_t pid = fork();
		if (pid < 0) {
			perror("quorumfs: fork");
			return 1;
		}
		if (pid > 0) {
			char code = 1;
			close(pfd[1]);
			ssize_t n = read(pfd[0], &code, 1);
			if (n == 1 && code == 0)
				return 0;
			n = read(pfd[0], msg, sizeof(msg) - 1);
			msg[n > 0 ? n : 0] = '\0';
			fprintf(stderr, "quorumfs: mount failed: %s (see %s)\n", n > 0 ? msg : "daemon exited",
				logfile);
			return 1;
		}
		close(pfd[0]);
		setsid();
		ready.fd = pfd[1];
		int lfd = open(logfile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (lfd < 0) {
			snprintf(msg, sizeof(msg), "cannot open log file %s: %s", logfile, strerror(errno));
			report_failure(&ready, msg);
			return 1;
		}
		dup2(lfd, STDERR_FILENO);
		close(lfd);
		if (chdir("/") != 0) {
			/* not fatal */
		}
	}

	snprintf(lockpath, sizeof(lockpath), "%s/lock", data);
	int lockfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lockfd < 0 || flock(lockfd, LOCK_EX | LOCK_NB) != 0) {
		snprintf(msg, sizeof(msg), "data directory %s is in use by another quorumfs (lock %s)", data,
			 lockpath);
		QFS_LOG(QFS_LOG_ERR, "%s", msg);
		fprintf(stderr, "quorumfs: %s\n", msg);
		report_failure(&ready, msg);
		return 1;
	}
	rc = check_format(data);
	if (rc) {
		snprintf(msg, sizeof(msg), "data directory %s: %s", data, qfs_strerror(rc));
		fprintf(stderr, "quorumfs: %s\n", msg);
		report_failure(&ready, msg);
		return 1;
	}
	rc = check_replicas(data, &co.nodes, msg, sizeof(msg));
	if (rc) {
		QFS_LOG(QFS_LOG_ERR, "%s", msg);
		fprintf(stderr, "quorumfs: %s\n", msg);
		report_failure(&ready, msg);
		return 1;
	}
	snprintf(nodedir, sizeof(nodedir), "%s/nodes", data);
	co.dir = nodedir;
	co.wal_segment_bytes = ac.seal_bytes;
	co.wal_seal_age_ms = ac.seal_age_ms;
	struct qfs_cell *cell = NULL;
	rc = qfs_cell_open(&co, &cell);
	if (rc) {
		snprintf(msg, sizeof(msg), "cannot open the storage nodes in %s: %s", nodedir, qfs_strerror(rc));
		QFS_LOG(QFS_LOG_ERR, "%s", msg);
		fprintf(stderr, "quorumfs: %s\n", msg);
		report_failure(&ready, msg);
		return 1;
	}
	struct qfs_router *router = NULL;
	rc = qfs_router_new(cell, getuid(), getgid(), &router);
	if (rc) {
		snprintf(msg, sizeof(msg), "cannot start the router: %s", qfs_strerror(rc));
		QFS_LOG(QFS_LOG_ERR, "%s", msg);
		fprintf(stderr, "quorumfs: %s\n", msg);
		report_failure(&ready, msg);
		qfs_cell_close(cell);
		return 1;
	}
	struct qfs_archive *archive = NULL;
	const char *url = arch_url(&ac, data, urlbuf, sizeof(urlbuf));
	if (strcmp(url, "off") != 0) {
		struct qfs_archive_opts ao = {
			.store = ac.os,
			.interval_ms = (uint32_t)ac.interval_ms,
			.snap_segments = (uint32_t)ac.snap_segments,
			.snap_bytes = ac.snap_bytes,
			.retention_ns = ac.retention_ns,
		};
		ao.store.url = url;
		if (!ac.url) {
			char adir[PATH_MAX];
			snprintf(adir, sizeof(adir), "%s/archive", data);
			if (mkdir(adir, 0700) != 0 && errno != EEXIST)
				QFS_LOG(QFS_LOG_WARN, "cannot create the default archive dir=%s err=%s", adir,
					strerror(errno));
		}
		rc = qfs_archive_start(cell, &ao, &archive);
		if (rc) {
			snprintf(msg, sizeof(msg), "cannot start the archiver for %s: %s", url, qfs_strerror(rc));
			QFS_LOG(QFS_LOG_ERR, "%s", msg);
			fprintf(stderr, "quorumfs: %s\n", msg);
			report_failure(&ready, msg);
			qfs_router_free(router);
			qfs_cell_close(cell);
			return 1;
		}
	}
	sw.a = archive;
	struct qfs_objstore_cfg scrub_os = ac.os;
	if (archive) {
		scrub_os.url = url;
		scrub_wire_archive(&sc.so, &scrub_os);
	}
	if (!sc.off) {
		rc = qfs_scrub_start(cell, &sc.so, &sw.s);
		if (rc)
			QFS_LOG(QFS_LOG_ERR, "cannot start the scrubber err=%s (mounting without it)",
				qfs_strerror(rc));
	}
	struct qfs_fs_opts fo = {
		.mountpoint = mnt,
		.data_dir = data,
		.foreground = foreground,
		.debug = debug && foreground,
		.single_thread = single,
		.ready = on_ready,
		.ready_arg = &ready,
		.archive_text = archive ? archive_text : NULL,
		.archive_arg = archive,
		.nodes_text = nodes_text,
		.node_ctl = node_ctl,
		.nodes_arg = cell,
		.replicas = co.nodes,
		.cache_timeout_ms = cache_ms,
		.avail = &avo,
		.cache_off = cache_off,
		.scrub_text = scrub_text,
		.alarms_text = alarms_text,
		.scrub_ctl = scrub_ctl,
		.scrub_arg = &sw,
	};
	rc = qfs_fs_run(router, &fo);
	if (rc)
		report_failure(&ready, "mount failed; see the log");
	qfs_scrub_stop(sw.s);
	qfs_archive_stop(archive);
	qfs_router_free(router);
	qfs_cell_close(cell);
	close(lockfd);
	return rc ? 1 : 0;
}

static int cmd_status(int argc, char **argv)
{
	char path[PATH_MAX], buf[65536];
	ssize_t n;

	if (argc != 2) {
		usage(stderr);
		return 2;
	}
	snprintf(path, sizeof(path), "%s/.quorumfs/status", argv[1]);
	int fd = open(path, O_RDONLY);
	if (fd < 0) {
		fprintf(stderr, "quorumfs: %s: %s (is quorumfs mounted there?)\n", path, strerror(errno));
		return 1;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		fwrite(buf, 1, (size_t)n, stdout);
	close(fd);
	return n < 0 ? 1 : 0;
}

static int cmd_restore(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "data", required_argument, NULL, 'D' }, { "table", required_argument, NULL, 't' },
		{ "path", required_argument, NULL, 'p' }, { "time", required_argument, NULL, 'T' },
		{ "to", required_argument, NULL, 'O' },   { "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },       { NULL, 0, NULL, 0 },
	};
	struct qfs_restore_opts ro;
	struct arch_cfg ac;
	char urlbuf[PATH_MAX + 16], data[PATH_MAX], err[1024];
	const char *data_arg = NULL, *time_arg = "latest";
	int opt, rc;

	memset(&ro, 0, sizeof(ro));
	memset(&ac, 0, sizeof(ac));
	optind = 1;
	while ((opt = getopt_long(argc, argv, "o:vh", lopts, NULL)) != -1) {
		switch (opt) {
		case 'o': {
			char *o = keep_opt(optarg), *save = NULL;
			for (char *tok = strtok_r(o, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
				rc = arch_opt(&ac, tok);
				if (rc < 0)
					return 2;
				if (rc == 0 && strncmp(tok, "loglevel=", 9) == 0 && qfs_log_set_level(tok + 9) == 0)
					continue;
				if (rc == 0) {
					fprintf(stderr, "quorumfs: unknown restore option '%s'\n", tok);
					return 2;
				}
			}
			break;
		}
		case 'D': data_arg = optarg; break;
		case 't': ro.table = optarg; break;
		case 'p': ro.path = optarg; break;
		case 'T': time_arg = optarg; break;
		case 'O': ro.to = optarg; break;
		case 'v': ro.verbose = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc || !ro.table || !ro.to) {
		fprintf(stderr, "quorumfs: restore needs --table NAME and --to DIR\n");
		usage(stderr);
		return 2;
	}
	if (data_arg && !realpath(data_arg, data)) {
		fprintf(stderr, "quorumfs: %s: %s\n", data_arg, strerror(errno));
		return 1;
	}
	ro.store = ac.os;
	ro.store.url = arch_url(&ac, data_arg ? data : NULL, urlbuf, sizeof(urlbuf));
	if (!ro.store.url || !strcmp(ro.store.url, "off")) {
		fprintf(stderr, "quorumfs: restore needs an archive: -o archive=URL or --data DATA_DIR\n");
		return 2;
	}
	if (qfs_archive_parse_time(time_arg, &ro.time_ns) != 0) {
		fprintf(stderr, "quorumfs: bad --time '%s' (want 2026-11-25T12:34:56.123Z, @EPOCH_SECONDS or latest)\n",
			time_arg);
		return 2;
	}
	if (qfs_log_level > QFS_LOG_WARN)
		qfs_log_level = QFS_LOG_WARN;
	rc = qfs_restore_run(&ro, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "quorumfs: restore failed: %s\n", err[0] ? err : qfs_strerror(rc));
		return 1;
	}
	return 0;
}

static void scrub_finding(void *arg, const char *line)
{
	int *tty = arg;

	if (*tty)
		fprintf(stderr, "\r\033[K");
	printf("%s\n", line);
	fflush(stdout);
}

static void scrub_progress(void *arg, unsigned pct)
{
	int *tty = arg;

	if (*tty)
		fprintf(stderr, "\rscrub: %u%%", pct);
}

/* quorumfs scrub [-o OPTIONS] [--repair] DATA_DIR: one pass offline.
 * Exit 0 clean, 1 findings, 2 could not run. */
static int cmd_scrub(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "repair", no_argument, NULL, 'r' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct scrub_cfg sc = { .so = { .rate_bytes = UINT64_MAX } };
	struct arch_cfg ac;
	struct qfs_cell_opts co = { .nodes = 0 };
	struct qfs_scrub_counts cnt;
	char data[PATH_MAX], path[PATH_MAX], msg[512];
	int opt, rc, tty = isatty(STDERR_FILENO);

	memset(&ac, 0, sizeof(ac));
	optind = 1;
	while ((opt = getopt_long(argc, argv, "o:h", lopts, NULL)) != -1) {
		switch (opt) {
		case 'o': {
			char *o = keep_opt(optarg), *save = NULL;
			for (char *tok = strtok_r(o, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
				if ((rc = arch_opt(&ac, tok)) < 0 || (rc == 0 && (rc = scrub_opt(&sc, tok)) < 0))
					return 2;
				if (rc == 0 && strncmp(tok, "loglevel=", 9) == 0 && qfs_log_set_level(tok + 9) == 0)
					continue;
				if (rc == 0) {
					fprintf(stderr, "quorumfs: unknown scrub option '%s'\n", tok);
					return 2;
				}
			}
			break;
		}
		case 'r': sc.so.repair = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (argc - optind != 1) {
		usage(stderr);
		return 2;
	}
	if (!realpath(argv[optind], data)) {
		fprintf(stderr, "quorumfs: %s: %s\n", argv[optind], strerror(errno));
		return 2;
	}
	snprintf(path, sizeof(path), "%s/FORMAT", data);
	if (access(path, F_OK) != 0) {
		fprintf(stderr, "quorumfs: %s is not a quorumfs data directory (no FORMAT)\n", data);
		return 2;
	}
	snprintf(path, sizeof(path), "%s/lock", data);
	int lockfd = open(path, O_RDWR | O_CLOEXEC);
	if (lockfd < 0 || flock(lockfd, LOCK_EX | LOCK_NB) != 0) {
		fprintf(stderr, "quorumfs: data directory %s is in use (mounted?): unmount it first\n", data);
		if (lockfd >= 0)
			close(lockfd);
		return 2;
	}
	if ((rc = check_format(data)) || (rc = check_replicas(data, &co.nodes, msg, sizeof(msg)))) {
		fprintf(stderr, "quorumfs: data directory %s: %s\n", data, rc == QFS_EFORMAT ? "unknown format" : msg);
		close(lockfd);
		return 2;
	}
	char urlbuf[PATH_MAX + 16], adir[PATH_MAX];
	struct qfs_objstore_cfg scrub_os = ac.os;
	snprintf(adir, sizeof(adir), "%s/archive", data);
	scrub_os.url = arch_url(&ac, data, urlbuf, sizeof(urlbuf));
	if (strcmp(scrub_os.url, "off") && (ac.url || access(adir, F_OK) == 0))
		scrub_wire_archive(&sc.so, &scrub_os);
	if (qfs_log_level > QFS_LOG_WARN)
		qfs_log_level = QFS_LOG_WARN;
	snprintf(path, sizeof(path), "%s/nodes", data);
	co.dir = path;
	struct qfs_cell *cell = NULL;
	rc = qfs_cell_open(&co, &cell);
	if (rc) {
		fprintf(stderr, "quorumfs: cannot open the storage nodes in %s: %s\n", path, qfs_strerror(rc));
		close(lockfd);
		return 2;
	}
	sc.so.finding = scrub_finding;
	sc.so.progress = scrub_progress;
	sc.so.arg = &tty;
	rc = qfs_scrub_run(cell, &sc.so, &cnt);
	qfs_cell_close(cell);
	close(lockfd);
	if (tty)
		fprintf(stderr, "\r\033[K");
	if (rc) {
		fprintf(stderr, "quorumfs: scrub could not run: %s\n", qfs_strerror(rc));
		return 2;
	}
	printf("scrub: groups %llu mismatches %llu corrupt %llu repaired %llu skipped %llu "
	       "reference %llu archive_failures %llu\n",
	       (unsigned long long)cnt.groups, (unsigned long long)cnt.mismatches,
	       (unsigned long long)cnt.corrupt, (unsigned long long)cnt.repaired,
	       (unsigned long long)cnt.skipped, (unsigned long long)cnt.reference,
	       (unsigned long long)cnt.archive_bad);
	if (cnt.mismatches || cnt.corrupt || cnt.archive_bad)
		return 1;
	return cnt.groups && cnt.skipped == cnt.groups ? 2 : 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("quorumfs %s\n", PACKAGE_VERSION);
		return 0;
	}
	if (!strcmp(argv[1], "mount"))
		return cmd_mount(argc - 1, argv + 1);
	if (!strcmp(argv[1], "status"))
		return cmd_status(argc - 1, argv + 1);
	if (!strcmp(argv[1], "restore"))
		return cmd_restore(argc - 1, argv + 1);
	if (!strcmp(argv[1], "scrub"))
		return cmd_scrub(argc - 1, argv + 1);
	fprintf(stderr, "quorumfs: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
