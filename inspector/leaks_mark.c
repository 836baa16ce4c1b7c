/* SPDX-License-Identifier: MIT */
/*
 * The mark of `heapinspect leaks`: valgrind memcheck's leak search
 * (memcheck/mc_leakcheck.c, 3.19) over blocks and roots of another
 * process, read through a struct hi_reader.  Written from memcheck's
 * manual and its source as a specification; none of its code is here.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "leaks.h"

#define WORD 8u
#define BUF_SIZE (64u * 1024u)
#define PAGE 4096u

#define ST_KIND 3u
#define ST_PENDING 4u
#define ST_HEUR_SHIFT 3

/* aux of a REACHABLE, POSSIBLE or INDIRECT block: where it came from. */
#define AUX_BLOCK (1ull << 63)
#define AUX_VALUE (1ull << 62)

/* memcheck's VTABLE_MAX_CHECK: words looked at for two code pointers. */
#define VTABLE_WORDS 20

struct mark {
	const struct hi_leak_block *b;
	size_t n;
	hi_addr_t lo, hi;       /* lowest addr, highest end (1 for size 0) */
	const struct hi_leak_env *env;
	struct hi_leak_result *r;
	uint32_t *stack;
	size_t top, cap;
	unsigned char *buf;
};

static uint64_t extent(const struct hi_leak_block *b)
{
	/* memcheck: a block of size 0 covers one byte (find_chunk_for). */
	return b->size ? b->size : 1;
}

/* The block that ptr points at or into, or -1. */
static long find_block(const struct mark *m, hi_addr_t ptr)
{
	size_t lo = 0, hi = m->n;

	if (ptr < m->lo || ptr >= m->hi)
		return -1;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct hi_leak_block *b = &m->b[mid];

		if (ptr < b->addr)
			hi = mid;
		else if (ptr - b->addr >= extent(b))
			lo = mid + 1;
		else
			return (long)mid;
	}
	return -1;
}

static unsigned kind(const struct mark *m, size_t i)
{
	return m->r->state[i] & ST_KIND;
}

static void set_kind(struct mark *m, size_t i, unsigned k)
{
	m->r->state[i] = (uint8_t)((m->r->state[i] & ~ST_KIND) | k);
}

static unsigned heur(const struct mark *m, size_t i)
{
	return (m->r->state[i] >> ST_HEUR_SHIFT) & 7u;
}

static void set_heur(struct mark *m, size_t i, unsigned h)
{
	m->r->state[i] = (uint8_t)((m->r->state[i] & 7u) |
				   (h << ST_HEUR_SHIFT));
}

/* lc_push: at most once on the stack at a time. */
static int push(struct mark *m, size_t i)
{
	if (m->r->state[i] & ST_PENDING)
		return 0;
	if (m->top == m->cap) {
		size_t ncap = m->cap ? m->cap * 2 : 1024;
		uint32_t *ns;

		if (ncap > m->n)
			ncap = m->n;
		ns = realloc(m->stack, ncap * sizeof(*ns));
		if (!ns)
			return -ENOMEM;
		m->stack = ns;
		m->cap = ncap;
	}
	m->stack[m->top++] = (uint32_t)i;
	m->r->state[i] |= ST_PENDING;
	return 0;
}

static int pop(struct mark *m, size_t *i)
{
	if (!m->top)
		return 0;
	*i = m->stack[--m->top];
	m->r->state[*i] &= (uint8_t)~ST_PENDING;
	return 1;
}

static int read_word(const struct mark *m, hi_addr_t addr, uint64_t *w)
{
	if (addr % WORD)
		return -EINVAL;
	return hi_read(m->env->reader, addr, w, sizeof(*w));
}

/*
 * memcheck's aligned_ptr_above_page0_is_vtable_addr: ptr lies in a
 * readable mapping of a file, and among the first 20 words from it
 * (within that mapping) the first two that are not 0 point into
 * executable mappings of files, and none before them points elsewhere.
 */
