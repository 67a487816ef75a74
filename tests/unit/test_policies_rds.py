"""RDS policies on failing and passing configurations (CIS 2.3.1-2.3.3 and the non-CIS ones)."""

from __future__ import annotations

from typing import Any

import pytest

from qrie_lib.models import Resource
from qrie_lib.policies.registry import get_policy
from qrie_lib.services.rds import DB_CLUSTER, DB_INSTANCE, DB_SNAPSHOT
from qrie_lib.timeutil import now_iso


def resource(resource_type: str, **config: Any) -> Resource:
    return Resource(
        arn="arn:aws:rds:us-east-1:111111111111:db:x",
        account_id="111111111111",
        service="rds",
        region="us-east-1",
        resource_type=resource_type,
        configuration=config,
        describe_time=now_iso(),
    )


def instance(**config: Any) -> Resource:
    base = {"StorageEncrypted": True, "AutoMinorVersionUpgrade": True, "PubliclyAccessible": False}
    return resource(DB_INSTANCE, **(base | {"InternetRoutedSubnets": []} | config))


DENIED = [{"call": "DescribeRouteTables", "code": "UnauthorizedOperation"}]

CASES = [
    ("RDSInstanceStorageUnencrypted", instance(StorageEncrypted=False), False),
    ("RDSInstanceStorageUnencrypted", instance(), True),
    ("RDSInstanceAutoMinorVersionUpgradeDisabled", instance(AutoMinorVersionUpgrade=False), False),
    ("RDSInstanceAutoMinorVersionUpgradeDisabled", instance(), True),
    (
        "RDSInstancePubliclyAccessible",
        instance(PubliclyAccessible=True, InternetRoutedSubnets=["subnet-1"]),
        False,
    ),
    # the flag alone, in subnets without a route to an internet gateway, passes CIS 2.3.3's audit
    ("RDSInstancePubliclyAccessible", instance(PubliclyAccessible=True, InternetRoutedSubnets=[]), True),
    ("RDSInstancePubliclyAccessible", instance(InternetRoutedSubnets=["subnet-1"]), True),
    ("RDSInstancePubliclyAccessible", instance(PubliclyAccessible=True, InternetRoutedSubnets=None), None),
    (
        "RDSInstancePubliclyAccessible",
        instance(PubliclyAccessible=True, InternetRoutedSubnets=None, CollectErrors=DENIED),
        None,
    ),
    ("RDSClusterStorageUnencrypted", resource(DB_CLUSTER, StorageEncrypted=False), False),
    ("RDSClusterStorageUnencrypted", resource(DB_CLUSTER, StorageEncrypted=True), True),
    ("RDSSnapshotPublic", resource(DB_SNAPSHOT, Public=True, RestorableBy=["all"]), False),
    ("RDSSnapshotPublic", resource(DB_SNAPSHOT, Public=False, RestorableBy=["222222222222"]), True),
    (
        "RDSSnapshotPublic",
        resource(
            DB_SNAPSHOT,
            Public=None,
            CollectErrors=[{"call": "DescribeDBSnapshotAttributes", "code": "AccessDenied"}],
        ),
        None,
    ),
]


@pytest.mark.parametrize(("policy_id", "target", "compliant"), CASES)
def test_policy(policy_id: str, target: Resource, compliant: bool | None) -> None:
    assert get_policy(policy_id).evaluate(target, {}).compliant is compliant


def test_cis_references() -> None:
    refs = {
        p: get_policy(p).compliance
        for p in (
            "RDSInstanceStorageUnencrypted",
            "RDSInstanceAutoMinorVersionUpgradeDisabled",
            "RDSInstancePubliclyAccessible",
            "RDSSnapshotPublic",
        )
    }
    assert refs == {
        "RDSInstanceStorageUnencrypted": ("CIS AWS Foundations v3.0 2.3.1", "AWS FSBP v1.0.0 RDS.3"),
        "RDSInstanceAutoMinorVersionUpgradeDisabled": (
            "CIS AWS Foundations v3.0 2.3.2",
            "AWS FSBP v1.0.0 RDS.13",
        ),
        "RDSInstancePubliclyAccessible": ("CIS AWS Foundations v3.0 2.3.3",),
        "RDSSnapshotPublic": (),
    }
