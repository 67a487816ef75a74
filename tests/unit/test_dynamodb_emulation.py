"""The emulation's DynamoDB (a Query from the partition or a kept hash index, answers written as
JSON, transactions undone from their own items) answers exactly what moto's own answers, through
puts, updates that move items between index keys, deletes, batch writes and transactions that fail
and roll back, on items of every attribute type."""

import random
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from orchestration import dynamodb_emulation
from tests.conftest import REGION

TABLE = "t"


def create(ddb: Any) -> None:
    ddb.create_table(
        TableName=TABLE,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk", "shard", "state", "changed")
        ],
        GlobalSecondaryIndexes=[
            {"IndexName": "by_shard", "Projection": {"ProjectionType": "KEYS_ONLY"},
             "KeySchema": [{"AttributeName": "shard", "KeyType": "HASH"},
                           {"AttributeName": "state", "KeyType": "RANGE"}]},
            {"IndexName": "changed", "Projection": {"ProjectionType": "ALL"},  # sparse
             "KeySchema": [{"AttributeName": "changed", "KeyType": "HASH"}]},
        ],
    )  # fmt: skip


def item(rng: random.Random) -> dict[str, Any]:
    attrs = {"pk": {"S": f"p{rng.randrange(6)}"}, "sk": {"S": f"s{rng.randrange(8)}"},
             "shard": {"S": f"h{rng.randrange(3)}"}, "state": {"S": rng.choice(["A", "R"])},
             "v": {"N": str(rng.randrange(100))}}  # fmt: skip
    if rng.random() < 0.3:
        attrs["changed"] = {"S": "yes"}
    if rng.random() < 0.5:  # every other attribute type, binary ones included
        attrs |= {"b": {"B": bytes([rng.randrange(256)]) * 3}, "bs": {"BS": [b"\x00\x01", b"\xff"]},
                  "ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1", "2.5"]}, "bool": {"BOOL": True},
                  "null": {"NULL": True},
                  "m": {"M": {"k": {"S": "v"}, "n": {"L": [{"N": "1"}, {"B": b"x"}]}}}}  # fmt: skip
    return attrs


def key(rng: random.Random) -> dict[str, Any]:
    return {"pk": {"S": f"p{rng.randrange(6)}"}, "sk": {"S": f"s{rng.randrange(8)}"}}


def write(ddb: Any, rng: random.Random) -> Any:
    """A random write; its answer (what the caller sees of it)."""
    choice = rng.randrange(5)
    if choice == 0:
        return ddb.put_item(TableName=TABLE, Item=item(rng), ReturnValues="ALL_OLD")
    if choice == 1:  # moves the item to another index key, or out of the sparse index
        return ddb.update_item(
            TableName=TABLE, Key=key(rng), UpdateExpression="SET #h = :h, #s = :s REMOVE changed",
            ExpressionAttributeNames={"#h": "shard", "#s": "state"}, ReturnValues="ALL_NEW",
            ExpressionAttributeValues={":h": {"S": f"h{rng.randrange(3)}"}, ":s": {"S": "R"}},
        )  # fmt: skip
    if choice == 2:
        return ddb.delete_item(TableName=TABLE, Key=key(rng), ReturnValues="ALL_OLD")
    if choice == 3:
        requests = {(i["pk"]["S"], i["sk"]["S"]): i for i in (item(rng) for _ in range(4))}
        return ddb.batch_write_item(
            RequestItems={TABLE: [{"PutRequest": {"Item": i}} for i in requests.values()]}
        )
    # a transaction whose condition may fail: rolled back whole
    first, second = key(rng), key(rng)
    if first == second:
        return None
    try:
        ddb.transact_write_items(
            TransactItems=[
                {"Update": {"TableName": TABLE, "Key": first, "UpdateExpression": "SET changed = :c",
                            "ExpressionAttributeValues": {":c": {"S": "yes"}}}},
                {"Put": {"TableName": TABLE, "Item": {**item(rng), **second},
                         "ConditionExpression": "attribute_not_exists(pk)"}},
            ]
        )  # fmt: skip
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "TransactionCanceledException":
            raise
        return {"CancellationReasons": exc.response["CancellationReasons"]}
    return None


