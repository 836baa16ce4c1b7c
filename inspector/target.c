/* SPDX-License-Identifier: MIT */
/*
 * Holding a live process still and reading it.
 *
 * Every thread is stopped with PTRACE_SEIZE + PTRACE_INTERRUPT rather than
 * PTRACE_ATTACH: no SIGSTOP is sent, so nothing is left queued for the
 * target, and a group-stop the target was already in (job control) is
 * reported to us and restored by the kernel on detach.  If heapinspect dies,
 * the kernel detaches every tracee (exit_ptrace), so a SIGKILL cannot leave
 * the target stopped either.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/kcmp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "target.h"

/* PF_KTHREAD in include/linux/sched.h. */
#define HI_PF_KTHREAD 0x00200000u

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

ssize_t hi_proc_read(const char *path, char *buf, size_t size)
{
	ssize_t n = 0, len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0)
		return -errno;
	while ((size_t)len + 1 < size &&
	       (n = read(fd, buf + len, size - 1 - len)) > 0)
		len += n;
	if (n < 0 && len == 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	close(fd);
	buf[len] = '\0';
	return len;
}

static int stat_of(const char *path, char *state, unsigned long *flags,
		   char *comm, size_t comm_size)
{
	char buf[4096];
	const char *open_paren, *close_paren;
	ssize_t n = hi_proc_read(path, buf, sizeof(buf));

	if (n < 0)
		return n == -ENOENT ? -ESRCH : (int)n;
	/* comm may hold spaces and parentheses: it ends at the last ')'. */
	open_paren = strchr(buf, '(');
	close_paren = strrchr(buf, ')');
	if (!open_paren || !close_paren || close_paren < open_paren)
		return -EINVAL;
	if (comm) {
		size_t len = close_paren - open_paren - 1;

		if (len >= comm_size)
			len = comm_size - 1;
		memcpy(comm, open_paren + 1, len);
		comm[len] = '\0';
	}
	/* state ppid pgrp session tty_nr tpgid flags */
	if (sscanf(close_paren + 1, " %c %*d %*d %*d %*d %*d %lu", state,
		   flags) != 2)
		return -EINVAL;
	return 0;
}

int hi_proc_info(pid_t pid, struct hi_procinfo *info)
{
	char path[64], buf[8192], *p;
	unsigned long flags;
	ssize_t n;
	int ret;

	memset(info, 0, sizeof(*info));
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	ret = stat_of(path, &info->state, &flags, info->comm,
		      sizeof(info->comm));
	if (ret)
		return ret;
	info->kthread = !!(flags & HI_PF_KTHREAD);
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	n = hi_proc_read(path, buf, sizeof(buf));
	if (n < 0)
		return n == -ENOENT ? -ESRCH : (int)n;
	p = strstr(buf, "\nTracerPid:");
	if (p)
		info->tracer = atoi(p + strlen("\nTracerPid:"));
	p = strstr(buf, "\nUid:");
	if (p)
		info->uid = (uid_t)strtoul(p + strlen("\nUid:"), NULL, 10);
	return 0;
}

ssize_t hi_proc_auxv(pid_t pid, unsigned char *buf, size_t size)
{
	char path[64];
	ssize_t n, len = 0;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/auxv", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	while ((size_t)len < size &&
	       (n = read(fd, buf + len, size - len)) > 0)
		len += n;
	close(fd);
	return len;
}

/*
 * What an anonymous mapping's name says of its memory (struct hi_map's
 * backing): unnamed (a heap, malloc's arenas and mmapped chunks, thread
 * stacks), named by its owner with PR_SET_VMA_ANON_NAME ("[anon:NAME]",
 * Linux 5.17: glibc 2.40 names malloc's own), or special (0).
 */
static uint32_t map_backing(const char *path)
{
	uint32_t h = 2166136261u;

	if (*path == '\n' || *path == '\0')
		return HI_BACKING_ANON;
	if (strncmp(path, "[anon:", 6) != 0)
		return 0;
	/* FNV-1a of the name; never 0 nor HI_BACKING_ANON. */
	for (const char *c = path; *c && *c != '\n'; c++)
		h = (h ^ (unsigned char)*c) * 16777619u;
	return h < 2 ? h + 2 : h;
}

