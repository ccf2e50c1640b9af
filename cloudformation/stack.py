"""Assemble the toolkit's CloudFormation stack from `stack.yaml` and the files it deploys.

`stack.yaml` holds the resources; this module fills in what lives in other files, so each thing
has one source: the SSM documents' `Content` (ssm_documents/*.yaml), the FIS role's policy (the
union of fis_templates/*/fis-role-policy.json), one `AWS::FIS::ExperimentTemplate` per
fis_templates/ folder (its report's dashboard only when the stack is given one, `HasDashboard`;
the single-function template only with a target function, the organisation template only with
target accounts: TEMPLATE_CONDITIONS), the layer zip's path for `aws cloudformation package`, and each layer
version's `CompatibleRuntimes` (layer/settings.json's `compatible_runtimes`).

With `local=True` the resources moto's CloudFormation cannot create correctly are left out
(deploy.sh --local creates them through their APIs): the layer version (moto ignores LayerName
and its Ref is broken), the SSM documents (moto stores object Content unusably), the alarm and
the FIS templates (moto skips both).
"""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from . import cfn_yaml, fis
from .documents import ATTACHMENT as ATTACHMENT_NAME
from .documents import (NAME_SUFFIXES, REPO_ROOT, attachment_key, attachment_sha256,
                        document_name, load_document, present_documents,
                        with_fault_document)

__all__ = ["STACK_TEMPLATE", "LOCAL_API_TYPES", "CFN_VALUES", "POLICY_VALUES", "render_stack",
           "fis_role_policy", "merge_policies", "logical_id", "layer_runtimes", "document_values",
           "TEMPLATE_CONDITIONS", "template_condition", "LIST_ITEM_SEPARATOR"]

STACK_TEMPLATE = Path(__file__).resolve().parent / "stack.yaml"
LAYER_SETTINGS = REPO_ROOT / "layer" / "settings.json"
LOCAL_API_TYPES = ("AWS::Lambda::LayerVersion", "AWS::SSM::Document", "AWS::CloudWatch::Alarm",
                   "AWS::FIS::ExperimentTemplate")


def _sub(text: str) -> dict:
    return {"Fn::Sub": text}


_ARN = "arn:${AWS::Partition}:%s:${AWS::Region}:${AWS::AccountId}:%s"
# A fis.LIST_PLACEHOLDERS placeholder sits in documentParameters as `["${X}"]`: its list parameter
# joined with this becomes one JSON string per item.
LIST_ITEM_SEPARATOR = '","'
# Each template placeholder as a CloudFormation expression inside this stack. The documents'
# ARNs and names here lack the attachment's short hash: render_stack replaces them with
# document_values' (the names the stack gives the documents).
CFN_VALUES: Dict[str, Any] = {
    "FisRoleArn": {"Fn::GetAtt": ["FisRole", "Arn"]},
    "AutomationRoleArn": {"Fn::GetAtt": ["AutomationRole", "Arn"]},
    "FaultDocumentArn": _sub(_ARN % ("ssm", "document/${AWS::StackName}-LambdaFault")),
    "ExperimentDocumentArn": _sub(_ARN % ("ssm", "document/${AWS::StackName}-LambdaFaultExperiment")),
    "OrganizationDocumentArn": _sub(_ARN % ("ssm", "document/${AWS::StackName}-LambdaFaultOrganization")),
    "LayerArn": {"Ref": "ChaosLayer"},
    "StopAlarmArn": {"Fn::If": ["CreateStopAlarm", {"Fn::GetAtt": ["ChaosStopAlarm", "Arn"]},
                                {"Ref": "StopAlarmArn"}]},
    "LogGroupArn": _sub(_ARN % ("logs", "log-group:/aws/fis/${AWS::StackName}:*")),
    "TargetFunctionName": {"Ref": "TargetFunctionName"},
    "TargetTagKey": {"Ref": "TargetTagKey"},
    "TargetTagValue": {"Ref": "TargetTagValue"},
    "ReportBucketName": {"Ref": "ReportBucket"},
    "DashboardArn": {"Ref": "DashboardArn"},
    "TargetAccounts": {"Fn::Join": [LIST_ITEM_SEPARATOR, {"Ref": "TargetAccounts"}]},
    "TargetRegions": {"Fn::If": ["HasTargetRegions",
                                 {"Fn::Join": [LIST_ITEM_SEPARATOR, {"Ref": "TargetRegions"}]},
                                 {"Ref": "AWS::Region"}]},
    "TargetLayerName": {"Ref": "TargetLayerName"},
    "ExecutionRoleName": {"Ref": "ExecutionRoleName"},
}
# The condition each fis.TEMPLATE_REQUIRES placeholder puts on a template that uses it (and on
# its output): without a target function or target accounts the template is not created.
TEMPLATE_CONDITIONS: Dict[str, str] = {
    "TargetFunctionName": "HasTargetFunction",
    "TargetAccounts": "HasTargetAccounts",
}
# The condition that keeps each fis.OPTIONAL_SECTIONS section (CloudFormation spelling of its
# path, the condition's name).
CFN_OPTIONAL_SECTIONS: Dict[str, Any] = {
    "DashboardArn": (("ExperimentReportConfiguration", "DataSources"), "HasDashboard"),
}
# Each policy-file placeholder as a CloudFormation expression.
POLICY_VALUES: Dict[str, Any] = {
    "Partition": {"Ref": "AWS::Partition"},
    "Region": {"Ref": "AWS::Region"},
    "AccountId": {"Ref": "AWS::AccountId"},
    "FaultDocumentName": _sub("${AWS::StackName}-LambdaFault"),
    "ExperimentDocumentName": _sub("${AWS::StackName}-LambdaFaultExperiment"),
    "OrganizationDocumentName": _sub("${AWS::StackName}-LambdaFaultOrganization"),
    "AutomationRoleArn": {"Fn::GetAtt": ["AutomationRole", "Arn"]},
    "ReportBucketName": {"Ref": "ReportBucket"},
    # deploy.sh names the sample app's stack <stack>-sample-app, its dashboard <that>-<region>
    # (sample_app/dashboard.py's dashboard_name).
    "AppDashboardName": _sub("${AWS::StackName}-sample-app-${AWS::Region}"),
}


