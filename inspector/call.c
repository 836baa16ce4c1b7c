/* SPDX-License-Identifier: MIT */
/*
 * Calling into a live target without ever harming it.
 *
 * gdb's `call malloc_trim(0)` runs the function in whichever thread it
 * stopped, with a fixed-size buffer for the extended state, and a trap
 * written into the target for the return; a thread stopped inside malloc
 * holding an arena lock deadlocks the call, and a failed register restore or
 * a dying debugger leaves the target broken.  Here, the target is stopped
 * only at a moment when no allocator lock is held and no thread's call stack
 * is inside the allocator; one thread, preferably one blocked in a system
 * call, runs the function alone; the return comes back through a signal
 * frame (see platforms/x86_64/x86_64.c), so that a heapinspect killed at any
 * moment still leaves a thread that finishes the call and resumes exactly
 * where it was.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "call.h"

#define MAX_FRAMES 64

uint64_t hi_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

/*
 * The tests kill heapinspect at chosen steps of a call, to prove that the
 * target survives each (HEAPINSPECT_TEST_DIE=started, return, returned,
 * exit or finished).  Unset, this does nothing.
 */
static void die_here(const char *step)
{
#ifdef HI_TEST_HOOKS
	const char *want = getenv("HEAPINSPECT_TEST_DIE");
#else
	const char *want = NULL; /* a test hook: not in a shipped build */
#endif

	if (want && strcmp(want, step) == 0)
		raise(SIGKILL);
}

int hi_caller_test_unchecked(void)
{
#ifdef HI_TEST_HOOKS
	const char *v = getenv("HEAPINSPECT_TEST_UNCHECKED");

	if (v && strcmp(v, "call") == 0)
		return 1;
	if (v && strcmp(v, "nolayout") == 0)
		return 2;
#endif
	return 0;
}

/* The writer behind platform code: process_vm_writev, or /proc/PID/mem. */
struct mem_writer {
	pid_t pid;
	struct hi_mem *mem;
};

static int write_target(void *arg, hi_addr_t addr, const void *buf,
			size_t len)
{
	struct mem_writer *mw = arg;
	struct iovec local = { .iov_base = (void *)buf, .iov_len = len };
	struct iovec remote = { .iov_base = (void *)(uintptr_t)addr,
				.iov_len = len };
	char path[64];
	ssize_t n;
	int fd;

	/* Whatever was cached of these bytes is stale now. */
	hi_mem_invalidate(mw->mem);
	n = process_vm_writev(mw->pid, &local, 1, &remote, 1, 0);
	if (n == (ssize_t)len)
		return 0;
	if (n >= 0 || errno == EFAULT)
		return -EFAULT;
	if (errno != ENOSYS && errno != EPERM)
		return -errno;
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)mw->pid);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = pwrite(fd, buf, len, (off_t)addr);
	close(fd);
	return n == (ssize_t)len ? 0 : -EFAULT;
}

int hi_caller_init(struct hi_caller *c, struct hi_target *t,
		   struct hi_alloc_ctx *ctx,
		   const struct hi_allocator_ops *ops, int located,
		   unsigned stop_timeout_ms)
{
	int ret;

	memset(c, 0, sizeof(*c));
	c->t = t;
	c->ctx = ctx;
	c->ops = ops;
	c->arch = hi_arch_host();
	c->located = located;
	c->stop_timeout_ms = stop_timeout_ms;
	if (!c->arch || !c->arch->call_prepare || !ops->functions)
		return -HI_E_UNSUPPORTED;
	ret = ops->functions(ctx, c->arch->restorer_code,
			     c->arch->restorer_len, &c->funcs);
	if (ret)
		return ret;
	if (!c->funcs.restorer) {
		snprintf(ctx->why, sizeof(ctx->why), "__restore_rt");
		return -HI_E_NOSYM;
	}
	if (located && ops->code_ranges) {
		c->ncode = ops->code_ranges(ctx, &c->code);
		if (c->ncode < 0)
			c->ncode = 0;
	}
	c->reader = hi_target_reader(t);
	ctx->reader = &c->reader;
	ctx->maps = &c->maps;
	return 0;
}

