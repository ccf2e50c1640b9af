"""A small threaded HTTP/1.1 server for the emulated Runtime and Extensions APIs.

Why not ``http.server``: its per-request overhead (email-header parsing, a handler object per
request, line-by-line writes) shows on the layer's benchmark, where one invocation is a few
hundred microseconds of loopback traffic. This server does only what the Lambda APIs need:
keep-alive connections, one thread per connection (``/next`` is a long poll that blocks its
thread), ``TCP_NODELAY`` on every accepted socket, request bodies with ``Content-Length`` or
chunked transfer encoding with trailers (response streaming), and ``Expect: 100-continue``
(libcurl sends it for large bodies and would otherwise stall for a second).
"""
from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

__all__ = ["Request", "Response", "HttpServer", "MAX_BODY_BYTES", "free_port"]

# Far above Lambda's 6 MB / 20 MB payload limits, so the routes decide what is too large and
# answer as Lambda does; this cap only stops a runaway client from exhausting memory.
MAX_BODY_BYTES = 64 * 1024 * 1024
# awslambdaric sends an X-Ray error-cause header of up to 1 MiB with every handler error, so a
# header line may be that long; a whole header block is capped at 4 MiB.
_MAX_LINE = 1024 * 1024 + 64 * 1024
_MAX_HEADER_BYTES = 4 * 1024 * 1024
_MAX_HEADERS = 200
_REASONS = {100: "Continue", 200: "OK", 202: "Accepted", 400: "Bad Request", 403: "Forbidden",
            404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
            413: "Payload Too Large", 500: "Internal Server Error", 502: "Bad Gateway"}


