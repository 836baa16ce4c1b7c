/* SPDX-License-Identifier: MIT */
/*
 * heapinspect: glibc's malloc figures of a live process, read from outside.
 * The command line, the messages and the exit codes live here and nowhere
 * else.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cli.h"
#include "output.h"
#include "trim.h"
#include "snapshot.h"

static void usage(FILE *out)
{
	fprintf(out,
"usage: heapinspect -p PID [--json] [--bytes] [--debuginfo-path PATH]\n"
"                   [--method auto|read|call] [--timeout MS]\n"
"                   [--explain] [--no-cache]\n"
"       heapinspect info -p PID [--json] [...]\n"
"       heapinspect trim -p PID [--pad BYTES] [--json] (see trim --help)\n"
"       heapinspect snapshot -p PID -o FILE\n"
"       heapinspect watch -p PID --interval DURATION [--count N |\n"
"                         --duration DURATION] -o FILE\n"
"       heapinspect diff A B | diff FILE.jsonl [--lines M,N]\n"
"       heapinspect trend FILE.jsonl\n"
"       heapinspect plot FILE.jsonl -o FILE.svg\n"
"\n"
"Read glibc's malloc state of the running process PID from outside and\n"
"print what its allocator holds: the ten figures mallinfo2() would return\n"
"inside the process, per arena and in total, beside RSS, PSS, USS and swap.\n"
"The process is held still only while its memory is read (pause_us), and\n"
"nothing in it is changed.\n"
"\n"
"  -p, --pid PID            the process to inspect (a thread's id is\n"
"                           taken for its process, with a note)\n"
"      --json               print one JSON object (schema\n"
"                           heapinspect/snapshot/v1, see the README)\n"
"      --bytes              print sizes in exact bytes, not KiB/MiB\n"
"      --debuginfo-path P   where to look for libc's debug information,\n"
"                           with elfutils' meaning (as eu-stack); default\n"
"                           +:.debug:/usr/lib/debug\n"
"      --explain            also print how the allocator was found (what\n"
"                           'heapinspect info' prints)\n"
"      --no-cache           neither read nor write the layout cache\n"
"                           ($XDG_CACHE_HOME/heapinspect, ~/.cache/...)\n"
"      --attempts N         stops to try while the allocator is busy in the\n"
"                           target (default 10)\n"
"      --stop-timeout MS    how long to wait for every thread to stop, and\n"
"                           for another tracer to let go (default 2000)\n"
"      --method M           read: from the allocator's memory, found by\n"
"                           libc's debug information (local, then\n"
"                           debuginfod when DEBUGINFOD_URLS is set), else\n"
"                           by heapinspect's built-in glibc layouts; call:\n"
"                           from the target's own mallinfo2(), called in\n"
"                           it at a moment no thread is inside malloc and\n"
"                           a thread can host it; where the layout is\n"
"                           known, only after a read in the same stop\n"
"                           found every list mallinfo2() walks sound\n"
"                           (else refused, exit 5); where none is known,\n"
"                           the call is the only way to the figures, and\n"
"                           nothing can be checked first; auto (default):\n"
"                           read where the layout is known, else call (a\n"
"                           glibc without a built-in layout and without\n"
"                           usable debug information), and say which and\n"
"                           why (method_reason)\n"
"      --timeout MS         how long to wait for that moment (default\n"
"                           5000), and for the call to return\n"
"  -h, --help               this text\n"
"  -V, --version            the version\n"
"\n"
"info -p PID prints how the allocator was found: libc and build-id, glibc\n"
"version, which method worked, where each address came from and which\n"
"checks it passed.\n"
"\n"
"exit status: 0 the snapshot is complete; 1 it was printed, but an arena\n"
"was busy in every attempt or is corrupt (its figures are left out), or\n"
"(info, --explain) a check of the allocator's state failed; 2 no\n"
"snapshot (no such process, no permission, addresses that failed\n"
"verification, no layout to read and no safe moment to call, a call that\n"
"failed and was undone, ...; the message says what would help); 5\n"
"--method call refused: the heap is corrupt where mallinfo2() would walk,\n"
"nothing was called, the read's snapshot is printed; 64 wrong usage.\n"
"SIGINT, SIGTERM, SIGHUP and SIGQUIT wait until the process is released,\n"
"then end heapinspect: a shell shows 128 + the signal's number,\n"
"130 after SIGINT (Ctrl-C).\n"
"\n"
"Snapshots over time (each has its own --help and exit codes):\n"
"  snapshot   one snapshot to a file, written atomically\n"
"  watch      a snapshot every interval, to JSON Lines or OpenMetrics\n"
"  diff       what changed between two snapshots\n"
"  trend      leak, fragmentation or growth outside the heap, over a series\n"
"  plot       an SVG picture of a series\n");
}

void errmsg(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* strerror's text in git's style: lower case first. */
const char *lower(const char *msg)
{
	static char buf[256];

	snprintf(buf, sizeof(buf), "%s", msg);
	if (buf[0] >= 'A' && buf[0] <= 'Z' && !(buf[1] >= 'A' && buf[1] <= 'Z'))
		buf[0] = (char)(buf[0] - 'A' + 'a');
	return buf;
}

