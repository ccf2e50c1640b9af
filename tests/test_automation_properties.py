"""Properties over generated functions, and the k-th AWS call failing for every k.

moto gaps in play (tests/automation_fixtures.py, MotoGaps): RevisionId, LastUpdateStatus
InProgress (one poll per update), PublishVersion de-duplication, the 5-layer and 4 KB limits.
"""
import itertools
import json

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from moto import mock_aws

import automation_handler as ah
from automation_fixtures import Lab, SimulatedCrash, fast_aws
from chaos_layer import config

_names = itertools.count()

env_keys = st.from_regex(r"[A-Z][A-Z0-9_]{0,24}", fullmatch=True).filter(
    lambda k: not k.startswith(("AWS_", "CHAOS_", "LAMBDA_")))
env_values = st.text(st.characters(min_codepoint=32, max_codepoint=0x24F), max_size=600)
functions = st.fixed_dictionaries({
    "layers": st.integers(0, 4),
    "env": st.dictionaries(env_keys, env_values, max_size=10),
    "wrapper": st.sampled_from([None, "/opt/otel-instrument", "/opt/datadog_wrapper"]),
    "alias": st.sampled_from([None, "plain", "weighted"]),
    "fault": st.sampled_from(["latency", "error", "response"]),
    # Environments close to Lambda's 4 KB, where the fault's variables may no longer fit.
    "padding": st.one_of(st.just(0), st.integers(2800, 4000)),
})


@pytest.fixture
def lab():
    with mock_aws():
        yield Lab()


def environment(spec):
    env = dict(spec["env"])
    if spec.get("padding"):
        env["PADDING"] = "p" * spec["padding"]
    return env


def build(lab, spec):
    name = f"gen-{next(_names)}"
    lab.function(name, layers=lab.other_layers[:spec["layers"]], env=environment(spec),
                 wrapper=spec["wrapper"], alias="live" if spec["alias"] else None,
                 weights={} if spec["alias"] == "plain" else None)
    return name


def params_for(lab, name, spec):
    return lab.params(FunctionName=name, FaultType=spec["fault"],
                      AliasName="live" if spec["alias"] else "", ErrorMessage="boom",
                      ResponseStatusCode=503, ResponseBody='{"message": "down"}')


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(spec=functions)
def test_detach_of_attach_equals_the_function_and_attach_twice_equals_once(lab, spec):
    size = ah.environment_size(dict(environment(spec), **({ah.EXEC_WRAPPER: spec["wrapper"]}
                                                    if spec["wrapper"] else {})))
    assume(size <= 4096 - 64)  # Lambda would not have let the function exist
    name = build(lab, spec)
    before = lab.snapshot(name)
    params = params_for(lab, name, spec)
    event(f"alias: {spec['alias']}, layers: {spec['layers']}, wrapper: {bool(spec['wrapper'])}")
    try:
        ah.attach(params, lab.aws)
    except ah.TargetRefused as exc:
        event("refused: environment over 4 KB with the fault")
        assert "environment would be" in str(exc)
        assert lab.snapshot(name) == before
        return
    once = lab.snapshot(name)
    ah.attach(params, lab.aws)
    assert lab.snapshot(name) == once
    ah.detach(params, lab.aws)
    assert lab.snapshot(name) == before
    ah.detach(params, lab.aws)
    assert lab.snapshot(name) == before


