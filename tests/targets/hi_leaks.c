/*
 * hi_leaks - the leak cases of valgrind memcheck's own tests, built in a
 * live process that waits to be read: the truth for `heapinspect leaks`
 * (docs/leaks.md), taken from valgrind itself by tests/live/vg_leaks.py.
 *
 * Usage: hi_leaks
 *
 * It builds every case of memcheck/tests/leak-cases.c (the manual's nine
 * pointer chains), leak-tree.c and leak-cycle.c, and blocks kept only by
 * a register, a stack slot, thread-local storage, a global, a pointer in
 * an anonymous mapping of its own, interior pointers that memcheck's
 * heuristics accept (length64, newarray, stdstring), and a block whose
 * only pointer lies in freed memory.  Every block gets a size of its own
 * (24 + 16 k bytes: what malloc_usable_size gives too, so that bytes
 * compare) and its own call site (so that valgrind gives it a loss record
 * of its own).  For each it writes a line to fd 1
 *
 *   block <name> <address> <size> <kind>
 *
 * where kind is what memcheck's manual says the case is (definite,
 * indirect, possible, reachable), then
 *
 *   ready pid=<pid> threads=<n>
 *
 * and waits, every thread blocked in read(2).  Under valgrind
 * (RUNNING_ON_VALGRIND) a thread of its own asks memcheck for a full leak
 * check (VALGRIND_DO_LEAK_CHECK) once the main thread is blocked, and
 * writes "checked"; natively that thread only waits.  Commands on fd 0:
 * "exit" (or EOF) ends it with status 0.
 *
 * Nothing here uses stdio (its buffers would be blocks too); the cases
 * are built in functions that return before the wait, and the stack below
 * is cleared, as valgrind's tests do, so that no stale pointer is left.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <valgrind/memcheck.h>

#define N_THREADS 4

static void out(const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0 && write(1, buf, (size_t)n) != n)
		_exit(2);
}

static void die(const char *what)
{
	char buf[160];
	int n = snprintf(buf, sizeof(buf), "hi_leaks: %s: %s\n", what,
			 strerror(errno));

	if (write(2, buf, (size_t)n) < 0)
		_exit(2);
	_exit(2);
}

static unsigned next_k;

/*
 * One block of a size no other has, filled with a byte that is no
 * pointer's, and reported.  noinline: each caller is a call site of its
 * own, so that valgrind's loss records keep the blocks apart.
 */
static __attribute__((noinline)) void *block_k(const char *name,
					       const char *kind, unsigned k)
{
	size_t size = 24 + 16 * (size_t)k;
	void *p = malloc(size);

	if (!p)
		die("malloc");
	memset(p, 0x5a, size);
	out("block %s %p %zu %s\n", name, p, size, kind);
	return p;
}

static __attribute__((noinline)) void *block(const char *name,
					     const char *kind)
{
	return block_k(name, kind, next_k++);
}

/* Clear what the cases left below the stack pointer. */
static __attribute__((noinline)) void scrub(void)
{
	volatile char junk[64 * 1024];

	memset((char *)junk, 0, sizeof(junk));
	__asm__ volatile("" : : "r"(junk) : "memory");
}

static void set(void *block_, size_t off, const void *ptr)
{
	memcpy((char *)block_ + off, &ptr, sizeof(ptr));
}

/*
 * The roots: globals (.bss), as in valgrind's tests; external, so that
 * the compiler keeps stores nothing in this file reads.
 */
void *p1, *p2, *p5, *p6, *p7, *p8, *p9;
void *tree_root;
void *heur_len64, *heur_newarray, *heur_stdstring;
char *anon_page;

/* memcheck/tests/leak-cases.c: the nine cases of the manual's table. */
static __attribute__((noinline)) void cases(void)
{
	void *a, *b;

	p1 = block("case1", "reachable");

	b = block("case2.BBB", "reachable");
	a = block("case2.AAA", "reachable");
	set(a, 0, b);
	p2 = a;

	(void)block("case3", "definite");

	b = block("case4.BBB", "indirect");
	a = block("case4.AAA", "definite");
	set(a, 0, b);

	p5 = (char *)block("case5", "possible") + 8;

	b = block("case6.BBB", "possible");
	a = block("case6.AAA", "reachable");
	set(a, 0, (char *)b + 8);
	p6 = a;

	b = block("case7.BBB", "possible");
	a = block("case7.AAA", "possible");
	set(a, 0, b);
	p7 = (char *)a + 8;

	b = block("case8.BBB", "possible");
	a = block("case8.AAA", "possible");
	set(a, 0, (char *)b + 8);
	p8 = (char *)a + 8;

	b = block("case9.BBB", "indirect");
	a = block("case9.AAA", "definite");
	set(a, 0, (char *)b + 8);
	p9 = NULL;
}

