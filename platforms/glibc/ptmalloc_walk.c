/* SPDX-License-Identifier: MIT */
/*
 * The walker: what glibc's int_mallinfo computes, from outside.
 *
 * glibc 2.36 malloc.c, int_mallinfo(), for each arena av on the ring that
 * __libc_mallinfo2 walks from main_arena through av->next (the same to
 * glibc-2.42's malloc.c):
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
 * glibc 2.43 removed the fastbins: its int_mallinfo (malloc.c of the 2.43
 * development, January 2026) counts top and the regular bins only, and
 * never touches smblks or fsmblks, which stay 0.  A layout without
 * fastbins gives exactly that here: no fastbin is walked, and the fastbin
 * sums stay 0.
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
#define PTM_MAX_ARENAS 16384
#define PTM_MAX_STATE 65536

uint64_t ptm_get(const unsigned char *buf, const struct ptm_field *f)
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

uint64_t ptm_get_elem(const unsigned char *buf, const struct ptm_field *f,
		      unsigned ptr_size, uint64_t i)
{
	struct ptm_field e = {
		.off = f->off + i * ptr_size,
		.size = ptr_size,
	};

	return ptm_get(buf, &e);
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
	if (l->hinfo_size &&
	    (l->hinfo_size > 256 || !field_ok(&l->h_ar_ptr, l->hinfo_size, 1, p) ||
	     !field_ok(&l->h_prev, l->hinfo_size, 1, p) ||
	     !field_ok(&l->h_size, l->hinfo_size, 0, p)))
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
	/* A struct of its own: only its size and element count matter. */
	if (l->tcache_entries.size &&
	    (l->tcache_entries.count < 1 || l->tcache_entries.count > 1024 ||
	     l->tcache_entries.size != l->tcache_entries.count * p))
		return -HI_E_LAYOUT;
	/*
	 * NFASTBINS is 10 from glibc 2.3 to 2.42; 2.43 has no fastbins.  NBINS
	 * is 128 in every glibc since 2.3.
	 */
	if (!l->fastbins.size && l->fastbins.count)
		return -HI_E_LAYOUT; /* elements in no bytes */
	if (l->fastbins.size &&
	    (l->fastbins.count < 1 || l->fastbins.count > 64 ||
	     !field_ok(&l->fastbins, l->state_size, 1, p)))
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
uint64_t ptm_align(const struct ptm_layout *l)
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
uint64_t ptm_minsize(const struct ptm_layout *l)
{
	uint64_t a = ptm_align(l) - 1;

	return (l->c_bk.off + l->ptr_size + a) & ~a;
}

/*
 * Which bin a free chunk of size sz must be in: fastbin_index,
 * smallbin_index and largebin_index_64 of malloc.c (unchanged from 2.26 to
 * 2.43).  Used to catch a chunk whose size field was overwritten.
 */
static uint64_t fastbin_index(uint64_t sz, unsigned size_sz)
{
	return (sz >> (size_sz == 8 ? 4 : 3)) - 2;
}

