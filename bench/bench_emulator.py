"""Benchmark (run by hand): per-invocation round trip through the emulator with awslambdaric.

    .venv/bin/python bench/bench_emulator.py [--count 2000]

Prints, per payload size, the median / p90 / p99 of ``ExecutionEnvironment.invoke`` (event
out, response back, through the real runtime client and its handler) and invocations per
second. It measures the emulator's share of the layer benchmark's "direct" column; the
``raw_runtime`` rows (tests/functions/raw_runtime.py, a dozen lines on one socket) show the
emulator's own floor without awslambdaric.

A second table times one keep-alive POST of 1 KB answered 202 (what ``/response`` costs the
server), on this module's HttpServer and on the standard library's ThreadingHTTPServer, to
show why the emulator does not use ``http.server``.
"""
from __future__ import annotations

import argparse
import http.server
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from local_emulator.environment.http_server import HttpServer, Response  # noqa: E402
from local_emulator.environment.runtime_api import ExecutionEnvironment  # noqa: E402

FUNCTIONS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                         "tests", "functions")


def _percentile(sorted_values, fraction):
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


def run(count: int) -> None:
    print(f"{'handler':<14}{'event':>9}{'count':>7}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'inv/s':>9}")
    raw_runtime = [sys.executable, os.path.join(FUNCTIONS, "raw_runtime.py")]
    for handler, size in (("raw_runtime", 1024), ("echo.raw", 1024), ("echo.handler", 1024),
                          ("raw_runtime", 1024 * 1024), ("echo.raw", 1024 * 1024)):
        event = json.dumps({"body": "a" * (size - len('{"body": ""}'))}).encode()
        runs = count if size <= 64 * 1024 else max(50, count // 20)
        command = raw_runtime if handler == "raw_runtime" else None
        with ExecutionEnvironment("raw_runtime.main" if command else handler, FUNCTIONS,
                                  runtime_command=command) as env:
            for _ in range(20):
                env.invoke(event)
            durations = []
            started = time.perf_counter()
            for _ in range(runs):
                t0 = time.perf_counter()
                result = env.invoke(event)
                durations.append((time.perf_counter() - t0) * 1000)
                assert result.status == "success", result
            elapsed = time.perf_counter() - started
        durations.sort()
        print(f"{handler:<14}{len(event):>9}{runs:>7}{statistics.median(durations):>9.3f}"
              f"{_percentile(durations, 0.9):>9.3f}{_percentile(durations, 0.99):>9.3f}"
              f"{runs / elapsed:>9.0f}")


class _StdlibHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        body = b'{"status":"OK"}'
        self.send_response(202)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _time_posts(port: int, count: int) -> list:
    body = b"a" * 1024
    request = (b"POST /2018-06-01/runtime/invocation/r/response HTTP/1.1\r\nHost: x\r\n"
               b"Content-Type: application/json\r\nContent-Length: 1024\r\n\r\n" + body)
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    durations = []
    for i in range(count + 50):
        t0 = time.perf_counter()
        sock.sendall(request)
        answer = b""
        while not answer.endswith(b'{"status":"OK"}'):
            answer += sock.recv(4096)
        if i >= 50:
            durations.append((time.perf_counter() - t0) * 1000)
    sock.close()
    return sorted(durations)


def run_servers(count: int) -> None:
    print(f"\n{'server (1 KB POST -> 202)':<30}{'p50 ms':>9}{'p99 ms':>9}")
    ours = HttpServer(lambda request: Response(202, b'{"status":"OK"}',
                                               [("Content-Type", "application/json")])).start()
    stdlib = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _StdlibHandler)
    threading.Thread(target=stdlib.serve_forever, daemon=True).start()
    for _ in range(3):  # interleaved rounds, so machine noise hits both alike
        for name, port in (("local_emulator.HttpServer", ours.port),
                           ("http.server (HTTP/1.1)", stdlib.server_address[1])):
            # The client runs in its own process, as a runtime does (no shared GIL).
            output = subprocess.run(
                [sys.executable, __file__, "--client", str(port),
                 "--count", str(count)], capture_output=True, check=True, text=True,
                cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__)))).stdout
            durations = json.loads(output)
            print(f"{name:<30}{statistics.median(durations):>9.3f}"
                  f"{durations[int(0.99 * len(durations))]:>9.3f}")
    ours.stop()
    stdlib.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--client", type=int, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.client:
        print(json.dumps(_time_posts(arguments.client, arguments.count)))
    else:
        run(arguments.count)
        run_servers(arguments.count)
