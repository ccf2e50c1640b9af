"""The local FIS runs templates with FIS's ordering, stop conditions and stop semantics.

The fixture document mirrors the project's experiment document (attach → sleep → detach, with
onFailure/onCancel leading to detach); an SSM parameter stands in for the function's state, so
each test can see whether the clean-up ran.
"""
import json
import textwrap
import time

import pytest
from botocore.exceptions import ClientError

from local_emulator.clock import Clock
from local_emulator.errors import TemplateError
from local_emulator.aws.fis_runner import FisExperiment, load_template
from tests.emulator_fixtures import moto_server, unique  # noqa: F401 - fixture

MARK = textwrap.dedent("""
    import boto3
    def handler(events, context):
        if events["Value"] == "explode":
            raise RuntimeError("attach refused: function is in another experiment")
        boto3.client("ssm").put_parameter(Name=events["Name"], Value=events["Value"],
                                          Type="String", Overwrite=True)
        return {"value": events["Value"]}
""")


def _script_step(name, value, **extra):
    return {"name": name, "action": "aws:executeScript", **extra,
            "inputs": {"Runtime": "python3.11", "Handler": "handler", "Script": MARK,
                       "InputPayload": {"Name": "{{ Mark }}", "Value": value}}}


EXPERIMENT_DOC = {
    "schemaVersion": "0.3",
    "parameters": {"Mark": {"type": "String"}, "Duration": {"type": "String", "default": "PT10M"},
                   "Value": {"type": "String", "default": "attached"}},
    "mainSteps": [
        _script_step("Attach", "{{ Value }}", onFailure="step:Detach", onCancel="step:Detach"),
        {"name": "Sleep", "action": "aws:sleep", "inputs": {"Duration": "{{ Duration }}"},
         "onFailure": "step:Detach", "onCancel": "step:Detach"},
        _script_step("Detach", "detached", isEnd=True),
    ],
}


@pytest.fixture(scope="module")
def document_arn(moto_server):
    name = unique("ChaosExperimentDoc")
    moto_server.client("ssm").create_document(Content=json.dumps(EXPERIMENT_DOC), Name=name,
                                              DocumentType="Automation", DocumentFormat="JSON")
    return f"arn:aws:ssm:us-east-1:123456789012:document/{name}"


@pytest.fixture
def alarm_arn(moto_server):
    name = unique("errors-high")
    moto_server.client("cloudwatch").put_metric_alarm(
        AlarmName=name, Namespace="LoadGen", MetricName="status_5xx", Statistic="Sum", Period=60,
        EvaluationPeriods=1, Threshold=10, ComparisonOperator="GreaterThanThreshold")
    return f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}"


def _ssm_action(document_arn, mark, start_after=None, **params):
    # PT12H, FIS's longest: the script steps run at the machine's speed, and at scale 600 a
    # PT20M budget was 2 real s, less than two busy script steps (a flake, not a finding).
    action = {"actionId": "aws:ssm:start-automation-execution",
              "parameters": {"documentArn": document_arn, "maxDuration": "PT12H",
                             "documentParameters": json.dumps({"Mark": mark, **params})}}
    if start_after:
        action["startAfter"] = start_after
    return action


def _wait(duration, start_after=None):
    action = {"actionId": "aws:fis:wait", "parameters": {"duration": duration}}
    if start_after:
        action["startAfter"] = start_after
    return action


def _template(actions, alarm=None):
    stop = [{"source": "aws:cloudwatch:alarm", "value": alarm}] if alarm else [{"source": "none"}]
    return {"description": "test", "roleArn": "arn:aws:iam::123456789012:role/fis",
            "stopConditions": stop, "targets": {}, "actions": actions}


def _mark(moto_server, name):
    try:
        return moto_server.client("ssm").get_parameter(Name=name)["Parameter"]["Value"]
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "ParameterNotFound"
        return None


def test_actions_start_after_the_actions_they_name(moto_server):
    template = _template({"First": _wait("PT1M"), "Second": _wait("PT1M", ["First"]),
                          "Alongside": _wait("PT30S")})
    experiment = FisExperiment(template, aws=moto_server, clock=Clock(scale=600)).run()
    first, second, alongside = (experiment.actions[n] for n in ("First", "Second", "Alongside"))
    assert experiment.state == "completed"
    assert second.start >= first.end
    assert alongside.start < first.end
    assert first.end - first.start == pytest.approx(60, abs=20)