class _BadRequest(Exception):
    """Raised while parsing when the client sent something that is not HTTP/1.1."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the kernel's choice for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@dataclass
class Request:
    """One parsed request: exact body bytes, headers as sent, trailers, and who sent it."""

    method: str
    path: str
    headers: List[Tuple[str, str]]
    body: bytes
    client: Tuple[str, int]
    chunked: bool = False
    trailers: List[Tuple[str, str]] = field(default_factory=list)
    _lookup: Optional[Dict[str, str]] = field(default=None, repr=False)

    def header(self, name: str, default: Optional[str] = None) -> Optional[str]:
        """Case-insensitive header (or trailer) lookup; the last occurrence wins."""
        if self._lookup is None:
            self._lookup = {k.lower(): v for k, v in self.headers}
            self._lookup.update({k.lower(): v for k, v in self.trailers})
        return self._lookup.get(name.lower(), default)

    @property
    def client_address(self) -> str:
        return f"{self.client[0]}:{self.client[1]}"


@dataclass
class Response:
    """What a route answers; ``close`` drops the connection after sending (or instead of it)."""

    status: int
    body: bytes = b""
    headers: List[Tuple[str, str]] = field(default_factory=list)
    close: bool = False


Handler = Callable[[Request], Optional[Response]]


class HttpServer:
    """Serves ``handler`` on 127.0.0.1 with an ephemeral port until ``stop()``.

    ``handler`` may block (long poll); returning ``None`` closes the connection without an
    answer, which is how a route abandons a ``/next`` when the environment is torn down.
    """

    def __init__(self, handler: Handler, host: str = "127.0.0.1", port: int = 0):
        self._handler = handler
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, port))
        self._listener.listen(64)
        self.host, self.port = self._listener.getsockname()[:2]
        self._connections: set = set()
        self._lock = threading.Lock()
        self._stopped = False
        self._thread = threading.Thread(target=self._accept_loop, name=f"http-{self.port}",
                                        daemon=True)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> "HttpServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting and close every open connection (unblocks their reads)."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            connections = list(self._connections)
        for sock in [self._listener] + connections:
            _close_quietly(sock)
        self._thread.join(timeout=2)

    def close_connections(self) -> None:
        """Drop every client connection but keep listening (a reset environment's sockets)."""
        with self._lock:
            connections = list(self._connections)
        for sock in connections:
            _close_quietly(sock)

    def _accept_loop(self) -> None:
        while True:
            try:
                sock, client = self._listener.accept()
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if self._stopped:
                    _close_quietly(sock)
                    return
                self._connections.add(sock)
            threading.Thread(target=self._serve, args=(sock, client),
                             name=f"http-{self.port}-{client[1]}", daemon=True).start()

    def _serve(self, sock: socket.socket, client: Tuple[str, int]) -> None:
        reader = sock.makefile("rb", buffering=256 * 1024)
        try:
            while True:
                try:
                    request = _read_request(reader, sock, client)
                except _BadRequest as exc:
                    _send(sock, Response(exc.status, _error_body(exc.status, str(exc)),
                                         [("Content-Type", "application/json")], close=True))
                    return
                if request is None:
                    return
                try:
                    response = self._handler(request)
                except Exception as exc:  # a bug in a route: answer 500 with it, keep serving
                    response = Response(500, _error_body(500, f"{type(exc).__name__}: {exc}"),
                                        [("Content-Type", "application/json")])
                if response is None:
                    return
                close = response.close or (request.header("connection", "").lower() == "close")
                _send(sock, response, close)
                if close:
                    return
        except OSError:
            return
        finally:
            with self._lock:
                self._connections.discard(sock)
            _close_quietly(reader)
            _close_quietly(sock)


def _error_body(status: int, message: str) -> bytes:
    import json

    return json.dumps({"errorMessage": message, "errorType": _REASONS.get(status, "Error")}).encode()


def _read_line(reader) -> bytes:
    line = reader.readline(_MAX_LINE + 1)
    if len(line) > _MAX_LINE:
        raise _BadRequest(400, f"request line or header longer than {_MAX_LINE} bytes")
    return line


def _read_fields(reader) -> List[Tuple[str, str]]:
    """Header (or trailer) lines up to the blank line, names and values as sent."""
    fields: List[Tuple[str, str]] = []
    total = 0
    while True:
        line = _read_line(reader)
        total += len(line)
        if total > _MAX_HEADER_BYTES:
            raise _BadRequest(400, f"header block longer than {_MAX_HEADER_BYTES} bytes")
        if not line:
            raise _BadRequest(400, "connection closed inside the header block")
        if line in (b"\r\n", b"\n"):
            return fields
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep or not name.strip():
            raise _BadRequest(400, f"malformed header line {line[:80]!r}")
        fields.append((name.strip(), value.strip()))
        if len(fields) > _MAX_HEADERS:
            raise _BadRequest(400, f"more than {_MAX_HEADERS} header lines")


def _read_request(reader, sock: socket.socket, client: Tuple[str, int]) -> Optional[Request]:
    line = _read_line(reader)
    if not line:
        return None  # the client closed a kept-alive connection
    parts = line.decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _BadRequest(400, f"malformed request line {line[:80]!r}")
    method, path, _version = parts
    headers = _read_fields(reader)
    request = Request(method, path, headers, b"", client)
    if request.header("expect", "").lower() == "100-continue":
        sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    if "chunked" in request.header("transfer-encoding", "").lower():
        request.chunked = True
        request.body, request.trailers = _read_chunked(reader)
        request._lookup = None
    else:
        length_text = request.header("content-length")
        if length_text:
            try:
                length = int(length_text)
            except ValueError:
                raise _BadRequest(400, f"Content-Length {length_text!r} is not an integer")
            if length < 0 or length > MAX_BODY_BYTES:
                raise _BadRequest(413, f"Content-Length {length} exceeds {MAX_BODY_BYTES} bytes")
            request.body = reader.read(length)
            if len(request.body) != length:
                return None  # closed mid-body
    return request


def _read_chunked(reader) -> Tuple[bytes, List[Tuple[str, str]]]:
    parts: List[bytes] = []
    total = 0
    while True:
        size_line = _read_line(reader)
        if not size_line:
            raise _BadRequest(400, "connection closed inside a chunked body")
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise _BadRequest(400, f"malformed chunk size line {size_line[:40]!r}")
        if size == 0:
            return b"".join(parts), _read_fields(reader)
        total += size
        if total > MAX_BODY_BYTES:
            raise _BadRequest(413, f"chunked body exceeds {MAX_BODY_BYTES} bytes")
        chunk = reader.read(size)
        if len(chunk) != size or reader.read(2) != b"\r\n":
            raise _BadRequest(400, "chunk shorter than its declared size or not CRLF-terminated")
        parts.append(chunk)


def _send(sock: socket.socket, response: Response, close: bool = False) -> None:
    lines = [f"HTTP/1.1 {response.status} {_REASONS.get(response.status, 'Status')}"]
    lines.extend(f"{name}: {value}" for name, value in response.headers)
    lines.append(f"Content-Length: {len(response.body)}")
    if close or response.close:
        lines.append("Connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    # One send for small answers (one segment on the wire); two for large ones (no 6 MB copy).
    if len(response.body) <= 64 * 1024:
        sock.sendall(head + response.body)
    else:
        sock.sendall(head)
        sock.sendall(response.body)


def _close_quietly(closable) -> None:
    try:
        if isinstance(closable, socket.socket):
            try:
                closable.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        closable.close()
    except OSError:
        pass
