import re

import pytest

from qrie_lib.policies.base import Policy
from qrie_lib.policies.registry import CATALOGUE
from qrie_lib.services.registry import SERVICES

REQUIRED = [
    "S3BucketPublic",
    "S3BucketPublicWriteAcl",
    "S3BucketPublicAccessBlockDisabled",
    "S3AccountPublicAccessBlockDisabled",
    "S3BucketEncryptionDisabled",
    "S3BucketVersioningDisabled",
    "S3BucketMfaDeleteDisabled",
    "S3BucketSecureTransportNotEnforced",
    "S3BucketLoggingDisabled",
    "S3BucketAclsEnabled",
    "EC2SecurityGroupOpenToWorld",
    "EC2SecurityGroupSshOpenToWorld",
    "EC2SecurityGroupRdpOpenToWorld",
    "EC2SecurityGroupHighRiskPortOpen",
    "EC2DefaultSecurityGroupNotRestricted",
    "EC2InstanceImdsV1Enabled",
    "EC2InstancePublicIp",
    "EC2EbsVolumeUnencrypted",
    "EC2EbsEncryptionByDefaultDisabled",
    "EC2EbsSnapshotPublic",
    "VPCFlowLogsDisabled",
    "IAMRootAccessKeysPresent",
    "IAMRootMfaDisabled",
    "IAMRootAccountActive",
    "IAMUserMfaDisabled",
    "IAMUserCredentialsUnused",
    "IAMAccessKeyNotRotated",
    "IAMAccessKeyUnused",
    "IAMUserMultipleActiveAccessKeys",
    "IAMUserDirectPolicyAttached",
    "IAMPolicyOverlyPermissive",
    "IAMInlinePolicyOverlyPermissive",
    "IAMUserInlinePolicyOverlyPermissive",
    "IAMGroupInlinePolicyOverlyPermissive",
    "IAMPasswordPolicyWeak",
    "IAMRoleTrustAllowsAnyPrincipal",
    "IAMRoleCrossAccountTrustWithoutExternalId",
    "IAMSupportRoleMissing",
]


def test_the_catalogue_has_every_required_policy() -> None:
    assert set(REQUIRED) <= set(CATALOGUE)


REFERENCE = r"CIS AWS Foundations v3\.0 \d+(\.\d+)+|AWS FSBP v1\.0\.0 [A-Za-z0-9]+\.\d+"


@pytest.mark.parametrize("policy", CATALOGUE.values(), ids=list(CATALOGUE))
def test_declaration(policy: Policy) -> None:
    # PascalCase after the service's name, e.g. EC2EbsVolumeUnencrypted, AccessAnalyzerDisabled
    assert re.fullmatch(r"[A-Z][A-Z0-9]*[a-z0-9]*([A-Z][a-z0-9]+)+", policy.policy_id)
    assert all(text.strip() for text in (policy.title, policy.description, policy.remediation))
    assert 0 <= policy.severity <= 100
    assert policy.resource_type in SERVICES[policy.service].resource_types
    collected = {t for svc in SERVICES.values() for t in svc.resource_types}
    assert set(policy.related) | set(policy.related_all) <= collected
    assert all(re.fullmatch(REFERENCE, ref) for ref in policy.compliance)
