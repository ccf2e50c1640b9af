"""Rules of a Lambda Managed Instances environment (``ExecutionEnvironment(max_concurrency=N)``).

The runtimes are the real ones in their own multi-concurrent modes: ``awslambdaric`` forks N
worker processes when ``AWS_LAMBDA_MAX_CONCURRENCY`` is set, as the Python runtime does on
Managed Instances; ``aws-lambda-ric`` (Node.js) runs worker threads with concurrent
invocations in each. The handlers (tests/functions/mi_handlers.*) say which invocation and
which worker they were, and wait on files, so the tests assert orderings ("the fast one was
answered while the slow one was still held"), never durations.
"""
import contextlib
import http.client
import json
import os
import random
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from chaos_layer import config as c
from local_emulator.errors import InvalidConfigurationError, ReservedVariableError
from local_emulator.environment.http_server import HttpServer
from local_emulator.environment.lambda_apis import Invocation, LambdaApis
from local_emulator.environment.managed_instances import EnvironmentBusyError
from local_emulator.environment import runtimes
from local_emulator.environment.runtime_api import ExecutionEnvironment

FUNCTIONS = os.path.join(os.path.dirname(__file__), "functions")
WAIT_S = 30  # how long a test waits for something before failing, never a measured time
NODE = "nodejs22.x"  # aws-lambda-ric under the venv's Node, started as Lambda's bootstrap does


def _node_missing():
    """Why the Node.js runtime cannot run here, or None."""
    try:
        runtimes.node_executable()
        runtimes.node_client()
    except runtimes.UnsupportedRuntimeError as missing:
        return str(missing)
    return None


NO_NODE = _node_missing()
needs_node = pytest.mark.skipif(NO_NODE is not None, reason=str(NO_NODE))
RUNTIMES = [pytest.param(None, id="python"), pytest.param(NODE, id="node", marks=needs_node)]


@pytest.fixture
def make_env():
    """Build Managed Instances environments over tests/functions; shut each down after."""
    with contextlib.ExitStack() as environments:
        def _make(handler="mi_handlers.hold", max_concurrency=3, **kwargs):
            kwargs = {"task_root": FUNCTIONS, "timeout_s": 60, **kwargs}
            return environments.enter_context(
                ExecutionEnvironment(handler, max_concurrency=max_concurrency, **kwargs))

        yield _make


def _wait_until(check, what):
    deadline = time.monotonic() + WAIT_S
    while not check():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.01)


class Call:
    """One invoke() on its own thread; ``done`` is set when its result (or exception) is in."""

    def __init__(self, env, folder, tag, held=True, request_id=None, **extra):
        self.started = Path(folder) / f"{tag}.started"
        self.release = Path(folder) / f"{tag}.release"
        event = {"tag": tag, "started": str(self.started), **extra}
        if held:
            event["release"] = str(self.release)
        self.result, self.error, self.done = None, None, threading.Event()
        self.thread = threading.Thread(target=self._run, args=(env, json.dumps(event), request_id),
                                       daemon=True)
        self.thread.start()

    def _run(self, env, event, request_id):
        try:
            self.result = env.invoke(event, request_id=request_id)
        except Exception as exc:  # re-raised by wait()
            self.error = exc
        finally:
            self.done.set()

    def let_go(self):
        self.release.write_text("go")

    def wait(self):
        assert self.done.wait(WAIT_S), f"invocation {self.started.stem} never ended"
        if self.error is not None:
            raise self.error
        return self.result

    def answer(self):
        result = self.wait()
        assert result.status == "success", (result, result.payload)
        return json.loads(result.payload)


# --- the Runtime API on the wire ----------------------------------------------------------------
def _invocation(request_id):
    return Invocation(request_id=request_id, event=json.dumps({"id": request_id}).encode(),
                      deadline_ms=1_900_000_000_000, deadline=time.monotonic() + 30,
                      invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:fn",
                      trace_id="Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Sampled=1")


def _request(server, method, path, body=None, headers=None):
    """(status, response headers, body) of one request on a fresh connection."""
    connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    return response.status, response, response.read()


