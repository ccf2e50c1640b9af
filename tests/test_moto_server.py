"""The embedded AWS: a moto server for the run, and clients that can only reach it."""
import pytest
from botocore.exceptions import EndpointConnectionError

from local_emulator.experiment_errors import MotoServerError
from local_emulator.moto_server import MotoServer
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
