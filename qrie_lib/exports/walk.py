"""Findings read for exports and notifications: through the by-policy index (never a table scan),
one query per launched policy and state, with a server-side filter, as raw items (the export and
notification marks are attributes the ``Finding`` model does not carry)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from qrie_lib.schema import FINDINGS_BY_POLICY, policy_shards
from qrie_lib.stores import Stores
from qrie_lib.stores.dynamo import from_item, to_item, values
from qrie_lib.stores.findings import FindingState, finding_from_item
from qrie_lib.views import finding_row

PAGE = 200  # items per query page: what an export holds at once


def by_policy(
    stores: Stores, state: FindingState, condition: str | None = None, vals: dict[str, Any] | None = None
) -> Iterator[dict[str, Any]]:
    """Every finding in ``state`` of every launched policy (ACTIVE or SUSPENDED: a suspended
    policy's findings were resolved and may still need archiving), whole items. The index is read
    page by page over each policy's shards (``condition`` may filter on what it projects), and each
    page's items are then read from the table by key: the index carries only a few attributes."""
    for launched in stores.policies.list():
        for shard in policy_shards(launched.policy_id):
            kwargs: dict[str, Any] = {
                "TableName": stores.findings.table,
                "IndexName": FINDINGS_BY_POLICY.name,
                "KeyConditionExpression": "PolicyShard = :p AND #s = :s",
                "ExpressionAttributeNames": {"#s": "State"},
                "ExpressionAttributeValues": values({":p": shard, ":s": state.value, **(vals or {})}),
                "Limit": PAGE,
            }
            if condition:
                kwargs["FilterExpression"] = condition
            for page in stores.findings.client.get_paginator("query").paginate(**kwargs):
                keys = [(i["ARN"]["S"], i["PolicyId"]["S"]) for i in page.get("Items", [])]
                yield from by_keys(stores, keys)


def by_keys(stores: Stores, keys: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """The findings of (ARN, PolicyId) pairs just written, in bulk and strongly consistent (an
    eventually consistent read could still see a finding as it was before it opened)."""
    client, table, found = stores.findings.client, stores.findings.table, []
    unique = list(dict.fromkeys(keys))
    for start in range(0, len(unique), 100):
        chunk = [to_item({"ARN": a, "PolicyId": p}) for a, p in unique[start : start + 100]]
        request = {table: {"Keys": chunk, "ConsistentRead": True}}
        while request:
            answer = client.batch_get_item(RequestItems=request)
            found += [from_item(i) for i in answer.get("Responses", {}).get(table, [])]
            request = answer.get("UnprocessedKeys") or {}
    return found


def row_of(item: dict[str, Any]) -> dict[str, Any]:
    return finding_row(finding_from_item(item))