def test_automation_action_runs_the_document_from_the_emulator(moto_server, document_arn):
    mark = unique("/mark")
    template = _template({"Run": _ssm_action(document_arn, mark, Duration="PT1M")})
    experiment = FisExperiment(template, aws=moto_server, clock=Clock(scale=600)).run()
    assert experiment.state == "completed", experiment.reason
    automation = experiment.actions["Run"].automation
    assert [s.name for s in automation.steps] == ["Attach", "Sleep", "Detach"]
    assert _mark(moto_server, mark) == "detached"


def test_stop_condition_stops_the_experiment_and_the_cancelled_automation_cleans_up(
        moto_server, document_arn, alarm_arn):
    mark = unique("/mark")
    template = _template({"Outage": _ssm_action(document_arn, mark, Duration="PT1H"),
                          "Later": _wait("PT1M", ["Outage"])}, alarm=alarm_arn)
    experiment = FisExperiment(template, aws=moto_server, clock=Clock(scale=60)).start()
    _until(lambda: _mark(moto_server, mark) == "attached")
    moto_server.client("cloudwatch").set_alarm_state(
        AlarmName=alarm_arn.split(":alarm:")[1], StateValue="ALARM", StateReason="test")
    assert experiment.wait(timeout=60)
    assert experiment.state == "stopped"
    assert "entered ALARM state" in experiment.reason
    assert experiment.actions["Outage"].state == "stopped"
    assert experiment.actions["Later"].state == "cancelled"
    assert experiment.actions["Outage"].automation.status == "Cancelled"
    assert _mark(moto_server, mark) == "detached"


def test_an_alarm_already_firing_fails_the_experiment_before_any_action(
        moto_server, document_arn, alarm_arn):
    moto_server.client("cloudwatch").set_alarm_state(
        AlarmName=alarm_arn.split(":alarm:")[1], StateValue="ALARM", StateReason="test")
    mark = unique("/mark")
    experiment = FisExperiment(_template({"Run": _ssm_action(document_arn, mark)}, alarm=alarm_arn),
                               aws=moto_server, clock=Clock(scale=600)).run()
    assert experiment.state == "failed"
    assert "was in ALARM state when the experiment started" in experiment.reason
    assert experiment.actions["Run"].state == "pending"
    assert _mark(moto_server, mark) is None


def test_stop_by_the_user_stops_a_wait_and_cancels_later_actions(moto_server):
    template = _template({"Wait": _wait("PT1H"), "After": _wait("PT1M", ["Wait"])})
    experiment = FisExperiment(template, aws=moto_server, clock=Clock(scale=60)).start()
    _until(lambda: experiment.actions["Wait"].state == "running")
    experiment.stop()
    assert experiment.wait(timeout=10)
    assert (experiment.state, experiment.actions["Wait"].state, experiment.actions["After"].state) \
        == ("stopped", "stopped", "cancelled")
    assert "StopExperiment" in experiment.reason


def test_max_duration_fails_the_action_and_cancels_the_automation(moto_server, document_arn):
    mark = unique("/mark")
    action = _ssm_action(document_arn, mark, Duration="PT1H")
    action["parameters"]["maxDuration"] = "PT2M"
    experiment = FisExperiment(_template({"Run": action}), aws=moto_server,
                               clock=Clock(scale=60)).run()
    assert experiment.state == "failed"
    assert "did not finish within maxDuration PT2M" in experiment.reason
    assert _mark(moto_server, mark) == "detached"


def test_a_failed_automation_fails_the_experiment_and_later_actions_never_start(
        moto_server, document_arn):
    mark = unique("/mark")
    template = _template({"Attach": _ssm_action(document_arn, mark, Value="explode"),
                          "Wait": _wait("PT1M", ["Attach"])})
    experiment = FisExperiment(template, aws=moto_server, clock=Clock(scale=600)).run()
    assert experiment.state == "failed"
    assert "attach refused: function is in another experiment" in experiment.reason
    assert experiment.actions["Wait"].state == "cancelled"
    assert _mark(moto_server, mark) == "detached"  # the document's onFailure path ran


