"""When the fault was really attached, and what a run that leaves a function changed tells its user."""
import json
from pathlib import Path

import pytest

from local_emulator.aws.fis_runner import load_template
from local_emulator.experiment.leftovers import (DETACH_DOCUMENT, fault_steps, fault_window, leftovers,
                                                 render_leftovers)
from local_emulator.experiment.report import Phases, build_report, render_html, render_table

ROOT = Path(__file__).resolve().parent.parent
FUNCTION = "lambda-chaos-local-sample-app-HelloFunction-8f3k2"
KEY = f"us-east-1/{FUNCTION}"
ACCOUNT = "123456789012"
# The blog's template, rendered as deploy.sh renders it.
SINGLE = load_template(ROOT / "fis_templates/lambda-latency-single-function/template.json", {
    "FisRoleArn": f"arn:aws:iam::{ACCOUNT}:role/lambda-chaos-local-fis",
    "StopAlarmArn": f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:lambda-chaos-local-sample-app-hello-5xx",
    "FaultDocumentArn": f"arn:aws:ssm:us-east-1:{ACCOUNT}:document/lambda-chaos-local-LambdaFault",
    "TargetFunctionName": FUNCTION,
    "LayerArn": f"arn:aws:lambda:us-east-1:{ACCOUNT}:layer:lambda-chaos:1",
    "AutomationRoleArn": f"arn:aws:iam::{ACCOUNT}:role/lambda-chaos-local-automation",
    "LogGroupArn": f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/fis/lambda-chaos-local",
    "ReportBucketName": "lambda-chaos-local-reportbucket-1a2b3c4d5e6f",
    "DashboardArn": f"arn:aws:cloudwatch::{ACCOUNT}:dashboard/lambda-chaos-local-sample-app-us-east-1"})


def _automation(summary, start, end):
    """A lambda-fault.yaml execution (one AttachOrDetach step) as AutomationExecution.summary()."""
    return {"document": "lambda-chaos-local-LambdaFault", "status": "Success", "start": start, "end": end,
            "outputs": {"Plan.Summary": summary},
            "steps": [{"name": "Apply", "action": "aws:executeScript", "status": "Success",
                       "start": start + 0.1, "end": end - 0.1, "attempts": 1, "failure_message": ""}]}


def _single(stopped=True):
    """FisExperiment.summary() of the blog's sequence; stopped by its alarm during S01_Wait, or not."""
    attach = {"actionId": "aws:ssm:start-automation-execution", "state": "completed", "reason": "",
              "start": 120.5, "end": 131.9,
              "automation": _automation(f"attach 1 function(s): {FUNCTION}: attached", 120.6, 131.8)}
    if stopped:
        return {"state": "stopped", "start": 120.4, "end": 468.9, "description": SINGLE["description"],
                "reason": "Stop condition arn:aws:cloudwatch:us-east-1:123456789012:alarm:"
                          "lambda-chaos-local-sample-app-hello-5xx entered ALARM state",
                "actions": {"S00_AttachExtensionToLambda": attach,
                            "S01_Wait": {"actionId": "aws:fis:wait", "state": "stopped",
                                         "reason": "Action stopped.", "start": 132.0, "end": 468.8,
                                         "automation": None},
                            "S02_DetachExtensionFromLambda": {
                                "actionId": "aws:ssm:start-automation-execution", "state": "cancelled",
                                "reason": "the experiment stopped before it started", "start": None,
                                "end": None, "automation": None}}}
    return {"state": "completed", "reason": "Experiment completed.", "start": 120.4, "end": 745.0,
            "description": SINGLE["description"],
            "actions": {"S00_AttachExtensionToLambda": attach,
                        "S01_Wait": {"actionId": "aws:fis:wait", "state": "completed", "reason": "",
                                     "start": 132.0, "end": 732.0, "automation": None},
                        "S02_DetachExtensionFromLambda": {
                            "actionId": "aws:ssm:start-automation-execution", "state": "completed",
                            "reason": "", "start": 732.1, "end": 744.9,
                            "automation": _automation(f"detach 1 function(s): {FUNCTION}: detached",
                                                      732.2, 744.8)}}}


VARIABLES = {"APP_STAGE": "prod", "AWS_LAMBDA_EXEC_WRAPPER": "/opt/lambda-chaos/wrapper",
             "CHAOS_FAULT_TYPE": "latency", "CHAOS_LATENCY_MS": "60000",
             "CHAOS_INVOCATION_PERCENTAGE": "100", "CHAOS_EXPERIMENT_ID": "lc-5e1f0c2a9b7d",
             "CHAOS_EXPIRES_AT": "2026-03-02T10:31:07Z", "CHAOS_RESTORE_STATE": "{}"}
