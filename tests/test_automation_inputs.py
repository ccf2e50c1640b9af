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


LAYER_EXAMPLE = "arn:aws:lambda:us-east-1:123456789012:layer:lambda-chaos:3"


@pytest.mark.parametrize("name,value,message", [
    ("LatencyMilliseconds", "2s",
     "LatencyMilliseconds must be a whole number from 0 to 900000, got '2s'"),
    ("LatencyMilliseconds", -1, "LatencyMilliseconds must be a whole number from 0 to 900000, "
                                "got -1"),
    ("LatencyMilliseconds", True, "LatencyMilliseconds must be a whole number from 0 to 900000, "
                                  "got True"),
    ("ResponseStatusCode", "700", "ResponseStatusCode must be a whole number from 100 to 599, "
                                  "got '700'"),
    ("PreventExecution", "maybe", "PreventExecution must be true or false, got 'maybe'"),
    ("InvocationPercentage", "150", "InvocationPercentage must be a number from 0 to 100 "
                                    "(decimals allowed), got '150'"),
    ("InvocationPercentage", "-5", "InvocationPercentage must be a number from 0 to 100 "
                                   "(decimals allowed), got '-5'"),
    ("FaultType", "timeout", "FaultType must be one of latency, error, response, got 'timeout'"),
    ("Duration", "10m", "Duration must be an ISO-8601 duration of days, hours, minutes and "
                        "seconds, longer than zero, e.g. PT10M, PT1H30M or P1D (not weeks, "
                        "months or years; empty: no expiry), got '10m'; did you mean PT10M?"),
    ("Duration", "10 minutes", r"Duration must be an ISO-8601 duration .*, got '10 minutes'; "
                               r"did you mean PT10M\?"),
    ("Duration", "pt1h", r"got 'pt1h'; did you mean PT1H\?"),
    ("Duration", "P1W", r"Duration must be .*\(not weeks, months or years; empty: no expiry\), "
                        r"got 'P1W'$"),
    ("Duration", "PT0S", "Duration='PT0S' is zero; give e.g. PT10M, or leave it empty for no "
                         "expiry"),
    ("Duration", "P0DT0H", "Duration='P0DT0H' is zero"),
    ("Duration", "P99999999999D", "Duration='P99999999999D' is too long"),
    ("Duration", "P3000000D", "Duration='P3000000D' is too long"),
    ("TargetSelection", "PERCENT(200)", "TargetSelection must be ALL, COUNT(n) with n a whole "
                                        "number from 1, or PERCENT(n) with n a whole number from "
                                        "1 to 100, e.g. PERCENT(50), got 'PERCENT(200)'"),
    ("TargetSelection", "SOME", r"TargetSelection must be ALL, COUNT\(n\).*, got 'SOME'"),
    ("MaxTargets", "0", "MaxTargets must be a whole number from 1 to 10000, got '0'"),
    ("LayerArn", "arn:aws:lambda:us-east-1:123456789012:layer:chaos",
     "LayerArn must be a layer version ARN, arn:aws:lambda:REGION:ACCOUNT:layer:NAME:VERSION, e.g. "
     "arn:aws:lambda:us-east-1:123456789012:layer:lambda-chaos:3 (the stack output LayerArn), or a "
     "layer name such as lambda-chaos-layer (its newest version in the function's own account and "
     "region), got 'arn:aws:lambda:us-east-1:123456789012:layer:chaos'"),
    ("LayerArn", LAYER_EXAMPLE.rsplit(":", 1)[0], r"LayerArn must be a layer version ARN.*, got "
                                                  r"'arn:aws:lambda:.*:layer:lambda-chaos'"),
    ("AliasName", "42", r"AliasName must be an alias name: 1 to 128 letters, digits, - or _, not "
                        r"only digits \(e.g. live\), got '42'"),
    ("FunctionName", "bad name!", r"FunctionName must be function names or ARNs separated by "
                                  r"commas .*, got 'bad name!'"),
    ("FunctionName", "x" * 65, r"FunctionName must be a function name \(1 to 64 letters, digits, "
                               r"- or _\) or a function ARN, got 'x{65}'"),
    ("FunctionName", "arn:aws:s3:::bucket", r"FunctionName must be a function name or a function "
                                            r"ARN, arn:aws:lambda:REGION:ACCOUNT:function:NAME, "
                                            r"got 'arn:aws:s3:::bucket'"),
])
def test_bad_values_name_the_parameter_what_is_accepted_in_words_and_the_value(name, value,
                                                                              message):
    with pytest.raises(ah.InvalidParameter) as refused:
        parse(**{name: value})
    assert re.search(message if "\\" in message or "$" in message or ".*" in message
                     else re.escape(message), str(refused.value)), str(refused.value)


REGEX_SIGNS = ("^", "$", "\\", "(?", "[", "]{", "|")


