"""The SSM documents: rendered from automation_handler.py, valid, consistent, and runnable."""
import json
import os
import re
import sys

import boto3
import jsonschema
import pytest
import yaml
from moto import mock_aws

import automation_handler as ah
from automation_fixtures import REGION, make_function, publish_layer
from chaos_layer import config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "ssm_documents")
sys.path.insert(0, DOCS)
import render  # noqa: E402

PUBLIC_PARAMETERS = ["FunctionName", "LayerArn", "AutomationAssumeRole", "ChaosMode", "AliasName",
                     "TargetTagKey", "TargetTagValue", "TargetSelection", "FaultType",
                     "LatencyMilliseconds", "LatencyJitterMilliseconds", "InvocationPercentage",
                     "PreventExecution", "ErrorType", "ErrorMessage", "ResponseStatusCode",
                     "ResponseBody", "Duration", "MaxTargets", "DryRun"]


def load(name):
    with open(os.path.join(DOCS, name), encoding="utf-8") as handle:
        return handle.read()


@pytest.fixture(scope="module", params=sorted(render.DOCUMENTS))
def doc(request):
    return request.param, yaml.safe_load(load(request.param))


def step_script(step):
    text = step["inputs"]["Script"]
    return render.decompress(text) if "_SOURCE" in text else text


def test_documents_equal_a_fresh_render_of_automation_handler():
    for name, kind in render.DOCUMENTS.items():
        assert load(name) == render.render(kind), f"{name} is stale: run ssm_documents/render.py"


def test_documents_fit_ssm_64_kb_limit():
    for name in render.DOCUMENTS:
        assert len(load(name).encode("utf-8")) <= 64 * 1024


def test_documents_validate_against_the_automation_schema(doc):
    with open(os.path.join(DOCS, "schema", "automation-0.3.schema.json")) as handle:
        schema = json.load(handle)
    jsonschema.validate(doc[1], schema)


def test_schema_rejects_a_misspelt_step_key():
    with open(os.path.join(DOCS, "schema", "automation-0.3.schema.json")) as handle:
        schema = json.load(handle)
    bad = yaml.safe_load(load("lambda-fault-experiment.yaml"))
    bad["mainSteps"][1]["onCancell"] = "step:DetachFault"
    with pytest.raises(jsonschema.ValidationError, match="onCancell"):
        jsonschema.validate(bad, schema)


def test_document_parameters_are_exactly_the_public_interface(doc):
    name, document = doc
    expected = [p for p in PUBLIC_PARAMETERS
                if not (name == "lambda-fault-experiment.yaml" and p == "ChaosMode")]
    assert list(document["parameters"]) == expected


def test_every_reference_names_a_declared_parameter(doc):
    _, document = doc
    text = json.dumps(document["mainSteps"]) + document.get("assumeRole", "")
    steps = {s["name"] for s in document["mainSteps"]}
    for ref in re.findall(r"{{\s*([\w.]+)\s*}}", text):
        head = ref.split(".")[0]
        assert ref in document["parameters"] or head in steps, ref


def test_every_parameter_reaches_the_script_or_the_document(doc):
    _, document = doc
    text = json.dumps(document["mainSteps"]) + document.get("assumeRole", "")
    for name in document["parameters"]:
        assert "{{ %s }}" % name in text, name


def test_parameters_constrain_values_and_defaults_satisfy_them(doc):
    _, document = doc
    for name, spec in document["parameters"].items():
        assert spec["description"], name
        if spec["type"] == "String":
            assert "allowedValues" in spec or "allowedPattern" in spec, name
        if "default" in spec and "allowedPattern" in spec:
            assert re.match(spec["allowedPattern"], str(spec["default"])), name
        if "default" in spec and "allowedValues" in spec:
            assert spec["default"] in spec["allowedValues"], name


def test_document_defaults_are_the_handler_defaults():
    document = yaml.safe_load(load("lambda-fault.yaml"))
    for p in ah.PARAMETERS:
        assert document["parameters"][p.name]["default"] == p.default
        assert document["parameters"][p.name]["type"] == p.type


