"""Rules of the emulated Runtime API and Extensions API on the wire (headers, codes, bodies).

The routes (local_emulator/environment/lambda_apis.py) and the HTTP server (local_emulator/environment/http_server.py)
are exercised with plain http.client / raw sockets, as a runtime or an extension would; the
streaming test runs a stdlib custom runtime (tests/functions/streaming_runtime.py) end to end.
"""
import base64
import http.client
import json
import os
import socket
import sys
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local_emulator.environment.http_server import HttpServer, Response
from local_emulator.environment.lambda_apis import Invocation, LambdaApis
from local_emulator.environment.runtime_api import ExecutionEnvironment

FUNCTIONS = os.path.join(os.path.dirname(__file__), "functions")
NEXT = "/2018-06-01/runtime/invocation/next"


@pytest.fixture
def apis_server():
    """LambdaApis behind a live HttpServer, no processes: the test plays runtime and extension."""
    apis = LambdaApis("fn", "$LATEST", "echo.handler", "123456789012", [])
    server = HttpServer(apis.handle).start()
    yield apis, server
    apis.close()
    server.stop()


def _connection(server):
    return http.client.HTTPConnection(server.host, server.port, timeout=5)


def _invocation(request_id="req-1", event=b'{"k": "v"}'):
    return Invocation(request_id=request_id, event=event, deadline_ms=1_900_000_000_000,
                      deadline=time.monotonic() + 30,
                      invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:fn",
                      trace_id="Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Sampled=1",
                      client_context='{"custom": {}}', cognito_identity='{"cognitoIdentityId": "i"}')


def _json_call(server, method, path, body=None, headers=None):
    connection = _connection(server)
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, dict(response.getheaders()), json.loads(data) if data else None


def _next_in_thread(server):
    """Start GET /next (it blocks until an event is dispatched); returns (thread, results)."""
    results = {}
    connection = _connection(server)

    def run():
        connection.request("GET", NEXT)
        response = connection.getresponse()
        results.update(status=response.status, headers=dict(response.getheaders()),
                       body=response.read(), connection=connection)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, results


# --- Runtime API ------------------------------------------------------------------------------
def test_next_answers_with_the_event_and_every_invocation_header(apis_server):
    apis, server = apis_server
    thread, results = _next_in_thread(server)
    time.sleep(0.05)
    apis.dispatch(_invocation())
    thread.join(5)
    headers = results["headers"]
    assert results["status"] == 200 and results["body"] == b'{"k": "v"}'
    assert headers["Lambda-Runtime-Aws-Request-Id"] == "req-1"
    assert headers["Lambda-Runtime-Deadline-Ms"] == "1900000000000"
    assert headers["Lambda-Runtime-Invoked-Function-Arn"].endswith(":function:fn")
    assert headers["Lambda-Runtime-Trace-Id"].startswith("Root=1-")
    assert headers["Lambda-Runtime-Client-Context"] == '{"custom": {}}'
    assert headers["Lambda-Runtime-Cognito-Identity"] == '{"cognitoIdentityId": "i"}'
    assert headers["Content-Type"] == "application/json"


def _deliver(apis, server):
    """Play a runtime blocked in /next, dispatch one invocation to it; (invocation, results)."""
    thread, results = _next_in_thread(server)
    invocation = _invocation()
    apis.dispatch(invocation)
    thread.join(5)
    assert results["status"] == 200
    return invocation, results


def test_response_is_accepted_once_with_202_and_recorded_byte_for_byte(apis_server):
    apis, server = apis_server
    invocation, results = _deliver(apis, server)
    connection = results["connection"]  # same kept-alive connection as /next
    payload = bytes(range(256)) * 4
    connection.request("POST", "/2018-06-01/runtime/invocation/req-1/response", body=payload)
    response = connection.getresponse()
    assert (response.status, json.loads(response.read())) == (202, {"status": "OK"})
    assert invocation.answered and invocation.status == "success" and invocation.payload == payload
    status, _, body = _json_call(server, "POST", "/2018-06-01/runtime/invocation/req-1/response", b"again")
    assert (status, body["errorType"]) == (400, "InvalidStateTransition")


def test_error_post_records_the_error_type_header(apis_server):
    apis, server = apis_server
    invocation, _ = _deliver(apis, server)
    status, _, _ = _json_call(server, "POST", "/2018-06-01/runtime/invocation/req-1/error",
                              b'{"errorType": "Body.Type", "errorMessage": "m"}',
                              {"Lambda-Runtime-Function-Error-Type": "Header.Type"})
    assert status == 202
    assert (invocation.status, invocation.error_type) == ("error", "Header.Type")


