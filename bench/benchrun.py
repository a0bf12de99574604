"""One ferry-bench run, for the figures scripts (bench/figures.py,
bench/ab.py): a loop or floor process, or, with "memif" first, a DPDK
server and client process joined by net_memif.  Each returns the client's
--json report and the command line as shown in docs/bench.md."""
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time

MEMIF_EAL = ("--no-huge -m 512 --no-pci --no-telemetry --log-level=error "
             "--file-prefix {prefix} "
             "--vdev=net_memif0,role={role},socket={sock}")


def cpu_busy(interval=0.5):
    """The share of all CPUs busy over @interval seconds (from /proc/stat),
    or None where there is no /proc/stat."""
    def snap():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        idle = v[3] + (v[4] if len(v) > 4 else 0)
        return sum(v), idle
    try:
        t0, i0 = snap()
        time.sleep(interval)
        t1, i1 = snap()
    except OSError:
        return None
    return 1.0 - (i1 - i0) / max(t1 - t0, 1)


def warn_if_busy(limit=0.15):
    """Say so on stderr when other work holds the CPUs before a benchmark
    starts: on two cores, a fuzzer even at nice 19 cut the kernel-path
    figures to a third, with p99 in milliseconds (docs/bench.md)."""
    busy = cpu_busy()
    if busy is not None and busy > limit:
        print("warning: %.0f %% of the CPUs were busy before the runs: "
              "the figures will be low and noisy; run with the machine "
              "to yourself" % (100 * busy), file=sys.stderr)
    return busy


def memif_cmds(bench, extra):
    """A server and a client process joined by net_memif (DPDK): the
    server, then the client with @extra ("floor" first for the floor)."""
    floor = extra[:1] == ["floor"]
    opts = extra[1:] if floor else extra
    tag = "fig%d" % os.getpid()
    sock = "/tmp/%s.sock" % tag
    pre = ["floor"] if floor else []
    srv = [bench] + pre + [
        "server", "--dataplane", "dpdk", "--busy-poll", "--ip", "10.99.0.1",
        "--eal", MEMIF_EAL.format(prefix=tag + "s", role="server", sock=sock),
        "--quiet"]
    if "--keyring" in opts:
        # Tokens: the server admits with (and verifies against) the same
        # keyring.
        srv += ["--keyring", opts[opts.index("--keyring") + 1]]
    if "--wire-mode" in opts:
        # A session runs in the stronger of its ends' modes: the server
        # must ask for no more than the client ("none" against the
        # server's default "mac" would measure "mac").
        srv += ["--wire-mode", opts[opts.index("--wire-mode") + 1]]
    cli = pre + [
        "client", "--dataplane", "dpdk", "--busy-poll", "--ip", "10.99.0.2",
        "--connect", "10.99.0.1",
        "--eal", MEMIF_EAL.format(prefix=tag + "c", role="client", sock=sock)
    ] + opts
    return srv, cli, sock


def run(bench, extra, duration, timeout=None):
    """One run of @bench with @extra for @duration seconds (1 s of
    warm-up before it); exits with the command's stderr if it fails."""
    if extra[:1] == ["memif"]:
        return run_memif(bench, extra[1:], duration, timeout)
    return run_plain(bench, extra, duration, timeout)


def run_memif(bench, extra, duration, timeout=None):
    srv_cmd, cli, sock = memif_cmds(bench, extra)
    if os.path.exists(sock):
        os.unlink(sock)
    srv = subprocess.Popen(srv_cmd, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    try:
        d, shown = run_plain(bench, cli, duration, timeout)
    finally:
        srv.terminate()
        srv.communicate(timeout=15)
        if os.path.exists(sock):
            os.unlink(sock)
    return d, "%s & %s" % (shlex.join(["ferry-bench"] + srv_cmd[1:]), shown)


def run_plain(bench, extra, duration, timeout=None):
    cmd = [bench] + extra + ["--duration", duration, "--warmup", "1",
                             "--quiet"]
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        r = subprocess.run(cmd + ["--json", f.name], capture_output=True,
                           text=True, timeout=timeout)
        if r.returncode != 0:
            sys.exit("failed: %s\n%s" % (" ".join(cmd), r.stderr))
        with open(f.name) as fh:
            return json.load(fh), shlex.join(["ferry-bench"] + extra)