int hi_proc_maps(pid_t pid, struct hi_maps *maps)
{
	char path[64], line[4096 + 256];
	size_t cap = 0;
	FILE *f;

	maps->v = NULL;
	maps->n = 0;
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? -ESRCH : -errno;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long start, end, inode = 0;
		char perms[8];
		int pathoff = 0;
		struct hi_map *m;

		if (sscanf(line, "%llx-%llx %7s %*s %*s %llu %n", &start, &end,
			   perms, &inode, &pathoff) < 3)
			continue;
		if (maps->n == cap) {
			size_t ncap = cap ? cap * 2 : 256;
			struct hi_map *nv = realloc(maps->v,
						    ncap * sizeof(*nv));

			if (!nv) {
				fclose(f);
				free(maps->v);
				maps->v = NULL;
				return -ENOMEM;
			}
			maps->v = nv;
			cap = ncap;
		}
		m = &maps->v[maps->n++];
		m->start = start;
		m->end = end;
		m->prot = (perms[0] == 'r' ? HI_PROT_R : 0) |
			  (perms[1] == 'w' ? HI_PROT_W : 0) |
			  (perms[2] == 'x' ? HI_PROT_X : 0);
		m->is_heap = pathoff && strncmp(line + pathoff, "[heap]", 6) == 0;
		m->backing = inode ? 0 : map_backing(pathoff ? line + pathoff
							     : "");
	}
	fclose(f);
	return 0;
}

static uint64_t kb_field(const char *buf, const char *key, int *found)
{
	const char *p = strstr(buf, key);

	if (!p)
		return 0;
	(*found)++;
	return strtoull(p + strlen(key), NULL, 10) * 1024;
}

int hi_proc_memstat(pid_t pid, struct hi_memstat *st)
{
	char path[64], buf[8192];
	const char *p;
	int found = 0;
	ssize_t n;

	memset(st, 0, sizeof(*st));
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	n = hi_proc_read(path, buf, sizeof(buf));
	if (n < 0)
		return n == -ENOENT ? -ESRCH : (int)n;
	p = strstr(buf, "\nThreads:");
	if (p)
		st->threads = strtoull(p + strlen("\nThreads:"), NULL, 10);
	/*
	 * smaps_rollup (Linux 4.14) sums smaps over every mapping.  USS, the
	 * memory only this process maps, is its private pages.
	 */
	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
	n = hi_proc_read(path, buf, sizeof(buf));
	if (n < 0)
		return n == -ENOENT ? -ESRCH : (int)n;
	st->rss = kb_field(buf, "\nRss:", &found);
	st->pss = kb_field(buf, "\nPss:", &found);
	st->uss = kb_field(buf, "\nPrivate_Clean:", &found) +
		  kb_field(buf, "\nPrivate_Dirty:", &found);
	st->swap = kb_field(buf, "\nSwap:", &found);
	st->valid = found == 5;
	return st->valid ? 0 : -EINVAL;
}

void hi_target_init(struct hi_target *t, pid_t pid)
{
	memset(t, 0, sizeof(*t));
	t->pid = pid;
	hi_mem_init(&t->mem, pid);
}

void hi_target_fini(struct hi_target *t)
{
	hi_target_resume(t);
	hi_mem_fini(&t->mem);
	free(t->threads);
	t->threads = NULL;
}

/*
 * The signals heapinspect blocks while it holds a target, so that it is
 * never interrupted then: they are acted on once the target runs again.
 */
static void held_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGQUIT);
	sigaddset(set, SIGTSTP);
}

/* The last failed stop, for messages: hi_target_last_why. */
static struct hi_stop_why last_why;

void hi_target_last_why(struct hi_stop_why *why)
{
	*why = last_why;
}

struct session {
	int (*fn)(void *);
	void *arg;
	int result;
	pid_t tid;
};

static void *session_main(void *p)
{
	struct session *s = p;

	s->tid = gettid();
	s->result = s->fn(s->arg);
	return NULL;
}

