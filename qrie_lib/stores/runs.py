"""The runs table: PK ``RunId``, SK ``Item``. One header row (``Item`` = "#run") per inventory or
scan run, one row per work item with its counters, and after the run one totals row per account
(``#account/<id>``), so a run of thousands of items or accounts never outgrows a 400 KB item and
concurrent items never contend on one row."""

from __future__ import annotations

from collections import Counter
from typing import Any

from qrie_lib.models import RunStatus
from qrie_lib.schema import RUNS_BY_KIND
from qrie_lib.stores.dynamo import from_item, query_pages, to_item, values
from qrie_lib.timeutil import now_iso

HEADER = "#run"
ACCOUNT = "#account/"
COUNT = "Count:"
BATCH = 25  # BatchWriteItem's maximum


class RunsStore:
    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    def create(self, run_id: str, kind: str, request: dict[str, Any], execution_id: str, items: int) -> None:
        self.client.put_item(
            TableName=self.table,
            Item=to_item(
                {
                    "RunId": run_id,
                    "Item": HEADER,
                    "Kind": kind,
                    "Input": request,
                    "ExecutionArn": execution_id,
                    "StartedAt": now_iso(),
                    "Status": RunStatus.RUNNING.value,
                    "ItemCount": items,
                }
            ),
        )

    def add_counts(self, run_id: str, item_id: str, counts: dict[str, int], **attributes: Any) -> None:
        """Atomically add counters to a work item's row (creating it) and set other attributes.
        Counters are top-level ``Count:<name>`` attributes: DynamoDB's ADD is top-level only."""
        names: dict[str, str] = {}
        vals: dict[str, Any] = {":now": now_iso()}
        adds, sets = [], ["UpdatedAt = :now"]
        for n, (name, value) in enumerate(sorted(counts.items())):
            names[f"#k{n}"], vals[f":k{n}"] = f"{COUNT}{name}", value
            adds.append(f"#k{n} :k{n}")
        for n, (name, value) in enumerate(sorted(attributes.items())):
            names[f"#a{n}"], vals[f":a{n}"] = name, value
            sets.append(f"#a{n} = :a{n}")
        expression = "SET " + ", ".join(sets) + (" ADD " + ", ".join(adds) if adds else "")
        self.client.update_item(
            TableName=self.table,
            Key=to_item({"RunId": run_id, "Item": item_id}),
            UpdateExpression=expression,
            ExpressionAttributeValues=values(vals),
            **({"ExpressionAttributeNames": names} if names else {}),
        )

    def items(self, run_id: str) -> list[dict[str, Any]]:
        return [
            i
            for i in query_pages(
                self.client,
                TableName=self.table,
                KeyConditionExpression="RunId = :r",
                ExpressionAttributeValues=values({":r": run_id}),
            )
            if not i["Item"].startswith("#")  # the header and the account totals
        ]

    def put_account_totals(self, run_id: str, totals: dict[str, dict[str, int]]) -> None:
        rows = [
            {"PutRequest": {"Item": to_item({"RunId": run_id, "Item": f"{ACCOUNT}{account}", **counts})}}
            for account, counts in sorted(totals.items())
        ]
        for start in range(0, len(rows), BATCH):
            pending = {self.table: rows[start : start + BATCH]}
            while pending:  # unprocessed items are retried until written
                pending = self.client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}

    def account_totals(self, run_id: str) -> dict[str, dict[str, int]]:
        return {
            i["Item"].removeprefix(ACCOUNT): {k: int(v) for k, v in i.items() if k not in ("RunId", "Item")}
            for i in query_pages(
                self.client,
                TableName=self.table,
                KeyConditionExpression="RunId = :r AND begins_with(#i, :a)",
                ExpressionAttributeNames={"#i": "Item"},
                ExpressionAttributeValues=values({":r": run_id, ":a": ACCOUNT}),
            )
        }

    def header(self, run_id: str) -> dict[str, Any] | None:
        item = self.client.get_item(
            TableName=self.table, Key=to_item({"RunId": run_id, "Item": HEADER}), ConsistentRead=True
        ).get("Item")
        return from_item(item) if item else None

    def recent(self, kind: str, limit: int) -> list[dict[str, Any]]:
        """The headers of the newest ``limit`` runs of a kind (one query of the sparse index)."""
        answer = self.client.query(
            TableName=self.table,
            IndexName=RUNS_BY_KIND.name,
            KeyConditionExpression="Kind = :k",
            ExpressionAttributeValues=values({":k": kind}),
            ScanIndexForward=False,
            Limit=limit,
        )
        return [from_item(i) for i in answer.get("Items", [])]

    def finish(self, run_id: str, status: RunStatus, summary: dict[str, Any]) -> None:
        self.client.update_item(
            TableName=self.table,
            Key=to_item({"RunId": run_id, "Item": HEADER}),
            UpdateExpression="SET #s = :s, FinishedAt = :f, Summary = :sum",
            ExpressionAttributeNames={"#s": "Status"},
            ExpressionAttributeValues=values({":s": status.value, ":f": now_iso(), ":sum": summary}),
        )


def total_counts(items: list[dict[str, Any]]) -> dict[str, int]:
    totals: Counter[str] = Counter()
    for item in items:
        totals.update(counts_of(item))
    return dict(sorted(totals.items()))


def counts_of(item: dict[str, Any]) -> dict[str, int]:
    return {k.removeprefix(COUNT): int(v) for k, v in item.items() if k.startswith(COUNT)}
