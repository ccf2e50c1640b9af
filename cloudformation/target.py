"""Assemble the target-account stack (cloudformation/target-stack.yaml).

The execution role in each target account must allow exactly what the toolkit stack's
AutomationRole allows in the central account, scoped the same way (opted-in functions only,
the chaos layer and the trusted layers only). Its policy is therefore not written twice: it is
the AutomationRole's first policy read from stack.yaml, with the toolkit's layer name
(`${AWS::StackName}-chaos-layer`) replaced by the target stack's `${LayerName}`.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from . import cfn_yaml, stack

__all__ = ["TARGET_TEMPLATE", "STACK_LAYER_NAME", "TARGET_LAYER_NAME", "automation_policy",
           "render_target_stack"]

TARGET_TEMPLATE = Path(__file__).resolve().parent / "target-stack.yaml"
STACK_LAYER_NAME = "${AWS::StackName}-chaos-layer"
TARGET_LAYER_NAME = "${LayerName}"


def automation_policy() -> dict:
    """The toolkit AutomationRole's Lambda/tag policy, its layer named by the target stack."""
    template = cfn_yaml.load(stack.STACK_TEMPLATE)
    policy = template["Resources"]["AutomationRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    return _rename_layer(copy.deepcopy(policy))


def _rename_layer(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace(STACK_LAYER_NAME, TARGET_LAYER_NAME)
    if isinstance(value, list):
        return [_rename_layer(item) for item in value]
    if isinstance(value, dict):
        return {key: _rename_layer(item) for key, item in value.items()}
    return value


def render_target_stack(layer_zip: Path) -> dict:
    """The complete target stack template (a dict; deploy.sh writes it as JSON)."""
    template = cfn_yaml.load(TARGET_TEMPLATE)
    resources = template["Resources"]
    layer = resources["ChaosLayer"]["Properties"]
    layer["Content"] = str(Path(layer_zip).resolve())
    layer["CompatibleRuntimes"] = stack.layer_runtimes()
    resources["ExecutionRole"]["Properties"]["Policies"][0]["PolicyDocument"] = automation_policy()
    return template
