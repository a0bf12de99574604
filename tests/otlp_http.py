#!/usr/bin/env python3
"""OTLP export from ferry-bench to a real HTTP receiver on loopback.

Usage: otlp_http.py PATH/TO/ferry-bench
Prints TAP; exits non-zero if any check fails.

The receiver is Python's http.server (HTTP/1.1, keep-alive); each request
body is decoded by otlp_pb.decode() (strict; field numbers transcribed from
opentelemetry-proto, see otlp_pb.py) and, with FERRY_OTLP_PROTO_DIR set to
a checkout of the official opentelemetry-proto, also by `protoc --decode`
with the official definitions.

  - http/protobuf, one process (loop), OTEL_* configuration: every request
    is POST /v1/traces, application/x-protobuf; the spans received are
    spans_exported, ids unique, parents present, service.name from
    OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES percent-decoded.
  - Two processes (server, client) with their own service names: the
    server session span is the client session span's child across them.
  - http/json with gzip: the same spans, as JSON.
  - A receiver that answers 503 (Retry-After: 1) first: retried after the
    second it asked for, nothing lost.
  - A dead endpoint: the bench finishes, nothing is sent, every span is
    counted as dropped or still queued at the summary, dropped at the end.
  - A bad OTEL_EXPORTER_OTLP_PROTOCOL: exit 2, with the reason.
  - --trace-out with --trace-format protobuf: the file's length-delimited
    messages hold spans_exported spans.
"""
import gzip
import http.server
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import otlp_pb  # noqa: E402

BENCH = sys.argv[1]
TMP = tempfile.mkdtemp(prefix="ferry-otlp-")
results = []


def check(name, cond, detail=""):
    results.append((name, bool(cond), detail))


class Receiver:
    """A collector stand-in: records every request; answers the first
    len(script) of them with the statuses in @script, then 200."""

    def __init__(self, script=()):
        self.reqs, self.script, self.lock = [], list(script), threading.Lock()
        rec = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                with rec.lock:
                    rec.reqs.append({"path": self.path, "t": time.monotonic(),
                                     "ctype": self.headers.get("Content-Type"),
                                     "enc": self.headers.get("Content-Encoding"),
                                     "body": body})
                    status = rec.script.pop(0) if rec.script else 200
                    rec.reqs[-1]["status"] = status
                self.send_response(status)
                if status == 503:
                    self.send_header("Retry-After", "1")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def bench(args, env_extra, name):
    js = os.path.join(TMP, name + ".json")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(env_extra)
    # --trace-budget 0: every span is needed (a budget may drop some).
    r = subprocess.run([BENCH] + args + ["--trace-sample", "1",
                                         "--trace-budget", "0", "--json", js,
                                         "--quiet"],
                       env=env, capture_output=True, text=True, timeout=180)
    t = {}
    if os.path.exists(js):
        with open(js) as f:
            t = json.load(f).get("tracer", {})
    return r, t


# Its own port: other tests (and other users of the machine) run benches.
LOOP = ["loop", "--port", str(35000 + os.getpid() % 2000), "--sessions", "2",
        "--inflight", "8", "--duration", "0.5", "--warmup", "0.1"]


def decode_all(rec, name, json_body=False):
    """Every accepted request's spans, [(resource, scope, span)]."""
    out, errs = [], []
    for q in rec.reqs:
        if q["status"] != 200:
            continue
        body = q["body"]
        if q["enc"] == "gzip":
            body = gzip.decompress(body)
        try:
            if json_body:
                for rs in json.loads(body)["resourceSpans"]:
                    res = {a["key"]: a["value"]["stringValue"]
                           for a in rs["resource"]["attributes"]}
                    for ss in rs["scopeSpans"]:
                        out += [(res, ss["scope"], s) for s in ss["spans"]]
                continue
            req = otlp_pb.decode(body)
            sp = otlp_pb.spans_of(req)
            out += sp
            if not otlp_pb.raw_ok(body):
                errs.append("protoc --decode_raw refused a body")
            text = otlp_pb.official_decode(body)
            if text is not None and text.count("\n    spans {") != len(sp):
                errs.append("official decode: %d spans, ours %d" %
                            (text.count("\n    spans {"), len(sp)))
        except (otlp_pb.DecodeError, ValueError, KeyError) as e:
            errs.append(str(e))
    check(name + ": every request decodes", rec.reqs and not errs,
          "%d requests; %s" % (len(rec.reqs), errs[:3]))
    return out


