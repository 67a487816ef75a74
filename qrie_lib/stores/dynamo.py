"""Small helpers over the DynamoDB client: (de)serialisation, paged queries, and conditional
writes in transactions of up to 100 items (BatchWriteItem cannot carry conditions)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from qrie_lib.aws import error_code, is_throttling

_ser = TypeSerializer()
_de = TypeDeserializer()
TRANSACT_MAX = 100


def to_item(data: dict[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(v) for k, v in data.items() if v is not None}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _de.deserialize(v) for k, v in item.items()}


def values(data: dict[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(v) for k, v in data.items()}


def encode_token(key: dict[str, Any] | None) -> str | None:
    """An opaque, JSON-safe page token from a LastEvaluatedKey."""
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode() if key else None


def decode_token(token: str | None) -> dict[str, Any] | None:
    return json.loads(base64.urlsafe_b64decode(token.encode())) if token else None


@dataclass(frozen=True)
class Write:
    """One conditional write of a transaction: a Put, Delete or Update request body."""

    op: str  # "Put" | "Delete" | "Update"
    request: dict[str, Any]


def _retryable(exc: BaseException) -> bool:
    # Races between transactions touching the same item, and throttling: try again.
    return is_throttling(exc) or error_code(exc) in ("TransactionConflictException", "TransactionInProgressException")


race_retry = retry(
    retry=retry_if_exception(_retryable),
    stop=stop_after_attempt(6),
    wait=wait_exponential_jitter(multiplier=0.05, max=2),
    reraise=True,
)


def transact_conditional(client: Any, writes: Sequence[Write]) -> list[bool]:
    """Apply writes in transactions of 100; a write whose condition fails is skipped, the others
    are applied. Returns, per write, whether it was applied."""
    applied = [False] * len(writes)
    for start in range(0, len(writes), TRANSACT_MAX):
        pending = list(range(start, min(start + TRANSACT_MAX, len(writes))))
        while pending:
            failed = _transact(client, [writes[i] for i in pending])
            if not failed:
                for i in pending:
                    applied[i] = True
                break
            pending = [i for n, i in enumerate(pending) if n not in failed]
    return applied


@race_retry
def _transact(client: Any, writes: list[Write]) -> set[int]:
    """One transaction; the positions whose condition failed (empty set: all applied)."""
    if len(writes) == 1:  # a plain conditional write is half the cost of a transaction
        w = writes[0]
        call = {"Put": client.put_item, "Delete": client.delete_item, "Update": client.update_item}[w.op]
        try:
            call(**w.request)
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return {0}
            raise
        return set()
    try:
        client.transact_write_items(TransactItems=[{w.op: w.request} for w in writes])
    except ClientError as exc:
        if error_code(exc) != "TransactionCanceledException":
            raise
        reasons = exc.response.get("CancellationReasons") or []
        failed = {i for i, r in enumerate(reasons) if r.get("Code") == "ConditionalCheckFailed"}
        if not failed or any(r.get("Code") not in ("None", "ConditionalCheckFailed", None) for r in reasons):
            # Cancelled for another reason (conflict, throttling): let the retry policy decide.
            raise ClientError(
                {"Error": {"Code": "TransactionConflictException", "Message": str(exc)}}, "TransactWriteItems"
            ) from exc
        return failed
    return set()


def query_pages(client: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
    """Every item of a query, page after page."""
    for page in client.get_paginator("query").paginate(**kwargs):
        for item in page.get("Items", []):
            yield from_item(item)


def batch_get(client: Any, table: str, keys: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """BatchGetItem in chunks of 100, following UnprocessedKeys."""
    found: list[dict[str, Any]] = []
    for start in range(0, len(keys), 100):
        request = {table: {"Keys": [to_item(k) for k in keys[start : start + 100]]}}
        while request:
            answer = client.batch_get_item(RequestItems=request)
            found.extend(from_item(i) for i in answer.get("Responses", {}).get(table, []))
            request = answer.get("UnprocessedKeys") or {}
    return found
