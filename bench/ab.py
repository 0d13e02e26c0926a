#!/usr/bin/env python3
"""Two builds of connect-server side by side: did a change make gRPC slower?

    python3 bench/ab.py OLD_BINARY NEW_BINARY [--runs 5] [--duration 4]

Both servers run at once, each pinned to core 0 (h2load on core 1); the
scenarios of bench/run (unary, server stream of 10, unloaded latency) run
against one then the other, alternating, so a noisy machine blurs both alike.
Prints the medians and the new/old ratio of each. Build the old binary from a
worktree of the old commit (`git worktree add /tmp/old COMMIT`, then
`cargo build --release -p connect-server` there).
"""

import argparse
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
    args = parser.parse_args()
    args.warmup = 0.0
    workdir = Path(tempfile.mkdtemp(prefix="bench-ab-"))
    servers = {name: Server(name, [str(path.resolve()), "--addr", "127.0.0.1:{port}", "--metrics-addr", "off",
                                   "--stats-interval", "0", "--workers", "1"], workdir)
               for name, path in (("old", args.old), ("new", args.new))}
    scenarios = [SCENARIOS[key] for key in ("unary", "ss10", "latency")]
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
                    result = h2load(args, server, scenario, "1", bodies[scenario.key], 1)
                    if result["errors"]:
                        raise RuntimeError(f"{name} {scenario.key}: {result['note']}")
                    results[(scenario.key, name)].append(result)
                    print(f"  run {round_ + 1} {scenario.key:8} {name}: {result['calls_per_sec']:>9,.0f} calls/s",
                          file=sys.stderr)
    finally:
        for server in servers.values():
            server.stop()
    print(f"h2load, server pinned to core 0 (one worker), h2load to core 1, median of {args.runs} runs of "
          f"{args.duration:g} s, alternating.\n")
    print("| scenario | old calls/s | new calls/s | new/old | old mean ms | new mean ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for scenario in scenarios:
        old, new = (results[(scenario.key, name)] for name in ("old", "new"))
        rate = [statistics.median(r["calls_per_sec"] for r in rs) for rs in (old, new)]
        mean = [statistics.median(r["mean_ms"] for r in rs) for rs in (old, new)]
        print(f"| {scenario.title} | {rate[0]:,.0f} | {rate[1]:,.0f} | {rate[1] / rate[0]:.3f}x "
              f"| {mean[0]:.3f} | {mean[1]:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
