"""What the latest scan evaluated, per account and policy: a compliance report needs it to tell a
control that passed (evaluated, nothing failing) from one never evaluated (account not scanned
since the policy was launched) or evaluated only in part (resources whose data was not collected).

Rows of the runs table under one pseudo run (``RunId`` = ``#coverage``, ``Item`` = the account id):
one attribute per policy, ``Policy:<id>`` = ``{Evaluated, NotEvaluated, ScannedAt, RunId}``. The scan's
Finalize writes one UpdateItem per account it scanned, only for the policies of items that
completed; a partial scan (one policy, one account) overwrites only what it covered."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from qrie_lib.models import RunStatus
from qrie_lib.stores.dynamo import batch_get, from_item, query_pages, to_item, values
from qrie_lib.stores.runs import counts_of

RUN_ID = "#coverage"
POLICY = "Policy:"
EVALUATED, NOT_EVALUATED = "evaluated", "not_evaluated"  # evaluation.py's outcome kinds


@dataclass(frozen=True)
class Coverage:
    evaluated: int  # resources the policy decided on
    not_evaluated: int  # resources it could not decide on (data not collected)
    scanned_at: str
    run_id: str


class CoverageStore:
    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    def record(self, run_id: str, items: Iterable[dict[str, Any]], at: str) -> int:
        """From a scan's item rows (those that completed): per account, each policy's counts.
        Returns the accounts written."""
        by_account: dict[str, dict[str, Coverage]] = defaultdict(dict)
        for row in items:
            if row.get("Status") != RunStatus.SUCCEEDED.value or not row.get("policy_ids"):
                continue  # a failed or interrupted item did not evaluate all its resources
            counts = counts_of(row)
            seen = by_account[row["account_id"]]
            for policy_id in row["policy_ids"]:
                before = seen.get(policy_id, Coverage(0, 0, at, run_id))
                seen[policy_id] = Coverage(
                    before.evaluated + counts.get(f"{policy_id}|{EVALUATED}", 0),
                    before.not_evaluated + counts.get(f"{policy_id}|{NOT_EVALUATED}", 0),
                    at,
                    run_id,
                )
        for account_id, policies in sorted(by_account.items()):
            names = {f"#p{n}": f"{POLICY}{p}" for n, p in enumerate(policies)}
            vals = {
                f":p{n}": {
                    "Evaluated": c.evaluated,
                    "NotEvaluated": c.not_evaluated,
                    "ScannedAt": at,
                    "RunId": run_id,
                }
                for n, c in enumerate(policies.values())
            }
            self.client.update_item(
                TableName=self.table,
                Key=to_item({"RunId": RUN_ID, "Item": account_id}),
                UpdateExpression="SET " + ", ".join(f"#p{n} = :p{n}" for n in range(len(policies))),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values(vals),
            )
        return len(by_account)

    def get(self, account_id: str | None = None) -> dict[str, dict[str, Coverage]]:
        """Account → policy → what its latest scan evaluated; one account, or all (one query)."""
        if account_id is not None:
            item = self.client.get_item(
                TableName=self.table, Key=to_item({"RunId": RUN_ID, "Item": account_id}), ConsistentRead=True
            ).get("Item")
            rows = [from_item(item)] if item else []
        else:
            rows = list(
                query_pages(
                    self.client,
                    TableName=self.table,
                    KeyConditionExpression="RunId = :r",
                    ExpressionAttributeValues=values({":r": RUN_ID}),
                )
            )
        return {row["Item"]: _policies(row) for row in rows}

    def get_many(self, account_ids: Iterable[str]) -> dict[str, dict[str, Coverage]]:
        """Account → policy → what its latest scan evaluated, for these accounts (in bulk)."""
        keys = [{"RunId": RUN_ID, "Item": a} for a in dict.fromkeys(account_ids)]
        return {row["Item"]: _policies(row) for row in batch_get(self.client, self.table, keys)}


def _policies(row: dict[str, Any]) -> dict[str, Coverage]:
    return {
        name.removeprefix(POLICY): Coverage(
            int(v["Evaluated"]), int(v["NotEvaluated"]), str(v["ScannedAt"]), str(v["RunId"])
        )
        for name, v in row.items()
        if name.startswith(POLICY)
    }
