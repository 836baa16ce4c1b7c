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

/* The allocator's callable functions in the target; 0 when absent. */
struct hi_alloc_funcs {
	hi_addr_t mallinfo2;   /* glibc 2.33 and later */
	hi_addr_t mallinfo;    /* int fields: they wrap above 2 GiB */
	hi_addr_t malloc_trim;
	hi_addr_t restorer;    /* glibc's __restore_rt (sa_restorer) */
	int restorer_by_code;  /* found by its code, not by its symbol */
	hi_addr_t (*entries)[2]; /* exported entry points, malloc'd */
	int nentries;
};

void hi_alloc_funcs_free(struct hi_alloc_funcs *f);
/* One check of an address found without symbols, for the user. */
struct hi_check {
	const char *name;
	int ok;
	char detail[192];
};

#define HI_MAX_CHECKS 12

/* How locate may find the allocator's state (enum hi_locate_flags). */
enum {
	HI_LOCATE_DWARF = 1,    /* local debug files and debuginfod */
	HI_LOCATE_BUILTIN = 2,  /* built-in tables, no symbols */
	HI_LOCATE_CACHE = 4,    /* the layout cache, when dir is set */
	HI_LOCATE_EXPLAIN = 8,  /* verify DWARF addresses too, to show it */
};

/* What an allocator backend is given and keeps between calls. */
struct hi_alloc_ctx {
	pid_t pid;
	struct hi_sym *sym;               /* modules of the target */
	const struct hi_reader *reader;   /* set before any read */
	const struct hi_maps *maps;       /* set before any read */
	int walk;                         /* 0 auto, 1 lists only, 2 sweep
					     only (tests compare them) */
	void *priv;                       /* the backend's own state */
	unsigned flags;                   /* HI_LOCATE_*, set by the caller */
	const char *cache_dir;            /* the layout cache, or NULL */
	/* What probe/locate found, for the user. */
	char version[32];                 /* e.g. "2.36" */
	char libc_path[4096];
	char build_id[129];
	char debug_file[4096];
	const char *located_by;           /* "dwarf", "debuginfod", "builtin" */
	int from_cache;                   /* the layout came from the cache */
	char cache_note[512];             /* a cache file ignored, and why */
	char table[256];                  /* the built-in table used */
	int table_mapped;                 /* ... mapped from the sources,
					     not proven on a real build */
	char tables[256];                 /* every version with a table */
	/* Why the methods tried before the one that worked failed. */
	char tried[3][512];
	unsigned ntried;
	int debuginfod_err;               /* -errno when debuginfod failed */
	/* Where each address came from, once verified or found. */
	hi_addr_t main_arena, mp;
	char main_arena_how[256], mp_how[256];
	struct hi_check checks[HI_MAX_CHECKS];
	unsigned nchecks;
	int verified;                     /* every check passed */
	/* Why probe said no, or what locate missed (a module or file name). */
	char why[4096];
};

struct hi_writer;

/* What a call into the allocator walks (call_sound's kind). */
enum hi_call_kind {
	HI_CALL_INFO = 1, /* mallinfo2(), mallinfo(): the free lists, top */
	HI_CALL_TRIM,     /* malloc_trim(): that, merging and madvise */
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
	 * Prove that the state locate found is the allocator's, where it was
	 * found without symbols (or always, with HI_LOCATE_EXPLAIN).  The
	 * target must be stopped.  Return 0 (ctx->checks say what passed),
	 * -HI_E_BUSY when the checks failed while an arena was locked (try
	 * again), -HI_E_VERIFY when no candidate passed, or -errno.
	 */
	int (*verify)(struct hi_alloc_ctx *ctx, int busy_hint);
	/*
	 * Optional: try verify's proof before the stop, on the running
	 * target, so that the stop is shorter.  Return 1 when it passed
	 * (verify then passes without reading), 0 when it did not or cannot
	 * be made so (verify makes it in the stop; nothing is kept from the
	 * attempt).
	 */
	int (*preverify)(struct hi_alloc_ctx *ctx);
	/*
	 * Whether the allocator may be in the middle of an update: return the
	 * number of arenas whose lock is held (0: quiet), or a negative code.
	 * The target must be stopped.
	 */
	int (*busy)(struct hi_alloc_ctx *ctx);
	/*
	 * The address ranges of the allocator's own code, and of what it
	 * calls to grow its heap, for checking where the threads stopped.
	 * Return the count (ranges malloc'd) or < 0.
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
	/*
	 * The allocator's functions that can be called in the target, and
	 * the address ranges of its exported entry points (for checking
	 * where threads stopped when there is no debug information).  Needs
	 * only probe; the target need not be stopped.  restorer_code is the
	 * architecture's rt_sigreturn sequence, to find the C library's
	 * signal return path when its symbol is not at hand.  Return 0 or a
	 * negative code; free out with hi_alloc_funcs_free.
	 */
	int (*functions)(struct hi_alloc_ctx *ctx,
			 const unsigned char *restorer_code, size_t len,
			 struct hi_alloc_funcs *out);
	/*
	 * The number of the allocator's global locks that are held (glibc:
	 * list_lock and free_list_lock), 0, or a negative code.  Needs a
	 * successful locate; -HI_E_NOSYM when the debug information does not
	 * have them.  The target must be stopped.
	 */
	int (*global_locks)(struct hi_alloc_ctx *ctx);
	/*
	 * Whether a call of the allocator's function of kind (enum
	 * hi_call_kind) can be made in the target without faulting,
	 * aborting or giving back memory in use: walk exactly what that
	 * function walks, with every check the allocator itself makes on
	 * the way, every pointer checked against the mappings.  Needs a
	 * successful locate; the target must be stopped, no allocator lock
	 * held.  heap is the read of the same stop (read): an arena found
	 * corrupt is marked so in it (status, bad_addr, why; complete
	 * cleared).  Return 0 when sound, -HI_E_CORRUPT (heap says where,
	 * heap->why for the ring), or -errno.
	 */
	int (*call_sound)(struct hi_alloc_ctx *ctx, int kind,
			  struct hi_heap *heap);
	/*
	 * Release every allocator lock that is held, for a call undone part
	 * way: when none was held before it and only its thread ran, every
	 * one held now is the call's.  Needs a successful locate; the target
	 * must be stopped.  Return the number released (*first: the address
	 * of the first), or a negative code.
	 */
	int (*unlock_all)(struct hi_alloc_ctx *ctx, const struct hi_writer *w,
			  hi_addr_t *first);
	void (*release)(struct hi_alloc_ctx *ctx);
};

