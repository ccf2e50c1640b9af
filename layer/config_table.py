"""Render the layer's configuration table from chaos_layer.config.SETTINGS into README.md.

The table is written between `<!-- config-table:start -->` and `<!-- config-table:end -->`
and nowhere else, so the README can never drift from the code (tests/test_layer_docs.py fails
if it does). Usage: python layer/config_table.py [README.md]   (rewrites the block in place)
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chaos_layer.config import SETTINGS  # noqa: E402

START, END = "<!-- config-table:start -->", "<!-- config-table:end -->"


def render() -> str:
    rows = ["| variable | type | default | set by the automation | meaning |",
            "|---|---|---|---|---|"]
    for s in SETTINGS:
        rows.append(f"| `{s.name}` | {s.type} | {s.default} | "
                    f"{'yes' if s.set_by_automation else 'no'} | {s.meaning} |")
    return "\n".join(rows)


def replace_block(text: str, table: str) -> str:
    """text with the block between the markers replaced; ValueError if a marker is missing."""
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"README lacks the markers {START} ... {END}; add them where the table goes")
    return text[:start + len(START)] + "\n" + table + "\n" + text[end:]


def main(path: str = "README.md") -> None:
    readme = Path(path)
    readme.write_text(replace_block(readme.read_text(), render()))
    print(f"wrote the configuration table into {readme}")


if __name__ == "__main__":
    main(*sys.argv[1:])
