"""S3 policies: buckets (``AWS::S3::Bucket``) and the account's public access block."""

from __future__ import annotations

from functools import partial
from typing import Any

from qrie_lib.models import Resource
from qrie_lib.policies.base import COMPLIANT, Policy, Related, Verdict, missing, not_evaluated, violation
from qrie_lib.policies.documents import denies_insecure_transport, public_statements, statements
from qrie_lib.services.s3 import ACCOUNT_PAB, BUCKET, PAB_FLAGS

GROUPS = "http://acs.amazonaws.com/groups/global/"
PUBLIC_GROUPS = {f"{GROUPS}AllUsers": "AllUsers", f"{GROUPS}AuthenticatedUsers": "AuthenticatedUsers"}
WRITE_PERMISSIONS = frozenset({"WRITE", "WRITE_ACP", "FULL_CONTROL"})
NOT_BLOCKED = "off on the bucket and on the account"
# Configuration keys and the S3 call that fills each (see Policy.needs).
PAB_NEED = {"PublicAccessBlock": "GetPublicAccessBlock"}
ACL_NEED = {"Acl": "GetBucketAcl"}
POLICY_NEEDS = {"Policy": "GetBucketPolicy", "PolicyStatus": "GetBucketPolicyStatus"}


def pab_flags(configuration: dict[str, Any] | None) -> dict[str, bool]:
    block = (configuration or {}).get("PublicAccessBlock") or {}
    return {flag: block.get(flag) is True for flag in PAB_FLAGS}


def blocked(flag: str, bucket: Resource, related: Related) -> bool:
    """Whether the bucket's or the account's public access block sets ``flag``: S3 applies the most
    restrictive combination of the two (an account block not inventoried counts as not set)."""
    account = related.get(ACCOUNT_PAB)
    return pab_flags(bucket.configuration)[flag] or (
        account is not None and pab_flags(account.configuration)[flag]
    )


def account_block_unknown(related: Related) -> list[dict[str, Any]] | None:
    """Why the account's block is unknown (not inventoried, or its call failed), or None if known."""
    account = related.get(ACCOUNT_PAB)
    if account is None:
        return [{"Key": ACCOUNT_PAB, "Problem": "not inventoried"}]
    return missing(account, PAB_NEED) or None


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
    """Public through its ACL or its policy. The policy is public by Qrie's analysis or by S3's own
    (GetBucketPolicyStatus ``IsPublic``), whichever finds it: S3 knows conditions Qrie does not."""
    evidence: dict[str, Any] = {}
    if grants := acl_exposure(bucket, related):
        evidence |= {"PublicAclGrants": grants, "IgnorePublicAcls": NOT_BLOCKED}
    if not blocked("RestrictPublicBuckets", bucket, related):
        statements_found = public_statements(bucket.configuration.get("Policy"))
        status_public = (bucket.configuration.get("PolicyStatus") or {}).get("IsPublic") is True
        if statements_found or status_public:
            evidence |= {"PublicPolicyStatements": statements_found, "RestrictPublicBuckets": NOT_BLOCKED}
            evidence |= {"PolicyStatus": {"IsPublic": True}} if status_public else {}
    return exposure(evidence, related)


def exposure(evidence: dict[str, Any], related: Related) -> Verdict:
    """Exposure found is a violation only if the account's block is known not to neutralise it."""
    if not evidence:
        return COMPLIANT
    if gaps := account_block_unknown(related):
        return not_evaluated(NotCollected=gaps)
    return violation(**evidence)


def bucket_public_write_acl(bucket: Resource, related: Related) -> Verdict:
    grants = acl_exposure(bucket, related, WRITE_PERMISSIONS)
    return exposure({"PublicAclGrants": grants, "IgnorePublicAcls": NOT_BLOCKED} if grants else {}, related)


def pab_disabled(resource: Resource, _: Related) -> Verdict:
    off = [flag for flag, on in pab_flags(resource.configuration).items() if not on]
    if not off:
        return COMPLIANT
    return violation(DisabledFlags=off, PublicAccessBlock=resource.configuration.get("PublicAccessBlock"))


