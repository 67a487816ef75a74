"""What the latest scan evaluated per account and policy (moto's DynamoDB): a completed item's
policies are recorded (with zero counts when the account has no resources of their type), a failed
item records nothing, and a later partial scan overwrites only the policies it covered."""

from __future__ import annotations

import pytest

from orchestration.provision import create_tables
from qrie_lib.stores import Stores
from qrie_lib.stores.coverage import Coverage, CoverageStore

A1, A2 = "111111111111", "222222222222"
T1, T2 = "2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"


@pytest.fixture
def coverage(aws) -> CoverageStore:
    create_tables(aws)
    runs = Stores.of(aws).runs
    return CoverageStore(runs.client, runs.table)


def test_completed_items_are_recorded_failed_ones_not(coverage):
    items = [
        {"account_id": A1, "Status": "SUCCEEDED", "policy_ids": ["P1", "P2"], "Count:P1|evaluated": 3,
         "Count:P1|not_evaluated": 1, "Count:P1|new": 2},
        {"account_id": A1, "Status": "SUCCEEDED", "policy_ids": ["P3"]},
        {"account_id": A2, "Status": "FAILED", "policy_ids": ["P1"], "Count:P1|evaluated": 1},
        {"account_id": A2, "Status": "RUNNING", "policy_ids": ["P2"]},
    ]  # fmt: skip
    assert coverage.record("scan/1", items, T1) == 1
    assert coverage.get() == {
        A1: {
            "P1": Coverage(3, 1, T1, "scan/1"),
            "P2": Coverage(0, 0, T1, "scan/1"),
            "P3": Coverage(0, 0, T1, "scan/1"),
        }
    }


def test_a_partial_scan_overwrites_only_what_it_covered(coverage):
    coverage.record("scan/1", [{"account_id": A1, "Status": "SUCCEEDED", "policy_ids": ["P1", "P2"]}], T1)
    coverage.record(
        "scan/2",
        [{"account_id": A1, "Status": "SUCCEEDED", "policy_ids": ["P2"], "Count:P2|evaluated": 5}],
        T2,
    )
    assert coverage.get(A1) == {A1: {"P1": Coverage(0, 0, T1, "scan/1"), "P2": Coverage(5, 0, T2, "scan/2")}}
    assert coverage.get(A2) == {}
