"""When a scan must evaluate a policy on every resource of a partition, not only the changed ones."""

from __future__ import annotations

import pytest

from qrie_lib.policies.registry import get_policy
from qrie_lib.scan import must_reevaluate, reads
from qrie_lib.stores.partitions import PartitionStamp
from qrie_lib.stores.policies import LaunchedPolicy

OWN = "111111111111_s3"
RUN = "2026-11-30T04:00:00.000Z"


def launched(policy_id: str, updated_at: str = "2026-11-01T00:00:00.000Z") -> LaunchedPolicy:
    return LaunchedPolicy(policy_id=policy_id, launched_at=updated_at, updated_at=updated_at)


def decide(policy_id: str, stamp: PartitionStamp, updated_at: str = "2026-11-01T00:00:00.000Z") -> bool:
    policy = get_policy(policy_id)
    partition = dict.fromkeys(reads([policy]), stamp.account_service)
    return must_reevaluate(launched(policy_id, updated_at), policy, {OWN: stamp}, OWN, partition, RUN)


def test_never_evaluated_here_or_changed_since_is_a_full_evaluation():
    assert decide("S3BucketVersioningDisabled", PartitionStamp(OWN))
    stamp = PartitionStamp(OWN, {"S3BucketVersioningDisabled": "2026-11-29T04:00:00.000Z"})
    assert not decide("S3BucketVersioningDisabled", stamp)
    assert decide("S3BucketVersioningDisabled", stamp, updated_at="2026-11-29T05:00:00.000Z")


def test_a_change_of_a_type_the_policy_reads_beside_is_a_full_evaluation():
    read = get_policy("S3BucketPublic").related[0]  # the account's public access block
    evaluated = {"S3BucketPublic": "2026-11-29T04:00:00.000Z"}
    assert not decide("S3BucketPublic", PartitionStamp(OWN, evaluated, {read: "2026-11-29T03:00:00.000Z"}))
    assert decide("S3BucketPublic", PartitionStamp(OWN, evaluated, {read: "2026-11-29T09:00:00.000Z"}))


@pytest.mark.parametrize(
    ("evaluated_at", "full"), [("2026-11-30T01:00:00.000Z", False), ("2026-11-29T04:00:00.000Z", True)]
)
def test_ageing_verdicts_are_evaluated_again_by_each_daily_scan(evaluated_at, full):
    assert get_policy("IAMAccessKeyNotRotated").ages
    stamp = PartitionStamp("111111111111_iam", {"IAMAccessKeyNotRotated": evaluated_at})
    policy = get_policy("IAMAccessKeyNotRotated")
    decision = must_reevaluate(
        launched("IAMAccessKeyNotRotated"),
        policy,
        {stamp.account_service: stamp},
        stamp.account_service,
        {},
        RUN,
    )
    assert decision is full
