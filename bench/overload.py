#!/usr/bin/env python3
"""Overload: unary calls offered open loop at 0.5x to 3x of each server's own
peak, connect-server beside the default tonic server.

For each server, in each round: its peak (closed loop, `connect-client bench`,
8 connections, 256 calls in flight), then one step per multiple of that peak
at a fixed offered rate (`connect-client bench --rate`, latency counted from
each call's due time), each step with enough call loops that the generator
keeps offering the rate while the server is slow. Each step records the
offered rate, what the generator managed to send, the goodput (OK calls/s),
the refusals (RESOURCE_EXHAUSTED), every other error by status, p50/p99 of
the OK calls and the server's CPU. Servers take turns within each round;
figures are medians of the rounds.

The server is pinned to core 0 and the generator to core 1. One generator
core offers about 60,000 unary calls/s here, less than 3x of a server with a
whole core, so by default each server also runs under a CPU quota (a cgroup
with `cpu.cfs_quota_us`, 15% of a core over 10 ms periods; the kernel takes no quota under 1 ms): both servers get
the same quota, and the peak each step is a multiple of is the peak under it.
`--quota 0` drops it. Servers run with their defaults; connect-server's access
log goes to /dev/null (its cost is kept, not its gigabytes).

Checks, with or without `--quick`: both servers give the same answer, every
step has figures (OK calls and their latencies), no server exits, and each
still answers a unary call after its 3x step. It asserts no performance.
Run it through bench/overload, which builds the binaries.
"""

import argparse
import atexit
import datetime
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import charts  # noqa: E402
from harness import (  # noqa: E402
    BASELINE, OURS, ROOT, SCENARIOS, Server, bench, measured, private_workdir, verify_responses,
)

MULTIPLES = (0.5, 1.0, 1.5, 2.0, 3.0)
PEAK_CONNECTIONS, PEAK_CONCURRENCY = 8, 256
# The target of issue 22: at 3x, goodput at least 90% of peak and p99 of OK calls under 50 ms.
TARGET_GOODPUT, TARGET_P99_MS = 0.9, 50.0
CGROUP_V1 = Path("/sys/fs/cgroup/cpu")
CGROUP_V2 = Path("/sys/fs/cgroup")


class CpuQuota:
    """A cgroup that holds a server to `percent` of one core, over periods of `period_us`;
    `prefix()` is the argv that starts a command inside it. None of it when cgroups cannot be written."""

    def __init__(self, name, percent, period_us):
        self.path, self.procs, self.why = None, None, "--quota 0"
        quota_us = int(period_us * percent / 100)
        if not percent:
            return
        try:
            if (CGROUP_V1 / "cpu.cfs_quota_us").exists():
                path = CGROUP_V1 / f"{name}-{os.getpid()}"
                path.mkdir()
                self.path = path
                (path / "cpu.cfs_period_us").write_text(str(period_us))
                (path / "cpu.cfs_quota_us").write_text(str(quota_us))
            elif "cpu" in (CGROUP_V2 / "cgroup.subtree_control").read_text().split():
                path = CGROUP_V2 / f"{name}-{os.getpid()}"
                path.mkdir()
                self.path = path
                (path / "cpu.max").write_text(f"{quota_us} {period_us}")
            else:
                raise OSError("no cpu controller (cgroup v1 cpu, or cpu in the v2 root's subtree_control)")
            self.procs = self.path / "cgroup.procs"
        except OSError as error:
            self.why = str(error)
            self.close()

    def prefix(self):
        if self.procs is None:
            return []
        return ["sh", "-c", 'echo $$ > "$0" && exec "$@"', str(self.procs)]

    def close(self):
        """Removes the cgroup; its processes must have ended (a few tries while the kernel lets go)."""
        if self.path is None:
            return
        for _ in range(50):
            try:
                self.path.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.1)
        self.path = self.procs = None


