/* SPDX-License-Identifier: MIT */
/*
 * Modules, symbols and types of a target process, through elfutils' libdwfl
 * and libdw.  Modelled on eu-stack: dwfl_linux_proc_report for the modules,
 * dwfl_standard_find_debuginfo for the debug files (build-id first, then
 * .gnu_debuglink, under the debuginfo path).
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <dwarf.h>
#include <elfutils/libdwfl.h>

#include "symbols.h"

struct hi_sym {
	Dwfl *dwfl;
	Dwfl_Callbacks callbacks; /* libdwfl keeps a pointer to it */
	char *debuginfo_path;
};

/*
 * What the last find_debuginfo call saw.  libdwfl gives its callbacks no
 * way back to our session, and heapinspect looks up one module at a time.
 */
static struct {
	int via_debuginfod;
	int debuginfod_err;
} last_find;

/*
 * dwfl_standard_find_debuginfo, watched: it searches the debuginfo path
 * (build-id, then debuglink) and names the file it found; when that fails
 * and DEBUGINFOD_URLS is set, it asks libdebuginfod, which returns an fd
 * without a name, or -errno (find-debuginfo.c and debuginfod-client.c in
 * elfutils 0.188).  A local miss is -1.
 */
static int find_debuginfo(Dwfl_Module *mod, void **userdata,
			  const char *modname, Dwarf_Addr base,
			  const char *file_name, const char *debuglink_file,
			  GElf_Word debuglink_crc, char **debuginfo_file_name)
{
	int fd = dwfl_standard_find_debuginfo(mod, userdata, modname, base,
					      file_name, debuglink_file,
					      debuglink_crc,
					      debuginfo_file_name);

	/* -ENOSYS: no DEBUGINFOD_URLS, the client was not asked. */
	if (fd < -1 && fd != -ENOSYS)
		last_find.debuginfod_err = fd;
	if (fd >= 0 && *debuginfo_file_name == NULL) {
		char link[64], path[4096];
		ssize_t n;

		last_find.via_debuginfod = 1;
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		n = readlink(link, path, sizeof(path) - 1);
		if (n > 0) {
			path[n] = '\0';
			*debuginfo_file_name = strdup(path);
		}
	}
	return fd;
}

/*
 * A session with libdwfl's callbacks set and reporting begun: for a live
 * process (offline 0) or for ELF files (offline 1).  Return 0 or -errno /
 * -HI_E_DWARF; on success the caller reports modules, then calls
 * dwfl_report_end, or sym_free.
 */
static int sym_new(const char *debuginfo_path, int offline,
		   struct hi_sym **out)
{
	struct hi_sym *sym = calloc(1, sizeof(*sym));

	if (!sym)
		return -ENOMEM;
	if (debuginfo_path) {
		sym->debuginfo_path = strdup(debuginfo_path);
		if (!sym->debuginfo_path) {
			free(sym);
			return -ENOMEM;
		}
	}
	sym->callbacks.find_elf = offline ? dwfl_build_id_find_elf
					  : dwfl_linux_proc_find_elf;
	sym->callbacks.find_debuginfo = find_debuginfo;
	if (offline)
		sym->callbacks.section_address = dwfl_offline_section_address;
	sym->callbacks.debuginfo_path =
		sym->debuginfo_path ? &sym->debuginfo_path : NULL;
	sym->dwfl = dwfl_begin(&sym->callbacks);
	if (!sym->dwfl) {
		free(sym->debuginfo_path);
		free(sym);
		return -HI_E_DWARF;
	}
	dwfl_report_begin(sym->dwfl);
	*out = sym;
	return 0;
}

/* End a session that sym_new began, whatever was reported. */
static void sym_free(struct hi_sym *sym)
{
	dwfl_report_end(sym->dwfl, NULL, NULL);
	hi_sym_close(sym);
}

