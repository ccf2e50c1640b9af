"""Rules of the local Runtime/Extensions API emulator, checked with the real awslambdaric."""
import json
import os

import pytest

from local_emulator.runtime_api import ExecutionEnvironment

FUNCTIONS = os.path.join(os.path.dirname(__file__), "functions")


@pytest.fixture
def make_env():
    """Build environments over tests/functions and shut every one down after the test."""
    created = []

    def _make(handler="echo.handler", **kwargs):
        kwargs.setdefault("task_root", FUNCTIONS)
        env = ExecutionEnvironment(handler, **kwargs)
        created.append(env)
        return env

    yield _make
    for env in created:
        env.shutdown()


def test_invoke_round_trip_returns_the_runtimes_response(make_env):
    env = make_env()
    result = env.invoke(b'{"x": 1}')
    assert result.status == "success", env.logs()
    assert json.loads(result.payload) == {"x": 1}
    assert result.error_type is None
    assert result.init is not None and result.init.ok
