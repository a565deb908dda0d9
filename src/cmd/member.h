/*
 * member.h - `quorumfs member`: membership changes of a cluster by the
 * operator (src/cmd/member.c; doc/cluster.md "Membership", quorumfs(8)).
 */
#ifndef QFS_CMD_MEMBER_H
#define QFS_CMD_MEMBER_H

/* Run `quorumfs member -o cluster=FILE add GROUP NODE | remove GROUP NODE
 * | replace OLD NEW [GROUP]`; argv[0] is "member".  Each step is logged on
 * stderr, each group's members after the change printed on stdout.
 * Returns the exit status: 0 when every group changed, 1 when one failed
 * (its reason on stderr; what was done stays done, a second run goes
 * on), 2 on a usage error. */
int qfs_cmd_member(int argc, char **argv);

#endif