def servers_for(args, workdir, quotas):
    bins = args.bin_dir
    ours = [str(bins / "connect-server"), "--addr", "127.0.0.1:{port}", "--metrics-addr", "off",
            "--stats-interval", "0", *args.ours_args]
    tonic = [str(bins / "baseline_server"), "127.0.0.1:{port}"]
    pinned = ["taskset", "-c", "0"]
    return [Server(OURS, quotas[0].prefix() + pinned + ours, workdir, colour="#d9480f", quiet=True),
            Server(BASELINE, quotas[1].prefix() + pinned + tonic, workdir, colour="#1c7ed6", quiet=True)]


def step_figures(result, rate, duration):
    statuses = dict(result.get("statuses") or {})
    refused = statuses.pop("RESOURCE_EXHAUSTED", 0)
    sent = result["calls"] + refused + sum(statuses.values())
    return {
        "offered": rate,
        "sent_per_sec": sent / duration,
        "goodput": result["calls_per_sec"],
        "refused": refused,
        "other": statuses,
        "p50_ms": result["p50_ms"] if result["calls"] else None,
        "p99_ms": result["p99_ms"] if result["calls"] else None,
        "server_cpu_pct": result["server_cpu_pct"],
        "ok": result["calls"],
    }


def one_round(args, server, figures, problems, round_):
    """Peak, then each multiple of it, on one fresh server."""
    scenario = SCENARIOS["unary"]
    server.start(None)
    try:
        peak = measured(server, lambda: bench(args, server, scenario, "1", connections=PEAK_CONNECTIONS,
                                              concurrency=PEAK_CONCURRENCY, duration=args.peak_duration))
        if peak["calls"] == 0 or peak["errors"]:
            problems.append(f"{server.name}, round {round_ + 1}: peak run: {peak['note'] or 'no calls'}")
            return
        figures.setdefault((server.name, "peak"), []).append(peak["calls_per_sec"])
        progress(server.name, "peak", f"{peak['calls_per_sec']:>9,.0f} calls/s closed loop, "
                                      f"server CPU {peak['server_cpu_pct'] or 0:.0f}%")
        # No warm-up in the steps: an overloaded warm-up would leave a backlog that the
        # measured window then serves, and goodput would be counted short.
        stepped = argparse.Namespace(**{**vars(args), "warmup": 0.0})
        for multiple in MULTIPLES:
            rate = peak["calls_per_sec"] * multiple
            # Enough call loops that each waits on its call for `loop_budget` before it lags.
            loops = int(min(args.max_loops, max(64, rate * args.loop_budget)))
            result = measured(server, lambda: bench(stepped, server, scenario, "1", rate=rate,
                                                    connections=args.connections, concurrency=loops,
                                                    duration=args.step_duration, deadline_ms=args.deadline_ms))
            step = step_figures(result, rate, args.step_duration)
            step["loops"] = loops
            figures.setdefault((server.name, multiple), []).append(step)
            progress(server.name, f"{multiple:g}x", describe(step))
            if server.proc.poll() is not None:
                problems.append(f"{server.name} exited ({server.proc.returncode}) during the {multiple:g}x step")
                return
            if step["ok"] == 0 or step["p99_ms"] is None:
                problems.append(f"{server.name}, round {round_ + 1}: no OK call at {multiple:g}x of peak")
        # After the overload: still serving, and no call loop lost its connection for good.
        try:
            verify_responses(args, server, stream=False)
        except RuntimeError as error:
            problems.append(f"{server.name} does not answer after the 3x step: {error}")
    finally:
        server.stop()
        if server.proc and server.proc.returncode not in (0, -15, 143):
            problems.append(f"{server.name} ended with {server.proc.returncode} when stopped")


def describe(step):
    other = ", ".join(f"{n} {k}" for k, n in sorted(step["other"].items())) or "none"
    p99 = "-" if step["p99_ms"] is None else f"{step['p99_ms']:.1f}"
    return (f"offered {step['offered']:>8,.0f}/s sent {step['sent_per_sec']:>8,.0f}/s "
            f"goodput {step['goodput']:>8,.0f}/s refused {step['refused']:>7,} other {other} p99 {p99} ms "
            f"cpu {step['server_cpu_pct'] or 0:.0f}%")


