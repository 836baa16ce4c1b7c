/* SPDX-License-Identifier: MIT */
/*
 * The glibc walker over byte buffers: a heap built by hand in a buffer that
 * stands for the target's memory, with the expected figures counted from
 * what the test itself put there, then the same heap broken in the ways a
 * corrupt or half-updated target can be.
 */
#include <errno.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* The fake target: one writable mapping at BASE. */
#define BASE 0x55550000000ull
#define MEMSZ (1u << 20)
#define ARENA BASE            /* struct malloc_state */
#define PAR (BASE + 0x2000)   /* struct malloc_par */
#define HEAP (BASE + 0x10000) /* chunks */

static unsigned char mem[MEMSZ];
/*
 * test_sweep_sparse's heap goes on far away: FARSZ bytes at FAR, and
 * between mem and them bytes never written (zeros), inside a chunk.
 */
#define FAR (BASE + (48u << 20))
#define FARSZ (1u << 16)
static unsigned char far[FARSZ];
static int sparse;

static int buf_read(void *arg, hi_addr_t addr, void *buf, size_t len)
{
	(void)arg;
	if (sparse && addr >= BASE + MEMSZ && addr < FAR + FARSZ &&
	    len <= FAR + FARSZ - addr) {
		for (size_t i = 0; i < len; i++) {
			hi_addr_t a = addr + i;

			((unsigned char *)buf)[i] =
				a >= FAR ? far[a - FAR] :
				a < BASE + MEMSZ ? mem[a - BASE] : 0;
		}
		return 0;
	}
	if (addr < BASE || addr - BASE > MEMSZ || len > MEMSZ - (addr - BASE))
		return -EFAULT;
	if (sparse && len > MEMSZ - (addr - BASE))
		return -EFAULT;
	memcpy(buf, mem + (addr - BASE), len);
	return 0;
}

/*
 * The threads that read through read_direct: a sweep shared out.  With
 * wait_for_two, the first waits (up to 5 s) for a second to read, so that
 * a thread that starts late still gets its share, whatever the load.
 */
static pthread_mutex_t readers_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t readers_cv = PTHREAD_COND_INITIALIZER;
static pthread_t readers[8];
static size_t nreaders;
static int wait_for_two;

static int direct_read(void *arg, hi_addr_t addr, void *buf, size_t len)
{
	pthread_t self = pthread_self();
	struct timespec until;
	size_t i;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	pthread_mutex_lock(&readers_mu);
	for (i = 0; i < nreaders && !pthread_equal(readers[i], self); i++)
		;
	if (i == nreaders && nreaders < 8) {
		readers[nreaders++] = self;
		pthread_cond_broadcast(&readers_cv);
	}
	while (wait_for_two && nreaders < 2 &&
	       pthread_cond_timedwait(&readers_cv, &readers_mu, &until) == 0)
		;
	pthread_mutex_unlock(&readers_mu);
	return buf_read(arg, addr, buf, len);
}

static struct hi_map the_map = {
	.start = BASE, .end = BASE + MEMSZ, .prot = HI_PROT_R | HI_PROT_W,
};
static const struct hi_maps one_map = { .v = &the_map, .n = 1 };
/* What the walks see: one mapping, or the pieces of test_split_maps. */
static const struct hi_maps *walk_maps = &one_map;
#define maps (*walk_maps)
static const struct hi_reader reader = {
	.read = buf_read,
	.read_direct = direct_read,
};

/*
 * glibc 2.36's x86_64 layout, written down here from `ptype /o` in gdb, as
 * the walker would otherwise get it from DWARF.
 */
static int glibc_243; /* layout() gives glibc 2.43's instead */

static struct ptm_layout layout(int safe_linking)
{
	/* glibc 2.43's (Debian sid's libc6-dbg): no fastbins. */
	static const struct ptm_layout l243 = {
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
	};
	struct ptm_layout l = {
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
		.sbrk_base = { 96, 8, 0 },
		.tcache_bins = { 104, 8, 0 },
		.tcache_max_bytes = { 112, 8, 0 },
		.tcache_count = { 120, 8, 0 },
		.mmapped_mem = { 80, 8, 0 },
		.max_mmapped_mem = { 88, 8, 0 },
		.c_size = { 8, 8, 0 },
		.c_fd = { 16, 8, 0 },
		.c_bk = { 24, 8, 0 },
		.ptr_size = 8,
		.safe_linking = safe_linking,
	};
	return glibc_243 ? l243 : l;
}

static void put64(hi_addr_t addr, uint64_t v)
{
	if (addr >= FAR) {
		memcpy(far + (addr - FAR), &v, 8);
		return;
	}
	memcpy(mem + (addr - BASE), &v, 8);
}

static uint64_t get64(hi_addr_t addr)
{
	uint64_t v;

	if (addr >= FAR)
		memcpy(&v, far + (addr - FAR), 8);
	else
		memcpy(&v, mem + (addr - BASE), 8);
	return v;
}

static void put32(hi_addr_t addr, uint32_t v)
{
	memcpy(mem + (addr - BASE), &v, 4);
}

static hi_addr_t bin_at(const struct ptm_layout *l, unsigned i)
{
	return ARENA + l->bins.off + (i - 1) * 16 - l->c_fd.off;
}

/* What the test put in the heap, counted as it goes. */
struct expect {
	uint64_t fast_chunks, fast_bytes, bin_chunks, bin_bytes, top;
};

static hi_addr_t next_chunk;
/* Chunks put in bins: the chunk after each is told it is free. */
static hi_addr_t binned[2048];
static size_t nbinned;

static hi_addr_t new_chunk(uint64_t size)
{
	hi_addr_t p = next_chunk;

	put64(p + 8, size | 1); /* PREV_INUSE must not leak into sizes */
	next_chunk += size;
	return p;
}

static void push_fast(const struct ptm_layout *l, unsigned idx, uint64_t size,
		      struct expect *e)
{
	hi_addr_t head_at = ARENA + l->fastbins.off + idx * 8, p, old;

