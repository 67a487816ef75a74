"""ASFF (AWS Security Finding Format) for Security Hub's ``BatchImportFindings``.

With the default product (``product/<operator account>/default``) Security Hub accepts only
findings whose ``AwsAccountId`` is the calling account, so ``AwsAccountId`` is the operator
account; the customer account the resource lives in is in ``ProductFields`` and the resource's
own ARN. A resolved finding is ``RecordState ARCHIVED`` with ``Compliance.Status PASSED``;
severity and types go in ``FindingProviderFields`` (what a provider may update after creation)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from qrie_lib.aws import Aws
from qrie_lib.exports.ids import finding_uid
from qrie_lib.frameworks.registry import FSBP_STANDARDS_ID, cites_cis, security_control_ids
from qrie_lib.policies.base import band
from qrie_lib.policies.registry import get_policy

SCHEMA_VERSION = "2018-10-08"
CIS_TYPE = "Software and Configuration Checks/Industry and Regulatory Standards/CIS AWS Foundations Benchmark"
BEST_PRACTICE_TYPE = "Software and Configuration Checks/AWS Security Best Practices"
# Security Hub's resource types for those Qrie inventories; others are "Other".
RESOURCE_TYPES = {
    "AWS::S3::Bucket": "AwsS3Bucket",
    "AWS::EC2::Instance": "AwsEc2Instance",
    "AWS::EC2::SecurityGroup": "AwsEc2SecurityGroup",
    "AWS::EC2::Volume": "AwsEc2Volume",
    "AWS::EC2::VPC": "AwsEc2Vpc",
    "AWS::EC2::Snapshot": "AwsEc2Snapshot",
    "AWS::IAM::User": "AwsIamUser",
    "AWS::IAM::Role": "AwsIamRole",
    "AWS::IAM::ManagedPolicy": "AwsIamPolicy",
    "AWS::IAM::Group": "AwsIamGroup",
    "AWS::RDS::DBInstance": "AwsRdsDbInstance",
    "AWS::RDS::DBCluster": "AwsRdsDbCluster",
    "AWS::RDS::DBSnapshot": "AwsRdsDbSnapshot",
}


def product_arn(partition: str, region: str, account: str) -> str:
    """The operator account's default product: custom findings import into it."""
    return f"arn:{partition}:securityhub:{region}:{account}:product/{account}/default"


def default_product(aws: Aws) -> tuple[str, str]:
    """(the default product's ARN, the account) of the account ``aws`` calls AWS as."""
    identity = aws.client("sts").get_caller_identity()
    partition = identity["Arn"].split(":")[1]
    return product_arn(partition, aws.settings.region, identity["Account"]), identity["Account"]


def content_digest(row: dict[str, Any]) -> str:
    """What a Security Hub record says about the finding, as a hash: an export sends a finding
    only when this differs from the digest recorded when it was last sent."""
    fields = {k: row.get(k) for k in ("state", "severity", "evidence", "resolved_reason", "reopen_count")}
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:32]


def asff_finding(row: dict[str, Any], *, product: str, operator_account: str, now: str) -> dict[str, Any]:
    """One finding row (``qrie_lib.views.finding_row``) as an ASFF finding; ``now`` is
    ``UpdatedAt`` (Security Hub keeps the later of two updates of one id)."""
    policy = get_policy(row["policy_id"])
    label = band(row["severity"]).upper()
    resolved = row["state"] != "ACTIVE"
    severity = {"Label": label, "Original": str(row["severity"])}
    types = [CIS_TYPE if cites_cis(policy) else BEST_PRACTICE_TYPE]
    controls = security_control_ids(policy)
    partition = row["arn"].split(":")[1] if row["arn"].startswith("arn:") else "aws"
    return {
        "SchemaVersion": SCHEMA_VERSION,
        "Id": finding_uid(row["arn"], row["account_id"], row["policy_id"]),
        "ProductArn": product,
        "GeneratorId": f"qrie/{policy.policy_id}",
        "AwsAccountId": operator_account,
        "Types": types,
        "CreatedAt": row["first_seen"],
        "UpdatedAt": now,
        "FirstObservedAt": row["first_seen"],
        "LastObservedAt": row.get("last_confirmed") or row["last_evaluated"],
        "Severity": severity,
        "FindingProviderFields": {"Severity": severity, "Types": types},
        "Title": policy.title[:256],
        "Description": policy.description[:1024],
        "Remediation": {"Recommendation": {"Text": policy.remediation[:512]}},
        "ProductFields": {
            "qrie/PolicyId": policy.policy_id,
            "qrie/AccountId": row["account_id"],
            **({"qrie/AccountName": row["account_name"]} if row.get("account_name") else {}),
            "qrie/State": row["state"],
            **({"qrie/ResolvedReason": row["resolved_reason"]} if row.get("resolved_reason") else {}),
            "qrie/ReopenCount": str(row.get("reopen_count", 0)),
        },
        "Resources": [
            {
                "Type": RESOURCE_TYPES.get(row["resource_type"], "Other"),
                "Id": row["arn"],
                "Partition": partition,
                "Region": row["region"],
                "Details": {"Other": {"qrie/ResourceType": row["resource_type"]}},
            }
        ],
        "Compliance": {
            "Status": "PASSED" if resolved else "FAILED",
            **({"RelatedRequirements": list(policy.compliance)[:32]} if policy.compliance else {}),
            # The Security Hub control the policy implements (a policy implements one FSBP control at most).
            **(
                {
                    "SecurityControlId": controls[0],
                    "AssociatedStandards": [{"StandardsId": FSBP_STANDARDS_ID}],
                }
                if controls
                else {}
            ),
        },
        "RecordState": "ARCHIVED" if resolved else "ACTIVE",
    }
