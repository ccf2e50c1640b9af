"""Metrics go to the emulator's CloudWatch, and alarms are evaluated from their definitions."""
import datetime as dt

import pytest

from local_emulator.clock import Clock
from local_emulator.aws.cloudwatch import AlarmEvaluator, MetricsPublisher, breaches
from tests.emulator_fixtures import moto_server, unique  # noqa: F401 - fixture


class FrozenClock(Clock):
    """Template time that only moves when the test says so; wall time aligned to a minute."""

    def __init__(self):
        start = dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.timezone.utc)
        super().__init__(scale=1, wall_start=start)
        self.t = 0.0

    def now(self):
        return self.t


def _alarm(moto_server, namespace, **overrides):
    name = unique("errors-high")
    definition = dict(AlarmName=name, Namespace=namespace, MetricName="status_5xx",
                      Statistic="Sum", Period=60, EvaluationPeriods=2, Threshold=5,
                      ComparisonOperator="GreaterThanThreshold")
    definition.update(overrides)
    moto_server.client("cloudwatch").put_metric_alarm(**definition)
    return name


def _state(moto_server, name):
    return moto_server.client("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"][0]


def _publish(moto_server, clock, namespace, counts_per_minute):
    publisher = MetricsPublisher(moto_server, "us-east-1", clock, namespace=namespace)
    for minute, count in enumerate(counts_per_minute):
        for second in range(count):
            publisher.add("status_5xx", minute * 60 + second)
    publisher.flush()


def test_alarm_fires_when_enough_periods_breach(moto_server):
    clock, namespace = FrozenClock(), unique("LoadGen")
    name = _alarm(moto_server, namespace)
    _publish(moto_server, clock, namespace, [0, 2, 9, 7])
    clock.t = 4 * 60 + 1
    [verdict] = AlarmEvaluator(moto_server, "us-east-1", clock, [name]).evaluate()
    assert verdict.values == (9, 7)
    assert verdict.state == "ALARM"
    alarm = _state(moto_server, name)
    assert alarm["StateValue"] == "ALARM"
    assert "2 of the last 2 periods of 60 s breached Sum GreaterThanThreshold 5" in alarm["StateReason"]


def test_alarm_stays_ok_when_one_period_is_below_threshold_and_an_unchanged_state_is_not_rewritten(
        moto_server):
    clock, namespace = FrozenClock(), unique("LoadGen")
    name = _alarm(moto_server, namespace)
    _publish(moto_server, clock, namespace, [9, 3, 9])
    clock.t = 3 * 60 + 1
    evaluator = AlarmEvaluator(moto_server, "us-east-1", clock, [name])
    [verdict] = evaluator.evaluate()
    assert (verdict.values, verdict.state) == ((3, 9), "OK")
    assert _state(moto_server, name)["StateValue"] == "OK"  # moto creates alarms in OK
    assert evaluator.history == []


def test_the_current_incomplete_period_is_not_evaluated(moto_server):
    clock, namespace = FrozenClock(), unique("LoadGen")
    name = _alarm(moto_server, namespace, EvaluationPeriods=1)
    _publish(moto_server, clock, namespace, [0, 50])
    clock.t = 60 + 30  # the minute with 50 errors is still running
    [verdict] = AlarmEvaluator(moto_server, "us-east-1", clock, [name]).evaluate()
    assert verdict.state != "ALARM"


def test_datapoints_to_alarm_m_of_n(moto_server):
    clock, namespace = FrozenClock(), unique("LoadGen")
    name = _alarm(moto_server, namespace, EvaluationPeriods=3, DatapointsToAlarm=2)
    _publish(moto_server, clock, namespace, [9, 0, 9])
    clock.t = 3 * 60
    [verdict] = AlarmEvaluator(moto_server, "us-east-1", clock, [name]).evaluate()
    assert verdict.state == "ALARM"


def test_no_data_is_insufficient_data_unless_missing_data_is_treated(moto_server):
    clock = FrozenClock()
    clock.t = 600
    plain = _alarm(moto_server, unique("Empty"))
    lenient = _alarm(moto_server, unique("Empty"), TreatMissingData="notBreaching")
    strict = _alarm(moto_server, unique("Empty"), TreatMissingData="breaching")
    verdicts = {v.name: v.state for v in
                AlarmEvaluator(moto_server, "us-east-1", clock, [plain, lenient, strict]).evaluate()}
    assert verdicts == {plain: "INSUFFICIENT_DATA", lenient: "OK", strict: "ALARM"}


@pytest.mark.parametrize("operator, value, expected", [
    ("GreaterThanThreshold", 5, False), ("GreaterThanOrEqualToThreshold", 5, True),
    ("LessThanThreshold", 4, True), ("LessThanOrEqualToThreshold", 6, False)])
