/*
 * hi_target - test target for heapinspect's live tests.
 *
 * Usage: hi_target SCENARIO [ARG]
 *
 * Builds a known glibc heap state (see the scenario table at the bottom),
 * asks glibc for its own figures with mallinfo2() (mallinfo() before glibc
 * 2.33) and writes ONE line to fd 1:
 *
 *   ready pid=<pid> api=<mallinfo2|mallinfo> arena=<n> ordblks=<n>
 *         smblks=<n> hblks=<n> hblkhd=<n> usmblks=<n> fsmblks=<n>
 *         uordblks=<n> fordblks=<n> keepcost=<n> threads=<n>\n
 *
 * (a single line, wrapped here).  threads= is the number of live threads
 * of the process (from /proc/self/status).  With api=mallinfo every field
 * is the int that mallinfo() returned, printed as (unsigned int), i.e. the
 * low 32 bits of the true figure.  The "busy" scenario prints only
 * "ready pid=<pid> api=none threads=<n>\n": its figures are volatile.
 * So does "locked" until it is sent "release": a thread of it is then
 * blocked inside glibc's malloc_stats(), which holds main_arena's lock while
 * it writes to a full pipe, so that glibc's own mallinfo2() would block.
 *
 * It then reads commands from fd 0, one per line:
 *   report  measure again and write a new ready line
 *   check   verify that every live block still holds its fill pattern;
 *           replies "ok\n" or "bad <index>\n"; the busy scenarios also
 *           count sleeps and polls that failed with EINTR or returned
 *           early: "bad eintr=<n> short=<n>[ data]\n" if any did
 *   release ("locked" only) let malloc_stats() finish, then report
 *   pause   (busy, busy16, churn) park every worker at the top of its
 *           loop, outside malloc (churn's have joined their children),
 *           then report the figures of mallinfo2() like an idle
 *           scenario: they hold until "resume"
 *   resume  let the workers go again; replies "resumed\n"
 *   alloc N K ("grow" only) allocate K blocks of N bytes in all (N / K
 *           each, the last one also the remainder), then report
 *   exec S  execute hi_target S in this process (same pid, stdin and
 *           stdout), which builds its heap and writes a new ready line
 *   exit    (or EOF) exit with status 0 if the data is intact, 1 if not
 * Anything else is answered with "error unknown command\n".
 * Errors (usage, unknown scenario, allocation failure) go to fd 2 and exit
 * with status 2.
 *
 * The scenarios for heapinspect watch and trend keep one thread changing
 * the heap (or the process's memory) at a fixed pace, every 10 ms on an
 * absolute schedule, and add to the ready line what that thread did:
 *   leak [BYTES_PER_S]  allocates and fills BYTES_PER_S / 100 bytes per
 *           step and never frees: blocks=<n> block_size=<bytes> t_us=<µs
 *           since the epoch when blocks was read>
 *   fragment  allocates a block 16 bytes larger than the last each step
 *           and shrinks the previous one with realloc() to 24 bytes: the
 *           freed tails stay between the shrunk heads, too small for the
 *           next, larger block, so free space grows and live bytes barely
 *           do: steps=<n>
 *   steady  replaces a random block of 256 live ones each step, after
 *           100,000 such steps before the first report: live and free
 *           bytes go up and down around fixed levels: steps=<n>
 *   mmap_grow  touches 64 KiB more of a private anonymous mapping of its
 *           own each step, without malloc: touched=<bytes>
 *   grow    one block of 1 byte, so that malloc is initialised (tcache
 *           included); "alloc" then carves new blocks from the top chunk,
 *           nothing being free anywhere else
 *
 * Nothing in this program uses stdio, and nothing allocates once the state
 * is built: the heap cannot change between a report and the moment a tool
 * inspects it.  Output is formatted into static buffers and written with
 * write(2); the live blocks are remembered in a static table.  Only the
 * "busy" workers keep calling malloc() and free() after the report.
 *
 * Any process may ptrace it (PR_SET_PTRACER_ANY), even under Yama's
 * ptrace_scope = 1, where the tool, a sibling, could not otherwise attach.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if __GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33)
#define HI_HAVE_MALLINFO2 1
#endif

/* Largest table any scenario needs (million: 1,000,000 + a few). */
#define MAX_BLOCKS	(1000000 + 1024)

#define NTHREADS	8		/* threads8, threads_exited */
#define T_BLOCKS	2000		/* blocks built by each of them */
#define T_STRIDE	(T_BLOCKS + 64)	/* table entries per thread */
#define MIX_EXTRA	16		/* sorting mallocs of build_mixed() */

#define BUSY_WORKERS	4		/* busy, churn */
#define MAX_WORKERS	16		/* busy16 */
#define BUSY_SLOTS	512

struct block {
	void *p;
	size_t size;
};

/* Every live block; p == NULL for freed or unused entries. */
static struct block blocks[MAX_BLOCKS];
static size_t table_end;

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

static void write_str(int fd, const char *s)
{
	write_all(fd, s, strlen(s));
}

static void die(const char *what, const char *detail)
{
	write_str(2, "hi_target: ");
	write_str(2, what);
	if (detail) {
		write_str(2, ": ");
		write_str(2, detail);
	}
	write_str(2, "\n");
	_exit(2);
}

/* Only the main thread formats output. */
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

static void flush_out(void)
{
	write_all(1, outbuf, outlen);
	outlen = 0;
}

/* ---------------------------------------------------------------- */
/* PRNG and fill patterns                                           */
/* ---------------------------------------------------------------- */

/* xorshift64*: fixed seeds make every scenario reproducible. */
static uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* A value in [lo, hi]. */
static size_t rnd_range(uint64_t *s, size_t lo, size_t hi)
{
	return lo + (size_t)(rnd(s) % (uint64_t)(hi - lo + 1));
}

static uint64_t pattern_seed(size_t idx, size_t size)
{
	uint64_t x = (uint64_t)(idx + 1) * 0x9E3779B97F4A7C15ULL;

	x ^= (uint64_t)size * 0xC2B2AE3D27D4EB4FULL;
	x ^= x >> 31;
	return x;
}

/*
 * Word k of a block holds seed + k * golden; the tail bytes hold bytes of
 * the seed.  A shifted or duplicated copy does not verify.
 */
static void fill(void *p, size_t size, uint64_t seed)
{
	unsigned char *c = p;
	size_t nw = size / 8, k;
	uint64_t v = seed;

	for (k = 0; k < nw; k++) {
		memcpy(c + 8 * k, &v, 8);
		v += 0x9E3779B97F4A7C15ULL;
	}
	for (k = nw * 8; k < size; k++)
		c[k] = (unsigned char)(seed >> ((k & 7) * 8));
}

static int verify(const void *p, size_t size, uint64_t seed)
{
	const unsigned char *c = p;
	size_t nw = size / 8, k;
	uint64_t v = seed, w;

	for (k = 0; k < nw; k++) {
		memcpy(&w, c + 8 * k, 8);
		if (w != v)
			return 0;
		v += 0x9E3779B97F4A7C15ULL;
	}
	for (k = nw * 8; k < size; k++)
		if (c[k] != (unsigned char)(seed >> ((k & 7) * 8)))
			return 0;
	return 1;
}

/* ---------------------------------------------------------------- */
/* The block table                                                  */
/* ---------------------------------------------------------------- */

static void alloc_block(size_t idx, size_t size)
{
	void *p = malloc(size);

	if (!p)
		die("malloc failed", NULL);
	fill(p, size, pattern_seed(idx, size));
	blocks[idx].p = p;
	blocks[idx].size = size;
}

static void free_block(size_t idx)
{
	free(blocks[idx].p);
	blocks[idx].p = NULL;
}

static void set_table_end(size_t end)
{
	if (end > table_end)
		table_end = end;
}

