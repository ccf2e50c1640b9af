"""The per-invocation decision: does this invocation get a fault, and what exactly is injected.

Pure functions of the configuration, the clock and a random draw, so the proxy stays a plain
relay and every rule here (percentage, jitter, expiry, payload shapes) is unit-tested without
sockets. The payloads imitate what a real runtime and API Gateway integration would produce, so
callers cannot tell an injected failure from a genuine one.
"""
from __future__ import annotations

from collections import namedtuple

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~3 ms per cold start

from .config import FaultConfig

if TYPE_CHECKING:
    from typing import Callable, Dict, Optional, Tuple

__all__ = ["Decision", "decide", "seeded_draw", "error_result", "replacement_result", "ERROR_TYPE_HEADER",
           "XRAY_CAUSE_HEADER"]

# The header a runtime sets on /error; Lambda reports it as the invocation's error type.
ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
# The exception awslambdaric describes for X-Ray with each error (its make_xray_fault).
XRAY_CAUSE_HEADER = "Lambda-Runtime-Function-XRay-Error-Cause"


class Decision(namedtuple("Decision", "fault delay_ms prevent_execution", defaults=(0, False))):
    """The fault one invocation receives (a tuple: built on the hot path, so kept cheap).

    fault: "latency" | "error" | "response"; delay_ms: latency added before the handler
    receives the event; prevent_execution: answer without running the handler.
    """

    __slots__ = ()


def decide(cfg: FaultConfig, now_epoch_s: float, draw: Callable[[], float]) -> Optional[Decision]:
    """Roll the dice for one invocation; None means "pass it through untouched".

    `draw` returns a uniform float in [0, 1) (random.random in production, a fixed sequence in
    tests). Each invocation is independent: the fault applies with probability percentage/100.
    """
    if cfg.fault_type is None:
        return None
    if cfg.expires_at is not None and now_epoch_s >= cfg.expires_at.timestamp():
        return None
    if cfg.percentage < 100.0 and draw() * 100.0 >= cfg.percentage:
        return None
    if cfg.fault_type == "latency":
        jitter = int(draw() * (cfg.latency_jitter_ms + 1)) if cfg.latency_jitter_ms else 0
        return Decision("latency", cfg.latency_ms + jitter)
    return Decision(cfg.fault_type, 0, cfg.prevent_execution)


def seeded_draw(seed: str, request_id: bytes) -> Callable[[], float]:
    """The draws of one invocation when CHAOS_DECISION_SEED is set: a generator seeded with the
    seed and the request id, so the same invocation gets the same decision in a replayed run
    whichever environment serves it (the local emulator derives request ids from its seed).
    A str seed goes through SHA-512, so the draws do not depend on PYTHONHASHSEED."""
    import random  # lazily: only local, seeded runs pay for it

    return random.Random(f"{seed}/{request_id.decode('latin-1')}").random


def error_result(cfg: FaultConfig, request_id: str = "",
                 working_directory: str = "") -> Tuple[bytes, Dict[str, str]]:
    """Body and headers of an injected `/error` post, exactly as awslambdaric would send them
    (its `make_error`: errorMessage, errorType, requestId, stackTrace, in that order; its
    `make_xray_fault` in a header, so X-Ray shows the exception as for a real one)."""
    import json  # lazily: json pulls in re, ~5 ms the cold start should not pay

    body = json.dumps({"errorMessage": cfg.error_message, "errorType": cfg.error_type,
                       "requestId": request_id, "stackTrace": []}).encode()
    cause = json.dumps({"working_directory": working_directory,  # ASCII: no header split
                        "exceptions": [{"message": cfg.error_message, "type": cfg.error_type,
                                        "stack": []}], "paths": []})
    return body, {"Content-Type": "application/json",
                  ERROR_TYPE_HEADER: _header_safe(cfg.error_type), XRAY_CAUSE_HEADER: cause}


def replacement_result(cfg: FaultConfig) -> Tuple[bytes, Dict[str, str]]:
    """Body and headers of an injected `/response`: an API Gateway proxy integration response."""
    import json

    content_type = "application/json" if _is_json(cfg.response_body) else "text/plain"
    body = json.dumps({"statusCode": cfg.response_status_code,
                       "headers": {"Content-Type": content_type},
                       "body": cfg.response_body, "isBase64Encoded": False}).encode()
    return body, {"Content-Type": "application/json"}


def _is_json(text: str) -> bool:
    import json

    try:
        json.loads(text)
    except (ValueError, RecursionError):  # "[[[[…": the extension must not crash on a body
        return False
    return True


def _header_safe(value: str) -> str:
    """An error type travels in an HTTP header: drop anything that could split the header."""
    return "".join(ch for ch in value if 32 <= ord(ch) < 127) or "ChaosInjectedError"
