"""Put the toolkit and the sample application into the emulator, and find what landed where.

The deploy is the user's own: `deploy.sh --local --endpoint-url URL --with-sample-app` per
region, the same script (and CloudFormation template) that deploys to a real account. This module
runs it, then discovers — only through AWS APIs of the emulator, as a user would with the console —
what the experiment needs: each region's `/health` and `/hello` functions (from the API Gateway
integrations, or failing that the handlers' module names), the chaos layer version, the SSM
documents, the stop-condition alarms, and the stack outputs (which fill the FIS templates' placeholders).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from local_emulator.errors import DeployError, TemplateError
from local_emulator.aws.fis_runner import load_template
from local_emulator.experiment.deploy_script import DEPLOY_SCRIPT, run_deploy_script
from local_emulator.experiment.organization import Organization

__all__ = ["RegionDeployment", "Deployment", "deploy", "discover", "ROUTES", "ROOT", "STACK_NAME"]

ROOT = Path(__file__).resolve().parents[2]
STACK_NAME = "lambda-chaos-local"  # deploy.sh --stack-name of every local deploy
ROUTES = ("/health", "/hello")
_FUNCTION_IN_URI = re.compile(r"function:([A-Za-z0-9_-]+)")


@dataclass
class RegionDeployment:
    """What one region holds after the deploy."""

    region: str
    routes: Dict[str, str]                       # "/health" → function name
    api_name: str                                # the REST API serving them ("" if none)
    stage: str                                   # its stage (API Gateway metrics dimension)
    layer_arn: Optional[str]
    documents: Dict[str, str]                    # name → ARN
    alarms: Dict[str, Dict[str, Any]]            # name → describe_alarms entry
    outputs: Dict[str, str]                      # CloudFormation outputs of every stack
    health_check: Optional[Dict[str, Any]] = None  # Route 53 HealthCheckConfig (HealthCheckId output)


@dataclass
class Deployment:
    regions: Dict[str, RegionDeployment]
    # An organisation-wide run's target accounts, once deployed (organization.py)
    organization: Optional[Organization] = None

    def template(self, name_or_path: str, region: str) -> Dict[str, Any]:
        """The experiment template to run in `region`: the template file users deploy (a
        folder name under fis_templates/ or a path) with its `${Placeholders}` filled from what
        was deployed. moto's FIS stores templates but cannot return them (it implements no
        Get/ListExperimentTemplates), so the file is the source, rendered as deploy.sh renders it."""
        path = Path(name_or_path)
        if not path.is_file():
            path = ROOT / "fis_templates" / name_or_path / "template.json"
        if not path.is_file():
            known = sorted(p.parent.name for p in (ROOT / "fis_templates").glob("*/template.json"))
            raise TemplateError(f"no experiment template {name_or_path!r}; use one of "
                                f"{', '.join(known)} or a path to a template.json")
        return load_template(path, self.placeholder_values(region))

    def placeholder_values(self, region: str) -> Dict[str, str]:
        """Values for the templates' placeholders, from the stack outputs and discovery."""
        here = self.regions[region]
        values = dict(here.outputs)
        if here.layer_arn:
            values.setdefault("LayerArn", here.layer_arn)
        for name, arn in here.documents.items():
            values.setdefault(_document_kind(name), arn)
        if here.alarms:
            values.setdefault("StopAlarmArn", next(iter(here.alarms.values()))["AlarmArn"])
        if "/hello" in here.routes:
            values.setdefault("TargetFunctionName", here.routes["/hello"])
        if self.organization is not None:
            # the run's own accounts, the central one included (the stack's TargetAccounts
            # output lists only the accounts its documents are shared with)
            values.update(self.organization.placeholder_values())
        return values


def _document_kind(name: str) -> str:
    """The placeholder a deployed document fills, from its name (`<stack>-LambdaFault-<hash>`,
    `…-LambdaFaultExperiment-…`, `…-LambdaFaultOrganization-…`)."""
    lowered = name.lower()
    if "organization" in lowered:
        return "OrganizationDocumentArn"
    return "ExperimentDocumentArn" if "experiment" in lowered else "FaultDocumentArn"


def deploy(endpoint_url: str, regions: Sequence[str], env: Mapping[str, str], log_dir: Path,
           stack_name: str = STACK_NAME, timeout_s: float = 600.0,
           target_accounts: Sequence[str] = ()) -> None:
    """Run `deploy.sh --local … --with-sample-app` once per region; raise DeployError on failure.
    `target_accounts`: the other accounts an organisation run targets (`--target-accounts`:
    the documents are shared with them, as SSM requires of a runbook another account runs)."""
    if not DEPLOY_SCRIPT.is_file():
        raise DeployError(f"{DEPLOY_SCRIPT} does not exist; the local experiment deploys with it "
                          "(it comes with the FIS templates and deploy work)")
    log_dir.mkdir(parents=True, exist_ok=True)
    organization = ["--target-accounts", ",".join(target_accounts)] if target_accounts else []
    for region in regions:
        run_deploy_script(["--local", "--endpoint-url", endpoint_url, "--region", region,
                           "--stack-name", stack_name, "--with-sample-app", *organization],
                          {**env, "AWS_DEFAULT_REGION": region, "AWS_REGION": region},
                          log_dir / f"deploy-{region}.log", f"for {region}", timeout_s)


