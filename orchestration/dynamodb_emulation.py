"""moto's DynamoDB costs what AWS's does not, and the local runtime pays it per item of a run:

- Query reads ``Table.all_items()``: every item of the table, sorted, for every query (and every
  page of it), partition or index alike. A full scan of 20 accounts spent a fifth of its time
  there, and the cost grows with the table, so per-account time grew with the organisation. Here
  a query starts from its partition: the table's own for a base-table query, and for a global
  secondary index a hash index kept as items are written (moto's engine then filters, sorts,
  pages and projects the candidates as before, so answers are unchanged).
- Every answer goes through moto's model-driven serializer, which walks the operation's output
  shape attribute by attribute (38% of a scan task's time). An item operation's answer is already
  DynamoDB's wire form: it is written as JSON directly (binary values base64, as AWS sends them).
- TransactWriteItems deep-copies every table it names before each transaction (its rollback):
  quadratic in the tables' size (a full scan of 10 accounts peaked at 4.6 GB). Here the rollback
  is an undo log of the items the transaction names (the only ones it can change): the same
  all-or-nothing outcome, at the cost of the transaction's own items.

And one request at a time: moto updates a stored item in place, and its reads iterate the live
items (a query deep-copies them, a GetItem answer is the item's own attribute dict), so a read
served while another thread's update adds an attribute fails with ``RuntimeError: dictionary
changed size during iteration``. Requests do come from several threads: the handlers of a Map's
iterations (their customer calls overlap: ``qrie_lib.concurrency``), ``qrie demo``'s progress
polling the run's items meanwhile, the local endpoint's server threads. A DynamoDB request never
calls another service (no Lambda, no Step Functions), so no thread holding the lock waits for
one that wants it (the transaction's swap of the module's ``copy`` is under it too).
"""

from __future__ import annotations

import base64
import copy
import json
import threading
from collections import defaultdict
from typing import Any

from moto.dynamodb import models as moto_dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler, DynamoResult

ORIGINAL_QUERY = Table.query
ORIGINAL_ALL_ITEMS = Table.all_items
ORIGINAL_PUT = Table.put_item
ORIGINAL_DELETE = Table.delete_item
ORIGINAL_UPDATE = DynamoDBBackend.update_item
ORIGINAL_TRANSACT_WRITE = DynamoDBBackend.transact_write_items
ORIGINAL_EXECUTE_RESULT = DynamoResult.execute_result
ORIGINAL_CALL_ACTION = DynamoHandler.call_action
INDEXES = "_qrie_hash_indexes"  # Table attribute: GSI name -> HashIndex

Key = tuple[DynamoType, DynamoType | None]


def patches() -> list[tuple[Any, str, Any, Any]]:
    """(class, attribute, the emulation's, moto's own)."""
    return [
        (Table, "query", query_from_partition, ORIGINAL_QUERY),
        (Table, "all_items", all_items_or_candidates, ORIGINAL_ALL_ITEMS),
        (Table, "put_item", put_item_indexed, ORIGINAL_PUT),
        (Table, "delete_item", delete_item_indexed, ORIGINAL_DELETE),
        (DynamoDBBackend, "update_item", update_item_indexed, ORIGINAL_UPDATE),
        (DynamoDBBackend, "transact_write_items", transact_write_items_undoable, ORIGINAL_TRANSACT_WRITE),
        (DynamoResult, "execute_result", answer_as_json, ORIGINAL_EXECUTE_RESULT),
        (DynamoHandler, "call_action", one_request_at_a_time, ORIGINAL_CALL_ACTION),
    ]


def install() -> None:
    for owner, name, emulated, _ in patches():
        setattr(owner, name, emulated)


def uninstall() -> None:
    for owner, name, _, original in patches():
        setattr(owner, name, original)


# ---- Requests: one at a time, from parsing to the written answer ----------------------------------

_requests = threading.RLock()  # process-wide, like moto's backends


def one_request_at_a_time(self: DynamoHandler) -> Any:
    with _requests:
        return ORIGINAL_CALL_ACTION(self)


# ---- Answers: item operations written as JSON -----------------------------------------------------

ITEM_OPERATIONS = frozenset(
    {"GetItem", "BatchGetItem", "Query", "Scan", "PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem",
     "TransactWriteItems", "TransactGetItems"}
)  # fmt: skip


