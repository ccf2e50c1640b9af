"""The extension's wiring (chaos_layer.extension.main), in-process against a fake Extensions API."""
import json
import os

from chaos_layer import config as c
from chaos_layer import extension

from layer_fixtures import FakeRuntimeApi


def extensions_api():
    """Answers register, then SHUTDOWN on the first event/next, recording what it saw."""
    seen = {}

    def respond(request):
        if request.path.endswith(b"/register"):
            seen["register"] = request
            return (b"HTTP/1.1 200 OK\r\nLambda-Extension-Identifier: ext-1\r\n"
                    b"Content-Length: 2\r\n\r\n{}")
        seen["next"] = request
        seen["ready_during_loop"] = os.path.exists(c.ready_file(api.address))
        body = b'{"eventType": "SHUTDOWN", "shutdownReason": "spindown", "deadlineMs": 1}'
        return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)

    api = FakeRuntimeApi(respond)
    return api, seen


def test_registers_for_shutdown_only_with_its_file_name_and_cleans_up(capfd):
    api, seen = extensions_api()
    env = {c.RUNTIME_API: api.address, c.FAULT_TYPE: "latency", c.PROXY_PORT: "0"}
    assert extension.main(env) == 0
    register = seen["register"]
    assert register.header("Lambda-Extension-Name") == c.EXTENSION_NAME.encode()
    assert json.loads(register.body) == {"events": ["SHUTDOWN"]}
    assert seen["next"].header("Lambda-Extension-Identifier") == b"ext-1"
    assert seen["ready_during_loop"] and not os.path.exists(c.ready_file(api.address))
    assert "proxy on 127.0.0.1:" in capfd.readouterr().out
    api.close()


def test_without_a_fault_no_proxy_and_no_ready_file(capfd):
    api, seen = extensions_api()
    assert extension.main({c.RUNTIME_API: api.address}) == 0
    assert seen["ready_during_loop"] is False
    assert capfd.readouterr().out == ""  # silent: a function without a fault sees nothing
    api.close()


def test_outside_lambda_it_says_what_is_missing(capfd):
    assert extension.main({}) == 1
    assert c.RUNTIME_API in capfd.readouterr().out
