"""Build the SSM Automation documents and their one attachment from `automation_handler.py`.

    python ssm_documents/render.py          # rewrite the documents and attachments/
    python ssm_documents/render.py --check  # exit 1 if any is stale (CI and the tests do this)

Why a build step: SSM runs the attachment as it is, so the script cannot import the layer's
variable names. The render step inlines them: it replaces the marked `chaos_layer.config`
import block of `automation_handler.py` with the values `layer/chaos_layer/config.py` read
from `layer/settings.json`, so the names and the accepted runtimes are still defined once.
Nothing else changes: the attachment is the handler as written, docstrings and comments kept,
so a reviewer reads in it what the repository holds, and each document pins it by SHA-256 in
its `files:` section. No document carries code of its own: every script step runs
`Attachment: automation_handler.py` with the handler function it needs, named
`automation_handler.plan` or `automation_handler.apply` ("To invoke a file for Python, use the
filename.method_name format in Handler", aws:executeScript).

The documents (see ssm_documents/README.md for why each step is where it is):
- lambda-fault.yaml: Plan -> Apply (one step per batch) -> on failure or cancel, RollBack;
- lambda-fault-experiment.yaml: Plan -> Attach -> Wait -> PlanDetach -> Detach, and a cancel
  hands the detach to a new execution of the fault document (the cancel path may run 2 min);
- lambda-fault-organization.yaml: the experiment in many accounts and regions at once, through
  `aws:executeAutomation` of the fault document with `TargetLocations`.
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import inspect
import os
import sys
from typing import Any, Dict, List, Optional

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [p for p in (ROOT, os.path.join(ROOT, "layer")) if p not in sys.path]

import automation_handler as ah  # noqa: E402
from chaos_layer import config  # noqa: E402

HANDLER_PATH = os.path.join(ROOT, "automation_handler.py")
ATTACHMENT = "automation_handler.py"
ATTACHMENT_DIR = os.path.join(HERE, "attachments")
DOCUMENTS = {"lambda-fault.yaml": "fault", "lambda-fault-experiment.yaml": "experiment",
             "lambda-fault-organization.yaml": "organization"}
BEGIN, END = "# --- BEGIN chaos_layer.config", "# --- END chaos_layer.config"
MAX_DOCUMENT_BYTES = 64 * 1024
RUNTIME = "python3.11"
STEP_TIMEOUT_S = 600  # the most aws:executeScript allows
DEFAULT_FAULT_DOCUMENT = "LambdaFault"  # the stack replaces it with its fault document's name
DEFAULT_EXECUTION_ROLE = "LambdaChaosAutomationExecution"
# Passed from step to step, never by a user: the parameters a script step does not take.
_NOT_IN_PAYLOAD = ("AutomationAssumeRole",)


def config_names(source: str) -> List[str]:
    """The names the handler imports from chaos_layer.config (its marked import block)."""
    block = source[source.index(BEGIN):source.index(END)]
    return [alias.name for node in ast.walk(ast.parse(block))
            if isinstance(node, ast.ImportFrom) for alias in node.names]


def config_block(source: str) -> str:
    """Python source defining every name the handler imports from chaos_layer.config, with
    the values chaos_layer.config read from layer/settings.json."""
    lines = ["# --- chaos_layer.config, inlined by ssm_documents/render.py from layer/settings.json",
             "import datetime as _dt"]
    for name in config_names(source):
        value = getattr(config, name)
        if callable(value):
            lines.append(inspect.getsource(value).rstrip())
        else:
            lines.append(f"{name} = {value!r}")
    return "\n".join(lines) + "\n"


def script() -> str:
    """The attachment: automation_handler.py with only its config import block inlined."""
    with open(HANDLER_PATH, encoding="utf-8") as handle:
        source = handle.read()
    start, end = source.index(BEGIN), source.index(END)
    end = source.index("\n", end) + 1
    header = ("# Rendered from automation_handler.py by ssm_documents/render.py: the file as "
              "written, with the\n# layer's configuration inlined. Edit that file and re-render.\n")
    return header + source[:start] + config_block(source) + source[end:]


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def parameters(kind: str) -> Dict[str, Any]:
    """Each document's parameters, from the handler's one list (plus the document's own)."""
    leave_out = {"fault": (), "experiment": ("ChaosMode", "OnlyThisExperiment"),
                 "organization": ("ChaosMode", "OnlyThisExperiment")}[kind]
    result: Dict[str, Any] = {}
    for p in ah.PARAMETERS:
        if p.name in leave_out:
            continue
        spec: Dict[str, Any] = {"type": p.type, "description": p.description}
        if kind != "fault" and p.name == "Duration":
            spec["description"] = ("How long the fault lasts (ISO-8601, e.g. PT10M): attach, "
                                   "sleep this long, detach. Also the layer's expiry time.")
            spec["allowedPattern"] = f"^{ah._ISO_DURATION}$"
        else:
            spec["default"] = p.default
            if p.allowed_pattern:
                spec["allowedPattern"] = p.allowed_pattern
        if p.allowed_values:
            spec["allowedValues"] = list(p.allowed_values)
        result[p.name] = spec
    if kind == "organization":
        result["LayerArn"]["description"] = (
            "Name of the chaos layer the target stack publishes in every account and region "
            "(e.g. lambda-chaos-layer): each location uses its newest version there.")
        result.update(_organization_parameters())
    if kind != "fault":
        result["FaultDocumentName"] = {
            "type": "String", "default": DEFAULT_FAULT_DOCUMENT,
            "description": ("The fault document (lambda-fault.yaml) this one runs: its name, or "
                            "its ARN where it is shared from another account. The stack sets it."),
            "allowedPattern": r"^[a-zA-Z0-9_.:/-]{3,128}$"}
    return result


def _organization_parameters() -> Dict[str, Any]:
    return {
        "TargetAccounts": {"type": "StringList", "description": (
            "Accounts (12 digits) or organizational units (ou-...) to run in.")},
        "TargetRegions": {"type": "StringList", "description": "Regions to run in, e.g. us-east-1."},
        "ExecutionRoleName": {"type": "String", "default": DEFAULT_EXECUTION_ROLE,
                              "description": "Role SSM assumes in each target account (the "
                                             "target stack's ExecutionRoleName).",
                              "allowedPattern": r"^[\w+=,.@-]{1,64}$"},
        "TargetLocationMaxConcurrency": {"type": "String", "default": "100%", "description": (
            "How many account-region locations run at once: a number or a percentage."),
            "allowedPattern": r"^([1-9][0-9]*|[1-9][0-9]?%|100%)$"},
        "TargetLocationMaxErrors": {"type": "String", "default": "0", "description": (
            "0 (all or nothing): one location failing rolls back every location. A higher "
            "number or percentage: that many locations may fail (each rolls itself back) while "
            "the others keep the fault."),
            "allowedPattern": r"^([0-9]+|[1-9][0-9]?%|100%)$"},
    }


def _payload(kind: str, **fixed: str) -> Dict[str, Any]:
    """Every parameter the handler takes, by reference, then the step's fixed values."""
    leave_out = set(_NOT_IN_PAYLOAD) | ({"ChaosMode", "OnlyThisExperiment"}
                                        if kind != "fault" else set())
    payload = {p.name: "{{ %s }}" % p.name for p in ah.PARAMETERS if p.name not in leave_out}
    payload.update(fixed)
    return payload


_PLAN_OUTPUTS = [("Summary", "String"), ("TargetCount", "Integer"), ("ExperimentId", "String"),
                 ("Digest", "String"), ("ExpiresAt", "String"), ("LayerArn", "String"),
                 ("Batches", "StringList"), ("CleanUpOnlyThisExperiment", "Boolean")]
_BATCH_OUTPUTS = [("Summary", "String"), ("TargetCount", "Integer"), ("Targets", "MapList")]


def _script_step(name: str, handler: str, payload: Dict[str, Any], outputs: List[tuple],
                 **flow: Any) -> Dict[str, Any]:
    step = {"name": name, "action": "aws:executeScript", "timeoutSeconds": STEP_TIMEOUT_S,
            "inputs": {"Runtime": RUNTIME, "Handler": f"{ATTACHMENT[:-3]}.{handler}",
                       "Attachment": ATTACHMENT,
                       "InputPayload": payload},
            "outputs": [{"Name": n, "Selector": f"$.Payload.{n}", "Type": t} for n, t in outputs]}
    step.update(flow)
    return step


def _loop(name: str, over: str, inner: Dict[str, Any], **flow: Any) -> Dict[str, Any]:
    step = {"name": name, "action": "aws:loop",
            "inputs": {"Iterators": "{{ %s.Batches }}" % over, "IteratorDataType": "String",
                       "Steps": [inner]}}
    step.update(flow)
    return step


def _batch_payload(kind: str, loop: str, plan: str, **fixed: str) -> Dict[str, Any]:
    return _payload(kind, **fixed, LayerArn="{{ %s.LayerArn }}" % plan,
                    **{ah.BATCH: "{{ %s.CurrentIteratorValue }}" % loop,
                       ah.DIGEST: "{{ %s.Digest }}" % plan,
                       ah.EXPIRES: "{{ %s.ExpiresAt }}" % plan})


def _plan_then_loop(kind: str, plan: str, loop: str, inner: str, *, plan_fixed: Dict[str, str],
                    batch_fixed: Dict[str, str], plan_flow: Dict[str, Any],
                    inner_flow: Dict[str, Any], loop_flow: Dict[str, Any]) -> List[Dict[str, Any]]:
    """A Plan step and the loop that runs its batches, one `aws:executeScript` each."""
    return [
        _script_step(plan, "plan", _payload(kind, **plan_fixed), _PLAN_OUTPUTS,
                     nextStep=loop, **plan_flow),
        _loop(loop, plan, _script_step(inner, "apply", _batch_payload(kind, loop, plan,
                                                                      **batch_fixed),
                                       _BATCH_OUTPUTS, **inner_flow), **loop_flow),
    ]


def _fault_steps() -> List[Dict[str, Any]]:
    clean_up = {"ChaosMode": "DISABLED",
                "OnlyThisExperiment": "{{ Plan.CleanUpOnlyThisExperiment }}",
                "LayerArn": "{{ Plan.LayerArn }}"}
    return (
        _plan_then_loop("fault", "Plan", "Apply", "ApplyBatch", plan_fixed={}, batch_fixed={},
                        plan_flow={}, inner_flow={"onFailure": "step:RollBackPlan",
                                                  "onCancel": "step:RollBackPlan"},
                        loop_flow={"isEnd": True}) +
        _plan_then_loop("fault", "RollBackPlan", "RollBack", "RollBackBatch",
                        plan_fixed=clean_up,
                        batch_fixed={"ChaosMode": "DISABLED", "OnlyThisExperiment":
                                     "{{ Plan.CleanUpOnlyThisExperiment }}"},
                        plan_flow={}, inner_flow={"onFailure": "Continue"},
                        loop_flow={"isEnd": True}))


def _start_fault_document(name: str, locations: Optional[List[Dict[str, Any]]]
                          ) -> Dict[str, Any]:
    """The cancel path's hand-off: a NEW execution of the fault document that detaches
    everything this experiment attached. The cancel path may run two minutes; the new
    execution is not part of it, so it runs its batches to the end."""
    parameters = {key: [value] for key, value in _payload("experiment").items()}
    parameters.update(ChaosMode=["DISABLED"], OnlyThisExperiment=["true"],
                      AutomationAssumeRole=["{{ AutomationAssumeRole }}"])
    inputs: Dict[str, Any] = {"Service": "ssm", "Api": "StartAutomationExecution",
                              "DocumentName": "{{ FaultDocumentName }}", "Parameters": parameters}
    if locations is not None:
        inputs["TargetLocations"] = locations
        del parameters["AutomationAssumeRole"]  # each location runs as its execution role
    return {"name": name, "action": "aws:executeAwsApi", "inputs": inputs,
            "outputs": [{"Name": "ExecutionId", "Selector": "$.AutomationExecutionId",
                         "Type": "String"}], "isEnd": True}


def _experiment_steps() -> List[Dict[str, Any]]:
    hand_off = "step:HandOffDetach"
    steps = _plan_then_loop(
        "experiment", "Plan", "Attach", "AttachBatch", plan_fixed={"ChaosMode": "ENABLED"},
        batch_fixed={"ChaosMode": "ENABLED"}, plan_flow={"onCancel": hand_off},
        inner_flow={"onFailure": "step:PlanDetach", "onCancel": hand_off},
        loop_flow={"nextStep": "Wait"})
    steps.append({"name": "Wait", "action": "aws:sleep", "inputs": {"Duration": "{{ Duration }}"},
                  "onFailure": "step:PlanDetach", "onCancel": hand_off, "nextStep": "PlanDetach"})
    steps += _plan_then_loop(
        "experiment", "PlanDetach", "Detach", "DetachBatch",
        plan_fixed={"ChaosMode": "DISABLED", "OnlyThisExperiment": "true",
                    "LayerArn": "{{ Plan.LayerArn }}"},
        batch_fixed={"ChaosMode": "DISABLED", "OnlyThisExperiment": "true"},
        plan_flow={"onFailure": hand_off, "onCancel": hand_off},
        inner_flow={"onFailure": "Continue", "onCancel": hand_off}, loop_flow={"isEnd": True})
    steps.append(_start_fault_document("HandOffDetach", None))
    return steps


def _locations(max_errors: str) -> List[Dict[str, Any]]:
    return [{"Accounts": "{{ TargetAccounts }}", "Regions": "{{ TargetRegions }}",
             "ExecutionRoleName": "{{ ExecutionRoleName }}",
             "TargetLocationMaxConcurrency": "{{ TargetLocationMaxConcurrency }}",
             "TargetLocationMaxErrors": max_errors}]


def _everywhere(name: str, mode: str, max_errors: str, **flow: Any) -> Dict[str, Any]:
    runtime = {key: [value] for key, value in _payload("organization").items()}
    runtime["ChaosMode"] = [mode]
    if mode == "DISABLED":
        runtime["OnlyThisExperiment"] = ["true"]
    step = {"name": name, "action": "aws:executeAutomation",
            "inputs": {"DocumentName": "{{ FaultDocumentName }}", "RuntimeParameters": runtime,
                       "TargetLocations": _locations(max_errors)}}
    step.update(flow)
    return step


def _organization_steps() -> List[Dict[str, Any]]:
    hand_off = "step:HandOffDetachEverywhere"
    return [
        _everywhere("AttachEverywhere", "ENABLED", "{{ TargetLocationMaxErrors }}",
                    onFailure="step:DetachEverywhere", onCancel=hand_off, nextStep="Wait"),
        {"name": "Wait", "action": "aws:sleep", "inputs": {"Duration": "{{ Duration }}"},
         "onFailure": "step:DetachEverywhere", "onCancel": hand_off,
         "nextStep": "DetachEverywhere"},
        _everywhere("DetachEverywhere", "DISABLED", "100%", onCancel=hand_off, isEnd=True),
        dict(_start_fault_document("HandOffDetachEverywhere", _locations("100%"))),
    ]


_DESCRIPTIONS = {
    "fault": ("Attach (ChaosMode=ENABLED) or detach (DISABLED) the lambda-chaos fault layer on "
              "Lambda functions, by name or tag, exactly reversibly, in batches that each fit "
              "one step. The script is the attachment automation_handler.py (readable; pinned "
              "by SHA-256 below). See ssm_documents/README.md."),
    "experiment": ("One whole lambda-chaos experiment: attach the fault layer, wait Duration, "
                   "detach. A failed step still runs the detach; a cancel hands the detach to "
                   "a new execution of the fault document, so a stopped FIS experiment leaves "
                   "every function as it was."),
    "organization": ("A lambda-chaos experiment in many accounts and regions at once: the fault "
                     "document runs in every location (TargetLocations), then waits Duration, "
                     "then detaches everywhere. With TargetLocationMaxErrors 0, one location "
                     "failing detaches every location."),
}


def document(kind: str) -> Dict[str, Any]:
    steps = {"fault": _fault_steps, "experiment": _experiment_steps,
             "organization": _organization_steps}[kind]()
    doc: Dict[str, Any] = {
        "schemaVersion": "0.3", "description": _DESCRIPTIONS[kind],
        "assumeRole": "{{ AutomationAssumeRole }}", "parameters": parameters(kind)}
    if kind != "organization":
        doc["files"] = {ATTACHMENT: {"checksums": {"sha256": sha256(script())}}}
    doc["mainSteps"] = steps
    doc["outputs"] = {"fault": ["Plan.Summary", "Plan.ExperimentId"],
                      "experiment": ["Plan.Summary", "PlanDetach.Summary"],
                      "organization": ["AttachEverywhere.Status",
                                       "DetachEverywhere.Status"]}[kind]
    return doc


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render(kind: str) -> str:
    return yaml.dump(document(kind), Dumper=_Dumper, sort_keys=False, width=100,
                     allow_unicode=True)


def rendered() -> Dict[str, str]:
    """Every file this module writes, by path relative to ssm_documents/."""
    files = {os.path.join("attachments", ATTACHMENT): script()}
    files.update({name: render(kind) for name, kind in DOCUMENTS.items()})
    return files


def main(argv: List[str] = None) -> int:
    parser = argparse.ArgumentParser(description="Render the SSM documents and attachment.")
    parser.add_argument("--check", action="store_true", help="fail if a file is stale")
    args = parser.parse_args(argv)
    stale = []
    for name, text in rendered().items():
        path = os.path.join(HERE, name)
        if name.endswith(".yaml") and len(text.encode("utf-8")) > MAX_DOCUMENT_BYTES:
            print(f"{name}: {len(text.encode())} bytes, over SSM's 64 KB", file=sys.stderr)
            return 1
        current = open(path, encoding="utf-8").read() if os.path.exists(path) else None
        if current != text:
            stale.append(name)
            if not args.check:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w", encoding="utf-8") as handle:
                    handle.write(text)
    if args.check and stale:
        print(f"stale: {', '.join(stale)}; run python ssm_documents/render.py", file=sys.stderr)
        return 1
    print(("wrote " if stale else "up to date: ") + ", ".join(stale or rendered()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
