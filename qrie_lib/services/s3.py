"""S3: buckets (listed globally, described in their own region) and the account-level public
access block (s3control) as a resource of its own, with pseudo-ARN
``arn:aws:s3::{account}:account-public-access-block``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from botocore.exceptions import ClientError

from qrie_lib.aws import error_code
from qrie_lib.errors import Unreadable
from qrie_lib.models import GLOBAL, Resource
from qrie_lib.services.base import (
    CollectContext,
    EventRule,
    Page,
    ResourceCalls,
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
BUCKET_OWNER_ENFORCED = "BucketOwnerEnforced"
ACLS_DISABLED: dict[str, Any] = {
    "AclsDisabled": True
}  # the Acl of a bucket whose ACLs are disabled: no grants


def bucket_arn(_: CollectContext, name: str) -> str:
    return f"arn:aws:s3:::{name}"


def bucket_region(location: str | None) -> str:
    # GetBucketLocation answers None for us-east-1 and the legacy "EU" for eu-west-1.
    return {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(location, location)  # type: ignore[return-value]


def owned_bucket(ctx: CollectContext, name: str) -> dict[str, Any] | None:
    """The account's ListBuckets entry of this bucket; None if the account does not own it (gone,
    or another account's: a bucket ARN names no account, an event may name anyone's bucket)."""
    answer = ctx.client("s3").list_buckets(Prefix=name)
    return next((b for b in require(answer, "Buckets", "ListBuckets") if b.get("Name") == name), None)


def describe_bucket(ctx: CollectContext, name: str) -> Resource | None:
    """One bucket by name (events), only if this account owns it; None otherwise."""
    listed = owned_bucket(ctx, name)
    read = read_bucket(ctx, name, listed.get("BucketRegion")) if listed else None
    if read is None:
        return None
    resource, unread = read
    if unread:
        raise Unreadable(f"s3 bucket {name}: every describe call was denied: {resource.configuration}")
    return resource


def read_bucket(ctx: CollectContext, name: str, region: str | None) -> tuple[Resource, bool] | None:
    """A bucket of this account, and whether none of its calls answered; None if it is gone.

    Every call names the expected owner: AWS refuses it if the bucket changed hands meanwhile."""
    describe_time = now_iso()
    calls = ResourceCalls()
    owner = {"Bucket": name, "ExpectedBucketOwner": ctx.account_id}
    try:
        if region is None:  # ListBuckets answers BucketRegion; where it does not, ask the bucket
            location = calls.call("GetBucketLocation", lambda: ctx.client("s3").get_bucket_location(**owner))
            region = bucket_region(location.get("LocationConstraint")) if location is not None else None
        s3 = ctx.client("s3", region)
        pab = calls.call(
            "GetPublicAccessBlock",
            lambda: s3.get_public_access_block(**owner),
            "NoSuchPublicAccessBlockConfiguration",
        )
        policy = calls.call("GetBucketPolicy", lambda: s3.get_bucket_policy(**owner), "NoSuchBucketPolicy")
        # Skipped without a policy: the policy status is S3's evaluation of the bucket policy (S3 user
        # guide, "The meaning of 'public'"), and GetBucketPolicyStatus answers NoSuchBucketPolicy.
        policy_status = (
            calls.call(
                "GetBucketPolicyStatus", lambda: s3.get_bucket_policy_status(**owner), "NoSuchBucketPolicy"
            )
            if policy is not None or calls.denied("GetBucketPolicy")
            else None
        )
        ownership = calls.call(
            "GetBucketOwnershipControls",
            lambda: s3.get_bucket_ownership_controls(**owner),
            "OwnershipControlsNotFoundError",
        )
        rules = (ownership or {}).get("OwnershipControls", {}).get("Rules", [])
        object_ownership = rules[0]["ObjectOwnership"] if rules else None
        # Skipped when ACLs are disabled: with Bucket owner enforced, "requests to read ACLs always
        # return a response that shows full control for the bucket owner" and ACLs no longer affect
        # permissions (S3 user guide, "Troubleshooting" under "Controlling ownership of objects").
        acls_disabled = object_ownership == BUCKET_OWNER_ENFORCED
        acl = None if acls_disabled else calls.call("GetBucketAcl", lambda: s3.get_bucket_acl(**owner))
        encryption = calls.call(
            "GetBucketEncryption",
            lambda: s3.get_bucket_encryption(**owner),
            "ServerSideEncryptionConfigurationNotFoundError",
        )
        versioning = calls.call("GetBucketVersioning", lambda: s3.get_bucket_versioning(**owner))
        logging = calls.call("GetBucketLogging", lambda: s3.get_bucket_logging(**owner))
        tagging = calls.call("GetBucketTagging", lambda: s3.get_bucket_tagging(**owner), "NoSuchTagSet")
    except ClientError as exc:
        if error_code(exc) in ("NoSuchBucket", "404"):  # deleted since it was listed
            return None
        raise

    configuration: dict[str, Any] = {
        "Name": name,
        "Region": region,
        "PublicAccessBlock": (pab or {}).get("PublicAccessBlockConfiguration"),
        "Policy": loads_json((policy or {}).get("Policy")),
        "PolicyStatus": (policy_status or {}).get("PolicyStatus"),
        "Acl": ACLS_DISABLED
        if acls_disabled
        else acl and {"Owner": acl.get("Owner"), "Grants": require(acl, "Grants", "GetBucketAcl")},
        "Encryption": (encryption or {}).get("ServerSideEncryptionConfiguration"),
        "Versioning": versioning
        and {
            "Status": versioning.get("Status", "Disabled"),
            "MfaDelete": versioning.get("MFADelete", "Disabled"),
        },
        "Logging": (logging or {}).get("LoggingEnabled"),
        "ObjectOwnership": object_ownership,
    }
    resource = ctx.resource(
        service="s3",
        resource_type=BUCKET,
        arn=bucket_arn(ctx, name),
        region=region or GLOBAL,  # GLOBAL: its location was denied
        configuration=calls.stamp(configuration),
        tags=tags_dict((tagging or {}).get("TagSet")),
        describe_time=describe_time,
    )
    return resource, calls.none_answered


def list_buckets(ctx: CollectContext, token: str | None) -> Page:
    # One ListBuckets per page and "start after" paging: MaxBuckets is not honoured everywhere
    # (moto ignores it), and the listing is one cheap call next to ten describes per bucket.
    # A bucket it lists is this account's: no ownership check beyond ExpectedBucketOwner.
    buckets = require(ctx.client("s3").list_buckets(), "Buckets", "ListBuckets")
    regions = {b["Name"]: b.get("BucketRegion") for b in buckets}
    names, next_token = slice_page(list(regions), token, ctx.page_size)
    read = [r for r in ctx.each(lambda n: read_bucket(ctx, n, regions[n]), names) if r is not None]
    return Page(
        [resource for resource, unread in read if not unread],
        next_token,
        unread=[resource for resource, unread in read if unread],
    )


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


def account_pab_touch(detail: dict[str, Any]) -> Iterable[Touch]:
    # s3control's Put/DeletePublicAccessBlock, recorded under these names; the account is the
    # event's (its request names it too, as the x-amz-account-id header, not kept in the record).
    account = detail.get("recipientAccountId")
    return [Touch(ACCOUNT_PAB, account)] if isinstance(account, str) and account else []


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
        # CloudTrail's names for s3control's PutPublicAccessBlock/DeletePublicAccessBlock (the S3
        # user guide, "Amazon S3 account-level actions tracked by CloudTrail logging").
        EventRule(("PutAccountPublicAccessBlock", "DeleteAccountPublicAccessBlock"), account_pab_touch),
    ),
)