int hi_target_session(int (*fn)(void *), void *arg, int *result)
{
	struct session s = { .fn = fn, .arg = arg };
	sigset_t block, saved;
	pthread_attr_t attr;
	pthread_t th;
	int ret;

	memset(&last_why, 0, sizeof(last_why));
	ret = pthread_attr_init(&attr);
	if (ret)
		return -ret;
	/* libdw recurses through DWARF: as much stack as a main thread. */
	pthread_attr_setstacksize(&attr, 8u << 20);
	ret = pthread_create(&th, &attr, session_main, &s);
	pthread_attr_destroy(&attr);
	if (ret)
		return -ret;
	held_signals(&block);
	pthread_sigmask(SIG_BLOCK, &block, &saved);
	pthread_join(th, NULL);
	/*
	 * pthread_join returns once the kernel has cleared the thread's tid
	 * (mm_release, early in do_exit); the tracees are released later, in
	 * exit_notify (exit_ptrace).  Wait until the thread is gone altogether
	 * (release_task, after exit_ptrace): tgkill then fails with ESRCH.
	 */
	for (int i = 0; i < 100000; i++) {
		struct timespec ts = { 0, 20000 };

		if (syscall(SYS_tgkill, getpid(), s.tid, 0) != 0)
			break;
		nanosleep(&ts, NULL);
	}
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	*result = s.result;
	return 0;
}

static struct hi_thread *find_thread(struct hi_target *t, pid_t tid)
{
	for (size_t i = 0; i < t->nthreads; i++) {
		if (t->threads[i].tid == tid)
			return &t->threads[i];
	}
	return NULL;
}

/* A new entry; it may move the others (realloc). */
static struct hi_thread *add_thread(struct hi_target *t, pid_t tid,
				    int sharer)
{
	struct hi_thread *th;

	if (t->nthreads == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 64;
		struct hi_thread *nv = realloc(t->threads, ncap * sizeof(*nv));

		if (!nv)
			return NULL;
		t->threads = nv;
		t->cap = ncap;
	}
	th = &t->threads[t->nthreads++];
	memset(th, 0, sizeof(*th));
	th->tid = tid;
	th->sharer = sharer;
	th->syscall = -2;
	return th;
}

/* A /proc file of th: a thread's under the target's task/, a process's. */
static void task_file(const struct hi_target *t, const struct hi_thread *th,
		      const char *file, char *buf, size_t size)
{
	if (th->sharer)
		snprintf(buf, size, "/proc/%d/%s", (int)th->tid, file);
	else
		snprintf(buf, size, "/proc/%d/task/%d/%s", (int)t->pid,
			 (int)th->tid, file);
}

/* th's /proc state letter, 0 when it is gone. */
static char task_state(const struct hi_target *t, const struct hi_thread *th)
{
	char path[96], state = 0;
	unsigned long flags;

	task_file(t, th, "stat", path, sizeof(path));
	if (stat_of(path, &state, &flags, NULL, 0) != 0)
		return 0;
	return state;
}

/* Whether th is a zombie or dead: it cannot be seized. */
static int task_dead(const struct hi_target *t, const struct hi_thread *th)
{
	char state = task_state(t, th);

	return !state || state == 'Z' || state == 'X' || state == 'x';
}

/* TracerPid in a status file; 0 when untraced or unreadable. */
static pid_t tracer_in(const char *status_path)
{
	char buf[4096];
	const char *p;

	if (hi_proc_read(status_path, buf, sizeof(buf)) < 0)
		return 0;
	p = strstr(buf, "\nTracerPid:");
	return p ? (pid_t)atoi(p + strlen("\nTracerPid:")) : 0;
}

/*
 * Where th sleeps in the kernel, from /proc/.../syscall (proc_pid_syscall):
 * "NR ARG1 .. ARG6 SP PC" in a system call, "-1 SP PC" elsewhere in the
 * kernel (a page fault), "running" when it is not asleep.  SP and PC are
 * the user registers saved when it entered the kernel.
 */
static void task_syscall(const struct hi_target *t, struct hi_thread *th)
{
	char path[96], buf[512], *p, *end;
	unsigned long long v[8];
	long nr;
	int n = 0;

	th->syscall = -2;
	th->pc_valid = 0;
	task_file(t, th, "syscall", path, sizeof(path));
	if (hi_proc_read(path, buf, sizeof(buf)) <= 0)
		return;
	nr = strtol(buf, &end, 10);
	if (end == buf)
		return; /* "running" */
	for (p = end; n < 8; n++, p = end) {
		v[n] = strtoull(p, &end, 0);
		if (end == p)
			break;
	}
	if ((nr >= 0 && n == 8) || (nr == -1 && n == 2)) {
		th->syscall = nr;
		th->pc = v[n - 1];
		th->pc_valid = 1;
	}
}

