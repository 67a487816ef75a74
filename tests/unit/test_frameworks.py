"""The frameworks as data: CIS AWS Foundations v3.0.0 lists its 62 recommendations as the benchmark
does, every policy's compliance reference names a listed control, and every automated control
has a policy, but for the known gaps below."""

from __future__ import annotations

from collections import Counter

import pytest

from qrie_lib.errors import UnknownFramework
from qrie_lib.frameworks.registry import FRAMEWORKS, Assessment, get_framework
from qrie_lib.policies.registry import CATALOGUE

CIS = get_framework("cis-aws-3.0")

# Automated controls no policy implements yet, with why. Shrink it as policies land: the test
# fails both on a new gap and on a gap that is now covered.
KNOWN_GAPS: dict[str, str] = {}  # control id -> why no policy implements it yet


def test_cis_lists_the_62_recommendations_by_section():
    assert len(CIS.controls) == 62
    assert len({c.id for c in CIS.controls}) == 62
    assert Counter(c.top_section for c in CIS.controls) == {"1": 22, "2": 9, "3": 9, "4": 16, "5": 6}
    assert Counter(c.assessment for c in CIS.controls) == {Assessment.AUTOMATED: 36, Assessment.MANUAL: 26}


@pytest.mark.parametrize(
    ("control_id", "assessment", "profile"),
    [
        ("1.11", Assessment.MANUAL, "Level 1"),  # prowler says Automated; the benchmark's title: Manual
        ("1.18", Assessment.AUTOMATED, "Level 2"),  # Manual in earlier versions of the benchmark
        ("2.4.1", Assessment.AUTOMATED, "Level 1"),  # steampipe says manual; the benchmark: Automated
        ("1.6", Assessment.MANUAL, "Level 2"),
        ("4.3", Assessment.MANUAL, "Level 1"),
        ("4.16", Assessment.AUTOMATED, "Level 2"),
    ],
)
def test_disputed_and_sample_flags_are_the_benchmarks(control_id, assessment, profile):
    control = next(c for c in CIS.controls if c.id == control_id)
    assert (control.assessment, control.profile) == (assessment, profile)


def test_every_compliance_reference_names_a_listed_control():
    unknown = [
        (policy.policy_id, ref)
        for policy in CATALOGUE.values()
        for ref in policy.compliance
        if not any(
            (c := f.control_of(ref)) is not None and c in f.policies_by_control for f in FRAMEWORKS.values()
        )
    ]
    assert unknown == []


def test_control_to_policies_is_derived_from_the_policies():
    assert "IAMRootAccessKeysPresent" in CIS.policies_by_control["1.4"]
    for control_id, policy_ids in CIS.policies_by_control.items():
        for policy_id in policy_ids:
            assert f"CIS AWS Foundations v3.0 {control_id}" in CATALOGUE[policy_id].compliance


def test_automated_controls_without_a_policy_are_the_known_gaps():
    uncovered = {c.id for c in CIS.controls if c.automated and not CIS.policies_by_control[c.id]}
    assert uncovered - KNOWN_GAPS.keys() == set(), (
        "automated controls with no policy: add one, or a known gap"
    )
    assert KNOWN_GAPS.keys() - uncovered == set(), "now covered: remove them from KNOWN_GAPS"


def test_unknown_framework_is_a_named_error():
    with pytest.raises(UnknownFramework, match=r"cis-aws-3\.0"):
        get_framework("cis-aws-9")


# ---- AWS Foundational Security Best Practices ------------------------------------------------

