/*
 * hi_callhost - a single-threaded target for heapinspect's injected calls,
 * in the states that decide whether a call may be made into it.
 *
 * Usage: hi_callhost MODE
 *
 * It builds a small heap, asks glibc for its figures with mallinfo2() and
 * writes one line to fd 1, as hi_target does:
 *
 *   ready pid=<pid> api=mallinfo2 arena=<n> ... keepcost=<n> threads=1
 *
 * then does what MODE says:
 *
 *   uaf       frees ten 40-byte blocks (seven fill the thread's tcache,
 *             three go to fastbin 1) and then writes through a stale
 *             pointer over the fd link of the last one freed, the head of
 *             that fastbin: a use after free.  glibc's mallinfo2() and
 *             malloc_trim() follow that link and die on it (a misaligned
 *             chunk: malloc_printerr); the figures of the ready line are
 *             those of before the write.  Then it reads commands from
 *             fd 0:
 *               repair  put the link back as glibc wrote it, answer "ok"
 *               report  a new ready line (only once repaired, or after
 *                       a malloc_trim() that emptied the fastbins)
 *               probe   (only on a sound heap) whether mallinfo2() can take
 *                       main_arena's lock: "free", or "blocked" when it
 *                       waited 2 s (and the process exits 0 at once: it
 *                       cannot go on)
 *               exit    (or EOF) exit 0
 *   uaf_wild  the same with a link to an aligned, non-canonical address:
 *             following it is a general protection fault, a SIGSEGV that
 *             the kernel raises with si_code SI_KERNEL
 *   overflow  the same ten frees, then an overflow out of the block before
 *             the head of fastbin 1 over its chunk header: prev_size 256
 *             and PREV_INUSE clear.  The lists are intact, mallinfo2()
 *             does not look there, but malloc_trim() merges that chunk with
 *             a "previous chunk" that is not one and aborts ("corrupted
 *             size vs. prev_size in fastbins")
 *   uaf_tcache  the same write over the link of a block in the tcache
 *             instead, which neither mallinfo2() nor malloc_trim() reads
 *             (glibc 2.26 to 2.43): a call must not be refused for it
 *   sleep     sleeps in sleep(3) for a day at a time
 *   rawsleep  the same through syscall(SYS_nanosleep, ...), whose code does
 *             not say which system call it made
 *   pselect   waits in pselect(2) with no descriptor and no timeout
 *   ppoll     waits in ppoll(2), likewise
 *   epoll_pwait  waits in epoll_pwait(2) on an empty epoll set, again
 *             after EINTR: the kernel ends it so at any stop of the process,
 *             a debugger's too (signal(7)), and never restarts it
 *   sigsuspend   waits in sigsuspend(2)
 *
 * The waiting modes block SIGUSR1 and SIGUSR2 (the "normal" mask); pselect,
 * ppoll, epoll_pwait and sigsuspend wait with a mask that unblocks SIGUSR1
 * only, so that the kernel keeps the normal mask aside (saved_sigmask) for
 * the time of the wait.  SIGUSR1 ends the wait.  Then the program checks
 * that the wait ended only because of SIGUSR1 (sleep not cut short, no
 * EINTR before it, no early return) and that its signal mask is the normal
 * one again, measures its figures again and writes
 *
 *   done ok arena=<n> ... keepcost=<n>
 *
 * or "done bad <what>", and exits 0 (1 when bad).
 *
 * Any process may ptrace it (PR_SET_PTRACER_ANY).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static char out[1024];

static void put(const char *s)
{
	size_t len = strlen(s);

	while (len) {
		ssize_t n = write(1, s, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(3);
		s += n;
		len -= (size_t)n;
	}
}

/* The ten figures of mallinfo2(), as " arena=<n> ..." into out. */
static void figures(char *buf, size_t size)
{
	struct mallinfo2 mi = mallinfo2();

	snprintf(buf, size, " arena=%zu ordblks=%zu smblks=%zu hblks=%zu "
		 "hblkhd=%zu usmblks=%zu fsmblks=%zu uordblks=%zu "
		 "fordblks=%zu keepcost=%zu", mi.arena, mi.ordblks,
		 mi.smblks, mi.hblks, mi.hblkhd, mi.usmblks, mi.fsmblks,
		 mi.uordblks, mi.fordblks, mi.keepcost);
}

