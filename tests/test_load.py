"""Customer traffic: open-loop rate, honest latency, routing through Route 53, blog metrics."""
import datetime as dt
import json
import time

import pytest

from local_emulator.clock import Clock
from local_emulator.aws.cloudwatch import AlarmEvaluator, MetricsPublisher
from local_emulator.experiment.load import LoadGenerator, Telemetry, served_region, status_metric
from local_emulator.aws.route53 import LatencyRouter
from sample_app import simulator
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


def test_classification_and_scheduling_are_the_sample_apps_simulator():
    clock = Clock(scale=100)
    load = LoadGenerator({}, _router(clock, {"us-east-1": True, "eu-west-1": True}), clock)
    assert (status_metric, served_region) == (simulator.status_metric, simulator.served_region)
    assert all(isinstance(c, simulator.CustomerSimulator) for c in load.clients.values())
    assert sorted(load.clients) == ["eu-west-1", "us-east-1"]


def test_each_client_region_sends_the_configured_rate():
    clock = Clock(scale=100)
    health = {"us-east-1": True, "eu-west-1": True}
    load = LoadGenerator({r: _hello(r) for r in health}, _router(clock, health), clock, rate_per_s=1)
    load.start()
    while clock.now() < 50:  # template s, however busy the machine
        time.sleep(0.01)
    load.stop()
    records = load.snapshot()
    for region in health:
        # Open loop: each request is due one interval after the one before, none skipped.
        dues = sorted(x.at for x in records if x.client_region == region)
        assert len(dues) >= 40, (region, len(dues))  # ~50; the last few may be cut by stop()
        assert all(b - a == pytest.approx(1.0) for a, b in zip(dues, dues[1:])), (region, dues)
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
    evaluator = AlarmEvaluator(moto_server, "us-east-1", clock, [alarm])
    telemetry = Telemetry(clock, [publisher], [evaluator])
    load.start()
    telemetry.start()
    # Until the alarm fires (about one template minute of errors), not for a fixed while: the
    # clock runs on at 600x after the load stops, so the minute the last evaluation reads may
    # hold no requests at all on a busy machine.
    deadline = time.monotonic() + 30
    while not any(state == "ALARM" for _, _, state in evaluator.history) and time.monotonic() < deadline:
        time.sleep(0.05)
    load.stop()
    telemetry.stop()
    stats = cloudwatch.get_metric_statistics(
        Namespace=namespace, MetricName="region_eu-west-1", Period=3600, Statistics=["Sum"],
        StartTime=clock.wall_start - dt.timedelta(minutes=1), EndTime=clock.wall() + dt.timedelta(minutes=1))
    eu_ok = sum(1 for r in load.records if r.served_region == "eu-west-1")
    assert sum(p["Sum"] for p in stats["Datapoints"]) == eu_ok > 0
    states = [state for _, _, state in evaluator.history]
    assert "ALARM" in states, evaluator.history
    # Each change was written to the emulator: it holds the last state the evaluator gave.
    assert cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]["StateValue"] == states[-1]


def test_each_client_regions_emf_lines_go_to_its_writer_one_per_request():
    clock = Clock(scale=100)
    health = {"us-east-1": False, "eu-west-1": True}
    lines = {r: [] for r in health}
    load = LoadGenerator({r: _hello(r) for r in health}, _router(clock, health), clock, rate_per_s=1,
                         emf_writers={r: lines[r].append for r in health})
    records = _run(load, 0.2)
    for region in health:
        docs = [json.loads(line) for line in lines[region]]
        mine = [r for r in records if r.client_region == region]
        assert mine and len(docs) == len(mine)
        assert {d["Api"] for d in docs} == {"/hello"}
        # us-east-1 is unhealthy: its clients are answered by eu-west-1, and say so.
        assert sum(d.get("region_eu-west-1", 0) for d in docs) == len(mine)
        assert sorted(d["Latency"] for d in docs) == pytest.approx(sorted(r.latency_ms for r in mine),
                                                                   abs=0.001)
        assert {d["_aws"]["Timestamp"] for d in docs} == {
            round(clock.wall(r.at).timestamp() * 1000) for r in mine}


def test_emf_writers_and_publishers_together_are_refused():
    clock = Clock()
    with pytest.raises(ValueError, match="pass emf_writers or publishers, not both"):
        LoadGenerator({}, _router(clock, {"us-east-1": True, "eu-west-1": True}), clock,
                      emf_writers={"us-east-1": print}, publishers={"us-east-1": object()})
