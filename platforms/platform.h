/* SPDX-License-Identifier: MIT */
/*
 * What is specific to an allocator or an architecture, behind ops tables
 * chosen at run time (elfutils backends/, libunwind's accessors).  Nothing
 * here prints or exits.  Platform code reads the target only through the
 * struct hi_reader the caller supplies.
 */
#ifndef HEAPINSPECT_PLATFORM_H
#define HEAPINSPECT_PLATFORM_H

#include <stdint.h>
#include <sys/types.h>

#include "heapinspect/hi.h"
#include "symbols.h"

/* The ten figures of glibc's struct mallinfo2, in glibc's order. */
struct hi_mallinfo {
	uint64_t arena;    /* non-mmapped space allocated from the system */
	uint64_t ordblks;  /* number of free chunks */
	uint64_t smblks;   /* number of free fastbin blocks */
	uint64_t hblks;    /* number of mmapped regions */
	uint64_t hblkhd;   /* space in mmapped regions */
	uint64_t usmblks;  /* always 0 */
	uint64_t fsmblks;  /* space in freed fastbin blocks */
	uint64_t uordblks; /* total allocated space */
	uint64_t fordblks; /* total free space */
	uint64_t keepcost; /* top-most, releasable space */
};

/* What one arena holds.  Figures are valid only when status is 0. */
struct hi_arena {
	hi_addr_t addr;
	int is_main;
	/*
	 * 0, -HI_E_BUSY when its lock was held in the last attempt (its lists
	 * may be half updated, so they were not read), -HI_E_CORRUPT with
	 * bad_addr and why set, or -errno from the reader.
	 */
	int status;
	hi_addr_t bad_addr;
	char why[192];
	uint64_t system_mem;
	uint64_t max_system_mem;
	uint64_t top_size;
	uint64_t fast_bytes; /* free chunks in fastbins */
	uint64_t fast_chunks;
	uint64_t bin_bytes;  /* free chunks in the regular bins, top excluded */
	uint64_t bin_chunks;
	uint64_t attached_threads;
	int has_attached_threads; /* the field exists in this glibc */
};

/* A heap report: the mallinfo2 figures are valid only when complete. */
struct hi_heap {
	struct hi_mallinfo mi;
	int complete;           /* every arena was read */
	struct hi_arena *arenas; /* malloc'd */
	size_t narenas;
	uint64_t n_mmaps;        /* mp_: chunks served by mmap */
	uint64_t mmapped_mem;
	uint64_t max_mmapped_mem;
	/* When the ring of arenas itself is corrupt: where and why. */
	hi_addr_t bad_addr;
	char why[192];
};

void hi_heap_free(struct hi_heap *heap);

/* What an allocator backend is given and keeps between calls. */
struct hi_alloc_ctx {
	pid_t pid;
	struct hi_sym *sym;               /* modules of the target */
	const struct hi_reader *reader;   /* set before any read */
	const struct hi_maps *maps;       /* set before any read */
	void *priv;                       /* the backend's own state */
	/* What probe/locate found, for the user. */
	char version[32];                 /* e.g. "2.36" */
	char libc_path[4096];
	char build_id[129];
	char debug_file[4096];
	/* Why probe said no, or what locate missed (a module or file name). */
	char why[4096];
};

struct hi_allocator_ops {
	const char *name;
	/*
	 * Whether the target's malloc is this allocator: 1 yes, 0 no (why
	 * set when another allocator was recognised), or a negative code.
	 * Needs only the module list; the target need not be stopped.
	 */
	int (*probe)(struct hi_alloc_ctx *ctx);
	/*
	 * Find the allocator's state and layout from debug information.  The
	 * target need not be stopped.  Return 0 or a negative code, with why
	 * naming what is missing.
	 */
	int (*locate)(struct hi_alloc_ctx *ctx);
	/*
	 * Whether the allocator may be in the middle of an update: return the
	 * number of arenas whose lock is held (0: quiet), or a negative code.
	 * The target must be stopped.
	 */
	int (*busy)(struct hi_alloc_ctx *ctx);
	/*
	 * The address ranges of the allocator's own code, for checking where
	 * the threads stopped.  Return the count (ranges malloc'd) or < 0.
	 */
	int (*code_ranges)(struct hi_alloc_ctx *ctx, hi_addr_t (**ranges)[2]);
	/*
	 * Read every arena and compute the figures.  The target must be
	 * stopped.  Arenas whose lock is held are not walked when
	 * skip_locked is set.  Return 0 (heap->complete tells whether every
	 * arena was read) or a negative code when nothing could be read.
	 */
	int (*read)(struct hi_alloc_ctx *ctx, int skip_locked,
		    struct hi_heap *heap);
	void (*release)(struct hi_alloc_ctx *ctx);
};

/* Allocator backends, in the order they are probed.  NULL-terminated. */
extern const struct hi_allocator_ops *const hi_allocators[];

/* An architecture: registers of a stopped thread. */
struct hi_arch_ops {
	const char *name;
	unsigned e_machine;
	unsigned ptr_size;
	/* The program counter of stopped thread tid.  0 or -errno. */
	int (*get_pc)(pid_t tid, hi_addr_t *pc);
};

extern const struct hi_arch_ops *const hi_arches[];

/* The architecture heapinspect itself runs on, or NULL. */
const struct hi_arch_ops *hi_arch_host(void);

#endif
