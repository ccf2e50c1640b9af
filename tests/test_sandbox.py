"""The Lambda sandbox runs functions from their configuration in the emulator, and API Gateway
fronts them with its status codes.

Functions here are realistic enough to matter: environment variables, a handler that reads
them, code in the emulator's S3 (as `cloudformation package` leaves it), and the real chaos
layer from `./layer/build.sh` for the attach test.
"""
import concurrent.futures
import io
import json
import threading
import time
import zipfile

import pytest

from chaos_layer import config as chaos
from local_emulator.aws.api_gateway import ApiGateway
from local_emulator.clock import Clock
from local_emulator.environment.code_store import CodeStore, code_sha256, extract_zip
from local_emulator.errors import SandboxError
from local_emulator.environment.sandbox import STALE_READS, Sandbox
from tests.emulator_fixtures import moto_server, unique  # noqa: F401 - fixture
from tests.layer_fixtures import build_layer


APP = '''
import json, os, time

def hello(event, context):
    return {"statusCode": 200, "headers": {"Content-Type": "text/plain"},
            "body": "Hello from region " + os.environ["AWS_REGION"]}

def env(event, context):
    keys = ["GREETING", "CHAOS_PROXY_PORT", "CHAOS_LATENCY_MS", "CHAOS_EXPIRES_AT"]
    return {"statusCode": 200, "body": json.dumps({k: os.environ.get(k) for k in keys})}

def slow(event, context):
    time.sleep(float(os.environ.get("SLEEP_S", "5")))
    return {"statusCode": 200, "body": "late"}

def boom(event, context):
    raise ValueError("handler failed")

def not_proxy(event, context):
    return {"hello": "world"}
'''


NODE_APP = '''
export const hello = async () => ({statusCode: 200, headers: {"Content-Type": "text/plain"},
                                  body: "Hello from region " + process.env.AWS_REGION});
export const env = async () => ({statusCode: 200, body: JSON.stringify({
  runtime: process.env.AWS_EXECUTION_ENV, node: process.version, greeting: process.env.GREETING})});
'''


def _zip(files, modes=None):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (modes or {}).get(name, 0o644) << 16
            archive.writestr(info, text)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def app_zip(moto_server):
    data = _zip({"app.py": APP})
    bucket = unique("code-bucket")
    s3 = moto_server.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="app.zip", Body=data)
    return bucket


@pytest.fixture(scope="module")
def node_app_zip(moto_server):
    """A bucket whose app.zip holds app.mjs: the same handlers' names, in Node.js."""
    bucket = unique("node-code-bucket")
    s3 = moto_server.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="app.zip", Body=_zip({"app.mjs": NODE_APP}))
    return bucket


@pytest.fixture(scope="module")
def role(moto_server):
    return moto_server.client("iam").create_role(
        RoleName=unique("lambda-role"), AssumeRolePolicyDocument="{}")["Role"]["Arn"]


def _function(moto_server, role, bucket, handler, timeout=30, variables=None, region="us-east-1",
              runtime="python3.12"):
    name = unique("fn")
    moto_server.client("lambda", region).create_function(
        FunctionName=name, Runtime=runtime, Role=role, Handler=f"app.{handler}",
        Code={"S3Bucket": bucket, "S3Key": "app.zip"}, Timeout=timeout, MemorySize=256,
        Environment={"Variables": {"GREETING": "hi", **(variables or {})}})
    return name


@pytest.fixture
def sandbox(moto_server, tmp_path):
    box = Sandbox(moto_server, Clock(scale=10), tmp_path, refresh_real_s=0.0)
    yield box
    box.close()


def _body(result):
    return json.loads(json.loads(result.payload)["body"])


def test_function_runs_from_its_configuration_in_its_region(moto_server, role, app_zip, tmp_path):
    name = _function(moto_server, role, app_zip, "hello", region="eu-west-1")
    with Sandbox(moto_server, Clock(scale=10), tmp_path) as box:
        result = box.invoke("eu-west-1", name)
    assert result.status == "success", result.payload
    assert json.loads(result.payload)["body"] == "Hello from region eu-west-1"
    assert result.cold_start


def test_warm_invocations_reuse_the_environment(moto_server, role, app_zip, sandbox):
    name = _function(moto_server, role, app_zip, "env")
    first, second = sandbox.invoke("us-east-1", name), sandbox.invoke("us-east-1", name)
    assert (first.cold_start, second.cold_start) == (True, False)
    assert sandbox.stats()[f"us-east-1/{name}"]["cold_starts"] == 1