/* memcheck/tests/leak-tree.c: D and C-F-G cut off. */
static __attribute__((noinline)) void tree(void)
{
	void *A = block("tree.A", "reachable");
	void *B = block("tree.B", "reachable");
	void *C = block("tree.C", "definite");
	void *D = block("tree.D", "definite");
	void *E = block("tree.E", "reachable");
	void *F = block("tree.F", "indirect");
	void *G = block("tree.G", "indirect");

	memset(A, 0, 16);
	memset(B, 0, 16);
	memset(C, 0, 16);
	set(A, 0, B);
	set(B, 8, E);
	set(C, 0, F);
	set(C, 8, G);
	(void)D;
	tree_root = A;
}

/*
 * memcheck/tests/leak-cycle.c: a lone cycle, a cycle pointing at another
 * (their cliques merge), two cycles pointing at each other.  In each
 * lone group the first block in address order leads: which one that is
 * depends on the addresses, so these are "lost" (definite or indirect)
 * and vg_leaks.py checks the group's counts.
 */
static __attribute__((noinline)) void *cycle(const char *prefix)
{
	char n[3][32];
	void *a, *b, *c;

	snprintf(n[0], sizeof(n[0]), "%s.a", prefix);
	snprintf(n[1], sizeof(n[1]), "%s.b", prefix);
	snprintf(n[2], sizeof(n[2]), "%s.c", prefix);
	a = block(n[0], "lost");
	b = block(n[1], "lost");
	c = block(n[2], "lost");
	set(b, 0, a);
	set(c, 0, b);
	set(a, 0, c);
	set(a, 8, NULL);
	return a;
}

static __attribute__((noinline)) void cycles(void)
{
	void *c1, *c2;

	(void)cycle("cycle1");
	c1 = cycle("cycle2");
	c2 = cycle("cycle3");
	if ((uintptr_t)c1 < (uintptr_t)c2)
		set(c2, 8, c1);
	else
		set(c1, 8, c2);
	c1 = cycle("cycle4");
	c2 = cycle("cycle5");
	set(c1, 8, c2);
	set(c2, 8, c1);
	/* one leader for cycle1, one for 2+3, one for 4+5 */
	out("lost_groups 3\n");
}

/*
 * Interior pointers memcheck's heuristics take (leak_cpp_interior.cpp,
 * in C): a 64-bit length before the data, an element count before an
 * array, std::string's old layout (length, capacity, refcount, chars).
 * Their sizes are fitted to what each heuristic compares.
 */
static __attribute__((noinline)) void heuristics(void)
{
	uint64_t *p;
	size_t size;
	char *s;

	/* length64: the first word is the size less 8 */
	size = 24 + 16 * (size_t)next_k;
	p = block("heur.length64", "reachable");
	p[0] = size - 8;
	heur_len64 = p + 1;
	/* newarray: a count of 4 (size - 8 is a multiple of 16), then the
	 * elements */
	p = block("heur.newarray", "reachable");
	p[0] = 4;
	heur_newarray = p + 1;
	/* stdstring: 24 + capacity + 1 == size */
	size = 24 + 16 * (size_t)next_k;
	p = block("heur.stdstring", "reachable");
	p[0] = 11;
	p[1] = size - 24 - 1;
	p[2] = 0;
	s = (char *)(p + 3);
	memcpy(s, "hello world", 12);
	heur_stdstring = s;
}

/* Kept by a pointer in an anonymous mapping that is not malloc's. */
static __attribute__((noinline)) void anon(void)
{
	anon_page = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (anon_page == MAP_FAILED)
		die("mmap");
	set(anon_page, 64, block("anon.kept", "reachable"));
}

/* The only pointer to a block lies in a block that was freed. */
static __attribute__((noinline)) void freed(void)
{
	void *q = block("freed.holder", "none");
	void *p = block("freed.lost", "definite");

	set(q, 16, p);
	free(q);
}

/* The threads: each blocks in read() on a pipe of its own, after
 * saying on made_pipe that its block is made (sizes 24, 40, 56). */
static int thread_pipe[N_THREADS][2];
static int check_pipe[2];
static int made_pipe[2];

static void made(void)
{
	if (write(made_pipe[1], "m", 1) != 1)
		die("write");
}

static void wait_byte(int fd)
{
	char c;

	while (read(fd, &c, 1) < 0 && errno == EINTR)
		;
}

/*
 * Kept only by r12: the block is made last, by a function of its own,
 * and its pointer goes from rdi to r12 in the asm statement that clears
 * rdi, rax, rcx and 16 KiB below the stack pointer (what the calls left,
 * red zone included), says it is made and blocks in the read system call
 * (so that no libc wrapper saves r12 anywhere).
 */
static __attribute__((noinline)) void *make_reg_block(void)
{
	return block_k("register.r12", "reachable", 0);
}