	memcpy(&old, mem + (head_at - BASE), 8);
	p = new_chunk(size);
	/* PROTECT_PTR (pos, ptr): ((size_t) pos >> 12) ^ ptr */
	put64(p + 16, l->safe_linking ? ((p + 16) >> 12) ^ old : old);
	put64(head_at, p);
	e->fast_chunks++;
	e->fast_bytes += size;
}

/* Link a chunk at the front of bin i (as unlink/insert in malloc.c). */
static void push_bin(const struct ptm_layout *l, unsigned i, uint64_t size,
		     struct expect *e)
{
	hi_addr_t b = bin_at(l, i), p, fwd = get64(b + 16);

	p = new_chunk(size);
	put64(p + 16, fwd);
	put64(p + 24, b);
	put64(fwd + 24, p);
	put64(b + 16, p);
	if (nbinned < sizeof(binned) / sizeof(binned[0]))
		binned[nbinned++] = p;
	e->bin_chunks++;
	e->bin_bytes += size;
}

/*
 * The heap of the tests: a few chunks in fastbins and bins, then ngroups
 * more chunks in the small bins and the unsorted bin, each between two
 * chunks in use, then top.
 */
static void build_n(const struct ptm_layout *l, struct expect *e,
		    unsigned ngroups)
{
	hi_addr_t top;

	memset(mem, 0, sizeof(mem));
	memset(e, 0, sizeof(*e));
	next_chunk = HEAP;
	nbinned = 0;
	put64(ARENA + l->next.off, ARENA);
	put64(ARENA + l->attached_threads.off, 1);
	for (unsigned i = 1; i < 128; i++) {
		put64(bin_at(l, i) + 16, bin_at(l, i));
		put64(bin_at(l, i) + 24, bin_at(l, i));
	}
	/* Where glibc has no fastbins, those frees went to the bins. */
	for (unsigned k = 0; k < 5 && l->fastbins.size; k++)
		push_fast(l, 0, 32, e);
	for (unsigned k = 0; k < 3 && l->fastbins.size; k++)
		push_fast(l, 3, 80, e);
	push_bin(l, 1, 4000, e);   /* unsorted: any size */
	push_bin(l, 1, 48, e);
	push_bin(l, 10, 160, e);   /* small bin 10 holds 160-byte chunks */
	push_bin(l, 10, 160, e);
	push_bin(l, 64, 1024, e);  /* first large bin: 1024..1087 */
	push_bin(l, 64, 1072, e);
	push_bin(l, 118, 32768, e); /* 110 + (32768 >> 12) */
	for (unsigned k = 0; k < ngroups; k++) {
		uint64_t size = 32 + (k * 80) % 960; /* small bin size >> 4 */

		new_chunk(32 + (k * 48) % 992);
		push_bin(l, k % 3 ? (unsigned)(size >> 4) : 1, size, e);
	}
	if (ngroups)
		new_chunk(64);
	top = new_chunk(0x8000);
	e->top = 0x8000;
	/*
	 * As _int_free leaves a binned chunk: the next one's PREV_INUSE
	 * clear, its prev_size the binned chunk's size (set_foot).
	 */
	for (size_t i = 0; i < nbinned; i++) {
		uint64_t sz, nsz;
		hi_addr_t n;

		memcpy(&sz, mem + (binned[i] + 8 - BASE), 8);
		n = binned[i] + (sz & ~7ull);
		memcpy(&nsz, mem + (n + 8 - BASE), 8);
		put64(n + 8, nsz & ~1ull);
		put64(n, sz & ~7ull);
	}
	put64(PAR + l->sbrk_base.off, HEAP);
	put64(ARENA + l->top.off, top);
	put64(ARENA + l->system_mem.off, next_chunk - HEAP);
	put64(ARENA + l->max_system_mem.off, next_chunk - HEAP);
	put32(PAR + l->n_mmaps.off, 3);
	put64(PAR + l->mmapped_mem.off, 3 * 0x21000);
	put64(PAR + l->max_mmapped_mem.off, 5 * 0x21000);
}

static void build(const struct ptm_layout *l, struct expect *e)
{
	build_n(l, e, 0);
}

static enum ptm_mode walk_mode = PTM_AUTO;

static int walk(const struct ptm_layout *l, struct hi_heap *h)
{
	struct ptm_where w = { .main_arena = ARENA, .mp = PAR };

	return ptm_read_heap_mode(l, &w, &reader, &maps, 1, walk_mode, h);
}

static void test_good(int safe_linking, enum ptm_mode mode)
{
	struct ptm_layout l = layout(safe_linking);
	struct hi_heap h;
	struct expect e;
	uint64_t sys, avail;
	int ret;

	CHECK(ptm_layout_check(&l) == 0, "layout rejected");
	build(&l, &e);
	walk_mode = mode;
	ret = walk(&l, &h);
	walk_mode = PTM_AUTO;
	CHECK(ret == 0, "walk (mode %d) returned %d", mode, ret);
	CHECK(h.complete, "incomplete: %s", h.narenas ? h.arenas[0].why : "");
	if (ret || !h.complete)
		goto out;
	sys = next_chunk - HEAP;
	avail = e.top + e.fast_bytes + e.bin_bytes;
	CHECK(h.narenas == 1, "%zu arenas", h.narenas);
	CHECK(h.mi.arena == sys, "arena %" PRIu64, h.mi.arena);
	CHECK(h.mi.ordblks == 1 + e.bin_chunks, "ordblks %" PRIu64,
	      h.mi.ordblks);
	CHECK(h.mi.smblks == e.fast_chunks, "smblks %" PRIu64, h.mi.smblks);
	CHECK(h.mi.fsmblks == e.fast_bytes, "fsmblks %" PRIu64, h.mi.fsmblks);
	CHECK(h.mi.fordblks == avail, "fordblks %" PRIu64, h.mi.fordblks);
	CHECK(h.mi.uordblks == sys - avail, "uordblks %" PRIu64,
	      h.mi.uordblks);
	CHECK(h.mi.keepcost == e.top, "keepcost %" PRIu64, h.mi.keepcost);
	CHECK(h.mi.hblks == 3, "hblks %" PRIu64, h.mi.hblks);
	CHECK(h.mi.hblkhd == 3 * 0x21000, "hblkhd %" PRIu64, h.mi.hblkhd);
	CHECK(h.mi.usmblks == 0, "usmblks %" PRIu64, h.mi.usmblks);
	CHECK(h.arenas[0].is_main && h.arenas[0].attached_threads == 1,
	      "main arena");
out:
	hi_heap_free(&h);
}

