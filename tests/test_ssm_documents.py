"""The SSM documents: rendered from automation_handler.py, valid, consistent, and runnable."""
import hashlib
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
                     "ResponseBody", "Duration", "MaxTargets", "OnlyThisExperiment",
                     "RequestsPerSecond", "DryRun"]
ORGANIZATION = ["TargetAccounts", "TargetRegions", "ExecutionRoleName",
                "TargetLocationMaxConcurrency", "TargetLocationMaxErrors"]
SYSTEM_VARIABLES = {"automation:EXECUTION_ID", "global:ACCOUNT_ID", "global:REGION"}


def load(name):
    with open(os.path.join(DOCS, name), encoding="utf-8") as handle:
        return handle.read()


def parsed(name):
    return yaml.safe_load(load(name))


@pytest.fixture(scope="module", params=sorted(render.DOCUMENTS))
def doc(request):
    return request.param, parsed(request.param)


def all_steps(document):
    """Every step, the ones inside loops included."""
    for step in document["mainSteps"]:
        yield step
        yield from step.get("inputs", {}).get("Steps", []) if step["action"] == "aws:loop" else []


def test_documents_and_the_attachment_equal_a_fresh_render_of_automation_handler():
    for name, text in render.rendered().items():
        assert load(name) == text, f"{name} is stale: run ssm_documents/render.py"


def test_documents_fit_ssm_64_kb_limit_with_room_to_spare():
    for name in render.DOCUMENTS:
        assert len(load(name).encode("utf-8")) <= 32 * 1024, name


def test_documents_validate_against_the_automation_schema(doc):
    with open(os.path.join(DOCS, "schema", "automation-0.3.schema.json")) as handle:
        schema = json.load(handle)
    jsonschema.validate(doc[1], schema)


def test_no_document_carries_code_of_its_own(doc):
    """A reviewer reads every line that runs: no script text, nothing encoded, no exec."""
    name, document = doc
    text = load(name)
    for step in all_steps(document):
        assert "Script" not in step.get("inputs", {}), (name, step["name"])
    for marker in ("base64", "zlib", "exec(", "b64decode", "decompress"):
        assert marker not in text, (name, marker)


def test_every_script_step_runs_the_one_attachment_pinned_by_its_sha256(doc):
    name, document = doc
    scripts = [s for s in all_steps(document) if s["action"] == "aws:executeScript"]
    if name == "lambda-fault-organization.yaml":  # it runs the fault document in each location
        assert not scripts and "files" not in document
        return
    digest = hashlib.sha256(load(os.path.join("attachments", render.ATTACHMENT))
                            .encode("utf-8")).hexdigest()
    assert document["files"] == {render.ATTACHMENT: {"checksums": {"sha256": digest}}}
    for step in scripts:
        assert step["inputs"]["Attachment"] == render.ATTACHMENT
        assert step["inputs"]["Handler"] in ("automation_handler.plan", "automation_handler.apply")
        assert step["inputs"]["Runtime"] == "python3.11"


def test_the_attachment_is_the_handler_as_written_but_for_the_inlined_layer_config():
    with open(os.path.join(ROOT, "automation_handler.py"), encoding="utf-8") as handle:
        source = handle.read()
    attachment = load(os.path.join("attachments", render.ATTACHMENT))
    head, _, rest = source.partition(render.BEGIN)
    tail = rest[rest.index("\n", rest.index(render.END)) + 1:]
    assert head in attachment and tail in attachment  # docstrings and comments kept
    assert "from chaos_layer" not in attachment


def test_the_attachment_inlines_the_layer_config_names_and_imports_nothing_of_ours():
    namespace = {"__name__": "automation_handler"}
    exec(compile(render.script(), render.ATTACHMENT, "exec"), namespace)
    for name in ("FAULT_TYPE", "LATENCY_MS", "RESTORE_STATE", "EXEC_WRAPPER", "WRAPPER_PATH",
                 "AUTOMATION_VARIABLES", "DEFAULTS", "ORIGINAL_EXEC_WRAPPER", "EXPIRES_AT"):
        assert namespace[name] == getattr(config, name), name
    assert namespace["parse_bool"]("Yes") is True
    assert callable(namespace["plan"]) and callable(namespace["apply"])


def test_document_parameters_are_exactly_the_public_interface(doc):
    name, document = doc
    own = [p for p in PUBLIC_PARAMETERS if name == "lambda-fault.yaml" or
           p not in ("ChaosMode", "OnlyThisExperiment")]
    extra = {"lambda-fault.yaml": [], "lambda-fault-experiment.yaml": ["FaultDocumentName"],
             "lambda-fault-organization.yaml": ORGANIZATION + ["FaultDocumentName"]}[name]
    assert list(document["parameters"]) == own + extra


def test_every_reference_names_a_parameter_a_step_or_a_system_variable(doc):
    _, document = doc
    text = json.dumps(document["mainSteps"]) + document.get("assumeRole", "")
    steps = {s["name"] for s in all_steps(document)}
    for ref in re.findall(r"{{\s*([\w.:]+)\s*}}", text):
        head = ref.split(".")[0]
        assert ref in document["parameters"] or head in steps or ref in SYSTEM_VARIABLES, ref


