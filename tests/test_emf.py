"""CloudWatch Logs' embedded metric format: what a log line yields, what is dropped and why,
and what reaches the emulator's CloudWatch."""
import datetime as dt
import json
import time

import pytest

from local_emulator.aws.emf import EmfIngestor, extract, log_group
from local_emulator.clock import Clock
from tests.emulator_fixtures import moto_server, unique  # noqa: F401 - fixture

T0_MS = 1_767_614_400_000  # 2026-01-05T12:00:00Z


def _document(namespace="App", dimensions=(("Api",),), metrics=(("Latency", "Milliseconds"),),
              timestamp=T0_MS, **members):
    document = {"_aws": {"Timestamp": timestamp, "CloudWatchMetrics": [{
        "Namespace": namespace, "Dimensions": [list(d) for d in dimensions],
        "Metrics": [{"Name": n, "Unit": u} for n, u in metrics]}]}, "Api": "hello", "Latency": 12.5}
    document.update(members)
    return document


def _line(**kwargs):
    return json.dumps(_document(**kwargs))


def test_a_document_yields_each_metric_in_each_dimension_set_with_its_unit_and_timestamp():
    line = _line(dimensions=(("Api",), ()), metrics=(("Latency", "Milliseconds"), ("Count", "Count")),
                 Count=1)
    extracted, reasons = extract(line)
    assert reasons == []
    assert sorted(extracted) == sorted([
        ("App", "Latency", (("Api", "hello"),), "Milliseconds", 60, T0_MS, [12.5]),
        ("App", "Latency", (), "Milliseconds", 60, T0_MS, [12.5]),
        ("App", "Count", (("Api", "hello"),), "Count", 60, T0_MS, [1.0]),
        ("App", "Count", (), "Count", 60, T0_MS, [1.0])])


def test_lines_that_are_not_emf_are_ignored_and_not_counted_as_rejected():
    for line in ["START RequestId: 1 Version: $LATEST", "[lambda-chaos] proxy listening on 9009",
                 '{"message": "plain structured log"}', "", "   "]:
        assert extract(line) == ([], [])


def test_the_layers_own_emf_line_is_extracted():
    line = ('{"_aws":{"Timestamp":1767614400000,"CloudWatchMetrics":[{"Namespace":"LambdaChaos",'
            '"Dimensions":[["FunctionName","FaultType"]],"Metrics":[{"Name":"InjectedFaults","Unit":'
            '"Count"},{"Name":"InjectedMilliseconds","Unit":"Milliseconds"}]}]},"message":"chaos '
            'fault injected","FunctionName":"hello","FaultType":"latency","InjectedFaults":1,'
            '"InjectedMilliseconds":35000,"requestId":"r","experimentId":"","preventExecution":false}')
    extracted, _ = extract(line)
    dims = (("FunctionName", "hello"), ("FaultType", "latency"))
    assert {(e[1], e[2], e[3], tuple(e[6])) for e in extracted} == {
        ("InjectedFaults", dims, "Count", (1.0,)),
        ("InjectedMilliseconds", dims, "Milliseconds", (35000.0,))}


def test_a_lambda_loggers_tab_separated_prefix_is_skipped_as_cloudwatch_logs_does():
    line = f"2026-01-05T12:00:00.000Z\t6f1c\tINFO\t{_line()}"
    extracted, reasons = extract(line)
    assert reasons == [] and [e[1] for e in extracted] == ["Latency"]


