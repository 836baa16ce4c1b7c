/* SPDX-License-Identifier: MIT */
/*
 * Counting an arena's free chunks by reading its heap in one pass.
 *
 * Following the free lists costs one read of the target per chunk when the
 * lists jump about the heap, as they do after frees in random order; glibc's
 * own mallinfo2() pays a cache miss per chunk for the same walk, but a
 * system call costs far more.  Reading the heap from end to end in large
 * pieces costs a copy per page instead, which on a dense heap is much less.
 *
 * What the walk of int_mallinfo (malloc.c, 2.31 to 2.43) counts can be seen
 * in the heap itself:
 *  - a chunk is in a bin (unsorted, small or large) exactly when it is free
 *    to the heap, that is when the next chunk's PREV_INUSE bit is clear
 *    (_int_free and malloc_consolidate clear it when they bin a chunk, and
 *    set it again when they take one out);
 *  - chunks in fastbins and tcache keep PREV_INUSE set; the fastbins are
 *    followed as lists, but through a table of the heap's small chunks,
 *    made during the pass, not through the target.
 * The main arena's heap runs from mp_.sbrk_base to top when it is
 * contiguous.  A non-main arena's heaps are HEAP_MAX_SIZE-aligned mappings
 * that start with a heap_info, chained through prev from the heap holding
 * top back to the one holding the arena; each but the last ends in a
 * fencepost of size 0 (sysmalloc).
 *
 * Anything unexpected makes the pass give up (-ENOTSUP), and the caller
 * walks the lists, which know how to report a corrupt heap.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "ptmalloc_priv.h"

/*
 * How much of the heap one read brings in: a window that grows to WINDOW
 * while the chunks follow one another, and starts again at a page after a
 * jump over a large chunk, so that a heap of large chunks costs a page per
 * chunk rather than all its bytes.
 */
#define WINDOW (1u << 18)
#define WINDOW_MIN 4096u
/*
 * A region or a piece starts at a known chunk, most likely a small one
 * among others: the first window is larger than after a jump, so that the
 * many pieces of a parallel sweep do not each start with a page.
 */
#define WINDOW_START (1u << 16)
/* HEAP_MAX_SIZE on 64-bit: 2 * DEFAULT_MMAP_THRESHOLD_MAX (arena.c). */
#define HEAP_MAX_64 (64ull << 20)
#define MAX_HEAPS 4096
/* NONCONTIGUOUS_BIT of malloc_state.flags (malloc.c). */
#define NONCONTIGUOUS_BIT 2
/*
 * Parallel sweeps: below SPLIT_MIN bytes waking a helper costs more than
 * it saves; pieces of at least PIECE_MIN (each starts again with a small
 * window), about PIECES_PER_WORKER per worker so that one slow piece does
 * not hold the others up; at most MAX_WORKERS threads (process_vm_readv
 * copies scale to 2 here, see bench/README.md).
 */
#define SPLIT_MIN (2ull << 20)
#define PIECE_MIN (512ull << 10)
#define PIECES_PER_WORKER 4
#define MAX_WORKERS 4
#define MAX_PIECES 256

enum region_end {
	END_TOP,   /* ends where top starts */
	END_HEAP,  /* a heap without top: ends with its fenceposts */
	END_CHUNK, /* a piece of one of those: ends where a chunk starts */
};

struct region {
	hi_addr_t start; /* the first chunk */
	hi_addr_t end;   /* top, the end of the heap, or the next piece */
	hi_addr_t limit; /* never read past this */
	enum region_end kind;
};

/* A small chunk that may be in a fastbin: where, its size, its link. */
struct small {
	hi_addr_t p;
	uint64_t size;
	uint64_t fd;
};

/*
 * The chunks in bins (their successor's PREV_INUSE clear) that one piece
 * found, in address order, in blocks of FBLOCK: their fd, where they are
 * with their bk (together: a look-up checks both), and the bin their size
 * belongs to (bit 7: seen on a list).  Blocks, not one array: a piece
 * never copies what it found to grow, and the pieces' blocks are put in
 * address order by a table of pointers, not copied either (the copies
 * were 3 ms of the 1M-chunk heap's stop).  A chunk's number is its
 * block's place in that table times FBLOCK plus its place in the block.
 */
#define FBLOCK_SHIFT 10
#define FBLOCK (1u << FBLOCK_SHIFT)

struct fblock {
	struct fblock *next;
	unsigned n;
	uint8_t bin[FBLOCK];
	hi_addr_t fd[FBLOCK];
	struct {
		hi_addr_t p, bk;
	} pb[FBLOCK];
};

/* What the sweep of one region found. */
struct part {
	uint64_t bin_chunks;
	uint64_t bin_bytes;
	struct small *v;
	size_t n;
	size_t cap;
	struct fblock *fhead, *ftail; /* the chunks in bins */
	int err;
};

/* All the chunks in bins of an arena, in address order (free_table). */
struct ftable {
	struct fblock **dir; /* blocks; each full but a piece's last */
	size_t ndir;
	size_t nf; /* chunks */
};

#define FSLOT(k) ((k) & (FBLOCK - 1))

/* One reader of regions: a thread of a parallel sweep, or the only one. */
struct sweep {
	const struct ptm_layout *l;
	const struct hi_reader *r;
	unsigned char *buf; /* bytes [wstart, wend) of the target */
	hi_addr_t wstart;
	hi_addr_t wend;
	hi_addr_t limit;    /* never read past this */
	size_t win;         /* the next window's size */
	uint64_t fast_max;  /* the largest fastbin chunk size with chunks */
	uint64_t fast_want; /* bit i: fastbin i is not empty */
	hi_addr_t lo, hi;   /* the arena's chunks lie in [lo, hi) */
	int shared;         /* other threads read too: read_direct only */
	/*
	 * The pages of the regions that are not writable (a program made
	 * part of a block read-only), sorted; a free chunk among them was
	 * never written by malloc.  Mostly none.
	 */
	const hi_addr_t (*ro)[2];
	size_t nro;
};

/* Whether [p, p + len) meets a page of sw->ro. */
static int in_ro(const struct sweep *sw, hi_addr_t p, uint64_t len)
{
	for (size_t i = 0; i < sw->nro; i++) {
		if (p < sw->ro[i][1] && p + len > sw->ro[i][0])
			return 1;
	}
	return 0;
}

static int sweep_read(const struct sweep *sw, hi_addr_t addr, void *buf,
		      size_t len)
{
	if (sw->r->read_direct) {
		int ret = sw->r->read_direct(sw->r->arg, addr, buf, len);

		if (ret != -ENOSYS || sw->shared)
			return ret;
	}
	return hi_read(sw->r, addr, buf, len);
}

/* need() past its window: read a new one that starts at addr. */
static const unsigned char *need_read(struct sweep *sw, hi_addr_t addr,
				      size_t len, int *err)
{
	hi_addr_t end;

	if (addr + len > sw->limit || addr + len < addr) {
		*err = -ENOTSUP;
		return NULL;
	}
	/*
	 * Just past the window: the chunks go on, so does the window, twice
	 * as large.  Further: a jump over a large chunk, and its bytes are
	 * not read; with pages that hold data, copying a chunk of 4 to 120
	 * KiB through cost more than a read of its own (sparse 100k: 47 ms
	 * against 33 when the window went on over anything up to its size).
	 */
	if (!sw->wend)
		; /* the first window of a region: sw->win as set */
	else if (addr >= sw->wstart && addr < sw->wend + WINDOW_MIN)
		sw->win = sw->win * 2 < WINDOW ? sw->win * 2 : WINDOW;
	else
		sw->win = WINDOW_MIN;
	/* End on a page boundary: the last page is read whole. */
	end = (addr + sw->win) & ~(hi_addr_t)(WINDOW_MIN - 1);
	if (end < addr + len)
		end = addr + len;
	if (end > sw->limit)
		end = sw->limit;
	*err = sweep_read(sw, addr, sw->buf, end - addr);
	if (*err) {
		sw->wstart = sw->wend = 0;
		if (*err == -EFAULT)
			*err = -ENOTSUP;
		return NULL;
	}
	sw->wstart = addr;
	sw->wend = end;
	return sw->buf;
}

/*
 * The target's bytes [addr, addr + len), from the window or from a new
 * window that starts at addr.  NULL when they cannot be read.  Twice per
 * chunk: the window's case is inline.
 */
static inline const unsigned char *need(struct sweep *sw, hi_addr_t addr,
					size_t len, int *err)
{
	if (addr >= sw->wstart && addr + len <= sw->wend)
		return sw->buf + (addr - sw->wstart);
	return need_read(sw, addr, len, err);
}

/* A size or link word: 8 bytes on the targets swept (ptm_sweep checks). */
static inline uint64_t word(const unsigned char *h)
{
	uint64_t v;

	memcpy(&v, h, 8);
	return v;
}

