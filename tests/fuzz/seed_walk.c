/* SPDX-License-Identifier: MIT */
/*
 * seed_walk DIR: write small heap images for fuzz_walk to start from, one
 * without and one with safe-linking: glibc 2.36's x86_64 layout (as in
 * unit/test_walk.c), a main arena in a libc-like data mapping with chunks
 * in every kind of list in a [heap] mapping, and a second arena in a heap
 * of its own on the ring.  Small, so that libFuzzer's mutations are fast;
 * the real images of tests/image/ are too big for a corpus.
 *
 * They are laid out as glibc leaves a heap, so that both ways of counting
 * read them: the main heap starts at mp_.sbrk_base and ends with top; the
 * second heap starts with its heap_info (2.36's: ar_ptr, prev, size, 48
 * bytes), the arena right after it, the chunks from the first aligned
 * address after the arena (_int_new_arena); every chunk in a bin lies
 * between chunks in use, and the chunk after it has PREV_INUSE clear.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "heap_image.h"

#define DATA 0x7f0000002000ull   /* main_arena, mp_ */
#define DATA_LEN 0x2000
#define HEAP 0x555500000000ull   /* [heap] */
#define HEAP_LEN 0x6000
#define HEAP2 0x7e0000000000ull  /* a second arena's heap: 64 MiB-aligned */
#define HEAP2_LEN 0x3000
#define TEXT 0x7f0000000000ull   /* read-only, for links that point there */
#define HINFO 48                 /* sizeof (heap_info), 2.35 and later */
#define NON_MAIN_ARENA 4

static unsigned char data[DATA_LEN], heap[HEAP_LEN], heap2[HEAP2_LEN];
static int safe;

static unsigned char *at(hi_addr_t a)
{
	if (a >= DATA && a < DATA + DATA_LEN)
		return data + (a - DATA);
	if (a >= HEAP && a < HEAP + HEAP_LEN)
		return heap + (a - HEAP);
	return heap2 + (a - HEAP2);
}

static void put(hi_addr_t a, uint64_t v)
{
	memcpy(at(a), &v, 8);
}

static uint64_t get(hi_addr_t a)
{
	uint64_t v;

	memcpy(&v, at(a), 8);
	return v;
}

static const struct ptm_layout lay = {
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
	.n_mmaps = { 60, 4, 0 },
	.n_mmaps_max = { 64, 4, 0 },
	.max_n_mmaps = { 68, 4, 0 },
	.mmapped_mem = { 80, 8, 0 },
	.max_mmapped_mem = { 88, 8, 0 },
	.sbrk_base = { 96, 8, 0 },
	.c_size = { 8, 8, 0 },
	.c_fd = { 16, 8, 0 },
	.c_bk = { 24, 8, 0 },
	.hinfo_size = HINFO,
	.h_ar_ptr = { 0, 8, 0 },
	.h_prev = { 8, 8, 0 },
	.h_size = { 16, 8, 0 },
	.ptr_size = 8,
};

struct arena {
	hi_addr_t addr;
	hi_addr_t next_chunk;
	uint64_t fast_n, fast_b, bin_n, bin_b, top;
	uint64_t flags; /* NON_MAIN_ARENA in every size of a second arena */
	hi_addr_t binned[16]; /* for the PREV_INUSE bits of their successors */
	unsigned nbinned;
};

static hi_addr_t bin_at(const struct arena *a, unsigned i)
{
	return a->addr + lay.bins.off + (i - 1) * 16 - lay.c_fd.off;
}

static hi_addr_t chunk(struct arena *a, uint64_t size)
{
	hi_addr_t p = a->next_chunk;

	put(p + 8, size | a->flags | 1);
	a->next_chunk += size;
	return p;
}

static void fast(struct arena *a, unsigned idx, uint64_t size)
{
	hi_addr_t head = a->addr + lay.fastbins.off + idx * 8;
	hi_addr_t p = chunk(a, size), old = get(head);

	put(p + 16, safe ? ((p + 16) >> 12) ^ old : old);
	put(head, p);
	a->fast_n++;
	a->fast_b += size;
}

static void bin(struct arena *a, unsigned i, uint64_t size)
{
	hi_addr_t b = bin_at(a, i), p = chunk(a, size), fwd = get(b + 16);

	put(p + 16, fwd);
	put(p + 24, b);
	put(fwd + 24, p);
	put(b + 16, p);
	a->bin_n++;
	a->bin_b += size;
	a->binned[a->nbinned++] = p;
	chunk(a, 32); /* in use: glibc never leaves two free chunks adjoining */
}

static void init(struct arena *a, hi_addr_t addr, hi_addr_t chunks)
{
	memset(a, 0, sizeof(*a));
	a->addr = addr;
	a->next_chunk = chunks;
	for (unsigned i = 1; i < 128; i++) {
		put(bin_at(a, i) + 16, bin_at(a, i));
		put(bin_at(a, i) + 24, bin_at(a, i));
	}
	put(addr + lay.attached_threads.off, 1);
}