static int read_int_file(const char *path, int *v)
{
	FILE *f = fopen(path, "re");
	int ok;

	if (!f)
		return -1;
	ok = fscanf(f, "%d", v) == 1;
	fclose(f);
	return ok ? 0 : -1;
}

/* A line of a /proc status file: the numbers after "\nKey:". */
static int status_ids(const char *buf, const char *key, unsigned long v[4])
{
	const char *p = strstr(buf, key);

	return p && sscanf(p + strlen(key), "%lu %lu %lu %lu", &v[0], &v[1],
			   &v[2], &v[3]) == 4 ? 0 : -1;
}

static int read_text(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "re");
	size_t n;

	if (!f)
		return -1;
	n = fread(buf, 1, size - 1, f);
	fclose(f);
	buf[n] = '\0';
	return 0;
}

/*
 * Who traces a thread, for a message: "pid 777 (strace)", or "another
 * heapinspect (pid 777)".  TracerPid names the tracer's thread; its process
 * and name are the ones of its thread group.
 */
static const char *tracer_name(pid_t tracer, char *buf, size_t size)
{
	char path[64], status[4096], comm[64] = "";
	struct stat a, b;
	const char *p;
	pid_t tgid = tracer;
	int same = 0;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)tracer);
	if (read_text(path, status, sizeof(status)) == 0 &&
	    (p = strstr(status, "\nTgid:")) != NULL)
		tgid = (pid_t)atoi(p + strlen("\nTgid:"));
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)tgid);
	if (read_text(path, comm, sizeof(comm)) == 0)
		comm[strcspn(comm, "\n")] = '\0';
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)tgid);
	if (stat(path, &a) == 0 && stat("/proc/self/exe", &b) == 0)
		same = a.st_dev == b.st_dev && a.st_ino == b.st_ino;
	else
		same = strcmp(comm, PROG) == 0;
	if (same)
		snprintf(buf, size, "another heapinspect (pid %d)", (int)tgid);
	else if (comm[0])
		snprintf(buf, size, "pid %d (%s)", (int)tgid, comm);
	else
		snprintf(buf, size, "pid %d", (int)tgid);
	return buf;
}

/* A thread of pid that some tracer holds: 0, or its tid and *tracer. */
static pid_t find_traced(pid_t pid, pid_t *tracer)
{
	char path[64], status[4096];
	struct dirent *de;
	pid_t found = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return 0;
	while (!found && (de = readdir(d)) != NULL) {
		const char *p;
		int tid = atoi(de->d_name);

		if (tid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%d/status",
			 (int)pid, tid);
		if (read_text(path, status, sizeof(status)) == 0 &&
		    (p = strstr(status, "\nTracerPid:")) != NULL &&
		    (*tracer = (pid_t)atoi(p + strlen("\nTracerPid:"))) != 0)
			found = (pid_t)tid;
	}
	closedir(d);
	return found;
}

/* Whether heapinspect has CAP_SYS_PTRACE in effect. */
static int have_cap_ptrace(void)
{
	char status[4096];
	const char *p;

	if (read_text("/proc/self/status", status, sizeof(status)) != 0 ||
	    !(p = strstr(status, "\nCapEff:")))
		return geteuid() == 0;
	return (strtoull(p + strlen("\nCapEff:"), NULL, 16) >> 19) & 1;
}

/* Whether heapinspect runs under a seccomp filter (a container's). */
static int under_seccomp(void)
{
	char status[4096];
	const char *p;

	if (read_text("/proc/self/status", status, sizeof(status)) != 0 ||
	    !(p = strstr(status, "\nSeccomp:")))
		return 0;
	return atoi(p + strlen("\nSeccomp:")) == 2;
}

/*
 * Why ptrace was refused when no tracer holds the process, in the order
 * the kernel checks (__ptrace_may_access, then Yama): credentials, the
 * dumpable flag, ptrace_scope; and heapinspect's own capability.
 */
