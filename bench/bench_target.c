/* SPDX-License-Identifier: MIT */
/*
 * bench_target - the process heapinspect's benchmark inspects.
 *
 * Usage: bench_target [--chunks N] [--threads T] [--layout L]
 *                     [--heap-mib M] [--seed S] [--tick-us U]
 *
 * Builds a glibc heap of N chunks (default 10000) over T threads (default
 * 1): the main thread allocates the first share, T - 1 more threads one
 * share each, so that T threads use up to min(T, 8 * cores) arenas
 * (arena_get2, malloc/arena.c).  The threads then stay alive, blocked.
 * Layouts:
 *
 *   dense   sizes like a service's: 60 % 16..120 bytes (tcache and fastbin
 *           sizes), 32 % 121..1024, 7.5 % 1..4 KiB, 0.5 % 4..32 KiB.  Of
 *           every two neighbouring blocks one is freed, chosen at random:
 *           N / 2 frees, in random order.  80 % of them first; then a few
 *           large mallocs consolidate the fastbins and sort the unsorted
 *           bin (10000 chunks per malloc, MAX_ITERS in _int_malloc) into
 *           the small and large bins; then the other 20 %, which stay in
 *           tcache, the fastbins and the unsorted bin.
 *   sparse  the same sizes, the same blocks freed in the same order, but
 *           every block that stays in use is 19 times larger (at most
 *           120000 bytes, under the mmap threshold): the same free chunks
 *           in about 10 times the bytes.
 *   big     M blocks of 1 MiB (--heap-mib M, default 3072; --chunks is
 *           ignored), one of every two freed: a heap of M MiB in few
 *           chunks.  The mmap threshold is raised to 32 MiB so they come
 *           from the arena.
 *
 * Every block is written whole when it is allocated, as a program writes
 * what it allocates: memory never written is the kernel's zero page,
 * which costs a reader from outside almost nothing to copy (the sparse
 * heaps were written only in their first byte until 2026-11-22, and
 * their 429 MiB and 4.3 GiB were mostly zero page).
 *
 * A heartbeat thread wakes every U microseconds (default 100) with
 * clock_nanosleep and records the longest gap between two wake-ups.  While
 * a tracer holds the process stopped, the heartbeat is stopped too, so the
 * gap it measures when it runs again is the pause the process saw.  It
 * runs SCHED_FIFO where allowed (see start_heartbeat).
 *
 * Then it writes one line to fd 1,
 *
 *   ready pid=<pid> layout=<l> chunks=<n> threads=<t> freed=<n> build_ms=<n>
 *         heartbeat=<fifo|other>
 *
 * and answers commands read from fd 0, one per line:
 *
 *   mallinfo [K]  call mallinfo2() K times (default 5, at most 1000) and
 *                 reply "mallinfo calls=K min_us=<x> median_us=<x>" and the
 *                 ten figures of the last call as "name=<n>"
 *   gap-reset     forget the longest gap so far; reply "ok"
 *   gap           reply "gap max_us=<x> ticks=<n>": the longest gap since
 *                 the last gap-reset, and the wake-ups since then
 *   exit (or EOF) exit with status 0
 *
 * Once the heap is built nothing allocates: output is formatted into a
 * static buffer and written with write(2), the heartbeat only sleeps and
 * reads the clock.  The heap heapinspect reads is the heap mallinfo2() sees.
 * Any process may ptrace it (PR_SET_PTRACER_ANY), as hi_target.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#define MAX_CHUNKS	(64u * 1024 * 1024)
#define MAX_THREADS	1024
#define MAX_CALLS	1000
#define SORT_PER_MALLOC	10000	/* MAX_ITERS of _int_malloc, 2.26 to 2.41 */
#define FAST_MAX_REQ	120	/* largest request in a fastbin (64-bit) */
#define SPARSE_FACTOR	19
#define SPARSE_MAX	120000	/* < DEFAULT_MMAP_THRESHOLD_MIN, 128 KiB */
#define BIG_BLOCK	(1024u * 1024 - 64)
#define BIG_MMAP_THRESH	(32 * 1024 * 1024) /* DEFAULT_MMAP_THRESHOLD_MAX */

