"""Read views shared by the CLI and the API: findings through the table's GSIs (never a scan),
paginated with one opaque token across the several queries a filter may need.

A page token comes back from callers, so it is checked before it reaches DynamoDB: it is signed
with the walk's filters (``page_tokens``: a token of another query is refused), it must name a
query of this very walk, and its start key must have exactly the key attributes of the table or
index that query reads, with the values its key condition fixes. A forged or foreign token is
``InvalidInput``; it can never start a query in another partition.

Without an account or policy filter, findings are read in severity order across pages (the most
severe, then the newest first: ``severity_page``); with one, through that filter's index.

A policy's findings are read shard after shard of its index (``schema.POLICY_SHARDS``). Each row
says when it was last confirmed: its own ``LastEvaluated`` (written when it moved) or its
partition's scan stamp for its policy (``stores.partitions``), whichever is later."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from qrie_lib import page_tokens
from qrie_lib.errors import InvalidInput
from qrie_lib.policies.base import BANDS
from qrie_lib.policies.registry import get_policy
from qrie_lib.schema import (
    FINDINGS_BY_PARTITION,
    FINDINGS_BY_POLICY,
    TABLES,
    Index,
    Table,
    policy_shards,
    rank_key,
    severity_shards,
)
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
    narrowed_by: Mapping[str, Any] | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of findings and the token of the next; ``narrowed_by``: the filters a caller applies
    to the rows (the console's text search), which its tokens are bound to as well."""
    if band_name is not None and band_name not in BAND_RANGES:
        raise InvalidInput(f"severity: {band_name!r} is not a band ({', '.join(BANDS)})")
    low, high = BAND_RANGES[band_name] if band_name else (None, None)
    if policy_id is None and account_id is None:
        return severity_page(stores, state, band_name, token, limit, narrowed_by)
    queries = _queries(stores, policy_id, account_id)
    walk = {
        "narrowed_by": narrowed_by,
        "walk": "findings",
        "state": state,
        "severity": band_name,
        "account": account_id,
        "policy": policy_id,
    }
    index, inner = decode_position(token, [_bound(q, state) for q in queries], walk)
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
    return _rows(stores, found), (encode_position(index, inner, walk) if index < len(queries) else None)


def severity_page(
    stores: Stores,
    state: FindingState | None,
    band_name: str | None,
    token: str | None,
    limit: int,
    narrowed_by: Mapping[str, Any] | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of findings in severity order across pages (the most severe, then the newest first):
    the heads of the state's severity-order shards (``schema.FINDINGS_BY_SEVERITY``), merged. The
    token holds where each shard stands: the last rank taken from it, or ``False`` once it is read
    to its end. Bounded: one query of ``limit`` ranks per shard, then one batch read of the rows."""
    shards = [shard for s in ([state] if state else list(FindingState)) for shard in severity_shards(s.value)]
    walk = {"walk": "severity", "state": state, "severity": band_name, "narrowed_by": narrowed_by}
    cursors: list[str | bool | None] = decode_signed(token, walk) if token else [None] * len(shards)
    if not (isinstance(cursors, list) and len(cursors) == len(shards)):
        raise page_tokens.not_issued()
    low, high = BAND_RANGES[band_name] if band_name else (None, None)
    heads: list[tuple[str, int]] = []  # (rank, shard index)
    more: list[bool] = []
    for n, (shard, cursor) in enumerate(zip(shards, cursors, strict=True)):
        ranks, more_after = (
            stores.findings.severity_page(shard, low, high, cursor or None, limit)
            if cursor is not False
            else ([], False)
        )
        heads += [(rank, n) for rank in ranks]
        more.append(more_after)
    taken = sorted(heads, reverse=True)[:limit]
    for n in range(len(shards)):
        mine = [rank for rank, i in taken if i == n]
        left = sum(1 for _, i in heads if i == n) - len(mine)
        if mine:
            cursors[n] = mine[-1]
        if cursors[n] is not False and not left and not more[n]:
            cursors[n] = False
    keys = [(k["ARN"], k["PolicyId"]) for k in (rank_key(rank) for rank, _ in taken)]
    found = stores.findings.get_many(keys)
    launched = {p.policy_id for p in stores.policies.list()}  # as the counters and the other walks
    rows = _rows(stores, [found[k] for k in keys if k in found and k[1] in launched])
    done = all(c is False for c in cursors)
    return rows, (None if done else encode_signed(cursors, walk))


def _rows(stores: Stores, found: list[Finding]) -> list[dict[str, Any]]:
    stamps = stores.partitions.get_many(f.account_service for f in found)
    return [finding_row(f, stamps[f.account_service].evaluated.get(f.policy_id)) for f in found]


def findings_rows(stores: Stores, **filters: Any) -> list[dict[str, Any]]:
    rows, token = findings_page(stores, **filters)
    while token:
        more, token = findings_page(stores, token=token, **filters)
        rows += more
    return rows


def encode_position(index: int, inner: str | None, query: Mapping[str, Any]) -> str:
    """A walk's page token: the query it is at and the store's token within that query."""
    return encode_signed({"q": index, "k": inner}, query)


def decode_position(
    token: str | None, bounds: Sequence[Bound], query: Mapping[str, Any]
) -> tuple[int, str | None]:
    """The position a page token names in a walk of ``len(bounds)`` queries with the filters
    ``query``: signed for this very query, then checked against the walk's key bounds."""
    if not token:
        return 0, None
    try:
        return _checked(decode_signed(token, query), bounds)
    except (ValueError, TypeError, RecursionError):  # signed, yet not a position of this walk
        raise page_tokens.not_issued() from None


def encode_signed(position: dict[str, Any], query: Mapping[str, Any]) -> str:
    """A page token: the position, and its signature with the walk's filters (``page_tokens``)."""
    signed = {"p": position, "s": page_tokens.signature(query, position)}
    return base64.urlsafe_b64encode(json.dumps(signed).encode()).decode()


def decode_signed(token: str, query: Mapping[str, Any]) -> Any:
    """The position of a token signed for ``query``; any other token is ``page_tokens.not_issued``."""
    try:
        signed = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, TypeError, RecursionError):  # not base64, not UTF-8, not JSON
        raise page_tokens.not_issued() from None
    if not (isinstance(signed, dict) and signed.keys() == {"p", "s"}):
        raise page_tokens.not_issued()
    page_tokens.check(query, signed["p"], signed["s"])
    return signed["p"]


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