static void permission_hints(pid_t pid)
{
	unsigned long uid[4], gid[4];
	char path[64], status[4096], self[4096];
	int scope = 0, cap = have_cap_ptrace(), said = 0;
	struct stat st;
	ssize_t n;

	/* The fix names this binary: setcap needs its path. */
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	snprintf(self + (n > 0 ? n : 0), sizeof(self) - (n > 0 ? n : 0), "%s",
		 n > 0 ? "" : PROG);
	read_int_file("/proc/sys/kernel/yama/ptrace_scope", &scope);
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (read_text(path, status, sizeof(status)) == 0 &&
	    status_ids(status, "\nUid:", uid) == 0 &&
	    status_ids(status, "\nGid:", gid) == 0) {
		uid_t me = getuid();
		gid_t my = getgid();

		if (uid[0] != me && geteuid() != 0) {
			/*
			 * CAP_SYS_PTRACE does not open another user's
			 * /proc/PID/auxv (mode 0400, its owner's), which
			 * libdwfl reads: say so rather than suggest it.
			 */
			fprintf(stderr, "  it belongs to another user (uid "
				"%lu): run heapinspect as that user or as "
				"root%s\n", uid[0], cap ? " (CAP_SYS_PTRACE is "
				"not enough: the process's /proc files are its "
				"owner's)" : "");
			said = 1;
		} else if (!cap && (uid[1] != me || uid[2] != me ||
				    gid[0] != my || gid[1] != my ||
				    gid[2] != my)) {
			fprintf(stderr, "  it runs with other credentials "
				"than yours (uid %lu/%lu/%lu, gid %lu/%lu/%lu: "
				"a set-user-ID or set-group-ID program): only "
				"root or a process with CAP_SYS_PTRACE may "
				"attach to it\n", uid[0], uid[1], uid[2],
				gid[0], gid[1], gid[2]);
			said = 1;
		} else if (!cap) {
			/*
			 * The files of /proc/PID belong to root while the
			 * process is not dumpable (task_dump_owner in
			 * fs/proc/base.c).
			 */
			if (stat(path, &st) == 0 && st.st_uid != uid[1]) {
				fprintf(stderr, "  it is not dumpable: it "
					"called prctl(PR_SET_DUMPABLE, 0), or "
					"changed its user or group (setuid(), "
					"a set-user-ID program); only root or "
					"a process with CAP_SYS_PTRACE may "
					"attach to it: run heapinspect as "
					"root, or give it the capability: "
					"setcap cap_sys_ptrace+ep %s\n", self);
				said = 1;
			}
		}
	}
	if (scope >= 3) {
		fprintf(stderr, "  kernel.yama.ptrace_scope is 3: no process "
			"may attach to another until the next boot\n");
		return;
	}
	if (scope > 0 && !cap) {
		fprintf(stderr, "  kernel.yama.ptrace_scope is %d: only root "
			"or a process with CAP_SYS_PTRACE may attach to a "
			"process that is not its child; run as root, or grant "
			"it: setcap cap_sys_ptrace+ep %s%s\n", scope, self,
			scope == 1 ? ", or lower it: sysctl "
				     "kernel.yama.ptrace_scope=0" : "");
		said = 1;
	}
	if (geteuid() == 0 && !cap) {
		fprintf(stderr, "  heapinspect runs as root but without "
			"CAP_SYS_PTRACE (in a container that drops it?): give "
			"the container CAP_SYS_PTRACE\n");
		said = 1;
	}
	if (under_seccomp())
		fprintf(stderr, "  heapinspect runs under a seccomp filter "
			"(a container's profile?), which may forbid ptrace\n");
	else if (!said)
		fprintf(stderr, "  a security module (SELinux, AppArmor) may "
			"forbid it: see the kernel log\n");
}

/* A system call by name: "vfork", else "system call N". */
static const char *syscall_str(long nr, char *buf, size_t size)
{
	const struct hi_arch_ops *arch = hi_arch_host();
	const char *name = arch && arch->syscall_name && nr >= 0
				   ? arch->syscall_name((uint64_t)nr) : NULL;

#ifdef SYS_vfork
	if (!name && nr == SYS_vfork)
		name = "vfork";
#endif
#ifdef SYS_clone
	if (!name && nr == SYS_clone)
		name = "clone";
#endif
#ifdef SYS_clone3
	if (!name && nr == SYS_clone3)
		name = "clone3";
#endif
	if (name)
		snprintf(buf, size, "%s()", name);
	else
		snprintf(buf, size, "system call %ld", nr);
	return buf;
}

/* Whether system call name (as syscall_str says it) starts a process. */
static int starts_process(const char *sc)
{
	return !strcmp(sc, "vfork()") || !strcmp(sc, "clone()") ||
	       !strcmp(sc, "clone3()");
}

