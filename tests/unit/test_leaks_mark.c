/* SPDX-License-Identifier: MIT */
/*
 * The mark of `heapinspect leaks` over byte buffers: every case of
 * valgrind's own leak tests (memcheck/tests/leak-cases.c, leak-cycle.c,
 * leak-tree.c, leak_cpp_interior.cpp), rebuilt as heap images, must come
 * out as those tests' expected output says (leak-cases-full.stderr.exp,
 * leak-cycle.stderr.exp, leak-tree.stderr.exp, and the manual's table of
 * nine cases); then the corners: registers, size 0, faulting pages, a
 * state raised from possibly lost to reachable, bad input.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leaks.h"

static int failures;

#define CHECK(cond, ...)                                                    \
	do {                                                                 \
		if (!(cond)) {                                               \
			failures++;                                          \
			fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);      \
			fprintf(stderr, __VA_ARGS__);                        \
			fputc('\n', stderr);                                 \
		}                                                            \
	} while (0)

/* A sparse image of a process: a few regions of bytes. */
#define HEAP 0x10000000ull   /* blocks */
#define DATA 0x20000000ull   /* a module's .data: the root */
#define RODATA 0x30000000ull /* a module's read-only data (vtables) */
#define TEXT 0x40000000ull   /* a module's code */
#define REGION 0x100000ull

struct region {
	hi_addr_t base;
	unsigned flags;
	unsigned char bytes[REGION];
	int fault_page; /* a page index whose reads fault, or -1 */
};

static struct region regions[] = {
	{ .base = HEAP, .flags = HI_LEAK_MAP_R, .fault_page = -1 },
	{ .base = DATA, .flags = HI_LEAK_MAP_R | HI_LEAK_MAP_FILE,
	  .fault_page = -1 },
	{ .base = RODATA, .flags = HI_LEAK_MAP_R | HI_LEAK_MAP_FILE,
	  .fault_page = -1 },
	{ .base = TEXT,
	  .flags = HI_LEAK_MAP_R | HI_LEAK_MAP_X | HI_LEAK_MAP_FILE,
	  .fault_page = -1 },
};
#define NREGIONS (sizeof(regions) / sizeof(regions[0]))

static int read_error; /* forced on every read when set */

static struct region *region_of(hi_addr_t a)
{
	for (size_t i = 0; i < NREGIONS; i++) {
		if (a >= regions[i].base && a - regions[i].base < REGION)
			return &regions[i];
	}
	return NULL;
}

static int img_read(void *arg, hi_addr_t addr, void *buf, size_t len)
{
	struct region *r = region_of(addr);

	(void)arg;
	if (read_error)
		return read_error;
	if (!r || len > REGION - (addr - r->base))
		return -EFAULT;
	if (r->fault_page >= 0) {
		hi_addr_t fs = r->base + (hi_addr_t)r->fault_page * 4096;

		if (addr < fs + 4096 && addr + len > fs)
			return -EFAULT;
	}
	memcpy(buf, r->bytes + (addr - r->base), len);
	return 0;
}

static unsigned img_flags(void *arg, hi_addr_t addr, hi_addr_t *end)
{
	struct region *r = region_of(addr);

	(void)arg;
	if (!r)
		return 0;
	*end = r->base + REGION;
	return r->flags;
}

static const struct hi_reader reader = { .read = img_read };

static void reset(void)
{
	for (size_t i = 0; i < NREGIONS; i++) {
		memset(regions[i].bytes, 0, REGION);
		regions[i].fault_page = -1;
	}
	read_error = 0;
}

static void put(hi_addr_t at, uint64_t v)
{
	struct region *r = region_of(at);

	memcpy(r->bytes + (at - r->base), &v, sizeof(v));
}

/* The blocks of a test, allocated upwards in the heap like a fresh one. */
struct heap {
	struct hi_leak_block b[64];
	size_t n;
	hi_addr_t next;
};

static hi_addr_t mk(struct heap *h, uint64_t size)
{
	hi_addr_t a = h->next;

	h->b[h->n].addr = a;
	h->b[h->n].size = size;
	h->n++;
	/* 16 bytes of header between blocks, as a glibc chunk's */
	h->next += ((size + 15) & ~15ull) + 16;
	return a;
}

static void heap_init(struct heap *h)
{
	memset(h, 0, sizeof(*h));
	h->next = HEAP + 16;
}

