/* SPDX-License-Identifier: MIT */
/*
 * Thread-local storage of another process, the way glibc's libthread_db
 * finds it (nptl_db/td_thr_tlsbase.c), from the same description of
 * glibc's structures: the _thread_db_* descriptors that glibc builds into
 * itself for debuggers (nptl_db/structs.def, each three 32-bit words:
 * size in bits, element count, offset).  They sit in libc's dynamic
 * symbol table from glibc 2.34 on and in libpthread's symbol table
 * before (which Debian does not strip), so no debug information is
 * needed, and they are read from the files, before the stop.  libthread_db
 * itself is not loaded: the target's copy is built against the target's
 * glibc and may not load into heapinspect (glibc 2.43's needs
 * GLIBC_ABI_DT_X86_64_PLT, which an older host lacks); the live test
 * holds this code to libthread_db where it does load.
 *
 * x86_64 only for the layout of static TLS (TLS_TCB_AT_TP: a module's
 * block lies l_tls_offset bytes below the thread pointer).
 */
#include <errno.h>
#include <gelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <elfutils/libdwfl.h>

#include "symbols.h"

/* A descriptor of nptl_db: DB_DESC_SIZE, DB_DESC_NELEM, DB_DESC_OFFSET. */
struct desc {
	uint32_t bits, count, offset;
	int found;
};

enum {
	D_PTHREAD_DTVP,
	D_PTHREAD_TID,
	D_DTV_DTV,
	D_DTV_T_POINTER_VAL,
	D_DTV_T_COUNTER,
	D_LINK_MAP_L_TLS_MODID,
	D_LINK_MAP_L_TLS_OFFSET,
	D_RTLD_SLOTINFO_LIST,
	D_SLOTINFO_LIST_LEN,
	D_SLOTINFO_LIST_NEXT,
	D_SLOTINFO_LIST_SLOTINFO,
	D_SLOTINFO_GEN,
	D_SLOTINFO_MAP,
	D_COUNT,
};

static const char *const desc_names[D_COUNT] = {
	[D_PTHREAD_DTVP] = "_thread_db_pthread_dtvp",
	[D_PTHREAD_TID] = "_thread_db_pthread_tid",
	[D_DTV_DTV] = "_thread_db_dtv_dtv",
	[D_DTV_T_POINTER_VAL] = "_thread_db_dtv_t_pointer_val",
	[D_DTV_T_COUNTER] = "_thread_db_dtv_t_counter",
	[D_LINK_MAP_L_TLS_MODID] = "_thread_db_link_map_l_tls_modid",
	[D_LINK_MAP_L_TLS_OFFSET] = "_thread_db_link_map_l_tls_offset",
	[D_RTLD_SLOTINFO_LIST] =
		"_thread_db_rtld_global__dl_tls_dtv_slotinfo_list",
	[D_SLOTINFO_LIST_LEN] = "_thread_db_dtv_slotinfo_list_len",
	[D_SLOTINFO_LIST_NEXT] = "_thread_db_dtv_slotinfo_list_next",
	[D_SLOTINFO_LIST_SLOTINFO] = "_thread_db_dtv_slotinfo_list_slotinfo",
	[D_SLOTINFO_GEN] = "_thread_db_dtv_slotinfo_gen",
	[D_SLOTINFO_MAP] = "_thread_db_dtv_slotinfo_map",
};

/* Without these, nothing: the others only make the answer surer. */
static const int required[] = {
	D_PTHREAD_DTVP, D_DTV_DTV, D_DTV_T_POINTER_VAL, D_DTV_T_COUNTER,
	D_LINK_MAP_L_TLS_MODID, D_LINK_MAP_L_TLS_OFFSET,
};

/* glibc's include/link.h with NO_TLS_OFFSET 0 (x86_64). */
#define NO_TLS_OFFSET 0
#define FORCED_DYNAMIC_TLS_OFFSET ((uint64_t)-1)

/* Bounds on what is read from the target (hostile memory). */
#define MAX_LINK_MAPS 65536
#define MAX_DTV_SLOTS (1u << 20)
#define MAX_SLOTINFO_LISTS 4096

