/* SPDX-License-Identifier: MIT */
/*
 * Taking a snapshot.  Everything that does not need the target stopped
 * (finding libc, its debug information, the layout) happens before the
 * stop, so that the target is held only for reading its memory.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "output.h"
#include "snapshot.h"

static void set_err(struct hi_snapshot_err *err, int code, const char *detail)
{
	err->code = code;
	snprintf(err->detail, sizeof(err->detail), "%s", detail ? detail : "");
}

/* Whether the target's executable has no PT_INTERP: statically linked. */
static int exe_is_static(pid_t pid)
{
	char path[64];
	int fd, ret = 0;
	size_t phnum;
	Elf *elf;

	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	elf_version(EV_CURRENT);
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (elf && elf_getphdrnum(elf, &phnum) == 0) {
		ret = 1;
		for (size_t i = 0; i < phnum; i++) {
			GElf_Phdr ph;

			if (gelf_getphdr(elf, i, &ph) && ph.p_type == PT_INTERP)
				ret = 0;
		}
	}
	elf_end(elf);
	close(fd);
	return ret;
}

/* What a machine is called in a message. */
static const char *machine_name(unsigned machine, int class64)
{
	switch (machine) {
	case EM_386:
		return "a 32-bit x86 (i386) program";
	case EM_X86_64:
		return class64 ? "an x86_64 program"
			       : "an x32 program (x86_64 with 32-bit pointers)";
	case EM_AARCH64:
		return "a 64-bit Arm (aarch64) program";
	case EM_ARM:
		return "a 32-bit Arm program";
	case EM_RISCV:
		return "a RISC-V program";
	case EM_PPC64:
		return "a 64-bit POWER program";
	case EM_S390:
		return "an s390x program";
	default:
		return NULL;
	}
}

/*
 * Whether the executable carries the ELF note NT_GNU_ABI_TAG ("GNU"),
 * which glibc's start files put in every program linked with it
 * (csu/abi-note.S); musl's do not.
 */
static int exe_has_abi_tag(Elf *elf, size_t phnum)
{
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr ph;
		GElf_Nhdr nh;
		size_t off = 0, name_off, desc_off;
		Elf_Data *d;

		if (!gelf_getphdr(elf, i, &ph) || ph.p_type != PT_NOTE ||
		    ph.p_filesz > (1 << 20))
			continue;
		d = elf_getdata_rawchunk(elf, (int64_t)ph.p_offset,
					 ph.p_filesz, ELF_T_NHDR);
		if (!d)
			continue;
		while (off < d->d_size &&
		       (off = gelf_getnote(d, off, &nh, &name_off,
					   &desc_off)) > 0) {
			if (nh.n_type == NT_GNU_ABI_TAG && nh.n_namesz == 4 &&
			    memcmp((char *)d->d_buf + name_off, "GNU", 4) == 0)
				return 1;
		}
	}
	return 0;
}

int hi_exe_check(pid_t pid, char *detail, size_t size)
{
	const struct hi_arch_ops *arch = hi_arch_host();
	char path[64], interp[256] = "";
	int fd, ret = 0, is_static = 1, class64;
	size_t phnum;
	GElf_Ehdr eh;
	Elf *elf;

	detail[0] = '\0';
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0; /* attaching will say why, or another check */
	elf_version(EV_CURRENT);
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!elf || !gelf_getehdr(elf, &eh))
		goto out;
	class64 = eh.e_ident[EI_CLASS] == ELFCLASS64;
	if (arch && (eh.e_machine != arch->e_machine ||
		     class64 != (arch->ptr_size == 8))) {
		const char *what = machine_name(eh.e_machine, class64);
		char other[64];

		if (!what) {
			snprintf(other, sizeof(other), "a program for another "
				 "architecture (ELF machine %u)",
				 (unsigned)eh.e_machine);
			what = other;
		}
		snprintf(detail, size, "is %s: heapinspect reads %s processes "
			 "only", what, arch->name);
		ret = -HI_E_UNSUPPORTED;
		goto out;
	}
	if (elf_getphdrnum(elf, &phnum) != 0)
		goto out;
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, i, &ph) || ph.p_type != PT_INTERP)
			continue;
		is_static = 0;
		if (pread(fd, interp, sizeof(interp) - 1,
			  (off_t)ph.p_offset) > 0)
			interp[sizeof(interp) - 1] = '\0';
		else
			interp[0] = '\0';
	}
	/* musl's dynamic loader is its libc: ld-musl-ARCH.so.1. */
	if (strstr(interp, "ld-musl")) {
		char safe[256];

		/* A path from the target's file: escaped for a terminal. */
		snprintf(detail, size, "is a musl program (its loader is %.200s):"
			 " heapinspect reads glibc's malloc only",
			 hi_safe_str(interp, safe, sizeof(safe)));
		ret = -HI_E_UNSUPPORTED;
		goto out;
	}
	if (is_static) {
		if (exe_has_abi_tag(elf, phnum))
			snprintf(detail, size, "is a statically linked glibc "
				 "program: heapinspect reads glibc's malloc "
				 "through the libc.so.6 mapped in a process, "
				 "and a static program has none");
		else
			snprintf(detail, size, "is statically linked, and not "
				 "with glibc (musl or another libc): "
				 "heapinspect reads glibc's malloc only");
		/* Only said when no glibc libc.so turns up after all. */
		ret = -HI_E_STATIC;
	}
