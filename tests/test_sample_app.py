"""The sample application: the blog's two handlers and a template that wires them as the FIS
templates and the alarm expect."""
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
    handlers = {r["Properties"]["Handler"] for r in resources.values()
                if r["Type"] == "AWS::Lambda::Function"}
    assert handlers == {"health.handler", "hello.handler"}


def test_hello_is_a_nodejs_function_and_health_a_python_one():
    runtimes_of = {name: r["Properties"]["Runtime"] for name, r in TEMPLATE["Resources"].items()
                   if r["Type"] == "AWS::Lambda::Function"}
    assert runtimes_of == {"HealthFunction": "python3.12", "HelloFunction": "nodejs22.x"}
    assert (ROOT / "sample_app" / "hello.mjs").is_file() and (ROOT / "sample_app" / "health.py").is_file()


def test_functions_carry_the_target_and_opt_in_tags_the_templates_and_role_use():
    for resource in TEMPLATE["Resources"].values():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
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
    assert sorted(p.name for p in code.iterdir()) == ["health.py", "hello.mjs"]
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
