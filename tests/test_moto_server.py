"""The embedded AWS: a moto server for the run, and clients that can only reach it."""
import pytest
from botocore.exceptions import EndpointConnectionError

from local_emulator.errors import MotoServerError
from local_emulator.aws.moto_server import MotoServer
from tests.emulator_fixtures import moto_server, unique  # noqa: F401 - fixture


def test_clients_talk_to_the_embedded_server_in_their_region(moto_server):
    name = unique("bucket")
    moto_server.client("s3", "eu-west-1").create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert moto_server.client("s3", "eu-west-1").meta.endpoint_url == moto_server.endpoint_url
    names = [b["Name"] for b in moto_server.client("s3").list_buckets()["Buckets"]]
    assert name in names


def test_env_points_sdks_at_the_server(moto_server):
    env = moto_server.env("eu-west-1")
    assert env["AWS_ENDPOINT_URL"] == moto_server.endpoint_url
    assert env["AWS_DEFAULT_REGION"] == env["AWS_REGION"] == "eu-west-1"


def test_endpoint_before_start_says_to_start():
    with pytest.raises(MotoServerError, match="call start\\(\\) first"):
        MotoServer().endpoint_url


def test_stop_is_idempotent_and_frees_the_server():
    server = MotoServer().start()
    server.stop()
    server.stop()
    with pytest.raises(EndpointConnectionError):
        server.client("s3").list_buckets()


def test_a_compressed_put_metric_data_is_stored_once_decompressed(moto_server):
    # botocore gzips PutMetricData bodies of 10 KiB and more (Content-Encoding: gzip); moto's
    # server used to gunzip them twice and answer 500 (BadGzipFile). Big enough to be compressed:
    client = moto_server.client("cloudwatch", "eu-west-1")
    namespace = unique("Gzip")
    data = [{"MetricName": f"metric_{i:03d}_{'x' * 60}", "Value": float(i), "Unit": "Count"}
            for i in range(300)]
    sent = []
    client.meta.events.register("before-send.cloudwatch.PutMetricData",
                                lambda request, **_: sent.append(request.headers.get("Content-Encoding")))
    client.put_metric_data(Namespace=namespace, MetricData=data)
    assert sent == [b"gzip"]  # the request really was compressed (botocore keeps header bytes)
    names = {m["MetricName"] for m in client.list_metrics(Namespace=namespace)["Metrics"]}
    assert len(names) == 300