int hi_sym_open(pid_t pid, const char *debuginfo_path, struct hi_sym **out)
{
	struct hi_sym *sym;
	int ret;

	ret = sym_new(debuginfo_path, 0, &sym);
	if (ret)
		return ret;
	/* Returns an errno, or -1 for a libdwfl error (see libdwfl.h). */
	ret = dwfl_linux_proc_report(sym->dwfl, pid);
	if (ret != 0) {
		sym_free(sym);
		return ret > 0 ? -ret : -HI_E_DWARF;
	}
	if (dwfl_report_end(sym->dwfl, NULL, NULL) != 0) {
		hi_sym_close(sym);
		return -HI_E_DWARF;
	}
	*out = sym;
	return 0;
}

/* One ELF file, reported as module name from path.  0 or -HI_E_DWARF. */
static int open_offline(const char *name, const char *path,
			const char *debuginfo_path, struct hi_sym **out)
{
	struct hi_sym *sym;
	int ret;

	ret = sym_new(debuginfo_path, 1, &sym);
	if (ret)
		return ret;
	if (!dwfl_report_offline(sym->dwfl, name, path, -1)) {
		sym_free(sym);
		return -HI_E_DWARF;
	}
	if (dwfl_report_end(sym->dwfl, NULL, NULL) != 0) {
		hi_sym_close(sym);
		return -HI_E_DWARF;
	}
	*out = sym;
	return 0;
}

int hi_sym_open_file(const char *path, const char *debuginfo_path,
		     struct hi_sym **out)
{
	int ret = open_offline(path, path, debuginfo_path, out);

	if (ret == -HI_E_DWARF && access(path, R_OK))
		ret = -errno;
	return ret;
}

int hi_sym_open_elf(const char *name, int fd, const char *debuginfo_path,
		    struct hi_sym **out)
{
	char path[64];
	int ret;

	/*
	 * Not fd itself: libdwfl 0.188 leaks a descriptor it was given for a
	 * file it refuses (found by fuzz_elf: EMFILE after ~1000 inputs).
	 * Given a path, it opens and closes its own.
	 */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ret = open_offline(name, path, debuginfo_path, out);
	close(fd);
	return ret;
}

void hi_sym_close(struct hi_sym *sym)
{
	if (!sym)
		return;
	dwfl_end(sym->dwfl);
	free(sym->debuginfo_path);
	free(sym);
}

struct each_module_arg {
	int (*fn)(const struct hi_sym_module *m, void *arg);
	void *arg;
	int ret;
};

static int each_module_cb(Dwfl_Module *mod, void **userdata, const char *name,
			  Dwarf_Addr start, void *arg)
{
	struct each_module_arg *a = arg;
	struct hi_sym_module m = {
		.name = name,
		.start = start,
		.priv = mod,
	};
	Dwarf_Addr end = start;

	(void)userdata;
	dwfl_module_info(mod, NULL, NULL, &end, NULL, NULL, NULL, NULL);
	m.end = end;
	a->ret = a->fn(&m, a->arg);
	return a->ret ? DWARF_CB_ABORT : DWARF_CB_OK;
}

int hi_sym_each_module(struct hi_sym *sym,
		       int (*fn)(const struct hi_sym_module *m, void *arg),
		       void *arg)
{
	struct each_module_arg a = { .fn = fn, .arg = arg, .ret = 0 };

	if (dwfl_getmodules(sym->dwfl, each_module_cb, &a, 0) < 0)
		return -HI_E_DWARF;
	return a.ret;
}

int hi_sym_build_id(const struct hi_sym_module *m, char *buf, size_t size)
{
	const unsigned char *bits;
	GElf_Addr vaddr;
	Dwarf_Addr bias;
	int len;

	/* The id is known once the ELF file has been found. */
	dwfl_module_getelf(m->priv, &bias);
	len = dwfl_module_build_id(m->priv, &bits, &vaddr);
	if (len <= 0 || (size_t)len * 2 + 1 > size)
		return -HI_E_DWARF;
	for (int i = 0; i < len; i++) {
		static const char hex[] = "0123456789abcdef";

		buf[2 * i] = hex[bits[i] >> 4];
		buf[2 * i + 1] = hex[bits[i] & 15];
	}
	buf[2 * len] = '\0';
	return 0;
}

