"""deploy.sh: shellcheck-clean, one-line prerequisite failures, a dry run that calls nothing,
and a --local deploy (and re-deploy, and delete) against a moto server of the test's own."""
import json
import shutil
import subprocess
import uuid

import boto3
import pytest

from cloudformation import fis_validation
from cloudformation.documents import parameter_specs
from tests.deploy_fixtures import BIN, ROOT, MotoServer, fake_aws, run_deploy

OPTIONS = ("--region", "--stack-name", "--bucket", "--with-sample-app", "--domain-name",
           "--hosted-zone-id", "--certificate-arn", "--stop-alarm-arn",
           "--trusted-layers", "--dry-run", "--delete", "--local", "--endpoint-url", "--help")


def test_deploy_script_passes_shellcheck():
    done = subprocess.run([str(BIN / "shellcheck"), str(ROOT / "deploy.sh")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def test_help_lists_every_option():
    done = run_deploy(["--help"])
    assert done.returncode == 0
    for option in OPTIONS:
        assert option in done.stdout


def test_unknown_option_names_it_and_points_to_help():
    done = run_deploy(["--regoin", "eu-west-1"])
    assert done.returncode == 1
    assert done.stderr.strip() == ("deploy.sh: unknown option '--regoin'; run ./deploy.sh --help "
                                   "for the list")


def test_domain_options_must_come_together_with_the_sample_app():
    done = run_deploy(["--region", "eu-west-1", "--with-sample-app", "--domain-name", "api.example.com"])
    assert done.returncode == 1
    assert done.stderr == ("deploy.sh: --domain-name, --hosted-zone-id and --certificate-arn go "
                           "together, with --with-sample-app\n")


def test_missing_aws_cli_is_one_line_with_the_fix():
    done = run_deploy(["--region", "eu-west-1"], {"AWS_CLI": "/nonexistent/aws"})
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert "the AWS CLI is not installed: install it" in done.stderr


def test_missing_region_is_one_line_with_the_fix(tmp_path):
    script, _ = fake_aws(tmp_path)
    done = run_deploy([], {"AWS_CLI": str(script)})
    assert done.returncode == 1
    assert done.stderr == ("deploy.sh: no AWS region set: pass --region REGION or export "
                           "AWS_REGION=REGION\n")


def test_broken_credentials_are_one_line_with_the_fix(tmp_path):
    script, _ = fake_aws(tmp_path, sts="echo 'An error occurred (InvalidClientTokenId)' >&2; exit 255")
    stack = f"creds-{uuid.uuid4().hex[:8]}"
    try:
        done = run_deploy(["--region", "eu-west-1", "--stack-name", stack], {"AWS_CLI": str(script)})
    finally:
        shutil.rmtree(ROOT / "dist" / "deploy" / stack, ignore_errors=True)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert "AWS credentials do not work (An error occurred (InvalidClientTokenId)): run " \
           "'aws configure'" in done.stderr


def test_missing_layer_build_script_says_which_file_and_what_to_do(tmp_path):
    checkout = tmp_path / "checkout"
    for part in ("cloudformation", "fis_templates", "ssm_documents", "sample_app"):
        shutil.copytree(ROOT / part, checkout / part)
    shutil.copy2(ROOT / "deploy.sh", checkout / "deploy.sh")
    script, _ = fake_aws(tmp_path)
    done = run_deploy(["--region", "eu-west-1"], {"AWS_CLI": str(script)}, cwd=checkout,
                      script=checkout / "deploy.sh")
    assert done.returncode == 1
    assert "deploy.sh: layer/build.sh is missing or not executable" in done.stderr


def test_dry_run_renders_everything_and_makes_no_aws_call(tmp_path):
    script, log = fake_aws(tmp_path)
    stack = f"dry-{uuid.uuid4().hex[:8]}"
    out = ROOT / "dist" / "deploy" / stack / "eu-west-1"
    try:
        done = run_deploy(["--dry-run", "--region", "eu-west-1", "--stack-name", stack,
                           "--with-sample-app", "--trusted-layers",
                           "arn:aws:lambda:*:111122223333:layer:powertools:*"],
                          {"AWS_CLI": str(script)})
        assert done.returncode == 0, done.stderr
        assert log.read_text() == ""                      # not even sts
        assert "would run: aws --region eu-west-1 cloudformation create-stack --stack-name " \
               f"{stack} " in done.stderr
        assert "would run: ./layer/build.sh" in done.stderr
        params = json.loads((out / f"{stack}.parameters.json").read_text())
        assert {p["ParameterKey"]: p["ParameterValue"] for p in params} == {
            "StopAlarmArn": f"{stack}-sample-app-SampleAppAlarmArn-GENERATED",
            "TargetFunctionName": f"{stack}-sample-app-HelloFunctionName-GENERATED",
            "TrustedLayerArns": "arn:aws:lambda:*:111122223333:layer:powertools:*"}
        stack_template = json.loads((out / "stack.json").read_text())
        assert "LambdaRegionalOutageTemplate" in stack_template["Resources"]
        assert json.loads((out / "sample-app.json").read_text())["Resources"]["HelloFunction"]
        requests = sorted((out / "fis").glob("*.json"))
        assert [p.stem for p in requests] == ["lambda-invocation-errors",
                                              "lambda-latency-single-function",
                                              "lambda-regional-outage"]
        for path in requests:
            request = json.loads(path.read_text())
            documents = {}
            for action in request["actions"].values():
                arn = action["parameters"].get("documentArn", "")
                key = "ExperimentDocument" if arn.endswith("Experiment") else "FaultDocument"
                documents[arn] = parameter_specs(key)
            assert fis_validation.validate_request(request, documents) == [], path.name
    finally:
        shutil.rmtree(ROOT / "dist" / "deploy" / stack, ignore_errors=True)


# --- --local against a moto server ----------------------------------------------------------

@pytest.fixture(scope="module")
def moto():
    server = MotoServer()
    yield server
    server.stop()


def _client(moto, service, region="us-east-1"):
    return boto3.client(service, endpoint_url=moto.url, region_name=region,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def test_local_deploy_creates_layer_documents_templates_alarm_and_updates_in_place(moto):
    stack = f"loc-{uuid.uuid4().hex[:8]}"
    args = ["--local", "--endpoint-url", moto.url, "--region", "us-east-1", "--stack-name", stack,
            "--with-sample-app"]
    out = ROOT / "dist" / "deploy" / stack / "us-east-1"
    try:
        first = run_deploy(args)
        assert first.returncode == 0, first.stderr[-3000:]
        cfn = _client(moto, "cloudformation")
        assert cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
        layers = _client(moto, "lambda").list_layer_versions(LayerName=f"{stack}-chaos-layer")
        assert len(layers["LayerVersions"]) == 1
        ssm = _client(moto, "ssm")
        for name in (f"{stack}-LambdaFault", f"{stack}-LambdaFaultExperiment"):
            assert ssm.describe_document(Name=name)["Document"]["DocumentType"] == "Automation"
        alarms = _client(moto, "cloudwatch").describe_alarms(
            AlarmNames=[f"{stack}-sample-app-hello-5xx"])["MetricAlarms"]
        assert alarms and alarms[0]["Threshold"] == 0.5
        functions = _client(moto, "lambda").list_functions()["Functions"]
        ours = [f for f in functions if f["FunctionName"].startswith(f"{stack}-sample-app-")]
        tags = _client(moto, "lambda").list_tags(Resource=ours[0]["FunctionArn"])["Tags"]
        assert tags["chaos:target"] == "sample-app" and tags["chaos:opt-in"] == "true"
        index = json.loads((out / "fis-templates.json").read_text())
        assert sorted(index) == ["lambda-invocation-errors", "lambda-latency-single-function",
                                 "lambda-regional-outage"]
        request = json.loads((out / "fis" / "lambda-regional-outage.json").read_text())
        assert request["stopConditions"][0]["value"] == alarms[0]["AlarmArn"]

        second = run_deploy(args)
        assert second.returncode == 0, second.stderr[-3000:]
        assert "updating stack" in second.stderr
        assert len(cfn.describe_stacks()["Stacks"]) >= 2
        again = json.loads((out / "fis-templates.json").read_text())
        assert sorted(again) == sorted(index)
        assert {v["id"] for v in again.values()}.isdisjoint({v["id"] for v in index.values()})

        gone = run_deploy(args + ["--delete"])
        assert gone.returncode == 0, gone.stderr[-3000:]
        names = {s["StackName"] for s in cfn.describe_stacks()["Stacks"]}
        assert stack not in names and f"{stack}-sample-app" not in names
        with pytest.raises(ssm.exceptions.InvalidDocument):
            ssm.describe_document(Name=f"{stack}-LambdaFault")
        assert _client(moto, "cloudwatch").describe_alarms(
            AlarmNames=[f"{stack}-sample-app-hello-5xx"])["MetricAlarms"] == []
        assert not (out / "fis-templates.json").exists()
        assert _client(moto, "lambda").list_layer_versions(
            LayerName=f"{stack}-chaos-layer")["LayerVersions"] == []
    finally:
        shutil.rmtree(ROOT / "dist" / "deploy" / stack, ignore_errors=True)


def test_local_layer_runtimes_match_the_stacks_layer_version():
    import re
    from cloudformation import cfn_yaml, stack
    line = re.search(r"^LAYER_RUNTIMES=\((.*)\)$", (ROOT / "deploy.sh").read_text(), re.M)
    layer = cfn_yaml.load(stack.STACK_TEMPLATE)["Resources"]["ChaosLayer"]["Properties"]
    assert line.group(1).split() == layer["CompatibleRuntimes"]
