"""The exact-restore snapshot of an organisation-wide run covers every account: keys
ACCOUNT/REGION/NAME, each account's functions seen with its own credentials; a one-account
snapshot keeps its REGION/NAME keys."""
import io
import zipfile

import pytest

from local_emulator.aws.accounts import DEFAULT_ACCOUNT, account_client
from local_emulator.experiment.snapshot import capture, differences, split_key
from tests.emulator_fixtures import moto_server, unique  # noqa: F401 - fixture

OTHER_ACCOUNT = "444455556666"


def _code():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("h.py", "def handler(e, c):\n    return 1\n")
    return buffer.getvalue()


def _function(aws, account, region):
    """A function as a team has it in `account`: its variables, its tags, an alias."""
    lam = account_client(aws, account, "lambda", region)
    iam = account_client(aws, account, "iam", region)
    role = iam.create_role(RoleName=unique("r"), AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    name = unique("orders")
    lam.create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler="h.handler",
                        Code={"ZipFile": _code()}, Tags={"chaos:target": "sample-app"},
                        Environment={"Variables": {"TABLE_NAME": "orders"}})
    lam.create_alias(FunctionName=name, Name="live",
                     FunctionVersion=lam.publish_version(FunctionName=name)["Version"])
    return lam, name


@pytest.fixture
def two_accounts(moto_server):
    central = _function(moto_server, DEFAULT_ACCOUNT, "us-east-1")
    other = _function(moto_server, OTHER_ACCOUNT, "us-east-1")
    return moto_server, central, other


def test_a_snapshot_of_several_accounts_keys_each_function_by_account_region_and_name(two_accounts):
    aws, (_, central), (_, other) = two_accounts
    snapshot = capture(aws, ["us-east-1"], [DEFAULT_ACCOUNT, OTHER_ACCOUNT])
    assert f"{DEFAULT_ACCOUNT}/us-east-1/{central}" in snapshot
    entry = snapshot[f"{OTHER_ACCOUNT}/us-east-1/{other}"]
    assert entry["configuration"]["FunctionArn"].split(":")[4] == OTHER_ACCOUNT
    assert entry["tags"] == {"chaos:target": "sample-app"}
    assert entry["aliases"]["live"]["FunctionVersion"] == "1"
    assert not any(key.startswith(f"{OTHER_ACCOUNT}/") and key.endswith(f"/{central}") for key in snapshot)


def test_a_change_in_the_second_account_is_a_difference_named_by_its_account(two_accounts):
    aws, _, (lam, other) = two_accounts
    before = capture(aws, ["us-east-1"], [DEFAULT_ACCOUNT, OTHER_ACCOUNT])
    lam.update_function_configuration(FunctionName=other,
                                      Environment={"Variables": {"TABLE_NAME": "orders-v2"}})
    assert differences(before, capture(aws, ["us-east-1"], [DEFAULT_ACCOUNT, OTHER_ACCOUNT])) == [
        f'{OTHER_ACCOUNT}/us-east-1/{other}: configuration.Environment.Variables.TABLE_NAME: '
        '"orders" → "orders-v2"']


def test_a_one_account_snapshot_keeps_region_and_name_and_sees_only_that_account(two_accounts):
    aws, (_, central), (_, other) = two_accounts
    snapshot = capture(aws, ["us-east-1"])
    assert f"us-east-1/{central}" in snapshot
    assert not any(key.endswith(f"/{other}") for key in snapshot)


def test_a_key_splits_into_account_region_and_name_with_no_account_for_one_account():
    assert split_key("111111111111/us-east-1/orders") == ("111111111111", "us-east-1", "orders")
    assert split_key("us-east-1/orders") == ("", "us-east-1", "orders")
