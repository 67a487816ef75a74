"""Operator state that survives a restart of ``qrie local up``: the tables, the run-item bucket and
the events queues (with their DLQ), kept in a state directory.

The mechanism is a write-ahead log of *after-images*, not of requests. moto's own recorder logs
requests and replays them, but a replay is not the same history: moto makes new random ids
(executions, receipt handles, messages), replays AssumeRole, StartExecution and ReceiveMessage,
and would run the state machines again. Here moto's backends are hooked where they change an
operator item (DynamoDB put/update/delete, transactions, S3 put/delete in the items bucket, a
message added to or removed from a queue), and each change is logged as the item's state after
it (or a tombstone), appended and fsync'd before the call returns, so before the HTTP response:
an acknowledged write is on disk. Replaying after-images is idempotent and needs no AWS logic.

Every ``snapshot_every`` records the whole operator state is written as a snapshot (records of
the same form), atomically renamed into place, and the log starts a new generation: restart time
is bounded by the snapshot's size plus at most ``snapshot_every`` records.

A torn last line (the process was killed while writing it) was never acknowledged and is
dropped. What is *not* kept: Step Functions executions (an execution that was running when the
process died is gone; ``fail_interrupted_runs`` closes its run record), messages' receive counts
and visibility (a restored message is visible again), and the customer side (the simulated
organisation is seeded again at every start)."""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moto.dynamodb.models import DynamoDBBackend, dynamodb_backends
from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
from moto.dynamodb.models.table import Table
from moto.s3.models import S3Backend, s3_backends
from moto.sqs.models import Message, Queue, SQSBackend, sqs_backends

from orchestration import dynamodb_emulation
from qrie_lib import runs
from qrie_lib.aws import Aws
from qrie_lib.models import RunStatus
from qrie_lib.schema import TABLES
from qrie_lib.settings import Settings
from qrie_lib.stores import Stores
from qrie_lib.stores.runs import HEADER

SNAPSHOT = "snapshot.jsonl"
SNAPSHOT_EVERY = 50_000  # log records between snapshots: bounds replay at restart
Record = dict[str, Any]
Listener = Callable[[Record], None]


@dataclass(frozen=True)
class Scope:
    """What the operator's state is: its tables, bucket and queues in its account and region."""

    account: str
    region: str
    tables: frozenset[str]
    bucket: str
    queues: frozenset[str]

    @classmethod
    def of(cls, settings: Settings, account: str) -> Scope:
        tables = frozenset(table.name(settings) for table in TABLES.values())
        queues = frozenset({settings.events_queue, f"{settings.events_queue}_dlq"})
        return cls(account, settings.region, tables, settings.items_bucket, queues)


# ---- the hooks: every change to an operator item, as a record --------------------------------


