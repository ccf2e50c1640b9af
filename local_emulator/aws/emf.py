"""CloudWatch Logs' embedded metric format: metrics extracted from log lines, as in a region.

A function's log lines (its runtime's and its extensions' output, log group
`/aws/lambda/NAME`) and the customer simulator's lines go to the `EmfIngestor` of their region,
which does what CloudWatch Logs does with a log event ("Specification: Embedded metric format"):

- an event is EMF when it is a JSON object with an `_aws` member; any other line is only a log
  line and is ignored. Lambda's runtimes write a logger's lines with a tab-separated prefix
  (`2026-01-05T12:00:00.000Z<TAB>request id<TAB>INFO<TAB>{...}`, the Node.js `console.log`) and
  CloudWatch still extracts the document after it (aws-embedded-metrics' Lambda sink writes so);
- `_aws` must be an object with a `Timestamp` (epoch milliseconds) and a `CloudWatchMetrics`
  array of metric directives; each directive has a `Namespace` (1-255 characters), a
  `Dimensions` array of dimension sets (each at most 30 keys, every key a root member whose
  value is a string of at most 1024 characters; `[]` publishes the metrics without
  dimensions) and at most 100 `Metrics`, each a `Name` that is a root member whose value is a
  number or an array of at most 100 numbers, with an optional `Unit` (CloudWatch's units) and
  `StorageResolution` (60, default, or 1);
- a document or directive that breaks a rule is dropped with a counted reason
  (`rejected`, as CloudWatch counts EMFValidationErrors and EMFParsingErrors in `AWS/Logs`);
  nothing on the data path raises;
- each metric value lands in every dimension set of its directive, at the document's
  `Timestamp`: a standard-resolution value in its minute (CloudWatch keeps those at
  one-minute granularity), a high-resolution one in its second.

Values are aggregated in memory and sent by `flush()` (the experiment's telemetry loop calls
it) as `Values`/`Counts` datums in batched PutMetricData calls, so percentiles stay exact.

Timestamps: the emulated wall clock of template time (`Clock.wall`) is what every metric of a
run is stamped with. A function's processes stamp real time (they run on this machine's
clock), so their lines are ingested with `real_time=True` and each timestamp is moved to the
template instant it was written at; a line already stamped in emulated time (the simulator's,
driven by the clock) is taken as it is.
"""
from __future__ import annotations

import json
import math
import threading
import time
from collections import Counter
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from local_emulator.clock import Clock
from local_emulator.aws.cloudwatch import MAX_VALUES_PER_DATUM, put_in_batches

__all__ = ["EmfIngestor", "extract", "EmfRejection", "UNITS", "MAX_DIMENSIONS", "MAX_METRICS",
           "MAX_VALUES", "log_group"]

# The specification's limits.
MAX_DIMENSIONS = 30        # keys in one dimension set
MAX_METRICS = 100          # MetricDefinitions in one directive
MAX_VALUES = 100           # values in one metric's array
MAX_DIMENSION_VALUE = 1024
MAX_NAMESPACE = 255
MAX_EVENT_BYTES = 1024 * 1024  # a CloudWatch Logs event (1 MB)
# CloudWatch's StandardUnit values (the API reference's MetricDatum.Unit).
UNITS = frozenset((
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes",
    "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count",
    "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second",
    "Terabytes/Second", "Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second",
    "Terabits/Second", "Count/Second", "None"))
_CLOUDWATCH_LIMIT = 2.0 ** 360  # values CloudWatch accepts lie within ±2^360


class EmfRejection(ValueError):
    """A document or directive CloudWatch would not turn into metrics; the message is why."""


# One extracted value: (namespace, metric, dimensions, unit, storage resolution, epoch ms, values)
Extracted = Tuple[str, str, Tuple[Tuple[str, str], ...], str, int, float, List[float]]


def log_group(function_name: str) -> str:
    """The log group Lambda writes a function's output to."""
    return f"/aws/lambda/{function_name}"


def _reject_constant(name: str) -> float:
    raise EmfRejection(f"{name} is not a JSON number")


# One decoder for every line (json.loads with an argument builds a new one per call): NaN and
# Infinity are not JSON numbers, and CloudWatch Logs does not take them as values.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _document(line: str) -> Optional[Dict[str, Any]]:
    """The JSON object of an EMF event, None for a line that is not one (raises EmfRejection
    for a line that claims to be EMF and is not valid JSON)."""
    text = line.strip()
    if not text.startswith("{"):
        brace = text.find("\t{")  # a Lambda logger's tab-separated prefix
        if brace < 0:
            return None
        text = text[brace + 1:]
    try:
        document = _DECODER.decode(text)
    except EmfRejection:
        raise
    except ValueError as exc:
        raise EmfRejection(f"not a JSON object: {exc.msg}") from None
    if not isinstance(document, dict) or "_aws" not in document:
        return None
    return document


