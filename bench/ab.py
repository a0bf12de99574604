#!/usr/bin/env python3
"""A/B: the same ferry-bench runs with two builds, alternated.

For a change that must not move the figures (a refactor), or one that
should: each case runs with build A, then build B, REPS times, so the
machine's drift hits both, and the table gives each side's median and the
median of the paired ratios B/A.  Both binaries must accept the case's
options (ferry-bench's command line is stable across such changes).

  bench/ab.py --a OLD/ferry-bench --b build/bench/ferry-bench [--reps 5]
              [--duration 3] [--only TEXT]
"""
import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchrun  # noqa: E402  (bench/benchrun.py)

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--a", required=True, help="ferry-bench of build A (before)")
ap.add_argument("--b", required=True, help="ferry-bench of build B (after)")
ap.add_argument("--reps", type=int, default=5)
ap.add_argument("--duration", default="3")
ap.add_argument("--only", default="", help="run only cases whose name "
                "contains this text")
args = ap.parse_args()

# name, ferry-bench arguments (first word "memif": a DPDK server and client
# process over net_memif, the rest go to the client), metric, better
CASES = [
    ("uring loop, 32 B, 1 in flight", ["loop"], "p50_us", "lower"),
    ("uring loop, 32 B, 64 in flight", ["loop", "--inflight", "64"], "rps",
     "higher"),
    ("uring floor, 32 B, 64 in flight",
     ["floor", "loop", "--inflight", "64"], "rps", "higher"),
    ("uring loop, 1 MiB, 8 in flight",
     ["loop", "--size", "1M", "--inflight", "8"], "gbps", "higher"),
    ("memif, 32 B, 64 in flight", ["memif", "--inflight", "64"], "rps",
     "higher"),
    ("memif, 32 B, 1 in flight", ["memif"], "p50_us", "lower"),
]


def run(bench, extra):
    """One run's report (bench/benchrun.py; a hung run fails in 120 s)."""
    return benchrun.run(bench, extra, args.duration, timeout=120)[0]


def main():
    benchrun.warn_if_busy()
    print("| case | metric | A median | B median | B/A (median of pairs) |")
    print("|---|---|---|---|---|")
    for name, extra, metric, better in CASES:
        if args.only not in name:
            continue
        a, b = [], []
        for i in range(args.reps):
            a.append(run(args.a, extra)[metric])
            b.append(run(args.b, extra)[metric])
            print("  %s rep %d: A %.2f B %.2f" % (name, i + 1, a[-1], b[-1]),
                  file=sys.stderr)
        ratio = statistics.median(y / x for x, y in zip(a, b) if x)
        print("| %s | %s (%s is better) | %.2f | %.2f | %.3f |" % (
            name, metric, better, statistics.median(a), statistics.median(b),
            ratio), flush=True)


if __name__ == "__main__":
    main()