static long index_of(const struct heap *h, hi_addr_t a)
{
	for (size_t i = 0; i < h->n; i++) {
		if (h->b[i].addr == a)
			return (long)i;
	}
	return -1;
}

static int mark(const struct heap *h, const struct hi_leak_range *roots,
		size_t nroots, const struct hi_leak_value *values,
		size_t nvalues, unsigned heuristics,
		struct hi_leak_result *r)
{
	struct hi_leak_env env = {
		.reader = &reader,
		.heuristics = heuristics,
		.map_flags = img_flags,
	};

	return hi_leak_mark(h->b, h->n, roots, nroots, values, nvalues, &env,
			    r);
}

static const char *const kind_names[] = {
	"still reachable", "possibly lost", "indirectly lost",
	"definitely lost",
};

static void expect_kind(const struct heap *h, const struct hi_leak_result *r,
			hi_addr_t a, enum hi_leak_kind k, const char *what)
{
	long i = index_of(h, a);

	CHECK(i >= 0, "%s: no block at %#llx", what, (unsigned long long)a);
	if (i < 0)
		return;
	CHECK(hi_leak_kind_of(r, (size_t)i) == k, "%s: %s, expected %s", what,
	      kind_names[hi_leak_kind_of(r, (size_t)i)], kind_names[k]);
}

static void expect_sum(const struct hi_leak_result *r, uint64_t dbytes,
		       uint64_t dblocks, uint64_t ibytes, uint64_t iblocks,
		       uint64_t pbytes, uint64_t pblocks, uint64_t rbytes,
		       uint64_t rblocks, const char *what)
{
	const struct hi_leak_sum *s = &r->sum;

	CHECK(s->bytes[HI_LEAK_DEFINITE] == dbytes &&
		      s->blocks[HI_LEAK_DEFINITE] == dblocks,
	      "%s: definitely lost %llu bytes in %llu blocks, expected %llu "
	      "in %llu", what,
	      (unsigned long long)s->bytes[HI_LEAK_DEFINITE],
	      (unsigned long long)s->blocks[HI_LEAK_DEFINITE],
	      (unsigned long long)dbytes, (unsigned long long)dblocks);
	CHECK(s->bytes[HI_LEAK_INDIRECT] == ibytes &&
		      s->blocks[HI_LEAK_INDIRECT] == iblocks,
	      "%s: indirectly lost %llu bytes in %llu blocks, expected %llu "
	      "in %llu", what,
	      (unsigned long long)s->bytes[HI_LEAK_INDIRECT],
	      (unsigned long long)s->blocks[HI_LEAK_INDIRECT],
	      (unsigned long long)ibytes, (unsigned long long)iblocks);
	CHECK(s->bytes[HI_LEAK_POSSIBLE] == pbytes &&
		      s->blocks[HI_LEAK_POSSIBLE] == pblocks,
	      "%s: possibly lost %llu bytes in %llu blocks, expected %llu "
	      "in %llu", what,
	      (unsigned long long)s->bytes[HI_LEAK_POSSIBLE],
	      (unsigned long long)s->blocks[HI_LEAK_POSSIBLE],
	      (unsigned long long)pbytes, (unsigned long long)pblocks);
	CHECK(s->bytes[HI_LEAK_REACHABLE] == rbytes &&
		      s->blocks[HI_LEAK_REACHABLE] == rblocks,
	      "%s: still reachable %llu bytes in %llu blocks, expected %llu "
	      "in %llu", what,
	      (unsigned long long)s->bytes[HI_LEAK_REACHABLE],
	      (unsigned long long)s->blocks[HI_LEAK_REACHABLE],
	      (unsigned long long)rbytes, (unsigned long long)rblocks);
}

static const struct hi_leak_range data_root = {
	.start = DATA, .end = DATA + 4096, .label = 1,
};

/*
 * leak-cases.c: nine root pointers p1..p9, blocks of two 8-byte nodes
 * (mk() allocates 2 * sizeof(Node) so that p + 1 stays inside).  The
 * expected output: leaked 80 bytes in 5 blocks (definite + indirect),
 * dubious 96 in 6, reachable 64 in 4; the definitely lost records are
 * 16, 32 (16 direct, 16 indirect) and 32 (16 direct, 16 indirect).
 */
