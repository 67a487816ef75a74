"""The write-ahead log of operator changes (``orchestration/durable.py``) on moto in process: what
is written comes back after a restart, a torn last line is dropped, snapshots start a new log,
and a cancelled transaction logs nothing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from orchestration.durable import DurableState, Scope
from orchestration.provision import create_bucket, create_queues, create_tables
from qrie_lib.aws import Aws
from qrie_lib.settings import Settings
from qrie_lib.stores.dynamo import to_item

SETTINGS = Settings()
RUNS = SETTINGS.runs_table


@contextmanager
def operator(directory: Path, snapshot_every: int = 1000) -> Iterator[tuple[Aws, DurableState]]:
    """A fresh emulation with the state directory restored into it (a restart)."""
    with mock_aws():
        aws = Aws(SETTINGS)
        create_tables(aws)
        create_bucket(aws)
        create_queues(aws)
        durable = DurableState(directory, Scope.of(SETTINGS, "123456789012"), snapshot_every=snapshot_every)
        durable.restore()
        durable.install()
        try:
            yield aws, durable
        finally:
            durable.changes.uninstall()
            durable.log.close()


def row(n: int, **extra: str) -> dict:
    return to_item({"RunId": "r", "Item": str(n), **extra})


def run_rows(aws: Aws) -> dict[str, dict]:
    return {i["Item"]["S"]: i for i in aws.client("dynamodb").scan(TableName=RUNS)["Items"]}


def queued(aws: Aws) -> list[str]:
    sqs = aws.client("sqs")
    url = sqs.get_queue_url(QueueName=SETTINGS.events_queue)["QueueUrl"]
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
    return sorted(m["Body"] for m in messages.get("Messages", []))


def test_what_was_written_is_there_after_a_restart(tmp_path):
    with operator(tmp_path, snapshot_every=5) as (aws, _):
        ddb = aws.client("dynamodb")
        for n in range(12):  # two snapshots on the way
            ddb.put_item(TableName=RUNS, Item=row(n))
        ddb.update_item(
            TableName=RUNS,
            Key=row(1),
            UpdateExpression="SET #s = :s",
            ExpressionAttributeNames={"#s": "Status"},
            ExpressionAttributeValues={":s": {"S": "FAILED"}},
        )
        ddb.delete_item(TableName=RUNS, Key=row(2))
        aws.client("s3").put_object(Bucket=SETTINGS.items_bucket, Key="runs/x/items.json", Body=b"[1]")
        sqs = aws.client("sqs")
        url = sqs.get_queue_url(QueueName=SETTINGS.events_queue)["QueueUrl"]
        for body in ("first", "second"):
            sqs.send_message(QueueUrl=url, MessageBody=body)
        handle = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)["Messages"][0]["ReceiptHandle"]
        sqs.delete_message(QueueUrl=url, ReceiptHandle=handle)
        before = run_rows(aws), queued(aws)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snapshot.jsonl", "wal.3.jsonl"]

    with operator(tmp_path) as (aws, _):
        assert (run_rows(aws), queued(aws)) == before
        assert len(before[0]) == 11
        assert before[0]["1"]["Status"] == {"S": "FAILED"}
        assert len(before[1]) == 1  # the deleted message stays deleted
        body = aws.client("s3").get_object(Bucket=SETTINGS.items_bucket, Key="runs/x/items.json")["Body"]
        assert body.read() == b"[1]"


def test_a_torn_last_line_was_never_acknowledged_and_is_dropped(tmp_path):
    with operator(tmp_path) as (aws, durable):
        aws.client("dynamodb").put_item(TableName=RUNS, Item=row(1))
        wal = durable.log.wal_path(durable.log.generation)
    with wal.open("ab") as log:
        log.write(b'{"ddb":"qrie_runs","key":{"RunId":{"S":"r"},"It')  # killed mid-write
    with operator(tmp_path) as (aws, _):
        assert set(run_rows(aws)) == {"1"}
        aws.client("dynamodb").put_item(TableName=RUNS, Item=row(2))  # appended after the cut
    with operator(tmp_path) as (aws, _):
        assert set(run_rows(aws)) == {"1", "2"}


def test_a_cancelled_transaction_logs_nothing(tmp_path):
    with operator(tmp_path) as (aws, durable):
        ddb = aws.client("dynamodb")
        ddb.put_item(TableName=RUNS, Item=row(1))
        with pytest.raises(ClientError, match="TransactionCanceled"):
            ddb.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": RUNS, "Item": row(2)}},
                    {
                        "Put": {
                            "TableName": RUNS,
                            "Item": row(1),
                            "ConditionExpression": "attribute_not_exists(RunId)",
                        }
                    },
                ]
            )
        ddb.transact_write_items(TransactItems=[{"Put": {"TableName": RUNS, "Item": row(3)}}])
        assert durable.log.records == 2
    with operator(tmp_path) as (aws, _):
        assert set(run_rows(aws)) == {"1", "3"}
