"""``qrie migrate``: findings of AWS managed policies keyed by their bare ARN (before subjects) move
to their account's subject with their history and counters; a newer finding under the subject wins;
other findings are untouched; a second run finds nothing to do."""

from __future__ import annotations

import json

import pytest
from botocore.stub import Stubber
from typer.testing import CliRunner

from orchestration.cli import app as cli
from orchestration.provision import create_tables
from qrie_lib import lifecycle, migrations
from qrie_lib.exports.asff import asff_finding, content_digest
from qrie_lib.exports.ids import finding_uid, uid_of_key
from qrie_lib.exports.securityhub import SecurityHubExport
from qrie_lib.recount import recount
from qrie_lib.schema import policy_shard
from qrie_lib.stores import Stores
from qrie_lib.stores.counters import Tally
from qrie_lib.stores.dynamo import to_item
from qrie_lib.stores.findings import Finding, FindingState, finding_item
from qrie_lib.stores.history import finding_key, version_sort
from qrie_lib.views import finding_row, findings_page

A1, A2 = "111111111111", "222222222222"
ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
POLICY = "IAMPolicyOverlyPermissive"
T0 = "2026-01-01T00:00:00.000Z"
ALWAYS = lambda: 10**9  # noqa: E731


def finding(arn: str, account: str, service: str = "iam", version: int = 2) -> Finding:
    return Finding(
        arn=arn, policy_id=POLICY, account_service=f"{account}_{service}", account_id=account,
        service=service, region="global", resource_type="AWS::IAM::ManagedPolicy",
        state=FindingState.ACTIVE, severity=90, first_seen=T0, last_evaluated=T0, describe_time=T0,
        version=version, opened_at=T0,
    )  # fmt: skip


def put(stores: Stores, f: Finding, key: str | None = None) -> None:
    """Write ``f`` under ``key`` (the bare ARN: as the version before subjects did) with its history
    and counters."""
    key = key or f.subject
    item = finding_item(f) | {"ARN": key, "PolicyShard": policy_shard(POLICY, key)}
    stores.findings.client.put_item(TableName=stores.findings.table, Item=to_item(item))
    for version in range(1, f.version + 1):
        entry = {"Key": finding_key(key, POLICY), "Sort": version_sort(version), "AccountId": f.account_id}
        stores.history.client.put_item(TableName=stores.history.table, Item=to_item(entry))
    stores.counters.move(None, Tally(key, POLICY, f.account_id, f.state.value, f.severity))


def hub(aws) -> dict[str, dict]:
    pages = aws.client("securityhub").get_paginator("get_findings").paginate()
    return {f["Id"]: f for page in pages for f in page["Findings"]}


def versions(stores: Stores, key: str) -> list[str]:
    return [e["Sort"] for e in stores.history.of_finding(key, POLICY)]


@pytest.fixture
def stores(aws) -> Stores:
    create_tables(aws)
    return Stores.of(aws)


def test_a_legacy_finding_moves_to_its_accounts_subject_with_its_history(aws, stores):
    [launched] = lifecycle.launch(stores, [POLICY])
    stores.policies.put(launched.model_copy(update={"updated_at": T0}))  # launched before the upgrade
    put(stores, finding(ADMIN, A1, version=3), key=ADMIN)
    bucket = finding("arn:aws:s3:::logs", A1, "s3")
    put(stores, bucket)

    report = migrations.migrate(aws)

    assert report.moved == [f"{ADMIN} -> {ADMIN}@{A1}"]
    assert report.history_items == 3
    # The verdicts of the accounts that lost the overwrites come back at the next scan.
    assert report.rescan == [POLICY]
    assert stores.policies.get(POLICY).updated_at > T0
    assert stores.findings.get(ADMIN, POLICY) is None
    moved = stores.findings.get(f"{ADMIN}@{A1}", POLICY)
    assert moved is not None
    assert (moved.arn, moved.account_id, moved.version) == (ADMIN, A1, 3)
    assert versions(stores, f"{ADMIN}@{A1}") == [version_sort(v) for v in (1, 2, 3)]
    assert versions(stores, ADMIN) == []
    assert stores.findings.get(bucket.subject, POLICY) == bucket  # not an AWS-owned ARN: untouched
    assert recount(stores).rewritten == 0  # the migration's recount left the counters true
    assert migrations.migrate(aws).moved == []  # nothing left to move


