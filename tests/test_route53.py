"""Route 53's health checks and latency routing, with the semantics the module states."""
import threading
import time

import pytest

from local_emulator.clock import Clock
from local_emulator.aws.route53 import (MIN_TIMEOUT_REAL_S, HealthCheckConfig, HealthChecker,
                                    HealthCheckState, LatencyRouter, check_succeeded)
from tests.emulator_fixtures import moto_server, unique  # noqa: F401 - fixture

LATENCY = {("us-east-1", "us-east-1"): 10, ("us-east-1", "eu-west-1"): 80,
           ("eu-west-1", "eu-west-1"): 10, ("eu-west-1", "us-east-1"): 80}


@pytest.mark.parametrize("status, ok", [(200, True), (204, True), (302, True), (399, True),
                                        (400, False), (429, False), (500, False), (504, False),
                                        (None, False)])
def test_a_check_succeeds_on_2xx_and_3xx_only(status, ok):
    assert check_succeeded(status) is ok


def test_endpoint_turns_unhealthy_after_threshold_consecutive_failures():
    state = HealthCheckState(HealthCheckConfig(failure_threshold=3))
    verdicts = [state.record(t, s).healthy_after for t, s in enumerate([500, 500, 200, 500, 500, 500])]
    assert verdicts == [True, True, True, True, True, False]
    assert state.transitions == [(5, False)]


def test_endpoint_turns_healthy_again_after_threshold_consecutive_successes():
    state = HealthCheckState(HealthCheckConfig(failure_threshold=2))
    for t, status in enumerate([None, None, 200, None, 200, 200]):
        state.record(t, status)
    assert state.transitions == [(1, False), (5, True)]
    assert state.healthy


def test_failure_threshold_outside_route53_range_is_refused():
    with pytest.raises(ValueError, match="failure_threshold 11 must be 1–10"):
        HealthCheckConfig(failure_threshold=11)


def test_a_probe_that_hangs_past_the_timeout_is_a_failure_at_the_timeout():
    release = threading.Event()
    checker = HealthChecker("us", lambda: (release.wait(10), 200)[1], Clock(scale=4),
                            HealthCheckConfig(timeout_s=2.0))
    started = time.monotonic()
    result = checker.check_once()
    elapsed = time.monotonic() - started
    release.set()
    checker.stop()
    assert result.status is None and not result.ok
    assert 0.45 <= elapsed < 1.5  # 2 template s at scale 4 = 0.5 real s


def test_the_timeout_never_drops_below_the_real_floor():
    release = threading.Event()
    checker = HealthChecker("us", lambda: (release.wait(10), 200)[1], Clock(scale=1000),
                            HealthCheckConfig(timeout_s=2.0))
    started = time.monotonic()
    checker.check_once()
    release.set()
    checker.stop()
    assert time.monotonic() - started >= MIN_TIMEOUT_REAL_S


def test_a_probe_that_raises_is_a_failed_check():
    def probe():
        raise ConnectionResetError("reset")
    checker = HealthChecker("us", probe, Clock(scale=20))
    assert checker.check_once().ok is False
    checker.stop()