def test_error_without_the_header_takes_the_error_type_from_the_body(apis_server):
    apis, server = apis_server
    invocation, _ = _deliver(apis, server)
    _json_call(server, "POST", "/2018-06-01/runtime/invocation/req-1/error",
               b'{"errorType": "Body.Type", "errorMessage": "m"}')
    assert (invocation.status, invocation.error_type) == ("error", "Body.Type")


def test_response_for_an_unknown_request_id_is_400(apis_server):
    _, server = apis_server
    status, _, body = _json_call(server, "POST", "/2018-06-01/runtime/invocation/nope/response", b"{}")
    assert (status, body["errorType"]) == (400, "InvalidRequestID")
    assert "'nope'" in body["errorMessage"]


def test_init_error_is_accepted_during_init_and_refused_after(apis_server):
    apis, server = apis_server
    status, _, _ = _json_call(server, "POST", "/2018-06-01/runtime/init/error", b'{"errorMessage": "x"}',
                              {"Lambda-Runtime-Function-Error-Type": "Runtime.Boom"})
    assert status == 202 and apis.init_error == ("Runtime.Boom", b'{"errorMessage": "x"}')
    apis.init_done = True
    status, _, body = _json_call(server, "POST", "/2018-06-01/runtime/init/error", b"{}")
    assert (status, body["errorType"]) == (403, "InvalidStateTransition")


def test_unknown_path_is_404_and_wrong_method_is_405(apis_server):
    _, server = apis_server
    assert _json_call(server, "GET", "/2018-06-01/runtime/nothing")[0] == 404
    assert _json_call(server, "GET", "/somewhere/else")[0] == 404
    assert _json_call(server, "POST", NEXT, b"")[0] == 405


# --- Extensions API ---------------------------------------------------------------------------
def _register(server, name="ext", events=("INVOKE", "SHUTDOWN"), feature=None):
    headers = {"Lambda-Extension-Name": name}
    if feature:
        headers["Lambda-Extension-Accept-Feature"] = feature
    return _json_call(server, "POST", "/2020-01-01/extension/register",
                      json.dumps({"events": list(events)}).encode(), headers)


def test_register_returns_an_identifier_and_the_function_facts(apis_server):
    _, server = apis_server
    status, headers, body = _register(server, feature="accountId")
    assert status == 200 and len(headers["Lambda-Extension-Identifier"]) == 36
    assert body == {"functionName": "fn", "functionVersion": "$LATEST", "handler": "echo.handler",
                    "accountId": "123456789012"}
    assert "accountId" not in _register(server, name="other")[2]


@pytest.mark.parametrize("headers, body, status, error_type", [
    ({}, b'{"events": ["INVOKE"]}', 400, "InvalidRequest"),
    ({"Lambda-Extension-Name": "e"}, b'{"events": ["INVOKE", "BOOT"]}', 400, "InvalidEventType"),
    ({"Lambda-Extension-Name": "e"}, b"not json", 400, "InvalidRequest"),
])
def test_bad_registration_is_refused_with_the_reason(apis_server, headers, body, status, error_type):
    _, server = apis_server
    code, _, answer = _json_call(server, "POST", "/2020-01-01/extension/register", body, headers)
    assert (code, answer["errorType"]) == (status, error_type)


def test_registration_twice_or_after_init_is_403(apis_server):
    apis, server = apis_server
    _register(server)
    assert _register(server)[2]["errorType"] == "Extension.AlreadyRegistered"
    apis.registration_open = False
    status, _, body = _register(server, name="late")
    assert (status, body["errorType"]) == (403, "Extension.InvalidState")


def test_event_next_needs_a_known_identifier(apis_server):
    _, server = apis_server
    status, _, body = _json_call(server, "GET", "/2020-01-01/extension/event/next")
    assert (status, body["errorType"]) == (403, "Extension.MissingExtensionIdentifier")
    status, _, body = _json_call(server, "GET", "/2020-01-01/extension/event/next",
                                 headers={"Lambda-Extension-Identifier": "unknown"})
    assert (status, body["errorType"]) == (403, "Extension.UnknownExtensionIdentifier")


