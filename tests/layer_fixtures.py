"""Helpers for the layer's tests: a scripted Runtime API upstream on raw sockets, a raw client,
and the layer's Go binary built once per session and run as the proxy alone (--serve-proxy).

The fake upstream answers `/next` from a queue of events, records every other request
exactly as received (head and body bytes) and answers it with a canned or scripted response,
so the proxy's byte-for-byte claims are checked against what really crossed the wire. The
tests' own HTTP framing below is independent of the layer's (the layer is Go; this is not).
"""
from __future__ import annotations

import os
import platform
import queue
import random
import socket
import subprocess
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parent.parent
ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
    platform.machine(), "amd64")


class Closed(Exception):
    """The peer closed the connection before (or between) messages."""


def header(head: bytes, name: str) -> Optional[bytes]:
    """Value of header `name` (any case) in a message head, or None."""
    for line in head.split(b"\r\n")[1:]:
        key, sep, value = line.partition(b":")
        if sep and key.strip().lower() == name.lower().encode():
            return value.strip()
    return None


def framing(head: bytes, is_response: bool, method: bytes = b"GET") -> Tuple[str, int]:
    """(kind, length) of the body after this head: length | chunked | none | close."""
    if is_response and (head[9:10] == b"1" or head[9:12] in (b"204", b"304") or method == b"HEAD"):
        return "none", 0
    encoding = header(head, "transfer-encoding")
    if encoding is not None and encoding.lower().endswith(b"chunked"):
        return "chunked", 0
    length = header(head, "content-length")
    if length is not None:
        return "length", int(length)
    return ("close", 0) if is_response else ("none", 0)


class Stream:
    """Reads HTTP messages, as bytes, from one socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buf = sock, b""

    def _fill(self) -> None:
        data = self.sock.recv(262144)
        if not data:
            raise Closed()
        self.buf += data

    def read_head(self) -> bytes:
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        end = self.buf.index(b"\r\n\r\n") + 4
        head, self.buf = self.buf[:end], self.buf[end:]
        return head

    def _take(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            self._fill()
        return self._take(self.buf.index(b"\r\n") + 2)

    def read_body(self, kind: str, length: int) -> bytes:
        if kind == "length":
            return self._take(length)
        if kind == "close":
            while True:
                try:
                    self._fill()
                except Closed:
                    data, self.buf = self.buf, b""
                    return data
        if kind == "chunked":
            out = []
            while True:
                line = self._line()
                out.append(line)
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while True:
                        line = self._line()
                        out.append(line)
                        if line == b"\r\n":
                            return b"".join(out)
                out.append(self._take(size + 2))
        return b""


@dataclass
class Received:
    head: bytes
    body: bytes

    @property
    def method(self) -> bytes:
        return self.head.split(b" ", 1)[0]

    @property
    def path(self) -> bytes:
        return self.head.split(b" ", 2)[1]

    def header(self, name: str) -> Optional[bytes]:
        return header(self.head, name)


def event_response(request_id: str, body: bytes, deadline_ms: int = 9_999_999_999_999) -> bytes:
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Lambda-Runtime-Aws-Request-Id: %s\r\nLambda-Runtime-Deadline-Ms: %d\r\n"
            b"Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:f\r\n"
            b"Content-Length: %d\r\n\r\n" % (request_id.encode(), deadline_ms, len(body)) + body)


ACCEPTED = (b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n"
            b'{"status":"OK"}')


class FakeRuntimeApi:
    """A Runtime API upstream: `/next` pops `events`; everything else goes to `respond`."""

    def __init__(self, respond: Optional[Callable[[Received], bytes]] = None) -> None:
        self.events: "queue.Queue[bytes]" = queue.Queue()
        self.received: List[Received] = []
        self.respond = respond or (lambda req: ACCEPTED)
        self.connections = 0
        self.close_after_response = False
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.address = "127.0.0.1:%d" % self._sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def add_event(self, request_id: str, body: bytes = b"{}") -> None:
        self.events.put(event_response(request_id, body))

    def results(self) -> List[Received]:
        return [r for r in self.received if not r.path.endswith(b"/next")]

    def close(self) -> None:
        self._sock.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        stream = Stream(conn)
        try:
            while True:
                head = stream.read_head()
                request = Received(head, stream.read_body(*framing(head, False)))
                self.received.append(request)
                if request.path.endswith(b"/runtime/invocation/next"):
                    conn.sendall(self.events.get(timeout=10))
                else:
                    conn.sendall(self.respond(request))
                if self.close_after_response:
                    conn.close()
                    return
        except (Closed, OSError, queue.Empty):
            conn.close()


class RawClient:
    """A runtime's side of one keep-alive connection, on raw bytes (no header rewriting)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.stream = Stream(self.sock)

    def exchange(self, request: bytes, method: bytes = b"GET") -> Tuple[bytes, bytes]:
        """Send one request; return (response head, body bytes exactly as framed)."""
        self.sock.sendall(request)
        return self.read_response(method)

    def read_response(self, method: bytes = b"GET") -> Tuple[bytes, bytes]:
        head = self.stream.read_head()
        return head, self.stream.read_body(*framing(head, True, method))

    def close(self) -> None:
        self.sock.close()


