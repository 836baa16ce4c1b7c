/* SPDX-License-Identifier: MIT */
/*
 * Whether glibc's own mallinfo2() or malloc_trim() can be called in the
 * target without harm: walk what the function walks, and check on the way
 * everything it trusts.  glibc trusts its memory: a link it follows into
 * unmapped or non-canonical memory is a SIGSEGV, a check it makes on the
 * way is malloc_printerr and abort(), and malloc_trim gives back to the
 * system the pages of every chunk it believes free.
 *
 * What the functions read (malloc.c, glibc 2.31 to 2.42; arena.c):
 *
 * __libc_mallinfo2 (__libc_mallinfo before 2.33): for each arena on the
 * ring from main_arena, under its mutex, int_mallinfo: chunksize (av->top);
 * each fastbin through REVEAL_PTR (p->fd), malloc_printerr on a misaligned
 * chunk (2.32 and later); each bin through p->bk from last (b) back to b.
 * That is exactly the walk of ptm_walk_arena.
 *
 * __malloc_trim: for each arena, under its mutex, mtrim:
 *   malloc_consolidate empties every fastbin; for each chunk p:
 *     misaligned: malloc_printerr; fastbin_index (chunksize (p)) must be
 *     its bin's; when prev_inuse (p) is clear, the previous chunk at
 *     p - prev_size (p) must have that size ("corrupted size vs. prev_size
 *     in fastbins") and is unlinked; the next chunk, unless it is top, is
 *     unlinked when its own next chunk's PREV_INUSE is clear; the merged
 *     chunk goes to the head of the unsorted bin (unsorted_bin->fd->bk is
 *     written) or into top;
 *   unlink_chunk (p): chunksize (p) == prev_size (next_chunk (p))
 *     ("corrupted size vs. prev_size"), p->fd->bk == p and p->bk->fd == p
 *     ("corrupted double-linked list"), and for a large chunk with
 *     fd_nextsize set, fd_nextsize->bk_nextsize == p and
 *     bk_nextsize->fd_nextsize == p; then it writes through all four;
 *   then each chunk of the unsorted bin and of the bins from
 *   bin_index (pagesize) up, through bk: madvise (MADV_DONTNEED) of the
 *   whole pages between its header and its end;
 *   for the main arena, systrim: chunksize (av->top), and sbrk.
 * (2.43 has no fastbins, and its mtrim no malloc_consolidate.)
 *
 * Neither function reads a thread's tcache (tcache_get and tcache_put are
 * the only readers of its entries, in malloc and free): a corrupt tcache
 * entry does not harm these calls, and is not looked at here.
 *
 * So a call of mallinfo2 is sound when every arena's lists walk cleanly;
 * one of malloc_trim when, besides, every fastbin chunk's neighbours that
 * consolidation merges pass unlink_chunk's checks, and every chunk it may
 * madvise is free by its neighbour's header (the next chunk's prev_size is
 * its size and PREV_INUSE is clear), inside one writable mapping.  That is
 * what a heap glibc built itself always satisfies; this looks at the
 * heap's state before the call, while consolidation changes it as it goes,
 * but only the way glibc's own code keeps consistent.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ptmalloc_priv.h"

#define PREV_INUSE 1u

/* The words of a chunk that unlink_chunk and consolidation touch. */
#define CHUNK_WORDS 6

struct sound {
	const struct ptm_layout *l;
	const struct hi_reader *r;
	const struct hi_maps *maps;
	struct hi_arena *a;     /* where a corruption is reported */
	hi_addr_t top;
	hi_addr_t arena;
};

static int bad(struct sound *s, hi_addr_t at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int bad(struct sound *s, hi_addr_t at, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->a->why, sizeof(s->a->why), fmt, ap);
	va_end(ap);
	s->a->bad_addr = at;
	s->a->status = -HI_E_CORRUPT;
	return -HI_E_CORRUPT;
}

/* One word at addr, which must be inside writable memory. */
static int word(struct sound *s, hi_addr_t addr, uint64_t *v)
{
	unsigned char buf[8] = { 0 };
	struct ptm_field f = { .off = 0, .size = s->l->ptr_size };
	int ret;

	if (!hi_maps_rw_range(s->maps, addr, s->l->ptr_size))
		return bad(s, addr, "address " HI_PRIxADDR " is outside "
			   "writable memory", addr);
	ret = hi_read(s->r, addr, buf, s->l->ptr_size);
	if (ret == -EFAULT)
		return bad(s, addr, "address " HI_PRIxADDR " cannot be read",
			   addr);
	if (ret)
		return ret;
	*v = ptm_get(buf, &f);
	return 0;
}

