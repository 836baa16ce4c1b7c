/* SPDX-License-Identifier: MIT */
/*
 * A small stand-in for glibc's libc: a compilation unit named malloc.c
 * with main_arena and mp_, and a version banner, built with DWARF into
 * libseedc.so.  It is never run; symbols/ reads it as a file.
 */
#include "malloc_structs.h"

__attribute__((used)) const char seed_banner[] =
	"GNU C Library (heapinspect seed) stable release version 2.36.\n";

__attribute__((used)) static struct malloc_state main_arena = {
	.next = &main_arena,
	.attached_threads = 1,
};

__attribute__((used)) static struct malloc_par mp_ = {
	.mmap_threshold = 128 * 1024,
};

/* Code in the unit, so that it has address ranges. */
size_t seed_system_mem(void);

size_t seed_system_mem(void)
{
	return main_arena.system_mem + mp_.mmapped_mem;
}
