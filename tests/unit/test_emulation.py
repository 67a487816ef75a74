"""The gaps the local runtime closes in moto behave as AWS documents them."""

from collections.abc import Iterator

import boto3
import pytest
from botocore.exceptions import ClientError

from orchestration import dynamodb_emulation, emulation
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


def test_a_cancelled_transaction_rolls_back_only_from_copies_of_its_own_items(emulated) -> None:
    ddb = boto3.client("dynamodb", region_name=REGION)
    ddb.create_table(
        TableName="t",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in ("pk", "sk")],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    )
    for sk in ("a", "b", "c"):
        ddb.put_item(TableName="t", Item={"pk": {"S": "p"}, "sk": {"S": sk}, "v": {"N": "1"}})
    key_a, key_b = ({"pk": {"S": "p"}, "sk": {"S": s}} for s in ("a", "b"))
    with pytest.raises(ClientError, match="TransactionCanceled"):
        ddb.transact_write_items(
            TransactItems=[
                {"Update": {"TableName": "t", "Key": key_a, "UpdateExpression": "SET v = :two",
                            "ExpressionAttributeValues": {":two": {"N": "2"}}}},
                {"Put": {"TableName": "t", "Item": {**key_b, "v": {"N": "3"}},
                         "ConditionExpression": "attribute_not_exists(pk)"}},
            ]
        )  # fmt: skip
    values = {i["sk"]["S"]: i["v"]["N"] for i in ddb.scan(TableName="t")["Items"]}
    assert values == {"a": "1", "b": "1", "c": "1"}
    ddb.transact_write_items(
        TransactItems=[{"Update": {"TableName": "t", "Key": key_a, "UpdateExpression": "SET v = :two",
                                   "ExpressionAttributeValues": {":two": {"N": "2"}}}}]
    )  # fmt: skip
    assert ddb.get_item(TableName="t", Key=key_a)["Item"]["v"]["N"] == "2"


def test_the_rollback_copy_shares_the_items_a_transaction_does_not_name() -> None:
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    table = Table("t", account_id="123456789012", region="us-east-1",
                  schema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                  attr=[{"AttributeName": "pk", "AttributeType": "S"}])  # fmt: skip
    for pk in ("a", "b"):
        table.put_item({"pk": {"S": pk}, "v": {"N": "1"}})
    named = DynamoType({"S": "a"})
    snapshot = dynamodb_emulation.RollbackCopy({"t": [(named, None)]}).deepcopy(table)
    other = DynamoType({"S": "b"})
    assert snapshot.items is not table.items
    assert snapshot.items[other] is table.items[other]
    assert snapshot.items[named] is not table.items[named]
    assert snapshot.items[named].to_json() == table.items[named].to_json()
