/*
 * hi_callsafety - a target that notices anything an injected call breaks.
 *
 * Usage: hi_callsafety
 *
 * Threads:
 *   4 allocators  malloc, fill, check and free blocks all the time;
 *   reader        blocked in read(2) on a pipe nobody writes: any return
 *                 but the final "q" (EINTR, a short read) is an error;
 *   sleeper       nanosleep(2) of 20 ms in a loop: EINTR or a sleep shorter
 *                 than asked (CLOCK_MONOTONIC) is an error;
 *   spinner       keeps values in all 32 zmm and 6 opmask registers
 *                 (AVX-512) and checks every one on every round; without
 *                 AVX-512, ymm0-15 (AVX2), and the ready line says so;
 *   locker        on "lock", blocks in glibc's malloc_stats() writing to a
 *                 full pipe, holding main_arena's lock, until "unlock".
 * The main thread reads commands from fd 0; a read that fails with EINTR
 * is an error too.
 *
 * It writes, once its threads run:
 *   ready pid=<pid> spinner=<tid> reader=<tid> sleeper=<tid>
 *         alloc=<tid>,<tid>,<tid>,<tid> regs=<zmm|ymm|none>
 * and answers:
 *   lock     "locked" once the locker holds the lock (blocked in write)
 *   unlock   "unlocked" once it has let go
 *   check    "ok rounds=<n> sleeps=<n> ops=<n>" or "bad <what>"
 *   exit     stop everything, exit 0 if nothing went wrong, else 1
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define NALLOC 4
#define SLOTS 256

static atomic_int stop;
static char bad[256];
static atomic_int bad_set;
static atomic_long rounds, sleeps, ops;
static atomic_int tids[8];
static int reader_pipe[2];

static void flag(const char *what)
{
	int expect = 0;

	if (atomic_compare_exchange_strong(&bad_set, &expect, 1))
		snprintf(bad, sizeof(bad), "%s", what);
}

static int gettid_(void)
{
	return (int)syscall(SYS_gettid);
}

static uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* ---- allocators ---- */

struct slot {
	uint64_t *p;
	size_t n;
	uint64_t seed;
};

static void *alloc_main(void *arg)
{
	int w = (int)(intptr_t)arg;
	struct slot s[SLOTS];
	uint64_t r = 0x5eed + w;

	atomic_store(&tids[3 + w], gettid_());
	memset(s, 0, sizeof(s));
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		struct slot *sl = &s[rnd(&r) % SLOTS];

		if (sl->p) {
			for (size_t i = 0; i < sl->n; i++)
				if (sl->p[i] != sl->seed + i)
					flag("allocator data changed");
			free(sl->p);
			sl->p = NULL;
		} else {
			sl->n = 1 + rnd(&r) % 512;
			sl->seed = rnd(&r);
			sl->p = malloc(sl->n * 8);
			if (!sl->p) {
				flag("malloc failed");
				break;
			}
			for (size_t i = 0; i < sl->n; i++)
				sl->p[i] = sl->seed + i;
		}
		/* Leave the two shared cores some time now and then. */
		if (atomic_fetch_add_explicit(&ops, 1, memory_order_relaxed) %
			    64 == 0)
			usleep(200);
		/* Mostly outside the allocator: check every live block. */
		for (int k = 0; k < 4; k++) {
			struct slot *c = &s[rnd(&r) % SLOTS];

			for (size_t i = 0; c->p && i < c->n; i++)
				if (c->p[i] != c->seed + i)
					flag("allocator data changed");
		}
	}
	for (int k = 0; k < SLOTS; k++)
		free(s[k].p);
	return NULL;
}

/* ---- reader and sleeper ---- */

