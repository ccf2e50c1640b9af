"""HTTP/1.1 framing on raw sockets: just enough to relay Runtime API messages byte for byte.

Why not http.client / http.server: they re-serialise headers (case, order), buffer whole
bodies, and cost about twice as much per exchange on a small VM; http.client also imports the
email package, which the extension's RSS budget cannot afford. Here a message is relayed as
the bytes that arrived: only the head is looked at (framing, a few named headers), and output
is flushed before every blocking read, so streamed responses flow through as they are written.
"""
from __future__ import annotations

import socket

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~3 ms per cold start

if TYPE_CHECKING:
    from typing import List, Optional, Tuple

__all__ = ["Closed", "Stream", "Out", "Collect", "header", "frame", "body_framing", "keeps_alive", "connect",
           "build_request", "request"]

RECV_SIZE = 256 * 1024
# awslambdaric sends a handler error's X-Ray cause (message and stack) as a header of up to
# 1 MiB; a smaller limit would drop the runtime's connection for an error with a long message.
MAX_HEAD = 2 * 1024 * 1024
_NO_BODY_STATUS = (b"204", b"304")


class Closed(Exception):
    """The peer closed the connection before (or between) messages."""


class Out:
    """Collects bytes for one socket and sends them with as few syscalls as possible."""

    __slots__ = ("sock", "parts", "sent")

    def __init__(self, sock: Optional[socket.socket]) -> None:
        self.sock = sock
        self.parts: List[bytes] = []
        self.sent = 0  # bytes flushed so far: tells the proxy whether a 502 can still be sent

    def write(self, data: bytes) -> None:
        if data:
            self.parts.append(data)

    def flush(self) -> None:
        parts = self.parts
        if parts:
            data = parts[0] if len(parts) == 1 else b"".join(parts)
            parts.clear()
            self.sent += len(data)
            self.sock.sendall(data)


class Collect(Out):
    """An Out that keeps what it is given, for the few messages the proxy must rewrite."""

    def __init__(self) -> None:
        super().__init__(None)

    def flush(self) -> None:
        pass

    def value(self) -> bytes:
        return b"".join(self.parts)


class Stream:
    """The reading side of a socket, with the bytes received but not yet consumed."""

    __slots__ = ("sock", "buf", "_view")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        # recv() would malloc RECV_SIZE per call (mmap + munmap above glibc's threshold, about
        # 15 us each on a small VM); reading into one preallocated buffer avoids that.
        self._view = memoryview(bytearray(RECV_SIZE))

    def _recv(self, limit: int = 0) -> bytes:
        """At most `limit` bytes (0: as many as the buffer holds); Closed at end of stream."""
        n = self.sock.recv_into(self._view, limit)
        if not n:
            raise Closed()
        return self._view[:n].tobytes()

    def _fill(self, out: Optional[Out]) -> None:
        if out is not None:
            out.flush()  # never sit on bytes while waiting for more: streaming stays streaming
        data = self._recv()
        self.buf = self.buf + data if self.buf else data

    def read_head(self) -> bytes:
        """The next message head, blank line included. Raises Closed at end of stream."""
        buf = self.buf
        while True:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                self.buf = buf[end + 4:]
                return buf[:end + 4]
            if len(buf) > MAX_HEAD:
                raise ValueError(f"message head longer than {MAX_HEAD} bytes")
            n = self.sock.recv_into(self._view)  # inlined _recv: this is the hot path
            if not n:
                self.buf = buf  # what did arrive: tells a clean close from half a message
                raise Closed()
            buf = buf + self._view[:n].tobytes() if buf else self._view[:n].tobytes()

    def _read_line(self, out: Out) -> bytes:
        while True:
            end = self.buf.find(b"\r\n")
            if end >= 0:
                line, self.buf = self.buf[:end + 2], self.buf[end + 2:]
                return line
            if len(self.buf) > MAX_HEAD:
                raise ValueError("chunk-size or trailer line too long")
            self._fill(out)

    def copy_exact(self, n: int, out: Out) -> None:
        """Copy exactly n body bytes to out.

        Into a socket's Out the pieces go as views of the read buffer, without a copy (each
        recv would otherwise allocate, and for 256 KB that is an mmap): safe because an Out is
        flushed before this stream reads again, here and at the end of every relayed message.
        """
        buf = self.buf
        if buf:
            take = min(n, len(buf))
            if take == len(buf):
                out.write(buf)
                self.buf = b""
            else:
                out.write(buf[:take])
                self.buf = buf[take:]
            n -= take
        view, recv_into = self._view, self.sock.recv_into
        size, keep_copy = len(view), type(out) is not Out
        while n > 0:
            out.flush()
            got = recv_into(view, 0 if n >= size else n)
            if not got:
                raise Closed()
            out.write(view[:got].tobytes() if keep_copy else view[:got])
            n -= got

    def copy_chunked(self, out: Out) -> None:
        """Copy a chunked body, chunk-size lines, extensions and trailers included, unchanged."""
        while True:
            line = self._read_line(out)
            out.write(line)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:  # the "line" may be body bytes: never put them in a log
                raise ValueError("malformed chunk-size line in a chunked body") from None
            if size == 0:
                while True:
                    line = self._read_line(out)
                    out.write(line)
                    if line == b"\r\n":
                        return
            self.copy_exact(size + 2, out)

    def copy_until_close(self, out: Out) -> None:
        """Copy a body delimited by the connection closing (HTTP/1.0 style)."""
        out.write(self.buf)
        self.buf = b""
        while True:
            out.flush()
            try:
                data = self._recv()
            except Closed:
                return
            out.write(data)

    def copy_body(self, framing: Tuple[str, int], out: Out) -> None:
        kind, length = framing
        if kind == "length":
            self.copy_exact(length, out)
        elif kind == "chunked":
            self.copy_chunked(out)
        elif kind == "close":
            self.copy_until_close(out)


