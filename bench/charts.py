"""The SVG charts of BENCHMARKS.md: one figure per view, each made of panels
(bars per server, or lines over a load axis). Hand-written SVG rather than a
plotting library: the benchmark runs with Python's standard library alone on
a fresh machine, and these charts need only rectangles, lines and text."""

import math
from html import escape

PANEL_W, PANEL_H = 300, 210
TOP = 86  # room for the title and two rows of legend


def figure(title, servers, panels, note):
    """`servers`: (name, colour) pairs for the legend; `panels`: functions of (x, y) returning SVG parts."""
    width = 20 + len(panels) * (PANEL_W + 20)
    height = TOP + PANEL_H + 70
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             'font-family="sans-serif" font-size="11">',
             '<rect width="100%" height="100%" fill="white"/>',
             f'<text x="10" y="20" font-size="14">{escape(title)}</text>']
    parts += legend(servers, width)
    for i, panel in enumerate(panels):
        parts += panel(20 + i * (PANEL_W + 20), TOP)
    parts.append(f'<text x="10" y="{height - 10}" font-size="10" fill="#555">{escape(note)}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def legend(servers, width):
    """One swatch and name per server, wrapping onto a second row."""
    parts, x, y = [], 10, 32
    for name, colour in servers:
        step = 22 + 6.2 * len(name)
        if x + step > width - 10:
            x, y = 10, y + 18
        parts.append(f'<rect x="{x}" y="{y}" width="11" height="11" fill="{colour}"/>'
                     f'<text x="{x + 15}" y="{y + 10}">{escape(name)}</text>')
        x += step
    return parts


def short(value):
    if value is None:
        return "-"
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 1:
        return f"{value:.1f}"
    return f"{value:.2f}"


def bars(label, values):
    """A panel of one bar per server, scaled to the largest; `values`: (name, colour, value or None)."""
    def draw(x0, y0):
        parts = []
        known = [v for _, _, v in values if v]
        peak = max(known or [1])
        slot = PANEL_W / max(1, len(values))
        for i, (name, colour, value) in enumerate(values):
            if not value:
                continue
            h = max(1.0, (PANEL_H - 20) * value / peak)
            x = x0 + i * slot
            y = y0 + PANEL_H - h
            parts.append(f'<rect x="{x + 2:.1f}" y="{y:.1f}" width="{slot - 4:.1f}" height="{h:.1f}" fill="{colour}">'
                         f'<title>{escape(name)}: {value:,.2f}</title></rect>')
            parts.append(f'<text x="{x + slot / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle" font-size="9">'
                         f'{short(value)}</text>')
        parts.append(f'<line x1="{x0}" y1="{y0 + PANEL_H}" x2="{x0 + PANEL_W}" y2="{y0 + PANEL_H}" stroke="#999"/>')
        parts.append(f'<text x="{x0 + PANEL_W / 2}" y="{y0 + PANEL_H + 18}" text-anchor="middle">{escape(label)}</text>')
        return parts
    return draw


def lines(label, xs, series, log_y=False):
    """A panel of one line per server over the categories `xs`;
    `series`: (name, colour, [value or None per x])."""
    def draw(x0, y0):
        parts = []
        known = [v for _, _, vs in series for v in vs if v]
        if not known:
            return parts
        lo, hi = min(known), max(known)
        if log_y:
            lo, hi = math.log10(lo) - 0.1, math.log10(hi) + 0.1
        else:
            lo, hi = 0.0, hi * 1.1

        def y_of(v):
            t = (math.log10(v) if log_y else v) - lo
            return y0 + PANEL_H - 20 - (PANEL_H - 30) * t / ((hi - lo) or 1)

        step = (PANEL_W - 40) / max(1, len(xs) - 1)
        left = x0 + 35
        for i, x in enumerate(xs):
            parts.append(f'<text x="{left + i * step:.1f}" y="{y0 + PANEL_H - 5}" text-anchor="middle" font-size="9">'
                         f'{escape(str(x))}</text>')
        for tick in (lo, (lo + hi) / 2, hi):
            value = 10 ** tick if log_y else tick
            y = y_of(value)
            parts.append(f'<line x1="{left - 5}" y1="{y:.1f}" x2="{x0 + PANEL_W}" y2="{y:.1f}" stroke="#eee"/>'
                         f'<text x="{left - 7}" y="{y + 3:.1f}" text-anchor="end" font-size="9">{short(value)}</text>')
        for name, colour, values in series:
            points = [(left + i * step, y_of(v)) for i, v in enumerate(values) if v]
            if len(points) > 1:
                path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
                parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
            for x, y in points:
                parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"><title>{escape(name)}</title></circle>')
        parts.append(f'<text x="{x0 + PANEL_W / 2}" y="{y0 + PANEL_H + 18}" text-anchor="middle">{escape(label)}</text>')
        return parts
    return draw


def xy_lines(label, series, log_y=False, diagonal=None):
    """A panel of one line per server over a numeric x axis (each server its own xs);
    `series`: (name, colour, [(x, y or None)]). `diagonal`: a grey dashed y = x, labelled so."""
    def draw(x0, y0):
        parts = []
        points_of = [(name, colour, [(x, y) for x, y in pts if x is not None and y]) for name, colour, pts in series]
        xs = [x for _, _, pts in points_of for x, _ in pts]
        ys = [y for _, _, pts in points_of for _, y in pts]
        if not xs:
            return parts
        x_hi = max(xs) * 1.05
        lo, hi = min(ys), max(ys)
        if log_y:
            lo, hi = math.log10(lo) - 0.1, math.log10(hi) + 0.1
        else:
            lo, hi = 0.0, max(hi, x_hi if diagonal else hi) * 1.1
        left, right = x0 + 35, x0 + PANEL_W - 5

        def x_of(v):
            return left + (right - left) * v / (x_hi or 1)

        def y_of(v):
            t = (math.log10(v) if log_y else v) - lo
            return y0 + PANEL_H - 20 - (PANEL_H - 30) * t / ((hi - lo) or 1)

        for tick in (0, x_hi / 4, x_hi / 2, 3 * x_hi / 4):
            parts.append(f'<text x="{x_of(tick):.1f}" y="{y0 + PANEL_H - 5}" text-anchor="middle" font-size="9">'
                         f'{short(tick) if tick else "0"}</text>')
        for tick in (lo, (lo + hi) / 2, hi):
            value = 10 ** tick if log_y else tick
            y = y_of(value)
            parts.append(f'<line x1="{left - 5}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="#eee"/>'
                         f'<text x="{left - 7}" y="{y + 3:.1f}" text-anchor="end" font-size="9">'
                         f'{short(value) if value else "0"}</text>')
        if diagonal and not log_y:
            end = min(x_hi, hi)
            parts.append(f'<line x1="{x_of(0):.1f}" y1="{y_of(0):.1f}" x2="{x_of(end):.1f}" y2="{y_of(end):.1f}" '
                         f'stroke="#aaa" stroke-dasharray="4 3"/>'
                         f'<text x="{x_of(end) - 4:.1f}" y="{y_of(end) + 12:.1f}" text-anchor="end" font-size="9" '
                         f'fill="#888">{escape(diagonal)}</text>')
        for name, colour, points in points_of:
            coords = [(x_of(x), y_of(y)) for x, y in points]
            if len(coords) > 1:
                path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
                parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
            for (x, y), (vx, vy) in zip(coords, points):
                parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}">'
                             f'<title>{escape(name)}: {vx:,.0f} offered, {vy:,.2f}</title></circle>')
        parts.append(f'<text x="{x0 + PANEL_W / 2}" y="{y0 + PANEL_H + 18}" text-anchor="middle">{escape(label)}</text>')
        return parts
    return draw
