"""The sample app's dashboard (sample_app/dashboard.py): the standard CloudWatch body, every
widget in a region where its metrics are published, and only metrics the project emits."""
import json

import pytest

from chaos_layer import config
from sample_app import dashboard

REGIONS = ["us-east-1", "eu-west-1"]
ALARM = dashboard.StopAlarm(
    arn="arn:aws:cloudwatch:eu-west-1:123456789012:alarm:lambda-chaos-sample-app-hello-5xx",
    namespace="AWS/ApiGateway", metric="5XXError",
    dimensions=(("ApiName", "lambda-chaos-sample-app-api"), ("Stage", "prod"),
                ("Resource", "/hello"), ("Method", "GET")),
    stat="Average", period=60, threshold=0.5)
FUNCTIONS = ["lambda-chaos-sample-app-HealthFunction-AB", "lambda-chaos-sample-app-HelloFunction-CD"]


def _body(**overrides):
    values = dict(region="eu-west-1", app_regions=REGIONS,
                  health_checks={"us-east-1": "hc-use1", "eu-west-1": "hc-euw1"},
                  functions=FUNCTIONS, alarm=ALARM)
    values.update(overrides)
    return dashboard.dashboard_body(**values)


def _metric_widgets(body):
    return [w for w in body["widgets"] if w["type"] == "metric"]


def test_body_is_json_of_the_standard_structure():
    body = json.loads(json.dumps(_body()))
    assert set(body) == {"start", "periodOverride", "widgets"}
    for widget in body["widgets"]:
        assert widget["type"] in ("metric", "alarm")
        assert {"x", "y", "width", "height", "properties"} <= set(widget)
        assert 0 <= widget["x"] and widget["x"] + widget["width"] <= 24
    for widget in _metric_widgets(body):
        props = widget["properties"]
        assert {"title", "region", "stat", "period", "metrics", "yAxis"} <= set(props)
        assert props["yAxis"]["left"]["min"] == 0
        for entry in props["metrics"]:
            *names, options = entry
            assert isinstance(options, dict) and "..." not in names
            assert all(isinstance(n, str) for n in names) and len(names) % 2 == 0
            assert {"label", "stat", "period", "region"} <= set(options)
            assert options["region"] == props["region"]   # a widget never mixes regions


def test_no_search_expressions_or_math():
    text = json.dumps(_body())
    assert "SEARCH" not in text and "expression" not in text


def test_every_widget_names_a_region_and_alarm_widgets_name_this_regions_alarm():
    body = _body()
    for widget in body["widgets"]:
        if widget["type"] == "metric":
            assert widget["properties"]["region"] in REGIONS
        else:
            assert all(":eu-west-1:" in arn for arn in widget["properties"]["alarms"])


def test_route53_health_widget_reads_us_east_1_with_one_line_per_region():
    (health,) = [w for w in _metric_widgets(_body())
                 if w["properties"]["metrics"][0][0] == "AWS/Route53"]
    assert health["properties"]["region"] == "us-east-1"
    ids = [m[3] for m in health["properties"]["metrics"]]
    assert ids == ["hc-use1", "hc-euw1"]
    assert all(m[-1]["region"] == "us-east-1" for m in health["properties"]["metrics"])


def test_clients_widgets_exist_for_every_app_region_and_read_that_region():
    body = _body()
    for client in REGIONS:
        titles = {w["properties"]["title"]: w for w in _metric_widgets(body)
                  if w["properties"]["region"] == client and f"clients in {client}" in
                  w["properties"]["title"]}
        assert len(titles) == 3, titles.keys()
        served = next(w for t, w in titles.items() if t.startswith("Requests served"))
        assert [m[1] for m in served["properties"]["metrics"]] == ["region_us-east-1",
                                                                   "region_eu-west-1"]


def test_a_region_without_a_health_check_id_has_no_health_line_but_its_clients_widgets():
    body = _body(health_checks={"eu-west-1": "hc-euw1"})
    health = _metric_widgets(body)[0]
    assert [m[3] for m in health["properties"]["metrics"]] == ["hc-euw1"]
    assert any("clients in us-east-1" in w["properties"]["title"] for w in _metric_widgets(body))


def test_health_check_of_a_region_not_in_the_app_is_refused():
    with pytest.raises(ValueError, match="ap-south-1, which is not in app_regions"):
        _body(health_checks={"ap-south-1": "hc"})


