#!/usr/bin/env python3
"""The Wireshark dissector (tools/wireshark/ferry.lua) on live traffic.

Usage: wireshark_check.py PATH/TO/ferry-bench PATH/TO/ferryctl PATH/TO/ferry.lua

tcpdump captures loopback while ferry-bench runs short loops (wire v2), each
on a port of its own: small calls with trace blocks in mac mode, fragmented
messages in none mode (CRC32C), small calls in aead mode without a RETRY,
calls under 2% loss, and calls with token tables and deferred tokens (IOUs);
then a few malformed v1 datagrams sent with a plain socket.  tshark decodes
the capture with the dissector (-T json: the tree, frame by frame) and the
checks compare what it shows with what ferry-bench reported: every datagram
decodes as ferry with no warning or error; datagrams == tx_pkts and frames
== tx_frames (with the final CLOSEs); several frames per datagram; packet
numbers strictly increasing per direction; the handshake (CONNECT in its
v1 envelope, RETRY, CONNECT with the cookie, ACCEPT) field by field; calls
1..N answered, fragments on the grid adding up to msg_len, frames marked
as sent again == retransmits; trace blocks, token tables, IOUs and PUSH
records as sent.  Last, datagrams written to a pcap here: the worked
examples of docs/wire.md section 9, read from the document, frames of
every kind, and broken copies, each flagged with the expert info of its
fault.

Needs root (tcpdump on lo), tcpdump and tshark (./dev deps installs them);
without them it says so and skips, except under CI, where it fails.
Prints TAP; exits non-zero if any check fails.
"""
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

BENCH, FERRYCTL, LUA = sys.argv[1:4]
TMP = tempfile.mkdtemp(prefix="ferry-wshark-")
TMP_READ = None  # the copies tshark reads as nobody, if it must
results = []


def check(name, cond, detail=""):
    results.append((name, bool(cond), detail))


def finish():
    print("1..%d" % len(results))
    failed = 0
    for i, (name, ok, detail) in enumerate(results, 1):
        print("%s %d - %s" % ("ok" if ok else "not ok", i, name))
        if not ok:
            failed += 1
            for line in str(detail)[:1500].splitlines():
                print("#   " + line)
    print("# %d passed, %d failed" % (len(results) - failed, failed))
    shutil.rmtree(TMP, ignore_errors=True)
    if TMP_READ:
        shutil.rmtree(TMP_READ, ignore_errors=True)
    sys.exit(1 if failed else 0)


def skip(why):
    if os.environ.get("CI"):
        check("prerequisites: " + why, False)
        finish()
    print("1..0 # SKIP " + why)
    sys.exit(0)


if not shutil.which("tshark") or not shutil.which("tcpdump"):
    skip("tshark and tcpdump are needed (./dev deps installs them)")
if os.geteuid() != 0:
    skip("capturing on lo needs root")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- tshark, and Lua as root ---------------------------------------------
# Some Wireshark builds refuse to run Lua scripts as root.  Debian 12's
# 4.0 runs them; where it does not, tshark runs as nobody on copies that
# nobody can read.
def tshark_cmd(prefix, lua):
    return prefix + ["tshark", "-n", "-X", "lua_script:" + lua]


def lua_loads(prefix, lua):
    r = subprocess.run(["tshark", "-G", "protocols", "-X",
                        "lua_script:" + lua] if not prefix else
                       prefix + ["tshark", "-G", "protocols", "-X",
                                 "lua_script:" + lua],
                       capture_output=True, text=True, timeout=120)
    return any(line.split("\t")[-1:] == ["ferry"]
               for line in r.stdout.splitlines())


PREFIX, LUA_PATH = [], os.path.abspath(LUA)
# FERRY_WSHARK_NOBODY=1 takes the second way even where the first works.
if os.environ.get("FERRY_WSHARK_NOBODY") or not lua_loads(PREFIX, LUA_PATH):
    shared = tempfile.mkdtemp(prefix="ferry-wshark-nobody-")
    os.chmod(shared, 0o755)
    # ferry.lua loads its sibling files from its own folder.
    src = os.path.dirname(LUA_PATH)
    for name in os.listdir(src):
        if name.endswith(".lua"):
            shutil.copy(os.path.join(src, name), shared)
            os.chmod(os.path.join(shared, name), 0o644)
    LUA_PATH = os.path.join(shared, os.path.basename(LUA))
    PREFIX = ["setpriv", "--reuid=nobody", "--regid=nogroup",
              "--clear-groups", "--", "env", "HOME=" + shared,
              "XDG_CONFIG_HOME=" + shared]
    TMP_READ = shared
check("tshark loads the dissector (as %s)" %
      ("root" if not PREFIX else "nobody"), lua_loads(PREFIX, LUA_PATH))
if not results[-1][1]:
    finish()

# --- the capture ----------------------------------------------------------
KR = os.path.join(TMP, "bench.kr")
subprocess.run([FERRYCTL, "--keyring", KR, "key", "new"],
               capture_output=True, check=True)
# --no-gso: a UDP GSO train is one super-datagram on loopback, which a
# capture shows whole; a NIC (and the kernel, for a device without UDP
# segmentation offload) puts its segments on the wire one by one.
COMMON = ["loop", "--duration", "0.15", "--warmup", "0", "--quiet",
          "--no-gso"]
