/*
 * main.c - the quorumfs program: `mount`, `status`, `restore`, `--help`,
 * `--version`, and `bench` (src/cmd/bench.c).
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

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <limits.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "archive/archive.h"
#include "cmd/bench.h"
#include "cmd/member.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/sysio.h"
#include "fs/fs.h"
#include "node/cell.h"
#include "node/cluster.h"
#include "router/admit.h"
#include "router/router.h"
#include "router/route.h"
#include "scrub/scrub.h"

/* Data directory format (doc/compat.md): 3 = 2 plus inode items version 2
 * and txn version 2, which releases that write 2 cannot read; 4 = 3 plus
 * the value log (chunk pointers into WAL segments); 5 = 4 plus PATCH
 * extents ('c' records in the extents form, doc/format-store.md, at most
 * 12 extents); 6 = 5 with up to 32 extents per record, which a release
 * that writes 5 would misread.  A mount turns 2, 3, 4 or 5 into 6 before
 * it opens the cell, so such a release refuses the directory, naming the
 * format, instead of misreading or failing on every item. */
#define DATA_FORMAT "quorumfs-data 6\n"
#define DATA_FORMAT_V5 "quorumfs-data 5\n" /* PATCH extents, at most 12 per record */
#define DATA_FORMAT_V4 "quorumfs-data 4\n" /* before PATCH extents: a 'c' record of 8 or 24 bytes */
#define DATA_FORMAT_V3 "quorumfs-data 3\n" /* before the value log: chunk values only in RocksDB */
#define DATA_FORMAT_V2 "quorumfs-data 2\n" /* three replicas, inode/txn version 1 */
#define DATA_FORMAT_V1 "quorumfs-data 1\n" /* one replica (node.c), before 3 replicas */

/* The groups the cell never drops for good: the meta group (the table
 * list).  The cell knows no group id; the composition root tells it. */
static const qfs_group_t cell_pinned[] = { QFS_META_GROUP };