def progress(name, what, text):
    print(f"  {name:16} {what:5} {text}", file=sys.stderr, flush=True)


def med(steps, key):
    values = [s[key] for s in steps if s[key] is not None]
    return statistics.median(values) if values else None


def summary(figures, name, multiple):
    steps = figures.get((name, multiple), [])
    if not steps:
        return None
    kinds = sorted({k for s in steps for k in s["other"]})
    return {
        "offered": med(steps, "offered"), "sent_per_sec": med(steps, "sent_per_sec"), "goodput": med(steps, "goodput"),
        "refused": med(steps, "refused"), "p50_ms": med(steps, "p50_ms"), "p99_ms": med(steps, "p99_ms"),
        "server_cpu_pct": med(steps, "server_cpu_pct"),
        "other": {k: statistics.median(s["other"].get(k, 0) for s in steps) for k in kinds},
    }


def fmt(value, digits=0):
    return "-" if value is None else f"{value:,.{digits}f}"


def table(args, figures, names):
    peaks = {n: statistics.median(figures[(n, "peak")]) if (n, "peak") in figures else None for n in names}
    head = "| offered (x own peak) |"
    rule = "|---|"
    for n in names:
        head += (f" {n}: offered calls/s | sent calls/s | goodput calls/s (of peak) | refused | other errors "
                 f"| p50 / p99 ms (OK calls) | server CPU |")
        rule += "---:|---:|---:|---:|---|---:|---:|"
    lines = [head, rule, "| peak (closed loop) |" + "".join(
        f" - | - | {fmt(peaks[n])} (100%) | - | - | - | - |" for n in names)]
    for multiple in MULTIPLES:
        row = f"| {multiple:g}x |"
        for n in names:
            s = summary(figures, n, multiple)
            if s is None:
                row += " - | - | - | - | - | - | - |"
                continue
            share = f" ({100 * s['goodput'] / peaks[n]:.0f}%)" if peaks[n] and s["goodput"] is not None else ""
            other = ", ".join(f"{v:,.0f} {k}" for k, v in s["other"].items() if v) or "0"
            row += (f" {fmt(s['offered'])} | {fmt(s['sent_per_sec'])} | {fmt(s['goodput'])}{share} | "
                    f"{fmt(s['refused'])} | {other} | {fmt(s['p50_ms'], 2)} / {fmt(s['p99_ms'], 2)} | "
                    f"{fmt(s['server_cpu_pct'])}% |")
        lines.append(row)
    return "\n".join(lines), peaks


def verdict(figures, peaks):
    s = summary(figures, OURS, 3.0)
    if s is None or not peaks.get(OURS) or s["goodput"] is None:
        return "target: no figures for connect-server at 3x"
    share = s["goodput"] / peaks[OURS]
    met = share >= TARGET_GOODPUT and s["p99_ms"] is not None and s["p99_ms"] < TARGET_P99_MS
    return (f"target (connect-server at 3x: goodput >= {TARGET_GOODPUT:.0%} of peak, p99 of OK calls < "
            f"{TARGET_P99_MS:g} ms): goodput {share:.0%} of peak, p99 {fmt(s['p99_ms'], 1)} ms: "
            f"{'met' if met else 'NOT met'}")


