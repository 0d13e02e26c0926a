#!/usr/bin/env python3
"""Two builds of connect-server side by side: did a change make gRPC slower?

    python3 bench/ab.py OLD_BINARY NEW_BINARY [--runs 5] [--duration 4]
        [--scenarios unary,ss10,latency] [--old-args "..."] [--new-args "..."] [--new-env KEY=VALUE ...]

Both servers run at once, each pinned to core 0 (h2load on core 1); the
scenarios of bench/run (unary, server stream of 10, unloaded latency) run
against one then the other, alternating, so a noisy machine blurs both alike.
Prints the medians and the new/old ratio of each, calls/s and the server's
CPU per call (user + system time from /proc, over the h2load run). The same
binary twice with `--new-args`/`--new-env` measures a setting (e.g. tracing). Build the old binary from a
worktree of the old commit (`git worktree add /tmp/old COMMIT`, then
`cargo build --release -p connect-server` there).
"""

import argparse
import os
import shlex
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import SCENARIOS, Server, h2load  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--scenarios", default="unary,ss10,latency",
                        help=f"comma-separated, of {','.join(SCENARIOS)}")
    parser.add_argument("--old-args", default="", help="more flags for the old server")
    parser.add_argument("--new-args", default="", help="more flags for the new server")
    parser.add_argument("--old-env", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--new-env", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    args.warmup = 0.0
    workdir = Path(tempfile.mkdtemp(prefix="bench-ab-"))

    def argv(path, extra, env):
        prefix = ["env", *env] if env else []
        return [*prefix, str(path.resolve()), "--addr", "127.0.0.1:{port}", "--metrics-addr", "off",
                "--stats-interval", "0", "--workers", "1", *shlex.split(extra)]

    servers = {"old": Server("old", argv(args.old, args.old_args, args.old_env), workdir),
               "new": Server("new", argv(args.new, args.new_args, args.new_env), workdir)}
    scenarios = [SCENARIOS[key] for key in args.scenarios.split(",")]
    bodies = {}
    for scenario in scenarios:
        bodies[scenario.key] = workdir / f"{scenario.key}.bin"
        bodies[scenario.key].write_bytes(scenario.request())
    results = {(s.key, name): [] for s in scenarios for name in servers}
    for server in servers.values():
        server.start("0")
    try:
        for round_ in range(args.runs):
            for scenario in scenarios:
                for name, server in servers.items():
                    before = cpu_seconds(server)
                    result = h2load(args, server, scenario, "1", bodies[scenario.key], 1)
                    result["cpu_us_per_call"] = (cpu_seconds(server) - before) * 1e6 / max(result["calls"], 1)
                    if result["errors"]:
                        raise RuntimeError(f"{name} {scenario.key}: {result['note']}")
                    results[(scenario.key, name)].append(result)
                    print(f"  run {round_ + 1} {scenario.key:8} {name}: {result['calls_per_sec']:>9,.0f} calls/s",
                          file=sys.stderr)
    finally:
        for server in servers.values():
            server.stop()
        # The servers' logs (an access-log line per call) reach gigabytes on a shared disk.
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"h2load, server pinned to core 0 (one worker), h2load to core 1, median of {args.runs} runs of "
          f"{args.duration:g} s, alternating.\n")
    print("| scenario | old calls/s | new calls/s | new/old | old CPU µs/call | new CPU µs/call | new/old "
          "| old mean ms | new mean ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for scenario in scenarios:
        old, new = (results[(scenario.key, name)] for name in ("old", "new"))
        rate = [statistics.median(r["calls_per_sec"] for r in rs) for rs in (old, new)]
        cpu = [statistics.median(r["cpu_us_per_call"] for r in rs) for rs in (old, new)]
        mean = [statistics.median(r["mean_ms"] for r in rs) for rs in (old, new)]
        print(f"| {scenario.title} | {rate[0]:,.0f} | {rate[1]:,.0f} | {rate[1] / rate[0]:.3f}x "
              f"| {cpu[0]:.2f} | {cpu[1]:.2f} | {cpu[1] / cpu[0]:.3f}x | {mean[0]:.3f} | {mean[1]:.3f} |")
    return 0


def cpu_seconds(server):
    """User + system CPU time of the server process so far (the `env` prefix execs it, same pid)."""
    fields = Path(f"/proc/{server.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After the name: state is field 3, utime 14 and stime 15 (1-based, man 5 proc).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    sys.exit(main())
