"""moto's CloudWatch answers GetMetricData and GetMetricStatistics as CloudWatch does.

What moto 5.2.1 gets wrong, each of which the dashboard and the alarms depend on:

- **Percentiles**: `GetMetricData` with `Stat` `p50` or `p99` answers `None` for every period
  (its `Statistics` knows only the five plain statistics). CloudWatch computes a percentile
  from the raw values; from a statistic set only when its SampleCount is 1 or its Minimum
  equals its Maximum, never when a value is negative ("GetMetricStatistics": percentiles).
- **Dimensions**: CloudWatch matches a query's dimensions *exactly*: a query naming none
  reads the series published without dimensions, one naming `FunctionName` reads only the
  series with exactly that dimension. moto adds up every series of the name when a query names
  none, and a query with dimensions ignores the namespace (and sorts `Dimension`s with a broken
  `__lt__`); `GetMetricStatistics` matches any series that has *at least* those dimensions.
- **`Values`/`Counts`** are expanded into one stored datum per count, and every query scans
  every datum ever stored once per period: a run's latencies grew the server's CPU through the
  run. Here a `Values`/`Counts` datum is stored as one distribution, and datums are indexed by
  (namespace, metric name) as they arrive.
- **Periods**: CloudWatch rounds StartTime down to the whole minute (a sub-minute period: to
  its multiple) and stamps each period with its start; moto's GetMetricStatistics starts its
  periods at the first datum.

`install()` patches `CloudWatchBackend.put_metric_data`, `get_metric_data` (MetricStat queries;
moto's own code still answers its Metric Insights `SELECT` queries, and math expressions that
name a query id read the results computed here) and `get_metric_statistics`. Statistics:
`SampleCount`, `Sum`, `Average`, `Minimum`, `Maximum` and `pNN`/`pNN.N` (nearest rank); any
other is refused with CloudWatch's InvalidParameterValue.
"""
from __future__ import annotations

import datetime as _dt
import functools
import math
import re
import threading
from collections import defaultdict
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from moto.cloudwatch.exceptions import InvalidParameterValue, ValidationError
from moto.cloudwatch.metric_data_expression_parser import parse_expression
from moto.cloudwatch.models import CloudWatchBackend, MetricAggregatedDatum, MetricDatumBase

__all__ = ["install", "Distribution", "statistic", "check_statistic", "PLAIN_STATISTICS"]

PLAIN_STATISTICS = ("SampleCount", "Sum", "Average", "Minimum", "Maximum")
_PERCENTILE = re.compile(r"^p(\d{1,2}(?:\.\d{1,10})?|100)$")
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_INDEX_LOCK = threading.Lock()


class Distribution(MetricAggregatedDatum):
    """One `Values`/`Counts` datum, kept whole (moto's own code sees its statistic set)."""

    def __init__(self, namespace: str, name: str, values: Sequence[float], counts: Sequence[float],
                 dimensions: List[Dict[str, str]], timestamp: Optional[_dt.datetime],
                 unit: Any = None) -> None:
        super().__init__(namespace, name, min_stat=min(values), max_stat=max(values),
                         sample_count=float(sum(counts)),
                         sum_stat=float(sum(v * c for v, c in zip(values, counts))),
                         dimensions=dimensions, timestamp=timestamp, unit=unit)
        self.values = list(values)
        self.counts = list(counts)


def _epoch_s(moment: _dt.datetime) -> float:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.timezone.utc)
    return (moment - _EPOCH).total_seconds()


def _dimension_key(dimensions: Iterable[Any]) -> frozenset:
    """The exact dimension set of a datum (moto `Dimension`s) or a query (dicts)."""
    return frozenset((d["Name"], d["Value"]) if isinstance(d, dict) else (d.name, d.value)
                     for d in dimensions)


def _weighted(datum: MetricDatumBase) -> Optional[List[Tuple[float, float]]]:
    """(value, count) pairs of a datum for a percentile; None when a statistic set cannot
    give them (SampleCount above 1 and Minimum below Maximum)."""
    if isinstance(datum, Distribution):
        return list(zip(datum.values, datum.counts))
    if isinstance(datum, MetricAggregatedDatum):
        if datum.sample_count == 1 or datum.min == datum.max:
            return [(datum.min, datum.sample_count)]
        return None
    return [(datum.value, 1.0)]


