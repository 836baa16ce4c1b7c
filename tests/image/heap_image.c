/* SPDX-License-Identifier: MIT */
/*
 * Heap images (heap_image.h).  The file, in little-endian 64-bit words:
 *
 *	"HIHEAP02"
 *	layout: state_size, then (off, size, count) of mutex fastbinsY top
 *	        bins next attached_threads system_mem max_system_mem;
 *	        par_size, then n_mmaps mmapped_mem max_mmapped_mem; then
 *	        mchunk_size fd bk; hinfo_size, then ar_ptr prev size of
 *	        heap_info; ptr_size, safe_linking
 *	where:  main_arena, mp_
 *	figures: have, low32, the ten mallinfo2 figures
 *	maps:   count, then (start, end, prot, kind) each, kind being
 *	        is_heap | backing << 1 (older images: is_heap alone)
 *	segs:   count, then (addr, len, the bytes padded to 8) each
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "heap_image.h"

static const unsigned char magic[8] = "HIHEAP02";

struct cur {
	const unsigned char *p;
	size_t left;
	int bad;
};

static uint64_t word(struct cur *c)
{
	uint64_t v = 0;

	if (c->left < 8) {
		c->bad = 1;
		return 0;
	}
	for (int i = 7; i >= 0; i--)
		v = v << 8 | c->p[i];
	c->p += 8;
	c->left -= 8;
	return v;
}

static void field(struct cur *c, struct ptm_field *f)
{
	f->off = word(c);
	f->size = word(c);
	f->count = word(c);
}

/* The layout's fields in file order: one table for reading and writing. */
#define LAYOUT_FIELDS(X)                                                     \
	X(mutex) X(flags) X(fastbins) X(top) X(bins) X(next)                \
	X(attached_threads) X(system_mem) X(max_system_mem)

#define PAR_FIELDS(X)                                                        \
	X(trim_threshold) X(mmap_threshold) X(hp_pagesize) X(n_mmaps)       \
	X(n_mmaps_max) X(max_n_mmaps) X(mmapped_mem) X(max_mmapped_mem)     \
	X(sbrk_base) X(tcache_bins) X(tcache_max_bytes) X(tcache_count)
#define CHUNK_FIELDS(X) X(c_size) X(c_fd) X(c_bk)
#define HINFO_FIELDS(X) X(h_ar_ptr) X(h_prev) X(h_size)

