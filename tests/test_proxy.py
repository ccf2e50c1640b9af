"""The Runtime API proxy (the layer's Go binary, run with --serve-proxy) on raw sockets: what the
runtime sends reaches Lambda unchanged, and each fault changes exactly what it claims to. The
upstream is a scripted fake (layer_fixtures) so every byte that crossed the wire can be
compared; which invocation gets a fault is chosen through CHAOS_DECISION_SEED, so the tests
need no hook inside the binary. test_layer_runtime.py repeats the important cases with the
real awslambdaric behind the proxy; the failures that need a hook inside (a panic in the fault
logic, an injected payload that cannot be built, an accept error) are Go unit tests in
layer/internal/proxy."""
import json
import random
import socket
import threading
import time

import pytest

from chaos_layer import config as c

from layer_fixtures import (ACCEPTED, FakeRuntimeApi, ProxyProcess, RawClient, event_response,
                            seed_for)

NEXT = b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\nUser-Agent: t\r\n\r\n"
PASS = {c.FAULT_TYPE: "latency", c.INVOCATION_PERCENTAGE: "0"}


def post(path: str, body: bytes, extra: bytes = b"") -> bytes:
    return (b"POST %s HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n%s"
            b"content-length: %d\r\n\r\n" % (path.encode(), extra, len(body)) + body)


@pytest.fixture
def upstream():
    api = FakeRuntimeApi()
    yield api
    api.close()


@pytest.fixture
def start_proxy():
    started = []

    def start(upstream_address, env=None, **extra):
        env = dict(PASS if env is None else env)
        env.update({c.UPSTREAM_RUNTIME_API: upstream_address, c.PROXY_PORT: "0",
                    "AWS_LAMBDA_FUNCTION_NAME": "fn"}, **extra)
        started.append(ProxyProcess(env))
        return started[-1]

    yield start
    for proxy in started:
        proxy.close()


def records(text):
    return [json.loads(line) for line in text.splitlines() if line.startswith('{"_aws"')]


def test_unknown_route_is_forwarded_with_method_headers_and_body_unchanged(upstream, start_proxy):
    upstream.respond = lambda req: (b"HTTP/1.1 418 I'm a teapot\r\nX-Odd-Case: A\r\nx-odd-case: b\r\n"
                                    b"Content-Length: 5\r\n\r\nhello")
    proxy = start_proxy(upstream.address)
    request = (b"PATCH /2030-01-01/whatever/new?x=1&y=%20 HTTP/1.1\r\nHost: x\r\nX-Mixed-CASE:  v \r\n"
               b"X-Dup: 1\r\nX-Dup: 2\r\nContent-Length: 3\r\n\r\nabc")
    head, body = RawClient(proxy.port).exchange(request)
    assert upstream.received[0].head + upstream.received[0].body == request
    assert head == (b"HTTP/1.1 418 I'm a teapot\r\nX-Odd-Case: A\r\nx-odd-case: b\r\n"
                    b"Content-Length: 5\r\n\r\n") and body == b"hello"


@pytest.mark.parametrize("size", [0, 1024, 1024 * 1024, 6 * 1024 * 1024])
def test_event_and_response_pass_through_byte_for_byte_at_size(upstream, start_proxy, size):
    payload = bytes(i % 251 for i in range(size))
    upstream.events.put(event_response("r1", payload))
    client = RawClient(start_proxy(upstream.address).port)
    head, body = client.exchange(NEXT)
    assert head + body == event_response("r1", payload)
    request = post("/2018-06-01/runtime/invocation/r1/response", payload)
    head, body = client.exchange(request, b"POST")
    assert upstream.results()[0].head + upstream.results()[0].body == request
    assert head + body == ACCEPTED
    assert upstream.connections == 1  # one kept-alive upstream connection for both