const char *hi_stop_error_line(pid_t pid, int code,
			       const struct hi_stop_why *w,
			       unsigned stop_timeout_ms, char *buf,
			       size_t size)
{
	char who[160], thread[64], sc[64], what[256] = "";
	pid_t tid = 0, tracer = 0;

	if (w && w->code == code) {
		tid = w->tid;
		tracer = w->tracer;
	}
	snprintf(thread, sizeof(thread), "thread %d", (int)tid);
	if (code == -ETIMEDOUT) {
		if (!tid)
			what[0] = '\0';
		else if (w->child)
			snprintf(what, sizeof(what), ": it is in %s and its "
				 "child %d, which runs in its memory until it "
				 "executes a program, cannot be held (%s)",
				 syscall_str(w->syscall, sc, sizeof(sc)),
				 (int)w->child,
				 lower(strerror(w->child_err)));
		else if (w->state == 'R')
			snprintf(what, sizeof(what), ": it is running (state "
				 "R), busy in the kernel or waiting for a "
				 "processor");
		else if (w->state == 'D' && w->syscall >= 0 &&
			 starts_process(syscall_str(w->syscall, sc,
						    sizeof(sc))))
			snprintf(what, sizeof(what), ": it is in "
				 "uninterruptible sleep (state D) in %s, "
				 "waiting for its child to execute a program",
				 sc);
		else if (w->state == 'D' && w->syscall >= 0)
			snprintf(what, sizeof(what), ": it is in "
				 "uninterruptible sleep (state D) in %s", sc);
		else if (w->state == 'D')
			snprintf(what, sizeof(what), ": it is in "
				 "uninterruptible sleep (state D)");
		else if (w->state)
			snprintf(what, sizeof(what), " (state %c)", w->state);
		snprintf(buf, size, "pid %d: %s did not stop within %u ms%s",
			 (int)pid, tid ? thread : "a thread", stop_timeout_ms,
			 what);
		return buf;
	}
	if (!tracer)
		tid = find_traced(pid, &tracer);
	if (!tracer) {
		snprintf(buf, size, "cannot attach to pid %d: %s", (int)pid,
			 lower(strerror(-code)));
		return buf;
	}
	tracer_name(tracer, who, sizeof(who));
	snprintf(buf, size, "cannot attach to pid %d: %s is %s %s", (int)pid,
		 tid && tid != pid ? thread : "it",
		 strncmp(who, "another", 7) == 0 ? "held by"
						  : "already traced by",
		 who);
	return buf;
}

void hi_report_stop_error(pid_t pid, int code, const struct hi_stop_why *w,
			  unsigned stop_timeout_ms, int method_call)
{
	char line[1024];
	pid_t tracer = 0;

	errmsg("%s", hi_stop_error_line(pid, code, w, stop_timeout_ms, line,
					sizeof(line)));
	if (code == -ETIMEDOUT) {
		if (method_call && w && w->code == code && w->tid &&
		    w->state != 'R' && !w->child)
			fprintf(stderr, "  a call needs every thread stopped; "
				"--method read does not: it counts a thread "
				"asleep in the kernel as held\n");
		fprintf(stderr, "  nothing was read; the process runs on\n");
		return;
	}
	if ((w && w->code == code && w->tracer) || find_traced(pid, &tracer))
		fprintf(stderr, "  only one tracer can hold a thread; "
			"heapinspect waited %u ms (--stop-timeout) for it to "
			"let go: run it again once it has\n", stop_timeout_ms);
	else
		permission_hints(pid);
}

/* Why the methods before the last one failed. */
static void tried_lines(const struct hi_snapshot *s)
{
	for (unsigned i = 0; i < s->loc.ntried; i++)
		fprintf(stderr, "  tried first: %s\n", s->loc.tried[i]);
}

/*
 * debuginfod was asked (DEBUGINFOD_URLS) and failed, though another method
 * worked: say why, so that a broken server does not go unnoticed.
 */
static void debuginfod_note(const struct hi_snapshot *s)
{
	const char *urls = getenv("DEBUGINFOD_URLS");
	const char *t = getenv("DEBUGINFOD_TIMEOUT");
	int e = -s->loc.debuginfod_err;
	char why[256];

	if (!s->loc.debuginfod_err)
		return;
	if (e == ETIME || e == ETIMEDOUT)
		snprintf(why, sizeof(why), "no answer within %s s "
			 "(DEBUGINFOD_TIMEOUT)", t ? t : "?");
	else if (e == ENOENT)
		snprintf(why, sizeof(why), "the server does not have it");
	else
		snprintf(why, sizeof(why), "%s", lower(strerror(e)));
	errmsg("note: debuginfod failed for %s (build-id %s) from %s: %s; "
	       "located by %s instead", s->libc_path, s->build_id,
	       urls ? urls : "?", why,
	       s->loc.located_by ? s->loc.located_by : "another method");
}

/*
 * A debug file that is where the build-id says but that elfutils refused
 * (truncated, corrupt, or of another build): name it, as the user may have
 * put it there and would otherwise look for a missing file.
 */
static void refused_debug_files(const char *dpath, const char *build_id)
{
	const char *p = dpath ? dpath : "/usr/lib/debug";

	while (*p) {
		size_t len = strcspn(p, ":");
		const char *dir = p;
		char file[4096];

		/* elfutils' '+' and '-' prefixes say how to check CRCs. */
		if (len && (*dir == '+' || *dir == '-')) {
			dir++;
			len--;
		}
		if (len && *dir == '/' &&
		    snprintf(file, sizeof(file), "%.*s/.build-id/%.2s/%s.debug",
			     (int)len, dir, build_id, build_id + 2) <
			    (int)sizeof(file) &&
		    access(file, F_OK) == 0)
			fprintf(stderr, "  %s is there, but it is not usable "
				"debug information for it: truncated, corrupt, "
				"or of another build\n", file);
		p += strcspn(p, ":");
		if (*p)
			p++;
	}
}

