#!/usr/bin/env python3
"""Ramp: one `connect-client bench --rate-ramp` per server, from 0.25x to 2x
of its own peak, connect-server beside the default tonic server, through the
any-method path (`bench --call ConnectService/UnaryRPC -d JSON --proto
proto/connect.proto`: the baseline server has no reflection).

For each server: a fresh start pinned to core 0 (under the same CPU quota as
bench/overload, so that 2x of its peak is within one generator core's
reach), its closed-loop peak (8 connections, 256 calls in flight), then ONE
open-loop run of `--rate-ramp` cut into `--steps` equal steps (latency
counted from each call's due time), the generator pinned to core 1, its
report read from `--output json`: per step the offered rate, the goodput
(OK calls/s), p50/p99 of the OK calls and the failed calls by status.

Checks, with or without `--quick`: both servers give the same answer, the
ramp reports every step, every step has OK calls and a p99, no server exits,
and each still answers a unary call after its ramp. It asserts no
performance. Run it through bench/ramp, which builds the binaries.
"""

import argparse
import atexit
import datetime
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import charts  # noqa: E402
from harness import DATA, ROOT, cpu_seconds, private_workdir, run, verify_responses  # noqa: E402
from overload import PEAK_CONCURRENCY, PEAK_CONNECTIONS, CpuQuota, servers_for  # noqa: E402

METHOD = "ConnectService/UnaryRPC"
PROTO = ROOT / "proto" / "connect.proto"
REQUEST = json.dumps({"request_data": DATA})
LOW, HIGH = 0.25, 2.0  # the ramp's ends, as multiples of each server's own peak
# What bench waits for a call still in flight at the end of a step (its END_GRACE), for the timeouts.
END_GRACE_S = 5


def call_argv(args, server):
    """`connect-client bench --call` against `server`, pinned to core 1; the load flags follow."""
    return ["taskset", "-c", "1", str(args.bin_dir / "connect-client"), "--addr", server.url(),
            "--proto", str(PROTO), "bench", "--call", METHOD, "-d", REQUEST, "--output", "json"]


def bench_json(argv, timeout):
    """Runs bench and returns its JSON report (printed even when calls failed, exit code 1)."""
    out = run(argv, timeout=timeout)
    try:
        return json.loads(out.stdout)
    except json.JSONDecodeError:
        raise RuntimeError(f"connect-client bench failed ({out.returncode}):\n{out.stderr[-2000:]}")


def step_figures(row):
    ok = row["ok"]
    latency = row["latency_us"]
    return {
        "offered": row["offered_rate"],
        "goodput": row["calls_per_sec"],
        "ok": ok,
        "failed": row["failed"],
        "errors": row["errors"],
        "loops_stopped": row.get("loops_stopped", 0),
        "elapsed_s": row["elapsed_s"],
        "p50_ms": latency["p50"] / 1000 if ok else None,
        "p99_ms": latency["p99"] / 1000 if ok else None,
    }


