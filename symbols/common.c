/* SPDX-License-Identifier: MIT */
/*
 * The small pieces every layer shares (include/heapinspect/hi.h).  They live
 * in the lowest library so that every other one can use them.
 */
#include <errno.h>
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

/* Whether b is the piece of a's object that comes right after it. */
static int same_object(const struct hi_map *a, const struct hi_map *b)
{
	return a->end == b->start &&
	       ((a->is_heap && b->is_heap) ||
		(a->backing && a->backing == b->backing));
}

int hi_maps_range(const struct hi_maps *maps, hi_addr_t addr, uint64_t len,
		  unsigned prot)
{
	const struct hi_map *m = hi_maps_find(maps, addr);
	size_t i;

	if (!m || (m->prot & prot) != prot)
		return 0;
	/* Most ranges end in their first mapping: one search, no more. */
	for (i = (size_t)(m - maps->v); len > m->end - addr; m++) {
		if (++i == maps->n || !same_object(m, m + 1) ||
		    (m[1].prot & prot) != prot)
			return 0;
	}
	return 1;
}

int hi_maps_rw_range(const struct hi_maps *maps, hi_addr_t addr, uint64_t len)
{
	return hi_maps_range(maps, addr, len, HI_PROT_R | HI_PROT_W);
}

int hi_maps_extent(const struct hi_maps *maps, hi_addr_t addr,
		   hi_addr_t *start, hi_addr_t *end)
{
	const struct hi_map *m = hi_maps_find(maps, addr);
	size_t lo, hi;

	if (!m)
		return -EFAULT;
	lo = hi = (size_t)(m - maps->v);
	while (lo > 0 && same_object(&maps->v[lo - 1], &maps->v[lo]))
		lo--;
	while (hi + 1 < maps->n && same_object(&maps->v[hi], &maps->v[hi + 1]))
		hi++;
	*start = maps->v[lo].start;
	*end = maps->v[hi].end;
	return 0;
}
