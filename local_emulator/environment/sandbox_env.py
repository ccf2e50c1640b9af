"""The environment variables Lambda gives the runtime and extension processes.

The processes start from a clean environment, as in Lambda: the variables Lambda defines, the
function's own, and nothing inherited from the shell that runs the tests (so a test passes or
fails the same way on every machine). AWS credentials are the one exception: Lambda provides
the execution role's, so the host's (in tests, the fake ones from ``conftest.py``) are passed on.
"""
from __future__ import annotations

import datetime as _dt
import os
import uuid
from typing import Dict, Mapping, Optional

from local_emulator.environment import runtimes
from local_emulator.errors import InvalidConfigurationError, ReservedVariableError

__all__ = ["RESERVED_VARIABLES", "build_environment", "execution_env_name", "validate_configuration"]

# Keys Lambda refuses in a function's configuration, because it sets them itself.
RESERVED_VARIABLES = frozenset({
    "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
})
_CREDENTIALS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def execution_env_name() -> str:
    """``AWS_Lambda_python3.X`` for the interpreter that runs the runtime (awslambdaric reads it)."""
    return runtimes.resolve(None).execution_env


def build_environment(*, runtime_api: str, handler: str, task_root: str, opt_dir: Optional[str],
                      function_env: Mapping[str, str], function_name: str,
                      function_version: str, memory_mb: int, region: str,
                      host_environ: Mapping[str, str] = os.environ,
                      runtime: Optional[runtimes.Runtime] = None) -> Dict[str, str]:
    """The full environment of a runtime or extension process of ``runtime`` (None: this
    interpreter's Python): what every runtime gets, then the runtime's own (``PATH``,
    ``PYTHONPATH`` or ``NODE_PATH``, ...; see local_emulator/environment/runtimes.py), then the function's.

    Raises ReservedVariableError if ``function_env`` sets a key Lambda reserves.
    """
    reserved = sorted(set(function_env) & RESERVED_VARIABLES)
    if reserved:
        raise ReservedVariableError(
            f"the function environment sets reserved variable(s) {reserved}: Lambda sets these "
            f"itself; pass them as ExecutionEnvironment arguments (handler, region, ...) instead")
    runtime = runtime or runtimes.resolve(None)
    stream_date = _dt.datetime.now(_dt.timezone.utc).strftime("%Y/%m/%d")
    env = {
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        **runtime.variables(task_root, opt_dir),
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        "_HANDLER": handler,
        "LAMBDA_TASK_ROOT": task_root,
        "AWS_LAMBDA_FUNCTION_NAME": function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": function_version,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_EXECUTION_ENV": runtime.execution_env,
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function_name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": f"{stream_date}/[{function_version}]{uuid.uuid4().hex}",
    }
    for name in _CREDENTIALS:
        if host_environ.get(name):
            env[name] = host_environ[name]
    env.update(function_env)
    return env


def validate_configuration(handler, task_root, opt_dir, environment, memory_mb, timeout_s) -> None:
    """Refuse what Lambda would refuse, naming the value and the fix (InvalidConfigurationError)."""
    if not isinstance(handler, str) or "." not in handler:
        raise InvalidConfigurationError(
            f"handler {handler!r} must be 'module.function', e.g. 'echo.handler'")
    if not os.path.isdir(task_root):
        raise InvalidConfigurationError(f"task_root {task_root!r} is not a directory: pass the "
                                        f"folder that holds the function's code")
    if opt_dir is not None and not os.path.isdir(opt_dir):
        raise InvalidConfigurationError(f"opt_dir {opt_dir!r} is not a directory: pass the folder "
                                        f"the layers were extracted into, or None")
    bad = {k: v for k, v in environment.items() if not isinstance(k, str) or not isinstance(v, str)}
    if bad:
        raise InvalidConfigurationError(f"environment values must be strings, got {bad!r}")
    if not isinstance(memory_mb, int) or not 128 <= memory_mb <= 10240:
        raise InvalidConfigurationError(f"memory_mb {memory_mb!r} must be an integer in 128–10240")
    if not isinstance(timeout_s, (int, float)) or not 0 < timeout_s <= 900:
        raise InvalidConfigurationError(f"timeout_s {timeout_s!r} must be in (0, 900] seconds")
