/*
 * libhi_tlsdyn.so - a module with 64 KiB of thread-local storage, for
 * hi_tls to dlopen: too large for the static TLS surplus, so each
 * thread's block is malloc'd by __tls_get_addr when it first touches it.
 * Built without the C library (it needs only ld.so's __tls_get_addr), so
 * that one build loads into a program of any glibc.
 */
__thread char hi_dyn_tls[64 * 1024];

void *hi_dyn_tls_addr(void);

void *hi_dyn_tls_addr(void)
{
	hi_dyn_tls[0]++;
	return hi_dyn_tls;
}
