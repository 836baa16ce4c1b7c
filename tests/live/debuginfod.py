#!/usr/bin/env python3
"""heapinspect through a debuginfod server, and without one.

Starts Debian's debuginfod on a loopback port with a fresh database,
serving one directory that holds only a libc6-dbg .deb (indexed with -U,
which needs bsdtar), waits until it serves the debug file of the target's
libc, then, with no local debug files (--debuginfo-path /nonexistent):

1. heapinspect gets exact figures through the server (located_by
   "debuginfod");
2. the server is stopped: the next run needs no server, the layout cache
   has what the first run fetched (located_by "debuginfod", from_cache);
3. the caches are cleared, the server stays stopped: heapinspect falls back
   to the built-in layouts with exact figures, and says that debuginfod
   failed and why (connection refused);
4. a server that accepts connections and never answers: heapinspect gives
   up after DEBUGINFOD_TIMEOUT, falls back, and says so, within a bound.

Exit 0 when every step passed, 1 otherwise.
"""

import argparse
import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import check_snapshot  # noqa: E402
from hi_live import Failure, Target  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_served(url, proc, log, limit=180):
    """Poll until the server has indexed the .deb and serves url."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise Failure("debuginfod exited with %d: %s"
                          % (proc.returncode, open(log).read()[-2000:]))
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                if r.status == 200 and len(r.read()) > 0:
                    return time.monotonic()
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise Failure("debuginfod did not serve %s within %d s; log: %s"
                  % (url, limit, open(log).read()[-2000:]))


def hi_env(tmp, urls, tag):
    env = dict(os.environ)
    for k in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
              "all_proxy", "ALL_PROXY"):
        env.pop(k, None)
    env.pop("DEBUGINFOD_URLS", None)
    env.pop("DEBUGINFOD_TIMEOUT", None)
    if urls:
        env["DEBUGINFOD_URLS"] = urls
    env["DEBUGINFOD_CACHE_PATH"] = os.path.join(tmp, "client-" + tag)
    env["XDG_CACHE_HOME"] = os.path.join(tmp, "xdg-" + tag)
    return env


def snapshot(hi, t, ready, env, located_by, from_cache, limit=120):
    t0 = time.monotonic()
    res = subprocess.run([hi, "-p", str(t.pid), "--json",
                          "--debuginfo-path", "/nonexistent"],
                         stdin=subprocess.DEVNULL, capture_output=True,
                         timeout=limit, env=env)
    took = time.monotonic() - t0
    err = res.stderr.decode("utf-8", "replace")
    if res.returncode != 0:
        raise Failure("heapinspect exit %d: %s" % (res.returncode, err))
    snap = json.loads(res.stdout)
    problems = check_snapshot(snap, ready, t.pid, located_by)
    if snap["allocator"]["locate"].get("from_cache") is not from_cache:
        problems.append("from_cache is %r, not %r"
                        % (snap["allocator"]["locate"].get("from_cache"),
                           from_cache))
    if problems:
        raise Failure("; ".join(problems))
    return snap, err, took


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--heapinspect", required=True)
    ap.add_argument("--target", required=True,
                    help="hi_target built against the .deb's glibc")
    ap.add_argument("--deb-dir", required=True,
                    help="where make-sysroot.sh keeps the suite's .debs")
    ap.add_argument("--build-id", required=True,
                    help="the build-id of the target's libc")
    args = ap.parse_args()
    hi = args.heapinspect
    for tool in ("debuginfod", "bsdtar"):
        if not shutil.which(tool):
            print("FAIL: %s is not installed (tests/setup-debian.sh "
                  "installs debuginfod and libarchive-tools)" % tool)
            return 1
    debs = glob.glob(os.path.join(args.deb_dir, "libc6-dbg_*.deb"))
    if len(debs) != 1:
        print("FAIL: no single libc6-dbg .deb in %s (%r): run "
              "tests/glibc/make-sysroot.sh" % (args.deb_dir, debs))
        return 1

    tmp = tempfile.mkdtemp(prefix="hi-debuginfod-")
    server = None
    t = Target(args.target, "mixed")
    failed = []
    try:
        served = os.path.join(tmp, "debs")
        os.makedirs(served)
        shutil.copy(debs[0], served)
        port = free_port()
        log = os.path.join(tmp, "debuginfod.log")
        server = subprocess.Popen(
            ["debuginfod", "-p", str(port), "-d",
             os.path.join(tmp, "db.sqlite"), "-U", "-t", "0", "-g", "0",
             "-c", "1", served],
            stdin=subprocess.DEVNULL, stdout=open(log, "w"),
            stderr=subprocess.STDOUT)
        urls = "http://127.0.0.1:%d" % port
        t0 = time.monotonic()
        wait_served("%s/buildid/%s/debuginfo" % (urls, args.build_id),
                    server, log)
        print("debuginfod on port %d serves build-id %s after %.1f s"
              % (port, args.build_id, time.monotonic() - t0))
        ready = t.wait_ready()

        def step(name, fn):
            try:
                fn()
                print("PASS %s" % name)
            except Failure as e:
                print("FAIL %s: %s" % (name, e))
                failed.append(name)

        env = hi_env(tmp, urls, "a")

        def through_server():
            snap, err, took = snapshot(hi, t, ready, env, "debuginfod",
                                       False)
            dbg = snap["allocator"]["debuginfo"]
            if not dbg.startswith(env["DEBUGINFOD_CACHE_PATH"]):
                raise Failure("debug file %r is not in the client cache"
                              % dbg)
            print("  %.2f s, debug file %s" % (took, dbg))

        def no_second_fetch():
            server.terminate()
            server.wait(30)
            snap, err, took = snapshot(hi, t, ready, env, "debuginfod",
                                       True)
            if err.strip():
                raise Failure("stderr: %s" % err.strip())

        def fallback():
            env2 = hi_env(tmp, urls, "b")
            snap, err, took = snapshot(hi, t, ready, env2, "builtin", False)
            for want in ("debuginfod failed", "connection refused",
                         args.build_id, "located by builtin instead"):
                if want not in err:
                    raise Failure("stderr lacks %r: %s" % (want, err))
            print("  %s" % err.strip())

        def silent_server():
            lsock = socket.socket()
            lsock.bind(("127.0.0.1", 0))
            lsock.listen(8)
            held = []
            stop = threading.Event()

            def hold():
                lsock.settimeout(0.2)
                while not stop.is_set():
                    try:
                        held.append(lsock.accept()[0])
                    except OSError:
                        pass
            th = threading.Thread(target=hold)
            th.start()
            try:
                env3 = hi_env(tmp, "http://127.0.0.1:%d"
                              % lsock.getsockname()[1], "c")
                env3["DEBUGINFOD_TIMEOUT"] = "2"
                snap, err, took = snapshot(hi, t, ready, env3, "builtin",
                                           False, limit=60)
                if took > 30:
                    raise Failure("took %.1f s with DEBUGINFOD_TIMEOUT=2"
                                  % took)
                if "debuginfod failed" not in err or \
                        "within 2 s" not in err:
                    raise Failure("stderr: %s" % err)
                print("  %.1f s: %s" % (took, err.strip()))
            finally:
                stop.set()
                th.join()
                for c in held:
                    c.close()
                lsock.close()

        step("exact figures through debuginfod", through_server)
        step("second run: no server needed (layout cache)",
             no_second_fetch)
        step("server stopped, caches cleared: built-in, and why",
             fallback)
        step("silent server: bounded by DEBUGINFOD_TIMEOUT", silent_server)
        t.check()
        t.exit()
    except Failure as e:
        print("FAIL: %s" % e)
        failed.append(str(e))
    finally:
        t.kill()
        if server and server.poll() is None:
            server.kill()
            server.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d failed" % len(failed) if failed else "all passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
