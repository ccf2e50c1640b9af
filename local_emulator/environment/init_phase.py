"""The Init phase's checks: when is it complete, what went wrong, what a timeout means.

Each check reads one ``LambdaApis`` state under its condition variable and either says
"done" (True), "keep waiting" (False), or raises InitFailure with the errorType Lambda would
report and a message that names the extension or runtime at fault and what to look at.
"""
from __future__ import annotations

from local_emulator.environment.lambda_apis import LambdaApis
from local_emulator.environment.results import error_message_of

__all__ = ["InitFailure", "registration_complete", "registration_timeout", "init_complete",
           "init_timeout"]


class InitFailure(Exception):
    """Raised inside the Init phase to end it: the errorType, a message, the posted body."""

    def __init__(self, error_type: str, message: str, payload: bytes = b""):
        super().__init__(message)
        self.error_type, self.message, self.payload = error_type, message, payload


def _raise_init_error(apis: LambdaApis) -> None:
    """A runtime's or extension's init/error ends the Init phase with its errorType."""
    if apis.init_error is not None:
        error_type, body = apis.init_error
        raise InitFailure(error_type,
                          error_message_of(body) or "init/error posted without a message", body)


def registration_complete(apis: LambdaApis) -> bool:
    """Extension init: every file in /opt/extensions has registered (or one died trying)."""
    _raise_init_error(apis)
    for name in apis.external_names:
        if apis.by_name(name) is None and name in apis.extension_exits:
            raise InitFailure(
                "Extension.Crash",
                f"extension {name!r} exited with status {apis.extension_exits[name]} before "
                f"registering with the Extensions API (see env.logs({name!r}))")
    return all(apis.by_name(name) is not None for name in apis.external_names)


def registration_timeout(apis: LambdaApis, limit: float) -> InitFailure:
    """Names the extensions that never registered, and the names that did (a typo shows)."""
    missing = [n for n in apis.external_names if apis.by_name(n) is None]
    names = sorted(r.name for r in apis.extensions.values())
    return InitFailure(
        "Extension.InitTimeout",
        f"extension(s) {missing} did not register with the Extensions API within {limit:g} s "
        f"(POST /2020-01-01/extension/register with Lambda-Extension-Name set to the file "
        f"name; registered so far: {names})")


def init_complete(apis: LambdaApis) -> bool:
    """Runtime and function init: the runtime and every extension have called /next."""
    _raise_init_error(apis)
    if apis.runtime_exit is not None:
        raise InitFailure("Runtime.ExitError",
                          f"the runtime exited with status {apis.runtime_exit} during init "
                          f"before calling /runtime/invocation/next (see env.logs('runtime'))")
    if apis.extension_exits:
        name, code = next(iter(apis.extension_exits.items()))
        raise InitFailure("Extension.Crash",
                          f"extension {name!r} exited with status {code} during init")
    return (apis.runtime_next_calls > 0
            and all(r.next_calls > 0 for r in apis.extensions.values()))


def init_timeout(apis: LambdaApis, limit: float) -> InitFailure:
    """Names whoever never called /next."""
    waiting = [r.name for r in apis.extensions.values() if r.next_calls == 0]
    if apis.runtime_next_calls == 0:
        waiting.insert(0, "runtime")
    return InitFailure("Sandbox.Timedout",
                        f"init did not complete within {limit:g} s: {waiting} never called /next")