static void test_cases(unsigned heuristics)
{
	struct heap h;
	struct hi_leak_result r;
	hi_addr_t p[10], a[10], b[10];
	int ret;

	reset();
	heap_init(&h);
	for (int i = 1; i <= 9; i++)
		p[i] = DATA + 8 * (hi_addr_t)i;
	/* mk(mk(NULL)): the inner block first, as C evaluates it */
	a[1] = mk(&h, 16);
	put(p[1], a[1]);
	b[2] = mk(&h, 16);
	a[2] = mk(&h, 16);
	put(a[2], b[2]);
	put(p[2], a[2]);
	a[3] = mk(&h, 16);
	b[4] = mk(&h, 16);
	a[4] = mk(&h, 16);
	put(a[4], b[4]);
	a[5] = mk(&h, 16);
	put(p[5], a[5] + 8);
	b[6] = mk(&h, 16);
	a[6] = mk(&h, 16);
	put(a[6], b[6] + 8);
	put(p[6], a[6]);
	b[7] = mk(&h, 16);
	a[7] = mk(&h, 16);
	put(a[7], b[7]);
	put(p[7], a[7] + 8);
	b[8] = mk(&h, 16);
	a[8] = mk(&h, 16);
	put(a[8], b[8] + 8);
	put(p[8], a[8] + 8);
	b[9] = mk(&h, 16);
	a[9] = mk(&h, 16);
	put(a[9], b[9] + 8);
	/* p9 = NULL */

	ret = mark(&h, &data_root, 1, NULL, 0, heuristics, &r);
	CHECK(ret == 0, "leak-cases: mark returned %d", ret);
	if (ret)
		return;
	expect_kind(&h, &r, a[1], HI_LEAK_REACHABLE, "case 1");
	expect_kind(&h, &r, a[2], HI_LEAK_REACHABLE, "case 2 AAA");
	expect_kind(&h, &r, b[2], HI_LEAK_REACHABLE, "case 2 BBB");
	expect_kind(&h, &r, a[3], HI_LEAK_DEFINITE, "case 3");
	expect_kind(&h, &r, a[4], HI_LEAK_DEFINITE, "case 4 AAA");
	expect_kind(&h, &r, b[4], HI_LEAK_INDIRECT, "case 4 BBB");
	expect_kind(&h, &r, a[5], HI_LEAK_POSSIBLE, "case 5");
	expect_kind(&h, &r, a[6], HI_LEAK_REACHABLE, "case 6 AAA");
	expect_kind(&h, &r, b[6], HI_LEAK_POSSIBLE, "case 6 BBB");
	expect_kind(&h, &r, a[7], HI_LEAK_POSSIBLE, "case 7 AAA");
	expect_kind(&h, &r, b[7], HI_LEAK_POSSIBLE, "case 7 BBB");
	expect_kind(&h, &r, a[8], HI_LEAK_POSSIBLE, "case 8 AAA");
	expect_kind(&h, &r, b[8], HI_LEAK_POSSIBLE, "case 8 BBB");
	expect_kind(&h, &r, a[9], HI_LEAK_DEFINITE, "case 9 AAA");
	expect_kind(&h, &r, b[9], HI_LEAK_INDIRECT, "case 9 BBB");
	expect_sum(&r, 48, 3, 32, 2, 96, 6, 64, 4, "leak-cases");
	CHECK(hi_leak_indirect_bytes(&r, (size_t)index_of(&h, a[3])) == 0,
	      "case 3: indirect bytes");
	CHECK(hi_leak_indirect_bytes(&r, (size_t)index_of(&h, a[4])) == 16,
	      "case 4: 32 (16 direct, 16 indirect)");
	CHECK(hi_leak_indirect_bytes(&r, (size_t)index_of(&h, a[9])) == 16,
	      "case 9: 32 (16 direct, 16 indirect)");
	/* explain: case 2's BBB comes from AAA, which comes from p2 */
	{
		struct hi_leak_from f = hi_leak_from(
			&r, (size_t)index_of(&h, b[2]));

		CHECK(f.type == HI_LEAK_FROM_BLOCK &&
			      f.index == (size_t)index_of(&h, a[2]),
		      "case 2 BBB: not from AAA");
		f = hi_leak_from(&r, (size_t)index_of(&h, a[2]));
		CHECK(f.type == HI_LEAK_FROM_ROOT && f.addr == p[2],
		      "case 2 AAA: not from p2");
		f = hi_leak_from(&r, (size_t)index_of(&h, b[9]));
		CHECK(f.type == HI_LEAK_FROM_BLOCK &&
			      f.index == (size_t)index_of(&h, a[9]),
		      "case 9 BBB: not indirect through AAA");
	}
	hi_leak_result_free(&r);
}