@pytest.mark.parametrize("parameter", [p for p in ah.PARAMETERS if p.allowed_pattern])
def test_a_refused_pattern_is_explained_in_words_never_as_the_regular_expression(parameter):
    bad = "x\ny" if parameter.name != "ResponseBody" else "x" * 2049
    if re.match(parameter.allowed_pattern, bad):
        bad = "\n" * 2000
    with pytest.raises(ah.InvalidParameter) as refused:
        parse(**{parameter.name: bad})
    message = str(refused.value)
    assert parameter.accepts and message.startswith(f"{parameter.name} must be "
                                                    f"{parameter.accepts}, got ")
    words = message.rsplit(", got ", 1)[0]
    assert parameter.allowed_pattern not in message
    assert not any(sign in words for sign in REGEX_SIGNS), message


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
    ("bad name!", r"FunctionName must be a function name \(1 to 64 letters, digits, - or _\) or "
                  r"a function ARN, got 'bad name!'"),
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
    with pytest.raises(ah.InvalidParameter, match="--max-requests-per-second must be a number "
                                                  "above 0, got 0"):
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
    (None, r"no AWS region: pass --region or set AWS_REGION \(e.g. us-east-1\)"),
    ("not a region!", r"cannot create the AWS clients: .*not a region!.*; check --region \(a "
                      r"region name such as us-east-1\)"),
])
def test_cli_without_a_usable_region_says_so_instead_of_a_traceback(monkeypatch, capsys,
                                                                    region, message):
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    argv = ["preview", "--FunctionName", "orders", "--ChaosMode", "DISABLED"] + (
        ["--region", region] if region else [])
    assert ah.main(argv) == 1
    assert re.search(message, capsys.readouterr().err)


def _no_region(monkeypatch):
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")


def test_cli_preview_without_layer_arn_says_what_preview_needs_it_for(monkeypatch, capsys):
    _no_region(monkeypatch)
    assert ah.main(["preview", "--FunctionName", "orders"]) == 1
    err = capsys.readouterr().err
    assert err == ("error: a preview of attach needs LayerArn: it reads that layer version to "
                   "check each function's runtime and architecture against it, as attach "
                   f"would; give the layer's version ARN, e.g. {LAYER_EXAMPLE} (the stack "
                   "output LayerArn), or ChaosMode=DISABLED to preview a detach\n")


def test_a_dry_run_attach_without_layer_arn_gets_the_preview_message():
    with pytest.raises(ah.InvalidParameter, match="a preview of attach needs LayerArn"):
        ah.handler({"FunctionName": "orders", "DryRun": True})


@pytest.mark.parametrize("argv,message", [
    (["attach", "--FunctionName", "orders", "--LayerArn", LAYER_EXAMPLE,
      "--InvocationPercentage", "150"],
     "error: InvocationPercentage must be a number from 0 to 100 (decimals allowed), got '150'\n"),
    (["preview", "--FunctionName", "orders:live", "--ChaosMode", "DISABLED"],
     "error: FunctionName 'orders:live' names a version or alias; give the function name and "
     "put the alias in AliasName\n"),
    (["detach", "--FunctionName", "orders", "--Duration", "10m"],
     "error: Duration must be an ISO-8601 duration of days, hours, minutes and seconds, "
     "longer than zero, e.g. PT10M, PT1H30M or P1D (not weeks, months or years; empty: no "
     "expiry), got '10m'; did you mean PT10M?\n"),
])
def test_cli_reports_a_bad_parameter_before_asking_for_a_region(monkeypatch, capsys, argv,
                                                                message):
    _no_region(monkeypatch)
    assert ah.main(argv) == 1
    assert capsys.readouterr().err == message


def test_cli_attach_refuses_a_chaos_mode_that_is_not_one_naming_the_allowed_values(capsys):
    argv = ["attach", "--FunctionName", "orders", "--LayerArn", LAYER_EXAMPLE, "--ChaosMode",
            "maybe"]
    assert ah.main(argv, aws=object()) == 1
    assert capsys.readouterr().err == ("error: ChaosMode must be ENABLED (attach) or DISABLED "
                                       "(detach), in any case, got 'maybe'\n")


@pytest.mark.parametrize("command,given,message", [
    ("attach", "DISABLED", "error: ChaosMode must be ENABLED (or left out) for attach, got "
                           "'DISABLED'; to detach, run detach instead\n"),
    ("detach", "enabled", "error: ChaosMode must be DISABLED (or left out) for detach, got "
                          "'enabled'; to attach, run attach instead\n"),
])
def test_cli_refuses_a_chaos_mode_that_contradicts_its_command(capsys, command, given, message):
    argv = [command, "--FunctionName", "orders", "--LayerArn", LAYER_EXAMPLE, "--ChaosMode", given]
    assert ah.main(argv, aws=object()) == 1
    assert capsys.readouterr().err == message


def test_attach_and_detach_refuse_an_invalid_chaos_mode_but_take_each_others_parameters():
    with pytest.raises(ah.InvalidParameter, match=r"^ChaosMode must be ENABLED \(attach\) or "
                                                  r"DISABLED \(detach\), in any case, got 'on'$"):
        ah.attach(dict(BASE, ChaosMode="on"), aws=object())
    with pytest.raises(ah.InvalidParameter, match="got 'maybe'"):
        ah.detach(dict(BASE, ChaosMode="maybe"), aws=object())
    assert ah._with_mode(dict(BASE, ChaosMode="ENABLED"), "detach")["ChaosMode"] == "DISABLED"
