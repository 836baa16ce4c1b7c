/* SPDX-License-Identifier: MIT */
/*
 * The symbol-less finder and its checks over byte buffers: a fake libc file
 * (its relocations and writable data) and a fake target memory (libc's data
 * and a [heap]), with decoys planted where a target or an unlucky libc could
 * put them: arenas that look empty and self-pointing, copies of mp_'s
 * defaults, broken bins.  Every expected address is one the test planted.
 * Also the version dispatch of the built-in tables.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/*
 * glibc 2.36's x86_64 layout and mp_ defaults, written down here from gdb
 * (`ptype /o struct malloc_state`, `ptype /o struct malloc_par`, `p mp_`
 * on Debian 12's libc6-dbg), not taken from heapinspect's tables.
 */
static struct ptm_build build = {
	.name = "test",
	.major = 2,
	.minor = 36,
	.layout = {
		.state_size = 2200,
		.mutex = { 0, 4, 0 },
		.flags = { 4, 4, 0 },
		.fastbins = { 16, 80, 10 },
		.top = { 96, 8, 0 },
		.bins = { 112, 2032, 254 },
		.next = { 2160, 8, 0 },
		.attached_threads = { 2176, 8, 0 },
		.system_mem = { 2184, 8, 0 },
		.max_system_mem = { 2192, 8, 0 },
		.par_size = 136,
		.trim_threshold = { 0, 8, 0 },
		.mmap_threshold = { 16, 8, 0 },
		.hp_pagesize = { 48, 8, 0 },
		.n_mmaps = { 60, 4, 0 },
		.n_mmaps_max = { 64, 4, 0 },
		.max_n_mmaps = { 68, 4, 0 },
		.mmapped_mem = { 80, 8, 0 },
		.max_mmapped_mem = { 88, 8, 0 },
		.sbrk_base = { 96, 8, 0 },
		.tcache_bins = { 104, 8, 0 },
		.tcache_max_bytes = { 112, 8, 0 },
		.tcache_count = { 120, 8, 0 },
		.tcache_entries = { 128, 512, 64 },
		.c_size = { 8, 8, 0 },
		.c_fd = { 16, 8, 0 },
		.c_bk = { 24, 8, 0 },
		.ptr_size = 8,
		.safe_linking = 1,
	},
	.par_init = {
		{ 0, 8, 131072 }, { 8, 8, 131072 }, { 16, 8, 131072 },
		{ 24, 8, 8 }, { 32, 8, 0 }, { 40, 8, 0 }, { 48, 8, 0 },
		{ 56, 4, 0 }, { 60, 4, 0 }, { 64, 4, 65536 }, { 68, 4, 0 },
		{ 72, 4, 0 }, { 80, 8, 0 }, { 88, 8, 0 }, { 96, 8, 0 },
		{ 104, 8, 64 }, { 112, 8, 1032 }, { 120, 8, 7 }, { 128, 8, 0 },
	},
	.npar_init = 19,
};

/*
 * glibc 2.43's, from gdb on Debian sid's libc6-dbg: no fastbins, thp_mode
 * in malloc_par, 76 tcache bins, tcache_max_bytes 1041, tcache_count 16.
 */
static const struct ptm_build build243 = {
	.name = "test 2.43",
	.major = 2,
	.minor = 43,
	.layout = {
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
		.tcache_max_bytes = { 120, 8, 0 },
		.tcache_count = { 128, 8, 0 },
		.tcache_entries = { 152, 608, 76 },
		.c_size = { 8, 8, 0 }, .c_fd = { 16, 8, 0 },
		.c_bk = { 24, 8, 0 }, .ptr_size = 8, .safe_linking = 1,
	},
	.par_init = {
		{ 0, 8, 131072 }, { 8, 8, 131072 }, { 16, 8, 131072 },
		{ 24, 8, 8 }, { 32, 8, 0 }, { 40, 4, 3 }, { 48, 8, 0 },
		{ 56, 8, 0 }, { 64, 4, 0 }, { 68, 4, 0 }, { 72, 4, 65536 },
		{ 76, 4, 0 }, { 80, 4, 0 }, { 88, 8, 0 }, { 96, 8, 0 },
		{ 104, 8, 0 }, { 112, 8, 64 }, { 120, 8, 1041 },
		{ 128, 8, 16 }, { 136, 8, 0 },
	},
	.npar_init = 20,
};

#define L (&build.layout)