static void usage(FILE *f)
{
	fprintf(f,
		"usage: quorumfs mount [-f] [-d] [-o OPTIONS] DATA_DIR MOUNTPOINT\n"
		"       mount -t quorumfs [-o OPTIONS] DATA_DIR MOUNTPOINT   (mount.quorumfs)\n"
		"       quorumfs status MOUNTPOINT\n"
		"       quorumfs restore [-o ARCHIVE_OPTIONS] [--data DATA_DIR] --table NAME\n"
		"                [--path PATH] [--time T] --to DIR\n"
		"       quorumfs scrub [-o OPTIONS] [--repair] DATA_DIR\n"
		"       quorumfs bench MOUNTPOINT [--against DIR] [--quick] [OPTIONS]\n"
		"       quorumfs node [-f] -o cluster=FILE,id=N NODE_DIR   (doc/cluster.md)\n"
		"       quorumfs member -o cluster=FILE add|remove GROUP NODE | replace OLD NEW [GROUP]\n"
		"       quorumfs --help | --version\n"
		"\n"
		"mount   mount the table store kept in DATA_DIR (created if missing) on\n"
		"        MOUNTPOINT. Tables are the top-level directories. Returns once\n"
		"        the filesystem is mounted; unmount with `fusermount3 -u MOUNTPOINT`\n"
		"        (or umount, or SIGTERM to the daemon, whose pid is in DATA_DIR/lock).\n"
		"  -f          stay in the foreground, log to stderr\n"
		"  -d          debug logging (and libfuse request tracing with -f)\n"
		"  -s          serve requests on a single thread\n"
		"  -o log=FILE log file (default DATA_DIR/quorumfs.log in the background, stderr\n"
		"              with -f); SIGHUP reopens it (logrotate)\n"
		"  -o ro       read-only mount: every change fails with EROFS\n"
		"  -o nonempty mount over a mountpoint that holds files\n"
		"  -o nosuid,nodev,noexec,noatime,sync,dirsync  kernel mount flags\n"
		"              (defaults, auto, noauto, user, nouser, _netdev, nofail, x-*, rw\n"
		"              and other fstab-only options are accepted and ignored)\n"
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
		"  -o read_ahead=BYTES   the kernel's read-ahead window of the mount (default\n"
		"                        2M; 0: the kernel's 128K; set as root only)\n"
		"  -o throttle=wait|fail  over a table's capacity: wait (default) or EAGAIN\n"
		"  -o throttle_wait=SECONDS  longest wait of one request (default 5; then it\n"
		"                        proceeds)\n"
		"  -o part_rcu=N,part_wcu=N  per-partition ceilings (default 0: none)\n"
		"  -o node_rcu=N,node_wcu=N  node throughput for bursting (default 0: unlimited)\n"
		"  -o ondemand_rcu=N,ondemand_wcu=N  on-demand allowance before a peak is seen\n"
		"                        (default 0: unlimited); see doc/admission.md\n"
		"  -o cluster=FILE       mount a cluster of `quorumfs node` processes: DATA_DIR\n"
		"                        holds only the lock and log; no archive, no scrub,\n"
		"                        no kernel caching (close-to-open); doc/cluster.md\n"
		"  -o split_bytes=BYTES  split a partition above this size (default 1G; 0: never)\n"
		"  -o split_ops=N,split_window=DURATION  split a partition whose requests stay\n"
		"                        above N/s for the window (default 0: never; window 10s)\n"
		"  -o split_check=DURATION  how often splits are checked (default 1s)\n"
		"  -o replicas=3|1       replicas per table, fixed when DATA_DIR is created\n"
		"                        (default 3, in DATA_DIR/nodes/n1..n3, AZ a, b, c)\n"
		"  -o scrub_interval=DURATION  start a scrub pass this often (default 6h;\n"
		"                        also 30m, 1d, 90s; off: only when asked)\n"
		"  -o scrub_rate=MB      replica bytes the scrub reads per second, in MiB\n"
		"                        (default 8; also 512K, 1G; 0: unpaced)\n"
		"  -o scrub_repair=on|off  rebuild a replica the scrub finds differing from\n"
		"                        the majority or corrupt (default on)\n"
		"  -o scrub=off          no background scrub\n"
		"  -o cache_size=BYTES   RocksDB block cache of all nodes together (default 32M)\n"
		"  -o memtable_size=BYTES  RocksDB memtables of all nodes together\n"
		"                        (default 16M per node, 48M for 3)\n"
		"  -o vlog=on|off        file chunks stay in the WAL's segments, the stores\n"
		"                        pointing at them (default on; off: in RocksDB's blob files)\n"
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
		"  -o archive_link=on|off  local archive on the data disk: hard-link sealed WAL\n"
		"                        segments instead of copying them (default on; off:\n"
		"                        copies, which releases before 1432379 can read)\n"
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
		"bench   run small-file, metadata, fsync and sequential workloads in a fresh\n"
		"        directory under MOUNTPOINT (and DIR) and print their rates\n"
		"        (`quorumfs bench --help`)\n"
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

/* An option's duration (common/clock.h): up to about 31 years. */
static int parse_ms(const char *s, uint64_t *out)
{
	return qfs_clock_parse_ms(s, 1000000000000ull, out);
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
	if (!strcmp(tok, "archive")) {
		/* off, file:///ABSOLUTE/DIR or s3://BUCKET[/PREFIX] (objstore.h) */
		c->url = v;
		bad = strcmp(v, "off") && strncmp(v, "file:///", 8) &&
		      (strncmp(v, "s3://", 5) || !v[5] || v[5] == '/');
	} else if (!strcmp(tok, "s3_endpoint"))
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
	else if (!strcmp(tok, "archive_link"))
		bad = strcmp(v, "on") && strcmp(v, "off") ? 1 : ((c->os.link_immutable = v[1] == 'n'), 0);
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
		fprintf(stderr, "quorumfs: bad value '%s' for option %s%s\n", v, tok,
			!strcmp(tok, "archive") ? " (want off, file:///DIR or s3://BUCKET/PREFIX)" : "");
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

/* Replace DATA/FORMAT by DATA_FORMAT: temp file + fsync + rename + fsync of
 * DATA, so a crash leaves the old or the new content.  0 or -errno. */
static int write_format(const char *data)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/FORMAT", data);
	return qfs_sysio_file_put(path, DATA_FORMAT, strlen(DATA_FORMAT));
}

/* Check or write DATA_DIR/FORMAT.  A format-2, 3, 4 or 5 directory is
 * accepted and, when upgrade is set (a mount, which writes version-2
 * items, value log pointers and up to 32 PATCH extents per chunk record),
 * rewritten as format 6
 * first (doc/compat.md).  0, or QFS_EFORMAT or -errno with a one-line
 * reason in msg. */
static int check_format(const char *data, int upgrade, char *msg, size_t len)
{
	char path[PATH_MAX], buf[64];
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/FORMAT", data);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT) {
			snprintf(msg, len, "cannot read %s: %s", path, strerror(errno));
			return -errno;
		}
		int rc = write_format(data); /* temp + fsync + rename: never an empty FORMAT */

		if (rc)
			snprintf(msg, len, "cannot write %s: %s", path, qfs_strerror(rc));
		return rc;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0) {
		snprintf(msg, len, "cannot read %s: %s", path, strerror(errno));
		return -EIO;
	}
	buf[n] = '\0';
	if (strcmp(buf, DATA_FORMAT_V1) == 0) {
		snprintf(msg, len,
			 "data directory %s holds format 1 (one replica per table) of an earlier quorumfs, "
			 "which this version cannot open: mount a new data directory and bring each table "
			 "back with `quorumfs restore --data %s --table NAME --time latest --to MOUNTPOINT/NAME`",
			 data, data);
		return QFS_EFORMAT;
	}
	if (strcmp(buf, DATA_FORMAT_V2) == 0 || strcmp(buf, DATA_FORMAT_V3) == 0 ||
	    strcmp(buf, DATA_FORMAT_V4) == 0 || strcmp(buf, DATA_FORMAT_V5) == 0) {
		int from = buf[strlen("quorumfs-data ")] - '0';

		if (!upgrade)
			return 0;
		int rc = write_format(data);
		if (rc) {
			snprintf(msg, len, "cannot upgrade %s from format %d to 6: %s", path, from, qfs_strerror(rc));
			QFS_LOG(QFS_LOG_ERR, "data directory format upgrade failed file=%s from=%d to=6 err=\"%s\"",
				path, from, qfs_strerror(rc));
			return rc;
		}
		QFS_LOG(QFS_LOG_WARN,
			"data directory format upgraded file=%s from=%d to=6 (inode items and txns version 2, "
			"chunk values and PATCH extents in the WAL's segments: earlier releases refuse it from "
			"now on, doc/compat.md)",
			path, from);
		return 0;
	}
	if (strcmp(buf, DATA_FORMAT) != 0) {
		snprintf(msg, len, "data directory %s has an unknown format file %s (\"%.*s\")", data, path,
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

		snprintf(buf, sizeof(buf), "%u\n", want);
		wrc = qfs_sysio_file_put(path, buf, strlen(buf));
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

/* ---- mount safety: the mountpoint and the data directory ---- */

/* 1 if path (resolved) is a mount point, with its type in fstype; 0 if
 * not; -errno if /proc/self/mountinfo cannot be read. */
static int is_mount_point(const char *path, char *fstype, size_t len)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;
	int found = 0;

	if (!f)
		return -errno;
	while (!found && getline(&line, &cap, f) > 0) {
		struct qfs_mountinfo m;

		if (qfs_mountinfo_split(line, &m) != 0 || strcmp(m.mountpoint, path) != 0)
			continue;
		found = 1;
		snprintf(fstype, len, "%s", m.fstype ? m.fstype : "?");
	}
	free(line);
	fclose(f);
	return found;
}

/* Make arg absolute without creating anything: realpath of its longest
 * existing prefix, then the missing components (".", ".." resolved by
 * name: they do not exist, so no symlink can be among them).  0 or -errno. */
static int resolve_path_depth(const char *arg, char *out, int depth)
{
	char head[PATH_MAX], rest[PATH_MAX] = "", res[PATH_MAX];
	size_t n = strlen(arg);
	struct stat st;

	if (n == 0 || n >= sizeof(head))
		return n ? -ENAMETOOLONG : -ENOENT;
	memcpy(head, arg, n + 1);
	for (;;) {
		if (realpath(head, res))
			break;
		if (errno != ENOENT)
			return -errno;
		if (lstat(head, &st) == 0 && S_ISLNK(st.st_mode)) {
			/* a dangling symlink: follow it by hand */
			char target[PATH_MAX], next[PATH_MAX * 2 + 2];
			ssize_t tl = readlink(head, target, sizeof(target) - 1);
			char *slash = strrchr(head, '/');

			if (tl < 0 || depth > 40)
				return tl < 0 ? -errno : -ELOOP;
			target[tl] = '\0';
			if (target[0] == '/' || !slash)
				snprintf(next, sizeof(next), "%s%s%s", target, rest[0] ? "/" : "", rest);
			else
				snprintf(next, sizeof(next), "%.*s/%s%s%s", (int)(slash - head), head, target,
					 rest[0] ? "/" : "", rest);
			if (strlen(next) >= PATH_MAX)
				return -ENAMETOOLONG;
			return resolve_path_depth(next, out, depth + 1);
		}
		char *slash = strrchr(head, '/');
		char tail[PATH_MAX];
		if (!slash) {
			snprintf(tail, sizeof(tail), "%s%s%s", head, rest[0] ? "/" : "", rest);
			memcpy(rest, tail, sizeof(rest));
			snprintf(head, sizeof(head), ".");
			continue;
		}
		snprintf(tail, sizeof(tail), "%s%s%s", slash + 1, rest[0] ? "/" : "", rest);
		memcpy(rest, tail, sizeof(rest));
		if (slash == head)
			slash[1] = '\0';
		else
			*slash = '\0';
	}
	char *save = NULL;
	for (char *c = strtok_r(rest, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		if (!strcmp(c, "."))
			continue;
		if (!strcmp(c, "..")) {
			char *slash = strrchr(res, '/');
			if (slash == res)
				res[1] = '\0';
			else if (slash)
				*slash = '\0';
			continue;
		}
		size_t l = strlen(res);
		if (l + 1 + strlen(c) >= sizeof(res))
			return -ENAMETOOLONG;
		if (res[l - 1] != '/')
			res[l++] = '/';
		strcpy(res + l, c);
	}
	memcpy(out, res, strlen(res) + 1);
	return 0;
}

static int resolve_path(const char *arg, char *out)
{
	return resolve_path_depth(arg, out, 0);
}

/* 1 if path is dir or below it (both resolved). */
static int path_within(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	if (!strcmp(dir, "/"))
		return 1;
	return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* 1 (with a reason in msg) if path, a file the daemon writes (what), lies
 * inside the mountpoint mnt; 0 if not or if path is NULL. */
static int inside_mount(const char *what, const char *path, const char *mnt, char *msg, size_t len)
{
	char abs[PATH_MAX];

	if (!path || resolve_path(path, abs) != 0 || !path_within(abs, mnt))
		return 0;
	snprintf(msg, len, "%s %s is inside the mountpoint %s: quorumfs would wait on its own mount; "
		 "choose a path outside the mountpoint", what, abs, mnt);
	return 1;
}

/* The mountpoint must be an existing, empty (unless nonempty) directory
 * that is not a mount point already.  mnt gets its resolved path.  0, or
 * -1 with a one-line reason in msg. */
static int check_mountpoint(const char *arg, int nonempty, char *mnt, char *msg, size_t len)
{
	struct stat st;
	struct statfs sfs;
	char fstype[64];
	int rc;

	if (stat(arg, &st) != 0) {
		if (errno == ENOTCONN)
			snprintf(msg, len, "mountpoint %s: stale mount (its daemon is gone): run fusermount3 -u %s "
				 "and mount again", arg, arg);
		else if (errno == ENOENT)
			snprintf(msg, len, "mountpoint %s does not exist (create it with mkdir)", arg);
		else
			snprintf(msg, len, "mountpoint %s: %s", arg, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(msg, len, "mountpoint %s is not a directory", arg);
		return -1;
	}
	if (!realpath(arg, mnt)) {
		snprintf(msg, len, "mountpoint %s: %s", arg, strerror(errno));
		return -1;
	}
	rc = is_mount_point(mnt, fstype, sizeof(fstype));
	if (rc > 0 && !strcmp(fstype, "autofs"))
		return 0; /* x-systemd.automount: mount over the trigger, and do not touch it */
	if (rc > 0 && statfs(mnt, &sfs) != 0 && errno == ENOTCONN) {
		/* the kernel may still answer stat from its cache; statfs asks the daemon */
		snprintf(msg, len, "mountpoint %s: stale mount (its daemon is gone): run fusermount3 -u %s "
			 "and mount again", mnt, mnt);
		return -1;
	}
	if (rc > 0) {
		snprintf(msg, len, "mountpoint %s is already a mount point (type %s): unmount it first "
			 "(%s %s)", mnt, fstype, strncmp(fstype, "fuse", 4) == 0 ? "fusermount3 -u" : "umount", mnt);
		return -1;
	}
	if (!nonempty) {
		DIR *d = opendir(mnt);
		struct dirent *de;
		int entries = 0;

		if (!d) {
			snprintf(msg, len, "mountpoint %s: %s", mnt, strerror(errno));
			return -1;
		}
		while ((de = readdir(d)) != NULL)
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
				entries++;
		closedir(d);
		if (entries) {
			snprintf(msg, len, "mountpoint %s is not empty: its files would be hidden while mounted "
				 "(use -o nonempty to mount over them)", mnt);
			return -1;
		}
	}
	return 0;
}

/* Create the data directory (after checking it is outside mnt) and check
 * it is a writable directory.  data gets its resolved path.  0, or -1 with
 * a one-line reason in msg. */
static int check_data_dir(const char *arg, const char *mnt, char *data, char *msg, size_t len)
{
	char abs[PATH_MAX];
	struct stat st;
	int rc = resolve_path(arg, abs);

	if (rc) {
		snprintf(msg, len, "data directory %s: %s", arg, strerror(-rc));
		return -1;
	}
	if (path_within(abs, mnt)) {
		snprintf(msg, len, "data directory %s is inside the mountpoint %s: quorumfs would wait on its "
			 "own mount; choose a data directory outside the mountpoint", abs, mnt);
		return -1;
	}
	rc = mkdir_p(abs, 0700);
	if (rc) {
		snprintf(msg, len, "cannot create data directory %s: %s", abs, strerror(-rc));
		return -1;
	}
	if (stat(abs, &st) != 0 || !S_ISDIR(st.st_mode)) {
		snprintf(msg, len, "data directory %s is not a directory", abs);
		return -1;
	}
	if (!realpath(abs, data)) {
		snprintf(msg, len, "data directory %s: %s", abs, strerror(errno));
		return -1;
	}
	if (strlen(data) > PATH_MAX - 64) {
		snprintf(msg, len, "data directory path %s is too long", data);
		return -1;
	}
	if (path_within(data, mnt)) { /* through a symlink */
		snprintf(msg, len, "data directory %s is inside the mountpoint %s: quorumfs would wait on its "
			 "own mount; choose a data directory outside the mountpoint", data, mnt);
		return -1;
	}
	if (access(data, R_OK | W_OK | X_OK) != 0) {
		if (errno == EROFS)
			snprintf(msg, len, "data directory %s is on a read-only file system: quorumfs writes its "
				 "log, WAL and stores there (also with -o ro); remount it read-write", data);
		else if (errno == EACCES)
			snprintf(msg, len, "data directory %s is not writable by uid %u: permission denied", data,
				 (unsigned)geteuid());
		else
			snprintf(msg, len, "data directory %s: %s", data, strerror(errno));
		return -1;
	}
	return 0;
}

/* 1 if some mount's source (fsname, fs/session.c) is data: a quorumfs
 * serves it; 0 if none (or mountinfo is unreadable). */
static int source_mounted(const char *data)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;
	int found = 0;

	if (!f)
		return 0;
	while (!found && getline(&line, &cap, f) > 0) {
		struct qfs_mountinfo m;

		found = qfs_mountinfo_split(line, &m) == 0 && m.source && strcmp(m.source, data) == 0;
	}
	free(line);
	fclose(f);
	return found;
}

/* 1 if the process whose pid the lock file lfd names is exiting (a kill
 * -9 under way: the kernel's PF_EXITING in /proc/PID/stat's flags) or
 * gone while its lock lingers; 0 if it runs, or the file names nobody (a
 * holder that is starting). */
static int holder_exiting(int lfd)
{
	char buf[512], path[64];
	ssize_t n = pread(lfd, buf, 23, 0);
	unsigned long flags;
	long pid;
	FILE *f;
	char *p;

	if (n <= 0)
		return 0;
	buf[n] = '\0';
	if ((pid = strtol(buf, &p, 10)) <= 0 || (*p && *p != '\n'))
		return 0;
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if (!(f = fopen(path, "re")))
		return errno == ENOENT;
	n = (ssize_t)fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n > 0 ? n : 0] = '\0';
	/* pid (comm) state ppid pgrp session tty_nr tpgid flags: the comm
	 * may hold anything, so from its last ')' */
	if (!(p = strrchr(buf, ')')) ||
	    sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %lu", &flags) != 1)
		return 0;
	return (flags & 0x4) != 0; /* PF_EXITING */
}

/* Take DATA/lock (flock, held for the life of the process, across the
 * fork: the child's copy of the descriptor keeps it).  *fd gets it.  0, or
 * -1 with a one-line reason in msg (another quorumfs: its pid, from the
 * file).  While the holder mounts nothing of data (a mount unmounted a
 * moment ago and still closing its stores: `umount M && mount M`), or,
 * for a node directory (node_dir 1), while the holder is exiting (a node
 * killed a moment ago: `kill -9 PID; quorumfs node ...`), wait for it up
 * to wait_ms. */
static int take_lock(const char *data, int *fd, char *msg, size_t len, int wait_ms, int node_dir)
{
	char path[PATH_MAX], pid[24] = "";
	int lfd;

	snprintf(path, sizeof(path), "%s/lock", data);
	lfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lfd < 0) {
		snprintf(msg, len, "cannot open the lock file %s: %s", path, strerror(errno));
		return -1;
	}
	for (int waited = 0; waited < wait_ms && flock(lfd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK &&
			     (node_dir ? holder_exiting(lfd) : !source_mounted(data));
	     waited += 50)
		usleep(50000);
	if (flock(lfd, LOCK_EX | LOCK_NB) != 0) {
		int err = errno;
		ssize_t n = err == EWOULDBLOCK ? pread(lfd, pid, sizeof(pid) - 1, 0) : -1;

		if (n > 0) {
			pid[n] = '\0';
			pid[strcspn(pid, "\n")] = '\0';
		}
		if (err == EWOULDBLOCK)
			snprintf(msg, len, "data directory %s is in use by another quorumfs (%s%s%slock %s)", data,
				 pid[0] ? "pid " : "", pid, pid[0] ? ", " : "", path);
		else
			snprintf(msg, len, "cannot lock %s: %s", path, strerror(err));
		close(lfd);
		return -1;
	}
	*fd = lfd;
	return 0;
}

/* Record the serving process's pid in the lock file (for the message of
 * a second mount, and for scripts). */
static void lock_note_pid(int fd)
{
	char pid[24];
	int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());

	if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
		/* only informative */
	}
}

/* ---- mount options ---- */

/* Options for mount(8), fstab, systemd and the mount helpers rather than
 * for the filesystem: accepted and ignored (see quorumfs(8)). */
static const char *const ignored_opts[] = {
	"defaults", "auto", "noauto", "user", "nouser", "users", "owner", "group", "_netdev", "nofail",
	"relatime", "norelatime", "strictatime", "nostrictatime", "lazytime", "nolazytime", "diratime",
	"nodiratime", "loud", "silent", "nonempty", NULL,
};
static const char *const ignored_prefixes[] = { "x-", "comment=", "user=", "helper=", NULL };

/* Mount flags passed on to the kernel: each pair sets or clears one bit. */
static const struct {
	const char *on, *off;
} kernel_flags[] = {
	{ "nosuid", "suid" }, { "nodev", "dev" },   { "noexec", "exec" },
	{ "noatime", "atime" }, { "sync", "async" }, { "dirsync", NULL },
};
#define NKFLAGS (sizeof(kernel_flags) / sizeof(kernel_flags[0]))

/* Handle one -o token if it is a split option (doc/partitions.md): 1
 * handled, 0 not ours, -1 bad value (message printed). */
static int split_opt(struct qfs_router_split_cfg *c, int *bytes_set, const char *tok)
{
	const char *v = strchr(tok, '=');
	uint64_t n;
	char *e;
	int bad;

	if (!v || strncmp(tok, "split_", 6))
		return 0;
	v++;
	if (!strncmp(tok, "split_bytes=", 12)) {
		bad = parse_size(v, &c->split_bytes);
		*bytes_set = 1;
	} else if (!strncmp(tok, "split_ops=", 10)) {
		errno = 0;
		c->split_ops = strtod(v, &e);
		bad = errno || e == v || *e || c->split_ops < 0 || c->split_ops > 1e9;
	} else if (!strncmp(tok, "split_window=", 13) || !strncmp(tok, "split_check=", 12)) {
		bad = parse_ms(v, &n) || n == 0 || n > 86400000;
		if (!bad)
			*(tok[6] == 'w' ? &c->window_ms : &c->check_ms) = (uint32_t)n;
	} else {
		return 0;
	}
	if (bad) {
		fprintf(stderr, "quorumfs: bad value '%s' for option %.*s\n", v, (int)(v - tok - 1), tok);
		return -1;
	}
	return 1;
}

/* Handle one -o token if it is an admission option (doc/admission.md):
 * 1 handled, 0 not ours, -1 bad value (message printed). */
static int admit_opt(struct qfs_admit_cfg *c, const char *tok)
{
	static const struct {
		const char *name;
		size_t off;
	} units[] = {
		{ "part_rcu=", offsetof(struct qfs_admit_cfg, part_units[QFS_ADMIT_READ]) },
		{ "part_wcu=", offsetof(struct qfs_admit_cfg, part_units[QFS_ADMIT_WRITE]) },
		{ "node_rcu=", offsetof(struct qfs_admit_cfg, node_units[QFS_ADMIT_READ]) },
		{ "node_wcu=", offsetof(struct qfs_admit_cfg, node_units[QFS_ADMIT_WRITE]) },
		{ "ondemand_rcu=", offsetof(struct qfs_admit_cfg, ondemand_units[QFS_ADMIT_READ]) },
		{ "ondemand_wcu=", offsetof(struct qfs_admit_cfg, ondemand_units[QFS_ADMIT_WRITE]) },
	};
	uint64_t v;
	char *e;

	if (strcmp(tok, "throttle=wait") == 0 || strcmp(tok, "throttle=fail") == 0) {
		c->fail = tok[9] == 'f';
		return 1;
	}
	if (strncmp(tok, "throttle_wait=", 14) == 0 || strncmp(tok, "gac_interval=", 13) == 0) {
		int wait = tok[0] == 't';
		const char *val = strchr(tok, '=') + 1;
		if (parse_ms(val, &v) || v > 600000) {
			fprintf(stderr, "quorumfs: bad value '%s' for option %.*s\n", val, (int)(val - tok - 1), tok);
			return -1;
		}
		*(wait ? &c->wait_ms : &c->gac_ms) = (uint32_t)v;
		return 1;
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		size_t n = strlen(units[i].name);
		if (strncmp(tok, units[i].name, n))
			continue;
		errno = 0;
		v = strtoull(tok + n, &e, 10);
		if (errno || e == tok + n || *e || v > 10000000) {
			fprintf(stderr, "quorumfs: bad value '%s' for option %.*s\n", tok + n, (int)(n - 1), tok);
			return -1;
		}
		*(uint32_t *)((char *)c + units[i].off) = (uint32_t)v;
		return 1;
	}
	return 0;
}

struct mount_cfg {
	struct arch_cfg ac;
	struct qfs_cell_opts co;
	const char *logfile;    /* -o log=, kept */
	int readonly;           /* -o ro (rw clears it) */
	int nonempty;           /* -o nonempty */
	unsigned kflags;        /* bit i: kernel_flags[i].on given last */
	unsigned kflags_off;    /* bit i: kernel_flags[i].off given last (libfuse's
	                         * defaults are nosuid,nodev: suid, dev undo them) */
	char kopts[128];        /* kflags as text for fs/ */
	struct scrub_cfg sc;    /* -o scrub*= */
	struct qfs_admit_cfg adm; /* -o throttle*=, *_rcu=, *_wcu=, gac_interval= */
	struct qfs_router_split_cfg split; /* -o split_*= (doc/partitions.md) */
	int split_bytes_set;    /* -o split_bytes= given (else the default) */
	uint64_t ra_bytes;      /* -o read_ahead= (default QFS_FS_READ_AHEAD_DEFAULT) */
	uint64_t cache_ms;      /* -o cache_timeout= in ms (0: the default) */
	int cache_off;          /* -o cache_timeout=0: no kernel caching */
	struct qfs_avail_opts av; /* -o alarm_*=, canary_interval=, metrics_listen= */
	char cluster[PATH_MAX]; /* -o cluster=FILE, resolved ("" : embedded) */
	const char *local_opt;  /* an archive or scrub option given (refused with cluster=) */
};

static int bad_value(const char *opt, const char *v, const char *want)
{
	fprintf(stderr, "quorumfs: bad value '%s' for option %s: %s\n", v, opt, want);
	return -1;
}

/* One -o token of `mount`: 0, or -1 with a message on stderr. */
static int mount_opt(struct mount_cfg *m, char *tok)
{
	char *eq = strchr(tok, '=');
	const char *v = eq ? eq + 1 : NULL;
	uint64_t v64;
	int rc;

	if (!*tok)
		return 0;
	for (int i = 0; ignored_opts[i]; i++)
		if (!strcmp(tok, ignored_opts[i])) {
			if (!strcmp(tok, "nonempty"))
				m->nonempty = 1;
			return 0;
		}
	for (int i = 0; ignored_prefixes[i]; i++)
		if (!strncmp(tok, ignored_prefixes[i], strlen(ignored_prefixes[i])))
			return 0;
	if (!strcmp(tok, "remount")) {
		fprintf(stderr, "quorumfs: remount is not supported: unmount and mount again\n");
		return -1;
	}
	if (!strcmp(tok, "ro") || !strcmp(tok, "rw")) {
		m->readonly = tok[1] == 'o';
		return 0;
	}
	for (size_t i = 0; i < NKFLAGS; i++) {
		if (!strcmp(tok, kernel_flags[i].on)) {
			m->kflags |= 1u << i;
			m->kflags_off &= ~(1u << i);
			return 0;
		}
		if (kernel_flags[i].off && !strcmp(tok, kernel_flags[i].off)) {
			m->kflags &= ~(1u << i);
			m->kflags_off |= 1u << i;
			return 0;
		}
	}
	if (!strncmp(tok, "cluster=", 8)) {
		if (!tok[8] || resolve_path(tok + 8, m->cluster) != 0)
			return bad_value("cluster", tok + 8, "want cluster=FILE (an existing file)");
		return 0;
	}
	if (!strncmp(tok, "archive", 7) || !strncmp(tok, "scrub", 5) || !strncmp(tok, "retention", 9))
		m->local_opt = tok;
	if ((rc = arch_opt(&m->ac, tok)) != 0)
		return rc < 0 ? -1 : 0;
	if ((rc = admit_opt(&m->adm, tok)) != 0)
		return rc < 0 ? -1 : 0;
	if ((rc = split_opt(&m->split, &m->split_bytes_set, tok)) != 0)
		return rc < 0 ? -1 : 0;
	if ((rc = scrub_opt(&m->sc, tok)) != 0)
		return rc < 0 ? -1 : 0;
	if ((rc = qfs_avail_opt(&m->av, tok)) != 0)
		return rc < 0 ? -1 : 0;
	if (eq)
		*eq = '\0';
	if (!strcmp(tok, "log")) {
		if (!v || !*v)
			return bad_value("log", v ? v : "", "want log=FILE");
		m->logfile = v;
	} else if (!strcmp(tok, "reads")) {
		if (v && !strcmp(v, "strong"))
			m->co.reads = QFS_CELL_READ_STRONG;
		else if (v && !strcmp(v, "eventual"))
			m->co.reads = QFS_CELL_READ_EVENTUAL;
		else
			return bad_value("reads", v ? v : "", "reads must be strong or eventual");
	} else if (!strcmp(tok, "quorum_timeout")) {
		if (!v || parse_ms(v, &v64) || v64 > 3600000)
			return bad_value("quorum_timeout", v ? v : "", "want SECONDS (0 < t <= 3600; 500ms, 2s, 1m)");
		m->co.timeout_ms = (uint32_t)v64;
	} else if (!strcmp(tok, "replicas")) {
		if (!v || (strcmp(v, "1") && strcmp(v, "3")))
			return bad_value("replicas", v ? v : "", "replicas must be 1 or 3");
		m->co.nodes = (uint32_t)(v[0] - '0');
	} else if (!strcmp(tok, "cache_timeout")) {
		if (v && !strcmp(v, "0"))
			v64 = 0;
		else if (!v || parse_ms(v, &v64) || v64 > 366ull * 86400 * 1000)
			return bad_value("cache_timeout", v ? v : "", "want SECONDS (0 = no kernel caching; 1h, 30m)");
		m->cache_ms = v64;
		m->cache_off = v64 == 0;
	} else if (!strcmp(tok, "read_ahead")) {
		if (!v || parse_size(v, &v64) || v64 > (64u << 20) || (v64 && v64 < 4096))
			return bad_value("read_ahead", v ? v : "", "want BYTES from 4K to 64M, or 0 (the kernel's)");
		m->ra_bytes = v64;
	} else if (!strcmp(tok, "cache_size") || !strcmp(tok, "memtable_size")) {
		/* 1 MiB .. 64 GiB; a memtable budget below the store's floor is
		 * raised to it (store.h) */
		if (!v || parse_size(v, &v64) || v64 < (1u << 20) || v64 > (64ull << 30))
			return bad_value(tok, v ? v : "", "want BYTES from 1M to 64G (K, M, G suffixes)");
		if (tok[0] == 'c')
			m->co.cache_bytes = v64;
		else
			m->co.memtable_bytes = v64;
	} else if (!strcmp(tok, "vlog") && v && (!strcmp(v, "on") || !strcmp(v, "off"))) {
		m->co.vlog_off = v[1] == 'f';
	} else if (!strcmp(tok, "loglevel")) {
		if (!v || qfs_log_set_level(v) != 0)
			return bad_value("loglevel", v ? v : "", "want err, warn, info or debug");
	} else if (!eq && (!strcmp(tok, "archive") || !strncmp(tok, "s3_", 3) || !strncmp(tok, "seal_", 5) ||
			   !strncmp(tok, "snapshot_", 9) || !strcmp(tok, "archive_interval"))) {
		fprintf(stderr, "quorumfs: option %s needs a value (%s=...; see quorumfs(8))\n", tok, tok);
		return -1;
	} else if (!strcmp(tok, "throttle") || !strcmp(tok, "scrub") || !strcmp(tok, "scrub_repair") ||
		   !strcmp(tok, "vlog")) {
		/* known options whose accepted values the parsers above matched whole */
		return bad_value(tok, v ? v : "",
				 tok[0] == 't' ? "want wait or fail" : "want on or off");
	} else {
		if (eq)
			*eq = '=';
		fprintf(stderr, "quorumfs: unknown mount option '%s' (see quorumfs(8))\n", tok);
		return -1;
	}
	return 0;
}

/* The kernel flags as "nosuid,nodev,..." for fs/. */
static void kernel_opts_text(struct mount_cfg *m)
{
	size_t n = 0;

	m->kopts[0] = '\0';
	for (size_t i = 0; i < NKFLAGS; i++)
		if (m->kflags & (1u << i))
			n += (size_t)snprintf(m->kopts + n, sizeof(m->kopts) - n, "%s%s", n ? "," : "",
					      kernel_flags[i].on);
		else if (m->kflags_off & (1u << i))
			n += (size_t)snprintf(m->kopts + n, sizeof(m->kopts) - n, "%s%s", n ? "," : "",
					      kernel_flags[i].off);
}

/* ---- signals: SIGHUP reopens the log ---- */

static sem_t hup_sem;          /* posted by the SIGHUP handler (async-signal-safe) */
static atomic_int hup_stop;    /* 1: the reopen thread ends */

static void on_hup(int sig)
{
	int saved = errno;

	(void)sig;
	sem_post(&hup_sem);
	errno = saved;
}

/* Reopen the log on each SIGHUP (logrotate's postrotate), in a normal
 * thread so that the reopen can log. */
static void *hup_main(void *arg)
{
	(void)arg;
	for (;;) {
		while (sem_wait(&hup_sem) != 0 && errno == EINTR)
			;
		if (atomic_load(&hup_stop))
			return NULL;
		int rc = qfs_log_reopen();
		if (rc == -ENOENT)
			QFS_LOG(QFS_LOG_INFO, "log not reopened signal=SIGHUP why=\"logging to stderr, not to a file\"");
		else if (rc)
			QFS_LOG(QFS_LOG_ERR, "log reopen failed signal=SIGHUP file=%s err=\"%s\"", qfs_log_file(),
				strerror(-rc));
		else
			QFS_LOG(QFS_LOG_INFO, "log reopened signal=SIGHUP file=%s", qfs_log_file());
	}
}

/* Install the SIGHUP handler (before fs/ installs libfuse's, which then
 * leaves SIGHUP alone) and start its thread.  0 or -errno. */
static int hup_start(pthread_t *th)
{
	struct sigaction sa;

	if (sem_init(&hup_sem, 0, 0) != 0)
		return -errno;
	int rc = -pthread_create(th, NULL, hup_main, NULL);
	if (rc)
		return rc;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_hup;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGHUP, &sa, NULL);
	return 0;
}

static void hup_stop_thread(pthread_t th)
{
	signal(SIGHUP, SIG_IGN);
	atomic_store(&hup_stop, 1);
	sem_post(&hup_sem);
	pthread_join(th, NULL);
}

/* ---- systemd: sd_notify without libsystemd ---- */

/* Send text to $NOTIFY_SOCKET (Type=notify); nothing when it is unset. */
static void sd_notify_text(const char *text)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t n;
	int fd;

	if (!path || (path[0] != '/' && path[0] != '@') || (n = strlen(path)) >= sizeof(sa.sun_path))
		return;
	memcpy(sa.sun_path, path, n);
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0'; /* abstract socket */
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, text, strlen(text), MSG_NOSIGNAL, (struct sockaddr *)&sa,
		   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)) < 0)
		QFS_LOG(QFS_LOG_WARN, "sd_notify failed socket=%s err=\"%s\"", path, strerror(errno));
	close(fd);
}

