#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The house rules of issue 17, checked on every test run (TAP).

- no library or tool source file over 1,000 lines;
- no test source file over 1,200 lines;
- no C function over 150 lines (library, tools and tests alike);
- libferry.map lists every exported symbol by name: no wildcard but the
  final `local: *;`.

Usage: check_layout.py SOURCE_ROOT

Functions are found the way this tree writes them: a definition starts at
column 0 (a `{` alone on a line after its declarator, or a declarator line
ending in `{`, as Criterion's `Test(...) {`), and ends at the `}` that
brings the brace depth back to zero.  Braces inside string and character
literals and comments are ignored.
"""
import os
import re
import subprocess
import sys

FILE_MAX = 1000
TEST_FILE_MAX = 1200
FUNC_MAX = 150

SOURCE_DIRS = ("transport", "dataplane", "control", "bench", "include",
               "examples")
TEST_DIRS = ("tests",)


def tracked_files(root):
    try:
        out = subprocess.run(["git", "-C", root, "ls-files"],
                             capture_output=True, text=True, check=True)
        names = out.stdout.split()
    except (OSError, subprocess.CalledProcessError):
        names = []
        for d, _, fs in os.walk(root):
            for f in fs:
                names.append(os.path.relpath(os.path.join(d, f), root))
    return sorted(n for n in names if n.endswith((".c", ".h", ".py")))


def strip_literals(line, state):
    """Blank out comments and string/char literals; @state carries an
    open block comment from the previous line."""
    out = []
    i = 0
    n = len(line)
    while i < n:
        if state["comment"]:
            end = line.find("*/", i)
            if end < 0:
                return "".join(out)
            i = end + 2
            state["comment"] = False
            continue
        c = line[i]
        if line.startswith("/*", i):
            state["comment"] = True
            i += 2
        elif line.startswith("//", i):
            break
        elif c in "\"'":
            q = c
            i += 1
            while i < n and line[i] != q:
                i += 2 if line[i] == "\\" else 1
            i += 1
            out.append(q + q)
        else:
            out.append(c)
            i += 1
    return "".join(out)


DECL_END = re.compile(r"^[A-Za-z_].*\)\s*\{\s*$")
NOT_FUNC = re.compile(r"^(struct|union|enum|typedef|static\s+const|const)\b"
                      r"[^(]*(=|\{)\s*")


def functions(text):
    """Yield (name, first line, length in lines) for each definition."""
    raw = text.split("\n")
    state = {"comment": False}
    lines = [strip_literals(l, state) for l in raw]
    i = 0
    n = len(lines)
    while i < n:
        l = lines[i]
        start = None
        if l.rstrip() == "{":
            j = i - 1
            while j >= 0 and lines[j].strip() and \
                    not lines[j].rstrip().endswith((";", "}")) and \
                    not lines[j].startswith("#"):
                j -= 1
            start = j + 1
        elif DECL_END.match(l) and not NOT_FUNC.match(l):
            start = i
        if start is None or start > i or "(" not in " ".join(lines[start:i + 1]):
            i += 1
            continue
        depth = 0
        k = i
        while k < n:
            depth += lines[k].count("{") - lines[k].count("}")
            if depth <= 0:
                break
            k += 1
        m = re.search(r"([A-Za-z_][A-Za-z_0-9]*)\s*\(",
                      " ".join(lines[start:i + 1]))
        name = m.group(1) if m else "?"
        if name == "Test":
            m2 = re.search(r"Test\s*\(\s*(\w+)\s*,\s*(\w+)",
                           " ".join(raw[start:i + 1]))
            if m2:
                name = "Test(%s, %s)" % (m2.group(1), m2.group(2))
        yield name, start + 1, k - start + 1
        i = k + 1


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "."
    big_src, big_test, long_funcs, nfiles, nfuncs = [], [], [], 0, 0

    for f in tracked_files(root):
        top = f.split("/", 1)[0]
        is_test = top in TEST_DIRS
        if top not in SOURCE_DIRS and not is_test:
            continue
        try:
            with open(os.path.join(root, f), encoding="utf-8",
                      errors="replace") as fh:
                text = fh.read()
        except OSError:
            continue
        nfiles += 1
        nlines = text.count("\n")
        if nlines > (TEST_FILE_MAX if is_test else FILE_MAX):
            (big_test if is_test else big_src).append(
                "%s: %d lines" % (f, nlines))
        if f.endswith((".c", ".h")):
            for name, at, ln in functions(text):
                nfuncs += 1
                if ln > FUNC_MAX:
                    long_funcs.append("%s:%d: %s, %d lines"
                                      % (f, at, name, ln))

    bad_map = []
    with open(os.path.join(root, "libferry.map")) as fh:
        for no, line in enumerate(fh, 1):
            s = line.split("#", 1)[0].strip()
            if "*" in s and s != "*;":
                bad_map.append("libferry.map:%d: %s" % (no, s))

    checks = [
        (big_src, "no library or tool source file over %d lines" % FILE_MAX),
        (big_test, "no test source file over %d lines" % TEST_FILE_MAX),
        (long_funcs, "no function over %d lines (%d functions in %d files)"
         % (FUNC_MAX, nfuncs, nfiles)),
        (bad_map, "libferry.map names every exported symbol (no wildcard)"),
    ]
    print("1..%d" % len(checks))
    for n, (offenders, what) in enumerate(checks, 1):
        print("%s %d - %s" % ("not ok" if offenders else "ok", n, what))
        for o in offenders:
            print("#   " + o)
    return 1 if any(o for o, _ in checks) else 0


if __name__ == "__main__":
    sys.exit(main())
