/* SPDX-License-Identifier: MIT */
/*
 * The walker: what glibc's int_mallinfo computes, from outside.
 *
 * glibc 2.36 malloc.c, int_mallinfo(), for each arena av on the ring that
 * __libc_mallinfo2 walks from main_arena through av->next:
 *
 *	avail = chunksize (av->top); nblocks = 1;
 *	for each fastbin, each chunk p (p = REVEAL_PTR (p->fd)):
 *		++nfastblocks; fastavail += chunksize (p);
 *	avail += fastavail;
 *	for (i = 1; i < NBINS; ++i) for (p = last (b); p != b; p = p->bk)
 *		++nblocks; avail += chunksize (p);
 *	smblks += nfastblocks; ordblks += nblocks; fordblks += avail;
 *	uordblks += av->system_mem - avail; arena += av->system_mem;
 *	fsmblks += fastavail;
 *	if (av == &main_arena)
 *		hblks = mp_.n_mmaps; hblkhd = mp_.mmapped_mem;
 *		usmblks = 0; keepcost = chunksize (av->top);
 *
 * 2.31's mallinfo() is the same computation in int fields, without
 * REVEAL_PTR.  Chunks in tcache are not on any of these lists, so they count
 * as in use, as they do for glibc.
 *
 * Unlike glibc, which trusts its own memory, every pointer here is checked
 * before it is followed: the target's memory is hostile input.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ptmalloc_priv.h"

/* Bounds on what a sane ring or list can hold. */
#define PTM_MAX_ARENAS 65536
#define PTM_MAX_STATE 65536

static uint64_t get_field(const unsigned char *buf, const struct ptm_field *f)
{
	uint32_t v32;
	uint64_t v64;

	switch (f->size) {
	case 4:
		memcpy(&v32, buf + f->off, 4);
		return v32;
	case 8:
		memcpy(&v64, buf + f->off, 8);
		return v64;
	default:
		return 0; /* ptm_layout_check rejects other sizes */
	}
}

uint64_t ptm_get(const unsigned char *buf, const struct ptm_field *f)
{
	return get_field(buf, f);
}

/* Element i of an array member of pointers. */
static uint64_t get_elem(const unsigned char *buf, const struct ptm_field *f,
			 unsigned ptr_size, uint64_t i)
{
	struct ptm_field e = {
		.off = f->off + i * ptr_size,
		.size = ptr_size,
	};

	return get_field(buf, &e);
}

static int field_ok(const struct ptm_field *f, uint64_t within, int is_ptr,
		    unsigned ptr_size)
{
	if (f->size != 4 && f->size != 8 && !(f->count && f->size))
		return 0;
	if (is_ptr && !f->count && f->size != ptr_size)
		return 0;
	if (f->count && f->size != f->count * ptr_size)
		return 0;
	return f->off <= within && f->size <= within - f->off;
}

