/* SPDX-License-Identifier: MIT */
/*
 * hi_tls_probe - read the thread-local storage of a running hi_tls with
 * symbols/tls.c, for tests/live/tls.py, and hold it to glibc's own
 * libthread_db where that loads.
 *
 * Usage: hi_tls_probe PID [DEBUGINFO_PATH]
 *
 * Stops every thread of PID (hi_target_stop), and for each writes
 *
 *   thread tid=<tid> exe=<a> dyn=<a|0> tcache80=<a|none>
 *
 * exe and dyn: the addresses of hi_exe_tls (the program's) and hi_dyn_tls
 * (libhi_tlsdyn.so's) for that thread, offsets from the modules' symbol
 * tables; tcache80: entries[3] of the tcache_perthread_struct that
 * glibc's `tcache` of that thread points at (its offset from libc's debug
 * file, the struct's layout from libc's DWARF), "none" without them.
 * Then, when the target's libthread_db.so.1 (beside its libc) loads into
 * this program, td_thr_tlsbase of every TLS module of every thread,
 * compared with hi_tls_thread's:
 *
 *   tdb agrees <n>     or   tdb disagrees <what>   or   tdb skip <why>
 *
 * Exit status 0, or 2 with a message.
 */
#include <dlfcn.h>
#include <errno.h>
#include <libgen.h>
#include <proc_service.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/reg.h>
#include <sys/user.h>
#include <thread_db.h>

#include "symbols.h"
#include "target.h"

static struct hi_target target;
static struct hi_reader reader;
static struct hi_sym *sym;

static int fs_base(pid_t tid, hi_addr_t *tp)
{
	struct user_regs_struct regs;

	if (ptrace(PTRACE_GETREGS, tid, NULL, &regs))
		return -errno;
	*tp = regs.fs_base;
	return 0;
}

struct find {
	const char *suffix;
	struct hi_sym_module m;
	int found;
};

static int find_cb(const struct hi_sym_module *m, void *arg)
{
	struct find *f = arg;
	const char *base = strrchr(m->name, '/');
	size_t n = strlen(f->suffix);

	base = base ? base + 1 : m->name;
	if (strncmp(base, f->suffix, n) == 0 &&
	    (base[n] == '\0' || base[n] == '.' || base[n] == '-' ||
	     base[n] == '_')) {
		f->m = *m;
		f->found = 1;
		return 1;
	}
	return 0;
}

static int find_module(const char *prefix, struct hi_sym_module *m)
{
	struct find f = { .suffix = prefix };

	hi_sym_each_module(sym, find_cb, &f);
	if (f.found)
		*m = f.m;
	return f.found ? 0 : -ENOENT;
}

/* --- proc_service for libthread_db: read-only, from the stopped target */

struct ps_prochandle {
	pid_t pid;
};

struct lookup {
	const char *obj, *name;
	psaddr_t addr;
	int found;
};

static int lookup_cb(const struct hi_sym_module *m, void *arg)
{
	struct lookup *l = arg;
	hi_addr_t addr;
	uint64_t size;
	const char *base = strrchr(m->name, '/');

	base = base ? base + 1 : m->name;
	/* libthread_db names LIBC_SO, LIBPTHREAD_SO or LD_SO, or NULL */
	if (l->obj && strcmp(base, l->obj) != 0 &&
	    !(strncmp(l->obj, "libc.", 5) == 0 &&
	      strncmp(base, "libc", 4) == 0 && (base[4] == '.' ||
						base[4] == '-')) &&
	    !(strncmp(l->obj, "libpthread", 10) == 0 &&
	      strncmp(base, "libpthread", 10) == 0) &&
	    !(strncmp(l->obj, "ld-linux", 8) == 0 &&
	      strncmp(base, "ld-", 3) == 0))
		return 0;
	if (hi_sym_symbol(m, l->name, &addr, &size))
		return 0;
	l->addr = (psaddr_t)addr;
	l->found = 1;
	return 1;
}

