"""Sample handlers for the Runtime API emulator's tests (and anyone else's: distinct names).

Each handler makes one behaviour observable from outside the runtime process.
"""
import json
import os
import time


def handler(event, context):
    """Return the event unchanged (the runtime re-serialises it as JSON)."""
    return event


def raw(event, context):
    """Return ``event["body"]`` as raw UTF-8 bytes: the runtime posts them untouched."""
    return event["body"].encode("utf-8")


def context_info(event, context):
    """Everything the runtime built from the /next headers and the environment."""
    return {
        "aws_request_id": context.aws_request_id,
        "invoked_function_arn": context.invoked_function_arn,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "function_name": context.function_name,
        "function_version": context.function_version,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "client_context_custom": getattr(context.client_context, "custom", None),
        "identity_id": getattr(context.identity, "cognito_identity_id", None),
        "trace_id": os.environ.get("_X_AMZN_TRACE_ID"),
        "environ": dict(os.environ),
        "cwd": os.getcwd(),
    }


def runtime_api(event, context):
    """The Runtime API address this runtime talks to (direct, or a proxy's)."""
    return os.environ["AWS_LAMBDA_RUNTIME_API"]


def fail(event, context):
    """Raise, so the runtime reports the handler's error type and message."""
    raise ValueError(event.get("message", "handler failed on purpose"))


def sleep(event, context):
    """Sleep ``event["seconds"]`` then answer: a slow handler for timeout tests."""
    time.sleep(float(event["seconds"]))
    return {"slept": event["seconds"]}


def crash(event, context):
    """Exit the runtime process mid-invocation, without answering."""
    print("crashing on purpose", flush=True)
    os._exit(int(event.get("code", 3)))


def log(event, context):
    """Write a recognisable line to stdout and one to stderr."""
    import sys

    print(f"stdout line {event['marker']}", flush=True)
    print(f"stderr line {event['marker']}", file=sys.stderr, flush=True)
    return json.dumps(event)


def pattern(size):
    """The deterministic bytes ``sized`` returns, for byte-for-byte comparison in tests."""
    block = bytes(range(256))
    return (block * (size // 256 + 1))[:size]


def sized(event, context):
    """Return exactly ``event["size"]`` bytes of ``pattern`` (large responses without a large event)."""
    return pattern(int(event["size"]))


def digest(event, context):
    """Length and SHA-256 of ``event["body"]`` as UTF-8: proves a large event arrived intact."""
    import hashlib

    data = event["body"].encode("utf-8")
    return {"length": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def exit_soon(event, context):
    """Answer, then let the runtime process exit 50 ms later (between two invocations)."""
    import threading

    threading.Timer(0.05, os._exit, args=(0,)).start()
    return os.getpid()


def chatter(event, context):
    """Write ``event["lines"]`` numbered lines to stdout, in many small writes."""
    import sys

    for number in range(int(event["lines"])):
        sys.stdout.write(f"chatter {number}\n")
        sys.stdout.flush()
    return "done"