/* leak-tree.c: A -> B, C; B -> D, E; C -> F, G; then B->D and A->C cut. */
static void test_tree(void)
{
	struct heap h;
	struct hi_leak_result r;
	hi_addr_t A, B, C, D, E, F, G, t = DATA;
	int ret;

	reset();
	heap_init(&h);
	A = mk(&h, 16);
	put(t, A);
	B = mk(&h, 16);
	put(A, B);
	C = mk(&h, 16);
	D = mk(&h, 16);
	put(B, D);
	E = mk(&h, 16);
	put(B + 8, E);
	F = mk(&h, 16);
	put(C, F);
	G = mk(&h, 16);
	put(C + 8, G);
	put(B, 0); /* sever B->D */
	put(A + 8, 0); /* A->C was never set: C is cut off */

	ret = mark(&h, &data_root, 1, NULL, 0, HI_LEAK_H_ALL, &r);
	CHECK(ret == 0, "leak-tree: mark returned %d", ret);
	if (ret)
		return;
	/* leaked 64 bytes in 4 blocks, reachable 48 in 3 */
	expect_sum(&r, 32, 2, 32, 2, 0, 0, 48, 3, "leak-tree");
	expect_kind(&h, &r, D, HI_LEAK_DEFINITE, "D");
	expect_kind(&h, &r, C, HI_LEAK_DEFINITE, "C");
	expect_kind(&h, &r, F, HI_LEAK_INDIRECT, "F");
	expect_kind(&h, &r, G, HI_LEAK_INDIRECT, "G");
	CHECK(hi_leak_indirect_bytes(&r, (size_t)index_of(&h, C)) == 32,
	      "C: 48 (16 direct, 32 indirect)");
	CHECK(hi_leak_indirect_bytes(&r, (size_t)index_of(&h, D)) == 0,
	      "D: 16 direct");
	/* the chain of E back to the root: E <- B <- A <- t */
	{
		struct hi_leak_from f = hi_leak_from(&r,
						     (size_t)index_of(&h, E));

		CHECK(f.type == HI_LEAK_FROM_BLOCK &&
			      h.b[f.index].addr == B, "E: not from B");
		f = hi_leak_from(&r, f.index);
		CHECK(f.type == HI_LEAK_FROM_BLOCK &&
			      h.b[f.index].addr == A, "B: not from A");
		f = hi_leak_from(&r, f.index);
		CHECK(f.type == HI_LEAK_FROM_ROOT && f.addr == t,
		      "A: not from t");
	}
	hi_leak_result_free(&r);
}

/* mkcycle(): a, b = mk(a), c = mk(b), a->l = c; 16-byte nodes. */
static hi_addr_t mkcycle(struct heap *h)
{
	hi_addr_t a = mk(h, 16), b = mk(h, 16), c = mk(h, 16);

	put(b, a);
	put(c, b);
	put(a, c);
	return a;
}

/*
 * leak-cycle.c: two lone cycles, a cycle pointing at another (their
 * cliques merge), two cycles pointing at each other.  Expected: leaked
 * 288 bytes in 18 blocks; records 48 (16 direct, 32 indirect) twice and
 * 96 (16 direct, 80 indirect) twice.
 */
