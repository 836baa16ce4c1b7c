/* SPDX-License-Identifier: MIT */
/*
 * The glibc walker over real heap images, intact and then corrupted
 * (tests/image/: hi_capture copies them from test targets).
 *
 *	test_mutate [--iterations N] [--seed S] [--sweeps K] IMAGE...
 *
 * Intact, each image must give exactly the figures its target reported
 * itself.  Then N times in all (split over the images), with a fixed seed,
 * a few bytes are changed, the heap walked, and the bytes put back.  Most
 * changes go where a walk looks (the bytes the intact walk read: arena
 * structs, bins, chunk headers and links), as a plain random flip mostly
 * lands in user data: a flipped byte, or a word set to another chunk, to
 * itself, to a hole between mappings, to read-only memory, to a huge size,
 * or moved by 8.  Every walk must end with either
 *   - figures that obey the allocator's invariants (arena sizes add up,
 *     free plus used equals system memory, every list chunk at least
 *     MINSIZE), and exactly the intact figures when no changed byte is one
 *     the intact walk read; or
 *   - an arena (or the ring of arenas) reported corrupt, with an address
 *     and a reason;
 * never a crash, and never more reader calls than one per 8 bytes of the
 * image's writable memory (a bound proportional to the heap's size, counted
 * rather than timed).
 *
 * Each walk follows the lists (as glibc's int_mallinfo does); K of the
 * corruptions in all, spread evenly, are also swept (ptmalloc_sweep.c:
 * the heap read from end to end, which copies all of it, so not every
 * one of a large image), with the same promises, and the two must end
 * with the same figures unless one of them reports the heap corrupt (or
 * the sweep gives up, and the lists decide, as in auto mode).  Intact,
 * both give the target's figures.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heap_image.h"

static int failures;

#define FAIL(...)                                                            \
	do {                                                                 \
		if (failures++ < 20) {                                       \
			fprintf(stderr, "FAIL: ");                           \
			fprintf(stderr, __VA_ARGS__);                        \
			fputc('\n', stderr);                                 \
		}                                                            \
	} while (0)

/* xorshift64*, as in hi_target.c: a fixed seed makes every run the same. */
static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t x = rng_state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static uint64_t below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

/* The reads of the intact walk. */
struct range {
	hi_addr_t addr;
	uint64_t len;
};

struct ranges {
	struct range *v;
	size_t n, cap;
};

static void trace(void *arg, hi_addr_t addr, size_t len)
{
	struct ranges *r = arg;

	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 4096;
		r->v = realloc(r->v, r->cap * sizeof(*r->v));
		if (!r->v) {
			perror("realloc");
			exit(2);
		}
	}
	r->v[r->n].addr = addr;
	r->v[r->n].len = len;
	r->n++;
}

static int by_addr(const void *a, const void *b)
{
	const struct range *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* Sorted, merged copy: for "did this change touch what the walk read". */
static struct ranges merged(const struct ranges *in)
{
	struct ranges m = { 0 };

	m.v = malloc((in->n ? in->n : 1) * sizeof(*m.v));
	if (!m.v)
		exit(2);
	memcpy(m.v, in->v, in->n * sizeof(*m.v));
	qsort(m.v, in->n, sizeof(*m.v), by_addr);
	for (size_t i = 0; i < in->n; i++) {
		struct range *last = m.n ? &m.v[m.n - 1] : NULL;

		if (last && m.v[i].addr <= last->addr + last->len) {
			uint64_t end = m.v[i].addr + m.v[i].len;

			if (end > last->addr + last->len)
				last->len = end - last->addr;
		} else {
			m.v[m.n++] = m.v[i];
		}
	}
	return m;
}

static int in_ranges(const struct ranges *m, hi_addr_t a)
{
	size_t lo = 0, hi = m->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (a < m->v[mid].addr)
			hi = mid;
		else if (a - m->v[mid].addr >= m->v[mid].len)
			lo = mid + 1;
		else
			return 1;
	}
	return 0;
}

static const char *const fig_names[HI_IMAGE_NFIG] = {
	"arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
	"uordblks", "fordblks", "keepcost",
};

static void figs(const struct hi_mallinfo *mi, uint64_t v[HI_IMAGE_NFIG])
{
	v[0] = mi->arena;
	v[1] = mi->ordblks;
	v[2] = mi->smblks;
	v[3] = mi->hblks;
	v[4] = mi->hblkhd;
	v[5] = mi->usmblks;
	v[6] = mi->fsmblks;
	v[7] = mi->uordblks;
	v[8] = mi->fordblks;
	v[9] = mi->keepcost;
}

