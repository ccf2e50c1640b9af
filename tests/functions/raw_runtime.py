"""The smallest custom runtime (stdlib, one kept-alive socket): answers each event with itself.

Used by bench/bench_emulator.py to show the emulator's own floor per invocation,
without awslambdaric's work in the way.
"""
import os
import socket


def read_response(reader):
    """(status, lower-cased headers, body) of one Content-Length framed HTTP response."""
    status = int(reader.readline().split()[1])
    headers = {}
    while True:
        line = reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, reader.read(int(headers.get("content-length", "0")))


def connect():
    """One TCP_NODELAY connection to the Runtime API, and a buffered reader on it."""
    host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
    sock = socket.create_connection((host, int(port)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock, sock.makefile("rb")


def main():
    sock, reader = connect()
    while True:
        sock.sendall(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n")
        _, headers, event = read_response(reader)
        request_id = headers["lambda-runtime-aws-request-id"].encode()
        sock.sendall(b"POST /2018-06-01/runtime/invocation/%s/response HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (request_id, len(event), event))
        read_response(reader)


if __name__ == "__main__":
    main()
