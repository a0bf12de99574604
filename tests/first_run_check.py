#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""`./dev run` with no arguments (bench/firstrun.py), in its 0.3 s runs:
a progress line per run, then latency at 1 in flight and throughput at 64,
each against the floor, with the figures of the runs' own --json files,
and the two plots.  No timing: the figures are whatever the runs measured.

Usage: first_run_check.py PATH/TO/ferry-bench PATH/TO/bench/firstrun.py
Prints TAP; exits non-zero if any check fails.
"""
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

BENCH, FIRSTRUN = sys.argv[1], sys.argv[2]
OUT = tempfile.mkdtemp(prefix="ferry-first-run-")
results = []


def check(name, cond, detail=""):
    results.append((name, bool(cond), detail))


with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    s.bind(("127.0.0.1", 0))
    port = str(s.getsockname()[1])
r = subprocess.run([sys.executable, FIRSTRUN, "--quick", "--bench", BENCH,
                    "--out", OUT, "--port", port], capture_output=True,
                   text=True, timeout=240)
out = r.stdout
check("exit 0", r.returncode == 0, r.stderr[-600:])
progress = re.findall(r"^\[(\d)/4\] .*\.\.\. +(p50 [\d.]+ us|[\d,]+ "
                      r"(?:calls|round trips)/s)$", out, re.M)
check("a progress line for each of the 4 runs, with its figure",
      [p[0] for p in progress] == ["1", "2", "3", "4"], out)


def load(name):
    try:
        with open(os.path.join(OUT, name + ".json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


runs = {n: load(n) for n in ("floor-1", "rpc-1", "floor-64", "rpc-64")}
check("each run's --json kept, labelled, floor and RPC at 1 and 64 in "
      "flight",
      all(d and d.get("label") == n for n, d in runs.items()) and
      runs["floor-1"]["mode"] == "floor-loop" and
      runs["rpc-1"]["mode"] == "loop" and
      runs["floor-1"]["inflight"] == runs["rpc-1"]["inflight"] == 1 and
      runs["floor-64"]["inflight"] == runs["rpc-64"]["inflight"] == 64,
      str({n: d and (d.get("label"), d["mode"], d["inflight"])
           for n, d in runs.items()}))

lat = re.search(r"^  latency at 1 in flight: +RPC p50 ([\d.]+) us \(p99 "
                r"([\d.]+)\) +floor p50 ([\d.]+) us \(p99 ([\d.]+)\) +"
                r"RPC/floor ([\d.]+)$", out, re.M)
thr = re.search(r"^  throughput at 64 in flight: +RPC ([\d,]+) calls/s +"
                r"floor ([\d,]+) round trips/s +RPC/floor ([\d.]+)$", out,
                re.M)
check("the latency line: RPC and floor p50 and p99, and their ratio",
      lat is not None, out)
check("the throughput line: RPC calls/s, floor round trips/s, ratio",
      thr is not None, out)
if lat and thr and all(runs.values()):
    f1, r1, f64, r64 = (runs[n] for n in ("floor-1", "rpc-1", "floor-64",
                                          "rpc-64"))
    want = ["%.1f" % r1["p50_us"], "%.1f" % r1["p99_us"],
            "%.1f" % f1["p50_us"], "%.1f" % f1["p99_us"],
            "%.2f" % (r1["p50_us"] / f1["p50_us"])]
    check("latency line figures are the runs' own, ratio RPC/floor",
          list(lat.groups()) == want, "%s vs %s" % (lat.groups(), want))
    want = ["{:,.0f}".format(r64["rps"]), "{:,.0f}".format(f64["rps"]),
            "%.2f" % (r64["rps"] / f64["rps"])]
    check("throughput line figures are the runs' own, ratio RPC/floor",
          list(thr.groups()) == want, "%s vs %s" % (thr.groups(), want))

for svg, chart in (("latency-1-in-flight.svg", "latency"),
                   ("throughput-64-in-flight.svg", "throughput")):
    path = os.path.join(OUT, svg)
    try:
        root = ET.parse(path).getroot()
        n = sum(1 for g in root.iter("{http://www.w3.org/2000/svg}g")
                if g.get("class") == "series")
        ids = [g.get("id") for g in root.iter(
            "{http://www.w3.org/2000/svg}g") if g.get("class") == "chart"]
    except (OSError, ET.ParseError) as e:
        n, ids = 0, str(e)
    check("%s: the %s chart of floor and RPC" % (svg, chart),
          ids == [chart] and n == 2 and path in out, "%s %s" % (ids, n))

print("TAP version 13")
print("1..%d" % len(results))
for i, (name, ok, detail) in enumerate(results, 1):
    print("%s %d - %s" % ("ok" if ok else "not ok", i, name))
    if not ok and detail:
        for line in str(detail).splitlines()[-12:]:
            print("  # " + line)
sys.exit(0 if all(ok for _, ok, _ in results) else 1)
