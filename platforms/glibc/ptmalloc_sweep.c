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
 * What the walk of int_mallinfo (malloc.c, 2.31 to 2.41) counts can be seen
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
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

/* A stretch of a table of chunks in bins: one piece's, in address order. */
struct run {
	size_t start, n;
	hi_addr_t first; /* where the piece starts */
};

/* What the sweep of one region found. */
struct part {
	uint64_t bin_chunks;
	uint64_t bin_bytes;
	struct small *v;
	size_t n;
	size_t cap;
	/*
	 * The chunks in a bin (their successor's PREV_INUSE clear), in
	 * address order: where, their fd link, the bin their size belongs
	 * to; and the sum of link_edge(p, fd) - link_edge(bk, p) over them.
	 */
	hi_addr_t *fa;
	hi_addr_t *ffd;
	uint8_t *fbin;
	size_t nf;
	size_t capf;
	uint64_t links;
	struct run *runs; /* the sum's only: each part's place in it */
	size_t nruns;
	int err;
};

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

/*
 * The links of the free chunks are checked without following them one
 * by one: over every chunk in a bin and every bin header, the sum of
 * link_edge(p, p->fd) equals that of link_edge(p->bk, p) exactly when
 * every fd is a chunk or header whose bk points back (the two multisets
 * of edges are equal: fd is then a permutation and bk its inverse).  The
 * edges are hashed with a key drawn at random once per process, so that
 * no heap can be made to pass with links that do not point back.
 */
static uint64_t link_key[2];
static pthread_once_t link_once = PTHREAD_ONCE_INIT;

static void link_key_init(void)
{
	uint64_t k[2] = { 0 };
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

	if (fd < 0 || read(fd, k, sizeof(k)) != (ssize_t)sizeof(k)) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		k[0] = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^
		       (uint64_t)getpid();
		k[1] = (uint64_t)ts.tv_sec * 0xc2b2ae3d27d4eb4full ^ k[0];
	}
	if (fd >= 0)
		close(fd);
	link_key[0] = k[0];
	link_key[1] = k[1] | 1;
}