def test_experiment_failure_or_cancel_of_any_step_leads_to_detach():
    document = yaml.safe_load(load("lambda-fault-experiment.yaml"))
    steps = {s["name"]: s for s in document["mainSteps"]}
    assert [s["action"] for s in document["mainSteps"]] == [
        "aws:executeScript", "aws:sleep", "aws:executeScript"]
    for name in ("AttachFault", "Wait"):
        assert steps[name]["onFailure"] == "step:DetachFault"
        assert steps[name]["onCancel"] == "step:DetachFault"
    assert steps["Wait"]["inputs"] == {"Duration": "{{ Duration }}"}
    assert steps["AttachFault"]["inputs"]["InputPayload"]["ChaosMode"] == "ENABLED"
    assert steps["DetachFault"]["inputs"]["InputPayload"]["ChaosMode"] == "DISABLED"
    assert steps["DetachFault"]["isEnd"] is True
    assert "default" not in document["parameters"]["Duration"]
    assert not re.match(document["parameters"]["Duration"]["allowedPattern"], "")


def test_both_documents_embed_the_same_script():
    single = yaml.safe_load(load("lambda-fault.yaml"))["mainSteps"][0]
    experiment = yaml.safe_load(load("lambda-fault-experiment.yaml"))["mainSteps"]
    assert step_script(single) == step_script(experiment[0]) == step_script(experiment[2])
    assert step_script(single) == render.script()


def test_rendered_script_inlines_the_layer_config_names_and_imports_nothing_of_ours():
    script = render.script()
    assert "chaos_layer" not in script and "__file__" not in script
    namespace = {"__name__": "__ssm_script__"}
    exec(compile(script, "<aws:executeScript>", "exec"), namespace)
    for name in ("FAULT_TYPE", "LATENCY_MS", "RESTORE_STATE", "EXEC_WRAPPER", "WRAPPER_PATH",
                 "AUTOMATION_VARIABLES", "DEFAULTS", "ORIGINAL_EXEC_WRAPPER", "EXPIRES_AT"):
        assert namespace[name] == getattr(config, name), name
    assert namespace["parse_bool"]("Yes") is True


def _substitute(payload, values):
    """What SSM does to InputPayload: a value that is exactly one {{ Ref }} keeps its type."""
    out = {}
    for key, value in payload.items():
        match = re.fullmatch(r"{{\s*(\w+)\s*}}", value) if isinstance(value, str) else None
        out[key] = values[match.group(1)] if match else value
    return out


def _run_step(step, values):
    namespace = {"__name__": "__ssm_script__"}
    exec(compile(step["inputs"]["Script"], "<aws:executeScript>", "exec"), namespace)
    handler = namespace[step["inputs"]["Handler"]]
    payload = handler(_substitute(step["inputs"]["InputPayload"], values),
                      {"automation:EXECUTION_ID": "test"})
    json.dumps(payload)
    outputs = {}
    for output in step["outputs"]:
        value = {"Payload": payload}
        for key in output["Selector"].split(".")[1:]:
            value = value[key]
        kind = {"String": str, "Integer": int, "MapList": list}[output["Type"]]
        assert isinstance(value, kind), output
        if output["Type"] == "MapList":
            assert all(isinstance(item, dict) for item in value)
        outputs[output["Name"]] = value
    return outputs


def _typed_defaults(document, **given):
    values = {n: s.get("default") for n, s in document["parameters"].items()}
    values.update(given)
    return values


def test_embedded_script_attaches_and_detaches_as_execute_script_runs_it():
    with mock_aws():
        lam = boto3.client("lambda", region_name=REGION)
        layer = publish_layer(lam, "lambda-chaos")
        make_function(lam, "checkout", tags={"chaos:target": "sample-app"})
        before = lam.get_function_configuration(FunctionName="checkout")["Environment"]
        document = yaml.safe_load(load("lambda-fault.yaml"))
        step = document["mainSteps"][0]
        attached = _run_step(step, _typed_defaults(
            document, LayerArn=layer, TargetTagKey="chaos:target", TargetTagValue="sample-app",
            LatencyMilliseconds=1500, PreventExecution=True))
        assert attached["TargetCount"] == 1
        assert attached["Targets"][0]["Action"] == "attached"
        assert attached["Targets"][0]["SetVariables"][config.LATENCY_MS] == "1500"
        detached = _run_step(step, _typed_defaults(
            document, LayerArn=layer, TargetTagKey="chaos:target", TargetTagValue="sample-app",
            ChaosMode="DISABLED"))
        assert detached["Targets"][0]["Action"] == "detached"
        assert lam.get_function_configuration(FunctionName="checkout")["Environment"] == before