def test_operators_compare_as_cloudwatch_does(operator, value, expected):
    assert breaches(operator, value, 5) is expected


def test_anomaly_detection_operators_are_refused_by_name():
    with pytest.raises(ValueError, match="'LessThanLowerThreshold' is not supported locally"):
        breaches("LessThanLowerThreshold", 1, 2)


def test_average_alarm_on_per_request_values_like_api_gateways_5xx_error(moto_server):
    clock, namespace = FrozenClock(), unique("AWS/ApiGateway")
    dims = [{"Name": "ApiName", "Value": "sample-api"}, {"Name": "Resource", "Value": "/hello"}]
    name = _alarm(moto_server, namespace, MetricName="5XXError", Statistic="Average", Threshold=0.5,
                  EvaluationPeriods=2, ComparisonOperator="GreaterThanOrEqualToThreshold",
                  Dimensions=dims)
    publisher = MetricsPublisher(moto_server, "us-east-1", clock, namespace=namespace)
    for minute, errors in enumerate([0, 3, 4]):  # of 4 requests a minute
        for i in range(4):
            publisher.add("5XXError", minute * 60 + i, 1.0 if i < errors else 0.0, dims)
    publisher.add("5XXError", 130, 1.0, [{"Name": "ApiName", "Value": "other-api"}])
    publisher.flush()
    clock.t = 3 * 60
    evaluator = AlarmEvaluator(moto_server, "us-east-1", clock, [name])
    [verdict] = evaluator.evaluate()
    assert (verdict.values, verdict.state) == ((0.75, 1.0), "ALARM")
    assert evaluator.worst == {name: 1.0}


# --- GetMetricData and GetMetricStatistics as CloudWatch answers them (moto_cloudwatch.py) ---
T0 = dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.timezone.utc)


def _query(namespace, metric, stat, dims=(), period=60, unit=None, qid="q"):
    stat_spec = {"Metric": {"Namespace": namespace, "MetricName": metric, "Dimensions": list(dims)},
                 "Period": period, "Stat": stat}
    if unit:
        stat_spec["Unit"] = unit
    return {"Id": qid, "MetricStat": stat_spec}


def _data(moto_server, *queries, start=T0, minutes=5, scan_by="TimestampAscending"):
    answer = moto_server.client("cloudwatch").get_metric_data(
        MetricDataQueries=list(queries), StartTime=start, EndTime=start + dt.timedelta(minutes=minutes),
        ScanBy=scan_by)
    return {r["Id"]: list(zip(r["Timestamps"], r["Values"])) for r in answer["MetricDataResults"]}


def _put(moto_server, namespace, *data):
    moto_server.client("cloudwatch").put_metric_data(Namespace=namespace, MetricData=list(data))


def test_percentiles_p50_and_p99_are_computed_from_the_values(moto_server):
    # moto 5.2.1 answers None for every percentile; CloudWatch answers from the raw values.
    namespace, dims = unique("Latency"), [{"Name": "ApiName", "Value": "api"}]
    _put(moto_server, namespace,
         {"MetricName": "Latency", "Dimensions": dims, "Timestamp": T0 + dt.timedelta(seconds=1),
          "Values": [float(v) for v in range(1, 101)], "Unit": "Milliseconds"},
         {"MetricName": "Latency", "Dimensions": dims, "Timestamp": T0 + dt.timedelta(seconds=70),
          "Values": [10.0, 1000.0], "Counts": [99.0, 1.0], "Unit": "Milliseconds"})
    answer = _data(moto_server, _query(namespace, "Latency", "p50", dims, qid="p50"),
                   _query(namespace, "Latency", "p99", dims, qid="p99"),
                   _query(namespace, "Latency", "p99.9", dims, qid="p999"))
    minute1 = T0 + dt.timedelta(minutes=1)
    assert answer["p50"] == [(T0, 50.0), (minute1, 10.0)]
    assert answer["p99"] == [(T0, 99.0), (minute1, 10.0)]
    assert answer["p999"] == [(T0, 100.0), (minute1, 1000.0)]


def test_a_percentile_of_a_statistic_set_only_when_its_count_is_one_or_min_equals_max(moto_server):
    namespace = unique("Sets")
    stats = lambda n, low, high: {"SampleCount": n, "Sum": n * (low + high) / 2, "Minimum": low,  # noqa: E731
                                  "Maximum": high}
    _put(moto_server, namespace,
         {"MetricName": "same", "Timestamp": T0, "StatisticValues": stats(4, 7.0, 7.0)},
         {"MetricName": "spread", "Timestamp": T0, "StatisticValues": stats(4, 1.0, 9.0)})
    answer = _data(moto_server, _query(namespace, "same", "p99", qid="same"),
                   _query(namespace, "spread", "p99", qid="spread"),
                   _query(namespace, "spread", "Average", qid="average"))
    assert answer == {"same": [(T0, 7.0)], "spread": [], "average": [(T0, 5.0)]}