enum layout { L_DENSE, L_SPARSE, L_BIG };
static const char *const layout_names[] = { "dense", "sparse", "big" };

static enum layout layout = L_DENSE;
static size_t nchunks = 10000;
static size_t nthreads = 1;
static uint64_t seed = 0x5eedbe7c;
static long tick_ns = 100000;

/* The blocks, in tables mapped outside malloc's heap. */
static void **ptrs;
static uint32_t *sizes;
static uint32_t *order;	/* per share: the indices to free, shuffled */
static atomic_size_t nfreed;
static pthread_barrier_t phase;

/* ---------------------------------------------------------------- */
/* Output without stdio                                             */
/* ---------------------------------------------------------------- */

static void write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		buf += n;
		len -= (size_t)n;
	}
}

static void die(const char *what)
{
	write_all(2, "bench_target: ", 14);
	write_all(2, what, strlen(what));
	write_all(2, "\n", 1);
	_exit(2);
}

/* Only the main thread formats output, once the heap is built. */
static char outbuf[1024];
static size_t outlen;

static void put_str(const char *s)
{
	size_t n = strlen(s);

	if (n > sizeof(outbuf) - outlen)
		n = sizeof(outbuf) - outlen;
	memcpy(outbuf + outlen, s, n);
	outlen += n;
}

static void put_u(unsigned long long v)
{
	char tmp[24];
	size_t i = sizeof(tmp);

	tmp[--i] = '\0';
	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	put_str(tmp + i);
}

static void put_field(const char *name, unsigned long long v)
{
	put_str(" ");
	put_str(name);
	put_str("=");
	put_u(v);
}

/* Nanoseconds as microseconds with one decimal. */
static void put_us(const char *name, uint64_t ns)
{
	put_field(name, ns / 1000);
	put_str(".");
	put_u(ns % 1000 / 100);
}

static void flush_out(void)
{
	write_all(1, outbuf, outlen);
	outlen = 0;
}

/* ---------------------------------------------------------------- */
/* Time                                                             */
/* ---------------------------------------------------------------- */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * The heartbeat.  It sleeps to an absolute deadline, tick_ns after its last
 * wake-up: a wake-up delayed by a stop is not followed by a burst of
 * catch-up ticks, and the gap is the time between two wake-ups, stop
 * included.  Only this thread writes max_gap; gap-reset asks it to start
 * over and waits until it has.
 */
static atomic_uint_fast64_t max_gap_ns;
static atomic_uint_fast64_t ticks;
static atomic_int reset_req;

static void *heartbeat_main(void *arg)
{
	uint64_t last = now_ns(), t, gap;
	struct timespec next;

	(void)arg;
	for (;;) {
		t = last + (uint64_t)tick_ns;
		next.tv_sec = (time_t)(t / 1000000000u);
		next.tv_nsec = (long)(t % 1000000000u);
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next,
				       NULL) == EINTR)
			;
		t = now_ns();
		if (atomic_load_explicit(&reset_req, memory_order_acquire)) {
			atomic_store_explicit(&max_gap_ns, 0,
					      memory_order_relaxed);
			atomic_store_explicit(&ticks, 0, memory_order_relaxed);
			atomic_store_explicit(&reset_req, 0,
					      memory_order_release);
		} else {
			gap = t - last;
			if (gap > atomic_load_explicit(&max_gap_ns,
						       memory_order_relaxed))
				atomic_store_explicit(&max_gap_ns, gap,
						      memory_order_relaxed);
			atomic_fetch_add_explicit(&ticks, 1,
						  memory_order_relaxed);
		}
		last = t;
	}
	return NULL;
}

/*
 * The heartbeat runs SCHED_FIFO when it may (root or CAP_SYS_NICE): then a
 * wake-up is not delayed by whatever else runs on a busy machine, and its
 * gaps are the stops, not the run queue.  A stopped thread cannot run at
 * any priority, so a stop is measured the same either way.  Otherwise it
 * runs SCHED_OTHER and the noise floor is higher.
 */
static int heartbeat_fifo = 1; /* 0 once refused */