def test_a_configuration_change_retires_warm_environments_and_cold_starts_with_it(
        moto_server, role, app_zip, sandbox):
    name = _function(moto_server, role, app_zip, "env")
    assert _body(sandbox.invoke("us-east-1", name))["GREETING"] == "hi"
    moto_server.client("lambda").update_function_configuration(
        FunctionName=name, Environment={"Variables": {"GREETING": "changed"}})
    after = sandbox.invoke("us-east-1", name)
    assert after.cold_start
    assert _body(after)["GREETING"] == "changed"
    stats = sandbox.stats()[f"us-east-1/{name}"]
    assert (stats["configurations"], stats["retired"], stats["cold_starts"]) == (2, 1, 2)
    seen = [variables["GREETING"] for _, variables in sandbox.variables_seen()[f"us-east-1/{name}"]]
    assert seen == ["hi", "changed"]


def test_each_environment_gets_its_own_proxy_port(moto_server, role, app_zip, sandbox):
    one = _function(moto_server, role, app_zip, "env")
    two = _function(moto_server, role, app_zip, "env")
    ports = {_body(sandbox.invoke("us-east-1", n))["CHAOS_PROXY_PORT"] for n in (one, two)}
    assert len(ports) == 2 and all(p.isdigit() for p in ports)


def test_fault_latency_and_expiry_are_compressed_by_the_time_scale(moto_server, role, app_zip, sandbox):
    name = _function(moto_server, role, app_zip, "env", variables={
        chaos.LATENCY_MS: "35000", chaos.EXPIRES_AT: "2999-01-01T00:00:00Z"})
    body = _body(sandbox.invoke("us-east-1", name))
    assert body["CHAOS_LATENCY_MS"] == "3500"  # scale 10
    assert body["CHAOS_EXPIRES_AT"] < "2999-01-01T00:00:00Z"
    configuration = moto_server.client("lambda").get_function_configuration(FunctionName=name)
    assert configuration["Environment"]["Variables"][chaos.LATENCY_MS] == "35000"  # untouched


def test_code_that_is_not_in_the_emulator_is_named_with_its_hash(moto_server, role, sandbox):
    name = unique("fn")
    data = _zip({"app.py": APP + "\n# not uploaded anywhere\n"})
    moto_server.client("lambda").create_function(
        FunctionName=name, Runtime="python3.12", Role=role, Handler="app.hello",
        Code={"ZipFile": data})
    with pytest.raises(SandboxError, match=f"code of function {name} in us-east-1 .*{code_sha256(data)}"):
        sandbox.invoke("us-east-1", name)


def test_an_unknown_function_is_named(sandbox):
    with pytest.raises(SandboxError, match="function nope cannot be read in us-east-1"):
        sandbox.invoke("us-east-1", "nope")


def test_a_nodejs_function_runs_with_the_node_client_by_its_runtime(
        moto_server, role, node_app_zip, sandbox):
    name = _function(moto_server, role, node_app_zip, "env", runtime="nodejs22.x")
    result = sandbox.invoke("us-east-1", name)
    assert result.status == "success", result.payload
    body = _body(result)
    assert (body["runtime"], body["greeting"]) == ("AWS_Lambda_nodejs22.x", "hi")
    assert body["node"].startswith("v")


def test_a_python_and_a_nodejs_function_answer_side_by_side(
        moto_server, role, app_zip, node_app_zip, sandbox):
    python = _function(moto_server, role, app_zip, "hello", region="eu-west-1")
    node = _function(moto_server, role, node_app_zip, "hello", region="eu-west-1",
                     runtime="nodejs24.x")
    answers = [json.loads(sandbox.invoke("eu-west-1", fn).payload)["body"] for fn in (python, node)]
    assert answers == ["Hello from region eu-west-1"] * 2


@pytest.mark.parametrize("runtime", ["java21", "provided.al2023"])
def test_a_runtime_the_sandbox_cannot_run_is_refused_naming_the_function(
        moto_server, role, app_zip, sandbox, runtime):
    name = _function(moto_server, role, app_zip, "hello", runtime=runtime)
    with pytest.raises(SandboxError, match=f"function {name} in us-east-1: Runtime '{runtime}' "
                                           "cannot be run by the local emulator"):
        sandbox.invoke("us-east-1", name)


