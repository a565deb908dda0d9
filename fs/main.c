/*
 * main.c - the quorumfs program: `mount`, `status`, `--help`, `--version`.
 *
 * `quorumfs mount DATA_DIR MOUNTPOINT` runs the embedded default: the
 * storage node(s), the router and the FUSE frontend in one process.  Without
 * -f it forks before any thread exists, and the parent returns only once the
 * child reports the filesystem mounted (or why it could not), so the command
 * ends with a usable mount.  See doc/quorumfs.8.
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

#include "common/log.h"
#include "fs/fs.h"
#include "node/node.h"
#include "router/router.h"

#define DATA_FORMAT "quorumfs-data 1\n"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: quorumfs mount [-f] [-d] [-o OPTIONS] DATA_DIR MOUNTPOINT\n"
		"       quorumfs status MOUNTPOINT\n"
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
		"status  print MOUNTPOINT/.quorumfs/status\n"
		"\n"
		"See quorumfs(8).\n");
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
	if (strcmp(buf, DATA_FORMAT) != 0) {
		QFS_LOG(QFS_LOG_ERR, "data directory has an unknown format file=%s content=\"%.*s\"", path,
			(int)strcspn(buf, "\n"), buf);
		return QFS_EFORMAT;
	}
	return 0;
}

struct ready_ctx {
	int fd;            /* pipe to the waiting parent, -1 in the foreground */
	const char *log;   /* log file for the background */
};

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
	char msg[512];
	struct ready_ctx ready = { -1, NULL };

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
			char *o = strdup(optarg), *save = NULL;
			for (char *tok = strtok_r(o, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
				if (strncmp(tok, "log=", 4) == 0) {
					logfile = strdup(tok + 4);
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
			free(o);
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
	snprintf(nodedir, sizeof(nodedir), "%s/nodes/n1", data);
	rc = mkdir_p(nodedir, 0700);
	struct qfs_node_opts no = { .dir = nodedir, .id = 1, .az = "a" };
	struct qfs_node *node = NULL;
	if (rc == 0)
		rc = qfs_node_open(&no, &node);
	if (rc) {
		snprintf(msg, sizeof(msg), "cannot open storage node %s: %s", nodedir, qfs_strerror(rc));
		QFS_LOG(QFS_LOG_ERR, "%s", msg);
		fprintf(stderr, "quorumfs: %s\n", msg);
		report_failure(&ready, msg);
		return 1;
	}
	struct qfs_router *router = NULL;
	rc = qfs_router_new(node, getuid(), getgid(), &router);
	if (rc) {
		snprintf(msg, sizeof(msg), "cannot start the router: %s", qfs_strerror(rc));
		QFS_LOG(QFS_LOG_ERR, "%s", msg);
		fprintf(stderr, "quorumfs: %s\n", msg);
		report_failure(&ready, msg);
		qfs_node_close(node);
		return 1;
	}
	struct qfs_fs_opts fo = {
		.mountpoint = mnt,
		.data_dir = data,
		.foreground = foreground,
		.debug = debug && foreground,
		.single_thread = single,
		.ready = on_ready,
		.ready_arg = &ready,
	};
	rc = qfs_fs_run(router, &fo);
	if (rc)
		report_failure(&ready, "mount failed; see the log");
	qfs_router_free(router);
	qfs_node_close(node);
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
	fprintf(stderr, "quorumfs: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