def test_unicode_event_and_handler_error_pass_through_unchanged(upstream, start_proxy):
    event = json.dumps({"name": "Zoë ✓ 日本 🎉"}, ensure_ascii=False).encode()
    upstream.events.put(event_response("r1", event))
    client = RawClient(start_proxy(upstream.address).port)
    assert client.exchange(NEXT)[1] == event
    error = post("/2018-06-01/runtime/invocation/r1/error",
                 b'{"errorMessage": "bo\xc3\xaft", "errorType": "ValueError", "stackTrace": []}',
                 b"Lambda-Runtime-Function-Error-Type: ValueError\r\n")
    client.exchange(error, b"POST")
    assert upstream.results()[0].head + upstream.results()[0].body == error


def test_streamed_chunked_response_and_trailers_pass_through_byte_for_byte(upstream, start_proxy):
    upstream.respond = lambda req: (
        b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\nTrailer: X-Done\r\n\r\n"
        b"2\r\nok\r\n0\r\nX-Done: yes\r\n\r\n")
    client = RawClient(start_proxy(upstream.address).port)
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


class StepUpstream:
    """An upstream driven step by step from the test: it sees each byte as the proxy sends it."""

    def __init__(self, start_proxy):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.proxy = start_proxy("127.0.0.1:%d" % self.listener.getsockname()[1])
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
        self.listener.close()


