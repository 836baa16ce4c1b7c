/* SPDX-License-Identifier: MIT */
/*
 * heapinspect trim: give the target's free heap memory back to the system
 * with its own malloc_trim(), the safe way (inspector/call.c), and show what
 * it gave: RSS and the allocator's figures before and after, taken in the
 * same stop.
 *
 * malloc_trim's int result cannot be read: the call returns through
 * __restore_rt, whose first instruction overwrites %eax with rt_sigreturn's
 * number before heapinspect sees the return.  Whether it released memory is
 * told instead by the system calls it made to release it (madvise
 * MADV_DONTNEED in mtrim, brk in systrim, munmap/madvise in heap_trim;
 * malloc.c and arena.c, 2.31 to 2.41) and by RSS.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "call.h"
#include "cli.h"
#include "output.h"
#include "trim.h"

#define MALLINFO2_SIZE 80
#define MALLINFO_SIZE 40

static void usage(FILE *out)
{
	fprintf(out,
"usage: heapinspect trim -p PID [--pad BYTES] [--json] [--bytes]\n"
"                        [--debuginfo-path PATH] [--timeout MS]\n"
"\n"
"Call malloc_trim(BYTES) inside the running process PID, at a moment when\n"
"none of its threads is inside malloc, and report its RSS and allocator\n"
"figures before and after: the memory given back to the system.  Where\n"
"the layout of its allocator is known, its heap is read first, in the same\n"
"stop, and malloc_trim() is called only when everything it walks is sound;\n"
"where none is known, nothing can be checked first.\n"
"\n"
"  -p, --pid PID            the process\n"
"      --pad BYTES          malloc_trim's pad: free space to keep at the\n"
"                           top of the heap (default 0)\n"
"      --json               one JSON object (heapinspect/trim/v1)\n"
"      --bytes              sizes in exact bytes\n"
"      --debuginfo-path P   as for heapinspect; without debug information\n"
"                           only call stacks are checked, not lock words\n"
"      --timeout MS         how long to wait for a safe moment, and for\n"
"                           each call (default 5000)\n"
"      --stop-timeout MS    how long to wait for every thread to stop\n"
"                           (default 2000)\n"
"\n"
"exit status: 0 trimmed (whether or not there was memory to give back);\n"
"2 nothing was called, or the call failed (and was undone); 5 refused:\n"
"the heap is corrupt where malloc_trim() would walk, nothing was called;\n"
"64 wrong usage.\n");
}

struct trim_result {
	struct hi_arena bad;        /* -HI_E_UNSOUND: where the heap is bad */
	struct hi_mallinfo before, after;
	struct hi_memstat mem_before, mem_after;
	struct hi_call_report rep;  /* of malloc_trim */
	int wraps;
	unsigned released_calls;    /* madvise, brk, munmap it made */
};

static void mi_from(const unsigned char *b, int wide, struct hi_mallinfo *mi)
{
	uint64_t *v = &mi->arena;

	for (int i = 0; i < 10; i++) {
		if (wide) {
			memcpy(&v[i], b + 8 * i, 8);
		} else {
			uint32_t w;

			memcpy(&w, b + 4 * i, 4);
			v[i] = w;
		}
	}
}

/*
 * Where the layout is known, the heap is read first, in the stop of the
 * call, and malloc_trim() is called only when everything it walks is
 * sound: the free lists (as mallinfo2() walks them), the neighbours that
 * merging fastbin chunks unlinks, and the chunks whose pages it gives back
 * (ops->call_sound).  Otherwise -HI_E_UNSOUND, nothing called, res->bad
 * saying where.
 */
static int check_sound(const struct hi_allocator_ops *ops,
		       struct hi_alloc_ctx *ctx, struct trim_result *res)
{
	struct hi_heap heap;
	int ret;

