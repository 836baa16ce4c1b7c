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

/*
 * Report one ELF file on disk as the only module, as eu-readelf would see
 * it, for tools that read a libc without a process (the layout generator).
 * Return 0 with *out set (free with hi_sym_close), or -errno/-HI_E_DWARF.
 */
int hi_sym_open_file(const char *path, const char *debuginfo_path,
		     struct hi_sym **out);
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

/* Where a module's debug information came from. */
struct hi_sym_debug {
	const char *file;    /* the file holding the DWARF (owned by the
				session), NULL when not found */
	int via_debuginfod;  /* a debuginfod server (or its client cache)
				gave it */
	int debuginfod_err;  /* -errno of the debuginfod client when it was
				asked and failed (-ENOENT: the server does
				not have it), else 0 */
};

/*
 * Load the module's debug information (dwfl_module_getdwarf: by build-id and
 * debuglink under the debuginfo path, then, when DEBUGINFOD_URLS is set,
 * from a debuginfod server through elfutils' libdebuginfod).  Return 0 or
 * -HI_E_NODEBUG; *out says where it came from, or why debuginfod failed.
 */
int hi_sym_load_debug(const struct hi_sym_module *m, struct hi_sym_debug *out);

/*
 * Call fn for every relative relocation of the module (R_X86_64_RELATIVE
 * and R_AARCH64_RELATIVE entries of its RELA sections, and every entry of
 * its .relr.dyn): the address of the word, and the address the word holds
 * once relocated, both in the target.  Stop when fn returns non-zero and
 * return that.  Return 0, or -HI_E_DWARF when the file cannot be read.
 */
int hi_sym_each_relative(const struct hi_sym_module *m,
			 int (*fn)(hi_addr_t where, hi_addr_t value,
				   void *arg),
			 void *arg);

/*
 * The initial contents of the module's memory at addr (in the target), from
 * its file: a section's bytes, zeros for .bss.  Return 0, -ENOENT when no
 * allocated section holds all of [addr, addr + len), or -HI_E_DWARF.
 */
int hi_sym_file_read(const struct hi_sym_module *m, hi_addr_t addr,
		     void *buf, size_t len);

/*
 * Call fn for every writable allocated section with contents in the file
 * (.data and friends): its address in the target, its bytes and size.  Stop
 * when fn returns non-zero and return that.  Return 0 or -HI_E_DWARF.
 */
int hi_sym_each_data(const struct hi_sym_module *m,
		     int (*fn)(hi_addr_t addr, const unsigned char *data,
			       size_t size, void *arg),
		     void *arg);

/*
 * Without debug information: the code around the module's exported
 * functions named in names (NULL-terminated), from the end of the exported
 * function before them to the start of the exported function after them,
 * so that the static functions an object file keeps between its exported
 * ones are included.  *ranges is malloc'd.  Return the count, -HI_E_NOSYM
 * when none of the names is exported, or -HI_E_DWARF.
 */
int hi_sym_func_span(const struct hi_sym_module *m, const char *const *names,
		     hi_addr_t (**ranges)[2]);

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

/*
 * The type named name (a typedef or a struct, union or enum tag) declared
 * at the top of the compilation unit whose name ends in cu_suffix, with
 * typedefs and qualifiers stripped.  Return 0, -HI_E_NOSYM or -HI_E_DWARF.
 */
int hi_sym_type_named(const struct hi_sym_module *m, const char *cu_suffix,
		      const char *name, struct hi_sym_type *type);

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

/*
 * The address (relocated to the target) and size of the function or object
 * symbol name, from the module's symbol table: .symtab, from the debug file
 * when one was found, else .dynsym.  Return 0, -HI_E_NOSYM when there is no
 * such symbol, or -HI_E_DWARF.
 */
int hi_sym_symbol(const struct hi_sym_module *m, const char *name,
		  hi_addr_t *addr, uint64_t *size);

/*
 * The addresses (relocated to the target) where the byte string occurs in
 * the module's executable sections, from the file on disk.  Up to max are
 * stored in out.  Return the number of occurrences (may exceed max), or
 * -HI_E_DWARF.
 */
int hi_sym_find_code(const struct hi_sym_module *m, const void *bytes,
		     size_t len, hi_addr_t *out, int max);

/*
 * Unwinding the threads of a process that heapinspect holds stopped with
 * ptrace (libdwfl's dwfl_linux_proc_attach with assume_ptrace_stopped, then
 * dwfl_getthread_frames, as eu-stack does).  hi_sym_attach is called once
 * per session, while the threads are stopped; libdwfl reads registers and
 * memory with ptrace.  Return 0 or a negative code.
 */
