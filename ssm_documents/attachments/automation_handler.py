# Rendered from automation_handler.py by ssm_documents/render.py: the file as written, with the
# layer's configuration inlined. Edit that file and re-render.
"""Attach and detach the chaos layer on Lambda functions, exactly reversibly.

One file, three uses:
- the script of every `aws:executeScript` step of `ssm_documents/*.yaml`: the documents carry it
  as their one attachment (`ssm_documents/attachments/automation_handler.py`, this file with the
  layer's variable names inlined by `ssm_documents/render.py`), and their steps call `plan` (which
  functions, in how many batches) and `apply` (one batch), so no step is capped by the 600 s an
  `aws:executeScript` step may run;
- an importable module: `resolve_targets`, `attach`, `detach`, `preview`, `plan`, `apply`;
- a command line: `python automation_handler.py attach|detach|preview --FunctionName f ...`.

Why it is exactly reversible: one `UpdateFunctionConfiguration` per function both makes the
change and records, in `CHAOS_RESTORE_STATE`, what it replaced (each touched variable's prior
value or absence, the alias's prior version and routing). Detach reads that record and reverts
only those changes, so whatever else people changed during the experiment is kept.

Why one long file: an `aws:executeScript` attachment is one `.py` file or a `.zip`, and a `.zip`
is what a reviewer cannot read in the SSM console. The sections below (errors, parameters,
AWS pacing, targets, plans, applying, public operations) are what would otherwise be modules,
and each depends only on the ones above it.
"""
# No `from __future__ import annotations`: SSM execs this text outside sys.modules, where
# dataclasses cannot resolve string annotations.

import argparse
import dataclasses
import datetime
import hashlib
import json
import math
import os
import random
import re
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

# --- chaos_layer.config, inlined by ssm_documents/render.py from layer/settings.json
import datetime as _dt
ACCEPTED_RUNTIMES = ('nodejs20.x', 'nodejs22.x', 'nodejs24.x', 'python3.9', 'python3.10', 'python3.11', 'python3.12', 'python3.13', 'python3.14', 'java8.al2', 'java11', 'java17', 'java21', 'java25', 'dotnet8', 'dotnet10', 'ruby3.2', 'ruby3.3', 'ruby3.4', 'ruby4.0')
AUTOMATION_VARIABLES = ('CHAOS_FAULT_TYPE', 'CHAOS_LATENCY_MS', 'CHAOS_LATENCY_JITTER_MS', 'CHAOS_INVOCATION_PERCENTAGE', 'CHAOS_PREVENT_EXECUTION', 'CHAOS_ERROR_TYPE', 'CHAOS_ERROR_MESSAGE', 'CHAOS_RESPONSE_STATUS_CODE', 'CHAOS_RESPONSE_BODY', 'CHAOS_EXPIRES_AT', 'CHAOS_EXPERIMENT_ID', 'CHAOS_ORIGINAL_EXEC_WRAPPER', 'CHAOS_RESTORE_STATE')
DEFAULTS = {'CHAOS_ERROR_TYPE': 'ChaosInjectedError', 'CHAOS_ERROR_MESSAGE': 'Error injected by the chaos layer', 'CHAOS_METRICS_NAMESPACE': 'LambdaChaos'}
ERROR_MESSAGE = 'CHAOS_ERROR_MESSAGE'
ERROR_TYPE = 'CHAOS_ERROR_TYPE'
EXEC_WRAPPER = 'AWS_LAMBDA_EXEC_WRAPPER'
EXPERIMENT_ID = 'CHAOS_EXPERIMENT_ID'
EXPIRES_AT = 'CHAOS_EXPIRES_AT'
FAULT_TYPE = 'CHAOS_FAULT_TYPE'
FAULT_TYPES = ('latency', 'error', 'response')
INVOCATION_PERCENTAGE = 'CHAOS_INVOCATION_PERCENTAGE'
LATENCY_JITTER_MS = 'CHAOS_LATENCY_JITTER_MS'
LATENCY_MS = 'CHAOS_LATENCY_MS'
ORIGINAL_EXEC_WRAPPER = 'CHAOS_ORIGINAL_EXEC_WRAPPER'
OS_ONLY_RUNTIMES = ('provided', 'provided.al2', 'provided.al2023')
PREVENT_EXECUTION = 'CHAOS_PREVENT_EXECUTION'
RESPONSE_BODY = 'CHAOS_RESPONSE_BODY'
RESPONSE_STATUS_CODE = 'CHAOS_RESPONSE_STATUS_CODE'
RESTORE_STATE = 'CHAOS_RESTORE_STATE'
WRAPPER_PATH = '/opt/lambda-chaos/wrapper'
def format_utc_time(value: _dt.datetime) -> str:
    """The form the automation writes to CHAOS_EXPIRES_AT: second precision, `Z`."""
    return value.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
def parse_bool(raw: str) -> bool:
    """`true`/`false` in any case (also 1/0, yes/no), as SSM and the CLI may send them."""
    value = raw.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise ValueError("expected true or false")
def runtime_language(runtime: str) -> str:
    """'nodejs22.x' -> 'nodejs', 'java8.al2' -> 'java': one binary serves every version."""
    return re.match(r"[a-z]*", runtime).group()

__all__ = [
    "AutomationError", "InvalidParameter", "TargetNotFound", "TargetRefused", "AwsCallFailed",
    "RollbackIncomplete", "PARAMETERS", "Parameter", "Params", "parse_parameters", "Aws",
    "RateLimiter", "resolve_targets", "attach", "detach", "preview", "handler", "fit_output",
    "environment_size", "main", "plan", "apply", "batch_of",
]

MAX_LAYERS = 5                   # Lambda's limit of layers per function
MAX_ENVIRONMENT_BYTES = 4096     # Lambda's 4 KB limit, measured on the JSON of the Variables map
DEFAULT_REQUESTS_PER_SECOND = 5.0  # Lambda allows ~15/s per account and region, shared by all
DEFAULT_CONCURRENCY = 4
RECORD_VERSION = 1
MAX_OUTPUT_BYTES = 80_000  # under SSM's 100 KB cap on a step's output
# An aws:executeScript step is killed after 600 s; keep a margin. The local twin's tests set the
# variable to a few seconds, so that a handful of functions makes several batches.
STEP_BUDGET_ENV = "CHAOS_AUTOMATION_STEP_BUDGET_S"
STEP_BUDGET_S = float(os.environ.get(STEP_BUDGET_ENV) or 540.0)
CALLS_PER_TARGET = {False: 4, True: 7}  # measured by bench/bench_automation.py (alias: True)
MAX_BATCHES = 100  # aws:loop runs at most 100 iterations
BATCH_FILL = 0.8   # a batch is planned at 80 % of a step's budget: hash buckets are not all equal
MAX_TARGETS_CEILING = 10_000
_RETRYABLE = frozenset({"ThrottlingException", "TooManyRequestsException", "Throttling",
                        "RequestLimitExceeded", "ResourceConflictException", "ServiceException",
                        "InternalFailure", "ServiceUnavailable"})
# Where a conflict is an answer, not a transient state (a version another alias uses).
_THROTTLED = _RETRYABLE - {"ResourceConflictException"}


# --- Errors ------------------------------------------------------------------------------------

class AutomationError(Exception):
    """Base of every error this automation raises; the message says what to do."""


class InvalidParameter(AutomationError):
    """A parameter is missing or malformed; raised before any AWS call changes anything."""


class TargetNotFound(AutomationError):
    """A named function, its alias, the layer version or any tagged function does not exist."""


class TargetRefused(AutomationError):
    """A target cannot safely take (or give back) the layer; nothing was changed."""


class AwsCallFailed(AutomationError):
    """An AWS call failed after retries; carries the AWS error code."""

    def __init__(self, message: str, code: str = ""):
        super().__init__(message)
        self.code = code


class RollbackIncomplete(AutomationError):
    """Attach failed and undoing it failed too; run the detach (ChaosMode=DISABLED) again."""


# --- Parameters --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Parameter:
    """One document parameter: the SSM type, default (None = required) and what it accepts.

    `accepts` says in words what `allowed_pattern` (or `allowed_values`) admits: a refusal
    quotes it, because a person cannot act on a regular expression."""

    name: str
    type: str
    default: Any
    description: str
    allowed_values: Tuple[str, ...] = ()
    allowed_pattern: str = ""
    accepts: str = ""


