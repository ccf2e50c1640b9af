"""An organisation-wide run on the embedded AWS: the central account and a second, target one.

The organisation document (ssm_documents/lambda-fault-organization.yaml) runs the fault
document in every target account and Region, as the execution role of that account. The
central deploy (`deploy.sh --local --target-accounts`) shares its documents with the other
accounts, as SSM requires of a custom runbook another account runs. Beyond that, an
organisation run needs, in every target account (the central one too, so the run reaches the
sample app):

1. the target stack (the layer under a fixed name and the execution role), deployed with the
   real `deploy.sh --target-stack --central-account ID`, run with that account's credentials
   (accounts.py: moto keys the account off an assumed role's credentials);
2. the layer under that fixed name (the stack output `LayerName`, which the run passes as
   LayerArn): moto 5.2.1's CloudFormation ignores `AWS::Lambda::LayerVersion`'s `LayerName`
   and names the layer after the stack, so the stack's own version is published once more
   under that name, from the zip deploy.sh uploaded (found by its hash in the account's S3);
3. in every account but the central one, a small fleet: the sample app's two functions (its
   handlers, runtimes, timeouts and tags), each as a team would have it — its own variables,
   one with its own exec wrapper and a layer, one with an alias on weighted routing — so that
   the exact restore is checked on more than bare functions. No API Gateway or Route 53 sends
   them traffic (the central account's app carries the load, as in a single-account run).
"""
from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Sequence

from local_emulator.aws.accounts import DEFAULT_ACCOUNT, account_client, account_env
from local_emulator.errors import DeployError
from local_emulator.experiment.deploy_script import run_deploy_script

__all__ = ["Organization", "TARGET_ACCOUNT", "is_organization_template", "deploy_organization"]

ROOT = Path(__file__).resolve().parents[2]
# The second account of a local organisation run (the first is the central one, moto's default).
TARGET_ACCOUNT = "111111111111"
# What tells an organisation-wide template from a single-account one: it names the accounts.
_ORGANIZATION_MARKER = "TargetAccounts"
# The sample app's two handlers, as deploy.sh stages them for its functions.
_SAMPLE_HANDLERS = ("health.py", "hello.mjs")
# A layer a team's function already carries (the fleet's; detach must keep it and its order).
_TEAM_LAYER = "team-observability"


@dataclass
class Organization:
    """What an organisation run was given: accounts, Regions, and the names the run passes."""

    central_account: str
    accounts: List[str]                    # the central one first
    regions: List[str]
    layer_name: str                        # the target stack's LayerName output
    execution_role_name: str               # its execution role (the document's ExecutionRoleName)
    fleet: Dict[str, List[str]] = field(default_factory=dict)  # "account/region" → function names

    def placeholder_values(self) -> Dict[str, str]:
        """The organisation template's placeholders that only the organisation knows."""
        return {"TargetAccounts": ",".join(self.accounts), "TargetRegions": ",".join(self.regions),
                "TargetLayerName": self.layer_name, "ExecutionRoleName": self.execution_role_name}


def is_organization_template(path: Path) -> bool:
    """Whether the template file runs in several accounts (it names TargetAccounts)."""
    return _ORGANIZATION_MARKER in Path(path).read_text(encoding="utf-8")


def deploy_organization(aws: Any, *, regions: Sequence[str], app_function: str,
                        log_dir: Path, stack_name: str,
                        accounts: Sequence[str] = (DEFAULT_ACCOUNT, TARGET_ACCOUNT),
                        timeout_s: float = 600.0) -> Organization:
    """Steps 1-3 of the module docstring in every account of `accounts` (the central first)
    and Region of `regions`; `app_function` names the central sample app's /health function
    in the first of `regions` (the fleet copies its tags, timeout and memory). Raises
    DeployError in words."""
    central = accounts[0]
    template = _app_function(aws, central, regions[0], app_function)
    outputs: Dict[str, str] = {}
    fleet: Dict[str, List[str]] = {}
    for account in accounts:
        for index, region in enumerate(regions):
            outputs = _deploy_target_stack(aws, account, region, central, log_dir, stack_name,
                                           first_region=index == 0, timeout_s=timeout_s)
            _publish_named_layer(aws, account, region, f"{stack_name}-target", outputs)
            if account != central:
                fleet[f"{account}/{region}"] = _deploy_fleet(aws, account, region, template)
    return Organization(central, list(accounts), list(regions), outputs["LayerName"],
                        _role_name(outputs), fleet)


