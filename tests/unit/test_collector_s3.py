import json

import boto3
import pytest
from botocore.exceptions import ClientError

from qrie_lib.errors import UnexpectedResponse, Unreadable
from qrie_lib.services import s3
from tests.conftest import CUSTOMER, REGION, collect_all, make_ctx


def seed(customer) -> None:
    client = customer.client("s3")
    for n in range(5):
        client.create_bucket(Bucket=f"bucket-{n}")
    client.create_bucket(Bucket="eu-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    eu = customer.client("s3", region_name="eu-west-1")
    eu.put_bucket_acl(Bucket="eu-bucket", ACL="public-read")
    eu.put_bucket_policy(
        Bucket="eu-bucket",
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": "*",
                        "Action": "s3:GetObject",
                        "Resource": "arn:aws:s3:::eu-bucket/*",
                    }
                ],
            }
        ),
    )
    eu.put_bucket_versioning(Bucket="eu-bucket", VersioningConfiguration={"Status": "Enabled"})
    eu.put_bucket_tagging(Bucket="eu-bucket", Tagging={"TagSet": [{"Key": "team", "Value": "data"}]})
    client.put_bucket_encryption(
        Bucket="bucket-0",
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )


def test_buckets_are_listed_page_by_page_with_their_configuration(aws, customer):
    seed(customer)
    ctx = make_ctx(aws, region="global", page_size=2)
    found, pages = collect_all(ctx, s3.SERVICE.kind(s3.BUCKET))
    assert pages == 3
    by_name = {r.configuration["Name"]: r for r in found}
    assert sorted(by_name) == ["bucket-0", "bucket-1", "bucket-2", "bucket-3", "bucket-4", "eu-bucket"]
    eu = by_name["eu-bucket"]
    assert eu.region == "eu-west-1"
    assert eu.arn == "arn:aws:s3:::eu-bucket"
    assert eu.account_id == CUSTOMER
    assert eu.configuration["Versioning"]["Status"] == "Enabled"
    assert eu.configuration["Policy"]["Statement"][0]["Principal"] == "*"
    assert any("AllUsers" in g["Grantee"].get("URI", "") for g in eu.configuration["Acl"]["Grants"])
    assert eu.tags == {"team": "data"}
    assert by_name["bucket-0"].configuration["Encryption"]["Rules"][0]
    assert by_name["bucket-1"].region == "us-east-1"


def test_cursor_resumes_after_the_last_bucket_of_the_previous_page(aws, customer):
    seed(customer)
    kind = s3.SERVICE.kind(s3.BUCKET)
    ctx = make_ctx(aws, region="global", page_size=2)
    first = kind.list_page(ctx, None)
    resumed = kind.list_page(make_ctx(aws, region="global", page_size=2), first.next_token)
    assert [r.configuration["Name"] for r in first.resources] == ["bucket-0", "bucket-1"]
    assert [r.configuration["Name"] for r in resumed.resources] == ["bucket-2", "bucket-3"]


def test_describe_of_a_missing_bucket_is_none(aws, customer):
    assert s3.describe_bucket(make_ctx(aws, region="global"), "gone-bucket") is None


def test_account_public_access_block_is_a_resource(aws, customer):
    ctx = make_ctx(aws, region="global")
    before = s3.describe_account_pab(ctx)
    assert before.arn == f"arn:aws:s3::{CUSTOMER}:account-public-access-block"
    assert before.configuration["PublicAccessBlock"] is None
    customer.client("s3control").put_public_access_block(
        AccountId=CUSTOMER,
        PublicAccessBlockConfiguration=dict.fromkeys(s3.PAB_FLAGS, True),
    )
    after = s3.describe_account_pab(ctx)
    assert after.configuration["PublicAccessBlock"] == dict.fromkeys(s3.PAB_FLAGS, True)


def test_an_unexpected_api_answer_is_a_named_error(aws, customer):
    customer.client("s3").create_bucket(Bucket="bucket-x")
    ctx = make_ctx(aws, region="global")
    client = ctx.client("s3")

    def drop_buckets(parsed, **_):
        parsed.pop("Buckets", None)

    client.meta.events.register("after-call.s3.ListBuckets", drop_buckets)
    with pytest.raises(UnexpectedResponse, match="ListBuckets answered without 'Buckets'"):
        s3.SERVICE.kind(s3.BUCKET).list_page(ctx, None)


# ---- one bucket's refusal, another account's bucket ----------------------------------------

OTHER = "222222222222"


def deny(aws, bucket: str, *operations: str, code: str = "AccessDenied") -> list[str]:
    """Make the customer's S3 client answer ``code`` for these operations on one bucket (as a
    deny-by-default bucket policy would); returns the operations it refused."""
    refused: list[str] = []
    client = aws.customer_client(CUSTOMER, "s3", REGION)

    def refuse(params, model, **_):
        if params.get("Bucket") == bucket:
            refused.append(model.name)
            raise ClientError({"Error": {"Code": code, "Message": "denied"}}, model.name)

    for operation in operations:
        client.meta.events.register(f"before-parameter-build.s3.{operation}", refuse)
    return refused


BUCKET_CALLS = (
    "GetBucketLocation",
    "GetPublicAccessBlock",
    "GetBucketPolicy",
    "GetBucketPolicyStatus",
    "GetBucketOwnershipControls",
    "GetBucketAcl",
    "GetBucketEncryption",
    "GetBucketVersioning",
    "GetBucketLogging",
    "GetBucketTagging",
)


