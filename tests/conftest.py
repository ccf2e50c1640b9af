"""Shared test setup: tests never reach AWS, whatever the machine's own credentials say."""
import os

import pytest


@pytest.fixture(autouse=True)
def _fake_aws_credentials(monkeypatch):
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)


# `make test` runs the suite on every core (pytest-xdist, `-n auto --dist loadgroup`). Each of
# these modules deploys the whole toolkit into moto once (a module-scoped fixture) and runs
# experiments on it: all its tests go to one worker, together, so the deploy happens once; the
# other workers share out the rest. An experiment thus meets at most one other worker's tests,
# the "busy core" its verdicts are built to survive (bench/bench_robustness.py).
SERIAL_MODULES = ("test_experiment_e2e.py", "test_deploy.py")


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups off the markers
def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name in SERIAL_MODULES:
            item.add_marker(pytest.mark.xdist_group(item.path.stem))