# name: (wire mode, request size, response size, in flight, arguments)
RUNS = {
    # Small calls, 4 in flight (coalesced 4 to a datagram), half of them
    # sampled: a call whose sampling differs from its session's carries a
    # trace block.  mac mode: frames in the clear, a tag after them.
    "trace": ("mac", 32, 64, 4,
              ["--trace-out", os.path.join(TMP, "spans.jsonl"),
               "--trace-sample", "0.5"]),
    # 5000-byte requests and 3000-byte responses on the grid of a
    # 1472-byte path, every datagram with its CRC32C (none mode).
    "fragmented": ("none", 5000, 3000, 2, ["--max-frame", "1472"]),
    # aead: frames are ciphertext; the handshake without a RETRY.
    "aead": ("aead", 32, 64, 4, ["--retry-never"]),
    # 2% of datagrams lost on receipt (after the capture saw them), so
    # that frames are sent again under new packet numbers.
    "lossy": ("mac", 200, 100, 8, ["--loss", "0.02"]),
    # A channel token at connect, two tokens per call, half of the calls
    # with IOUs pushed later, under 2% loss.
    "tokens": ("mac", 200, 100, 8,
               ["--keyring", KR, "--caps", "2", "--deferred", "0.5",
                "--loss", "0.02"]),
}
PORTS = {name: free_port() for name in RUNS}
BAD_PORT = free_port()
PCAP = os.path.join(TMP, "ferry.pcap")
flt = " or ".join("udp port %d" % p for p in
                  list(PORTS.values()) + [BAD_PORT])
dump = subprocess.Popen(["tcpdump", "-i", "lo", "-n", "-U", "-s", "0",
                         "-B", "16384", "-Z", "root", "-w", PCAP, flt],
                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                        text=True)
line = dump.stderr.readline()
check("tcpdump listens on lo", "listening on" in line, line)

reports, skipped = {}, {}
for name, (mode, size, resp, inflight, args) in RUNS.items():
    js = os.path.join(TMP, name + ".json")
    r = subprocess.run([BENCH] + COMMON +
                       ["--port", str(PORTS[name]), "--json", js,
                        "--wire-mode", mode, "--size", str(size),
                        "--resp-size", str(resp), "--inflight",
                        str(inflight)] + args,
                       capture_output=True, text=True, timeout=120)
    check("%s: ferry-bench exits 0" % name, r.returncode == 0,
          r.stderr[-600:])
    try:
        reports[name] = json.load(open(js))
    except (OSError, ValueError):
        reports[name] = {}


# Malformed v1 datagrams (the v1 dissector still reads the CONNECT
# envelope and a v1 peer's ERROR), each with the expert field it raises.
def hdr(typ, flags=0, dst=0x00020001, src=0x00010000, seq=0, req_id=0,
        msg_len=0, method=0, csum=0, magic=0x4652, version=1):
    return struct.pack("!HBBHHIIIIIIIII", magic, version, typ, flags,
                       method, dst, src, seq, 0, 128, req_id, msg_len, 0,
                       csum)


PARAMS = struct.pack("!BBHIIHHI", 0x81, 0, 16, 1 << 23, 128, 8192, 128, 0)
HELLO = hdr(3, req_id=1, msg_len=5, method=7) + b"hello"
BAD = [
    ("truncated", HELLO[:20], "ferry.truncated"),
    ("bad magic", b"XX" + HELLO[2:], "ferry.bad_magic"),
    ("bad version", HELLO[:2] + b"\x02" + HELLO[3:], "ferry.bad_version"),
    ("unknown type", HELLO[:3] + b"\x0c" + HELLO[4:], "ferry.bad_type"),
    ("length mismatch", hdr(1, dst=0, msg_len=30) + PARAMS,
     "ferry.length_mismatch"),
    ("TLV with a reserved byte", hdr(1, dst=0, msg_len=20) + PARAMS[:1] +
     b"\x01" + PARAMS[2:], "ferry.bad_tlv"),
    ("TLV running past the body", hdr(1, dst=0, msg_len=20) +
     PARAMS[:2] + b"\x00\x20" + PARAMS[4:], "ferry.bad_tlv"),
    ("no PARAMS", hdr(1, dst=0, msg_len=8) +
     struct.pack("!BBHI", 0x05, 0, 4, 3), "ferry.bad_tlv"),
    # The "hello" REQUEST of docs/wire.md section 10 with FF_CSUM and its
    # checksum, one payload bit flipped.
    ("checksum mismatch", hdr(3, flags=2, req_id=1, msg_len=5, method=7,
                              csum=0xED7EAFE5) + b"hellp",
     "ferry.checksum_bad"),
    ("garbage", bytes(range(7, 67)), "ferry.bad_magic"),
]
GOOD_CSUM = hdr(3, flags=2, req_id=1, msg_len=5, method=7,
                csum=0xED7EAFE5) + b"hello"
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    for _, data, _ in BAD:
        s.sendto(data, ("127.0.0.1", BAD_PORT))
        time.sleep(0.002)
    # Last: the correct one, which also says the capture has caught up.
    s.sendto(GOOD_CSUM, ("127.0.0.1", BAD_PORT))

# tcpdump writes what it has read; wait for the last datagram to be in the
# file before stopping it, so that nothing is cut off.
deadline = time.time() + 30
while time.time() < deadline:
    try:
        with open(PCAP, "rb") as fh:
            if GOOD_CSUM in fh.read():
                break
    except OSError:
        pass
    time.sleep(0.2)
time.sleep(0.2)
dump.send_signal(signal.SIGINT)
_, err = dump.communicate(timeout=30)
check("tcpdump: 0 packets dropped by kernel",
      "0 packets dropped by kernel" in err, err)

# --- decoding: tshark's JSON, the dissector's tree ------------------------
if PREFIX:
    shutil.copy(PCAP, TMP_READ)
    PCAP = os.path.join(TMP_READ, os.path.basename(PCAP))
    os.chmod(PCAP, 0o644)
decode = ["-o", "ferry.heuristic:FALSE", "-o", "ferry.udp_port:0"]
for p in list(PORTS.values()) + [BAD_PORT]:
    decode += ["-d", "udp.port==%d,ferry" % p]
cmd = tshark_cmd(PREFIX, LUA_PATH) + ["-r", PCAP] + decode + \
    ["-T", "json", "-J", "frame udp ferry"]
r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
check("tshark exits 0", r.returncode == 0, r.stderr[-800:])
check("tshark reports no Lua error", "Lua" not in r.stderr, r.stderr[-800:])