static void test_cycles(void)
{
	struct heap h;
	struct hi_leak_result r;
	hi_addr_t c1, c2, c3, c4, c5, c6;
	uint64_t direct = 0, n48 = 0, n96 = 0;
	int ret;

	reset();
	heap_init(&h);
	c1 = mkcycle(&h);
	c2 = mkcycle(&h);
	(void)c1;
	(void)c2;
	c3 = mkcycle(&h);
	c4 = mkcycle(&h);
	put(c4 + 8, c3); /* c3 < c4: c2->r = c1 in the test */
	c5 = mkcycle(&h);
	c6 = mkcycle(&h);
	put(c5 + 8, c6);
	put(c6 + 8, c5);

	ret = mark(&h, &data_root, 1, NULL, 0, HI_LEAK_H_ALL, &r);
	CHECK(ret == 0, "leak-cycle: mark returned %d", ret);
	if (ret)
		return;
	expect_sum(&r, 64, 4, 224, 14, 0, 0, 0, 0, "leak-cycle");
	for (size_t i = 0; i < h.n; i++) {
		uint64_t ind;

		if (hi_leak_kind_of(&r, i) != HI_LEAK_DEFINITE)
			continue;
		direct++;
		ind = hi_leak_indirect_bytes(&r, i);
		n48 += ind == 32;
		n96 += ind == 80;
	}
	CHECK(direct == 4 && n48 == 2 && n96 == 2,
	      "leak-cycle: records %llu definite, %llu of 48, %llu of 96",
	      (unsigned long long)direct, (unsigned long long)n48,
	      (unsigned long long)n96);
	/* The first block of a lone cycle, in address order, leads it. */
	expect_kind(&h, &r, c1, HI_LEAK_DEFINITE, "cycle 1 leader");
	hi_leak_result_free(&r);
}

/*
 * leak_cpp_interior.cpp's interior pointers, one heuristic each: with
 * memcheck's default (all) the block is still reachable and counted under
 * its heuristic; with none it is possibly lost.
 */
static void test_heuristics(void)
{
	static const char *const names[] = {
		"none", "stdstring", "length64", "newarray",
		"multipleinheritance",
	};
	struct heap h;
	struct hi_leak_result r;
	hi_addr_t str, len64, arr, mi, vt_a, vt_b, plain;
	int ret;

	reset();
	heap_init(&h);
	/* std::string rep "Valgrind": length 8, capacity 8, refcount, 9
	 * chars: 24 + 8 + 1 = 33 bytes */
	str = mk(&h, 33);
	put(str, 8);
	put(str + 8, 8);
	memcpy(region_of(str)->bytes + (str + 24 - HEAP), "Valgrind", 9);
	put(DATA, str + 24);
	/* wrap64_malloc(23): 31 bytes, the first word 23 */
	len64 = mk(&h, 31);
	put(len64, 23);
	put(DATA + 8, len64 + 8);
	/* new MyClass[3]: a count, then 3 objects of 8 bytes */
	arr = mk(&h, 32);
	put(arr, 3);
	put(DATA + 16, arr + 8);
	/* new C (A, B with virtual destructors): vptr A, char, vptr B */
	vt_a = RODATA + 0x100;
	vt_b = RODATA + 0x200;
	put(vt_a, TEXT + 0x10);
	put(vt_a + 8, TEXT + 0x20);
	put(vt_b, 0);
	put(vt_b + 8, TEXT + 0x30);
	put(vt_b + 16, TEXT + 0x40);
	mi = mk(&h, 32);
	put(mi, vt_a);
	put(mi + 16, vt_b);
	put(DATA + 24, mi + 16);
	/* an interior pointer no heuristic takes */
	plain = mk(&h, 32);
	put(plain, 1234567);
	put(DATA + 32, plain + 16);

	ret = mark(&h, &data_root, 1, NULL, 0, HI_LEAK_H_ALL, &r);
	CHECK(ret == 0, "heuristics: mark returned %d", ret);
	if (ret)
		return;
	expect_kind(&h, &r, str, HI_LEAK_REACHABLE, "stdstring");
	expect_kind(&h, &r, len64, HI_LEAK_REACHABLE, "length64");
	expect_kind(&h, &r, arr, HI_LEAK_REACHABLE, "newarray");
	expect_kind(&h, &r, mi, HI_LEAK_REACHABLE, "multipleinheritance");
	expect_kind(&h, &r, plain, HI_LEAK_POSSIBLE, "no heuristic");
	{
		hi_addr_t at[] = { str, len64, arr, mi };
		enum hi_leak_heuristic want[] = {
			HI_LEAK_H_STDSTRING, HI_LEAK_H_LENGTH64,
			HI_LEAK_H_NEWARRAY, HI_LEAK_H_MULTIPLEINHERITANCE,
		};

		for (int i = 0; i < 4; i++) {
			enum hi_leak_heuristic got = hi_leak_heuristic_of(
				&r, (size_t)index_of(&h, at[i]));

			CHECK(got == want[i], "heuristic %s, expected %s",
			      names[got], names[want[i]]);
			CHECK(r.sum.heur_blocks[want[i]] == 1,
			      "%s: %llu blocks counted", names[want[i]],
			      (unsigned long long)r.sum.heur_blocks[want[i]]);
		}
	}
	hi_leak_result_free(&r);

	/* Heuristics off: all five possibly lost. */
	ret = mark(&h, &data_root, 1, NULL, 0, 0, &r);
	CHECK(ret == 0, "no heuristics: mark returned %d", ret);
	if (ret)
		return;
	expect_sum(&r, 0, 0, 0, 0, 33 + 31 + 32 + 32 + 32, 5, 0, 0,
		   "no heuristics");
	hi_leak_result_free(&r);

	/* Each heuristic alone takes its own block only. */
	for (int k = HI_LEAK_H_STDSTRING; k < HI_LEAK_H_COUNT; k++) {
		ret = mark(&h, &data_root, 1, NULL, 0, 1u << k, &r);
		CHECK(ret == 0, "%s alone: mark returned %d", names[k], ret);
		if (ret)
			return;
		/* newarray also takes the length64 block on 64-bit, as the
		 * comment in memcheck's heuristic_reachedness says */
		CHECK(r.sum.blocks[HI_LEAK_REACHABLE] ==
			      (k == HI_LEAK_H_NEWARRAY ? 2u : 1u),
		      "%s alone: %llu reachable", names[k],
		      (unsigned long long)r.sum.blocks[HI_LEAK_REACHABLE]);
		hi_leak_result_free(&r);
	}

	/* A vtable whose words point at data is no vtable. */
	put(vt_b + 8, DATA + 0x800);
	ret = mark(&h, &data_root, 1, NULL, 0, HI_LEAK_H_ALL, &r);
	CHECK(ret == 0, "bad vtable: mark returned %d", ret);
	if (!ret) {
		expect_kind(&h, &r, mi, HI_LEAK_POSSIBLE,
			    "multipleinheritance, vtable into data");
		hi_leak_result_free(&r);
	}
}