def test_extract_zip_keeps_execute_bits_and_refuses_escaping_paths(tmp_path):
    extract_zip(_zip({"extensions/ext": "#!/bin/sh\n", "lib/a.py": ""},
                     {"extensions/ext": 0o755}), tmp_path / "opt")
    assert (tmp_path / "opt/extensions/ext").stat().st_mode & 0o111
    assert not (tmp_path / "opt/lib/a.py").stat().st_mode & 0o111
    with pytest.raises(SandboxError, match="would land outside"):
        extract_zip(_zip({"../evil.py": ""}), tmp_path / "opt2")


def test_registered_zips_are_found_by_hash(moto_server):
    store = CodeStore(moto_server)
    data = _zip({"x.py": "x = 1"})
    assert store.get(store.register(data), "function x") == data


# --- API Gateway -------------------------------------------------------------------------------

def _gateway(sandbox, routes, region="us-east-1"):
    return ApiGateway(region, routes, sandbox, sandbox.clock)


def test_api_gateway_returns_the_proxy_response(moto_server, role, app_zip, sandbox):
    name = _function(moto_server, role, app_zip, "hello")
    assert _gateway(sandbox, {"/hello": name}).request("/hello") == (200, "Hello from region us-east-1")


def test_api_gateway_unknown_path_is_403(sandbox):
    assert _gateway(sandbox, {}).request("/nope") == (403, '{"message": "Missing Authentication Token"}')


@pytest.mark.parametrize("handler", ["boom", "not_proxy"])
def test_api_gateway_turns_errors_and_bad_responses_into_502(moto_server, role, app_zip, sandbox, handler):
    name = _function(moto_server, role, app_zip, handler)
    assert _gateway(sandbox, {"/x": name}).request("/x") == (502, '{"message": "Internal server error"}')


def test_integration_timeout_is_504_while_the_function_runs_on(moto_server, role, app_zip, sandbox):
    name = _function(moto_server, role, app_zip, "slow", timeout=60, variables={"SLEEP_S": "4"})
    gateway = _gateway(sandbox, {"/slow": name})
    started = time.monotonic()
    status, body = gateway.request("/slow")
    elapsed = time.monotonic() - started
    assert (status, body) == (504, '{"message": "Endpoint request timed out"}')
    assert 2.5 <= elapsed < 4.0  # 29 template s at scale 10, not the handler's 4 s


def test_function_timeout_is_a_502(moto_server, role, app_zip, tmp_path):
    # At OVERLAP_SCALE the 4 s timeout is 2 real s and API Gateway's 29 s are 14.5: a loaded
    # machine's cold start cannot turn the function's timeout into the gateway's 504 (at scale
    # 10, 1 s against 2.9 s, a loaded CI run once did).
    name = _function(moto_server, role, app_zip, "slow", timeout=4, variables={"SLEEP_S": "6"})
    with Sandbox(moto_server, Clock(scale=OVERLAP_SCALE), tmp_path) as box:
        assert _gateway(box, {"/slow": name}).request("/slow")[0] == 502


def test_a_compressed_function_timeout_never_drops_below_the_real_floor(moto_server, role, app_zip, tmp_path):
    name = _function(moto_server, role, app_zip, "slow", timeout=1, variables={"SLEEP_S": "0.3"})
    with Sandbox(moto_server, Clock(scale=100), tmp_path) as box:  # 1 s → 10 ms, floored to 0.5 s
        assert box.invoke("us-east-1", name).status == "success"


# The throttle tests below want two invocations in flight at once, not compressed time: at
# scale 2 API Gateway's 29 s are 14.5 real s, far beyond a cold start and the 1 s sleep on a busy
# machine (at scale 10 they were 2.9 s, and a loaded CI once took longer: a timeout, no throttle).
OVERLAP_SCALE = 2


def _two_at_once(box, name):
    gateway = ApiGateway("us-east-1", {"/slow": name}, box, box.clock)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        return sorted(pool.map(gateway.respond, ["/slow", "/slow"]))


def test_an_invocation_beyond_the_reserved_concurrency_is_throttled_as_a_500(
        moto_server, role, app_zip, tmp_path):
    name = _function(moto_server, role, app_zip, "slow", variables={"SLEEP_S": "1"})
    moto_server.client("lambda").put_function_concurrency(FunctionName=name,
                                                          ReservedConcurrentExecutions=1)
    with Sandbox(moto_server, Clock(scale=OVERLAP_SCALE), tmp_path) as box:
        assert _two_at_once(box, name) == [
            (200, "late", ""), (500, '{"message": "Internal server error"}', "Lambda throttled")]
        assert box.stats()[f"us-east-1/{name}"]["throttles"] == 1


