"""The Automation runbook schema: each documented rule rejects the runbook that breaks it.

Each negative test starts from a small runbook the schema accepts and breaks one rule, so it
fails only because of that rule. No AWS: the schema alone, read from the repository.
"""
import json
import os

import jsonschema
import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "ssm_documents")
RENDERED = ("lambda-fault.yaml", "lambda-fault-experiment.yaml", "lambda-fault-organization.yaml")
SHA256 = "9c7d2f74da49102e9d3ed8ff326b06761db99354e71ca38635cdb701f9d4c751"


@pytest.fixture(scope="module")
def validator():
    with open(os.path.join(DOCS, "schema", "automation-0.3.schema.json"), encoding="utf-8") as handle:
        schema = json.load(handle)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _script(name, handler="apply"):
    return {"name": name, "action": "aws:executeScript", "timeoutSeconds": 600,
            "inputs": {"Runtime": "python3.11", "Handler": handler, "Attachment": "automation_handler.py",
                       "InputPayload": {"Batch": "{{ Apply.CurrentIteratorValue }}"}},
            "outputs": [{"Name": "Summary", "Selector": "$.Payload.Summary", "Type": "String"}],
            "onFailure": "step:Detach", "onCancel": "step:Detach"}


def _runbook():
    """Plan, a loop over its batches, a child automation in one account and region, an API call."""
    return {
        "schemaVersion": "0.3",
        "description": "Small runbook with every action the rendered documents use.",
        "files": {"automation_handler.py": {"checksums": {"sha256": SHA256}}},
        "mainSteps": [
            _script("Plan", handler="plan") | {"outputs": [
                {"Name": "Batches", "Selector": "$.Payload.Batches", "Type": "StringList"}]},
            {"name": "Apply", "action": "aws:loop", "onFailure": "step:Detach",
             "inputs": {"Iterators": "{{ Plan.Batches }}", "IteratorDataType": "String",
                        "MaxIterations": 100, "Steps": [_script("ApplyBatch")]}},
            {"name": "Everywhere", "action": "aws:executeAutomation",
             "inputs": {"DocumentName": "{{ FaultDocumentName }}",
                        "RuntimeParameters": {"ChaosMode": ["ENABLED"]},
                        "TargetLocations": [{"Accounts": ["111122223333"], "Regions": ["eu-west-1"],
                                             "ExecutionRoleName": "LambdaChaosAutomationExecution",
                                             "TargetLocationMaxConcurrency": "100%",
                                             "TargetLocationMaxErrors": "0"}]}},
            {"name": "Detach", "action": "aws:executeAwsApi",
             "inputs": {"Service": "ssm", "Api": "StartAutomationExecution",
                        "DocumentName": "{{ FaultDocumentName }}", "Parameters": {"ChaosMode": ["DISABLED"]}},
             "outputs": [{"Name": "ExecutionId", "Selector": "$.AutomationExecutionId", "Type": "String"}],
             "isEnd": True},
        ],
    }


def _step(runbook, name):
    steps = runbook["mainSteps"] + runbook["mainSteps"][1]["inputs"]["Steps"]
    return next(step for step in steps if step["name"] == name)


def _set(*path, value):
    """A break: put value at path (keys and list indexes) below the step, or the runbook."""
    def mutate(node):
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return mutate


def _drop(*path):
    def mutate(node):
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
    return mutate


def _rename(*path, misspelt):
    def mutate(node):
        for key in path[:-1]:
            node = node[key]
        node[misspelt] = node.pop(path[-1])
    return mutate


def _both(*mutators):
    def mutate(node):
        for each in mutators:
            each(node)
    return mutate


def _messages(errors):
    """Every message the schema gives, the nested ones of anyOf / oneOf included."""
    for error in errors:
        yield error.message
        yield from _messages(error.context)


