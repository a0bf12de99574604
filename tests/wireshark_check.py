#!/usr/bin/env python3
"""The Wireshark dissector (tools/wireshark/ferry.lua) on live traffic.

Usage: wireshark_check.py PATH/TO/ferry-bench PATH/TO/ferryctl PATH/TO/ferry.lua

tcpdump captures loopback while ferry-bench runs short loops, each on a port
of its own: small calls with trace blocks, fragmented messages with
--wire-csum, and calls with token tables and deferred tokens (IOUs) under
2% loss; then a few malformed datagrams sent with a plain socket.  tshark
decodes the capture with the dissector and the checks compare what it shows
with what ferry-bench reported in --json: every datagram decodes as ferry
with no warning or error, data frames marked as retransmissions == the
endpoints' retransmits, calls, sessions, message lengths, trace blocks,
token tables, IOUs and PUSH records as sent; and each malformed datagram
carries the expert info of its fault.  Last, wire v2: the worked examples
of docs/wire-v2.md section 9, read from the document, and broken copies.

Needs root (tcpdump on lo), tcpdump and tshark (./dev deps installs them);
without them it says so and skips, except under CI, where it fails.
Prints TAP; exits non-zero if any check fails.
"""
import json
import os
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
RUNS = {
    # Small calls, 4 in flight, half of them sampled: a call whose
    # sampling differs from its session's carries a trace block.
    "trace": ["--size", "32", "--resp-size", "64", "--inflight", "4",
              "--trace-out", os.path.join(TMP, "spans.jsonl"),
              "--trace-sample", "0.5"],
    # 5000-byte requests and 3000-byte responses in 1428-byte fragments,
    # every frame with its CRC32C.
    "fragmented": ["--size", "5000", "--resp-size", "3000",
                   "--max-frame", "1472", "--inflight", "2",
                   "--wire-csum"],
    # A channel token at connect, two tokens per call, half of the calls
    # with IOUs pushed later; 2% of datagrams lost on receipt (after the
    # capture saw them), so that there are retransmissions.
    "tokens": ["--size", "200", "--resp-size", "100", "--inflight", "8",
               "--keyring", KR, "--caps", "2", "--deferred", "0.5",
               "--loss", "0.02"],
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

reports = {}
for name, args in RUNS.items():
    js = os.path.join(TMP, name + ".json")
    r = subprocess.run([BENCH] + COMMON + ["--port", str(PORTS[name]),
                                           "--json", js] + args,
                       capture_output=True, text=True, timeout=120)
    check("%s: ferry-bench exits 0" % name, r.returncode == 0,
          r.stderr[-600:])
    try:
        reports[name] = json.load(open(js))
    except (OSError, ValueError):
        reports[name] = {}


# Malformed datagrams, each with the expert field it must raise.
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

# --- decoding -------------------------------------------------------------
FIELDS = ["frame.number", "udp.srcport", "udp.dstport", "udp.length",
          "ferry.magic", "ferry.type", "ferry.flags", "ferry.src_sess",
          "ferry.dst_sess", "ferry.seq", "ferry.req_id", "ferry.msg_len",
          "ferry.frag_off", "ferry.payload_len", "ferry.app_len",
          "ferry.retransmission_of", "ferry.tlv.type", "ferry.cap.kind",
          "ferry.cap.iou", "ferry.push.iou", "ferry.push.code",
          "ferry.trace.traceparent", "ferry.csum.status",
          "_ws.expert.severity", "_ws.expert.message"] + \
         sorted(set(b[2] for b in BAD))
if PREFIX:
    shutil.copy(PCAP, TMP_READ)
    PCAP = os.path.join(TMP_READ, os.path.basename(PCAP))
    os.chmod(PCAP, 0o644)
decode = ["-o", "ferry.heuristic:FALSE", "-o", "ferry.udp_port:0"]
for p in list(PORTS.values()) + [BAD_PORT]:
    decode += ["-d", "udp.port==%d,ferry" % p]
cmd = tshark_cmd(PREFIX, LUA_PATH) + ["-r", PCAP] + decode + \
    ["-T", "fields", "-E", "occurrence=a", "-E", "aggregator=;"]
for fld in FIELDS:
    cmd += ["-e", fld]
r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
check("tshark exits 0", r.returncode == 0, r.stderr[-800:])
check("tshark reports no Lua error", "Lua" not in r.stderr, r.stderr[-800:])
rows = []
for line in r.stdout.splitlines():
    v = line.split("\t")
    if len(v) == len(FIELDS):
        rows.append(dict(zip(FIELDS, v)))


def num(s):
    return int(s, 0) if s else None


WARN = 0x00600000  # Wireshark's PI_WARN: warnings and errors count


def run_rows(port):
    return [x for x in rows if port in (num(x["udp.srcport"]),
                                        num(x["udp.dstport"]))]


def sev_max(x):
    return max([num(s) for s in x["_ws.expert.severity"].split(";") if s]
               or [0])


def many(x, field):
    return [s for s in x[field].split(";") if s]


def check_sessions(name, port, frames, d):
    conn = [x for x in frames if num(x["ferry.type"]) == 1]
    acc = [x for x in frames if num(x["ferry.type"]) == 2]
    clients = set(num(x["ferry.src_sess"]) for x in conn)
    check("%s: one session, one CONNECT id, ACCEPTed" % name,
          len(clients) == d.get("sessions", 1) and acc and
          set(num(x["ferry.dst_sess"]) for x in acc) == clients,
          "CONNECT ids %s, ACCEPTs %d" % (clients, len(acc)))
    if not acc or len(clients) != 1:
        return
    cid, sid = clients.pop(), num(acc[0]["ferry.src_sess"])
    bad = []
    for x in frames:
        src, dst = num(x["ferry.src_sess"]), num(x["ferry.dst_sess"])
        if num(x["udp.srcport"]) == port:
            ok = (src, dst) == (sid, cid)
        else:
            ok = src == cid and dst == (0 if num(x["ferry.type"]) == 1
                                        else sid)
        if not ok:
            bad.append(x["frame.number"])
    check("%s: every frame names the session's two ids (client %#010x, "
          "server %#010x)" % (name, cid, sid), not bad, bad[:20])


def check_calls(name, frames, d, size, resp_size):
    req = [x for x in frames if num(x["ferry.type"]) == 3]
    resp = [x for x in frames if num(x["ferry.type"]) == 4]
    calls = set(num(x["ferry.req_id"]) for x in req)
    answered = set(num(x["ferry.req_id"]) for x in resp)
    # Calls are numbered 1, 2, 3 ... with none missing, at least the ones
    # completed in the measured time (the loop's last calls may complete
    # after it).  Every call is answered but for the last --inflight ones,
    # which may have been in flight when the client stopped.
    done = d.get("completed", -1) + d.get("errors", 0)
    n = len(calls)
    check("%s: calls on the wire (%d) are req_id 1..N, at least the %d "
          "completed" % (name, n, done),
          calls == set(range(1, n + 1)) and n >= done)
    inflight = d.get("inflight", 1)
    open_calls = calls - answered
    check("%s: every call answered (%d) but for at most the last %d" %
          (name, len(answered), inflight),
          answered <= calls and all(c > n - inflight for c in open_calls),
          sorted(open_calls))
    firsts = [x for x in req if num(x["ferry.frag_off"]) == 0]
    sizes = set(num(x["ferry.app_len"]) for x in firsts)
    check("%s: every request carries %d payload bytes" % (name, size),
          sizes == {size}, sizes)
    rfirsts = [x for x in resp if num(x["ferry.frag_off"]) == 0]
    rsizes = set(num(x["ferry.app_len"]) for x in rfirsts)
    check("%s: every response carries %d payload bytes" % (name, resp_size),
          rsizes == {resp_size}, rsizes)
    # Each message's fragments, once each, cover msg_len exactly.
    short = []
    for kind in (req, resp):
        have = {}
        for x in kind:
            key = num(x["ferry.req_id"])
            have.setdefault(key, {})[num(x["ferry.frag_off"])] = \
                (num(x["ferry.payload_len"]), num(x["ferry.msg_len"]))
        for key, frags in have.items():
            msg_len = next(iter(frags.values()))[1]
            if sum(p for p, _ in frags.values()) != msg_len and \
                    key in answered and key in calls:
                short.append(key)
    check("%s: every answered call's fragments add up to its msg_len" %
          name, not short, short[:20])
    return req, resp


def check_run(name, size, resp_size):
    port, d = PORTS[name], reports.get(name, {})
    frames = run_rows(port)
    check("%s: datagrams captured" % name, len(frames) > 0)
    if not frames:
        return None
    undecoded = [x["frame.number"] for x in frames
                 if x["ferry.magic"] != "0x4652" or not x["ferry.type"]]
    check("%s: all %d datagrams decode as ferry" % (name, len(frames)),
          not undecoded, undecoded[:20])
    noisy = [(x["frame.number"], x["_ws.expert.message"]) for x in frames
             if sev_max(x) >= WARN]
    check("%s: no warning or error expert info" % name, not noisy,
          noisy[:10])
    closes = sum(1 for x in frames if num(x["ferry.type"]) == 6)
    # The summary reads the counters before the endpoints' last CLOSEs.
    check("%s: datagrams on the wire (%d) = tx_pkts (%d) + CLOSEs sent "
          "after it" % (name, len(frames), d.get("tx_pkts", -1)),
          d.get("tx_pkts", -1) <= len(frames) <= d.get("tx_pkts", -1) +
          closes)
    rtx = sum(1 for x in frames if x["ferry.retransmission_of"])
    check("%s: frames marked retransmission (%d) = retransmits (%d)" %
          (name, rtx, d.get("retransmits", -1)),
          rtx == d.get("retransmits"))
    check_sessions(name, port, frames, d)
    req, resp = check_calls(name, frames, d, size, resp_size)
    return frames, req, resp, d


# Trace blocks: as many REQUESTs carry one as the server counted.
out = check_run("trace", 32, 64)
if out:
    frames, req, resp, d = out
    traced = set(num(x["ferry.req_id"]) for x in req
                 if num(x["ferry.flags"]) & 0x10)
    want = d.get("trace", {}).get("server", {}).get("trace_blocks_received")
    check("trace: calls with a trace block (%d) = trace_blocks_received "
          "(%s)" % (len(traced), want), traced and len(traced) == want)
    import re
    tps = [x["ferry.trace.traceparent"] for x in req
           if num(x["ferry.flags"]) & 0x10]
    check("trace: every trace block holds a W3C traceparent",
          tps and all(re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]", t)
                      for t in tps), tps[:3])

