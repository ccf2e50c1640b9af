"""The docs are checked against the code: the README's configuration table is SETTINGS."""
import re
import sys
from pathlib import Path

import pytest

from chaos_layer import config as c

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "layer"))
import config_table  # noqa: E402


def test_readme_configuration_table_is_generated_from_settings():
    text = (REPO / "README.md").read_text()
    block = text[text.index(config_table.START) + len(config_table.START):text.index(config_table.END)]
    assert block.strip() == config_table.render(), \
        "README.md's table is stale: run `python layer/config_table.py README.md`"


@pytest.mark.parametrize("doc", ["README.md", "layer/README.md"])
def test_docs_name_only_variables_the_configuration_defines(doc):
    path = REPO / doc
    if not path.exists():
        pytest.skip(f"{doc} not written yet")
    used = set(re.findall(r"\bCHAOS_[A-Z_]+\b", path.read_text()))
    assert used <= {s.name for s in c.SETTINGS}, f"{doc} names undefined {used - {s.name for s in c.SETTINGS}}"


def test_missing_markers_are_an_error_that_says_where_the_table_goes():
    with pytest.raises(ValueError, match="config-table:start"):
        config_table.replace_block("# no markers here\n", "| t |")
