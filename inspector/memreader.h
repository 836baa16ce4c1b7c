/* SPDX-License-Identifier: MIT */
/*
 * Reading a stopped target's memory: process_vm_readv (many ranges per
 * call), or /proc/PID/mem where the kernel lacks it, behind a cache of
 * page-sized blocks.
 */
#ifndef HEAPINSPECT_MEMREADER_H
#define HEAPINSPECT_MEMREADER_H

#include <stdint.h>
#include <sys/types.h>

#include "heapinspect/hi.h"

struct hi_block;

struct hi_mem {
	pid_t pid;
	int mem_fd;           /* /proc/PID/mem, when process_vm_readv fails */
	int vm_readv_broken;  /* process_vm_readv said ENOSYS/EPERM */
	struct hi_block *cache;
	uint64_t generation;  /* bumped at every stop: old blocks are stale */
	const struct hi_maps *maps; /* of the current stop, for read-ahead */
	uint64_t reads;       /* system calls made to read memory */
};

void hi_mem_init(struct hi_mem *m, pid_t pid);
void hi_mem_fini(struct hi_mem *m);

/* Forget every cached block: the target has run since they were read. */
void hi_mem_invalidate(struct hi_mem *m);

/* The struct hi_reader of platform code over m. */
struct hi_reader hi_mem_reader(struct hi_mem *m);

#endif