def answer_as_json(self: DynamoResult, context: Any) -> Any:
    if context.operation_model.name not in ITEM_OPERATIONS or isinstance(self.result, Exception):
        return ORIGINAL_EXECUTE_RESULT(self, context)
    return 200, {"Content-Type": "application/x-amz-json-1.0"}, json.dumps(self.result, default=wire_value)


def wire_value(value: Any) -> Any:
    if isinstance(value, bytes):  # B and BS members: moto keeps them raw for its serializer
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} in a DynamoDB item answer")


# ---- Query: candidates from the partition ---------------------------------------------------------


class HashIndex:
    """A global secondary index's items by their hash key value(s); an item lacking one is not in
    it (a sparse index). Valid for the ``items`` dict it was built from: a table restored from a
    transaction's rollback copy, or reloaded from disk, gets a new one when next queried."""

    def __init__(self, table: Table, hash_attrs: list[str]) -> None:
        self.hash_attrs = hash_attrs
        self.items_ref = table.items
        self.entries: dict[tuple, dict[Key, Item]] = defaultdict(dict)
        self.hash_of_key: dict[Key, tuple] = {}
        for item in stored_items(table):
            self.update((item.hash_key, item.range_key), item)

    def update(self, key: Key, item: Item | None) -> None:
        old = self.hash_of_key.pop(key, None)
        if old is not None:
            bucket = self.entries[old]
            bucket.pop(key, None)
            if not bucket:
                del self.entries[old]
        if item is None:
            return
        values = tuple(item.attrs.get(name) for name in self.hash_attrs)
        if all(value is not None for value in values):
            self.entries[values][key] = item
            self.hash_of_key[key] = values


_candidates = threading.local()  # (table, items) for the one all_items() call of a query


def query_from_partition(
    self: Table,
    hash_key: DynamoType | None,
    range_comparison: str | None,
    range_objs: list[DynamoType],
    limit: int,
    exclusive_start_key: dict[str, Any],
    scan_index_forward: bool,
    projection_expressions: list[list[str]] | None,
    index_name: str | None = None,
    consistent_read: bool = False,
    filter_expression: Any = None,
    hash_key_conditions: list[tuple[str, DynamoType]] | None = None,
    range_key_conditions: list[tuple[str, str, list[DynamoType]]] | None = None,
    **filter_kwargs: Any,
) -> Any:
    _candidates.of = (self, candidates(self, hash_key, index_name, hash_key_conditions))
    try:
        return ORIGINAL_QUERY(
            self, hash_key, range_comparison, range_objs, limit, exclusive_start_key, scan_index_forward,
            projection_expressions, index_name, consistent_read, filter_expression,
            hash_key_conditions=hash_key_conditions, range_key_conditions=range_key_conditions,
            **filter_kwargs,
        )  # fmt: skip
    finally:
        _candidates.of = None


def all_items_or_candidates(self: Table) -> list[Item]:
    narrowed = getattr(_candidates, "of", None)
    if narrowed is not None and narrowed[0] is self and narrowed[1] is not None:
        _candidates.of = None  # one query reads all_items() once
        return narrowed[1]
    return ORIGINAL_ALL_ITEMS(self)


def candidates(
    table: Table,
    hash_key: DynamoType | None,
    index_name: str | None,
    conditions: list[tuple[str, DynamoType]] | None,
) -> list[Item] | None:
    """The items a query can match, unsorted (moto sorts them); None to leave the query as it was."""
    gsi = next((i for i in table.global_indexes if i.name == index_name), None) if index_name else None
    if gsi is None:  # the table or a local index: the partition of the table's hash key
        if hash_key is None:
            return None
        partition = table.items.get(hash_key)
        if partition is None:
            return []
        return list(partition.values()) if table.range_key_attr else [partition]  # type: ignore[list-item]
    hash_attrs = [k["AttributeName"] for k in gsi.schema if k["KeyType"] == "HASH"]
    wanted = dict(conditions) if conditions else {hash_attrs[0]: hash_key}
    values = tuple(wanted.get(name) for name in hash_attrs)
    if any(value is None for value in values):
        return None
    return list(hash_index(table, gsi.name, hash_attrs).entries.get(values, {}).values())


