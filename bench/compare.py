#!/usr/bin/env python3
"""Compare ferry with what users would pick instead (issue 13, item 5).

One invocation runs, interleaved, two-process figures of ferry (RPC and
floor, uring and DPDK memif) and of the comparison peers in bench/peers/
(a plain io_uring UDP echo, ZeroMQ DEALER/ROUTER, gRPC C++, a raw DPDK
echo), built from Debian packages by bench/peers/build.sh, and prints a
Markdown table of medians, the ratios issue 13 asks for, and the exact
commands.  Every server runs on CPU 0 and every client on CPU 1 (ferry-bench
and the peers pin themselves so by default); 32 B calls.

  bench/compare.py [--bench build/bench/ferry-bench] [--reps 3]
                   [--duration 2] [--quick] [--only TEXT] [--no-costs]

--quick runs each case once for 1 s (a smoke run of the script and the
peers).  Unless --no-costs (or --quick), it then measures per-call costs on
the uring path: datagrams (ferry's tx_pkts), syscalls (perf's
raw_syscalls:sys_enter) and CPU time (perf's task-clock, and cycles where
the machine has a PMU) for server and client.
"""
import argparse
import json
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchrun  # noqa: E402  (bench/benchrun.py)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--bench", default=os.path.join(ROOT, "build/bench/ferry-bench"))
ap.add_argument("--peers", default=os.path.join(ROOT, "build-peers"),
                help="where bench/peers/build.sh puts the peers")
ap.add_argument("--reps", type=int, default=3)
ap.add_argument("--duration", default="2")
ap.add_argument("--warmup", default="1")
ap.add_argument("--only", default="", help="run only cases whose group "
                "or name contains this text")
ap.add_argument("--quick", action="store_true",
                help="each case once for 1 s, no cost runs (a smoke run)")
ap.add_argument("--no-costs", action="store_true",
                help="skip the per-call cost runs (perf, strace)")
ap.add_argument("--no-build", action="store_true",
                help="do not run bench/peers/build.sh")
args = ap.parse_args()
if args.quick:
    args.reps, args.duration, args.warmup = 1, "1", "0.5"
    args.no_costs = True

# The figures' memif EAL (bench/benchrun.py), for ferry and the raw echo.
MEMIF_EAL = benchrun.MEMIF_EAL
TAG = "cmp%d" % os.getpid()
SOCK = "/tmp/%s.sock" % TAG
# Ports of our own, so a run beside someone else's ferry-bench (default
# 31850) does not meet it; each run gets a fresh one, since a socket
# registered with an io_uring (and a TCP listener) outlives its process
# for a moment.  Commands hold "PORT" until they run.
PORT = [20000 + os.getpid() % 20000]


def next_port():
    PORT[0] = PORT[0] + 1 if PORT[0] < 65000 else 20000
    return str(PORT[0])


def peer(name):
    return os.path.join(args.peers, name)


class Case:
    """A server and a client command; the client writes --json FILE."""

    def __init__(self, group, name, srv, cli, settle=0.5, memif=False):
        self.group, self.name = group, name
        self.srv, self.cli = srv, cli
        self.settle, self.memif = settle, memif
        self.runs = []   # the client's JSON, per rep (None: failed)
        self.port = "PORT"

    def cmds(self):
        """Server and client commands for a run, on a fresh port."""
        self.port = next_port()
        sub = lambda cmd: [self.port if x == "PORT" else x for x in cmd]
        return sub(self.srv), sub(self.cli)

    def shown(self):
        """The commands as a person would type them."""
        def short(cmd):
            c = [self.port if x == "PORT" else x for x in cmd]
            c[0] = os.path.basename(c[0])
            return shlex.join(c)
        return "`%s &` then `%s`" % (short(self.srv), short(self.cli))


def timing():
    return ["--duration", args.duration, "--warmup", args.warmup]


def memif(role, port):
    return ["--eal", MEMIF_EAL.format(prefix=TAG + role[0], role=role,
                                      sock=SOCK)]


