"""The layer's configuration: every environment variable, its default and its meaning, defined once.

The SSM automation, the FIS templates, the README table and the tests all import these
names instead of retyping them, so a misspelt variable cannot be set in one place and read
in another. Parsing never raises: a bad value means "no fault" plus one log line naming the
variable and the value, because the layer must fail open inside a customer's function.
"""
from __future__ import annotations

import datetime as _dt
import math

# The extension imports this module at every cold start, before the runtime may start:
# dataclasses and typing would add ~10 ms of imports (inspect, re), so the two record types
# below are plain classes and typing is read by type checkers only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Literal, Mapping, Optional, Tuple

    FaultType = Literal["latency", "error", "response"]

FAULT_TYPES: Tuple[str, ...] = ("latency", "error", "response")

# --- Names -----------------------------------------------------------------------------------
FAULT_TYPE = "CHAOS_FAULT_TYPE"
LATENCY_MS = "CHAOS_LATENCY_MS"
LATENCY_JITTER_MS = "CHAOS_LATENCY_JITTER_MS"
INVOCATION_PERCENTAGE = "CHAOS_INVOCATION_PERCENTAGE"
PREVENT_EXECUTION = "CHAOS_PREVENT_EXECUTION"
ERROR_TYPE = "CHAOS_ERROR_TYPE"
ERROR_MESSAGE = "CHAOS_ERROR_MESSAGE"
RESPONSE_STATUS_CODE = "CHAOS_RESPONSE_STATUS_CODE"
RESPONSE_BODY = "CHAOS_RESPONSE_BODY"
EXPIRES_AT = "CHAOS_EXPIRES_AT"
EXPERIMENT_ID = "CHAOS_EXPERIMENT_ID"
PROXY_PORT = "CHAOS_PROXY_PORT"
UPSTREAM_RUNTIME_API = "CHAOS_UPSTREAM_RUNTIME_API"
ORIGINAL_EXEC_WRAPPER = "CHAOS_ORIGINAL_EXEC_WRAPPER"
METRICS_NAMESPACE = "CHAOS_METRICS_NAMESPACE"
RESTORE_STATE = "CHAOS_RESTORE_STATE"
DECISION_SEED = "CHAOS_DECISION_SEED"

# Variables Lambda itself defines that the layer reads or the automation sets.
EXEC_WRAPPER = "AWS_LAMBDA_EXEC_WRAPPER"
RUNTIME_API = "AWS_LAMBDA_RUNTIME_API"

# Where the layer's files land when Lambda extracts it under /opt.
LAYER_ROOT = "/opt"
WRAPPER_PATH = "/opt/lambda-chaos/wrapper"
EXTENSION_NAME = "lambda-chaos-extension"

# Default port: clear of the AWS FIS extension (9100) and failure-lambda (9009).
DEFAULT_PROXY_PORT = 9140

# The extension writes "<port> <pid>" here once its proxy listens, before it registers; the
# wrapper reads it (a shell `read`, no process start) to learn the proxy is up and the fault
# valid. Keyed by the Runtime API address, so concurrent local environments never share one;
# inside Lambda /tmp belongs to one execution environment. `wrapper` spells the same pattern.
READY_FILE_PATTERN = "/tmp/lambda-chaos.{runtime_api}.ready"


def ready_file(runtime_api: str) -> str:
    """Path of the ready file for the Runtime API at `runtime_api` ("host:port")."""
    return READY_FILE_PATTERN.format(runtime_api=runtime_api)


class Setting:
    """One row of the configuration table: a variable, its type, its default, what it means."""

    __slots__ = ("name", "type", "default", "meaning", "set_by_automation")

    def __init__(self, name: str, type: str, default: str, meaning: str,
                 set_by_automation: bool = True) -> None:
        self.name, self.type, self.default, self.meaning = name, type, default, meaning
        self.set_by_automation = set_by_automation

    def __repr__(self) -> str:
        return f"Setting({self.name!r}, default={self.default!r})"