int ptm_layout_check(const struct ptm_layout *l)
{
	unsigned p = l->ptr_size;
	uint64_t chunk_min = l->c_bk.off + p;

	if (p != 4 && p != 8)
		return -HI_E_LAYOUT;
	if (l->state_size == 0 || l->state_size > PTM_MAX_STATE)
		return -HI_E_LAYOUT;
	if (!field_ok(&l->mutex, l->state_size, 0, p) ||
	    !field_ok(&l->top, l->state_size, 1, p) ||
	    !field_ok(&l->next, l->state_size, 1, p) ||
	    !field_ok(&l->system_mem, l->state_size, 0, p) ||
	    !field_ok(&l->max_system_mem, l->state_size, 0, p))
		return -HI_E_LAYOUT;
	if (!field_ok(&l->flags, l->state_size, 0, p))
		return -HI_E_LAYOUT;
	if (l->attached_threads.size &&
	    !field_ok(&l->attached_threads, l->state_size, 0, p))
		return -HI_E_LAYOUT;
	if (!field_ok(&l->trim_threshold, l->par_size, 0, p) ||
	    !field_ok(&l->mmap_threshold, l->par_size, 0, p) ||
	    !field_ok(&l->n_mmaps_max, l->par_size, 0, p) ||
	    !field_ok(&l->max_n_mmaps, l->par_size, 0, p) ||
	    !field_ok(&l->sbrk_base, l->par_size, 1, p))
		return -HI_E_LAYOUT;
	if ((l->hp_pagesize.size &&
	     !field_ok(&l->hp_pagesize, l->par_size, 0, p)) ||
	    (l->tcache_bins.size &&
	     !field_ok(&l->tcache_bins, l->par_size, 0, p)) ||
	    (l->tcache_max_bytes.size &&
	     !field_ok(&l->tcache_max_bytes, l->par_size, 0, p)) ||
	    (l->tcache_count.size &&
	     !field_ok(&l->tcache_count, l->par_size, 0, p)))
		return -HI_E_LAYOUT;
	/* NFASTBINS is 10 and NBINS 128 in every glibc since 2.3. */
	if (l->fastbins.count < 1 || l->fastbins.count > 64 ||
	    !field_ok(&l->fastbins, l->state_size, 1, p))
		return -HI_E_LAYOUT;
	if (l->bins.count < 4 || l->bins.count > 1024 || l->bins.count % 2 ||
	    !field_ok(&l->bins, l->state_size, 1, p))
		return -HI_E_LAYOUT;
	if (!l->par_size || l->par_size > PTM_MAX_STATE ||
	    !field_ok(&l->n_mmaps, l->par_size, 0, p) ||
	    !field_ok(&l->mmapped_mem, l->par_size, 0, p) ||
	    !field_ok(&l->max_mmapped_mem, l->par_size, 0, p))
		return -HI_E_LAYOUT;
	/* bin_at() treats a pair of bins as a chunk's fd and bk. */
	if (l->c_size.size != p || l->c_fd.size != p || l->c_bk.size != p ||
	    l->c_bk.off != l->c_fd.off + p || l->c_fd.off != 2 * p ||
	    l->c_size.off != p || chunk_min > 64)
		return -HI_E_LAYOUT;
	return 0;
}

/* MALLOC_ALIGNMENT: 2 * SIZE_SZ on the 64-bit targets we read. */
static uint64_t ptm_align(const struct ptm_layout *l)
{
	return 2 * (uint64_t)l->c_size.size;
}

/* SIZE_BITS: PREV_INUSE | IS_MMAPPED | NON_MAIN_ARENA. */
static uint64_t chunksize(uint64_t size_field)
{
	return size_field & ~(uint64_t)7;
}

/*
 * MINSIZE: MIN_CHUNK_SIZE, offsetof (struct malloc_chunk, fd_nextsize), that
 * is the end of bk, rounded up to MALLOC_ALIGNMENT.
 */
static uint64_t ptm_minsize(const struct ptm_layout *l)
{
	uint64_t a = ptm_align(l) - 1;

	return (l->c_bk.off + l->ptr_size + a) & ~a;
}

/*
 * Which bin a free chunk of size sz must be in: fastbin_index,
 * smallbin_index and largebin_index_64 of malloc.c (unchanged from 2.26 to
 * 2.41).  Used to catch a chunk whose size field was overwritten.
 */
static uint64_t fastbin_index(uint64_t sz, unsigned size_sz)
{
	return (sz >> (size_sz == 8 ? 4 : 3)) - 2;
}

static uint64_t bin_index_64(uint64_t sz)
{
	if (sz < 1024)
		return sz >> 4;
	if ((sz >> 6) <= 48)
		return 48 + (sz >> 6);
	if ((sz >> 9) <= 20)
		return 91 + (sz >> 9);
	if ((sz >> 12) <= 10)
		return 110 + (sz >> 12);
	if ((sz >> 15) <= 4)
		return 119 + (sz >> 15);
	if ((sz >> 18) <= 2)
		return 124 + (sz >> 18);
	return 126;
}