def ferry(port, extra_srv, extra_cli, floor=False, dpdk=False):
    """ferry-bench server and client (two processes), or floor ones."""
    pre = ["floor"] if floor else []
    srv = [args.bench] + pre + ["server", "--port", str(port), "--quiet"]
    cli = [args.bench] + pre + ["client", "--port", str(port)]
    if dpdk:
        srv += ["--dataplane", "dpdk", "--busy-poll", "--ip", "10.99.0.1"] + \
            memif("server", port)
        cli += ["--dataplane", "dpdk", "--busy-poll", "--ip", "10.99.0.2",
                "--connect", "10.99.0.1"] + memif("client", port)
    return srv + extra_srv, cli + extra_cli + timing() + ["--quiet"]


def peer_cmds(name, port, extra_srv, extra_cli, dpdk=False):
    srv = [peer(name), "server", "--port", str(port)]
    cli = [peer(name), "client", "--port", str(port)]
    if dpdk:
        srv += ["--addr", "10.99.0.1"] + memif("server", port)
        cli += ["--addr", "10.99.0.1"] + memif("client", port)
    return srv + extra_srv, cli + extra_cli + timing()


G64 = "uring (kernel UDP/TCP), 32 B, 64 in flight, sleeping waits"
GMEM = "DPDK memif, 32 B, 64 in flight, busy-poll"
GLAT = "uring, 32 B, 1 in flight, sleeping waits"
GLATB = "uring, 32 B, 1 in flight, --busy-poll (both processes)"
GLATM = "DPDK memif, 32 B, 1 in flight, busy-poll"


def cases():
    out, port = [], "PORT"

    def add(group, name, cmds, **kw):
        out.append(Case(group, name, *cmds, **kw))

    w64 = ["--inflight", "64"]
    w1 = ["--inflight", "1"]
    bp = ["--busy-poll"]
    add(G64, "ferry RPC", ferry(port, [], w64))
    add(G64, "ferry floor", ferry(port, [], w64, floor=True))
    add(G64, "plain io_uring UDP echo",
        peer_cmds("uring-echo", port, [], w64))
    add(G64, "ZeroMQ, 1 connection", peer_cmds("zmq-echo", port, [], w64))
    add(G64, "ZeroMQ, 2 connections",
        peer_cmds("zmq-echo", port, [], w64 + ["--conns", "2"]))
    add(G64, "gRPC C++ callback", peer_cmds("grpc-echo", port, [], w64),
        settle=1.0)
    add(G64, "ferry RPC, 8 sessions",
        ferry(port, [], w64 + ["--sessions", "8"]))
    add(GMEM, "ferry RPC memif", ferry(port, [], w64, dpdk=True),
        settle=1.5, memif=True)
    add(GMEM, "ferry floor memif", ferry(port, [], w64, floor=True,
                                         dpdk=True),
        settle=1.5, memif=True)
    add(GMEM, "raw DPDK UDP echo", peer_cmds("dpdk-echo", port, [], w64,
                                             dpdk=True),
        settle=1.5, memif=True)
    add(GLAT, "ferry RPC", ferry(port, [], w1))
    add(GLAT, "plain io_uring UDP echo", peer_cmds("uring-echo", port, [],
                                                   w1))
    add(GLAT, "ZeroMQ, 1 connection", peer_cmds("zmq-echo", port, [], w1))
    add(GLAT, "gRPC C++ callback", peer_cmds("grpc-echo", port, [], w1),
        settle=1.0)
    add(GLATB, "ferry RPC", ferry(port, bp, w1 + bp))
    add(GLATB, "plain io_uring UDP echo",
        peer_cmds("uring-echo", port, bp, w1 + bp))
    add(GLATM, "ferry RPC memif", ferry(port, [], w1, dpdk=True),
        settle=1.5, memif=True)
    add(GLATM, "raw DPDK UDP echo", peer_cmds("dpdk-echo", port, [], w1,
                                              dpdk=True),
        settle=1.5, memif=True)
    return [c for c in out if args.only in c.group or args.only in c.name]


