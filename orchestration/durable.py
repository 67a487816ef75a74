"""Operator state that survives a restart of ``qrie local up``: the tables, the run-item bucket and
the events queues (with their DLQ), kept in a state directory.

moto's backends are hooked where they change an operator item (DynamoDB put/update/delete,
transactions, S3 put/delete in the items bucket, a message added to or removed from a queue), and
each change is kept as the item's state *after* it (or its deletion) in ``state.sqlite3``
(``state_store``), one row per item, committed and fsync'd before the call returns, so before the
HTTP response: an acknowledged write is on disk. A restart loads the current rows into moto.

Why after-images and not moto's own request recorder: replaying requests is not the same history
(moto makes new random ids for executions, receipt handles and messages, and would replay
AssumeRole, StartExecution and ReceiveMessage, so run the state machines again).

What is *not* kept: Step Functions executions (an execution that was running when the process
died is gone; ``fail_interrupted_runs`` closes its run record), messages' receive counts and
visibility (a restored message is visible again), and the customer side (the simulated
organisation is seeded again at every start)."""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moto.dynamodb.models import DynamoDBBackend, dynamodb_backends
from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
from moto.dynamodb.models.table import Table
from moto.s3.models import S3Backend, s3_backends
from moto.sqs.models import Message, Queue, SQSBackend, sqs_backends

from orchestration import dynamodb_emulation, state_dir
from orchestration.state_migration import migrate, remove_legacy
from orchestration.state_store import FILE, Record, Rows, StateStore, checked, create, refuse
from qrie_lib import runs
from qrie_lib.aws import Aws
from qrie_lib.models import RunStatus
from qrie_lib.schema import TABLES
from qrie_lib.settings import Settings
from qrie_lib.stores import Stores
from qrie_lib.stores.runs import HEADER

Listener = Callable[[Record], None]
Keeper = Callable[[list[Record]], None]


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
    as an after-image record, to ``keep`` (the records of one call together: a transaction is kept
    whole) and then to each listener, under one lock: the order of the records is the order of the
    changes, and ``keep`` is done before the caller gets its answer."""

    def __init__(self, scope: Scope, listeners: list[Listener], keep: Keeper | None = None) -> None:
        self.scope = scope
        self.listeners = listeners
        self.keep = keep
        self.lock = threading.RLock()
        self._in_transaction = threading.local()
        self._saved: list[tuple[Any, str, Any]] = []

    def emit(self, *records: Record) -> None:
        if self.keep and records:
            self.keep(list(records))
        for record in records:
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
                    changes.emit(*(ddb_image(backend, t, key) for t, key in changes._in_transaction.keys))
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
                changes.emit(*({"s3": obj["Key"], "body": None} for obj in objects))
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
                changes.emit(*({"sqs": queue.name, "id": message_id, "body": None} for message_id in ids))

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


# ---- the state directory -----------------------------------------------------------------------


def load_into_backends(rows: Rows, scope: Scope) -> None:
    """Put the kept state into moto's backends (before the hooks are installed: not kept again)."""
    ddb = dynamodb_backends[scope.account][scope.region]
    tables = {name: ddb.get_table(name) for name in scope.tables}
    for name, attributes in rows.items(scope.tables):
        _restore_item(tables[name], attributes)
    for table in tables.values():
        dynamodb_emulation.forget_hash_indexes(table)
    s3 = s3_backends[scope.account]["global"]
    for key_name, body in rows.objects():
        s3.put_object(scope.bucket, key_name, body)
    queues = {q.name: q for q in sqs_backends[scope.account][scope.region].queues.values()}
    for record in rows.messages(scope.queues):
        message = Message(record["id"], record["body"])
        message.message_attributes = record["attributes"]
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


class DurableState:
    """``restore()`` the state directory into moto's backends (after the operator's resources are
    provisioned), then ``install()`` the hooks that keep every change; ``close()`` at the end.
    ``say`` hears what was done to the directory (permissions tightened, an old state migrated)."""

    def __init__(
        self,
        directory: Path,
        scope: Scope,
        listeners: list[Listener] | None = None,
        fsync: bool = True,
        say: Callable[[str], None] = print,
    ) -> None:
        self.directory = directory
        self.scope = scope
        self.fsync = fsync
        self.say = say
        self.store: StateStore | None = None
        self._lock_fd: int | None = None
        self.changes = OperatorChanges(scope, listeners or [], keep=self._keep)

    def restore(self) -> None:
        """Load the kept state; ``CorruptState`` (nothing changed on disk) if it cannot be read
        whole, ``StateInUse`` if another process keeps it."""
        self._lock_fd = state_dir.claim(self.directory)
        try:
            moved = migrate(self.directory)
            if moved is not None:
                self.say(f"{self.directory}: the old write-ahead log ({moved} records) moved into {FILE}")
            path = self.directory / FILE
            if not path.exists():
                create(path)
            else:
                with checked(path) as rows:
                    try:
                        load_into_backends(rows, self.scope)
                    except (KeyError, TypeError, AttributeError, ValueError) as exc:
                        raise refuse(path, f"a row does not hold a DynamoDB item ({exc!r})") from None
            remove_legacy(self.directory)  # migrated, and the new file read
            tightened = state_dir.tighten(self.directory)  # once it is read: a refusal changes nothing
            if tightened:
                self.say(tightened)
            self.store = StateStore(path, self.fsync)
        except BaseException:
            self.close()
            raise

    def install(self) -> None:
        self.changes.install()

    def _keep(self, records: list[Record]) -> None:  # called under the changes' lock
        if self.store is None:
            raise RuntimeError("the operator state is closed: this change is not kept")
        self.store.write(records)

    def close(self) -> None:
        """The hooks stay: a change that comes after this is refused (never acknowledged), not lost."""
        with self.changes.lock:
            if self.store:
                self.store.close()
                self.store = None
        if self._lock_fd is not None:
            state_dir.release(self._lock_fd)
            self._lock_fd = None


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
