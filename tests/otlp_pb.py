#!/usr/bin/env python3
"""Decode OTLP protobuf (ExportTraceServiceRequest) without generated code.

Used by tests/otlp_http.py and tests/otlp_file.py.  Two decoders:

  - decode_request(): a strict protobuf wire-format reader driven by SCHEMA,
    a table of the field numbers and types of opentelemetry-proto's
    trace.proto, common.proto, resource.proto and trace_service.proto,
    TRANSCRIBED BY HAND from those files (checked against them at
    opentelemetry-proto commit ac2c4b5).  It is not the official
    definitions: Debian 12 packages none (golang-opentelemetry-otel-dev
    1.1.0 ships the Go SDK without go.opentelemetry.io/proto/otlp; no
    python3-opentelemetry-* package exists), and CI takes only Debian
    packages.  Every field must be in the table with its wire type, so a
    wrong field number or type fails the decode.
  - official_decode(): with FERRY_OTLP_PROTO_DIR pointing at a checkout of
    the official opentelemetry-proto repository, `protoc --decode` with its
    own .proto files (protoc from Debian's protobuf-compiler).  Skipped
    when the variable is unset (as in CI).

raw_ok() runs `protoc --decode_raw` (a structural check that needs no
definitions) when protoc is installed.
"""
import os
import shutil
import struct
import subprocess

# message -> {field number: (name, type, repeated)}; a type is a scalar
# name or another message's.
SCHEMA = {
    "ExportTraceServiceRequest": {1: ("resource_spans", "ResourceSpans", True)},
    "ResourceSpans": {1: ("resource", "Resource", False),
                      2: ("scope_spans", "ScopeSpans", True),
                      3: ("schema_url", "string", False)},
    "Resource": {1: ("attributes", "KeyValue", True),
                 2: ("dropped_attributes_count", "uint32", False)},
    "ScopeSpans": {1: ("scope", "InstrumentationScope", False),
                   2: ("spans", "Span", True),
                   3: ("schema_url", "string", False)},
    "InstrumentationScope": {1: ("name", "string", False),
                             2: ("version", "string", False),
                             3: ("attributes", "KeyValue", True),
                             4: ("dropped_attributes_count", "uint32", False)},
    "Span": {1: ("trace_id", "bytes", False), 2: ("span_id", "bytes", False),
             3: ("trace_state", "string", False),
             4: ("parent_span_id", "bytes", False),
             5: ("name", "string", False), 6: ("kind", "enum", False),
             7: ("start_time_unix_nano", "fixed64", False),
             8: ("end_time_unix_nano", "fixed64", False),
             9: ("attributes", "KeyValue", True),
             10: ("dropped_attributes_count", "uint32", False),
             11: ("events", "Event", True),
             12: ("dropped_events_count", "uint32", False),
             13: ("links", "Link", True),
             14: ("dropped_links_count", "uint32", False),
             15: ("status", "Status", False), 16: ("flags", "fixed32", False)},
    "Event": {1: ("time_unix_nano", "fixed64", False),
              2: ("name", "string", False),
              3: ("attributes", "KeyValue", True),
              4: ("dropped_attributes_count", "uint32", False)},
    "Link": {1: ("trace_id", "bytes", False), 2: ("span_id", "bytes", False),
             3: ("trace_state", "string", False),
             4: ("attributes", "KeyValue", True),
             5: ("dropped_attributes_count", "uint32", False),
             6: ("flags", "fixed32", False)},
    "Status": {2: ("message", "string", False), 3: ("code", "enum", False)},
    "KeyValue": {1: ("key", "string", False), 2: ("value", "AnyValue", False)},
    "AnyValue": {1: ("string_value", "string", False),
                 2: ("bool_value", "bool", False),
                 3: ("int_value", "int64", False),
                 4: ("double_value", "double", False),
                 7: ("bytes_value", "bytes", False)},
}

WIRE = {"bytes": 2, "string": 2, "enum": 0, "uint32": 0, "int64": 0,
        "bool": 0, "fixed64": 1, "fixed32": 5, "double": 1}