/*
 * Whether a thread asleep in system call nr may wait for a child that
 * shares its memory: vfork(), and posix_spawn's clone(CLONE_VM |
 * CLONE_VFORK) or clone3.  -2 (not known) may be one too.
 */
static int forking(long nr)
{
	if (nr == -2)
		return 1;
#ifdef SYS_vfork
	if (nr == SYS_vfork)
		return 1;
#endif
#ifdef SYS_clone
	if (nr == SYS_clone)
		return 1;
#endif
#ifdef SYS_clone3
	if (nr == SYS_clone3)
		return 1;
#endif
	return 0;
}

/*
 * A thread that does not stop.  PTRACE_INTERRUPT sets JOBCTL_TRAP_STOP and
 * TIF_SIGPENDING under the siglock and wakes the thread only from an
 * interruptible sleep (ptrace_interrupt, signal_wake_up_state).  A thread
 * goes back to user space only through the exit-to-user path, which takes
 * the trap first (get_signal, do_jobctl_trap): from the moment it is seen
 * in the kernel after the interrupt - any /proc state but R, which the
 * kernel shows only while the thread sleeps there - it cannot run another
 * instruction of its own until it has stopped for us.  R proves nothing: a
 * thread running in user space on another CPU goes on until the IPI of
 * signal_wake_up reaches it.  Its copy_process fails while the trap is
 * pending (signal_pending, ERESTARTNOINTR), so it cannot start a thread or
 * a process either.  For a read, such a thread is as still as a stopped
 * one: what the kernel may yet write for it is the buffer of the system
 * call it sleeps in, memory the program gave the kernel to fill, not
 * malloc's state; a thread that sleeps inside malloc (a page fault) holds
 * the arena's lock, or is seen there by its PC (the syscall file).  A call
 * cannot use it: its registers cannot be read until it stops.
 *
 * Two ways to sleep there for long: uninterruptible sleep (D) on a slow
 * device, and vfork(): the parent sleeps in wait_for_vfork_done() until the
 * child executes a program or exits (kernel/fork.c), and only a fatal
 * signal wakes it.  The child runs in the parent's memory meanwhile, so it
 * is seized and stopped too (find_sharers).
 */
static void look_at(const struct hi_target *t, struct hi_thread *th)
{
	char state = task_state(t, th);

	if (!state || state == 'Z' || state == 'X' || state == 'x') {
		th->gone = 1;
		return;
	}
	th->state = state;
	if (state != 'R' && !th->in_kernel) {
		th->in_kernel = 1;
		task_syscall(t, th);
	}
}

/*
 * Seize th and ask it to stop.  Return 0 (th->gone when it exited first),
 * -EBUSY when another tracer holds it, -EPERM, or -errno; t->why names th.
 */
static int seize_one(struct hi_target *t, struct hi_thread *th)
{
	char path[96];
	int e;

	for (int again = 0;; again++) {
		if (ptrace(PTRACE_SEIZE, th->tid, NULL, NULL) == 0)
			break;
		e = errno;
		/* An exiting thread refuses with EPERM (PF_EXITING). */
		if (e == ESRCH || task_dead(t, th)) {
			th->gone = 1;
			return 0;
		}
		t->why.tid = th->tid;
		if (e != EPERM)
			return -e;
		task_file(t, th, "status", path, sizeof(path));
		t->why.tracer = tracer_in(path);
		if (t->why.tracer)
			return -EBUSY;
		/* Untraced: unless a tracer let go in between.  Once more. */
		if (again)
			return -EPERM;
	}
	th->seized = 1;
	if (ptrace(PTRACE_INTERRUPT, th->tid, NULL, NULL) != 0) {
		e = errno;
		if (e == ESRCH) {
			th->gone = 1;
			return 0;
		}
		t->why.tid = th->tid;
		return -e;
	}
	return 0;
}

/*
 * Seize and interrupt every thread listed in /proc/PID/task that we do not
 * hold yet.  Return the number of new threads, or -errno.
 */
