"""The experiment document end to end, on the local SSM engine (local_emulator.aws.ssm_runner) and
an embedded moto server: a cancel during the sleep, or a failed attach, still runs the detach."""
import os
import time

import pytest

from automation_fixtures import code_zip
from local_emulator.clock import Clock
from local_emulator.aws.moto_server import MotoServer
from local_emulator.aws.ssm_runner import AutomationExecution, load_document

DOCUMENT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "ssm_documents", "lambda-fault-experiment.yaml")


@pytest.fixture(scope="module")
def server():
    with MotoServer() as running:
        yield running


def deploy(server, name, runtime="python3.12"):
    lam = server.client("lambda")
    iam = server.client("iam")
    try:
        role = iam.get_role(RoleName="fn-role")["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        role = iam.create_role(RoleName="fn-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    layer = lam.publish_layer_version(LayerName="lambda-chaos", Content={"ZipFile": code_zip()},
                                      CompatibleRuntimes=["python3.12"])["LayerVersionArn"]
    lam.create_function(FunctionName=name, Runtime=runtime, Role=role, Handler="app.handler",
                        Code={"ZipFile": code_zip()},
                        Environment={"Variables": {"AWS_LAMBDA_EXEC_WRAPPER": "/opt/apm",
                                                   "TABLE_NAME": "orders"}})
    return lam, layer


def environment(lam, name):
    return lam.get_function_configuration(FunctionName=name)["Environment"]["Variables"]


def test_cancelling_the_experiment_during_the_sleep_runs_the_detach(server):
    lam, layer = deploy(server, "exp-cancel")
    before = environment(lam, "exp-cancel")
    execution = AutomationExecution(
        load_document(DOCUMENT), {"FunctionName": "exp-cancel", "LayerArn": layer,
                                  "Duration": "PT1H", "FaultType": "latency"},
        clock=Clock(scale=1.0), script_env=server.env()).start()
    deadline = time.monotonic() + 60
    while not any(s.name == "Wait" and s.status == "InProgress" for s in execution.steps):
        assert time.monotonic() < deadline and not execution.done, execution.summary()
        time.sleep(0.1)
    assert environment(lam, "exp-cancel")["CHAOS_FAULT_TYPE"] == "latency"
    execution.cancel()
    assert execution.wait(60)
    assert execution.status == "Cancelled"
    assert [s.name for s in execution.steps] == ["AttachFault", "Wait", "DetachFault"]
    assert execution.step_record("DetachFault").status == "Success"
    assert environment(lam, "exp-cancel") == before


def test_a_refused_attach_still_runs_the_detach_and_the_execution_fails(server):
    lam, layer = deploy(server, "exp-legacy", runtime="python3.8")
    before = environment(lam, "exp-legacy")
    execution = AutomationExecution(
        load_document(DOCUMENT), {"FunctionName": "exp-legacy", "LayerArn": layer,
                                  "Duration": "PT1H"},
        clock=Clock(scale=1.0), script_env=server.env()).run()
    assert execution.status == "Failed"
    assert "exp-legacy runs python3.8" in execution.failure_message
    assert [s.name for s in execution.steps] == ["AttachFault", "DetachFault"]
    assert environment(lam, "exp-legacy") == before
