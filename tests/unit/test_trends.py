"""Trends on a crafted history (moto DynamoDB): transitions go through the findings store as the
evaluator writes them, on chosen days; the figures are worked out by hand."""

from __future__ import annotations

from datetime import date

import pytest

from orchestration.provision import create_tables
from qrie_lib import history, lifecycle
from qrie_lib.aws import Aws
from qrie_lib.stores import Stores
from qrie_lib.stores.counters import Tally
from qrie_lib.stores.dynamo import Write, to_item
from qrie_lib.stores.history import OPENED, RESOLVED, Transition, rollup

TODAY = date(2026, 3, 10)
P1, P2 = "S3BucketPublic", "S3BucketVersioningDisabled"  # severities 90 (critical) and 30 (low)
ACCT = "111111111111"


@pytest.fixture
def stores(aws: Aws) -> Stores:
    create_tables(aws)
    s = Stores.of(aws)
    lifecycle.launch(s, [P1, P2], severity=None)
    return s


def move(
    s: Stores, n: int, policy: str, severity: int, kind: str, at: str, opened_at: str | None = None
) -> None:
    """One transition of finding n, with its (minimal) finding write, counters and rollups."""
    arn = f"arn:aws:s3:::bucket-{n}"
    opened = kind == OPENED
    was = None if opened else Tally(arn, policy, ACCT, "ACTIVE", severity)
    now = Tally(arn, policy, ACCT, "ACTIVE" if opened else "RESOLVED", severity)
    write = Write(
        "Put",
        {
            "TableName": s.findings.table,
            "Item": to_item({"ARN": arn, "PolicyId": policy, "Mark": f"{kind}{at}"}),
        },
    )
    state = now.state
    version = 1 if opened else 2
    t = Transition(arn, policy, ACCT, version, kind, at, "run:test", state, severity, opened_at=opened_at)
    assert s.findings.write(write, was, now, t)


def test_opened_resolved_open_and_time_to_resolve(stores):
    # Day 8: three critical openings (P1) and one low (P2). Day 9: two critical resolve, after 2 h
    # and 30 h. Day 10: the low one resolves after 200 h.
    for n in (1, 2, 3):
        move(stores, n, P1, 90, OPENED, "2026-03-08T10:00:00.000Z")
    move(stores, 4, P2, 30, OPENED, "2026-03-01T20:00:00.000Z")
    move(stores, 1, P1, 90, RESOLVED, "2026-03-09T12:00:00.000Z", "2026-03-09T10:00:00.000Z")
    move(stores, 2, P1, 90, RESOLVED, "2026-03-09T16:00:00.000Z", "2026-03-08T10:00:00.000Z")
    move(stores, 4, P2, 30, RESOLVED, "2026-03-10T04:00:00.000Z", "2026-03-01T20:00:00.000Z")

    report = history.trends(stores, days=3, by="severity", today=TODAY)
    assert report["days"] == ["2026-03-08", "2026-03-09", "2026-03-10"]
    critical, low = report["series"]["critical"], report["series"]["low"]
    assert critical == {"opened": [3, 0, 0], "resolved": [0, 2, 0], "open": [3, 1, 1]}
    # the low finding opened before the window: open at the end of day 8 and 9, resolved on day 10
    assert low == {"opened": [0, 0, 0], "resolved": [0, 0, 1], "open": [1, 1, 0]}
    ttr = report["time_to_resolve"]
    assert ttr["critical"] == {"resolved": 2, "mean_hours": 16.0, "p90_hours": 48.0}  # 2 h, 30 h
    assert ttr["low"] == {"resolved": 1, "mean_hours": 200.0, "p90_hours": 336.0}

    by_policy = history.trends(stores, days=3, by="policy", today=TODAY)
    assert by_policy["series"][P1]["open"] == [3, 1, 1]
    assert by_policy["time_to_resolve"][P2]["mean_hours"] == 200.0
    by_account = history.trends(stores, days=1, by="account", today=TODAY)
    assert by_account["series"] == {ACCT: {"opened": [0], "resolved": [1], "open": [1]}}


def test_a_severity_change_moves_open_between_bands():
    t = Transition("a", P1, ACCT, 2, "severity", "2026-03-09T00:00:00.000Z", "", "ACTIVE", 95)
    was, now = Tally("a", P1, ACCT, "ACTIVE", 50), Tally("a", P1, ACCT, "ACTIVE", 95)
    rows = rollup(t, was, now)
    assert rows["2026-03-09|band/medium"]["OpenDelta"] == -1
    assert rows["2026-03-09|band/critical"]["OpenDelta"] == 1
    assert "2026-03-09|policy/" + P1 not in rows  # still one open finding of the policy