int hi_sym_find_string(const struct hi_sym_module *m, const char *needle,
		       char *buf, size_t size)
{
	size_t nlen = strlen(needle);
	Dwarf_Addr bias;
	Elf_Scn *scn = NULL;
	Elf *elf;

	elf = dwfl_module_getelf(m->priv, &bias);
	if (!elf)
		return -HI_E_DWARF;
	while ((scn = elf_nextscn(elf, scn)) != NULL) {
		GElf_Shdr shdr;
		Elf_Data *data;
		const char *p, *s, *e, *end;

		if (!gelf_getshdr(scn, &shdr) || shdr.sh_type != SHT_PROGBITS)
			continue;
		if (!(shdr.sh_flags & SHF_ALLOC) ||
		    (shdr.sh_flags & (SHF_WRITE | SHF_EXECINSTR)))
			continue;
		data = elf_getdata(scn, NULL);
		if (!data || !data->d_buf || data->d_size < nlen)
			continue;
		end = (const char *)data->d_buf + data->d_size;
		p = memmem(data->d_buf, data->d_size, needle, nlen);
		if (!p)
			continue;
		/* Widen the match to the NUL-terminated string around it. */
		for (s = p; s > (const char *)data->d_buf && s[-1]; s--)
			;
		for (e = p; e < end && *e; e++)
			;
		if ((size_t)(e - s) >= size)
			return -ENAMETOOLONG;
		memcpy(buf, s, e - s);
		buf[e - s] = '\0';
		return 0;
	}
	return -ENOENT;
}

int hi_sym_load_debug(const struct hi_sym_module *m, struct hi_sym_debug *out)
{
	const char *mainfile = NULL, *debugfile = NULL;
	Dwarf_Addr bias;
	Dwarf *dw;

	memset(&last_find, 0, sizeof(last_find));
	dw = dwfl_module_getdwarf(m->priv, &bias);
	memset(out, 0, sizeof(*out));
	out->via_debuginfod = last_find.via_debuginfod;
	out->debuginfod_err = last_find.debuginfod_err;
	if (!dw)
		return -HI_E_NODEBUG;
	dwfl_module_info(m->priv, NULL, NULL, NULL, NULL, NULL, &mainfile,
			 &debugfile);
	out->file = debugfile ? debugfile : mainfile;
	return 0;
}

/* R_*_RELATIVE of the machines whose relocations we read (RELA only). */
static unsigned relative_type(unsigned machine)
{
	switch (machine) {
	case EM_X86_64:
		return R_X86_64_RELATIVE;
	case EM_AARCH64:
		return R_AARCH64_RELATIVE;
	default:
		return 0;
	}
}

/* The word at vaddr (unrelocated) in the file, for RELR's implicit addend. */
static int file_word(Elf *elf, GElf_Addr vaddr, unsigned size, uint64_t *v)
{
	Elf_Scn *scn = NULL;

	while ((scn = elf_nextscn(elf, scn)) != NULL) {
		GElf_Shdr sh;
		Elf_Data *d;

		if (!gelf_getshdr(scn, &sh) || !(sh.sh_flags & SHF_ALLOC) ||
		    vaddr < sh.sh_addr || vaddr - sh.sh_addr >= sh.sh_size)
			continue;
		if (sh.sh_type == SHT_NOBITS) {
			*v = 0;
			return 0;
		}
		d = elf_getdata(scn, NULL);
		if (!d || !d->d_buf || vaddr - sh.sh_addr + size > d->d_size)
			return -HI_E_DWARF;
		*v = 0;
		memcpy(v, (const char *)d->d_buf + (vaddr - sh.sh_addr), size);
		return 0;
	}
	return -ENOENT;
}

