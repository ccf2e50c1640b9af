"""Acting in another account of the embedded AWS: how moto tells accounts apart.

moto keys every request's account off its access key: the fake key the emulator uses
(`FAKE_CREDENTIALS`) is moto's default account, and the credentials STS's AssumeRole returns
for `arn:aws:iam::ACCOUNT:role/...` belong to ACCOUNT (moto checks neither the role nor its
trust policy). So a set-up, a deploy or a snapshot acts in an account by assuming a role
there first, as an operator with that account's credentials would; the SSM engine does the
same for each location's execution role (ssm_service.py).
"""
from __future__ import annotations

from typing import Any, Dict

import boto3

from local_emulator.aws.moto_server import FAKE_CREDENTIALS

__all__ = ["DEFAULT_ACCOUNT", "SET_UP_ROLE", "account_credentials", "account_env", "account_client"]

DEFAULT_ACCOUNT = "123456789012"  # moto's account for any access key it does not know
# The role assumed to act in an account; moto needs no such role to exist.
SET_UP_ROLE = "local-emulator-set-up"


def account_credentials(aws: Any, account: str) -> Dict[str, str]:
    """AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN that act in `account`:
    the fake ones for moto's default account, else a role assumed there through moto's STS."""
    if account == DEFAULT_ACCOUNT:
        return dict(FAKE_CREDENTIALS)
    credentials = aws.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/{SET_UP_ROLE}",
        RoleSessionName=SET_UP_ROLE)["Credentials"]
    return {"AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
            "AWS_SESSION_TOKEN": credentials["SessionToken"]}


def account_env(aws: Any, account: str, region: str) -> Dict[str, str]:
    """`aws.env(region)` (the endpoint, the region) with credentials that act in `account`:
    what deploy.sh or a script gets to run as that account's operator."""
    return {**aws.env(region), **account_credentials(aws, account)}


def account_client(aws: Any, account: str, service: str, region: str = "us-east-1") -> Any:
    """A boto3 client of the embedded AWS acting in `account` (the default account's is
    `aws.client`, with its retries and timeouts)."""
    if account == DEFAULT_ACCOUNT:
        return aws.client(service, region)
    credentials = account_credentials(aws, account)
    session = boto3.session.Session(
        aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=credentials["AWS_SESSION_TOKEN"], region_name=region)
    return session.client(service, endpoint_url=aws.endpoint_url)