void hi_caller_fini(struct hi_caller *c)
{
	hi_alloc_funcs_free(&c->funcs);
	free(c->code);
	free(c->maps.v);
	c->code = NULL;
	c->maps.v = NULL;
}

static int in_ranges(hi_addr_t pc, hi_addr_t (*r)[2], int n)
{
	for (int i = 0; i < n; i++) {
		if (pc >= r[i][0] && pc < r[i][1])
			return 1;
	}
	return 0;
}

/*
 * Whether thread tid, stopped, is inside the allocator: its PC or any
 * return address on its call stack in malloc.c's code (DWARF) or in an
 * exported entry point (the dynamic symbol table).  A thread blocked on an
 * arena lock sits in the lock's wait function, called from malloc: the
 * call stack shows it.
 */
static int thread_in_allocator(struct hi_caller *c, pid_t tid, char *why,
			       size_t size)
{
	hi_addr_t pcs[MAX_FRAMES];
	int n = -1;

	if (c->attached)
		n = hi_sym_thread_frames(c->ctx->sym, tid, pcs, MAX_FRAMES);
	if (n <= 0) {
		if (c->arch->get_pc(tid, &pcs[0]) != 0)
			return 0; /* gone: not inside anything */
		n = 1;
	}
	for (int i = 0; i < n; i++) {
		if (in_ranges(pcs[i], c->code, c->ncode) ||
		    in_ranges(pcs[i], c->funcs.entries, c->funcs.nentries)) {
			const char *fn = hi_sym_addr_name(c->ctx->sym, pcs[i]);

			snprintf(why, size, "thread %d is inside the allocator "
				 "(frame %d, pc 0x%llx%s%s)", (int)tid, i,
				 (unsigned long long)pcs[i], fn ? " in " : "",
				 fn ? fn : "");
			return 1;
		}
	}
	return 0;
}

/* 0 when safe to call, 1 not (why says why), or a negative code. */
static int check_safe(struct hi_caller *c, struct hi_call_report *rep)
{
	struct hi_target *t = c->t;
	int ret;

	/*
	 * Addresses from the layout cache or the built-in tables are proven
	 * on the stopped target before their lock words are trusted; when
	 * they cannot be, only the call stacks are checked, as without any
	 * layout.
	 */
	if (c->located && c->ops->verify) {
		ret = c->ops->verify(c->ctx, 0);
		if (ret == -HI_E_BUSY) {
			snprintf(rep->unsafe, sizeof(rep->unsafe),
				 "the allocator's state is being updated");
			return 1;
		}
		if (ret)
			c->located = 0;
	}
	if (c->located) {
		ret = c->ops->busy(c->ctx);
		if (ret == -HI_E_CORRUPT) {
			snprintf(rep->unsafe, sizeof(rep->unsafe),
				 "the ring of arenas is corrupt");
			return 1;
		}
		if (ret < 0)
			return ret;
		if (ret > 0) {
			snprintf(rep->unsafe, sizeof(rep->unsafe),
				 "%d arena lock%s held", ret,
				 ret == 1 ? " is" : "s are");
			return 1;
		}
		ret = c->ops->global_locks ? c->ops->global_locks(c->ctx)
					   : -HI_E_NOSYM;
		if (ret > 0) {
			snprintf(rep->unsafe, sizeof(rep->unsafe),
				 "the arena list lock is held");
			return 1;
		}
		if (ret < 0 && ret != -HI_E_NOSYM)
			return ret;
		rep->locks_checked = 1;
	}
	if (!c->attach_tried) {
		c->attach_tried = 1;
		c->attached = hi_sym_attach(c->ctx->sym, t->pid) == 0;
	}
	rep->stacks_checked = c->attached;
	for (size_t i = 0; i < t->nthreads; i++) {
		if (t->threads[i].gone || !t->threads[i].seized)
			continue;
		if (thread_in_allocator(c, t->threads[i].tid, rep->unsafe,
					sizeof(rep->unsafe)))
			return 1;
	}
	return 0;
}

