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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
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

/* Read a whole small /proc file into buf.  Return its length or -errno. */
static ssize_t read_small(const char *path, char *buf, size_t size)
{
	ssize_t n, len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

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
	ssize_t n = read_small(path, buf, sizeof(buf));

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
	n = read_small(path, buf, sizeof(buf));
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
	n = read_small(path, buf, sizeof(buf));
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
	n = read_small(path, buf, sizeof(buf));
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

static struct hi_thread *find_thread(struct hi_target *t, pid_t tid)
{
	for (size_t i = 0; i < t->nthreads; i++) {
		if (t->threads[i].tid == tid)
			return &t->threads[i];
	}
	return NULL;
}

/* Whether thread tid is a zombie or dead: it cannot be seized. */
static int thread_dead(pid_t pid, pid_t tid)
{
	char path[64], state = 0;
	unsigned long flags;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid,
		 (int)tid);
	if (stat_of(path, &state, &flags, NULL, 0) != 0)
		return 1;
	return state == 'Z' || state == 'X' || state == 'x';
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
		if (t->nthreads == t->cap) {
			size_t ncap = t->cap ? t->cap * 2 : 64;
			struct hi_thread *nv = realloc(t->threads,
						       ncap * sizeof(*nv));

			if (!nv) {
				ret = -ENOMEM;
				break;
			}
			t->threads = nv;
			t->cap = ncap;
		}
		th = &t->threads[t->nthreads++];
		memset(th, 0, sizeof(*th));
		th->tid = tid;
		added++;
		if (ptrace(PTRACE_SEIZE, tid, NULL, NULL) != 0) {
			int e = errno;

			/* An exiting thread refuses with EPERM (PF_EXITING). */
			if (e == ESRCH || thread_dead(t->pid, tid)) {
				th->gone = 1;
				continue;
			}
			ret = -e;
			break;
		}
		th->seized = 1;
		if (ptrace(PTRACE_INTERRUPT, tid, NULL, NULL) != 0) {
			if (errno == ESRCH) {
				th->gone = 1;
				continue;
			}
			ret = -errno;
			break;
		}
	}
	closedir(d);
	return ret ? ret : added;
}

/* Wait until every seized thread is in a ptrace-stop or gone. */
static int wait_stops(struct hi_target *t, uint64_t deadline_ns)
{
	unsigned sleep_us = 10;

	for (;;) {
		size_t waiting = 0;
		struct hi_thread *th;
		int status;
		pid_t r;

		for (size_t i = 0; i < t->nthreads; i++) {
			th = &t->threads[i];
			if (th->seized && !th->gone && !th->stopped)
				waiting++;
		}
		if (!waiting)
			return 0;
		r = waitpid(-1, &status, __WALL | WNOHANG);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ECHILD)
				return -ESRCH;
			return -errno;
		}
		if (r == 0) {
			struct timespec ts = { 0, sleep_us * 1000L };

			if (now_ns() > deadline_ns)
				return -ETIMEDOUT;
			nanosleep(&ts, NULL);
			if (sleep_us < 1000)
				sleep_us *= 2;
			continue;
		}
		th = find_thread(t, r);
		if (!th)
			continue;
		if (WIFEXITED(status) || WIFSIGNALED(status)) {
			th->gone = 1;
			continue;
		}
		if (!WIFSTOPPED(status))
			continue;
		/*
		 * PTRACE_EVENT_STOP is our interrupt or a group-stop; a plain
		 * stop is a signal on its way to the thread: keep it and hand
		 * it back at detach, so that it is not lost.
		 */
		if ((status >> 16) == 0)
			th->pending_sig = WSTOPSIG(status);
		th->stopped = 1;
	}
}

int hi_target_stop(struct hi_target *t, unsigned timeout_ms)
{
	uint64_t deadline;
	sigset_t block;
	int ret, rounds = 0;

	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGQUIT);
	sigaddset(&block, SIGTSTP);
	sigprocmask(SIG_BLOCK, &block, &t->saved_mask);

	t->nthreads = 0;
	hi_mem_invalidate(&t->mem);
	t->stop_ns = now_ns();
	t->stopped = 1;
	deadline = t->stop_ns + (uint64_t)timeout_ms * 1000000u;
	/*
	 * A thread may create another until it is stopped itself, so list the
	 * threads again after every round of stops, until a round finds none.
	 */
	do {
		ret = seize_new(t);
		if (ret < 0)
			goto fail;
		if (ret == 0 && rounds > 0)
			break;
		ret = wait_stops(t, deadline);
		if (ret < 0)
			goto fail;
		if (++rounds > 10000) {
			ret = -EAGAIN;
			goto fail;
		}
	} while (1);

	for (size_t i = 0; i < t->nthreads; i++) {
		if (!t->threads[i].gone)
			return 0;
	}
	ret = -ESRCH;
fail:
	{
		int saved = ret;

		hi_target_resume(t);
		return saved;
	}
}

int hi_target_resume(struct hi_target *t)
{
	int first = 0;

	if (!t->stopped)
		return 0;
	for (size_t i = 0; i < t->nthreads; i++) {
		struct hi_thread *th = &t->threads[i];

		if (!th->seized || th->gone)
			continue;
		/*
		 * A thread that has not reported its stop cannot be detached
		 * yet (ESRCH); the kernel releases it when heapinspect exits.
		 */
		if (ptrace(PTRACE_DETACH, th->tid, NULL,
			   (void *)(long)th->pending_sig) != 0 &&
		    errno != ESRCH && !first)
			first = -errno;
		th->seized = 0;
		th->stopped = 0;
	}
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
		n += !t->threads[i].gone;
	return n;
}

struct hi_reader hi_target_reader(struct hi_target *t)
{
	return hi_mem_reader(&t->mem);
}