int report_error(const struct hi_snapshot_opts *o,
		 const struct hi_snapshot_err *err,
		 const struct hi_snapshot *s)
{
	int pid = (int)o->pid;
	char comm[256];

	hi_safe_str(s->comm, comm, sizeof(comm));
	switch (err->code) {
	case -ESRCH:
		errmsg("no process with pid %d", pid);
		break;
	case -EPERM:
	case -EACCES:
	case -ETIMEDOUT:
		hi_report_stop_error(o->pid, err->code, &err->stop,
				     o->stop_timeout_ms,
				     o->method == HI_METHOD_CALL);
		break;
	case -HI_E_ZOMBIE:
		errmsg("pid %d (%s) is a zombie: it has exited and its parent "
		       "has not reaped it; there is no memory to read", pid,
		       err->detail);
		break;
	case -HI_E_KTHREAD:
		errmsg("pid %d (%s) is a kernel thread: it has no user-space "
		       "heap", pid, err->detail);
		break;
	case -HI_E_OTHERALLOC:
		errmsg("pid %d (%s) does not use glibc's malloc: it uses %s; "
		       "heapinspect reads glibc's allocator only", pid,
		       comm, err->detail);
		break;
	case -HI_E_STATIC:
		if (err->detail[0])
			errmsg("pid %d (%s) %s", pid, comm, err->detail);
		else
			errmsg("pid %d (%s) is statically linked: heapinspect "
			       "needs glibc's libc.so mapped in the process",
			       pid, comm);
		break;
	case -HI_E_UNSUPPORTED:
		if (err->detail[0])
			errmsg("pid %d (%s) %s", pid, comm, err->detail);
		else
			errmsg("pid %d: %s", pid, hi_strerror(err->code));
		break;
	case -HI_E_NOLIBC:
		if (err->detail[0])
			errmsg("pid %d: %s", pid, err->detail);
		else
			errmsg("pid %d has no glibc libc.so mapped: it does not "
			       "use glibc's malloc", pid);
		break;
	case -HI_E_NODEBUG:
		errmsg("no debug information for the libc of pid %d: %s, "
		       "build-id %s", pid, s->libc_path,
		       err->detail[0] ? err->detail : "(none)");
		if (err->detail[0])
			refused_debug_files(o->debuginfo_path, err->detail);
		fprintf(stderr, "  install the distribution's debug package for "
			"libc (Debian, Ubuntu: libc6-dbg; Fedora, RHEL: "
			"glibc-debuginfo),\n  or pass --debuginfo-path DIR "
			"with the file at DIR/.build-id/%.2s/%s.debug\n",
			err->detail, err->detail[0] ? err->detail + 2 : "");
		break;
	case -HI_E_NOVERSION:
		errmsg("cannot read glibc's malloc in pid %d: %s; and no debug "
		       "information was found for %s (build-id %s)", pid,
		       err->detail, s->libc_path,
		       s->build_id[0] ? s->build_id : "(none)");
		tried_lines(s);
		fprintf(stderr, "  nothing was read; give heapinspect the "
			"debug information of this libc: the distribution's "
			"debug package (Debian, Ubuntu: libc6-dbg), "
			"--debuginfo-path DIR, or a debuginfod server in "
			"DEBUGINFOD_URLS\n");
		break;
	case -HI_E_VERIFY:
		if (s->loc.from_cache)
			errmsg("cannot locate glibc's malloc state in pid %d "
			       "from the layout cache: %s", pid, err->detail);
		else
			errmsg("cannot locate glibc's malloc state in pid %d "
			       "without debug information: %s", pid,
			       err->detail);
		tried_lines(s);
		if (s->loc.cache_note[0])
			fprintf(stderr, "  the layout cache: %s\n",
				s->loc.cache_note);
		fprintf(stderr, "  no address that failed a check is used, so "
			"nothing was read; 'heapinspect info -p %d' shows "
			"every check; with libc's debug information "
			"(libc6-dbg, --debuginfo-path, DEBUGINFOD_URLS) the "
			"addresses come from its symbols\n", pid);
		break;
	case -HI_E_NOSYM:
	case -HI_E_LAYOUT:
	case -HI_E_DWARF:
		errmsg("the debug information of %s (%s) does not describe "
		       "glibc's malloc as expected: %s: %s", s->libc_path,
		       s->debug_file[0] ? s->debug_file : "no file",
		       hi_strerror(err->code),
		       err->detail[0] ? err->detail : "?");
		break;
	case -HI_E_CORRUPT:
		errmsg("pid %d: the list of arenas is corrupt at %s; nothing "
		       "could be read", pid, err->detail[0] ? err->detail : "?");
		break;
	case -HI_E_EXITED:
		errmsg("pid %d exited while it was being read", pid);
		break;
	case -HI_E_EXECED:
		errmsg("pid %d executed a new program while it was being read; "
		       "nothing was read: run heapinspect again", pid);
		break;
	case -HI_E_UNSAFE:
	case -HI_E_NOHOST:
	case -HI_E_CALLFAULT:
	case -HI_E_CALLSTUCK:
	case -HI_E_RESTORE:
		hi_call_error(o->pid, err->code, &s->call, o->timeout_ms);
		break;
	default:
		errmsg("pid %d: %s", pid, hi_strerror(err->code));
		break;
	}
	/* auto had no layout to read, and the call it took instead failed. */
	if (s->method_why && !s->called)
		fprintf(stderr, "  --method auto called instead of reading: "
			"%s\n"
			"  with the debug information of this libc "
			"(libc6-dbg, --debuginfo-path, DEBUGINFOD_URLS) "
			"heapinspect reads its memory instead of calling\n",
			s->method_why);
	return EXIT_FAILED;
}