class Node(list):
    """A tree item's children as (key, value) pairs, keys repeating."""

    def get(self, key, default=None):
        for k, v in self:
            if k == key:
                return v
        return default

    def all(self, key):
        return [v for k, v in self if k == key]

    def walk(self):
        for k, v in self:
            yield k, v
            if isinstance(v, Node):
                yield from v.walk()

    def deep(self, key):
        return [v for k, v in self.walk() if k == key]


try:
    packets = json.loads(r.stdout, object_pairs_hook=Node)
except ValueError:
    packets = []


def num(s):
    return int(s, 0) if s not in (None, "") else None


WARN = 0x00600000  # Wireshark's PI_WARN: warnings and errors count


class Dgram:
    """One captured datagram as the dissector showed it."""

    def __init__(self, pkt):
        lay = pkt.get("_source").get("layers")
        self.no = num(lay.get("frame").get("frame.number"))
        udp = lay.get("udp")
        self.sport = num(udp.get("udp.srcport"))
        self.dport = num(udp.get("udp.dstport"))
        self.size = num(udp.get("udp.length")) - 8
        self.t = lay.get("ferry") or Node()
        self.experts = self.t.deep("_ws.expert")
        self.first = num(self.t.get("ferry.v2.first"))
        self.v1type = num(self.t.get("ferry.type"))
        # v2 frames: in the datagram, or in an envelope's WIRE2 TLV.
        self.frames = self.t.deep("ferry.v2.frame_tree")
        self.count = num(self.t.get("ferry.v2.frame_count"))

    def sev(self):
        return max([num(e.get("_ws.expert.severity")) for e in self.experts]
                   or [0])

    def flagged(self, field):
        return any(e.get(field) is not None for e in self.experts)

    def messages(self):
        return [e.get("_ws.expert.message") for e in self.experts]

    def kind(self):
        if self.first is None:
            return "v1" if self.t.get("ferry.magic") == "0x4652" else None
        if self.first >= 0xC0:
            return "long"
        return "short" if self.first >= 0x80 else None

    def ftypes(self):
        return [num(f.get("ferry.v2.frame.type")) for f in self.frames]


DGRAMS = [Dgram(p) for p in packets]
check("tshark decoded every captured datagram (%d)" % len(DGRAMS),
      len(DGRAMS) > 0)

REQ, REQF, RESP, RESPF, PUSH, ACK, CREDIT, CLOSE, PADDING = \
    0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x02, 0x03, 0x04, 0x00
FNAME = {0x00: "PADDING", 0x01: "PING", 0x02: "ACK", 0x03: "CREDIT",
         0x04: "CLOSE", 0x08: "REQUEST", 0x09: "REQUEST_FRAG",
         0x0A: "RESPONSE", 0x0B: "RESPONSE_FRAG", 0x0C: "PUSH"}
MODES = {"none": 0, "mac": 1, "aead": 2}


def run_rows(port):
    return [x for x in DGRAMS if port in (x.sport, x.dport)]


def frame_of(x, typ):
    return [f for f in x.frames if num(f.get("ferry.v2.frame.type")) == typ]


def check_handshake(name, port, mode, rows, retry):
    """CONNECT in its v1 envelope, RETRY, CONNECT with the cookie, ACCEPT:
    field by field.  Returns (client CID, server CID) or None."""
    hs = [x for x in rows if x.kind() in ("v1", "long")]
    want = ["CONNECT", "RETRY", "CONNECT", "ACCEPT"] if retry else \
        ["CONNECT", "ACCEPT"]
    got = []
    for x in hs:
        if x.kind() == "v1":
            got.append("CONNECT" if x.v1type == 1 else "v1 %s" % x.v1type)
        else:
            got.append({0: "CONNECT", 1: "RETRY", 2: "ACCEPT",
                        3: "REFUSE"}.get(x.first & 0x0f, "?"))
    check("%s: handshake is %s" % (name, ", ".join(want)), got == want, got)
    if got != want:
        return None
    conn = hs[0]
    tlvs = conn.t.all("ferry.tlv_tree")
    inner = tlvs[1] if len(tlvs) == 2 else Node()
    ccid = inner.get("ferry.v2.scid")
    env_ok = (conn.t.get("ferry.magic") == "0x4652" and
              conn.t.get("ferry.version") == "1" and
              num(conn.t.get("ferry.dst_sess")) == 0 and
              [t.get("ferry.tlv.type") for t in tlvs] == ["0x81", "0x86"] and
              ccid is not None and
              num(conn.t.get("ferry.src_sess")) == num(ccid) & 0xffffffff and
              conn.size >= 512 and conn.dport == port)
    check("%s: CONNECT: a v1 envelope (src_sess = the client CID's low 32 "
          "bits, PARAMS, WIRE2) of %d >= 512 bytes" % (name, conn.size),
          env_ok, conn.t[:12])
    hello = frame_of(conn, 0x20)
    params = frame_of(conn, 0x21)
    # A run with a channel token (ferry-bench --keyring) sends TOKEN and
    # its holder-key proof POP in the CONNECT; the others neither.
    tok = {0x24, 0x25} if name == "tokens" else set()
    ok = (inner.get("ferry.v2.first") == "0xc0" and
          inner.get("ferry.v2.version") == "2" and
          num(inner.get("ferry.v2.dcid")) == 0 and num(ccid) and
          conn.ftypes()[:2] == [0x20, 0x21] and
          set(conn.ftypes()) <= {0x20, 0x21, 0x22, 0x26, 0x27, 0x00} | tok
          and tok <= set(conn.ftypes()) and
          hello and hello[0].get("ferry.v2.hello.versions") == "0x0004" and
          num(hello[0].get("ferry.v2.hello.mode")) == MODES[mode] and
          len(hello[0].get("ferry.v2.hello.public_key", "")) == 32 * 3 - 1
          and params and num(params[0].get("ferry.params.max_frame")) and
          inner.deep("ferry.csum.status") == ["1"])
    check("%s: CONNECT: long header c0 v2, DCID 0, SCID %s; HELLO (v2, "
          "mode %s, key), PARAMS, FEATURES, (TRACEPARENT), %sPADDING; "
          "CRC32C good" %
          (name, ccid, mode, "TOKEN, POP, " if tok else ""), ok,
          conn.frames)
    cookie = None
    if retry:
        rt, conn2 = hs[1], hs[2]
        ck = frame_of(rt, 0x23)
        ok = (rt.first == 0xc1 and rt.t.get("ferry.v2.dcid") == ccid and
              num(rt.t.get("ferry.v2.scid")) == 0 and rt.ftypes() == [0x23]
              and rt.size == 46 and ck and
              abs(num(ck[0].get("ferry.v2.cookie.ts")) - time.time()) < 300
              and rt.t.deep("ferry.csum.status") == ["1"] and
              rt.sport == port)
        check("%s: RETRY: 46 bytes, DCID = the client's CID, SCID 0, "
              "COOKIE (ts now, mac), CRC32C good" % name, ok, rt.t)
        cookie = ck[0] if ck else None
        tl2 = conn2.t.all("ferry.tlv_tree")
        inner2 = tl2[1] if len(tl2) == 2 else Node()
        ck2 = frame_of(conn2, 0x23)
        ok = (inner2.get("ferry.v2.scid") == ccid and
              conn2.ftypes()[:3] == [0x20, 0x23, 0x21] and ck2 and cookie
              and ck2[0].get("ferry.v2.cookie.mac") ==
              cookie.get("ferry.v2.cookie.mac") and
              ck2[0].get("ferry.v2.cookie.ts") ==
              cookie.get("ferry.v2.cookie.ts") and
              conn2.size >= 512 and
              inner2.deep("ferry.csum.status") == ["1"])
        check("%s: second CONNECT: same client CID, RETRY's COOKIE right "
              "after HELLO, CRC32C good" % name, ok, conn2.frames[:3])
    acc = hs[-1]
    scid = acc.t.get("ferry.v2.scid")
    ah = frame_of(acc, 0x20)
    ok = (acc.first == 0xc2 and acc.t.get("ferry.v2.dcid") == ccid and
          num(scid) and acc.ftypes() == [0x20, 0x21, 0x22] and ah and
          ah[0].get("ferry.v2.hello.versions") == "0x0004" and
          num(ah[0].get("ferry.v2.hello.mode")) == MODES[mode] and
          len(acc.t.get("ferry.v2.tag", "")) == 16 * 3 - 1 and
          acc.sport == port)
    check("%s: ACCEPT: DCID = the client's CID, SCID = the server's, "
          "HELLO (v2, mode %s), PARAMS, FEATURES, 16-byte tag" %
          (name, mode), ok, acc.t)
    return ccid, scid


