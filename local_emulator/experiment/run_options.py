"""The local experiment's settings, checked before anything is deployed.

Deploying both regions takes a minute or more; a setting the run cannot honour must be refused
before that, saying what is allowed and why, not found out afterwards (or as a traceback in the
middle of the run). `check_settings` is the first thing `run_experiment` does; the command line
refuses, while it parses, only what cannot be a setting at all (`unusable`, `health_config`).
Each bound is a named constant with the reason for it.

`clear_previous_report` removes an earlier run's report files from the output folder as the run
starts, so a run that fails leaves no older report that reads as if it were this run's.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional

from local_emulator.aws import route53
from local_emulator.clock import parse_duration
from local_emulator.errors import DocumentError, DurationError, ExperimentError
from local_emulator.aws.fis_runner import SUPPORTED_ACTIONS
from local_emulator.aws.ssm_document import AutomationDocument, load_document, resolve_parameters

if TYPE_CHECKING:  # experiment.py imports this module
    from local_emulator.experiment.orchestration import Settings

__all__ = ["SettingsError", "check_settings", "unusable", "health_config", "template_path",
           "available_templates", "clear_previous_report", "REPORT_FILES", "ERROR_LOG", "MIN_TIME_SCALE",
           "MAX_TIME_SCALE", "DEFAULT_TIME_SCALE", "MAX_REAL_REQUESTS_PER_S", "MIN_PHASE_REQUESTS", "MAX_DURATION_S",
           "HEALTH_INTERVALS_S"]

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "fis_templates"

# Below 1 a run is slower than real time and no more faithful than real time itself (every
# duration as the template says it); a typo such as 0.03 for 30 would make a 20-minute run last
# 9 hours.
MIN_TIME_SCALE = 1.0
# Measured on the 2-core VM shared with other engineers' test runs (load average 2.7-22), one run
# at a time: the latency template with 4,000 ms on /hello, --pre 60
# --post 120 (`--set S00_AttachExtensionToLambda.LatencyMilliseconds=4000`):
#   scale  30: 3 of 3 runs held every hypothesis (p50 rose 4121-4242 ms; once at --rate 1);
#   scale  40: 2 of 2 failed recovery (post p50 270 and 404 ms against 230 and 283 allowed);
#   scale  45: 3 of 3 failed (twice the alarm fired and stopped it before the detach; the rise
#              was 1348-13873 ms);
#   scale  60: 4 of 4 failed (the alarm fired, or the detach outran its PT5M maxDuration; the
#              rise 11755-17032 ms);
#   scale 100: the attach script outran its PT5M maxDuration (3 real s) and the run failed.
# The emulator's own per-request cost and cold starts (real ms, multiplied by the scale) and the
# script steps (attach ~1.5-5 real s at the machine's speed) swamp the fault above 30.
MAX_TIME_SCALE = 30.0
# The default leaves that ceiling a factor of 2 for a slower machine. Measured on this 2-core VM
# on a slow day (a pure-Python loop 2-3x slower than usual), the regional outage, one run at a
# time: at scale 30 three runs of the current code and one of the previous commit ended "did
# NOT keep up" (worst stalls 13.0-21.0 template s; an untouched region's health check failed);
# at scale 15 the emulator kept up (worst stall 4.8 s, steady p50 61 ms against 150-212 ms at
# 30) and every hypothesis held. Half the scale costs 44 real seconds of a ~6-minute run.
DEFAULT_TIME_SCALE = 15.0
# Requests per real second (rate × client regions × scale) shown to be served: --rate 1 at
# --time-scale 30 held every hypothesis (above). --rate 1e12 would queue requests without end.
MAX_REAL_REQUESTS_PER_S = 1.0 * 2 * 30.0
# The steady-state and recovery phases must each hold this many requests per client region: the
# recovery verdict compares their p50s, and a p50 of a handful of requests is one request's luck.
MIN_PHASE_REQUESTS = 10
# FIS runs an experiment, and an action, for at most 12 hours; no phase or duration of a local
# run needs longer (and far longer ones overflow the clock: `--pre 1e12` is 31,700 years).
MAX_DURATION_S = 12 * 3600.0
# Route 53's RequestInterval takes exactly these values: standard and fast.
HEALTH_INTERVALS_S = (10.0, 30.0)
# What write_report (report.py) writes, and what __main__ writes when a run fails unexpectedly.
REPORT_FILES = ("report.html", "report.json", "report.txt")
ERROR_LOG = "error.log"
# The documents a template's `documentArn` placeholder names, as `deploy.sh --local` creates them.
_DOCUMENTS = {"${FaultDocumentArn}": ROOT / "ssm_documents" / "lambda-fault.yaml",
              "${ExperimentDocumentArn}": ROOT / "ssm_documents" / "lambda-fault-experiment.yaml"}
_ACTION_DURATIONS = ("duration", "maxDuration")


class SettingsError(ExperimentError, ValueError):
    """Raised before anything is deployed when a setting is outside what the local run can honour."""


def available_templates() -> List[str]:
    """The template folders under fis_templates/ (each holds a template.json)."""
    return sorted(p.parent.name for p in TEMPLATES.glob("*/template.json"))


def template_path(name_or_path: str) -> Path:
    """The template file a `--template` value names: a folder under fis_templates/ or a path to a
    template.json (as `Deployment.template` reads it); raises SettingsError listing the folders."""
    path = Path(str(name_or_path))
    if path.is_file():
        return path
    folder = TEMPLATES / str(name_or_path) / "template.json"
    if str(name_or_path) and folder.is_file():
        return folder
    raise SettingsError(f"--template {name_or_path!r}: no such template; use one of "
                        f"{', '.join(available_templates())} (a folder under fis_templates/) "
                        "or the path of a template.json")


def check_settings(settings: "Settings") -> None:
    """Refuse settings the run cannot honour, before anything is deployed.

    Raises SettingsError naming every refused setting, what is allowed and why.
    """
    problems = [*_time_scale(settings.time_scale), *_load(settings), *_health(settings),
                *_targets(settings)]
    if not _finite(settings.alarm_threshold, allow_none=True):
        problems.append(f"--alarm-threshold {_num(settings.alarm_threshold)}: the alarm's threshold must "
                        "be a finite number, as CloudWatch's Threshold is")
    output = Path(settings.output)
    if output.exists() and not output.is_dir():
        problems.append(f"--output {output}: is a file; the report goes into a folder "
                        "(it holds report.html, report.json, report.txt and the logs)")
    try:
        template = _template(settings.template)
    except SettingsError as exc:
        problems.append(str(exc))
    else:
        problems += _overrides(template, settings.overrides)
    if problems:
        raise SettingsError("\n".join(problems))


def unusable(time_scale: float, rate: float) -> List[str]:
    """What no run can use at all, whatever else is set: a time scale or rate that is not a
    finite number > 0 (the command line refuses these while it parses)."""
    problems = []
    if not _finite(time_scale) or time_scale <= 0:
        problems.append(f"--time-scale {_num(time_scale)}: must be > 0 and finite (template "
                        f"seconds per real second); {_allowed_scales()}")
    if not _finite(rate) or rate <= 0:
        problems.append(f"--rate {_num(rate)}: must be > 0 and finite (requests per template "
                        "second from each client region)")
    return problems


def health_config(interval_s: Optional[float],
                  failure_threshold: Optional[int]) -> Optional[route53.HealthCheckConfig]:
    """`--health-interval` / `--failure-threshold` as a Route 53 health check (None: as deployed;
    one given alone keeps Route 53's default for the other); raises SettingsError."""
    if interval_s is None and failure_threshold is None:
        return None
    interval_s = 30.0 if interval_s is None else interval_s
    failure_threshold = 3 if failure_threshold is None else failure_threshold
    problems = [] if interval_s in HEALTH_INTERVALS_S else [_interval_problem(interval_s)]
    try:
        config = route53.HealthCheckConfig(request_interval_s=30.0 if problems else interval_s,
                                           failure_threshold=failure_threshold)
    except ValueError as exc:
        problems.append(f"--failure-threshold {failure_threshold}: {exc}")
    if problems:
        raise SettingsError("\n".join(problems))
    return config


def clear_previous_report(output: Path) -> List[Path]:
    """Remove an earlier run's report files (and error log) from `output`; return what was removed."""
    removed = []
    for name in (*REPORT_FILES, ERROR_LOG):
        path = Path(output) / name
        if path.is_file():
            path.unlink()
            removed.append(path)
    return removed


def _finite(value: Any, allow_none: bool = False) -> bool:
    if value is None:
        return allow_none
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _num(value: Any) -> str:
    """A number as the user would write it (-5, not -5.0; 1e+09 for a billion)."""
    return f"{value:g}" if isinstance(value, (int, float)) else repr(value)


def _allowed_scales() -> str:
    return f"use {MIN_TIME_SCALE:g}–{MAX_TIME_SCALE:g} (1 = real time)"


def _time_scale(scale: float) -> List[str]:
    if not _finite(scale) or scale <= 0:
        return unusable(scale, 1.0)
    if scale < MIN_TIME_SCALE:
        return [f"--time-scale {_num(scale)}: below {MIN_TIME_SCALE:g} the run is slower than real "
                f"time and no more faithful than real time; {_allowed_scales()}"]
    if scale > MAX_TIME_SCALE:
        return [f"--time-scale {_num(scale)}: the emulator keeps up with at most {MAX_TIME_SCALE:g}× "
                "(measured: at higher scales its own per-request cost and the attach and detach "
                "scripts, which run at the machine's speed, swamp the fault it measures); "
                f"{_allowed_scales()}"]
    return []


def _load(settings: "Settings") -> List[str]:
    """--rate, --pre and --post: enough requests in each phase, not more than the emulator serves."""
    rate, problems = settings.rate, []
    if not _finite(rate) or rate <= 0:
        return unusable(1.0, rate)
    clients = len(settings.regions)
    if not _time_scale(settings.time_scale):  # a refused scale is reported once, by itself
        real = rate * clients * settings.time_scale
        if real > MAX_REAL_REQUESTS_PER_S:
            problems.append(
                f"--rate {rate:g} at --time-scale {settings.time_scale:g}: {real:g} requests per real "
                f"second from {clients} client regions; the emulator was measured to keep up with "
                f"{MAX_REAL_REQUESTS_PER_S:g} (--rate 1 at --time-scale 30); use "
                f"--rate ≤ {MAX_REAL_REQUESTS_PER_S / clients / settings.time_scale:g} at this scale")
    shortest = MIN_PHASE_REQUESTS / rate
    for option, value, phase in (("--pre", settings.pre_s, "steady-state"),
                                 ("--post", settings.post_s, "recovery")):
        if not _finite(value) or not shortest <= value <= MAX_DURATION_S:
            problems.append(
                f"{option} {_num(value)}: the {phase} phase must last {shortest:g}–{MAX_DURATION_S:g} "
                f"template seconds: at least {MIN_PHASE_REQUESTS} requests per client region at "
                f"--rate {rate:g} (the recovery verdict compares the p50 of the steady state with "
                f"the recovery's), at most 12 hours (FIS's own limit for an experiment)")
    return problems


def _health(settings: "Settings") -> List[str]:
    health = settings.health
    if health is None:
        return []
    interval = health.request_interval_s
    if interval not in HEALTH_INTERVALS_S:
        return [_interval_problem(interval)]
    return []


def _interval_problem(interval: float) -> str:
    return (f"--health-interval {_num(interval)}: Route 53 checks every 30 s (standard) or 10 s "
            "(fast); use 30 or 10")


def _targets(settings: "Settings") -> List[str]:
    regions = list(settings.regions)
    bad = {r: t for r, t in settings.health_check_targets.items()
           if r not in regions or t not in regions}
    return [f"--health-check-target {r}={t}: both must be regions of this run "
            f"({', '.join(regions)}), e.g. {regions[0]}={regions[-1]}" for r, t in bad.items()]


def _template(name_or_path: str) -> Dict[str, Any]:
    """The template file as JSON (placeholders left as they are); raises SettingsError."""
    path = template_path(name_or_path)
    try:
        template = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise SettingsError(f"--template {name_or_path}: {path} is not a readable JSON "
                            f"experiment template ({exc})") from None
    actions = template.get("actions") if isinstance(template, dict) else None
    if not isinstance(actions, dict) or not actions:
        raise SettingsError(f"--template {name_or_path}: {path} has no \"actions\"; an experiment "
                            "template names at least one action")
    unsupported = sorted({str(a.get("actionId")) for a in actions.values()
                          if not isinstance(a, dict) or a.get("actionId") not in SUPPORTED_ACTIONS})
    if unsupported:
        raise SettingsError(f"--template {name_or_path}: action {', '.join(unsupported)} cannot "
                            f"run locally; the local FIS runs {', '.join(SUPPORTED_ACTIONS)}")
    return template


def _overrides(template: Mapping[str, Any], overrides: Mapping[str, str]) -> List[str]:
    """Each `--set ACTION.PARAM=VALUE` against the template file and its SSM document."""
    problems = []
    actions = template["actions"]
    for key, value in overrides.items():
        action_name, _, param = key.partition(".")
        where = f"--set {key}={value}"
        action = actions.get(action_name)
        if action is None or not param:
            problems.append(f"{where}: write ACTION.PARAMETER with an action of the template "
                            f"({', '.join(actions)})")
            continue
        if action.get("actionId") == "aws:fis:wait" and param != "duration":
            problems.append(f"{where}: {action_name} is an aws:fis:wait; it takes only duration")
            continue
        if param in _ACTION_DURATIONS or (param == "Duration" and value):  # "": no expiry
            problem = _duration(value)
            if problem:
                problems.append(f"{where}: {problem}")
                continue
        if param in _ACTION_DURATIONS or param == "documentArn":
            continue
        problem = _document_parameter(action, param, value)
        if problem:
            problems.append(f"{where}: {problem}")
    return problems


def _duration(value: str) -> Optional[str]:
    try:
        seconds = parse_duration(value)
    except DurationError:
        return "not an ISO-8601 duration; write e.g. PT10M, PT1H30M or PT45S"
    if seconds > MAX_DURATION_S:
        return f"{seconds:g} s is longer than 12 hours (PT12H), FIS's own limit for an action"
    return None


def _document_parameter(action: Mapping[str, Any], param: str, value: str) -> Optional[str]:
    """The value checked as StartAutomationExecution checks it, when the document is known here."""
    source = _DOCUMENTS.get(str((action.get("parameters") or {}).get("documentArn")))
    if source is None or not source.is_file():
        return None  # another document: checked when the automation starts
    try:
        document = load_document(source)
    except DocumentError:
        return None  # a broken document is the run's to report, not this option's
    spec = document.parameters.get(param)
    if spec is None:
        return (f"document {source.name} has no parameter {param}; it takes "
                f"{', '.join(sorted(document.parameters))}")
    try:
        resolve_parameters(AutomationDocument(document.name, {param: spec}, [], []), {param: value})
    except DocumentError as exc:
        described = (spec or {}).get("description")
        return str(exc) + (f" ({param}: {described})" if described else "")
    return None