/* libc's writable data, in the file and in the target. */
#define LIB 0x7f0000000000ull
#define LIBSZ 0x8000u
#define ARENA (LIB + 0x1000)   /* the real main_arena */
#define DECOY (LIB + 0x2000)   /* a second, empty-looking arena in libc */
#define OTHER (LIB + 0x3000)   /* a struct with an unrelated relocation */
#define PAR (LIB + 0x800)      /* the real mp_ */
#define PDECOY (LIB + 0x4000)  /* a copy of mp_'s defaults */
/* The target's [heap] and an executable's .data with planted decoys. */
#define HEAP 0x555500000000ull
#define HEAPSZ 0x21000u
#define EXE 0x555400000000ull
#define EXESZ 0x4000u

static unsigned char file[LIBSZ], lib[LIBSZ], heap[HEAPSZ], exe[EXESZ];

struct reloc {
	hi_addr_t where, value;
};

static struct reloc relocs[8];
static int nrelocs;

static void put(unsigned char *base, hi_addr_t start, hi_addr_t addr,
		uint64_t v, unsigned size)
{
	memcpy(base + (addr - start), &v, size);
}

static void put_lib(hi_addr_t addr, uint64_t v, unsigned size)
{
	put(lib, LIB, addr, v, size);
}

static uint64_t get_lib(hi_addr_t addr)
{
	uint64_t v;

	memcpy(&v, lib + (addr - LIB), 8);
	return v;
}

/* The fake file. */
static int f_relative(void *arg,
		      int (*fn)(hi_addr_t where, hi_addr_t value, void *cb),
		      void *cb)
{
	(void)arg;
	for (int i = 0; i < nrelocs; i++) {
		int ret = fn(relocs[i].where, relocs[i].value, cb);

		if (ret)
			return ret;
	}
	return 0;
}

static int f_read(void *arg, hi_addr_t addr, void *buf, size_t len)
{
	(void)arg;
	if (addr < LIB || addr - LIB > LIBSZ || len > LIBSZ - (addr - LIB))
		return -ENOENT;
	memcpy(buf, file + (addr - LIB), len);
	return 0;
}

static int f_data(void *arg,
		  int (*fn)(hi_addr_t addr, const unsigned char *data,
			    size_t size, void *cb),
		  void *cb)
{
	(void)arg;
	return fn(LIB, file, LIBSZ, cb);
}

static const struct ptm_image image = {
	.each_relative = f_relative,
	.read = f_read,
	.each_data = f_data,
};

/* The fake target memory. */
static int m_read(void *arg, hi_addr_t addr, void *buf, size_t len)
{
	static const struct {
		hi_addr_t start;
		unsigned char *mem;
		size_t size;
	} regions[] = {
		{ LIB, lib, LIBSZ },
		{ HEAP, heap, HEAPSZ },
		{ EXE, exe, EXESZ },
	};

	(void)arg;
	for (size_t i = 0; i < 3; i++) {
		hi_addr_t s = regions[i].start;

		if (addr >= s && addr - s <= regions[i].size &&
		    len <= regions[i].size - (addr - s)) {
			memcpy(buf, regions[i].mem + (addr - s), len);
			return 0;
		}
	}
	return -EFAULT;
}

static struct hi_map map_v[] = {
	{ .start = EXE, .end = EXE + EXESZ, .prot = HI_PROT_R | HI_PROT_W },
	{ .start = HEAP, .end = HEAP + HEAPSZ, .prot = HI_PROT_R | HI_PROT_W,
	  .is_heap = 1 },
	{ .start = LIB, .end = LIB + LIBSZ, .prot = HI_PROT_R | HI_PROT_W },
};
static const struct hi_maps maps = { .v = map_v, .n = 3 };
static const struct hi_maps *vmaps = &maps;
static const struct hi_reader reader = { .read = m_read };

static hi_addr_t bin_at(hi_addr_t arena, unsigned i)
{
	return arena + L->bins.off + (i - 1) * 16 - L->c_fd.off;
}

/* main_arena's and mp_'s images as the compiler leaves them in the file. */
static void file_arena(unsigned char *base, hi_addr_t start, hi_addr_t a)
{
	put(base, start, a + L->attached_threads.off, 1, 8);
	relocs[nrelocs++] = (struct reloc){ a + L->next.off, a };
}

