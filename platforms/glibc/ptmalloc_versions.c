/* SPDX-License-Identifier: MIT */
/*
 * Which built-in table serves which glibc version.  Version differences are
 * data: each version maps to the build (ptmalloc_builds.c) whose struct
 * malloc_state, struct malloc_par and struct malloc_chunk are the same as
 * that version's.  A version with a build of its own is proven: its table
 * is what that build's DWARF says.  The others are mapped from glibc's
 * sources (malloc/malloc.c and malloc/arena.c at the release's tag), on
 * this evidence:
 *
 * - struct malloc_chunk is the same from 2.26 to 2.44 (prev_size, size,
 *   fd, bk, fd_nextsize, bk_nextsize); the five builds agree.
 * - struct malloc_state gained have_fastchunks in 2.27 and kept the same
 *   2200-byte layout to 2.42: the 2.31, 2.36 and 2.41 builds agree, and so
 *   do malloc.c of 2021 (between 2.33 and 2.34) and of glibc-2.42.  2.43
 *   removed fastbinsY and have_fastchunks (2112 bytes; the 2.43 and 2.44
 *   builds).
 * - struct malloc_par gained thp_pagesize, hp_pagesize and hp_flags in
 *   2.35 ("malloc: Add madvise support for Transparent Huge Pages" and
 *   "malloc: Add Huge Page support for mmap", the glibc.malloc.hugetlb
 *   tunable of the 2.35 NEWS).  malloc.c of 2021 (2.33/2.34) has the 2.31
 *   members only; the 2.36 and the 2.41 builds have the same 136-byte
 *   layout, so the releases between them, which did not touch these
 *   structs, have it too.  glibc-2.42's malloc.c renames tcache_bins to
 *   tcache_small_bins and leaves every offset and default value as in 2.41
 *   (TCACHE_FILL_COUNT 7, tcache_max_bytes tidx2usize (63) = 1032).
 * - struct tcache_perthread_struct has TCACHE_MAX_BINS = 64 entries to
 *   2.41; glibc-2.42 adds TCACHE_LARGE_BINS 12 (76 entries, after 76
 *   uint16_t num_slots: at 152), which the 2.42 table takes from there.
 * - Safe-linking (PROTECT_PTR, REVEAL_PTR) came with 2.32.  It is not a
 *   layout change but a flag of the table: 2.32 to 2.34 use the 2.31
 *   build's layout with safe_linking set (ptm_builtin_for).
 *
 * Versions before 2.31 or after 2.44 have no table: nothing here was
 * checked against 2.30 or older, and a later release may change anything.
 * With its debug information heapinspect reads it from the DWARF all the
 * same; without, --method auto calls the target's own mallinfo2().
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "ptmalloc_priv.h"

static const struct {
	unsigned first, last; /* glibc 2.first to 2.last */
	unsigned build_minor; /* the build whose table serves them */
	/* When not zero: replaces the build's, for the versions mapped. */
	struct ptm_field tcache_entries;
} ptm_versions[] = {
	{ 31, 34, 31, { 0, 0, 0 } },
	{ 35, 38, 36, { 0, 0, 0 } },
	{ 39, 41, 41, { 0, 0, 0 } },
	{ 42, 42, 41, { 152, 608, 76 } },
	{ 43, 43, 43, { 0, 0, 0 } },
	{ 44, 44, 44, { 0, 0, 0 } },
};

#define NVERSIONS (sizeof(ptm_versions) / sizeof(ptm_versions[0]))

/* A version mapped onto another's build; its name says so. */
static struct ptm_build ptm_variant;
static char ptm_variant_name[192];
static char ptm_range[384];

static const struct ptm_build *build_of(unsigned minor)
{
	for (unsigned b = 0; b < ptm_nbuilds; b++) {
		if (ptm_builds[b].major == 2 && ptm_builds[b].minor == minor)
			return &ptm_builds[b];
	}
	return NULL;
}

/* Append "2.a", "2.a, 2.b" or "2.a to 2.c" to a list made in buf. */
static void add_span(char *buf, size_t size, unsigned a, unsigned b)
{
	size_t n = strlen(buf);

	if (n < size)
		snprintf(buf + n, size - n,
			 a == b ? "%s2.%u" : b == a + 1 ? "%s2.%u, 2.%u"
						       : "%s2.%u to 2.%u",
			 n ? ", " : "", a, b);
}

/*
 * "glibc 2.31 to 2.44 on x86_64 (proven on real builds: 2.31, ...; mapped
 * from glibc's sources: 2.32 to 2.35, ...)", from the tables themselves.
 */
static const char *range_text(void)
{
	char proven[96] = "", mapped[96] = "";
	unsigned lo = ptm_versions[0].first;
	unsigned hi = ptm_versions[NVERSIONS - 1].last;

	if (ptm_range[0])
		return ptm_range;
	for (unsigned v = lo, run = lo; v <= hi; v++) {
		int p = build_of(v) != NULL;

		if (v == hi || (build_of(v + 1) != NULL) != p) {
			add_span(p ? proven : mapped, p ? sizeof(proven)
						      : sizeof(mapped), run, v);
			run = v + 1;
		}
	}
	snprintf(ptm_range, sizeof(ptm_range), "glibc 2.%u to 2.%u on x86_64 "
		 "(proven on real builds: %s; mapped from glibc's sources: "
		 "%s)", lo, hi, proven, mapped);
	return ptm_range;
}

const struct ptm_build *ptm_builtin_for(unsigned major, unsigned minor,
					const char **range)
{
	*range = range_text();
	if (major != 2)
		return NULL;
	for (size_t i = 0; i < NVERSIONS; i++) {
		const struct ptm_build *pb;

		if (minor < ptm_versions[i].first ||
		    minor > ptm_versions[i].last)
			continue;
		pb = build_of(ptm_versions[i].build_minor);
		if (!pb)
			return NULL;
		if (pb->minor == minor)
			return pb;
		ptm_variant = *pb;
		ptm_variant.minor = minor;
		/* Safe-linking came with glibc 2.32 (commit a1a486d7). */
		ptm_variant.layout.safe_linking = minor >= 32;
		if (ptm_versions[i].tcache_entries.size)
			ptm_variant.layout.tcache_entries =
				ptm_versions[i].tcache_entries;
		snprintf(ptm_variant_name, sizeof(ptm_variant_name),
			 "glibc 2.%u, mapped from glibc's sources onto %s",
			 minor, pb->name);
		ptm_variant.name = ptm_variant_name;
		ptm_variant.mapped = 1;
		return &ptm_variant;
	}
	return NULL;
}
