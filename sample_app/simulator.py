"""The customer simulator (the blog's "load-gen"): open-loop traffic, measured as customers see it.

One module serves two places, so a local rehearsal and a real run measure in the same way:

- **On AWS** it is a Lambda function (`handler`) in each region; a schedule starts it every
  minute and each invocation calls the app for `SIMULATOR_RUN_SECONDS`, with `urllib` and a
  30 s timeout, like a customer. Each request opens its own connection and resolves the name
  afresh through the resolver's cache, so DNS (Route 53 latency routing), TCP and TLS are part
  of what it measures, and a failover shows up when the record's TTL lets it.
- **In the local experiment** local_emulator/experiment/load.py runs the same
  `CustomerSimulator` on the emulator's clock (template time), with a `send` that resolves the
  client's region through the emulator's Route 53 and calls that region's API Gateway.

**Open loop.** Request *n* to a path is due at `start + n / rate` whatever earlier ones did,
and its latency is counted *from that scheduled time*: a server that slows down builds a
backlog that shows as latency, instead of quietly lowering the rate (no coordinated omission).
Requests run on a thread pool sized for rate × timeout, so even requests that hang until the
timeout never hold back the ones due after them; if they did, the wait would still count.

**Metrics** are CloudWatch embedded metric format (EMF) lines, one per request, written to
`write` (stdout on AWS, where Lambda's log group turns them into metrics: no PutMetricData
call, no extra IAM). Namespace `SIMULATOR_NAMESPACE`, one dimension set `[["Api"]]` (the
called path), metrics `status_2xx`, `status_4xx`, `status_5xx` (Count, 1 for the request's
class and 0 for the other two: `Sum` is the count, `Average` the share, and every class has
data even when it never happens; 5xx includes transport failures), `region_<region>` (Count, 1,
for a 2xx whose body says `Hello from region <region>`) and `Latency` (Milliseconds, from the
scheduled time). Why one line per request, not one per second with value arrays (EMF allows
100 values a metric): a line is written the moment its request ends, so nothing is buffered
and nothing is lost when an invocation is cut short; its timestamp is that request's scheduled
time, not a shared second; a second's batch could only be written once its slowest request had
answered, up to 30 s later; and each line is also the request's log record (status, cause) for
Logs Insights. Arrays would only save log bytes, which at the default rate are ~0.4 kB a request,
about 3 MB an hour per path (CloudWatch Logs ingestion: under $0.01 an hour).
Spec: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html

**Configuration** (environment; an invocation's event may override the keys in the last column):

| variable                | default  | meaning                                                          | event key     |
|-------------------------|----------|------------------------------------------------------------------|---------------|
| `SIMULATOR_URL`         | required | the base URL customers call (http or https), e.g. the stage URL  |               |
| `SIMULATOR_PATHS`       | `/hello` | comma list of paths; each is called at the rate                  | `paths`       |
| `SIMULATOR_RATE_PER_S`  | `2`      | requests per second to each path, > 0                            | `rate_per_s`  |
| `SIMULATOR_RUN_SECONDS` | `60`     | how long one invocation drives load, > 0 and ≤ 900               | `run_seconds` |
| `SIMULATOR_NAMESPACE`   | `LoadGen`| CloudWatch namespace of the metrics (not `AWS/…`)                |               |

E.g. the event `{"rate_per_s": 10, "run_seconds": 30, "paths": ["/hello", "/health"]}` (or
`"paths": "/hello,/health"`); other keys (a schedule's own event) are ignored. An invocation
stops scheduling when less than `RESERVE_S` (the request timeout + 3 s) of its time remains,
so give the function a timeout of at least `SIMULATOR_RUN_SECONDS` + 35 s (a `[simulator]`
log line says so when an invocation starts with less).

Standard library only: it is zipped into the sample app's Lambda code as it is.
"""
from __future__ import annotations

import concurrent.futures
import datetime as _dt
import json
import math
import os
import re
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple

__all__ = ["Setting", "SETTINGS", "SimulatorConfig", "SimulatorConfigError", "Outcome",
           "CustomerSimulator", "RealClock", "status_metric", "served_region", "emf_line",
           "http_sender", "simulate", "handler", "REQUEST_TIMEOUT_S", "RESERVE_S"]

