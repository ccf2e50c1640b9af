"""Build the two SSM Automation documents from `automation_handler.py`, the one source of truth.

    python ssm_documents/render.py          # rewrite lambda-fault.yaml, lambda-fault-experiment.yaml
    python ssm_documents/render.py --check  # exit 1 if either is stale (CI and the tests do this)

Why a build step: SSM runs only the script text of an `aws:executeScript` step, so the
script cannot import the layer's variable names. The render step inlines them: it replaces
the marked `chaos_layer.config` import block of `automation_handler.py` with the values
`layer/chaos_layer/config.py` read from `layer/settings.json`, so the names and the accepted
runtimes are still defined once; only the names the handler imports are inlined. Docstrings,
comments and `__all__` are dropped (an AST round trip) and the indentation halved, because SSM
caps a document at 64 KB. The experiment document needs the script twice (attach and
detach), which does not fit even so: there it is embedded zlib-compressed and base64-encoded
behind a three-line loader, and a test proves it decodes to the same script.
"""
from __future__ import annotations

import argparse
import ast
import base64
import inspect
import os
import sys
import zlib
from typing import Any, Dict, List

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [p for p in (ROOT, os.path.join(ROOT, "layer")) if p not in sys.path]

import automation_handler as ah  # noqa: E402
from chaos_layer import config  # noqa: E402

HANDLER_PATH = os.path.join(ROOT, "automation_handler.py")
DOCUMENTS = {"lambda-fault.yaml": "single", "lambda-fault-experiment.yaml": "experiment"}
BEGIN, END = "# --- BEGIN chaos_layer.config", "# --- END chaos_layer.config"
MAX_DOCUMENT_BYTES = 64 * 1024
RUNTIME = "python3.11"
STEP_TIMEOUT_S = 600  # the most aws:executeScript allows


def config_names(source: str) -> List[str]:
    """The names the handler imports from chaos_layer.config (its marked import block)."""
    block = source[source.index(BEGIN):source.index(END)]
    return [alias.name for node in ast.walk(ast.parse(block))
            if isinstance(node, ast.ImportFrom) for alias in node.names]


def config_block(source: str) -> str:
    """Python source defining every name the handler imports from chaos_layer.config, with
    the values chaos_layer.config read from layer/settings.json."""
    lines = ["import datetime as _dt"]
    for name in config_names(source):
        value = getattr(config, name)
        if callable(value):
            lines.append(inspect.getsource(value).rstrip())
        else:
            lines.append(f"{name} = {value!r}")
    return "\n".join(lines) + "\n"


def script() -> str:
    """automation_handler.py with the config inlined, without docstrings, comments and
    `__all__`, indented two spaces a level: SSM caps a document at 64 KB."""
    with open(HANDLER_PATH, encoding="utf-8") as handle:
        source = handle.read()
    start, end = source.index(BEGIN), source.index(END)
    end = source.index("\n", end) + 1
    inlined = source[:start] + config_block(source) + source[end:]
    tree = ast.parse(inlined)
    tree.body = [node for node in tree.body if not _assigns_all(node)]
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and \
                isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
    text = _two_space_indent(ast.unparse(tree))
    if ast.dump(ast.parse(text)) != ast.dump(tree):  # a line was not a whole statement
        raise AssertionError("re-indenting the rendered script changed it; render with 4 spaces")
    header = ("# Rendered from automation_handler.py by ssm_documents/render.py; edit that file "
              "and re-render.\n")
    return header + text + "\n"


def _assigns_all(node: ast.stmt) -> bool:
    return isinstance(node, ast.Assign) and any(
        isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)