_LAYER_EXAMPLE = "arn:aws:lambda:us-east-1:123456789012:layer:lambda-chaos:3"
_ISO_DURATION = r"P(?=\d|T\d)(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?"
PARAMETERS: Tuple[Parameter, ...] = (
    Parameter("FunctionName", "String", "",
              "Functions to target: names or ARNs, comma-separated. Leave empty to target by "
              "tag (TargetTagKey).", allowed_pattern=r"^[A-Za-z0-9_:,\- ]*$",
              accepts="function names or ARNs separated by commas (letters, digits, -, _, :), "
                      "e.g. orders,billing"),
    Parameter("LayerArn", "String", "",
              "Version ARN of the chaos layer, e.g. arn:aws:lambda:us-east-1:123456789012:layer:"
              "lambda-chaos:3. Required to attach.",
              allowed_pattern=r"^$|^arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\d{12}:layer:"
                              r"[a-zA-Z0-9_-]+:\d+$|^[a-zA-Z0-9_-]{1,140}$",
              accepts="a layer version ARN, arn:aws:lambda:REGION:ACCOUNT:layer:NAME:VERSION, "
                      "e.g. " + _LAYER_EXAMPLE + " (the stack output LayerArn), or a layer "
                      "name such as lambda-chaos-layer (its newest version in the function's "
                      "own account and region)"),
    Parameter("AutomationAssumeRole", "String", "",
              "ARN of the IAM role Automation assumes to change the functions.",
              allowed_pattern=r"^$|^arn:aws[a-zA-Z-]*:iam::\d{12}:role/[\w+=,.@/-]+$",
              accepts="an IAM role ARN, arn:aws:iam::ACCOUNT:role/NAME (the stack output "
                      "AutomationRoleArn)"),
    Parameter("ChaosMode", "String", "ENABLED",
              "ENABLED attaches the layer and starts the fault; DISABLED detaches it and puts "
              "back exactly what attach changed.", allowed_values=("ENABLED", "DISABLED"),
              accepts="ENABLED (attach) or DISABLED (detach), in any case"),
    Parameter("AliasName", "String", "",
              "Optional alias (e.g. live) to point at a new version carrying the fault; its "
              "previous version and weighted routing are restored on detach.",
              allowed_pattern=r"^$|^(?![0-9]+$)[a-zA-Z0-9_-]{1,128}$",
              accepts="an alias name: 1 to 128 letters, digits, - or _, not only digits (e.g. "
                      "live)"),
    Parameter("TargetTagKey", "String", "",
              "Target every function with this tag key (instead of FunctionName).",
              allowed_pattern=r"^$|^[\w .:/=+@-]{1,128}$",
              accepts="a tag key of 1 to 128 letters, digits, spaces or _ . : / = + @ -"),
    Parameter("TargetTagValue", "String", "",
              "Tag value the tagged functions must have; empty means any value.",
              allowed_pattern=r"^[\w .:/=+@-]{0,256}$",
              accepts="a tag value of up to 256 letters, digits, spaces or _ . : / = + @ -"),
    Parameter("TargetSelection", "String", "ALL",
              "Which of the matching functions to attach: ALL, COUNT(n) or PERCENT(n), like FIS "
              "target selection. Detach always covers every attached match.",
              allowed_pattern=r"^(ALL|COUNT\([1-9][0-9]*\)|PERCENT\(([1-9][0-9]?|100)\))$",
              accepts="ALL, COUNT(n) with n a whole number from 1, or PERCENT(n) with n a "
                      "whole number from 1 to 100, e.g. PERCENT(50)"),
    Parameter("FaultType", "String", "latency",
              "latency delays invocations; error fails them; response replaces the response.",
              allowed_values=FAULT_TYPES),
    Parameter("LatencyMilliseconds", "Integer", 1000,
              "Delay added to each faulted invocation, in ms (0-900000; FaultType latency)."),
    Parameter("LatencyJitterMilliseconds", "Integer", 0,
              "Random extra delay of 0 to this many ms (0-900000; FaultType latency)."),
    Parameter("InvocationPercentage", "String", "100",
              "Share of invocations that get the fault, 0-100 (decimals allowed).",
              allowed_pattern=r"^(100(\.0+)?|[0-9]{1,2}(\.[0-9]+)?)$",
              accepts="a number from 0 to 100 (decimals allowed)"),
    Parameter("PreventExecution", "Boolean", False,
              "error and response faults: answer without running the function's handler."),
    Parameter("ErrorType", "String", DEFAULTS[ERROR_TYPE],
              "errorType of the injected error (FaultType error).",
              allowed_pattern=r"^[A-Za-z0-9_.:-]{1,128}$",
              accepts="1 to 128 letters, digits or _ . : - (e.g. ChaosInjectedError)"),
    Parameter("ErrorMessage", "String", DEFAULTS[ERROR_MESSAGE],
              "errorMessage of the injected error (FaultType error).",
              allowed_pattern=r"^[^\r\n]{0,1024}$", accepts="one line of at most 1024 characters"),
    Parameter("ResponseStatusCode", "Integer", 500,
              "statusCode of the replacement response, 100-599 (FaultType response)."),
    Parameter("ResponseBody", "String", "",
              "body of the replacement response (FaultType response), at most 2048 characters.",
              allowed_pattern=r"^[\s\S]{0,2048}$", accepts="at most 2048 characters"),
    Parameter("Duration", "String", "",
              "ISO-8601 duration (e.g. PT10M): the layer stops injecting after this long even if "
              "never detached. Empty: no expiry.", allowed_pattern=rf"^$|^{_ISO_DURATION}$",
              accepts="an ISO-8601 duration of days, hours, minutes and seconds, longer than "
                      "zero, e.g. PT10M, PT1H30M or P1D (not weeks, months or years; empty: no "
                      "expiry)"),
    Parameter("MaxTargets", "Integer", 50,
              "Blast-radius guard: attach refuses to touch more functions than this (1-10000)."),
    Parameter("OnlyThisExperiment", "Boolean", False,
              "Detach: undo only the experiment these fault parameters attach, and leave a "
              "function in another experiment as it is (the experiment's clean-up sets it)."),
    Parameter("RequestsPerSecond", "Integer", int(DEFAULT_REQUESTS_PER_SECOND),
              "Lambda calls per second for the whole run, retries and waits included (1-10): "
              "Lambda allows about 15 per account and region, shared with every other caller."),
    Parameter("DryRun", "Boolean", False,
              "true: list the targets and the exact changes per function, change nothing."),
)
_BY_NAME = {p.name: p for p in PARAMETERS}
ONLY_THIS_EXPERIMENT = "OnlyThisExperiment"
# Not document parameters: the documents' steps pass them from the Plan step to each batch.
BATCH, DIGEST, EXPIRES = "Batch", "Digest", "ExpiresAt"


@dataclass(frozen=True)
class Params:
    """Every parameter, parsed and checked; built by `parse_parameters`."""

    function_names: Tuple[str, ...]
    layer_arn: str
    chaos_mode: str
    alias_name: str
    tag_key: str
    tag_value: str
    selection: str
    fault_type: str
    latency_ms: int
    latency_jitter_ms: int
    invocation_percentage: str
    prevent_execution: bool
    error_type: str
    error_message: str
    response_status_code: int
    response_body: str
    duration: Optional[datetime.timedelta]
    max_targets: int
    dry_run: bool
    only_this_experiment: bool = False
    requests_per_second: int = int(DEFAULT_REQUESTS_PER_SECOND)


def parse_parameters(events: Mapping[str, Any], preview: bool = False) -> Params:
    """Parse parameters as SSM types them (int, bool, list) or as strings (FIS, CLI).

    An optional parameter that is absent, None or "" takes its default. Needs no region and
    no AWS call, so bad input is reported first. `preview` only words what a missing LayerArn
    is needed for. Raises InvalidParameter naming the parameter, what is accepted (in words)
    and the value given.
    """
    unknown = sorted(set(events) - set(_BY_NAME))
    if unknown:
        raise InvalidParameter(f"unknown parameter(s) {', '.join(unknown)}; accepted: "
                               f"{', '.join(_BY_NAME)}")
    raw = {p.name: _raw(events.get(p.name)) for p in PARAMETERS}
    text = {name: _text(name, value) for name, value in raw.items()}
    for p in PARAMETERS:
        if p.allowed_values and text[p.name]:
            text[p.name] = _enumerated(p, text[p.name])
        if p.allowed_pattern and p.type == "String" and text[p.name] and \
                not re.match(p.allowed_pattern, text[p.name]):
            raise InvalidParameter(_must(p.name, p.accepts, text[p.name]) +
                                   _did_you_mean(p.name, text[p.name]))
    s = {p.name: text[p.name] or (p.default if p.type == "String" else "") for p in PARAMETERS}
    names = tuple(_check_identifier(n.strip()) for n in s["FunctionName"].split(",")
                  if n.strip())
    if names and s["TargetTagKey"]:
        raise InvalidParameter("give FunctionName or TargetTagKey, not both (FunctionName="
                               f"{s['FunctionName']!r}, TargetTagKey={s['TargetTagKey']!r})")
    if not names and not s["TargetTagKey"]:
        raise InvalidParameter("no target: give FunctionName (names or ARNs, comma-separated) "
                               "or TargetTagKey (and TargetTagValue)")
    if s["ChaosMode"] == "ENABLED" and not s["LayerArn"]:
        if preview or _boolean(raw, "DryRun"):
            raise InvalidParameter(
                "a preview of attach needs LayerArn: it reads that layer version to check each "
                "function's runtime and architecture against it, as attach would; give the "
                f"layer's version ARN, e.g. {_LAYER_EXAMPLE} (the stack output LayerArn), or "
                "ChaosMode=DISABLED to preview a detach")
        raise InvalidParameter("LayerArn is required to attach: pass the layer's version ARN, "
                               f"e.g. {_LAYER_EXAMPLE} (the stack output LayerArn)")
    return Params(
        function_names=names, layer_arn=s["LayerArn"], chaos_mode=s["ChaosMode"],
        alias_name=s["AliasName"], tag_key=s["TargetTagKey"], tag_value=s["TargetTagValue"],
        selection=s["TargetSelection"], fault_type=s["FaultType"],
        latency_ms=_integer(raw, "LatencyMilliseconds", 0, 900_000),
        latency_jitter_ms=_integer(raw, "LatencyJitterMilliseconds", 0, 900_000),
        invocation_percentage=_percentage(s["InvocationPercentage"]),
        prevent_execution=_boolean(raw, "PreventExecution"),
        error_type=s["ErrorType"], error_message=s["ErrorMessage"],
        response_status_code=_integer(raw, "ResponseStatusCode", 100, 599),
        response_body=s["ResponseBody"], duration=_duration(s["Duration"]),
        max_targets=_integer(raw, "MaxTargets", 1, MAX_TARGETS_CEILING),
        dry_run=_boolean(raw, "DryRun"),
        only_this_experiment=_boolean(raw, "OnlyThisExperiment"),
        requests_per_second=_integer(raw, "RequestsPerSecond", 1, 10))


