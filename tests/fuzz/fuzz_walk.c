/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the glibc walker over a fuzzed heap image
 * (tests/image/heap_image.h), layout, mappings and memory alike.  The
 * layout is what malformed DWARF could hand the walker, the memory what a
 * corrupt heap could hold.  Any crash, sanitizer report, or broken promise
 * (below) is a finding: abort() makes libFuzzer save the input.
 *
 * Seeds: seed_walk writes small hand-built images (tests/fuzz/seed_walk.c).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "heap_image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void broken(const char *what)
{
	fprintf(stderr, "fuzz_walk: %s\n", what);
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hi_image im;
	struct hi_image_reader ir = { .im = &im };
	struct hi_reader r;
	struct hi_heap h;
	uint64_t rw, sys = 0, avail = 0;
	int ret;

	if (hi_image_parse(data, size, &im))
		return 0;
	if (ptm_layout_check(&im.l))
		goto out;
	r = hi_image_reader(&ir);
	rw = hi_image_rw_bytes(&im);
	ret = ptm_busy(&im.l, &im.w, &r, &im.maps);
	(void)ret;
	ir.calls = 0;
	ret = ptm_read_heap(&im.l, &im.w, &r, &im.maps, 0, &h);
	/* The walk's work: proportional to writable memory (test_mutate.c). */
	if (ir.calls > rw / 8 + 64)
		broken("more reader calls than the bound");
	if (ret == -HI_E_CORRUPT) {
		if (!h.why[0])
			broken("corrupt ring without a reason");
		goto out;
	}
	if (ret)
		goto out; /* -ENOMEM, or the reader: mp_ outside the image */
	for (size_t i = 0; i < h.narenas; i++) {
		const struct hi_arena *a = &h.arenas[i];

		if (a->status == -HI_E_CORRUPT && !a->why[0])
			broken("corrupt arena without a reason");
		if (a->status)
			continue;
		if (a->top_size + a->fast_bytes + a->bin_bytes > a->system_mem)
			broken("an arena's free bytes exceed its system memory");
		sys += a->system_mem;
		avail += a->top_size + a->fast_bytes + a->bin_bytes;
	}
	if (h.complete && (h.mi.arena != sys || h.mi.fordblks != avail ||
			   h.mi.uordblks + h.mi.fordblks != h.mi.arena))
		broken("figures do not add up");
	hi_heap_free(&h);
out:
	hi_image_free(&im);
	return 0;
}