def _number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and abs(value) <= _CLOUDWATCH_LIMIT)


def _directive(document: Mapping[str, Any], directive: Any, timestamp: float) -> List[Extracted]:
    if not isinstance(directive, dict):
        raise EmfRejection("a metric directive is not an object")
    namespace = directive.get("Namespace")
    if not isinstance(namespace, str) or not 1 <= len(namespace) <= MAX_NAMESPACE:
        raise EmfRejection("Namespace must be a string of 1-255 characters")
    dimension_sets = directive.get("Dimensions")
    if not isinstance(dimension_sets, list):
        raise EmfRejection(f"{namespace}: Dimensions must be an array of dimension sets")
    resolved = []
    for keys in dimension_sets or [[]]:
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise EmfRejection(f"{namespace}: a dimension set must be an array of strings")
        if len(keys) > MAX_DIMENSIONS:
            raise EmfRejection(f"{namespace}: a dimension set has {len(keys)} keys "
                               f"(at most {MAX_DIMENSIONS})")
        pairs = []
        for key in keys:
            value = document.get(key)
            if not isinstance(value, str) or not 1 <= len(value) <= MAX_DIMENSION_VALUE:
                raise EmfRejection(f"{namespace}: dimension {key} must be a root member with a "
                                   f"string value of 1-{MAX_DIMENSION_VALUE} characters")
            pairs.append((key, value))
        resolved.append(tuple(pairs))
    metrics = directive.get("Metrics")
    if not isinstance(metrics, list) or not metrics:
        raise EmfRejection(f"{namespace}: Metrics must be a non-empty array")
    if len(metrics) > MAX_METRICS:
        raise EmfRejection(f"{namespace}: {len(metrics)} metrics (at most {MAX_METRICS})")
    extracted = []
    for definition in metrics:
        name = definition.get("Name") if isinstance(definition, dict) else None
        if not isinstance(name, str) or not name:
            raise EmfRejection(f"{namespace}: a metric definition has no Name")
        unit = definition.get("Unit", "None")
        if unit not in UNITS:
            raise EmfRejection(f"{namespace}/{name}: Unit {unit!r} is not a CloudWatch unit")
        resolution = definition.get("StorageResolution", 60)
        if resolution not in (1, 60) or isinstance(resolution, bool):
            raise EmfRejection(f"{namespace}/{name}: StorageResolution must be 1 or 60")
        if name not in document:
            raise EmfRejection(f"{namespace}/{name}: no root member {name} holds its value")
        raw = document[name]
        values = raw if isinstance(raw, list) else [raw]
        if not values or len(values) > MAX_VALUES or not all(_number(v) for v in values):
            raise EmfRejection(f"{namespace}/{name}: the value must be a number or an array of "
                               f"1-{MAX_VALUES} numbers")
        for dimensions in resolved:
            extracted.append((namespace, name, dimensions, unit, int(resolution), timestamp,
                              [float(v) for v in values]))
    return extracted


def extract(line: str) -> Tuple[List[Extracted], List[str]]:
    """Every metric value a log event yields, and why any part of it was dropped.

    Returns `([], [])` for a line that is not EMF. A document-level error drops the document;
    a directive-level error drops that directive only.
    """
    if '"_aws"' not in line:
        return [], []  # the cheap test first: most lines of a run are not EMF
    if len(line) * 4 > MAX_EVENT_BYTES and len(line.encode("utf-8", errors="replace")) > MAX_EVENT_BYTES:
        return [], ["the event is larger than CloudWatch Logs' 1 MB"]
    try:
        document = _document(line)
    except EmfRejection as exc:
        return [], [str(exc)]
    if document is None:
        return [], []
    metadata = document["_aws"]
    if not isinstance(metadata, dict):
        return [], ["_aws must be an object"]
    timestamp = metadata.get("Timestamp")
    if not _number(timestamp) or timestamp < 0:
        return [], ["_aws.Timestamp must be a number of milliseconds since the epoch"]
    directives = metadata.get("CloudWatchMetrics")
    if not isinstance(directives, list):
        return [], ["_aws.CloudWatchMetrics must be an array of metric directives"]
    extracted: List[Extracted] = []
    reasons: List[str] = []
    for directive in directives:
        try:
            extracted.extend(_directive(document, directive, float(timestamp)))
        except EmfRejection as exc:
            reasons.append(str(exc))
    return extracted, reasons


