#!/usr/bin/env python3
"""What tracing every call costs: ferry-bench's uring loop with
--trace-sample 1 (protobuf to a file) against the same loop untraced.

Each round runs, for each build given, the untraced loop then the traced
one, so the machine's drift hits both; a round's ratio is traced calls/s
over untraced.  Per run it also takes the process's CPU time (all threads,
the drain thread's included, from getrusage of the child), and states the
CPU a traced run spent beyond what its calls cost untraced, per span
exported.  Every traced run must account for every span (started =
exported + dropped) or the script stops.

  bench/trace_cost.py BENCH [BENCH ...] [--reps 5] [--inflight 64]
                      [--duration 3]

BENCH: ferry-bench binaries (e.g. a build before a change and one after).
"""
import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchrun  # noqa: E402  (bench/benchrun.py)

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("bench", nargs="+", help="ferry-bench binaries")
ap.add_argument("--reps", type=int, default=5)
ap.add_argument("--inflight", default="64")
ap.add_argument("--duration", default="3")
args = ap.parse_args()
tmp = tempfile.mkdtemp(prefix="ferry-trace-cost-")
out, spans = os.path.join(tmp, "run.json"), os.path.join(tmp, "spans.pb")


def run(bench, traced):
    """One run's --json report, with "_cpu": the process's CPU seconds."""
    cmd = [bench, "loop", "--inflight", args.inflight, "--duration",
           args.duration, "--quiet", "--json", out]
    if traced:
        cmd += ["--trace-sample", "1", "--trace-out", spans,
                "--trace-format", "protobuf", "--trace-max-bytes", "0"]
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       text=True, timeout=120)
    if p.returncode:
        sys.exit(f"{' '.join(cmd)}: exit {p.returncode}\n{p.stderr}")
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(out) as fh:
        rep = json.load(fh)
    if os.path.exists(spans):
        os.unlink(spans)
    rep["_cpu"] = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return rep


def main():
    benchrun.warn_if_busy()
    res = {b: {"ratio": [], "share": [], "ns": []} for b in args.bench}
    for i in range(args.reps):
        for b in args.bench:
            off, on = run(b, False), run(b, True)
            t = on["tracer"]
            if t["spans_started"] != t["spans_exported"] + t["spans_dropped"]:
                sys.exit(f"{b}: spans not accounted for: {t}")
            ratio = on["rps"] / off["rps"]
            share = t["spans_exported"] / max(t["spans_started"], 1)
            extra = on["_cpu"] - off["_cpu"] / off["completed"] * on["completed"]
            ns = extra / max(t["spans_exported"], 1) * 1e9
            for k, v in (("ratio", ratio), ("share", share), ("ns", ns)):
                res[b][k].append(v)
            print(f"round {i + 1} {b}: untraced {off['rps']:,.0f} calls/s, "
                  f"traced {on['rps']:,.0f} ({ratio:.3f}); spans exported "
                  f"{t['spans_exported']:,} of {t['spans_started']:,}, "
                  f"dropped for the budget {t['spans_dropped_budget']:,}; "
                  f"CPU {off['_cpu']:.2f} s / {on['_cpu']:.2f} s",
                  flush=True)
    print()
    print("| build | traced / untraced, median (rounds) | exported share |"
          " CPU per exported span |")
    print("|---|---|---|---|")
    for b in args.bench:
        r = res[b]
        print(f"| {b} | {statistics.median(r['ratio']):.3f} "
              f"({' '.join(f'{x:.3f}' for x in r['ratio'])}) | "
              f"{statistics.median(r['share']):.3f} | "
              f"{statistics.median(r['ns']):.0f} ns |")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