struct hi_tls {
	struct desc d[D_COUNT];
	uint32_t sizeof_pthread;
	uint32_t sizeof_slotinfo;
	char desc_module[4096];
	hi_addr_t r_debug;       /* ld.so's _r_debug */
	hi_addr_t rtld_global;   /* ld.so's _rtld_global, 0 if absent */
	struct hi_tls_module *mods;
	size_t nmods;
	int loaded;
};

/* One descriptor of glibc's, from the file of module m. */
static int read_desc(const struct hi_sym_module *m, const char *name,
		     struct desc *d)
{
	hi_addr_t addr;
	uint64_t size;
	uint32_t w[3];
	int ret;

	ret = hi_sym_symbol(m, name, &addr, &size);
	if (ret)
		return ret;
	if (size != sizeof(w))
		return -HI_E_LAYOUT;
	ret = hi_sym_file_read(m, addr, w, sizeof(w));
	if (ret)
		return ret;
	/* Only little-endian x86_64 here: a swapped size is foreign. */
	if (w[0] == 0 || (w[0] & 0xff000000u) || w[0] % 8)
		return -HI_E_LAYOUT;
	d->bits = w[0];
	d->count = w[1];
	d->offset = w[2];
	d->found = 1;
	return 0;
}

static int read_u32(const struct hi_sym_module *m, const char *name,
		    uint32_t *v)
{
	hi_addr_t addr;
	uint64_t size;
	int ret = hi_sym_symbol(m, name, &addr, &size);

	if (ret)
		return ret;
	if (size != sizeof(*v))
		return -HI_E_LAYOUT;
	return hi_sym_file_read(m, addr, v, sizeof(*v));
}

struct open_arg {
	struct hi_tls *tls;
	int ret;
	int have_desc;
};

/* PT_TLS and PT_DYNAMIC of a module, relocated. */
static int module_segments(const struct hi_sym_module *m,
			   struct hi_tls_module *out)
{
	Dwarf_Addr bias;
	Elf *elf = dwfl_module_getelf(m->priv, &bias);
	size_t phnum;
	int tls = 0;

	if (!elf || elf_getphdrnum(elf, &phnum))
		return -HI_E_DWARF;
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, (int)i, &ph))
			return -HI_E_DWARF;
		if (ph.p_type == PT_TLS) {
			out->memsz = ph.p_memsz;
			out->filesz = ph.p_filesz;
			out->align = ph.p_align;
			tls = 1;
		} else if (ph.p_type == PT_DYNAMIC) {
			out->dynamic = ph.p_vaddr + bias;
		}
	}
	return tls;
}

static int open_module(const struct hi_sym_module *m, void *arg)
{
	struct open_arg *a = arg;
	struct hi_tls *tls = a->tls;
	struct hi_tls_module tm = { 0 };
	hi_addr_t addr;
	uint64_t size;
	int ret;

	/* ld.so: the list of modules and the DTV slot table. */
	if (!tls->r_debug && !hi_sym_symbol(m, "_r_debug", &addr, &size))
		tls->r_debug = addr;
	if (!tls->rtld_global &&
	    !hi_sym_symbol(m, "_rtld_global", &addr, &size))
		tls->rtld_global = addr;
	/* libc (2.34 on) or libpthread: the descriptors. */
	if (!a->have_desc) {
		struct desc d = { 0 };

		if (read_desc(m, desc_names[D_PTHREAD_DTVP], &d) == 0) {
			a->have_desc = 1;
			snprintf(tls->desc_module, sizeof(tls->desc_module),
				 "%s", m->name);
			for (int i = 0; i < D_COUNT; i++)
				read_desc(m, desc_names[i], &tls->d[i]);
			read_u32(m, "_thread_db_sizeof_pthread",
				 &tls->sizeof_pthread);
			read_u32(m, "_thread_db_sizeof_dtv_slotinfo",
				 &tls->sizeof_slotinfo);
		}
	}
	ret = module_segments(m, &tm);
	if (ret < 0)
		return 0; /* a module libdwfl cannot read has no TLS we know */
	if (ret == 0)
		return 0;
	if (tls->nmods % 16 == 0) {
		struct hi_tls_module *nm = realloc(
			tls->mods, (tls->nmods + 16) * sizeof(*nm));

		if (!nm) {
			a->ret = -ENOMEM;
			return 1;
		}
		tls->mods = nm;
	}
	tm.name = m->name;
	tm.start = m->start;
	tm.sym = *m;
	tls->mods[tls->nmods++] = tm;
	return 0;
}