# (rule, step broken or None for the runbook, the break, a message the schema must give)
REJECTED = [
    ("a misspelt key in a loop's inner step", "ApplyBatch", _rename("onFailure", misspelt="onFailur"),
     "'onFailur' was unexpected"),
    ("a loop's inner step is checked against its own action", "ApplyBatch",
     _set("timeoutSeconds", value=601), "601 is greater than the maximum of 600"),
    ("onCancel on the loop step itself", "Apply", _set("onCancel", value="step:Detach"),
     "False schema does not allow 'step:Detach'"),
    ("a loop over 101 iterators", "Apply",
     _set("inputs", "Iterators", value=[f"batch-{i}" for i in range(101)]), "is too long"),
    ("MaxIterations 101", "Apply", _set("inputs", "MaxIterations", value=101),
     "101 is greater than the maximum of 100"),
    ("a loop with both Iterators and LoopCondition", "Apply",
     _set("inputs", "LoopCondition", value={"Variable": "{{ Plan.More }}", "BooleanEquals": True}),
     "is valid under each of"),
    ("a loop with neither Iterators nor LoopCondition", "Apply", _drop("inputs", "Iterators"),
     "'Iterators' is a required property"),
    ("executeScript with neither Script nor Attachment", "Plan", _drop("inputs", "Attachment"),
     "'Script' is a required property"),
    ("executeScript with an empty Script and no Attachment", "Plan",
     _both(_drop("inputs", "Attachment"), _set("inputs", "Script", value="")),
     "'Attachment' is a required property"),
    ("a files checksum one digit short", None,
     _set("files", "automation_handler.py", "checksums", "sha256", value=SHA256[:-1]), "does not match"),
    ("a files checksum that is not hex", None,
     _set("files", "automation_handler.py", "checksums", "sha256", value="g" * 64), "does not match"),
    ("a files entry with checksum for checksums", None,
     _set("files", "automation_handler.py", value={"checksum": {"sha256": SHA256}}),
     "'checksums' is a required property"),
    ("a TargetLocation with an unknown key", "Everywhere",
     _set("inputs", "TargetLocations", 0, "Region", value=["eu-west-1"]), "'Region' was unexpected"),
    ("101 TargetLocations", "Everywhere",
     _set("inputs", "TargetLocations", value=[{"Regions": ["eu-west-1"]}] * 101), "is too long"),
    ("executeAutomation without DocumentName", "Everywhere", _drop("inputs", "DocumentName"),
     "'DocumentName' is a required property"),
    ("executeAutomation with a misspelt input", "Everywhere",
     _rename("inputs", "RuntimeParameters", misspelt="RuntimeParameter"), "'RuntimeParameter' was unexpected"),
    ("executeAwsApi without Api", "Detach", _drop("inputs", "Api"), "'Api' is a required property"),
]


@pytest.mark.parametrize("step, mutate, message", [case[1:] for case in REJECTED],
                         ids=[case[0] for case in REJECTED])
def test_schema_rejects_a_runbook_that_breaks_a_documented_rule(validator, step, mutate, message):
    runbook = _runbook()
    mutate(_step(runbook, step) if step else runbook)
    found = list(_messages(validator.iter_errors(runbook)))
    assert any(message in m for m in found), found


def test_the_small_runbook_with_every_action_is_valid(validator):
    validator.validate(_runbook())


@pytest.mark.parametrize("name", RENDERED)
def test_rendered_document_validates_against_the_schema(validator, name):
    with open(os.path.join(DOCS, name), encoding="utf-8") as handle:
        validator.validate(yaml.safe_load(handle))


def test_loop_over_100_literal_iterators_is_valid(validator):
    runbook = _runbook()
    _step(runbook, "Apply")["inputs"]["Iterators"] = [f"batch-{i}" for i in range(100)]
    validator.validate(runbook)


def test_do_while_loop_with_loop_condition_is_valid(validator):
    runbook = _runbook()
    inputs = _step(runbook, "Apply")["inputs"]
    del inputs["Iterators"], inputs["IteratorDataType"]
    inputs["LoopCondition"] = {"Variable": "{{ ApplyBatch.Summary }}", "StringEquals": "more"}
    validator.validate(runbook)


def test_execute_script_with_an_inline_script_is_valid(validator):
    inputs = {"Runtime": "python3.11", "Handler": "plan", "Script": "def plan(events, context):\n    return {}\n"}
    validator.validate({"schemaVersion": "0.3", "mainSteps": [
        {"name": "Plan", "action": "aws:executeScript", "inputs": inputs}]})


def test_target_location_with_every_documented_key_is_valid(validator):
    runbook = _runbook()
    _step(runbook, "Everywhere")["inputs"]["TargetLocations"][0].update({
        "ExcludeAccounts": ["444455556666"], "IncludeChildOrganizationUnits": True,
        "Targets": [{"Key": "tag:team", "Values": ["chaos"]}],
        "TargetsMaxConcurrency": "10", "TargetsMaxErrors": "10%",
        "TargetLocationAlarmConfiguration": {"IgnorePollAlarmFailure": False,
                                             "Alarms": [{"Name": "lambda-chaos-stop"}]}})
    validator.validate(runbook)


def test_execute_aws_api_passes_the_apis_own_parameters_through(validator):
    runbook = _runbook()
    _step(runbook, "Detach")["inputs"]["TargetLocations"] = [{"Accounts": ["111122223333"]}]
    validator.validate(runbook)
