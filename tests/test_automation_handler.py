"""attach / detach of named functions: exact inverses, idempotent, keeping others' changes."""
import json

import pytest
from moto import mock_aws

import automation_handler as ah
from automation_fixtures import OWN_WRAPPER, Lab, publish_layer
from chaos_layer import config


@pytest.fixture
def lab():
    with mock_aws():
        yield Lab()


def env_of(lab, name):
    return lab.gaps.raw.get_function_configuration(FunctionName=name)["Environment"]["Variables"]


def lose_first_answer(lab, operation):
    """Drop the connection right after Lambda applied the first `operation` call, so the
    caller sees an error although the change happened; returns the list the drop is noted in.
    Registered after MotoGaps' own after-call hook, so the gaps have recorded the call."""
    from botocore.exceptions import ConnectionClosedError
    lost = []

    def drop_the_answer(model, **_):
        if model.name == operation and not lost:
            lost.append(model.name)
            raise ConnectionClosedError(endpoint_url="https://lambda.us-east-1.amazonaws.com")

    lab.lam.meta.events.register("after-call.lambda", drop_the_answer)
    return lost


def test_attach_adds_layer_last_sets_fault_and_chains_existing_wrapper(lab):
    lab.function("orders")
    result = ah.attach(lab.params(FunctionName="orders"), lab.aws)
    after = lab.gaps.raw.get_function_configuration(FunctionName="orders")
    assert [l["Arn"] for l in after["Layers"]] == lab.other_layers[:2] + [lab.layer]
    env = after["Environment"]["Variables"]
    assert env[config.EXEC_WRAPPER] == config.WRAPPER_PATH
    assert env[config.ORIGINAL_EXEC_WRAPPER] == OWN_WRAPPER
    assert env[config.FAULT_TYPE] == "latency" and env[config.LATENCY_MS] == "2000"
    assert env[config.INVOCATION_PERCENTAGE] == "50"
    assert env["TABLE_NAME"] == "orders"
    assert result["Targets"][0]["Action"] == "attached"
    assert config.parse_utc_time(env[config.EXPIRES_AT]) > config.parse_utc_time(
        "2020-01-01T00:00:00Z")


def test_detach_restores_existing_exec_wrapper(lab):
    lab.function("orders")
    before = lab.snapshot("orders")
    ah.attach(lab.params(FunctionName="orders"), lab.aws)
    ah.detach(lab.params(FunctionName="orders"), lab.aws)
    assert env_of(lab, "orders")[config.EXEC_WRAPPER] == OWN_WRAPPER
    assert lab.snapshot("orders") == before


