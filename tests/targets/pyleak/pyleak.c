/*
 * pyleak - a CPython extension with two native leaks, built the ordinary
 * way (setuptools: tests/targets/pyleak/setup.py), for `heapinspect
 * leaks` to find in a running Python (docs/leaks.md):
 *
 *   leak32(n)       mallocs a 32-byte array n times and forgets it: n
 *                   blocks definitely lost; returns their addresses
 *   forget_decref(n) makes a bytes object of n bytes and forgets to
 *                   Py_DECREF it: a block that no Python object points
 *                   to (definitely lost), whose type is bytes; returns
 *                   its address
 *   do_leak_check() under valgrind, memcheck's leak check now
 *                   (VALGRIND_DO_LEAK_CHECK); returns whether valgrind
 *                   runs the process
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdlib.h>
#include <string.h>

#include <valgrind/memcheck.h>

/* Clear what the calls left below the stack pointer: a stale copy of a
 * pointer there would make a lost block look reachable. */
static __attribute__((noinline)) void scrub(void)
{
	volatile char junk[64 * 1024];

	memset((char *)junk, 0, sizeof(junk));
	__asm__ volatile("" : : "r"(junk) : "memory");
}

static PyObject *leak32(PyObject *self, PyObject *args)
{
	Py_ssize_t n;
	PyObject *list;

	(void)self;
	if (!PyArg_ParseTuple(args, "n", &n))
		return NULL;
	list = PyList_New(0);
	if (!list)
		return NULL;
	for (Py_ssize_t i = 0; i < n; i++) {
		char *p = malloc(32);
		PyObject *addr;

		if (!p)
			return PyErr_NoMemory();
		memset(p, 'L', 32);
		/* the address as a Python int: its digits are no pointer */
		addr = PyLong_FromUnsignedLongLong((uintptr_t)p);
		if (!addr || PyList_Append(list, addr)) {
			Py_XDECREF(addr);
			Py_DECREF(list);
			return NULL;
		}
		Py_DECREF(addr);
	}
	return list;
}

static PyObject *forget_decref(PyObject *self, PyObject *args)
{
	Py_ssize_t n;
	PyObject *b;

	(void)self;
	if (!PyArg_ParseTuple(args, "n", &n))
		return NULL;
	b = PyBytes_FromStringAndSize(NULL, n);
	if (!b)
		return NULL;
	memset(PyBytes_AS_STRING(b), 'B', (size_t)n);
	/* The bug: no Py_DECREF(b). */
	scrub();
	return PyLong_FromUnsignedLongLong((uintptr_t)b);
}

static PyObject *do_leak_check(PyObject *self, PyObject *args)
{
	(void)self;
	(void)args;
	if (RUNNING_ON_VALGRIND) {
		scrub();
		VALGRIND_DO_LEAK_CHECK;
		Py_RETURN_TRUE;
	}
	Py_RETURN_FALSE;
}

static PyMethodDef methods[] = {
	{ "leak32", leak32, METH_VARARGS, "malloc 32 bytes n times, forget" },
	{ "forget_decref", forget_decref, METH_VARARGS,
	  "make a bytes object of n bytes, forget its Py_DECREF" },
	{ "do_leak_check", do_leak_check, METH_NOARGS,
	  "valgrind's leak check now, when under valgrind" },
	{ NULL, NULL, 0, NULL },
};

static struct PyModuleDef module = {
	PyModuleDef_HEAD_INIT, "pyleak", "native leaks for heapinspect's tests",
	-1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit_pyleak(void)
{
	return PyModule_Create(&module);
}