/* Break the heap with fn, walk, and expect a corrupt arena at addr. */
static void expect_corrupt(const char *what, void (*fn)(struct ptm_layout *),
			   int safe_linking)
{
	struct ptm_layout l = layout(safe_linking);
	struct hi_heap h;
	struct expect e;
	int ret;

	build(&l, &e);
	fn(&l);
	ret = walk(&l, &h);
	if (ret == -HI_E_CORRUPT) {
		/* The ring itself: refused as a whole, saying where and why. */
		CHECK(h.why[0] != '\0', "%s: corrupt ring without a reason",
		      what);
		return;
	}
	CHECK(ret == 0, "%s: walk returned %d", what, ret);
	if (ret)
		return;
	/* Nor may glibc's mallinfo2() be called into it. */
	{
		struct ptm_where w = { .main_arena = ARENA, .mp = PAR };

		CHECK(ptm_call_sound(&l, &w, &reader, &maps, HI_CALL_INFO,
				     &h) == -HI_E_CORRUPT,
		      "%s: a call found sound", what);
	}
	CHECK(!h.complete, "%s: reported as complete", what);
	CHECK(h.narenas >= 1 && h.arenas[0].status == -HI_E_CORRUPT,
	      "%s: arena status %d", what,
	      h.narenas ? h.arenas[0].status : 0);
	if (h.narenas)
		CHECK(h.arenas[0].why[0] != '\0', "%s: no reason", what);
	hi_heap_free(&h);
}

static hi_addr_t fast_head(struct ptm_layout *l, unsigned idx)
{
	hi_addr_t p;

	memcpy(&p, mem + (ARENA + l->fastbins.off + idx * 8 - BASE), 8);
	return p;
}

static void fast_cycle(struct ptm_layout *l)
{
	hi_addr_t p = fast_head(l, 0);

	/* The head chunk's fd points back at itself. */
	put64(p + 16, l->safe_linking ? ((p + 16) >> 12) ^ p : p);
}

static void fast_unmapped(struct ptm_layout *l)
{
	hi_addr_t p = fast_head(l, 0);
	hi_addr_t bad = 0x10000000ull;

	put64(p + 16, l->safe_linking ? ((p + 16) >> 12) ^ bad : bad);
}

static void fast_misaligned(struct ptm_layout *l)
{
	put64(ARENA + l->fastbins.off, fast_head(l, 0) + 8);
}

static void fast_wrong_size(struct ptm_layout *l)
{
	put64(fast_head(l, 3) + 8, 0x200 | 1);
}

static void bin_huge_size(struct ptm_layout *l)
{
	hi_addr_t p;

	memcpy(&p, mem + (bin_at(l, 1) + 24 - BASE), 8);
	put64(p + 8, 0x7fffffffffff0ull);
}

static void bin_cycle_off_head(struct ptm_layout *l)
{
	hi_addr_t first, second;

	/* last(b) -> x -> x: a loop that never reaches the bin head. */
	memcpy(&first, mem + (bin_at(l, 10) + 24 - BASE), 8);
	memcpy(&second, mem + (first + 24 - BASE), 8);
	put64(second + 24, first);
}

static void bin_null(struct ptm_layout *l)
{
	hi_addr_t p;

	memcpy(&p, mem + (bin_at(l, 64) + 24 - BASE), 8);
	put64(p + 24, 0);
}

/*
 * Links that do not point back (unlink_chunk's "corrupted double-linked
 * list"): bin 10 holds two chunks, b <-> F <-> L <-> b.
 */
static void bin_fd_self(struct ptm_layout *l)
{
	hi_addr_t last;

	memcpy(&last, mem + (bin_at(l, 10) + 24 - BASE), 8);
	put64(last + 16, last);
}

static void bin_header_fd(struct ptm_layout *l)
{
	hi_addr_t last;

	memcpy(&last, mem + (bin_at(l, 10) + 24 - BASE), 8);
	put64(bin_at(l, 10) + 16, last);
}

/* The first chunk's fd skips the last: F -> b while L -> F stays. */
static void bin_fd_skips(struct ptm_layout *l)
{
	hi_addr_t first;

	memcpy(&first, mem + (bin_at(l, 10) + 16 - BASE), 8);
	put64(first + 16, bin_at(l, 10));
}

static void ring_open(struct ptm_layout *l)
{
	put64(ARENA + l->next.off, BASE + MEMSZ + 0x1000);
}

static void ring_rho(struct ptm_layout *l)
{
	/* main -> A -> A: a ring that never comes back to main_arena. */
	hi_addr_t a = BASE + 0x4000;

	memcpy(mem + (a - BASE), mem, l->state_size);
	put64(ARENA + l->next.off, a);
	put64(a + l->next.off, a);
}

static void ring_overlap(struct ptm_layout *l)
{
	/* main -> A -> main, with A starting inside main_arena's struct. */
	hi_addr_t a = ARENA + 0x100;

	put64(a + l->next.off, ARENA);
	put64(ARENA + l->next.off, a);
}

static void top_outside(struct ptm_layout *l)
{
	put64(ARENA + l->top.off, BASE + MEMSZ - 0x10);
}

static void free_exceeds_system(struct ptm_layout *l)
{
	put64(ARENA + l->system_mem.off, 0x100);
}

