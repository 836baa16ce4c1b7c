/* SPDX-License-Identifier: MIT */
/*
 * Finding main_arena and mp_ without symbols, and proving it.
 *
 * Candidates come from libc's file, where nothing the target does can plant
 * them: main_arena through the relocation of its self-pointing next, mp_
 * through its compile-time defaults.  A candidate is used only after every
 * check below passed on the target's memory; the checks are a table, each
 * one a function over what was read, so that unit tests can run them over
 * byte buffers and decoys.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ptmalloc_priv.h"

/* HEAP_MAX_SIZE of arena.c on 64-bit targets: 2 * 32 MiB. */
#define PTM_HEAP_MAX (64ull << 20)
/* NONCONTIGUOUS_BIT of malloc.c: main_arena had to use mmap, not brk. */
#define PTM_NONCONTIGUOUS 2u
#define PTM_PAGE 4096u

struct arena_find {
	const struct ptm_layout *l;
	const struct ptm_image *img;
	hi_addr_t *out;
	int max, n;
};

static int add_cand(hi_addr_t *out, int max, int *n, hi_addr_t a)
{
	for (int i = 0; i < *n; i++) {
		if (out[i] == a)
			return 0;
	}
	if (*n >= max)
		return -HI_E_TOOBIG;
	out[(*n)++] = a;
	return 0;
}

/* Whether buf (a struct of size n) is zero outside the skipped members. */
static int zero_except(const unsigned char *buf, uint64_t n,
		       const struct ptm_field *skip, unsigned nskip)
{
	for (uint64_t i = 0; i < n; i++) {
		int skipped = 0;

		for (unsigned k = 0; k < nskip; k++) {
			if (skip[k].size && i >= skip[k].off &&
			    i < skip[k].off + skip[k].size)
				skipped = 1;
		}
		if (!skipped && buf[i])
			return 0;
	}
	return 1;
}

static int arena_reloc(hi_addr_t where, hi_addr_t value, void *arg)
{
	struct arena_find *af = arg;
	const struct ptm_layout *l = af->l;
	unsigned char *img;
	int ok;

	if (where < l->next.off || where - l->next.off != value ||
	    (value & (l->ptr_size - 1)))
		return 0;
	img = malloc(l->state_size);
	if (!img)
		return -ENOMEM;
	ok = af->img->read(af->img->arg, value, img, l->state_size) == 0;
	if (ok) {
		const struct ptm_field skip[] = { l->next,
						  l->attached_threads };

		/* RELR keeps the addend in place: next is not checked. */
		ok = zero_except(img, l->state_size, skip, 2);
		if (ok && l->attached_threads.size)
			ok = ptm_get(img, &l->attached_threads) == 1;
	}
	free(img);
	return ok ? add_cand(af->out, af->max, &af->n, value) : 0;
}

int ptm_find_arena(const struct ptm_layout *l, const struct ptm_image *img,
		   hi_addr_t *out, int max)
{
	struct arena_find af = { .l = l, .img = img, .out = out, .max = max };
	int ret = img->each_relative(img->arg, arena_reloc, &af);

	return ret < 0 ? ret : af.n;
}

struct par_find {
	const struct ptm_build *b;
	hi_addr_t *out;
	int max, n;
};

static int par_section(hi_addr_t addr, const unsigned char *data,
		       size_t size, void *arg)
{
	struct par_find *pf = arg;
	const struct ptm_build *b = pf->b;
	uint64_t n = b->layout.par_size;

	if (size < n || !b->npar_init)
		return 0;
	/* mp_ is pointer-aligned; so is every section start. */
	for (uint64_t off = (-addr) & 7; off + n <= size; off += 8) {
		unsigned i;

		for (i = 0; i < b->npar_init; i++) {
			const struct ptm_init *in = &b->par_init[i];
			struct ptm_field f = { .off = in->off,
					       .size = in->size };

			if (ptm_get(data + off, &f) != in->value)
				break;
		}
		if (i == b->npar_init) {
			int ret = add_cand(pf->out, pf->max, &pf->n,
					   addr + off);

			if (ret)
				return ret;
		}
	}
	return 0;
}

