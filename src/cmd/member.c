/*
 * member.c - `quorumfs member`: the operator's membership changes of a
 * cluster (doc/cluster.md "Membership", quorumfs(8)).  It connects to the
 * cluster as a router (node/cluster.h), moves one replica at a time
 * through the log with qfs_rcell_member_change, and records the new
 * replica nodes in the partition map (qfs_meta_set_nodes).  One line per
 * group on stdout: `group G members A,B,C`, or the error on stderr.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/member.h"
#include "common/glist.h"
#include "common/log.h"
#include "meta/meta.h"
#include "node/cell.h"
#include "node/cluster.h"
#include "router/route.h"

#define STEP_TIMEOUT_MS 120000u /* one group's change, catch-up included */

static int usage(void)
{
	fprintf(stderr, "usage: quorumfs member -o cluster=FILE add GROUP NODE\n"
		"       quorumfs member -o cluster=FILE remove GROUP NODE\n"
		"       quorumfs member -o cluster=FILE replace OLD NEW [GROUP]\n"
		"GROUP: 16 hex digits (.quorumfs/partitions); NODE, OLD, NEW: node ids of FILE.\n"
		"replace without GROUP moves every replica of node OLD to node NEW.\n");
	return 2;
}

static int parse_id(const char *s, uint32_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v == 0 || v >= QFS_RPC_ROUTER_MIN)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

static int parse_group(const char *s, qfs_group_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 16);
	if (errno || end == s || *end || v == 0)
		return -EINVAL;
	*out = v;
	return 0;
}

/* Change one group, record it in the map, print the outcome.  0 or 1.
 * map_only: a group that only the partition map still places on old (a
 * replace that stopped after its removal): -EINVAL (old not a member and
 * nothing to finish) leaves it alone with a note, not a failure. */
static int one(struct qfs_cell *c, struct qfs_meta *m, qfs_group_t g, enum qfs_member_op op,
	       uint32_t old, uint32_t nw, int map_only)
{
	uint32_t ids[QFS_CLUSTER_MAX_NODES], n = 0;
	int rc;

	rc = qfs_rcell_member_change(qfs_cell_rcell(c), g, op, old, nw, STEP_TIMEOUT_MS, ids, &n);
	if (rc == 0 && n <= QFS_META_REPLICAS) {
		for (int tries = 0; tries < 3; tries++) {
			rc = qfs_meta_set_nodes(m, g, ids, n);
			if (rc != QFS_ECONFLICT)
				break;
		}
		if (rc)
			fprintf(stderr, "quorumfs: member: group %016llx moved, but the partition map "
				"was not updated: %s (routers ask the nodes)\n", (unsigned long long)g,
				qfs_strerror(rc));
		rc = 0;
	}
	if (rc == -EINVAL && map_only) {
		fprintf(stderr, "quorumfs: member: group %016llx: the partition map names node %u "
			"but its members do not, nothing to finish: left alone\n",
			(unsigned long long)g, old);
		return 0;
	}
	if (rc) {
		fprintf(stderr, "quorumfs: member: group %016llx: %s\n", (unsigned long long)g,
			qfs_strerror(rc));
		return 1;
	}
	printf("group %016llx members", (unsigned long long)g);
	for (uint32_t i = 0; i < n; i++)
		printf("%c%u", i ? ',' : ' ', ids[i]);
	printf("\n");
	fflush(stdout);
	return 0;
}

/* See member.h. */
int qfs_cmd_member(int argc, char **argv)
{
	char cluster[PATH_MAX] = "";
	struct qfs_cell_opts co;
	struct qfs_cell *c = NULL;
	struct qfs_meta *m = NULL;
	enum qfs_member_op op;
	qfs_group_t g = 0;
	uint32_t old = 0, nw = 0;
	int opt, rc, failed = 0;

	optind = 1;
	while ((opt = getopt(argc, argv, "+o:h")) != -1) {
		if (opt != 'o' || strncmp(optarg, "cluster=", 8) || !realpath(optarg + 8, cluster))
			return usage();
	}
	argc -= optind;
	argv += optind;
	if (!cluster[0] || argc < 3)
		return usage();
	if (!strcmp(argv[0], "add") && argc == 3) {
		op = QFS_MEMBER_ADD;
		if (parse_group(argv[1], &g) || parse_id(argv[2], &nw))
			return usage();
	} else if (!strcmp(argv[0], "remove") && argc == 3) {
		op = QFS_MEMBER_REMOVE;
		if (parse_group(argv[1], &g) || parse_id(argv[2], &old))
			return usage();
	} else if (!strcmp(argv[0], "replace") && (argc == 3 || argc == 4)) {
		op = QFS_MEMBER_REPLACE;
		if (parse_id(argv[1], &old) || parse_id(argv[2], &nw) ||
		    (argc == 4 && parse_group(argv[3], &g)))
			return usage();
	} else {
		return usage();
	}
	if (qfs_log_level > QFS_LOG_INFO)
		qfs_log_level = QFS_LOG_INFO; /* each step on stderr */
	memset(&co, 0, sizeof(co));
	co.cluster = cluster;
	co.reads = QFS_CELL_READ_STRONG;
	rc = qfs_cell_open(&co, &c);
	if (rc == 0)
		rc = qfs_route_attach(c); /* leader routing of the meta reads and writes */
	if (rc == 0)
		rc = qfs_meta_open(c, &m);
	if (rc) {
		fprintf(stderr, "quorumfs: member: cannot reach the cluster of %s: %s\n", cluster,
			qfs_strerror(rc));
		qfs_cell_close(c);
		return 1;
	}
	if (g) {
		failed = one(c, m, g, op, old, nw, 0);
	} else {
		struct qfs_glist gl, mg;

		/* the members files name old's groups; a group whose earlier
		 * replace of old stopped after the removal (members without
		 * old or new) is named only by the map, which records the
		 * nodes once a change is whole: both, so a rerun finishes it */
		memset(&gl, 0, sizeof(gl));
		memset(&mg, 0, sizeof(mg));
		if (qfs_rcell_groups_of(qfs_cell_rcell(c), old, &gl) != 0 ||
		    qfs_meta_groups_on(m, old, &mg) != 0) {
			fprintf(stderr, "quorumfs: member: cannot list the groups of node %u\n", old);
			failed = 1;
		} else if (!gl.n && !mg.n) {
			fprintf(stderr, "quorumfs: member: node %u is a member of no group\n", old);
		}
		for (size_t i = 0; i < gl.n; i++)
			failed |= one(c, m, gl.v[i], op, old, nw, 0);
		for (size_t i = 0; i < mg.n; i++)
			if (!qfs_glist_has(&gl, mg.v[i]))
				failed |= one(c, m, mg.v[i], op, old, nw, 1);
		qfs_glist_free(&mg);
		qfs_glist_free(&gl);
	}
	qfs_meta_free(m);
	qfs_cell_close(c);
	return failed;
}