def test_streamed_chunks_reach_upstream_before_the_stream_ends(start_proxy):
    step = StepUpstream(start_proxy)
    step.client.sock.sendall(b"POST /2018-06-01/runtime/invocation/r1/response HTTP/1.1\r\n"
                             b"Host: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
    step.read_until(b"5\r\nfirst\r\n")  # arrives although the stream has not ended
    step.client.sock.sendall(b"0\r\n\r\n")
    step.read_until(b"0\r\n\r\n")
    step.side.sendall(ACCEPTED)
    assert step.client.read_response(b"POST")[0].startswith(b"HTTP/1.1 202")
    step.close()


def test_streamed_response_chunks_reach_the_runtime_before_the_stream_ends(start_proxy):
    step = StepUpstream(start_proxy)
    step.client.sock.sendall(b"GET /2030-01-01/stream HTTP/1.1\r\nHost: x\r\n\r\n")
    step.read_until(b"\r\n\r\n")
    step.side.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
    assert step.client.stream.read_head().startswith(b"HTTP/1.1 200")
    while b"5\r\nfirst\r\n" not in step.client.stream.buf:  # before the last chunk was written
        step.client.stream._fill()
    step.side.sendall(b"0\r\n\r\n")
    step.close()


def test_latency_holds_the_event_for_the_configured_delay_plus_a_seeded_jitter(upstream,
                                                                               start_proxy):
    upstream.add_event("r1", b'{"a": 1}')
    proxy = start_proxy(upstream.address, {c.FAULT_TYPE: "latency", c.LATENCY_MS: "300",
                                           c.LATENCY_JITTER_MS: "100", c.DECISION_SEED: "s"})
    started = time.monotonic()
    head, body = RawClient(proxy.port).exchange(NEXT)
    waited = time.monotonic() - started
    assert body == b'{"a": 1}' and b"Lambda-Runtime-Aws-Request-Id: r1" in head
    expected = 300 + int(random.Random("s/r1").random() * 101)  # at 100 %: the first draw
    [record] = records(proxy.output(until='"_aws"'))
    assert record["InjectedMilliseconds"] == expected
    assert waited >= expected / 1000


def test_latency_really_delays_delivery(upstream, start_proxy):
    upstream.add_event("r1")
    proxy = start_proxy(upstream.address, {c.FAULT_TYPE: "latency", c.LATENCY_MS: "300"})
    started = time.monotonic()
    RawClient(proxy.port).exchange(NEXT)
    assert time.monotonic() - started >= 0.3


def test_prevent_execution_reports_error_upstream_and_hands_over_the_next_event(upstream,
                                                                                start_proxy):
    upstream.add_event("r1", b'{"first": true}')
    upstream.add_event("r2", b'{"second": true}')
    proxy = start_proxy(upstream.address, {
        c.FAULT_TYPE: "error", c.ERROR_TYPE: "Boom", c.ERROR_MESSAGE: "injected!",
        c.PREVENT_EXECUTION: "true", c.INVOCATION_PERCENTAGE: "50",
        c.DECISION_SEED: seed_for([True, False], ["r1", "r2"])})
    head, body = RawClient(proxy.port).exchange(NEXT)
    assert b"Lambda-Runtime-Aws-Request-Id: r2" in head and body == b'{"second": true}'
    error = upstream.results()[0]
    assert error.path == b"/2018-06-01/runtime/invocation/r1/error"
    assert error.header("Lambda-Runtime-Function-Error-Type") == b"Boom"
    assert json.loads(error.body) == {"errorMessage": "injected!", "errorType": "Boom",
                                      "requestId": "r1", "stackTrace": []}


def test_error_after_execution_discards_the_handler_result(upstream, start_proxy):
    upstream.add_event("r1")
    proxy = start_proxy(upstream.address, {c.FAULT_TYPE: "error", c.EXPERIMENT_ID: "exp-1"})
    client = RawClient(proxy.port)
    client.exchange(NEXT)
    head, _ = client.exchange(post("/2018-06-01/runtime/invocation/r1/response", b'"secret"'),
                              b"POST")
    assert head.startswith(b"HTTP/1.1 202")
    [result] = upstream.results()
    assert result.path == b"/2018-06-01/runtime/invocation/r1/error"
    assert json.loads(result.body)["errorType"] == "ChaosInjectedError"
    out = proxy.close()
    [record] = records(out)
    assert (record["requestId"], record["FaultType"], record["experimentId"],
            record["FunctionName"]) == ("r1", "error", "exp-1", "fn")
    assert "secret" not in out


@pytest.mark.parametrize("prevent", [True, False])
def test_response_fault_answers_in_api_gateway_proxy_format(upstream, start_proxy, prevent):
    upstream.add_event("r1")
    upstream.add_event("r2")
    env = {c.FAULT_TYPE: "response", c.RESPONSE_STATUS_CODE: "503",
           c.RESPONSE_BODY: '{"message": "down"}', c.PREVENT_EXECUTION: str(prevent),
           c.INVOCATION_PERCENTAGE: "50", c.DECISION_SEED: seed_for([True, False], ["r1", "r2"])}
    client = RawClient(start_proxy(upstream.address, env).port)
    head, _ = client.exchange(NEXT)
    if not prevent:
        assert b"Request-Id: r1" in head
        client.exchange(post("/2018-06-01/runtime/invocation/r1/response", b'"real"'), b"POST")
    else:
        assert b"Request-Id: r2" in head
    [result] = upstream.results()
    assert result.path == b"/2018-06-01/runtime/invocation/r1/response"
    assert json.loads(result.body) == {"statusCode": 503,
                                       "headers": {"Content-Type": "application/json"},
                                       "body": '{"message": "down"}', "isBase64Encoded": False}


def test_zero_percent_never_injects_and_expired_fault_passes_through(upstream, start_proxy):
    for env in ({c.FAULT_TYPE: "error", c.PREVENT_EXECUTION: "true", c.INVOCATION_PERCENTAGE: "0"},
                {c.FAULT_TYPE: "error", c.PREVENT_EXECUTION: "true",
                 c.EXPIRES_AT: "2020-01-01T00:00:00Z"}):
        upstream.add_event("r1", b"[1]")
        assert RawClient(start_proxy(upstream.address, env).port).exchange(NEXT)[1] == b"[1]"
    assert upstream.results() == []


def test_a_fault_expiring_while_the_proxy_runs_stops_at_once(upstream, start_proxy):
    expires = time.time() + 4  # r1 well before it even on a busy machine; r2 after it
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(expires)) + \
        ".%06dZ" % int((expires % 1) * 1e6)
    client = RawClient(start_proxy(upstream.address, {c.FAULT_TYPE: "error",
                                                      c.EXPIRES_AT: stamp}).port)
    for rid in ("r1", "r2"):
        upstream.add_event(rid)
        client.exchange(NEXT)
        answer = post("/2018-06-01/runtime/invocation/%s/response" % rid, b'"real"')
        assert client.exchange(answer, b"POST")[0].startswith(b"HTTP/1.1 202")
        time.sleep(max(0.0, expires - time.time()) + 0.1)
    assert [r.path for r in upstream.results()] == [b"/2018-06-01/runtime/invocation/r1/error",
                                                   b"/2018-06-01/runtime/invocation/r2/response"]


