"""S3 policies: buckets (``AWS::S3::Bucket``) and the account's public access block."""

from __future__ import annotations

from functools import partial
from typing import Any

from qrie_lib.models import Resource
from qrie_lib.policies.base import COMPLIANT, Policy, Related, Verdict, violation
from qrie_lib.policies.documents import denies_insecure_transport, public_statements, statements
from qrie_lib.services.s3 import ACCOUNT_PAB, BUCKET, PAB_FLAGS

GROUPS = "http://acs.amazonaws.com/groups/global/"
PUBLIC_GROUPS = {f"{GROUPS}AllUsers": "AllUsers", f"{GROUPS}AuthenticatedUsers": "AuthenticatedUsers"}
WRITE_PERMISSIONS = frozenset({"WRITE", "WRITE_ACP", "FULL_CONTROL"})
NOT_BLOCKED = "off on the bucket and on the account"


def pab_flags(configuration: dict[str, Any] | None) -> dict[str, bool]:
    block = (configuration or {}).get("PublicAccessBlock") or {}
    return {flag: block.get(flag) is True for flag in PAB_FLAGS}


def blocked(flag: str, bucket: Resource, related: Related) -> bool:
    """Whether the bucket's or the account's public access block sets ``flag`` (an account block
    not inventoried counts as not configured)."""
    account = related.get(ACCOUNT_PAB)
    return pab_flags(bucket.configuration)[flag] or (
        account is not None and pab_flags(account.configuration)[flag]
    )


def public_grants(bucket: Resource, permissions: frozenset[str] | None = None) -> list[dict[str, str]]:
    """ACL grants to everyone or to any AWS account holder (optionally only of ``permissions``)."""
    return [
        {"Grantee": PUBLIC_GROUPS[uri], "Permission": grant.get("Permission", "")}
        for grant in (bucket.configuration.get("Acl") or {}).get("Grants") or ()
        if (uri := (grant.get("Grantee") or {}).get("URI")) in PUBLIC_GROUPS
        and (permissions is None or grant.get("Permission") in permissions)
    ]


def acl_exposure(
    bucket: Resource, related: Related, permissions: frozenset[str] | None = None
) -> list[dict[str, str]]:
    """Public ACL grants that take effect: IgnorePublicAcls (bucket or account) neutralises them."""
    return [] if blocked("IgnorePublicAcls", bucket, related) else public_grants(bucket, permissions)


def bucket_public(bucket: Resource, related: Related) -> Verdict:
    evidence: dict[str, Any] = {}
    if grants := acl_exposure(bucket, related):
        evidence |= {"PublicAclGrants": grants, "IgnorePublicAcls": NOT_BLOCKED}
    if not blocked("RestrictPublicBuckets", bucket, related) and (
        policy := public_statements(bucket.configuration.get("Policy"))
    ):
        evidence |= {"PublicPolicyStatements": policy, "RestrictPublicBuckets": NOT_BLOCKED}
    return violation(**evidence) if evidence else COMPLIANT


def bucket_public_write_acl(bucket: Resource, related: Related) -> Verdict:
    grants = acl_exposure(bucket, related, WRITE_PERMISSIONS)
    return violation(PublicAclGrants=grants, IgnorePublicAcls=NOT_BLOCKED) if grants else COMPLIANT


def pab_disabled(resource: Resource, _: Related) -> Verdict:
    off = [flag for flag, on in pab_flags(resource.configuration).items() if not on]
    if not off:
        return COMPLIANT
    return violation(DisabledFlags=off, PublicAccessBlock=resource.configuration.get("PublicAccessBlock"))


def encryption_disabled(bucket: Resource, _: Related) -> Verdict:
    rules = (bucket.configuration.get("Encryption") or {}).get("Rules") or ()
    algorithms = [(r.get("ApplyServerSideEncryptionByDefault") or {}).get("SSEAlgorithm") for r in rules]
    return COMPLIANT if any(algorithms) else violation(Encryption=bucket.configuration.get("Encryption"))