static void pause_a_moment(unsigned attempt)
{
	unsigned us = 200u << (attempt < 6 ? attempt : 6);
	struct timespec ts = { 0, (long)(us > 20000 ? 20000 : us) * 1000L };

	nanosleep(&ts, NULL);
}

static int choose_host(struct hi_caller *c, const struct hi_call *call,
		       struct hi_call_state **out, pid_t *host, int *rank,
		       char *why, size_t why_size);

int hi_caller_stop_safe(struct hi_caller *c, const struct hi_call *call,
			uint64_t deadline_ns, struct hi_call_report *rep)
{
	uint64_t first = 0;
	int ret;

	for (unsigned attempt = 1;; attempt++) {
		ret = hi_target_stop(c->t, c->stop_timeout_ms);
		if (ret)
			return ret;
		if (!first)
			first = c->t->stop_ns;
		rep->attempts = attempt;
		free(c->maps.v);
		c->maps.v = NULL;
		ret = hi_proc_maps(c->t->pid, &c->maps);
		if (ret) {
			hi_target_resume(c->t);
			return ret;
		}
		c->t->mem.maps = &c->maps;
		ret = check_safe(c, rep);
		if (ret > 0)
			ret = -HI_E_UNSAFE;
		if (ret == 0) {
			/*
			 * A thread that can host the call: none may be able
			 * to for a moment (each in a state that comes and
			 * goes), so wait for one as for a quiet allocator.
			 */
			struct hi_call_state *st = NULL;
			pid_t host;
			int rank;

			ret = choose_host(c, call, &st, &host, &rank,
					  rep->unsafe, sizeof(rep->unsafe));
			if (st)
				c->arch->call_free(st);
		}
		if (ret == 0) {
			rep->waited_us = (hi_now_ns() - first) / 1000;
			rep->unsafe[0] = '\0';
			return 0;
		}
		hi_target_resume(c->t);
		if (ret != -HI_E_UNSAFE && ret != -HI_E_NOHOST)
			return ret;
		if (hi_now_ns() >= deadline_ns)
			return ret;
		pause_a_moment(attempt);
	}
}

static struct hi_thread *find_thread(struct hi_target *t, pid_t tid)
{
	for (size_t i = 0; i < t->nthreads; i++) {
		if (t->threads[i].tid == tid)
			return &t->threads[i];
	}
	return NULL;
}

/*
 * Choose the thread to run the call: one blocked in a system call first
 * (it was doing nothing), then one in its own code, then one in a sleep
 * that restarts through restart_block.  HEAPINSPECT_CALL_TID makes the tests
 * choose a thread themselves.
 */
static int choose_host(struct hi_caller *c, const struct hi_call *call,
		       struct hi_call_state **out, pid_t *host, int *rank,
		       char *why, size_t why_size)
{
#ifdef HI_TEST_HOOKS
	const char *forced = getenv("HEAPINSPECT_CALL_TID");
#else
	const char *forced = NULL; /* a test hook: not in a shipped build */
#endif
	pid_t want = forced ? (pid_t)atoi(forced) : 0;
	struct hi_call_state *best = NULL;
	int best_rank = HI_HOST_NO, ret = 0;
	char reason[160];

	why[0] = '\0';
	for (size_t i = 0; i < c->t->nthreads; i++) {
		struct hi_thread *th = &c->t->threads[i];
		struct hi_call_state *st = NULL;
		int r;

		if (th->gone || !th->seized || !th->stopped)
			continue;
		if (want && th->tid != want)
			continue;
		ret = c->arch->call_prepare(th->tid, call, &c->reader,
					    &c->maps, &st, &r, reason,
					    sizeof(reason));
		if (ret || r == HI_HOST_NO) {
			if (reason[0])
				snprintf(why, why_size, "thread %d: %s",
					 (int)th->tid, reason);
			if (st)
				c->arch->call_free(st);
			if (ret && ret != -HI_E_NOSYM && ret != -EFAULT)
				break;
			if (ret == -HI_E_NOSYM)
				break;
			ret = 0;
			continue;
		}
		if (r > best_rank) {
			if (best)
				c->arch->call_free(best);
			best = st;
			best_rank = r;
			*host = th->tid;
			if (r == HI_HOST_SYSCALL)
				break;
		} else {
			c->arch->call_free(st);
		}
	}
	if (!best) {
		if (!why[0])
			snprintf(why, why_size, "%s", want ? "no such thread" :
				 "no stopped thread");
		return ret ? ret : -HI_E_NOHOST;
	}
	*out = best;
	*rank = best_rank;
	return 0;
}