# Fragmented messages with FF_CSUM.
out = check_run("fragmented", 5000, 3000)
if out:
    frames, req, resp, d = out
    check("fragmented: requests in 4 fragments of at most 1428 bytes",
          max(num(x["ferry.payload_len"]) for x in req) == 1428 and
          len(set(num(x["ferry.frag_off"]) for x in req)) == 4)
    bad = [x["frame.number"] for x in frames
           if not num(x["ferry.flags"]) & 0x2 or
           x["ferry.csum.status"] != "1"]
    check("fragmented: every frame, CLOSE included, has FF_CSUM and a "
          "good CRC32C", not bad, bad[:20])

# Tokens: the channel token at connect, token tables, IOUs and PUSHes.
out = check_run("tokens", 200, 100)
if out:
    frames, req, resp, d = out
    conn = [x for x in frames if num(x["ferry.type"]) == 1]
    check("tokens: the CONNECT carries PARAMS, FEATURES and TOKEN",
          conn and all({"0x81", "0x05", "0x84"} <=
                       set(many(x, "ferry.tlv.type")) for x in conn),
          [x["ferry.tlv.type"] for x in conn])
    firsts = {}
    for x in req:
        if num(x["ferry.frag_off"]) == 0 and num(x["ferry.flags"]) & 0x8:
            firsts[num(x["ferry.req_id"])] = x
    check("tokens: calls with a token table (%d) = table_calls (%s)" %
          (len(firsts), d.get("table_calls")),
          len(firsts) == d.get("table_calls"))
    deferred = [x for x in firsts.values()
                if "1" in many(x, "ferry.cap.kind")]
    check("tokens: calls with IOUs (%d) = deferred_calls (%s)" %
          (len(deferred), d.get("deferred_calls")),
          len(deferred) == d.get("deferred_calls"))
    promised = [i for x in firsts.values() for i in many(x, "ferry.cap.iou")]
    check("tokens: IOU entries (%d) = ious_promised (%s), each named once" %
          (len(promised), d.get("ious_promised")),
          len(promised) == d.get("ious_promised") and
          len(set(promised)) == len(promised))
    pushes = [x for x in frames if num(x["ferry.type"]) == 9]
    pushed = {}
    for x in pushes:
        if not x["ferry.retransmission_of"]:
            for i, c in zip(many(x, "ferry.push.iou"),
                            many(x, "ferry.push.code")):
                pushed[i] = pushed.get(i, 0) + 1 if c == "0" else -1000
    check("tokens: PUSH records (%d) = ious_pushed (%s), each IOU resolved "
          "once" % (len(pushed), d.get("ious_pushed")),
          len(pushed) == d.get("ious_pushed") and
          set(pushed.values()) == {1} and set(pushed) == set(promised))
    check("tokens: some PUSHes carry several records",
          any(len(many(x, "ferry.push.iou")) > 1 for x in pushes))