	ret = ops->read(ctx, 1, &heap);
	if (ret == -HI_E_CORRUPT) {
		/* The ring itself (res->bad.addr 0). */
		res->bad.bad_addr = heap.bad_addr;
		snprintf(res->bad.why, sizeof(res->bad.why), "%.190s",
			 heap.why);
		return -HI_E_UNSOUND;
	}
	if (ret)
		return ret;
	ret = ops->call_sound ? ops->call_sound(ctx, HI_CALL_TRIM, &heap)
			      : -HI_E_UNSUPPORTED;
	if (ret == -HI_E_CORRUPT || (!ret && !heap.complete)) {
		for (size_t i = 0; i < heap.narenas; i++) {
			if (heap.arenas[i].status) {
				res->bad = heap.arenas[i];
				break;
			}
		}
		if (!res->bad.status) {
			res->bad.bad_addr = heap.bad_addr;
			snprintf(res->bad.why, sizeof(res->bad.why), "%.190s",
				 heap.why);
		}
		ret = -HI_E_UNSOUND;
	}
	hi_heap_free(&heap);
	return ret;
}

static int do_trim(pid_t pid, const char *debuginfo_path, uint64_t pad,
		   unsigned timeout_ms, unsigned stop_timeout_ms,
		   struct trim_result *res, char *detail, size_t dsize)
{
	const struct hi_allocator_ops *ops = NULL;
	struct hi_call_report info_rep;
	struct hi_call info = { 0 }, trim = { 0 };
	struct hi_snapshot_opts so;
	struct hi_alloc_ctx ctx;
	struct hi_caller c;
	struct hi_target t;
	unsigned char buf[MALLINFO2_SIZE];
	char cache_dir[4096];
	int ret, wide, located, unchecked;

	memset(&ctx, 0, sizeof(ctx));
	memset(&c, 0, sizeof(c));
	memset(&info_rep, 0, sizeof(info_rep));
	ctx.pid = pid;
	ret = hi_sym_open(pid, debuginfo_path, &ctx.sym);
	if (ret)
		return ret;
	for (size_t i = 0; hi_allocators[i]; i++) {
		ret = hi_allocators[i]->probe(&ctx);
		if (ret > 0) {
			ops = hi_allocators[i];
			break;
		}
		if (ret < 0 && ret != -HI_E_NOLIBC)
			goto out_sym;
	}
	if (!ops) {
		ret = ctx.why[0] ? -HI_E_OTHERALLOC : -HI_E_NOLIBC;
		goto out_sym;
	}
	/*
	 * The layout as a snapshot finds it; addresses that need proof
	 * (found without symbols, or from the layout cache) are proven in
	 * every stop before their lock words are trusted (call.c), and
	 * where they cannot be, the call goes on as without a layout.
	 */
	hi_snapshot_opts_default(&so, pid, cache_dir, sizeof(cache_dir));
	ctx.flags = so.locate_flags;
	ctx.cache_dir = so.cache_dir;
	located = ops->locate(&ctx) == 0;
	hi_target_init(&t, pid);
	ret = hi_caller_init(&c, &t, &ctx, ops, located, stop_timeout_ms);
	if (ret)
		goto out;
	unchecked = hi_caller_test_unchecked();
	if (unchecked == 2)
		c.located = 0;
	if (!c.funcs.malloc_trim) {
		snprintf(ctx.why, sizeof(ctx.why), "malloc_trim");
		ret = -HI_E_NOSYM;
		goto out;
	}
	wide = c.funcs.mallinfo2 != 0;
	res->wraps = !wide;
	info.fn = wide ? c.funcs.mallinfo2 : c.funcs.mallinfo;
	info.restorer = c.funcs.restorer;
	info.ret_size = wide ? MALLINFO2_SIZE : MALLINFO_SIZE;
	trim.fn = c.funcs.malloc_trim;
	trim.restorer = c.funcs.restorer;
	trim.args[0] = pad;
	trim.nargs = 1;

