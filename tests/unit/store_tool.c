/*
 * store_tool.c - writes into one node's RocksDB behind the log's back, for
 * tests/integration/scrub.sh (not installed).  The daemon must not be
 * running on that data directory.
 *
 *   store_tool DIR list GROUP               "KEYHEX VALUE_LEN" per item
 *   store_tool DIR put GROUP KEYHEX VALHEX  write one item as is
 *   store_tool DIR flip GROUP KEYHEX        invert the last byte of a value
 *
 * DIR is the RocksDB directory (DATA/nodes/nN/store), GROUP 16 hex digits.
 * Exit 0, 1 on error (message on stderr).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/qfs.h"
#include "store/store.h"

static int unhex(const char *h, uint8_t **out, size_t *len)
{
	size_t n = strlen(h) / 2;
	uint8_t *p = malloc(n ? n : 1);

	if (!p || strlen(h) % 2)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		if (sscanf(h + 2 * i, "%2x", &v) != 1)
			return -EINVAL;
		p[i] = (uint8_t)v;
	}
	*out = p;
	*len = n;
	return 0;
}

static int list_cb(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, void *arg)
{
	(void)v;
	(void)arg;
	for (size_t i = 0; i < kl; i++)
		printf("%02x", k[i]);
	printf(" %zu\n", vl);
	return 0;
}

int main(int argc, char **argv)
{
	struct qfs_store *s;
	qfs_group_t g;
	uint8_t *k = NULL, *v = NULL;
	size_t kl = 0, vl = 0;
	int rc;

	if (argc < 4) {
		fprintf(stderr, "usage: store_tool DIR list|put|flip GROUP [KEYHEX [VALHEX]]\n");
		return 1;
	}
	g = strtoull(argv[3], NULL, 16);
	if ((rc = qfs_store_open(argv[1], &s))) {
		fprintf(stderr, "store_tool: open %s: %s\n", argv[1], qfs_strerror(rc));
		return 1;
	}
	if (!strcmp(argv[2], "list")) {
		rc = qfs_store_scan(s, g, NULL, 0, NULL, 0, list_cb, NULL);
	} else if (!strcmp(argv[2], "put") && argc == 6) {
		rc = unhex(argv[4], &k, &kl);
		if (!rc)
			rc = unhex(argv[5], &v, &vl);
		if (!rc)
			rc = qfs_store_load_item(s, g, k, kl, v, vl);
	} else if (!strcmp(argv[2], "flip") && argc == 5) {
		void *val = NULL;
		rc = unhex(argv[4], &k, &kl);
		if (!rc)
			rc = qfs_store_get(s, g, k, kl, &val, &vl);
		if (!rc && vl == 0)
			rc = -EINVAL;
		if (!rc) {
			((uint8_t *)val)[vl - 1] ^= 0xff;
			rc = qfs_store_load_item(s, g, k, kl, val, vl);
		}
		free(val);
	} else {
		rc = -EINVAL;
	}
	if (!rc)
		rc = qfs_store_sync(s);
	qfs_store_close(s);
	free(k);
	free(v);
	if (rc) {
		fprintf(stderr, "store_tool: %s: %s\n", argv[2], qfs_strerror(rc));
		return 1;
	}
	return 0;
}