static int start_heartbeat(pthread_t *hb)
{
	struct sched_param sp = { .sched_priority = 1 };
	pthread_attr_t attr;
	int err;

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED);
	pthread_attr_setschedpolicy(&attr, SCHED_FIFO);
	pthread_attr_setschedparam(&attr, &sp);
	err = pthread_create(hb, &attr, heartbeat_main, NULL);
	if (err) {
		heartbeat_fifo = 0;
		pthread_attr_setinheritsched(&attr, PTHREAD_INHERIT_SCHED);
		err = pthread_create(hb, &attr, heartbeat_main, NULL);
	}
	pthread_attr_destroy(&attr);
	return err;
}

static void gap_reset(void)
{
	struct timespec ts = { 0, 20000 };

	atomic_store_explicit(&reset_req, 1, memory_order_release);
	while (atomic_load_explicit(&reset_req, memory_order_acquire))
		nanosleep(&ts, NULL);
}

/* ---------------------------------------------------------------- */
/* Building the heap                                                */
/* ---------------------------------------------------------------- */

/* xorshift64*: a fixed seed makes every layout reproducible. */
static uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static uint32_t rnd_range(uint64_t *s, uint32_t lo, uint32_t hi)
{
	return lo + (uint32_t)(rnd(s) % (uint64_t)(hi - lo + 1));
}

static uint32_t service_size(uint64_t *s)
{
	unsigned pick = (unsigned)(rnd(s) % 1000);

	if (pick < 600)
		return rnd_range(s, 16, FAST_MAX_REQ);
	if (pick < 920)
		return rnd_range(s, FAST_MAX_REQ + 1, 1024);
	if (pick < 995)
		return rnd_range(s, 1025, 4096);
	return rnd_range(s, 4097, 32768);
}