AFTER = {KEY: {"configuration": {"FunctionName": FUNCTION, "Handler": "app.hello",
                                 "Layers": [{"Arn": f"arn:aws:lambda:us-east-1:{ACCOUNT}:layer:lambda-chaos:1"}],
                                 "Environment": {"Variables": VARIABLES}},
               "tags": {"chaos:opt-in": "true"}, "aliases": {}},
         "eu-west-1/lambda-chaos-local-sample-app-HelloFunction-2m9q1": {
             "configuration": {"Environment": {"Variables": {"APP_STAGE": "prod"}}}, "tags": {}, "aliases": {}}}
DIFFERENCES = [f"{KEY}: configuration.Environment.Variables.{name}: absent → {json.dumps(value)}"
               for name, value in sorted(VARIABLES.items()) if name != "APP_STAGE"] + [
    f'{KEY}: configuration.Layers: [] → [{{"Arn": "arn:aws:lambda:us-east-1:{ACCOUNT}:layer:lambda-chaos:1"}}]']
RUN_END = 768.9


def _leftovers(**overrides):
    options = dict(experiment=_single(), run_end=RUN_END, template=SINGLE,
                   template_name="lambda-latency-single-function", endpoint_url="http://127.0.0.1:43121")
    options.update(overrides)
    return leftovers(DIFFERENCES, AFTER, **options)


# --- the fault window ---------------------------------------------------------------------------

def test_the_fault_is_attached_from_the_attach_step_returned_to_the_detach_step_returned():
    assert fault_window(_single(stopped=False), SINGLE) == [131.7, 744.7]


def test_the_automations_summary_tells_attach_from_detach_without_the_template():
    assert fault_window(_single(stopped=False)) == [131.7, 744.7]


def test_a_detach_that_never_ran_leaves_the_window_open():
    assert fault_window(_single(), SINGLE) == [131.7, None]


def test_no_window_when_no_attach_step_succeeded():
    experiment = _single()
    failed = experiment["actions"]["S00_AttachExtensionToLambda"]
    failed["automation"]["steps"][0]["status"] = "Failed"
    assert fault_window(experiment, SINGLE) is None


def test_the_experiment_documents_attach_and_detach_steps_bound_the_window():
    experiment = {"state": "completed", "actions": {"Outage": {
        "actionId": "aws:ssm:start-automation-execution", "state": "completed",
        "automation": {"steps": [{"name": "Attach", "status": "Success", "start": 120.3, "end": 141.0},
                                 {"name": "Wait", "status": "Success", "start": 141.0, "end": 741.0},
                                 {"name": "Detach", "status": "Success", "start": 741.0, "end": 760.2}]}}}}
    assert fault_window(experiment) == [141.0, 760.2]


# --- what is left changed -----------------------------------------------------------------------

def test_nothing_left_when_every_function_was_restored():
    assert leftovers([], AFTER, experiment=_single(stopped=False), run_end=RUN_END) is None


def test_each_function_left_changed_is_named_with_its_region():
    found = _leftovers()
    assert [(f["region"], f["name"]) for f in found["functions"]] == [("us-east-1", FUNCTION)]
    assert found["functions"][0]["differences"] == DIFFERENCES
    assert found["functions"][0]["fault_type"] == "latency"


def test_the_expiry_is_the_configured_utc_time_and_when_that_falls_in_template_time():
    function = _leftovers()["functions"][0]
    assert function["expires_at"] == "2026-03-02T10:31:07Z"
    # The attach returned at 131.7 s with Duration PT15M: the fault stops ~900 s later.
    assert function["expires_template_s"] == 1031.7
    assert function["after_run_end_s"] == pytest.approx(1031.7 - RUN_END, abs=0.05)


def test_the_exact_detach_command_names_the_function_and_its_region():
    commands = _leftovers()["functions"][0]["detach"]
    assert commands["aws"] == f"python automation_handler.py detach --region us-east-1 --FunctionName {FUNCTION}"
    assert commands["aws_ssm"] == (
        f"aws ssm start-automation-execution --region us-east-1 --document-name {DETACH_DOCUMENT} "
        f"--parameters FunctionName={FUNCTION},ChaosMode=DISABLED")
    assert commands["local"] == commands["aws"] + " --endpoint-url http://127.0.0.1:43121"


