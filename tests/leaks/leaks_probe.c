/* SPDX-License-Identifier: MIT */
/*
 * hi_leaks_probe - the whole of `heapinspect leaks` before it exists, for
 * tests/live/leaks_proto.py: stop, blocks, roots, mark, kinds, release.
 * Everything but the chunk walk is the product's code (hi_tls_*,
 * hi_leak_roots_build, hi_leak_mark); the walk is a stand-in, written
 * here for glibc 2.32 to 2.41 with libc's debug information (safe-linked
 * fastbins and tcache, 64 MiB heaps, no mmapped chunks), until the
 * census's walk_chunks replaces it (docs/leaks.md).
 *
 * Usage: hi_leaks_probe PID
 *
 * Writes "block ADDR SIZE KIND" for every in-use block, KIND one of
 * reachable, possible, indirect, definite, then "summary KIND BLOCKS
 * BYTES" for each kind, "tcache N" (the tcache structs left out) and
 * "skipped BYTES".  Exit status 0, or 2 with a message.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <unistd.h>

#include "leaks.h"
#include "symbols.h"
#include "target.h"

#define HEAP_MAX (64ull << 20) /* 2 * DEFAULT_MMAP_THRESHOLD_MAX, x86_64 */
#define MAX_ARENAS 1024

static const char *const kind_names[] = {
	"reachable", "possible", "indirect", "definite",
};

static struct hi_reader rd;

static void die(const char *what, int err)
{
	fprintf(stderr, "hi_leaks_probe: %s: %s\n", what, hi_strerror(err));
	exit(2);
}

static uint64_t word(hi_addr_t a)
{
	uint64_t w;
	int ret = hi_read(&rd, a, &w, 8);

	if (ret)
		die("read", ret);
	return w;
}

struct layout {
	hi_addr_t main_arena, mp;
	uint64_t st_size, st_top, st_next, st_fast, st_nfast, mp_size,
		mp_sbrk_base, hi_size, hi_ar_ptr, hi_prev, hi_hsize, tc_entries,
		tc_counts, tc_nbins, tc_count_size;
	int safe_linking;
};

static void member(const struct hi_sym_type *t, const char *name,
		   uint64_t *off, uint64_t *count, uint64_t *size)
{
	uint64_t sz, cnt;
	int ret = hi_sym_member(t, name, off, &sz, &cnt, NULL);

	if (ret)
		die(name, ret);
	if (count)
		*count = cnt;
	if (size)
		*size = cnt ? sz / cnt : sz;
}

static void layout(const struct hi_sym_module *libc, struct layout *l)
{
	struct hi_sym_type st, mp, hi, tc;
	char banner[4096];
	int ret, major, minor;

	if ((ret = hi_sym_variable(libc, "malloc.c", "main_arena",
				   &l->main_arena, &st)) ||
	    (ret = hi_sym_variable(libc, "malloc.c", "mp_", &l->mp, &mp)) ||
	    (ret = hi_sym_type_named(libc, "malloc.c", "heap_info", &hi)) ||
	    (ret = hi_sym_type_named(libc, "malloc.c",
				     "tcache_perthread_struct", &tc)))
		die("libc's debug information", ret);
	hi_sym_type_size(&st, &l->st_size);
	hi_sym_type_size(&mp, &l->mp_size);
	hi_sym_type_size(&hi, &l->hi_size);
	member(&st, "top", &l->st_top, NULL, NULL);
	member(&st, "next", &l->st_next, NULL, NULL);
	member(&st, "fastbinsY", &l->st_fast, &l->st_nfast, NULL);
	member(&mp, "sbrk_base", &l->mp_sbrk_base, NULL, NULL);
	member(&hi, "ar_ptr", &l->hi_ar_ptr, NULL, NULL);
	member(&hi, "prev", &l->hi_prev, NULL, NULL);
	member(&hi, "size", &l->hi_hsize, NULL, NULL);
	member(&tc, "entries", &l->tc_entries, &l->tc_nbins, NULL);
	/* counts (num_slots from 2.42) */
	if (hi_sym_member(&tc, "counts", &l->tc_counts, &l->tc_count_size,
			  &(uint64_t){ 0 }, NULL))
		die("tcache counts", -HI_E_LAYOUT);
	l->tc_count_size /= l->tc_nbins;
	if (hi_sym_find_string(libc, "release version", banner,
			       sizeof(banner)) ||
	    !strstr(banner, "version 2.") ||
	    sscanf(strstr(banner, "version 2.") + 8, "%d.%d", &major,
		   &minor) != 2)
		die("glibc version", -HI_E_NOVERSION);
	l->safe_linking = minor >= 32;
	if (minor > 41)
		die("this stand-in walk knows glibc up to 2.41",
		    -HI_E_NOVERSION);
}