static void ready(void)
{
	char f[512];

	figures(f, sizeof(f));
	snprintf(out, sizeof(out), "ready pid=%d api=mallinfo2%s threads=1\n",
		 (int)getpid(), f);
	put(out);
}

/* Blocks that stay live, so that the heap has some shape. */
static void *keep[64];

static void build(void)
{
	for (int i = 0; i < 64; i++) {
		keep[i] = malloc(100 + 37 * i);
		if (!keep[i])
			_exit(2);
		memset(keep[i], 0x5a, 100 + 37 * i);
	}
	/* Free space in the small bins and the unsorted bin. */
	for (int i = 0; i < 64; i += 4) {
		free(keep[i]);
		keep[i] = NULL;
	}
}

static void on_alarm(int sig)
{
	(void)sig;
	put("blocked\n");
	_exit(0);
}

/*
 * Whether main_arena's lock can be taken: mallinfo2() takes it (malloc
 * would not: a process that never had a second thread runs it without
 * locks, SINGLE_THREAD_P).  Only on a sound heap.
 */
static void probe(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	alarm(2);
	(void)mallinfo2();
	alarm(0);
	put("free\n");
}

enum { UAF_FAST, UAF_TCACHE, UAF_WILD, OVERFLOW };

static void uaf(int how)
{
	void *small[16];
	uint64_t *link, saved, saved_size;
	char line[64];
	int repaired = 0;

	for (int i = 0; i < 16; i++) {
		small[i] = malloc(40);
		if (!small[i])
			_exit(2);
	}
	/* Seven to the tcache (small[0..6]), three to fastbin 1. */
	for (int i = 0; i < 10; i++)
		free(small[i]);
	ready();
	/*
	 * The use after free: the first word of a freed block is its link,
	 * next (tcache) or fd (fastbin), mangled with the block's address
	 * (PROTECT_PTR, glibc 2.32 on).
	 */
	link = (uint64_t *)(how == UAF_TCACHE ? small[6] : small[9]);
	/* The chunk header: prev_size and size, the two words before. */
	if (how == OVERFLOW)
		link -= 2;
	saved = *(volatile uint64_t *)link;
	saved_size = *(volatile uint64_t *)(link + 1);
	/*
	 * What REVEAL_PTR makes of it (glibc 2.32 on): misaligned, so that
	 * glibc's own check finds it (malloc_printerr), or aligned and
	 * non-canonical, so that following it faults.  Whatever the address
	 * space layout.
	 */
	if (how == OVERFLOW) {
		*(volatile uint64_t *)link = 256;
		*(volatile uint64_t *)(link + 1) = saved_size & ~(uint64_t)1;
	} else {
		*(volatile uint64_t *)link = ((uintptr_t)link >> 12) ^
			(how == UAF_WILD ? 0x4141414141414140ull
					 : 0x4141414141414141ull);
	}
	for (;;) {
		ssize_t n = 0, len = 0;

		/* One command per line; nothing here allocates. */
		while (len < (ssize_t)sizeof(line) - 1) {
			n = read(0, line + len, 1);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0 || line[len] == '\n')
				break;
			len++;
		}
		line[len] = '\0';
		if (n <= 0 || strcmp(line, "exit") == 0)
			break;
		if (strcmp(line, "repair") == 0) {
			*(volatile uint64_t *)link = saved;
			*(volatile uint64_t *)(link + 1) = saved_size;
			repaired = 1;
			put("ok\n");
		} else if (strcmp(line, "report") == 0) {
			ready();
		} else if (strcmp(line, "probe") == 0) {
			probe();
		} else {
			put("error\n");
		}
	}
	if (!repaired) {
		*(volatile uint64_t *)link = saved;
		*(volatile uint64_t *)(link + 1) = saved_size;
	}
	_exit(0);
}

static volatile sig_atomic_t usr1;

static void on_usr1(int sig)
{
	(void)sig;
	usr1 = 1;
}