def logical_id(template_name: str) -> str:
    """'lambda-regional-outage' -> 'LambdaRegionalOutageTemplate'."""
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", template_name)) + "Template"


def merge_policies(policies: List[Mapping[str, Any]]) -> dict:
    """One policy holding every statement of `policies`; statements with the same Sid must say
    the same apart from Resource, whose lists are united (so the FIS role may start either
    document, and nothing else)."""
    merged: Dict[str, dict] = {}
    for policy in policies:
        for statement in policy["Statement"]:
            sid = statement["Sid"]
            if sid not in merged:
                merged[sid] = copy.deepcopy(dict(statement))
                continue
            have = merged[sid]
            rest = {k: v for k, v in statement.items() if k != "Resource"}
            if rest != {k: v for k, v in have.items() if k != "Resource"}:
                raise ValueError(f"statement {sid!r} differs between policy files apart from "
                                 f"Resource; give the statements different Sids")
            resources = _as_list(have["Resource"])
            for resource in _as_list(statement["Resource"]):
                if resource not in resources:
                    resources.append(resource)
            have["Resource"] = resources if len(resources) > 1 else resources[0]
    return {"Version": "2012-10-17", "Statement": list(merged.values())}


def fis_role_policy(root: Optional[Path] = None) -> dict:
    """The FIS role's policy with `${…}` placeholders: the union of every template's policy."""
    return merge_policies([fis.load_policy(name, root) for name in fis.template_names(root)])


def layer_runtimes() -> List[str]:
    """What a layer version lists as CompatibleRuntimes: settings.json's `compatible_runtimes`
    (the Lambda API takes at most 15; the automation accepts every runtime in `accepted`)."""
    return list(json.loads(LAYER_SETTINGS.read_text(encoding="utf-8"))
                ["runtimes"]["compatible_runtimes"])


def render_stack(layer_zip: Path, local: bool = False, root: Optional[Path] = None) -> dict:
    """The complete stack template (a dict; deploy.sh writes it as JSON)."""
    template = cfn_yaml.load(STACK_TEMPLATE)
    resources = template["Resources"]
    resources["ChaosLayer"]["Properties"]["Content"] = str(Path(layer_zip).resolve())
    for resource in resources.values():
        if resource["Type"] == "AWS::Lambda::LayerVersion":
            resource["Properties"]["CompatibleRuntimes"] = layer_runtimes()
    sha = attachment_sha256(root)
    names, arns = document_values(sha)
    cfn_values = dict(CFN_VALUES, **{f"{key}Arn": arn for key, arn in arns.items()})
    policy_values = dict(POLICY_VALUES, **{f"{key}Name": name for key, name in names.items()})
    _documents(template, sha, names, arns, root)
    policy = fis.to_sub(fis_role_policy(root), policy_values)
    resources["FisRole"]["Properties"]["Policies"][0]["PolicyDocument"] = policy
    for name in fis.template_names(root):
        body = fis.load_template(name, root)
        resource: Dict[str, Any] = {"Type": "AWS::FIS::ExperimentTemplate",
                                    "Properties": _conditional_sections(
                                        fis.to_cloudformation(body, cfn_values))}
        output: Dict[str, Any] = {"Description": f"FIS experiment template id: {name}",
                                  "Value": {"Ref": logical_id(name)}}
        condition = template_condition(name, body)
        if condition:
            resource["Condition"] = output["Condition"] = condition
        resources[logical_id(name)] = resource
        template["Outputs"][logical_id(name) + "Id"] = output
    return strip_for_local(template) if local else template