/* Index of the first corrupted block, or -1 if all are intact. */
static long check_blocks(void)
{
	size_t i;

	for (i = 0; i < table_end; i++) {
		if (!blocks[i].p)
			continue;
		if (!verify(blocks[i].p, blocks[i].size,
			    pattern_seed(i, blocks[i].size)))
			return (long)i;
	}
	return -1;
}

/* ---------------------------------------------------------------- */
/* Measuring                                                        */
/* ---------------------------------------------------------------- */

/* Live threads of this process, from /proc/self/status; 0 if unknown. */
static unsigned long count_threads(void)
{
	static char buf[8192];
	size_t len = 0;
	unsigned long n = 0;
	char *s;
	int fd;

	fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	while (len < sizeof(buf) - 1) {
		ssize_t r = read(fd, buf + len, sizeof(buf) - 1 - len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	buf[len] = '\0';
	s = strstr(buf, "\nThreads:");
	if (!s)
		return 0;
	s += strlen("\nThreads:");
	while (*s == ' ' || *s == '\t')
		s++;
	while (*s >= '0' && *s <= '9')
		n = n * 10 + (unsigned long)(*s++ - '0');
	return n;
}

static void put_pid_prefix(void)
{
	put_str("ready pid=");
	put_u((unsigned long long)getpid());
}

static void put_field(const char *name, unsigned long long v)
{
	put_str(" ");
	put_str(name);
	put_str("=");
	put_u(v);
}

/* What the pacing thread of leak, fragment, ... adds to the ready line. */
static void (*pace_report)(void);

static void report(void)
{
#ifdef HI_HAVE_MALLINFO2
	struct mallinfo2 mi = mallinfo2();
#define FIG(x)	((unsigned long long)(x))
#else
	struct mallinfo mi = mallinfo();
	/* int fields: report the low 32 bits, as unsigned. */
#define FIG(x)	((unsigned long long)(unsigned int)(x))
#endif

	put_pid_prefix();
#ifdef HI_HAVE_MALLINFO2
	put_str(" api=mallinfo2");
#else
	put_str(" api=mallinfo");
#endif
	put_field("arena", FIG(mi.arena));
	put_field("ordblks", FIG(mi.ordblks));
	put_field("smblks", FIG(mi.smblks));
	put_field("hblks", FIG(mi.hblks));
	put_field("hblkhd", FIG(mi.hblkhd));
	put_field("usmblks", FIG(mi.usmblks));
	put_field("fsmblks", FIG(mi.fsmblks));
	put_field("uordblks", FIG(mi.uordblks));
	put_field("fordblks", FIG(mi.fordblks));
	put_field("keepcost", FIG(mi.keepcost));
#undef FIG
	if (pace_report)
		pace_report();
	put_field("threads", count_threads());
	put_str("\n");
	flush_out();
}

/* ---------------------------------------------------------------- */
/* Scenarios                                                        */
/* ---------------------------------------------------------------- */

/* 70 % 16..1024, 26 % 1 KiB..16 KiB, 4 % 16 KiB..100 KiB. */
static size_t mixed_size(uint64_t *s)
{
	unsigned int pick = (unsigned int)(rnd(s) % 100);

	if (pick < 70)
		return rnd_range(s, 16, 1024);
	if (pick < 96)
		return rnd_range(s, 1024, 16 * 1024);
	return rnd_range(s, 16 * 1024, 100 * 1024);
}

/*
 * Leaves chunks in tcache, fastbins, the unsorted bin, small and large
 * bins (from glibc 2.43, which has no fastbins, the frees below that would
 * go to them go to tcache or, merged, to the bins; small chunks are put in
 * their small bin at once, not in the unsorted one).  Uses table entries
 * [base, base + n + MIX_EXTRA).
 *
 * 1. allocate n blocks;
 * 2. free every third one: tcache takes 7 per size, the rest go to
 *    fastbins or the unsorted bin;
 * 3. malloc MIX_EXTRA blocks of large-bin sizes that no tcache bin
 *    serves: the first one consolidates the fastbins, and each sorts up
 *    to 10000 unsorted chunks into the small and large bins;
 * 4. free every sixth block (next to a free one), large sizes first,
 *    then the non-fast small ones, then the fastbin sizes last, so that
 *    no later free of a chunk >= 64 KiB consolidates the fastbins again.
 *    These stay in the unsorted bin and fastbins.
 */
static void build_mixed(size_t base, size_t n, uint64_t seed)
{
	static const size_t extra[MIX_EXTRA] = {
		1100, 1500, 2222, 3000, 4100, 5555, 7000, 9999,
		12345, 20000, 33333, 1234, 1777, 2900, 6100, 48000,
	};
	uint64_t s = seed;
	size_t i, k;
	int pass;

	set_table_end(base + n + MIX_EXTRA);
	for (i = 0; i < n; i++)
		alloc_block(base + i, mixed_size(&s));
	for (i = 0; i < n; i += 3)
		free_block(base + i);
	for (k = 0; k < MIX_EXTRA; k++)
		alloc_block(base + n + k, extra[k]);
	for (pass = 0; pass < 3; pass++) {
		for (i = 1; i < n; i += 6) {
			size_t sz = blocks[base + i].size;
			int cls = sz > 1024 ? 0 : sz > 120 ? 1 : 2;

			if (cls == pass)
				free_block(base + i);
		}
	}
}

static void sc_fresh(void)
{
	/* Nothing: the report is the first thing that touches malloc. */
}

/*
 * 20,000 blocks of 8 to 120 bytes, about half of them freed: after tcache
 * has taken its share, glibc up to 2.42 keeps the rest in fastbins (about
 * 10,000 fastbin chunks, smblks); 2.43, which has no fastbins, merges each
 * with its free neighbours into the small bins (thousands of binned
 * chunks, ordblks).  compare.py --glibc checks that it still does.
 */
static void sc_small_frees(void)
{
	const size_t n = 20000;
	uint64_t s = 0x5eed0001;
	size_t i;

	set_table_end(n);
	for (i = 0; i < n; i++)
		alloc_block(i, rnd_range(&s, 8, 120));
	for (i = 0; i < n; i++)
		if (rnd(&s) & 1)
			free_block(i);
}

static void sc_mixed(void)
{
	build_mixed(0, 20000, 0x5eed0002);
}

static void sc_mmap_large(void)
{
	const size_t nlarge = 40, nsmall = 200;
	uint64_t s = 0x5eed0003;
	size_t i;

	set_table_end(nlarge + nsmall);
	for (i = 0; i < nlarge; i++)
		alloc_block(i, rnd_range(&s, 200 * 1024, 4 * 1024 * 1024));
	/* Raises glibc's dynamic mmap threshold; fine. */
	for (i = 0; i < nlarge; i += 4)
		free_block(i);
	for (i = 0; i < nsmall; i++)
		alloc_block(nlarge + i, rnd_range(&s, 16, 512));
	for (i = 0; i < nsmall; i += 3)
		free_block(nlarge + i);
}

static pthread_mutex_t sync_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sync_cv = PTHREAD_COND_INITIALIZER;
static int nready;

static void *threads8_main(void *arg)
{
	size_t t = (size_t)(uintptr_t)arg;

	build_mixed(t * T_STRIDE, T_BLOCKS, 0x5eed0100 + t);
	pthread_mutex_lock(&sync_mu);
	nready++;
	pthread_cond_broadcast(&sync_cv);
	/* Block until the process exits. */
	for (;;)
		pthread_cond_wait(&sync_cv, &sync_mu);
	return NULL;
}

static void start_thread(pthread_t *th, void *(*fn)(void *), size_t arg)
{
	int err = pthread_create(th, NULL, fn, (void *)(uintptr_t)arg);

	if (err)
		die("pthread_create failed", strerror(err));
}

static void sc_threads8(void)
{
	pthread_t th[NTHREADS];
	size_t t;

	set_table_end(NTHREADS * T_STRIDE);
	for (t = 0; t < NTHREADS; t++)
		start_thread(&th[t], threads8_main, t);
	pthread_mutex_lock(&sync_mu);
	while (nready < NTHREADS)
		pthread_cond_wait(&sync_cv, &sync_mu);
	pthread_mutex_unlock(&sync_mu);
}

static pthread_barrier_t exit_barrier;

static void *threads_exited_main(void *arg)
{
	size_t t = (size_t)(uintptr_t)arg;

	build_mixed(t * T_STRIDE, T_BLOCKS, 0x5eed0200 + t);
	/*
	 * Nobody exits before all have allocated: otherwise a later thread
	 * would take over an exited one's arena from the free list.
	 */
	pthread_barrier_wait(&exit_barrier);
	return NULL;
}

static void sc_threads_exited(void)
{
	pthread_t th[NTHREADS];
	size_t t;
	int err;

	set_table_end(NTHREADS * T_STRIDE);
	err = pthread_barrier_init(&exit_barrier, NULL, NTHREADS);
	if (err)
		die("pthread_barrier_init failed", strerror(err));
	for (t = 0; t < NTHREADS; t++)
		start_thread(&th[t], threads_exited_main, t);
	for (t = 0; t < NTHREADS; t++) {
		err = pthread_join(th[t], NULL);
		if (err)
			die("pthread_join failed", strerror(err));
	}
	pthread_barrier_destroy(&exit_barrier);
}

/*
 * arena_heaps: one thread's arena grown over several heaps (a non-main
 * arena's heaps are at most HEAP_MAX_SIZE, 64 MiB on 64-bit): build_mixed
 * with 40,000 blocks of 4.9 KiB on average, about 190 MiB.
 */
#define AH_BLOCKS	40000

static void *arena_heaps_main(void *arg)
{
	(void)arg;
	build_mixed(0, AH_BLOCKS, 0x5eed0300);
	return NULL;
}

static void sc_arena_heaps(void)
{
	pthread_t th;
	int err;

	start_thread(&th, arena_heaps_main, 0);
	/* The arena outlives its thread, free for the next thread to take. */
	err = pthread_join(th, NULL);
	if (err)
		die("pthread_join failed", strerror(err));
}

static void sc_trimmed(void)
{
	const size_t n = 50000;
	uint64_t s = 0x5eed0004;
	size_t i;

	set_table_end(n);
	for (i = 0; i < n; i++) {
		if (rnd(&s) % 10 < 7)
			alloc_block(i, rnd_range(&s, 16, 512));
		else
			alloc_block(i, rnd_range(&s, 512, 16 * 1024));
	}
	/* Keep 10 blocks spread over the heap. */
	for (i = 0; i < n; i++)
		if (i % 5000 != 4999)
			free_block(i);
	malloc_trim(0);
}

/*
 * 1,000,000 blocks of 16..256 bytes.  Free every other block of the first
 * half; 40 mallocs of a size nobody freed sort the unsorted bin (10000
 * chunks per malloc) into the small bins; then free every other block of
 * the second half, which stays in fastbins and the unsorted bin.
 */
static void sc_million(void)
{
	const size_t n = 1000000, nsort = 40;
	uint64_t s = 0x5eed0005;
	size_t i;

	set_table_end(n + nsort);
	for (i = 0; i < n; i++)
		alloc_block(i, rnd_range(&s, 16, 256));
	for (i = 0; i < n / 2; i += 2)
		free_block(i);
	for (i = 0; i < nsort; i++)
		alloc_block(n + i, 600);
	for (i = n / 2; i < n; i += 2)
		free_block(i);
}

/*
 * million_lite: the shape of million at 50,000 blocks, small enough for a
 * heap image (tests/image/) that a unit test walks 100,000 times.  12,500
 * chunks freed in the first half: 4 sorting mallocs of 10,000 each suffice.
 */
static void sc_million_lite(void)
{
	const size_t n = 50000, nsort = 4;
	uint64_t s = 0x5eed0006;
	size_t i;

	set_table_end(n + nsort);
	for (i = 0; i < n; i++)
		alloc_block(i, rnd_range(&s, 16, 256));
	for (i = 0; i < n / 2; i += 2)
		free_block(i);
	for (i = 0; i < nsort; i++)
		alloc_block(n + i, 600);
	for (i = n / 2; i < n; i += 2)
		free_block(i);
}

/* busy: workers that never stop changing the heap. */

struct slot {
	void *p;
	size_t size;
	uint64_t seed;
};

static atomic_int busy_stop;
static atomic_int busy_started;
static atomic_long busy_bad = -1;	/* first corrupted block, or -1 */
static size_t busy_workers = BUSY_WORKERS;
/* What a stop of the process must never show its threads. */
static atomic_long busy_eintr;		/* a sleep or poll failed with EINTR */
static atomic_long busy_short;		/* a sleep or poll returned early */
static int never_ready[2] = { -1, -1 };	/* a pipe nobody writes to */

static void busy_flag(long idx)
{
	long expect = -1;

	atomic_compare_exchange_strong(&busy_bad, &expect, idx);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * A stop by a tracer must be invisible to the threads: a sleep that it
 * interrupts is restarted by the kernel for the time left, never cut short
 * and never failed with EINTR (no handler runs).  Sleep 50 us, then wait
 * 1 ms in poll() on a pipe nobody writes to, and count what went wrong.
 */
static void sleep_and_poll(void)
{
	struct timespec ts = { 0, 50000 };
	struct pollfd pfd = { .fd = never_ready[0], .events = POLLIN };
	uint64_t t0 = mono_ns();
	int rc;

	rc = nanosleep(&ts, NULL);
	if (rc != 0 && errno == EINTR)
		atomic_fetch_add(&busy_eintr, 1);
	else if (mono_ns() - t0 < 50000)
		atomic_fetch_add(&busy_short, 1);
	t0 = mono_ns();
	rc = poll(&pfd, 1, 1);
	if (rc < 0 && errno == EINTR)
		atomic_fetch_add(&busy_eintr, 1);
	else if (rc != 0 || mono_ns() - t0 < 1000000)
		atomic_fetch_add(&busy_short, 1);
}

/*
 * pause/resume: the workers park at the top of their loop, outside
 * malloc, so that the heap holds still while the main thread asks
 * mallinfo2() and a tool reads it: a moment the target controls, at which
 * its own figures are the truth.  Parking uses a mutex and a condition
 * variable, neither of which allocates.
 */
static atomic_int busy_pause;
static int busy_parked;			/* under pause_mu */
static pthread_mutex_t pause_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pause_cv = PTHREAD_COND_INITIALIZER;

static void busy_park(void)
{
	if (!atomic_load_explicit(&busy_pause, memory_order_acquire))
		return;
	pthread_mutex_lock(&pause_mu);
	busy_parked++;
	pthread_cond_broadcast(&pause_cv);
	while (atomic_load(&busy_pause))
		pthread_cond_wait(&pause_cv, &pause_mu);
	busy_parked--;
	pthread_cond_broadcast(&pause_cv);
	pthread_mutex_unlock(&pause_mu);
}

/* Park every worker (or let them go) and wait until they all have. */
static void busy_set_pause(int on, int workers)
{
	pthread_mutex_lock(&pause_mu);
	atomic_store(&busy_pause, on);
	pthread_cond_broadcast(&pause_cv);
	while (busy_parked != (on ? workers : 0))
		pthread_cond_wait(&pause_cv, &pause_mu);
	pthread_mutex_unlock(&pause_mu);
}

static void *busy_main(void *arg)
{
	size_t w = (size_t)(uintptr_t)arg;
	struct slot slots[BUSY_SLOTS];
	uint64_t s = 0x5eed0300 + w, gen = 0;
	size_t k;

	memset(slots, 0, sizeof(slots));
	atomic_fetch_add(&busy_started, 1);
	while (!atomic_load_explicit(&busy_stop, memory_order_relaxed)) {
		uint64_t r;
		struct slot *sl;

		busy_park();
		r = rnd(&s);
		sl = &slots[r % BUSY_SLOTS];
		if ((++gen & 4095) == 0)
			sleep_and_poll();

		if (sl->p) {
			if (!verify(sl->p, sl->size, sl->seed))
				busy_flag((long)(w * BUSY_SLOTS +
						 (size_t)(sl - slots)));
			free(sl->p);
			sl->p = NULL;
			continue;
		}
		r >>= 16;
		if (r % 100 == 0)
			sl->size = rnd_range(&s, 128 * 1024, 1024 * 1024);
		else if (r % 10 == 0)
			sl->size = rnd_range(&s, 1024, 64 * 1024);
		else
			sl->size = rnd_range(&s, 1, 1024);
		sl->p = malloc(sl->size);
		if (!sl->p)
			die("malloc failed", NULL);
		sl->seed = pattern_seed(w * BUSY_SLOTS + (size_t)(sl - slots),
					sl->size) + gen++;
		fill(sl->p, sl->size, sl->seed);
	}
	for (k = 0; k < BUSY_SLOTS; k++) {
		if (!slots[k].p)
			continue;
		if (!verify(slots[k].p, slots[k].size, slots[k].seed))
			busy_flag((long)(w * BUSY_SLOTS + k));
		free(slots[k].p);
	}
	return NULL;
}

static pthread_t busy_th[MAX_WORKERS];

static void sc_busy(void)
{
	size_t t;

	if (pipe(never_ready) != 0)
		die("pipe failed", NULL);
	for (t = 0; t < busy_workers; t++)
		start_thread(&busy_th[t], busy_main, t);
	while ((size_t)atomic_load(&busy_started) < busy_workers)
		usleep(1000);
}

/*
 * busy16: busy with 16 workers, each allocating, freeing and checking its
 * own data, sleeping and polling now and then: the soak test's target.
 */
static void sc_busy16(void)
{
	busy_workers = MAX_WORKERS;
	sc_busy();
}

/*
 * churn: threads that keep creating short-lived threads, each of which
 * allocates, checks and frees a few blocks and exits, so that threads come
 * and go while a tool stops the process.  Reports like busy.
 */
static void *churn_child(void *arg)
{
	size_t w = (size_t)(uintptr_t)arg;
	uint64_t s = 0xc4u + w;
	void *p[8];
	size_t sz[8];
	int k;

	for (k = 0; k < 8; k++) {
		sz[k] = rnd_range(&s, 16, 4096);
		p[k] = malloc(sz[k]);
		if (!p[k])
			die("malloc failed", NULL);
		fill(p[k], sz[k], w + (uint64_t)k);
	}
	for (k = 0; k < 8; k++) {
		if (!verify(p[k], sz[k], w + (uint64_t)k))
			busy_flag((long)k);
		free(p[k]);
	}
	return NULL;
}

static void *churn_main(void *arg)
{
	size_t n = (size_t)(uintptr_t)arg;

	atomic_fetch_add(&busy_started, 1);
	while (!atomic_load_explicit(&busy_stop, memory_order_relaxed)) {
		pthread_t th;

		/* Parked, no child of this thread runs: each is joined. */
		busy_park();
		if (pthread_create(&th, NULL, churn_child,
				   (void *)(uintptr_t)n++) != 0)
			die("pthread_create failed", NULL);
		pthread_join(th, NULL);
	}
	return NULL;
}

static void sc_churn(void)
{
	size_t t;

	for (t = 0; t < BUSY_WORKERS; t++)
		start_thread(&busy_th[t], churn_main, t * 1000000);
	while (atomic_load(&busy_started) < BUSY_WORKERS)
		usleep(1000);
}

static void busy_report(void)
{
	put_pid_prefix();
	put_str(" api=none");
	put_field("threads", count_threads());
	put_str("\n");
	flush_out();
}

static void busy_stop_all(void)
{
	size_t t;

	atomic_store(&busy_stop, 1);
	for (t = 0; t < busy_workers; t++)
		pthread_join(busy_th[t], NULL);
}

/*
 * locked: glibc's malloc_stats() (malloc.c, 2.31 to 2.41) takes each
 * arena's mutex and calls fprintf (stderr, ...) before letting it go.  With
 * stderr on a pipe that is already full, the first write blocks, and the
 * thread sits in write(2) holding main_arena's lock for as long as the pipe
 * stays full: the state a tool must not read as if it were consistent.
 */
static int lock_pipe[2] = { -1, -1 };
static int saved_stderr = -1;
static pthread_t locker_th;
static atomic_int locker_done;
static atomic_int locker_tid;
static int locked_state;

static void *locker_main(void *arg)
{
	(void)arg;
	atomic_store(&locker_tid, (int)syscall(SYS_gettid));
	malloc_stats();
	atomic_store(&locker_done, 1);
	return NULL;
}

/* The state letter of one of our threads, from /proc/self/task/TID/stat. */
static char thread_state(int tid)
{
	char path[64] = "/proc/self/task/", buf[512], *p;
	size_t len = strlen(path);
	ssize_t n;
	int fd, i = 0;
	char digits[16];

	do {
		digits[i++] = (char)('0' + tid % 10);
		tid /= 10;
	} while (tid);
	while (i)
		path[len++] = digits[--i];
	memcpy(path + len, "/stat", 6);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return '?';
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return '?';
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : '?';
}

static void sc_locked(void)
{
	int fl, waited = 0;

	build_mixed(0, 2000, 0x10c4ed);
	if (pipe(lock_pipe) != 0)
		die("pipe failed", NULL);
	fl = fcntl(lock_pipe[1], F_GETFL);
	fcntl(lock_pipe[1], F_SETFL, fl | O_NONBLOCK);
	for (;;) {
		static const char junk[4096];

		if (write(lock_pipe[1], junk, sizeof(junk)) < 0)
			break;
	}
	for (;;) {
		if (write(lock_pipe[1], "x", 1) < 0)
			break;
	}
	fcntl(lock_pipe[1], F_SETFL, fl);
	saved_stderr = dup(2);
	dup2(lock_pipe[1], 2);
	start_thread(&locker_th, locker_main, 0);
	/* Wait until the locker sleeps in write(2), the lock taken. */
	while (!atomic_load(&locker_tid) ||
	       thread_state(atomic_load(&locker_tid)) != 'S') {
		usleep(1000);
		if (++waited > 10000)
			die("malloc_stats did not block", NULL);
	}
	locked_state = 1;
}

static void locked_release(void)
{
	char buf[4096];
	int fl = fcntl(lock_pipe[0], F_GETFL);

	fcntl(lock_pipe[0], F_SETFL, fl | O_NONBLOCK);
	while (!atomic_load(&locker_done)) {
		if (read(lock_pipe[0], buf, sizeof(buf)) <= 0)
			usleep(1000);
	}
	pthread_join(locker_th, NULL);
	dup2(saved_stderr, 2);
	close(saved_stderr);
	close(lock_pipe[0]);
	close(lock_pipe[1]);
	locked_state = 0;
}

/*
 * hostile_name: small_frees under a name made to break careless output: an
 * escape sequence, a quote, a backslash and a byte that is not UTF-8.
 */
static void sc_hostile_name(void)
{
	prctl(PR_SET_NAME, "\x1b[31m\"q\\\xff", 0, 0, 0);
	sc_small_frees();
}

/* ---------------------------------------------------------------- */
/* Scenarios that keep changing: a thread on a 10 ms schedule        */
/* ---------------------------------------------------------------- */

#define STEP_NS		10000000L

static const char *sc_arg;
static pthread_t pace_th;
static atomic_int pace_stop;
static atomic_ulong pace_count;		/* steps done, blocks leaked ... */
static unsigned long pace_value;	/* block size, or 0 */
static void (*pace_step)(unsigned long k);
static void (*pace_warmup)(void);
static atomic_int pace_ready;

static void *pace_main(void *arg)
{
	struct timespec next;
	unsigned long k = 0;

	(void)arg;
	if (pace_warmup)
		pace_warmup();
	atomic_store(&pace_ready, 1);
	clock_gettime(CLOCK_MONOTONIC, &next);
	while (!atomic_load(&pace_stop)) {
		pace_step(k++);
		atomic_store(&pace_count, k);
		/*
		 * Absolute deadlines: a step late because the process was
		 * stopped (by heapinspect) is made up at once, so that the
		 * long-run rate is exact.
		 */
		next.tv_nsec += STEP_NS;
		if (next.tv_nsec >= 1000000000L) {
			next.tv_nsec -= 1000000000L;
			next.tv_sec++;
		}
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next,
				       NULL) == EINTR)
			;
	}
	return NULL;
}

static void start_pace(void (*step)(unsigned long), void (*rep)(void))
{
	pace_step = step;
	pace_report = rep;
	start_thread(&pace_th, pace_main, 0);
	while (!atomic_load(&pace_ready))
		usleep(1000);
}

/*
 * The last leaked block, so that the block escapes: otherwise the compiler
 * may drop the stores into memory that nothing can read again, and the
 * leak would not be resident.
 */
static void *volatile leak_last;

static void leak_step(unsigned long k)
{
	void *p = malloc(pace_value);

	if (!p)
		die("malloc failed", NULL);
	fill(p, pace_value, pattern_seed(k, pace_value));
	leak_last = p;
}

static void leak_report(void)
{
	struct timespec ts;

	put_field("blocks", atomic_load(&pace_count));
	clock_gettime(CLOCK_REALTIME, &ts);
	put_field("block_size", pace_value);
	put_field("t_us", (unsigned long long)ts.tv_sec * 1000000ULL +
			  (unsigned long long)ts.tv_nsec / 1000);
}

static void steps_report(void)
{
	put_field("steps", atomic_load(&pace_count));
}

static void sc_leak(void)
{
	unsigned long rate = 1 << 20;

	if (sc_arg) {
		char *end;

		rate = strtoul(sc_arg, &end, 10);
		if (*end || rate < 100 || rate > (1UL << 30))
			die("leak: BYTES_PER_S must be 100 to 2^30", sc_arg);
	}
	pace_value = rate / 100;
	start_pace(leak_step, leak_report);
}

/* The largest block stays below glibc's mmap threshold (128 KiB). */
#define FRAG_FIRST	4096
#define FRAG_LAST	(120 * 1024)

static void *frag_prev;

static void fragment_step(unsigned long k)
{
	size_t size = FRAG_FIRST + 16 * k;
	void *p;

	if (size > FRAG_LAST)
		return;
	p = malloc(size);
	if (!p)
		die("malloc failed", NULL);
	memset(p, 0x5a, 64);
	/*
	 * _int_realloc (malloc.c, 2.31 to 2.41) shrinks in place: it keeps
	 * the head and frees the tail, whose neighbours (this head, and the
	 * block just allocated above it) are both in use, so it cannot
	 * coalesce with anything.
	 */
	if (frag_prev && realloc(frag_prev, 24) != frag_prev)
		die("realloc moved a shrinking block", NULL);
	frag_prev = p;
}

#define STEADY_SLOTS	256

static void *steady_slot[STEADY_SLOTS];
static uint64_t steady_seed = 0x5eed0400;

static void steady_put(size_t i)
{
	size_t size = rnd_range(&steady_seed, 16, 4096);

	steady_slot[i] = malloc(size);
	if (!steady_slot[i])
		die("malloc failed", NULL);
	memset(steady_slot[i], 0x33, size);
}

static void steady_step(unsigned long k)
{
	size_t i = (size_t)(rnd(&steady_seed) % STEADY_SLOTS);

	(void)k;
	free(steady_slot[i]);
	steady_put(i);
}

#define MMAP_AREA	((size_t)1 << 30)
#define MMAP_STEP	((size_t)64 << 10)

static unsigned char *mmap_area;

static void mmap_step(unsigned long k)
{
	size_t off = (size_t)k * MMAP_STEP;

	if (off + MMAP_STEP > MMAP_AREA)
		return;
	for (size_t i = 0; i < MMAP_STEP; i += 4096)
		mmap_area[off + i] = 1;
}

static void mmap_report(void)
{
	unsigned long k = atomic_load(&pace_count);

	put_field("touched", (unsigned long long)(k * MMAP_STEP < MMAP_AREA ?
						  k * MMAP_STEP : MMAP_AREA));
}

static void sc_fragment(void)
{
	start_pace(fragment_step, steps_report);
}

/*
 * In the pacing thread, so that its blocks live in its own arena from the
 * start; 100,000 replacements first, so that the heap has reached its
 * steady size before anyone looks.
 */
static void steady_warmup(void)
{
	for (size_t i = 0; i < STEADY_SLOTS; i++)
		steady_put(i);
	for (unsigned long k = 0; k < 100000; k++)
		steady_step(k);
}

static void sc_steady(void)
{
	pace_warmup = steady_warmup;
	start_pace(steady_step, steps_report);
}

static void sc_mmap_grow(void)
{
	void *p = mmap(NULL, MMAP_AREA, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		die("mmap failed", strerror(errno));
	mmap_area = p;
	start_pace(mmap_step, mmap_report);
}

static void sc_grow(void)
{
	set_table_end(1);
	alloc_block(0, 1);
}

/* "alloc N K": K blocks, N bytes in all, at table entries from table_end. */
static int grow_alloc(const char *args)
{
	unsigned long long n = 0, k = 0;
	const char *p = args;
	size_t base = table_end, i;

	while (*p >= '0' && *p <= '9')
		n = n * 10 + (unsigned long long)(*p++ - '0');
	if (*p++ != ' ')
		return -1;
	while (*p >= '0' && *p <= '9')
		k = k * 10 + (unsigned long long)(*p++ - '0');
	if (*p || k == 0 || k > n || base + k > MAX_BLOCKS)
		return -1;
	set_table_end(base + k);
	for (i = 0; i < k; i++)
		alloc_block(base + i, (size_t)(n / k + (i == k - 1 ?
							 n % k : 0)));
	return 0;
}

/*
 * decoys: the mixed heap of build_mixed, and beside it byte patterns that a
 * symbol-less locator could take for glibc's own: struct malloc_state look-
 * alikes whose bins point at themselves and whose next points back at them
 * (one in .data, initialized as glibc initializes main_arena, so that the
 * executable carries the same relocation; one in .bss; one on the heap),
 * and copies of mp_'s default values in every layout (before and after
 * glibc 2.35 added thp_pagesize, hp_pagesize and hp_flags; 2.43's, with
 * thp_mode and 76 tcache bins, and 2.44's) in .data, .bss and on the
 * heap; each arena both with fastbins and without (glibc 2.43 and later).
 * heapinspect must ignore them all.
 */
struct fake_state {
	int mutex, flags, have_fastchunks;
	void *fastbins[10];
	void *top, *last_remainder;
	void *bins[254];
	unsigned binmap[4];
	struct fake_state *next, *next_free;
	size_t attached_threads, system_mem, max_system_mem;
};

/* glibc 2.43's struct malloc_state: fastbinsY and have_fastchunks gone. */
struct fake_state_243 {
	int mutex, flags;
	void *top, *last_remainder;
	void *bins[254];
	unsigned binmap[4];
	struct fake_state_243 *next, *next_free;
	size_t attached_threads, system_mem, max_system_mem;
};

struct fake_par_231 {
	unsigned long trim_threshold;
	size_t top_pad, mmap_threshold, arena_test, arena_max;
	int n_mmaps, n_mmaps_max, max_n_mmaps, no_dyn_threshold;
	size_t mmapped_mem, max_mmapped_mem;
	char *sbrk_base;
	size_t tcache_bins, tcache_max_bytes, tcache_count;
	size_t tcache_unsorted_limit;
};

struct fake_par_235 {
	unsigned long trim_threshold;
	size_t top_pad, mmap_threshold, arena_test, arena_max;
	size_t thp_pagesize, hp_pagesize;
	int hp_flags, n_mmaps, n_mmaps_max, max_n_mmaps, no_dyn_threshold;
	size_t mmapped_mem, max_mmapped_mem;
	char *sbrk_base;
	size_t tcache_bins, tcache_max_bytes, tcache_count;
	size_t tcache_unsorted_limit;
};

/* 2.43: thp_mode first, tcache_small_bins; 2.44: no unsorted limit. */
struct fake_par_243 {
	unsigned long trim_threshold;
	size_t top_pad, mmap_threshold, arena_test, arena_max;
	int thp_mode;
	size_t thp_pagesize, hp_pagesize;
	int hp_flags, n_mmaps, n_mmaps_max, max_n_mmaps, no_dyn_threshold;
	size_t mmapped_mem, max_mmapped_mem;
	char *sbrk_base;
	size_t tcache_small_bins, tcache_max_bytes, tcache_count;
	size_t tcache_unsorted_limit;
};

#define FAKE_PAR_DEFAULTS                                                   \
	.trim_threshold = 128 * 1024, .top_pad = 128 * 1024,               \
	.mmap_threshold = 128 * 1024, .arena_test = 8,                     \
	.n_mmaps_max = 65536, .tcache_bins = 64, .tcache_max_bytes = 1032, \
	.tcache_count = 7

/* mp_ of Debian's 2.43 and 2.44 as their files hold it (gdb: p mp_). */
#define FAKE_PAR_DEFAULTS_243(mode)                                         \
	.trim_threshold = 128 * 1024, .top_pad = 128 * 1024,               \
	.mmap_threshold = 128 * 1024, .arena_test = 8, .thp_mode = mode,   \
	.n_mmaps_max = 65536, .tcache_small_bins = 64,                     \
	.tcache_max_bytes = 1041, .tcache_count = 16

static struct fake_state decoy_arena_data = {
	.next = &decoy_arena_data,
	.attached_threads = 1,
};
static struct fake_state decoy_arena_bss;
static struct fake_par_231 decoy_par_231_data = { FAKE_PAR_DEFAULTS };
static struct fake_par_235 decoy_par_235_data = { FAKE_PAR_DEFAULTS };
static struct fake_par_231 decoy_par_231_bss;
static struct fake_par_235 decoy_par_235_bss;
static struct fake_state_243 decoy_arena243_data = {
	.next = &decoy_arena243_data,
	.attached_threads = 1,
};
static struct fake_state_243 decoy_arena243_bss;
static struct fake_par_243 decoy_par_243_data[2] = {
	{ FAKE_PAR_DEFAULTS_243(3) }, { FAKE_PAR_DEFAULTS_243(0) },
};
static struct fake_par_243 decoy_par_243_bss[2];

/* What malloc_init_state does to an arena: bins and top at themselves. */
static void fake_init(struct fake_state *a)
{
	for (size_t i = 0; i < 127; i++) {
		/* bin_at (a, i + 1): the pair seen as a chunk's fd/bk. */
		void *b = (char *)&a->bins[2 * i] - 2 * sizeof(void *);

		a->bins[2 * i] = b;
		a->bins[2 * i + 1] = b;
	}
	a->top = (char *)&a->bins[0] - 2 * sizeof(void *);
	a->next = a;
	a->attached_threads = 1;
}

static void fake_init_243(struct fake_state_243 *a)
{
	for (size_t i = 0; i < 127; i++) {
		void *b = (char *)&a->bins[2 * i] - 2 * sizeof(void *);

		a->bins[2 * i] = b;
		a->bins[2 * i + 1] = b;
	}
	a->top = (char *)&a->bins[0] - 2 * sizeof(void *);
	a->next = a;
	a->attached_threads = 1;
}

/* Not in blocks[]: their contents are not a fill pattern. */
static void *volatile decoy_keep[8];

static void sc_decoys(void)
{
	static const struct fake_par_231 p231 = { FAKE_PAR_DEFAULTS };
	static const struct fake_par_235 p235 = { FAKE_PAR_DEFAULTS };
	struct fake_state *heap_arena;
	void *heap_par;

	build_mixed(0, 5000, 0x5eed0006);
	fake_init(&decoy_arena_data);
	fake_init(&decoy_arena_bss);
	decoy_par_231_bss = p231;
	decoy_par_235_bss = p235;
	/* On the heap too (kept, never freed: part of the figures). */
	heap_arena = malloc(sizeof(*heap_arena));
	heap_par = malloc(sizeof(p231) + sizeof(p235));
	if (!heap_arena || !heap_par)
		die("malloc failed", NULL);
	memset(heap_arena, 0, sizeof(*heap_arena));
	fake_init(heap_arena);
	memcpy(heap_par, &p231, sizeof(p231));
	memcpy((char *)heap_par + sizeof(p231), &p235, sizeof(p235));
	decoy_keep[0] = heap_arena;
	decoy_keep[1] = heap_par;
	decoy_keep[2] = &decoy_par_231_data;
	decoy_keep[3] = &decoy_par_235_data;
	/* And in the shape of 2.43 and 2.44. */
	{
		static const struct fake_par_243 p243[2] = {
			{ FAKE_PAR_DEFAULTS_243(3) },
			{ FAKE_PAR_DEFAULTS_243(0) },
		};
		struct fake_state_243 *arena243;
		void *par243;

		fake_init_243(&decoy_arena243_data);
		fake_init_243(&decoy_arena243_bss);
		memcpy(decoy_par_243_bss, p243, sizeof(p243));
		arena243 = malloc(sizeof(*arena243));
		par243 = malloc(sizeof(p243));
		if (!arena243 || !par243)
			die("malloc failed", NULL);
		memset(arena243, 0, sizeof(*arena243));
		fake_init_243(arena243);
		memcpy(par243, p243, sizeof(p243));
		decoy_keep[4] = arena243;
		decoy_keep[5] = par243;
		decoy_keep[6] = decoy_par_243_data;
	}
}


/* ---------------------------------------------------------------- */
/* Heaps the kernel shows in several mappings                       */
/* ---------------------------------------------------------------- */

/*
 * The kernel keeps one mapping (VMA) per run of pages with the same flags
 * and the same anonymous memory object.  A heap is shown in several when
 * part of it differs: pages inherited by fork next to pages grown after it
 * (the child's own anon_vma cannot merge with the inherited one), advice
 * such as MADV_DONTDUMP or MADV_HUGEPAGE, mlock, or other permissions.
 * These scenarios make such heaps and add to the ready line how many
 * mappings their heaps span, counted in /proc/self/maps:
 *   heap_maps=<n>   lines of [heap] (the main arena's brk area)
 *   arena_maps=<n>  readable lines inside the 64 MiB heap of the non-main
 *                   arena that split_arena_block lies in
 *   thp_madvise=<0|1>  (hugetlb only) whether glibc.malloc.hugetlb=1 can
 *                   work here: glibc 2.35 or later, and the kernel's THP
 *                   mode "madvise" (glibc advises only then)
 */
#define HEAP_MAX	(64UL << 20)	/* HEAP_MAX_SIZE on 64-bit (arena.c) */

static char maps_buf[1 << 20];
static void *volatile split_arena_block;
static int split_thp = -1;

/* /proc/self/maps into maps_buf, NUL-terminated. */
static void read_maps(void)
{
	size_t len = 0;
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		die("cannot open /proc/self/maps", strerror(errno));
	while (len < sizeof(maps_buf) - 1) {
		ssize_t r = read(fd, maps_buf + len, sizeof(maps_buf) - 1 - len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	maps_buf[len] = '\0';
}

static unsigned long hex(const char **s)
{
	unsigned long v = 0;

	for (;; (*s)++) {
		char c = **s;

		if (c >= '0' && c <= '9')
			v = v * 16 + (unsigned long)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v * 16 + (unsigned long)(c - 'a' + 10);
		else
			return v;
	}
}

/*
 * Lines of /proc/self/maps that are [heap] (lo == hi == 0), or readable
 * and start in [lo, hi).
 */
static unsigned long count_maps(unsigned long lo, unsigned long hi)
{
	unsigned long n = 0;
	const char *l = maps_buf;

	while (*l) {
		const char *eol = strchr(l, '\n');
		const char *s = l;
		unsigned long start = hex(&s);

		if (!eol)
			eol = l + strlen(l);
		if (lo == hi) {
			const char *h = strstr(l, "[heap]");

			n += h && h < eol;
		} else if (start >= lo && start < hi) {
			/* "start-end perms ...": perms after the first blank. */
			s = strchr(s, ' ');
			n += s && s < eol && s[1] == 'r';
		}
		l = *eol ? eol + 1 : eol;
	}
	return n;
}

static void split_report(void)
{
	read_maps();
	put_field("heap_maps", count_maps(0, 0));
	if (split_arena_block) {
		unsigned long h = (unsigned long)split_arena_block &
				  ~(HEAP_MAX - 1);

		put_field("arena_maps", count_maps(h, h + HEAP_MAX));
	}
	if (split_thp >= 0)
		put_field("thp_madvise", (unsigned long long)split_thp);
}

/* The page-aligned part of a block that holds whole pages: npages of them. */
static char *inner_pages(void *p, size_t size, size_t npages)
{
	uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t a = ((uintptr_t)p + pg - 1) & ~(pg - 1);

	if (a + npages * pg > (uintptr_t)p + size)
		die("a block too small for its pages", NULL);
	return (char *)a;
}

/*
 * In the arena of the calling thread: a live block, a free chunk of 48 KiB
 * between two live ones (neither tcache nor a fastbin takes it: it is in
 * the unsorted bin, where every walk reads it), and the first block kept
 * to find the arena's heap.  Table entries [base, base + 4).
 */
struct split_blocks {
	char *live_pages;	/* 2 pages inside a live block */
	char *free_pages;	/* 2 pages inside a free chunk */
};

static void split_blocks(size_t base, struct split_blocks *sb)
{
	const size_t big = 48 * 1024;
	void *freed;

	set_table_end(base + 4);
	alloc_block(base, big);
	alloc_block(base + 1, big);
	alloc_block(base + 2, big);
	alloc_block(base + 3, 100);
	sb->live_pages = inner_pages(blocks[base].p, big, 2);
	freed = blocks[base + 1].p;
	sb->free_pages = inner_pages(freed, big, 2);
	free_block(base + 1);
}

/* What a split scenario does to one page range, in either arena. */
enum split_how { SPLIT_DONTDUMP, SPLIT_HUGEPAGE, SPLIT_MLOCK, SPLIT_RO,
		 SPLIT_RWX };

static void split_pages(char *p, enum split_how how)
{
	size_t len = (size_t)sysconf(_SC_PAGESIZE);
	int r = 0;

	switch (how) {
	case SPLIT_DONTDUMP:
		r = madvise(p, len, MADV_DONTDUMP);
		break;
	case SPLIT_HUGEPAGE:
		r = madvise(p, len, MADV_HUGEPAGE);
		break;
	case SPLIT_MLOCK:
		r = mlock(p, len);
		break;
	case SPLIT_RO:
		r = mprotect(p, len, PROT_READ);
		break;
	case SPLIT_RWX:
		r = mprotect(p, len, PROT_READ | PROT_WRITE | PROT_EXEC);
		break;
	}
	if (r)
		die("cannot split the heap's mapping", strerror(errno));
}

static enum split_how split_live, split_free;
static struct split_blocks split_main;

/* The non-main arena of a split scenario: built, split, kept. */
static void *split_arena_main(void *arg)
{
	struct split_blocks sb;

	(void)arg;
	/* First: its large mallocs would consolidate the fastbins. */
	split_blocks(30000 + T_BLOCKS + MIX_EXTRA, &sb);
	build_mixed(30000, T_BLOCKS, 0x5eed0700);
	split_arena_block = blocks[30000 + 2].p;
	split_pages(sb.live_pages, split_live);
	split_pages(sb.free_pages, split_free);
	return NULL;
}

/*
 * A mixed heap in the main arena and in one thread's arena (the thread
 * exits; its arena stays, on the free list), each with a page of a live
 * block and a page of a free chunk given its own mapping.
 */
static void build_split(enum split_how live, enum split_how freed)
{
	pthread_t th;
	int err;

	split_live = live;
	split_free = freed;
	split_blocks(20000 + MIX_EXTRA, &split_main);
	build_mixed(0, 20000, 0x5eed0701);
	start_thread(&th, split_arena_main, 0);
	err = pthread_join(th, NULL);
	if (err)
		die("pthread_join failed", strerror(err));
	split_pages(split_main.live_pages, live);
	split_pages(split_main.free_pages, freed);
	pace_report = split_report;
}

/* MADV_DONTDUMP on a live block's page, MADV_HUGEPAGE on a free one's. */
static void sc_madvise_split(void)
{
	build_split(SPLIT_DONTDUMP, SPLIT_HUGEPAGE);
}

static void sc_mlock_split(void)
{
	build_split(SPLIT_MLOCK, SPLIT_MLOCK);
}

/*
 * Other permissions, as programs set them: a live block's page made
 * read-only (sealed data), and a free chunk's page left executable (a JIT
 * buffer made rwx, then freed).  malloc itself only makes a non-main
 * arena's heap PROT_NONE past its end, which every heap has.
 */
static void sc_mprotect_split(void)
{
	build_split(SPLIT_RO, SPLIT_RWX);
}

/*
 * sbrk_own: a program that moves the brk itself once malloc has started
 * (a runtime of its own beside malloc): [heap] ends 64 KiB past malloc's
 * top.  glibc copes (the next sysmalloc sees a foreign sbrk); checks that
 * expect [heap] to end with top do not.
 */
static void sc_sbrk_own(void)
{
	char *p;

	build_mixed(0, 5000, 0x5eed0730);
	p = sbrk(64 * 1024);
	if (p == (void *)-1)
		die("sbrk failed", strerror(errno));
	memset(p, 0x5a, 64 * 1024);
}

static char *const *main_argv;

/*
 * glibc's own THP advice: with glibc.malloc.hugetlb=1 (2.35 and later)
 * sysmalloc advises MADV_HUGEPAGE on what it adds to the heap, rounded to
 * huge pages, when the kernel's THP mode is "madvise".  Tunables are read
 * at start: the scenario executes itself again with the tunable set.
 */
static void sc_hugetlb(void)
{
	const char *t = getenv("GLIBC_TUNABLES");
	char mode[256] = "";
	ssize_t n = -1;
	int fd;

	if (!t || !strstr(t, "glibc.malloc.hugetlb=1")) {
		if (setenv("GLIBC_TUNABLES", "glibc.malloc.hugetlb=1", 1))
			die("setenv failed", strerror(errno));
		execv("/proc/self/exe", main_argv);
		die("execv failed", strerror(errno));
	}
	fd = open("/sys/kernel/mm/transparent_hugepage/enabled",
		  O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, mode, sizeof(mode) - 1);
		close(fd);
	}
	mode[n > 0 ? n : 0] = '\0';
#if __GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 35)
	split_thp = strstr(mode, "[madvise]") != NULL;
#else
	split_thp = 0;
#endif
	build_mixed(0, 20000, 0x5eed0702);
	/* Enough for sysmalloc to grow the heap several times. */
	build_mixed(20000 + MIX_EXTRA, 20000, 0x5eed0703);
	pace_report = split_report;
}

/*
 * forked, forked_parent: a pre-forking server.  The parent builds a heap
 * in the main arena and in a thread's (the thread exits, its arena is
 * kept on the free list), then forks.  The child grows both: its main
 * thread's heap with brk, and a new thread's, which takes the inherited
 * arena off the free list (the fork handler puts every arena but the
 * forking thread's there) and grows its heap with mprotect.  Pages the
 * child added lie next to inherited ones in mappings of their own.  The
 * parent grows its heap after the fork too.
 *   forked: the child reports and answers commands; its ready line names
 *     the child's pid.  The parent waits for it and exits with its status.
 *   forked_parent: the parent reports and answers; the child waits,
 *     without stdin and stdout, until the parent exits.
 * The child dies with the parent (PR_SET_PDEATHSIG), so that a driver
 * that kills the process it started leaves nothing behind.
 */
static void *forked_arena_main(void *arg)
{
	size_t base = (size_t)(uintptr_t)arg;

	build_mixed(base, T_BLOCKS, 0x5eed0710 + base);
	if (!split_arena_block)
		split_arena_block = blocks[base + 2].p;
	return NULL;
}

static void forked_grow(size_t base, uint64_t seed)
{
	pthread_t th;
	int err;

	build_mixed(base, 6000, seed);
	start_thread(&th, forked_arena_main, base + 6000 + MIX_EXTRA);
	err = pthread_join(th, NULL);
	if (err)
		die("pthread_join failed", strerror(err));
}

static void forked_common(int report_child)
{
	int alive[2];
	pid_t pid;

	/* Parent: [0, 8000+), child: [10000, 18000+), parent after: 20000+. */
	forked_grow(0, 0x5eed0720);
	if (pipe(alive))
		die("pipe failed", strerror(errno));
	pid = fork();
	if (pid < 0)
		die("fork failed", strerror(errno));
	if (pid == 0) {
		close(alive[1]);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
#ifdef PR_SET_PTRACER
		prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
#endif
		if (getppid() == 1)
			_exit(2);
		split_arena_block = NULL;
		forked_grow(10000, 0x5eed0721);
		if (report_child) {
			pace_report = split_report;
			return;
		}
		/* Out of the way: no stdin, no stdout, until the parent ends. */
		close(0);
		close(1);
		while (read(alive[0], &pid, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	close(alive[0]);
	if (report_child) {
		int status;

		close(0);
		close(1);
		while (waitpid(pid, &status, 0) < 0)
			if (errno != EINTR)
				_exit(2);
		_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 2);
	}
	/* alive[1] stays open until this process ends. */
	forked_grow(20000, 0x5eed0722);
	pace_report = split_report;
}

static void sc_forked(void)
{
	forked_common(1);
}

static void sc_forked_parent(void)
{
	forked_common(0);
}

static const struct scenario {
	const char *name;
	void (*build)(void);
} scenarios[] = {
	{ "fresh", sc_fresh },
	{ "small_frees", sc_small_frees },
	{ "mixed", sc_mixed },
	{ "mmap_large", sc_mmap_large },
	{ "threads8", sc_threads8 },
	{ "threads_exited", sc_threads_exited },
	{ "arena_heaps", sc_arena_heaps },
	{ "trimmed", sc_trimmed },
	{ "million", sc_million },
	{ "million_lite", sc_million_lite },
	{ "busy", sc_busy },
	{ "busy16", sc_busy16 },
	{ "locked", sc_locked },
	{ "churn", sc_churn },
	{ "hostile_name", sc_hostile_name },
	{ "leak", sc_leak },
	{ "fragment", sc_fragment },
	{ "steady", sc_steady },
	{ "mmap_grow", sc_mmap_grow },
	{ "grow", sc_grow },
	{ "decoys", sc_decoys },
	{ "forked", sc_forked },
	{ "forked_parent", sc_forked_parent },
	{ "madvise_split", sc_madvise_split },
	{ "mlock_split", sc_mlock_split },
	{ "mprotect_split", sc_mprotect_split },
	{ "hugetlb", sc_hugetlb },
	{ "sbrk_own", sc_sbrk_own },
};

/* ---------------------------------------------------------------- */
/* Command loop                                                     */
/* ---------------------------------------------------------------- */

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
			/* An overlong line is cut into pieces. */
			n = nl ? (size_t)(nl - inbuf) : inlen;
			take = n < cap - 1 ? n : cap - 1;
			memcpy(line, inbuf, take);
			line[take] = '\0';
			if (take && line[take - 1] == '\r')
				line[take - 1] = '\0';
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

int main(int argc, char **argv)
{
	const struct scenario *sc = NULL;
	char line[sizeof(inbuf) + 1];
	size_t i;
	int busy;
	long bad;

	if (argc != 2 && argc != 3)
		die("usage: hi_target SCENARIO [ARG]", NULL);
	sc_arg = argc == 3 ? argv[2] : NULL;
	main_argv = argv;
	for (i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
		if (!strcmp(argv[1], scenarios[i].name))
			sc = &scenarios[i];
	if (!sc)
		die("unknown scenario", argv[1]);
	busy = sc->build == sc_busy || sc->build == sc_busy16 ||
	       sc->build == sc_churn;
	/* A vanished driver must not kill us in the middle of a write. */
	signal(SIGPIPE, SIG_IGN);
#ifdef PR_SET_PTRACER
	/*
	 * With Yama's ptrace_scope = 1 only ancestors may attach; the tool
	 * is our sibling.  EINVAL without Yama: ignored.
	 */
	prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
#endif

	sc->build();
	if (busy || locked_state)
		busy_report();
	else
		report();

	while (read_line(line, sizeof(line))) {
		if (!strcmp(line, "release") && locked_state) {
			locked_release();
			report();
		} else if (!strcmp(line, "pause") && busy) {
			busy_set_pause(1, (int)busy_workers);
			report();
		} else if (!strcmp(line, "resume") && busy) {
			busy_set_pause(0, (int)busy_workers);
			put_str("resumed\n");
			flush_out();
		} else if (!strcmp(line, "report")) {
			if (busy || locked_state)
				busy_report();
			else
				report();
		} else if (!strcmp(line, "check")) {
			bad = busy ? atomic_load(&busy_bad) : check_blocks();
			if (busy && (atomic_load(&busy_eintr) ||
				     atomic_load(&busy_short))) {
				put_str("bad eintr=");
				put_u((unsigned long long)atomic_load(
					&busy_eintr));
				put_str(" short=");
				put_u((unsigned long long)atomic_load(
					&busy_short));
				put_str(bad < 0 ? "\n" : " data\n");
			} else if (bad < 0) {
				put_str("ok\n");
			} else {
				put_str("bad ");
				put_u((unsigned long long)bad);
				put_str("\n");
			}
			flush_out();
		} else if (!strncmp(line, "alloc ", 6) &&
			   sc->build == sc_grow) {
			if (grow_alloc(line + 6) == 0) {
				report();
			} else {
				put_str("error bad alloc\n");
				flush_out();
			}
		} else if (!strncmp(line, "exec ", 5) && !busy) {
			/*
			 * Become `hi_target SCENARIO` anew, on the same pid,
			 * stdin and stdout: it builds its heap and writes its
			 * own ready line.
			 */
			char *nargv[] = { argv[0], line + 5, NULL };

			execv("/proc/self/exe", nargv);
			die("execv failed", strerror(errno));
		} else if (!strcmp(line, "exit")) {
			break;
		} else {
			put_str("error unknown command\n");
			flush_out();
		}
	}

	if (pace_step) {
		atomic_store(&pace_stop, 1);
		pthread_join(pace_th, NULL);
	}
	if (busy) {
		busy_set_pause(0, (int)busy_workers);
		busy_stop_all();
		bad = atomic_load(&busy_bad);
	} else {
		bad = check_blocks();
	}
	return bad < 0 ? 0 : 1;
}
