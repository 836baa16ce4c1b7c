/* SPDX-License-Identifier: MIT */
/*
 * Which built-in table serves which glibc version.  Version differences are
 * data: each version maps to the build (ptmalloc_builds.c) whose struct
 * malloc_state, struct malloc_par and struct malloc_chunk are the same as
 * that version's.  The evidence for the versions that have no build here:
 *
 * - struct malloc_chunk is the same from 2.26 to 2.41 (prev_size, size,
 *   fd, bk, fd_nextsize, bk_nextsize); the three builds agree.
 * - struct malloc_state gained have_fastchunks in 2.27 and is unchanged
 *   since: the 2.31 and the 2.41 builds have the same 2200-byte layout, and
 *   so has glibc's malloc/malloc.c of 2021 (between 2.33 and 2.34) as read.
 * - struct malloc_par gained thp_pagesize, hp_pagesize and hp_flags in
 *   2.35 ("malloc: Add madvise support for Transparent Huge Pages" and
 *   "malloc: Add Huge Page support for mmap", the glibc.malloc.hugetlb
 *   tunable of the 2.35 NEWS).  malloc.c of 2021 (2.33/2.34) has the 2.31
 *   members only; the 2.36 and the 2.41 builds have the same 136-byte
 *   layout, so the releases between them, which did not touch these
 *   structs, have it too.
 * - Safe-linking (PROTECT_PTR, REVEAL_PTR) came with 2.32.  It is not a
 *   layout change but a flag of the table: 2.32 to 2.34 use the 2.31
 *   build's layout with safe_linking set (ptm_builtin_for).
 *
 * Versions before 2.31 or after 2.41 are refused: glibc 2.42 reworked
 * tcache and malloc_par, and nothing here was checked against 2.30 or
 * older.
 */
#include <stddef.h>

#include "ptmalloc_priv.h"

static const struct {
	unsigned first, last; /* glibc 2.first to 2.last */
	unsigned build_minor; /* the build whose table serves them */
} ptm_versions[] = {
	{ 31, 34, 31 },
	{ 35, 38, 36 },
	{ 39, 41, 41 },
};

#define PTM_RANGE "glibc 2.31 to 2.41 on x86_64"

/* 2.32 to 2.34 with the 2.31 layout and safe-linking on. */
static struct ptm_build ptm_safe_variant;

const struct ptm_build *ptm_builtin_for(unsigned major, unsigned minor,
					const char **range)
{
	*range = PTM_RANGE;
	if (major != 2)
		return NULL;
	for (size_t i = 0; i < sizeof(ptm_versions) / sizeof(ptm_versions[0]);
	     i++) {
		if (minor < ptm_versions[i].first ||
		    minor > ptm_versions[i].last)
			continue;
		for (unsigned b = 0; b < ptm_nbuilds; b++) {
			const struct ptm_build *pb = &ptm_builds[b];
			int safe = minor >= 32;

			if (pb->major != 2 ||
			    pb->minor != ptm_versions[i].build_minor)
				continue;
			if (pb->layout.safe_linking == safe)
				return pb;
			ptm_safe_variant = *pb;
			ptm_safe_variant.layout.safe_linking = safe;
			return &ptm_safe_variant;
		}
	}
	return NULL;
}