/*
 * Without slack the heuristics compare with the usable size exactly: a
 * 40-byte block whose first word is 23 is no wrap64_malloc(23) block
 * (40 - 8 != 23) nor an array of 23 (32 % 23 != 0).
 */
static void test_slack(void)
{
	struct heap h;
	struct hi_leak_result r;
	struct hi_leak_env env = { .reader = &reader,
				   .heuristics = HI_LEAK_H_ALL };
	hi_addr_t b;
	int ret;

	reset();
	heap_init(&h);
	b = mk(&h, 40); /* malloc(31) in glibc: 40 usable bytes */
	put(DATA, b + 8);
	/* A count of 0x7fff: no (size - 8) % count == 0 for size 25..40 */
	put(b, 0x7fff);
	ret = hi_leak_mark(h.b, h.n, &data_root, 1, NULL, 0, &env, &r);
	CHECK(ret == 0 && hi_leak_kind_of(&r, 0) == HI_LEAK_POSSIBLE,
	      "slack 0: a stray count is not an array");
	hi_leak_result_free(&r);
	put(b, 23);
	ret = hi_leak_mark(h.b, h.n, &data_root, 1, NULL, 0, &env, &r);
	/* exact sizes: 40 - 8 != 23, and 32 % 23 != 0 */
	CHECK(ret == 0 && hi_leak_kind_of(&r, 0) == HI_LEAK_POSSIBLE,
	      "slack 0: length64 must not match 40 usable bytes");
	hi_leak_result_free(&r);
}

static uint64_t slack15(void *arg, const struct hi_leak_block *b)
{
	(void)arg;
	(void)b;
	return 15;
}

/* With glibc's slack of 15 bytes, 31 asked for fits 40 usable. */
static void test_slack_on(void)
{
	struct heap h;
	struct hi_leak_result r;
	struct hi_leak_env env = { .reader = &reader,
				   .heuristics = 1u << HI_LEAK_H_LENGTH64,
				   .slack = slack15 };
	hi_addr_t b;
	int ret;

	reset();
	heap_init(&h);
	b = mk(&h, 40);
	put(b, 23);
	put(DATA, b + 8);
	ret = hi_leak_mark(h.b, h.n, &data_root, 1, NULL, 0, &env, &r);
	CHECK(ret == 0 && hi_leak_kind_of(&r, 0) == HI_LEAK_REACHABLE &&
		      hi_leak_heuristic_of(&r, 0) == HI_LEAK_H_LENGTH64,
	      "slack 15: 31 asked for fits 40 usable bytes");
	hi_leak_result_free(&r);
}

