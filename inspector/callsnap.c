/* SPDX-License-Identifier: MIT */
/*
 * A snapshot whose figures come from the target's own mallinfo2(), called
 * in the target (--method call, or --method auto without a layout to read).
 * Where the layout is known, the arenas are read from memory first, in the
 * same stop, so that both answers describe one moment and can be compared,
 * and so that mallinfo2() is never called into a heap it would crash on:
 * glibc follows every link of the free lists without a doubt, and dies
 * (SIGSEGV, or malloc_printerr's abort) where one is corrupt.  The read
 * checks every link before following it; the call is made only when the
 * lists it walks are sound (ops->call_sound), else refused, and the
 * figures are the read's.  Without a layout, the call is the only way to
 * have figures, and nothing can be checked first.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "snapshot.h"

/* struct mallinfo2 (glibc 2.33): ten size_t; struct mallinfo: ten int. */
#define MALLINFO2_SIZE (10 * 8)
#define MALLINFO_SIZE (10 * 4)

static void mi_from(const unsigned char *buf, int wide, struct hi_mallinfo *mi)
{
	uint64_t v[10];

	for (int i = 0; i < 10; i++) {
		if (wide) {
			memcpy(&v[i], buf + 8 * i, 8);
		} else {
			uint32_t w;

			/* The int as glibc left it, wrapped: its low bits. */
			memcpy(&w, buf + 4 * i, 4);
			v[i] = w;
		}
	}
	mi->arena = v[0];
	mi->ordblks = v[1];
	mi->smblks = v[2];
	mi->hblks = v[3];
	mi->hblkhd = v[4];
	mi->usmblks = v[5];
	mi->fsmblks = v[6];
	mi->uordblks = v[7];
	mi->fordblks = v[8];
	mi->keepcost = v[9];
}

static int mi_equal(const struct hi_mallinfo *a, const struct hi_mallinfo *b,
		    int low32)
{
	const uint64_t *x = &a->arena, *y = &b->arena;
	uint64_t mask = low32 ? 0xffffffffu : ~0ull;

	for (int i = 0; i < 10; i++) {
		if ((x[i] & mask) != (y[i] & mask))
			return 0;
	}
	return 1;
}

int hi_snapshot_by_call(const struct hi_snapshot_opts *o,
			struct hi_snapshot *s, struct hi_alloc_ctx *ctx,
			const struct hi_allocator_ops *ops, int located)
{
	unsigned char buf[MALLINFO2_SIZE];
	struct hi_mallinfo read_mi;
	struct hi_call call = { 0 };
	struct hi_caller c;
	struct hi_target t;
	const char *name;
	uint64_t deadline;
	int ret, wide, have_read = 0, unchecked;

	s->method = "call";
	s->read_agrees = -1;
	hi_target_init(&t, o->pid);
	ret = hi_caller_init(&c, &t, ctx, ops, located, o->stop_timeout_ms);
	if (ret)
		goto out;
	unchecked = hi_caller_test_unchecked();
	if (unchecked == 2)
		c.located = 0;
	wide = c.funcs.mallinfo2 != 0;
	name = wide ? "mallinfo2" : "mallinfo";
	s->call_wraps = !wide;
	call.fn = wide ? c.funcs.mallinfo2 : c.funcs.mallinfo;
	call.restorer = c.funcs.restorer;
	call.ret_size = wide ? MALLINFO2_SIZE : MALLINFO_SIZE;

	deadline = hi_now_ns() + (uint64_t)o->timeout_ms * 1000000u;
	ret = hi_caller_stop_safe(&c, &call, deadline, &s->call);
	if (ret)
		goto out;
	clock_gettime(CLOCK_REALTIME, &s->when);
	s->attempts = s->call.attempts;
	/*
	 * Read only addresses that were proven in this stop (c.located):
	 * those of a layout cache entry or of the built-in tables that
	 * failed their checks are not glibc's, or not known to be.
	 */
	located = c.located;
	if (located) {
		ret = ops->read(ctx, 1, &s->heap);
		if (ret == -HI_E_CORRUPT && !unchecked) {
			/* The ring of arenas itself: heap.why says where. */
			s->method = "read";
			s->call_refused = 1;
			s->threads_stopped = hi_target_nthreads(&t);
			ret = -HI_E_UNSOUND;
			goto out_resume;
		}
		if (ret)
			goto out_resume;
		ret = ops->call_sound ? ops->call_sound(ctx, HI_CALL_INFO,
							&s->heap)
				      : -HI_E_UNSUPPORTED;
		if (unchecked && ret == -HI_E_CORRUPT) {
			/* Test builds: into the corrupt heap all the same. */
			hi_heap_free(&s->heap);
			s->heap.complete = 0;
			ret = 0;
		} else if (ret == -HI_E_CORRUPT ||
			   (!ret && !s->heap.complete)) {
			/* Refused: the read's figures stand. */
			s->method = "read";
			s->call_refused = 1;
			s->threads_stopped = hi_target_nthreads(&t);
			ret = -HI_E_UNSOUND;
			goto out_resume;
		}
		if (ret)
			goto out_resume;
		read_mi = s->heap.mi;
		have_read = s->heap.complete;
	}
	ret = hi_caller_call(&c, &call, name, buf,
			     hi_now_ns() + (uint64_t)o->timeout_ms * 1000000u,
			     &s->call);
	s->threads_stopped = hi_target_nthreads(&t);
	if (ret)
		goto out_resume;
	s->called = 1;
	mi_from(buf, wide, &s->heap.mi);
	/*
	 * The allocator's own figures are whole even where an arena could
	 * not be read from memory.
	 */
	s->heap.complete = 1;
	if (have_read)
		s->read_agrees = mi_equal(&read_mi, &s->heap.mi, !wide);
	if (!located) {
		s->heap.n_mmaps = s->heap.mi.hblks;
		s->heap.mmapped_mem = s->heap.mi.hblkhd;
	}
out_resume:
	{
		int r = hi_target_resume(&t);

		if (!ret && r)
			ret = r;
	}
out:
	s->pause_us = t.pause_max_us;
	s->pause_total_us = t.pause_total_us;
	s->reads = t.mem.reads;
	hi_caller_fini(&c);
	hi_target_fini(&t);
	if (ret == -ESRCH || ret == -HI_E_EXITED ||
	    (ret && kill(o->pid, 0) != 0 && errno == ESRCH))
		ret = -HI_E_EXITED;
	if ((ret == 0 || ret == -HI_E_UNSOUND) &&
	    hi_proc_memstat(o->pid, &s->mem) == -ESRCH)
		ret = -HI_E_EXITED;
	return ret;
}
