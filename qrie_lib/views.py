"""Read views shared by the CLI and the API: findings through the table's GSIs (never a scan),
paginated with one opaque token across the several queries a filter may need.

A page token comes back from callers, so it is checked before it reaches DynamoDB: it must name
a query of this very walk, and its start key must have exactly the key attributes of the table or
index that query reads, with the values its key condition fixes. A forged or foreign token is
``InvalidInput``; it can never start a query in another partition.

A policy's findings are read shard after shard of its index (``schema.POLICY_SHARDS``). Each row
says when it was last confirmed: its own ``LastEvaluated`` (written when it moved) or its
partition's scan stamp for its policy (``stores.partitions``), whichever is later."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from qrie_lib.errors import InvalidInput
from qrie_lib.policies.base import BANDS
from qrie_lib.policies.registry import get_policy
from qrie_lib.schema import FINDINGS_BY_PARTITION, FINDINGS_BY_POLICY, TABLES, Index, Table, policy_shards
from qrie_lib.services.registry import SERVICES
from qrie_lib.stores import Stores
from qrie_lib.stores.dynamo import decode_token
from qrie_lib.stores.findings import Finding, FindingState
from qrie_lib.stores.resources import account_service

BAND_RANGES = {"critical": (90, 100), "high": (70, 89), "medium": (40, 69), "low": (0, 39)}


def finding_row(f: Finding, confirmed: str | None = None) -> dict[str, Any]:
    """A finding as the API and CLI show it; ``confirmed``: its partition's scan stamp for its policy."""
    return {
        "arn": f.arn,
        "policy_id": f.policy_id,
        "state": f.state.value,
        "severity": f.severity,
        "account_id": f.account_id,
        "region": f.region,
        "resource_type": f.resource_type,
        "evidence": json.loads(json.dumps(f.evidence, default=float)),
        "first_seen": f.first_seen,
        "last_evaluated": f.last_evaluated,
        "last_confirmed": max(f.last_evaluated, confirmed or ""),
        "resolved_at": f.resolved_at,
        "resolved_reason": f.resolved_reason.value if f.resolved_reason else None,
        "reopen_count": f.reopen_count,
    }


@dataclass(frozen=True)
class Bound:
    """What the start key of one query of a walk must be: exactly ``attributes`` (the key of the
    table or index it reads), with the values its key condition fixes."""

    attributes: frozenset[str]
    fixed: Mapping[str, str] = field(default_factory=dict)


def key_attributes(table: Table, index: Index | None = None) -> frozenset[str]:
    """The attributes of a LastEvaluatedKey: the table's key, plus the index's when querying one."""
    keys = (table.partition_key, table.sort_key, *((index.partition_key, index.sort_key) if index else ()))
    return frozenset(k for k in keys if k)


def _queries(stores: Stores, policy_id: str | None, account_id: str | None) -> list[dict[str, str | None]]:
    """The GSI queries that together cover a filter: by policy (its shards) if given, else by partition."""
    if policy_id:
        partition = account_service(account_id, get_policy(policy_id).service) if account_id else None
        return [{"policy_shard": shard, "account_service": partition} for shard in policy_shards(policy_id)]
    if account_id:
        return [{"policy_shard": None, "account_service": account_service(account_id, s)} for s in SERVICES]
    return [
        {"policy_shard": shard, "account_service": None}
        for p in stores.policies.list()
        for shard in policy_shards(p.policy_id)
    ]


def _bound(query: dict[str, str | None], state: FindingState | None) -> Bound:
    """A findings query's start keys: in its policy shard's (or partition's) part of the GSI, and state."""
    shard, partition = query["policy_shard"], query["account_service"]
    index, fixed = (
        (FINDINGS_BY_POLICY, {"PolicyShard": shard})
        if shard
        else (FINDINGS_BY_PARTITION, {"AccountService": partition})
    )
    return Bound(
        key_attributes(TABLES["findings"], index),
        {k: v for k, v in fixed.items() if v is not None} | ({"State": state.value} if state else {}),
    )


def findings_page(
    stores: Stores,
    *,
    state: FindingState | None = FindingState.ACTIVE,
    band_name: str | None = None,
    account_id: str | None = None,
    policy_id: str | None = None,
    token: str | None = None,
    limit: int = 100,
) -> tuple[list[dict[str, Any]], str | None]:
    if band_name is not None and band_name not in BAND_RANGES:
        raise InvalidInput(f"severity: {band_name!r} is not a band ({', '.join(BANDS)})")
    low, high = BAND_RANGES[band_name] if band_name else (None, None)
    queries = _queries(stores, policy_id, account_id)
    index, inner = decode_position(token, [_bound(q, state) for q in queries])
    found: list[Finding] = []
    while index < len(queries) and len(found) < limit:
        page, inner = stores.findings.query_page(
            state=state,
            min_severity=low,
            max_severity=high,
            token=inner,
            limit=limit - len(found),
            **queries[index],
        )
        found += page
        if inner is None:
            index += 1
    stamps = stores.partitions.get_many(f.account_service for f in found)
    rows = [finding_row(f, stamps[f.account_service].evaluated.get(f.policy_id)) for f in found]
    return rows, (encode_position(index, inner) if index < len(queries) else None)


def findings_rows(stores: Stores, **filters: Any) -> list[dict[str, Any]]:
    rows, token = findings_page(stores, **filters)
    while token:
        more, token = findings_page(stores, token=token, **filters)
        rows += more
    return rows


def encode_position(index: int, inner: str | None) -> str:
    """A walk's page token: the query it is at, and the store's token within that query."""
    return base64.urlsafe_b64encode(json.dumps({"q": index, "k": inner}).encode()).decode()


def decode_position(token: str | None, bounds: Sequence[Bound]) -> tuple[int, str | None]:
    """The position a page token names in a walk of ``len(bounds)`` queries, checked against them."""
    if not token:
        return 0, None
    try:
        return _checked(json.loads(base64.urlsafe_b64decode(token.encode())), bounds)
    except (ValueError, TypeError, RecursionError):  # not base64, not UTF-8, not JSON, not ours
        raise InvalidInput("next_token: not a token this API issued for this query") from None


def _checked(position: Any, bounds: Sequence[Bound]) -> tuple[int, str | None]:
    if not (isinstance(position, dict) and position.keys() == {"q", "k"}):
        raise ValueError
    index, inner = position["q"], position["k"]
    if type(index) is not int or not 0 <= index < len(bounds):
        raise ValueError
    if inner is None:
        return index, None
    key = decode_token(inner) if isinstance(inner, str) else None
    bound = bounds[index]
    if not (isinstance(key, dict) and key.keys() == bound.attributes):
        raise ValueError
    for name, value in key.items():
        text = value.get("S") if isinstance(value, dict) and len(value) == 1 else None
        if not (isinstance(text, str) and text and bound.fixed.get(name, text) == text):
            raise ValueError
    return index, inner