/* The bin a free chunk of size sz belongs in (largebin_index_64). */
static inline uint8_t bin_of(uint64_t sz)
{
	if (sz < 1024)
		return (uint8_t)(sz >> 4);
	if ((sz >> 6) <= 48)
		return (uint8_t)(48 + (sz >> 6));
	if ((sz >> 9) <= 20)
		return (uint8_t)(91 + (sz >> 9));
	if ((sz >> 12) <= 10)
		return (uint8_t)(110 + (sz >> 12));
	if ((sz >> 15) <= 4)
		return (uint8_t)(119 + (sz >> 15));
	if ((sz >> 18) <= 2)
		return (uint8_t)(124 + (sz >> 18));
	return 126;
}

static inline int add_free(struct part *pt, hi_addr_t p, uint64_t sz,
			   hi_addr_t fd, hi_addr_t bk)
{
	struct fblock *b = pt->ftail;

	if (!b || b->n == FBLOCK) {
		b = malloc(sizeof(*b));
		if (!b)
			return -ENOMEM;
		b->next = NULL;
		b->n = 0;
		if (pt->ftail)
			pt->ftail->next = b;
		else
			pt->fhead = b;
		pt->ftail = b;
	}
	b->pb[b->n].p = p;
	b->pb[b->n].bk = bk;
	b->fd[b->n] = fd;
	b->bin[b->n++] = bin_of(sz);
	return 0;
}

