"""A local FIS: runs an experiment template (the same file users deploy) against the embedded AWS.

moto's FIS only stores templates and steps an experiment's status; it runs no action. This
runner carries out the two actions the project's templates use, with FIS's semantics:

- **ordering**: an action without `startAfter` starts when the experiment starts; one with
  `startAfter` starts when every action it names has completed. Cycles and unknown names are
  refused before anything runs.
- **`aws:fis:wait`** waits its ISO-8601 `duration` (template time).
- **`aws:ssm:start-automation-execution`** fetches the document named by `documentArn` from the
  emulator's SSM, runs it with the JSON `documentParameters` through the local SSM runner, and
  completes when the automation succeeds; a Failed or Cancelled automation fails the action.
  Past `maxDuration` the action fails and the automation is cancelled (its onCancel path runs).
- **stop conditions**: every `aws:cloudwatch:alarm` is read from the emulator's CloudWatch while
  the experiment runs; an alarm already in ALARM at start fails the experiment before any action,
  and one entering ALARM stops it.
- **stopping** (a stop condition, a failed action, or `stop()`): running actions are stopped
  (a running automation is cancelled, as FIS calls StopAutomationExecution) and actions not yet
  started never start (`cancelled`). Experiment states: pending → initiating → running →
  completed | stopping → stopped | failed.
- `experimentOptions.actionsMode: skip-all` marks every action `skipped` and changes nothing.
- `experimentReportConfiguration` is accepted (its S3 output and ISO-8601 pre- and
  post-experiment durations checked) and recorded in `summary()` with the window a report
  would cover (start − pre to end + post, template seconds); no PDF is written.
"""
from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Union

from cloudformation.fis import LIST_PLACEHOLDERS
from local_emulator.clock import Clock, parse_duration
from local_emulator.errors import DocumentError, DurationError, TemplateError
from local_emulator.aws.ssm_runner import AutomationDocument, AutomationExecution, load_document
from local_emulator.aws.ssm_service import AutomationService

__all__ = ["FisExperiment", "ActionRecord", "load_template", "SUPPORTED_ACTIONS"]

SUPPORTED_ACTIONS = ("aws:fis:wait", "aws:ssm:start-automation-execution")
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
# A list placeholder as one item of a list inside the documentParameters JSON string.
_LIST_ITEM = re.compile(r'\\"\$\{(' + "|".join(LIST_PLACEHOLDERS) + r')\}\\"')
# How long a cancelled automation may run its clean-up path (SSM allows the cancel path 2 min).
_CANCEL_GRACE_REAL_S = 120.0
_POLL_REAL_S = 0.05
# Alarm reads go to moto; twice a (real) second is prompt enough and keeps moto's load low.
_ALARM_POLL_REAL_S = 0.5

DocumentLoader = Callable[[str, str], AutomationDocument]


