"""Offline checks that a rendered FIS template is one CreateExperimentTemplate would accept.

moto's FIS accepts anything, so it proves nothing here. botocore's own `fis` model is the
reference: its ParamValidator checks types, required members and minimum lengths; this module
adds what the validator skips (maximum lengths, patterns, enums from the shape metadata) and what
FIS only checks when the experiment runs (action ids, their parameter names, ISO-8601 durations,
`startAfter` references, the parameters the SSM document declares). `house_rules` adds the
toolkit's own safety rules (a stop alarm, a log, an expiry on every attach).
"""
from __future__ import annotations

import datetime as _dt
import json
import re
import uuid
from functools import lru_cache
from typing import Any, Dict, FrozenSet, List, Mapping

import botocore.session
import regex  # Java-style \p{L} classes in the model's patterns; a cfn-lint dependency
from botocore.validate import ParamValidator

from .fis import document_parameters

__all__ = ["ACTIONS", "validate_request", "house_rules", "parse_duration"]

# The FIS actions these templates use: parameter names, which are required, which are
# durations (FIS actions reference: aws:ssm:start-automation-execution, aws:fis:wait).
ACTIONS: Dict[str, Dict[str, FrozenSet[str]]] = {
    "aws:ssm:start-automation-execution": {
        "required": frozenset({"documentArn", "maxDuration"}),
        "optional": frozenset({"documentVersion", "documentParameters"}),
        "durations": frozenset({"maxDuration"}),
    },
    "aws:fis:wait": {
        "required": frozenset({"duration"}),
        "optional": frozenset(),
        "durations": frozenset({"duration"}),
    },
}
MIN_DURATION = _dt.timedelta(minutes=1)   # both actions: "from one minute to 12 hours"
MAX_DURATION = _dt.timedelta(hours=12)
_DURATION = re.compile(r"^P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?)?$")


def parse_duration(text: str) -> _dt.timedelta:
    """ISO-8601 duration as FIS and SSM take it (PnDTnHnMnS); ValueError if it is not one."""
    match = _DURATION.match(text or "")
    if not match or text in ("P", "PT") or text.endswith("T"):
        raise ValueError(f"{text!r} is not an ISO-8601 duration such as PT10M")
    parts = {k: int(v or 0) for k, v in match.groupdict().items()}
    return _dt.timedelta(days=parts["d"], hours=parts["h"], minutes=parts["m"], seconds=parts["s"])


def validate_request(request: Mapping[str, Any], documents: Mapping[str, Any]) -> List[str]:
    """Every problem with a rendered request, as one line each ([] means valid).

    `documents` maps each SSM document ARN the template may start to what that document
    declares: its parameter specs (names, types, allowed values and patterns are then all
    checked) or just the set of names.
    """
    shape = _input_shape()
    params = dict(request)
    # clientToken is an idempotency token: botocore and the CLI fill it in, so do the same.
    params.setdefault("clientToken", str(uuid.uuid4()))
    problems: List[str] = []
    report = ParamValidator().validate(params, shape)
    if report.has_errors():
        problems.extend(line.strip() for line in report.generate_report().splitlines()
                        if line.strip())
    problems.extend(_walk(params, shape, "request"))
    problems.extend(_check_actions(request.get("actions", {}), documents))
    return problems


