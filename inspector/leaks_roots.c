/* SPDX-License-Identifier: MIT */
/*
 * The roots of `heapinspect leaks` (docs/leaks.md): memcheck's root set
 * (scan_memory_root_set and the general registers, mc_leakcheck.c 3.19),
 * from the maps, threads, TLS blocks and the allocator's own memory that
 * the caller gathered in the stop.  Pure code, no reads.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leaks.h"

static const char *const reg_names[HI_LEAK_NREGS] = {
	"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
	"r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
};

long hi_leak_parse_maps(char *text, struct hi_leak_map **out,
			size_t *bad_line)
{
	struct hi_leak_map *v = NULL;
	size_t n = 0, cap = 0, line = 0;
	char *save = NULL, *l;

	for (l = strtok_r(text, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		unsigned long long start, end, off, inode;
		char perms[5];
		int pos = 0;
		struct hi_leak_map m = { 0 };

		line++;
		if (sscanf(l, "%llx-%llx %4s %llx %*x:%*x %llu %n", &start,
			   &end, perms, &off, &inode, &pos) != 5 ||
		    end <= start || strlen(perms) != 4) {
			free(v);
			*bad_line = line;
			return -EINVAL;
		}
		m.start = start;
		m.end = end;
		m.prot = (perms[0] == 'r' ? HI_PROT_R : 0) |
			 (perms[1] == 'w' ? HI_PROT_W : 0) |
			 (perms[2] == 'x' ? HI_PROT_X : 0);
		m.shared = perms[3] == 's';
		m.offset = off;
		m.inode = inode;
		m.path = l + pos;
		m.device = strncmp(m.path, "/dev/", 5) == 0 &&
			   strcmp(m.path, "/dev/zero") != 0 &&
			   strncmp(m.path, "/dev/shm/", 9) != 0 &&
			   strncmp(m.path, "/dev/hugepages/", 15) != 0;
		if (n == cap) {
			size_t nc = cap ? 2 * cap : 256;
			struct hi_leak_map *nv = realloc(v, nc * sizeof(*nv));

			if (!nv) {
				free(v);
				return -ENOMEM;
			}
			v = nv;
			cap = nc;
		}
		v[n++] = m;
	}
	*out = v;
	return (long)n;
}

struct piece {
	hi_addr_t start, end;
	uint32_t label;
};

struct build {
	struct piece *p;
	size_t n, cap;
	struct hi_leak_label *labels;
	size_t nlabels, caplabels;
};

static int add_label(struct build *b, const struct hi_leak_label *l)
{
	if (b->nlabels == b->caplabels) {
		size_t nc = b->caplabels ? 2 * b->caplabels : 256;
		struct hi_leak_label *nl = realloc(b->labels,
						   nc * sizeof(*nl));

		if (!nl)
			return -ENOMEM;
		b->labels = nl;
		b->caplabels = nc;
	}
	b->labels[b->nlabels] = *l;
	return (int)b->nlabels++;
}

static int push_piece(struct piece **v, size_t *n, size_t *cap,
		      hi_addr_t start, hi_addr_t end, uint32_t label)
{
	if (start >= end)
		return 0;
	if (*n == *cap) {
		size_t nc = *cap ? 2 * *cap : 256;
		struct piece *np = realloc(*v, nc * sizeof(*np));

		if (!np)
			return -ENOMEM;
		*v = np;
		*cap = nc;
	}
	(*v)[(*n)++] = (struct piece){ start, end, label };
	return 0;
}

static int span_cmp(const void *a, const void *b)
{
	const struct hi_leak_span *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/*
 * Sort spans and make them disjoint: overlapping ones merge when they
 * are excluded, or are clipped when they relabel (TLS blocks of threads
 * never overlap; clipping only keeps hostile input harmless).
 */
static size_t disjoint(struct hi_leak_span *s, size_t n, int merge)
{
	size_t k = 0;

	qsort(s, n, sizeof(*s), span_cmp);
	for (size_t i = 0; i < n; i++) {
		if (s[i].end <= s[i].start)
			continue;
		if (k && s[i].start < s[k - 1].end) {
			if (merge) {
				if (s[i].end > s[k - 1].end)
					s[k - 1].end = s[i].end;
				continue;
			}
			if (s[i].end <= s[k - 1].end)
				continue;
			s[i].start = s[k - 1].end;
		}
		s[k++] = s[i];
	}
	return k;
}