out:
	if (elf)
		elf_end(elf);
	close(fd);
	return ret;
}

/* Whether pc lies in one of the ranges. */
static int in_ranges(hi_addr_t pc, hi_addr_t (*r)[2], int n)
{
	for (int i = 0; i < n; i++) {
		if (pc >= r[i][0] && pc < r[i][1])
			return 1;
	}
	return 0;
}

/*
 * A process that has never had a second thread runs malloc without taking
 * any lock (SINGLE_THREAD_P in __libc_malloc and _int_free, glibc 2.26 and
 * later), so its lock word says nothing: a lone thread stopped inside
 * malloc.c's code may be in the middle of relinking a list.  So may the
 * child of its vfork(), which runs in its memory with its thread pointer.
 * A thread held asleep in the kernel (target.c) has the PC it entered the
 * kernel with; one whose PC is not known is taken to be inside.
 */
static int lone_thread_in_malloc(struct hi_target *t,
				 const struct hi_arch_ops *arch,
				 hi_addr_t (*code)[2], int ncode)
{
	hi_addr_t pc;

	if (!arch || ncode <= 0 || hi_target_nthreads(t) != 1)
		return 0;
	for (size_t i = 0; i < t->nthreads; i++) {
		const struct hi_thread *th = &t->threads[i];

		if (th->gone || !th->seized)
			continue;
		if (!th->stopped) {
			if (!th->pc_valid || in_ranges(th->pc, code, ncode))
				return 1;
			continue;
		}
		if (arch->get_pc(th->tid, &pc) == 0 &&
		    in_ranges(pc, code, ncode))
			return 1;
	}
	return 0;
}

/*
 * Whether the process's auxv is no longer the one read before.  An empty
 * one was read in the middle of an execve (between exec_mmap and
 * create_elf_tables): any auxv read later is another.
 */
static int execed(pid_t pid, const unsigned char *auxv, ssize_t len)
{
	unsigned char now[4096];
	ssize_t n;

	if (len < 0)
		return 0;
	n = hi_proc_auxv(pid, now, sizeof(now));
	return n > 0 && (n != len || memcmp(now, auxv, n) != 0);
}

/*
 * After a failed stop: an execve kills the other threads first (de_thread)
 * and sets up the new auxv a moment later (create_elf_tables), so give it
 * up to 100 ms before deciding it was not an exec.
 */
static int execed_after_failure(pid_t pid, const unsigned char *auxv,
				ssize_t len)
{
	for (int i = 0; i < 10; i++) {
		struct timespec ts = { 0, 10000000L };

		if (execed(pid, auxv, len))
			return 1;
		if (kill(pid, 0) != 0)
			return 0;
		nanosleep(&ts, NULL);
	}
	return 0;
}

static void pause_between(unsigned attempt)
{
	unsigned ms = 1u << (attempt < 6 ? attempt : 6);
	struct timespec ts = { 0, (long)(ms > 50 ? 50 : ms) * 1000000L };

	nanosleep(&ts, NULL);
}

/*
 * Addresses that need proof (from the layout cache or found without
 * symbols) are proven while the target still runs, where that works, so
 * that the stop is only for reading: the checks read a few hundred pages
 * (every bin's ends), which took about 0.7 ms of a 2.6 ms stop.  Nothing
 * read here is used in the stop: its reader and maps are its own.
 */
