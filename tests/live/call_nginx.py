#!/usr/bin/env python3
"""Injected calls into a real service: nginx's master and workers.

    call_nginx.py --heapinspect BIN [--nginx /usr/sbin/nginx]

nginx's master waits for signals in sigsuspend(2) with a temporary mask,
single-threaded; its workers wait in epoll_wait(2).  This starts nginx
in the foreground on a free port of 127.0.0.1 with a configuration of its
own, then, on the
master and on each worker: a plain snapshot, `--method call` (a call must
be made, in the process's thread, and agree with the read of the same
stop: glibc's own figures against heapinspect's), and `trim`.  After each
run the process must be sleeping, untraced, and back in its wait; the
master's signal mask during its wait must be what it was.  Then nginx
must still serve a request, reload on SIGHUP (the master's own signal
handling: its saved mask must be intact for that), serve again from its
new workers, and stop on SIGQUIT.

Exit status 0 on pass, 1 on failure, 77 when nginx is not installed
(tests/setup-debian.sh installs nginx-light).
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from callhost import run
from hi_live import Failure, proc_state, tracer_pid

CONF = """worker_processes 2;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 64; }}
http {{
	access_log off;
	client_body_temp_path {d}/body;
	proxy_temp_path {d}/proxy;
	fastcgi_temp_path {d}/fastcgi;
	uwsgi_temp_path {d}/uwsgi;
	scgi_temp_path {d}/scgi;
	server {{
		listen 127.0.0.1:{port};
		location / {{ return 200 "served by $pid\\n"; }}
	}}
}}
"""


def need(cond, msg):
    if not cond:
        raise Failure(msg)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/" % port,
                                timeout=10) as r:
        return r.read().decode()


def status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def syscall_of(pid):
    with open("/proc/%d/syscall" % pid) as f:
        return f.read().split()[0]


def children(pid):
    with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
        return [int(x) for x in f.read().split()]


def settled(pid, want_syscall, sigblk, when):
    deadline = time.monotonic() + 5
    while True:
        st = status(pid)
        ok = (tracer_pid(pid) == 0 and
              all(s == "S" for s in proc_state(pid)) and
              syscall_of(pid) == want_syscall and st["SigBlk"] == sigblk)
        if ok:
            return
        if time.monotonic() > deadline:
            raise Failure("%s: pid %d not back in its wait: states %s, "
                          "TracerPid %d, system call %s (want %s), SigBlk "
                          "%s (want %s)" % (when, pid,
                                            "".join(proc_state(pid)),
                                            tracer_pid(pid), syscall_of(pid),
                                            want_syscall, st["SigBlk"],
                                            sigblk))
        time.sleep(0.02)


def exercise(hi, pid, role):
    wait, blk = syscall_of(pid), status(pid)["SigBlk"]
    rc, _, err = run([hi, "-p", str(pid), "--json"])
    need(rc == 0, "%s %d: plain snapshot: exit %d: %s" % (role, pid, rc, err))
    settled(pid, wait, blk, "%s after a snapshot" % role)
    rc, out, err = run([hi, "-p", str(pid), "--json", "--method", "call",
                        "--timeout", "20000"])
    need(rc == 0, "%s %d: --method call: exit %d: %s"
         % (role, pid, rc, err))
    alloc = json.loads(out)["allocator"]
    call = alloc.get("call") or {}
    need(alloc["method"] == "call" and call.get("thread") == pid,
         "%s %d: no call made: %r" % (role, pid, alloc))
    need(call.get("agrees_with_memory") is True,
         "%s %d: glibc's figures and the read's differ: %r"
         % (role, pid, call))
    settled(pid, wait, blk, "%s after the call" % role)
    rc, out, err = run([hi, "trim", "-p", str(pid), "--json"])
    need(rc == 0, "%s %d: trim: exit %d: %s" % (role, pid, rc, err))
    settled(pid, wait, blk, "%s after trim" % role)
    print("%s %d (system call %s): snapshot, call (%s), trim: back in its "
          "wait" % (role, pid, wait, call.get("thread_was")))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--heapinspect", required=True)
    ap.add_argument("--nginx", default=shutil.which("nginx") or
                    "/usr/sbin/nginx")
    args = ap.parse_args()
    if not os.access(args.nginx, os.X_OK):
        print("SKIP: no nginx at %s (tests/setup-debian.sh installs "
              "nginx-light)" % args.nginx)
        return 77
    d = tempfile.mkdtemp(prefix="hi-nginx-")
    port = free_port()
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(CONF.format(d=d, port=port))
    proc = master = None
    try:
        # In the foreground, our child: waited for whatever happens.
        proc = subprocess.Popen([args.nginx, "-c", conf, "-p", d + "/"],
                                stdin=subprocess.DEVNULL)
        master = proc.pid
        deadline = time.monotonic() + 20
        while len(children(master)) < 2:
            need(proc.poll() is None, "nginx did not start (exit %s)"
                 % proc.returncode)
            need(time.monotonic() < deadline, "nginx has no workers")
            time.sleep(0.05)
        get(port)
        exercise(args.heapinspect, master, "master")
        workers = children(master)
        need(workers, "nginx has no workers")
        for w in workers:
            exercise(args.heapinspect, w, "worker")
        need(get(port).startswith("served by"), "nginx does not serve")
        os.kill(master, signal.SIGHUP)
        deadline = time.monotonic() + 20
        while set(children(master)) & set(workers):
            need(time.monotonic() < deadline,
                 "the master did not replace its workers on SIGHUP")
            time.sleep(0.05)
        answer = get(port)
        need(int(answer.split()[-1]) in children(master),
             "not served by a new worker: %r" % answer)
        print("nginx serves, reloads on SIGHUP and serves from its new "
              "workers")
        os.kill(master, signal.SIGQUIT)
        try:
            need(proc.wait(20) == 0, "nginx exit status %d"
                 % proc.returncode)
        except subprocess.TimeoutExpired:
            raise Failure("nginx did not stop on SIGQUIT") from None
        master = None
    except (Failure, OSError, ValueError) as e:
        print("FAIL: %s" % e)
        try:
            with open(d + "/error.log") as f:
                print("nginx error.log:\n" + f.read())
        except OSError:
            pass
        return 1
    finally:
        if master:
            # The master first, so that it starts no new worker.
            try:
                workers = children(master)
            except OSError:
                workers = []
            for p in [master] + workers:
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
        if proc:
            proc.wait()
        shutil.rmtree(d, ignore_errors=True)
    print("PASS nginx")
    return 0


if __name__ == "__main__":
    sys.exit(main())
