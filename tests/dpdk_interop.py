#!/usr/bin/env python3
"""DPDK and io_uring endpoints on two hosts, one wire.

Two network namespaces joined by a veth pair stand in for two hosts.  Host A
is ordinary Linux: its veth end has an IPv4 address and ferry runs on the
uring dataplane through the kernel's UDP.  Host B's veth end has no kernel
address: a DPDK endpoint owns it through net_af_packet, answers ARP for its
own address and builds every Ethernet/IPv4/UDP header itself.

Checks, each direction in turn (uring server <- DPDK client, DPDK server <-
uring client), with --verify (every call numbered and patterned; the server
checks order and payload, the client the response):
  - small calls (32 B, 16 in flight) and large ones (64 KiB, fragmented
    into MTU-sized datagrams on the wire, chained zero-copy on DPDK);
  - exit 0, calls completed, and lost, duplicates, out_of_order, corrupt
    and errors all 0.
Also a DPDK floor echo (no RPC layer) across the same link, and two DPDK
processes over net_memif with two threads on two queue pairs each.  And,
with the control plane built in, deferred tokens over memif: half the calls
carry their two tokens as IOUs (ferry-bench --deferred 0.5 --caps 2
--verify), without and with 2% loss on both ends: nothing lost or out of
order, and every IOU the server's table created is resolved, none rejected.

Usage: dpdk_interop.py PATH/TO/ferry-bench   (root: creates namespaces)
Prints TAP; exits non-zero if any check fails.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

BENCH = os.path.abspath(sys.argv[1])
TAG = "fi%d" % os.getpid()
NS_A, NS_B = TAG + "a", TAG + "b"
VA, VB = TAG + "va", TAG + "vb"
IP_A, IP_B = "10.77.%d.1" % (os.getpid() % 200), "10.77.%d.2" % (os.getpid() % 200)
EAL = ("--no-huge -m 256 --no-pci --no-telemetry --log-level=error -l 0 "
       "--file-prefix %s-%%s --vdev=net_af_packet0,iface=%s" % (TAG, VB))
results = []


def check(name, cond, detail=""):
    results.append((name, bool(cond), detail))


def sh(*cmd, check_rc=True):
    r = subprocess.run(list(cmd), capture_output=True, text=True)
    if check_rc and r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(cmd), r.stderr.strip()))
    return r


def setup():
    sh("ip", "netns", "add", NS_A)
    sh("ip", "netns", "add", NS_B)
    sh("ip", "link", "add", VA, "type", "veth", "peer", "name", VB)
    sh("ip", "link", "set", VA, "netns", NS_A)
    sh("ip", "link", "set", VB, "netns", NS_B)
    sh("ip", "netns", "exec", NS_A, "ip", "addr", "add", IP_A + "/24",
       "dev", VA)
    # A veth carries a UDP GSO train whole to its peer, where af_packet
    # hands it to DPDK as one oversized frame; a real NIC (or the kernel,
    # for a device without the offload) cuts it into datagrams first.  Host
    # A's end is made such a device, so that its uring endpoint's GSO
    # trains reach the wire as the datagrams they carry.
    sh("ip", "netns", "exec", NS_A, "ethtool", "-K", VA,
       "tx-udp-segmentation", "off")
    for ns, dev in ((NS_A, VA), (NS_B, VB)):
        sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        sh("ip", "netns", "exec", ns, "ip", "link", "set", dev, "up")
    # Host B's kernel must stay off the wire: no address (set none), and
    # no IPv6 chatter either.
    sh("ip", "netns", "exec", NS_B, "sysctl", "-qw",
       "net.ipv6.conf.%s.disable_ipv6=1" % VB, check_rc=False)


def teardown():
    for ns in (NS_A, NS_B):
        sh("ip", "netns", "del", ns, check_rc=False)


def in_ns(ns, args):
    return ["ip", "netns", "exec", ns, BENCH] + args


def pair(name, server_ns, server_args, client_ns, client_args, timeout=60):
    """Start a server, run a client against it; returns the client's
    (process, json)."""
    jf = tempfile.NamedTemporaryFile(suffix=".json", delete=False)
    jf.close()
    srv = subprocess.Popen(in_ns(server_ns, server_args + ["--quiet"]),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    time.sleep(1.5)  # the EAL (if any) and the port come up
    try:
        cli = subprocess.run(in_ns(client_ns, client_args +
                                   ["--quiet", "--json", jf.name]),
                             capture_output=True, text=True, timeout=timeout)
    finally:
        srv.terminate()
        try:
            srv_out, srv_err = srv.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            srv.kill()
            srv_out, srv_err = srv.communicate()
    try:
        data = json.load(open(jf.name))
    except ValueError:
        data = None
    os.unlink(jf.name)
    detail = "client: %s\nserver: %s" % (cli.stderr[-600:], srv_err[-600:])
    check(name + ": client exits 0", cli.returncode == 0, detail)
    check(name + ": server exits cleanly", srv.returncode in (0, -15),
          "rc %s\n%s" % (srv.returncode, detail))
    return cli, data, detail


def pair_json(name, server_ns, server_args, client_ns, client_args,
              timeout=60):
    """pair(), and the server's JSON summary too (written at SIGTERM)."""
    sj = tempfile.NamedTemporaryFile(suffix=".json", delete=False)
    sj.close()
    cli, data, detail = pair(name, server_ns, server_args + ["--json", sj.name],
                             client_ns, client_args, timeout)
    try:
        sdata = json.load(open(sj.name))
    except ValueError:
        sdata = None
    os.unlink(sj.name)
    return cli, data, sdata, detail