def _must(name: str, accepts: str, value: Any) -> str:
    """The one shape of a refused value: what is allowed, in words, then what was given."""
    return f"{name} must be {accepts}, got {value!r}"


def _enumerated(p: Parameter, text: str) -> str:
    """The allowed value `text` names in any case (ENABLED for 'enabled'); refuse others."""
    match = next((v for v in p.allowed_values if v.lower() == text.lower()), None)
    if match is None:
        raise InvalidParameter(_must(p.name, p.accepts or "one of " + ", ".join(p.allowed_values),
                                     text))
    return match


_SHORTHAND = re.compile(r"(\d+)\s*(?:(d)(?:ays?)?|(h)(?:(?:ou)?rs?)?|(m)(?:in(?:ute)?s?)?|"
                        r"(s)(?:ec(?:ond)?s?)?)", re.I)  # 10m, 90 s, 2 hours, 1day; not months


def _did_you_mean(name: str, text: str) -> str:
    """For a Duration written the everyday way (10m, 2 hours, pt10m), its ISO-8601 spelling."""
    if name != "Duration":
        return ""
    if re.fullmatch(_ISO_DURATION, text.upper()):
        return f"; did you mean {text.upper()}?"
    match = _SHORTHAND.fullmatch(text)
    if not match:
        return ""
    unit = next(g for g in match.groups()[1:] if g).upper()
    return f"; did you mean P{'' if unit == 'D' else 'T'}{int(match.group(1))}{unit}?"


def _raw(value: Any) -> Any:
    """None, "" and [] all mean 'not given'."""
    if value is None or (isinstance(value, (str, list, tuple)) and len(value) == 0):
        return None
    return value


def _text(name: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):  # StringList, or FunctionName given as a list
        return ",".join(str(v).strip() for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value).strip()
    raise InvalidParameter(_must(name, "a string", value) + f" ({type(value).__name__})")


def _integer(raw: Mapping[str, Any], name: str, low: int, high: int) -> int:
    value = raw[name]
    if value is None:
        return int(_BY_NAME[name].default)
    number: Optional[int] = None
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        number = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    if number is None or not low <= number <= high:
        raise InvalidParameter(_must(name, f"a whole number from {low} to {high}", value))
    return number


def _boolean(raw: Mapping[str, Any], name: str) -> bool:
    value = raw[name]
    if value is None:
        return bool(_BY_NAME[name].default)
    if isinstance(value, bool):
        return value
    try:
        return parse_bool(str(value))
    except ValueError:
        raise InvalidParameter(_must(name, "true or false", value)) from None


def _percentage(text: str) -> str:
    """Keep the user's spelling (e.g. '12.5'): it is what the layer reads back."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if math.isnan(value) or not 0 <= value <= 100:
        raise InvalidParameter(_must("InvocationPercentage",
                                     _BY_NAME["InvocationPercentage"].accepts, text))
    return text


def _duration(text: str) -> Optional[datetime.timedelta]:
    if not text:
        return None
    match = re.fullmatch(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?", text)
    if not match or not any(match.groups()):
        raise InvalidParameter(_must("Duration", _BY_NAME["Duration"].accepts, text) +
                               _did_you_mean("Duration", text))
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    try:
        duration = datetime.timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
        datetime.datetime.now(datetime.timezone.utc) + duration  # the expiry must be a date
    except OverflowError:
        raise InvalidParameter(f"Duration={text!r} is too long to be an expiry time; give e.g. "
                               "PT10M, or leave it empty for no expiry") from None
    if not duration:  # a zero expiry would read as "no expiry" and the fault would never end
        raise InvalidParameter(f"Duration={text!r} is zero; give e.g. PT10M, or leave it empty "
                               "for no expiry")
    return duration


# --- AWS: one rate limit, retries, waits ---------------------------------------------------------

class RateLimiter:
    """Spaces calls evenly: every call of one run, waiter polls included, takes one slot.

    Lambda's control plane allows about 15 requests/s per account and region, shared with every
    other caller, so one run must stay well under it whatever its concurrency.
    """

    def __init__(self, per_second: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        if not per_second > 0:
            raise InvalidParameter(_must("--max-requests-per-second", "a number above 0",
                                         per_second))
        self.interval = 0.0 if math.isinf(per_second) else 1.0 / per_second
        self._clock, self._sleep = clock, sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            self._sleep(slot - now)

    def before_call(self, **_: Any) -> None:
        """botocore `before-parameter-build` hook (every API call, waiter polls included)."""
        self.acquire()


class Aws:
    """The AWS side of one run: the clients, one shared rate limit, retries with jittered
    backoff, and waits for `LastUpdateStatus` with boto3's waiters."""

    def __init__(self, lambda_client: Any, tagging_client: Any = None, *,
                 max_requests_per_second: float = DEFAULT_REQUESTS_PER_SECOND,
                 concurrency: int = DEFAULT_CONCURRENCY, max_attempts: int = 8,
                 backoff_base_s: float = 0.25, backoff_cap_s: float = 8.0,
                 poll_delay_s: int = 1, max_polls: int = 300, tag_page_size: int = 100,
                 sleep: Callable[[float], None] = time.sleep):
        if concurrency < 1:
            raise InvalidParameter(_must("--concurrency", "a whole number from 1", concurrency))
        self.lambda_ = lambda_client
        self.tagging = tagging_client
        self.limiter = RateLimiter(max_requests_per_second, sleep=sleep)
        self.concurrency = concurrency
        self.max_attempts = max_attempts
        self.backoff_base_s, self.backoff_cap_s = backoff_base_s, backoff_cap_s
        self.poll_delay_s, self.max_polls = poll_delay_s, max_polls
        self.tag_page_size = tag_page_size
        self._sleep = sleep
        for client in (lambda_client, tagging_client):
            if client is not None:
                client.meta.events.register("before-parameter-build", self.limiter.before_call)

    @classmethod
    def create(cls, region: Optional[str] = None, session: Any = None,
               endpoint_url: Optional[str] = None, **options: Any) -> "Aws":
        """Clients with botocore's own retries off: this class retries, through the limiter.
        `endpoint_url` points both clients elsewhere (the local experiment's moto server)."""
        import boto3  # imported here so that parsing and planning work without boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError, NoRegionError
        config = Config(retries={"total_max_attempts": 1}, connect_timeout=10, read_timeout=60)
        extra = {"endpoint_url": endpoint_url} if endpoint_url else {}
        try:
            session = session or boto3.session.Session(region_name=region)
            clients = (session.client("lambda", config=config, **extra),
                       session.client("resourcegroupstaggingapi", config=config, **extra))
        except NoRegionError:
            raise InvalidParameter("no AWS region: pass --region or set AWS_REGION (e.g. "
                                   "us-east-1)") from None
        except BotoCoreError as exc:  # a bad region name, an unknown profile, ...
            raise InvalidParameter(f"cannot create the AWS clients: {exc}; check --region (a "
                                   "region name such as us-east-1) and AWS_PROFILE") from None
        return cls(*clients, **options)

    @property
    def region(self) -> str:
        return self.lambda_.meta.region_name

    def backoff(self, attempt: int) -> None:
        """Full jitter: a random wait up to base·2^attempt, so parallel callers spread out."""
        self._sleep(random.uniform(0, min(self.backoff_cap_s, self.backoff_base_s * 2 ** attempt)))

    def call(self, operation: str, retryable: frozenset = _RETRYABLE,
             **kwargs: Any) -> Dict[str, Any]:
        """Call a Lambda API, retrying throttling and conflicts; wrap the final error."""
        return self._call(self.lambda_, operation, kwargs, retryable)

    def call_tagging(self, operation: str, **kwargs: Any) -> Dict[str, Any]:
        if self.tagging is None:
            raise InvalidParameter("targeting by tag needs a Resource Groups Tagging API client")
        return self._call(self.tagging, operation, kwargs, _RETRYABLE)

    def _call(self, client: Any, operation: str, kwargs: Dict[str, Any],
              retryable: frozenset) -> Dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError
        subject = kwargs.get("FunctionName") or kwargs.get("LayerName") or ""
        for attempt in range(self.max_attempts):
            try:
                return getattr(client, operation)(**kwargs)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                message = exc.response.get("Error", {}).get("Message", "")
                if code in retryable and attempt + 1 < self.max_attempts:
                    self.backoff(attempt)
                    continue
                raise AwsCallFailed(f"{operation}({subject}) failed: {code}: {message}",
                                    code) from None
            except BotoCoreError as exc:
                if attempt + 1 < self.max_attempts:
                    self.backoff(attempt)
                    continue
                raise AwsCallFailed(f"{operation}({subject}) failed: {exc}",
                                    type(exc).__name__) from None
        raise AssertionError("unreachable")

    def wait(self, waiter_name: str, function: str, **kwargs: Any) -> None:
        """Wait with a boto3 waiter; a throttled poll restarts the wait instead of failing it."""
        from botocore.exceptions import WaiterError
        # boto3's waiter polls at once, when an update is nearly always still InProgress;
        # one delay first usually saves that call.
        self._sleep(self.poll_delay_s)
        for attempt in range(self.max_attempts):
            try:
                self.lambda_.get_waiter(waiter_name).wait(
                    FunctionName=function,
                    WaiterConfig={"Delay": self.poll_delay_s, "MaxAttempts": self.max_polls},
                    **kwargs)
                return
            except WaiterError as exc:
                last = exc.last_response or {}
                code = last.get("Error", {}).get("Code", "")
                if code in _RETRYABLE and attempt + 1 < self.max_attempts:
                    self.backoff(attempt)
                    continue
                config = last.get("Configuration", last)
                status = config.get("LastUpdateStatus") or config.get("State") or code
                reason = (config.get("LastUpdateStatusReason") or config.get("StateReason")
                          or last.get("Error", {}).get("Message") or str(exc))
                raise AwsCallFailed(f"{function}: waiting for the update ended in {status}: "
                                    f"{reason}", code or str(status)) from None