def discover(aws: Any, regions: Sequence[str]) -> Deployment:
    """Find, through the emulator's APIs, what the experiment needs in each region."""
    found = {region: _discover_region(aws, region) for region in regions}
    for region, here in found.items():
        missing = [route for route in ROUTES if route not in here.routes]
        if missing:
            raise DeployError(f"no function serves {', '.join(missing)} in {region}; deploy the "
                              "sample application (deploy.sh --local --with-sample-app)")
    _complete_dashboards(aws, found)
    return Deployment(found)


def _complete_dashboards(aws: Any, found: Mapping[str, RegionDeployment]) -> None:
    """Give each region's dashboard every region's health check, as re-running deploy.sh for
    the regions deployed first would (deploy.sh reads the other regions' HealthCheckId from
    their stacks, so the first region deployed cannot see the later ones). The body comes from
    the one definition, sample_app/dashboard.py, with the deployed names, ids and alarm."""
    from sample_app import dashboard

    checks = {r: here.outputs["HealthCheckId"] for r, here in found.items()
              if here.outputs.get("HealthCheckId")}
    for region, here in found.items():
        name = here.outputs.get("DashboardName")
        alarm = next((a for a in here.alarms.values() if a["AlarmName"].endswith("-hello-5xx")), None)
        if not name or alarm is None:
            continue  # no sample app dashboard here: nothing to complete
        body = dashboard.dashboard_body(
            region=region, app_regions=list(found), health_checks=checks,
            functions=[here.routes["/health"], here.routes["/hello"]],
            alarm=dashboard.StopAlarm.from_metric_alarm(alarm))
        aws.client("cloudwatch", region).put_dashboard(
            DashboardName=name, DashboardBody=json.dumps(body, separators=(",", ":")))


def _discover_region(aws: Any, region: str) -> RegionDeployment:
    lam = aws.client("lambda", region)
    functions = [f for page in lam.get_paginator("list_functions").paginate() for f in page["Functions"]]
    routes, api_name, stage = _routes_from_api_gateway(aws, region)
    for route in ROUTES:
        if route not in routes:
            module = route.strip("/")
            match = [f["FunctionName"] for f in functions
                     if f.get("Handler", "").split(".")[0] == module]
            if len(match) == 1:
                routes[route] = match[0]
    layers = [layer for layer in lam.list_layers().get("Layers", [])
              if "chaos" in layer["LayerName"].lower()]
    layer_arn = layers[0]["LatestMatchingVersion"]["LayerVersionArn"] if layers else None
    ssm = aws.client("ssm", region)
    documents = {d["Name"]: f"arn:aws:ssm:{region}:{_account(aws)}:document/{d['Name']}"
                 for page in ssm.get_paginator("list_documents").paginate(
                     Filters=[{"Key": "Owner", "Values": ["Self"]},
                              {"Key": "DocumentType", "Values": ["Automation"]}])
                 for d in page["DocumentIdentifiers"]}
    alarms = {a["AlarmName"]: a for a in aws.client("cloudwatch", region).describe_alarms()["MetricAlarms"]}
    outputs = {}
    for stack in aws.client("cloudformation", region).describe_stacks().get("Stacks", []):
        for output in stack.get("Outputs", []):
            outputs[output["OutputKey"]] = output["OutputValue"]
    return RegionDeployment(region, routes, api_name, stage, layer_arn, documents, alarms, outputs,
                            _health_check(aws, outputs.get("HealthCheckId")))


def _health_check(aws: Any, health_check_id: Optional[str]) -> Optional[Dict[str, Any]]:
    """The deployed Route 53 health check's configuration (interval, threshold, path)."""
    if not health_check_id:
        return None
    try:
        return aws.client("route53").get_health_check(HealthCheckId=health_check_id)[
            "HealthCheck"]["HealthCheckConfig"]
    except Exception:  # noqa: BLE001 - not deployed: the experiment uses Route 53's defaults
        return None


def _routes_from_api_gateway(aws: Any, region: str) -> Tuple[Dict[str, str], str, str]:
    """`/health` and `/hello` (also under a prefix such as `/api`) → the integrated function,
    with the REST API's name and first stage (the dimensions of its CloudWatch metrics)."""
    client = aws.client("apigateway", region)
    for api in client.get_rest_apis().get("items", []):
        routes: Dict[str, str] = {}
        for resource in client.get_resources(restApiId=api["id"]).get("items", []):
            route = next((r for r in ROUTES if resource.get("path", "").endswith(r)), None)
            if route is None:
                continue
            for method in (resource.get("resourceMethods") or {}):
                try:
                    uri = client.get_integration(restApiId=api["id"], resourceId=resource["id"],
                                                 httpMethod=method).get("uri", "")
                except Exception:  # noqa: BLE001 - a method without integration is not a route
                    continue
                match = _FUNCTION_IN_URI.search(uri)
                if match:
                    routes[route] = match.group(1)
        if routes:
            stages = client.get_stages(restApiId=api["id"]).get("item", [])
            return routes, api["name"], stages[0]["stageName"] if stages else "prod"
    return {}, "", "prod"


def _account(aws: Any) -> str:
    try:
        return aws.client("sts").get_caller_identity()["Account"]
    except Exception:  # noqa: BLE001 - moto's default account
        return "123456789012"
