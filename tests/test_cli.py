"""`python -m local_emulator`: what it refuses before deploying, and what its exit status means.

Every refusal here happens before anything is deployed: the `nothing_deployed` fixture fails the
test if the embedded AWS would start or deploy.sh would run. No test runs an experiment.
"""
import json
import re
from pathlib import Path

import pytest

import local_emulator.experiment.orchestration as experiment
from local_emulator.__main__ import (EXIT_HELD, EXIT_HYPOTHESIS_FAILED, EXIT_INTERRUPTED,
                                     EXIT_NOT_RUN, main, settings_from)
from local_emulator.experiment.orchestration import RunResult, Settings, run_experiment
from local_emulator.errors import MotoServerError
from local_emulator.experiment.run_options import (MAX_TIME_SCALE, REPORT_FILES, SettingsError,
                                        available_templates, check_settings)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def nothing_deployed(monkeypatch):
    """Fail the test if the run gets as far as starting the embedded AWS or deploying."""
    def refuse(*args, **kwargs):
        pytest.fail("the run started the embedded AWS or deployed before refusing the option")
    monkeypatch.setattr(experiment, "MotoServer", refuse)
    monkeypatch.setattr(experiment, "deploy", refuse)


@pytest.fixture
def old_report(tmp_path):
    """An output folder holding an earlier run's report."""
    for name in REPORT_FILES:
        (tmp_path / name).write_text("an earlier run's report")
    return tmp_path


