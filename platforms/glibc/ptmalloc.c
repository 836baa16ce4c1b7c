/* SPDX-License-Identifier: MIT */
/*
 * The glibc (ptmalloc) backend: recognise glibc's malloc among the target's
 * modules, locate main_arena and mp_ and the layout of the allocator's
 * structures in the DWARF of the target's own libc, and hand the walker
 * (ptmalloc_walk.c) what it needs.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ptmalloc_priv.h"

struct ptm_priv {
	struct hi_sym_module libc;
	struct ptm_layout l;
	struct ptm_where w;
	int located;
	/* arena.c's list_lock and free_list_lock; 0 when not found */
	hi_addr_t list_lock;
	hi_addr_t free_list_lock;
	int dwarf;        /* main_arena and mp_ came from symbols */
	int cached;       /* ... through the layout cache */
	int need_verify;  /* the addresses must pass ptm_verify first */
	int verified;
	int crosschecked; /* a cached entry that failed was weighed */
	/* Without symbols: the candidates found in libc's file. */
	hi_addr_t arenas[PTM_MAX_CAND], pars[PTM_MAX_CAND];
	int narenas, npars;
};

/* Basename of a path. */
static const char *base(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

/* glibc's libc: libc.so.6 (2.34 and later), libc-2.NN.so before. */
static int is_glibc_libc(const char *name)
{
	const char *b = base(name);
	unsigned maj, min;
	char tail[8];

	if (strcmp(b, "libc.so.6") == 0)
		return 1;
	return sscanf(b, "libc-%u.%u%7s", &maj, &min, tail) == 3 &&
	       strcmp(tail, ".so") == 0;
}

/* Allocators that replace glibc's malloc when they are loaded. */
static const char *other_allocator(const char *name)
{
	static const struct {
		const char *needle;
		const char *what;
	} known[] = {
		{ "jemalloc", "jemalloc" },
		{ "tcmalloc", "tcmalloc" },
		{ "mimalloc", "mimalloc" },
		{ "libhoard", "Hoard" },
		{ "ld-musl", "musl's malloc" },
		{ "libc.musl", "musl's malloc" },
	};
	const char *b = base(name);

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		if (strstr(b, known[i].needle))
			return known[i].what;
	}
	return NULL;
}

struct probe_state {
	struct hi_sym_module libc;
	int have_libc;
	const char *other;
	char other_path[4096];
};

static int probe_cb(const struct hi_sym_module *m, void *arg)
{
	struct probe_state *ps = arg;
	const char *other;

	if (!ps->have_libc && is_glibc_libc(m->name)) {
		ps->libc = *m;
		ps->have_libc = 1;
	}
	other = other_allocator(m->name);
	if (other && !ps->other) {
		ps->other = other;
		snprintf(ps->other_path, sizeof(ps->other_path), "%s",
			 m->name);
	}
	return 0;
}

static int ptm_probe(struct hi_alloc_ctx *ctx)
{
	struct probe_state ps = { .have_libc = 0 };
	struct ptm_priv *priv;
	int ret;

	ret = hi_sym_each_module(ctx->sym, probe_cb, &ps);
	if (ret < 0)
		return ret;
	if (ps.other) {
		/*
		 * A preloaded allocator's malloc comes first in the symbol
		 * search order, so glibc's arenas stay empty and reading
		 * them would report a heap that is not the process's.
		 */
		snprintf(ctx->why, sizeof(ctx->why), "%s (%.4000s is mapped)",
			 ps.other, ps.other_path);
		return 0;
	}
	if (!ps.have_libc)
		return -HI_E_NOLIBC;
	priv = calloc(1, sizeof(*priv));
	if (!priv)
		return -ENOMEM;
	priv->libc = ps.libc;
	ctx->priv = priv;
	snprintf(ctx->libc_path, sizeof(ctx->libc_path), "%s", ps.libc.name);
	return 1;
}

/* "... release version 2.36." in glibc's banner (csu/version.c). */
static int parse_version(const char *banner, unsigned *maj, unsigned *min)
{
	const char *p = strstr(banner, "release version ");

	if (!p)
		return -1;
	return sscanf(p + strlen("release version "), "%u.%u", maj, min) == 2
		       ? 0
		       : -1;
}

/*
 * One member into a field; required members fail the look-up, optional
 * ones (attached_threads, 2.23 and later; fastbinsY, 2.42 and earlier; the
 * tcache and huge page members of malloc_par) come back with size 0.
 */
static int member(const struct hi_sym_type *t, const char *tname,
		  const char *name, int required, struct ptm_field *f,
		  char *what, size_t whatsize)
{
	int ret = hi_sym_member(t, name, &f->off, &f->size, &f->count, NULL);

	if (ret == -HI_E_NOSYM && !required) {
		memset(f, 0, sizeof(*f));
		return 0;
	}
	if (ret)
		snprintf(what, whatsize, "struct %s.%s", tname, name);
	return ret;
}

/*
 * heap_info (arena.c), the header of each heap of a non-main arena.  It is
 * optional: without it those arenas are read through their lists only.
 */