def test_every_parameter_reaches_a_step(doc):
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
    document = parsed("lambda-fault.yaml")
    for p in ah.PARAMETERS:
        assert document["parameters"][p.name]["default"] == p.default
        assert document["parameters"][p.name]["type"] == p.type


def test_a_loop_takes_its_batches_from_the_plan_before_it_and_has_no_on_cancel_of_its_own(doc):
    _, document = doc
    for step in document["mainSteps"]:
        if step["action"] != "aws:loop":
            continue
        assert "onCancel" not in step  # documented: onCancel only on the steps inside a loop
        plan = re.fullmatch(r"{{ (\w+)\.Batches }}", step["inputs"]["Iterators"]).group(1)
        (inner,) = step["inputs"]["Steps"]
        payload = inner["inputs"]["InputPayload"]
        assert payload[ah.BATCH] == "{{ %s.CurrentIteratorValue }}" % step["name"]
        assert payload[ah.DIGEST] == "{{ %s.Digest }}" % plan
        assert payload["LayerArn"] == "{{ %s.LayerArn }}" % plan


def test_the_fault_document_rolls_back_a_failed_or_cancelled_batch():
    steps = {s["name"]: s for s in all_steps(parsed("lambda-fault.yaml"))}
    assert steps["ApplyBatch"]["onFailure"] == steps["ApplyBatch"]["onCancel"] == \
        "step:RollBackPlan"
    assert steps["RollBackPlan"]["inputs"]["InputPayload"]["ChaosMode"] == "DISABLED"
    assert steps["RollBackBatch"]["onFailure"] == "Continue"  # one stuck function stops no other


def test_experiment_failure_leads_to_detach_and_cancel_anywhere_to_the_hand_off():
    document = parsed("lambda-fault-experiment.yaml")
    steps = {s["name"]: s for s in all_steps(document)}
    assert [s["name"] for s in document["mainSteps"]] == [
        "Plan", "Attach", "Wait", "PlanDetach", "Detach", "HandOffDetach"]
    for name in ("AttachBatch", "Wait"):
        assert steps[name]["onFailure"] == "step:PlanDetach", name
    for name, step in steps.items():
        if step["action"] not in ("aws:loop", "aws:executeAwsApi"):
            assert step["onCancel"] == "step:HandOffDetach", name
        assert steps[step.get("onCancel", "step:HandOffDetach")[5:]]["action"] != "aws:sleep"
    assert steps["Wait"]["inputs"] == {"Duration": "{{ Duration }}"}
    assert steps["PlanDetach"]["inputs"]["InputPayload"]["OnlyThisExperiment"] == "true"
    assert steps["DetachBatch"]["inputs"]["InputPayload"]["OnlyThisExperiment"] == "true"
    assert "default" not in document["parameters"]["Duration"]
    assert not re.match(document["parameters"]["Duration"]["allowedPattern"], "")


def test_the_hand_off_starts_the_fault_document_detaching_this_experiment_with_every_parameter():
    experiment = parsed("lambda-fault-experiment.yaml")
    hand_off = experiment["mainSteps"][-1]["inputs"]
    assert (hand_off["Service"], hand_off["Api"]) == ("ssm", "StartAutomationExecution")
    assert hand_off["DocumentName"] == "{{ FaultDocumentName }}"
    given = hand_off["Parameters"]
    assert given.pop("ChaosMode") == ["DISABLED"] and given.pop("OnlyThisExperiment") == ["true"]
    fault = parsed("lambda-fault.yaml")["parameters"]
    assert set(given) == set(fault) - {"ChaosMode", "OnlyThisExperiment"}
    assert all(value == ["{{ %s }}" % key] for key, value in given.items())


def test_the_organisation_run_attaches_everywhere_all_or_nothing_and_detaches_everywhere():
    steps = {s["name"]: s for s in parsed("lambda-fault-organization.yaml")["mainSteps"]}
    attach, detach = steps["AttachEverywhere"], steps["DetachEverywhere"]
    assert attach["action"] == detach["action"] == "aws:executeAutomation"
    assert attach["onFailure"] == "step:DetachEverywhere"
    assert attach["onCancel"] == steps["Wait"]["onCancel"] == "step:HandOffDetachEverywhere"
    (where,) = attach["inputs"]["TargetLocations"]
    assert where["Accounts"] == "{{ TargetAccounts }}" and where["Regions"] == "{{ TargetRegions }}"
    assert where["TargetLocationMaxErrors"] == "{{ TargetLocationMaxErrors }}"
    assert detach["inputs"]["TargetLocations"][0]["TargetLocationMaxErrors"] == "100%"
    assert attach["inputs"]["RuntimeParameters"]["ChaosMode"] == ["ENABLED"]
    assert detach["inputs"]["RuntimeParameters"]["OnlyThisExperiment"] == ["true"]
    for step in (attach, detach, steps["HandOffDetachEverywhere"]):
        runtime = step["inputs"].get("RuntimeParameters") or step["inputs"]["Parameters"]
        assert "AutomationAssumeRole" not in runtime  # each location runs as its execution role
    assert parsed("lambda-fault-organization.yaml")["parameters"]["TargetLocationMaxErrors"][
        "default"] == "0"


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