def test_a_value_array_yields_every_value_and_high_resolution_is_kept():
    document = _document(Latency=[1, 2.5, 3])
    document["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["StorageResolution"] = 1
    [(_, _, _, _, resolution, _, values)] = extract(json.dumps(document))[0]
    assert (resolution, values) == (1, [1.0, 2.5, 3.0])


def test_a_metric_without_unit_is_published_with_unit_none_and_empty_dimensions_mean_none():
    document = _document(dimensions=())
    del document["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"]
    [entry] = extract(json.dumps(document))[0]
    assert (entry[2], entry[3]) == ((), "None")


@pytest.mark.parametrize("change, reason", [
    (lambda d: d.update(_aws="x"), "_aws must be an object"),
    (lambda d: d["_aws"].pop("Timestamp"), "_aws.Timestamp"),
    (lambda d: d["_aws"].update(Timestamp="now"), "_aws.Timestamp"),
    (lambda d: d["_aws"].update(CloudWatchMetrics={}), "CloudWatchMetrics must be an array"),
])
def test_a_bad_document_is_dropped_whole_with_its_reason(change, reason):
    document = _document()
    change(document)
    extracted, reasons = extract(json.dumps(document))
    assert extracted == [] and len(reasons) == 1 and reason in reasons[0]


@pytest.mark.parametrize("change, reason", [
    (lambda d, m: m.pop("Namespace"), "Namespace must be a string"),
    (lambda d, m: m.update(Namespace="x" * 256), "Namespace must be a string of 1-255"),
    (lambda d, m: m.pop("Dimensions"), "Dimensions must be an array"),
    (lambda d, m: m.update(Dimensions=[["Missing"]]), "dimension Missing must be a root member"),
    (lambda d, m: d.update(Api=7), "dimension Api must be a root member with a string value"),
    (lambda d, m: m.update(Dimensions=[[f"k{i}" for i in range(31)]]), "31 keys (at most 30)"),
    (lambda d, m: m.update(Metrics=[{"Name": f"m{i}"} for i in range(101)]), "101 metrics"),
    (lambda d, m: m["Metrics"][0].update(Unit="ms"), "Unit 'ms' is not a CloudWatch unit"),
    (lambda d, m: m["Metrics"][0].update(StorageResolution=5), "StorageResolution must be 1 or 60"),
    (lambda d, m: d.pop("Latency"), "no root member Latency"),
    (lambda d, m: d.update(Latency="12"), "must be a number or an array"),
    (lambda d, m: d.update(Latency=True), "must be a number or an array"),
    (lambda d, m: d.update(Latency=list(range(101))), "1-100 numbers"),
])
def test_a_bad_directive_is_dropped_with_a_counted_reason_and_the_good_one_kept(change, reason):
    document = _document(Good=1)
    good = {"Namespace": "Other", "Dimensions": [[]], "Metrics": [{"Name": "Good"}]}
    change(document, document["_aws"]["CloudWatchMetrics"][0])
    document["_aws"]["CloudWatchMetrics"].append(good)
    extracted, reasons = extract(json.dumps(document))
    assert len(reasons) == 1 and reason in reasons[0], reasons
    assert [(e[0], e[1]) for e in extracted] == [("Other", "Good")]


def test_a_line_that_claims_emf_but_is_not_json_is_a_parse_error_and_nan_is_no_number():
    assert "not a JSON object" in extract('{"_aws": {"Timestamp": 1,')[1][0]
    assert extract(_line().replace("12.5", "NaN"))[1] == ["NaN is not a JSON number"]


def test_an_ingestor_counts_and_never_raises_on_the_data_path(moto_server):
    ingestor = EmfIngestor(moto_server, "us-east-1", Clock(scale=30))
    assert ingestor.ingest("not emf") == 0
    assert ingestor.ingest('{"_aws": 5}', log_group("f")) == 0
    assert ingestor.ingest(_line(), log_group("f")) == 1
    stats = ingestor.stats()
    assert (stats["lines"], stats["documents"], stats["values"]) == (3, 2, 1)
    assert stats["rejected"] == {"_aws must be an object": 1}
    assert stats["by_log_group"] == {"/aws/lambda/f": 1}


def _get(moto_server, namespace, metric, stat, dims, start, minutes=3, region="us-east-1", unit=None):
    query = {"Id": "q", "MetricStat": {"Metric": {"Namespace": namespace, "MetricName": metric,
                                                  "Dimensions": dims}, "Period": 60, "Stat": stat}}
    if unit:
        query["MetricStat"]["Unit"] = unit
    answer = moto_server.client("cloudwatch", region).get_metric_data(
        MetricDataQueries=[query], StartTime=start, EndTime=start + dt.timedelta(minutes=minutes),
        ScanBy="TimestampAscending")["MetricDataResults"][0]
    return list(zip(answer["Timestamps"], answer["Values"]))


def test_ingested_values_answer_get_metric_data_per_minute_with_every_statistic(moto_server):
    namespace = unique("Emf")
    start = dt.datetime.fromtimestamp(T0_MS / 1000, dt.timezone.utc)
    ingestor = EmfIngestor(moto_server, "eu-west-1", Clock())
    for i in range(1, 101):  # minute 0: 1..100 ms; minute 1: one 500 ms
        ingestor.ingest(_line(namespace=namespace, Latency=float(i), timestamp=T0_MS + i * 100))
    ingestor.ingest(_line(namespace=namespace, Latency=500, timestamp=T0_MS + 61_000))
    assert ingestor.flush() == 2  # one Values/Counts datum per minute
    dims = [{"Name": "Api", "Value": "hello"}]
    minute1 = start + dt.timedelta(minutes=1)
    expected = {"Sum": (5050, 500), "Average": (50.5, 500), "Minimum": (1, 500),
                "Maximum": (100, 500), "SampleCount": (100, 1), "p50": (50, 500), "p99": (99, 500)}
    for stat, (first, second) in expected.items():
        assert _get(moto_server, namespace, "Latency", stat, dims, start, region="eu-west-1") == [
            (start, first), (minute1, second)], stat
    assert _get(moto_server, namespace, "Latency", "Sum", dims, start) == []  # other region
    assert _get(moto_server, namespace, "Latency", "Sum", [], start, region="eu-west-1") == []
    assert _get(moto_server, namespace, "Latency", "Sum", dims, start, region="eu-west-1",
                unit="Count") == []


def test_real_time_stamps_of_a_functions_processes_land_at_their_template_instant(moto_server):
    namespace = unique("Emf")
    clock = Clock(scale=60, wall_start=dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.timezone.utc))
    ingestor = EmfIngestor(moto_server, "us-east-1", clock)
    ingestor.ingest(_line(namespace=namespace, timestamp=int(time.time() * 1000)), real_time=True)
    ingestor.flush()
    points = _get(moto_server, namespace, "Latency", "SampleCount", [{"Name": "Api", "Value": "hello"}],
                  clock.wall_start - dt.timedelta(minutes=1))
    assert [v for _, v in points] == [1]  # stamped now in template time, not years of real time