static void file_par(unsigned char *base, hi_addr_t start, hi_addr_t p)
{
	for (unsigned i = 0; i < build.npar_init; i++)
		put(base, start, p + build.par_init[i].off,
		    build.par_init[i].value, build.par_init[i].size);
}

/* An initialized, empty arena in memory: every bin points at itself. */
static void mem_empty_arena(unsigned char *base, hi_addr_t start,
			    hi_addr_t a)
{
	for (unsigned i = 1; i < 128; i++) {
		put(base, start, bin_at(a, i) + L->c_fd.off, bin_at(a, i), 8);
		put(base, start, bin_at(a, i) + L->c_bk.off, bin_at(a, i), 8);
	}
	put(base, start, a + L->top.off, bin_at(a, 1), 8);
	put(base, start, a + L->next.off, a, 8);
	put(base, start, a + L->attached_threads.off, 1, 8);
}

/*
 * The world: the real main_arena with one free chunk in the unsorted bin
 * and its top ending at the brk; mp_ with sbrk_base at [heap]; decoys.
 */
static void setup(void)
{
	hi_addr_t chunk = HEAP + 0x100, top = HEAP + 0x1000;

	memset(file, 0, sizeof(file));
	memset(lib, 0, sizeof(lib));
	memset(heap, 0, sizeof(heap));
	memset(exe, 0, sizeof(exe));
	nrelocs = 0;

	file_arena(file, LIB, ARENA);
	file_par(file, LIB, PAR);
	/* Decoys in the file: an identical arena image, mp_'s defaults. */
	file_arena(file, LIB, DECOY);
	file_par(file, LIB, PDECOY);
	/* A relocation to elsewhere: not a self-pointing next. */
	relocs[nrelocs++] = (struct reloc){ OTHER + L->next.off, PAR };

	/* Memory: libc's data starts as the file, then malloc ran. */
	memcpy(lib, file, sizeof(lib));
	mem_empty_arena(lib, LIB, ARENA);
	put_lib(ARENA + L->top.off, top, 8);
	put_lib(ARENA + L->system_mem.off, HEAPSZ, 8);
	put_lib(ARENA + L->max_system_mem.off, HEAPSZ, 8);
	/* Chunk of 0x200 bytes alone in the unsorted bin. */
	put_lib(bin_at(ARENA, 1) + L->c_fd.off, chunk, 8);
	put_lib(bin_at(ARENA, 1) + L->c_bk.off, chunk, 8);
	put(heap, HEAP, chunk + 8, 0x201, 8);
	put(heap, HEAP, chunk + 16, bin_at(ARENA, 1), 8);
	put(heap, HEAP, chunk + 24, bin_at(ARENA, 1), 8);
	put(heap, HEAP, top + 8, (HEAP + HEAPSZ - top) | 1, 8);
	put_lib(PAR + L->sbrk_base.off, HEAP, 8);
	/* mallopt may change these: the checks must not mind. */
	put_lib(PAR + L->mmap_threshold.off, 1 << 20, 8);
	put_lib(PAR + L->trim_threshold.off, 2 << 20, 8);

	/* The libc decoys were "initialized" by someone: an empty arena,
	 * and an mp_ whose sbrk_base is not the [heap]. */
	mem_empty_arena(lib, LIB, DECOY);
	put_lib(PDECOY + L->sbrk_base.off, 0x1234000, 8);
	/* Decoys of the target's own: an empty arena and mp_ defaults in
	 * its .data and in its heap, where no candidate is searched. */
	mem_empty_arena(exe, EXE, EXE + 0x100);
	file_par(exe, EXE, EXE + 0x1000);
	file_par(heap, HEAP, HEAP + 0x400);
}