def test_a_denied_call_is_recorded_on_its_bucket_and_the_listing_completes(aws, customer):
    seed(customer)
    refused = deny(aws, "bucket-2", "GetBucketPolicy")
    found, _ = collect_all(make_ctx(aws, region="global"), s3.SERVICE.kind(s3.BUCKET))
    by_name = {r.configuration["Name"]: r for r in found}
    assert len(by_name) == 6
    assert refused == ["GetBucketPolicy"]
    locked = by_name["bucket-2"].configuration
    assert locked["CollectErrors"] == [{"call": "GetBucketPolicy", "code": "AccessDenied"}]
    assert locked["Policy"] is None
    assert locked["Versioning"]["Status"] == "Disabled"  # the other calls answered
    assert all("CollectErrors" not in r.configuration for n, r in by_name.items() if n != "bucket-2")


def test_a_bucket_whose_every_call_is_denied_is_listed_unread_and_never_described(aws, customer):
    seed(customer)
    deny(aws, "bucket-1", *BUCKET_CALLS)
    ctx = make_ctx(aws, region="global", page_size=10)
    page = s3.SERVICE.kind(s3.BUCKET).list_page(ctx, None)
    assert "bucket-1" not in {r.configuration["Name"] for r in page.resources}
    [unread] = page.unread
    assert unread.arn == "arn:aws:s3:::bucket-1"
    assert [e["call"] for e in unread.configuration["CollectErrors"]] == list(BUCKET_CALLS)
    assert len(page.resources) == 5
    with pytest.raises(Unreadable, match="bucket-1"):
        s3.describe_bucket(ctx, "bucket-1")


def test_throttling_still_fails_the_listing(aws, customer):
    seed(customer)
    deny(aws, "bucket-3", "GetBucketAcl", code="SlowDown")
    with pytest.raises(ClientError, match="SlowDown"):
        collect_all(make_ctx(aws, region="global"), s3.SERVICE.kind(s3.BUCKET))


def test_every_bucket_call_names_the_expected_owner(aws, customer):
    seed(customer)
    asked: list[tuple[str, str | None]] = []
    for region in (REGION, "eu-west-1"):
        aws.customer_client(CUSTOMER, "s3", region).meta.events.register(
            "before-parameter-build.s3",
            lambda params, model, **_: asked.append((model.name, params.get("ExpectedBucketOwner"))),
        )
    collect_all(make_ctx(aws, region="global"), s3.SERVICE.kind(s3.BUCKET))
    s3.describe_bucket(make_ctx(aws, region="global"), "eu-bucket")
    bucket_calls = [(op, owner) for op, owner in asked if op != "ListBuckets"]
    assert {op for op, _ in bucket_calls} == set(BUCKET_CALLS)
    assert {owner for _, owner in bucket_calls} == {CUSTOMER}


def test_calls_made_moot_by_a_missing_policy_or_disabled_acls_are_skipped(aws, customer):
    client = customer.client("s3")
    client.create_bucket(Bucket="modern")  # no policy, ACLs disabled (Bucket owner enforced)
    client.put_bucket_ownership_controls(
        Bucket="modern", OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    )
    client.create_bucket(Bucket="legacy")  # a policy, ACLs enabled
    policy = {
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::legacy/*",
    }
    client.put_bucket_policy(
        Bucket="legacy", Policy=json.dumps({"Version": "2012-10-17", "Statement": [policy]})
    )
    asked: list[tuple[str, str]] = []
    aws.customer_client(CUSTOMER, "s3", REGION).meta.events.register(
        "before-parameter-build.s3",
        lambda params, model, **_: asked.append((params.get("Bucket"), model.name)),
    )
    found, _ = collect_all(make_ctx(aws, region="global", page_size=10), s3.SERVICE.kind(s3.BUCKET))
    by_name = {r.configuration["Name"]: r.configuration for r in found}
    modern = {call for bucket, call in asked if bucket == "modern"}
    legacy = {call for bucket, call in asked if bucket == "legacy"}
    assert not modern & {"GetBucketPolicyStatus", "GetBucketAcl"}
    assert {"GetBucketPolicyStatus", "GetBucketAcl"} <= legacy
    assert by_name["modern"]["Acl"] == s3.ACLS_DISABLED  # no grant applies, as S3 reads it back
    assert by_name["modern"]["PolicyStatus"] is None
    assert by_name["legacy"]["PolicyStatus"] == {"IsPublic": True}


def test_another_accounts_bucket_is_not_described_as_ours(aws, customer):
    creds = customer.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{OTHER}:role/seed", RoleSessionName="seed"
    )["Credentials"]
    other = boto3.client(
        "s3",
        region_name=REGION,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    other.create_bucket(Bucket="theirs")
    customer.client("s3").create_bucket(Bucket="theirs-too-ours")  # shares the prefix, not the name
    aws.customer_calls.clear()
    assert s3.describe_bucket(make_ctx(aws, region="global"), "theirs") is None
    assert dict(aws.customer_calls) == {"s3.ListBuckets": 1}  # nothing of theirs was read
    assert s3.describe_bucket(make_ctx(aws, region="global"), "theirs-too-ours").account_id == CUSTOMER
