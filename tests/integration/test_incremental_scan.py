"""Incremental scans end to end on the local runtime: what a scan reads and writes (counted on the
DynamoDB client every handler shares), the change marks inventory and events leave, policies
launched or changed since, ``{"full": true}``, and the finding counters against a recount."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from orchestration import cloudtrail, events_queue
from orchestration.simulated_org import account_id
from qrie_lib import lifecycle
from qrie_lib.policies.base import band
from qrie_lib.stores import Stores
from qrie_lib.stores.findings import FindingState, ResolvedReason
from qrie_lib.views import findings_rows
from tests.integration.conftest import Harness, inventoried_org

pytestmark = pytest.mark.slow
A1 = account_id(1)
BUCKET = "sim01-public-assets"
ARN = f"arn:aws:s3:::{BUCKET}"
VERSIONING = "S3BucketVersioningDisabled"
S3_POLICIES = ["S3BucketPublic", VERSIONING, "S3BucketEncryptionDisabled"]


@pytest.fixture(scope="module")
def h() -> Iterator[Harness]:
    with inventoried_org(1) as harness:
        lifecycle.launch(Stores.of(harness.aws), S3_POLICIES)
        scan(harness, {})
        yield harness


class Meter:
    """Items written to the findings table and resource items read, through the shared client."""

    def __init__(self, h: Harness) -> None:
        self.settings = h.aws.settings
        self.finding_writes = 0
        self.resources_read = 0
        self.calls: Counter[tuple[str, str]] = Counter()  # (operation, table): what a failure shows
        self.settings_read = 0  # of them, single account-level settings a policy reads (GetItem)
        self._table = ""

    def request(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self._table = params.get("TableName", "")
        self.calls[model.name, self._table] += 1
        writes = ("PutItem", "UpdateItem", "DeleteItem")
        if self._table == self.settings.findings_table and model.name in writes:
            self.finding_writes += 1
        for operation in params.get("TransactItems", []):  # a finding's write with its history entry
            self.finding_writes += next(iter(operation.values()))["TableName"] == self.settings.findings_table

    def response(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        table = self.settings.resources_table
        if model.name in ("Query", "Scan") and self._table == table:
            self.resources_read += parsed.get("ScannedCount", 0)
        elif model.name == "GetItem" and self._table == table:
            self.resources_read += "Item" in parsed
            self.settings_read += "Item" in parsed
        elif model.name == "BatchGetItem":
            self.resources_read += len(parsed.get("Responses", {}).get(table, []))


@contextmanager
def metered(h: Harness) -> Iterator[Meter]:
    meter, client = Meter(h), h.aws.client("dynamodb")
    client.meta.events.register("before-parameter-build.dynamodb", meter.request)
    client.meta.events.register("after-call.dynamodb", meter.response)
    try:
        yield meter
    finally:
        client.meta.events.unregister("before-parameter-build.dynamodb", meter.request)
        client.meta.events.unregister("after-call.dynamodb", meter.response)


def scan(h: Harness, request: dict[str, Any]) -> dict[str, Any]:
    outcome, summary = h.run("scan", request)
    assert outcome.status == "SUCCEEDED", outcome.cause
    assert summary is not None
    return summary


def evaluated(summary: dict[str, Any]) -> dict[str, int]:
    return {pid: totals["evaluated"] for pid, totals in summary["by_policy"].items() if totals["evaluated"]}


def finding(h: Harness, policy_id: str) -> Any:
    return Stores.of(h.aws).findings.get_many([(ARN, policy_id)])[(ARN, policy_id)]


def buckets(h: Harness) -> int:
    return sum(1 for a in h.resource_arns(A1) if a.startswith("arn:aws:s3:::"))


def versioning(h: Harness, status: str) -> None:
    h.org.session(A1).client("s3").put_bucket_versioning(
        Bucket=BUCKET, VersioningConfiguration={"Status": status}
    )


def test_an_unchanged_rescan_writes_no_finding_and_reads_no_resource(h):
    with metered(h) as meter:
        summary = scan(h, {})
    assert (meter.finding_writes, meter.resources_read) == (0, 0)
    assert evaluated(summary) == {}
    assert summary["findings"]["new"] == summary["findings"]["resolved"] == 0


def test_an_unchanged_inventory_leaves_nothing_to_evaluate(h):
    outcome, _ = h.run("inventory", {"service": "s3", "account_id": A1})
    assert outcome.status == "SUCCEEDED"
    with metered(h) as meter:
        summary = scan(h, {})
    assert (meter.finding_writes, meter.resources_read, evaluated(summary)) == (0, 0, {})


def test_a_change_inventoried_is_evaluated_alone_then_no_longer(h):
    assert finding(h, VERSIONING).state is FindingState.ACTIVE
    versioning(h, "Enabled")
    h.run("inventory", {"service": "s3", "account_id": A1})
    with metered(h) as meter:
        summary = scan(h, {})
    assert meter.resources_read - meter.settings_read == 1  # the changed bucket (and its account's block)
    assert evaluated(summary) == dict.fromkeys(S3_POLICIES, 1)
    fixed = finding(h, VERSIONING)
    assert (fixed.state, fixed.resolved_reason) == (FindingState.RESOLVED, ResolvedReason.COMPLIANT)
    with metered(h) as meter:
        scan(h, {})
    assert (meter.finding_writes, meter.resources_read) == (0, 0)  # its change mark was cleared


def test_a_change_an_event_reports_is_evaluated_at_once_and_by_the_next_scan(h):
    versioning(h, "Suspended")
    events_queue.send_events(h.aws, [cloudtrail.s3_call("PutBucketVersioning", A1, BUCKET)])
    report = events_queue.drain(h.aws)
    assert report.count("failed") == 0
    reopened = finding(h, VERSIONING)
    assert (reopened.state, reopened.reopen_count) == (FindingState.ACTIVE, 1)
    with metered(h) as meter:
        summary = scan(h, {})
    assert meter.resources_read - meter.settings_read == 1
    assert evaluated(summary) == dict.fromkeys(S3_POLICIES, 1)
    assert meter.finding_writes == 0  # the event already moved the finding


def test_a_policy_launched_since_is_evaluated_on_every_unchanged_resource(h):
    lifecycle.launch(Stores.of(h.aws), ["S3BucketLoggingDisabled"])
    with metered(h) as meter:
        summary = scan(h, {})
    assert evaluated(summary) == {"S3BucketLoggingDisabled": buckets(h)}
    assert meter.finding_writes == summary["by_policy"]["S3BucketLoggingDisabled"]["new"] > 0, meter.calls


def test_a_policy_changed_since_is_evaluated_again_and_only_it(h):
    lifecycle.update(Stores.of(h.aws), VERSIONING, severity=12)
    summary = scan(h, {})
    assert evaluated(summary) == {VERSIONING: buckets(h)}
    assert finding(h, VERSIONING).severity == 12
    lifecycle.update(Stores.of(h.aws), VERSIONING, clear_severity=True)
    scan(h, {"policy_id": VERSIONING})


def test_a_full_scan_evaluates_everything_and_writes_only_what_changed(h):
    with metered(h) as meter:
        summary = scan(h, {"full": True})
    launched = [p.policy_id for p in Stores.of(h.aws).policies.active() if p.policy_id.startswith("S3")]
    assert evaluated(summary) == {p: buckets(h) for p in launched}
    assert meter.finding_writes == 0


@pytest.mark.parametrize("request_", [{"full": "yes"}, {"full": 1}, {"full": None}])
def test_a_bad_full_flag_fails_the_first_state(h, request_):
    outcome, summary = h.run("scan", request_)
    assert (outcome.status, outcome.error, summary) == ("FAILED", "InvalidInput", None)
    assert "full" in json.loads(outcome.cause)["errorMessage"]


def test_rows_say_when_a_finding_was_last_confirmed(h):
    scan(h, {"full": True})
    rows = findings_rows(Stores.of(h.aws), policy_id="S3BucketPublic")
    assert rows
    for row in rows:
        assert row["last_confirmed"] > row["last_evaluated"]  # the later scan confirmed it unwritten


# ---- counters -----------------------------------------------------------------------------


def recount(h: Harness) -> tuple[dict[str, Counter[str]], Counter[str]]:
    by_policy: dict[str, Counter[str]] = {}
    by_account: Counter[str] = Counter()
    for item in h.table_items("findings_table"):
        cell = f"{item['State']['S']}|{band(int(item['Severity']['N']))}"
        by_policy.setdefault(item["PolicyId"]["S"], Counter())[cell] += 1
        if item["AccountId"]["S"] == A1:
            by_account[cell] += 1
    return by_policy, by_account


def counted(h: Harness) -> tuple[dict[str, Counter[str]], Counter[str]]:
    stores = Stores.of(h.aws)
    by_policy = stores.counters.policies(p.policy_id for p in stores.policies.list())
    return {p: +c for p, c in by_policy.items() if +c}, +stores.counters.account(A1)


def test_counters_equal_a_recount_after_any_sequence_of_changes(h):
    stores = Stores.of(h.aws)
    s3 = h.org.session(A1).client("s3")

    def toggle_versioning() -> None:
        status = s3.get_bucket_versioning(Bucket=BUCKET).get("Status")
        versioning(h, "Suspended" if status == "Enabled" else "Enabled")
        h.run("inventory", {"service": "s3", "account_id": A1})

    def temporary_bucket() -> None:  # created, scanned, deleted: the sweep resolves its findings
        s3.create_bucket(Bucket="sim01-temporary")
        h.run("inventory", {"service": "s3", "account_id": A1})
        scan(h, {})
        s3.delete_bucket(Bucket="sim01-temporary")
        h.run("inventory", {"service": "s3", "account_id": A1})

    def suspend() -> None:
        lifecycle.suspend(stores, "S3BucketEncryptionDisabled")
        scan(h, {"policy_id": "S3BucketEncryptionDisabled"})

    def relaunch() -> None:
        lifecycle.launch(stores, ["S3BucketEncryptionDisabled"], severity=random_.choice([20, 75, None]))

    def change_severity() -> None:
        lifecycle.update(stores, VERSIONING, severity=random_.choice([5, 45, 95]))

    steps = [toggle_versioning, temporary_bucket, suspend, relaunch, change_severity]
    random_ = random.Random(10)
    for step in [*random_.sample(steps, len(steps)), *random_.choices(steps, k=3)]:
        step()
        scan(h, random_.choice([{}, {"full": True}]))
        assert counted(h) == recount(h), step.__name__