int hi_tls_open(struct hi_sym *sym, struct hi_tls **out)
{
	struct hi_tls *tls = calloc(1, sizeof(*tls));
	struct open_arg a = { .tls = tls };
	int ret;

	if (!tls)
		return -ENOMEM;
	ret = hi_sym_each_module(sym, open_module, &a);
	if (ret < 0 || a.ret) {
		ret = a.ret ? a.ret : ret;
		goto fail;
	}
	if (!a.have_desc) {
		ret = -HI_E_NOSYM;
		goto fail;
	}
	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		if (!tls->d[required[i]].found) {
			ret = -HI_E_NOSYM;
			goto fail;
		}
	}
	if (tls->d[D_DTV_T_POINTER_VAL].bits != 64 ||
	    tls->d[D_DTV_T_COUNTER].bits != 64 ||
	    tls->d[D_PTHREAD_DTVP].bits != 64 ||
	    tls->d[D_DTV_DTV].bits < 128) {
		ret = -HI_E_LAYOUT;
		goto fail;
	}
	if (!tls->r_debug) {
		ret = -HI_E_NOSYM;
		goto fail;
	}
	*out = tls;
	return 0;
fail:
	hi_tls_close(tls);
	return ret;
}

void hi_tls_close(struct hi_tls *tls)
{
	if (!tls)
		return;
	free(tls->mods);
	free(tls);
}

const char *hi_tls_desc_module(const struct hi_tls *tls)
{
	return tls->desc_module;
}

/* A field of a structure at base, as DB_GET_FIELD: 8, 32 or 64 bits. */
static int get_field(const struct hi_reader *r, const struct desc *d,
		     hi_addr_t base, uint64_t idx, uint64_t *v)
{
	hi_addr_t a = base + (int32_t)d->offset + idx * (d->bits / 8);
	int ret;

	if (!d->found)
		return -HI_E_NOSYM;
	*v = 0;
	switch (d->bits) {
	case 8: {
		uint8_t x;

		ret = hi_read(r, a, &x, 1);
		*v = x;
		return ret;
	}
	case 32: {
		uint32_t x;

		ret = hi_read(r, a, &x, 4);
		*v = x;
		return ret;
	}
	case 64:
		return hi_read(r, a, v, 8);
	default:
		return -HI_E_LAYOUT;
	}
}

static hi_addr_t field_addr(const struct desc *d, hi_addr_t base,
			    uint64_t idx)
{
	return base + (int32_t)d->offset + idx * (d->bits / 8);
}

/* The slotinfo generation of modid, or -ENOENT (DTV checks left out). */
static int slot_gen(const struct hi_tls *tls, const struct hi_reader *r,
		    uint64_t modid, uint64_t *gen)
{
	const struct desc *d = tls->d;
	uint64_t list, base = 0;
	int ret;

	if (!tls->rtld_global || !d[D_RTLD_SLOTINFO_LIST].found ||
	    !d[D_SLOTINFO_LIST_LEN].found || !d[D_SLOTINFO_LIST_NEXT].found ||
	    !d[D_SLOTINFO_LIST_SLOTINFO].found || !d[D_SLOTINFO_GEN].found)
		return -ENOENT;
	ret = get_field(r, &d[D_RTLD_SLOTINFO_LIST], tls->rtld_global, 0,
			&list);
	if (ret)
		return ret;
	for (int n = 0; list && n < MAX_SLOTINFO_LISTS; n++) {
		uint64_t len, next;

		ret = get_field(r, &d[D_SLOTINFO_LIST_LEN], list, 0, &len);
		if (ret)
			return ret;
		if (modid < base + len) {
			/* the slotinfo array element, then its gen */
			hi_addr_t e = field_addr(&d[D_SLOTINFO_LIST_SLOTINFO],
						 list, modid - base);

			return get_field(r, &d[D_SLOTINFO_GEN], e, 0, gen);
		}
		if (len > MAX_DTV_SLOTS)
			return -HI_E_CORRUPT;
		base += len;
		ret = get_field(r, &d[D_SLOTINFO_LIST_NEXT], list, 0, &next);
		if (ret)
			return ret;
		list = next;
	}
	return -ENOENT;
}