static int corrupt(struct hi_arena *a, hi_addr_t at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int corrupt(struct hi_arena *a, hi_addr_t at, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(a->why, sizeof(a->why), fmt, ap);
	va_end(ap);
	a->bad_addr = at;
	a->status = -HI_E_CORRUPT;
	return -HI_E_CORRUPT;
}

/*
 * Brent's cycle detection: one saved address, moved at powers of two, finds
 * a loop within a small multiple of its length, long before the step bound.
 */
struct cycle {
	hi_addr_t saved;
	uint64_t power;
	uint64_t steps;
};

static int cycle_step(struct cycle *c, hi_addr_t p)
{
	if (p == c->saved)
		return 1;
	if (++c->steps == c->power) {
		c->saved = p;
		c->power *= 2;
		c->steps = 0;
	}
	return 0;
}

/* The header of a free chunk: the words up to and including bk. */
struct chunk {
	uint64_t size; /* chunksize() */
	uint64_t fd;
	uint64_t bk;
};

/*
 * Read and check the free chunk at p: aligned, in writable memory together
 * with all its size bytes, and at least MINSIZE.  Return 0, -HI_E_CORRUPT
 * (reason in a), or -errno.
 */
static int read_chunk(const struct ptm_layout *l, const struct hi_reader *r,
		      const struct hi_maps *maps, struct hi_arena *a,
		      hi_addr_t p, const char *list, struct chunk *c)
{
	unsigned char buf[64];
	uint64_t hdr = l->c_bk.off + l->ptr_size;
	int ret;

	if (p & (ptm_align(l) - 1))
		return corrupt(a, p, "%s: misaligned chunk " HI_PRIxADDR,
			       list, p);
	if (!hi_maps_rw_range(maps, p, hdr))
		return corrupt(a, p, "%s: chunk " HI_PRIxADDR
			       " is outside the heap's memory", list, p);
	ret = hi_read(r, p, buf, hdr);
	if (ret == -EFAULT)
		return corrupt(a, p, "%s: chunk " HI_PRIxADDR
			       " cannot be read", list, p);
	if (ret)
		return ret;
	c->size = chunksize(get_field(buf, &l->c_size));
	c->fd = get_field(buf, &l->c_fd);
	c->bk = get_field(buf, &l->c_bk);
	if (c->size < ptm_minsize(l) || (c->size & (ptm_align(l) - 1)))
		return corrupt(a, p, "%s: chunk " HI_PRIxADDR
			       " has an impossible size %" PRIu64,
			       list, p, c->size);
	if (!hi_maps_rw_range(maps, p, c->size))
		return corrupt(a, p, "%s: chunk " HI_PRIxADDR " of size %"
			       PRIu64 " runs past the end of its mapping",
			       list, p, c->size);
	return 0;
}

/* Chunks a list of this arena can hold at most: each takes MINSIZE. */
static uint64_t list_bound(const struct ptm_layout *l, uint64_t system_mem)
{
	return system_mem / ptm_minsize(l) + 1;
}

static int walk_fastbin(const struct ptm_layout *l, const struct hi_reader *r,
			const struct hi_maps *maps, struct hi_arena *a,
			unsigned idx, hi_addr_t p)
{
	uint64_t bound = list_bound(l, a->system_mem), n = 0;
	struct cycle cyc = { .saved = 0, .power = 1 };
	char list[32];
	int ret;

	snprintf(list, sizeof(list), "fastbin %u", idx);
	while (p) {
		struct chunk c;

		if (n++ >= bound)
			return corrupt(a, p, "%s holds more chunks than its "
				       "arena's memory can (a loop?)", list);
		if (cycle_step(&cyc, p))
			return corrupt(a, p, "%s loops back to chunk "
				       HI_PRIxADDR, list, p);
		ret = read_chunk(l, r, maps, a, p, list, &c);
		if (ret)
			return ret;
		if (l->c_size.size == 8 &&
		    fastbin_index(c.size, 8) != idx)
			return corrupt(a, p, "%s: chunk " HI_PRIxADDR " of size "
				       "%" PRIu64 " belongs to another bin",
				       list, p, c.size);
		a->fast_chunks++;
		a->fast_bytes += c.size;
		/*
		 * REVEAL_PTR (malloc.c, 2.32 and later): the link is stored
		 * xor'ed with its own address shifted by the page size.
		 */
		if (l->safe_linking)
			p = ((p + l->c_fd.off) >> 12) ^ c.fd;
		else
			p = c.fd;
	}
	return 0;
}

static int walk_bin(const struct ptm_layout *l, const struct hi_reader *r,
		    const struct hi_maps *maps, struct hi_arena *a,
		    unsigned idx, hi_addr_t b, hi_addr_t p)
{
	uint64_t bound = list_bound(l, a->system_mem), n = 0;
	struct cycle cyc = { .saved = b, .power = 1 };
	char list[32];
	int ret;

	if (idx == 1)
		snprintf(list, sizeof(list), "unsorted bin");
	else
		snprintf(list, sizeof(list), "bin %u", idx);
	/* for (p = last (b); p != b; p = p->bk) */
	while (p != b) {
		struct chunk c;

		if (n++ >= bound)
			return corrupt(a, p, "%s holds more chunks than its "
				       "arena's memory can (a loop?)", list);
		if (n > 1 && cycle_step(&cyc, p))
			return corrupt(a, p, "%s loops back to chunk "
				       HI_PRIxADDR " without reaching its head",
				       list, p);
		ret = read_chunk(l, r, maps, a, p, list, &c);
		if (ret)
			return ret;
		if (idx > 1 && l->c_size.size == 8 &&
		    bin_index_64(c.size) != idx)
			return corrupt(a, p, "%s: chunk " HI_PRIxADDR " of size "
				       "%" PRIu64 " belongs to another bin",
				       list, p, c.size);
		a->bin_chunks++;
		a->bin_bytes += c.size;
		p = c.bk;
	}
	return 0;
}

/*
 * Read the arena at addr into a: its counters and, unless it is busy and
 * skip_locked is set, its free lists.  Return 0 with a->status set, or a
 * negative code when the reader failed for another reason than a bad
 * pointer.
 */
static int read_arena(const struct ptm_layout *l, const struct ptm_where *w,
		      const struct hi_reader *r, const struct hi_maps *maps,
		      hi_addr_t addr, int skip_locked, struct hi_arena *a)
{
	unsigned char *st;
	uint64_t nbins = l->bins.count / 2 + 1; /* NBINS */
	hi_addr_t top;
	int ret;

	memset(a, 0, sizeof(*a));
	a->addr = addr;
	a->is_main = addr == w->main_arena;
	st = malloc(l->state_size);
	if (!st)
		return -ENOMEM;
	ret = hi_read(r, addr, st, l->state_size);
	if (ret == -EFAULT) {
		ret = corrupt(a, addr, "arena cannot be read");
		goto out;
	}
	if (ret)
		goto out;
	if (skip_locked && get_field(st, &l->mutex) != 0) {
		a->status = -HI_E_BUSY;
		ret = 0;
		goto out;
	}
	a->system_mem = get_field(st, &l->system_mem);
	a->max_system_mem = get_field(st, &l->max_system_mem);
	if (l->attached_threads.size) {
		a->attached_threads = get_field(st, &l->attached_threads);
		a->has_attached_threads = 1;
	}
	top = get_field(st, &l->top);
	if (top == 0) {
		/*
		 * malloc_init_state has not run: the process has not called
		 * malloc yet.  mallinfo2 would run ptmalloc_init first and
		 * then see top = initial_top, whose size reads as
		 * last_remainder, zero: one block of zero bytes.
		 */
		if (!a->is_main || a->system_mem)
			ret = corrupt(a, addr, "arena has no top chunk");
		goto out;
	}
	/* top may be initial_top(): the unsorted bin's header in the arena. */
	if (top & (ptm_align(l) - 1) ||
	    !hi_maps_rw_range(maps, top, l->c_size.off + l->c_size.size)) {
		ret = corrupt(a, top, "top chunk " HI_PRIxADDR " is outside "
			      "writable memory", top);
		goto out;
	} else {
		unsigned char buf[8];
		struct ptm_field f = { .off = 0, .size = l->c_size.size };

		ret = hi_read(r, top + l->c_size.off, buf, l->c_size.size);
		if (ret == -EFAULT) {
			ret = corrupt(a, top, "top chunk cannot be read");
			goto out;
		}
		if (ret)
			goto out;
		a->top_size = chunksize(get_field(buf, &f));
		/*
		 * "top size is always at least MINSIZE" (do_check_chunk),
		 * except for initial_top, the unsorted bin's header.
		 */
		if ((top != addr + l->bins.off - l->c_fd.off &&
		     a->top_size < ptm_minsize(l)) ||
		    a->top_size > a->system_mem ||
		    !hi_maps_rw_range(maps, top, a->top_size)) {
			ret = corrupt(a, top, "top chunk " HI_PRIxADDR " of "
				      "size %" PRIu64 " does not fit its "
				      "arena", top, a->top_size);
			goto out;
		}
	}
	for (uint64_t i = 0; i < l->fastbins.count; i++) {
		hi_addr_t head = get_elem(st, &l->fastbins, l->ptr_size, i);

		ret = walk_fastbin(l, r, maps, a, i, head);
		if (ret == -HI_E_CORRUPT)
			ret = 0;
		if (ret || a->status)
			goto out;
	}
	for (uint64_t i = 1; i < nbins; i++) {
		/* bin_at (m, i): the pair bins[2i-2..2i-1] seen as fd/bk. */
		hi_addr_t b = addr + l->bins.off + (i - 1) * 2 * l->ptr_size -
			      l->c_fd.off;
		hi_addr_t last = get_elem(st, &l->bins, l->ptr_size,
					  (i - 1) * 2 + 1);

		ret = walk_bin(l, r, maps, a, i, b, last);
		if (ret == -HI_E_CORRUPT)
			ret = 0;
		if (ret || a->status)
			goto out;
	}
	if (a->top_size + a->fast_bytes + a->bin_bytes > a->system_mem)
		ret = corrupt(a, addr, "arena's free chunks (%" PRIu64
			      " bytes) exceed its system memory (%" PRIu64
			      " bytes)",
			      a->top_size + a->fast_bytes + a->bin_bytes,
			      a->system_mem);
	if (ret == -HI_E_CORRUPT)
		ret = 0;
out:
	free(st);
	return ret;
}

int ptm_ring(const struct ptm_layout *l, const struct ptm_where *w,
	     const struct hi_reader *r, const struct hi_maps *maps,
	     hi_addr_t **out, hi_addr_t *bad)
{
	hi_addr_t *v = NULL, a = w->main_arena;
	size_t n = 0, cap = 0;
	int ret;

	do {
		unsigned char buf[8];
		struct ptm_field f = { .off = 0, .size = l->next.size };

		if (n == PTM_MAX_ARENAS) {
			*bad = a;
			ret = -HI_E_CORRUPT;
			goto err;
		}
		if ((a & (l->ptr_size - 1)) ||
		    !hi_maps_rw_range(maps, a, l->state_size)) {
			*bad = a;
			ret = -HI_E_CORRUPT;
			goto err;
		}
		/*
		 * A ring that loops without passing main_arena again: glibc
		 * only ever links new arenas in right after main_arena.
		 */
		for (size_t i = 1; i < n; i++) {
			if (v[i] == a) {
				*bad = a;
				ret = -HI_E_CORRUPT;
				goto err;
			}
		}
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			hi_addr_t *nv = realloc(v, ncap * sizeof(*v));

			if (!nv) {
				ret = -ENOMEM;
				goto err;
			}
			v = nv;
			cap = ncap;
		}
		v[n++] = a;
		ret = hi_read(r, a + l->next.off, buf, l->next.size);
		if (ret) {
			*bad = a;
			if (ret == -EFAULT)
				ret = -HI_E_CORRUPT;
			goto err;
		}
		a = get_field(buf, &f);
		/* Before ptmalloc_init, 2.26 and older left next at zero. */
		if (a == 0 && n == 1)
			a = w->main_arena;
	} while (a != w->main_arena);
	*out = v;
	return (int)n;
err:
	free(v);
	return ret;
}