static void test_busy(void)
{
	struct ptm_layout l = layout(1);
	struct ptm_where w = { .main_arena = ARENA, .mp = PAR };
	struct hi_heap h;
	struct expect e;
	int ret;

	build(&l, &e);
	CHECK(ptm_busy(&l, &w, &reader, &maps) == 0, "idle arena is busy");
	put32(ARENA + l.mutex.off, 1);
	CHECK(ptm_busy(&l, &w, &reader, &maps) == 1, "held lock not seen");
	ret = ptm_read_heap(&l, &w, &reader, &maps, 1, &h);
	CHECK(ret == 0 && !h.complete && h.arenas[0].status == -HI_E_BUSY,
	      "locked arena was walked");
	hi_heap_free(&h);
}

static void test_uninitialised(void)
{
	struct ptm_layout l = layout(1);
	struct hi_heap h;
	int ret;

	/* main_arena before ptmalloc_init: only next and the counters. */
	memset(mem, 0, sizeof(mem));
	put64(ARENA + l.next.off, ARENA);
	ret = walk(&l, &h);
	CHECK(ret == 0 && h.complete, "uninitialised arena: %d", ret);
	/* What mallinfo2 returns right after its own ptmalloc_init. */
	CHECK(h.mi.ordblks == 1 && h.mi.arena == 0 && h.mi.fordblks == 0,
	      "uninitialised figures");
	hi_heap_free(&h);

	/*
	 * After malloc_init_state, before the first sysmalloc: top is
	 * initial_top, the unsorted bin's header, which in glibc 2.43's
	 * struct sits at arena + 8, pointer-aligned only.
	 */
	for (int v = 0; v <= 1; v++) {
		glibc_243 = v;
		l = layout(1);
		memset(mem, 0, sizeof(mem));
		put64(ARENA + l.next.off, ARENA);
		for (unsigned i = 1; i < 128; i++) {
			put64(bin_at(&l, i) + 16, bin_at(&l, i));
			put64(bin_at(&l, i) + 24, bin_at(&l, i));
		}
		put64(ARENA + l.top.off, bin_at(&l, 1));
		ret = walk(&l, &h);
		CHECK(ret == 0 && h.complete && h.mi.ordblks == 1 &&
		      h.mi.arena == 0 && h.mi.fordblks == 0,
		      "initial_top (2.43 layout %d): %d %s", v, ret,
		      h.narenas ? h.arenas[0].why : "");
		hi_heap_free(&h);
	}
	glibc_243 = 0;
}

static void test_layout_check(void)
{
	struct ptm_layout l = layout(1);

	l.bins.off = l.state_size;
	CHECK(ptm_layout_check(&l) == -HI_E_LAYOUT, "bins outside struct");
	l = layout(1);
	l.c_fd.off = 24;
	CHECK(ptm_layout_check(&l) == -HI_E_LAYOUT, "fd not after size");
	l = layout(1);
	l.mutex.size = 3;
	CHECK(ptm_layout_check(&l) == -HI_E_LAYOUT, "odd mutex size");
	/* Fastbins are optional, but when there, sane. */
	l = layout(1);
	memset(&l.fastbins, 0, sizeof(l.fastbins));
	CHECK(ptm_layout_check(&l) == 0, "no fastbins rejected");
	l.fastbins.size = 80;
	CHECK(ptm_layout_check(&l) == -HI_E_LAYOUT, "fastbins of count 0");
	/* fuzz.walk found the walker reading elements of a 0-byte array. */
	memset(&l.fastbins, 0, sizeof(l.fastbins));
	l.fastbins.off = l.state_size - 8;
	l.fastbins.count = 10;
	CHECK(ptm_layout_check(&l) == -HI_E_LAYOUT, "fastbins of 10 "
	      "elements in 0 bytes");
	l = layout(1);
	l.tcache_entries = (struct ptm_field){ 128, 512, 64 };
	CHECK(ptm_layout_check(&l) == 0, "tcache entries rejected");
	l.tcache_entries.size = 500;
	CHECK(ptm_layout_check(&l) == -HI_E_LAYOUT, "tcache entries of "
	      "a size that is not count pointers");
}

/*
 * The sweep over a broken heap: a fastbin that points at no chunk is
 * corrupt; a chunk whose size breaks the tiling makes the sweep give up
 * (-ENOTSUP), and the lists, walked instead, give the right figures.
 */
static void test_sweep_corrupt(int safe_linking)
{
	struct ptm_layout l = layout(safe_linking);
	struct hi_heap h;
	struct expect e;
	hi_addr_t p;
	int ret;

	build(&l, &e);
	memcpy(&p, mem + (ARENA + l.fastbins.off - BASE), 8);
	put64(ARENA + l.fastbins.off, p + 16); /* inside a chunk */
	walk_mode = PTM_SWEEP;
	ret = walk(&l, &h);
	CHECK(ret == 0 && !h.complete &&
	      h.arenas[0].status == -HI_E_CORRUPT &&
	      h.arenas[0].bad_addr == p + 16,
	      "sweep: fastbin into a chunk: ret %d", ret);
	if (ret == 0)
		hi_heap_free(&h);

	build(&l, &e);
	/* An in-use chunk of the heap takes a size that overruns top. */
	put64(HEAP + 8 + 32 * 5 + 80 * 3 + 4000 + 48, 0x100000 | 1);
	ret = walk(&l, &h);
	CHECK(ret == -ENOTSUP, "sweep over a broken tiling: ret %d", ret);
	if (ret == 0)
		hi_heap_free(&h);
	walk_mode = PTM_AUTO;
}

/*
 * A sweep cut into pieces and shared out among threads gives the figures
 * of the whole heap; cuts at pointers of the arena that are no chunks are
 * found out, and the heap is swept whole instead.
 */
