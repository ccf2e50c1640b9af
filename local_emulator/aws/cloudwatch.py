"""CloudWatch in the emulator: publish the load's counts, and evaluate alarms moto only stores.

moto keeps metric data and alarm definitions but never evaluates an alarm, and a stop condition
is only as real as the alarm behind it. `AlarmEvaluator` therefore does what CloudWatch does,
from the alarm's own definition, reading the data back from moto (so the metrics really were
published and really are what the alarm sees):

- the last `EvaluationPeriods` complete periods of `Period` seconds, aligned to the UTC epoch
  as CloudWatch aligns them, each reduced with the alarm's `Statistic`;
- a period *breaches* when `value <op> Threshold` holds; ALARM when at least
  `DatapointsToAlarm` (default: `EvaluationPeriods`) of them breach, otherwise OK;
- missing periods follow `TreatMissingData`: `notBreaching` counts them as good, `breaching` as
  bad, `missing`/`ignore` (default) leave them out — and with no data at all the alarm is
  INSUFFICIENT_DATA;
- the new state is written with `SetAlarmState` only when it changes, with a reason naming
  the datapoints, so `describe_alarms` (what the FIS runner reads) tells the truth.

Timestamps are the emulated wall time of template time (`Clock.wall`), so "5 minutes" of
alarm period means 5 template minutes. The emulator's moto matches a query's dimensions exactly,
as CloudWatch does (local_emulator/aws/moto_cloudwatch.py), so a publisher writes every
dimension set the service it stands for publishes, each its own series.
"""
from __future__ import annotations

import datetime as _dt
import threading
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from local_emulator.clock import Clock

__all__ = ["MetricsPublisher", "AlarmEvaluator", "AlarmVerdict", "breaches",
           "put_in_batches", "MAX_VALUES_PER_DATUM", "MAX_DATUMS_PER_CALL"]

# PutMetricData's limits ("PutMetricData", CloudWatch API Reference): 150 values in one
# datum's Values array, 1,000 datums in one request.
MAX_VALUES_PER_DATUM = 150
MAX_DATUMS_PER_CALL = 1000
# 1 MB per request: a value costs ~40 bytes on the wire with its count; well below it.
MAX_VALUES_PER_CALL = 10000

_OPERATORS = {
    "GreaterThanThreshold": lambda v, t: v > t,
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}


def breaches(operator: str, value: float, threshold: float) -> bool:
    """Whether one period's value breaches the threshold under a CloudWatch operator."""
    try:
        return _OPERATORS[operator](value, threshold)
    except KeyError:
        raise ValueError(f"comparison operator {operator!r} is not supported locally; use one of "
                         f"{', '.join(_OPERATORS)}") from None