def check_statistic(name: str) -> None:
    """Raise CloudWatch's InvalidParameterValue for a statistic the emulator does not compute."""
    if name not in PLAIN_STATISTICS and not _PERCENTILE.match(name):
        raise InvalidParameterValue(
            f"The statistic {name} is not supported by the emulator's CloudWatch; use "
            f"{', '.join(PLAIN_STATISTICS)} or a percentile such as p50, p99, p99.9")


def statistic(name: str, data: Sequence[MetricDatumBase]) -> Optional[float]:
    """One CloudWatch statistic of the datums of one period; None when it is not available."""
    check_statistic(name)
    if not data:
        return None
    if name == "SampleCount" or name == "Sum" or name == "Average":
        count = total = 0.0
        for datum in data:
            if isinstance(datum, MetricAggregatedDatum):
                count += datum.sample_count
                total += datum.sum
            else:
                count += 1
                total += datum.value
        if name == "SampleCount":
            return count
        if name == "Sum":
            return total
        return total / count if count else None
    if name == "Minimum":
        return min(d.min if isinstance(d, MetricAggregatedDatum) else d.value for d in data)
    if name == "Maximum":
        return max(d.max if isinstance(d, MetricAggregatedDatum) else d.value for d in data)
    match = _PERCENTILE.match(name)
    assert match is not None  # check_statistic let only percentiles through
    pairs: List[Tuple[float, float]] = []
    for datum in data:
        weighted = _weighted(datum)
        if weighted is None:
            return None
        pairs.extend(weighted)
    if not pairs or any(value < 0 for value, _ in pairs):
        return None
    pairs.sort()
    total = sum(count for _, count in pairs)
    rank = max(1.0, math.ceil(float(match.group(1)) / 100.0 * total - 1e-9))
    seen = 0.0
    for value, count in pairs:
        seen += count
        if seen >= rank:
            return value
    return pairs[-1][0]


def _series(backend: CloudWatchBackend, namespace: str, name: str) -> List[MetricDatumBase]:
    """The datums of one metric name, from an index kept up to date as datums arrive."""
    with _INDEX_LOCK:
        data = backend.metric_data
        state = backend.__dict__.get("_emulator_index")
        if state is None or state[0] is not data or state[1] > len(data):
            state = [data, 0, defaultdict(list)]
            backend.__dict__["_emulator_index"] = state
        for datum in data[state[1]:]:
            state[2][(datum.namespace, datum.name)].append(datum)
        state[1] = len(data)
        found = list(state[2].get((namespace, name), ()))
    return found + [d for d in backend.aws_metric_data if d.namespace == namespace and d.name == name]


def _aligned_start(start: _dt.datetime, period: int) -> float:
    """StartTime rounded down as CloudWatch rounds it: whole minutes, or a sub-minute period's
    multiple."""
    return math.floor(_epoch_s(start) / min(period, 60)) * min(period, 60)