def _two_space_indent(text: str) -> str:
    """ast.unparse writes one statement a line, four spaces a level; halve the indentation."""
    lines = []
    for line in text.split("\n"):
        body = line.lstrip(" ")
        lines.append(" " * ((len(line) - len(body)) // 2) + body)
    return "\n".join(lines)


def compressed(text: str) -> str:
    """A loader that runs `text`, stored compressed: the experiment document holds it twice."""
    blob = base64.b64encode(zlib.compress(text.encode("utf-8"), 9)).decode("ascii")
    lines = [blob[i:i + 400] for i in range(0, len(blob), 400)]  # fewer lines, fewer bytes
    return ("# automation_handler.py (rendered), zlib + base64: SSM caps a document at 64 KB.\n"
            "import base64, zlib\n"
            "_SOURCE = (\n" + "".join(f"    '{line}'\n" for line in lines) + ")\n"
            "exec(compile(zlib.decompress(base64.b64decode(_SOURCE)).decode('utf-8'), "
            "'automation_handler.py', 'exec'))\n")


def decompress(loader: str) -> str:
    """Inverse of `compressed`, for the tests."""
    tree = ast.parse(loader)
    for node in tree.body:
        if isinstance(node, ast.Assign) and node.targets[0].id == "_SOURCE":
            return zlib.decompress(base64.b64decode(ast.literal_eval(node.value))).decode()
    raise ValueError("not a compressed script")


def parameters(experiment: bool) -> Dict[str, Any]:
    result: Dict[str, Any] = {}
    for p in ah.PARAMETERS:
        if experiment and p.name == "ChaosMode":
            continue
        spec: Dict[str, Any] = {"type": p.type, "description": p.description}
        if experiment and p.name == "Duration":
            spec["description"] = ("How long the fault lasts (ISO-8601, e.g. PT10M): attach, "
                                   "sleep this long, detach. Also the layer's expiry time.")
            spec["allowedPattern"] = f"^{ah._ISO_DURATION}$"
        else:
            spec["default"] = p.default
            if p.allowed_pattern:
                spec["allowedPattern"] = p.allowed_pattern
        if p.allowed_values:
            spec["allowedValues"] = list(p.allowed_values)
        result[p.name] = spec
    return result


def _payload(names: List[str], **fixed: str) -> Dict[str, Any]:
    payload = {name: "{{ %s }}" % name for name in names}
    payload.update(fixed)
    return payload


def _script_step(name: str, payload: Dict[str, Any], script_text: str) -> Dict[str, Any]:
    return {
        "name": name, "action": "aws:executeScript", "timeoutSeconds": STEP_TIMEOUT_S,
        "inputs": {"Runtime": RUNTIME, "Handler": "handler", "InputPayload": payload,
                   "Script": script_text},
        "outputs": [
            {"Name": "Summary", "Selector": "$.Payload.Summary", "Type": "String"},
            {"Name": "TargetCount", "Selector": "$.Payload.TargetCount", "Type": "Integer"},
            {"Name": "Targets", "Selector": "$.Payload.Targets", "Type": "MapList"},
            {"Name": "ExperimentId", "Selector": "$.Payload.ExperimentId", "Type": "String"},
        ],
    }


def document(kind: str) -> Dict[str, Any]:
    text = script()
    if kind == "single":
        step = _script_step("AttachOrDetach", _payload([p.name for p in ah.PARAMETERS
                                                        if p.name != "AutomationAssumeRole"]),
                            text)
        step["isEnd"] = True
        return {
            "schemaVersion": "0.3",
            "description": ("Attach (ChaosMode=ENABLED) or detach (DISABLED) the lambda-chaos "
                            "fault layer on Lambda functions, by name or tag, exactly reversibly. "
                            "Rendered from automation_handler.py; see ssm_documents/README.md."),
            "assumeRole": "{{ AutomationAssumeRole }}",
            "parameters": parameters(experiment=False),
            "mainSteps": [step],
            "outputs": ["AttachOrDetach.Summary", "AttachOrDetach.Targets"],
        }
    names = [p.name for p in ah.PARAMETERS if p.name not in ("AutomationAssumeRole", "ChaosMode")]
    loader = compressed(text)
    attach = _script_step("AttachFault", _payload(names, ChaosMode="ENABLED"), loader)
    attach.update({"onFailure": "step:DetachFault", "onCancel": "step:DetachFault",
                   "nextStep": "Wait"})
    wait = {"name": "Wait", "action": "aws:sleep", "inputs": {"Duration": "{{ Duration }}"},
            "onFailure": "step:DetachFault", "onCancel": "step:DetachFault",
            "nextStep": "DetachFault"}
    detach = _script_step("DetachFault", _payload(names, ChaosMode="DISABLED",
                                                  **{ah.ONLY_THIS_EXPERIMENT: "true"}), loader)
    detach["isEnd"] = True
    return {
        "schemaVersion": "0.3",
        "description": ("One whole lambda-chaos experiment: attach the fault layer, wait "
                        "Duration, detach. A failed or cancelled step still runs the detach, so "
                        "a stopped FIS experiment leaves every function as it was."),
        "assumeRole": "{{ AutomationAssumeRole }}",
        "parameters": parameters(experiment=True),
        "mainSteps": [attach, wait, detach],
        "outputs": ["AttachFault.Targets", "DetachFault.Summary"],
    }


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render(kind: str) -> str:
    return yaml.dump(document(kind), Dumper=_Dumper, sort_keys=False, width=100,
                     allow_unicode=True)


def main(argv: List[str] = None) -> int:
    parser = argparse.ArgumentParser(description="Render the SSM documents.")
    parser.add_argument("--check", action="store_true", help="fail if a document is stale")
    args = parser.parse_args(argv)
    stale = []
    for filename, kind in DOCUMENTS.items():
        path = os.path.join(HERE, filename)
        text = render(kind)
        if len(text.encode("utf-8")) > MAX_DOCUMENT_BYTES:
            print(f"{filename}: {len(text.encode())} bytes, over SSM's 64 KB", file=sys.stderr)
            return 1
        current = open(path, encoding="utf-8").read() if os.path.exists(path) else None
        if current != text:
            stale.append(filename)
            if not args.check:
                with open(path, "w", encoding="utf-8") as handle:
                    handle.write(text)
    if args.check and stale:
        print(f"stale: {', '.join(stale)}; run python ssm_documents/render.py", file=sys.stderr)
        return 1
    print(("wrote " if stale else "up to date: ") + ", ".join(stale or DOCUMENTS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