def hash_index(table: Table, name: str, hash_attrs: list[str]) -> HashIndex:
    indexes = table.__dict__.setdefault(INDEXES, {})
    index = indexes.get(name)
    if index is None or index.items_ref is not table.items:
        index = indexes[name] = HashIndex(table, hash_attrs)
    return index


def stored_items(table: Table) -> list[Item]:
    if table.range_key_attr:
        return [item for partition in table.items.values() for item in partition.values()]
    return list(table.items.values())  # type: ignore[arg-type]


def stored(table: Table, key: Key) -> Item | None:
    hash_key, range_key = key
    if table.range_key_attr:
        return table.items.get(hash_key, {}).get(range_key)
    return table.items.get(hash_key)  # type: ignore[return-value]


def typed_key(table: Table, key: dict[str, Any]) -> Key | None:
    """The stored key of an item named in a request (wire form), None without its hash key."""
    hash_value = key.get(table.hash_key_attr)
    if hash_value is None:
        return None
    range_value = key.get(table.range_key_attr) if table.range_key_attr else None
    return DynamoType(hash_value), DynamoType(range_value) if range_value is not None else None


def forget_hash_indexes(table: Table) -> None:
    """For a table whose items were put back without ``put_item`` (a restart's reload)."""
    table.__dict__.pop(INDEXES, None)


def reindex(table: Table, key: Key) -> None:
    indexes = table.__dict__.get(INDEXES)
    if not indexes:
        return
    item = stored(table, key)
    for index in indexes.values():
        if index.items_ref is table.items:
            index.update(key, item)


def put_item_indexed(self: Table, *args: Any, **kwargs: Any) -> Item:
    item = ORIGINAL_PUT(self, *args, **kwargs)
    reindex(self, (item.hash_key, item.range_key))
    return item


def delete_item_indexed(self: Table, hash_key: DynamoType, range_key: DynamoType | None = None) -> Any:
    try:
        return ORIGINAL_DELETE(self, hash_key, range_key)
    finally:
        reindex(self, (hash_key, range_key))


def update_item_indexed(
    self: DynamoDBBackend, table_name: str, key: dict[str, Any], *args: Any, **kwargs: Any
) -> Any:
    """moto updates the stored item in place: its index entries follow once it is done (or failed
    part way through an update expression)."""
    try:
        return ORIGINAL_UPDATE(self, table_name, key, *args, **kwargs)
    finally:
        table = self.tables.get(table_name)
        typed = typed_key(table, key) if table is not None else None
        if typed is not None:
            reindex(table, typed)


# ---- TransactWriteItems: a rollback copy of what the transaction can change ---------------------


def transaction_keys(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> dict[str, list]:
    """Table name → the (hash, range) DynamoType keys the transaction names."""
    keys: dict[str, list] = defaultdict(list)
    for entry in transact_items:
        op = next(iter(entry.values()))
        table = backend.tables.get(op.get("TableName", ""))
        if table is None:
            continue
        typed = typed_key(table, op.get("Key") or op.get("Item") or {})
        if typed is not None:
            keys[table.name].append(typed)
    return keys


class Unchanged:
    """What moto's transaction takes for ``copy``: its "copy" of a table is the table itself, so
    its rollback (putting the copy back) changes nothing; the undo log below restores the items
    the transaction names, the only ones it can have changed."""

    def __getattr__(self, name: str) -> Any:  # the rest of ``copy`` as it is
        return getattr(copy, name)

    def deepcopy(self, value: Any, memo: Any = None) -> Any:
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def transact_write_items_undoable(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    undo = [
        (table, key, copy.deepcopy(stored(table, key)))
        for name, keys in transaction_keys(self, transact_items).items()
        for table in [self.tables[name]]
        for key in keys
    ]
    moto_dynamodb_models.copy = Unchanged()  # type: ignore[assignment]
    try:
        return ORIGINAL_TRANSACT_WRITE(self, transact_items)
    except Exception:
        for table, key, before in reversed(undo):
            restore(table, key, before)
        raise
    finally:
        moto_dynamodb_models.copy = copy


def restore(table: Table, key: Key, before: Item | None) -> None:
    hash_key, range_key = key
    if table.range_key_attr:
        if before is None:
            table.items[hash_key].pop(range_key, None)
        else:
            table.items[hash_key][range_key] = before
    elif before is None:
        table.items.pop(hash_key, None)
    else:
        table.items[hash_key] = before  # type: ignore[assignment]
    reindex(table, key)
