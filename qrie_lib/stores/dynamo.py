"""Small helpers over the DynamoDB client: (de)serialisation, page tokens, paged queries, batch
reads and conditional writes."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from qrie_lib.aws import error_code, is_throttling


class _Deserializer(TypeDeserializer):
    """DynamoDB numbers as they were written: one written as an integer (a port, a count) is an
    ``int``, not a ``Decimal`` that a JSON view would turn into ``22.0``; others stay ``Decimal``
    (exact, and writable back, which a float is not)."""

    def _deserialize_n(self, value: str) -> int | Decimal:
        number = super()._deserialize_n(value)
        exponent = number.as_tuple().exponent
        return int(number) if isinstance(exponent, int) and exponent >= 0 else number


_ser = TypeSerializer()
_de = _Deserializer()


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
    """One conditional write: the Put, Delete or Update request body."""

    op: str  # "Put" | "Delete" | "Update"
    request: dict[str, Any]


@retry(
    retry=retry_if_exception(is_throttling),
    stop=stop_after_attempt(6),
    wait=wait_exponential_jitter(multiplier=0.05, max=2),
    reraise=True,
)
def conditional_write(client: Any, write: Write) -> bool:
    """Apply one conditional write; False when its condition did not hold (nothing written).

    Conditional writes are single-item calls on purpose: BatchWriteItem cannot carry conditions,
    and a transaction costs twice the write units and fails as a whole on one stale item."""
    call = {"Put": client.put_item, "Delete": client.delete_item, "Update": client.update_item}[write.op]
    try:
        call(**write.request)
    except ClientError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise
    return True


def conditional_writes(client: Any, writes: Sequence[Write]) -> list[bool]:
    return [conditional_write(client, w) for w in writes]


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
