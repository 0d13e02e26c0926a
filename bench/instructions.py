#!/usr/bin/env python3
"""Instructions per call of one or more connect-server builds, counted by
valgrind's callgrind: a figure this shared, noisy machine cannot blur.

    python3 bench/instructions.py BINARY [BINARY ...] [--calls 20000]
        [--scenarios unary,ss10] [--by-crate] [--keep DIR]

Each binary serves one worker under callgrind; h2load (8 connections x 8
streams) warms it up with 2,000 calls, the counters are zeroed
(`callgrind_control -z`), N calls run, and the counts are dumped
(`callgrind_control -d`): instructions in user space per call (per message
for a stream), startup and warm-up excluded. System calls are not counted
(the kernel's share is in `bench/profile`). `--by-crate` splits each figure
by crate as `bench/profile` groups them (the innermost function of a named
crate pays), from `callgrind_annotate --inclusive=no`; `--keep DIR` keeps
each dump there (`SCENARIO.N.callgrind`, N the binary's place on the command
line) for `callgrind_annotate` to read function by function.

Build the binaries with `RUSTFLAGS="--cfg rustix_use_libc"` (in a target
directory of their own): rustix's raw Linux backend reads the vDSO from the
auxiliary vector, which valgrind does not provide, and the server then
crashes at its first connection. bench/instructions does that.
"""

import argparse
import collections
import re
import subprocess
import sys
import tempfile
import time
import shutil
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import SCENARIOS, free_port, wait_port  # noqa: E402
from profile import GROUPS, SKIP, crate_of  # noqa: E402

WARM_UP_CALLS = 2_000


def h2load(port, scenario, body, calls):
    argv = ["h2load", "-n", str(calls), "-c", "8", "-m", "8", "-t", "1", "-d", str(body),
            "-H", "content-type: application/grpc", "-H", "te: trailers",
            f"http://127.0.0.1:{port}/ConnectService/{scenario.method}"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", out.stdout)
    if out.returncode != 0 or not done or int(done.group(2)) != calls:
        raise SystemExit(f"h2load: not {calls} calls succeeded:\n{out.stdout[-1500:]}{out.stderr[-500:]}")


def control(flag, pid):
    out = subprocess.run(["callgrind_control", flag, str(pid)], capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise SystemExit(f"callgrind_control {flag}: {out.stdout}{out.stderr}")


def dumped(workdir, pid, before):
    """The dump file callgrind wrote after `before` (it names dumps out.PID.N)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        new = sorted(set(workdir.glob(f"out.{pid}.*")) - before)
        if new:
            time.sleep(0.5)  # written in one go by the server's next callgrind timeslice
            return new[0]
        time.sleep(0.1)
    raise SystemExit("callgrind wrote no dump")


def total_ir(dump):
    for line in dump.read_text(errors="replace").splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise SystemExit(f"{dump}: no summary line")


def by_crate(dump):
    """Instructions per group, from the self cost of each function."""
    total = total_ir(dump)
    out = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=100", str(dump)],
                         capture_output=True, text=True, check=True).stdout
    counts = collections.Counter()
    for line in out.splitlines():
        # `  19,468,120 ( 3.92%)  FILE:FUNCTION [OBJECT]`, FILE `???` without debug info.
        match = re.match(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+([^:\s]*):(.*?)(?: \[[^\]]*\])?$", line)
        if not match:
            continue
        ir = int(match.group(1).replace(",", ""))
        # The thread entry points carry the whole program's cost here (callgrind's cycles).
        if ir >= 0.99 * total:
            continue
        symbol = match.group(3).strip()
        crate = crate_of(symbol)
        group = GROUPS.get(crate)
        if group is None and crate not in SKIP and crate and not symbol.startswith("__"):
            group = crate
        counts[group or "libc and std (memcpy: moves of futures and requests, formatting)"] += ir
    # Crates under 1% each in one row, so the table reads at a glance.
    small = [group for group, n in counts.items() if n < total / 100 and group not in GROUPS.values()]
    for group in small:
        counts["other crates, libc calls (each under 1%)"] += counts.pop(group)
    return counts


def measure(binary, scenario, calls, workdir, split, keep=None):
    port = free_port()
    body = workdir / f"{scenario.key}.bin"
    body.write_bytes(scenario.request())
    log = open(workdir / "server.log", "ab")
    argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={workdir}/out.%p",
            str(binary), "--addr", f"127.0.0.1:{port}", "--metrics-addr", "off",
            "--stats-interval", "0", "--workers", "1"]
    proc = subprocess.Popen(argv, stdout=log, stderr=log)
    try:
        wait_port(port, proc, timeout=120)
        h2load(port, scenario, body, WARM_UP_CALLS)
        control("-z", proc.pid)
        h2load(port, scenario, body, calls)
        before = set(workdir.glob(f"out.{proc.pid}.*"))
        control("-d", proc.pid)
        dump = dumped(workdir, proc.pid, before)
        per = calls * scenario.count
        ir = total_ir(dump)
        if keep is not None:
            shutil.copy(dump, keep)
        return ir / per, ({group: n / per for group, n in by_crate(dump).items()} if split else None)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binaries", type=Path, nargs="+")
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--scenarios", default="unary,ss10")
    parser.add_argument("--by-crate", action="store_true")
    parser.add_argument("--keep", type=Path, help="a directory to keep the callgrind dumps in")
    args = parser.parse_intermixed_args()
    for tool in ("valgrind", "callgrind_control", "h2load"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is missing (bench/instructions installs it)")
    workdir = Path(tempfile.mkdtemp(prefix="bench-instructions-"))
    try:
        scenarios = [SCENARIOS[key] for key in args.scenarios.split(",")]
        results = {}
        for scenario in scenarios:
            for index, binary in enumerate(args.binaries, 1):
                keep = None
                if args.keep:
                    args.keep.mkdir(parents=True, exist_ok=True)
                    keep = args.keep / f"{scenario.key}.{index}.callgrind"
                results[(scenario.key, binary)] = measure(binary, scenario, args.calls, workdir, args.by_crate, keep)
        first = args.binaries[0]
        print(f"user-space instructions per call (per message for streams), callgrind, {args.calls:,} calls "
              f"after {WARM_UP_CALLS:,} of warm-up, one worker\n")
        print("| scenario | " + " | ".join(str(b) for b in args.binaries) + " |")
        print("|---|" + "---:|" * len(args.binaries))
        for scenario in scenarios:
            base = results[(scenario.key, first)][0]
            cells = []
            for binary in args.binaries:
                ir = results[(scenario.key, binary)][0]
                cells.append(f"{ir:,.0f}" + ("" if binary == first else f" ({ir / base:.3f}x)"))
            print(f"| {scenario.key} | " + " | ".join(cells) + " |")
        if args.by_crate:
            for scenario in scenarios:
                print(f"\n{scenario.key}: instructions per call by crate\n")
                groups = sorted({g for b in args.binaries for g in results[(scenario.key, b)][1]},
                                key=lambda g: -results[(scenario.key, first)][1].get(g, 0))
                print("| where | " + " | ".join(str(b) for b in args.binaries) + " |")
                print("|---|" + "---:|" * len(args.binaries))
                for group in groups:
                    print(f"| {group} | " + " | ".join(
                        f"{results[(scenario.key, b)][1].get(group, 0):,.0f}" for b in args.binaries) + " |")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
