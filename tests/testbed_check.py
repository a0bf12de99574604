#!/usr/bin/env python3
"""bench/testbed, run short: its report, its spans and its clean-up.

Usage: testbed_check.py TESTBED FERRY-BENCH FERRYCTL [dpdk]
(root: the test bed makes network namespaces).  Prints TAP.

  - `testbed incast --clients 2` at 50 Mbit/s with 1 KiB calls, 1 s per
    phase, over io_uring (and with "dpdk", again with client 1 on DPDK and
    --verify): exit 0; the JSON has p99_ratio, goodput_frac, jain, a row
    per client host with calls completed, and the merged histogram's count
    is the sum of the clients' (as are its buckets); client 1 also ran
    alone.  A leftover planted beforehand (a namespace and a link named
    as a crashed run's) is gone, and so is everything the run made:
    namespaces, links, processes, files.
  - Its --trace files, one per host, joined by `ferryctl spans`: every
    server session span hangs under a client session span from a client
    host's file, every server call span under a client call span, and no
    span's parent is missing.
  - SIGINT in the middle of a run: exit 130, nothing left behind.
  - `testbed clean` removes a crashed run's namespace, the process still
    running in it, a link and a folder, and leaves a live run's alone.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

TESTBED, BENCH, FERRYCTL = (os.path.abspath(p) for p in sys.argv[1:4])
DPDK = len(sys.argv) > 4 and sys.argv[4] == "dpdk"
results = []


def check(name, cond, detail=""):
    results.append((name, bool(cond), detail))


def sh(*cmd, check_rc=True):
    r = subprocess.run(list(cmd), capture_output=True, text=True, timeout=60)
    if check_rc and r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(cmd), r.stderr.strip()))
    return r


def state():
    """Namespaces, links and files named like the test bed's, and the
    processes running ferry-bench."""
    ns = set(l.split()[0] for l in sh("ip", "netns", "list").stdout.
             splitlines() if l.startswith("ftb"))
    links = set(l.split(":")[1].strip().split("@")[0] for l in
                sh("ip", "-o", "link", "show").stdout.splitlines())
    links = {l for l in links if l.startswith("ftb")}
    files = {f for f in os.listdir(tempfile.gettempdir())
             if f.startswith("ftb")}
    return ns, links, files, bench_procs()


def bench_procs():
    """The pids of processes running this ferry-bench, BENCH (from /proc:
    no procps needed; other trees' ferry-bench may run beside)."""
    pids = set()
    for p in os.listdir("/proc"):
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                argv0 = f.read().split(b"\0")[0]
        except (OSError, ValueError):
            continue
        if argv0 == BENCH.encode():
            pids.add(p)
    return pids


def dead_pid():
    """A pid that no process has now: one that just ended."""
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def plant(pid, with_proc=False):
    """What a crashed run with pid @pid might leave: a namespace (with a
    process in it), a veth pair in this namespace, a folder."""
    tag = "ftb%d" % pid
    sh("ip", "netns", "add", tag + "-c1")
    sh("ip", "link", "add", tag + "h1", "type", "veth", "peer", "name",
       tag + "p1")
    os.mkdir(os.path.join(tempfile.gettempdir(), tag + "-work"))
    proc = None
    if with_proc:
        proc = subprocess.Popen(["ip", "netns", "exec", tag + "-c1",
                                 "sleep", "300"], start_new_session=True)
    return tag, proc


def gone(tag):
    ns, links, files, _ = state()
    return not any(x.startswith(tag) for x in ns | links | files)


def incast(name, extra, trace_dir=None):
    before = state()
    tag, _ = plant(dead_pid())
    jf = tempfile.NamedTemporaryFile(suffix=".json", delete=False).name
    argv = [TESTBED, "incast", "--clients", "2", "--rate", "50M", "--size",
            "1K", "--inflight", "2", "--duration", "1", "--warmup", "0.3",
            "--bench", BENCH, "--json", jf, "--quiet"] + extra
    if trace_dir:
        argv += ["--trace", trace_dir, "--trace-sample", "0.05"]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    detail = (r.stdout + r.stderr)[-1500:]
    check(name + ": exit 0", r.returncode == 0, detail)
    try:
        d = json.load(open(jf))
    except ValueError:
        d = None
    os.unlink(jf)
    check(name + ": JSON report written", d is not None, detail)
    check(name + ": a leftover of a crashed run removed at start",
          gone(tag), str(state()))
    after = state()
    check(name + ": no namespace, link, file or process left behind",
          after == before, "before %s\nafter %s" % (before, after))
    if not d:
        return None
    for k in ("p99_ratio", "goodput_frac", "jain"):
        check("%s: %s is a number > 0" % (name, k),
              isinstance(d.get(k), (int, float)) and d[k] > 0, str(d.get(k)))
    cl = d.get("clients", [])
    check(name + ": a row per client host, each with calls",
          len(cl) == 2 and all(c.get("ok") and c["completed"] > 0 and
                               c["hist"]["count"] > 0 for c in cl),
          str([(c.get("host"), c.get("completed")) for c in cl]))
    check(name + ": client 1 ran alone first",
          d.get("alone") and d["alone"].get("ok") and
          d["alone"]["completed"] > 0, str(d.get("alone")))
    h = d.get("hist", {})
    counts = sum(c["hist"]["count"] for c in cl)
    check(name + ": merged histogram count == sum of the clients' counts",
          h.get("count") == counts and counts > 0 and
          sum(b[2] for b in h.get("buckets", [])) == counts and
          d["total"]["completed"] == sum(c["completed"] for c in cl),
          "%s vs %s" % (h.get("count"), counts))
    for k in ("calls_s", "goodput_gbps", "p50_us", "p99_us", "p999_us",
              "retransmits", "dropped"):
        check("%s: total and per client have %s" % (name, k),
              all(k in row for row in cl + [d["total"]]))
    return d


def joined(trace_dir):
    files = sorted(os.path.join(trace_dir, f) for f in os.listdir(trace_dir))
    names = sorted(os.path.basename(f) for f in files)
    check("trace: a file per host (server, c1-alone, c1, c2)",
          names == ["c1-alone.jsonl", "c1.jsonl", "c2.jsonl",
                    "server.jsonl"], str(names))
    r = subprocess.run([FERRYCTL, "spans"] + files, capture_output=True,
                       text=True, timeout=60)
    check("trace: ferryctl spans exits 0", r.returncode == 0, r.stderr)
    lines = r.stdout.splitlines()
    check("trace: no span's parent missing from the files",
          not any("not in these files" in l for l in lines),
          "\n".join(l for l in lines if "not in" in l)[:600])
    # The parent of each tree line: the nearest line above, one level up.
    stack, pairs = [], []
    for l in lines:
        if not l.lstrip().startswith("- "):
            continue
        depth = (len(l) - len(l.lstrip())) // 2
        m = re.search(r"- (\w+) (\S+) .* file=(\S+)$", l)
        node = (m.group(1), m.group(2), m.group(3)) if m else (l, "", "")
        del stack[depth:]
        pairs.append((stack[-1] if stack else None, node))
        stack.append(node)
    ssess = [(p, n) for p, n in pairs if n[:2] == ("SERVER", "ferry.session")]
    scall = [(p, n) for p, n in pairs if n[0] == "SERVER" and
             n[1] != "ferry.session"]
    check("trace: server session spans, all from the server's file",
          ssess and all(n[2] == "server.jsonl" for _, n in ssess))
    check("trace: each under a client session span from a client's file",
          all(p and p[:2] == ("CLIENT", "ferry.session") and
              re.match(r"c\d", p[2]) for p, _ in ssess),
          str([p for p, _ in ssess][:4]))
    check("trace: each server call span under a client call span "
          "from a client's file", scall and all(
              p and p[0] == "CLIENT" and p[1] == n[1] and
              re.match(r"c\d", p[2]) for p, n in scall),
          str(scall[:4]))


def interrupted():
    """SIGINT in the middle of a run: it stops, and removes what it made."""
    import signal
    import time
    before = state()
    p = subprocess.Popen([TESTBED, "incast", "--clients", "2", "--rate",
                          "50M", "--size", "1K", "--duration", "20",
                          "--bench", BENCH, "--quiet"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    tag = "ftb%d" % p.pid
    deadline = time.monotonic() + 30
    # Until its clients run: their processes are in its namespaces.
    while time.monotonic() < deadline and p.poll() is None:
        if sh("ip", "netns", "pids", tag + "-c1", check_rc=False).stdout:
            break
        time.sleep(0.2)
    running = p.poll() is None and not gone(tag)
    p.send_signal(signal.SIGINT)
    try:
        out, err = p.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    check("interrupted: it was running, with its namespaces", running)
    check("interrupted: exit 130", p.returncode == 130, err[-600:])
    after = state()
    check("interrupted: nothing left behind", after == before,
          "before %s\nafter %s" % (before, after))


def clean():
    tag, proc = plant(dead_pid(), with_proc=True)
    live = plant(os.getpid())[0]  # a run still going: ours
    r = subprocess.run([TESTBED, "clean"], capture_output=True, text=True,
                       timeout=60)
    check("clean: exit 0", r.returncode == 0, r.stderr)
    check("clean: the crashed run's namespace, link and folder removed",
          gone(tag), r.stdout + str(state()))
    try:
        proc.wait(timeout=10)
        killed = True
    except subprocess.TimeoutExpired:
        proc.kill()
        killed = False
    check("clean: the process left in its namespace killed", killed)
    check("clean: a live run's things kept", not gone(live), str(state()))
    # Not `clean --all`: another test bed run may be going on this host.
    sh("ip", "netns", "del", live + "-c1")
    sh("ip", "link", "del", live + "h1")
    os.rmdir(os.path.join(tempfile.gettempdir(), live + "-work"))


def main():
    if os.geteuid() != 0:
        print("1..0 # SKIP needs root to create network namespaces")
        return 0
    trace_dir = tempfile.mkdtemp(prefix="ferry-testbed-")
    try:
        incast("uring", [], trace_dir)
        joined(trace_dir)
        if DPDK:
            incast("mixed (client 1 on DPDK)", ["--dataplane", "mixed",
                                                "--verify"])
        interrupted()
        clean()
    finally:
        subprocess.run(["rm", "-rf", trace_dir])
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
