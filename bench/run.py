#!/usr/bin/env python3
"""Side-by-side benchmark of connect-server and the servers a user could pick
instead: the default tonic baseline, the peers under bench/peers/ (connectrpc,
pajamax, grpc-go, gRPC C++, Node grpc-js) and Python grpc.aio. Five views:

  throughput   unary, stream(10), stream(1000) and unloaded latency, pinned
               (server on core 0, load on core 1) and unpinned, with server CPU
               per call from /proc;
  latency      open loop (`connect-client bench --rate`) at 25/50/75/90% of each
               server's own pinned peak, p50/p99/p99.9;
  busy polling unloaded and paced (10,000 calls/s, one connection) latency and
               CPU, with and without `--busy-poll`;
  connections  calls/s and peak RSS at 1 to 1,000 client connections (unpinned);
  idle         RSS while holding 10,000 idle HTTP/2 connections.

Servers and load generators take turns within each round, so noise from the
rest of the machine falls on all of them alike; figures are medians of rounds.
Writes BENCHMARKS.md (keeping its hand-written part) and three SVG charts.
Standard library only; run it through bench/run, which builds everything.
"""

import argparse
import datetime
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import (  # noqa: E402
    BASELINE, CONNECTIONS, IDLE, OURS, OURS_SPIN, PACED_RATE, PYTHON, ROOT, SCENARIOS, SWEEP, TOOLS, Server, bench,
    h2load, idle_connections, measured, private_workdir, raise_open_files_limit, rss_kib, run, verify_responses,
)
import report  # noqa: E402


# The peers under bench/peers/: directory, name in the tables, scenarios served
# (None: all), whether full-featured (four call kinds, deadlines, cancellation), colour.
PEERS = [
    ("connectrpc", "connectrpc (Rust)", None, True, "#7048e8"),
    ("go", "grpc-go", None, True, "#0ca678"),
    ("cpp", "gRPC C++ (callback)", None, True, "#495057"),
    ("node", "Node grpc-js", None, True, "#66a80f"),
    ("pajamax", "pajamax (unary only)", {"unary", "latency"}, False, "#adb5bd"),
]


def servers_for(args, workdir, missing):
    """The servers of this run; a peer that is not there is added to `missing`."""
    bins = args.bin_dir
    ours = [str(bins / "connect-server"), "--addr", "127.0.0.1:{port}", "--metrics-addr", "127.0.0.1:0",
            # 10,000 idle connections, plus the probe's own.
            "--max-connections", str(IDLE + 100)]
    servers = [Server(OURS, ours, workdir, colour="#d9480f"),
               Server(BASELINE, [str(bins / "baseline_server"), "127.0.0.1:{port}"], workdir, colour="#1c7ed6")]
    if args.quick and not args.peers_dir:
        return servers
    if not args.quick:
        servers.insert(1, Server(OURS_SPIN, ours + ["--busy-poll", "100us"], workdir, only={"latency"},
                                 colour="#f59f00"))
    if args.peers_dir:
        for directory, name, only, full, colour in PEERS:
            binary = args.peers_dir / directory / "server"
            if binary.exists():
                servers.append(Server(name, [str(binary), "127.0.0.1:{port}"], workdir, only=only, full=full,
                                      colour=colour))
            else:
                missing.append(f"peer {directory} was not built ({binary} missing): left out")
    venv_python = args.interop_dir / ".venv" / "bin" / "python"
    python_server = args.interop_dir / "python_server.py"
    if not args.quick and not args.no_python:
        if venv_python.exists() and python_server.exists():
            servers.append(Server(PYTHON, [str(venv_python), str(python_server), "--addr", "127.0.0.1:{port}"],
                                  workdir, colour="#e64980"))
        else:
            print(f"note: {args.interop_dir}/.venv or python_server.py missing: Python server skipped", file=sys.stderr)
    return servers


def tools_for(server, mode):
    """Every server meets both load generators pinned; unpinned, the peers meet h2load only (time)."""
    return TOOLS if mode == "pinned" or server.name in (OURS, BASELINE) else ("h2load",)


