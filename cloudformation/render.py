"""Command line used by deploy.sh: render the stacks, the FIS requests and the alarms.

    python -m cloudformation.render stack      --out F --layer-zip Z [--local]
    python -m cloudformation.render target-stack --out F --layer-zip Z
    python -m cloudformation.render documents  --out-dir D --stack S --region R --account A
    python -m cloudformation.render sample-app --out F --code-dir D --region R
                                               [--app-regions R,R…] [--health-check R=ID…] [--local]
    python -m cloudformation.render fis        --out-dir D --outputs F… [--set KEY=VALUE…]
    python -m cloudformation.render alarms     --template F --out-dir D --names F
    python -m cloudformation.render function-tags --template F --names F
    python -m cloudformation.render region     NAME   (exit 1 unless botocore knows the region)
    python -m cloudformation.render layer-runtimes    (the layer version's CompatibleRuntimes)

Each prints what it wrote; any problem is one line on stderr naming the value and the fix, and
exit status 1 (never a traceback).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import botocore.session
import yaml

from . import cfn_yaml, fis, fis_validation, regions, stack, target
from . import documents
from .documents import REPO_ROOT, parameter_specs
from .errors import DeployError, TemplateInvalidError

SAMPLE_APP = REPO_ROOT / "sample_app"
# /health in Python, /hello in Node.js, the customer simulator in Python (one package for all).
SAMPLE_HANDLERS = ("health.py", "hello.mjs", "simulator.py")
SAMPLE_FUNCTIONS = ("HealthFunction", "HelloFunction")  # the app's own, on the dashboard


def render_sample_app(code_dir: Path, local: bool = False, region: str = "us-east-1",
                      app_regions: Sequence[str] = (),
                      health_checks: Optional[Mapping[str, str]] = None) -> dict:
    """The sample app's template with `Code` pointing at a folder holding only the handlers
    (copied with their times, so an unchanged app packages to the same zip and S3 key) and the
    dashboard's body from sample_app/dashboard.py.

    `region` is the stack's region, `app_regions` every region the app runs in and
    `health_checks` the other regions' health check ids (this region's is the stack's own).
    """
    missing = [name for name in SAMPLE_HANDLERS if not (SAMPLE_APP / name).is_file()]
    if missing:
        raise DeployError(f"sample_app/{missing[0]} is missing: the sample app's functions are "
                          f"packaged from {', '.join(SAMPLE_HANDLERS)}; restore it from the "
                          f"repository")
    code_dir.mkdir(parents=True, exist_ok=True)
    for name in SAMPLE_HANDLERS:
        shutil.copy2(SAMPLE_APP / name, code_dir / name)
    template = cfn_yaml.load(SAMPLE_APP / "template.yaml")
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Lambda::Function":
            resource["Properties"]["Code"] = str(code_dir.resolve())
    body = sample_dashboard_body(template, region, app_regions, health_checks or {})
    template["Resources"]["Dashboard"]["Properties"]["DashboardBody"] = {
        "Fn::Sub": json.dumps(body, separators=(",", ":"))}
    return stack.strip_for_local(template) if local else template


def sample_dashboard_body(template: Mapping[str, Any], region: str, app_regions: Sequence[str],
                          health_checks: Mapping[str, str]) -> dict:
    """dashboard.dashboard_body() with this stack's own values as `${…}` references of the
    template (function names, health check, the stop alarm: read from its HelloErrorsAlarm)."""
    from sample_app import dashboard  # reads layer/settings.json: only when the app is rendered
    alarm = template["Resources"]["HelloErrorsAlarm"]["Properties"]
    name = _sub_text(alarm["AlarmName"])
    stop = dashboard.StopAlarm(
        arn="arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:" + name,
        namespace=alarm["Namespace"], metric=alarm["MetricName"],
        dimensions=tuple((d["Name"], _sub_text(d["Value"])) for d in alarm["Dimensions"]),
        stat=alarm["Statistic"], period=int(alarm["Period"]), threshold=float(alarm["Threshold"]),
        name=name)
    checks = {r: i for r, i in health_checks.items() if r != region}
    checks[region] = "${HealthCheck}"
    return dashboard.dashboard_body(
        region=region, app_regions=list(app_regions) or [region], health_checks=checks,
        functions=[f"${{{logical}}}" for logical in SAMPLE_FUNCTIONS], alarm=stop)


def _sub_text(value: Any) -> str:
    """A literal or a one-string Fn::Sub, as text for the dashboard's own Fn::Sub."""
    if isinstance(value, dict) and isinstance(value.get("Fn::Sub"), str):
        return value["Fn::Sub"]
    if isinstance(value, str):
        return value
    raise ValueError(f"{value!r} cannot go into the dashboard body; write it as a literal or "
                     f"a one-string !Sub")