static void test_sweep_pieces(int safe_linking)
{
	struct ptm_layout l = layout(safe_linking);
	struct hi_heap h;
	struct expect e;
	int ret;

	build_n(&l, &e, 600);
	for (int bad = 0; bad <= 1; bad++) {
		/* Every small bin's first chunk, 16 bytes into itself. */
		for (unsigned i = 2; bad && i < 64; i++) {
			hi_addr_t p;

			memcpy(&p, mem + (bin_at(&l, i) + 16 - BASE), 8);
			if (p != bin_at(&l, i))
				put64(bin_at(&l, i) + 16, p + 16);
		}
		setenv("HEAPINSPECT_SWEEP_THREADS", "3", 1);
		nreaders = 0;
		wait_for_two = 1;
		walk_mode = PTM_SWEEP;
		ret = walk(&l, &h);
		walk_mode = PTM_AUTO;
		wait_for_two = 0;
		unsetenv("HEAPINSPECT_SWEEP_THREADS");
		/*
		 * A bin whose first chunk is no chunk is corrupt, whatever
		 * the lists, which walk from the last, would say.
		 */
		if (bad) {
			CHECK(ret == 0 && !h.complete &&
			      h.arenas[0].status == -HI_E_CORRUPT,
			      "pieces, bins pointing into chunks: ret %d, "
			      "not corrupt", ret);
			if (ret == 0)
				hi_heap_free(&h);
			continue;
		}
		CHECK(ret == 0 && h.complete, "pieces (bad cuts %d): ret %d",
		      bad, ret);
		if (ret)
			continue;
		CHECK(nreaders > 1, "pieces: read by %zu thread(s)", nreaders);
		CHECK(h.arenas[0].bin_chunks == e.bin_chunks &&
		      h.arenas[0].bin_bytes == e.bin_bytes &&
		      h.arenas[0].fast_chunks == e.fast_chunks &&
		      h.arenas[0].fast_bytes == e.fast_bytes &&
		      h.arenas[0].top_size == e.top,
		      "pieces (bad cuts %d): %" PRIu64 " chunks, %" PRIu64
		      " bytes in bins, expected %" PRIu64 ", %" PRIu64, bad,
		      h.arenas[0].bin_chunks, h.arenas[0].bin_bytes,
		      e.bin_chunks, e.bin_bytes);
		hi_heap_free(&h);
	}
}

/*
 * The proof that a call is sound (ptmalloc_sound.c): the intact heap is,
 * for both functions; corruptions that only malloc_trim's merging or
 * madvise would meet refuse malloc_trim alone, and are marked in the heap;
 * and a held lock is released.
 */
static int sound(const struct ptm_layout *l, int kind, struct hi_heap *h)
{
	struct ptm_where w = { .main_arena = ARENA, .mp = PAR };
	int ret;

	ret = ptm_read_heap_mode(l, &w, &reader, &maps, 1, PTM_AUTO, h);
	if (ret)
		return ret;
	return ptm_call_sound(l, &w, &reader, &maps, kind, h);
}

static int buf_write(void *arg, hi_addr_t addr, const void *buf, size_t len)
{
	(void)arg;
	if (addr < BASE || addr - BASE > MEMSZ || len > MEMSZ - (addr - BASE))
		return -EFAULT;
	memcpy(mem + (addr - BASE), buf, len);
	return 0;
}

static void trim_only(const char *what, int sl, void (*fn)(struct ptm_layout *))
{
	struct ptm_layout l = layout(sl);
	struct hi_heap h;
	struct expect e;
	int ret;

	build(&l, &e);
	fn(&l);
	ret = sound(&l, HI_CALL_INFO, &h);
	CHECK(ret == 0 && h.complete, "%s: mallinfo2 refused: %d %s", what,
	      ret, h.narenas ? h.arenas[0].why : "");
	hi_heap_free(&h);
	ret = sound(&l, HI_CALL_TRIM, &h);
	CHECK(ret == -HI_E_CORRUPT, "%s: malloc_trim found sound (%d)", what,
	      ret);
	CHECK(!h.complete && h.narenas == 1 &&
	      h.arenas[0].status == -HI_E_CORRUPT && h.arenas[0].why[0],
	      "%s: not marked in the heap", what);
	if (getenv("TEST_WALK_VERBOSE") && h.narenas)
		printf("%s: %s\n", what, h.arenas[0].why);
	hi_heap_free(&h);
}

/* An overflow into the header of the chunk after the last fastbin 0 one:
 * PREV_INUSE clear and a prev_size that is no chunk's. */
static void fast_prev_bogus(struct ptm_layout *l)
{
	hi_addr_t p = fast_head(l, 3);
	uint64_t sz;

	memcpy(&sz, mem + (p + 8 - BASE), 8);
	put64(p + 8, sz & ~1ull);
	put64(p, 0x100);
}

/* The free chunk after fastbin 3's head (unsorted, 4000 bytes: the chunks
 * were carved in order) with an fd that does not point back. */
static void neighbour_fd(struct ptm_layout *l)
{
	hi_addr_t q = fast_head(l, 3) + 80;
	hi_addr_t other;

	/* another chunk of the unsorted bin, valid but not q's fd */
	memcpy(&other, mem + (bin_at(l, 10) + 24 - BASE), 8);
	put64(q + 16, other);
}

/* The chunk of bin 118 (32 KiB, given back by madvise) whose next chunk
 * says it is in use. */
static void madvise_in_use(struct ptm_layout *l)
{
	hi_addr_t p, n;
	uint64_t nsz;

	memcpy(&p, mem + (bin_at(l, 118) + 24 - BASE), 8);
	n = p + 32768;
	memcpy(&nsz, mem + (n + 8 - BASE), 8);
	put64(n + 8, nsz | 1);
}