/* Allocator backends, in the order they are probed.  NULL-terminated. */
extern const struct hi_allocator_ops *const hi_allocators[];

/*
 * How platform code writes into the target (only the frame of an injected
 * call, on a thread's stack): the caller supplies it, as it does the reader.
 * write() returns 0 or -errno, never a partial write as success.
 */
struct hi_writer {
	int (*write)(void *arg, hi_addr_t addr, const void *buf, size_t len);
	void *arg;
};

/* A function to call in the target. */
struct hi_call {
	hi_addr_t fn;
	hi_addr_t restorer;  /* the C library's rt_sigreturn code */
	uint64_t args[4];
	unsigned nargs;
	size_t ret_size;     /* > 0: returns a struct this big in memory */
};

/* How well a thread suits hosting a call (call_prepare). */
enum hi_call_rank {
	HI_HOST_NO = 0,        /* cannot: see why */
	HI_HOST_RESTARTBLOCK,  /* in a sleep that restarts by restart_block */
	HI_HOST_USER,          /* stopped in its own code */
	HI_HOST_SYSCALL,       /* blocked in a system call: best */
};

struct hi_call_state; /* the architecture's, opaque */

/* An architecture: registers of a stopped thread, injected calls. */
struct hi_arch_ops {
	const char *name;
	unsigned e_machine;
	unsigned ptr_size;
	/* The program counter of stopped thread tid.  0 or -errno. */
	int (*get_pc)(pid_t tid, hi_addr_t *pc);

	/*
	 * Injected calls.  The sequence, driven by inspector/, with the
	 * target's threads all stopped: call_prepare on candidate threads,
	 * call_start on the chosen one, then the thread runs alone (system
	 * call stops on) until call_is_return says it is at the return, then
	 * call_returned, one more step to the system call's exit, and
	 * call_finish.  call_abandon restores the thread at any stop that
	 * is not a system call entry (at one, call_skip_syscall first, then
	 * a step to its exit).  Below is the contract of each.
	 *
	 * The bytes of the architecture's rt_sigreturn sequence, by which
	 * the C library's signal return path is found and checked.
	 */
	const unsigned char *restorer_code;
	size_t restorer_len;
	/*
	 * Save everything of stopped thread tid that a call changes
	 * (registers, extended state, signal mask, the stack bytes the frame
	 * will cover) and rank the thread as a host.  Changes nothing in
	 * the target.  Return 0 with *out set (free with call_free) and
	 * *rank (HI_HOST_NO with why set when it cannot host), or < 0.
	 */
	int (*call_prepare)(pid_t tid, const struct hi_call *call,
			    const struct hi_reader *r,
			    const struct hi_maps *maps,
			    struct hi_call_state **out, int *rank,
			    char *why, size_t why_size);
	/*
	 * Write the call's frame on the thread's stack and point the thread
	 * at the function, with every signal blocked.  From here on the
	 * thread, if released (heapinspect killed), runs the function and
	 * returns to exactly its saved state by itself.  0 or < 0.
	 */
	int (*call_start)(struct hi_call_state *st, const struct hi_writer *w);
	/* At a system call entry stop: 1 when it is the call's return. */
	int (*call_is_return)(const struct hi_call_state *st, uint64_t nr,
			      hi_addr_t ip, hi_addr_t sp);
	/*
	 * At the return: copy the struct result (ret_size bytes) to result,
	 * put back the extended state and signal mask, and make the system
	 * call a no-op.  0 or < 0.
	 */
	int (*call_returned)(struct hi_call_state *st,
			     const struct hi_reader *r, void *result);
	/*
	 * At the next stop (that system call's exit): every register and
	 * the stack bytes exactly as saved, checked.  0, -HI_E_RESTORE, or
	 * < 0.
	 */
	int (*call_finish)(struct hi_call_state *st, const struct hi_writer *w);
	int (*call_abandon)(struct hi_call_state *st,
			    const struct hi_writer *w);
	/*
	 * At a system call entry stop during the call: make that system call
	 * not run (it fails), so that at its exit stop the call can be
	 * abandoned before the system call did anything.  0 or < 0.
	 */
	int (*call_skip_syscall)(struct hi_call_state *st);
	void (*call_free)(struct hi_call_state *st);
	/* The name of system call nr, for reports, or NULL. */
	const char *(*syscall_name)(uint64_t nr);
};

extern const struct hi_arch_ops *const hi_arches[];

/* The architecture heapinspect itself runs on, or NULL. */
const struct hi_arch_ops *hi_arch_host(void);

#endif
