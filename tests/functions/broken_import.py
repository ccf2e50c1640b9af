"""A handler module that cannot be imported: the runtime must report an init error."""
raise RuntimeError("broken_import fails at import time on purpose")


def handler(event, context):  # pragma: no cover - never reached
    return event
