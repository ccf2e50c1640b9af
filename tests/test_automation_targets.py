"""Targets by tag, selection, the blast-radius guard, pacing, retries and all-or-nothing runs."""
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

import automation_handler as ah
from automation_fixtures import Lab, fast_aws
from chaos_layer import config

TAG = {"TargetTagKey": "chaos:target", "TargetTagValue": "sample-app"}


@pytest.fixture
def lab():
    with mock_aws():
        yield Lab(tag_page_size=2)


def serial_aws(lab):
    """One function at a time, no pacing or sleeps: call order is deterministic."""
    return fast_aws(lab.lam, lab.tagging, concurrency=1)


def fail_updates(lab, code, message, *, attach_of=(), detach_of=()):
    """Make UpdateFunctionConfiguration fail with `code` when it attaches a function named in
    `attach_of` or detaches one in `detach_of`; returns the call that ends the failures."""
    def broken(params, model, **_):
        if model.name != "UpdateFunctionConfiguration":
            return
        attaching = config.RESTORE_STATE in params["Environment"]["Variables"]
        if any(name in params["FunctionName"] for name in (attach_of if attaching else detach_of)):
            raise ClientError({"Error": {"Code": code, "Message": message}}, model.name)
    lab.lam.meta.events.register("before-parameter-build.lambda", broken)
    return lambda: lab.lam.meta.events.unregister("before-parameter-build.lambda", broken)


def fleet(lab, n, tags=None):
    return [lab.function(f"svc-{i:02d}", alias=None, tags=tags) for i in range(n)]


def attached(lab, name):
    env = lab.gaps.raw.get_function_configuration(FunctionName=name)["Environment"]["Variables"]
    return config.RESTORE_STATE in env


def test_tag_targets_every_matching_function_across_pages(lab):
    fleet(lab, 5)
    lab.function("other-team", alias=None, tags={"chaos:target": "billing"})
    out = ah.attach(lab.params(**TAG), lab.aws)
    assert out["TargetCount"] == 5
    assert [attached(lab, f"svc-{i:02d}") for i in range(5)] == [True] * 5
    assert not attached(lab, "other-team")


def test_a_tag_selected_experiment_across_runtimes_attaches_all_and_detach_restores_all(lab):
    """A real system mixes languages; attach is all-or-nothing, so one runtime of each language
    the layer serves must pass together, with the layer version the stack publishes."""
    runtimes = ["nodejs22.x", "python3.13", "java21", "dotnet8", "ruby3.4"]
    names = [f"svc-{r.replace('.', '-')}" for r in runtimes]
    for name, runtime, arch in zip(names, runtimes, ["arm64", "x86_64"] * 3):
        lab.function(name, runtime=runtime, alias=None, architecture=arch)
    before = {n: lab.snapshot(n) for n in names}
    assert ah.attach(lab.params(**TAG), lab.aws)["TargetCount"] == len(runtimes)
    assert all(attached(lab, n) for n in names)
    ah.detach({**TAG}, lab.aws)
    assert {n: lab.snapshot(n) for n in names} == before


def test_one_os_only_function_in_a_tag_selection_refuses_the_run_and_changes_nothing(lab):
    good = "svc-node"
    lab.function(good, runtime="nodejs22.x", alias=None)
    lab.function("svc-go", runtime="provided.al2023", alias=None)
    before = lab.snapshot(good)
    with pytest.raises(ah.TargetRefused, match=r"svc-go runs provided.al2023, an OS-only "
                                               r"runtime.*\(nothing was changed\)"):
        ah.attach(lab.params(**TAG), lab.aws)
    assert lab.snapshot(good) == before
    assert "UpdateFunctionConfiguration" not in lab.gaps.operations()


def test_tag_key_without_value_matches_any_value(lab):
    fleet(lab, 2)
    lab.function("other-team", alias=None, tags={"chaos:target": "billing"})
    assert ah.attach(lab.params(TargetTagKey="chaos:target"), lab.aws)["TargetCount"] == 3


def test_no_tagged_function_is_refused_with_the_tag(lab):
    with pytest.raises(ah.TargetNotFound, match=r"no Lambda function in us-east-1 has tag "
                                                r"chaos:target=sample-app"):
        ah.attach(lab.params(**TAG), lab.aws)