def fis_values(outputs: Sequence[Sequence[Mapping[str, str]]],
               overrides: Mapping[str, str]) -> Dict[str, str]:
    """Placeholder values: the stacks' outputs (describe-stacks lists), then the overrides."""
    values: Dict[str, str] = {}
    for listing in outputs:
        for output in listing or []:
            values[output["OutputKey"]] = output["OutputValue"]
    values.update({k: v for k, v in overrides.items() if v})
    return values


def render_fis_requests(values: Mapping[str, str]) -> Dict[str, dict]:
    """Every template whose placeholders all have values, rendered and checked; a template that
    lacks only a fis.TEMPLATE_REQUIRES value is skipped (no target function, no target
    accounts were given)."""
    specs = {values.get(f"{key}Arn", ""): parameter_specs(key)
             for key in documents.present_documents()}
    one_execution = frozenset(values[key] for key in ("ExperimentDocumentArn",
                                                      "OrganizationDocumentArn") if values.get(key))
    rendered: Dict[str, dict] = {}
    for name in fis.template_names():
        template = fis.load_template(name)
        if fis.unmet_requirements(template, values):
            continue
        request = fis.render_request(template, values, name=name)
        problems = fis_validation.validate_request(request, specs) + fis_validation.house_rules(
            request, frozenset({values["FaultDocumentArn"]}), one_execution)
        if problems:
            raise TemplateInvalidError(name, problems)
        rendered[name] = request
    return rendered


def render_alarms(template: Mapping[str, object], names: Mapping[str, str]) -> Dict[str, dict]:
    """PutMetricAlarm inputs for the template's AWS::CloudWatch::Alarm resources (conditions
    honoured), intrinsics evaluated over `names` (parameters, pseudo parameters)."""
    resolver = cfn_yaml.Resolver(_with_defaults(template, names), template.get("Conditions", {}))
    shape = botocore.session.get_session().get_service_model("cloudwatch") \
        .operation_model("PutMetricAlarm").input_shape
    alarms: Dict[str, dict] = {}
    for logical, resource in template["Resources"].items():
        if resource["Type"] != "AWS::CloudWatch::Alarm":
            continue
        if "Condition" in resource and not resolver.condition(resource["Condition"]):
            continue
        alarms[logical] = _coerce(resolver.value(resource["Properties"]), shape)
    return alarms


def render_function_tags(template: Mapping[str, object],
                         names: Mapping[str, str]) -> Dict[str, Dict[str, str]]:
    """Logical id -> tags of each AWS::Lambda::Function, values evaluated: moto's CloudFormation
    drops a function's Tags, and the tag-targeted experiments find functions by them."""
    resolver = cfn_yaml.Resolver(_with_defaults(template, names), template.get("Conditions", {}))
    tags: Dict[str, Dict[str, str]] = {}
    for logical, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Lambda::Function" and resource["Properties"].get("Tags"):
            tags[logical] = {str(resolver.value(t["Key"])): str(resolver.value(t["Value"]))
                             for t in resource["Properties"]["Tags"]}
    return tags


def _with_defaults(template: Mapping[str, object], names: Mapping[str, str]) -> Dict[str, object]:
    defaults = {key: spec["Default"] for key, spec in template.get("Parameters", {}).items()
                if "Default" in spec}
    defaults = {k: (",".join(v) if isinstance(v, list) else v) for k, v in defaults.items()}
    return {**defaults, **names}


def _coerce(value, shape):
    """CloudFormation gives numbers as strings (a Ref to a Number parameter); the API wants
    them typed: follow the PutMetricAlarm shape."""
    if shape.type_name == "structure" and isinstance(value, dict):
        return {k: _coerce(v, shape.members[k]) for k, v in value.items() if k in shape.members}
    if shape.type_name == "list" and isinstance(value, list):
        return [_coerce(v, shape.member) for v in value]
    if shape.type_name == "integer":
        return int(value)
    if shape.type_name == "double":
        return float(value)
    return value


def render_documents(out_dir: Path, stack_name: str, region: str, account: str) -> List[str]:
    """What deploy.sh needs to create or share the documents itself (--local, --dry-run and
    the sharing): lines 'attachment FILE S3KEY' and 'KEY NAME FILE' (the document's content
    with the stack's values in its FaultDocumentName defaults, as the stack renders them)."""
    sha = documents.attachment_sha256()
    lines = [f"attachment {documents.attachment_path()} "
             f"{documents.attachment_key(stack_name, sha)}"]
    names = {key: documents.document_name(key, stack_name, sha) for key in documents.NAME_SUFFIXES}
    fault_arn = f"arn:aws:ssm:{region}:{account}:document/{names['FaultDocument']}"
    out_dir.mkdir(parents=True, exist_ok=True)
    for key in documents.present_documents():
        content = documents.with_fault_document(key, documents.load_document(key),
                                                names["FaultDocument"], fault_arn)
        path = out_dir / documents.DOCUMENTS[key]
        path.write_text(yaml.safe_dump(content, sort_keys=False, width=100), encoding="utf-8")
        lines.append(f"{key} {names[key]} {path}")
    return lines


