#!/usr/bin/env python3
"""Prometheus metrics from a running ferry-bench (ferry/metrics.h).

Usage: metrics_check.py PATH/TO/ferry-bench [dpdk]
Prints TAP; exits non-zero if any check fails.

  - `ferry-bench loop --metrics 127.0.0.1:0 --trace-out F`: the URL it
    prints answers GET /metrics with the text format's content type; two
    scrapes apart show the client's completed calls and both endpoints'
    datagrams increasing; every scrape passes this file's strict format
    checker (HELP, TYPE, samples of one family together, names, label
    escaping, one series per label set, counters ending _total, the
    endpoint and dataplane labels), Python's prometheus_client parser, and
    `promtool check metrics` where promtool is installed (Debian's
    prometheus package, too big for ./dev's list: reported as a skip, the
    strict checker having run in its place).
  - The server's bounds: 404 for another path, 405 for another method,
    431 for a request over 8 KiB, HEAD without a body, and a client that
    sends nothing does not keep a scraper waiting past its 2 s timeout.
  - With "dpdk": the same scrape from a loopback ring port says
    dataplane="dpdk", and DPDK's own client, dpdk-telemetry.py, reads
    /ferry/endpoints and /ferry/stats,client0: every counter of the scrape,
    its completed calls at least the scrape's.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

BENCH = sys.argv[1]
DPDK = len(sys.argv) > 2 and sys.argv[2] == "dpdk"
TMP = tempfile.mkdtemp(prefix="ferry-metrics-")
results = []  # (name, ok, detail, skip reason)


def check(name, cond, detail=""):
    results.append((name, bool(cond), detail, None))


def skip(name, why):
    results.append((name, True, "", why))


# --- a strict reader of the text format (0.0.4) ---------------------------

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
VALUE = r'"(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(r"^(%s)(?:\{((?:%s=%s)(?:,%s=%s)*)\})? (\S+)$"
                    % (NAME, LABEL, VALUE, LABEL, VALUE))
HELP = re.compile(r"^# HELP (%s) ((?:[^\\\n]|\\[\\n])+)$" % NAME)
TYPE = re.compile(r"^# TYPE (%s) (counter|gauge)$" % NAME)
PAIR = re.compile(r'(%s)=(%s)' % (LABEL, VALUE))


def unescape(v):
    return re.sub(r'\\(.)', lambda m: "\n" if m.group(1) == "n"
                  else m.group(1), v[1:-1])


def parse_strict(text):
    """Returns (samples {(name, labels tuple): value}, types, errors)."""
    errs, samples, types, seen = [], {}, {}, set()
    fam, typed = None, False
    if not text.endswith("\n"):
        errs.append("text does not end with a newline")
    for n, line in enumerate(text.split("\n")[:-1], 1):
        m = HELP.match(line)
        if m:
            if m.group(1) in seen:
                errs.append("line %d: family %s again" % (n, m.group(1)))
            fam, typed = m.group(1), False
            seen.add(fam)
            continue
        m = TYPE.match(line)
        if m:
            if m.group(1) != fam or typed:
                errs.append("line %d: TYPE not right after its HELP" % n)
            if m.group(2) == "counter" and not fam.endswith("_total"):
                errs.append("line %d: counter %s without _total" % (n, fam))
            types[fam], typed = m.group(2), True
            continue
        m = SAMPLE.match(line)
        if not m:
            errs.append("line %d: not HELP, TYPE or a sample: %r" % (n, line))
            continue
        name, labels, value = m.groups()
        if name != fam or not typed:
            errs.append("line %d: %s outside its family" % (n, name))
        pairs = tuple((k, unescape(v)) for k, v in
                      PAIR.findall(labels or ""))
        if len({k for k, _ in pairs}) != len(pairs):
            errs.append("line %d: a label twice" % n)
        keys = [k for k, _ in pairs]
        if name.startswith("ferry_") and not name.startswith("ferry_tracer"):
            if keys[:2] != ["endpoint", "dataplane"]:
                errs.append("line %d: no endpoint, dataplane labels" % n)
        if (name, pairs) in samples:
            errs.append("line %d: series twice" % n)
        try:
            v = float(value)
            if v < 0 or v != int(v):
                errs.append("line %d: not a whole count: %s" % (n, value))
        except ValueError:
            errs.append("line %d: bad value %s" % (n, value))
            v = 0
        samples[(name, pairs)] = v
    return samples, types, errs


def value(samples, name, ep):
    for (n, labels), v in samples.items():
        if n == name and dict(labels).get("endpoint") == ep:
            return v
    return None


# --- HTTP -----------------------------------------------------------------


def get(url, method="GET"):
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def raw(host, port, data, wait=10):
    """Send @data, return the status line's code (or None)."""
    with socket.create_connection((host, port), timeout=wait) as s:
        s.sendall(data)
        reply = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                reply += chunk
        except (ConnectionResetError, socket.timeout):
            pass
    m = re.match(rb"HTTP/1\.1 (\d+) ", reply)
    return int(m.group(1)) if m else None