def test_a_finding_written_since_the_upgrade_supersedes_the_legacy_one(aws, stores):
    put(stores, finding(ADMIN, A2, version=5), key=ADMIN)  # the item A1 and A2 overwrote in turn
    put(stores, newer := finding(ADMIN, A2, version=1))  # a scan since the upgrade

    report = migrations.migrate(aws)

    assert (report.moved, report.superseded) == ([], [ADMIN])
    assert stores.findings.get(newer.subject, POLICY) == newer
    assert versions(stores, newer.subject) == [version_sort(1)]  # not mixed with the old chain
    assert stores.findings.get(ADMIN, POLICY) is None
    assert versions(stores, ADMIN) == []


def test_the_cli_migrates(stores, aws, monkeypatch):
    monkeypatch.setattr("orchestration.cli_migrate.target", lambda _: aws)
    put(stores, finding(ADMIN, A1), key=ADMIN)
    result = CliRunner().invoke(cli, ["migrate", "--json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert answer["moved"] == [f"{ADMIN} -> {ADMIN}@{A1}"]
    moved_shard = policy_shard(POLICY, ADMIN) != policy_shard(POLICY, f"{ADMIN}@{A1}")
    assert answer["counters"]["rewritten"] == int(moved_shard)  # the account's row is unchanged


def test_a_legacy_finding_exported_to_security_hub_is_archived_under_its_old_id(aws, stores):
    aws.client("securityhub").enable_security_hub()  # (this CLI's settings need not say so)
    lifecycle.launch(stores, [POLICY])
    put(stores, legacy := finding(ADMIN, A1), key=ADMIN)
    # As the version before subjects exported it: under the id of its bare ARN, marked exported.
    old_id = uid_of_key(ADMIN, POLICY)
    export = SecurityHubExport(aws, stores)
    record = asff_finding(
        finding_row(legacy), product=export.product, operator_account=export.account, now=T0
    )
    aws.client("securityhub").batch_import_findings(Findings=[record | {"Id": old_id}])
    stores.findings.client.update_item(
        TableName=stores.findings.table,
        Key=to_item({"ARN": ADMIN, "PolicyId": POLICY}),
        UpdateExpression="SET ExportedDigest = :d",
        ExpressionAttributeValues=to_item({":d": content_digest(finding_row(legacy))}),
    )
    assert hub(aws)[old_id]["RecordState"] == "ACTIVE"

    report = migrations.migrate(aws)
    assert report.archived == 1
    assert hub(aws)[old_id]["RecordState"] == "ARCHIVED"
    again = SecurityHubExport(aws, stores).export_all(ALWAYS)  # the next export, after the next scan
    assert again.sent == 1
    new = hub(aws)[finding_uid(ADMIN, A1, POLICY)]
    assert (new["RecordState"], new["ProductFields"]["qrie/AccountId"]) == ("ACTIVE", A1)


def test_the_moves_stand_when_security_hub_refuses_the_archive(aws, stores):
    item = finding(ADMIN, A1)
    put(stores, item, key=ADMIN)
    stores.findings.client.update_item(
        TableName=stores.findings.table,
        Key=to_item({"ARN": ADMIN, "PolicyId": POLICY}),
        UpdateExpression="SET ExportedDigest = :d",
        ExpressionAttributeValues=to_item({":d": "exported-before"}),
    )
    # AWS refuses imports into an account not subscribed to Security Hub; moto accepts them, so the
    # refusal comes from botocore's Stubber (the shape AWS documents for BatchImportFindings).
    with Stubber(aws.client("securityhub")) as hub_client:
        hub_client.add_client_error(
            "batch_import_findings",
            service_error_code="InvalidAccessException",
            service_message="Account 123456789012 is not subscribed to AWS Security Hub",
            http_status_code=401,
        )
        report = migrations.migrate(aws)
    assert report.moved == [f"{ADMIN} -> {ADMIN}@{A1}"]
    assert report.archived == 0
    assert [e.split(":")[0] for e in report.archive_errors] == ["InvalidAccessException"]
    assert stores.findings.get(item.subject, POLICY) is not None


def test_findings_written_before_the_severity_order_index_are_placed_in_it(aws, stores):
    """Issue 20 item 10: the default findings view reads the severity-order index; a finding
    stored by an earlier version lacks its keys until ``qrie migrate`` gives them (once)."""
    lifecycle.launch(stores, [POLICY])
    legacy = finding("arn:aws:s3:::logs", A1, "s3")
    item = {k: v for k, v in finding_item(legacy).items() if k not in ("SeverityShard", "SeverityRank")}
    stores.findings.client.put_item(TableName=stores.findings.table, Item=to_item(item))
    assert findings_page(stores)[0] == []

    assert migrations.migrate(aws).ordered == 1
    assert [r["arn"] for r in findings_page(stores)[0]] == ["arn:aws:s3:::logs"]
    assert migrations.migrate(aws).ordered == 0