@pytest.mark.parametrize("selection,count", [("COUNT(2)", 2), ("COUNT(9)", 5),
                                             ("PERCENT(50)", 2), ("PERCENT(1)", 1),
                                             ("PERCENT(100)", 5)])
def test_selection_picks_that_many_of_the_matches(lab, selection, count):
    fleet(lab, 5)
    out = ah.attach(lab.params(TargetSelection=selection, **TAG), lab.aws)
    assert out["TargetCount"] == count
    assert sum(attached(lab, f"svc-{i:02d}") for i in range(5)) == count


def test_selection_is_stable_so_attach_twice_touches_the_same_functions(lab):
    fleet(lab, 6)
    first = ah.attach(lab.params(TargetSelection="COUNT(2)", **TAG), lab.aws)
    second = ah.attach(lab.params(TargetSelection="COUNT(2)", **TAG), lab.aws)
    assert [t["FunctionName"] for t in first["Targets"]] == \
        [t["FunctionName"] for t in second["Targets"]]
    assert {t["Action"] for t in second["Targets"]} == {"unchanged"}


def test_detach_by_tag_covers_every_attached_match_whatever_the_selection(lab):
    names = [f"svc-{i:02d}" for i in range(4)]
    fleet(lab, 4)
    before = {n: lab.snapshot(n) for n in names}
    ah.attach(lab.params(TargetSelection="COUNT(2)", **TAG), lab.aws)
    out = ah.detach(dict(TargetSelection="COUNT(1)", **TAG), lab.aws)
    assert sorted(t["Action"] for t in out["Targets"]) == ["detached"] * 2 + ["not-attached"] * 2
    assert {n: lab.snapshot(n) for n in names} == before


def test_dry_run_lists_targets_and_exact_changes_and_changes_nothing(lab):
    fleet(lab, 2)
    before = {n: lab.snapshot(n) for n in ("svc-00", "svc-01")}
    out = ah.attach(lab.params(DryRun="true", **TAG), lab.aws)
    assert out["DryRun"] is True
    assert [t["Action"] for t in out["Targets"]] == ["would-attach"] * 2
    assert out["Targets"][0]["SetVariables"][config.LATENCY_MS] == "2000"
    assert out["Targets"][0]["LayersAfter"][-1] == lab.layer
    assert {n: lab.snapshot(n) for n in before} == before
    writes = {"UpdateFunctionConfiguration", "PublishVersion", "UpdateAlias"}
    assert not writes & set(lab.gaps.operations())


def test_a_failure_midway_detaches_the_ones_already_attached_and_names_the_function(lab):
    names = [f"svc-{i:02d}" for i in range(4)]
    fleet(lab, 4)
    before = {n: lab.snapshot(n) for n in names}
    aws = serial_aws(lab)
    fail_updates(lab, "KMSAccessDeniedException", "cannot encrypt variables", attach_of=["svc-02"])
    with pytest.raises(ah.AutomationError, match=r"attach failed, so every function was put back "
                                                 r"\(rolled back: svc-00, svc-01, svc-02\).*"
                                                 r"svc-02.*KMSAccessDeniedException"):
        ah.attach(lab.params(**TAG), aws)
    assert {n: lab.snapshot(n) for n in names} == before
    assert not any("svc-03" in str(p.get("FunctionName")) for op, p in lab.gaps.calls
                   if op == "UpdateFunctionConfiguration")


def test_throttling_and_conflicts_are_retried_with_backoff(lab):
    lab.function("orders", alias=None)
    waits = []
    aws = fast_aws(lab.lam, lab.tagging, backoff_base_s=0.1, sleep=waits.append)
    lab.gaps.fail_at = (3, "throttle")  # GetFunctionConfiguration, GetLayerVersion, Update...
    ah.attach(lab.params(FunctionName="orders"), aws)
    assert attached(lab, "orders")
    assert lab.gaps.operations()[2:4] == ["UpdateFunctionConfiguration"] * 2
    assert len(waits) == 2 and 0 <= waits[0] <= 0.1  # one backoff, then the poll delay (0)
    assert waits[1] == 0