int hi_sym_each_relative(const struct hi_sym_module *m,
			 int (*fn)(hi_addr_t where, hi_addr_t value,
				   void *arg),
			 void *arg)
{
	Elf_Scn *scn = NULL;
	GElf_Ehdr eh;
	Dwarf_Addr bias;
	unsigned type, word;
	Elf *elf;
	int ret;

	elf = dwfl_module_getelf(m->priv, &bias);
	if (!elf || !gelf_getehdr(elf, &eh))
		return -HI_E_DWARF;
	type = relative_type(eh.e_machine);
	word = eh.e_ident[EI_CLASS] == ELFCLASS64 ? 8 : 4;
	while ((scn = elf_nextscn(elf, scn)) != NULL) {
		GElf_Shdr sh;
		Elf_Data *d;

		if (!gelf_getshdr(scn, &sh))
			return -HI_E_DWARF;
		if (sh.sh_type != SHT_RELA && sh.sh_type != SHT_RELR)
			continue;
		d = elf_getdata(scn, NULL);
		if (!d)
			return -HI_E_DWARF;
		if (sh.sh_type == SHT_RELA) {
			size_t n = sh.sh_entsize ? sh.sh_size / sh.sh_entsize
						 : 0;

			for (size_t i = 0; type && i < n; i++) {
				GElf_Rela r;

				if (!gelf_getrela(d, (int)i, &r))
					return -HI_E_DWARF;
				if (GELF_R_TYPE(r.r_info) != type)
					continue;
				ret = fn(r.r_offset + bias,
					 (GElf_Addr)r.r_addend + bias, arg);
				if (ret)
					return ret;
			}
			continue;
		}
		/*
		 * RELR (the ELF gABI's compact relative relocations): an even
		 * entry is an address, an odd one a bitmap of the next
		 * word * 8 - 1 words; the addend is the word in place.
		 */
		GElf_Addr where = 0;

		for (size_t off = 0; off + word <= d->d_size; off += word) {
			uint64_t e = 0, v;

			memcpy(&e, (const char *)d->d_buf + off, word);
			if (!(e & 1)) {
				where = e;
				if ((ret = file_word(elf, where, word, &v)) ||
				    (ret = fn(where + bias, v + bias, arg)))
					return ret;
				where += word;
				continue;
			}
			for (unsigned i = 0; i < word * 8 - 1; i++) {
				GElf_Addr w = where + (GElf_Addr)i * word;

				if (!((e >> (i + 1)) & 1))
					continue;
				if ((ret = file_word(elf, w, word, &v)) ||
				    (ret = fn(w + bias, v + bias, arg)))
					return ret;
			}
			where += (GElf_Addr)(word * 8 - 1) * word;
		}
	}
	return 0;
}

int hi_sym_file_read(const struct hi_sym_module *m, hi_addr_t addr,
		     void *buf, size_t len)
{
	Elf_Scn *scn = NULL;
	Dwarf_Addr bias;
	Elf *elf;

	elf = dwfl_module_getelf(m->priv, &bias);
	if (!elf)
		return -HI_E_DWARF;
	if (addr < bias)
		return -ENOENT;
	addr -= bias;
	while ((scn = elf_nextscn(elf, scn)) != NULL) {
		GElf_Shdr sh;
		Elf_Data *d;

		if (!gelf_getshdr(scn, &sh) || !(sh.sh_flags & SHF_ALLOC) ||
		    addr < sh.sh_addr || addr - sh.sh_addr >= sh.sh_size)
			continue;
		if (len > sh.sh_size - (addr - sh.sh_addr))
			return -ENOENT;
		if (sh.sh_type == SHT_NOBITS) {
			memset(buf, 0, len);
			return 0;
		}
		d = elf_getdata(scn, NULL);
		if (!d || !d->d_buf || d->d_size < sh.sh_size)
			return -HI_E_DWARF;
		memcpy(buf, (const char *)d->d_buf + (addr - sh.sh_addr), len);
		return 0;
	}
	return -ENOENT;
}

int hi_sym_each_data(const struct hi_sym_module *m,
		     int (*fn)(hi_addr_t addr, const unsigned char *data,
			       size_t size, void *arg),
		     void *arg)
{
	Elf_Scn *scn = NULL;
	Dwarf_Addr bias;
	Elf *elf;
	int ret;

	elf = dwfl_module_getelf(m->priv, &bias);
	if (!elf)
		return -HI_E_DWARF;
	while ((scn = elf_nextscn(elf, scn)) != NULL) {
		GElf_Shdr sh;
		Elf_Data *d;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS ||
		    (sh.sh_flags & (SHF_ALLOC | SHF_WRITE)) !=
			    (SHF_ALLOC | SHF_WRITE))
			continue;
		d = elf_getdata(scn, NULL);
		if (!d || !d->d_buf)
			continue;
		ret = fn(sh.sh_addr + bias, d->d_buf, d->d_size, arg);
		if (ret)
			return ret;
	}
	return 0;
}

