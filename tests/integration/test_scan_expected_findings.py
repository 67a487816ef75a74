"""The scan state machine on the simulated organisation finds exactly what the seed planted.

Expectations are written from ``orchestration/simulated_org.py``: odd accounts are the careless
ones (public bucket with public write, public bucket policy, no account public access block,
world-open security group, weak password policy, careless root, a role anyone can assume); even
accounts keep the account public access block, restrict their bucket policy to the organisation,
have a strong password policy, a support role and a cared-for root."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from orchestration.simulated_org import account_id
from qrie_lib import lifecycle
from qrie_lib.policies.monitoring import POLICIES as MONITORING
from qrie_lib.policies.registry import CATALOGUE
from qrie_lib.services.registry import SERVICES
from qrie_lib.stores import Stores
from qrie_lib.stores.findings import FindingState
from qrie_lib.views import findings_rows
from tests.integration.conftest import SETTINGS, Harness, inventoried_org
from tests.integration.test_simulated_org_coverage import collect, related_of

pytestmark = pytest.mark.slow

# Every S3 bucket but the model one lacks all of these (MFA Delete: moto cannot record it).
BUCKET_BASICS = {
    "S3BucketPublicAccessBlockDisabled",
    "S3BucketEncryptionDisabled",
    "S3BucketVersioningDisabled",
    "S3BucketMfaDeleteDisabled",
    "S3BucketSecureTransportNotEnforced",
    "S3BucketLoggingDisabled",
    "S3BucketAclsEnabled",
}
CIS_5_2, CIS_5_3 = "EC2SecurityGroupAdminPortOpenToIpv4", "EC2SecurityGroupAdminPortOpenToIpv6"
ALWAYS_OPEN_GROUPS = {
    "ssh-open": {"EC2SecurityGroupSshOpenToWorld", CIS_5_2},
    "rdp-open": {"EC2SecurityGroupRdpOpenToWorld", CIS_5_3},  # from ::/0
    "db-range-open": {
        "EC2SecurityGroupHighRiskPortOpen",
        "EC2SecurityGroupRdpOpenToWorld",
        CIS_5_2,
    },  # 3000-3400
    "web": set(),
    "ssh-internal": set(),
    "default": {"EC2DefaultSecurityGroupNotRestricted"},
}

# All traffic from anywhere exposes every port: each port policy trips too.
WIDE_OPEN = {
    "EC2SecurityGroupOpenToWorld",
    "EC2SecurityGroupSshOpenToWorld",
    "EC2SecurityGroupRdpOpenToWorld",
    "EC2SecurityGroupHighRiskPortOpen",
    CIS_5_2,
}

TRAIL_CARELESS = {
    "CloudTrailLogFileValidationDisabled",
    "CloudTrailNotEncryptedWithKms",
    "CloudTrailBucketAccessLoggingDisabled",
}
COVERAGE_CARELESS = {
    "CloudTrailNotEnabledInAllRegions",
    "CloudTrailS3WriteDataEventsDisabled",
    "CloudTrailS3ReadDataEventsDisabled",
} | {p.policy_id for p in MONITORING}


def expected(n: int) -> dict[str, set[str]]:
    """Policy ids expected ACTIVE per labelled resource of account n (see ``label``)."""
    odd = n % 2 == 1
    p = f"sim{n:02d}"
    # CIS 2.1.4: even accounts' account-level block covers every bucket
    basics = BUCKET_BASICS - ({"S3BucketPublicAccessBlockDisabled"} if not odd else set())
    found: dict[str, set[str]] = {
        f"bucket:{p}-logs": set(basics),
        f"bucket:{p}-public-assets": basics
        | ({"S3BucketPublic", "S3BucketPublicWriteAcl"} if odd else set()),
        f"bucket:{p}-shared": basics | ({"S3BucketPublic"} if odd else set()),
        f"bucket:{p}-secure": {"S3BucketMfaDeleteDisabled"},
        "s3-account-pab": {"S3AccountPublicAccessBlockDisabled"} if odd else set(),
        "user:alice": {
            "IAMUserMfaDisabled",
            "IAMAccessKeyNotRotated",
            "IAMAccessKeyUnused",
            "IAMUserCredentialsUnused",
        },
        "user:bob": set(),
        "user:ci-bot": {  # its second key, created today, is not yet "never used"
            "IAMUserMultipleActiveAccessKeys",
            "IAMUserDirectPolicyAttached",
            "IAMUserInlinePolicyOverlyPermissive",
        },
        "group:admins": {"IAMGroupInlinePolicyOverlyPermissive"},
        "group:auditors": set(),
        "policy:too-broad": {"IAMPolicyOverlyPermissive"},  # attached to the admins group
        "policy:AdministratorAccess": {"IAMPolicyOverlyPermissive"},  # AWS managed, attached to ci-bot
        "policy:read-logs": set(),
        "role:QrieReadOnly": set(),
        "role:partner-audit": {"IAMRoleCrossAccountTrustWithoutExternalId"},
        "role:deployer": {"IAMInlinePolicyOverlyPermissive"},
        "password-policy": {
            "IAMPasswordPolicyShortMinimumLength",
            "IAMPasswordPolicyReuseAllowed",
            "IAMPasswordPolicyWeak",
        }
        if odd
        else set(),
        "root": {
            "IAMRootAccessKeysPresent",
            "IAMRootAccessKeyNotRotated",  # its key is 700 days old
            "IAMRootMfaDisabled",
            "IAMRootAccountActive",
            "IAMSupportRoleMissing",
            "IAMRootHardwareMfaDisabled",  # no MFA at all
            "IAMCloudShellFullAccessAttached",  # to the deployer role
        }
        if odd
        else set(),
    }
    found |= storage_and_network(n)
    found |= (
        {"role:anyone": {"IAMRoleTrustAllowsAnyPrincipal"}}
        if odd
        else {"role:support": set(), "policy:AWSSupportAccess": set()}  # attached to the support role
    )
    # Logging (orchestration/seed_logging.py): odd accounts' trail is single-region, not logging,
    # unvalidated, unencrypted, its bucket unlogged; Config records in neither region.
    found[f"bucket:{p}-trail"] = basics - (set() if odd else {"S3BucketLoggingDisabled"})
    found["trail:org-audit"] = TRAIL_CARELESS if odd else set()
    found["coverage"] = COVERAGE_CARELESS if odd else set()  # the account's, once: not per region
    for region, home in (("us-east-1", True), ("eu-west-1", False)):
        found[f"config@{region}"] = {"ConfigNotEnabledInRegion"} if odd else set()
        groups = ALWAYS_OPEN_GROUPS | ({"wide-open": WIDE_OPEN} if odd else {})
        found |= {f"sg:{name}@{region}": policies for name, policies in groups.items()}
        found[f"instance:legacy-web@{region}"] = {
            "EC2InstanceImdsV1Enabled",
            "EC2InstancePublicIp",
            "EC2InstanceNoIamRole",
        }
        found[f"instance:app@{region}"] = set()
        found[f"ebs-default@{region}"] = {"EC2EbsEncryptionByDefaultDisabled"} if odd and home else set()
    return found


def storage_and_network(n: int) -> dict[str, set[str]]:
    """orchestration/seed_storage.py: odd accounts' database is public in a subnet routed to an
    internet gateway, unencrypted and not auto-upgraded, their cluster unencrypted, snapshot public,
    file system unencrypted, load balancer without FSBP's attributes, Security Hub off, an expired
    certificate, AWSCloudShellFullAccess on the deployer role. Every account's restricted network
    ACL passes CIS 5.1 (the default ones fail it, as in AWS) and its app instances have a role;
    Access Analyzer is not emulated: not evaluated."""
    odd = n % 2 == 1
    found: dict[str, set[str]] = {
        "db:orders-db": {
            "RDSInstanceStorageUnencrypted",
            "RDSInstanceAutoMinorVersionUpgradeDisabled",
            "RDSInstancePubliclyAccessible",
        }
        if odd
        else set(),
        "cluster:analytics": {"RDSClusterStorageUnencrypted"} if odd else set(),
        "db-snapshot:orders-nightly": {"RDSSnapshotPublic"} if odd else set(),
        "efs:shared-files": {"EFSFileSystemUnencrypted"} if odd else set(),
        "lb:web-alb": {
            "ELBv2AlbInvalidHeadersNotDropped",
            "ELBv2DeletionProtectionDisabled",
            "ELBv2AlbDesyncMitigationWeak",
        }
        if odd
        else set(),
        "certificate:www": set(),
        "role:app-instance": set(),
    }
    if odd:
        found["certificate:legacy-site"] = {"IAMServerCertificateExpired"}
        found["policy:AWSCloudShellFullAccess"] = set()  # attached: inventoried, not admin
    for region in ("us-east-1", "eu-west-1"):
        found[f"hub@{region}"] = {"SecurityHubDisabled"} if odd else set()
        found[f"analyzers@{region}"] = set()
        found[f"acl:web@{region}"] = set()
    return found


def label(resource) -> str | None:
    """A stable name for the resources the seed names (ids of EC2 volumes etc. are random)."""
    c, t = resource.configuration, resource.resource_type
    return {
        "AWS::S3::Bucket": lambda: f"bucket:{c['Name']}",
        "AWS::S3::AccountPublicAccessBlock": lambda: "s3-account-pab",
        "AWS::IAM::User": lambda: f"user:{c['UserName']}",
        "AWS::IAM::Group": lambda: f"group:{c['GroupName']}",
        "AWS::IAM::ManagedPolicy": lambda: f"policy:{c['PolicyName']}",
        "AWS::IAM::Role": lambda: f"role:{c['RoleName']}",
        "AWS::IAM::PasswordPolicy": lambda: "password-policy",
        "AWS::IAM::RootAccount": lambda: "root",
        "AWS::EC2::SecurityGroup": lambda: f"sg:{c['GroupName']}@{resource.region}",
        "AWS::EC2::Instance": lambda: f"instance:{resource.tags.get('Name')}@{resource.region}",
        "AWS::EC2::EbsEncryptionByDefault": lambda: f"ebs-default@{resource.region}",
        "AWS::EC2::NetworkAcl": lambda: (
            f"acl:{resource.tags['Name']}@{resource.region}" if resource.tags.get("Name") else None
        ),
        "AWS::RDS::DBInstance": lambda: f"db:{c['DBInstanceIdentifier']}",
        "AWS::RDS::DBCluster": lambda: f"cluster:{c['DBClusterIdentifier']}",
        "AWS::RDS::DBSnapshot": lambda: f"db-snapshot:{c['DBSnapshotIdentifier']}",
        "AWS::EFS::FileSystem": lambda: f"efs:{resource.tags.get('Name')}",
        "AWS::ElasticLoadBalancingV2::LoadBalancer": lambda: f"lb:{c['LoadBalancerName']}",
        "AWS::SecurityHub::Hub": lambda: f"hub@{resource.region}",
        "AWS::AccessAnalyzer::Analyzers": lambda: f"analyzers@{resource.region}",
        "AWS::IAM::ServerCertificate": lambda: f"certificate:{c['ServerCertificateName']}",
        "AWS::CloudTrail::Trail": lambda: f"trail:{c['Name']}",
        "AWS::CloudTrail::AccountCoverage": lambda: "coverage",
        "AWS::Config::RegionRecording": lambda: f"config@{resource.region}",
    }.get(t, lambda: None)()


@pytest.fixture(scope="module")
def org_scanned() -> Iterator[Harness]:
    with inventoried_org(2, SETTINGS.model_copy(update={"page_size": 20})) as harness:
        lifecycle.launch(Stores.of(harness.aws), sorted(CATALOGUE))
        outcome, _ = harness.run("scan", {})
        assert outcome.status == "SUCCEEDED", outcome.cause
        yield harness


def active_pairs(h: Harness) -> set[tuple[str, str]]:
    return {(r["arn"], r["policy_id"]) for r in findings_rows(Stores.of(h.aws), state=FindingState.ACTIVE)}


@pytest.mark.parametrize("n", [1, 2])
def test_named_resources_have_exactly_the_planted_findings(org_scanned, n):
    stored = []
    for service in sorted(SERVICES):  # resources of services without labels are not looked at
        stored += Stores.of(org_scanned.aws).resources.page(account_id(n), service, None, 1000).resources
    found: dict[str, set[str]] = {}
    active = active_pairs(org_scanned)
    for resource in stored:
        name = label(resource)
        if name is not None:
            found[name] = {policy for arn, policy in active if arn == resource.arn}
    assert found == expected(n)


def test_scan_equals_a_direct_evaluation_of_the_same_accounts(org_scanned):
    """Every ACTIVE finding, and only those, that evaluating the catalogue directly yields."""
    direct = set()
    for account in org_scanned.org.account_ids:
        resources = collect(org_scanned.aws, account)
        for policy in CATALOGUE.values():
            for r in (r for r in resources if r.resource_type == policy.resource_type):
                if policy.evaluate(r, related_of(policy, r, resources)).compliant is False:
                    direct.add((r.arn, policy.policy_id))
    assert active_pairs(org_scanned) == direct
