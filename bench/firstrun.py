#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""What `./dev run` shows with no arguments: the two numbers a newcomer
wants, each against the floor.

  latency at 1 call in flight      (p50 and p99, RPC and floor)
  throughput at 64 calls in flight (calls/s, RPC and floor)

Four ferry-bench runs over the uring dataplane on loopback (the floor, a
raw echo on the same dataplane with the same batching and no RPC layer,
then the RPC path, at each depth), about 16 s in all, a progress line for
each; then the summary, and the curves drawn by bench/plot into --out.

  bench/firstrun.py [--bench build/bench/ferry-bench] [--out DIR]
                    [--port N] [--quick]

--quick makes each run 0.3 s (a smoke test of this script, tests/
meson.build, not a measurement).  One run each: docs/bench.md has medians
of many.
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# (name, ferry-bench arguments, what the progress line shows)
RUNS = [
    ("floor-1", ["floor", "loop", "--inflight", "1"], "p50"),
    ("rpc-1", ["loop", "--inflight", "1"], "p50"),
    ("floor-64", ["floor", "loop", "--inflight", "64"], "rps"),
    ("rpc-64", ["loop", "--inflight", "64"], "rps"),
]
WHAT = {
    "floor-1": "the floor (raw echo), 1 in flight",
    "rpc-1": "ferry RPC, 1 in flight",
    "floor-64": "the floor (raw echo), 64 in flight",
    "rpc-64": "ferry RPC, 64 in flight",
}


def one(bench, i, name, extra, shows, args):
    """Run ferry-bench once, saying what runs and then what it measured;
    returns its --json summary.  Exits 1 with its output if it fails."""
    path = os.path.join(args.out, name + ".json")
    cmd = [bench] + extra + ["--duration", str(args.duration), "--warmup",
                             str(args.warmup), "--quiet", "--label", name,
                             "--json", path]
    if args.port:
        cmd += ["--port", args.port]
    print("[%d/%d] %-40s" % (i, len(RUNS), WHAT[name] + " ..."),
          end="", flush=True)
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        print(" failed")
        sys.exit("firstrun: %s failed (exit %d):\n%s%s" % (
            " ".join(cmd), r.returncode, r.stdout, r.stderr))
    with open(path) as f:
        d = json.load(f)
    if shows == "p50":
        print(" p50 %.1f us" % d["p50_us"], flush=True)
    else:
        print(" {:,.0f} {}/s".format(
            d["rps"], "round trips" if extra[0] == "floor" else "calls"),
            flush=True)
    return d


def summary(res):
    """The two lines, each RPC figure against its floor."""
    f1, r1, f64, r64 = (res[n] for n, _, _ in RUNS)
    lat = r1["p50_us"] / f1["p50_us"] if f1["p50_us"] else float("nan")
    thr = r64["rps"] / f64["rps"] if f64["rps"] else float("nan")
    rpc_lat = "RPC p50 %.1f us (p99 %.1f)" % (r1["p50_us"], r1["p99_us"])
    fl_lat = "floor p50 %.1f us (p99 %.1f)" % (f1["p50_us"], f1["p99_us"])
    rpc_thr = "RPC {:,.0f} calls/s".format(r64["rps"])
    fl_thr = "floor {:,.0f} round trips/s".format(f64["rps"])
    return [
        "latency at 1 in flight:     %-30s %-32s RPC/floor %.2f" % (
            rpc_lat, fl_lat, lat),
        "throughput at 64 in flight: %-30s %-32s RPC/floor %.2f" % (
            rpc_thr, fl_thr, thr),
    ]


def plots(args):
    """The latency curves at 1 in flight and throughput at 64, by
    bench/plot; a failure is reported, not fatal."""
    out = []
    for chart, names, fname in (
            ("latency", ["floor-1", "rpc-1"], "latency-1-in-flight.svg"),
            ("throughput", ["floor-64", "rpc-64"],
             "throughput-64-in-flight.svg")):
        svg = os.path.join(args.out, fname)
        r = subprocess.run(
            [sys.executable, os.path.join(HERE, "plot"), "--chart", chart,
             "-o", svg] + [os.path.join(args.out, n + ".json")
                           for n in names],
            capture_output=True, text=True)
        if r.returncode != 0:
            print("firstrun: no plot: %s" % r.stderr.strip(),
                  file=sys.stderr)
        else:
            out.append(svg)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", default="build/bench/ferry-bench")
    ap.add_argument("--out", default="build/first-run",
                    help="where the --json files and plots go")
    ap.add_argument("--port", help="ferry-bench's --port (default its "
                    "own)")
    ap.add_argument("--quick", action="store_true",
                    help="0.3 s runs: a smoke test, not a measurement")
    args = ap.parse_args()
    args.duration, args.warmup = (0.3, 0.1) if args.quick else (3, 0.75)
    os.makedirs(args.out, exist_ok=True)
    t0 = time.monotonic()
    res = {}
    for i, (name, extra, shows) in enumerate(RUNS, 1):
        res[name] = one(args.bench, i, name, extra, shows, args)
    print()
    print("ferry over io_uring on loopback, 32 B calls, one run each "
          "(%.0f s); the floor is a raw echo on the same dataplane, no "
          "RPC layer:" % (time.monotonic() - t0))
    for line in summary(res):
        print("  " + line)
    svgs = plots(args)
    if svgs:
        print("curves: " + ", ".join(svgs))
    print("more: ./dev run --help (ferry-bench's options), docs/bench.md")


if __name__ == "__main__":
    main()