def test_invoke_event_goes_only_to_extensions_registered_for_it(apis_server):
    apis, server = apis_server
    invoke_id = _register(server, "invoke-ext", ["INVOKE"])[1]["Lambda-Extension-Identifier"]
    _register(server, "shutdown-ext", ["SHUTDOWN"])
    invocation = _invocation()
    apis.dispatch(invocation)
    assert [r.name for r in apis.extensions.values() if r.queue] == ["invoke-ext"]
    assert len(invocation.pending_extensions) == 1
    status, headers, event = _json_call(server, "GET", "/2020-01-01/extension/event/next",
                                        headers={"Lambda-Extension-Identifier": invoke_id})
    assert status == 200 and headers["Lambda-Extension-Event-Identifier"]
    assert event == {"eventType": "INVOKE", "deadlineMs": 1_900_000_000_000, "requestId": "req-1",
                     "invokedFunctionArn": invocation.invoked_function_arn,
                     "tracing": {"type": "X-Amzn-Trace-Id", "value": invocation.trace_id}}
    assert len(invocation.pending_extensions) == 1  # done only when it calls /next again


def _until(check, what, timeout_s=5.0):
    """Poll ``check()`` (under the APIs' lock when it reads their state) until it is true."""
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout_s:g} s: {what}"
        time.sleep(0.005)


def _extension_loop(server, identifier):
    """Play an extension: /event/next until SHUTDOWN, in a thread; returns (thread, events)."""
    events = []
    connection = _connection(server)

    def run():
        while True:
            connection.request("GET", "/2020-01-01/extension/event/next",
                               headers={"Lambda-Extension-Identifier": identifier})
            events.append(json.loads(connection.getresponse().read()))
            if events[-1]["eventType"] == "SHUTDOWN":
                return

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, events


def test_only_an_event_for_it_wakes_an_extensions_long_poll(apis_server):
    # Lambda costs an extension blocked in /event/next nothing per invocation unless it
    # registered for INVOKE; waking its long poll on every state change made each invocation
    # of a function with a SHUTDOWN-only extension ~10 % slower in the emulator.
    apis, server = apis_server
    ids = {name: _register(server, name, events)[1]["Lambda-Extension-Identifier"]
           for name, events in (("invoke-ext", ["INVOKE", "SHUTDOWN"]), ("idle-ext", ["SHUTDOWN"]))}
    loops = {name: _extension_loop(server, identifier) for name, identifier in ids.items()}
    invoke_ext, idle_ext = apis.by_name("invoke-ext"), apis.by_name("idle-ext")

    def waiting(record, calls):  # the lock is free only while its thread waits in /event/next
        with apis.cv:
            return record.next_calls == calls
    _until(lambda: waiting(idle_ext, 1), "idle-ext in /event/next")
    apis.init_done = True
    for n in range(1, 6):
        _until(lambda: waiting(invoke_ext, n), "invoke-ext back in /event/next")
        invocation = _invocation(request_id=f"req-{n}")
        thread, results = _next_in_thread(server)
        apis.dispatch(invocation)
        thread.join(5)
        results["connection"].request("POST", f"/2018-06-01/runtime/invocation/req-{n}/response",
                                      body=b"{}")
        assert results["connection"].getresponse().status == 202
        _until(lambda: invocation.finished, "the invocation released by invoke-ext")
    assert (idle_ext.wakeups, idle_ext.received) == (0, [])
    assert invoke_ext.wakeups == 5  # once per INVOKE, for nothing else
    apis.send_shutdown("spindown", 1_900_000_000_000)
    for thread, _ in loops.values():
        thread.join(5)
    assert [e["eventType"] for e in loops["idle-ext"][1]] == ["SHUTDOWN"]
    assert [e["eventType"] for e in loops["invoke-ext"][1]] == ["INVOKE"] * 5 + ["SHUTDOWN"]
    assert idle_ext.wakeups == 1


def test_extension_exit_error_is_recorded(apis_server):
    apis, server = apis_server
    identifier = _register(server)[1]["Lambda-Extension-Identifier"]
    status, _, _ = _json_call(server, "POST", "/2020-01-01/extension/exit/error", b'{"errorMessage": "bye"}',
                              {"Lambda-Extension-Identifier": identifier,
                               "Lambda-Extension-Function-Error-Type": "Extension.Bye"})
    assert status == 202 and apis.exit_errors == [("ext", "Extension.Bye", b'{"errorMessage": "bye"}')]


# --- HTTP server --------------------------------------------------------------------------------
@pytest.fixture
def recording_server():
    """An HttpServer whose handler records each request and answers 200 with the body's length."""
    seen = []

    def handler(request):
        seen.append(request)
        return Response(200, str(len(request.body)).encode())

    server = HttpServer(handler).start()
    yield server, seen
    server.stop()


def _raw_exchange(server, data):
    """Send raw bytes, half-close, and read every answer until the server closes."""
    sock = socket.create_connection((server.host, server.port), timeout=5)
    sock.sendall(data)
    sock.shutdown(socket.SHUT_WR)
    received = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    sock.close()
    return received


