"""What every benchmark script here measures with: the servers under test,
the two load generators (h2load and `connect-client bench`), readings from
/proc, and idle HTTP/2 connections. Standard library only.

h2load does not read `grpc-status`, so each h2load run is checked to have
received the exact response payload of every call (an error carries none);
`connect-client bench` checks the status and message count itself.
"""

import asyncio
import atexit
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = "x" * 16  # request_data of every request

# The servers every report names, and the load shapes of bench/run.py's views.
OURS, OURS_SPIN, BASELINE, PYTHON = ("connect-server", "connect-server --busy-poll 100us", "tonic (default)",
                                     "Python grpc.aio")
TOOLS = ("h2load", "connect-client bench")
SWEEP = (25, 50, 75, 90)  # percent of each server's own peak
CONNECTIONS = (1, 4, 16, 64, 1000)
IDLE = 10_000
PACED_RATE = 10_000


class Scenario:
    """One load shape: which RPC, how many messages per call, how much concurrency."""

    def __init__(self, key, title, method, count, connections, concurrency):
        self.key, self.title, self.method, self.count = key, title, method, count
        self.connections, self.concurrency = connections, concurrency

    @property
    def is_stream(self):
        return self.method == "ServerStreamRPC"

    def request(self):
        """The framed protobuf RequestMessage: request_data (field 1) and count (field 2)."""
        body = b"\x0a" + bytes([len(DATA)]) + DATA.encode()
        if self.is_stream:
            body += b"\x10" + varint(self.count)
        return b"\x00" + len(body).to_bytes(4, "big") + body

    def response_bytes(self):
        """Exact DATA bytes of one successful response, to check h2load's traffic."""
        if not self.is_stream:
            return frame_len(len("Hello, " + DATA))
        return sum(frame_len(len(f"Hello, {DATA}: server({i}) ")) for i in range(1, self.count + 1))


def varint(n):
    out = b""
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out += bytes([byte | 0x80])
        else:
            return out + bytes([byte])


def frame_len(text_len):
    """gRPC prefix + protobuf field 1 tag + length varint + string."""
    return 5 + 1 + len(varint(text_len)) + text_len


SCENARIOS = {
    "unary": Scenario("unary", "unary", "UnaryRPC", 1, 8, 64),
    "ss10": Scenario("ss10", "server stream of 10", "ServerStreamRPC", 10, 8, 64),
    "ss1000": Scenario("ss1000", "server stream of 1,000", "ServerStreamRPC", 1000, 4, 16),
    "latency": Scenario("latency", "unloaded latency (1 call at a time)", "UnaryRPC", 1, 1, 1),
}


