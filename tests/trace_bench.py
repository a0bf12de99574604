#!/usr/bin/env python3
"""Session spans as ferry-bench records them, on real endpoints.

Usage: trace_bench.py PATH/TO/ferry-bench [dpdk]
Prints TAP; exits non-zero if any check fails.

  - `ferry-bench loop --trace-out F --trace-sample 1` over uring (and over
    DPDK on a loopback ring port when "dpdk" is given): the file parses as
    OTLP/JSON (every line checked by otlp_check.load against the protobuf
    JSON mapping); every span is closed; span ids are unique; every server
    session span's parent is a client session span of the same trace; every
    call span's parent is a session span; the clean sessions end UNSET.
  - `--trace-sample 0.5`: about half the calls get spans; each server
    call span is its client call span's child, one for one.
  - With "dpdk", also two processes over net_memif, each writing its own
    export: read together, they form the same tree.
  - `--trace-max-sps 100 --json`: the calls past the limit get no span
    and are counted; the summary's "tracer" balances (started = exported
    + dropped) and the file holds the spans it says were exported.
  - A client killed mid-run: the server (a separate process) closes that
    session's span with status ERROR.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import otlp_check  # noqa: E402

BENCH = sys.argv[1]
DPDK = len(sys.argv) > 2 and sys.argv[2] == "dpdk"
TMP = tempfile.mkdtemp(prefix="ferry-trace-")
results = []


def check(name, cond, detail=""):
    results.append((name, bool(cond), detail))


def tree(name, *paths):
    spans, errs = [], []
    for path in paths:
        sp, er = otlp_check.load(path)
        spans += sp
        errs += er
    check(name + ": OTLP/JSON lines valid", not errs and spans,
          "\n".join(errs[:10]))
    if not spans:
        return []
    ids = [s["spanId"] for s in spans]
    check(name + ": span ids unique", len(ids) == len(set(ids)))
    check(name + ": every span closed (has an end)",
          all(s.get("endTimeUnixNano") for s in spans))
    by_id = {s["spanId"]: s for s in spans}
    sess = [s for s in spans if s["name"] == "ferry.session"]
    cli = [s for s in sess if s["kind"] == 3]
    srv = [s for s in sess if s["kind"] == 2]
    check(name + ": client and server session spans", cli and srv,
          "%d client, %d server" % (len(cli), len(srv)))
    bad = [s["spanId"] for s in srv
           if by_id.get(s.get("parentSpanId"), {}).get("kind") != 3 or
           by_id[s["parentSpanId"]]["traceId"] != s["traceId"]]
    check(name + ": server session span is the client session span's child",
          not bad, "orphans: %s" % bad[:5])
    calls = [s for s in spans if s["name"] != "ferry.session"]
    bad = [s["spanId"] for s in calls
           if by_id.get(s.get("parentSpanId"), {}).get("name") !=
           "ferry.session"]
    check(name + ": call spans under their session span", calls and not bad,
          "%d calls, %d orphans" % (len(calls), len(bad)))
    return spans


def loop(name, extra):
    out = os.path.join(TMP, name.replace(" ", "_") + ".jsonl")
    # --trace-budget 0: the checks need every span (a CPU budget may drop
    # some whole, their children then have no parent in the file).
    r = subprocess.run([BENCH, "loop", "--trace-out", out, "--trace-sample",
                        "1", "--trace-budget", "0", "--sessions", "2",
                        "--inflight", "4",
                        "--duration", "0.4", "--warmup", "0.1", "--quiet"] +
                       extra, capture_output=True, text=True, timeout=120)
    check(name + ": exit 0", r.returncode == 0, r.stderr[-400:])
    spans = tree(name, out)
    sess = [s for s in spans if s["name"] == "ferry.session"]
    check(name + ": clean sessions end without error",
          sess and all(s["status"]["code"] != 2 for s in sess),
          str([s["status"] for s in sess][:4]))


loop("uring loop", [])


def sampled(name, extra):
    """--trace-sample 0.5: each call drawn on its own.  A sampled client
    call carries its own context (a trace block, docs/wire.md section 8),
    so its server call span is its child; the server samples nothing
    else."""
    out = os.path.join(TMP, name.replace(" ", "_") + ".jsonl")
    r = subprocess.run([BENCH, "loop", "--trace-out", out, "--trace-sample",
                        "0.5", "--trace-budget", "0", "--inflight", "4", "--duration", "0.4",
                        "--warmup", "0.1", "--quiet"] + extra,
                       capture_output=True, text=True, timeout=120)
    check(name + ": exit 0", r.returncode == 0, r.stderr[-400:])
    spans, errs = otlp_check.load(out)
    check(name + ": OTLP/JSON lines valid", spans and not errs,
          "\n".join(errs[:5]))
    by_id = {s["spanId"]: s for s in spans}
    calls = [s for s in spans if s["name"] != "ferry.session"]
    ccalls = [s for s in calls if s["kind"] == 3]
    scalls = [s for s in calls if s["kind"] == 2]
    m = re.search(r"(\d+) completed", r.stderr + r.stdout)
    done = int(m.group(1)) if m else 0
    # Calls made in the warmup count too: compare with all calls made,
    # which the client spans bound from below.
    check(name + ": about half the calls sampled",
          done and 0.35 * done < len(ccalls) < 0.75 * (done + 1000),
          "%d client call spans, %d calls completed in the measured time"
          % (len(ccalls), done))
    bad = [s["spanId"] for s in scalls
           if by_id.get(s.get("parentSpanId"), {}).get("kind") != 3 or
           by_id[s["parentSpanId"]]["name"] == "ferry.session" or
           by_id[s["parentSpanId"]]["traceId"] != s["traceId"]]
    check(name + ": every server call span is its client call span's child",
          scalls and not bad, "%d server calls, %d not: %s"
          % (len(scalls), len(bad), bad[:3]))
    kids = [s["parentSpanId"] for s in scalls]
    lone = [c["spanId"] for c in ccalls if c["spanId"] not in set(kids)]
    # Calls still in flight when the client stops may never have reached
    # the server: at most --inflight of them.
    check(name + ": one server call span per sampled client call",
          len(kids) == len(set(kids)) and len(lone) <= 4,
          "%d client, %d server, %d without a server span"
          % (len(ccalls), len(scalls), len(lone)))


sampled("uring sampled", [])
if DPDK:
    loop("dpdk loop", ["--dataplane", "dpdk", "--ip", "10.0.0.1", "--eal",
                       "--no-huge -m 256 --no-pci --no-telemetry "
                       "--log-level=error --file-prefix tr%d "
                       "--vdev=net_ring0" % os.getpid()])

if DPDK:
    # Two processes over net_memif, each exporting its own file: the server
    # session span in one is the child of the client session span in the
    # other.
    sock = os.path.join(TMP, "m.sock")
    eal = ("--no-huge -m 256 --no-pci --no-telemetry --log-level=error "
           "--file-prefix trm%d{0} --vdev=net_memif0,role={1},socket=%s"
           % (os.getpid(), sock))
    sf, cf = os.path.join(TMP, "ms.jsonl"), os.path.join(TMP, "mc.jsonl")
    srv = subprocess.Popen([BENCH, "server", "--dataplane", "dpdk", "--ip",
                            "10.97.0.1", "--eal", eal.format("s", "server"),
                            "--trace-out", sf, "--trace-budget", "0",
                            "--quiet"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           text=True)
    time.sleep(1.5)
    r = subprocess.run([BENCH, "client", "--dataplane", "dpdk", "--ip",
                        "10.97.0.2", "--connect", "10.97.0.1", "--eal",
                        eal.format("c", "client"), "--trace-out", cf,
                        "--trace-sample", "1", "--trace-budget", "0",
                        "--sessions", "2",
                        "--inflight", "4", "--duration", "0.4", "--warmup",
                        "0.1", "--quiet"], capture_output=True, text=True,
                       timeout=120)
    time.sleep(0.5)
    srv.send_signal(signal.SIGINT)
    try:
        _, err = srv.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        srv.kill()
        _, err = srv.communicate()
    check("dpdk memif: client exits 0", r.returncode == 0, r.stderr[-400:])
    check("dpdk memif: server exits 0", srv.returncode == 0, err[-400:])
    tree("dpdk memif, two files", cf, sf)



def limited(name):
    """--trace-max-sps 100: few call spans, the rest counted; the JSON
    summary's "tracer" balances (started = exported + dropped) and its
    spans_exported is what the file holds."""
    out = os.path.join(TMP, "limited.jsonl")
    js = os.path.join(TMP, "limited.json")
    r = subprocess.run([BENCH, "loop", "--trace-out", out, "--trace-max-sps",
                        "100", "--inflight", "4", "--duration", "0.4",
                        "--warmup", "0.1", "--json", js, "--quiet"],
                       capture_output=True, text=True, timeout=120)
    check(name + ": exit 0", r.returncode == 0, r.stderr[-400:])
    try:
        with open(js) as f:
            t = json.load(f)["tracer"]
    except (OSError, ValueError, KeyError) as e:
        check(name + ": JSON has a tracer object", False, str(e))
        return
    spans, errs = otlp_check.load(out)
    check(name + ": started = exported + dropped",
          t["spans_started"] == t["spans_exported"] + t["spans_dropped"] and
          t["spans_dropped"] == t["spans_dropped_full"] +
          t["spans_dropped_rate"] + t["spans_dropped_budget"], str(t))
    check(name + ": calls past the limit dropped, counted",
          t["spans_dropped_rate"] > 0 and t["spans_exported"] < 300, str(t))
    check(name + ": the file holds the spans exported",
          not errs and len(spans) == t["spans_exported"],
          "%d in the file, %s" % (len(spans), t))


limited("rate limit")

# The client dies: the server's span for that session ends in ERROR.
port = str(32000 + os.getpid() % 2000)
sfile = os.path.join(TMP, "server.jsonl")
srv = subprocess.Popen([BENCH, "server", "--port", port, "--trace-out", sfile,
                        "--peer-timeout", "500", "--quiet"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       text=True)
time.sleep(0.5)
cli = subprocess.Popen([BENCH, "client", "--port", port, "--inflight", "1",
                        "--duration", "30", "--quiet"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
time.sleep(1.5)
cli.send_signal(signal.SIGKILL)
cli.wait()
time.sleep(1.5)  # past the server's peer timeout
srv.send_signal(signal.SIGINT)
try:
    _, err = srv.communicate(timeout=20)
except subprocess.TimeoutExpired:
    srv.kill()
    _, err = srv.communicate()
check("killed client: server exits cleanly", srv.returncode == 0, err[-400:])
spans, errs = otlp_check.load(sfile) if os.path.exists(sfile) else ([], ["none"])
check("killed client: server export valid", spans and not errs,
      "\n".join(errs[:5]))
sess = [s for s in spans if s["name"] == "ferry.session"]
check("killed client: the server's session span ended with ERROR",
      len(sess) == 1 and sess[0]["status"]["code"] == 2,
      str([s.get("status") for s in sess]))

print("TAP version 13")
print("1..%d" % len(results))
for i, (name, good, detail) in enumerate(results, 1):
    print("%s %d - %s" % ("ok" if good else "not ok", i, name))
    if not good and detail:
        for line in str(detail).splitlines()[-10:]:
            print("  # " + line)
shutil.rmtree(TMP, ignore_errors=True)
sys.exit(0 if all(g for _, g, _ in results) else 1)
