"""What an Init phase and an invocation produce, as Lambda reports them to the caller.

A function's failure is data here, never an exception: ``InvokeResult.status`` says
``success``, ``error``, ``timeout`` or ``crash`` and ``error_type`` carries the errorType Lambda
would report (the runtime's own, or ``Sandbox.Timedout``, ``Runtime.ExitError``,
``Extension.Crash``, ``Function.ResponseSizeTooLarge``).
"""
from __future__ import annotations

import json
import signal
from dataclasses import dataclass, field
from typing import Dict, Literal, Optional, Sequence

__all__ = ["Headers", "InitResult", "InvokeResult", "InvokeStatus", "error_payload",
           "error_message_of", "exit_description"]

InvokeStatus = Literal["success", "error", "timeout", "crash"]


class Headers(dict):
    """Header names as sent, looked up case-insensitively (libcurl lower-cases some clients')."""

    def __init__(self, pairs: Sequence = ()):
        super().__init__(pairs)
        self._lower = {k.lower(): k for k in self}

    def __getitem__(self, name: str):
        return super().__getitem__(self._lower.get(name.lower(), name))

    def __contains__(self, name) -> bool:
        return isinstance(name, str) and name.lower() in self._lower

    def get(self, name: str, default=None):
        return self[name] if name in self else default


@dataclass(frozen=True)
class InitResult:
    """How an Init phase ended. ``error`` is ``"<errorType>: <message>"`` when ``ok`` is False."""

    ok: bool
    duration_ms: float
    error: Optional[str] = None
    error_type: Optional[str] = None
    payload: bytes = b""


@dataclass(frozen=True)
class InvokeResult:
    """One invocation as the caller of Lambda's Invoke sees it, plus what the emulator observed.

    ``payload`` holds the exact bytes the runtime sent (de-chunked when streamed);
    ``client_address`` is the peer that delivered the response (the runtime itself, or a
    proxy in front of it); ``init`` is the cold start this invocation triggered, if any.
    """

    request_id: str
    status: InvokeStatus
    payload: bytes
    headers: Dict[str, str]
    error_type: Optional[str]
    duration_ms: float
    trailers: Dict[str, str] = field(default_factory=dict)
    client_address: Optional[str] = None
    response_mode: str = "buffered"
    init: Optional[InitResult] = None


def error_payload(error_type: Optional[str], message: Optional[str]) -> bytes:
    """The JSON body Lambda returns for a failure the platform (not the runtime) detected."""
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


def error_message_of(body: bytes) -> str:
    """``errorMessage`` of a posted error body, or the body itself when it is not that JSON."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return body.decode("utf-8", errors="replace")[:500]
    if isinstance(parsed, dict) and parsed.get("errorMessage"):
        return str(parsed["errorMessage"])
    return body.decode("utf-8", errors="replace")[:500]


def exit_description(code: Optional[int]) -> str:
    """A process's end in Lambda's words: ``exit status 3`` or ``signal: kill``."""
    if code is not None and code < 0:
        return f"signal: {signal.Signals(-code).name.lower().replace('sig', '')}"
    return f"exit status {code}"