SETTINGS: Tuple[Setting, ...] = (
    Setting(FAULT_TYPE, "`latency` \\| `error` \\| `response`", "unset (no fault)",
            "Which fault to inject. Unset or empty: the layer passes everything through untouched."),
    Setting(LATENCY_MS, "integer ms ≥ 0", "0",
            "Delay added before the handler receives the event (fault `latency`)."),
    Setting(LATENCY_JITTER_MS, "integer ms ≥ 0", "0",
            "Uniform random extra delay in [0, jitter] added to the latency."),
    Setting(INVOCATION_PERCENTAGE, "number 0–100", "100",
            "Probability, per invocation, that the fault applies (decimals allowed)."),
    Setting(PREVENT_EXECUTION, "`true` \\| `false`", "false",
            "For `error` and `response`: fail or answer without running the handler."),
    Setting(ERROR_TYPE, "string", "ChaosInjectedError",
            "`errorType` of an injected error (fault `error`)."),
    Setting(ERROR_MESSAGE, "string", "Error injected by the chaos layer",
            "`errorMessage` of an injected error (fault `error`)."),
    Setting(RESPONSE_STATUS_CODE, "integer 100–599", "500",
            "`statusCode` of the replacement API Gateway proxy response (fault `response`)."),
    Setting(RESPONSE_BODY, "string", "empty",
            "`body` of the replacement API Gateway proxy response (fault `response`)."),
    Setting(EXPIRES_AT, "ISO-8601 UTC time", "unset (never)",
            "After this time no fault is injected, even if the layer is never detached."),
    Setting(EXPERIMENT_ID, "string", "unset",
            "Which experiment attached the layer; logged with each fault, and used by the "
            "automation to refuse a function that is in a different experiment."),
    Setting(PROXY_PORT, "integer 0–65535", str(DEFAULT_PROXY_PORT),
            "Port of the Runtime API proxy on 127.0.0.1; 0 picks any free port (the wrapper "
            "learns the port from the extension).", set_by_automation=False),
    Setting(UPSTREAM_RUNTIME_API, "host:port", "`AWS_LAMBDA_RUNTIME_API`",
            "Where the proxy forwards to; set it to stack behind another proxy.",
            set_by_automation=False),
    Setting(ORIGINAL_EXEC_WRAPPER, "path", "unset",
            "The function's own exec wrapper before the layer was attached; the layer's "
            "wrapper still runs it."),
    Setting(METRICS_NAMESPACE, "string", "LambdaChaos",
            "CloudWatch namespace of the embedded-metric-format counts of injected faults.",
            set_by_automation=False),
    Setting(RESTORE_STATE, "JSON", "unset",
            "Written by the automation on attach: what it replaced, so detach restores it "
            "exactly. The layer never reads it."),
    Setting(DECISION_SEED, "string", "unset (random)",
            "Local runs: each invocation's percentage and jitter draws come from this seed and "
            "its request id, so the same seed and request ids replay the same decisions. "
            "Leave it unset on AWS.", set_by_automation=False),
)

DEFAULTS: Dict[str, str] = {
    ERROR_TYPE: "ChaosInjectedError",
    ERROR_MESSAGE: "Error injected by the chaos layer",
    METRICS_NAMESPACE: "LambdaChaos",
}


# FaultConfig's fields and defaults, in order.
_FIELDS: Tuple[Tuple[str, Any], ...] = (
    ("fault_type", None), ("latency_ms", 0), ("latency_jitter_ms", 0), ("percentage", 100.0),
    ("prevent_execution", False), ("error_type", DEFAULTS[ERROR_TYPE]),
    ("error_message", DEFAULTS[ERROR_MESSAGE]), ("response_status_code", 500),
    ("response_body", ""), ("expires_at", None), ("experiment_id", ""),
    ("proxy_port", DEFAULT_PROXY_PORT), ("upstream", ""),
    ("metrics_namespace", DEFAULTS[METRICS_NAMESPACE]), ("decision_seed", ""), ("problems", ()),
)


