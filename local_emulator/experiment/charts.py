"""One SVG line chart over the run, in template time: what every chart of the report draws with.

The chart is responsive: a `viewBox`, `width="100%"`, so it fills the report's content column
at any width, and text scales with it. Inside it one *plot frame* holds everything: time runs
from x = 50 (the run's start) to x = 850 (its end), values from y = 170 (zero) up to y = 25.
Around the plot, never on it: the y axis's ticks and title on the left (a right axis's on the
right), the time ticks and the phases (pre | experiment | post) below, the label of the span
the fault was attached above, and the legend below everything.

The y axis always starts at zero and is labelled at every tick. One spike (a 29 s timeout) must
not flatten a steady state of 100 ms into the baseline, so a latency axis whose values span more
than `LOG_SPAN` (max / its 10th percentile: the steady state's level, even when the fault
lasts longer than the steady state) is drawn on a *log scale above one decade*: linear from 0 to the
decade below the smallest value, then one equal step per ×10, each decade labelled. A clipped
linear axis was the alternative; it was not chosen because it hides how large the fault was
(a 10 s function timeout and a 29 s gateway timeout pin to the same clip line), which is what a
chaos experiment is run to see. An axis the dashboard bounds (`yAxis.left.max`) is the one that
clips, and says so: points above it are drawn on the top edge with a mark, and the subtitle
counts them.
"""
from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

__all__ = ["Series", "Chart", "Band", "Mark", "render_chart", "PALETTE", "LOG_SPAN",
           "PLOT_LEFT", "PLOT_RIGHT", "PLOT_TOP", "PLOT_BOTTOM"]

# CloudWatch's default graph colours, in its order.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")
# A latency axis whose max exceeds its 10th percentile this many times is drawn on a log scale.
LOG_SPAN = 20.0

PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, PLOT_BOTTOM = 50.0, 850.0, 25.0, 170.0
_FRAME_X = 48          # where the plot frame sits in the SVG (room for the y axis on the left)
_WIDTH = 968           # the SVG's viewBox width
# Every text of a chart, in viewBox units: drawn ≥ 11 px wherever the chart is ≥ 888 px wide
# (a 1000 px window less the page's margins).
_FONT = 12
_CHAR = 6.9            # the advance of one character at _FONT (sans-serif), to lay out text
_MAX_POINTS_DOTTED = 90


@dataclass
class Series:
    """One line: (template s, value) points, oldest first; None values are left out."""

    label: str
    points: List[Tuple[float, Optional[float]]]
    color: Optional[str] = None
    axis: str = "left"
    period: Optional[float] = None  # the bucket: a line breaks where more than one is missing


@dataclass
class Band:
    """A shaded span of template time: the fault (strong) or a step that changes it (light)."""

    start: float
    end: float
    label: str
    strong: bool = True


@dataclass
class Mark:
    """A horizontal line at a value (an annotation, an alarm's threshold) or a vertical one at
    a template second; its label goes in the legend."""

    label: str
    value: float
    vertical: bool = False
    color: str = "#d62728"
    axis: str = "left"


@dataclass
class Chart:
    """What to draw; `start`/`end` bound the time axis, `phases` are [from, to] per phase."""

    series: List[Series]
    start: float
    end: float
    phases: Mapping[str, Sequence[float]] = field(default_factory=dict)
    bands: List[Band] = field(default_factory=list)
    marks: List[Mark] = field(default_factory=list)
    y_label: str = ""
    right_label: str = ""
    latency: bool = False           # the left axis may be a log scale (see the module docstring)
    right_latency: bool = False     # the right one may
    y_max: Optional[float] = None   # the dashboard's bound: clip above it
    right_max: Optional[float] = None
    stacked: bool = False
    title: str = ""                 # for the SVG's <title> (the visible title is the page's)
    heading: Sequence[str] = ()     # a standalone chart's visible title and subtitle lines


@dataclass
class _Axis:
    ticks: List[Tuple[float, str]]
    top: float
    log_from: Optional[float]       # the first decade of a log scale; None: linear
    clipped: bool

    def y(self, value: float) -> float:
        value = max(0.0, min(value, self.top))
        height = PLOT_BOTTOM - PLOT_TOP
        if self.log_from is None:
            return PLOT_BOTTOM - value / self.top * height
        decades = math.log10(self.top / self.log_from) + 1
        if value <= self.log_from:
            steps = value / self.log_from
        else:
            steps = 1 + math.log10(value / self.log_from)
        return PLOT_BOTTOM - steps / decades * height


