"""Inline SVG charts for the report: forest plot, cumulative trend, onset histogram, dose box plot.

Plain strings, no scripts, no external fonts: the report stays one self-contained file that prints.
Every label passes through html.escape; a value that cannot be drawn (missing, infinite) is drawn as an
arrow at the axis edge or left out, never printed as 'nan' or 'inf'.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

FONT = "font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif"
INK, MUTED, GRID, SIGNAL, NO_SIGNAL = "#1b1f24", "#5b6472", "#d5d9e0", "#b4232f", "#2f5f98"
LOG_TICKS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


def _e(text: object) -> str:
    return html.escape(str(text))


def _num(value: float | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _tick(value: float) -> str:
    return f"{value:g}"


@dataclass(frozen=True)
class ForestRow:
    label: str
    heading: bool = False  # a claim's title row, no interval
    group: bool = False  # the claim's PT group (bold)
    n: int | None = None
    ror: float | None = None
    ror_lower: float | None = None
    ror_upper: float | None = None
    ic: float | None = None
    ic025: float | None = None
    ic975: float | None = None
    signal: bool = False


class _Axis:
    """Maps a value to x within [x0, x1]; log or linear."""

    def __init__(self, low: float, high: float, x0: float, x1: float, log: bool) -> None:
        self.low, self.high, self.x0, self.x1, self.log = low, high, x0, x1, log

    def _t(self, value: float) -> float:
        return math.log10(value) if self.log else value

    def x(self, value: float) -> float:
        t = (self._t(value) - self._t(self.low)) / (self._t(self.high) - self._t(self.low))
        return self.x0 + t * (self.x1 - self.x0)

    def clip(self, value: float | None) -> tuple[float | None, bool]:
        """(x, clipped) with value held inside the axis; None when there is nothing to draw."""
        value = _num(value)
        if value is None:
            return None, False
        if self.log and value <= 0:
            return self.x0, True
        if value < self.low:
            return self.x0, True
        if value > self.high:
            return self.x1, True
        return self.x(value), False


def _ror_range(rows: Sequence[ForestRow]) -> tuple[float, float]:
    values = [v for r in rows for v in (_num(r.ror_lower), _num(r.ror_upper), _num(r.ror)) if v and math.isfinite(v) and v > 0]
    low = min([*values, 1.0]) / 1.3
    high = max([*values, 1.0]) * 1.3
    return max(low, LOG_TICKS[0]), min(high, LOG_TICKS[-1])


def _ic_range(rows: Sequence[ForestRow]) -> tuple[float, float]:
    values = [v for r in rows for v in (_num(r.ic025), _num(r.ic975)) if v is not None and math.isfinite(v)]
    return math.floor(min([*values, 0.0]) - 0.25), math.ceil(max([*values, 0.0]) + 0.25)


def _interval(axis: _Axis, y: float, point: float | None, lower: float | None, upper: float | None, colour: str, bold: bool) -> str:
    x_lo, clip_lo = axis.clip(lower)
    x_hi, clip_hi = axis.clip(upper)
    x_pt, _ = axis.clip(point)
    parts = []
    if x_lo is not None and x_hi is not None:
        parts.append(f'<line x1="{x_lo:.1f}" y1="{y:.1f}" x2="{x_hi:.1f}" y2="{y:.1f}" stroke="{colour}" stroke-width="{2 if bold else 1.4}"/>')
        if clip_lo:
            parts.append(f'<path d="M{x_lo:.1f},{y:.1f} l6,-4 v8 z" fill="{colour}"/>')
        if clip_hi:
            parts.append(f'<path d="M{x_hi:.1f},{y:.1f} l-6,-4 v8 z" fill="{colour}"/>')
    if x_pt is not None:
        size = 4.5 if bold else 3.5
        shape = (f'<rect x="{x_pt - size:.1f}" y="{y - size:.1f}" width="{2 * size:.1f}" height="{2 * size:.1f}" fill="{colour}"/>'
                 if bold else f'<circle cx="{x_pt:.1f}" cy="{y:.1f}" r="{size}" fill="{colour}"/>')  # fmt: skip
        parts.append(shape)
    return "".join(parts)


def forest_plot(rows: Sequence[ForestRow], *, title: str) -> str:
    """ROR (log scale) and IC intervals side by side, one line per claim PT and claim group."""
    if not rows:
        return ""
    row_h, top, bottom = 17, 46, 34
    label_w, panel_w, gap, n_w = 290, 300, 36, 46
    width = label_w + n_w + panel_w + gap + panel_w + 12
    height = top + row_h * len(rows) + bottom
    ror_axis = _Axis(*_ror_range(rows), label_w + n_w, label_w + n_w + panel_w, log=True)
    ic_x0 = label_w + n_w + panel_w + gap
    ic_axis = _Axis(*_ic_range(rows), ic_x0, ic_x0 + panel_w, log=False)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart forest" role="img" viewBox="0 0 {width} {height}" '
        f'width="100%" style="max-width:{width}px;{FONT}" aria-label="{_e(title)}"><title>{_e(title)}</title>',
        f'<text x="4" y="16" font-size="13" font-weight="600" fill="{INK}">{_e(title)}</text>',
        f'<text x="{label_w + n_w + panel_w / 2:.0f}" y="36" font-size="12" text-anchor="middle" fill="{INK}">ROR, 95% CI (log scale)</text>',
        f'<text x="{ic_x0 + panel_w / 2:.0f}" y="36" font-size="12" text-anchor="middle" fill="{INK}">IC, IC025 to IC975</text>',
        f'<text x="{label_w + n_w - 6}" y="36" font-size="11" text-anchor="end" fill="{MUTED}">n</text>',
    ]
    y_end = top + row_h * len(rows)
    for tick in LOG_TICKS:
        if ror_axis.low <= tick <= ror_axis.high:
            x = ror_axis.x(tick)
            stroke = INK if tick == 1 else GRID
            out.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{y_end}" stroke="{stroke}" stroke-width="1"/>')
            out.append(f'<text x="{x:.1f}" y="{y_end + 14}" font-size="10" text-anchor="middle" fill="{MUTED}">{_tick(tick)}</text>')
    for tick in range(int(ic_axis.low), int(ic_axis.high) + 1):
        x = ic_axis.x(tick)
        stroke = INK if tick == 0 else GRID
        out.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{y_end}" stroke="{stroke}" stroke-width="1"/>')
        out.append(f'<text x="{x:.1f}" y="{y_end + 14}" font-size="10" text-anchor="middle" fill="{MUTED}">{tick}</text>')
    for i, row in enumerate(rows):
        y = top + row_h * i + row_h / 2
        if row.heading:
            out.append(f'<rect x="0" y="{y - row_h / 2:.1f}" width="{width}" height="{row_h}" fill="#f1f3f6"/>')
            out.append(f'<text x="4" y="{y + 4:.1f}" font-size="11.5" font-weight="600" fill="{INK}">{_e(row.label)}</text>')
            continue
        weight = ' font-weight="600"' if row.group else ""
        label = row.label if len(row.label) <= 44 else row.label[:43] + "…"
        out.append(f'<text x="{14 if not row.group else 8}" y="{y + 4:.1f}" font-size="11"{weight} fill="{INK}">'
                   f"<title>{_e(row.label)}</title>{_e(label)}</text>")  # fmt: skip
        out.append(f'<text x="{label_w + n_w - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" fill="{MUTED}">'
                   f'{"" if row.n is None else _e(row.n)}</text>')  # fmt: skip
        if row.n is None or row.n == 0:
            out.append(f'<text x="{ror_axis.x0 + 4}" y="{y + 4:.1f}" font-size="10.5" fill="{MUTED}">no drug reports</text>')
            continue
        colour = SIGNAL if row.signal else NO_SIGNAL
        out.append(_interval(ror_axis, y, row.ror, row.ror_lower, row.ror_upper, colour, row.group))
        out.append(_interval(ic_axis, y, row.ic, row.ic025, row.ic975, colour, row.group))
    out.append(
        f'<text x="4" y="{height - 4}" font-size="10" fill="{MUTED}">Squares: claim PT group; dots: single PTs; red: at least '
        "one signal rule fires; arrows: interval runs off the axis.</text></svg>"
    )
    return "".join(out)


def _nice_range(values: Sequence[float], floor: float) -> tuple[float, float]:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    low = min([*finite, floor])
    high = max([*finite, floor])
    pad = (high - low) * 0.08 or 1.0
    return low - pad, high + pad


def _line_panel(
    x0: float, width: float, top: float, height: float, quarters: Sequence[str], values: Sequence[float | None],
    threshold: float, label: str, first_signal: str | None,
) -> str:
    low, high = _nice_range([v for v in values if v is not None], threshold)

    def y(v: float) -> float:
        return top + height - (v - low) / (high - low) * height

    def x(i: int) -> float:
        return x0 + (i / max(len(quarters) - 1, 1)) * width

    out = [f'<rect x="{x0}" y="{top}" width="{width}" height="{height}" fill="none" stroke="{GRID}"/>',
           f'<text x="{x0}" y="{top - 6}" font-size="11.5" font-weight="600" fill="{INK}">{_e(label)}</text>']  # fmt: skip
    ty = y(threshold)
    out.append(f'<line x1="{x0}" y1="{ty:.1f}" x2="{x0 + width}" y2="{ty:.1f}" stroke="{SIGNAL}" stroke-dasharray="4 3"/>')
    out.append(f'<text x="{x0 + width - 2}" y="{ty - 3:.1f}" font-size="9.5" text-anchor="end" fill="{SIGNAL}">threshold {_tick(threshold)}</text>')
    for v in (low, threshold, high):
        if v == threshold and min(abs(y(threshold) - y(low)), abs(y(threshold) - y(high))) < 11:
            continue  # too close to an end label to print apart
        out.append(f'<text x="{x0 - 4}" y="{y(v) + 3:.1f}" font-size="10" text-anchor="end" fill="{MUTED}">{v:.1f}</text>')
    step = max(1, math.ceil(len(quarters) / 7))
    last = len(quarters) - 1
    for i, quarter in enumerate(quarters):
        if (i % step == 0 and last - i >= step / 2) or i == last:
            anchor = "end" if i == last and i > 0 else "middle"
            out.append(f'<text x="{x(i) + (4 if anchor == "end" else 0):.1f}" y="{top + height + 13}" font-size="9.5" '
                       f'text-anchor="{anchor}" fill="{MUTED}">{_e(quarter)}</text>')  # fmt: skip
    points = [f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values) if v is not None and math.isfinite(v)]
    if points:
        out.append(f'<polyline points="{" ".join(points)}" fill="none" stroke="{NO_SIGNAL}" stroke-width="1.8"/>')
    if first_signal and first_signal in quarters:
        fx = x(list(quarters).index(first_signal))
        out.append(f'<line x1="{fx:.1f}" y1="{top}" x2="{fx:.1f}" y2="{top + height}" stroke="{INK}" stroke-dasharray="2 2"/>')
        out.append(f'<text x="{fx + 3:.1f}" y="{top + 11}" font-size="9.5" fill="{INK}">first fired {_e(first_signal)}</text>')
    return "".join(out)


def trend_chart(
    quarters: Sequence[str], ic025: Sequence[float | None], eb05: Sequence[float | None], *,
    title: str, first_who_umc: str | None, first_fda: str | None,
) -> str:
    """Cumulative IC025 (WHO-UMC threshold 0) and EB05 (FDA threshold 2) by quarter, two panels."""
    if not quarters:
        return ""
    width, height, panel_w, panel_h, top = 900, 200, 390, 130, 40
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart trend" role="img" viewBox="0 0 {width} {height}" '
        f'width="100%" style="max-width:{width}px;{FONT}" aria-label="{_e(title)}"><title>{_e(title)}</title>',
        f'<text x="4" y="14" font-size="12.5" font-weight="600" fill="{INK}">{_e(title)}</text>',
        _line_panel(46, panel_w, top, panel_h, quarters, ic025, 0.0, "IC025 (cumulative)", first_who_umc),
        _line_panel(46 + panel_w + 60, panel_w, top, panel_h, quarters, eb05, 2.0, "EB05 (cumulative)", first_fda),
        "</svg>",
    ]
    return "".join(out)


def histogram(bands: Sequence[tuple[str, int]], *, title: str, highlight: int | None = None) -> str:
    """Bar chart of counts per band (time to onset); bars up to `highlight` (index) drawn darker."""
    if not bands:
        return ""
    width, height, top, left, bar_w = 520, 190, 30, 40, 80
    peak = max([c for _, c in bands] + [1])
    plot_h = height - top - 36
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart histogram" role="img" viewBox="0 0 {width} {height}" '
        f'width="100%" style="max-width:{width}px;{FONT}" aria-label="{_e(title)}"><title>{_e(title)}</title>',
        f'<text x="4" y="14" font-size="12.5" font-weight="600" fill="{INK}">{_e(title)}</text>',
    ]
    for i, (label, count) in enumerate(bands):
        h = count / peak * plot_h
        x = left + i * (bar_w + 12)
        colour = NO_SIGNAL if highlight is None or i <= highlight else "#9fb3cc"
        out.append(f'<rect x="{x}" y="{top + plot_h - h:.1f}" width="{bar_w}" height="{h:.1f}" fill="{colour}"/>')
        out.append(f'<text x="{x + bar_w / 2}" y="{top + plot_h - h - 3:.1f}" font-size="10.5" text-anchor="middle" fill="{INK}">{count}</text>')
        out.append(f'<text x="{x + bar_w / 2}" y="{top + plot_h + 14}" font-size="10.5" text-anchor="middle" fill="{MUTED}">{_e(label)}</text>')
    out.append("</svg>")
    return "".join(out)


def box_plot(groups: Sequence[tuple[str, Sequence[float] | None]], *, title: str, unit: str) -> str:
    """Horizontal box plots from (min, q1, median, q3, max) per group."""
    drawn = [(label, q) for label, q in groups if q]
    if not drawn:
        return ""
    width, row_h, top, left, right = 700, 34, 30, 200, 30
    height = top + row_h * len(drawn) + 30
    low = min(q[0] for _, q in drawn)
    high = max(q[4] for _, q in drawn)
    span = (high - low) or 1.0
    axis = _Axis(low - span * 0.03, high + span * 0.03, left, width - right, log=False)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart box" role="img" viewBox="0 0 {width} {height}" '
        f'width="100%" style="max-width:{width}px;{FONT}" aria-label="{_e(title)}"><title>{_e(title)}</title>',
        f'<text x="4" y="14" font-size="12.5" font-weight="600" fill="{INK}">{_e(title)}</text>',
    ]
    for i, (label, (q0, q1, q2, q3, q4)) in enumerate(drawn):
        y = top + row_h * i + row_h / 2
        out.append(f'<text x="{left - 8}" y="{y + 4:.1f}" font-size="11" text-anchor="end" fill="{INK}">{_e(label)}</text>')
        out.append(f'<line x1="{axis.x(q0):.1f}" y1="{y}" x2="{axis.x(q4):.1f}" y2="{y}" stroke="{MUTED}"/>')
        out.append(f'<rect x="{axis.x(q1):.1f}" y="{y - 9}" width="{max(axis.x(q3) - axis.x(q1), 1):.1f}" height="18" '
                   f'fill="#dbe6f3" stroke="{NO_SIGNAL}"/>')  # fmt: skip
        out.append(f'<line x1="{axis.x(q2):.1f}" y1="{y - 9}" x2="{axis.x(q2):.1f}" y2="{y + 9}" stroke="{INK}" stroke-width="2"/>')
    y_axis = top + row_h * len(drawn) + 4
    for value in (low, (low + high) / 2, high):
        out.append(f'<text x="{axis.x(value):.1f}" y="{y_axis + 12}" font-size="10" text-anchor="middle" fill="{MUTED}">{value:,.0f} {_e(unit)}</text>')
    out.append("</svg>")
    return "".join(out)