class OperatorChanges:
    """Patches moto's backends (process-wide, like moto) to hand each change of an operator item,
    as an after-image record, to the listeners, under one lock: the order of the records is the
    order of the changes, and a listener that fsyncs does so before the caller gets its answer."""

    def __init__(self, scope: Scope, listeners: list[Listener]) -> None:
        self.scope = scope
        self.listeners = listeners
        self.lock = threading.RLock()
        self._in_transaction = threading.local()
        self._saved: list[tuple[Any, str, Any]] = []

    def emit(self, record: Record) -> None:
        for listener in self.listeners:
            listener(record)

    def install(self) -> None:
        ddb, s3, queue, sqs = DynamoDBBackend, S3Backend, Queue, SQSBackend
        self._patch(ddb, "put_item", self._ddb_write(ddb.put_item, image_is_the_item=True))
        for name in ("update_item", "delete_item"):
            self._patch(ddb, name, self._ddb_write(getattr(ddb, name)))
        self._patch(ddb, "transact_write_items", self._transaction(ddb.transact_write_items))
        self._patch(s3, "put_object", self._s3_put(s3.put_object))
        self._patch(s3, "delete_object", self._s3_delete(s3.delete_object))
        self._patch(s3, "delete_objects", self._s3_delete_many(s3.delete_objects))
        self._patch(queue, "add_message", self._queue_add(queue.add_message))
        self._patch(queue, "delete_message", self._queue_delete(queue.delete_message))
        self._patch(sqs, "purge_queue", self._queue_purge(sqs.purge_queue))

    def uninstall(self) -> None:
        while self._saved:
            owner, name, original = self._saved.pop()
            setattr(owner, name, original)

    def _patch(self, owner: Any, name: str, replacement: Any) -> None:
        self._saved.append((owner, name, getattr(owner, name)))
        setattr(owner, name, replacement)

    def _ours(self, backend: Any) -> bool:
        return backend.account_id == self.scope.account and backend.region_name == self.scope.region

    # ---- DynamoDB ------------------------------------------------------------------------------

    def _ddb_write(self, original: Any, image_is_the_item: bool = False) -> Any:
        """``image_is_the_item``: a put's after-image is the item it put (no need to read it back)."""
        changes = self

        def write(backend: DynamoDBBackend, table_name: str, *args: Any, **kwargs: Any) -> Any:
            if table_name not in changes.scope.tables or not changes._ours(backend):
                return original(backend, table_name, *args, **kwargs)
            given = args[0] if args else kwargs.get("item_attrs", kwargs.get("key"))
            with changes.lock:
                result = original(backend, table_name, *args, **kwargs)
                pending = getattr(changes._in_transaction, "keys", None)
                if pending is None and image_is_the_item:
                    key = key_of(backend, table_name, given)
                    changes.emit({"ddb": table_name, "key": key, "item": given})
                elif pending is None:
                    changes.emit(ddb_image(backend, table_name, given))
                else:
                    pending.append((table_name, given))
                return result

        return write

    def _transaction(self, original: Any) -> Any:
        """A transaction's items are logged once it committed (a cancelled one restores the tables)."""
        changes = self

        def transact(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
            if not changes._ours(backend):
                return original(backend, transact_items)
            with changes.lock:
                changes._in_transaction.keys = []
                try:
                    original(backend, transact_items)
                    for table_name, key in changes._in_transaction.keys:
                        changes.emit(ddb_image(backend, table_name, key))
                finally:
                    changes._in_transaction.keys = None

        return transact

    # ---- S3 ------------------------------------------------------------------------------------

    def _s3_put(self, original: Any) -> Any:
        changes = self

        def put_object(backend: S3Backend, bucket_name: str, key_name: str, value: bytes, *a: Any, **k: Any):
            if bucket_name != changes.scope.bucket:
                return original(backend, bucket_name, key_name, value, *a, **k)
            with changes.lock:
                key = original(backend, bucket_name, key_name, value, *a, **k)
                changes.emit({"s3": key_name, "body": base64.b64encode(key.value).decode()})
                return key

        return put_object

    def _s3_delete(self, original: Any) -> Any:
        changes = self

        def delete_object(backend: S3Backend, bucket_name: str, key_name: str, *a: Any, **k: Any):
            if bucket_name != changes.scope.bucket:
                return original(backend, bucket_name, key_name, *a, **k)
            with changes.lock:
                result = original(backend, bucket_name, key_name, *a, **k)
                changes.emit({"s3": key_name, "body": None})
                return result

        return delete_object

    def _s3_delete_many(self, original: Any) -> Any:
        changes = self

        def delete_objects(backend: S3Backend, bucket_name: str, objects: list[dict], *a: Any, **k: Any):
            if bucket_name != changes.scope.bucket:
                return original(backend, bucket_name, objects, *a, **k)
            with changes.lock:
                result = original(backend, bucket_name, objects, *a, **k)
                for obj in objects:
                    changes.emit({"s3": obj["Key"], "body": None})
                return result

        return delete_objects

    # ---- SQS: a message is kept by id; adding it to the DLQ moves it there ----------------------

    def _queue_ours(self, queue: Queue) -> bool:
        return queue.name in self.scope.queues and queue.account_id == self.scope.account

    def _queue_add(self, original: Any) -> Any:
        changes = self

        def add_message(queue: Queue, message: Message) -> None:
            if not changes._queue_ours(queue):
                original(queue, message)
                return
            with changes.lock:
                original(queue, message)
                changes.emit(
                    {
                        "sqs": queue.name,
                        "id": message.id,
                        "body": message.body,
                        "attributes": message.message_attributes,
                    }
                )

        return add_message

    def _queue_delete(self, original: Any) -> Any:
        changes = self

        def delete_message(queue: Queue, receipt_handle: str) -> None:
            if not changes._queue_ours(queue):
                original(queue, receipt_handle)
                return
            with changes.lock:
                ids = [m.id for m in queue._messages if m.had_receipt_handle(receipt_handle)]
                original(queue, receipt_handle)
                for message_id in ids:
                    changes.emit({"sqs": queue.name, "id": message_id, "body": None})

        return delete_message

    def _queue_purge(self, original: Any) -> Any:
        changes = self

        def purge_queue(backend: SQSBackend, queue_name: str) -> None:
            if queue_name not in changes.scope.queues or not changes._ours(backend):
                original(backend, queue_name)
                return
            with changes.lock:
                original(backend, queue_name)
                changes.emit({"sqs": queue_name, "purge": True})

        return purge_queue


def key_of(backend: DynamoDBBackend, table_name: str, given: dict[str, Any]) -> dict[str, Any]:
    """The key attributes of an item or a key (DynamoDB JSON)."""
    table = backend.get_table(table_name)
    names = [table.hash_key_attr, *([table.range_key_attr] if table.range_key_attr else [])]
    return {name: given[name] for name in names}


def ddb_image(backend: DynamoDBBackend, table_name: str, given: dict[str, Any]) -> Record:
    """The item as it is now (None: deleted), by its key."""
    key = key_of(backend, table_name, given)
    item = backend.get_item(table_name, key)
    return {"ddb": table_name, "key": key, "item": item.to_json()["Attributes"] if item else None}


# ---- the log and its snapshots -----------------------------------------------------------------


@dataclass
class State:
    """Operator state as the last record of each item says it is."""

    items: dict[str, dict[str, Record]] = field(default_factory=dict)  # table -> key json -> item
    objects: dict[str, str] = field(default_factory=dict)  # key -> base64 body
    messages: dict[str, Record] = field(default_factory=dict)  # message id -> record (queue, body)

    def apply(self, record: Record) -> None:
        if "ddb" in record:
            table = self.items.setdefault(record["ddb"], {})
            key = json.dumps(record["key"], sort_keys=True)
            if record["item"] is None:
                table.pop(key, None)
            else:
                table[key] = record["item"]
        elif "s3" in record:
            if record["body"] is None:
                self.objects.pop(record["s3"], None)
            else:
                self.objects[record["s3"]] = record["body"]
        elif record.get("purge"):
            self.messages = {i: m for i, m in self.messages.items() if m["sqs"] != record["sqs"]}
        elif record["body"] is None:
            self.messages.pop(record["id"], None)
        else:
            self.messages.pop(record["id"], None)  # re-added: now last in its (possibly new) queue
            self.messages[record["id"]] = record


def captured(scope: Scope) -> Iterator[Record]:
    """The operator state as it is in moto's backends, as records."""
    ddb = dynamodb_backends[scope.account][scope.region]
    for name in sorted(scope.tables):
        table = ddb.tables.get(name)
        for item in table.all_items() if table else ():
            attributes = item.to_json()["Attributes"]
            yield {"ddb": name, "key": key_of(ddb, name, attributes), "item": attributes}
    bucket = s3_backends[scope.account]["global"].buckets.get(scope.bucket)
    for key_name, key in bucket.keys.items() if bucket else ():
        yield {"s3": key_name, "body": base64.b64encode(key.value).decode()}
    for queue in sqs_backends[scope.account][scope.region].queues.values():
        if queue.name in scope.queues:
            for message in queue._messages:
                yield {
                    "sqs": queue.name,
                    "id": message.id,
                    "body": message.body,
                    "attributes": message.message_attributes,
                }


def load_into_backends(state: State, scope: Scope) -> None:
    """Put restored state into moto's backends (before the hooks are installed: not logged again)."""
    ddb = dynamodb_backends[scope.account][scope.region]
    for name, items in state.items.items():
        table = ddb.get_table(name)
        for attributes in items.values():
            _restore_item(table, attributes)
        dynamodb_emulation.forget_hash_indexes(table)
    s3 = s3_backends[scope.account]["global"]
    for key_name, body in state.objects.items():
        s3.put_object(scope.bucket, key_name, base64.b64decode(body))
    queues = {q.name: q for q in sqs_backends[scope.account][scope.region].queues.values()}
    for record in state.messages.values():
        message = Message(record["id"], record["body"])
        message.message_attributes = record.get("attributes") or {}
        message.mark_sent()
        queues[record["sqs"]].add_message(message)


def _restore_item(table: Table, attributes: dict[str, Any]) -> None:
    """Put an item back as moto's ``Table.put_item`` stores it, without its checks: they passed
    when it was written, and moto's item size check is quadratic in attributes (most of a
    restart's time)."""
    hash_key = DynamoType(attributes[table.hash_key_attr])
    range_key = DynamoType(attributes[table.range_key_attr]) if table.range_key_attr else None
    item = Item(hash_key, range_key, {})
    item.attrs = LimitedSizeDict({name: DynamoType(value) for name, value in attributes.items()})
    if range_key is not None:
        table.items[hash_key][range_key] = item
    else:
        table.items[hash_key] = item


class WriteAheadLog:
    """``directory/snapshot.jsonl`` (first line ``{"generation": G}``) plus ``directory/wal.G.jsonl``."""

    def __init__(self, directory: Path, fsync: bool = True, snapshot_every: int = SNAPSHOT_EVERY) -> None:
        self.directory = directory
        self.fsync = fsync
        self.snapshot_every = snapshot_every
        self.generation = 0
        self.records = 0  # in the current generation's log
        self._file: Any = None
        self.snapshot_due = False

    def wal_path(self, generation: int) -> Path:
        return self.directory / f"wal.{generation}.jsonl"

    def read(self) -> State:
        """The state the snapshot and its log's complete lines hold; a torn last line is cut off."""
        self.directory.mkdir(parents=True, exist_ok=True)
        state = State()
        snapshot = self.directory / SNAPSHOT
        if snapshot.exists():
            with snapshot.open() as lines:
                self.generation = json.loads(next(lines))["generation"]
                for line in lines:
                    state.apply(json.loads(line))
        wal = self.wal_path(self.generation)
        if wal.exists():
            good = 0
            with wal.open("rb") as lines:
                for line in lines:
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError:
                        break  # a torn write: never acknowledged
                    if not line.endswith(b"\n"):
                        break
                    state.apply(record)
                    good += len(line)
                    self.records += 1
            if good != wal.stat().st_size:
                os.truncate(wal, good)
        return state

    def open(self) -> None:
        self._file = self.wal_path(self.generation).open("ab")

    def append(self, record: Record) -> None:
        self._file.write(json.dumps(record, separators=(",", ":")).encode() + b"\n")
        self._file.flush()
        if self.fsync:
            os.fsync(self._file.fileno())
        self.records += 1
        self.snapshot_due = self.records >= self.snapshot_every

    def snapshot(self, records: Iterator[Record]) -> None:
        """Write the whole state as the next generation's snapshot; the old log goes."""
        generation = self.generation + 1
        partial = self.directory / f"{SNAPSHOT}.partial"
        with partial.open("wb") as out:
            out.write(json.dumps({"generation": generation}).encode() + b"\n")
            for record in records:
                out.write(json.dumps(record, separators=(",", ":")).encode() + b"\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, self.directory / SNAPSHOT)
        _fsync_directory(self.directory)
        if self._file:
            self._file.close()
        self.wal_path(self.generation).unlink(missing_ok=True)
        self.generation, self.records, self.snapshot_due = generation, 0, False
        self.open()

    def close(self) -> None:
        if self._file:
            self._file.close()
            self._file = None

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.directory.glob("*.jsonl"))


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DurableState:
    """``restore()`` the state directory into moto's backends (after the operator's resources are
    provisioned), then ``install()`` the hooks that log every change; ``close()`` snapshots."""

    def __init__(
        self,
        directory: Path,
        scope: Scope,
        listeners: list[Listener] | None = None,
        fsync: bool = True,
        snapshot_every: int = SNAPSHOT_EVERY,
    ) -> None:
        self.scope = scope
        self.log = WriteAheadLog(directory, fsync, snapshot_every)
        self.changes = OperatorChanges(scope, [self._append, *(listeners or [])])

    def restore(self) -> State:
        state = self.log.read()
        load_into_backends(state, self.scope)
        return state

    def install(self) -> None:
        self.log.open()
        self.changes.install()

    def _append(self, record: Record) -> None:  # called under the changes' lock
        self.log.append(record)
        if self.log.snapshot_due:
            self.log.snapshot(captured(self.scope))

    def snapshot(self) -> None:
        with self.changes.lock:
            self.log.snapshot(captured(self.scope))

    def close(self) -> None:
        self.snapshot()
        self.changes.uninstall()
        self.log.close()


INTERRUPTED = "Interrupted"


def fail_interrupted_runs(aws: Aws) -> list[str]:
    """Close the runs whose execution died with the process (their header still says RUNNING):
    FAILED with error ``Interrupted``, the items that finished kept and the others counted as
    failed, as Finalize would have. The next run corrects what they left half done."""
    stores = Stores.of(aws)
    pages = (
        aws.client("dynamodb")
        .get_paginator("scan")
        .paginate(
            TableName=aws.settings.runs_table,
            FilterExpression="#i = :header AND #s = :running",
            ExpressionAttributeNames={"#i": "Item", "#s": "Status"},
            ExpressionAttributeValues={":header": {"S": HEADER}, ":running": {"S": RunStatus.RUNNING.value}},
            ConsistentRead=True,
        )
    )
    closed = []
    for page in pages:
        for item in page.get("Items", []):
            run_id = item["RunId"]["S"]
            cause = "qrie local up stopped while the run was in progress; its execution is gone"
            runs.fail_run(stores, run_id, INTERRUPTED, cause)
            closed.append(run_id)
    return closed
