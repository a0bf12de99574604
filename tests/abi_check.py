#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""libferry.map, the installed headers and the built libferry.so agree (TAP).

1. every name libferry.map lists is defined by libferry.so;
2. libferry.so exports nothing else, each name under the map's version node;
3. the map lists exactly the functions the installed headers declare;
4. every function the installed headers declare is exported;
5. the ABI of the public types and functions is the one abi/libferry.abi
   records (abidiff, when abigail-tools is installed; skipped otherwise).

Usage: abi_check.py SOURCE_ROOT BUILD_DIR

The installed headers are the ones BUILD_DIR installs (meson-info): a build
without libsodium installs neither token.h nor trace.h, and the map's names
for those two headers are then not expected in the library.

abidiff's exit status is a bit set: 1 error, 2 usage error, 4 the ABIs
differ, 8 the difference is known to be incompatible.  Bit 8 is set only for
removed functions and variables; a changed public struct (a field inserted,
a size changed) sets 4 alone.  So with 4, the report decides: a change that
only adds functions or variables passes, with the additions as a note; any
removed or changed function, variable or symbol fails.
"""
import json
import os
import re
import shutil
import subprocess
import sys


def installed(build):
    """(path of the built libferry.so, {header base name: source path})
    from what BUILD installs."""
    path = os.path.join(build, "meson-info", "intro-installed.json")
    with open(path) as fh:
        files = json.load(fh)
    lib = None
    headers = {}
    for src, dest in files.items():
        base = os.path.basename(src)
        if re.fullmatch(r"libferry\.so\.\d+\.\d+\.\d+", base):
            lib = src
        elif base.endswith(".h") and "/include/ferry/" in dest:
            headers[base] = src
    return lib, headers


def read_map(path):
    """(version node, [(name, header base name or None)]) in map order; a
    `# ferry/x.h: ...` comment line starts the group of header x.h."""
    node = None
    names = []
    header = None
    with open(path) as fh:
        for line in fh:
            s = line.strip()
            m = re.match(r"#\s*ferry/([\w.]+\.h)\b", s)
            if m:
                header = m.group(1)
                continue
            s = s.split("#", 1)[0].strip()
            m = re.match(r"([A-Za-z_][\w.]*)\s*\{", s)
            if m:
                node = m.group(1)
                continue
            m = re.fullmatch(r"([A-Za-z_]\w*)\s*;", s)
            if m:
                names.append((m.group(1), header))
    return node, names


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def declared_functions(path):
    """Names of the ferry_ functions a header declares, in order.

    A declaration is a top-level statement (outside braces, up to `;`)
    whose first `identifier (` is a ferry_ name: typedefs of function
    pointers (`(*ferry_x_fn)(...)`) and struct bodies never match.  The
    C++ guard (`extern "C" {`) and every other preprocessor line are
    dropped first."""
    with open(path) as fh:
        text = strip_comments(fh.read())
    lines = []
    skip = 0
    for line in text.splitlines():
        s = line.strip()
        if re.match(r"#\s*ifdef\s+__cplusplus\b", s):
            skip += 1
        elif skip and re.match(r"#\s*endif\b", s):
            skip -= 1
        elif not skip and not s.startswith("#"):
            lines.append(line)
    names = []
    depth = 0
    stmt = []
    for c in "\n".join(lines):
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif c == ";" and depth == 0:
            s = " ".join("".join(stmt).split())
            stmt = []
            if s.startswith("typedef") or "}" in s:
                continue
            m = re.search(r"([A-Za-z_]\w*)\s*\(", s)
            if m and m.group(1).startswith("ferry_"):
                names.append(m.group(1))
            continue
        stmt.append(c)
    return names


def exported(lib):
    """{name: version} of the dynamic symbols libferry.so defines, the
    version node's own symbol left out."""
    out = subprocess.run(["nm", "-D", "--defined-only", lib],
                         capture_output=True, text=True, check=True).stdout
    syms = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 3 or parts[1] == "A":
            continue
        name, _, ver = parts[2].partition("@")
        syms[name] = ver.lstrip("@")
    return syms


def has_debug_info(lib):
    out = subprocess.run(["readelf", "-S", "-W", lib],
                         capture_output=True, text=True).stdout
    return ".debug_info" in out


