"""A local Lambda execution environment: the Runtime and Extensions APIs, and their processes.

``ExecutionEnvironment`` is what the layer's tests, the benchmark and the local experiment's
sandbox use. It follows Lambda's lifecycle:

1. **Init** — start each executable in ``<opt_dir>/extensions/`` (sorted) and wait until each
   has registered; then start the runtime (through ``AWS_LAMBDA_EXEC_WRAPPER`` when the
   function sets one, with a leading ``/opt/`` mapped to ``opt_dir``); init is complete when
   the runtime and every extension have called their ``/next``.
2. **Invoke** — INVOKE to the extensions registered for it, the event to the runtime; the
   invocation is complete when the runtime has answered *and* each of those extensions has
   called ``/next`` again. The deadline is enforced: a timeout kills the environment and the
   next invoke initialises a new one, as Lambda resets a sandbox.
3. **Shutdown** — the runtime is stopped, SHUTDOWN (``spindown``) goes to the extensions, which
   get up to 2 s to exit before they are killed.

A handler's failure is a result, never an exception: ``InvokeResult.status`` is ``success``,
``error``, ``timeout`` or ``crash``, with the ``errorType`` Lambda would report.

``max_concurrency=N`` makes it a Lambda Managed Instances environment instead: up to N
invocations in flight at once (``invoke`` from N threads), each with its own deadline, and
the differences listed in ``local_emulator/environment/managed_instances.py``.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import threading
import time
import uuid
from collections import deque
from typing import Callable, Deque, Dict, List, Mapping, Optional, Sequence, Union

from local_emulator.errors import EnvironmentClosedError, PayloadTooLargeError
from local_emulator.environment.http_server import HttpServer, Request, Response
from local_emulator.environment.init_phase import (InitFailure, init_complete, init_timeout,
                                        registration_complete, registration_timeout)
from local_emulator.environment.lambda_apis import MAX_PAYLOAD_BYTES, Invocation, LambdaApis
from local_emulator.environment import managed_instances
from local_emulator.environment import runtimes
from local_emulator.environment.processes import LogBuffer, ManagedProcess, socket_owner
from local_emulator.environment.results import (Headers, InitResult, InvokeResult, InvokeStatus, error_payload,
                                    exit_description)
from local_emulator.environment.sandbox_env import build_environment, validate_configuration

__all__ = ["ExecutionEnvironment", "InitResult", "InvokeResult", "InvokeStatus", "Headers",
           "MAX_PAYLOAD_BYTES", "DEFAULT_ACCOUNT_ID", "SHUTDOWN_GRACE_S", "HISTORY_LENGTH"]

DEFAULT_ACCOUNT_ID = "123456789012"
SHUTDOWN_GRACE_S = 2.0       # what Lambda gives external extensions after SHUTDOWN
_RUNTIME_TERM_GRACE_S = 0.3  # SIGTERM → SIGKILL for the runtime on a clean spindown
_EXEC_WRAPPER = "AWS_LAMBDA_EXEC_WRAPPER"
HISTORY_LENGTH = 1000


class ExecutionEnvironment:
    """One Lambda execution environment on this machine (see the module docstring).

    ``runtime`` is the function's ``Runtime`` (``python3.12``, ``nodejs22.x``, ...; None: this
    interpreter's Python): its own runtime client and variables (local_emulator/environment/runtimes.py).
    ``log_sink(line)`` receives every line the runtime and the extensions write, as Lambda
    sends them to the function's log group (the sandbox hands them to CloudWatch Logs' EMF).

    Raises InvalidConfigurationError (or its ReservedVariableError, UnsupportedRuntimeError) for
    arguments Lambda would reject or a runtime the emulator cannot run; start/invoke raise
    EnvironmentClosedError after shutdown().
    """

    def __init__(self, handler: str, task_root: str, opt_dir: Optional[str] = None,
                 environment: Optional[Mapping[str, str]] = None, function_name: str = "fn",
                 function_version: str = "$LATEST", memory_mb: int = 128,
                 timeout_s: float = 3.0, region: str = "us-east-1",
                 runtime_command: Optional[Sequence[str]] = None, *,
                 runtime: Optional[str] = None,
                 account_id: str = DEFAULT_ACCOUNT_ID, init_timeout_s: Optional[float] = None,
                 max_concurrency: Optional[int] = None,
                 log_sink: Optional[Callable[[str], None]] = None):
        validate_configuration(handler, task_root, opt_dir, environment or {}, memory_mb, timeout_s)
        self.runtime = runtimes.resolve(runtime)
        self.max_concurrency = managed_instances.validate_max_concurrency(
            max_concurrency, environment or {})
        self.handler = handler
        self.task_root = os.path.abspath(task_root)
        self.opt_dir = os.path.abspath(opt_dir) if opt_dir else None
        self.function_environment = dict(environment or {})
        self.function_name, self.function_version = function_name, function_version
        self.memory_mb, self.timeout_s, self.region = memory_mb, float(timeout_s), region
        self.account_id = account_id
        if init_timeout_s is None:
            init_timeout_s = (10.0 if self.max_concurrency is None
                              else managed_instances.init_timeout_s(timeout_s))
        self.init_timeout_s = float(init_timeout_s)
        self.runtime_command = list(runtime_command or
                                    self.runtime.command(handler, memory_mb, environment or {}))
        self.function_arn = f"arn:aws:lambda:{region}:{account_id}:function:{function_name}"
        self._server = HttpServer(self._route).start()
        self.runtime_api_address = self._server.address
        try:
            self._process_env = build_environment(
                runtime_api=self.runtime_api_address, handler=handler, task_root=self.task_root,
                opt_dir=self.opt_dir, function_env=self.function_environment,
                function_name=function_name, function_version=function_version,
                memory_mb=memory_mb, region=region, runtime=self.runtime)
        except Exception:
            self._server.stop()
            raise
        if self.max_concurrency is not None:
            self._process_env.update(managed_instances.runtime_variables(self.max_concurrency))
        self._lock = threading.RLock()
        # Every line the runtime and the extensions write also goes to `log_sink` (Lambda sends
        # them all to the function's log group), whichever process wrote it.
        self._logs = LogBuffer(None if log_sink is None else lambda _source, line: log_sink(line))
        self._apis: Optional[LambdaApis] = None
        self._runtime: Optional[ManagedProcess] = None
        self._extensions: List[ManagedProcess] = []
        self._ready = False
        self._closed = False
        self.last_init: Optional[InitResult] = None
        self.init_count = 0
        # The latest results, for tests and reports; bounded so a long load run stays small.
        self.history: Deque[InvokeResult] = deque(maxlen=HISTORY_LENGTH)

    # --- public interface ------------------------------------------------------------------
    @property
    def process_environment(self) -> Dict[str, str]:
        """A copy of the variables every runtime and extension process starts with."""
        return dict(self._process_env)

    def start(self, init_timeout_s: Optional[float] = None) -> InitResult:
        """Run the Init phase (no-op if the environment is already initialised)."""
        with self._lock:
            self._check_open()
            if self._ready and self.last_init is not None:
                return self.last_init
            return self._init(self.init_timeout_s if init_timeout_s is None else init_timeout_s)

    def invoke(self, payload: Union[bytes, bytearray, str] = b"{}",
               request_id: Optional[str] = None,
               client_context: Union[None, str, Mapping] = None, *,
               cognito_identity: Union[None, str, Mapping] = None,
               trace_id: Optional[str] = None, qualifier: Optional[str] = None) -> InvokeResult:
        """Deliver one event and block until the response, an error, the timeout or a crash.

        Cold-starts first if needed (an init failure is returned as an ``error`` result with
        the init's errorType). Raises PayloadTooLargeError for an event over 6 MB, and on a
        Managed Instances environment EnvironmentBusyError when its N workers are all busy.
        """
        event = _as_bytes(payload, "payload")
        if len(event) > MAX_PAYLOAD_BYTES:
            raise PayloadTooLargeError(
                f"the event is {len(event):,} bytes; Lambda accepts at most "
                f"{MAX_PAYLOAD_BYTES:,} bytes for a synchronous invoke: pass a reference "
                f"(an S3 key, say) instead of the data")
        request_id = request_id or str(uuid.uuid4())
        details = (client_context, cognito_identity, trace_id, qualifier)
        if self.max_concurrency is not None:
            return self._record(self._invoke_concurrently(event, request_id, details))
        with self._lock:
            init, refused = self._prepare(request_id)
            if refused is not None:
                return self._record(refused)
            return self._record(self._invoke(event, request_id, details, init))

    def logs(self, source: Optional[str] = None) -> str:
        """Everything the processes wrote so far; ``source`` = ``"runtime"`` or an extension's name."""
        return self._logs.text(source)

    def shutdown(self) -> None:
        """SHUTDOWN to the extensions, then stop every process and the server. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._teardown("spindown")
            finally:
                self._server.stop()

    def __enter__(self) -> "ExecutionEnvironment":
        return self

    def __exit__(self, *exc_info) -> None:
        self.shutdown()

    def client_process(self, client_address: Optional[str]) -> Optional[str]:
        """Which of this environment's processes owns the client end of a live connection.

        ``"runtime"`` or an extension's file name, for ``InvokeResult.client_address`` (the
        runtime keeps its connection open, so this works after the invocation); None if the
        connection is gone or belongs to no process of this environment. Linux only (/proc).
        """
        if not client_address:
            return None
        owners = {p.pid: p.name for p in ([self._runtime] if self._runtime else []) + self._extensions}
        return socket_owner(client_address, owners, peer=self.runtime_api_address)

    def in_flight(self) -> Dict[str, str]:
        """The unanswered invocations by request id: ``waiting`` for a runtime's ``/next``,
        ``delivered`` to the runtime (or a proxy in front of it), or ``timed out`` (Managed
        Instances: failed alone, its worker still running it)."""
        apis = self._apis
        if apis is None:
            return {}
        with apis.cv:
            return {i.request_id: "timed out" if i.timed_out else
                    "delivered" if i.delivered else "waiting"
                    for i in apis.invocations.values() if not i.answered}

    def extension_events(self, name: str) -> List[dict]:
        """The events delivered to extension ``name`` by the current (or last) initialisation."""
        apis = self._apis
        record = apis.by_name(name) if apis else None
        return list(record.received) if record else []

    # --- init ------------------------------------------------------------------------------
    def _init(self, init_timeout_s: float) -> InitResult:
        started = time.monotonic()
        deadline = started + init_timeout_s
        self.init_count += 1
        try:
            paths = self._extension_paths()
            apis = LambdaApis(self.function_name, self.function_version, self.handler,
                              self.account_id, [os.path.basename(p) for p in paths],
                              max_concurrency=self.max_concurrency)
            self._apis = apis
            for path in paths:
                self._extensions.append(self._launch(apis, "extension", os.path.basename(path),
                                                     [path], "Extension.LaunchError"))
            self._wait(apis, deadline, lambda: registration_complete(apis),
                       lambda: registration_timeout(apis, init_timeout_s))
            self._runtime = self._launch(apis, "runtime", "runtime", self._runtime_argv(),
                                         "Runtime.InvalidEntrypoint")
            self._wait(apis, deadline, lambda: init_complete(apis),
                       lambda: init_timeout(apis, init_timeout_s))
        except InitFailure as failure:
            self._teardown("failure")
            result = InitResult(False, _ms_since(started), f"{failure.error_type}: {failure.message}",
                                failure.error_type, failure.payload)
        else:
            with apis.cv:
                apis.init_done = True
                apis.registration_open = False
            self._ready = True
            result = InitResult(True, _ms_since(started))
        self.last_init = result
        return result

    def _extension_paths(self) -> List[str]:
        if not self.opt_dir:
            return []
        folder = os.path.join(self.opt_dir, "extensions")
        if not os.path.isdir(folder):
            return []
        paths = [os.path.join(folder, n) for n in sorted(os.listdir(folder))
                 if os.path.isfile(os.path.join(folder, n))]
        for path in paths:
            if not os.access(path, os.X_OK):
                raise InitFailure("Extension.LaunchError",
                                  f"extension {path} is not executable (chmod +x it in the layer)")
        return paths

    def _runtime_argv(self) -> List[str]:
        wrapper = self.function_environment.get(_EXEC_WRAPPER)
        if not wrapper:
            return list(self.runtime_command)
        mapped = self._map_opt(wrapper)
        if not (os.path.isfile(mapped) and os.access(mapped, os.X_OK)):
            hint = "" if self.opt_dir or not wrapper.startswith("/opt/") else \
                " (pass opt_dir so /opt/ paths map to the extracted layers)"
            raise InitFailure("Runtime.InvalidEntrypoint",
                              f"{_EXEC_WRAPPER}={wrapper} ({mapped}) is not an executable file{hint}")
        return [mapped] + list(self.runtime_command)

    def _map_opt(self, path: str) -> str:
        if self.opt_dir and path.startswith("/opt/"):
            return os.path.join(self.opt_dir, path[len("/opt/"):])
        return path

    def _launch(self, apis: LambdaApis, role: str, name: str, argv: List[str],
                error_type: str) -> ManagedProcess:
        try:
            return ManagedProcess(role, name, argv, self._process_env, self.task_root, self._logs,
                                  on_exit=lambda code: apis.process_exited(role, name, code))
        except OSError as exc:
            raise InitFailure(error_type, f"cannot start {role} {argv[0]}: {exc}")

    def _wait(self, apis: LambdaApis, deadline: float, check: Callable[[], bool],
              on_timeout: Callable[[], InitFailure]) -> None:
        """Block until ``check()`` is true (it raises InitFailure to stop early) or deadline."""
        with apis.cv:
            while not check():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise on_timeout()
                apis.cv.wait(remaining)

    # --- invoke ----------------------------------------------------------------------------
    def _prepare(self, request_id: str):
        """Under ``_lock``: cold-start if needed; (the init it ran or None, a refusal or None)."""
        self._check_open()
        init = None
        if self._ready and self._died_since_init():
            self._teardown("failure")  # a process exited between invocations: cold start
        if not self._ready:
            init = self._init(self.init_timeout_s)
            if not init.ok:
                return init, InvokeResult(
                    request_id, "error", init.payload or error_payload(init.error_type, init.error),
                    Headers(), init.error_type, init.duration_ms, init=init)
        return init, None

    def _invoke(self, event: bytes, request_id: str, details: tuple,
                init: Optional[InitResult]) -> InvokeResult:
        """One invocation at a time (under ``_lock``): a timeout or a crash resets the environment."""
        apis = self._apis
        assert apis is not None
        invocation, started = self._invocation(event, request_id, details)
        apis.dispatch(invocation)
        outcome = self._await(apis, invocation)
        result = self._result(apis, invocation, outcome, started, init)
        if outcome == "timeout":
            self._teardown("timeout")
        elif (outcome == "crash" or result.error_type == "Function.ResponseSizeTooLarge"
              or self._died_since_init()):
            # A crash; a process died after answering; or the runtime was refused its response
            # (413: awslambdaric then exits): reset now, so the next invoke starts cleanly.
            self._teardown("failure")
        return result

    def _invoke_concurrently(self, event: bytes, request_id: str, details: tuple) -> InvokeResult:
        """Managed Instances: dispatch under ``_lock``, wait without it; a timeout fails alone."""
        with self._lock:
            init, refused = self._prepare(request_id)
            if refused is not None:
                return refused
            apis = self._apis
            assert apis is not None
            invocation, started = self._invocation(event, request_id, details)
            apis.dispatch(invocation)  # EnvironmentBusyError when every worker is busy
        outcome = self._await(apis, invocation)
        result = self._result(apis, invocation, outcome, started, init)
        if outcome == "timeout":
            apis.give_up(invocation)  # the environment is not reset: the others carry on
        elif outcome == "crash" or self._died_since_init(apis):
            with self._lock:  # a process of this environment died: every invocation ends
                if self._apis is apis and self._ready:
                    self._teardown("failure")
        return result

    def _invocation(self, event: bytes, request_id: str, details: tuple):
        client_context, cognito_identity, trace_id, qualifier = details
        arn = f"{self.function_arn}:{qualifier}" if qualifier else self.function_arn
        started = time.monotonic()
        return Invocation(
            request_id=request_id, event=event,
            deadline_ms=int(time.time() * 1000 + self.timeout_s * 1000),
            deadline=started + self.timeout_s, invoked_function_arn=arn,
            trace_id=trace_id or _new_trace_id(),
            client_context=_as_json_text(client_context),
            cognito_identity=_as_json_text(cognito_identity)), started

    def _result(self, apis: LambdaApis, invocation: Invocation, outcome: str, started: float,
                init: Optional[InitResult]) -> InvokeResult:
        request_id, duration = invocation.request_id, _ms_since(started)
        if outcome == "timeout":
            message = (f"{_dt.datetime.now(_dt.timezone.utc).isoformat(timespec='milliseconds')} "
                       f"{request_id} Task timed out after {self.timeout_s:.2f} seconds")
            return InvokeResult(request_id, "timeout", json.dumps({"errorMessage": message}).encode(),
                                Headers(), "Sandbox.Timedout", duration, init=init)
        if outcome == "crash":
            if invocation.extension_crash and not invocation.answered:
                error_type, message = "Extension.Crash", invocation.extension_crash
            elif apis.runtime_exit is None:  # Managed Instances: reset by another invocation
                error_type = "Runtime.ExitError"
                message = (f"RequestId: {request_id} Error: the execution environment was reset "
                           f"while this invocation was in flight (see env.logs())")
            else:
                error_type = "Runtime.ExitError"
                message = (f"RequestId: {request_id} Error: Runtime exited with error: "
                           f"{exit_description(apis.runtime_exit)}")
            return InvokeResult(request_id, "crash", error_payload(error_type, message), Headers(),
                                error_type, duration, init=init)
        return InvokeResult(
            request_id, invocation.status, invocation.payload, Headers(invocation.headers),
            invocation.error_type, duration, Headers(invocation.trailers),
            invocation.client_address, invocation.response_mode, init)

    def _died_since_init(self, apis: Optional[LambdaApis] = None) -> bool:
        apis = apis or self._apis
        return apis is None or apis.runtime_exit is not None or bool(apis.extension_exits)

    def _await(self, apis: LambdaApis, invocation: Invocation) -> str:
        with apis.cv:
            while True:
                if invocation.answered and not invocation.pending_extensions:
                    return "done"
                if not invocation.answered and (apis.runtime_exit is not None or apis.closed
                                                or invocation.extension_crash):
                    return "crash"
                remaining = invocation.deadline - time.monotonic()
                if remaining <= 0:
                    return "timeout"
                apis.cv.wait(remaining)

    def _record(self, result: InvokeResult) -> InvokeResult:
        self.history.append(result)
        return result

    # --- teardown --------------------------------------------------------------------------
    def _teardown(self, reason: str) -> None:
        """Stop the runtime, SHUTDOWN the extensions (≤ 2 s), kill what is left, reset state."""
        apis, runtime, extensions = self._apis, self._runtime, self._extensions
        self._ready, self._runtime, self._extensions = False, None, []
        if runtime is not None:
            runtime.stop(grace_s=_RUNTIME_TERM_GRACE_S if reason == "spindown" else 0.0)
        if apis is not None and extensions:
            deadline = time.monotonic() + SHUTDOWN_GRACE_S
            told = {r.name for r in apis.send_shutdown(reason, int(time.time() * 1000
                                                                  + SHUTDOWN_GRACE_S * 1000))}
            for process in extensions:
                if process.name in told:
                    process.wait(deadline - time.monotonic())
        for process in extensions:
            process.stop()
        if apis is not None:
            apis.close()
        self._server.close_connections()

    def _route(self, request: Request) -> Optional[Response]:
        apis = self._apis
        if apis is None:
            return None
        return apis.handle(request)

    def _check_open(self) -> None:
        if self._closed:
            raise EnvironmentClosedError(
                f"the execution environment of {self.function_name!r} has been shut down; "
                f"create a new ExecutionEnvironment to invoke it again")


def _as_bytes(value, name: str) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    raise TypeError(f"{name} must be bytes or str (a JSON document), got {type(value).__name__}")


def _as_json_text(value) -> Optional[str]:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def _new_trace_id() -> str:
    return (f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};"
            f"Parent={uuid.uuid4().hex[:16]};Sampled=0")


def _ms_since(started: float) -> float:
    return (time.monotonic() - started) * 1000.0
