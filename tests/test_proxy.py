"""The Runtime API proxy on raw sockets: what the runtime sends reaches Lambda unchanged, and
each fault changes exactly what it claims to. The upstream is a scripted fake (layer_fixtures)
so every byte that crossed the wire can be compared; test_layer_runtime.py repeats the
important cases with the real awslambdaric behind the proxy."""
import json
import socket
import threading
import time

import pytest

from chaos_layer import config as c
from chaos_layer import faults
from chaos_layer.proxy import Proxy

from layer_fixtures import ACCEPTED, FakeRuntimeApi, RawClient, event_response

NEXT = b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\nUser-Agent: t\r\n\r\n"


def post(path: str, body: bytes, extra: bytes = b"") -> bytes:
    return (b"POST %s HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n%s"
            b"content-length: %d\r\n\r\n" % (path.encode(), extra, len(body)) + body)


@pytest.fixture
def upstream():
    api = FakeRuntimeApi()
    yield api
    api.close()


def start_proxy(upstream, env=None, **kwargs):
    cfg = c.FaultConfig.from_environ(env or {c.FAULT_TYPE: "latency",
                                             c.INVOCATION_PERCENTAGE: "0"})
    proxy = Proxy(cfg, upstream.address, 0, function_name="fn", **kwargs)
    proxy.start()
    return proxy


def always(decision):
    return lambda cfg, now, draw: decision


def test_unknown_route_is_forwarded_with_method_headers_and_body_unchanged(upstream):
    upstream.respond = lambda req: (b"HTTP/1.1 418 I'm a teapot\r\nX-Odd-Case: A\r\nx-odd-case: b\r\n"
                                    b"Content-Length: 5\r\n\r\nhello")
    proxy = start_proxy(upstream)
    request = (b"PATCH /2030-01-01/whatever/new?x=1&y=%20 HTTP/1.1\r\nHost: x\r\nX-Mixed-CASE:  v \r\n"
               b"X-Dup: 1\r\nX-Dup: 2\r\nContent-Length: 3\r\n\r\nabc")
    client = RawClient(proxy.port)
    head, body = client.exchange(request)
    assert upstream.received[0].head + upstream.received[0].body == request
    assert head == (b"HTTP/1.1 418 I'm a teapot\r\nX-Odd-Case: A\r\nx-odd-case: b\r\n"
                    b"Content-Length: 5\r\n\r\n") and body == b"hello"
    proxy.close()


@pytest.mark.parametrize("size", [0, 1024, 1024 * 1024, 6 * 1024 * 1024])
def test_event_and_response_pass_through_byte_for_byte_at_size(upstream, size):
    payload = bytes(i % 251 for i in range(size))
    upstream.events.put(event_response("r1", payload))
    proxy = start_proxy(upstream)
    client = RawClient(proxy.port)
    head, body = client.exchange(NEXT)
    assert head + body == event_response("r1", payload)
    request = post("/2018-06-01/runtime/invocation/r1/response", payload)
    head, body = client.exchange(request, b"POST")
    assert upstream.results()[0].head + upstream.results()[0].body == request
    assert head + body == ACCEPTED
    assert upstream.connections == 1  # one kept-alive upstream connection for both
    proxy.close()


def test_unicode_event_and_handler_error_pass_through_unchanged(upstream):
    event = json.dumps({"name": "Zoë ✓ 日本 🎉"}, ensure_ascii=False).encode()
    upstream.events.put(event_response("r1", event))
    proxy = start_proxy(upstream)
    client = RawClient(proxy.port)
    assert client.exchange(NEXT)[1] == event
    error = post("/2018-06-01/runtime/invocation/r1/error",
                 b'{"errorMessage": "bo\xc3\xaft", "errorType": "ValueError", "stackTrace": []}',
                 b"Lambda-Runtime-Function-Error-Type: ValueError\r\n")
    client.exchange(error, b"POST")
    assert upstream.results()[0].head + upstream.results()[0].body == error
    proxy.close()