def check_run(name):
    mode, size, resp_size, inflight, args = RUNS[name]
    port, d = PORTS[name], reports.get(name, {})
    rows = run_rows(port)
    check("%s: datagrams captured" % name, len(rows) > 0)
    if not rows:
        return None
    undecoded = [x.no for x in rows if x.kind() is None]
    check("%s: all %d datagrams decode as ferry" % (name, len(rows)),
          not undecoded, undecoded[:20])
    noisy = [(x.no, x.messages()) for x in rows if x.sev() >= WARN]
    check("%s: no warning or error expert info (malformed, CRC, pn seen "
          "twice, off the grid)" % name, not noisy, noisy[:10])
    short = [x for x in rows if x.kind() == "short"]
    closes = [x for x in short if CLOSE in x.ftypes()]
    # The summary reads the counters before the endpoints' last CLOSEs.
    tx = d.get("tx_pkts", -1)
    check("%s: datagrams on the wire (%d) = tx_pkts (%d) + the final "
          "CLOSEs (%d)" % (name, len(rows), tx, len(closes)),
          tx <= len(rows) <= tx + len(closes))
    bad_mode = [x.no for x in short if x.first & 3 != MODES[mode]]
    check("%s: every short header in mode %s" % (name, mode), not bad_mode,
          bad_mode[:10])
    ids = check_handshake(name, port, mode, rows, "--retry-never" not in
                          args)
    if ids:
        ccid, scid = ids
        wrong = [x.no for x in short
                 if x.t.get("ferry.v2.dcid") != (scid if x.dport == port
                                                 else ccid)]
        check("%s: short headers to the server carry its CID %s, to the "
              "client the client's %s" % (name, scid, ccid), not wrong,
              wrong[:10])
    # Packet numbers: per direction strictly increasing from the first
    # (client 0, server 1: ACCEPT was its 0), none twice (v2's rule: a
    # datagram is sealed once, under a pn of its own).
    for who, dirn, first in (("client", lambda x: x.dport == port, 0),
                             ("server", lambda x: x.sport == port, 1)):
        pns = [num(x.t.deep("ferry.v2.pn_full")[0]) for x in short
               if dirn(x) and x.t.deep("ferry.v2.pn_full")]
        ok = pns and pns[0] == first and \
            all(b > a for a, b in zip(pns, pns[1:]))
        check("%s: %s's packet numbers %d.. strictly increasing, never "
              "repeated (%d datagrams)" % (name, who, first, len(pns)), ok,
              pns[:10])
    if mode == "aead":
        sealed = [x.no for x in short if not x.t.deep("ferry.v2.ciphertext")
                  or x.frames]
        check("aead: every short header's frames shown as ciphertext, "
              "with its tag", not sealed, sealed[:10])
        return None
    # Frames: per datagram, and in all against tx_frames.
    counts = [x.count for x in short]
    nframes = sum(c or 0 for c in counts)
    tx_frames = d.get("wire", {}).get("tx_frames")
    in_closes = sum(x.count for x in closes)
    check("%s: frames in short headers (%d) = tx_frames (%s) + those of "
          "the final CLOSEs" % (name, nframes, tx_frames),
          tx_frames is not None and
          tx_frames <= nframes <= tx_frames + in_closes)
    mism = [x.no for x in short if x.count != len(x.frames)]
    check("%s: frame_count matches the frames shown" % name, not mism,
          mism[:10])
    hist = {}
    for x in short:
        hist[x.count] = hist.get(x.count, 0) + 1
    print("# %s: datagrams by frame count %s" % (name, sorted(hist.items())))
    return rows, short