def test_detach_of_attach_equals_original_with_alias_and_weighted_routing(lab):
    lab.function("orders")
    before = lab.snapshot("orders")
    out = ah.attach(lab.params(FunctionName="orders", AliasName="live"), lab.aws)
    alias = lab.gaps.raw.get_alias(FunctionName="orders", Name="live")
    assert alias["FunctionVersion"] == out["Targets"][0]["Alias"]["Version"] != "2"
    assert not (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights")
    published = lab.gaps.raw.get_function_configuration(FunctionName="orders",
                                                        Qualifier=alias["FunctionVersion"])
    assert published["Environment"]["Variables"][config.FAULT_TYPE] == "latency"
    ah.detach(lab.params(FunctionName="orders", AliasName="live"), lab.aws)
    assert lab.snapshot("orders") == before


def test_attach_twice_changes_nothing_the_second_time(lab):
    lab.function("orders")
    ah.attach(lab.params(FunctionName="orders", AliasName="live"), lab.aws)
    once = lab.snapshot("orders")
    calls = len(lab.gaps.calls)
    second = ah.attach(lab.params(FunctionName="orders", AliasName="live"), lab.aws)
    assert lab.snapshot("orders") == once
    assert second["Targets"][0]["Action"] == "unchanged"
    assert "UpdateFunctionConfiguration" not in lab.gaps.operations()[calls:]


def test_detach_of_unattached_function_succeeds_and_changes_nothing(lab):
    lab.function("orders")
    before = lab.snapshot("orders")
    out = ah.detach({"FunctionName": "orders"}, lab.aws)
    assert out["Targets"][0]["Action"] == "not-attached"
    assert lab.snapshot("orders") == before
    assert "UpdateFunctionConfiguration" not in lab.gaps.operations()


def test_detach_keeps_variables_and_layers_others_added_during_the_experiment(lab):
    lab.function("orders")
    ah.attach(lab.params(FunctionName="orders"), lab.aws)
    current = lab.gaps.raw.get_function_configuration(FunctionName="orders")
    env = dict(current["Environment"]["Variables"], FEATURE_FLAG="on", LOG_LEVEL="DEBUG")
    layers = [l["Arn"] for l in current["Layers"]] + [lab.other_layers[2]]
    lab.gaps.raw.update_function_configuration(FunctionName="orders", Layers=layers,
                                               Environment={"Variables": env})
    lab.gaps.touch("orders")
    ah.detach({"FunctionName": "orders"}, lab.aws)
    after = lab.gaps.raw.get_function_configuration(FunctionName="orders")
    assert [l["Arn"] for l in after["Layers"]] == lab.other_layers[:3]
    env = after["Environment"]["Variables"]
    assert env["FEATURE_FLAG"] == "on" and env["LOG_LEVEL"] == "DEBUG"
    assert not [n for n in env if n.startswith("CHAOS_")]
    assert env[config.EXEC_WRAPPER] == OWN_WRAPPER


def test_detach_keeps_an_exec_wrapper_someone_else_set_during_the_experiment(lab):
    lab.function("orders")
    ah.attach(lab.params(FunctionName="orders"), lab.aws)
    env = dict(env_of(lab, "orders"), AWS_LAMBDA_EXEC_WRAPPER="/opt/new-apm")
    lab.gaps.raw.update_function_configuration(FunctionName="orders",
                                               Environment={"Variables": env})
    ah.detach({"FunctionName": "orders"}, lab.aws)
    assert env_of(lab, "orders")[config.EXEC_WRAPPER] == "/opt/new-apm"


def test_attach_rereads_and_keeps_a_concurrent_edit_instead_of_overwriting_it(lab):
    lab.function("orders")

    def someone_edits(fn):
        env = dict(env_of(lab, fn), DEPLOYED_BY="pipeline")
        lab.gaps.raw.update_function_configuration(FunctionName=fn,
                                                   Environment={"Variables": env})
        lab.gaps.touch(fn)

    lab.gaps.before_update = someone_edits
    ah.attach(lab.params(FunctionName="orders"), lab.aws)
    ops = lab.gaps.operations()
    assert ops.count("UpdateFunctionConfiguration") == 2  # the first was refused (412)
    env = env_of(lab, "orders")
    assert env["DEPLOYED_BY"] == "pipeline" and env[config.FAULT_TYPE] == "latency"
    ah.detach({"FunctionName": "orders"}, lab.aws)
    assert env_of(lab, "orders")["DEPLOYED_BY"] == "pipeline"


def test_attach_records_what_it_replaced_in_the_same_update(lab):
    lab.function("orders", env={"CHAOS_LATENCY_MS": "5"})
    ah.attach(lab.params(FunctionName="orders", AliasName="live"), lab.aws)
    updates = [p for op, p in lab.gaps.calls if op == "UpdateFunctionConfiguration"]
    assert len(updates) == 1
    record = json.loads(updates[0]["Environment"]["Variables"][config.RESTORE_STATE])
    assert record["env"][config.LATENCY_MS] == "5"
    assert record["env"][config.EXEC_WRAPPER] == OWN_WRAPPER
    assert record["env"][config.FAULT_TYPE] is None
    assert record["alias"] == {"name": "live", "version": "2", "weights": {"1": 0.1},
                               "description": "production traffic"}
    assert updates[0]["RevisionId"]


def test_attach_of_a_function_without_wrapper_or_environment_is_reversible(lab):
    lab.function("bare", env={}, wrapper=None, layers=[], alias=None)
    before = lab.snapshot("bare")
    ah.attach(lab.params(FunctionName="bare"), lab.aws)
    assert config.ORIGINAL_EXEC_WRAPPER not in env_of(lab, "bare")
    ah.detach({"FunctionName": "bare"}, lab.aws)
    assert lab.snapshot("bare") == before


def test_attach_waits_for_last_update_status_with_the_waiter(lab):
    lab.gaps.in_progress_polls = 2
    lab.function("orders")
    calls = len(lab.gaps.calls)
    ah.attach(lab.params(FunctionName="orders"), lab.aws)
    ops = lab.gaps.operations()[calls:]
    assert ops == ["GetFunctionConfiguration", "GetLayerVersion", "UpdateFunctionConfiguration",
                   "GetFunction", "GetFunction", "GetFunction"]


def test_detach_leaves_an_alias_someone_else_moved_during_the_experiment(lab):
    lab.function("orders")
    ah.attach(lab.params(FunctionName="orders", AliasName="live"), lab.aws)
    lab.gaps.raw.update_alias(FunctionName="orders", Name="live", FunctionVersion="1")
    out = ah.detach({"FunctionName": "orders"}, lab.aws)
    assert "moved by someone else" in out["Targets"][0]["Alias"]["Note"]
    assert lab.gaps.raw.get_alias(FunctionName="orders", Name="live")["FunctionVersion"] == "1"
    env = env_of(lab, "orders")
    assert config.RESTORE_STATE not in env and env[config.EXEC_WRAPPER] == OWN_WRAPPER


def test_attach_with_alias_marks_the_alias_and_detach_restores_its_description(lab):
    lab.function("orders")
    out = ah.attach(lab.params(FunctionName="orders", AliasName="live"), lab.aws)
    alias = lab.gaps.raw.get_alias(FunctionName="orders", Name="live")
    assert alias["Description"] == (f"lambda-chaos {out['ExperimentId']} version "
                                    f"{alias['FunctionVersion']}")
    ah.detach({"FunctionName": "orders"}, lab.aws)
    assert lab.gaps.raw.get_alias(FunctionName="orders",
                                  Name="live")["Description"] == "production traffic"


def test_cli_attach_and_detach_print_json_reports(lab, capsys):
    lab.function("orders")
    before = lab.snapshot("orders")
    args = ["--FunctionName", "orders", "--LayerArn", lab.layer, "--FaultType", "error",
            "--PreventExecution", "true"]
    assert ah.main(["attach"] + args, aws=lab.aws) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["Targets"][0]["SetVariables"][config.PREVENT_EXECUTION] == "true"
    assert ah.main(["preview", "--FunctionName", "orders", "--ChaosMode", "DISABLED"],
                   aws=lab.aws) == 0
    assert json.loads(capsys.readouterr().out)["Targets"][0]["Action"] == "would-detach"
    assert ah.main(["detach"] + args, aws=lab.aws) == 0
    assert json.loads(capsys.readouterr().out)["Targets"][0]["Action"] == "detached"
    assert lab.snapshot("orders") == before


def test_detach_keeps_the_fault_version_when_another_alias_now_uses_it(lab):
    lab.function("orders")
    out = ah.attach(lab.params(FunctionName="orders", AliasName="live"), lab.aws)
    version = out["Targets"][0]["Alias"]["Version"]
    lab.gaps.raw.create_alias(FunctionName="orders", Name="canary", FunctionVersion=version)
    detached = ah.detach({"FunctionName": "orders"}, lab.aws)
    assert "alias(es) canary now use it" in detached["Targets"][0]["Alias"]["Note"]
    assert lab.gaps.raw.get_alias(FunctionName="orders", Name="live")["FunctionVersion"] == "2"


def test_detach_reports_a_function_that_does_not_exist_and_detaches_the_others(lab):
    lab.function("orders")
    ah.attach(lab.params(FunctionName="orders"), lab.aws)
    out = ah.detach({"FunctionName": "orders,ordrs"}, lab.aws)
    assert sorted((t["FunctionName"], t["Action"]) for t in out["Targets"]) == [
        ("orders", "detached"), ("ordrs", "not-found")]


def test_a_concurrent_edit_that_fills_the_layers_is_refused_on_replan_and_kept(lab):
    lab.function("orders", layers=lab.other_layers, alias=None)
    fifth = publish_layer(lab.gaps.raw, "fifth")

    def someone_adds_a_layer(fn):
        current = lab.gaps.raw.get_function_configuration(FunctionName=fn)
        layers = [l["Arn"] for l in current["Layers"]] + [fifth]
        lab.gaps.raw.update_function_configuration(FunctionName=fn, Layers=layers)
        lab.gaps.touch(fn)

    lab.gaps.before_update = someone_adds_a_layer
    with pytest.raises(ah.AutomationError, match=r"orders already has 5 layers"):
        ah.attach(lab.params(FunctionName="orders"), lab.aws)
    after = lab.snapshot("orders")
    assert after["Layers"] == lab.other_layers + [fifth]
    assert not [n for n in after["Environment"] if n.startswith("CHAOS_")]


def test_attach_whose_update_applied_but_whose_answer_was_lost_still_moves_the_alias(lab):
    """A connection dropped after Lambda applied the update: the retry is refused (stale
    RevisionId), the re-read shows the function already in this experiment, and attach must
    finish (alias included) instead of failing on the record it never re-read."""
    lab.gaps.in_progress_polls = 0  # moto's "in progress" only ends when polled; AWS's ends
    lab.function("orders")
    before = lab.snapshot("orders")
    lost = lose_first_answer(lab, "UpdateFunctionConfiguration")
    out = ah.attach(lab.params(FunctionName="orders", AliasName="live"), lab.aws)
    assert lost and out["Targets"][0]["Action"] == "attached"
    assert out["Targets"][0]["Alias"]["Changed"] is True
    alias = lab.gaps.raw.get_alias(FunctionName="orders", Name="live")
    assert alias["FunctionVersion"] == out["Targets"][0]["Alias"]["Version"] != "2"
    ah.detach({"FunctionName": "orders"}, lab.aws)
    assert lab.snapshot("orders") == before


def test_dry_run_with_alias_shows_the_alias_move_and_its_restore(lab):
    lab.function("orders")
    out = ah.attach(lab.params(FunctionName="orders", AliasName="live", DryRun=True), lab.aws)
    alias = out["Targets"][0]["Alias"]
    assert (alias["Name"], alias["FromVersion"], alias["FromWeights"]) == ("live", "2", {"1": 0.1})
    assert lab.gaps.raw.get_alias(FunctionName="orders", Name="live")["FunctionVersion"] == "2"
    ah.attach(lab.params(FunctionName="orders", AliasName="live"), lab.aws)
    out = ah.detach({"FunctionName": "orders", "DryRun": "true"}, lab.aws)
    assert out["Targets"][0]["Action"] == "would-detach"
    alias = out["Targets"][0]["Alias"]
    assert (alias["Name"], alias["Version"], alias["Weights"]) == ("live", "2", {"1": 0.1})


def test_detach_whose_version_delete_applied_but_whose_answer_was_lost_still_finishes(lab):
    """The retried DeleteFunction finds the version gone (404): that is done, not a failure
    that would leave the function attached until someone runs the detach again."""
    lab.gaps.in_progress_polls = 0
    lab.function("orders")
    before = lab.snapshot("orders")
    ah.attach(lab.params(FunctionName="orders", AliasName="live"), lab.aws)
    lost = lose_first_answer(lab, "DeleteFunction")
    out = ah.detach({"FunctionName": "orders"}, lab.aws)
    assert lost and out["Targets"][0]["Action"] == "detached"
    assert lab.snapshot("orders") == before


@pytest.mark.parametrize("lost_during", ["attach", "detach"])
def test_an_alias_update_applied_but_whose_answer_was_lost_counts_as_done(lab, lost_during):
    """The retried UpdateAlias is refused (stale RevisionId); the re-read shows the alias
    where we pointed it, so the run goes on instead of failing (and, for attach, rolling
    back; for the experiment's one detach, leaving the function attached)."""
    lab.gaps.in_progress_polls = 0
    lab.function("orders")
    before = lab.snapshot("orders")
    if lost_during == "attach":
        lost = lose_first_answer(lab, "UpdateAlias")
    out = ah.attach(lab.params(FunctionName="orders", AliasName="live"), lab.aws)
    assert out["Targets"][0]["Alias"]["Changed"] is True
    if lost_during == "detach":
        lost = lose_first_answer(lab, "UpdateAlias")
    out = ah.detach({"FunctionName": "orders"}, lab.aws)
    assert lost and out["Targets"][0]["Action"] == "detached"
    assert lab.snapshot("orders") == before


def test_detach_whose_update_applied_but_whose_answer_was_lost_reports_the_detach(lab):
    lab.gaps.in_progress_polls = 0
    lab.function("orders", alias=None)
    before = lab.snapshot("orders")
    ah.attach(lab.params(FunctionName="orders"), lab.aws)
    lost = lose_first_answer(lab, "UpdateFunctionConfiguration")
    out = ah.detach({"FunctionName": "orders"}, lab.aws)
    assert lost and out["Targets"][0]["Action"] == "detached"
    assert out["Targets"][0]["LayersAfter"] == lab.other_layers[:2]
    assert config.FAULT_TYPE in out["Targets"][0]["RemovedVariables"]
    assert lab.snapshot("orders") == before


def test_detach_restores_an_alias_whose_description_someone_edited_and_keeps_the_edit(lab):
    lab.function("orders")
    ah.attach(lab.params(FunctionName="orders", AliasName="live"), lab.aws)
    lab.gaps.raw.update_alias(FunctionName="orders", Name="live", Description="owner: team-a")
    out = ah.detach({"FunctionName": "orders"}, lab.aws)
    assert out["Targets"][0]["Alias"]["Changed"] is True
    alias = lab.gaps.raw.get_alias(FunctionName="orders", Name="live")
    assert alias["FunctionVersion"] == "2"
    assert alias["RoutingConfig"]["AdditionalVersionWeights"] == {"1": 0.1}
    assert alias["Description"] == "owner: team-a"
    assert sorted(v["Version"] for v in lab.gaps.raw.list_versions_by_function(
        FunctionName="orders")["Versions"]) == ["$LATEST", "1", "2"]
