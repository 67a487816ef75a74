"""The gaps the local runtime closes in moto behave as AWS documents them."""

from collections.abc import Iterator

import boto3
import pytest
from botocore.exceptions import ClientError

from orchestration import emulation
from tests.conftest import REGION, session_in


@pytest.fixture
def emulated(moto_env: None) -> Iterator[None]:
    emulation.install("QrieReadOnly")
    yield
    emulation.uninstall()


def test_expected_bucket_owner_refuses_another_accounts_bucket(emulated) -> None:
    owner, other = session_in("222222222222").client("s3"), session_in("333333333333").client("s3")
    owner.create_bucket(Bucket="owned-by-b")
    assert owner.get_bucket_versioning(Bucket="owned-by-b", ExpectedBucketOwner="222222222222")
    with pytest.raises(ClientError) as denied:
        other.get_bucket_versioning(Bucket="owned-by-b", ExpectedBucketOwner="333333333333")
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_describe_snapshots_honours_owner_and_restorable_by(emulated) -> None:
    ec2 = session_in("222222222222").client("ec2")
    volume = ec2.create_volume(Size=1, AvailabilityZone=f"{REGION}a")["VolumeId"]
    public, shared, private = (ec2.create_snapshot(VolumeId=volume)["SnapshotId"] for _ in range(3))
    ec2.modify_snapshot_attribute(
        SnapshotId=public, Attribute="createVolumePermission", OperationType="add", GroupNames=["all"]
    )
    ec2.modify_snapshot_attribute(
        SnapshotId=shared, Attribute="createVolumePermission", OperationType="add", UserIds=["444444444444"]
    )

    def ids(**params) -> set[str]:
        return {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"], **params)["Snapshots"]}

    assert ids() == {public, shared, private}  # only this account's: not the AMIs' snapshots
    assert ids(RestorableByUserIds=["all"]) == {public}
    assert ids(RestorableByUserIds=["444444444444"]) == {public, shared}


def test_the_account_of_an_access_key_is_remembered_and_checked(emulated):
    """moto searched every account's IAM for a request's key; the emulation remembers where it
    was, checks it is still there, and remembers keys that are in no account (the operator's)."""
    import moto.iam.models

    from orchestration.simulated_org import account_id

    accounts = [account_id(n) for n in range(1, 4)]
    clients = {a: session_in(a).client("sts") for a in accounts}
    for account, sts in clients.items():
        assert sts.get_caller_identity()["Account"] == account
    remembered = {k: a for k, a in emulation.KEY_ACCOUNTS.items() if a}
    assert set(remembered.values()) == set(accounts)
    original = emulation.ORIGINAL_ACCOUNT_OF_KEY
    for key, account in remembered.items():
        assert emulation.account_of_access_key(key) == account == original(key)
    operator = boto3.client("sts", region_name=REGION)
    assert operator.get_caller_identity()["Account"] == "123456789012"
    assert None in emulation.KEY_ACCOUNTS.values()  # the operator's key: in no account
    key, account = next(iter(remembered.items()))
    for partition in moto.iam.models.PARTITION_NAMES:  # the key is gone: searched again, not found
        moto.iam.models.iam_backends[account][partition].access_keys.pop(key, None)
    assert emulation.account_of_access_key(key) == "123456789012" == original(key)