static int is_vtable(const struct mark *m, hi_addr_t ptr)
{
	const struct hi_leak_env *env = m->env;
	hi_addr_t end = 0, last;
	unsigned nfn = 0;

	if ((env->map_flags(env->arg, ptr, &end) &
	     (HI_LEAK_MAP_FILE | HI_LEAK_MAP_R)) !=
	    (HI_LEAK_MAP_FILE | HI_LEAK_MAP_R))
		return 0;
	last = ptr + VTABLE_WORDS * WORD;
	if (end >= WORD && last > end - WORD)
		last = end - WORD;
	for (hi_addr_t a = ptr; a <= last; a += WORD) {
		hi_addr_t e;
		uint64_t fn;

		if (read_word(m, a, &fn))
			return 0;
		if (!fn)
			continue;
		if ((env->map_flags(env->arg, fn, &e) &
		     (HI_LEAK_MAP_FILE | HI_LEAK_MAP_X)) !=
		    (HI_LEAK_MAP_FILE | HI_LEAK_MAP_X))
			return 0;
		if (++nfn == 2)
			return 1;
	}
	return 0;
}

/* Whether some size in [lo, hi] makes want == size - sub. */
static int size_fits(uint64_t lo, uint64_t hi, uint64_t sub, uint64_t want)
{
	return want <= UINT64_MAX - sub && want + sub >= lo &&
	       want + sub <= hi;
}

/*
 * memcheck's heuristic_reachedness, for an interior pointer ptr into
 * block i, in memcheck's order.  Where memcheck compares a word with the
 * size asked for (ch->szB), any size from size - slack to size is taken.
 */
static unsigned heuristic(const struct mark *m, hi_addr_t ptr, size_t i)
{
	const struct hi_leak_block *b = &m->b[i];
	const struct hi_leak_env *env = m->env;
	unsigned set = env->heuristics;
	uint64_t hi = b->size, lo = hi, slack, w0, w1;

	slack = env->slack ? env->slack(env->arg, b) : 0;
	lo = slack < hi ? hi - slack : 0;
	if ((set & (1u << HI_LEAK_H_STDSTRING)) && ptr == b->addr + 3 * WORD &&
	    !read_word(m, b->addr + WORD, &w1)) {
		/* length capacity refcount chars[capacity + 1] */
		if (w1 <= UINT64_MAX - 3 * WORD - 1 &&
		    size_fits(lo, hi, 0, 3 * WORD + w1 + 1) &&
		    !read_word(m, b->addr, &w0) && w0 <= w1)
			return HI_LEAK_H_STDSTRING;
	}
	if ((set & (1u << HI_LEAK_H_LENGTH64)) && ptr == b->addr + WORD &&
	    !read_word(m, b->addr, &w0)) {
		if (w0 > 0 && size_fits(lo, hi, WORD, w0))
			return HI_LEAK_H_LENGTH64;
	}
	if ((set & (1u << HI_LEAK_H_NEWARRAY)) && ptr == b->addr + WORD &&
	    !read_word(m, b->addr, &w0) && w0 > 0) {
		/* (size - 8) % count == 0 for some size in [lo, hi] */
		uint64_t a = lo > WORD ? lo - WORD : 0;
		uint64_t z = hi >= WORD ? hi - WORD : UINT64_MAX;

		if (z != UINT64_MAX) {
			uint64_t first = a % w0 ? a + (w0 - a % w0) : a;

			if (first >= a && first <= z)
				return HI_LEAK_H_NEWARRAY;
		} else if (hi % w0 == 0) {
			/* size < 8: memcheck's unsigned size - 8 wraps */
			return HI_LEAK_H_NEWARRAY;
		}
	}
	if ((set & (1u << HI_LEAK_H_MULTIPLEINHERITANCE)) && env->map_flags &&
	    ptr % WORD == 0 && !read_word(m, ptr, &w1) && w1 % WORD == 0 &&
	    w1 >= PAGE && !read_word(m, b->addr, &w0) && w0 % WORD == 0 &&
	    w0 >= PAGE && is_vtable(m, w1) && is_vtable(m, w0))
		return HI_LEAK_H_MULTIPLEINHERITANCE;
	return HI_LEAK_H_NONE;
}

/*
 * lc_push_without_clique_if_a_chunk_ptr: word w, found at from, on a path
 * that is definite (a root, or a REACHABLE block) or not.
 */
static int reach(struct mark *m, uint64_t w, int definite, uint64_t from)
{
	long j = find_block(m, w);
	unsigned via_start;
	size_t i;

	if (j < 0)
		return 0;
	i = (size_t)j;
	if (kind(m, i) == HI_LEAK_REACHABLE) {
		if (heur(m, i) && w == m->b[i].addr)
			set_heur(m, i, HI_LEAK_H_NONE);
		return 0;
	}
	if (w == m->b[i].addr) {
		via_start = 1;
	} else if (m->env->heuristics) {
		unsigned h = heuristic(m, w, i);

		set_heur(m, i, h);
		via_start = h != HI_LEAK_H_NONE;
	} else {
		via_start = 0;
	}
	if (via_start && definite) {
		set_kind(m, i, HI_LEAK_REACHABLE);
		m->r->aux[i] = from;
		return push(m, i);
	}
	if (kind(m, i) == HI_LEAK_DEFINITE) {
		set_kind(m, i, HI_LEAK_POSSIBLE);
		m->r->aux[i] = from;
		return push(m, i);
	}
	return 0;
}