static void test_call_sound(int sl)
{
	struct ptm_layout l = layout(sl);
	struct ptm_where w = { .main_arena = ARENA, .mp = PAR };
	struct hi_writer wr = { .write = buf_write };
	const hi_addr_t globals[2] = { PAR + 0x100, 0 };
	struct hi_heap h;
	struct expect e;
	hi_addr_t first = 0;
	uint32_t word;
	int ret;

	build(&l, &e);
	ret = sound(&l, HI_CALL_INFO, &h);
	CHECK(ret == 0 && h.complete, "intact heap: mallinfo2 refused (%d)",
	      ret);
	hi_heap_free(&h);
	ret = sound(&l, HI_CALL_TRIM, &h);
	CHECK(ret == 0 && h.complete, "intact heap: malloc_trim refused (%d) "
	      "%s", ret, h.narenas ? h.arenas[0].why : "");
	hi_heap_free(&h);
	trim_only("fastbin chunk's bogus prev_size", sl, fast_prev_bogus);
	/*
	 * A free chunk whose fd does not point back: malloc_trim's merging
	 * would unlink it; mallinfo2 never reads fd, but the lists' walk
	 * checks both links as unlink_chunk does, so the read itself finds
	 * it and neither call is made.
	 */
	build(&l, &e);
	neighbour_fd(&l);
	ret = sound(&l, HI_CALL_INFO, &h);
	CHECK(ret == -HI_E_CORRUPT && !h.complete, "merged neighbour's fd: "
	      "mallinfo2 found sound (%d)", ret);
	hi_heap_free(&h);
	ret = sound(&l, HI_CALL_TRIM, &h);
	CHECK(ret == -HI_E_CORRUPT && !h.complete, "merged neighbour's fd: "
	      "malloc_trim found sound (%d)", ret);
	hi_heap_free(&h);
	trim_only("madvised chunk in use", sl, madvise_in_use);

	/* A lock the call held: released, and reported. */
	put32(ARENA + l.mutex.off, 2);
	put32(globals[0], 1);
	ret = ptm_unlock_all(&l, &w, &reader, &maps, &wr, globals, 2, &first);
	CHECK(ret == 2 && first == ARENA, "unlock_all: %d, first 0x%" PRIx64,
	      ret, first);
	memcpy(&word, mem + (ARENA + l.mutex.off - BASE), 4);
	CHECK(word == 0, "main_arena's mutex is %u", word);
	memcpy(&word, mem + (globals[0] - BASE), 4);
	CHECK(word == 0, "the global lock is %u", word);
	CHECK(ptm_unlock_all(&l, &w, &reader, &maps, &wr, globals, 2,
			     &first) == 0, "unlock_all released free locks");
}

/*
 * The same heap shown by the kernel in several mappings (a forked child's
 * inherited and grown pages, madvise, mlock, mprotect): a free chunk and
 * top that span pieces are one heap, exact in every mode.  A piece of
 * another object in the middle (a file), or a read-only page in a free
 * chunk, is not: corrupt, or a sweep that gives up.
 */
static void test_split_maps(int safe_linking)
{
	struct ptm_layout l = layout(safe_linking);
	const enum ptm_mode modes[] = { PTM_AUTO, PTM_LISTS, PTM_SWEEP };
	struct hi_map v[5];
	struct hi_maps split = { .v = v, .n = 5 };
	struct hi_heap h;
	struct expect e;
	hi_addr_t top, cut[4];
	int ret;

	build(&l, &e);
	memcpy(&top, mem + (ARENA + l.top.off - BASE), 8);
	/* Inside the unsorted bin's 4000-byte chunk, and twice in top. */
	cut[0] = BASE;
	cut[1] = HEAP + 0x1000;
	cut[2] = (top + 0x1fff) & ~0xfffull;
	cut[3] = cut[2] + 0x1000;
	CHECK(cut[1] > HEAP + 32 * 5 + 80 * 3 && cut[1] < HEAP + 400 + 4000 &&
	      cut[3] < top + e.top, "the cuts are not where they should be");
	for (int i = 0; i < 5; i++) {
		v[i] = the_map;
		v[i].backing = HI_BACKING_ANON;
	}
	v[0].start = cut[0];
	v[0].end = cut[1];
	v[1].start = cut[1];
	v[1].end = cut[2];
	v[2].start = cut[2];
	v[2].end = cut[3];
	v[3].start = cut[3];
	v[3].end = cut[3] + 0x1000;
	v[4].start = cut[3] + 0x1000;
	v[4].end = BASE + MEMSZ;
	walk_maps = &split;
	for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
		walk_mode = modes[m];
		ret = walk(&l, &h);
		CHECK(ret == 0 && h.complete &&
		      h.arenas[0].bin_chunks == e.bin_chunks &&
		      h.arenas[0].bin_bytes == e.bin_bytes &&
		      h.arenas[0].fast_chunks == e.fast_chunks &&
		      h.arenas[0].top_size == e.top,
		      "split heap, mode %d: ret %d, %s", modes[m], ret,
		      ret == 0 && h.narenas ? h.arenas[0].why : "");
		if (ret == 0)
			hi_heap_free(&h);
	}
	/* The middle of the unsorted chunk is a file's: not one heap. */
	v[1].backing = 0;
	v[1].end = cut[1] + 0x1000;
	v[2].start = cut[1] + 0x1000;
	v[2].end = cut[3];
	walk_mode = PTM_LISTS;
	ret = walk(&l, &h);
	CHECK(ret == 0 && !h.complete &&
	      h.arenas[0].status == -HI_E_CORRUPT,
	      "a file's page in a free chunk: ret %d", ret);
	if (ret == 0)
		hi_heap_free(&h);
	/* A read-only page in the free chunk: the sweep gives up. */
	v[1].backing = HI_BACKING_ANON;
	v[1].prot = HI_PROT_R;
	walk_mode = PTM_SWEEP;
	ret = walk(&l, &h);
	CHECK(ret == -ENOTSUP, "a read-only page in a free chunk, sweep: "
	      "ret %d", ret);
	if (ret == 0)
		hi_heap_free(&h);
	walk_mode = PTM_AUTO;
	walk_maps = &one_map;
}

/* An empty arena at ARENA: its bins empty, the heap from HEAP. */
static void heap_start(const struct ptm_layout *l, struct expect *e)
{
	memset(mem, 0, sizeof(mem));
	memset(far, 0, sizeof(far));
	memset(e, 0, sizeof(*e));
	next_chunk = HEAP;
	nbinned = 0;
	put64(ARENA + l->next.off, ARENA);
	put64(ARENA + l->attached_threads.off, 1);
	for (unsigned i = 1; i < 128; i++) {
		put64(bin_at(l, i) + 16, bin_at(l, i));
		put64(bin_at(l, i) + 24, bin_at(l, i));
	}
}

