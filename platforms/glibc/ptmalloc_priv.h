/* SPDX-License-Identifier: MIT */
/*
 * glibc's ptmalloc, as seen from outside: the layout of its structures and
 * the walker that computes mallinfo2's figures from them.  The walker reads
 * only through struct hi_reader and checks every pointer against the
 * mappings, so that unit tests can feed it byte buffers and corrupt heaps.
 */
#ifndef HEAPINSPECT_PTMALLOC_PRIV_H
#define HEAPINSPECT_PTMALLOC_PRIV_H

#include <stdint.h>

#include "platform.h"

/* Where a member sits: byte offset, byte size, array elements (0: none). */
struct ptm_field {
	uint64_t off;
	uint64_t size;
	uint64_t count;
};

/*
 * The members of struct malloc_state, struct malloc_par and struct
 * malloc_chunk that the walker uses.  On the DWARF path every one of these
 * comes from the target's own debug information.
 */
struct ptm_layout {
	/* struct malloc_state */
	uint64_t state_size;
	struct ptm_field mutex;
	struct ptm_field fastbins; /* fastbinsY[NFASTBINS] */
	struct ptm_field top;
	struct ptm_field bins;     /* bins[NBINS * 2 - 2] */
	struct ptm_field next;
	struct ptm_field attached_threads; /* size 0 when absent */
	struct ptm_field system_mem;
	struct ptm_field max_system_mem;
	struct ptm_field flags;    /* NONCONTIGUOUS_BIT; size 0: unknown */
	/* struct malloc_par */
	uint64_t par_size;
	struct ptm_field n_mmaps;
	struct ptm_field mmapped_mem;
	struct ptm_field max_mmapped_mem;
	struct ptm_field sbrk_base; /* size 0: unknown */
	/* heap_info (arena.c), the header of a non-main arena's heap */
	uint64_t hinfo_size;       /* 0: unknown */
	struct ptm_field h_ar_ptr;
	struct ptm_field h_prev;
	struct ptm_field h_size;
	/* struct malloc_chunk */
	struct ptm_field c_size;   /* mchunk_size: INTERNAL_SIZE_T */
	struct ptm_field c_fd;
	struct ptm_field c_bk;
	unsigned ptr_size;
	/* glibc >= 2.32 mangles fastbin and tcache fd links: PROTECT_PTR. */
	int safe_linking;
};

/* Where the allocator's globals are in the target. */
struct ptm_where {
	hi_addr_t main_arena;
	hi_addr_t mp;
};

/*
 * Check that a layout is one the walker can use: pointer-sized links, bins
 * and fastbins of sane lengths, every member inside its struct.  Return 0
 * or -HI_E_LAYOUT.
 */
int ptm_layout_check(const struct ptm_layout *l);

/*
 * The arenas on the ring that starts at main_arena, following next.
 * *out is malloc'd.  The target must be stopped.  Return the count, -errno
 * from the reader, or -HI_E_CORRUPT (*bad set) when the ring leaves
 * writable memory or does not close.
 */
int ptm_ring(const struct ptm_layout *l, const struct ptm_where *w,
	     const struct hi_reader *r, const struct hi_maps *maps,
	     hi_addr_t **out, hi_addr_t *bad);

/*
 * The number of arenas whose mutex is held.  The target must be stopped.
 * Return the count or a negative code.
 */
int ptm_busy(const struct ptm_layout *l, const struct ptm_where *w,
	     const struct hi_reader *r, const struct hi_maps *maps);

/*
 * Compute the figures glibc's __libc_mallinfo2 would return (int_mallinfo
 * over every arena, in malloc.c of 2.31 to 2.41), and each arena's own.  The
 * target must be stopped.  With skip_locked, an arena whose mutex is held is
 * reported with status -HI_E_BUSY instead of being walked.  Return 0 with
 * heap->complete set when every arena was read, 0 with it clear when some
 * arena was busy or corrupt (see its status), or a negative code when the
 * ring itself could not be read.  heap is the caller's; free its arenas with
 * hi_heap_free.
 */
int ptm_read_heap(const struct ptm_layout *l, const struct ptm_where *w,
		  const struct hi_reader *r, const struct hi_maps *maps,
		  int skip_locked, struct hi_heap *heap);

/* How read_arena counts the free chunks of an arena. */
enum ptm_mode {
	PTM_AUTO,  /* walk the lists; sweep when that would cost more */
	PTM_LISTS, /* only walk the lists, as int_mallinfo does */
	PTM_SWEEP, /* only sweep the heap (or fail with -ENOTSUP) */
};

/* ptm_read_heap with the mode chosen (tests compare the two ways). */
int ptm_read_heap_mode(const struct ptm_layout *l, const struct ptm_where *w,
		       const struct hi_reader *r, const struct hi_maps *maps,
		       int skip_locked, enum ptm_mode mode,
		       struct hi_heap *heap);

/*
 * Count the arena's free chunks by reading its heap from end to end
 * instead of following its lists: a chunk is in a bin exactly when the
 * next chunk's PREV_INUSE bit is clear, and the fastbins are followed
 * through a table of the heap's small chunks made on the way.  The caller
 * has filled a's counters from the arena struct st and its top.  Return 0
 * with a's list counts set (or a->status -HI_E_CORRUPT when a fastbin
 * leaves the heap's chunks), -ENOTSUP when the heap cannot be swept (an
 * unknown layout, a non-contiguous main arena, anything unexpected on the
 * way: the lists must be walked), or -errno from the reader.
 */
int ptm_sweep(const struct ptm_layout *l, const struct ptm_where *w,
	      const struct hi_reader *r, const struct hi_maps *maps,
	      const unsigned char *st, hi_addr_t top, struct hi_arena *a);

/* A member's value in a struct read from the target (size 4 or 8). */
uint64_t ptm_get(const unsigned char *buf, const struct ptm_field *f);

/* MALLOC_ALIGNMENT, MINSIZE, and chunksize() of a size field. */
uint64_t ptm_align(const struct ptm_layout *l);
uint64_t ptm_minsize(const struct ptm_layout *l);

#endif
