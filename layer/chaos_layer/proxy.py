"""The Runtime API proxy: relays every request byte for byte and injects faults per invocation.

Routes:
- `GET …/runtime/invocation/next`: the event is where latency is added (before the handler
  sees it) and where prevent-execution faults answer upstream themselves and fetch again;
- `POST …/runtime/invocation/{id}/response|error` of an invocation marked for a fault: the
  handler's result is read and replaced by the injected error or response;
- anything else (init/error, unknown paths, methods): relayed unchanged.

Hot path choices (the benchmark holds this to 1.25x a C relay): one thread per downstream
connection (the runtime client keeps one alive), each paired with one kept-alive upstream
connection; raw sockets with TCP_NODELAY; only the head is parsed; bodies are forwarded as
they arrive. Failures fail open: a fault-logic exception means "no fault for this request",
an upstream failure is a 502 that says why.
"""
from __future__ import annotations

import random
import socket
import threading
import time

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~3 ms per cold start

if TYPE_CHECKING:
    from typing import Callable, Dict, Optional, Tuple

from . import faults, metrics, wire
from .config import FaultConfig

__all__ = ["Proxy"]

_NEXT_SUFFIX = b"/runtime/invocation/next"
_RESULT_KINDS = (b"response", b"error")
_MAX_PENDING = 1024
_PEEK_FLAGS = socket.MSG_PEEK | socket.MSG_DONTWAIT
_IDLE_CHECK_S = 0.05  # upstream idle longer than this is peeked at before reuse (costs ~7 us)
# Longer than any Lambda timeout (15 min) by far, and within what time.sleep accepts (about
# 1e9 s; beyond it OverflowError would drop the runtime's connection instead of timing out).
_MAX_DELAY_MS = 24 * 3600 * 1000