	ret = hi_caller_stop_safe(&c, &trim,
				  hi_now_ns() + timeout_ms * 1000000ull,
				  &res->rep);
	if (ret)
		goto out;
	if (c.located) {
		ret = check_sound(ops, &ctx, res);
		if (ret == -HI_E_UNSOUND && unchecked)
			ret = 0;
		if (ret)
			goto out_resume;
	}
	/* Before, the trim, after: one stop, the other threads held. */
	hi_proc_memstat(pid, &res->mem_before);
	ret = hi_caller_call(&c, &info, wide ? "mallinfo2" : "mallinfo", buf,
			     hi_now_ns() + timeout_ms * 1000000ull,
			     &info_rep);
	if (ret) {
		res->rep = info_rep;
		goto out_resume;
	}
	mi_from(buf, wide, &res->before);
	{
		unsigned attempts = res->rep.attempts;
		uint64_t waited = res->rep.waited_us;

		memset(&res->rep, 0, sizeof(res->rep));
		res->rep.attempts = attempts;
		res->rep.waited_us = waited;
		res->rep.locks_checked = info_rep.locks_checked;
		res->rep.stacks_checked = info_rep.stacks_checked;
	}
	ret = hi_caller_call(&c, &trim, "malloc_trim", NULL,
			     hi_now_ns() + timeout_ms * 1000000ull,
			     &res->rep);
	if (ret)
		goto out_resume;
	memset(&info_rep, 0, sizeof(info_rep));
	ret = hi_caller_call(&c, &info, wide ? "mallinfo2" : "mallinfo", buf,
			     hi_now_ns() + timeout_ms * 1000000ull,
			     &info_rep);
	if (ret)
		goto out_resume;
	mi_from(buf, wide, &res->after);
	hi_proc_memstat(pid, &res->mem_after);
	for (int i = 0; i < HI_CALL_MAX_SYSCALLS && res->rep.syscalls[i].name;
	     i++) {
		const char *n = res->rep.syscalls[i].name;

		if (!strcmp(n, "madvise") || !strcmp(n, "brk") ||
		    !strcmp(n, "munmap"))
			res->released_calls += res->rep.syscalls[i].count;
	}
out_resume:
	{
		int r = hi_target_resume(&t);

		if (!ret && r)
			ret = r;
	}
out:
	hi_caller_fini(&c);
	hi_target_fini(&t);
	ops->release(&ctx);
out_sym:
	snprintf(detail, dsize, "%s", ctx.why);
	hi_sym_close(ctx.sym);
	return ret;
}

struct trim_args {
	pid_t pid;
	const char *debuginfo_path;
	uint64_t pad;
	unsigned timeout_ms, stop_timeout_ms;
	struct trim_result *res;
	char *detail;
	size_t dsize;
};

/* do_trim in a session of its own, which nothing it stops outlives. */
static int trim_in_session(void *arg)
{
	struct trim_args *a = arg;

	return do_trim(a->pid, a->debuginfo_path, a->pad, a->timeout_ms,
		       a->stop_timeout_ms, a->res, a->detail, a->dsize);
}

static uint64_t drop(uint64_t before, uint64_t after)
{
	return before > after ? before - after : 0;
}

static int print_json(pid_t pid, uint64_t pad, const struct trim_result *r)
{
	json_t *o = json_object(), *rss = json_object(), *call;
	int ret;

	json_object_set_new(o, "schema", json_string("heapinspect/trim/v1"));
	json_object_set_new(o, "pid", json_integer(pid));
	json_object_set_new(o, "pad", json_integer((json_int_t)pad));
	json_object_set_new(o, "released",
			    json_boolean(r->released_calls > 0));
	if (r->mem_before.valid && r->mem_after.valid) {
		json_object_set_new(rss, "before",
				    json_integer(r->mem_before.rss));
		json_object_set_new(rss, "after",
				    json_integer(r->mem_after.rss));
		json_object_set_new(rss, "returned", json_integer(
			drop(r->mem_before.rss, r->mem_after.rss)));
	}
	json_object_set_new(o, "rss", rss);
	json_object_set_new(o, "mallinfo2_before",
			    hi_mallinfo_json(&r->before));
	json_object_set_new(o, "mallinfo2_after", hi_mallinfo_json(&r->after));
	call = hi_call_report_json(&r->rep);
	if (r->wraps)
		json_object_set_new(call, "note", json_string(
			"mallinfo() of glibc before 2.33: its fields are int "
			"and wrap above 2 GiB; shown as unsigned 32-bit"));
	json_object_set_new(call, "return_value", json_null());
	json_object_set_new(o, "call", call);
	ret = json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
	json_decref(o);
	return ret;
}

