"""A local SSM Automation engine: runs a schemaVersion 0.3 document step by step.

moto stores SSM documents but runs no Automation executions, and the whole point of the local
experiment is to run the *real* document and the *real* handler. So this module does what SSM
does, with the semantics written down here rather than guessed at each call site:

- the document and its parameters are checked before any step runs, as
  StartAutomationExecution does (ssm_document.py);
- `{{ Name }}` is replaced by a parameter, `{{ Step.Output }}` by an earlier step's output,
  `{{ automation:EXECUTION_ID }}` and `{{ global:REGION|ACCOUNT_ID|DATE_TIME }}` by their values;
  a value that is exactly one reference keeps its type (an Integer stays an int);
- `aws:executeScript` runs the script in a fresh interpreter (`_script_host.py`) with the
  embedded AWS's endpoint in its environment, so its boto3 clients hit moto unchanged;
- `aws:sleep` sleeps its ISO-8601 `Duration` (or until `Timestamp`) in template time;
- after a success: `isEnd` ends, `nextStep` jumps, otherwise the next step in the list;
- after a failure (retried up to `maxAttempts`): `onFailure` `Abort` (default) ends Failed,
  `Continue` goes on, `step:Name` jumps there; a failed step with `isCritical` (default true)
  makes the whole execution Failed even when its failure path succeeds;
- `cancel()` from any thread stops the running step (the script's process is killed, a sleep
  is cut short) and follows the step's `onCancel`: `Abort` (default) ends Cancelled at once,
  `step:Name` runs the cancellation path from there, then ends Cancelled. "Automation runs the
  cancellation workflow for a maximum of two minutes" (onCancel, documented): the path is cut
  after 120 template seconds and the cut step is recorded as TimedOut;
- `aws:executeScript` with `Attachment`: the script is the attachment the document's `files:`
  section pins by SHA-256 (ssm_attachments.py), its Handler `file.function` (documented form)
  or a bare function name;
- `aws:loop` (for each, over `Iterators`, at most 100): its `Steps` run once per value, in
  order; `{{ Loop.CurrentIteratorValue }}` and `{{ Loop.CurrentIteration }}` resolve. An inner
  step's `onFailure: Continue` goes on (the execution still ends Failed if it is critical),
  `step:Name` leaves the loop for that main step, `Abort` fails the loop; its `onCancel:
  step:Name` leaves the loop on a cancel (documented: onCancel only inside loops);
- `aws:executeAwsApi` `ssm` `StartAutomationExecution` starts a NEW execution through the
  automation service (ssm_service.py): it is not part of this one, so it runs on after a cancel.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Union

from local_emulator.clock import Clock, parse_duration
from local_emulator.errors import AutomationFailed, DocumentError
from local_emulator.aws.ssm_attachments import AttachmentStore
from local_emulator.aws.ssm_document import (REFERENCE, SUPPORTED_ACTIONS, AutomationDocument,
                                         jump_target, load_document, resolve_parameters)

__all__ = ["AutomationDocument", "AutomationExecution", "StepExecution", "load_document",
           "run_automation", "SUPPORTED_ACTIONS"]

_HOST = Path(__file__).with_name("_script_host.py")
CANCEL_PATH_LIMIT_S = 120.0  # "a maximum of two minutes" for the cancellation workflow
MAX_ITERATIONS = 100  # aws:loop


@dataclass
class StepExecution:
    """One step's record, like SSM's StepExecution (times in template seconds)."""

    name: str
    action: str
    status: str = "Pending"
    start: Optional[float] = None
    end: Optional[float] = None
    inputs: Dict[str, Any] = field(default_factory=dict)
    outputs: Dict[str, Any] = field(default_factory=dict)
    payload: Any = None
    failure_message: str = ""
    attempts: int = 0
    log: str = ""
    iteration: Optional[int] = None  # the loop iteration of a step inside an aws:loop


class _Cancelled(Exception):
    """The running step was cancelled."""


class AutomationExecution:
    """One run of a document. `run()` blocks; `start()` runs it on a thread; `cancel()` any time."""

    def __init__(self, document: AutomationDocument, parameters: Mapping[str, Any], *,
                 clock: Optional[Clock] = None, script_env: Optional[Mapping[str, str]] = None,
                 region: str = "us-east-1", account_id: str = "123456789012",
                 python: str = sys.executable, service: Any = None,
                 attachments: Optional[AttachmentStore] = None) -> None:
        self.document = document
        self.parameters = resolve_parameters(document, parameters)
        self.clock = clock or Clock()
        self.script_env = dict(script_env or {})
        self.region = region
        self.account_id = account_id
        self.python = python
        self.service = service
        self.attachments = attachments or AttachmentStore.default()
        self.execution_id = str(uuid.uuid4())
        self._loops: Dict[str, Dict[str, Any]] = {}
        self.handed_off: List["AutomationExecution"] = []  # started by executeAwsApi
        self._cancel_deadline: Optional[float] = None
        self.status = "Pending"
        self.failure_message = ""
        self.steps: List[StepExecution] = []
        self.outputs: Dict[str, Any] = {}
        self.start_time: Optional[float] = None
        self.end_time: Optional[float] = None
        self._cancel = threading.Event()
        self._cancelling = False
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._process: Optional[subprocess.Popen] = None
        self._thread: Optional[threading.Thread] = None

    # --- control -----------------------------------------------------------------------------
    def start(self) -> "AutomationExecution":
        self._thread = threading.Thread(target=self.run, name=f"ssm-{self.execution_id[:8]}",
                                        daemon=True)
        self._thread.start()
        return self

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Block until the execution ends (True) or `timeout` real seconds pass (False)."""
        return self._done.wait(timeout)

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def cancel(self) -> None:
        """StopAutomationExecution: stop the running step and follow its onCancel path."""
        with self._lock:
            if self._cancelling:
                return  # the cancellation path runs to its end, as in SSM
            self._cancel.set()
            if self._process is not None and self._process.poll() is None:
                self._process.kill()

    # --- the engine --------------------------------------------------------------------------
    def run(self) -> "AutomationExecution":
        self.status, self.start_time = "InProgress", self.clock.now()
        try:
            self._run_from(0, cancelling=False)
        finally:
            self.end_time = self.clock.now()
            self._collect_document_outputs()
            self._done.set()
        return self

    def _run_from(self, index: Optional[int], cancelling: bool) -> None:
        failed_critical = False
        while index is not None:
            step = self.document.steps[index]
            if step["action"] == "aws:loop":
                record, inner = self._run_loop(step, cancelling)
                failed_critical = failed_critical or record.failed_inner_critical
                flow = inner or step  # a jump is the inner step's (the loop inherits it)
            else:
                record, flow = self._execute(step, cancelling), step
            if record.status == "TimedOut":  # the cancellation path ran out of its 2 minutes
                self.status = "Cancelled"
                return
            if record.status == "Cancelled":
                target = jump_target(self.document, flow, "onCancel")
                if target is not None and not cancelling:
                    with self._lock:  # the cancellation path itself must be allowed to run
                        self.status, self._cancelling = "Cancelling", True
                        self._cancel.clear()
                        self._cancel_deadline = self.clock.now() + CANCEL_PATH_LIMIT_S
                    self._run_from(self._index(target), cancelling=True)
                self.status = "Cancelled"
                return
            if record.status == "Failed":
                failed_critical = failed_critical or bool(flow.get("isCritical", True))
                self.failure_message = self.failure_message or \
                    f"Step {record.name} failed: {record.failure_message}"
                on_failure = str(flow.get("onFailure") or "Abort")
                if step.get("isEnd") and not on_failure.startswith("step:") \
                        or on_failure == "Abort":
                    break
                index = self._index(on_failure[5:]) if on_failure.startswith("step:") \
                    else self._following(index)
                continue
            # A cancel that arrives as a step finishes cancels the next step (it raises at once).
            index = None if step.get("isEnd") else (
                self._index(step["nextStep"]) if step.get("nextStep") else self._following(index))
        if cancelling:
            return
        self.status = "Failed" if failed_critical else "Success"

    def _index(self, name: str) -> int:
        return next(i for i, s in enumerate(self.document.steps) if s["name"] == name)

    def _following(self, index: int) -> Optional[int]:
        return index + 1 if index + 1 < len(self.document.steps) else None

    def _execute(self, step: Mapping[str, Any], cancelling: bool,
                 iteration: Optional[int] = None) -> StepExecution:
        record = StepExecution(step["name"], step["action"], status="InProgress",
                               start=self.clock.now(), iteration=iteration)
        self.steps.append(record)
        attempts = max(1, int(step.get("maxAttempts", 1)))
        try:
            record.inputs = self._resolve(step.get("inputs") or {})
            for attempt in range(1, attempts + 1):
                record.attempts = attempt
                if self._cancel.is_set() and not cancelling:
                    raise _Cancelled()
                if cancelling and self.clock.now() >= (self._cancel_deadline or float("inf")):
                    raise _CutOff()
                try:
                    self._act(step, record)
                    record.status = "Success"
                    break
                except (DocumentError, _StepFailed) as exc:
                    record.status, record.failure_message = "Failed", str(exc)
        except _Cancelled:
            record.status, record.failure_message = "Cancelled", "cancelled by StopAutomationExecution"
        except _CutOff:
            record.status = "TimedOut"
            record.failure_message = ("cut off: Automation runs the cancellation workflow for a "
                                      "maximum of two minutes")
        except DocumentError as exc:
            record.status, record.failure_message = "Failed", str(exc)
        record.end = self.clock.now()
        if record.status == "Success" and not record.outputs:
            record.outputs = _select_outputs(step, record.payload)
        return record

    def _run_loop(self, step: Mapping[str, Any], cancelling: bool):
        """One aws:loop: its steps per iterator value. Returns the loop's record and the inner
        step whose failure or cancel ended it (its onFailure/onCancel decide where to go)."""
        record = StepExecution(step["name"], step["action"], status="InProgress",
                               start=self.clock.now())
        record.failed_inner_critical = False
        self.steps.append(record)
        inputs = step.get("inputs") or {}
        try:
            values = self._resolve(inputs.get("Iterators"))
            if isinstance(values, str):
                values = json.loads(values) if values.strip().startswith("[") else [values]
            if not isinstance(values, list) or len(values) > MAX_ITERATIONS:
                raise DocumentError(f"step {step['name']}: Iterators must be a list of at most "
                                    f"{MAX_ITERATIONS} values (aws:loop), got {values!r:.200}")
        except DocumentError as exc:
            record.status, record.failure_message, record.end = "Failed", str(exc), self.clock.now()
            return record, None
        for number, value in enumerate(values, 1):
            self._loops[step["name"]] = {"CurrentIteratorValue": value, "CurrentIteration": number}
            for inner in inputs["Steps"]:
                done = self._execute(inner, cancelling, number)
                if done.status in ("Cancelled", "TimedOut"):
                    record.status, record.end = done.status, self.clock.now()
                    return record, inner
                if done.status == "Failed":
                    record.failed_inner_critical |= bool(inner.get("isCritical", True))
                    if str(inner.get("onFailure") or "Abort") == "Continue":
                        self.failure_message = self.failure_message or \
                            f"Step {inner['name']} failed: {done.failure_message}"
                        continue
                    record.status, record.end = "Failed", self.clock.now()
                    record.failure_message = done.failure_message
                    return record, inner
        record.status, record.end = "Success", self.clock.now()
        return record, None

    def _act(self, step: Mapping[str, Any], record: StepExecution) -> None:
        if step["action"] == "aws:sleep":
            self._sleep(record.inputs)
        elif step["action"] == "aws:executeAwsApi":
            record.payload = self._aws_api(step, record.inputs)
        elif step["action"] == "aws:executeAutomation":
            self._child_automation(step, record)
        else:
            record.payload, record.log = self._script(step, record.inputs)

    def _aws_api(self, step: Mapping[str, Any], inputs: Mapping[str, Any]) -> Dict[str, Any]:
        """The one API call the documents make: StartAutomationExecution, served locally."""
        if (inputs.get("Service"), inputs.get("Api")) != ("ssm", "StartAutomationExecution"):
            raise DocumentError(f"step {step['name']}: the local runner models aws:executeAwsApi "
                                "only for ssm StartAutomationExecution")
        if self.service is None:
            raise _StepFailed("StartAutomationExecution needs the emulator's automation service; "
                              "run the document through the FIS runner or an AutomationService")
        parameters = dict(inputs.get("Parameters") or {})
        if inputs.get("TargetLocations"):
            started = self.service.run_locations(str(inputs["DocumentName"]), parameters,
                                                 inputs["TargetLocations"], self.region,
                                                 threading.Event(), wait=False).records
            return {"AutomationExecutionId": started[0]["ExecutionId"] if started else "",
                    "Locations": started}
        started = self.service.start(str(inputs["DocumentName"]), parameters, self.region,
                                     env=self.script_env, account_id=self.account_id)
        self.handed_off.append(started)
        return {"AutomationExecutionId": started.execution_id}

    def _child_automation(self, step: Mapping[str, Any], record: StepExecution) -> None:
        """aws:executeAutomation: a child execution per location (or one, here), waited for.
        The step fails when more locations failed than TargetLocationMaxErrors allows."""
        if self.service is None:
            raise _StepFailed("aws:executeAutomation needs the emulator's automation service")
        inputs = record.inputs
        name, parameters = str(inputs["DocumentName"]), dict(inputs.get("RuntimeParameters") or {})
        if inputs.get("TargetLocations"):
            run = self.service.run_locations(name, parameters, inputs["TargetLocations"],
                                             self.region, self._cancel)
        else:
            run = self.service.run_here(name, parameters, self.region, self.account_id,
                                        self.script_env, self._cancel)
        done = run.records
        record.payload = {"Status": run.status, "ExecutionId": done[0]["ExecutionId"] if done else "",
                          "Output": [json.dumps(d) for d in done], "Locations": done}
        record.outputs = {"Status": run.status, "ExecutionId": record.payload["ExecutionId"],
                          "Output": record.payload["Output"]}
        if self._cancel.is_set():
            raise _Cancelled()
        if run.status != "Success":
            raise _StepFailed("; ".join(f"{d['Account']}/{d['Region']}: {d['Status']}: "
                                        f"{d['Failure'][:300]}" for d in run.failed))

    def _sleep(self, inputs: Mapping[str, Any]) -> None:
        if "Duration" in inputs:
            seconds = parse_duration(str(inputs["Duration"]))
        elif "Timestamp" in inputs:
            from chaos_layer.config import parse_utc_time  # same parser as the layer's expiry
            target = parse_utc_time(str(inputs["Timestamp"]))
            seconds = (target - self.clock.wall()).total_seconds()
        else:
            raise DocumentError("aws:sleep needs inputs.Duration (ISO-8601) or inputs.Timestamp")
        if self.clock.sleep(seconds, self._cancel):
            raise _Cancelled()

    def _script_source(self, step: Mapping[str, Any], inputs: Mapping[str, Any]):
        """(script text, file name for tracebacks, function name) of an executeScript step."""
        handler = str(inputs.get("Handler") or "")
        if not handler:
            raise DocumentError(f"step {step['name']}: aws:executeScript needs inputs.Handler")
        if inputs.get("Attachment"):
            name = str(inputs["Attachment"])
            content = self.attachments.get(name, self.document.digest(name), self.document.name)
            module, _, function = handler.rpartition(".")
            if module and module != Path(name).stem:
                raise DocumentError(f"step {step['name']}: Handler {handler!r} names module "
                                    f"{module!r}, but the attachment is {name}; write "
                                    f"{Path(name).stem}.FUNCTION")
            return content.decode("utf-8"), name, function
        if inputs.get("Script") is None:
            raise DocumentError(f"step {step['name']}: aws:executeScript needs inputs.Script or "
                                "inputs.Attachment")
        return inputs["Script"], "<aws:executeScript>", handler

    def _script(self, step: Mapping[str, Any], inputs: Mapping[str, Any]):
        script, filename, handler = self._script_source(step, inputs)
        request = {"script": script, "handler": handler, "filename": filename,
                   "events": inputs.get("InputPayload") or {},
                   "context": {"automation:EXECUTION_ID": self.execution_id,
                               "global:REGION": self.region, "global:ACCOUNT_ID": self.account_id}}
        timeout = float(step.get("timeoutSeconds") or 600)
        if self._cancelling and self._cancel_deadline is not None:  # the 2-minute path
            left = self.clock.to_real(self._cancel_deadline - self.clock.now())
            timeout = max(0.01, min(timeout, left))
        with tempfile.TemporaryDirectory(prefix="ssm-step-") as work:
            request_path, result_path = Path(work, "request.json"), Path(work, "result.json")
            request_path.write_text(json.dumps(request), encoding="utf-8")
            env = {**os.environ, **self.script_env, "AWS_REGION": self.region,
                   "AWS_DEFAULT_REGION": self.region}
            with self._lock:
                if self._cancel.is_set():
                    raise _Cancelled()
                self._process = subprocess.Popen(
                    [self.python, "-I", str(_HOST), str(request_path), str(result_path)],
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=work)
            try:
                log, _ = self._process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.communicate()
                if self._cancelling:
                    raise _CutOff() from None
                raise _StepFailed(f"Step timed out after {timeout:g} s (timeoutSeconds)") from None
            finally:
                with self._lock:
                    process, self._process = self._process, None
            if self._cancel.is_set() and process.returncode != 0:
                raise _Cancelled()
            text = log.decode("utf-8", "replace")
            if not result_path.exists():
                raise _StepFailed(f"the script's interpreter exited with code {process.returncode} "
                                  f"without a result: {text[-500:]}")
            result = json.loads(result_path.read_text(encoding="utf-8"))
        if not result["ok"]:
            raise _StepFailed(f"{result['error_type']}: {result['error']}\n{result['traceback']}")
        return result["payload"], text

    # --- references and outputs ----------------------------------------------------------------
    def _resolve(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: self._resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._resolve(v) for v in value]
        if not isinstance(value, str):
            return value
        whole = REFERENCE.fullmatch(value.strip())
        if whole:
            return self._lookup(whole.group(1))
        return REFERENCE.sub(lambda m: _as_text(self._lookup(m.group(1))), value)

    def _lookup(self, name: str) -> Any:
        if name in self.parameters:
            return self.parameters[name]
        fixed = {"global:REGION": self.region, "global:ACCOUNT_ID": self.account_id,
                 "global:AWS_PARTITION": "aws",
                 "global:DATE_TIME": self.clock.wall().strftime("%Y-%m-%d_%H.%M.%S"),
                 "automation:EXECUTION_ID": self.execution_id,
                 "automation:AUTOMATION_EXECUTION_ID": self.execution_id}
        if name in fixed:
            return fixed[name]
        step_name, _, output = name.partition(".")
        if output in self._loops.get(step_name, {}):
            return self._loops[step_name][output]
        for record in reversed(self.steps):
            if record.name == step_name and output in record.outputs:
                return record.outputs[output]
        raise DocumentError(f"{{{{ {name} }}}} has no value yet: step {step_name} has not produced "
                            f"output {output!r} (did it fail or not run?)")

    def _collect_document_outputs(self) -> None:
        for name in self.document.outputs:
            step_name, _, output = name.partition(".")
            for record in reversed(self.steps):
                if record.name == step_name and output in record.outputs:
                    self.outputs[name] = record.outputs[output]
                    break

    def step_record(self, name: str) -> Optional[StepExecution]:
        """The last execution of step `name` (None if it never ran)."""
        return next((r for r in reversed(self.steps) if r.name == name), None)

    def summary(self) -> Dict[str, Any]:
        """A JSON-friendly record (the report embeds it)."""
        return {"execution_id": self.execution_id, "document": self.document.name,
                "status": self.status, "failure_message": self.failure_message,
                "start": self.start_time, "end": self.end_time, "outputs": self.outputs,
                "steps": [{"name": r.name, "action": r.action, "status": r.status, "start": r.start,
                           "end": r.end, "attempts": r.attempts, "iteration": r.iteration,
                           "failure_message": r.failure_message[:2000],
                           # the child executions a step started in each account and Region
                           # (aws:executeAutomation, or a hand-off with TargetLocations)
                           "locations": _locations(r.payload)} for r in self.steps],
                "handed_off": [e.summary() for e in self.handed_off]}


