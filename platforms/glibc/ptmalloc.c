/* SPDX-License-Identifier: MIT */
/*
 * The glibc (ptmalloc) backend: recognise glibc's malloc among the target's
 * modules, locate main_arena and mp_ and the layout of the allocator's
 * structures in the DWARF of the target's own libc, and hand the walker
 * (ptmalloc_walk.c) what it needs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ptmalloc_priv.h"

struct ptm_priv {
	struct hi_sym_module libc;
	struct ptm_layout l;
	struct ptm_where w;
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
 * ones (attached_threads, 2.23 and later) come back with size 0.
 */
static int member(struct hi_alloc_ctx *ctx, const struct hi_sym_type *t,
		  const char *tname, const char *name, int required,
		  struct ptm_field *f)
{
	int ret = hi_sym_member(t, name, &f->off, &f->size, &f->count, NULL);

	if (ret == -HI_E_NOSYM && !required) {
		memset(f, 0, sizeof(*f));
		return 0;
	}
	if (ret)
		snprintf(ctx->why, sizeof(ctx->why), "struct %s.%s", tname,
			 name);
	return ret;
}

static int layout_from_dwarf(struct hi_alloc_ctx *ctx,
			     const struct hi_sym_type *state,
			     const struct hi_sym_type *par, struct ptm_layout *l)
{
	struct hi_sym_type top_t, chunk;
	uint64_t off, size, count;
	int ret;

	if ((ret = hi_sym_type_size(state, &l->state_size)) ||
	    (ret = hi_sym_type_size(par, &l->par_size)))
		return ret;
#define M(t, tn, name, req, f)                                         \
	do {                                                           \
		if ((ret = member(ctx, t, tn, name, req, f)))          \
			return ret;                                    \
	} while (0)
	M(state, "malloc_state", "mutex", 1, &l->mutex);
	M(state, "malloc_state", "fastbinsY", 1, &l->fastbins);
	M(state, "malloc_state", "top", 1, &l->top);
	M(state, "malloc_state", "bins", 1, &l->bins);
	M(state, "malloc_state", "next", 1, &l->next);
	M(state, "malloc_state", "attached_threads", 0, &l->attached_threads);
	M(state, "malloc_state", "system_mem", 1, &l->system_mem);
	M(state, "malloc_state", "max_system_mem", 1, &l->max_system_mem);
	M(par, "malloc_par", "n_mmaps", 1, &l->n_mmaps);
	M(par, "malloc_par", "mmapped_mem", 1, &l->mmapped_mem);
	M(par, "malloc_par", "max_mmapped_mem", 1, &l->max_mmapped_mem);

	/* struct malloc_chunk, through the type of malloc_state.top. */
	ret = hi_sym_member(state, "top", &off, &size, &count, &top_t);
	if (ret || (ret = hi_sym_pointee(&top_t, &chunk))) {
		snprintf(ctx->why, sizeof(ctx->why), "struct malloc_chunk");
		return ret;
	}
	M(&chunk, "malloc_chunk", "mchunk_size", 1, &l->c_size);
	M(&chunk, "malloc_chunk", "fd", 1, &l->c_fd);
	M(&chunk, "malloc_chunk", "bk", 1, &l->c_bk);
#undef M
	l->ptr_size = l->top.size;
	ret = ptm_layout_check(l);
	if (ret)
		snprintf(ctx->why, sizeof(ctx->why),
			 "struct malloc_state, malloc_par or malloc_chunk");
	return ret;
}

static int ptm_locate(struct hi_alloc_ctx *ctx)
{
	struct ptm_priv *priv = ctx->priv;
	char banner[4096];
	unsigned maj, min;
	int ret;

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
	/* Safe-linking came with glibc 2.32 (commit a1a486d7). */
	priv->l.safe_linking = maj > 2 || (maj == 2 && min >= 32);
	return ptm_locate_dwarf(ctx, &priv->libc, &priv->l, &priv->w);
}

int ptm_locate_dwarf(struct hi_alloc_ctx *ctx, const struct hi_sym_module *libc,
		     struct ptm_layout *l, struct ptm_where *w)
{
	struct hi_sym_type state, par;
	const char *debug_file = NULL;
	int ret;

	ret = hi_sym_load_debug(libc, &debug_file);
	if (ret)
		return ret;
	snprintf(ctx->debug_file, sizeof(ctx->debug_file), "%s",
		 debug_file ? debug_file : "");

	ret = hi_sym_variable(libc, "malloc.c", "main_arena", &w->main_arena,
			      &state);
	if (ret) {
		snprintf(ctx->why, sizeof(ctx->why), "main_arena");
		return ret;
	}
	ret = hi_sym_variable(libc, "malloc.c", "mp_", &w->mp, &par);
	if (ret) {
		snprintf(ctx->why, sizeof(ctx->why), "mp_");
		return ret;
	}
	return layout_from_dwarf(ctx, &state, &par, l);
}

int ptm_located(const struct hi_alloc_ctx *ctx, struct ptm_layout *l,
		struct ptm_where *w)
{
	const struct ptm_priv *priv = ctx->priv;

	if (!priv || !priv->w.main_arena)
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

static int ptm_code_ranges(struct hi_alloc_ctx *ctx, hi_addr_t (**ranges)[2])
{
	struct ptm_priv *priv = ctx->priv;

	/* arena.c and hooks.c are #included into malloc.c's unit. */
	return hi_sym_cu_ranges(&priv->libc, "malloc.c", ranges);
}

static int ptm_read(struct hi_alloc_ctx *ctx, int skip_locked,
		    struct hi_heap *heap)
{
	struct ptm_priv *priv = ctx->priv;

	return ptm_read_heap(&priv->l, &priv->w, ctx->reader, ctx->maps,
			     skip_locked, heap);
}

static void ptm_release(struct hi_alloc_ctx *ctx)
{
	free(ctx->priv);
	ctx->priv = NULL;
}

const struct hi_allocator_ops ptmalloc_ops = {
	.name = "glibc",
	.probe = ptm_probe,
	.locate = ptm_locate,
	.busy = ptm_busy_op,
	.code_ranges = ptm_code_ranges,
	.read = ptm_read,
	.release = ptm_release,
};