def answers(ddb: Any) -> list[Any]:
    found: list[Any] = []
    for p in range(6):
        found.append(ddb.query(TableName=TABLE, KeyConditionExpression="pk = :p",
                               ExpressionAttributeValues={":p": {"S": f"p{p}"}})["Items"])  # fmt: skip
    for h in range(3):
        for state in ("A", "R"):
            pages = ddb.get_paginator("query").paginate(
                TableName=TABLE, IndexName="by_shard", Limit=2,
                KeyConditionExpression="#h = :h AND #s = :s",
                ExpressionAttributeNames={"#h": "shard", "#s": "state"},
                ExpressionAttributeValues={":h": {"S": f"h{h}"}, ":s": {"S": state}},
            )  # fmt: skip
            found.append([page["Items"] for page in pages])
    found.append(ddb.query(TableName=TABLE, IndexName="changed", KeyConditionExpression="changed = :c",
                           ExpressionAttributeValues={":c": {"S": "yes"}})["Items"])  # fmt: skip
    keys = [{"pk": {"S": f"p{p}"}, "sk": {"S": f"s{s}"}} for p in range(6) for s in range(0, 8, 3)]
    found.append([ddb.get_item(TableName=TABLE, Key=k).get("Item") for k in keys])
    batch = ddb.batch_get_item(RequestItems={TABLE: {"Keys": keys}})["Responses"][TABLE]
    found.append(sorted(batch, key=lambda i: (i["pk"]["S"], i["sk"]["S"])))
    found.append([page["Items"] for page in ddb.get_paginator("scan").paginate(TableName=TABLE, Limit=7)])
    return found


def play(seed: int) -> list[Any]:
    rng = random.Random(seed)
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name=REGION)
        create(ddb)
        seen = []
        for step in range(150):
            answer = write(ddb, rng)
            seen.append({k: v for k, v in (answer or {}).items() if k != "ResponseMetadata"})
            if step % 10 == 0:
                seen.append(answers(ddb))
        seen.append(answers(ddb))
    return seen


@pytest.fixture
def emulated() -> Iterator[None]:
    dynamodb_emulation.install()
    yield
    dynamodb_emulation.uninstall()


@pytest.mark.parametrize("seed", [1, 2])
def test_queries_answer_as_moto_does(seed: int) -> None:
    expected = play(seed)
    assert any(page for answer in expected[-1] for page in answer)  # the workload left items to find
    dynamodb_emulation.install()
    try:
        assert play(seed) == expected
    finally:
        dynamodb_emulation.uninstall()


def test_a_query_reads_only_its_partition(emulated: None, monkeypatch: pytest.MonkeyPatch) -> None:
    read: list[int] = []

    def counting(self: Any) -> Any:
        items = dynamodb_emulation.all_items_or_candidates(self)
        read.append(len(items))
        return items

    monkeypatch.setattr(dynamodb_emulation.Table, "all_items", counting)
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name=REGION)
        create(ddb)
        for p in range(50):
            attrs = {"pk": f"p{p}", "sk": "s", "shard": f"h{p % 5}", "state": "A"}
            ddb.put_item(TableName=TABLE, Item={name: {"S": value} for name, value in attrs.items()})
        ddb.query(TableName=TABLE, KeyConditionExpression="pk = :p",
                  ExpressionAttributeValues={":p": {"S": "p7"}})  # fmt: skip
        ddb.query(TableName=TABLE, IndexName="by_shard", KeyConditionExpression="#h = :h",
                  ExpressionAttributeNames={"#h": "shard"},
                  ExpressionAttributeValues={":h": {"S": "h2"}})  # fmt: skip
        ddb.scan(TableName=TABLE)
    assert read == [1, 10, 50]  # the partition, the index key's items, and the whole table for a Scan