# The scalars proto3 leaves out at their default value (the oneof members
# of AnyValue are always written).
ONEOF = {"AnyValue"}


class DecodeError(Exception):
    pass


def varint(buf, i):
    shift = v = 0
    while True:
        if i >= len(buf):
            raise DecodeError("truncated varint")
        b = buf[i]
        i += 1
        v |= (b & 0x7f) << shift
        if not b & 0x80:
            return v, i
        shift += 7
        if shift > 63:
            raise DecodeError("varint too long")


def decode(buf, msg="ExportTraceServiceRequest"):
    """A dict of @msg's fields; repeated ones are lists."""
    out, i, table = {}, 0, SCHEMA[msg]
    while i < len(buf):
        key, i = varint(buf, i)
        num, wt = key >> 3, key & 7
        if num not in table:
            raise DecodeError("%s: unknown field %d" % (msg, num))
        name, typ, rep = table[num]
        want = 2 if typ in SCHEMA else WIRE[typ]
        if wt != want:
            raise DecodeError("%s.%s: wire type %d, not %d" % (msg, name, wt, want))
        if wt == 0:
            v, i = varint(buf, i)
            if typ == "int64" and v >= 1 << 63:
                v -= 1 << 64
            if typ == "bool":
                if v > 1:
                    raise DecodeError("bool %d" % v)
                v = bool(v)
        elif wt == 1:
            if i + 8 > len(buf):
                raise DecodeError("truncated fixed64")
            v = struct.unpack_from("<d" if typ == "double" else "<Q", buf, i)[0]
            i += 8
        elif wt == 5:
            v = struct.unpack_from("<I", buf, i)[0]
            i += 4
        else:
            n, i = varint(buf, i)
            if i + n > len(buf):
                raise DecodeError("%s.%s: length past the end" % (msg, name))
            v = bytes(buf[i:i + n])
            i += n
            if typ == "string":
                v = v.decode("utf-8")  # raises on invalid UTF-8
            elif typ in SCHEMA:
                v = decode(v, typ)
        if msg not in ONEOF and not rep and typ not in SCHEMA and \
                v in (0, b"", "", False):
            raise DecodeError("%s.%s: default value written" % (msg, name))
        if rep:
            out.setdefault(name, []).append(v)
        else:
            out[name] = v
    return out


def attrs(kvs):
    """KeyValue list -> {key: python value}."""
    out = {}
    for kv in kvs or []:
        v = kv.get("value", {})
        out[kv["key"]] = next(iter(v.values())) if v else None
    return out


def spans_of(req):
    """[(resource attributes, scope, span)] of a decoded request."""
    out = []
    for rs in req.get("resource_spans", []):
        res = attrs(rs.get("resource", {}).get("attributes"))
        for ss in rs.get("scope_spans", []):
            for sp in ss.get("spans", []):
                out.append((res, ss.get("scope", {}), sp))
    return out


def frames(data):
    """Split a length-delimited file (varint length, message) into
    messages."""
    i, out = 0, []
    while i < len(data):
        n, i = varint(data, i)
        if i + n > len(data):
            raise DecodeError("frame past the end of the file")
        out.append(data[i:i + n])
        i += n
    return out


def raw_ok(body):
    """`protoc --decode_raw` accepts @body (True without protoc)."""
    if not shutil.which("protoc"):
        return True
    r = subprocess.run(["protoc", "--decode_raw"], input=body,
                       capture_output=True)
    return r.returncode == 0


def official_decode(body):
    """Text of `protoc --decode` with the official .proto files, or None
    when FERRY_OTLP_PROTO_DIR is not set."""
    d = os.environ.get("FERRY_OTLP_PROTO_DIR")
    if not d:
        return None
    r = subprocess.run(
        ["protoc", "-I", d,
         "--decode=opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest",
         os.path.join(d, "opentelemetry/proto/collector/trace/v1/trace_service.proto")],
        input=body, capture_output=True)
    if r.returncode != 0:
        raise DecodeError("protoc --decode: " + r.stderr.decode()[-300:])
    return r.stdout.decode()
