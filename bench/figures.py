#!/usr/bin/env python3
"""Measure the figures docs/bench.md records: RPC against the floor.

Runs ferry-bench floor and RPC alternately, REPS times each, in one
invocation on one machine, and prints a Markdown table of medians and
ratios with the exact command lines.  Performance targets live here and in
docs/bench.md, never in timed unit tests.

  bench/figures.py [--bench build/bench/ferry-bench] [--reps 5] [--quick]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchrun  # noqa: E402  (bench/benchrun.py)

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--bench", default="build/bench/ferry-bench")
ap.add_argument("--reps", type=int, default=5)
ap.add_argument("--duration", default="3")
ap.add_argument("--only", default="",
                help="run only figures whose name contains this text")
ap.add_argument("--quick", action="store_true",
                help="1 repetition of 1 s each (a smoke run)")
args = ap.parse_args()
if args.quick:
    args.reps, args.duration = 1, "1"


def run(extra):
    """One run: a loop (or floor loop) process, or with "memif" first a
    DPDK server and client pair (bench/benchrun.py)."""
    return benchrun.run(args.bench, extra, args.duration)


def pair(common, metric, base=None, test=None):
    """Median of REPS base and test runs (by default the floor and the RPC
    path), alternated so drift hits both."""
    base = base if base is not None else ["floor", "loop"] + common
    test = test if test is not None else ["loop"] + common
    fl, rp, last = [], [], None
    for i in range(args.reps):
        d, cf = run(base)
        fl.append(d)
        d, cr = run(test)
        rp.append(d)
        last = (cf, cr)
        print("  rep %d: base %s=%.2f  test %s=%.2f" % (
            i + 1, metric, fl[-1][metric], metric, rp[-1][metric]),
            file=sys.stderr)
    med = lambda runs, k: statistics.median(r[k] for r in runs)
    return med(fl, metric), med(rp, metric), last, fl, rp


rows = []


def figure(name, common, metric, target, better, base=None, test=None):
    if args.only not in name:
        return
    print("== " + name, file=sys.stderr)
    f, r, cmds, fl, rp = pair(common, metric, base, test)
    # Each RPC run is compared with the floor run just before it: the two
    # share the machine's state (a shared VM drifts between runs), so the
    # median of those paired ratios is what the target is judged on.
    ratio = statistics.median(b[metric] / a[metric] for a, b in zip(fl, rp)
                              if a[metric])
    ok = ratio >= target if better == "higher" else ratio <= target
    rows.append((name, metric, f, r, ratio,
                 ("%s %.2f" % (">=" if better == "higher" else "<=", target)),
                 "yes" if ok else "NO", cmds, fl, rp))


figure("32 B, 1 session, 64 in flight", ["--inflight", "64"], "rps", 0.85,
       "higher")
figure("32 B, 1 in flight (sleeping waits)", ["--inflight", "1"], "p50_us",
       1.2, "lower")
figure("32 B, 1 in flight, --busy-poll, client and server on two cores",
       ["--inflight", "1", "--busy-poll"], "p50_us", 1.2, "lower")
figure("1 MiB, 8 in flight, 8 KiB frames", ["--size", "1M", "--inflight", "8"],
       "gbps", 0, "higher")
figure("1 MiB, 8 in flight, 64 KiB frames",
       ["--size", "1M", "--inflight", "8", "--max-frame", "65000"], "gbps", 0,
       "higher")

loss_common = ["--sessions", "8", "--inflight", "64", "--size", "1K"]
figure("1 KiB, 8 sessions x 64 in flight: 1% loss against none (base = 0% loss)",
       loss_common, "rps", 0.5, "higher",
       base=["loop"] + loss_common, test=["loop", "--loss", "0.01"] + loss_common)
big_common = ["--sessions", "2", "--inflight", "4", "--size", "1M"]
figure("1 MiB, 2 sessions x 4 in flight: 1% loss against none (base = 0% loss)",
       big_common, "gbps", 0.5, "higher",
       base=["loop"] + big_common, test=["loop", "--loss", "0.01"] + big_common)

# DPDK (issue 4): two processes over net_memif, busy-polling (poll mode is
# DPDK's only mode), against the DPDK floor and against the uring RPC path.
figure("DPDK memif, 32 B, 64 in flight (base = DPDK floor)",
       ["--inflight", "64"], "rps", 0.5, "higher",
       base=["memif", "floor", "--inflight", "64"],
       test=["memif", "--inflight", "64"])
figure("DPDK memif RPC against uring RPC (loop), 32 B, 64 in flight "
       "(base = uring RPC)",
       ["--inflight", "64"], "rps", 3.0, "higher",
       base=["loop", "--inflight", "64"],
       test=["memif", "--inflight", "64"])
figure("DPDK memif, 32 B, 1 in flight (base = DPDK floor)",
       ["--inflight", "1"], "p50_us", 2.0, "lower",
       base=["memif", "floor", "--inflight", "1"],
       test=["memif", "--inflight", "1"])

# Deferred tokens (issue 6): half the calls carry their two --caps tokens as
# IOUs, each issued by the delayed issuer after 0..200 us, against every call
# carrying them inline; throughput mode (the issuer hands over the tokens
# issued at start; the server verifies every token once, pushed ones on
# arrival).  The issuer completes on the client thread, from its poll loop
# (the default), or with --issuer-thread on a thread of its own (for
# comparison).  Needs the control plane: a keyring is made with ferryctl.
def keyring():
    ctl = os.path.join(os.path.dirname(os.path.abspath(args.bench)), "..",
                       "control", "ferryctl")
    path = os.path.join(tempfile.mkdtemp(prefix="ferry-fig-"), "k.kr")
    subprocess.run([ctl, "--keyring", path, "key", "new"], check=True,
                   capture_output=True)
    return path


DEFERRED = [
    ("uring loop, 32 B, 64 in flight, --caps 2: --deferred 0.5 against "
     "--deferred 0 (base = --deferred 0)", "loop", []),
    ("DPDK memif, 32 B, 64 in flight, --caps 2: --deferred 0.5 against "
     "--deferred 0 (base = --deferred 0)", "memif", []),
    ("uring loop, 32 B, 64 in flight, --caps 2, --issuer-thread: --deferred "
     "0.5 against --deferred 0 (base = --deferred 0)", "loop",
     ["--issuer-thread"]),
    ("DPDK memif, 32 B, 64 in flight, --caps 2, --issuer-thread: --deferred "
     "0.5 against --deferred 0 (base = --deferred 0)", "memif",
     ["--issuer-thread"]),
]
if any(args.only in name for name, _, _ in DEFERRED):
    kr = keyring()
    dcommon = ["--inflight", "64", "--keyring", kr, "--caps", "2"]
    for name, where, mode in DEFERRED:
        figure(name, dcommon, "rps", 0.8, "higher",
               base=[where, "--deferred", "0"] + dcommon,
               test=[where, "--deferred", "0.5"] + mode + dcommon)


def per_call(d):
    """A deferred run's cost per call made (warm-up included): CPU us per
    role (the issuer's own when it has a thread; on the client threads it
    is part of the client's), datagrams (both ways), retransmits."""
    n = d.get("table_calls") or 1
    cpu = d.get("cpu_s", {})
    dg = d["tx_pkts"] if d["mode"] == "loop" else d["tx_pkts"] + d["rx_pkts"]
    return {"server": cpu.get("server", 0) * 1e6 / n,
            "client": cpu.get("client", 0) * 1e6 / n,
            "issuer": cpu.get("issuer", 0) * 1e6 / n,
            "dgrams": dg / n, "retrans": d["retransmits"],
            "late": d.get("issuer", {}).get("late_mean_us", 0)}

print("| figure | metric | base (median) | test (median) | test / base (median of paired runs) | target | met |")
print("|---|---|---|---|---|---|---|")
for name, metric, f, r, ratio, target, ok, cmds, fl, rp in rows:
    print("| %s | %s | %.2f | %.2f | %.3f | %s | %s |" % (
        name, metric, f, r, ratio, target if "0.00" not in target else "-",
        ok if "0.00" not in target else "-"))
print()
for name, metric, f, r, ratio, target, ok, cmds, fl, rp in rows:
    extra = ""
    if metric == "gbps":
        extra = "; RPC copies per delivered byte %.4f" % statistics.median(
            x["copies_per_byte"] for x in rp)
    if metric == "p50_us":
        extra = "; p99 floor %.1f us, RPC %.1f us" % (
            statistics.median(x["p99_us"] for x in fl),
            statistics.median(x["p99_us"] for x in rp))
    print("- %s: `%s` vs `%s`, %d runs of %s s each%s" % (
        name, cmds[0], cmds[1], args.reps, args.duration, extra))
    print("  - pairs (base/test, ratio): " + ", ".join(
        "%.0f/%.0f (%.3f)" % (a[metric], b[metric],
                              b[metric] / a[metric] if a[metric] else 0)
        for a, b in zip(fl, rp)))
    if "--deferred" in name:
        for tag, runs in (("base", fl), ("test", rp)):
            pc = [per_call(x) for x in runs]
            m = lambda k: statistics.median(x[k] for x in pc)
            print("  - %s per call (medians): server %.2f us, client %.2f us,"
                  " issuer %.2f us, %.2f datagrams, %d retransmits, issuer "
                  "late by %.0f us" % (tag, m("server"), m("client"),
                                       m("issuer"), m("dgrams"),
                                       m("retrans"), m("late")))
