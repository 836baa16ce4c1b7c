/* SPDX-License-Identifier: MIT */
/*
 * hi_what_probe - what blocks of a running process hold (symbols/what.c),
 * for tests/live/what.py.
 *
 * Usage: hi_what_probe PID ADDR...
 *
 * Reads the first 64 bytes of each block (the target is idle: it waits
 * for its test; nothing is stopped) and writes "what ADDR KIND NAME",
 * KIND one of unknown, cxx, python, text, module.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memreader.h"
#include "symbols.h"

static const char *const kinds[] = {
	[HI_WHAT_UNKNOWN] = "unknown", [HI_WHAT_CXX] = "cxx",
	[HI_WHAT_PYTHON] = "python",   [HI_WHAT_TEXT] = "text",
	[HI_WHAT_MODULE] = "module",
};

int main(int argc, char **argv)
{
	struct hi_sym *sym;
	struct hi_what *w;
	struct hi_mem mem;
	struct hi_reader r;
	struct hi_maps maps = { 0 };
	pid_t pid;
	int ret;

	if (argc < 3) {
		fprintf(stderr, "usage: hi_what_probe PID ADDR...\n");
		return 64;
	}
	pid = (pid_t)atoi(argv[1]);
	ret = hi_sym_open(pid, NULL, &sym);
	if (!ret)
		ret = hi_what_open(sym, &w);
	if (ret) {
		fprintf(stderr, "hi_what_probe: %s\n", hi_strerror(ret));
		return 2;
	}
	hi_mem_init(&mem, pid);
	mem.maps = &maps;
	r = hi_mem_reader(&mem);
	hi_what_prefill(w, sym, &r);
	for (int i = 2; i < argc; i++) {
		unsigned char b[64];
		hi_addr_t a = strtoull(argv[i], NULL, 0);
		struct hi_what_res res;

		ret = hi_read(&r, a, b, sizeof(b));
		if (ret) {
			fprintf(stderr, "hi_what_probe: cannot read %s: %s\n",
				argv[i], hi_strerror(ret));
			return 2;
		}
		hi_what_block(w, b, sizeof(b), &r, &res);
		printf("what %s %s %s\n", argv[i], kinds[res.kind],
		       res.name[0] ? res.name : "-");
	}
	hi_mem_fini(&mem);
	hi_what_close(w);
	hi_sym_close(sym);
	return 0;
}