FSBP = get_framework("aws-fsbp")
# The controls Qrie's policies implement exactly (the control's rule and default parameters as
# Security Hub documents them). A change here is deliberate: the test fails on any other mapping.
FSBP_EXACT = {
    "CloudTrail.1": "CloudTrailNotEnabledInAllRegions",
    "CloudTrail.2": "CloudTrailNotEncryptedWithKms",
    "CloudTrail.4": "CloudTrailLogFileValidationDisabled",
    "EC2.1": "EC2EbsSnapshotPublic",
    "EC2.2": "EC2DefaultSecurityGroupNotRestricted",
    "EC2.7": "EC2EbsEncryptionByDefaultDisabled",
    "EC2.9": "EC2InstancePublicIp",
    "EC2.13": "EC2SecurityGroupSshOpenToWorld",
    "EC2.14": "EC2SecurityGroupRdpOpenToWorld",
    "EFS.1": "EFSFileSystemUnencrypted",
    "ELB.4": "ELBv2AlbInvalidHeadersNotDropped",
    "ELB.6": "ELBv2DeletionProtectionDisabled",
    "ELB.12": "ELBv2AlbDesyncMitigationWeak",
    "IAM.2": "IAMUserDirectPolicyAttached",
    "IAM.3": "IAMAccessKeyNotRotated",
    "IAM.4": "IAMRootAccessKeysPresent",
    "IAM.5": "IAMUserMfaDisabled",
    "IAM.6": "IAMRootHardwareMfaDisabled",
    "KMS.3": "KmsKeyPendingDeletion",
    "RDS.3": "RDSInstanceStorageUnencrypted",
    "RDS.13": "RDSInstanceAutoMinorVersionUpgradeDisabled",
    "RDS.27": "RDSClusterStorageUnencrypted",
    "S3.1": "S3AccountPublicAccessBlockDisabled",
    "S3.5": "S3BucketSecureTransportNotEnforced",
    "S3.9": "S3BucketLoggingDisabled",
}
# A control's section (Security Hub's service prefix) → the Qrie services whose policies may implement it.
QRIE_SERVICES = {
    "CloudTrail": {"cloudtrail"},
    "Config": {"config"},
    "EC2": {"ec2"},
    "EFS": {"efs"},
    "ELB": {"elbv2"},
    "IAM": {"iam"},
    "KMS": {"kms"},
    "RDS": {"rds"},
    "S3": {"s3"},
}


def test_fsbp_lists_its_controls_with_security_hub_ids_severities_and_services():
    assert len(FSBP.controls) == 271
    assert len(FSBP.sections) == 50
    for control in FSBP.controls:
        service, number = control.id.split(".")
        assert (control.section, control.top_section) == (service, service)
        assert number.isdigit(), control.id
        assert control.severity is not None
        assert control.profile is None
        assert control.automated  # Security Hub runs every FSBP control
    severity = {c.id: c.severity for c in FSBP.controls}
    assert (severity["EC2.19"], severity["S3.1"], severity["CloudTrail.4"]) == ("CRITICAL", "MEDIUM", "LOW")
    assert "EC2.22" not in severity  # retired by AWS


def test_fsbp_mapped_policies_are_exactly_the_known_ones_and_of_the_controls_service():
    mapped = {c: p for c, p in FSBP.policies_by_control.items() if p}
    assert mapped == {c: (p,) for c, p in FSBP_EXACT.items()}
    for control_id, (policy_id,) in mapped.items():
        assert CATALOGUE[policy_id].service in QRIE_SERVICES[control_id.split(".")[0]], control_id


def test_a_policy_implements_one_fsbp_control_at_most():
    # ASFF's Compliance.SecurityControlId holds one control.
    assert all(len(FSBP.cited_by(p)) <= 1 for p in CATALOGUE.values())


def test_a_close_but_different_policy_is_a_note_not_a_mapping():
    noted = {c.id: c.note for c in FSBP.controls if c.note and c.note.startswith("Not mapped")}
    assert {"EC2.19", "IAM.1", "Config.1", "RDS.2", "S3.8"} <= noted.keys()
    for control_id, note in noted.items():
        assert FSBP.policies_by_control[control_id] == (), control_id
        assert any(policy_id in note for policy_id in CATALOGUE), control_id  # names the near policy
