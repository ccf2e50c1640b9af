"""The sample application's CloudWatch dashboard, defined once: the blog's "observe" step.

`dashboard_body()` builds the standard CloudWatch dashboard body (the `DashboardBody` JSON of
PutDashboard and of `AWS::CloudWatch::Dashboard`) from explicit values. Two places use it:

* `cloudformation/render.py` renders it into `sample_app/template.yaml` as one `Fn::Sub`
  string, the values being `${HelloFunction}`-style references (deploy.sh, AWS and `--local`);
* the local twin may call it with concrete values (names, ids, ARNs) to get the identical body,
  or read the deployed one back with `get_dashboard`.

Every widget is a plain metric array with explicit options (stat, period, label, region): no
SEARCH expressions and no `"..."` shorthand, so the local report can draw the very same body
from the emulator's GetMetricData. Where each metric is published (CloudWatch and Route 53
docs): Route 53 health-check metrics only in us-east-1, whatever the check's region; the
simulator's and the layer's embedded-metric-format lines in the region of the function that
wrote them; AWS/Lambda and AWS/ApiGateway in the function's and API's region. So every widget
names its region, and a widget never mixes regions.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

__all__ = ["LOADGEN_NAMESPACE", "API_DIMENSION", "DEFAULT_PATHS", "STATUS_METRICS",
           "LATENCY_METRIC", "LATENCY_STATS", "LAMBDA_METRICS", "CHAOS_NAMESPACE",
           "CHAOS_METRICS", "CHAOS_DIMENSIONS", "FAULT_TYPES", "ROUTE53_REGION", "PERIOD",
           "StopAlarm", "region_metric", "dashboard_name", "dashboard_arn", "dashboard_body",
           "metrics_named"]

_SETTINGS = json.loads((Path(__file__).resolve().parent.parent / "layer" / "settings.json")
                       .read_text(encoding="utf-8"))

# --- what the customer simulator (sample_app/simulator.py) publishes -------------------------
LOADGEN_NAMESPACE = "LoadGen"          # SIMULATOR_NAMESPACE's default
API_DIMENSION = "Api"                  # its one dimension: the path called, e.g. "/hello"
DEFAULT_PATHS: Tuple[str, ...] = ("/hello",)  # SIMULATOR_PATHS's default
STATUS_METRICS: Tuple[str, ...] = ("status_2xx", "status_4xx", "status_5xx")  # Count
LATENCY_METRIC = "Latency"             # Milliseconds, from the scheduled send time
LATENCY_STATS: Tuple[str, ...] = ("p50", "p99")

# --- what Lambda publishes for the app's functions (AWS/Lambda, dimension FunctionName) ------
LAMBDA_METRICS: Tuple[Tuple[str, str], ...] = (("Duration", "p99"), ("Errors", "Sum"),
                                               ("Throttles", "Sum"))

# --- what the chaos layer publishes (layer/internal/metrics/metrics.go) ----------------------
CHAOS_NAMESPACE: str = next(s["default"] for s in _SETTINGS["settings"]
                            if s["constant"] == "METRICS_NAMESPACE")
CHAOS_METRICS: Tuple[str, ...] = ("InjectedFaults", "InjectedMilliseconds")
CHAOS_DIMENSIONS: Tuple[str, ...] = ("FunctionName", "FaultType")
FAULT_TYPES: Tuple[str, ...] = tuple(_SETTINGS["fault_types"])

ROUTE53_REGION = "us-east-1"  # "Route 53 health check metrics are available only in us-east-1"
PERIOD = 60                   # Route 53 and the simulator both publish per minute
_WIDTH, _HEIGHT = 12, 6       # two widgets a row on the 24-unit grid


@dataclass(frozen=True)
class StopAlarm:
    """The experiments' stop-condition alarm, as its widget draws it: its ARN and its metric
    (the sample app's HelloErrorsAlarm: AWS/ApiGateway 5XXError of GET /hello)."""

    arn: str
    namespace: str
    metric: str
    dimensions: Tuple[Tuple[str, str], ...]
    stat: str
    period: int
    threshold: float
    name: str = field(default="")

    @property
    def label(self) -> str:
        return self.name or self.arn.rsplit(":alarm:", 1)[-1]

    @classmethod
    def from_metric_alarm(cls, alarm: Mapping[str, Any]) -> "StopAlarm":
        """From one `MetricAlarms` entry of DescribeAlarms (what the local twin reads back)."""
        return cls(arn=alarm["AlarmArn"], namespace=alarm["Namespace"],
                   metric=alarm["MetricName"],
                   dimensions=tuple((d["Name"], d["Value"]) for d in alarm.get("Dimensions", [])),
                   stat=alarm["Statistic"], period=int(alarm["Period"]),
                   threshold=float(alarm["Threshold"]), name=alarm["AlarmName"])


def region_metric(region: str) -> str:
    """The simulator's count of answers served by `region` ("Hello from region {region}")."""
    return f"region_{region}"


def dashboard_name(stack_name: str, region: str) -> str:
    """Dashboards are global to the account and the app is one stack per region under the same
    stack name, so the region is part of the name."""
    return f"{stack_name}-{region}"


def dashboard_arn(partition: str, account: str, name: str) -> str:
    """A dashboard's ARN has no region (dashboards are global)."""
    return f"arn:{partition}:cloudwatch::{account}:dashboard/{name}"


def dashboard_body(*, region: str, app_regions: Sequence[str],
                   health_checks: Mapping[str, str], functions: Sequence[str],
                   alarm: StopAlarm, paths: Sequence[str] = DEFAULT_PATHS,
                   loadgen_namespace: str = LOADGEN_NAMESPACE,
                   chaos_namespace: str = CHAOS_NAMESPACE) -> Dict[str, Any]:
    """The dashboard body (a dict: `json.dumps` it for PutDashboard) of the app in `region`.

    `app_regions`: every region the app (and a simulator) runs in, this one included; each gets
    its clients' widgets (requests by serving region, status codes, latency), read in that
    region. `health_checks`: region -> Route 53 health check id; a region without one has no
    health line. `functions`: this region's app function names (Lambda metrics, injected
    faults). Raises ValueError naming a missing or unknown value.
    """
    regions = list(dict.fromkeys([*app_regions, region]))
    unknown = sorted(set(health_checks) - set(regions))
    if unknown:
        raise ValueError(f"health checks given for {', '.join(unknown)}, which is not in "
                         f"app_regions {regions}; add it to app_regions")
    if not functions or not paths:
        raise ValueError("dashboard_body needs at least one function name and one path")
    widgets: List[Dict[str, Any]] = []
    widgets.append(_metric_widget(
        "Route 53 HealthCheckStatus (1 healthy, 0 unhealthy)", ROUTE53_REGION, "Minimum",
        [["AWS/Route53", "HealthCheckStatus", "HealthCheckId", health_checks[r],
          _options(f"health check {r}", "Minimum", ROUTE53_REGION)]
         for r in regions if r in health_checks], y_max=1))
    for client in regions:
        widgets.append(_metric_widget(
            f"Requests served per region (clients in {client})", client, "Sum",
            [[loadgen_namespace, region_metric(served), API_DIMENSION, path,
              _options(f"{path} served by {served}", "Sum", client)]
             for path in paths for served in regions]))
        widgets.append(_metric_widget(
            f"Status codes (clients in {client})", client, "Sum",
            [[loadgen_namespace, status, API_DIMENSION, path,
              _options(f"{path} {status}", "Sum", client)]
             for path in paths for status in STATUS_METRICS]))
        widgets.append(_metric_widget(
            f"Latency as customers saw it, ms (clients in {client})", client, LATENCY_STATS[0],
            [[loadgen_namespace, LATENCY_METRIC, API_DIMENSION, path,
              _options(f"{path} {stat}", stat, client)]
             for path in paths for stat in LATENCY_STATS]))
    for metric, stat in LAMBDA_METRICS:
        widgets.append(_metric_widget(
            f"Lambda {metric} ({stat}) in {region}", region, stat,
            [["AWS/Lambda", metric, "FunctionName", name, _options(name, stat, region)]
             for name in functions]))
    widgets.append(_metric_widget(
        f"Faults the chaos layer injected ({chaos_namespace}) in {region}", region, "Sum",
        [[chaos_namespace, "InjectedFaults", "FunctionName", name, "FaultType", fault,
          _options(f"{name} {fault}", "Sum", region)]
         for name in functions for fault in FAULT_TYPES]))
    widgets.append(_metric_widget(
        f"Latency the chaos layer injected, ms (Average) in {region}", region, "Average",
        [[chaos_namespace, "InjectedMilliseconds", "FunctionName", name, "FaultType", "latency",
          _options(name, "Average", region)] for name in functions]))
    dims = [part for pair in alarm.dimensions for part in pair]
    stop = _metric_widget(
        f"Stop condition: {alarm.label}", region, alarm.stat,
        [[alarm.namespace, alarm.metric, *dims,
          _options(f"{alarm.metric} ({alarm.stat})", alarm.stat, region, alarm.period)]])
    stop["properties"]["annotations"] = {"horizontal": [
        {"label": f"{alarm.label} threshold", "value": alarm.threshold}]}
    widgets.append(stop)
    widgets.append({"type": "alarm", "properties": {
        "title": f"Stop-condition alarm state ({region})", "alarms": [alarm.arn]}})
    for index, widget in enumerate(widgets):
        widget.update(x=(index % 2) * _WIDTH, y=(index // 2) * _HEIGHT, width=_WIDTH,
                      height=_HEIGHT)
    return {"start": "-PT3H", "periodOverride": "inherit", "widgets": widgets}


def metrics_named(body: Mapping[str, Any]) -> List[Tuple[str, str, Dict[str, str], str]]:
    """Every (namespace, metric, dimensions, region) the body's metric widgets plot."""
    found = []
    for widget in body["widgets"]:
        if widget["type"] != "metric":
            continue
        props = widget["properties"]
        for entry in props.get("metrics", []):
            *names, options = entry
            namespace, metric, *dims = names
            found.append((namespace, metric, dict(zip(dims[::2], dims[1::2])),
                          options.get("region", props["region"])))
    return found


def _options(label: str, stat: str, region: str, period: int = PERIOD) -> Dict[str, Any]:
    return {"label": label, "stat": stat, "period": period, "region": region}


def _metric_widget(title: str, region: str, stat: str, metrics: List[list],
                   y_max: Optional[float] = None) -> Dict[str, Any]:
    y_axis: Dict[str, Any] = {"min": 0}
    if y_max is not None:
        y_axis["max"] = y_max
    return {"type": "metric", "properties": {
        "title": title, "view": "timeSeries", "stacked": False, "region": region, "stat": stat,
        "period": PERIOD, "metrics": metrics, "yAxis": {"left": y_axis}}}