def calls(name, short, port):
    """Every data frame: (direction, kind, req_id, frag_off, payload_len,
    msg_len, frame)."""
    out = []
    for x in short:
        for f in x.frames:
            t = num(f.get("ferry.v2.frame.type"))
            if t in (REQ, REQF, RESP, RESPF):
                out.append((t in (REQ, REQF), num(f.get("ferry.req_id")),
                            num(f.get("ferry.frag_off")),
                            num(f.get("ferry.payload_len")),
                            num(f.get("ferry.msg_len")), f, x))
    return out


def check_calls(name, short, d, size, resp_size, inflight):
    data = calls(name, short, PORTS[name])
    reqs = set(c[1] for c in data if c[0])
    answered = set(c[1] for c in data if not c[0])
    done = d.get("completed", -1) + d.get("errors", 0)
    n = len(reqs)
    check("%s: calls on the wire (%d) are req_id 1..N, at least the %d "
          "completed" % (name, n, done),
          reqs == set(range(1, n + 1)) and n >= done)
    open_calls = reqs - answered
    check("%s: every call answered (%d) but for at most the last %d" %
          (name, len(answered), inflight),
          answered <= reqs and all(c > n - inflight for c in open_calls),
          sorted(open_calls)[:20])
    sizes = set(num(c[5].get("ferry.app_len")) for c in data
                if c[0] and c[2] == 0)
    check("%s: every request carries %d payload bytes" % (name, size),
          sizes == {size}, sizes)
    rsizes = set(num(c[5].get("ferry.app_len")) for c in data
                 if not c[0] and c[2] == 0)
    check("%s: every response carries %d payload bytes" % (name, resp_size),
          rsizes == {resp_size}, rsizes)
    # Each message's fragments, each place once (a frame sent again fills
    # the same place), cover msg_len exactly.
    short_msgs = []
    for is_req in (True, False):
        have = {}
        for c in data:
            if c[0] == is_req:
                have.setdefault(c[1], {})[c[2]] = (c[3], c[4])
        for key, frags in have.items():
            msg_len = next(iter(frags.values()))[1]
            if sum(p for p, _ in frags.values()) != msg_len and \
                    key in answered:
                short_msgs.append(key)
    check("%s: every answered call's fragments add up to its msg_len" %
          name, not short_msgs, short_msgs[:20])
    again = sum(1 for x in short for f in x.frames
                if f.get("ferry.v2.retransmission_of"))
    check("%s: frames marked sent again (%d) = retransmits (%d)" %
          (name, again, d.get("retransmits", -1)),
          again == d.get("retransmits"))
    return data


# Small calls with trace blocks, in mac mode.
out = check_run("trace")
if out:
    rows, short = out
    d = reports.get("trace", {})
    data = check_calls("trace", short, d, 32, 64, 4)
    multi = [x for x in short if sum(1 for t in x.ftypes() if t == REQ) >= 2]
    check("trace: requests coalesced, several to a datagram (%d such)" %
          len(multi), multi)
    withack = [x for x in short if ACK in x.ftypes() and
               (REQ in x.ftypes() or RESP in x.ftypes())]
    check("trace: ACKs ride in datagrams of calls (%d)" % len(withack),
          withack)
    traced = [c for c in data if c[0] and c[5].get("ferry.trace_tree")]
    want = d.get("trace", {}).get("server", {}).get("trace_blocks_received")
    ids = set(c[1] for c in traced)
    check("trace: calls with a trace block (%d) = trace_blocks_received "
          "(%s)" % (len(ids), want), ids and len(ids) == want)
    tps = [c[5].deep("ferry.trace.traceparent")[0] for c in traced
           if c[5].deep("ferry.trace.traceparent")]
    check("trace: every trace block holds a W3C traceparent",
          tps and len(tps) == len(traced) and
          all(re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]", t)
              for t in tps), tps[:3])
    conn = [x for x in rows if x.kind() == "v1"]
    tp = [x.t.deep("ferry.traceparent") for x in conn]
    check("trace: both CONNECTs carry the session's TRACEPARENT, the same",
          len(tp) == 2 and tp[0] == tp[1] and len(tp[0]) == 1 and
          re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]", tp[0][0]), tp)
    flags = [c for c in traced if not num(c[5].get(
        "ferry.v2.frame.flags")) & 2]
    check("trace: the frames with a trace block have flag TRACE", not flags)
    # The last datagram each way: the client's CLOSE, the server's
    # CLOSE|REPLY.  Not the last two on the wire: answers to calls still
    # in flight may leave the server after the client's CLOSE did (one CI
    # run saw an ACK and four RESPONSEs between them).
    port = PORTS["trace"]
    last = [[x for x in short if dirn(x)][-1:]
            for dirn in (lambda x: x.dport == port, lambda x: x.sport == port)]
    check("trace: the session ends with CLOSE from the client and "
          "CLOSE|REPLY from the server",
          all(len(x) == 1 and x[0].ftypes() == [CLOSE] for x in last) and
          [num(frame_of(x[0], CLOSE)[0].get("ferry.v2.frame.flags"))
           for x in last] == [0, 1],
          [[y.ftypes() for y in x] for x in last])