struct func {
	hi_addr_t start, end;
	int named;    /* one of the names asked for */
};

static int func_cmp(const void *a, const void *b)
{
	const struct func *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return y->named - x->named; /* a named alias first */
}

static int in_names(const char *name, const char *const *names)
{
	for (size_t i = 0; names[i]; i++) {
		if (strcmp(name, names[i]) == 0)
			return 1;
	}
	return 0;
}

int hi_sym_func_span(const struct hi_sym_module *m, const char *const *names,
		     hi_addr_t (**ranges)[2])
{
	struct func *f = NULL;
	hi_addr_t(*v)[2] = NULL;
	size_t n = 0, cap = 0, nv = 0;
	int nsyms, ret;

	nsyms = dwfl_module_getsymtab(m->priv);
	if (nsyms < 0)
		return -HI_E_DWARF;
	for (int i = 1; i < nsyms; i++) {
		GElf_Sym s;
		GElf_Addr addr;
		const char *name = dwfl_module_getsym_info(m->priv, i, &s,
							   &addr, NULL, NULL,
							   NULL);

		/* Exported ones only: a .symtab's static functions are
		 * what the span is meant to cover. */
		if (!name || GELF_ST_TYPE(s.st_info) != STT_FUNC ||
		    GELF_ST_BIND(s.st_info) == STB_LOCAL ||
		    s.st_shndx == SHN_UNDEF)
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 1024;
			struct func *nf = realloc(f, ncap * sizeof(*f));

			if (!nf) {
				ret = -ENOMEM;
				goto out;
			}
			f = nf;
			cap = ncap;
		}
		f[n].start = addr;
		f[n].end = addr + s.st_size;
		f[n].named = in_names(name, names);
		n++;
	}
	qsort(f, n, sizeof(*f), func_cmp);
	for (size_t i = 0; i < n;) {
		size_t j;
		hi_addr_t lo, hi;

		if (!f[i].named) {
			i++;
			continue;
		}
		/* A run of named functions (and their aliases). */
		for (j = i; j < n && (f[j].named || f[j].start == f[j - 1].start);
		     j++)
			;
		lo = i ? f[i - 1].end : f[i].start;
		if (lo > f[i].start)
			lo = f[i].start;
		hi = j < n ? f[j].start : f[j - 1].end;
		if (nv % 16 == 0) {
			hi_addr_t(*nr)[2] = realloc(v, (nv + 16) * sizeof(*v));

			if (!nr) {
				ret = -ENOMEM;
				goto out;
			}
			v = nr;
		}
		v[nv][0] = lo;
		v[nv][1] = hi;
		nv++;
		i = j;
	}
	if (!nv) {
		ret = -HI_E_NOSYM;
		goto out;
	}
	*ranges = v;
	v = NULL;
	ret = (int)nv;
out:
	free(v);
	free(f);
	return ret;
}

static int name_matches(const char *name, const char *suffix)
{
	size_t n = strlen(name), s = strlen(suffix);

	if (n == s)
		return strcmp(name, suffix) == 0;
	return n > s && name[n - s - 1] == '/' &&
	       strcmp(name + n - s, suffix) == 0;
}

/* The compilation unit whose name ends in cu_suffix. */
static int find_cu(const struct hi_sym_module *m, const char *cu_suffix,
		   Dwarf_Die *cu_out, Dwarf_Addr *bias_out)
{
	Dwarf_Die *cu = NULL;
	Dwarf_Addr bias;

	if (!dwfl_module_getdwarf(m->priv, &bias))
		return -HI_E_NODEBUG;
	while ((cu = dwfl_module_nextcu(m->priv, cu, &bias)) != NULL) {
		const char *name = dwarf_diename(cu);

		if (name && name_matches(name, cu_suffix)) {
			*cu_out = *cu;
			*bias_out = bias;
			return 0;
		}
	}
	return -HI_E_NOSYM;
}

