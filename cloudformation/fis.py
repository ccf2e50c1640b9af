"""The FIS experiment templates in `fis_templates/`: load them and fill their placeholders.

Each template is a JSON file in the shape of the FIS `CreateExperimentTemplate` request, with
`${Name}` placeholders for what differs per account (role, document and alarm ARNs, the log
group, the layer, the target, the report's bucket and dashboard). Two renderings come out of
one file, so they cannot drift:

* `render_request` fills the placeholders with values and gives the request body that
  `aws fis create-experiment-template --cli-input-json` takes (used by `deploy.sh --local` and
  by the offline validation);
* `to_cloudformation` gives the `AWS::FIS::ExperimentTemplate` properties, each placeholder
  turned into an `Fn::Sub` over CloudFormation values (used by the real deploy).
"""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Set

import botocore.session

from .documents import REPO_ROOT
from .errors import MissingValueError

__all__ = ["TEMPLATES_DIR", "PLACEHOLDERS", "LIST_PLACEHOLDERS", "TEMPLATE_REQUIRES",
           "OPTIONAL_SECTIONS", "template_names", "unmet_requirements",
           "load_template", "load_policy", "placeholders_in", "render_request",
           "without_unset_sections", "to_cloudformation", "to_sub", "resolve_cloudformation",
           "document_parameters"]

TEMPLATES_DIR = REPO_ROOT / "fis_templates"
PLACEHOLDER = re.compile(r"\$\{([A-Za-z][A-Za-z0-9]*)\}")

# Every placeholder a template may use, and what deploy.sh fills it with.
PLACEHOLDERS: Dict[str, str] = {
    "FisRoleArn": "the role FIS assumes (stack output FisRoleArn)",
    "AutomationRoleArn": "the role the SSM automation assumes (stack output AutomationRoleArn)",
    "FaultDocumentArn": "ARN of ssm_documents/lambda-fault.yaml as deployed",
    "ExperimentDocumentArn": "ARN of ssm_documents/lambda-fault-experiment.yaml as deployed",
    "OrganizationDocumentArn": "ARN of ssm_documents/lambda-fault-organization.yaml as deployed",
    "LayerArn": "the chaos layer version ARN (stack output LayerArn)",
    "StopAlarmArn": "the CloudWatch alarm that stops the experiment",
    "LogGroupArn": "the CloudWatch Logs group FIS writes the experiment log to",
    "TargetFunctionName": "the one function the single-function template targets",
    "TargetTagKey": "tag key that selects the functions of the tag-targeted templates",
    "TargetTagValue": "tag value that selects the functions of the tag-targeted templates",
    "ReportBucketName": "the bucket the experiment reports go to (stack output ReportBucketName)",
    "DashboardArn": "the sample app's dashboard, the reports' data source (its stack output "
                    "DashboardArn); empty: the reports have no dashboard",
    "TargetAccounts": "the organisation run's target accounts, comma-separated (deploy.sh "
                      "--target-accounts, the stack parameter TargetAccounts)",
    "TargetRegions": "the organisation run's Regions, comma-separated (deploy.sh "
                     "--target-regions, the stack parameter TargetRegions)",
    "TargetLayerName": "the chaos layer's name in every target account and Region (the target "
                       "stack's LayerName, the stack parameter TargetLayerName)",
    "ExecutionRoleName": "the role SSM assumes in each target account (the stack parameter "
                         "ExecutionRoleName)",
}
# Placeholders that stand alone as an item of a documentParameters list: each comma-separated
# value becomes one item (a StringList parameter takes a JSON list, not one joined string).
LIST_PLACEHOLDERS = ("TargetAccounts", "TargetRegions")
# A template that uses one of these is made only when it has a value (no function named: no
# single-function template; no target accounts: no organisation template).
TEMPLATE_REQUIRES = ("TargetFunctionName", "TargetAccounts")
# A placeholder that may be empty, and the section (a path of API member names) that goes with
# it: without the sample app there is no dashboard, and the report has only the actions.
OPTIONAL_SECTIONS: Dict[str, tuple] = {
    "DashboardArn": ("experimentReportConfiguration", "dataSources"),
}
# Placeholders of the IAM policy files (fis-role-policy.json).
POLICY_PLACEHOLDERS = ("Partition", "Region", "AccountId", "FaultDocumentName",
                       "ExperimentDocumentName", "OrganizationDocumentName", "AutomationRoleArn",
                       "ReportBucketName", "AppDashboardName")
