"""Charts of the run drawn from the load's own records, for a run with no dashboard to draw.

The report draws the deployed CloudWatch dashboard when there is one (dashboard_html.py). A run
on a deployment without one (or a report built in a test from records alone) still shows what
the blog's dashboard shows, from the requests themselves: latency as the clients saw it, status
codes by class, the requests each region answered (a failed request is no region's answer: it
is counted in the status codes) and Route 53's health check status.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from local_emulator.experiment.charts import Band, Chart, Series, render_chart

__all__ = ["record_charts", "bucket_length"]

_BUCKETS = (5, 10, 15, 20, 30, 60, 120, 300, 600)
_CLASSES = (("2xx", "#2ca02c"), ("4xx", "#ff7f0e"), ("5xx", "#d62728"), ("no answer", "#7f7f7f"))


def bucket_length(span_s: float) -> int:
    """The bucket, in template seconds: the shortest usual period giving at most 40 per run."""
    return next((b for b in _BUCKETS if span_s / b <= 40), _BUCKETS[-1])


def _class(status: Optional[int]) -> str:
    if not status:
        return "no answer"
    return f"{int(status) // 100}xx" if 200 <= status < 600 else "no answer"


def _percentile(values: Sequence[float], q: float) -> Optional[float]:
    from local_emulator.experiment.report import percentile  # one definition of percentiles
    return percentile(values, q)


def _buckets(records: Sequence[Mapping[str, Any]], key: Callable[[Mapping[str, Any]], Optional[str]],
             bucket: int, start: float, end: float,
             value: Callable[[List[Mapping[str, Any]]], Optional[float]]) -> Dict[str, List[Tuple[float, Optional[float]]]]:
    """Per group (`key(record)`; None: in no group), one point per bucket: `value(rows)`."""
    groups: Dict[str, Dict[int, List[Mapping[str, Any]]]] = {}
    for r in records:
        label = key(r)
        if label:
            groups.setdefault(label, {}).setdefault(int(r["at"] // bucket), []).append(r)
    # Buckets that start within the run (one starting at its very end would hold next to nothing).
    first, last = int(start // bucket), math.ceil(end / bucket) - 1
    return {label: [(i * bucket, value(rows.get(i, []))) for i in range(first, last + 1)]
            for label, rows in sorted(groups.items())}


def _health(report: Mapping[str, Any], bucket: int, start: float, end: float):
    series = {}
    for region, checks in (report.get("health_checks") or {}).items():
        moves = sorted(checks.get("transitions", []))
        points = []
        for i in range(int(start // bucket), math.ceil(end / bucket)):
            healthy = True
            for at, state in moves:
                if at <= i * bucket:
                    healthy = bool(state)
            points.append((i * bucket, 1.0 if healthy else 0.0))
        series[region] = points
    return series


def record_charts(report: Mapping[str, Any], records: Sequence[Mapping[str, Any]],
                  bands: List[Band]) -> List[Tuple[str, str, str]]:
    """(title, what it plots, <svg>) per chart."""
    phases = report["phases"]
    start, end = phases["pre"][0], phases["post"][1]
    bucket = bucket_length(end - start)

    def chart(title: str, series: Mapping[str, List[Tuple[float, Optional[float]]]], y_label: str,
              suffix: str = "", latency: bool = False, colours: Optional[Mapping[str, str]] = None) -> str:
        lines = [Series(label + suffix, points, (colours or {}).get(label)) for label, points in series.items()]
        return render_chart(Chart(lines, start, end, phases=phases, bands=bands, y_label=y_label,
                                  latency=latency, title=title))

    def p50_ok(rows):
        return _percentile([r["latency_ms"] for r in rows if 200 <= (r.get("status") or 0) < 300], 50)

    classes = _buckets(records, lambda r: _class(r.get("status")), bucket, start, end, len)
    order = [name for name, _ in _CLASSES if name in classes]
    per = f"per {bucket} s bucket"
    return [
        ("p50 latency of successful /hello requests, per client region",
         f"p50 {per}, template ms", chart("p50 latency of successful /hello requests",
                                         _buckets(records, lambda r: r.get("client_region"), bucket, start, end,
                                                  p50_ok), "ms", " clients", latency=True)),
        ("/hello status codes by class (status_2xx, status_4xx, status_5xx)", f"requests {per}, all clients",
         chart("/hello status codes by class", {name: classes[name] for name in order}, "requests",
               colours=dict(_CLASSES))),
        ("/hello requests answered by each region (region_<region>)",
         f"requests {per}; a failed request is no region's answer (see the status codes)",
         chart("/hello requests answered by each region",
               _buckets(records, lambda r: r.get("served_region"), bucket, start, end, len), "requests")),
        ("Route 53 health check status (1 healthy, 0 unhealthy)", f"status at the start of each {bucket} s bucket",
         chart("Route 53 health check status", _health(report, bucket, start, end), "healthy")),
    ]