def fully_attached(lab, name, experiment_alias=True):
    config_now = lab.gaps.raw.get_function_configuration(FunctionName=name)
    env = config_now["Environment"]["Variables"]
    record = json.loads(env[config.RESTORE_STATE])
    assert config_now["Layers"][-1]["Arn"] == lab.layer
    assert env[config.EXEC_WRAPPER] == config.WRAPPER_PATH
    if experiment_alias:
        alias = lab.gaps.raw.get_alias(FunctionName=name, Name="live")
        assert not (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights")
        version = lab.gaps.raw.get_function_configuration(FunctionName=name,
                                                          Qualifier=alias["FunctionVersion"])
        assert json.loads(version["Environment"]["Variables"][config.RESTORE_STATE]) == record
    return True


def realistic(lab):
    return lab.function(f"orders-{next(_names)}").split(":")[-1]


def calls_of_a_clean_attach(lab):
    name = realistic(lab)
    start = len(lab.gaps.calls)
    ah.attach(lab.params(FunctionName=name, AliasName="live"), lab.aws)
    return len(lab.gaps.calls) - start


@pytest.mark.parametrize("kind", ["throttle", "conflict", "denied", "crash"])
def test_kth_call_failing_leaves_the_function_fully_attached_or_exactly_as_before(lab, kind):
    total = calls_of_a_clean_attach(lab)
    assert total == 8  # get, alias, layer, update, 2 polls (InProgress), publish, alias
    for k in range(1, total + 2):
        name = realistic(lab)
        before = lab.snapshot(name)
        params = lab.params(FunctionName=name, AliasName="live")
        start = len(lab.gaps.calls)
        disarm = arm(lab, start + k, kind)
        try:
            ah.attach(params, lab.aws)
            outcome = "attached"
        except SimulatedCrash:
            outcome = "crashed"
        except ah.AutomationError as exc:
            assert kind == "denied" and (name in str(exc) or "get_layer_version" in str(exc)), exc
            outcome = "rolled back"
        disarm()
        if kind in ("throttle", "conflict") or (kind == "denied" and k > total):
            assert outcome == "attached", (k, outcome)
        if outcome == "attached":
            assert fully_attached(lab, name), k
        elif outcome == "rolled back":
            assert lab.snapshot(name) == before, k
        else:  # the process died: the document's onFailure/onCancel step runs the detach
            ah.detach(params, lab.aws)
            assert lab.snapshot(name) == before, k
            continue
        ah.detach(params, lab.aws)
        assert lab.snapshot(name) == before, k


def test_attach_after_a_crash_at_any_call_completes_the_attach(lab):
    total = calls_of_a_clean_attach(lab)
    for k in range(1, total + 1):
        name = realistic(lab)
        before = lab.snapshot(name)
        params = lab.params(FunctionName=name, AliasName="live")
        lab.gaps.fail_at = (len(lab.gaps.calls) + k, "crash")
        with pytest.raises(SimulatedCrash):
            ah.attach(params, lab.aws)
        lab.gaps.fail_at = None
        ah.attach(params, lab.aws)
        assert fully_attached(lab, name), k
        versions = lab.gaps.raw.list_versions_by_function(FunctionName=name)["Versions"]
        assert len(versions) == len(before["Versions"]) + 1, k  # no pile of fault versions
        ah.detach(params, lab.aws)
        assert lab.snapshot(name) == before, k


@pytest.mark.parametrize("kind", ["denied", "crash"])
def test_kth_call_failing_with_two_targets_is_all_or_nothing(lab, kind):
    aws = fast_aws(lab.lam, lab.tagging, concurrency=1)
    for k in range(1, 18):
        names = [realistic(lab), realistic(lab)]
        before = {n: lab.snapshot(n) for n in names}
        params = lab.params(FunctionName=",".join(names), AliasName="live")
        start = len(lab.gaps.calls)
        disarm = arm(lab, start + k, kind)
        try:
            ah.attach(params, aws)
            done = True
        except (SimulatedCrash, ah.AutomationError):
            done = False
        disarm()
        if done:
            assert all(fully_attached(lab, n) for n in names), k
        elif kind == "crash":
            ah.detach(params, aws)
        else:
            assert {n: lab.snapshot(n) for n in names} == before, k
        ah.detach(params, aws)
        assert {n: lab.snapshot(n) for n in names} == before, k
    assert done, "k ran past the last call of a two-target attach, so every call was covered"


def arm(lab, k, kind):
    """Make call k fail: throttle, conflict or crash through MotoGaps, denied through a hook
    of its own. Returns the function that disarms it."""
    if kind == "denied":
        return deny_at(lab, k)
    lab.gaps.fail_at = (k, kind)

    def disarm():
        lab.gaps.fail_at = None
    return disarm


def deny_at(lab, k):
    """Make call k fail with a non-retryable error (AccessDenied), once; returns the disarm."""
    def hook(params, model, **_):
        if len(lab.gaps.calls) == k:
            from botocore.exceptions import ClientError
            raise ClientError({"Error": {"Code": "AccessDeniedException",
                                         "Message": "injected"}}, model.name)

    def disarm():
        lab.lam.meta.events.unregister("before-parameter-build.lambda", hook)
    lab.lam.meta.events.register("before-parameter-build.lambda", hook)
    return disarm


@pytest.mark.parametrize("kind", ["throttle", "conflict", "denied", "crash"])
def test_kth_call_failing_during_detach_is_finished_by_running_detach_again(lab, kind):
    probe = realistic(lab)
    ah.attach(lab.params(FunctionName=probe, AliasName="live"), lab.aws)
    start = len(lab.gaps.calls)
    ah.detach({"FunctionName": probe}, lab.aws)
    total = len(lab.gaps.calls) - start
    assert total == 7  # get, alias, update alias, delete version, update, 2 polls
    for k in range(1, total + 2):
        name = realistic(lab)
        before = lab.snapshot(name)
        ah.attach(lab.params(FunctionName=name, AliasName="live"), lab.aws)
        start = len(lab.gaps.calls)
        disarm = arm(lab, start + k, kind)
        try:
            ah.detach({"FunctionName": name}, lab.aws)
            finished = True
        except (SimulatedCrash, ah.AutomationError):
            finished = False
        disarm()
        if kind in ("throttle", "conflict") or k > total:
            assert finished, k
        if finished:
            assert lab.snapshot(name) == before, k
        ah.detach({"FunctionName": name}, lab.aws)
        assert lab.snapshot(name) == before, k


others = st.fixed_dictionaries({
    "add": st.dictionaries(env_keys, st.text(st.characters(min_codepoint=48, max_codepoint=122),
                                             max_size=40), max_size=3),
    "drop_own": st.booleans(),
    "add_layer": st.booleans(),
})


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(spec=functions, change=others)
def test_detach_keeps_what_others_changed_during_the_experiment(lab, spec, change):
    spec = dict(spec, padding=0)  # the refusal near 4 KB is the other property's business
    size = ah.environment_size(dict(environment(spec), **({ah.EXEC_WRAPPER: spec["wrapper"]}
                                                    if spec["wrapper"] else {})))
    assume(size <= 4096 - 800)
    name = build(lab, spec)
    before = lab.snapshot(name)
    ah.attach(params_for(lab, name, spec), lab.aws)
    current = lab.gaps.raw.get_function_configuration(FunctionName=name)
    env = dict(current["Environment"]["Variables"])
    dropped = sorted(spec["env"])[:1] if change["drop_own"] else []
    for key in dropped:  # someone removes one of the function's variables, then adds some
        env.pop(key, None)
    env.update(change["add"])
    layers = [layer["Arn"] for layer in current["Layers"]]
    spare = [arn for arn in lab.other_layers if arn not in layers]
    added_layer = spare[:1] if change["add_layer"] and len(layers) < 5 and spare else []
    lab.gaps.raw.update_function_configuration(FunctionName=name, Layers=layers + added_layer,
                                               Environment={"Variables": env})
    lab.gaps.touch(name)
    ah.detach({"FunctionName": name}, lab.aws)
    expected = dict(before["Environment"], **change["add"])
    for key in dropped:
        if key not in change["add"]:
            expected.pop(key, None)
    after = lab.snapshot(name)
    assert after["Environment"] == expected
    assert after["Layers"] == before["Layers"] + added_layer
    assert after["Aliases"] == before["Aliases"]
