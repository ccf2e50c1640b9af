"""Attach and detach in batches: `plan` sizes them, `apply` runs one, no step over its budget.

An `aws:executeScript` step may run 600 s, so the documents run a Plan step and then one step
per batch (aws:loop). These tests drive the two entry points as the steps do, against moto.
"""
import datetime

import pytest
from moto import mock_aws

import automation_handler as ah
from automation_fixtures import Lab, publish_layer
from chaos_layer import config
from test_automation_targets import TAG, fail_updates, fleet

NOW = datetime.datetime(2026, 12, 2, 12, 0, tzinfo=datetime.timezone.utc)


@pytest.fixture
def lab(monkeypatch):
    # A 10 s step budget at 5 calls/s and 4 calls per function: batches of int(0.8·10/0.8) = 10.
    monkeypatch.setattr(ah, "STEP_BUDGET_S", 10.0)
    with mock_aws():
        yield Lab()


def run_batches(lab, params, planned):
    """What the document's loop does: one `apply` per batch id, in order."""
    return [ah.apply(dict(params, Batch=batch, Digest=planned["Digest"],
                          ExpiresAt=planned["ExpiresAt"], LayerArn=planned["LayerArn"]),
                     aws=lab.aws, now=NOW)
            for batch in planned["Batches"]]


def variables(lab, name):
    return lab.gaps.raw.get_function_configuration(FunctionName=name)["Environment"]["Variables"]


def test_plan_splits_the_targets_into_batches_that_each_fit_one_step(lab):
    fleet(lab, 25)
    planned = ah.plan(lab.params(**TAG), aws=lab.aws, now=NOW)
    assert planned["Batches"] == ["1/3", "2/3", "3/3"]
    assert planned["TargetCount"] == 25
    assert planned["Summary"] == ("attach 25 function(s) in 3 batch(es) of at most 10, about 20 s "
                                  "at 5 calls/s")
    assert "UpdateFunctionConfiguration" not in lab.gaps.operations()  # a plan changes nothing


def test_every_function_is_in_exactly_one_batch_and_detach_puts_every_one_back(lab):
    names = [f"svc-{i:02d}" for i in range(25)]
    fleet(lab, 25)
    before = {name: lab.snapshot(name) for name in names}
    planned = ah.plan(lab.params(**TAG), aws=lab.aws, now=NOW)
    batches = run_batches(lab, lab.params(**TAG), planned)
    touched = [t["FunctionName"] for out in batches for t in out["Targets"]]
    assert sorted(touched) == names  # each once, none left out
    assert all(len(out["Targets"]) <= 10 for out in batches)
    assert all(config.RESTORE_STATE in variables(lab, name) for name in names)

    detach = lab.params(**TAG, ChaosMode="DISABLED", OnlyThisExperiment="true")
    undo = ah.plan(detach, aws=lab.aws, now=NOW)
    run_batches(lab, detach, undo)
    assert {name: lab.snapshot(name) for name in names} == before


def test_every_batch_expires_at_the_one_time_the_plan_fixed(lab):
    fleet(lab, 25)
    planned = ah.plan(lab.params(**TAG, Duration="PT10M"), aws=lab.aws, now=NOW)
    # 25 functions · 4 calls at 5 calls/s = 20 s of attaching, then the 10 minutes.
    assert planned["ExpiresAt"] == "2026-12-02T12:10:20Z"
    run_batches(lab, lab.params(**TAG, Duration="PT10M"), planned)
    expiries = {variables(lab, f"svc-{i:02d}")[config.EXPIRES_AT] for i in range(25)}
    assert expiries == {"2026-12-02T12:10:20Z"}


def test_a_batch_refuses_when_the_functions_selected_changed_since_the_plan(lab):
    fleet(lab, 12)
    planned = ah.plan(lab.params(**TAG), aws=lab.aws, now=NOW)
    lab.function("newcomer", alias=None)  # tagged chaos:target=sample-app after the plan
    with pytest.raises(ah.TargetRefused, match=r"the functions selected changed since the Plan "
                                               r"step \(13 now\): batch 1/2 changed nothing, and "
                                               r"the batches before it are rolled back"):
        run_batches(lab, lab.params(**TAG), planned)
    assert "UpdateFunctionConfiguration" not in lab.gaps.operations()


