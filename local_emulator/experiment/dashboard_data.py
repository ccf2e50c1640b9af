"""Read the run's CloudWatch dashboards back from the emulator, with every widget's data.

The local report draws the dashboard the stack deploys, widget for widget and metric for metric,
so it reads what a CloudWatch user would: `ListDashboards` and `GetDashboard` in each region of
the run, then, per metric widget, one `GetMetricData` call per region its metrics live in, one
`MetricDataQuery` per metric with the metric's (else the widget's) stat and period, over the
run's emulated wall-time window (`Clock.wall` of the run's first and last template second). The
body is read as "Dashboard Body Structure and Syntax" documents it:

- `widgets[]`, each with `type` `metric`, `alarm` or `text` (other types are listed as not drawn);
- a metric widget's `properties`: `metrics` (arrays `[Namespace, MetricName, DimName, DimValue,
  …, {rendering properties}]`, `"."` repeating the value above it, `"..."` the leading values of
  the row above, `[{"expression": …}]` for metric math), `region`, `stat` (default `Average`),
  `period` (default 300), `title`, `view`, `stacked`, `yAxis`, `annotations` (`horizontal`,
  `vertical`, `alarms`) and `legend`;
- rendering properties: `label`, `id`, `stat`, `period`, `region`, `color`, `visible`, `yAxis`;
- an alarm widget's `properties.alarms` (ARNs), a text widget's `properties.markdown`.

The window is the run's, whatever the body's own `start`/`end`/`periodOverride` say: the
report shows this run, each widget with its own period. What comes back is plain JSON (it goes into report.json as `dashboards`): each series' points
are `[template s, value]`, so the report can be drawn again from the file alone. A widget none
of whose visible metrics returned a datapoint in the run is *without data*:
`widgets_without_data` lists them, and a standard run must list none.
"""
from __future__ import annotations

import datetime as _dt
import json
import re
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

__all__ = ["read_dashboards", "read_widget", "parse_metrics", "widget_queries", "widgets_without_data",
           "widget_has_data",
           "DEFAULT_STAT", "DEFAULT_PERIOD"]

DEFAULT_STAT = "Average"   # the metric widget's `stat` when the body gives none
DEFAULT_PERIOD = 300       # its `period`

_DRAWN = ("metric", "alarm", "text")
_QUERY_ID = re.compile(r"^[a-z][a-zA-Z0-9_]*$")


def parse_metrics(rows: Sequence[Any]) -> List[Dict[str, Any]]:
    """The `metrics` array as one dict per row: namespace, metric, dimensions (name → value,
    in order), options (the rendering properties), or `expression` for a math row. `"."` takes
    the value at the same position in the row above; `"..."` the leading values of the row
    above, so that the values given after it end the row."""
    parsed: List[Dict[str, Any]] = []
    previous: List[Any] = []
    for row in rows:
        row = list(row)
        options = row.pop() if row and isinstance(row[-1], dict) else {}
        if "expression" in options and not row:
            parsed.append({"expression": options["expression"], "options": dict(options)})
            continue
        if row and row[0] == "...":
            rest = row[1:]
            row = previous[:max(len(previous) - len(rest), 0)] + rest
        row = [previous[i] if value == "." and i < len(previous) else value for i, value in enumerate(row)]
        previous = row
        names, values = row[2::2], row[3::2]
        parsed.append({"namespace": row[0] if row else "", "metric": row[1] if len(row) > 1 else "",
                       "dimensions": dict(zip(names, values)), "options": dict(options)})
    return parsed