def test_skip_all_runs_no_action(moto_server, document_arn):
    mark = unique("/mark")
    template = {**_template({"Run": _ssm_action(document_arn, mark)}),
                "experimentOptions": {"actionsMode": "skip-all"}}
    experiment = FisExperiment(template, aws=moto_server).run()
    assert experiment.state == "completed"
    assert experiment.actions["Run"].state == "skipped"
    assert _mark(moto_server, mark) is None


def test_a_missing_stop_condition_alarm_fails_the_experiment_naming_it(moto_server):
    arn = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:no-such-alarm"
    experiment = FisExperiment(_template({"Wait": _wait("PT1M")}, alarm=arn),
                               aws=moto_server).run()
    assert experiment.state == "failed"
    assert "no-such-alarm does not exist in us-east-1" in experiment.reason


def test_a_document_that_is_not_deployed_fails_the_action_naming_it(moto_server):
    arn = "arn:aws:ssm:us-east-1:123456789012:document/NotDeployed"
    experiment = FisExperiment(_template({"Run": _ssm_action(arn, "/m")}), aws=moto_server).run()
    assert experiment.state == "failed"
    assert "document NotDeployed" in experiment.reason and "deploy.sh --local" in experiment.reason


def test_load_template_fills_placeholders_inside_document_parameters(tmp_path):
    path = tmp_path / "template.json"
    path.write_text(json.dumps(_template({"Run": {
        "actionId": "aws:ssm:start-automation-execution",
        "parameters": {"documentArn": "${DocArn}",
                       "documentParameters": "{\"FunctionName\": \"${Fn}\"}"}}})))
    template = load_template(path, {"DocArn": "arn:aws:ssm:eu-west-1:1:document/D", "Fn": "fn-1"})
    params = template["actions"]["Run"]["parameters"]
    assert params["documentArn"] == "arn:aws:ssm:eu-west-1:1:document/D"
    assert json.loads(params["documentParameters"]) == {"FunctionName": "fn-1"}


def test_load_template_refuses_a_value_that_would_break_the_json(tmp_path):
    path = tmp_path / "template.json"
    path.write_text(json.dumps(_template({"Run": _ssm_action("${DocArn}", "m")})))
    with pytest.raises(TemplateError, match=r"value of DocArn .* contains a quote or backslash"):
        load_template(path, {"DocArn": 'arn"x'})


def test_load_template_names_every_unfilled_placeholder(tmp_path):
    path = tmp_path / "template.json"
    path.write_text(json.dumps(_template({"Run": _ssm_action("${DocArn}", "${Mark}")})))
    with pytest.raises(TemplateError, match="still has placeholders DocArn, Mark; render it"):
        load_template(path, {})


@pytest.mark.parametrize("actions, message", [
    ({"A": _wait("PT1M", ["B"]), "B": _wait("PT1M", ["A"])}, "startAfter makes a cycle"),
    ({"A": _wait("PT1M", ["Nope"])}, "startAfter names 'Nope', which is not an action"),
    ({"A": {"actionId": "aws:lambda:invocation-add-delay", "parameters": {}}},
     "'aws:lambda:invocation-add-delay' is not supported locally"),
    ({"A": _wait("10 minutes")}, "duration: duration '10 minutes' is not an ISO-8601 duration"),
])
def test_bad_templates_are_refused_before_anything_runs(actions, message):
    with pytest.raises(TemplateError, match=message):
        load_template(_template(actions))


