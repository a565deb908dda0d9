/* tests/bench/syncpar.c - the cost of N concurrent 4 KiB write+fdatasync
 * calls on one disk: the physical floor of a quorum round whose replicas
 * share that disk.  A benchmark helper, not part of quorumfs (built by
 * tests/bench/vs_passthrough.sh with the system's cc).
 *
 *   syncpar DIR THREADS ROUNDS
 *
 * Each of THREADS threads owns a file of DIR, preallocated (ROUNDS x 4 KiB
 * of random bytes written and fdatasync'd before the clock starts, so that
 * a round's fdatasync flushes data only, not a size change, like a WAL
 * segment that is preallocated).  Per round every thread pwrites 4 KiB of
 * random bytes at its next offset and fdatasyncs; a barrier ends the round,
 * so a round lasts as long as its slowest sync.  Prints one line:
 *   threads N rounds R round_us MEAN first_us MEAN
 * round_us: the mean wall time of a round (the barrier to barrier);
 * first_us: the mean time from a round's start to the end of its first
 * finished sync, and second_us to the second (what a leader waiting for
 * its own sync and one of two followers' waits for: 2 of 3), both per
 * round.  The files are unlinked as soon as they are open (nothing is left
 * behind). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BLK 4096
#define MAXT 8

static int nthr, nround;
static pthread_barrier_t bar;
static int fds[MAXT];
static double t_start[1];
static _Atomic int done_cnt;
static double sum_first, sum_second;
static double t_done[MAXT];

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void fill(char *b)
{
	for (int i = 0; i < BLK; i++)
		b[i] = (char)(rand() & 0xff);
}

static void *run(void *arg)
{
	int id = (int)(long)arg;
	char buf[BLK];
	fill(buf);
	for (int r = 0; r < nround; r++) {
		pthread_barrier_wait(&bar);
		buf[0] = (char)r;
		if (pwrite(fds[id], buf, BLK, (off_t)r * BLK) != BLK || fdatasync(fds[id])) {
			perror("syncpar: pwrite/fdatasync");
			exit(1);
		}
		int k = atomic_fetch_add(&done_cnt, 1);
		t_done[k] = now_us();
		pthread_barrier_wait(&bar);
		if (id == 0) { /* between the two barriers: the others wait */
			sum_first += t_done[0] - t_start[0];
			if (nthr > 1)
				sum_second += t_done[1] - t_start[0];
			atomic_store(&done_cnt, 0);
			t_start[0] = now_us();
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 4 || (nthr = atoi(argv[2])) < 1 || nthr > MAXT || (nround = atoi(argv[3])) < 1) {
		fprintf(stderr, "usage: syncpar DIR THREADS(1-%d) ROUNDS\n", MAXT);
		return 2;
	}
	char path[4096], buf[BLK];
	srand((unsigned)getpid());
	for (int i = 0; i < nthr; i++) {
		snprintf(path, sizeof path, "%s/syncpar.%d", argv[1], i);
		fds[i] = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
		if (fds[i] < 0) {
			fprintf(stderr, "syncpar: %s: %s\n", path, strerror(errno));
			return 1;
		}
		unlink(path);
		for (int r = 0; r < nround; r++) {
			fill(buf);
			if (write(fds[i], buf, BLK) != BLK) {
				perror("syncpar: write");
				return 1;
			}
		}
		if (fsync(fds[i])) {
			perror("syncpar: fsync");
			return 1;
		}
	}
	pthread_barrier_init(&bar, NULL, (unsigned)nthr);
	pthread_t th[MAXT];
	double t0 = now_us();
	t_start[0] = t0;
	for (int i = 0; i < nthr; i++)
		pthread_create(&th[i], NULL, run, (void *)(long)i);
	for (int i = 0; i < nthr; i++)
		pthread_join(th[i], NULL);
	double t1 = now_us();
	printf("threads %d rounds %d round_us %.1f first_us %.1f second_us %.1f\n", nthr, nround,
	       (t1 - t0) / nround, sum_first / nround, nthr > 1 ? sum_second / nround : 0.0);
	return 0;
}