ps_err_e ps_pglobal_lookup(struct ps_prochandle *ph, const char *obj,
			   const char *name, psaddr_t *addr)
{
	struct lookup l = { .obj = obj, .name = name };

	(void)ph;
	hi_sym_each_module(sym, lookup_cb, &l);
	/* As gdb's ps_pglobal_lookup, which ignores obj: from glibc 2.34
	 * libthread_db still names libpthread.so.0 for what moved to libc. */
	if (!l.found) {
		l.obj = NULL;
		hi_sym_each_module(sym, lookup_cb, &l);
	}
	if (getenv("HI_TLS_PROBE_DEBUG"))
		fprintf(stderr, "lookup %s %s: %s\n", obj ? obj : "-", name,
			l.found ? "found" : "missing");
	if (!l.found)
		return PS_NOSYM;
	*addr = l.addr;
	return PS_OK;
}

ps_err_e ps_pdread(struct ps_prochandle *ph, psaddr_t addr, void *buf,
		   size_t len)
{
	(void)ph;
	return hi_read(&reader, (hi_addr_t)addr, buf, len) ? PS_ERR : PS_OK;
}

ps_err_e ps_pdwrite(struct ps_prochandle *ph, psaddr_t addr, const void *buf,
		    size_t len)
{
	(void)ph;
	(void)addr;
	(void)buf;
	(void)len;
	return PS_ERR; /* read-only */
}

ps_err_e ps_lgetregs(struct ps_prochandle *ph, lwpid_t lwp, prgregset_t regs)
{
	(void)ph;
	return ptrace(PTRACE_GETREGS, lwp, NULL, regs) ? PS_ERR : PS_OK;
}

ps_err_e ps_lsetregs(struct ps_prochandle *ph, lwpid_t lwp,
		     const prgregset_t regs)
{
	(void)ph;
	(void)lwp;
	(void)regs;
	return PS_ERR;
}

ps_err_e ps_lgetfpregs(struct ps_prochandle *ph, lwpid_t lwp,
		       prfpregset_t *regs)
{
	(void)ph;
	(void)lwp;
	(void)regs;
	return PS_ERR;
}

ps_err_e ps_lsetfpregs(struct ps_prochandle *ph, lwpid_t lwp,
		       const prfpregset_t *regs)
{
	(void)ph;
	(void)lwp;
	(void)regs;
	return PS_ERR;
}

pid_t ps_getpid(struct ps_prochandle *ph)
{
	return ph->pid;
}

ps_err_e ps_get_thread_area(struct ps_prochandle *ph, lwpid_t lwp, int idx,
			    void **base)
{
	hi_addr_t tp;

	(void)ph;
	if (idx != FS || fs_base(lwp, &tp))
		return PS_ERR;
	*base = (void *)tp;
	return PS_OK;
}

/* --- the probe */

struct tdb {
	void *dl;
	td_err_e (*init)(void);
	td_err_e (*ta_new)(struct ps_prochandle *, td_thragent_t **);
	td_err_e (*map)(const td_thragent_t *, lwpid_t, td_thrhandle_t *);
	td_err_e (*tlsbase)(const td_thrhandle_t *, unsigned long,
			    psaddr_t *);
	td_thragent_t *ta;
	char why[4400];
	int agree, disagree;
	char first[4400];
};