# API member names CloudFormation spells otherwise (AWS::FIS::ExperimentTemplate), by path.
_CFN_RENAMES = {("ExperimentReportConfiguration", "Outputs", "S3Configuration"):
                "ExperimentReportS3Configuration"}


def template_names(root: Optional[Path] = None) -> List[str]:
    """Folder names under fis_templates/ that hold a template.json, sorted."""
    base = (root or REPO_ROOT) / "fis_templates"
    return sorted(p.parent.name for p in base.glob("*/template.json"))


def load_template(name: str, root: Optional[Path] = None) -> dict:
    """The template as written, placeholders included."""
    path = (root or REPO_ROOT) / "fis_templates" / name / "template.json"
    with path.open(encoding="utf-8") as handle:
        return json.load(handle)


def load_policy(name: str, root: Optional[Path] = None) -> dict:
    """The IAM policy the template's FIS role needs, placeholders included."""
    path = (root or REPO_ROOT) / "fis_templates" / name / "fis-role-policy.json"
    with path.open(encoding="utf-8") as handle:
        return json.load(handle)


def placeholders_in(value: Any) -> Set[str]:
    """Every `${Name}` used anywhere in a (nested) value."""
    found: Set[str] = set()
    for text in _strings(value):
        found.update(PLACEHOLDER.findall(text))
    return found


def document_parameters(action: Mapping[str, Any]) -> Dict[str, Any]:
    """An automation action's `documentParameters`, parsed ({} when absent)."""
    raw = action.get("parameters", {}).get("documentParameters")
    return json.loads(raw) if raw else {}


def render_request(template: Mapping[str, Any], values: Mapping[str, str],
                   name: str = "template") -> dict:
    """Fill every placeholder; the result is a CreateExperimentTemplate request body.

    `documentParameters` is re-serialised compactly after filling, because FIS caps an action
    parameter at 1,024 characters; in it a LIST_PLACEHOLDERS item becomes one item per
    comma-separated value. Raises MissingValueError naming the first unfilled value.
    """
    def fill(text: str) -> str:
        def one(match: "re.Match[str]") -> str:
            key = match.group(1)
            if key not in values or values[key] in (None, ""):
                hint = PLACEHOLDERS.get(key, "a value")
                raise MissingValueError(
                    f"{name}: no value for ${{{key}}} ({hint}); pass {key}=VALUE to the renderer "
                    f"(deploy.sh fills it from the stack outputs)")
            return str(values[key])
        return PLACEHOLDER.sub(one, text)

    unfilled = without_unset_sections(template, values)
    doc_params: Dict[str, str] = {}
    for action_name, action in unfilled.get("actions", {}).items():
        params = action.get("parameters", {})
        if "documentParameters" in params:
            parsed = _map_strings(_expand_lists(json.loads(params.pop("documentParameters")),
                                                values), fill)
            doc_params[action_name] = json.dumps(parsed, separators=(",", ":"))
    rendered = _map_strings(unfilled, fill)
    for action_name, text in doc_params.items():
        rendered["actions"][action_name]["parameters"]["documentParameters"] = text
    return rendered


def unmet_requirements(template: Mapping[str, Any], values: Mapping[str, str]) -> List[str]:
    """The TEMPLATE_REQUIRES placeholders the template uses and `values` leaves empty: the
    template is not made without them (deploy.sh says so, the stack has a Condition)."""
    used = placeholders_in(template)
    return [key for key in TEMPLATE_REQUIRES if key in used and not values.get(key)]


def without_unset_sections(template: Mapping[str, Any], values: Mapping[str, str]) -> dict:
    """A copy of the template without each OPTIONAL_SECTIONS section whose placeholder has no
    value (the report's dataSources when there is no dashboard)."""
    result = copy.deepcopy(dict(template))
    for key, path in OPTIONAL_SECTIONS.items():
        if not values.get(key):
            _parent(result, path).pop(path[-1], None)
    return result