REQUEST_TIMEOUT_S = 30.0  # a customer's patience (API Gateway itself gives up at 29 s)
RESERVE_S = REQUEST_TIMEOUT_S + 3.0  # stop scheduling with this much invocation time left
MAX_WORKERS = 512  # threads per invocation (Lambda allows 1024 processes and threads)
MAX_RUN_SECONDS = 900.0  # Lambda's longest timeout
_BODY_LIMIT = 64 * 1024  # read at most this much of a body: the region is in its first line
_REGION_IN_BODY = re.compile(r"region ([a-z]{2}(?:-[a-z]+)+-\d)")

# What `send(path)` returns: (HTTP status, body) or (status, body, cause of a failure).
Send = Callable[[str], Tuple[Any, ...]]


@dataclass(frozen=True)
class Setting:
    """One environment variable: its name, default (None: required), meaning, event key."""

    name: str
    default: Optional[str]
    meaning: str
    event_key: Optional[str] = None


SETTINGS: Tuple[Setting, ...] = (
    Setting("SIMULATOR_URL", None, "the base URL customers call (http or https)"),
    Setting("SIMULATOR_PATHS", "/hello", "comma list of paths; each is called at the rate", "paths"),
    Setting("SIMULATOR_RATE_PER_S", "2", "requests per second to each path, > 0", "rate_per_s"),
    Setting("SIMULATOR_RUN_SECONDS", "60", "how long one invocation drives load", "run_seconds"),
    Setting("SIMULATOR_NAMESPACE", "LoadGen", "CloudWatch namespace of the metrics"),
)
_BY_NAME = {s.name: s for s in SETTINGS}


class SimulatorConfigError(ValueError):
    """Raised when a configuration value (environment variable or event key) is unusable."""


# --- configuration -----------------------------------------------------------------------

def _url(raw: str) -> str:
    if not raw:
        raise SimulatorConfigError(
            "SIMULATOR_URL is not set; set it to the base URL customers call, e.g. "
            "https://abc123.execute-api.us-east-1.amazonaws.com/prod or https://api.example.com")
    parts = urllib.parse.urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise SimulatorConfigError(
            f"SIMULATOR_URL={raw!r} is not an http(s) base URL; write scheme, host and an optional "
            "stage path, without query or fragment, e.g. https://api.example.com/prod")
    return raw.rstrip("/")


def _number(source: str, raw: Any, what: str, example: str, high: Optional[float] = None) -> float:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(raw, bool) or not (math.isfinite(value) and value > 0) or (high and value > high):
        bound = f"> 0 and ≤ {high:g}" if high else "> 0"
        raise SimulatorConfigError(
            f"{source}={raw!r} is not a number {bound}; set it to {what}, e.g. {example}")
    return value


def _paths(source: str, raw: Any) -> Tuple[str, ...]:
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, (list, tuple)) or not all(isinstance(p, str) for p in items):
        raise SimulatorConfigError(f"{source}={raw!r} is not a list of paths; "
                                   "write e.g. \"/hello,/health\" or [\"/hello\", \"/health\"]")
    paths = tuple(p.strip() for p in items if p.strip())
    bad = [p for p in paths if not p.startswith("/") or any(c.isspace() for c in p)]
    if not paths or bad:
        raise SimulatorConfigError(
            f"{source}={raw!r}: " + (f"{bad[0]!r} is not a path starting with '/'" if bad else
                                     "names no path") + "; write e.g. /hello or /hello,/health")
    return paths


def _namespace(raw: str) -> str:
    if not raw or len(raw) > 255 or raw.startswith("AWS/"):
        raise SimulatorConfigError(
            f"SIMULATOR_NAMESPACE={raw!r} is not a custom namespace (1-255 characters, not "
            "starting with AWS/, which CloudWatch reserves); e.g. LoadGen")
    return raw


_RATE = ("requests per second to each path", "2")
_RUN = ("the seconds one invocation drives load", "60")