def tree_ok(name, spans, key_id, key_parent):
    ids = [s[key_id] for _, _, s in spans]
    check(name + ": span ids unique", ids and len(ids) == len(set(ids)))
    by_id = {s[key_id]: s for _, _, s in spans}
    orphans = [s for _, _, s in spans
               if s.get(key_parent) and s[key_parent] not in by_id]
    check(name + ": every parent is among the spans", spans and not orphans,
          "%d orphans" % len(orphans))
    return by_id


# --- http/protobuf, one process, OTEL_* configuration ----------------------
rec = Receiver()
r, t = bench(LOOP + ["--otlp"], {
    "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:%d/" % rec.port,
    "OTEL_SERVICE_NAME": "otlp-test",
    "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=ci, team=a%2Cb%20c"},
    "protobuf")
check("protobuf: exit 0", r.returncode == 0, r.stderr[-400:])
check("protobuf: POST /v1/traces, application/x-protobuf",
      rec.reqs and all(q["path"] == "/v1/traces" and
                       q["ctype"] == "application/x-protobuf"
                       for q in rec.reqs))
spans = decode_all(rec, "protobuf")
check("protobuf: spans received = spans_exported = otlp_spans_sent",
      spans and len(spans) == t.get("spans_exported") ==
      t.get("otlp_spans_sent") and t.get("otlp_spans_dropped") == 0,
      "%d received, %s" % (len(spans), t))
tree_ok("protobuf", spans, "span_id", "parent_span_id")
check("protobuf: service.name from OTEL_SERVICE_NAME, resource attributes",
      spans and all(res.get("service.name") == "otlp-test" and
                    res.get("team") == "a,b c" and
                    res.get("deployment.environment") == "ci"
                    for res, _, _ in spans), str(spans[0][0] if spans else ""))
check("protobuf: ids 16 and 8 bytes, times ordered, scope ferry",
      spans and all(len(s["trace_id"]) == 16 and len(s["span_id"]) == 8 and
                    s["start_time_unix_nano"] <= s["end_time_unix_nano"] and
                    sc.get("name") == "ferry" for _, sc, s in spans))
rec.close()

# --- two processes ---------------------------------------------------------
rec = Receiver()
port = str(33000 + os.getpid() % 2000)
env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
env.update({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT":
            "http://127.0.0.1:%d/v1/traces" % rec.port,
            "OTEL_SERVICE_NAME": "otlp-server"})
srv = subprocess.Popen([BENCH, "server", "--port", port, "--otlp",
                        "--trace-budget", "0", "--quiet"], env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       text=True)
time.sleep(0.5)
r, t = bench(["client", "--port", port, "--sessions", "2", "--inflight", "4",
              "--duration", "0.4", "--warmup", "0.1", "--otlp-endpoint",
              "http://127.0.0.1:%d/v1/traces" % rec.port],
             {"OTEL_SERVICE_NAME": "otlp-client"}, "client")
time.sleep(0.3)
srv.send_signal(2)
try:
    err = srv.communicate(timeout=60)[1]
except subprocess.TimeoutExpired:
    srv.kill()
    err = srv.communicate()[1]
check("two processes: both exit 0", r.returncode == 0 and srv.returncode == 0,
      r.stderr[-300:] + err[-300:])
spans = decode_all(rec, "two processes")
by_id = tree_ok("two processes", spans, "span_id", "parent_span_id")
svc = {s["span_id"]: res.get("service.name") for res, _, s in spans}
ssess = [s for _, _, s in spans
         if s.get("name") == "ferry.session" and s.get("kind") == 2]
check("two processes: each server session span's parent is a client "
      "session span of the other process, same trace",
      ssess and all(svc[s["span_id"]] == "otlp-server" and
                    svc.get(s.get("parent_span_id")) == "otlp-client" and
                    by_id[s["parent_span_id"]]["trace_id"] == s["trace_id"]
                    for s in ssess), "%d server session spans" % len(ssess))
rec.close()

