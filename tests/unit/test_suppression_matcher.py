"""A scan task's suppression matcher reads every rule once, not one query per launched policy, and
holds the same rules, in the same order (by rule id: the first live rule that matches wins)."""

from __future__ import annotations

from collections import Counter

from orchestration.provision import create_tables
from qrie_lib.policies.registry import CATALOGUE
from qrie_lib.stores import Stores
from qrie_lib.stores.suppressions import ALL, Suppression

NOW = "2026-11-30T00:00:00Z"


def rule(policy_id: str, n: int, expires_at: str = "2027-01-01T00:00:00Z") -> Suppression:
    return Suppression(
        rule_id=f"{policy_id}.r{n:02d}", policy_id=policy_id, accounts=["111111111111"],
        reason="accepted", owner="team", created_by="tester",
        created_at=f"2026-11-{30 - n:02d}T00:00:00Z", expires_at=expires_at,
    )  # fmt: skip


def test_one_read_for_many_policies_and_the_same_rules(aws):
    create_tables(aws)
    rules = [rule("S3BucketPublic", 2), rule("S3BucketPublic", 1), rule(ALL, 3),
             rule("IAMRootMfaDisabled", 4, expires_at="2026-11-01T00:00:00Z")]  # fmt: skip
    for r in rules:
        Stores.of(aws).suppressions.put(r)
    calls: Counter[str] = Counter()
    store = Stores.of(aws).suppressions
    store.client.meta.events.register("before-call.dynamodb", lambda model, **_: calls.update([model.name]))
    many = store.matcher(sorted(CATALOGUE), NOW)
    assert calls == Counter({"Scan": 1})
    few = Stores.of(aws).suppressions.matcher(["S3BucketPublic"], NOW)  # a query per policy
    assert [r.rule_id for r in many.rules["S3BucketPublic"]] == ["S3BucketPublic.r01", "S3BucketPublic.r02"]
    assert many.rules == few.rules  # S3BucketPublic's and ALL's: IAMRootMfaDisabled's only rule expired
