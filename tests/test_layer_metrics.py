"""One JSON line per injected fault that CloudWatch also reads as embedded metrics (EMF),
written by the binary on its stdout (where Lambda collects an extension's logs)."""
import json

from chaos_layer import config as c

from layer_fixtures import FakeRuntimeApi, ProxyProcess, RawClient

NEXT = b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n"


def fault_output(env):
    api = FakeRuntimeApi()
    api.add_event("req-1", b'{"card": "4111-secret"}')
    proxy = ProxyProcess({c.UPSTREAM_RUNTIME_API: api.address, c.PROXY_PORT: "0",
                          "AWS_LAMBDA_FUNCTION_NAME": "checkout", **env})
    try:
        assert RawClient(proxy.port).exchange(NEXT)[1] == b'{"card": "4111-secret"}'
        proxy.output(until='"_aws"')
    finally:
        out = proxy.close()
        api.close()
    return out


def test_fault_record_is_valid_emf_with_counts_and_milliseconds():
    out = fault_output({c.FAULT_TYPE: "latency", c.LATENCY_MS: "150",
                        c.METRICS_NAMESPACE: "MyChaos", c.EXPERIMENT_ID: "exp-9"})
    [line] = out.splitlines()  # exactly one line per fault, nothing else on the pass-through path
    record = json.loads(line)
    directive = record["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "MyChaos"
    assert isinstance(record["_aws"]["Timestamp"], int)
    for dimension in directive["Dimensions"][0]:
        assert dimension in record  # EMF: every dimension is a top-level member
    for metric in directive["Metrics"]:
        assert isinstance(record[metric["Name"]], int)
    assert (record["InjectedFaults"], record["InjectedMilliseconds"]) == (1, 150)
    assert (record["requestId"], record["experimentId"], record["FaultType"],
            record["FunctionName"], record["preventExecution"]) == (
        "req-1", "exp-9", "latency", "checkout", False)
    assert list(record) == ["_aws", "message", "FunctionName", "FaultType", "InjectedFaults",
                            "InjectedMilliseconds", "requestId", "experimentId",
                            "preventExecution"]  # metrics.py's fields, in its order


def test_the_record_never_holds_the_payload():
    out = fault_output({c.FAULT_TYPE: "latency", c.LATENCY_MS: "1"})
    assert "secret" not in out and "card" not in out


def test_a_delay_is_recorded_when_decided_so_one_past_the_timeout_still_counts():
    # Lambda ends an environment whose invocation outlives its timeout: a record written after
    # the delay would never be written, and a 35 s outage would show no injected faults.
    api = FakeRuntimeApi()
    api.add_event("req-1", b"{}")
    proxy = ProxyProcess({c.UPSTREAM_RUNTIME_API: api.address, c.PROXY_PORT: "0",
                          "AWS_LAMBDA_FUNCTION_NAME": "checkout",
                          c.FAULT_TYPE: "latency", c.LATENCY_MS: "60000"})
    client = RawClient(proxy.port)
    try:
        client.sock.sendall(NEXT)  # the event is now held for 60 s
        line = proxy.output(until='"_aws"')  # ... but its record is already out
        record = json.loads([text for text in line.splitlines() if '"_aws"' in text][-1])
        assert (record["InjectedFaults"], record["InjectedMilliseconds"]) == (1, 60000)
    finally:
        client.close()
        proxy.close()
        api.close()