@pytest.fixture
def apis_server():
    """Managed Instances LambdaApis (N = 2, extension "ext" expected) behind a live server."""
    apis = LambdaApis("fn", "$LATEST", "h.h", "123456789012", ["ext"], max_concurrency=2)
    server = HttpServer(apis.handle).start()
    yield apis, server
    apis.close()
    server.stop()


def test_concurrent_next_calls_each_get_their_own_event_and_answers_match_by_request_id(apis_server):
    apis, server = apis_server
    got = {}

    def worker(name):
        _, response, body = _request(server, "GET", "/2018-06-01/runtime/invocation/next")
        got[name] = (response.getheader("Lambda-Runtime-Aws-Request-Id"), body)

    workers = [threading.Thread(target=worker, args=(n,)) for n in ("w1", "w2")]
    for thread in workers:
        thread.start()
    first, second = _invocation("req-a"), _invocation("req-b")
    apis.dispatch(first)
    apis.dispatch(second)
    for thread in workers:
        thread.join(10)
    assert sorted(rid for rid, _ in got.values()) == ["req-a", "req-b"]
    assert all(json.loads(body) == {"id": rid} for rid, body in got.values())
    for invocation in (second, first):  # answered in the other order
        path = f"/2018-06-01/runtime/invocation/{invocation.request_id}/response"
        assert _request(server, "POST", path, f"answer {invocation.request_id}")[0] == 202
    assert (first.payload, second.payload) == (b"answer req-a", b"answer req-b")


def test_a_new_invocation_is_refused_while_every_worker_is_busy():
    apis = LambdaApis("fn", "$LATEST", "h.h", "123456789012", [], max_concurrency=2)
    apis.dispatch(_invocation("req-a"))
    apis.dispatch(_invocation("req-b"))
    with pytest.raises(EnvironmentBusyError, match=r"all 2 workers .* busy \(2 invocations "
                                                   r"unanswered\).*retry when one finishes"):
        apis.dispatch(_invocation("req-c"))
    apis.invocations["req-a"].answered = True  # one worker is free again
    apis.dispatch(_invocation("req-c"))
    assert sorted(apis.invocations) == ["req-b", "req-c"]  # the finished one is forgotten


def test_only_the_first_workers_init_error_is_accepted(apis_server):
    apis, server = apis_server
    answers = []
    for worker in ("first", "second"):
        status, _, body = _request(
            server, "POST", "/2018-06-01/runtime/init/error", json.dumps({"errorMessage": worker}),
            {"Lambda-Runtime-Function-Error-Type": "Runtime.Broken"})
        answers.append((status, json.loads(body)))
    assert [status for status, _ in answers] == [202, 403]
    assert "already been posted by another runtime worker" in answers[1][1]["errorMessage"]
    assert apis.init_error == ("Runtime.Broken", b'{"errorMessage": "first"}')


def test_extensions_cannot_register_for_invoke(apis_server):
    apis, server = apis_server
    for events, status in ((["INVOKE", "SHUTDOWN"], 400), (["SHUTDOWN"], 200)):
        code, _, answer = _request(server, "POST", "/2020-01-01/extension/register",
                                   json.dumps({"events": events}), {"Lambda-Extension-Name": "ext"})
        body = json.loads(answer)
        assert code == status, body
        if status == 400:
            assert body["errorType"] == "InvalidEventType"
            assert "cannot register for INVOKE on Lambda Managed Instances" in body["errorMessage"]
            assert 'register for ["SHUTDOWN"] only' in body["errorMessage"]
    assert [r.events for r in apis.extensions.values()] == [("SHUTDOWN",)]



# --- Python: awslambdaric's worker processes ----------------------------------------------------
def test_python_runs_n_worker_processes_with_n_invocations_in_flight(make_env, tmp_path):
    env = make_env(max_concurrency=3)
    calls = [Call(env, tmp_path, tag) for tag in "abc"]
    _wait_until(lambda: all(c.started.exists() for c in calls), "three handlers running at once")
    assert set(env.in_flight().values()) == {"delivered"}
    for call in calls:
        call.let_go()
    answers = [call.answer() for call in calls]
    assert [a["request_id"] for a in answers] == [c.result.request_id for c in calls]
    assert [a["tag"] for a in answers] == list("abc")
    assert len({a["pid"] for a in answers}) == 3  # one process per concurrent invocation
    assert env.init_count == 1 and env.in_flight() == {}


