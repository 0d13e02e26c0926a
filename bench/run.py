#!/usr/bin/env python3
"""Side-by-side benchmark of connect-server, the baseline tonic server and the
Python grpc.aio server, each driven by two load generators (h2load and
`connect-client bench`), pinned (server on core 0, load on core 1) and
unpinned. Prints a table of medians and ratios to the baseline and writes
BENCHMARKS.md with an SVG chart. Standard library only.

Run it through bench/run, which builds the binaries and installs h2load.
"""

import argparse
import atexit
import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = "x" * 16  # request_data of every request
OURS, BASELINE, PYTHON = "connect-server", "baseline", "python grpc.aio"
# connect-server without busy polling, measured unloaded only: shows what busy polling buys.
OURS_NO_SPIN = "connect-server --busy-poll 0"
TOOLS = ("h2load", "connect-client bench")


class Scenario:
    """One load shape: which RPC, how many messages per call, how much concurrency."""

    def __init__(self, key, title, method, count, connections, concurrency):
        self.key, self.title, self.method, self.count = key, title, method, count
        self.connections, self.concurrency = connections, concurrency

    @property
    def is_stream(self):
        return self.method == "ServerStreamRPC"

    def request(self):
        """The protobuf RequestMessage: request_data (field 1) and count (field 2)."""
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