class Bench:
    """One benchmark run: its settings, servers and everything measured."""

    def __init__(self, args, workdir, servers, cores):
        self.args, self.workdir, self.servers, self.cores = args, workdir, servers, cores
        self.bodies = {}
        for s in SCENARIOS.values():
            self.bodies[s.key] = workdir / f"{s.key}.bin"
            self.bodies[s.key].write_bytes(s.request())
        self.throughput = {}  # (mode, scenario, tool, server) -> runs
        self.sweep = {}       # (scenario, percent, server) -> runs (and "peak")
        self.paced = {}       # server -> runs
        self.connections = {}  # (connections, server) -> runs
        self.idle = {}        # server -> reading
        self.memory = {}      # server -> {idle, after}
        self.startup = {}     # server -> [ms]
        self.problems = []

    def note(self, where, result):
        if result.get("note"):
            self.problems.append(f"{where}: {result['note']}")

    def start_all(self, cpus):
        for server in self.servers:
            started = server.start(cpus)
            self.startup.setdefault(server.name, []).append(first_call_ms(self.args, server, started))
            if server.only is None and server.name not in self.memory:
                self.memory[server.name] = {"idle": rss_kib(server.proc.pid), "after": []}
        expected = verify_responses(self.args, self.servers[0])
        for server in self.servers[1:]:
            text = verify_responses(self.args, server, stream=server.serves("ss10"))
            if text != expected[:len(text)] or not text:
                self.problems.append(f"{server.name} answers differently from connect-server:\n{text}")

    def run_throughput(self, mode, load_cpus, scenarios, record_memory):
        threads = 1 if load_cpus else self.cores
        for scenario in scenarios:
            for round_ in range(self.args.runs):
                for server in self.servers:
                    if not server.serves(scenario.key):
                        continue
                    for tool in tools_for(server, mode):
                        if tool == "h2load":
                            load = lambda: h2load(self.args, server, scenario, load_cpus,  # noqa: E731
                                                  self.bodies[scenario.key], threads)
                        else:
                            load = lambda: bench(self.args, server, scenario, load_cpus)  # noqa: E731
                        result = measured(server, load)
                        self.note(f"{mode} {scenario.key} {tool} {server.name}", result)
                        self.throughput.setdefault((mode, scenario.key, tool, server.name), []).append(result)
                        progress(mode, scenario.key, tool, server.name, result)
                if record_memory:
                    for server in self.servers:
                        if server.name in self.memory:
                            self.memory[server.name]["after"].append(rss_kib(server.proc.pid))

    def run_sweep(self, mode, load_cpus, keys):
        """Open loop at fractions of each server's own peak (its connect-client bench figure in `mode`)."""
        for scenario in (SCENARIOS[k] for k in keys):
            for round_ in range(self.args.runs):
                for percent in SWEEP:
                    for server in self.servers:
                        peak = report.median_of(self.throughput, (mode, scenario.key, "connect-client bench",
                                                                   server.name), "calls_per_sec")
                        if not server.serves(scenario.key) or not peak or server.name == OURS_SPIN:
                            continue
                        self.sweep.setdefault((scenario.key, "peak", server.name), peak)
                        result = measured(server, lambda: bench(self.args, server, scenario, load_cpus,
                                                                rate=peak * percent / 100,
                                                                duration=self.args.sweep_duration))
                        self.note(f"{scenario.key} at {percent}% of peak, {server.name}", result)
                        self.sweep.setdefault((scenario.key, percent, server.name), []).append(result)
                        progress(f"{percent}%", scenario.key, "open loop", server.name, result, "p99_ms")

    def run_paced(self, load_cpus):
        """One connection at a fixed rate, busy polling on and off: what the spin costs and buys."""
        scenario = SCENARIOS["latency"]
        for round_ in range(self.args.runs):
            for server in self.servers:
                if server.name not in (OURS, OURS_SPIN, BASELINE):
                    continue
                result = measured(server, lambda: bench(self.args, server, scenario, load_cpus, rate=PACED_RATE,
                                                        connections=1, concurrency=4,
                                                        duration=self.args.sweep_duration))
                self.note(f"paced {server.name}", result)
                self.paced.setdefault(server.name, []).append(result)
                progress("paced", "unary", "open loop", server.name, result, "p99_ms")

    def run_connections(self, counts):
        """Fresh servers per reading, unpinned: calls/s and peak RSS as client connections grow."""
        scenario = SCENARIOS["unary"]
        for round_ in range(self.args.runs):
            for count in counts:
                for server in self.servers:
                    if server.name not in (OURS, BASELINE):
                        continue
                    server.start(None)
                    try:
                        result = bench(self.args, server, scenario, None, connections=count,
                                       concurrency=max(64, count))
                        result["peak_kib"] = rss_kib(server.proc.pid, "VmHWM")
                    finally:
                        server.stop()
                    self.note(f"{count} connections, {server.name}", result)
                    self.connections.setdefault((count, server.name), []).append(result)
                    progress(f"{count} conn", "unary", "connect-client bench", server.name, result)

    def run_idle(self, count):
        # pajamax closes connections beyond 100 (a thread each): not measured here.
        for server in self.servers:
            if server.name == OURS_SPIN or not server.full:
                continue
            server.start(None)
            try:
                reading = idle_connections(server, count)
            finally:
                server.stop()
            if reading["connections"] != count:
                self.problems.append(f"{server.name}: {reading['connections']} of {count} idle connections "
                                     "completed their HTTP/2 handshake")
            self.idle[server.name] = reading
            print(f"  idle     {count} connections {server.name:32} {reading['idle_kib']:>8,} -> "
                  f"{reading['held_kib'] or 0:>9,} KiB", file=sys.stderr, flush=True)