/* Free chunks (by user address) and the tcache structs: sorted sets. */
struct set {
	hi_addr_t *v;
	size_t n, cap;
};

static void set_add(struct set *s, hi_addr_t a)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 1024;
		s->v = realloc(s->v, s->cap * sizeof(*s->v));
		if (!s->v)
			die("memory", -ENOMEM);
	}
	s->v[s->n++] = a;
}

static int addr_cmp(const void *a, const void *b)
{
	const hi_addr_t *x = a, *y = b;

	return *x < *y ? -1 : *x > *y;
}

static int set_has(const struct set *s, hi_addr_t a)
{
	return s->n && bsearch(&a, s->v, s->n, sizeof(a), addr_cmp) != NULL;
}

static hi_addr_t reveal(const struct layout *l, hi_addr_t pos, uint64_t v)
{
	return l->safe_linking ? (pos >> 12) ^ v : v;
}

struct blocks {
	struct hi_leak_block *v;
	size_t n, cap;
};

static void add_block(struct blocks *b, hi_addr_t a, uint64_t size)
{
	if (b->n == b->cap) {
		b->cap = b->cap ? 2 * b->cap : 4096;
		b->v = realloc(b->v, b->cap * sizeof(*b->v));
		if (!b->v)
			die("memory", -ENOMEM);
	}
	b->v[b->n].addr = a;
	b->v[b->n].size = size;
	b->n++;
}

/* The chunks of [start, end): in use when the next one says so. */
static void walk(hi_addr_t start, hi_addr_t end, const struct set *free_,
		 const struct set *tcaches, struct blocks *b)
{
	hi_addr_t c = start;

	while (c + 16 <= end) {
		uint64_t size = word(c + 8) & ~7ull, next;

		/* a fencepost, or the end (the next header, the top chunk
		 * or a fencepost, lies at end at most) */
		if (size < 32 || c + size > end)
			break;
		next = word(c + size + 8);
		if ((next & 1) && !set_has(free_, c + 16) &&
		    !set_has(tcaches, c + 16))
			add_block(b, c + 16, size - 8);
		c += size;
	}
}

static int block_cmp(const void *a, const void *b)
{
	const struct hi_leak_block *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* map_flags for memcheck's vtable test, from the maps. */
struct maps_arg {
	const struct hi_leak_map *m;
	size_t n;
};

static unsigned map_flags(void *arg, hi_addr_t a, hi_addr_t *end)
{
	const struct maps_arg *ma = arg;

	for (size_t i = 0; i < ma->n; i++) {
		const struct hi_leak_map *m = &ma->m[i];
		unsigned f = 0;

		if (a < m->start || a >= m->end)
			continue;
		*end = m->end;
		if (m->prot & HI_PROT_R)
			f |= HI_LEAK_MAP_R;
		if (m->prot & HI_PROT_X)
			f |= HI_LEAK_MAP_X;
		if (m->path[0] == '/')
			f |= HI_LEAK_MAP_FILE;
		return f;
	}
	return 0;
}

static uint64_t slack(void *arg, const struct hi_leak_block *b)
{
	(void)arg;
	return b->size == 24 ? 24 : 15;
}

struct mods {
	const char *v[512];
	size_t n;
	struct hi_sym_module libc;
	int have_libc;
};

static int mod_cb(const struct hi_sym_module *m, void *arg)
{
	struct mods *ms = arg;
	const char *base = strrchr(m->name, '/');

	base = base ? base + 1 : m->name;
	if (ms->n < 512)
		ms->v[ms->n++] = m->name;
	if (strncmp(base, "libc.so", 7) == 0 ||
	    strncmp(base, "libc-", 5) == 0) {
		ms->libc = *m;
		ms->have_libc = 1;
	}
	return 0;
}

static char *read_file(const char *path)
{
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap);
	int fd = open(path, O_RDONLY);
	ssize_t r;

	if (!buf || fd < 0)
		die(path, -errno);
	while ((r = read(fd, buf + n, cap - n - 1)) > 0) {
		n += (size_t)r;
		if (n + 1 == cap) {
			cap *= 2;
			buf = realloc(buf, cap);
			if (!buf)
				die("memory", -ENOMEM);
		}
	}
	close(fd);
	buf[n] = '\0';
	return buf;
}

