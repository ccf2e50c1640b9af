"""Customer traffic: open-loop rate, honest latency, routing through Route 53, blog metrics."""
import datetime as dt
import time

import pytest

from local_emulator.clock import Clock
from local_emulator.aws.cloudwatch import AlarmEvaluator, MetricsPublisher
from local_emulator.experiment.load import LoadGenerator, Telemetry, served_region, status_metric
from local_emulator.aws.route53 import LatencyRouter
from tests.emulator_fixtures import moto_server, unique  # noqa: F401 - fixture

LATENCY = {("us-east-1", "us-east-1"): 10, ("us-east-1", "eu-west-1"): 80,
           ("eu-west-1", "eu-west-1"): 10, ("eu-west-1", "us-east-1"): 80}


def _hello(region, delay_s=0.0, status=200):
    def api(path):
        time.sleep(delay_s)
        return status, f"Hello from region {region}" if status == 200 else "Internal server error"
    return api


def _router(clock, health):
    return LatencyRouter(LATENCY, {r: (lambda r=r: health[r]) for r in health}, clock, ttl_s=0)


def _run(load, real_s):
    load.start()
    time.sleep(real_s)
    load.stop()
    return load.snapshot()


@pytest.mark.parametrize("status, metric", [(200, "status_2xx"), (204, "status_2xx"),
                                            (404, "status_4xx"), (429, "status_4xx"),
                                            (500, "status_5xx"), (504, "status_5xx"),
                                            (302, "status_5xx")])
def test_status_metric_is_the_blogs(status, metric):
    assert status_metric(status) == metric


def test_served_region_is_read_from_a_2xx_body_only():
    assert served_region(200, '{"message": "Hello from region eu-west-1"}') == "eu-west-1"
    assert served_region(504, "Hello from region eu-west-1") is None
    assert served_region(200, "hello") is None


def test_each_client_region_sends_the_configured_rate():
    clock = Clock(scale=100)
    health = {"us-east-1": True, "eu-west-1": True}
    load = LoadGenerator({r: _hello(r) for r in health}, _router(clock, health), clock, rate_per_s=1)
    records = _run(load, 0.5)  # 50 template s: ~50 requests per client region
    per_client = {r: sum(1 for x in records if x.client_region == r) for r in health}
    assert all(40 <= n <= 55 for n in per_client.values()), per_client
    assert {(x.client_region, x.served_region) for x in records} == {
        ("us-east-1", "us-east-1"), ("eu-west-1", "eu-west-1")}


def test_latency_counts_from_the_scheduled_time_so_a_backlog_shows():
    clock = Clock(scale=10)
    health = {"us-east-1": True, "eu-west-1": True}
    slow = {r: _hello(r, delay_s=0.1) for r in health}  # 1 template s each
    load = LoadGenerator(slow, _router(clock, health), clock, rate_per_s=2, workers=1)
    records = sorted(_run(load, 0.6), key=lambda r: r.at)
    assert records[0].latency_ms == pytest.approx(1000, rel=0.5)
    assert records[-1].latency_ms > 3 * records[0].latency_ms  # queued behind the others


def test_an_unhealthy_region_sends_its_clients_to_the_other_region():
    clock = Clock(scale=100)
    health = {"us-east-1": False, "eu-west-1": True}
    load = LoadGenerator({r: _hello(r) for r in health}, _router(clock, health), clock, rate_per_s=1)
    records = _run(load, 0.2)
    us_clients = [r for r in records if r.client_region == "us-east-1"]
    assert us_clients and all(r.routed_region == r.served_region == "eu-west-1" for r in us_clients)


def test_an_api_that_raises_is_recorded_as_a_502_with_the_reason():
    clock = Clock(scale=100)
    health = {"us-east-1": True, "eu-west-1": True}

    def broken(path):
        raise ConnectionError("connection refused")
    load = LoadGenerator({"us-east-1": broken, "eu-west-1": _hello("eu-west-1")},
                         _router(clock, health), clock, rate_per_s=1, client_regions=["us-east-1"])
    record = load.send_one("us-east-1", clock.now())
    assert (record.status, record.error) == (502, "ConnectionError: connection refused")


def test_a_non_positive_rate_is_refused():
    clock = Clock()
    with pytest.raises(ValueError, match="rate 0 must be > 0 requests per template second"):
        LoadGenerator({}, _router(clock, {"us-east-1": True, "eu-west-1": True}), clock, rate_per_s=0)


def test_counts_reach_cloudwatch_and_the_alarm_fires_on_errors(moto_server):
    clock = Clock(scale=600, wall_start=dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1))
    namespace = unique("LoadGen")
    alarm = unique("five-xx")
    cloudwatch = moto_server.client("cloudwatch")
    cloudwatch.put_metric_alarm(AlarmName=alarm, Namespace=namespace, MetricName="status_5xx",
                                Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=3,
                                ComparisonOperator="GreaterThanThreshold")
    health = {"us-east-1": True, "eu-west-1": True}
    apis = {"us-east-1": _hello("us-east-1", status=500), "eu-west-1": _hello("eu-west-1")}
    publisher = MetricsPublisher(moto_server, "us-east-1", clock, namespace=namespace)
    load = LoadGenerator(apis, _router(clock, health), clock, rate_per_s=0.5,
                         publishers={"us-east-1": publisher, "eu-west-1": publisher})
    telemetry = Telemetry(clock, [publisher], [AlarmEvaluator(moto_server, "us-east-1", clock, [alarm])])
    load.start()
    telemetry.start()
    time.sleep(0.6)  # 6 template minutes
    load.stop()
    telemetry.stop()
    stats = cloudwatch.get_metric_statistics(
        Namespace=namespace, MetricName="region_eu-west-1", Period=3600, Statistics=["Sum"],
        StartTime=clock.wall_start - dt.timedelta(minutes=1), EndTime=clock.wall() + dt.timedelta(minutes=1))
    eu_ok = sum(1 for r in load.records if r.served_region == "eu-west-1")
    assert sum(p["Sum"] for p in stats["Datapoints"]) == eu_ok > 0
    assert cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]["StateValue"] == "ALARM"