def rss_kib(pid):
    """Resident memory of a process and its threads, from /proc."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


class Server:
    def __init__(self, name, argv, workdir, only=None):
        self.name, self.argv, self.workdir = name, argv, workdir
        # Scenario keys this server is measured in; None: all of them.
        self.only = only
        self.proc = None
        self.port = None
        self.log = None

    def start(self, cpus):
        self.port = free_port()
        argv = [a.replace("{port}", str(self.port)) for a in self.argv]
        if cpus is not None:
            argv = ["taskset", "-c", cpus] + argv
        self.log = open(self.workdir / f"{self.name.replace(' ', '_')}.log", "ab")
        started = time.monotonic()
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=self.log, cwd=ROOT)
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
        "calls_per_sec": rate,
        "messages_per_sec": rate * scenario.count,
        "mean_ms": float(mean.group(1)) * unit,
        "p99_ms": None,
        "errors": failed + (0 if verified else 1),
        "note": None if verified else f"unverified: {per_call:.1f} data bytes per call, expected {expected}",
    }


def bench(args, server, scenario, cpus):
    argv = load_prefix(cpus) + [
        str(args.bin_dir / "connect-client"), "--addr", server.url(), "bench",
        "--rpc", "unary" if scenario.method == "UnaryRPC" else "server-stream",
        "--count", str(scenario.count), "--data-size", str(len(DATA)),
        "--connections", str(scenario.connections), "--concurrency", str(scenario.concurrency),
        "--duration", f"{args.duration}s", "--warmup", f"{args.warmup}s", "--json",
    ]
    out = run(argv, timeout=args.duration + args.warmup + 60)
    try:
        report = json.loads(out.stdout)
    except json.JSONDecodeError:
        raise RuntimeError(f"connect-client bench failed ({out.returncode}):\n{out.stderr[-2000:]}")
    expected = report["ok"] * scenario.count
    note = None
    if report["failed"]:
        note = f"errors: {report['errors']}"
    elif report["messages"] != expected:
        note = f"{report['messages']} messages, expected {expected}"
    return {
        "calls_per_sec": report["calls_per_sec"],
        "messages_per_sec": report["messages_per_sec"],
        "mean_ms": report["latency_us"]["mean"] / 1000,
        "p99_ms": report["latency_us"]["p99"] / 1000,
        "errors": report["failed"] + (0 if note is None else 1),
        "note": note,
    }


def verify_responses(args, server):
    """The exact responses, compared across servers by the caller."""
    client = [str(args.bin_dir / "connect-client"), "--addr", server.url()]
    unary = run(client + ["unary", "People"], timeout=30)
    stream = run(client + ["server-stream", "People", "--count", "3"], timeout=30)
    if unary.returncode or stream.returncode:
        raise RuntimeError(f"{server.name} failed a plain call: {unary.stderr}{stream.stderr}")
    return unary.stdout + stream.stdout


def first_call_ms(args, server, cpus):
    """Start to first served call: spawn, wait for the port, make one call."""
    started = server.start(cpus)
    client = [str(args.bin_dir / "connect-client"), "--addr", server.url(), "unary", "People"]
    result = run(client, timeout=30)
    elapsed = (time.monotonic() - started) * 1000
    if result.returncode:
        raise RuntimeError(f"first call to {server.name} failed: {result.stderr}")
    return elapsed


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin-dir", type=Path, required=True, help="where connect-server, connect-client and examples/baseline_server are")
    parser.add_argument("--quick", action="store_true", help="smoke run: our server and the baseline, unpinned, one short run each")
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement; the median is reported")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds measured per run")
    parser.add_argument("--warmup", type=float, default=0.5, help="seconds of warm-up per run")
    parser.add_argument("--output", type=Path, help="markdown report (default: BENCHMARKS.md, or none with --quick)")
    parser.add_argument("--no-python", action="store_true", help="leave out the Python grpc.aio server")
    parser.add_argument("--interop-dir", type=Path, default=ROOT / "interop",
                        help="where python_server.py and its .venv (made by its setup) are")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.duration, args.warmup = 1, 0.3, 0.1
    if args.output is None and not args.quick:
        args.output = ROOT / "BENCHMARKS.md"

    workdir = Path(tempfile.mkdtemp(prefix="connect-bench-"))
    # Server logs run to gigabytes in a full run; never leave them behind.
    atexit.register(shutil.rmtree, workdir, True)
    # Private copies: a shared target directory may be rebuilt while we measure.
    bins = workdir / "bin"
    bins.mkdir()
    for rel in ("connect-server", "connect-client", "examples/baseline_server"):
        shutil.copy2(args.bin_dir / rel, bins / Path(rel).name)
    args.bin_dir = bins

    servers = [
        Server(OURS, [str(bins / "connect-server"), "--addr", "127.0.0.1:{port}", "--metrics-addr", "127.0.0.1:0"], workdir),
        Server(BASELINE, [str(bins / "baseline_server"), "127.0.0.1:{port}"], workdir),
    ]
    if not args.quick:
        servers.insert(1, Server(OURS_NO_SPIN, servers[0].argv + ["--busy-poll", "0"], workdir, only={"latency"}))
    venv_python = args.interop_dir / ".venv" / "bin" / "python"
    python_server = args.interop_dir / "python_server.py"
    if not args.quick and not args.no_python:
        if venv_python.exists() and python_server.exists():
            servers.append(Server(PYTHON, [str(venv_python), str(python_server), "--addr", "127.0.0.1:{port}"], workdir))
        else:
            print(f"note: {args.interop_dir}/.venv or python_server.py missing: Python server skipped", file=sys.stderr)

    cores = len(os.sched_getaffinity(0))
    modes = [("unpinned", None, None)]
    if not args.quick:
        if cores >= 2:
            modes.insert(0, ("pinned", "0", "1"))
        else:
            print("note: fewer than 2 cores: pinned runs skipped", file=sys.stderr)
    scenarios = [SCENARIOS[k] for k in (("unary", "ss10", "latency") if args.quick else ("unary", "ss10", "ss1000", "latency"))]
    bodies = {}
    for s in scenarios:
        bodies[s.key] = workdir / f"{s.key}.bin"
        bodies[s.key].write_bytes(s.request())

    commit = measured_commit()
    load_before = os.getloadavg()
    started_at = datetime.datetime.now(datetime.timezone.utc)
    results = {}  # (mode, scenario, tool, server) -> list of runs
    memory = {}   # server -> {idle, after, per_run}
    startup = {}  # server -> ms
    problems = []
    try:
        for mode, server_cpus, load_cpus in modes:
            load_threads = 1 if load_cpus else cores
            for server in servers:
                ms = first_call_ms(args, server, server_cpus)
                startup.setdefault(server.name, []).append(ms)
                if mode == modes[0][0] and server.only is None:
                    memory[server.name] = {"idle": rss_kib(server.proc.pid), "after": []}
            responses = {s.name: verify_responses(args, s) for s in servers}
            for name, text in responses.items():
                if text != responses[OURS]:
                    problems.append(f"{name} answers differently from connect-server:\n{text}")
            for scenario in scenarios:
                for run_index in range(args.runs):
                    # Servers and tools take turns within each run, so noise from
                    # the rest of the machine spreads over all of them alike.
                    for server in servers:
                        if server.only is not None and scenario.key not in server.only:
                            continue
                        for tool in TOOLS:
                            cpu_before, wall_before = cpu_seconds(server.proc.pid), time.monotonic()
                            if tool == "h2load":
                                result = h2load(args, server, scenario, load_cpus, bodies[scenario.key], load_threads)
                            else:
                                result = bench(args, server, scenario, load_cpus)
                            cpu_after, wall_after = cpu_seconds(server.proc.pid), time.monotonic()
                            result["server_cpu_pct"] = (
                                100 * (cpu_after - cpu_before) / (wall_after - wall_before)
                                if cpu_before is not None and cpu_after is not None else None)
                            if result["note"]:
                                problems.append(f"{mode} {scenario.key} {tool} {server.name}: {result['note']}")
                            results.setdefault((mode, scenario.key, tool, server.name), []).append(result)
                            print(f"  {mode:8} {scenario.key:8} {tool:21} {server.name:16} "
                                  f"{result['calls_per_sec']:>12,.0f} calls/s", file=sys.stderr, flush=True)
                    if mode == modes[0][0]:
                        for server in servers:
                            if server.name in memory:
                                memory[server.name]["after"].append(rss_kib(server.proc.pid))
            for server in servers:
                server.stop()
    finally:
        for server in servers:
            server.stop()
    load_after = os.getloadavg()

    summary = summarise(results)
    table = render_table(summary, modes, scenarios, servers)
    print(table)
    targets = evaluate(summary, modes, servers, memory, startup)
    print(render_targets(targets))
    for problem in problems:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    if args.output:
        chart = ROOT / "bench" / "chart.svg"
        chart.write_text(svg_chart(summary, modes, servers))
        args.output.write_text(markdown(args, table, targets, memory, startup, problems, started_at,
                                        load_before, load_after, cores, chart.relative_to(ROOT), commit))
        print(f"wrote {args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output} and {chart.relative_to(ROOT)}")
    return 1 if problems else 0


def summarise(results):
    summary = {}
    for key, runs in results.items():
        summary[key] = {
            field: median([r[field] for r in runs])
            for field in ("calls_per_sec", "messages_per_sec", "mean_ms", "p99_ms", "server_cpu_pct")
        }
        summary[key]["runs"] = len(runs)
        summary[key]["spread"] = spread([r["calls_per_sec"] for r in runs])
    return summary


def spread(values):
    """(max - min) / median, in percent: how noisy the runs were."""
    if len(values) < 2 or not statistics.median(values):
        return None
    return 100 * (max(values) - min(values)) / statistics.median(values)


def fmt(value, digits=0):
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def render_table(summary, modes, scenarios, servers):
    lines = []
    header = ("| mode | scenario | load generator | server | calls/s | messages/s | mean ms | p99 ms | vs baseline "
              "| server CPU | run spread |")
    lines += [header, "|" + "---|" * 11]
    for mode, _, _ in modes:
        for scenario in scenarios:
            for tool in TOOLS:
                base = summary.get((mode, scenario.key, tool, BASELINE))
                for server in servers:
                    row = summary.get((mode, scenario.key, tool, server.name))
                    if not row:
                        continue
                    if scenario.key == "latency":
                        ratio = f"{row['mean_ms'] / base['mean_ms']:.2f}x latency" if base and row["mean_ms"] and base["mean_ms"] else "-"
                    else:
                        metric = "messages_per_sec" if scenario.is_stream else "calls_per_sec"
                        ratio = f"{row[metric] / base[metric]:.2f}x" if base and base[metric] else "-"
                    lines.append(
                        f"| {mode} | {scenario.title} | {tool} | {server.name} | {fmt(row['calls_per_sec'])} | "
                        f"{fmt(row['messages_per_sec']) if scenario.is_stream else '-'} | {fmt(row['mean_ms'], 3)} | "
                        f"{fmt(row['p99_ms'], 3)} | {ratio} | {fmt(row['server_cpu_pct']) + '%' if row['server_cpu_pct'] is not None else '-'} | "
                        f"{fmt(row['spread'], 0) + '%' if row['spread'] is not None else '-'} |"
                    )
    return "\n".join(lines)


def ratio(summary, mode, scenario, tool, server, other, metric):
    a = summary.get((mode, scenario, tool, server))
    b = summary.get((mode, scenario, tool, other))
    if not a or not b or not a[metric] or not b[metric]:
        return None
    return a[metric] / b[metric]


def evaluate(summary, modes, servers, memory, startup):
    """Each target, with the figures that decide it."""
    names = [s.name for s in servers]
    mode_names = [m[0] for m in modes]
    out = []

    def add(target, value, ok, detail):
        out.append((target, value, ok, detail))

    for mode, goal in (("pinned", 1.5), ("unpinned", 1.0)):
        if mode not in mode_names:
            continue
        for scenario, metric in (("unary", "calls_per_sec"), ("ss10", "messages_per_sec"), ("ss1000", "messages_per_sec")):
            for tool in TOOLS:
                r = ratio(summary, mode, scenario, tool, OURS, BASELINE, metric)
                if r is not None:
                    add(f"{mode} {scenario} {metric.replace('_per_sec', '/s')} >= {goal}x baseline ({tool})",
                        f"{r:.2f}x", r >= goal, "")
    if PYTHON in names:
        for mode in mode_names:
            for tool in TOOLS:
                r = ratio(summary, mode, "unary", tool, OURS, PYTHON, "calls_per_sec")
                if r is not None:
                    add(f"{mode} unary >= 20x Python grpc.aio ({tool})", f"{r:.1f}x", r >= 20, "")
    for mode in mode_names:
        for tool in TOOLS:
            a = summary.get((mode, "latency", tool, OURS))
            b = summary.get((mode, "latency", tool, BASELINE))
            if a and b and a["mean_ms"] and b["mean_ms"]:
                add(f"{mode} unloaded mean latency <= baseline ({tool})",
                    f"{a['mean_ms']:.3f} vs {b['mean_ms']:.3f} ms", a["mean_ms"] <= b["mean_ms"], "")
    for mode in mode_names:
        for scenario in ("unary", "ss10", "ss1000"):
            for server in names:
                ours = summary.get((mode, scenario, "connect-client bench", server))
                h2 = summary.get((mode, scenario, "h2load", server))
                r = ours["calls_per_sec"] / h2["calls_per_sec"] if ours and h2 and h2["calls_per_sec"] else None
                if r is not None:
                    add(f"{mode} {scenario} connect-client bench >= 0.8x h2load ({server})", f"{r:.2f}x", r >= 0.8, "")
    mem = memory.get(OURS)
    if mem and mem["idle"]:
        add("connect-server idle RSS <= 10 MiB", f"{mem['idle'] / 1024:.1f} MiB", mem["idle"] <= 10 * 1024, "")
    if mem and mem["after"]:
        peak = max(v for v in mem["after"] if v)
        add("connect-server RSS after the load <= 32 MiB", f"{peak / 1024:.1f} MiB", peak <= 32 * 1024,
            "after every run: " + ", ".join(f"{v / 1024:.1f}" for v in mem["after"] if v) + " MiB")
    if OURS in startup:
        best = min(startup[OURS])
        add("connect-server start to first served call <= 50 ms", f"{best:.1f} ms", best <= 50,
            "includes starting connect-client for the call")
    return out


def render_targets(targets):
    lines = ["| target | measured | met |", "|---|---|---|"]
    for target, value, ok, detail in targets:
        lines.append(f"| {target} | {value}{' (' + detail + ')' if detail else ''} | {'yes' if ok else '**NO**'} |")
    return "\n".join(lines)


def svg_chart(summary, modes, servers):
    """Two panels, pinned figures (or unpinned when pinned was not run):
    throughput per scenario (bars scaled to the best server of each group) and p99 latency."""
    mode = "pinned" if any(m[0] == "pinned" for m in modes) else "unpinned"
    tool = "connect-client bench"
    colours = {OURS: "#d9480f", OURS_NO_SPIN: "#f59f00", BASELINE: "#1c7ed6", PYTHON: "#5c940d"}
    groups = [("unary calls/s", "unary", "calls_per_sec"), ("stream-10 msgs/s", "ss10", "messages_per_sec"),
              ("stream-1000 msgs/s", "ss1000", "messages_per_sec")]
    lat_groups = [("p99 ms, loaded unary", "unary"), ("p99 ms, unloaded", "latency")]
    width, height, top, bar_h = 940, 360, 60, 200
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
             '<rect width="100%" height="100%" fill="white"/>',
             f'<text x="10" y="20" font-size="15">ConnectService throughput and p99 latency ({mode}, measured with {tool}; median of runs)</text>']
    for i, server in enumerate(servers):
        parts.append(f'<rect x="{10 + i * 220}" y="32" width="12" height="12" fill="{colours.get(server.name, "#888")}"/>'
                     f'<text x="{26 + i * 220}" y="43">{server.name}</text>')
    slot = 165
    bw = (slot - 30) / max(1, len(servers))
    all_groups = [(label, key, metric, False) for label, key, metric in groups] + [(label, key, "p99_ms", True) for label, key in lat_groups]
    for g, (label, key, metric, is_latency) in enumerate(all_groups):
        x0 = 20 + g * (slot + 12)
        values = [(s.name, (summary.get((mode, key, tool, s.name)) or {}).get(metric)) for s in servers]
        peak = max([v for _, v in values if v] or [1])
        for i, (name, value) in enumerate(values):
            if not value:
                continue
            h = max(1, bar_h * value / peak)
            x = x0 + i * bw
            y = top + 20 + bar_h - h
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bw - 4:.1f}" height="{h:.1f}" fill="{colours.get(name, "#888")}"/>')
            text = f"{value:.2f}" if is_latency else (f"{value / 1000:.0f}k" if value >= 10000 else f"{value:.0f}")
            parts.append(f'<text x="{x + (bw - 4) / 2:.1f}" y="{y - 4:.1f}" text-anchor="middle" font-size="10">{text}</text>')
        parts.append(f'<text x="{x0 + (slot - 30) / 2:.1f}" y="{top + bar_h + 40}" text-anchor="middle">{label}</text>')
    parts.append(f'<text x="10" y="{height - 12}" font-size="10" fill="#555">Bars are scaled within each group; labels are absolute. Lower is better for p99.</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def measured_commit():
    """The checked-out commit, read before the runs: what the binaries were built from."""
    commit = run(["git", "rev-parse", "--short", "HEAD"], timeout=10).stdout.strip() or "unknown"
    if run(["git", "status", "--porcelain", "--untracked-files=no"], timeout=10).stdout.strip():
        commit += " with uncommitted changes"
    return commit


def markdown(args, table, targets, memory, startup, problems, started_at, load_before, load_after, cores, chart,
             commit):
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_lines = []
    for name, mem in memory.items():
        after = ", ".join(f"{v / 1024:.1f}" for v in mem["after"] if v)
        mem_lines.append(f"| {name} | {mem['idle'] / 1024 if mem['idle'] else 0:.1f} | {after} | "
                         f"{min(startup.get(name, [0])):.1f} |")
    h2load_version = run(["h2load", "--version"], timeout=10).stdout.strip()
    return f"""# Benchmarks