def test_the_account_concurrency_is_shared_by_the_functions_of_a_region(
        moto_server, role, app_zip, tmp_path):
    name = _function(moto_server, role, app_zip, "slow", variables={"SLEEP_S": "1"})
    with Sandbox(moto_server, Clock(scale=OVERLAP_SCALE), tmp_path, account_concurrency=1) as box:
        assert [a.cause for a in _two_at_once(box, name)] == ["", "Lambda throttled"]


def test_more_environments_than_this_machine_runs_is_the_emulators_limit_not_a_throttle(
        moto_server, role, app_zip, tmp_path):
    name = _function(moto_server, role, app_zip, "slow", variables={"SLEEP_S": "1"})
    with Sandbox(moto_server, Clock(scale=OVERLAP_SCALE), tmp_path, max_environments=1) as box:
        assert [a.cause for a in _two_at_once(box, name)] == ["", "emulator capacity (not Lambda's limit)"]
        stats = box.stats()[f"us-east-1/{name}"]
        assert (stats["throttles"], stats["capacity_refusals"]) == (0, 1)


def test_invocations_that_see_a_new_configuration_at_once_all_start_from_it(moto_server, role, app_zip, sandbox):
    name = _function(moto_server, role, app_zip, "hello")
    client = moto_server.client("lambda")
    for round_ in range(3):
        client.update_function_configuration(FunctionName=name,
                                             Environment={"Variables": {"GREETING": f"hi-{round_}"}})
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda _: sandbox.invoke("us-east-1", name), range(8)))
        assert [r.status for r in results] == ["success"] * 8, [r.payload[:120] for r in results]


def _read_ago(box, name, intervals):
    """Pretend the function's configuration was last read `intervals` refresh intervals ago."""
    box._pools[("us-east-1", name)].checked_at = time.monotonic() - intervals * box.refresh_real_s


def test_a_background_refresh_keeps_reading_the_configuration_off_the_invocations_path(
        moto_server, role, app_zip, tmp_path):
    name = _function(moto_server, role, app_zip, "env")
    with Sandbox(moto_server, Clock(scale=10), tmp_path, refresh_real_s=10.0,
                 refresh_in_background=True) as box:
        box.invoke("us-east-1", name)  # the first read is the invocation's own: nothing to serve yet
        read, reading, release = box._configuration, threading.Event(), threading.Event()

        def held_read(region, function):  # an emulator that does not answer until released
            reading.set()
            release.wait(30)
            return read(region, function)
        box._configuration = held_read
        moto_server.client("lambda").update_function_configuration(
            FunctionName=name, Environment={"Variables": {"GREETING": "changed"}})
        _read_ago(box, name, 1.5)  # due for a re-read, within STALE_READS intervals
        served = box.invoke("us-east-1", name)
        assert reading.is_set() and not release.is_set()  # answered while the read was held
        assert _body(served)["GREETING"] == "hi"
        release.set()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and box._pools[("us-east-1", name)].refreshing:
            time.sleep(0.01)
        assert _body(box.invoke("us-east-1", name))["GREETING"] == "changed"


def test_an_invocation_after_the_configuration_went_stale_reads_it_before_it_runs(
        moto_server, role, app_zip, tmp_path):
    # A function idle since a detach: its first invocation must not run the attached fault.
    name = _function(moto_server, role, app_zip, "env")
    with Sandbox(moto_server, Clock(scale=10), tmp_path, refresh_real_s=10.0,
                 refresh_in_background=True) as box:
        assert _body(box.invoke("us-east-1", name))["GREETING"] == "hi"
        moto_server.client("lambda").update_function_configuration(
            FunctionName=name, Environment={"Variables": {"GREETING": "changed"}})
        _read_ago(box, name, STALE_READS + 0.5)
        assert _body(box.invoke("us-east-1", name))["GREETING"] == "changed"


def test_a_failed_request_names_its_cause(moto_server, role, app_zip, sandbox, tmp_path):
    # The timeout at OVERLAP_SCALE, as in test_function_timeout_is_a_502: at scale 10 (1 real s
    # against the gateway's 2.9) a cold start on a loaded machine once made it the gateway's.
    name = _function(moto_server, role, app_zip, "slow", timeout=4, variables={"SLEEP_S": "6"})
    with Sandbox(moto_server, Clock(scale=OVERLAP_SCALE), tmp_path / "slow") as box:
        assert _gateway(box, {"/slow": name}).respond("/slow").cause == "function timeout"
    boom = _function(moto_server, role, app_zip, "boom")
    assert _gateway(sandbox, {"/x": boom}).respond("/x").cause.startswith("function error: ")