def test_retries_give_up_after_max_attempts_with_the_aws_code(lab):
    lab.function("orders", alias=None)
    aws = fast_aws(lab.lam, lab.tagging, max_attempts=3)

    def always_throttled(params, model, **_):
        if model.name == "GetFunctionConfiguration":
            from botocore.exceptions import ClientError
            raise ClientError({"Error": {"Code": "TooManyRequestsException",
                                         "Message": "Rate exceeded"}}, model.name)
    lab.lam.meta.events.register("before-parameter-build.lambda", always_throttled)
    with pytest.raises(ah.AwsCallFailed, match=r"get_function_configuration\(orders\) failed: "
                                               r"TooManyRequestsException: Rate exceeded"):
        ah.attach(lab.params(FunctionName="orders"), aws)


def test_every_call_of_a_run_goes_through_the_one_rate_limiter(lab):
    fleet(lab, 3)
    aws = ah.Aws(lab.lam, lab.tagging, max_requests_per_second=1000.0, poll_delay_s=0,
                 backoff_base_s=0, sleep=lambda _s: None)
    acquired = []
    original = aws.limiter.acquire
    aws.limiter.acquire = lambda: (acquired.append(1), original())[1]
    ah.attach(lab.params(**TAG), aws)
    tagging_pages = 1  # 3 functions fit one page of 100
    assert len(acquired) == len(lab.gaps.calls) + tagging_pages


def test_attach_refuses_a_run_the_rate_limit_cannot_finish_within_the_step_timeout(lab):
    fleet(lab, 3)
    aws = ah.Aws(lab.lam, lab.tagging, max_requests_per_second=0.02, sleep=lambda _s: None)
    with pytest.raises(ah.TargetRefused, match=r"3 functions need about 600 s at 0.02 calls/s, "
                                               r"more than an aws:executeScript step's 540 s"):
        ah.attach(lab.params(**TAG), aws, time_budget_s=540)
    assert "UpdateFunctionConfiguration" not in lab.gaps.operations()


def test_rollback_that_fails_too_raises_rollback_incomplete_and_a_rerun_detach_finishes(lab):
    names = [f"svc-{i:02d}" for i in range(3)]
    fleet(lab, 3)
    before = {n: lab.snapshot(n) for n in names}
    aws = serial_aws(lab)
    restore = fail_updates(lab, "AccessDeniedException", "denied", attach_of=["svc-01"],
                           detach_of=["svc-00"])
    with pytest.raises(ah.RollbackIncomplete, match=r"svc-01.*rolling back failed for .*svc-00"
                                                    r".*run again with ChaosMode=DISABLED"):
        ah.attach(lab.params(**TAG), aws)
    restore()
    ah.detach(TAG, aws)
    assert {n: lab.snapshot(n) for n in names} == before


def test_one_function_that_cannot_be_detached_does_not_stop_the_others(lab):
    names = [f"svc-{i:02d}" for i in range(4)]
    fleet(lab, 4)
    aws = serial_aws(lab)
    ah.attach(lab.params(**TAG), aws)
    env = lab.gaps.raw.get_function_configuration(FunctionName="svc-00")["Environment"]
    lab.gaps.raw.update_function_configuration(FunctionName="svc-00", Environment={
        "Variables": dict(env["Variables"], **{config.RESTORE_STATE: "{edited"})})
    with pytest.raises(ah.TargetRefused, match=r"detach failed: .*svc-00"):
        ah.detach(TAG, aws)
    assert [n for n in names if attached(lab, n)] == ["svc-00"]


def test_a_rollback_that_fails_for_one_function_still_rolls_back_the_others(lab):
    names = [f"svc-{i:02d}" for i in range(3)]
    fleet(lab, 3)
    before = {n: lab.snapshot(n) for n in names}
    aws = serial_aws(lab)
    restore = fail_updates(lab, "AccessDeniedException", "denied", attach_of=["svc-02"],
                           detach_of=["svc-00"])
    with pytest.raises(ah.RollbackIncomplete, match=r"rolling back failed for [^;]*svc-00"):
        ah.attach(lab.params(**TAG), aws)
    restore()
    assert lab.snapshot("svc-01") == before["svc-01"]
    assert lab.snapshot("svc-02") == before["svc-02"]