uint64_t ptm_bin_index(uint64_t sz)
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
 * One free list being walked: a fastbin (singly linked through fd, ends at
 * NULL) or a bin (doubly linked, walked through bk from last (b) back to the
 * bin's own header b, as int_mallinfo does).
 */
struct cursor {
	hi_addr_t p;    /* the chunk to read next */
	hi_addr_t head; /* the first chunk */
	hi_addr_t end;  /* 0 for a fastbin, the bin header b for a bin */
	/*
	 * A bin's: the header's fd (first (b)), and where the walk came from
	 * (b, then the chunk whose bk led to p), at which p's fd must point.
	 */
	hi_addr_t first;
	hi_addr_t prev;
	unsigned idx;
	int fast;
	int dir;        /* +1 the list climbs, -1 it descends, 0 not known */
	uint64_t stride; /* distance of its last step */
	uint64_t n;
	struct cycle cyc;
};

/* The list's name, for messages only: made when an error needs it. */
static const char *list_name(const struct cursor *c, char *buf, size_t size)
{
	if (c->fast)
		snprintf(buf, size, "fastbin %u", c->idx);
	else if (c->idx == 1)
		snprintf(buf, size, "unsorted bin");
	else
		snprintf(buf, size, "bin %u", c->idx);
	return buf;
}

/*
 * Read and check the free chunk at p: aligned, in writable memory together
 * with all its size bytes, and at least MINSIZE.  Return 0, -HI_E_CORRUPT
 * (reason in a), or -errno.
 */
static int read_chunk(const struct ptm_layout *l, const struct hi_reader *r,
		      const struct hi_maps *maps, struct hi_arena *a,
		      hi_addr_t p, const struct cursor *cur, struct chunk *c)
{
	unsigned char buf[64];
	uint64_t hdr = l->c_bk.off + l->ptr_size;
	char list[32];
	int ret;
#define NAME list_name(cur, list, sizeof(list))
	if (p & (ptm_align(l) - 1))
		return corrupt(a, p, "%s: misaligned chunk " HI_PRIxADDR,
			       NAME, p);
	if (!hi_maps_rw_range(maps, p, hdr))
		return corrupt(a, p, "%s: chunk " HI_PRIxADDR
			       " is outside the heap's memory", NAME, p);
	ret = hi_read(r, p, buf, hdr);
	if (ret == -EFAULT)
		return corrupt(a, p, "%s: chunk " HI_PRIxADDR
			       " cannot be read", NAME, p);
	if (ret)
		return ret;
	c->size = chunksize(ptm_get(buf, &l->c_size));
	c->fd = ptm_get(buf, &l->c_fd);
	c->bk = ptm_get(buf, &l->c_bk);
	if (c->size < ptm_minsize(l) || (c->size & (ptm_align(l) - 1)))
		return corrupt(a, p, "%s: chunk " HI_PRIxADDR
			       " has an impossible size %" PRIu64,
			       NAME, p, c->size);
	if (!hi_maps_rw_range(maps, p, c->size))
		return corrupt(a, p, "%s: chunk " HI_PRIxADDR " of size %"
			       PRIu64 " runs past the end of its mapping",
			       NAME, p, c->size);
	return 0;
}
#undef NAME

/* Chunks a list of this arena can hold at most: each takes MINSIZE. */
static uint64_t list_bound(const struct ptm_layout *l, uint64_t system_mem)
{
	return system_mem / ptm_minsize(l) + 1;
}

/*
 * The two bounds on a walk: one list may hold no more chunks than its
 * arena's system_mem can (a number read from the target, so not enough
 * alone), and all lists of all arenas together no more than the writable
 * mappings can, *left counting down.  In a sound heap every free chunk is
 * on one list, so neither is ever reached; together they make a walk's work
 * proportional to the target's writable memory, whatever its bytes say.
 */
struct bounds {
	uint64_t list;
	uint64_t *left;
};

/*
 * Read the chunk under cursor c, count it, and move c to the next one.
 * Return 1 when the list goes on, 0 at its end, or a negative code
 * (-HI_E_CORRUPT with the reason in a).
 */
static int cursor_step(const struct ptm_layout *l, const struct hi_reader *r,
		       const struct hi_maps *maps, struct hi_arena *a,
		       struct bounds *bound, struct cursor *c)
{
	hi_addr_t p = c->p;
	struct chunk ch = { 0 };
	char list[32] = "";
	int ret;

	if (*bound->left == 0)
		return corrupt(a, p, "the free lists hold more chunks than all "
			       "writable memory can (lists that join or "
			       "loop?)");
	--*bound->left;
	if (c->n++ >= bound->list) {
		list_name(c, list, sizeof(list));
		return corrupt(a, p, "%s holds more chunks than its arena's "
			       "memory can (a loop?)", list);
	}
	if (c->n > 1 && cycle_step(&c->cyc, p)) {
		list_name(c, list, sizeof(list));
		return corrupt(a, p, "%s loops back to chunk " HI_PRIxADDR
			       " without reaching its end", list, p);
	}
	ret = read_chunk(l, r, maps, a, p, c, &ch);
	if (ret)
		return ret;
	if (c->fast) {
		if (l->c_size.size == 8 && fastbin_index(ch.size, 8) != c->idx) {
			list_name(c, list, sizeof(list));
			return corrupt(a, p, "%s: chunk " HI_PRIxADDR " of size "
				       "%" PRIu64 " belongs to another bin",
				       list, p, ch.size);
		}
		a->fast_chunks++;
		a->fast_bytes += ch.size;
		/*
		 * REVEAL_PTR (malloc.c, 2.32 and later): the link is stored
		 * xor'ed with its own address shifted by the page size.
		 */
		c->p = l->safe_linking ? ((p + l->c_fd.off) >> 12) ^ ch.fd
				       : ch.fd;
	} else {
		if (c->idx > 1 && l->c_size.size == 8 &&
		    ptm_bin_index(ch.size) != c->idx) {
			list_name(c, list, sizeof(list));
			return corrupt(a, p, "%s: chunk " HI_PRIxADDR " of size "
				       "%" PRIu64 " belongs to another bin",
				       list, p, ch.size);
		}
		/*
		 * The double links, as unlink_chunk checks them (malloc.c,
		 * "corrupted double-linked list"): walking through bk, each
		 * chunk's fd points back where the walk came from, and the
		 * header's fd at the last chunk.  Otherwise the lists are not
		 * what glibc's next unlink would see, nor what a sweep finds.
		 */
		if (ch.fd != c->prev) {
			list_name(c, list, sizeof(list));
			return corrupt(a, p, "%s: chunk " HI_PRIxADDR " has fd "
				       HI_PRIxADDR ", not " HI_PRIxADDR
				       " whose bk points at it", list, p,
				       ch.fd, c->prev);
		}
		if (ch.bk == c->end && c->first != p) {
			list_name(c, list, sizeof(list));
			return corrupt(a, p, "%s: its header's fd is "
				       HI_PRIxADDR ", not its last chunk "
				       HI_PRIxADDR, list, c->first, p);
		}
		a->bin_chunks++;
		a->bin_bytes += ch.size;
		c->prev = p;
		c->p = ch.bk;
	}
	c->stride = c->p > p ? c->p - p : p - c->p;
	return c->p != c->end;
}

/*
 * A heap of cursors: the lowest address on top for lists that climb
 * (sign 1), the highest for lists that descend (sign -1).
 */
#define DENSE_STRIDE 16384
#define SWEEP_RATIO 8
#define SWEEP_MIN 64

struct cheap {
	struct cursor **v;
	size_t n;
	int sign;
};

static int before(const struct cheap *h, const struct cursor *x,
		  const struct cursor *y)
{
	return h->sign > 0 ? x->p < y->p : x->p > y->p;
}

static void cheap_down(struct cheap *h, size_t i)
{
	for (;;) {
		size_t m = i, lc = 2 * i + 1, rc = 2 * i + 2;
		struct cursor *t;

		if (lc < h->n && before(h, h->v[lc], h->v[m]))
			m = lc;
		if (rc < h->n && before(h, h->v[rc], h->v[m]))
			m = rc;
		if (m == i)
			return;
		t = h->v[i];
		h->v[i] = h->v[m];
		h->v[m] = t;
		i = m;
	}
}

static void cheap_push(struct cheap *h, struct cursor *c)
{
	size_t i = h->n++;

	h->v[i] = c;
	while (i > 0 && before(h, h->v[i], h->v[(i - 1) / 2])) {
		struct cursor *t = h->v[i];

		h->v[i] = h->v[(i - 1) / 2];
		h->v[(i - 1) / 2] = t;
		i = (i - 1) / 2;
	}
}

/*
 * Move every list of h on as far as its chunks are at hand, and put the
 * heap in order again.  Return 0 or a negative code.
 */
static int cheap_drain(const struct ptm_layout *l, const struct hi_reader *r,
		       const struct hi_maps *maps, struct hi_arena *a,
		       struct bounds *bound, struct cheap *h)
{
	size_t kept = 0;

	for (size_t i = 0; i < h->n; i++) {
		struct cursor *c = h->v[i];
		int ret = 1;

		while (r->cached(r->arg, c->p, 32)) {
			ret = cursor_step(l, r, maps, a, bound, c);
			if (ret <= 0)
				break;
		}
		if (ret < 0)
			return ret;
		if (ret > 0)
			h->v[kept++] = c;
	}
	h->n = kept;
	for (size_t i = h->n / 2; i-- > 0;)
		cheap_down(h, i);
	return 0;
}

/*
 * Step the cursor on top of heap h (the one furthest behind in the heap's
 * direction).  Before reading a chunk that is not at hand, move every list
 * of h on as far as its chunks are at hand, then ask the reader for the
 * next chunk of each in one call (and, where the lists' chunks lie close,
 * the blocks that follow): lists that jump about the heap, as after frees
 * in random order, then cost one piece of a call per chunk, not a call.
 * Return 0 or a negative code.
 */
static int cheap_step(const struct ptm_layout *l, const struct hi_reader *r,
		      const struct hi_maps *maps, struct hi_arena *a,
		      struct bounds *bound, struct cheap *h, hi_addr_t *want,
		      uint64_t *misses)
{
	struct cursor *c = h->v[0];
	int ret;

	if (r->prefetch && !r->cached(r->arg, c->p, 32)) {
		size_t k = 0;

		ret = cheap_drain(l, r, maps, a, bound, h);
		if (ret < 0)
			return ret;
		if (!h->n)
			return 0;
		c = h->v[0];
		(*misses)++;
		/* Only chunks that look sane are worth fetching. */
		for (size_t i = 0; i < h->n; i++) {
			if (hi_maps_rw_range(maps, h->v[i]->p, 32))
				want[k++] = h->v[i]->p;
		}
		/* Read ahead only along lists whose chunks lie close. */
		r->prefetch(r->arg, want, k,
			    c->stride <= DENSE_STRIDE ? h->sign : 0);
	}
	ret = cursor_step(l, r, maps, a, bound, c);
	if (ret < 0)
		return ret;
	if (ret == 0)
		h->v[0] = h->v[--h->n];
	cheap_down(h, 0);
	return 0;
}

/*
 * Walk every free list of the arena at once.  The sums do not depend on the
 * order, but the reads do: a list freed in address order is walked in
 * address order (fastbins downwards from the last chunk freed, the bins
 * upwards from the oldest), and all lists that move the same way are walked
 * together, always stepping the one furthest behind.  So each stretch of
 * target memory is fetched about once per direction instead of once per
 * list, in large reads, and what the other lists need next comes in the same
 * system call (the reader's prefetch).
 */
static int walk_lists(const struct ptm_layout *l, const struct hi_reader *r,
		      const struct hi_maps *maps, struct hi_arena *a,
		      struct cursor *cur, size_t ncur, uint64_t budget,
		      uint64_t *left)
{
	uint64_t misses = 0;
	struct bounds b = { .list = list_bound(l, a->system_mem), .left = left };
	struct bounds *bound = &b;
	struct cheap up = { .sign = 1 }, down = { .sign = -1 };
	hi_addr_t *want;
	int ret = 0;

	up.v = malloc(ncur * sizeof(*up.v));
	down.v = malloc(ncur * sizeof(*down.v));
	want = malloc(ncur * sizeof(*want));
	if (!up.v || !down.v || !want) {
		ret = -ENOMEM;
		goto out;
	}
	/* One step of each list tells which way it goes: all in one read. */
	if (r->prefetch) {
		size_t k = 0;

		for (size_t i = 0; i < ncur; i++) {
			if (hi_maps_rw_range(maps, cur[i].p, 32))
				want[k++] = cur[i].p;
		}
		r->prefetch(r->arg, want, k, 0);
	}
	for (size_t i = 0; i < ncur; i++) {
		struct cursor *c = &cur[i];
		hi_addr_t from = c->p;

		ret = cursor_step(l, r, maps, a, bound, c);
		if (ret < 0)
			goto out;
		if (ret == 0)
			continue;
		c->dir = c->p > from ? 1 : -1;
		cheap_push(c->dir > 0 ? &up : &down, c);
	}
	/*
	 * One sweep after the other: the downward one starts where the upward
	 * one ended, on blocks still at hand.
	 */
	while (up.n || down.n) {
		struct cheap *h = up.n ? &up : &down;

		if ((ret = cheap_step(l, r, maps, a, bound, h, want, &misses)))
			goto out;
		/* Reading the whole heap would cost less: say so. */
		if (budget && misses > budget) {
			ret = -EAGAIN;
			goto out;
		}
	}
	ret = 0;
out:
	free(want);
	free(up.v);
	free(down.v);
	return ret;
}

/*
 * Read the arena at addr into a: its counters and, unless it is busy and
 * skip_locked is set, its free lists.  Return 0 with a->status set, or a
 * negative code when the reader failed for another reason than a bad
 * pointer.
 */
static int read_arena(const struct ptm_layout *l, const struct ptm_where *w,
		      const struct hi_reader *r, const struct hi_maps *maps,
		      hi_addr_t addr, int skip_locked, enum ptm_mode mode,
		      uint64_t *left,
		      struct hi_arena *a)
{
	unsigned char *st;
	struct cursor *cur = NULL;
	size_t ncur = 0;
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
	if (skip_locked && ptm_get(st, &l->mutex) != 0) {
		a->status = -HI_E_BUSY;
		ret = 0;
		goto out;
	}
	a->system_mem = ptm_get(st, &l->system_mem);
	a->max_system_mem = ptm_get(st, &l->max_system_mem);
	if (l->attached_threads.size) {
		a->attached_threads = ptm_get(st, &l->attached_threads);
		a->has_attached_threads = 1;
	}
	top = ptm_get(st, &l->top);
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
	/*
	 * top may be initial_top(): the unsorted bin's header in the arena,
	 * which is only pointer-aligned where bins do not start at a multiple
	 * of MALLOC_ALIGNMENT plus fd's offset (glibc 2.43: arena + 8).
	 */
	if ((top != addr + l->bins.off - l->c_fd.off &&
	     top & (ptm_align(l) - 1)) ||
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
		a->top_size = chunksize(ptm_get(buf, &f));
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
	cur = calloc(l->fastbins.count + nbins, sizeof(*cur));
	if (!cur) {
		ret = -ENOMEM;
		goto out;
	}
	for (uint64_t i = 0; i < l->fastbins.count; i++) {
		hi_addr_t head = ptm_get_elem(st, &l->fastbins, l->ptr_size, i);

		if (!head)
			continue;
		cur[ncur].p = cur[ncur].head = head;
		cur[ncur].end = 0;
		cur[ncur].idx = i;
		cur[ncur].fast = 1;
		cur[ncur].cyc.saved = 0;
		cur[ncur].cyc.power = 1;
		ncur++;
	}
	for (uint64_t i = 1; i < nbins; i++) {
		/* bin_at (m, i): the pair bins[2i-2..2i-1] seen as fd/bk. */
		hi_addr_t b = addr + l->bins.off + (i - 1) * 2 * l->ptr_size -
			      l->c_fd.off;
		/* for (p = last (b); p != b; p = p->bk) */
		hi_addr_t last = ptm_get_elem(st, &l->bins, l->ptr_size,
					  (i - 1) * 2 + 1);

		if (last == b)
			continue;
		cur[ncur].p = cur[ncur].head = last;
		cur[ncur].end = b;
		cur[ncur].first = ptm_get_elem(st, &l->bins, l->ptr_size,
					       (i - 1) * 2);
		cur[ncur].prev = b;
		cur[ncur].idx = i;
		cur[ncur].fast = 0;
		cur[ncur].cyc.saved = b;
		cur[ncur].cyc.power = 1;
		ncur++;
	}
	/*
	 * In auto mode: a sweep when a few short reads of the heap say it
	 * costs less than the lists (ptmalloc_sweep.c), else the lists, but
	 * past one miss of the reader's cache (a system call and a page copy)
	 * for every SWEEP_RATIO pages of the arena's memory, when the guess
	 * was wrong, the sweep after all.
	 */
	{
		struct hi_arena keep = *a;
		int sweep_ok = 1;

		keep.fast_chunks = keep.fast_bytes = 0;
		keep.bin_chunks = keep.bin_bytes = 0;

		if (mode == PTM_LISTS) {
			ret = -EAGAIN;
			sweep_ok = 0;
		} else {
			/*
			 * The costs weighed are those of system calls: a
			 * reader without a cache (a heap image) walks lists.
			 */
			ret = mode == PTM_AUTO && !r->cached
				      ? -EAGAIN
				      : ptm_sweep(l, w, r, maps, st, top,
						  mode == PTM_AUTO, a);
			if (ret == -ENOTSUP && mode == PTM_AUTO) {
				sweep_ok = 0;
				ret = -EAGAIN;
			}
		}
		if (ret == -EAGAIN) {
			uint64_t budget = sweep_ok && r->cached
						  ? a->system_mem / 4096 /
								    SWEEP_RATIO +
							    SWEEP_MIN
						  : 0;

			*a = keep;
			ret = walk_lists(l, r, maps, a, cur, ncur, budget,
					 left);
		}
		if (ret == -EAGAIN) {
			*a = keep;
			ret = ptm_sweep(l, w, r, maps, st, top, 0, a);
			if (ret == -ENOTSUP) {
				/* Start the lists again, from their heads. */
				*a = keep;
				for (size_t i = 0; i < ncur; i++) {
					cur[i].p = cur[i].head;
					cur[i].prev = cur[i].end;
					cur[i].n = 0;
					cur[i].cyc.saved = cur[i].end;
					cur[i].cyc.power = 1;
					cur[i].cyc.steps = 0;
				}
				ret = walk_lists(l, r, maps, a, cur, ncur, 0,
						 left);
			}
		}
	}
	if (ret == -HI_E_CORRUPT)
		ret = 0;
	if (ret || a->status)
		goto out;
	if (a->top_size + a->fast_bytes + a->bin_bytes > a->system_mem)
		ret = corrupt(a, addr, "arena's free chunks (%" PRIu64
			      " bytes) exceed its system memory (%" PRIu64
			      " bytes)",
			      a->top_size + a->fast_bytes + a->bin_bytes,
			      a->system_mem);
out:
	/* A corrupt arena is this arena's status, not the whole heap's. */
	if (ret == -HI_E_CORRUPT)
		ret = 0;
	free(cur);
	free(st);
	return ret;
}

static int ring_bad(hi_addr_t at, hi_addr_t *bad, char *why,
		    size_t why_size, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static int ring_bad(hi_addr_t at, hi_addr_t *bad, char *why,
		    size_t why_size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, why_size, fmt, ap);
	va_end(ap);
	*bad = at;
	return -HI_E_CORRUPT;
}

int ptm_addr_cmp(const void *x, const void *y)
{
	hi_addr_t a = *(const hi_addr_t *)x, b = *(const hi_addr_t *)y;

	return a < b ? -1 : a > b;
}

int ptm_ring(const struct ptm_layout *l, const struct ptm_where *w,
	     const struct hi_reader *r, const struct hi_maps *maps,
	     hi_addr_t **out, hi_addr_t *bad, char *why, size_t why_size)
{
	hi_addr_t *v = NULL, *sorted = NULL, a = w->main_arena;
	struct cycle cyc = { .saved = w->main_arena, .power = 1 };
	size_t n = 0, cap = 0;
	int ret;

	do {
		unsigned char buf[8];
		struct ptm_field f = { .off = 0, .size = l->next.size };

		if (n == PTM_MAX_ARENAS) {
			ret = ring_bad(a, bad, why, why_size, "more than %d "
				       "arenas on the ring", PTM_MAX_ARENAS);
			goto err;
		}
		if ((a & (l->ptr_size - 1)) ||
		    !hi_maps_rw_range(maps, a, l->state_size)) {
			ret = ring_bad(a, bad, why, why_size, "arena "
				       HI_PRIxADDR " is outside writable "
				       "memory", a);
			goto err;
		}
		/*
		 * A ring that loops without passing main_arena again: glibc
		 * only ever links new arenas in right after main_arena.
		 * Brent's method finds it in time proportional to the loop.
		 */
		if (n > 0 && cycle_step(&cyc, a)) {
			ret = ring_bad(a, bad, why, why_size, "the ring loops "
				       "back to arena " HI_PRIxADDR " without "
				       "returning to main_arena", a);
			goto err;
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
			if (ret == -EFAULT)
				ret = ring_bad(a, bad, why, why_size, "arena "
					       HI_PRIxADDR " cannot be read",
					       a);
			else
				*bad = a;
			goto err;
		}
		a = ptm_get(buf, &f);
		/* Before ptmalloc_init, 2.26 and older left next at zero. */
		if (a == 0 && n == 1)
			a = w->main_arena;
	} while (a != w->main_arena);
	/*
	 * Arenas never share memory (each sits at the start of its own heap,
	 * main_arena in libc's data), so the ring holds no more of them than
	 * writable memory can: the walk's work stays proportional to it.
	 */
	sorted = malloc(n * sizeof(*sorted));
	if (!sorted) {
		ret = -ENOMEM;
		goto err;
	}
	memcpy(sorted, v, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), ptm_addr_cmp);
	for (size_t i = 1; i < n; i++) {
		if (sorted[i] - sorted[i - 1] < l->state_size) {
			ret = ring_bad(sorted[i], bad, why, why_size, "arenas "
				       HI_PRIxADDR " and " HI_PRIxADDR
				       " on the ring overlap", sorted[i - 1],
				       sorted[i]);
			goto err;
		}
	}
	free(sorted);
	*out = v;
	return (int)n;
err:
	free(sorted);
	free(v);
	return ret;
}

int ptm_busy(const struct ptm_layout *l, const struct ptm_where *w,
	     const struct hi_reader *r, const struct hi_maps *maps)
{
	hi_addr_t *ring, bad;
	char why[192];
	int n, busy = 0, ret = 0;

	n = ptm_ring(l, w, r, maps, &ring, &bad, why, sizeof(why));
	if (n < 0)
		return n;
	for (int i = 0; i < n; i++) {
		unsigned char buf[8];
		struct ptm_field f = { .off = 0, .size = l->mutex.size };

		ret = hi_read(r, ring[i] + l->mutex.off, buf, l->mutex.size);
		if (ret)
			break;
		if (ptm_get(buf, &f) != 0)
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
	return ptm_read_heap_mode(l, w, r, maps, skip_locked, PTM_AUTO, heap);
}

uint64_t ptm_chunk_budget(const struct ptm_layout *l,
			  const struct hi_maps *maps)
{
	uint64_t left = 1;

	for (size_t i = 0; i < maps->n; i++) {
		uint64_t fit = (maps->v[i].end - maps->v[i].start) /
			       ptm_minsize(l);

		if ((maps->v[i].prot & (HI_PROT_R | HI_PROT_W)) !=
		    (HI_PROT_R | HI_PROT_W))
			continue;
		/* Saturating: a corrupt mappings list cannot wrap it. */
		left = left + fit < left ? UINT64_MAX : left + fit;
	}
	return left;
}

int ptm_walk_arena(const struct ptm_layout *l, const struct ptm_where *w,
		   const struct hi_reader *r, const struct hi_maps *maps,
		   hi_addr_t addr, uint64_t *left, struct hi_arena *a)
{
	return read_arena(l, w, r, maps, addr, 0, PTM_LISTS, left, a);
}

int ptm_read_heap_mode(const struct ptm_layout *l, const struct ptm_where *w,
		       const struct hi_reader *r, const struct hi_maps *maps,
		       int skip_locked, enum ptm_mode mode,
		       struct hi_heap *heap)
{
	unsigned char *par;
	hi_addr_t *ring;
	uint64_t left = ptm_chunk_budget(l, maps);
	int n, ret;

	memset(heap, 0, sizeof(*heap));
	par = malloc(l->par_size);
	if (!par)
		return -ENOMEM;
	ret = hi_read(r, w->mp, par, l->par_size);
	if (ret)
		goto out_par;
	heap->n_mmaps = ptm_get(par, &l->n_mmaps);
	heap->mmapped_mem = ptm_get(par, &l->mmapped_mem);
	heap->max_mmapped_mem = ptm_get(par, &l->max_mmapped_mem);

	n = ptm_ring(l, w, r, maps, &ring, &heap->bad_addr, heap->why,
		     sizeof(heap->why));
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

		ret = read_arena(l, w, r, maps, ring[i], skip_locked, mode,
				 &left, a);
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