# --- the real layer ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def layer_arn(moto_server, app_zip, tmp_path_factory):
    out = build_layer(tmp_path_factory.mktemp("layer"))
    moto_server.client("s3").put_object(Bucket=app_zip, Key="layer.zip", Body=out.read_bytes())
    return moto_server.client("lambda").publish_layer_version(
        LayerName=unique("chaos"), Content={"S3Bucket": app_zip, "S3Key": "layer.zip"},
        CompatibleRuntimes=["python3.12", "nodejs22.x"])["LayerVersionArn"]


def test_attaching_the_layer_takes_effect_on_the_next_cold_start(
        moto_server, role, app_zip, layer_arn, sandbox):
    name = _function(moto_server, role, app_zip, "hello")
    sandbox.invoke("us-east-1", name)
    before = sandbox.invoke("us-east-1", name)  # warm, like `during`
    moto_server.client("lambda").update_function_configuration(
        FunctionName=name, Layers=[layer_arn],
        Environment={"Variables": {chaos.EXEC_WRAPPER: chaos.WRAPPER_PATH, chaos.FAULT_TYPE: "latency",
                                   chaos.LATENCY_MS: "4000"}})
    sandbox.invoke("us-east-1", name)  # the cold start with the layer
    during = sandbox.invoke("us-east-1", name)
    assert before.status == during.status == "success"
    assert not during.cold_start
    # 4000 template ms of injected latency (400 ms real at scale 10), within 25 %
    assert during.duration_ms - before.duration_ms == pytest.approx(4000, rel=0.25)


def test_the_layer_injects_into_a_nodejs_function_too(moto_server, role, node_app_zip, layer_arn, sandbox):
    name = _function(moto_server, role, node_app_zip, "hello", runtime="nodejs22.x")
    moto_server.client("lambda").update_function_configuration(
        FunctionName=name, Layers=[layer_arn],
        Environment={"Variables": {chaos.EXEC_WRAPPER: chaos.WRAPPER_PATH, chaos.FAULT_TYPE: "error",
                                   chaos.PREVENT_EXECUTION: "true", chaos.ERROR_TYPE: "Throttled"}})
    result = sandbox.invoke("us-east-1", name)
    assert (result.status, result.error_type) == ("error", "Throttled"), result.payload


def test_the_same_seed_replays_the_layers_fault_decisions(moto_server, role, app_zip, layer_arn, tmp_path):
    name = _function(moto_server, role, app_zip, "hello")
    moto_server.client("lambda").update_function_configuration(
        FunctionName=name, Layers=[layer_arn],
        Environment={"Variables": {chaos.EXEC_WRAPPER: chaos.WRAPPER_PATH, chaos.FAULT_TYPE: "error",
                                   chaos.PREVENT_EXECUTION: "true", chaos.INVOCATION_PERCENTAGE: "50"}})

    def run(seed, folder):
        with Sandbox(moto_server, Clock(scale=10), tmp_path / folder, seed=seed) as box:
            return [box.invoke("us-east-1", name).status for _ in range(30)]

    first = run("7", "a")
    assert 3 < first.count("error") < 27  # really drawn
    assert run("7", "b") == first
    assert run("8", "c") != first


def test_invocations_and_errors_are_published_as_aws_lambda_metrics(moto_server, role, app_zip, tmp_path):
    import datetime as dt
    from local_emulator.aws.cloudwatch import MetricsPublisher
    ok, bad = _function(moto_server, role, app_zip, "hello"), _function(moto_server, role, app_zip, "boom")
    clock = Clock(scale=10)
    publisher = MetricsPublisher(moto_server, "us-east-1", clock, "AWS/Lambda")
    with Sandbox(moto_server, clock, tmp_path, metrics={"us-east-1": publisher}) as box:
        for name in (ok, ok, bad):
            box.invoke("us-east-1", name)
    publisher.flush()
    cloudwatch = moto_server.client("cloudwatch")

    def total(metric, name):
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/Lambda", MetricName=metric, Statistics=["Sum"], Period=3600,
            Dimensions=[{"Name": "FunctionName", "Value": name}],
            StartTime=clock.wall_start - dt.timedelta(hours=1), EndTime=clock.wall() + dt.timedelta(hours=1))
        return sum(p["Sum"] for p in points["Datapoints"])
    assert (total("Invocations", ok), total("Errors", ok)) == (2, 0)
    assert (total("Invocations", bad), total("Errors", bad)) == (1, 1)


