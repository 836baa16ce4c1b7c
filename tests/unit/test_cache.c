/* SPDX-License-Identifier: MIT */
/*
 * The layout cache over files in a temporary directory: an entry comes back
 * as it was written, and every kind of damaged, foreign or edited file is
 * refused (-HI_E_CORRUPT with a reason), never half-trusted.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

#define ID "0123456789abcdef0123456789abcdef01234567"

static char dir[64], path[256];

/* glibc 2.31's x86_64 layout, from gdb's ptype /o on Debian 11. */
static const struct ptm_layout layout231 = {
	.state_size = 2200,
	.mutex = { 0, 4, 0 }, .flags = { 4, 4, 0 },
	.fastbins = { 16, 80, 10 }, .top = { 96, 8, 0 },
	.bins = { 112, 2032, 254 }, .next = { 2160, 8, 0 },
	.attached_threads = { 2176, 8, 0 }, .system_mem = { 2184, 8, 0 },
	.max_system_mem = { 2192, 8, 0 },
	.par_size = 112,
	.trim_threshold = { 0, 8, 0 }, .mmap_threshold = { 16, 8, 0 },
	.n_mmaps = { 40, 4, 0 }, .n_mmaps_max = { 44, 4, 0 },
	.max_n_mmaps = { 48, 4, 0 }, .mmapped_mem = { 56, 8, 0 },
	.max_mmapped_mem = { 64, 8, 0 }, .sbrk_base = { 72, 8, 0 },
	.tcache_bins = { 80, 8, 0 }, .tcache_max_bytes = { 88, 8, 0 },
	.tcache_count = { 96, 8, 0 },
	.c_size = { 8, 8, 0 }, .c_fd = { 16, 8, 0 }, .c_bk = { 24, 8, 0 },
	.ptr_size = 8,
};

/* glibc 2.43's, from gdb's ptype /o on Debian sid: no fastbins. */
static const struct ptm_layout layout243 = {
	.state_size = 2112,
	.mutex = { 0, 4, 0 }, .flags = { 4, 4, 0 },
	.top = { 8, 8, 0 }, .bins = { 24, 2032, 254 },
	.next = { 2072, 8, 0 }, .attached_threads = { 2088, 8, 0 },
	.system_mem = { 2096, 8, 0 }, .max_system_mem = { 2104, 8, 0 },
	.par_size = 144,
	.trim_threshold = { 0, 8, 0 }, .mmap_threshold = { 16, 8, 0 },
	.hp_pagesize = { 56, 8, 0 }, .n_mmaps = { 68, 4, 0 },
	.n_mmaps_max = { 72, 4, 0 }, .max_n_mmaps = { 76, 4, 0 },
	.mmapped_mem = { 88, 8, 0 }, .max_mmapped_mem = { 96, 8, 0 },
	.sbrk_base = { 104, 8, 0 }, .tcache_bins = { 112, 8, 0 },
	.tcache_max_bytes = { 120, 8, 0 }, .tcache_count = { 128, 8, 0 },
	.tcache_entries = { 152, 608, 76 },
	.c_size = { 8, 8, 0 }, .c_fd = { 16, 8, 0 }, .c_bk = { 24, 8, 0 },
	.ptr_size = 8, .safe_linking = 1,
};

static char *slurp(void)
{
	static char buf[8192];
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

	if (f)
		fclose(f);
	buf[n] = '\0';
	return buf;
}

static void spit(const char *s)
{
	FILE *f = fopen(path, "w");

	if (f) {
		fputs(s, f);
		fclose(f);
	}
}

/* FNV-1a 64 of everything before the checksum line, as the format says. */
static void reseal(char *s)
{
	char *at = strstr(s, "\nchecksum ");
	uint64_t h = 0xcbf29ce484222325ull;

	if (!at)
		return;
	for (char *p = s; p <= at; p++) {
		h ^= (unsigned char)*p;
		h *= 0x100000001b3ull;
	}
	sprintf(at + 1, "checksum %016" PRIx64 "\n", h);
}

static void store_good(void)
{
	struct ptm_cached e = { .located_by = "debuginfod", .l = layout231,
				.arena_off = 0x1ceb80, .mp_off = 0x1ce280 };
	int ret = ptm_cache_store(dir, ID, &e);

	CHECK(ret == 0, "store: %d", ret);
}

static void expect_refused(const char *what, const char *text)
{
	struct ptm_cached e;
	char why[512] = "";
	int ret;

	spit(text);
	ret = ptm_cache_load(dir, ID, &e, why, sizeof(why));
	CHECK(ret == -HI_E_CORRUPT && why[0], "%s: %d (%s)", what, ret, why);
}