static const char *sig_name(int sig)
{
	switch (sig) {
	case SIGSEGV:
		return "SIGSEGV";
	case SIGBUS:
		return "SIGBUS";
	case SIGILL:
		return "SIGILL";
	case SIGFPE:
		return "SIGFPE";
	case SIGTRAP:
		return "SIGTRAP";
	case SIGSYS:
		return "SIGSYS";
	case SIGABRT:
		return "SIGABRT";
	}
	return "a signal";
}

/* Why a call failed part way, and that it was undone. */
static void call_fault(pid_t pid, const struct hi_call_report *r)
{
	const char *fn = r->function ? r->function : "?";

	if (r->fault_syscall && r->fault_msg[0])
		errmsg("pid %d: %s() found the heap corrupt in thread %d: "
		       "glibc was about to print \"%s\" and abort the "
		       "process; the call was undone before its %s ran: "
		       "nothing was printed, no signal raised, and thread %d "
		       "is back where it was", (int)pid, fn, (int)r->thread,
		       r->fault_msg, r->fault_syscall, (int)r->thread);
	else if (r->fault_syscall)
		errmsg("pid %d: %s() took glibc's failure path in thread %d "
		       "(system call %s, which it never makes otherwise); the "
		       "call was undone before that ran: thread %d is back "
		       "where it was", (int)pid, fn, (int)r->thread,
		       r->fault_syscall, (int)r->thread);
	else if (r->fault_code == SI_KERNEL)
		errmsg("pid %d: %s() faulted in thread %d (%s raised by the "
		       "kernel: a general protection fault, such as a "
		       "non-canonical pointer followed): its heap is corrupt "
		       "where the call went; the call was undone before the "
		       "signal was delivered: thread %d is back where it was",
		       (int)pid, fn, (int)r->thread, sig_name(r->fault_sig),
		       (int)r->thread);
	else
		errmsg("pid %d: %s() faulted in thread %d (%s, si_code %d, "
		       "address 0x%" PRIx64 "): its heap is corrupt where the "
		       "call went; the call was undone before the signal was "
		       "delivered: thread %d is back where it was", (int)pid,
		       fn, (int)r->thread, sig_name(r->fault_sig),
		       r->fault_code, r->fault_addr, (int)r->thread);
	if (r->locks_unknown)
		fprintf(stderr, "  but without a layout of this glibc "
			"heapinspect cannot find the arena lock that %s() "
			"held when it failed (it holds one arena's at a "
			"time): that lock is still held, and whatever takes "
			"it next will wait forever (malloc and free there once "
			"the process has a second thread, fork, mallinfo2, "
			"malloc_trim, ...); restart the process when you "
			"can\n", fn);
	else if (r->locks_released)
		fprintf(stderr, "  the arena lock it held then (0x%" PRIx64
			") was released: the process runs on\n",
			r->lock_addr);
	else
		fprintf(stderr, "  it held no allocator lock then: the process "
			"runs on\n");
	if (r->sig_reset)
		fprintf(stderr, "  the process ignored %s; the kernel set it "
			"back to the default when the fault raised it, and a "
			"debugger cannot set it again\n",
			sig_name(r->sig_reset));
	if (r->function && strcmp(r->function, "malloc_trim") == 0)
		fprintf(stderr, "  malloc_trim() changes the heap as it goes: "
			"the free chunks it had merged stay merged, and those "
			"it was merging when it failed are lost to the "
			"process (a leak, not an error)\n");
	if (!r->locks_unknown)
		fprintf(stderr, "  its heap is corrupt: its own next malloc or "
			"free there may crash it\n");
}