/* A changed byte, to be put back. */
struct undo {
	unsigned char *at;
	unsigned char old;
	hi_addr_t addr;
};

struct mutation {
	struct undo u[64];
	size_t n;
	int touched; /* a changed byte is one the intact walk read */
	char what[160];
};

static void set_byte(struct mutation *mu, const struct ranges *hot,
		     struct hi_image *im, hi_addr_t a, unsigned char v)
{
	struct hi_image_seg *s = hi_image_seg_of(im, a);
	unsigned char *p;

	if (!s || mu->n == sizeof(mu->u) / sizeof(mu->u[0]))
		return;
	p = s->data + (a - s->addr);
	if (*p == v)
		return;
	mu->u[mu->n].at = p;
	mu->u[mu->n].old = *p;
	mu->u[mu->n].addr = a;
	mu->n++;
	*p = v;
	if (in_ranges(hot, a))
		mu->touched = 1;
}

/* Whether a byte the mutation changed lies in r. */
static int touches(const struct mutation *mu, const struct ranges *r)
{
	for (size_t i = 0; i < mu->n; i++) {
		if (in_ranges(r, mu->u[i].addr))
			return 1;
	}
	return 0;
}

static void set_word(struct mutation *mu, const struct ranges *hot,
		     struct hi_image *im, hi_addr_t a, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		set_byte(mu, hot, im, a + i, (unsigned char)(v >> (8 * i)));
}

static uint64_t get_word(struct hi_image *im, hi_addr_t a)
{
	struct hi_image_seg *s = hi_image_seg_of(im, a);
	uint64_t v = 0;

	if (s && s->len - (a - s->addr) >= 8)
		memcpy(&v, s->data + (a - s->addr), 8);
	return v;
}

/* An address in no mapping, and one in memory that is not writable. */
struct targets {
	hi_addr_t hole;
	hi_addr_t readonly;
};

static struct targets find_targets(const struct hi_image *im)
{
	struct targets t = { .hole = 0x1000, .readonly = 0 };

	for (size_t i = 0; i + 1 < im->maps.n; i++) {
		if (im->maps.v[i].end < im->maps.v[i + 1].start) {
			t.hole = im->maps.v[i].end;
			break;
		}
	}
	for (size_t i = 0; i < im->maps.n; i++) {
		if (!(im->maps.v[i].prot & HI_PROT_W)) {
			t.readonly = (im->maps.v[i].start + 16) & ~15ull;
			break;
		}
	}
	return t;
}

/* One change: where the walk looks, or (1 in 5) anywhere in the image. */
static void mutate_one(struct mutation *mu, const struct ranges *reads,
		       const struct ranges *hot, struct hi_image *im,
		       const struct targets *tg)
{
	const struct range *r;
	hi_addr_t a, word_at;
	uint64_t old, v;
	unsigned kind = (unsigned)below(100);
	size_t len;

	if (kind < 20) {
		const struct hi_image_seg *s = &im->segs[below(im->nsegs)];

		a = s->addr + below(s->len);
		set_byte(mu, hot, im, a, (unsigned char)(1 + below(255)) ^
				      *(s->data + (a - s->addr)));
		len = strlen(mu->what);
		snprintf(mu->what + len, sizeof(mu->what) - len,
			 " byte@%" PRIx64, a);
		return;
	}
	r = &reads->v[below(reads->n)];
	a = r->addr + below(r->len);
	if (kind < 55) {
		struct hi_image_seg *s = hi_image_seg_of(im, a);

		if (s)
			set_byte(mu, hot, im, a, *(s->data + (a - s->addr)) ^
					      (unsigned char)(1 + below(255)));
		len = strlen(mu->what);
		snprintf(mu->what + len, sizeof(mu->what) - len,
			 " flip@%" PRIx64, a);
		return;
	}
	word_at = a & ~7ull;
	old = get_word(im, word_at);
	switch (below(10)) {
	case 0: /* another chunk the walk read: lists that join or loop */
		v = reads->v[below(reads->n)].addr;
		break;
	case 1: /* itself */
		v = word_at & ~15ull;
		break;
	case 2:
		v = tg->hole;
		break;
	case 3:
		v = tg->readonly;
		break;
	case 4: /* a huge size */
		v = 0x7ffffffffff0ull | (old & 7);
		break;
	case 5: /* misaligned */
		v = old + 8;
		break;
	case 6:
		v = 0;
		break;
	case 7:
		v = ~0ull;
		break;
	case 8: /* a high bit */
		v = old ^ (1ull << (32 + below(32)));
		break;
	default: /* the size one step up or down */
		v = below(2) ? old + 16 : old - 16;
		break;
	}
	/* Safe-linking: a link stored as glibc would have mangled it. */
	if (im->l.safe_linking && below(2))
		v ^= word_at >> 12;
	set_word(mu, hot, im, word_at, v);
	len = strlen(mu->what);
	snprintf(mu->what + len, sizeof(mu->what) - len,
		 " word@%" PRIx64 "=%" PRIx64, word_at, v);
}