# --- Targets -------------------------------------------------------------------------------------

def resolve_targets(params: Params, aws: Aws, experiment_id: str = "") -> List[str]:
    """Function names/ARNs to act on: the explicit list, or the tagged functions, then the
    selection (attach only; detach covers every match).

    The random pick of COUNT(n)/PERCENT(n) is seeded with the experiment id, so running the
    same attach twice picks the same functions (and the second run changes nothing).
    """
    if params.function_names:
        found = list(dict.fromkeys(_check_identifier(n, aws.region) for n in params.function_names))
    else:
        tag_filter: Dict[str, Any] = {"Key": params.tag_key}
        if params.tag_value:
            tag_filter["Values"] = [params.tag_value]
        found = []
        pages = _paged(aws, TagFilters=[tag_filter], ResourceTypeFilters=["lambda:function"],
                       ResourcesPerPage=aws.tag_page_size)
        for page in pages:
            found.extend(m["ResourceARN"] for m in page.get("ResourceTagMappingList", []))
        found = sorted(set(a for a in found if a.count(":") == 6))  # unqualified function ARNs
    if params.chaos_mode == "DISABLED" or params.selection == "ALL":
        return found
    count = _selection_count(params.selection, len(found))
    return sorted(random.Random(experiment_id).sample(sorted(found), count))


def _paged(aws: Aws, **kwargs: Any) -> List[Dict[str, Any]]:
    """Every page of GetResources, each through `Aws.call_tagging` (paced, retried); boto3's
    paginator would hide a throttled page from the retry."""
    pages, token = [], None
    while True:
        args = dict(kwargs, **({"PaginationToken": token} if token else {}))
        page = aws.call_tagging("get_resources", **args)
        pages.append(page)
        token = page.get("PaginationToken")
        if not token:
            return pages