# Fragmented messages on the grid, none mode.
out = check_run("fragmented")
if out:
    rows, short = out
    d = reports.get("fragmented", {})
    data = check_calls("fragmented", short, d, 5000, 3000, 2)
    units = set(num(x.t.get("ferry.v2.session.frag_unit")) for x in short)
    # 1472 - 13 - 4 (CRC32C) - 18 - 24: docs/wire.md section 5.6.
    check("fragmented: the session's grid is 1413 bytes", units == {1413},
          units)
    offs = set(c[2] for c in data if c[0])
    lens = set(c[3] for c in data if c[0])
    check("fragmented: requests in fragments at 0, 1413, 2826, 4239 of "
          "1413 bytes but the last (761)",
          offs == {0, 1413, 2826, 4239} and lens == {1413, 761},
          (offs, lens))
    roffs = set(c[2] for c in data if not c[0])
    check("fragmented: responses at 0, 1413, 2826", roffs == {0, 1413, 2826},
          roffs)
    bad = [x.no for x in rows if x.kind() == "short" and
           x.t.deep("ferry.csum.status") != ["1"]]
    check("fragmented: every short header, CLOSE included, has a good "
          "CRC32C", not bad, bad[:20])
    cr = [x for x in short if CREDIT in x.ftypes()]
    check("fragmented: CREDIT frames ride along (%d datagrams), beside "
          "other frames" % len(cr), cr and any(x.count > 1 for x in cr))
    big = max(x.size for x in short)
    check("fragmented: no datagram above the 1472-byte path (%d)" % big,
          big <= 1472)

out = check_run("aead")

out = check_run("lossy")
if out:
    rows, short = out
    d = reports.get("lossy", {})
    check_calls("lossy", short, d, 200, 100, 8)
    check("lossy: some frames were sent again (%d retransmits)" %
          d.get("retransmits", 0), d.get("retransmits", 0) > 0)

# Tokens: the channel token at connect, token tables, IOUs and PUSHes.
if "tokens" not in skipped:
    out = check_run("tokens")
    if out:
        rows, short = out
        d = reports.get("tokens", {})
        data = check_calls("tokens", short, d, 200, 100, 8)
        conn = [x for x in rows if x.kind() == "v1"]
        check("tokens: the CONNECTs carry TOKEN and POP, POP last but "
              "PADDING", conn and all(0x24 in x.ftypes() and
                                      [t for t in x.ftypes() if t][-1]
                                      == 0x25 for x in conn),
              [x.ftypes() for x in conn])
        firsts = {}
        for c in data:
            if c[0] and c[2] == 0 and \
                    num(c[5].get("ferry.v2.frame.flags")) & 1:
                firsts[c[1]] = c[5]
        check("tokens: calls with a token table (%d) = table_calls (%s)" %
              (len(firsts), d.get("table_calls")),
              len(firsts) == d.get("table_calls"))
        deferred = [f for f in firsts.values()
                    if "1" in f.deep("ferry.cap.kind")]
        check("tokens: calls with IOUs (%d) = deferred_calls (%s)" %
              (len(deferred), d.get("deferred_calls")),
              len(deferred) == d.get("deferred_calls"))
        promised = [i for f in firsts.values()
                    for i in f.deep("ferry.cap.iou")]
        check("tokens: IOU entries (%d) = ious_promised (%s), each named "
              "once" % (len(promised), d.get("ious_promised")),
              len(promised) == d.get("ious_promised") and
              len(set(promised)) == len(promised))
        pushed = {}
        pushes = [f for x in short for f in frame_of(x, PUSH)]
        for f in pushes:
            if not f.get("ferry.v2.retransmission_of"):
                for i, c in zip(f.deep("ferry.push.iou"),
                                f.deep("ferry.push.code")):
                    pushed[i] = pushed.get(i, 0) + 1 if c == "0" else -1000
        check("tokens: PUSH records (%d) = ious_pushed (%s), each IOU "
              "resolved once" % (len(pushed), d.get("ious_pushed")),
              len(pushed) == d.get("ious_pushed") and
              set(pushed.values()) == {1} and set(pushed) == set(promised))
        ids = [num(f.get("ferry.v2.push_id")) for f in pushes
               if not f.get("ferry.v2.retransmission_of")]
        check("tokens: push_ids 1, 2, 3 ... once each", ids ==
              list(range(1, len(ids) + 1)), ids[:20])

# The malformed v1 datagrams, in the order sent, then the good one.
bad_rows = run_rows(BAD_PORT)
check("malformed: all %d datagrams captured" % (len(BAD) + 1),
      len(bad_rows) == len(BAD) + 1, len(bad_rows))
for (what, _, field), x in zip(BAD, bad_rows):
    check("malformed: %s is flagged %s" % (what, field),
          x.flagged(field) and x.sev() >= WARN,
          "%s: %s" % (x.no, x.messages()))
if len(bad_rows) == len(BAD) + 1:
    x = bad_rows[-1]
    check("malformed: the correct FF_CSUM frame after them is clean",
          x.sev() < WARN and x.t.deep("ferry.csum.status") == ["1"],
          x.messages())

# The port preference and the heuristic, without -d: the trace run's port
# by ferry.udp_port, the others by the heuristic (the v1 envelope of the
# CONNECT, then the v2 datagrams of the CIDs its handshake named).
cmd = tshark_cmd(PREFIX, LUA_PATH) + [
    "-r", PCAP, "-o", "ferry.udp_port:%d" % PORTS["trace"],
    "-T", "fields", "-e", "udp.srcport", "-e", "udp.dstport",
    "-e", "ferry.v2.first", "-e", "ferry.magic"]
r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
seen = {}
for line in r.stdout.splitlines():
    v = line.split("\t")
    if len(v) == 4 and (v[2] or v[3]):
        for p in (num(v[0]), num(v[1])):
            seen[p] = seen.get(p, 0) + 1
for name, port in PORTS.items():
    if name in skipped:
        continue
    check("without -d: %s's port decodes by %s" %
          (name, "the preference" if name == "trace" else "heuristic"),
          seen.get(port) == len(run_rows(port)),
          "%s of %d" % (seen.get(port), len(run_rows(port))))

