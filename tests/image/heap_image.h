/* SPDX-License-Identifier: MIT */
/*
 * Heap images: a copy of the memory of a stopped process that the glibc
 * walker reads (main_arena, mp_, every writable mapping that holds chunks),
 * with the layout the walker was given, the process's mappings, and the
 * figures the process reported itself.  hi_capture writes them; the mutation
 * test and the fuzz target feed them to the walker through a struct
 * hi_reader, without a live process.
 *
 * The file is a sequence of little-endian 64-bit words (see heap_image.c).
 * The parser treats it as hostile input: the fuzz target feeds it anything.
 */
#ifndef HEAPINSPECT_HEAP_IMAGE_H
#define HEAPINSPECT_HEAP_IMAGE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ptmalloc_priv.h"

#define HI_IMAGE_NFIG 10 /* mallinfo2, glibc's order */

/* One stretch of the target's memory, as it was when it was copied. */
struct hi_image_seg {
	hi_addr_t addr;
	uint64_t len;
	unsigned char *data; /* points into the image's buffer */
};

struct hi_image {
	struct ptm_layout l;
	struct ptm_where w;
	/* What the target's own mallinfo2() said; low32: mallinfo(). */
	uint64_t fig[HI_IMAGE_NFIG];
	int have_fig;
	int low32;
	struct hi_maps maps;        /* every mapping, sorted */
	struct hi_image_seg *segs;  /* sorted, not overlapping */
	size_t nsegs;
	unsigned char *buf;         /* owns segs[].data when loaded */
};

/* Bounds of a sane image: the fuzz target must not make us allocate more. */
#define HI_IMAGE_MAX_MAPS 65536
#define HI_IMAGE_MAX_SEGS 4096

/*
 * Parse an image from buf (len bytes).  The image keeps a copy; buf may be
 * freed afterwards.  Return 0, -EINVAL when the bytes are not a well-formed
 * image (maps or segments unsorted, lengths past the end, ...), or -ENOMEM.
 * Free with hi_image_free.
 */
int hi_image_parse(const unsigned char *buf, size_t len, struct hi_image *im);

/* Read a whole file and parse it.  0, -errno or -EINVAL. */
int hi_image_load(const char *path, struct hi_image *im);

/* Write im to f.  0 or -EIO. */
int hi_image_write(FILE *f, const struct hi_image *im);

void hi_image_free(struct hi_image *im);

/*
 * A reader over the image's segments: a read must lie inside one segment,
 * as a read of a live process lies inside one mapping, else -EFAULT.  It
 * counts its calls and bytes, which bound how much work a walk did.  It
 * has what the sweep uses too (cached, prefetch, read_direct from several
 * threads, not while trace is set), so that both ways of counting can
 * walk an image.
 */
struct hi_image_reader {
	const struct hi_image *im;
	uint64_t calls;
	uint64_t bytes;
	/* Optional: called with every read that succeeded. */
	void (*trace)(void *arg, hi_addr_t addr, size_t len);
	void *trace_arg;
};

struct hi_reader hi_image_reader(struct hi_image_reader *ir);

/* The segment holding addr, or NULL. */
struct hi_image_seg *hi_image_seg_of(const struct hi_image *im,
				     hi_addr_t addr);

/* Bytes of the image's readable and writable mappings. */
uint64_t hi_image_rw_bytes(const struct hi_image *im);

#endif