def house_rules(request: Mapping[str, Any], expiry_documents: FrozenSet[str],
                experiment_documents: FrozenSet[str]) -> List[str]:
    """The toolkit's safety rules for a rendered template ([] means it follows them).

    * a CloudWatch alarm stop condition, an experiment log and tags;
    * every attach sets `Duration`, so the fault expires even if the detach never runs;
    * an attach's expiry covers the waits after it (the fault must not lapse mid-experiment)
      but not by more than 10 minutes (a stranded fault must die soon);
    * a one-execution experiment's `maxDuration` leaves at least 5 minutes beyond its
      `Duration` for attach and detach, so FIS never cuts the detach short;
    * an experiment report goes to S3, with pre- and post-experiment windows of one to 30
      minutes (ISO-8601): long enough for a steady state and a recovery at the dashboard's
      one-minute period, within what a report shows at once (FIS's default is 20 minutes).
    """
    problems: List[str] = []
    problems.extend(_report_rules(request.get("experimentReportConfiguration")))
    stops = request.get("stopConditions", [])
    if not any(s.get("source") == "aws:cloudwatch:alarm" for s in stops):
        problems.append("stopConditions: needs an aws:cloudwatch:alarm stop condition")
    if "cloudWatchLogsConfiguration" not in request.get("logConfiguration", {}):
        problems.append("logConfiguration: needs cloudWatchLogsConfiguration")
    if not request.get("tags"):
        problems.append("tags: needs at least a Name tag")
    actions = request.get("actions", {})
    waits = sum((parse_duration(a["parameters"]["duration"]) for a in actions.values()
                 if a.get("actionId") == "aws:fis:wait"), _dt.timedelta())
    for name, action in actions.items():
        if action.get("actionId") != "aws:ssm:start-automation-execution":
            continue
        where = f"actions.{name}"
        doc = action["parameters"].get("documentArn", "")
        doc_params = document_parameters(action)
        enabling = doc in experiment_documents or doc_params.get("ChaosMode", "ENABLED") == "ENABLED"
        if not enabling:
            continue
        if "Duration" not in doc_params:
            problems.append(f"{where}: an attach must set Duration so the fault expires by itself")
            continue
        expiry = parse_duration(doc_params["Duration"])
        if doc in experiment_documents:
            budget = parse_duration(action["parameters"]["maxDuration"])
            if budget < expiry + _dt.timedelta(minutes=5):
                problems.append(f"{where}: maxDuration {action['parameters']['maxDuration']} "
                                f"must exceed Duration {doc_params['Duration']} by 5 minutes")
        elif doc in expiry_documents:
            if expiry < waits or expiry > waits + _dt.timedelta(minutes=10):
                problems.append(f"{where}: Duration {doc_params['Duration']} should cover the "
                                f"waits ({waits}) plus at most 10 minutes")
    return problems


REPORT_WINDOW = (_dt.timedelta(minutes=1), _dt.timedelta(minutes=30))


def _report_rules(report: Any) -> List[str]:
    where = "experimentReportConfiguration"
    if not report:
        return [f"{where}: every template needs an experiment report (S3 output, durations)"]
    problems = []
    if not report.get("outputs", {}).get("s3Configuration", {}).get("bucketName"):
        problems.append(f"{where}.outputs.s3Configuration.bucketName: the report needs a bucket")
    for key in ("preExperimentDuration", "postExperimentDuration"):
        if key not in report:
            problems.append(f"{where}.{key}: say how long the report shows (e.g. PT10M)")
            continue
        try:
            value = parse_duration(report[key])
        except ValueError as exc:
            problems.append(f"{where}.{key}: {exc}")
            continue
        if not REPORT_WINDOW[0] <= value <= REPORT_WINDOW[1]:
            problems.append(f"{where}.{key}: {report[key]} is outside one to 30 minutes")
    for index, source in enumerate(report.get("dataSources", {}).get("cloudWatchDashboards", [])):
        if ":dashboard/" not in source.get("dashboardIdentifier", ""):
            problems.append(f"{where}.dataSources.cloudWatchDashboards[{index}]: "
                            f"{source.get('dashboardIdentifier')!r} is not a dashboard ARN")
    return problems


# --- the model walk --------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _input_shape():
    model = botocore.session.get_session().get_service_model("fis")
    return model.operation_model("CreateExperimentTemplate").input_shape


def _walk(value: Any, shape, path: str) -> List[str]:
    problems: List[str] = []
    meta = shape.metadata
    kind = shape.type_name
    if kind == "string" and isinstance(value, str):
        if "max" in meta and len(value) > meta["max"]:
            problems.append(f"{path}: {len(value)} characters, more than the {meta['max']} allowed")
        if "pattern" in meta and not _pattern(meta["pattern"]).search(value):
            problems.append(f"{path}: {value!r} does not match the pattern {meta['pattern']}")
        if shape.enum and value not in shape.enum:
            problems.append(f"{path}: {value!r} is not one of {', '.join(shape.enum)}")
    elif kind == "structure" and isinstance(value, dict):
        for key, item in value.items():
            if key in shape.members:
                problems.extend(_walk(item, shape.members[key], f"{path}.{key}"))
    elif kind == "list" and isinstance(value, list):
        if "max" in meta and len(value) > meta["max"]:
            problems.append(f"{path}: {len(value)} items, more than the {meta['max']} allowed")
        for index, item in enumerate(value):
            problems.extend(_walk(item, shape.member, f"{path}[{index}]"))
    elif kind == "map" and isinstance(value, dict):
        if "max" in meta and len(value) > meta["max"]:
            problems.append(f"{path}: {len(value)} entries, more than the {meta['max']} allowed")
        for key, item in value.items():
            problems.extend(_walk(key, shape.key, f"{path} key"))
            problems.extend(_walk(item, shape.value, f"{path}.{key}"))
    return problems


@lru_cache(maxsize=None)
def _pattern(text: str):
    # Smithy patterns are not implicitly anchored: search, as the service does.
    return regex.compile(text)