static void test_candidates(void)
{
	hi_addr_t a[PTM_MAX_CAND], p[PTM_MAX_CAND];
	int n;

	setup();
	n = ptm_find_arena(L, &image, a, PTM_MAX_CAND);
	CHECK(n == 2, "arena candidates: %d", n);
	CHECK(n >= 1 && a[0] == ARENA, "first candidate " HI_PRIxADDR, a[0]);
	CHECK(n >= 2 && a[1] == DECOY, "second candidate " HI_PRIxADDR, a[1]);
	n = ptm_find_par(&build, &image, p, PTM_MAX_CAND);
	CHECK(n == 2, "mp_ candidates: %d", n);
	CHECK(n >= 2 && p[0] == PAR && p[1] == PDECOY,
	      "mp_ candidates " HI_PRIxADDR " " HI_PRIxADDR, p[0], p[1]);

	/* attached_threads = 0 in the file: not main_arena's image. */
	put(file, LIB, DECOY + L->attached_threads.off, 0, 8);
	n = ptm_find_arena(L, &image, a, PTM_MAX_CAND);
	CHECK(n == 1 && a[0] == ARENA, "candidates with a bad image: %d", n);
	/* A non-zero byte where main_arena starts as zero. */
	put(file, LIB, DECOY + L->attached_threads.off, 1, 8);
	put(file, LIB, DECOY + L->top.off, 0x1234, 8);
	n = ptm_find_arena(L, &image, a, PTM_MAX_CAND);
	CHECK(n == 1 && a[0] == ARENA, "candidates with a set top: %d", n);
	/* One default differs: not mp_. */
	put(file, LIB, PDECOY + 64, 65535, 4);
	n = ptm_find_par(&build, &image, p, PTM_MAX_CAND);
	CHECK(n == 1 && p[0] == PAR, "mp_ candidates: %d", n);
}

static int verify(hi_addr_t a, hi_addr_t p, struct ptm_checks *c)
{
	struct ptm_where w = { .main_arena = a, .mp = p };

	return ptm_verify(L, &w, LIB, LIB + LIBSZ, &reader, vmaps, c);
}

static const char *first_failed(const struct ptm_checks *c)
{
	for (unsigned i = 0; i < c->n; i++) {
		if (!c->v[i].ok)
			return c->v[i].name;
	}
	return "(none)";
}

static void test_verify(void)
{
	struct ptm_checks c;
	int ret;

	setup();
	ret = verify(ARENA, PAR, &c);
	CHECK(ret == 1, "the real pair: %d, failed %s", ret, first_failed(&c));
	CHECK(c.n == c.passed && c.n >= 8, "checks %u passed %u", c.n,
	      c.passed);

	/* The empty decoy arena with the real mp_: sbrk_base gives it away. */
	ret = verify(DECOY, PAR, &c);
	CHECK(ret == 0 && !strcmp(first_failed(&c),
				  "mp_.sbrk_base is the start of [heap]"),
	      "decoy arena: %d, failed %s", ret, first_failed(&c));
	/* The real arena with the decoy mp_. */
	ret = verify(ARENA, PDECOY, &c);
	CHECK(ret == 0, "decoy mp_: %d", ret);
	/* The target's own decoys are outside libc. */
	ret = verify(EXE + 0x100, PAR, &c);
	CHECK(ret == 0 && !strcmp(first_failed(&c),
			  "main_arena and mp_ lie in libc's writable data"),
	      "decoy in the executable: %d, failed %s", ret, first_failed(&c));
	ret = verify(ARENA, HEAP + 0x400, &c);
	CHECK(ret == 0, "mp_ decoy in the heap: %d", ret);

	/* A bin whose list does not point back at it. */
	put(heap, HEAP, HEAP + 0x100 + 24, bin_at(ARENA, 2), 8);
	ret = verify(ARENA, PAR, &c);
	CHECK(ret == 0 && !strcmp(first_failed(&c),
				  "empty bins point at themselves"),
	      "broken bin: %d, failed %s", ret, first_failed(&c));
	setup();
	/* Half a bin pointing at itself. */
	put_lib(bin_at(ARENA, 5) + L->c_fd.off, HEAP + 0x100, 8);
	ret = verify(ARENA, PAR, &c);
	CHECK(ret == 0, "half-empty bin: %d", ret);
	setup();
	/* top outside [heap]. */
	put_lib(ARENA + L->top.off, EXE + 0x100, 8);
	ret = verify(ARENA, PAR, &c);
	CHECK(ret == 0 && !strcmp(first_failed(&c),
				  "top lies inside the heap mapping"),
	      "top outside: %d, failed %s", ret, first_failed(&c));
	setup();
	/* system_mem that the brk area does not hold. */
	put_lib(ARENA + L->system_mem.off, HEAPSZ - 0x1000, 8);
	ret = verify(ARENA, PAR, &c);
	CHECK(ret == 0 && !strcmp(first_failed(&c),
			  "system_mem agrees with the mapping sizes"),
	      "system_mem: %d, failed %s", ret, first_failed(&c));
	setup();
	/* A ring that leaves for nowhere. */
	put_lib(ARENA + L->next.off, 0x1000, 8);
	ret = verify(ARENA, PAR, &c);
	CHECK(ret == 0 && !strcmp(first_failed(&c),
				  "the arena ring closes on itself"),
	      "open ring: %d, failed %s", ret, first_failed(&c));
	setup();
	/* A non-main arena whose heap does not point back at it. */
	{
		hi_addr_t other = HEAP + 0x2000;

		mem_empty_arena(heap, HEAP, other);
		put(heap, HEAP, other + L->next.off, ARENA, 8);
		put_lib(ARENA + L->next.off, other, 8);
		ret = verify(ARENA, PAR, &c);
		CHECK(ret == 0 && !strcmp(first_failed(&c),
			"each other arena's heap points back at it"),
		      "heap_info: %d, failed %s", ret, first_failed(&c));
	}
	setup();
	/* mp_'s counters that cannot be. */
	put_lib(PAR + L->n_mmaps.off, 3, 4);
	ret = verify(ARENA, PAR, &c);
	CHECK(ret == 0 && !strcmp(first_failed(&c), "mp_'s counters agree"),
	      "counters: %d, failed %s", ret, first_failed(&c));
	/*
	 * The largest tcache_max_bytes the tunable can set (do_set_tcache_max):
	 * 1032 with 64 bins (2.41); with 76 (2.43) a chunk below 4 MiB, kept
	 * plus one.  One more is out of range.
	 */
	{
		uint64_t max = L->tcache_entries.count > 64 ? (4u << 20) - 15
							    : 1032;

		setup();
		put_lib(PAR + L->tcache_max_bytes.off, max, 8);
		ret = verify(ARENA, PAR, &c);
		CHECK(ret == 1, "tcache_max_bytes %" PRIu64 ": %d, failed %s",
		      max, ret, first_failed(&c));
		put_lib(PAR + L->tcache_max_bytes.off,
			L->tcache_entries.count > 64 ? (4u << 20) + 1 : 1033,
			8);
		ret = verify(ARENA, PAR, &c);
		CHECK(ret == 0 && !strcmp(first_failed(&c),
					  "mp_'s counters agree"),
		      "tcache_max_bytes out of range: %d, failed %s", ret,
		      first_failed(&c));
	}
	(void)get_lib;
}