/* top after the chunks, as _int_free and sysmalloc leave them. */
static void heap_end(const struct ptm_layout *l, struct expect *e)
{
	hi_addr_t top = new_chunk(0x8000);

	e->top = 0x8000;
	for (size_t i = 0; i < nbinned; i++) {
		hi_addr_t n = binned[i] + (get64(binned[i] + 8) & ~7ull);

		put64(n + 8, get64(n + 8) & ~1ull);
	}
	put64(PAR + l->sbrk_base.off, HEAP);
	put64(ARENA + l->top.off, top);
	put64(ARENA + l->system_mem.off, next_chunk - HEAP);
	put64(ARENA + l->max_system_mem.off, next_chunk - HEAP);
}

/* Walk in mode (threads > 0: a sweep shared out among that many). */
static int walk_as(const struct ptm_layout *l, enum ptm_mode mode,
		   int threads, struct hi_heap *h)
{
	char n[16];
	int ret;

	if (threads) {
		snprintf(n, sizeof(n), "%d", threads);
		setenv("HEAPINSPECT_SWEEP_THREADS", n, 1);
	}
	walk_mode = mode;
	ret = walk(l, h);
	walk_mode = PTM_AUTO;
	unsetenv("HEAPINSPECT_SWEEP_THREADS");
	return ret;
}

/* Exact figures in every mode, or (expect_corrupt) corrupt in every one. */
static void walk_all(const struct ptm_layout *l, const struct expect *e,
		     int expect_corrupt, const char *what)
{
	static const struct {
		enum ptm_mode mode;
		int threads;
	} ways[] = {
		{ PTM_LISTS, 0 }, { PTM_SWEEP, 0 }, { PTM_SWEEP, 3 },
	};

	for (size_t w = 0; w < sizeof(ways) / sizeof(ways[0]); w++) {
		struct hi_heap h;
		int ret = walk_as(l, ways[w].mode, ways[w].threads, &h);

		if (expect_corrupt) {
			CHECK(ret == 0 && !h.complete &&
			      h.arenas[0].status == -HI_E_CORRUPT &&
			      h.arenas[0].why[0],
			      "%s, mode %d/%d: ret %d, not corrupt", what,
			      ways[w].mode, ways[w].threads, ret);
		} else {
			CHECK(ret == 0 && h.complete &&
			      h.arenas[0].bin_chunks == e->bin_chunks &&
			      h.arenas[0].bin_bytes == e->bin_bytes &&
			      h.arenas[0].fast_chunks == e->fast_chunks &&
			      h.arenas[0].top_size == e->top,
			      "%s, mode %d/%d: ret %d, %" PRIu64 " chunks, %"
			      PRIu64 " bytes in bins, expected %" PRIu64 ", %"
			      PRIu64 ": %s", what, ways[w].mode,
			      ways[w].threads, ret,
			      ret ? 0 : h.arenas[0].bin_chunks,
			      ret ? 0 : h.arenas[0].bin_bytes, e->bin_chunks,
			      e->bin_bytes, ret ? "" : h.arenas[0].why);
		}
		if (ret == 0)
			hi_heap_free(&h);
	}
}

/*
 * The sweep's index of the chunks in bins (ptmalloc_sweep.c): pages that
 * hold more free chunks than a bucket's keys (32-byte chunks between
 * 32-byte chunks in use: 64 a page), searched by address, also where a
 * cut between two pieces falls in one; and links in such a page that do
 * not point back.
 */
static void test_sweep_index(int safe_linking)
{
	struct ptm_layout l = layout(safe_linking);
	struct expect e;
	hi_addr_t p;

	heap_start(&l, &e);
	for (unsigned k = 0; k < 1500; k++) {
		new_chunk(32);
		push_bin(&l, k % 4 ? 2 : 1, 32, &e);
	}
	new_chunk(64);
	heap_end(&l, &e);
	walk_all(&l, &e, 0, "64 free chunks a page");
	/* A chunk's fd at its free neighbour, whose bk is not it. */
	p = binned[700];
	put64(p + 16, p + 64);
	walk_all(&l, &e, 1, "fd at a free neighbour");
	/* At no chunk, in the same page. */
	put64(p + 16, p + 32);
	walk_all(&l, &e, 1, "fd into a chunk in use");
}

/*
 * Links that point back, on lists that are wrong: a chunk of bin 10 moved
 * to the front of bin 64 (both walks: a size of another bin), and one
 * taken off its list and linked to itself (the sweep: a free chunk on no
 * list; the lists cannot see it).
 */
static void test_sweep_lists(int safe_linking)
{
	struct ptm_layout l = layout(safe_linking);
	hi_addr_t b10 = bin_at(&l, 10), b64 = bin_at(&l, 64), f, n, g;
	struct expect e;

	build_n(&l, &e, 0);
	/* Bin 10: b10 -> f -> n -> b10; f goes to bin 64's front. */
	f = get64(b10 + 16);
	n = get64(f + 16);
	put64(b10 + 16, n);
	put64(n + 24, b10);
	g = get64(b64 + 16);
	put64(f + 16, g);
	put64(f + 24, b64);
	put64(g + 24, f);
	put64(b64 + 16, f);
	walk_all(&l, &e, 1, "a chunk on another bin's list");

	/* Alone in bin 20, which its size is not: the list's first chunk. */
	build_n(&l, &e, 0);
	f = get64(b10 + 16);
	n = get64(f + 16);
	put64(b10 + 16, n);
	put64(n + 24, b10);
	put64(f + 16, bin_at(&l, 20));
	put64(f + 24, bin_at(&l, 20));
	put64(bin_at(&l, 20) + 16, f);
	put64(bin_at(&l, 20) + 24, f);
	walk_all(&l, &e, 1, "a chunk alone on another bin's list");

	/* At the end of bin 64's list, after its own chunks. */
	build_n(&l, &e, 0);
	f = get64(b10 + 16);
	n = get64(f + 16);
	put64(b10 + 16, n);
	put64(n + 24, b10);
	g = get64(b64 + 24);
	put64(g + 16, f);
	put64(f + 24, g);
	put64(f + 16, b64);
	put64(b64 + 24, f);
	walk_all(&l, &e, 1, "a chunk at the end of another bin's list");

	/* Bins 10 and 64 made one ring: b10 -> .. -> b64 -> .. -> b10. */
	build_n(&l, &e, 0);
	f = get64(b10 + 24);
	g = get64(b64 + 24);
	put64(f + 16, b64);
	put64(b64 + 24, f);
	put64(g + 16, b10);
	put64(b10 + 24, g);
	walk_all(&l, &e, 1, "two bins on one ring");

	build_n(&l, &e, 0);
	f = get64(b10 + 16);
	n = get64(f + 16);
	put64(b10 + 16, n);
	put64(n + 24, b10);
	put64(f + 16, f);
	put64(f + 24, f);
	{
		struct hi_heap h;
		int ret = walk_as(&l, PTM_SWEEP, 0, &h);

		CHECK(ret == 0 && !h.complete &&
		      h.arenas[0].status == -HI_E_CORRUPT &&
		      h.arenas[0].bad_addr == f,
		      "a free chunk on no list: ret %d, not corrupt at it",
		      ret);
		if (ret == 0)
			hi_heap_free(&h);
	}
}

