"""The organisation-wide experiment on the local SSM engine: two target accounts × two Regions
in one embedded moto, each location run by its own child execution as the execution role of
its account. All or nothing across locations unless TargetLocationMaxErrors allows failures."""
import itertools
import threading
import time

import pytest

import automation_handler as ah
from automation_fixtures import code_zip
from local_emulator.aws.accounts import account_client
from local_emulator.aws.moto_server import MotoServer
from local_emulator.aws.ssm_runner import AutomationExecution, load_document
from local_emulator.aws.ssm_service import AutomationService
from local_emulator.clock import Clock

ACCOUNTS = ["111111111111", "222222222222"]
REGIONS = ["us-east-1", "eu-west-1"]
ROLE = "LambdaChaosAutomationExecution"
_RUNS = itertools.count()


@pytest.fixture(scope="module")
def server():
    with MotoServer() as running:
        running.client("ssm").create_document(
            Name="LambdaFault", Content=open("ssm_documents/lambda-fault.yaml").read(),
            DocumentType="Automation", DocumentFormat="YAML")
        running.client("ssm").modify_document_permission(
            Name="LambdaFault", PermissionType="Share", AccountIdsToAdd=ACCOUNTS)
        yield running


def clients(server, account, region):
    """Lambda and IAM clients acting in `account` (accounts.py: an STS-assumed role's credentials)."""
    return (account_client(server, account, "lambda", region),
            account_client(server, account, "iam", region))


class Organisation:
    """One tagged function per location, the layer and the execution role."""

    def __init__(self, server, runtimes=None):
        self.server, self.tag = server, f"org-{next(_RUNS)}"
        self.functions = {}
        for account in ACCOUNTS:
            for region in REGIONS:
                lam, iam = clients(server, account, region)
                try:
                    iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument="{}")
                except iam.exceptions.EntityAlreadyExistsException:
                    pass
                try:
                    role = iam.create_role(RoleName="fn", AssumeRolePolicyDocument="{}")
                except iam.exceptions.EntityAlreadyExistsException:
                    role = iam.get_role(RoleName="fn")
                lam.publish_layer_version(LayerName="lambda-chaos-layer",
                                          Content={"ZipFile": code_zip()},
                                          CompatibleRuntimes=["python3.12"])
                name = f"{self.tag}-{region}"
                lam.create_function(
                    FunctionName=name, Role=role["Role"]["Arn"], Handler="app.handler",
                    Runtime=(runtimes or {}).get((account, region), "python3.12"),
                    Code={"ZipFile": code_zip()}, Tags={"chaos:target": self.tag},
                    Environment={"Variables": {"TABLE_NAME": "orders"}})
                self.functions[(account, region)] = (lam, name)
        self.before = self.state()
        self.clock = Clock(scale=1.0)
        ssm = server.client("ssm")
        self.service = AutomationService(
            lambda name, region: load_document(ssm.get_document(
                Name=name.split("/")[-1], DocumentFormat="YAML")["Content"], name=name),
            clock=self.clock, env_for=lambda region: dict(server.env(region),
                                                          **{ah.STEP_BUDGET_ENV: "0.5"}))

    def state(self):
        return {where: lam.get_function_configuration(FunctionName=name)["Environment"]
                for where, (lam, name) in self.functions.items()}

    def attached(self):
        return sorted(w for w, env in self.state().items()
                      if "CHAOS_RESTORE_STATE" in env.get("Variables", {}))

    def start(self, **parameters):
        values = {"TargetAccounts": ACCOUNTS, "TargetRegions": REGIONS,
                  "TargetTagKey": "chaos:target", "TargetTagValue": self.tag,
                  "LayerArn": "lambda-chaos-layer", "RequestsPerSecond": "10",
                  "Duration": "PT1S", **parameters}
        return AutomationExecution(load_document("ssm_documents/lambda-fault-organization.yaml"),
                                   values, clock=self.clock, script_env=self.server.env(),
                                   service=self.service).start()

    def finish(self, execution):
        assert execution.wait(240), execution.summary()
        assert self.service.wait_all(240), self.service.summaries()
        return execution


def wait_for(execution, name):
    deadline = time.monotonic() + 180
    while not any(s.name == name and s.status == "InProgress" for s in execution.steps):
        assert time.monotonic() < deadline and not execution.done, execution.summary()
        time.sleep(0.05)