def test_ingestion_keeps_up_with_thousands_of_lines_per_second_and_flushes_in_few_calls(moto_server):
    namespace = unique("Emf")
    ingestor = EmfIngestor(moto_server, "us-east-1", Clock())
    lines = [_line(namespace=namespace, metrics=(("Latency", "Milliseconds"), ("status_2xx", "Count")),
                   status_2xx=1, Latency=100 + (i % 700) * 0.5, timestamp=T0_MS + i * 20)
             for i in range(10_000)]
    started = time.perf_counter()
    for line in lines:
        ingestor.ingest(line, "simulator")
    ingested = time.perf_counter() - started
    ingestor.flush()
    assert ingestor.values == 20_000 and ingestor.calls <= 2
    # ~20,000 lines/s on one core here; a run writes at most a few hundred per real second.
    assert len(lines) / ingested > 2_000
    start = dt.datetime.fromtimestamp(T0_MS / 1000, dt.timezone.utc)
    counts = _get(moto_server, namespace, "status_2xx", "Sum", [{"Name": "Api", "Value": "hello"}], start, 5)
    assert sum(v for _, v in counts) == 10_000


def test_an_event_over_cloudwatch_logs_one_megabyte_is_dropped_with_its_reason():
    line = _line(padding="x" * (1024 * 1024))
    assert extract(line) == ([], ["the event is larger than CloudWatch Logs' 1 MB"])
