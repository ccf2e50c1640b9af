"""`GET /hello` of the sample application: the service API the blog's load generator calls.

The body names the serving region, so a client (or the local experiment) can count which region
handled each request (the blog's `region_{region}` metric).
"""
import os


def handler(event, context):
    """API Gateway proxy response `Hello from region {AWS_REGION}`."""
    region = os.environ.get("AWS_REGION", "unknown")
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "text/plain; charset=utf-8"},
        "body": f"Hello from region {region}",
    }
