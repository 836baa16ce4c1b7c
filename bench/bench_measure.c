/* SPDX-License-Identifier: MIT */
/*
 * bench_measure - run a command, report its wall time and peak RSS.
 *
 * Usage: bench_measure FD CMD [ARG...]
 *
 * Spawns CMD with this process's stdin, stdout and stderr, waits for it
 * with wait4(2), and writes one line to file descriptor FD:
 *
 *   measure wall_us=<n> maxrss_kib=<n> status=<n>
 *
 * status is the exit code, or 128 + the signal that killed it.  The exit
 * status of bench_measure is 0 when the line was written, 2 otherwise.
 *
 * Why not os.wait4() in the Python driver: at execve() the kernel records
 * the high-water RSS of the mm being replaced in the process's maxrss
 * (exec_mmap, fs/exec.c), and a child forked or vforked from Python starts
 * with Python's mm, so ru_maxrss would be Python's size whenever that is
 * larger than the command's.  Spawned from this small program, the floor
 * is about a megabyte.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000;
}

int main(int argc, char **argv)
{
	struct rusage ru;
	uint64_t t0, t1;
	int fd, status, code, err;
	char *end;
	pid_t pid;

	if (argc < 3) {
		fprintf(stderr, "usage: bench_measure FD CMD [ARG...]\n");
		return 2;
	}
	fd = (int)strtol(argv[1], &end, 10);
	if (*end || fd < 0) {
		fprintf(stderr, "bench_measure: bad FD %s\n", argv[1]);
		return 2;
	}
	t0 = now_us();
	err = posix_spawnp(&pid, argv[2], NULL, NULL, argv + 2, environ);
	if (err) {
		fprintf(stderr, "bench_measure: cannot run %s: %s\n", argv[2],
			strerror(err));
		return 2;
	}
	while (wait4(pid, &status, 0, &ru) < 0) {
		if (errno != EINTR) {
			perror("bench_measure: wait4");
			return 2;
		}
	}
	t1 = now_us();
	code = WIFEXITED(status) ? WEXITSTATUS(status) :
				   128 + WTERMSIG(status);
	if (dprintf(fd, "measure wall_us=%llu maxrss_kib=%ld status=%d\n",
		    (unsigned long long)(t1 - t0), ru.ru_maxrss, code) < 0)
		return 2;
	return 0;
}