/*
 * Cut the spans (sorted, disjoint) out of the pieces (sorted, disjoint),
 * or with relabel set, give the parts they cover a label of their own.
 */
static int apply(struct build *b, const struct hi_leak_span *s, size_t ns,
		 int relabel)
{
	struct piece *out = NULL;
	size_t n = 0, cap = 0;
	int ret = 0;

	for (size_t i = 0; i < b->n && !ret; i++) {
		hi_addr_t at = b->p[i].start, end = b->p[i].end;
		size_t lo = 0, hi = ns;

		/* the first span that ends past the piece's start */
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (s[mid].end <= at)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (size_t j = lo; j < ns && s[j].start < end && !ret; j++) {
			hi_addr_t a = s[j].start > at ? s[j].start : at;
			hi_addr_t z = s[j].end < end ? s[j].end : end;

			ret = push_piece(&out, &n, &cap, at, a, b->p[i].label);
			if (!ret && relabel) {
				struct hi_leak_label l = {
					.kind = HI_ROOT_TLS,
					.tid = s[j].tid,
					.start = s[j].start,
					.end = s[j].end,
				};
				int li = add_label(b, &l);

				ret = li < 0 ? li
					     : push_piece(&out, &n, &cap, a, z,
							  (uint32_t)li);
			}
			at = z;
		}
		if (!ret)
			ret = push_piece(&out, &n, &cap, at, end,
					 b->p[i].label);
	}
	if (ret) {
		free(out);
		return ret;
	}
	free(b->p);
	b->p = out;
	b->n = n;
	b->cap = cap;
	return 0;
}

static int is_module(const char *path, const char *const *modules,
		     size_t nmodules)
{
	if (!path[0] || path[0] == '[')
		return 0;
	for (size_t i = 0; i < nmodules; i++) {
		if (strcmp(path, modules[i]) == 0)
			return 1;
	}
	return 0;
}