def test_a_bad_value_means_no_fault_and_one_line_naming_variable_and_value(upstream,
                                                                           start_proxy):
    upstream.add_event("r1", b"[1]")
    proxy = start_proxy(upstream.address, {c.FAULT_TYPE: "error", c.PREVENT_EXECUTION: "true",
                                           c.LATENCY_MS: "fast"})
    assert RawClient(proxy.port).exchange(NEXT)[1] == b"[1]"
    assert upstream.results() == []
    [line] = proxy.close().splitlines()
    assert line.startswith("[lambda-chaos] ") and c.LATENCY_MS in line and "'fast'" in line


def test_upstream_down_is_a_502_that_names_the_upstream(start_proxy):
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    dead = "127.0.0.1:%d" % free.getsockname()[1]
    free.close()
    proxy = start_proxy(dead, {c.FAULT_TYPE: "latency"})
    head, body = RawClient(proxy.port).exchange(NEXT)
    assert head.startswith(b"HTTP/1.1 502") and dead.encode() in body
    assert dead in proxy.output(until=dead)


def test_idle_upstream_connection_closed_by_the_server_is_reopened(upstream, start_proxy):
    upstream.close_after_response = True  # an idle timeout, without a Connection: close
    client = RawClient(start_proxy(upstream.address).port)
    assert client.exchange(post("/x/a", b"1"), b"POST")[0].startswith(b"HTTP/1.1 202")
    time.sleep(0.2)  # idle: longer than the proxy's re-check threshold, and the FIN has arrived
    assert client.exchange(post("/x/b", b"2"), b"POST")[0].startswith(b"HTTP/1.1 202")
    assert [r.body for r in upstream.results()] == [b"1", b"2"]
    assert upstream.connections == 2


def test_a_response_that_closes_its_connection_closes_the_runtime_side_too(upstream, start_proxy):
    upstream.respond = lambda req: b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"
    client = RawClient(start_proxy(upstream.address).port)
    assert client.exchange(post("/x", b""), b"POST")[1] == b"ok"
    assert client.sock.recv(1) == b""


def test_port_in_use_is_a_message_naming_the_port_and_the_fix(upstream):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    with pytest.raises(AssertionError, match=f"127.0.0.1:{port}.*{c.PROXY_PORT}"):
        ProxyProcess({c.FAULT_TYPE: "latency", c.UPSTREAM_RUNTIME_API: upstream.address,
                      c.PROXY_PORT: str(port)})
    taken.close()


