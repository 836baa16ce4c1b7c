/* SPDX-License-Identifier: MIT */
/*
 * What a heap block holds, from its first bytes and the target's own
 * symbol tables, with no debug information (as chap's signatures): a C++
 * object (its first word points into a module's "vtable for X"), a
 * CPython object (its type pointer leads to a type object whose type is
 * PyType_Type, and whose tp_name is readable), a NUL-terminated text,
 * or words that point into a module.  The symbol look-ups are made before
 * the stop (hi_what_open, hi_what_prefill); in the stop only the type
 * objects of Python classes made at run time are read, once each.
 */
#include <dlfcn.h>
#include <errno.h>
#include <gelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <elfutils/libdwfl.h>

#include "symbols.h"

struct vtable {
	hi_addr_t start, end;
	char *cls; /* demangled class name, malloc'd */
};

struct pytype {
	hi_addr_t addr;
	char name[64]; /* tp_name, or "" when it is no type */
};

struct module {
	hi_addr_t start, end;
	char *name; /* basename, malloc'd */
};

#define PYTYPE_CACHE 1024

struct hi_what {
	struct vtable *vt;
	size_t nvt, capvt;
	hi_addr_t pytype_type[8]; /* PyType_Type of each libpython */
	size_t npytype;
	struct pytype *types;     /* sorted cache */
	size_t ntypes;
	struct module *mods;
	size_t nmods, capmods;
	char *(*demangle)(const char *, char *, size_t *, int *);
	void *libstdcxx;
};

/*
 * __cxa_demangle from the C++ runtime, where one is installed (on Debian
 * libstdc++6 always is), loaded when first needed so that heapinspect
 * does not depend on it.  Without it a simple name is read by hand.
 */
static void load_demangler(struct hi_what *w)
{
	w->libstdcxx = dlopen("libstdc++.so.6", RTLD_NOW | RTLD_LOCAL);
	if (w->libstdcxx)
		*(void **)&w->demangle = dlsym(w->libstdcxx, "__cxa_demangle");
}

static char *simple_name(const char *s)
{
	/* _ZTV<len><id>: a class at namespace scope, no templates */
	char *end;
	unsigned long n = strtoul(s, &end, 10);

	if (end == s || n == 0 || n > 4096 || strlen(end) != n)
		return NULL;
	return strdup(end);
}

/* "vtable for X" -> X, malloc'd; the symbol itself when unreadable. */
static char *demangle_vtable(struct hi_what *w, const char *sym)
{
	static const char prefix[] = "vtable for ";
	char *d, *cls;
	int status = -1;

	if (w->demangle) {
		d = w->demangle(sym, NULL, NULL, &status);
		if (d && status == 0 &&
		    strncmp(d, prefix, sizeof(prefix) - 1) == 0) {
			cls = strdup(d + sizeof(prefix) - 1);
			free(d);
			return cls;
		}
		free(d);
	}
	cls = simple_name(sym + 4);
	return cls ? cls : strdup(sym);
}

