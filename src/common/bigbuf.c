/*
 * bigbuf.c - the pool of large write-path buffers (contract and bounds:
 * bigbuf.h).  A fixed table of QFS_BIGBUF_KEEP slots under one mutex;
 * large frees happen after the mutex is dropped.
 *
 * Under AddressSanitizer a held buffer is poisoned from its put to the get
 * that hands it out again (or its free): a caller that touches a buffer
 * after giving it back (a frame read after its send, a WAL payload read
 * after the window went back) is reported as it would be after a free(),
 * which the pool otherwise hides.
 */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/bigbuf.h"
#include "common/clock.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define HELD_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define HELD_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define HELD_POISON(p, n) ((void)(p), (void)(n))
#define HELD_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

struct slot {
	void *p;          /* NULL: empty */
	size_t cap;       /* bytes */
	uint64_t put_ms;  /* monotonic ms of the put that filed it */
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct slot slots[QFS_BIGBUF_KEEP]; /* mu */
static struct qfs_bigbuf_stats st;         /* mu (held, held_bytes kept live) */

/* The bytes bound of the held buffers: QFS_BIGBUF_KEEP_BYTES less what
 * callers keep lent (qfs_bigbuf_lend); mu held. */
static uint64_t held_bound(void)
{
	return st.lent_bytes >= QFS_BIGBUF_KEEP_BYTES ? 0 : QFS_BIGBUF_KEEP_BYTES - st.lent_bytes;
}

static size_t round_cap(size_t size)
{
	return (size + QFS_BIGBUF_ROUND - 1) / QFS_BIGBUF_ROUND * QFS_BIGBUF_ROUND;
}

/* Move the held buffers unused since before now - idle_ms to out[] (at
 * most QFS_BIGBUF_KEEP); mu held.  Returns how many.  (They stay poisoned
 * under ASan: free() does not look at the bytes.) */
static unsigned take_idle(uint64_t now, uint32_t idle_ms, void **out)
{
	unsigned n = 0;

	for (unsigned i = 0; i < QFS_BIGBUF_KEEP; i++) {
		struct slot *s = &slots[i];

		if (!s->p || (idle_ms && now - s->put_ms < idle_ms))
			continue;
		out[n++] = s->p;
		st.held--;
		st.held_bytes -= s->cap;
		st.idle_frees++;
		s->p = NULL;
	}
	return n;
}

static void free_all(void **v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		free(v[i]);
}

/* See bigbuf.h. */
void *qfs_bigbuf_get(size_t size, size_t *cap)
{
	void *stale[QFS_BIGBUF_KEEP], *p = NULL;
	struct slot *best = NULL;
	size_t c;
	unsigned n;

	if (size < QFS_BIGBUF_MIN) {
		p = malloc(size ? size : 1);
		if (p)
			*cap = size;
		return p;
	}
	if (size > SIZE_MAX - (QFS_BIGBUF_ROUND - 1))
		return NULL; /* no such buffer: round_cap would wrap to 0 and
			      * hand out any held one */
	c = round_cap(size);
	pthread_mutex_lock(&mu);
	for (unsigned i = 0; i < QFS_BIGBUF_KEEP; i++)
		if (slots[i].p && slots[i].cap >= c && (!best || slots[i].cap < best->cap))
			best = &slots[i];
	if (best) {
		p = best->p;
		c = best->cap;
		best->p = NULL;
		st.held--;
		st.held_bytes -= c;
		st.hits++;
		HELD_UNPOISON(p, c);
	} else {
		st.misses++;
	}
	n = take_idle(qfs_clock_mono_ms(), QFS_BIGBUF_IDLE_MS, stale);
	pthread_mutex_unlock(&mu);
	free_all(stale, n);
	if (!p)
		p = malloc(c);
	if (p)
		*cap = c;
	return p;
}

/* See bigbuf.h. */
void qfs_bigbuf_put(void *p, size_t cap)
{
	void *stale[QFS_BIGBUF_KEEP + 1];
	struct slot *free_slot = NULL, *small = NULL;
	uint64_t now;
	unsigned n;

	if (!p)
		return;
	if (cap < QFS_BIGBUF_MIN || cap > QFS_BIGBUF_KEEP_BYTES) {
		free(p);
		return;
	}
	now = qfs_clock_mono_ms();
	HELD_POISON(p, cap); /* no longer the caller's (unpoisoned by the get
			      * that hands it out again) */
	pthread_mutex_lock(&mu);
	n = take_idle(now, QFS_BIGBUF_IDLE_MS, stale);
	for (unsigned i = 0; i < QFS_BIGBUF_KEEP; i++) {
		if (!slots[i].p)
			free_slot = free_slot ? free_slot : &slots[i];
		else if (!small || slots[i].cap < small->cap)
			small = &slots[i];
	}
	/* Make room: the smallest held buffer goes when it is smaller than p
	 * and either no slot is free or the bytes bound would be passed. */
	while ((!free_slot || st.held_bytes + cap > held_bound()) && small &&
	       small->cap < cap) {
		stale[n++] = small->p;
		st.held--;
		st.held_bytes -= small->cap;
		st.drops++;
		small->p = NULL;
		free_slot = small;
		small = NULL;
		for (unsigned i = 0; i < QFS_BIGBUF_KEEP; i++)
			if (slots[i].p && (!small || slots[i].cap < small->cap))
				small = &slots[i];
	}
	/* stale[] holds at most QFS_BIGBUF_KEEP here: each buffer taken was
	 * held, and at most QFS_BIGBUF_KEEP are. */
	if (free_slot && st.held_bytes + cap <= held_bound()) {
		free_slot->p = p;
		free_slot->cap = cap;
		free_slot->put_ms = now;
		st.held++;
		st.held_bytes += cap;
	} else {
		stale[n++] = p;
		st.drops++;
	}
	pthread_mutex_unlock(&mu);
	free_all(stale, n);
}

/* See bigbuf.h. */
void qfs_bigbuf_lend(size_t cap)
{
	void *stale[QFS_BIGBUF_KEEP];
	unsigned n = 0;

	pthread_mutex_lock(&mu);
	st.lent_bytes += cap;
	/* the largest held buffers go first until the rest fits the bound */
	while (st.held_bytes > held_bound()) {
		struct slot *big = NULL;

		for (unsigned i = 0; i < QFS_BIGBUF_KEEP; i++)
			if (slots[i].p && (!big || slots[i].cap > big->cap))
				big = &slots[i];
		stale[n++] = big->p;
		st.held--;
		st.held_bytes -= big->cap;
		st.drops++;
		big->p = NULL;
	}
	pthread_mutex_unlock(&mu);
	free_all(stale, n);
}

/* See bigbuf.h. */
void qfs_bigbuf_unlend(size_t cap)
{
	pthread_mutex_lock(&mu);
	st.lent_bytes = st.lent_bytes > cap ? st.lent_bytes - cap : 0;
	pthread_mutex_unlock(&mu);
}

/* See bigbuf.h. */
void qfs_bigbuf_trim(uint32_t idle_ms)
{
	void *stale[QFS_BIGBUF_KEEP];
	unsigned n;

	pthread_mutex_lock(&mu);
	n = take_idle(qfs_clock_mono_ms(), idle_ms, stale);
	pthread_mutex_unlock(&mu);
	free_all(stale, n);
}

/* See bigbuf.h. */
void qfs_bigbuf_stats(struct qfs_bigbuf_stats *out)
{
	pthread_mutex_lock(&mu);
	*out = st;
	pthread_mutex_unlock(&mu);
}