def test_chunked_body_with_trailers_is_decoded_byte_for_byte(recording_server):
    server, seen = recording_server
    raw = (b"POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTrailer: X-Done\r\n\r\n"
           b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Done: yes\r\nX-Other: 2\r\n\r\n")
    assert _raw_exchange(server, raw).endswith(b"\r\n\r\n11")
    request = seen[0]
    assert request.chunked and request.body == b"hello world"
    assert request.trailers == [("X-Done", "yes"), ("X-Other", "2")]
    assert request.header("x-done") == "yes"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=5000), cuts=st.lists(st.integers(0, 5000), max_size=8),
       trailer=st.text(alphabet="abcXYZ019-_ ;=/", max_size=30))
def test_any_chunking_of_a_body_decodes_to_the_same_bytes(recording_server, body, cuts, trailer):
    server, seen = recording_server
    bounds = sorted({0, len(body), *[c for c in cuts if c <= len(body)]})
    chunks = [body[a:b] for a, b in zip(bounds, bounds[1:]) if b > a]
    raw = b"POST /s HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + b"".join(
        b"%X\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\nX-T: " + trailer.encode() + b"\r\n\r\n"
    answer = _raw_exchange(server, raw)
    assert answer.endswith(b"\r\n\r\n%d" % len(body))
    assert seen[-1].body == body and seen[-1].trailers == [("X-T", trailer.strip())]


def test_connection_is_kept_alive_across_requests(recording_server):
    server, seen = recording_server
    raw = b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nPOST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
    answer = _raw_exchange(server, raw)
    assert answer.count(b"HTTP/1.1 200 OK") == 2 and answer.endswith(b"3")
    assert [r.path for r in seen] == ["/a", "/b"] and seen[0].client == seen[1].client


def test_expect_100_continue_is_answered_before_the_body(recording_server):
    server, _ = recording_server
    sock = socket.create_connection((server.host, server.port), timeout=5)
    sock.sendall(b"POST /big HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
    assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
    sock.sendall(b"data")
    assert sock.recv(1000).endswith(b"4")
    sock.close()


def test_a_failing_route_is_answered_500_with_the_reason():
    def handler(request):
        raise KeyError("no such thing")

    server = HttpServer(handler).start()
    try:
        answer = _raw_exchange(server, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    finally:
        server.stop()
    assert answer.startswith(b"HTTP/1.1 500") and b"KeyError" in answer and b"no such thing" in answer


@pytest.mark.parametrize("raw, fragment", [
    (b"NONSENSE\r\n\r\n", b"malformed request line"),
    (b"POST /x HTTP/1.1\r\nContent-Length: ten\r\n\r\n", b"is not an integer"),
    (b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", b"malformed chunk size"),
])
def test_malformed_requests_get_400_with_the_reason(recording_server, raw, fragment):
    server, _ = recording_server
    answer = _raw_exchange(server, raw)
    assert answer.startswith(b"HTTP/1.1 400 Bad Request") and fragment in answer


# --- response streaming, end to end -------------------------------------------------------------
@pytest.fixture
def streaming_env():
    env = ExecutionEnvironment("unused.handler", FUNCTIONS,
                               runtime_command=[sys.executable, os.path.join(FUNCTIONS, "streaming_runtime.py")])
    yield env
    env.shutdown()


def test_streamed_response_is_reassembled_byte_for_byte(streaming_env):
    chunks = ["first ", "ünïcode ✓ ", "x" * 70000]
    result = streaming_env.invoke(json.dumps({"chunks": chunks}).encode())
    assert result.status == "success", streaming_env.logs()
    assert result.response_mode == "streaming"
    assert result.payload == "".join(chunks).encode("utf-8")
    assert result.headers["Lambda-Runtime-Function-Response-Mode"] == "streaming"
    # The runtime prints after it reads our 202, which may be just after invoke() returned.
    deadline = time.monotonic() + 5
    while f"STREAM-POSTED {result.request_id} 202" not in streaming_env.logs():
        assert time.monotonic() < deadline, streaming_env.logs()
        time.sleep(0.01)


def test_stream_ending_with_an_error_trailer_is_an_error_with_that_type(streaming_env):
    result = streaming_env.invoke(json.dumps({"chunks": ["partial"], "error_type": "Stream.Broke"}).encode())
    assert (result.status, result.error_type, result.payload) == ("error", "Stream.Broke", b"partial")
    error_body = json.loads(base64.b64decode(result.trailers["lambda-runtime-function-error-body"]))
    assert error_body == {"errorType": "Stream.Broke", "errorMessage": "stream broke"}