def test_streamed_chunked_response_and_trailers_pass_through_byte_for_byte(upstream):
    upstream.respond = lambda req: (
        b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\nTrailer: X-Done\r\n\r\n"
        b"2\r\nok\r\n0\r\nX-Done: yes\r\n\r\n")
    proxy = start_proxy(upstream)
    client = RawClient(proxy.port)
    pieces = [b"POST /2018-06-01/runtime/invocation/r1/response HTTP/1.1\r\nHost: x\r\n"
              b"Lambda-Runtime-Function-Response-Mode: streaming\r\nTransfer-Encoding: chunked\r\n"
              b"Trailer: Lambda-Runtime-Function-Error-Type\r\n\r\n5\r\nfir",
              b"st\r\n6;ext=1\r\nsecond\r\n",
              b"0\r\nLambda-Runtime-Function-Error-Type: Runtime.Timeout\r\nX-T: 1\r\n\r\n"]
    for piece in pieces:  # written in pieces that split a chunk, as a streaming handler does
        client.sock.sendall(piece)
        time.sleep(0.05)
    head, body = client.read_response(b"POST")
    [received] = upstream.results()
    assert received.head + received.body == b"".join(pieces)
    assert head.endswith(b"Trailer: X-Done\r\n\r\n")
    assert body == b"2\r\nok\r\n0\r\nX-Done: yes\r\n\r\n"
    proxy.close()


class StepUpstream:
    """An upstream driven step by step from the test: it sees each byte as the proxy sends it."""

    def __init__(self):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        cfg = c.FaultConfig.from_environ({c.FAULT_TYPE: "latency", c.INVOCATION_PERCENTAGE: "0"})
        self.proxy = Proxy(cfg, "127.0.0.1:%d" % self.listener.getsockname()[1], 0)
        self.proxy.start()
        self.client = RawClient(self.proxy.port)
        self.side = None
        self.seen = b""

    def read_until(self, ending: bytes) -> None:
        if self.side is None:
            self.side, _ = self.listener.accept()
            self.side.settimeout(5)
        while not self.seen.endswith(ending):
            self.seen += self.side.recv(65536)

    def close(self):
        self.proxy.close()
        self.listener.close()