/*
 * The words of chunk p up to bk_nextsize, which glibc may read or write:
 * p must be aligned and they must lie in writable memory.  A bin's header
 * (bin_at) is such a "chunk" inside the arena: its words run on into the
 * next bins, still inside the arena.
 */
static int chunk(struct sound *s, hi_addr_t p, uint64_t w[CHUNK_WORDS])
{
	const struct ptm_layout *l = s->l;
	unsigned char buf[CHUNK_WORDS * 8];
	uint64_t len = (uint64_t)CHUNK_WORDS * l->ptr_size;
	int ret;

	/* A bin's header is only as aligned as its arena. */
	if ((p & (ptm_align(l) - 1)) &&
	    (p < s->arena || p >= s->arena + l->state_size))
		return bad(s, p, "chunk " HI_PRIxADDR " is misaligned", p);
	if (!hi_maps_rw_range(s->maps, p, len))
		return bad(s, p, "chunk " HI_PRIxADDR " is outside writable "
			   "memory", p);
	ret = hi_read(s->r, p, buf, len);
	if (ret == -EFAULT)
		return bad(s, p, "chunk " HI_PRIxADDR " cannot be read", p);
	if (ret)
		return ret;
	for (int i = 0; i < CHUNK_WORDS; i++) {
		struct ptm_field f = { .off = (uint64_t)i * l->ptr_size,
				       .size = l->ptr_size };

		w[i] = ptm_get(buf, &f);
	}
	return 0;
}

/* Word indexes in a chunk: prev_size, size, fd, bk, fd_nextsize, ... */
enum { W_PREV, W_SIZE, W_FD, W_BK, W_FDN, W_BKN };

static uint64_t csize(uint64_t size_field)
{
	return size_field & ~(uint64_t)7;
}

/* MIN_LARGE_SIZE: in_smallbin_range (sz) is sz < this (64-bit). */
static uint64_t min_large(const struct ptm_layout *l)
{
	return 64 * ptm_align(l);
}

/* The checks of unlink_chunk (malloc.c, 2.29 to 2.43) on free chunk p. */
static int unlink_ok(struct sound *s, hi_addr_t p, const char *what)
{
	uint64_t w[CHUNK_WORDS], x[CHUNK_WORDS], size, next_prev;
	int ret;

	if ((ret = chunk(s, p, w)))
		return ret;
	size = csize(w[W_SIZE]);
	if (size < ptm_minsize(s->l) || !hi_maps_rw_range(s->maps, p, size))
		return bad(s, p, "%s " HI_PRIxADDR " of size %" PRIu64
			   " does not fit its mapping", what, p, size);
	if ((ret = word(s, p + size, &next_prev)))
		return ret;
	if (next_prev != size)
		return bad(s, p, "%s " HI_PRIxADDR ": its size %" PRIu64
			   " and the next chunk's prev_size %" PRIu64
			   " differ (glibc: corrupted size vs. prev_size)",
			   what, p, size, next_prev);
	if ((ret = chunk(s, w[W_FD], x)))
		return ret;
	if (x[W_BK] != p)
		return bad(s, p, "%s " HI_PRIxADDR ": its fd does not point "
			   "back to it (glibc: corrupted double-linked list)",
			   what, p);
	if ((ret = chunk(s, w[W_BK], x)))
		return ret;
	if (x[W_FD] != p)
		return bad(s, p, "%s " HI_PRIxADDR ": its bk does not point "
			   "back to it (glibc: corrupted double-linked list)",
			   what, p);
	if (w[W_SIZE] < min_large(s->l) || w[W_FDN] == 0)
		return 0;
	if ((ret = chunk(s, w[W_FDN], x)))
		return ret;
	if (x[W_BKN] != p)
		return bad(s, p, "%s " HI_PRIxADDR ": its fd_nextsize does not "
			   "point back to it (glibc: corrupted double-linked "
			   "list (not small))", what, p);
	if ((ret = chunk(s, w[W_BKN], x)))
		return ret;
	if (x[W_FDN] != p)
		return bad(s, p, "%s " HI_PRIxADDR ": its bk_nextsize does not "
			   "point back to it (glibc: corrupted double-linked "
			   "list (not small))", what, p);
	return 0;
}

/*
 * What malloc_consolidate does with fastbin chunk p: merge it with its
 * free neighbours.  ptm_walk_arena checked p itself (aligned, in a
 * mapping, of its bin's size).
 */
