/* SPDX-License-Identifier: MIT */
/*
 * Modules, symbols and types of a target process, through elfutils' libdwfl
 * and libdw.  Modelled on eu-stack: dwfl_linux_proc_report for the modules,
 * dwfl_standard_find_debuginfo for the debug files (build-id first, then
 * .gnu_debuglink, under the debuginfo path).
 */
#include <errno.h>
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

int hi_sym_open(pid_t pid, const char *debuginfo_path, struct hi_sym **out)
{
	struct hi_sym *sym;
	int ret;

	sym = calloc(1, sizeof(*sym));
	if (!sym)
		return -ENOMEM;
	if (debuginfo_path) {
		sym->debuginfo_path = strdup(debuginfo_path);
		if (!sym->debuginfo_path) {
			ret = -ENOMEM;
			goto err_free;
		}
	}
	sym->callbacks.find_elf = dwfl_linux_proc_find_elf;
	sym->callbacks.find_debuginfo = dwfl_standard_find_debuginfo;
	sym->callbacks.debuginfo_path =
		sym->debuginfo_path ? &sym->debuginfo_path : NULL;

	sym->dwfl = dwfl_begin(&sym->callbacks);
	if (!sym->dwfl) {
		ret = -HI_E_DWARF;
		goto err_free;
	}
	dwfl_report_begin(sym->dwfl);
	/* Returns an errno, or -1 for a libdwfl error (see libdwfl.h). */
	ret = dwfl_linux_proc_report(sym->dwfl, pid);
	if (ret != 0) {
		ret = ret > 0 ? -ret : -HI_E_DWARF;
		goto err_end;
	}
	if (dwfl_report_end(sym->dwfl, NULL, NULL) != 0) {
		ret = -HI_E_DWARF;
		goto err_dwfl;
	}
	*out = sym;
	return 0;

err_end:
	dwfl_report_end(sym->dwfl, NULL, NULL);
err_dwfl:
	dwfl_end(sym->dwfl);
err_free:
	free(sym->debuginfo_path);
	free(sym);
	return ret;
}

int hi_sym_open_elf(const char *name, int fd, const char *debuginfo_path,
		    struct hi_sym **out)
{
	struct hi_sym *sym;
	Dwfl_Module *mod;
	char path[64];
	int ret = -HI_E_DWARF;

	sym = calloc(1, sizeof(*sym));
	if (!sym) {
		close(fd);
		return -ENOMEM;
	}
	if (debuginfo_path) {
		sym->debuginfo_path = strdup(debuginfo_path);
		if (!sym->debuginfo_path) {
			close(fd);
			ret = -ENOMEM;
			goto err_free;
		}
	}
	sym->callbacks.find_elf = dwfl_build_id_find_elf;
	sym->callbacks.find_debuginfo = dwfl_standard_find_debuginfo;
	sym->callbacks.section_address = dwfl_offline_section_address;
	sym->callbacks.debuginfo_path =
		sym->debuginfo_path ? &sym->debuginfo_path : NULL;
	sym->dwfl = dwfl_begin(&sym->callbacks);
	if (!sym->dwfl) {
		close(fd);
		goto err_free;
	}
	dwfl_report_begin(sym->dwfl);
	/*
	 * Not fd itself: libdwfl 0.188 leaks a descriptor it was given for a
	 * file it refuses (found by fuzz_elf: EMFILE after ~1000 inputs).
	 * Given a path, it opens and closes its own.
	 */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	mod = dwfl_report_offline(sym->dwfl, name, path, -1);
	close(fd);
	if (!mod) {
		dwfl_report_end(sym->dwfl, NULL, NULL);
		goto err_dwfl;
	}
	if (dwfl_report_end(sym->dwfl, NULL, NULL) != 0)
		goto err_dwfl;
	*out = sym;
	return 0;

err_dwfl:
	dwfl_end(sym->dwfl);
err_free:
	free(sym->debuginfo_path);
	free(sym);
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

int hi_sym_load_debug(const struct hi_sym_module *m, const char **debug_file)
{
	const char *mainfile = NULL, *debugfile = NULL;
	Dwarf_Addr bias;

	if (!dwfl_module_getdwarf(m->priv, &bias))
		return -HI_E_NODEBUG;
	dwfl_module_info(m->priv, NULL, NULL, NULL, NULL, NULL, &mainfile,
			 &debugfile);
	if (debug_file)
		*debug_file = debugfile ? debugfile : mainfile;
	return 0;
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
