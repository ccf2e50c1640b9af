"""The Runtime API (2018-06-01) and Extensions API (2020-01-01) routes over one environment's state.

One ``LambdaApis`` object lives for one initialisation of an execution environment; a reset
(timeout, crash) builds a fresh one, so a long poll left over from a killed process can never
hand the next environment's event to a dead client. Every state change happens under one lock,
but each kind of waiter has its own condition on it and is woken only by what it waits for:
``cv`` the execution environment (init and invoke), ``runtime_waiters`` the runtime's
``/next``, and each extension's ``wakeup`` its ``/event/next``, only when an event is queued
for it (or at close). So an extension registered for SHUTDOWN only sleeps through every
invocation, as in Lambda: waking its long poll on each state change, as one shared condition
did, made a 1 KB invocation ~10 % slower than with no extension at all.

Status codes follow the public API reference: 200 for ``/next`` and ``register``, 202 for
posted results and errors, 400 for a request that names the wrong invocation, 403 for an
unknown extension or a call in the wrong phase, 413 for a payload over the limit, and the
``Lambda-Runtime-*`` / ``Lambda-Extension-*`` headers the clients read.
"""
from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Deque, Dict, List, Optional, Set, Tuple

from local_emulator.environment.http_server import Request, Response
from local_emulator.environment.managed_instances import check_capacity, invoke_registration_refusal

__all__ = ["LambdaApis", "Invocation", "ExtensionRecord", "MAX_PAYLOAD_BYTES",
           "MAX_STREAMED_RESPONSE_BYTES", "EXTENSION_EVENTS"]

RUNTIME_PREFIX = "/2018-06-01/runtime"
EXTENSION_PREFIX = "/2020-01-01/extension"
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024            # 6,291,456: buffered response and event limit
MAX_STREAMED_RESPONSE_BYTES = 20 * 1024 * 1024  # Lambda's default cap for a streamed response
EXTENSION_EVENTS = ("INVOKE", "SHUTDOWN")
ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
_JSON = [("Content-Type", "application/json")]


@dataclass
class Invocation:
    """One event on its way to the runtime, and whatever came back."""

    request_id: str
    event: bytes
    deadline_ms: int
    deadline: float                      # time.monotonic() value of the deadline
    invoked_function_arn: str
    trace_id: str
    client_context: Optional[str] = None
    cognito_identity: Optional[str] = None
    delivered: bool = False
    answered: bool = False
    status: str = ""
    payload: bytes = b""
    headers: List[Tuple[str, str]] = field(default_factory=list)
    trailers: List[Tuple[str, str]] = field(default_factory=list)
    error_type: Optional[str] = None
    client_address: Optional[str] = None
    response_mode: str = "buffered"
    pending_extensions: Set[str] = field(default_factory=set)
    extension_crash: Optional[str] = None
    timed_out: bool = False              # Managed Instances: failed alone, its worker still busy

    @property
    def finished(self) -> bool:
        """Answered and released by every extension: nothing will change it any more."""
        return self.answered and not self.pending_extensions

    def runtime_headers(self) -> List[Tuple[str, str]]:
        """The headers ``/next`` answers with (the runtime builds its context from them)."""
        headers = [("Content-Type", "application/json"),
                   ("Lambda-Runtime-Aws-Request-Id", self.request_id),
                   ("Lambda-Runtime-Deadline-Ms", str(self.deadline_ms)),
                   ("Lambda-Runtime-Invoked-Function-Arn", self.invoked_function_arn),
                   ("Lambda-Runtime-Trace-Id", self.trace_id)]
        if self.client_context is not None:
            headers.append(("Lambda-Runtime-Client-Context", self.client_context))
        if self.cognito_identity is not None:
            headers.append(("Lambda-Runtime-Cognito-Identity", self.cognito_identity))
        return headers

    def extension_event(self) -> dict:
        return {"eventType": "INVOKE", "deadlineMs": self.deadline_ms,
                "requestId": self.request_id, "invokedFunctionArn": self.invoked_function_arn,
                "tracing": {"type": "X-Amzn-Trace-Id", "value": self.trace_id}}


@dataclass
class ExtensionRecord:
    """A registered extension: its name, the events it asked for, and its event queue."""

    identifier: str
    name: str
    events: Tuple[str, ...]
    external: bool
    queue: Deque[dict] = field(default_factory=deque)
    wakeup: Optional[threading.Condition] = field(default=None, repr=False, compare=False)
    next_calls: int = 0
    wakeups: int = 0                     # times its /event/next long poll woke up
    delivered_request_id: Optional[str] = None
    exited: Optional[int] = None
    received: List[dict] = field(default_factory=list)