def versioning_disabled(bucket: Resource, _: Related) -> Verdict:
    status = (bucket.configuration.get("Versioning") or {}).get("Status")
    return COMPLIANT if status == "Enabled" else violation(VersioningStatus=status)


def mfa_delete_disabled(bucket: Resource, _: Related) -> Verdict:
    mfa_delete = (bucket.configuration.get("Versioning") or {}).get("MfaDelete")
    return COMPLIANT if mfa_delete == "Enabled" else violation(MfaDelete=mfa_delete)


def secure_transport_not_enforced(bucket: Resource, _: Related) -> Verdict:
    policy = bucket.configuration.get("Policy")
    if any(denies_insecure_transport(s, bucket.arn) for s in statements(policy)):
        return COMPLIANT
    return violation(
        Policy=policy,
        Missing="Deny s3:* to * on the bucket and its objects when aws:SecureTransport is false",
    )


def logging_disabled(bucket: Resource, _: Related) -> Verdict:
    return COMPLIANT if bucket.configuration.get("Logging") else violation(Logging=None)


def acls_enabled(bucket: Resource, _: Related) -> Verdict:
    ownership = bucket.configuration.get("ObjectOwnership")
    return COMPLIANT if ownership == "BucketOwnerEnforced" else violation(ObjectOwnership=ownership)


declare = partial(Policy, service="s3")
PAB_CLI = "BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true"

