"""The target-account stack (cloudformation/target-stack.yaml as rendered by deploy.sh
--target-stack) and the central stack's organisation-run roles: lint-clean, the execution role
allows what the toolkit's AutomationRole allows and is trusted by the central account's
administration role only."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from cloudformation import render, stack, target

ROOT = Path(__file__).resolve().parent.parent
CFN_LINT = str(Path(sys.executable).parent / "cfn-lint")
ADMIN_ROLE = "AWS-SystemsManager-AutomationAdministrationRole"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    path = tmp_path_factory.mktemp("target") / "target.json"
    assert render.main(["target-stack", "--out", str(path),
                        "--layer-zip", str(ROOT / "dist" / "chaos-layer.zip")]) == 0
    return json.loads(path.read_text()), path


@pytest.fixture(scope="module")
def central():
    return stack.render_stack(ROOT / "dist" / "chaos-layer.zip")


def _statements(template, role):
    return template["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]


def test_target_stack_passes_cfn_lint(rendered):
    _, path = rendered
    # W3002: the layer's Content is a local path until `aws cloudformation package` uploads it.
    done = subprocess.run([CFN_LINT, "--ignore-checks", "W3002", "--", str(path)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_execution_role_allows_what_the_automation_role_allows_with_the_target_layer(rendered, central):
    template, _ = rendered
    ours = json.dumps(_statements(central, "AutomationRole"))
    theirs = json.dumps(_statements(template, "ExecutionRole"))
    assert theirs == ours.replace("${AWS::StackName}-chaos-layer", "${LayerName}")
    assert "${LayerName}" in theirs and "AWS::StackName" not in theirs


def test_execution_role_changes_only_opted_in_functions(rendered):
    template, _ = rendered
    for statement in _statements(template, "ExecutionRole"):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if any(a.split(":")[1].startswith(("Update", "Publish", "Delete")) for a in actions):
            assert statement["Condition"]["StringEquals"] == {
                "aws:ResourceTag/chaos:opt-in": {"Ref": "OptInTagValue"}}


def test_execution_role_is_trusted_by_the_central_administration_role_only(rendered):
    template, _ = rendered
    role = template["Resources"]["ExecutionRole"]["Properties"]
    (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"AWS": {"Fn::Sub": (
        "arn:${AWS::Partition}:iam::${CentralAccountId}:role/" + ADMIN_ROLE)}}
    assert statement["Action"] == "sts:AssumeRole"
    assert role["RoleName"] == {"Ref": "ExecutionRoleName"}
    assert template["Parameters"]["ExecutionRoleName"]["Default"] == "LambdaChaosAutomationExecution"
    assert template["Parameters"]["CentralAccountId"]["AllowedPattern"] == "^[0-9]{12}$"


def test_no_principal_is_a_wildcard(rendered, central):
    template, _ = rendered
    for doc in (template, central):
        for resource in doc["Resources"].values():
            trust = resource.get("Properties", {}).get("AssumeRolePolicyDocument")
            for statement in (trust or {}).get("Statement", []):
                assert "*" not in json.dumps(statement["Principal"])


def test_layer_name_is_fixed_by_a_parameter(rendered):
    template, _ = rendered
    assert template["Resources"]["ChaosLayer"]["Properties"]["LayerName"] == {"Ref": "LayerName"}
    assert template["Parameters"]["LayerName"]["Default"] == "lambda-chaos-layer"
    assert template["Outputs"]["LayerName"]["Value"] == {"Ref": "LayerName"}


def test_administration_role_exists_only_when_asked_and_assumes_only_the_execution_role(central):
    role = central["Resources"]["AutomationAdministrationRole"]
    assert role["Condition"] == "CreateAdministrationRole"
    assert central["Parameters"]["CreateAdministrationRole"]["Default"] == "false"
    assert role["Properties"]["RoleName"] == ADMIN_ROLE
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "ssm.amazonaws.com"}
    (statement,) = role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:iam::*:role/${ExecutionRoleName}"}


def test_automation_role_may_hand_off_to_the_fault_document_and_pass_only_itself(central):
    """Besides itself it may pass only SSM's administration role (the multi-account runs':
    tests/test_stack_template.py checks that statement)."""
    policy = central["Resources"]["AutomationHandOffPolicy"]["Properties"]
    assert policy["RoleName"] == {"Ref": "AutomationRole"}
    statements = [s for s in policy["PolicyDocument"]["Statement"]
                  if s.get("Sid") != "PassTheAdministrationRoleToSsm"]
    by_action = {s["Action"]: s for s in statements}
    assert len(by_action) == len(statements)
    assert set(by_action) == {"ssm:StartAutomationExecution", "ssm:GetAutomationExecution",
                              "iam:PassRole"}
    start = [r["Fn::Sub"] for r in by_action["ssm:StartAutomationExecution"]["Resource"]]
    assert all("${AWS::StackName}-LambdaFault" in r and "Experiment" not in r for r in start)
    assert by_action["ssm:GetAutomationExecution"]["Resource"]["Fn::Sub"].endswith(
        ":automation-execution/*")
    passing = by_action["iam:PassRole"]
    assert passing["Resource"] == {"Fn::GetAtt": ["AutomationRole", "Arn"]}
    assert passing["Condition"] == {"StringEquals": {"iam:PassedToService": "ssm.amazonaws.com"}}


def test_automation_policy_reads_the_stack_yaml_not_a_copy(monkeypatch, tmp_path):
    fake = tmp_path / "stack.yaml"
    fake.write_text(stack.STACK_TEMPLATE.read_text().replace(
        "ReadTheChaosLayer", "ReadTheChaosLayerRenamed"))
    monkeypatch.setattr(stack, "STACK_TEMPLATE", fake)
    sids = [s["Sid"] for s in target.automation_policy()["Statement"]]
    assert "ReadTheChaosLayerRenamed" in sids


def test_newest_layer_version_lookup_is_limited_to_the_chaos_layer(rendered, central):
    template, _ = rendered
    for doc, role, name in ((central, "AutomationRole", "${AWS::StackName}-chaos-layer"),
                            (template, "ExecutionRole", "${LayerName}")):
        (statement,) = [s for s in _statements(doc, role) if s["Action"] == "lambda:ListLayerVersions"]
        assert statement["Resource"]["Fn::Sub"].endswith(":layer:" + name)