@needs_node
def test_node_runs_worker_threads_of_one_process_each_with_concurrent_invocations(make_env, tmp_path):
    env = make_env(max_concurrency=3, runtime=NODE,
                   environment={"AWS_LAMBDA_NODEJS_WORKER_COUNT": "2"})
    calls = [Call(env, tmp_path, tag) for tag in "abc"]
    _wait_until(lambda: all(c.started.exists() for c in calls), "three handlers running at once")
    for call in calls:
        call.let_go()
    answers = [call.answer() for call in calls]
    assert [a["request_id"] for a in answers] == [c.result.request_id for c in calls]
    assert len({a["pid"] for a in answers}) == 1  # one process...
    assert len({a["thread"] for a in answers}) <= 2  # ...two workers: one ran two at once
    assert env.init_count == 1


def test_processes_are_told_the_concurrency_and_the_initialization_type(make_env):
    result = make_env("echo.context_info", max_concurrency=2).invoke(b"{}")
    environ = json.loads(result.payload)["environ"]
    assert environ["AWS_LAMBDA_MAX_CONCURRENCY"] == "2"
    assert environ["AWS_LAMBDA_INITIALIZATION_TYPE"] == "lambda-managed-instances"


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_fast_invocation_is_answered_while_a_slow_one_is_held(make_env, tmp_path, runtime):
    env = make_env(max_concurrency=2, runtime=runtime)
    slow = Call(env, tmp_path, "slow")
    _wait_until(slow.started.exists, "the slow handler to start")
    fast = Call(env, tmp_path, "fast", held=False)
    assert fast.answer()["tag"] == "fast"
    assert not slow.done.is_set()  # answered while the slow one is still held
    assert list(env.in_flight().values()) == ["delivered"]
    slow.let_go()
    assert slow.answer()["request_id"] == slow.result.request_id


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_timed_out_invocation_fails_alone_and_keeps_its_worker_until_it_answers(
        make_env, tmp_path, runtime):
    env = make_env(max_concurrency=2, timeout_s=5, runtime=runtime)
    slow = Call(env, tmp_path, "slow")
    _wait_until(slow.started.exists, "the slow handler to start")
    result = slow.wait()
    assert (result.status, result.error_type) == ("timeout", "Sandbox.Timedout")
    assert "Task timed out after 5.00 seconds" in json.loads(result.payload)["errorMessage"]
    assert env.in_flight() == {result.request_id: "timed out"}  # its handler still runs
    other = Call(env, tmp_path, "other")  # the second worker serves meanwhile
    _wait_until(other.started.exists, "the other handler to start")
    with pytest.raises(EnvironmentBusyError, match="1 of them past their timeout"):
        env.invoke(json.dumps({"tag": "refused"}))
    slow.let_go()  # its late answer frees the first worker
    _wait_until(lambda: result.request_id not in env.in_flight(), "the late answer")
    assert Call(env, tmp_path, "third", held=False).answer()["tag"] == "third"
    other.let_go()
    assert other.answer()["tag"] == "other"
    assert env.init_count == 1  # never reset


def test_a_worker_that_exits_leaves_the_others_serving(make_env, tmp_path):
    env = make_env(max_concurrency=2, timeout_s=5)
    gone = Call(env, tmp_path, "gone", exit=3).wait()
    assert gone.status == "timeout"  # nobody answers it; the environment stays
    assert Call(env, tmp_path, "after", held=False).answer()["tag"] == "after"
    assert env.init_count == 1


def test_the_runtimes_exit_ends_every_invocation_in_flight(make_env, tmp_path):
    env = make_env(max_concurrency=2)
    held = Call(env, tmp_path, "held")
    _wait_until(held.started.exists, "the held handler to start")
    killer = Call(env, tmp_path, "killer", kill_runtime=True).wait()
    assert (killer.status, killer.error_type) == ("crash", "Runtime.ExitError")
    assert "signal: kill" in json.loads(killer.payload)["errorMessage"]
    assert (held.wait().status, held.wait().error_type) == ("crash", "Runtime.ExitError")
    after = Call(env, tmp_path, "after", held=False)
    assert after.answer()["tag"] == "after" and after.result.init is not None
    assert env.init_count == 2