class Proxy:
    """Listens on 127.0.0.1:`port` and forwards to the Runtime API at `upstream` ("host:port").

    `decide`, `draw`, `clock` and `sleep` are injectable so tests can force each branch,
    including a fault-logic exception. Raises OSError from `start()` if the port is taken.
    """

    def __init__(self, cfg: FaultConfig, upstream: str, port: int = 0, *,
                 function_name: str = "", task_root: str = "",
                 decide: Callable[..., Optional[faults.Decision]] = faults.decide,
                 draw: Callable[[], float] = random.random,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.cfg, self.upstream, self.port = cfg, upstream, port
        self.function_name, self.task_root = function_name, task_root
        self._decide, self._draw, self._clock, self._sleep = decide, draw, clock, sleep
        self.results: Dict[str, Tuple[bytes, Dict[str, str]]] = {}
        self.pending: Dict[bytes, faults.Decision] = {}
        self._listener: Optional[socket.socket] = None

    # --- lifecycle ----------------------------------------------------------------------------
    def start(self) -> int:
        """Bind, listen and accept in a daemon thread; returns the port actually bound."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind(("127.0.0.1", self.port))
            listener.listen(64)
        except OSError:
            listener.close()
            raise
        self._listener = listener
        self.port = listener.getsockname()[1]
        threading.Thread(target=self._accept_loop, name="chaos-accept", daemon=True).start()
        return self.port

    def prepare(self) -> None:
        """Build the injected payloads once (imports json): the extension calls it after
        registering, off the cold-start path; the first injection does it if still needed."""
        if not self.results:
            self.results = {"error": faults.error_result(self.cfg),
                            "response": faults.replacement_result(self.cfg)}
            import json  # noqa: F401  (warmed here, so the first fault record pays nothing)

    def close(self) -> None:
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()

    def _accept_loop(self) -> None:
        listener = self._listener
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:
                if listener.fileno() < 0:
                    return
                time.sleep(0.01)  # e.g. out of file descriptors: do not spin
                continue
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                threading.Thread(target=_Connection(self, sock).run, name="chaos-conn",
                                 daemon=True).start()
            except Exception as exc:  # e.g. no thread to spare: lose this connection, not
                metrics.log(f"cannot serve a connection from the runtime: {exc!r}")  # the loop
                sock.close()

    # --- fault logic, each call fenced so an exception means "no fault" -----------------------
    def decision(self, request_id: Optional[bytes] = None) -> Optional[faults.Decision]:
        """This invocation's fault; seeded by its request id when CHAOS_DECISION_SEED is set."""
        try:
            draw = self._draw
            if self.cfg.decision_seed and request_id:
                draw = faults.seeded_draw(self.cfg.decision_seed, request_id)
            return self._decide(self.cfg, self._clock(), draw)
        except Exception as exc:  # fail open: this invocation passes through untouched
            metrics.log(f"fault decision failed, invocation passed through unchanged: {exc!r}")
            return None

    def remember(self, request_id: Optional[bytes], decision: faults.Decision) -> bool:
        if not request_id:
            return False
        if len(self.pending) >= _MAX_PENDING:  # invocations that timed out never post a result
            self.pending.clear()
        self.pending[request_id] = decision
        return True

    def claim(self, path: bytes) -> Tuple[Optional[faults.Decision], bytes, bytes]:
        """For `…/invocation/{id}/response|error` of a marked invocation: (decision, id, kind)."""
        parts = path.rsplit(b"/", 2)
        if len(parts) == 3 and parts[2] in _RESULT_KINDS:
            decision = self.pending.pop(parts[1], None)
            if decision is not None:
                return decision, parts[1], parts[2]
        return None, b"", b""

    def report(self, request_id: Optional[bytes], decision: faults.Decision) -> None:
        try:
            metrics.emit(metrics.fault_record(
                (request_id or b"").decode("latin-1"), decision.fault, decision.delay_ms,
                namespace=self.cfg.metrics_namespace, function_name=self.function_name,
                experiment_id=self.cfg.experiment_id,
                prevent_execution=decision.prevent_execution))
        except Exception as exc:
            metrics.log(f"could not write the fault record: {exc!r}")

    def sleep_ms(self, delay_ms: int) -> None:
        """Hold the event; past the deadline the invocation times out, as a slow call would."""
        if delay_ms > 0:
            self._sleep(min(delay_ms, _MAX_DELAY_MS) / 1000.0)

    def result_request(self, path: bytes, request_id: bytes, fault: str) -> Optional[bytes]:
        """The `/error` or `/response` post that carries an injected result upstream, or None
        (logged) if it cannot be built: the caller then lets the invocation through."""
        try:
            prefix = path[:path.find(b"/runtime/")].decode("latin-1")
            kind = "error" if fault == "error" else "response"
            self.prepare()
            body, headers = self.results[fault]
            if fault == "error":  # awslambdaric's errors carry the invocation's request id
                body, headers = faults.error_result(self.cfg, request_id.decode("latin-1"),
                                                    self.task_root)
            return wire.build_request(
                "POST", f"{prefix}/runtime/invocation/{request_id.decode('latin-1')}/{kind}",
                self.upstream, body, headers)
        except Exception as exc:  # fail open
            metrics.log(f"cannot build the injected {fault}, invocation passed through: {exc!r}")
            return None


class _Connection:
    """One downstream connection (the runtime's) and its paired upstream connection."""

    def __init__(self, proxy: Proxy, sock: socket.socket) -> None:
        self.proxy = proxy
        self.down, self.down_out = wire.Stream(sock), wire.Out(sock)
        self.up: Optional[wire.Stream] = None
        self.up_out: Optional[wire.Out] = None
        self.up_used = 0.0  # monotonic time the upstream connection last finished a response
        self.up_reused = False  # the request in flight went out on a kept-alive connection
        self._replay: Optional[Tuple[bytes, ...]] = None  # that request, if held whole

    def run(self) -> None:
        try:
            while self._exchange():
                pass
        except wire.Closed:
            pass
        except (OSError, ValueError) as exc:
            metrics.log(f"connection from the runtime dropped: {exc!r}")
        except Exception as exc:
            metrics.log(f"proxy error, connection closed: {exc!r}")
        finally:
            self._drop_upstream()
            self.down.sock.close()

    def _exchange(self) -> bool:
        """Relay one request and its response; False when the connection must close."""
        head = self.down.read_head()
        lower = head.lower()
        kind, length, keep = wire.frame(head, lower, False)
        proxy, sent_before = self.proxy, self.down_out.sent
        try:
            if proxy.cfg.fault_type is not None:
                sp = head.find(b" ")
                method, path = head[:sp], head[sp + 1:head.find(b" ", sp + 1)]
                if method == b"GET" and path.endswith(_NEXT_SUFFIX):
                    return self._next(head, path, (kind, length)) and keep
                if proxy.pending and method == b"POST":
                    decision, request_id, _ = proxy.claim(path)
                    injected = decision and proxy.result_request(path, request_id, decision.fault)
                    if injected:
                        return self._replace_result((kind, length), injected, request_id,
                                                    decision, b"\r\nexpect:" in lower) and keep
            self._send_upstream(head, (kind, length), b"\r\nexpect:" in lower)
            return self._relay_response(head[:4] == b"HEAD") and keep
        except (wire.Closed, OSError) as exc:
            if self.down_out.sent == sent_before:
                self._bad_gateway(exc)
            return False

    # --- routes -------------------------------------------------------------------------------
    def _next(self, head: bytes, path: bytes, framing: Tuple[str, int]) -> bool:
        proxy = self.proxy
        while True:
            self._send_upstream(head, framing)
            framing = ("none", 0)  # a re-fetch after a prevented invocation has no body
            rhead = self._read_head()
            up = self.up
            rlower = rhead.lower()
            decision = None
            if rhead[9:12] == b"200":  # an event; its request id matters to a seeded decision only
                seed_id = wire.header(rhead, rlower, b"lambda-runtime-aws-request-id") \
                    if proxy.cfg.decision_seed else None
                decision = proxy.decision(seed_id)
            if decision is None:
                return self._relay_body(rhead, rlower, False)
            kind, length, keep = wire.frame(rhead, rlower, True)
            request_id = wire.header(rhead, rlower, b"lambda-runtime-aws-request-id")
            event = wire.Collect()
            up.copy_body((kind, length), event)
            reusable = self._upstream_reusable(kind, keep)
            if decision.fault == "latency":
                proxy.sleep_ms(decision.delay_ms)
            elif decision.prevent_execution and request_id and (
                    injected := proxy.result_request(path, request_id, decision.fault)):
                # The handler never sees this event: answer as the runtime would, fetch again.
                self._send_whole(injected)
                self._drain_response()
                proxy.report(request_id, decision)
                continue
            elif not proxy.remember(request_id, decision):
                decision = None
            self.down_out.write(rhead)
            self.down_out.write(event.value())
            self.down_out.flush()
            if decision is not None and decision.fault == "latency":
                proxy.report(request_id, decision)
            return reusable

    def _replace_result(self, framing: Tuple[str, int], injected: bytes, request_id: bytes,
                        decision: faults.Decision, expect: bool = False) -> bool:
        """The handler ran; its result is read and discarded, the injected one sent instead."""
        if expect and framing[0] != "none" and not self.down.buf:
            # The client holds its body for an interim answer that upstream will never send
            # (upstream never sees this request): give it ourselves, or both sides wait.
            self.down_out.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.down_out.flush()
        self.down.copy_body(framing, wire.Collect())
        self._send_whole(injected)
        self.proxy.report(request_id, decision)
        return self._relay_response(False)

    # --- plumbing -----------------------------------------------------------------------------
    def _send_upstream(self, head: bytes, framing: Tuple[str, int], expect: bool = False) -> None:
        kind, length = framing
        if kind == "none":
            return self._send_whole(head)
        if kind == "length" and len(self.down.buf) == length:  # the usual case: all arrived
            body, self.down.buf = self.down.buf, b""
            return self._send_whole(head, body)
        self._ensure_upstream()
        self._replay = None  # the body streams through: it cannot be sent twice
        self.up_out.write(head)
        if framing[0] != "none":
            if expect and not self.down.buf:
                self._await_continue()
            self.down.copy_body(framing, self.up_out)
        self.up_out.flush()

    def _await_continue(self) -> None:
        """`Expect: 100-continue`: the client holds its body until an interim response, so
        relay the head now and pass on a `100 Continue` if it comes before the body."""
        import select  # rare path: not worth its import at every cold start

        self.up_out.flush()
        readable, _, _ = select.select([self.down.sock, self.up.sock], [], [])
        if self.down.sock in readable:
            return  # the body is already coming
        interim = self.up.read_head()
        if interim[9:10] == b"1":
            self.down_out.write(interim)
            self.down_out.flush()
        else:  # a final answer before the body: keep it for _relay_response
            self.up.buf = interim + self.up.buf

    def _relay_response(self, head_request: bool) -> bool:
        rhead = self._read_head()
        up, out = self.up, self.down_out
        while True:
            if rhead[9:10] != b"1":
                break
            out.write(rhead)  # interim (100 Continue): pass on at once
            out.flush()
            rhead = up.read_head()
        return self._relay_body(rhead, rhead.lower(), head_request)

    def _relay_body(self, rhead: bytes, rlower: bytes, head_request: bool) -> bool:
        kind, length, keep = wire.frame(rhead, rlower, True, b"HEAD" if head_request else b"GET")
        self.down_out.write(rhead)
        if kind != "none":
            self.up.copy_body((kind, length), self.down_out)
        self.down_out.flush()
        return self._upstream_reusable(kind, keep)

    def _upstream_reusable(self, kind: str, keep: bool) -> bool:
        """After a response that closes its connection, the runtime is told the same way."""
        if kind == "close" or not keep:
            self._drop_upstream()
            return False
        self.up_used = time.monotonic()
        return True

    def _drain_response(self) -> None:
        """Read (and drop) upstream's answer to an injected result, logging a refusal."""
        rhead = self._read_head()
        kind, length, keep = wire.frame(rhead, rhead.lower(), True)
        self.up.copy_body((kind, length), wire.Collect())
        if rhead[9:10] != b"2":
            metrics.log(f"the Runtime API refused an injected result: {rhead[:12]!r}")
        self._upstream_reusable(kind, keep)

    def _send_whole(self, *parts: bytes) -> None:
        """Send a request held whole in memory, kept for one resend (see _read_head)."""
        self._ensure_upstream()
        self._replay = parts if self.up_reused else None
        for part in parts:
            self.up_out.write(part)
        try:
            self.up_out.flush()
        except OSError:
            if not self._resend():
                raise

    def _read_head(self) -> bytes:
        """The first response head to the request just sent. A kept-alive connection that
        upstream closed before answering (the keep-alive race; the idle check cannot see a
        close that is still on its way) gets the request again on a fresh connection, once."""
        try:
            rhead = self.up.read_head()
        except (wire.Closed, ConnectionResetError):
            if not self._resend():
                raise
            rhead = self.up.read_head()
        self._replay = None
        return rhead

    def _resend(self) -> bool:
        replay, self._replay = self._replay, None
        if replay is None or self.up.buf:  # streamed body, fresh connection, or half an answer
            return False
        self._drop_upstream()
        self._ensure_upstream()
        for part in replay:
            self.up_out.write(part)
        self.up_out.flush()
        return True

    def _ensure_upstream(self) -> None:
        self.up_reused = True
        if self.up is not None:
            if time.monotonic() - self.up_used < _IDLE_CHECK_S:
                return  # busy connection: the usual case, no extra syscall
            # Idle for a while: the server may have closed it. Peek (one non-blocking
            # syscall) rather than find out by losing a request.
            try:
                self.up.sock.recv(1, _PEEK_FLAGS)  # returns only on EOF or stray bytes
            except BlockingIOError:
                return  # nothing to read: healthy
            except OSError:
                pass
            self._drop_upstream()
        sock = wire.connect(self.proxy.upstream, timeout=5.0)
        self.up, self.up_out = wire.Stream(sock), wire.Out(sock)
        self.up_reused = False

    def _drop_upstream(self) -> None:
        if self.up is not None:
            self.up.sock.close()
            self.up = self.up_out = None

    def _bad_gateway(self, exc: BaseException) -> None:
        reason = (f"lambda-chaos proxy: the Runtime API at {self.proxy.upstream} failed: "
                  f"{exc!r}").encode("utf-8", "replace")
        metrics.log(reason.decode())
        self._drop_upstream()
        try:
            self.down.sock.sendall(
                b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(reason), reason))
        except OSError:
            pass