def test_dimensions_match_exactly_as_in_cloudwatch_not_as_a_sum_of_every_series(moto_server):
    namespace = unique("AWS/Lambda")
    one = [{"Name": "FunctionName", "Value": "hello"}]
    two = one + [{"Name": "Resource", "Value": "hello"}]
    _put(moto_server, namespace,
         {"MetricName": "Errors", "Timestamp": T0, "Value": 1.0},
         {"MetricName": "Errors", "Timestamp": T0, "Value": 10.0, "Dimensions": one},
         {"MetricName": "Errors", "Timestamp": T0, "Value": 100.0, "Dimensions": list(reversed(two))})
    _put(moto_server, unique("Elsewhere"), {"MetricName": "Errors", "Timestamp": T0, "Value": 1000.0,
                                            "Dimensions": one})
    answer = _data(moto_server, _query(namespace, "Errors", "Sum", qid="none"),
                   _query(namespace, "Errors", "Sum", one, qid="one"),
                   _query(namespace, "Errors", "Sum", two, qid="two"),
                   _query(namespace, "Errors", "Sum", [{"Name": "FunctionName", "Value": "x"}], qid="x"))
    assert answer == {"none": [(T0, 1.0)], "one": [(T0, 10.0)], "two": [(T0, 100.0)], "x": []}
    statistics = moto_server.client("cloudwatch").get_metric_statistics(
        Namespace=namespace, MetricName="Errors", Dimensions=one, Statistics=["Sum"], Period=60,
        StartTime=T0, EndTime=T0 + dt.timedelta(minutes=1))["Datapoints"]
    assert [p["Sum"] for p in statistics] == [10.0]


def test_every_plain_statistic_per_period_newest_first_by_default_and_unit_filters(moto_server):
    namespace = unique("Plain")
    for minute, values in enumerate([[1.0, 2.0, 6.0], [4.0]]):
        _put(moto_server, namespace, {"MetricName": "m", "Timestamp": T0 + dt.timedelta(minutes=minute, seconds=30),
                                      "Values": values, "Unit": "Count"})
    queries = [_query(namespace, "m", s, qid=s.lower()) for s in
               ("Sum", "Average", "Minimum", "Maximum", "SampleCount")]
    minute1 = T0 + dt.timedelta(minutes=1)
    assert _data(moto_server, *queries, scan_by="TimestampDescending") == {
        "sum": [(minute1, 4.0), (T0, 9.0)], "average": [(minute1, 4.0), (T0, 3.0)],
        "minimum": [(minute1, 4.0), (T0, 1.0)], "maximum": [(minute1, 4.0), (T0, 6.0)],
        "samplecount": [(minute1, 1.0), (T0, 3.0)]}
    assert _data(moto_server, _query(namespace, "m", "Sum", unit="Seconds")) == {"q": []}
    # StartTime is rounded down to the minute, and periods are stamped with their start
    assert _data(moto_server, _query(namespace, "m", "Sum", period=120),
                 start=T0 + dt.timedelta(seconds=20)) == {"q": [(T0, 13.0)]}


def test_an_unknown_statistic_is_refused_by_name(moto_server):
    from botocore.exceptions import ClientError
    with pytest.raises(ClientError, match="The statistic tm99 is not supported"):
        _data(moto_server, _query(unique("X"), "m", "tm99"))


def test_the_publisher_sends_values_so_percentiles_of_its_latencies_are_exact(moto_server):
    clock, namespace = FrozenClock(), unique("AWS/ApiGateway")
    dims = [{"Name": "ApiName", "Value": "api"}]
    publisher = MetricsPublisher(moto_server, "us-east-1", clock, namespace=namespace)
    for i in range(1, 201):
        publisher.add("Latency", (i - 1) * 0.25, float(i), dims, "Milliseconds")  # 200 values in 50 s
    assert publisher.flush() == 5  # five 10 s buckets, each one Values/Counts datum
    answer = _data(moto_server, _query(namespace, "Latency", "p99", dims, unit="Milliseconds", qid="p99"),
                   _query(namespace, "Latency", "SampleCount", dims, qid="n"))
    assert answer == {"p99": [(T0, 198.0)], "n": [(T0, 200.0)]}