def test_an_import_error_fails_the_init_once_for_all_workers(make_env):
    env = make_env("broken_import.handler", max_concurrency=3)
    init = env.start()
    assert (init.ok, init.error_type) == (False, "RuntimeError")
    assert "broken_import fails at import time on purpose" in init.error


# --- extensions ---------------------------------------------------------------------------------
def _install_extension(opt, **variables):
    (opt / "extensions").mkdir(parents=True, exist_ok=True)
    path = opt / "extensions" / "mi-extension"
    path.write_text(f"#!{sys.executable}\n" + Path(FUNCTIONS, "mi_extension.py").read_text())
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(opt)


def test_an_extension_registering_for_invoke_fails_the_init(make_env, tmp_path):
    env = make_env(opt_dir=_install_extension(tmp_path / "opt"),
                   environment={"MI_EXTENSION_EVENTS": "INVOKE,SHUTDOWN"})
    init = env.start()
    assert (init.ok, init.error_type) == (False, "Extension.Crash")
    assert "MI-EXT-REFUSED 400" in env.logs("mi-extension")
    assert "cannot register for INVOKE on Lambda Managed Instances" in env.logs("mi-extension")


def test_a_shutdown_only_extension_gets_shutdown_and_no_invoke(make_env, tmp_path):
    env = make_env(opt_dir=_install_extension(tmp_path / "opt"))
    assert Call(env, tmp_path, "one", held=False).answer()["tag"] == "one"
    env.shutdown()
    events = [json.loads(line.split(" ", 1)[1]) for line in env.logs("mi-extension").splitlines()
              if line.startswith("MI-EXT-EVENT ")]
    assert [(e["eventType"], e["shutdownReason"]) for e in events] == [("SHUTDOWN", "spindown")]


def test_an_extension_crash_ends_every_invocation_in_flight_and_the_environment(make_env, tmp_path):
    crash_file = tmp_path / "crash-now"
    env = make_env(opt_dir=_install_extension(tmp_path / "opt"),
                   environment={"MI_EXTENSION_EXIT_FILE": str(crash_file)})
    calls = [Call(env, tmp_path, tag) for tag in "ab"]
    _wait_until(lambda: all(c.started.exists() for c in calls), "both handlers to start")
    crash_file.write_text("now")
    for call in calls:
        result = call.wait()
        assert (result.status, result.error_type) == ("crash", "Extension.Crash"), result
        assert "'mi-extension' exited with status 9" in json.loads(result.payload)["errorMessage"]
    crash_file.unlink()
    after = Call(env, tmp_path, "after", held=False)
    assert after.answer()["tag"] == "after" and env.init_count == 2


# --- caller mistakes ----------------------------------------------------------------------------
@pytest.mark.parametrize("value", [0, -2, 1601, 1.5, True, "4"])
def test_max_concurrency_must_be_an_integer_in_lambdas_range(value):
    with pytest.raises(InvalidConfigurationError, match=f"max_concurrency {value!r} must be an "
                                                        f"integer in 1-1600"):
        ExecutionEnvironment("echo.handler", FUNCTIONS, max_concurrency=value)


def test_the_function_may_not_set_the_concurrency_variable_itself():
    with pytest.raises(ReservedVariableError, match="pass max_concurrency=8 instead"):
        ExecutionEnvironment("echo.handler", FUNCTIONS, max_concurrency=2,
                             environment={"AWS_LAMBDA_MAX_CONCURRENCY": "8"})


# --- through the chaos layer (the Go extension and proxy, built by layer/build.sh) ---------------
SEED = "managed-instances"


@pytest.fixture(scope="module")
def layer_opt(tmp_path_factory):
    """The layer as build.sh builds it, extracted as Lambda extracts it under /opt."""
    from layer_fixtures import build_layer, extract_layer

    tmp = tmp_path_factory.mktemp("layer")
    try:
        built = build_layer(tmp)
    except subprocess.CalledProcessError as failure:
        pytest.skip(f"layer/build.sh failed, so the layer cannot be tested here: "
                    f"{failure.stderr.decode(errors='replace')[-500:]}")
    return str(extract_layer(built, tmp / "opt"))


