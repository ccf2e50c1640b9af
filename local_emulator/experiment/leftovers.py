"""When the fault was really attached, and what a run leaves changed: why, until when, how to undo it.

The experiment phase (FIS start → FIS end) is not the fault: the attach step takes a while to
return, and a template whose detach is a separate action (the blog's S00 attach → S01 wait →
S02 detach) never runs that detach once the experiment is stopped, because FIS starts no later
action then. So the fault is attached from the moment the attach step returned to the moment
the detach step returned — or, when no detach ran, to the end of the run and beyond, until the
fault's own expiry (`CHAOS_EXPIRES_AT`, written by the attach as its time + `Duration`).

All times here are template seconds (see clock.py), except `CHAOS_EXPIRES_AT`, which is the UTC
time as configured: the emulator compresses the expiry only in the functions' processes, never in
the configuration (sandbox.py).
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from pathlib import Path

from chaos_layer import config as chaos
from local_emulator.clock import parse_duration
from local_emulator.experiment.snapshot import split_key

__all__ = ["fault_window", "fault_steps", "leftovers", "render_leftovers", "DETACH_DOCUMENT"]

_ROOT = Path(__file__).resolve().parents[2]
# The fault document's name with deploy.sh's default stack name: `<stack>-LambdaFault-<hash>`,
# the hash the first 8 hex of the attachment's sha256 (the stack output FaultDocumentName).
DETACH_DOCUMENT = "lambda-chaos-LambdaFault-" + hashlib.sha256(
    (_ROOT / "ssm_documents" / "attachments" / "automation_handler.py").read_bytes()).hexdigest()[:8]
# The steps whose end is "every batch attached" / "every batch detached": the loops of
# lambda-fault-experiment.yaml, and lambda-fault-organization.yaml's steps that run the fault
# document in every location and wait for each.
_ATTACH_STEPS = ("Attach", "AttachEverywhere")
_DETACH_STEPS = ("Detach", "DetachEverywhere")
_EITHER_STEPS = ("Apply",)                    # lambda-fault.yaml: ChaosMode decides


def _document_parameters(template: Optional[Mapping[str, Any]], action: str) -> Dict[str, Any]:
    spec = ((template or {}).get("actions") or {}).get(action) or {}
    try:
        return json.loads((spec.get("parameters") or {}).get("documentParameters") or "{}")
    except ValueError:
        return {}


def _mode(name: str, action: Mapping[str, Any], template: Optional[Mapping[str, Any]]) -> Optional[str]:
    """"attach", "detach", "both" (attach → sleep → detach in one automation) or None."""
    if action.get("actionId") != "aws:ssm:start-automation-execution":
        return None
    parameters = _document_parameters(template, name)
    steps = [s["name"] for s in ((action.get("automation") or {}).get("steps") or [])]
    if any(s in _ATTACH_STEPS + _DETACH_STEPS for s in steps):
        return "both"
    if "ChaosMode" in parameters:
        return "detach" if str(parameters["ChaosMode"]).upper() == "DISABLED" else "attach"
    summary = str(((action.get("automation") or {}).get("outputs") or {}).get("Plan.Summary", ""))
    if summary.startswith(("attach", "detach")):
        return summary.split(" ", 1)[0]
    if template and parameters.get("Duration") and "Attach" not in steps:
        return "both"  # the experiment document, cancelled before its first step
    return None


def _succeeded(action: Mapping[str, Any], names: Sequence[str]) -> List[Tuple[float, float]]:
    """(start, end) of each step of these names that succeeded, in the automation or in the
    executions it handed its clean-up to (a cancel's detach runs in a new execution)."""
    automation = action.get("automation") or {}
    steps = list(automation.get("steps") or [])
    for handed in automation.get("handed_off") or []:
        steps += [dict(s, name="Detach" if s["name"] == "Apply" else s["name"])
                  for s in handed.get("steps") or []]
    return [(s["start"], s["end"]) for s in steps
            if s["name"] in names and s.get("status") == "Success"
            and s.get("start") is not None and s.get("end") is not None]


def fault_steps(experiment: Mapping[str, Any], template: Optional[Mapping[str, Any]] = None,
                locations: Sequence[Mapping[str, Any]] = ()) -> Dict[str, Optional[List[float]]]:
    """`{"attach": [start, end], "detach": [start, end]}`: the first attach step that succeeded
    and the last detach step after it (None when there was none), in template seconds. The
    function changes somewhere inside the step (the handler updates it, then waits for Lambda to
    apply the update), so the fault takes effect between a step's start and its end.
    `template` (with its ChaosMode parameters) tells an attach action from a detach action of the
    same document; without it the automation's Summary output does. `locations`
    (locations.location_rows) add each location's detach child: a cancelled organisation run
    hands its detach to new executions in every location, which its own steps do not show."""
    attached: List[Tuple[float, float]] = []
    detached: List[Tuple[float, float]] = []
    for name, action in (experiment.get("actions") or {}).items():
        mode = _mode(name, action, template)
        if mode in ("attach", "both"):
            attached += _succeeded(action, _ATTACH_STEPS + (_EITHER_STEPS if mode == "attach" else ()))
        if mode in ("detach", "both"):
            detached += _succeeded(action, _DETACH_STEPS + (_EITHER_STEPS if mode == "detach" else ()))
    detached += _detached_everywhere(locations)
    attach = min(attached, key=lambda step: step[1]) if attached else None
    later = [step for step in detached if attach and step[1] >= attach[1]]
    detach = max(later, key=lambda step: step[1]) if later else None
    return {"attach": [round(t, 1) for t in attach] if attach else None,
            "detach": [round(t, 1) for t in detach] if detach else None}


def _detached_everywhere(locations: Sequence[Mapping[str, Any]]) -> List[Tuple[float, float]]:
    """(first start, last end) of the locations' detach children, when every location an
    attach ran in was detached successfully; [] otherwise (the fault outlived some detach)."""
    attached = [row for row in locations if row.get("attach")]
    detaches = [row.get("detach") for row in attached]
    if not attached or any(not d or d.get("status") != "Success" or d.get("end") is None
                           for d in detaches):
        return []
    return [(min(d["start"] for d in detaches), max(d["end"] for d in detaches))]


def fault_window(experiment: Mapping[str, Any],
                 template: Optional[Mapping[str, Any]] = None,
                 locations: Sequence[Mapping[str, Any]] = ()) -> Optional[List[Optional[float]]]:
    """`[attached_at, detached_at]` in template seconds: when the attach step returned and when
    the detach step after it returned (None: no detach returned, the fault outlived the run).
    None when no attach step succeeded. `locations` as for fault_steps."""
    steps = fault_steps(experiment, template, locations)
    if not steps["attach"]:
        return None
    return [steps["attach"][1], steps["detach"][1] if steps["detach"] else None]


def _attach_duration(experiment: Mapping[str, Any],
                     template: Optional[Mapping[str, Any]]) -> Optional[str]:
    """The attach's `Duration` (CHAOS_EXPIRES_AT is the attach's time + it), if the template says."""
    for name, action in (experiment.get("actions") or {}).items():
        if _mode(name, action, template) in ("attach", "both"):
            text = str(_document_parameters(template, name).get("Duration") or "")
            try:
                return text if text and parse_duration(text) > 0 else None
            except ValueError:
                return None
    return None


def _why(experiment: Mapping[str, Any], template: Optional[Mapping[str, Any]],
         template_name: str) -> Dict[str, Any]:
    """Whether the template's structure makes this outcome expected, and why: its detach is a
    separate action that FIS never started because the experiment had stopped first."""
    actions = experiment.get("actions") or {}
    never_ran = [name for name, action in actions.items()
                 if _mode(name, action, template) == "detach" and action.get("state") == "cancelled"]
    if experiment.get("state") in ("stopped", "failed") and never_ran:
        reason = str(experiment.get("reason") or "").rstrip(".")
        readme = _ROOT / "fis_templates" / template_name / "README.md"
        return {"expected": True, "why": (
            f"The experiment {experiment.get('state')}" + (f" ({reason})" if reason else "")
            + f" before its detach action {', '.join(never_ran)} started, and FIS starts no later "
            "action once an experiment has stopped: the fault stays attached"
            + (f" (fis_templates/{template_name}/README.md, \"When stopped\")." if readme.is_file() else "."))}
    return {"expected": False, "why": (
        f"Not what {template_name} should leave behind: no detach undid the attach (see the "
        "Actions above and each automation's steps).")}


def _expiry(variables: Mapping[str, str], window: Optional[Sequence[Optional[float]]],
            duration_s: Optional[float], run_end: float) -> Dict[str, Any]:
    raw = (variables.get(chaos.EXPIRES_AT) or "").strip()
    out: Dict[str, Any] = {"expires_at": raw or None, "expires_template_s": None,
                           "after_run_end_s": None}
    if raw:
        try:
            chaos.parse_utc_time(raw)
        except ValueError:
            out["expires_at"] = None
            out["invalid_expiry"] = raw
            return out
    if raw and window and duration_s is not None:
        expires = window[0] + duration_s
        out["expires_template_s"] = round(expires, 1)
        out["after_run_end_s"] = round(expires - run_end, 1)
    return out


def _commands(region: str, name: str, endpoint_url: Optional[str],
              account: str = "") -> Dict[str, str]:
    cli = f"python automation_handler.py detach --region {region} --FunctionName {name}"
    commands = {"aws": cli + (f"   (with account {account}'s credentials)" if account else ""),
                "aws_ssm": (f"aws ssm start-automation-execution --region {region} "
                            f"--document-name {DETACH_DOCUMENT} "
                            f"--parameters FunctionName={name},ChaosMode=DISABLED")}
    if endpoint_url:
        commands["local"] = f"{cli} --endpoint-url {endpoint_url}"
    return commands


def leftovers(differences: Sequence[str], after: Optional[Mapping[str, Any]], *,
              experiment: Mapping[str, Any], run_end: float,
              template: Optional[Mapping[str, Any]] = None, template_name: str = "this template",
              endpoint_url: Optional[str] = None) -> Optional[Dict[str, Any]]:
    """What the run left changed (None when nothing): per function its differences, the
    configured expiry and when that is in this run's template time, and the command that
    detaches it; whether the template's structure makes this expected, and why.

    `differences` are snapshot.differences lines (`"region/name: field: old → new"`, or
    `"account/region/name: …"` for a snapshot of several accounts); `after`
    is the snapshot.capture taken after the run (its variables hold CHAOS_EXPIRES_AT)."""
    changed: Dict[str, List[str]] = {}
    for line in differences:
        key = line.split(": ", 1)[0]
        changed.setdefault(key, []).append(line)
    if not changed:
        return None
    window = fault_window(experiment, template)
    duration = _attach_duration(experiment, template)
    duration_s = parse_duration(duration) if duration else None
    functions = []
    for key, lines in sorted(changed.items()):
        account, region, name = split_key(key)
        configuration = ((after or {}).get(key) or {}).get("configuration") or {}
        variables = (configuration.get("Environment") or {}).get("Variables") or {}
        functions.append({"function": key, **({"account": account} if account else {}),
                          "region": region, "name": name, "differences": lines,
                          "fault_type": variables.get(chaos.FAULT_TYPE),
                          **_expiry(variables, window, duration_s, run_end),
                          "detach": _commands(region, name, endpoint_url, account)})
    return {"functions": functions, "run_end_s": round(run_end, 1), "fault_window": window,
            "duration": duration, "duration_s": duration_s, "template": template_name,
            **_why(experiment, template, template_name)}


def _utc(raw: str) -> str:
    return chaos.parse_utc_time(raw).strftime("%Y-%m-%d %H:%M:%S UTC")


def _expiry_lines(f: Mapping[str, Any], found: Mapping[str, Any]) -> List[str]:
    if f.get("invalid_expiry"):
        return [f"expiry: CHAOS_EXPIRES_AT {f['invalid_expiry']!r} is not a time: the layer injects "
                "nothing (it logs the bad value) but stays attached until detached"]
    if not f.get("expires_at"):
        return ["expiry: none (no CHAOS_EXPIRES_AT): the fault never stops by itself, only a detach ends it"]
    lines = [f"expiry: the fault stops injecting at CHAOS_EXPIRES_AT = {_utc(f['expires_at'])}, as "
             "configured (the attach's time + Duration" + (f" {found['duration']}" if found.get("duration") else "")
             + "); the layer stays attached until a detach"]
    if f.get("expires_template_s") is not None:
        after, end = f["after_run_end_s"], found["run_end_s"]
        when = (f"{after:g} s after the run ended ({end:g} s)" if after >= 0 else
                f"{-after:g} s before the run ended ({end:g} s): it injected nothing from then on")
        lines.append(f"        in this run's template time (the emulator compresses it in the function's "
                     f"processes only): ~{f['expires_template_s']:g} s, {found['duration_s']:g} s after the "
                     f"attach returned ({found['fault_window'][0]:g} s), {when}")
    return lines


def render_leftovers(found: Optional[Mapping[str, Any]]) -> List[str]:
    """The terminal's plain-words block for functions still changed after the run ([] if none)."""
    if not found:
        return []
    lines = ["Still changed after the run"
             + (f" — expected for {found['template']}, not a bug:" if found.get("expected") else ":"),
             f"  {found['why']}"]
    for f in found["functions"]:
        lines.append(f"  {f['function']}: "
                     + (f"chaos layer attached (fault {f['fault_type']}), " if f.get("fault_type") else "")
                     + f"{len(f['differences'])} field(s) differ from before the run")
        lines += [f"    {line}" for line in _expiry_lines(f, found)]
        lines.append(f"    detach on AWS: {f['detach']['aws']}")
        lines.append(f"               or: {f['detach']['aws_ssm']}")
        lines.append("                   (the stack output FaultDocumentName; lambda-chaos is deploy.sh's "
                     "default stack name)")
        lines.append("    locally: nothing to undo, the run's embedded AWS stopped with it and the next run "
                     "deploys afresh" + (f"; an emulator kept running: {f['detach']['local']}"
                                         if f["detach"].get("local") else ""))
    return lines