static void *table(size_t n, size_t elem)
{
	void *p = mmap(NULL, n * elem, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		die("cannot map the block tables");
	return p;
}

static void free_block(uint32_t i)
{
	free(ptrs[i]);
	ptrs[i] = NULL;
}

/*
 * Build share t of the heap: blocks [base, base + n).  Every thread calls
 * the barrier between the phases, so that one share's frees are not taken
 * by another's allocations in the same arena.
 */
static void build_share(size_t t)
{
	size_t base = nchunks / nthreads * t, n = nchunks / nthreads;
	uint64_t s = seed + 0x9E3779B97F4A7C15ULL * (t + 1);
	uint64_t sf = s ^ 0xF7EE5EEDULL; /* which block of a pair is freed */
	size_t nfree = 0, na, nsort, i;
	uint32_t *ord = order + base;
	void **sorters;
	int pass;

	if (t == nthreads - 1)
		n = nchunks - base;
	for (i = 0; i < n; i += 2) {
		size_t pick = base + i + (rnd(&sf) & 1);

		if (i + 1 < n)
			ord[nfree++] = (uint32_t)pick;
	}
	/* Fisher-Yates: the frees come in random order, as in a service. */
	for (i = nfree; i > 1; i--) {
		size_t j = (size_t)(rnd(&sf) % i);
		uint32_t x = ord[i - 1];

		ord[i - 1] = ord[j];
		ord[j] = x;
	}
	for (i = 0; i < n; i++) {
		uint32_t sz = layout == L_BIG ? BIG_BLOCK : service_size(&s);

		sizes[base + i] = sz;
	}
	if (layout == L_SPARSE) {
		/* Inflate what stays in use; freed blocks keep their size. */
		for (i = 0; i < n; i++)
			sizes[base + i] |= 0x80000000u;
		for (i = 0; i < nfree; i++)
			sizes[ord[i]] &= 0x7fffffffu;
		for (i = 0; i < n; i++) {
			uint64_t sz = sizes[base + i];

			if (sz & 0x80000000u) {
				sz = (sz & 0x7fffffffu) * SPARSE_FACTOR;
				sizes[base + i] = (uint32_t)(sz > SPARSE_MAX ?
							     SPARSE_MAX : sz);
			}
		}
	}

	pthread_barrier_wait(&phase);
	for (i = 0; i < n; i++) {
		void *p = malloc(sizes[base + i]);

		if (!p)
			die("malloc failed");
		memset(p, (int)(i & 0xff), sizes[base + i]);
		ptrs[base + i] = p;
	}

	pthread_barrier_wait(&phase);
	na = nfree - nfree / 5;
	for (i = 0; i < na; i++)
		free_block(ord[i]);

	/*
	 * A large request consolidates the fastbins (malloc_consolidate) and
	 * sorts up to MAX_ITERS unsorted chunks into the small and large
	 * bins.  The sorters stay allocated.
	 */
	pthread_barrier_wait(&phase);
	nsort = layout == L_BIG ? 0 : na / SORT_PER_MALLOC + 2;
	sorters = nsort ? table(nsort, sizeof(*sorters)) : NULL;
	for (i = 0; i < nsort; i++) {
		sorters[i] = malloc(rnd_range(&s, 66000, 80000));
		if (!sorters[i])
			die("malloc failed");
	}

	/*
	 * The rest: non-fastbin sizes first, so that no later free of a
	 * large coalesced chunk (FASTBIN_CONSOLIDATION_THRESHOLD) empties
	 * the fastbins again.
	 */
	pthread_barrier_wait(&phase);
	for (pass = 0; pass < 2; pass++) {
		for (i = na; i < nfree; i++) {
			int fast = sizes[ord[i]] <= FAST_MAX_REQ;

			if (fast == pass)
				free_block(ord[i]);
		}
	}
	atomic_fetch_add(&nfreed, nfree);
	pthread_barrier_wait(&phase);
}

static void *worker_main(void *arg)
{
	build_share((size_t)(uintptr_t)arg);
	for (;;)
		pause();
	return NULL;
}

/* ---------------------------------------------------------------- */
/* Commands                                                         */
/* ---------------------------------------------------------------- */

static uint64_t durations[MAX_CALLS];

static void cmd_mallinfo(unsigned long calls)
{
	struct mallinfo2 mi;
	unsigned long i, j;

	memset(&mi, 0, sizeof(mi));
	if (calls < 1)
		calls = 1;
	if (calls > MAX_CALLS)
		calls = MAX_CALLS;
	for (i = 0; i < calls; i++) {
		uint64_t t0 = now_ns(), d;

		mi = mallinfo2();
		d = now_ns() - t0;
		/* Insertion sort: a handful of values. */
		for (j = i; j > 0 && durations[j - 1] > d; j--)
			durations[j] = durations[j - 1];
		durations[j] = d;
	}
	put_str("mallinfo");
	put_field("calls", calls);
	put_us("min_us", durations[0]);
	put_us("median_us", durations[calls / 2]);
	put_field("arena", mi.arena);
	put_field("ordblks", mi.ordblks);
	put_field("smblks", mi.smblks);
	put_field("hblks", mi.hblks);
	put_field("hblkhd", mi.hblkhd);
	put_field("usmblks", mi.usmblks);
	put_field("fsmblks", mi.fsmblks);
	put_field("uordblks", mi.uordblks);
	put_field("fordblks", mi.fordblks);
	put_field("keepcost", mi.keepcost);
	put_str("\n");
	flush_out();
}

static char inbuf[256];
static size_t inlen;
static int in_eof;

/* Next line from fd 0 without its newline; 0 at EOF. */
static int read_line(char *line, size_t cap)
{
	for (;;) {
		char *nl = memchr(inbuf, '\n', inlen);
		size_t n, take;
		ssize_t r;

		if (nl || inlen == sizeof(inbuf) || (in_eof && inlen)) {
			n = nl ? (size_t)(nl - inbuf) : inlen;
			take = n < cap - 1 ? n : cap - 1;
			memcpy(line, inbuf, take);
			line[take] = '\0';
			if (nl)
				n++;
			memmove(inbuf, inbuf + n, inlen - n);
			inlen -= n;
			return 1;
		}
		if (in_eof)
			return 0;
		r = read(0, inbuf + inlen, sizeof(inbuf) - inlen);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			in_eof = 1;
		else
			inlen += (size_t)r;
	}
}

static unsigned long parse_u(const char *s, const char *what)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end)
		die(what);
	return v;
}

static void usage(void)
{
	die("usage: bench_target [--chunks N] [--threads T] "
	    "[--layout dense|sparse|big] [--heap-mib M] [--seed S] "
	    "[--tick-us U]");
}