def abidiff(root, lib):
    """(ok, skip reason or None, note lines)."""
    dump = os.path.join(root, "abi", "libferry.abi")
    if not shutil.which("abidiff"):
        return True, "abidiff not installed (Debian: abigail-tools)", []
    if not os.path.exists(dump):
        return False, None, ["no abi/libferry.abi: run ./dev abi-dump"]
    if not has_debug_info(lib):
        return True, "libferry.so has no debug info (abidiff needs it)", []
    hdrs = os.path.join(root, "include", "ferry")
    r = subprocess.run(["abidiff", "--headers-dir1", hdrs,
                        "--headers-dir2", hdrs, dump, lib],
                       capture_output=True, text=True)
    report = (r.stdout + r.stderr).splitlines()
    if r.returncode == 0:
        return True, None, []
    if r.returncode & 3 or r.returncode & 8:
        return False, None, ["abidiff exit status %d" % r.returncode] + report
    # Bit 4 alone: pass only if every summary counts additions alone.
    bad = False
    for line in report:
        if "summary:" not in line:
            continue
        for n, what in re.findall(r"(\d+) (Removed|Changed)", line):
            if int(n):
                bad = True
    if any("SONAME changed" in line or "architecture changed" in line
           for line in report):
        bad = True
    if bad:
        return False, None, ["abidiff exit status 4: incompatible"] + report
    return True, None, ["additions only (compatible; list them in the "
                        "next version node):"] + report


def main():
    if len(sys.argv) != 3:
        print(__doc__.split("\n\n")[2], file=sys.stderr)
        return 2
    root, build = sys.argv[1], sys.argv[2]
    lib, headers = installed(build)
    node, map_names = read_map(os.path.join(root, "libferry.map"))
    syms = exported(lib)

    decl = {}
    for base in sorted(headers):
        for name in declared_functions(headers[base]):
            decl.setdefault(name, base)
    all_headers = {os.path.basename(p) for p in
                   os.listdir(os.path.join(root, "include", "ferry"))}
    # Names of headers this build does not install are not expected.
    expected = [(n, h) for n, h in map_names
                if h is None or h in headers or h not in all_headers]
    listed = {n for n, _ in map_names}

    checks = []
    missing = ["%s (ferry/%s)" % (n, h) for n, h in expected
               if n not in syms]
    checks.append((missing, "every name libferry.map lists is defined by "
                   "libferry.so (%d names)" % len(expected)))

    extra = ["%s@%s" % (n, v) for n, v in sorted(syms.items())
             if n not in listed]
    extra += ["%s@%s, not @@%s" % (n, v, node) for n, v in sorted(syms.items())
              if n in listed and v != node]
    checks.append((extra, "libferry.so exports nothing else, all under %s "
                   "(%d symbols)" % (node, len(syms))))

    undeclared = ["%s: in libferry.map, declared by no installed header" % n
                  for n, _ in expected if n not in decl]
    unlisted = ["%s (ferry/%s): declared, not in libferry.map" % (n, h)
                for n, h in sorted(decl.items()) if n not in listed]
    checks.append((undeclared + unlisted, "libferry.map lists exactly the "
                   "functions the installed headers declare (%d in %d "
                   "headers)" % (len(decl), len(headers))))

    hidden = ["%s (ferry/%s)" % (n, h) for n, h in sorted(decl.items())
              if n not in syms]
    checks.append((hidden, "every function the installed headers declare "
                   "is exported"))

    ok, skip, notes = abidiff(root, lib)
    print("1..%d" % (len(checks) + 1))
    for i, (offenders, what) in enumerate(checks, 1):
        print("%s %d - %s" % ("not ok" if offenders else "ok", i, what))
        for o in offenders:
            print("#   " + o)
    what = "the public ABI matches abi/libferry.abi (abidiff)"
    if skip:
        print("ok %d - %s # SKIP %s" % (len(checks) + 1, what, skip))
    else:
        print("%s %d - %s" % ("ok" if ok else "not ok", len(checks) + 1,
                              what))
    for line in notes:
        print("#   " + line)
    return 0 if ok and not any(o for o, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
