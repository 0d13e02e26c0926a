#!/usr/bin/env python3
"""Where connect-server's CPU per unary call goes, by crate: a sampling
profile (`perf record -e cpu-clock`, which needs no hardware counters) of the
server pinned to core 0 with one worker while h2load, on core 1, keeps 64
unary calls in flight. Each sample is charged to the innermost frame that
belongs to a named crate (so `memcpy` inside h2 counts as h2, and the standard
library counts for its caller); kernel samples are the socket system calls.

Run it through bench/profile, which builds the server and installs perf and h2load.
"""

import argparse
import collections
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import SCENARIOS, Server, cpu_seconds, h2load  # noqa: E402

# Crate -> the part of the stack it belongs to. Everything connect-server adds on
# top of the libraries is "ours".
GROUPS = {
    "connect_server": "ours: connect-server (transport taps, observe layer, handlers, access log)",
    "connect_proto": "ours: connect-server (transport taps, observe layer, handlers, access log)",
    "h2": "h2 (HTTP/2 framing, HPACK, flow control)",
    "hyper": "hyper / hyper-util (HTTP/2 server glue)",
    "hyper_util": "hyper / hyper-util (HTTP/2 server glue)",
    "tonic": "tonic (gRPC codec, status, server glue)",
    "tonic_prost": "tonic (gRPC codec, status, server glue)",
    "prost": "prost (protobuf)",
    "http": "http / http-body / bytes (shared types)",
    "http_body": "http / http-body / bytes (shared types)",
    "http_body_util": "http / http-body / bytes (shared types)",
    "bytes": "http / http-body / bytes (shared types)",
    "tokio": "tokio (scheduler, I/O driver, timers)",
    "tokio_util": "tokio (scheduler, I/O driver, timers)",
    "mimalloc": "allocator (mimalloc)",
    "tracing": "tracing (access-log events)",
    "tracing_core": "tracing (access-log events)",
    "tracing_subscriber": "tracing (access-log events)",
    "tower": "tower / futures (service glue)",
    "futures_util": "tower / futures (service glue)",
    "futures_core": "tower / futures (service glue)",
}
SKIP = {"core", "alloc", "std", "[unknown]", "__rust_begin_short_backtrace"}


def crate_of(symbol):
    """The crate a symbol's code belongs to: `<a::B as c::D>::f` is `a`'s unless
    `a` is a bare type parameter, then `c`'s."""
    if symbol.startswith(("mi_", "_mi_")):
        return "mimalloc"
    text = symbol
    if text.startswith("<"):
        inner = text[1:]
        own, _, trait = inner.partition(" as ")
        text = trait if re.fullmatch(r"[A-Z][A-Za-z0-9]*(<.*>)?", own) or own.startswith(("&", "(")) else own
        text = text.lstrip("<&")
    head = re.split(r"::|<", text, maxsplit=1)[0]
    return head


def classify(stack):
    """`stack`: (address, symbol) frames, innermost first."""
    address, leaf = stack[0]
    if address.startswith("ffffffff"):
        return "kernel (read, write, epoll: the socket system calls)"
    for _, symbol in stack:
        crate = crate_of(symbol)
        if crate in GROUPS:
            return GROUPS[crate]
        if crate in SKIP or not crate or symbol.startswith("__") or crate in ("start_thread", "clone3"):
            continue
    return "libc and other (memcpy/memmove outside a known crate, vDSO clock)"


def samples(perf_data):
    out = subprocess.run(["perf", "script", "-i", str(perf_data), "-F", "ip,sym"], capture_output=True, text=True,
                         check=True).stdout
    for block in out.split("\n\n"):
        frames = []
        for line in block.strip().splitlines():
            parts = line.strip().split(None, 1)
            if len(parts) == 2:
                frames.append((parts[0], parts[1]))
        if frames:
            yield frames


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin-dir", type=Path, required=True)
    parser.add_argument("--duration", type=float, default=5.0)
    args = parser.parse_args()
    args.warmup = 0.0
    workdir = Path(tempfile.mkdtemp(prefix="connect-profile-"))
    scenario = SCENARIOS["unary"]
    body = workdir / "unary.bin"
    body.write_bytes(scenario.request())
    server = Server("connect-server", [str(args.bin_dir / "connect-server"), "--addr", "127.0.0.1:{port}",
                                       "--metrics-addr", "off", "--workers", "1"], workdir)
    server.start("0")
    perf_data = workdir / "perf.data"
    try:
        perf = subprocess.Popen(["perf", "record", "-F", "499", "-e", "cpu-clock", "--call-graph", "dwarf,16384",
                                 "-p", str(server.proc.pid), "-o", str(perf_data)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)
        cpu_before = cpu_seconds(server.proc.pid)
        result = h2load(args, server, scenario, "1", body, 1)
        cpu = cpu_seconds(server.proc.pid) - cpu_before
        perf.send_signal(2)
        perf.wait(timeout=60)
    finally:
        server.stop()
    if result["errors"]:
        raise SystemExit(f"h2load: {result['note']}")
    per_call_us = 1e6 * cpu / result["calls"]
    counts = collections.Counter(classify(stack) for stack in samples(perf_data))
    total = sum(counts.values())
    print(f"connect-server, one worker pinned to core 0, h2load unary (8 connections x 8 streams) on core 1, "
          f"{args.duration:g} s: {result['calls_per_sec']:,.0f} calls/s, {per_call_us:.1f} us of server CPU per call, "
          f"{total:,} samples.\n")
    print("| where | share of server CPU | us per call |")
    print("|---|---:|---:|")
    for group, n in counts.most_common():
        print(f"| {group} | {100 * n / total:.1f}% | {per_call_us * n / total:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
