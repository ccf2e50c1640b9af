"""Read CloudFormation YAML (with its short-form tags) and evaluate the few intrinsics
`deploy.sh --local` needs to create by API what moto's CloudFormation skips."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, Mapping, Set

import yaml

from .errors import DeployError

__all__ = ["load", "references", "Resolver"]

_SUB_VAR = re.compile(r"\$\{([A-Za-z0-9_:.]+)\}")


class _Loader(yaml.SafeLoader):
    """SafeLoader that turns `!Ref X` into {"Ref": "X"} and `!Sub`, `!If`… into {"Fn::…": …}."""


def _construct(loader: yaml.Loader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_Loader.add_multi_constructor("!", _construct)


def load(path: Path) -> dict:
    """A CloudFormation YAML template as plain dicts and lists."""
    with Path(path).open(encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_Loader)  # noqa: S506 - SafeLoader subclass


def references(value: Any) -> Set[str]:
    """Logical ids (and parameter names) a value refers to through Ref, GetAtt or Sub."""
    found: Set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str):
                found.add(item)
            elif key == "Fn::GetAtt":
                found.add(item[0] if isinstance(item, list) else str(item).split(".")[0])
            elif key == "Fn::Sub":
                text, variables = (item, {}) if isinstance(item, str) else item
                found.update(v.split(".")[0] for v in _SUB_VAR.findall(text) if v not in variables)
                found.update(references(variables))
            else:
                found.update(references(item))
    elif isinstance(value, list):
        for item in value:
            found.update(references(item))
    return {name for name in found if not name.startswith("AWS::")}


class Resolver:
    """Evaluates Ref, Fn::Sub, Fn::Join, Fn::If, Fn::Equals, Fn::Not over known names: stack
    parameters, pseudo parameters and resources' physical ids (as describe-stack-resources
    reports them). Anything else is a DeployError naming the construct."""

    def __init__(self, names: Mapping[str, Any], conditions: Mapping[str, Any]) -> None:
        self.names = dict(names)
        self.conditions = dict(conditions)

    def condition(self, name: str) -> bool:
        return bool(self.value(self.conditions[name]))

    def value(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.value(item) for item in node]
        if not isinstance(node, dict):
            return node
        if len(node) != 1 or not next(iter(node)).startswith(("Ref", "Fn::", "Condition")):
            return {key: self.value(item) for key, item in node.items()}
        (key, arg), = node.items()
        if key == "Ref":
            return self._name(arg)
        if key == "Condition":
            return self.condition(arg)
        if key == "Fn::Sub":
            text, variables = (arg, {}) if isinstance(arg, str) else arg
            local = {k: self.value(v) for k, v in variables.items()}
            return _SUB_VAR.sub(lambda m: str(local[m.group(1)] if m.group(1) in local
                                              else self._name(m.group(1))), text)
        if key == "Fn::Join":
            return arg[0].join(str(self.value(item)) for item in self.value(arg[1]))
        if key == "Fn::If":
            return self.value(arg[1] if self.condition(arg[0]) else arg[2])
        if key == "Fn::Equals":
            return self.value(arg[0]) == self.value(arg[1])
        if key == "Fn::Not":
            return not self.value(arg[0])
        raise DeployError(f"{key} cannot be evaluated for a --local deploy; write the value "
                          f"with Ref or Fn::Sub")

    def _name(self, name: str) -> Any:
        if name not in self.names:
            raise DeployError(f"--local: no value for {name!r} (not a parameter, pseudo "
                              f"parameter or created resource)")
        return self.names[name]


def pseudo_parameters(stack_name: str, region: str, account: str,
                      partition: str = "aws") -> Dict[str, str]:
    """CloudFormation's pseudo parameters for one stack."""
    return {"AWS::StackName": stack_name, "AWS::Region": region, "AWS::AccountId": account,
            "AWS::Partition": partition, "AWS::URLSuffix": "amazonaws.com"}
