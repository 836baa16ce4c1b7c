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
 * malloc_chunk that the walker and the checks use.  On the DWARF path every
 * one of these comes from the target's own debug information; without it,
 * from the built-in tables (ptmalloc_builds.c), which were generated from
 * the DWARF of real builds.  Members marked optional have size 0 when the
 * glibc has no such member.  The walker follows what the layout has, never
 * a version number: without fastbins (glibc 2.43 removed them) it walks
 * none, and smblks and fsmblks stay 0, as int_mallinfo of 2.43 leaves them.
 */
struct ptm_layout {
	/* struct malloc_state */
	uint64_t state_size;
	struct ptm_field mutex;
	struct ptm_field flags;
	struct ptm_field fastbins; /* optional: fastbinsY[NFASTBINS], to 2.42 */
	struct ptm_field top;
	struct ptm_field bins;     /* bins[NBINS * 2 - 2] */
	struct ptm_field next;
	struct ptm_field attached_threads; /* optional */
	struct ptm_field system_mem;
	struct ptm_field max_system_mem;
	/* struct malloc_par */
	uint64_t par_size;
	struct ptm_field trim_threshold;
	struct ptm_field mmap_threshold;
	struct ptm_field hp_pagesize;      /* optional: 2.35 and later */
	struct ptm_field n_mmaps;
	struct ptm_field n_mmaps_max;
	struct ptm_field max_n_mmaps;
	struct ptm_field mmapped_mem;
	struct ptm_field max_mmapped_mem;
	struct ptm_field sbrk_base;
	/* optional: USE_TCACHE; tcache_small_bins from 2.42 on */
	struct ptm_field tcache_bins;
	struct ptm_field tcache_max_bytes; /* optional */
	struct ptm_field tcache_count;     /* optional */
	/*
	 * struct tcache_perthread_struct: entries[TCACHE_MAX_BINS], optional;
	 * its count bounds the tcache settings of malloc_par (ptm_verify).
	 */
	struct ptm_field tcache_entries;
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

/* One member of a struct and the value it starts with, in libc's file. */
struct ptm_init {
	uint16_t off;
	uint8_t size;
	uint64_t value;
};

#define PTM_MAX_INIT 32

/*
 * What one real build of glibc says about its allocator, generated from its
 * DWARF by hi_layoutgen (ptmalloc_gen.c): the layout, and the initial value
 * of every member of mp_ as its file holds it (the compile-time defaults).
 */
struct ptm_build {
	const char *name;      /* which build: distribution, package, version */
	const char *build_id;  /* of that build's libc, for the record */
	unsigned major, minor; /* its glibc version */
	struct ptm_layout layout;
	struct ptm_init par_init[PTM_MAX_INIT];
	unsigned npar_init;
	/*
	 * 0: this build's own table, proven on it.  1: the table of another
	 * build, mapped onto this version from glibc's sources (made by
	 * ptm_builtin_for, never generated).
	 */
	int mapped;
};

/* The builds the tables were generated from (ptmalloc_builds.c). */
extern const struct ptm_build ptm_builds[];
extern const unsigned ptm_nbuilds;

/*
 * The built-in table for glibc major.minor (ptmalloc_versions.c): the build
 * whose struct malloc_state, malloc_par and malloc_chunk are those of that
 * version, with mapped set when it is not a build of that very version.
 * Return it (a mapped one lives until the next call), or NULL when
 * heapinspect knows no table for the version; *range is set to the
 * versions that are known, proven and mapped, for the messages.
 */
const struct ptm_build *ptm_builtin_for(unsigned major, unsigned minor,
					const char **range);

/*
 * The DWARF path: layout from the types of main_arena and mp_.  what names
 * the member that could not be found (a buffer of whatsize).  Return 0,
 * -HI_E_NOSYM, -HI_E_LAYOUT or -HI_E_DWARF.
 */
int ptm_layout_dwarf(const struct hi_sym_type *state,
		     const struct hi_sym_type *par, struct ptm_layout *l,
		     char *what, size_t whatsize);

/*
 * The DWARF path, optional members outside main_arena's and mp_'s types:
 * struct tcache_perthread_struct's entries from libc's malloc.c unit.  Left
 * with size 0 when the debug information has no such type.
 */
void ptm_layout_tcache(const struct hi_sym_module *libc, struct ptm_layout *l);

/*
 * The target's libc file as the symbol-less finder sees it (ptmalloc.c backs
 * it with symbols/, unit tests with byte buffers): its relative relocations
 * (where, value), its initial contents at an address, and its writable
 * sections with contents.  Addresses are the target's.  Each returns 0, what
 * fn returned when non-zero, or a negative code.
 */
struct ptm_image {
	int (*each_relative)(void *arg,
			     int (*fn)(hi_addr_t where, hi_addr_t value,
				       void *cb),
			     void *cb);
	int (*read)(void *arg, hi_addr_t addr, void *buf, size_t len);
	int (*each_data)(void *arg,
			 int (*fn)(hi_addr_t addr, const unsigned char *data,
				   size_t size, void *cb),
			 void *cb);
	void *arg;
};

#define PTM_MAX_CAND 8

/*
 * Candidates for main_arena in libc's file, without symbols: main_arena is
 * the only static struct malloc_state, and its initializer (malloc.c,
 * 2.26 to 2.44: .mutex, .next = &main_arena, .attached_threads = 1) makes
 * the linker emit a relative relocation at main_arena.next whose value is
 * main_arena itself, while every other byte of it starts as zero (pwndbg
 * finds it the same way).  Fill out[] with at most max addresses.  Return
 * the number found, or a negative code from the image.
 */
int ptm_find_arena(const struct ptm_layout *l, const struct ptm_image *img,
		   hi_addr_t *out, int max);

/*
 * Candidates for mp_ in libc's file: the places in its writable data that
 * hold, at the build's offsets, every default value mp_ starts with
 * (malloc.c: DEFAULT_TOP_PAD, DEFAULT_MMAP_MAX, DEFAULT_MMAP_THRESHOLD,
 * DEFAULT_TRIM_THRESHOLD, arena_test and the tcache settings).  The file is
 * read, not memory, so mallopt and tunables cannot have changed them yet.
 * Return the number found (at most max), or a negative code.
 */
int ptm_find_par(const struct ptm_build *b, const struct ptm_image *img,
		 hi_addr_t *out, int max);

/* The checks a candidate pair passed or failed, for the user. */
struct ptm_checks {
	struct hi_check v[HI_MAX_CHECKS];
	unsigned n;
	unsigned passed;
};

/*
 * Verify in the target's memory that w names main_arena and mp_: both in
 * libc's writable data ([lib_lo, lib_hi)), the arena ring closes on itself,
 * every bin is empty and points at itself or is a consistent list head,
 * top lies inside [heap], system_mem agrees with the brk area, mp_.sbrk_base
 * is the start of [heap], every other arena's heap points back at it, and
 * mp_'s counters agree with one another.  The target must be stopped.
 * Return 1 when every check passed, 0 when one failed (c says which and
 * why), or a negative code when the reader failed for another reason than
 * an unmapped address.
 */
int ptm_verify(const struct ptm_layout *l, const struct ptm_where *w,
	       hi_addr_t lib_lo, hi_addr_t lib_hi, const struct hi_reader *r,
	       const struct hi_maps *maps, struct ptm_checks *c);

/*
 * Verify every pair of candidates.  Return how many pairs passed every
 * check: with 1, *found is that pair and *c its checks; with 0, *found and
 * *c are the pair that passed the most checks, for the message; more than 1
 * is ambiguous and must not be used.  Or a negative code from the reader.
 */
int ptm_select(const struct ptm_layout *l, const hi_addr_t *arenas,
	       int narenas, const hi_addr_t *pars, int npars,
	       hi_addr_t lib_lo, hi_addr_t lib_hi, const struct hi_reader *r,
	       const struct hi_maps *maps, struct ptm_where *found,
	       struct ptm_checks *c);

/* One entry of the layout cache (ptmalloc_cache.c). */
struct ptm_cached {
	char located_by[16];  /* "dwarf" or "debuginfod" */
	struct ptm_layout l;
	uint64_t arena_off;   /* main_arena - the libc's lowest address */
	uint64_t mp_off;
};

/*
 * Load dir's entry for build_id.  Return 0, -ENOENT when there is none,
 * -HI_E_CORRUPT with why set when the file is not a valid entry (it must
 * then be ignored), or another -errno.
 */
int ptm_cache_load(const char *dir, const char *build_id,
		   struct ptm_cached *out, char *why, size_t whysize);

/* Write dir's entry for build_id atomically.  Return 0 or -errno. */
int ptm_cache_store(const char *dir, const char *build_id,
		    const struct ptm_cached *in);

/* Remove dir's entry for build_id.  Return 0 or -errno. */
int ptm_cache_remove(const char *dir, const char *build_id);

/* A member's value from a copy of its struct (sizes 4 and 8; else 0). */
uint64_t ptm_get(const unsigned char *buf, const struct ptm_field *f);
/* Element i of an array member of pointers, such as bins or fastbinsY. */
uint64_t ptm_get_elem(const unsigned char *buf, const struct ptm_field *f,
		      unsigned ptr_size, uint64_t i);
/* qsort's comparison of two hi_addr_t. */
int ptm_addr_cmp(const void *x, const void *y);

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
 * over every arena, in malloc.c of 2.31 to 2.43), and each arena's own.  The
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
 * How many free chunks all lists of all arenas together may hold: as many
 * as fit in the writable mappings (the bound on every walk).
 */