int ptm_find_par(const struct ptm_build *b, const struct ptm_image *img,
		 hi_addr_t *out, int max)
{
	struct par_find pf = { .b = b, .out = out, .max = max };
	int ret = img->each_data(img->arg, par_section, &pf);

	return ret < 0 ? ret : pf.n;
}

/* ------------------------------------------------------------------ */
/* Verification in memory                                             */
/* ------------------------------------------------------------------ */

/* What the checks share: the candidate pair and what was read of it. */
struct vctx {
	const struct ptm_layout *l;
	const struct ptm_where *w;
	hi_addr_t lib_lo, lib_hi;
	const struct hi_reader *r;
	const struct hi_maps *maps;
	unsigned char *st;    /* main_arena as read */
	unsigned char *par;   /* mp_ as read */
	/*
	 * [heap]: the brk area, in one mapping or in several adjacent ones
	 * (hi_maps_range), from the start of the first to the end of the
	 * last; heap_hi == 0 when the process has none.
	 */
	hi_addr_t heap_lo, heap_hi;
	int err;              /* a reader failure other than -EFAULT */
};

typedef int (*check_fn)(struct vctx *v, char *d, size_t n);

static int say(char *d, size_t n, int ok, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int say(char *d, size_t n, int ok, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(d, n, fmt, ap);
	va_end(ap);
	return ok;
}

static hi_addr_t bin_at(const struct ptm_layout *l, hi_addr_t arena,
			uint64_t i)
{
	return arena + l->bins.off + (i - 1) * 2 * l->ptr_size - l->c_fd.off;
}

static int word(struct vctx *v, hi_addr_t addr, uint64_t *out)
{
	unsigned char b[8];
	struct ptm_field f = { .off = 0, .size = v->l->ptr_size };
	int ret;

	if (!hi_maps_rw_range(v->maps, addr, v->l->ptr_size))
		return -EFAULT;
	ret = hi_read(v->r, addr, b, v->l->ptr_size);
	if (ret && ret != -EFAULT && !v->err)
		v->err = ret;
	if (ret)
		return ret;
	*out = ptm_get(b, &f);
	return 0;
}

static int c_in_libc(struct vctx *v, char *d, size_t n)
{
	const struct ptm_layout *l = v->l;
	hi_addr_t a = v->w->main_arena, p = v->w->mp;

	if (a < v->lib_lo || a + l->state_size > v->lib_hi ||
	    p < v->lib_lo || p + l->par_size > v->lib_hi)
		return say(d, n, 0, "main_arena " HI_PRIxADDR " or mp_ "
			   HI_PRIxADDR " is outside libc (" HI_PRIxADDR "-"
			   HI_PRIxADDR ")", a, p, v->lib_lo, v->lib_hi);
	if (!hi_maps_rw_range(v->maps, a, l->state_size) ||
	    !hi_maps_rw_range(v->maps, p, l->par_size))
		return say(d, n, 0, "main_arena or mp_ is not in a writable "
			   "mapping");
	return say(d, n, 1, "both in libc's writable data");
}

static int c_ring(struct vctx *v, char *d, size_t n)
{
	hi_addr_t *ring, bad = 0;
	int cnt = ptm_ring(v->l, v->w, v->r, v->maps, &ring, &bad, NULL, 0);

	if (cnt < 0) {
		if (cnt != -HI_E_CORRUPT && cnt != -EFAULT && !v->err)
			v->err = cnt;
		return say(d, n, 0, "the ring of arenas breaks at "
			   HI_PRIxADDR, bad);
	}
	free(ring);
	return say(d, n, 1, "%d arena%s, back at main_arena", cnt,
		   cnt == 1 ? "" : "s");
}

static int c_bins(struct vctx *v, char *d, size_t n)
{
	const struct ptm_layout *l = v->l;
	uint64_t nbins = l->bins.count / 2 + 1, empty = 0, used = 0;
	hi_addr_t a = v->w->main_arena;

	if (ptm_get(v->st, &l->top) == 0) {
		/* Before ptmalloc_init every bin is still zero. */
		struct ptm_field b = l->bins;

		for (uint64_t i = 0; i < b.size; i++) {
			if (v->st[b.off + i])
				return say(d, n, 0, "malloc has not run, yet "
					   "the bins are not zero");
		}
		return say(d, n, 1, "malloc has not run: every bin is zero");
	}
	/* Every list's ends in one system call rather than one each. */
	if (v->r->prefetch) {
		hi_addr_t want[2 * 128];
		size_t k = 0;

		for (uint64_t i = 1; i < nbins && k + 2 <= 2 * 128; i++) {
			for (uint64_t e = 0; e < 2; e++) {
				uint64_t p = ptm_get(v->st, &(struct ptm_field){
					.off = l->bins.off +
					       ((i - 1) * 2 + e) * l->ptr_size,
					.size = l->ptr_size });

				if (p != bin_at(l, a, i) &&
				    hi_maps_rw_range(v->maps, p, 32))
					want[k++] = p;
			}
		}
		v->r->prefetch(v->r->arg, want, k, 0);
	}
	for (uint64_t i = 1; i < nbins; i++) {
		hi_addr_t b = bin_at(l, a, i);
		uint64_t fd = ptm_get(v->st, &(struct ptm_field){
				.off = l->bins.off + (i - 1) * 2 * l->ptr_size,
				.size = l->ptr_size });
		uint64_t bk = ptm_get(v->st, &(struct ptm_field){
				.off = l->bins.off + ((i - 1) * 2 + 1) *
				       l->ptr_size,
				.size = l->ptr_size });
		uint64_t back;

		if (fd == b && bk == b) {
			empty++;
			continue;
		}
		/* A list head: its first chunk's bk and last's fd are it. */
		if (fd == b || bk == b ||
		    word(v, fd + l->c_bk.off, &back) || back != b ||
		    word(v, bk + l->c_fd.off, &back) || back != b)
			return say(d, n, 0, "bin %" PRIu64 " at " HI_PRIxADDR
				   " is neither empty (pointing at itself) nor "
				   "a list that points back at it", i, b);
		used++;
	}
	return say(d, n, 1, "%" PRIu64 " empty bins point at themselves, %"
		   PRIu64 " lists point back at their bin", empty, used);
}

/* The end of the main arena's top chunk, or 0 when it cannot be read. */
static hi_addr_t top_end(struct vctx *v, uint64_t *size)
{
	hi_addr_t top = ptm_get(v->st, &v->l->top);
	uint64_t sz;

	if (word(v, top + v->l->c_size.off, &sz))
		return 0;
	*size = sz & ~(uint64_t)7;
	return top + *size;
}

static int c_top(struct vctx *v, char *d, size_t n)
{
	const struct ptm_layout *l = v->l;
	hi_addr_t a = v->w->main_arena, top = ptm_get(v->st, &l->top), end;
	uint64_t sysmem = ptm_get(v->st, &l->system_mem), size;
	const struct hi_map *m;

	if (top == 0)
		return say(d, n, sysmem == 0, "top is not set: malloc has "
			   "not run%s", sysmem ? ", yet system_mem is not 0"
					       : "");
	if (top == bin_at(l, a, 1))
		return say(d, n, sysmem == 0, "top is initial_top: no memory "
			   "from the system yet%s",
			   sysmem ? ", yet system_mem is not 0" : "");
	end = top_end(v, &size);
	if (!end)
		return say(d, n, 0, "top " HI_PRIxADDR " cannot be read",
			   top);
	if (ptm_get(v->st, &l->flags) & PTM_NONCONTIGUOUS) {
		m = hi_maps_find(v->maps, top);
		return say(d, n, m && hi_maps_rw_range(v->maps, top, size),
			   "top " HI_PRIxADDR " in writable memory (brk "
			   "failed: the main arena uses mmap)", top);
	}
	if (!v->heap_hi)
		return say(d, n, 0, "top " HI_PRIxADDR " but the process has "
			   "no [heap]", top);
	if (top < v->heap_lo || end > v->heap_hi || end < top)
		return say(d, n, 0, "top " HI_PRIxADDR "-" HI_PRIxADDR
			   " is not inside [heap] " HI_PRIxADDR "-"
			   HI_PRIxADDR, top, end, v->heap_lo, v->heap_hi);
	return say(d, n, 1, "top " HI_PRIxADDR "-" HI_PRIxADDR " inside "
		   "[heap] " HI_PRIxADDR "-" HI_PRIxADDR, top, end,
		   v->heap_lo, v->heap_hi);
}

static int c_sysmem(struct vctx *v, char *d, size_t n)
{
	const struct ptm_layout *l = v->l;
	uint64_t sysmem = ptm_get(v->st, &l->system_mem), size;
	uint64_t maxmem = ptm_get(v->st, &l->max_system_mem);
	hi_addr_t sbrk = ptm_get(v->par, &l->sbrk_base), top, end;

	if (maxmem < sysmem)
		return say(d, n, 0, "max_system_mem %" PRIu64 " < system_mem "
			   "%" PRIu64, maxmem, sysmem);
	top = ptm_get(v->st, &l->top);
	if (sysmem == 0 || top == 0 || top == bin_at(l, v->w->main_arena, 1))
		return say(d, n, sysmem == 0, "system_mem %" PRIu64 " with "
			   "no top chunk", sysmem);
	if (ptm_get(v->st, &l->flags) & PTM_NONCONTIGUOUS)
		return say(d, n, 1, "system_mem %" PRIu64 " (not checked "
			   "against [heap]: the main arena uses mmap)",
			   sysmem);
	end = top_end(v, &size);
	/*
	 * sysmalloc grows the main arena by moving the brk, and top always
	 * ends at it: system_mem is the brk area from sbrk_base to top's end,
	 * which [heap] holds (its end rounded up to a page).
	 */
	if (!v->heap_hi || !end || end - sbrk != sysmem ||
	    end > v->heap_hi || v->heap_hi - end >= PTM_PAGE)
		return say(d, n, 0, "system_mem %" PRIu64 " is not the brk "
			   "area from sbrk_base " HI_PRIxADDR " to the end of "
			   "top " HI_PRIxADDR " in [heap]", sysmem, sbrk, end);
	return say(d, n, 1, "system_mem %" PRIu64 " = end of top - "
		   "sbrk_base, [heap] ends at " HI_PRIxADDR, sysmem,
		   v->heap_hi);
}

static int c_sbrk(struct vctx *v, char *d, size_t n)
{
	const struct ptm_layout *l = v->l;
	hi_addr_t sbrk = ptm_get(v->par, &l->sbrk_base);
	uint64_t sysmem = ptm_get(v->st, &l->system_mem);

	if (ptm_get(v->st, &l->flags) & PTM_NONCONTIGUOUS)
		return say(d, n, 1, "sbrk_base " HI_PRIxADDR " (the main "
			   "arena uses mmap)", sbrk);
	/* malloc sets sbrk_base at its first brk, which gives the main
	 * arena its first system_mem; trimming never takes all of it. */
	if (sysmem == 0)
		return say(d, n, sbrk == 0, "sbrk_base " HI_PRIxADDR " with "
			   "system_mem 0%s", sbrk, sbrk ? ": the main arena "
			   "has brk memory it does not count" : "");
	if (!v->heap_hi || sbrk != v->heap_lo)
		return say(d, n, 0, "sbrk_base " HI_PRIxADDR " is not the "
			   "start of [heap] " HI_PRIxADDR, sbrk, v->heap_lo);
	return say(d, n, 1, "sbrk_base " HI_PRIxADDR " = start of [heap]",
		   sbrk);
}

static int c_heaps(struct vctx *v, char *d, size_t n)
{
	const struct ptm_layout *l = v->l;
	hi_addr_t *ring, bad;
	int cnt, ok = 1, checked = 0;

	if (l->hp_pagesize.size && ptm_get(v->par, &l->hp_pagesize))
		return say(d, n, 1, "not checked: glibc.malloc.hugetlb sets "
			   "the heaps' alignment");
	cnt = ptm_ring(l, v->w, v->r, v->maps, &ring, &bad, NULL, 0);
	if (cnt < 0)
		return say(d, n, 0, "the ring of arenas cannot be read");
	for (int i = 1; i < cnt && ok; i++) {
		/* arena.c: a non-main arena sits right after its heap_info,
		 * whose first member ar_ptr points back at it. */
		hi_addr_t h = ring[i] & ~(PTM_HEAP_MAX - 1);
		uint64_t ar;

		if (word(v, h, &ar) || ar != ring[i]) {
			ok = say(d, n, 0, "arena " HI_PRIxADDR ": its heap at "
				 HI_PRIxADDR " does not point back at it",
				 ring[i], h);
			break;
		}
		checked++;
	}
	free(ring);
	if (!ok)
		return 0;
	return say(d, n, 1, "%d other arena%s, each inside its own heap",
		   checked, checked == 1 ? "" : "s");
}

/*
 * The largest tcache_max_bytes tunables and mallopt can set (malloc.c
 * do_set_tcache_max) with nbins tcache bins (TCACHE_MAX_BINS, the entries
 * of struct tcache_perthread_struct), and so the bound on it.  To 2.41,
 * 64 bins of 16-byte steps: tidx2usize (63), 1032 bytes.  From 2.42, 64 such
 * small bins and large ones above them, bin 64 + k for chunks below
 * 2^(11 + k) bytes (large_csize2tidx, MAX_TCACHE_SMALL_SIZE 1040 < 2^11):
 * with 76 bins, chunks below 4 MiB.  2.43 keeps one more than the largest
 * chunk size (nb + 1): the bound is inclusive.
 */
static uint64_t tcache_max_bytes(uint64_t nbins)
{
	if (nbins <= 64)
		return (nbins - 1) * 16 + 24;
	if (nbins > 64 + 40)
		return UINT64_MAX;
	return 1ull << (11 + nbins - 65);
}

static int c_par(struct vctx *v, char *d, size_t n)
{
	const struct ptm_layout *l = v->l;
	const unsigned char *p = v->par;
	int64_t nm = (int32_t)ptm_get(p, &l->n_mmaps);
	int64_t maxn = (int32_t)ptm_get(p, &l->max_n_mmaps);
	uint64_t mem = ptm_get(p, &l->mmapped_mem);
	uint64_t maxmem = ptm_get(p, &l->max_mmapped_mem);

	if (nm < 0 || nm > maxn || mem > maxmem || (nm == 0) != (mem == 0) ||
	    mem % PTM_PAGE || maxmem % PTM_PAGE)
		return say(d, n, 0, "n_mmaps %" PRId64 ", max_n_mmaps %" PRId64
			   ", mmapped_mem %" PRIu64 ", max_mmapped_mem %"
			   PRIu64 " do not agree", nm, maxn, mem, maxmem);
	/*
	 * Tunables and mallopt bound these (malloc.c do_set_tcache_*): counts
	 * up to MAX_TCACHE_COUNT 65535, no more bins than tcache has, sizes
	 * as tcache_max_bytes() says.
	 */
	if (l->tcache_count.size && ptm_get(p, &l->tcache_count) > 65535)
		return say(d, n, 0, "tcache settings out of their range");
	if (l->tcache_entries.count &&
	    ((l->tcache_bins.size &&
	      ptm_get(p, &l->tcache_bins) > l->tcache_entries.count) ||
	     (l->tcache_max_bytes.size &&
	      ptm_get(p, &l->tcache_max_bytes) >
		      tcache_max_bytes(l->tcache_entries.count))))
		return say(d, n, 0, "tcache settings out of their range");
	return say(d, n, 1, "%" PRId64 " mmapped chunks, %" PRIu64 " bytes, "
		   "tcache settings in range", nm, mem);
}

static const struct {
	const char *name;
	check_fn fn;
} ptm_check_table[] = {
	{ "main_arena and mp_ lie in libc's writable data", c_in_libc },
	{ "the arena ring closes on itself", c_ring },
	{ "empty bins point at themselves", c_bins },
	{ "top lies inside the heap mapping", c_top },
	{ "system_mem agrees with the mapping sizes", c_sysmem },
	{ "mp_.sbrk_base is the start of [heap]", c_sbrk },
	{ "each other arena's heap points back at it", c_heaps },
	{ "mp_'s counters agree", c_par },
};

int ptm_verify(const struct ptm_layout *l, const struct ptm_where *w,
	       hi_addr_t lib_lo, hi_addr_t lib_hi, const struct hi_reader *r,
	       const struct hi_maps *maps, struct ptm_checks *c)
{
	struct vctx v = {
		.l = l, .w = w, .lib_lo = lib_lo, .lib_hi = lib_hi, .r = r,
		.maps = maps,
	};
	const size_t nchecks = sizeof(ptm_check_table) /
			       sizeof(ptm_check_table[0]);
	int ret;

	memset(c, 0, sizeof(*c));
	/* The last stretch of [heap], as one however many lines it has. */
	for (size_t i = maps->n; i-- > 0;) {
		if (maps->v[i].is_heap) {
			hi_maps_extent(maps, maps->v[i].start, &v.heap_lo,
				       &v.heap_hi);
			break;
		}
	}
	v.st = malloc(l->state_size);
	v.par = malloc(l->par_size);
	if (!v.st || !v.par) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < nchecks && i < HI_MAX_CHECKS; i++) {
		struct hi_check *k = &c->v[c->n++];

		k->name = ptm_check_table[i].name;
		if (i == 0) {
			k->ok = ptm_check_table[i].fn(&v, k->detail,
						      sizeof(k->detail));
			if (!k->ok)
				break;
			/* The rest work on what was read here. */
			ret = hi_read(r, w->main_arena, v.st, l->state_size);
			if (!ret)
				ret = hi_read(r, w->mp, v.par, l->par_size);
			if (ret) {
				if (ret != -EFAULT)
					goto out;
				k->ok = say(k->detail, sizeof(k->detail), 0,
					    "cannot be read");
				break;
			}
		} else {
			k->ok = ptm_check_table[i].fn(&v, k->detail,
						      sizeof(k->detail));
		}
		if (v.err) {
			ret = v.err;
			goto out;
		}
		c->passed += k->ok ? 1 : 0;
	}
	ret = c->passed == c->n && c->n == nchecks;
out:
	free(v.st);
	free(v.par);
	return ret;
}

int ptm_select(const struct ptm_layout *l, const hi_addr_t *arenas,
	       int narenas, const hi_addr_t *pars, int npars,
	       hi_addr_t lib_lo, hi_addr_t lib_hi, const struct hi_reader *r,
	       const struct hi_maps *maps, struct ptm_where *found,
	       struct ptm_checks *c)
{
	struct ptm_checks k;
	int npass = 0, ret;

	memset(c, 0, sizeof(*c));
	memset(found, 0, sizeof(*found));
	for (int i = 0; i < narenas; i++) {
		for (int j = 0; j < npars; j++) {
			struct ptm_where w = { .main_arena = arenas[i],
					       .mp = pars[j] };

			ret = ptm_verify(l, &w, lib_lo, lib_hi, r, maps, &k);
			if (ret < 0)
				return ret;
			if (ret == 1) {
				if (!npass++) {
					*found = w;
					*c = k;
				}
			} else if (!npass && (!c->n || k.passed > c->passed)) {
				*found = w;
				*c = k;
			}
		}
	}
	return npass;
}