def build_layer(dest: Path) -> Path:
    """Run ./layer/build.sh into dest and return the zip."""
    out = dest / "chaos-layer.zip"
    done = subprocess.run([str(REPO / "layer" / "build.sh"), str(out)], capture_output=True,
                          text=True)
    assert done.returncode == 0, f"./layer/build.sh failed:\n{done.stdout}\n{done.stderr}"
    return out


def extract_layer(zip_path: Path, opt_dir: Path) -> Path:
    """Extract like Lambda does into opt_dir, keeping the permission bits zipfile drops."""
    with zipfile.ZipFile(zip_path) as archive:
        for info in archive.infolist():
            target = opt_dir / info.filename
            archive.extract(info, opt_dir)
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                os.chmod(target, mode)
    return opt_dir


_BUILT: Dict[str, Path] = {}
_BUILD_LOCK = threading.Lock()


def layer_opt_dir() -> Path:
    """The layer as ./layer/build.sh ships it, extracted; built once per test session."""
    with _BUILD_LOCK:
        if "opt" not in _BUILT:
            tmp = Path(tempfile.mkdtemp(prefix="chaos-layer-"))
            _BUILT["opt"] = extract_layer(build_layer(tmp), tmp / "opt")
        return _BUILT["opt"]


def layer_binary(arch: str = ARCH) -> Path:
    """The extension binary for `arch` from the built layer."""
    return layer_opt_dir() / "lambda-chaos" / "bin" / f"lambda-chaos-extension-{arch}"


class ProxyProcess:
    """The binary in --serve-proxy mode: started with `env`, ready once it printed its port.

    Its stdout (diagnostics and EMF records) is read as it comes: `output()` waits for a
    line holding some text, `close()` stops the process and returns everything it wrote.
    """

    def __init__(self, env: Dict[str, str], command: Sequence[str] = ()) -> None:
        full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env}
        self.proc = subprocess.Popen([*command, str(layer_binary()), "--serve-proxy"], env=full,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.lines: List[str] = []
        self.port = 0
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._ready.wait(30)
        if not self.port:
            self.close()
            raise AssertionError(f"--serve-proxy never said it listens: {self.text()!r}")

    def _read(self) -> None:
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if not self.port and line.startswith("listening 127.0.0.1:"):
                self.port = int(line.rsplit(":", 1)[1])
                self._ready.set()
                continue
            self.lines.append(line)
        self._ready.set()

    def text(self) -> str:
        return "".join(line + "\n" for line in self.lines)

    def output(self, until: str, timeout_s: float = 10.0) -> str:
        """Everything written so far, once some line holds `until` (or after timeout_s)."""
        end = time.monotonic() + timeout_s
        while until not in self.text() and time.monotonic() < end:
            time.sleep(0.01)
        return self.text()

    def close(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(10)
        self._reader.join(10)
        return self.text()


def seeded_injections(seed: str, request_ids: Iterable[str], percentage: float) -> List[bool]:
    """Which invocations CHAOS_DECISION_SEED=seed injects at `percentage` (the layer's rule:
    the first draw of Python's random.Random(f"{seed}/{request_id}") below percentage/100)."""
    return [random.Random(f"{seed}/{rid}").random() * 100.0 < percentage for rid in request_ids]


def seed_for(pattern: Sequence[bool], request_ids: Sequence[str], percentage: float = 50) -> str:
    """A seed under which exactly the invocations marked True in pattern get the fault."""
    for n in range(100000):
        if seeded_injections(f"seed-{n}", request_ids, percentage) == list(pattern):
            return f"seed-{n}"
    raise AssertionError(f"no seed injects {pattern}")