uint64_t ptm_chunk_budget(const struct ptm_layout *l,
			  const struct hi_maps *maps);

/*
 * Walk the free lists of the arena at addr exactly as int_mallinfo does
 * (PTM_LISTS), lock or no lock, every chunk checked; *left is the budget
 * of ptm_chunk_budget, counted down.  The target must be stopped.  Return 0
 * with a filled in (a->status -HI_E_CORRUPT with bad_addr and why when a
 * list is corrupt), or -errno from the reader.
 */
int ptm_walk_arena(const struct ptm_layout *l, const struct ptm_where *w,
		   const struct hi_reader *r, const struct hi_maps *maps,
		   hi_addr_t addr, uint64_t *left, struct hi_arena *a);

/*
 * bin_index of malloc.c for a chunk of sz bytes (smallbin_index and
 * largebin_index_64, 64-bit targets, 2.26 to 2.43).
 */
uint64_t ptm_bin_index(uint64_t sz);

/*
 * Whether calling glibc's mallinfo2()/mallinfo() (kind HI_CALL_INFO) or
 * malloc_trim() (HI_CALL_TRIM) in the stopped target is sound
 * (ptmalloc_sound.c).  heap is the read of the same stop: an arena found
 * corrupt is marked so there.  Return 0, -HI_E_CORRUPT, or -errno.
 */