def private_workdir(prefix, bin_dir):
    """A temporary directory removed at exit (server logs run to gigabytes in a full
    run; never leave them behind), with private copies of the binaries in `bin/`
    (a shared target directory may be rebuilt while we measure). Returns both paths."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, workdir, True)
    bins = workdir / "bin"
    bins.mkdir()
    for rel in ("connect-server", "connect-client", "examples/baseline_server"):
        shutil.copy2(bin_dir / rel, bins / Path(rel).name)
    return workdir, bins


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.005)
    raise RuntimeError(f"nothing listening on port {port} after {timeout}s")


def cpu_seconds(pid):
    """User + system CPU time of a process and all its threads, from /proc."""
    try:
        # The command name may hold spaces; the fields after it do not.
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def rss_kib(pid, field="VmRSS"):
    """Resident memory of a process (VmRSS), or its peak so far (VmHWM), from /proc."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def raise_open_files_limit(wanted):
    """Raise this process's open-file limit (inherited by the servers it starts)
    towards `wanted`; returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for new_hard in (max(hard, wanted), hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, new_hard), new_hard))
            break
        except (ValueError, OSError):
            continue
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Server:
    """A server under test: its command line (with `{port}`), which scenarios it
    serves (`only`; None: all) and whether it is a full-featured gRPC server
    (all four call kinds, deadlines, cancellation), which the targets compare with."""

    def __init__(self, name, argv, workdir, only=None, full=True, colour="#888", quiet=False):
        self.name, self.argv, self.workdir = name, argv, workdir
        self.only, self.full, self.colour = only, full, colour
        # quiet: stdout (connect-server's access log, a line per call) to /dev/null, stderr kept.
        self.quiet = quiet
        self.proc = None
        self.port = None
        self.log = None

    def serves(self, scenario_key):
        return self.only is None or scenario_key in self.only

    def start(self, cpus):
        self.port = free_port()
        argv = [a.replace("{port}", str(self.port)) for a in self.argv]
        if cpus is not None:
            argv = ["taskset", "-c", cpus] + argv
        self.log = open(self.workdir / f"{re.sub(r'[^A-Za-z0-9]+', '_', self.name)}.log", "ab")
        started = time.monotonic()
        stdout = subprocess.DEVNULL if self.quiet else self.log
        self.proc = subprocess.Popen(argv, stdout=stdout, stderr=self.log, cwd=ROOT)
        wait_port(self.port, self.proc)
        return started

    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.log:
            self.log.close()
            self.log = None


def run(argv, timeout):
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def load_prefix(cpus):
    return ["taskset", "-c", cpus] if cpus is not None else []


def h2load(args, server, scenario, cpus, body_file, threads):
    m = max(1, scenario.concurrency // scenario.connections)
    argv = load_prefix(cpus) + [
        # No --warm-up-time: h2load counts warm-up bytes in its traffic but not its
        # calls, which would blur the payload check below.
        "h2load", "-D", f"{int(args.duration * 1000)}ms",
        "-c", str(scenario.connections), "-m", str(m), "-t", str(min(threads, scenario.connections)),
        "-d", str(body_file), "-H", "content-type: application/grpc", "-H", "te: trailers",
        f"{server.url()}/ConnectService/{scenario.method}",
    ]
    out = run(argv, timeout=args.duration + args.warmup + 60)
    text = out.stdout + out.stderr
    requests = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout", text)
    finished = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s", text)
    traffic = re.search(r"traffic: .*?, ([\d.]+\w*) \((\d+)\) data", text)
    mean = re.search(r"time for request:\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)", text)
    if out.returncode != 0 or not (requests and finished and traffic and mean):
        raise RuntimeError(f"h2load failed ({out.returncode}):\n{text[-2000:]}")
    done, succeeded = int(requests.group(3)), int(requests.group(4))
    failed = sum(int(requests.group(i)) for i in (5, 6, 7))
    data = int(traffic.group(2))
    # h2load does not read grpc-status; an error response has no DATA, so every
    # finished call must have brought its full payload (calls still in flight at
    # the end may add part of theirs, no more).
    expected = scenario.response_bytes()
    per_call = data / done if done else 0
    in_flight = scenario.concurrency
    verified = (failed == 0 and done > 0 and succeeded == done
                and done * expected <= data <= (done + in_flight) * expected)
    rate = float(finished.group(3))
    unit = {"us": 1e-3, "ms": 1.0, "s": 1e3}[mean.group(2)]
    return {
        "calls": done,
        "calls_per_sec": rate,
        "messages_per_sec": rate * scenario.count,
        "mean_ms": float(mean.group(1)) * unit,
        "p50_ms": None,
        "p99_ms": None,
        "p999_ms": None,
        "warmed_up": False,
        "errors": failed + (0 if verified else 1),
        "note": None if verified else f"unverified: {per_call:.1f} data bytes per call, expected {expected}",
    }


def bench(args, server, scenario, cpus, rate=None, connections=None, concurrency=None, duration=None,
          deadline_ms=None):
    """`connect-client bench`; with `rate`, open loop (latency counted from each call's due time);
    with `deadline_ms`, each call's deadline (`--timeout`), counted from the same time."""
    duration = args.duration if duration is None else duration
    argv = load_prefix(cpus) + [
        str(args.bin_dir / "connect-client"), "--addr", server.url(), "bench",
        "--rpc", "unary" if scenario.method == "UnaryRPC" else "server-stream",
        "--count", str(scenario.count), "--data-size", str(len(DATA)),
        "--connections", str(connections or scenario.connections),
        "--concurrency", str(concurrency or scenario.concurrency),
        "--duration", f"{duration}s", "--warmup", f"{args.warmup}s", "--json",
    ]
    if rate is not None:
        argv += ["--rate", str(max(1, int(rate)))]
    if deadline_ms:
        argv += ["--timeout", f"{deadline_ms}ms"]
    out = run(argv, timeout=duration + args.warmup + 60)
    try:
        report = json.loads(out.stdout)
    except json.JSONDecodeError:
        raise RuntimeError(f"connect-client bench failed ({out.returncode}):\n{out.stderr[-2000:]}")
    expected = report["ok"] * scenario.count
    note = None
    if report["failed"]:
        note = f"errors: {report['errors']}"
    if report.get("loops_stopped"):
        note = (note + "; " if note else "") + f"{report['loops_stopped']} call loops lost their connection"
    elif report["messages"] != expected:
        note = f"{report['messages']} messages, expected {expected}"
    latency = report["latency_us"]
    return {
        "calls": report["ok"],
        "calls_per_sec": report["calls_per_sec"],
        "messages_per_sec": report["messages_per_sec"],
        "mean_ms": latency["mean"] / 1000,
        "p50_ms": latency["p50"] / 1000,
        "p99_ms": latency["p99"] / 1000,
        "p999_ms": latency["p99.9"] / 1000,
        "warmed_up": args.warmup > 0,
        "errors": report["failed"] + (0 if note is None else 1),
        "note": note,
        # Failed calls by status name, and the measured window (ends with the last answer).
        "statuses": report["errors"],
        "elapsed_s": report["elapsed_s"],
    }


def measured(server, load):
    """Runs `load()` and adds the server's CPU over it: percent of a core, and
    microseconds per call served (meaningful even when the load generator is the limit)."""
    cpu_before, wall_before = cpu_seconds(server.proc.pid), time.monotonic()
    result = load()
    cpu_after, wall_after = cpu_seconds(server.proc.pid), time.monotonic()
    cpu = cpu_after - cpu_before if cpu_before is not None and cpu_after is not None else None
    result["server_cpu_pct"] = 100 * cpu / (wall_after - wall_before) if cpu is not None else None
    # connect-client bench counts only the measured calls, not its warm-up's, so
    # per-call CPU comes from runs without warm-up (h2load's).
    result["cpu_us_per_call"] = (1e6 * cpu / result["calls"]
                                 if cpu is not None and result["calls"] and not result["warmed_up"] else None)
    return result


def verify_responses(args, server, stream=True):
    """The exact responses, compared across servers by the caller."""
    client = [str(args.bin_dir / "connect-client"), "--addr", server.url()]
    unary = run(client + ["unary", "People"], timeout=30)
    text = unary.stdout
    if stream:
        streamed = run(client + ["server-stream", "People", "--count", "3"], timeout=30)
        text += streamed.stdout
        if streamed.returncode:
            raise RuntimeError(f"{server.name} failed a server-stream call: {streamed.stderr.strip()}")
    if unary.returncode:
        raise RuntimeError(f"{server.name} failed a unary call: {unary.stderr.strip()}")
    return text


async def _hold_idle(port, count, batch, settle):
    """Opens `count` HTTP/2 connections (preface, SETTINGS, the server's SETTINGS
    read and acknowledged) and holds them for `settle()`; returns how many
    completed the handshake and what `settle` returned."""
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
    settings_ack = b"\x00\x00\x00\x04\x01\x00\x00\x00\x00"
    writers = []

    async def one():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writers.append(writer)
        writer.write(preface)
        header = await asyncio.wait_for(reader.readexactly(9), 10)
        if header[3] != 4:  # the server's first frame must be SETTINGS
            raise RuntimeError(f"first frame type {header[3]}, not SETTINGS")
        await reader.readexactly(int.from_bytes(header[:3], "big"))
        writer.write(settings_ack)
        await writer.drain()

    ok = 0
    try:
        for start in range(0, count, batch):
            results = await asyncio.gather(*(one() for _ in range(min(batch, count - start))),
                                           return_exceptions=True)
            ok += sum(1 for r in results if not isinstance(r, BaseException))
        await asyncio.sleep(0.5)  # let the server finish its side of each handshake
        value = settle()
    finally:
        for writer in writers:
            writer.close()
    return ok, value


def idle_connections(server, count, batch=500):
    """RSS (KiB) of `server` before and while it holds `count` idle HTTP/2 connections,
    and how many connections completed their handshake."""
    before = rss_kib(server.proc.pid)
    ok, during = asyncio.run(_hold_idle(server.port, count, batch, lambda: rss_kib(server.proc.pid)))
    return {"connections": ok, "idle_kib": before, "held_kib": during}


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def spread(values):
    """(max - min) / median, in percent: how noisy the runs were."""
    values = [v for v in values if v is not None]
    if len(values) < 2 or not statistics.median(values):
        return None
    return 100 * (max(values) - min(values)) / statistics.median(values)