/*
 * Registers are roots too (memcheck: the general registers of every
 * thread); a block first seen through an interior pointer, then through a
 * start pointer, ends reachable with everything it points to; a block of
 * size 0 is found at its address (memcheck counts it as one byte).
 */
static void test_values_and_order(void)
{
	struct heap h;
	struct hi_leak_result r;
	struct hi_leak_range roots[2] = {
		{ .start = DATA, .end = DATA + 8, .label = 1 },
		{ .start = DATA + 8, .end = DATA + 16, .label = 2 },
	};
	struct hi_leak_value vals[2];
	hi_addr_t x, y, reg, regi, zero;
	int ret;

	reset();
	heap_init(&h);
	x = mk(&h, 48);
	y = mk(&h, 48);
	put(x, y);
	reg = mk(&h, 24);
	regi = mk(&h, 24);
	zero = mk(&h, 0);
	put(DATA, x + 16);  /* scanned first: interior */
	put(DATA + 8, x);   /* then a start pointer */
	put(DATA + 16, zero); /* outside both roots: not seen */
	vals[0].value = reg;
	vals[0].label = 7;
	vals[1].value = regi + 8;
	vals[1].label = 8;

	ret = mark(&h, roots, 2, vals, 2, 0, &r);
	CHECK(ret == 0, "order: mark returned %d", ret);
	if (ret)
		return;
	expect_kind(&h, &r, x, HI_LEAK_REACHABLE, "raised to reachable");
	expect_kind(&h, &r, y, HI_LEAK_REACHABLE,
		    "what a raised block points to");
	expect_kind(&h, &r, reg, HI_LEAK_REACHABLE, "register");
	expect_kind(&h, &r, regi, HI_LEAK_POSSIBLE, "register, interior");
	expect_kind(&h, &r, zero, HI_LEAK_DEFINITE, "outside the roots");
	{
		struct hi_leak_from f = hi_leak_from(
			&r, (size_t)index_of(&h, reg));

		CHECK(f.type == HI_LEAK_FROM_VALUE && f.index == 0,
		      "register: not from value 0");
		f = hi_leak_from(&r, (size_t)index_of(&h, x));
		CHECK(f.type == HI_LEAK_FROM_ROOT && f.addr == DATA + 8,
		      "raised block: from the start pointer");
	}
	hi_leak_result_free(&r);

	roots[1].end = DATA + 24;
	ret = mark(&h, roots, 2, vals, 2, 0, &r);
	CHECK(ret == 0, "size 0: mark returned %d", ret);
	if (!ret) {
		expect_kind(&h, &r, zero, HI_LEAK_REACHABLE, "size 0");
		hi_leak_result_free(&r);
	}
}

/* A root page that faults is skipped and counted; the rest is scanned. */
static void test_fault(void)
{
	struct heap h;
	struct hi_leak_result r;
	struct hi_leak_range root = { .start = DATA, .end = DATA + 3 * 4096 };
	hi_addr_t a, b;
	int ret;

	reset();
	heap_init(&h);
	a = mk(&h, 16);
	b = mk(&h, 16);
	put(DATA + 4096 + 64, a);   /* in the faulting page */
	put(DATA + 2 * 4096 + 8, b);
	regions[1].fault_page = 1;
	ret = mark(&h, &root, 1, NULL, 0, HI_LEAK_H_ALL, &r);
	CHECK(ret == 0, "fault: mark returned %d", ret);
	if (ret)
		return;
	CHECK(r.skipped_bytes == 4096 && r.first_skipped == DATA + 4096,
	      "fault: %llu bytes skipped at %#llx",
	      (unsigned long long)r.skipped_bytes,
	      (unsigned long long)r.first_skipped);
	/* two root pages, then b (reached) and a (its own clique) */
	CHECK(r.scanned_bytes == 2 * 4096 + 32, "fault: %llu bytes scanned",
	      (unsigned long long)r.scanned_bytes);
	expect_kind(&h, &r, a, HI_LEAK_DEFINITE, "behind a fault");
	expect_kind(&h, &r, b, HI_LEAK_REACHABLE, "after a fault");
	hi_leak_result_free(&r);

	/* Any other error of the reader ends the mark. */
	read_error = -ESRCH;
	ret = mark(&h, &root, 1, NULL, 0, HI_LEAK_H_ALL, &r);
	CHECK(ret == -ESRCH, "gone: mark returned %d", ret);
	read_error = 0;
}