static void preverify(pid_t pid, struct hi_alloc_ctx *ctx,
		      const struct hi_allocator_ops *ops)
{
	struct hi_maps maps = { 0 };
	struct hi_reader reader;
	struct hi_mem mem;

	if (!ops->preverify || hi_proc_maps(pid, &maps))
		return;
	hi_mem_init(&mem, pid);
	mem.maps = &maps;
	reader = hi_mem_reader(&mem);
	ctx->reader = &reader;
	ctx->maps = &maps;
	ops->preverify(ctx);
	ctx->reader = NULL;
	ctx->maps = NULL;
	hi_mem_fini(&mem);
	free(maps.v);
}

/*
 * Fault in, before the stop, the memory heapinspect will need in it: every
 * page of its own that it touches for the first time while the target is
 * held (a block of the reader's cache, a window, a table) costs a page
 * fault, about 1.4 us here, and a 10k-chunk heap took 250 of them in a
 * 1.5 ms read.  Large blocks stay in heapinspect's heap rather than in
 * mappings of their own, freed memory is not given back, and the sweep's
 * helper threads allocate from that heap too (one arena), so that the
 * pages touched here are the ones used in the stop: about 1/16 of the
 * target's resident memory, 1 to 24 MiB.  The sweep's tables of chunks in
 * bins (ptmalloc_sweep.c) take about 13 MiB for the 1M-chunk heap of
 * bench/, which made 2,000 faults in its stop with 8 MiB and one arena a
 * thread, and none so.
 */
#define WARM_MIN (1ul << 20)
#define WARM_MAX (24ul << 20)
/* The largest glibc allows (HEAP_MAX_SIZE / 2), above WARM_MAX. */
#define MMAP_THRESHOLD (32ul << 20)

