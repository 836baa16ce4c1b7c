/* SPDX-License-Identifier: MIT */
/*
 * symbols/ and the glibc backend's locate over a file instead of a
 * process: libseedc.so (tests/fuzz/seed/malloc.c), a small library whose
 * malloc.c unit holds main_arena and mp_ shaped like glibc 2.36's.
 *
 *	test_symbols LIBSEEDC
 *
 * Intact, locate must find the layout the compiler gave those structs
 * (offsetof and sizeof here, not what symbols/ read), and the version in its
 * banner.  Then every truncation of the file at 1/64 steps and 2,000 copies
 * with bytes flipped (a fixed seed) must give an error or a layout that
 * passes ptm_layout_check, never a crash, and no file descriptor left
 * open: the deterministic counterpart of the fuzz_elf target, run under
 * the sanitizers in CI.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "malloc_structs.h"
#include "ptmalloc_priv.h"

static int failures, checks;

#define CHECK(cond, ...)                                                     \
	do {                                                                 \
		checks++;                                                    \
		if (!(cond)) {                                               \
			failures++;                                          \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__,        \
				__LINE__, #cond);                            \
			fprintf(stderr, __VA_ARGS__);                        \
			fputc('\n', stderr);                                 \
		}                                                            \
	} while (0)

/* Run probe and locate over bytes.  Return locate's result (or probe's). */
static int locate(const unsigned char *buf, size_t len, struct ptm_layout *l,
		  struct ptm_where *w, char *version)
{
	struct hi_alloc_ctx ctx;
	int fd, ret;

	memset(&ctx, 0, sizeof(ctx));
	fd = memfd_create("test_symbols", MFD_CLOEXEC);
	if (fd < 0 || write(fd, buf, len) != (ssize_t)len) {
		perror("memfd");
		exit(2);
	}
	ret = hi_sym_open_elf("libc.so.6", fd, "/nonexistent", &ctx.sym);
	if (ret)
		return ret;
	ctx.flags = HI_LOCATE_DWARF;
	ret = ptmalloc_ops.probe(&ctx);
	if (ret == 1) {
		ret = ptmalloc_ops.locate(&ctx);
		if (ret == 0)
			ret = ptm_located(&ctx, l, w);
		if (version)
			snprintf(version, 32, "%s", ctx.version);
		ptmalloc_ops.release(&ctx);
	} else if (ret == 0) {
		ret = -HI_E_NOLIBC;
	}
	hi_sym_close(ctx.sym);
	return ret;
}

/* Open descriptors: none may leak, whatever the file (libdwfl did). */
static int open_fds(void)
{
	struct dirent *de;
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		n++;
	closedir(d);
	return n;
}

#define SAME(f, st, m)                                                       \
	CHECK(l.f.off == offsetof(struct st, m) &&                           \
	      l.f.size == sizeof(((struct st *)0)->m),                       \
	      #m ": %llu/%llu", (unsigned long long)l.f.off,                 \
	      (unsigned long long)l.f.size)

int main(int argc, char **argv)
{
	struct ptm_layout l;
	struct ptm_where w;
	unsigned char *buf, *copy;
	char version[32] = "";
	struct stat st;
	uint64_t x = 1;
	int fd, ret, errors = 0, fds;

	if (argc != 2) {
		fprintf(stderr, "usage: test_symbols LIBSEEDC\n");
		return 64;
	}
	fd = open(argv[1], O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		perror(argv[1]);
		return 2;
	}
	buf = malloc(st.st_size);
	copy = malloc(st.st_size);
	if (!buf || !copy || read(fd, buf, st.st_size) != st.st_size) {
		perror(argv[1]);
		return 2;
	}
	close(fd);

	ret = locate(buf, st.st_size, &l, &w, version);
	CHECK(ret == 0, "intact file: %s", hi_strerror(ret));
	if (ret == 0) {
		CHECK(strcmp(version, "2.36") == 0, "version %s", version);
		CHECK(l.state_size == sizeof(struct malloc_state), "state %llu",
		      (unsigned long long)l.state_size);
		CHECK(l.par_size == sizeof(struct malloc_par), "par %llu",
		      (unsigned long long)l.par_size);
		SAME(mutex, malloc_state, mutex);
		SAME(fastbins, malloc_state, fastbinsY);
		SAME(top, malloc_state, top);
		SAME(bins, malloc_state, bins);
		SAME(next, malloc_state, next);
		SAME(attached_threads, malloc_state, attached_threads);
		SAME(system_mem, malloc_state, system_mem);
		SAME(max_system_mem, malloc_state, max_system_mem);
		SAME(n_mmaps, malloc_par, n_mmaps);
		SAME(mmapped_mem, malloc_par, mmapped_mem);
		SAME(max_mmapped_mem, malloc_par, max_mmapped_mem);
		SAME(c_size, malloc_chunk, mchunk_size);
		SAME(c_fd, malloc_chunk, fd);
		SAME(c_bk, malloc_chunk, bk);
		CHECK(l.fastbins.count == 10 && l.bins.count == 254,
		      "counts %llu %llu",
		      (unsigned long long)l.fastbins.count,
		      (unsigned long long)l.bins.count);
		CHECK(l.safe_linking == 1, "safe-linking for 2.36");
		CHECK(w.main_arena != w.mp && w.main_arena && w.mp,
		      "addresses");
	}

	fds = open_fds();
	/* Truncated: an error each time (or, past the DWARF, the same). */
	for (int k = 0; k < 64; k++) {
		size_t len = (size_t)st.st_size * k / 64;

		ret = locate(buf, len, &l, &w, NULL);
		CHECK(ret < 0 || ptm_layout_check(&l) == 0,
		      "truncated at %zu: %d", len, ret);
		errors += ret < 0;
	}
	/* Flipped bytes, 1 to 8 of them anywhere. */
	for (int k = 0; k < 2000; k++) {
		int n = 1 + k % 8;

		memcpy(copy, buf, st.st_size);
		for (int i = 0; i < n; i++) {
			x ^= x >> 12;
			x ^= x << 25;
			x ^= x >> 27;
			copy[(x * 0x2545F4914F6CDD1DULL >> 16) % st.st_size] ^=
				(unsigned char)(1 + (x >> 56) % 255);
		}
		ret = locate(copy, st.st_size, &l, &w, NULL);
		CHECK(ret < 0 || ptm_layout_check(&l) == 0,
		      "flipped copy %d: %d", k, ret);
		errors += ret < 0;
	}
	CHECK(open_fds() == fds, "%d descriptors leaked", open_fds() - fds);
	printf("truncated and flipped copies: %d refused with an error\n",
	       errors);
	printf("%d passed, %d failed\n", checks - failures, failures);
	free(buf);
	free(copy);
	return failures ? 1 : 0;
}