def load_template(source: Union[str, Path, Mapping[str, Any]],
                  values: Optional[Mapping[str, str]] = None) -> Dict[str, Any]:
    """A template as a dict, `${Name}` placeholders filled from `values`; raises TemplateError.

    Substitution happens on the raw text, as `deploy.sh` renders it, so a placeholder inside the
    JSON string of `documentParameters` is filled too. Any placeholder left unfilled is an error
    naming every missing value.
    """
    if isinstance(source, Mapping):
        text = json.dumps(source)
        label = "<template>"
    else:
        path = Path(source)
        if not path.is_file():
            raise TemplateError(f"template {source} does not exist; pass a path such as "
                                "fis_templates/lambda-regional-outage/template.json")
        text, label = path.read_text(encoding="utf-8"), str(source)
    values = values or {}
    for name, value in values.items():
        if '"' in str(value) or "\\" in str(value):
            # A placeholder may sit inside documentParameters, a JSON string inside JSON: one
            # level of escaping cannot be right for both places, so such values are refused.
            raise TemplateError(f"value of {name} ({value!r}) contains a quote or backslash; "
                                "names and ARNs never do: check the value")

    def fill(match: "re.Match[str]") -> str:
        return str(values.get(match.group(1), match.group(0)))

    def fill_list(match: "re.Match[str]") -> str:
        """A list placeholder standing alone as an item of a list inside documentParameters
        (`[\\"${TargetAccounts}\\"]`): one item per comma-separated value, as deploy.sh and
        the stack render it (cloudformation/fis.py's LIST_PLACEHOLDERS)."""
        if match.group(1) not in values:
            return match.group(0)
        items = [item.strip() for item in str(values[match.group(1)]).split(",") if item.strip()]
        return '\\"' + '\\",\\"'.join(items) + '\\"'

    text = _LIST_ITEM.sub(fill_list, text)
    text = _PLACEHOLDER.sub(fill, text)
    missing = sorted(set(_PLACEHOLDER.findall(text)))
    if missing:
        raise TemplateError(f"template {label} still has placeholders {', '.join(missing)}; "
                            "render it with deploy.sh --local or pass their values")
    try:
        template = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TemplateError(f"template {label} is not valid JSON: {exc}") from exc
    _check_template(template, label)
    return template


def _check_template(template: Mapping[str, Any], label: str) -> None:
    actions = template.get("actions")
    if not isinstance(actions, dict) or not actions:
        raise TemplateError(f"template {label} has no actions")
    for name, action in actions.items():
        where = f"template {label}, action {name}"
        if action.get("actionId") not in SUPPORTED_ACTIONS:
            raise TemplateError(f"{where}: actionId {action.get('actionId')!r} is not supported "
                                f"locally; the local runner knows {', '.join(SUPPORTED_ACTIONS)}")
        for after in action.get("startAfter") or []:
            if after not in actions:
                raise TemplateError(f"{where}: startAfter names {after!r}, which is not an action")
        parameters = action.get("parameters") or {}
        for key in ("duration", "maxDuration"):
            if key in parameters:
                try:
                    parse_duration(parameters[key])
                except DurationError as exc:
                    raise TemplateError(f"{where}: {key}: {exc}") from None
        if action["actionId"] == "aws:fis:wait" and "duration" not in parameters:
            raise TemplateError(f"{where}: aws:fis:wait needs parameters.duration, e.g. PT10M")
        if action["actionId"] == "aws:ssm:start-automation-execution":
            if not parameters.get("documentArn"):
                raise TemplateError(f"{where}: needs parameters.documentArn")
            _document_parameters(where, parameters)
    _check_acyclic(actions, label)
    _report_window(template, label)
    for condition in template.get("stopConditions") or []:
        if condition.get("source") not in ("none", "aws:cloudwatch:alarm"):
            raise TemplateError(f"template {label}: stop condition source {condition.get('source')!r} "
                                "is not aws:cloudwatch:alarm or none")