def verified(name, data, detail):
    check(name + ": JSON summary", data is not None, detail)
    if not data:
        return
    check(name + ": calls completed", data["completed"] > 0, str(data))
    for k in ("errors", "lost", "duplicates", "out_of_order", "corrupt"):
        check("%s: %s is 0" % (name, k), data.get(k) == 0,
              "%s=%s" % (k, data.get(k)))


def dpdk(role, extra):
    return [role, "--dataplane", "dpdk", "--eal", EAL % role,
            "--ip", IP_B] + extra


def deferred_memif(memif):
    """Deferred tokens between two DPDK processes over memif: the server
    verifies pushed tokens on arrival and answers a call once its IOUs are
    in; the client's delayed issuer seals each token for its call."""
    ferryctl = os.path.join(os.path.dirname(BENCH), "..", "control",
                            "ferryctl")
    if not os.path.exists(ferryctl):
        check("memif deferred: skipped, no ferryctl (no libsodium) # SKIP",
              True)
        return
    kr = os.path.join(tempfile.mkdtemp(prefix="ferry-interop-"), "k.kr")
    sh(ferryctl, "--keyring", kr, "key", "new")
    sock = "/tmp/%s-d.sock" % TAG
    eal = memif.replace(".sock", "-d.sock")
    assert sock in eal
    for name, extra in (("memif deferred", []),
                        ("memif deferred, 2% loss", ["--loss", "0.02"])):
        _, d, sd, det = pair_json(
            name, NS_B, ["server", "--dataplane", "dpdk", "--ip", "10.96.0.1",
                         "--duration", "30", "--keyring", kr,
                         "--eal", eal % ("ds", "server")] + extra,
            NS_B, ["client", "--dataplane", "dpdk", "--ip", "10.96.0.2",
                   "--connect", "10.96.0.1", "--eal", eal % ("dc", "client"),
                   "--keyring", kr, "--caps", "2", "--deferred", "0.5",
                   "--deferred-delay-us", "200", "--verify", "--inflight", "8",
                   "--duration", "1", "--warmup", "0.5"] + extra)
        verified(name, d, det)
        check(name + ": the client made calls with IOUs and dropped none",
              d is not None and d.get("deferred_calls", 0) > 0 and
              d.get("iou_counters") == "client" and
              d.get("ious_dropped") == 0, str(d))
        check(name + ": the issuer completed every token on the client's "
              "thread (the default mode)",
              d is not None and d.get("issuer", {}).get("mode") == "worker"
              and d["issuer"]["completed"] == d["issuer"]["issued"], str(d))
        check(name + ": server IOUs created == resolved, none rejected",
              sd is not None and sd.get("iou_created", 0) > 0 and
              sd["iou_resolved"] == sd["iou_created"] and
              sd["iou_rejected"] == 0, "%s\n%s" % (sd, det))
        if os.path.exists(sock):
            os.unlink(sock)