static void finish(struct arena *a, hi_addr_t start, uint64_t top)
{
	hi_addr_t t = chunk(a, top);
	uint64_t sys = a->next_chunk - start;

	/* As _int_free leaves a binned chunk: the next one's PREV_INUSE clear. */
	for (unsigned i = 0; i < a->nbinned; i++) {
		hi_addr_t n = a->binned[i] + (get(a->binned[i] + 8) & ~7ull);

		put(n + 8, get(n + 8) & ~1ull);
	}

	a->top = top;
	put(a->addr + lay.top.off, t);
	put(a->addr + lay.system_mem.off, sys);
	put(a->addr + lay.max_system_mem.off, sys);
}

static int write_one(const char *dir)
{
	struct arena m, s;
	struct hi_image im;
	struct hi_map maps[4] = {
		{ HEAP, HEAP + HEAP_LEN, HI_PROT_R | HI_PROT_W, 1, 0 },
		{ HEAP2, HEAP2 + HEAP2_LEN, HI_PROT_R | HI_PROT_W, 0,
		  HI_BACKING_ANON },
		{ TEXT, TEXT + 0x1000, HI_PROT_R | HI_PROT_X, 0, 0 },
		{ DATA, DATA + DATA_LEN, HI_PROT_R | HI_PROT_W, 0, 0 },
	};
	struct hi_image_seg segs[3] = {
		{ HEAP, HEAP_LEN, heap },
		{ HEAP2, HEAP2_LEN, heap2 },
		{ DATA, DATA_LEN, data },
	};
	hi_addr_t mp = DATA + 0x1000;
	char path[4096];
	FILE *f;
	int ok;

	memset(data, 0, sizeof(data));
	memset(heap, 0, sizeof(heap));
	memset(heap2, 0, sizeof(heap2));
	/* The first chunk's user memory aligned (sysmalloc): at sbrk_base. */
	init(&m, DATA + 0x100, HEAP);
	fast(&m, 0, 32);
	fast(&m, 0, 32);
	fast(&m, 2, 64);
	bin(&m, 1, 1040);    /* unsorted */
	bin(&m, 1, 48);
	bin(&m, 10, 160);    /* small bin 10 */
	bin(&m, 64, 1024);   /* first large bin */
	bin(&m, 64, 1056);
	finish(&m, HEAP, 0x800);
	/* 2200 bytes of arena after heap_info, then aligned: 0x8d0. */
	init(&s, HEAP2 + HINFO, HEAP2 + 0x8d0);
	s.flags = NON_MAIN_ARENA;
	fast(&s, 1, 48);
	bin(&s, 1, 256);
	bin(&s, 20, 320);
	finish(&s, HEAP2, 0x400);
	/* heap_info: its arena, no previous heap, its size (system_mem). */
	put(HEAP2, s.addr);
	put(HEAP2 + 16, s.next_chunk - HEAP2);
	/* The ring: main_arena -> second -> main_arena. */
	put(m.addr + lay.next.off, s.addr);
	put(s.addr + lay.next.off, m.addr);
	put(mp + lay.sbrk_base.off, HEAP);
	put(mp + lay.n_mmaps.off, 2);
	put(mp + lay.mmapped_mem.off, 2 * 0x21000);
	put(mp + lay.max_mmapped_mem.off, 3 * 0x21000);

	memset(&im, 0, sizeof(im));
	im.l = lay;
	im.l.safe_linking = safe;
	im.w.main_arena = m.addr;
	im.w.mp = mp;
	im.have_fig = 1;
	im.fig[0] = (m.next_chunk - HEAP) + (s.next_chunk - HEAP2);
	im.fig[1] = 2 + m.bin_n + s.bin_n;
	im.fig[2] = m.fast_n + s.fast_n;
	im.fig[3] = 2;
	im.fig[4] = 2 * 0x21000;
	im.fig[6] = m.fast_b + s.fast_b;
	im.fig[8] = m.top + s.top + m.fast_b + s.fast_b + m.bin_b + s.bin_b;
	im.fig[7] = im.fig[0] - im.fig[8];
	im.fig[9] = m.top;
	im.maps.v = maps;
	im.maps.n = 4;
	/* Segments sorted by address. */
	im.segs = segs;
	im.nsegs = 3;
	snprintf(path, sizeof(path), "%s/seed-%s.heap", dir,
		 safe ? "safe-linking" : "plain");
	f = fopen(path, "wbe");
	if (!f) {
		perror(path);
		return 1;
	}
	ok = hi_image_write(f, &im) == 0;
	ok &= fclose(f) == 0;
	if (!ok)
		fprintf(stderr, "%s: write error\n", path);
	return !ok;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: seed_walk DIR\n");
		return 64;
	}
	safe = 0;
	if (write_one(argv[1]))
		return 1;
	safe = 1;
	return write_one(argv[1]);
}
