"""The dashboards of the run as HTML: each widget in the body's order, each at full width.

Reads what dashboard_data.read_dashboards stored in the report (`report["dashboards"]`), so a
report.json draws the same page again. A metric widget is one chart (charts.py) whose subtitle
says the statistic and the bucket ("Sum per 60 s bucket": the widget's period, or each
metric's own), with the span the fault was attached shaded and the run's phases below; an alarm
widget is a row per alarm with its state at the run's end and its threshold; a text widget is
its markdown as text. A widget that showed nothing in the run says so where it stands, in the
words `widgets_without_data` stores.
"""
from __future__ import annotations

import html
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from local_emulator.experiment.charts import Band, Chart, Mark, Series, render_chart
from local_emulator.experiment.dashboard_data import widget_has_data

__all__ = ["render_dashboards", "render_widget", "chart_svg", "whole_periods", "is_latency", "bucket_words"]

_LATENCY = re.compile(r"latency|duration|_ms\b|\bms\b|response.?time", re.IGNORECASE)
_STATUS_CLASS = re.compile(r"(?:^|_)([245])xx", re.IGNORECASE)
_CLASS_COLOURS = {"2": "#2ca02c", "4": "#ff7f0e", "5": "#d62728"}
_OPERATORS = {"GreaterThanThreshold": ">", "GreaterThanOrEqualToThreshold": "≥",
              "LessThanThreshold": "<", "LessThanOrEqualToThreshold": "≤"}


def is_latency(widget: Mapping[str, Any], side: str = "left") -> bool:
    """Whether one axis of a widget plots times (its metrics, their labels or the axis's label
    say so): such an axis may be drawn on a log scale (charts.py says why)."""
    words = [str(((widget.get("yAxis") or {}).get(side) or {}).get("label") or "")]
    words += [str(s.get(k) or "") for s in widget.get("series", []) if (s.get("axis") or "left") == side
              for k in ("metric", "label")]
    return any(_LATENCY.search(w) for w in words)


def bucket_words(widget: Mapping[str, Any]) -> str:
    """"Sum per 60 s bucket", or each statistic and bucket when the metrics differ."""
    shown = [s for s in widget.get("series", []) if s.get("visible", True)]
    pairs = sorted({(str(s.get("stat")), int(s.get("period") or 0)) for s in shown})
    if not pairs:
        pairs = [(str(widget.get("stat")), int(widget.get("period") or 0))]
    return "; ".join(f"{stat} per {period} s bucket" for stat, period in pairs)


def _marks(widget: Mapping[str, Any]) -> List[Mark]:
    marks = []
    for a in widget.get("horizontal", []):
        if a.get("visible", True) is False or a.get("value") is None:
            continue
        marks.append(Mark(f"{a.get('label') or 'annotation'} ({a['value']:g})", float(a["value"]),
                          color=a.get("color") or "#d62728", axis=a.get("yAxis") or "left"))
    for a in widget.get("vertical", []):
        if a.get("visible", True) is False or a.get("template_s") is None:
            continue
        t = a["template_s"]
        marks.append(Mark(f"{a.get('label') or 'annotation'} (at {int(t // 60)}:{int(t % 60):02d})", t,
                          vertical=True, color=a.get("color") or "#555555"))
    for alarm in widget.get("alarms", []):
        if alarm.get("found") and alarm.get("threshold") is not None:
            marks.append(Mark(f"alarm {alarm['name']}: {_OPERATORS.get(alarm.get('operator'), alarm.get('operator'))} "
                              f"{alarm['threshold']:g}", float(alarm["threshold"])))
    return marks


def whole_periods(series: Mapping[str, Any], start: float, end: float) -> List[Tuple[float, float]]:
    """A series' points of the periods the run covers whole: the run's first and last periods
    are cut by its edges, and a Sum over a part of one reads as a fall that never happened.
    (report.json keeps every point GetMetricData returned.)"""
    period = float(series.get("period") or 0)
    return [(t, v) for t, v in series.get("points") or [] if t >= start - 1 and t + period <= end + 1]


