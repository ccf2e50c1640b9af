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
