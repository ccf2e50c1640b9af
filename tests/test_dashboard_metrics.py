"""Every metric the sample app's dashboard draws is emitted by something the project deploys
(issue 11 §5): the sample app's own handlers with the real layer attached, run in the local
sandbox in two regions, the customer simulator (sample_app/simulator.py) calling them, Route 53
health checks of both regions, and CloudWatch Logs' EMF ingestion of every line they write.
Then each widget's metric, with its own stat, period and region, is asked of the emulator's
CloudWatch with GetMetricData, as the local report and the CloudWatch console ask it.
"""
import copy
import datetime as dt
import io
import zipfile
from pathlib import Path

import pytest
import yaml

from chaos_layer import config as chaos
from local_emulator.aws.api_gateway import ApiGateway
from local_emulator.aws.cloudwatch import MetricsPublisher
from local_emulator.aws.emf import EmfIngestor
from local_emulator.aws.route53 import METRICS_NAMESPACE, METRICS_REGION, HealthChecker
from local_emulator.clock import Clock
from local_emulator.environment.sandbox import Sandbox
from sample_app.dashboard import FAULT_TYPES, StopAlarm, dashboard_body
from sample_app.simulator import CustomerSimulator
from tests.emulator_fixtures import moto_server, unique  # noqa: F401 - fixture
from tests.layer_fixtures import build_layer

REPO = Path(__file__).resolve().parent.parent
REGIONS = ("us-east-1", "eu-west-1")
STAGE = "prod"
# The sample app's two functions (sample_app/template.yaml): file, handler, runtime, route.
FUNCTIONS = {"hello": ("hello.mjs", "hello.handler", "nodejs22.x", "/hello"),
             "health": ("health.py", "health.handler", "python3.12", "/health")}
FAULTS = {"latency": {chaos.LATENCY_MS: "1000"},
          "error": {chaos.PREVENT_EXECUTION: "true"},
          "response": {chaos.PREVENT_EXECUTION: "true"}}


def _template_alarm(stack: str, region: str) -> StopAlarm:
    """The stop-condition alarm as sample_app/template.yaml defines it (its `!Sub`s filled)."""
    class Loader(yaml.SafeLoader):
        pass
    Loader.add_multi_constructor("!", lambda loader, tag, node: loader.construct_scalar(node)
                                 if isinstance(node, yaml.ScalarNode) else None)
    template = yaml.load((REPO / "sample_app" / "template.yaml").read_text(), Loader=Loader)
    props = template["Resources"]["HelloErrorsAlarm"]["Properties"]
    fill = lambda text: str(text).replace("${AWS::StackName}", stack)  # noqa: E731
    return StopAlarm(arn=f"arn:aws:cloudwatch:{region}:123456789012:alarm:{fill(props['AlarmName'])}",
                     namespace=props["Namespace"], metric=props["MetricName"],
                     dimensions=tuple((d["Name"], fill(d["Value"])) for d in props["Dimensions"]),
                     stat=props["Statistic"], period=int(props["Period"]),
                     threshold=float(props["Threshold"]))