/* Follow typedefs and qualifiers to the type that has a shape. */
static int strip_type(Dwarf_Die *die)
{
	for (int depth = 0; depth < 64; depth++) {
		Dwarf_Attribute attr;

		switch (dwarf_tag(die)) {
		case DW_TAG_typedef:
		case DW_TAG_const_type:
		case DW_TAG_volatile_type:
		case DW_TAG_restrict_type:
		case DW_TAG_atomic_type:
			if (!dwarf_attr_integrate(die, DW_AT_type, &attr) ||
			    !dwarf_formref_die(&attr, die))
				return -HI_E_LAYOUT;
			break;
		default:
			return 0;
		}
	}
	return -HI_E_LAYOUT;
}

static int type_of(Dwarf_Die *die, Dwarf_Die *out)
{
	Dwarf_Attribute attr;

	if (!dwarf_attr_integrate(die, DW_AT_type, &attr) ||
	    !dwarf_formref_die(&attr, out))
		return -HI_E_LAYOUT;
	return strip_type(out);
}

int hi_sym_variable(const struct hi_sym_module *m, const char *cu_suffix,
		    const char *name, hi_addr_t *addr, struct hi_sym_type *type)
{
	Dwarf_Die cu, die;
	Dwarf_Addr bias;
	int ret;

	ret = find_cu(m, cu_suffix, &cu, &bias);
	if (ret)
		return ret;
	if (dwarf_child(&cu, &die) != 0)
		return -HI_E_NOSYM;
	do {
		Dwarf_Attribute attr;
		Dwarf_Op *expr;
		size_t len;
		const char *n;

		if (dwarf_tag(&die) != DW_TAG_variable)
			continue;
		/* A definition may name itself only through its declaration. */
		n = dwarf_formstring(dwarf_attr_integrate(&die, DW_AT_name,
							  &attr));
		if (!n || strcmp(n, name) != 0)
			continue;
		if (!dwarf_attr(&die, DW_AT_location, &attr))
			continue; /* a declaration */
		if (dwarf_getlocation(&attr, &expr, &len) != 0 || len != 1 ||
		    expr[0].atom != DW_OP_addr)
			return -HI_E_LAYOUT;
		*addr = expr[0].number + bias;
		type->bias = bias;
		return type_of(&die, &type->die);
	} while (dwarf_siblingof(&die, &die) == 0);
	return -HI_E_NOSYM;
}

int hi_sym_type_named(const struct hi_sym_module *m, const char *cu_suffix,
		      const char *name, struct hi_sym_type *type)
{
	Dwarf_Die cu, die;
	Dwarf_Addr bias;
	int ret;

	ret = find_cu(m, cu_suffix, &cu, &bias);
	if (ret)
		return ret;
	if (dwarf_child(&cu, &die) != 0)
		return -HI_E_NOSYM;
	do {
		int tag = dwarf_tag(&die);
		const char *n;

		if (tag != DW_TAG_typedef && tag != DW_TAG_structure_type &&
		    tag != DW_TAG_union_type && tag != DW_TAG_enumeration_type)
			continue;
		if (dwarf_hasattr(&die, DW_AT_declaration))
			continue;
		n = dwarf_diename(&die);
		if (!n || strcmp(n, name) != 0)
			continue;
		type->die = die;
		type->bias = bias;
		return strip_type(&type->die) ? -HI_E_LAYOUT : 0;
	} while (dwarf_siblingof(&die, &die) == 0);
	return -HI_E_NOSYM;
}

