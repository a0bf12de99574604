#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""otlp_check.py - validate ferry's OTLP/JSON span export (TAP output).

usage: otlp_check.py FERRY_TRACE_DEMO FERRYCTL

Runs ferry-trace-demo to write a client and a server export file, then
checks every line with Python's own JSON parser against the OTLP protobuf
JSON mapping (docs/tracing.md, section 6): one TracesData object per line;
required fields; traceId/spanId/parentSpanId lower-case hex of 32/16 digits;
kind and status.code JSON integers in range; startTimeUnixNano and
endTimeUnixNano decimal strings with start <= end; attribute values with
exactly one typed member (intValue as a decimal string); the session tree
(server session span parented to the client's, same trace id; calls under
their session).  Then runs `ferryctl spans` on the files, and on malformed
files, which must fail with exit status 1 and a one-line reason.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")
DEC = re.compile(r"^[0-9]{1,20}$")
VALUE_KEYS = {"stringValue", "intValue", "boolValue", "doubleValue"}

results = []


def ok(cond, what):
    results.append((bool(cond), what))
    return bool(cond)


def check_attrs(attrs, where):
    errs = []
    if not isinstance(attrs, list):
        return [f"{where}: attributes is not a list"]
    for a in attrs:
        if not isinstance(a.get("key"), str) or not isinstance(a.get("value"), dict):
            errs.append(f"{where}: attribute without key/value")
            continue
        v = a["value"]
        if len(v) != 1 or next(iter(v)) not in VALUE_KEYS:
            errs.append(f"{where}: {a['key']}: value {v!r}")
            continue
        k, x = next(iter(v.items()))
        if k == "stringValue" and not isinstance(x, str):
            errs.append(f"{where}: {a['key']}: stringValue not a string")
        if k == "intValue" and not (isinstance(x, str) and re.match(r"^-?[0-9]+$", x)):
            errs.append(f"{where}: {a['key']}: intValue not a decimal string")
        if k == "boolValue" and not isinstance(x, bool):
            errs.append(f"{where}: {a['key']}: boolValue not a bool")
        if k == "doubleValue" and not (isinstance(x, (int, float)) and not isinstance(x, bool)
                                       or x in ("NaN", "Infinity", "-Infinity")):
            errs.append(f"{where}: {a['key']}: bad doubleValue")
    return errs


def check_span(s):
    errs = []
    sid = s.get("spanId", "?")
    where = f"span {sid}"
    if not HEX32.match(str(s.get("traceId", ""))) or set(s["traceId"]) == {"0"}:
        errs.append(f"{where}: traceId {s.get('traceId')!r}")
    if not HEX16.match(str(s.get("spanId", ""))) or set(s["spanId"]) == {"0"}:
        errs.append(f"{where}: spanId {s.get('spanId')!r}")
    if "parentSpanId" in s and not HEX16.match(str(s["parentSpanId"])):
        errs.append(f"{where}: parentSpanId {s['parentSpanId']!r}")
    if not isinstance(s.get("name"), str) or not s["name"]:
        errs.append(f"{where}: name")
    k = s.get("kind")
    if not (type(k) is int and k in (1, 2, 3)):
        errs.append(f"{where}: kind {k!r} is not an integer enum 1..3")
    st, en = s.get("startTimeUnixNano"), s.get("endTimeUnixNano")
    if not (isinstance(st, str) and DEC.match(st) and isinstance(en, str) and DEC.match(en)):
        errs.append(f"{where}: timestamps {st!r} {en!r} are not decimal strings")
    elif int(st) > int(en):
        errs.append(f"{where}: start > end")
    errs += check_attrs(s.get("attributes", []), where)
    status = s.get("status")
    if not isinstance(status, dict) or type(status.get("code")) is not int \
            or status["code"] not in (0, 1, 2):
        errs.append(f"{where}: status {status!r}")
    elif "message" in status and not isinstance(status["message"], str):
        errs.append(f"{where}: status.message")
    allowed = {"traceId", "spanId", "parentSpanId", "traceState", "name", "kind",
               "startTimeUnixNano", "endTimeUnixNano", "attributes",
               "droppedAttributesCount", "status"}
    extra = set(s) - allowed
    if extra:
        errs.append(f"{where}: unknown fields {sorted(extra)}")
    return errs


def load(path):
    """Spans of one export file; also checks the envelope of every line."""
    spans, errs = [], []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            try:
                doc = json.loads(line)
            except ValueError as e:
                errs.append(f"{path}:{n}: not JSON: {e}")
                continue
            if set(doc) != {"resourceSpans"} or not isinstance(doc["resourceSpans"], list):
                errs.append(f"{path}:{n}: not a TracesData object")
                continue
            for rs in doc["resourceSpans"]:
                res = rs.get("resource", {})
                errs += check_attrs(res.get("attributes", []), f"{path}:{n}: resource")
                svc = [a["value"].get("stringValue") for a in res.get("attributes", [])
                       if a.get("key") == "service.name"]
                if not svc:
                    errs.append(f"{path}:{n}: no service.name")
                for ss in rs.get("scopeSpans", []):
                    if ss.get("scope", {}).get("name") != "ferry":
                        errs.append(f"{path}:{n}: scope name")
                    for s in ss.get("spans", []):
                        errs += [f"{path}:{n}: {e}" for e in check_span(s)]
                        s["_service"] = svc[0] if svc else None
                        spans.append(s)
    return spans, errs


