"""What the layer tells the operator: one JSON log line per injected fault, readable as EMF.

The line is at once a structured log record (request id, fault, injected ms, experiment id;
never the payload, which may hold customer data) and a CloudWatch embedded-metric-format
document, so CloudWatch derives the `InjectedFaults` and `InjectedMilliseconds` metrics from
the log without any API call from inside the function.
"""
from __future__ import annotations

import os
import sys
import time

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~3 ms per cold start

if TYPE_CHECKING:
    from typing import Any, Dict, Optional

__all__ = ["fault_record", "emit", "log"]

LOG_PREFIX = "[lambda-chaos]"


def fault_record(request_id: str, fault: str, injected_ms: int, *, namespace: str,
                 function_name: str, experiment_id: str = "",
                 prevent_execution: bool = False,
                 timestamp_ms: Optional[int] = None) -> Dict[str, Any]:
    """The record for one injected fault, with the EMF `_aws` block that declares its metrics."""
    return {
        "_aws": {
            "Timestamp": int(time.time() * 1000) if timestamp_ms is None else timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [["FunctionName", "FaultType"]],
                "Metrics": [{"Name": "InjectedFaults", "Unit": "Count"},
                            {"Name": "InjectedMilliseconds", "Unit": "Milliseconds"}],
            }],
        },
        "message": "chaos fault injected",
        "FunctionName": function_name,
        "FaultType": fault,
        "InjectedFaults": 1,
        "InjectedMilliseconds": injected_ms,
        "requestId": request_id,
        "experimentId": experiment_id,
        "preventExecution": prevent_execution,
    }


def emit(record: Dict[str, Any]) -> None:
    """Write one record as one line: a single write, so lines from threads never interleave."""
    import json  # lazily, as in faults: not on the cold-start path

    _write(json.dumps(record, separators=(",", ":")))


def log(message: str) -> None:
    """A plain diagnostic line (configuration problems, fail-open events), prefixed for grep."""
    _write(f"{LOG_PREFIX} {message}")


def _write(line: str) -> None:
    try:
        os.write(sys.stdout.fileno(), (line + "\n").encode("utf-8", "replace"))
    except (OSError, ValueError):
        pass  # logging must never be the reason an invocation fails
