#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Make the figures docs/bench.md embeds ("Plots"): ferry-bench runs,
interleaved, several rounds; for each case the run with the median figure
is kept (docs/figures/NAME.json) and drawn by bench/plot.

  bench/plotfigs.py [--bench build/bench/ferry-bench] [--rounds 3]
                    [--duration 5] [--out docs/figures]

A plot shows one run's shape; which run is the median one is said in the
legend's JSON (its "label") and printed here with every round's figure.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import benchrun  # noqa: E402  (bench/benchrun.py)

# (file name, label, ferry-bench arguments, the figure picking the median)
CASES = [
    ("uring-1", "uring, 1 in flight", ["loop", "--inflight", "1"], "p50_us"),
    ("uring-1-busy", "uring, 1 in flight, --busy-poll",
     ["loop", "--inflight", "1", "--busy-poll"], "p50_us"),
    ("uring-64", "uring, 64 in flight", ["loop", "--inflight", "64"],
     "p50_us"),
    ("floor-1", "uring floor (raw echo), 1 in flight",
     ["floor", "loop", "--inflight", "1"], "p50_us"),
    ("uring-64-rps", "uring loop, 64 in flight",
     ["loop", "--inflight", "64"], "rps"),
    ("memif-64", "DPDK memif (2 processes, busy-poll), 64 in flight",
     ["memif", "--inflight", "64"], "rps"),
]
# (SVG, bench/plot arguments, the cases on it)
FIGURES = [
    ("latency-uring.svg", ["--chart", "latency", "--title",
                           "Latency by percentile: uring loop, 32 B calls"],
     ["uring-1", "uring-1-busy", "uring-64", "floor-1"]),
    ("throughput-memif-uring.svg",
     ["--chart", "throughput", "--title",
      "Throughput over time: 32 B calls, 64 in flight"],
     ["memif-64", "uring-64-rps"]),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", default="build/bench/ferry-bench")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", default="5")
    ap.add_argument("--out", default="docs/figures")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    runs = {name: [] for name, _, _, _ in CASES}
    shown = {}
    for rnd in range(args.rounds):
        for name, label, extra, metric in CASES:
            d, cmd = benchrun.run(args.bench, extra + ["--label", label],
                                  args.duration)
            runs[name].append(d)
            shown[name] = cmd
            print("round %d: %s: %s %.2f" % (rnd + 1, name, metric,
                                             d[metric]), file=sys.stderr)
    for name, label, extra, metric in CASES:
        vals = [d[metric] for d in runs[name]]
        med = statistics.median_low(vals)
        keep = runs[name][vals.index(med)]
        with open(os.path.join(args.out, name + ".json"), "w") as f:
            json.dump(keep, f)
        print("- %s: `%s --duration %s --warmup 1`; %s of the %d runs: "
              "%s; kept the median, %.2f" % (
                  name, shown[name], args.duration, metric, len(vals),
                  ", ".join("%.2f" % v for v in vals), med))
    for svg, opts, names in FIGURES:
        subprocess.run([sys.executable, os.path.join(HERE, "plot"), "-o",
                        os.path.join(args.out, svg)] + opts +
                       [os.path.join(args.out, n + ".json") for n in names],
                       check=True)
        print("- %s: bench/plot %s" % (svg, " ".join(
            opts[:2] + ["..."] + [n + ".json" for n in names])))


if __name__ == "__main__":
    main()
