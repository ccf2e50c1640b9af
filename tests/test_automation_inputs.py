"""Parameters arrive typed (SSM) or as strings (FIS documentParameters, CLI); both mean the same."""
import datetime
import json
import re

import pytest

import automation_handler as ah

BASE = {"FunctionName": "orders", "LayerArn":
        "arn:aws:lambda:us-east-1:123456789012:layer:lambda-chaos:3"}


def parse(**values):
    return ah.parse_parameters(dict(BASE, **values))


def test_typed_and_string_parameters_parse_the_same():
    typed = parse(LatencyMilliseconds=2000, PreventExecution=True, MaxTargets=7, DryRun=False,
                  ResponseStatusCode=503, FunctionName=["orders", "billing"])
    strings = parse(LatencyMilliseconds="2000", PreventExecution="true", MaxTargets="7",
                    DryRun="False", ResponseStatusCode="503", FunctionName="orders, billing")
    assert typed == strings
    assert typed.function_names == ("orders", "billing")


def test_absent_and_empty_optional_parameters_mean_the_default():
    absent = ah.parse_parameters(BASE)
    empty = parse(**{p.name: "" for p in ah.PARAMETERS if p.name not in BASE})
    nulls = parse(**{p.name: None for p in ah.PARAMETERS if p.name not in BASE})
    assert absent == empty == nulls
    assert absent.latency_ms == 1000 and absent.max_targets == 50
    assert absent.selection == "ALL" and absent.chaos_mode == "ENABLED"


@pytest.mark.parametrize("name,value,message", [
    ("LatencyMilliseconds", "2s", r"LatencyMilliseconds='2s' is not a whole number"),
    ("LatencyMilliseconds", -1, r"LatencyMilliseconds=-1 is out of range; give 0 to 900000"),
    ("LatencyMilliseconds", True, r"LatencyMilliseconds=True is not a whole number"),
    ("ResponseStatusCode", "700", r"ResponseStatusCode=700 is out of range; give 100 to 599"),
    ("PreventExecution", "maybe", r"PreventExecution='maybe' is not a boolean"),
    ("InvocationPercentage", "150", r"InvocationPercentage='150' does not match"),
    ("FaultType", "timeout", r"FaultType='timeout' is not allowed; use one of latency, error"),
    ("Duration", "10 minutes", r"Duration='10 minutes' does not match"),
    ("Duration", "PT0S", r"Duration='PT0S' is zero; .* leave it empty for no expiry"),
    ("Duration", "P0DT0H", r"Duration='P0DT0H' is zero"),
    ("Duration", "P99999999999D", r"Duration='P99999999999D' is too long"),
    ("Duration", "P3000000D", r"Duration='P3000000D' is too long"),
    ("TargetSelection", "SOME", r"TargetSelection='SOME' does not match"),
    ("MaxTargets", "0", r"MaxTargets=0 is out of range"),
    ("LayerArn", "chaos-layer", r"LayerArn='chaos-layer' does not match"),
])
def test_bad_values_name_the_parameter_value_and_what_is_accepted(name, value, message):
    with pytest.raises(ah.InvalidParameter, match=message):
        parse(**{name: value})


def test_enumerated_values_are_accepted_in_any_case():
    assert parse(FaultType="ERROR", ChaosMode="disabled").fault_type == "error"


def test_unknown_parameter_is_refused_with_the_list_of_accepted_ones():
    with pytest.raises(ah.InvalidParameter, match=r"unknown parameter\(s\) Latency;.*"
                                                  r"LatencyMilliseconds"):
        parse(Latency="100")


def test_targets_must_be_named_or_tagged_but_not_both():
    with pytest.raises(ah.InvalidParameter, match="no target"):
        ah.parse_parameters({"LayerArn": BASE["LayerArn"]})
    with pytest.raises(ah.InvalidParameter, match="not both"):
        parse(TargetTagKey="team")


def test_attach_needs_a_layer_arn_but_detach_does_not():
    with pytest.raises(ah.InvalidParameter, match="LayerArn is required to attach"):
        ah.parse_parameters({"FunctionName": "orders"})
    assert ah.parse_parameters({"FunctionName": "orders", "ChaosMode": "DISABLED"})


