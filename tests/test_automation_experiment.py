"""The documents end to end on the local SSM engine and an embedded moto server: a cancel or a
failure at any step leaves every function as it was, or detached by the clean-up that follows.

Each run targets two tagged functions in two batches (the step budget is shortened to 0.5 s at
10 calls/s, so one function fills a batch), so that "during the second batch" is a real moment.
"""
import itertools
import time

import pytest

import automation_handler as ah
from automation_fixtures import code_zip
from local_emulator.aws.moto_server import MotoServer
from local_emulator.aws.ssm_runner import AutomationExecution, load_document
from local_emulator.aws.ssm_service import AutomationService
from local_emulator.clock import Clock

DOCS = "ssm_documents"
_RUNS = itertools.count()


@pytest.fixture(scope="module")
def server():
    with MotoServer() as running:
        ssm = running.client("ssm")
        for name, path in (("LambdaFault", "lambda-fault.yaml"),):
            ssm.create_document(Name=name, Content=open(f"{DOCS}/{path}").read(),
                                DocumentType="Automation", DocumentFormat="YAML")
        yield running


class Run:
    """Four functions tagged for this run only, and the service that runs its documents."""

    def __init__(self, server, runtimes=("python3.12",) * 2):
        self.server, self.tag = server, f"run-{next(_RUNS)}"
        self.lam = server.client("lambda")
        iam = server.client("iam")
        try:
            role = iam.get_role(RoleName="fn-role")["Role"]["Arn"]
        except iam.exceptions.NoSuchEntityException:
            role = iam.create_role(RoleName="fn-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        self.layer = self.lam.publish_layer_version(
            LayerName="lambda-chaos", Content={"ZipFile": code_zip()},
            CompatibleRuntimes=["python3.12"])["LayerVersionArn"]
        self.names = [f"{self.tag}-{letter}" for letter in "ab"]
        for name, runtime in zip(self.names, runtimes):
            self.lam.create_function(
                FunctionName=name, Runtime=runtime, Role=role, Handler="app.handler",
                Code={"ZipFile": code_zip()}, Tags={"chaos:target": self.tag},
                Environment={"Variables": {"AWS_LAMBDA_EXEC_WRAPPER": "/opt/apm",
                                           "TABLE_NAME": "orders"}})
        self.before = self.state()
        self.clock = Clock(scale=1.0)
        ssm = server.client("ssm")
        self.env = dict(server.env(), **{ah.STEP_BUDGET_ENV: "0.5"})
        self.service = AutomationService(
            lambda name, region: load_document(ssm.get_document(
                Name=name, DocumentFormat="YAML")["Content"], name=name),
            clock=self.clock, env_for=lambda region: self.env)

    def state(self):
        return {n: self.lam.get_function_configuration(FunctionName=n)["Environment"]
                for n in self.names}

    def attached(self):
        return [n for n, env in self.state().items() if "CHAOS_RESTORE_STATE" in env["Variables"]]

    def start(self, document, **parameters):
        values = {"TargetTagKey": "chaos:target", "TargetTagValue": self.tag,
                  "LayerArn": self.layer, "RequestsPerSecond": "10", **parameters}
        return AutomationExecution(load_document(f"{DOCS}/{document}"), values, clock=self.clock,
                                   script_env=self.env, service=self.service).start()

    def finish(self, execution):
        assert execution.wait(120), execution.summary()
        assert self.service.wait_all(180), self.service.summaries()
        return execution


def steps(execution):
    return [(s.name, s.iteration, s.status) for s in execution.steps]


def wait_for(execution, name, iteration=None):
    """Until step `name` (of loop iteration `iteration`) is running."""
    deadline = time.monotonic() + 90
    while not any(s.name == name and s.status == "InProgress" and
                  (iteration is None or s.iteration == iteration) for s in execution.steps):
        assert time.monotonic() < deadline and not execution.done, steps(execution)
        time.sleep(0.02)


def test_the_experiment_attaches_in_batches_waits_and_detaches_exactly(server):
    run = Run(server)
    execution = run.finish(run.start("lambda-fault-experiment.yaml", Duration="PT1S"))
    assert execution.status == "Success", execution.failure_message
    assert [s for s in steps(execution) if s[0] in ("AttachBatch", "DetachBatch")] == [
        ("AttachBatch", 1, "Success"), ("AttachBatch", 2, "Success"),
        ("DetachBatch", 1, "Success"), ("DetachBatch", 2, "Success")]
    assert run.state() == run.before


