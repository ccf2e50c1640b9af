"""Handlers for the chaos layer's tests: each leaves a trace outside the runtime process.

A fault that claims to prevent execution is proved by the trace's absence, not by timing.
"""
import os


def handler(event, context):
    """Append the request id to ``event["marker"]`` (a file), then answer like an API."""
    with open(event["marker"], "a") as handle:
        handle.write(context.aws_request_id + "\n")
    return {"statusCode": 200, "body": "handler ran"}


def runtime_api(event, context):
    """The Runtime API address this runtime was given (the proxy's, or Lambda's own)."""
    return os.environ["AWS_LAMBDA_RUNTIME_API"]
