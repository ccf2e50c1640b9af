"""The built layer in a local execution environment: the real awslambdaric runs a handler
behind the proxy against the Runtime API emulator, exactly as Lambda would start it
(extension from /opt/extensions, runtime through AWS_LAMBDA_EXEC_WRAPPER)."""
import json
import os
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from chaos_layer import config as c
from local_emulator.environment.runtime_api import ExecutionEnvironment

from layer_fixtures import build_layer, extract_layer
from layer_pairs import Pairs, same

FUNCTIONS = str(Path(__file__).parent / "functions")
sys.path.insert(0, FUNCTIONS)
import echo  # noqa: E402  (the emulator engineer's sample handlers)


@pytest.fixture(scope="module")
def opt_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("layer")
    return str(extract_layer(build_layer(tmp), tmp / "opt"))


@contextmanager
def function(opt_dir, handler="side_effect.handler", timeout_s=5.0, runtime_command=None,
             **chaos):
    """An environment with the layer attached as the automation attaches it."""
    env = {c.EXEC_WRAPPER: c.WRAPPER_PATH, c.PROXY_PORT: "0"}
    env.update({getattr(c, k): v for k, v in chaos.items()})
    with ExecutionEnvironment(handler, FUNCTIONS, opt_dir, env, timeout_s=timeout_s,
                              runtime_command=runtime_command) as lambda_env:
        init = lambda_env.start()
        assert init.ok, (init, lambda_env.logs())
        yield lambda_env


def runtime_address(opt_dir, **chaos):
    with function(opt_dir, handler="side_effect.runtime_api", **chaos) as lambda_env:
        result = lambda_env.invoke(b"{}")
        assert result.status == "success", lambda_env.logs()
        return json.loads(result.payload), lambda_env.runtime_api_address, lambda_env.logs()


def event_for(tmp_path):
    marker = tmp_path / "ran"
    return json.dumps({"marker": str(marker)}).encode(), marker


# --- faults -----------------------------------------------------------------------------------

def test_latency_delays_every_invocation_and_logs_one_record_each(opt_dir, tmp_path):
    event, marker = event_for(tmp_path)
    with function(opt_dir, FAULT_TYPE="latency", LATENCY_MS="300", EXPERIMENT_ID="exp-7") as env:
        results = [env.invoke(event) for _ in range(2)]
        records = [json.loads(line) for line in env.logs().splitlines() if '"_aws"' in line]
    assert [r.status for r in results] == ["success", "success"]
    assert all(r.duration_ms >= 300 for r in results)
    assert [(r["FaultType"], r["InjectedMilliseconds"], r["experimentId"]) for r in records] == [
        ("latency", 300, "exp-7")] * 2
    assert [r["requestId"] for r in records] == [r.request_id for r in results]
    assert marker.read_text().count("\n") == 2


def test_latency_longer_than_the_timeout_makes_the_invocation_time_out(opt_dir, tmp_path):
    event, marker = event_for(tmp_path)
    with function(opt_dir, timeout_s=1.0, FAULT_TYPE="latency", LATENCY_MS="3000") as env:
        result = env.invoke(event)
    assert result.status == "timeout"
    assert not marker.exists()  # the handler never received the event


def test_error_after_execution_runs_the_handler_and_reports_the_injected_error(opt_dir, tmp_path):
    event, marker = event_for(tmp_path)
    with function(opt_dir, FAULT_TYPE="error", ERROR_TYPE="DependencyDown",
                  ERROR_MESSAGE="payments unavailable") as env:
        result = env.invoke(event)
    assert marker.exists()
    assert (result.status, result.error_type) == ("error", "DependencyDown")
    assert json.loads(result.payload) == {"errorMessage": "payments unavailable",
                                          "errorType": "DependencyDown",
                                          "requestId": result.request_id, "stackTrace": []}


def test_injected_error_has_the_same_keys_in_the_same_order_as_a_real_handler_error(opt_dir):
    with function(opt_dir, handler="echo.fail") as env:
        real = env.invoke(json.dumps({"message": "real"}).encode())
    with function(opt_dir, FAULT_TYPE="error", PREVENT_EXECUTION="true") as env:
        injected = env.invoke(b"{}")
    assert (real.status, injected.status) == ("error", "error")
    assert list(json.loads(injected.payload)) == list(json.loads(real.payload))
    assert json.loads(injected.payload)["requestId"] == injected.request_id


def test_injected_error_describes_its_exception_for_x_ray_as_awslambdaric_does(opt_dir):
    name = "Lambda-Runtime-Function-XRay-Error-Cause"
    with function(opt_dir, handler="echo.fail") as env:
        real = json.loads(env.invoke(json.dumps({"message": "real"}).encode()).headers[name])
    with function(opt_dir, FAULT_TYPE="error", ERROR_TYPE="Throttled",
                  ERROR_MESSAGE="slow down") as env:
        injected = json.loads(env.invoke(b"{}").headers[name])
    assert list(injected) == list(real)
    assert injected["working_directory"] == real["working_directory"]  # the task root
    assert injected["exceptions"] == [{"message": "slow down", "type": "Throttled", "stack": []}]