int main(int argc, char **argv)
{
	char line[sizeof(inbuf) + 1];
	pthread_t hb, *workers;
	pthread_attr_t attr;
	uint64_t t0, build_ms;
	size_t heap_mib = 0, t;
	int i, err;

	for (i = 1; i < argc; i++) {
		const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] :
									NULL;

		if (!val)
			usage();
		i++;
		if (!strcmp(opt, "--chunks")) {
			nchunks = parse_u(val, "bad --chunks");
		} else if (!strcmp(opt, "--threads")) {
			nthreads = parse_u(val, "bad --threads");
		} else if (!strcmp(opt, "--heap-mib")) {
			heap_mib = parse_u(val, "bad --heap-mib");
		} else if (!strcmp(opt, "--seed")) {
			seed = parse_u(val, "bad --seed");
		} else if (!strcmp(opt, "--tick-us")) {
			tick_ns = (long)parse_u(val, "bad --tick-us") * 1000;
		} else if (!strcmp(opt, "--layout")) {
			for (layout = L_DENSE; layout <= L_BIG; layout++)
				if (!strcmp(val, layout_names[layout]))
					break;
			if (layout > L_BIG)
				die("bad --layout: dense, sparse or big");
		} else {
			usage();
		}
	}
	if (layout == L_BIG)
		nchunks = heap_mib ? heap_mib : 3072;
	if (nthreads < 1 || nthreads > MAX_THREADS || nchunks < nthreads ||
	    nchunks > MAX_CHUNKS || tick_ns < 1000 || tick_ns > 100000000)
		die("--threads, --chunks or --tick-us out of range");

	signal(SIGPIPE, SIG_IGN);
#ifdef PR_SET_PTRACER
	prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
#endif
	if (layout == L_BIG && !mallopt(M_MMAP_THRESHOLD, BIG_MMAP_THRESH))
		die("mallopt(M_MMAP_THRESHOLD) failed");
	ptrs = table(nchunks, sizeof(*ptrs));
	sizes = table(nchunks, sizeof(*sizes));
	order = table(nchunks, sizeof(*order));
	workers = table(nthreads, sizeof(*workers));

	t0 = now_ns();
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	err = start_heartbeat(&hb);
	if (err)
		die("cannot create the heartbeat thread");
	err = pthread_barrier_init(&phase, NULL, (unsigned)nthreads);
	if (err)
		die("pthread_barrier_init failed");
	for (t = 1; t < nthreads; t++) {
		err = pthread_create(&workers[t], &attr, worker_main,
				     (void *)(uintptr_t)t);
		if (err)
			die("cannot create a thread");
	}
	pthread_attr_destroy(&attr);
	build_share(0);
	build_ms = (now_ns() - t0) / 1000000;

	put_str("ready");
	put_field("pid", (unsigned long long)getpid());
	put_str(" layout=");
	put_str(layout_names[layout]);
	put_field("chunks", nchunks);
	put_field("threads", nthreads);
	put_field("freed", atomic_load(&nfreed));
	put_field("build_ms", build_ms);
	put_str(heartbeat_fifo ? " heartbeat=fifo" : " heartbeat=other");
	put_str("\n");
	flush_out();

	while (read_line(line, sizeof(line))) {
		if (!strcmp(line, "mallinfo")) {
			cmd_mallinfo(5);
		} else if (!strncmp(line, "mallinfo ", 9)) {
			char *end;
			unsigned long k = strtoul(line + 9, &end, 10);

			if (end == line + 9 || *end) {
				put_str("error bad count\n");
				flush_out();
			} else {
				cmd_mallinfo(k);
			}
		} else if (!strcmp(line, "gap-reset")) {
			gap_reset();
			put_str("ok\n");
			flush_out();
		} else if (!strcmp(line, "gap")) {
			put_str("gap");
			put_us("max_us", atomic_load(&max_gap_ns));
			put_field("ticks", atomic_load(&ticks));
			put_str("\n");
			flush_out();
		} else if (!strcmp(line, "exit")) {
			break;
		} else {
			put_str("error unknown command\n");
			flush_out();
		}
	}
	return 0;
}
