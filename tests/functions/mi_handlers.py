"""Handlers for the Managed Instances tests: each says which invocation and which worker it was.

Coordination is through files, because on Managed Instances the Python runtime runs each
concurrent invocation in its own process: ``event["started"]`` is written when the handler
begins, and the handler waits until ``event["release"]`` exists (or answers at once without
one). Nothing here sleeps for a fixed time that a test would then rely on.
"""
import os
import signal
import time


def hold(event, context):
    """Mark the start, wait for the release file, answer with this invocation's request id.

    ``event["exit"]``: exit this worker process without answering instead (the other workers
    carry on); ``event["kill_runtime"]``: kill the runtime's main process (this worker's
    parent), which ends the whole runtime.
    """
    started, release = event.get("started"), event.get("release")
    if started:
        with open(started, "w") as marker:
            marker.write(context.aws_request_id)
    if "exit" in event:
        os._exit(int(event["exit"]))
    if event.get("kill_runtime"):
        os.kill(os.getppid(), signal.SIGKILL)
    while release and not os.path.exists(release):
        time.sleep(0.005)
    return {"request_id": context.aws_request_id, "tag": event.get("tag"), "pid": os.getpid()}