/* Wait for a stop or the end of thread tid until deadline_ns. */
static int wait_thread(pid_t tid, uint64_t deadline_ns, int *status)
{
	unsigned sleep_us = 5;

	for (;;) {
		pid_t r = waitpid(tid, status, __WALL | WNOHANG);

		if (r == tid)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
		if (hi_now_ns() >= deadline_ns)
			return -ETIMEDOUT;
		if (r == 0) {
			struct timespec ts = { 0, sleep_us * 1000L };

			nanosleep(&ts, NULL);
			if (sleep_us < 1000)
				sleep_us *= 2;
		}
	}
}

static void count_syscall(struct hi_caller *c, struct hi_call_report *rep,
			  uint64_t nr)
{
	const char *name = c->arch->syscall_name(nr);

	if (!name) {
		rep->nsyscalls_other++;
		return;
	}
	for (int i = 0; i < HI_CALL_MAX_SYSCALLS; i++) {
		if (!rep->syscalls[i].name) {
			rep->syscalls[i].name = name;
			rep->syscalls[i].count = 1;
			return;
		}
		if (strcmp(rep->syscalls[i].name, name) == 0) {
			rep->syscalls[i].count++;
			return;
		}
	}
	rep->nsyscalls_other++;
}

/*
 * Whether signal sig, stopping the thread that runs the call, is the
 * function's own doing rather than a signal sent to the target: a fault
 * the kernel raised (si_code > 0; SI_KERNEL included: a general protection
 * fault, such as a non-canonical pointer followed, is a SIGSEGV with
 * SI_KERNEL), or SIGABRT, which is blocked during the call and so reaches
 * the thread only once the function unblocked it: abort().  Set rep's
 * fault_* fields when it is.
 */
static int is_fault(pid_t tid, int sig, struct hi_call_report *rep)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	if (sig != SIGSEGV && sig != SIGBUS && sig != SIGILL &&
	    sig != SIGFPE && sig != SIGTRAP && sig != SIGSYS &&
	    sig != SIGABRT)
		return 0;
	if (ptrace(PTRACE_GETSIGINFO, tid, NULL, &si) == 0 &&
	    sig != SIGABRT && si.si_code <= 0)
		return 0;
	rep->fault_sig = sig;
	rep->fault_code = si.si_code;
	if (sig != SIGABRT && sig != SIGSYS)
		rep->fault_addr = (hi_addr_t)(uintptr_t)si.si_addr;
	return 1;
}

/*
 * The system calls of glibc's failure paths, none of which the allocator's
 * functions make otherwise: malloc_printerr and assert() first write their
 * message with writev on fd 2 (__libc_message, 2.26 to 2.43), then abort()
 * changes the signal mask and raises SIGABRT.  Stopped at the entry of one,
 * the call is undone before it runs: nothing is printed, nothing raised.
 */
static int is_failure_path(const char *name)
{
	static const char *const names[] = {
		"writev", "write", "rt_sigprocmask", "rt_sigaction",
		"tgkill", "tkill", "kill", "rt_sigqueueinfo",
		"rt_tgsigqueueinfo", "exit", "exit_group",
	};

	for (size_t i = 0; name && i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(name, names[i]) == 0)
			return 1;
	}
	return 0;
}

