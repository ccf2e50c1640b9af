"""Render the docs' generated blocks from layer/settings.json (through chaos_layer.config).

- the configuration table, between `<!-- config-table:start -->` and `<!-- config-table:end -->`
  (README.md);
- the runtimes and architectures served, between `<!-- runtimes:start -->` and
  `<!-- runtimes:end -->` (README.md, layer/README.md, ssm_documents/README.md).

Each block is written there and nowhere else, so the docs can never drift from the settings
(tests/test_layer_docs.py and tests/test_config.py fail if they do).
Usage: python layer/config_table.py [FILE.md ...]   (rewrites the blocks in place; default: all)
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chaos_layer.config import (  # noqa: E402
    ACCEPTED_RUNTIMES, ARCHITECTURES, COMPATIBLE_RUNTIMES, EXEC_WRAPPER, OS_ONLY_RUNTIMES, SETTINGS,
    runtime_language,
)

START, END = "<!-- config-table:start -->", "<!-- config-table:end -->"
RUNTIMES_START, RUNTIMES_END = "<!-- runtimes:start -->", "<!-- runtimes:end -->"
REPO = Path(__file__).resolve().parent.parent
DOCS = ("README.md", "layer/README.md", "ssm_documents/README.md")
# How the docs name each runtime family (the runtime identifier's leading letters).
LANGUAGES = {"nodejs": "Node.js", "python": "Python", "java": "Java", "dotnet": ".NET",
             "ruby": "Ruby"}


def render() -> str:
    """The configuration table, one row per setting, in settings.json's order."""
    rows = ["| variable | type | default | set by the automation | meaning |",
            "|---|---|---|---|---|"]
    for s in SETTINGS:
        rows.append(f"| `{s.name}` | {s.type} | {s.default} | "
                    f"{'yes' if s.set_by_automation else 'no'} | {s.meaning} |")
    return "\n".join(rows)


def _code(names) -> str:
    return ", ".join(f"`{n}`" for n in names)


def render_runtimes() -> str:
    """What the layer serves and what the automation refuses, in words."""
    families = {}
    for runtime in ACCEPTED_RUNTIMES:
        families.setdefault(runtime_language(runtime), []).append(runtime)
    lines = [f"**Served:** every managed runtime whose bootstrap honours `{EXEC_WRAPPER}`, on "
             f"**{' and '.join(ARCHITECTURES)}**:"]
    for family, runtimes in families.items():
        lines.append(f"- {LANGUAGES.get(family, family)}: {_code(runtimes)}")
    lines += [
        "",
        f"**Refused**, before anything changes, with the fix: the OS-only runtimes "
        f"({_code(OS_ONLY_RUNTIMES)}), whose bootstrap ignores `{EXEC_WRAPPER}`; container "
        "images (`PackageType: Image`), which cannot use layers; and a function whose "
        "architecture the layer version does not list in `CompatibleArchitectures`.",
        "",
        f"The layer version lists {len(COMPATIBLE_RUNTIMES)} of these as `CompatibleRuntimes` "
        "(the Lambda API allows at most 15): " + _code(COMPATIBLE_RUNTIMES) + ". Lambda does not "
        "enforce that list; the automation accepts every runtime above on a layer version that "
        "lists a runtime of the same language.",
    ]
    return "\n".join(lines)


def replace_block(text: str, block: str, start: str = START, end: str = END) -> str:
    """text with the block between the markers replaced; ValueError if a marker is missing."""
    first, last = text.find(start), text.find(end)
    if first < 0 or last < first:
        raise ValueError(f"the file lacks the markers {start} ... {end}; add them where the "
                         "block goes")
    return text[:first + len(start)] + "\n" + block + "\n" + text[last:]


def rewrite(text: str) -> str:
    """text with every generated block it has markers for brought up to date."""
    for start, end, block in ((START, END, render),
                              (RUNTIMES_START, RUNTIMES_END, render_runtimes)):
        if start in text:
            text = replace_block(text, block(), start, end)
    return text


def main(*paths: str) -> None:
    for path in paths or [str(REPO / doc) for doc in DOCS]:
        doc = Path(path)
        doc.write_text(rewrite(doc.read_text()))
        print(f"wrote the generated blocks into {doc}")


if __name__ == "__main__":
    main(*sys.argv[1:])