int ptm_call_sound(const struct ptm_layout *l, const struct ptm_where *w,
		   const struct hi_reader *r, const struct hi_maps *maps,
		   int kind, struct hi_heap *heap);

/*
 * Release every arena lock that is held (the mutex word set to 0, as
 * __libc_lock_unlock does with no waiter), and list_lock and
 * free_list_lock when given (0: not known).  Return the number released,
 * with *first the address of the first, or a negative code.
 */
int ptm_unlock_all(const struct ptm_layout *l, const struct ptm_where *w,
		   const struct hi_reader *r, const struct hi_maps *maps,
		   const struct hi_writer *wr, const hi_addr_t *globals,
		   int nglobals, hi_addr_t *first);

/*
 * Count the arena's free chunks by reading its heap from end to end
 * instead of following its lists: a chunk is in a bin exactly when the
 * next chunk's PREV_INUSE bit is clear, and the fastbins are followed
 * through a table of the heap's small chunks made on the way.  Large heaps
 * are read by several threads when the reader has read_direct.  The caller
 * has filled a's counters from the arena struct st and its top.  Return 0
 * with a's list counts set (or a->status -HI_E_CORRUPT when a fastbin
 * leaves the heap's chunks), -ENOTSUP when the heap cannot be swept (an
 * unknown layout, a non-contiguous main arena, anything unexpected on the
 * way: the lists must be walked), -EAGAIN when if_cheaper is set and
 * walking the lists should cost less (judged from a few short reads), or
 * -errno from the reader.
 */
int ptm_sweep(const struct ptm_layout *l, const struct ptm_where *w,
	      const struct hi_reader *r, const struct hi_maps *maps,
	      const unsigned char *st, hi_addr_t top, int if_cheaper,
	      struct hi_arena *a);

/*
 * Stop the threads ptm_sweep keeps to help the next sweeps (they wait,
 * blocked, until then).  Call it once the target runs again.
 */
void ptm_sweep_end(void);

/* MALLOC_ALIGNMENT, MINSIZE, and chunksize() of a size field. */
uint64_t ptm_align(const struct ptm_layout *l);
uint64_t ptm_minsize(const struct ptm_layout *l);

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
