"""Rules of ExecutionEnvironment's lifecycle, checked with the real awslambdaric runtime client.

Each test runs real processes: ``python -m awslambdaric <handler>`` over tests/functions, and
(where named) the stdlib probe extension from tests/functions/probe_extension.py, installed into
a temporary ``opt`` folder the way Lambda extracts a layer under /opt.
"""
import hashlib
import json
import os
import sys
import threading
import time

import pytest

from local_emulator.errors import (EnvironmentClosedError, InvalidConfigurationError,
                                   PayloadTooLargeError, ReservedVariableError)
from local_emulator.environment.runtime_api import MAX_PAYLOAD_BYTES, ExecutionEnvironment

FUNCTIONS = os.path.join(os.path.dirname(__file__), "functions")
sys.path.insert(0, FUNCTIONS)
import echo  # noqa: E402  (the handlers' own helper, to rebuild expected bytes)
from environment_fixtures import environments, executable  # noqa: E402


@pytest.fixture
def make_env():
    """Build environments over tests/functions; shut each down after the test."""
    yield from environments(task_root=FUNCTIONS)


@pytest.fixture
def opt_with_probe(tmp_path):
    """An extracted-layer folder whose extensions/ holds the probe extension."""
    opt = tmp_path / "opt"
    (opt / "extensions").mkdir(parents=True)
    source = open(os.path.join(FUNCTIONS, "probe_extension.py")).read()
    executable(opt / "extensions" / "probe-extension", f"#!{sys.executable}\n{source}")
    return opt


def _probe_events(env):
    return [json.loads(line.split(" ", 1)[1]) for line in env.logs("probe-extension").splitlines()
            if line.startswith("PROBE-EVENT ")]


# --- success path -----------------------------------------------------------------------------
def test_invoke_cold_starts_then_reuses_the_warm_runtime(make_env):
    env = make_env()
    first = env.invoke(b'{"x": 1}')
    second = env.invoke(b'{"x": 2}')
    assert first.status == second.status == "success", env.logs()
    assert json.loads(first.payload) == {"x": 1} and json.loads(second.payload) == {"x": 2}
    assert first.init is not None and first.init.ok and second.init is None
    assert env.init_count == 1


def test_handler_context_carries_the_runtime_api_headers(make_env):
    env = make_env("echo.context_info", function_name="probe-fn", memory_mb=256, timeout_s=5)
    result = env.invoke(b"{}", request_id="req-1234", client_context={"custom": {"k": "v"}},
                        cognito_identity={"cognitoIdentityId": "id-1", "cognitoIdentityPoolId": "p"},
                        trace_id="Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1",
                        qualifier="live")
    info = json.loads(result.payload)
    assert info["aws_request_id"] == "req-1234" == result.request_id
    assert info["invoked_function_arn"] == "arn:aws:lambda:us-east-1:123456789012:function:probe-fn:live"
    assert 1000 < info["remaining_ms"] <= 5000  # from the 5 s deadline (generous: busy VM)
    assert info["client_context_custom"] == {"k": "v"}
    assert info["identity_id"] == "id-1"
    assert info["trace_id"].startswith("Root=1-5bef4de7")
    assert (info["function_name"], info["function_version"], info["memory_limit_in_mb"]) == \
        ("probe-fn", "$LATEST", "256")
    assert info["log_group_name"] == "/aws/lambda/probe-fn"