def _class_colour(series: Mapping[str, Any]) -> Optional[str]:
    """A status class's colour for a metric that counts one (status_2xx, 4XXError, 5XXError)
    and has none of its own: 2xx green, 4xx orange, 5xx red, as the eye expects."""
    found = _STATUS_CLASS.search(str(series.get("metric") or ""))
    return _CLASS_COLOURS.get(found.group(1)) if found else None


def _axis_words(widget: Mapping[str, Any], side: str) -> str:
    axis = (widget.get("yAxis") or {}).get(side) or {}
    return str(axis.get("label") or "")


def chart_svg(widget: Mapping[str, Any], report: Mapping[str, Any], bands: List[Band],
              standalone: bool = False) -> str:
    """A metric widget's chart; `standalone` (a file of its own) carries its title and what it
    plots inside the SVG."""
    phases = report["phases"]
    start, end = phases["pre"][0], phases["post"][1]
    series = [Series(s["label"], whole_periods(s, start, end), s.get("color") or _class_colour(s),
                     "right" if s.get("axis") == "right" else "left", float(s.get("period") or 0) or None)
              for s in widget.get("series", []) if s.get("visible", True)]
    y_axis = widget.get("yAxis") or {}
    chart = Chart(series, phases["pre"][0], phases["post"][1], phases=phases, bands=bands,
                  marks=_marks(widget), y_label=_axis_words(widget, "left"),
                  right_label=_axis_words(widget, "right"), latency=is_latency(widget),
                  right_latency=is_latency(widget, "right"),
                  y_max=(y_axis.get("left") or {}).get("max"), right_max=(y_axis.get("right") or {}).get("max"),
                  stacked=bool(widget.get("stacked")), title=widget.get("title") or "",
                  heading=(widget.get("title") or "", _what(widget) + " · template time, the fault's span shaded")
                  if standalone else ())
    return render_chart(chart)


def _what(widget: Mapping[str, Any]) -> str:
    """What a metric widget plots: its statistics and buckets, and its regions."""
    regions = sorted({s.get("region") for s in widget.get("series", []) if s.get("region")})
    return f"{bucket_words(widget)} · {', '.join(regions)}"


def _single_values(widget: Mapping[str, Any]) -> str:
    rows = []
    for s in widget.get("series", []):
        if not s.get("visible", True):
            continue
        points = s.get("points") or []
        last = f"{points[-1][1]:g}" if points else "no data"
        peak = f"{max(v for _, v in points):g}" if points else "-"
        rows.append(f"<tr><td>{html.escape(s['label'])}</td><td>{last}</td><td>{peak}</td></tr>")
    return ("<table class='values'><tr><th>metric</th><th>last value</th><th>highest in the run</th></tr>"
            + "".join(rows) + "</table>")


def _alarms(widget: Mapping[str, Any], stop: Optional[Mapping[str, Any]]) -> str:
    """A row per alarm: its state at the run's end, its rule, its data; for the experiment's
    stop condition (`stop`, report["alarm"]), whether and when it fired during the run."""
    rows = []
    for a in widget.get("alarms", []):
        if not a.get("found"):
            rows.append(f"<tr><td>{html.escape(a['name'])}</td><td class='bad'>not found in "
                        f"{html.escape(a['region'])}</td><td></td><td></td></tr>")
            continue
        rule = (f"{a.get('statistic')} of {a.get('metric')} per {a.get('period')} s "
                f"{_OPERATORS.get(a.get('operator'), a.get('operator'))} {a.get('threshold'):g} "
                f"for {a.get('evaluation_periods')} periods") if a.get("metric") else "metric math"
        data = "no datapoint in the run" if a.get("datapoints") == 0 else (
            "" if a.get("datapoints") is None else f"{a['datapoints']} periods with data")
        if stop and stop.get("name") == a["name"]:
            data += ("; the stop condition: fired at " + format(stop["fired_at"], ".0f") + " s"
                     if stop.get("fired") else "; the stop condition: never fired during the run")
        rows.append(f"<tr><td>{html.escape(a['name'])}</td><td class='state-{html.escape(str(a.get('state')))}'>"
                    f"{html.escape(str(a.get('state')))}</td><td>{html.escape(rule)}</td>"
                    f"<td>{html.escape(data)}</td></tr>")
    return ("<table class='alarms'><tr><th>alarm</th><th>state at the run's end</th><th>fires when</th>"
            "<th>data</th></tr>" + "".join(rows) + "</table>")