int hi_image_parse(const unsigned char *buf, size_t len, struct hi_image *im)
{
	struct cur c = { .p = buf, .left = len };
	uint64_t n, n2, total = 0;
	int ret = -EINVAL;

	memset(im, 0, sizeof(*im));
	if (len < sizeof(magic) || memcmp(buf, magic, sizeof(magic)) != 0)
		return -EINVAL;
	c.p += 8;
	c.left -= 8;
	im->l.state_size = word(&c);
#define X(name) field(&c, &im->l.name);
	LAYOUT_FIELDS(X)
	im->l.par_size = word(&c);
	PAR_FIELDS(X)
	CHUNK_FIELDS(X)
	im->l.hinfo_size = word(&c);
	HINFO_FIELDS(X)
#undef X
	im->l.ptr_size = (unsigned)word(&c);
	im->l.safe_linking = word(&c) != 0;
	im->w.main_arena = word(&c);
	im->w.mp = word(&c);
	im->have_fig = word(&c) != 0;
	im->low32 = word(&c) != 0;
	for (int i = 0; i < HI_IMAGE_NFIG; i++)
		im->fig[i] = word(&c);

	n = word(&c);
	if (c.bad || n > HI_IMAGE_MAX_MAPS || n > c.left / 32)
		goto err;
	im->maps.v = calloc(n ? n : 1, sizeof(*im->maps.v));
	if (!im->maps.v) {
		ret = -ENOMEM;
		goto err;
	}
	im->maps.n = n;
	for (uint64_t i = 0; i < n; i++) {
		struct hi_map *m = &im->maps.v[i];

		m->start = word(&c);
		m->end = word(&c);
		m->prot = (unsigned)word(&c) & 7;
		n2 = word(&c);
		m->is_heap = (int)(n2 & 1);
		m->backing = (uint32_t)(n2 >> 1);
		/* hi_maps_find needs them sorted and apart. */
		if (m->end <= m->start ||
		    (i && m->start < im->maps.v[i - 1].end))
			goto err;
	}

	n = word(&c);
	if (c.bad || n > HI_IMAGE_MAX_SEGS || n > c.left / 16)
		goto err;
	im->segs = calloc(n ? n : 1, sizeof(*im->segs));
	if (!im->segs) {
		ret = -ENOMEM;
		goto err;
	}
	/* One copy of all the bytes; the segments point into it. */
	im->buf = malloc(c.left ? c.left : 1);
	if (!im->buf) {
		ret = -ENOMEM;
		goto err;
	}
	im->nsegs = n;
	for (uint64_t i = 0; i < n; i++) {
		struct hi_image_seg *s = &im->segs[i];
		uint64_t padded;

		s->addr = word(&c);
		s->len = word(&c);
		if (c.bad || s->len == 0 || s->len > c.left ||
		    s->addr + s->len < s->addr ||
		    (i && s->addr < im->segs[i - 1].addr + im->segs[i - 1].len))
			goto err;
		padded = (s->len + 7) & ~(uint64_t)7;
		if (padded > c.left)
			goto err;
		memcpy(im->buf + total, c.p, s->len);
		s->data = im->buf + total;
		total += s->len;
		c.p += padded;
		c.left -= padded;
	}
	if (c.bad)
		goto err;
	return 0;
err:
	hi_image_free(im);
	return ret;
}

int hi_image_load(const char *path, struct hi_image *im)
{
	unsigned char *buf = NULL;
	size_t len = 0, cap = 0;
	FILE *f = fopen(path, "rbe");
	int ret;

	if (!f)
		return -errno;
	for (;;) {
		size_t got;

		if (len == cap) {
			size_t ncap = cap ? cap * 2 : 1 << 20;
			unsigned char *nb = realloc(buf, ncap);

			if (!nb) {
				ret = -ENOMEM;
				goto out;
			}
			buf = nb;
			cap = ncap;
		}
		got = fread(buf + len, 1, cap - len, f);
		len += got;
		if (got == 0)
			break;
	}
	ret = ferror(f) ? -EIO : hi_image_parse(buf, len, im);
out:
	free(buf);
	fclose(f);
	return ret;
}

static int put(FILE *f, uint64_t v)
{
	unsigned char b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)(v >> (8 * i));
	return fwrite(b, 1, 8, f) == 8 ? 0 : -1;
}

int hi_image_write(FILE *f, const struct hi_image *im)
{
	static const unsigned char zero[8];
	int bad = 0;

	bad |= fwrite(magic, 1, 8, f) != 8;
	bad |= put(f, im->l.state_size);
#define X(name)                                                              \
	bad |= put(f, im->l.name.off) | put(f, im->l.name.size) |            \
	       put(f, im->l.name.count);
	LAYOUT_FIELDS(X)
	bad |= put(f, im->l.par_size);
	PAR_FIELDS(X)
	CHUNK_FIELDS(X)
	bad |= put(f, im->l.hinfo_size);
	HINFO_FIELDS(X)
#undef X
	bad |= put(f, im->l.ptr_size) | put(f, im->l.safe_linking);
	bad |= put(f, im->w.main_arena) | put(f, im->w.mp);
	bad |= put(f, im->have_fig) | put(f, im->low32);
	for (int i = 0; i < HI_IMAGE_NFIG; i++)
		bad |= put(f, im->fig[i]);
	bad |= put(f, im->maps.n);
	for (size_t i = 0; i < im->maps.n; i++) {
		const struct hi_map *m = &im->maps.v[i];

		bad |= put(f, m->start) | put(f, m->end) | put(f, m->prot) |
		       put(f, (uint64_t)(m->is_heap != 0) |
				      (uint64_t)m->backing << 1);
	}
	bad |= put(f, im->nsegs);
	for (size_t i = 0; i < im->nsegs; i++) {
		const struct hi_image_seg *s = &im->segs[i];
		size_t pad = (8 - s->len % 8) % 8;

		bad |= put(f, s->addr) | put(f, s->len);
		bad |= fwrite(s->data, 1, s->len, f) != s->len;
		bad |= fwrite(zero, 1, pad, f) != pad;
	}
	return bad ? -EIO : 0;
}