static int seize_new(struct hi_target *t)
{
	char path[64];
	struct dirent *de;
	int added = 0, ret = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)t->pid);
	d = opendir(path);
	if (!d)
		return errno == ENOENT ? -ESRCH : -errno;
	while ((de = readdir(d)) != NULL) {
		struct hi_thread *th;
		pid_t tid = (pid_t)atoi(de->d_name);

		if (tid <= 0 || find_thread(t, tid))
			continue;
		th = add_thread(t, tid, 0);
		if (!th) {
			ret = -ENOMEM;
			break;
		}
		added++;
		ret = seize_one(t, th);
		if (ret)
			break;
	}
	closedir(d);
	return ret ? ret : added;
}

/* Whether pid is the target or a process we hold as sharing its memory. */
static int ours(const struct hi_target *t, pid_t pid)
{
	if (pid == t->pid)
		return 1;
	for (size_t i = 0; i < t->nthreads; i++) {
		if (t->threads[i].sharer && t->threads[i].tid == pid)
			return 1;
	}
	return 0;
}

/* A process's parent, from /proc/PID/stat; 0 when unknown. */
static pid_t parent_of(pid_t pid)
{
	char path[64], buf[1024];
	const char *p;
	int ppid;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (hi_proc_read(path, buf, sizeof(buf)) < 0)
		return 0;
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
		return 0;
	return (pid_t)ppid;
}

/*
 * Seize pid if it shares the target's memory (kcmp KCMP_VM).  Return 0, or
 * -errno with t->why.child set when it could not be told apart or held.
 */
static int try_sharer(struct hi_target *t, pid_t pid)
{
	struct hi_thread *th;
	pid_t tid = t->why.tid;
	long same;
	int ret;

	if (pid <= 0 || pid == t->pid || find_thread(t, pid))
		return 0;
	same = syscall(SYS_kcmp, t->pid, pid, KCMP_VM, 0, 0);
	if (same > 0 || (same < 0 && errno == ESRCH))
		return 0;
	if (same < 0) {
		ret = -errno;
	} else if (!(th = add_thread(t, pid, 1))) {
		ret = -ENOMEM;
	} else {
		ret = seize_one(t, th);
		t->why.tid = tid;
		if (ret == -EBUSY)
			ret = -EPERM;
	}
	if (ret) {
		t->why.child = pid;
		t->why.child_err = -ret;
	}
	return ret;
}

/*
 * The children of the threads that may be in vfork(), and of the processes
 * sharing the memory, from /proc/PID/task/TID/children (a kernel built with
 * CONFIG_PROC_CHILDREN).  Return 1 when every list was read, 0 when there
 * is no such file (all of /proc is searched then), or -errno.
 */
static int sharers_by_children(struct hi_target *t)
{
	for (size_t i = 0; i < t->nthreads; i++) {
		const struct hi_thread *th = &t->threads[i];
		char path[96], buf[4096], *p, *end;
		ssize_t n;

		if (th->gone || !th->seized || th->stopped ||
		    !(th->sharer || (th->in_kernel && forking(th->syscall))))
			continue;
		if (th->sharer)
			snprintf(path, sizeof(path), "/proc/%d/task/%d/children",
				 (int)th->tid, (int)th->tid);
		else
			task_file(t, th, "children", path, sizeof(path));
		n = hi_proc_read(path, buf, sizeof(buf));
		if (n < 0 && th->sharer)
			continue; /* gone */
		/* No such file, or a list cut short: search all of /proc. */
		if (n < 0 || (size_t)n + 1 >= sizeof(buf))
			return 0;
		for (p = buf;; p = end) {
			long pid = strtol(p, &end, 10);
			int ret;

			if (end == p)
				break;
			ret = try_sharer(t, (pid_t)pid);
			if (ret)
				return ret;
		}
	}
	return 1;
}

/*
 * Seize the children of the target that share its memory: the child of a
 * thread in vfork() runs in the target's memory until it executes a
 * program.  Only a process whose parent is the target (or such a child)
 * can be one.  Return 0, or -errno with t->why.child set when one could
 * not be held or told apart.
 */