static void *register_thread(void *arg)
{
	int fd = thread_pipe[(intptr_t)arg][0];
	int mfd = made_pipe[1];
	char c = 'm';
	void *p;

	scrub();
	p = make_reg_block();
	__asm__ volatile(
		"mov %%rdi, %%r12\n\t"
		"lea -16384(%%rsp), %%rdi\n\t"
		"mov $2048, %%ecx\n\t"
		"xor %%eax, %%eax\n\t"
		"rep stosq\n\t"
		"mov %[mfd], %%edi\n\t"
		"lea %[c], %%rsi\n\t"
		"mov $1, %%edx\n\t"
		"mov $1, %%eax\n\t" /* SYS_write */
		"syscall\n\t"
		"1:\n\t"
		"mov %[fd], %%edi\n\t"
		"lea %[c], %%rsi\n\t"
		"mov $1, %%edx\n\t"
		"xor %%eax, %%eax\n\t" /* SYS_read */
		"syscall\n\t"
		"cmp $-4, %%rax\n\t" /* -EINTR: again */
		"je 1b\n\t"
		"xor %%r12d, %%r12d\n\t"
		: [c] "+m"(c), "+D"(p)
		: [fd] "r"(fd), [mfd] "r"(mfd)
		: "rax", "rcx", "rdx", "rsi", "r11", "r12", "memory", "cc");
	return NULL;
}

/* Kept only by a slot of this thread's stack. */
static __attribute__((noinline)) void *make_stack_block(void)
{
	return block_k("stack.slot", "reachable", 1);
}

static void *stack_thread(void *arg)
{
	int fd = thread_pipe[(intptr_t)arg][0];
	void *volatile slot = make_stack_block();

	made();
	scrub();
	wait_byte(fd);
	return (void *)slot == NULL ? arg : NULL;
}

/* Kept only by a thread-local variable of the executable. */
static __thread void *tls_slot;

static __attribute__((noinline)) void make_tls_block(void)
{
	tls_slot = block_k("tls.slot", "reachable", 2);
}

static void *tls_thread(void *arg)
{
	int fd = thread_pipe[(intptr_t)arg][0];

	make_tls_block();
	made();
	scrub();
	wait_byte(fd);
	return tls_slot == NULL ? arg : NULL;
}

/* Under valgrind: the leak check, once the main thread waits. */
static void *check_thread(void *arg)
{
	int fd = thread_pipe[(intptr_t)arg][0];
	char c;

	for (;;) {
		if (read(check_pipe[0], &c, 1) <= 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (c != 'c')
			break;
		/* Let the main thread reach its read(); not a timed check:
		 * only which of its registers are seen depends on it. */
		usleep(500 * 1000);
		VALGRIND_DO_LEAK_CHECK;
		out("checked\n");
	}
	wait_byte(fd);
	return NULL;
}

static int count_threads(void)
{
	char buf[4096];
	int fd = open("/proc/self/status", 0), n;
	const char *t;

	if (fd < 0)
		return -1;
	n = (int)read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	t = strstr(buf, "\nThreads:");
	return t ? atoi(t + 9) : -1;
}

int main(void)
{
	void *(*fns[N_THREADS])(void *) = {
		register_thread, stack_thread, tls_thread, check_thread,
	};
	pthread_t th[N_THREADS];
	char line[64];
	size_t len = 0;

	if (pipe(check_pipe) || pipe(made_pipe))
		die("pipe");
	for (int i = 0; i < N_THREADS; i++) {
		if (pipe(thread_pipe[i]))
			die("pipe");
	}
	/* The threads first, so that their blocks come first. */
	for (int i = 0; i < N_THREADS; i++) {
		if (pthread_create(&th[i], NULL, fns[i], (void *)(intptr_t)i))
			die("pthread_create");
	}
	/* Wait until the three blocks of the threads are reported. */
	for (int i = 0; i < 3; i++)
		wait_byte(made_pipe[0]);
	next_k = 3;
	cases();
	tree();
	cycles();
	heuristics();
	anon();
	freed();
	scrub();
	out("ready pid=%d threads=%d\n", (int)getpid(), count_threads());
	if (RUNNING_ON_VALGRIND && write(check_pipe[1], "c", 1) != 1)
		die("write");
	for (;;) {
		ssize_t n = read(0, line + len, sizeof(line) - 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		line[len] = '\0';
		if (strchr(line, '\n')) {
			if (strncmp(line, "exit", 4) == 0)
				break;
			len = 0;
		}
		if (len >= sizeof(line) - 1)
			len = 0;
	}
	if (write(check_pipe[1], "x", 1) != 1)
		die("write");
	for (int i = 0; i < N_THREADS; i++) {
		if (write(thread_pipe[i][1], "x", 1) != 1)
			die("write");
		pthread_join(th[i], NULL);
	}
	return 0;
}