static void print_text(pid_t pid, uint64_t pad, const struct trim_result *r,
		       int exact)
{
	char a[32], b[32], c[32];

	printf("pid %d: malloc_trim(%" PRIu64 ") called in thread %d "
	       "(after %u stop%s)\n", (int)pid, pad, (int)r->rep.thread,
	       r->rep.attempts, r->rep.attempts == 1 ? "" : "s");
	if (r->mem_before.valid && r->mem_after.valid)
		printf("rss       %12s -> %-12s returned %s\n",
		       hi_bytes_str(r->mem_before.rss, exact, a, sizeof(a)),
		       hi_bytes_str(r->mem_after.rss, exact, b, sizeof(b)),
		       hi_bytes_str(drop(r->mem_before.rss, r->mem_after.rss),
				exact, c, sizeof(c)));
	printf("arena     %12s -> %s\n",
	       hi_bytes_str(r->before.arena, exact, a, sizeof(a)),
	       hi_bytes_str(r->after.arena, exact, b, sizeof(b)));
	printf("fordblks  %12s -> %s\n",
	       hi_bytes_str(r->before.fordblks, exact, a, sizeof(a)),
	       hi_bytes_str(r->after.fordblks, exact, b, sizeof(b)));
	printf("keepcost  %12s -> %s\n",
	       hi_bytes_str(r->before.keepcost, exact, a, sizeof(a)),
	       hi_bytes_str(r->after.keepcost, exact, b, sizeof(b)));
	printf("uordblks  %12s -> %s\n",
	       hi_bytes_str(r->before.uordblks, exact, a, sizeof(a)),
	       hi_bytes_str(r->after.uordblks, exact, b, sizeof(b)));
	printf("released: %s", r->released_calls ? "yes" : "no");
	for (int i = 0; i < HI_CALL_MAX_SYSCALLS && r->rep.syscalls[i].name;
	     i++)
		printf("%s %s x%u", i ? "," : " (system calls:",
		       r->rep.syscalls[i].name, r->rep.syscalls[i].count);
	printf("%s\n", r->rep.syscalls[0].name ? ")" : "");
	if (r->wraps)
		printf("note:     mallinfo() of glibc before 2.33: int fields, "
		       "they wrap above 2 GiB\n");
}

