/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the glibc walker over a fuzzed heap image
 * (tests/image/heap_image.h), layout, mappings and memory alike.  The
 * layout is what malformed DWARF could hand the walker, the memory what a
 * corrupt heap could hold.  Any crash, sanitizer report, or broken promise
 * (below) is a finding: abort() makes libFuzzer save the input.
 *
 * Each image is read three ways: as heapinspect does (auto), by the lists
 * only and by the sweep only (ptmalloc_sweep.c: the heap read from end to
 * end, its bins' links checked without following them).  Each must keep
 * its promises, and two that end with figures for every arena must end
 * with the same figures: both count what int_mallinfo counts, and each
 * reports a heap corrupt where it cannot.
 *
 * Seeds: seed_walk writes small hand-built images (tests/fuzz/seed_walk.c)
 * that both ways read.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heap_image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void broken(const char *what, enum ptm_mode mode)
{
	static const char *const names[] = { "auto", "lists", "sweep" };

	fprintf(stderr, "fuzz_walk (%s): %s\n", names[mode], what);
	abort();
}

/*
 * Read the image in mode and check the walk's own promises.  Return 1
 * with the figures in *mi when every arena was read, else 0.
 */
static int walk(const struct hi_image *im, struct hi_image_reader *ir,
		const struct hi_reader *r, uint64_t rw, enum ptm_mode mode,
		struct hi_mallinfo *mi, size_t *narenas)
{
	uint64_t sys = 0, avail = 0;
	struct hi_heap h;
	int ret, complete;

	ir->calls = 0;
	ret = ptm_read_heap_mode(&im->l, &im->w, r, &im->maps, 0, mode, &h);
	/* The walk's work: proportional to writable memory (test_mutate.c). */
	if (ir->calls > rw / 8 + 64)
		broken("more reader calls than the bound", mode);
	if (ret == -HI_E_CORRUPT) {
		if (!h.why[0])
			broken("corrupt ring without a reason", mode);
		return 0;
	}
	/*
	 * -ENOMEM, the reader (mp_ outside the image), or a sweep that gives
	 * up (-ENOTSUP: auto mode walks the lists then).
	 */
	if (ret)
		return 0;
	for (size_t i = 0; i < h.narenas; i++) {
		const struct hi_arena *a = &h.arenas[i];

		if (a->status == -HI_E_CORRUPT && !a->why[0])
			broken("corrupt arena without a reason", mode);
		if (a->status)
			continue;
		if (a->top_size + a->fast_bytes + a->bin_bytes > a->system_mem)
			broken("an arena's free bytes exceed its system memory",
			       mode);
		sys += a->system_mem;
		avail += a->top_size + a->fast_bytes + a->bin_bytes;
	}
	if (h.complete && (h.mi.arena != sys || h.mi.fordblks != avail ||
			   h.mi.uordblks + h.mi.fordblks != h.mi.arena))
		broken("figures do not add up", mode);
	complete = h.complete;
	*mi = h.mi;
	*narenas = h.narenas;
	hi_heap_free(&h);
	return complete;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum ptm_mode modes[] = { PTM_AUTO, PTM_LISTS, PTM_SWEEP };
	struct hi_image im;
	struct hi_image_reader ir = { .im = &im };
	struct hi_mallinfo mi[3];
	size_t narenas[3];
	int done[3];
	struct hi_reader r;
	uint64_t rw;
	int ret;

	if (hi_image_parse(data, size, &im))
		return 0;
	if (ptm_layout_check(&im.l))
		goto out;
	r = hi_image_reader(&ir);
	rw = hi_image_rw_bytes(&im);
	ret = ptm_busy(&im.l, &im.w, &r, &im.maps);
	(void)ret;
	for (int m = 0; m < 3; m++) {
		memset(&mi[m], 0, sizeof(mi[m]));
		done[m] = walk(&im, &ir, &r, rw, modes[m], &mi[m], &narenas[m]);
	}
	for (int m = 1; m < 3; m++) {
		for (int k = 0; k < m; k++) {
			if (done[m] && done[k] &&
			    (narenas[m] != narenas[k] ||
			     memcmp(&mi[m], &mi[k], sizeof(mi[m]))))
				broken("figures differ from another way's",
				       modes[m]);
		}
	}
out:
	hi_image_free(&im);
	return 0;
}