def test_processes_get_the_variables_lambda_sets_plus_the_functions_own(make_env):
    env = make_env("echo.context_info", environment={"GREETING": "hola"}, region="eu-west-1")
    environ = json.loads(env.invoke(b"{}").payload)["environ"]
    assert environ["AWS_LAMBDA_RUNTIME_API"] == env.runtime_api_address
    assert environ["_HANDLER"] == "echo.context_info"
    assert environ["LAMBDA_TASK_ROOT"] == FUNCTIONS
    assert FUNCTIONS in environ["PYTHONPATH"].split(os.pathsep)
    assert environ["AWS_REGION"] == environ["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert environ["AWS_EXECUTION_ENV"].startswith("AWS_Lambda_python3.")
    assert environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "128"
    assert environ["GREETING"] == "hola"
    for name in ("AWS_LAMBDA_LOG_STREAM_NAME", "LAMBDA_RUNTIME_DIR", "TZ", "AWS_LAMBDA_FUNCTION_VERSION"):
        assert environ[name]


def test_runtime_reports_the_address_it_talks_to(make_env):
    env = make_env("echo.runtime_api")
    result = env.invoke(b"{}")
    assert json.loads(result.payload) == env.runtime_api_address
    assert result.client_address.startswith("127.0.0.1:")


def test_client_process_names_the_process_that_delivered_the_response(make_env, opt_with_probe):
    env = make_env(opt_dir=str(opt_with_probe))
    result = env.invoke(b"{}")
    assert env.client_process(result.client_address) == "runtime"
    assert env.client_process("127.0.0.1:1") is None


@pytest.mark.parametrize("size", [0, 1024, 1024 * 1024])
def test_raw_response_arrives_byte_for_byte(make_env, size):
    body = "✓" * (size // 3) + "a" * (size % 3)   # exactly `size` bytes of multi-byte UTF-8
    env = make_env("echo.raw", timeout_s=30)  # big payloads on a busy VM: no false timeouts
    result = env.invoke(json.dumps({"body": body}).encode())
    assert result.status == "success", env.logs()
    assert len(result.payload) == size and result.payload == body.encode("utf-8")


def test_six_mb_response_arrives_byte_for_byte(make_env):
    env = make_env("echo.sized", timeout_s=30)
    result = env.invoke(json.dumps({"size": MAX_PAYLOAD_BYTES}).encode())
    assert result.status == "success"
    assert result.payload == echo.pattern(MAX_PAYLOAD_BYTES)


def test_six_mb_event_reaches_the_handler_intact(make_env):
    body = "x" * (MAX_PAYLOAD_BYTES - len('{"body": ""}'))
    event = json.dumps({"body": body}).encode()
    assert len(event) == MAX_PAYLOAD_BYTES
    result = make_env("echo.digest", timeout_s=30).invoke(event)
    assert json.loads(result.payload) == {"length": len(body),
                                          "sha256": hashlib.sha256(body.encode()).hexdigest()}


def test_unicode_event_round_trips(make_env):
    event = {"text": "héllo ✓ 🚀 日本語", "nested": ["ü", {"€": "ß"}]}
    result = make_env().invoke(json.dumps(event, ensure_ascii=False).encode("utf-8"))
    assert json.loads(result.payload.decode("utf-8")) == event


def test_response_over_six_mb_is_function_response_size_too_large(make_env):
    env = make_env("echo.sized", timeout_s=30)
    result = env.invoke(json.dumps({"size": MAX_PAYLOAD_BYTES + 1}).encode())
    assert (result.status, result.error_type) == ("error", "Function.ResponseSizeTooLarge")
    assert "6291457 bytes" in json.loads(result.payload)["errorMessage"]
    assert env.invoke(json.dumps({"size": 10}).encode()).payload == echo.pattern(10)


def test_event_over_six_mb_is_refused_before_reaching_the_runtime(make_env):
    env = make_env()
    with pytest.raises(PayloadTooLargeError, match="6,291,457 bytes.*at most 6,291,456"):
        env.invoke(b"x" * (MAX_PAYLOAD_BYTES + 1))
    assert env.init_count == 0


def test_stdout_and_stderr_of_the_runtime_are_collected(make_env):
    env = make_env("echo.log")
    env.invoke(b'{"marker": "m-42"}')
    assert "stdout line m-42" in env.logs() and "stderr line m-42" in env.logs("runtime")


def test_logs_read_while_a_process_writes_lose_and_reorder_nothing(make_env):
    env = make_env("echo.chatter")
    env.start()
    done = []
    reader = threading.Thread(target=lambda: [env.logs() for _ in iter(lambda: done, [True])],
                              daemon=True)
    reader.start()  # logs() in a tight loop, racing the pipe reader thread
    for _ in range(5):
        env.invoke(b'{"lines": 400}')
    done.append(True)
    reader.join(10)
    final = []
    last = threading.Thread(target=lambda: final.append(env.logs()), daemon=True)
    last.start()  # once the output stops, a reader holding the pipe lock would hang this
    last.join(10)
    assert not reader.is_alive() and final, "logs() deadlocked against the pipe reader"
    lines = [line for line in final[0].splitlines() if line.startswith("chatter ")]
    assert lines == [f"chatter {n}" for n in range(400)] * 5


def test_logs_are_collected_when_descriptors_exceed_1023(make_env):
    import resource

    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < 1200:
        pytest.skip("needs a descriptor limit of at least 1200")
    fillers = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]  # a busy sandbox process
    try:
        env = make_env("echo.log")
        env.invoke(b'{"marker": "high-fd"}')
        assert "stdout line high-fd" in env.logs()
    finally:
        for fd in fillers:
            os.close(fd)


# --- failures of the function -----------------------------------------------------------------
def test_handler_exception_is_an_error_with_the_runtimes_error_type(make_env):
    result = make_env("echo.fail").invoke(b'{"message": "boom"}')
    assert (result.status, result.error_type) == ("error", "ValueError")
    body = json.loads(result.payload)
    assert (body["errorType"], body["errorMessage"]) == ("ValueError", "boom")


def test_handler_error_with_a_huge_message_is_still_an_error(make_env):
    # awslambdaric repeats the message in a Lambda-Runtime-Function-XRay-Error-Cause header
    # (up to 1 MiB): the Runtime API must accept header lines that long.
    result = make_env("echo.fail").invoke(json.dumps({"message": "m" * 300_000}).encode())
    assert (result.status, result.error_type) == ("error", "ValueError")
    assert len(result.headers["Lambda-Runtime-Function-XRay-Error-Cause"]) > 300_000


def test_timeout_kills_the_runtime_and_the_next_invoke_reinitialises(make_env):
    env = make_env("echo.sleep", timeout_s=0.5)
    started = time.monotonic()
    result = env.invoke(b'{"seconds": 5}')
    assert (result.status, result.error_type) == ("timeout", "Sandbox.Timedout")
    assert "Task timed out after 0.50 seconds" in json.loads(result.payload)["errorMessage"]
    assert time.monotonic() - started < 3
    after = env.invoke(b'{"seconds": 0}')
    assert after.status == "success" and after.init is not None and env.init_count == 2


def test_runtime_exit_mid_invoke_is_a_crash_and_the_next_invoke_reinitialises(make_env):
    env = make_env("echo.crash")
    result = env.invoke(b'{"code": 3}')
    assert (result.status, result.error_type) == ("crash", "Runtime.ExitError")
    assert "exit status 3" in json.loads(result.payload)["errorMessage"]
    assert "crashing on purpose" in env.logs()
    assert env.invoke(b'{"code": 4}').init is not None


def test_import_failure_is_an_init_error_reported_by_start_and_invoke(make_env):
    env = make_env("broken_import.handler")
    init = env.start()
    assert not init.ok and init.error_type == "RuntimeError"
    assert "broken_import fails at import time on purpose" in init.error
    result = env.invoke(b"{}")
    assert (result.status, result.error_type) == ("error", "RuntimeError")
    assert json.loads(result.payload)["errorMessage"] == "broken_import fails at import time on purpose"


def test_runtime_that_exits_between_invocations_is_replaced_by_a_cold_start(make_env):
    env = make_env("echo.exit_soon")
    first = env.invoke(b"{}")
    assert first.status == "success"
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{json.loads(first.payload)}"):  # until the runtime is reaped
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.2)  # and its exit reported to the environment
    after = env.invoke(b"{}")
    assert after.status == "success" and after.init is not None and env.init_count == 2