static void tdb_open(struct tdb *t, struct ps_prochandle *ph,
		     const struct hi_sym_module *libc)
{
	char path[4200], dir[4096];

	snprintf(dir, sizeof(dir), "%s", libc->name);
	snprintf(path, sizeof(path), "%s/libthread_db.so.1", dirname(dir));
	t->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!t->dl) {
		snprintf(t->why, sizeof(t->why), "%s", dlerror());
		return;
	}
	t->init = (td_err_e(*)(void))dlsym(t->dl, "td_init");
	t->ta_new = (td_err_e(*)(struct ps_prochandle *,
				 td_thragent_t **))dlsym(t->dl, "td_ta_new");
	t->map = (td_err_e(*)(const td_thragent_t *, lwpid_t,
			      td_thrhandle_t *))dlsym(t->dl,
						      "td_ta_map_lwp2thr");
	t->tlsbase = (td_err_e(*)(const td_thrhandle_t *, unsigned long,
				  psaddr_t *))dlsym(t->dl, "td_thr_tlsbase");
	if (!t->init || !t->ta_new || !t->map || !t->tlsbase) {
		snprintf(t->why, sizeof(t->why), "libthread_db lacks a "
			 "function");
		return;
	}
	t->init();
	if (t->ta_new(ph, &t->ta) != TD_OK) {
		/* loaded, but refused the target: that is a disagreement */
		t->ta = NULL;
		t->disagree++;
		snprintf(t->first, sizeof(t->first), "td_ta_new failed");
	}
}

static void tdb_thread(struct tdb *t, const struct hi_tls *tls,
		       const struct hi_tls_thread *th)
{
	td_thrhandle_t h;

	if (!t->ta)
		return;
	if (t->map(t->ta, th->tid, &h) != TD_OK) {
		t->disagree++;
		snprintf(t->first, sizeof(t->first),
			 "td_ta_map_lwp2thr failed for %d", th->tid);
		return;
	}
	for (size_t i = 0; i < hi_tls_nmodules(tls); i++) {
		const struct hi_tls_module *m = hi_tls_module(tls, i);
		psaddr_t base = 0;
		td_err_e e;
		hi_addr_t mine = 0;
		int have = 0;

		if (!m->modid)
			continue;
		for (size_t k = 0; k < th->nblocks; k++) {
			if (th->blocks[k].module == i) {
				mine = th->blocks[k].addr;
				have = 1;
			}
		}
		e = t->tlsbase(&h, m->modid, &base);
		if ((e == TD_OK) == have &&
		    (!have || (hi_addr_t)base == mine)) {
			t->agree++;
			continue;
		}
		t->disagree++;
		if (!t->first[0])
			snprintf(t->first, sizeof(t->first),
				 "thread %d module %s: libthread_db %s %#lx, "
				 "hi_tls %s %#llx", th->tid, m->name,
				 e == TD_OK ? "says" : "has no block, error",
				 e == TD_OK ? (unsigned long)base
					    : (unsigned long)e,
				 have ? "says" : "has none",
				 (unsigned long long)mine);
	}
}