def test_a_stopped_blog_sequence_is_expected_not_a_bug():
    found = _leftovers()
    assert found["expected"] is True
    assert found["why"] == (
        "The experiment stopped (Stop condition arn:aws:cloudwatch:us-east-1:123456789012:alarm:"
        "lambda-chaos-local-sample-app-hello-5xx entered ALARM state) before its detach action "
        "S02_DetachExtensionFromLambda started, and FIS starts no later action once an experiment "
        "has stopped: the fault stays attached (fis_templates/lambda-latency-single-function/README.md, "
        "\"When stopped\").")


def test_a_template_whose_detach_ran_and_still_left_a_change_is_not_called_expected():
    found = _leftovers(experiment=_single(stopped=False))
    assert found["expected"] is False
    assert "should leave behind" in found["why"]


def test_the_terminal_says_in_plain_words_what_is_left_until_when_and_how_to_undo_it():
    lines = render_leftovers(_leftovers())
    assert lines[0] == "Still changed after the run — expected for lambda-latency-single-function, not a bug:"
    text = "\n".join(lines)
    assert f"  {KEY}: chaos layer attached (fault latency), 8 field(s) differ from before the run" in lines
    assert ("    expiry: the fault stops injecting at CHAOS_EXPIRES_AT = 2026-03-02 10:31:07 UTC, as "
            "configured (the attach's time + Duration PT15M); the layer stays attached until a detach") in lines
    assert ("~1031.7 s, 900 s after the attach returned (131.7 s), 262.8 s after the run ended (768.9 s)"
            in text)
    assert f"    detach on AWS: python automation_handler.py detach --region us-east-1 --FunctionName {FUNCTION}" \
        in lines
    assert "locally: nothing to undo, the run's embedded AWS stopped with it" in text


def test_an_expiry_that_passed_during_the_run_says_the_fault_stopped_injecting():
    text = "\n".join(render_leftovers(_leftovers(run_end=1100.0)))
    assert "68.3 s before the run ended (1100 s): it injected nothing from then on" in text


def test_a_function_without_an_expiry_is_said_to_never_stop_by_itself():
    after = json.loads(json.dumps(AFTER))
    del after[KEY]["configuration"]["Environment"]["Variables"]["CHAOS_EXPIRES_AT"]
    found = leftovers(DIFFERENCES, after, experiment=_single(), run_end=RUN_END, template=SINGLE)
    assert "expiry: none (no CHAOS_EXPIRES_AT): the fault never stops by itself, only a detach ends it" \
        in "\n".join(render_leftovers(found))


# --- in the report ------------------------------------------------------------------------------

def _record(at, client, status=200):
    return {"at": at, "client_region": client, "path": "/hello", "routed_region": client,
            "status": status, "latency_ms": 29000.0 if status != 200 else 150.0,
            "served_region": client if status == 200 else None, "error": ""}


def _single_report():
    records = [_record(t, c, 504 if c == "us-east-1" and t >= 132 else 200)
               for t in range(0, 768, 4) for c in ("us-east-1", "eu-west-1")]
    report = build_report(
        records, Phases(0, 120.4, 468.9, RUN_END), health={}, experiment=_single(),
        configurations={"restored": False, "differences": DIFFERENCES, "functions": sorted(AFTER)},
        sandbox={}, settings={"template": "lambda-latency-single-function", "time_scale": 20},
        after=AFTER, template=SINGLE, endpoint_url="http://127.0.0.1:43121")
    return report, records


def test_the_report_holds_the_leftovers_and_the_terminal_ends_with_them():
    report, _ = _single_report()
    assert report["leftovers"]["functions"][0]["function"] == KEY
    assert report["fault_window"] == [131.7, None]
    table = render_table(report)
    assert table.split("\n\n")[-1].startswith(
        "Still changed after the run — expected for lambda-latency-single-function, not a bug:")


def test_the_html_shows_the_leftovers_above_the_charts():
    report, records = _single_report()
    page = render_html(report, records)
    heading = page.index("<h2>Still changed after the run — expected for lambda-latency-single-function")
    assert heading < page.index("<svg")
    assert f"python automation_handler.py detach --region us-east-1 --FunctionName {FUNCTION}" in page