def _deploy_target_stack(aws: Any, account: str, region: str, central: str, log_dir: Path,
                         stack_name: str, *, first_region: bool, timeout_s: float) -> Dict[str, str]:
    """`deploy.sh --target-stack` as that account's operator; returns the stack's outputs. The
    execution role is global to an account, so only its first Region creates it."""
    arguments = ["--target-stack", "--central-account", central, "--endpoint-url", aws.endpoint_url,
                 "--region", region, "--stack-name", stack_name]
    if not first_region:
        arguments.append("--without-execution-role")
    run_deploy_script(arguments, account_env(aws, account, region),
                      Path(log_dir) / f"deploy-target-{account}-{region}.log",
                      f"--target-stack for account {account} in {region}", timeout_s)
    stack = account_client(aws, account, "cloudformation", region).describe_stacks(
        StackName=f"{stack_name}-target")["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def _role_name(outputs: Mapping[str, str]) -> str:
    """The execution role's name, from the ARN the target stack outputs."""
    return outputs["ExecutionRoleArn"].rsplit("/", 1)[-1]


def _publish_named_layer(aws: Any, account: str, region: str, stack_name: str,
                         outputs: Mapping[str, str]) -> str:
    """Publish the stack's layer version again under the stack's LayerName (step 2 of the
    module docstring); returns the new version's ARN. moto answers the stack's `LayerArn`
    output and its resource with no ARN, and names the layer `<stack>-ChaosLayer-<random>`
    (as it names any resource without a name), so the layer is found by that name. Raises
    DeployError when it is not there, or the zip deploy.sh uploaded is not in the account's S3."""
    lam = account_client(aws, account, "lambda", region)
    layers = [layer for layer in lam.list_layers().get("Layers", [])
              if layer["LayerName"].startswith(f"{stack_name}-")]
    if not layers:
        raise DeployError(f"deploy.sh --target-stack left no layer of stack {stack_name} in "
                          f"account {account}, {region}: see its log")
    latest = layers[0]["LatestMatchingVersion"]
    stack_layer = lam.get_layer_version(LayerName=layers[0]["LayerName"],
                                        VersionNumber=int(latest["Version"]))
    bucket, key = _find_upload(aws, account, region, stack_layer["Content"])
    return lam.publish_layer_version(
        LayerName=outputs["LayerName"], Description=stack_layer.get("Description", ""),
        Content={"S3Bucket": bucket, "S3Key": key},
        CompatibleRuntimes=latest.get("CompatibleRuntimes") or [],
        CompatibleArchitectures=stack_layer.get("CompatibleArchitectures") or ["x86_64", "arm64"]
    )["LayerVersionArn"]


def _find_upload(aws: Any, account: str, region: str, content: Mapping[str, Any]):
    """(bucket, key) of the object in the account's S3 whose bytes are the layer version's
    (same size, same CodeSha256): what `aws cloudformation package` uploaded for the stack."""
    s3 = account_client(aws, account, "s3", region)
    for bucket in s3.list_buckets().get("Buckets", []):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket["Name"]):
            for item in page.get("Contents", []):
                if item["Size"] != content.get("CodeSize"):
                    continue
                data = s3.get_object(Bucket=bucket["Name"], Key=item["Key"])["Body"].read()
                if base64.b64encode(hashlib.sha256(data).digest()).decode() == content["CodeSha256"]:
                    return bucket["Name"], item["Key"]
    raise DeployError(f"the target stack's layer in account {account}, {region} "
                      f"({content.get('CodeSha256')}) is not in that account's S3; deploy.sh "
                      "--target-stack uploads it there: see its log")


