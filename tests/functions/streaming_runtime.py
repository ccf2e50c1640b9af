"""A minimal custom runtime (raw sockets, stdlib) that answers with a chunked, streamed response.

The event says what to stream: ``{"chunks": ["..", ".."], "error_type": optional}``. With an
``error_type`` it ends the stream with the ``Lambda-Runtime-Function-Error-Type`` and
``Lambda-Runtime-Function-Error-Body`` (base64) trailers, as a streaming runtime reports a
mid-stream failure.
"""
import base64
import json

from raw_runtime import connect, read_response  # same folder: the script's sys.path[0]


def main():
    sock, reader = connect()
    while True:
        sock.sendall(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n")
        _, headers, body = read_response(reader)
        request_id = headers["lambda-runtime-aws-request-id"]
        event = json.loads(body)
        head = (f"POST /2018-06-01/runtime/invocation/{request_id}/response HTTP/1.1\r\n"
                "Host: x\r\nLambda-Runtime-Function-Response-Mode: streaming\r\n"
                "Transfer-Encoding: chunked\r\nContent-Type: application/octet-stream\r\n"
                "Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n\r\n")
        sock.sendall(head.encode())
        for chunk in event["chunks"]:
            data = chunk.encode("utf-8")
            sock.sendall(b"%x\r\n%s\r\n" % (len(data), data))
        trailer = b""
        if event.get("error_type"):
            error_body = base64.b64encode(json.dumps(
                {"errorType": event["error_type"], "errorMessage": "stream broke"}).encode())
            trailer = (b"Lambda-Runtime-Function-Error-Type: " + event["error_type"].encode()
                       + b"\r\nLambda-Runtime-Function-Error-Body: " + error_body + b"\r\n")
        sock.sendall(b"0\r\n" + trailer + b"\r\n")
        status, _, _ = read_response(reader)
        print(f"STREAM-POSTED {request_id} {status}", flush=True)


if __name__ == "__main__":
    main()
