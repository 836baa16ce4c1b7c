/* SPDX-License-Identifier: MIT */
/*
 * Leaks: which in-use blocks of a stopped process nothing points to, by
 * valgrind memcheck's rules (memcheck/mc_leakcheck.c and the "Memory leak
 * detection" section of its manual, valgrind 3.19).  docs/leaks.md says
 * how `heapinspect leaks` puts the pieces together:
 *
 *   stop -> the allocator's chunk walk gives the in-use blocks
 *        -> roots (registers, stacks, modules' data, TLS, anonymous maps)
 *        -> hi_leak_mark -> the four kinds -> records -> release
 *
 * The mark is pure code over arrays of addresses and a struct hi_reader:
 * no ptrace, no /proc, no printing; the unit tests run it over byte
 * buffers (tests/unit/test_leaks_mark.c), as libmemunreachable keeps its
 * HeapWalker apart from the process plumbing.
 */
#ifndef HEAPINSPECT_LEAKS_H
#define HEAPINSPECT_LEAKS_H

#include <stddef.h>
#include <stdint.h>

#include "heapinspect/hi.h"

/*
 * The four kinds, numbered as memcheck's Reachedness (mc_include.h), so
 * that records sort as valgrind's do.  A block's kind is final only after
 * hi_leak_mark returns.
 *   REACHABLE: a chain of start pointers from a root (cases 1, 2 of the
 *              manual's nine), or interior pointers a heuristic accepted;
 *   POSSIBLE:  reached from a root, but only through at least one
 *              interior pointer (cases 5 to 8), and every block reached
 *              from such a block;
 *   INDIRECT:  not reached from any root, pointed to by a DEFINITE or
 *              INDIRECT block (cases 4, 9);
 *   DEFINITE:  not reached, and no other unreached block points to it
 *              (case 3), or the first of a cycle in address order.
 */
enum hi_leak_kind {
	HI_LEAK_REACHABLE = 0,
	HI_LEAK_POSSIBLE = 1,
	HI_LEAK_INDIRECT = 2,
	HI_LEAK_DEFINITE = 3,
};

/*
 * memcheck's leak-check heuristics (--leak-check-heuristics): interior
 * pointers that count as start pointers.  memcheck's default is all four
 * (MC_(clo_leak_check_heuristics) in mc_main.c, 3.19), and so is ours.
 */
enum hi_leak_heuristic {
	HI_LEAK_H_NONE = 0,
	HI_LEAK_H_STDSTRING = 1,  /* a pointer 3 words in: length capacity
				     refcount chars, as old libstdc++ */
	HI_LEAK_H_LENGTH64 = 2,   /* 8 bytes in, after (size - 8) */
	HI_LEAK_H_NEWARRAY = 3,   /* 8 bytes in, after an element count */
	HI_LEAK_H_MULTIPLEINHERITANCE = 4, /* at a second vtable pointer */
	HI_LEAK_H_COUNT = 5,
};

#define HI_LEAK_H_ALL                                                       \
	((1u << HI_LEAK_H_STDSTRING) | (1u << HI_LEAK_H_LENGTH64) |          \
	 (1u << HI_LEAK_H_NEWARRAY) | (1u << HI_LEAK_H_MULTIPLEINHERITANCE))

/*
 * An in-use block: the user address malloc returned and the bytes that
 * belong to it.  memcheck knows the size asked for; from outside only the
 * usable size is known (malloc_usable_size: a glibc chunk's size less its
 * header), so a pointer into the last few bytes past the request counts
 * here as an interior pointer where memcheck sees none.  Blocks are given
 * sorted by addr and must not overlap.  Free chunks (bins, fastbins, a
 * thread's tcache) and the allocator's own structures (a tcache struct)
 * are not blocks.
 */
struct hi_leak_block {
	hi_addr_t addr;
	uint64_t size;
};

/*
 * A root: memory scanned as a whole, [start, end).  label is the caller's
 * (an index into its own table of "stack of thread 4242", ...); the mark
 * only hands it back through hi_leak_from.
 */
struct hi_leak_range {
	hi_addr_t start;
	hi_addr_t end;
	uint32_t label;
};

/* A root that is a value, not memory: a general register of a thread. */
struct hi_leak_value {
	uint64_t value;
	uint32_t label;
};

/* What map_flags says of an address (for the multipleinheritance test). */
enum {
	HI_LEAK_MAP_R = 1,
	HI_LEAK_MAP_X = 4,
	HI_LEAK_MAP_FILE = 8, /* mapped from a file (a module) */
};

