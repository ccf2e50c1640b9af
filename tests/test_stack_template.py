"""The toolkit stack (cloudformation/stack.yaml as rendered by deploy.sh): lint-clean, and its
roles grant what the automation and FIS need and nothing more."""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import botocore.session
import pytest
from botocore import xform_name

from cloudformation import cfn_yaml, fis, stack

ROOT = Path(__file__).resolve().parent.parent
CFN_LINT = str(Path(sys.executable).parent / "cfn-lint")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    path = tmp_path_factory.mktemp("stack") / "stack.json"
    template = stack.render_stack(ROOT / "dist" / "chaos-layer.zip")
    path.write_text(json.dumps(template, indent=1))
    return template, path


def _policy(template, role):
    return template["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]


def _actions(policy):
    found = set()
    for statement in policy["Statement"]:
        actions = statement["Action"]
        found.update([actions] if isinstance(actions, str) else actions)
    return found


# Permissions an operation needs besides its own (Lambda docs, "Using tags on Lambda
# functions": for tagged functions lambda:ListTags is also necessary for GetFunction).
DEPENDENT = {"lambda:GetFunction": {"lambda:ListTags"}}


def _handler_calls():
    """Lambda and tagging permissions automation_handler.py needs: the operations it names
    (calls and waiters) and what those depend on."""
    source = (ROOT / "automation_handler.py").read_text()
    session = botocore.session.get_session()
    words = set(re.findall(r"[A-Za-z_0-9]+", source))
    needed = set()
    for service, prefix in (("lambda", "lambda"), ("resourcegroupstaggingapi", "tag")):
        model = session.get_service_model(service)
        needed |= {f"{prefix}:{op}" for op in model.operation_names if xform_name(op) in words}
    waiters = session.get_waiter_model("lambda")
    for name in waiters.waiter_names:
        if xform_name(name) in words:
            needed.add(f"lambda:{waiters.get_waiter(name).operation}")
    for action in list(needed):
        needed |= DEPENDENT.get(action, set())
    return needed


def test_rendered_stack_passes_cfn_lint(rendered):
    _, path = rendered
    # W3002: the layer's Content is a local path until `aws cloudformation package` uploads it.
    done = subprocess.run([CFN_LINT, "--ignore-checks", "W3002", "--",
                           str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_local_stack_passes_cfn_lint(tmp_path):
    path = tmp_path / "local.json"
    path.write_text(json.dumps(stack.render_stack(ROOT / "dist" / "chaos-layer.zip", local=True)))
    # W2001/W8001: the guard alarm's parameter and condition stay; deploy.sh evaluates them
    # when it creates the alarm by API.
    done = subprocess.run([CFN_LINT, "--ignore-checks", "W2001", "W8001", "--", str(path)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_automation_role_allows_every_call_the_handler_makes(rendered):
    template, _ = rendered
    assert _handler_calls() <= _actions(_policy(template, "AutomationRole"))


def test_automation_role_allows_no_call_the_handler_does_not_make(rendered):
    template, _ = rendered
    assert _actions(_policy(template, "AutomationRole")) <= _handler_calls()


def test_automation_role_changes_only_opted_in_functions(rendered):
    template, _ = rendered
    for statement in _policy(template, "AutomationRole")["Statement"]:
        writes = {a for a in ([statement["Action"]] if isinstance(statement["Action"], str)
                              else statement["Action"])
                  if a.split(":")[1].startswith(("Update", "Publish", "Delete"))}
        if writes:
            condition = statement["Condition"]["StringEquals"]
            assert condition == {"aws:ResourceTag/chaos:opt-in": {"Ref": "OptInTagValue"}}, writes


def test_layer_condition_restricts_every_layer_of_the_request(rendered):
    template, _ = rendered
    (statement,) = [s for s in _policy(template, "AutomationRole")["Statement"]
                    if s["Action"] == "lambda:UpdateFunctionConfiguration"]
    layer = statement["Condition"]["ForAllValues:ArnLike"]["lambda:Layer"]
    assert layer["Fn::If"][0] == "HasTrustedLayers"
    (only_ours,) = layer["Fn::If"][2]
    assert only_ours == {"Fn::Sub": "arn:${AWS::Partition}:lambda:${AWS::Region}:"
                                    "${AWS::AccountId}:layer:${AWS::StackName}-chaos-layer:*"}


def test_delete_is_limited_to_function_versions(rendered):
    template, _ = rendered
    (statement,) = [s for s in _policy(template, "AutomationRole")["Statement"]
                    if s["Action"] == "lambda:DeleteFunction"]
    assert statement["Resource"]["Fn::Sub"].endswith(":function:*:*")


def test_fis_role_policy_is_the_union_of_the_template_policies(rendered):
    template, _ = rendered
    policy = _policy(template, "FisRole")
    assert _actions(policy) == {"ssm:StartAutomationExecution", "ssm:GetAutomationExecution",
                                "ssm:StopAutomationExecution", "iam:PassRole",
                                "logs:CreateLogDelivery", "logs:PutResourcePolicy",
                                "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
                                "cloudwatch:GetDashboard", "cloudwatch:GetMetricWidgetImage",
                                "s3:PutObject", "s3:GetObject"}
    (start,) = [s for s in policy["Statement"] if s["Sid"] == "StartOnlyTheChaosDocument"]
    texts = [r["Fn::Sub"][0] for r in start["Resource"]]
    assert texts == [
        "arn:${Partition}:ssm:${Region}:${AccountId}:document/${ExperimentDocumentName}",
        "arn:${Partition}:ssm:${Region}:${AccountId}:automation-definition/${ExperimentDocumentName}:*",
        "arn:${Partition}:ssm:${Region}:${AccountId}:document/${FaultDocumentName}",
        "arn:${Partition}:ssm:${Region}:${AccountId}:automation-definition/${FaultDocumentName}:*",
        "arn:${Partition}:ssm:${Region}:${AccountId}:document/${OrganizationDocumentName}",
        "arn:${Partition}:ssm:${Region}:${AccountId}:automation-definition/${OrganizationDocumentName}:*"]
    (passing,) = [s for s in policy["Statement"] if s["Action"] == "iam:PassRole"]
    assert passing["Condition"] == {"StringEquals": {"iam:PassedToService": "ssm.amazonaws.com"}}


def test_merge_policies_refuses_same_sid_with_different_actions():
    a = {"Statement": [{"Sid": "S", "Effect": "Allow", "Action": "x:A", "Resource": "r1"}]}
    b = {"Statement": [{"Sid": "S", "Effect": "Allow", "Action": "x:B", "Resource": "r2"}]}
    with pytest.raises(ValueError, match="'S' differs between policy files"):
        stack.merge_policies([a, b])


def test_stack_has_one_fis_template_per_folder_and_documents_from_ssm_documents(rendered):
    template, _ = rendered
    resources = template["Resources"]
    fis_ids = {lid for lid, r in resources.items() if r["Type"] == "AWS::FIS::ExperimentTemplate"}
    assert fis_ids == {stack.logical_id(name) for name in fis.template_names()}
    assert resources["LambdaLatencySingleFunctionTemplate"]["Condition"] == "HasTargetFunction"
    assert resources["LambdaOrganizationOutageTemplate"]["Condition"] == "HasTargetAccounts"
    assert template["Outputs"]["LambdaOrganizationOutageTemplateId"]["Condition"] == \
        "HasTargetAccounts"
    for name in ("LambdaRegionalOutageTemplate", "LambdaInvocationErrorsTemplate"):
        assert "Condition" not in resources[name]
    assert resources["FaultDocument"]["Properties"]["Content"]["schemaVersion"] == "0.3"
    assert resources["FaultDocument"]["Properties"]["UpdateMethod"] == "NewVersion"


def test_local_stack_leaves_out_what_moto_cannot_create_and_its_outputs(rendered):
    local = stack.render_stack(ROOT / "dist" / "chaos-layer.zip", local=True)
    types = {r["Type"] for r in local["Resources"].values()}
    assert not types & set(stack.LOCAL_API_TYPES)
    assert "LayerArn" not in local["Outputs"] and "StopAlarmArn" not in local["Outputs"]
    assert {"FisRoleArn", "AutomationRoleArn", "LogGroupArn"} <= set(local["Outputs"])


def test_strip_for_local_refuses_kept_resource_that_needs_an_api_made_one():
    template = {"Resources": {"Doc": {"Type": "AWS::SSM::Document", "Properties": {}},
                              "Role": {"Type": "AWS::IAM::Role",
                                       "Properties": {"X": {"Ref": "Doc"}}}},
                "Outputs": {}}
    with pytest.raises(ValueError, match=r"Role refers to \['Doc'\]"):
        stack.strip_for_local(template)


def test_cfn_yaml_reads_short_form_tags():
    template = cfn_yaml.load(stack.STACK_TEMPLATE)
    assert template["Outputs"]["FisRoleArn"]["Value"] == {"Fn::GetAtt": ["FisRole", "Arn"]}


def test_guard_alarm_is_created_by_api_only_when_no_stop_alarm_is_given():
    from cloudformation.render import render_alarms
    template = stack.render_stack(ROOT / "dist" / "chaos-layer.zip")
    names = {"AWS::StackName": "chaos", "AWS::Region": "eu-west-1", "AWS::AccountId": "1",
             "AWS::Partition": "aws", "StopAlarmArn": ""}
    (alarm,) = render_alarms(template, names).values()
    assert alarm["AlarmName"] == "chaos-lambda-errors-guard"
    assert alarm["Threshold"] == 100.0 and alarm["Period"] == 60   # typed per PutMetricAlarm
    given = dict(names, StopAlarmArn="arn:aws:cloudwatch:eu-west-1:1:alarm:slo")
    assert render_alarms(template, given) == {}


def test_resolver_names_what_it_cannot_evaluate():
    from cloudformation.errors import DeployError
    resolver = cfn_yaml.Resolver({}, {})
    with pytest.raises(DeployError, match="Fn::GetAtt cannot be evaluated for a --local deploy"):
        resolver.value({"Fn::GetAtt": ["Api", "RootResourceId"]})
    with pytest.raises(DeployError, match="no value for 'Missing'"):
        resolver.value({"Ref": "Missing"})


def test_document_content_fits_cloudformations_64_kb_limit(rendered):
    # AWS::SSM::Document Content "can't exceed 64KB" (CloudFormation reference); the script
    # embedded from automation_handler.py is most of it, so this fails early when it grows.
    template, _ = rendered
    for logical in ("FaultDocument", "ExperimentDocument"):
        content = template["Resources"][logical]["Properties"]["Content"]
        size = len(json.dumps(content, separators=(",", ":")).encode())
        assert size <= 64 * 1024, f"{logical}: {size} bytes"


def test_report_bucket_is_private_encrypted_tls_only_and_an_output(rendered):
    template, _ = rendered
    bucket = template["Resources"]["ReportBucket"]
    assert bucket["Type"] == "AWS::S3::Bucket" and bucket["DeletionPolicy"] == "Retain"
    props = bucket["Properties"]
    assert set(props["PublicAccessBlockConfiguration"].values()) == {True}
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert props["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    (deny,) = template["Resources"]["ReportBucketTlsOnly"]["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert template["Outputs"]["ReportBucketName"]["Value"] == {"Ref": "ReportBucket"}


def test_every_fis_template_reports_to_the_stacks_bucket_and_the_dashboard_only_if_given(rendered):
    template, _ = rendered
    for name in fis.template_names():
        report = template["Resources"][stack.logical_id(name)]["Properties"][
            "ExperimentReportConfiguration"]
        s3 = report["Outputs"]["ExperimentReportS3Configuration"]
        assert s3["BucketName"]["Fn::Sub"][1] == {"ReportBucketName": {"Ref": "ReportBucket"}}
        assert s3["Prefix"] == f"experiment-reports/{name}"
        condition, sources, otherwise = report["DataSources"]["Fn::If"]
        assert (condition, otherwise) == ("HasDashboard", {"Ref": "AWS::NoValue"})
        (dashboard,) = sources["CloudWatchDashboards"]
        assert dashboard["DashboardIdentifier"]["Fn::Sub"][1] == {"DashboardArn": {"Ref": "DashboardArn"}}
    assert template["Conditions"]["HasDashboard"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "DashboardArn"}, ""]}]}


def test_fis_role_may_write_reports_only_under_each_templates_prefix(rendered):
    template, _ = rendered
    policy = _policy(template, "FisRole")
    (write,) = [s for s in policy["Statement"] if s["Sid"] == "ReportWritesToTheReportBucket"]
    texts = sorted(r["Fn::Sub"][0] for r in write["Resource"])
    assert texts == [f"arn:${{Partition}}:s3:::${{ReportBucketName}}/experiment-reports/{n}/*"
                     for n in fis.template_names()]
    (read,) = [s for s in policy["Statement"] if s["Sid"] == "ReportReadsTheAppDashboard"]
    from sample_app import dashboard
    assert read["Resource"]["Fn::Sub"][1]["AppDashboardName"] == {
        "Fn::Sub": dashboard.dashboard_name("${AWS::StackName}-sample-app", "${AWS::Region}")}


def _short_hash():
    from cloudformation import documents
    return documents.attachment_sha256()


def test_document_names_carry_the_attachments_short_hash_and_are_outputs(rendered):
    template, _ = rendered
    sha = _short_hash()
    for key, suffix in (("FaultDocument", "LambdaFault"),
                        ("ExperimentDocument", "LambdaFaultExperiment"),
                        ("OrganizationDocument", "LambdaFaultOrganization")):
        name = "${AWS::StackName}-" + suffix + "-" + sha[:8]
        assert template["Resources"][key]["Properties"]["Name"] == {"Fn::Sub": name}
        assert template["Outputs"][key + "Name"]["Value"] == {"Fn::Sub": name}
        assert template["Outputs"][key + "Arn"]["Value"]["Fn::Sub"].endswith(":document/" + name)


def test_documents_take_the_attachment_from_the_deploy_bucket_under_its_hash(rendered):
    template, _ = rendered
    sha = _short_hash()
    for key in ("FaultDocument", "ExperimentDocument", "OrganizationDocument"):
        properties = template["Resources"][key]["Properties"]
        if "files" not in properties["Content"]:  # runs no script: nothing to attach
            assert "Attachments" not in properties
            continue
        assert properties["Attachments"] == [{
            "Key": "S3FileUrl", "Name": "automation_handler.py",
            "Values": [{"Fn::Sub": "s3://${DeployBucket}/${AWS::StackName}/attachments/"
                                   f"{sha}/automation_handler.py"}]}]
        assert properties["Content"]["files"]["automation_handler.py"]["checksums"]["sha256"] == sha


def test_documents_default_to_the_deployed_fault_document(rendered):
    template, _ = rendered
    resources = template["Resources"]
    name = resources["FaultDocument"]["Properties"]["Name"]
    experiment = resources["ExperimentDocument"]["Properties"]["Content"]["parameters"]
    organization = resources["OrganizationDocument"]["Properties"]["Content"]["parameters"]
    assert experiment["FaultDocumentName"]["default"] == name
    assert organization["FaultDocumentName"]["default"] == template["Outputs"]["FaultDocumentArn"]["Value"]


def test_hand_off_may_start_only_the_deployed_fault_document(rendered):
    template, _ = rendered
    name = template["Resources"]["FaultDocument"]["Properties"]["Name"]["Fn::Sub"]
    (start, *_) = template["Resources"]["AutomationHandOffPolicy"]["Properties"][
        "PolicyDocument"]["Statement"]
    head = "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:"
    assert [r["Fn::Sub"] for r in start["Resource"]] == [
        f"{head}document/{name}", f"{head}automation-definition/{name}:*"]


def _checkout(tmp_path, drop=()):
    for folder in ("ssm_documents", "fis_templates"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    for name in drop:
        (tmp_path / "ssm_documents" / name).unlink()
    return tmp_path


def test_stack_leaves_out_a_document_not_written_yet(tmp_path):
    root = _checkout(tmp_path, drop=["lambda-fault-organization.yaml"])
    template = stack.render_stack(ROOT / "dist" / "chaos-layer.zip", root=root)
    assert "OrganizationDocument" not in template["Resources"]
    assert not {"OrganizationDocumentName", "OrganizationDocumentArn"} & set(template["Outputs"])
    assert "FaultDocument" in template["Resources"]


def test_stack_refuses_an_attachment_the_documents_do_not_pin(tmp_path):
    from cloudformation.errors import DocumentMissingError
    root = _checkout(tmp_path)
    (root / "ssm_documents" / "attachments" / "automation_handler.py").write_text("changed\n")
    with pytest.raises(DocumentMissingError, match="python -m ssm_documents.render"):
        stack.render_stack(ROOT / "dist" / "chaos-layer.zip", root=root)


# --- the organisation template ----------------------------------------------------------------

def _evaluate(expression, parameters):
    """The few intrinsics the organisation template's values use, over `parameters` (lists for
    CommaDelimitedList parameters): enough to read the rendered documentParameters back."""
    if isinstance(expression, str):
        return expression
    (function, argument), = expression.items()
    if function == "Ref":
        return parameters[argument]
    if function == "Fn::GetAtt":
        return ".".join(argument)
    if function == "Fn::Join":
        separator, items = argument
        return separator.join(_evaluate(items, parameters))
    if function == "Fn::If":
        condition, then, otherwise = argument
        return _evaluate(then if parameters[condition] else otherwise, parameters)
    if function == "Fn::Sub":
        text, variables = argument if isinstance(argument, list) else (argument, {})
        values = {key: _evaluate(value, parameters) for key, value in variables.items()}
        return re.sub(r"\$\{([A-Za-z0-9:]+)\}",
                      lambda m: values.get(m.group(1), parameters.get(m.group(1), m.group(0))), text)
    raise AssertionError(f"{function} is not evaluated here")


def _organization_parameters(template, **parameters):
    props = template["Resources"]["LambdaOrganizationOutageTemplate"]["Properties"]
    (action,) = props["Actions"].values()
    text = _evaluate(action["Parameters"]["documentParameters"], dict({
        "HasTargetRegions": bool(parameters.get("TargetRegions")), "AWS::Region": "eu-west-1",
        "TargetLayerName": "lambda-chaos-layer", "ExecutionRoleName": "LambdaChaosAutomationExecution",
        "TargetTagKey": "chaos:target", "TargetTagValue": "sample-app"}, **parameters))
    return action, json.loads(text)


def test_organization_template_lists_the_stacks_target_accounts_and_regions(rendered):
    template, _ = rendered
    action, params = _organization_parameters(
        template, TargetAccounts=["111111111111", "222222222222"],
        TargetRegions=["us-east-1", "eu-west-1"])
    assert params["TargetAccounts"] == ["111111111111", "222222222222"]
    assert params["TargetRegions"] == ["us-east-1", "eu-west-1"]
    assert (params["LayerArn"], params["ExecutionRoleName"]) == (
        "lambda-chaos-layer", "LambdaChaosAutomationExecution")
    assert params["AutomationAssumeRole"] == "AutomationRole.Arn"  # the role the FIS role passes
    sha = _short_hash()[:8]
    arn = _evaluate(action["Parameters"]["documentArn"], {"AWS::Partition": "aws",
                    "AWS::Region": "eu-west-1", "AWS::AccountId": "1", "AWS::StackName": "s"})
    assert arn == f"arn:aws:ssm:eu-west-1:1:document/s-LambdaFaultOrganization-{sha}"


def test_organization_template_defaults_its_regions_to_the_stacks_own(rendered):
    template, _ = rendered
    _, params = _organization_parameters(template, TargetAccounts=["111111111111"],
                                         TargetRegions=[])
    assert params["TargetRegions"] == ["eu-west-1"]


def test_stack_parameters_and_outputs_of_the_organisation_run(rendered):
    template, _ = rendered
    parameters, outputs = template["Parameters"], template["Outputs"]
    assert parameters["TargetAccounts"]["Type"] == parameters["TargetRegions"]["Type"] == \
        "CommaDelimitedList"
    assert parameters["TargetAccounts"]["Default"] == ""
    target = cfn_yaml.load(ROOT / "cloudformation" / "target-stack.yaml")["Parameters"]
    # the central stack names what each target stack deploys, with the same defaults
    assert parameters["TargetLayerName"]["Default"] == target["LayerName"]["Default"]
    assert parameters["TargetLayerName"]["AllowedPattern"] == target["LayerName"]["AllowedPattern"]
    assert parameters["ExecutionRoleName"]["Default"] == target["ExecutionRoleName"]["Default"]
    assert template["Conditions"]["HasTargetAccounts"] == {
        "Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "TargetAccounts"}]}, ""]}]}
    assert outputs["TargetAccounts"] == {"Condition": "HasTargetAccounts",
                                         "Value": {"Fn::Join": [",", {"Ref": "TargetAccounts"}]}}
    assert {"TargetRegions", "TargetLayerName", "ExecutionRoleName",
            "OrganizationDocumentArn"} <= set(outputs)


def test_every_template_placeholder_has_a_cloudformation_value():
    assert set(stack.CFN_VALUES) == set(fis.PLACEHOLDERS)
    assert set(stack.TEMPLATE_CONDITIONS) == set(fis.TEMPLATE_REQUIRES)


def test_a_template_needing_two_conditions_is_refused_in_words():
    body = {"description": "${TargetFunctionName} in ${TargetAccounts}"}
    with pytest.raises(ValueError, match="needs both conditions .*HasTargetFunction.*HasTargetAccounts"):
        stack.template_condition("both", body)


def test_automation_role_may_pass_only_the_administration_role_and_itself_to_ssm(rendered):
    template, _ = rendered
    statements = template["Resources"]["AutomationHandOffPolicy"]["Properties"][
        "PolicyDocument"]["Statement"]
    passing = {s["Sid"]: s for s in statements if s["Action"] == "iam:PassRole"}
    assert set(passing) == {"PassOnlyItselfToSsm", "PassTheAdministrationRoleToSsm"}
    admin = passing["PassTheAdministrationRoleToSsm"]
    role = template["Resources"]["AutomationAdministrationRole"]["Properties"]["RoleName"]
    assert admin["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/" + role}
    for statement in passing.values():
        assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "ssm.amazonaws.com"}}
