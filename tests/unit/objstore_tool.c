/*
 * objstore_tool.c - command-line driver of src/objstore for the integration
 * test tests/integration/objstore_s3.sh (not installed).
 *
 *   objstore_tool [options] put KEY FILE|-      (whole file in memory)
 *                           put_file KEY PATH   (streamed, multipart above
 *                                                the threshold)
 *                           get KEY [OFF LEN]   (bytes to stdout)
 *                           get_file KEY PATH
 *                           head KEY            (size= crc32c= has_crc= mtime=)
 *                           delete KEY
 *                           list [PREFIX]       ("KEY SIZE" lines)
 * Options (or environment): --url (QFS_OS_URL), --endpoint (QFS_OS_ENDPOINT),
 * --region, --vhost, --credentials FILE, --ca FILE, --threshold BYTES,
 * --part-size BYTES, --retries N (-1: none), --backoff-ms MS, --timeout-ms MS,
 * --max-keys N.  S3 credentials come from AWS_* variables unless
 * --credentials is given.
 *
 * On failure prints "objstore_tool: err=NAME (message): last_error" on stderr
 * and exits 2 ENOENT, 3 ENXIO, 4 EACCES, 5 QFS_ECORRUPT, 6 ECONNREFUSED /
 * ETIMEDOUT / EHOSTUNREACH, 7 EINVAL, 1 anything else.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "objstore/objstore.h"

static const char *err_name(int rc)
{
	switch (rc) {
	case -ENOENT: return "ENOENT";
	case -ENXIO: return "ENXIO";
	case -EACCES: return "EACCES";
	case QFS_ECORRUPT: return "QFS_ECORRUPT";
	case -ECONNREFUSED: return "ECONNREFUSED";
	case -ETIMEDOUT: return "ETIMEDOUT";
	case -EHOSTUNREACH: return "EHOSTUNREACH";
	case -EINVAL: return "EINVAL";
	case -EIO: return "EIO";
	default: return "OTHER";
	}
}

static int exit_code(int rc)
{
	switch (rc) {
	case -ENOENT: return 2;
	case -ENXIO: return 3;
	case -EACCES: return 4;
	case QFS_ECORRUPT: return 5;
	case -ECONNREFUSED:
	case -ETIMEDOUT:
	case -EHOSTUNREACH: return 6;
	case -EINVAL: return 7;
	default: return 1;
	}
}

static int print_key(const char *key, uint64_t size, void *arg)
{
	(void)arg;
	printf("%s %llu\n", key, (unsigned long long)size);
	return 0;
}

static int read_all(FILE *f, char **out, size_t *len)
{
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap);

	if (!buf)
		return -ENOMEM;
	for (;;) {
		size_t r;

		if (n == cap) {
			char *nb = realloc(buf, cap * 2);

			if (!nb) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
			cap *= 2;
		}
		r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (r == 0)
			break;
	}
	if (ferror(f)) {
		free(buf);
		return -EIO;
	}
	*out = buf;
	*len = n;
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: objstore_tool [--url URL] [--endpoint URL] [--region R] [--vhost] [--credentials F]\n"
			"  [--ca F] [--threshold N] [--part-size N] [--retries N] [--backoff-ms N] [--timeout-ms N]\n"
			"  [--max-keys N] put|put_file|get|get_file|head|delete|list ARGS...\n");
	exit(7);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "url", required_argument, NULL, 'u' },        { "endpoint", required_argument, NULL, 'e' },
		{ "region", required_argument, NULL, 'r' },     { "vhost", no_argument, NULL, 'v' },
		{ "credentials", required_argument, NULL, 'c' }, { "ca", required_argument, NULL, 'a' },
		{ "threshold", required_argument, NULL, 't' },  { "part-size", required_argument, NULL, 'p' },
		{ "retries", required_argument, NULL, 'R' },    { "backoff-ms", required_argument, NULL, 'b' },
		{ "timeout-ms", required_argument, NULL, 'T' }, { "max-keys", required_argument, NULL, 'k' },
		{ "debug", no_argument, NULL, 'd' },            { NULL, 0, NULL, 0 },
	};
	struct qfs_objstore_cfg cfg = { .url = getenv("QFS_OS_URL"), .endpoint = getenv("QFS_OS_ENDPOINT"),
					.path_style = 1 };
	struct qfs_objstore *os;
	const char *cmd;
	int c, rc;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'u': cfg.url = optarg; break;
		case 'e': cfg.endpoint = optarg; break;
		case 'r': cfg.region = optarg; break;
		case 'v': cfg.path_style = 0; break;
		case 'c': cfg.credentials = optarg; break;
		case 'a': cfg.ca_file = optarg; break;
		case 't': cfg.multipart_threshold = strtoull(optarg, NULL, 0); break;
		case 'p': cfg.part_size = strtoull(optarg, NULL, 0); break;
		case 'R': cfg.max_retries = atoi(optarg); break;
		case 'b': cfg.backoff_ms = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'T': cfg.timeout_ms = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'k': cfg.list_max_keys = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'd': qfs_log_level = QFS_LOG_DEBUG; break;
		default: usage();
		}
	}
	if (optind >= argc || !cfg.url)
		usage();
	cmd = argv[optind++];
	rc = qfs_objstore_open(&cfg, &os);
	if (rc < 0) {
		fprintf(stderr, "objstore_tool: err=%s (%s): open failed\n", err_name(rc), qfs_strerror(rc));
		return exit_code(rc);
	}
#define NARGS(lo, hi)                          \
	do {                                   \
		if (argc - optind < (lo) || argc - optind > (hi)) \
			usage();               \
	} while (0)
	if (strcmp(cmd, "put") == 0) {
		char *buf = NULL;
		size_t len = 0;
		FILE *f;

		NARGS(2, 2);
		f = strcmp(argv[optind + 1], "-") == 0 ? stdin : fopen(argv[optind + 1], "rb");
		rc = f ? read_all(f, &buf, &len) : -errno;
		if (f && f != stdin)
			fclose(f);
		if (rc == 0)
			rc = qfs_objstore_put(os, argv[optind], buf, len);
		free(buf);
	} else if (strcmp(cmd, "put_file") == 0) {
		NARGS(2, 2);
		rc = qfs_objstore_put_file(os, argv[optind], argv[optind + 1]);
	} else if (strcmp(cmd, "get") == 0) {
		void *data;
		size_t len;

		NARGS(1, 3);
		rc = qfs_objstore_get(os, argv[optind], argc - optind > 1 ? strtoull(argv[optind + 1], NULL, 0) : 0,
				      argc - optind > 2 ? strtoull(argv[optind + 2], NULL, 0) : 0, &data, &len);
		if (rc == 0) {
			if (fwrite(data, 1, len, stdout) != len)
				rc = -EIO;
			free(data);
		}
	} else if (strcmp(cmd, "get_file") == 0) {
		NARGS(2, 2);
		rc = qfs_objstore_get_file(os, argv[optind], argv[optind + 1]);
	} else if (strcmp(cmd, "head") == 0) {
		struct qfs_obj_info info;

		NARGS(1, 1);
		rc = qfs_objstore_head(os, argv[optind], &info);
		if (rc == 0)
			printf("size=%llu crc32c=%08x has_crc=%d mtime=%lld\n", (unsigned long long)info.size,
			       info.crc32c, info.has_crc, (long long)info.mtime);
	} else if (strcmp(cmd, "delete") == 0) {
		NARGS(1, 1);
		rc = qfs_objstore_delete(os, argv[optind]);
	} else if (strcmp(cmd, "list") == 0) {
		NARGS(0, 1);
		rc = qfs_objstore_list(os, argc > optind ? argv[optind] : "", print_key, NULL);
	} else {
		usage();
	}
	if (rc < 0)
		fprintf(stderr, "objstore_tool: err=%s (%s): %s\n", err_name(rc), qfs_strerror(rc),
			qfs_objstore_last_error(os));
	qfs_objstore_close(os);
	if (fflush(stdout) != 0 && rc == 0)
		rc = -EIO;
	return rc < 0 ? exit_code(rc) : 0;
}