int hi_sym_cu_ranges(const struct hi_sym_module *m, const char *cu_suffix,
		     hi_addr_t (**ranges)[2])
{
	hi_addr_t(*v)[2] = NULL;
	Dwarf_Addr base, start, end, bias;
	ptrdiff_t off = 0;
	Dwarf_Die cu;
	int n = 0, ret;

	ret = find_cu(m, cu_suffix, &cu, &bias);
	if (ret)
		return ret;
	while ((off = dwarf_ranges(&cu, off, &base, &start, &end)) > 0) {
		hi_addr_t(*nv)[2] = realloc(v, (n + 1) * sizeof(*v));

		if (!nv) {
			free(v);
			return -ENOMEM;
		}
		v = nv;
		v[n][0] = start + bias;
		v[n][1] = end + bias;
		n++;
		if (n > 1 << 16) {
			free(v);
			return -HI_E_DWARF;
		}
	}
	if (off < 0 || n == 0) {
		free(v);
		return -HI_E_DWARF;
	}
	*ranges = v;
	return n;
}

int hi_sym_type_size(const struct hi_sym_type *type, uint64_t *size)
{
	Dwarf_Word w;
	Dwarf_Die die = type->die;

	if (dwarf_aggregate_size(&die, &w) != 0)
		return -HI_E_LAYOUT;
	*size = w;
	return 0;
}

/* Number of elements of an array type with one dimension. */
static int array_count(Dwarf_Die *array, uint64_t *count)
{
	Dwarf_Die sub;
	Dwarf_Attribute attr;
	Dwarf_Word w;

	if (dwarf_child(array, &sub) != 0 ||
	    dwarf_tag(&sub) != DW_TAG_subrange_type)
		return -HI_E_LAYOUT;
	if (dwarf_attr(&sub, DW_AT_count, &attr)) {
		if (dwarf_formudata(&attr, &w) != 0)
			return -HI_E_LAYOUT;
		*count = w;
	} else if (dwarf_attr(&sub, DW_AT_upper_bound, &attr)) {
		if (dwarf_formudata(&attr, &w) != 0)
			return -HI_E_LAYOUT;
		*count = w + 1;
	} else {
		return -HI_E_LAYOUT;
	}
	/* A second dimension would make the count wrong. */
	if (dwarf_siblingof(&sub, &sub) == 0 &&
	    dwarf_tag(&sub) == DW_TAG_subrange_type)
		return -HI_E_LAYOUT;
	return 0;
}

int hi_sym_member(const struct hi_sym_type *type, const char *member,
		  uint64_t *offset, uint64_t *size, uint64_t *count,
		  struct hi_sym_type *member_type)
{
	Dwarf_Die st = type->die, die;
	int tag = dwarf_tag(&st);

	if (tag != DW_TAG_structure_type && tag != DW_TAG_union_type)
		return -HI_E_LAYOUT;
	if (dwarf_child(&st, &die) != 0)
		return -HI_E_NOSYM;
	do {
		Dwarf_Attribute attr;
		Dwarf_Word off = 0, w;
		Dwarf_Die mt;
		const char *n;

		if (dwarf_tag(&die) != DW_TAG_member)
			continue;
		n = dwarf_diename(&die);
		if (!n || strcmp(n, member) != 0)
			continue;
		/* Union members carry no location: offset 0. */
		if (dwarf_attr(&die, DW_AT_data_member_location, &attr) &&
		    dwarf_formudata(&attr, &off) != 0)
			return -HI_E_LAYOUT; /* a DWARF 2 expression */
		if (dwarf_attr(&die, DW_AT_bit_size, &attr))
			return -HI_E_LAYOUT; /* bit-fields are not expected */
		if (type_of(&die, &mt) != 0 || dwarf_aggregate_size(&mt, &w))
			return -HI_E_LAYOUT;
		*offset = off;
		*size = w;
		*count = 0;
		if (dwarf_tag(&mt) == DW_TAG_array_type &&
		    array_count(&mt, count) != 0)
			return -HI_E_LAYOUT;
		if (member_type) {
			member_type->die = mt;
			member_type->bias = type->bias;
		}
		return 0;
	} while (dwarf_siblingof(&die, &die) == 0);
	return -HI_E_NOSYM;
}

int hi_sym_pointee(const struct hi_sym_type *type, struct hi_sym_type *out)
{
	Dwarf_Die die = type->die;
	int tag = dwarf_tag(&die);

	if (tag != DW_TAG_pointer_type && tag != DW_TAG_array_type)
		return -HI_E_LAYOUT;
	if (type_of(&die, &out->die) != 0)
		return -HI_E_LAYOUT;
	out->bias = type->bias;
	return 0;
}

