/* SPDX-License-Identifier: MIT */
/*
 * hi_capture: save a heap image of a test target (tests/image/heap_image.h).
 *
 *	hi_capture [--debuginfo-path P] OUT TARGET SCENARIO
 *
 * Starts `TARGET SCENARIO` (tests/targets/hi_target.c) on pipes, takes the
 * figures of its ready line (the target's own mallinfo2()), locates the
 * allocator as heapinspect does, stops the target, walks its heap once
 * through a reader that notes which mappings the walk touches, copies each
 * of those mappings whole, lets the target go, and writes the image.  The
 * walk must give the target's own figures, or no image is written.  Then
 * the target must answer `check` with ok and exit with status 0.
 *
 * Exit status 0, or 1 with a message.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "heap_image.h"
#include "target.h"

static const char *const fig_names[HI_IMAGE_NFIG] = {
	"arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
	"uordblks", "fordblks", "keepcost",
};

static pid_t child = -1;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2),
						      noreturn));

static void fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "hi_capture: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (child > 0)
		kill(child, SIGKILL);
	exit(1);
}

static void read_line(FILE *in, char *buf, size_t size)
{
	if (!fgets(buf, (int)size, in))
		fail("the target closed its output");
	buf[strcspn(buf, "\n")] = '\0';
}

/* The figures of a ready line; api=mallinfo gives their low 32 bits. */
static void parse_ready(const char *line, struct hi_image *im)
{
	int found = 0;

	if (strncmp(line, "ready ", 6) != 0)
		fail("expected a ready line, got '%s'", line);
	if (strstr(line, " api=none"))
		fail("the scenario has no figures: '%s'", line);
	im->low32 = strstr(line, " api=mallinfo ") != NULL;
	for (int i = 0; i < HI_IMAGE_NFIG; i++) {
		char key[32];
		const char *p;

		snprintf(key, sizeof(key), " %s=", fig_names[i]);
		p = strstr(line, key);
		if (!p)
			continue;
		im->fig[i] = strtoull(p + strlen(key), NULL, 10);
		found++;
	}
	if (found != HI_IMAGE_NFIG)
		fail("ready line without all ten figures: '%s'", line);
	im->have_fig = 1;
}

/* Which mappings the walk read from. */
struct touched {
	const struct hi_maps *maps;
	unsigned char *hit;
	const struct hi_reader *inner;
};

static int touch_read(void *arg, hi_addr_t addr, void *buf, size_t len)
{
	struct touched *t = arg;
	const struct hi_map *m = hi_maps_find(t->maps, addr);

	if (m)
		t->hit[m - t->maps->v] = 1;
	return hi_read(t->inner, addr, buf, len);
}

static uint64_t fig_of(const struct hi_mallinfo *mi, int i)
{
	const uint64_t v[HI_IMAGE_NFIG] = {
		mi->arena, mi->ordblks, mi->smblks, mi->hblks, mi->hblkhd,
		mi->usmblks, mi->fsmblks, mi->uordblks, mi->fordblks,
		mi->keepcost,
	};

	return v[i];
}