def start(args):
    """Start ferry-bench with --metrics on a free port; return the process
    and the URL it prints."""
    p = subprocess.Popen([BENCH] + args + ["--metrics", "127.0.0.1:0",
                                           "--quiet", "--warmup", "0"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True)
    found, lines = [], []

    def reader():
        for line in p.stderr:
            lines.append(line)
            m = re.match(r"metrics: (http://\S+)", line)
            if m:
                found.append(m.group(1))
    t = threading.Thread(target=reader, daemon=True)
    t.start()
    end = time.time() + 30
    while not found and time.time() < end and p.poll() is None:
        time.sleep(0.05)
    return p, (found[0] if found else None), lines


def finish(p, name, lines):
    try:
        p.wait(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    check(name + ": ferry-bench exits 0", p.returncode == 0,
          "".join(lines[-10:]))


def prometheus_parser():
    """prometheus_client's parser: Debian's package (python3-prometheus-
    client, pure Python) also when this python is not Debian's own."""
    try:
        from prometheus_client import parser
    except ImportError:
        sys.path.append("/usr/lib/python3/dist-packages")
        from prometheus_client import parser
    return parser.text_string_to_metric_families


def formats(name, text):
    samples, types, errs = parse_strict(text)
    check(name + ": strict format check", not errs and samples,
          "\n".join(errs[:10]))
    try:
        fams_of = prometheus_parser()
        fams = list(fams_of(text))
        check(name + ": prometheus_client parses it",
              len(fams) == len(types), "%d families, %d typed"
              % (len(fams), len(types)))
    except ImportError:
        skip(name + ": prometheus_client parses it",
             "python3-prometheus-client not installed (./dev deps)")
    except ValueError as e:
        check(name + ": prometheus_client parses it", False, str(e))
    promtool = shutil.which("promtool")
    if promtool:
        r = subprocess.run([promtool, "check", "metrics"], input=text,
                           capture_output=True, text=True)
        check(name + ": promtool check metrics", r.returncode == 0 and
              not r.stdout.strip() and not r.stderr.strip(),
              r.stdout + r.stderr)
    else:
        skip(name + ": promtool check metrics",
             "promtool not installed (./dev installs Debian's prometheus); "
             "the strict checker above ran in its place")
    return samples


# --- uring ----------------------------------------------------------------

trace = os.path.join(TMP, "spans.jsonl")
p, url, lines = start(["loop", "--port", str(33000 + os.getpid() % 2000),
                       "--duration", "4", "--sessions", "2", "--inflight",
                       "4", "--trace-out", trace, "--trace-sample", "0.1"])
check("uring: the URL is printed", url, "".join(lines[-10:]))
if url:
    # The URL is printed before the endpoints have their sessions (a
    # handshake takes a round trip more on wire v2): scrape until the
    # client is there, for at most 5 s.
    end = time.time() + 5
    while True:
        st, hdr, text1 = get(url)
        if 'endpoint="client0"' in text1 or time.time() > end:
            break
        time.sleep(0.1)
    check("uring: GET /metrics is 200, text format 0.0.4",
          st == 200 and hdr.get("Content-Type", "").startswith(
              "text/plain; version=0.0.4"), "%s %s" % (st, hdr))
    time.sleep(0.5)
    _, _, text2 = get(url)
    s1 = formats("uring scrape 1", text1)
    s2 = formats("uring scrape 2", text2)
    c1 = value(s1, "ferry_calls_completed_total", "client0")
    c2 = value(s2, "ferry_calls_completed_total", "client0")
    check("uring: client0's completed calls increase", c1 is not None and
          c2 is not None and c2 > c1, "%s then %s" % (c1, c2))
    for ep in ("server0", "client0"):
        r1 = value(s1, "ferry_rx_pkts_total", ep)
        r2 = value(s2, "ferry_rx_pkts_total", ep)
        check("uring: %s's datagrams received increase" % ep,
              r1 is not None and r2 is not None and r2 > r1,
              "%s then %s" % (r1, r2))
    check("uring: sessions open, as a gauge",
          value(s2, "ferry_sessions_open", "client0") == 2)
    check("uring: the tracer's counters",
          any(n == "ferry_tracer_events_total" and v > 0
              for (n, _), v in s2.items()))
    # The server's bounds.
    base = url[:-len("/metrics")]
    host, port = re.match(r"http://([^:/]+):(\d+)", url).groups()
    port = int(port)
    check("uring: another path is 404", get(base + "/other")[0] == 404)
    check("uring: /metricsx is 404", get(base + "/metricsx")[0] == 404)
    st, hdr, _ = get(url, "POST")
    check("uring: POST is 405 with Allow",
          st == 405 and "GET" in hdr.get("Allow", ""), "%s %s" % (st, hdr))
    st, hdr, body = get(url, "HEAD")
    check("uring: HEAD is 200 without a body", st == 200 and body == "")
    check("uring: a request over 8 KiB is 431",
          raw(host, port, b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 9000 +
              b"\r\n\r\n") == 431)
    check("uring: a request that is not HTTP is 400",
          raw(host, port, b"HELLO\r\n\r\n") == 400)
    # A client that sends nothing holds the one connection for at most
    # the 2 s timeout; a scraper behind it is answered after.
    silent = socket.create_connection((host, port))
    t0 = time.time()
    st, _, _ = get(url)
    silent.close()
    check("uring: a silent client holds a scraper only until its timeout",
          st == 200, "%s after %.1f s" % (st, time.time() - t0))
finish(p, "uring", lines)

# --- DPDK: the scrape, and dpdk-telemetry.py -------------------------------

if DPDK:
    prefix = "fmet%d" % os.getpid()
    eal = ("--no-huge -m 256 --no-pci --log-level=error --file-prefix %s "
           "--vdev=net_ring0" % prefix)
    p, url, lines = start(["loop", "--dataplane", "dpdk", "--ip", "10.0.0.1",
                           "--eal", eal, "--duration", "3"])
    check("dpdk: the URL is printed", url, "".join(lines[-10:]))
    if url:
        # Until the client has its session (see the uring run).
        end = time.time() + 5
        while True:
            _, _, text = get(url)
            if ('endpoint="client0"' in text and
                    "ferry_calls_completed_total{endpoint=\"client0\"" in
                    text) or time.time() > end:
                break
            time.sleep(0.1)
        time.sleep(0.3)  # and some calls on it
        _, _, text = get(url)
        s = formats("dpdk scrape", text)
        check("dpdk: dataplane=\"dpdk\"",
              s and all(dict(l).get("dataplane") == "dpdk"
                        for (n, l), _ in s.items()
                        if not n.startswith("ferry_tracer")))
        tel = shutil.which("dpdk-telemetry.py")
        if not tel:
            skip("dpdk: /ferry/stats through dpdk-telemetry.py",
                 "dpdk-telemetry.py not installed (Debian's dpdk package)")
        else:
            r = subprocess.run([tel, "-f", prefix], input="/ferry/endpoints"
                               "\n/ferry/stats,client0\n", text=True,
                               capture_output=True, timeout=30)
            out = [json.loads(x) for x in r.stdout.splitlines()
                   if x.startswith("{")]
            eps = out[0].get("/ferry/endpoints") if out else None
            stats = out[1].get("/ferry/stats") if len(out) > 1 else None
            check("dpdk: /ferry/endpoints names server0 and client0",
                  eps and set(eps) == {"server0", "client0"},
                  r.stdout[-300:] + r.stderr[-300:])
            # Every counter of the scrape: ferry_<name>_total, with the
            # bytes unit or the drops' family folded back.
            names = set()
            for (n, l), _ in s.items():
                if dict(l).get("endpoint") != "client0":
                    continue
                if n == "ferry_drops_total":
                    names.add("drop_" + dict(l)["reason"])
                elif n.endswith("_total"):
                    n = n[len("ferry_"):-len("_total")]
                    if n.startswith("payload_"):
                        n = n[:-len("_bytes")]
                    names.add(n)
            check("dpdk: /ferry/stats,client0 has every counter",
                  stats and set(stats) == names,
                  "missing %s, extra %s" % (
                      sorted(names - set(stats or {}))[:5],
                      sorted(set(stats or {}) - names)[:5]))
            done = value(s, "ferry_calls_completed_total", "client0") or 0
            check("dpdk: /ferry/stats counts the calls the scrape saw",
                  stats and 0 < done <= stats.get("calls_completed", 0),
                  "scrape %s, telemetry %s" % (done, (stats or {}).get(
                      "calls_completed")))
    finish(p, "dpdk", lines)
    shutil.rmtree("/var/run/dpdk/" + prefix, ignore_errors=True)

print("TAP version 13")
print("1..%d" % len(results))
for i, (name, good, detail, why) in enumerate(results, 1):
    if why:
        print("ok %d - %s # SKIP %s" % (i, name, why))
        continue
    print("%s %d - %s" % ("ok" if good else "not ok", i, name))
    if not good and detail:
        for line in str(detail).splitlines()[-10:]:
            print("  # " + line)
shutil.rmtree(TMP, ignore_errors=True)
sys.exit(0 if all(g for _, g, _, _ in results) else 1)
