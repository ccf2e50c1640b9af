"""A tiny stdlib-only external extension for the emulator's tests.

It prints one ``PROBE-EVENT <json>`` line per event it receives, so tests read its life from
``env.logs()``. Behaviour is chosen by environment variables (the function's environment):
``PROBE_MODE`` = ``normal`` (default) | ``never-register`` | ``crash-before-register`` |
``init-error`` | ``exit-on-invoke``; ``PROBE_POST_INVOKE_MS`` = time it "works" after INVOKE before calling /next.
"""
import json
import os
import sys
import time
import urllib.request

API = f"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}/2020-01-01/extension"
NAME = os.path.basename(sys.argv[0])


def call(path, data=None, headers=None):
    request = urllib.request.Request(API + path, data=data, headers=headers or {},
                                     method="POST" if data is not None else "GET")
    with urllib.request.urlopen(request) as response:
        return response.headers, response.read()


def main():
    mode = os.environ.get("PROBE_MODE", "normal")
    print(f"PROBE-START {NAME} mode={mode}", flush=True)
    if mode == "never-register":
        time.sleep(60)
        return
    if mode == "crash-before-register":
        sys.exit(7)
    headers, body = call("/register", json.dumps({"events": ["INVOKE", "SHUTDOWN"]}).encode(),
                         {"Lambda-Extension-Name": NAME,
                          "Lambda-Extension-Accept-Feature": "accountId"})
    identifier = headers["Lambda-Extension-Identifier"]
    print(f"PROBE-REGISTERED {body.decode()}", flush=True)
    if mode == "init-error":
        call("/init/error", b'{"errorMessage": "probe cannot start", "errorType": "Probe.Broken"}',
             {"Lambda-Extension-Identifier": identifier,
              "Lambda-Extension-Function-Error-Type": "Extension.ProbeBroken"})
        sys.exit(1)
    post_invoke_s = int(os.environ.get("PROBE_POST_INVOKE_MS", "0")) / 1000
    while True:
        _, body = call("/event/next", headers={"Lambda-Extension-Identifier": identifier})
        event = json.loads(body)
        print(f"PROBE-EVENT {json.dumps(event)}", flush=True)
        if mode == "exit-on-invoke" and event["eventType"] == "INVOKE":
            sys.exit(9)
        if event["eventType"] == "SHUTDOWN":
            print("PROBE-EXIT", flush=True)
            return
        time.sleep(post_invoke_s)


if __name__ == "__main__":
    main()