# The malformed datagrams, in the order sent, then the good one.
bad_rows = run_rows(BAD_PORT)
check("malformed: all %d datagrams captured" % (len(BAD) + 1),
      len(bad_rows) == len(BAD) + 1, len(bad_rows))
for (what, _, field), x in zip(BAD, bad_rows):
    check("malformed: %s is flagged %s" % (what, field),
          x[field] == "1" and sev_max(x) >= WARN,
          "%s: %s" % (x["frame.number"], x["_ws.expert.message"]))
if len(bad_rows) == len(BAD) + 1:
    x = bad_rows[-1]
    check("malformed: the correct FF_CSUM frame after them is clean",
          sev_max(x) < WARN and x["ferry.csum.status"] == "1",
          x["_ws.expert.message"])

# The port preference and the heuristic, without -d: the trace run's port
# by ferry.udp_port, the others by the heuristic.
cmd = tshark_cmd(PREFIX, LUA_PATH) + [
    "-r", PCAP, "-o", "ferry.udp_port:%d" % PORTS["trace"],
    "-T", "fields", "-e", "udp.srcport", "-e", "udp.dstport",
    "-e", "ferry.type"]
r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
seen = {}
for line in r.stdout.splitlines():
    v = line.split("\t")
    if len(v) == 3 and v[2]:
        for p in (num(v[0]), num(v[1])):
            seen[p] = seen.get(p, 0) + 1
