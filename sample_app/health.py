"""`GET /health` of the sample application: says which region answered (the blog's health check).

Route 53's health check calls this through API Gateway; while a fault makes the function slow
or failing, the check fails and latency routing moves traffic to the other region.
"""
import os


def handler(event, context):
    """API Gateway proxy response `Region {AWS_REGION} is healthy`."""
    region = os.environ.get("AWS_REGION", "unknown")
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "text/plain; charset=utf-8"},
        "body": f"Region {region} is healthy",
    }