@dataclass(frozen=True)
class SimulatorConfig:
    """What one invocation does; read with `from_environ`, then `overridden_by(event)`."""

    url: str
    paths: Tuple[str, ...] = ("/hello",)
    rate_per_s: float = 2.0
    run_seconds: float = 60.0
    namespace: str = "LoadGen"

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> "SimulatorConfig":
        """Read every SIMULATOR_* variable (empty counts as unset); raises SimulatorConfigError."""
        def get(name: str) -> str:
            return environ.get(name) or _BY_NAME[name].default or ""
        return cls(url=_url(get("SIMULATOR_URL")),
                   paths=_paths("SIMULATOR_PATHS", get("SIMULATOR_PATHS")),
                   rate_per_s=_number("SIMULATOR_RATE_PER_S", get("SIMULATOR_RATE_PER_S"), *_RATE),
                   run_seconds=_number("SIMULATOR_RUN_SECONDS", get("SIMULATOR_RUN_SECONDS"), *_RUN,
                                       high=MAX_RUN_SECONDS),
                   namespace=_namespace(get("SIMULATOR_NAMESPACE")))

    def overridden_by(self, event: Any) -> "SimulatorConfig":
        """This configuration with an event's `rate_per_s`, `run_seconds` and `paths`, if any."""
        if not isinstance(event, Mapping):
            return self
        changes: Dict[str, Any] = {}
        if "rate_per_s" in event:
            changes["rate_per_s"] = _number("event key rate_per_s", event["rate_per_s"], *_RATE)
        if "run_seconds" in event:
            changes["run_seconds"] = _number("event key run_seconds", event["run_seconds"], *_RUN,
                                             high=MAX_RUN_SECONDS)
        if "paths" in event:
            changes["paths"] = _paths("event key paths", event["paths"])
        return replace(self, **changes)


# --- one request, classified and written as EMF ------------------------------------------

def status_metric(status: int) -> str:
    """The blog's status metric a response counts in; anything not 2xx/4xx counts as 5xx."""
    if 200 <= status < 300:
        return "status_2xx"
    if 400 <= status < 500:
        return "status_4xx"
    return "status_5xx"


def served_region(status: int, body: str) -> Optional[str]:
    """The region that answered, read from a 2xx body (`Hello from region eu-west-1`)."""
    if not 200 <= status < 300:
        return None
    match = _REGION_IN_BODY.search(body or "")
    return match.group(1) if match else None


@dataclass(frozen=True)
class Outcome:
    """One request: path, scheduled time (clock seconds), status, latency from that time."""

    path: str
    due: float
    status: int
    latency_ms: float
    served_region: Optional[str]
    cause: str = ""  # why it failed: the API's cause, or the transport's exception

    @property
    def counts(self) -> Dict[str, int]:
        """The Count metrics of this request: every status class (1 or 0), its region's 1."""
        mine = status_metric(self.status)
        counts = {name: int(name == mine) for name in ("status_2xx", "status_4xx", "status_5xx")}
        if self.served_region:
            counts[f"region_{self.served_region}"] = 1
        return counts


def emf_line(outcome: Outcome, namespace: str, timestamp_ms: int) -> str:
    """The request's EMF document, one JSON line (see the module docstring)."""
    counts = outcome.counts
    metrics = [{"Name": name, "Unit": "Count"} for name in counts]
    metrics.append({"Name": "Latency", "Unit": "Milliseconds"})
    document: Dict[str, Any] = {
        "_aws": {"Timestamp": timestamp_ms,
                 "CloudWatchMetrics": [{"Namespace": namespace, "Dimensions": [["Api"]],
                                        "Metrics": metrics}]},
        "Api": outcome.path, **counts, "Latency": round(outcome.latency_ms, 3),
        "message": "customer request", "status": outcome.status}
    if outcome.cause:
        document["cause"] = outcome.cause
    return json.dumps(document, separators=(",", ":"))


def _stdout(line: str) -> None:
    # One write per line, so lines from concurrent requests never interleave.
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


# --- the clock and the transport on AWS --------------------------------------------------