def _write(path: Path, content: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=1) + "\n", encoding="utf-8")
    print(path)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cloudformation.render", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_stack = sub.add_parser("stack", help="the toolkit stack template (JSON)")
    p_stack.add_argument("--out", type=Path, required=True)
    p_stack.add_argument("--layer-zip", type=Path, required=True)
    p_stack.add_argument("--local", action="store_true")
    p_target = sub.add_parser("target-stack", help="the target-account stack template (JSON)")
    p_target.add_argument("--out", type=Path, required=True)
    p_target.add_argument("--layer-zip", type=Path, required=True)
    p_docs = sub.add_parser("documents", help="the documents' names, contents and attachment")
    p_docs.add_argument("--out-dir", type=Path, required=True)
    p_docs.add_argument("--stack", required=True)
    p_docs.add_argument("--region", required=True)
    p_docs.add_argument("--account", required=True)
    p_app = sub.add_parser("sample-app", help="the sample application's template (JSON)")
    p_app.add_argument("--out", type=Path, required=True)
    p_app.add_argument("--code-dir", type=Path, required=True)
    p_app.add_argument("--local", action="store_true")
    p_app.add_argument("--region", default="us-east-1", help="the stack's region")
    p_app.add_argument("--app-regions", default="",
                       help="comma-separated: every region the app runs in (the dashboard's)")
    p_app.add_argument("--health-check", action="append", default=[], metavar="REGION=ID",
                       help="another region's health check id (its stack's HealthCheckId)")
    p_fis = sub.add_parser("fis", help="CreateExperimentTemplate requests, validated")
    p_fis.add_argument("--out-dir", type=Path, required=True)
    p_fis.add_argument("--outputs", type=Path, nargs="*", default=[],
                       help="files holding describe-stacks Outputs lists")
    p_fis.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p_alarms = sub.add_parser("alarms", help="PutMetricAlarm inputs for a template's alarms")
    p_alarms.add_argument("--template", type=Path, required=True)
    p_alarms.add_argument("--out-dir", type=Path, required=True)
    p_alarms.add_argument("--names", type=Path, required=True,
                          help="JSON object: parameter and pseudo parameter values")
    p_tags = sub.add_parser("function-tags", help="--local: each function's tags, one per line")
    p_tags.add_argument("--template", type=Path, required=True)
    p_tags.add_argument("--names", type=Path, required=True)
    p_region = sub.add_parser("region", help="check that a region exists (botocore's list)")
    p_region.add_argument("name")
    sub.add_parser("layer-runtimes", help="--local: the layer version's runtimes, one line")
    args = parser.parse_args(argv)
    try:
        if args.command == "region":
            regions.check_region(args.name)
        elif args.command == "layer-runtimes":
            print(" ".join(stack.layer_runtimes()))
        elif args.command == "stack":
            _write(args.out, stack.render_stack(args.layer_zip, local=args.local))
        elif args.command == "target-stack":
            _write(args.out, target.render_target_stack(args.layer_zip))
        elif args.command == "documents":
            print("\n".join(render_documents(args.out_dir, args.stack, args.region, args.account)))
        elif args.command == "sample-app":
            checks = dict(item.split("=", 1) for item in args.health_check)
            _write(args.out, render_sample_app(
                args.code_dir, local=args.local, region=args.region,
                app_regions=[r for r in args.app_regions.split(",") if r],
                health_checks={r: i for r, i in checks.items() if i}))
        elif args.command == "fis":
            overrides = dict(item.split("=", 1) for item in args.set)
            listings = [json.loads(path.read_text() or "[]") for path in args.outputs]
            for name, request in render_fis_requests(fis_values(listings, overrides)).items():
                _write(args.out_dir / f"{name}.json", request)
        elif args.command == "function-tags":
            tags = render_function_tags(json.loads(args.template.read_text()),
                                        json.loads(args.names.read_text()))
            for logical, mapping in tags.items():
                print(f"{logical} {json.dumps(mapping, separators=(',', ':'))}")
        elif args.command == "alarms":
            names = json.loads(args.names.read_text())
            template = json.loads(args.template.read_text())
            for logical, alarm in render_alarms(template, names).items():
                _write(args.out_dir / f"{logical}.json", alarm)
    except (DeployError, ValueError, KeyError, OSError) as exc:
        message = str(exc) if not isinstance(exc, KeyError) else f"missing value {exc}"
        print(f"render {args.command}: {message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