class MetricsPublisher:
    """Collects values per (template) period and writes them to the emulator with PutMetricData.

    `add("status_5xx", at)` counts one; `add("Latency", at, 312.0, dims, "Milliseconds")`
    records a value. Each (metric, dimensions, unit, period of `resolution_s`) is sent as its
    distinct values with their counts (`Values`/`Counts`, at most 150 per datum), so every
    statistic an alarm or a dashboard asks for, percentiles included, sees what CloudWatch
    would have seen had every value been sent alone (a statistic set would rule percentiles
    out). `flush()` (every few seconds, and at the end) sends what has accumulated, at most
    1000 datums per call; each bucket's timestamp is its start, so a late flush still lands
    each value in the right period.
    """

    def __init__(self, aws: Any, region: str, clock: Clock, namespace: str = "LoadGen",
                 dimensions: Optional[Sequence[Mapping[str, str]]] = None,
                 resolution_s: float = 10.0) -> None:
        self.client = aws.client("cloudwatch", region)
        self.clock = clock
        self.namespace = namespace
        self.dimensions = tuple((d["Name"], d["Value"]) for d in dimensions or [])
        self.resolution_s = resolution_s
        self._pending: Dict[Tuple[str, Tuple[Tuple[str, str], ...], str, float], Dict[float, int]] = {}
        self._lock = threading.Lock()
        self.published = 0

    def add(self, metric: str, at: float, value: float = 1.0,
            dimensions: Optional[Sequence[Mapping[str, str]]] = None, unit: str = "") -> None:
        bucket = (at // self.resolution_s) * self.resolution_s
        dims = tuple((d["Name"], d["Value"]) for d in dimensions) if dimensions is not None \
            else self.dimensions
        value = float(value)
        with self._lock:
            counts = self._pending.setdefault((metric, dims, unit, bucket), {})
            counts[value] = counts.get(value, 0) + 1

    def flush(self) -> int:
        """Send everything pending; returns how many datums went out."""
        with self._lock:
            pending, self._pending = self._pending, {}
        items = []
        for (metric, dims, unit, bucket), counts in sorted(pending.items()):
            values = sorted(counts)
            for start in range(0, len(values), MAX_VALUES_PER_DATUM):
                chunk = values[start:start + MAX_VALUES_PER_DATUM]
                item: Dict[str, Any] = {"MetricName": metric, "Timestamp": self.clock.wall(bucket),
                                        "Values": chunk, "Counts": [float(counts[v]) for v in chunk]}
                if dims:
                    item["Dimensions"] = [{"Name": n, "Value": v} for n, v in dims]
                if unit:
                    item["Unit"] = unit
                items.append(item)
        put_in_batches(self.client, self.namespace, items)
        self.published += len(items)
        return len(items)


def put_in_batches(client: Any, namespace: str, items: Sequence[Mapping[str, Any]]) -> int:
    """PutMetricData in requests within CloudWatch's limits: at most MAX_DATUMS_PER_CALL datums
    and about MAX_VALUES_PER_CALL values each (a request must stay under 1 MB); returns the
    number of calls."""
    calls, batch, values = 0, [], 0
    for item in items:
        size = len(item.get("Values") or ()) or 1
        if batch and (len(batch) >= MAX_DATUMS_PER_CALL or values + size > MAX_VALUES_PER_CALL):
            client.put_metric_data(Namespace=namespace, MetricData=batch)
            calls, batch, values = calls + 1, [], 0
        batch.append(item)
        values += size
    if batch:
        client.put_metric_data(Namespace=namespace, MetricData=batch)
        calls += 1
    return calls


@dataclass(frozen=True)
class AlarmVerdict:
    """One evaluation: the state and the per-period values it was based on (None = missing)."""

    name: str
    state: str
    values: Tuple[Optional[float], ...]
    reason: str


class AlarmEvaluator:
    """Evaluates every metric alarm of a region as CloudWatch would (see the module docstring)."""

    def __init__(self, aws: Any, region: str, clock: Clock,
                 alarm_names: Optional[Sequence[str]] = None) -> None:
        self.client = aws.client("cloudwatch", region)
        self.region = region
        self.clock = clock
        self.alarm_names = list(alarm_names) if alarm_names else None
        self.history: List[Tuple[float, str, str]] = []  # (template s, alarm, new state)
        self.worst: Dict[str, float] = {}  # alarm → the period value closest to breaching

    def _alarms(self) -> List[Dict[str, Any]]:
        kwargs = {"AlarmNames": self.alarm_names} if self.alarm_names else {}
        return self.client.describe_alarms(**kwargs)["MetricAlarms"]

    def evaluate(self) -> List[AlarmVerdict]:
        """Evaluate each alarm now; write changed states to the emulator; return the verdicts."""
        verdicts = []
        for alarm in self._alarms():
            if "MetricName" not in alarm:
                continue  # metric-math alarms are not evaluated locally
            verdict = self.verdict(alarm, self._period_values(alarm))
            self._track_worst(alarm, verdict.values)
            if verdict.state != alarm.get("StateValue"):
                self.client.set_alarm_state(AlarmName=alarm["AlarmName"], StateValue=verdict.state,
                                            StateReason=verdict.reason[:1023])
                self.history.append((self.clock.now(), alarm["AlarmName"], verdict.state))
            verdicts.append(verdict)
        return verdicts

    def _track_worst(self, alarm: Mapping[str, Any], values: Sequence[Optional[float]]) -> None:
        present = [v for v in values if v is not None]
        if not present:
            return
        lower_is_worse = alarm["ComparisonOperator"].startswith("Less")
        worst = min(present) if lower_is_worse else max(present)
        name = alarm["AlarmName"]
        if name not in self.worst or (worst < self.worst[name] if lower_is_worse else worst > self.worst[name]):
            self.worst[name] = worst

    @staticmethod
    def verdict(alarm: Mapping[str, Any], values: Sequence[Optional[float]]) -> AlarmVerdict:
        """The state an alarm's definition gives these period values (oldest first)."""
        needed = int(alarm.get("DatapointsToAlarm") or alarm["EvaluationPeriods"])
        treat = alarm.get("TreatMissingData") or "missing"
        operator, threshold = alarm["ComparisonOperator"], float(alarm["Threshold"])
        present = [v for v in values if v is not None]
        missing = len(values) - len(present)
        bad = sum(1 for v in present if breaches(operator, v, threshold))
        if treat == "breaching":
            bad += missing
        if not present and treat in ("missing", "ignore"):
            state = "INSUFFICIENT_DATA"
        else:
            state = "ALARM" if bad >= needed else "OK"
        shown = ", ".join("missing" if v is None else f"{v:g}" for v in values)
        reason = (f"{bad} of the last {len(values)} periods of {alarm['Period']} s breached "
                  f"{alarm['Statistic']} {operator} {threshold:g} (needed {needed}): [{shown}]")
        return AlarmVerdict(alarm["AlarmName"], state, tuple(values), reason)

    def _period_values(self, alarm: Mapping[str, Any]) -> List[Optional[float]]:
        period = int(alarm["Period"])
        count = int(alarm["EvaluationPeriods"])
        now = self.clock.wall()
        epoch = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
        end_s = int((now - epoch).total_seconds()) // period * period  # last complete period
        start = epoch + _dt.timedelta(seconds=end_s - period * count)
        end = epoch + _dt.timedelta(seconds=end_s)
        statistic = alarm["Statistic"]
        points = self.client.get_metric_statistics(
            Namespace=alarm["Namespace"], MetricName=alarm["MetricName"],
            Dimensions=alarm.get("Dimensions") or [], StartTime=start, EndTime=end,
            Period=period, Statistics=[statistic])["Datapoints"]
        by_start: Dict[int, float] = {}
        for point in points:
            offset = int((point["Timestamp"] - epoch).total_seconds())
            # moto stamps a bucket with its last second; CloudWatch with its first. Either way
            # the bucket is the period that contains the stamp, counted from `start`.
            index = (offset - int((start - epoch).total_seconds())) // period
            by_start[index] = point[statistic]
        return [by_start.get(i) for i in range(count)]
