/*
 * hi_leaks_cxx - C++ objects leaked, for `heapinspect leaks` to name by
 * their class (docs/leaks.md): a record of lost blocks whose first word
 * points into a module's "vtable for Widget" must say Widget.
 *
 * It leaks WIDGETS objects of class Widget (definitely lost), keeps a
 * Gadget only through a pointer to its second base (an interior pointer
 * that memcheck's multipleinheritance heuristic accepts: still reachable)
 * and a std::string whose characters are on the heap (reachable), writes
 * what valgrind must find (the protocol of tests/live/vg_leaks.py), then
 * "ready pid=<pid>", and waits for "exit" on fd 0.  Under valgrind it
 * asks memcheck for a leak check first and writes "checked".
 *
 * Object sizes are 24 + 16 k bytes, what malloc_usable_size gives for
 * them, so that bytes compare with valgrind's.
 */
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <string>
#include <unistd.h>

#include <valgrind/memcheck.h>

#define WIDGETS 5

class Widget {
public:
	Widget(long v) : a(v), b(v + 1), c(v + 2), d(v + 3) {}
	virtual ~Widget() {}
	virtual long poke() { return a + b + c + d; }
private:
	long a, b, c, d;
};

struct Base1 {
	virtual ~Base1() {}
	long x = 1;
};

struct Base2 {
	virtual ~Base2() {}
	virtual long y2() { return y; }
	long y = 2;
};

struct Gadget : public Base1, public Base2 {
	long z = 3;
};

/* External, so that the compiler keeps them. */
Base2 *kept_gadget;
std::string *kept_string;
Widget *volatile last_widget;

static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

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

/* Their addresses, as text (no pointer is kept): "widget 0x..." lines. */
static char widget_lines[WIDGETS * 32];

static __attribute__((noinline)) void leak_widgets(void)
{
	size_t n = 0;

	for (int i = 0; i < WIDGETS; i++) {
		last_widget = new Widget(i);
		last_widget->poke();
		n += (size_t)snprintf(widget_lines + n,
				      sizeof(widget_lines) - n, "widget %p\n",
				      (void *)last_widget);
	}
	last_widget = nullptr;
}

static __attribute__((noinline)) void scrub(void)
{
	volatile char junk[64 * 1024];

	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = 0;
}

int main()
{
	char line[64];

	static_assert(sizeof(Widget) == 40, "Widget: 24 + 16 k bytes");
	static_assert(sizeof(Gadget) == 40, "Gadget: 24 + 16 k bytes");
	leak_widgets();
	kept_gadget = new Gadget;
	/* 103 characters: 104 bytes with the NUL */
	kept_string = new std::string(103, 'x');
	scrub();
	out("expect definite %zu %d leak_widgets\n", sizeof(Widget), WIDGETS);
	out("expect_class definite Widget %d\n", WIDGETS);
	out("%s", widget_lines);
	out("expect reachable %zu 1\n", sizeof(Gadget));
	out("expect reachable 104 1\n");
	out("ready pid=%d\n", (int)getpid());
	if (RUNNING_ON_VALGRIND) {
		VALGRIND_DO_LEAK_CHECK;
		out("checked\n");
	}
	while (read(0, line, sizeof(line)) > 0)
		;
	return kept_gadget->y2() == 2 && kept_string->size() == 103 ? 0 : 1;
}
