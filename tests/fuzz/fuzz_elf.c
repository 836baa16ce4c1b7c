/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the symbols/ code and the glibc backend's DWARF half
 * over a malformed ELF file, as a libc or debug file planted on the
 * target's file system could be.  The input is handed to libdwfl as an
 * offline module called libc.so.6 (through a memfd, as a file would be),
 * then everything heapinspect asks of a libc is asked: build-id, version
 * banner, main_arena and mp_ with their struct layouts, malloc.c's code
 * ranges.  Errors are the expected outcome; crashes and sanitizer reports
 * are findings.
 *
 * Seeds: libseedc.so, a small library with glibc-like malloc structures and
 * DWARF (tests/fuzz/seed/malloc.c), and truncated copies of it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ptmalloc_priv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int each(const struct hi_sym_module *m, void *arg)
{
	struct hi_alloc_ctx *ctx = arg;
	struct ptm_layout l = { 0 };
	struct ptm_where w = { 0 };
	hi_addr_t(*ranges)[2] = NULL;
	char buf[256];
	int n;

	hi_sym_build_id(m, buf, sizeof(buf));
	hi_sym_find_string(m, "release version ", buf, sizeof(buf));
	ptm_locate_dwarf(ctx, m, &l, &w);
	n = hi_sym_cu_ranges(m, "malloc.c", &ranges);
	if (n > 0)
		free(ranges);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hi_alloc_ctx ctx;
	int fd;

	fd = memfd_create("fuzz_elf", MFD_CLOEXEC);
	if (fd < 0)
		abort();
	if (size && write(fd, data, size) != (ssize_t)size)
		abort();
	memset(&ctx, 0, sizeof(ctx));
	/* Only the input itself: no debug file from this machine. */
	if (hi_sym_open_elf("libc.so.6", fd, "/nonexistent", &ctx.sym))
		return 0;
	hi_sym_each_module(ctx.sym, each, &ctx);
	/* The whole backend, as heapinspect runs it. */
	if (ptmalloc_ops.probe(&ctx) == 1) {
		ptmalloc_ops.locate(&ctx);
		ptmalloc_ops.release(&ctx);
	}
	hi_sym_close(ctx.sym);
	return 0;
}