def template_condition(name: str, body: Mapping[str, Any]) -> Optional[str]:
    """The Condition of the template's resource: TEMPLATE_CONDITIONS' for the one
    fis.TEMPLATE_REQUIRES placeholder it uses, None when it uses none (always created)."""
    used = [TEMPLATE_CONDITIONS[key] for key in fis.TEMPLATE_REQUIRES
            if key in fis.placeholders_in(body)]
    if len(used) > 1:
        raise ValueError(f"fis_templates/{name} needs both conditions {used}; add a condition "
                         f"to stack.yaml that is their Fn::And and map it in TEMPLATE_CONDITIONS")
    return used[0] if used else None


def document_values(sha256: str):
    """Each document's name and ARN as `Fn::Sub` expressions of this stack (short hash in it)."""
    names = {key: _sub(document_name(key, "${AWS::StackName}", sha256)) for key in NAME_SUFFIXES}
    arns = {key: _sub(_ARN % ("ssm", "document/" + name["Fn::Sub"])) for key, name in names.items()}
    return names, arns


def _documents(template: Dict[str, Any], sha256: str, names: Mapping[str, Any],
               arns: Mapping[str, Any], root: Optional[Path]) -> None:
    """Fill each present document's Name, Content and Attachments (the attachment from the
    deploy bucket, under its hash), its defaults that name other documents, and its outputs;
    a document whose file does not exist yet is left out with its outputs."""
    resources, outputs = template["Resources"], template["Outputs"]
    fault = names["FaultDocument"]["Fn::Sub"]
    start = resources["AutomationHandOffPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    start["Resource"] = [arns["FaultDocument"],
                         _sub(_ARN % ("ssm", f"automation-definition/{fault}:*"))]
    present = present_documents(root)
    url = _sub("s3://${DeployBucket}/" + attachment_key("${AWS::StackName}", sha256))
    for key in NAME_SUFFIXES:
        if key not in present:
            resources.pop(key, None)
            outputs.pop(f"{key}Name", None)
            outputs.pop(f"{key}Arn", None)
            continue
        content = with_fault_document(key, load_document(key, root), names["FaultDocument"],
                                      arns["FaultDocument"])
        properties = resources[key]["Properties"]
        properties.update(Name=names[key], Content=content)
        if ATTACHMENT_NAME in (content.get("files") or {}):  # only a document that runs it
            properties["Attachments"] = [
                {"Key": "S3FileUrl", "Name": ATTACHMENT_NAME, "Values": [url]}]
        outputs[f"{key}Name"] = {"Value": names[key]}
        outputs[f"{key}Arn"] = {"Value": arns[key]}


def _conditional_sections(properties: Dict[str, Any]) -> Dict[str, Any]:
    """Each optional section wrapped in Fn::If on its condition (absent when it is false)."""
    for (*path, member), condition in CFN_OPTIONAL_SECTIONS.values():
        parent = properties
        for key in path:
            parent = parent.get(key, {})
        if member in parent:
            parent[member] = {"Fn::If": [condition, parent[member], {"Ref": "AWS::NoValue"}]}
    return properties


def strip_for_local(template: Mapping[str, Any]) -> dict:
    """The template without LOCAL_API_TYPES resources and the outputs that refer to them."""
    result = copy.deepcopy(dict(template))
    removed = {lid for lid, r in result["Resources"].items() if r["Type"] in LOCAL_API_TYPES}
    result["Resources"] = {lid: r for lid, r in result["Resources"].items() if lid not in removed}
    result["Outputs"] = {key: out for key, out in result.get("Outputs", {}).items()
                         if not cfn_yaml.references(out) & removed}
    for lid, resource in result["Resources"].items():
        dangling = cfn_yaml.references(resource) & removed
        if dangling:  # a bug in stack.yaml: a kept resource must not need an API-made one
            raise ValueError(f"{lid} refers to {sorted(dangling)}, which --local creates by API")
    return result


def _as_list(value: Any) -> List[Any]:
    return list(value) if isinstance(value, list) else [value]
