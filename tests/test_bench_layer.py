"""bench/bench_layer.py is run by hand; these keep it runnable: it imports, it finds the Python
layer's last commit for its "before" column, and it marks each target met or missed."""
import subprocess
import sys

import pytest

from layer_fixtures import REPO

sys.path.insert(0, str(REPO / "bench"))
import bench_layer  # noqa: E402


def test_help_names_the_options():
    done = subprocess.run([sys.executable, str(REPO / "bench" / "bench_layer.py"), "--help"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "--before-commit" in done.stdout and "--small" in done.stdout


def test_before_column_is_the_last_commit_whose_extension_runs_python3():
    commit = bench_layer.python_layer_commit(None)
    shim = bench_layer.git("show", f"{commit}:layer/extensions/lambda-chaos-extension")
    assert "exec python3" in shim
    later = bench_layer.git("log", "--format=%H", f"{commit}..HEAD", "--",
                            "layer/extensions/lambda-chaos-extension").split()
    for newer in later:  # no newer commit still has it
        assert "exec python3" not in bench_layer.git(
            "show", f"{newer}:layer/extensions/lambda-chaos-extension")


@pytest.mark.parametrize("value, target, expected", [(1.05, 1.05, "met"), (1.051, 1.05, "MISSED"),
                                                     (None, 1.05, "n/a")])
def test_a_figure_over_its_target_is_marked_missed(value, target, expected):
    assert bench_layer.verdict(value, target) == expected
