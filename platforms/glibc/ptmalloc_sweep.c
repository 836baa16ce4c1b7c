/* SPDX-License-Identifier: MIT */
/*
 * Counting an arena's free chunks by reading its heap in one pass.
 *
 * Following the free lists costs one read of the target per chunk when the
 * lists jump about the heap, as they do after frees in random order; glibc's
 * own mallinfo2() pays a cache miss per chunk for the same walk, but a
 * system call costs far more.  Reading the heap from end to end in large
 * pieces costs a copy per page instead, which on a dense heap is much less.
 *
 * What the walk of int_mallinfo (malloc.c, 2.31 to 2.41) counts can be seen
 * in the heap itself:
 *  - a chunk is in a bin (unsorted, small or large) exactly when it is free
 *    to the heap, that is when the next chunk's PREV_INUSE bit is clear
 *    (_int_free and malloc_consolidate clear it when they bin a chunk, and
 *    set it again when they take one out);
 *  - chunks in fastbins and tcache keep PREV_INUSE set; the fastbins are
 *    followed as lists, but through a table of the heap's small chunks,
 *    made during the pass, not through the target.
 * The main arena's heap runs from mp_.sbrk_base to top when it is
 * contiguous.  A non-main arena's heaps are HEAP_MAX_SIZE-aligned mappings
 * that start with a heap_info, chained through prev from the heap holding
 * top back to the one holding the arena; each but the last ends in a
 * fencepost of size 0 (sysmalloc).
 *
 * Anything unexpected makes the pass give up (-ENOTSUP), and the caller
 * walks the lists, which know how to report a corrupt heap.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ptmalloc_priv.h"

/* How much of the heap one read brings in. */
#define WINDOW (1u << 18)
/* HEAP_MAX_SIZE on 64-bit: 2 * DEFAULT_MMAP_THRESHOLD_MAX (arena.c). */
#define HEAP_MAX_64 (64ull << 20)
#define MAX_HEAPS 4096
/* NONCONTIGUOUS_BIT of malloc_state.flags (malloc.c). */
#define NONCONTIGUOUS_BIT 2

struct region {
	hi_addr_t start; /* the first chunk */
	hi_addr_t end;   /* top, or the end of the heap */
	int has_top;
};

/* A small chunk that may be in a fastbin: where, its size, its link. */
struct small {
	hi_addr_t p;
	uint64_t size;
	uint64_t fd;
};

struct sweep {
	const struct ptm_layout *l;
	const struct hi_reader *r;
	unsigned char *buf; /* bytes [wstart, wend) of the target */
	hi_addr_t wstart;
	hi_addr_t wend;
	hi_addr_t limit;    /* never read past this */
	struct small *v;
	size_t n;
	size_t cap;
	uint64_t fast_max;  /* the largest fastbin chunk size with chunks */
	uint64_t fast_want; /* bit i: fastbin i is not empty */
};

/*
 * The target's bytes [addr, addr + len), from the window or from a new
 * window that starts at addr.  NULL when they cannot be read.
 */
static const unsigned char *need(struct sweep *sw, hi_addr_t addr, size_t len,
				 int *err)
{
	uint64_t n;

	if (addr >= sw->wstart && addr + len <= sw->wend)
		return sw->buf + (addr - sw->wstart);
	if (addr + len > sw->limit || addr + len < addr) {
		*err = -ENOTSUP;
		return NULL;
	}
	n = sw->limit - addr < WINDOW ? sw->limit - addr : WINDOW;
	*err = hi_read(sw->r, addr, sw->buf, n);
	if (*err) {
		sw->wstart = sw->wend = 0;
		if (*err == -EFAULT)
			*err = -ENOTSUP;
		return NULL;
	}
	sw->wstart = addr;
	sw->wend = addr + n;
	return sw->buf;
}

/* A size or link word: 8 bytes on the targets swept (ptm_sweep checks). */
static inline uint64_t word(const unsigned char *h)
{
	uint64_t v;

	memcpy(&v, h, 8);
	return v;
}

