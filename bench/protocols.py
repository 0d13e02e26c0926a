#!/usr/bin/env python3
"""The same unary call over every protocol the port speaks, side by side.

One connect-server, driven by h2load with the same load for each protocol in
turn (8 connections, 64 calls in flight; HTTP/1.1 has no multiplexing, so 64
connections there): gRPC, gRPC-Web, Connect with a binary body, Connect with
JSON, and Connect JSON over HTTP/1.1. Every run is checked to have received
the exact response bytes of each call (h2load reads no status), and the
protocols take turns within each round, so a noisy machine blurs them alike.
Run it through bench/protocols, which builds the release binary.
"""

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import DATA, Server, cpu_seconds, run  # noqa: E402

REQUEST = b"\x0a" + bytes([len(DATA)]) + DATA.encode()
ANSWER = ("Hello, " + DATA).encode()


def framed(payload, flags=0):
    return bytes([flags]) + len(payload).to_bytes(4, "big") + payload


class Protocol:
    def __init__(self, name, content_type, body, response_bytes, h1=False, extra=()):
        self.name, self.content_type, self.body = name, content_type, body
        self.response_bytes, self.h1, self.extra = response_bytes, h1, list(extra)


PROTOCOLS = [
    Protocol("gRPC", "application/grpc", framed(REQUEST), len(framed(b"\x0a\x17" + ANSWER)),
             extra=["-H", "te: trailers"]),
    Protocol("gRPC-Web", "application/grpc-web+proto", framed(REQUEST),
             len(framed(b"\x0a\x17" + ANSWER)) + len(framed(b"grpc-status:0\r\n", 0x80))),
    Protocol("Connect (binary)", "application/proto", REQUEST, len(b"\x0a\x17" + ANSWER)),
    Protocol("Connect (JSON)", "application/json", b'{"requestData":"' + DATA.encode() + b'"}',
             len(b'{"responseData":"' + ANSWER + b'"}')),
    Protocol("Connect (JSON) over HTTP/1.1", "application/json", b'{"requestData":"' + DATA.encode() + b'"}',
             len(b'{"responseData":"' + ANSWER + b'"}'), h1=True),
]


def measure(server, protocol, body_file, duration):
    connections, per_conn = (64, 1) if protocol.h1 else (8, 8)
    argv = ["h2load", "-D", f"{int(duration * 1000)}ms", "-c", str(connections), "-m", str(per_conn), "-t", "1",
            "-d", str(body_file), "-H", f"content-type: {protocol.content_type}", *protocol.extra]
    if protocol.h1:
        argv.append("--h1")
    argv.append(f"{server.url()}/ConnectService/UnaryRPC")
    cpu_before = cpu_seconds(server.proc.pid)
    out = run(argv, timeout=duration + 60)
    cpu_after = cpu_seconds(server.proc.pid)
    text = out.stdout + out.stderr
    requests = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed", text)
    finished = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s", text)
    traffic = re.search(r"traffic: .*?, ([\d.]+\w*) \((\d+)\) data", text)
    if out.returncode != 0 or not (requests and finished and traffic):
        raise RuntimeError(f"h2load failed for {protocol.name}:\n{text[-2000:]}")
    done, succeeded, failed = int(requests.group(3)), int(requests.group(4)), int(requests.group(5))
    data = int(traffic.group(2))
    # HTTP/1.1 counts chunk framing as data; HTTP/2 counts only the DATA payload.
    exact = failed == 0 and done > 0 and succeeded == done and (
        protocol.h1 or done * protocol.response_bytes <= data <= (done + 64) * protocol.response_bytes)
    if not exact:
        raise RuntimeError(f"{protocol.name}: {data / max(done, 1):.1f} data bytes per call, "
                           f"expected {protocol.response_bytes}; {failed} failed")
    calls = float(finished.group(3))
    cpu_us = (cpu_after - cpu_before) * 1e6 / done if cpu_before is not None else None
    return calls, cpu_us


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin-dir", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=4.0)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-protocols-"))
    server = Server("connect-server", [str(args.bin_dir / "connect-server"), "--addr", "127.0.0.1:{port}",
                                       "--metrics-addr", "off", "--stats-interval", "0"], workdir)
    files = {}
    for p in PROTOCOLS:
        files[p.name] = workdir / f"{len(files)}.bin"
        files[p.name].write_bytes(p.body)
    results = {p.name: [] for p in PROTOCOLS}
    server.start(None)
    try:
        for round_ in range(args.runs):
            for p in PROTOCOLS:
                results[p.name].append(measure(server, p, files[p.name], args.duration))
                print(f"  run {round_ + 1}: {p.name:30} {results[p.name][-1][0]:>9,.0f} calls/s", file=sys.stderr)
    finally:
        server.stop()
    grpc = statistics.median(r[0] for r in results["gRPC"])
    print(f"Measured by bench/protocols on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
          f"median of {args.runs} runs of {args.duration:g} s, h2load, unpinned, one connect-server.\n")
    print("| protocol (unary, `UnaryRPC`) | calls/s | vs gRPC | server CPU per call |")
    print("|---|---:|---:|---:|")
    for p in PROTOCOLS:
        calls = statistics.median(r[0] for r in results[p.name])
        cpu = statistics.median(r[1] for r in results[p.name] if r[1] is not None)
        print(f"| {p.name} | {calls:,.0f} | {calls / grpc:.2f}x | {cpu:.1f} µs |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
