"""The sample application: the blog's two handlers, the customer simulator, and a template that
wires them as the FIS templates, the alarm and the dashboard expect."""
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from cloudformation import cfn_yaml, fis
from cloudformation.render import render_sample_app
from local_emulator.environment import runtimes

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = cfn_yaml.load(ROOT / "sample_app" / "template.yaml")
APP_FUNCTIONS = ("HealthFunction", "HelloFunction")  # what the API serves; the simulator calls it


def _functions(include_simulator=False):
    return {name: r for name, r in TEMPLATE["Resources"].items()
            if r["Type"] == "AWS::Lambda::Function"
            and (include_simulator or name != "SimulatorFunction")}


def _node_handler(module):
    """The Node.js handler ``sample_app/<module>.mjs`` as a Python callable: run by node."""
    def call(event, context):
        script = (f"const {{handler}} = await import({json.dumps(str(ROOT / 'sample_app' / module))}"
                  f" + '.mjs'); console.log(JSON.stringify(await handler({json.dumps(event)})));")
        done = subprocess.run([runtimes.node_executable(), "--input-type=module", "-e", script],
                              capture_output=True, text=True, check=True)
        return json.loads(done.stdout)
    return call


@pytest.mark.parametrize("module, body", [("health", "Region eu-west-1 is healthy"),
                                          ("hello", "Hello from region eu-west-1")])
def test_handler_returns_api_gateway_proxy_response_naming_the_region(monkeypatch, module, body):
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    if (ROOT / "sample_app" / f"{module}.mjs").exists():
        handler = _node_handler(module)
    else:
        handler = importlib.import_module(f"sample_app.{module}").handler
    response = handler({"path": f"/{module}", "httpMethod": "GET"}, None)
    assert response["statusCode"] == 200
    assert response["body"] == body
    assert response["headers"]["Content-Type"].startswith("text/plain")
    json.dumps(response)  # API Gateway needs it serialisable


def test_routes_are_health_and_hello_each_on_its_own_function():
    resources = TEMPLATE["Resources"]
    paths = {r["Properties"]["PathPart"] for r in resources.values()
             if r["Type"] == "AWS::ApiGateway::Resource"}
    assert paths == {"health", "hello"}
    handlers = {r["Properties"]["Handler"] for r in _functions().values()}
    assert handlers == {"health.handler", "hello.handler"}
    assert set(_functions()) == set(APP_FUNCTIONS)


def test_hello_is_a_nodejs_function_and_health_a_python_one():
    runtimes_of = {name: r["Properties"]["Runtime"] for name, r in _functions(True).items()}
    assert runtimes_of == {"HealthFunction": "python3.12", "HelloFunction": "nodejs22.x",
                           "SimulatorFunction": "python3.12"}
    assert (ROOT / "sample_app" / "hello.mjs").is_file() and (ROOT / "sample_app" / "health.py").is_file()


def test_functions_carry_the_target_and_opt_in_tags_the_templates_and_role_use():
    for resource in _functions().values():
        tags = {json.dumps(t["Key"]): t["Value"] for t in resource["Properties"]["Tags"]}
        assert tags[json.dumps({"Ref": "TargetTagKey"})] == {"Ref": "TargetTagValue"}
        assert tags['"chaos:opt-in"'] == {"Ref": "OptInTagValue"}
    params = TEMPLATE["Parameters"]
    stack = cfn_yaml.load(ROOT / "cloudformation" / "stack.yaml")["Parameters"]
    for name in ("TargetTagKey", "TargetTagValue", "OptInTagValue"):
        assert params[name]["Default"] == stack[name]["Default"], name


def test_function_timeout_is_under_api_gateway_limit_and_the_outage_latency():
    timeout = TEMPLATE["Parameters"]["FunctionTimeout"]["Default"]
    (action,) = fis.load_template("lambda-regional-outage")["actions"].values()
    latency_ms = int(fis.document_parameters(action)["LatencyMilliseconds"])
    assert timeout * 1000 < 29_000 < latency_ms


def test_alarm_watches_the_hello_route_of_this_api():
    alarm = TEMPLATE["Resources"]["HelloErrorsAlarm"]["Properties"]
    dims = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
    api_name = TEMPLATE["Resources"]["Api"]["Properties"]["Name"]
    assert dims == {"ApiName": api_name, "Stage": "prod", "Resource": "/hello", "Method": "GET"}
    deployment = TEMPLATE["Resources"]["ApiDeployment"]["Properties"]
    assert deployment["StageName"] == "prod" and deployment["StageDescription"]["MetricsEnabled"]