/*
 * Free chunks far apart (a chunk in use of 48 MiB between them): buckets
 * larger than a page, whose keys name a chunk only mostly.  Two free
 * chunks 4 KiB apart in one bucket have the same key; an fd at a third
 * place with that key is no chunk.
 */
static void test_sweep_sparse(int safe_linking)
{
	static struct hi_map far_map = {
		.start = BASE, .end = FAR + FARSZ,
		.prot = HI_PROT_R | HI_PROT_W,
	};
	static const struct hi_maps far_maps = { .v = &far_map, .n = 1 };
	struct ptm_layout l = layout(safe_linking);
	struct expect e;
	hi_addr_t x, y;

	sparse = 1;
	walk_maps = &far_maps;
	heap_start(&l, &e);
	new_chunk(64);
	push_bin(&l, 1, 4000, &e);
	new_chunk(FAR + 0x100 - next_chunk);
	x = next_chunk;
	push_bin(&l, 4, 64, &e);
	new_chunk(0x1000 - 64);
	y = next_chunk;
	push_bin(&l, 4, 64, &e);
	new_chunk(0x100);
	push_bin(&l, 1, 0x400, &e);
	new_chunk(0x100);
	heap_end(&l, &e);
	CHECK(x + 0x1000 == y && next_chunk <= FAR + FARSZ,
	      "sparse: the chunks are not where they should be");
	walk_all(&l, &e, 0, "sparse heap");
	/*
	 * Bin 4 is b -> y -> x -> b.  x's fd at y: free, the same key, but
	 * its bk is b, not x.
	 */
	put64(x + 16, y);
	walk_all(&l, &e, 1, "sparse: fd at the chunk of the same key");
	/* x's fd at x + 8 KiB: the same key, in no chunk's place. */
	put64(x + 16, x + 0x2000);
	walk_all(&l, &e, 1, "sparse: fd at no chunk, the same key");
	walk_maps = &one_map;
	sparse = 0;
}

int main(void)
{
	for (int sl = 0; sl <= 1; sl++) {
		test_good(sl, PTM_AUTO);
		test_good(sl, PTM_LISTS);
		test_good(sl, PTM_SWEEP);
		test_sweep_corrupt(sl);
#ifdef HI_TEST_HOOKS /* it sets HEAPINSPECT_SWEEP_THREADS */
		test_sweep_pieces(sl);
#else
		(void)test_sweep_pieces; /* unit.walk_pieces says it skips */
#endif
		test_split_maps(sl);
		test_sweep_index(sl);
		test_sweep_lists(sl);
		test_sweep_sparse(sl);
		expect_corrupt("fastbin cycle", fast_cycle, sl);
		expect_corrupt("fastbin unmapped", fast_unmapped, sl);
		expect_corrupt("fastbin misaligned", fast_misaligned, sl);
		expect_corrupt("fastbin wrong size", fast_wrong_size, sl);
		expect_corrupt("huge size", bin_huge_size, sl);
		/* What unlink checks: by the lists and by the sweep. */
		for (int m = 0; m < 2; m++) {
			walk_mode = m ? PTM_SWEEP : PTM_LISTS;
			expect_corrupt("bin loop", bin_cycle_off_head, sl);
			expect_corrupt("bin null link", bin_null, sl);
			expect_corrupt("bin fd at itself", bin_fd_self, sl);
			expect_corrupt("bin header's fd", bin_header_fd, sl);
			expect_corrupt("bin fd skips", bin_fd_skips, sl);
		}
		walk_mode = PTM_AUTO;
		expect_corrupt("ring open", ring_open, sl);
		expect_corrupt("ring rho", ring_rho, sl);
		expect_corrupt("ring overlap", ring_overlap, sl);
		expect_corrupt("top outside", top_outside, sl);
		expect_corrupt("free > system", free_exceeds_system, sl);
		test_call_sound(sl);
	}
	/*
	 * glibc 2.43's layout: no fastbins to walk, smblks and fsmblks 0 as
	 * its int_mallinfo leaves them; the rest as before.
	 */
	glibc_243 = 1;
	test_good(1, PTM_AUTO);
	test_good(1, PTM_LISTS);
	test_good(1, PTM_SWEEP);
#ifdef HI_TEST_HOOKS
	test_sweep_pieces(1);
#endif
	expect_corrupt("2.43: huge size", bin_huge_size, 1);
	expect_corrupt("2.43: bin loop", bin_cycle_off_head, 1);
	expect_corrupt("2.43: bin null link", bin_null, 1);
	expect_corrupt("2.43: ring open", ring_open, 1);
	expect_corrupt("2.43: top outside", top_outside, 1);
	expect_corrupt("2.43: free > system", free_exceeds_system, 1);
	glibc_243 = 0;
	test_busy();
	test_uninitialised();
	test_layout_check();
	printf("%d passed, %d failed\n", checks - failures, failures);
	return failures ? 1 : 0;
}