static int find_sharers(struct hi_target *t)
{
	struct dirent *de;
	int ret = sharers_by_children(t);
	DIR *d;

	if (ret)
		return ret < 0 ? ret : 0;
	d = opendir("/proc");
	if (!d)
		return -errno;
	while ((de = readdir(d)) != NULL) {
		pid_t pid = (pid_t)atoi(de->d_name);

		if (pid <= 0 || pid == t->pid || find_thread(t, pid) ||
		    !ours(t, parent_of(pid)))
			continue;
		ret = try_sharer(t, pid);
		if (ret)
			break;
	}
	closedir(d);
	return ret;
}

/*
 * A process sharing the memory has stopped: if it executed a program on
 * its way to the stop, it shares nothing any more; let it go.
 */
static void confirm_sharer(struct hi_target *t, struct hi_thread *th)
{
	if (syscall(SYS_kcmp, t->pid, th->tid, KCMP_VM, 0, 0) == 0)
		return;
	ptrace(PTRACE_DETACH, th->tid, NULL, (void *)(long)th->pending_sig);
	th->seized = 0;
	th->stopped = 0;
	th->gone = 1;
}

/* What waitpid said about th. */
static void note_status(struct hi_target *t, struct hi_thread *th,
			int status)
{
	if (WIFEXITED(status) || WIFSIGNALED(status)) {
		th->gone = 1;
		return;
	}
	if (!WIFSTOPPED(status))
		return;
	/*
	 * PTRACE_EVENT_STOP is our interrupt or a group-stop; a plain stop is
	 * a signal on its way to the thread: keep it and hand it back at
	 * detach, so that it is not lost.
	 */
	if ((status >> 16) == 0)
		th->pending_sig = WSTOPSIG(status);
	th->stopped = 1;
	if (th->sharer)
		confirm_sharer(t, th);
}

/*
 * Take every stop and exit waiting to be reported.  Return 0, or -ECHILD
 * when no tracee is left, or -errno.
 */
static int reap(struct hi_target *t)
{
	for (;;) {
		struct hi_thread *th;
		int status;
		pid_t r = waitpid(-1, &status, __WALL | WNOHANG);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return 0;
		th = find_thread(t, r);
		if (th)
			note_status(t, th, status);
	}
}

#define LOOK_AFTER_NS 1000000ull /* look at who sleeps after 1 ms, */
#define LOOK_EVERY_NS 2000000ull /* then every 2 ms */
#define GRACE_MS 10u             /* a sleeper's time to stop by itself */

/*
 * Wait until every seized thread is stopped or gone, or, with
 * t->kernel_held_ok, asleep in the kernel (look_at): at once when it waits
 * for a child sharing its memory (which is then held too), else after
 * grace_ns, which most uninterruptible sleeps (a disk read) do not outlast.
 * Return 0, -ETIMEDOUT at deadline_ns with t->why set, -ESRCH, -errno.
 */
static int wait_stops(struct hi_target *t, uint64_t deadline_ns,
		      uint64_t grace_ns)
{
	uint64_t next_look = t->stop_ns + LOOK_AFTER_NS;
	unsigned sleep_us = 10;
	int scanned = 0, unheld = 0, ret;

	for (;;) {
		size_t waiting = 0, asleep = 0, pinned = 0, forks = 0;
		uint64_t now;
		int look;

		ret = reap(t);
		if (ret == -ECHILD)
			return -ESRCH;
		if (ret < 0)
			return ret;
		now = now_ns();
		look = (t->kernel_held_ok && now >= next_look) ||
		       now > deadline_ns;
		if (look)
			next_look = now + LOOK_EVERY_NS;
		for (size_t i = 0; i < t->nthreads; i++) {
			struct hi_thread *th = &t->threads[i];

			if (!th->seized || th->gone || th->stopped)
				continue;
			if (look)
				look_at(t, th);
			if (th->gone)
				continue;
			waiting++;
			if (!th->in_kernel)
				continue;
			asleep++;
			if (!th->sharer && forking(th->syscall))
				forks++;
			if (th->sharer || forking(th->syscall))
				pinned++;
		}
		if (!waiting)
			return 0;
		if (t->kernel_held_ok && asleep == waiting) {
			if (forks && !scanned) {
				scanned = 1;
				if (find_sharers(t))
					unheld = 1;
				sleep_us = 10;
				continue;
			}
			if (!(forks && unheld) &&
			    (pinned == waiting || now >= grace_ns))
				return 0;
		}
		if (now > deadline_ns)
			break;
		{
			struct timespec ts = { 0, sleep_us * 1000L };

			nanosleep(&ts, NULL);
			if (sleep_us < 1000)
				sleep_us *= 2;
		}
	}
	/*
	 * Name the thread that could not be held: one that runs first, then
	 * one in vfork() whose child could not be held, then any.
	 */
	for (int pass = 0; pass < 3; pass++) {
		for (size_t i = 0; i < t->nthreads; i++) {
			struct hi_thread *th = &t->threads[i];

			if (!th->seized || th->gone || th->stopped ||
			    (pass == 0 && th->in_kernel) ||
			    (pass == 1 && !(unheld && !th->sharer &&
					    forking(th->syscall))))
				continue;
			if (th->in_kernel && th->syscall == -2)
				task_syscall(t, th);
			t->why.tid = th->tid;
			t->why.state = th->state;
			t->why.syscall = th->in_kernel ? th->syscall : -1;
			if (!(unheld && forking(th->syscall))) {
				t->why.child = 0;
				t->why.child_err = 0;
			}
			return -ETIMEDOUT;
		}
	}
	return -ETIMEDOUT;
}