/* What a write or writev to fd 2 at its entry stop would print. */
static void failure_message(struct hi_caller *c, const char *name,
			    const uint64_t *args, char *out, size_t size)
{
	size_t len = 0;

	out[0] = '\0';
	if (args[0] != 2 || size < 2)
		return;
	if (strcmp(name, "write") == 0) {
		len = args[2] < size - 1 ? args[2] : size - 1;
		if (len && hi_read(&c->reader, args[1], out, len) != 0)
			len = 0;
	} else if (strcmp(name, "writev") == 0) {
		uint64_t iov[16][2];
		uint64_t n = args[2] < 16 ? args[2] : 16;

		if (n == 0 || hi_read(&c->reader, args[1], iov, n * 16) != 0)
			n = 0;
		for (uint64_t i = 0; i < n && len < size - 1; i++) {
			size_t k = iov[i][1] < size - 1 - len ? iov[i][1]
							      : size - 1 - len;

			if (k && hi_read(&c->reader, iov[i][0], out + len,
					  k) != 0)
				break;
			len += k;
		}
	}
	out[len] = '\0';
	/* One line of text: the target's bytes are not trusted. */
	while (len && (out[len - 1] == '\n' || out[len - 1] == ' '))
		out[--len] = '\0';
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)out[i] < 0x20 || (unsigned char)out[i] > 0x7e)
			out[i] = '?';
	}
}

/* The signals the process ignores (SigIgn of /proc/PID/status). */
static uint64_t ignored_signals(pid_t pid)
{
	char path[64], line[256];
	unsigned long long mask = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "SigIgn: %llx", &mask) == 1)
			break;
	}
	fclose(f);
	return mask;
}

/*
 * Undo a call that failed part way, at a stop that is not a system call
 * entry: the thread back exactly as it was, and every allocator lock
 * released (none was held before the call, and only its thread ran: any
 * held now is the one the function held when it failed; mallinfo2 and
 * malloc_trim hold one arena's at a time).  Without a layout the lock
 * words cannot be found: rep says so.
 */
static int undo(struct hi_caller *c, struct hi_call_state *st,
		const struct hi_writer *w, struct hi_call_report *rep)
{
	int ret = c->arch->call_abandon(st, w);

	hi_mem_invalidate(&c->t->mem);
	rep->abandoned = 1;
	if (c->located && c->ops->unlock_all) {
		int n = c->ops->unlock_all(c->ctx, w, &rep->lock_addr);

		if (n > 0)
			rep->locks_released = n;
		else if (n < 0)
			rep->locks_unknown = 1;
	} else {
		rep->locks_unknown = 1;
	}
	return ret;
}

/* Signals taken out of delivery during the call, given back after. */
struct held_signals {
	int sig[16];
	int n;
};

static void hold(struct held_signals *h, int sig)
{
	if (h->n < 16)
		h->sig[h->n++] = sig;
}

/*
 * The call did not return in time.  Stop the thread where it is; undo the
 * call if no allocator lock is held (then the function holds none), else
 * release the target so that the call finishes and the thread returns
 * through its frame by itself.
 */
static int call_stuck(struct hi_caller *c, struct hi_call_state *st,
		      pid_t host, const struct hi_writer *w,
		      struct held_signals *held, struct hi_call_report *rep)
{
	uint64_t deadline = hi_now_ns() + 2000000000ull;
	int status, ret, safe = 0;

