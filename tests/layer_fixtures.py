"""Helpers for the layer's tests: a scripted Runtime API upstream on raw sockets, a raw client.

The fake upstream answers `/next` from a queue of events, records every other request
exactly as received (head and body bytes) and answers it with a canned or scripted response,
so the proxy's byte-for-byte claims are checked against what really crossed the wire.
"""
from __future__ import annotations

import os
import queue
import socket
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from chaos_layer import wire

REPO = Path(__file__).resolve().parent.parent


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
        return wire.header(self.head, self.head.lower(), name.lower().encode())


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
        stream = wire.Stream(conn)
        try:
            while True:
                head = stream.read_head()
                lower = head.lower()
                body = wire.Collect()
                stream.copy_body(wire.body_framing(head, lower, False), body)
                request = Received(head, body.value())
                self.received.append(request)
                if request.path.endswith(b"/runtime/invocation/next"):
                    conn.sendall(self.events.get(timeout=10))
                else:
                    conn.sendall(self.respond(request))
                if self.close_after_response:
                    conn.close()
                    return
        except (wire.Closed, OSError, queue.Empty):
            conn.close()


class RawClient:
    """A runtime's side of one keep-alive connection, on raw bytes (no header rewriting)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.stream = wire.Stream(self.sock)

    def exchange(self, request: bytes, method: bytes = b"GET") -> Tuple[bytes, bytes]:
        """Send one request; return (response head, body bytes exactly as framed)."""
        self.sock.sendall(request)
        return self.read_response(method)

    def read_response(self, method: bytes = b"GET") -> Tuple[bytes, bytes]:
        head = self.stream.read_head()
        body = wire.Collect()
        self.stream.copy_body(wire.body_framing(head, head.lower(), True, method), body)
        return head, body.value()

    def close(self) -> None:
        self.sock.close()


def build_layer(dest: Path) -> Path:
    """Run ./layer/build.sh into dest and return the zip."""
    import subprocess
    out = dest / "chaos-layer.zip"
    subprocess.run([str(REPO / "layer" / "build.sh"), str(out)], check=True,
                   capture_output=True)
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
