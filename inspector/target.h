/* SPDX-License-Identifier: MIT */
/*
 * A live target process: its /proc facts, stopping and resuming all of its
 * threads with ptrace, and reading its memory.
 */
#ifndef HEAPINSPECT_TARGET_H
#define HEAPINSPECT_TARGET_H

#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

#include "heapinspect/hi.h"
#include "memreader.h"

struct hi_thread {
	pid_t tid;
	int seized;      /* PTRACE_SEIZE succeeded */
	int stopped;     /* in a ptrace-stop we know of */
	int gone;        /* exited while we held it */
	int pending_sig; /* a signal we took out of delivery: give it back */
};

struct hi_target {
	pid_t pid;
	struct hi_thread *threads;
	size_t nthreads;
	size_t cap;
	int stopped;          /* all threads are held */
	struct hi_mem mem;    /* the memory reader, its cache invalidated at
				 every stop */
	sigset_t saved_mask;  /* signals blocked while the target is held */
	uint64_t stop_ns;     /* CLOCK_MONOTONIC when the current stop began */
	uint64_t pause_max_us;
	uint64_t pause_total_us;
};

/* Facts about a process from /proc/PID/stat and /proc/PID/status. */
struct hi_procinfo {
	char state;       /* R, S, D, T, t, Z, ... */
	int kthread;      /* PF_KTHREAD */
	int tracer;       /* TracerPid */
	uid_t uid;        /* real uid */
	char comm[64];
};

/*
 * Read a small file whole (a /proc file, a pid file): at most size - 1
 * bytes into buf, NUL-terminated.  Return its length, or -errno (-ENOENT
 * when there is no such file: for /proc/PID/..., no such process).
 */
ssize_t hi_proc_read(const char *path, char *buf, size_t size);

/*
 * Read the process's /proc facts.  Return 0, -ESRCH when there is no such
 * process, or -errno.
 */
int hi_proc_info(pid_t pid, struct hi_procinfo *info);

/*
 * The process's auxiliary vector (/proc/PID/auxv) into buf: its length, or
 * -errno (-ESRCH when gone).  It changes at every execve (new stack, new
 * vDSO, new entry point), so two reads that differ tell that the process
 * executed a new program in between.
 */
ssize_t hi_proc_auxv(pid_t pid, unsigned char *buf, size_t size);

/* Parse /proc/PID/maps.  0 or -errno; free maps->v. */
int hi_proc_maps(pid_t pid, struct hi_maps *maps);

struct hi_memstat {
	uint64_t rss, pss, uss, swap;
	int valid;
	uint64_t threads;
};

/* RSS, PSS, USS and swap from smaps_rollup; threads from status. */
int hi_proc_memstat(pid_t pid, struct hi_memstat *st);

void hi_target_init(struct hi_target *t, pid_t pid);
void hi_target_fini(struct hi_target *t);

/*
 * Stop every thread of the target: PTRACE_SEIZE and PTRACE_INTERRUPT on each
 * thread listed in /proc/PID/task, listing again until no new thread shows
 * up, then wait for all the stops.  SIGINT, SIGTERM, SIGHUP and SIGQUIT are
 * blocked for heapinspect until hi_target_resume, so that heapinspect is
 * never interrupted while it holds the target.  timeout_ms bounds the wait.
 * Return 0, or -errno (-EPERM, -ESRCH, -ETIMEDOUT) with every thread that
 * could be released released again.
 */
int hi_target_stop(struct hi_target *t, unsigned timeout_ms);

/*
 * Detach from every thread, giving back any signal taken out of delivery,
 * and restore heapinspect's signal mask.  Safe to call when nothing is held.
 * Return 0 or the first -errno (the other threads are still released).
 */
int hi_target_resume(struct hi_target *t);

/* Threads held at the moment (the count of the last stop). */
size_t hi_target_nthreads(const struct hi_target *t);

/* A reader over the target's memory, with a cache of blocks. */
struct hi_reader hi_target_reader(struct hi_target *t);

#endif