def _zip(path: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(path.name, path.read_text())
    return buffer.getvalue()


@pytest.fixture(scope="module")
def run(moto_server, tmp_path_factory):
    """Deploy the app's functions with the layer in both regions, drive the simulator through
    each region's API from each client region, inject each fault once into each function, run
    the health checks; return what the dashboard needs and the time window of the data."""
    tmp = tmp_path_factory.mktemp("dashboard")
    stack = unique("sample")
    s3 = moto_server.client("s3")
    bucket = unique("app-code")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="layer.zip", Body=build_layer(tmp).read_bytes())
    for key, (file, _, _, _) in FUNCTIONS.items():
        s3.put_object(Bucket=bucket, Key=f"{key}.zip", Body=_zip(REPO / "sample_app" / file))
    role = moto_server.client("iam").create_role(
        RoleName=unique("role"), AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    names = {r: {key: f"{stack}-{key}-{r}" for key in FUNCTIONS} for r in REGIONS}
    for region in REGIONS:
        lam = moto_server.client("lambda", region)
        layer = lam.publish_layer_version(LayerName=unique("chaos"), Content={
            "S3Bucket": bucket, "S3Key": "layer.zip"})["LayerVersionArn"]
        for key, (_, handler, runtime, _) in FUNCTIONS.items():
            lam.create_function(FunctionName=names[region][key], Runtime=runtime, Role=role,
                                Handler=handler, Timeout=10, Layers=[layer],
                                Code={"S3Bucket": bucket, "S3Key": f"{key}.zip"},
                                Environment={"Variables": {chaos.EXEC_WRAPPER: chaos.WRAPPER_PATH}})
    route53 = moto_server.client("route53")
    checks = {r: route53.create_health_check(CallerReference=unique("hc"), HealthCheckConfig={
        "Type": "HTTPS", "FullyQualifiedDomainName": f"api.execute-api.{r}.amazonaws.com",
        "ResourcePath": f"/{STAGE}/health"})["HealthCheck"]["Id"] for r in REGIONS}

    clock = Clock(scale=10)
    ingestors = {r: EmfIngestor(moto_server, r, clock) for r in REGIONS}
    lambda_metrics = {r: MetricsPublisher(moto_server, r, clock, "AWS/Lambda") for r in REGIONS}
    api_metrics = {r: MetricsPublisher(moto_server, r, clock, "AWS/ApiGateway") for r in REGIONS}
    route53_metrics = MetricsPublisher(moto_server, METRICS_REGION, clock, METRICS_NAMESPACE)
    sandbox = Sandbox(moto_server, clock, tmp / "sandbox", metrics=lambda_metrics, refresh_real_s=0.0,
                      log_sink=lambda region, group, line: ingestors[region].ingest(
                          line, group, real_time=True))
    gateways = {r: ApiGateway(r, {route: names[r][key] for key, (*_, route) in FUNCTIONS.items()},
                              sandbox, clock, metrics=api_metrics[r], api_name=f"{stack}-api",
                              stage=STAGE) for r in REGIONS}
    try:
        # customers in each region, answered once by each region (before and after a failover)
        for client in REGIONS:
            simulator = CustomerSimulator(gateways[client].respond, clock, rate_per_s=1,
                                          write=ingestors[client].writer("/aws/lambda/simulator"))
            for served in REGIONS:
                for _ in range(2):
                    simulator.request("/hello", clock.now(), send=gateways[served].respond)
            simulator.close()
        for region in REGIONS:
            checker = HealthChecker(region, lambda g=gateways[region]: g.request("/health")[0], clock,
                                    metrics=route53_metrics, health_check_id=checks[region])
            checker.check_once()
            checker.stop()
            lam = moto_server.client("lambda", region)
            for key, (*_, route) in FUNCTIONS.items():
                for fault, variables in FAULTS.items():
                    lam.update_function_configuration(
                        FunctionName=names[region][key], Environment={"Variables": {
                            chaos.EXEC_WRAPPER: chaos.WRAPPER_PATH, chaos.FAULT_TYPE: fault,
                            **variables}})
                    gateways[region].request(route)
    finally:
        for gateway in gateways.values():
            gateway.close()
        sandbox.close()
    for publisher in [*ingestors.values(), *lambda_metrics.values(), *api_metrics.values(),
                      route53_metrics]:
        publisher.flush()
    bodies = {r: dashboard_body(region=r, app_regions=REGIONS, health_checks=checks,
                                functions=list(names[r].values()), alarm=_template_alarm(stack, r))
              for r in REGIONS}
    window = (clock.wall_start - dt.timedelta(minutes=2), clock.wall() + dt.timedelta(minutes=2))
    return {"bodies": bodies, "window": window, "ingestors": ingestors}


def unanswered(aws, body, window):
    """Every metric a widget of `body` draws for which GetMetricData returns no value, with
    the widget's stat, period and region (its options override the widget's); one call per
    region, as the console asks for a widget's metrics together."""
    queries = {}  # region -> [(query, what)]
    for widget in body["widgets"]:
        if widget["type"] != "metric":
            continue
        props = widget["properties"]
        for *names, options in props["metrics"]:
            namespace, metric, *dims = names
            stat = options.get("stat", props.get("stat", "Average"))
            region = options.get("region", props["region"])
            here = queries.setdefault(region, [])
            here.append(({"Id": f"m{len(here)}", "MetricStat": {"Metric": {
                "Namespace": namespace, "MetricName": metric,
                "Dimensions": [{"Name": n, "Value": v} for n, v in zip(dims[::2], dims[1::2])]},
                "Period": int(options.get("period", props.get("period", 300))), "Stat": stat}},
                (region, namespace, metric, tuple(dims), stat)))
    missing = []
    for region, asked in queries.items():
        answer = aws.client("cloudwatch", region).get_metric_data(
            MetricDataQueries=[query for query, _ in asked], StartTime=window[0], EndTime=window[1])
        values = {r["Id"]: r["Values"] for r in answer["MetricDataResults"]}
        missing += [what for query, what in asked if not values[query["Id"]]]
    return missing


@pytest.mark.parametrize("region", REGIONS)
def test_every_metric_a_widget_draws_has_data_from_what_the_project_deploys(moto_server, run, region):
    body = run["bodies"][region]
    drawn = [w for w in body["widgets"] if w["type"] == "metric"]
    assert sum(len(w["properties"]["metrics"]) for w in drawn) >= 20  # the whole dashboard
    assert unanswered(moto_server, body, run["window"]) == []


def test_the_layer_and_the_simulator_wrote_only_valid_emf(run):
    for region, ingestor in run["ingestors"].items():
        stats = ingestor.stats()
        assert stats["rejected"] == {}, region
        groups = set(stats["by_log_group"])
        assert "/aws/lambda/simulator" in groups and any(g.endswith(f"-hello-{region}") for g in groups)


def _mutate(body, namespace, change):
    """A copy of `body` whose first metric of `namespace` is changed by `change(entry)`."""
    body = copy.deepcopy(body)
    for widget in body["widgets"]:
        for entry in widget["properties"].get("metrics", []):
            if entry[0] == namespace:
                change(entry)
                return body, entry
    raise AssertionError(f"no widget draws a metric of {namespace}")


@pytest.mark.parametrize("namespace, change", [
    ("LoadGen", lambda entry: entry.__setitem__(1, entry[1] + "_typo")),
    ("LambdaChaos", lambda entry: entry.__setitem__(1, "InjectedFault")),
    ("AWS/Lambda", lambda entry: entry.__setitem__(3, "not-deployed")),
    ("AWS/Route53", lambda entry: entry.__setitem__(1, "HealthCheckState")),
])
def test_a_widget_naming_a_metric_nobody_emits_is_caught(moto_server, run, namespace, change):
    body, entry = _mutate(run["bodies"]["us-east-1"], namespace, change)
    missing = unanswered(moto_server, body, run["window"])
    assert [(m[1], m[2], m[3]) for m in missing] == [(entry[0], entry[1], tuple(entry[2:-1]))]


def test_the_run_injects_every_fault_type_the_dashboard_draws():
    assert set(FAULTS) == set(FAULT_TYPES)