static int add_small(struct sweep *sw, hi_addr_t p, uint64_t size,
		     uint64_t fd)
{
	if (sw->n == sw->cap) {
		size_t ncap = sw->cap ? sw->cap * 2 : 4096;
		struct small *nv = realloc(sw->v, ncap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		sw->v = nv;
		sw->cap = ncap;
	}
	sw->v[sw->n].p = p;
	sw->v[sw->n].size = size;
	sw->v[sw->n].fd = fd;
	sw->n++;
	return 0;
}

/*
 * Read the chunks of one region.  Return 0, -ENOTSUP when the chunks do
 * not tile it as glibc leaves them, or -errno.
 */
static int sweep_region(struct sweep *sw, const struct region *rg,
			struct hi_arena *a)
{
	const struct ptm_layout *l = sw->l;
	uint64_t minsize = ptm_minsize(l), mask = ptm_align(l) - 1;
	unsigned ssz = l->c_size.size;
	hi_addr_t p = rg->start;
	int err = 0;

	/*
	 * With top, the region ends at top's header, which must be readable;
	 * a heap without top ends with its mapping, its fenceposts inside.
	 */
	sw->limit = rg->end + (rg->has_top ? l->c_size.off + ssz : 0);
	sw->wstart = sw->wend = 0;
	for (;;) {
		const unsigned char *h;
		uint64_t sz, nsz;
		hi_addr_t next;

		if (rg->has_top && p == rg->end)
			return 0; /* top: counted by the caller */
		if (p >= rg->end)
			return -ENOTSUP;
		h = need(sw, p + l->c_size.off, ssz, &err);
		if (!h)
			return err;
		sz = word(h) & ~(uint64_t)7;
		if (!rg->has_top && (sz == 0 || sz == 2 * (uint64_t)ssz)) {
			/* The fenceposts that end a heap (sysmalloc). */
			if (sz == 0)
				return 0;
			p += sz;
			continue;
		}
		if (sz < minsize || (sz & mask) || sz > rg->end - p)
			return -ENOTSUP;
		next = p + sz;
		h = need(sw, next + l->c_size.off, ssz, &err);
		if (!h)
			return err;
		nsz = word(h);
		if (!(nsz & 1)) {
			/* PREV_INUSE clear: p is in a bin. */
			a->bin_chunks++;
			a->bin_bytes += sz;
		} else if (sz <= sw->fast_max &&
			   (sw->fast_want >> ((sz >> 4) - 2) & 1)) {
			h = need(sw, p + l->c_fd.off, l->c_fd.size, &err);
			if (!h)
				return err;
			err = add_small(sw, p, sz, word(h));
			if (err)
				return err;
		}
		p = next;
	}
}

static int small_cmp(const void *x, const void *y)
{
	const struct small *a = x, *b = y;

	return a->p < b->p ? -1 : a->p > b->p;
}

static const struct small *find_small(const struct sweep *sw, hi_addr_t p)
{
	size_t lo = 0, hi = sw->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (sw->v[mid].p == p)
			return &sw->v[mid];
		if (sw->v[mid].p < p)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Follow fastbin idx from head through the table. */
static int fastbin_from_table(const struct sweep *sw, struct hi_arena *a,
			      unsigned idx, hi_addr_t p)
{
	const struct ptm_layout *l = sw->l;
	uint64_t steps = 0;

	while (p) {
		const struct small *c = find_small(sw, p);

		if (!c || c->size != (uint64_t)(idx + 2) * 16) {
			a->status = -HI_E_CORRUPT;
			a->bad_addr = p;
			snprintf(a->why, sizeof(a->why), "fastbin %u: "
				 HI_PRIxADDR " is not a chunk of its size in "
				 "the arena's heap", idx, p);
			return 0;
		}
		/* Each chunk once: more steps than chunks is a loop. */
		if (++steps > sw->n) {
			a->status = -HI_E_CORRUPT;
			a->bad_addr = p;
			snprintf(a->why, sizeof(a->why), "fastbin %u loops "
				 "back to chunk " HI_PRIxADDR, idx, p);
			return 0;
		}
		a->fast_chunks++;
		a->fast_bytes += c->size;
		/* REVEAL_PTR (malloc.c, 2.32 and later). */
		p = l->safe_linking ? ((p + l->c_fd.off) >> 12) ^ c->fd : c->fd;
	}
	return 0;
}

/* The regions of a non-main arena: its heaps, from heap_info to heap_info. */
static int heap_regions(const struct ptm_layout *l, const struct hi_reader *r,
			const struct hi_maps *maps, struct hi_arena *a,
			hi_addr_t top, struct region **out, size_t *nout)
{
	hi_addr_t first = a->addr - l->hinfo_size;
	hi_addr_t h = top & ~(HEAP_MAX_64 - 1);
	struct region *v = NULL;
	size_t n = 0;
	uint64_t total = 0;

	if (!l->hinfo_size || a->addr < l->hinfo_size)
		return -ENOTSUP;
	for (;;) {
		unsigned char hb[256];
		hi_addr_t ar, prev, start;
		uint64_t size;
		struct region *nv;

		if (n == MAX_HEAPS || l->hinfo_size > sizeof(hb) ||
		    !hi_maps_rw_range(maps, h, l->hinfo_size) ||
		    hi_read(r, h, hb, l->hinfo_size))
			goto fail;
		ar = ptm_get(hb, &l->h_ar_ptr);
		prev = ptm_get(hb, &l->h_prev);
		size = ptm_get(hb, &l->h_size);
		if (ar != a->addr || size > HEAP_MAX_64 ||
		    !hi_maps_rw_range(maps, h, size))
			goto fail;
		nv = realloc(v, (n + 1) * sizeof(*v));
		if (!nv)
			goto fail;
		v = nv;
		start = h == first ? a->addr + l->state_size
				   : h + l->hinfo_size;
		/* The first chunk's user memory is MALLOC_ALIGNMENT-aligned. */
		while ((start + 2 * l->c_size.size) & (ptm_align(l) - 1))
			start++;
		v[n].start = start;
		v[n].end = n == 0 ? top : h + size;
		v[n].has_top = n == 0;
		if (v[n].end < start)
			goto fail;
		n++;
		total += size;
		if (h == first)
			break;
		if (prev & (HEAP_MAX_64 - 1))
			goto fail;
		h = prev;
	}
	/* system_mem is the sum of the heaps' sizes (grow_heap, new_heap). */
	if (total != a->system_mem)
		goto fail;
	*out = v;
	*nout = n;
	return 0;
fail:
	free(v);
	return -ENOTSUP;
}

int ptm_sweep(const struct ptm_layout *l, const struct ptm_where *w,
	      const struct hi_reader *r, const struct hi_maps *maps,
	      const unsigned char *st, hi_addr_t top, struct hi_arena *a)
{
	struct sweep sw = { .l = l, .r = r };
	struct region *rg = NULL;
	size_t nrg = 0;
	int ret;

	if (l->c_size.size != 8 || l->c_fd.size != 8 || !l->flags.size)
		return -ENOTSUP;
	for (uint64_t i = 0; i < l->fastbins.count && i < 64; i++) {
		struct ptm_field e = {
			.off = l->fastbins.off + i * l->ptr_size,
			.size = l->ptr_size,
		};

		if (ptm_get(st, &e)) {
			sw.fast_want |= 1ull << i;
			sw.fast_max = (i + 2) * 16;
		}
	}
	/* Before the first sysmalloc there is no heap and no free chunk. */
	if (a->system_mem == 0 && !sw.fast_want)
		return 0;
	if (a->is_main) {
		unsigned char b[8];
		hi_addr_t base;

		if (ptm_get(st, &l->flags) & NONCONTIGUOUS_BIT ||
		    !l->sbrk_base.size ||
		    hi_read(r, w->mp + l->sbrk_base.off, b, l->sbrk_base.size))
			return -ENOTSUP;
		{
			struct ptm_field f = { .off = 0,
					       .size = l->sbrk_base.size };

			base = ptm_get(b, &f);
		}
		/* sysmalloc aligns the first chunk's user memory. */
		while (base && ((base + 2 * l->c_size.size) &
				(ptm_align(l) - 1)))
			base++;
		if (!base || top < base || top - base + a->top_size !=
						   a->system_mem)
			return -ENOTSUP;
		rg = malloc(sizeof(*rg));
		if (!rg)
			return -ENOMEM;
		rg->start = base;
		rg->end = top;
		rg->has_top = 1;
		nrg = 1;
	} else {
		ret = heap_regions(l, r, maps, a, top, &rg, &nrg);
		if (ret)
			return ret;
	}
	for (size_t i = 0; i < nrg; i++) {
		if (!hi_maps_rw_range(maps, rg[i].start,
				      rg[i].end - rg[i].start +
					      (rg[i].has_top ? 16 : 0))) {
			ret = -ENOTSUP;
			goto out;
		}
	}
	sw.buf = malloc(WINDOW);
	if (!sw.buf) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < nrg; i++) {
		ret = sweep_region(&sw, &rg[i], a);
		if (ret)
			goto out;
	}
	/* One region is swept in address order: already sorted then. */
	for (size_t i = 1; i < sw.n; i++) {
		if (sw.v[i - 1].p > sw.v[i].p) {
			qsort(sw.v, sw.n, sizeof(*sw.v), small_cmp);
			break;
		}
	}
	for (uint64_t i = 0; i < l->fastbins.count && !a->status; i++) {
		struct ptm_field e = {
			.off = l->fastbins.off + i * l->ptr_size,
			.size = l->ptr_size,
		};

		ret = fastbin_from_table(&sw, a, (unsigned)i, ptm_get(st, &e));
		if (ret)
			goto out;
	}
	ret = 0;
out:
	if (ret) {
		a->bin_chunks = a->bin_bytes = 0;
		a->fast_chunks = a->fast_bytes = 0;
	}
	free(sw.buf);
	free(sw.v);
	free(rg);
	return ret;
}