static void warm_own_heap(pid_t pid)
{
	static int tuned;
	unsigned long size, resident = 0;
	size_t want, page = (size_t)sysconf(_SC_PAGESIZE);
	char path[64];
	volatile char *p;
	FILE *f;

	if (!tuned) {
		mallopt(M_MMAP_THRESHOLD, (int)MMAP_THRESHOLD);
		mallopt(M_TRIM_THRESHOLD, (int)(8 * WARM_MAX));
		mallopt(M_ARENA_MAX, 1);
		tuned = 1;
	}
	snprintf(path, sizeof(path), "/proc/%d/statm", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return;
	if (fscanf(f, "%lu %lu", &size, &resident) != 2)
		resident = 0;
	fclose(f);
	want = resident / 16 * page;
	want = want < WARM_MIN ? WARM_MIN : want > WARM_MAX ? WARM_MAX : want;
	p = malloc(want);
	if (!p)
		return;
	for (size_t i = 0; i < want; i += page)
		p[i] = 0;
	free((void *)p);
}

/* $XDG_CACHE_HOME/heapinspect, or ~/.cache/heapinspect (XDG base dirs). */
static int layout_cache_dir(char *buf, size_t size)
{
	const char *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
	int n;

	if (x && x[0] == '/')
		n = snprintf(buf, size, "%s/heapinspect", x);
	else if (h && h[0] == '/')
		n = snprintf(buf, size, "%s/.cache/heapinspect", h);
	else
		return -1;
	return n > 0 && (size_t)n < size ? 0 : -1;
}

/*
 * Why --method auto calls instead of reading: what locate missed last (no
 * built-in table for the version, or none that fits libc's file), then why
 * the methods before it failed (no debug information, or debug information
 * that does not describe a malloc heapinspect knows).
 */
static void auto_call_reason(struct hi_snapshot *s,
			     const struct hi_alloc_ctx *ctx, int ret)
{
	char *b = s->method_why_buf;
	size_t size = sizeof(s->method_why_buf), n;

	if (ret == -HI_E_NODEBUG)
		n = (size_t)snprintf(b, size, "no debug information for "
				     "libc");
	else if (ret == -HI_E_NOVERSION || ret == -HI_E_VERIFY)
		n = (size_t)snprintf(b, size, "%s", ctx->why);
	else
		n = (size_t)snprintf(b, size, "libc's debug information does "
				     "not describe malloc as expected: %s",
				     ctx->why);
	for (unsigned i = 0; i < ctx->ntried && n < size; i++)
		n += (size_t)snprintf(b + n, size - n, "; %s", ctx->tried[i]);
	s->method_why = b;
}

void hi_snapshot_opts_default(struct hi_snapshot_opts *o, pid_t pid,
			      char *cache_dir, size_t cache_dir_size)
{
	memset(o, 0, sizeof(*o));
	o->pid = pid;
	o->attempts = 10;
	o->stop_timeout_ms = 2000;
	o->method = HI_METHOD_AUTO;
	o->timeout_ms = 5000;
	o->locate_flags = HI_LOCATE_DWARF | HI_LOCATE_BUILTIN;
	if (cache_dir && layout_cache_dir(cache_dir, cache_dir_size) == 0) {
		o->cache_dir = cache_dir;
		o->locate_flags |= HI_LOCATE_CACHE;
	}
}

static int snapshot_take(const struct hi_snapshot_opts *o,
			 struct hi_snapshot *s, struct hi_snapshot_err *err)
{
	const struct hi_allocator_ops *ops = NULL;
	const struct hi_arch_ops *arch = hi_arch_host();
	struct hi_alloc_ctx ctx;
	struct hi_procinfo info;
	struct hi_target t;
	struct hi_maps maps = { 0 };
	struct hi_reader reader;
	hi_addr_t(*code)[2] = NULL;
	unsigned char auxv[4096];
	ssize_t auxv_len;
	int ncode = 0, ret, refused = 0;
	char path[64];
	ssize_t n;

	memset(s, 0, sizeof(*s));
	memset(err, 0, sizeof(*err));
	memset(&ctx, 0, sizeof(ctx));
	s->pid = o->pid;

	ret = hi_proc_info(o->pid, &info);
	if (ret) {
		set_err(err, ret, NULL);
		return ret;
	}
	err->state = info.state;
	err->tracer = info.tracer;
	if (o->only.known && hi_proc_id_alive(&o->only) != 1) {
		set_err(err, -HI_E_EXITED, NULL);
		return -HI_E_EXITED;
	}
	if (info.kthread) {
		set_err(err, -HI_E_KTHREAD, info.comm);
		return -HI_E_KTHREAD;
	}
	if (info.state == 'Z' || info.state == 'X') {
		set_err(err, -HI_E_ZOMBIE, info.comm);
		return -HI_E_ZOMBIE;
	}
	snprintf(s->comm, sizeof(s->comm), "%s", info.comm);
	/* Who it is: left unknown (id.known 0) when it cannot be read. */
	hi_proc_id_read(o->pid, &s->id);
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)o->pid);
	n = readlink(path, s->exe, sizeof(s->exe) - 1);
	s->exe[n > 0 ? n : 0] = '\0';
	/* Another architecture or libc: say so before anything else. */
	ret = hi_exe_check(o->pid, err->detail, sizeof(err->detail));
	if (ret == -HI_E_UNSUPPORTED) {
		err->code = ret;
		return ret;
	}
	err->detail[0] = '\0';

	/*
	 * Everything below is located in the program the process runs now;
	 * if it executes another one before it is stopped, the addresses
	 * mean nothing there.  The auxiliary vector tells (target.h).
	 */
	auxv_len = hi_proc_auxv(o->pid, auxv, sizeof(auxv));
	ctx.pid = o->pid;
	/*
	 * How free chunks are counted: following the lists, or reading the
	 * heap from end to end; by default whichever costs less.  The tests
	 * force each way with this, to prove both give glibc's figures.
	 */
	{
#ifdef HI_TEST_HOOKS
		const char *walk = getenv("HEAPINSPECT_WALK");
#else
		const char *walk = NULL; /* a test hook: not when shipped */
#endif

		ctx.walk = !walk ? 0 : strcmp(walk, "lists") == 0 ? 1
			 : strcmp(walk, "sweep") == 0 ? 2 : 0;
	}
	ctx.flags = o->locate_flags;
	ctx.cache_dir = o->cache_dir;
	ret = hi_sym_open(o->pid, o->debuginfo_path, &ctx.sym);
	if (ret) {
		/* libdwfl reads the auxv too: mid-execve it is unreadable. */
		if (execed_after_failure(o->pid, auxv, auxv_len))
			ret = -HI_E_EXECED;
		set_err(err, ret, NULL);
		return ret;
	}
	/*
	 * A dynamically linked program that has just been started (or has
	 * just executed another) has its loader mapped before its libc:
	 * look again for a moment before saying it has no glibc.
	 */
	for (int look = 0;; look++) {
		for (size_t i = 0; hi_allocators[i]; i++) {
			ret = hi_allocators[i]->probe(&ctx);
			if (ret > 0) {
				ops = hi_allocators[i];
				break;
			}
			if (ret == 0 && ctx.why[0])
				refused = 1;
			if (ret < 0 && ret != -HI_E_NOLIBC)
				goto out_sym;
		}
		if (ops || refused || look == 10 || exe_is_static(o->pid))
			break;
		{
			struct timespec ts = { 0, 10000000L };

			nanosleep(&ts, NULL);
		}
		hi_sym_close(ctx.sym);
		ctx.sym = NULL;
		ret = hi_sym_open(o->pid, o->debuginfo_path, &ctx.sym);
		if (ret) {
			if (execed_after_failure(o->pid, auxv, auxv_len))
				ret = -HI_E_EXECED;
			set_err(err, ret, NULL);
			return ret;
		}
	}
	if (!ops) {
		if (refused)
			ret = -HI_E_OTHERALLOC;
		else if (execed_after_failure(o->pid, auxv, auxv_len))
			ret = -HI_E_EXECED;
		else if (exe_is_static(o->pid)) {
			ret = -HI_E_STATIC;
			hi_exe_check(o->pid, ctx.why, sizeof(ctx.why));
		} else
			ret = -HI_E_NOLIBC;
		goto out_sym;
	}
	s->allocator = ops->name;
	s->method = "read";
	ret = ops->locate(&ctx);
	snprintf(s->version, sizeof(s->version), "%s", ctx.version);
	snprintf(s->libc_path, sizeof(s->libc_path), "%s", ctx.libc_path);
	snprintf(s->build_id, sizeof(s->build_id), "%s", ctx.build_id);
	snprintf(s->debug_file, sizeof(s->debug_file), "%s", ctx.debug_file);
	/*
	 * No layout to read (a version without a built-in table and no debug
	 * information for it, debug information that does not describe a
	 * malloc heapinspect knows, a built-in table that libc's file does
	 * not fit): the allocator's own answer, by a call, with every safety
	 * of --method call.  Where the call cannot be made either (no
	 * mallinfo in libc), what locate said is the error.
	 */
	if (o->method == HI_METHOD_AUTO && ret && ops->functions &&
	    (ret == -HI_E_NODEBUG || ret == -HI_E_NOSYM ||
	     ret == -HI_E_LAYOUT || ret == -HI_E_DWARF ||
	     ret == -HI_E_NOVERSION || ret == -HI_E_VERIFY)) {
		int located = ret;
		char why[sizeof(ctx.why)];

		memcpy(why, ctx.why, sizeof(why));
		auto_call_reason(s, &ctx, ret);
		ret = hi_snapshot_by_call(o, s, &ctx, ops, 0);
		if (ret == -HI_E_NOSYM && !s->called) {
			s->method_why = NULL;
			memcpy(ctx.why, why, sizeof(why));
			ret = located;
		}
		goto out_ops;
	}
	if (o->method == HI_METHOD_CALL) {
		ret = hi_snapshot_by_call(o, s, &ctx, ops, ret == 0);
		goto out_ops;
	}
	if (ret)
		goto out_ops;
	if (ops->code_ranges) {
		ncode = ops->code_ranges(&ctx, &code);
		if (ncode < 0)
			ncode = 0; /* only the lock words will be checked */
	}

	preverify(o->pid, &ctx, ops);
	warm_own_heap(o->pid);
	hi_target_init(&t, o->pid);
	/* A read needs no registers: a thread asleep in the kernel is held. */
	t.kernel_held_ok = 1;
	reader = hi_target_reader(&t);
	ctx.reader = &reader;
	ctx.maps = &maps;
	for (unsigned attempt = 1;; attempt++) {
		int busy, last = attempt >= o->attempts;

		ret = hi_target_stop(&t, o->stop_timeout_ms);
		if (ret) {
			/* An execve kills the other threads: a stop fails. */
			if (execed_after_failure(o->pid, auxv, auxv_len))
				ret = -HI_E_EXECED;
			goto out_target;
		}
		if (execed(o->pid, auxv, auxv_len)) {
			ret = -HI_E_EXECED;
			goto out_resume;
		}
		/* Held, its pid cannot go to another process: the last check. */
		if (o->only.known && hi_proc_id_alive(&o->only) != 1) {
			ret = -HI_E_EXITED;
			goto out_resume;
		}
		clock_gettime(CLOCK_REALTIME, &s->when);
		s->attempts = attempt;
		free(maps.v);
		ret = hi_proc_maps(o->pid, &maps);
		if (ret)
			goto out_resume;
		t.mem.maps = &maps;
		s->pc_busy = lone_thread_in_malloc(&t, arch, code, ncode);
		/*
		 * Addresses found without symbols are used only once they
		 * are proven; a state caught in the middle of an update may
		 * fail the checks, so a failure while an arena is locked
		 * means "try again".
		 */
		ret = ops->verify ? ops->verify(&ctx, s->pc_busy) : 0;
		if (ret == -HI_E_BUSY && !last) {
			hi_target_resume(&t);
			pause_between(attempt);
			continue;
		}
		if (ret == -HI_E_BUSY) {
			snprintf(ctx.why, sizeof(ctx.why), "the allocator was "
				 "busy in all %u attempts: its state could "
				 "not be verified", attempt);
			ret = -HI_E_VERIFY;
		}
		if (ret)
			goto out_resume;
		busy = ops->busy(&ctx);
		if (busy < 0 && busy != -HI_E_CORRUPT) {
			ret = busy;
			goto out_resume;
		}
		if ((busy <= 0 && !s->pc_busy) || last) {
			ret = ops->read(&ctx, 1, &s->heap);
			if (ret == -HI_E_CORRUPT)
				snprintf(ctx.why, sizeof(ctx.why),
					 HI_PRIxADDR ": %s", s->heap.bad_addr,
					 s->heap.why);
			break;
		}
		hi_target_resume(&t);
		pause_between(attempt);
	}
	if (ret == 0 && s->pc_busy) {
		for (size_t i = 0; i < s->heap.narenas; i++)
			s->heap.arenas[i].status = -HI_E_BUSY;
		s->heap.complete = 0;
		memset(&s->heap.mi, 0, sizeof(s->heap.mi));
	}
	s->threads_stopped = hi_target_nthreads(&t);
	for (size_t i = 0; i < t.nthreads; i++) {
		const struct hi_thread *th = &t.threads[i];

		if (th->gone || !th->seized)
			continue;
		if (th->sharer)
			s->sharers_held++;
		else if (!th->stopped)
			s->threads_in_kernel++;
	}