int hi_call_error(pid_t pid, int code, const struct hi_call_report *rep,
		  unsigned timeout_ms)
{
	int p = (int)pid;

	switch (code) {
	case -HI_E_UNSAFE:
		errmsg("pid %d: no safe moment to call into its allocator "
		       "within %u ms (%u stops; last: %s); nothing was called",
		       p, timeout_ms, rep->attempts,
		       rep->unsafe[0] ? rep->unsafe : "?");
		return 1;
	case -HI_E_NOHOST:
		errmsg("pid %d: no thread could host the call within %u ms "
		       "(%u stops; last: %s); nothing was called", p,
		       timeout_ms, rep->attempts,
		       rep->unsafe[0] ? rep->unsafe : "?");
		fprintf(stderr, "  until that changes, this process can only "
			"be read: heapinspect -p %d --method read\n", p);
		return 1;
	case -HI_E_CALLFAULT:
		call_fault(pid, rep);
		return 1;
	case -HI_E_CALLSTUCK:
		if (rep->abandoned)
			errmsg("pid %d: %s() did not return within %u ms; no "
			       "allocator lock was held, so it was undone: "
			       "thread %d is back where it was", p,
			       rep->function, timeout_ms, (int)rep->thread);
		else
			errmsg("pid %d: %s() did not return within %u ms and "
			       "could not be undone safely; it still runs in "
			       "thread %d, which returns to where it was by "
			       "itself when the call ends (through the signal "
			       "frame on its stack); the other threads run on",
			       p, rep->function, timeout_ms,
			       (int)rep->thread);
		return 1;
	case -HI_E_RESTORE:
		errmsg("pid %d: after %s(), thread %d's registers did not read "
		       "back as saved", p, rep->function, (int)rep->thread);
		return 1;
	}
	return 0;
}

int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v > max)
		return -1;
	*out = v;
	return 0;
}