# (namespace, metric, dimensions, unit, resolution, bucket epoch s) → value → count
_Key = Tuple[str, str, Tuple[Tuple[str, str], ...], str, int, int]


class EmfIngestor:
    """One region's CloudWatch Logs → CloudWatch metrics (see the module docstring).

    `ingest(line, log_group=...)` is safe from any thread and never raises for a bad line;
    `flush()` sends what has accumulated. Counters: `lines`, `documents` (EMF events),
    `values` (metric values extracted), `rejected` (reason → count), `by_log_group`.
    """

    def __init__(self, aws: Any, region: str, clock: Clock,
                 on_rejected: Optional[Callable[[str, str], None]] = None) -> None:
        self.client = aws.client("cloudwatch", region)
        self.region = region
        self.clock = clock
        self.on_rejected = on_rejected
        self.lines = 0
        self.documents = 0
        self.values = 0
        self.rejected: Counter = Counter()
        self.by_log_group: Counter = Counter()
        self.published = 0
        self.calls = 0
        self._pending: Dict[_Key, Dict[float, int]] = {}
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()

    def ingest(self, line: str, log_group: str = "", *, real_time: bool = False) -> int:
        """Take one log event; returns how many metric values it yielded (0 for a non-EMF line)."""
        extracted, reasons = extract(line)
        with self._lock:
            self.lines += 1
            if extracted or reasons:
                self.documents += 1
            for reason in reasons:
                self.rejected[reason] += 1
            if not extracted:
                return 0
            self.by_log_group[log_group] += 1
            shift = self._real_to_emulated_s() if real_time else 0.0
            count = 0
            for namespace, name, dimensions, unit, resolution, stamp_ms, values in extracted:
                at = stamp_ms / 1000.0 + shift
                bucket = int(at // resolution) * resolution
                counts = self._pending.setdefault(
                    (namespace, name, dimensions, unit, resolution, bucket), {})
                for value in values:
                    counts[value] = counts.get(value, 0) + 1
                count += len(values)
            self.values += count
        if reasons and self.on_rejected is not None:
            for reason in reasons:
                self.on_rejected(log_group, reason)
        return count

    def writer(self, log_group: str = "", *, real_time: bool = False) -> Callable[[str], None]:
        """A `write(line)` for one source (the simulator's `emf_writers[region]`)."""
        def write(line: str) -> None:
            self.ingest(line, log_group, real_time=real_time)
        return write

    def _real_to_emulated_s(self) -> float:
        """Seconds to add to a real epoch time to get the emulated one of the same instant."""
        emulated = self.clock.wall().timestamp()
        return emulated - time.time()

    def flush(self) -> int:
        """Send every pending value with PutMetricData (batched); returns the datums sent.
        A failed call puts nothing back: CloudWatch Logs does not retry a rejected batch
        either, and the telemetry loop records the error."""
        with self._flush_lock:
            with self._lock:
                pending, self._pending = self._pending, {}
            by_namespace: Dict[str, List[Dict[str, Any]]] = {}
            for (namespace, name, dimensions, unit, resolution, bucket), counts in sorted(
                    pending.items()):
                values = sorted(counts)
                for start in range(0, len(values), MAX_VALUES_PER_DATUM):
                    chunk = values[start:start + MAX_VALUES_PER_DATUM]
                    item: Dict[str, Any] = {
                        "MetricName": name, "Timestamp": float(bucket), "Unit": unit,
                        "Values": chunk, "Counts": [float(counts[v]) for v in chunk],
                        "StorageResolution": resolution}
                    if dimensions:
                        item["Dimensions"] = [{"Name": k, "Value": v} for k, v in dimensions]
                    by_namespace.setdefault(namespace, []).append(item)
            sent = 0
            for namespace, items in by_namespace.items():
                self.calls += put_in_batches(self.client, namespace, items)
                sent += len(items)
            self.published += sent
            return sent

    def stats(self) -> Dict[str, Any]:
        """What was read and what was dropped, for the report."""
        with self._lock:
            return {"lines": self.lines, "documents": self.documents, "values": self.values,
                    "published_datums": self.published, "put_metric_data_calls": self.calls,
                    "rejected": dict(self.rejected), "by_log_group": dict(self.by_log_group)}