def chart(figures, servers, peaks, note):
    xs = [f"{m:g}x" for m in MULTIPLES]

    def series(key, scale=None):
        out = []
        for server in servers:
            values = []
            for m in MULTIPLES:
                s = summary(figures, server.name, m)
                v = s[key] if s else None
                if v is not None and scale == "peak":
                    v = 100 * v / peaks[server.name] if peaks.get(server.name) else None
                values.append(v)
            out.append((server.name, server.colour, values))
        return out

    panels = [charts.lines("goodput (OK calls/s) against offered load", xs, series("goodput")),
              charts.lines("goodput, % of own peak", xs, series("goodput", "peak")),
              charts.lines("p99 ms of OK calls (log scale)", xs, series("p99_ms"), log_y=True)]
    return charts.figure("Unary calls offered open loop at multiples of each server's peak",
                         [(s.name, s.colour) for s in servers], panels, note)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin-dir", type=Path, required=True,
                        help="where connect-server, connect-client and examples/baseline_server are")
    parser.add_argument("--quick", action="store_true", help="smoke run: one round of short steps, no chart")
    parser.add_argument("--runs", type=int, default=3, help="rounds; each figure is the median")
    parser.add_argument("--step-duration", type=float, default=6.0, help="seconds measured per offered rate")
    parser.add_argument("--peak-duration", type=float, default=5.0, help="seconds of the closed-loop peak run")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of warm-up of the peak run")
    parser.add_argument("--connections", type=int, default=8, help="client connections of the open-loop steps")
    parser.add_argument("--loop-budget", type=float, default=0.25,
                        help="seconds of latency the call loops absorb before the generator falls behind "
                             "(loops = rate x this)")
    parser.add_argument("--max-loops", type=int, default=16384, help="most call loops of one step")
    parser.add_argument("--quota", type=float, default=15.0,
                        help="percent of one core each server may use (0: no quota)")
    parser.add_argument("--quota-period-us", type=int, default=10000, help="the quota's period")
    parser.add_argument("--deadline-ms", type=int, default=0,
                        help="each call's deadline in the open-loop steps (`--timeout`), from its due time; 0: none")
    parser.add_argument("--ours-args", default="", help="more flags for connect-server (e.g. admission settings)")
    parser.add_argument("--chart", type=Path, help="SVG chart (default: bench/overload.svg, none with --quick)")
    args = parser.parse_args()
    args.ours_args = args.ours_args.split()
    if args.quick:
        args.runs, args.step_duration, args.peak_duration, args.warmup = 1, 1.0, 1.0, 0.2
    if args.chart is None and not args.quick:
        args.chart = ROOT / "bench" / "overload.svg"
    if len(os.sched_getaffinity(0)) < 2:
        print("bench/overload: needs 2 cores (server on core 0, load on core 1)", file=sys.stderr)
        return 2

    workdir, args.bin_dir = private_workdir("connect-overload-", args.bin_dir)

    quotas = [CpuQuota(f"connect-overload-{i}", args.quota, args.quota_period_us) for i in range(2)]
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
    figures, problems = {}, []
    # Same answers from both, before anything is measured.
    answers = []
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
    if len(answers) < 2:
        for problem in problems:
            print(f"PROBLEM: {problem}", file=sys.stderr)
        return 1
    for round_ in range(args.runs):
        for server in servers:
            one_round(args, server, figures, problems, round_)
    load_after = os.getloadavg()[0]

    names = [s.name for s in servers]
    text, peaks = table(args, figures, names)
    header = (f"Measured by `bench/overload{' --quick' if args.quick else ''}` on {started:%Y-%m-%d %H:%M} UTC: "
              f"median of {args.runs} round(s); peak runs of {args.peak_duration:g} s after {args.warmup:g} s of "
              f"warm-up, open-loop steps of {args.step_duration:g} s; server pinned to core 0 with a CPU quota of "
              f"{quota_note}, connect-client bench pinned to core 1 ({args.connections} connections, call loops = "
              f"offered rate x {args.loop_budget:g} s, at most {args.max_loops:,}); load average "
              f"{load_before:.1f} at the start, {load_after:.1f} at the end.")
    print(header + "\n")
    print(text + "\n")
    if not args.quick:  # a smoke run's figures mean nothing
        print(verdict(figures, peaks))
    if args.chart and figures:
        args.chart.write_text(chart(figures, servers, peaks, f"bench/overload, {started:%Y-%m-%d}: server on core 0 "
                                                            f"with a quota of {quota_note}, load on core 1"))
        print(f"wrote {args.chart}")
    for problem in problems:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