int hi_tls_load(struct hi_tls *tls, const struct hi_reader *r)
{
	uint64_t map;
	int ret, n = 0;

	for (size_t i = 0; i < tls->nmods; i++) {
		tls->mods[i].link_map = 0;
		tls->mods[i].modid = 0;
		tls->mods[i].offset = 0;
	}
	/* struct r_debug: int r_version; struct link_map *r_map; ... */
	ret = hi_read(r, tls->r_debug + 8, &map, sizeof(map));
	if (ret)
		return ret;
	/* The public head of struct link_map (<link.h>): l_addr, l_name,
	 * l_ld, l_next, l_prev. */
	while (map) {
		uint64_t lm[5], modid, offset;

		if (++n > MAX_LINK_MAPS)
			return -HI_E_CORRUPT;
		ret = hi_read(r, map, lm, sizeof(lm));
		if (ret)
			return ret;
		for (size_t i = 0; i < tls->nmods; i++) {
			struct hi_tls_module *m = &tls->mods[i];

			if (!m->dynamic || m->dynamic != lm[2])
				continue;
			ret = get_field(r, &tls->d[D_LINK_MAP_L_TLS_MODID], map,
					0, &modid);
			if (!ret)
				ret = get_field(r,
						&tls->d[D_LINK_MAP_L_TLS_OFFSET],
						map, 0, &offset);
			if (ret)
				return ret;
			m->link_map = map;
			m->modid = modid;
			m->offset = offset;
		}
		map = lm[3];
	}
	tls->loaded = 1;
	return 0;
}

size_t hi_tls_nmodules(const struct hi_tls *tls)
{
	return tls->nmods;
}

const struct hi_tls_module *hi_tls_module(const struct hi_tls *tls,
					  size_t i)
{
	return i < tls->nmods ? &tls->mods[i] : NULL;
}

long hi_tls_find_module(const struct hi_tls *tls, hi_addr_t start)
{
	for (size_t i = 0; i < tls->nmods; i++) {
		if (tls->mods[i].start == start)
			return (long)i;
	}
	return -1;
}

/*
 * td_thr_tlsbase for module m of the thread whose struct pthread is at
 * pd, with its DTV at dtv (generation dtvgen, slots slots).
 */
static int block_of(const struct hi_tls *tls, const struct hi_reader *r,
		    hi_addr_t pd, hi_addr_t dtv, uint64_t dtvgen,
		    uint64_t slots, const struct hi_tls_module *m,
		    struct hi_tls_block *b)
{
	uint64_t gen, val;
	int ret, stale = 0;

	if (!m->modid)
		return -ENOENT; /* not in the link map: not loaded */
	ret = slot_gen(tls, r, m->modid, &gen);
	if (ret == 0 && dtvgen < gen)
		stale = 1;
	else if (ret && ret != -ENOENT)
		return ret;
	if (!stale && m->modid <= slots) {
		ret = get_field(r, &tls->d[D_DTV_T_POINTER_VAL],
				field_addr(&tls->d[D_DTV_DTV], dtv, m->modid),
				0, &val);
		if (ret)
			return ret;
		if (val && !(val & 1)) {
			b->addr = val;
			b->is_static = m->offset != NO_TLS_OFFSET &&
				       m->offset != FORCED_DYNAMIC_TLS_OFFSET;
			return 0;
		}
	}
	/* Not (yet) in the DTV: static TLS is there all the same. */
	if (m->offset != NO_TLS_OFFSET &&
	    m->offset != FORCED_DYNAMIC_TLS_OFFSET) {
		b->addr = pd - m->offset;
		b->is_static = 1;
		return 0;
	}
	return -ENOENT;
}