static int consolidate_ok(struct sound *s, hi_addr_t p)
{
	uint64_t w[CHUNK_WORDS], size, nsize, after;
	hi_addr_t next;
	int ret;

	if ((ret = chunk(s, p, w)))
		return ret;
	size = csize(w[W_SIZE]);
	next = p + size;
	if (!(w[W_SIZE] & PREV_INUSE)) {
		uint64_t x[CHUNK_WORDS];
		hi_addr_t prev = p - w[W_PREV];

		if ((ret = chunk(s, prev, x)))
			return ret;
		if (csize(x[W_SIZE]) != w[W_PREV])
			return bad(s, p, "fastbin chunk " HI_PRIxADDR ": the "
				   "chunk before it is not of its prev_size "
				   "%" PRIu64 " (glibc: corrupted size vs. "
				   "prev_size in fastbins)", p, w[W_PREV]);
		if ((ret = unlink_ok(s, prev, "free chunk before fastbin "
					      "chunk")))
			return ret;
	}
	if (next == s->top)
		return 0;
	if ((ret = word(s, next + s->l->c_size.off, &nsize)))
		return ret;
	nsize = csize(nsize);
	if (nsize < ptm_minsize(s->l) || (nsize & (ptm_align(s->l) - 1)))
		return bad(s, next, "chunk " HI_PRIxADDR " after fastbin chunk "
			   HI_PRIxADDR " has an impossible size %" PRIu64,
			   next, p, nsize);
	if ((ret = word(s, next + nsize + s->l->c_size.off, &after)))
		return ret;
	if (after & PREV_INUSE)
		return 0;
	return unlink_ok(s, next, "free chunk after fastbin chunk");
}

/*
 * Whether chunk p, in a bin that mtrim goes through, is free by its
 * neighbour's header, so that the pages it gives back hold nothing in use.
 */
static int madvise_ok(struct sound *s, hi_addr_t p, uint64_t pagesize,
		      unsigned bin)
{
	uint64_t w[CHUNK_WORDS], size, next[2];
	const uint64_t hdr = (uint64_t)CHUNK_WORDS * s->l->ptr_size;
	int ret;

	if ((ret = chunk(s, p, w)))
		return ret;
	size = csize(w[W_SIZE]);
	/* mtrim: only a chunk above pagesize - 1 + sizeof (malloc_chunk). */
	if (size <= pagesize - 1 + hdr)
		return 0;
	if (!hi_maps_rw_range(s->maps, p, size + 2 * s->l->ptr_size))
		return bad(s, p, "bin %u: chunk " HI_PRIxADDR " of size %" PRIu64
			   " runs past the end of its mapping", bin, p, size);
	if ((ret = word(s, p + size, &next[0])) ||
	    (ret = word(s, p + size + s->l->c_size.off, &next[1])))
		return ret;
	if (next[0] != size || (next[1] & PREV_INUSE))
		return bad(s, p, "bin %u: chunk " HI_PRIxADDR " of size %" PRIu64
			   " is not free by the next chunk's header: "
			   "malloc_trim would give back pages that may be in "
			   "use", bin, p, size);
	return 0;
}

/* The arena's malloc_state, read whole. */
static int arena_state(struct sound *s, unsigned char **st)
{
	int ret;

	*st = malloc(s->l->state_size);
	if (!*st)
		return -ENOMEM;
	ret = hi_read(s->r, s->arena, *st, s->l->state_size);
	if (ret == -EFAULT)
		ret = bad(s, s->arena, "arena cannot be read");
	if (ret) {
		free(*st);
		*st = NULL;
	}
	return ret;
}

/* What mtrim adds to int_mallinfo's walk, for one arena. */
static int trim_ok(struct sound *s, uint64_t budget)
{
	const struct ptm_layout *l = s->l;
	uint64_t nbins = l->bins.count / 2 + 1, pagesize;
	uint64_t psindex, steps = 0;
	unsigned char *st;
	long ps = sysconf(_SC_PAGESIZE);
	int ret;

	pagesize = ps > 0 ? (uint64_t)ps : 4096;
	psindex = ptm_bin_index(pagesize);
	if ((ret = arena_state(s, &st)))
		return ret;
	s->top = ptm_get(st, &l->top);
	for (uint64_t i = 0; i < l->fastbins.count && !ret; i++) {
		hi_addr_t p = ptm_get_elem(st, &l->fastbins, l->ptr_size, i);

		while (p && !ret) {
			uint64_t fd;

			/* The walk found the list finite: budget is its
			 * bound, in case memory is not what it read. */
			if (steps++ > budget) {
				ret = bad(s, p, "fastbin %" PRIu64 " changed "
					  "while it was read", i);
				break;
			}
			ret = consolidate_ok(s, p);
			if (ret || (ret = word(s, p + l->c_fd.off, &fd)))
				break;
			p = l->safe_linking ? ((p + l->c_fd.off) >> 12) ^ fd
					    : fd;
		}
	}
	for (uint64_t i = 1; i < nbins && !ret; i++) {
		hi_addr_t b = s->arena + l->bins.off +
			      (i - 1) * 2 * l->ptr_size - l->c_fd.off;
		hi_addr_t p = ptm_get_elem(st, &l->bins, l->ptr_size,
					   (i - 1) * 2 + 1);

		if (i == 1) {
			/* consolidation writes unsorted_bin->fd->bk */
			uint64_t w[CHUNK_WORDS];
			hi_addr_t first = ptm_get_elem(st, &l->bins,
						       l->ptr_size, 0);

			if ((ret = chunk(s, first, w)))
				break;
		} else if (i < psindex) {
			continue;
		}
		while (p != b && !ret) {
			uint64_t bk;

			if (steps++ > budget) {
				ret = bad(s, p, "bin %" PRIu64 " changed "
					  "while it was read", i);
				break;
			}
			ret = madvise_ok(s, p, pagesize, (unsigned)i);
			if (ret || (ret = word(s, p + l->c_bk.off, &bk)))
				break;
			p = bk;
		}
	}
	free(st);
	return ret;
}