/* The good file with one line replaced (and, if reseal, a fresh sum). */
static void edited(const char *what, const char *from, const char *to,
		   int sealed)
{
	char text[8192], *at;

	store_good();
	snprintf(text, sizeof(text), "%s", slurp());
	at = strstr(text, from);
	CHECK(at != NULL, "%s: no '%s' in the file", what, from);
	if (!at)
		return;
	memmove(at + strlen(to), at + strlen(from),
		strlen(at + strlen(from)) + 1);
	memcpy(at, to, strlen(to));
	if (sealed)
		reseal(text);
	expect_refused(what, text);
}

int main(void)
{
	struct ptm_cached e;
	char why[512], good[8192];
	int ret;

	snprintf(dir, sizeof(dir), "/tmp/hi-test-cache-XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(path, sizeof(path), "%s/glibc-%s.layout", dir, ID);

	ret = ptm_cache_load(dir, ID, &e, why, sizeof(why));
	CHECK(ret == -ENOENT, "empty cache: %d", ret);
	store_good();
	ret = ptm_cache_load(dir, ID, &e, why, sizeof(why));
	CHECK(ret == 0, "load: %d %s", ret, why);
	CHECK(!strcmp(e.located_by, "debuginfod") && e.arena_off == 0x1ceb80 &&
	      e.mp_off == 0x1ce280 && e.l.par_size == 112 &&
	      e.l.sbrk_base.off == 72 && e.l.bins.count == 254 &&
	      e.l.tcache_count.off == 96 && e.l.c_bk.off == 24,
	      "entry came back different");
	snprintf(good, sizeof(good), "%s", slurp());
	CHECK(access(path, R_OK) == 0 && !strstr(good, ".tmp"),
	      "the file is in place");

	expect_refused("empty file", "");
	expect_refused("not ours", "hello\n");
	{
		char half[8192];

		snprintf(half, sizeof(half), "%.*s", (int)strlen(good) / 2,
			 good);
		expect_refused("torn file", half);
	}
	edited("edited offset", "top 96,8,0", "top 97,8,0", 0);
	edited("other build-id", "build_id " ID, "build_id "
	       "ffffffffffffffffffffffffffffffffffffffff", 1);
	edited("unknown source", "located_by debuginfod",
	       "located_by builtin", 1);
	edited("impossible layout", "c_fd 16,8,0", "c_fd 40,8,0", 1);
	edited("missing key", "flags 4,4,0\n", "", 1);
	edited("duplicate key", "flags 4,4,0\n", "flags 4,4,0\nflags 4,4,0\n",
	       1);
	edited("unknown key", "flags 4,4,0", "flogs 4,4,0", 1);
	edited("huge offset", "main_arena 1895296", "main_arena 99999999999",
	       1);
	edited("bad magic", "heapinspect-layout-cache 3",
	       "heapinspect-layout-cache 9", 1);

	/* A layout without fastbins comes back without them. */
	{
		struct ptm_cached in = { .located_by = "dwarf",
					 .l = layout243, .arena_off = 0x1e7ac0,
					 .mp_off = 0x1e7000 };

		ret = ptm_cache_store(dir, ID, &in);
		CHECK(ret == 0, "store 2.43: %d", ret);
		ret = ptm_cache_load(dir, ID, &e, why, sizeof(why));
		CHECK(ret == 0 && !memcmp(&e.l, &layout243, sizeof(e.l)) &&
		      e.l.fastbins.size == 0 && e.l.tcache_entries.count == 76,
		      "2.43 layout: %d %s", ret, why);
	}
	/* Format 2 had no tcache_entries: such a file is ignored. */
	store_good();
	snprintf(good, sizeof(good), "%s", slurp());
	{
		char *at = strstr(good, "tcache_entries ");

		CHECK(at != NULL, "tcache_entries in the file");
		if (at)
			memmove(at, strchr(at, '\n') + 1,
				strlen(strchr(at, '\n') + 1) + 1);
		at = strstr(good, "cache 3");
		if (at)
			at[6] = '2';
		reseal(good);
		expect_refused("format 2", good);
	}

	ret = ptm_cache_remove(dir, ID);
	CHECK(ret == 0, "remove: %d", ret);
	ret = ptm_cache_load(dir, ID, &e, why, sizeof(why));
	CHECK(ret == -ENOENT, "after remove: %d", ret);
	ret = ptm_cache_load(dir, "../../etc/passwd", &e, why, sizeof(why));
	CHECK(ret == -EINVAL, "a path for a build-id: %d", ret);
	rmdir(dir);
	printf("%d checks, %d failed\n", checks, failures);
	return failures ? 1 : 0;
}