class RealClock:
    """Real seconds: monotonic for the schedule, the system clock for metric timestamps (the
    local experiment passes its template-time Clock instead, which has the same three methods)."""

    def __init__(self) -> None:
        self._epoch_minus_monotonic = time.time() - time.monotonic()

    def now(self) -> float:
        return time.monotonic()

    def sleep_until(self, instant: float, cancel: Optional[threading.Event] = None) -> bool:
        """Sleep until `instant` (no-op if it has passed); True if `cancel` was set first."""
        delay = max(0.0, instant - self.now())
        if cancel is None:
            time.sleep(delay)
            return False
        return cancel.wait(delay)

    def wall(self, instant: Optional[float] = None) -> _dt.datetime:
        """The UTC time of a `now()` instant (now by default)."""
        at = self.now() if instant is None else instant
        return _dt.datetime.fromtimestamp(self._epoch_minus_monotonic + at, _dt.timezone.utc)


def http_sender(base_url: str, timeout_s: float = REQUEST_TIMEOUT_S) -> Send:
    """`send(path)` for a real API: GET base_url + path → (status, body). An HTTP error status
    is an answer; a transport failure (timeout, refused, DNS) raises, and counts as a 5xx."""
    def send(path: str) -> Tuple[int, str]:
        request = urllib.request.Request(base_url + path,
                                         headers={"User-Agent": "lambda-chaos-simulator"})
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                return response.status, response.read(_BODY_LIMIT).decode("utf-8", "replace")
        except urllib.error.HTTPError as error:
            try:
                body = error.read(_BODY_LIMIT).decode("utf-8", "replace")
            except OSError:
                body = ""
            return error.code, body
    return send


# --- the simulator -----------------------------------------------------------------------

class CustomerSimulator:
    """Open-loop requests to `paths`, `rate_per_s` each, one EMF line per request to `write`.

    `send(path)` is the transport and `clock` offers now(), sleep_until(t, cancel) and wall(t)
    (RealClock on AWS, the emulator's Clock locally). Requests run on `executor` if given
    (shared, not shut down here), else on an own pool of `workers` threads, by default enough
    for every request of `timeout_s` to be in flight at once. `dispatch(path, due)` replaces
    `request` as what each due request runs (the local twin notes the route it takes).
    """

    def __init__(self, send: Send, clock: Any, *, rate_per_s: float, paths: Sequence[str] = ("/hello",),
                 write: Callable[[str], None] = _stdout, namespace: str = "LoadGen",
                 timeout_s: float = REQUEST_TIMEOUT_S, workers: Optional[int] = None,
                 executor: Optional[concurrent.futures.Executor] = None,
                 dispatch: Optional[Callable[[str, float], Any]] = None) -> None:
        if not (isinstance(rate_per_s, (int, float)) and math.isfinite(rate_per_s) and rate_per_s > 0):
            raise SimulatorConfigError(f"rate_per_s={rate_per_s!r} must be a number > 0 requests "
                                       "per second to each path, e.g. 2")
        if not paths:
            raise SimulatorConfigError("paths is empty; name at least one path, e.g. ['/hello']")
        self.send, self.clock, self.write, self.namespace = send, clock, write, namespace
        self.rate_per_s = float(rate_per_s)
        self.paths = tuple(paths)
        self.workers = workers or min(MAX_WORKERS, math.ceil(rate_per_s * len(paths) * timeout_s) + 2)
        self._own_executor = executor is None
        self._executor = executor or concurrent.futures.ThreadPoolExecutor(
            max_workers=self.workers, thread_name_prefix="customer")
        self._dispatch = dispatch or self.request
        self._write_lock = threading.Lock()
        self._done = threading.Condition()
        self.scheduled = 0
        self.finished = 0
        self.counts: Counter = Counter()  # status classes of the requests finished so far
        self.errors: list = []  # what a dispatch or write raised (the first few)

    def run(self, duration_s: Optional[float] = None, *, cancel: Optional[threading.Event] = None,
            keep_going: Optional[Callable[[], bool]] = None, start_at: Optional[float] = None) -> str:
        """Schedule requests from `start_at` (default now) until `duration_s` has passed,
        `cancel` is set or `keep_going()` says no; return which. In-flight requests carry on:
        `wait` for them. The paths of one round are spread evenly over its interval."""
        interval = 1.0 / self.rate_per_s
        start = self.clock.now() if start_at is None else start_at
        n = 0
        while True:
            for j, path in enumerate(self.paths):
                due = start + (n + j / len(self.paths)) * interval
                if duration_s is not None and due >= start + duration_s:
                    return "run seconds elapsed"
                if self.clock.sleep_until(due, cancel):
                    return "cancelled"
                if keep_going is not None and not keep_going():
                    return "remaining time short"
                with self._done:
                    self.scheduled += 1
                self._executor.submit(self._fire, path, due)
            n += 1

    def request(self, path: str, due: float, send: Optional[Send] = None) -> Outcome:
        """Make one request scheduled for `due` (with `send`, or the simulator's), write its EMF
        line and return it. Never raises for the transport: an exception is a 502 with its cause."""
        try:
            status, body, *rest = (send or self.send)(path)
            status, cause = int(status), str(rest[0]) if rest and rest[0] else ""
        except Exception as exc:  # noqa: BLE001 - what a customer sees is a failed request
            status, body, cause = 502, "", f"{type(exc).__name__}: {exc}"
        latency_ms = max(0.0, self.clock.now() - due) * 1000.0
        outcome = Outcome(path, due, status, latency_ms, served_region(status, body), cause)
        line = emf_line(outcome, self.namespace, _epoch_ms(self.clock.wall(due)))
        with self._write_lock:
            self.write(line)
        with self._done:
            self.counts[status_metric(status)] += 1
        return outcome

    def _fire(self, path: str, due: float) -> None:
        try:
            self._dispatch(path, due)
        except Exception as exc:  # noqa: BLE001 - one broken write must not stop the others
            if len(self.errors) < 20:
                self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            with self._done:
                self.finished += 1
                self._done.notify_all()

    def wait(self, timeout_s: float) -> bool:
        """Wait up to `timeout_s` real seconds for every scheduled request; True if all ended."""
        deadline = time.monotonic() + max(0.0, timeout_s)
        with self._done:
            while self.finished < self.scheduled:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._done.wait(left)
        return True

    def close(self) -> None:
        """Let the own pool go (requests still in flight finish on their threads)."""
        if self._own_executor:
            self._executor.shutdown(wait=False)