def _number(value: float) -> str:
    """A tick's label: compact, never scientific (0, 0.5, 250, 2,500, 40k, 1.5M)."""
    if value == 0:
        return "0"
    if abs(value) >= 1e6:
        return f"{value / 1e6:g}M"
    if abs(value) >= 1e4:
        return f"{value / 1e3:g}k"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:g}"


def _nice_step(top: float, count: int = 4) -> float:
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)


def _low(values: Sequence[float]) -> float:
    """The 10th percentile (nearest rank) of some values: their usual level, not an outlier."""
    ordered = sorted(values)
    return ordered[int(0.1 * (len(ordered) - 1))]


def _axis(values: Sequence[float], latency: bool, bound: Optional[float]) -> _Axis:
    positive = [v for v in values if v > 0]
    peak = max(positive, default=0.0)
    if bound is not None and bound > 0:
        step = _nice_step(bound)
        ticks = [i * step for i in range(int(bound / step + 1e-9) + 1)]
        return _Axis([(t, _number(t)) for t in ticks], bound, None, peak > bound)
    if latency and positive and peak / _low(positive) > LOG_SPAN:
        low = 10 ** math.floor(math.log10(min(positive)))
        power = 10 ** math.floor(math.log10(peak))
        top = next(m * power for m in (1, 2, 5, 10) if m * power >= peak)
        if top / low < 100:
            low = 10 ** math.floor(math.log10(top / 100))
        decades = [low * 10 ** i for i in range(int(math.floor(math.log10(top / low) + 1e-9)) + 1)]
        ticks = [(0.0, "0")] + [(d, _number(d)) for d in decades]
        if top > decades[-1] * 1.001:
            ticks.append((top, _number(top)))
        return _Axis(ticks, top, low, False)
    if peak <= 0:
        return _Axis([(0.0, "0"), (0.5, "0.5"), (1.0, "1")], 1.0, None, False)
    step = _nice_step(peak)
    count = math.ceil(peak / step - 1e-9)
    ticks = [i * step for i in range(count + 1)]
    return _Axis([(t, _number(t)) for t in ticks], ticks[-1], None, False)


def _stack(series: Sequence[Series]) -> List[Series]:
    """Stacked series: each line is the sum of itself and those before it, per timestamp."""
    below: Dict[float, float] = {}
    out = []
    for s in series:
        points = []
        for t, v in s.points:
            if v is None:
                continue
            below[t] = below.get(t, 0.0) + v
            points.append((t, below[t]))
        out.append(Series(s.label, points, s.color, s.axis, s.period))
    return out


def _runs(points: List[Tuple[float, float]], period: Optional[float]) -> List[List[Tuple[float, float]]]:
    """The points split where a bucket has no datapoint: a missing period is no data, which a
    line across it would draw as data (CloudWatch leaves the gap too)."""
    runs: List[List[Tuple[float, float]]] = []
    for point in points:
        if runs and (period is None or point[0] - runs[-1][-1][0] <= period * 1.5):
            runs[-1].append(point)
        else:
            runs.append([point])
    return runs


def _axis_title(label: str, axis: _Axis) -> str:
    """The axis's label, and that it is a log scale above its first decade when it is one."""
    scale = f"log scale above {_number(axis.log_from)}" if axis.log_from else ""
    return "; ".join(words for words in (label, scale) if words)


def _text(x: float, y: float, words: str, *, anchor: str = "start", fill: str = "#333",
          extra: str = "") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{_FONT}" fill="{fill}"'
            + (f' text-anchor="{anchor}"' if anchor != "start" else "") + extra
            + f">{html.escape(words)}</text>")


def _width(words: str) -> float:
    return len(words) * _CHAR