def _label(row: Mapping[str, Any], stat: str, period: int, region: str, same_name: bool) -> str:
    """The legend label: the row's `label` with its ${PROP(…)} filled in; else, as CloudWatch
    labels an unlabelled metric, its name, with its dimension values when the widget holds
    another metric of the same name."""
    label = row["options"].get("label")
    if label is None:
        if "expression" in row:
            return row["options"].get("id") or row["expression"]
        label = row["metric"] + (f" ({', '.join(map(str, row['dimensions'].values()))})"
                                 if same_name and row["dimensions"] else "")
    props = {"MetricName": row.get("metric", ""), "Namespace": row.get("namespace", ""),
             "Region": region, "Stat": stat, "Period": str(period),
             **{f"Dim.{k}": str(v) for k, v in (row.get("dimensions") or {}).items()}}
    return re.sub(r"\$\{PROP\('([^']+)'\)\}", lambda m: props.get(m.group(1), m.group(0)), str(label))


def widget_queries(properties: Mapping[str, Any], default_region: str) -> List[Dict[str, Any]]:
    """One entry per row of a metric widget: its region, label, stat, period, axis, colour,
    visibility and the `MetricDataQuery` GetMetricData takes for it."""
    stat = properties.get("stat") or DEFAULT_STAT
    period = int(properties.get("period") or DEFAULT_PERIOD)
    region = properties.get("region") or default_region
    rows = parse_metrics(properties.get("metrics") or [])
    taken = {r["options"]["id"] for r in rows if r["options"].get("id")}
    names = [r.get("metric") for r in rows if "expression" not in r]
    out = []
    for index, row in enumerate(rows):
        options = row["options"]
        query_id = options.get("id")
        if not query_id or not _QUERY_ID.match(str(query_id)):
            query_id = next(f"q{index}_{n}" for n in range(len(rows) + 1) if f"q{index}_{n}" not in taken)
        row_stat, row_period = options.get("stat") or stat, int(options.get("period") or period)
        row_region = options.get("region") or region
        visible = options.get("visible", True) is not False
        query: Dict[str, Any] = {"Id": query_id, "ReturnData": True}
        if "expression" in row:
            query.update(Expression=row["expression"], Period=row_period)
        else:
            metric = {"Namespace": row["namespace"], "MetricName": row["metric"],
                      "Dimensions": [{"Name": str(k), "Value": str(v)} for k, v in row["dimensions"].items()]}
            query["MetricStat"] = {"Metric": metric, "Period": row_period, "Stat": row_stat}
        label = _label(row, row_stat, row_period, row_region, names.count(row.get("metric")) > 1)
        query["Label"] = label
        out.append({"id": query_id, "label": label, "region": row_region, "stat": row_stat,
                    "period": row_period, "axis": options.get("yAxis") or "left",
                    "color": options.get("color"), "visible": visible, "query": query,
                    **({"expression": row["expression"]} if "expression" in row else
                       {"namespace": row["namespace"], "metric": row["metric"],
                        "dimensions": {str(k): str(v) for k, v in row["dimensions"].items()}})})
    return out


class _Window:
    """The run's span: template seconds ↔ the emulated wall time metrics were stamped with."""

    def __init__(self, wall: Callable[[float], _dt.datetime], start: float, end: float) -> None:
        self.zero = wall(0.0)
        self.start, self.end = float(start), float(end)
        # GetMetricData's bounds, to the whole second (CloudWatch and moto drop the fraction).
        self.start_wall = wall(start).replace(microsecond=0)
        self.end_wall = wall(end).replace(microsecond=0) + _dt.timedelta(seconds=1)

    def template(self, stamp: _dt.datetime) -> float:
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=_dt.timezone.utc)
        return round((stamp - self.zero).total_seconds(), 3)

    def to_dict(self) -> Dict[str, Any]:
        return {"template_s": [self.start, self.end], "start": self.start_wall.isoformat(),
                "end": self.end_wall.isoformat()}