def one_server(args, server, problems):
    """Peak, then the ramp, on one fresh server: {"peak": calls/s, "loops": n, "steps": [...], "cpu_pct": ...}."""
    server.start(None)
    try:
        peak = bench_json(call_argv(args, server) + [
            "--connections", str(PEAK_CONNECTIONS), "--concurrency", str(PEAK_CONCURRENCY),
            "--duration", f"{args.peak_duration}s", "--warmup", f"{args.warmup}s"],
            timeout=args.peak_duration + args.warmup + 60)
        if peak["ok"] == 0 or peak["failed"]:
            problems.append(f"{server.name}: peak run: {peak['ok']} OK, errors {peak['errors']}")
            return None
        rate = peak["calls_per_sec"]
        progress(server.name, "peak", f"{rate:>9,.0f} calls/s closed loop")
        low, high = rate * LOW, rate * HIGH
        # Enough call loops for the top step that each waits `loop_budget` on its call before it lags.
        loops = int(min(args.max_loops, max(64, high * args.loop_budget)))
        ramp = f"{low:.0f}:{high:.0f}/{args.step_duration * args.steps:g}s"
        argv = call_argv(args, server) + ["--connections", str(args.connections), "--concurrency", str(loops),
                                          "--rate-ramp", ramp, "--ramp-steps", str(args.steps)]
        cpu_before = cpu_seconds(server.proc.pid)
        report = bench_json(argv, timeout=args.steps * (args.step_duration + END_GRACE_S) + 60)
        cpu_after = cpu_seconds(server.proc.pid)
        steps = [step_figures(row) for row in report.get("steps", [])]
        elapsed = sum(s["elapsed_s"] for s in steps)
        cpu_pct = (100 * (cpu_after - cpu_before) / elapsed
                   if cpu_before is not None and cpu_after is not None and elapsed else None)
        for i, step in enumerate(steps):
            progress(server.name, f"{LOW + (HIGH - LOW) * i / max(1, args.steps - 1):g}x", describe(step))
        if len(steps) != args.steps:
            problems.append(f"{server.name}: the ramp reported {len(steps)} steps, not {args.steps}")
        for i, step in enumerate(steps):
            if step["ok"] == 0 or step["p99_ms"] is None:
                problems.append(f"{server.name}: no OK call in step {i + 1} ({step['offered']:,.0f} calls/s offered)")
        if server.proc.poll() is not None:
            problems.append(f"{server.name} exited ({server.proc.returncode}) during the ramp")
            return None
        try:
            verify_responses(args, server, stream=False)
        except RuntimeError as error:
            problems.append(f"{server.name} does not answer after the ramp: {error}")
        return {"peak": rate, "loops": loops, "ramp": ramp, "steps": steps, "cpu_pct": cpu_pct}
    finally:
        server.stop()
        if server.proc and server.proc.returncode not in (0, -15, 143):
            problems.append(f"{server.name} ended with {server.proc.returncode} when stopped")


def describe(step):
    errors = ", ".join(f"{n} {k}" for k, n in sorted(step["errors"].items())) or "none"
    p99 = "-" if step["p99_ms"] is None else f"{step['p99_ms']:.1f}"
    return (f"offered {step['offered']:>8,.0f}/s goodput {step['goodput']:>8,.0f}/s p99 {p99} ms "
            f"errors {errors}")


def progress(name, what, text):
    print(f"  {name:16} {what:5} {text}", file=sys.stderr, flush=True)


def fmt(value, digits=0):
    return "-" if value is None else f"{value:,.{digits}f}"


def table(args, results, names):
    head, rule = "| step (x own peak) |", "|---|"
    for n in names:
        head += f" {n}: offered calls/s | calls/s (of peak) | p50 / p99 ms | errors |"
        rule += "---:|---:|---:|---|"
    lines = [head, rule, "| peak (closed loop) |" + "".join(
        f" - | {fmt(results[n]['peak']) if results.get(n) else '-'} (100%) | - | - |" for n in names)]
    for i in range(args.steps):
        row = f"| {i + 1} ({LOW + (HIGH - LOW) * i / max(1, args.steps - 1):g}x) |"
        for n in names:
            r = results.get(n)
            s = r["steps"][i] if r and i < len(r["steps"]) else None
            if s is None:
                row += " - | - | - | - |"
                continue
            errors = ", ".join(f"{v:,} {k}" for k, v in sorted(s["errors"].items())) or "0"
            row += (f" {fmt(s['offered'])} | {fmt(s['goodput'])} ({100 * s['goodput'] / r['peak']:.0f}%) | "
                    f"{fmt(s['p50_ms'], 2)} / {fmt(s['p99_ms'], 2)} | {errors} |")
        lines.append(row)
    return "\n".join(lines)


