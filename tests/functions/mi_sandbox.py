"""The handler of tests/test_sandbox_managed_instances.py, zipped as a function's code.

It says which execution environment and which runtime process served the invocation, and
holds until a test lets it go: ``event["started"]`` is written when the handler begins, and
the handler waits until ``event["release"]`` exists (or answers at once without one). On
Managed Instances the Python runtime runs each invocation in a worker process forked by the
runtime's main process, so ``runtime`` (the parent) names the environment's runtime.
"""
import os
import time


def hold(event, context):
    """Mark the start, wait for the release file, answer with where this invocation ran."""
    started, release = event.get("started"), event.get("release")
    if started:
        with open(started, "w") as marker:
            marker.write(context.aws_request_id)
    while release and not os.path.exists(release):
        time.sleep(0.005)
    return {"runtime_api": os.environ["AWS_LAMBDA_RUNTIME_API"], "runtime": os.getppid(),
            "pid": os.getpid(), "max_concurrency": os.environ.get("AWS_LAMBDA_MAX_CONCURRENCY")}