static void undo(struct mutation *mu)
{
	while (mu->n) {
		mu->n--;
		*mu->u[mu->n].at = mu->u[mu->n].old;
	}
}

static uint64_t minsize(const struct ptm_layout *l)
{
	uint64_t a = 2 * l->c_size.size - 1;

	return (l->c_bk.off + l->ptr_size + a) & ~a;
}

/* What an ok result must obey, whatever the bytes were. */
static void check_invariants(const struct hi_image *im,
			     const struct hi_heap *h, const char *ctx)
{
	uint64_t sys = 0, fr = 0, fb = 0, fc = 0, bc = 0, keep = 0;
	uint64_t ms = minsize(&im->l);

	for (size_t i = 0; i < h->narenas; i++) {
		const struct hi_arena *a = &h->arenas[i];
		uint64_t avail = a->top_size + a->fast_bytes + a->bin_bytes;

		if (avail > a->system_mem)
			FAIL("%s: arena %zu: free %" PRIu64 " > system %"
			     PRIu64, ctx, i, avail, a->system_mem);
		if (a->fast_bytes < a->fast_chunks * ms ||
		    a->bin_bytes < a->bin_chunks * ms)
			FAIL("%s: arena %zu: chunks smaller than MINSIZE", ctx,
			     i);
		sys += a->system_mem;
		fr += avail;
		fb += a->fast_bytes;
		fc += a->fast_chunks;
		bc += a->bin_chunks;
		if (a->is_main)
			keep = a->top_size;
	}
	if (h->mi.arena != sys || h->mi.fordblks != fr ||
	    h->mi.uordblks + h->mi.fordblks != h->mi.arena ||
	    h->mi.fsmblks != fb || h->mi.smblks != fc ||
	    h->mi.ordblks != bc + h->narenas || h->mi.keepcost != keep ||
	    h->mi.hblks != h->n_mmaps || h->mi.hblkhd != h->mmapped_mem ||
	    h->mi.usmblks != 0)
		FAIL("%s: figures do not add up", ctx);
}

struct stats {
	uint64_t exact, other_ok, corrupt_arena, corrupt_ring, busy;
	uint64_t declined;
	uint64_t max_calls, max_bytes;
	char samples[6][256];
	int nsamples;
};

static void sample(struct stats *st, const char *why, hi_addr_t at)
{
	if (st->nsamples < 6)
		snprintf(st->samples[st->nsamples++], 256,
			 "corrupt at 0x%" PRIx64 ": %s", at, why);
}

/* How one walk of a corrupted image ended. */
enum outcome { FIGURES, CORRUPT, DECLINED };

/*
 * Walk the image in mode and check the walk's own promises: bounds,
 * reasons, complete exactly when no arena is corrupt or busy, the
 * invariants.  Fill got (and *narenas) with the figures when it ended
 * with figures.
 */
