"""The counters table: findings counted by state and severity band, maintained by atomic ``ADD`` in
the code paths that move findings (evaluation, sweep, resolution), so a summary reads a bounded
number of rows instead of every finding.

Rows (PK ``Counter``): ``policy/{policy_id}#{shard}``, the policy's findings on the ARNs of one
index shard (a popular policy's writes spread like its index), and ``account/{account_id}``.
Cells are top-level attributes ``{STATE}|{band}`` (ADD is top-level only). A finding write and its
counter update are two calls (a scan task's updates are merged and made at its end,
``cell_adds``): a task that dies between them leaves the counters off by those findings until
``qrie counters recount`` (``qrie_lib.recount``) rebuilds them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from qrie_lib.policies.base import band
from qrie_lib.schema import policy_shard, policy_shards
from qrie_lib.stores.cell_adds import CellAdds
from qrie_lib.stores.dynamo import batch_get, from_item, to_item

POLICY, ACCOUNT = "policy/", "account/"


@dataclass(frozen=True)
class Tally:
    """What one finding counts toward."""

    subject: str  # qrie_lib.subjects: what the policy's shard is of
    policy_id: str
    account_id: str
    state: str
    severity: int

    @property
    def cell(self) -> str:
        return f"{self.state}|{band(self.severity)}"

    @property
    def rows(self) -> tuple[str, str]:
        return f"{POLICY}{policy_shard(self.policy_id, self.subject)}", f"{ACCOUNT}{self.account_id}"


def changes(was: Tally | None, now: Tally | None) -> dict[str, Counter[str]]:
    """The ADDs a finding's move needs, by row: -1 where it was counted, +1 where it is now."""
    delta: dict[str, Counter[str]] = {}
    for tally, sign in ((was, -1), (now, 1)):
        if tally is not None:
            for row in tally.rows:
                delta.setdefault(row, Counter())[tally.cell] += sign
    return {row: cells for row, cells in delta.items() if any(cells.values())}


class CountersStore:
    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table
        self.adds = CellAdds(client, table)

    def move(self, was: Tally | None, now: Tally | None) -> None:
        for row, cells in changes(was, now).items():
            self.adds.add({"Counter": row}, cells)

    def policies(self, policy_ids: Iterable[str]) -> dict[str, Counter[str]]:
        """Each policy's cells, its shard rows summed: a bounded read (policies x shards rows)."""
        keys = [{"Counter": f"{POLICY}{shard}"} for pid in policy_ids for shard in policy_shards(pid)]
        totals: dict[str, Counter[str]] = {}
        for item in batch_get(self.client, self.table, keys):
            policy_id = item["Counter"].removeprefix(POLICY).rsplit("#", 1)[0]
            totals.setdefault(policy_id, Counter()).update(_cells(item))
        return totals

    def rows(self) -> dict[str, Counter[str]]:
        """Every row's cells (policies x shards + accounts rows: a bounded table)."""
        pages = self.client.get_paginator("scan").paginate(TableName=self.table)
        return {i["Counter"]: _cells(i) for page in pages for i in map(from_item, page.get("Items", []))}

    def replace(self, row: str, cells: Counter[str]) -> None:
        """A row's cells as given, the others removed (``recount``)."""
        item = {"Counter": row, **{cell: n for cell, n in cells.items() if n}}
        self.client.put_item(TableName=self.table, Item=to_item(item))

    def account(self, account_id: str) -> Counter[str]:
        item = self.client.get_item(TableName=self.table, Key=to_item({"Counter": f"{ACCOUNT}{account_id}"}))
        return _cells(from_item(item["Item"]) if "Item" in item else None)


def _cells(item: dict[str, Any] | None) -> Counter[str]:
    return Counter({k: int(v) for k, v in (item or {}).items() if "|" in k})