def _markdown(text: str) -> str:
    """A text widget's markdown, as plain HTML: headings, list items and paragraphs; links
    keep their words and address."""
    out = []
    for line in text.splitlines():
        words = html.escape(re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r"\1 (\2)", line.strip()))
        words = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", words)
        if not words:
            continue
        heading = re.match(r"^(#{1,6})\s*(.*)$", words)
        if heading:
            out.append(f"<h4>{heading.group(2)}</h4>")
        elif re.match(r"^[-*]\s", words):
            out.append(f"<p class='item'>• {words[2:]}</p>")
        else:
            out.append(f"<p>{words}</p>")
    return "".join(out)


def render_widget(widget: Mapping[str, Any], report: Mapping[str, Any], bands: List[Band],
                  expected: str = "") -> str:
    """One widget as a <section>: its title, what it plots, then the chart, table or text.
    `expected`: why this widget is empty by design in the run (report.py's
    widgets_quiet_by_design), shown instead of the red "no data"."""
    kind = widget.get("type")
    ok, reason = widget_has_data(widget)
    title = html.escape(widget.get("title") or {"alarm": "Alarms", "text": ""}.get(kind, f"({kind} widget)"))
    heading = f"<h3>{title}</h3>" if title else ""
    if ok:
        empty = ""
    elif expected:
        empty = f"<p class='what'>No data, as expected: {html.escape(expected)}</p>"
    else:
        empty = f"<p class='no-data'>No data in this run: {html.escape(reason)}</p>"
    if kind == "text":
        return f"<section class='widget text'>{_markdown(widget.get('markdown', ''))}</section>"
    if kind == "alarm":
        return f"<section class='widget alarm'>{heading}{empty}{_alarms(widget, report.get('alarm'))}</section>"
    if kind != "metric" or widget.get("error"):
        return f"<section class='widget'>{heading}{empty}</section>"
    view = widget.get("view") or "timeSeries"
    words = _what(widget)
    if view in ("singleValue", "gauge"):
        return (f"<section class='widget'>{heading}<p class='what'>{html.escape(words)} · the dashboard "
                f"shows it as a {html.escape(view)}</p>{empty}{_single_values(widget)}</section>")
    if view not in ("timeSeries",):
        words += f" · drawn as a time series (the dashboard shows it as {view})"
    if widget.get("stacked"):
        words += " · stacked"
    failed = [f"{s['label']}: {s['error']}" for s in widget.get("series", []) if s.get("error")]
    notes = "".join(f"<p class='no-data'>{html.escape(f)}</p>" for f in failed if ok)
    return (f"<section class='widget metric'>{heading}<p class='what'>{html.escape(words)}</p>{empty}{notes}"
            f"{chart_svg(widget, report, bands)}</section>")


def render_dashboards(report: Mapping[str, Any], bands: List[Band]) -> List[str]:
    """Every dashboard of the report, headed by its name and region and the window it read."""
    parts = []
    for dashboard in report.get("dashboards") or []:
        window = dashboard.get("window") or {}
        parts.append(f"<div class='dashboard'><h2>Dashboard {html.escape(str(dashboard.get('name')))} "
                     f"({html.escape(str(dashboard.get('region')))})</h2>"
                     f"<p class='what'>Read from the emulator's CloudWatch with GetMetricData over "
                     f"{html.escape(str(window.get('start')))} → {html.escape(str(window.get('end')))} "
                     "(emulated UTC); drawn over template time, the span the fault was attached shaded.</p>")
        if dashboard.get("error"):
            parts.append(f"<p class='no-data'>Could not be read: {html.escape(dashboard['error'])}</p>")
        quiet = {q["widget"]: q["reason"] for q in report.get("widgets_quiet_by_design") or []
                 if (q["dashboard"], q["region"]) == (dashboard.get("name"), dashboard.get("region"))}
        parts += [render_widget(w, report, bands, quiet.get(i, ""))
                  for i, w in enumerate(dashboard.get("widgets", []))]
        parts.append("</div>")
    return parts