int main(int argc, char **argv)
{
	struct hi_sym *sym;
	struct hi_tls *tls;
	struct hi_target t;
	struct mods mods = { .n = 0 };
	struct layout l;
	struct set free_ = { 0 }, tcaches = { 0 };
	struct blocks b = { 0 };
	struct hi_leak_span excl[2 * MAX_ARENAS + 2], *tlsspans = NULL;
	struct hi_leak_thread *threads;
	struct hi_leak_map *maps;
	struct hi_leak_roots roots;
	struct hi_leak_result res;
	struct hi_leak_env env;
	struct maps_arg ma;
	uint64_t tc_off, tc_size;
	size_t nexcl = 0, ntls = 0, nthreads = 0, bad;
	char path[64], *text;
	long nmaps;
	pid_t pid;
	int ret;

	if (argc != 2) {
		fprintf(stderr, "usage: hi_leaks_probe PID\n");
		return 64;
	}
	pid = (pid_t)atoi(argv[1]);
	/* Before the stop: modules, layouts, descriptors. */
	ret = hi_sym_open(pid, NULL, &sym);
	if (ret)
		die("modules", ret);
	hi_sym_each_module(sym, mod_cb, &mods);
	if (!mods.have_libc)
		die("libc", -HI_E_NOLIBC);
	if ((ret = hi_sym_load_debug(&mods.libc,
				     &(struct hi_sym_debug){ 0 })))
		die("libc's debug file", ret);
	layout(&mods.libc, &l);
	if ((ret = hi_sym_tls_symbol(&mods.libc, "tcache", &tc_off,
				     &tc_size)))
		die("libc's tcache", ret);
	if ((ret = hi_tls_open(sym, &tls)))
		die("TLS", ret);

	hi_target_init(&t, pid);
	ret = hi_target_stop(&t, 5000);
	if (ret)
		die("stop", ret);
	rd = hi_target_reader(&t);
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	text = read_file(path);
	nmaps = hi_leak_parse_maps(text, &maps, &bad);
	if (nmaps < 0)
		die("maps", (int)nmaps);
	if ((ret = hi_tls_load(tls, &rd)))
		die("link map", ret);

	/* Threads: registers, TLS, tcache. */
	threads = calloc(t.nthreads, sizeof(*threads));
	tlsspans = calloc(t.nthreads * (hi_tls_nmodules(tls) + 1),
			  sizeof(*tlsspans));
	if (!threads || !tlsspans)
		die("memory", -ENOMEM);
	for (size_t i = 0; i < t.nthreads; i++) {
		struct user_regs_struct r;
		struct hi_leak_thread *th = &threads[nthreads];
		struct hi_tls_thread tt;
		long libc_i = hi_tls_find_module(tls, mods.libc.start);
		hi_addr_t a;

		if (t.threads[i].gone)
			continue;
		if (ptrace(PTRACE_GETREGS, t.threads[i].tid, NULL, &r))
			die("registers", -errno);
		th->tid = t.threads[i].tid;
		th->sp = r.rsp;
		th->regs[0] = r.rax;
		th->regs[1] = r.rbx;
		th->regs[2] = r.rcx;
		th->regs[3] = r.rdx;
		th->regs[4] = r.rsi;
		th->regs[5] = r.rdi;
		th->regs[6] = r.rbp;
		th->regs[7] = r.rsp;
		th->regs[8] = r.r8;
		th->regs[9] = r.r9;
		th->regs[10] = r.r10;
		th->regs[11] = r.r11;
		th->regs[12] = r.r12;
		th->regs[13] = r.r13;
		th->regs[14] = r.r14;
		th->regs[15] = r.r15;
		nthreads++;
		ret = hi_tls_thread(tls, &rd, th->tid, r.fs_base, &tt);
		if (ret)
			die("thread TLS", ret);
		for (size_t k = 0; k < tt.nblocks; k++) {
			if (!tt.blocks[k].is_static)
				continue;
			tlsspans[ntls++] = (struct hi_leak_span){
				tt.blocks[k].addr,
				tt.blocks[k].addr + tt.blocks[k].size, th->tid
			};
		}
		if (tt.pthread_size)
			tlsspans[ntls++] = (struct hi_leak_span){
				tt.pthread, tt.pthread + tt.pthread_size,
				th->tid
			};
		/* the thread's tcache: its struct is malloc's, its entries
		 * are free */
		if (libc_i >= 0 &&
		    hi_tls_address(&tt, (size_t)libc_i, tc_off, &a) == 0) {
			hi_addr_t tc = word(a);

			if (tc) {
				set_add(&tcaches, tc);
				for (uint64_t bin = 0; bin < l.tc_nbins; bin++) {
					hi_addr_t e = word(tc + l.tc_entries +
							   8 * bin);

					for (int k = 0; e && k < 65536; k++) {
						set_add(&free_, e);
						e = reveal(&l, e, word(e));
					}
				}
			}
		}
		hi_tls_thread_free(&tt);
	}

	/* Arenas: fastbins free, heaps walked, all of it malloc's. */
	{
		hi_addr_t ar = l.main_arena;
		hi_addr_t arenas[MAX_ARENAS];
		size_t nar = 0;

		do {
			arenas[nar++] = ar;
			for (uint64_t f = 0; f < l.st_nfast; f++) {
				hi_addr_t c = word(ar + l.st_fast + 8 * f);

				for (int k = 0; c && k < 1 << 20; k++) {
					set_add(&free_, c + 16);
					c = reveal(&l, c + 16, word(c + 16));
				}
			}
			ar = word(ar + l.st_next);
		} while (ar != l.main_arena && nar < MAX_ARENAS);
		if (free_.n)
			qsort(free_.v, free_.n, sizeof(*free_.v), addr_cmp);
		if (tcaches.n)
			qsort(tcaches.v, tcaches.n, sizeof(*tcaches.v),
			      addr_cmp);
		for (size_t i = 0; i < nar; i++) {
			hi_addr_t top = word(arenas[i] + l.st_top);
			uint64_t tsize = word(top + 8) & ~7ull;

			if (arenas[i] == l.main_arena) {
				hi_addr_t base = word(l.mp + l.mp_sbrk_base);

				walk(base, top, &free_, &tcaches, &b);
				excl[nexcl++] = (struct hi_leak_span){
					base, top + tsize, 0
				};
				continue;
			}
			/* heap_info chain from the top's heap back */
			for (hi_addr_t h = top & ~(HEAP_MAX - 1); h;
			     h = word(h + l.hi_prev)) {
				hi_addr_t start = h + l.hi_size;
				hi_addr_t end = h + word(h + l.hi_hsize);

				if (word(h + l.hi_ar_ptr) == h + l.hi_size) {
					/* the first heap: the arena after it */
					start = h + l.hi_size + l.st_size;
					start = ((start + 16 + 15) & ~15ull) - 16;
				}
				walk(start, top >= start && top < end ? top : end,
				     &free_, &tcaches, &b);
				if (nexcl < sizeof(excl) / sizeof(excl[0]) - 2)
					excl[nexcl++] = (struct hi_leak_span){
						h, h + HEAP_MAX, 0
					};
			}
		}
		excl[nexcl++] = (struct hi_leak_span){
			l.main_arena, l.main_arena + l.st_size, 0
		};
		excl[nexcl++] = (struct hi_leak_span){ l.mp, l.mp + l.mp_size,
						       0 };
	}
	if (b.n)
		qsort(b.v, b.n, sizeof(*b.v), block_cmp);

	ret = hi_leak_roots_build(maps, (size_t)nmaps, mods.v, mods.n, threads,
				  nthreads, tlsspans, ntls, excl, nexcl, 128,
				  &roots);
	if (ret)
		die("roots", ret);
	ma.m = maps;
	ma.n = (size_t)nmaps;
	env = (struct hi_leak_env){
		.reader = &rd,
		.heuristics = HI_LEAK_H_ALL,
		.slack = slack,
		.map_flags = map_flags,
		.arg = &ma,
	};
	ret = hi_leak_mark(b.v, b.n, roots.ranges, roots.nranges, roots.values,
			   roots.nvalues, &env, &res);
	hi_target_resume(&t);
	if (ret)
		die("mark", ret);
	for (size_t i = 0; i < b.n; i++)
		printf("block %#llx %llu %s\n", (unsigned long long)b.v[i].addr,
		       (unsigned long long)b.v[i].size,
		       kind_names[hi_leak_kind_of(&res, i)]);
	for (int k = 3; k >= 0; k--)
		printf("summary %s %llu %llu\n", kind_names[k],
		       (unsigned long long)res.sum.blocks[k],
		       (unsigned long long)res.sum.bytes[k]);
	printf("tcache %zu\nskipped %llu\n", tcaches.n,
	       (unsigned long long)res.skipped_bytes);
	hi_leak_result_free(&res);
	hi_leak_roots_free(&roots);
	free(b.v);
	free(free_.v);
	free(tcaches.v);
	free(threads);
	free(tlsspans);
	free(maps);
	free(text);
	hi_target_fini(&t);
	hi_tls_close(tls);
	hi_sym_close(sym);
	return 0;
}