static int vt_cmp(const void *a, const void *b)
{
	const struct vtable *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

static int mod_cmp(const void *a, const void *b)
{
	const struct module *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

static int add_module(const struct hi_sym_module *m, void *arg)
{
	struct hi_what *w = arg;
	const char *base = strrchr(m->name, '/');
	int n;

	if (w->nmods == w->capmods) {
		size_t nc = w->capmods ? 2 * w->capmods : 64;
		struct module *nm = realloc(w->mods, nc * sizeof(*nm));

		if (!nm)
			return -ENOMEM;
		w->mods = nm;
		w->capmods = nc;
	}
	w->mods[w->nmods].start = m->start;
	w->mods[w->nmods].end = m->end;
	w->mods[w->nmods].name = strdup(base ? base + 1 : m->name);
	if (!w->mods[w->nmods].name)
		return -ENOMEM;
	w->nmods++;

	n = dwfl_module_getsymtab(m->priv);
	for (int i = 1; i < n; i++) {
		GElf_Sym s;
		GElf_Addr addr;
		const char *name = dwfl_module_getsym_info(m->priv, i, &s, &addr,
							   NULL, NULL, NULL);

		if (!name || s.st_shndx == SHN_UNDEF ||
		    GELF_ST_TYPE(s.st_info) != STT_OBJECT)
			continue;
		if (strcmp(name, "PyType_Type") == 0 && w->npytype < 8) {
			w->pytype_type[w->npytype++] = addr;
			continue;
		}
		if (strncmp(name, "_ZTV", 4) != 0 || s.st_size < 16)
			continue;
		if (w->nvt == w->capvt) {
			size_t nc = w->capvt ? 2 * w->capvt : 1024;
			struct vtable *nv = realloc(w->vt, nc * sizeof(*nv));

			if (!nv)
				return -ENOMEM;
			w->vt = nv;
			w->capvt = nc;
		}
		w->vt[w->nvt].start = addr;
		w->vt[w->nvt].end = addr + s.st_size;
		w->vt[w->nvt].cls = demangle_vtable(w, name);
		if (!w->vt[w->nvt].cls)
			return -ENOMEM;
		w->nvt++;
	}
	return 0;
}

int hi_what_open(struct hi_sym *sym, struct hi_what **out)
{
	struct hi_what *w = calloc(1, sizeof(*w));
	int ret;

	if (!w)
		return -ENOMEM;
	load_demangler(w);
	ret = hi_sym_each_module(sym, add_module, w);
	if (ret) {
		hi_what_close(w);
		return ret < 0 ? ret : -HI_E_DWARF;
	}
	if (w->nvt)
		qsort(w->vt, w->nvt, sizeof(*w->vt), vt_cmp);
	if (w->nmods)
		qsort(w->mods, w->nmods, sizeof(*w->mods), mod_cmp);
	*out = w;
	return 0;
}

void hi_what_close(struct hi_what *w)
{
	if (!w)
		return;
	for (size_t i = 0; i < w->nvt; i++)
		free(w->vt[i].cls);
	for (size_t i = 0; i < w->nmods; i++)
		free(w->mods[i].name);
	free(w->vt);
	free(w->mods);
	free(w->types);
	if (w->libstdcxx)
		dlclose(w->libstdcxx);
	free(w);
}

/* The vtable symbol that v points strictly inside (past offset-to-top). */
static const struct vtable *find_vtable(const struct hi_what *w, uint64_t v)
{
	size_t lo = 0, hi = w->nvt;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (w->vt[mid].start <= v)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* lo - 1: the last vtable starting at or before v */
	if (lo && v > w->vt[lo - 1].start && v < w->vt[lo - 1].end)
		return &w->vt[lo - 1];
	return NULL;
}

static const struct module *find_module(const struct hi_what *w, uint64_t v)
{
	for (size_t i = 0; i < w->nmods; i++) {
		if (v >= w->mods[i].start && v < w->mods[i].end)
			return &w->mods[i];
	}
	return NULL;
}

static int is_type_type(const struct hi_what *w, uint64_t v)
{
	for (size_t i = 0; i < w->npytype; i++) {
		if (w->pytype_type[i] == v)
			return 1;
	}
	return 0;
}

/* A C string of printable ASCII, at most size - 1 bytes. */
static int read_cstring(const struct hi_reader *r, hi_addr_t a, char *buf,
			size_t size)
{
	size_t n = 0;

	if (hi_read(r, a, buf, size)) {
		/* near the end of a mapping: byte by byte */
		for (n = 0; n < size; n++) {
			if (hi_read(r, a + n, buf + n, 1))
				return -EFAULT;
			if (!buf[n])
				break;
		}
	}
	for (n = 0; n < size && buf[n]; n++) {
		if (buf[n] < 0x20 || buf[n] > 0x7e)
			return -EINVAL;
	}
	if (n == 0 || n == size)
		return -EINVAL;
	return 0;
}

/*
 * Whether t is a CPython type object: its type is PyType_Type, or a
 * metaclass whose type is (two steps at most); then its tp_name (the word
 * after PyVarObject's ob_size) must be readable text.
 */
static int read_pytype(const struct hi_what *w, const struct hi_reader *r,
		       hi_addr_t t, char *name, size_t size)
{
	uint64_t ty = t, tn;

	for (int hop = 0;; hop++) {
		if (hop == 3 || ty % 8 || hi_read(r, ty + 8, &ty, 8))
			return -EINVAL;
		if (is_type_type(w, ty))
			break;
	}
	if (hi_read(r, t + 24, &tn, 8))
		return -EINVAL;
	return read_cstring(r, tn, name, size);
}

static int type_cmp(const void *a, const void *b)
{
	const struct pytype *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static struct pytype *cached_type(const struct hi_what *w, hi_addr_t t)
{
	struct pytype key = { .addr = t };

	if (!w->ntypes)
		return NULL;
	return bsearch(&key, w->types, w->ntypes, sizeof(key), type_cmp);
}

static int cache_type(struct hi_what *w, hi_addr_t t, const char *name)
{
	struct pytype *nt;

	if (w->ntypes >= PYTYPE_CACHE)
		return -ENOSPC;
	nt = realloc(w->types, (w->ntypes + 1) * sizeof(*nt));
	if (!nt)
		return -ENOMEM;
	w->types = nt;
	memset(&nt[w->ntypes], 0, sizeof(*nt));
	nt[w->ntypes].addr = t;
	snprintf(nt[w->ntypes].name, sizeof(nt[w->ntypes].name), "%s", name);
	w->ntypes++;
	qsort(w->types, w->ntypes, sizeof(*w->types), type_cmp);
	return 0;
}

struct prefill {
	struct hi_what *w;
	const struct hi_reader *r;
	int n;
};

static int prefill_module(const struct hi_sym_module *m, void *arg)
{
	struct prefill *p = arg;
	int n = dwfl_module_getsymtab(m->priv);

	for (int i = 1; i < n; i++) {
		GElf_Sym s;
		GElf_Addr addr;
		const char *name = dwfl_module_getsym_info(m->priv, i, &s, &addr,
							   NULL, NULL, NULL);
		size_t len;
		char tn[64];

		if (!name || s.st_shndx == SHN_UNDEF ||
		    GELF_ST_TYPE(s.st_info) != STT_OBJECT || s.st_size < 32)
			continue;
		len = strlen(name);
		if (len < 6 || strcmp(name + len - 5, "_Type") != 0)
			continue;
		if (cached_type(p->w, addr) ||
		    read_pytype(p->w, p->r, addr, tn, sizeof(tn)))
			continue;
		if (cache_type(p->w, addr, tn))
			return 1;
		p->n++;
	}
	return 0;
}

int hi_what_prefill(struct hi_what *w, struct hi_sym *sym,
		    const struct hi_reader *r)
{
	struct prefill p = { .w = w, .r = r };

	if (!w->npytype)
		return 0;
	hi_sym_each_module(sym, prefill_module, &p);
	return p.n;
}

/* The type of a Python object whose ob_type is at bytes[off]. */
static int python(struct hi_what *w, const unsigned char *bytes, size_t len,
		  size_t off, const struct hi_reader *r,
		  struct hi_what_res *out)
{
	uint64_t t;
	struct pytype *c;
	char name[64];

	if (off + 8 > len)
		return 0;
	memcpy(&t, bytes + off, 8);
	if (!t || t % 8)
		return 0;
	c = cached_type(w, t);
	if (c) {
		if (!c->name[0])
			return 0;
		snprintf(out->name, sizeof(out->name), "%s", c->name);
	} else {
		if (!r || read_pytype(w, r, t, name, sizeof(name))) {
			if (r)
				cache_type(w, t, "");
			return 0;
		}
		cache_type(w, t, name);
		snprintf(out->name, sizeof(out->name), "%s", name);
	}
	out->kind = HI_WHAT_PYTHON;
	out->offset = off;
	return 1;
}

int hi_what_block(struct hi_what *w, const unsigned char *bytes, size_t len,
		  const struct hi_reader *r, struct hi_what_res *out)
{
	uint64_t w0;
	size_t n;

	memset(out, 0, sizeof(*out));
	if (len >= 8) {
		const struct vtable *vt;

		memcpy(&w0, bytes, 8);
		vt = find_vtable(w, w0);
		if (vt) {
			out->kind = HI_WHAT_CXX;
			snprintf(out->name, sizeof(out->name), "%s", vt->cls);
			return 0;
		}
	}
	/*
	 * CPython: ob_type after ob_refcnt, at 8; at 24 behind the GC
	 * header of a container (PyGC_Head, 16 bytes, 3.8 on); at 40 with
	 * 3.12's two words for a managed dict and weak references.
	 */
	if (w->npytype) {
		static const size_t offs[] = { 8, 24, 40 };

		for (size_t i = 0; i < 3; i++) {
			if (python(w, bytes, len, offs[i], r, out))
				return 0;
		}
	}
	for (n = 0; n < len && bytes[n] >= 0x20 && bytes[n] < 0x7f; n++)
		;
	if (n >= 4 && n < len && bytes[n] == '\0') {
		out->kind = HI_WHAT_TEXT;
		snprintf(out->name, sizeof(out->name), "%.*s",
			 (int)(n < sizeof(out->name) - 1 ? n
							 : sizeof(out->name) - 1),
			 (const char *)bytes);
		return 0;
	}
	for (size_t off = 0; off + 8 <= len; off += 8) {
		const struct module *m;

		memcpy(&w0, bytes + off, 8);
		m = find_module(w, w0);
		if (m) {
			out->kind = HI_WHAT_MODULE;
			out->offset = off;
			snprintf(out->name, sizeof(out->name), "%s", m->name);
			return 0;
		}
	}
	out->kind = HI_WHAT_UNKNOWN;
	return 0;
}
