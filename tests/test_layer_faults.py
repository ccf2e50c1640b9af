"""The per-invocation decision and the injected payloads, seen from outside the binary: what
reaches the Runtime API for each fault, and which invocations get one under a decision seed.
The decision's rules draw by draw (jitter bounds, the percentage's edge, expiry's instant) are
Go table tests in layer/internal/faults."""
import json

import pytest

from chaos_layer import config as c

from layer_fixtures import FakeRuntimeApi, ProxyProcess, RawClient, seeded_injections

NEXT = b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n"


def result_post(rid):
    return (b"POST /2018-06-01/runtime/invocation/%s/response HTTP/1.1\r\nHost: x\r\n"
            b"Content-Length: 6\r\n\r\n\"real\"" % rid.encode())


@pytest.fixture
def inject():
    """Runs invocations (event, then the handler's result) through the binary; returns the
    results that reached the Runtime API, injected or relayed."""
    opened = []

    def run(env, request_ids=("r1",), task_root=""):
        api = FakeRuntimeApi()
        proxy = ProxyProcess({c.UPSTREAM_RUNTIME_API: api.address, c.PROXY_PORT: "0",
                              "LAMBDA_TASK_ROOT": task_root, **env})
        opened.append((api, proxy))
        client = RawClient(proxy.port)
        for rid in request_ids:
            api.add_event(rid)
            client.exchange(NEXT)
            client.exchange(result_post(rid), b"POST")
        return api.results()

    yield run
    for api, proxy in opened:
        proxy.close()
        api.close()


def test_injected_error_has_the_runtime_payload_keys_in_order_and_its_headers(inject):
    [error] = inject({c.FAULT_TYPE: "error", c.ERROR_TYPE: "Throttled",
                      c.ERROR_MESSAGE: "slow down ✋"})
    assert error.body == (b'{"errorMessage": "slow down \\u270b", "errorType": "Throttled", '
                          b'"requestId": "r1", "stackTrace": []}')  # json.dumps, byte for byte
    assert error.header("Lambda-Runtime-Function-Error-Type") == b"Throttled"
    assert error.header("Content-Type") == b"application/json"


def test_error_type_header_cannot_be_split_by_a_newline(inject):
    [error] = inject({c.FAULT_TYPE: "error", c.ERROR_TYPE: "A\r\nX-Evil: 1"})
    assert error.header("X-Evil") is None
    assert error.header("Lambda-Runtime-Function-Error-Type") == b"AX-Evil: 1"


def test_x_ray_cause_header_carries_the_message_but_cannot_be_split_by_it(inject):
    [error] = inject({c.FAULT_TYPE: "error", c.ERROR_TYPE: "Boom",
                      c.ERROR_MESSAGE: "line\r\nX-Evil: 1 ✋"}, task_root="/var/task")
    cause = error.header("Lambda-Runtime-Function-XRay-Error-Cause")
    assert cause.isascii() and error.header("X-Evil") is None
    assert json.loads(cause) == {"working_directory": "/var/task", "paths": [], "exceptions": [
        {"message": "line\r\nX-Evil: 1 ✋", "type": "Boom", "stack": []}]}


@pytest.mark.parametrize("body,content_type", [('{"ok": false}', "application/json"),
                                               ("Service down", "text/plain"),
                                               ("", "text/plain"),
                                               ("[" * 3000, "text/plain")])
def test_replacement_is_an_api_gateway_proxy_response(inject, body, content_type):
    [result] = inject({c.FAULT_TYPE: "response", c.RESPONSE_STATUS_CODE: "503",
                       c.RESPONSE_BODY: body})
    assert result.path.endswith(b"/r1/response")
    assert json.loads(result.body) == {"statusCode": 503, "headers": {"Content-Type": content_type},
                                       "body": body, "isBase64Encoded": False}


def test_a_seed_injects_exactly_the_invocations_pythons_seeded_draw_picks(inject):
    """CHAOS_DECISION_SEED means what it meant under the Python layer, so the local emulator's
    --seed replays the same decisions: here 200 request ids at 30 %."""
    ids = [f"req-{i}" for i in range(200)]
    expected = {rid for rid, hit in zip(ids, seeded_injections("run-42", ids, 30)) if hit}
    results = inject({c.FAULT_TYPE: "error", c.INVOCATION_PERCENTAGE: "30",
                      c.DECISION_SEED: "run-42"}, ids)
    injected = {r.path.rsplit(b"/", 2)[1].decode() for r in results if r.path.endswith(b"/error")}
    assert injected == expected
    assert 40 < len(injected) < 80  # really drawn: about 30 % of 200
