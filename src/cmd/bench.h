/*
 * bench.h - `quorumfs bench`: the workload benchmark of a mounted directory
 * (src/cmd/bench.c; doc/perf.md, quorumfs(8)).
 */
#ifndef QFS_CMD_BENCH_H
#define QFS_CMD_BENCH_H

/* Run `quorumfs bench MOUNTPOINT [--against DIR] [options]`; argv[0] is
 * "bench".  Creates a fresh directory under MOUNTPOINT (and under DIR),
 * runs the workloads there, prints the table on stdout, removes what it
 * created.  Uses only libc; needs no mount of its own, so it measures any
 * directory.  Returns the exit status: 0 when every workload ran, 1 on a
 * failed system call (reported on stderr with the path and errno), 2 on a
 * usage error. */
int qfs_cmd_bench(int argc, char **argv);

#endif