# --- wire v2: docs/wire.md section 9's bytes ---------------------------
# Read from the document itself (zeros where it elides them), written to a
# pcap of raw IPv4 packets and decoded like the capture.
def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def doc_examples(path):
    text = open(path).read()
    sec = text[text.index("## 9. Worked examples"):
               text.index("## 10. ")]
    out = []
    for block in sec.split("```")[1::2]:
        data = bytearray()
        for line in block.strip().splitlines():
            off, _, rest = line.partition("  ")
            if off == "....":
                continue
            hexes = bytes.fromhex(rest.strip())
            at = int(off, 16)
            data[len(data):] = bytes(at + len(hexes) - len(data))
            data[at:at + len(hexes)] = hexes
        out.append(bytes(data))
    return out


def write_pcap(path, payloads, port=31850):
    with open(path, "wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101))
        for i, p in enumerate(payloads):
            udp = struct.pack("!HHHH", 40000, port, 8 + len(p), 0) + p
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i,
                             0x4000, 64, 17, 0, b"\x7f\0\0\1",
                             b"\x7f\0\0\1")
            s16 = sum(struct.unpack("!10H", ip))
            s16 = (s16 & 0xFFFF) + (s16 >> 16)
            ip = ip[:10] + struct.pack("!H", ~s16 & 0xFFFF) + ip[12:]
            fh.write(struct.pack("<IIII", i, 0, len(ip) + len(udp),
                                 len(ip) + len(udp)) + ip + udp)


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(LUA))))
short_mac, envelope, retry = doc_examples(
    os.path.join(ROOT, "docs", "wire.md"))
# The same frames in none mode, under pn 8 (pn 7 again on the same CID
# would be flagged as seen twice).
short_none = b"\x80" + short_mac[1:9] + struct.pack("!I", 8) + short_mac[13:43]
short_none += struct.pack("!I", crc32c(short_none))


# Datagrams built here, in none mode (checked CRC32C) unless said.
def frame(typ, flags, body):
    return struct.pack("!BBH", typ, flags, len(body)) + body


def short(dcid, pn, frames, mode=0):
    d = bytes([0x80 | mode]) + struct.pack("!QI", dcid, pn) + frames
    return d + (struct.pack("!I", crc32c(d)) if mode == 0 else bytes(16))


def long_hdr(typ, dcid, scid, frames, tag=False):
    d = bytes([0xC0 | typ, 2]) + struct.pack("!QQ", dcid, scid) + frames
    return d + (bytes(16) if tag else struct.pack("!I", crc32c(d)))


OTHER = 0xABCDEF0123456789  # a CID of no session in this capture
TOKEN = b"T" * 10
TABLE = struct.pack("!BBH", 1, 2, 30) + struct.pack("!BBH", 0, 0, 10) + \
    TOKEN + struct.pack("!BBHQ", 1, 0, 8, 77)
# A REQUEST with a token table (a token, an IOU) and 3 bytes of payload,
# an ACK with ECN counts and a second range, a CREDIT.
S1 = short(OTHER, 5, frame(0x02, 1, struct.pack("!IHH3IHH", 10, 5, 2, 1, 2,
                                                 3, 1, 3)) +
           frame(0x08, 1, struct.pack("!IH", 1, 7) + TABLE + b"abc") +
           frame(0x03, 0, struct.pack("!I", 65536)))
# A PUSH (the IOU resolved with a token, another rejected), an error
# RESPONSE, a CLOSE|REPLY with code 0.
ERRB = struct.pack("!IH", 4097, 9) + b"no method"
S2 = short(OTHER, 6, frame(0x0C, 0, struct.pack("!I", 1) +
                           struct.pack("!QIHH", 77, 0, 10, 0) + TOKEN +
                           struct.pack("!QIHH", 78, 4096, 0, 0)) +
           frame(0x0A, 1, struct.pack("!I", 2) + ERRB) +
           frame(0x04, 1, struct.pack("!IH", 0, 0)))
# A session of this capture: the doc's client (its CONNECT is above) and a
# server CID of our own, none mode, path 1472 (frag_unit 1413).
SERVER = 0x1122334455667788
CLIENT = 0x3c5e8a1f0b7d9e24
ACCEPT = long_hdr(2, CLIENT, SERVER,
                  frame(0x20, 0, struct.pack("!HBB", 4, 0, 0) + bytes(32)) +
                  frame(0x21, 0, struct.pack("!IIHHHBB", 1 << 23, 1 << 20,
                                             1472, 128, 1000, 11, 0)) +
                  frame(0x22, 0, struct.pack("!I", 3)), tag=True)
ON_GRID = short(SERVER, 0, frame(0x09, 0, struct.pack("!IHII", 1, 7, 3000,
                                                       1413) + bytes(1413)))
OFF_GRID = short(SERVER, 1, frame(0x09, 0, struct.pack("!IHII", 1, 7, 3000,
                                                        100) + bytes(1413)))