def attrs(s):
    out = {}
    for a in s.get("attributes", []):
        out[a["key"]] = next(iter(a["value"].values()))
    return out


def main():
    demo, ferryctl = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as d:
        cfile, sfile = os.path.join(d, "client.jsonl"), os.path.join(d, "server.jsonl")
        r = subprocess.run([demo, cfile, sfile], capture_output=True, text=True)
        ok(r.returncode == 0, f"ferry-trace-demo ran ({r.stderr.strip()})")
        cspans, cerr = load(cfile)
        sspans, serr = load(sfile)
        ok(not cerr, "client file follows the OTLP/JSON mapping" + "".join("\n# " + e for e in cerr))
        ok(not serr, "server file follows the OTLP/JSON mapping" + "".join("\n# " + e for e in serr))
        ok(len(cspans) == 7 and len(sspans) == 7, f"7 + 7 spans ({len(cspans)}, {len(sspans)})")

        by_id = {s["spanId"]: s for s in cspans + sspans}
        csess = [s for s in cspans if s["name"] == "ferry.session"]
        ssess = [s for s in sspans if s["name"] == "ferry.session"]
        ok(all(s["kind"] == 3 for s in csess) and all(s["kind"] == 2 for s in ssess),
           "session kinds: client CLIENT (3), server SERVER (2)")
        good = True
        for s in ssess:
            p = by_id.get(s.get("parentSpanId"))
            good &= p is not None and p in csess and p["traceId"] == s["traceId"]
        ok(good, "each server session span is a child of a client session span, same trace")
        good = True
        for s in cspans + sspans:
            if s["name"].startswith("ferry/"):
                p = by_id.get(s.get("parentSpanId"))
                a = attrs(s)
                good &= (p is not None and p["name"] == "ferry.session"
                         and p["kind"] == s["kind"] and p["traceId"] == s["traceId"]
                         and a.get("rpc.system") == "ferry"
                         and a.get("rpc.method") == s["name"][6:])
        ok(good, "call spans: children of their session span, rpc.system/rpc.method")
        errs = [s for s in cspans + sspans if s["status"]["code"] == 2]
        ok(errs and all("error.type" in attrs(s) and s["status"].get("message") for s in errs),
           "every ERROR span has error.type and a message")
        ok(sum(1 for s in cspans + sspans if s["status"].get("message") == "tracer shut down") == 2,
           "the sessions open at shutdown were closed with 'tracer shut down'")
        ok(len(set(by_id)) == 14, "span ids are unique")
        ok(all("traceState" in s for s in ssess) and not any("traceState" in s for s in csess),
           "the server keeps the propagated tracestate")

        r = subprocess.run([ferryctl, "spans", cfile, sfile], capture_output=True, text=True)
        out = r.stdout.splitlines()
        ok(r.returncode == 0, f"ferryctl spans exits 0 ({r.stderr.strip()})")
        tree = [l for l in out if l.lstrip().startswith("- ")]
        depth = [(len(l) - len(l.lstrip())) // 2 for l in tree]
        ok(len(tree) == 14 and out[-1] == "14 spans", "ferryctl spans shows all 14 spans")
        shape = all((" CLIENT ferry.session " in l) == (dep == 0) for l, dep in zip(tree, depth)) \
            and all(dep == 1 for l, dep in zip(tree, depth) if " SERVER ferry.session " in l) \
            and all(dep == 2 for l, dep in zip(tree, depth) if " SERVER ferry/" in l)
        ok(shape, "tree: client session -> server session -> server calls")
        ok(any(" ms " in l or " us " in l for l in tree), "durations shown")

        bad = {
            "not_json": "{\"resourceSpans\": [\n",
            "number_timestamp": open(sfile).readline().replace(
                '"startTimeUnixNano":"', '"startTimeUnixNano":', 1).replace(
                '","endTimeUnixNano"', ',"endTimeUnixNano"', 1),
            "upper_hex": re.sub(r'"traceId":"([0-9a-f]{32})"',
                                lambda m: '"traceId":"' + m.group(1).upper() + '"',
                                open(cfile).readline(), count=1),
            "string_kind": open(cfile).readline().replace('"kind":3', '"kind":"SPAN_KIND_CLIENT"', 1),
        }
        for name, text in bad.items():
            p = os.path.join(d, name + ".jsonl")
            with open(p, "w") as f:
                f.write(text)
            r = subprocess.run([ferryctl, "spans", cfile, p], capture_output=True, text=True)
            lines = r.stderr.strip().splitlines()
            ok(r.returncode == 1 and len(lines) == 1 and lines[0].startswith("ferryctl: spans: " + p + ":1: "),
               f"ferryctl spans rejects {name}: {r.stderr.strip()}")
        r = subprocess.run([ferryctl, "spans", os.path.join(d, "missing")], capture_output=True, text=True)
        ok(r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, "missing file: exit 1, one line")
        r = subprocess.run([ferryctl, "spans"], capture_output=True, text=True)
        ok(r.returncode == 2, "no FILE: usage error (2)")

    print(f"1..{len(results)}")
    for i, (good, what) in enumerate(results, 1):
        print(f"{'ok' if good else 'not ok'} {i} - {what}")
    return 0 if all(g for g, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