def test_every_metric_is_one_the_project_emits():
    loadgen = ({dashboard.region_metric(r) for r in REGIONS} | set(dashboard.STATUS_METRICS)
               | {dashboard.LATENCY_METRIC})
    emitted = {
        "LoadGen": (loadgen, {dashboard.API_DIMENSION}),
        config.DEFAULTS[config.METRICS_NAMESPACE]: (set(dashboard.CHAOS_METRICS),
                                                    set(dashboard.CHAOS_DIMENSIONS)),
        "AWS/Lambda": ({"Duration", "Errors", "Throttles"}, {"FunctionName"}),
        "AWS/Route53": ({"HealthCheckStatus"}, {"HealthCheckId"}),
        "AWS/ApiGateway": ({"5XXError"}, {"ApiName", "Stage", "Resource", "Method"}),
    }
    for namespace, metric, dims, region in dashboard.metrics_named(_body()):
        names, dimensions = emitted[namespace]
        assert metric in names, (namespace, metric)
        assert set(dims) == dimensions, (namespace, metric, dims)
        if namespace == "LoadGen":
            assert dims == {"Api": "/hello"}


def test_chaos_namespace_and_fault_types_come_from_the_layer_settings():
    assert dashboard.CHAOS_NAMESPACE == config.DEFAULTS[config.METRICS_NAMESPACE]
    assert dashboard.FAULT_TYPES == config.FAULT_TYPES
    metrics_go = (config.SETTINGS_FILE.rsplit("/", 1)[0] + "/internal/metrics/metrics.go")
    source = open(metrics_go, encoding="utf-8").read()
    for metric in dashboard.CHAOS_METRICS:
        assert f'"Name":"{metric}"' in source
    assert '"Dimensions":[["FunctionName","FaultType"]]' in source


def test_latency_widgets_show_p50_and_p99_of_the_simulators_latency():
    latency = [w for w in _metric_widgets(_body()) if w["properties"]["title"].startswith("Latency as")]
    assert len(latency) == 2
    for widget in latency:
        assert [(m[1], m[-1]["stat"]) for m in widget["properties"]["metrics"]] == [
            ("Latency", "p50"), ("Latency", "p99")]


def test_stop_condition_widget_draws_the_alarms_metric_and_threshold():
    body = _body()
    (stop,) = [w for w in _metric_widgets(body) if w["properties"]["title"].startswith("Stop")]
    (metric,) = stop["properties"]["metrics"]
    assert metric[:2] == ["AWS/ApiGateway", "5XXError"] and metric[-1]["stat"] == "Average"
    assert stop["properties"]["annotations"]["horizontal"][0]["value"] == 0.5
    (status,) = [w for w in body["widgets"] if w["type"] == "alarm"]
    assert status["properties"]["alarms"] == [ALARM.arn]


def test_name_and_arn_are_predictable_and_global():
    name = dashboard.dashboard_name("lambda-chaos-sample-app", "eu-west-1")
    assert name == "lambda-chaos-sample-app-eu-west-1"
    assert dashboard.dashboard_arn("aws", "123456789012", name) == \
        "arn:aws:cloudwatch::123456789012:dashboard/lambda-chaos-sample-app-eu-west-1"


def test_stop_alarm_from_describe_alarms_gives_the_same_widget():
    described = {"AlarmName": "lambda-chaos-sample-app-hello-5xx", "AlarmArn": ALARM.arn,
                 "Namespace": "AWS/ApiGateway", "MetricName": "5XXError", "Statistic": "Average",
                 "Period": 60, "Threshold": 0.5, "EvaluationPeriods": 5,
                 "Dimensions": [{"Name": n, "Value": v} for n, v in ALARM.dimensions]}
    alarm = dashboard.StopAlarm.from_metric_alarm(described)
    assert _body(alarm=alarm) == _body()


def test_loadgen_metrics_are_the_ones_the_simulators_emf_lines_declare():
    from sample_app import simulator
    declared = set()
    for status, region in ((200, "us-east-1"), (200, "eu-west-1"), (404, None), (504, None)):
        outcome = simulator.Outcome(path="/hello", due=0.0, status=status, latency_ms=12.5,
                                    served_region=region)
        line = json.loads(simulator.emf_line(outcome, dashboard.LOADGEN_NAMESPACE, 0))
        (directive,) = line["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == dashboard.LOADGEN_NAMESPACE
        assert directive["Dimensions"] == [[dashboard.API_DIMENSION]]
        assert line[dashboard.API_DIMENSION] == "/hello"
        declared |= {m["Name"] for m in directive["Metrics"]}
    plotted = {metric for namespace, metric, _, _ in dashboard.metrics_named(_body())
               if namespace == dashboard.LOADGEN_NAMESPACE}
    assert plotted == declared