static enum outcome walk_checked(struct hi_image *im, struct hi_reader *r,
				 struct hi_image_reader *ir,
				 enum ptm_mode mode, const char *ctx,
				 uint64_t call_bound, uint64_t byte_bound,
				 struct stats *st, uint64_t got[HI_IMAGE_NFIG],
				 size_t *narenas)
{
	enum outcome out = CORRUPT;
	struct hi_heap h;
	int ret;

	ir->calls = ir->bytes = 0;
	ret = ptm_read_heap_mode(&im->l, &im->w, r, &im->maps, 1, mode, &h);
	if (ir->calls > st->max_calls)
		st->max_calls = ir->calls;
	if (ir->bytes > st->max_bytes)
		st->max_bytes = ir->bytes;
	if (ir->calls > call_bound || ir->bytes > byte_bound)
		FAIL("%s: %" PRIu64 " reads, %" PRIu64 " bytes: past "
		     "the bound", ctx, ir->calls, ir->bytes);
	if (ret == -HI_E_CORRUPT) {
		st->corrupt_ring++;
		if (!h.why[0])
			FAIL("%s: corrupt ring without a reason", ctx);
		else
			sample(st, h.why, h.bad_addr);
		return CORRUPT;
	}
	if (ret == -ENOTSUP && mode == PTM_SWEEP) {
		/* The sweep gave up: auto mode walks the lists then. */
		st->declined++;
		return DECLINED;
	}
	if (ret) {
		FAIL("%s: walk returned %d (%s)", ctx, ret, hi_strerror(ret));
		return CORRUPT;
	}
	{
		int corrupt = 0, busy = 0;

		for (size_t i = 0; i < h.narenas; i++) {
			const struct hi_arena *a = &h.arenas[i];

			if (a->status == -HI_E_CORRUPT) {
				corrupt++;
				if (!a->why[0])
					FAIL("%s: arena %zu corrupt without "
					     "a reason", ctx, i);
				else
					sample(st, a->why, a->bad_addr);
			} else if (a->status == -HI_E_BUSY) {
				busy++;
			} else if (a->status) {
				FAIL("%s: arena %zu status %d", ctx, i,
				     a->status);
			}
		}
		if (h.complete != (corrupt + busy == 0))
			FAIL("%s: complete is %d with %d corrupt, %d busy "
			     "arenas", ctx, h.complete, corrupt, busy);
		if (corrupt)
			st->corrupt_arena++;
		else if (busy)
			st->busy++;
		if (h.complete) {
			check_invariants(im, &h, ctx);
			figs(&h.mi, got);
			*narenas = h.narenas;
			out = FIGURES;
		}
	}
	hi_heap_free(&h);
	return out;
}

