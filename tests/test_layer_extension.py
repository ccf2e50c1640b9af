"""The extension's lifecycle: the built layer's /opt/extensions entry (the shim, then the Go
binary) run as Lambda runs it, against a fake Extensions API."""
import json
import os
import signal
import socket
import subprocess
import time

import pytest

from chaos_layer import config as c

from layer_fixtures import ACCEPTED, FakeRuntimeApi, layer_opt_dir


def extensions_api(on_shutdown_wait=None):
    """Answers register, then SHUTDOWN on the first event/next, recording what it saw."""
    seen = {}

    def respond(request):
        if request.path.endswith(b"/register"):
            seen["register"] = request
            seen["ready_at_register"] = _read(c.ready_file(api.address))
            return (b"HTTP/1.1 200 OK\r\nLambda-Extension-Identifier: ext-1\r\n"
                    b"Content-Length: 2\r\n\r\n{}")
        if not request.path.endswith(b"/event/next"):
            return ACCEPTED
        seen["next"] = request
        seen["ready_during_loop"] = _read(c.ready_file(api.address))
        if on_shutdown_wait is not None:
            on_shutdown_wait.wait(10)
        body = b'{"eventType": "SHUTDOWN", "shutdownReason": "spindown", "deadlineMs": 1}'
        return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)

    api = FakeRuntimeApi(respond)
    return api, seen


def _read(path):
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return None


def start(env):
    extension = layer_opt_dir() / "extensions" / c.EXTENSION_NAME
    return subprocess.Popen([str(extension)], env={"PATH": os.environ["PATH"], **env},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def run(env):
    child = start(env)
    out, _ = child.communicate(timeout=20)
    return child.returncode, out, child.pid


def test_registers_for_shutdown_only_with_its_file_name_and_cleans_up():
    api, seen = extensions_api()
    status, out, pid = run({c.RUNTIME_API: api.address, c.FAULT_TYPE: "latency",
                            c.PROXY_PORT: "0"})
    assert status == 0, out
    register = seen["register"]
    assert register.header("Lambda-Extension-Name") == c.EXTENSION_NAME.encode()
    assert json.loads(register.body) == {"events": ["SHUTDOWN"]}
    assert seen["next"].header("Lambda-Extension-Identifier") == b"ext-1"
    port, ready_pid = seen["ready_during_loop"].split()
    assert int(ready_pid) == pid  # the shim exec'd the binary: no process of its own
    assert f"proxy on 127.0.0.1:{port} -> {api.address}: latency at 100% of invocations" in out
    assert not os.path.exists(c.ready_file(api.address))
    api.close()


def test_the_ready_file_is_written_before_registering():
    api, seen = extensions_api()
    status, out, pid = run({c.RUNTIME_API: api.address, c.FAULT_TYPE: "error", c.PROXY_PORT: "0"})
    assert status == 0, out
    assert seen["ready_at_register"].endswith(f" {pid}\n")
    api.close()


def test_the_proxy_serves_while_the_extension_waits_for_shutdown():
    import threading

    release = threading.Event()
    api, seen = extensions_api(release)
    child = start({c.RUNTIME_API: api.address, c.FAULT_TYPE: "error", c.PROXY_PORT: "0"})
    try:
        deadline = time.monotonic() + 10
        while "ready_during_loop" not in seen and time.monotonic() < deadline:
            time.sleep(0.01)
        port = int(seen["ready_during_loop"].split()[0])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.1 ")  # relayed to the fake API's answer
    finally:
        release.set()
        child.communicate(timeout=20)
        api.close()


def test_without_a_fault_no_proxy_and_no_ready_file():
    api, seen = extensions_api()
    status, out, _ = run({c.RUNTIME_API: api.address})
    assert status == 0 and seen["ready_during_loop"] is None
    assert out == ""  # silent: a function without a fault sees nothing
    api.close()


def test_outside_lambda_it_says_what_is_missing():
    status, out, _ = run({})
    assert status == 1 and c.RUNTIME_API in out


def test_port_in_use_still_registers_without_a_proxy_and_names_the_fix():
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    api, seen = extensions_api()
    status, out, _ = run({c.RUNTIME_API: api.address, c.FAULT_TYPE: "latency",
                          c.PROXY_PORT: str(port)})
    assert status == 0 and "register" in seen and seen["ready_during_loop"] is None
    assert f"cannot listen on 127.0.0.1:{port}" in out and c.PROXY_PORT in out
    taken.close()
    api.close()


def test_an_upstream_that_does_not_answer_means_no_proxy_and_one_line():
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    dead = "127.0.0.1:%d" % free.getsockname()[1]
    free.close()
    api, seen = extensions_api()
    status, out, _ = run({c.RUNTIME_API: api.address, c.FAULT_TYPE: "latency",
                          c.PROXY_PORT: "0", c.UPSTREAM_RUNTIME_API: dead})
    assert status == 0 and seen["ready_during_loop"] is None
    assert f"the Runtime API at {dead} does not answer" in out and c.UPSTREAM_RUNTIME_API in out
    api.close()


@pytest.mark.parametrize("bad,value", [(c.LATENCY_MS, "fast"), (c.INVOCATION_PERCENTAGE, "150"),
                                       (c.FAULT_TYPE, "slow"), (c.EXPIRES_AT, "tomorrow"),
                                       (c.PROXY_PORT, "99999"), (c.PREVENT_EXECUTION, "maybe"),
                                       (c.RESPONSE_STATUS_CODE, "42"),
                                       (c.UPSTREAM_RUNTIME_API, "nowhere")])
def test_a_bad_value_means_no_fault_and_one_line_naming_the_variable_and_value(bad, value):
    api, seen = extensions_api()
    env = {c.RUNTIME_API: api.address, c.FAULT_TYPE: "latency", c.PROXY_PORT: "0", bad: value}
    status, out, _ = run(env)
    assert status == 0 and seen["ready_during_loop"] is None
    [line] = out.splitlines()
    assert line.startswith("[lambda-chaos] ") and f"{bad}='{value}' is invalid" in line
    assert "no fault is injected" in line
    api.close()


def test_a_fault_expired_at_init_starts_no_proxy_and_says_so():
    api, seen = extensions_api()
    status, out, _ = run({c.RUNTIME_API: api.address, c.FAULT_TYPE: "latency",
                          c.PROXY_PORT: "0", c.EXPIRES_AT: "2020-01-01T00:00:00Z"})
    assert status == 0 and seen["ready_during_loop"] is None
    assert out == "[lambda-chaos] fault latency expired at 2020-01-01T00:00:00Z; passing " \
                  "everything through\n"
    api.close()


def test_a_stale_ready_file_is_removed_at_start():
    api, seen = extensions_api()
    with open(c.ready_file(api.address), "w") as handle:
        handle.write("1 1\n")
    status, _, _ = run({c.RUNTIME_API: api.address})
    assert status == 0 and seen["ready_during_loop"] is None
    api.close()


def test_sigterm_removes_the_ready_file():
    import threading

    release = threading.Event()
    api, seen = extensions_api(release)
    child = start({c.RUNTIME_API: api.address, c.FAULT_TYPE: "latency", c.PROXY_PORT: "0"})
    deadline = time.monotonic() + 10
    while "ready_during_loop" not in seen and time.monotonic() < deadline:
        time.sleep(0.01)
    assert seen["ready_during_loop"]
    child.send_signal(signal.SIGTERM)
    child.communicate(timeout=10)
    release.set()
    assert child.returncode == 0 and not os.path.exists(c.ready_file(api.address))
    api.close()
