/*
 * hi_spawner - a test target that starts programs all the time, or cannot
 * be traced by its own user (tests/live/other_tracers.py).
 *
 * Usage: hi_spawner [--hold MS] [--single] [--threads N] [--nodump]
 *                   [--user UID:GID]
 *
 * It builds a heap of 2,000 filled blocks, a third of them freed, asks
 * glibc for its figures with mallinfo2() and writes one line, as hi_target
 * does (tests/live/hi_live.py parses it):
 *
 *   ready pid=<pid> api=mallinfo2 arena=<n> ... keepcost=<n> threads=<n>
 *         spawns=<n>
 *
 * spawns= is the number of children started so far.  Then it reads the
 * commands report, check ("ok" or "bad <index>") and exit from fd 0, as
 * hi_target does.
 *
 *   --hold MS   a thread starts /bin/true over and over with vfork(), and
 *               the child sleeps MS milliseconds before it executes it: the
 *               parent thread sleeps in the kernel (state D) all that time
 *   --single    that thread is the main thread, and the only one: commands
 *               are read between two children
 *   --threads N N more threads, idle in poll()
 *   --nodump    prctl(PR_SET_DUMPABLE, 0) once the heap is built
 *   --user U:G  (started as root) drop to uid U and gid G once the heap is
 *               built: the kernel then makes the process not dumpable
 *
 * Nothing allocates once the heap is built: vfork(), the child's sleep and
 * execve, waitpid and the replies (formatted into a static buffer) do not.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NBLOCKS 2000

static unsigned char *blocks[NBLOCKS];
static size_t sizes[NBLOCKS];
static atomic_ulong spawns;
static long hold_ms;
static int single;

static void die(const char *what)
{
	char buf[256];
	int n = snprintf(buf, sizeof(buf), "hi_spawner: %s: %s\n", what,
			 strerror(errno));

	if (write(2, buf, (size_t)n) < 0)
		_exit(2);
	_exit(2);
}

static void put(const char *s)
{
	size_t len = strlen(s);

	while (len) {
		ssize_t n = write(1, s, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(1);
		s += n;
		len -= (size_t)n;
	}
}

static void build(void)
{
	unsigned long x = 88172645463325252ul;

	for (int i = 0; i < NBLOCKS; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		sizes[i] = 16 + x % 4000;
		blocks[i] = malloc(sizes[i]);
		if (!blocks[i])
			die("malloc");
		memset(blocks[i], i & 0xff, sizes[i]);
	}
	for (int i = 0; i < NBLOCKS; i += 3) {
		free(blocks[i]);
		blocks[i] = NULL;
	}
}

static int count_threads(void)
{
	static char buf[4096];
	const char *p;
	ssize_t n;
	int fd = open("/proc/self/status", O_RDONLY);

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strstr(buf, "\nThreads:");
	return p ? atoi(p + 9) : -1;
}

static void report(void)
{
	static char line[1024];
	struct mallinfo2 mi = mallinfo2();

	snprintf(line, sizeof(line),
		 "ready pid=%d api=mallinfo2 arena=%zu ordblks=%zu smblks=%zu "
		 "hblks=%zu hblkhd=%zu usmblks=%zu fsmblks=%zu uordblks=%zu "
		 "fordblks=%zu keepcost=%zu threads=%d spawns=%lu\n",
		 (int)getpid(), mi.arena, mi.ordblks, mi.smblks, mi.hblks,
		 mi.hblkhd, mi.usmblks, mi.fsmblks, mi.uordblks, mi.fordblks,
		 mi.keepcost, count_threads(), atomic_load(&spawns));
	put(line);
}

static long check(void)
{
	for (int i = 0; i < NBLOCKS; i++) {
		if (!blocks[i])
			continue;
		for (size_t k = 0; k < sizes[i]; k++) {
			if (blocks[i][k] != (unsigned char)(i & 0xff))
				return i;
		}
	}
	return -1;
}

/* One child: it sleeps hold_ms in the parent's memory, then runs true. */
static void spawn_one(void)
{
	static char *const argv[] = { "true", NULL };
	pid_t pid = vfork();

	if (pid == 0) {
		struct timespec ts = { hold_ms / 1000,
				       (hold_ms % 1000) * 1000000L };

		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
		execv("/bin/true", argv);
		_exit(127);
	}
	if (pid < 0)
		die("vfork");
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	atomic_fetch_add(&spawns, 1);
}