struct hi_leak_env {
	/* Reads the target (stopped) or a saved image: roots and blocks. */
	const struct hi_reader *reader;
	/* Set of (1 << HI_LEAK_H_*); HI_LEAK_H_ALL is memcheck's default. */
	unsigned heuristics;
	/*
	 * Optional: how many bytes fewer than size the program may have
	 * asked for (glibc: 15 for most chunks, 24 for the smallest, a page
	 * less 1 for an mmapped one); the heuristics that compare a length
	 * word with the size asked for accept any size in that span.  NULL:
	 * the sizes are exact.
	 */
	uint64_t (*slack)(void *arg, const struct hi_leak_block *b);
	/*
	 * Optional: the HI_LEAK_MAP_* flags of the mapping holding addr, 0
	 * when none, and its end in *end.  Without it the
	 * multipleinheritance heuristic (which asks whether words point at
	 * code in a module) accepts nothing.
	 */
	unsigned (*map_flags)(void *arg, hi_addr_t addr, hi_addr_t *end);
	void *arg;
};

/* LEAK SUMMARY: blocks and bytes of each kind, as memcheck prints it. */
struct hi_leak_sum {
	uint64_t blocks[4]; /* by enum hi_leak_kind */
	uint64_t bytes[4];
	/* "of which reachable via heuristic" (memcheck counts any block
	 * that still carries a heuristic, whatever its kind) */
	uint64_t heur_blocks[HI_LEAK_H_COUNT];
	uint64_t heur_bytes[HI_LEAK_H_COUNT];
};

struct hi_leak_result {
	size_t n;          /* blocks */
	uint8_t *state;    /* per block: kind (bits 0-1), pending (bit 2),
			      heuristic (bits 3-5) */
	uint64_t *aux;     /* per block, by kind: see hi_leak_from */
	struct hi_leak_sum sum;
	uint64_t scanned_bytes; /* root and block bytes read and scanned */
	uint64_t skipped_bytes; /* root or block bytes the reader could not
				   read (-EFAULT): left out, as memcheck
				   skips what faults */
	hi_addr_t first_skipped; /* the first of them, 0 if none */
};

/*
 * Classify every block.  Every aligned 8-byte word of the root ranges,
 * then every root value, then every word of each reached block, is
 * looked up among the blocks: at a block's addr it is a start pointer,
 * inside it an interior pointer.  Then the unreached blocks are grouped
 * into cliques in address order (mc_leakcheck.c): each one still
 * unreached becomes DEFINITE and every unreached block it reaches
 * INDIRECT, its bytes counted to it.
 *
 * Memory: 9 bytes a block in out, and a work stack of at most 4 bytes a
 * block, besides a 64 KiB buffer; every block is scanned at most twice
 * (reached as possible, then raised to reachable; or only in its
 * clique) and every root once.  The target
 * must be stopped (or the reader a saved image).  Return 0 with out set
 * (free with hi_leak_result_free), -EINVAL when blocks are not sorted or
 * overlap, -ENOMEM, or the reader's -errno other than -EFAULT (-ESRCH:
 * the target is gone).
 */
int hi_leak_mark(const struct hi_leak_block *blocks, size_t n,
		 const struct hi_leak_range *roots, size_t nroots,
		 const struct hi_leak_value *values, size_t nvalues,
		 const struct hi_leak_env *env, struct hi_leak_result *out);

void hi_leak_result_free(struct hi_leak_result *r);

static inline enum hi_leak_kind hi_leak_kind_of(const struct hi_leak_result *r,
						size_t i)
{
	return (enum hi_leak_kind)(r->state[i] & 3);
}

static inline enum hi_leak_heuristic
hi_leak_heuristic_of(const struct hi_leak_result *r, size_t i)
{
	return (enum hi_leak_heuristic)((r->state[i] >> 3) & 7);
}

/* Why a block has its kind: what first gave it that kind. */
struct hi_leak_from {
	enum {
		HI_LEAK_FROM_NONE,  /* DEFINITE: nothing outside its clique */
		HI_LEAK_FROM_ROOT,  /* a word of a root range, at addr */
		HI_LEAK_FROM_VALUE, /* root value number index */
		HI_LEAK_FROM_BLOCK, /* a word of block number index */
	} type;
	hi_addr_t addr;
	size_t index;
};

/*
 * For a REACHABLE or POSSIBLE block, the root word, root value or block
 * that made it so (following BLOCK links from a reached block walks back
 * to a root: the chain --explain prints); for an INDIRECT block, the lost
 * block that points to it; for a DEFINITE one, NONE.
 */
struct hi_leak_from hi_leak_from(const struct hi_leak_result *r, size_t i);

