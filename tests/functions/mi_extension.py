"""A stdlib external extension for the Managed Instances tests.

It registers for ``MI_EXTENSION_EVENTS`` (comma-separated, default ``SHUTDOWN``), prints
``MI-EXT-REFUSED <status> <body>`` if the registration is refused, one ``MI-EXT-EVENT <json>``
line per event, and exits with status 9 as soon as the file ``MI_EXTENSION_EXIT_FILE`` exists
(a crash in the middle of the environment's life).
"""
import json
import os
import sys
import threading
import time
import urllib.error

from probe_extension import NAME, call  # tests/functions is on PYTHONPATH (the task root)


def exit_when_told(path):
    while not os.path.exists(path):
        time.sleep(0.01)
    print("MI-EXT-CRASHING", flush=True)
    os._exit(9)


def main():
    events = os.environ.get("MI_EXTENSION_EVENTS", "SHUTDOWN").split(",")
    try:
        headers, _ = call("/register", json.dumps({"events": events}).encode(),
                          {"Lambda-Extension-Name": NAME})
    except urllib.error.HTTPError as refusal:
        print(f"MI-EXT-REFUSED {refusal.code} {refusal.read().decode()}", flush=True)
        sys.exit(1)
    if os.environ.get("MI_EXTENSION_EXIT_FILE"):
        threading.Thread(target=exit_when_told, args=(os.environ["MI_EXTENSION_EXIT_FILE"],),
                         daemon=True).start()
    identifier = headers["Lambda-Extension-Identifier"]
    while True:
        _, body = call("/event/next", headers={"Lambda-Extension-Identifier": identifier})
        print(f"MI-EXT-EVENT {body.decode()}", flush=True)
        if json.loads(body)["eventType"] == "SHUTDOWN":
            return


if __name__ == "__main__":
    main()