const char *hi_sym_errmsg(void)
{
	return dwfl_errmsg(-1);
}

int hi_sym_symbol(const struct hi_sym_module *m, const char *name,
		  hi_addr_t *addr, uint64_t *size)
{
	int n = dwfl_module_getsymtab(m->priv);

	if (n < 0)
		return -HI_E_DWARF;
	for (int i = 1; i < n; i++) {
		GElf_Sym sym;
		GElf_Addr value;
		const char *s;
		int type;

		s = dwfl_module_getsym_info(m->priv, i, &sym, &value, NULL,
					    NULL, NULL);
		if (!s || strcmp(s, name) != 0 || sym.st_shndx == SHN_UNDEF)
			continue;
		type = GELF_ST_TYPE(sym.st_info);
		if (type != STT_FUNC && type != STT_OBJECT &&
		    type != STT_GNU_IFUNC && type != STT_NOTYPE)
			continue;
		*addr = value;
		*size = sym.st_size;
		return 0;
	}
	return -HI_E_NOSYM;
}

int hi_sym_find_code(const struct hi_sym_module *m, const void *bytes,
		     size_t len, hi_addr_t *out, int max)
{
	Elf_Scn *scn = NULL;
	Dwarf_Addr bias;
	int found = 0;
	Elf *elf;

	elf = dwfl_module_getelf(m->priv, &bias);
	if (!elf || len == 0)
		return -HI_E_DWARF;
	while ((scn = elf_nextscn(elf, scn)) != NULL) {
		GElf_Shdr shdr;
		Elf_Data *data;
		const char *base, *p, *end;

		if (!gelf_getshdr(scn, &shdr) || shdr.sh_type != SHT_PROGBITS ||
		    !(shdr.sh_flags & SHF_EXECINSTR))
			continue;
		data = elf_getdata(scn, NULL);
		if (!data || !data->d_buf || data->d_size < len)
			continue;
		base = data->d_buf;
		end = base + data->d_size;
		for (p = base; (p = memmem(p, end - p, bytes, len)) != NULL;
		     p++) {
			if (found < max)
				out[found] = shdr.sh_addr + (p - base) + bias;
			found++;
			if (end - p <= (ptrdiff_t)len)
				break;
		}
	}
	return found;
}

int hi_sym_attach(struct hi_sym *sym, pid_t pid)
{
	int ret = dwfl_linux_proc_attach(sym->dwfl, pid, true);

	/* An errno, or -1 for a libdwfl error, as dwfl_linux_proc_report. */
	if (ret == 0)
		return 0;
	return ret > 0 ? -ret : -HI_E_DWARF;
}

struct frames_arg {
	hi_addr_t *pcs;
	int max;
	int n;
};

static int frame_cb(Dwfl_Frame *frame, void *arg)
{
	struct frames_arg *a = arg;
	Dwarf_Addr pc;
	bool activation;

	if (!dwfl_frame_pc(frame, &pc, &activation))
		return DWARF_CB_ABORT;
	/* A return address points after the call: look inside the call. */
	a->pcs[a->n++] = activation ? pc : pc - 1;
	return a->n < a->max ? DWARF_CB_OK : DWARF_CB_ABORT;
}

int hi_sym_thread_frames(struct hi_sym *sym, pid_t tid, hi_addr_t *pcs,
			 int max)
{
	struct frames_arg a = { .pcs = pcs, .max = max, .n = 0 };

	if (max <= 0)
		return -EINVAL;
	dwfl_getthread_frames(sym->dwfl, tid, frame_cb, &a);
	return a.n > 0 ? a.n : -HI_E_DWARF;
}

const char *hi_sym_addr_name(struct hi_sym *sym, hi_addr_t addr)
{
	Dwfl_Module *mod = dwfl_addrmodule(sym->dwfl, addr);

	return mod ? dwfl_module_addrname(mod, addr) : NULL;
}