def _epoch_ms(moment: _dt.datetime) -> int:
    return int(round(moment.timestamp() * 1000))


# --- the Lambda function -----------------------------------------------------------------

def simulate(config: SimulatorConfig, *, send: Optional[Send] = None, clock: Any = None,
             write: Callable[[str], None] = _stdout,
             remaining_ms: Optional[Callable[[], int]] = None) -> Dict[str, Any]:
    """Drive `config`'s load for its run seconds (or until `remaining_ms()` is under RESERVE_S),
    wait for the requests in flight, and return a summary: why it stopped and the counts."""
    clock = clock or RealClock()
    simulator = CustomerSimulator(send or http_sender(config.url), clock,
                                  rate_per_s=config.rate_per_s, paths=config.paths, write=write,
                                  namespace=config.namespace)
    keep_going = None if remaining_ms is None else (lambda: remaining_ms() > RESERVE_S * 1000)
    if remaining_ms is not None and remaining_ms() < (config.run_seconds + RESERVE_S) * 1000:
        write(f"[simulator] the invocation has {remaining_ms() / 1000:.0f} s left: it stops "
              f"scheduling with {RESERVE_S:.0f} s left, before {config.run_seconds:g} run seconds; "
              f"give the function a timeout of at least {config.run_seconds + RESERVE_S + 2:.0f} s")
    try:
        stopped = simulator.run(config.run_seconds, keep_going=keep_going)
        budget = REQUEST_TIMEOUT_S + 2 if remaining_ms is None else remaining_ms() / 1000 - 1
        simulator.wait(budget)
    finally:
        simulator.close()
    return {"stopped": stopped, "url": config.url, "paths": list(config.paths),
            "rate_per_s": config.rate_per_s, "scheduled": simulator.scheduled,
            "finished": simulator.finished, **{k: simulator.counts[k] for k in
                                                ("status_2xx", "status_4xx", "status_5xx")},
            "errors": simulator.errors}


def handler(event: Any, context: Any) -> Dict[str, Any]:
    """Lambda entry point: configuration from the environment, overridden by the event's keys.
    Raises SimulatorConfigError, naming the variable, the value and the fix."""
    config = SimulatorConfig.from_environ(os.environ).overridden_by(event)
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return simulate(config, remaining_ms=remaining)