static void *reader_main(void *arg)
{
	char c;

	(void)arg;
	atomic_store(&tids[1], gettid_());
	for (;;) {
		ssize_t n = read(reader_pipe[0], &c, 1);

		if (n == 1 && c == 'q')
			return NULL;
		if (n < 0 && errno == EINTR)
			flag("read() in the reader failed with EINTR");
		else
			flag("read() in the reader returned early");
		return NULL;
	}
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

static void *sleeper_main(void *arg)
{
	const struct timespec req = { 0, 20 * 1000 * 1000 };

	(void)arg;
	atomic_store(&tids[2], gettid_());
	while (!atomic_load(&stop)) {
		uint64_t t0 = mono_ns();
		struct timespec rem;

		if (nanosleep(&req, &rem) != 0) {
			flag(errno == EINTR ? "nanosleep() failed with EINTR"
					    : "nanosleep() failed");
			return NULL;
		}
		if (mono_ns() - t0 < 20 * 1000 * 1000) {
			flag("nanosleep() slept less than asked");
			return NULL;
		}
		atomic_fetch_add(&sleeps, 1);
	}
	return NULL;
}

/* ---- spinner ---- */

static const char *regs_kind = "none";
static uint64_t pattern[32 * 8] __attribute__((aligned(64)));
/*
 * The spinner sleeps 200 us every 64 rounds, by a raw nanosleep system call
 * from inside its asm, so that the values must also survive the kernel.
 * The result goes to sleep_ret: anything but 0 is an error.
 */
static const struct timespec spin_nap = { 0, 200 * 1000 };
static long sleep_ret;

static void new_pattern(uint64_t *seed)
{
	for (int i = 0; i < 32 * 8; i++)
		pattern[i] = rnd(seed);
}

/*
 * Load zmm0-31 and k2-k7 from the pattern, then check all of them n times.
 * Returns 0, or 1 when a register changed.  One asm statement: the compiler
 * never sees these registers in between.
 */
__attribute__((target("avx512f"))) static int spin_zmm(long n)
{
	int fail;

	__asm__ volatile(
		".irp r,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,"
		"20,21,22,23,24,25,26,27,28,29,30,31\n\t"
		"vmovdqu64 \\r*64(%[p]), %%zmm\\r\n\t"
		".endr\n\t"
		".irp k,2,3,4,5,6,7\n\t"
		"kmovw \\k*2(%[p]), %%k\\k\n\t"
		".endr\n"
		"1:\n\t"
		".irp r,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,"
		"20,21,22,23,24,25,26,27,28,29,30,31\n\t"
		"vpcmpeqq \\r*64(%[p]), %%zmm\\r, %%k1\n\t"
		"kmovw %%k1, %%eax\n\t"
		"cmp $0xff, %%eax\n\t"
		"jne 2f\n\t"
		".endr\n\t"
		".irp k,2,3,4,5,6,7\n\t"
		"kmovw %%k\\k, %%eax\n\t"
		"cmpw \\k*2(%[p]), %%ax\n\t"
		"jne 2f\n\t"
		".endr\n\t"
		"pause\n\t"
		"test $63, %[n]\n\t"
		"jnz 4f\n\t"
		"mov $35, %%eax\n\t"
		"mov %[ts], %%rdi\n\t"
		"xor %%esi, %%esi\n\t"
		"syscall\n\t"
		"mov %%rax, %[sr]\n\t"
		"test %%rax, %%rax\n\t"
		"jnz 2f\n"
		"4:\n\t"
		"dec %[n]\n\t"
		"jnz 1b\n\t"
		"xor %[f], %[f]\n\t"
		"jmp 3f\n"
		"2:\n\t"
		"mov $1, %[f]\n"
		"3:\n\t"
		: [f] "=&r"(fail), [n] "+r"(n), [sr] "=m"(sleep_ret)
		: [p] "r"(pattern), [ts] "r"(&spin_nap)
		: "rax", "rdi", "rsi", "rcx", "r11", "memory", "cc", "k1", "k2", "k3", "k4", "k5", "k6",
		  "k7", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6",
		  "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13",
		  "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19",
		  "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25",
		  "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31");
	return fail;
}

/* The same with ymm0-14 (AVX2, ymm15 compares), without AVX-512. */
__attribute__((target("avx2"))) static int spin_ymm(long n)
{
	int fail;

	__asm__ volatile(
		".irp r,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14\n\t"
		"vmovdqu \\r*32(%[p]), %%ymm\\r\n\t"
		".endr\n"
		"1:\n\t"
		".irp r,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14\n\t"
		"vpcmpeqq \\r*32(%[p]), %%ymm\\r, %%ymm15\n\t"
		"vpmovmskb %%ymm15, %%eax\n\t"
		"cmp $-1, %%eax\n\t"
		"jne 2f\n\t"
		".endr\n\t"
		"pause\n\t"
		"test $63, %[n]\n\t"
		"jnz 4f\n\t"
		"mov $35, %%eax\n\t"
		"mov %[ts], %%rdi\n\t"
		"xor %%esi, %%esi\n\t"
		"syscall\n\t"
		"mov %%rax, %[sr]\n\t"
		"test %%rax, %%rax\n\t"
		"jnz 2f\n"
		"4:\n\t"
		"dec %[n]\n\t"
		"jnz 1b\n\t"
		"xor %[f], %[f]\n\t"
		"jmp 3f\n"
		"2:\n\t"
		"mov $1, %[f]\n"
		"3:\n\t"
		"vzeroupper\n\t"
		: [f] "=&r"(fail), [n] "+r"(n), [sr] "=m"(sleep_ret)
		: [p] "r"(pattern), [ts] "r"(&spin_nap)
		: "rax", "rdi", "rsi", "rcx", "r11", "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3",
		  "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
		  "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
	return fail;
}

static void *spinner_main(void *arg)
{
	uint64_t seed = 0xa5a5a5a5;
	int zmm = __builtin_cpu_supports("avx512f");
	int ymm = __builtin_cpu_supports("avx2");

	(void)arg;
	atomic_store(&tids[0], gettid_());
	while (!atomic_load(&stop)) {
		int fail;

		new_pattern(&seed);
		if (zmm)
			fail = spin_zmm(2048);
		else if (ymm)
			fail = spin_ymm(2048);
		else
			fail = (usleep(1000), 0);
		if (fail && sleep_ret) {
			flag("the spinner's nanosleep failed (EINTR?)");
			return NULL;
		}
		if (fail) {
			flag(zmm ? "a zmm or opmask register changed"
				 : "a ymm register changed");
			return NULL;
		}
		atomic_fetch_add(&rounds, 1);
	}
	return NULL;
}

/* ---- locker: glibc's malloc_stats() on a full pipe ---- */

static int lock_pipe[2] = { -1, -1 };
static int saved_stderr = -1;
static pthread_t locker_th;
static atomic_int locker_tid, locker_done;

static void *locker_main(void *arg)
{
	(void)arg;
	atomic_store(&locker_tid, gettid_());
	malloc_stats();
	atomic_store(&locker_done, 1);
	return NULL;
}

static char thread_state(int tid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
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

static void lock_start(void)
{
	static const char junk[4096];
	int fl;

	if (pipe(lock_pipe) != 0)
		flag("pipe failed");
	fl = fcntl(lock_pipe[1], F_GETFL);
	fcntl(lock_pipe[1], F_SETFL, fl | O_NONBLOCK);
	while (write(lock_pipe[1], junk, sizeof(junk)) > 0)
		;
	while (write(lock_pipe[1], "x", 1) > 0)
		;
	fcntl(lock_pipe[1], F_SETFL, fl);
	saved_stderr = dup(2);
	dup2(lock_pipe[1], 2);
	atomic_store(&locker_tid, 0);
	atomic_store(&locker_done, 0);
	pthread_create(&locker_th, NULL, locker_main, NULL);
	while (!atomic_load(&locker_tid) ||
	       thread_state(atomic_load(&locker_tid)) != 'S')
		usleep(1000);
}

static void lock_end(void)
{
	char buf[4096];

	fcntl(lock_pipe[0], F_SETFL, fcntl(lock_pipe[0], F_GETFL) | O_NONBLOCK);
	while (!atomic_load(&locker_done)) {
		if (read(lock_pipe[0], buf, sizeof(buf)) <= 0)
			usleep(1000);
	}
	pthread_join(locker_th, NULL);
	dup2(saved_stderr, 2);
	close(saved_stderr);
	close(lock_pipe[0]);
	close(lock_pipe[1]);
}

/* ---- commands ---- */

static void say(const char *s)
{
	size_t n = strlen(s);

	while (n) {
		ssize_t w = write(1, s, n);

		if (w < 0 && errno == EINTR) {
			flag("write() to stdout failed with EINTR");
			continue;
		}
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

static int read_line(char *line, size_t cap)
{
	size_t n = 0;

	for (;;) {
		char c;
		ssize_t r = read(0, &c, 1);

		if (r < 0 && errno == EINTR) {
			flag("read() of commands failed with EINTR");
			continue;
		}
		if (r <= 0)
			return n > 0;
		if (c == '\n') {
			line[n] = '\0';
			return 1;
		}
		if (n + 1 < cap)
			line[n++] = c;
	}
}

int main(void)
{
	pthread_t th[NALLOC + 3];
	char line[128], out[512];
	int locked = 0;

	signal(SIGPIPE, SIG_IGN);
#ifdef PR_SET_PTRACER
	prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
#endif
	if (__builtin_cpu_supports("avx512f"))
		regs_kind = "zmm";
	else if (__builtin_cpu_supports("avx2"))
		regs_kind = "ymm";
	if (pipe(reader_pipe) != 0)
		return 2;
	pthread_create(&th[0], NULL, spinner_main, NULL);
	pthread_create(&th[1], NULL, reader_main, NULL);
	pthread_create(&th[2], NULL, sleeper_main, NULL);
	for (int w = 0; w < NALLOC; w++)
		pthread_create(&th[3 + w], NULL, alloc_main, (void *)(intptr_t)w);
	for (int i = 0; i < 3 + NALLOC; i++)
		while (!atomic_load(&tids[i]))
			usleep(1000);
	snprintf(out, sizeof(out),
		 "ready pid=%d spinner=%d reader=%d sleeper=%d "
		 "alloc=%d,%d,%d,%d regs=%s\n", (int)getpid(),
		 atomic_load(&tids[0]), atomic_load(&tids[1]),
		 atomic_load(&tids[2]), atomic_load(&tids[3]),
		 atomic_load(&tids[4]), atomic_load(&tids[5]),
		 atomic_load(&tids[6]), regs_kind);
	say(out);

	while (read_line(line, sizeof(line))) {
		if (!strcmp(line, "lock") && !locked) {
			lock_start();
			locked = 1;
			say("locked\n");
		} else if (!strcmp(line, "unlock") && locked) {
			lock_end();
			locked = 0;
			say("unlocked\n");
		} else if (!strcmp(line, "check")) {
			if (atomic_load(&bad_set))
				snprintf(out, sizeof(out), "bad %s\n", bad);
			else
				snprintf(out, sizeof(out),
					 "ok rounds=%ld sleeps=%ld ops=%ld\n",
					 atomic_load(&rounds),
					 atomic_load(&sleeps),
					 atomic_load(&ops));
			say(out);
		} else if (!strcmp(line, "exit")) {
			break;
		} else {
			say("error unknown command\n");
		}
	}
	if (locked)
		lock_end();
	atomic_store(&stop, 1);
	if (write(reader_pipe[1], "q", 1) != 1)
		flag("cannot stop the reader");
	for (int i = 0; i < 3 + NALLOC; i++)
		pthread_join(th[i], NULL);
	if (atomic_load(&bad_set)) {
		snprintf(out, sizeof(out), "bad %s\n", bad);
		say(out);
		return 1;
	}
	return 0;
}
