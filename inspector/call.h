/* SPDX-License-Identifier: MIT */
/*
 * Calling the allocator's own functions in a live target, safely: wait for a
 * moment when no thread holds an allocator lock or is inside the allocator,
 * run the function in one thread while the others stay stopped, and put that
 * thread back exactly as it was.  The mechanics are the architecture's
 * (platforms/x86_64/); the waiting, the choice of thread and the deadlines
 * live here.
 */
#ifndef HEAPINSPECT_CALL_H
#define HEAPINSPECT_CALL_H

#include <stdint.h>

#include "platform.h"
#include "target.h"

#define HI_CALL_MAX_SYSCALLS 8

/* What happened around one call, for the report. */
struct hi_call_report {
	const char *function;   /* "mallinfo2", "mallinfo", "malloc_trim" */
	pid_t thread;           /* the thread that ran it */
	int host_rank;          /* enum hi_call_rank */
	uint64_t host_syscall;  /* its interrupted system call, or -1 */
	unsigned attempts;      /* stops until the allocator was quiet */
	uint64_t waited_us;     /* from the first stop to the call */
	uint64_t call_us;       /* the call alone */
	char unsafe[256];       /* the last reason it was not safe yet */
	int locks_checked;      /* arena and global lock words were read */
	int stacks_checked;     /* call stacks unwound (else only PCs) */
	int restorer_by_code;   /* __restore_rt found by its code */
	int signals_held;       /* signals that waited for the call */
	int abandoned;          /* the call was stopped and undone */
	int left_running;       /* the call was left to finish by itself */
	/* A call that failed part way (-HI_E_CALLFAULT), and was undone: */
	int fault_sig;          /* the signal it raised, or 0 */
	int fault_code;         /* its si_code */
	hi_addr_t fault_addr;   /* si_addr of a SIGSEGV, SIGBUS ... */
	const char *fault_syscall; /* or the system call of its failure
				      path (writev of malloc_printerr ...),
				      stopped before it ran */
	char fault_msg[200];    /* what it was about to write on stderr */
	int locks_released;     /* allocator locks it held, released */
	hi_addr_t lock_addr;    /* the first of them */
	int locks_unknown;      /* no layout: it may hold a lock still */
	int sig_reset;          /* a fault signal the process ignored:
				   the kernel made it default */
	struct {
		const char *name;
		unsigned count;
	} syscalls[HI_CALL_MAX_SYSCALLS]; /* made by the function */
	unsigned nsyscalls_other;
};

/* Everything a caller needs; set up with hi_caller_init. */
struct hi_caller {
	struct hi_target *t;
	struct hi_alloc_ctx *ctx;
	const struct hi_allocator_ops *ops;
	const struct hi_arch_ops *arch;
	struct hi_alloc_funcs funcs;
	int located;               /* the layout is known: lock words */
	hi_addr_t (*code)[2];      /* malloc.c's ranges, from DWARF */
	int ncode;
	int attach_tried;
	int attached;              /* call stacks can be unwound */
	struct hi_maps maps;
	struct hi_reader reader;
	unsigned stop_timeout_ms;
};

/*
 * Set up a caller for a target whose allocator was probed (and located, when
 * located is set).  t must be initialized and not stopped.  Return 0 or a
 * negative code (-HI_E_NOSYM: no callable function, ctx->why says which).
 */
int hi_caller_init(struct hi_caller *c, struct hi_target *t,
		   struct hi_alloc_ctx *ctx,
		   const struct hi_allocator_ops *ops, int located,
		   unsigned stop_timeout_ms);
void hi_caller_fini(struct hi_caller *c);

/*
 * Stop the target at a moment when it is safe to call into its allocator:
 * no arena lock or global lock held (where the layout is known), no
 * thread's call stack inside the allocator, and a thread that can host
 * call.  Until deadline_ns (CLOCK_MONOTONIC), let it run a moment and stop
 * it again.  Return 0 with every thread stopped; -HI_E_UNSAFE or
 * -HI_E_NOHOST (rep->unsafe says why: the last reason) or another negative
 * code, with the target running.
 */
int hi_caller_stop_safe(struct hi_caller *c, const struct hi_call *call,
			uint64_t deadline_ns, struct hi_call_report *rep);

/*
 * Run call in one thread of the stopped target, the others staying stopped,
 * and put that thread back exactly as it was.  result gets call->ret_size
 * bytes.  Return 0 with the target still stopped; or -HI_E_CALLSTUCK when it
 * did not return by deadline_ns (rep->abandoned: undone, target stopped;
 * rep->left_running: the target was released to finish the call by itself),
 * -HI_E_CALLFAULT when the function faulted or took its failure path
 * (undone before any signal was delivered, the allocator locks it held
 * released where the layout is known: rep->fault_* and locks_* say what
 * happened), -HI_E_NOHOST, or another negative code.
 */
int hi_caller_call(struct hi_caller *c, const struct hi_call *call,
		   const char *name, void *result, uint64_t deadline_ns,
		   struct hi_call_report *rep);

/*
 * Test builds only (HI_TEST_HOOKS, tests/CMakeLists.txt): with
 * HEAPINSPECT_TEST_UNCHECKED=call, a call goes ahead into a heap that the
 * read found unsound; =nolayout, it goes ahead as if no layout were known
 * (no lock words, no read), so that a test can make a call fail for real.
 * Return 0 (always, in the shipped binary), 1 (call) or 2 (nolayout).
 */
int hi_caller_test_unchecked(void);

/* The monotonic clock in nanoseconds. */
uint64_t hi_now_ns(void);

#endif
