#!/usr/bin/env python3
"""connect-server beside h2-prototype on the pinned unary row: calls per second
and server CPU microseconds per call, medians of several alternating rounds,
and the ratio; optionally callgrind's user-space instructions per call.

    python3 bench/h2-prototype/run.py --bin-dir TARGET/release [--rounds 7] [--calls 500000]
        [--instructions CALLGRIND_CONNECT_SERVER]

`bench/h2-prototype/run` builds both and calls this. Each server runs pinned to
core 0 (`taskset -c 0`; connect-server then has one worker), h2load pinned to
core 1 (`-c4 -m32 -t1 -n CALLS`, the same 16-byte `request_data` as the other
benches). Both servers stay up for the whole run; each round measures them one
after the other, the order alternating, after 2,000 warm-up calls. Server CPU
is utime + stime from /proc/PID/stat over the measured calls only.

Before measuring, the answers are checked: one Python grpcio call to each
server, raw bytes, compared with each other and with the expected message; an
unknown method must be UNIMPLEMENTED; and every h2load run must have all its
calls 2xx and exactly the expected DATA bytes (h2load reads no grpc-status).
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from harness import SCENARIOS, free_port, median, spread, wait_port  # noqa: E402

UNARY = SCENARIOS["unary"]
PATH = "/ConnectService/UnaryRPC"
WARM_UP = 2_000


def cpu_seconds(pid):
    """User and system CPU time of a process and all its threads, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


class Server:
    def __init__(self, name, argv, workdir):
        self.name, self.argv, self.workdir = name, argv, workdir
        self.proc = self.port = None

    def start(self, prefix):
        self.port = free_port()
        argv = prefix + [a.replace("{port}", str(self.port)) for a in self.argv]
        log = open(self.workdir / f"{self.name}.log", "ab")
        # stdout to /dev/null: connect-server may write an access line per call.
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log, cwd=self.workdir)
        wait_port(self.port, self.proc, timeout=120)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def h2load(port, body, calls, connections=4, streams=32, cpus="1"):
    """Calls per second of `calls` unary calls; raises unless every one got its exact payload."""
    argv = ["taskset", "-c", cpus, "h2load", "-n", str(calls), "-c", str(connections), "-m", str(streams),
            "-t", "1", "-d", str(body), "-H", "content-type: application/grpc", "-H", "te: trailers",
            f"http://127.0.0.1:{port}{PATH}"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    text = out.stdout + out.stderr
    requests = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                         r"(\d+) errored, (\d+) timeout", text)
    codes = re.search(r"status codes: (\d+) 2xx", text)
    finished = re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", text)
    traffic = re.search(r"traffic: .*?, [\d.]+\w* \((\d+)\) data", text)
    if out.returncode != 0 or not (requests and codes and finished and traffic):
        raise SystemExit(f"h2load failed ({out.returncode}):\n{text[-2000:]}")
    done, succeeded, twoxx, data = (int(requests.group(1)), int(requests.group(2)), int(codes.group(1)),
                                    int(traffic.group(1)))
    if not (done == succeeded == twoxx == calls and data == calls * UNARY.response_bytes()):
        raise SystemExit(f"h2load: {done} done, {succeeded} succeeded, {twoxx} 2xx, {data} data bytes; "
                         f"expected {calls} calls of {UNARY.response_bytes()} bytes:\n{text[-1500:]}")
    return float(finished.group(1))


def grpc_check(servers):
    """One raw-bytes grpcio call to each server: the same answer from all, the expected one."""
    import grpc

    message = UNARY.request()[5:]
    expected = b"\x0a" + bytes([len("Hello, " + "x" * 16)]) + ("Hello, " + "x" * 16).encode()
    answers = {}
    for server in servers:
        options = [("grpc.enable_http_proxy", 0)]
        with grpc.insecure_channel(f"127.0.0.1:{server.port}", options=options) as channel:
            call = channel.unary_unary(PATH, request_serializer=None, response_deserializer=None)
            answers[server.name] = call(message, timeout=10)
            try:
                channel.unary_unary("/ConnectService/NoSuchMethod")(message, timeout=10)
                raise SystemExit(f"{server.name}: an unknown method answered")
            except grpc.RpcError as error:
                if error.code() != grpc.StatusCode.UNIMPLEMENTED:
                    raise SystemExit(f"{server.name}: an unknown method gave {error.code()}")
    for name, answer in answers.items():
        if answer != expected:
            raise SystemExit(f"{name} answered {answer!r}, expected {expected!r}")
    print(f"grpcio: both servers answered the same {len(expected)} bytes {expected!r}; "
          "an unknown method is UNIMPLEMENTED on both")


