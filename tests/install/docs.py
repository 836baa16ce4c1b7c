#!/usr/bin/env python3
"""The manual page, --help and the shell completions say the same.

    docs.py --heapinspect BIN --man FILE --bash FILE --zsh FILE

--help is the reference: the subcommands its usage lists, and for each
command (the default one with info, and every subcommand's own --help)
the options it names in its usage lines and its table of options (not in
its prose, which may name other commands' options).  The manual page must
have a section for every subcommand and no other, and in each section
exactly the options of that command's --help as the heads of its option
list (.TP, .TQ; OPTIONS for the default one); every option either names
must be one the command accepts (getopt does not call it unrecognized);
bash completion (sourced, _heapinspect called on "-") offers exactly them
besides -h/--help, and so does zsh completion (its _arguments specs).
Exit status 0 on pass, 1 on failure.
"""

import argparse
import re
import shutil
import subprocess
import sys

OPT = re.compile(r"(?<![\w/-])(--[a-z][a-z0-9-]*|-[a-zA-Z])(?![\w-])")
HELP = {"-h", "--help"}


class Failure(Exception):
    pass


def run(argv, timeout=60):
    res = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                         timeout=timeout)
    return (res.returncode, res.stdout.decode("utf-8", "replace"),
            res.stderr.decode("utf-8", "replace"))


def help_of(hi, cmd):
    rc, out, err = run([hi] + ([cmd] if cmd else []) + ["--help"])
    if rc != 0 or not out.startswith("usage: heapinspect"):
        raise Failure("heapinspect %s --help: exit %d: %s"
                      % (cmd, rc, err.strip()))
    return out


def table(text):
    """The options of the lines of an option table: "  -p, --pid PID"."""
    opts = set()
    for line in text.splitlines():
        m = re.match(r"\s{1,8}(-[\w-]+(?:, --[\w-]+)?)(?:[ =]|$)", line)
        if m:
            opts.update(OPT.findall(m.group(1)))
    return opts


def sub_help(text):
    """The options of a subcommand's --help: its usage and its table."""
    usage, _, rest = text.partition("\n\n")
    return set(OPT.findall(usage)) | table(rest)


def main_help(text):
    """(subcommands, options of the default command) of the main --help:
    the usage lines of subcommands are theirs, not its."""
    usage, _, rest = text.partition("\n\n")
    subs, own = set(), []
    entry = None
    for line in usage.splitlines():
        m = re.match(r"(?:usage:)?\s+heapinspect (\S+)", line) or \
            re.match(r"usage: heapinspect (\S+)", line)
        if m:
            entry = None if m.group(1).startswith("-") else m.group(1)
            if entry:
                subs.add(entry)
        if entry is None:
            own.append(line)
    listed = set(re.findall(r"^  ([a-z]+)   ", rest, re.M))
    if not listed <= subs:
        raise Failure("--help lists %s but has no usage line for them"
                      % sorted(listed - subs))
    return subs, set(OPT.findall("\n".join(own))) | table(rest)


def man_sections(path):
    """{section name: options} of the manual page: "" for OPTIONS and
    info, each .SS under COMMANDS by its name."""
    with open(path) as f:
        lines = [x for x in f.read().splitlines()
                 if not x.startswith('.\\"')]
    text = "\n".join(lines)
    text = re.sub(r"\\f[BIRP]", "", text).replace("\\-", "-")
    secs, cur, where, head = {}, None, None, False
    for line in text.splitlines():
        if line.startswith(".SH "):
            where = line[4:].strip('"')
            cur = "" if where == "OPTIONS" else None
        elif line.startswith(".SS ") and where == "COMMANDS":
            cur = line[4:].strip('"')
            cur = "" if cur == "info" else cur
        if cur is not None:
            secs.setdefault(cur, set())
            if head:
                secs[cur].update(OPT.findall(line))
        head = line in (".TP", ".TQ")
    return secs


def bash_offers(script, words):
    prog = ('source "$1"; shift; COMP_WORDS=("$@"); '
            'COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _heapinspect; '
            'printf "%s\\n" "${COMPREPLY[@]}"')
    rc, out, err = run(["bash", "-c", prog, "bash", script] + words)
    if rc != 0:
        raise Failure("bash completion: exit %d: %s" % (rc, err))
    return set(out.split())


def zsh_offers(script, words):
    prog = r'''
_arguments() { shift; print -rl -- "$@" }
_describe() { print -rl -- ${(P)2} }
_files() { : }
functions[_hi_load]=$(<$1)
shift
words=("$@")
CURRENT=$#words
_hi_load
'''
    rc, out, err = run(["zsh", "-f", "-c", prog, "zsh", script] + words)
    if rc != 0 or err.strip():
        raise Failure("zsh completion: exit %d: %s" % (rc, err))
    opts = set()
    for spec in out.splitlines():
        spec = re.sub(r"^\([^)]*\)", "", spec)
        m = re.match(r"(--?[A-Za-z][\w-]*)", spec)
        if m:
            opts.add(m.group(1))
    return opts, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--heapinspect", required=True)
    ap.add_argument("--man", required=True)
    ap.add_argument("--bash", required=True)
    ap.add_argument("--zsh", required=True)
    args = ap.parse_args()
    hi = args.heapinspect
    problems = []
    try:
        subs, main_opts = main_help(help_of(hi, None))
        helps = {"": main_opts}
        for sub in sorted(subs - {"info"}):
            helps[sub] = sub_help(help_of(hi, sub))
        man = man_sections(args.man)
        if set(man) != set(helps):
            problems.append("the manual's commands %s, --help's %s"
                            % (sorted(man), sorted(helps)))
        for cmd, opts in sorted(helps.items()):
            name = cmd or "heapinspect"
            m = man.get(cmd, set())
            if opts - m:
                problems.append("%s: in --help, not in the manual: %s"
                                % (name, sorted(opts - m)))
            if m - opts:
                problems.append("%s: in the manual, not in --help: %s"
                                % (name, sorted(m - opts)))
            for opt in sorted(opts | m):
                rc, out, err = run([hi] + ([cmd] if cmd else []) + [opt])
                if "unrecognized option" in err or \
                        "invalid option" in err:
                    problems.append("%s %s: %s" % (name, opt, err.strip()))
            words = ["heapinspect"] + ([cmd] if cmd else []) + ["-"]
            b = bash_offers(args.bash, words)
            if not opts <= b or b - opts - HELP:
                problems.append("%s: bash completes %s, --help has %s"
                                % (name, sorted(b), sorted(opts)))
            if shutil.which("zsh"):
                z, raw = zsh_offers(args.zsh, words)
                if not opts <= z or z - opts - HELP - {"-V", "--version"}:
                    problems.append("%s: zsh completes %s, --help has %s"
                                    % (name, sorted(z), sorted(opts)))
            print("%-12s %2d options: manual, --help and completion agree"
                  % (name, len(opts)) if not problems else
                  "%-12s checked" % name)
        b = bash_offers(args.bash, ["heapinspect", ""])
        if b != subs:
            problems.append("bash completes the commands %s, --help lists "
                            "%s" % (sorted(b), sorted(subs)))
        if shutil.which("zsh"):
            _, raw = zsh_offers(args.zsh, ["heapinspect", ""])
            z = {x.split(":")[0] for x in raw.splitlines()}
            if z != subs:
                problems.append("zsh completes the commands %s, --help "
                                "lists %s" % (sorted(z), sorted(subs)))
        else:
            print("note: no zsh here: its completion was not run")
    except Failure as e:
        problems.append(str(e))
    if problems:
        for p in problems:
            print("FAIL: %s" % p)
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