/* Mark arena addr of heap corrupt with what a says. */
static void mark(struct hi_heap *heap, const struct hi_arena *a)
{
	heap->complete = 0;
	memset(&heap->mi, 0, sizeof(heap->mi));
	for (size_t i = 0; i < heap->narenas; i++) {
		struct hi_arena *h = &heap->arenas[i];

		if (h->addr != a->addr)
			continue;
		if (h->status != -HI_E_CORRUPT) {
			h->status = -HI_E_CORRUPT;
			h->bad_addr = a->bad_addr;
			snprintf(h->why, sizeof(h->why), "%s", a->why);
		}
		return;
	}
}

int ptm_call_sound(const struct ptm_layout *l, const struct ptm_where *w,
		   const struct hi_reader *r, const struct hi_maps *maps,
		   int kind, struct hi_heap *heap)
{
	uint64_t left = ptm_chunk_budget(l, maps);
	hi_addr_t *ring;
	int n, ret = 0;

	n = ptm_ring(l, w, r, maps, &ring, &heap->bad_addr, heap->why,
		     sizeof(heap->why));
	if (n < 0) {
		if (n == -HI_E_CORRUPT) {
			heap->complete = 0;
			memset(&heap->mi, 0, sizeof(heap->mi));
		}
		return n;
	}
	for (int i = 0; i < n && !ret; i++) {
		struct hi_arena a;
		struct sound s = { .l = l, .r = r, .maps = maps, .a = &a,
				   .arena = ring[i] };
		uint64_t budget;

		ret = ptm_walk_arena(l, w, r, maps, ring[i], &left, &a);
		if (ret)
			break;
		if (a.status) {
			ret = a.status == -HI_E_CORRUPT ? -HI_E_CORRUPT
							: a.status;
			mark(heap, &a);
			break;
		}
		if (kind != HI_CALL_TRIM)
			continue;
		budget = a.fast_chunks + a.bin_chunks;
		ret = trim_ok(&s, budget);
		if (ret == -HI_E_CORRUPT)
			mark(heap, &a);
	}
	free(ring);
	return ret;
}

int ptm_unlock_all(const struct ptm_layout *l, const struct ptm_where *w,
		   const struct hi_reader *r, const struct hi_maps *maps,
		   const struct hi_writer *wr, const hi_addr_t *globals,
		   int nglobals, hi_addr_t *first)
{
	hi_addr_t *ring, bad_at, *locks;
	char why[192];
	int n, released = 0, ret = 0;

	n = ptm_ring(l, w, r, maps, &ring, &bad_at, why, sizeof(why));
	if (n < 0)
		return n;
	locks = calloc((size_t)n + (size_t)nglobals, sizeof(*locks));
	if (!locks) {
		free(ring);
		return -ENOMEM;
	}
	for (int i = 0; i < n; i++)
		locks[i] = ring[i] + l->mutex.off;
	for (int i = 0; i < nglobals; i++)
		locks[n + i] = globals[i];
	for (int i = 0; i < n + nglobals; i++) {
		/* __libc_lock_t is an int: 0 free, 1 held, 2 with waiters
		 * (lowlevellock.h); nobody can wait while only the
		 * call's thread runs. */
		int32_t word32 = 0;

		if (!locks[i])
			continue;
		ret = hi_read(r, locks[i], &word32, sizeof(word32));
		if (ret)
			break;
		if (word32 == 0)
			continue;
		word32 = 0;
		ret = wr->write(wr->arg, locks[i], &word32, sizeof(word32));
		if (ret)
			break;
		if (!released++)
			*first = locks[i];
	}
	free(locks);
	free(ring);
	return ret ? ret : released;
}