def bucket_pab_disabled(bucket: Resource, related: Related) -> Verdict:
    """CIS 2.1.4's audit: all four settings on at the bucket level, or all four at the account level.
    Either level passes alone; a mix (two on the bucket, two on the account) does not, as in the
    audit, although S3 would apply the union — S3BucketPublic judges that effective exposure."""
    account = related.get(ACCOUNT_PAB)
    if all(pab_flags(bucket.configuration).values()):
        return COMPLIANT
    if (
        account is not None
        and not missing(account, PAB_NEED)
        and all(pab_flags(account.configuration).values())
    ):
        return COMPLIANT
    if gaps := missing(bucket, PAB_NEED) + (account_block_unknown(related) or []):
        return not_evaluated(NotCollected=gaps)
    off = [flag for flag, on in pab_flags(bucket.configuration).items() if not on]
    return violation(
        DisabledFlags=off,
        PublicAccessBlock=bucket.configuration.get("PublicAccessBlock"),
        AccountPublicAccessBlock=account.configuration.get("PublicAccessBlock") if account else None,
    )


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
            "organisation, account, ARN; source IP ranges that together cover every address restrict "
            "nothing), or S3's own policy status says it is public, and no public access block (bucket "
            "or account) neutralises it."
        ),
        severity=90,
        remediation=(
            "Remove the public ACL grants and the public policy statements, then enable Block Public Access: "
            f"aws s3api put-public-access-block --bucket NAME --public-access-block-configuration {PAB_CLI}. "
            "Serve public content through CloudFront with origin access control instead."
        ),
        rule=bucket_public,
        related=(ACCOUNT_PAB,),
        needs=ACL_NEED | POLICY_NEEDS,
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
        rule=bucket_public_write_acl,
        related=(ACCOUNT_PAB,),
        needs=ACL_NEED,
    ),
    declare(
        policy_id="S3BucketPublicAccessBlockDisabled",
        resource_type=BUCKET,
        title="S3 bucket Block Public Access is not fully enabled",
        description=(
            "Neither the bucket's nor the account's Block Public Access has all four settings on "
            "(CIS 2.1.4 accepts either level)."
        ),
        severity=50,
        remediation=(
            "S3 console → bucket → Permissions → Block public access → Edit → enable all four settings, or "
            f"aws s3api put-public-access-block --bucket NAME --public-access-block-configuration {PAB_CLI}."
        ),
        rule=bucket_pab_disabled,
        compliance=("CIS AWS Foundations v3.0 2.1.4",),
        related=(ACCOUNT_PAB,),
    ),
    declare(
        policy_id="S3AccountPublicAccessBlockDisabled",
        resource_type=ACCOUNT_PAB,
        title="S3 account-level Block Public Access is not fully enabled",
        description=(
            "One or more of the account's four Block Public Access settings is off or not configured, so "
            "nothing at the account level stops a bucket from being made public by its ACL or policy. "
            "Stricter than CIS 2.1.4, which a bucket's own block also satisfies "
            "(S3BucketPublicAccessBlockDisabled)."
        ),
        severity=70,
        remediation=(
            "S3 console → Block Public Access settings for this account → Edit → enable all four, or "
            "aws s3control put-public-access-block --account-id ACCOUNT "
            f"--public-access-block-configuration {PAB_CLI}."
        ),
        rule=pab_disabled,
        compliance=("AWS FSBP v1.0.0 S3.1",),
        needs=PAB_NEED,
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
        rule=encryption_disabled,
        needs={"Encryption": "GetBucketEncryption"},
    ),
    declare(
        policy_id="S3BucketVersioningDisabled",
        resource_type=BUCKET,
        title="S3 bucket versioning is not enabled",
        description="Versioning is disabled or suspended: overwritten or deleted objects are lost.",
        severity=35,
        remediation="aws s3api put-bucket-versioning --bucket NAME --versioning-configuration Status=Enabled",
        rule=versioning_disabled,
        needs={"Versioning": "GetBucketVersioning"},
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
        rule=mfa_delete_disabled,
        needs={"Versioning": "GetBucketVersioning"},
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
        rule=secure_transport_not_enforced,
        needs={"Policy": "GetBucketPolicy"},
        compliance=("CIS AWS Foundations v3.0 2.1.1", "AWS FSBP v1.0.0 S3.5"),
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
        rule=logging_disabled,
        compliance=("AWS FSBP v1.0.0 S3.9",),
        needs={"Logging": "GetBucketLogging"},
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
        rule=acls_enabled,
        needs={"ObjectOwnership": "GetBucketOwnershipControls"},
    ),
)