static const char *check_mask(const sigset_t *normal)
{
	sigset_t now;

	if (sigprocmask(SIG_BLOCK, NULL, &now) != 0)
		return "sigprocmask failed";
	for (int s = 1; s < NSIG; s++) {
		if (sigismember(&now, s) != sigismember(normal, s))
			return "the signal mask is not the normal one after the "
			       "wait";
	}
	return NULL;
}

static void wait_mode(const char *mode)
{
	struct sigaction sa;
	sigset_t normal, waiting;
	const char *bad = NULL;
	char f[512];
	int epfd = -1;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	sigemptyset(&normal);
	sigaddset(&normal, SIGUSR1);
	sigaddset(&normal, SIGUSR2);
	sigprocmask(SIG_SETMASK, &normal, NULL);
	sigemptyset(&waiting);
	sigaddset(&waiting, SIGUSR2);
	if (strcmp(mode, "epoll_pwait") == 0) {
		epfd = epoll_create1(EPOLL_CLOEXEC);
		if (epfd < 0)
			_exit(2);
	}
	ready();
	while (!usr1 && !bad) {
		int r;

		errno = 0;
		if (strcmp(mode, "sleep") == 0 ||
		    strcmp(mode, "rawsleep") == 0) {
			struct timespec ts = { 86400, 0 };
			unsigned left;

			/* sleep() blocks nothing: SIGUSR1 is blocked here. */
			sigprocmask(SIG_SETMASK, &waiting, NULL);
			if (mode[0] == 's')
				left = sleep(86400);
			else
				left = syscall(SYS_nanosleep, &ts, &ts) != 0;
			sigprocmask(SIG_SETMASK, &normal, NULL);
			if (!usr1)
				bad = left ? "the sleep was cut short"
					   : "the sleep ended";
			continue;
		}
		if (strcmp(mode, "pselect") == 0)
			r = pselect(0, NULL, NULL, NULL, NULL, &waiting);
		else if (strcmp(mode, "ppoll") == 0)
			r = ppoll(NULL, 0, NULL, &waiting);
		else if (strcmp(mode, "epoll_pwait") == 0) {
			struct epoll_event ev;

			r = epoll_pwait(epfd, &ev, 1, -1, &waiting);
		} else {
			r = sigsuspend(&waiting);
		}
		if (r != -1 || errno != EINTR) {
			bad = "the wait returned without an error";
		} else if (!usr1 && epfd >= 0) {
			/*
			 * epoll_pwait is never restarted: any stop of the
			 * process, a debugger's included, ends it with EINTR
			 * (signal(7)); its callers loop.  The mask must be
			 * the normal one again all the same.
			 */
			bad = check_mask(&normal);
		} else if (!usr1) {
			bad = "the wait failed with EINTR without SIGUSR1";
		}
	}
	if (!bad)
		bad = check_mask(&normal);
	if (bad) {
		snprintf(out, sizeof(out), "done bad %s\n", bad);
		put(out);
		_exit(1);
	}
	figures(f, sizeof(f));
	snprintf(out, sizeof(out), "done ok%s\n", f);
	put(out);
	_exit(0);
}

int main(int argc, char **argv)
{
	static const char *const modes[] = {
		"uaf", "uaf_tcache", "uaf_wild", "overflow", "sleep", "rawsleep",
		"pselect", "ppoll",
		"epoll_pwait", "sigsuspend",
	};
	int known = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: hi_callhost MODE\n");
		return 2;
	}
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		known |= strcmp(argv[1], modes[i]) == 0;
	if (!known) {
		fprintf(stderr, "hi_callhost: unknown mode '%s'\n", argv[1]);
		return 2;
	}
	prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
	build();
	if (strncmp(argv[1], "uaf", 3) == 0)
		uaf(strcmp(argv[1], "uaf_tcache") == 0 ? UAF_TCACHE :
		    strcmp(argv[1], "uaf_wild") == 0 ? UAF_WILD : UAF_FAST);
	if (strcmp(argv[1], "overflow") == 0)
		uaf(OVERFLOW);
	wait_mode(argv[1]);
	return 0;
}
