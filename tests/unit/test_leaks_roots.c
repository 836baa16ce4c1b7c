/* SPDX-License-Identifier: MIT */
/*
 * The roots of `heapinspect leaks` from a /proc/PID/maps text, threads,
 * TLS blocks and the allocator's memory: memcheck's root set, worked out
 * by hand for a small process.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leaks.h"

static int failures;

#define CHECK(cond, ...)                                                    \
	do {                                                                 \
		if (!(cond)) {                                               \
			failures++;                                          \
			fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);      \
			fprintf(stderr, __VA_ARGS__);                        \
			fputc('\n', stderr);                                 \
		}                                                            \
	} while (0)

static const char maps_text[] =
	"555555554000-555555555000 r--p 00000000 08:01 100 /usr/bin/app\n"
	"555555555000-555555556000 r-xp 00001000 08:01 100 /usr/bin/app\n"
	"555555557000-555555558000 rw-p 00002000 08:01 100 /usr/bin/app\n"
	"555555558000-555555559000 rw-p 00000000 00:00 0 \n"
	"555555559000-55555557a000 rw-p 00000000 00:00 0 [heap]\n"
	"7ffff0000000-7ffff0100000 rw-p 00000000 00:00 0 \n"
	"7ffff7a00000-7ffff7a01000 ---p 00000000 00:00 0 \n"
	"7ffff7a01000-7ffff7c01000 rw-p 00000000 00:00 0 \n"
	"7ffff7d00000-7ffff7d01000 rw-s 00000000 00:05 7 /dev/dri/card0\n"
	"7ffff7d01000-7ffff7d02000 rw-p 00000000 00:05 8 /dev/zero\n"
	"7ffff7d02000-7ffff7d03000 rw-s 00000000 00:1a 9 /dev/shm/ring\n"
	"7ffff7e00000-7ffff7e20000 r--p 00000000 08:01 200 /lib/libc.so.6\n"
	"7ffff7fa0000-7ffff7fa4000 rw-p 001a0000 08:01 200 /lib/libc.so.6\n"
	"7ffff7fa4000-7ffff7fb0000 rw-p 00000000 00:00 0 \n"
	"7ffff7fc0000-7ffff7fc4000 r--p 00000000 00:00 0 [vvar]\n"
	"7ffffffde000-7ffffffff000 rw-p 00000000 00:00 0 [stack]\n";

struct want {
	hi_addr_t start, end;
	const char *label;
};

int main(void)
{
	char *text = strdup(maps_text), buf[160];
	struct hi_leak_map *maps;
	size_t bad = 0;
	long n = hi_leak_parse_maps(text, &maps, &bad);
	const char *const modules[] = { "/usr/bin/app", "/lib/libc.so.6" };
	struct hi_leak_thread th[2] = {
		{ .tid = 100, .sp = 0x7fffffffe000 },
		{ .tid = 101, .sp = 0x7ffff7c00000 },
	};
	/* the thread's static TLS and struct pthread, above its sp */
	struct hi_leak_span tls[1] = {
		{ 0x7ffff7c00800, 0x7ffff7c01000, 101 },
	};
	/* malloc's: main arena's heap in [heap] (brk beyond it), a
	 * non-main arena's heap, an mmapped chunk, main_arena and mp_ in
	 * libc's data (overlapping on purpose: merged) */
	struct hi_leak_span excl[5] = {
		{ 0x555555559000, 0x555555579000, 0 },
		{ 0x7ffff0000000, 0x7ffff0100000, 0 },
		{ 0x7ffff7fa1000, 0x7ffff7fa1898, 0 },
		{ 0x7ffff7fa1800, 0x7ffff7fa1900, 0 },
		{ 0x7ffff7fa2000, 0x7ffff7fa2100, 0 },
	};
	static const struct want want[] = {
		{ 0x555555557000, 0x555555558000,
		  "writable data of /usr/bin/app" },
		{ 0x555555558000, 0x555555559000,
		  "writable data of /usr/bin/app" },
		{ 0x555555579000, 0x55555557a000,
		  "brk area beyond malloc's heap" },
		{ 0x7ffff7bfff80, 0x7ffff7c00800, "stack of thread 101" },
		{ 0x7ffff7c00800, 0x7ffff7c01000, "TLS of thread 101" },
		{ 0x7ffff7d01000, 0x7ffff7d02000,
		  "writable mapping of /dev/zero" },
		{ 0x7ffff7d02000, 0x7ffff7d03000,
		  "writable mapping of /dev/shm/ring" },
		{ 0x7ffff7fa0000, 0x7ffff7fa1000,
		  "writable data of /lib/libc.so.6" },
		{ 0x7ffff7fa1900, 0x7ffff7fa2000,
		  "writable data of /lib/libc.so.6" },
		{ 0x7ffff7fa2100, 0x7ffff7fa4000,
		  "writable data of /lib/libc.so.6" },
		{ 0x7ffff7fa4000, 0x7ffff7fb0000,
		  "writable data of /lib/libc.so.6" },
		{ 0x7fffffffdf80, 0x7ffffffff000, "stack of thread 100" },
	};
	struct hi_leak_roots r;
	int ret;

	CHECK(n == 16, "parsed %ld maps", n);
	if (n != 16)
		return 1;
	CHECK(strcmp(maps[15].path, "[stack]") == 0 && maps[8].shared &&
		      maps[2].prot == (HI_PROT_R | HI_PROT_W) &&
		      maps[2].offset == 0x2000 && maps[2].inode == 100,
	      "fields of the maps");
	th[0].regs[1] = 0x1234; /* rbx */
	th[1].regs[12] = 0x5678; /* r12 */
	ret = hi_leak_roots_build(maps, (size_t)n, modules, 2, th, 2, tls, 1,
				  excl, 5, 128, &r);
	CHECK(ret == 0, "build returned %d", ret);
	if (ret)
		return 1;
	CHECK(r.nranges == sizeof(want) / sizeof(want[0]),
	      "%zu ranges, expected %zu", r.nranges,
	      sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < r.nranges; i++) {
		const char *t = hi_leak_label_text(&r.labels[r.ranges[i].label],
						   buf, sizeof(buf));

		if (i >= sizeof(want) / sizeof(want[0])) {
			CHECK(0, "extra range %#llx-%#llx %s",
			      (unsigned long long)r.ranges[i].start,
			      (unsigned long long)r.ranges[i].end, t);
			continue;
		}
		CHECK(r.ranges[i].start == want[i].start &&
			      r.ranges[i].end == want[i].end &&
			      strcmp(t, want[i].label) == 0,
		      "range %zu: %#llx-%#llx %s, expected %#llx-%#llx %s", i,
		      (unsigned long long)r.ranges[i].start,
		      (unsigned long long)r.ranges[i].end, t,
		      (unsigned long long)want[i].start,
		      (unsigned long long)want[i].end, want[i].label);
	}
	CHECK(r.nvalues == 32, "%zu register values", r.nvalues);
	if (r.nvalues == 32) {
		CHECK(r.values[1].value == 0x1234 &&
			      strcmp(hi_leak_label_text(
					     &r.labels[r.values[1].label], buf,
					     sizeof(buf)),
				     "register rbx of thread 100") == 0,
		      "rbx of thread 100: %s", buf);
		CHECK(r.values[16 + 12].value == 0x5678 &&
			      strcmp(hi_leak_label_text(
					     &r.labels[r.values[28].label], buf,
					     sizeof(buf)),
				     "register r12 of thread 101") == 0,
		      "r12 of thread 101: %s", buf);
	}
	hi_leak_roots_free(&r);

	/* A bad line is named. */
	{
		char *t2 = strdup("555555554000-555555555000 r--p 0 08:01 1 /a\n"
				  "garbage\n");
		struct hi_leak_map *m2;

		CHECK(hi_leak_parse_maps(t2, &m2, &bad) == -22 && bad == 2,
		      "bad line %zu", bad);
		free(t2);
	}
	free(maps);
	free(text);
	if (failures) {
		fprintf(stderr, "%d failures\n", failures);
		return 1;
	}
	printf("ok\n");
	return 0;
}
