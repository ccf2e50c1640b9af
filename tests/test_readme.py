"""The README's first screen stays true: its two commands exist, and CI runs the test one."""
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _first_screen_commands():
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    return [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]


def test_first_screen_names_the_experiment_and_the_test_command():
    assert _first_screen_commands() == ["make experiment", "make test"]


def test_both_commands_are_make_targets_that_set_themselves_up():
    makefile = (ROOT / "Makefile").read_text()
    for target in ("experiment", "test"):
        rule = re.search(rf"^{target}:(.*)$", makefile, re.M)
        assert rule, f"Makefile has no '{target}' target"
        assert "$(STAMP)" in rule.group(1), f"'make {target}' must install what it needs"


def test_ci_runs_exactly_the_readme_test_command():
    lines = [l.strip() for l in (ROOT / ".ci/run").read_text().splitlines()]
    assert "make test" in lines


def test_readme_picture_of_a_report_exists():
    assert (ROOT / "docs/report.png").stat().st_size > 10_000
