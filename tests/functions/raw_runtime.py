"""The smallest custom runtime (stdlib, one kept-alive socket): answers each event with itself.

Used by local_emulator/bench_roundtrip.py to show the emulator's own floor per invocation,
without awslambdaric's work in the way.
"""
import os
import socket


def _read_response(reader):
    reader.readline()
    headers = {}
    while True:
        line = reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return headers, reader.read(int(headers.get("content-length", "0")))


def main():
    host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
    sock = socket.create_connection((host, int(port)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    reader = sock.makefile("rb")
    while True:
        sock.sendall(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n")
        headers, event = _read_response(reader)
        request_id = headers["lambda-runtime-aws-request-id"].encode()
        sock.sendall(b"POST /2018-06-01/runtime/invocation/%s/response HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (request_id, len(event), event))
        _read_response(reader)


if __name__ == "__main__":
    main()