def _faulted(request_id):
    """Whether CHAOS_INVOCATION_PERCENTAGE=50 with CHAOS_DECISION_SEED=SEED picks this invocation:
    the layer's first draw is random.Random(f"{seed}/{request id}").random()."""
    return random.Random(f"{SEED}/{request_id}").random() * 100.0 < 50.0


def _layered(make_env, layer_opt, runtime, max_concurrency, timeout_s=60, **chaos):
    environment = {c.EXEC_WRAPPER: c.WRAPPER_PATH, c.PROXY_PORT: "0",
                   c.INVOCATION_PERCENTAGE: "50", c.DECISION_SEED: SEED}
    environment.update({getattr(c, name): value for name, value in chaos.items()})
    env = make_env(max_concurrency=max_concurrency, opt_dir=layer_opt, environment=environment,
                   runtime=runtime, timeout_s=timeout_s)
    init = env.start()
    assert init.ok, (init, env.logs())
    return env


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_through_the_layer_each_fault_is_decided_per_invocation_and_matched_to_its_request_id(
        make_env, layer_opt, tmp_path, runtime):
    env = _layered(make_env, layer_opt, runtime, 4, FAULT_TYPE="error")
    request_ids = [f"mi-request-{n}" for n in range(8)]
    faulted = {rid for rid in request_ids if _faulted(rid)}
    assert 0 < len(faulted) < len(request_ids)  # the seed gives both outcomes
    results = {}
    for wave in (request_ids[:4], request_ids[4:]):
        calls = [Call(env, tmp_path, rid, request_id=rid) for rid in wave]
        _wait_until(lambda: all(call.started.exists() for call in calls),
                    "four handlers running at once behind the proxy")
        for call in calls:
            call.let_go()
        results.update((rid, call.wait()) for rid, call in zip(wave, calls))
    for rid, result in results.items():
        if rid in faulted:  # the error replaces the handler's answer, for this invocation only
            assert (result.status, result.error_type) == ("error", "ChaosInjectedError"), result
            assert json.loads(result.payload)["requestId"] == rid
        else:
            assert result.status == "success", (result, env.logs())
            assert json.loads(result.payload)["request_id"] == rid
    assert sorted(results) == request_ids
    records = [json.loads(line) for line in env.logs().splitlines() if '"_aws"' in line]
    assert sorted(r["requestId"] for r in records) == sorted(faulted)  # one record per fault


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_through_the_layer_a_delayed_invocation_does_not_hold_back_another(
        make_env, layer_opt, tmp_path, runtime):
    env = _layered(make_env, layer_opt, runtime, 2, FAULT_TYPE="latency",
                   LATENCY_MS="600000")
    candidates = [f"mi-latency-{n}" for n in range(20)]
    delayed_id = next(rid for rid in candidates if _faulted(rid))
    fast_id = next(rid for rid in candidates if not _faulted(rid))
    delayed = Call(env, tmp_path, "delayed", held=False, request_id=delayed_id)
    _wait_until(lambda: env.in_flight().get(delayed_id) == "delivered",
                "the proxy to take the delayed invocation from the Runtime API")
    fast = Call(env, tmp_path, "fast", held=False, request_id=fast_id)
    assert fast.answer()["request_id"] == fast_id
    assert not delayed.done.is_set() and not delayed.started.exists()  # still held by the proxy
    assert env.in_flight() == {delayed_id: "delivered"}


def test_through_the_layer_latency_past_the_timeout_fails_alone_and_still_reaches_the_handler(
        make_env, layer_opt, tmp_path):
    # each invocation's own deadline (2 s) is shorter than the injected latency (4 s)
    env = _layered(make_env, layer_opt, None, 2, timeout_s=2, FAULT_TYPE="latency", LATENCY_MS="4000")
    delayed_id = next(rid for rid in (f"mi-past-{n}" for n in range(20)) if _faulted(rid))
    delayed = Call(env, tmp_path, "delayed", held=False, request_id=delayed_id)
    result = delayed.wait()
    assert (result.status, result.error_type) == ("timeout", "Sandbox.Timedout")
    assert not delayed.started.exists() and env.in_flight() == {delayed_id: "timed out"}
    _wait_until(delayed.started.exists, "the delayed event to reach the handler after all")
    _wait_until(lambda: env.in_flight() == {}, "the handler's late answer to free its worker")
    assert env.init_count == 1  # the environment was never reset