/*
 * For a DEFINITE block, the bytes of the INDIRECT blocks counted to it
 * (memcheck's "48 (16 direct, 32 indirect) bytes"); 0 for other kinds.
 */
uint64_t hi_leak_indirect_bytes(const struct hi_leak_result *r, size_t i);

/*
 * Roots (inspector/leaks_roots.c): from what inspector/ owns in the stop
 * (the maps, the threads' registers and stack pointers), what symbols/
 * answers (each thread's TLS blocks, hi_tls_thread) and what the
 * allocator backend says is its own (its heaps, mmapped chunks, main_arena
 * and mp_ in libc's data, which hold pointers to free chunks that would
 * read as interior pointers), as memcheck takes them
 * (scan_memory_root_set): every readable and writable mapping, device
 * files but /dev/zero left out, less the allocator's memory, each
 * thread's stack only from its stack pointer less the red zone up, and
 * every thread's general registers.
 */

/* One line of /proc/PID/maps. */
struct hi_leak_map {
	hi_addr_t start, end;
	unsigned prot;        /* HI_PROT_* */
	int shared;           /* 's' */
	uint64_t offset;
	uint64_t inode;
	const char *path;     /* "" when anonymous; "[stack]", "[heap]" ... */
	int device;           /* a character or block device's mapping:
				 hi_leak_parse_maps guesses from the path
				 (under /dev/ but /dev/zero, /dev/shm/,
				 /dev/hugepages/); a caller that can stat
				 the file (/proc/PID/map_files) knows */
};

/*
 * Parse the text of /proc/PID/maps.  Return the count with *out malloc'd
 * (its paths point into text, which must outlive it), or -EINVAL naming
 * the first bad line in *bad_line, or -ENOMEM.
 */
long hi_leak_parse_maps(char *text, struct hi_leak_map **out,
			size_t *bad_line);

/* A thread in the stop: its stack pointer and general registers. */
#define HI_LEAK_NREGS 16
struct hi_leak_thread {
	int tid;
	hi_addr_t sp;
	uint64_t regs[HI_LEAK_NREGS]; /* rax rbx rcx rdx rsi rdi rbp rsp r8
					 .. r15, as memcheck scans them */
};

/* A span of memory, of a thread (tls) or of nobody (tid 0). */
struct hi_leak_span {
	hi_addr_t start, end;
	int tid;
};

/* What a root is, for --explain: label k of struct hi_leak_range. */
struct hi_leak_label {
	enum hi_leak_root_kind {
		HI_ROOT_REGISTER, /* reg of thread tid */
		HI_ROOT_STACK,    /* the stack of thread tid */
		HI_ROOT_TLS,      /* static TLS or struct pthread of tid */
		HI_ROOT_MODULE,   /* writable data of path (.data, .bss, relro) */
		HI_ROOT_BRK,      /* the brk area beyond malloc's heap */
		HI_ROOT_ANON,     /* an anonymous mapping [start, end) */
		HI_ROOT_FILE,     /* a writable mapping of a file, not a module */
	} kind;
	int tid;
	unsigned reg;
	const char *path;
	hi_addr_t start, end;
};

struct hi_leak_roots {
	struct hi_leak_range *ranges; /* sorted, disjoint */
	size_t nranges;
	struct hi_leak_value *values;
	size_t nvalues;
	struct hi_leak_label *labels;
	size_t nlabels;
};

/*
 * Build the roots.  maps sorted (as the kernel lists them); modules: the
 * paths of the target's modules (the libdwfl list), so that a writable
 * mapping of one, and the anonymous mapping right after it (its .bss),
 * read as "writable data of" it; exclude: the allocator's memory (any
 * order); tls: the TLS blocks and struct pthread of each thread (they
 * only relabel what is a root already).  redzone: bytes below the stack
 * pointer that are live (x86_64: 128).  Return 0 with out set (free with
 * hi_leak_roots_free), or -ENOMEM.
 */
int hi_leak_roots_build(const struct hi_leak_map *maps, size_t nmaps,
			const char *const *modules, size_t nmodules,
			const struct hi_leak_thread *threads, size_t nthreads,
			const struct hi_leak_span *tls, size_t ntls,
			const struct hi_leak_span *exclude, size_t nexclude,
			uint64_t redzone, struct hi_leak_roots *out);
void hi_leak_roots_free(struct hi_leak_roots *r);

/*
 * The label as text ("register rbx of thread 4242", "stack of thread
 * 4242", "TLS of thread 4242", "writable data of /usr/lib/libfoo.so",
 * "anonymous mapping 0x7f...-0x7f..."), into buf.  Returns buf.
 */
const char *hi_leak_label_text(const struct hi_leak_label *l, char *buf,
			       size_t size);

#endif