int hi_tls_thread(const struct hi_tls *tls, const struct hi_reader *r,
		  pid_t tid, hi_addr_t tp, struct hi_tls_thread *out)
{
	uint64_t dtv, dtvgen, slots = 0, t;
	int ret;

	memset(out, 0, sizeof(out[0]));
	out->tid = tid;
	out->tp = tp;
	if (!tls->loaded)
		return -EINVAL;
	/* x86_64: the thread pointer is the struct pthread (THREAD_SELF). */
	out->pthread = tp;
	out->pthread_size = tls->sizeof_pthread;
	if (tls->d[D_PTHREAD_TID].found) {
		ret = get_field(r, &tls->d[D_PTHREAD_TID], tp, 0, &t);
		if (ret)
			return ret;
		/* 0: a main thread that libpthread never set up (2.33 and
		 * before, without -lpthread). */
		if (t != (uint64_t)(uint32_t)tid && t != 0)
			return -HI_E_CORRUPT;
		out->tid_checked = t != 0;
	}
	ret = get_field(r, &tls->d[D_PTHREAD_DTVP], tp, 0, &dtv);
	if (ret)
		return ret;
	if (!dtv || dtv % 8)
		return -HI_E_CORRUPT;
	ret = get_field(r, &tls->d[D_DTV_T_COUNTER],
			field_addr(&tls->d[D_DTV_DTV], dtv, 0), 0, &dtvgen);
	if (ret)
		return ret;
	/* dtv[-1].counter: the slots allocated (INSTALL_DTV points past
	 * it) */
	ret = get_field(r, &tls->d[D_DTV_T_COUNTER],
			dtv - tls->d[D_DTV_DTV].bits / 8, 0, &slots);
	if (ret)
		return ret;
	if (slots > MAX_DTV_SLOTS)
		return -HI_E_CORRUPT;
	out->dtv = dtv;
	out->dtv_slots = slots;
	out->dtv_gen = dtvgen;
	out->blocks = calloc(tls->nmods ? tls->nmods : 1,
			     sizeof(*out->blocks));
	if (!out->blocks)
		return -ENOMEM;
	for (size_t i = 0; i < tls->nmods; i++) {
		struct hi_tls_block b = { .module = i };

		ret = block_of(tls, r, tp, dtv, dtvgen, slots, &tls->mods[i],
			       &b);
		if (ret == -ENOENT)
			continue;
		if (ret) {
			hi_tls_thread_free(out);
			return ret;
		}
		b.size = tls->mods[i].memsz;
		out->blocks[out->nblocks++] = b;
	}
	return 0;
}

void hi_tls_thread_free(struct hi_tls_thread *t)
{
	free(t->blocks);
	t->blocks = NULL;
	t->nblocks = 0;
}

int hi_tls_address(const struct hi_tls_thread *t, size_t module,
		   uint64_t offset, hi_addr_t *addr)
{
	for (size_t i = 0; i < t->nblocks; i++) {
		if (t->blocks[i].module != module)
			continue;
		if (offset >= t->blocks[i].size)
			return -EINVAL;
		*addr = t->blocks[i].addr + offset;
		return 0;
	}
	return -ENOENT;
}

int hi_sym_tls_symbol(const struct hi_sym_module *m, const char *name,
		      uint64_t *offset, uint64_t *size)
{
	int n = dwfl_module_getsymtab(m->priv);

	if (n < 0)
		return -HI_E_DWARF;
	for (int i = 1; i < n; i++) {
		GElf_Sym sym;
		GElf_Addr value;
		const char *s;

		/* st_value unadjusted: for STT_TLS, the offset in the
		 * module's TLS block (ELF gABI) */
		s = dwfl_module_getsym_info(m->priv, i, &sym, &value, NULL,
					    NULL, NULL);
		if (!s || GELF_ST_TYPE(sym.st_info) != STT_TLS ||
		    sym.st_shndx == SHN_UNDEF || strcmp(s, name) != 0)
			continue;
		*offset = sym.st_value;
		*size = sym.st_size;
		return 0;
	}
	return -HI_E_NOSYM;
}