def test_a_cancelled_transaction_undoes_its_own_items_in_place(emulated: None) -> None:
    from moto.dynamodb.models import dynamodb_backends

    with mock_aws():
        ddb = boto3.client("dynamodb", region_name=REGION)
        create(ddb)
        for sk in ("a", "b", "c"):
            ddb.put_item(TableName=TABLE, Item={"pk": {"S": "p"}, "sk": {"S": sk}, "v": {"N": "1"}})
        table = dynamodb_backends["123456789012"][REGION].get_table(TABLE)
        key_a, key_b, key_d = ({"pk": {"S": "p"}, "sk": {"S": s}} for s in ("a", "b", "d"))
        new = {**key_d, "v": {"N": "4"}, "changed": {"S": "yes"}}
        with pytest.raises(ClientError, match="TransactionCanceled"):
            ddb.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": TABLE, "Item": new}},
                    {"Update": {"TableName": TABLE, "Key": key_a, "UpdateExpression": "SET v = :two",
                                "ExpressionAttributeValues": {":two": {"N": "2"}}}},
                    {"Put": {"TableName": TABLE, "Item": {**key_b, "v": {"N": "3"}},
                             "ConditionExpression": "attribute_not_exists(pk)"}},
                ]
            )  # fmt: skip
        values = {i["sk"]["S"]: i["v"]["N"] for i in ddb.scan(TableName=TABLE)["Items"]}
        assert values == {"a": "1", "b": "1", "c": "1"}
        changed = ddb.query(TableName=TABLE, IndexName="changed", KeyConditionExpression="changed = :c",
                            ExpressionAttributeValues={":c": {"S": "yes"}})["Items"]  # fmt: skip
        assert changed == []  # the undone put left the sparse index too
        assert dynamodb_backends["123456789012"][REGION].get_table(TABLE) is table  # no table copy
        ddb.transact_write_items(
            TransactItems=[{"Update": {"TableName": TABLE, "Key": key_a, "UpdateExpression": "SET v = :two",
                                       "ExpressionAttributeValues": {":two": {"N": "2"}}}}]
        )  # fmt: skip
        assert ddb.get_item(TableName=TABLE, Key=key_a)["Item"]["v"]["N"] == "2"


def test_a_read_is_not_served_while_another_thread_updates_the_item(
    emulated: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``qrie demo`` failed once with "dictionary changed size during iteration": its progress
    queried the run's items while a Map iteration's handler, in another thread, added an attribute
    to one (moto updates items in place, and a query deep-copies them). Here the query is held in
    the middle of copying the item until the update either is done (the race) or waits for the
    query (the fix): no sleep decides the outcome."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    key_a = {"pk": {"S": "run"}, "sk": {"S": "item"}}
    reader = threading.get_ident()
    writer_arrived = threading.Event()  # the update is done, or waits for the query

    class Requests:
        """The emulation's request lock, telling when the writer reaches it."""

        def __init__(self, lock: Any) -> None:
            self.lock = lock

        def __enter__(self) -> None:
            if threading.get_ident() != reader:
                writer_arrived.set()
            self.lock.__enter__()

        def __exit__(self, *exc: object) -> None:
            self.lock.__exit__(*exc)

    monkeypatch.setattr(dynamodb_emulation, "_requests", Requests(threading.RLock()), raising=False)
    original_copy = DynamoType.__deepcopy__

    def copy_holding_the_query(value: DynamoType, memo: dict[int, Any]) -> DynamoType:
        if value.value == "pause" and threading.get_ident() == reader and not writer_arrived.is_set():
            update.start()
            assert writer_arrived.wait(timeout=60)  # a safety net; the writer arrives at once
        return original_copy(value, memo)

    monkeypatch.setattr(DynamoType, "__deepcopy__", copy_holding_the_query)
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name=REGION)
        create(ddb)
        ddb.put_item(TableName=TABLE, Item={**key_a, "a": {"S": "pause"}, "z": {"S": "last"}})

        def finish() -> None:
            ddb.update_item(TableName=TABLE, Key=key_a, UpdateExpression="SET finished = :f",
                            ExpressionAttributeValues={":f": {"S": "yes"}})  # fmt: skip
            writer_arrived.set()

        update = threading.Thread(target=finish)
        answer = ddb.query(TableName=TABLE, KeyConditionExpression="pk = :p",
                           ExpressionAttributeValues={":p": {"S": "run"}})["Items"]  # fmt: skip
        update.join()
        assert [set(i) for i in answer] == [{"pk", "sk", "a", "z"}]  # the item as it was before the update
        assert ddb.get_item(TableName=TABLE, Key=key_a)["Item"]["finished"] == {"S": "yes"}