def _locations(payload: Any) -> List[Dict[str, Any]]:
    """Account, Region, ExecutionId and Status of each child a step's payload records."""
    found = payload.get("Locations") if isinstance(payload, dict) else None
    return [{k: child.get(k) for k in ("Account", "Region", "ExecutionId", "Status")}
            for child in found or []]


class _StepFailed(Exception):
    """The step's action failed (message is the step's FailureMessage)."""


class _CutOff(Exception):
    """The cancellation path ran out of its two minutes."""


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def _select_outputs(step: Mapping[str, Any], payload: Any) -> Dict[str, Any]:
    """Apply each declared output's Selector (`$.Payload.a.b[0]`) to the step's result."""
    outputs: Dict[str, Any] = {}
    for output in step.get("outputs") or []:
        value = _select({"Payload": payload}, output.get("Selector", ""))
        if value is not None:
            outputs[output["Name"]] = value
    return outputs


def _select(root: Any, selector: str) -> Any:
    if not selector.startswith("$"):
        return None
    value = root
    for key, index in re.findall(r"\.([A-Za-z0-9_\-]+)|\[(\d+)\]", selector[1:]):
        try:
            value = value[key] if key else value[int(index)]
        except (KeyError, IndexError, TypeError):
            return None
    return value


def run_automation(document: Union[AutomationDocument, str, Path, Mapping[str, Any]],
                   parameters: Mapping[str, Any], *, raise_on_failure: bool = False,
                   **options: Any) -> AutomationExecution:
    """Run a document to the end (blocking); options as for AutomationExecution."""
    if not isinstance(document, AutomationDocument):
        document = load_document(document)
    execution = AutomationExecution(document, parameters, **options).run()
    if raise_on_failure and execution.status != "Success":
        raise AutomationFailed(f"automation {execution.execution_id} of {document.name} ended "
                               f"{execution.status}: {execution.failure_message}")
    return execution
