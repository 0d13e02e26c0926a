"""BENCHMARKS.md from one run of bench/run.py: the tables of each view, the
targets with the figures that decide them, and the three charts. The part of
BENCHMARKS.md below MARKER is written by hand and kept as it is."""

import platform
from pathlib import Path

import charts
from harness import (
    BASELINE, OURS, OURS_SPIN, PACED_RATE, PYTHON, ROOT, SCENARIOS, SWEEP, TOOLS, median, run, spread,
)

MARKER = "<!-- Everything above is written by bench/run; everything below is kept as it is. -->"
CHARTS = ("throughput", "latency", "connections")


def chart_links(output):
    """Where each chart goes, relative to the report: bench/NAME.svg for the
    repository's BENCHMARKS.md, REPORT-NAME.svg beside any other report (so a
    trial run never overwrites the committed charts)."""
    if output.resolve() == (ROOT / "BENCHMARKS.md").resolve():
        return {name: f"bench/{name}.svg" for name in CHARTS}
    return {name: f"{output.stem}-{name}.svg" for name in CHARTS}


class Meta:
    """What a run was: settings, machine, servers, when and from which commit."""

    def __init__(self, args, cores, modes, servers, started, load_before, commit, idle_count):
        self.args, self.cores, self.modes, self.servers = args, cores, modes, servers
        self.started, self.load_before, self.commit, self.idle_count = started, load_before, commit, idle_count
        self.load_after = None


class Text:
    def __init__(self, sections, targets):
        self.sections, self.targets = sections, targets
        self.console = "\n\n".join(f"{title}\n\n{body}" for title, body in sections + [("Targets", targets)])


def median_of(store, key, field):
    runs = store.get(key)
    return median([r[field] for r in runs]) if runs else None


def fmt(value, digits=0, suffix=""):
    return "-" if value is None else f"{value:,.{digits}f}{suffix}"


def ratio_text(a, b, digits=2):
    return f"{a / b:.{digits}f}x" if a and b else "-"


