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
	int in_kernel;   /* not stopped, but seen asleep in the kernel after
			    our PTRACE_INTERRUPT: it stops before it runs
			    another instruction of its own (see target.c) */
	int sharer;      /* not a thread: a process that shares the target's
			    memory, the child of a thread in vfork() */
	char state;      /* its /proc state when last looked at */
	long syscall;    /* in_kernel: its system call, -1 none, -2 unknown */
	hi_addr_t pc;    /* in_kernel: where it entered the kernel */
	int pc_valid;
};

/* Why the last stop failed: which thread could not be held, and why. */
struct hi_stop_why {
	int code;           /* what hi_target_stop returned, 0: no failure */
	pid_t tid;          /* the thread (or process sharing the memory) */
	pid_t tracer;       /* -EPERM: its TracerPid, 0 when untraced */
	char state;         /* -ETIMEDOUT: its /proc state */
	long syscall;       /* its system call, -1 none, -2 unknown */
	pid_t child;        /* in vfork(): a child sharing its memory that
			       could not be held, with child_err */
	int child_err;
};

struct hi_target {
	pid_t pid;
	struct hi_thread *threads;
	size_t nthreads;
	size_t cap;
	int stopped;          /* all threads are held */
	int kernel_held_ok;   /* set by the caller: a thread asleep in the
				 kernel counts as held (a read needs no
				 more; a call needs every thread stopped) */
	struct hi_stop_why why; /* of the last failed hi_target_stop */
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
 * Run fn(arg) in a thread of its own, which becomes the tracer of every
 * thread that hi_target_stop() seizes inside fn, and wait until that thread
 * has ended.  A tracee that never reached its stop (asleep in the kernel)
 * cannot be detached (PTRACE_DETACH wants a stopped tracee); the kernel
 * releases every tracee of a tracer that exits (exit_ptrace()), pending
 * interrupt and all.  So once this returns, nothing fn stopped is traced or
 * stopped, whatever path fn took.  SIGINT, SIGTERM, SIGHUP, SIGQUIT and
 * SIGTSTP are blocked in the calling thread meanwhile, so that they reach
 * fn's thread (which blocks them while the target is held) or wait.
 * Return 0 with fn's result in *result, or -errno when no thread could be
 * made.
 */
int hi_target_session(int (*fn)(void *), void *arg, int *result);

/*
 * Hold every thread of the target: PTRACE_SEIZE and PTRACE_INTERRUPT on each
 * thread listed in /proc/PID/task, listing again until no new thread shows
 * up, then wait for all the stops.  SIGINT, SIGTERM, SIGHUP, SIGQUIT and
 * SIGTSTP are blocked for heapinspect until hi_target_resume, so that
 * heapinspect is never interrupted while it holds the target.
 *
 * A thread held by another tracer (gdb, strace, another heapinspect) is
 * tried again, everything released in between, for up to timeout_ms.
 * timeout_ms also bounds the wait for the stops.  With t->kernel_held_ok, a
 * thread that sleeps in the kernel (uninterruptible sleep, vfork()) counts
 * as held without its stop, and so does the child of a thread in vfork()
 * that shares its memory, which is stopped too.
 *
 * Call it inside hi_target_session(): a thread that is seized but never
 * stops stays traced until the session ends.  Return 0, or -EPERM, -ESRCH,
 * -ETIMEDOUT, -errno, with t->why (and hi_target_last_why) saying which
 * thread and why, and every thread that has stopped released.
 */
int hi_target_stop(struct hi_target *t, unsigned timeout_ms);

/*
 * Detach from every stopped thread, giving back any signal taken out of
 * delivery, and restore heapinspect's signal mask.  A thread that has not
 * reached its stop yet stays seized (it cannot run code of its own): the
 * next stop takes it over, and the end of the session releases it.  Safe to
 * call when nothing is held.  Return 0 or the first -errno (the other
 * threads are still released).
 */
int hi_target_resume(struct hi_target *t);

/*
 * The why of the last hi_target_stop() that failed since the last
 * hi_target_session() began (code 0 when none did).
 */
void hi_target_last_why(struct hi_stop_why *why);

/*
 * Threads held at the moment (the count of the last stop), not counting
 * processes that share the memory.
 */
size_t hi_target_nthreads(const struct hi_target *t);

/* A reader over the target's memory, with a cache of blocks. */
struct hi_reader hi_target_reader(struct hi_target *t);

#endif