def test_a_later_batch_that_fails_leaves_the_earlier_attached_until_the_rollback_detaches_them(
        lab):
    names = [f"svc-{i:02d}" for i in range(25)]
    fleet(lab, 25)
    before = {name: lab.snapshot(name) for name in names}
    planned = ah.plan(lab.params(**TAG), aws=lab.aws, now=NOW)
    last = names[2::3]  # batch 3 of 3: the attach deals the sorted list out evenly
    fail_updates(lab, "ServiceException", "Lambda is down", attach_of=last[:1])
    with pytest.raises(ah.AutomationError, match="attach failed, so every function was put back"):
        run_batches(lab, lab.params(**TAG), planned)
    assert any(config.RESTORE_STATE in variables(lab, n) for n in names if n not in last)

    # The document's RollBack: a detach plan of this experiment, then its batches.
    clean_up = dict(lab.params(**TAG), ChaosMode="DISABLED", LayerArn=planned["LayerArn"],
                    OnlyThisExperiment=str(planned["CleanUpOnlyThisExperiment"]).lower())
    run_batches(lab, clean_up, ah.plan(clean_up, aws=lab.aws, now=NOW))
    assert {name: lab.snapshot(name) for name in names} == before


def test_a_detach_plan_covers_every_match_not_only_the_selection(lab):
    fleet(lab, 25)
    attach = lab.params(**TAG, TargetSelection="COUNT(5)")
    assert ah.plan(attach, aws=lab.aws, now=NOW)["TargetCount"] == 5
    detach = ah.plan(dict(attach, ChaosMode="DISABLED"), aws=lab.aws, now=NOW)
    assert detach["TargetCount"] == 25 and len(detach["Batches"]) == 3
    assert detach["Mode"] == "plan-detach" and detach["CleanUpOnlyThisExperiment"] is False


def test_nothing_to_detach_plans_no_batch(lab):
    planned = ah.plan(lab.params(**TAG, ChaosMode="DISABLED"), aws=lab.aws, now=NOW)
    assert planned["Batches"] == [] and planned["TargetCount"] == 0


def test_plan_refuses_more_batches_than_an_aws_loop_runs_before_anything_changes(lab, monkeypatch):
    monkeypatch.setattr(ah, "MAX_BATCHES", 2)
    fleet(lab, 25)
    with pytest.raises(ah.TargetRefused, match=r"25 functions need 3 batches of 10 at "
                                               r"RequestsPerSecond=5, more than the 2 an aws:loop "
                                               r"runs; raise RequestsPerSecond \(at most 10\)"):
        ah.plan(lab.params(**TAG), aws=lab.aws, now=NOW)


def test_a_higher_rate_makes_bigger_batches(lab):
    fleet(lab, 25)
    planned = ah.plan(lab.params(**TAG, RequestsPerSecond="10"), aws=lab.aws, now=NOW)
    assert planned["Batches"] == ["1/2", "2/2"]  # int(0.8·10/0.4) = 20 a batch


def test_max_targets_guards_the_plan_with_the_ceiling_in_the_message(lab):
    fleet(lab, 12)
    with pytest.raises(ah.TargetRefused, match=r"12 functions selected, more than MaxTargets=10; "
                                               r".*raise MaxTargets \(at most 10000\)"):
        ah.plan(lab.params(**TAG, MaxTargets="10"), aws=lab.aws, now=NOW)
    assert ah.parse_parameters(lab.params(**TAG, MaxTargets="10000")).max_targets == 10000
    with pytest.raises(ah.InvalidParameter, match=r"MaxTargets must be a whole number from 1 to "
                                                  r"10000, got '10001'"):
        ah.parse_parameters(lab.params(**TAG, MaxTargets="10001"))


def test_a_layer_name_means_its_newest_version_in_the_functions_account_and_region(lab):
    fleet(lab, 2)
    newest = publish_layer(lab.gaps.raw, "lambda-chaos")  # version 2 of lab.layer's layer
    planned = ah.plan(dict(lab.params(**TAG), LayerArn="lambda-chaos"), aws=lab.aws, now=NOW)
    assert planned["LayerArn"] == newest and newest.endswith(":2")
    with pytest.raises(ah.TargetNotFound, match=r"layer 'no-such-layer' has no version in "
                                                r"us-east-1; deploy the target stack"):
        ah.plan(dict(lab.params(**TAG), LayerArn="no-such-layer"), aws=lab.aws, now=NOW)


def test_a_bad_batch_id_is_refused_in_words(lab):
    with pytest.raises(ah.InvalidParameter, match=r"Batch must be i/K with 1 <= i <= K, as the "
                                                  r"Plan step writes it \(e.g. 2/5\), got '4/3'"):
        ah.apply(dict(lab.params(**TAG), Batch="4/3"), aws=lab.aws)