struct ready_ctx {
	int fd;            /* pipe to the waiting parent, -1 in the foreground */
	const char *mnt;   /* for the systemd status line */
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
	char text[PATH_MAX + 64];

	snprintf(text, sizeof(text), "READY=1\nMAINPID=%ld\nSTATUS=mounted on %s", (long)getpid(), c->mnt);
	sd_notify_text(text);
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

/* Report a setup failure: a log line, and the message on the terminal
 * (the waiting parent's stderr in the background, ours in the foreground). */
static void report_failure(struct ready_ctx *c, const char *msg)
{
	if (c->fd >= 0 || qfs_log_file())
		QFS_LOG(QFS_LOG_ERR, "mount failed err=\"%s\"", msg);
	if (c->fd < 0) {
		fprintf(stderr, "quorumfs: %s\n", msg);
		return;
	}
	char code = 1;
	if (write(c->fd, &code, 1) == 1 && write(c->fd, msg, strlen(msg)) < 0) {
		/* nothing more to do */
	}
	close(c->fd);
	c->fd = -1;
}


/* Copies of each user byte that land on the file system of data: a store
 * value for each node whose directory is on it (a node directory may be a
 * symlink to another disk), one for a local archive there, and one more
 * for the WAL records that wait there until the archive has them (the
 * nodes' WALs hold up to one copy per node for a few seconds; node 1's
 * sealed segments become the local archive's by hard link).  Once the
 * archive has caught up a byte holds nodes (+ 1) copies; a burst of writes
 * holds up to twice the nodes; this is the middle (doc/fs.md "statfs").
 * With the value log (vlog), a node's store keeps the WAL's copy itself:
 * nodes (+ 1) copies, from the write on. */
static uint32_t space_copies(const char *data, uint32_t nodes, const char *archive_url, int vlog)
{
	char path[PATH_MAX];
	struct stat ds, st;
	uint32_t n = 0;

	if (stat(data, &ds) != 0)
		return nodes + 1;
	for (uint32_t i = 1; i <= nodes; i++) {
		snprintf(path, sizeof(path), "%s/nodes/n%u", data, i);
		if (stat(path, &st) != 0 || st.st_dev == ds.st_dev)
			n++;
	}
	if (archive_url && strncmp(archive_url, "file://", 7) == 0 &&
	    stat(archive_url + 7, &st) == 0 && st.st_dev == ds.st_dev)
		n++;
	return n ? n + !vlog : 1;
}

/* Go to the background: fork (before any thread exists), the parent waits
 * for the child's on_ready or report_failure and gets the exit code to
 * return, 0 or 1 (after "quorumfs: <what> failed: <reason> (see logfile)");
 * the child gets -1, in its own session in /, with ready->fd its end of the
 * pipe. */
static int daemonize(struct ready_ctx *ready, const char *what, const char *logfile)
{
	char msg[PATH_MAX * 2 + 256], code = 1;
	int pfd[2];
	pid_t pid;
	ssize_t n;

	if (pipe(pfd) != 0) {
		perror("quorumfs: pipe");
		return 1;
	}
	pid = fork();
	if (pid < 0) {
		perror("quorumfs: fork");
		return 1;
	}
	if (pid > 0) {
		close(pfd[1]);
		if (read(pfd[0], &code, 1) == 1 && code == 0)
			return 0;
		n = read(pfd[0], msg, sizeof(msg) - 1);
		msg[n > 0 ? n : 0] = '\0';
		/* no "(see LOG)" when that log is what could not be opened */
		int nolog = n > 0 && strncmp(msg, "cannot open log file", 20) == 0;
		fprintf(stderr, "quorumfs: %s failed: %s%s%s%s\n", what, n > 0 ? msg : "daemon exited",
			nolog ? "" : " (see ", nolog ? "" : logfile, nolog ? "" : ")");
		/* the child still closes what it opened and holds DATA_DIR/lock:
		 * wait (at most 30 s) so that a mount run right after this one
		 * is not told "in use by another quorumfs" */
		for (int i = 0; i < 3000 && waitpid(pid, NULL, WNOHANG) == 0; i++)
			usleep(10000);
		return 1;
	}
	close(pfd[0]);
	setsid();
	ready->fd = pfd[1];
	if (chdir("/") != 0) {
		/* not fatal */
	}
	return -1;
}

/* Load the cluster file at path and its key file once, before the fork, to
 * refuse a bad one on the caller's stderr (the loader says which line or
 * which mode); id != 0: the file must also list node id; id 0 (a mount):
 * its nodes must span at least 3 AZs (placement).  The key is wiped
 * after.  0, or 1 once the reason is printed (after "quorumfs: " who). */
static int check_cluster_file(const char *path, uint32_t id, const char *who)
{
	struct qfs_cluster *cl = calloc(1, sizeof(*cl));
	int rc = cl ? qfs_cluster_load(path, cl) : -ENOMEM, missing = 0;

	if (!rc && id && !qfs_cluster_node(cl, id))
		missing = 1;
	if (!rc && !id && qfs_cluster_azs(cl) < QFS_CLUSTER_REPLICAS) /* a mount: placement */
		missing = 2;
	if (cl)
		memset(cl, 0, sizeof(*cl)); /* the key */
	free(cl);
	if (!rc && !missing)
		return 0;
	fprintf(stderr, "quorumfs: %scannot use the cluster file %s: %s\n", who, path,
		missing == 2 ? "its nodes are in fewer than 3 availability zones (a partition's "
		"3 replicas need 3 distinct AZs; doc/cluster.md)" :
		missing ? "no node of this id in it" : qfs_strerror(rc));
	return 1;
}

static int cmd_mount(int argc, char **argv)
{
	int foreground = 0, debug = 0, single = 0, opt, lockfd = -1;
	char logpath[PATH_MAX], logabs[PATH_MAX], data[PATH_MAX], mnt[PATH_MAX], nodedir[PATH_MAX];
	char msg[PATH_MAX * 2 + 256], urlbuf[PATH_MAX + 16];
	struct ready_ctx ready = { -1, NULL };
	struct mount_cfg m;
	pthread_t hup_th;
	int rc;
	struct scrub_wire sw = { NULL, NULL };

	memset(&m, 0, sizeof(m));
	m.sc.so.repair = 1; /* -o scrub_repair= defaults to on */
	m.ac.os.link_immutable = 1; /* -o archive_link= defaults to on (doc/compat.md) */
	m.ra_bytes = QFS_FS_READ_AHEAD_DEFAULT;
	qfs_avail_opts_default(&m.av);
	/* Two malloc arenas instead of eight per core: the daemon's threads
	 * (FUSE, one I/O thread per node, RocksDB's, the archiver) otherwise
	 * each keep the free pages of their own arena (doc/store.md "Memory"). */
	mallopt(M_ARENA_MAX, 2);
	/* Buffers of 1 MiB and more (write-back transactions, WAL batches,
	 * replication frames: up to 8 MiB each) are mmap'd and unmapped on
	 * free.  Left alone, glibc raises this threshold to the largest block
	 * freed, and those blocks then stay in the arenas. */
	mallopt(M_MMAP_THRESHOLD, 1 << 20);
	/* and that fixes the trim threshold at 128 KiB: each free of a 128 KiB
	 * chunk buffer at an arena's top gave its pages back, faulted in again
	 * by the next read.  The cell's periodic malloc_trim returns them. */
	mallopt(M_TRIM_THRESHOLD, 8 << 20);

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
			char *o = keep_opt(optarg), *save = NULL; /* options point into it */
			for (char *tok = strtok_r(o, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
				if (mount_opt(&m, tok) != 0)
					return 2;
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
	kernel_opts_text(&m);
	if (m.cluster[0]) {
		/* A router with no local replica: nothing to archive or scrub
		 * here (doc/cluster.md), and other mounts write the same
		 * tables, so no long kernel caches (close-to-open). */
		if (m.local_opt) {
			fprintf(stderr, "quorumfs: option %s: archive and scrub do not run on a "
				"cluster mount (-o cluster=); see doc/cluster.md\n", m.local_opt);
			return 2;
		}
		/* Splits on cluster mounts (every mount may try one, a claim in
		 * the meta group lets one win: doc/cluster.md section 6) are
		 * experimental: a listing through one mount was seen missing
		 * a name another mount had acknowledged, once in about 16
		 * runs of tests/integration/cluster_split.sh, cause not
		 * proven.  Off unless QFS_EXPERIMENTAL_CLUSTER_SPLITS=1. */
		const char *xs = getenv("QFS_EXPERIMENTAL_CLUSTER_SPLITS");
		if (!xs || strcmp(xs, "1") != 0) {
			if ((m.split_bytes_set && m.split.split_bytes) || m.split.split_ops > 0) {
				fprintf(stderr, "quorumfs: options split_bytes/split_ops: a cluster mount "
					"(-o cluster=) does not split partitions (experimental, off: "
					"see doc/cluster.md section 6)\n");
				return 2;
			}
			m.split_bytes_set = 1;
			m.split.split_bytes = 0;
		}
		/* Refuse a bad cluster or key file here, on the caller's stderr
		 * (the loader says which line or which mode). */
		if (check_cluster_file(m.cluster, 0, ""))
			return 1;
		m.co.cluster = m.cluster;
		m.ac.url = "off";
		m.sc.off = 1;
		m.cache_off = 1;
		m.cache_ms = 0;
	}

	/* Every check that can refuse the mount runs here, before the fork,
	 * and says why on this process's stderr: nothing of a refused mount
	 * goes to the log file (which belongs to the mount that runs). */
	if (check_mountpoint(argv[optind + 1], m.nonempty, mnt, msg, sizeof(msg)) ||
	    check_data_dir(argv[optind], mnt, data, msg, sizeof(msg)) ||
	    take_lock(data, &lockfd, msg, sizeof(msg), 10000, 0)) {
		fprintf(stderr, "quorumfs: %s\n", msg);
		return 1;
	}
	rc = check_format(data, 1, msg, sizeof(msg));
	if (!rc)
		rc = check_replicas(data, &m.co.nodes, msg, sizeof(msg));
	if (rc) {
		fprintf(stderr, "quorumfs: %s\n", msg);
		close(lockfd);
		return 1;
	}
	if (!m.logfile && !foreground) {
		snprintf(logpath, sizeof(logpath), "%s/quorumfs.log", data);
		m.logfile = logpath;
	}
	if (m.logfile && m.logfile[0] != '/') {
		/* the daemon changes to / */
		if (resolve_path(m.logfile, logabs) != 0) {
			fprintf(stderr, "quorumfs: log file %s: cannot resolve its path\n", m.logfile);
			close(lockfd);
			return 1;
		}
		m.logfile = logabs;
	}
	if (inside_mount("log file", m.logfile, mnt, msg, sizeof(msg)) ||
	    (m.ac.url && !strncmp(m.ac.url, "file://", 7) &&
	     inside_mount("archive directory", m.ac.url + 7, mnt, msg, sizeof(msg)))) {
		fprintf(stderr, "quorumfs: %s\n", msg);
		close(lockfd);
		return 1;
	}
	ready.mnt = mnt;

	if (!foreground) {
		/* fork before any thread exists; the parent waits for "mounted" */
		rc = daemonize(&ready, "mount", m.logfile);
		if (rc >= 0)
			return rc;
	}
	lock_note_pid(lockfd);
	if (m.logfile) {
		rc = qfs_log_open_file(m.logfile);
		if (rc) {
			snprintf(msg, sizeof(msg), "cannot open log file %s: %s", m.logfile, strerror(-rc));
			report_failure(&ready, msg);
			return 1;
		}
	}
	rc = hup_start(&hup_th);
	if (rc) {
		snprintf(msg, sizeof(msg), "cannot start the signal thread: %s", strerror(-rc));
		report_failure(&ready, msg);
		return 1;
	}

	snprintf(nodedir, sizeof(nodedir), "%s/nodes", data);
	m.co.dir = nodedir;
	m.co.wal_segment_bytes = m.ac.seal_bytes;
	m.co.wal_seal_age_ms = m.ac.seal_age_ms;
	m.co.pinned = cell_pinned;
	m.co.npinned = sizeof(cell_pinned) / sizeof(cell_pinned[0]);
	m.co.cold_start = 1; /* DATA/lock is ours: no earlier process runs a node */
	struct qfs_cell *cell = NULL;
	rc = qfs_cell_open(&m.co, &cell);
	if (rc) {
		snprintf(msg, sizeof(msg), "cannot open the storage nodes in %s: %s%s", nodedir, qfs_strerror(rc),
			 rc == -ENOSPC ? " (each node's store writes a few KiB at open: free space on that disk, "
					 "then mount again)" : "");
		report_failure(&ready, msg);
		goto err_hup;
	}
	if ((rc = qfs_route_attach(cell)) != 0) { /* leader routing of every proposal and read */
		snprintf(msg, sizeof(msg), "cannot start the router: %s", qfs_strerror(rc));
		report_failure(&ready, msg);
		goto err_cell;
	}
	struct qfs_router *router = NULL;
	rc = qfs_router_new(cell, getuid(), getgid(), &router);
	if (rc) {
		snprintf(msg, sizeof(msg), "cannot start the router: %s", qfs_strerror(rc));
		report_failure(&ready, msg);
		goto err_cell;
	}
	m.adm.eventual_reads = m.co.reads == QFS_CELL_READ_EVENTUAL; /* half a read unit */
	m.adm.nodes = qfs_cell_node_count(cell); /* a node bucket each */
	qfs_router_admit_config(router, &m.adm);
	if (!m.split_bytes_set)
		m.split.split_bytes = QFS_ROUTER_SPLIT_BYTES_DEFAULT;
	if (!m.readonly && (rc = qfs_router_split_config(router, &m.split)) != 0)
		QFS_LOG(QFS_LOG_ERR, "splits are off: cannot start their thread err=\"%s\"", qfs_strerror(rc));
	struct qfs_archive *archive = NULL;
	const char *url = arch_url(&m.ac, data, urlbuf, sizeof(urlbuf));
	if (strcmp(url, "off") != 0) {
		struct qfs_archive_opts ao = {
			.store = m.ac.os,
			.interval_ms = (uint32_t)m.ac.interval_ms,
			.snap_segments = (uint32_t)m.ac.snap_segments,
			.snap_bytes = m.ac.snap_bytes,
			.stuck_ms = 3 * m.ac.seal_age_ms, /* 0: the default (3 x 60 s) */
			.retention_ns = m.ac.retention_ns,
		};
		ao.store.url = url;
		ao.store.keep_free = qfs_cell_space_reserve(cell); /* link when short (issue 10) */
		if (!m.ac.url) {
			char adir[PATH_MAX];
			snprintf(adir, sizeof(adir), "%s/archive", data);
			if (mkdir(adir, 0700) != 0 && errno != EEXIST)
				QFS_LOG(QFS_LOG_WARN, "cannot create the default archive dir=%s err=\"%s\"", adir,
					strerror(errno));
		}
		rc = qfs_archive_start(cell, &ao, &archive);
		if (rc) {
			if (rc == -ENXIO && !strncmp(url, "file://", 7)) /* objstore/local.c: no such directory */
				snprintf(msg, sizeof(msg), "archive directory %s does not exist: create it (mkdir -p)",
					 url + 7);
			else
				snprintf(msg, sizeof(msg), "cannot start the archiver for %s: %s", url, qfs_strerror(rc));
			report_failure(&ready, msg);
			goto err_router;
		}
		/* rmdir of a table archives its last records first */
		qfs_router_set_drop_hook(router, qfs_archive_drop_hook, archive);
	}
	sw.a = archive;
	struct qfs_objstore_cfg scrub_os = m.ac.os;
	if (archive) {
		scrub_os.url = url;
		scrub_wire_archive(&m.sc.so, &scrub_os);
	}
	if (!m.sc.off) {
		rc = qfs_scrub_start(cell, &m.sc.so, &sw.s);
		if (rc)
			QFS_LOG(QFS_LOG_ERR, "cannot start the scrubber err=\"%s\" action=\"mounting without it\"",
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
		.replicas = m.co.nodes,
		.readonly = m.readonly,
		.kernel_opts = m.kopts,
		.cache_timeout_ms = m.cache_ms,
		.cache_off = m.cache_off,
		.read_ahead_bytes = m.ra_bytes,
		.avail = &m.av,
		.scrub_text = scrub_text,
		.alarms_text = alarms_text,
		.scrub_ctl = scrub_ctl,
		.scrub_arg = &sw,
		.space_reserve = qfs_cell_space_reserve(cell),
		.space_copies = space_copies(data, m.co.nodes ? m.co.nodes : 3, archive ? url : NULL,
					     !m.co.vlog_off),
	};
	rc = qfs_fs_run(router, &fo);
	if (rc) {
		snprintf(msg, sizeof(msg), "could not mount on %s: %s", mnt, qfs_strerror(rc));
		report_failure(&ready, msg);
	}
	sd_notify_text("STOPPING=1");
	qfs_scrub_stop(sw.s);
	qfs_archive_stop(archive);
err_router:
	qfs_router_free(router);
err_cell:
	qfs_cell_close(cell);
err_hup:
	hup_stop_thread(hup_th);
	close(lockfd);
	if (!rc)
		QFS_LOG(QFS_LOG_INFO, "stopped data_dir=%s", data);
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
	/* a daemon unmounted a moment ago and still closing is waited for,
	 * as by a mount (`umount M && quorumfs scrub DATA`) */
	int lockfd = -1;
	if (take_lock(data, &lockfd, msg, sizeof(msg), 10000, 0)) {
		fprintf(stderr, "quorumfs: %s: unmount it first\n", msg);
		return 2;
	}
	if ((rc = check_format(data, 0, msg, sizeof(msg))) || (rc = check_replicas(data, &co.nodes, msg, sizeof(msg)))) {
		fprintf(stderr, "quorumfs: data directory %s: %s\n", data, msg);
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
	co.pinned = cell_pinned;
	co.npinned = sizeof(cell_pinned) / sizeof(cell_pinned[0]);
	co.vlog_off = 1; /* FORMAT is left as it is: no pointer may appear */
	co.cold_start = 1; /* DATA/lock is ours */
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

/* `quorumfs node [-f] -o cluster=FILE,id=N[,log=FILE,loglevel=L,heal_after=S] NODE_DIR`:
 * one storage node as a process (node/cluster.h, doc/cluster.md).  Without
 * -f it daemonizes once it listens (the parent exits 0 then, or 1 with the
 * reason); SIGTERM or SIGINT stops it cleanly (the store made durable). */
static int cmd_node(int argc, char **argv)
{
	char dir[PATH_MAX], cluster[PATH_MAX] = "", logpath[PATH_MAX], msg[PATH_MAX + 256];
	const char *logfile = NULL;
	struct qfs_node_server_opts so = { .id = 0, .heal_after_ms = 5000 }; /* heal_after default 5 s */
	struct qfs_node_server *srv = NULL;
	struct ready_ctx ready = { -1, NULL };
	int foreground = 0, opt, lockfd = -1, rc, sig;
	sigset_t set;

	optind = 1;
	while ((opt = getopt(argc, argv, "fo:h")) != -1) {
		if (opt == 'f') {
			foreground = 1;
		} else if (opt == 'o') {
			char *o = keep_opt(optarg), *save = NULL;

			for (char *tok = strtok_r(o, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
				char *end;

				if (!strncmp(tok, "cluster=", 8) && tok[8] && !resolve_path(tok + 8, cluster)) {
					continue;
				} else if (!strncmp(tok, "id=", 3)) {
					unsigned long v = strtoul(tok + 3, &end, 10);

					if (!*end && v >= 1 && v < 32768) {
						so.id = (uint32_t)v;
						continue;
					}
				} else if (!strncmp(tok, "log=", 4) && tok[4]) {
					logfile = tok + 4;
					continue;
				} else if (!strncmp(tok, "heal_after=", 11) && tok[11]) {
					double v = strtod(tok + 11, &end); /* seconds; 0: no log replicas */

					if (!*end && v >= 0 && v <= 3600) {
						so.heal_after_ms = (uint32_t)(v * 1000 + 0.5);
						continue;
					}
				} else if (!strncmp(tok, "loglevel=", 9) && qfs_log_set_level(tok + 9) == 0) {
					continue;
				} else if (!strncmp(tok, "seal_size=", 10) && !parse_size(tok + 10, &so.wal_segment_bytes) &&
					   so.wal_segment_bytes >= 4096) {
					continue;
				}
				fprintf(stderr, "quorumfs: node: bad option '%s' (want cluster=FILE, "
					"id=1..32767, log=FILE, loglevel=LEVEL, heal_after=0..3600, "
					"seal_size=4096..)\n", tok);
				return 2;
			}
		} else {
			usage(opt == 'h' ? stdout : stderr);
			return opt == 'h' ? 0 : 2;
		}
	}
	if (argc - optind != 1 || !cluster[0] || !so.id) {
		fprintf(stderr, "quorumfs: node: want -o cluster=FILE,id=N NODE_DIR\n");
		return 2;
	}
	/* The cluster and key files, checked on the caller's stderr. */
	if (check_cluster_file(cluster, so.id, "node: "))
		return 1;
	if (mkdir(argv[optind], 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "quorumfs: node: cannot create %s: %s\n", argv[optind], strerror(errno));
		return 1;
	}
	if (resolve_path(argv[optind], dir) != 0) {
		fprintf(stderr, "quorumfs: node: cannot resolve %s\n", argv[optind]);
		return 1;
	}
	if (take_lock(dir, &lockfd, msg, sizeof(msg), 10000, 1)) {
		fprintf(stderr, "quorumfs: node: %s\n", msg);
		return 1;
	}
	if (!logfile && !foreground) {
		snprintf(logpath, sizeof(logpath), "%s/quorumfs-node.log", dir);
		logfile = logpath;
	} else if (logfile && logfile[0] != '/' && resolve_path(logfile, logpath) == 0) {
		logfile = logpath;
	}
	if (!foreground) {
		rc = daemonize(&ready, "node", logfile);
		if (rc >= 0)
			return rc;
	}
	lock_note_pid(lockfd);
	if (logfile && (rc = qfs_log_open_file(logfile))) {
		snprintf(msg, sizeof(msg), "cannot open log file %s: %s", logfile, strerror(-rc));
		report_failure(&ready, msg);
		return 1;
	}
	/* Signals go to sigwait below, never to the server's threads. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	so.dir = dir;
	so.cluster = cluster;
	rc = qfs_node_server_start(&so, &srv);
	if (rc) {
		snprintf(msg, sizeof(msg), "cannot start node %u of %s in %s: %s", so.id, cluster, dir,
			 qfs_strerror(rc));
		report_failure(&ready, msg);
		return 1;
	}
	if (ready.fd >= 0) {
		char code = 0;

		if (write(ready.fd, &code, 1) != 1) {
			/* the parent is gone; carry on */
		}
		close(ready.fd);
	}
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			qfs_log_reopen();
			continue;
		}
		break;
	}
	QFS_LOG(QFS_LOG_INFO, "node stopping id=%u signal=%d", so.id, sig);
	qfs_node_server_stop(srv);
	close(lockfd);
	return 0;
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
	if (!strcmp(argv[1], "bench"))
		return qfs_cmd_bench(argc - 1, argv + 1);
	if (!strcmp(argv[1], "node"))
		return cmd_node(argc - 1, argv + 1);
	if (!strcmp(argv[1], "member"))
		return qfs_cmd_member(argc - 1, argv + 1);
	/* `quorumfs DATA_DIR MOUNTPOINT [-o OPTIONS]`: what mount.fuse3 runs
	 * for type fuse.quorumfs or "quorumfs#DATA_DIR" (a path with a slash,
	 * so that a mistyped command is not taken for a data directory). */
	if (argc >= 3 && argv[1][0] != '-' && strchr(argv[1], '/'))
		return cmd_mount(argc, argv);
	fprintf(stderr, "quorumfs: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
