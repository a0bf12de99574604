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
                      [--duration 3] [--sink file|down|503|200 ...]

BENCH: ferry-bench binaries (e.g. a build before a change and one after).
--sink (repeatable; default file): where the traced runs send their spans,
each a traced run of its own per round: "file", protobuf to a file;
"down", OTLP/HTTP to a port where nothing listens; "503" and "200",
OTLP/HTTP to a receiver in this script that reads each request whole and
answers 503 (retry later) or 200.
"""
import argparse
import http.server
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import socket
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchrun  # noqa: E402  (bench/benchrun.py)

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("bench", nargs="+", help="ferry-bench binaries")
ap.add_argument("--reps", type=int, default=5)
ap.add_argument("--inflight", default="64")
ap.add_argument("--duration", default="3")
ap.add_argument("--sink", action="append",
                choices=["file", "down", "503", "200"])
args = ap.parse_args()
args.sink = args.sink or ["file"]
tmp = tempfile.mkdtemp(prefix="ferry-trace-cost-")
out, spans = os.path.join(tmp, "run.json"), os.path.join(tmp, "spans.pb")


def receiver(status):
    """A collector's stand-in answering @status to every POST, on a thread;
    returns its port."""
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0"))
            while n > 0:
                n -= len(self.rfile.read(min(n, 1 << 16)) or b"x" * n)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a):
            pass
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv.server_address[1]


def dead_port():
    """A loopback port where nothing listens."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


PORTS = {}


def sink_args(sink):
    if sink == "file":
        return ["--trace-out", spans, "--trace-format", "protobuf",
                "--trace-max-bytes", "0"]
    if sink not in PORTS:
        PORTS[sink] = dead_port() if sink == "down" else receiver(int(sink))
    return ["--otlp-endpoint", f"http://127.0.0.1:{PORTS[sink]}/v1/traces"]


def run(bench, sink):
    """One run's --json report, with "_cpu": the process's CPU seconds;
    @sink None: untraced.  Not benchrun.run(): that one warms up for 1 s,
    whose CPU getrusage would count but "completed" would not."""
    cmd = [bench, "loop", "--inflight", args.inflight, "--duration",
           args.duration, "--quiet", "--json", out]
    if sink:
        cmd += ["--trace-sample", "1"] + sink_args(sink)
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
    runs = [(b, k) for b in args.bench for k in args.sink]
    res = {r: {"ratio": [], "share": [], "ns": [], "otlp": []} for r in runs}
    for i in range(args.reps):
        for b in args.bench:
            off = run(b, None)
            for k in args.sink:
                on = run(b, k)
                t = on["tracer"]
                if (t["spans_started"] !=
                        t["spans_exported"] + t["spans_dropped"]):
                    sys.exit(f"{b}: spans not accounted for: {t}")
                ratio = on["rps"] / off["rps"]
                share = t["spans_exported"] / max(t["spans_started"], 1)
                extra = (on["_cpu"] -
                         off["_cpu"] / off["completed"] * on["completed"])
                ns = extra / max(t["spans_exported"], 1) * 1e9
                otlp = (f"; OTLP sent {t['otlp_spans_sent']:,}, dropped "
                        f"{t['otlp_spans_dropped']:,}, requests "
                        f"{t['otlp_requests']:,}" if k != "file" else "")
                for key, v in (("ratio", ratio), ("share", share),
                               ("ns", ns)):
                    res[(b, k)][key].append(v)
                res[(b, k)]["otlp"].append(otlp)
                print(f"round {i + 1} {b} ({k}): untraced "
                      f"{off['rps']:,.0f} calls/s, traced {on['rps']:,.0f} "
                      f"({ratio:.3f}); spans exported "
                      f"{t['spans_exported']:,} of {t['spans_started']:,}, "
                      f"dropped for the budget "
                      f"{t['spans_dropped_budget']:,}{otlp}; CPU "
                      f"{off['_cpu']:.2f} s / {on['_cpu']:.2f} s", flush=True)
    print()
    print("| build | spans to | traced / untraced, median (rounds) |"
          " exported share | CPU per exported span |")
    print("|---|---|---|---|---|")
    for (b, k), r in res.items():
        print(f"| {b} | {k} | {statistics.median(r['ratio']):.3f} "
              f"({' '.join(f'{x:.3f}' for x in r['ratio'])}) | "
              f"{statistics.median(r['share']):.3f} | "
              f"{statistics.median(r['ns']):.0f} ns |")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