def _until(condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition never became true")


# --- experiment report configuration ---------------------------------------------------------

REPORT = {"outputs": {"s3Configuration": {"bucketName": "reports-bucket",
                                          "prefix": "experiment-reports/test"}},
          "dataSources": {"cloudWatchDashboards": [
              {"dashboardIdentifier": "arn:aws:cloudwatch::123456789012:dashboard/app-us-east-1"}]},
          "preExperimentDuration": "PT10M", "postExperimentDuration": "PT15M"}


ORGANIZATION_VALUES = {  # what a stack deployed with --target-accounts adds to its outputs
    "OrganizationDocumentArn": "arn:aws:ssm:eu-west-1:123456789012:document/chaos-LambdaFaultOrganization-0a1b2c3d",
    "TargetAccounts": "111111111111", "TargetRegions": "us-east-1",
    "TargetLayerName": "lambda-chaos-layer", "ExecutionRoleName": "LambdaChaosAutomationExecution"}


# Every template loads here; only loading is checked (the organisation template's run across
# accounts is the local organisation experiment's, not this runner test's).
PROJECT_TEMPLATES = ["lambda-invocation-errors", "lambda-latency-single-function",
                     "lambda-organization-outage", "lambda-regional-outage"]


def test_every_project_template_is_loaded_below():
    from cloudformation import fis
    assert PROJECT_TEMPLATES == fis.template_names()


@pytest.mark.parametrize("name", PROJECT_TEMPLATES)
def test_the_projects_templates_load_with_their_report_configuration(name):
    from pathlib import Path
    from tests.fis_fixtures import stack_outputs
    values = dict(stack_outputs(), **ORGANIZATION_VALUES)
    root = Path(__file__).resolve().parent.parent
    template = load_template(root / "fis_templates" / name / "template.json", values)
    report = FisExperiment(template, aws=None).summary()["experimentReport"]
    s3 = report["configuration"]["outputs"]["s3Configuration"]
    assert s3 == {"bucketName": values["ReportBucketName"], "prefix": f"experiment-reports/{name}"}
    assert report["window"] == {"start": None, "end": None}  # not run yet


def test_summary_records_the_report_and_the_window_it_covers(moto_server):
    template = dict(_template({"Wait": _wait("PT1M")}), experimentReportConfiguration=REPORT)
    experiment = FisExperiment(template, aws=moto_server, clock=Clock(scale=600)).run()
    assert experiment.state == "completed"
    report = experiment.summary()["experimentReport"]
    assert report["configuration"] == REPORT
    assert report["window"]["start"] == pytest.approx(experiment.start_time - 600)
    assert report["window"]["end"] == pytest.approx(experiment.end_time + 900)


def test_a_template_without_a_report_records_none():
    assert FisExperiment(_template({"Wait": _wait("PT1M")}), aws=None).summary()[
        "experimentReport"] is None


@pytest.mark.parametrize("report, message", [
    ({"preExperimentDuration": "PT5M"}, "needs outputs.s3Configuration.bucketName"),
    (dict(REPORT, postExperimentDuration="15 minutes"),
     "postExperimentDuration: duration '15 minutes' is not an ISO-8601 duration"),
])
def test_a_report_fis_would_refuse_is_refused_before_anything_runs(report, message):
    template = dict(_template({"Wait": _wait("PT1M")}), experimentReportConfiguration=report)
    with pytest.raises(TemplateError, match=message):
        load_template(template)


@pytest.mark.parametrize("name", PROJECT_TEMPLATES)
def test_the_local_rendering_passes_the_documents_what_deploy_sh_passes(name):
    """Locally the template is filled on its raw text; deploy.sh renders it with
    cloudformation/fis.py. Both give each document the same parameters, a list placeholder
    (TargetAccounts) one list item per account."""
    from pathlib import Path
    from cloudformation import fis
    from tests.fis_fixtures import stack_outputs
    values = {**stack_outputs(), **ORGANIZATION_VALUES,
              "TargetAccounts": "111111111111,222222222222", "TargetRegions": "us-east-1,eu-west-1"}
    root = Path(__file__).resolve().parent.parent
    local = load_template(root / "fis_templates" / name / "template.json", values)
    deployed = fis.render_request(fis.load_template(name), values, name)
    for action, body in deployed["actions"].items():
        if "documentParameters" in body["parameters"]:
            assert json.loads(local["actions"][action]["parameters"]["documentParameters"]) == \
                json.loads(body["parameters"]["documentParameters"])
    if name == "lambda-organization-outage":
        passed = json.loads(local["actions"]["OrganizationLatencyOutage"]["parameters"]["documentParameters"])
        assert passed["TargetAccounts"] == ["111111111111", "222222222222"]
