"""The local SSM Automation engine runs documents with SSM's control flow.

Fixture documents are small but shaped like the project's: a script step that changes AWS
(an SSM parameter stands in for a function's configuration), an `aws:sleep`, and a clean-up step
reached through `onFailure` / `onCancel`.
"""
import textwrap
import time

import pytest

from local_emulator.clock import Clock
from local_emulator.errors import AutomationFailed
from local_emulator.aws.ssm_runner import AutomationExecution, load_document, run_automation
from tests.emulator_fixtures import moto_server, unique  # noqa: F401 - fixture

ECHO = textwrap.dedent("""
    def handler(events, context):
        if events.get("Fail") in (True, "true"):
            raise RuntimeError("asked to fail: " + str(events.get("Name")))
        return {"echo": events, "execution": context["automation:EXECUTION_ID"]}
""")

SET_MARK = textwrap.dedent("""
    import boto3
    def handler(events, context):
        boto3.client("ssm").put_parameter(Name=events["Name"], Value=events["Value"],
                                          Type="String", Overwrite=True)
        return {"set": events["Value"]}
""")


def _doc(steps, parameters=None, outputs=None):
    return {"schemaVersion": "0.3", "parameters": parameters or {"Name": {"type": "String"}},
            "mainSteps": steps, "outputs": outputs or []}


def _script(name, script=ECHO, payload=None, **extra):
    step = {"name": name, "action": "aws:executeScript",
            "inputs": {"Runtime": "python3.11", "Handler": "handler", "Script": script,
                       "InputPayload": payload or {"Name": "{{ Name }}"}}}
    step.update(extra)
    return step


def _sleep(name, duration="PT10M", **extra):
    return {"name": name, "action": "aws:sleep", "inputs": {"Duration": duration}, **extra}


def test_execute_script_passes_input_payload_and_selects_outputs():
    document = _doc([_script("Echo", payload={"Name": "{{ Name }}", "Count": "{{ Count }}",
                                              "Label": "fn={{ Name }} n={{ Count }}"},
                             outputs=[{"Name": "Count", "Selector": "$.Payload.echo.Count",
                                       "Type": "Integer"}])],
                    parameters={"Name": {"type": "String"}, "Count": {"type": "Integer"}},
                    outputs=["Echo.Count"])
    execution = run_automation(document, {"Name": "fn-a", "Count": "3"})
    assert execution.status == "Success"
    payload = execution.step_record("Echo").payload
    assert payload["echo"] == {"Name": "fn-a", "Count": 3, "Label": "fn=fn-a n=3"}
    assert payload["execution"] == execution.execution_id
    assert execution.outputs == {"Echo.Count": 3}


def test_script_boto3_clients_reach_the_embedded_aws(moto_server):
    name = unique("/chaos/mark")
    document = _doc([_script("Set", SET_MARK, payload={"Name": "{{ Name }}", "Value": "attached"})])
    execution = run_automation(document, {"Name": name}, script_env=moto_server.env())
    assert execution.status == "Success", execution.failure_message
    value = moto_server.client("ssm").get_parameter(Name=name)["Parameter"]["Value"]
    assert value == "attached"


def test_later_step_reads_an_earlier_steps_output():
    document = _doc([_script("First", outputs=[{"Name": "Who", "Selector": "$.Payload.echo.Name",
                                                "Type": "String"}]),
                     _script("Second", payload={"Name": "{{ First.Who }}-again"})])
    execution = run_automation(document, {"Name": "fn-b"})
    assert execution.step_record("Second").payload["echo"]["Name"] == "fn-b-again"


def test_sleep_is_compressed_by_the_time_scale():
    document = _doc([_sleep("Wait", "PT10M")])
    started = time.monotonic()
    execution = run_automation(document, {"Name": "x"}, clock=Clock(scale=6000))
    real = time.monotonic() - started
    record = execution.step_record("Wait")
    assert execution.status == "Success"
    assert real < 2.0
    assert record.end - record.start == pytest.approx(600, rel=0.5)


def test_failed_step_follows_on_failure_to_cleanup_and_execution_ends_failed():
    document = _doc([_script("Attach", payload={"Name": "{{ Name }}", "Fail": True},
                             onFailure="step:Detach"),
                     _sleep("Wait"),
                     _script("Detach", isEnd=True)])
    execution = run_automation(document, {"Name": "fn-c"})
    assert [s.name for s in execution.steps] == ["Attach", "Detach"]
    assert execution.step_record("Detach").status == "Success"
    assert execution.status == "Failed"
    assert "asked to fail: fn-c" in execution.failure_message


