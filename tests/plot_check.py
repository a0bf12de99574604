#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The plots (issue 16): ferry-bench's --json latency curve and timeline,
bench/plot drawing them, ferry-bench --plot, and bad input files.

Usage: plot_check.py PATH/TO/ferry-bench PATH/TO/bench/plot
Prints TAP; exits non-zero if any check fails.
"""
import copy
import json
import os
import socket
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

BENCH, PLOT = sys.argv[1], sys.argv[2]
TMP = tempfile.mkdtemp(prefix="ferry-plot-")
SVG = "{http://www.w3.org/2000/svg}"
results = []


def check(name, cond, detail=""):
    results.append((name, bool(cond), detail))


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def bench(args, path):
    # 0.55 s: the last interval is cut short, and must be folded in.
    r = subprocess.run([BENCH, "loop", "--duration", "0.55", "--warmup",
                        "0.2", "--quiet", "--port", free_port(), "--json",
                        path] + args,
                       capture_output=True, text=True, timeout=120)
    try:
        with open(path) as f:
            return r, json.load(f)
    except (OSError, ValueError):
        return r, None


def plot(args):
    return subprocess.run([sys.executable, PLOT] + args, capture_output=True,
                          text=True, timeout=60)


def charts(path):
    """{chart id: [series labels]} of an SVG, or None if it is not
    well-formed XML."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None
    out = {}
    for g in root.iter(SVG + "g"):
        if g.get("class") == "chart":
            out[g.get("id")] = [s.get("data-label") for s in g.iter(SVG + "g")
                                if s.get("class") == "series"]
    return out


# --- the new --json members, from real runs -------------------------------
a_json = os.path.join(TMP, "one.json")
b_json = os.path.join(TMP, "deep.json")
r, a = bench(["--inflight", "1", "--label", 'one "in" flight'], a_json)
check("run at 1 in flight with --label: exit 0 and JSON", r.returncode == 0
      and a is not None, r.stderr[-400:])
r, b = bench(["--inflight", "8"], b_json)
check("run at 8 in flight: exit 0 and JSON", r.returncode == 0
      and b is not None, r.stderr[-400:])
if a is None or b is None:
    a = b = {}
check("--label is the JSON's \"label\", quotes escaped",
      a.get("label") == 'one "in" flight', str(a.get("label")))
check("no --label, no \"label\"", "label" not in b)
check("the keys there before are still there",
      all(k in a for k in ("rps", "gbps", "p50_us", "p99_us", "p999_us",
                           "max_us", "completed", "errors")))

for tag, d in (("1 in flight", a), ("8 in flight", b)):
    if not d:
        continue    # the run failed, and said so above
    lc = d.get("latency_curve", {})
    pts = lc.get("points", [])
    pct = [p for p, _ in pts]
    us = [v for _, v in pts]
    check(tag + ": latency_curve counts every completed call",
          lc.get("count") == d.get("completed") and lc.get("count", 0) > 0,
          "%s vs %s" % (lc.get("count"), d.get("completed")))
    check(tag + ": the curve runs from p0 to p100 = max_us",
          len(pts) > 10 and pct[0] == 0 and pts[-1] == [100, d["max_us"]],
          str(pts[:2] + pts[-2:]))
    check(tag + ": percentiles rise, latencies never fall",
          all(x < y for x, y in zip(pct, pct[1:])) and
          all(x <= y for x, y in zip(us, us[1:])), str(pts))
    check(tag + ": its p50, p99 and p99.9 points are p50_us, p99_us, "
          "p999_us",
          dict(pts).get(50) == d["p50_us"] and
          dict(pts).get(99) == d["p99_us"] and
          dict(pts).get(99.9) == d["p999_us"],
          "%s %s" % ({p: v for p, v in pts if p in (50, 99, 99.9)},
                     (d["p50_us"], d["p99_us"], d["p999_us"])))
    check(tag + ": no point beyond what the calls resolve",
          all((1 - p / 100) * lc["count"] >= 0.999 for p in pct[:-1]))
    tl = d.get("timeline", {})
    t = tl.get("t_s", [])
    ok = (tl.get("interval_s") == 0.1 and tl.get("complete") is True and
          len(t) >= 1 and len(tl.get("rps", [])) == len(t) ==
          len(tl.get("gbps", [])))
    check(tag + ": timeline of 0.1 s samples, columns of one length", ok,
          str(tl))
    if ok:
        dts = [y - x for x, y in zip([0] + t, t)]
        calls = sum(r * dt for r, dt in zip(tl["rps"], dts))
        check(tag + ": times rise to the measured time",
              all(x > 0 for x in dts) and
              abs(t[-1] - d["duration_s"]) < 0.05,
              "%s vs %s" % (t, d["duration_s"]))
        check(tag + ": no sample shorter than half an interval (the "
              "run's cut-short end folded into the one before)",
              all(x >= 0.049 for x in dts), str(dts))
        check(tag + ": the samples add up to the calls completed",
              abs(calls - d["completed"]) <= 0.01 * d["completed"] + 1,
              "%.1f vs %d" % (calls, d["completed"]))

