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
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--a", required=True, help="ferry-bench of build A (before)")
ap.add_argument("--b", required=True, help="ferry-bench of build B (after)")
ap.add_argument("--reps", type=int, default=5)
ap.add_argument("--duration", default="3")
ap.add_argument("--only", default="", help="run only cases whose name "
                "contains this text")
args = ap.parse_args()

MEMIF_EAL = ("--no-huge -m 512 --no-pci --no-telemetry --log-level=error "
             "--file-prefix {prefix} --vdev=net_memif0,role={role},"
             "socket={sock}")

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


def run_plain(bench, extra):
    cmd = [bench] + extra + ["--duration", args.duration, "--warmup", "1",
                             "--quiet"]
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        r = subprocess.run(cmd + ["--json", f.name], capture_output=True,
                           text=True, timeout=120)
        if r.returncode != 0:
            sys.exit("failed: %s\n%s" % (shlex.join(cmd), r.stderr))
        with open(f.name) as fh:
            return json.load(fh)


def run_memif(bench, extra):
    tag = "ab%d" % os.getpid()
    sock = "/tmp/%s.sock" % tag
    if os.path.exists(sock):
        os.unlink(sock)
    srv = subprocess.Popen(
        [bench, "server", "--dataplane", "dpdk", "--busy-poll", "--ip",
         "10.99.0.1", "--eal", MEMIF_EAL.format(prefix=tag + "s",
                                                role="server", sock=sock),
         "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True)
    time.sleep(1.5)
    try:
        return run_plain(bench, [
            "client", "--dataplane", "dpdk", "--busy-poll", "--ip",
            "10.99.0.2", "--connect", "10.99.0.1", "--eal",
            MEMIF_EAL.format(prefix=tag + "c", role="client", sock=sock)
        ] + extra)
    finally:
        srv.terminate()
        srv.communicate(timeout=15)
        if os.path.exists(sock):
            os.unlink(sock)


def run(bench, extra):
    if extra[:1] == ["memif"]:
        return run_memif(bench, extra[1:])
    return run_plain(bench, extra)


def main():
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
