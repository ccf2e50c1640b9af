"""The experiment's wiring helpers: overrides, expected duration, the command line, snapshots."""
import json

import pytest

from local_emulator.__main__ import settings_from
from local_emulator.experiment.orchestration import apply_overrides, expected_duration
from local_emulator.errors import TemplateError
from local_emulator.experiment.snapshot import differences
from tests.emulator_fixtures import moto_server  # noqa: F401 - fixture

TEMPLATE = {"actions": {
    "S00_Attach": {"actionId": "aws:ssm:start-automation-execution",
                   "parameters": {"documentArn": "arn", "maxDuration": "PT5M",
                                  "documentParameters": json.dumps({"ChaosMode": "ENABLED",
                                                                    "LatencyMilliseconds": "60000",
                                                                    "Duration": "PT15M"})}},
    "S01_Wait": {"actionId": "aws:fis:wait", "parameters": {"duration": "PT10M"},
                 "startAfter": ["S00_Attach"]},
    "S02_Detach": {"actionId": "aws:ssm:start-automation-execution", "startAfter": ["S01_Wait"],
                   "parameters": {"documentArn": "arn", "documentParameters": "{\"ChaosMode\": \"DISABLED\"}"}}}}

OUTAGE = {"actions": {"Outage": {"actionId": "aws:ssm:start-automation-execution", "parameters": {
    "documentArn": "arn", "documentParameters": json.dumps({"Duration": "PT10M"})}}}}


def test_overrides_set_document_and_action_parameters_without_touching_the_original():
    changed = apply_overrides(TEMPLATE, {"S00_Attach.LatencyMilliseconds": "2000",
                                         "S01_Wait.duration": "PT3M"})
    params = json.loads(changed["actions"]["S00_Attach"]["parameters"]["documentParameters"])
    assert params == {"ChaosMode": "ENABLED", "LatencyMilliseconds": "2000", "Duration": "PT15M"}
    assert changed["actions"]["S01_Wait"]["parameters"]["duration"] == "PT3M"
    assert json.loads(TEMPLATE["actions"]["S00_Attach"]["parameters"]["documentParameters"])[
        "LatencyMilliseconds"] == "60000"


def test_an_override_of_an_unknown_action_names_the_actions():
    with pytest.raises(TemplateError, match="S00_Attach, S01_Wait, S02_Detach"):
        apply_overrides(TEMPLATE, {"Nope.duration": "PT1M"})


def test_expected_duration_follows_the_longest_chain_and_the_documents_own_sleep():
    assert expected_duration(TEMPLATE) == 600  # attach (no sleep: ChaosMode set) → 10 min → detach
    assert expected_duration(OUTAGE) == 600    # the experiment document sleeps Duration itself


def test_command_line_builds_settings():
    settings = settings_from(["--template", "lambda-latency-single-function", "--time-scale", "60",
                              "--rate", "1", "--set", "S01_Wait.duration=PT2M",
                              "--alarm-threshold", "3", "--health-interval", "10", "--quiet",
                              "--health-check-target", "us-east-1=eu-west-1"])
    assert (settings.template, settings.time_scale, settings.rate) == ("lambda-latency-single-function", 60, 1)
    assert settings.overrides == {"S01_Wait.duration": "PT2M"}
    assert settings.alarm_threshold == 3 and settings.health.request_interval_s == 10
    assert settings.progress is False
    assert settings.health_check_targets == {"us-east-1": "eu-west-1"}


@pytest.mark.parametrize("argv, message", [
    (["--set", "nodot=1"], "write ACTION.PARAM=VALUE"),
    (["--time-scale", "0"], "must be > 0"),
    (["--failure-threshold", "0"], "failure_threshold 0 must be 1–10"),
    (["--health-check-target", "us-east-1"], "write REGION=TARGET"),
])
def test_bad_command_lines_say_what_to_write(argv, message, capsys):
    with pytest.raises(SystemExit):
        settings_from(argv)
    assert message in capsys.readouterr().err


def test_differences_name_every_changed_added_and_removed_field():
    before = {"us-east-1/hello": {"configuration": {"Layers": [{"Arn": "a"}],
                                                    "Environment": {"Variables": {"A": "1", "B": "2"}}},
                                  "tags": {}, "aliases": {}}}
    after = {"us-east-1/hello": {"configuration": {"Layers": [{"Arn": "a"}, {"Arn": "chaos"}],
                                                   "Environment": {"Variables": {"A": "1", "C": "3"}}},
                                 "tags": {}, "aliases": {}},
             "eu-west-1/new": {}}
    assert differences(before, after) == [
        "eu-west-1/new: function created during the run",
        'us-east-1/hello: configuration.Environment.Variables.B: "2" → absent',
        'us-east-1/hello: configuration.Environment.Variables.C: absent → "3"',
        'us-east-1/hello: configuration.Layers: [{"Arn": "a"}] → [{"Arn": "a"}, {"Arn": "chaos"}]']
    assert differences(before, before) == []


def test_capture_records_configuration_tags_and_aliases_and_sees_a_change(moto_server):
    import io
    import zipfile
    from local_emulator.experiment.snapshot import capture
    from tests.emulator_fixtures import unique
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("h.py", "def handler(e, c):\n    return 1\n")
    lam = moto_server.client("lambda", "eu-west-1")
    role = moto_server.client("iam").create_role(RoleName=unique("r"), AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    name = unique("fn")
    lam.create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler="h.handler",
                        Code={"ZipFile": buffer.getvalue()}, Tags={"chaos:target": "sample-app"},
                        Environment={"Variables": {"A": "1"}})
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    before = capture(moto_server, ["eu-west-1"])
    entry = before[f"eu-west-1/{name}"]
    assert entry["tags"] == {"chaos:target": "sample-app"}
    assert entry["aliases"]["live"]["FunctionVersion"] == version
    assert "LastModified" not in entry["configuration"]
    lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"A": "2"}})
    assert differences(before, capture(moto_server, ["eu-west-1"])) == [
        f'eu-west-1/{name}: configuration.Environment.Variables.A: "1" → "2"']


def test_readme_options_table_names_exactly_the_command_line_options():
    import re
    from pathlib import Path
    from local_emulator.__main__ import _parser
    readme = (Path(__file__).resolve().parent.parent / "local_emulator" / "README.md").read_text()
    table = readme.split("## Options", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"`(--[a-z-]+)", table))
    options = {o for action in _parser()._actions for o in action.option_strings
               if o.startswith("--") and o != "--help"}
    assert documented == options