static void *spawner(void *arg)
{
	(void)arg;
	for (;;)
		spawn_one();
	return NULL;
}

static void *idler(void *arg)
{
	(void)arg;
	for (;;)
		poll(NULL, 0, -1);
	return NULL;
}

static char inbuf[256];
static size_t inlen;

/* A command line from fd 0, without waiting when wait is 0: 1, 0, -1 EOF. */
static int get_line(char *line, size_t cap, int wait)
{
	for (;;) {
		char *nl = memchr(inbuf, '\n', inlen);
		ssize_t r;

		if (nl) {
			size_t n = (size_t)(nl - inbuf);
			size_t take = n < cap - 1 ? n : cap - 1;

			memcpy(line, inbuf, take);
			line[take] = '\0';
			memmove(inbuf, nl + 1, inlen - n - 1);
			inlen -= n + 1;
			return 1;
		}
		if (inlen == sizeof(inbuf))
			inlen = 0; /* an overlong line: dropped */
		if (!wait) {
			struct pollfd p = { .fd = 0, .events = POLLIN };

			if (poll(&p, 1, 0) <= 0)
				return 0;
		}
		r = read(0, inbuf + inlen, sizeof(inbuf) - inlen);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		inlen += (size_t)r;
	}
}

int main(int argc, char **argv)
{
	unsigned long uid = 0, gid = 0;
	int nthreads = 0, nodump = 0, user = 0;
	char line[sizeof(inbuf) + 1];
	pthread_t th;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--hold") && i + 1 < argc)
			hold_ms = atol(argv[++i]);
		else if (!strcmp(argv[i], "--single"))
			single = 1;
		else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
			nthreads = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--nodump"))
			nodump = 1;
		else if (!strcmp(argv[i], "--user") && i + 1 < argc &&
			 sscanf(argv[++i], "%lu:%lu", &uid, &gid) == 2)
			user = 1;
		else {
			errno = EINVAL;
			die("usage: hi_spawner [--hold MS] [--single] "
			    "[--threads N] [--nodump] [--user UID:GID]");
		}
	}
	signal(SIGPIPE, SIG_IGN);
	build();
	if (user && (setgroups(0, NULL) != 0 || setresgid(gid, gid, gid) ||
		     setresuid(uid, uid, uid)))
		die("dropping to --user");
	if (nodump && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		die("prctl PR_SET_DUMPABLE");
#ifdef PR_SET_PTRACER
	/* Yama's ptrace_scope = 1: the tool is our sibling. */
	prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
#endif
	for (int i = 0; i < nthreads; i++) {
		if (pthread_create(&th, NULL, idler, NULL) != 0)
			die("pthread_create");
	}
	if (hold_ms > 0 && !single &&
	    pthread_create(&th, NULL, spawner, NULL) != 0)
		die("pthread_create");
	report();
	for (;;) {
		int r;

		if (hold_ms > 0 && single) {
			r = get_line(line, sizeof(line), 0);
			if (r == 0) {
				spawn_one();
				continue;
			}
		} else {
			r = get_line(line, sizeof(line), 1);
		}
		if (r < 0 || !strcmp(line, "exit"))
			break;
		if (!strcmp(line, "report")) {
			report();
		} else if (!strcmp(line, "check")) {
			static char buf[64];
			long bad = check();

			if (bad < 0)
				put("ok\n");
			else {
				snprintf(buf, sizeof(buf), "bad %ld\n", bad);
				put(buf);
			}
		} else {
			put("error unknown command\n");
		}
	}
	return check() < 0 ? 0 : 1;
}