def _exit(argv):
    """main()'s exit status, whether it returns it or argparse exits with it."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def _refused(argv, capsys, tmp_path):
    """Run the command line; assert it exits EXIT_NOT_RUN with no traceback; return stderr."""
    status = _exit([*argv, "--quiet", "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert status == EXIT_NOT_RUN, err
    assert "Traceback" not in err
    return err


# --- time scale ---------------------------------------------------------------------------

def test_a_time_scale_beyond_what_the_emulator_keeps_up_with_is_refused_before_anything_is_deployed(
        nothing_deployed, capsys, tmp_path):
    err = _refused(["--time-scale", "1e9"], capsys, tmp_path)
    assert "--time-scale 1e+09: the emulator keeps up with at most 30×" in err
    assert "use 1–30" in err


def test_the_largest_measured_time_scale_is_accepted(tmp_path):
    check_settings(settings_from(["--time-scale", f"{MAX_TIME_SCALE:g}", "--output", str(tmp_path)]))


@pytest.mark.parametrize("scale, reason", [
    ("0.5", "below 1 the run is slower than real time"),
    ("0", "must be > 0"),
    ("-3", "must be > 0"),
    ("nan", "must be > 0"),
    ("inf", "must be > 0"),
])
def test_a_time_scale_below_real_time_or_not_a_number_is_refused_with_the_allowed_range(
        scale, reason, nothing_deployed, capsys, tmp_path):
    err = _refused(["--time-scale", scale], capsys, tmp_path)
    assert reason in err and "use 1–30 (1 = real time)" in err


# --- phases --------------------------------------------------------------------------------

def test_a_negative_pre_phase_is_refused_before_anything_is_deployed(nothing_deployed, capsys, tmp_path):
    err = _refused(["--pre", "-5"], capsys, tmp_path)
    assert "--pre -5: the steady-state phase must last 20–43200 template seconds" in err
    assert "at least 10 requests per client region at --rate 0.5" in err


@pytest.mark.parametrize("argv, shown", [
    (["--post", "-5"], "--post -5: the recovery phase must last 20–43200"),
    (["--pre", "0"], "--pre 0: the steady-state phase must last 20–43200"),
    (["--pre", "nan"], "--pre nan: the steady-state phase"),
    (["--post", "inf"], "--post inf: the recovery phase"),
    (["--pre", "1e12"], "at most 12 hours"),
    (["--pre", "30", "--rate", "0.1"], "--pre 30: the steady-state phase must last 100–43200"),
])
def test_a_phase_too_short_to_judge_or_not_a_duration_is_refused(argv, shown, nothing_deployed,
                                                                 capsys, tmp_path):
    assert shown in _refused(argv, capsys, tmp_path)


# --- template ------------------------------------------------------------------------------

def test_an_unknown_template_is_refused_before_deploying_and_the_message_lists_the_templates(
        nothing_deployed, capsys, tmp_path):
    err = _refused(["--template", "lambda-nope"], capsys, tmp_path)
    assert "--template 'lambda-nope': no such template; use one of" in err
    for name in ("lambda-regional-outage", "lambda-latency-single-function", "lambda-invocation-errors"):
        assert name in err
    assert available_templates() == sorted(p.parent.name for p in (ROOT / "fis_templates").glob("*/template.json"))


def test_a_template_json_path_is_accepted_as_well_as_a_folder_name(tmp_path):
    path = ROOT / "fis_templates" / "lambda-invocation-errors" / "template.json"
    check_settings(settings_from(["--template", str(path), "--output", str(tmp_path)]))


def test_a_template_file_that_is_not_an_experiment_template_is_refused(nothing_deployed, capsys, tmp_path):
    broken = tmp_path / "template.json"
    broken.write_text("{\"actions\": ")
    assert "is not a readable JSON experiment template" in _refused(["--template", str(broken)],
                                                                     capsys, tmp_path)


# --- health checks -------------------------------------------------------------------------

def test_a_health_check_target_outside_the_runs_regions_says_which_regions_are_allowed(
        nothing_deployed, capsys, tmp_path):
    err = _refused(["--health-check-target", "us-east-1=mars-1"], capsys, tmp_path)
    assert ("--health-check-target us-east-1=mars-1: both must be regions of this run "
            "(us-east-1, eu-west-1)") in err


@pytest.mark.parametrize("argv, shown", [
    (["--health-interval", "0"], "--health-interval 0: Route 53 checks every 30 s (standard) or 10 s (fast)"),
    (["--health-interval", "nan"], "--health-interval nan: Route 53 checks every 30 s"),
    (["--failure-threshold", "11"], "--failure-threshold 11: failure_threshold 11 must be 1–10"),
])
def test_health_check_settings_route53_would_refuse_are_refused_with_the_allowed_values(
        argv, shown, nothing_deployed, capsys, tmp_path):
    assert shown in _refused(argv, capsys, tmp_path)


# --- load, alarm, overrides ----------------------------------------------------------------

@pytest.mark.parametrize("argv, shown", [
    (["--rate", "1e12"], "--rate 1e+12 at --time-scale 15: 3e+13 requests per real second"),
    (["--rate", "1e12"], "use --rate ≤ 2 at this scale"),
    (["--rate", "0"], "--rate 0: must be > 0 and finite"),
    (["--rate", "nan"], "--rate nan: must be > 0 and finite"),
    (["--alarm-threshold", "nan"], "--alarm-threshold nan: the alarm's threshold must be a finite number"),
])
def test_a_load_or_alarm_the_run_cannot_honour_is_refused(argv, shown, nothing_deployed, capsys, tmp_path):
    assert shown in _refused(argv, capsys, tmp_path)


@pytest.mark.parametrize("override, shown", [
    ("S01_Wait.duration=banana", "--set S01_Wait.duration=banana: not an ISO-8601 duration; write e.g. PT10M"),
    ("S01_Wait.duration=P30D", "longer than 12 hours (PT12H)"),
    ("Nope.duration=PT1M", "write ACTION.PARAMETER with an action of the template (S00_AttachExtensionToLambda"),
    ("S00_AttachExtensionToLambda.LatencyMilliseconds=banana",
     "parameter LatencyMilliseconds='banana' is not an Integer; pass a whole number"),
    ("S00_AttachExtensionToLambda.Latency=4000",
     "document lambda-fault.yaml has no parameter Latency; it takes"),
    ("S00_AttachExtensionToLambda.FaultType=slow", "is not one of the allowed values"),
    ("S01_Wait.LatencyMilliseconds=10", "S01_Wait is an aws:fis:wait; it takes only duration"),
    ("S00_AttachExtensionToLambda.Duration=10m", "not an ISO-8601 duration"),
])
def test_an_override_the_template_or_its_document_would_refuse_is_refused_before_deploying(
        override, shown, nothing_deployed, capsys, tmp_path):
    err = _refused(["--template", "lambda-latency-single-function", "--set", override], capsys, tmp_path)
    assert shown in err


def test_valid_overrides_of_an_action_and_a_document_parameter_are_accepted(tmp_path):
    settings = settings_from(["--template", "lambda-latency-single-function", "--output", str(tmp_path),
                              "--set", "S00_AttachExtensionToLambda.LatencyMilliseconds=4000",
                              "--set", "S01_Wait.duration=PT5M"])
    check_settings(settings)
    assert settings.overrides == {"S00_AttachExtensionToLambda.LatencyMilliseconds": "4000",
                                  "S01_Wait.duration": "PT5M"}


def test_an_output_that_is_a_file_is_refused(nothing_deployed, capsys, tmp_path):
    (tmp_path / "out").write_text("not a folder")
    status = _exit(["--output", str(tmp_path / "out")])
    assert status == EXIT_NOT_RUN
    assert "is a file; the report goes into a folder" in capsys.readouterr().err


def test_every_refused_option_is_named_in_one_message(nothing_deployed, capsys, tmp_path):
    err = _refused(["--pre", "-5", "--time-scale", "1e9", "--template", "nope"], capsys, tmp_path)
    assert "--pre -5" in err and "--time-scale 1e+09" in err and "--template 'nope'" in err


def test_run_experiment_itself_refuses_bad_settings_before_starting_the_embedded_aws(nothing_deployed, tmp_path):
    with pytest.raises(SettingsError, match="--pre -5: the steady-state phase"):
        run_experiment(Settings(pre_s=-5, output=tmp_path, progress=False), write=lambda text: None)


def test_the_documents_checked_are_the_ones_deploy_sh_creates_for_each_placeholder():
    """deploy.sh --local fills `${KEYArn}` from the rendered document of each stack key; the
    options check those placeholders against the same repository files."""
    from cloudformation.documents import DOCUMENTS, document_path
    from local_emulator.experiment.run_options import _DOCUMENTS
    script = (ROOT / "deploy.sh").read_text()
    assert 'SETS+=("${key}Arn=$(local_document "${DOC_NAME[$key]}" "${DOC_FILE[$key]}")")' in script
    for placeholder, path in _DOCUMENTS.items():
        key = placeholder.strip("${}")[:-len("Arn")]
        assert document_path(key) == path, f"{placeholder} is filled from {DOCUMENTS[key]}"


# --- a run that fails, and the exit status -------------------------------------------------

class _FailingServer:
    """An embedded AWS that cannot start: the run fails after its options were accepted."""

    error: BaseException = MotoServerError("moto server did not answer within 30 s; see moto.log")

    def __init__(self, log_path):
        Path(log_path).write_text("moto's own log\n")

    def start(self):
        raise self.error


def test_a_run_that_fails_leaves_no_earlier_report_in_the_output_folder(monkeypatch, old_report, capsys):
    monkeypatch.setattr(experiment, "MotoServer", _FailingServer)
    status = _exit(["--quiet", "--output", str(old_report)])
    err = capsys.readouterr().err
    assert status == EXIT_NOT_RUN
    assert "error: moto server did not answer within 30 s" in err
    assert f"logs: {old_report / 'moto.log'}" in err
    assert [name for name in REPORT_FILES if (old_report / name).exists()] == []


def test_an_unexpected_exception_is_an_error_message_naming_its_log_not_a_traceback(
        monkeypatch, tmp_path, capsys):
    class Crashing(_FailingServer):
        error = RuntimeError("cannot schedule new futures after shutdown")
    monkeypatch.setattr(experiment, "MotoServer", Crashing)
    status = _exit(["--quiet", "--output", str(tmp_path)])
    err = capsys.readouterr().err
    assert status == EXIT_NOT_RUN
    assert ("error: the experiment could not finish: RuntimeError: cannot schedule new futures "
            "after shutdown") in err
    assert f"the traceback is in {tmp_path / 'error.log'}" in err
    assert "Traceback" not in err
    assert "Traceback" in (tmp_path / "error.log").read_text()


def _result(verdicts, restored=True):
    hypotheses = [{"hypothesis": f"h{i}", "verdict": v, "detail": ""} for i, v in enumerate(verdicts)]
    return RunResult({"hypotheses": hypotheses}, {}, [], restored, [])


@pytest.mark.parametrize("verdicts, restored, status", [
    (["pass", "pass"], True, EXIT_HELD),
    (["pass", "fail"], True, EXIT_HYPOTHESIS_FAILED),   # restored, but a hypothesis failed
    (["pass", "fail"], False, EXIT_HYPOTHESIS_FAILED),  # the restore hypothesis failed
])
def test_the_exit_status_is_0_when_every_hypothesis_held_and_1_when_any_failed(
        verdicts, restored, status, monkeypatch, tmp_path):
    import local_emulator.__main__ as cli
    monkeypatch.setattr(cli, "run_experiment", lambda settings: _result(verdicts, restored))
    assert _exit(["--quiet", "--output", str(tmp_path)]) == status


def test_a_run_the_emulator_could_not_keep_up_with_gives_no_verdict(
        monkeypatch, tmp_path, capsys):
    import local_emulator.__main__ as cli
    from local_emulator.experiment.report import faithfulness
    stalled = _result(["pass", "fail"])
    stalled.report["faithful"] = faithfulness({"max_ms": 20000.0})
    monkeypatch.setattr(cli, "run_experiment", lambda settings: stalled)
    assert _exit(["--quiet", "--output", str(tmp_path)]) == EXIT_NOT_RUN
    assert "no verdict: the emulator did NOT keep up: it stalled for 20000 ms of template time" \
        in capsys.readouterr().err
    all_passed = _result(["pass", "pass"])  # a pass in a stalled run is no verdict either
    all_passed.report["faithful"] = faithfulness({"max_ms": 20000.0})
    monkeypatch.setattr(cli, "run_experiment", lambda settings: all_passed)
    assert _exit(["--quiet", "--output", str(tmp_path)]) == EXIT_NOT_RUN
    kept_up = _result(["pass", "fail"])
    kept_up.report["faithful"] = faithfulness({"max_ms": 9000.0})
    monkeypatch.setattr(cli, "run_experiment", lambda settings: kept_up)
    assert _exit(["--quiet", "--output", str(tmp_path)]) == EXIT_HYPOTHESIS_FAILED


def test_ctrl_c_exits_130(monkeypatch, tmp_path, capsys):
    import local_emulator.__main__ as cli

    def interrupted(settings):
        raise KeyboardInterrupt
    monkeypatch.setattr(cli, "run_experiment", interrupted)
    assert _exit(["--quiet", "--output", str(tmp_path)]) == EXIT_INTERRUPTED == 130
    assert "interrupted" in capsys.readouterr().err


def test_the_exit_statuses_are_distinct_and_in_the_help(capsys):
    assert len({EXIT_HELD, EXIT_HYPOTHESIS_FAILED, EXIT_NOT_RUN, EXIT_INTERRUPTED}) == 4
    assert (EXIT_HELD, EXIT_HYPOTHESIS_FAILED, EXIT_NOT_RUN) == (0, 1, 2)
    assert _exit(["--help"]) == 0
    assert "Exit status: 0 every hypothesis held, 1 a hypothesis failed, 2 the experiment could " \
           "not run" in " ".join(capsys.readouterr().out.split())


def test_the_report_files_removed_are_the_ones_write_report_writes(tmp_path):
    from local_emulator.experiment.report import Phases, build_report, write_report
    records = [{"at": t, "client_region": "us-east-1", "path": "/hello", "routed_region": "us-east-1",
                "status": 200, "latency_ms": 50.0, "served_region": "us-east-1", "error": ""}
               for t in range(0, 300, 10)]
    report = build_report(records, Phases(0, 100, 200, 300), health={},
                          experiment={"state": "completed", "reason": "", "actions": {}},
                          configurations={"restored": True, "differences": []}, sandbox={},
                          settings={"time_scale": 30})
    written = write_report(report, records, tmp_path)
    assert sorted(p.name for p in written.values()) == sorted(REPORT_FILES)
    assert json.loads((tmp_path / "report.json").read_text())["hypotheses"]


def test_a_seed_from_a_report_replays_it_and_anything_else_is_refused_in_words(capsys):
    assert settings_from(["--seed", "482913"]).seed == 482913
    assert settings_from([]).seed is None  # the run picks one and prints it
    for bad, words in (("banana", "'banana' is not a seed: write the whole number a report printed"),
                       ("-1", "'-1': a seed is a whole number from 0")):
        with pytest.raises(SystemExit) as stopped:
            settings_from(["--seed", bad])
        assert stopped.value.code == EXIT_NOT_RUN
        assert words in capsys.readouterr().err
