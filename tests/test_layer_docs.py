"""The docs are checked against layer/settings.json: the README's configuration table, and the
runtimes and architectures each doc says are served."""
import re
import sys
from pathlib import Path

import pytest

from chaos_layer import config as c

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "layer"))
import config_table  # noqa: E402


def _block(text, start, end):
    return text[text.index(start) + len(start):text.index(end)].strip()


def test_readme_configuration_table_is_generated_from_settings():
    text = (REPO / "README.md").read_text()
    assert _block(text, config_table.START, config_table.END) == config_table.render(), \
        "README.md's table is stale: run `python layer/config_table.py`"


@pytest.mark.parametrize("doc", config_table.DOCS)
def test_each_doc_says_which_runtimes_and_architectures_are_served_from_settings(doc):
    text = (REPO / doc).read_text()
    block = _block(text, config_table.RUNTIMES_START, config_table.RUNTIMES_END)
    assert block == config_table.render_runtimes(), \
        f"{doc}'s runtimes are stale: run `python layer/config_table.py`"
    for runtime in c.ACCEPTED_RUNTIMES + c.OS_ONLY_RUNTIMES:
        assert f"`{runtime}`" in block, runtime
    assert f"**{' and '.join(c.ARCHITECTURES)}**" in block


@pytest.mark.parametrize("doc", config_table.DOCS + tuple(
    str(p.relative_to(REPO)) for p in sorted((REPO / "fis_templates").glob("*/README.md"))))
def test_no_doc_says_only_python_runtimes_are_supported(doc):
    text = (REPO / doc).read_text()
    for stale in ("Python runtimes **3.9", "other runtimes are not supported",
                  "Other runtimes (Node.js", "`python3.9`–`python3.13`", "runs Python 3.9+"):
        assert stale not in text, f"{doc} still says {stale!r}"


def test_rewrite_updates_every_block_it_has_markers_for_and_only_those():
    stale = (f"intro\n{config_table.RUNTIMES_START}\nold\n{config_table.RUNTIMES_END}\nend\n")
    fresh = config_table.rewrite(stale)
    assert fresh.startswith("intro\n") and fresh.endswith("end\n")
    assert config_table.render_runtimes() in fresh and "old" not in fresh
    assert config_table.START not in fresh


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