def test_prevent_execution_error_never_runs_the_handler(opt_dir, tmp_path):
    event, marker = event_for(tmp_path)
    with function(opt_dir, FAULT_TYPE="error", PREVENT_EXECUTION="true",
                  ERROR_TYPE="Throttled") as env:
        results = [env.invoke(event) for _ in range(3)]
    assert [(r.status, r.error_type) for r in results] == [("error", "Throttled")] * 3
    assert not marker.exists()


@pytest.mark.parametrize("prevent", ["true", "false"])
def test_response_replacement_answers_in_api_gateway_format(opt_dir, tmp_path, prevent):
    event, marker = event_for(tmp_path)
    with function(opt_dir, FAULT_TYPE="response", PREVENT_EXECUTION=prevent,
                  RESPONSE_STATUS_CODE="503", RESPONSE_BODY="Service Unavailable") as env:
        result = env.invoke(event)
    assert result.status == "success"
    assert json.loads(result.payload) == {"statusCode": 503,
                                          "headers": {"Content-Type": "text/plain"},
                                          "body": "Service Unavailable", "isBase64Encoded": False}
    assert marker.exists() == (prevent == "false")


def test_percentage_injects_within_four_sigma_of_the_expected_count(opt_dir, tmp_path):
    n, p = 200, 0.3
    event, marker = event_for(tmp_path)
    with function(opt_dir, FAULT_TYPE="error", PREVENT_EXECUTION="true",
                  INVOCATION_PERCENTAGE="30") as env:
        errors = sum(env.invoke(event).status == "error" for _ in range(n))
    sigma = (n * p * (1 - p)) ** 0.5
    assert abs(errors - n * p) < 4 * sigma
    assert marker.read_text().count("\n") == n - errors  # exactly the others ran


def _decisions(opt_dir, seed, request_ids):
    with function(opt_dir, FAULT_TYPE="error", PREVENT_EXECUTION="true",
                  INVOCATION_PERCENTAGE="50", DECISION_SEED=seed) as env:
        return [env.invoke(b"{}", request_id=rid).error_type == "ChaosInjectedError"
                for rid in request_ids]


def test_a_decision_seed_replays_the_same_fault_decisions_in_a_new_environment(opt_dir):
    request_ids = [f"req-{i}" for i in range(40)]
    first = _decisions(opt_dir, "run-42", request_ids)
    assert 5 < sum(first) < 35  # really drawn: about half injected
    assert _decisions(opt_dir, "run-42", request_ids) == first
    assert _decisions(opt_dir, "run-43", request_ids) != first


def test_expired_fault_leaves_the_runtime_on_the_runtime_api(opt_dir):
    seen, direct, logs = runtime_address(opt_dir, FAULT_TYPE="latency",
                                         EXPIRES_AT="2020-01-01T00:00:00Z")
    assert seen == direct and "expired" in logs


def test_fault_expiring_in_the_future_is_injected(opt_dir):
    seen, direct, _ = runtime_address(opt_dir, FAULT_TYPE="latency",
                                      EXPIRES_AT="2099-01-01T00:00:00Z")
    assert seen != direct and seen.startswith("127.0.0.1:")


# --- pass-through -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pairs(opt_dir):
    both = Pairs(opt_dir, FUNCTIONS)
    yield both
    both.close()


@pytest.mark.parametrize("size", [0, 1024, 1024 * 1024, 6 * 1024 * 1024])
def test_responses_pass_through_byte_for_byte_at_size(pairs, size):
    result = same(*pairs.invoke_both("echo.sized", {"size": size}))
    assert result.status == "success" and result.payload == echo.pattern(size)


@pytest.mark.parametrize("size", [0, 1024, 1024 * 1024, 6 * 1024 * 1024 - 64])
def test_events_pass_through_byte_for_byte_at_size(pairs, size):
    body = "x" * size
    result = same(*pairs.invoke_both("echo.digest", {"body": body}))
    assert json.loads(result.payload)["length"] == size


def test_unicode_round_trips_unchanged(pairs):
    result = same(*pairs.invoke_both("echo.handler", {"text": "Zoë ✓ 日本語 🎉 \u0000"}))
    assert json.loads(result.payload) == {"text": "Zoë ✓ 日本語 🎉 \u0000"}


def test_handler_errors_pass_through_unchanged(pairs):
    result = same(*pairs.invoke_both("echo.fail", {"message": "bad input ✗"}))
    assert result.error_type == "ValueError" and b"bad input" in result.payload