static void test_bad_input(void)
{
	struct hi_leak_block b[2] = {
		{ .addr = HEAP + 64, .size = 16 },
		{ .addr = HEAP + 16, .size = 16 },
	};
	struct hi_leak_env env = { .reader = &reader };
	struct hi_leak_result r;

	CHECK(hi_leak_mark(b, 2, NULL, 0, NULL, 0, &env, &r) == -EINVAL,
	      "unsorted blocks accepted");
	b[1].addr = HEAP + 72;
	CHECK(hi_leak_mark(b, 2, NULL, 0, NULL, 0, &env, &r) == -EINVAL,
	      "overlapping blocks accepted");
	b[1].addr = HEAP + 80;
	CHECK(hi_leak_mark(b, 2, NULL, 0, NULL, 0, &env, &r) == 0 &&
		      r.sum.blocks[HI_LEAK_DEFINITE] == 2,
	      "two lone blocks");
	hi_leak_result_free(&r);
	CHECK(hi_leak_mark(b, 0, NULL, 0, NULL, 0, &env, &r) == 0 && r.n == 0,
	      "no blocks");
}

/* A long lost list: one definite, the rest indirect (a deep clique). */
static unsigned char *list_mem;
static hi_addr_t list_base;
static size_t list_len;

static int list_read(void *arg, hi_addr_t addr, void *buf, size_t len)
{
	(void)arg;
	if (addr < list_base || addr - list_base > list_len ||
	    len > list_len - (addr - list_base))
		return -EFAULT;
	memcpy(buf, list_mem + (addr - list_base), len);
	return 0;
}

static void test_long_list(void)
{
	enum { N = 200000 };
	struct hi_leak_block *b = calloc(N, sizeof(*b));
	struct hi_reader lr = { .read = list_read };
	struct hi_leak_env env = { .reader = &lr,
				   .heuristics = HI_LEAK_H_ALL };
	struct hi_leak_result r;
	int ret;

	list_base = 0x7000000000ull;
	list_len = (size_t)N * 16;
	list_mem = calloc(N, 16);
	if (!b || !list_mem) {
		CHECK(0, "long list: out of memory");
		free(b);
		free(list_mem);
		return;
	}
	/* Linked from the last block to the first: the first block in
	 * address order leads a clique of one, then the last one takes it
	 * in with everything else. */
	for (size_t i = 0; i < N; i++) {
		uint64_t next = i ? list_base + (i - 1) * 16 : 0;

		b[i].addr = list_base + i * 16;
		b[i].size = 16;
		memcpy(list_mem + i * 16, &next, 8);
	}
	ret = hi_leak_mark(b, N, NULL, 0, NULL, 0, &env, &r);
	CHECK(ret == 0, "long list: mark returned %d", ret);
	if (!ret) {
		CHECK(r.sum.blocks[HI_LEAK_DEFINITE] == 1 &&
			      r.sum.blocks[HI_LEAK_INDIRECT] == N - 1,
		      "long list: %llu definite, %llu indirect",
		      (unsigned long long)r.sum.blocks[HI_LEAK_DEFINITE],
		      (unsigned long long)r.sum.blocks[HI_LEAK_INDIRECT]);
		CHECK(hi_leak_kind_of(&r, N - 1) == HI_LEAK_DEFINITE &&
			      hi_leak_indirect_bytes(&r, N - 1) ==
				      (uint64_t)(N - 1) * 16,
		      "long list: the head leads with %llu indirect bytes",
		      (unsigned long long)hi_leak_indirect_bytes(&r, N - 1));
		hi_leak_result_free(&r);
	}
	free(b);
	free(list_mem);
}

int main(void)
{
	test_cases(HI_LEAK_H_ALL);
	test_cases(0);
	test_tree();
	test_cycles();
	test_heuristics();
	test_slack();
	test_slack_on();
	test_values_and_order();
	test_fault();
	test_bad_input();
	test_long_list();
	if (failures) {
		fprintf(stderr, "%d failures\n", failures);
		return 1;
	}
	printf("ok\n");
	return 0;
}
