"""The two SSM documents the templates start, and the parameters each one declares.

The FIS templates may only pass parameters a document declares (SSM refuses the execution
otherwise, and only when the experiment runs). The documents are read from `ssm_documents/`;
until they exist in a checkout, the agreed public parameter list stands in for them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, FrozenSet, Optional

import yaml

from .errors import DocumentMissingError

__all__ = ["REPO_ROOT", "DOCUMENTS", "AGREED_PARAMETERS", "document_path", "load_document",
           "declared_parameters", "parameter_specs"]

REPO_ROOT = Path(__file__).resolve().parent.parent

# Placeholder naming the document's ARN in the templates -> file in ssm_documents/.
DOCUMENTS: Dict[str, str] = {
    "FaultDocument": "lambda-fault.yaml",
    "ExperimentDocument": "lambda-fault-experiment.yaml",
}

# The public interface agreed between the parts (issue 4); the experiment document has no ChaosMode.
_COMMON = frozenset({
    "FunctionName", "LayerArn", "AutomationAssumeRole", "AliasName", "TargetTagKey",
    "TargetTagValue", "TargetSelection", "FaultType", "LatencyMilliseconds",
    "LatencyJitterMilliseconds", "InvocationPercentage", "PreventExecution", "ErrorType",
    "ErrorMessage", "ResponseStatusCode", "ResponseBody", "Duration", "MaxTargets", "DryRun",
})
AGREED_PARAMETERS: Dict[str, FrozenSet[str]] = {
    "FaultDocument": _COMMON | {"ChaosMode"},
    "ExperimentDocument": _COMMON,
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