# --- bench/plot ------------------------------------------------------------
out = os.path.join(TMP, "both.svg")
r = plot(["-o", out, a_json, b_json])
c = charts(out)
check("plot of two runs: exit 0", r.returncode == 0, r.stderr)
check("plot of two runs: well-formed SVG with both charts",
      c is not None and set(c) == {"latency", "throughput"}, str(c))
c = c or {}
check("latency chart: two series, named by --label and by file name",
      len(c.get("latency", [])) == 2 and
      c["latency"][0].startswith('one "in" flight (max ') and
      c["latency"][1].startswith("deep (max "), str(c.get("latency")))
check("throughput chart: two series, same names",
      c.get("throughput") == ['one "in" flight', "deep"],
      str(c.get("throughput")))

out = os.path.join(TMP, "lat.svg")
r = plot(["--chart", "latency", "--label", "A", "--label", "B", "-o", out,
          a_json, b_json])
c = charts(out) or {}
check("--chart latency: one chart; --label names the runs",
      r.returncode == 0 and list(c) == ["latency"] and
      [x.split(" (max")[0] for x in c["latency"]] == ["A", "B"], str(c))

out = os.path.join(TMP, "thr.svg")
r = plot(["--chart", "throughput", "--metric", "gbps", "-o", out, a_json,
          b_json, a_json])
c = charts(out) or {}
check("--chart throughput of three files: three series",
      r.returncode == 0 and list(c) == ["throughput"] and
      len(c["throughput"]) == 3, str(c))

# --- ferry-bench --plot ------------------------------------------------------
out = os.path.join(TMP, "self.svg")
r = subprocess.run([BENCH, "loop", "--duration", "0.3", "--warmup", "0.1",
                    "--quiet", "--port", free_port(), "--label", "self",
                    "--plot", out],
                   capture_output=True, text=True, timeout=120)
c = charts(out) or {}
check("ferry-bench --plot: exit 0, an SVG with one series per chart",
      r.returncode == 0 and c.get("throughput") == ["self"] and
      len(c.get("latency", [])) == 1, r.stderr[-400:] + str(c))
h = subprocess.run([BENCH, "--help"], capture_output=True, text=True)
check("ferry-bench --help names --plot and --label",
      "--plot FILE.svg" in h.stdout and "--label TEXT" in h.stdout)

# --- bad input: a clear message naming the file, exit 1, no traceback -------
def bad(name, content, word):
    path = os.path.join(TMP, name)
    if isinstance(content, bytes):
        with open(path, "wb") as f:
            f.write(content)
    elif content is not None:
        with open(path, "w") as f:
            f.write(content if isinstance(content, str)
                    else json.dumps(content))
    out = os.path.join(TMP, name + ".svg")
    r = plot(["-o", out, path])
    check("bad file (%s): exit 1, says '%s' and names it" % (name, word),
          r.returncode == 1 and word in r.stderr and path in r.stderr and
          "Traceback" not in r.stderr and not os.path.exists(out),
          "rc %d: %s" % (r.returncode, r.stderr[-400:]))


old = copy.deepcopy(a)
old.pop("latency_curve", None)
mangled = copy.deepcopy(a)
mangled["latency_curve"]["points"] = "fast"
bad("missing.json", None, "cannot read it")
bad("broken.json", '{"rps": 1,', "not JSON")
bad("binary.json", b"\xff\xfe{", "not JSON")
bad("list.json", [1, 2], "not a ferry-bench --json summary")
bad("old.json", old, "has no \"latency_curve\"")
bad("mangled.json", mangled, "not as ferry-bench writes it")
server = copy.deepcopy(a)
server["latency_curve"]["points"] = []
with open(os.path.join(TMP, "server.json"), "w") as f:
    json.dump(server, f)
r = plot(["--chart", "latency", "-o", os.path.join(TMP, "s.svg"),
          os.path.join(TMP, "server.json")])
check("--chart latency of a run without latencies: exit 1, says so",
      r.returncode == 1 and "no run has latencies" in r.stderr, r.stderr)
r = plot(["--label", "x", "--label", "y", a_json])
check("more --label than files: exit 2", r.returncode == 2, r.stderr)

print("TAP version 13")
print("1..%d" % len(results))
for i, (name, ok, detail) in enumerate(results, 1):
    print("%s %d - %s" % ("ok" if ok else "not ok", i, name))
    if not ok and detail:
        for line in str(detail).splitlines()[-10:]:
            print("  # " + line)
sys.exit(0 if all(ok for _, ok, _ in results) else 1)
