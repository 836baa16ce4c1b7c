/* SPDX-License-Identifier: MIT */
/*
 * hi_other: a target that heapinspect must refuse by name, built by
 * tests/live/errors.py as a 32-bit x86 program (gcc -m32), a musl program
 * (musl-gcc) and a static musl one.  Plain C99 and POSIX, so that any libc
 * builds it.  It speaks hi_target's protocol (tests/live/hi_live.py) with
 * api=none: a ready line, then `report`, `check` ("ok" or "bad <index>")
 * and `exit` (status 0 when its data is intact).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BLOCKS 256

static unsigned char *block[BLOCKS];

static size_t size_of(size_t i)
{
	return 16 + (i * 37) % 2000;
}

static long check(void)
{
	for (size_t i = 0; i < BLOCKS; i++) {
		for (size_t k = 0; k < size_of(i); k++) {
			if (block[i][k] != (unsigned char)(i + k))
				return (long)i;
		}
	}
	return -1;
}

static void ready(void)
{
	printf("ready pid=%ld api=none threads=1\n", (long)getpid());
	fflush(stdout);
}

int main(void)
{
	char line[64];

	for (size_t i = 0; i < BLOCKS; i++) {
		block[i] = malloc(size_of(i));
		if (!block[i])
			return 2;
		for (size_t k = 0; k < size_of(i); k++)
			block[i][k] = (unsigned char)(i + k);
	}
	/* Some free chunks too, as a real heap has. */
	for (size_t i = 0; i < BLOCKS; i += 4) {
		free(block[i]);
		block[i] = malloc(size_of(i));
		if (!block[i])
			return 2;
		for (size_t k = 0; k < size_of(i); k++)
			block[i][k] = (unsigned char)(i + k);
	}
	ready();
	while (fgets(line, sizeof(line), stdin)) {
		long bad;

		line[strcspn(line, "\n")] = '\0';
		if (strcmp(line, "report") == 0) {
			ready();
		} else if (strcmp(line, "check") == 0) {
			bad = check();
			if (bad < 0)
				printf("ok\n");
			else
				printf("bad %ld\n", bad);
			fflush(stdout);
		} else if (strcmp(line, "exit") == 0) {
			return check() < 0 ? 0 : 1;
		} else {
			printf("error unknown command\n");
			fflush(stdout);
		}
	}
	return check() < 0 ? 0 : 1;
}
