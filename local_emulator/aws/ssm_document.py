"""SSM Automation documents as the local runner reads them: parsing, checks, parameters.

What StartAutomationExecution checks before any step runs lives here, so the runner
(ssm_runner.py) only runs steps:
- the document: schemaVersion 0.3, unique step names, supported actions, `nextStep` /
  `onFailure` / `onCancel` naming real steps, every `{{ reference }}` declared;
- the parameters: unknown names, required ones missing, types (`String`, `StringList`,
  `Integer`, `Boolean`, `StringMap`, `MapList`), `allowedValues`, `allowedPattern`. Values may
  be strings (as FIS `documentParameters` and the CLI send them), one-string lists (as the API
  sends them) or already typed.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Union

import yaml

from local_emulator.errors import DocumentError

__all__ = ["AutomationDocument", "load_document", "resolve_parameters", "jump_target",
           "SUPPORTED_ACTIONS", "REFERENCE", "GLOBALS"]

SUPPORTED_ACTIONS = ("aws:executeScript", "aws:sleep", "aws:loop", "aws:executeAwsApi",
                     "aws:executeAutomation")
REFERENCE = re.compile(r"\{\{\s*([A-Za-z0-9_:.\-]+)\s*\}\}")
GLOBALS = ("global:REGION", "global:ACCOUNT_ID", "global:DATE_TIME", "global:AWS_PARTITION",
            "automation:EXECUTION_ID", "automation:AUTOMATION_EXECUTION_ID")


@dataclass
class AutomationDocument:
    """A parsed document: its name (for messages), parameters, steps and document outputs."""

    name: str
    parameters: Dict[str, Dict[str, Any]]
    steps: List[Dict[str, Any]]
    outputs: List[str]
    files: Dict[str, Any] = field(default_factory=dict)

    def all_steps(self) -> List[Dict[str, Any]]:
        """The main steps and the steps inside their loops."""
        found = []
        for step in self.steps:
            found.append(step)
            if step.get("action") == "aws:loop":
                found.extend((step.get("inputs") or {}).get("Steps") or [])
        return found

    def digest(self, attachment: str) -> str:
        return str(((self.files.get(attachment) or {}).get("checksums") or {}).get("sha256") or "")

    def step(self, name: str) -> Dict[str, Any]:
        for step in self.steps:
            if step["name"] == name:
                return step
        raise DocumentError(f"document {self.name}: no step named {name!r}")


def load_document(source: Union[str, Path, Mapping[str, Any]], name: str = "") -> AutomationDocument:
    """Parse and check a document (a path, YAML/JSON text, or a dict); raises DocumentError."""
    if isinstance(source, Mapping):
        content, label = dict(source), name or "<document>"
    else:
        text, label = str(source), name or "<document>"
        if "\n" not in text and Path(text).is_file():
            label = name or Path(text).name
            text = Path(text).read_text(encoding="utf-8")
        try:
            content = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise DocumentError(f"document {label} is not valid YAML/JSON: {exc}") from exc
    if not isinstance(content, dict) or str(content.get("schemaVersion")) != "0.3":
        raise DocumentError(f"document {label}: an Automation document needs schemaVersion '0.3' "
                            f"(got {content.get('schemaVersion') if isinstance(content, dict) else content!r})")
    document = AutomationDocument(label, dict(content.get("parameters") or {}),
                                  list(content.get("mainSteps") or []),
                                  list(content.get("outputs") or []),
                                  dict(content.get("files") or {}))
    _check_document(document)
    return document


def _check_document(document: AutomationDocument) -> None:
    if not document.steps:
        raise DocumentError(f"document {document.name} has no mainSteps")
    every = document.all_steps()
    names = [step.get("name") for step in every]
    if len(set(names)) != len(names) or not all(names):
        raise DocumentError(f"document {document.name}: every step needs a unique name (got {names})")
    outputs = {f"{s['name']}.{o['Name']}" for s in every for o in s.get("outputs") or []}
    outputs |= {f"{s['name']}.{v}" for s in document.steps if s.get("action") == "aws:loop"
                for v in ("CurrentIteratorValue", "CurrentIteration")}
    outputs |= {f"{s['name']}.{v}" for s in every if s.get("action") == "aws:executeAutomation"
                for v in ("ExecutionId", "Status", "Output")}  # the action's own outputs
    for step in every:
        where = f"document {document.name}, step {step['name']}"
        if step.get("action") not in SUPPORTED_ACTIONS:
            raise DocumentError(f"{where}: action {step.get('action')!r} is not supported locally; "
                                f"the local runner knows {', '.join(SUPPORTED_ACTIONS)}")
        for key in ("onFailure", "onCancel"):
            jump_target(document, step, key)
        _check_action(document, where, step)
        if step.get("nextStep") and step["nextStep"] not in names:
            raise DocumentError(f"{where}: nextStep {step['nextStep']!r} names no step")
        for reference in REFERENCE.findall(json.dumps(step.get("inputs") or {})):
            if reference not in document.parameters and reference not in outputs \
                    and reference not in GLOBALS:
                raise DocumentError(f"{where}: {{{{ {reference} }}}} is neither a parameter, "
                                    "a step output nor a known automation variable; declare it")
    for output in document.outputs:
        if output not in outputs:
            raise DocumentError(f"document {document.name}: output {output!r} is not a step's "
                                "declared output (write StepName.OutputName)")


def _check_action(document: AutomationDocument, where: str, step: Mapping[str, Any]) -> None:
    """What the action pages say a step of that action must (not) have."""
    inputs = step.get("inputs") or {}
    if step["action"] == "aws:loop":
        if "onCancel" in step:  # "The onCancel property isn't supported for the aws:loop action."
            raise DocumentError(f"{where}: an aws:loop step cannot have onCancel; put it on the "
                                "steps inside the loop")
        if not inputs.get("Steps"):
            raise DocumentError(f"{where}: aws:loop needs inputs.Steps")
    if step["action"] == "aws:executeScript" and inputs.get("Attachment") and \
            not document.digest(str(inputs["Attachment"])):
        raise DocumentError(f"{where}: Attachment {inputs['Attachment']!r} is not in the "
                            "document's files: section; add files: {name: {checksums: {sha256: "
                            "...}}} (python ssm_documents/render.py writes it)")
    target = str(step.get("onCancel") or "")
    if target.startswith("step:") and document.step(target[5:]).get("action") == "aws:sleep":
        raise DocumentError(f"{where}: onCancel cannot go to an aws:sleep step ({target})")


def jump_target(document: AutomationDocument, step: Mapping[str, Any], key: str) -> Optional[str]:
    """The step a `step:Name` value of onFailure/onCancel jumps to; None for Abort/Continue."""
    value = str(step.get(key) or "Abort")
    if value in ("Abort", "Continue") and not (key == "onCancel" and value == "Continue"):
        return None
    if not value.startswith("step:"):
        raise DocumentError(f"document {document.name}, step {step['name']}: {key} {value!r} must be "
                            "Abort, step:StepName" + (", or Continue" if key == "onFailure" else ""))
    target = value[len("step:"):]
    document.step(target)
    return target


def resolve_parameters(document: AutomationDocument, given: Mapping[str, Any]) -> Dict[str, Any]:
    """Typed parameter values as StartAutomationExecution would accept them; raises DocumentError.

    Values may be strings (as FIS `documentParameters` and the CLI send them), lists of one
    string (as the API sends them) or already typed.
    """
    unknown = sorted(set(given) - set(document.parameters))
    if unknown:
        raise DocumentError(f"document {document.name} declares no parameter {', '.join(unknown)}; "
                            f"it takes {', '.join(sorted(document.parameters))}")
    values: Dict[str, Any] = {}
    for name, spec in document.parameters.items():
        spec = spec or {}
        if name in given:
            raw = given[name]
        elif "default" in spec:
            raw = spec["default"]
        else:
            raise DocumentError(f"document {document.name}: parameter {name} is required and has no "
                                "default; pass it")
        values[name] = _typed(document.name, name, spec, raw)
    return values


def _typed(document: str, name: str, spec: Mapping[str, Any], raw: Any) -> Any:
    kind = spec.get("type", "String")
    where = f"document {document}: parameter {name}={raw!r}"
    if isinstance(raw, list) and kind not in ("StringList", "MapList"):
        if len(raw) != 1:
            raise DocumentError(f"{where} must be a single value of type {kind}")
        raw = raw[0]
    if kind == "Integer":
        try:
            value: Any = int(raw)
        except (TypeError, ValueError):
            raise DocumentError(f"{where} is not an Integer; pass a whole number") from None
    elif kind == "Boolean":
        text = str(raw).strip().lower()
        if text not in ("true", "false"):
            raise DocumentError(f"{where} is not a Boolean; pass true or false")
        value = text == "true"
    elif kind == "StringList":
        value = [str(item) for item in raw] if isinstance(raw, list) else [str(raw)]
    elif kind in ("StringMap", "MapList"):
        try:
            value = json.loads(raw) if isinstance(raw, str) else raw
        except json.JSONDecodeError:
            raise DocumentError(f"{where} is not valid JSON for a {kind}") from None
    else:
        value = "" if raw is None else str(raw)
    for item in value if isinstance(value, list) else [value]:
        _check_allowed(where, spec, item)
    return value


def _check_allowed(where: str, spec: Mapping[str, Any], value: Any) -> None:
    allowed = spec.get("allowedValues")
    if allowed is not None and str(value) not in [str(a) for a in allowed]:
        raise DocumentError(f"{where} is not one of the allowed values {allowed}")
    pattern = spec.get("allowedPattern")
    if pattern and isinstance(value, str) and re.search(pattern, value) is None:
        raise DocumentError(f"{where} does not match the allowedPattern {pattern!r}")