def measure(args, servers, body):
    results = {s.name: {"rate": [], "cpu_us": [], "user_us": [], "sys_us": []} for s in servers}
    for round_ in range(args.rounds):
        for server in servers if round_ % 2 == 0 else servers[::-1]:
            h2load(server.port, body, WARM_UP)
            user, system = cpu_seconds(server.proc.pid)
            rate = h2load(server.port, body, args.calls)
            user_after, system_after = cpu_seconds(server.proc.pid)
            r = results[server.name]
            r["rate"].append(rate)
            r["user_us"].append(1e6 * (user_after - user) / args.calls)
            r["sys_us"].append(1e6 * (system_after - system) / args.calls)
            r["cpu_us"].append(r["user_us"][-1] + r["sys_us"][-1])
            print(f"round {round_ + 1}: {server.name:15} {rate:>9,.0f} calls/s  {r['cpu_us'][-1]:6.2f} µs CPU/call "
                  f"({r['user_us'][-1]:.2f} user, {r['sys_us'][-1]:.2f} system)", flush=True)
    return results


def instructions(args, workdir, body):
    """User-space instructions per call of each server under callgrind (as bench/instructions.py)."""
    from instructions import control, dumped, total_ir

    counts = {}
    servers = [Server("connect-server", [str(args.instructions), "--addr", "127.0.0.1:{port}", "--metrics-addr",
                                         "off", "--stats-interval", "0", "--workers", "1"], workdir),
               Server("h2-prototype", [str(workdir / "h2-prototype"), "--port", "{port}"], workdir)]
    for server in servers:
        server.start(["valgrind", "--tool=callgrind", f"--callgrind-out-file={workdir}/out.%p"])
        try:
            h2load(server.port, body, WARM_UP, connections=8, streams=8)
            control("-z", server.proc.pid)
            h2load(server.port, body, args.callgrind_calls, connections=8, streams=8)
            before = set(workdir.glob(f"out.{server.proc.pid}.*"))
            control("-d", server.proc.pid)
            counts[server.name] = total_ir(dumped(workdir, server.proc.pid, before)) / args.callgrind_calls
        finally:
            server.stop()
    return counts


def percent(value):
    return "-" if value is None else f"{value:.0f}%"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin-dir", type=Path, required=True, help="where connect-server and h2-prototype are")
    parser.add_argument("--rounds", type=int, default=7)
    # 500,000: at the prototype's ~1.5 µs a call that is 75 ticks of the 10 ms CPU clock.
    parser.add_argument("--calls", type=int, default=500_000, help="measured calls per server per round")
    parser.add_argument("--instructions", type=Path, metavar="CONNECT_SERVER",
                        help="also count instructions per call, with this connect-server build "
                             "(built with RUSTFLAGS='--cfg rustix_use_libc')")
    parser.add_argument("--callgrind-calls", type=int, default=20_000)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="h2-prototype-"))
    servers = []
    try:
        # Private copies: a shared target directory may be rebuilt while we measure.
        for name in ("connect-server", "h2-prototype"):
            shutil.copy2(args.bin_dir / name, workdir / name)
        body = workdir / "unary.bin"
        body.write_bytes(UNARY.request())
        servers = [Server("connect-server", [str(workdir / "connect-server"), "--addr", "127.0.0.1:{port}",
                                             "--metrics-addr", "off", "--stats-interval", "0"], workdir),
                   Server("h2-prototype", [str(workdir / "h2-prototype"), "--port", "{port}"], workdir)]
        for server in servers:
            server.start(["taskset", "-c", "0"])
        grpc_check(servers)
        results = measure(args, servers, body)
        for server in servers:
            server.stop()
        counts = instructions(args, workdir, body) if args.instructions else {}

        cs, proto = results["connect-server"], results["h2-prototype"]
        print(f"\nMedians of {args.rounds} rounds of {args.calls:,} calls (h2load -c4 -m32, server on core 0, "
              "h2load on core 1):\n")
        header = "| server | calls/s | spread | server CPU µs per call | spread | of which user / system |"
        rule = "| --- | ---: | ---: | ---: | ---: | ---: |"
        if counts:
            header += " instructions per call |"
            rule += " ---: |"
        print(header)
        print(rule)
        for name, r in results.items():
            line = (f"| {name} | {median(r['rate']):,.0f} | {percent(spread(r['rate']))} "
                    f"| {median(r['cpu_us']):.2f} | {percent(spread(r['cpu_us']))} "
                    f"| {median(r['user_us']):.2f} / {median(r['sys_us']):.2f} |")
            if counts:
                line += f" {counts[name]:,.0f} |"
            print(line)
        line = (f"| prototype / connect-server | {median(proto['rate']) / median(cs['rate']):.2f}x | "
                f"| {median(proto['cpu_us']) / median(cs['cpu_us']):.2f}x | "
                f"| {median(proto['user_us']) / median(cs['user_us']):.2f}x / "
                f"{median(proto['sys_us']) / median(cs['sys_us']):.2f}x |")
        if counts:
            line += f" {counts['h2-prototype'] / counts['connect-server']:.2f}x |"
        print(line)
        # The ratio of each round's pair, whose two runs were seconds apart.
        pairs = [p / c for p, c in zip(proto["cpu_us"], cs["cpu_us"])]
        print(f"\nCPU per call, prototype / connect-server, round by round: "
              f"{', '.join(f'{p:.2f}' for p in pairs)} (median {median(pairs):.2f})")
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