def _check_acyclic(actions: Mapping[str, Any], label: str) -> None:
    state: Dict[str, str] = {}

    def visit(name: str, path: List[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            raise TemplateError(f"template {label}: startAfter makes a cycle: "
                                f"{' → '.join(path + [name])}")
        state[name] = "visiting"
        for after in actions[name].get("startAfter") or []:
            visit(after, path + [name])
        state[name] = "done"

    for name in actions:
        visit(name, [])


def _report_window(template: Mapping[str, Any], label: str) -> Optional[Dict[str, float]]:
    """The report's pre- and post-experiment seconds (None without a report configuration);
    raises TemplateError for a report FIS would refuse: no S3 bucket, or a bad duration."""
    report = template.get("experimentReportConfiguration")
    if report is None:
        return None
    where = f"template {label}, experimentReportConfiguration"
    if not ((report.get("outputs") or {}).get("s3Configuration") or {}).get("bucketName"):
        raise TemplateError(f"{where}: needs outputs.s3Configuration.bucketName, the report's bucket")
    window = {}
    for key in ("preExperimentDuration", "postExperimentDuration"):
        try:
            window[key] = parse_duration(report.get(key, "PT20M"))  # FIS's default
        except DurationError as exc:
            raise TemplateError(f"{where}: {key}: {exc}") from None
    return window


def _document_parameters(where: str, parameters: Mapping[str, Any]) -> Dict[str, Any]:
    raw = parameters.get("documentParameters") or "{}"
    try:
        values = json.loads(raw) if isinstance(raw, str) else dict(raw)
    except json.JSONDecodeError as exc:
        raise TemplateError(f"{where}: documentParameters is not a JSON object: {exc}") from None
    if not isinstance(values, dict):
        raise TemplateError(f"{where}: documentParameters must be a JSON object of name → value")
    return values


@dataclass
class ActionRecord:
    """One action's state, like FIS's ExperimentAction (times in template seconds)."""

    name: str
    action_id: str
    start_after: List[str]
    parameters: Dict[str, Any]
    state: str = "pending"
    reason: str = ""
    start: Optional[float] = None
    end: Optional[float] = None
    automation: Optional[AutomationExecution] = None
    stop: threading.Event = field(default_factory=threading.Event)


class FisExperiment:
    """Run one experiment: `start()` then `wait()`, or `run()`; `stop()` from any thread."""

    def __init__(self, template: Mapping[str, Any], *, aws: Any, region: str = "us-east-1",
                 clock: Optional[Clock] = None, document_loader: Optional[DocumentLoader] = None,
                 on_event: Optional[Callable[[str], None]] = None) -> None:
        _check_template(template, "<template>")
        self.template = template
        self.aws = aws
        self.region = region
        self.clock = clock or Clock()
        self.document_loader = document_loader or self._document_from_ssm
        # Executions the experiment's automations start themselves (a cancel's hand-off).
        self.automation = AutomationService(self.document_loader, clock=self.clock,
                                            env_for=lambda region: self.aws.env(region))
        self.on_event = on_event or (lambda message: None)
        self.state = "pending"
        self.reason = ""
        self.start_time: Optional[float] = None
        self.end_time: Optional[float] = None
        self.actions: Dict[str, ActionRecord] = {
            name: ActionRecord(name, spec["actionId"], list(spec.get("startAfter") or []),
                               dict(spec.get("parameters") or {}))
            for name, spec in template["actions"].items()}
        self._stop = threading.Event()
        self._stop_reason = ""
        self._done = threading.Event()
        self._threads: Dict[str, threading.Thread] = {}
        self._lock = threading.Lock()
        self._clients: Dict[str, Any] = {}
        self._last_alarm_poll = float("-inf")

    # --- control ---------------------------------------------------------------------------
    def start(self) -> "FisExperiment":
        threading.Thread(target=self.run, name="fis-experiment", daemon=True).start()
        return self

    def stop(self, reason: str = "Experiment stopped by the user (StopExperiment)") -> None:
        with self._lock:
            if not self._stop.is_set():
                self._stop_reason = reason
                self._stop.set()

    def wait(self, timeout: Optional[float] = None) -> bool:
        return self._done.wait(timeout)

    # --- the engine ------------------------------------------------------------------------
    def run(self) -> "FisExperiment":
        try:
            self._run()
        except (TemplateError, DocumentError) as exc:
            self._set_state("failed", str(exc))
            self._stop_all_running()
        except Exception as exc:  # a runner bug must still end the experiment, not hang it
            self._set_state("failed", f"local runner error: {type(exc).__name__}: {exc}")
            self._stop_all_running()
        finally:
            self.end_time = self.clock.now()
            self._done.set()
        return self

    def _run(self) -> None:
        self.start_time = self.clock.now()
        self._set_state("initiating", "")
        alarms = self._stop_alarms()
        if (self.template.get("experimentOptions") or {}).get("actionsMode") == "skip-all":
            for record in self.actions.values():
                record.state, record.reason = "skipped", "actionsMode is skip-all"
            self._set_state("completed", "Experiment completed (actions skipped).")
            return
        fired = self._fired_alarm(alarms)
        if fired:
            self._set_state("failed", f"Stop condition {fired} was in ALARM state when the experiment "
                                      "started; no action ran")
            return
        self._set_state("running", "")
        while True:
            fired = self._poll_alarms(alarms)
            if fired and not self._stop.is_set():
                self.stop(f"Stop condition {fired} entered ALARM state")
            failed = [r for r in self.actions.values() if r.state == "failed"]
            if self._stop.is_set() or failed:
                self._wind_down(failed)
                return
            self._start_ready_actions()
            if all(r.state == "completed" for r in self.actions.values()):
                self._set_state("completed", "Experiment completed.")
                return
            self._stop.wait(_POLL_REAL_S)

    def _start_ready_actions(self) -> None:
        for record in self.actions.values():
            if record.state != "pending":
                continue
            if all(self.actions[a].state == "completed" for a in record.start_after):
                record.state, record.start = "initiating", self.clock.now()
                thread = threading.Thread(target=self._run_action, args=(record,),
                                          name=f"fis-{record.name}", daemon=True)
                self._threads[record.name] = thread
                thread.start()

    def _wind_down(self, failed: List[ActionRecord]) -> None:
        if failed and not self._stop.is_set():
            reason = f"Action {failed[0].name} failed: {failed[0].reason}"
            final = "failed"
        else:
            reason, final = self._stop_reason, "stopped"
        self._set_state("stopping", reason)
        self._stop_all_running()
        for record in self.actions.values():
            if record.state == "pending":
                record.state, record.reason = "cancelled", "the experiment stopped before it started"
        self._set_state(final, reason)

    def _stop_all_running(self) -> None:
        for record in self.actions.values():
            record.stop.set()
        for thread in list(self._threads.values()):
            thread.join(_CANCEL_GRACE_REAL_S + 5)

    def _run_action(self, record: ActionRecord) -> None:
        record.state = "running"
        self.on_event(f"action {record.name} running")
        try:
            if record.action_id == "aws:fis:wait":
                stopped = self.clock.sleep(parse_duration(record.parameters["duration"]), record.stop)
                outcome = ("stopped", "Action stopped.") if stopped else ("completed", "")
            else:
                outcome = self._run_automation(record)
        except (DocumentError, TemplateError) as exc:
            outcome = ("failed", str(exc))
        except Exception as exc:  # noqa: BLE001 - reported as the action's failure reason
            outcome = ("failed", f"{type(exc).__name__}: {exc}")
        record.end = self.clock.now()
        record.state, record.reason = outcome
        self.on_event(f"action {record.name} {record.state}")

    def _run_automation(self, record: ActionRecord):
        where = f"action {record.name}"
        params = _document_parameters(where, record.parameters)
        arn = record.parameters["documentArn"]
        region = _arn_region(arn) or self.region
        document = self.document_loader(arn, region)
        execution = AutomationExecution(document, params, clock=self.clock,
                                        script_env=self.aws.env(region), region=region,
                                        service=self.automation)
        record.automation = execution
        execution.start()
        limit = record.parameters.get("maxDuration")
        deadline = record.start + parse_duration(limit) if limit else None
        while not execution.wait(_POLL_REAL_S):
            if record.stop.is_set():
                execution.cancel()
                execution.wait(_CANCEL_GRACE_REAL_S)
                return "stopped", f"Action stopped; automation {execution.execution_id} ended " \
                                  f"{execution.status}."
            if deadline is not None and self.clock.now() > deadline:
                execution.cancel()
                execution.wait(_CANCEL_GRACE_REAL_S)
                return "failed", f"Automation {execution.execution_id} did not finish within " \
                                 f"maxDuration {limit}; it was cancelled ({execution.status})."
        if execution.status != "Success":
            return "failed", f"Automation {execution.execution_id} ended {execution.status}: " \
                             f"{execution.failure_message[:1000]}"
        return "completed", ""

    # --- AWS: documents and alarms ------------------------------------------------------------
    def _document_from_ssm(self, arn: str, region: str) -> AutomationDocument:
        name = arn.split(":document/", 1)[-1]
        try:
            content = self.aws.client("ssm", region).get_document(
                Name=name, DocumentFormat="YAML")["Content"]
        except Exception as exc:  # botocore ClientError and connection errors alike
            raise TemplateError(f"document {name} ({arn}) cannot be read from the emulator in "
                                f"{region}: {exc}; deploy it first (deploy.sh --local)") from None
        return load_document(content, name=name)

    def _stop_alarms(self) -> List[Dict[str, str]]:
        alarms = []
        for condition in self.template.get("stopConditions") or []:
            if condition.get("source") != "aws:cloudwatch:alarm":
                continue
            arn = condition.get("value", "")
            name = arn.split(":alarm:", 1)[-1]
            region = _arn_region(arn) or self.region
            found = self._cloudwatch(region).describe_alarms(AlarmNames=[name])
            if not found["MetricAlarms"] and not found.get("CompositeAlarms"):
                raise TemplateError(f"stop condition alarm {arn} does not exist in {region}; "
                                    "FIS refuses such a template: create the alarm first")
            alarms.append({"arn": arn, "name": name, "region": region})
        return alarms

    def _poll_alarms(self, alarms: List[Dict[str, str]]) -> Optional[str]:
        real_now = self.clock.to_real(self.clock.now())
        if real_now - self._last_alarm_poll < _ALARM_POLL_REAL_S:
            return None
        self._last_alarm_poll = real_now
        return self._fired_alarm(alarms)

    def _cloudwatch(self, region: str) -> Any:
        if region not in self._clients:
            self._clients[region] = self.aws.client("cloudwatch", region)
        return self._clients[region]

    def _fired_alarm(self, alarms: List[Dict[str, str]]) -> Optional[str]:
        for alarm in alarms:
            found = self._cloudwatch(alarm["region"]).describe_alarms(
                AlarmNames=[alarm["name"]])
            states = [a["StateValue"] for a in found["MetricAlarms"] + found.get("CompositeAlarms", [])]
            if "ALARM" in states:
                return alarm["arn"]
        return None

    def _set_state(self, state: str, reason: str) -> None:
        self.state, self.reason = state, reason
        self.on_event(f"experiment {state}" + (f": {reason}" if reason else ""))

    def report(self) -> Optional[Dict[str, Any]]:
        """The template's experiment report configuration and the window a report covers
        (template seconds; None until the experiment has started, or without a configuration)."""
        window = _report_window(self.template, "<template>")
        if window is None:
            return None
        start = None if self.start_time is None else self.start_time - window["preExperimentDuration"]
        end = None if self.end_time is None else self.end_time + window["postExperimentDuration"]
        return {"configuration": self.template["experimentReportConfiguration"],
                "window": {"start": start, "end": end}}

    def summary(self) -> Dict[str, Any]:
        """A JSON-friendly record of the experiment and its actions (the report embeds it)."""
        return {"state": self.state, "reason": self.reason, "start": self.start_time,
                "end": self.end_time, "description": self.template.get("description", ""),
                "experimentReport": self.report(),
                "actions": {name: {"actionId": r.action_id, "state": r.state, "reason": r.reason,
                                   "start": r.start, "end": r.end,
                                   "automation": r.automation.summary() if r.automation else None}
                            for name, r in self.actions.items()}}


def _arn_region(arn: str) -> Optional[str]:
    parts = arn.split(":")
    return parts[3] if len(parts) > 4 and parts[0] == "arn" and parts[3] else None
