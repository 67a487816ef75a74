"""What an exported finding row says beyond the finding itself: its policy's title, remediation and
compliance references (from the catalogue), and its account's name (one batch read per page for
the accounts not met on an earlier page), so an export reads on its own."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from qrie_lib.policies.registry import get_policy
from qrie_lib.stores import Stores
from qrie_lib.stores.dynamo import batch_get


def described_pages(
    stores: Stores, row_pages: Iterable[list[dict[str, Any]]]
) -> Iterator[list[dict[str, Any]]]:
    names: dict[str, str] = {}
    for rows in row_pages:
        unknown = sorted({r["account_id"] for r in rows} - names.keys())
        if unknown:
            found = batch_get(
                stores.accounts.client, stores.accounts.table, [{"AccountId": a} for a in unknown]
            )
            names |= dict.fromkeys(unknown, "") | {i["AccountId"]: i.get("Name", "") for i in found}
        yield [described(row, names[row["account_id"]]) for row in rows]


def described(row: dict[str, Any], account_name: str) -> dict[str, Any]:
    policy = get_policy(row["policy_id"])
    return row | {
        "account_name": account_name,
        "title": policy.title,
        "remediation": policy.remediation,
        "compliance": list(policy.compliance),
    }