def test_a_fault_that_expired_during_the_run_is_shaded_until_its_expiry():
    records = [_record(t, c) for t in range(0, 1200, 10) for c in ("us-east-1", "eu-west-1")]
    report = build_report(
        records, Phases(0, 120.4, 468.9, 1200.0), health={}, experiment=_single(),
        configurations={"restored": False, "differences": DIFFERENCES, "functions": sorted(AFTER)},
        sandbox={}, settings={"template": "lambda-latency-single-function"}, after=AFTER, template=SINGLE)
    page = render_html(report, records)
    x = lambda t: 50 + t / 1200 * 800  # noqa: E731 - where template second t is drawn
    assert f'<rect x="{x(131.7):.1f}" y="25.0" width="{x(1031.7) - x(131.7):.1f}"' in page
    assert "fault attached from 132 s, never detached; expired ~1032 s" in page


def test_the_attach_and_detach_steps_are_when_the_function_changes():
    assert fault_steps(_single(stopped=False), SINGLE) == {"attach": [120.7, 131.7], "detach": [732.3, 744.7]}
    assert fault_steps(_single(), SINGLE) == {"attach": [120.7, 131.7], "detach": None}


# lambda-fault-organization.yaml: the fault document in every location, a wait, a detach in every location.
ORGANIZATION = {"state": "completed", "reason": "Experiment completed.", "start": 120.0, "end": 520.0,
                "actions": {"OrganizationOutage": {
                    "actionId": "aws:ssm:start-automation-execution", "state": "completed", "reason": "",
                    "start": 120.1, "end": 519.9, "automation": {"status": "Success", "steps": [
                        {"name": "AttachEverywhere", "status": "Success", "start": 120.2, "end": 241.5},
                        {"name": "Wait", "status": "Success", "start": 241.5, "end": 421.5},
                        {"name": "DetachEverywhere", "status": "Success", "start": 421.5, "end": 519.8}]}}}}


def test_an_organisation_run_is_attached_from_its_attach_everywhere_to_its_detach_everywhere():
    assert fault_steps(ORGANIZATION) == {"attach": [120.2, 241.5], "detach": [421.5, 519.8]}
    assert fault_window(ORGANIZATION) == [241.5, 519.8]


def test_a_function_left_changed_in_another_account_is_named_by_account_and_detached_with_its_credentials():
    key = "111111111111/us-east-1/orders-hello"
    found = leftovers([f"{key}: configuration.Layers: [] → [\"chaos\"]"],
                      {key: {"configuration": {"Environment": {"Variables": {"CHAOS_FAULT_TYPE": "latency"}}}}},
                      experiment=ORGANIZATION, run_end=600.0)
    [function] = found["functions"]
    assert (function["account"], function["region"], function["name"]) == (
        "111111111111", "us-east-1", "orders-hello")
    assert function["detach"]["aws"] == ("python automation_handler.py detach --region us-east-1 "
                                         "--FunctionName orders-hello   (with account 111111111111's credentials)")
    assert f"  {key}: chaos layer attached (fault latency)" in "\n".join(render_leftovers(found))


def test_a_single_account_leftover_names_no_account():
    found = leftovers([f"{KEY}: configuration.Layers: [] → [\"chaos\"]"], {}, experiment=ORGANIZATION,
                      run_end=600.0)
    [function] = found["functions"]
    assert "account" not in function and function["region"] == "us-east-1"
    assert "credentials" not in function["detach"]["aws"]


def test_a_cancelled_organisation_run_is_detached_when_every_locations_handed_off_detach_returned():
    cancelled = json.loads(json.dumps(ORGANIZATION))
    cancelled["actions"]["OrganizationOutage"]["automation"]["steps"][1:] = [
        {"name": "Wait", "status": "Cancelled", "start": 241.5, "end": 300.0},
        {"name": "HandOffDetachEverywhere", "status": "Success", "start": 300.0, "end": 300.4}]
    locations = [{"attach": {"status": "Success", "start": 120.3, "end": 240.0},
                  "detach": {"status": "Success", "start": 300.5, "end": 351.0}},
                 {"attach": {"status": "Success", "start": 120.3, "end": 241.4},
                  "detach": {"status": "Success", "start": 300.5, "end": 362.5}},
                 {"attach": None, "detach": None}]  # a Region no child ran in
    assert fault_window(cancelled) == [241.5, None]
    assert fault_window(cancelled, locations=locations) == [241.5, 362.5]
    locations[1]["detach"]["status"] = "Failed"  # the fault outlived that location's detach
    assert fault_window(cancelled, locations=locations) == [241.5, None]