int hi_trim_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "pid", required_argument, NULL, 'p' },
		{ "pad", required_argument, NULL, 'P' },
		{ "json", no_argument, NULL, 'j' },
		{ "bytes", no_argument, NULL, 'b' },
		{ "debuginfo-path", required_argument, NULL, 'd' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "stop-timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *debuginfo_path = NULL;
	unsigned timeout_ms = 5000, stop_timeout_ms = 2000;
	struct trim_result res;
	struct hi_procinfo info;
	char detail[4096], kind_detail[512], comm[256];
	int kind;
	uint64_t pad = 0;
	unsigned long v;
	pid_t pid = 0;
	int json = 0, exact = 0, c, ret;

	while ((c = getopt_long(argc, argv, "p:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (parse_uint(optarg, 0x3fffffff, &v) || v == 0) {
				errmsg("invalid pid '%s': expected a positive "
				       "number", optarg);
				return EXIT_USAGE;
			}
			pid = (pid_t)v;
			hi_pid_resolve(&pid);
			break;
		case 'P':
			if (parse_uint(optarg, UINT64_MAX / 2, &v)) {
				errmsg("invalid --pad '%s': expected a number "
				       "of bytes", optarg);
				return EXIT_USAGE;
			}
			pad = v;
			break;
		case 'j':
			json = 1;
			break;
		case 'b':
			exact = 1;
			break;
		case 'd':
			debuginfo_path = optarg;
			break;
		case 'T':
		case 't':
			if (parse_uint(optarg, 3600000, &v) || v == 0) {
				errmsg("invalid --%s '%s': expected 1 to "
				       "3600000 ms", c == 'T' ? "timeout" :
				       "stop-timeout", optarg);
				return EXIT_USAGE;
			}
			if (c == 'T')
				timeout_ms = (unsigned)v;
			else
				stop_timeout_ms = (unsigned)v;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			return hi_usage_hint("trim");
		}
	}
	if (optind < argc || !pid) {
		errmsg(pid ? "unexpected argument" :
			     "which process? give its pid with -p PID");
		return hi_usage_hint("trim");
	}
	if (pid == getpid()) {
		errmsg("pid %d is heapinspect itself", (int)pid);
		return EXIT_FAILED;
	}
	ret = hi_proc_info(pid, &info);
	if (ret == 0 && info.kthread)
		ret = -HI_E_KTHREAD;
	else if (ret == 0 && (info.state == 'Z' || info.state == 'X'))
		ret = -HI_E_ZOMBIE;
	memset(&res, 0, sizeof(res));
	detail[0] = '\0';
	/* Another architecture or libc: say so before anything else. */
	kind = ret ? 0 : hi_exe_check(pid, kind_detail, sizeof(kind_detail));
	if (kind == -HI_E_UNSUPPORTED) {
		errmsg("pid %d (%s) %s", (int)pid,
		       hi_safe_str(info.comm, comm, sizeof(comm)),
		       kind_detail);
		return EXIT_FAILED;
	}
	if (ret == 0) {
		struct trim_args a = { pid, debuginfo_path, pad, timeout_ms,
				       stop_timeout_ms, &res, detail,
				       sizeof(detail) };
		int r = hi_target_session(trim_in_session, &a, &ret);

		if (r)
			ret = r;
	}
	if (ret == -HI_E_UNSOUND) {
		if (res.bad.addr)
			errmsg("pid %d: arena 0x%" PRIx64 " is corrupt at 0x%"
			       PRIx64 ": %s", (int)pid, res.bad.addr,
			       res.bad.bad_addr, res.bad.why);
		else
			errmsg("pid %d: the list of arenas is corrupt at 0x%"
			       PRIx64 ": %s", (int)pid, res.bad.bad_addr,
			       res.bad.why);
		errmsg("pid %d: malloc_trim() was not called: it would walk "
		       "that corruption and could crash the process, or give "
		       "back memory in use; nothing was changed", (int)pid);
		return EXIT_REFUSED;
	}
	if (ret) {
		if (ret == -ESRCH || (kill(pid, 0) != 0 && errno == ESRCH))
			errmsg("no process with pid %d", (int)pid);
		else if (hi_call_error(pid, ret, &res.rep, timeout_ms))
			;
		else if (ret == -HI_E_OTHERALLOC)
			errmsg("pid %d (%s) does not use glibc's malloc: it "
			       "uses %s; heapinspect reads glibc's allocator "
			       "only", (int)pid,
			       hi_safe_str(info.comm, comm, sizeof(comm)),
			       detail);
		else if (ret == -HI_E_NOLIBC && kind == -HI_E_STATIC)
			errmsg("pid %d (%s) %s", (int)pid,
			       hi_safe_str(info.comm, comm, sizeof(comm)),
			       kind_detail);
		else if (ret == -EPERM || ret == -EACCES || ret == -ETIMEDOUT) {
			struct hi_stop_why why;

			hi_target_last_why(&why);
			hi_report_stop_error(pid, ret, &why, stop_timeout_ms,
					     0);
		}
		else
			errmsg("pid %d: %s%s%s", (int)pid, hi_strerror(ret),
			       detail[0] ? ": " : "", detail);
		return EXIT_FAILED;
	}
	if (json)
		ret = print_json(pid, pad, &res);
	else
		print_text(pid, pad, &res, exact);
	if (fflush(stdout) != 0 || ret) {
		errmsg("cannot write the report");
		return EXIT_FAILED;
	}
	return EXIT_OK;
}