class LambdaApis:
    """State and routes of one initialisation; ``handle`` is the HTTP server's handler."""

    def __init__(self, function_name: str, function_version: str, handler: str,
                 account_id: str, external_extensions: List[str], *,
                 max_concurrency: Optional[int] = None):
        self.lock = threading.RLock()
        self.cv = threading.Condition(self.lock)               # the execution environment's waits
        self.runtime_waiters = threading.Condition(self.lock)  # the runtime's /next long polls
        self.function_name = function_name
        self.function_version = function_version
        self.handler = handler
        self.account_id = account_id
        self.external_names = list(external_extensions)
        self.extensions: Dict[str, ExtensionRecord] = {}
        self.registration_open = True
        self.init_done = False
        self.runtime_next_calls = 0
        self.init_error: Optional[Tuple[str, bytes]] = None
        self.exit_errors: List[Tuple[str, str, bytes]] = []
        self.runtime_exit: Optional[int] = None
        self.extension_exits: Dict[str, int] = {}
        # None: Lambda's default, one invocation at a time (the environment serialises them);
        # N: Managed Instances, up to N in flight, each matched by its request id.
        self.max_concurrency = max_concurrency
        self.invocations: Dict[str, Invocation] = {}  # by request id; the finished dropped at dispatch
        self.undelivered: Deque[Invocation] = deque()  # waiting for a runtime's /next
        self.closed = False

    # --- called by the execution environment -----------------------------------------------
    def by_name(self, name: str) -> Optional[ExtensionRecord]:
        for record in self.extensions.values():
            if record.name == name:
                return record
        return None

    def dispatch(self, invocation: Invocation) -> None:
        """Hand the event to the runtime and INVOKE to every extension registered for it.

        Raises EnvironmentBusyError (Managed Instances) when every worker is busy.
        """
        with self.cv:
            if self.max_concurrency is not None:
                unanswered = [i for i in self.invocations.values() if not i.answered]
                check_capacity(len(unanswered), sum(i.timed_out for i in unanswered),
                               self.max_concurrency)
            self.invocations = {k: i for k, i in self.invocations.items() if not i.finished}
            invocation.pending_extensions = set()
            for record in self.extensions.values():
                if "INVOKE" in record.events and record.exited is None:
                    record.queue.append(invocation.extension_event())
                    invocation.pending_extensions.add(record.identifier)
                    record.wakeup.notify_all()
            self.invocations[invocation.request_id] = invocation
            self.undelivered.append(invocation)
            self.runtime_waiters.notify_all()

    def give_up(self, invocation: Invocation) -> None:
        """Managed Instances: the invocation timed out alone; its worker stays busy until it answers."""
        with self.cv:
            invocation.timed_out = True

    def send_shutdown(self, reason: str, deadline_ms: int) -> List[ExtensionRecord]:
        """Queue SHUTDOWN for every live extension registered for it; returns those records."""
        with self.cv:
            targets = [r for r in self.extensions.values()
                       if "SHUTDOWN" in r.events and r.exited is None]
            for record in targets:
                record.queue.append({"eventType": "SHUTDOWN", "shutdownReason": reason,
                                     "deadlineMs": deadline_ms})
                record.wakeup.notify_all()
            return targets

    def process_exited(self, role: str, name: str, code: int) -> None:
        with self.cv:
            if role == "runtime":
                self.runtime_exit = code
            else:
                self.extension_exits[name] = code
                record = self.by_name(name)
                if record is not None:
                    record.exited = code
                    for invocation in self.invocations.values():
                        pending = record.identifier in invocation.pending_extensions
                        invocation.pending_extensions.discard(record.identifier)
                        # On Managed Instances an extension's exit ends the whole environment.
                        if pending or (self.max_concurrency is not None and not invocation.answered):
                            invocation.extension_crash = (
                                f"extension {name!r} exited with status {code} during the invocation")
            self.cv.notify_all()

    def close(self) -> None:
        """Release every long poll; their connections are closed without an answer."""
        with self.cv:
            self.closed = True
            self.cv.notify_all()
            self.runtime_waiters.notify_all()
            for record in self.extensions.values():
                record.wakeup.notify_all()

    # --- HTTP routes ---------------------------------------------------------------------
    def handle(self, request: Request) -> Optional[Response]:
        path = request.path.split("?", 1)[0]
        try:
            if path.startswith(RUNTIME_PREFIX + "/"):
                return self._runtime_route(request, path[len(RUNTIME_PREFIX):])
            if path.startswith(EXTENSION_PREFIX + "/"):
                return self._extension_route(request, path[len(EXTENSION_PREFIX):])
        except _ApiError as exc:
            return exc.response()
        return _error(404, "UnknownPath",
                      f"{request.method} {path} is not a Runtime API or Extensions API path")

    def _runtime_route(self, request: Request, path: str) -> Optional[Response]:
        if path == "/invocation/next":
            _require_method(request, "GET")
            return self._runtime_next()
        if path == "/init/error":
            _require_method(request, "POST")
            return self._runtime_init_error(request)
        parts = path.split("/")
        if len(parts) == 4 and parts[1] == "invocation" and parts[3] in ("response", "error"):
            _require_method(request, "POST")
            if parts[3] == "response":
                return self._invocation_response(request, parts[2])
            return self._invocation_error(request, parts[2])
        raise _ApiError(404, "UnknownPath", f"{request.method} {request.path} is not a Runtime API path")

    def _runtime_next(self) -> Optional[Response]:
        with self.cv:
            self.runtime_next_calls += 1
            if not self.init_done:  # only the Init phase waits on the runtime's first /next
                self.cv.notify_all()
            while True:
                if self.closed:
                    return None
                if self.undelivered:
                    invocation = self.undelivered.popleft()
                    invocation.delivered = True
                    return Response(200, invocation.event, invocation.runtime_headers())
                self.runtime_waiters.wait()

    def _current(self, request_id: str) -> Invocation:
        invocation = self.invocations.get(request_id)
        if invocation is None or not invocation.delivered:
            which = "the invocation" if self.max_concurrency is None else "an invocation"
            raise _ApiError(400, "InvalidRequestID",
                            f"request id {request_id!r} is not {which} in progress")
        if invocation.answered:
            raise _ApiError(400, "InvalidStateTransition",
                            f"invocation {request_id} has already been answered")
        return invocation

    def _invocation_response(self, request: Request, request_id: str) -> Response:
        streaming = (request.header("Lambda-Runtime-Function-Response-Mode", "").lower()
                     == "streaming")
        limit = MAX_STREAMED_RESPONSE_BYTES if streaming else MAX_PAYLOAD_BYTES
        with self.cv:
            invocation = self._current(request_id)
            invocation.headers = list(request.headers)
            invocation.trailers = list(request.trailers)
            invocation.client_address = request.client_address
            invocation.response_mode = "streaming" if streaming else "buffered"
            invocation.answered = True
            if len(request.body) > limit:
                message = (f"Response payload size ({len(request.body)} bytes) exceeded maximum "
                           f"allowed payload size ({limit} bytes).")
                invocation.status, invocation.error_type = "error", "Function.ResponseSizeTooLarge"
                invocation.payload = json.dumps({"errorMessage": message,
                                                 "errorType": invocation.error_type}).encode()
                self.cv.notify_all()
                return _error(413, "RequestEntityTooLarge", message)
            invocation.payload = request.body
            trailer_error = dict((k.lower(), v) for k, v in request.trailers).get(
                ERROR_TYPE_HEADER.lower())
            if streaming and trailer_error:
                invocation.status, invocation.error_type = "error", trailer_error
            else:
                invocation.status = "success"
            self.cv.notify_all()
        return Response(202, b'{"status":"OK"}', _JSON)

    def _invocation_error(self, request: Request, request_id: str) -> Response:
        with self.cv:
            invocation = self._current(request_id)
            invocation.headers = list(request.headers)
            invocation.client_address = request.client_address
            invocation.answered = True
            invocation.status = "error"
            invocation.error_type = _error_type(request, "Unhandled")
            invocation.payload = request.body
            self.cv.notify_all()
        return Response(202, b'{"status":"OK"}', _JSON)

    def _runtime_init_error(self, request: Request) -> Response:
        with self.cv:
            if self.init_done:
                raise _ApiError(403, "InvalidStateTransition",
                                "init/error is only accepted before the runtime's first /next")
            if self.max_concurrency is not None and self.init_error is not None:
                # awslambdaric's multi-concurrent client expects this 403 from its other workers
                raise _ApiError(403, "InvalidStateTransition",
                                "init/error has already been posted by another runtime worker")
            self.init_error = (_error_type(request, "Runtime.Unknown"), request.body)
            self.cv.notify_all()
        return Response(202, b'{"status":"OK"}', _JSON)

    def _extension_route(self, request: Request, path: str) -> Optional[Response]:
        if path == "/register":
            _require_method(request, "POST")
            return self._register(request)
        if path == "/event/next":
            _require_method(request, "GET")
            return self._extension_next(request)
        if path in ("/init/error", "/exit/error"):
            _require_method(request, "POST")
            return self._extension_error(request, path)
        raise _ApiError(404, "UnknownPath",
                        f"{request.method} {request.path} is not an Extensions API path")

    def _register(self, request: Request) -> Response:
        name = request.header("Lambda-Extension-Name")
        if not name:
            raise _ApiError(400, "InvalidRequest", "the Lambda-Extension-Name header is required "
                            "(the extension's file name in /opt/extensions)")
        try:
            events = json.loads(request.body or b"{}").get("events", [])
        except (ValueError, AttributeError):
            raise _ApiError(400, "InvalidRequest",
                            f"register body must be JSON like {{\"events\": [\"INVOKE\"]}}, "
                            f"got {request.body[:100]!r}")
        unknown = [e for e in events if e not in EXTENSION_EVENTS] if isinstance(events, list) else [events]
        if unknown:
            raise _ApiError(400, "InvalidEventType",
                            f"unknown event type(s) {unknown}; use {list(EXTENSION_EVENTS)}")
        refusal = invoke_registration_refusal(events) if self.max_concurrency is not None else None
        if refusal:
            raise _ApiError(400, "InvalidEventType", f"extension {name!r}: {refusal}")
        with self.cv:
            if not self.registration_open:
                raise _ApiError(403, "Extension.InvalidState",
                                f"extension {name!r} tried to register after the Init phase")
            if self.by_name(name) is not None:
                raise _ApiError(403, "Extension.AlreadyRegistered",
                                f"an extension named {name!r} is already registered")
            record = ExtensionRecord(str(uuid.uuid4()), name, tuple(events),
                                     external=name in self.external_names,
                                     wakeup=threading.Condition(self.lock))
            self.extensions[record.identifier] = record
            self.cv.notify_all()
        body = {"functionName": self.function_name, "functionVersion": self.function_version,
                "handler": self.handler}
        if "accountid" in request.header("Lambda-Extension-Accept-Feature", "").lower():
            body["accountId"] = self.account_id
        return Response(200, json.dumps(body).encode(),
                        _JSON + [("Lambda-Extension-Identifier", record.identifier)])

    def _record(self, request: Request) -> ExtensionRecord:
        identifier = request.header("Lambda-Extension-Identifier")
        if not identifier:
            raise _ApiError(403, "Extension.MissingExtensionIdentifier",
                            "the Lambda-Extension-Identifier header (from /register) is required")
        record = self.extensions.get(identifier)
        if record is None:
            raise _ApiError(403, "Extension.UnknownExtensionIdentifier",
                            f"no extension is registered with identifier {identifier!r}")
        return record

    def _extension_next(self, request: Request) -> Optional[Response]:
        with self.cv:
            record = self._record(request)
            record.next_calls += 1
            invocation = self.invocations.get(record.delivered_request_id or "")
            if invocation is not None:
                invocation.pending_extensions.discard(record.identifier)
            self.cv.notify_all()
            while not record.queue:
                if self.closed:
                    return None
                record.wakeup.wait()
                record.wakeups += 1
            event = record.queue.popleft()
            record.received.append(event)
            if event["eventType"] == "INVOKE":
                record.delivered_request_id = event["requestId"]
        return Response(200, json.dumps(event).encode(),
                        _JSON + [("Lambda-Extension-Event-Identifier", str(uuid.uuid4()))])

    def _extension_error(self, request: Request, path: str) -> Response:
        error_type = request.header("Lambda-Extension-Function-Error-Type")
        if not error_type:
            raise _ApiError(400, "InvalidRequest",
                            "the Lambda-Extension-Function-Error-Type header is required")
        with self.cv:
            record = self._record(request)
            if path == "/init/error":
                if self.init_done:
                    raise _ApiError(403, "InvalidStateTransition",
                                    f"extension {record.name!r} sent init/error after Init")
                self.init_error = (error_type, request.body)
            else:
                self.exit_errors.append((record.name, error_type, request.body))
            self.cv.notify_all()
        return Response(202, b'{"status":"OK"}', _JSON)


class _ApiError(Exception):
    """A route's refusal, answered as Lambda does: a status and an errorType/errorMessage body."""

    def __init__(self, status: int, error_type: str, message: str):
        super().__init__(message)
        self.status, self.error_type, self.message = status, error_type, message

    def response(self) -> Response:
        return _error(self.status, self.error_type, self.message)


def _error(status: int, error_type: str, message: str) -> Response:
    body = json.dumps({"errorMessage": message, "errorType": error_type}).encode()
    return Response(status, body, list(_JSON))


def _require_method(request: Request, method: str) -> None:
    if request.method != method:
        raise _ApiError(405, "MethodNotAllowed",
                        f"{request.path} accepts {method}, not {request.method}")


def _error_type(request: Request, default: str) -> str:
    """The header wins (the runtime's own classification); else the body's errorType."""
    header = request.header(ERROR_TYPE_HEADER)
    if header:
        return header
    try:
        body = json.loads(request.body)
        if isinstance(body, dict) and isinstance(body.get("errorType"), str):
            return body["errorType"]
    except ValueError:
        pass
    return default


def now_ms() -> int:
    return int(time.time() * 1000)