V2 = [  # payload, what it is, field that must be "1" (or None), expected
    (short_mac, "9.1, mac", None),
    (short_none, "9.1 in none mode", None),
    (envelope, "9.2's CONNECT in its v1 envelope", None),
    (retry, "9.2's RETRY", None),
    (envelope[0x44:], "9.2's CONNECT bare", None),
    (S1, "a REQUEST with a token table, ACK with ECN and ranges, CREDIT",
     None),
    (S2, "a PUSH with two records, an error RESPONSE, CLOSE|REPLY", None),
    (ACCEPT, "an ACCEPT for 9.2's client", None),
    (ON_GRID, "a REQUEST_FRAG on the session's grid", None),
    (short_none[:20] + b"X" + short_none[21:], "9.1 none, a byte changed",
     "ferry.checksum_bad"),
    (b"\x83" + short_mac[1:], "a short header in mode 11",
     "ferry.v2.bad_header"),
    (bytes([retry[0] | 0x10]) + retry[1:], "a long header with reserved bits",
     "ferry.v2.bad_header"),
    (short_none[:13] + b"\x08\x00\xff\x00" + short_none[17:],
     "a frame running past the trailer (none)", "ferry.v2.bad_frame"),
    (short_mac[:-5], "9.1 (mac) cut by 5 bytes: its last frame runs into "
     "the tag", "ferry.v2.bad_frame"),
    (short_mac[:15], "a short header of 15 bytes", "ferry.truncated"),
    (S1[:-9] + struct.pack("!I", crc32c(S1[:-9])),
     "none, cut inside its last frame (CRC recomputed)", "ferry.v2.bad_frame"),
    (short(OTHER, 7, frame(0x02, 0, struct.pack("!IHHHH", 10, 0, 0, 0, 1))),
     "an ACK with a gap of 0", "ferry.v2.bad_frame"),
    (short(OTHER, 8, frame(0x0C, 0, struct.pack("!I", 0) +
                           struct.pack("!QIHH", 77, 0, 10, 0) + TOKEN)),
     "a PUSH with push_id 0", "ferry.v2.bad_frame"),
    (S1, "S1 again: its pn seen twice", "ferry.v2.pn_reused"),
    (long_hdr(1, CLIENT, 0, frame(0x28, 0, ERRB)),
     "a RETRY with an ERROR, no COOKIE", "ferry.v2.bad_handshake"),
    (envelope[:12] + b"\0\0\0\1" + envelope[16:],
     "an envelope whose src_sess is not the inner SCID's", "ferry.bad_tlv"),
    (OFF_GRID, "a REQUEST_FRAG off the session's grid", "ferry.v2.bad_grid"),
    (short(SERVER, 2, frame(0x01, 0, b""), mode=1),
     "a mac short header in a none session", "ferry.v2.bad_header"),
]
v2pcap = os.path.join(TMP_READ or TMP, "v2.pcap")
write_pcap(v2pcap, [v[0] for v in V2])
os.chmod(v2pcap, 0o644)
V2F = ["_ws.col.Info", "_ws.expert.severity", "_ws.expert.message",
       "ferry.req_id", "ferry.payload", "ferry.csum.status", "ferry.v2.scid",
       "ferry.v2.cookie.ts", "ferry.v2.frame_count", "ferry.cap.kind",
       "ferry.cap.iou", "ferry.cap.token", "ferry.app_len",
       "ferry.v2.ack.range", "ferry.v2.ack.ecn", "ferry.v2.credit.limit",
       "ferry.push.iou", "ferry.push.code", "ferry.error.code",
       "ferry.v2.push_id", "ferry.v2.retransmission_of",
       "ferry.v2.session.frag_unit"] + sorted(set(v[2] for v in V2 if v[2]))
cmd = tshark_cmd(PREFIX, LUA_PATH) + ["-r", v2pcap, "-d",
                                      "udp.port==31850,ferry", "-T",
                                      "fields", "-E", "occurrence=a",
                                      "-E", "aggregator=;"]
for fld in V2F:
    cmd += ["-e", fld]
r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
v2rows = [dict(zip(V2F, line.split("\t"))) for line in r.stdout.splitlines()]


def sev_max(x):
    return max([num(v) for v in x["_ws.expert.severity"].split(";") if v]
               or [0])



check("v2: all %d datagrams decoded" % len(V2), len(v2rows) == len(V2),
      r.stderr[-600:])
for (data, what, field), x in zip(V2, v2rows):
    if field:
        check("v2: %s is flagged %s" % (what, field),
              x[field] == "1" and sev_max(x) >= WARN, x["_ws.expert.message"])
    else:
        check("v2: %s decodes clean" % what, sev_max(x) < WARN,
              x["_ws.expert.message"])
if len(v2rows) == len(V2):
    for i in (0, 1):
        x = v2rows[i]
        check("v2: %s holds calls 41 and 42, \"hello\" and \"world\"" %
              V2[i][1], x["ferry.req_id"] == "41;42" and
              x["ferry.payload"] == "68656c6c6f;776f726c64", x)
    check("v2: the none-mode CRC32C is correct",
          v2rows[1]["ferry.csum.status"] == "1")
    for i in (2, 4):
        check("v2: %s: client CID and CRC32C" % V2[i][1],
              v2rows[i]["ferry.v2.scid"] == "0x3c5e8a1f0b7d9e24" and
              v2rows[i]["ferry.csum.status"] == "1", v2rows[i])
    check("v2: RETRY's cookie timestamp is 1800000000",
          v2rows[3]["ferry.v2.cookie.ts"] == "1800000000" and
          v2rows[3]["ferry.csum.status"] == "1", v2rows[3])
    x = v2rows[5]
    check("v2: S1: 3 frames; token table (a token, IOU 77), 3 payload "
          "bytes; ACK ranges 8-10 and 4-6 with ECN; CREDIT 65536",
          x["ferry.v2.frame_count"] == "3" and
          x["ferry.cap.kind"] == "0;1" and x["ferry.cap.iou"] == "77" and
          x["ferry.cap.token"] == TOKEN.hex() and x["ferry.app_len"] == "3"
          and x["ferry.v2.ack.range"] == "8-10;4-6" and
          x["ferry.v2.ack.ecn"] and
          x["ferry.v2.credit.limit"] == "65536" and
          x["ferry.csum.status"] == "1", x)
    x = v2rows[6]
    check("v2: S2: PUSH 1 with IOUs 77 (token) and 78 (4096), error "
          "RESPONSE 4097, CLOSE code 0",
          x["ferry.v2.frame_count"] == "3" and x["ferry.v2.push_id"] == "1"
          and x["ferry.push.iou"] == "77;78" and
          x["ferry.push.code"] == "0;4096" and
          x["ferry.error.code"] == "4097;0", x)
    check("v2: the REQUEST_FRAG on the grid knows the session's frag_unit "
          "(1413)", v2rows[8]["ferry.v2.session.frag_unit"] == "1413",
          v2rows[8])
    x = v2rows[V2.index(next(v for v in V2 if v[1].startswith("S1 again")))]
    check("v2: S1 again: its REQUEST is marked sent again",
          x["ferry.v2.retransmission_of"] == "6", x)
finish()