static void heap_info_layout(const struct hi_sym_module *libc,
			     struct ptm_layout *l)
{
	struct hi_sym_type hi;
	uint64_t count;

	l->hinfo_size = 0;
	if (hi_sym_type_named(libc, "malloc.c", "heap_info", &hi) ||
	    hi_sym_type_size(&hi, &l->hinfo_size) ||
	    hi_sym_member(&hi, "ar_ptr", &l->h_ar_ptr.off, &l->h_ar_ptr.size,
			  &count, NULL) ||
	    hi_sym_member(&hi, "prev", &l->h_prev.off, &l->h_prev.size,
			  &count, NULL) ||
	    hi_sym_member(&hi, "size", &l->h_size.off, &l->h_size.size,
			  &count, NULL))
		l->hinfo_size = 0;
}

int ptm_layout_dwarf(const struct hi_sym_type *state,
		     const struct hi_sym_type *par, struct ptm_layout *l,
		     char *what, size_t whatsize)
{
	struct hi_sym_type top_t, chunk;
	uint64_t off, size, count;
	int ret;

	memset(l, 0, sizeof(*l));
	if ((ret = hi_sym_type_size(state, &l->state_size)) ||
	    (ret = hi_sym_type_size(par, &l->par_size)))
		return ret;
#define M(t, tn, name, req, f)                                         \
	do {                                                           \
		if ((ret = member(t, tn, name, req, f, what, whatsize))) \
			return ret;                                    \
	} while (0)
	M(state, "malloc_state", "mutex", 1, &l->mutex);
	M(state, "malloc_state", "flags", 1, &l->flags);
	/* Gone in 2.43 ("malloc: Remove fastbin infrastructure"). */
	M(state, "malloc_state", "fastbinsY", 0, &l->fastbins);
	M(state, "malloc_state", "top", 1, &l->top);
	M(state, "malloc_state", "bins", 1, &l->bins);
	M(state, "malloc_state", "next", 1, &l->next);
	M(state, "malloc_state", "attached_threads", 0, &l->attached_threads);
	M(state, "malloc_state", "system_mem", 1, &l->system_mem);
	M(state, "malloc_state", "max_system_mem", 1, &l->max_system_mem);
	M(par, "malloc_par", "trim_threshold", 1, &l->trim_threshold);
	M(par, "malloc_par", "mmap_threshold", 1, &l->mmap_threshold);
	M(par, "malloc_par", "hp_pagesize", 0, &l->hp_pagesize);
	M(par, "malloc_par", "n_mmaps", 1, &l->n_mmaps);
	M(par, "malloc_par", "n_mmaps_max", 1, &l->n_mmaps_max);
	M(par, "malloc_par", "max_n_mmaps", 1, &l->max_n_mmaps);
	M(par, "malloc_par", "mmapped_mem", 1, &l->mmapped_mem);
	M(par, "malloc_par", "max_mmapped_mem", 1, &l->max_mmapped_mem);
	M(par, "malloc_par", "sbrk_base", 1, &l->sbrk_base);
	M(par, "malloc_par", "tcache_bins", 0, &l->tcache_bins);
	/* Renamed in 2.42, when tcache gained bins for large chunks. */
	if (!l->tcache_bins.size)
		M(par, "malloc_par", "tcache_small_bins", 0, &l->tcache_bins);
	M(par, "malloc_par", "tcache_max_bytes", 0, &l->tcache_max_bytes);
	M(par, "malloc_par", "tcache_count", 0, &l->tcache_count);

	/* struct malloc_chunk, through the type of malloc_state.top. */
	ret = hi_sym_member(state, "top", &off, &size, &count, &top_t);
	if (ret || (ret = hi_sym_pointee(&top_t, &chunk))) {
		snprintf(what, whatsize, "struct malloc_chunk");
		return ret;
	}
	M(&chunk, "malloc_chunk", "mchunk_size", 1, &l->c_size);
	M(&chunk, "malloc_chunk", "fd", 1, &l->c_fd);
	M(&chunk, "malloc_chunk", "bk", 1, &l->c_bk);
#undef M
	l->ptr_size = l->top.size;
	ret = ptm_layout_check(l);
	if (ret)
		snprintf(what, whatsize,
			 "struct malloc_state, malloc_par or malloc_chunk");
	return ret;
}

void ptm_layout_tcache(const struct hi_sym_module *libc, struct ptm_layout *l)
{
	struct hi_sym_type tc;

	memset(&l->tcache_entries, 0, sizeof(l->tcache_entries));
	/* malloc.c: typedef struct tcache_perthread_struct {...} ... */
	if (hi_sym_type_named(libc, "malloc.c", "tcache_perthread_struct",
			      &tc) ||
	    hi_sym_member(&tc, "entries", &l->tcache_entries.off,
			  &l->tcache_entries.size, &l->tcache_entries.count,
			  NULL) ||
	    ptm_layout_check(l))
		memset(&l->tcache_entries, 0, sizeof(l->tcache_entries));
}