int hi_sym_attach(struct hi_sym *sym, pid_t pid);

/*
 * The program counters of the stopped thread tid's call stack, innermost
 * first: pcs[0] is where it stopped, the others are return addresses less
 * one (inside the call instruction).  Up to max are stored.  Return the
 * number stored (>= 1), or a negative code when not even the first frame
 * could be had.  An unwind that ends early is not an error: the frames
 * found so far are returned.
 */
int hi_sym_thread_frames(struct hi_sym *sym, pid_t tid, hi_addr_t *pcs,
			 int max);

/* The name of the function at addr in the target, or NULL (session-owned). */
const char *hi_sym_addr_name(struct hi_sym *sym, hi_addr_t addr);

/* The message of libdwfl's last error, for diagnostics. */
const char *hi_sym_errmsg(void);

/*
 * Thread-local storage of the target (symbols/tls.c), found as glibc's
 * libthread_db finds it (td_thr_tlsbase), from the _thread_db_*
 * descriptors glibc builds into libc (2.34 on: its dynamic symbol table)
 * or libpthread (before: its symbol table), read from the files: no debug
 * information needed, libthread_db itself not loaded.  x86_64 layout.
 *
 * For the census (issue 15): the address of glibc's `tcache` of every
 * thread is hi_tls_address(thread, libc, offset) with the offset from
 * hi_sym_tls_symbol(libc, "tcache") where libc's symbol table is at hand
 * (its debug file); without it the census searches libc's block of each
 * thread (hi_tls_thread's blocks, PT_TLS size: a few hundred bytes) for
 * the word that points at a tcache_perthread_struct-shaped chunk, and
 * proves each entry, as the issue asks.  For the leak finder (issue 16):
 * each thread's static TLS blocks and the struct pthread at its thread
 * pointer are roots (labelled "TLS of thread N"), and its DTV (dtv - 16,
 * calloc'd for every thread but the first) and dynamic TLS blocks are
 * what some heap blocks hold.
 */
struct hi_tls;

/* A module with a PT_TLS segment. */
struct hi_tls_module {
	const char *name;      /* as struct hi_sym_module's */
	hi_addr_t start;       /* struct hi_sym_module's start: its key */
	struct hi_sym_module sym;
	hi_addr_t dynamic;     /* its PT_DYNAMIC in the target (l_ld) */
	uint64_t memsz;        /* PT_TLS: the block's size */
	uint64_t filesz;       /* of which initialised from the file */
	uint64_t align;
	/* From the link map, by hi_tls_load: 0 when not in it. */
	hi_addr_t link_map;
	uint64_t modid;        /* l_tls_modid: its DTV slot */
	uint64_t offset;       /* l_tls_offset: static TLS lies this far
				  below the thread pointer; 0 or -1: none */
};

/* A thread's TLS block of one module. */
struct hi_tls_block {
	size_t module;         /* index for hi_tls_module */
	hi_addr_t addr;
	uint64_t size;         /* the module's PT_TLS memsz */
	int is_static;         /* in the static TLS area (else malloc'd,
				  by __tls_get_addr after a dlopen) */
};

struct hi_tls_thread {
	pid_t tid;
	hi_addr_t tp;          /* the thread pointer given */
	hi_addr_t pthread;     /* its struct pthread (x86_64: tp) */
	uint64_t pthread_size; /* _thread_db_sizeof_pthread, 0 if absent */
	int tid_checked;       /* struct pthread's tid equals tid */
	hi_addr_t dtv;         /* &dtv[0] (the TCB's pointer) */
	uint64_t dtv_slots;    /* dtv[-1].counter */
	uint64_t dtv_gen;      /* dtv[0].counter */
	struct hi_tls_block *blocks; /* allocated ones only; malloc'd */
	size_t nblocks;
};

/*
 * Before the stop: find glibc's descriptors, ld.so's _r_debug and
 * _rtld_global, and every module's PT_TLS, from the files of sym's
 * modules.  Return 0 with *out set (free with hi_tls_close),
 * -HI_E_NOSYM when the descriptors or ld.so are missing (a static
 * program, or a libpthread stripped of its symbol table), -HI_E_LAYOUT
 * for descriptors this code does not understand, or -ENOMEM.
 */
int hi_tls_open(struct hi_sym *sym, struct hi_tls **out);
void hi_tls_close(struct hi_tls *tls);

/* The module whose symbol table gave the descriptors (for reports). */
const char *hi_tls_desc_module(const struct hi_tls *tls);