def progress(mode, scenario, tool, server, result, field="calls_per_sec"):
    value = result[field]
    shown = f"{value:>12,.0f} calls/s" if field == "calls_per_sec" else f"{value:>10,.3f} ms p99"
    print(f"  {mode:8} {scenario:8} {tool:21} {server:32} {shown}", file=sys.stderr, flush=True)


def first_call_ms(args, server, started):
    """Start to first served call: spawn, wait for the port, make one call."""
    client = [str(args.bin_dir / "connect-client"), "--addr", server.url(), "unary", "People"]
    result = run(client, timeout=30)
    elapsed = (time.monotonic() - started) * 1000
    if result.returncode:
        raise RuntimeError(f"first call to {server.name} failed: {result.stderr}")
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin-dir", type=Path, required=True,
                        help="where connect-server, connect-client and examples/baseline_server are")
    parser.add_argument("--peers-dir", type=Path, help="where bench/peers/*/build left each peer's server")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: our server, the baseline (and built peers), unpinned, short runs")
    parser.add_argument("--runs", type=int, default=3, help="rounds per measurement; the median is reported")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds measured per throughput run")
    parser.add_argument("--sweep-duration", type=float, default=3.0, help="seconds measured per open-loop run")
    parser.add_argument("--warmup", type=float, default=0.5, help="seconds of warm-up per connect-client bench run")
    parser.add_argument("--output", type=Path, help="markdown report (default: BENCHMARKS.md, or none with --quick)")
    parser.add_argument("--no-python", action="store_true", help="leave out the Python grpc.aio server")
    parser.add_argument("--interop-dir", type=Path, default=ROOT / "interop",
                        help="where python_server.py and its .venv (made by its setup) are")
    args = parser.parse_args()
    if args.quick:
        # Two rounds, so the report takes medians over several runs as a full run does.
        args.runs, args.duration, args.sweep_duration, args.warmup = 2, 0.3, 0.3, 0.1
    if args.output is None and not args.quick:
        args.output = ROOT / "BENCHMARKS.md"

    workdir, args.bin_dir = private_workdir("connect-bench-", args.bin_dir)
    idle_count = 200 if args.quick else IDLE
    open_files = raise_open_files_limit(2 * idle_count + 1024)
    if open_files < idle_count + 256:
        print(f"note: open-file limit {open_files}: idle connections view skipped", file=sys.stderr)
        idle_count = 0

    missing = []
    servers = servers_for(args, workdir, missing)
    cores = len(os.sched_getaffinity(0))
    modes = [("unpinned", None, None)]
    if not args.quick:
        if cores >= 2:
            modes.insert(0, ("pinned", "0", "1"))
        else:
            print("note: fewer than 2 cores: pinned runs skipped", file=sys.stderr)
    keys = ("unary", "ss10", "latency") if args.quick else ("unary", "ss10", "ss1000", "latency")
    scenarios = [SCENARIOS[k] for k in keys]

    b = Bench(args, workdir, servers, cores)
    b.problems += missing
    meta = report.Meta(args, cores, modes, servers, started=datetime.datetime.now(datetime.timezone.utc),
                       load_before=os.getloadavg(), commit=measured_commit(), idle_count=idle_count)
    try:
        for mode, server_cpus, load_cpus in modes:
            b.start_all(server_cpus)
            b.run_throughput(mode, load_cpus, scenarios, record_memory=mode == modes[0][0])
            # The open-loop views are pinned; a smoke run (unpinned only) walks their code once.
            if mode == "pinned" or args.quick:
                b.run_paced(load_cpus)
                b.run_sweep(mode, load_cpus, ("unary",) if args.quick else ("unary", "ss10"))
            for server in servers:
                server.stop()
        b.run_connections((1, 16) if args.quick else CONNECTIONS)
        if idle_count:
            b.run_idle(idle_count)
    finally:
        for server in servers:
            server.stop()
    meta.load_after = os.getloadavg()

    text = report.render(meta, b)
    print(text.console)
    for problem in b.problems:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    if args.output:
        report.write(meta, b, text, args.output)
    return 1 if b.problems else 0


def measured_commit():
    """The checked-out commit, read before the runs: what the binaries were built from."""
    commit = run(["git", "rev-parse", "--short", "HEAD"], timeout=10).stdout.strip() or "unknown"
    if run(["git", "status", "--porcelain", "--untracked-files=no"], timeout=10).stdout.strip():
        commit += " with uncommitted changes"
    return commit


if __name__ == "__main__":
    sys.exit(main())