def test_streamed_chunks_reach_upstream_before_the_stream_ends():
    step = StepUpstream()
    step.client.sock.sendall(b"POST /2018-06-01/runtime/invocation/r1/response HTTP/1.1\r\n"
                             b"Host: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
    step.read_until(b"5\r\nfirst\r\n")  # arrives although the stream has not ended
    step.client.sock.sendall(b"0\r\n\r\n")
    step.read_until(b"0\r\n\r\n")
    step.side.sendall(ACCEPTED)
    assert step.client.read_response(b"POST")[0].startswith(b"HTTP/1.1 202")
    step.close()


def test_latency_holds_the_event_for_the_configured_delay_plus_jitter(upstream):
    slept = []
    upstream.add_event("r1", b'{"a": 1}')
    proxy = start_proxy(upstream, {c.FAULT_TYPE: "latency", c.LATENCY_MS: "300",
                                   c.LATENCY_JITTER_MS: "100"},
                        sleep=slept.append, draw=lambda: 0.5)
    head, body = RawClient(proxy.port).exchange(NEXT)
    assert body == b'{"a": 1}' and b"Lambda-Runtime-Aws-Request-Id: r1" in head
    assert slept == [pytest.approx(0.350)]
    proxy.close()


def test_latency_really_delays_delivery(upstream):
    upstream.add_event("r1")
    proxy = start_proxy(upstream, {c.FAULT_TYPE: "latency", c.LATENCY_MS: "300"})
    started = time.monotonic()
    RawClient(proxy.port).exchange(NEXT)
    assert time.monotonic() - started >= 0.3
    proxy.close()


def test_prevent_execution_reports_error_upstream_and_hands_over_the_next_event(upstream):
    upstream.add_event("r1", b'{"first": true}')
    upstream.add_event("r2", b'{"second": true}')
    decisions = iter([faults.Decision("error", 0, True), None])
    proxy = start_proxy(upstream, {c.FAULT_TYPE: "error", c.ERROR_TYPE: "Boom",
                                   c.ERROR_MESSAGE: "injected!"},
                        decide=lambda cfg, now, draw: next(decisions))
    head, body = RawClient(proxy.port).exchange(NEXT)
    assert b"Lambda-Runtime-Aws-Request-Id: r2" in head and body == b'{"second": true}'
    error = upstream.results()[0]
    assert error.path == b"/2018-06-01/runtime/invocation/r1/error"
    assert error.header("Lambda-Runtime-Function-Error-Type") == b"Boom"
    assert json.loads(error.body) == {"errorMessage": "injected!", "errorType": "Boom",
                                      "requestId": "r1", "stackTrace": []}
    proxy.close()


def test_error_after_execution_discards_the_handler_result(upstream, capfd):
    upstream.add_event("r1")
    proxy = start_proxy(upstream, {c.FAULT_TYPE: "error", c.EXPERIMENT_ID: "exp-1"})
    client = RawClient(proxy.port)
    client.exchange(NEXT)
    head, _ = client.exchange(post("/2018-06-01/runtime/invocation/r1/response", b'"secret"'),
                              b"POST")
    assert head.startswith(b"HTTP/1.1 202")
    [result] = upstream.results()
    assert result.path == b"/2018-06-01/runtime/invocation/r1/error"
    assert json.loads(result.body)["errorType"] == "ChaosInjectedError"
    record = json.loads(capfd.readouterr().out.strip().splitlines()[-1])
    assert (record["requestId"], record["FaultType"], record["experimentId"]) == (
        "r1", "error", "exp-1")
    assert "secret" not in json.dumps(record)
    proxy.close()


@pytest.mark.parametrize("prevent", [True, False])
def test_response_fault_answers_in_api_gateway_proxy_format(upstream, prevent):
    upstream.add_event("r1")
    upstream.add_event("r2")
    env = {c.FAULT_TYPE: "response", c.RESPONSE_STATUS_CODE: "503",
           c.RESPONSE_BODY: '{"message": "down"}', c.PREVENT_EXECUTION: str(prevent)}
    decisions = iter([faults.Decision("response", 0, prevent), None])
    proxy = start_proxy(upstream, env, decide=lambda cfg, now, draw: next(decisions))
    client = RawClient(proxy.port)
    head, _ = client.exchange(NEXT)
    if not prevent:
        assert b"Request-Id: r1" in head
        client.exchange(post("/2018-06-01/runtime/invocation/r1/response", b'"real"'), b"POST")
    [result] = upstream.results()
    assert result.path == b"/2018-06-01/runtime/invocation/r1/response"
    assert json.loads(result.body) == {"statusCode": 503,
                                       "headers": {"Content-Type": "application/json"},
                                       "body": '{"message": "down"}', "isBase64Encoded": False}
    proxy.close()


def test_zero_percent_never_injects_and_expired_fault_passes_through(upstream):
    for env in ({c.FAULT_TYPE: "error", c.PREVENT_EXECUTION: "true", c.INVOCATION_PERCENTAGE: "0"},
                {c.FAULT_TYPE: "error", c.PREVENT_EXECUTION: "true",
                 c.EXPIRES_AT: "2020-01-01T00:00:00Z"}):
        upstream.add_event("r1", b"[1]")
        proxy = start_proxy(upstream, env)
        assert RawClient(proxy.port).exchange(NEXT)[1] == b"[1]"
        proxy.close()
    assert upstream.results() == []


def test_exception_in_fault_logic_forwards_the_invocation_unchanged(upstream, capfd):
    def broken(cfg, now, draw):
        raise RuntimeError("bug in the fault logic")

    upstream.add_event("r1", b'{"x": 1}')
    proxy = start_proxy(upstream, {c.FAULT_TYPE: "error", c.PREVENT_EXECUTION: "true"},
                        decide=broken)
    head, body = RawClient(proxy.port).exchange(NEXT)
    assert head + body == event_response("r1", b'{"x": 1}')
    assert "bug in the fault logic" in capfd.readouterr().out
    proxy.close()


def test_upstream_down_is_a_502_that_names_the_upstream(capfd):
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    dead = "127.0.0.1:%d" % free.getsockname()[1]
    free.close()
    cfg = c.FaultConfig.from_environ({c.FAULT_TYPE: "latency"})
    proxy = Proxy(cfg, dead, 0)
    proxy.start()
    head, body = RawClient(proxy.port).exchange(NEXT)
    assert head.startswith(b"HTTP/1.1 502") and dead.encode() in body
    assert dead in capfd.readouterr().out
    proxy.close()


def test_idle_upstream_connection_closed_by_the_server_is_reopened(upstream):
    upstream.close_after_response = True  # an idle timeout, without a Connection: close
    proxy = start_proxy(upstream)
    client = RawClient(proxy.port)
    assert client.exchange(post("/x/a", b"1"), b"POST")[0].startswith(b"HTTP/1.1 202")
    time.sleep(0.2)  # idle: longer than the proxy's re-check threshold, and the FIN has arrived
    assert client.exchange(post("/x/b", b"2"), b"POST")[0].startswith(b"HTTP/1.1 202")
    assert [r.body for r in upstream.results()] == [b"1", b"2"]
    assert upstream.connections == 2
    proxy.close()


def test_a_response_that_closes_its_connection_closes_the_runtime_side_too(upstream):
    upstream.respond = lambda req: b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"
    proxy = start_proxy(upstream)
    client = RawClient(proxy.port)
    assert client.exchange(post("/x", b""), b"POST")[1] == b"ok"
    assert client.sock.recv(1) == b""
    proxy.close()


def test_port_in_use_raises_oserror_from_start(upstream):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    cfg = c.FaultConfig.from_environ({c.FAULT_TYPE: "latency"})
    with pytest.raises(OSError):
        Proxy(cfg, upstream.address, taken.getsockname()[1]).start()
    taken.close()


@pytest.mark.parametrize("prevent", [True, False])
def test_failure_building_the_injected_result_lets_the_invocation_through(upstream, monkeypatch,
                                                                          capfd, prevent):
    def broken(cfg):
        raise ValueError("cannot encode")

    monkeypatch.setattr(faults, "error_result", broken)
    upstream.add_event("r1", b'{"x": 1}')
    proxy = start_proxy(upstream, {c.FAULT_TYPE: "error", c.PREVENT_EXECUTION: str(prevent)})
    client = RawClient(proxy.port)
    assert client.exchange(NEXT)[1] == b'{"x": 1}'  # the handler gets its event
    handler_result = post("/2018-06-01/runtime/invocation/r1/response", b'"fine"')
    client.exchange(handler_result, b"POST")
    [result] = upstream.results()
    assert result.head + result.body == handler_result  # and its own result goes out
    assert "cannot encode" in capfd.readouterr().out
    proxy.close()


def test_expect_100_continue_is_relayed_before_the_body_is_sent():
    step = StepUpstream()
    step.client.sock.sendall(b"POST /2018-06-01/runtime/invocation/r1/response HTTP/1.1\r\n"
                             b"Host: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
    step.read_until(b"\r\n\r\n")
    step.side.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert step.client.stream.read_head() == b"HTTP/1.1 100 Continue\r\n\r\n"  # before any body
    step.client.sock.sendall(b"body")
    step.read_until(b"body")
    step.side.sendall(ACCEPTED)
    assert step.client.read_response(b"POST")[0].startswith(b"HTTP/1.1 202")
    step.close()


def test_streamed_result_of_a_marked_invocation_is_replaced_whole(upstream):
    upstream.add_event("r1")
    proxy = start_proxy(upstream, {c.FAULT_TYPE: "error", c.ERROR_TYPE: "Injected"})
    client = RawClient(proxy.port)
    client.exchange(NEXT)
    streamed = (b"POST /2018-06-01/runtime/invocation/r1/response HTTP/1.1\r\nHost: x\r\n"
                b"Lambda-Runtime-Function-Response-Mode: streaming\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n4\r\npart\r\n0\r\n\r\n")
    assert client.exchange(streamed, b"POST")[0].startswith(b"HTTP/1.1 202")
    [result] = upstream.results()
    assert result.path.endswith(b"/r1/error") and json.loads(result.body)["errorType"] == "Injected"
    assert result.header("Transfer-Encoding") is None  # a plain, buffered error
    proxy.close()


def test_malformed_chunked_body_never_puts_body_bytes_in_the_log(upstream, capfd):
    proxy = start_proxy(upstream)
    client = RawClient(proxy.port)
    client.sock.sendall(b"POST /2018-06-01/runtime/invocation/r1/response HTTP/1.1\r\nHost: x\r\n"
                        b"Transfer-Encoding: chunked\r\n\r\n3\r\ncustomer-secret\r\n0\r\n\r\n")
    assert client.sock.recv(65536) is not None  # the proxy answers or closes; either way, done
    out = capfd.readouterr().out
    assert "chunk-size" in out and "secret" not in out
    proxy.close()


def test_expect_100_continue_on_a_marked_invocation_gets_its_continue_and_is_replaced(upstream):
    upstream.add_event("r1")
    proxy = start_proxy(upstream, {c.FAULT_TYPE: "error", c.ERROR_TYPE: "Injected"})
    client = RawClient(proxy.port)
    client.sock.settimeout(5)
    client.exchange(NEXT)
    client.sock.sendall(b"POST /2018-06-01/runtime/invocation/r1/response HTTP/1.1\r\nHost: x\r\n"
                        b"Expect: 100-continue\r\nContent-Length: 4\r\n\r\n")
    assert client.stream.read_head() == b"HTTP/1.1 100 Continue\r\n\r\n"  # not a wait forever
    client.sock.sendall(b"real")
    assert client.read_response(b"POST")[0].startswith(b"HTTP/1.1 202")
    [result] = upstream.results()
    assert result.path.endswith(b"/r1/error") and json.loads(result.body)["errorType"] == "Injected"
    proxy.close()


@pytest.mark.parametrize("prevent", [True, False])
def test_upstream_closing_right_after_each_answer_costs_no_request(upstream, prevent):
    upstream.close_after_response = True  # closes at once: faster than any idle check
    for i in range(3):
        upstream.add_event("r%d" % i, b'{"n": %d}' % i)
    decisions = iter([faults.Decision("error", 0, True)] if prevent else [])
    proxy = start_proxy(upstream, {c.FAULT_TYPE: "error", c.INVOCATION_PERCENTAGE: "0"},
                        decide=lambda cfg, now, draw: next(decisions, None))
    client = RawClient(proxy.port)
    for i in (1, 2) if prevent else (0, 1, 2):
        head, body = client.exchange(NEXT)
        assert head.startswith(b"HTTP/1.1 200") and body == b'{"n": %d}' % i
        answer = post("/2018-06-01/runtime/invocation/r%d/response" % i, b'"ok %d"' % i)
        assert client.exchange(answer, b"POST")[0].startswith(b"HTTP/1.1 202")
    kinds = [r.path.rsplit(b"/", 2)[1:] for r in upstream.results()]
    assert kinds == ([[b"r0", b"error"]] if prevent else []) + [
        [b"r%d" % i, b"response"] for i in ((1, 2) if prevent else (0, 1, 2))]
    proxy.close()


def test_latency_beyond_what_time_sleep_accepts_still_holds_the_event(upstream):
    upstream.add_event("r1")
    proxy = start_proxy(upstream, {c.FAULT_TYPE: "latency", c.LATENCY_MS: "99999999999999"})
    client = RawClient(proxy.port)
    client.sock.settimeout(0.5)
    client.sock.sendall(NEXT)
    with pytest.raises(socket.timeout):  # held, as a slow call is: not dropped by OverflowError
        client.stream.read_head()
    proxy.close()


def test_a_header_of_almost_one_mib_passes_through_byte_for_byte(upstream):
    proxy = start_proxy(upstream)
    client = RawClient(proxy.port)
    cause = b"Lambda-Runtime-Function-XRay-Error-Cause: " + b"x" * (1024 * 1024 - 1) + b"\r\n"
    error = post("/2018-06-01/runtime/invocation/r1/error", b"{}", cause)
    assert client.exchange(error, b"POST")[0].startswith(b"HTTP/1.1 202")
    assert upstream.results()[0].head + upstream.results()[0].body == error
    proxy.close()


def test_a_connection_that_cannot_get_a_thread_does_not_stop_the_proxy_accepting(upstream,
                                                                                 monkeypatch):
    import chaos_layer.proxy as proxy_module

    real_thread, refused = threading.Thread, []

    def thread(*args, name="", **kwargs):
        if name == "chaos-conn" and not refused:
            refused.append(name)
            raise RuntimeError("can't start new thread")
        return real_thread(*args, name=name, **kwargs)

    monkeypatch.setattr(proxy_module.threading, "Thread", thread)
    upstream.add_event("r1", b"[1]")
    proxy = start_proxy(upstream)
    first = RawClient(proxy.port)
    assert first.sock.recv(1) == b""  # closed: the runtime sees a dropped connection...
    second = RawClient(proxy.port)
    assert second.exchange(NEXT)[1] == b"[1]"  # ...and the next one is served
    proxy.close()