# --- actions ---------------------------------------------------------------------------------

def _check_actions(actions: Mapping[str, Any], documents: Mapping[str, Any]) -> List[str]:
    problems: List[str] = []
    for name, action in actions.items():
        where = f"actions.{name}"
        spec = ACTIONS.get(action.get("actionId", ""))
        if spec is None:
            problems.append(f"{where}: actionId {action.get('actionId')!r} is not one of "
                            f"{', '.join(sorted(ACTIONS))}")
            continue
        params = action.get("parameters", {})
        for key in sorted(spec["required"] - set(params)):
            problems.append(f"{where}: parameter {key!r} is required")
        for key in sorted(set(params) - spec["required"] - spec["optional"]):
            problems.append(f"{where}: parameter {key!r} is not a parameter of "
                            f"{action['actionId']}")
        for key in sorted(spec["durations"] & set(params)):
            problems.extend(_check_duration(f"{where}.parameters.{key}", params[key]))
        for before in action.get("startAfter", []):
            if before not in actions:
                problems.append(f"{where}: startAfter names {before!r}, which is not an action")
            elif before == name:
                problems.append(f"{where}: startAfter names the action itself")
        if "documentParameters" in params:
            problems.extend(_check_document_parameters(where, params, documents))
    problems.extend(_check_cycles(actions))
    return problems


def _check_duration(where: str, text: str) -> List[str]:
    try:
        value = parse_duration(text)
    except ValueError as exc:
        return [f"{where}: {exc}"]
    if not MIN_DURATION <= value <= MAX_DURATION:
        return [f"{where}: {text} is outside FIS's range of one minute to 12 hours"]
    return []


def _check_document_parameters(where: str, params: Mapping[str, Any],
                               documents: Mapping[str, Any]) -> List[str]:
    try:
        parsed = json.loads(params["documentParameters"])
    except ValueError as exc:
        return [f"{where}: documentParameters is not JSON ({exc})"]
    if not isinstance(parsed, dict):
        return [f"{where}: documentParameters must be a JSON object"]
    problems = []
    for key, item in parsed.items():
        ok = isinstance(item, str) or (isinstance(item, list) and all(isinstance(i, str) for i in item))
        if not ok:
            problems.append(f"{where}: documentParameters.{key} must be a string or a list of "
                            f"strings, not {type(item).__name__}")
    declared = documents.get(params.get("documentArn", ""))
    if declared is None:
        problems.append(f"{where}: documentArn {params.get('documentArn')!r} is not one of the "
                        f"toolkit's documents")
        return problems
    for key in sorted(set(parsed) - set(declared)):
        problems.append(f"{where}: documentParameters names {key!r}, which the document "
                        f"does not declare")
    if isinstance(declared, Mapping):  # full specs: check the values as SSM will
        problems.extend(_check_parameter_values(where, parsed, declared))
    return problems


def _check_parameter_values(where: str, parsed: Mapping[str, Any],
                            specs: Mapping[str, Mapping[str, Any]]) -> List[str]:
    """What SSM checks when the execution starts (too late: the experiment is already running):
    required parameters, allowedValues, allowedPattern, Integer and Boolean values."""
    problems = []
    for key, spec in specs.items():
        if "default" not in spec and key not in parsed:
            problems.append(f"{where}: documentParameters lacks {key!r}, which the document "
                            f"requires")
    for key, value in parsed.items():
        spec = specs.get(key)
        if spec is None or not isinstance(value, str):
            continue
        label = f"{where}: documentParameters.{key}={value!r}"
        if spec.get("allowedValues") and value not in [str(v) for v in spec["allowedValues"]]:
            problems.append(f"{label} is not one of {spec['allowedValues']}")
        if spec.get("allowedPattern") and not regex.search(spec["allowedPattern"], value):
            problems.append(f"{label} does not match the document's {spec['allowedPattern']}")
        if spec.get("type") == "Integer" and not re.fullmatch(r"-?\d+", value):
            problems.append(f"{label} is not an Integer")
        if spec.get("type") == "Boolean" and value.lower() not in ("true", "false"):
            problems.append(f"{label} is not true or false")
    return problems


def _check_cycles(actions: Mapping[str, Any]) -> List[str]:
    state: Dict[str, int] = {}

    def visit(name: str) -> bool:
        if state.get(name) == 1:
            return True
        if state.get(name) == 2 or name not in actions:
            return False
        state[name] = 1
        cyclic = any(visit(before) for before in actions[name].get("startAfter", []))
        state[name] = 2
        return cyclic
    return [f"actions: startAfter forms a cycle through {name!r}"
            for name in actions if state.get(name) is None and visit(name)]