static int add_small(struct part *pt, hi_addr_t p, uint64_t size,
		     uint64_t fd)
{
	if (pt->n == pt->cap) {
		size_t ncap = pt->cap ? pt->cap * 2 : 4096;
		struct small *nv = realloc(pt->v, ncap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		pt->v = nv;
		pt->cap = ncap;
	}
	pt->v[pt->n].p = p;
	pt->v[pt->n].size = size;
	pt->v[pt->n].fd = fd;
	pt->n++;
	return 0;
}

/*
 * Read the chunks of one region into pt.  Return 0, -ENOTSUP when the
 * chunks do not tile it as glibc leaves them, or -errno.
 */
static int sweep_region(struct sweep *sw, const struct region *rg,
			struct part *pt)
{
	const struct ptm_layout *l = sw->l;
	uint64_t minsize = ptm_minsize(l), mask = ptm_align(l) - 1;
	unsigned ssz = l->c_size.size;
	hi_addr_t p = rg->start;
	int err = 0;

	sw->limit = rg->limit;
	sw->wstart = sw->wend = 0;
	sw->win = WINDOW_START;
	for (;;) {
		const unsigned char *h;
		uint64_t sz, nsz, fd = 0, bk = 0;
		hi_addr_t next, at, link = p + l->c_fd.off;
		int have = 0, moved = 0;

		if (rg->kind != END_HEAP && p == rg->end)
			return 0; /* top (counted by the caller), or a piece */
		if (p >= rg->end)
			return -ENOTSUP;
		h = need(sw, p + l->c_size.off, ssz, &err);
		if (!h)
			return err;
		sz = word(h) & ~(uint64_t)7;
		if (rg->kind == END_HEAP &&
		    (sz == 0 || sz == 2 * (uint64_t)ssz)) {
			/* The fenceposts that end a heap (sysmalloc). */
			if (sz == 0)
				return 0;
			p += sz;
			continue;
		}
		if (sz < minsize || (sz & mask) || sz > rg->end - p)
			return -ENOTSUP;
		next = p + sz;
		at = next + l->c_size.off;
		if (at >= sw->wstart && at + ssz <= sw->wend) {
			/* need()'s case: the window holds p's links too. */
			h = sw->buf + (at - sw->wstart);
		} else {
			/*
			 * The window moves on: take p's links first, fd then bk
			 * (ptm_layout_check), in case it is free.  Read once the
			 * window had moved, they cost a window of their own
			 * behind every chunk jumped over (1.4 times the bytes
			 * copied on the 1M-chunk heap of bench/).
			 */
			have = link + 16 <= sw->wend;
			if (have) {
				fd = word(sw->buf + (link - sw->wstart));
				bk = word(sw->buf + (link + 8 - sw->wstart));
			}
			moved = 1;
			h = need_read(sw, at, ssz, &err);
			if (!h)
				return err;
		}
		nsz = word(h);
		if (!(nsz & 1)) {
			/* PREV_INUSE clear: p is in a bin. */
			if (sw->nro && in_ro(sw, p, sz))
				return -ENOTSUP;
			if (!moved) {
				fd = word(sw->buf + (link - sw->wstart));
				bk = word(sw->buf + (link + 8 - sw->wstart));
			} else if (!have) {
				h = need(sw, link, 2 * 8, &err);
				if (!h)
					return err;
				fd = word(h);
				bk = word(h + 8);
			}
			err = add_free(pt, p, sz, fd, bk);
			if (err)
				return err;
			pt->bin_chunks++;
			pt->bin_bytes += sz;
		} else if (sz <= sw->fast_max &&
			   (sw->fast_want >> ((sz >> 4) - 2) & 1)) {
			uint64_t nx;

			if (!moved) {
				fd = word(sw->buf + (link - sw->wstart));
			} else if (!have) {
				h = need(sw, link, l->c_fd.size, &err);
				if (!h)
					return err;
				fd = word(h);
			}
			/*
			 * Only a chunk whose fd could link a fastbin (the end,
			 * or an aligned chunk of the arena) may be in one: the
			 * table stays small, most of such chunks being in use.
			 */
			nx = l->safe_linking ? ((p + l->c_fd.off) >> 12) ^ fd
					     : fd;
			if (nx == 0 || (nx >= sw->lo && nx < sw->hi &&
					!((nx + 2 * ssz) & mask))) {
				err = add_small(pt, p, sz, fd);
				if (err)
					return err;
			}
		}
		p = next;
	}
}

/*
 * Work handed out to the threads of one crew, in any order: items 0 to
 * n - 1, each done once by fn(arg, i, buf), buf being the thread's window
 * (NULL when it could not be had).
 */
struct crew {
	void (*fn)(void *arg, size_t i, unsigned char *buf);
	void *arg;
	size_t n;
	size_t next;     /* the next item to take (atomic) */
	unsigned active; /* pool threads inside it (pool.mu) */
};

/* Do items of c until none is left, with the window buf. */
static void crew_work(struct crew *c, unsigned char *buf)
{
	for (;;) {
		size_t i = __atomic_fetch_add(&c->next, 1, __ATOMIC_RELAXED);

		if (i >= c->n)
			break;
		c->fn(c->arg, i, buf);
	}
}

/*
 * The threads that help sweep (and check the links of what was swept):
 * started at the first sweep that wants them, kept (each with its window)
 * until ptm_sweep_end, so that a heap of many arenas does not start
 * threads, map windows and fault their pages in for every arena while the
 * target is stopped.  The thread that sweeps never waits for a helper
 * that has not started yet: on a busy machine a helper may not run for
 * milliseconds.  It takes every item left itself, and waits only for
 * those a helper has taken.
 */
static struct {
	pthread_mutex_t one;  /* one crew at a time (held by crew_run) */
	pthread_mutex_t mu;
	pthread_cond_t work;  /* a crew was posted, or quit */
	pthread_cond_t idle;  /* a helper left a crew */
	struct crew *job;     /* the crew to help, or NULL */
	uint64_t seq;         /* bumped at every crew posted */
	unsigned nthreads;
	pthread_t th[MAX_WORKERS - 1];
	int quit;
} pool = {
	.one = PTHREAD_MUTEX_INITIALIZER,
	.mu = PTHREAD_MUTEX_INITIALIZER,
	.work = PTHREAD_COND_INITIALIZER,
	.idle = PTHREAD_COND_INITIALIZER,
};

static void *helper(void *arg)
{
	unsigned char *buf = malloc(WINDOW);
	uint64_t seen = 0;

	(void)arg;
	pthread_mutex_lock(&pool.mu);
	for (;;) {
		struct crew *c;

		while (!pool.quit && (!pool.job || pool.seq == seen))
			pthread_cond_wait(&pool.work, &pool.mu);
		if (pool.quit)
			break;
		seen = pool.seq;
		c = pool.job;
		c->active++;
		pthread_mutex_unlock(&pool.mu);
		crew_work(c, buf);
		pthread_mutex_lock(&pool.mu);
		if (--c->active == 0)
			pthread_cond_signal(&pool.idle);
	}
	pthread_mutex_unlock(&pool.mu);
	free(buf);
	return NULL;
}

void ptm_sweep_end(void)
{
	unsigned n;

	pthread_mutex_lock(&pool.one);
	pthread_mutex_lock(&pool.mu);
	pool.quit = 1;
	n = pool.nthreads;
	pool.nthreads = 0;
	pthread_cond_broadcast(&pool.work);
	pthread_mutex_unlock(&pool.mu);
	while (n)
		pthread_join(pool.th[--n], NULL);
	pthread_mutex_lock(&pool.mu);
	pool.quit = 0;
	pthread_mutex_unlock(&pool.mu);
	pthread_mutex_unlock(&pool.one);
}

/*
 * Do the n items of fn with up to nworkers threads, this one included.
 * Only a crew that reads needs a window (read).
 */
static void crew_run(void (*fn)(void *, size_t, unsigned char *), void *arg,
		     size_t n, unsigned nworkers, int read)
{
	struct crew c = { .fn = fn, .arg = arg, .n = n };
	unsigned char *buf = read ? malloc(WINDOW) : NULL;

	if (nworkers > 1) {
		pthread_mutex_lock(&pool.one);
		pthread_mutex_lock(&pool.mu);
		/* Signals stay blocked in the helpers: they inherit this mask. */
		while (pool.nthreads + 1 < nworkers &&
		       pthread_create(&pool.th[pool.nthreads], NULL, helper,
				      NULL) == 0)
			pool.nthreads++;
		pool.job = &c;
		pool.seq++;
		pthread_cond_broadcast(&pool.work);
		pthread_mutex_unlock(&pool.mu);
	}
	crew_work(&c, buf);
	if (nworkers > 1) {
		pthread_mutex_lock(&pool.mu);
		pool.job = NULL;
		while (c.active)
			pthread_cond_wait(&pool.idle, &pool.mu);
		pthread_mutex_unlock(&pool.mu);
		pthread_mutex_unlock(&pool.one);
	}
	free(buf);
}

/*
 * How many threads may read at once: the CPUs this process may use.  The
 * tests set HEAPINSPECT_SWEEP_THREADS to share out among that many threads
 * whatever the CPUs, and to cut even small heaps (*piece_min is then a
 * page instead of PIECE_MIN, and check_bins shares out the links of even
 * a few chunks).
 */
static unsigned sweep_workers(uint64_t *piece_min)
{
#ifdef HI_TEST_HOOKS
	const char *force = getenv("HEAPINSPECT_SWEEP_THREADS");
#else
	const char *force = NULL; /* a test hook: not in a shipped build */
#endif
	cpu_set_t set;
	int n;

	*piece_min = PIECE_MIN;
	if (force && *force) {
		n = atoi(force);
		*piece_min = WINDOW_MIN;
	} else if (sched_getaffinity(0, sizeof(set), &set)) {
		n = 1;
	} else {
		n = CPU_COUNT(&set);
	}
	return n < 1 ? 1 : n > MAX_WORKERS ? MAX_WORKERS : (unsigned)n;
}

/*
 * The chunks the arena struct points at, in address order: the first and
 * last chunk of every bin and the first of every fastbin.  Only pointers:
 * in a corrupt heap they may be anything.
 */
static int known_chunks(const struct ptm_layout *l, const unsigned char *st,
			hi_addr_t arena, hi_addr_t **out, size_t *nout)
{
	uint64_t nbins = l->bins.count / 2 + 1;
	size_t n = 0;
	hi_addr_t *v;

	v = malloc((l->bins.count + l->fastbins.count + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (uint64_t i = 1; i < nbins; i++) {
		/* bin_at (m, i): the pair bins[2i-2..2i-1] seen as fd/bk. */
		hi_addr_t b = arena + l->bins.off +
			      (i - 1) * 2 * l->ptr_size - l->c_fd.off;

		for (uint64_t k = 0; k < 2; k++) {
			hi_addr_t c = ptm_get_elem(st, &l->bins, l->ptr_size,
						   (i - 1) * 2 + k);

			if (c != b)
				v[n++] = c;
		}
	}
	for (uint64_t i = 0; i < l->fastbins.count; i++) {
		hi_addr_t c = ptm_get_elem(st, &l->fastbins, l->ptr_size, i);

		if (c)
			v[n++] = c;
	}
	qsort(v, n, sizeof(*v), ptm_addr_cmp);
	*out = v;
	*nout = n;
	return 0;
}

/* Whether c may start a chunk of rg: inside it, and aligned as one. */
static int chunk_in(const struct ptm_layout *l, const struct region *rg,
		    hi_addr_t c)
{
	return c > rg->start && c < rg->end &&
	       !((c + 2 * l->c_size.size) & (ptm_align(l) - 1));
}

/*
 * Cut the regions into pieces at the known chunks.  A pointer that is not
 * a chunk of the region (a corrupt heap) shows when the piece before it
 * does not end exactly there, and the caller sweeps the region again in
 * one piece.  Return the pieces in *out (count *nout), or 0 pieces when
 * cutting is not worth it.
 */
static int cut(const struct ptm_layout *l, const hi_addr_t *cand,
	       size_t ncand, const struct region *rg, size_t nrg,
	       unsigned nworkers, uint64_t piece_min, struct region **out,
	       size_t *nout)
{
	uint64_t total = 0, want, piece;
	size_t n = 0;
	struct region *v;

	*out = NULL;
	*nout = 0;
	for (size_t i = 0; i < nrg; i++)
		total += rg[i].end - rg[i].start;
	/* Fewer than SPLIT_MIN / PIECE_MIN pieces: not worth a thread. */
	if (nworkers < 2 || total < piece_min * (SPLIT_MIN / PIECE_MIN))
		return 0;
	want = (uint64_t)nworkers * PIECES_PER_WORKER;
	piece = total / want > piece_min ? total / want : piece_min;
	v = malloc((MAX_PIECES + nrg) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < nrg; i++) {
		hi_addr_t from = rg[i].start;
		size_t k = 0;

		for (;;) {
			hi_addr_t at = from + piece;

			/* The first known chunk past the next mark. */
			while (k < ncand && (cand[k] < at || cand[k] <= from))
				k++;
			if (k == ncand || !chunk_in(l, &rg[i], cand[k]) ||
			    n >= MAX_PIECES)
				break;
			v[n] = rg[i];
			v[n].start = from;
			v[n].end = cand[k];
			v[n].kind = END_CHUNK;
			n++;
			from = cand[k];
		}
		v[n] = rg[i];
		v[n].start = from;
		n++;
	}
	if (n <= nrg) {
		free(v);
		return 0;
	}
	*out = v;
	*nout = n;
	return 0;
}

/*
 * What reading costs, in units of about a microsecond on the machine of
 * bench/RESULTS.md: walking the lists costs about LIST_COST per free chunk
 * (a system call per block of chunks, and pages read for a chunk or two
 * each), sweeping SWEEP_COST per page of heap copied, and JUMP_COST for a
 * page read on its own after a chunk of a page or more, SWEEP_SPEEDUP
 * times less with two threads or more.  Only the ratio matters; both ways
 * give the same figures, so a wrong guess costs time, never exactness.
 */
#define LIST_COST 2.0
#define SWEEP_COST 1.0
#define JUMP_COST 1.5
#define SWEEP_SPEEDUP 1.6
#define SAMPLES 32
#define SAMPLES_MIN 4
#define SAMPLE_CHUNKS 32
/* Pages a sample asks for at once: the one it needs and the next. */
#define SAMPLE_PAGES 2
#define SAMPLE_ROUNDS 4
/* The guess reads about 1/GUESS_SHARE of what a sweep would, or less. */
#define GUESS_SHARE 16
/* Below this the lists are walked first, and the guess not made. */
#define GUESS_MIN (256ull << 10)
/* After a round, a guess this far from even on this many chunks stands. */
#define GUESS_EARLY 64
#define GUESS_CLEAR 3.0

/* What the samples of the guess saw. */
struct tally {
	uint64_t chunks; /* counted */
	uint64_t nfree;  /* of them free (in a bin) */
	double reads;    /* what reading them in a sweep costs */
};

/* Where a sample of the guess stands. */
struct sample {
	const struct region *in;
	hi_addr_t p;        /* the next chunk to look at */
	hi_addr_t want;     /* the address it waits for, 0 when done */
	unsigned chunks;
};

/*
 * Take a sample on: count the chunks whose successor's PREV_INUSE bit is
 * seen, up to SAMPLE_CHUNKS after the known one; with wait, only as far as
 * the reader has the bytes at hand (s->want says where it stopped).  A
 * sample that runs into the unexpected just ends there.
 */
static int sample_on(const struct ptm_layout *l, const struct hi_reader *r,
		     int wait, struct sample *s, struct tally *t)
{
	uint64_t minsize = ptm_minsize(l), mask = ptm_align(l) - 1;
	unsigned off = l->c_size.off, ssz = l->c_size.size;
	unsigned char b[8];
	uint64_t sz, nsz;
	int ret;

	s->want = 0;
	while (s->chunks <= SAMPLE_CHUNKS) {
		if (s->p + off + ssz > s->in->limit)
			return 0;
		if (wait && !r->cached(r->arg, s->p + off, ssz)) {
			s->want = s->p + off;
			return 0;
		}
		ret = hi_read(r, s->p + off, b, ssz);
		if (ret)
			return ret == -EFAULT ? 0 : ret;
		sz = word(b) & ~(uint64_t)7;
		if (sz < minsize || (sz & mask) || sz > s->in->end - s->p ||
		    s->p + sz + off + ssz > s->in->limit)
			return 0;
		if (wait && !r->cached(r->arg, s->p + sz + off, ssz)) {
			s->want = s->p + sz + off;
			return 0;
		}
		ret = hi_read(r, s->p + sz + off, b, ssz);
		if (ret)
			return ret == -EFAULT ? 0 : ret;
		nsz = word(b);
		/* The first is free (a known chunk): not counted. */
		if (s->chunks++) {
			t->chunks++;
			t->nfree += !(nsz & 1);
			/* Copied through, or a read of its own. */
			t->reads += sz < WINDOW_MIN ? (double)sz / WINDOW_MIN
						    : JUMP_COST;
		}
		s->p += sz;
	}
	return 0;
}

/*
 * Whether sweeping the regions should cost less than walking the lists:
 * short sweeps of SAMPLE_CHUNKS chunks after some of the known chunks,
 * spread over the heap, tell how many chunks are free and how large chunks
 * are.  The known chunks are free themselves: they are not counted, nor is
 * a chunk whose successor is not read.  The samples are read through the
 * reader's cache, in rounds: each round fetches the pages every sample
 * waits for in one system call, and the rounds stop as soon as the answer
 * is clear, so that the guess costs one to SAMPLE_ROUNDS calls and about
 * 1/GUESS_SHARE of the bytes of a sweep or less (a 6 MiB arena: 0.25 ms in
 * about 100 calls before, 0.06 to 0.1 ms now).  Return 1 or 0, or -errno
 * from the reader.
 */
static int sweep_pays(const struct sweep *proto, const hi_addr_t *cand,
		      size_t ncand, const struct region *rg, size_t nrg,
		      unsigned nworkers)
{
	const struct ptm_layout *l = proto->l;
	const struct hi_reader *r = proto->r;
	uint64_t total = 0, nsamp;
	struct tally t = { 0 };
	double ratio = 0;
	struct sample smp[SAMPLES];
	size_t step, n = 0;
	int ret = 0;

	for (size_t i = 0; i < nrg; i++)
		total += rg[i].end - rg[i].start;
	nsamp = total / GUESS_SHARE /
		(SAMPLE_ROUNDS / 2 * SAMPLE_PAGES * WINDOW_MIN);
	nsamp = nsamp < SAMPLES_MIN ? SAMPLES_MIN
		: nsamp > SAMPLES ? SAMPLES : nsamp;
	step = ncand > nsamp ? ncand / nsamp : 1;
	for (size_t i = 0; i < ncand && n < nsamp; i += step) {
		for (size_t j = 0; j < nrg; j++) {
			if (chunk_in(l, &rg[j], cand[i])) {
				smp[n].in = &rg[j];
				smp[n].p = cand[i];
				smp[n].want = cand[i] + l->c_size.off;
				smp[n].chunks = 0;
				n++;
				break;
			}
		}
	}
	for (unsigned round = 0; round < SAMPLE_ROUNDS && !ret; round++) {
		hi_addr_t pages[SAMPLES * SAMPLE_PAGES];
		size_t np = 0;
		int wait = 1;

		for (size_t i = 0; i < n; i++) {
			hi_addr_t pg = smp[i].want & ~(hi_addr_t)(WINDOW_MIN -
								  1);

			for (unsigned k = 0; smp[i].want && k < SAMPLE_PAGES &&
					     pg + k * WINDOW_MIN <
						     smp[i].in->limit;
			     k++)
				pages[np++] = pg + k * WINDOW_MIN;
		}
		if (!np)
			break;
		r->prefetch(r->arg, pages, np, 0);
		/* A reader that cannot fetch ahead (/proc/PID/mem) reads on. */
		if (round == 0 && !r->cached(r->arg, pages[0], 1))
			wait = 0;
		for (size_t i = 0; i < n && !ret; i++) {
			if (smp[i].want)
				ret = sample_on(l, r, wait, &smp[i], &t);
		}
		/*
		 * The lists cost LIST_COST per free chunk, the sweep its
		 * reads: per chunk seen, both scale alike to the arena.
		 */
		if (t.reads > 0)
			ratio = LIST_COST * (double)t.nfree /
				(SWEEP_COST * t.reads /
				 (nworkers > 1 ? SWEEP_SPEEDUP : 1));
		/* Far from even after enough chunks: no need for more. */
		if (t.chunks >= GUESS_EARLY &&
		    (ratio > GUESS_CLEAR || ratio < 1 / GUESS_CLEAR))
			break;
	}
	if (ret)
		return ret;
	return ratio > 1;
}

/* Add from's table of small chunks to to's; from is left as it was. */
static int append_smalls(struct part *to, const struct part *from)
{
	struct small *nv;

	if (!from->n)
		return 0;
	if (to->cap - to->n < from->n) {
		nv = realloc(to->v, (to->n + from->n) * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		to->v = nv;
		to->cap = to->n + from->n;
	}
	memcpy(to->v + to->n, from->v, from->n * sizeof(*nv));
	to->n += from->n;
	return 0;
}

static void free_blocks(struct fblock *b)
{
	while (b) {
		struct fblock *next = b->next;

		free(b);
		b = next;
	}
}

static void free_part(struct part *pt)
{
	free(pt->v);
	free_blocks(pt->fhead);
}

static void free_ftable(struct ftable *t)
{
	for (size_t i = 0; i < t->ndir; i++)
		free(t->dir[i]);
	free(t->dir);
	memset(t, 0, sizeof(*t));
}

/* A part's place in address order: where its region starts. */
struct part_at {
	hi_addr_t start;
	size_t i;
};

static int part_at_cmp(const void *x, const void *y)
{
	const struct part_at *a = x, *b = y;

	return a->start < b->start ? -1 : a->start > b->start;
}

/*
 * Take the parts' chunks in bins into t, in address order: the pieces of
 * a region follow one another, but a non-main arena's heaps (each mapped
 * wherever mmap put it) come in the order of their chain.  Return 0,
 * -ENOMEM, or -ENOTSUP when the chunks are not in address order (pieces
 * that overlap: never in a heap glibc made).
 */
static int free_table(struct part *parts, const struct region *v, size_t n,
		      struct ftable *t)
{
	struct part_at *at = malloc((n ? n : 1) * sizeof(*at));
	hi_addr_t last = 0;
	size_t nb = 0;

	if (!at)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		at[i].start = v[i].start;
		at[i].i = i;
		for (const struct fblock *b = parts[i].fhead; b; b = b->next)
			nb++;
	}
	qsort(at, n, sizeof(*at), part_at_cmp);
	t->dir = malloc((nb ? nb : 1) * sizeof(*t->dir));
	if (!t->dir) {
		free(at);
		return -ENOMEM;
	}
	for (size_t j = 0; j < n; j++) {
		struct part *pt = &parts[at[j].i];
		struct fblock *b = pt->fhead;

		if (b && b->pb[0].p <= last) {
			free(at);
			return -ENOTSUP;
		}
		for (; b; b = b->next) {
			t->dir[t->ndir++] = b;
			t->nf += b->n;
			last = b->pb[b->n - 1].p;
		}
		/* The table owns them now. */
		pt->fhead = pt->ftail = NULL;
	}
	free(at);
	return 0;
}

/* The sweep's share of a crew: item i is region i, into part i. */
struct sweep_job {
	const struct sweep *proto;
	const struct region *rg;
	struct part *parts;
};

static void sweep_item(void *arg, size_t i, unsigned char *buf)
{
	const struct sweep_job *j = arg;
	struct sweep sw = *j->proto;

	sw.buf = buf;
	j->parts[i].err = buf ? sweep_region(&sw, &j->rg[i], &j->parts[i])
			      : -ENOMEM;
}

/*
 * Sweep the regions, in pieces by several threads where that pays, and
 * add up what they found in *sum (its table of small chunks in address
 * order within each region) and *ft (the chunks in bins, in address
 * order).  *nworkers is left at the threads that shared the sweep.
 */
static int sweep_all(const struct sweep *proto, const hi_addr_t *cand,
		     size_t ncand, const struct region *rg, size_t nrg,
		     unsigned *nworkers, uint64_t piece_min, struct part *sum,
		     struct ftable *ft)
{
	struct region *pieces = NULL;
	struct part *parts = NULL;
	size_t n = 0;
	int ret;

	ret = cut(proto->l, cand, ncand, rg, nrg, *nworkers, piece_min,
		  &pieces, &n);
	if (ret)
		return ret;
	for (int attempt = 0; attempt < 2; attempt++) {
		const struct region *v = pieces ? pieces : rg;
		struct sweep one = *proto;
		struct sweep_job job = { .proto = &one, .rg = v };

		if (!pieces) {
			n = nrg;
			*nworkers = 1;
		}
		parts = calloc(n, sizeof(*parts));
		if (!parts) {
			ret = -ENOMEM;
			break;
		}
		job.parts = parts;
		one.shared = *nworkers > 1;
		crew_run(sweep_item, &job, n, *nworkers, 1);
		ret = 0;
		for (size_t i = 0; i < n && !ret; i++)
			ret = parts[i].err;
		/*
		 * A cut that was no chunk, or a reader that cannot be shared
		 * now: sweep each region whole, alone.
		 */
		if ((ret == -ENOTSUP || ret == -ENOSYS) && pieces) {
			for (size_t i = 0; i < n; i++)
				free_part(&parts[i]);
			free(parts);
			parts = NULL;
			free(pieces);
			pieces = NULL;
			continue;
		}
		break;
	}
	for (size_t i = 0; parts && i < n && !ret; i++) {
		sum->bin_chunks += parts[i].bin_chunks;
		sum->bin_bytes += parts[i].bin_bytes;
		ret = append_smalls(sum, &parts[i]);
	}
	if (!ret && parts)
		ret = free_table(parts, pieces ? pieces : rg, n, ft);
	for (size_t i = 0; parts && i < n; i++)
		free_part(&parts[i]);
	free(parts);
	free(pieces);
	return ret;
}

/*
 * The table's chunks by address, for following the fastbins: open
 * addressing over a power of two of slots, at least twice the chunks, each
 * holding a chunk's place in the table plus one (0: empty).  A binary
 * search of the table missed the cache at every step: 4 to 5 ms of the
 * stop on the 1M-chunk heap, a third of the CPU left after the copy.
 */
struct small_index {
	const struct part *pt;
	uint32_t *slot;
	uint64_t mask;
	unsigned shift;
};

static inline uint64_t small_slot(const struct small_index *ix, hi_addr_t p)
{
	/* Fibonacci hashing of the chunk's 16-byte unit: the high bits. */
	return ((p >> 4) * 0x9e3779b97f4a7c15ull) >> ix->shift;
}

static int index_smalls(const struct part *pt, struct small_index *ix)
{
	unsigned bits = 4;

	if (pt->n > UINT32_MAX / 4)
		return -ENOMEM;
	while ((1ull << bits) < 2 * (uint64_t)pt->n)
		bits++;
	ix->pt = pt;
	ix->slot = calloc(1ull << bits, sizeof(*ix->slot));
	if (!ix->slot)
		return -ENOMEM;
	ix->mask = (1ull << bits) - 1;
	ix->shift = 64 - bits;
	for (size_t i = 0; i < pt->n; i++) {
		uint64_t k = small_slot(ix, pt->v[i].p);

		while (ix->slot[k])
			k = (k + 1) & ix->mask;
		ix->slot[k] = (uint32_t)i + 1;
	}
	return 0;
}

static const struct small *find_small(const struct small_index *ix,
				      hi_addr_t p)
{
	for (uint64_t k = small_slot(ix, p); ix->slot[k];
	     k = (k + 1) & ix->mask) {
		const struct small *c = &ix->pt->v[ix->slot[k] - 1];

		if (c->p == p)
			return c;
	}
	return NULL;
}

/* Follow fastbin idx from head through the table. */
static int fastbin_from_table(const struct ptm_layout *l,
			      const struct small_index *ix, struct hi_arena *a,
			      unsigned idx, hi_addr_t p)
{
	uint64_t steps = 0;

	while (p) {
		const struct small *c = find_small(ix, p);

		if (!c || c->size != (uint64_t)(idx + 2) * 16) {
			a->status = -HI_E_CORRUPT;
			a->bad_addr = p;
			snprintf(a->why, sizeof(a->why), "fastbin %u: "
				 HI_PRIxADDR " is not a chunk of its size in "
				 "the arena's heap", idx, p);
			return 0;
		}
		/* Each chunk once: more steps than chunks is a loop. */
		if (++steps > ix->pt->n) {
			a->status = -HI_E_CORRUPT;
			a->bad_addr = p;
			snprintf(a->why, sizeof(a->why), "fastbin %u loops "
				 "back to chunk " HI_PRIxADDR, idx, p);
			return 0;
		}
		a->fast_chunks++;
		a->fast_bytes += c->size;
		/* REVEAL_PTR (malloc.c, 2.32 and later). */
		p = l->safe_linking ? ((p + l->c_fd.off) >> 12) ^ c->fd : c->fd;
	}
	return 0;
}

static int bad_list(struct hi_arena *a, hi_addr_t at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int bad_list(struct hi_arena *a, hi_addr_t at, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(a->why, sizeof(a->why), fmt, ap);
	va_end(ap);
	a->bad_addr = at;
	a->status = -HI_E_CORRUPT;
	return 0;
}

/*
 * Where the chunks in bins are, by address: buckets of 2^shift bytes from
 * lo, each with the number of its first chunk in the table (or of the
 * next chunk after it), how many it holds, and a key for each of them,
 * bits 4 to 11 of its address: the 16-byte unit of its page.  Buckets of
 * a page (shift 12: most heaps) are exact, a key names one chunk.  A
 * look-up reads one bucket and compares its keys at once, without a branch
 * that depends on where the chunk is in it: with one (a search chunk by
 * chunk) the look-ups mispredicted, and each mispredicted branch threw
 * away the look-ups started after it, which then waited on their cache
 * misses one after the other (20 to 30 ns a look-up here).
 */
#define NKEYS 11
#define SLOW 0xff /* n: search the bucket's chunks by address */

struct bucket {
	uint32_t first;
	uint8_t n;
	uint8_t key[NKEYS];
};

struct free_index {
	const struct ftable *t;
	hi_addr_t lo, hi;
	unsigned shift;
	int exact;
	struct bucket *b;
	uint64_t nb;
};

#define NOT_FREE UINT32_MAX
#define HEADER (UINT32_MAX - 256) /* + bin index: a bin's header */
#define LATER (UINT32_MAX - 1)    /* link_item: look it up at its turn */

static inline const struct fblock *fblock_of(const struct ftable *t,
					     uint32_t k)
{
	return t->dir[k >> FBLOCK_SHIFT];
}

static inline hi_addr_t fc_p(const struct ftable *t, uint32_t k)
{
	return fblock_of(t, k)->pb[FSLOT(k)].p;
}

/*
 * Size the index of t and allocate its buckets (index_item fills them).
 * 0 or -ENOMEM.
 */
static int index_free(const struct ftable *t, struct free_index *ix)
{
	const struct fblock *lb;

	memset(ix, 0, sizeof(*ix));
	ix->t = t;
	if ((uint64_t)t->ndir * FBLOCK >= HEADER)
		return -ENOMEM;
	if (!t->nf)
		return 0;
	lb = t->dir[t->ndir - 1];
	ix->lo = t->dir[0]->pb[0].p & ~(hi_addr_t)4095;
	ix->hi = lb->pb[lb->n - 1].p + 1;
	/*
	 * Pages, or larger buckets where the chunks are far apart (a key then
	 * names a chunk only mostly: a look-up checks the address).
	 */
	ix->shift = 12;
	while (((ix->hi - ix->lo) >> ix->shift) > (uint64_t)t->nf / 2 + 1024)
		ix->shift++;
	ix->exact = ix->shift == 12;
	ix->nb = ((ix->hi - ix->lo) >> ix->shift) + 2;
	ix->b = malloc(ix->nb * sizeof(*ix->b));
	return ix->b ? 0 : -ENOMEM;
}

/* Add chunk k at p to bucket e, or make e SLOW. */
static inline void index_add(struct bucket *e, uint32_t k, hi_addr_t p)
{
	if (e->n == SLOW)
		return;
	if (e->n == NKEYS || e->first + e->n != k)
		e->n = SLOW;
	else
		e->key[e->n++] = (uint8_t)(p >> 4);
}

/* Bit i: e's key i is key (i < e->n, e->n not SLOW). */
static inline unsigned key_mask(const struct bucket *e, uint8_t key)
{
	unsigned m;
#if defined(__SSE2__)
	__m128i v = _mm_loadu_si128((const __m128i *)(const void *)e);

	m = (unsigned)_mm_movemask_epi8(
		    _mm_cmpeq_epi8(v, _mm_set1_epi8((char)key))) >> 5;
#else
	/*
	 * The same in plain C: a byte of w ^ k is zero where the key is;
	 * bit 7 of each such byte, gathered by a multiplication.
	 */
	uint64_t w[2], k = key * 0x0101010101010101ull, z[2];

	memcpy(w, e, sizeof(w));
	for (int i = 0; i < 2; i++) {
		uint64_t x = w[i] ^ k;
		uint64_t y = (x & 0x7f7f7f7f7f7f7f7full) + 0x7f7f7f7f7f7f7f7full;

		z[i] = (~(y | x | 0x7f7f7f7f7f7f7f7full) >> 7) *
		       0x0102040810204080ull >> 56;
	}
	m = (unsigned)(z[0] >> 5 | z[1] << 3);
#endif
	return m & ((1u << e->n) - 1);
}

/* The bucket where p would be, or NULL when p is no chunk's address. */
static inline const struct bucket *bucket_of(const struct free_index *ix,
					     hi_addr_t p)
{
	if (p - ix->lo >= ix->hi - ix->lo || (p & 15))
		return NULL;
	return &ix->b[(p - ix->lo) >> ix->shift];
}

/* A bucket of SLOW: its chunks by address, by halves while many. */
static uint32_t find_slow(const struct free_index *ix, const struct bucket *e,
			  hi_addr_t p)
{
	uint32_t k = e->first, end = e[1].first;

	while (end - k > 8) {
		uint32_t mid = k + (end - k) / 2;

		if (fc_p(ix->t, mid) < p)
			k = mid + 1;
		else
			end = mid + 1;
	}
	for (; k < end; k++) {
		if (fc_p(ix->t, k) == p)
			return k;
	}
	return NOT_FREE;
}

/* The number of the chunk in a bin at p, or NOT_FREE. */
static uint32_t find_free(const struct free_index *ix, hi_addr_t p)
{
	const struct bucket *e = bucket_of(ix, p);

	if (!e)
		return NOT_FREE;
	if (e->n == SLOW)
		return find_slow(ix, e, p);
	for (unsigned m = key_mask(e, (uint8_t)(p >> 4)); m; m &= m - 1) {
		uint32_t k = e->first + (unsigned)__builtin_ctz(m);

		if (ix->exact || fc_p(ix->t, k) == p)
			return k;
	}
	return NOT_FREE;
}

/* What the check of the links shares out to the crew. */
struct link_job {
	const struct ftable *t;
	const struct free_index *ix;
	uint32_t *nxt;     /* per chunk: where its fd leads */
	hi_addr_t b0;      /* bin 1's header, seen as a chunk */
	unsigned nbins;    /* NBINS: headers 1 to nbins - 1 */
	hi_addr_t hbk[128]; /* each header's bk */
	size_t per;        /* blocks per item */
	uint32_t *bad;     /* per item: the first chunk that fails, NOT_FREE */
};

/*
 * Item i of the index: the buckets of blocks [i * per, (i + 1) * per), in
 * one pass in address order.  A bucket is filled by the item that holds
 * its first chunk, which goes on into the next items' blocks for the rest
 * of it (they leave it alone), or, when empty, by the item of the next
 * chunk after it; the buckets after the last chunk, by check_bins.  The
 * slots left in a piece's last block repeat its last chunk's address, so
 * that the table stays sorted for find_slow.
 */
static void index_item(void *arg, size_t i, unsigned char *buf)
{
	const struct link_job *j = arg;
	struct fblock *const *dir = j->t->dir;
	/* In registers: the keys' byte stores could alias them. */
	struct bucket *const bkt = j->ix->b;
	const hi_addr_t lo = j->ix->lo;
	const unsigned shift = j->ix->shift;
	size_t d = i * j->per, end = (i + 1) * j->per, ndir = j->t->ndir;
	uint64_t b = 0, from;

	(void)buf;
	if (end > ndir)
		end = ndir;
	if (d >= end)
		return;
	if (d > 0) {
		const struct fblock *prev = dir[d - 1];

		b = ((prev->pb[prev->n - 1].p - lo) >> shift) + 1;
	}
	from = b;
	for (; d < end; d++) {
		struct fblock *bl = dir[d];
		const unsigned n = bl->n;
		uint32_t k = (uint32_t)(d << FBLOCK_SHIFT);

		for (unsigned o = 0; o < n; o++, k++) {
			hi_addr_t p = bl->pb[o].p;
			uint64_t at = (p - lo) >> shift;

			if (at < from)
				continue; /* the previous item's bucket */
			for (; b <= at; b++)
				bkt[b] = (struct bucket){ .first = k };
			index_add(&bkt[at], k, p);
		}
		for (unsigned o = n; o < FBLOCK; o++)
			bl->pb[o].p = bl->pb[n - 1].p;
	}
	/* The rest of the last bucket begun here. */
	for (; b > from && d < ndir; d++) {
		const struct fblock *bl = dir[d];
		uint32_t k = (uint32_t)(d << FBLOCK_SHIFT);

		for (unsigned o = 0; o < bl->n; o++, k++) {
			hi_addr_t p = bl->pb[o].p;

			if (((p - lo) >> shift) != b - 1)
				return;
			index_add(&bkt[b - 1], k, p);
		}
	}
}

/*
 * Where a chunk's fd leads: the number of a chunk in a bin, HEADER + i for
 * bin i's header, or NOT_FREE.
 */
static uint32_t link_to(const struct link_job *j, hi_addr_t fd)
{
	uint32_t k = find_free(j->ix, fd);

	if (k == NOT_FREE && fd - j->b0 < (uint64_t)(j->nbins - 1) * 16 &&
	    !((fd - j->b0) & 15))
		k = HEADER + 1 + (uint32_t)((fd - j->b0) / 16);
	return k;
}

/* The bk of what link_to found: unlink_chunk's check is that it is p. */
static inline hi_addr_t link_back(const struct link_job *j, uint32_t k)
{
	if (k >= HEADER)
		return j->hbk[k - HEADER];
	return fblock_of(j->t, k)->pb[FSLOT(k)].bk;
}

/* How far ahead link_item looks up the chunks it will check. */
#define LINK_AHEAD 16

/*
 * Item i: the links of blocks [i * per, (i + 1) * per), up to the first
 * that fails.  The chunks fd leads to lie anywhere in the table: each is
 * looked up in its bucket LINK_AHEAD chunks ahead of its turn and asked
 * for then, so that the misses on it overlap; the turn checks its bk (and
 * its address where the keys do not name one chunk), and looks up in
 * full what the bucket did not tell (a header, a bucket of SLOW).  Looked
 * up at their turn, one after the other, they took twice as long.
 */
static void link_item(void *arg, size_t i, unsigned char *buf)
{
	struct link_job *j = arg;
	const struct free_index *ix = j->ix;
	/* In registers: nxt's stores could alias them for the compiler. */
	struct fblock *const *dir = j->t->dir;
	const struct bucket *bkt = ix->b;
	const hi_addr_t lo = ix->lo, span = ix->hi - ix->lo;
	const unsigned shift = ix->shift;
	const int exact = ix->exact;
	size_t end = (i + 1) * j->per;
	uint32_t guess[LINK_AHEAD];

	(void)buf;
	j->bad[i] = NOT_FREE;
	if (end > j->t->ndir)
		end = j->t->ndir;
	for (size_t d = i * j->per; d < end; d++) {
		const struct fblock *bl = dir[d];
		const unsigned n = bl->n;
		uint32_t *nxt = j->nxt + (d << FBLOCK_SHIFT);

		for (unsigned o = 0; o < n + LINK_AHEAD; o++) {
			uint32_t k;

			if (o >= LINK_AHEAD) {
				unsigned q = o - LINK_AHEAD;
				hi_addr_t fd = bl->fd[q];

				k = guess[q % LINK_AHEAD];
				if (k == LATER ||
				    (!exact &&
				     dir[k >> FBLOCK_SHIFT]->pb[FSLOT(k)].p != fd))
					k = link_to(j, fd);
				nxt[q] = k;
				if (k == NOT_FREE ||
				    link_back(j, k) != bl->pb[q].p) {
					j->bad[i] = (uint32_t)(d << FBLOCK_SHIFT) +
						    q;
					return;
				}
			}
			if (o < n) {
				hi_addr_t fd = bl->fd[o];
				const struct bucket *e;
				unsigned m;

				k = LATER;
				if (fd - lo < span && !(fd & 15)) {
					e = &bkt[(fd - lo) >> shift];
					if (e->n != SLOW &&
					    (m = key_mask(e, (uint8_t)(fd >> 4)))) {
						k = e->first +
						    (unsigned)__builtin_ctz(m);
						__builtin_prefetch(
							&dir[k >> FBLOCK_SHIFT]
								 ->pb[FSLOT(k)]);
					}
				}
				guess[o % LINK_AHEAD] = k;
			}
		}
	}
}

/*
 * Below this many chunks in bins, one thread checks their links (unless
 * the tests force threads, sweep_workers); above, in items of LINK_ITEM
 * blocks.
 */
#define LINK_SPLIT_MIN 16384
#define LINK_ITEM 2

/*
 * Fewer chunks are on the lists than in bins: name one that is on none
 * (a corrupt heap only, so the lists are walked once more, marking).
 */
static int no_list(const struct ptm_layout *l, const unsigned char *st,
		   const struct link_job *j, struct hi_arena *a)
{
	const struct ftable *t = j->t;

	for (unsigned i = 1; i < j->nbins; i++) {
		hi_addr_t fd = ptm_get_elem(st, &l->bins, 8, (i - 1) * 2);
		uint32_t k = fd == j->b0 + (i - 1) * 16 ? NOT_FREE
							 : find_free(j->ix, fd);

		for (; k < HEADER; k = j->nxt[k])
			t->dir[k >> FBLOCK_SHIFT]->bin[FSLOT(k)] |= 0x80;
	}
	for (size_t d = 0; d < t->ndir; d++) {
		const struct fblock *bl = t->dir[d];

		for (unsigned o = 0; o < bl->n; o++) {
			if (!(bl->bin[o] & 0x80))
				return bad_list(a, bl->pb[o].p, "free chunk "
						HI_PRIxADDR " is on no bin's "
						"list", bl->pb[o].p);
		}
	}
	return bad_list(a, a->addr, "the lists hold fewer chunks than the "
			"bins");
}

/* The lists followed through the look-ups' table, shared out. */
struct walk_job {
	const struct ftable *t;
	const uint32_t *nxt;
	uint32_t first[128]; /* list q: its first chunk */
	unsigned bin[128];   /* list q: its bin */
	unsigned nlists;
	size_t nitems;
	size_t *met;         /* per item: the chunks its lists met */
	/* per list: where it failed (NOT_FREE: it did not), and how */
	uint32_t bad[128];
	unsigned to[128];    /* the bin it led to, or 0: a size of another */
};

/*
 * Item i: lists i, i + nitems, ... side by side, so that the misses of one
 * overlap the others'.  fd is one-to-one: each list comes back to a
 * header without meeting a chunk twice, and the lists never share one, so
 * that counting the chunks they meet tells whether every chunk in a bin is
 * on one; no marks, nothing written but the item's own results.
 */
static void walk_item(void *arg, size_t i, unsigned char *buf)
{
	struct walk_job *w = arg;
	struct fblock *const *dir = w->t->dir;
	uint32_t cur[128];
	unsigned lst[128], nact = 0;
	size_t met = 0;

	(void)buf;
	for (size_t q = i; q < w->nlists; q += w->nitems) {
		cur[nact] = w->first[q];
		lst[nact++] = (unsigned)q;
	}
	while (nact) {
		for (unsigned a = 0; a < nact;) {
			uint32_t k = cur[a], n;
			unsigned q = lst[a], b = w->bin[q];
			unsigned own = dir[k >> FBLOCK_SHIFT]->bin[FSLOT(k)];

			n = w->nxt[k];
			/* A bound on heapinspect's own logic, not the heap. */
			if (++met > w->t->nf) {
				w->bad[q] = k;
				w->to[q] = b;
			} else if (b > 1 && own != b) {
				w->bad[q] = k;
				w->to[q] = 0;
			} else if (n < HEADER) {
				cur[a++] = n;
				continue;
			} else if (n - HEADER != b) {
				w->bad[q] = k;
				w->to[q] = n - HEADER;
			}
			/* At a header, or failed: the list is done. */
			cur[a] = cur[--nact];
			lst[a] = lst[nact];
		}
	}
	w->met[i] = met;
}

/*
 * What walking the bins checks, on the chunks the sweep found in them (t,
 * in address order), without following the links one read at a time:
 * every fd is a chunk in a bin or a bin's header whose bk points back (as
 * unlink_chunk checks; over all chunks and headers, fd is then one-to-one
 * and bk its inverse), every list goes from its header back to it through
 * chunks of its bin's size (any size in the unsorted bin), and every chunk
 * in a bin is on one list.  An index is made of the chunks and where each
 * fd leads is found in one pass of independent look-ups, both shared out
 * to the sweep's threads (nworkers) from split_min chunks; then the lists
 * are followed through that table, side by side.  A failure sets a's
 * status to -HI_E_CORRUPT with where and why.  Return 0, or -ENOMEM.
 */
static int check_bins(const struct ptm_layout *l, const unsigned char *st,
		      struct ftable *t, unsigned nworkers, size_t split_min,
		      struct hi_arena *a)
{
	struct link_job j = {
		.t = t,
		.nbins = (unsigned)(l->bins.count / 2 + 1),
		.b0 = a->addr + l->bins.off - l->c_fd.off,
	};
	struct walk_job *w = NULL;
	struct free_index ix;
	uint32_t worst = NOT_FREE;
	size_t met = 0, nitems = 1;
	unsigned nact = 0, nw;
	int ret;

	if (j.nbins > 128)
		return bad_list(a, a->addr, "more bins than glibc has");
	ret = index_free(t, &ix);
	if (ret)
		return ret;
	j.ix = &ix;
	/*
	 * Items of LINK_ITEM blocks: the thread that sweeps waits for an item
	 * a helper has taken, and on a busy machine a helper may lose its CPU
	 * in the middle of one (with 4 items a thread, the look-ups took 3 to
	 * 12 ms of the 1M-chunk heap's stop here, against 5.5 ms alone).
	 */
	j.per = t->ndir ? t->ndir : 1;
	if (nworkers > 1 && t->nf >= split_min) {
		j.per = LINK_ITEM;
		nitems = (t->ndir + LINK_ITEM - 1) / LINK_ITEM;
	}
	nw = nitems > 1 ? nworkers : 1;
	j.nxt = malloc(((t->ndir ? t->ndir : 1) << FBLOCK_SHIFT) *
		       sizeof(*j.nxt));
	j.bad = malloc(nitems * sizeof(*j.bad));
	w = calloc(1, sizeof(*w));
	if (w)
		w->met = calloc(nitems, sizeof(*w->met));
	if (!j.nxt || !j.bad || !w || !w->met) {
		ret = -ENOMEM;
		goto out;
	}
	if (t->nf) {
		const struct fblock *lb = t->dir[t->ndir - 1];

		crew_run(index_item, &j, nitems, nw, 0);
		for (uint64_t b = ((lb->pb[lb->n - 1].p - ix.lo) >> ix.shift) + 1;
		     b < ix.nb; b++)
			ix.b[b] = (struct bucket){
				.first = (uint32_t)(t->ndir << FBLOCK_SHIFT) };
	}
	for (unsigned i = 1; i < j.nbins; i++)
		j.hbk[i] = ptm_get_elem(st, &l->bins, 8, (i - 1) * 2 + 1);
	/* Every header: its fd leads to a chunk whose bk is the header. */
	for (unsigned i = 1; i < j.nbins; i++) {
		hi_addr_t b = j.b0 + (i - 1) * 16;
		hi_addr_t fd = ptm_get_elem(st, &l->bins, 8, (i - 1) * 2);
		uint32_t k;

		if (fd == b) {
			if (j.hbk[i] == b)
				continue;
			ret = bad_list(a, b, "%s %u: its fd is its header, its "
				       "bk " HI_PRIxADDR, i == 1 ? "unsorted "
				       "bin" : "bin", i, j.hbk[i]);
			goto out;
		}
		k = find_free(&ix, fd);
		if (k == NOT_FREE) {
			ret = bad_list(a, fd, "%s %u: chunk " HI_PRIxADDR " is "
				       "not free", i == 1 ? "unsorted bin" :
				       "bin", i, fd);
			goto out;
		}
		if (link_back(&j, k) != b) {
			ret = bad_list(a, fd, "chunk " HI_PRIxADDR " in a bin: "
				       "its bk " HI_PRIxADDR " does not point "
				       "back at bin %u's header", fd,
				       link_back(&j, k), i);
			goto out;
		}
		w->first[nact] = k;
		w->bin[nact] = i;
		w->bad[nact++] = NOT_FREE;
	}
	/* Where each fd leads, and that it points back: one pass. */
	crew_run(link_item, &j, nitems, nw, 0);
	for (size_t i = 0; i < nitems; i++)
		worst = j.bad[i] < worst ? j.bad[i] : worst;
	if (worst != NOT_FREE) {
		const struct fblock *bl = fblock_of(t, worst);
		hi_addr_t p = bl->pb[FSLOT(worst)].p, fd = bl->fd[FSLOT(worst)];
		uint32_t k = link_to(&j, fd);

		if (k == NOT_FREE)
			ret = bad_list(a, p, "chunk " HI_PRIxADDR " in a bin: "
				       "its fd " HI_PRIxADDR " is neither a "
				       "free chunk nor a bin", p, fd);
		else if (k >= HEADER)
			ret = bad_list(a, p, "chunk " HI_PRIxADDR " in a bin: "
				       "its fd is bin %u's header, whose bk "
				       HI_PRIxADDR " does not point back at "
				       "it", p, k - HEADER, link_back(&j, k));
		else
			ret = bad_list(a, fd, "chunk " HI_PRIxADDR " in a bin: "
				       "its bk " HI_PRIxADDR " does not point "
				       "back at " HI_PRIxADDR, fd,
				       link_back(&j, k), p);
		goto out;
	}
	/* Every list from its header. */
	w->t = t;
	w->nxt = j.nxt;
	/*
	 * All lists side by side in one thread: shared out in groups, each
	 * thread had fewer misses to overlap, and the walk took 1.5 to 3
	 * times as long as alone (1.4 ms of the 1M-chunk heap's stop here).
	 */
	w->nlists = nact;
	w->nitems = 1;
	crew_run(walk_item, w, 1, 1, 0);
	for (unsigned q = 0; q < nact; q++) {
		const struct fblock *bl;
		hi_addr_t p;

		if (w->bad[q] == NOT_FREE)
			continue;
		bl = fblock_of(t, w->bad[q]);
		p = bl->pb[FSLOT(w->bad[q])].p;
		if (!w->to[q])
			ret = bad_list(a, p, "bin %u: chunk " HI_PRIxADDR
				       " belongs to bin %u by its size",
				       w->bin[q], p, bl->bin[FSLOT(w->bad[q])]);
		else if (w->to[q] == w->bin[q])
			ret = bad_list(a, p, "bin %u loops", w->bin[q]);
		else
			ret = bad_list(a, p, "bin %u: chunk " HI_PRIxADDR
				       " leads to bin %u", w->bin[q], p,
				       w->to[q]);
		goto out;
	}
	for (size_t i = 0; i < w->nitems; i++)
		met += w->met[i];
	if (met != t->nf)
		ret = no_list(l, st, &j, a);
out:
	if (w)
		free(w->met);
	free(w);
	free(j.bad);
	free(j.nxt);
	free(ix.b);
	return ret;
}

/* The regions of a non-main arena: its heaps, from heap_info to heap_info. */
static int heap_regions(const struct ptm_layout *l, const struct hi_reader *r,
			const struct hi_maps *maps, struct hi_arena *a,
			hi_addr_t top, struct region **out, size_t *nout)
{
	hi_addr_t first = a->addr - l->hinfo_size;
	hi_addr_t h = top & ~(HEAP_MAX_64 - 1);
	struct region *v = NULL;
	size_t n = 0;
	uint64_t total = 0;

	if (!l->hinfo_size || a->addr < l->hinfo_size)
		return -ENOTSUP;
	for (;;) {
		unsigned char hb[256];
		hi_addr_t ar, prev, start;
		uint64_t size;
		struct region *nv;

		if (n == MAX_HEAPS || l->hinfo_size > sizeof(hb) ||
		    !hi_maps_rw_range(maps, h, l->hinfo_size) ||
		    hi_read(r, h, hb, l->hinfo_size))
			goto fail;
		ar = ptm_get(hb, &l->h_ar_ptr);
		prev = ptm_get(hb, &l->h_prev);
		size = ptm_get(hb, &l->h_size);
		/* Its pages may differ, not its header (hi_maps_range). */
		if (ar != a->addr || size > HEAP_MAX_64 ||
		    !hi_maps_range(maps, h, size, HI_PROT_R))
			goto fail;
		nv = realloc(v, (n + 1) * sizeof(*v));
		if (!nv)
			goto fail;
		v = nv;
		start = h == first ? a->addr + l->state_size
				   : h + l->hinfo_size;
		/* The first chunk's user memory is MALLOC_ALIGNMENT-aligned. */
		while ((start + 2 * l->c_size.size) & (ptm_align(l) - 1))
			start++;
		v[n].start = start;
		v[n].end = n == 0 ? top : h + size;
		v[n].kind = n == 0 ? END_TOP : END_HEAP;
		/* top's header is read; a heap ends with its mapping. */
		v[n].limit = n == 0 ? top + l->c_size.off + l->c_size.size
				    : h + size;
		if (v[n].end < start)
			goto fail;
		n++;
		total += size;
		if (h == first)
			break;
		if (prev & (HEAP_MAX_64 - 1))
			goto fail;
		h = prev;
	}
	/* system_mem is the sum of the heaps' sizes (grow_heap, new_heap). */
	if (total != a->system_mem)
		goto fail;
	*out = v;
	*nout = n;
	return 0;
fail:
	free(v);
	return -ENOTSUP;
}

/*
 * The mappings inside the regions that are not writable, into *out
 * (malloc'd, count *n).  0 or -ENOMEM.
 */
static int ro_pages(const struct hi_maps *maps, const struct region *rg,
		    size_t nrg, hi_addr_t (**out)[2], size_t *n)
{
	hi_addr_t (*v)[2] = NULL;
	size_t cap = 0;

	*n = 0;
	for (size_t i = 0; i < nrg; i++) {
		const struct hi_map *m = hi_maps_find(maps, rg[i].start);

		for (; m && m < maps->v + maps->n && m->start < rg[i].limit;
		     m++) {
			if (m->prot & HI_PROT_W)
				continue;
			if (*n == cap) {
				hi_addr_t (*nv)[2];

				cap = cap ? 2 * cap : 4;
				nv = realloc(v, cap * sizeof(*v));
				if (!nv) {
					free(v);
					return -ENOMEM;
				}
				v = nv;
			}
			v[*n][0] = m->start;
			v[(*n)++][1] = m->end;
		}
	}
	*out = v;
	return 0;
}

int ptm_sweep(const struct ptm_layout *l, const struct ptm_where *w,
	      const struct hi_reader *r, const struct hi_maps *maps,
	      const unsigned char *st, hi_addr_t top, int if_cheaper,
	      struct hi_arena *a)
{
	struct sweep sw = { .l = l, .r = r };
	struct small_index ix = { 0 };
	struct part sum = { 0 };
	struct ftable ft = { 0 };
	struct region *rg = NULL;
	hi_addr_t *cand = NULL, (*ro)[2] = NULL;
	size_t nrg = 0, ncand = 0;
	uint64_t piece_min = PIECE_MIN;
	unsigned nworkers;
	int ret;

	/*
	 * A small arena: the lists' walk gives up in time if it must.  The
	 * guess needs a reader with a cache that fetches ahead.
	 */
	if (if_cheaper && (a->system_mem < GUESS_MIN || !r->cached ||
			   !r->prefetch))
		return -EAGAIN;
	nworkers = r->read_direct ? sweep_workers(&piece_min) : 1;

	if (l->c_size.size != 8 || l->c_fd.size != 8 || !l->flags.size)
		return -ENOTSUP;
	for (uint64_t i = 0; i < l->fastbins.count && i < 64; i++) {
		struct ptm_field e = {
			.off = l->fastbins.off + i * l->ptr_size,
			.size = l->ptr_size,
		};

		if (ptm_get(st, &e)) {
			sw.fast_want |= 1ull << i;
			sw.fast_max = (i + 2) * 16;
		}
	}
	/* Before the first sysmalloc there is no heap and no free chunk. */
	if (a->system_mem == 0 && !sw.fast_want)
		return 0;
	if (a->is_main) {
		unsigned char b[8];
		hi_addr_t base;

		if (ptm_get(st, &l->flags) & NONCONTIGUOUS_BIT ||
		    !l->sbrk_base.size ||
		    hi_read(r, w->mp + l->sbrk_base.off, b, l->sbrk_base.size))
			return -ENOTSUP;
		{
			struct ptm_field f = { .off = 0,
					       .size = l->sbrk_base.size };

			base = ptm_get(b, &f);
		}
		/* sysmalloc aligns the first chunk's user memory. */
		while (base && ((base + 2 * l->c_size.size) &
				(ptm_align(l) - 1)))
			base++;
		if (!base || top < base || top - base + a->top_size !=
						   a->system_mem)
			return -ENOTSUP;
		rg = malloc(sizeof(*rg));
		if (!rg)
			return -ENOMEM;
		rg->start = base;
		rg->end = top;
		rg->limit = top + l->c_size.off + l->c_size.size;
		rg->kind = END_TOP;
		nrg = 1;
	} else {
		ret = heap_regions(l, r, maps, a, top, &rg, &nrg);
		if (ret)
			return ret;
	}
	for (size_t i = 0; i < nrg; i++) {
		/*
		 * Readable: a program may make part of a block read-only;
		 * a free chunk must be writable, which the link check of
		 * every free chunk proves (malloc wrote its links).
		 */
		if (rg[i].limit < rg[i].start ||
		    !hi_maps_range(maps, rg[i].start,
				   rg[i].limit - rg[i].start, HI_PROT_R)) {
			ret = -ENOTSUP;
			goto out;
		}
	}
	ret = ro_pages(maps, rg, nrg, &ro, &sw.nro);
	if (ret)
		goto out;
	sw.ro = (const hi_addr_t (*)[2])ro;
	sw.lo = rg[0].start;
	for (size_t i = 0; i < nrg; i++) {
		sw.lo = rg[i].start < sw.lo ? rg[i].start : sw.lo;
		sw.hi = rg[i].end > sw.hi ? rg[i].end : sw.hi;
	}
	ret = known_chunks(l, st, a->addr, &cand, &ncand);
	if (ret)
		goto out;
	if (if_cheaper) {
		ret = sweep_pays(&sw, cand, ncand, rg, nrg, nworkers);
		if (ret <= 0) {
			ret = ret ? ret : -EAGAIN;
			goto out;
		}
	}
	ret = sweep_all(&sw, cand, ncand, rg, nrg, &nworkers, piece_min, &sum,
			&ft);
	if (ret)
		goto out;
	ret = check_bins(l, st, &ft, nworkers,
			 piece_min < PIECE_MIN ? 1 : LINK_SPLIT_MIN, a);
	if (ret || a->status)
		goto out;
	a->bin_chunks += sum.bin_chunks;
	a->bin_bytes += sum.bin_bytes;
	if (sw.fast_want) {
		ret = index_smalls(&sum, &ix);
		if (ret)
			goto out;
	}
	for (uint64_t i = 0; i < l->fastbins.count && !a->status; i++) {
		struct ptm_field e = {
			.off = l->fastbins.off + i * l->ptr_size,
			.size = l->ptr_size,
		};
		hi_addr_t head = ptm_get(st, &e);

		if (head) {
			ret = fastbin_from_table(l, &ix, a, (unsigned)i, head);
			if (ret)
				goto out;
		}
	}
	ret = 0;
out:
	free(ix.slot);
	if (ret) {
		a->bin_chunks = a->bin_bytes = 0;
		a->fast_chunks = a->fast_bytes = 0;
	}
	free_part(&sum);
	free_ftable(&ft);
	free(cand);
	free(ro);
	free(rg);
	return ret;
}