def test_expect_100_continue_is_relayed_before_the_body_is_sent(start_proxy):
    step = StepUpstream(start_proxy)
    step.client.sock.sendall(b"POST /2018-06-01/runtime/invocation/r1/response HTTP/1.1\r\n"
                             b"Host: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
    step.read_until(b"\r\n\r\n")
    step.side.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert step.client.stream.read_head() == b"HTTP/1.1 100 Continue\r\n\r\n"  # before any body
    step.client.sock.sendall(b"body")
    step.read_until(b"body")
    step.side.sendall(ACCEPTED)
    assert step.client.read_response(b"POST")[0].startswith(b"HTTP/1.1 202")
    assert step.seen.endswith(b"Content-Length: 4\r\n\r\nbody")
    step.close()


def test_expect_100_continue_whose_body_comes_first_is_relayed_whole(start_proxy):
    step = StepUpstream(start_proxy)
    step.client.sock.sendall(b"POST /2018-06-01/runtime/invocation/r1/response HTTP/1.1\r\n"
                             b"Host: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
    step.read_until(b"\r\n\r\n")
    step.client.sock.sendall(b"body")  # the client stopped waiting for the interim answer
    step.read_until(b"body")
    step.side.sendall(b"HTTP/1.1 100 Continue\r\n\r\n" + ACCEPTED)
    assert step.client.read_response(b"POST")[0].startswith(b"HTTP/1.1 100")
    assert step.client.read_response(b"POST")[0].startswith(b"HTTP/1.1 202")
    step.close()


def test_streamed_result_of_a_marked_invocation_is_replaced_whole(upstream, start_proxy):
    upstream.add_event("r1")
    client = RawClient(start_proxy(upstream.address, {c.FAULT_TYPE: "error",
                                                      c.ERROR_TYPE: "Injected"}).port)
    client.exchange(NEXT)
    streamed = (b"POST /2018-06-01/runtime/invocation/r1/response HTTP/1.1\r\nHost: x\r\n"
                b"Lambda-Runtime-Function-Response-Mode: streaming\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n4\r\npart\r\n0\r\n\r\n")
    assert client.exchange(streamed, b"POST")[0].startswith(b"HTTP/1.1 202")
    [result] = upstream.results()
    assert result.path.endswith(b"/r1/error") and json.loads(result.body)["errorType"] == "Injected"
    assert result.header("Transfer-Encoding") is None  # a plain, buffered error


def test_malformed_chunked_body_never_puts_body_bytes_in_the_log(upstream, start_proxy):
    proxy = start_proxy(upstream.address)
    client = RawClient(proxy.port)
    client.sock.sendall(b"POST /2018-06-01/runtime/invocation/r1/response HTTP/1.1\r\nHost: x\r\n"
                        b"Transfer-Encoding: chunked\r\n\r\n3\r\ncustomer-secret\r\n0\r\n\r\n")
    assert client.sock.recv(65536) is not None  # the proxy answers or closes; either way, done
    out = proxy.output(until="chunk-size")
    assert "chunk-size" in out and "secret" not in out


def test_expect_100_continue_on_a_marked_invocation_gets_its_continue_and_is_replaced(upstream,
                                                                                     start_proxy):
    upstream.add_event("r1")
    client = RawClient(start_proxy(upstream.address, {c.FAULT_TYPE: "error",
                                                      c.ERROR_TYPE: "Injected"}).port)
    client.sock.settimeout(5)
    client.exchange(NEXT)
    client.sock.sendall(b"POST /2018-06-01/runtime/invocation/r1/response HTTP/1.1\r\nHost: x\r\n"
                        b"Expect: 100-continue\r\nContent-Length: 4\r\n\r\n")
    assert client.stream.read_head() == b"HTTP/1.1 100 Continue\r\n\r\n"  # not a wait forever
    client.sock.sendall(b"real")
    assert client.read_response(b"POST")[0].startswith(b"HTTP/1.1 202")
    [result] = upstream.results()
    assert result.path.endswith(b"/r1/error") and json.loads(result.body)["errorType"] == "Injected"


@pytest.mark.parametrize("prevent", [True, False])
def test_upstream_closing_right_after_each_answer_costs_no_request(upstream, start_proxy, prevent):
    upstream.close_after_response = True  # closes at once: faster than any idle check
    for i in range(3):
        upstream.add_event("r%d" % i, b'{"n": %d}' % i)
    seed = seed_for([prevent, False, False], ["r0", "r1", "r2"])
    client = RawClient(start_proxy(upstream.address, {
        c.FAULT_TYPE: "error", c.PREVENT_EXECUTION: "true", c.INVOCATION_PERCENTAGE: "50",
        c.DECISION_SEED: seed}).port)
    for i in (1, 2) if prevent else (0, 1, 2):
        head, body = client.exchange(NEXT)
        assert head.startswith(b"HTTP/1.1 200") and body == b'{"n": %d}' % i
        answer = post("/2018-06-01/runtime/invocation/r%d/response" % i, b'"ok %d"' % i)
        assert client.exchange(answer, b"POST")[0].startswith(b"HTTP/1.1 202")
    kinds = [r.path.rsplit(b"/", 2)[1:] for r in upstream.results()]
    assert kinds == ([[b"r0", b"error"]] if prevent else []) + [
        [b"r%d" % i, b"response"] for i in ((1, 2) if prevent else (0, 1, 2))]


def test_latency_beyond_any_timer_still_holds_the_event(upstream, start_proxy):
    upstream.add_event("r1")
    proxy = start_proxy(upstream.address, {c.FAULT_TYPE: "latency",
                                           c.LATENCY_MS: "99999999999999999999"})
    client = RawClient(proxy.port)
    client.sock.settimeout(0.5)
    client.sock.sendall(NEXT)
    with pytest.raises(socket.timeout):  # held, as a slow call is: not dropped by an overflow
        client.stream.read_head()


def test_a_header_of_almost_one_mib_passes_through_byte_for_byte(upstream, start_proxy):
    client = RawClient(start_proxy(upstream.address).port)
    cause = b"Lambda-Runtime-Function-XRay-Error-Cause: " + b"x" * (1024 * 1024 - 1) + b"\r\n"
    error = post("/2018-06-01/runtime/invocation/r1/error", b"{}", cause)
    assert client.exchange(error, b"POST")[0].startswith(b"HTTP/1.1 202")
    assert upstream.results()[0].head + upstream.results()[0].body == error


def test_the_proxy_listens_on_loopback_only(upstream, start_proxy):
    import shutil
    import subprocess
    if shutil.which("ss") is None:
        pytest.skip("ss (iproute2) is not installed")
    proxy = start_proxy(upstream.address)
    listening = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True).stdout
    mine = [line for line in listening.splitlines() if f"pid={proxy.proc.pid}," in line]
    if not mine:
        pytest.skip("ss shows no process ids here")
    assert all(f"127.0.0.1:{proxy.port}" in line for line in mine), mine


# --- several invocations in flight (Lambda Managed Instances) --------------------------------

def test_invocations_in_flight_at_once_are_each_decided_and_matched_by_request_id(upstream,
                                                                                 start_proxy):
    """Three runtime connections, /next and results interleaved: each result is replaced or
    relayed by its own invocation's decision, whichever connection carries it."""
    ids = ["a", "b", "c"]
    seed = seed_for([True, False, True], ids)
    client_env = {c.FAULT_TYPE: "error", c.ERROR_TYPE: "Injected", c.INVOCATION_PERCENTAGE: "50",
                  c.DECISION_SEED: seed}
    proxy = start_proxy(upstream.address, client_env)
    clients = [RawClient(proxy.port) for _ in ids]
    for rid, client in zip(ids, clients):
        upstream.add_event(rid)
        assert b"Request-Id: %s" % rid.encode() in client.exchange(NEXT)[0]
    for rid, client in zip(reversed(ids), clients):  # each result on another connection
        answer = post("/2018-06-01/runtime/invocation/%s/response" % rid, b'"real %s"' % rid.encode())
        assert client.exchange(answer, b"POST")[0].startswith(b"HTTP/1.1 202")
    got = {r.path.rsplit(b"/", 2)[1].decode(): r for r in upstream.results()}
    assert got["a"].path.endswith(b"/a/error") and got["c"].path.endswith(b"/c/error")
    assert got["b"].path.endswith(b"/b/response") and got["b"].body == b'"real b"'
    assert sorted(r["requestId"] for r in records(proxy.close())) == ["a", "c"]


def test_one_delayed_invocation_does_not_hold_back_another(upstream, start_proxy):
    ids = ["slow", "fast"]
    seed = seed_for([True, False], ids)
    proxy = start_proxy(upstream.address, {c.FAULT_TYPE: "latency", c.LATENCY_MS: "8000",
                                           c.INVOCATION_PERCENTAGE: "50",
                                           c.DECISION_SEED: seed})
    slow, fast = RawClient(proxy.port), RawClient(proxy.port)
    upstream.add_event("slow")
    slow.sock.sendall(NEXT)  # held for 8 s by the proxy
    while len(upstream.received) < 1:
        time.sleep(0.01)
    upstream.add_event("fast")
    got = {}
    thread = threading.Thread(target=lambda: got.update(fast=fast.exchange(NEXT)))
    thread.start()
    thread.join(6)  # well inside the slow one's delay
    assert b"Request-Id: fast" in got.get("fast", (b"",))[0]
    slow.sock.settimeout(0.1)
    with pytest.raises(socket.timeout):  # the slow one is still held
        slow.stream.read_head()


# --- bodies longer than the read buffer stream through it, never held whole -----------------

BIG = bytes(i % 253 for i in range(1024 * 1024 + 17))  # more than the proxy's 64 KiB buffer


class _UpstreamThatSaysWhenItClosed(FakeRuntimeApi):
    """Closes each connection right after its answer, and says (closed) once it has."""

    def __init__(self) -> None:
        super().__init__()
        self.close_after_response = True
        self.closed = threading.Semaphore(0)

    def _serve(self, conn: socket.socket) -> None:
        super()._serve(conn)
        self.closed.release()


def test_idle_upstream_connection_closed_by_the_server_is_reopened_for_a_long_body(upstream,
                                                                                  start_proxy):
    upstream.close_after_response = True
    client = RawClient(start_proxy(upstream.address).port)
    assert client.exchange(post("/x/a", b"1"), b"POST")[0].startswith(b"HTTP/1.1 202")
    time.sleep(0.2)  # idle, and the FIN has arrived
    request = post("/2018-06-01/runtime/invocation/r1/response", BIG)
    assert client.exchange(request, b"POST")[0].startswith(b"HTTP/1.1 202")
    assert upstream.results()[1].head + upstream.results()[1].body == request
    assert upstream.connections == 2


def test_a_long_body_right_after_upstream_closed_goes_on_a_fresh_connection(start_proxy):
    """Used a moment ago (inside the idle re-check's window), closed since: a body that streams
    through cannot be sent twice, so the connection is checked before it goes, whatever its age."""
    upstream = _UpstreamThatSaysWhenItClosed()
    try:
        upstream.add_event("r1", BIG)
        client = RawClient(start_proxy(upstream.address).port)
        assert client.exchange(NEXT)[1] == BIG
        assert upstream.closed.acquire(timeout=5)
        request = post("/2018-06-01/runtime/invocation/r1/response", BIG)
        assert client.exchange(request, b"POST")[0].startswith(b"HTTP/1.1 202")
        [result] = upstream.results()
        assert result.head + result.body == request and upstream.connections == 2
    finally:
        upstream.close()


def test_long_event_of_a_delayed_invocation_passes_through_byte_for_byte(upstream, start_proxy):
    upstream.events.put(event_response("r1", BIG))
    proxy = start_proxy(upstream.address, {c.FAULT_TYPE: "latency", c.LATENCY_MS: "20"})
    client = RawClient(proxy.port)
    head, body = client.exchange(NEXT)
    assert head + body == event_response("r1", BIG)
    assert [r["requestId"] for r in records(proxy.close())] == ["r1"]


def test_long_result_of_a_marked_invocation_is_dropped_and_replaced(upstream, start_proxy):
    upstream.events.put(event_response("r1", BIG))
    client = RawClient(start_proxy(upstream.address, {c.FAULT_TYPE: "error",
                                                      c.ERROR_TYPE: "Injected"}).port)
    assert client.exchange(NEXT)[1] == BIG
    result = post("/2018-06-01/runtime/invocation/r1/response", BIG * 5)
    assert client.exchange(result, b"POST")[0].startswith(b"HTTP/1.1 202")
    [sent] = upstream.results()
    assert sent.path.endswith(b"/r1/error") and json.loads(sent.body)["errorType"] == "Injected"


def test_long_event_of_a_prevented_invocation_is_dropped_and_the_next_one_relayed(upstream,
                                                                                  start_proxy):
    upstream.events.put(event_response("r0", BIG))
    upstream.events.put(event_response("r1", BIG[::-1]))
    seed = seed_for([True, False], ["r0", "r1"])
    client = RawClient(start_proxy(upstream.address, {
        c.FAULT_TYPE: "error", c.PREVENT_EXECUTION: "true", c.INVOCATION_PERCENTAGE: "50",
        c.DECISION_SEED: seed}).port)
    head, body = client.exchange(NEXT)
    assert head + body == event_response("r1", BIG[::-1])
    assert [r.path.rsplit(b"/", 2)[1:] for r in upstream.results()] == [[b"r0", b"error"]]
