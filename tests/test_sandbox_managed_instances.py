"""The sandbox runs a Lambda Managed Instances function as Lambda does: N invocations at once in
one execution environment.

The functions are created through the emulated Lambda API with a `CapacityProviderConfig`
(moto drops it; local_emulator/aws/moto_capacity_provider.py keeps it). Their handler
(tests/functions/mi_sandbox.py, and .mjs for Node.js under aws-lambda-ric) says which
environment and runtime process served it and holds until the test lets it go, so the tests
order invocations by files, never by durations.
"""
import io
import json
import os
import zipfile
from pathlib import Path

import pytest

from local_emulator.clock import Clock
from local_emulator.errors import SandboxError
from local_emulator.environment.sandbox import Sandbox
from tests.emulator_fixtures import moto_server, unique  # noqa: F401 - fixture
from tests.test_managed_instances import Call, _wait_until, needs_node

HANDLERS = [Path(__file__).parent / "functions" / f"mi_sandbox.{ext}" for ext in ("py", "mjs")]
PROVIDER = "arn:aws:lambda:us-east-1:123456789012:capacity-provider:chaos-sandbox-test"


@pytest.fixture(scope="module")
def code_bucket(moto_server):
    """A bucket whose app.zip holds the handler, as `cloudformation package` leaves code."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for handler in HANDLERS:
            archive.writestr(handler.name, handler.read_text())
    bucket = unique("mi-code-bucket")
    s3 = moto_server.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="app.zip", Body=buffer.getvalue())
    return bucket


@pytest.fixture(scope="module")
def role(moto_server):
    return moto_server.client("iam").create_role(
        RoleName=unique("lambda-role"), AssumeRolePolicyDocument="{}")["Role"]["Arn"]


def _capacity_provider(max_concurrency):
    settings = {"CapacityProviderArn": PROVIDER, "ExecutionEnvironmentMemoryGiBPerVCpu": 4.0}
    if max_concurrency is not None:
        settings["PerExecutionEnvironmentMaxConcurrency"] = max_concurrency
    return {"LambdaManagedInstancesCapacityProviderConfig": settings}


def _function(moto_server, role, bucket, *, managed=True, max_concurrency=None, timeout=60,
              runtime="python3.13"):
    """A function of 2 GB (Managed Instances' smallest), on a capacity provider unless
    `managed` is False; Python 3.13 and Node.js 22 are the oldest Managed Instances run."""
    name = unique("fn")
    extra = {"CapacityProviderConfig": _capacity_provider(max_concurrency)} if managed else {}
    moto_server.client("lambda").create_function(
        FunctionName=name, Runtime=runtime, Role=role, Handler="mi_sandbox.hold",
        Code={"S3Bucket": bucket, "S3Key": "app.zip"}, Timeout=timeout, MemorySize=2048,
        Environment={"Variables": {"GREETING": "hi"}}, **extra)
    return name


@pytest.fixture
def box(moto_server, tmp_path):
    sandbox = Sandbox(moto_server, Clock(scale=10), tmp_path / "sandbox", refresh_real_s=0.0)
    yield sandbox
    sandbox.close()


class _Function:
    """A function behind the sandbox, as tests/test_managed_instances.py's Call invokes an
    environment: its invocations on their own threads, held by the handler until let go."""

    def __init__(self, box, name):
        self.box, self.name = box, name

    def invoke(self, event, request_id=None):  # the sandbox numbers its own request ids
        return self.box.invoke("us-east-1", self.name, event.encode())


def _call(box, name, folder, tag, held=True, started=False):
    call = Call(_Function(box, name), folder, tag, held=held)
    if started:
        _wait_until(call.started.exists, f"{tag} to start")
    return call


def _stats(box, name):
    return box.stats()[f"us-east-1/{name}"]


def _release_all(calls):
    for call in calls:
        call.let_go()
    return [call.answer() for call in calls]


def test_the_emulated_lambda_api_keeps_the_capacity_provider_config(moto_server, role, code_bucket):
    name = _function(moto_server, role, code_bucket, max_concurrency=4)
    client = moto_server.client("lambda")
    assert client.get_function_configuration(FunctionName=name)["CapacityProviderConfig"] == \
        _capacity_provider(4)
    client.update_function_configuration(FunctionName=name,
                                         CapacityProviderConfig=_capacity_provider(8))
    assert client.get_function(FunctionName=name)["Configuration"]["CapacityProviderConfig"] == \
        _capacity_provider(8)
    default = _function(moto_server, role, code_bucket, managed=False)
    assert "CapacityProviderConfig" not in client.get_function_configuration(FunctionName=default)


@pytest.mark.parametrize("runtime", ["python3.13", pytest.param("nodejs22.x", marks=needs_node)])
def test_n_concurrent_invocations_share_one_environment_and_the_next_one_gets_a_second(
        moto_server, role, code_bucket, box, tmp_path, runtime):
    name = _function(moto_server, role, code_bucket, max_concurrency=4, runtime=runtime)
    first = [_call(box, name, tmp_path, f"first-{i}") for i in range(4)]
    _wait_until(lambda: all(c.started.exists() for c in first), "four handlers running at once")
    assert (_stats(box, name)["environments"], _stats(box, name)["busy"]) == (1, 4)
    fifth = _call(box, name, tmp_path, "fifth", started=True)
    assert (_stats(box, name)["environments"], _stats(box, name)["busy"]) == (2, 5)

    answers = _release_all(first + [fifth])
    shared, other = answers[:4], answers[4]
    assert len({a["runtime_api"] for a in shared}) == 1
    assert len({a["runtime"] for a in shared}) == 1  # one runtime ...
    if runtime.startswith("python"):  # ... whose 4 worker processes ran them at once
        assert len({a["pid"] for a in shared}) == 4
    assert other["runtime_api"] != shared[0]["runtime_api"]
    assert {a["max_concurrency"] for a in answers} == {"4"}
    assert [c.result.cold_start for c in first].count(True) == 1  # one init for the four
    assert fifth.result.cold_start
    stats = _stats(box, name)
    assert (stats["cold_starts"], stats["environments"], stats["warm"], stats["busy"]) == \
        (2, 2, 2, 0)


def test_a_default_function_keeps_one_invocation_per_environment(
        moto_server, role, code_bucket, box, tmp_path):
    name = _function(moto_server, role, code_bucket, managed=False)
    calls = [_call(box, name, tmp_path, f"call-{i}", started=True) for i in range(2)]
    assert _stats(box, name)["environments"] == 2
    answers = _release_all(calls)
    assert answers[0]["runtime_api"] != answers[1]["runtime_api"]
    assert {a["max_concurrency"] for a in answers} == {None}


def test_a_timed_out_invocation_fails_alone_and_keeps_the_environment(
        moto_server, role, code_bucket, box, tmp_path):
    # 50 template s at scale 10: 5 s real, room for the invocations that must not time out
    name = _function(moto_server, role, code_bucket, max_concurrency=2, timeout=50)
    warm = _call(box, name, tmp_path, "warm", held=False).answer()
    late = _call(box, name, tmp_path, "late", started=True)
    assert (late.wait().status, late.result.error_type) == ("timeout", "Sandbox.Timedout")
    after = _call(box, name, tmp_path, "after", held=False).answer()  # the other worker
    assert (after["runtime_api"], after["runtime"]) == (warm["runtime_api"], warm["runtime"])
    assert warm["runtime"] != os.getpid()  # the runtime's own process, which a reset replaces
    stats = _stats(box, name)
    assert (stats["environments"], stats["retired"], stats["cold_starts"]) == (1, 0, 1)
    late.let_go()


def test_a_timed_out_invocation_still_running_holds_its_worker_so_the_next_goes_elsewhere(
        moto_server, role, code_bucket, box, tmp_path):
    name = _function(moto_server, role, code_bucket, max_concurrency=1, timeout=50)
    warm = _call(box, name, tmp_path, "warm", held=False).answer()
    late = _call(box, name, tmp_path, "late", started=True)  # in the warm environment
    assert late.wait().status == "timeout"
    after = _call(box, name, tmp_path, "after", held=False).answer()
    assert after["runtime_api"] != warm["runtime_api"]
    stats = _stats(box, name)  # the only worker of the first still runs "late": it is busy
    assert (stats["environments"], stats["retired"]) == (2, 0)
    late.let_go()


def test_an_invocation_beyond_the_reserved_concurrency_is_throttled_even_with_free_slots(
        moto_server, role, code_bucket, box, tmp_path):
    name = _function(moto_server, role, code_bucket, max_concurrency=4)
    moto_server.client("lambda").put_function_concurrency(FunctionName=name,
                                                          ReservedConcurrentExecutions=1)
    held = _call(box, name, tmp_path, "held", started=True)
    refused = _call(box, name, tmp_path, "refused", held=False).wait()
    assert (refused.status, refused.error_type) == ("throttled", "TooManyRequestsException")
    assert "reserved concurrency (1)" in json.loads(refused.payload)["errorMessage"]
    _release_all([held])


def test_a_full_environment_at_this_machines_limit_is_a_capacity_refusal(
        moto_server, role, code_bucket, tmp_path):
    name = _function(moto_server, role, code_bucket, max_concurrency=1)
    with Sandbox(moto_server, Clock(scale=10), tmp_path / "one", refresh_real_s=0.0,
                 max_environments=1) as one:
        held = _call(one, name, tmp_path, "held", started=True)
        refused = _call(one, name, tmp_path, "refused", held=False).wait()
        assert refused.status == "capacity"
        assert _stats(one, name)["capacity_refusals"] == 1
        _release_all([held])


def test_a_change_of_the_concurrency_retires_the_environment(
        moto_server, role, code_bucket, box, tmp_path):
    name = _function(moto_server, role, code_bucket, max_concurrency=4)
    before = _call(box, name, tmp_path, "before", held=False).answer()
    moto_server.client("lambda").update_function_configuration(
        FunctionName=name, CapacityProviderConfig=_capacity_provider(2))
    after = _call(box, name, tmp_path, "after", held=False)
    answer = after.answer()
    assert (before["max_concurrency"], answer["max_concurrency"]) == ("4", "2")
    assert after.result.cold_start
    stats = _stats(box, name)
    assert (stats["configurations"], stats["retired"], stats["environments"]) == (2, 1, 1)


def test_a_managed_instances_function_without_its_concurrency_is_refused_naming_the_fix(
        moto_server, role, code_bucket, box):
    name = _function(moto_server, role, code_bucket, max_concurrency=None)
    with pytest.raises(SandboxError, match=(
            f"function {name} in us-east-1 runs on Lambda Managed Instances \\({PROVIDER}\\) "
            "without PerExecutionEnvironmentMaxConcurrency.*set "
            "PerExecutionEnvironmentMaxConcurrency \\(1-1600\\)")):
        box.invoke("us-east-1", name)
