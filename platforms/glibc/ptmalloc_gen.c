/* SPDX-License-Identifier: MIT */
/*
 * hi_layoutgen: write the built-in table entry of one glibc build from its
 * DWARF, or check a built-in table against a build's DWARF.
 *
 *   hi_layoutgen LIBC DEBUGDIR NAME   print the entry of ptmalloc_builds.c
 *   hi_layoutgen --check LIBC DEBUGDIR
 *                                     compare the table heapinspect uses for
 *                                     that libc's version with its DWARF
 *
 * LIBC is a libc.so file, DEBUGDIR a directory holding its debug file by
 * build-id (DEBUGDIR/.build-id/xx/rest.debug, as libc6-dbg installs it).
 * The same code as heapinspect's DWARF path reads the layout, so a table
 * made here is what heapinspect would have read from that build's DWARF.
 * Not part of heapinspect; a developer's tool, and a test (unit.layouts_*).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ptmalloc_priv.h"

/*
 * Every member of struct malloc_par from 2.26 to 2.44, in order (2.42
 * renamed tcache_bins to tcache_small_bins; 2.43 added thp_mode; 2.44
 * dropped tcache_unsorted_limit).  Those a build lacks are left out.
 */
static const char *const par_members[] = {
	"trim_threshold", "top_pad", "mmap_threshold", "arena_test",
	"arena_max", "thp_mode", "thp_pagesize", "hp_pagesize", "hp_flags",
	"n_mmaps", "n_mmaps_max", "max_n_mmaps", "no_dyn_threshold",
	"mmapped_mem", "max_mmapped_mem", "sbrk_base", "tcache_bins",
	"tcache_small_bins", "tcache_max_bytes", "tcache_count",
	"tcache_unsorted_limit", NULL,
};

struct gen {
	struct ptm_build b;
	char build_id[129];
	char why[256];
};

static int first_module(const struct hi_sym_module *m, void *arg)
{
	*(struct hi_sym_module *)arg = *m;
	return 1;
}

static int gen(const char *libc, const char *debugdir, struct gen *g)
{
	struct hi_sym_type state, par;
	struct hi_sym_module m;
	struct hi_sym_debug dbg;
	struct hi_sym *sym;
	hi_addr_t arena, mp;
	unsigned char image[4096];
	char banner[4096];
	const char *p;
	int ret;

	memset(g, 0, sizeof(*g));
	ret = hi_sym_open_file(libc, debugdir, &sym);
	if (ret) {
		fprintf(stderr, "hi_layoutgen: cannot open %s: %s\n", libc,
			hi_strerror(ret));
		return -1;
	}
	if (hi_sym_each_module(sym, first_module, &m) != 1)
		goto fail;
	if (hi_sym_build_id(&m, g->build_id, sizeof(g->build_id)))
		goto fail;
	if (hi_sym_find_string(&m, "release version ", banner,
			       sizeof(banner)))
		goto fail;
	p = strstr(banner, "release version ");
	if (sscanf(p + 16, "%u.%u", &g->b.major, &g->b.minor) != 2)
		goto fail;
	if ((ret = hi_sym_load_debug(&m, &dbg)) ||
	    (ret = hi_sym_variable(&m, "malloc.c", "main_arena", &arena,
				   &state)) ||
	    (ret = hi_sym_variable(&m, "malloc.c", "mp_", &mp, &par)) ||
	    (ret = ptm_layout_dwarf(&state, &par, &g->b.layout, g->why,
				    sizeof(g->why)))) {
		fprintf(stderr, "hi_layoutgen: %s: %s %s\n", libc,
			hi_strerror(ret), g->why);
		hi_sym_close(sym);
		return -1;
	}
	ptm_layout_tcache(&m, &g->b.layout);
	/* Safe-linking came with glibc 2.32 (commit a1a486d7). */
	g->b.layout.safe_linking = g->b.major > 2 ||
				   (g->b.major == 2 && g->b.minor >= 32);
	if (g->b.layout.par_size > sizeof(image) ||
	    hi_sym_file_read(&m, mp, image, g->b.layout.par_size))
		goto fail;
	for (size_t i = 0; par_members[i]; i++) {
		struct ptm_init *in = &g->b.par_init[g->b.npar_init];
		uint64_t off, size, count, v = 0;

		if (hi_sym_member(&par, par_members[i], &off, &size, &count,
				  NULL))
			continue;
		if (size > 8 || off + size > g->b.layout.par_size ||
		    g->b.npar_init == PTM_MAX_INIT)
			goto fail;
		memcpy(&v, image + off, size);
		in->off = (uint16_t)off;
		in->size = (uint8_t)size;
		in->value = v;
		g->b.npar_init++;
	}
	hi_sym_close(sym);
	return 0;
fail:
	fprintf(stderr, "hi_layoutgen: %s: not a glibc libc with the expected "
		"debug information\n", libc);
	hi_sym_close(sym);
	return -1;
}