def _periods(backend: CloudWatchBackend, namespace: str, name: str, dimensions: Iterable[Any],
             unit: Optional[str], start: _dt.datetime, end: _dt.datetime,
             period: int) -> Tuple[float, Dict[int, List[MetricDatumBase]]]:
    """The matching datums per period index (only periods with data), and the first start."""
    if period <= 0:
        raise InvalidParameterValue(f"The parameter Period must be greater than 0 (got {period}).")
    first = _aligned_start(start, period)
    last = _epoch_s(end)
    wanted = _dimension_key(dimensions)
    buckets: Dict[int, List[MetricDatumBase]] = defaultdict(list)
    for datum in _series(backend, namespace, name):
        at = _epoch_s(datum.timestamp)
        if not first <= at < last or (unit and datum.unit != unit):
            continue
        if _dimension_key(datum.dimensions) != wanted:
            continue
        buckets[int((at - first) // period)].append(datum)
    return first, buckets


def _stamp(first: float, period: int, index: int) -> _dt.datetime:
    return _EPOCH + _dt.timedelta(seconds=first + index * period)


def install() -> None:
    """Patch moto's CloudWatchBackend in this process (idempotent)."""
    if getattr(CloudWatchBackend, "_emulator_metrics", False):
        return
    put, get_data = CloudWatchBackend.put_metric_data, CloudWatchBackend.get_metric_data

    @functools.wraps(put)
    def put_metric_data(self: CloudWatchBackend, namespace: str,
                        metric_data: List[Dict[str, Any]]) -> None:
        for number, metric in enumerate(metric_data):
            self._validate_parameters_put_metric_data(metric, number + 1)
        rest = []
        for metric in metric_data:
            if not metric.get("Values"):
                rest.append(metric)
                continue
            values = [float(v) for v in metric["Values"]]
            counts = [float(c) for c in metric.get("Counts") or [1] * len(values)]
            self.metric_data.append(Distribution(
                namespace, metric["MetricName"], values, counts,
                metric.get("Dimensions") or [], metric.get("Timestamp"), metric.get("Unit")))
        if rest:
            put(self, namespace, rest)

    @functools.wraps(get_data)
    def get_metric_data(self: CloudWatchBackend, queries: List[Dict[str, Any]],
                        start_time: _dt.datetime, end_time: _dt.datetime,
                        scan_by: str = "TimestampDescending") -> List[Dict[str, Any]]:
        if start_time >= end_time:
            raise ValidationError("The parameter EndTime must be greater than StartTime.")
        computed, answered = [], []
        for query in queries:
            if "MetricStat" not in query:
                continue
            stat = query["MetricStat"]
            check_statistic(stat["Stat"])
            metric = stat["Metric"]
            period = int(stat["Period"])
            first, buckets = _periods(self, metric["Namespace"], metric["MetricName"],
                                      metric.get("Dimensions") or [], stat.get("Unit"),
                                      start_time, end_time, period)
            points = []
            for index in sorted(buckets):
                value = statistic(stat["Stat"], buckets[index])
                if value is not None:
                    points.append((_stamp(first, period, index), value))
            if scan_by != "TimestampAscending":
                points.reverse()
            result = {"id": query["Id"], "label": query.get("Label") or metric["MetricName"],
                      "values": [v for _, v in points], "timestamps": [t for t, _ in points],
                      "status_code": "Complete"}
            computed.append(result)
            if query.get("ReturnData", True) not in (False, "false"):
                answered.append(result)
        for query in queries:
            expression = query.get("Expression")
            if expression is None:
                continue
            if expression.strip().upper().startswith("SELECT"):
                answered.extend(get_data(self, [query], start_time, end_time, scan_by))
                continue
            values, stamps = parse_expression(expression, computed)
            answered.append({"id": query["Id"], "label": query.get("Label") or query["Id"],
                             "values": values, "timestamps": stamps, "status_code": "Complete"})
        return answered

    def get_metric_statistics(self: CloudWatchBackend, namespace: str, metric_name: str,
                              start_time: _dt.datetime, end_time: _dt.datetime, period: int,
                              stats: List[str], dimensions: List[Dict[str, str]],
                              unit: Optional[str] = None) -> List[Dict[str, Any]]:
        if start_time >= end_time:
            raise InvalidParameterValue(
                "The parameter StartTime must be less than the parameter EndTime.")
        first, buckets = _periods(self, namespace, metric_name, dimensions or [], unit,
                                  start_time, end_time, int(period))
        datapoints = []
        for index in sorted(buckets):
            point: Dict[str, Any] = {"Timestamp": _stamp(first, int(period), index)}
            for name in stats:
                value = statistic(name, buckets[index])
                if value is not None:
                    point[name] = value
            point["Unit"] = unit or buckets[index][-1].unit or "None"
            datapoints.append(point)
        return datapoints

    CloudWatchBackend.put_metric_data = put_metric_data  # type: ignore[method-assign]
    CloudWatchBackend.get_metric_data = get_metric_data  # type: ignore[method-assign]
    CloudWatchBackend.get_metric_statistics = get_metric_statistics  # type: ignore[method-assign]
    CloudWatchBackend._emulator_metrics = True  # type: ignore[attr-defined]
