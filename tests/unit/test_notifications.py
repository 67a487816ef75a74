"""Notifications on moto's SNS (delivered to an SQS queue subscribed as provisioning does): one
digest per scan run, one message per event-opened finding even when the batch is replayed, the
severity threshold, and only ACTIVE findings."""

from __future__ import annotations

import json
from typing import Any

import pytest

from orchestration.provision import NOTIFICATIONS_TAIL_QUEUE, create_notifications, create_tables
from qrie_lib import lifecycle
from qrie_lib.aws import Aws
from qrie_lib.evaluation import NEW, REOPENED
from qrie_lib.exports.report import after_events
from qrie_lib.notifications import Notifier
from qrie_lib.settings import Settings
from qrie_lib.stores import Stores
from qrie_lib.stores.dynamo import to_item
from qrie_lib.stores.findings import Finding, FindingState, ResolvedReason, finding_item
from tests.conftest import CUSTOMER

POLICY = "S3BucketPublic"
ALWAYS = lambda: 10**9  # noqa: E731


@pytest.fixture
def stores(aws: Aws) -> Stores:
    create_tables(aws)
    create_notifications(aws)
    stores = Stores.of(aws)
    lifecycle.launch(stores, [POLICY])
    return stores


def put(stores: Stores, n: int, severity: int = 92, reopen_count: int = 0) -> Finding:
    finding = Finding(
        arn=f"arn:aws:s3:::bucket-{n}",
        policy_id=POLICY,
        account_service=f"{CUSTOMER}_s3",
        account_id=CUSTOMER,
        service="s3",
        region="us-east-1",
        resource_type="AWS::S3::Bucket",
        state=FindingState.ACTIVE,
        severity=severity,
        first_seen="2026-01-01T00:00:00.000Z",
        last_evaluated="2026-01-01T00:00:00.000Z",
        describe_time="2026-01-01T00:00:00.000Z",
        reopen_count=reopen_count,
    )
    stores.findings.client.put_item(TableName=stores.findings.table, Item=to_item(finding_item(finding)))
    return finding


def published(aws: Aws) -> list[dict[str, Any]]:
    sqs = aws.client("sqs")
    url = sqs.get_queue_url(QueueName=NOTIFICATIONS_TAIL_QUEUE)["QueueUrl"]
    found = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        for m in messages:
            found.append(json.loads(json.loads(m["Body"])["Message"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return found


def test_a_scan_run_publishes_one_digest_and_the_next_run_nothing(aws, stores):
    for n in range(12):
        put(stores, n, severity=70 + n)
    put(stores, 99, severity=69)  # under the default threshold (70)
    assert Notifier(aws, stores).scan_digest("run-1", ALWAYS) == {"notified": 12, "truncated": False}
    [digest] = published(aws)
    assert (digest["kind"], digest["run_id"], digest["opened"], digest["new"]) == (
        "scan_digest",
        "run-1",
        12,
        12,
    )
    assert digest["by_band"] == {"high": 12}
    assert [f["severity"] for f in digest["top"]] == list(range(81, 71, -1))
    reads: list[str] = []
    events = stores.findings.client.meta.events
    events.register("before-call.dynamodb.BatchGetItem", lambda **_: reads.append("BatchGetItem"))
    assert Notifier(aws, stores).scan_digest("run-2", ALWAYS) == {"notified": 0}
    assert published(aws) == []
    assert reads == []  # the index's filter leaves out the notified: none is read from the table


def test_an_event_opened_finding_notifies_once_when_the_batch_is_replayed(aws, stores):
    finding = put(stores, 1)
    changes = [(NEW, finding.arn, POLICY)]
    assert after_events(changes, ALWAYS, aws)["notified"] == 1
    assert after_events(changes, ALWAYS, aws)["notified"] == 0  # the replayed batch
    [message] = published(aws)
    assert (message["kind"], message["finding"]["arn"]) == ("finding_opened", finding.arn)
    # The scan's digest does not report it again; a reopening notifies again.
    assert Notifier(aws, stores).scan_digest("run", ALWAYS) == {"notified": 0}
    reopened = put(stores, 1, reopen_count=1)
    assert after_events([(REOPENED, reopened.arn, POLICY)], ALWAYS, aws)["notified"] == 1
    assert [m["finding"]["reopened"] for m in published(aws)] == [True]


def test_threshold_and_state_decide_who_notifies(aws, stores):
    low, resolved = put(stores, 1, severity=50), put(stores, 2)
    assert stores.findings.resolve(resolved, ResolvedReason.COMPLIANT, "2026-01-02T00:00:00.000Z")
    changes = [(NEW, low.arn, POLICY), (NEW, resolved.arn, POLICY)]
    assert after_events(changes, ALWAYS, aws)["notified"] == 0
    lowered = Aws(Settings(notify_min_severity=40, external_id=aws.settings.external_id))
    assert after_events(changes, ALWAYS, lowered)["notified"] == 1
    assert [m["finding"]["arn"] for m in published(aws)] == [low.arn]


def test_a_failed_publish_takes_its_mark_back(aws, stores, monkeypatch):
    finding = put(stores, 1)
    notifier = Notifier(aws, stores)
    monkeypatch.setattr(notifier, "topic", notifier.topic + "-missing")
    with pytest.raises(Exception, match=r"NotFound|does not exist"):
        notifier.event_openings([(finding.arn, POLICY)])
    assert Notifier(aws, stores).event_openings([(finding.arn, POLICY)]) == 1
