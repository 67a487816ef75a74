"""The history table: every state change of a finding, once, and daily rollups of them.

A transition is the finding's conditional update and a history item keyed ``{subject}#{PolicyId}`` /
``v{version}`` (the finding's ``Version`` after the move) written in one ``TransactWriteItems``:
the update conditions on the version it read, the history item on not existing. A retried task
re-reads the finding already moved, so it records nothing twice, and a crash records both or
neither. Only transitions pay the transaction; confirmations and evidence updates stay single writes.

Rollups (``trend/{day}`` / ``{dimension}/{value}``, dimensions ``band``, ``policy``, ``account``)
are ADDed after the transaction, like the counters (``stores.counters``): openings, resolutions,
the change in ACTIVE findings, and the time to resolve (sum, count, histogram for the p90)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from qrie_lib.aws import error_code, is_throttling
from qrie_lib.policies.base import band
from qrie_lib.stores.cell_adds import CellAdds
from qrie_lib.stores.counters import Tally
from qrie_lib.stores.dynamo import Write, query_pages, to_item, values
from qrie_lib.timeutil import parse_iso

OPENED, RESOLVED, REOPENED, SUPPRESSED, UNSUPPRESSED, SEVERITY = (
    "opened",
    "resolved",
    "reopened",
    "suppressed",
    "unsuppressed",
    "severity",
)
TREND = "trend/"
DIMENSIONS = ("band", "policy", "account")
# Time-to-resolve histogram bucket bounds, hours (the last bucket is unbounded): the p90 is read as
# the bound of the bucket that holds it.
BUCKETS_H = (1, 4, 12, 24, 48, 96, 168, 336, 720, 1440, 2160, 4380, 8760)
ACTIVE = "ACTIVE"


def finding_key(key: str, policy_id: str) -> str:
    """``key``: the finding's subject (``qrie_lib.subjects``)."""
    return f"{key}#{policy_id}"


def version_sort(version: int) -> str:
    return f"v{version:010d}"


def bucket(seconds: float) -> str:
    hours = seconds / 3600
    return f"H{next((n for n, b in enumerate(BUCKETS_H) if hours <= b), len(BUCKETS_H))}"


@dataclass(frozen=True)
class Transition:
    """One state change of a finding, as its history records it."""

    subject: str  # qrie_lib.subjects
    policy_id: str
    account_id: str
    version: int  # the finding's version after the change
    kind: str
    at: str
    cause: str  # "run:{run id}", "event:{event id}", or who
    state: str  # after
    severity: int  # after
    previous_state: str | None = None
    previous_severity: int | None = None
    reason: str | None = None  # a resolution's
    suppression_id: str | None = None
    opened_at: str | None = None  # when the finding (last) opened: a resolution's time to resolve

    def item(self) -> dict[str, Any]:
        return {
            "Key": finding_key(self.subject, self.policy_id),
            "Sort": version_sort(self.version),
            "Kind": self.kind,
            "At": self.at,
            "Cause": self.cause,
            "State": self.state,
            "Severity": self.severity,
            "PreviousState": self.previous_state,
            "PreviousSeverity": self.previous_severity,
            "Reason": self.reason,
            "SuppressionId": self.suppression_id,
            "AccountId": self.account_id,
            "OpenedAt": self.opened_at,
        }

    @property
    def resolve_seconds(self) -> float | None:
        if self.kind != RESOLVED or not self.opened_at:
            return None
        return max(0.0, (parse_iso(self.at) - parse_iso(self.opened_at)).total_seconds())