int main(int argc, char **argv)
{
	const char *dpath = NULL, *out, *target, *scenario;
	int to_child[2], from_child[2], status, ret;
	struct hi_alloc_ctx ctx;
	struct hi_image im;
	struct hi_target t;
	struct hi_reader live, rec;
	struct touched tc;
	struct hi_heap heap;
	char line[4096];
	FILE *in, *f;
	size_t nseg = 0, narenas;

	if (argc == 6 && strcmp(argv[1], "--debuginfo-path") == 0) {
		dpath = argv[2];
		argv += 2;
		argc -= 2;
	}
	if (argc != 4) {
		fprintf(stderr, "usage: hi_capture [--debuginfo-path P] OUT "
			"TARGET SCENARIO\n");
		return 64;
	}
	out = argv[1];
	target = argv[2];
	scenario = argv[3];
	memset(&im, 0, sizeof(im));
	memset(&ctx, 0, sizeof(ctx));

	if (pipe(to_child) || pipe(from_child))
		fail("pipe: %s", strerror(errno));
	child = fork();
	if (child < 0)
		fail("fork: %s", strerror(errno));
	if (child == 0) {
		dup2(to_child[0], 0);
		dup2(from_child[1], 1);
		close(to_child[1]);
		close(from_child[0]);
		execl(target, target, scenario, (char *)NULL);
		_exit(127);
	}
	close(to_child[0]);
	close(from_child[1]);
	in = fdopen(from_child[0], "r");
	if (!in)
		fail("fdopen: %s", strerror(errno));
	read_line(in, line, sizeof(line));
	parse_ready(line, &im);

	ctx.pid = child;
	ret = hi_sym_open(child, dpath, &ctx.sym);
	if (ret)
		fail("modules of pid %d: %s", (int)child, hi_strerror(ret));
	if (ptmalloc_ops.probe(&ctx) != 1)
		fail("pid %d: not glibc's malloc", (int)child);
	ctx.flags = HI_LOCATE_DWARF;
	ret = ptmalloc_ops.locate(&ctx);
	if (ret || ptm_located(&ctx, &im.l, &im.w))
		fail("locate: %s: %s", hi_strerror(ret), ctx.why);

	hi_target_init(&t, child);
	ret = hi_target_stop(&t, 10000);
	if (ret)
		fail("stop pid %d: %s", (int)child, hi_strerror(ret));
	ret = hi_proc_maps(child, &im.maps);
	if (ret)
		fail("maps: %s", hi_strerror(ret));
	t.mem.maps = &im.maps;
	live = hi_target_reader(&t);
	tc.maps = &im.maps;
	tc.inner = &live;
	tc.hit = calloc(im.maps.n, 1);
	im.segs = calloc(im.maps.n, sizeof(*im.segs));
	if (!tc.hit || !im.segs)
		fail("out of memory");
	rec.read = touch_read;
	rec.cached = NULL;
	rec.prefetch = NULL;
	rec.arg = &tc;
	ret = ptm_read_heap(&im.l, &im.w, &rec, &im.maps, 1, &heap);
	if (ret || !heap.complete)
		fail("walk: %s %s", hi_strerror(ret),
		     heap.narenas ? heap.arenas[0].why : "");
	/* Copy each touched mapping whole, while the target is still held. */
	for (size_t i = 0; i < im.maps.n; i++) {
		const struct hi_map *m = &im.maps.v[i];
		struct hi_image_seg *s = &im.segs[nseg];

		if (!tc.hit[i])
			continue;
		s->addr = m->start;
		s->len = m->end - m->start;
		s->data = malloc(s->len);
		if (!s->data)
			fail("out of memory for %" PRIu64 " bytes", s->len);
		ret = hi_read(&live, s->addr, s->data, s->len);
		if (ret)
			fail("read " HI_PRIxADDR ": %s", s->addr,
			     hi_strerror(ret));
		nseg++;
	}
	im.nsegs = nseg;
	hi_target_resume(&t);
	hi_target_fini(&t);

	for (int i = 0; i < HI_IMAGE_NFIG; i++) {
		uint64_t got = fig_of(&heap.mi, i);

		if (im.low32)
			got &= 0xffffffffu;
		if (got != im.fig[i])
			fail("%s: the walk says %" PRIu64 ", the target %"
			     PRIu64, fig_names[i], got, im.fig[i]);
	}
	narenas = heap.narenas;
	hi_heap_free(&heap);
	ptmalloc_ops.release(&ctx);
	hi_sym_close(ctx.sym);

	f = fopen(out, "wbe");
	if (!f)
		fail("%s: %s", out, strerror(errno));
	if (hi_image_write(f, &im) || fclose(f))
		fail("%s: write error", out);

	if (write(to_child[1], "check\n", 6) != 6)
		fail("the target is gone");
	read_line(in, line, sizeof(line));
	if (strcmp(line, "ok") != 0)
		fail("the target's check answered '%s'", line);
	if (write(to_child[1], "exit\n", 5) != 5)
		fail("the target is gone");
	if (waitpid(child, &status, 0) != child || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0)
		fail("the target did not exit cleanly (status %d)", status);
	child = -1;
	printf("%s: %s, %zu segments, %zu mappings, %zu arenas\n", out,
	       scenario, nseg, im.maps.n, narenas);
	for (size_t i = 0; i < nseg; i++)
		free(im.segs[i].data);
	free(im.segs);
	free(im.maps.v);
	free(tc.hit);
	fclose(in);
	return 0;
}