def test_non_critical_failure_with_continue_ends_success():
    document = _doc([_script("Try", payload={"Fail": True}, onFailure="Continue", isCritical=False),
                     _script("Next")])
    execution = run_automation(document, {"Name": "n"})
    assert [(s.name, s.status) for s in execution.steps] == [("Try", "Failed"), ("Next", "Success")]
    assert execution.status == "Success"


def test_abort_on_failure_skips_later_steps_and_raises_when_asked():
    document = _doc([_script("Attach", payload={"Fail": True}), _script("Never")])
    with pytest.raises(AutomationFailed, match="ended Failed: Step Attach failed"):
        run_automation(document, {"Name": "n"}, raise_on_failure=True)


def test_max_attempts_retries_a_failing_step():
    document = _doc([_script("Flaky", payload={"Fail": True}, maxAttempts=2, onFailure="Abort")])
    execution = run_automation(document, {"Name": "n"})
    assert execution.step_record("Flaky").attempts == 2
    assert execution.status == "Failed"


def test_is_end_stops_after_the_step():
    document = _doc([_script("Only", isEnd=True), _script("Never")])
    execution = run_automation(document, {"Name": "n"})
    assert [s.name for s in execution.steps] == ["Only"]
    assert execution.status == "Success"


def test_next_step_jumps_over_steps():
    document = _doc([_script("A", nextStep="C"), _script("B"), _script("C")])
    assert [s.name for s in run_automation(document, {"Name": "n"}).steps] == ["A", "C"]


def test_cancel_during_sleep_runs_the_on_cancel_path_and_ends_cancelled(moto_server):
    name = unique("/chaos/mark")
    document = _doc([_script("Attach", SET_MARK, payload={"Name": "{{ Name }}", "Value": "attached"}),
                     _sleep("Wait", "PT1H", onCancel="step:Detach"),
                     _script("Detach", SET_MARK, payload={"Name": "{{ Name }}", "Value": "detached"},
                             isEnd=True)])
    execution = AutomationExecution(load_document(document), {"Name": name},
                                    clock=Clock(scale=60), script_env=moto_server.env()).start()
    _wait_for_step(execution, "Wait")
    execution.cancel()
    assert execution.wait(timeout=30)
    assert execution.status == "Cancelled"
    assert [(s.name, s.status) for s in execution.steps] == [
        ("Attach", "Success"), ("Wait", "Cancelled"), ("Detach", "Success")]
    value = moto_server.client("ssm").get_parameter(Name=name)["Parameter"]["Value"]
    assert value == "detached"


def test_cancel_with_default_abort_runs_nothing_more():
    document = _doc([_sleep("Wait", "PT1H"), _script("Detach")])
    execution = AutomationExecution(load_document(document), {"Name": "n"},
                                    clock=Clock(scale=60)).start()
    _wait_for_step(execution, "Wait")
    execution.cancel()
    assert execution.wait(timeout=10)
    assert execution.status == "Cancelled"
    assert [s.name for s in execution.steps] == ["Wait"]


def test_cancel_kills_a_running_script():
    slow = "import time\ndef handler(events, context):\n    time.sleep(60)\n"
    document = _doc([_script("Slow", slow)])
    execution = AutomationExecution(load_document(document), {"Name": "n"}).start()
    _wait_for_step(execution, "Slow")
    time.sleep(0.3)
    started = time.monotonic()
    execution.cancel()
    assert execution.wait(timeout=10)
    assert time.monotonic() - started < 5
    assert execution.status == "Cancelled"


def test_step_timeout_fails_the_step():
    slow = "import time\ndef handler(events, context):\n    time.sleep(30)\n"
    execution = run_automation(_doc([_script("Slow", slow, timeoutSeconds=1)]), {"Name": "n"})
    assert execution.status == "Failed"
    assert "timed out after 1 s" in execution.failure_message


def _wait_for_step(execution, name, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = execution.step_record(name)
        if record is not None and record.status == "InProgress":
            return
        time.sleep(0.02)
    raise AssertionError(f"step {name} never started: {[s.name for s in execution.steps]}")
