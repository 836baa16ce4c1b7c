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
	/* struct malloc_par */
	uint64_t par_size;
	struct ptm_field n_mmaps;
	struct ptm_field mmapped_mem;
	struct ptm_field max_mmapped_mem;
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
 * from the reader, or -HI_E_CORRUPT with *bad and why (why_size bytes) set
 * when the ring leaves writable memory, loops without coming back to
 * main_arena, or holds arenas that overlap.
 */
int ptm_ring(const struct ptm_layout *l, const struct ptm_where *w,
	     const struct hi_reader *r, const struct hi_maps *maps,
	     hi_addr_t **out, hi_addr_t *bad, char *why, size_t why_size);

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
 * ring itself could not be read (-HI_E_CORRUPT with heap->bad_addr and
 * heap->why set).  The work is bounded by the size of the writable
 * mappings: all free lists together may hold no more chunks than fit in
 * them, whatever the arenas' counters say.  heap is the caller's; free its
 * arenas with hi_heap_free.
 */
int ptm_read_heap(const struct ptm_layout *l, const struct ptm_where *w,
		  const struct hi_reader *r, const struct hi_maps *maps,
		  int skip_locked, struct hi_heap *heap);

/*
 * The DWARF half of locate: load libc's debug information, find main_arena
 * and mp_ in malloc.c's unit and the layout of their structs.  l->safe_linking
 * is left as it is (it comes from the version banner).  Return 0 or a
 * negative code with ctx->why naming what is missing; ctx->debug_file is
 * set once the debug file is found.  Separate from locate so that the fuzz
 * target can run it over malformed ELF files that have no banner.
 */
int ptm_locate_dwarf(struct hi_alloc_ctx *ctx, const struct hi_sym_module *libc,
		     struct ptm_layout *l, struct ptm_where *w);

/*
 * What ptmalloc_ops.locate found for ctx: the layout and the addresses of
 * main_arena and mp_, for tools that save heap images.  0, or -EINVAL when
 * locate has not succeeded.
 */
int ptm_located(const struct hi_alloc_ctx *ctx, struct ptm_layout *l,
		struct ptm_where *w);

extern const struct hi_allocator_ops ptmalloc_ops;

#endif
