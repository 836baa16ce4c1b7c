/* SPDX-License-Identifier: MIT */
/*
 * The small pieces every layer shares (include/heapinspect/hi.h).  They live
 * in the lowest library so that every other one can use them.
 */
#include <string.h>

#include "heapinspect/hi.h"

static const char *const hi_messages[] = {
#define HI_ERROR(name, text) [HI_E_##name - HI_E_BASE] = text,
	HI_ERRORS
#undef HI_ERROR
};

const char *hi_strerror(int err)
{
	int e = -err;

	if (e > HI_E_BASE && e < HI_E_END)
		return hi_messages[e - HI_E_BASE];
	if (e > 0 && e < HI_E_BASE)
		return strerror(e);
	return "unknown error";
}

const struct hi_map *hi_maps_find(const struct hi_maps *maps, hi_addr_t addr)
{
	size_t lo = 0, hi = maps->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct hi_map *m = &maps->v[mid];

		if (addr < m->start)
			hi = mid;
		else if (addr >= m->end)
			lo = mid + 1;
		else
			return m;
	}
	return NULL;
}

int hi_maps_rw_range(const struct hi_maps *maps, hi_addr_t addr, uint64_t len)
{
	const struct hi_map *m = hi_maps_find(maps, addr);

	if (!m || (m->prot & (HI_PROT_R | HI_PROT_W)) !=
			  (HI_PROT_R | HI_PROT_W))
		return 0;
	return len <= m->end - addr;
}