def test_runtime_that_exits_during_init_without_reporting_is_an_init_error(make_env):
    init = make_env(runtime_command=["sh", "-c", "echo starting; exit 5"]).start()
    assert (init.ok, init.error_type) == (False, "Runtime.ExitError")
    assert "exited with status 5 during init" in init.error


def test_runtime_that_never_calls_next_times_out_the_init(make_env):
    env = make_env(runtime_command=[sys.executable, "-c", "import time; time.sleep(30)"])
    started = time.monotonic()
    init = env.start(init_timeout_s=0.5)
    assert (init.ok, init.error_type) == (False, "Sandbox.Timedout")
    assert "['runtime'] never called /next" in init.error
    assert time.monotonic() - started < 3


# --- extensions ---------------------------------------------------------------------------------
def test_extension_registers_and_receives_invoke_then_shutdown(make_env, opt_with_probe):
    env = make_env(opt_dir=str(opt_with_probe))
    assert env.start().ok, env.logs()
    assert '"accountId": "123456789012"' in env.logs("probe-extension")
    result = env.invoke(b'{"a": 1}', qualifier="prod")
    env.shutdown()
    events = _probe_events(env)
    assert [e["eventType"] for e in events] == ["INVOKE", "SHUTDOWN"]
    invoke, shutdown = events
    assert invoke["requestId"] == result.request_id
    assert invoke["invokedFunctionArn"].endswith(":function:fn:prod")
    assert invoke["tracing"]["type"] == "X-Amzn-Trace-Id" and invoke["tracing"]["value"].startswith("Root=1-")
    assert invoke["deadlineMs"] > time.time() * 1000 - 60_000
    assert shutdown["shutdownReason"] == "spindown" and shutdown["deadlineMs"] > 0
    assert "PROBE-EXIT" in env.logs("probe-extension")