# --- http/json with gzip ---------------------------------------------------
rec = Receiver()
r, t = bench(LOOP + ["--otlp-endpoint",
                     "http://127.0.0.1:%d/v1/traces" % rec.port,
                     "--otlp-gzip"],
             {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "json")
check("http/json: exit 0", r.returncode == 0, r.stderr[-400:])
check("http/json: application/json, gzip",
      rec.reqs and all(q["ctype"] == "application/json" and
                       q["enc"] == "gzip" for q in rec.reqs))
spans = decode_all(rec, "http/json", json_body=True)
check("http/json: spans received = spans_exported",
      spans and len(spans) == t.get("spans_exported") == t.get("otlp_spans_sent"),
      "%d received, %s" % (len(spans), t))
tree_ok("http/json", spans, "spanId", "parentSpanId")
rec.close()

# --- 503, then 200 -----------------------------------------------------------
rec = Receiver(script=[503])
# Few spans a second: the queue (64 bodies) must outlast the second the
# receiver asks for, so that nothing is dropped.
r, t = bench(LOOP + ["--otlp-endpoint",
                     "http://127.0.0.1:%d/v1/traces" % rec.port,
                     "--trace-max-sps", "5000"], {}, "retry")
check("503 then 200: exit 0", r.returncode == 0, r.stderr[-400:])
spans = decode_all(rec, "503 then 200")
check("503 then 200: retried, nothing lost",
      t.get("otlp_retries", 0) >= 1 and t.get("otlp_failures") == 1 and
      len(spans) == t.get("spans_exported") == t.get("otlp_spans_sent"),
      "%d received, %s" % (len(spans), t))
# The retry of the refused body is the second request: Retry-After: 1
# asked for a second at least.
check("503 then 200: Retry-After honoured",
      len(rec.reqs) >= 2 and rec.reqs[1]["t"] - rec.reqs[0]["t"] >= 0.95,
      "%.3f s" % (rec.reqs[1]["t"] - rec.reqs[0]["t"]
                  if len(rec.reqs) >= 2 else -1))
rec.close()

# --- a dead endpoint -------------------------------------------------------
s = socket.socket()
s.bind(("127.0.0.1", 0))
dead = s.getsockname()[1]
s.close()  # nothing listens there now: connections are refused
t0 = time.monotonic()
r, t = bench(LOOP + ["--otlp-endpoint", "http://127.0.0.1:%d/v1/traces" % dead],
             {"OTEL_EXPORTER_OTLP_TIMEOUT": "1000"}, "dead")
check("dead endpoint: the bench finishes, exit 0",
      r.returncode == 0 and time.monotonic() - t0 < 60, r.stderr[-400:])
check("dead endpoint: nothing sent; exported = dropped + queued",
      t.get("spans_exported", 0) > 0 and t.get("otlp_spans_sent") == 0 and
      t["spans_exported"] == t["otlp_spans_dropped"] + t["otlp_spans_queued"]
      and t["spans_started"] == t["spans_exported"] + t["spans_dropped"],
      str(t))
m = re.search(r"OTLP/HTTP: (\d+) spans sent, (\d+) dropped", r.stderr)
check("dead endpoint: at the end every span is counted as dropped",
      m and int(m.group(1)) == 0 and int(m.group(2)) == t.get("spans_exported"),
      r.stderr[-300:])

# --- a bad protocol ----------------------------------------------------------
r, t = bench(LOOP + ["--otlp"], {
    "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:%d" % dead,
    "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "grpc")
check("bad protocol: exit 2 with the reason",
      r.returncode == 2 and "OTEL_EXPORTER_OTLP_PROTOCOL" in r.stderr and
      "grpc" in r.stderr, r.stderr[-300:])

# --- the protobuf file ---------------------------------------------------------
out = os.path.join(TMP, "spans.pb")
r, t = bench(LOOP + ["--trace-out", out, "--trace-format", "protobuf"], {},
             "file")
check("protobuf file: exit 0", r.returncode == 0, r.stderr[-400:])
try:
    with open(out, "rb") as f:
        msgs = otlp_pb.frames(f.read())
    spans = [sp for m in msgs for sp in otlp_pb.spans_of(otlp_pb.decode(m))]
    err = ""
except (OSError, otlp_pb.DecodeError, ValueError) as e:
    msgs, spans, err = [], [], str(e)
check("protobuf file: length-delimited messages hold spans_exported spans",
      spans and len(spans) == t.get("spans_exported"),
      "%d messages, %d spans, %s %s" % (len(msgs), len(spans), t, err))
tree_ok("protobuf file", spans, "span_id", "parent_span_id")

print("TAP version 13")
print("1..%d" % len(results))
failed = 0
for i, (name, ok, detail) in enumerate(results, 1):
    print("%s %d - %s" % ("ok" if ok else "not ok", i, name))
    if not ok:
        failed += 1
        for line in str(detail).splitlines()[:20]:
            print("  # " + line)
sys.exit(1 if failed else 0)