int ptm_busy(const struct ptm_layout *l, const struct ptm_where *w,
	     const struct hi_reader *r, const struct hi_maps *maps)
{
	hi_addr_t *ring, bad;
	int n, busy = 0, ret = 0;

	n = ptm_ring(l, w, r, maps, &ring, &bad);
	if (n < 0)
		return n;
	for (int i = 0; i < n; i++) {
		unsigned char buf[8];
		struct ptm_field f = { .off = 0, .size = l->mutex.size };

		ret = hi_read(r, ring[i] + l->mutex.off, buf, l->mutex.size);
		if (ret)
			break;
		if (get_field(buf, &f) != 0)
			busy++;
	}
	free(ring);
	return ret ? ret : busy;
}

void hi_heap_free(struct hi_heap *heap)
{
	free(heap->arenas);
	heap->arenas = NULL;
	heap->narenas = 0;
}

int ptm_read_heap(const struct ptm_layout *l, const struct ptm_where *w,
		  const struct hi_reader *r, const struct hi_maps *maps,
		  int skip_locked, struct hi_heap *heap)
{
	unsigned char *par;
	hi_addr_t *ring, bad;
	int n, ret;

	memset(heap, 0, sizeof(*heap));
	par = malloc(l->par_size);
	if (!par)
		return -ENOMEM;
	ret = hi_read(r, w->mp, par, l->par_size);
	if (ret)
		goto out_par;
	heap->n_mmaps = get_field(par, &l->n_mmaps);
	heap->mmapped_mem = get_field(par, &l->mmapped_mem);
	heap->max_mmapped_mem = get_field(par, &l->max_mmapped_mem);

	n = ptm_ring(l, w, r, maps, &ring, &bad);
	if (n < 0) {
		ret = n;
		goto out_par;
	}
	heap->arenas = calloc(n, sizeof(*heap->arenas));
	if (!heap->arenas) {
		ret = -ENOMEM;
		goto out_ring;
	}
	heap->narenas = n;
	heap->complete = 1;
	for (int i = 0; i < n; i++) {
		struct hi_arena *a = &heap->arenas[i];
		uint64_t avail;

		ret = read_arena(l, w, r, maps, ring[i], skip_locked, a);
		if (ret)
			goto out_ring;
		if (a->status) {
			heap->complete = 0;
			continue;
		}
		avail = a->top_size + a->fast_bytes + a->bin_bytes;
		heap->mi.smblks += a->fast_chunks;
		heap->mi.ordblks += 1 + a->bin_chunks; /* top counts as one */
		heap->mi.fordblks += avail;
		heap->mi.uordblks += a->system_mem - avail;
		heap->mi.arena += a->system_mem;
		heap->mi.fsmblks += a->fast_bytes;
		if (a->is_main) {
			heap->mi.hblks = heap->n_mmaps;
			heap->mi.hblkhd = heap->mmapped_mem;
			heap->mi.usmblks = 0;
			heap->mi.keepcost = a->top_size;
		}
	}
	ret = 0;
out_ring:
	free(ring);
out_par:
	free(par);
	if (ret)
		hi_heap_free(heap);
	return ret;
}