def rollup(t: Transition, was: Tally | None, now: Tally | None) -> dict[str, Counter[str]]:
    """The ADDs a transition makes to its day's rollup rows."""
    day, rows = t.at[:10], {}

    def cells(dimension: str, value: str) -> Counter[str]:
        return rows.setdefault(f"{dimension}/{value}", Counter())

    severity = now.severity if now else t.severity
    for dimension, value in (("policy", t.policy_id), ("account", t.account_id), ("band", band(severity))):
        c = cells(dimension, value)
        c["Opened"] += t.kind in (OPENED, REOPENED)
        c["Resolved"] += t.kind == RESOLVED
        if (seconds := t.resolve_seconds) is not None:
            c["ResolveCount"] += 1
            c["ResolveSeconds"] += int(seconds)
            c[bucket(seconds)] += 1
    for tally, sign in ((was, -1), (now, 1)):  # ACTIVE findings: open = now - the days' deltas since
        if tally is not None and tally.state == ACTIVE:
            cells("band", band(tally.severity))["OpenDelta"] += sign
            cells("policy", t.policy_id)["OpenDelta"] += sign
            cells("account", t.account_id)["OpenDelta"] += sign
    nonzero = {sort: Counter({k: v for k, v in c.items() if v}) for sort, c in rows.items()}
    return {f"{day}|{sort}": c for sort, c in nonzero.items() if c}


def _retryable(exc: BaseException) -> bool:
    return is_throttling(exc) or (isinstance(exc, ClientError) and _conflict(exc))


def _conflict(exc: ClientError) -> bool:
    reasons = exc.response.get("CancellationReasons") or []
    return error_code(exc) == "TransactionConflictException" or any(
        r.get("Code") == "TransactionConflict" for r in reasons
    )


class HistoryStore:
    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table
        self.adds = CellAdds(client, table)

    @retry(
        retry=retry_if_exception(_retryable),
        stop=stop_after_attempt(6),
        wait=wait_exponential_jitter(multiplier=0.05, max=2),
        reraise=True,
    )
    def transact(self, write: Write, transition: Transition) -> bool:
        """The finding's write and its history item, both or neither; False when a condition failed."""
        record = {
            "TableName": self.table,
            "Item": to_item(transition.item()),
            "ConditionExpression": "attribute_not_exists(#k)",
            "ExpressionAttributeNames": {"#k": "Key"},
        }
        try:
            self.client.transact_write_items(TransactItems=[{write.op: write.request}, {"Put": record}])
        except ClientError as exc:
            if error_code(exc) == "TransactionCanceledException" and not _conflict(exc):
                return False  # a condition failed: another evaluation moved the finding first
            raise
        return True

    def roll(self, transition: Transition, was: Tally | None, now: Tally | None) -> None:
        for key, cells in rollup(transition, was, now).items():
            day, sort = key.split("|", 1)
            self.adds.add({"Key": f"{TREND}{day}", "Sort": sort}, cells)

    # ---- reads ----------------------------------------------------------------------------

    def of_finding(self, key: str, policy_id: str) -> list[dict[str, Any]]:
        """A finding's transitions, oldest first."""
        return list(
            query_pages(
                self.client,
                TableName=self.table,
                KeyConditionExpression="#k = :k",
                ExpressionAttributeNames={"#k": "Key"},
                ExpressionAttributeValues=values({":k": finding_key(key, policy_id)}),
                ConsistentRead=True,
            )
        )

    def day(self, day: str, dimension: str) -> dict[str, Counter[str]]:
        """One day's rollup rows of a dimension: value → cells (one partition, one query)."""
        rows = query_pages(
            self.client,
            TableName=self.table,
            KeyConditionExpression="#k = :k AND begins_with(#s, :d)",
            ExpressionAttributeNames={"#k": "Key", "#s": "Sort"},
            ExpressionAttributeValues=values({":k": f"{TREND}{day}", ":d": f"{dimension}/"}),
        )
        return {
            r["Sort"].split("/", 1)[1]: Counter({k: int(v) for k, v in r.items() if k not in ("Key", "Sort")})
            for r in rows
        }

    def days(self, days: Iterable[str], dimension: str) -> dict[str, dict[str, Counter[str]]]:
        return {d: self.day(d, dimension) for d in days}


def transition_row(item: dict[str, Any]) -> dict[str, Any]:
    """A history item as the API and CLI show it."""
    return {
        "version": int(item["Sort"][1:]),
        "kind": item["Kind"],
        "at": item["At"],
        "cause": item["Cause"],
        "state": item["State"],
        "severity": int(item["Severity"]),
        "previous_state": item.get("PreviousState"),
        "previous_severity": int(item["PreviousSeverity"]) if "PreviousSeverity" in item else None,
        "reason": item.get("Reason"),
        "suppression_id": item.get("SuppressionId"),
    }
