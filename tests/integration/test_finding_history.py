"""Finding history on the local runtime: exactly one entry per transition, with its cause, however
often an event batch is replayed or a scan item re-run on the same data; the history API route."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from orchestration import cloudtrail
from orchestration.cli_api import API, proxy_event
from orchestration.dispatch import LocalContext
from orchestration.simulated_org import account_id
from qrie_lib import lifecycle, realtime, scan
from qrie_lib.stores import Stores
from tasks import api
from tests.integration.conftest import Harness, inventoried_org

pytestmark = pytest.mark.slow
A1 = account_id(1)
BUCKET = "sim01-logs"
ARN = f"arn:aws:s3:::{BUCKET}"
POLICY = "S3BucketVersioningDisabled"
ALWAYS = lambda: 10**9  # noqa: E731


@pytest.fixture(scope="module")
def h() -> Iterator[Harness]:
    with inventoried_org(1) as harness:
        lifecycle.launch(Stores.of(harness.aws), [POLICY])
        assert harness.run("scan", {})[0].status == "SUCCEEDED"
        yield harness


def history(h: Harness) -> list[dict[str, Any]]:
    event = proxy_event("GET", "/findings/history", {"arn": [ARN], "policy": [POLICY]}, {"Host": "x"}, None)
    response = api.handler(
        event, LocalContext(API, f"arn:aws:lambda:us-east-1:123456789012:function:{API.function_name}")
    )
    assert response["statusCode"] == 200, response["body"]
    return json.loads(response["body"])["history"]


def versioning(h: Harness, status: str) -> list[tuple[str, str]]:
    """Change the bucket and return its CloudTrail event as a one-message batch."""
    h.org.session(A1).client("s3").put_bucket_versioning(
        Bucket=BUCKET, VersioningConfiguration={"Status": status}
    )
    return [("m-1", json.dumps(cloudtrail.s3_call("PutBucketVersioning", A1, BUCKET)))]


def test_the_first_scan_recorded_the_opening_with_its_run(h):
    (opened,) = history(h)
    assert (opened["version"], opened["kind"], opened["state"]) == (1, "opened", "ACTIVE")
    assert opened["cause"].startswith("run:scan/")


def test_a_replayed_event_batch_records_its_transition_once(h):
    batch = versioning(h, "Enabled")
    for _ in range(3):  # the Lambda retried, the queue redelivered
        realtime.process_batch(batch, h.aws)
    assert [(e["version"], e["kind"]) for e in history(h)] == [(1, "opened"), (2, "resolved")]
    assert history(h)[1]["cause"].startswith("event:")
    assert history(h)[1]["reason"] == "COMPLIANT"
    batch = versioning(h, "Suspended")
    for _ in range(2):
        realtime.process_batch(batch, h.aws)
    assert [e["kind"] for e in history(h)] == ["opened", "resolved", "reopened"]


def test_a_scan_item_rerun_on_the_same_data_records_nothing_more(h):
    before = history(h)  # whatever other tests of this module recorded first (any order, any worker)
    lifecycle.update(Stores.of(h.aws), POLICY, severity=95)  # a severity change: one transition
    item = {"account_id": A1, "service": "s3", "policy_ids": [POLICY], "full": True}
    event = {"run_id": "scan/retried", "started_at": "2026-01-01T00:00:00.000Z", "item": item}
    for _ in range(3):  # the same task input, as a Lambda retry would deliver it
        scan.evaluate(event, ALWAYS, h.aws)
    entries = history(h)
    assert entries[: len(before)] == before
    [change] = entries[len(before) :]
    assert (change["kind"], change["severity"], change["cause"]) == ("severity", 95, "run:scan/retried")
    assert change["previous_severity"] == before[-1]["severity"]
    assert [e["version"] for e in entries] == list(range(1, len(entries) + 1))
    finding = Stores.of(h.aws).findings.get_many([(ARN, POLICY)])[(ARN, POLICY)]
    assert finding.version == len(entries)


def test_every_finding_has_one_entry_per_version(h):
    stores = Stores.of(h.aws)
    for item in h.table_items("findings_table"):
        entries = stores.history.of_finding(item["ARN"]["S"], item["PolicyId"]["S"])
        assert [int(e["Sort"][1:]) for e in entries] == list(range(1, int(item["Version"]["N"]) + 1))
