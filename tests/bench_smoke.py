#!/usr/bin/env python3
"""ferry-bench as a user runs it: help, bad input, every role, JSON output.

Usage: bench_smoke.py PATH/TO/ferry-bench
Prints TAP; exits non-zero if any check fails.
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

BENCH = sys.argv[1]
TMP = tempfile.mkdtemp(prefix="ferry-smoke-")
results = []


def check(name, cond, detail=""):
    results.append((name, bool(cond), detail))


def run(args, timeout=60):
    return subprocess.run([BENCH] + args, capture_output=True, text=True,
                          timeout=timeout)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_json(args, timeout=60):
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        r = run(args + ["--json", f.name, "--quiet"], timeout)
        try:
            data = json.load(open(f.name))
        except ValueError:
            data = None
    return r, data


KEYS = ["rps", "gbps", "p50_us", "p99_us", "p999_us", "max_us", "completed",
        "errors"]


def sane(name, r, d, expect_latency=True):
    check(name + ": exit 0", r.returncode == 0, r.stderr[-400:])
    check(name + ": JSON has the summary keys",
          d is not None and all(k in d for k in KEYS), str(d))
    if not d:
        return
    check(name + ": calls completed", d["completed"] > 0, str(d))
    check(name + ": no errors", d["errors"] == 0, str(d))
    check(name + ": rps and Gbit/s positive", d["rps"] > 0 and d["gbps"] > 0)
    if expect_latency:
        check(name + ": p50 <= p99 <= p99.9 <= max",
              0 < d["p50_us"] <= d["p99_us"] <= d["p999_us"] <= d["max_us"],
              str(d))


# --help is true: it names every option the parser takes.
r = run(["--help"])
check("--help exits 0", r.returncode == 0)
for opt in ["--dataplane", "--addr", "--port", "--size", "--resp-size",
            "--inflight", "--sessions", "--threads", "--duration",
            "--busy-poll", "--json", "floor", "--eal", "--ip", "--connect",
            "--dpdk-port", "--dpdk-queues", "--keyring", "--caps",
            "--deferred", "--deferred-delay-us", "--issuer-thread"]:
    check("--help mentions " + opt, opt in r.stdout)

# Bad input: a clear one-line reason and exit code 2.
for args, word in [(["--size", "lots"], "--size"),
                   (["--inflight", "0"], "--inflight"),
                   (["sideways"], "unknown mode"),
                   (["--dataplane", "carrier-pigeon"], "not built in"),
                   (["--addr", "localhost.example"], "IPv4"),
                   (["--ip", "ten.0.0.1"], "--ip")]:
    r = run(args)
    check("rejects %s" % " ".join(args),
          r.returncode == 2 and word in r.stderr, r.stderr)

# --deferred: what it needs and the ranges it takes, refused before any
# keyring is read (the file named need not exist) with a clear reason.
NOKR = ["--keyring", os.path.join(TMP, "no-such.kr")]
for args, words in [
        (["--deferred", "0.5"], ["--deferred", "--keyring", "--caps"]),
        (["--deferred", "0.5", "--caps", "2"], ["--deferred", "--keyring"]),
        (["--deferred", "0.5"] + NOKR, ["--deferred", "--caps >= 1"]),
        (["--deferred", "1.5", "--caps", "2"] + NOKR, ["--deferred", "0 to 1"]),
        (["--deferred", "-0.1", "--caps", "2"] + NOKR, ["--deferred"]),
        (["--deferred", "lots", "--caps", "2"] + NOKR, ["--deferred"]),
        (["--deferred", "0.5", "--caps", "2", "--deferred-delay-us",
          "2000000"] + NOKR, ["--deferred-delay-us", "1000000"]),
        (["--deferred", "0.5", "--caps", "2", "--deferred-delay-us",
          "-1"] + NOKR, ["--deferred-delay-us"]),
        (["--deferred-delay-us", "100"], ["--deferred-delay-us",
                                          "needs --deferred"]),
        (["--issuer-thread"], ["--issuer-thread", "needs --deferred"]),
        (["server", "--deferred", "0.5", "--caps", "2"] + NOKR,
         ["--deferred", "clients"]),
        (["floor", "--deferred", "0.5"], ["--deferred", "floor"]),
        (["--verify", "--caps", "8"] + NOKR, ["--caps", "at most 7"])]:
    r = run(args)
    check("rejects %s" % " ".join("K" if a == NOKR[1] else a for a in args),
          r.returncode == 2 and all(w in r.stderr for w in words) and
          "Try 'ferry-bench --help'" in r.stderr, r.stderr)

common = ["--duration", "1", "--warmup", "0.2"]
port = free_port()
r, d = bench_json(["loop", "--port", str(port), "--inflight", "4"] + common)
sane("rpc loop 32 B", r, d)
r, d = bench_json(["floor", "loop", "--port", str(port), "--inflight", "4"] +
                  common)
sane("floor loop 32 B", r, d)
r, d = bench_json(["loop", "--port", str(port), "--size", "1M",
                   "--inflight", "2", "--sessions", "2"] + common)
sane("rpc loop 1 MiB", r, d)
if d:
    check("1 MiB: payload copies per delivered byte <= 1",
          0 < d["copies_per_byte"] <= 1.0, str(d))
r, d = bench_json(["loop", "--port", str(port), "--threads", "2",
                   "--sessions", "2", "--inflight", "8", "--size", "100",
                   "--resp-size", "3000", "--busy-poll"] + common)
sane("rpc loop 2 threads, asymmetric sizes, busy-poll", r, d)

# DPDK (when built in): the options it needs are asked for, a bad EAL
# argument is reported, and a loop over a loopback ring port works with
# every call verified.
r = run(["--dataplane", "dpdk"])
if "not built in" not in r.stderr:
    check("dpdk without --eal is refused",
          r.returncode == 2 and "--eal" in r.stderr, r.stderr)
    r = run(["client", "--dataplane", "dpdk", "--eal", "--no-huge"])
    check("dpdk client without --ip is refused",
          r.returncode == 2 and "--ip" in r.stderr, r.stderr)
    eal = ("--no-huge -m 256 --no-pci --no-telemetry --log-level=error "
           "--file-prefix smoke%d --vdev=net_ring0" % os.getpid())
    r = run(["loop", "--dataplane", "dpdk", "--ip", "10.0.0.1", "--eal",
             "--no-such-eal-option"] + common, timeout=60)
    check("dpdk with a bad EAL argument fails clearly",
          r.returncode != 0 and "EAL" in r.stderr, r.stderr[-400:])
    r, d = bench_json(["loop", "--dataplane", "dpdk", "--ip", "10.0.0.1",
                       "--eal", eal, "--inflight", "8", "--verify",
                       "--size", "3000"] + common)
    sane("dpdk loop over net_ring, verified", r, d)
    if d:
        check("dpdk loop: nothing lost, repeated, reordered or damaged",
              d["lost"] == d["duplicates"] == d["out_of_order"] ==
              d["corrupt"] == 0, str(d))

# Two processes: a server and a client, as on two hosts.
port = free_port()
srv = subprocess.Popen([BENCH, "server", "--port", str(port), "--quiet"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True)
try:
    r, d = bench_json(["client", "--port", str(port), "--inflight", "8",
                       "--size", "2000"] + common)
    sane("client against a server process", r, d)
finally:
    srv.terminate()
    out, err = srv.communicate(timeout=20)
check("server exits cleanly on SIGTERM", srv.returncode == 0, err[-400:])
check("server prints its summary", "completed" in out, out)

# Faults on both ends, every call verified: nothing lost, repeated, out of
# order or damaged, and the repairs show as retransmits.
FAULTS = ["--loss", "0.05", "--dup", "0.02", "--reorder", "0.05",
          "--corrupt", "0.01"]
for size, extra in [("1K", ["--sessions", "8", "--inflight", "64"]),
                    ("1M", ["--sessions", "2", "--inflight", "4"])]:
    port = free_port()
    r, d = bench_json(["loop", "--port", str(port), "--verify", "--size", size]
                      + FAULTS + extra + common, timeout=120)
    sane("faults, --verify, %s" % size, r, d)
    if d:
        for k in ["lost", "duplicates", "out_of_order", "corrupt"]:
            check("faults, %s: %s is 0" % (size, k), d.get(k) == 0, str(d))
        check("faults, %s: retransmits > 0" % size, d["retransmits"] > 0,
              str(d))
        check("faults, %s: faults were injected" % size,
              all(d["faults"][k] > 0 for k in ["loss", "dup", "reorder",
                                               "corrupt"]), str(d))

# A hostile middlebox: every fault at once on both ends -- loss, duplicates,
# reordering, delay, truncation, garbage, replays of earlier datagrams, and
# bit flips -- every call verified.  Once with the library's defaults (wire
# v2's `mac` mode: every datagram ends in a tag), then with bit flips as
# well; and once more in mode none (a CRC32C trailer).  A datagram cut short
# or with a bit flipped fails its tag (or CRC) and touches nothing; its
# frames are sent again.  Nothing lost, repeated, out of order or damaged,
# and every fault was injected.
HOSTILE = ["--loss", "0.01", "--dup", "0.01", "--reorder", "0.01",
           "--delay", "0.01", "--delay-us", "500", "--truncate", "0.01",
           "--garbage", "0.01", "--replay", "0.01"]
for name, extra, faults, cut in [
        ("hostile middlebox, defaults", [], [], "drop_auth"),
        ("hostile middlebox, bit flips",
         ["--corrupt", "0.01"], ["corrupt"], "drop_auth"),
        ("hostile middlebox, bit flips, mode none",
         ["--corrupt", "0.01", "--wire-mode", "none"], ["corrupt"],
         "drop_bad_crc")]:
    port = free_port()
    r, d = bench_json(["loop", "--port", str(port), "--verify", "--sessions",
                       "4", "--inflight", "16", "--duration", "3",
                       "--warmup", "0.2"] + HOSTILE + extra, timeout=120)
    sane(name + ", --verify", r, d)
    if d:
        for k in ["lost", "duplicates", "out_of_order", "corrupt"]:
            check("%s: %s is 0" % (name, k), d.get(k) == 0, str(d))
        check(name + ": every fault was injected",
              all(d["faults"].get(k, 0) > 0 for k in
                  ["loss", "dup", "reorder", "delay", "truncate", "garbage",
                   "replay"] + faults), str(d))
        check(name + ": damaged datagrams dropped (%s), repaired" % cut,
              d.get("drops", {}).get(cut, 0) > 0 and d["retransmits"] > 0,
              str(d))
r = run(["--help"])
for opt in ["--delay", "--delay-us", "--truncate", "--garbage", "--replay"]:
    check("--help mentions " + opt, opt in r.stdout)

# Deferred tokens (IOUs), with the control plane built in: half the calls
# carry their two tokens as IOUs, each issued by the delayed issuer after
# up to 200 us, sealed for its call; the server checks order at dispatch,
# waits for the tokens, verifies each (props name the call) and answers.
# Every IOU a call named is resolved, none rejected, nothing out of order
# or lost -- and the same with 2% of datagrams lost on both ends, and with
# the issuer on a thread of its own (--issuer-thread) instead of the client
# worker's poll loop.
FERRYCTL = os.path.join(os.path.dirname(os.path.abspath(BENCH)), "..",
                        "control", "ferryctl")
KR = os.path.join(TMP, "bench.kr")
if os.path.exists(FERRYCTL):
    subprocess.run([FERRYCTL, "--keyring", KR, "key", "new"],
                   capture_output=True, check=True)
    DEF = ["--keyring", KR, "--caps", "2", "--deferred", "0.5",
           "--deferred-delay-us", "200", "--verify"]
    for name, extra in [("deferred", []),
                        ("deferred, 2% loss", ["--loss", "0.02"]),
                        ("deferred, --issuer-thread", ["--issuer-thread"])]:
        port = free_port()
        r, d = bench_json(["loop", "--port", str(port), "--sessions", "2",
                           "--inflight", "8"] + DEF + extra + common,
                          timeout=120)
        sane(name + ", --verify", r, d)
        if d:
            for k in ["lost", "duplicates", "out_of_order", "corrupt",
                      "iou_rejected", "ious_dropped"]:
                check("%s: %s is 0" % (name, k), d.get(k) == 0, str(d))
            check(name + ": calls carried IOUs, at about the fraction asked",
                  d.get("deferred_calls", 0) > 0 and
                  0.4 < d["deferred_calls"] / d["table_calls"] < 0.6, str(d))
            check(name + ": the server's IOUs were created and all resolved",
                  d.get("iou_counters") == "server" and
                  d.get("iou_created", 0) > 0 and
                  d["iou_resolved"] == d["iou_created"], str(d))
            check(name + ": the issuer completed every issuance",
                  d.get("issuer", {}).get("issued", 0) > 0 and
                  d["issuer"]["completed"] == d["issuer"]["issued"], str(d))
            thread = "--issuer-thread" in extra
            check(name + ": the JSON names the issuer's mode",
                  d.get("issuer", {}).get("mode") ==
                  ("thread" if thread else "worker") and
                  d.get("cpu_s", {}).get("issuer_in_client") == (not thread)
                  and ("sleeps" if thread else "spin_polls") in d["issuer"],
                  str(d))
            check(name + ": every token verified in the handler",
                  d.get("caps_redeemed", 0) > 0, str(d))
        if "--loss" in extra:
            check(name + ": retransmits repaired the loss",
                  d is not None and d["retransmits"] > 0, str(d))
        check(name + ": the summary names the server's IOU counters",
              "IOUs (server): created" in r.stdout, r.stdout[-600:])
        check(name + ": the summary says where the issuer runs",
              ("issuer (its own thread)" if "--issuer-thread" in extra
               else "issuer (on the client threads)") in r.stdout,
              r.stdout[-600:])

    # Two processes: the client-only process reports its own (client)
    # counters and says so; the server's summary has the table's.
    port = free_port()
    sj = os.path.join(TMP, "def-server.json")
    srv = subprocess.Popen([BENCH, "server", "--port", str(port), "--keyring",
                            KR, "--quiet", "--json", sj],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    try:
        time.sleep(0.5)
        r, d = bench_json(["client", "--port", str(port), "--inflight", "8"]
                          + DEF + common, timeout=60)
        sane("deferred, client process", r, d)
    finally:
        srv.terminate()
        out, err = srv.communicate(timeout=20)
    check("deferred, client process: says its counters are the client's",
          d is not None and d.get("iou_counters") == "client" and
          "iou_created" not in d and d.get("ious_promised", 0) > 0 and
          d["ious_dropped"] == 0 and d["lost"] == 0 and
          d["out_of_order"] == 0, str(d))
    check("deferred, client process: its summary says 'IOUs (client)'",
          "IOUs (client): promised" in r.stdout, r.stdout[-400:])
    try:
        sd = json.load(open(sj))
    except (OSError, ValueError):
        sd = None
    check("deferred, server process: created == resolved, none rejected",
          srv.returncode == 0 and sd is not None and
          sd["iou_created"] > 0 and sd["iou_resolved"] == sd["iou_created"]
          and sd["iou_rejected"] == 0 and sd["iou_bad_token"] == 0,
          "%s\n%s" % (sd, err[-400:]))
else:
    check("deferred: skipped, no ferryctl (built without libsodium) # SKIP",
          True)

# The server dies mid-run: the client fails every outstanding call within
# the peer timeout, stops, and leaves nothing behind (this binary runs
# under LeakSanitizer in ./dev test).
port = free_port()
srv = subprocess.Popen([BENCH, "server", "--port", str(port), "--quiet"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
time.sleep(0.5)
cli = subprocess.Popen([BENCH, "client", "--port", str(port), "--verify",
                        "--inflight", "8", "--duration", "30", "--warmup",
                        "0.2", "--peer-timeout", "1000", "--quiet", "--json",
                        os.path.join(TMP, "kill.json")],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True)
time.sleep(1.5)
srv.kill()
killed = time.monotonic()
srv.wait()
out, err = cli.communicate(timeout=60)
took = time.monotonic() - killed
check("killed server: client stops by itself", took < 10,
      "%.1f s after the kill" % took)
check("killed server: client explains", "every session has ended" in err and
      "timed out" in err, err[-400:])
check("killed server: no leak, no sanitizer report",
      "LeakSanitizer" not in err and "AddressSanitizer" not in err and
      "runtime error" not in err, err[-800:])
try:
    d = json.load(open(os.path.join(TMP, "kill.json")))
except (OSError, ValueError):
    d = None
check("killed server: every outstanding call failed (8 in flight)",
      d is not None and d["errors"] == 8 and d["lost"] == 8, str(d))
check("killed server: exit status says so", cli.returncode == 1,
      str(cli.returncode))

# No server: the client says so instead of hanging.
r = run(["client", "--port", str(free_port())] + common, timeout=30)
check("client without a server fails clearly",
      r.returncode != 0 and "no answer" in r.stderr, r.stderr)

print("TAP version 13")
print("1..%d" % len(results))
for i, (name, ok, detail) in enumerate(results, 1):
    print("%s %d - %s" % ("ok" if ok else "not ok", i, name))
    if not ok and detail:
        for line in detail.splitlines()[-10:]:
            print("  # " + line)
sys.exit(0 if all(ok for _, ok, _ in results) else 1)