def test_health_check_probes_the_health_route_of_the_stage():
    config = TEMPLATE["Resources"]["HealthCheck"]["Properties"]["HealthCheckConfig"]
    assert config["ResourcePath"] == "/prod/health"
    assert (config["RequestInterval"], config["FailureThreshold"]) == (30, 3)


def test_rendered_sample_app_packages_only_the_handlers_and_passes_cfn_lint(tmp_path):
    code = tmp_path / "code"
    rendered = render_sample_app(code)
    assert sorted(p.name for p in code.iterdir()) == ["health.py", "hello.mjs", "simulator.py"]
    path = tmp_path / "sample.json"
    path.write_text(json.dumps(rendered))
    lint = str(Path(sys.executable).parent / "cfn-lint")
    # W3002: Code is a local folder until it is packaged.
    done = subprocess.run([lint, "--ignore-checks", "W3002", "--", str(path)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def test_local_rendering_leaves_the_alarm_to_the_api_and_keeps_the_functions(tmp_path):
    rendered = render_sample_app(tmp_path / "code", local=True)
    assert "HelloErrorsAlarm" not in rendered["Resources"]
    assert "SampleAppAlarmArn" not in rendered["Outputs"]
    assert {"HealthFunction", "HelloFunction", "Api", "HealthCheck"} <= set(rendered["Resources"])


def test_latency_record_exists_only_with_a_domain_and_carries_this_regions_health_check():
    resources = TEMPLATE["Resources"]
    for logical in ("ApiDomain", "ApiBasePath", "LatencyRecord"):
        assert resources[logical]["Condition"] == "HasDomain"
    record = resources["LatencyRecord"]["Properties"]
    assert record["HealthCheckId"] == {"Ref": "HealthCheck"}
    assert record["Region"] == record["SetIdentifier"] == {"Ref": "AWS::Region"}
    assert record["AliasTarget"]["DNSName"] == {"Fn::GetAtt": ["ApiDomain", "RegionalDomainName"]}


# --- the customer simulator ------------------------------------------------------------------

SIMULATOR = TEMPLATE["Resources"]["SimulatorFunction"]["Properties"]


def test_simulator_is_never_a_fault_target():
    # untagged: neither the tag-targeted templates nor the automation role can reach it
    assert "Tags" not in SIMULATOR


def test_simulator_environment_is_the_modules_settings_with_the_dashboards_values():
    from sample_app import dashboard, simulator
    env = SIMULATOR["Environment"]["Variables"]
    assert set(env) == {s.name for s in simulator.SETTINGS}
    defaults = {s.name: s.default for s in simulator.SETTINGS}
    assert env["SIMULATOR_PATHS"] == defaults["SIMULATOR_PATHS"] == ",".join(dashboard.DEFAULT_PATHS)
    assert env["SIMULATOR_NAMESPACE"] == defaults["SIMULATOR_NAMESPACE"] == dashboard.LOADGEN_NAMESPACE
    params = TEMPLATE["Parameters"]
    assert str(params["SimulatorRatePerSecond"]["Default"]) == defaults["SIMULATOR_RATE_PER_S"]
    assert str(params["SimulatorRunSeconds"]["Default"]) == defaults["SIMULATOR_RUN_SECONDS"]
    assert SIMULATOR["Handler"] == "simulator.handler" and callable(simulator.handler)


def test_simulator_calls_the_latency_routed_name_with_a_domain_else_this_regions_stage():
    url = SIMULATOR["Environment"]["Variables"]["SIMULATOR_URL"]["Fn::If"]
    assert url[0] == "HasDomain"
    assert url[1] == {"Fn::Sub": "https://${DomainName}"}
    assert url[2] == {"Fn::Sub": TEMPLATE["Outputs"]["ApiUrl"]["Value"]["Fn::Sub"]}


def test_simulator_timeout_covers_a_run_and_its_last_requests():
    from sample_app import simulator
    run_max = TEMPLATE["Parameters"]["SimulatorRunSeconds"]["MaxValue"]
    assert SIMULATOR["Timeout"] >= run_max + simulator.RESERVE_S
    assert run_max <= 60  # one invocation a minute: runs never pile up


def test_simulator_schedule_runs_every_minute_and_is_disabled_by_default():
    rule = TEMPLATE["Resources"]["SimulatorSchedule"]["Properties"]
    assert rule["ScheduleExpression"] == "rate(1 minute)"
    assert rule["State"] == {"Ref": "SimulatorState"}
    assert TEMPLATE["Parameters"]["SimulatorState"]["Default"] == "DISABLED"
    assert rule["Name"] == {"Fn::Sub": "${AWS::StackName}-simulator"}
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["SimulatorFunction", "Arn"]}
    permission = TEMPLATE["Resources"]["SimulatorPermission"]["Properties"]
    assert permission["Principal"] == "events.amazonaws.com"
    assert permission["SourceArn"] == {"Fn::GetAtt": ["SimulatorSchedule", "Arn"]}


def test_readme_gives_the_one_command_to_enable_and_to_disable_the_simulator():
    readme = (ROOT / "sample_app" / "README.md").read_text()
    assert "aws events enable-rule --region REGION --name <stack>-sample-app-simulator" in readme
    assert "aws events disable-rule --region REGION --name <stack>-sample-app-simulator" in readme
    assert "per hour" in readme and "list prices" in readme


def test_simulator_role_has_only_basic_logging():
    role = TEMPLATE["Resources"][SIMULATOR["Role"]["Fn::GetAtt"][0]]["Properties"]
    assert role["ManagedPolicyArns"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"}]
    assert "Policies" not in role


# --- the dashboard ---------------------------------------------------------------------------

def _rendered_body(tmp_path, **kwargs):
    rendered = render_sample_app(tmp_path / "code", **kwargs)
    body = rendered["Resources"]["Dashboard"]["Properties"]["DashboardBody"]
    return rendered, json.loads(body["Fn::Sub"])


def test_dashboard_body_is_one_fn_sub_from_dashboard_py_with_this_stacks_references(tmp_path):
    from sample_app import dashboard
    rendered, body = _rendered_body(tmp_path, region="eu-west-1",
                                    app_regions=["us-east-1", "eu-west-1"],
                                    health_checks={"us-east-1": "hc-use1"})
    health = body["widgets"][0]["properties"]["metrics"]
    assert [m[3] for m in health] == ["hc-use1", "${HealthCheck}"]
    functions = {d["FunctionName"] for ns, _, d, _ in dashboard.metrics_named(body)
                 if ns == "AWS/Lambda"}
    assert functions == {"${HealthFunction}", "${HelloFunction}"}
    (status,) = [w for w in body["widgets"] if w["type"] == "alarm"]
    assert status["properties"]["alarms"] == [
        "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:"
        "${AWS::StackName}-hello-5xx"]
    assert rendered["Resources"]["Dashboard"]["Properties"]["DashboardName"] == {
        "Fn::Sub": dashboard.dashboard_name("${AWS::StackName}", "${AWS::Region}")}


def test_dashboard_stop_widget_is_the_templates_alarm(tmp_path):
    _, body = _rendered_body(tmp_path)
    alarm = TEMPLATE["Resources"]["HelloErrorsAlarm"]["Properties"]
    (stop,) = [w for w in body["widgets"] if w["properties"]["title"].startswith("Stop condition")]
    (metric,) = stop["properties"]["metrics"]
    dims = dict(zip(metric[2:-1:2], metric[3:-1:2]))
    assert metric[:2] == [alarm["Namespace"], alarm["MetricName"]]
    assert dims == {d["Name"]: d["Value"]["Fn::Sub"] if isinstance(d["Value"], dict) else d["Value"]
                    for d in alarm["Dimensions"]}
    assert metric[-1]["stat"] == alarm["Statistic"] and metric[-1]["period"] == alarm["Period"]
    assert stop["properties"]["annotations"]["horizontal"][0]["value"] == alarm["Threshold"]


def test_dashboard_renders_into_the_local_stack_too_and_outputs_name_and_arn(tmp_path):
    rendered = render_sample_app(tmp_path / "code", local=True)
    assert rendered["Resources"]["Dashboard"]["Type"] == "AWS::CloudWatch::Dashboard"
    assert {"DashboardName", "DashboardArn"} <= set(rendered["Outputs"])
    assert rendered["Outputs"]["DashboardArn"]["Value"] == {
        "Fn::Sub": "arn:${AWS::Partition}:cloudwatch::${AWS::AccountId}:dashboard/${Dashboard}"}


def test_a_missing_handler_file_is_named_with_the_fix(tmp_path, monkeypatch):
    from cloudformation import render
    from cloudformation.errors import DeployError
    monkeypatch.setattr(render, "SAMPLE_HANDLERS", ("health.py", "nothere.py"))
    with pytest.raises(DeployError, match="sample_app/nothere.py is missing"):
        render.render_sample_app(tmp_path / "code")


def test_readme_variable_table_names_exactly_the_simulators_settings():
    import re
    from sample_app import simulator
    readme = (ROOT / "sample_app" / "README.md").read_text()
    section = readme.split("## The customer simulator", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"^\| `(SIMULATOR_[A-Z_]+)` \|", section, re.M))
    assert named == {s.name for s in simulator.SETTINGS}