def test_handler_error_with_a_long_message_passes_through_unchanged(pairs):
    # awslambdaric puts the message in its X-Ray error cause header too: a 300 KB header.
    result = same(*pairs.invoke_both("echo.fail", {"message": "x" * 300_000}))
    assert result.error_type == "ValueError"


def test_streamed_response_and_its_error_trailers_pass_through(opt_dir):
    runtime = [sys.executable, os.path.join(FUNCTIONS, "streaming_runtime.py")]
    event = json.dumps({"chunks": ["first ", "second ✓", "x" * 70000],
                        "error_type": "Stream.Broken"}).encode()
    results = []
    for layer in (None, opt_dir):
        env = {} if layer is None else {c.EXEC_WRAPPER: c.WRAPPER_PATH, c.PROXY_PORT: "0",
                                        c.FAULT_TYPE: "latency", c.INVOCATION_PERCENTAGE: "0"}
        with ExecutionEnvironment("unused.handler", FUNCTIONS, layer, env,
                                  runtime_command=runtime) as lambda_env:
            results.append(lambda_env.invoke(event))
    direct, proxied = results
    assert proxied.response_mode == direct.response_mode == "streaming"
    assert (proxied.payload, proxied.trailers, proxied.error_type) == (
        direct.payload, direct.trailers, direct.error_type)
    assert proxied.client_address != direct.client_address


# --- no fault, fail open, chaining -----------------------------------------------------------

def test_no_fault_means_the_runtime_talks_to_the_runtime_api_directly(opt_dir):
    seen, direct, _ = runtime_address(opt_dir)
    assert seen == direct


def test_port_already_taken_still_starts_the_function_without_the_proxy(opt_dir):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = str(taken.getsockname()[1])
    try:
        seen, direct, logs = runtime_address(opt_dir, FAULT_TYPE="latency", PROXY_PORT=port)
    finally:
        taken.close()
    assert seen == direct
    assert f"cannot listen on 127.0.0.1:{port}" in logs


@pytest.mark.parametrize("name,value", [("LATENCY_MS", "fast"), ("INVOCATION_PERCENTAGE", "150"),
                                        ("FAULT_TYPE", "explode"), ("EXPIRES_AT", "tomorrow")])
def test_bad_configuration_means_no_fault_and_one_line_naming_it(opt_dir, name, value):
    chaos = {"FAULT_TYPE": "latency", "LATENCY_MS": "5000", name: value}
    seen, direct, logs = runtime_address(opt_dir, **chaos)
    assert seen == direct
    [line] = [l for l in logs.splitlines() if getattr(c, name) in l]
    assert repr(value) in line


def test_functions_own_exec_wrapper_still_runs_behind_the_chaos_wrapper(opt_dir, tmp_path):
    marker = tmp_path / "otel-ran"
    own = tmp_path / "otel-wrapper"
    own.write_text(f'#!/bin/sh\necho "$AWS_LAMBDA_RUNTIME_API" > {marker}\nexec "$@"\n')
    own.chmod(0o755)
    seen, direct, _ = runtime_address(opt_dir, FAULT_TYPE="latency", INVOCATION_PERCENTAGE="0",
                                      ORIGINAL_EXEC_WRAPPER=str(own))
    assert seen != direct
    assert marker.read_text().strip() == seen  # it ran, and saw the proxy's address


def test_shutdown_reaches_the_extension_which_removes_its_ready_file(opt_dir):
    with function(opt_dir, handler="side_effect.runtime_api", FAULT_TYPE="latency",
                  INVOCATION_PERCENTAGE="0") as lambda_env:
        ready = c.ready_file(lambda_env.runtime_api_address)
        assert os.path.exists(ready)
    deadline = time.monotonic() + 5
    while os.path.exists(ready) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not os.path.exists(ready)
    assert lambda_env.extension_events(c.EXTENSION_NAME)[-1]["eventType"] == "SHUTDOWN"


def test_fault_stops_at_its_expiry_without_a_restart(opt_dir, tmp_path):
    import datetime as dt

    expires = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=2)
    event, _ = event_for(tmp_path)
    with function(opt_dir, FAULT_TYPE="error", PREVENT_EXECUTION="true",
                  EXPIRES_AT=c.format_utc_time(expires)) as env:
        before = env.invoke(event)
        time.sleep(max(0.0, c.parse_utc_time(c.format_utc_time(expires)).timestamp()
                       - time.time()) + 0.2)
        after = env.invoke(event)
        assert env.init_count == 1  # the same environment: the dead man's switch needs no reset
    assert (before.status, after.status) == ("error", "success")


def test_unreachable_upstream_means_no_proxy_rather_than_failing_calls(opt_dir):
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    dead = "127.0.0.1:%d" % free.getsockname()[1]
    free.close()
    seen, direct, logs = runtime_address(opt_dir, FAULT_TYPE="latency", UPSTREAM_RUNTIME_API=dead)
    assert seen == direct
    assert f"the Runtime API at {dead} does not answer" in logs