/*
 * In the stop: read the link map (r_debug.r_map) for every TLS module's
 * l_tls_modid and l_tls_offset.  At most 65,536 entries.  Return 0,
 * -HI_E_CORRUPT, or the reader's -errno.
 */
int hi_tls_load(struct hi_tls *tls, const struct hi_reader *r);

size_t hi_tls_nmodules(const struct hi_tls *tls);
const struct hi_tls_module *hi_tls_module(const struct hi_tls *tls,
					  size_t i);
/* The index of the module whose struct hi_sym_module starts at start. */
long hi_tls_find_module(const struct hi_tls *tls, hi_addr_t start);

/*
 * In the stop, after hi_tls_load: thread tid's TLS, from its thread
 * pointer tp (x86_64: fs_base, from the caller's ptrace).  glibc's
 * struct pthread at tp must say tid (or 0, a main thread libpthread never
 * set up), else -HI_E_CORRUPT.  Every module's block that exists for the
 * thread is listed: static ones always, dynamic ones once the thread
 * touched them (DTV slot set, generation current, as td_thr_tlsbase
 * checks).  Return 0 with out set (free with hi_tls_thread_free), or
 * -HI_E_CORRUPT, -ENOMEM, the reader's -errno.
 */
int hi_tls_thread(const struct hi_tls *tls, const struct hi_reader *r,
		  pid_t tid, hi_addr_t tp, struct hi_tls_thread *out);
void hi_tls_thread_free(struct hi_tls_thread *t);

/*
 * The address of the TLS variable at offset in module's block for thread
 * t.  Return 0, -ENOENT when the thread has no block of that module (not
 * touched yet: the variable still has its initial value, from the file),
 * -EINVAL when offset lies outside the block.
 */
int hi_tls_address(const struct hi_tls_thread *t, size_t module,
		   uint64_t offset, hi_addr_t *addr);

/*
 * The offset and size of the thread-local symbol name (STT_TLS) in its
 * module's TLS block, from the module's symbol table (glibc's `tcache`
 * is static: only in the .symtab of libc's debug file).  Return 0,
 * -HI_E_NOSYM or -HI_E_DWARF.
 */
int hi_sym_tls_symbol(const struct hi_sym_module *m, const char *name,
		      uint64_t *offset, uint64_t *size);

/*
 * What a heap block holds (symbols/what.c), for the records of `heapinspect
 * leaks`: from the block's first bytes (32 to 64, already read) and the
 * modules' symbol tables, no debug information needed, as chap's
 * signatures.
 */
struct hi_what;

enum hi_what_kind {
	HI_WHAT_UNKNOWN,
	HI_WHAT_CXX,     /* name: the class, demangled ("vtable for X") */
	HI_WHAT_PYTHON,  /* name: the type's tp_name; offset: of ob_type */
	HI_WHAT_TEXT,    /* name: the text (printable ASCII, NUL-ended) */
	HI_WHAT_MODULE,  /* name: the module a word points into; offset:
			    of that word */
};

struct hi_what_res {
	enum hi_what_kind kind;
	char name[128];
	size_t offset;
};

/*
 * Before the stop: every "_ZTV" symbol of every module (the C++
 * vtables, their classes demangled by the C++ runtime's __cxa_demangle
 * when libstdc++ is installed), CPython's PyType_Type, the modules'
 * ranges.  Return 0 with *out set (free with hi_what_close), or -ENOMEM.
 */
int hi_what_open(struct hi_sym *sym, struct hi_what **out);
void hi_what_close(struct hi_what *w);

/*
 * Before the stop, where the target runs CPython: the names of its static
 * type objects (every "*_Type" object whose type is PyType_Type), read
 * through r from the running target, so that in the stop only types made
 * at run time (classes) are read.  Return how many were found.
 */
int hi_what_prefill(struct hi_what *w, struct hi_sym *sym,
		    const struct hi_reader *r);

/*
 * What the block whose first len bytes are bytes holds: a C++ object
 * (its first word points inside a vtable symbol), a CPython object (a type
 * pointer at 8, 24 or 40 leads to a type object whose type is
 * PyType_Type, through at most two metaclasses, and whose tp_name is
 * text; read through r and kept, at most 1,024 types), a text, or a word
 * that points into a module; else UNKNOWN.  r may be NULL (only what
 * hi_what_prefill found).  The target must be stopped when r is given.
 * Return 0.
 */
int hi_what_block(struct hi_what *w, const unsigned char *bytes, size_t len,
		  const struct hi_reader *r, struct hi_what_res *out);

#endif
