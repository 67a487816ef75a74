"""RDS policies: DB instances (CIS 2.3.1-2.3.3), DB clusters and manual DB snapshots.

CIS 2.3.3's audit is two steps: an instance whose PubliclyAccessible flag is set is non-compliant
when a subnet of its subnet group routes 0.0.0.0/0 to an internet gateway (its own route table,
else its VPC's main one); a publicly accessible instance in private subnets passes the audit."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from qrie_lib.models import Resource
from qrie_lib.policies.base import COMPLIANT, Policy, Related, Verdict, not_evaluated, violation
from qrie_lib.services.rds import DB_CLUSTER, DB_INSTANCE, DB_SNAPSHOT


def flag_off(key: str) -> Callable[[Resource, Related], Verdict]:
    """Non-compliant unless the configuration's boolean ``key`` is true."""

    def rule(resource: Resource, _: Related) -> Verdict:
        value = resource.configuration.get(key)
        return COMPLIANT if value else violation(**{key: bool(value)})

    return rule


def publicly_accessible(db: Resource, _: Related) -> Verdict:
    config = db.configuration
    if not config.get("PubliclyAccessible"):
        return COMPLIANT
    routed = config.get("InternetRoutedSubnets")
    if routed is None:
        return not_evaluated(PubliclyAccessible=True, Missing="the subnets of the instance's subnet group")
    if not routed:
        return COMPLIANT
    return violation(PubliclyAccessible=True, InternetRoutedSubnets=routed, VpcId=config.get("VpcId"))


def snapshot_public(snapshot: Resource, _: Related) -> Verdict:
    config = snapshot.configuration
    return violation(RestorableBy=config.get("RestorableBy")) if config.get("Public") else COMPLIANT


declare = partial(Policy, service="rds")

POLICIES: tuple[Policy, ...] = (
    declare(
        policy_id="RDSInstanceStorageUnencrypted",
        resource_type=DB_INSTANCE,
        title="RDS DB instance storage is not encrypted",
        description=(
            "The DB instance's StorageEncrypted is false: its storage, automated backups, read replicas "
            "and snapshots are unencrypted."
        ),
        severity=60,
        remediation=(
            "Encryption is set at creation: aws rds create-db-snapshot, then aws rds copy-db-snapshot "
            "--kms-key-id KEY, restore the encrypted copy (aws rds restore-db-instance-from-db-snapshot) "
            "and move the application to it."
        ),
        rule=flag_off("StorageEncrypted"),
        compliance=("CIS AWS Foundations v3.0 2.3.1", "AWS FSBP v1.0.0 RDS.3"),
    ),
    declare(
        policy_id="RDSInstanceAutoMinorVersionUpgradeDisabled",
        resource_type=DB_INSTANCE,
        title="RDS DB instance does not upgrade minor engine versions automatically",
        description="The DB instance's AutoMinorVersionUpgrade is false: engine security patches wait.",
        severity=30,
        remediation=(
            "aws rds modify-db-instance --db-instance-identifier DB --auto-minor-version-upgrade "
            "--apply-immediately"
        ),
        rule=flag_off("AutoMinorVersionUpgrade"),
        compliance=("CIS AWS Foundations v3.0 2.3.2", "AWS FSBP v1.0.0 RDS.13"),
    ),
    declare(
        policy_id="RDSInstancePubliclyAccessible",
        resource_type=DB_INSTANCE,
        title="RDS DB instance is publicly accessible from a public subnet",
        description=(
            "The DB instance is PubliclyAccessible and a subnet of its subnet group routes 0.0.0.0/0 to "
            "an internet gateway (the subnet's route table, else the VPC's main one)."
        ),
        severity=85,
        remediation=(
            "aws rds modify-db-instance --db-instance-identifier DB --no-publicly-accessible "
            "--apply-immediately; keep databases in subnets without a route to an internet gateway."
        ),
        rule=publicly_accessible,
        compliance=("CIS AWS Foundations v3.0 2.3.3",),
        needs={"InternetRoutedSubnets": "DescribeRouteTables"},
    ),
    declare(
        policy_id="RDSClusterStorageUnencrypted",
        resource_type=DB_CLUSTER,
        title="RDS DB cluster storage is not encrypted",
        description=(
            "The DB cluster's StorageEncrypted is false (Aurora and Multi-AZ DB clusters). Not CIS: "
            "CIS 2.3.1 audits DB instances (RDSInstanceStorageUnencrypted), which include clusters' members."
        ),
        severity=60,
        remediation=(
            "Snapshot the cluster (aws rds create-db-cluster-snapshot), copy it with --kms-key-id KEY, "
            "restore the copy (aws rds restore-db-cluster-from-snapshot) and move the application to it."
        ),
        rule=flag_off("StorageEncrypted"),
        compliance=("AWS FSBP v1.0.0 RDS.27",),
    ),
    declare(
        policy_id="RDSSnapshotPublic",
        resource_type=DB_SNAPSHOT,
        title="RDS DB snapshot is public",
        description="Any AWS account can restore the manual DB snapshot (its restore attribute holds all).",
        severity=90,
        remediation=(
            "aws rds modify-db-snapshot-attribute --db-snapshot-identifier SNAP --attribute-name restore "
            "--values-to-remove all"
        ),
        rule=snapshot_public,
        needs={"Public": "DescribeDBSnapshotAttributes"},
    ),
)