static void tried(struct hi_alloc_ctx *ctx, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Note why a method failed before the next one is tried. */
static void tried(struct hi_alloc_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	if (ctx->ntried >= sizeof(ctx->tried) / sizeof(ctx->tried[0]))
		return;
	va_start(ap, fmt);
	vsnprintf(ctx->tried[ctx->ntried++], sizeof(ctx->tried[0]), fmt, ap);
	va_end(ap);
}

/*
 * Step 1 and 2 of --method auto: the DWARF of the target's libc, from the
 * local debug directories or, through libdwfl's libdebuginfod, from a
 * debuginfod server.  Return 0, or a negative code with why set.
 */
static int locate_dwarf(struct hi_alloc_ctx *ctx, struct ptm_priv *priv)
{
	struct hi_sym_type state, par;
	struct hi_sym_debug dbg;
	int ret;

	ret = hi_sym_load_debug(&priv->libc, &dbg);
	ctx->debuginfod_err = dbg.debuginfod_err;
	if (ret)
		return ret;
	snprintf(ctx->debug_file, sizeof(ctx->debug_file), "%s",
		 dbg.file ? dbg.file : "");
	ctx->located_by = dbg.via_debuginfod ? "debuginfod" : "dwarf";

	ret = hi_sym_variable(&priv->libc, "malloc.c", "main_arena",
			      &priv->w.main_arena, &state);
	if (ret) {
		snprintf(ctx->why, sizeof(ctx->why), "main_arena");
		return ret;
	}
	ret = hi_sym_variable(&priv->libc, "malloc.c", "mp_", &priv->w.mp,
			      &par);
	if (ret) {
		snprintf(ctx->why, sizeof(ctx->why), "mp_");
		return ret;
	}
	ret = ptm_layout_dwarf(&state, &par, &priv->l, ctx->why,
			       sizeof(ctx->why));
	if (ret)
		return ret;
	heap_info_layout(&priv->libc, &priv->l);
	if (ptm_layout_check(&priv->l))
		priv->l.hinfo_size = 0;
	ptm_layout_tcache(&priv->libc, &priv->l);
	/*
	 * The global locks, arena.c (#included into malloc.c): list_lock
	 * guards the ring of arenas, free_list_lock the free list (2.23 and
	 * later).  Optional: only the injected calls check them.
	 */
	if (hi_sym_variable(&priv->libc, "malloc.c", "list_lock",
			    &priv->list_lock, &state) != 0)
		priv->list_lock = 0;
	if (hi_sym_variable(&priv->libc, "malloc.c", "free_list_lock",
			    &priv->free_list_lock, &state) != 0)
		priv->free_list_lock = 0;
	priv->located = 1;
	priv->dwarf = 1;
	ctx->main_arena = priv->w.main_arena;
	ctx->mp = priv->w.mp;
	snprintf(ctx->main_arena_how, sizeof(ctx->main_arena_how),
		 "symbol main_arena in the DWARF of %.200s",
		 ctx->debug_file);
	snprintf(ctx->mp_how, sizeof(ctx->mp_how),
		 "symbol mp_ in the DWARF of %.200s", ctx->debug_file);
	return 0;
}

/* The libc file behind struct ptm_image, through symbols/. */
static int img_relative(void *arg,
			int (*fn)(hi_addr_t where, hi_addr_t value, void *cb),
			void *cb)
{
	return hi_sym_each_relative(arg, fn, cb);
}

static int img_read(void *arg, hi_addr_t addr, void *buf, size_t len)
{
	return hi_sym_file_read(arg, addr, buf, len);
}

static int img_data(void *arg,
		    int (*fn)(hi_addr_t addr, const unsigned char *data,
			      size_t size, void *cb),
		    void *cb)
{
	return hi_sym_each_data(arg, fn, cb);
}

/*
 * Step 3: the built-in table of the libc's version, and candidates for
 * main_arena and mp_ from the libc's file, to be verified in memory once
 * the target is stopped.  Return 0 or a negative code with why set.
 */
static int locate_builtin(struct hi_alloc_ctx *ctx, struct ptm_priv *priv,
			  unsigned maj, unsigned min)
{
	const struct ptm_image img = {
		.each_relative = img_relative,
		.read = img_read,
		.each_data = img_data,
		.arg = &priv->libc,
	};
	const struct ptm_build *b;
	const char *range;
	int n;

	b = ptm_builtin_for(maj, min, &range);
	if (!b) {
		snprintf(ctx->why, sizeof(ctx->why), "glibc %u.%u has no "
			 "built-in layout; heapinspect knows %s", maj, min,
			 range);
		return -HI_E_NOVERSION;
	}
	priv->l = b->layout;
	snprintf(ctx->table, sizeof(ctx->table), "%s", b->name);
	ctx->table_mapped = b->mapped;
	n = ptm_find_arena(&priv->l, &img, priv->arenas, PTM_MAX_CAND);
	if (n <= 0) {
		snprintf(ctx->why, sizeof(ctx->why), "no main_arena in %.3000s:"
			 " no relocation points a struct malloc_state's next "
			 "at itself", ctx->libc_path);
		return n < 0 && n != -HI_E_TOOBIG ? n : -HI_E_VERIFY;
	}
	priv->narenas = n;
	n = ptm_find_par(b, &img, priv->pars, PTM_MAX_CAND);
	if (n <= 0) {
		snprintf(ctx->why, sizeof(ctx->why), "no mp_ in %.3000s: its "
			 "writable data holds no struct malloc_par with "
			 "glibc's default values", ctx->libc_path);
		return n < 0 && n != -HI_E_TOOBIG ? n : -HI_E_VERIFY;
	}
	priv->npars = n;
	priv->need_verify = 1;
	ctx->located_by = "builtin";
	ctx->debug_file[0] = '\0';
	return 0;
}

/*
 * The layout cache, before anything else: a layout a debug file gave once
 * for this build-id, to be verified in memory like a symbol-less one.
 * Return 0 when it gave candidates.
 */
static int locate_cached(struct hi_alloc_ctx *ctx, struct ptm_priv *priv)
{
	struct ptm_cached e;
	char why[512];
	int ret;

	if (!ctx->build_id[0])
		return -ENOENT;
	ret = ptm_cache_load(ctx->cache_dir, ctx->build_id, &e, why,
			     sizeof(why));
	if (ret == -HI_E_CORRUPT)
		snprintf(ctx->cache_note, sizeof(ctx->cache_note),
			 "ignored: %.400s", why);
	if (ret)
		return ret;
	if (e.arena_off + e.l.state_size > priv->libc.end - priv->libc.start ||
	    e.mp_off + e.l.par_size > priv->libc.end - priv->libc.start) {
		snprintf(ctx->cache_note, sizeof(ctx->cache_note), "ignored: "
			 "its addresses lie outside %.400s", ctx->libc_path);
		return -HI_E_CORRUPT;
	}
	priv->l = e.l;
	priv->arenas[0] = priv->libc.start + e.arena_off;
	priv->pars[0] = priv->libc.start + e.mp_off;
	priv->narenas = priv->npars = 1;
	priv->need_verify = 1;
	priv->cached = 1;
	ctx->from_cache = 1;
	ctx->located_by = strcmp(e.located_by, "debuginfod") ? "dwarf"
							    : "debuginfod";
	snprintf(ctx->main_arena_how, sizeof(ctx->main_arena_how),
		 "the layout cache of build-id %.128s (found by %s before)",
		 ctx->build_id, ctx->located_by);
	snprintf(ctx->mp_how, sizeof(ctx->mp_how), "%s",
		 ctx->main_arena_how);
	return 0;
}

/* Keep what the DWARF said for the next run; a failure is only noted. */
static void cache_store(struct hi_alloc_ctx *ctx, struct ptm_priv *priv)
{
	struct ptm_cached e = { .l = priv->l };
	int ret;

	if (!(ctx->flags & HI_LOCATE_CACHE) || !ctx->cache_dir ||
	    !ctx->build_id[0])
		return;
	snprintf(e.located_by, sizeof(e.located_by), "%s", ctx->located_by);
	e.arena_off = priv->w.main_arena - priv->libc.start;
	e.mp_off = priv->w.mp - priv->libc.start;
	ret = ptm_cache_store(ctx->cache_dir, ctx->build_id, &e);
	if (ret)
		snprintf(ctx->cache_note, sizeof(ctx->cache_note),
			 "not written to %.400s: %s", ctx->cache_dir,
			 hi_strerror(ret));
}

static int ptm_locate(struct hi_alloc_ctx *ctx)
{
	struct ptm_priv *priv = ctx->priv;
	char banner[4096];
	unsigned maj, min;
	int ret, safe;

	ret = hi_sym_build_id(&priv->libc, ctx->build_id,
			      sizeof(ctx->build_id));
	if (ret)
		ctx->build_id[0] = '\0';
	ret = hi_sym_find_string(&priv->libc, "release version ", banner,
				 sizeof(banner));
	if (ret || parse_version(banner, &maj, &min)) {
		snprintf(ctx->why, sizeof(ctx->why),
			 "no glibc version banner in %.4000s",
			 ctx->libc_path);
		return -HI_E_NOLIBC;
	}
	snprintf(ctx->version, sizeof(ctx->version), "%u.%u", maj, min);
	{
		const char *range;

		ptm_builtin_for(0, 0, &range);
		snprintf(ctx->tables, sizeof(ctx->tables), "%s", range);
	}
	/* Safe-linking came with glibc 2.32 (commit a1a486d7). */
	safe = maj > 2 || (maj == 2 && min >= 32);

	if ((ctx->flags & HI_LOCATE_CACHE) && ctx->cache_dir &&
	    locate_cached(ctx, priv) == 0)
		goto found;
	ret = -HI_E_NODEBUG;
	if (ctx->flags & HI_LOCATE_DWARF) {
		ret = locate_dwarf(ctx, priv);
		if (ret == 0) {
			priv->l.safe_linking = safe;
			cache_store(ctx, priv);
			goto found;
		}
		if (ret == -HI_E_NODEBUG)
			tried(ctx, "no debug information for build-id %s",
			      ctx->build_id[0] ? ctx->build_id : "(none)");
		else
			tried(ctx, "the debug information (%.200s) does not "
			      "describe malloc as expected: %s: %.200s",
			      ctx->debug_file, hi_strerror(ret), ctx->why);
		if (ctx->debuginfod_err)
			tried(ctx, "debuginfod: %s",
			      hi_strerror(ctx->debuginfod_err));
		ctx->located_by = NULL;
		memset(&priv->l, 0, sizeof(priv->l));
	}
	if (!(ctx->flags & HI_LOCATE_BUILTIN))
		return ret;
	ret = locate_builtin(ctx, priv, maj, min);
	if (ret)
		return ret;
found:
	priv->l.safe_linking = safe;
	return 0;
}

/*
 * Whether the lock word of any candidate arena is held: 1, or 2 with
 * waiters (lowlevellock.h).  A candidate may not be an arena at all (a
 * layout cache entry gone wrong, a search's decoy), and what it holds
 * there is no lock: anything else would make it look busy for ever.
 */
static int candidates_locked(struct hi_alloc_ctx *ctx, struct ptm_priv *priv)
{
	for (int i = 0; i < priv->narenas; i++) {
		unsigned char b[8];
		struct ptm_field f = { .off = 0, .size = priv->l.mutex.size };
		uint64_t word;

		if (hi_read(ctx->reader, priv->arenas[i] + priv->l.mutex.off,
			    b, f.size))
			continue;
		word = ptm_get(b, &f);
		if (word == 1 || word == 2)
			return 1;
	}
	return 0;
}

static void keep_checks(struct hi_alloc_ctx *ctx, const struct ptm_checks *c)
{
	memcpy(ctx->checks, c->v, sizeof(c->v[0]) * c->n);
	ctx->nchecks = c->n;
}

/* The one pair of addresses that passed every check is glibc's. */
static void accept(struct hi_alloc_ctx *ctx, struct ptm_priv *priv,
		   const struct ptm_where *found)
{
	priv->w = *found;
	priv->verified = 1;
	ctx->verified = 1;
	ctx->main_arena = found->main_arena;
	ctx->mp = found->mp;
	if (!priv->dwarf && !priv->cached) {
		snprintf(ctx->main_arena_how, sizeof(ctx->main_arena_how),
			 "searched: the relocation of main_arena.next "
			 "pointing back at it, 1 of %d candidate%s in "
			 "libc's data", priv->narenas,
			 priv->narenas == 1 ? "" : "s");
		snprintf(ctx->mp_how, sizeof(ctx->mp_how),
			 "searched: glibc's default values of mp_, 1 "
			 "of %d candidate%s in libc's data",
			 priv->npars, priv->npars == 1 ? "" : "s");
	}
}

/* Whether two layouts are the same, member for member. */
static int same_layout(const struct ptm_layout *a, const struct ptm_layout *b)
{
	struct ptm_layout x = *a, y = *b;

	/* safe_linking comes from the banner, not from the entry. */
	x.safe_linking = y.safe_linking = 0;
	return memcmp(&x, &y, sizeof(x)) == 0;
}

static int in_list(hi_addr_t a, const hi_addr_t *v, int n)
{
	for (int i = 0; i < n; i++) {
		if (v[i] == a)
			return 1;
	}
	return 0;
}

/*
 * A layout cache entry failed its checks (not while an arena was
 * locked): is it wrong, or did a check fail for a reason the entry is not
 * to blame for (a heap the checks do not expect)?  Ask what the entry
 * stands for, without the target: the DWARF it was made from, or else
 * libc's own file through the built-in tables.  Only an answer that
 * differs proves the entry wrong: it is removed, and what was found
 * instead is used in this run.  When the DWARF agrees, its addresses are
 * used as DWARF's always are, without the checks; when the file agrees or
 * cannot tell, the entry is kept and the checks decide.  Needs no stop.
 */
static void crosscheck(struct hi_alloc_ctx *ctx, struct ptm_priv *priv)
{
	struct ptm_priv fresh = { .libc = priv->libc };
	struct ptm_layout cl = priv->l;
	struct ptm_where cw = { priv->arenas[0], priv->pars[0] };
	const char *by = ctx->located_by;
	unsigned maj = 0, min = 0;
	int wrong = 0;

	if (priv->crosschecked || !priv->cached)
		return;
	priv->crosschecked = 1;
	if ((ctx->flags & HI_LOCATE_DWARF) && locate_dwarf(ctx, &fresh) == 0) {
		fresh.l.safe_linking = cl.safe_linking;
		wrong = fresh.w.main_arena != cw.main_arena ||
			fresh.w.mp != cw.mp || !same_layout(&fresh.l, &cl);
		*priv = fresh;
		priv->crosschecked = 1;
		ctx->from_cache = 0;
		if (wrong) {
			ptm_cache_remove(ctx->cache_dir, ctx->build_id);
			cache_store(ctx, priv);
			snprintf(ctx->cache_note, sizeof(ctx->cache_note),
				 "its entry disagreed with the debug "
				 "information and was replaced");
		} else {
			snprintf(ctx->cache_note, sizeof(ctx->cache_note),
				 "its entry failed a check on this process "
				 "and was kept: the debug information agrees "
				 "with it");
		}
		return;
	}
	/* locate_dwarf may have set these before it failed. */
	ctx->located_by = by;
	ctx->debug_file[0] = '\0';
	if (!(ctx->flags & HI_LOCATE_BUILTIN) ||
	    sscanf(ctx->version, "%u.%u", &maj, &min) != 2 ||
	    locate_builtin(ctx, &fresh, maj, min) != 0) {
		ctx->located_by = by;
		snprintf(ctx->cache_note, sizeof(ctx->cache_note),
			 "its entry failed a check on this process and was "
			 "kept: nothing else tells whether it is wrong");
		return;
	}
	if (in_list(cw.main_arena, fresh.arenas, fresh.narenas) &&
	    in_list(cw.mp, fresh.pars, fresh.npars)) {
		/* Right where the file says: the checks decide, as before. */
		ctx->located_by = by;
		ctx->table[0] = '\0';
		snprintf(ctx->cache_note, sizeof(ctx->cache_note),
			 "its entry failed a check on this process and was "
			 "kept: libc's file agrees with its addresses");
		return;
	}
	/* Proven wrong: the built-in tables' candidates, from here on. */
	ptm_cache_remove(ctx->cache_dir, ctx->build_id);
	fresh.l.safe_linking = cl.safe_linking;
	fresh.crosschecked = 1;
	*priv = fresh;
	ctx->from_cache = 0;
	snprintf(ctx->cache_note, sizeof(ctx->cache_note), "its entry "
		 "disagreed with libc's file and was removed");
}

/*
 * The same proof as ptm_verify_op's, made while the target runs, so that
 * the target is not held for it: a state caught in the middle of an
 * update may fail a check (then the proof is made again in the stop, as
 * if this had not run), but addresses that are not glibc's do not pass
 * every check because the target moved.  A pass holds for as long as
 * this libc is mapped.  Nothing is kept from a failure.
 */
static int ptm_preverify_op(struct hi_alloc_ctx *ctx)
{
	struct ptm_priv *priv = ctx->priv;
	struct ptm_checks best;
	struct ptm_where found;

	if (priv->verified)
		return 1;
	/* DWARF's addresses need no proof; --explain shows it in the stop. */
	if (priv->dwarf && !priv->need_verify)
		return 0;
	if (ptm_select(&priv->l, priv->arenas, priv->narenas, priv->pars,
		       priv->npars, priv->libc.start, priv->libc.end,
		       ctx->reader, ctx->maps, &found, &best) != 1) {
		if (!priv->cached || candidates_locked(ctx, priv))
			return 0;
		/*
		 * Not in the stop: a look at the DWARF or at libc's file,
		 * then the proof again with what it gave.
		 */
		crosscheck(ctx, priv);
		if (priv->dwarf && !priv->need_verify)
			return 0;
		if (priv->cached || ptm_select(&priv->l, priv->arenas,
					       priv->narenas, priv->pars,
					       priv->npars, priv->libc.start,
					       priv->libc.end, ctx->reader,
					       ctx->maps, &found,
					       &best) != 1)
			return 0;
	}
	keep_checks(ctx, &best);
	accept(ctx, priv, &found);
	return 1;
}

static int ptm_verify_op(struct hi_alloc_ctx *ctx, int busy_hint)
{
	struct ptm_priv *priv = ctx->priv;
	struct ptm_checks c, best;
	struct ptm_where found, best_w;
	int npass, ret;

	if (priv->verified)
		return 0;
	if (priv->dwarf && !priv->need_verify) {
		if (!(ctx->flags & HI_LOCATE_EXPLAIN))
			return 0;
		ret = ptm_verify(&priv->l, &priv->w, priv->libc.start,
				 priv->libc.end, ctx->reader, ctx->maps, &c);
		if (ret < 0)
			return ret;
		keep_checks(ctx, &c);
		ctx->verified = ret == 1;
		return 0;
	}
	npass = ptm_select(&priv->l, priv->arenas, priv->narenas, priv->pars,
			   priv->npars, priv->libc.start, priv->libc.end,
			   ctx->reader, ctx->maps, &found, &best);
	if (npass < 0)
		return npass;
	best_w = found;
	keep_checks(ctx, &best);
	if (npass == 1) {
		accept(ctx, priv, &found);
		return 0;
	}
	if (npass > 1) {
		snprintf(ctx->why, sizeof(ctx->why), "%d candidate pairs for "
			 "main_arena and mp_ passed every check: cannot tell "
			 "which is glibc's", npass);
		return -HI_E_VERIFY;
	}
	ctx->main_arena = best_w.main_arena;
	ctx->mp = best_w.mp;
	if (busy_hint || candidates_locked(ctx, priv))
		return -HI_E_BUSY;
	if (priv->cached && !priv->crosschecked) {
		/* Not weighed before the stop (no maps then): now. */
		crosscheck(ctx, priv);
		if (!priv->cached)
			return ptm_verify_op(ctx, busy_hint);
	}
	for (unsigned k = 0; k < best.n; k++) {
		if (!best.v[k].ok) {
			snprintf(ctx->why, sizeof(ctx->why), "%s: %s",
				 best.v[k].name, best.v[k].detail);
			break;
		}
	}
	return -HI_E_VERIFY;
}

int ptm_locate_dwarf(struct hi_alloc_ctx *ctx, const struct hi_sym_module *libc,
		     struct ptm_layout *l, struct ptm_where *w)
{
	struct ptm_priv *priv = calloc(1, sizeof(*priv));
	int ret;

	if (!priv)
		return -ENOMEM;
	priv->libc = *libc;
	ret = locate_dwarf(ctx, priv);
	if (ret == 0) {
		*l = priv->l;
		*w = priv->w;
	}
	free(priv);
	return ret;
}

int ptm_located(const struct hi_alloc_ctx *ctx, struct ptm_layout *l,
		struct ptm_where *w)
{
	const struct ptm_priv *priv = ctx->priv;

	/* Only addresses that need no proof: those from DWARF. */
	if (!priv || !priv->dwarf || priv->need_verify)
		return -EINVAL;
	*l = priv->l;
	*w = priv->w;
	return 0;
}

static int ptm_busy_op(struct hi_alloc_ctx *ctx)
{
	struct ptm_priv *priv = ctx->priv;

	return ptm_busy(&priv->l, &priv->w, ctx->reader, ctx->maps);
}

/* malloc.c's exported functions (2.31 to 2.44), for the symbol-less path. */
static const char *const ptm_malloc_funcs[] = {
	"malloc", "__libc_malloc", "free", "__libc_free", "cfree", "calloc",
	"__libc_calloc", "realloc", "__libc_realloc", "reallocarray",
	"memalign", "__libc_memalign", "aligned_alloc", "posix_memalign",
	"valloc", "__libc_valloc", "pvalloc", "__libc_pvalloc", "malloc_trim",
	"malloc_usable_size", "mallinfo", "__libc_mallinfo", "mallinfo2",
	"__libc_mallinfo2", "malloc_stats", "mallopt", "__libc_mallopt",
	"malloc_info", NULL,
};

/*
 * Where sysmalloc grows the main arena's heap: MORECORE is __sbrk, which
 * calls __brk (misc/sbrk.c, sysdeps/unix/sysv/linux/brk.c: units of their
 * own).  A lone thread stopped in them is most likely inside malloc, with
 * the heap's mapping already larger than main_arena.system_mem says.
 */
static const char *const ptm_morecore_funcs[] = {
	"__sbrk", "sbrk", "__brk", "brk",
};

static int ptm_code_ranges(struct hi_alloc_ctx *ctx, hi_addr_t (**ranges)[2])
{
	const size_t nmore = sizeof(ptm_morecore_funcs) /
			     sizeof(ptm_morecore_funcs[0]);
	struct ptm_priv *priv = ctx->priv;
	hi_addr_t (*v)[2];
	int n;

	/* arena.c and hooks.c are #included into malloc.c's unit. */
	if (priv->dwarf)
		n = hi_sym_cu_ranges(&priv->libc, "malloc.c", ranges);
	else
		/*
		 * Without DWARF: the code around malloc.c's exported
		 * functions, where the linker keeps its static ones
		 * (_int_malloc, _int_free, sysmalloc, malloc_consolidate,
		 * ...) between them.
		 */
		n = hi_sym_func_span(&priv->libc, ptm_malloc_funcs, ranges);
	if (n < 0)
		return n;
	v = realloc(*ranges, (n + nmore) * sizeof(*v));
	if (!v)
		return n;
	*ranges = v;
	for (size_t i = 0; i < nmore; i++) {
		hi_addr_t addr;
		uint64_t size;

		if (hi_sym_symbol(&priv->libc, ptm_morecore_funcs[i], &addr,
				  &size) == 0 && size) {
			v[n][0] = addr;
			v[n][1] = addr + size;
			n++;
		}
	}
	return n;
}

static int ptm_read(struct hi_alloc_ctx *ctx, int skip_locked,
		    struct hi_heap *heap)
{
	struct ptm_priv *priv = ctx->priv;

	static const enum ptm_mode modes[] = { PTM_AUTO, PTM_LISTS, PTM_SWEEP };

	return ptm_read_heap_mode(&priv->l, &priv->w, ctx->reader, ctx->maps,
				  skip_locked,
				  modes[ctx->walk >= 0 && ctx->walk <= 2
						? ctx->walk : 0],
				  heap);
}

/*
 * The exported entry points of glibc's allocator (malloc/malloc.c, the
 * strong_alias and libc_hidden_def lines at its end, 2.31 to 2.44).  A thread
 * whose call stack passes through one of them is inside the allocator.
 */
static const char *const ptm_entries[] = {
	"malloc", "free", "calloc", "realloc", "memalign", "aligned_alloc",
	"posix_memalign", "valloc", "pvalloc", "malloc_trim", "mallinfo",
	"mallinfo2", "malloc_stats", "malloc_info", "mallopt",
	"malloc_usable_size", "__libc_malloc", "__libc_free", "__libc_calloc",
	"__libc_realloc", "__libc_memalign", "__libc_valloc",
	"__libc_pvalloc", "__libc_mallinfo", "__libc_mallinfo2",
	"__libc_mallopt", "__malloc_trim", "__malloc_stats",
	"__malloc_info", "__malloc_usable_size", "__posix_memalign",
	"cfree",
};

static int ptm_functions(struct hi_alloc_ctx *ctx,
			 const unsigned char *restorer_code, size_t len,
			 struct hi_alloc_funcs *out)
{
	const size_t n = sizeof(ptm_entries) / sizeof(ptm_entries[0]);
	struct ptm_priv *priv = ctx->priv;
	hi_addr_t addr, found[2];
	uint64_t size;
	int ret;

	memset(out, 0, sizeof(*out));
	out->entries = calloc(n, sizeof(*out->entries));
	if (!out->entries)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (hi_sym_symbol(&priv->libc, ptm_entries[i], &addr, &size) ||
		    size == 0)
			continue;
		out->entries[out->nentries][0] = addr;
		out->entries[out->nentries][1] = addr + size;
		out->nentries++;
	}
	if (hi_sym_symbol(&priv->libc, "mallinfo2", &addr, &size) == 0)
		out->mallinfo2 = addr;
	if (hi_sym_symbol(&priv->libc, "mallinfo", &addr, &size) == 0)
		out->mallinfo = addr;
	if (hi_sym_symbol(&priv->libc, "malloc_trim", &addr, &size) == 0)
		out->malloc_trim = addr;
	/*
	 * __restore_rt is local: in .symtab when the debug file is loaded.
	 * Without it, its code, which must occur exactly once in libc.
	 */
	if (hi_sym_symbol(&priv->libc, "__restore_rt", &addr, &size) == 0) {
		out->restorer = addr;
	} else {
		ret = hi_sym_find_code(&priv->libc, restorer_code, len, found,
				       2);
		if (ret == 1) {
			out->restorer = found[0];
			out->restorer_by_code = 1;
		}
	}
	if (!out->mallinfo2 && !out->mallinfo) {
		snprintf(ctx->why, sizeof(ctx->why), "mallinfo in %.4000s",
			 ctx->libc_path);
		return -HI_E_NOSYM;
	}
	return 0;
}