def to_cloudformation(template: Mapping[str, Any], cfn_values: Mapping[str, Any]) -> dict:
    """`AWS::FIS::ExperimentTemplate` properties; `cfn_values` maps each placeholder to a
    CloudFormation expression (a string, {"Ref": …}, {"Fn::GetAtt": …}, {"Fn::Sub": …}).

    Inside `documentParameters` the `Fn::Sub` fills the JSON text without escaping, which is
    safe because every value is an ARN, a name or a tag (no quote or backslash can occur in
    them); the test comparing both renderings would catch a value that broke that. A
    LIST_PLACEHOLDERS value's expression joins its items with `","`, so `["${X}"]` becomes one
    JSON list item per value, as `render_request` expands it."""
    compact = copy.deepcopy(dict(template))
    for action in compact.get("actions", {}).values():
        params = action.get("parameters", {})
        if "documentParameters" in params:
            params["documentParameters"] = json.dumps(json.loads(params["documentParameters"]),
                                                      separators=(",", ":"))
    properties = _to_pascal(compact, _input_shape())
    for path, name in _CFN_RENAMES.items():
        parent = _parent(properties, path)
        if path[-1] in parent:
            parent[name] = parent.pop(path[-1])
    return to_sub(properties, cfn_values)


def to_sub(value: Any, cfn_values: Mapping[str, Any]) -> Any:
    """Every string with placeholders becomes an `Fn::Sub` over `cfn_values` (no renaming)."""
    def sub(text: str) -> Any:
        used = sorted(set(PLACEHOLDER.findall(text)))
        if not used:
            return text
        missing = [key for key in used if key not in cfn_values]
        if missing:
            raise MissingValueError(f"no CloudFormation value for ${{{missing[0]}}}; add it to "
                                    f"the stack renderer's placeholder map")
        return {"Fn::Sub": [text, {key: cfn_values[key] for key in used}]}
    return _map_strings(value, sub)


def resolve_cloudformation(value: Any, values: Mapping[str, str]) -> Any:
    """Evaluate the `Fn::Sub`s that `to_cloudformation` wrote, given plain values for the
    variables: lets a test prove both renderings say the same thing."""
    if isinstance(value, dict):
        if set(value) == {"Fn::Sub"}:
            text, variables = value["Fn::Sub"]
            return PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), text)
        return {k: resolve_cloudformation(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_cloudformation(v, values) for v in value]
    return value


# --- helpers ---------------------------------------------------------------------------------

def _parent(value: Dict[str, Any], path: tuple) -> Dict[str, Any]:
    """The dict holding path[-1] ({} when a member on the way is absent)."""
    for member in path[:-1]:
        value = value.get(member, {})
    return value


def _expand_lists(value: Any, values: Mapping[str, str]) -> Any:
    """Each list item that is exactly `${X}` of a LIST_PLACEHOLDERS name, replaced by one item
    per comma-separated value of X (an absent value is left for `fill` to report)."""
    if isinstance(value, dict):
        return {key: _expand_lists(item, values) for key, item in value.items()}
    if not isinstance(value, list):
        return value
    items: List[Any] = []
    for item in value:
        match = PLACEHOLDER.fullmatch(item) if isinstance(item, str) else None
        if match and match.group(1) in LIST_PLACEHOLDERS and values.get(match.group(1)):
            items.extend(v.strip() for v in str(values[match.group(1)]).split(",") if v.strip())
        else:
            items.append(_expand_lists(item, values))
    return items


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _map_strings(value: Any, fn) -> Any:
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, dict):
        return {key: _map_strings(item, fn) for key, item in value.items()}
    if isinstance(value, list):
        return [_map_strings(item, fn) for item in value]
    return value


def _input_shape():
    model = botocore.session.get_session().get_service_model("fis")
    return model.operation_model("CreateExperimentTemplate").input_shape


def _to_pascal(value: Any, shape) -> Any:
    """API member names -> CloudFormation property names: structure members get an upper-case
    first letter; map keys (action names, parameter names, tags) are data and stay as they are."""
    if shape is None:
        return value
    if shape.type_name == "structure" and isinstance(value, dict):
        return {key[:1].upper() + key[1:]: _to_pascal(item, shape.members.get(key))
                for key, item in value.items()}
    if shape.type_name == "map" and isinstance(value, dict):
        return {key: _to_pascal(item, shape.value) for key, item in value.items()}
    if shape.type_name == "list" and isinstance(value, list):
        return [_to_pascal(item, shape.member) for item in value]
    return value
