import json

import pytest

from qrie_lib.errors import UnexpectedResponse
from qrie_lib.services import s3
from tests.conftest import CUSTOMER, collect_all, make_ctx


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
