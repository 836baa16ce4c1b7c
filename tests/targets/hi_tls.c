/*
 * hi_tls - thread-local storage whose addresses the program itself
 * reports, for the live test of symbols/tls.c (tests/live/tls.py).
 *
 * Usage: hi_tls DYNAMIC_SO
 *
 * The main thread and THREADS others each report, in one line,
 *
 *   thread tid=<tid> exe=<a> dyn=<a|0> tcache80=<a>
 *
 * exe: the address of this program's own __thread variable hi_exe_tls;
 * dyn: of hi_dyn_tls in DYNAMIC_SO (dlopen'd, 64 KiB of TLS so that it
 * cannot sit in the static TLS surplus), which only the even threads
 * touch: for the others dlinfo(RTLD_DI_TLS_DATA) must say that no block
 * exists (0), and the reader must find none; tcache80: a 72-byte block
 * the thread freed last, which glibc keeps at the head of the tcache bin
 * of 80-byte chunks (bin 3) of that thread: glibc's `tcache` of the thread,
 * found through its TLS, must point at a tcache whose entries[3] is it.
 * Then "ready pid=<pid> threads=<n>", and it waits for "exit" on fd 0.
 * No stdio, and nothing allocates after the free.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* dlinfo */
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define THREADS 3

static __thread long hi_exe_tls = 42;
static void *dyn_handle;
static void *(*dyn_addr)(void);
static int wait_pipe[THREADS][2];
static int made_pipe[2];

static void die(const char *what)
{
	char buf[160];
	int n = snprintf(buf, sizeof(buf), "hi_tls: %s: %s\n", what,
			 strerror(errno));

	if (write(2, buf, (size_t)n) < 0)
		_exit(2);
	_exit(2);
}

static void report(int touch)
{
	void *dyn = NULL, *block = NULL, *p;
	char buf[256];
	int n;

	hi_exe_tls++;
	if (touch)
		dyn = dyn_addr();
	if (dlinfo(dyn_handle, RTLD_DI_TLS_DATA, &block))
		die("dlinfo");
	if (!touch && block)
		die("a TLS block of the dlopen'd module before any use");
	if (touch && !block)
		die("no TLS block of the dlopen'd module after use");
	/* last: the head of this thread's tcache bin of 80-byte chunks */
	p = malloc(72);
	if (!p)
		die("malloc");
	memset(p, 1, 72);
	n = snprintf(buf, sizeof(buf),
		     "thread tid=%ld exe=%p dyn=%p tcache80=%p\n",
		     (long)syscall(SYS_gettid), (void *)&hi_exe_tls, dyn, p);
	free(p);
	if (write(1, buf, (size_t)n) != n)
		_exit(2);
}

static void *thread(void *arg)
{
	intptr_t i = (intptr_t)arg;
	char c;

	report(i % 2 == 0);
	if (write(made_pipe[1], "m", 1) != 1)
		die("write");
	while (read(wait_pipe[i][0], &c, 1) < 0 && errno == EINTR)
		;
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t th[THREADS];
	char line[64], c;
	int n = 0;

	if (argc != 2) {
		if (write(2, "usage: hi_tls DYNAMIC_SO\n", 25) < 0)
			return 64;
		return 64;
	}
	dyn_handle = dlopen(argv[1], RTLD_NOW);
	if (!dyn_handle) {
		n = snprintf(line, sizeof(line), "hi_tls: cannot dlopen\n");
		if (write(2, line, (size_t)n) < 0)
			return 2;
		return 2;
	}
	dyn_addr = (void *(*)(void))dlsym(dyn_handle, "hi_dyn_tls_addr");
	if (!dyn_addr)
		die("dlsym");
	if (pipe(made_pipe))
		die("pipe");
	for (int i = 0; i < THREADS; i++) {
		if (pipe(wait_pipe[i]))
			die("pipe");
		if (pthread_create(&th[i], NULL, thread, (void *)(intptr_t)i))
			die("pthread_create");
		/* one at a time: their lines do not interleave */
		while (read(made_pipe[0], &c, 1) < 0 && errno == EINTR)
			;
	}
	report(1);
	n = snprintf(line, sizeof(line), "ready pid=%d threads=%d\n",
		     (int)getpid(), THREADS + 1);
	if (write(1, line, (size_t)n) != n)
		return 2;
	while ((n = (int)read(0, line, sizeof(line))) > 0 ||
	       (n < 0 && errno == EINTR))
		;
	for (int i = 0; i < THREADS; i++) {
		if (write(wait_pipe[i][1], "x", 1) != 1)
			die("write");
		pthread_join(th[i], NULL);
	}
	return 0;
}