def _selection_count(selection: str, available: int) -> int:
    """COUNT(n): n (or all if fewer); PERCENT(n): n% rounded down, at least one."""
    match = re.fullmatch(r"(COUNT|PERCENT)\((\d+)\)", selection)
    if not match:
        raise InvalidParameter(_must("TargetSelection", _BY_NAME["TargetSelection"].accepts,
                                     selection))
    n = int(match.group(2))
    if match.group(1) == "COUNT":
        return min(n, available)
    return min(available, max(1, available * n // 100)) if available else 0


def _check_identifier(name: str, region: Optional[str] = None) -> str:
    """Accept a name or an unqualified ARN (of `region`, once it is known); refuse qualified
    ARNs with the fix. Without a region it checks only the form, before any AWS client."""
    if name.startswith("arn:"):
        parts = name.split(":")
        if len(parts) < 7 or parts[2] != "lambda" or parts[5] != "function":
            raise InvalidParameter(_must("FunctionName", "a function name or a function ARN, "
                                         "arn:aws:lambda:REGION:ACCOUNT:function:NAME", name))
        if region is not None and parts[3] != region:
            raise InvalidParameter(f"function {name} is in {parts[3]}, this run is in {region}; "
                                   f"run the automation in {parts[3]}")
        if len(parts) > 7:
            raise InvalidParameter(f"FunctionName {name!r} names a version or alias; give the "
                                   f"function ARN and put the alias in AliasName")
    elif re.fullmatch(r"[a-zA-Z0-9_-]{1,64}:[a-zA-Z0-9_-]+", name):  # Lambda's name:qualifier
        raise InvalidParameter(f"FunctionName {name!r} names a version or alias; give the "
                               f"function name and put the alias in AliasName")
    elif not re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", name):
        raise InvalidParameter(_must("FunctionName", "a function name (1 to 64 letters, digits, "
                                     "- or _) or a function ARN", name))
    return name


# --- Plans: what attach sets and what detach restores ----------------------------------------

@dataclass(frozen=True)
class _Request:
    """What an attach writes to every target; `experiment_id` is its fingerprint."""

    layer_arn: str
    alias_name: str
    variables: Dict[str, Optional[str]]
    experiment_id: str


def _request(params: Params, now: Optional[datetime.datetime] = None,
             expires_at: str = "") -> _Request:
    """What attach writes. `expires_at` (from the Plan step) replaces now + Duration: every
    batch of one run then expires at the same time, after the last batch is attached."""
    fault = {name: None for name in AUTOMATION_VARIABLES
             if name not in (RESTORE_STATE, ORIGINAL_EXEC_WRAPPER, EXPERIMENT_ID, EXPIRES_AT)}
    fault[FAULT_TYPE] = params.fault_type
    fault[INVOCATION_PERCENTAGE] = params.invocation_percentage
    if params.fault_type == "latency":
        fault[LATENCY_MS] = str(params.latency_ms)
        fault[LATENCY_JITTER_MS] = str(params.latency_jitter_ms)
    else:
        fault[PREVENT_EXECUTION] = "true" if params.prevent_execution else "false"
    if params.fault_type == "error":
        fault[ERROR_TYPE] = params.error_type
        fault[ERROR_MESSAGE] = params.error_message
    if params.fault_type == "response":
        fault[RESPONSE_STATUS_CODE] = str(params.response_status_code)
        fault[RESPONSE_BODY] = params.response_body
    # "Same experiment" = same layer, alias and fault settings. The expiry is left out on
    # purpose: re-running the same attach later must not count as a different experiment.
    identity = json.dumps([params.layer_arn, params.alias_name, fault], sort_keys=True)
    experiment_id = "lc-" + hashlib.sha256(identity.encode()).hexdigest()[:12]
    variables = dict(fault)
    variables[EXPERIMENT_ID] = experiment_id
    now = now or datetime.datetime.now(datetime.timezone.utc)
    variables[EXPIRES_AT] = expires_at or (
        format_utc_time(now + params.duration) if params.duration else None)
    return _Request(params.layer_arn, params.alias_name, variables, experiment_id)


def _unversioned(layer_version_arn: str) -> str:
    return layer_version_arn.rsplit(":", 1)[0]


def _variables(config: Mapping[str, Any]) -> Dict[str, str]:
    return dict((config.get("Environment") or {}).get("Variables") or {})


def _layers(config: Mapping[str, Any]) -> List[str]:
    return [layer["Arn"] for layer in config.get("Layers") or []]


def environment_size(variables: Mapping[str, str]) -> int:
    """Bytes Lambda counts against its 4 KB limit: the JSON of the Variables map."""
    return len(json.dumps(dict(variables), separators=(",", ":"), ensure_ascii=False)
               .encode("utf-8"))


def _read_record(name: str, config: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
    text = _variables(config).get(RESTORE_STATE)
    if text is None:
        return None
    try:
        record = json.loads(text)
        ok = (isinstance(record, dict) and record.get("v") == RECORD_VERSION
              and isinstance(record.get("env"), dict) and isinstance(record.get("layer"), str))
    except ValueError:
        ok = False
    if not ok:
        raise TargetRefused(f"function {name}: {RESTORE_STATE} is not a record this automation "
                            f"wrote ({text[:80]!r}); it was edited by hand, so restore the "
                            f"function by hand and delete {RESTORE_STATE}")
    return record


def _weights(alias: Mapping[str, Any]) -> Dict[str, float]:
    return dict((alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {})


def _plan_attach(name: str, config: Mapping[str, Any], alias: Optional[Mapping[str, Any]],
                 req: _Request, layer: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
    """The UpdateFunctionConfiguration arguments that attach `req`, or None if the function
    is already in this experiment. Raises TargetRefused naming the reason and the fix."""
    record = _read_record(name, config)
    if record is not None:
        if record.get("experiment") == req.experiment_id:
            return None
        raise TargetRefused(f"function {name} is in a different experiment "
                            f"({record.get('experiment')}, layer {record.get('layer')}); "
                            "detach it first (ChaosMode=DISABLED) or wait for it to end")
    _check_compatible(name, config, layer)
    env, layers = _variables(config), _layers(config)
    if any(_unversioned(arn) == _unversioned(req.layer_arn) for arn in layers) \
            or env.get(EXEC_WRAPPER) == WRAPPER_PATH:
        raise TargetRefused(f"function {name} already has the chaos layer or wrapper but no "
                            f"{RESTORE_STATE} record (attached by hand?); remove the layer and "
                            f"{EXEC_WRAPPER} by hand, then attach")
    if len(layers) + 1 > MAX_LAYERS:
        raise TargetRefused(f"function {name} already has {len(layers)} layers and Lambda allows "
                            f"{MAX_LAYERS}; remove one of {', '.join(layers)} to attach")
    desired = dict(req.variables)
    desired[EXEC_WRAPPER] = WRAPPER_PATH
    desired[ORIGINAL_EXEC_WRAPPER] = env.get(EXEC_WRAPPER)  # chained, never overwritten
    prior = {n: env.get(n) for n, value in desired.items() if env.get(n) != value}
    prior[RESTORE_STATE] = None
    new_record: Dict[str, Any] = {"v": RECORD_VERSION, "experiment": req.experiment_id,
                                  "layer": req.layer_arn, "env": prior}
    if alias is not None:
        new_record["alias"] = {"name": alias["Name"], "version": alias["FunctionVersion"],
                               "weights": _weights(alias),
                               "description": alias.get("Description") or ""}
    new_env = _apply(env, desired)
    new_env[RESTORE_STATE] = json.dumps(new_record, sort_keys=True, separators=(",", ":"))
    size = environment_size(new_env)
    if size > MAX_ENVIRONMENT_BYTES:
        raise TargetRefused(f"function {name}: its environment would be {size} bytes with the "
                            f"fault variables, over Lambda's {MAX_ENVIRONMENT_BYTES}; free "
                            f"{size - MAX_ENVIRONMENT_BYTES} bytes (or shorten ErrorMessage / "
                            "ResponseBody)")
    return {"Layers": layers + [req.layer_arn], "Environment": {"Variables": new_env}}


def _check_compatible(name: str, config: Mapping[str, Any], layer: Mapping[str, Any]) -> None:
    """Lambda enforces none of this; a function the layer cannot serve fails at init.

    The layer's binary serves every runtime in ACCEPTED_RUNTIMES, and the API lets a layer
    version list only 15, so its CompatibleRuntimes gate only by language: a layer that lists no
    runtime of the function's language was built for others (an older, Python-only layer)."""
    if config.get("PackageType", "Zip") != "Zip":
        raise TargetRefused(f"function {name} is a container image; images cannot use layers, "
                            "so target a zip-packaged function (or bake the layer into the image)")
    runtime = config.get("Runtime") or ""
    if runtime in OS_ONLY_RUNTIMES:
        raise TargetRefused(f"function {name} runs {runtime}, an OS-only runtime whose bootstrap "
                            f"ignores {EXEC_WRAPPER}, so no fault could reach it; target a "
                            "function on a managed runtime")
    if runtime not in ACCEPTED_RUNTIMES:
        raise TargetRefused(f"function {name} runs {runtime or 'no managed runtime'}; the layer "
                            f"serves {', '.join(ACCEPTED_RUNTIMES)}; upgrade the function's "
                            "runtime")
    listed = layer.get("CompatibleRuntimes") or []
    if listed and runtime_language(runtime) not in {runtime_language(r) for r in listed}:
        raise TargetRefused(f"function {name} runs {runtime}; layer version "
                            f"{layer.get('LayerVersionArn')} lists only {', '.join(listed)}; "
                            "deploy the current layer (deploy.sh) and pass its LayerArn")
    arch = (config.get("Architectures") or ["x86_64"])[0]
    arches = layer.get("CompatibleArchitectures") or []
    if arches and arch not in arches:
        raise TargetRefused(f"function {name} runs on {arch}; layer version "
                            f"{layer.get('LayerVersionArn')} declares {', '.join(arches)}; "
                            f"pass a layer version published for {arch} (deploy.sh publishes "
                            "both)")


def _apply(env: Mapping[str, str], changes: Mapping[str, Optional[str]]) -> Dict[str, str]:
    result = dict(env)
    for name, value in changes.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = value
    return result


def _plan_detach(config: Mapping[str, Any], record: Mapping[str, Any]) -> Dict[str, Any]:
    """Revert what the record says attach changed; keep everything else.

    The chaos variables belong to the experiment and are always reverted. The exec wrapper is
    reverted only while it is still the layer's: if someone replaced it during the
    experiment, theirs is kept. Other layers added meanwhile stay, in their order.
    """
    env = _variables(config)
    changes = dict(record["env"])
    if env.get(EXEC_WRAPPER) != WRAPPER_PATH:
        changes.pop(EXEC_WRAPPER, None)
    new_env = _apply(env, changes)
    new_env.pop(RESTORE_STATE, None)
    ours = _unversioned(record["layer"])
    layers = [arn for arn in _layers(config) if _unversioned(arn) != ours]
    return {"Layers": layers, "Environment": {"Variables": new_env}}


def _describe(name: str, old: Mapping[str, Any], plan: Mapping[str, Any]) -> Dict[str, Any]:
    """A readable diff of one planned update: the DryRun output and the step output."""
    before, after = _variables(old), plan["Environment"]["Variables"]
    changed = sorted(n for n in set(before) | set(after) if before.get(n) != after.get(n))
    return {"FunctionName": name, "FunctionArn": old.get("FunctionArn", ""),
            "LayersBefore": _layers(old), "LayersAfter": list(plan["Layers"]),
            "SetVariables": {n: after[n] for n in changed if n in after and n != RESTORE_STATE},
            "RemovedVariables": [n for n in changed if n not in after and n != RESTORE_STATE]}


# --- Applying ----------------------------------------------------------------------------------

@dataclass
class _Target:
    """One function as read before anything changed."""

    ident: str
    config: Dict[str, Any]
    alias: Optional[Dict[str, Any]] = None
    plan: Optional[Dict[str, Any]] = None
    missing: bool = False

    @property
    def name(self) -> str:
        return self.config.get("FunctionName", self.ident)

    @property
    def arn(self) -> str:
        return self.config.get("FunctionArn", self.ident)


def _read(aws: Aws, ident: str, alias_name: str = "") -> Optional[_Target]:
    """Read a function (and its alias); None if the function does not exist."""
    try:
        config = aws.call("get_function_configuration", FunctionName=ident)
    except AwsCallFailed as exc:
        if exc.code == "ResourceNotFoundException":
            return None
        raise
    target = _Target(ident, config)
    if alias_name:
        try:
            target.alias = aws.call("get_alias", FunctionName=target.arn, Name=alias_name)
        except AwsCallFailed as exc:
            if exc.code == "ResourceNotFoundException":
                raise TargetNotFound(f"function {target.name} has no alias {alias_name!r}; "
                                     "create it or leave AliasName empty") from None
            raise
    return target


def _update(aws: Aws, target: _Target, plan_for: Callable[[Dict[str, Any]], Optional[dict]]
            ) -> Optional[Dict[str, Any]]:
    """One UpdateFunctionConfiguration guarded by RevisionId, then wait until it is applied.

    If someone changed the function since we read it (PreconditionFailed), re-read and
    re-plan from their version, so their change is kept, never silently overwritten.
    """
    config = target.config
    for _ in range(3):
        plan = plan_for(config)
        if plan is None:
            target.config = config  # callers read the current state from here
            return None
        guard = {"RevisionId": config["RevisionId"]} if config.get("RevisionId") else {}
        try:
            result = aws.call("update_function_configuration", FunctionName=target.arn,
                              **plan, **guard)
        except AwsCallFailed as exc:
            if exc.code != "PreconditionFailedException":
                raise
            config = aws.call("get_function_configuration", FunctionName=target.arn)
            continue
        if result.get("LastUpdateStatus") == "InProgress":
            aws.wait("function_updated_v2", target.arn)
        elif result.get("LastUpdateStatus") == "Failed":
            raise AwsCallFailed(f"function {target.name}: update failed: "
                                f"{result.get('LastUpdateStatusReason')}", "Failed")
        target.config = config
        return plan
    raise TargetRefused(f"function {target.name} changed under us three times (RevisionId); "
                        "retry once the other deployment to it has finished")


def _alias_marker(experiment_id: str, version: str) -> str:
    """The alias Description while it points at the fault version: says whose and which."""
    return f"lambda-chaos {experiment_id} version {version}"


def _alias_is_ours(alias: Mapping[str, Any], experiment_id: str) -> bool:
    """True while the alias still points where attach put it. Someone else moving it changes
    FunctionVersion, so the marker's version no longer matches (costs no extra call)."""
    return alias.get("Description") == _alias_marker(experiment_id, alias["FunctionVersion"])


def _versions_of(aws: Aws, target: _Target, experiment_id: str) -> List[str]:
    """Published versions carrying this experiment's record (ListVersionsByFunction returns
    each version's configuration, so this costs one call per 50 versions)."""
    found, marker = [], None
    while True:
        # By name: moto 5.2 answers an ARN here with an empty list (AWS takes either).
        page = aws.call("list_versions_by_function", FunctionName=target.name, MaxItems=50,
                        **({"Marker": marker} if marker else {}))
        for version in page.get("Versions", []):
            if version.get("Version") == "$LATEST":
                continue
            text = _variables(version).get(RESTORE_STATE, "")
            if f'"experiment":"{experiment_id}"' in text:
                found.append(version["Version"])
        marker = page.get("NextMarker")
        if not marker:
            return found


def _attach_alias(aws: Aws, target: _Target, record: Mapping[str, Any]) -> Dict[str, Any]:
    """Publish the attached configuration as a version and point the alias at it alone."""
    alias, prior = target.alias or {}, record["alias"]
    name = alias["Name"]
    if (alias["FunctionVersion"], _weights(alias)) != (prior["version"], prior["weights"]):
        if _alias_is_ours(alias, record["experiment"]):
            return {"Name": name, "Version": alias["FunctionVersion"], "Changed": False}
        raise TargetRefused(f"alias {name} of {target.name} was moved to version "
                            f"{alias['FunctionVersion']} by someone else since attach; detach "
                            "(ChaosMode=DISABLED) and attach again")
    # AWS returns the existing version when nothing changed since the last publish, so a
    # re-run after a crash between these calls reuses it instead of piling up versions.
    version = aws.call("publish_version", FunctionName=target.arn,
                       Description=f"lambda-chaos {record['experiment']}")
    if version.get("State") == "Pending":
        aws.wait("published_version_active", target.arn, Qualifier=version["Version"])
    _update_alias(aws, target, alias, version["Version"], {},
                  _alias_marker(record["experiment"], version["Version"]))
    return {"Name": name, "FromVersion": prior["version"], "FromWeights": prior["weights"],
            "Version": version["Version"], "Changed": True}


def _detach_alias(aws: Aws, target: _Target, record: Mapping[str, Any]) -> Dict[str, Any]:
    """Point the alias back at its recorded version and routing, if it still points at ours."""
    prior = record["alias"]
    name = prior["name"]
    try:
        alias = aws.call("get_alias", FunctionName=target.arn, Name=name)
    except AwsCallFailed as exc:
        if exc.code != "ResourceNotFoundException":
            raise
        return {"Name": name, "Changed": False, "Note": "alias was deleted during the experiment"}
    if (alias["FunctionVersion"], _weights(alias)) == (prior["version"], prior["weights"]):
        # The alias never moved: attach stopped between PublishVersion and UpdateAlias. Only
        # then (never on the normal path) look for the version it published, to delete it.
        result = {"Name": name, "Version": prior["version"], "Changed": False}
        for version in _versions_of(aws, target, record["experiment"]):
            _delete_version(aws, target, version, result)
        return result
    ours = alias["FunctionVersion"]
    description = prior.get("description", "")
    if not _alias_is_ours(alias, record["experiment"]):
        # The marker is gone: moved by someone else, or only its Description edited. Only
        # the first is theirs to keep; an alias left on the fault version keeps the fault.
        if ours not in _versions_of(aws, target, record["experiment"]):
            return {"Name": name, "Version": ours, "Changed": False,
                    "Note": "alias was moved by someone else during the experiment; left as is"}
        description = alias.get("Description") or ""  # their edit is kept
    _update_alias(aws, target, alias, prior["version"], prior["weights"], description)
    result = {"Name": name, "FromVersion": ours, "Version": prior["version"],
              "Weights": prior["weights"], "Changed": True}
    _delete_version(aws, target, ours, result)
    return result


def _update_alias(aws: Aws, target: _Target, alias: Mapping[str, Any], version: str,
                  weights: Mapping[str, float], description: str) -> None:
    """UpdateAlias guarded by the alias's RevisionId. A refused guard whose re-read shows the
    alias already where we point it was our own update, applied but its answer lost (the
    retry's RevisionId is then stale): that is done. Anyone else's change still fails."""
    try:
        aws.call("update_alias", FunctionName=target.arn, Name=alias["Name"],
                 FunctionVersion=version, RoutingConfig={"AdditionalVersionWeights": weights},
                 Description=description,
                 **({"RevisionId": alias["RevisionId"]} if alias.get("RevisionId") else {}))
    except AwsCallFailed as exc:
        if exc.code != "PreconditionFailedException":
            raise
        now = aws.call("get_alias", FunctionName=target.arn, Name=alias["Name"])
        if (now["FunctionVersion"], _weights(now), now.get("Description") or "") != \
                (version, dict(weights), description):
            raise


def _delete_version(aws: Aws, target: _Target, version: str, result: Dict[str, Any]) -> None:
    """Delete a fault version so nobody points an alias at it later. One that another alias
    now uses is kept (and reported); any other failure fails the detach, whose re-run finds
    the version again because the function still carries its record."""
    try:
        aws.call("delete_function", retryable=_THROTTLED, FunctionName=target.arn,
                 Qualifier=version)
    except AwsCallFailed as exc:
        if exc.code == "ResourceNotFoundException":  # gone already: a retry after a lost answer
            result.setdefault("DeletedVersions", []).append(version)
            return
        if exc.code != "ResourceConflictException":
            raise
        aliases = aws.call("list_aliases", FunctionName=target.name).get("Aliases", [])
        users = [a["Name"] for a in aliases
                 if a["FunctionVersion"] == version or version in _weights(a)]
        if users:
            result["Note"] = (f"version {version} with the fault was kept: alias(es) "
                              f"{', '.join(users)} now use it")
            return
        # A transient conflict after all: retry the delete with the usual policy.
        aws.call("delete_function", FunctionName=target.arn, Qualifier=version)
    result.setdefault("DeletedVersions", []).append(version)


def _attach_one(aws: Aws, target: _Target, req: _Request, layer: Mapping[str, Any]
                ) -> Dict[str, Any]:
    before = target.config
    plan = _update(aws, target, lambda c: _plan_attach(target.name, c, target.alias, req, layer))
    if plan is None and _read_record(target.name, before) is None:
        # Not attached when read, attached now: our update was applied but its answer was
        # lost, and the retry's re-read found it done. Report (and go on from) that state.
        plan = {"Layers": _layers(target.config),
                "Environment": {"Variables": _variables(target.config)}}
    out = _describe(target.name, before, plan) if plan else _unchanged(target)
    out["Action"] = "attached" if plan else "unchanged"
    if target.alias is not None:
        record = _read_record(target.name, {"Environment": {"Variables": (
            plan["Environment"]["Variables"] if plan else _variables(before))}})
        out["Alias"] = _attach_alias(aws, target, record or {})
        if out["Alias"]["Changed"] and not plan:
            out["Action"] = "attached"
    return out


def _detach_one(aws: Aws, ident: str, target: Optional[_Target] = None,
                only_experiment: str = "") -> Dict[str, Any]:
    """Detach one function (read now unless `target` was just read); one that is not
    attached, or no longer exists, or (with `only_experiment`) is in another experiment, is
    left alone."""
    target = target or _read(aws, ident)
    if target is None or target.missing:
        return {"FunctionName": ident, "FunctionArn": "", "Action": "not-found"}
    record = _read_record(target.name, target.config)
    if record is None:
        return dict(_unchanged(target), Action="not-attached")
    if only_experiment and record.get("experiment") != only_experiment:
        return dict(_unchanged(target), Action="other-experiment",
                    Note=f"in experiment {record.get('experiment')}, not {only_experiment}; "
                         "left as is")
    out: Dict[str, Any] = {"ExperimentId": record.get("experiment", "")}
    if record.get("alias"):
        out["Alias"] = _detach_alias(aws, target, record)  # first: traffic leaves the fault now
    before = target.config

    def plan_for(config: Dict[str, Any]) -> Optional[dict]:
        current = _read_record(target.name, config)
        return _plan_detach(config, current) if current else None

    plan = _update(aws, target, plan_for)
    if plan is None:
        # Attached when read, not now: our update was applied but its answer was lost (the
        # retry's re-read found it done). Report the change that was made.
        plan = {"Layers": _layers(target.config),
                "Environment": {"Variables": _variables(target.config)}}
    out.update(_describe(target.name, before, plan))
    out["Action"] = "detached"
    return out


def _unchanged(target: _Target) -> Dict[str, Any]:
    layers = _layers(target.config)
    return {"FunctionName": target.name, "FunctionArn": target.arn, "LayersBefore": layers,
            "LayersAfter": layers, "SetVariables": {}, "RemovedVariables": []}


def _parallel(aws: Aws, items: Sequence[Any], work: Callable[[Any], Any],
              keep_going: bool = False) -> List[Tuple[Any, Any, Optional[BaseException]]]:
    """Run `work` on each item with bounded concurrency; after the first failure, start no
    more, unless `keep_going` (clean-up: one function that cannot be restored must not leave
    the others attached). A BaseException that is not an Exception (a crash) propagates."""
    stop = threading.Event()

    def run(item: Any) -> Any:
        if stop.is_set():
            return _SKIPPED
        try:
            return work(item)
        except Exception:
            if not keep_going:
                stop.set()
            raise
        except BaseException:
            stop.set()
            raise

    with ThreadPoolExecutor(max_workers=max(1, min(aws.concurrency, len(items) or 1))) as pool:
        futures = [pool.submit(run, item) for item in items]
        outcomes = [(item, f) for item, f in zip(items, futures)]
    results = []
    for item, future in outcomes:
        exc = future.exception()
        if exc is not None and not isinstance(exc, Exception):
            raise exc
        results.append((item, None if exc else future.result(), exc))
    return results


_SKIPPED = object()


# --- Public operations ------------------------------------------------------------------------

def _layer_version(aws: Aws, layer_arn: str) -> Dict[str, Any]:
    """GetLayerVersion by parsing the ARN (moto lacks GetLayerVersionByArn; same call count)."""
    parts = layer_arn.split(":")
    if len(parts) != 8 or parts[5] != "layer" or not parts[7].isdigit():
        raise InvalidParameter(_must("LayerArn", _BY_NAME["LayerArn"].accepts, layer_arn))
    if parts[3] != aws.region:
        raise InvalidParameter(f"LayerArn {layer_arn} is in {parts[3]}, the functions in "
                               f"{aws.region}; Lambda needs the layer in the function's region, "
                               f"so publish it in {aws.region}")
    try:
        return aws.call("get_layer_version", LayerName=_unversioned(layer_arn),
                        VersionNumber=int(parts[7]))
    except AwsCallFailed as exc:
        if exc.code == "ResourceNotFoundException":
            raise TargetNotFound(f"layer version {layer_arn} does not exist; deploy the layer "
                                 "(deploy.sh) and pass the stack output LayerArn") from None
        raise


def _prepare(params: Params, aws: Aws, req: Optional[_Request],
             idents: Optional[List[str]] = None) -> Tuple[List[_Target], Dict[str, Any]]:
    """Resolve (unless a batch's `idents` are given) and read every target, and plan each
    attach; raise before anything changes."""
    if idents is None:
        idents = resolve_targets(params, aws, req.experiment_id if req else "")
    if params.chaos_mode == "ENABLED":
        if not idents:
            raise TargetNotFound(_nothing_found(params, aws))
        if len(idents) > params.max_targets:
            raise TargetRefused(f"{len(idents)} functions selected, more than MaxTargets="
                                f"{params.max_targets}; narrow the tag or TargetSelection, or "
                                "raise MaxTargets")
    alias = params.alias_name if params.chaos_mode == "ENABLED" else ""
    reads = _parallel(aws, idents, lambda ident: _read(aws, ident, alias))
    problems: List[AutomationError] = []
    targets: Dict[str, _Target] = {}
    for ident, target, exc in reads:
        if exc is not None:
            problems.append(exc if isinstance(exc, AutomationError)
                            else AutomationError(f"{ident}: {exc}"))
        elif target is _SKIPPED:  # not read because an earlier read failed
            continue
        elif target is None:
            if params.chaos_mode == "ENABLED":
                problems.append(TargetNotFound(f"function {ident!r} does not exist in "
                                               f"{aws.region}; check the name and the region"))
            else:  # nothing to detach, but the report must say so (a typo shows up)
                targets.setdefault(ident, _Target(ident, {}, missing=True))
        else:
            targets.setdefault(target.arn, target)
    layer: Dict[str, Any] = {}
    if req is not None:
        layer = _layer_version(aws, req.layer_arn) if targets else {}
        for target in targets.values():
            try:
                target.plan = _plan_attach(target.name, target.config, target.alias, req, layer)
            except AutomationError as exc:
                problems.append(exc)
    if problems:
        kind = type(problems[0])
        raise kind("; ".join(str(p) for p in problems) +
                   " (nothing was changed)")
    return list(targets.values()), layer


def _nothing_found(params: Params, aws: Aws) -> str:
    if params.tag_key:
        return (f"no Lambda function in {aws.region} has tag {params.tag_key}="
                f"{params.tag_value or '*'}; check TargetTagKey/TargetTagValue and the region")
    return "no function to target; give FunctionName or TargetTagKey"


def _summary(mode: str, params: Params, targets: List[Dict[str, Any]], experiment: str
             ) -> Dict[str, Any]:
    actions = [f"{t['FunctionName']}: {t['Action']}" for t in targets]
    return {"Mode": mode, "DryRun": params.dry_run, "ExperimentId": experiment,
            "TargetCount": len(targets), "Targets": targets,
            "Summary": f"{mode} {len(targets)} function(s)" +
                       (": " + ", ".join(actions) if actions else "")}


def attach(parameters: Mapping[str, Any], aws: Optional[Aws] = None,
           now: Optional[datetime.datetime] = None,
           time_budget_s: Optional[float] = None, idents: Optional[List[str]] = None,
           expires_at: str = "") -> Dict[str, Any]:
    """Attach the layer and the fault to every target, all or nothing.

    Validates every target first (raises TargetNotFound / TargetRefused / InvalidParameter
    with nothing changed). If a target fails midway, the ones this run attached are detached
    again and AutomationError names the function and the reason (RollbackIncomplete if that
    clean-up failed too).
    """
    parameters = _with_mode(parameters, "attach")
    params = parse_parameters(parameters)
    if params.dry_run:
        return preview(parameters, aws, now)
    aws = aws or _aws_for(params)
    params = _resolve_layer(params, aws)
    req = _request(params, now, expires_at)
    targets, layer = _prepare(params, aws, req, idents)
    _check_budget(aws, targets, bool(params.alias_name), time_budget_s)
    results = _parallel(aws, targets, lambda t: _attach_one(aws, t, req, layer))
    failures = [(t, exc) for t, _, exc in results if exc is not None]
    if failures:
        _rollback(aws, [t for t, out, _ in results if out is not _SKIPPED and t.plan], failures)
    return _summary("attach", params, [out for _, out, _ in results], req.experiment_id)


_MODES = {"attach": "ENABLED", "detach": "DISABLED"}


def _with_mode(parameters: Mapping[str, Any], operation: str, strict: bool = False
               ) -> Dict[str, Any]:
    """The parameters with the ChaosMode `operation` runs with. A ChaosMode given must still
    be a valid one: a typo (ChaosMode=maybe) is refused, not silently replaced. Detach takes
    attach's parameters, so the other valid mode is replaced, unless `strict` (the CLI, where
    `attach --ChaosMode DISABLED` contradicts its own command)."""
    mode = _MODES[operation]
    given = _text("ChaosMode", _raw(parameters.get("ChaosMode")))
    if given and _enumerated(_BY_NAME["ChaosMode"], given) != mode and strict:
        other = next(op for op, m in _MODES.items() if m != mode)
        raise InvalidParameter(f"ChaosMode must be {mode} (or left out) for {operation}, got "
                               f"{given!r}; to {other}, run {other} instead")
    return dict(parameters, ChaosMode=mode)


def _check_budget(aws: Aws, targets: List[_Target], alias: bool,
                  budget_s: Optional[float]) -> None:
    """Refuse a run the rate limit cannot finish in time: a step killed midway cannot roll
    back (the experiment document's detach would still clean up, but the fault never ran)."""
    if budget_s is None or aws.limiter.interval == 0:
        return
    needed = len(targets) * CALLS_PER_TARGET[alias] * aws.limiter.interval
    if needed > budget_s:
        raise TargetRefused(f"{len(targets)} functions need about {needed:.0f} s at "
                            f"{1 / aws.limiter.interval:g} calls/s, more than an "
                            f"aws:executeScript step's {budget_s:.0f} s; split the experiment "
                            "(TargetTagValue, TargetSelection) or run the CLI")


def _rollback(aws: Aws, touched: List[_Target], failures: List[Tuple[_Target, BaseException]]
              ) -> None:
    """Detach what this run attached (only targets that were not attached before it)."""
    reason = _reasons(failures)
    undone = _parallel(aws, [t.arn for t in touched], lambda arn: _detach_one(aws, arn),
                       keep_going=True)
    stuck = [f"{arn}: {exc}" for arn, _, exc in undone if exc is not None]
    if stuck:
        raise RollbackIncomplete(f"attach failed ({reason}) and rolling back failed for "
                                 f"{'; '.join(stuck)}; run again with ChaosMode=DISABLED")
    names = ", ".join(t.name for t in touched) or "none"
    raise AutomationError(f"attach failed, so every function was put back (rolled back: "
                          f"{names}): {reason}")


def _reasons(failures: List[Tuple[_Target, BaseException]]) -> str:
    """Each failure once, prefixed with its function unless the message already names it."""
    return "; ".join(str(exc) if t.name in str(exc) else f"function {t.name}: {exc}"
                     for t, exc in failures)


def detach(parameters: Mapping[str, Any], aws: Optional[Aws] = None,
           now: Optional[datetime.datetime] = None,
           experiment_only: bool = False, idents: Optional[List[str]] = None) -> Dict[str, Any]:
    """Undo attach on every target that carries a restore record; others are left alone.

    Takes the same parameters as attach (the fault ones are ignored, unless
    `experiment_only`: then only the experiment those parameters attach is undone, as the
    experiment document's clean-up must, so that a refused attach does not end another
    experiment running on the same functions). Safe to repeat.
    Raises AutomationError naming each function that could not be restored.
    """
    parameters = _with_mode(parameters, "detach")
    params = parse_parameters(parameters)
    if params.dry_run:
        return preview(parameters, aws, now)
    aws = aws or _aws_for(params)
    experiment_only = experiment_only or params.only_this_experiment
    if experiment_only:
        params = _resolve_layer(params, aws)
    targets, _ = _prepare(params, aws, None, idents)
    own = _request(params, now).experiment_id if experiment_only else ""
    results = _parallel(aws, targets, lambda t: _detach_one(aws, t.arn, t, own),
                        keep_going=True)
    failures = [(t, exc) for t, _, exc in results if exc is not None]
    if failures:
        kind = type(failures[0][1]) if isinstance(failures[0][1], AutomationError) \
            else AutomationError
        raise kind("detach failed: " + _reasons(failures) + "; fix the cause and run "
                   "ChaosMode=DISABLED again (it is safe to repeat)")
    outs = [out for _, out, _ in results if out is not _SKIPPED]
    experiments = sorted({o["ExperimentId"] for o in outs if o.get("ExperimentId")})
    return _summary("detach", params, outs, ",".join(experiments))


def preview(parameters: Mapping[str, Any], aws: Optional[Aws] = None,
            now: Optional[datetime.datetime] = None) -> Dict[str, Any]:
    """What attach (or, with ChaosMode=DISABLED, detach) would do: targets and exact changes.
    Makes only read calls; raises what the real run would raise during validation."""
    params = parse_parameters(parameters, preview=True)
    aws = aws or _aws_for(params)
    params = _resolve_layer(params, aws)
    req = _request(params, now) if params.chaos_mode == "ENABLED" else None
    targets, _ = _prepare(params, aws, req)
    out = []
    for target in targets:
        if req is not None:
            plan = target.plan
            action = "would-attach" if plan else "unchanged"
        else:
            record = _read_record(target.name, target.config)
            plan = _plan_detach(target.config, record) if record else None
            action = "would-detach" if plan else "not-found" if target.missing else \
                "not-attached"
        entry = _describe(target.name, target.config, plan) if plan else _unchanged(target)
        entry["Action"] = action
        if plan and req is not None and target.alias is not None:
            entry["Alias"] = {"Name": target.alias["Name"],
                              "FromVersion": target.alias["FunctionVersion"],
                              "FromWeights": _weights(target.alias),
                              "Version": "new (published from the attached configuration)",
                              "Changed": True}
        elif plan and req is None and record.get("alias"):
            prior = record["alias"]
            entry["Alias"] = {"Name": prior["name"], "Version": prior["version"],
                              "Weights": prior["weights"], "Changed": True,
                              "Note": "only if it still points at the fault version"}
        out.append(entry)
    mode = "attach" if req else "detach"
    return _summary(mode, params, out, req.experiment_id if req else "") | {"DryRun": True}


# --- Batches: one run over many `aws:executeScript` steps --------------------------------------

def _aws_for(params: Params) -> "Aws":
    """The clients of a document step: the region SSM runs it in, the run's own rate."""
    return Aws.create(max_requests_per_second=params.requests_per_second)


def _resolve_layer(params: Params, aws: Aws) -> Params:
    """A layer NAME (an organisation-wide run: one name, a version per account and region)
    becomes the newest version ARN of that layer in this account and region."""
    if not params.layer_arn or params.layer_arn.startswith("arn:"):
        return params
    try:
        versions = aws.call("list_layer_versions", LayerName=params.layer_arn, MaxItems=1)
    except AwsCallFailed as exc:
        raise TargetNotFound(f"cannot read layer {params.layer_arn!r} in {aws.region}: {exc}; "
                             "deploy the target stack there (deploy.sh --target-stack)") from None
    found = versions.get("LayerVersions") or []
    if not found:
        raise TargetNotFound(f"layer {params.layer_arn!r} has no version in {aws.region}; deploy "
                             "the target stack in this account and region (deploy.sh "
                             "--target-stack), or pass a layer version ARN")
    return dataclasses.replace(params, layer_arn=found[0]["LayerVersionArn"])


def batch_of(ident: str, count: int) -> int:
    """The detach batch (1..count) a function belongs to: a hash of its name, so its batch
    does not depend on which other functions exist (a detach whose targets changed since its
    plan still covers each function exactly once)."""
    return int(hashlib.sha256(ident.encode("utf-8")).hexdigest(), 16) % count + 1


def _digest(idents: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(sorted(idents)).encode("utf-8")).hexdigest()[:16]


def _batch_size(params: Params) -> int:
    """Functions one step can change in its budget at the run's rate, with room for uneven
    hash buckets; a run without the rate limit (the CLI's inf) has no per-step limit."""
    per_target = CALLS_PER_TARGET[bool(params.alias_name)] / params.requests_per_second
    return max(1, int(BATCH_FILL * STEP_BUDGET_S / per_target))


def _parse_batch(text: Any) -> Tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)/(\d+)\s*", str(text or ""))
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise InvalidParameter(_must(BATCH, "i/K with 1 <= i <= K, as the Plan step writes it "
                                     "(e.g. 2/5)", text))
    return int(match.group(1)), int(match.group(2))


def _split(events: Mapping[str, Any], *names: str) -> Tuple[Dict[str, Any], List[str]]:
    """The document parameters, and the values of the step-to-step names (not parameters)."""
    rest = dict(events)
    return rest, [str(_raw(rest.pop(name, "")) or "") for name in names]


def plan(events: Mapping[str, Any], context: Any = None, aws: Optional[Aws] = None,
         now: Optional[datetime.datetime] = None) -> Dict[str, Any]:
    """The `Plan` step: which functions, in how many batches, expiring when.

    Attach: refuses nothing found and more than MaxTargets; sizes the batches so each fits
    one step at RequestsPerSecond; fixes one expiry for all of them (now + the time the
    batches take + Duration); and writes a digest of the selection, so a batch can tell that
    the functions changed since. Detach: every matching function, batched the same way.
    Changes nothing. DryRun: the preview, and no batches."""
    params = parse_parameters(events)
    aws = aws or _aws_for(params)
    if params.dry_run:
        return fit_output(dict(preview(events, aws, now), Batches=[], Digest="", ExpiresAt="",
                               LayerArn=params.layer_arn, CleanUpOnlyThisExperiment=True))
    params = _resolve_layer(params, aws)
    attaching = params.chaos_mode == "ENABLED"
    req = _request(params, now) if attaching else None
    if attaching:
        _layer_version(aws, params.layer_arn)  # a missing layer is refused before any batch
    idents = resolve_targets(params, aws, req.experiment_id if req else "")
    if attaching and not idents:
        raise TargetNotFound(_nothing_found(params, aws))
    if attaching and len(idents) > params.max_targets:
        raise TargetRefused(f"{len(idents)} functions selected, more than MaxTargets="
                            f"{params.max_targets}; narrow the tag or TargetSelection, or raise "
                            f"MaxTargets (at most {MAX_TARGETS_CEILING})")
    size = _batch_size(params)
    count = math.ceil(len(idents) / size)
    if count > MAX_BATCHES:
        raise TargetRefused(f"{len(idents)} functions need {count} batches of {size} at "
                            f"RequestsPerSecond={params.requests_per_second}, more than the "
                            f"{MAX_BATCHES} an aws:loop runs; raise RequestsPerSecond (at most "
                            "10) or split the experiment by tag (nothing was changed)")
    seconds = len(idents) * CALLS_PER_TARGET[bool(params.alias_name)] / params.requests_per_second
    now = now or datetime.datetime.now(datetime.timezone.utc)
    expires = format_utc_time(now + datetime.timedelta(seconds=math.ceil(seconds)) +
                              params.duration) if attaching and params.duration else ""
    verb = "attach" if attaching else "detach"
    return {"Mode": f"plan-{verb}", "Batches": [f"{i}/{count}" for i in range(1, count + 1)],
            "TargetCount": len(idents), "Digest": _digest(idents), "ExpiresAt": expires,
            "ExperimentId": req.experiment_id if req else "", "LayerArn": params.layer_arn,
            "CleanUpOnlyThisExperiment": attaching or params.only_this_experiment,
            "Summary": f"{verb} {len(idents)} function(s) in {count} batch(es) of at most "
                       f"{size}, about {seconds:.0f} s at {params.requests_per_second} calls/s"}


def apply(events: Mapping[str, Any], context: Any = None, aws: Optional[Aws] = None,
          now: Optional[datetime.datetime] = None) -> Dict[str, Any]:
    """One batch (`Batch` = "i/K" from the Plan step) of the attach or detach.

    Resolves the targets again and takes the functions of batch i. An attach first checks
    the selection against the plan's `Digest`: if functions were tagged or untagged since,
    this batch changes nothing and fails, and the document rolls back the earlier ones."""
    parameters, (batch, digest, expires) = _split(events, BATCH, DIGEST, EXPIRES)
    index, count = _parse_batch(batch)
    params = parse_parameters(parameters)
    aws = aws or _aws_for(params)
    params = _resolve_layer(params, aws)
    attaching = params.chaos_mode == "ENABLED"
    parameters = dict(parameters, LayerArn=params.layer_arn)
    seed = _request(params, now).experiment_id if attaching else ""
    idents = resolve_targets(params, aws, seed)
    if attaching and digest and _digest(idents) != digest:
        raise TargetRefused(f"the functions selected changed since the Plan step ({len(idents)} "
                            f"now): batch {index}/{count} changed nothing, and the batches "
                            "before it are rolled back; run the experiment again")
    # An attach's list is the plan's (the digest says so): deal it out evenly. A detach's
    # list may have changed since its plan: a hash puts each function in one batch anyway.
    mine = sorted(idents)[index - 1::count] if attaching else \
        [ident for ident in idents if batch_of(ident, count) == index]
    if attaching:
        result = attach(parameters, aws, now, STEP_BUDGET_S, idents=mine, expires_at=expires)
    else:
        result = detach(parameters, aws, now, idents=mine)
    result = dict(result, Batch=f"{index}/{count}")
    print(json.dumps(result, sort_keys=True))  # the step log keeps every detail
    return fit_output(result)


def handler(events: Mapping[str, Any], context: Any = None) -> Dict[str, Any]:
    """`aws:executeScript` entry point: InputPayload carries every parameter by its name
    (one step that attaches or detaches every target; the documents use `plan` and `apply`)."""
    params = parse_parameters(events)
    if params.dry_run:
        result = preview(events)
    elif params.chaos_mode == "ENABLED":
        result = attach(events, time_budget_s=STEP_BUDGET_S)
    else:
        result = detach(events)
    print(json.dumps(result, sort_keys=True))  # the step log keeps every detail
    return fit_output(result)


def fit_output(result: Dict[str, Any], limit: int = MAX_OUTPUT_BYTES) -> Dict[str, Any]:
    """SSM caps a step's output (100 KB); a run over many functions keeps one line each."""
    if len(json.dumps(result)) <= limit:
        return result
    compact = [{k: t[k] for k in ("FunctionName", "Action") if k in t} for t in result["Targets"]]
    fitted = dict(result, Targets=compact, Truncated=True)
    while len(json.dumps(fitted)) > limit and fitted["Targets"]:
        fitted["Targets"] = fitted["Targets"][: len(fitted["Targets"]) // 2]
    fitted["Summary"] = (f"{result['Mode']} {result['TargetCount']} function(s); details of "
                         f"each are in the step log")
    return fitted


def main(argv: Optional[Sequence[str]] = None, aws: Optional[Aws] = None) -> int:
    """Command line: same parameters as the document (`--FunctionName f ...`), JSON out."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("attach", "detach", "preview"))
    for p in PARAMETERS:
        parser.add_argument(f"--{p.name}", help=p.description)
    parser.add_argument("--region", help="AWS region (default: the SDK's)")
    parser.add_argument("--endpoint-url", help="send every call here (e.g. a local moto server)")
    parser.add_argument("--max-requests-per-second", type=float,
                        default=DEFAULT_REQUESTS_PER_SECOND,
                        help=f"pace of AWS calls for the whole run (default "
                             f"{DEFAULT_REQUESTS_PER_SECOND})")
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    args = parser.parse_args(argv)
    values = {p.name: getattr(args, p.name) for p in PARAMETERS
              if getattr(args, p.name) is not None}
    try:
        # The parameters first: bad input is found without a region or any AWS call.
        if args.command == "preview":
            parse_parameters(values, preview=True)
        else:
            values = _with_mode(values, args.command, strict=True)
            parse_parameters(values)
        aws = aws or Aws.create(args.region, endpoint_url=args.endpoint_url,
                                max_requests_per_second=args.max_requests_per_second,
                                concurrency=args.concurrency)
        operation = {"attach": attach, "detach": detach, "preview": preview}[args.command]
        result = operation(values, aws)
    except AutomationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
