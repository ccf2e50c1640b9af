"""The local twin's tree is its map: three subpackages, and imports that run one way.

``experiment`` may use ``aws`` and ``environment``; ``aws`` may use ``environment``;
``environment`` uses neither; ``clock`` and ``errors`` use none of them (see
local_emulator/__init__.py). Only imports that run are checked: a name imported for a type
hint under ``if TYPE_CHECKING:`` does not make a part depend on another at run time, but it
is refused too, so the direction holds for a reader as well.
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterator, Tuple

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "local_emulator"
PARTS = ("environment", "aws", "experiment")
# part -> the parts it may import
ALLOWED = {
    "environment": {"environment"},
    "aws": {"aws", "environment"},
    "experiment": {"experiment", "aws", "environment"},
    "shared": set(),
}
SHARED = ("clock", "errors")


def _part_of(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    if len(relative.parts) > 1:
        return relative.parts[0]
    return "shared" if relative.stem in SHARED else "top"


def _imported_parts(path: Path) -> Iterator[Tuple[int, str]]:
    """(line, part) for every import of one of the three parts in a module."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.level:
                continue  # relative imports stay inside the part
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            bits = name.split(".")
            if bits[0] == "local_emulator" and len(bits) > 1 and bits[1] in PARTS:
                yield node.lineno, bits[1]


def _modules():
    return sorted(p for p in PACKAGE.rglob("*.py") if "node_modules" not in p.parts)


def test_the_twin_has_three_parts_and_two_shared_modules():
    top = sorted(p.stem for p in PACKAGE.glob("*.py"))
    assert top == ["__init__", "__main__", "clock", "errors"]
    for part in PARTS:
        doc = ast.get_docstring(ast.parse((PACKAGE / part / "__init__.py").read_text()))
        assert doc and "AWS" in doc, f"{part}/__init__.py must say what it models and from which AWS doc"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_run_one_way(path):
    part = _part_of(path)
    if part == "top":
        return  # __init__ and __main__ wire everything
    wrong = [(line, used) for line, used in _imported_parts(path) if used not in ALLOWED[part]]
    assert not wrong, (f"{path.relative_to(PACKAGE)} ({part}) imports "
                       + ", ".join(f"{used} (line {line})" for line, used in wrong)
                       + f"; {part} may use only {sorted(ALLOWED[part]) or 'none of the parts'}")
