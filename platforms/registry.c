/* SPDX-License-Identifier: MIT */
/*
 * The backends heapinspect knows, chosen at run time: allocators by probing
 * in order, architectures by the target's ELF e_machine (elfutils'
 * machines[] table).
 */
#include <elf.h>
#include <stddef.h>
#include <stdlib.h>

#include "platform.h"

extern const struct hi_allocator_ops ptmalloc_ops;
extern const struct hi_arch_ops x86_64_ops;

const struct hi_allocator_ops *const hi_allocators[] = {
	&ptmalloc_ops,
	NULL,
};

const struct hi_arch_ops *const hi_arches[] = {
	&x86_64_ops,
	NULL,
};

const struct hi_arch_ops *hi_arch_host(void)
{
#if defined(__x86_64__)
	unsigned host = EM_X86_64;
#else
	unsigned host = EM_NONE;
#endif
	for (size_t i = 0; hi_arches[i]; i++) {
		if (hi_arches[i]->e_machine == host)
			return hi_arches[i];
	}
	return NULL;
}

void hi_alloc_funcs_free(struct hi_alloc_funcs *f)
{
	free(f->entries);
	f->entries = NULL;
	f->nentries = 0;
}