/*
 * [heap] in several mappings, as the kernel shows it in a forked child
 * that grew its heap, or after madvise, mlock or mprotect of part of it:
 * one heap for every check.  Pieces with a hole between them are not.
 */
static void test_split_heap(void)
{
	struct hi_map v[5] = { map_v[0], map_v[1], map_v[1], map_v[1],
			       map_v[2] };
	struct hi_maps split = { .v = v, .n = 5 };
	struct ptm_checks c;
	int ret;

	setup();
	v[1].end = HEAP + 0x800;
	v[2].start = HEAP + 0x800;
	v[2].end = HEAP + 0xc00;
	v[2].prot = HI_PROT_R;
	v[3].start = HEAP + 0xc00;
	vmaps = &split;
	ret = verify(ARENA, PAR, &c);
	CHECK(ret == 1, "[heap] in 3 mappings: %d, failed %s", ret,
	      first_failed(&c));
	/* A hole in the middle: the pieces are no longer one heap. */
	v[2].end = HEAP + 0xb00;
	ret = verify(ARENA, PAR, &c);
	CHECK(ret == 0 && !strcmp(first_failed(&c),
				  "mp_.sbrk_base is the start of [heap]"),
	      "[heap] with a hole: %d, failed %s", ret, first_failed(&c));
	vmaps = &maps;
}

static void test_select(void)
{
	hi_addr_t a[PTM_MAX_CAND], p[PTM_MAX_CAND];
	struct ptm_where w;
	struct ptm_checks c;
	int na, np, n;

	setup();
	na = ptm_find_arena(L, &image, a, PTM_MAX_CAND);
	np = ptm_find_par(&build, &image, p, PTM_MAX_CAND);
	n = ptm_select(L, a, na, p, np, LIB, LIB + LIBSZ, &reader, &maps, &w,
		       &c);
	CHECK(n == 1 && w.main_arena == ARENA && w.mp == PAR,
	      "select: %d " HI_PRIxADDR " " HI_PRIxADDR, n, w.main_arena,
	      w.mp);

	/*
	 * A decoy pair that is self-consistent (an empty arena and an mp_
	 * that never used brk) besides the real one: two pairs pass, and
	 * neither may be used.
	 */
	put_lib(PDECOY + L->sbrk_base.off, 0, 8);
	n = ptm_select(L, a, na, p, np, LIB, LIB + LIBSZ, &reader, &maps, &w,
		       &c);
	CHECK(n == 2, "ambiguous select: %d", n);

	/* Nothing verifies: 0, with the closest pair's checks to show. */
	setup();
	put_lib(ARENA + L->next.off, 0x1000, 8);
	put_lib(DECOY + L->next.off, 0x1000, 8);
	n = ptm_select(L, a, na, p, np, LIB, LIB + LIBSZ, &reader, &maps, &w,
		       &c);
	CHECK(n == 0 && c.n > 0 && c.passed < c.n, "none: %d", n);
}