def chart(results, servers, note):
    def series(key):
        return [(s.name, s.colour, [(step["offered"], step[key]) for step in results[s.name]["steps"]])
                for s in servers if results.get(s.name)]

    panels = [charts.xy_lines("goodput (OK calls/s) against offered calls/s", series("goodput"),
                              diagonal="goodput = offered"),
              charts.xy_lines("p99 ms of OK calls (log) against offered calls/s", series("p99_ms"), log_y=True)]
    return charts.figure("One bench --call --rate-ramp per server, 0.25x to 2x of its own peak",
                         [(s.name, s.colour) for s in servers], panels, note)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin-dir", type=Path, required=True,
                        help="where connect-server, connect-client and examples/baseline_server are")
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny steps, no chart")
    parser.add_argument("--steps", type=int, default=8, help="steps of the ramp (--ramp-steps)")
    parser.add_argument("--step-duration", type=float, default=4.0, help="seconds per step")
    parser.add_argument("--peak-duration", type=float, default=5.0, help="seconds of the closed-loop peak run")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of warm-up of the peak run")
    parser.add_argument("--connections", type=int, default=8, help="client connections of the ramp")
    parser.add_argument("--loop-budget", type=float, default=0.25,
                        help="seconds of latency the call loops absorb at the top step (loops = top rate x this)")
    parser.add_argument("--max-loops", type=int, default=16384, help="most call loops")
    parser.add_argument("--quota", type=float, default=15.0,
                        help="percent of one core each server may use (0: no quota)")
    parser.add_argument("--quota-period-us", type=int, default=10000, help="the quota's period")
    parser.add_argument("--ours-args", default="", help="more flags for connect-server")
    parser.add_argument("--chart", type=Path, help="SVG chart (default: bench/ramp.svg, none with --quick)")
    args = parser.parse_args()
    args.ours_args = args.ours_args.split()
    if args.quick:
        args.steps, args.step_duration, args.peak_duration, args.warmup = 3, 0.5, 1.0, 0.2
    if args.chart is None and not args.quick:
        args.chart = ROOT / "bench" / "ramp.svg"
    if len(os.sched_getaffinity(0)) < 2:
        print("bench/ramp: needs 2 cores (server on core 0, load on core 1)", file=sys.stderr)
        return 2

    workdir, args.bin_dir = private_workdir("connect-ramp-", args.bin_dir)
    quotas = [CpuQuota(f"connect-ramp-{i}", args.quota, args.quota_period_us) for i in range(2)]
    quota_note = f"{args.quota:g}% of a core ({args.quota_period_us} us periods)"
    if any(q.procs is None for q in quotas):
        # Both servers alike: a quota for one only would not compare.
        print(f"note: no CPU quota ({quotas[0].why or quotas[1].why}): the servers have all of core 0",
              file=sys.stderr)
        for q in quotas:
            q.close()
        quotas = [CpuQuota("unused", 0, args.quota_period_us) for _ in range(2)]
        quota_note = "none"
    for q in quotas:
        atexit.register(q.close)

    servers = servers_for(args, workdir, quotas)
    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = os.getloadavg()[0]
    problems, answers = [], []
    for server in servers:
        try:
            server.start(None)
            answers.append(verify_responses(args, server, stream=False))
        except RuntimeError as error:
            problems.append(f"{server.name}: {error}")
        finally:
            server.stop()
    if len(answers) == 2 and (not answers[0] or answers[0] != answers[1]):
        problems.append(f"the servers answer differently: {answers!r}")
    results = {}
    if len(answers) == 2:
        for server in servers:
            try:
                results[server.name] = one_server(args, server, problems)
            except (RuntimeError, OSError) as error:
                problems.append(f"{server.name}: {error}")
    load_after = os.getloadavg()[0]

    names = [s.name for s in servers]
    first = next((r for r in results.values() if r), None)
    header = (f"Measured by `bench/ramp{' --quick' if args.quick else ''}` on {started:%Y-%m-%d %H:%M} UTC: per server "
              f"a closed-loop peak ({args.peak_duration:g} s after {args.warmup:g} s of warm-up, "
              f"{PEAK_CONNECTIONS} connections, {PEAK_CONCURRENCY} in flight), then one `connect-client bench "
              f"--call {METHOD} --rate-ramp {LOW:g}x:{HIGH:g}x-of-peak/{args.step_duration * args.steps:g}s "
              f"--ramp-steps {args.steps}` ({args.step_duration:g} s a step, {args.connections} connections, "
              f"call loops = top rate x {args.loop_budget:g} s, at most {args.max_loops:,}); server pinned to core 0 "
              f"with a CPU quota of {quota_note}, the generator pinned to core 1; load average "
              f"{load_before:.1f} at the start, {load_after:.1f} at the end.")
    print(header + "\n")
    for n in names:
        r = results.get(n)
        if r:
            print(f"{n}: --rate-ramp {r['ramp']} --concurrency {r['loops']}, server CPU over the ramp "
                  f"{fmt(r['cpu_pct'])}% of a core")
    print()
    print(table(args, results, names) + "\n")
    if args.chart and first:
        args.chart.write_text(chart(results, servers, f"bench/ramp, {started:%Y-%m-%d %H:%M} UTC: server on core 0 "
                                                      f"with a quota of {quota_note}, load on core 1"))
        print(f"wrote {args.chart}")
    for problem in problems:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