POLICIES: tuple[Policy, ...] = (
    declare(
        policy_id="S3BucketPublic",
        resource_type=BUCKET,
        title="S3 bucket is publicly accessible",
        description=(
            "The bucket's ACL grants access to all users or to any authenticated AWS user, or its bucket "
            "policy allows any principal without a condition restricting the caller (source IP/VPC, "
            "organisation, account, ARN), and no public access block (bucket or account) neutralises it."
        ),
        severity=90,
        remediation=(
            "Remove the public ACL grants and the public policy statements, then enable Block Public Access: "
            f"aws s3api put-public-access-block --bucket NAME --public-access-block-configuration {PAB_CLI}. "
            "Serve public content through CloudFront with origin access control instead."
        ),
        evaluate=bucket_public,
        compliance=("CIS AWS Foundations v3.0 2.1.4",),
        related=(ACCOUNT_PAB,),
    ),
    declare(
        policy_id="S3BucketPublicWriteAcl",
        resource_type=BUCKET,
        title="S3 bucket ACL allows public write",
        description=(
            "The bucket's ACL grants WRITE, WRITE_ACP or FULL_CONTROL to all users or to any authenticated "
            "AWS user, and IgnorePublicAcls is not set on the bucket or the account: anyone can upload, "
            "overwrite or delete objects, or change the ACL."
        ),
        severity=95,
        remediation=(
            "Reset the ACL: aws s3api put-bucket-acl --bucket NAME --acl private; then disable ACLs with "
            "aws s3api put-bucket-ownership-controls --bucket NAME "
            "--ownership-controls Rules=[{ObjectOwnership=BucketOwnerEnforced}]."
        ),
        evaluate=bucket_public_write_acl,
        compliance=("CIS AWS Foundations v3.0 2.1.4",),
        related=(ACCOUNT_PAB,),
    ),
    declare(
        policy_id="S3BucketPublicAccessBlockDisabled",
        resource_type=BUCKET,
        title="S3 bucket Block Public Access is not fully enabled",
        description="One or more of the bucket's four Block Public Access settings is off or not configured.",
        severity=50,
        remediation=(
            "S3 console → bucket → Permissions → Block public access → Edit → enable all four settings, or "
            f"aws s3api put-public-access-block --bucket NAME --public-access-block-configuration {PAB_CLI}."
        ),
        evaluate=pab_disabled,
        compliance=("CIS AWS Foundations v3.0 2.1.4",),
    ),
    declare(
        policy_id="S3AccountPublicAccessBlockDisabled",
        resource_type=ACCOUNT_PAB,
        title="S3 account-level Block Public Access is not fully enabled",
        description=(
            "One or more of the account's four Block Public Access settings is off or not configured, so "
            "nothing stops a bucket from being made public by its ACL or policy."
        ),
        severity=70,
        remediation=(
            "S3 console → Block Public Access settings for this account → Edit → enable all four, or "
            "aws s3control put-public-access-block --account-id ACCOUNT "
            f"--public-access-block-configuration {PAB_CLI}."
        ),
        evaluate=pab_disabled,
        compliance=("CIS AWS Foundations v3.0 2.1.4",),
    ),
    declare(
        policy_id="S3BucketEncryptionDisabled",
        resource_type=BUCKET,
        title="S3 bucket has no default encryption",
        description="The bucket has no default server-side encryption configuration.",
        severity=40,
        remediation=(
            "aws s3api put-bucket-encryption --bucket NAME --server-side-encryption-configuration "
            '\'{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"aws:kms"}}]}\'.'
        ),
        evaluate=encryption_disabled,
    ),
    declare(
        policy_id="S3BucketVersioningDisabled",
        resource_type=BUCKET,
        title="S3 bucket versioning is not enabled",
        description="Versioning is disabled or suspended: overwritten or deleted objects are lost.",
        severity=35,
        remediation="aws s3api put-bucket-versioning --bucket NAME --versioning-configuration Status=Enabled",
        evaluate=versioning_disabled,
    ),
    declare(
        policy_id="S3BucketMfaDeleteDisabled",
        resource_type=BUCKET,
        title="S3 bucket MFA Delete is not enabled",
        description="Deleting object versions or suspending versioning does not require MFA.",
        severity=30,
        remediation=(
            "As the root user with its MFA device: aws s3api put-bucket-versioning --bucket NAME "
            "--versioning-configuration Status=Enabled,MFADelete=Enabled --mfa 'SERIAL CODE'."
        ),
        evaluate=mfa_delete_disabled,
        compliance=("CIS AWS Foundations v3.0 2.1.2",),
    ),
    declare(
        policy_id="S3BucketSecureTransportNotEnforced",
        resource_type=BUCKET,
        title="S3 bucket policy does not deny HTTP requests",
        description=(
            "The bucket policy has no statement denying every S3 action to every principal on the bucket "
            "and its objects when aws:SecureTransport is false; an Allow limited to HTTPS is not enough, "
            "since other policies can still allow HTTP."
        ),
        severity=50,
        remediation=(
            'Add to the bucket policy: {"Effect":"Deny","Principal":"*","Action":"s3:*",'
            '"Resource":["arn:aws:s3:::NAME","arn:aws:s3:::NAME/*"],'
            '"Condition":{"Bool":{"aws:SecureTransport":"false"}}}.'
        ),
        evaluate=secure_transport_not_enforced,
        compliance=("CIS AWS Foundations v3.0 2.1.1",),
    ),
    declare(
        policy_id="S3BucketLoggingDisabled",
        resource_type=BUCKET,
        title="S3 bucket server access logging is disabled",
        description="Requests to the bucket are not logged to a target bucket.",
        severity=30,
        remediation=(
            "aws s3api put-bucket-logging --bucket NAME --bucket-logging-status "
            '\'{"LoggingEnabled":{"TargetBucket":"LOG-BUCKET","TargetPrefix":"NAME/"}}\'.'
        ),
        evaluate=logging_disabled,
    ),
    declare(
        policy_id="S3BucketAclsEnabled",
        resource_type=BUCKET,
        title="S3 bucket ACLs are enabled",
        description=(
            "Object Ownership is not BucketOwnerEnforced, so ACLs still grant access and objects uploaded "
            "by other accounts may stay owned by them."
        ),
        severity=25,
        remediation=(
            "aws s3api put-bucket-ownership-controls --bucket NAME "
            "--ownership-controls Rules=[{ObjectOwnership=BucketOwnerEnforced}] (after moving any access "
            "granted by ACLs into the bucket policy)."
        ),
        evaluate=acls_enabled,
    ),
)