static int run_image(const char *path, uint64_t iterations, uint64_t sweeps)
{
	struct hi_image im;
	struct hi_image_reader ir;
	struct hi_reader r;
	struct ranges reads = { 0 }, sreads = { 0 }, hot, shot;
	struct hi_heap h;
	struct stats st = { 0 }, sst = { 0 };
	struct targets tg;
	uint64_t intact[HI_IMAGE_NFIG], got[HI_IMAGE_NFIG], rw, call_bound;
	uint64_t sgot[HI_IMAGE_NFIG], byte_bound, every, agreed = 0;
	size_t narenas;
	int ret, before = failures;

	ret = hi_image_load(path, &im);
	if (ret) {
		FAIL("%s: cannot load: %s", path, strerror(-ret));
		return -1;
	}
	if (ptm_layout_check(&im.l)) {
		FAIL("%s: layout rejected", path);
		goto out;
	}
	memset(&ir, 0, sizeof(ir));
	ir.im = &im;
	ir.trace = trace;
	r = hi_image_reader(&ir);
	/* Intact, both ways, each tracing what it reads. */
	for (int m = 0; m < (sweeps ? 2 : 1); m++) {
		ir.trace_arg = m ? &sreads : &reads;
		ret = ptm_read_heap_mode(&im.l, &im.w, &r, &im.maps, 1,
					 m ? PTM_SWEEP : PTM_LISTS, &h);
		if (ret || !h.complete) {
			FAIL("%s: intact walk (%s): %d, %s", path,
			     m ? "sweep" : "lists", ret,
			     !ret && h.narenas ? h.arenas[0].why : "");
			if (!ret)
				hi_heap_free(&h);
			goto out;
		}
		/* The intact walk against the target's own mallinfo2(). */
		figs(&h.mi, m ? sgot : intact);
		narenas = h.narenas;
		hi_heap_free(&h);
	}
	for (int i = 0; i < HI_IMAGE_NFIG; i++) {
		uint64_t v = im.low32 ? intact[i] & 0xffffffffu : intact[i];

		if (!im.have_fig || v != im.fig[i])
			FAIL("%s: intact %s = %" PRIu64 ", the target said %"
			     PRIu64, path, fig_names[i], v, im.fig[i]);
		if (sweeps && sgot[i] != intact[i])
			FAIL("%s: intact, the sweep's %s = %" PRIu64 ", the "
			     "lists' %" PRIu64, path, fig_names[i], sgot[i],
			     intact[i]);
	}
	hot = merged(&reads);
	shot = merged(&sreads);
	tg = find_targets(&im);
	rw = hi_image_rw_bytes(&im);
	call_bound = rw / 8 + 64;
	byte_bound = 2 * rw + 65536;
	every = sweeps ? (iterations + sweeps - 1) / sweeps : 0;
	printf("%s: %zu arenas, %" PRIu64 " reads intact, %" PRIu64
	       " bytes of writable memory, bound %" PRIu64 " reads; the "
	       "sweep too every %" PRIu64 " corruptions\n", path, narenas,
	       ir.calls, rw, call_bound, every);
	ir.trace = NULL;

	for (uint64_t it = 0; it < iterations; it++) {
		struct mutation mu = { .n = 0 };
		unsigned nchanges = below(10) == 0 ? 2 + (unsigned)below(3) : 1;
		enum outcome lo, so;
		size_t ln = 0, sn = 0;
		char ctx[320];

		for (unsigned k = 0; k < nchanges; k++)
			mutate_one(&mu, &reads, &hot, &im, &tg);
		snprintf(ctx, sizeof(ctx), "%s #%" PRIu64 ":%s", path, it,
			 mu.what);
		lo = walk_checked(&im, &r, &ir, PTM_LISTS, ctx, call_bound,
				  byte_bound, &st, got, &ln);
		if (lo == FIGURES) {
			if (!memcmp(got, intact, sizeof(got)) && ln == narenas)
				st.exact++;
			else
				st.other_ok++;
		}
		/* Nothing the walk reads changed: nothing may differ. */
		if (!mu.touched &&
		    (lo != FIGURES || ln != narenas ||
		     memcmp(got, intact, sizeof(got))))
			FAIL("%s: only bytes the walk does not read changed, "
			     "yet the result differs", ctx);
		if (every && it % every == 0) {
			so = walk_checked(&im, &r, &ir, PTM_SWEEP, ctx,
					  call_bound, byte_bound, &sst, sgot,
					  &sn);
			sst.exact += so == FIGURES &&
				     !memcmp(sgot, intact, sizeof(sgot));
			/* Both figures, or one of them says corrupt. */
			if (so == FIGURES && lo == FIGURES &&
			    (sn != ln || memcmp(sgot, got, sizeof(got))))
				FAIL("%s: the sweep and the lists give "
				     "different figures", ctx);
			agreed += so == FIGURES && lo == FIGURES;
			if (!touches(&mu, &shot) &&
			    (so != FIGURES || sn != narenas ||
			     memcmp(sgot, intact, sizeof(sgot))))
				FAIL("%s: only bytes the sweep does not read "
				     "changed, yet its result differs", ctx);
		}
		undo(&mu);
	}
	printf("  %" PRIu64 " corrupted heaps: %" PRIu64 " exact, %" PRIu64
	       " other consistent figures, %" PRIu64 " corrupt arena, %"
	       PRIu64 " corrupt ring, %" PRIu64 " busy; at most %" PRIu64
	       " reads and %" PRIu64 " bytes in one walk\n", iterations,
	       st.exact, st.other_ok, st.corrupt_arena, st.corrupt_ring,
	       st.busy, st.max_calls, st.max_bytes);
	for (int i = 0; i < st.nsamples; i++)
		printf("  e.g. %s\n", st.samples[i]);
	if (every) {
		printf("  swept too: %" PRIu64 " of them: %" PRIu64 " exact, %"
		       PRIu64 " figures equal to the lists', %" PRIu64
		       " corrupt arena, %" PRIu64 " corrupt ring, %" PRIu64
		       " given up (the lists then)\n",
		       (iterations + every - 1) / every, sst.exact, agreed,
		       sst.corrupt_arena, sst.corrupt_ring, sst.declined);
		for (int i = 0; i < sst.nsamples; i++)
			printf("  e.g. %s\n", sst.samples[i]);
	}
	free(hot.v);
	free(shot.v);
out:
	free(reads.v);
	free(sreads.v);
	hi_image_free(&im);
	return failures == before ? 0 : -1;
}

int main(int argc, char **argv)
{
	uint64_t iterations = 100000, seed = 1, sweeps = 0;
	int first = 1, nimages;

	while (first + 1 < argc && argv[first][0] == '-') {
		if (strcmp(argv[first], "--iterations") == 0)
			iterations = strtoull(argv[first + 1], NULL, 10);
		else if (strcmp(argv[first], "--seed") == 0)
			seed = strtoull(argv[first + 1], NULL, 10);
		else if (strcmp(argv[first], "--sweeps") == 0)
			sweeps = strtoull(argv[first + 1], NULL, 10);
		else
			break;
		first += 2;
	}
	nimages = argc - first;
	if (nimages < 1) {
		fprintf(stderr, "usage: test_mutate [--iterations N] "
			"[--seed S] [--sweeps K] IMAGE...\n");
		return 64;
	}
	rng_state = seed ? seed : 1;
	printf("%" PRIu64 " corrupted heaps over %d images, seed %" PRIu64
	       "\n", iterations, nimages, seed);
	for (int i = first; i < argc; i++)
		run_image(argv[i], iterations / nimages +
				   (i - first < (int)(iterations % nimages)),
			  sweeps / nimages);
	printf("%d failures\n", failures);
	return failures ? 1 : 0;
}