def _get_metric_data(client: Any, queries: List[Dict[str, Any]], window: _Window
                     ) -> Dict[str, Dict[str, Any]]:
    """GetMetricData for some queries (500 at most per call, every page): id → result."""
    results: Dict[str, Dict[str, Any]] = {}
    for first in range(0, len(queries), 500):
        kwargs: Dict[str, Any] = {"MetricDataQueries": queries[first:first + 500],
                                  "StartTime": window.start_wall, "EndTime": window.end_wall,
                                  "ScanBy": "TimestampAscending"}
        while True:
            answer = client.get_metric_data(**kwargs)
            for result in answer.get("MetricDataResults", []):
                found = results.setdefault(result["Id"], {"Timestamps": [], "Values": [],
                                                          "StatusCode": result.get("StatusCode"),
                                                          "Messages": []})
                found["Timestamps"] += list(result.get("Timestamps") or [])
                found["Values"] += list(result.get("Values") or [])
                found["Messages"] += list(result.get("Messages") or [])
            if not answer.get("NextToken"):
                break
            kwargs["NextToken"] = answer["NextToken"]
    return results


def _error(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    code = (response.get("Error") or {}).get("Code")
    message = (response.get("Error") or {}).get("Message") or str(exc)
    return f"{code}: {message}" if code else f"{type(exc).__name__}: {message}"


def _fill(series: List[Dict[str, Any]], client: Any, window: _Window) -> None:
    """Each series' points from one GetMetricData call; math rows that the call refuses are
    retried apart, so one expression the emulator cannot compute costs only its own line."""
    try:
        results = _get_metric_data(client, [s["query"] for s in series], window)
    except Exception as exc:  # noqa: BLE001 - every failure is shown in the report, by series
        plain = [s for s in series if "expression" not in s]
        if len(plain) == len(series):
            for s in series:
                s["error"] = _error(exc)
            results = {}
        else:
            for s in series:
                if "expression" in s:
                    s["error"] = f"not computed: {_error(exc)}"
            try:
                results = _get_metric_data(client, [s["query"] for s in plain], window) if plain else {}
            except Exception as again:  # noqa: BLE001
                for s in plain:
                    s["error"] = _error(again)
                results = {}
    for s in series:
        result = results.get(s["id"])
        if result is None:
            s.setdefault("points", [])
            continue
        pairs = sorted(zip(result["Timestamps"], result["Values"]), key=lambda p: p[0])
        s["points"] = [[window.template(t), float(v)] for t, v in pairs]
        if result.get("StatusCode") not in (None, "Complete"):
            s["status"] = result["StatusCode"]


def _alarm(clients: Callable[[str], Any], arn: str, default_region: str,
           window: _Window) -> Dict[str, Any]:
    """An alarm named by ARN: its definition, its state at the run's end, and how many of its
    metric's periods had data in the run (the alarm widget's "no data")."""
    parts = str(arn).split(":")
    region = parts[3] if len(parts) > 6 and parts[3] else default_region
    name = parts[-1] if ":alarm:" in str(arn) else str(arn)
    client = clients(region)
    found = client.describe_alarms(AlarmNames=[name]).get("MetricAlarms") or []
    if not found:
        return {"arn": arn, "name": name, "region": region, "found": False, "datapoints": 0}
    alarm = found[0]
    entry = {"arn": arn, "name": name, "region": region, "found": True, "state": alarm.get("StateValue"),
             "reason": alarm.get("StateReason"), "threshold": alarm.get("Threshold"),
             "operator": alarm.get("ComparisonOperator"), "statistic": alarm.get("Statistic")
             or alarm.get("ExtendedStatistic"), "period": alarm.get("Period"),
             "namespace": alarm.get("Namespace"), "metric": alarm.get("MetricName"),
             "dimensions": {d["Name"]: d["Value"] for d in alarm.get("Dimensions") or []},
             "evaluation_periods": alarm.get("EvaluationPeriods")}
    if alarm.get("StateUpdatedTimestamp"):
        entry["state_updated_s"] = window.template(alarm["StateUpdatedTimestamp"])
    if alarm.get("MetricName"):
        series = [{"id": "alarm", "label": f"{alarm['MetricName']} ({entry['statistic']})",
                   "region": region, "stat": entry["statistic"], "period": int(alarm.get("Period") or 60),
                   "axis": "left", "color": None, "visible": True,
                   "namespace": entry["namespace"], "metric": entry["metric"], "dimensions": entry["dimensions"],
                   "query": {"Id": "alarm", "ReturnData": True, "MetricStat": {
                       "Metric": {"Namespace": alarm["Namespace"], "MetricName": alarm["MetricName"],
                                  "Dimensions": alarm.get("Dimensions") or []},
                       "Period": int(alarm.get("Period") or 60), "Stat": entry["statistic"]}}}]
        _fill(series, client, window)
        entry["series"] = series[0]
        entry["datapoints"] = len(series[0].get("points") or [])
    else:
        entry["datapoints"] = None  # a metric-math alarm: its data is not read locally
    return entry


def _metric_widget(properties: Mapping[str, Any], region: str, clients: Callable[[str], Any],
                   window: _Window) -> Dict[str, Any]:
    series = widget_queries(properties, region)
    by_region: Dict[str, List[Dict[str, Any]]] = {}
    for s in series:
        by_region.setdefault(s["region"], []).append(s)
    for where, group in by_region.items():
        _fill(group, clients(where), window)
    annotations = properties.get("annotations") or {}
    alarms = [_alarm(clients, arn, properties.get("region") or region, window)
              for arn in annotations.get("alarms") or []]
    if not series:  # an alarm graph: the alarm's own metric
        series = [a["series"] for a in alarms if a.get("series")]
    return {"type": "metric", "title": properties.get("title") or "",
            "view": properties.get("view") or "timeSeries", "stacked": bool(properties.get("stacked")),
            "region": properties.get("region") or region,
            "stat": properties.get("stat") or DEFAULT_STAT,
            "period": int(properties.get("period") or DEFAULT_PERIOD),
            "yAxis": properties.get("yAxis") or {}, "legend": properties.get("legend") or {},
            "horizontal": [dict(a) for a in annotations.get("horizontal") or []],
            "vertical": [dict(a) for a in annotations.get("vertical") or []],
            "alarms": [{k: v for k, v in a.items() if k != "series"} for a in alarms],
            "series": [{k: v for k, v in s.items() if k != "query"} for s in series]}


def _vertical_times(widget: Dict[str, Any], window: _Window) -> None:
    """A vertical annotation's `value` (ISO 8601) as a template second, beside it."""
    for mark in widget.get("vertical", []):
        try:
            stamp = _dt.datetime.fromisoformat(str(mark.get("value")).replace("Z", "+00:00"))
            mark["template_s"] = window.template(stamp)
        except ValueError:
            mark["template_s"] = None


def read_widget(widget: Mapping[str, Any], region: str, clients: Callable[[str], Any],
                window: _Window) -> Dict[str, Any]:
    """One widget of a body with its data (see the module docstring)."""
    kind, properties = widget.get("type"), widget.get("properties") or {}
    try:
        if kind == "metric":
            out = _metric_widget(properties, region, clients, window)
            _vertical_times(out, window)
        elif kind == "alarm":
            out = {"type": "alarm", "title": properties.get("title") or "",
                   "alarms": [{k: v for k, v in _alarm(clients, arn, region, window).items() if k != "series"}
                              for arn in properties.get("alarms") or []]}
        elif kind == "text":
            out = {"type": "text", "markdown": str(properties.get("markdown") or "")}
        else:
            out = {"type": kind, "title": properties.get("title") or "",
                   "error": f"a {kind} widget is not drawn locally (the report draws metric, alarm "
                            "and text widgets)"}
    except Exception as exc:  # noqa: BLE001 - a widget that cannot be read is shown as such
        out = {"type": kind, "title": properties.get("title") or "", "error": _error(exc)}
    out["layout"] = {k: widget[k] for k in ("x", "y", "width", "height") if k in widget}
    return out


def _names(client: Any) -> List[str]:
    names, kwargs = [], {}
    while True:
        page = client.list_dashboards(**kwargs)
        names += [d["DashboardName"] for d in page.get("DashboardEntries", [])]
        if not page.get("NextToken"):
            return names
        kwargs["NextToken"] = page["NextToken"]


def read_dashboards(clients: Callable[[str], Any], regions: Iterable[str],
                    wall: Callable[[float], _dt.datetime], start: float, end: float
                    ) -> List[Dict[str, Any]]:
    """Every dashboard of every region, each widget with its data over template [start, end].

    `clients(region)` is a boto3 CloudWatch client of that region (the emulator's); `wall` maps a
    template second to the emulated UTC time metrics were stamped with (`Clock.wall`). A region
    whose dashboards cannot be listed is reported with the error, never raised: the report of a
    finished run must still be written."""
    window = _Window(wall, start, end)
    out = []
    for region in regions:
        try:
            client = clients(region)
            names = _names(client)
        except Exception as exc:  # noqa: BLE001
            out.append({"name": None, "region": region, "error": _error(exc), "widgets": [],
                        "window": window.to_dict()})
            continue
        for name in names:
            try:
                body = json.loads(client.get_dashboard(DashboardName=name)["DashboardBody"])
            except Exception as exc:  # noqa: BLE001
                out.append({"name": name, "region": region, "error": _error(exc), "widgets": [],
                            "window": window.to_dict()})
                continue
            widgets = sorted(body.get("widgets") or [], key=lambda w: (w.get("y", 0), w.get("x", 0)))
            out.append({"name": name, "region": region, "window": window.to_dict(),
                        "widgets": [read_widget(w, region, clients, window) for w in widgets]})
    return out


def widget_has_data(widget: Mapping[str, Any]) -> Tuple[bool, str]:
    kind = widget.get("type")
    if widget.get("error"):
        return False, widget["error"]
    if kind == "text":
        return True, ""
    if kind == "alarm":
        missing = [a["name"] for a in widget.get("alarms", []) if not a.get("found")]
        empty = [a["name"] for a in widget.get("alarms", []) if a.get("found") and a.get("datapoints") == 0]
        if not widget.get("alarms"):
            return False, "no alarms listed"
        if missing:
            return False, f"alarm not found: {', '.join(missing)}"
        if len(empty) == len(widget["alarms"]):
            return False, f"no datapoint of the alarms' metrics in the run: {', '.join(empty)}"
        return True, ""
    visible = [s for s in widget.get("series", []) if s.get("visible", True)]
    if not visible:
        return False, "no visible metric"
    if any(s.get("points") for s in visible):
        return True, ""
    errors = sorted({s["error"] for s in visible if s.get("error")})
    if errors:
        return False, "; ".join(errors)
    labels = [s["label"] for s in visible]
    if len(labels) > 3:
        return False, (f"no datapoint in the run for any of its {len(labels)} metrics "
                       f"({', '.join(labels[:3])}, …)")
    return False, "no datapoint in the run for " + ", ".join(labels)


def widgets_without_data(dashboards: Sequence[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    """The widgets that showed nothing in the run, each with why: `{"dashboard", "region",
    "widget" (its index in the body, top to bottom), "title", "type", "reason"}`. A dashboard
    that could not be read counts as one entry with widget None."""
    gaps = []
    for dashboard in dashboards:
        if dashboard.get("error"):
            gaps.append({"dashboard": dashboard.get("name"), "region": dashboard.get("region"),
                         "widget": None, "title": "", "type": None, "reason": dashboard["error"]})
        for index, widget in enumerate(dashboard.get("widgets", [])):
            ok, reason = widget_has_data(widget)
            if not ok:
                gaps.append({"dashboard": dashboard.get("name"), "region": dashboard.get("region"),
                             "widget": index, "title": widget.get("title") or "", "type": widget.get("type"),
                             "reason": reason})
    return gaps