for name, port in PORTS.items():
    check("without -d: %s's port decodes by %s" %
          (name, "the preference" if name == "trace" else "heuristic"),
          seen.get(port) == len(run_rows(port)),
          "%s of %d" % (seen.get(port), len(run_rows(port))))

# --- wire v2: docs/wire-v2.md section 9's bytes ---------------------------
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
               text.index("## 10. Implementation plan")]
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
    os.path.join(ROOT, "docs", "wire-v2.md"))
short_none = b"\x80" + short_mac[1:43]
short_none += struct.pack("!I", crc32c(short_none))
V2 = [  # payload, what it is, field that must be "1" (or None), expected
    (short_mac, "9.1, mac", None),
    (short_none, "9.1 in none mode", None),
    (envelope, "9.2's CONNECT in its v1 envelope", None),
    (retry, "9.2's RETRY", None),
    (envelope[0x44:], "9.2's CONNECT bare", None),
    (short_none[:20] + b"X" + short_none[21:], "9.1 none, a byte changed",
     "ferry.checksum_bad"),
    (b"\x83" + short_mac[1:], "a short header in mode 11",
     "ferry.v2.bad_header"),
    (bytes([retry[0] | 0x10]) + retry[1:], "a long header with reserved bits",
     "ferry.v2.bad_header"),
    (short_none[:13] + b"\x08\x00\xff\x00" + short_none[17:],
     "a frame running past the datagram", "ferry.v2.bad_frame"),
]
v2pcap = os.path.join(TMP_READ or TMP, "v2.pcap")
write_pcap(v2pcap, [v[0] for v in V2])
os.chmod(v2pcap, 0o644)
V2F = ["_ws.col.Info", "_ws.expert.severity", "_ws.expert.message",
       "ferry.req_id", "ferry.payload", "ferry.csum.status", "ferry.v2.scid",
       "ferry.v2.cookie.ts", "ferry.checksum_bad", "ferry.v2.bad_header",
       "ferry.v2.bad_frame"]
cmd = tshark_cmd(PREFIX, LUA_PATH) + ["-r", v2pcap, "-d",
                                      "udp.port==31850,ferry", "-T",
                                      "fields", "-E", "occurrence=a",
                                      "-E", "aggregator=;"]
for fld in V2F:
    cmd += ["-e", fld]
r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
v2rows = [dict(zip(V2F, line.split("\t"))) for line in r.stdout.splitlines()]
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
finish()
