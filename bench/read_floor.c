/* SPDX-License-Identifier: MIT */
/*
 * read_floor - what reading another process's memory costs on this
 * machine, whatever heapinspect does with it: the floor under its pause.
 *
 * Usage: read_floor [MIB]   (default 512)
 *
 * Forks a child that holds MIB MiB of written anonymous memory, stopped in
 * pause(), and reads it with process_vm_readv:
 *   - end to end in windows of 4 KiB to 1 MiB, one thread, then in 256 KiB
 *     windows by two threads (each half of it): the sweep of a heap;
 *   - 16-byte pieces, 1024 per call, on random pages and 8 per page: the
 *     walk of free lists, one chunk header per piece.
 * Prints the bandwidth of the first and the cost per piece of the second.
 * A list walk cannot cost less per free chunk than a piece; a sweep cannot
 * cost less than the heap's bytes at the bandwidth.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PIECES 1024
#define ROUNDS 200

static pid_t child;

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

struct span {
	uintptr_t from, to;
	size_t win;
	int failed;
};

static void *sweep(void *arg)
{
	struct span *s = arg;
	char *buf = malloc(s->win);

	for (uintptr_t p = s->from; buf && p < s->to; p += s->win) {
		struct iovec l = { buf, s->win };
		struct iovec r = { (void *)p, s->win };

		if (process_vm_readv(child, &l, 1, &r, 1, 0) !=
		    (ssize_t)s->win) {
			s->failed = 1;
			break;
		}
	}
	if (!buf)
		s->failed = 1;
	free(buf);
	return NULL;
}

static uint64_t rnd_state = 88172645463325252ull;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 512;
	size_t size = mib << 20, pages = size / 4096;
	static const size_t wins[] = { 4096, 65536, 262144, 1 << 20 };
	static struct iovec local[PIECES], remote[PIECES];
	static char pieces[PIECES * 16];
	int failed = 0;
	char *mem;

	if (mib < 4) {
		fprintf(stderr, "read_floor: at least 4 MiB\n");
		return 64;
	}
	mem = mmap(NULL, size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		perror("read_floor: mmap");
		return 1;
	}
	for (size_t i = 0; i < size; i += 4096)
		mem[i] = (char)i;
	child = fork();
	if (child < 0) {
		perror("read_floor: fork");
		return 1;
	}
	if (child == 0) {
		pause();
		_exit(0);
	}
	/* The parent reads the child's copy: same addresses. */
	printf("process_vm_readv of %zu MiB written memory\n", mib);
	for (size_t w = 0; w < sizeof(wins) / sizeof(wins[0]); w++) {
		struct span s = { (uintptr_t)mem, (uintptr_t)mem + size,
				  wins[w], 0 };
		double t0 = now_ms(), ms;

		sweep(&s);
		ms = now_ms() - t0;
		failed |= s.failed;
		printf("  end to end, 1 thread, %7zu-byte windows: %8.1f ms  "
		       "%5.2f GB/s\n", wins[w], ms, (double)size / 1e6 / ms);
	}
	{
		struct span a = { (uintptr_t)mem, (uintptr_t)mem + size / 2,
				  262144, 0 };
		struct span b = { (uintptr_t)mem + size / 2,
				  (uintptr_t)mem + size, 262144, 0 };
		pthread_t th;
		double t0 = now_ms(), ms;

		if (pthread_create(&th, NULL, sweep, &b) == 0) {
			sweep(&a);
			pthread_join(th, NULL);
			ms = now_ms() - t0;
			failed |= a.failed | b.failed;
			printf("  end to end, 2 threads,  262144-byte windows: "
			       "%8.1f ms  %5.2f GB/s\n", ms,
			       (double)size / 1e6 / ms);
		}
	}
	for (int per_page = 1; per_page <= 8; per_page *= 8) {
		double t0 = now_ms(), us;

		for (int round = 0; round < ROUNDS; round++) {
			uintptr_t page = 0;

			for (int i = 0; i < PIECES; i++) {
				if (i % per_page == 0)
					page = (uintptr_t)mem +
					       (rnd() % pages) * 4096;
				local[i].iov_base = pieces + i * 16;
				local[i].iov_len = 16;
				remote[i].iov_base = (void *)(page +
					(uintptr_t)(i % per_page) * 512);
				remote[i].iov_len = 16;
			}
			if (process_vm_readv(child, local, PIECES, remote,
					     PIECES, 0) != PIECES * 16)
				failed = 1;
		}
		us = (now_ms() - t0) * 1e3 / ((double)ROUNDS * PIECES);
		printf("  16-byte pieces, %d per random page, %d per call: "
		       "%.3f us each\n", per_page, PIECES, us);
	}
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	if (failed) {
		fprintf(stderr, "read_floor: a read failed\n");
		return 1;
	}
	return 0;
}
