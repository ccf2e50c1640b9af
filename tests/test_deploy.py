"""deploy.sh: shellcheck-clean, one-line prerequisite failures, a dry run that calls nothing,
and a --local deploy (and re-deploy, and delete) against a moto server of the test's own."""
import json
import shutil
import subprocess
import uuid

import boto3
import pytest

from cloudformation import documents, fis_validation
from cloudformation.documents import parameter_specs
from cloudformation.stack import layer_runtimes
from tests.deploy_fixtures import BIN, ROOT, MotoServer, fake_aws, run_deploy

OPTIONS = ("--region", "--stack-name", "--bucket", "--with-sample-app", "--app-regions",
           "--target-function",
           "--domain-name", "--hosted-zone-id", "--certificate-arn", "--stop-alarm-arn",
           "--trusted-layers", "--dry-run", "--delete", "--local", "--endpoint-url", "--help",
           "--target-accounts", "--target-regions", "--target-stack", "--central-account",
           "--without-execution-role", "--create-administration-role")
# Every option that takes a value, and the example its refusal shows.
VALUE_EXAMPLES = {
    "--region": "us-east-1", "--stack-name": "lambda-chaos", "--bucket": "my-deploy-bucket",
    "--target-function": "my-function", "--app-regions": "us-east-1,eu-west-1",
    "--stop-alarm-arn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:my-slo",
    "--domain-name": "api.example.com", "--hosted-zone-id": "Z0123456789ABCDEFGHIJ",
    "--certificate-arn": "arn:aws:acm:us-east-1:123456789012:certificate/ID",
    "--trusted-layers": "'arn:aws:lambda:*:123456789012:layer:powertools:*'",
    "--endpoint-url": "http://127.0.0.1:5000",
    "--target-accounts": "111111111111,222222222222", "--target-regions": "us-east-1,eu-west-1",
    "--central-account": "111111111111"}
SKIP_MESSAGE = ("==> skipping the FIS template lambda-latency-single-function: it targets one "
                "function and none was named; pass --target-function NAME (an opted-in function, "
                "tag chaos:opt-in=true) or --with-sample-app (its /hello function)\n")
ORG_SKIP_MESSAGE = ("==> skipping the FIS template lambda-organization-outage: it runs in target "
                    "accounts and none were named; pass --target-accounts A,B (and --target-regions "
                    "R,R; each account needs the target stack: ./deploy.sh --target-stack)\n")