def test_the_experiment_attaches_in_every_account_and_region_then_restores_each_exactly(server):
    org = Organisation(server)
    execution = org.start(Duration="PT20S")
    wait_for(execution, "Wait")
    assert org.attached() == sorted(org.functions)  # all four locations carry the fault
    layers = {lam.get_function_configuration(FunctionName=name)["Layers"][0]["Arn"]
              for lam, name in org.functions.values()}
    assert {arn.split(":")[3] + "/" + arn.split(":")[4] for arn in layers} == {
        f"{r}/{a}" for a in ACCOUNTS for r in REGIONS}  # each location's own layer version
    org.finish(execution)
    assert execution.status == "Success", execution.failure_message
    children = org.service.location_summaries()
    assert {(c["Account"], c["Region"]) for c in children} == set(org.functions)
    assert org.state() == org.before


def test_a_failure_in_one_account_rolls_back_every_account(server):
    org = Organisation(server, runtimes={(ACCOUNTS[1], "eu-west-1"): "python3.8"})
    execution = org.finish(org.start())
    assert execution.status == "Failed"
    assert f"{ACCOUNTS[1]}/eu-west-1: Failed" in execution.failure_message
    assert "DetachEverywhere" in [s.name for s in execution.steps]
    assert org.state() == org.before


def test_with_a_location_error_threshold_the_others_keep_the_fault_until_the_detach(server):
    org = Organisation(server, runtimes={(ACCOUNTS[1], "eu-west-1"): "python3.8"})
    execution = org.start(TargetLocationMaxErrors="1", Duration="PT20S")
    wait_for(execution, "Wait")
    assert org.attached() == sorted(w for w in org.functions if w != (ACCOUNTS[1], "eu-west-1"))
    org.finish(execution)
    assert execution.status == "Success", execution.failure_message
    assert org.state() == org.before


def test_a_cancel_hands_the_detach_to_new_executions_in_every_location(server):
    org = Organisation(server)
    execution = org.start(Duration="PT1H")
    wait_for(execution, "Wait")
    execution.cancel()
    org.finish(execution)
    assert execution.status == "Cancelled"
    assert execution.steps[-1].name == "HandOffDetachEverywhere"
    # the summary (the report's JSON) names each location's detach child
    handed = execution.summary()["steps"][-1]["locations"]
    assert sorted((c["Account"], c["Region"]) for c in handed) == sorted(org.functions)
    children = {e.execution_id: e for e in org.service.executions}
    assert all(children[c["ExecutionId"]].document.name == "LambdaFault" for c in handed)
    assert org.state() == org.before


def test_an_account_without_the_execution_role_fails_its_location_in_words(server):
    accounts = ["333333333333"]  # an account nobody prepared
    done = AutomationService(lambda n, r: None, clock=Clock(), env_for=server.env).run_locations(
        "LambdaFault", {}, [{"Accounts": accounts, "Regions": ["us-east-1"],
                             "ExecutionRoleName": ROLE}], "us-east-1", threading.Event()).records
    assert done[0]["Status"] == "Failed"
    assert done[0]["Failure"].startswith(f"account 333333333333 has no role {ROLE}: deploy the "
                                         "target stack there")


def test_a_document_not_shared_with_an_account_fails_its_location_in_words(server):
    Organisation(server)  # the execution role exists in both accounts
    ssm = server.client("ssm")
    ssm.create_document(Name="LambdaFaultUnshared", DocumentType="Automation",
                        DocumentFormat="YAML", Content=open("ssm_documents/lambda-fault.yaml").read())
    ssm.modify_document_permission(Name="LambdaFaultUnshared", PermissionType="Share",
                                   AccountIdsToAdd=ACCOUNTS[:1])
    service = AutomationService(lambda n, r: object(), clock=Clock(), env_for=server.env)
    run = service.run_locations("arn:aws:ssm:us-east-1:123456789012:document/LambdaFaultUnshared", {},
                                [{"Accounts": ACCOUNTS[1:], "Regions": ["us-east-1"],
                                  "ExecutionRoleName": ROLE}], "us-east-1", threading.Event())
    assert run.status == "Failed"
    assert run.records[0]["Failure"] == (
        f"document LambdaFaultUnshared of account 123456789012 (us-east-1) is not shared with "
        f"account {ACCOUNTS[1]}, so it cannot run there: share it with aws ssm "
        f"modify-document-permission --name LambdaFaultUnshared --permission-type Share "
        f"--account-ids-to-add {ACCOUNTS[1]} --region us-east-1 (deploy.sh --target-accounts "
        "does), then start the experiment again")
