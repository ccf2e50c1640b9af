"""What the execution-environment tests of both runtime clients share: environments that are
shut down after the test, and executable files (extensions, wrappers) written on the spot."""
from __future__ import annotations

import stat
from pathlib import Path
from typing import Any, Callable, Iterator

from local_emulator.environment.runtime_api import ExecutionEnvironment


def environments(**defaults: Any) -> Iterator[Callable[..., ExecutionEnvironment]]:
    """A fixture body: yields `make(handler, **kwargs)` (kwargs default to `defaults`) and shuts
    every environment it made down afterwards."""
    created = []

    def make(handler: str = "echo.handler", **kwargs: Any) -> ExecutionEnvironment:
        for key, value in defaults.items():
            kwargs.setdefault(key, value)
        lambda_env = ExecutionEnvironment(handler, **kwargs)
        created.append(lambda_env)
        return lambda_env

    yield make
    for lambda_env in created:
        lambda_env.shutdown()


def executable(path: Path, text: str) -> Path:
    """Write `text` to `path` (creating its folder) with the execute bits set."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path