def test_deploy_script_passes_shellcheck():
    done = subprocess.run([str(BIN / "shellcheck"), str(ROOT / "deploy.sh")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def test_help_lists_every_option():
    done = run_deploy(["--help"])
    assert done.returncode == 0
    for option in OPTIONS:
        assert option in done.stdout


@pytest.mark.parametrize("option", sorted(VALUE_EXAMPLES))
@pytest.mark.parametrize("after", [[], ["--dry-run"]], ids=["last", "before-another-option"])
def test_an_option_without_its_value_is_one_line_with_an_example(option, after):
    done = run_deploy([option] + after)
    assert done.returncode == 1
    assert done.stderr == (f"deploy.sh: {option} needs a value, e.g. {option} "
                           f"{VALUE_EXAMPLES[option]}\n")


def test_every_option_that_takes_a_value_is_checked_for_one():
    usage = run_deploy(["--help"]).stdout
    takes_value = {word for word, value in zip(usage.split(), usage.split()[1:])
                   if word.startswith("--") and value.isupper()}
    assert takes_value == set(VALUE_EXAMPLES)


@pytest.mark.parametrize("region,message", [
    ("mars-1", "deploy.sh: region 'mars-1' does not exist (botocore "),
    ("us-est-1", "deploy.sh: region 'us-est-1' does not exist; did you mean us-west-1 or "
                 "us-east-1? (botocore "),
])
def test_dry_run_refuses_a_region_that_does_not_exist_before_rendering_anything(tmp_path,
                                                                               region, message):
    script, log = fake_aws(tmp_path)
    stack = f"mars-{uuid.uuid4().hex[:8]}"
    try:
        done = run_deploy(["--dry-run", "--region", region, "--stack-name", stack],
                          {"AWS_CLI": str(script)})
        assert done.returncode == 1
        assert done.stderr.startswith(message) and done.stderr.count("\n") == 1
        assert done.stderr.endswith("pass --region with one of them (aws ec2 describe-regions "
                                    f"lists your account's), or upgrade botocore if {region} is "
                                    "newer than it\n")
        assert log.read_text() == ""
        assert not (ROOT / "dist" / "deploy" / stack).exists()
    finally:
        shutil.rmtree(ROOT / "dist" / "deploy" / stack, ignore_errors=True)


def test_every_known_region_is_accepted_and_pseudo_regions_are_not():
    from cloudformation import regions
    known = regions.known_regions()
    assert {"us-east-1", "eu-west-1", "cn-north-1", "us-gov-west-1"} <= set(known)
    assert not [name for name in known if "global" in name]
    regions.check_region("eu-west-1")


@pytest.mark.parametrize("name,message", [
    ("bad!name", "deploy.sh: --target-function 'bad!name' is not a function name (1 to 64 "
                 "letters, digits, - or _) or an unqualified function ARN "
                 "(arn:aws:lambda:REGION:ACCOUNT:function:NAME)\n"),
    ("arn:aws:lambda:us-east-1:123456789012:function:checkout",
     "deploy.sh: --target-function arn:aws:lambda:us-east-1:123456789012:function:checkout is in "
     "us-east-1, the stack in eu-west-1; the automation changes functions of its own region "
     "only: deploy with --region us-east-1\n"),
])
def test_a_target_function_the_automation_could_not_use_is_refused(tmp_path, name, message):
    script, _ = fake_aws(tmp_path)
    done = run_deploy(["--dry-run", "--region", "eu-west-1", "--target-function", name],
                      {"AWS_CLI": str(script)})
    assert done.returncode == 1
    assert done.stderr == message


def _dry_run(tmp_path, *args):
    """A dry run of a fresh stack: (the finished process, its render folder, the stack)."""
    script, log = fake_aws(tmp_path)
    stack = f"dry-{uuid.uuid4().hex[:8]}"
    done = run_deploy(["--dry-run", "--region", "eu-west-1", "--stack-name", stack, *args],
                      {"AWS_CLI": str(script)})
    assert log.read_text() == ""
    return done, ROOT / "dist" / "deploy" / stack / "eu-west-1", stack


def test_dry_run_with_target_function_renders_the_single_function_template_for_it(tmp_path):
    done, out, stack = _dry_run(tmp_path, "--target-function", "checkout")
    try:
        assert done.returncode == 0, done.stderr
        assert SKIP_MESSAGE not in done.stderr
        assert "fis/lambda-latency-single-function.json" in done.stderr
        request = json.loads((out / "fis" / "lambda-latency-single-function.json").read_text())
        for action in request["actions"].values():
            if "documentParameters" in action["parameters"]:
                assert json.loads(action["parameters"]["documentParameters"])["FunctionName"] \
                    == "checkout"
        params = json.loads((out / f"{stack}.parameters.json").read_text())
        assert {"ParameterKey": "TargetFunctionName", "ParameterValue": "checkout"} in params
    finally:
        shutil.rmtree(out.parent, ignore_errors=True)


def test_dry_run_without_a_target_function_says_why_the_single_function_template_is_skipped(
        tmp_path):
    done, out, _ = _dry_run(tmp_path)
    try:
        assert done.returncode == 0, done.stderr
        assert SKIP_MESSAGE in done.stderr and ORG_SKIP_MESSAGE in done.stderr
        assert sorted(p.stem for p in (out / "fis").glob("*.json")) == [
            "lambda-invocation-errors", "lambda-regional-outage"]
    finally:
        shutil.rmtree(out.parent, ignore_errors=True)


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
        assert SKIP_MESSAGE not in done.stderr          # the sample app's /hello is the target
        assert "would run: aws --region eu-west-1 cloudformation create-stack --stack-name " \
               f"{stack} " in done.stderr
        assert "would run: ./layer/build.sh" in done.stderr
        params = json.loads((out / f"{stack}.parameters.json").read_text())
        assert {p["ParameterKey"]: p["ParameterValue"] for p in params} == {
            "StopAlarmArn": f"{stack}-sample-app-SampleAppAlarmArn-GENERATED",
            "TargetFunctionName": f"{stack}-sample-app-HelloFunctionName-GENERATED",
            "TrustedLayerArns": "arn:aws:lambda:*:111122223333:layer:powertools:*",
            "DashboardArn": f"arn:aws:cloudwatch::000000000000:dashboard/{stack}-sample-app-eu-west-1",
            "DeployBucket": "lambda-chaos-000000000000-eu-west-1",
            "CreateAdministrationRole": "false", "TargetAccounts": "", "TargetRegions": ""}
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
                arn = action["parameters"].get("documentArn")
                if arn:  # an aws:fis:wait starts no document
                    documents[arn] = parameter_specs(_document_key(arn))
            assert fis_validation.validate_request(request, documents) == [], path.name
    finally:
        shutil.rmtree(ROOT / "dist" / "deploy" / stack, ignore_errors=True)


def _document_key(arn):
    """Which of the stack's documents a rendered documentArn names (<stack>-<suffix>-<hash>)."""
    suffix = arn.rsplit(":document/", 1)[1].rsplit("-", 2)[-2]
    return {v: k for k, v in documents.NAME_SUFFIXES.items()}[suffix]


# --- --local against a moto server ----------------------------------------------------------

@pytest.fixture(scope="module")
def moto():
    server = MotoServer()
    yield server
    server.stop()


def _client(moto, service, region="us-east-1"):
    return boto3.client(service, endpoint_url=moto.url, region_name=region,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def _in_region(args, region):
    """The same deploy.sh arguments for another region."""
    return [region if previous == "--region" else arg
            for previous, arg in zip([None] + args[:-1], args)]


def _output(moto, stack, region, key):
    outputs = _client(moto, "cloudformation", region).describe_stacks(
        StackName=stack)["Stacks"][0]["Outputs"]
    return next(o["OutputValue"] for o in outputs if o["OutputKey"] == key)


def _health_lines(moto, app, region):
    """The health check ids a region's dashboard draws (its first widget, read in us-east-1)."""
    body = json.loads(_client(moto, "cloudwatch", region).get_dashboard(
        DashboardName=f"{app}-{region}")["DashboardBody"])
    health = body["widgets"][0]["properties"]
    assert health["region"] == "us-east-1"
    return [m[3] for m in health["metrics"]]


def test_local_deploy_creates_layer_documents_templates_alarm_and_updates_in_place(moto):
    # One stack in two regions (each local deploy costs ~50 s, so one test walks the whole
    # life): create in us-east-1, add eu-west-1, re-run us-east-1 (update in place, and its
    # dashboard then shows eu-west-1's health check), delete both.
    stack = f"loc-{uuid.uuid4().hex[:8]}"
    args = ["--local", "--endpoint-url", moto.url, "--region", "us-east-1", "--stack-name", stack,
            "--with-sample-app"]
    out = ROOT / "dist" / "deploy" / stack / "us-east-1"
    try:
        first = run_deploy(args)
        assert first.returncode == 0, first.stderr[-3000:]
        assert (f"==> no stack {stack}-sample-app in eu-west-1 yet: its health check is left off "
                "this region's dashboard") in first.stderr
        cfn = _client(moto, "cloudformation")
        assert cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
        layers = _client(moto, "lambda").list_layer_versions(LayerName=f"{stack}-chaos-layer")
        assert len(layers["LayerVersions"]) == 1
        assert layers["LayerVersions"][0]["CompatibleRuntimes"] == layer_runtimes()
        ssm = _client(moto, "ssm")
        short = documents.attachment_sha256()[:8]
        for suffix in ("LambdaFault", "LambdaFaultExperiment", "LambdaFaultOrganization"):
            name = f"{stack}-{suffix}-{short}"
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
        # the dashboard lands in moto, and the reports go to the stack's bucket with it
        cloudwatch = _client(moto, "cloudwatch")
        dashboard = cloudwatch.get_dashboard(DashboardName=f"{stack}-sample-app-us-east-1")
        body = json.loads(dashboard["DashboardBody"])
        functions = {f["FunctionName"] for f in ours if "Simulator" not in f["FunctionName"]}
        lambda_widget = next(w for w in body["widgets"]
                             if w["properties"].get("title", "").startswith("Lambda Duration"))
        assert {m[3] for m in lambda_widget["properties"]["metrics"]} == functions
        outputs = {o["OutputKey"]: o["OutputValue"] for o in cfn.describe_stacks(
            StackName=f"{stack}-sample-app")["Stacks"][0]["Outputs"]}
        assert outputs["DashboardArn"] == dashboard["DashboardArn"]
        report = request["experimentReportConfiguration"]
        assert report["dataSources"]["cloudWatchDashboards"] == [
            {"dashboardIdentifier": dashboard["DashboardArn"]}]
        bucket = report["outputs"]["s3Configuration"]["bucketName"]
        _client(moto, "s3").head_bucket(Bucket=bucket)
        rule = _client(moto, "events").describe_rule(Name=f"{stack}-sample-app-simulator")
        assert rule["State"] == "DISABLED" and rule["ScheduleExpression"] == "rate(1 minute)"

        app = f"{stack}-sample-app"
        # the second Region with a target account: its documents, created by API, are shared
        peer = run_deploy(_in_region(args, "eu-west-1") + ["--target-accounts", "111111111111"])
        assert peer.returncode == 0, peer.stderr[-3000:]
        ssm_eu = _client(moto, "ssm", "eu-west-1")
        for suffix in ("LambdaFault", "LambdaFaultExperiment", "LambdaFaultOrganization"):
            assert ssm_eu.describe_document_permission(
                Name=f"{stack}-{suffix}-{short}", PermissionType="Share")["AccountIds"] == ["111111111111"]
        checks = {region: _output(moto, app, region, "HealthCheckId")
                  for region in ("us-east-1", "eu-west-1")}
        assert _health_lines(moto, app, "eu-west-1") == [checks["us-east-1"], checks["eu-west-1"]]
        assert (f"==> the dashboard {app}-us-east-1 does not show eu-west-1's health check yet: "
                "re-run ./deploy.sh --with-sample-app --region us-east-1") in peer.stderr

        second = run_deploy(args)
        assert second.returncode == 0, second.stderr[-3000:]
        assert "updating stack" in second.stderr
        assert _health_lines(moto, app, "us-east-1") == [checks["us-east-1"], checks["eu-west-1"]]
        assert len(cfn.describe_stacks()["Stacks"]) >= 2
        again = json.loads((out / "fis-templates.json").read_text())
        assert sorted(again) == sorted(index)
        assert {v["id"] for v in again.values()}.isdisjoint({v["id"] for v in index.values()})

        assert run_deploy(_in_region(args, "eu-west-1") + ["--delete"]).returncode == 0
        gone = run_deploy(args + ["--delete"])
        assert gone.returncode == 0, gone.stderr[-3000:]
        names = {s["StackName"] for s in cfn.describe_stacks()["Stacks"]}
        assert stack not in names and f"{stack}-sample-app" not in names
        with pytest.raises(ssm.exceptions.InvalidDocument):
            ssm.describe_document(Name=f"{stack}-LambdaFault-{short}")
        assert _client(moto, "cloudwatch").describe_alarms(
            AlarmNames=[f"{stack}-sample-app-hello-5xx"])["MetricAlarms"] == []
        assert not (out / "fis-templates.json").exists()
        assert _client(moto, "lambda").list_layer_versions(
            LayerName=f"{stack}-chaos-layer")["LayerVersions"] == []
    finally:
        shutil.rmtree(ROOT / "dist" / "deploy" / stack, ignore_errors=True)


def test_local_layer_runtimes_match_the_stacks_layer_version():
    """deploy.sh --local publishes the layer with `render layer-runtimes`: the stack's list."""
    from cloudformation import stack
    layer = stack.render_stack(ROOT / "dist" / "chaos-layer.zip")["Resources"]["ChaosLayer"]
    out = subprocess.run([BIN / "python", "-m", "cloudformation.render", "layer-runtimes"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.split() == layer["Properties"]["CompatibleRuntimes"] == stack.layer_runtimes()


def test_dry_run_with_the_sample_app_shows_the_simulator_the_dashboard_and_the_reports(tmp_path):
    done, out, stack = _dry_run(tmp_path, "--with-sample-app")
    app = f"{stack}-sample-app"
    try:
        assert done.returncode == 0, done.stderr
        assert (f"==> dashboard {app}-eu-west-1: app regions us-east-1,eu-west-1; health checks: "
                f"eu-west-1 (this stack's), us-east-1 {app}-us-east-1-HealthCheckId-GENERATED "
                f"(stack {app} in us-east-1)\n") in done.stderr
        assert (f"aws events enable-rule --region eu-west-1 --name {app}-simulator") in done.stderr
        for name in ("lambda-invocation-errors", "lambda-latency-single-function",
                     "lambda-regional-outage"):
            assert (f"==> FIS report {name}: s3://{stack}-reportbucket-generated/experiment-reports/"
                    f"{name}/, pre ") in done.stderr
            assert f"dashboard arn:aws:cloudwatch::000000000000:dashboard/{app}-eu-west-1\n" in \
                done.stderr
        template = json.loads((out / "sample-app.json").read_text())
        resources = template["Resources"]
        assert resources["SimulatorFunction"]["Properties"]["Handler"] == "simulator.handler"
        assert resources["SimulatorSchedule"]["Properties"]["State"] == {"Ref": "SimulatorState"}
        body = json.loads(resources["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"])
        health = body["widgets"][0]["properties"]["metrics"]
        assert [m[3] for m in health] == [f"{app}-us-east-1-HealthCheckId-GENERATED", "${HealthCheck}"]
        assert sorted(p.name for p in (out / "sample-app-code").iterdir()) == [
            "health.py", "hello.mjs", "simulator.py"]
        request = json.loads((out / "fis" / "lambda-regional-outage.json").read_text())
        report = request["experimentReportConfiguration"]
        assert report["dataSources"]["cloudWatchDashboards"][0]["dashboardIdentifier"].endswith(
            f":dashboard/{app}-eu-west-1")
    finally:
        shutil.rmtree(out.parent, ignore_errors=True)


def test_dry_run_without_the_sample_app_reports_without_a_dashboard(tmp_path):
    done, out, _ = _dry_run(tmp_path)
    try:
        assert done.returncode == 0, done.stderr
        assert done.stderr.count("dashboard none (no --with-sample-app)") == 2
        for path in (out / "fis").glob("*.json"):
            assert "dataSources" not in json.loads(path.read_text())["experimentReportConfiguration"]
        params = {p["ParameterKey"]: p["ParameterValue"] for p in
                  json.loads(next(out.glob("dry-*.parameters.json")).read_text())}
        assert params["DashboardArn"] == ""
    finally:
        shutil.rmtree(out.parent, ignore_errors=True)


def test_app_regions_go_with_the_sample_app_and_must_exist(tmp_path):
    script, _ = fake_aws(tmp_path)
    done = run_deploy(["--dry-run", "--region", "eu-west-1", "--app-regions", "us-east-1"],
                      {"AWS_CLI": str(script)})
    assert done.returncode == 1
    assert done.stderr == ("deploy.sh: --app-regions goes with --with-sample-app (it lists the "
                           "regions the sample app runs in)\n")
    done = run_deploy(["--dry-run", "--region", "eu-west-1", "--with-sample-app",
                       "--app-regions", "us-east-1,mars-1"], {"AWS_CLI": str(script)})
    assert done.returncode == 1
    assert done.stderr.startswith("deploy.sh: --app-regions: region 'mars-1' does not exist")


def test_a_stack_name_too_long_for_the_simulators_rule_is_refused_before_anything(tmp_path):
    script, log = fake_aws(tmp_path)
    stack = "s" * 44
    done = run_deploy(["--dry-run", "--region", "eu-west-1", "--stack-name", stack,
                       "--with-sample-app"], {"AWS_CLI": str(script)})
    assert done.returncode == 1 and log.read_text() == ""
    assert done.stderr == (f"deploy.sh: stack name '{stack}' is too long for --with-sample-app: "
                           f"its simulator rule {stack}-sample-app-simulator would exceed "
                           "EventBridge's 64 characters; use at most 43 characters\n")


# --- organisation runs -----------------------------------------------------------------------

def test_dry_run_uploads_the_attachment_under_its_hash_and_passes_the_bucket(tmp_path):
    done, out, stack = _dry_run(tmp_path)
    try:
        assert done.returncode == 0, done.stderr
        sha = documents.attachment_sha256()
        assert ("would run: aws --region eu-west-1 s3 cp --quiet "
                f"{documents.attachment_path()} s3://lambda-chaos-000000000000-eu-west-1/"
                f"{stack}/attachments/{sha}/automation_handler.py") in done.stderr
        fault = json.loads((out / "fis" / "lambda-regional-outage.json").read_text())
        arns = {a["parameters"].get("documentArn") for a in fault["actions"].values()}
        assert any(arn and arn.endswith(f"-{sha[:8]}") for arn in arns)
    finally:
        shutil.rmtree(out.parent, ignore_errors=True)


def test_dry_run_shares_every_document_with_the_target_accounts(tmp_path):
    done, out, stack = _dry_run(tmp_path, "--target-accounts", "111111111111,222222222222",
                                "--target-regions", "us-east-1,eu-west-1")
    try:
        assert done.returncode == 0, done.stderr
        short = documents.attachment_sha256()[:8]
        for suffix in ("LambdaFault", "LambdaFaultExperiment", "LambdaFaultOrganization"):
            assert ("would run: aws --region eu-west-1 ssm modify-document-permission --name "
                    f"{stack}-{suffix}-{short} --permission-type Share --account-ids-to-add "
                    "111111111111 222222222222") in done.stderr
    finally:
        shutil.rmtree(out.parent, ignore_errors=True)


@pytest.mark.parametrize("args, message", [
    (["--target-accounts", "111111111111,12345"],
     "deploy.sh: --target-accounts: '12345' is not an AWS account id (12 digits, e.g. "
     "111111111111); give the ids comma-separated, without spaces\n"),
    (["--target-stack"],
     "deploy.sh: --target-stack needs --central-account ID: the 12-digit account the toolkit "
     "stack (and its documents) is in\n"),
    (["--target-stack", "--central-account", "abc"],
     "deploy.sh: --central-account 'abc' is not an AWS account id (12 digits, e.g. 111111111111)\n"),
    (["--central-account", "111111111111"],
     "deploy.sh: --central-account and --without-execution-role go with --target-stack\n"),
    (["--target-regions", "us-east-1"],
     "deploy.sh: --target-regions goes with --target-accounts (the accounts the organisation "
     "run targets)\n"),
])
def test_bad_organisation_options_are_refused_in_words(tmp_path, args, message):
    script, log = fake_aws(tmp_path)
    done = run_deploy(["--dry-run", "--region", "eu-west-1", *args], {"AWS_CLI": str(script)})
    assert (done.returncode, done.stderr) == (1, message)
    assert log.read_text() == ""


def test_dry_run_target_stack_deploys_the_layer_and_the_execution_role(tmp_path):
    done, out, stack = _dry_run(tmp_path, "--target-stack", "--central-account", "111111111111",
                                "--without-execution-role")
    try:
        assert done.returncode == 0, done.stderr
        assert ("would run: aws --region eu-west-1 cloudformation create-stack --stack-name "
                f"{stack}-target ") in done.stderr
        assert "CAPABILITY_NAMED_IAM" in done.stderr
        params = {p["ParameterKey"]: p["ParameterValue"] for p in
                  json.loads((out / f"{stack}-target.parameters.json").read_text())}
        assert params == {"CentralAccountId": "111111111111", "CreateExecutionRole": "false",
                          "TrustedLayerArns": ""}
        assert "ExecutionRole" in json.loads((out / "target-stack.json").read_text())["Resources"]
        assert "modify-document-permission" not in done.stderr
    finally:
        shutil.rmtree(out.parent, ignore_errors=True)


def test_rendered_documents_default_to_the_deployed_fault_document(tmp_path):
    import yaml
    from cloudformation import render
    lines = render.render_documents(tmp_path, "chaos", "us-east-1", "111111111111")
    short = documents.attachment_sha256()[:8]
    files = {key: (name, path) for key, name, path in (line.split() for line in lines[1:])}
    assert files["FaultDocument"][0] == f"chaos-LambdaFault-{short}"
    experiment = yaml.safe_load(open(files["ExperimentDocument"][1]))
    assert experiment["parameters"]["FaultDocumentName"]["default"] == f"chaos-LambdaFault-{short}"
    organization = yaml.safe_load(open(files["OrganizationDocument"][1]))
    assert organization["parameters"]["FaultDocumentName"]["default"] == (
        f"arn:aws:ssm:us-east-1:111111111111:document/chaos-LambdaFault-{short}")


def test_dry_run_delete_of_a_target_stack_deletes_only_it(tmp_path):
    done, out, stack = _dry_run(tmp_path, "--target-stack", "--central-account", "111111111111",
                                "--delete")
    try:
        assert done.returncode == 0, done.stderr
        deletes = [line for line in done.stderr.splitlines() if "delete-stack" in line]
        assert deletes == [f"would run: aws --region eu-west-1 cloudformation delete-stack "
                           f"--stack-name {stack}-target"]
    finally:
        shutil.rmtree(out.parent, ignore_errors=True)


def test_dry_run_with_target_accounts_renders_the_organisation_template_for_them(tmp_path):
    done, out, stack = _dry_run(tmp_path, "--target-accounts", "111111111111,222222222222",
                                "--target-regions", "us-east-1,eu-west-1")
    try:
        assert done.returncode == 0, done.stderr
        assert "skipping the FIS template lambda-organization-outage" not in done.stderr
        assert ("==> FIS template lambda-organization-outage: every tagged function in accounts "
                "111111111111,222222222222, Regions us-east-1,eu-west-1 (layer lambda-chaos-layer, "
                "execution role LambdaChaosAutomationExecution)\n") in done.stderr
        assert "fis/lambda-organization-outage.json" in done.stderr
        request = json.loads((out / "fis" / "lambda-organization-outage.json").read_text())
        (action,) = request["actions"].values()
        short = documents.attachment_sha256()[:8]
        assert action["parameters"]["documentArn"] == (
            f"arn:aws:ssm:eu-west-1:000000000000:document/{stack}-LambdaFaultOrganization-{short}")
        params = json.loads(action["parameters"]["documentParameters"])
        assert params["TargetAccounts"] == ["111111111111", "222222222222"]
        assert params["TargetRegions"] == ["us-east-1", "eu-west-1"]
        assert params["LayerArn"] == "lambda-chaos-layer"
        assert fis_validation.validate_request(
            request, {action["parameters"]["documentArn"]: parameter_specs(
                "OrganizationDocument")}) == []
        stack_params = {p["ParameterKey"]: p["ParameterValue"] for p in
                        json.loads((out / f"{stack}.parameters.json").read_text())}
        assert (stack_params["TargetAccounts"], stack_params["TargetRegions"]) == (
            "111111111111,222222222222", "us-east-1,eu-west-1")
    finally:
        shutil.rmtree(out.parent, ignore_errors=True)


def test_dry_run_organisation_regions_default_to_the_deploy_region(tmp_path):
    done, out, stack = _dry_run(tmp_path, "--target-accounts", "111111111111")
    try:
        assert done.returncode == 0, done.stderr
        request = json.loads((out / "fis" / "lambda-organization-outage.json").read_text())
        (action,) = request["actions"].values()
        assert json.loads(action["parameters"]["documentParameters"])["TargetRegions"] == [
            "eu-west-1"]
    finally:
        shutil.rmtree(out.parent, ignore_errors=True)


def test_deploy_sh_names_the_target_stacks_layer_and_role_as_the_stack_defaults_them():
    import re
    from cloudformation import cfn_yaml
    script = (ROOT / "deploy.sh").read_text()
    names = dict(re.findall(r'\b(TARGET_LAYER_NAME|EXECUTION_ROLE_NAME)="([^"]+)"', script))
    parameters = cfn_yaml.load(ROOT / "cloudformation" / "stack.yaml")["Parameters"]
    assert names == {"TARGET_LAYER_NAME": parameters["TargetLayerName"]["Default"],
                     "EXECUTION_ROLE_NAME": parameters["ExecutionRoleName"]["Default"]}
