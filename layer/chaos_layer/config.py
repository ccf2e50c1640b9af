"""The layer's configuration: every environment variable, its default and its meaning.

They are defined once, in `layer/settings.json`, which the Go extension embeds and this module
reads; the SSM automation, the FIS templates, the README table and the tests import the names
below instead of retyping them, so a misspelt variable cannot be set in one place and read in
another. Each name is assigned from the setting with that "constant" key; a key missing from the
JSON fails at import, naming the key. Parsing never raises: a bad value means "no fault" plus one
log line naming the variable and the value, because the layer must fail open inside a customer's
function.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
import re

# dataclasses and typing would add ~10 ms of imports (inspect, re) to every use of this module,
# so the two record types below are plain classes and typing is read by type checkers only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Literal, Mapping, Optional, Tuple

    FaultType = Literal["latency", "error", "response"]

SETTINGS_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                             "settings.json")


def _load(path: str) -> Dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError) as exc:
        raise RuntimeError(f"cannot read the layer's settings from {path}: {exc}; restore "
                           "layer/settings.json from the repository") from None


_DATA = _load(SETTINGS_FILE)


class Setting:
    """One row of the configuration table: a variable, its type, its default, what it means.

    `default` is the README's text for the default; `default_value` the value the code uses
    (None: unset); `kind` names how a value is parsed (`PARSERS`).
    """

    __slots__ = ("constant", "name", "kind", "default_value", "type", "default", "meaning",
                 "set_by_automation")

    def __init__(self, entry: Mapping[str, Any]) -> None:
        self.constant, self.name, self.kind = entry["constant"], entry["name"], entry["kind"]
        self.default_value, self.type = entry["default"], entry["type"]
        self.default, self.meaning = entry["default_text"], entry["meaning"]
        self.set_by_automation = bool(entry["set_by_automation"])

    def __repr__(self) -> str:
        return f"Setting({self.name!r}, default={self.default_value!r})"


SETTINGS: Tuple[Setting, ...] = tuple(Setting(entry) for entry in _DATA["settings"])
_BY_CONSTANT: Dict[str, Setting] = {s.constant: s for s in SETTINGS}


def _setting(constant: str) -> Setting:
    try:
        return _BY_CONSTANT[constant]
    except KeyError:
        raise RuntimeError(f"{SETTINGS_FILE} defines no setting with constant {constant!r}; "
                           "add it there (the Go extension reads the same file)") from None


FAULT_TYPES: Tuple[str, ...] = tuple(_DATA["fault_types"])

# --- Names -----------------------------------------------------------------------------------
FAULT_TYPE = _setting("FAULT_TYPE").name
LATENCY_MS = _setting("LATENCY_MS").name
LATENCY_JITTER_MS = _setting("LATENCY_JITTER_MS").name
INVOCATION_PERCENTAGE = _setting("INVOCATION_PERCENTAGE").name
PREVENT_EXECUTION = _setting("PREVENT_EXECUTION").name
ERROR_TYPE = _setting("ERROR_TYPE").name
ERROR_MESSAGE = _setting("ERROR_MESSAGE").name
RESPONSE_STATUS_CODE = _setting("RESPONSE_STATUS_CODE").name
RESPONSE_BODY = _setting("RESPONSE_BODY").name
EXPIRES_AT = _setting("EXPIRES_AT").name
EXPERIMENT_ID = _setting("EXPERIMENT_ID").name
PROXY_PORT = _setting("PROXY_PORT").name
UPSTREAM_RUNTIME_API = _setting("UPSTREAM_RUNTIME_API").name
ORIGINAL_EXEC_WRAPPER = _setting("ORIGINAL_EXEC_WRAPPER").name
METRICS_NAMESPACE = _setting("METRICS_NAMESPACE").name
RESTORE_STATE = _setting("RESTORE_STATE").name
DECISION_SEED = _setting("DECISION_SEED").name

# Variables Lambda itself defines that the layer reads or the automation sets.
EXEC_WRAPPER: str = _DATA["lambda_variables"]["exec_wrapper"]
RUNTIME_API: str = _DATA["lambda_variables"]["runtime_api"]

# Where the layer's files land when Lambda extracts it under /opt.
LAYER_ROOT: str = _DATA["layer"]["root"]
WRAPPER_PATH: str = _DATA["layer"]["wrapper_path"]
EXTENSION_NAME: str = _DATA["layer"]["extension_name"]

# Default port: clear of the AWS FIS extension (9100) and failure-lambda (9009).
DEFAULT_PROXY_PORT: int = _DATA["layer"]["default_proxy_port"]

# The extension writes "<port> <pid>" here once its proxy listens, before it registers; the
# wrapper reads it (a shell `read`, no process start) to learn the proxy is up and the fault
# valid. Keyed by the Runtime API address, so concurrent local environments never share one;
# inside Lambda /tmp belongs to one execution environment. `wrapper` spells the same pattern.
READY_FILE_PATTERN: str = _DATA["layer"]["ready_file_pattern"]

# --- Runtimes and architectures ----------------------------------------------------------------
# ACCEPTED_RUNTIMES: every managed runtime whose bootstrap honours AWS_LAMBDA_EXEC_WRAPPER; the
# automation attaches to these. COMPATIBLE_RUNTIMES: what the layer version lists (the Lambda
# API allows at most 15; Lambda does not enforce the list). OS_ONLY_RUNTIMES: the `provided`
# family, whose bootstrap ignores the wrapper. ARCHITECTURES: the layer's binaries.
ACCEPTED_RUNTIMES: Tuple[str, ...] = tuple(_DATA["runtimes"]["accepted"])
COMPATIBLE_RUNTIMES: Tuple[str, ...] = tuple(_DATA["runtimes"]["compatible_runtimes"])
OS_ONLY_RUNTIMES: Tuple[str, ...] = tuple(_DATA["runtimes"]["os_only"])
ARCHITECTURES: Tuple[str, ...] = tuple(_DATA["architectures"])


def runtime_language(runtime: str) -> str:
    """'nodejs22.x' -> 'nodejs', 'java8.al2' -> 'java': one binary serves every version."""
    return re.match(r"[a-z]*", runtime).group()


def ready_file(runtime_api: str) -> str:
    """Path of the ready file for the Runtime API at `runtime_api` ("host:port")."""
    return READY_FILE_PATTERN.format(runtime_api=runtime_api)


# The non-empty defaults of the text settings: the automation shows them as parameter defaults.
DEFAULTS: Dict[str, str] = {s.name: s.default_value for s in SETTINGS
                            if s.kind == "text" and s.default_value}


def _default(constant: str) -> Any:
    return _setting(constant).default_value


# FaultConfig's fields and defaults, in order: each field's default is its setting's.
_FIELDS: Tuple[Tuple[str, Any], ...] = (
    ("fault_type", _default("FAULT_TYPE")), ("latency_ms", _default("LATENCY_MS")),
    ("latency_jitter_ms", _default("LATENCY_JITTER_MS")),
    ("percentage", float(_default("INVOCATION_PERCENTAGE"))),
    ("prevent_execution", _default("PREVENT_EXECUTION")), ("error_type", _default("ERROR_TYPE")),
    ("error_message", _default("ERROR_MESSAGE")),
    ("response_status_code", _default("RESPONSE_STATUS_CODE")),
    ("response_body", _default("RESPONSE_BODY")), ("expires_at", _default("EXPIRES_AT")),
    ("experiment_id", _default("EXPERIMENT_ID")), ("proxy_port", _default("PROXY_PORT")),
    ("upstream", _default("UPSTREAM_RUNTIME_API") or ""),
    ("metrics_namespace", _default("METRICS_NAMESPACE")),
    ("decision_seed", _default("DECISION_SEED")), ("problems", ()),
)
_DEFAULT_OF = dict(_FIELDS)


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

        d = _DEFAULT_OF
        fault_type = get(FAULT_TYPE, _fault_type, d["fault_type"])
        values = dict(
            latency_ms=get(LATENCY_MS, _non_negative_int, d["latency_ms"]),
            latency_jitter_ms=get(LATENCY_JITTER_MS, _non_negative_int, d["latency_jitter_ms"]),
            percentage=get(INVOCATION_PERCENTAGE, _percentage, d["percentage"]),
            prevent_execution=get(PREVENT_EXECUTION, parse_bool, d["prevent_execution"]),
            error_type=environ.get(ERROR_TYPE) or d["error_type"],
            error_message=environ.get(ERROR_MESSAGE) or d["error_message"],
            response_status_code=get(RESPONSE_STATUS_CODE, _status_code,
                                     d["response_status_code"]),
            response_body=environ.get(RESPONSE_BODY, d["response_body"]),
            expires_at=get(EXPIRES_AT, parse_utc_time, d["expires_at"]),
            experiment_id=environ.get(EXPERIMENT_ID, d["experiment_id"]),
            metrics_namespace=environ.get(METRICS_NAMESPACE) or d["metrics_namespace"],
            decision_seed=environ.get(DECISION_SEED, d["decision_seed"]).strip(),
        )
        port = get(PROXY_PORT, _port, d["proxy_port"])
        upstream = get(UPSTREAM_RUNTIME_API, _host_port, d["upstream"]) or \
            environ.get(RUNTIME_API, "")
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

# How each setting's `kind` is parsed (text-like kinds are taken as they are).
PARSERS: Dict[str, Callable[[str], Any]] = {
    "fault_type": _fault_type, "milliseconds": _non_negative_int, "percentage": _percentage,
    "boolean": parse_bool, "status_code": _status_code, "utc_time": parse_utc_time,
    "port": _port, "host_port": _host_port, "text": str, "path": str, "json": str,
}