static void test_versions(void)
{
	/*
	 * The structs of each version: gdb's ptype/o on the DWARF of the
	 * Debian builds (2.31, 2.36, 2.41, 2.43, 2.44), glibc's malloc.c at
	 * the release's tag for the others.  mapped: no build of that very
	 * version proved the table.
	 */
	static const struct {
		unsigned major, minor;
		int known;
		uint64_t state_size, par_size, fastbins, tcache_bins;
		int safe, mapped;
	} v[] = {
		{ 2, 30, 0, 0, 0, 0, 0, 0, 0 },
		{ 2, 31, 1, 2200, 112, 10, 64, 0, 0 },
		{ 2, 32, 1, 2200, 112, 10, 64, 1, 1 },
		{ 2, 34, 1, 2200, 112, 10, 64, 1, 1 },
		{ 2, 35, 1, 2200, 136, 10, 64, 1, 1 },
		{ 2, 36, 1, 2200, 136, 10, 64, 1, 0 },
		{ 2, 40, 1, 2200, 136, 10, 64, 1, 1 },
		{ 2, 41, 1, 2200, 136, 10, 64, 1, 0 },
		{ 2, 42, 1, 2200, 136, 10, 76, 1, 1 },
		{ 2, 43, 1, 2112, 144, 0, 76, 1, 0 },
		{ 2, 44, 1, 2112, 136, 0, 76, 1, 0 },
		{ 2, 45, 0, 0, 0, 0, 0, 0, 0 },
		{ 2, 99, 0, 0, 0, 0, 0, 0, 0 },
		{ 3, 1, 0, 0, 0, 0, 0, 0, 0 },
		{ 1, 36, 0, 0, 0, 0, 0, 0, 0 },
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		const char *range = NULL;
		const struct ptm_build *b = ptm_builtin_for(v[i].major,
							    v[i].minor, &range);
		const struct ptm_layout *l;

		CHECK(!!b == v[i].known, "glibc %u.%u: table %s", v[i].major,
		      v[i].minor, b ? b->name : "none");
		CHECK(range && strstr(range, "2.31 to 2.44") &&
		      strstr(range, "proven on real builds: 2.31, 2.36, 2.41, "
			     "2.43, 2.44;") &&
		      strstr(range, "mapped from glibc's sources: 2.32 to "
			     "2.35, 2.37 to 2.40, 2.42)"),
		      "range %s", range ? range : "(null)");
		if (!b || !v[i].known)
			continue;
		l = &b->layout;
		CHECK(l->state_size == v[i].state_size &&
		      l->par_size == v[i].par_size &&
		      l->fastbins.count == v[i].fastbins &&
		      l->tcache_entries.count == v[i].tcache_bins &&
		      l->safe_linking == v[i].safe &&
		      b->mapped == v[i].mapped && b->minor == v[i].minor &&
		      ptm_layout_check(l) == 0,
		      "glibc %u.%u: state_size %" PRIu64 " par_size %" PRIu64
		      " fastbins %" PRIu64 " tcache bins %" PRIu64 " safe %d "
		      "mapped %d", v[i].major, v[i].minor, l->state_size,
		      l->par_size, l->fastbins.count, l->tcache_entries.count,
		      l->safe_linking, b->mapped);
		CHECK(!b->mapped || strstr(b->name, "mapped from glibc's "
					   "sources"), "name %s", b->name);
	}
}

int main(void)
{
	test_candidates();
	test_verify();
	test_split_heap();
	test_select();
	/* The same world in glibc 2.43's layout. */
	build = build243;
	test_candidates();
	test_verify();
	test_select();
	test_versions();
	printf("%d checks, %d failed\n", checks, failures);
	return failures ? 1 : 0;
}