int main(int argc, char **argv)
{
	struct hi_sym_module exe, dyn, libc;
	struct hi_sym_type tt, et;
	struct hi_tls *tls = NULL;
	struct ps_prochandle ph;
	struct tdb tdb = { 0 };
	uint64_t exe_off, dyn_off, tc_off = 0, sz, entries_off = 0, esz, cnt;
	long exe_i, dyn_i, libc_i;
	int have_tcache = 0, ret, status = 0;
	pid_t pid;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: hi_tls_probe PID [DEBUGINFO_PATH]\n");
		return 64;
	}
	pid = (pid_t)atoi(argv[1]);
	ph.pid = pid;
	ret = hi_sym_open(pid, argc == 3 ? argv[2] : NULL, &sym);
	if (ret) {
		fprintf(stderr, "hi_tls_probe: cannot read modules: %s\n",
			hi_strerror(ret));
		return 2;
	}
	if (find_module("hi_tls", &exe) || find_module("libhi_tlsdyn", &dyn) ||
	    find_module("libc", &libc)) {
		fprintf(stderr, "hi_tls_probe: a module is missing\n");
		return 2;
	}
	if ((ret = hi_sym_tls_symbol(&exe, "hi_exe_tls", &exe_off, &sz)) ||
	    (ret = hi_sym_tls_symbol(&dyn, "hi_dyn_tls", &dyn_off, &sz))) {
		fprintf(stderr, "hi_tls_probe: no TLS symbol: %s\n",
			hi_strerror(ret));
		return 2;
	}
	/* glibc's tcache: with libc's debug file only */
	if ((ret = hi_sym_load_debug(&libc, &(struct hi_sym_debug){ 0 })))
		fprintf(stderr, "hi_tls_probe: no debug file for libc\n");
	else if ((ret = hi_sym_tls_symbol(&libc, "tcache", &tc_off, &sz)))
		fprintf(stderr, "hi_tls_probe: libc's tcache: %s\n",
			hi_strerror(ret));
	else if ((ret = hi_sym_type_named(&libc, "malloc.c",
					  "tcache_perthread_struct", &tt)) ||
		 (ret = hi_sym_member(&tt, "entries", &entries_off, &esz,
				      &cnt, &et)))
		fprintf(stderr, "hi_tls_probe: tcache_perthread_struct: %s\n",
			hi_strerror(ret));
	else
		have_tcache = 1;
	ret = hi_tls_open(sym, &tls);
	if (ret) {
		fprintf(stderr, "hi_tls_probe: hi_tls_open: %s\n",
			hi_strerror(ret));
		return 2;
	}
	exe_i = hi_tls_find_module(tls, exe.start);
	dyn_i = hi_tls_find_module(tls, dyn.start);
	libc_i = hi_tls_find_module(tls, libc.start);
	if (exe_i < 0 || dyn_i < 0 || libc_i < 0) {
		fprintf(stderr, "hi_tls_probe: a module has no PT_TLS\n");
		return 2;
	}

	hi_target_init(&target, pid);
	ret = hi_target_stop(&target, 5000);
	if (ret) {
		fprintf(stderr, "hi_tls_probe: cannot stop %d: %s\n", pid,
			hi_strerror(ret));
		hi_target_fini(&target);
		return 2;
	}
	reader = hi_target_reader(&target);
	ret = hi_tls_load(tls, &reader);
	if (ret) {
		fprintf(stderr, "hi_tls_probe: hi_tls_load: %s\n",
			hi_strerror(ret));
		status = 2;
		goto out;
	}
	tdb_open(&tdb, &ph, &libc);
	for (size_t i = 0; i < target.nthreads; i++) {
		struct hi_thread *th = &target.threads[i];
		struct hi_tls_thread t;
		hi_addr_t tp, a_exe = 0, a_dyn = 0, a_tc;
		char tc[32] = "none";

		if (th->gone)
			continue;
		ret = fs_base(th->tid, &tp);
		if (!ret)
			ret = hi_tls_thread(tls, &reader, th->tid, tp, &t);
		if (ret) {
			fprintf(stderr, "hi_tls_probe: thread %d: %s\n",
				th->tid, hi_strerror(ret));
			status = 2;
			goto out;
		}
		hi_tls_address(&t, (size_t)exe_i, exe_off, &a_exe);
		hi_tls_address(&t, (size_t)dyn_i, dyn_off, &a_dyn);
		if (have_tcache &&
		    hi_tls_address(&t, (size_t)libc_i, tc_off, &a_tc) == 0) {
			uint64_t tcp, e3;

			if (hi_read(&reader, a_tc, &tcp, 8) == 0 && tcp &&
			    hi_read(&reader, tcp + entries_off + 3 * 8, &e3,
				    8) == 0)
				snprintf(tc, sizeof(tc), "%#llx",
					 (unsigned long long)e3);
		}
		printf("thread tid=%d exe=%#llx dyn=%#llx tcache80=%s\n",
		       th->tid, (unsigned long long)a_exe,
		       (unsigned long long)a_dyn, tc);
		tdb_thread(&tdb, tls, &t);
		hi_tls_thread_free(&t);
	}
	if (tdb.disagree)
		printf("tdb disagrees %s\n", tdb.first);
	else if (!tdb.ta)
		printf("tdb skip %s\n", tdb.why);
	else if (tdb.disagree)
		printf("tdb disagrees %s\n", tdb.first);
	else
		printf("tdb agrees %d\n", tdb.agree);
out:
	hi_target_resume(&target);
	hi_target_fini(&target);
	hi_tls_close(tls);
	hi_sym_close(sym);
	return status;
}
