#!/usr/bin/env python3
"""What protecting every datagram costs: --wire-mode none, mac and aead,
32 B calls, 64 in flight, on the uring loop and on DPDK memif (two
processes; both ends get the mode, since a session runs in the stronger
of its ends' modes).

Each round runs the modes one after the other for each case, so the
machine's drift hits all of them; the table gives each mode's median
calls/s and the median over rounds of its ratio to "none" in the same
round.  `mac` and `aead` run in the suite the ends settle on (AES-256-GCM
where the CPU has it, docs/wire.md 2.3); with --chacha they run a second
time with FERRY_NO_AESGCM=1 in both processes' environment, in
ChaCha20-Poly1305.

  bench/wire_modes.py [--bench build/bench/ferry-bench] [--reps 3]
                      [--duration 3] [--only uring|memif] [--chacha]
"""
import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchrun  # noqa: E402  (bench/benchrun.py)

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--bench", default="build/bench/ferry-bench")
ap.add_argument("--reps", type=int, default=3)
ap.add_argument("--duration", default="3")
ap.add_argument("--only", default="", help="run only cases whose name "
                "contains this text")
ap.add_argument("--chacha", action="store_true", help="mac and aead again "
                "with the ChaCha20-Poly1305 suite (FERRY_NO_AESGCM=1)")
args = ap.parse_args()

CASES = [
    ("uring loop, 64 in flight", ["loop", "--inflight", "64"]),
    ("memif, 64 in flight", ["memif", "--inflight", "64"]),
]
MODES = ["none", "mac", "aead"] + (["mac/chacha20", "aead/chacha20"]
                                   if args.chacha else [])


def run_mode(extra, m):
    """One run in mode @m ("mac/chacha20": mac, FERRY_NO_AESGCM=1)."""
    mode, _, suite = m.partition("/")
    if suite:
        os.environ["FERRY_NO_AESGCM"] = "1"
    try:
        return benchrun.run(args.bench, extra + ["--wire-mode", mode],
                            args.duration, timeout=120)
    finally:
        os.environ.pop("FERRY_NO_AESGCM", None)


def main():
    benchrun.warn_if_busy()
    rows = []
    for name, extra in CASES:
        if args.only not in name:
            continue
        rps = {m: [] for m in MODES}
        ratio = {m: [] for m in MODES}
        shown = {}
        for i in range(args.reps):
            got = {}
            for m in MODES:
                rep, shown[m] = run_mode(extra, m)
                if rep.get("errors"):
                    sys.exit(f"{name} {m}: {rep['errors']} calls failed")
                got[m] = rep["rps"]
                rps[m].append(rep["rps"])
            for m in MODES:
                ratio[m].append(got[m] / got["none"])
            print(f"round {i + 1}, {name}: " + ", ".join(
                f"{m} {got[m]:,.0f}" for m in MODES), flush=True)
        for m in MODES:
            rows.append((name, m, statistics.median(rps[m]),
                         statistics.median(ratio[m]), ratio[m], shown[m]))
    print()
    print("| case | mode | calls/s, median | / none, median of rounds "
          "(rounds) |")
    print("|---|---|---|---|")
    for name, m, r, q, qs, _ in rows:
        print(f"| {name} | {m} | {r:,.0f} | {q:.2f} "
              f"({' '.join(f'{x:.2f}' for x in qs)}) |")
    print()
    for name, m, _, _, _, cmd in rows:
        env = "FERRY_NO_AESGCM=1 (both processes) " if "/" in m else ""
        print(f"{name}, {m}: {env}{cmd}")


if __name__ == "__main__":
    main()
