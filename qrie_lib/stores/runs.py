"""The runs table: PK ``RunId``, SK ``Item``. Per inventory or scan run: one header row (``Item`` =
"#run"), one row per work item with its counters (``<account>/<service>/...``, ``*/...`` for the
items of no one account), and one summary row per account written by the account's child
(``#account/<id>``), which Finalize pages. Beside the runs: the inventory lease (``#lease``) and
each account's state across runs (``#account-state``: consecutive failures, regions inventoried).
No row grows with the organisation and concurrent items never contend on one row."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from qrie_lib.models import RunStatus
from qrie_lib.stores.dynamo import (
    Write,
    conditional_write,
    decode_token,
    encode_token,
    from_item,
    to_item,
    values,
)
from qrie_lib.timeutil import now_iso

HEADER = "#run"
ACCOUNT = "#account/"
COUNT = "Count:"
LEASE_RUN_ID = "#lease"
ACCOUNT_STATE_RUN_ID = "#account-state"


@dataclass(frozen=True)
class AccountState:
    """What one account's runs of a kind left for the next: failures in a row, regions listed."""

    consecutive_failures: int = 0
    inventoried_regions: tuple[str, ...] | None = None  # None: never recorded


class RunsStore:
    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    # ---- the header ------------------------------------------------------------------------

    def create(
        self,
        run_id: str,
        kind: str,
        request: dict[str, Any],
        execution_id: str,
        status: RunStatus = RunStatus.RUNNING,
        summary: dict[str, Any] | None = None,
    ) -> None:
        now = now_iso()
        self.client.put_item(
            TableName=self.table,
            Item=to_item(
                {
                    "RunId": run_id,
                    "Item": HEADER,
                    "Kind": kind,
                    "Input": request,
                    "ExecutionArn": execution_id,
                    "StartedAt": now,
                    "Status": status.value,
                    "Pages": {},
                    **({"FinishedAt": now, "Summary": summary} if summary is not None else {}),
                }
            ),
        )

    def add_page(self, run_id: str, page_key: str, accounts: int) -> None:
        """The accounts of one page of the run (a map entry per page: a retried page counts once)."""
        self.client.update_item(
            TableName=self.table,
            Key=to_item({"RunId": run_id, "Item": HEADER}),
            UpdateExpression="SET Pages.#p = :n",
            ExpressionAttributeNames={"#p": page_key},
            ExpressionAttributeValues=values({":n": accounts}),
        )

    def account_done(self, run_id: str, failed: bool) -> None:
        """Progress for whoever follows the run (one counter on the header, not a partition read)."""
        self.client.update_item(
            TableName=self.table,
            Key=to_item({"RunId": run_id, "Item": HEADER}),
            UpdateExpression="ADD AccountsDone :one, AccountsFailed :f",
            ExpressionAttributeValues=values({":one": 1, ":f": int(failed)}),
        )

    def header(self, run_id: str) -> dict[str, Any] | None:
        item = self.client.get_item(
            TableName=self.table, Key=to_item({"RunId": run_id, "Item": HEADER}), ConsistentRead=True
        ).get("Item")
        return from_item(item) if item else None

    def finish(self, run_id: str, status: RunStatus, summary: dict[str, Any]) -> None:
        self.client.update_item(
            TableName=self.table,
            Key=to_item({"RunId": run_id, "Item": HEADER}),
            UpdateExpression="SET #s = :s, FinishedAt = :f, Summary = :sum",
            ExpressionAttributeNames={"#s": "Status"},
            ExpressionAttributeValues=values({":s": status.value, ":f": now_iso(), ":sum": summary}),
        )

    # ---- item rows -------------------------------------------------------------------------

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

    def account_items(self, run_id: str, group: str) -> list[dict[str, Any]]:
        """One account's item rows (``group`` = its id, or ``*``): a few dozen, one query."""
        return list(self.rows(run_id, f"{group}/"))

    # ---- account summaries -----------------------------------------------------------------

    def put_summary(self, run_id: str, group: str, summary: dict[str, Any], counts: dict[str, int]) -> None:
        self.client.put_item(
            TableName=self.table,
            Item=to_item(
                {
                    "RunId": run_id,
                    "Item": f"{ACCOUNT}{group}",
                    **summary,
                    **{f"{COUNT}{k}": v for k, v in counts.items()},
                }
            ),
        )

    def summaries_page(
        self, run_id: str, token: str | None, limit: int
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of the run's account summary rows, and the token of the next (None: last)."""
        return self.rows_page(run_id, ACCOUNT, token, limit)

    def summaries(self, run_id: str) -> dict[str, dict[str, Any]]:
        """Every account summary of a run, by account (tests and reports of small runs)."""
        return {i["Item"].removeprefix(ACCOUNT): i for i in self.rows(run_id, ACCOUNT)}

    def rows(self, run_id: str, prefix: str) -> Iterator[dict[str, Any]]:
        token: str | None = None
        while True:
            rows, token = self.rows_page(run_id, prefix, token)
            yield from rows
            if token is None:
                return

    def rows_page(
        self, run_id: str, prefix: str, token: str | None, limit: int | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        answer = self.client.query(
            TableName=self.table,
            KeyConditionExpression="RunId = :r AND begins_with(#i, :p)",
            ExpressionAttributeNames={"#i": "Item"},
            ExpressionAttributeValues=values({":r": run_id, ":p": prefix}),
            ConsistentRead=True,
            **({"Limit": limit} if limit else {}),
            **({"ExclusiveStartKey": decode_token(token)} if token else {}),
        )
        return [from_item(i) for i in answer.get("Items", [])], encode_token(answer.get("LastEvaluatedKey"))

    # ---- the lease ---------------------------------------------------------------------------

    def acquire_lease(self, kind: str, run_id: str, expires_at: str) -> str | None:
        """Take the ``kind`` lease for ``run_id`` until ``expires_at``: None when taken, else the
        holder's run id and expiry (a lease past its expiry is taken over: its run died)."""
        taken = conditional_write(
            self.client,
            Write(
                "Put",
                {
                    "TableName": self.table,
                    "Item": to_item(
                        {"RunId": LEASE_RUN_ID, "Item": kind, "Holder": run_id, "ExpiresAt": expires_at}
                    ),
                    "ConditionExpression": "attribute_not_exists(Holder) OR ExpiresAt < :now OR Holder = :me",
                    "ExpressionAttributeValues": values({":now": now_iso(), ":me": run_id}),
                },
            ),
        )
        if taken:
            return None
        held = self.lease(kind) or {}
        return f"{held.get('Holder')} (until {held.get('ExpiresAt')})"

    def lease(self, kind: str) -> dict[str, Any] | None:
        item = self.client.get_item(
            TableName=self.table, Key=to_item({"RunId": LEASE_RUN_ID, "Item": kind}), ConsistentRead=True
        ).get("Item")
        return from_item(item) if item else None

    def release_lease(self, kind: str, run_id: str) -> bool:
        """Give the lease back, if ``run_id`` still holds it."""
        return conditional_write(
            self.client,
            Write(
                "Delete",
                {
                    "TableName": self.table,
                    "Key": to_item({"RunId": LEASE_RUN_ID, "Item": kind}),
                    "ConditionExpression": "Holder = :me",
                    "ExpressionAttributeValues": values({":me": run_id}),
                },
            ),
        )

    # ---- each account's state across runs --------------------------------------------------

    def account_state(self, kind: str, account_id: str) -> AccountState:
        item = self.client.get_item(
            TableName=self.table, Key=to_item({"RunId": ACCOUNT_STATE_RUN_ID, "Item": f"{kind}/{account_id}"})
        ).get("Item")
        data = from_item(item) if item else {}
        regions = data.get("InventoriedRegions")
        return AccountState(
            int(data.get("ConsecutiveFailures", 0)), tuple(sorted(regions)) if regions is not None else None
        )

    def record_account_run(
        self, kind: str, account_id: str, run_id: str, failed: bool, inventoried_regions: Iterable[str] | None
    ) -> int:
        """After an account's part of a run: its consecutive failures (returned), and the regions
        that hold its inventory when given."""
        sets = ["LastRunId = :run", "UpdatedAt = :now"]
        vals: dict[str, Any] = {":run": run_id, ":now": now_iso()}
        if failed:
            adds = " ADD ConsecutiveFailures :one"
            vals[":one"] = 1
        else:
            adds = ""
            sets.append("ConsecutiveFailures = :zero")
            vals[":zero"] = 0
        if inventoried_regions is not None:
            sets.append("InventoriedRegions = :regions")
            vals[":regions"] = sorted(inventoried_regions)
        answer = self.client.update_item(
            TableName=self.table,
            Key=to_item({"RunId": ACCOUNT_STATE_RUN_ID, "Item": f"{kind}/{account_id}"}),
            UpdateExpression="SET " + ", ".join(sets) + adds,
            ExpressionAttributeValues=values(vals),
            ReturnValues="UPDATED_NEW",
        )
        return int(from_item(answer.get("Attributes", {})).get("ConsecutiveFailures", 0))


def total_counts(items: Iterable[dict[str, Any]]) -> dict[str, int]:
    totals: Counter[str] = Counter()
    for item in items:
        totals.update(counts_of(item))
    return dict(sorted(totals.items()))


def counts_of(item: dict[str, Any]) -> dict[str, int]:
    return {k.removeprefix(COUNT): int(v) for k, v in item.items() if k.startswith(COUNT)}