def _app_function(aws: Any, account: str, region: str, name: str) -> Dict[str, Any]:
    """The sample app's function the fleet is modelled on: its configuration and tags."""
    lam = account_client(aws, account, "lambda", region)
    configuration = lam.get_function_configuration(FunctionName=name)
    return {"configuration": configuration,
            "tags": lam.list_tags(Resource=configuration["FunctionArn"]).get("Tags", {})}


def _deploy_fleet(aws: Any, account: str, region: str, app_function: Mapping[str, Any]) -> List[str]:
    """The sample app's two functions in `account` (step 3 of the module docstring); returns
    their names. Re-running keeps the functions already there."""
    lam = account_client(aws, account, "lambda", region)
    iam = account_client(aws, account, "iam", region)
    role = _function_role(iam)
    code = _handlers_zip()
    team_layer = lam.publish_layer_version(
        LayerName=_TEAM_LAYER, Content={"ZipFile": _team_layer_zip()},
        CompatibleRuntimes=["python3.12", "nodejs22.x"])["LayerVersionArn"]
    # the app's own tags; the aws: ones are CloudFormation's, which no caller may set
    tags = {k: v for k, v in app_function["tags"].items() if not k.startswith("aws:")}
    base = app_function["configuration"]
    functions = {
        "orders-health": dict(Runtime="python3.12", Handler="health.handler",
                              Environment={"Variables": {"TABLE_NAME": "orders",
                                                         "AWS_LAMBDA_EXEC_WRAPPER": "/opt/team-wrapper"}},
                              Layers=[team_layer]),
        "orders-hello": dict(Runtime="nodejs22.x", Handler="hello.handler",
                             Environment={"Variables": {"GREETING": "Hello", "LOG_LEVEL": "info"}}),
    }
    for name, spec in functions.items():
        try:
            lam.get_function(FunctionName=name)
            continue
        except lam.exceptions.ResourceNotFoundException:
            pass
        lam.create_function(FunctionName=name, Role=role, Code={"ZipFile": code},
                            Timeout=int(base.get("Timeout", 10)), MemorySize=int(base.get("MemorySize", 128)),
                            Tags=tags, **spec)
    _alias_on_weighted_routing(lam, "orders-hello")
    return sorted(functions)


def _function_role(iam: Any) -> str:
    """The fleet's execution role (created once per account)."""
    name = "orders-function"
    try:
        return iam.get_role(RoleName=name)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        return iam.create_role(RoleName=name, AssumeRolePolicyDocument=(
            '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":'
            '{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}'))["Role"]["Arn"]


def _alias_on_weighted_routing(lam: Any, name: str) -> None:
    """`live` on version 2, 10 % of it on version 1: a canary release in progress."""
    if lam.list_aliases(FunctionName=name).get("Aliases"):
        return
    first = lam.publish_version(FunctionName=name)["Version"]
    lam.update_function_configuration(FunctionName=name, Description="release 2")
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    second = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=second,
                     RoutingConfig={"AdditionalVersionWeights": {first: 0.1}})


def _handlers_zip() -> bytes:
    """The sample app's handlers in one zip, as deploy.sh stages its functions' code."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for handler in _SAMPLE_HANDLERS:
            archive.write(ROOT / "sample_app" / handler, handler)
    return buffer.getvalue()


def _team_layer_zip() -> bytes:
    """The team's own layer: an exec wrapper that only runs the runtime."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("team-wrapper")
        info.external_attr = 0o755 << 16
        archive.writestr(info, '#!/bin/sh\nexec "$@"\n')
    return buffer.getvalue()