def render_chart(chart: Chart) -> str:
    """The chart as an inline, self-contained <svg> element."""
    span = max(chart.end - chart.start, 1.0)
    series = _stack(chart.series) if chart.stacked else list(chart.series)
    colours = [s.color or PALETTE[i % len(PALETTE)] for i, s in enumerate(series)]

    def x(t: float) -> float:
        return PLOT_LEFT + (min(max(t, chart.start), chart.end) - chart.start) / span * (PLOT_RIGHT - PLOT_LEFT)

    def values(axis: str) -> List[float]:
        found = [v for s in series if s.axis == axis for _, v in s.points if v is not None]
        return found + [m.value for m in chart.marks if not m.vertical and m.axis == axis]

    axes = {"left": _axis(values("left"), chart.latency, chart.y_max)}
    if any(s.axis == "right" for s in series):
        axes["right"] = _axis(values("right"), chart.right_latency, chart.right_max)

    parts: List[str] = []
    # The span the fault was attached (and the steps that change it), behind everything.
    for band in chart.bands:
        parts.append(f'<rect x="{x(band.start):.1f}" y="{PLOT_TOP}" '
                     f'width="{max(x(band.end) - x(band.start), 1):.1f}" height="{PLOT_BOTTOM - PLOT_TOP}" '
                     f'fill="{"#f4cccc" if band.strong else "#fae3e3"}"><title>{html.escape(band.label)}'
                     "</title></rect>")
    strong = [b for b in chart.bands if b.strong]
    if strong:
        band = strong[0]
        left = x(band.start)
        anchor, at = ("start", left) if left + _width(band.label) <= PLOT_RIGHT + 40 else ("end", x(band.end))
        if anchor == "end" and at - _width(band.label) < PLOT_LEFT - 40:
            anchor, at = "start", PLOT_LEFT - 40
        parts.append(f'<line x1="{x(band.start):.1f}" y1="{PLOT_TOP - 4}" x2="{x(band.end):.1f}" '
                     f'y2="{PLOT_TOP - 4}" stroke="#c33" stroke-width="2"/>')
        parts.append(_text(at, PLOT_TOP - 9, band.label, anchor=anchor, fill="#a33"))
    # Grid and ticks: the left axis's gridlines, its labels left of the plot.
    left_axis = axes["left"]
    for value, label in left_axis.ticks:
        y = left_axis.y(value)
        parts.append(f'<line x1="{PLOT_LEFT}" y1="{y:.1f}" x2="{PLOT_RIGHT}" y2="{y:.1f}" '
                     f'stroke="{"#333" if value == 0 else "#e3e3e3"}"/>')
        parts.append(_text(PLOT_LEFT - 5, y + 4, label, anchor="end", extra=' class="y-tick"'))
    words = _axis_title(chart.y_label, left_axis)
    if words:
        mid = (PLOT_TOP + PLOT_BOTTOM) / 2
        parts.append(_text(PLOT_LEFT - 46, mid, words, anchor="middle",
                           extra=f' transform="rotate(-90 {PLOT_LEFT - 46:.1f} {mid:.1f})"'))
    if "right" in axes:
        right = axes["right"]
        for value, label in right.ticks:
            parts.append(_text(PLOT_RIGHT + 5, right.y(value) + 4, label, extra=' class="y-tick-right"'))
        words = _axis_title(chart.right_label, right)
        if words:
            mid = (PLOT_TOP + PLOT_BOTTOM) / 2
            parts.append(_text(PLOT_RIGHT + 52, mid, words, anchor="middle",
                               extra=f' transform="rotate(90 {PLOT_RIGHT + 52:.1f} {mid:.1f})"'))
    # Time: ticks every whole minute (at most ~8), the phases as a bar below them.
    minute_step = max(60, int(math.ceil(span / 8 / 60)) * 60)
    first = math.ceil(chart.start / minute_step) * minute_step
    t = first
    while t <= chart.end + 1e-9:
        parts.append(f'<line x1="{x(t):.1f}" y1="{PLOT_BOTTOM}" x2="{x(t):.1f}" y2="{PLOT_BOTTOM + 4}" stroke="#333"/>')
        parts.append(_text(x(t), PLOT_BOTTOM + 16, f"{int(t // 60)}:{int(t % 60):02d}", anchor="middle"))
        t += minute_step
    parts.append(_text(PLOT_RIGHT + 22, PLOT_BOTTOM + 16, "m:ss"))
    for i, (phase, bounds) in enumerate(chart.phases.items()):
        a, b = x(bounds[0]), x(bounds[1])
        parts.append(f'<line x1="{a:.1f}" y1="{PLOT_TOP}" x2="{a:.1f}" y2="{PLOT_BOTTOM}" '
                     'stroke="#999" stroke-dasharray="3,3"/>')
        parts.append(f'<rect x="{a:.1f}" y="{PLOT_BOTTOM + 22}" width="{max(b - a, 0.5):.1f}" height="15" '
                     f'fill="{("#eef2f7", "#f8e1e1", "#e8f3e8")[i % 3]}" stroke="#fff"/>')
        if b - a >= _width(phase) + 4:
            parts.append(_text((a + b) / 2, PLOT_BOTTOM + 33, phase, anchor="middle", fill="#444"))
    parts.append(_text(PLOT_LEFT - 5, PLOT_BOTTOM + 33, "phase", anchor="end", fill="#444"))
    # Annotations, then the lines (on top of everything in the plot).
    for mark in chart.marks:
        if mark.vertical:
            parts.append(f'<line x1="{x(mark.value):.1f}" y1="{PLOT_TOP}" x2="{x(mark.value):.1f}" '
                         f'y2="{PLOT_BOTTOM}" stroke="{mark.color}" stroke-dasharray="6,3"/>')
        else:
            y = axes.get(mark.axis, left_axis).y(mark.value)
            parts.append(f'<line x1="{PLOT_LEFT}" y1="{y:.1f}" x2="{PLOT_RIGHT}" y2="{y:.1f}" '
                         f'stroke="{mark.color}" stroke-dasharray="6,3"/>')
    clipped = 0
    for s, colour in zip(series, colours):
        axis = axes.get(s.axis, left_axis)
        present = [(t, v) for t, v in s.points if v is not None]
        for run in _runs(present, s.period):
            if len(run) > 1:
                coords = " ".join(f"{x(t):.1f},{axis.y(v):.1f}" for t, v in run)
                parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.8" points="{coords}"/>')
        if len(present) <= _MAX_POINTS_DOTTED:
            parts += [f'<circle cx="{x(t):.1f}" cy="{axis.y(v):.1f}" r="2" fill="{colour}"/>' for t, v in present]
        over = [(t, v) for t, v in present if v > axis.top]
        clipped += len(over) if axis.clipped else 0
        parts += [f'<path d="M{x(t) - 4:.1f},{PLOT_TOP + 6} l4,-6 l4,6 z" fill="{colour}">'
                  f"<title>{v:g}, above the axis</title></path>" for t, v in over]
    # The legend, below the plot: one entry per line and per annotation, wrapped.
    entries = [(s.label, c, False) for s, c in zip(series, colours)]
    entries += [(m.label, m.color, True) for m in chart.marks]
    if clipped:
        entries.append((f"▲ {clipped} points above the axis's top ({_number(left_axis.top)}): "
                        "clipped, as the dashboard bounds it", "#333", False))
    row_y, cursor = PLOT_BOTTOM + 58, PLOT_LEFT
    for label, colour, dashed in entries:
        need = 24 + _width(label) + 16
        if cursor > PLOT_LEFT and cursor + need > PLOT_RIGHT + 60:
            row_y, cursor = row_y + 18, PLOT_LEFT
        parts.append(f'<line x1="{cursor:.1f}" y1="{row_y - 4}" x2="{cursor + 18:.1f}" y2="{row_y - 4}" '
                     f'stroke="{colour}" stroke-width="{1.5 if dashed else 3}"'
                     + (' stroke-dasharray="4,2"' if dashed else "") + "/>")
        parts.append(f'<text x="{cursor + 24:.1f}" y="{row_y}" font-size="{_FONT}" fill="{colour}">'
                     f"{html.escape(label)}</text>")
        cursor += need
    height = row_y + 10 if entries else PLOT_BOTTOM + 46
    title = f"<title>{html.escape(chart.title)}</title>" if chart.title else ""
    # A standalone chart (a file, not a page's) carries its title above the plot frame.
    top = 20 * len(chart.heading) + (6 if chart.heading else 0)
    bold = ' font-weight="bold"'
    heading = "".join(f'<text x="{_FRAME_X + PLOT_LEFT - 40:.0f}" y="{18 + 20 * i}" '
                      f'font-size="{_FONT + 3 if i == 0 else _FONT}" fill="#222" font-family="sans-serif"'
                      f'{bold if i == 0 else ""}>{html.escape(line)}</text>' for i, line in enumerate(chart.heading))
    background = f'<rect width="{_WIDTH}" height="{height + top:.0f}" fill="#fff"/>' if chart.heading else ""
    # In a page the chart takes the column's width; a file of its own gives its size, so that
    # an <img> of it has one (and is scaled down by the page's max-width).
    size = f'width="{_WIDTH}" height="{height + top:.0f}"' if chart.heading else 'width="100%"'
    return (f'<svg class="chart" viewBox="0 0 {_WIDTH} {height + top:.0f}" {size} '
            f'preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg" role="img">{title}'
            f'{background}{heading}<g transform="translate({_FRAME_X},{top})" font-family="sans-serif">\n'
            + "\n".join(parts) + "\n</g></svg>")