def main():
    if os.geteuid() != 0:
        print("1..0 # SKIP needs root to create network namespaces")
        return 0
    teardown()
    try:
        setup()
        for size, infl in (("32", "16"), ("64K", "4")):
            common = ["--size", size, "--inflight", infl]
            name = "uring server, DPDK client, %s B" % size
            _, d, det = pair(
                name, NS_A, ["server", "--addr", IP_A, "--duration", "30"] +
                common,
                NS_B, dpdk("client", ["--connect", IP_A, "--verify",
                                      "--duration", "2", "--warmup", "0.5"]
                           + common))
            verified(name, d, det)
            name = "DPDK server, uring client, %s B" % size
            _, d, det = pair(
                name, NS_B, dpdk("server", ["--duration", "30"] + common),
                NS_A, ["client", "--addr", IP_B, "--ip", IP_A, "--verify",
                       "--duration", "2", "--warmup", "0.5"] + common)
            verified(name, d, det)
        name = "DPDK floor client, uring floor server"
        _, d, det = pair(
            name, NS_A, ["floor", "server", "--addr", IP_A, "--duration", "30"],
            NS_B, ["floor"] + dpdk("client", ["--connect", IP_A,
                                              "--duration", "1",
                                              "--warmup", "0.5",
                                              "--inflight", "8"]))
        check(name + ": echoes came back", d is not None and
              d["completed"] > 0 and d["errors"] == 0, det)
        # Two DPDK processes over net_memif, two threads each on two queue
        # pairs: memif has no flow rules, so the endpoints share RX queue 0
        # and also poll queue 1 (where the peer's second TX queue lands),
        # steering in software; each keeps its own TX queue.
        sock = "/tmp/%s.sock" % TAG
        memif = ("--no-huge -m 256 --no-pci --no-telemetry --log-level=error "
                 "--file-prefix %s-m%%s --vdev=net_memif0,role=%%s,socket=%s"
                 % (TAG, sock))
        mt = ["--threads", "2", "--dpdk-queues", "2", "--dataplane", "dpdk"]
        name = "memif, 2 threads x 2 queues, both DPDK"
        _, d, det = pair(
            name, NS_B, ["server", "--ip", "10.98.0.1", "--duration", "30",
                         "--eal", memif % ("s", "server")] + mt,
            NS_B, ["client", "--ip", "10.98.0.2", "--connect", "10.98.0.1",
                   "--eal", memif % ("c", "client"), "--inflight", "8",
                   "--verify", "--duration", "1", "--warmup", "0.5"] + mt)
        verified(name, d, det)
        if os.path.exists(sock):
            os.unlink(sock)
        deferred_memif(memif)
    finally:
        teardown()
    left = sh("ip", "netns", "list").stdout
    check("namespaces removed", TAG not in left, left)
    print("1..%d" % len(results))
    failed = 0
    for i, (name, ok, detail) in enumerate(results, 1):
        print("%sok %d - %s" % ("" if ok else "not ", i, name))
        if not ok:
            failed += 1
            for line in str(detail).splitlines()[-12:]:
                print("  # " + line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