def peer_table(meta, b):
    ours, spin = OURS, OURS_SPIN
    t = b.throughput
    lines = ["| server | full-featured | unary calls/s | vs connect-server | stream(10) messages/s | vs connect-server "
             "| CPU us per unary call | CPU us per stream(10) call | unary calls/s (connect-client bench) "
             "| unloaded mean ms |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    our_unary = median_of(t, ("pinned", "unary", "h2load", ours), "calls_per_sec")
    our_ss10 = median_of(t, ("pinned", "ss10", "h2load", ours), "messages_per_sec")
    for s in meta.servers:
        if s.name == spin:
            continue
        unary = median_of(t, ("pinned", "unary", "h2load", s.name), "calls_per_sec")
        ss10 = median_of(t, ("pinned", "ss10", "h2load", s.name), "messages_per_sec")
        lines.append(
            f"| {s.name} | {'yes' if s.full else 'no'} | {fmt(unary)} | {ratio_text(unary, our_unary)} | {fmt(ss10)} "
            f"| {ratio_text(ss10, our_ss10)} | {fmt(median_of(t, ('pinned', 'unary', 'h2load', s.name), 'cpu_us_per_call'), 1)} "
            f"| {fmt(median_of(t, ('pinned', 'ss10', 'h2load', s.name), 'cpu_us_per_call'), 1)} "
            f"| {fmt(median_of(t, ('pinned', 'unary', 'connect-client bench', s.name), 'calls_per_sec'))} "
            f"| {fmt(median_of(t, ('pinned', 'latency', 'h2load', s.name), 'mean_ms'), 3)} |")
    return "\n".join(lines)


def sweep_table(meta, b):
    lines = ["| scenario | server | own peak calls/s | " + " | ".join(f"{p}%: p50 / p99 / p99.9 ms" for p in SWEEP) + " |",
             "|---|---|---:|" + "---:|" * len(SWEEP)]
    for key in ("unary", "ss10"):
        for s in meta.servers:
            peak = b.sweep.get((key, "peak", s.name))
            if not peak:
                continue
            cells = []
            for p in SWEEP:
                runs = b.sweep.get((key, p, s.name))
                cells.append(" / ".join(fmt(median([r[f] for r in runs]), 2) for f in ("p50_ms", "p99_ms", "p999_ms"))
                             if runs else "-")
            lines.append(f"| {SCENARIOS[key].title} | {s.name} | {fmt(peak)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def busy_poll_table(meta, b):
    lines = ["| server | unloaded mean ms, pinned | server CPU, pinned | unloaded mean ms, unpinned "
             f"| server CPU, unpinned | {PACED_RATE:,} calls/s on one connection: p50 / p99 ms | server CPU |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name in (OURS, OURS_SPIN, BASELINE):
        row = [f"| {name} "]
        for mode in ("pinned", "unpinned"):
            key = (mode, "latency", "h2load", name)
            row.append(f"| {fmt(median_of(b.throughput, key, 'mean_ms'), 3)} "
                       f"| {fmt(median_of(b.throughput, key, 'server_cpu_pct'), 0, '%')} ")
        paced = b.paced.get(name)
        if paced:
            row.append(f"| {fmt(median([r['p50_ms'] for r in paced]), 3)} / {fmt(median([r['p99_ms'] for r in paced]), 3)} "
                       f"| {fmt(median([r['server_cpu_pct'] for r in paced]), 0, '%')} |")
        else:
            row.append("| - | - |")
        lines.append("".join(row))
    return "\n".join(lines)


def connections_table(meta, b):
    ours, base = OURS, BASELINE
    counts = sorted({c for c, _ in b.connections})
    lines = [f"| client connections | {ours} calls/s | {base} calls/s | ratio | {ours} p99 ms | {base} p99 ms "
             f"| {ours} peak RSS MiB | {base} peak RSS MiB |", "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for c in counts:
        a, z = b.connections.get((c, ours)), b.connections.get((c, base))
        get = (lambda runs, f, scale=1: median([r[f] / scale for r in runs if r.get(f) is not None]) if runs else None)
        lines.append(f"| {c:,} | {fmt(get(a, 'calls_per_sec'))} | {fmt(get(z, 'calls_per_sec'))} "
                     f"| {ratio_text(get(a, 'calls_per_sec'), get(z, 'calls_per_sec'))} | {fmt(get(a, 'p99_ms'), 2)} "
                     f"| {fmt(get(z, 'p99_ms'), 2)} | {fmt(get(a, 'peak_kib', 1024), 1)} | {fmt(get(z, 'peak_kib', 1024), 1)} |")
    return "\n".join(lines)


def per_idle_kib(reading):
    if not reading or not reading["held_kib"] or not reading["connections"]:
        return None
    return (reading["held_kib"] - reading["idle_kib"]) / reading["connections"]


def idle_table(meta, b):
    lines = [f"| server | RSS idle, MiB | RSS holding {meta.idle_count:,} idle connections, MiB | KiB per connection |",
             "|---|---:|---:|---:|"]
    for s in meta.servers:
        r = b.idle.get(s.name)
        if r:
            lines.append(f"| {s.name} | {fmt(r['idle_kib'] / 1024, 1)} | {fmt((r['held_kib'] or 0) / 1024, 1)} "
                         f"| {fmt(per_idle_kib(r), 1)} |")
    return "\n".join(lines)


def medians(runs):
    """Each figure's median over `runs`; the note and the failed calls by status are words, not figures."""
    return {f: median([r[f] for r in runs]) for f in runs[0] if f not in ("note", "statuses")}


def throughput_table(meta, b):
    base = BASELINE
    lines = ["| mode | scenario | load generator | server | calls/s | messages/s | mean ms | p99 ms | vs tonic "
             "| server CPU | CPU us per call | run spread |", "|" + "---|" * 12]
    for mode, _, _ in meta.modes:
        for key in sorted({k[1] for k in b.throughput}, key=list(SCENARIOS).index):
            scenario = SCENARIOS[key]
            for tool in TOOLS:
                base_runs = b.throughput.get((mode, key, tool, base))
                for s in meta.servers:
                    runs = b.throughput.get((mode, key, tool, s.name))
                    if not runs:
                        continue
                    m = medians(runs)
                    bm = medians(base_runs) if base_runs else {}
                    if key == "latency":
                        vs = f"{m['mean_ms'] / bm['mean_ms']:.2f}x latency" if bm.get("mean_ms") and m["mean_ms"] else "-"
                    else:
                        metric = "messages_per_sec" if scenario.is_stream else "calls_per_sec"
                        vs = ratio_text(m[metric], bm.get(metric))
                    lines.append(
                        f"| {mode} | {scenario.title} | {tool} | {s.name} | {fmt(m['calls_per_sec'])} "
                        f"| {fmt(m['messages_per_sec']) if scenario.is_stream else '-'} | {fmt(m['mean_ms'], 3)} "
                        f"| {fmt(m['p99_ms'], 3)} | {vs} | {fmt(m['server_cpu_pct'], 0, '%')} "
                        f"| {fmt(m['cpu_us_per_call'], 1)} | {fmt(spread([r['calls_per_sec'] for r in runs]), 0, '%')} |")
    return "\n".join(lines)


def evaluate(meta, b):
    """Each target, with the figures that decide it."""
    ours, base = OURS, BASELINE
    t = b.throughput
    full_peers = [s.name for s in meta.servers if s.full and s.name not in (ours,) and s.only is None]
    out = []

    def add(target, value, ok):
        out.append((target, value, ok))

    for key, metric in (("unary", "calls_per_sec"), ("ss10", "messages_per_sec")):
        for tool in TOOLS:
            mine = median_of(t, ("pinned", key, tool, ours), metric)
            peers = {p: median_of(t, ("pinned", key, tool, p), metric) for p in full_peers}
            peers = {p: v for p, v in peers.items() if v}
            if mine and peers:
                best = max(peers, key=peers.get)
                r = mine / peers[best]
                add(f"pinned {SCENARIOS[key].title} >= 1.5x the best full-featured peer ({tool})",
                    f"{r:.2f}x {best} ({fmt(mine)} vs {fmt(peers[best])} {metric.replace('_per_sec', '/s')})", r >= 1.5)
    mine = median_of(t, ("pinned", "unary", "h2load", ours), "cpu_us_per_call")
    peers = {p: median_of(t, ("pinned", "unary", "h2load", p), "cpu_us_per_call") for p in full_peers}
    peers = {p: v for p, v in peers.items() if v}
    anchors = {s.name: median_of(t, ("pinned", "unary", "h2load", s.name), "cpu_us_per_call")
               for s in meta.servers if not s.full}
    if mine and peers:
        best = min(peers, key=peers.get)
        extra = "".join(f"; {n}: {fmt(v, 1)} us" for n, v in anchors.items() if v)
        add("server CPU per unary call: the lowest of the full-featured servers",
            f"{mine:.1f} us vs {best} {peers[best]:.1f} us{extra}", mine <= peers[best])
    for key in ("unary", "ss10"):
        mine = median([r["p99_ms"] for r in b.sweep.get((key, 75, ours), [])])
        peers = {p: median([r["p99_ms"] for r in b.sweep.get((key, 75, p), [])]) for p in full_peers}
        peers = {p: v for p, v in peers.items() if v}
        if mine and peers:
            best = min(peers, key=peers.get)
            add(f"{SCENARIOS[key].title}: p99 at 75% of own peak below every full-featured peer's",
                f"{mine:.2f} ms vs {best} {peers[best]:.2f} ms (the lowest of them)", mine < peers[best])
    for mode in [m[0] for m in meta.modes]:
        for key, metric in (("unary", "calls_per_sec"), ("ss10", "messages_per_sec"), ("ss1000", "messages_per_sec")):
            for tool in TOOLS:
                a, z = median_of(t, (mode, key, tool, ours), metric), median_of(t, (mode, key, tool, base), metric)
                goal = 1.5 if mode == "pinned" else 1.0
                if a and z:
                    add(f"{mode} {SCENARIOS[key].title} >= {goal}x tonic (default) ({tool})", f"{a / z:.2f}x", a / z >= goal)
        for tool in TOOLS:
            a, z = median_of(t, (mode, "unary", tool, ours), "calls_per_sec"), median_of(t, (mode, "unary", tool, PYTHON), "calls_per_sec")
            if a and z:
                add(f"{mode} unary >= 20x Python grpc.aio ({tool})", f"{a / z:.1f}x", a / z >= 20)
        for key in ("unary", "ss10", "ss1000"):
            a = median_of(t, (mode, key, "connect-client bench", ours), "calls_per_sec")
            z = median_of(t, (mode, key, "h2load", ours), "calls_per_sec")
            if a and z:
                add(f"{mode} {SCENARIOS[key].title}: connect-client bench >= 0.8x h2load (connect-server)",
                    f"{a / z:.2f}x", a / z >= 0.8)
    mem = b.memory.get(ours)
    if mem and mem["idle"]:
        add("connect-server idle RSS <= 10 MiB", f"{mem['idle'] / 1024:.1f} MiB", mem["idle"] <= 10 * 1024)
    if mem and mem["after"]:
        peak = max(v for v in mem["after"] if v)
        add("connect-server RSS after the load <= 32 MiB", f"{peak / 1024:.1f} MiB", peak <= 32 * 1024)
    a, z = per_idle_kib(b.idle.get(ours)), per_idle_kib(b.idle.get(base))
    if a is not None and z is not None:
        add("RSS per idle connection no higher than tonic's", f"{a:.1f} vs {z:.1f} KiB", a <= z)
    if ours in b.startup:
        best = min(b.startup[ours])
        add("connect-server start to first served call <= 50 ms", f"{best:.1f} ms", best <= 50)
    return out


def render_targets(targets):
    lines = ["| target | measured | met |", "|---|---|---|"]
    lines += [f"| {target} | {value} | {'yes' if ok else '**NO**'} |" for target, value, ok in targets]
    return "\n".join(lines)


def render(meta, b):
    sections = [("Peers side by side (pinned, h2load)", peer_table(meta, b)),
                ("Latency under load (open loop, pinned)", sweep_table(meta, b)),
                ("Busy polling on and off", busy_poll_table(meta, b)),
                ("Cost as client connections grow (unpinned, connect-client bench)", connections_table(meta, b)),
                ("Idle connections", idle_table(meta, b)),
                ("Every throughput run", throughput_table(meta, b))]
    return Text(sections, render_targets(evaluate(meta, b)))


def draw(meta, b):
    """The three charts, written next to BENCHMARKS.md's links to them."""# noqa: F401
    ours, spin, base = OURS, OURS_SPIN, BASELINE
    shown = [s for s in meta.servers if s.name != spin]
    legend = [(s.name, s.colour) for s in shown]
    t = b.throughput

    def values(key, field, tool="h2load"):
        return [(s.name, s.colour, median_of(t, ("pinned", key, tool, s.name), field)) for s in shown]

    figures = {}
    figures["throughput"] = charts.figure(
        "Throughput and CPU per call by server (pinned: server on one core, h2load on the other; medians)", legend,
        [charts.bars("unary calls/s", values("unary", "calls_per_sec")),
         charts.bars("stream(10) messages/s", values("ss10", "messages_per_sec")),
         charts.bars("server CPU us per unary call (lower is better)", values("unary", "cpu_us_per_call"))],
        "Bars are scaled within each panel; labels are absolute.")
    sweep_series = {key: [(s.name, s.colour, [median([r["p99_ms"] for r in b.sweep.get((key, p, s.name), [])])
                                              for p in SWEEP]) for s in shown] for key in ("unary", "ss10")}
    figures["latency"] = charts.figure(
        "p99 latency (ms, log scale) at a share of each server's own peak, open loop (pinned)", legend,
        [charts.lines("unary: % of own peak", [f"{p}%" for p in SWEEP], sweep_series["unary"], log_y=True),
         charts.lines("stream(10): % of own peak", [f"{p}%" for p in SWEEP], sweep_series["ss10"], log_y=True)],
        "Latency counted from each call's due time (connect-client bench --rate). Lower is better.")
    counts = sorted({c for c, _ in b.connections})
    pair = [s for s in shown if s.name in (ours, base)]

    def by_count(field, scale=1):
        return [(s.name, s.colour, [median([r[field] / scale for r in b.connections.get((c, s.name), [])
                                            if r.get(field)]) for c in counts]) for s in pair]

    figures["connections"] = charts.figure(
        "Cost as client connections grow (unpinned, unary, connect-client bench)", legend,
        [charts.lines("calls/s by client connections", counts, by_count("calls_per_sec")),
         charts.lines("peak RSS MiB by client connections", counts, by_count("peak_kib", 1024)),
         charts.bars(f"KiB per idle connection ({meta.idle_count:,} held)",
                     [(s.name, s.colour, per_idle_kib(b.idle.get(s.name))) for s in shown])],
        "Fresh server for each reading. Lines: connect-server and default tonic; bars: every server.")
    return figures


def write(meta, b, text, output):
    links = chart_links(output)
    for key, svg in draw(meta, b).items():
        (output.parent / links[key]).write_text(svg)
    kept = ""
    if output.exists():
        old = output.read_text()
        if MARKER in old:
            kept = old.split(MARKER, 1)[1]
    output.write_text(markdown(meta, b, text, links) + "\n" + MARKER + kept)
    print(f"wrote {output} and {', '.join(links.values())}")


def markdown(meta, b, text, charts_at):
    args = meta.args
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    h2load_version = run(["h2load", "--version"], timeout=10).stdout.strip()
    mem_lines = [f"| {name} | {fmt((mem['idle'] or 0) / 1024, 1)} | "
                 f"{', '.join(f'{v / 1024:.1f}' for v in mem['after'] if v)} | {fmt(min(b.startup.get(name, [0])), 1)} |"
                 for name, mem in b.memory.items()]
    body = dict(text.sections)
    problems = "".join(f"- {p.replace(chr(10), ' ')}\n" for p in b.problems)
    return f"""# Benchmarks

Measured by `bench/run` on {meta.started:%Y-%m-%d %H:%M} UTC: {meta.cores} cores ({cpu}), {platform.system()} {platform.release()},
{h2load_version}. Code measured: `{meta.commit}`. Each figure is the median of {args.runs} rounds; in each round the
servers and load generators take turns. Throughput runs last {args.duration:g} s, open-loop runs {args.sweep_duration:g} s
(connect-client bench: after {args.warmup:g} s of warm-up). *Pinned*: server on core 0, load generator on core 1
(`taskset`); *unpinned*: both free on both cores. Load average {meta.load_before[0]:.1f} at the start and
{meta.load_after[0]:.1f} at the end; the machine is shared, so compare ratios within this run rather than
absolute figures across runs.

The servers (sources and versions: [bench/peers/README.md](bench/peers/README.md)): **connect-server** with its
defaults (`--workers` = the cores it may use; busy polling off); **tonic (default)**, the least tonic server for
the same proto (`connect-server/examples/baseline_server.rs`: default `#[tokio::main]` and `Server::builder()`);
the peers under `bench/peers/`, each written as its own documentation shows, with its defaults; and
**Python grpc.aio** (`interop/python_server.py`). *Full-featured*: serves all four call kinds with deadlines and
cancellation (pajamax serves unary calls only: it is the anchor for what a call can cost here, not a peer).
Before measuring, the script checks that every server gives connect-server's exact answers to a unary call and a
3-message stream; during it, h2load runs are checked for the exact response payload of every call, and
connect-client bench checks every call's `grpc-status` and message count. *Server CPU* is the server process's
CPU time (all threads, from `/proc`) over the run, in percent of one core or in microseconds per call served.

![throughput and CPU per call by server](./{charts_at['throughput']})

## Reproduce

```sh
bench/run                 # release build, every peer built, all five views (about 40 minutes)
bench/run --runs 5        # more rounds per figure
bench/run --quick         # smoke run: debug build, our server and the baseline, a few seconds each
```

## Peers side by side (pinned, h2load)

{body['Peers side by side (pinned, h2load)']}

## Latency under load

Open loop: `connect-client bench --rate` at 25, 50, 75 and 90% of each server's own pinned peak (its
connect-client bench calls/s, 8 connections, 64 calls in flight), latency counted from each call's due time.

![p99 latency against load](./{charts_at['latency']})

{body['Latency under load (open loop, pinned)']}

## Busy polling on and off

{body['Busy polling on and off']}

## Cost as client connections grow

A fresh server for each reading, unpinned; `max(64, connections)` calls in flight; peak RSS is the server's `VmHWM`.

![cost against connections](./{charts_at['connections']})

{body['Cost as client connections grow (unpinned, connect-client bench)']}

Each idle connection has completed the HTTP/2 handshake (preface and SETTINGS both ways) and carries no call.

{body['Idle connections']}

## Targets

{text.targets}

## Every throughput run

{body['Every throughput run']}

## Memory and startup

| server | idle RSS MiB | RSS after each pinned round, MiB | start to first served call, ms |
|---|---|---|---|
{chr(10).join(mem_lines)}

The start-to-first-call time includes launching `connect-client` for that call.
{"" if not problems else chr(10) + "## Problems seen in this run" + chr(10) + chr(10) + problems}"""
