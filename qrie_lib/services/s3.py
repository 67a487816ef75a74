"""S3: buckets (listed globally, described in their own region) and the account-level public
access block (s3control) as a resource of its own, with pseudo-ARN
``arn:aws:s3::{account}:account-public-access-block``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from botocore.exceptions import ClientError

from qrie_lib.aws import error_code
from qrie_lib.models import GLOBAL, Resource
from qrie_lib.services.base import (
    CollectContext,
    EventRule,
    Page,
    ResourceKind,
    Service,
    Touch,
    loads_json,
    optional_call,
    require,
    slice_page,
    tags_dict,
)
from qrie_lib.timeutil import now_iso

BUCKET = "AWS::S3::Bucket"
ACCOUNT_PAB = "AWS::S3::AccountPublicAccessBlock"
PAB_FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


def bucket_arn(_: CollectContext, name: str) -> str:
    return f"arn:aws:s3:::{name}"


def bucket_region(location: str | None) -> str:
    # GetBucketLocation answers None for us-east-1 and the legacy "EU" for eu-west-1.
    return {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(location, location)  # type: ignore[return-value]


def describe_bucket(ctx: CollectContext, name: str) -> Resource | None:
    describe_time = now_iso()
    try:
        location = ctx.client("s3").get_bucket_location(Bucket=name).get("LocationConstraint")
    except ClientError as exc:
        if error_code(exc) in ("NoSuchBucket", "404"):
            return None
        raise
    region = bucket_region(location)
    s3 = ctx.client("s3", region)

    pab = optional_call(
        lambda: s3.get_public_access_block(Bucket=name), "NoSuchPublicAccessBlockConfiguration"
    )
    policy = optional_call(lambda: s3.get_bucket_policy(Bucket=name), "NoSuchBucketPolicy")
    policy_status = optional_call(lambda: s3.get_bucket_policy_status(Bucket=name), "NoSuchBucketPolicy")
    acl = s3.get_bucket_acl(Bucket=name)
    encryption = optional_call(
        lambda: s3.get_bucket_encryption(Bucket=name), "ServerSideEncryptionConfigurationNotFoundError"
    )
    versioning = s3.get_bucket_versioning(Bucket=name)
    logging = s3.get_bucket_logging(Bucket=name)
    ownership = optional_call(
        lambda: s3.get_bucket_ownership_controls(Bucket=name), "OwnershipControlsNotFoundError"
    )
    tagging = optional_call(lambda: s3.get_bucket_tagging(Bucket=name), "NoSuchTagSet")

    rules = (ownership or {}).get("OwnershipControls", {}).get("Rules", [])
    configuration: dict[str, Any] = {
        "Name": name,
        "Region": region,
        "PublicAccessBlock": (pab or {}).get("PublicAccessBlockConfiguration"),
        "Policy": loads_json((policy or {}).get("Policy")),
        "PolicyStatus": (policy_status or {}).get("PolicyStatus"),
        "Acl": {"Owner": acl.get("Owner"), "Grants": require(acl, "Grants", "GetBucketAcl")},
        "Encryption": (encryption or {}).get("ServerSideEncryptionConfiguration"),
        "Versioning": {
            "Status": versioning.get("Status", "Disabled"),
            "MfaDelete": versioning.get("MFADelete", "Disabled"),
        },
        "Logging": logging.get("LoggingEnabled"),
        "ObjectOwnership": rules[0]["ObjectOwnership"] if rules else None,
    }
    return ctx.resource(
        service="s3",
        resource_type=BUCKET,
        arn=bucket_arn(ctx, name),
        region=region,
        configuration=configuration,
        tags=tags_dict((tagging or {}).get("TagSet")),
        describe_time=describe_time,
    )


def list_buckets(ctx: CollectContext, token: str | None) -> Page:
    # One ListBuckets per page and "start after" paging: MaxBuckets is not honoured everywhere
    # (moto ignores it), and the listing is one cheap call next to ten describes per bucket.
    buckets = require(ctx.client("s3").list_buckets(), "Buckets", "ListBuckets")
    names, next_token = slice_page([b["Name"] for b in buckets], token, ctx.page_size)
    resources = [r for r in (describe_bucket(ctx, n) for n in names) if r is not None]
    return Page(resources, next_token)


def account_pab_arn(ctx: CollectContext, _: str = "") -> str:
    return f"arn:aws:s3::{ctx.account_id}:account-public-access-block"


def describe_account_pab(ctx: CollectContext, _: str = "") -> Resource:
    describe_time = now_iso()
    answer = optional_call(
        lambda: ctx.client("s3control").get_public_access_block(AccountId=ctx.account_id),
        "NoSuchPublicAccessBlockConfiguration",
    )
    return ctx.resource(
        service="s3",
        resource_type=ACCOUNT_PAB,
        arn=account_pab_arn(ctx),
        region=GLOBAL,
        configuration={"PublicAccessBlock": (answer or {}).get("PublicAccessBlockConfiguration")},
        describe_time=describe_time,
    )


def list_account_pab(ctx: CollectContext, _: str | None) -> Page:
    return Page([describe_account_pab(ctx)], None)


# ---- CloudTrail ---------------------------------------------------------------------------


def bucket_touch(detail: dict[str, Any]) -> Iterable[Touch]:
    name = (detail.get("requestParameters") or {}).get("bucketName")
    return [Touch(BUCKET, name)] if isinstance(name, str) and name else []


def public_access_block_touch(detail: dict[str, Any]) -> Iterable[Touch]:
    # The same event names serve the bucket level (bucketName) and the account level (s3control,
    # no bucket; the account is the recipient).
    name = (detail.get("requestParameters") or {}).get("bucketName")
    if isinstance(name, str) and name:
        return [Touch(BUCKET, name)]
    return [Touch(ACCOUNT_PAB, str(detail.get("recipientAccountId", "")))]


SERVICE = Service(
    name="s3",
    regional=False,
    # IAM's names for these calls (ListBuckets is s3:ListAllMyBuckets, s3control's
    # GetPublicAccessBlock is s3:GetAccountPublicAccessBlock, ...).
    read_actions=(
        "s3:ListAllMyBuckets",
        "s3:GetBucketAcl",
        "s3:GetBucketLocation",
        "s3:GetBucketLogging",
        "s3:GetBucketOwnershipControls",
        "s3:GetBucketPolicy",
        "s3:GetBucketPolicyStatus",
        "s3:GetBucketPublicAccessBlock",
        "s3:GetBucketTagging",
        "s3:GetBucketVersioning",
        "s3:GetEncryptionConfiguration",
        "s3:GetAccountPublicAccessBlock",
    ),
    clients=("s3", "s3control"),
    kinds=(
        ResourceKind(BUCKET, list_buckets, describe_bucket, bucket_arn),
        ResourceKind(ACCOUNT_PAB, list_account_pab, describe_account_pab, account_pab_arn),
    ),
    event_source="s3.amazonaws.com",
    events=(
        EventRule(
            (
                "CreateBucket",
                "DeleteBucket",
                "PutBucketPolicy",
                "DeleteBucketPolicy",
                "PutBucketAcl",
                "PutBucketOwnershipControls",
                "DeleteBucketOwnershipControls",
                "PutBucketEncryption",
                "DeleteBucketEncryption",
                "PutBucketVersioning",
                "PutBucketLogging",
                "PutBucketTagging",
                "DeleteBucketTagging",
            ),
            bucket_touch,
        ),
        EventRule(("PutBucketPublicAccessBlock", "DeleteBucketPublicAccessBlock"), bucket_touch),
        EventRule(("PutPublicAccessBlock", "DeletePublicAccessBlock"), public_access_block_touch),
    ),
)