out_resume:
	{
		int r = hi_target_resume(&t);

		if (!ret && r)
			ret = r;
	}
out_target:
	s->pause_us = t.pause_max_us;
	s->pause_total_us = t.pause_total_us;
	s->reads = t.mem.reads;
	hi_target_fini(&t);
	free(maps.v);
	free(code);
	if (ret != -HI_E_EXECED &&
	    (ret == -ESRCH || (ret && kill(o->pid, 0) != 0 && errno == ESRCH)))
		ret = -HI_E_EXITED;
	if (ret == 0 && hi_proc_memstat(o->pid, &s->mem) == -ESRCH)
		ret = -HI_E_EXITED;
out_ops:
	if (ret && ret != -HI_E_UNSOUND)
		hi_heap_free(&s->heap);
	ops->release(&ctx);
	s->loc = ctx;
	s->loc.sym = NULL;
	s->loc.priv = NULL;
	s->loc.reader = NULL;
	s->loc.maps = NULL;
out_sym:
	if (ret) {
		if (ret == -HI_E_NODEBUG)
			set_err(err, ret, ctx.build_id);
		else
			set_err(err, ret, ctx.why);
	}
	hi_sym_close(ctx.sym);
	return ret;
}

struct take {
	const struct hi_snapshot_opts *o;
	struct hi_snapshot *s;
	struct hi_snapshot_err *err;
};

static int take_in_session(void *arg)
{
	struct take *a = arg;

	return snapshot_take(a->o, a->s, a->err);
}

int hi_snapshot_take(const struct hi_snapshot_opts *o, struct hi_snapshot *s,
		     struct hi_snapshot_err *err)
{
	struct take a = { o, s, err };
	int ret, r;

	memset(s, 0, sizeof(*s));
	memset(err, 0, sizeof(*err));
	r = hi_target_session(take_in_session, &a, &ret);
	if (r) {
		set_err(err, r, NULL);
		return r;
	}
	hi_target_last_why(&err->stop);
	if (ret && err->stop.code == ret)
		err->tracer = err->stop.tracer;
	else
		memset(&err->stop, 0, sizeof(err->stop));
	return ret;
}

void hi_snapshot_free(struct hi_snapshot *s)
{
	hi_heap_free(&s->heap);
}