def header(head: bytes, lower: bytes, name: bytes) -> Optional[bytes]:
    """Value of header `name` (lower-case bytes) in a head, or None. `lower` is head.lower()."""
    start = lower.find(b"\r\n" + name + b":")
    if start < 0:
        return None
    start += len(name) + 3
    return head[start:lower.index(b"\r\n", start)].strip()


def frame(head: bytes, lower: bytes, is_response: bool,
          request_method: bytes = b"GET") -> Tuple[str, int, bool]:
    """(kind, length, keep_alive) for the message after this head, in one pass (hot path).

    kind: "length" (exactly `length` bytes) | "chunked" | "none" | "close" (until EOF).
    `lower` is head.lower(); a few C-level `in`/`find` calls replace a header dictionary.
    """
    keep = True
    if b"\r\nconnection:" in lower or b"http/1.0" in lower[:lower.find(b"\r\n")]:
        keep = keeps_alive(head, lower)
    if is_response:
        status = head[9:12]
        if status[:1] == b"1" or status in _NO_BODY_STATUS or request_method == b"HEAD":
            return "none", 0, keep
    if b"\r\ntransfer-encoding:" in lower:
        encoding = header(head, lower, b"transfer-encoding")
        if encoding.lower().endswith(b"chunked"):
            return "chunked", 0, keep
    at = lower.find(b"\r\ncontent-length:")
    if at >= 0:
        at += 17
        return "length", int(lower[at:lower.index(b"\r\n", at)]), keep
    return ("close", 0, False) if is_response else ("none", 0, keep)


def body_framing(head: bytes, lower: bytes, is_response: bool,
                 request_method: bytes = b"GET") -> Tuple[str, int]:
    """(kind, length) of frame(): how the body after this head ends."""
    return frame(head, lower, is_response, request_method)[:2]


def keeps_alive(head: bytes, lower: bytes) -> bool:
    """Whether the connection stays open after this message (HTTP/1.1 default: yes)."""
    value = header(head, lower, b"connection")
    first_line = head[:head.find(b"\r\n")]
    if first_line.startswith(b"HTTP/1.0") or first_line.endswith(b"HTTP/1.0"):
        return value is not None and value.lower() == b"keep-alive"
    return value is None or value.lower() != b"close"


def connect(address: str, timeout: Optional[float] = None) -> socket.socket:
    """A TCP connection to "host:port" with Nagle off (else ~40 ms per exchange on loopback)."""
    host, _, port = address.rpartition(":")
    sock = socket.create_connection((host, int(port)), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.settimeout(None)
    return sock


def build_request(method: str, path: str, host: str, body: bytes = b"",
                  headers: Optional[dict] = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def request(address: str, method: str, path: str, body: bytes = b"",
            headers: Optional[dict] = None, timeout: Optional[float] = None
            ) -> Tuple[int, bytes, bytes]:
    """One request on a fresh connection: (status, head, body). For the Extensions API calls."""
    sock = connect(address, timeout)
    try:
        sock.sendall(build_request(method, path, address, body, headers))
        stream = Stream(sock)
        head = stream.read_head()
        lower = head.lower()
        sink = Collect()
        stream.copy_body(body_framing(head, lower, True, method.encode()), sink)
        return int(head[9:12]), head, sink.value()
    finally:
        sock.close()