def test_duration_becomes_expires_at_now_plus_duration():
    params = parse(Duration="PT1H30M")
    now = datetime.datetime(2026, 1, 31, 12, 0, tzinfo=datetime.timezone.utc)
    req = ah._request(params, now)
    assert req.variables[ah.EXPIRES_AT] == "2026-01-31T13:30:00Z"
    assert ah._request(parse(), now).variables[ah.EXPIRES_AT] is None


def test_experiment_id_ignores_expiry_but_not_the_fault():
    now = datetime.datetime(2026, 1, 31, tzinfo=datetime.timezone.utc)
    later = now + datetime.timedelta(hours=1)
    assert ah._request(parse(), now).experiment_id == ah._request(parse(), later).experiment_id
    assert ah._request(parse(), now).experiment_id != \
        ah._request(parse(LatencyMilliseconds=5), now).experiment_id


def test_fault_variables_follow_the_fault_type_and_clear_the_others():
    req = ah._request(parse(FaultType="response", ResponseStatusCode=503, ResponseBody="down"))
    assert req.variables[ah.RESPONSE_STATUS_CODE] == "503"
    assert req.variables[ah.RESPONSE_BODY] == "down"
    assert req.variables[ah.LATENCY_MS] is None and req.variables[ah.ERROR_TYPE] is None


@pytest.mark.parametrize("name,message", [
    ("arn:aws:lambda:eu-west-1:123456789012:function:f", r"is in eu-west-1, this run is in "
                                                         r"us-east-1"),
    ("arn:aws:lambda:us-east-1:123456789012:function:f:live", r"names a version or alias; .*"
                                                              r"AliasName"),
    ("bad name!", r"not a function name or ARN"),
    ("orders:live", r"'orders:live' names a version or alias; .*AliasName"),
    ("orders:1", r"'orders:1' names a version or alias; .*AliasName"),
])
def test_function_identifiers_are_checked_with_the_fix(name, message):
    with pytest.raises(ah.InvalidParameter, match=message):
        ah._check_identifier(name, "us-east-1")


def test_rate_limiter_spaces_calls_evenly():
    clock = [0.0]
    slept = []

    def sleep(seconds):
        slept.append(round(seconds, 6))
        clock[0] += seconds

    limiter = ah.RateLimiter(4.0, clock=lambda: clock[0], sleep=sleep)
    for _ in range(5):
        limiter.acquire()
    assert slept == [0.25, 0.25, 0.25, 0.25]
    with pytest.raises(ah.InvalidParameter, match="give a number > 0"):
        ah.RateLimiter(0)


def test_cli_prints_json_errors_on_stderr_and_exits_nonzero(capsys):
    assert ah.main(["attach", "--FunctionName", "orders"], aws=object()) == 1
    assert "LayerArn is required" in capsys.readouterr().err


def test_step_output_of_a_large_run_is_cut_to_fit_ssm_with_one_line_per_function():
    targets = [{"FunctionName": f"fn-{i}", "Action": "attached", "SetVariables":
                {"CHAOS_RESPONSE_BODY": "x" * 200}} for i in range(1000)]
    result = {"Mode": "attach", "TargetCount": 1000, "Targets": targets, "Summary": "s"}
    fitted = ah.fit_output(result, limit=80_000)
    assert len(json.dumps(fitted)) <= 80_000 and fitted["Truncated"] is True
    assert fitted["Targets"][0] == {"FunctionName": "fn-0", "Action": "attached"}
    assert fitted["TargetCount"] == 1000 and "step log" in fitted["Summary"]
    small = dict(result, Targets=targets[:2], TargetCount=2)
    assert ah.fit_output(small) is small


@pytest.mark.parametrize("region,message", [
    (None, r"no AWS region: pass --region or set AWS_REGION"),
    ("not a region!", r"cannot create the AWS clients: .*not a region!"),
])
def test_cli_without_a_usable_region_says_so_instead_of_a_traceback(monkeypatch, capsys,
                                                                    region, message):
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    argv = ["preview", "--FunctionName", "orders"] + (["--region", region] if region else [])
    assert ah.main(argv) == 1
    assert re.search(message, capsys.readouterr().err)