Measured by `bench/run` on {started_at:%Y-%m-%d %H:%M} UTC: {cores} cores ({cpu}), {platform.system()} {platform.release()},
{h2load_version}. Each figure is the median of {args.runs} runs of {args.duration:g} s (connect-client bench: after {args.warmup:g} s of warm-up);
servers and load generators take turns within each run. Code measured: `{commit}`. *Pinned*: server on core 0,
load generator on core 1 (`taskset`); *unpinned*: both free on all cores.

![throughput and p99 latency per server](./{chart})

## Reproduce

```sh
bench/run                 # release build, all servers, pinned and unpinned (about 12 minutes)
bench/run --runs 5        # more runs per figure
bench/run --quick         # smoke run: debug build, our server and the baseline, a few seconds of load
```

The servers: **connect-server** with its defaults (`--workers` = cores it may use, metrics and logging as
shipped, busy polling for 100 us after close reads); **connect-server --busy-poll 0**, the same without busy
polling, measured unloaded only (to show what busy polling buys and costs); **baseline**, `connect-server/examples/baseline_server.rs`, the least tonic server for the same proto
(default `#[tokio::main]`, default `Server::builder()`, same responses); **python grpc.aio**,
`interop/python_server.py`. The load generators: `h2load` (nghttp2), which does not read `grpc-status`, so every
h2load run is checked to have received the full response payload for each call (an error response carries none),
and `connect-client bench`, which checks `grpc-status` and the message count of every call. Before the runs the
script also checks that every server gives the same answers as connect-server to a unary call and a 3-message stream.
*Server CPU* is the server process's CPU time (all threads, from `/proc`) during the run, in percent of one core.

## Noise

Load average {load_before[0]:.1f} at the start and {load_after[0]:.1f} at the end, on {cores} cores (the build just
before the run and the benchmark itself count in it; anything else running on the machine does too). The *run spread* column
((max - min) / median of the runs) shows how much the runs of one figure disagreed; ratios taken within one run are
more stable than the absolute figures, which will differ on a quiet machine.

## Results

{table}

## Targets

{render_targets(targets)}

## Memory and startup (connect-server and the others)

| server | idle RSS MiB | RSS after each loaded run, MiB | start to first served call, ms |
|---|---|---|---|
{chr(10).join(mem_lines)}

The start-to-first-call time includes launching `connect-client` for that call.
{"" if not problems else chr(10) + "## Problems seen in this run" + chr(10) + chr(10) + chr(10).join("- " + p.replace(chr(10), " ") for p in problems) + chr(10)}"""


if __name__ == "__main__":
    sys.exit(main())