/* splitmix64's finalizer: a bijection that mixes every bit. */
static inline uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static inline uint64_t link_edge(hi_addr_t from, hi_addr_t to)
{
	return mix64(mix64(from + link_key[0]) ^ (to * link_key[1]));
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

static int grow_free(struct part *pt, size_t want)
{
	size_t ncap = pt->capf ? pt->capf : 4096;
	void *a, *b, *c;

	while (ncap < want)
		ncap *= 2;
	a = realloc(pt->fa, ncap * sizeof(*pt->fa));
	if (a)
		pt->fa = a;
	b = realloc(pt->ffd, ncap * sizeof(*pt->ffd));
	if (b)
		pt->ffd = b;
	c = realloc(pt->fbin, ncap);
	if (c)
		pt->fbin = c;
	if (!a || !b || !c)
		return -ENOMEM;
	pt->capf = ncap;
	return 0;
}

static inline int add_free(struct part *pt, hi_addr_t p, uint64_t sz,
			   hi_addr_t fd, hi_addr_t bk)
{
	if (pt->nf == pt->capf && grow_free(pt, pt->nf + 1))
		return -ENOMEM;
	pt->fa[pt->nf] = p;
	pt->ffd[pt->nf] = fd;
	pt->fbin[pt->nf] = bin_of(sz);
	pt->nf++;
	pt->links += link_edge(p, fd) - link_edge(bk, p);
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
		hi_addr_t next, link = p + l->c_fd.off;
		int have;

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
		/*
		 * Its links, fd then bk (ptm_layout_check), while the window
		 * still holds them, in case it is free: read once the window
		 * had moved on to the next chunk, they cost a window of their
		 * own behind every chunk jumped over (1.4 times the bytes
		 * copied on the 1M-chunk heap of bench/).
		 */
		have = link + 16 <= sw->wend;
		if (have) {
			fd = word(sw->buf + (link - sw->wstart));
			bk = word(sw->buf + (link + 8 - sw->wstart));
		}
		next = p + sz;
		h = need(sw, next + l->c_size.off, ssz, &err);
		if (!h)
			return err;
		nsz = word(h);
		if (!(nsz & 1)) {
			/* PREV_INUSE clear: p is in a bin. */
			if (sw->nro && in_ro(sw, p, sz))
				return -ENOTSUP;
			if (!have) {
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

			if (!have) {
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

/* Regions handed out to the workers of one sweep, in any order. */
struct crew {
	const struct sweep *proto;
	const struct region *rg;
	struct part *parts;
	size_t n;
	size_t next;     /* the next region to take (atomic) */
	unsigned active; /* pool threads inside it (pool.mu) */
};

/* Sweep regions of c until none is left, with the window buf. */
static void crew_work(struct crew *c, unsigned char *buf)
{
	struct sweep sw = *c->proto;

	sw.buf = buf;
	for (;;) {
		size_t i = __atomic_fetch_add(&c->next, 1, __ATOMIC_RELAXED);

		if (i >= c->n)
			break;
		c->parts[i].err = buf ? sweep_region(&sw, &c->rg[i],
						     &c->parts[i])
				      : -ENOMEM;
	}
}

/*
 * The threads that help sweep: started at the first sweep that wants
 * them, kept (each with its window) until ptm_sweep_end, so that a heap
 * of many arenas does not start threads, map windows and fault their
 * pages in for every arena while the target is stopped.  The thread that
 * sweeps never waits for a helper that has not started yet: on a busy
 * machine a helper may not run for milliseconds.  It takes every region
 * left itself, and waits only for those a helper has taken.
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
 * Sweep the regions with up to nworkers threads, this one included; each
 * region's findings go to its part.
 */
static void crew_run(const struct sweep *proto, const struct region *rg,
		     struct part *parts, size_t n, unsigned nworkers)
{
	struct sweep one = *proto;
	struct crew c = { .proto = &one, .rg = rg, .parts = parts, .n = n };
	unsigned char *buf = malloc(WINDOW);

	one.shared = nworkers > 1;
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
 * page instead of PIECE_MIN).
 */
static unsigned sweep_workers(uint64_t *piece_min)
{
	const char *force = getenv("HEAPINSPECT_SWEEP_THREADS");
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

static void free_part(struct part *pt)
{
	free(pt->runs);
	free(pt->v);
	free(pt->fa);
	free(pt->ffd);
	free(pt->fbin);
}

/* Add from's chunks in bins to to's, after them. */
static int append_free(struct part *to, const struct part *from)
{
	if (from->nf && to->capf - to->nf < from->nf &&
	    grow_free(to, to->nf + from->nf))
		return -ENOMEM;
	if (from->nf) {
		memcpy(to->fa + to->nf, from->fa, from->nf * sizeof(*to->fa));
		memcpy(to->ffd + to->nf, from->ffd,
		       from->nf * sizeof(*to->ffd));
		memcpy(to->fbin + to->nf, from->fbin, from->nf);
	}
	to->nf += from->nf;
	to->links += from->links;
	return 0;
}

/*
 * Sweep the regions, in pieces by several threads where that pays, and
 * add up what they found in *sum (its table of small chunks in address
 * order within each region).
 */
static int sweep_all(const struct sweep *proto, const hi_addr_t *cand,
		     size_t ncand, const struct region *rg, size_t nrg,
		     unsigned nworkers, uint64_t piece_min, struct part *sum)
{
	struct region *pieces = NULL;
	struct part *parts = NULL;
	size_t n = 0;
	int ret;

	ret = cut(proto->l, cand, ncand, rg, nrg, nworkers, piece_min, &pieces,
		  &n);
	if (ret)
		return ret;
	for (int attempt = 0; attempt < 2; attempt++) {
		const struct region *v = pieces ? pieces : rg;

		if (!pieces) {
			n = nrg;
			nworkers = 1;
		}
		parts = calloc(n, sizeof(*parts));
		if (!parts) {
			ret = -ENOMEM;
			break;
		}
		crew_run(proto, v, parts, n, nworkers);
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
	if (!ret && parts) {
		sum->runs = calloc(n, sizeof(*sum->runs));
		if (!sum->runs)
			ret = -ENOMEM;
	}
	for (size_t i = 0; parts && i < n; i++) {
		const struct region *v = pieces ? pieces : rg;

		if (!ret) {
			sum->bin_chunks += parts[i].bin_chunks;
			sum->bin_bytes += parts[i].bin_bytes;
			ret = append_smalls(sum, &parts[i]);
		}
		if (!ret) {
			sum->runs[i].start = sum->nf;
			sum->runs[i].n = parts[i].nf;
			sum->runs[i].first = v[i].start;
			sum->nruns = i + 1;
			ret = append_free(sum, &parts[i]);
		}
		free_part(&parts[i]);
	}
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

/*
 * Put the table of chunks in bins in address order: each piece's chunks
 * are (pt->runs), and the pieces follow their regions, a non-main arena's
 * heaps (each mapped wherever mmap put it) in the order of their chain.
 * Pieces never overlap.  0 or -ENOMEM.
 */
static int run_cmp(const void *x, const void *y)
{
	const struct run *a = x, *b = y;

	return a->first < b->first ? -1 : a->first > b->first;
}

static int sort_free(struct part *pt)
{
	struct part out = { 0 };
	int ret = 0;

	for (size_t i = 1; i < pt->nf; i++) {
		if (pt->fa[i] <= pt->fa[i - 1])
			goto sort;
	}
	return 0;
sort:
	qsort(pt->runs, pt->nruns, sizeof(*pt->runs), run_cmp);
	for (size_t i = 0; i < pt->nruns && !ret; i++) {
		struct part run = {
			.fa = pt->fa + pt->runs[i].start,
			.ffd = pt->ffd + pt->runs[i].start,
			.fbin = pt->fbin + pt->runs[i].start,
			.nf = pt->runs[i].n,
		};

		ret = append_free(&out, &run);
	}
	if (ret) {
		free_part(&out);
		return ret;
	}
	free(pt->fa);
	free(pt->ffd);
	free(pt->fbin);
	pt->fa = out.fa;
	pt->ffd = out.ffd;
	pt->fbin = out.fbin;
	pt->capf = out.capf;
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
 * Where the chunks in bins are, by address: buckets of 2^shift bytes over
 * [lo, hi), each the index of its first chunk in the sorted table.
 */
struct free_index {
	const hi_addr_t *fa;
	size_t n;
	hi_addr_t lo, hi;
	unsigned shift;
	uint32_t *first;
};

#define NOT_FREE UINT32_MAX
#define HEADER (UINT32_MAX - 256) /* + bin index: a bin's header */

static int index_free(const struct part *pt, struct free_index *ix)
{
	uint64_t nb;
	size_t k = 0;

	memset(ix, 0, sizeof(*ix));
	ix->fa = pt->fa;
	ix->n = pt->nf;
	if (pt->nf >= HEADER)
		return -ENOMEM;
	if (!pt->nf)
		return 0;
	ix->lo = pt->fa[0];
	ix->hi = pt->fa[pt->nf - 1] + 1;
	/* Pages, or larger buckets where the chunks are far apart. */
	ix->shift = 12;
	while (((ix->hi - ix->lo) >> ix->shift) > 4 * (uint64_t)pt->nf + 1024)
		ix->shift++;
	nb = ((ix->hi - ix->lo) >> ix->shift) + 2;
	ix->first = malloc(nb * sizeof(*ix->first));
	if (!ix->first)
		return -ENOMEM;
	for (uint64_t b = 0; b < nb; b++) {
		hi_addr_t at = ix->lo + (b << ix->shift);

		while (k < pt->nf && pt->fa[k] < at)
			k++;
		ix->first[b] = (uint32_t)k;
	}
	return 0;
}

/* The index of the chunk in a bin at p, or NOT_FREE. */
static inline uint32_t find_free(const struct free_index *ix, hi_addr_t p)
{
	uint64_t b;
	uint32_t k, end;

	if (p < ix->lo || p >= ix->hi)
		return NOT_FREE;
	b = (p - ix->lo) >> ix->shift;
	for (k = ix->first[b], end = ix->first[b + 1]; k < end; k++) {
		if (ix->fa[k] == p)
			return k;
	}
	return NOT_FREE;
}

/*
 * What walking the bins checks, on the chunks the sweep found in them
 * (pt, sorted by address): every fd is a chunk in a bin or a bin's header
 * and its bk points back (the sum of pt->links and the headers' edges),
 * every list goes from its header back to it through chunks of its size
 * (any size in the unsorted bin), and every chunk in a bin is on one
 * list.  The lists are followed through a table of indexes made in one
 * pass, all at once, so that the misses of one overlap the others'.  A
 * failure sets a's status to -HI_E_CORRUPT with where and why.  Return 0,
 * or -ENOMEM.
 */
static int check_bins(const struct ptm_layout *l, const struct hi_reader *r,
		      const unsigned char *st, struct part *pt,
		      struct hi_arena *a)
{
	unsigned nbins = (unsigned)(l->bins.count / 2 + 1);
	hi_addr_t b0 = a->addr + l->bins.off - l->c_fd.off;
	uint64_t links = pt->links;
	struct free_index ix;
	uint32_t *nxt = NULL, cur[128], end[128];
	size_t visited = 0, *pred = NULL;
	unsigned nact = 0;
	int ret;

	if (nbins > 128)
		return bad_list(a, a->addr, "more bins than glibc has");
	for (unsigned i = 1; i < nbins; i++) {
		hi_addr_t b = b0 + (i - 1) * 16;
		hi_addr_t fd = ptm_get_elem(st, &l->bins, 8, (i - 1) * 2);
		hi_addr_t bk = ptm_get_elem(st, &l->bins, 8, (i - 1) * 2 + 1);

		links += link_edge(b, fd) - link_edge(bk, b);
	}
	ret = index_free(pt, &ix);
	if (ret)
		return ret;
	nxt = malloc((pt->nf ? pt->nf : 1) * sizeof(*nxt));
	if (!nxt) {
		ret = -ENOMEM;
		goto out;
	}
	/* Where each fd leads: one pass, the look-ups independent. */
	for (size_t i = 0; i < pt->nf; i++) {
		hi_addr_t fd = pt->ffd[i];
		uint32_t k = find_free(&ix, fd);

		if (k == NOT_FREE && fd - b0 < (uint64_t)(nbins - 1) * 16 &&
		    !((fd - b0) & 15))
			k = HEADER + 1 + (uint32_t)((fd - b0) / 16);
		if (k == NOT_FREE) {
			ret = bad_list(a, pt->fa[i], "chunk " HI_PRIxADDR " in "
				       "a bin: its fd " HI_PRIxADDR " is "
				       "neither a free chunk nor a bin",
				       pt->fa[i], fd);
			goto out;
		}
		nxt[i] = k;
	}
	/* Every list from its header, side by side. */
	for (unsigned i = 1; i < nbins; i++) {
		hi_addr_t b = b0 + (i - 1) * 16;
		hi_addr_t fd = ptm_get_elem(st, &l->bins, 8, (i - 1) * 2);
		uint32_t k;

		if (fd == b)
			continue;
		k = find_free(&ix, fd);
		if (k == NOT_FREE) {
			ret = bad_list(a, fd, "%s %u: chunk " HI_PRIxADDR " is "
				       "not free", i == 1 ? "unsorted bin" :
				       "bin", i, fd);
			goto out;
		}
		cur[nact] = k;
		end[nact++] = i;
	}
	while (nact) {
		for (unsigned j = 0; j < nact;) {
			uint32_t k = cur[j], n;
			unsigned i = end[j];

			if (pt->fbin[k] & 0x80) {
				ret = bad_list(a, pt->fa[k], "bin %u: chunk "
					       HI_PRIxADDR " is on a list "
					       "twice, or on two", i,
					       pt->fa[k]);
				goto out;
			}
			if (i > 1 && pt->fbin[k] != i) {
				ret = bad_list(a, pt->fa[k], "bin %u: chunk "
					       HI_PRIxADDR " belongs to bin "
					       "%u by its size", i, pt->fa[k],
					       pt->fbin[k]);
				goto out;
			}
			pt->fbin[k] |= 0x80;
			visited++;
			n = nxt[k];
			if (n < HEADER) {
				cur[j++] = n;
				continue;
			}
			if (n - HEADER != i) {
				ret = bad_list(a, pt->fa[k], "bin %u: chunk "
					       HI_PRIxADDR " leads to bin %u",
					       i, pt->fa[k], n - HEADER);
				goto out;
			}
			/* At its header again: the list is done. */
			cur[j] = cur[--nact];
			end[j] = end[nact];
		}
	}
	for (size_t i = 0; i < pt->nf; i++) {
		if (!(pt->fbin[i] & 0x80)) {
			ret = bad_list(a, pt->fa[i], "free chunk " HI_PRIxADDR
				       " is on no bin's list", pt->fa[i]);
			goto out;
		}
	}
	if (!links) {
		ret = 0;
		goto out;
	}
	/*
	 * Every fd is right, some bk is not: find it (a corrupt heap only,
	 * so a read per chunk).  Each chunk's bk must be what leads to it.
	 */
	pred = malloc((pt->nf ? pt->nf : 1) * sizeof(*pred));
	if (!pred) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < pt->nf; i++) {
		if (nxt[i] < HEADER)
			pred[nxt[i]] = i;
	}
	for (unsigned i = 1; i < nbins; i++) {
		hi_addr_t b = b0 + (i - 1) * 16;
		hi_addr_t fd = ptm_get_elem(st, &l->bins, 8, (i - 1) * 2);
		uint32_t k = fd == b ? NOT_FREE : find_free(&ix, fd);

		if (k != NOT_FREE)
			pred[k] = SIZE_MAX - i;
	}
	for (size_t k = 0; k < pt->nf; k++) {
		unsigned char w[8];
		hi_addr_t want = pred[k] >= SIZE_MAX - 128
					 ? b0 + (SIZE_MAX - pred[k] - 1) * 16
					 : pt->fa[pred[k]];
		uint64_t bk;

		if (hi_read(r, pt->fa[k] + l->c_bk.off, w, 8))
			continue;
		memcpy(&bk, w, 8);
		if (bk != want) {
			ret = bad_list(a, pt->fa[k], "chunk " HI_PRIxADDR " in a "
				       "bin: its bk " HI_PRIxADDR " does not "
				       "point back at " HI_PRIxADDR,
				       pt->fa[k], bk, want);
			goto out;
		}
	}
	ret = bad_list(a, a->addr, "a bin's last chunk is not the one its bk "
		       "points at");
out:
	free(pred);
	free(nxt);
	free(ix.first);
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
	pthread_once(&link_once, link_key_init);
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
	ret = sweep_all(&sw, cand, ncand, rg, nrg, nworkers, piece_min, &sum);
	if (ret)
		goto out;
	/* The table sorted: a non-main arena's heaps come last first. */
	ret = sort_free(&sum);
	if (ret)
		goto out;
	ret = check_bins(l, r, st, &sum, a);
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
	free(cand);
	free(ro);
	free(rg);
	return ret;
}
