"""The operator state kept in SQLite (``orchestration/durable.py``, ``state_store``) on moto in
process: what is written comes back after a restart, a transaction is kept whole or not at all, a
damaged file refuses the start and changes nothing, an old write-ahead log is migrated strictly,
and the directory is private."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from orchestration.durable import DurableState, Scope
from orchestration.provision import create_bucket, create_queues, create_tables
from orchestration.state_dir import StateInUse
from orchestration.state_store import FILE, CorruptState
from qrie_lib.aws import Aws
from qrie_lib.settings import Settings
from qrie_lib.stores.dynamo import to_item

SETTINGS = Settings()
RUNS = SETTINGS.runs_table
SCOPE = Scope.of(SETTINGS, "123456789012")


@contextmanager
def operator(directory: Path, said: list[str] | None = None) -> Iterator[tuple[Aws, DurableState]]:
    """A fresh emulation with the state directory restored into it (a restart)."""
    with mock_aws():
        aws = Aws(SETTINGS)
        create_tables(aws)
        create_bucket(aws)
        create_queues(aws)
        durable = DurableState(directory, SCOPE, say=(said if said is not None else []).append)
        durable.restore()
        durable.install()
        try:
            yield aws, durable
        finally:
            durable.changes.uninstall()
            durable.close()


def restore_only(directory: Path) -> None:
    with mock_aws():
        aws = Aws(SETTINGS)
        create_tables(aws)
        create_bucket(aws)
        create_queues(aws)
        DurableState(directory, SCOPE, say=lambda _: None).restore()


def row(n: int, **extra: str) -> dict:
    return to_item({"RunId": "r", "Item": str(n), **extra})


def run_rows(aws: Aws) -> dict[str, dict]:
    return {i["Item"]["S"]: i for i in aws.client("dynamodb").scan(TableName=RUNS)["Items"]}


def queued(aws: Aws) -> list[str]:
    sqs = aws.client("sqs")
    url = sqs.get_queue_url(QueueName=SETTINGS.events_queue)["QueueUrl"]
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
    return sorted(m["Body"] for m in messages.get("Messages", []))


def checksums(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


def test_what_was_written_is_there_after_a_restart(tmp_path):
    with operator(tmp_path) as (aws, _):
        ddb = aws.client("dynamodb")
        for n in range(12):
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
    assert sorted(p.name for p in tmp_path.iterdir()) == [FILE]  # the WAL checkpointed at close

    with operator(tmp_path) as (aws, _):
        assert (run_rows(aws), queued(aws)) == before
        assert len(before[0]) == 11
        assert before[0]["1"]["Status"] == {"S": "FAILED"}
        assert len(before[1]) == 1  # the deleted message stays deleted
        body = aws.client("s3").get_object(Bucket=SETTINGS.items_bucket, Key="runs/x/items.json")["Body"]
        assert body.read() == b"[1]"


def test_a_transaction_is_kept_whole_and_a_cancelled_one_not_at_all(tmp_path):
    with operator(tmp_path) as (aws, durable):
        kept: list[list[dict]] = []
        keep = durable.changes.keep
        durable.changes.keep = lambda records: (kept.append(records), keep(records))  # type: ignore
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
        ddb.transact_write_items(TransactItems=[{"Put": {"TableName": RUNS, "Item": row(n)}} for n in (3, 4)])
        assert [len(records) for records in kept] == [1, 2]  # one commit for the two puts
    with operator(tmp_path) as (aws, _):
        assert set(run_rows(aws)) == {"1", "3", "4"}


def test_a_row_that_is_not_json_refuses_the_start_and_changes_nothing(tmp_path):
    with operator(tmp_path) as (aws, _):
        for n in range(3):
            aws.client("dynamodb").put_item(TableName=RUNS, Item=row(n))
    db = sqlite3.connect(tmp_path / FILE)
    db.execute("UPDATE ddb_items SET item = substr(item, 1, 20) WHERE key LIKE '%\"1\"%'")
    db.commit()
    db.close()
    before = checksums(tmp_path)
    with pytest.raises(CorruptState) as refused:
        restore_only(tmp_path)
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"{tmp_path / FILE}: row ")
    assert "is not JSON" in message
    assert "--ephemeral" in message
    assert checksums(tmp_path) == before


def test_a_damaged_page_refuses_the_start_and_changes_nothing(tmp_path):
    with operator(tmp_path) as (aws, _):
        for n in range(400):  # several pages
            aws.client("dynamodb").put_item(TableName=RUNS, Item=row(n, Status="SUCCEEDED"))
    path = tmp_path / FILE
    size = path.stat().st_size
    with path.open("r+b") as file:
        file.seek(size // 2 // 4096 * 4096)  # the header of a page in the middle of the file
        file.write(b"\xff" * 10)
    before = checksums(tmp_path)
    with pytest.raises(CorruptState, match=f"^{path}: SQLite"):
        restore_only(tmp_path)
    assert checksums(tmp_path) == before


def killed(tmp_path: Path, rows: int) -> Path:
    """A copy of the state directory as ``kill -9`` leaves it after ``rows`` writes: the WAL not
    checkpointed."""
    with operator(tmp_path / "live") as (aws, _):
        for n in range(rows):
            aws.client("dynamodb").put_item(TableName=RUNS, Item=row(n, Status="x" * 2000))
        (tmp_path / "killed").mkdir()
        for path in (tmp_path / "live").iterdir():
            (tmp_path / "killed" / path.name).write_bytes(path.read_bytes())
    return tmp_path / "killed"


FRAME = 24 + 4096  # a WAL frame: its header and a page


def test_a_damaged_frame_in_the_middle_of_the_wal_refuses_the_start_and_changes_nothing(tmp_path):
    state = killed(tmp_path, 100)
    wal = state / f"{FILE}-wal"
    with wal.open("r+b") as file:  # SQLite alone would read up to the commit before it, and say ok
        file.seek(32 + FRAME * 19 + 100)
        file.write(b"\xff" * 10)
    before = checksums(state)
    with pytest.raises(
        CorruptState,
        match=rf"^{wal}: damaged after frame 1\d: SQLite would drop the transactions committed after it;",
    ):
        restore_only(state)
    assert checksums(state) == before


def test_a_transaction_torn_at_the_end_of_the_wal_was_never_acknowledged_and_is_dropped(tmp_path):
    state = killed(tmp_path, 100)
    wal = state / f"{FILE}-wal"
    wal.write_bytes(wal.read_bytes()[: -FRAME // 2])  # killed while writing the last commit frame
    with operator(state) as (aws, _):
        assert set(run_rows(aws)) == {str(n) for n in range(99)}


def test_the_directory_and_its_files_are_private_whatever_the_umask(tmp_path):
    fresh, loose = tmp_path / "fresh", tmp_path / "loose"
    loose.mkdir(mode=0o755)
    (loose / "schedules.json").write_text("{}")
    os.chmod(loose, 0o755)
    os.chmod(loose / "schedules.json", 0o644)
    umask = os.umask(0o022)
    try:
        said: list[str] = []
        with operator(fresh, said) as (aws, _):
            aws.client("dynamodb").put_item(TableName=RUNS, Item=row(1))
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in fresh.iterdir()}
            assert modes == {FILE: 0o600, f"{FILE}-wal": 0o600}
        assert stat.S_IMODE(fresh.stat().st_mode) == 0o700
        assert said == []
        with operator(loose, said):
            pass
    finally:
        os.umask(umask)
    assert stat.S_IMODE(loose.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in loose.iterdir()} == {0o600}
    assert said == [
        f"{loose}: permissions tightened (it holds every account's ExternalId): the directory to 0700 "
        "(was 0755), 1 file(s) to 0600"
    ]


def test_a_state_file_half_made_by_a_kill_at_the_first_start_is_made_again(tmp_path):
    (tmp_path / f"{FILE}.new").write_bytes(b"SQLite format 3\x00")  # killed while it was created
    with operator(tmp_path) as (aws, _):
        aws.client("dynamodb").put_item(TableName=RUNS, Item=row(1))
    assert sorted(p.name for p in tmp_path.iterdir()) == [FILE]
    with operator(tmp_path) as (aws, _):
        assert set(run_rows(aws)) == {"1"}


def test_one_process_at_a_time(tmp_path):
    with operator(tmp_path), pytest.raises(StateInUse, match="in use by another qrie local up"):
        DurableState(tmp_path, SCOPE, say=lambda _: None).restore()


# ---- a state directory of the write-ahead log era ------------------------------------------------


def old_record(n: int) -> bytes:
    key = {"RunId": {"S": "r"}, "Item": {"S": str(n)}}
    return json.dumps({"ddb": RUNS, "key": key, "item": key}).encode() + b"\n"


def old_state(directory: Path, snapshot: list[int], log: list[int], torn: bytes = b"") -> None:
    directory.mkdir(exist_ok=True)
    header = json.dumps({"generation": 2}).encode() + b"\n"
    (directory / "snapshot.jsonl").write_bytes(header + b"".join(old_record(n) for n in snapshot))
    (directory / "wal.1.jsonl").write_bytes(old_record(99))  # an older generation: in the snapshot
    (directory / "wal.2.jsonl").write_bytes(b"".join(old_record(n) for n in log) + torn)


def test_an_old_write_ahead_log_is_migrated_once_its_torn_last_line_dropped(tmp_path):
    old_state(tmp_path / "s", snapshot=[1, 2], log=[3, 4], torn=b'{"ddb":"qrie_runs","key":{"Ru')
    said: list[str] = []
    with operator(tmp_path / "s", said) as (aws, _):
        assert set(run_rows(aws)) == {"1", "2", "3", "4"}
    assert said[0] == f"{tmp_path / 's'}: the old write-ahead log (4 records) moved into {FILE}"
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == [FILE]


@pytest.mark.parametrize(
    ("damage", "named"),
    [
        ("a bad line in the middle of the log", "wal.2.jsonl: line 2 is damaged"),
        ("a truncated snapshot", "snapshot.jsonl: line 3 is damaged"),
    ],
)
def test_an_old_state_damaged_anywhere_but_its_last_log_line_refuses_the_start(tmp_path, damage, named):
    old_state(tmp_path, snapshot=[1, 2], log=[3, 4, 5])
    if damage == "a truncated snapshot":
        snapshot = tmp_path / "snapshot.jsonl"
        snapshot.write_bytes(snapshot.read_bytes()[:-10])
    else:
        wal = tmp_path / "wal.2.jsonl"
        wal.write_bytes(wal.read_bytes().replace(b'"4"}', b"##########", 1))
    before = checksums(tmp_path), stat.S_IMODE(tmp_path.stat().st_mode)
    with pytest.raises(CorruptState) as refused:
        restore_only(tmp_path)
    assert str(refused.value).startswith(f"{tmp_path}/{named};")
    assert (checksums(tmp_path), stat.S_IMODE(tmp_path.stat().st_mode)) == before