def test_invocation_waits_until_the_extension_calls_next_again(make_env, opt_with_probe):
    env = make_env(opt_dir=str(opt_with_probe), environment={"PROBE_POST_INVOKE_MS": "300"})
    env.start()
    result = env.invoke(b"{}")
    assert result.status == "success" and result.duration_ms >= 290


def test_invoke_subscriber_gets_every_invoke_and_a_shutdown_only_extension_none(make_env,
                                                                              opt_with_probe):
    # Each extension's long poll is woken only by an event queued for it: the INVOKE one must
    # still see every invocation, in order, and the SHUTDOWN-only one only its SHUTDOWN.
    source = open(os.path.join(FUNCTIONS, "mi_extension.py")).read()  # SHUTDOWN only by default
    executable(opt_with_probe / "extensions" / "idle-extension", f"#!{sys.executable}\n{source}")
    env = make_env(opt_dir=str(opt_with_probe))
    results = [env.invoke(json.dumps({"n": n}).encode()) for n in range(5)]
    assert [r.status for r in results] == ["success"] * 5, env.logs()
    assert env.extension_events("idle-extension") == []
    env.shutdown()
    assert [e.get("requestId") for e in _probe_events(env)] == [r.request_id for r in results] + [None]
    idle = [json.loads(line.split(" ", 1)[1]) for line in env.logs("idle-extension").splitlines()
            if line.startswith("MI-EXT-EVENT ")]
    assert [(e["eventType"], e["shutdownReason"]) for e in idle] == [("SHUTDOWN", "spindown")]


def test_timeout_sends_shutdown_with_reason_timeout_to_extensions(make_env, opt_with_probe):
    env = make_env("echo.sleep", opt_dir=str(opt_with_probe), timeout_s=0.5)
    assert env.invoke(b'{"seconds": 5}').status == "timeout"
    shutdown = [e for e in _probe_events(env) if e["eventType"] == "SHUTDOWN"]
    assert [e["shutdownReason"] for e in shutdown] == ["timeout"]


def test_extension_exit_mid_invoke_is_an_extension_crash(make_env, opt_with_probe):
    env = make_env("echo.sleep", opt_dir=str(opt_with_probe),
                   environment={"PROBE_MODE": "exit-on-invoke"})
    result = env.invoke(b'{"seconds": 1}')
    assert (result.status, result.error_type) == ("crash", "Extension.Crash")
    assert "'probe-extension' exited with status 9" in json.loads(result.payload)["errorMessage"]


def test_extension_that_never_registers_is_an_init_error_naming_it(make_env, opt_with_probe):
    env = make_env(opt_dir=str(opt_with_probe), environment={"PROBE_MODE": "never-register"})
    init = env.start(init_timeout_s=1.0)
    assert not init.ok and init.error_type == "Extension.InitTimeout"
    assert "['probe-extension'] did not register" in init.error and "1 s" in init.error


