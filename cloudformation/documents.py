"""The SSM documents the stack deploys, the parameters each one declares, their names and
their attachment.

The FIS templates may only pass parameters a document declares (SSM refuses the execution
otherwise, and only when the experiment runs). The documents are read from `ssm_documents/`;
until they exist in a checkout, the agreed public parameter list stands in for them.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Dict, FrozenSet, Optional, Tuple

import yaml

from .errors import DocumentMissingError

__all__ = ["REPO_ROOT", "DOCUMENTS", "AGREED_PARAMETERS", "document_path", "load_document",
           "declared_parameters", "parameter_specs", "ATTACHMENT", "NAME_SUFFIXES",
           "present_documents", "attachment_sha256", "attachment_path", "attachment_key",
           "document_name", "with_fault_document"]

REPO_ROOT = Path(__file__).resolve().parent.parent

# Placeholder naming the document's ARN in the templates -> file in ssm_documents/.
DOCUMENTS: Dict[str, str] = {
    "FaultDocument": "lambda-fault.yaml",
    "ExperimentDocument": "lambda-fault-experiment.yaml",
    "OrganizationDocument": "lambda-fault-organization.yaml",
}
# Each document's name is <stack>-<suffix>-<the attachment's short hash>: CloudFormation
# replaces a document whose Attachments change, and a named resource can only be replaced
# under a new name.
NAME_SUFFIXES: Dict[str, str] = {
    "FaultDocument": "LambdaFault",
    "ExperimentDocument": "LambdaFaultExperiment",
    "OrganizationDocument": "LambdaFaultOrganization",
}
ATTACHMENT = "automation_handler.py"  # the one file every script step runs
SHORT_HASH = 8

# The public interface agreed between the parts (issue 4); the experiment document has no ChaosMode.
_COMMON = frozenset({
    "FunctionName", "LayerArn", "AutomationAssumeRole", "AliasName", "TargetTagKey",
    "TargetTagValue", "TargetSelection", "FaultType", "LatencyMilliseconds",
    "LatencyJitterMilliseconds", "InvocationPercentage", "PreventExecution", "ErrorType",
    "ErrorMessage", "ResponseStatusCode", "ResponseBody", "Duration", "MaxTargets", "DryRun",
})
AGREED_PARAMETERS: Dict[str, FrozenSet[str]] = {
    "FaultDocument": _COMMON | {"ChaosMode"},
    "ExperimentDocument": _COMMON | {"FaultDocumentName"},
    "OrganizationDocument": _COMMON | {"FaultDocumentName", "TargetAccounts", "TargetRegions",
                                       "ExecutionRoleName", "TargetLocationMaxConcurrency",
                                       "TargetLocationMaxErrors"},
}


def document_path(key: str, root: Optional[Path] = None) -> Path:
    """Where the document for `key` ('FaultDocument' or 'ExperimentDocument') lives."""
    return (root or REPO_ROOT) / "ssm_documents" / DOCUMENTS[key]


def load_document(key: str, root: Optional[Path] = None) -> dict:
    """The parsed YAML document; DocumentMissingError if it is not there (yet)."""
    path = document_path(key, root)
    if not path.is_file():
        raise DocumentMissingError(
            f"{path} does not exist; the SSM automation part builds it "
            f"(see issue 4) — pull the latest main or build it first")
    with path.open(encoding="utf-8") as handle:
        content = yaml.safe_load(handle)
    if not isinstance(content, dict) or "parameters" not in content:
        raise DocumentMissingError(f"{path} is not an SSM Automation document (no 'parameters')")
    return content


def declared_parameters(key: str, root: Optional[Path] = None,
                        fallback: bool = True) -> FrozenSet[str]:
    """Parameter names the document declares; the agreed list if the file is absent and
    `fallback` is true."""
    try:
        return frozenset(load_document(key, root)["parameters"])
    except DocumentMissingError:
        if not fallback:
            raise
        return AGREED_PARAMETERS[key]


def parameter_specs(key: str, root: Optional[Path] = None) -> Dict[str, dict]:
    """Each declared parameter's spec (type, default, allowedValues, allowedPattern), read from
    the document itself: the FIS templates' values are checked against them."""
    return dict(load_document(key, root)["parameters"])


def present_documents(root: Optional[Path] = None) -> Tuple[str, ...]:
    """The DOCUMENTS keys whose file exists (the organisation document may not yet)."""
    return tuple(key for key in DOCUMENTS if document_path(key, root).is_file())


def attachment_path(root: Optional[Path] = None) -> Path:
    """Where the attachment the documents run lives."""
    return (root or REPO_ROOT) / "ssm_documents" / "attachments" / ATTACHMENT


def attachment_sha256(root: Optional[Path] = None) -> str:
    """The attachment's SHA-256 as the fault document pins it (`files:`); DocumentMissingError
    if a document pins another hash or the file on disk differs (render the documents again)."""
    pinned = set()
    for key in present_documents(root):
        files = load_document(key, root).get("files") or {}
        if ATTACHMENT in files:
            pinned.add(files[ATTACHMENT]["checksums"]["sha256"])
    path = attachment_path(root)
    actual = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
    if len(pinned) != 1 or actual not in pinned:
        raise DocumentMissingError(
            f"the documents pin {sorted(pinned) or 'no'} SHA-256 for {ATTACHMENT}, {path} has "
            f"{actual or 'no file'}; run `python -m ssm_documents.render` and deploy again")
    return pinned.pop()


def attachment_key(stack_name: str, sha256: str) -> str:
    """The attachment's S3 key in the deploy bucket: its hash in the path, so a changed file
    never overwrites the one a deployed document was created from."""
    return f"{stack_name}/attachments/{sha256}/{ATTACHMENT}"


def document_name(key: str, stack_name: str, sha256: str) -> str:
    """'<stack>-LambdaFault-<8 hex>' (at most 128 characters: the stack name is at most 101)."""
    return f"{stack_name}-{NAME_SUFFIXES[key]}-{sha256[:SHORT_HASH]}"


def with_fault_document(key: str, content: dict, fault_name: Any, fault_arn: Any) -> dict:
    """`content` with its FaultDocumentName default set to the deployed fault document: its
    name for the experiment (same account), its ARN for the organisation document (the
    children run it, shared, in other accounts)."""
    default = {"ExperimentDocument": fault_name, "OrganizationDocument": fault_arn}.get(key)
    parameter = content["parameters"].get("FaultDocumentName")
    if default is not None and parameter is not None:
        parameter["default"] = default
    return content