CHATTY = '''
import json, time

def chatty(event, context):
    print("plain line")
    print(json.dumps({"_aws": {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": [
        {"Namespace": "App", "Dimensions": [[]], "Metrics": [{"Name": "Orders"}]}]}, "Orders": 2}))
    print("no newline at the end", end="", flush=True)
    return {"statusCode": 200, "body": "ok"}
'''


def test_every_line_a_functions_processes_write_reaches_the_log_sink_with_its_log_group(
        moto_server, role, app_zip, layer_arn, tmp_path):
    moto_server.client("s3").put_object(Bucket=app_zip, Key="chatty.zip", Body=_zip({"app.py": CHATTY}))
    name = unique("fn")
    moto_server.client("lambda").create_function(
        FunctionName=name, Runtime="python3.12", Role=role, Handler="app.chatty",
        Code={"S3Bucket": app_zip, "S3Key": "chatty.zip"}, Timeout=30)
    moto_server.client("lambda").update_function_configuration(
        FunctionName=name, Layers=[layer_arn],
        Environment={"Variables": {chaos.EXEC_WRAPPER: chaos.WRAPPER_PATH, chaos.FAULT_TYPE: "latency",
                                   chaos.LATENCY_MS: "100"}})
    lines = []
    sink = lambda region, group, line: lines.append((region, group, line))  # noqa: E731
    with Sandbox(moto_server, Clock(scale=10), tmp_path, log_sink=sink) as box:
        assert box.invoke("us-east-1", name).status == "success"
    assert {(r, g) for r, g, _ in lines} == {("us-east-1", f"/aws/lambda/{name}")}
    text = [line for _, _, line in lines]
    assert "plain line" in text and any('"Orders": 2' in t for t in text)
    assert "no newline at the end" in text  # handed on when the process ended
    # the layer's extension writes its EMF record of the injected fault to the same log group
    injected = [json.loads(t) for t in text if '"InjectedFaults"' in t]
    assert [(r["FunctionName"], r["FaultType"]) for r in injected] == [(name, "latency")]


def test_lambda_metrics_go_to_the_function_and_the_account_wide_series_with_units(
        moto_server, role, app_zip, tmp_path):
    import datetime as dt
    from local_emulator.aws.cloudwatch import MetricsPublisher
    name = _function(moto_server, role, app_zip, "hello")
    clock = Clock(scale=10)
    namespace = unique("AWS/Lambda")
    publisher = MetricsPublisher(moto_server, "us-east-1", clock, namespace)
    with Sandbox(moto_server, clock, tmp_path, metrics={"us-east-1": publisher}) as box:
        box.invoke("us-east-1", name)
    publisher.flush()

    def series(metric, dims, unit):
        query = {"Id": "q", "MetricStat": {"Metric": {"Namespace": namespace, "MetricName": metric,
                                                      "Dimensions": dims},
                                           "Period": 3600, "Stat": "SampleCount", "Unit": unit}}
        return sum(moto_server.client("cloudwatch").get_metric_data(
            MetricDataQueries=[query], StartTime=clock.wall_start - dt.timedelta(hours=1),
            EndTime=clock.wall() + dt.timedelta(hours=1))["MetricDataResults"][0]["Values"])
    function = [{"Name": "FunctionName", "Value": name}]
    for dims in (function, []):
        assert series("Invocations", dims, "Count") == series("Errors", dims, "Count") == 1
        assert series("Duration", dims, "Milliseconds") == series("Throttles", dims, "Count") == 1


def test_the_log_buffer_hands_on_whole_lines_per_source_however_the_pipe_splits_them():
    from local_emulator.environment.processes import LogBuffer
    lines = []
    logs = LogBuffer(line_sink=lambda source, line: lines.append((source, line)))
    logs.append("runtime", b'{"_aws": {"Time')
    logs.append("chaos-extension", b"[lambda-chaos] one\r\n[lambda-chaos] tw")
    logs.append("runtime", b'stamp": 1}}\nnext\n')
    logs.end("chaos-extension")
    logs.end("runtime")
    assert lines == [("chaos-extension", "[lambda-chaos] one"),
                     ("runtime", '{"_aws": {"Timestamp": 1}}'), ("runtime", "next"),
                     ("chaos-extension", "[lambda-chaos] tw")]
    assert logs.text("runtime") == '{"_aws": {"Timestamp": 1}}\nnext\n'  # the log is unchanged