@pytest.mark.parametrize("moment", [("Plan", None), ("AttachBatch", 1), ("AttachBatch", 2),
                                    ("Wait", None), ("PlanDetach", None), ("DetachBatch", 1),
                                    ("DetachBatch", 2)],
                         ids=lambda m: f"{m[0]}{m[1] or ''}")
def test_a_cancel_at_any_step_hands_the_detach_to_a_new_execution_that_restores_every_function(
        server, moment):
    run = Run(server)
    duration = "PT1H" if moment[0] in ("Plan", "AttachBatch", "Wait") else "PT1S"
    execution = run.start("lambda-fault-experiment.yaml", Duration=duration)
    wait_for(execution, *moment)
    execution.cancel()
    run.finish(execution)
    assert execution.status == "Cancelled"
    assert execution.steps[-1].name == "HandOffDetach" and execution.steps[-1].status == "Success"
    (hand_off,) = run.service.executions
    assert hand_off.status == "Success", hand_off.failure_message
    assert hand_off.parameters["ChaosMode"] == "DISABLED"
    assert run.state() == run.before


def test_a_cancel_before_the_first_step_changes_nothing(server):
    run = Run(server)
    execution = run.start("lambda-fault-experiment.yaml", Duration="PT1H")
    execution.cancel()
    run.finish(execution)
    assert execution.status == "Cancelled"
    assert run.state() == run.before


def test_a_cancel_after_the_last_step_changes_nothing(server):
    run = Run(server)
    execution = run.finish(run.start("lambda-fault-experiment.yaml", Duration="PT1S"))
    execution.cancel()
    assert execution.status == "Success" and not run.service.executions
    assert run.state() == run.before


def test_a_refused_second_batch_rolls_back_the_first_and_the_experiment_fails(server):
    run = Run(server, runtimes=("python3.12", "python3.8"))  # b is batch 2 of a | b
    execution = run.finish(run.start("lambda-fault-experiment.yaml", Duration="PT1H"))
    assert execution.status == "Failed"
    assert f"{run.tag}-b runs python3.8" in execution.failure_message
    assert ("AttachBatch", 1, "Success") in steps(execution)
    assert ("AttachBatch", 2, "Failed") in steps(execution)
    assert "Wait" not in [s.name for s in execution.steps]
    assert run.state() == run.before


def test_the_fault_document_rolls_back_a_failed_later_batch(server):
    run = Run(server, runtimes=("python3.12", "python3.8"))
    execution = run.finish(run.start("lambda-fault.yaml", Duration="PT1H"))
    assert execution.status == "Failed"
    assert ("ApplyBatch", 1, "Success") in steps(execution)
    assert ("RollBackBatch", 1, "Success") in steps(execution)
    assert run.state() == run.before


def test_a_cancel_of_the_fault_document_during_its_second_batch_rolls_back_the_first(server):
    run = Run(server)
    execution = run.start("lambda-fault.yaml", Duration="PT1H")
    wait_for(execution, "ApplyBatch", 2)
    execution.cancel()
    run.finish(execution)
    assert execution.status == "Cancelled"
    assert "RollBackBatch" in [s.name for s in execution.steps]
    assert run.state() == run.before


def test_the_fault_document_attaches_and_a_second_run_detaches(server):
    run = Run(server)
    attach = run.finish(run.start("lambda-fault.yaml", Duration="PT1H"))
    assert attach.status == "Success", attach.failure_message
    assert sorted(run.attached()) == run.names
    detach = run.finish(run.start("lambda-fault.yaml", ChaosMode="DISABLED"))
    assert detach.status == "Success", detach.failure_message
    assert run.state() == run.before


def test_the_cancellation_path_is_cut_after_two_minutes_of_template_time(tmp_path):
    document = load_document({
        "schemaVersion": "0.3",
        "mainSteps": [
            {"name": "Work", "action": "aws:sleep", "inputs": {"Duration": "PT1H"},
             "onCancel": "step:CleanUp"},
            {"name": "CleanUp", "action": "aws:executeScript", "isEnd": True,
             "inputs": {"Runtime": "python3.11", "Handler": "handler",
                        "Script": "import time\ndef handler(events, context):\n"
                                  "    time.sleep(60)\n"}}]})
    execution = AutomationExecution(document, {}, clock=Clock(scale=120)).start()
    wait_for(execution, "Work")
    started = time.monotonic()
    execution.cancel()
    assert execution.wait(30)
    assert time.monotonic() - started < 20  # 120 template s are 1 real s at this scale
    assert execution.status == "Cancelled"
    assert execution.step_record("CleanUp").status == "TimedOut"
    assert "maximum of two minutes" in execution.step_record("CleanUp").failure_message
