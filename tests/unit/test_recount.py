"""``qrie counters recount``: counters rebuilt from the findings, only the rows that drifted are
rewritten, and the drift is reported; from the CLI against the tables too."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from typer.testing import CliRunner

from orchestration.cli import app as cli
from orchestration.provision import create_tables
from qrie_lib import recount
from qrie_lib.stores import Stores
from qrie_lib.stores.counters import Tally
from qrie_lib.stores.dynamo import to_item
from qrie_lib.stores.findings import Finding, FindingState, finding_item

A1, A2 = "111111111111", "222222222222"


def put(stores: Stores, n: int, account: str, state: FindingState, severity: int) -> Tally:
    finding = Finding(
        arn=f"arn:aws:s3:::bucket-{n}", policy_id="S3BucketPublic", account_service=f"{account}_s3",
        account_id=account, service="s3", region="us-east-1", resource_type="AWS::S3::Bucket",
        state=state, severity=severity, first_seen="2026-01-01T00:00:00.000Z",
        last_evaluated="2026-01-01T00:00:00.000Z", describe_time="2026-01-01T00:00:00.000Z",
    )  # fmt: skip
    stores.findings.client.put_item(TableName=stores.findings.table, Item=to_item(finding_item(finding)))
    return Tally(finding.subject, finding.policy_id, account, state.value, severity)


@pytest.fixture
def stores(aws) -> Stores:
    create_tables(aws)
    return Stores.of(aws)


def rows_of(tallies: list[Tally]) -> dict[str, Counter[str]]:
    rows: dict[str, Counter[str]] = {}
    for tally in tallies:
        for row in tally.rows:
            rows.setdefault(row, Counter())[tally.cell] += 1
    return rows


def test_drifted_rows_are_rebuilt_and_reported(stores):
    states = (FindingState.RESOLVED, FindingState.ACTIVE, FindingState.ACTIVE, FindingState.SUPPRESSED)
    tallies = [put(stores, n, A1 if n % 3 else A2, states[n % 4], 60 + n) for n in range(20)]
    gone = Tally("arn:aws:s3:::gone", "S3BucketPublic", "333333333333", "ACTIVE", 95)  # counted, no finding
    stored = [*tallies[:-1], gone]  # the last finding's ADDs were lost (its task died after the write)
    for tally in stored:
        stores.counters.move(None, tally)

    report = recount.recount(stores)

    expected = rows_of(tallies)
    assert {row: +cells for row, cells in stores.counters.rows().items() if +cells} == expected
    assert report.findings == 20
    was = rows_of(stored)
    drift = {row: expected.get(row, Counter()) for row in expected.keys() | was.keys()}
    for row, cells in was.items():
        drift[row].subtract(cells)
    nonzero = {row: {c: n for c, n in sorted(cells.items()) if n} for row, cells in drift.items()}
    assert report.drift == {row: cells for row, cells in nonzero.items() if cells}
    assert "account/333333333333" in report.drift
    assert report.rewritten == len(report.drift)
    assert recount.recount(stores).rewritten == 0  # nothing drifted any more: nothing written


def test_the_cli_recounts(stores, aws, monkeypatch):
    monkeypatch.setattr("orchestration.cli_counters.target", lambda _: aws)
    put(stores, 1, A1, FindingState.ACTIVE, 95)
    result = CliRunner().invoke(cli, ["counters", "recount", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["rewritten"] == 2  # its policy shard row and its account row