static void field(const char *name, const struct ptm_field *f)
{
	if (f->size)
		printf("\t\t.%s = { %" PRIu64 ", %" PRIu64 ", %" PRIu64 " },\n",
		       name, f->off, f->size, f->count);
}

static void emit(const struct gen *g, const char *name)
{
	const struct ptm_layout *l = &g->b.layout;

	printf("{\n\t.name = \"%s\",\n\t.build_id = \"%s\",\n", name,
	       g->build_id);
	printf("\t.major = %u,\n\t.minor = %u,\n", g->b.major, g->b.minor);
	printf("\t.layout = {\n\t\t.state_size = %" PRIu64 ",\n",
	       l->state_size);
#define F(x) field(#x, &l->x)
	F(mutex); F(flags); F(fastbins); F(top); F(bins); F(next);
	F(attached_threads); F(system_mem); F(max_system_mem);
	printf("\t\t.par_size = %" PRIu64 ",\n", l->par_size);
	F(trim_threshold); F(mmap_threshold); F(hp_pagesize); F(n_mmaps);
	F(n_mmaps_max); F(max_n_mmaps); F(mmapped_mem); F(max_mmapped_mem);
	F(sbrk_base); F(tcache_bins); F(tcache_max_bytes); F(tcache_count);
	F(tcache_entries); F(c_size); F(c_fd); F(c_bk);
#undef F
	printf("\t\t.ptr_size = %u,\n\t\t.safe_linking = %d,\n\t},\n",
	       l->ptr_size, l->safe_linking);
	printf("\t.par_init = {\n");
	for (unsigned i = 0; i < g->b.npar_init; i++)
		printf("\t\t{ %u, %u, %" PRIu64 " },\n", g->b.par_init[i].off,
		       g->b.par_init[i].size, g->b.par_init[i].value);
	printf("\t},\n\t.npar_init = %u,\n},\n", g->b.npar_init);
}

static int same_field(const char *name, const struct ptm_field *a,
		      const struct ptm_field *b)
{
	if (a->off == b->off && a->size == b->size && a->count == b->count)
		return 1;
	printf("  %s: DWARF { %" PRIu64 ", %" PRIu64 ", %" PRIu64 " }, table "
	       "{ %" PRIu64 ", %" PRIu64 ", %" PRIu64 " }\n", name, a->off,
	       a->size, a->count, b->off, b->size, b->count);
	return 0;
}

static int check(const struct gen *g)
{
	const struct ptm_layout *a = &g->b.layout, *b;
	const struct ptm_build *t;
	const char *range;
	int ok = 1;

	t = ptm_builtin_for(g->b.major, g->b.minor, &range);
	if (!t) {
		printf("no built-in table for glibc %u.%u (known: %s)\n",
		       g->b.major, g->b.minor, range);
		return 1;
	}
	b = &t->layout;
	printf("glibc %u.%u (build-id %s): table of %s\n", g->b.major,
	       g->b.minor, g->build_id, t->name);
	/* A table mapped from the sources is what a real build must prove. */
	if (t->mapped)
		printf("  (mapped from glibc's sources: not proven on a real "
		       "build until this check passes)\n");
#define F(x) ok &= same_field(#x, &a->x, &b->x)
	F(mutex); F(flags); F(fastbins); F(top); F(bins); F(next);
	F(attached_threads); F(system_mem); F(max_system_mem);
	F(trim_threshold); F(mmap_threshold); F(hp_pagesize); F(n_mmaps);
	F(n_mmaps_max); F(max_n_mmaps); F(mmapped_mem); F(max_mmapped_mem);
	F(sbrk_base); F(tcache_bins); F(tcache_max_bytes); F(tcache_count);
	F(tcache_entries); F(c_size); F(c_fd); F(c_bk);
#undef F
	if (a->state_size != b->state_size || a->par_size != b->par_size ||
	    a->ptr_size != b->ptr_size || a->safe_linking != b->safe_linking) {
		printf("  struct sizes, pointer size or safe-linking differ\n");
		ok = 0;
	}
	for (unsigned i = 0; i < g->b.npar_init || i < t->npar_init; i++) {
		const struct ptm_init *x = &g->b.par_init[i], *y = &t->par_init[i];

		if (g->b.npar_init != t->npar_init || x->off != y->off ||
		    x->size != y->size || x->value != y->value) {
			printf("  mp_'s initial values differ\n");
			ok = 0;
			break;
		}
	}
	printf("%s\n", ok ? "same" : "DIFFERENT");
	return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
	struct gen g;

	if (argc == 4 && strcmp(argv[1], "--check") == 0) {
		if (gen(argv[2], argv[3], &g))
			return 2;
		return check(&g);
	}
	if (argc != 4) {
		fprintf(stderr, "usage: hi_layoutgen LIBC DEBUGDIR NAME\n"
			"       hi_layoutgen --check LIBC DEBUGDIR\n");
		return 64;
	}
	if (gen(argv[1], argv[2], &g))
		return 2;
	emit(&g, argv[3]);
	return 0;
}
