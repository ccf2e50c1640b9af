"""One JSON line per injected fault that CloudWatch also reads as embedded metrics (EMF)."""
import json

from chaos_layer import metrics


def test_fault_record_is_valid_emf_with_counts_and_milliseconds():
    record = metrics.fault_record("req-1", "latency", 1500, namespace="MyChaos",
                                  function_name="checkout", experiment_id="exp-9",
                                  timestamp_ms=1_700_000_000_000)
    directive = record["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "MyChaos"
    for dimension in directive["Dimensions"][0]:
        assert dimension in record  # EMF: every dimension is a top-level member
    for metric in directive["Metrics"]:
        assert isinstance(record[metric["Name"]], int)
    assert (record["InjectedFaults"], record["InjectedMilliseconds"]) == (1, 1500)
    assert (record["requestId"], record["experimentId"], record["FaultType"]) == (
        "req-1", "exp-9", "latency")


def test_emit_writes_exactly_one_line(capfd):
    metrics.emit(metrics.fault_record("r", "error", 0, namespace="N", function_name="f"))
    out = capfd.readouterr().out
    assert out.count("\n") == 1 and json.loads(out)["FaultType"] == "error"