def test_extension_crash_before_registering_is_an_init_error(make_env, opt_with_probe):
    env = make_env(opt_dir=str(opt_with_probe), environment={"PROBE_MODE": "crash-before-register"})
    init = env.start()
    assert not init.ok and init.error_type == "Extension.Crash"
    assert "'probe-extension' exited with status 7 before registering" in init.error


def test_extension_init_error_fails_the_init_with_its_error_type(make_env, opt_with_probe):
    env = make_env(opt_dir=str(opt_with_probe), environment={"PROBE_MODE": "init-error"})
    init = env.start()
    assert (init.ok, init.error_type) == (False, "Extension.ProbeBroken")
    assert "probe cannot start" in init.error


def test_non_executable_extension_is_a_launch_error(make_env, tmp_path):
    (tmp_path / "extensions").mkdir()
    (tmp_path / "extensions" / "plain-file").write_text("not executable")
    init = make_env(opt_dir=str(tmp_path)).start()
    assert init.error_type == "Extension.LaunchError" and "chmod +x" in init.error


# --- exec wrapper -------------------------------------------------------------------------------
def test_exec_wrapper_under_opt_runs_the_runtime_from_the_mapped_path(make_env, tmp_path):
    (tmp_path / "wrap").mkdir()
    executable(tmp_path / "wrap" / "wrapper",
                '#!/bin/sh\necho "WRAPPER-RAN $0 $*"\nexport WRAPPED=yes\nexec "$@"\n')
    env = make_env("echo.context_info", opt_dir=str(tmp_path),
                   environment={"AWS_LAMBDA_EXEC_WRAPPER": "/opt/wrap/wrapper"})
    environ = json.loads(env.invoke(b"{}").payload)["environ"]
    assert environ["WRAPPED"] == "yes"
    assert f"WRAPPER-RAN {tmp_path}/wrap/wrapper {sys.executable} -m awslambdaric echo.context_info" \
        in env.logs()


def test_missing_exec_wrapper_is_an_init_error(make_env):
    init = make_env(environment={"AWS_LAMBDA_EXEC_WRAPPER": "/opt/nope/wrapper"}).start()
    assert init.error_type == "Runtime.InvalidEntrypoint" and "pass opt_dir" in init.error


# --- caller mistakes ----------------------------------------------------------------------------
def test_reserved_variable_in_the_function_environment_is_refused():
    with pytest.raises(ReservedVariableError, match=r"\['AWS_REGION'\].*pass them as"):
        ExecutionEnvironment("echo.handler", FUNCTIONS, environment={"AWS_REGION": "x"})


@pytest.mark.parametrize("kwargs, message", [
    ({"handler": "nodot"}, "must be 'module.function'"),
    ({"task_root": "/no/such/dir"}, "is not a directory"),
    ({"memory_mb": 64}, "128–10240"),
    ({"timeout_s": 0}, r"\(0, 900\]"),
])
def test_invalid_configuration_names_the_value_and_the_fix(kwargs, message):
    arguments = {"handler": "echo.handler", "task_root": FUNCTIONS, **kwargs}
    with pytest.raises(InvalidConfigurationError, match=message):
        ExecutionEnvironment(**arguments)


def test_runtime_command_that_cannot_start_is_an_invalid_entrypoint(make_env):
    init = make_env(runtime_command=["/no/such/runtime"]).start()
    assert init.error_type == "Runtime.InvalidEntrypoint" and "/no/such/runtime" in init.error


def test_payload_must_be_bytes_or_text(make_env):
    with pytest.raises(TypeError, match="payload must be bytes or str.*got dict"):
        make_env().invoke({"x": 1})


def test_shutdown_is_idempotent_and_closes_the_environment(make_env):
    env = make_env()
    env.invoke(b"{}")
    env.shutdown()
    env.shutdown()
    with pytest.raises(EnvironmentClosedError, match="create a new ExecutionEnvironment"):
        env.invoke(b"{}")


def test_context_manager_shuts_down(tmp_path):
    with ExecutionEnvironment("echo.handler", FUNCTIONS) as env:
        assert env.start().ok
    with pytest.raises(EnvironmentClosedError):
        env.start()