static int ptm_global_locks(struct hi_alloc_ctx *ctx)
{
	struct ptm_priv *priv = ctx->priv;
	const hi_addr_t locks[2] = { priv->list_lock, priv->free_list_lock };
	int held = 0, have = 0;

	if (!priv->located)
		return -HI_E_NOSYM;
	for (int i = 0; i < 2; i++) {
		int32_t word;
		int ret;

		if (!locks[i])
			continue;
		have++;
		/* __libc_lock_t is an int: 0 free (lowlevellock.h). */
		ret = hi_read(ctx->reader, locks[i], &word, sizeof(word));
		if (ret)
			return ret;
		held += word != 0;
	}
	return have ? held : -HI_E_NOSYM;
}

static int ptm_call_sound_op(struct hi_alloc_ctx *ctx, int kind,
			     struct hi_heap *heap)
{
	struct ptm_priv *priv = ctx->priv;

	/* DWARF's addresses, or those proven in this stop. */
	if (!priv->located && !priv->verified)
		return -HI_E_NOSYM;
	return ptm_call_sound(&priv->l, &priv->w, ctx->reader, ctx->maps,
			      kind, heap);
}

static int ptm_unlock_all_op(struct hi_alloc_ctx *ctx,
			     const struct hi_writer *w, hi_addr_t *first)
{
	struct ptm_priv *priv = ctx->priv;
	const hi_addr_t globals[2] = { priv->list_lock,
				       priv->free_list_lock };

	if (!priv->located && !priv->verified)
		return -HI_E_NOSYM;
	return ptm_unlock_all(&priv->l, &priv->w, ctx->reader, ctx->maps, w,
			      globals, 2, first);
}

static void ptm_release(struct hi_alloc_ctx *ctx)
{
	/* After the stop: joining a helper may wait for a busy CPU. */
	ptm_sweep_end();
	free(ctx->priv);
	ctx->priv = NULL;
}

const struct hi_allocator_ops ptmalloc_ops = {
	.name = "glibc",
	.probe = ptm_probe,
	.locate = ptm_locate,
	.preverify = ptm_preverify_op,
	.verify = ptm_verify_op,
	.busy = ptm_busy_op,
	.code_ranges = ptm_code_ranges,
	.read = ptm_read,
	.functions = ptm_functions,
	.global_locks = ptm_global_locks,
	.call_sound = ptm_call_sound_op,
	.unlock_all = ptm_unlock_all_op,
	.release = ptm_release,
};
