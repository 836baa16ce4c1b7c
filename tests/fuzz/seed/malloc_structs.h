/* SPDX-License-Identifier: MIT */
/*
 * Structures shaped like glibc 2.36's malloc state on x86_64 (the member
 * names heapinspect looks up, at the offsets glibc has them), for a small
 * library with DWARF: the fuzz target's seed, and a unit test that checks
 * what symbols/ reads from it against what the compiler says (offsetof).
 */
#ifndef HEAPINSPECT_SEED_MALLOC_STRUCTS_H
#define HEAPINSPECT_SEED_MALLOC_STRUCTS_H

#include <stddef.h>

struct malloc_chunk {
	size_t mchunk_prev_size;
	size_t mchunk_size;
	struct malloc_chunk *fd;
	struct malloc_chunk *bk;
	struct malloc_chunk *fd_nextsize;
	struct malloc_chunk *bk_nextsize;
};

typedef struct malloc_chunk *mchunkptr;
typedef struct malloc_chunk *mfastbinptr;

struct malloc_state {
	int mutex;
	int flags;
	int have_fastchunks;
	mfastbinptr fastbinsY[10];
	mchunkptr top;
	mchunkptr last_remainder;
	mchunkptr bins[254];
	unsigned int binmap[4];
	struct malloc_state *next;
	struct malloc_state *next_free;
	size_t attached_threads;
	size_t system_mem;
	size_t max_system_mem;
};

struct malloc_par {
	unsigned long trim_threshold;
	size_t top_pad;
	size_t mmap_threshold;
	size_t arena_test;
	size_t arena_max;
	size_t thp_pagesize;
	size_t hp_pagesize;
	int hp_flags;
	int n_mmaps;
	int n_mmaps_max;
	int max_n_mmaps;
	int no_dyn_threshold;
	size_t mmapped_mem;
	size_t max_mmapped_mem;
	char *sbrk_base;
	size_t tcache_bins;
	size_t tcache_max_bytes;
	size_t tcache_count;
	size_t tcache_unsorted_limit;
};

#endif