def test_checker_runs_every_request_interval_and_detects_an_outage():
    statuses = {"value": 200}
    clock = Clock(scale=600)
    checker = HealthChecker("us", lambda: statuses["value"], clock,
                            HealthCheckConfig(request_interval_s=10, failure_threshold=3)).start()
    time.sleep(0.1)  # ~60 template s: about 6 checks
    statuses["value"] = 503
    deadline = time.monotonic() + 5
    while checker.healthy and time.monotonic() < deadline:
        time.sleep(0.01)
    checker.stop()
    results = checker.state.results
    gaps = [b.at - a.at for a, b in zip(results, results[1:])]
    assert not checker.healthy
    assert sorted(gaps)[len(gaps) // 2] == pytest.approx(10, rel=0.5)
    # Unhealthy at the third failed check in a row (failure_threshold), about 20 s after the
    # first: counted in checks, since a stall of a few real ms is many template s at 600x.
    first_bad = next(i for i, r in enumerate(results) if not r.ok)
    assert [r.ok for r in results[first_bad:first_bad + 3]] == [False] * 3
    assert [r.healthy_after for r in results[first_bad:first_bad + 3]] == [True, True, False]
    assert checker.state.transitions[0] == (results[first_bad + 2].at, False)


def _router(health, ttl_s=0.0):
    return LatencyRouter(LATENCY, {r: (lambda r=r: health[r]) for r in health}, Clock(), ttl_s=ttl_s)


def test_clients_go_to_their_lowest_latency_healthy_region():
    router = _router({"us-east-1": True, "eu-west-1": True})
    assert router.resolve("us-east-1") == "us-east-1"
    assert router.resolve("eu-west-1") == "eu-west-1"


def test_an_unhealthy_region_fails_over_to_the_next_lowest_latency():
    health = {"us-east-1": False, "eu-west-1": True}
    router = _router(health)
    assert router.resolve("us-east-1") == "eu-west-1"
    health["us-east-1"] = True
    assert router.resolve("us-east-1") == "us-east-1"


def test_when_every_region_is_unhealthy_routing_acts_as_if_all_were_healthy():
    router = _router({"us-east-1": False, "eu-west-1": False})
    assert router.resolve("us-east-1") == "us-east-1"
    assert router.resolve("eu-west-1") == "eu-west-1"


def test_clients_keep_a_cached_answer_until_the_ttl_expires():
    health = {"us-east-1": True, "eu-west-1": True}
    clock = Clock(scale=600)
    router = LatencyRouter(LATENCY, {r: (lambda r=r: health[r]) for r in health}, clock, ttl_s=60)
    assert router.resolve("us-east-1") == "us-east-1"
    health["us-east-1"] = False
    assert router.resolve("us-east-1") == "us-east-1"  # cached
    time.sleep(clock.to_real(61))
    assert router.resolve("us-east-1") == "eu-west-1"


def test_unknown_client_region_is_refused_naming_the_known_ones():
    with pytest.raises(ValueError, match="no latency records for client region ap-south-1"):
        _router({"us-east-1": True, "eu-west-1": True}).resolve("ap-south-1")


def test_each_check_publishes_health_check_status_to_us_east_1_under_its_id(moto_server):
    import datetime as dt
    from local_emulator.aws.cloudwatch import MetricsPublisher
    from local_emulator.aws.route53 import METRICS_NAMESPACE, METRICS_REGION
    clock = Clock(scale=1, wall_start=dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.timezone.utc))
    namespace, check_id = unique(METRICS_NAMESPACE), unique("hc")
    publisher = MetricsPublisher(moto_server, METRICS_REGION, clock, namespace)
    statuses = iter([200, 503, 503])
    checker = HealthChecker("eu-west-1", lambda: next(statuses), clock,
                            HealthCheckConfig(failure_threshold=2), metrics=publisher,
                            health_check_id=check_id)
    for _ in range(3):
        checker.check_once()
    checker.stop()
    publisher.flush()

    def value(metric, stat, region=METRICS_REGION):
        query = {"Id": "q", "MetricStat": {"Metric": {"Namespace": namespace, "MetricName": metric,
                                                      "Dimensions": [{"Name": "HealthCheckId", "Value": check_id}]},
                                           "Period": 60, "Stat": stat}}
        return moto_server.client("cloudwatch", region).get_metric_data(
            MetricDataQueries=[query], StartTime=clock.wall_start,
            EndTime=clock.wall_start + dt.timedelta(minutes=1))["MetricDataResults"][0]["Values"]
    # healthy, healthy (1 failure of 2), unhealthy: 1, 1, 0
    assert (value("HealthCheckStatus", "Minimum"), value("HealthCheckStatus", "Maximum")) == ([0], [1])
    assert value("HealthCheckStatus", "SampleCount") == [3]
    assert value("HealthCheckPercentageHealthy", "Average") == [pytest.approx(200 / 3)]
    assert value("HealthCheckStatus", "Minimum", region="eu-west-1") == []


def test_publishing_a_checks_metrics_needs_its_id():
    with pytest.raises(ValueError, match="needs the deployed health check's id"):
        HealthChecker("us", lambda: 200, Clock(), metrics=object())
