/* SPDX-License-Identifier: MIT */
/*
 * The target's binaries: the modules mapped in a process (libdwfl), their
 * build-ids, symbol addresses and struct layouts from DWARF.  Nothing here
 * prints or exits; every function returns 0 or a negative code (hi.h).
 * Nothing here needs the target to be stopped: it reads /proc/PID/maps and
 * files on disk, never the target's memory.
 */
#ifndef HEAPINSPECT_SYMBOLS_H
#define HEAPINSPECT_SYMBOLS_H

#include <stdint.h>
#include <sys/types.h>

#include <elfutils/libdw.h>

#include "heapinspect/hi.h"

struct hi_sym;

/* A module (an ELF file) mapped in the target. */
struct hi_sym_module {
	const char *name;  /* the path as mapped, owned by the session */
	hi_addr_t start;   /* lowest and highest+1 address of its mappings */
	hi_addr_t end;
	void *priv;        /* Dwfl_Module * */
};

/* A DWARF type, as found in a module's debug information. */
struct hi_sym_type {
	Dwarf_Die die;
	Dwarf_Addr bias;
};

/*
 * Report the modules mapped in process pid, the way eu-stack -p does
 * (dwfl_linux_proc_report).  debuginfo_path has elfutils' meaning (see
 * --debuginfo-path in eu-stack(1)); NULL means the standard path.  Return 0
 * with *out set (free with hi_sym_close), or -errno (-ESRCH, -EACCES, ...).
 */
int hi_sym_open(pid_t pid, const char *debuginfo_path, struct hi_sym **out);
void hi_sym_close(struct hi_sym *sym);

/*
 * Report one ELF file as a module called name, without a process (as
 * eu-readelf would open it): for the fuzz target, and later for core files.
 * fd is open on the file and consumed in every case.  debuginfo_path as
 * above.  Return 0 with *out set, or -HI_E_DWARF when libdwfl refuses the
 * file, or -ENOMEM.
 */
int hi_sym_open_elf(const char *name, int fd, const char *debuginfo_path,
		    struct hi_sym **out);

/*
 * Call fn for every module, in address order; stop early when fn returns
 * non-zero and return that value.  Return 0 otherwise.
 */
int hi_sym_each_module(struct hi_sym *sym,
		       int (*fn)(const struct hi_sym_module *m, void *arg),
		       void *arg);

/*
 * The module's GNU build-id as lower-case hex into buf (at least 2*20+1
 * bytes for SHA-1 ids, 129 is safe).  Return 0, or -HI_E_DWARF when the
 * module has none.
 */
int hi_sym_build_id(const struct hi_sym_module *m, char *buf, size_t size);

/*
 * Find the first NUL-terminated string in the module's allocated, read-only
 * sections that contains needle, and copy it to buf.  Used for version
 * banners.  Return 0, -ENOENT when absent, or -HI_E_DWARF.
 */
int hi_sym_find_string(const struct hi_sym_module *m, const char *needle,
		       char *buf, size_t size);

/*
 * Load the module's debug information (dwfl_module_getdwarf, which finds it
 * by build-id under the debuginfo path).  Return 0, or -HI_E_NODEBUG.  On
 * success *debug_file is the path of the file holding the DWARF (owned by the
 * session; may be NULL when the module carries its own).
 */
int hi_sym_load_debug(const struct hi_sym_module *m, const char **debug_file);

/*
 * Find the definition of the global or file-static variable name in the
 * compilation unit whose name ends in cu_suffix (e.g. "/malloc.c").  Return 0
 * with *addr (relocated to the target) and *type set, -HI_E_NOSYM when there
 * is none, or -HI_E_DWARF.
 */
int hi_sym_variable(const struct hi_sym_module *m, const char *cu_suffix,
		    const char *name, hi_addr_t *addr, struct hi_sym_type *type);

/*
 * The address ranges of the compilation unit whose name ends in cu_suffix,
 * relocated to the target.  *ranges is malloc'd (pairs start, end), owned by
 * the caller.  Return the number of ranges (>= 1), -HI_E_NOSYM or
 * -HI_E_DWARF.
 */
int hi_sym_cu_ranges(const struct hi_sym_module *m, const char *cu_suffix,
		     hi_addr_t (**ranges)[2]);

/* The byte size of type, after typedefs and qualifiers.  -HI_E_LAYOUT. */
int hi_sym_type_size(const struct hi_sym_type *type, uint64_t *size);

/*
 * A member of struct or union type (typedefs and qualifiers stripped):
 * its byte offset, the byte size of its type, and, for an array member, the
 * number of elements (*count, 0 when not an array).  member_type may be NULL.
 * Return 0, -HI_E_NOSYM when there is no such member, or -HI_E_LAYOUT.
 */
int hi_sym_member(const struct hi_sym_type *type, const char *member,
		  uint64_t *offset, uint64_t *size, uint64_t *count,
		  struct hi_sym_type *member_type);

/*
 * The type a pointer type (or an array type) points to: typedefs and
 * qualifiers stripped on both sides.  Return 0 or -HI_E_LAYOUT.
 */
int hi_sym_pointee(const struct hi_sym_type *type, struct hi_sym_type *out);

/* The message of libdwfl's last error, for diagnostics. */
const char *hi_sym_errmsg(void);

#endif