	if (ptrace(PTRACE_INTERRUPT, host, NULL, NULL) != 0)
		goto leave;
	for (int round = 0; round < 8; round++) {
		struct __ptrace_syscall_info si;

		ret = wait_thread(host, deadline, &status);
		if (ret || !WIFSTOPPED(status))
			goto leave;
		if (WSTOPSIG(status) == (SIGTRAP | 0x80) &&
		    ptrace(PTRACE_GET_SYSCALL_INFO, host,
			   (void *)sizeof(si), &si) > 0 &&
		    si.op == PTRACE_SYSCALL_INFO_ENTRY) {
			/* A system call entry cannot be undone: go on. */
			if (ptrace(PTRACE_SYSCALL, host, NULL, NULL) != 0 ||
			    ptrace(PTRACE_INTERRUPT, host, NULL, NULL) != 0)
				goto leave;
			continue;
		}
		if ((status >> 16) == 0 && WSTOPSIG(status) != SIGTRAP)
			hold(held, WSTOPSIG(status));
		safe = 1;
		break;
	}
	if (!safe)
		goto leave;
	hi_mem_invalidate(&c->t->mem);
	if (c->located && c->ops->busy(c->ctx) == 0 &&
	    (!c->ops->global_locks || c->ops->global_locks(c->ctx) <= 0)) {
		ret = c->arch->call_abandon(st, w);
		if (ret == 0) {
			rep->abandoned = 1;
			return -HI_E_CALLSTUCK;
		}
	}
leave:
	rep->left_running = 1;
	hi_target_resume(c->t);
	return -HI_E_CALLSTUCK;
}

/*
 * At a system call entry stop of the call's thread: let that system call
 * not run, and step to its exit stop.  Signals on the way are held.
 */
static int skip_to_exit(struct hi_caller *c, struct hi_call_state *st,
			pid_t host, struct held_signals *held)
{
	int ret, status;

	ret = c->arch->call_skip_syscall(st);
	if (ret)
		return ret;
	for (;;) {
		if (ptrace(PTRACE_SYSCALL, host, NULL, NULL) != 0)
			return errno == ESRCH ? -HI_E_EXITED : -errno;
		ret = wait_thread(host, hi_now_ns() + 2000000000ull, &status);
		if (ret)
			return ret;
		if (WIFEXITED(status) || WIFSIGNALED(status))
			return -HI_E_EXITED;
		if (WIFSTOPPED(status) && WSTOPSIG(status) == (SIGTRAP | 0x80))
			return 0;
		if (WIFSTOPPED(status) && (status >> 16) == 0)
			hold(held, WSTOPSIG(status));
	}
}

int hi_caller_call(struct hi_caller *c, const struct hi_call *call,
		   const char *name, void *result, uint64_t deadline_ns,
		   struct hi_call_report *rep)
{
	struct mem_writer mw = { .pid = c->t->pid, .mem = &c->t->mem };
	struct hi_writer w = { .write = write_target, .arg = &mw };
	struct held_signals held = { .n = 0 };
	struct hi_call_state *st = NULL;
	struct hi_thread *th;
	uint64_t t0, ignored;
	pid_t host = 0;
	int ret, status, rank = 0, resume_sig = 0;