def stop(p, timeout=15):
    """Stops a server we started (by its own pid) and reaps it."""
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def clean_sock():
    if os.path.exists(SOCK):
        os.unlink(SOCK)


def run_case(c, cli_extra=(), srv_extra=(), wrap_cli=(), on_server=None):
    """One run: the server, then the client; returns the client's JSON (or
    None after saying why), and what on_server(pid) returned."""
    clean_sock()
    srv_cmd, cli_cmd = c.cmds()
    srv = subprocess.Popen(srv_cmd + list(srv_extra),
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
    time.sleep(c.settle)
    attached = on_server(srv.pid) if on_server else None
    fd, path = tempfile.mkstemp(suffix=".json", prefix=TAG)
    os.close(fd)
    try:
        r = subprocess.run(list(wrap_cli) + cli_cmd + list(cli_extra) +
                           ["--json", path], capture_output=True, text=True,
                           timeout=float(args.duration) +
                           float(args.warmup) + 60)
        d = None
        if r.returncode == 0 and os.path.getsize(path):
            d = json.load(open(path))
        else:
            print("  FAILED (%d): %s\n%s" % (r.returncode, c.shown(),
                                             r.stderr[-2000:]),
                  file=sys.stderr)
    finally:
        stop(srv)
        os.unlink(path)
        clean_sock()
    return d, attached


LOADS = []


def measure(cs):
    """REPS rounds; each round runs every case once, in order, so drift
    hits all of them alike and a round's cases can be paired."""
    for rep in range(args.reps):
        # The machine may be shared: say how busy it was, round by round.
        LOADS.append(open("/proc/loadavg").read().split()[0])
        for c in cs:
            d, _ = run_case(c)
            c.runs.append(d)
            if d:
                print("  rep %d %-55s %-26s %10.0f calls/s p50 %8.1f us" % (
                    rep + 1, c.group[:55], c.name, d["rps"], d["p50_us"]),
                    file=sys.stderr)


def med(c, key):
    v = [d[key] for d in c.runs if d]
    return statistics.median(v) if v else float("nan")


def find(cs, group, name):
    for c in cs:
        if c.group == group and c.name == name:
            return c
    return None


def paired(a, b, key, combine_b=None):
    """The median over rounds of a[key] / b[key] (b may be a list of cases,
    whose best in each round is taken)."""
    bs = b if isinstance(b, list) else [b]
    if a is None or any(x is None for x in bs):
        return None, []
    vals = []
    for i, da in enumerate(a.runs):
        db = [x.runs[i] for x in bs if i < len(x.runs) and x.runs[i]]
        if not da or len(db) != len(bs):
            continue
        base = max(d[key] for d in db)
        if base:
            vals.append(da[key] / base)
    return (statistics.median(vals) if vals else None), vals


RATIOS = [
    # (label, group, test, group, base(s), key, target, "higher"/"lower")
    ("ferry uring RPC / ZeroMQ 1 connection (64 in flight)", G64,
     "ferry RPC", G64, ["ZeroMQ, 1 connection"], "rps", 2.0, "higher"),
    ("ferry uring RPC / plain io_uring echo", G64, "ferry RPC", G64,
     ["plain io_uring UDP echo"], "rps", 2.0, "higher"),
    ("ferry uring RPC, 8 sessions / ZeroMQ best of 1 and 2 connections",
     G64, "ferry RPC, 8 sessions", G64,
     ["ZeroMQ, 1 connection", "ZeroMQ, 2 connections"], "rps", 1.3,
     "higher"),
    ("ferry uring RPC / gRPC", G64, "ferry RPC", G64, ["gRPC C++ callback"],
     "rps", 15.0, "higher"),
    ("ferry uring floor / plain io_uring echo (context)", G64, "ferry floor",
     G64, ["plain io_uring UDP echo"], "rps", None, "higher"),
    ("ferry memif RPC / raw DPDK echo", GMEM, "ferry RPC memif", GMEM,
     ["raw DPDK UDP echo"], "rps", 1.3, "higher"),
    ("ferry memif floor / raw DPDK echo (context)", GMEM,
     "ferry floor memif", GMEM, ["raw DPDK UDP echo"], "rps", None,
     "higher"),
    ("1 in flight, sleeping: ferry p50 / plain echo p50", GLAT, "ferry RPC",
     GLAT, ["plain io_uring UDP echo"], "p50_us", 1.1, "lower"),
    ("1 in flight, busy-poll: ferry p50 / plain echo p50", GLATB,
     "ferry RPC", GLATB, ["plain io_uring UDP echo"], "p50_us", 1.2,
     "lower"),
    ("1 in flight, memif: ferry p50 / raw DPDK echo p50", GLATM,
     "ferry RPC memif", GLATM, ["raw DPDK UDP echo"], "p50_us", 1.3,
     "lower"),
]


def report(cs):
    print("| figure | path | calls/s (median) | p50 µs | p99 µs | runs (calls/s) |")
    print("|---|---|---|---|---|---|")
    for c in cs:
        runs = ", ".join("%.0f" % d["rps"] if d else "failed"
                         for d in c.runs)
        print("| %s | %s | %.0f | %.1f | %.1f | %s |" % (
            c.group, c.name, med(c, "rps"), med(c, "p50_us"),
            med(c, "p99_us"), runs))
    print()
    print("Load average (1 min) at the start of each round: %s." %
          ", ".join(LOADS))
    print()
    print("| ratio (median of per-round ratios) | value | per round | issue 13 asks | met today |")
    print("|---|---|---|---|---|")
    for label, ga, a, gb, bs, key, target, better in RATIOS:
        r, per = paired(find(cs, ga, a), [find(cs, gb, b) for b in bs], key)
        if r is None:
            continue
        ask = "-" if target is None else \
            ("%s %.1f" % (">=" if better == "higher" else "<=", target))
        met = "-" if target is None else \
            ("yes" if (r >= target if better == "higher" else r <= target)
             else "no")
        print("| %s | %.3f | %s | %s | %s |" % (
            label, r, ", ".join("%.2f" % x for x in per), ask, met))
    print()
    print("Commands (each client also `--json FILE`; %d rounds of %s s "
          "after %s s of warm-up):" % (args.reps, args.duration,
                                       args.warmup))
    print()
    for c in cs:
        print("- %s, %s: %s" % (c.group, c.name, c.shown()))


# --- per-call costs ---------------------------------------------------------

def perf_events():
    """task-clock and syscall counts always; cycles where there is a PMU."""
    if not shutil.which("perf"):
        return None
    ev = ["task-clock", "raw_syscalls:sys_enter"]
    r = subprocess.run(["perf", "stat", "-x,", "-e", "cycles", "true"],
                       capture_output=True, text=True)
    if r.returncode == 0 and "<not" not in r.stderr:
        ev.append("cycles")
    r = subprocess.run(["perf", "stat", "-x,", "-e", ev[1], "true"],
                       capture_output=True, text=True)
    if r.returncode != 0 or "<not" in r.stderr:
        ev.remove(ev[1])
    return ev


def perf_read(path):
    """perf stat -x, output: {event: value}."""
    out = {}
    for line in open(path):
        f = line.strip().split(",")
        if len(f) > 2 and f[0] and f[0][0].isdigit():
            out[f[2]] = float(f[0])
    return out


def costs(cs):
    ev = perf_events()
    if ev is None:
        print("\n(per-call costs skipped: no perf; apt-get install "
              "linux-perf)")
        return
    want = [(G64, "ferry RPC"), (G64, "ferry floor"),
            (G64, "plain io_uring UDP echo"), (G64, "ZeroMQ, 1 connection"),
            (G64, "gRPC C++ callback"), (G64, "ferry RPC, 8 sessions"),
            (GLAT, "ferry RPC"), (GLAT, "plain io_uring UDP echo"),
            (GMEM, "ferry RPC memif"), (GMEM, "raw DPDK UDP echo")]
    rows = []
    for g, n in want:
        c = find(cs, g, n)
        if c is None:
            continue
        print("== costs: %s, %s" % (g, n), file=sys.stderr)
        d = tempfile.mkdtemp(prefix=TAG)
        sp, cp = os.path.join(d, "srv"), os.path.join(d, "cli")
        sj = os.path.join(d, "srv.json")
        holder = {}

        def attach(pid):
            holder["p"] = subprocess.Popen(
                ["perf", "stat", "-x,", "-e", ",".join(ev), "-p", str(pid),
                 "-o", sp], stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
            time.sleep(0.2)
        # By the case, not the binary's name: --bench may name a copy.
        ferry_srv = n.startswith("ferry") and "floor" not in n
        res, _ = run_case(
            c, cli_extra=["--warmup", "0"],
            srv_extra=["--json", sj, "--warmup", "0"] if ferry_srv else [],
            wrap_cli=["perf", "stat", "-x,", "-e", ",".join(ev), "-o", cp,
                      "--"], on_server=attach)
        p = holder.get("p")
        if p:
            p.send_signal(signal.SIGINT)
            p.wait(timeout=10)
        if not res:
            continue
        n_calls = res["completed"] or 1
        ps, pc = perf_read(sp), perf_read(cp)
        dg = None
        if "floor" in n:
            dg, retr = 2.0, 0  # the floor has no endpoint counters
        elif ferry_srv and os.path.exists(sj):
            s = json.load(open(sj))
            dg = (res["tx_pkts"] + s["tx_pkts"]) / n_calls
            retr = res["retransmits"] + s["retransmits"]
        elif "echo" in n:
            dg, retr = 2.0, 0  # one datagram each way, by construction
        else:
            retr = 0
        rows.append((g, n, res["rps"], dg, retr, ps, pc, n_calls))
        shutil.rmtree(d, ignore_errors=True)
    cost_table(rows, ev)


def cost_table(rows, ev):
    cyc = "cycles" in ev
    print()
    print("Per-call costs (one run each, `--warmup 0`, per call completed; "
          "server and client processes counted with perf stat; on memif "
          "both processes busy-poll, so their CPU time is wall time):")
    print()
    print("| figure | path | calls/s | datagrams per call (both ways) | "
          "retransmits | syscalls per call, server / client | CPU µs per "
          "call, server / client |%s" % (" cycles per call, server / "
                                         "client |" if cyc else ""))
    print("|---|---|---|---|---|---|---|%s" % ("---|" if cyc else ""))
    for g, n, rps, dg, retr, ps, pc, calls in rows:
        def per(m, k, scale=1.0):
            return "%.2f" % (m[k] * scale / calls) if k in m else "?"
        line = "| %s | %s | %.0f | %s | %d | %s / %s | %s / %s |" % (
            g, n, rps, "%.2f" % dg if dg is not None else "-", retr,
            per(ps, "raw_syscalls:sys_enter"),
            per(pc, "raw_syscalls:sys_enter"),
            per(ps, "task-clock", 1e3), per(pc, "task-clock", 1e3))
        if cyc:
            line += " %s / %s |" % (per(ps, "cycles"), per(pc, "cycles"))
        print(line)


def main():
    if not args.no_build:
        r = subprocess.run(["sh", os.path.join(HERE, "peers", "build.sh"),
                            args.peers], stdout=subprocess.DEVNULL)
        if r.returncode != 0:
            sys.exit("bench/peers/build.sh failed")
    if not os.path.exists(args.bench):
        sys.exit("%s: not built (./dev build)" % args.bench)
    busy = benchrun.warn_if_busy()
    cs = cases()
    print("# %s, commit %s, %d rounds x %s s" % (
        time.strftime("%Y-%m-%d %H:%M"),
        subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                       capture_output=True, text=True).stdout.strip(),
        args.reps, args.duration))
    if busy is not None:
        print("CPU busy before the runs: %.0f %%." % (100 * busy))
    print()
    measure(cs)
    report(cs)
    if not args.no_costs:
        costs(cs)
    failed = sum(1 for c in cs for d in c.runs if d is None)
    if failed:
        print("\n%d runs failed" % failed)
        sys.exit(1)


main()