int hi_leak_roots_build(const struct hi_leak_map *maps, size_t nmaps,
			const char *const *modules, size_t nmodules,
			const struct hi_leak_thread *threads, size_t nthreads,
			const struct hi_leak_span *tls, size_t ntls,
			const struct hi_leak_span *exclude, size_t nexclude,
			uint64_t redzone, struct hi_leak_roots *out)
{
	struct build b = { 0 };
	struct hi_leak_span *sorted = NULL;
	int ret = 0;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < nmaps && !ret; i++) {
		const struct hi_leak_map *m = &maps[i];
		struct hi_leak_label l = { .start = m->start, .end = m->end };
		hi_addr_t start = m->start;
		int li;

		if ((m->prot & (HI_PROT_R | HI_PROT_W)) !=
		    (HI_PROT_R | HI_PROT_W))
			continue;
		/* memcheck leaves device mappings alone, but /dev/zero */
		if (m->device)
			continue;
		if (strcmp(m->path, "[vvar]") == 0 ||
		    strcmp(m->path, "[vsyscall]") == 0 ||
		    strcmp(m->path, "[vdso]") == 0)
			continue;
		if (strcmp(m->path, "[heap]") == 0) {
			l.kind = HI_ROOT_BRK;
		} else if (is_module(m->path, modules, nmodules)) {
			l.kind = HI_ROOT_MODULE;
			l.path = m->path;
		} else if (!m->path[0] && i > 0 &&
			   maps[i - 1].end == m->start &&
			   is_module(maps[i - 1].path, modules, nmodules)) {
			/* the .bss beyond a module's file-backed data */
			l.kind = HI_ROOT_MODULE;
			l.path = maps[i - 1].path;
		} else if (m->path[0] && m->path[0] != '[') {
			l.kind = HI_ROOT_FILE;
			l.path = m->path;
		} else {
			l.kind = HI_ROOT_ANON;
			l.path = m->path;
		}
		/* A thread's stack: from its stack pointer less the red zone
		 * up; below, memcheck sees no valid memory. */
		for (size_t t = 0; t < nthreads; t++) {
			hi_addr_t sp = threads[t].sp, lo;

			if (sp < m->start || sp >= m->end)
				continue;
			lo = sp - m->start > redzone ? sp - redzone : m->start;
			if (l.kind != HI_ROOT_STACK || lo < start) {
				if (l.kind != HI_ROOT_STACK)
					start = lo;
				else
					start = lo < start ? lo : start;
				l.kind = HI_ROOT_STACK;
				l.tid = threads[t].tid;
			}
		}
		li = add_label(&b, &l);
		if (li < 0)
			ret = li;
		else
			ret = push_piece(&b.p, &b.n, &b.cap, start, m->end,
					 (uint32_t)li);
	}
	if (ret)
		goto fail;

	/* The allocator's memory is not a root. */
	if (nexclude) {
		sorted = malloc(nexclude * sizeof(*sorted));
		if (!sorted) {
			ret = -ENOMEM;
			goto fail;
		}
		memcpy(sorted, exclude, nexclude * sizeof(*sorted));
		ret = apply(&b, sorted, disjoint(sorted, nexclude, 1), 0);
		free(sorted);
		sorted = NULL;
		if (ret)
			goto fail;
	}
	/* TLS: what is a root already gets a more precise label. */
	if (ntls) {
		sorted = malloc(ntls * sizeof(*sorted));
		if (!sorted) {
			ret = -ENOMEM;
			goto fail;
		}
		memcpy(sorted, tls, ntls * sizeof(*sorted));
		ret = apply(&b, sorted, disjoint(sorted, ntls, 0), 1);
		free(sorted);
		if (ret)
			goto fail;
	}

	out->ranges = malloc((b.n ? b.n : 1) * sizeof(*out->ranges));
	out->values = malloc((nthreads ? nthreads : 1) * HI_LEAK_NREGS *
			     sizeof(*out->values));
	if (!out->ranges || !out->values) {
		ret = -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < b.n; i++) {
		out->ranges[i].start = b.p[i].start;
		out->ranges[i].end = b.p[i].end;
		out->ranges[i].label = b.p[i].label;
	}
	out->nranges = b.n;
	for (size_t t = 0; t < nthreads; t++) {
		for (unsigned r = 0; r < HI_LEAK_NREGS; r++) {
			struct hi_leak_label l = {
				.kind = HI_ROOT_REGISTER,
				.tid = threads[t].tid,
				.reg = r,
			};
			int li = add_label(&b, &l);

			if (li < 0) {
				ret = li;
				goto fail;
			}
			out->values[out->nvalues].value = threads[t].regs[r];
			out->values[out->nvalues].label = (uint32_t)li;
			out->nvalues++;
		}
	}
	out->labels = b.labels;
	out->nlabels = b.nlabels;
	free(b.p);
	return 0;
fail:
	free(b.p);
	free(b.labels);
	free(out->ranges);
	free(out->values);
	memset(out, 0, sizeof(*out));
	return ret;
}

void hi_leak_roots_free(struct hi_leak_roots *r)
{
	free(r->ranges);
	free(r->values);
	free(r->labels);
	memset(r, 0, sizeof(*r));
}

const char *hi_leak_label_text(const struct hi_leak_label *l, char *buf,
			       size_t size)
{
	switch (l->kind) {
	case HI_ROOT_REGISTER:
		snprintf(buf, size, "register %s of thread %d",
			 l->reg < HI_LEAK_NREGS ? reg_names[l->reg] : "?",
			 l->tid);
		break;
	case HI_ROOT_STACK:
		snprintf(buf, size, "stack of thread %d", l->tid);
		break;
	case HI_ROOT_TLS:
		snprintf(buf, size, "TLS of thread %d", l->tid);
		break;
	case HI_ROOT_MODULE:
		snprintf(buf, size, "writable data of %s", l->path);
		break;
	case HI_ROOT_BRK:
		snprintf(buf, size, "brk area beyond malloc's heap");
		break;
	case HI_ROOT_FILE:
		snprintf(buf, size, "writable mapping of %s", l->path);
		break;
	default:
		snprintf(buf, size,
			 "anonymous mapping 0x%" PRIx64 "-0x%" PRIx64 "%s%s",
			 l->start, l->end, l->path && l->path[0] ? " " : "",
			 l->path ? l->path : "");
		break;
	}
	return buf;
}