/*
 * lc_push_with_clique_if_a_chunk_ptr: while gathering the clique of
 * leader, a word of block cur.
 */
static int gather(struct mark *m, uint64_t w, size_t leader, size_t cur)
{
	long j = find_block(m, w);
	size_t i;
	int ret;

	if (j < 0)
		return 0;
	i = (size_t)j;
	if (kind(m, i) != HI_LEAK_DEFINITE || i == leader)
		return 0;
	ret = push(m, i);
	if (ret)
		return ret;
	/* Its own clique, if it led one, joins the leader's. */
	m->r->aux[leader] += m->b[i].size + m->r->aux[i];
	set_kind(m, i, HI_LEAK_INDIRECT);
	m->r->aux[i] = AUX_BLOCK | cur;
	return 0;
}

/* How a scan treats each word it finds. */
struct scan_as {
	int clique;      /* 0: the first pass; 1: gathering cliques */
	int definite;    /* first pass: the path so far is definite */
	size_t leader;   /* cliques */
	size_t cur;
	uint64_t from_block; /* first pass: AUX_BLOCK | index, or 0 (root) */
};

static int scan_words(struct mark *m, hi_addr_t at, const unsigned char *p,
		      size_t len, const struct scan_as *as)
{
	for (size_t off = 0; off + WORD <= len; off += WORD) {
		uint64_t w;
		int ret;

		memcpy(&w, p + off, WORD);
		if (w < m->lo || w >= m->hi)
			continue;
		if (as->clique)
			ret = gather(m, w, as->leader, as->cur);
		else
			ret = reach(m, w, as->definite,
				    as->from_block ? as->from_block
						   : at + off);
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * Scan [start, end) word by word, as lc_scan_memory: the ends rounded in
 * to whole aligned words, read BUF_SIZE at a time; a piece the reader
 * cannot read (-EFAULT) is read again page by page and the pages that
 * fault are skipped and counted.
 */
static int scan_range(struct mark *m, hi_addr_t start, hi_addr_t end,
		      const struct scan_as *as)
{
	hi_addr_t a = (start + WORD - 1) & ~(hi_addr_t)(WORD - 1);

	if (start > UINT64_MAX - WORD)
		return 0;
	end &= ~(hi_addr_t)(WORD - 1);
	while (a < end) {
		size_t len = end - a < BUF_SIZE ? (size_t)(end - a) : BUF_SIZE;
		int ret = hi_read(m->env->reader, a, m->buf, len);

		if (ret == -EFAULT) {
			/* Page by page, so that one bad page costs only
			 * itself. */
			for (hi_addr_t p = a; p < a + len;) {
				hi_addr_t pe = (p & ~(hi_addr_t)(PAGE - 1)) +
					       PAGE;
				size_t pl;

				if (pe > a + len)
					pe = a + len;
				pl = (size_t)(pe - p);
				ret = hi_read(m->env->reader, p, m->buf, pl);
				if (ret == -EFAULT) {
					if (!m->r->skipped_bytes)
						m->r->first_skipped = p;
					m->r->skipped_bytes += pl;
				} else if (ret) {
					return ret;
				} else {
					m->r->scanned_bytes += pl;
					ret = scan_words(m, p, m->buf, pl, as);
					if (ret)
						return ret;
				}
				p = pe;
			}
		} else if (ret) {
			return ret;
		} else {
			m->r->scanned_bytes += len;
			ret = scan_words(m, a, m->buf, len, as);
			if (ret)
				return ret;
		}
		a += len;
	}
	return 0;
}

static int scan_block(struct mark *m, size_t i, const struct scan_as *as)
{
	const struct hi_leak_block *b = &m->b[i];

	return scan_range(m, b->addr, b->addr + b->size, as);
}

/* lc_process_markstack of the first pass. */
static int drain(struct mark *m)
{
	size_t i;

	while (pop(m, &i)) {
		struct scan_as as = {
			.definite = kind(m, i) != HI_LEAK_POSSIBLE,
			.from_block = AUX_BLOCK | i,
		};
		int ret = scan_block(m, i, &as);

		if (ret)
			return ret;
	}
	return 0;
}

static int check_blocks(const struct hi_leak_block *b, size_t n)
{
	if (n > UINT32_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (b[i].addr % WORD ||
		    b[i].addr > UINT64_MAX - extent(&b[i]))
			return -EINVAL;
		if (i && b[i].addr - b[i - 1].addr < extent(&b[i - 1]))
			return -EINVAL; /* unsorted or overlapping */
		if (i && b[i].addr < b[i - 1].addr)
			return -EINVAL;
	}
	return 0;
}

int hi_leak_mark(const struct hi_leak_block *blocks, size_t n,
		 const struct hi_leak_range *roots, size_t nroots,
		 const struct hi_leak_value *values, size_t nvalues,
		 const struct hi_leak_env *env, struct hi_leak_result *out)
{
	struct mark m = {
		.b = blocks,
		.n = n,
		.env = env,
		.r = out,
	};
	int ret;

	memset(out, 0, sizeof(*out));
	ret = check_blocks(blocks, n);
	if (ret)
		return ret;
	out->n = n;
	if (!n)
		return 0;
	m.lo = blocks[0].addr;
	m.hi = blocks[n - 1].addr + extent(&blocks[n - 1]);
	out->state = malloc(n);
	out->aux = calloc(n, sizeof(*out->aux));
	m.buf = malloc(BUF_SIZE);
	if (!out->state || !out->aux || !m.buf) {
		ret = -ENOMEM;
		goto fail;
	}
	memset(out->state, HI_LEAK_DEFINITE, n);

	/* The first pass: roots, then registers, then what they reach. */
	for (size_t k = 0; k < nroots; k++) {
		struct scan_as as = { .definite = 1 };

		if (roots[k].end <= roots[k].start)
			continue;
		ret = scan_range(&m, roots[k].start, roots[k].end, &as);
		if (ret)
			goto fail;
	}
	for (size_t k = 0; k < nvalues; k++) {
		ret = reach(&m, values[k].value, 1, AUX_VALUE | k);
		if (ret)
			goto fail;
	}
	ret = drain(&m);
	if (ret)
		goto fail;

	/* Cliques, in address order: each block still unreached leads one
	 * and takes in every unreached block it reaches. */
	for (size_t i = 0; i < n; i++) {
		if (kind(&m, i) != HI_LEAK_DEFINITE)
			continue;
		ret = push(&m, i);
		if (ret)
			goto fail;
		size_t cur;

		while (pop(&m, &cur)) {
			struct scan_as as = {
				.clique = 1,
				.leader = i,
				.cur = cur,
			};

			ret = scan_block(&m, cur, &as);
			if (ret)
				goto fail;
		}
	}

	for (size_t i = 0; i < n; i++) {
		unsigned k = kind(&m, i), h = heur(&m, i);

		out->sum.blocks[k]++;
		out->sum.bytes[k] += blocks[i].size;
		if (h) {
			out->sum.heur_blocks[h]++;
			out->sum.heur_bytes[h] += blocks[i].size;
		}
	}
	free(m.stack);
	free(m.buf);
	return 0;
fail:
	free(m.stack);
	free(m.buf);
	hi_leak_result_free(out);
	return ret;
}

void hi_leak_result_free(struct hi_leak_result *r)
{
	free(r->state);
	free(r->aux);
	r->state = NULL;
	r->aux = NULL;
	r->n = 0;
}

struct hi_leak_from hi_leak_from(const struct hi_leak_result *r, size_t i)
{
	struct hi_leak_from f = { .type = HI_LEAK_FROM_NONE };
	uint64_t a = r->aux[i];

	if (hi_leak_kind_of(r, i) == HI_LEAK_DEFINITE)
		return f;
	if (a & AUX_BLOCK) {
		f.type = HI_LEAK_FROM_BLOCK;
		f.index = (size_t)(a & 0xffffffffu);
	} else if (a & AUX_VALUE) {
		f.type = HI_LEAK_FROM_VALUE;
		f.index = (size_t)(a & 0xffffffffu);
	} else {
		f.type = HI_LEAK_FROM_ROOT;
		f.addr = a;
	}
	return f;
}

uint64_t hi_leak_indirect_bytes(const struct hi_leak_result *r, size_t i)
{
	return hi_leak_kind_of(r, i) == HI_LEAK_DEFINITE ? r->aux[i] : 0;
}