def test_automation_role_policy_allows_every_call_the_handler_and_the_documents_make():
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
    assert len(needed) == 12  # the scan found every call: keep in step with the handler
    for name in render.DOCUMENTS:  # the documents' own API steps, as the role
        for step in all_steps(parsed(name)):
            if step["action"] == "aws:executeAwsApi":
                needed.add(f"{step['inputs']['Service']}:{step['inputs']['Api']}")
    needed |= {"ssm:GetAutomationExecution", "iam:PassRole"}  # the hand-off runs as this role
    assert needed <= allowed, needed - allowed
    assert not allowed - needed, f"policy grants more than the handler uses: {allowed - needed}"


def _module():
    namespace = {"__name__": "automation_handler"}
    exec(compile(render.script(), render.ATTACHMENT, "exec"), namespace)
    return namespace


def _substitute(payload, values):
    """What SSM does to InputPayload: a value that is exactly one {{ Ref }} keeps its type."""
    out = {}
    for key, value in payload.items():
        match = re.fullmatch(r"{{\s*([\w.]+)\s*}}", value) if isinstance(value, str) else None
        out[key] = values[match.group(1)] if match else value
    return out


def _run_step(module, step, values):
    """One aws:executeScript step as SSM runs it: the attachment's handler, then the outputs."""
    payload = module[step["inputs"]["Handler"].split(".")[1]](_substitute(step["inputs"]["InputPayload"], values),
                                                {"automation:EXECUTION_ID": "test"})
    json.dumps(payload)
    outputs = {}
    for output in step["outputs"]:
        value = payload[output["Selector"].split(".")[2]]
        kind = {"String": str, "Integer": int, "MapList": list, "StringList": list,
                "Boolean": bool}[output["Type"]]
        assert isinstance(value, kind), output
        outputs[f"{step['name']}.{output['Name']}"] = value
    return outputs


def _run(module, document, plan, loop, values):
    """A Plan step and its loop, as the document runs them; the values the steps produced."""
    steps = {s["name"]: s for s in all_steps(document)}
    values = dict(values, **_run_step(module, steps[plan], values))
    (inner,) = steps[loop]["inputs"]["Steps"]
    results = []
    for batch in values[f"{plan}.Batches"]:
        out = _run_step(module, inner, dict(values, **{f"{loop}.CurrentIteratorValue": batch}))
        results.append(out)
    return values, results


def _typed_defaults(document, **given):
    values = {n: s.get("default") for n, s in document["parameters"].items()}
    values.update(given)
    return values


def test_the_experiments_steps_attach_and_detach_from_the_attachment():
    with mock_aws():
        lam = boto3.client("lambda", region_name=REGION)
        layer = publish_layer(lam, "lambda-chaos")
        make_function(lam, "checkout")
        before = lam.get_function_configuration(FunctionName="checkout")["Environment"]
        document, module = parsed("lambda-fault-experiment.yaml"), _module()
        values = _typed_defaults(document, LayerArn=layer, FunctionName="checkout",
                                 Duration="PT5M", FaultType="error")
        values, attached = _run(module, document, "Plan", "Attach", values)
        assert attached[0]["AttachBatch.Targets"][0]["Action"] == "attached"
        env = lam.get_function_configuration(FunctionName="checkout")["Environment"]["Variables"]
        assert env[config.FAULT_TYPE] == "error"
        _, detached = _run(module, document, "PlanDetach", "Detach", values)
        assert detached[0]["DetachBatch.Targets"][0]["Action"] == "detached"
        assert lam.get_function_configuration(FunctionName="checkout")["Environment"] == before


def test_experiment_clean_up_after_a_refused_attach_leaves_another_experiment_running():
    """Experiment B's attach is refused (a function is in experiment A); B's detach must undo
    only B, not end A on that function."""
    with mock_aws():
        lam = boto3.client("lambda", region_name=REGION)
        layer = publish_layer(lam, "lambda-chaos")
        make_function(lam, "checkout")
        document, module = parsed("lambda-fault-experiment.yaml"), _module()
        a = _typed_defaults(document, LayerArn=layer, FunctionName="checkout",
                            Duration="PT5M", FaultType="error")
        b = dict(a, FaultType="latency")
        a_values, _ = _run(module, document, "Plan", "Attach", a)
        with pytest.raises(Exception, match="different experiment"):
            _run(module, document, "Plan", "Attach", b)
        b_values = dict(b, **{"Plan.LayerArn": layer})
        _, out = _run(module, document, "PlanDetach", "Detach", b_values)
        assert out[0]["DetachBatch.Targets"][0]["Action"] == "other-experiment"
        env = lam.get_function_configuration(FunctionName="checkout")["Environment"]["Variables"]
        assert env[config.FAULT_TYPE] == "error"
        _, out = _run(module, document, "PlanDetach", "Detach", a_values)
        assert out[0]["DetachBatch.Targets"][0]["Action"] == "detached"