def test_experiment_document_steps_run_from_the_compressed_script():
    with mock_aws():
        lam = boto3.client("lambda", region_name=REGION)
        layer = publish_layer(lam, "lambda-chaos")
        make_function(lam, "checkout")
        before = lam.get_function_configuration(FunctionName="checkout")["Environment"]
        document = yaml.safe_load(load("lambda-fault-experiment.yaml"))
        attach_step, _, detach_step = document["mainSteps"]
        values = _typed_defaults(document, LayerArn=layer, FunctionName="checkout",
                                 Duration="PT5M", FaultType="error")
        assert _run_step(attach_step, values)["Targets"][0]["Action"] == "attached"
        env = lam.get_function_configuration(FunctionName="checkout")["Environment"]["Variables"]
        assert env[config.FAULT_TYPE] == "error"
        assert _run_step(detach_step, values)["Targets"][0]["Action"] == "detached"
        assert lam.get_function_configuration(FunctionName="checkout")["Environment"] == before


def test_readme_names_only_parameters_and_variables_the_code_defines():
    with open(os.path.join(DOCS, "README.md"), encoding="utf-8") as handle:
        readme = handle.read()
    table = [line for line in readme.splitlines() if line.startswith("| `")]
    named = [re.match(r"\| `([^`]+)`", line).group(1) for line in table]
    assert set(named) >= set(PUBLIC_PARAMETERS)
    variables = set(re.findall(r"`((?:CHAOS|AWS_LAMBDA)_[A-Z_]+)`", readme))
    known = {getattr(config, n) for n in dir(config) if n.isupper()
             and isinstance(getattr(config, n), str)}
    assert variables <= known, variables - known
    for name in named:
        assert name in PUBLIC_PARAMETERS, name


def test_automation_role_policy_allows_every_call_the_handler_makes():
    with open(os.path.join(DOCS, "automation-role-policy.json")) as handle:
        policy = json.load(handle)
    allowed = set()
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"]
        allowed.update([actions] if isinstance(actions, str) else actions)
    with open(os.path.join(ROOT, "automation_handler.py"), encoding="utf-8") as handle:
        source = handle.read()
    waiter_operations = {"function_updated_v2": "GetFunction",
                         "published_version_active": "GetFunctionConfiguration"}
    needed = {"lambda:" + "".join(w.title() for w in op.split("_"))
              for op in re.findall(r'\.call\("([a-z_]+)"', source)}
    needed |= {"tag:" + "".join(w.title() for w in op.split("_"))
               for op in re.findall(r'\.call_tagging\("([a-z_]+)"', source)}
    needed |= {"lambda:" + waiter_operations[w] for w in re.findall(r'\.wait\("([a-z_0-9]+)"',
                                                                    source)}
    assert len(needed) == 11  # the scan found every call: keep in step with the handler
    assert needed <= allowed, needed - allowed
    assert not allowed - needed, f"policy grants more than the handler uses: {allowed - needed}"


def test_experiment_clean_up_after_a_refused_attach_leaves_another_experiment_running():
    """Experiment B's attach is refused (a function is in experiment A); B's DetachFault
    must undo only B, not end A on that function."""
    with mock_aws():
        lam = boto3.client("lambda", region_name=REGION)
        layer = publish_layer(lam, "lambda-chaos")
        make_function(lam, "checkout")
        document = yaml.safe_load(load("lambda-fault-experiment.yaml"))
        attach_step, _, detach_step = document["mainSteps"]
        assert detach_step["inputs"]["InputPayload"][ah.ONLY_THIS_EXPERIMENT] == "true"
        a = _typed_defaults(document, LayerArn=layer, FunctionName="checkout",
                            Duration="PT5M", FaultType="error")
        b = dict(a, FaultType="latency")
        _run_step(attach_step, a)
        with pytest.raises(Exception, match="different experiment"):
            _run_step(attach_step, b)
        out = _run_step(detach_step, b)
        assert out["Targets"][0]["Action"] == "other-experiment"
        env = lam.get_function_configuration(FunctionName="checkout")["Environment"]["Variables"]
        assert env[config.FAULT_TYPE] == "error"
        assert _run_step(detach_step, a)["Targets"][0]["Action"] == "detached"