class FaultConfig:
    """A validated fault, immutable. `fault_type is None` means pass everything through.

    Fields: fault_type, latency_ms, latency_jitter_ms, percentage, prevent_execution,
    error_type, error_message, response_status_code, response_body, expires_at (aware UTC
    datetime or None), experiment_id, proxy_port, upstream, metrics_namespace, decision_seed,
    problems.
    """

    __slots__ = tuple(name for name, _ in _FIELDS)

    def __init__(self, **values: Any) -> None:
        unknown = set(values) - set(self.__slots__)
        if unknown:
            raise TypeError(f"FaultConfig has no field(s) {sorted(unknown)}; its fields are "
                            f"{', '.join(self.__slots__)}")
        for name, default in _FIELDS:
            object.__setattr__(self, name, values.get(name, default))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("FaultConfig is immutable: build another with from_environ()")

    def _values(self) -> Tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return type(other) is FaultConfig and self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        return "FaultConfig(" + ", ".join(
            f"{name}={getattr(self, name)!r}" for name in self.__slots__) + ")"

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> "FaultConfig":
        """Parse a mapping (normally os.environ). Any bad fault value disables the fault."""
        problems: List[str] = []

        def get(name: str, parse: Callable[[str], object], default: object) -> object:
            raw = environ.get(name, "")
            if raw.strip() == "":
                return default
            try:
                return parse(raw.strip())
            except ValueError as exc:
                problems.append(f"{name}={raw!r} is invalid: {exc}; no fault is injected")
                return default

        fault_type = get(FAULT_TYPE, _fault_type, None)
        values = dict(
            latency_ms=get(LATENCY_MS, _non_negative_int, 0),
            latency_jitter_ms=get(LATENCY_JITTER_MS, _non_negative_int, 0),
            percentage=get(INVOCATION_PERCENTAGE, _percentage, 100.0),
            prevent_execution=get(PREVENT_EXECUTION, parse_bool, False),
            error_type=environ.get(ERROR_TYPE) or DEFAULTS[ERROR_TYPE],
            error_message=environ.get(ERROR_MESSAGE) or DEFAULTS[ERROR_MESSAGE],
            response_status_code=get(RESPONSE_STATUS_CODE, _status_code, 500),
            response_body=environ.get(RESPONSE_BODY, ""),
            expires_at=get(EXPIRES_AT, parse_utc_time, None),
            experiment_id=environ.get(EXPERIMENT_ID, ""),
            metrics_namespace=environ.get(METRICS_NAMESPACE) or DEFAULTS[METRICS_NAMESPACE],
            decision_seed=environ.get(DECISION_SEED, "").strip(),
        )
        port = get(PROXY_PORT, _port, DEFAULT_PROXY_PORT)
        upstream = get(UPSTREAM_RUNTIME_API, _host_port, "") or environ.get(RUNTIME_API, "")
        if problems:
            fault_type = None
        return cls(fault_type=fault_type, proxy_port=port, upstream=upstream,
                   problems=tuple(problems), **values)

    def active(self, now: Optional[_dt.datetime] = None) -> bool:
        """True while a fault is configured and its expiry (if any) has not passed."""
        if self.fault_type is None:
            return False
        if self.expires_at is None:
            return True
        now = now or _dt.datetime.now(_dt.timezone.utc)
        return now < self.expires_at


# --- Parsers: each raises ValueError with a message that says what is accepted ----------------

def _fault_type(raw: str) -> str:
    value = raw.lower()
    if value not in FAULT_TYPES:
        raise ValueError(f"expected one of {', '.join(FAULT_TYPES)}")
    return value


def _whole_number(raw: str, low: int, high: float, expected: str, out_of_range: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(expected) from None
    if not low <= value <= high:
        raise ValueError(out_of_range)
    return value


def _non_negative_int(raw: str) -> int:
    return _whole_number(raw, 0, math.inf, "expected a whole number of milliseconds, e.g. 2000",
                         "expected a number ≥ 0")


def _percentage(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("expected a number from 0 to 100, e.g. 12.5") from None
    if math.isnan(value) or not 0.0 <= value <= 100.0:
        raise ValueError("expected a number from 0 to 100")
    return value


def _status_code(raw: str) -> int:
    return _whole_number(raw, 100, 599, "expected an HTTP status code, e.g. 503",
                         "expected an HTTP status code from 100 to 599")


def _port(raw: str) -> int:
    return _whole_number(raw, 0, 65535, "expected a TCP port number",
                         "expected a TCP port from 0 (any free port) to 65535")


def _host_port(raw: str) -> str:
    host, sep, port = raw.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError("expected host:port, e.g. 127.0.0.1:9100")
    return raw


def parse_bool(raw: str) -> bool:
    """`true`/`false` in any case (also 1/0, yes/no), as SSM and the CLI may send them."""
    value = raw.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise ValueError("expected true or false")


def parse_utc_time(raw: str) -> _dt.datetime:
    """ISO-8601 time; `Z` and offsets accepted (Python 3.9's fromisoformat lacks `Z`)."""
    text = raw.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        value = _dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("expected an ISO-8601 UTC time, e.g. 2026-01-31T12:00:00Z") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.timezone.utc)
    return value.astimezone(_dt.timezone.utc)


def format_utc_time(value: _dt.datetime) -> str:
    """The form the automation writes to CHAOS_EXPIRES_AT: second precision, `Z`."""
    return value.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# Variables the automation writes on attach and removes (or restores) on detach.
AUTOMATION_VARIABLES: Tuple[str, ...] = tuple(s.name for s in SETTINGS if s.set_by_automation)