/*
 * Detach from every thread that has stopped, giving back the signal it
 * stopped with; one still on its way to the stop stays seized.
 */
static int detach_stopped(struct hi_target *t)
{
	int first = 0;

	for (size_t i = 0; i < t->nthreads; i++) {
		struct hi_thread *th = &t->threads[i];

		if (!th->seized || th->gone)
			continue;
		if (!th->stopped) {
			int status;

			if (waitpid(th->tid, &status, __WALL | WNOHANG) ==
			    th->tid)
				note_status(t, th, status);
			if (!th->stopped || !th->seized)
				continue;
		}
		if (ptrace(PTRACE_DETACH, th->tid, NULL,
			   (void *)(long)th->pending_sig) != 0 &&
		    errno != ESRCH && !first)
			first = -errno;
		th->seized = 0;
		th->stopped = 0;
		th->in_kernel = 0;
		th->pending_sig = 0;
	}
	return first;
}

/*
 * Let go of what a failed attempt holds: a thread interrupted a moment ago
 * is given up to 100 ms to reach its stop, so that it can be detached now
 * rather than at the end of the session; one asleep in the kernel is not.
 */
static void release(struct hi_target *t)
{
	uint64_t start = now_ns(), end = start + 100000000ull;
	unsigned sleep_us = 10;

	for (;;) {
		size_t running = 0;
		int look = now_ns() >= start + LOOK_AFTER_NS;

		if (reap(t) < 0)
			break;
		for (size_t i = 0; i < t->nthreads; i++) {
			struct hi_thread *th = &t->threads[i];

			if (!th->seized || th->gone || th->stopped)
				continue;
			if (look && !th->in_kernel)
				look_at(t, th);
			running += !th->gone && !th->in_kernel;
		}
		if (!running || now_ns() > end)
			break;
		{
			struct timespec ts = { 0, sleep_us * 1000L };

			nanosleep(&ts, NULL);
			if (sleep_us < 1000)
				sleep_us *= 2;
		}
	}
	detach_stopped(t);
}

/* Forget the entries of the last stop but the threads still seized. */
static void keep_seized(struct hi_target *t)
{
	size_t n = 0;

	for (size_t i = 0; i < t->nthreads; i++) {
		if (t->threads[i].seized && !t->threads[i].gone)
			t->threads[n++] = t->threads[i];
	}
	t->nthreads = n;
}

/* Seize every thread, listing them again until none is new; then wait. */
static int hold_all(struct hi_target *t, uint64_t deadline_ns,
		    uint64_t grace_ns)
{
	int ret, rounds = 0;

	/*
	 * A thread may create another until it is stopped itself, so list the
	 * threads again after every round of stops, until a round finds none.
	 */
	do {
		ret = seize_new(t);
		if (ret < 0)
			return ret;
		if (ret == 0 && rounds > 0)
			break;
		ret = wait_stops(t, deadline_ns, grace_ns);
		if (ret < 0)
			return ret;
		if (++rounds > 10000)
			return -EAGAIN;
	} while (1);
	ret = -ESRCH;
	for (size_t i = 0; i < t->nthreads; i++) {
		const struct hi_thread *th = &t->threads[i];

		if (th->gone)
			continue;
		/* Every thread listed was seized, or this is not reached. */
		if (!th->seized)
			return -EAGAIN;
		if (!th->sharer)
			ret = 0;
	}
	return ret;
}

