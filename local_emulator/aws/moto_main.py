"""`python -m local_emulator.aws.moto_main`: moto's server, with its gzip request handling fixed
(and Lambda's `CapacityProviderConfig` kept: local_emulator/aws/moto_capacity_provider.py;
CloudWatch's GetMetricData and GetMetricStatistics answered as CloudWatch answers them, with
percentiles and exact dimensions: local_emulator/aws/moto_cloudwatch.py).

botocore compresses a request body with gzip when the service model asks for it and the body is
at least 10 KiB (`requestcompression` on CloudWatch's `PutMetricData`; botocore's
`request_min_compression_size_bytes`), and says so with `Content-Encoding: gzip`. That is
what AWS documents and accepts. moto's server (5.2.1) then decompresses the body twice: its
Flask `before_request` hook (`decompress_request_body`) swaps in a gunzipping stream, and
`BaseResponse.setup_class` gunzips again because the header still says gzip. The second pass
fails (`gzip.BadGzipFile: Not a gzipped file (b'{"')`) and the call answers HTTP 500. So the
client is right and the server is wrong, and the fix belongs to the server: after moto's hook
has decompressed the body, the request no longer says `Content-Encoding: gzip`, so the body is
decompressed exactly once. S3 is left alone, as moto's hook leaves it (S3 keeps the encoding of
an object's bytes as the object's metadata).
"""
from __future__ import annotations

import sys
from typing import List, Optional

from flask import current_app, request
from moto.moto_server import werkzeug_app

from local_emulator.aws import moto_capacity_provider, moto_cloudwatch

__all__ = ["decompress_request_body_once", "main"]

_moto_decompress = werkzeug_app.decompress_request_body


def decompress_request_body_once() -> None:
    """moto's own hook, then forget the encoding it has undone (see the module docstring)."""
    _moto_decompress()
    if current_app.service != "s3" and request.content_encoding == "gzip":  # type: ignore[attr-defined]
        request.environ.pop("HTTP_CONTENT_ENCODING", None)


def main(argv: Optional[List[str]] = None) -> None:
    """Run moto's server command line with the fixed hook installed."""
    # create_backend_app looks the hook up in its module when each service's app is made.
    werkzeug_app.decompress_request_body = decompress_request_body_once
    moto_capacity_provider.install()
    moto_cloudwatch.install()
    from moto.server import main as moto_server_main
    moto_server_main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