	rep->function = name;
	ret = choose_host(c, call, &st, &host, &rank, rep->unsafe,
			  sizeof(rep->unsafe));
	if (ret)
		return ret;
	rep->thread = host;
	rep->host_rank = rank;
	rep->restorer_by_code = c->funcs.restorer_by_code;
	th = find_thread(c->t, host);
	if (ptrace(PTRACE_SETOPTIONS, host, NULL,
		   (void *)PTRACE_O_TRACESYSGOOD) != 0) {
		ret = -errno;
		goto out;
	}
	ignored = ignored_signals(c->t->pid);
	t0 = hi_now_ns();
	ret = c->arch->call_start(st, &w);
	if (ret) {
		/* Nothing ran yet: put back what may have been set. */
		c->arch->call_abandon(st, &w);
		goto out;
	}
	die_here("started");
	th->stopped = 0;
	for (;;) {
		struct __ptrace_syscall_info si;
		const char *sname;
		int sig;

		if (ptrace(PTRACE_SYSCALL, host, NULL,
			   (void *)(long)resume_sig) != 0) {
			ret = errno == ESRCH ? -HI_E_EXITED : -errno;
			goto out;
		}
		resume_sig = 0;
		ret = wait_thread(host, deadline_ns, &status);
		if (ret == -ETIMEDOUT) {
			ret = call_stuck(c, st, host, &w, &held, rep);
			if (rep->abandoned)
				th->stopped = 1;
			goto out_held;
		}
		if (ret)
			goto out;
		if (WIFEXITED(status) || WIFSIGNALED(status)) {
			th->gone = 1;
			ret = -HI_E_EXITED;
			goto out;
		}
		if (!WIFSTOPPED(status))
			continue;
		sig = WSTOPSIG(status);
		if (sig == (SIGTRAP | 0x80)) {
			if (ptrace(PTRACE_GET_SYSCALL_INFO, host,
				   (void *)sizeof(si), &si) <= 0) {
				ret = -errno;
				goto out;
			}
			if (si.op != PTRACE_SYSCALL_INFO_ENTRY)
				continue;
			if (c->arch->call_is_return(st, si.entry.nr,
						    si.instruction_pointer,
						    si.stack_pointer))
				break;
			count_syscall(c, rep, si.entry.nr);
			sname = c->arch->syscall_name(si.entry.nr);
			if (is_failure_path(sname)) {
				uint64_t args[6];

				rep->fault_syscall = sname;
				for (int i = 0; i < 6; i++)
					args[i] = si.entry.args[i];
				failure_message(c, sname, args, rep->fault_msg,
						sizeof(rep->fault_msg));
				ret = skip_to_exit(c, st, host, &held);
				if (ret)
					goto out;
				th->stopped = 1;
				ret = undo(c, st, &w, rep);
				ret = ret ? ret : -HI_E_CALLFAULT;
				goto out_held;
			}
			continue;
		}
		if ((status >> 16) != 0)
			continue; /* a group-stop or an interrupt: go on */
		if (is_fault(host, sig, rep)) {
			/* The function crashed: undo it, the target's own
			 * handler never sees the fault. */
			th->stopped = 1;
			/* force_sig_info_to_task resets an ignored one. */
			if (sig != SIGABRT && (ignored & (1ull << (sig - 1))))
				rep->sig_reset = sig;
			ret = undo(c, st, &w, rep);
			ret = ret ? ret : -HI_E_CALLFAULT;
			goto out_held;
		}
		/* Signals are blocked in the call: only SIGSTOP and the
		 * like get here.  Hold it and give it back after. */
		hold(&held, sig);
	}

	/* At the system call entry of the frame's rt_sigreturn. */
	die_here("return");
	ret = c->arch->call_returned(st, &c->reader, result);
	if (ret)
		goto out;
	die_here("returned");
	if (ptrace(PTRACE_SYSCALL, host, NULL, NULL) != 0) {
		ret = -errno;
		goto out;
	}
	for (;;) {
		ret = wait_thread(host, hi_now_ns() + 2000000000ull, &status);
		if (ret)
			goto out;
		if (WIFEXITED(status) || WIFSIGNALED(status)) {
			th->gone = 1;
			ret = -HI_E_EXITED;
			goto out;
		}
		if (WIFSTOPPED(status) && WSTOPSIG(status) == (SIGTRAP | 0x80))
			break;
		if (WIFSTOPPED(status) && (status >> 16) == 0)
			hold(&held, WSTOPSIG(status));
		if (ptrace(PTRACE_SYSCALL, host, NULL, NULL) != 0) {
			ret = -errno;
			goto out;
		}
	}
	th->stopped = 1;
	die_here("exit");
	hi_mem_invalidate(&c->t->mem);
	ret = c->arch->call_finish(st, &w);
	rep->call_us = (hi_now_ns() - t0) / 1000;
	die_here("finished");
out_held:
	/*
	 * Held signals go back: the first with the detach (from a system
	 * call stop the kernel sends it, ptrace_report_syscall), the others
	 * queued to the thread now, delivered once it is released.
	 */
	rep->signals_held = held.n;
	for (int i = 0; i < held.n; i++) {
		if (i == 0 && th && !th->pending_sig && th->stopped)
			th->pending_sig = held.sig[0];
		else
			syscall(SYS_tgkill, c->t->pid, host, held.sig[i]);
	}
out:
	hi_mem_invalidate(&c->t->mem);
	c->arch->call_free(st);
	return ret;
}