/* Subcommands: the first argument, when it is not an option. */
static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
} commands[] = {
	{ "snapshot", hi_cmd_snapshot },
	{ "watch", hi_cmd_watch },
	{ "diff", hi_cmd_diff },
	{ "trend", hi_cmd_trend },
	{ "plot", hi_cmd_plot },
	{ "trim", hi_trim_main },
};

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "pid", required_argument, NULL, 'p' },
		{ "json", no_argument, NULL, 'j' },
		{ "bytes", no_argument, NULL, 'b' },
		{ "debuginfo-path", required_argument, NULL, 'd' },
		{ "method", required_argument, NULL, 'm' },
		{ "explain", no_argument, NULL, 'e' },
		{ "no-cache", no_argument, NULL, 'n' },
		{ "attempts", required_argument, NULL, 'a' },
		{ "stop-timeout", required_argument, NULL, 't' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct hi_snapshot_opts o;
	struct hi_snapshot s;
	struct hi_snapshot_err err;
	int json = 0, exact = 0, explain = 0, info = 0, no_cache = 0, c, ret;
	int refused;
	char cache_dir[4096];
	unsigned long v;

	hi_snapshot_opts_default(&o, 0, cache_dir, sizeof(cache_dir));

	/* info takes the options of a snapshot: handled below. */
	if (argc > 1 && argv[1][0] != '-' && strcmp(argv[1], "info") != 0) {
		for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]);
		     i++) {
			if (strcmp(argv[1], commands[i].name) == 0)
				return commands[i].run(argc - 1, argv + 1);
		}
		errmsg("'%s' is not a heapinspect command", argv[1]);
		return hi_usage_hint(NULL);
	}

	while ((c = getopt_long(argc, argv, "p:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (parse_uint(optarg, 0x3fffffff, &v) || v == 0) {
				errmsg("invalid pid '%s': expected a positive "
				       "number", optarg);
				return EXIT_USAGE;
			}
			o.pid = (pid_t)v;
			hi_pid_resolve(&o.pid);
			break;
		case 'j':
			json = 1;
			break;
		case 'b':
			exact = 1;
			break;
		case 'd':
			o.debuginfo_path = optarg;
			break;
		case 'e':
			explain = 1;
			break;
		case 'n':
			no_cache = 1;
			break;
		case 'a':
			if (parse_uint(optarg, 1000, &v) || v == 0) {
				errmsg("invalid --attempts '%s': expected 1 to "
				       "1000", optarg);
				return EXIT_USAGE;
			}
			o.attempts = (unsigned)v;
			break;
		case 't':
			if (parse_uint(optarg, 600000, &v) || v == 0) {
				errmsg("invalid --stop-timeout '%s': expected "
				       "1 to 600000 ms", optarg);
				return EXIT_USAGE;
			}
			o.stop_timeout_ms = (unsigned)v;
			break;
		case 'm':
			if (strcmp(optarg, "read") == 0) {
				o.method = HI_METHOD_READ;
			} else if (strcmp(optarg, "call") == 0) {
				o.method = HI_METHOD_CALL;
			} else if (strcmp(optarg, "auto") == 0) {
				o.method = HI_METHOD_AUTO;
			} else {
				errmsg("invalid --method '%s': expected auto, "
				       "read or call", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'T':
			if (parse_uint(optarg, 3600000, &v) || v == 0) {
				errmsg("invalid --timeout '%s': expected 1 to "
				       "3600000 ms", optarg);
				return EXIT_USAGE;
			}
			o.timeout_ms = (unsigned)v;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'V':
			printf("heapinspect %s\n", HI_VERSION);
			return EXIT_OK;
		default:
			fprintf(stderr, "try 'heapinspect --help'\n");
			return EXIT_USAGE;
		}
	}
	if (optind < argc && strcmp(argv[optind], "info") == 0) {
		info = explain = 1;
		optind++;
	}
	if (optind < argc) {
		errmsg("unexpected argument '%s'", argv[optind]);
		fprintf(stderr, "try 'heapinspect --help'\n");
		return EXIT_USAGE;
	}
	if (!o.pid) {
		errmsg("which process? give its pid with -p PID");
		fprintf(stderr, "try 'heapinspect --help'\n");
		return EXIT_USAGE;
	}
	if (o.pid == getpid()) {
		errmsg("pid %d is heapinspect itself", (int)o.pid);
		return EXIT_FAILED;
	}

	if (explain)
		o.locate_flags |= HI_LOCATE_EXPLAIN;
	if (no_cache) {
		o.cache_dir = NULL;
		o.locate_flags &= ~HI_LOCATE_CACHE;
	}
	/*
	 * libdebuginfod waits 90 s for a server by default, and without a
	 * total bound a slow one can hold us much longer: bound both unless
	 * the user chose (read by the client at every query).
	 */
	if (getenv("DEBUGINFOD_URLS")) {
		setenv("DEBUGINFOD_TIMEOUT", "10", 0);
		setenv("DEBUGINFOD_MAXTIME", "120", 0);
	}

	ret = hi_snapshot_take(&o, &s, &err);
	if (ret && ret != -HI_E_UNSOUND) {
		if (info && s.loc.located_by && !json)
			hi_print_locate(stderr, &s);
		return report_error(&o, &err, &s);
	}
	refused = ret == -HI_E_UNSOUND;
	ret = 0;
	debuginfod_note(&s);
	if (json)
		ret = hi_print_json(stdout, &s);
	else if (info)
		hi_print_locate(stdout, &s);
	else
		hi_print_text(stdout, &s, exact);
	if (!json && explain && !info) {
		fputc('\n', stdout);
		hi_print_locate(stdout, &s);
	}
	if (fflush(stdout) != 0 || ret) {
		errmsg("cannot write the report: %s", lower(strerror(errno)));
		hi_snapshot_free(&s);
		return EXIT_FAILED;
	}
	if (!s.heap.complete) {
		for (size_t i = 0; i < s.heap.narenas; i++) {
			const struct hi_arena *a = &s.heap.arenas[i];

			if (a->status == -HI_E_CORRUPT)
				errmsg("arena 0x%" PRIx64 " is corrupt at 0x%"
				       PRIx64 ": %s", a->addr, a->bad_addr,
				       a->why);
			else if (a->status == -HI_E_BUSY)
				errmsg("arena 0x%" PRIx64 " was busy (locked "
				       "by the target) in all %u attempts: "
				       "its lists were not read; try again",
				       a->addr, s.attempts);
			else if (a->status)
				errmsg("arena 0x%" PRIx64 " could not be read: "
				       "%s", a->addr, hi_strerror(a->status));
		}
	}
	if (refused && !s.heap.narenas)
		errmsg("the list of arenas is corrupt at 0x%" PRIx64 ": %s",
		       s.heap.bad_addr, s.heap.why);
	if (refused)
		errmsg("pid %d: mallinfo2() was not called: it would follow "
		       "the same lists and could crash the process (SIGSEGV, "
		       "or glibc's abort); the figures above are read from "
		       "memory", (int)o.pid);
	ret = refused ? EXIT_REFUSED : s.heap.complete ? EXIT_OK
						       : EXIT_PARTIAL;
	/*
	 * info and --explain show the checks; addresses that need proof
	 * never get here without it, DWARF's are read without it: a check
	 * that failed is said, and is not a success.
	 */
	if (explain && s.loc.nchecks && !s.loc.verified) {
		for (unsigned i = 0; i < s.loc.nchecks; i++)
			if (!s.loc.checks[i].ok)
				errmsg("pid %d: check failed: %s: %s",
				       (int)o.pid, s.loc.checks[i].name,
				       s.loc.checks[i].detail);
		errmsg("pid %d: the addresses came from the debug "
		       "information and were read all the same; a failed "
		       "check means the allocator's state is not as glibc "
		       "leaves it", (int)o.pid);
		if (ret == EXIT_OK)
			ret = EXIT_PARTIAL;
	}
	hi_snapshot_free(&s);
	return ret;
}