/*
 * Another tracer holds a thread: wait, a little longer each time and never
 * in step with another heapinspect doing the same, until no thread of the
 * target is traced, without stopping any.  Return 1 to try again, 0 when
 * end_ns came first (t->why names the thread and its tracer).
 */
static int wait_untraced(struct hi_target *t, uint64_t end_ns,
			 unsigned attempt, unsigned *seed)
{
	for (;; attempt++) {
		unsigned us = 1000u << (attempt < 4 ? attempt : 4);
		char path[96];
		struct dirent *de;
		pid_t traced = 0, tracer = 0;
		DIR *d;

		*seed = *seed * 1103515245u + 12345u;
		us = us / 2 + (*seed >> 8) % us;
		if (now_ns() + us * 1000ull >= end_ns)
			return 0;
		{
			struct timespec ts = { 0, (long)us * 1000L };

			nanosleep(&ts, NULL);
		}
		snprintf(path, sizeof(path), "/proc/%d/task", (int)t->pid);
		d = opendir(path);
		if (!d)
			return 1; /* gone: the next attempt says so */
		while (!traced && (de = readdir(d)) != NULL) {
			pid_t tid = (pid_t)atoi(de->d_name);

			if (tid <= 0 || find_thread(t, tid))
				continue;
			snprintf(path, sizeof(path), "/proc/%d/task/%d/status",
				 (int)t->pid, (int)tid);
			tracer = tracer_in(path);
			if (tracer)
				traced = tid;
		}
		closedir(d);
		if (!traced)
			return 1;
		t->why.tid = traced;
		t->why.tracer = tracer;
	}
}

int hi_target_stop(struct hi_target *t, unsigned timeout_ms)
{
	uint64_t start, timeout = (uint64_t)timeout_ms * 1000000u;
	uint64_t grace = (uint64_t)(timeout_ms < GRACE_MS ? timeout_ms
							  : GRACE_MS) *
			 1000000u;
	sigset_t block;
	unsigned seed;
	int ret;

	held_signals(&block);
	sigprocmask(SIG_BLOCK, &block, &t->saved_mask);

	keep_seized(t);
	memset(&t->why, 0, sizeof(t->why));
	hi_mem_invalidate(&t->mem);
	t->stopped = 1;
	start = now_ns();
	seed = (unsigned)getpid() * 2654435761u ^ (unsigned)start;
	for (unsigned attempt = 0;; attempt++) {
		t->stop_ns = now_ns();
		ret = hold_all(t, t->stop_ns + timeout, t->stop_ns + grace);
		if (ret == 0)
			return 0;
		release(t);
		keep_seized(t);
		/*
		 * Another tracer (strace, gdb, a second heapinspect) holds a
		 * thread: a heapinspect lets go within milliseconds, so try
		 * again for up to timeout_ms, holding nothing meanwhile.
		 */
		if (ret != -EBUSY || !wait_untraced(t, start + timeout,
						    attempt, &seed))
			break;
	}
	if (ret == -EBUSY)
		ret = -EPERM;
	t->why.code = ret;
	last_why = t->why;
	hi_target_resume(t);
	return ret;
}

int hi_target_resume(struct hi_target *t)
{
	int first;

	if (!t->stopped)
		return 0;
	first = detach_stopped(t);
	{
		uint64_t us = (now_ns() - t->stop_ns) / 1000;

		if (us > t->pause_max_us)
			t->pause_max_us = us;
		t->pause_total_us += us;
	}
	t->stopped = 0;
	sigprocmask(SIG_SETMASK, &t->saved_mask, NULL);
	return first;
}

size_t hi_target_nthreads(const struct hi_target *t)
{
	size_t n = 0;

	for (size_t i = 0; i < t->nthreads; i++)
		n += !t->threads[i].gone && !t->threads[i].sharer;
	return n;
}

struct hi_reader hi_target_reader(struct hi_target *t)
{
	return hi_mem_reader(&t->mem);
}