void hi_image_free(struct hi_image *im)
{
	free(im->maps.v);
	free(im->segs);
	free(im->buf);
	memset(im, 0, sizeof(*im));
}

struct hi_image_seg *hi_image_seg_of(const struct hi_image *im,
				     hi_addr_t addr)
{
	size_t lo = 0, hi = im->nsegs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		struct hi_image_seg *s = &im->segs[mid];

		if (addr < s->addr)
			hi = mid;
		else if (addr - s->addr >= s->len)
			lo = mid + 1;
		else
			return s;
	}
	return NULL;
}

static int image_read(void *arg, hi_addr_t addr, void *buf, size_t len)
{
	struct hi_image_reader *ir = arg;
	const struct hi_image_seg *s;

	ir->calls++;
	s = hi_image_seg_of(ir->im, addr);
	if (!s || len > s->len - (addr - s->addr))
		return -EFAULT;
	ir->bytes += len;
	memcpy(buf, s->data + (addr - s->addr), len);
	if (ir->trace)
		ir->trace(ir->trace_arg, addr, len);
	return 0;
}

/*
 * What the sweep asks of a reader besides read: the image is all in
 * memory, so every byte of a segment is at hand, there is nothing to
 * fetch ahead, and reads may come from several threads at once (the
 * counters are atomic; trace must be NULL then).
 */
static int image_cached(void *arg, hi_addr_t addr, size_t len)
{
	struct hi_image_reader *ir = arg;
	const struct hi_image_seg *s = hi_image_seg_of(ir->im, addr);

	return s && len <= s->len - (addr - s->addr);
}

static void image_prefetch(void *arg, const hi_addr_t *addrs, size_t n,
			   int dir)
{
	(void)arg, (void)addrs, (void)n, (void)dir;
}

static int image_read_direct(void *arg, hi_addr_t addr, void *buf,
			     size_t len)
{
	struct hi_image_reader *ir = arg;
	const struct hi_image_seg *s;

	if (ir->trace)
		return -ENOSYS;
	__atomic_fetch_add(&ir->calls, 1, __ATOMIC_RELAXED);
	s = hi_image_seg_of(ir->im, addr);
	if (!s || len > s->len - (addr - s->addr))
		return -EFAULT;
	__atomic_fetch_add(&ir->bytes, len, __ATOMIC_RELAXED);
	memcpy(buf, s->data + (addr - s->addr), len);
	return 0;
}

struct hi_reader hi_image_reader(struct hi_image_reader *ir)
{
	struct hi_reader r = {
		.read = image_read,
		.cached = image_cached,
		.prefetch = image_prefetch,
		.read_direct = image_read_direct,
		.arg = ir,
	};

	return r;
}

uint64_t hi_image_rw_bytes(const struct hi_image *im)
{
	uint64_t n = 0;

	for (size_t i = 0; i < im->maps.n; i++) {
		const struct hi_map *m = &im->maps.v[i];

		/* Saturating: a fuzzed image may claim the whole space. */
		if ((m->prot & (HI_PROT_R | HI_PROT_W)) ==
		    (HI_PROT_R | HI_PROT_W))
			n = n + (m->end - m->start) < n
				    ? UINT64_MAX
				    : n + (m->end - m->start);
	}
	return n;
}
